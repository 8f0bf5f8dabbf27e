/* memlimit_proto: the wire protocol between memrun (runner/control/lsrv.c) and libmemlimit, version 1. The one
 * definition both ends compile against: message layout, constants and pure helpers, no I/O.
 *
 * Transport
 *   AF_UNIX, SOCK_SEQPACKET: connection-oriented, message boundaries kept, one message per send/recv.
 *   Every process of the sandbox that wants levels makes its own connection (memrun knows its peers by
 *   the SO_PEERCRED pid taken at connect time): a process that forks must not use its parent's
 *   connection; the child connects again. memrun refuses peers whose memory cgroup is not the sandbox
 *   or beneath it; refused peers are closed without a message.
 *
 * Endpoint
 *   The environment variable MEMRUN_LIMITER names it. A value starting with '@' is a Linux abstract
 *   socket: sun_path[0] is NUL, the rest of the value follows, and the address length is
 *   offsetof(struct sockaddr_un, sun_path) + strlen(value) -- no trailing NUL is part of the name.
 *   Any other value is a filesystem path. memrun uses "@memrun-<pid>-<16 hex digits>".
 *   memlimit_endpoint_addr() does the conversion.
 *
 * Messages
 *   Exactly MEMLIMIT_MSG_SIZE (64) bytes, host byte order (both ends share a machine), explicit widths,
 *   natural alignment, no implicit padding. Senders zero every reserved byte; receivers ignore
 *   reserved bytes, but enumerated values (type, level, action and flag bits, reasons) are checked
 *   strictly: anything a receiver would have to act on and does not know is malformed.
 *   Bytes 0..7 (magic, version, type) keep their meaning in every version, so a peer can always tell
 *   "another version" (-EPROTO from memlimit_msg_check) from "garbage" (-EINVAL), even when a future
 *   version has another message size. Never send a zero-length message: on SOCK_SEQPACKET recv()
 *   returns 0 for it as for a hang-up (memrun tells them apart and counts it as malformed).
 *
 *   header, every message
 *      0 u32 magic     MEMLIMIT_MAGIC
 *      4 u16 version   the sender's MEMLIMIT_PROTO_VERSION
 *      6 u16 type      MEMLIMIT_MSG_*
 *      8 u32 seq       LEVEL: its number (from 1, increasing); RESULT: the LEVEL answered (0: none);
 *                      WELCOME: the latest LEVEL's (0: none yet); HELLO, BYE: 0
 *     12 u32 flags     HELLO: MEMLIMIT_HELLO_*; RESULT: MEMLIMIT_RESULT_*; others: 0
 *   body, by type
 *     HELLO   c->s     16 u32 pid, 20 u32 caps, 24 char comm[16], 40 reserved[24]
 *     WELCOME s->c     16 u64 limit, 24 u64 soft, 32 u32 level, 36 u32 actions, 40 u64 goal,
 *                      48 u32 client_id, 52 reserved[12]
 *     LEVEL   s->c     16 u32 level, 20 u32 actions, 24 u64 goal, 32 u64 usage, 40 u32 coalesced,
 *                      44 reserved[20]
 *     RESULT  c->s     16 u32 action, 20 u32 callbacks, 24 u64 freed, 32 u64 usec, 40 reserved[24]
 *     BYE     both     16 u32 reason, 20 reserved[44]
 *
 * Session
 *   client                              memrun
 *   connect ----------------------->    accept; SO_PEERCRED pid -> <pid>/cgroup inside the sandbox?
 *   HELLO (version, pid, caps) ---->    other version: BYE(VERSION, memrun's version), close
 *          <-----------------------     WELCOME (limits, the current level, actions, goal, seq)
 *          <-----------------------     LEVEL seq=N (each transition, and repeats while usage grows)
 *   RESULT seq=N, one per action -->    recorded: what each action freed, how long it took
 *   BYE or close ------------------>
 *
 *   memrun never blocks on a client: it sends with MSG_DONTWAIT, and a client that does not read has
 *   at most one undelivered message, replaced by the newest (the LEVEL that finally arrives carries
 *   the number it replaced in `coalesced`, and seq jumps). Clients should not block on memrun either;
 *   a RESULT that cannot be sent may be dropped. A client that sends MEMLIMIT_MAX_MALFORMED malformed
 *   messages is disconnected (BYE MALFORMED). memrun serves a bounded number of processes; past it a
 *   connection gets BYE FULL. When memrun closes a connection while messages from the client are
 *   still unread, the client's next recv() fails once with ECONNRESET (as on TCP); what memrun sent
 *   before closing, such as its BYE, is still readable after that, then EOF.
 *
 *   LEVEL says what the sandbox needs now: `level`, the `actions` to run (MEMLIMIT_ACT_* bits; 0 when
 *   the level dropped and nothing is asked), and `goal`, the bytes this client should give back (memrun
 *   shares the sandbox's need among the clients it asks; 0: no figure). Every LEVEL states the
 *   shedding wanted: SHED set means shed, SHED clear means stop. memrun has at most one ask (a LEVEL
 *   with actions) outstanding per client and asks again only after the answer or a timeout; a LEVEL
 *   read together with a newer one that asks nothing is still answered, under its own seq. A client answers with one RESULT per action it was asked for: bytes freed,
 *   microseconds of wall time spent, callbacks run, and flags: FUTILE (ran, freed nothing),
 *   SKIPPED_BUDGET (not run: its CPU budget is spent), SKIPPED_FUTILE (not run: it freed nothing the
 *   last times), NO_HANDLER (nothing registered). Futile and skipped results are how memrun learns to
 *   escalate instead of asking again. SHED frees nothing by itself: answer it with freed 0, no FUTILE.
 *   WELCOME carries the latest LEVEL's seq, level, actions and goal so a process attaching late (a
 *   pre-fork worker) starts in the current state; seq 0 means no LEVEL was sent yet.
 *
 *   Live limits (a compatible addition to version 1): whenever the limits change (memrunctl set),
 *   memrun sends every attached client a WELCOME again, with the new limit and soft, its client_id,
 *   and seq 0, so the level state is left alone; it never replaces an undelivered ask with it (the
 *   WELCOME follows once the pending message is out). A version-1 client takes a WELCOME at any
 *   time; libmemlimit hands the limits to memlimit_limits() and memlimit_on_limits() handlers. */
#pragma once
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define MEMLIMIT_PROTO_VERSION 1
#define MEMLIMIT_MAGIC UINT32_C(0x4c4d454d)   /* bytes "MEML" on little-endian hosts */
#define MEMLIMIT_MSG_SIZE 64
#define MEMLIMIT_ENV_ENDPOINT "MEMRUN_LIMITER"
#define MEMLIMIT_MAX_MALFORMED 16             /* memrun disconnects a client after this many */

enum memlimit_msg_type {
        MEMLIMIT_MSG_HELLO = 1,   /* 0 is never valid: zeroed memory is not a message */
        MEMLIMIT_MSG_WELCOME,
        MEMLIMIT_MSG_LEVEL,
        MEMLIMIT_MSG_RESULT,
        MEMLIMIT_MSG_BYE,
        MEMLIMIT_MSG_TYPE_MAX
};

/* Wire levels: the same values as enum memlimit_level (memlimit.h) and memrun's enum level. */
#define MEMLIMIT_PROTO_NORMAL   0u
#define MEMLIMIT_PROTO_MODERATE 1u
#define MEMLIMIT_PROTO_HIGH     2u
#define MEMLIMIT_PROTO_CRITICAL 3u
#define MEMLIMIT_PROTO_LEVEL_MAX 4u

/* Actions, as bits (LEVEL.actions, WELCOME.actions, HELLO.caps; RESULT.action has exactly one). */
#define MEMLIMIT_ACT_TRIM    (1u << 0)   /* run cache trimmers toward the goal */
#define MEMLIMIT_ACT_COLLECT (1u << 1)   /* run collectors, then malloc_trim */
#define MEMLIMIT_ACT_SHED    (1u << 2)   /* refuse new work while the level lasts */
#define MEMLIMIT_ACT_ALL     (MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT | MEMLIMIT_ACT_SHED)

/* HELLO.flags */
#define MEMLIMIT_HELLO_PRELOAD (1u << 0)   /* the --preload shim, not a linked program */
#define MEMLIMIT_HELLO_FORKED  (1u << 1)   /* re-attached after fork() */
#define MEMLIMIT_HELLO_ALL     (MEMLIMIT_HELLO_PRELOAD | MEMLIMIT_HELLO_FORKED)

/* RESULT.flags */
#define MEMLIMIT_RESULT_FUTILE         (1u << 0)
#define MEMLIMIT_RESULT_SKIPPED_BUDGET (1u << 1)
#define MEMLIMIT_RESULT_SKIPPED_FUTILE (1u << 2)
#define MEMLIMIT_RESULT_NO_HANDLER     (1u << 3)
#define MEMLIMIT_RESULT_ALL                                                                       \
        (MEMLIMIT_RESULT_FUTILE | MEMLIMIT_RESULT_SKIPPED_BUDGET | MEMLIMIT_RESULT_SKIPPED_FUTILE | \
         MEMLIMIT_RESULT_NO_HANDLER)

enum memlimit_bye_reason {
        MEMLIMIT_BYE_NORMAL,      /* going away */
        MEMLIMIT_BYE_VERSION,     /* memrun does not speak the client's version; header.version is memrun's */
        MEMLIMIT_BYE_MALFORMED,   /* too many malformed messages */
        MEMLIMIT_BYE_FULL,        /* memrun's client table is full */
        MEMLIMIT_BYE_REASON_MAX
};

struct memlimit_msg_hello {
        uint32_t pid;             /* getpid() of the sender; memrun trusts SO_PEERCRED, this is for logs */
        uint32_t caps;            /* MEMLIMIT_ACT_* the process has handlers for */
        char comm[16];            /* process name, NUL-terminated */
        uint8_t reserved[24];
};

struct memlimit_msg_welcome {
        uint64_t limit;           /* hard limit, bytes (UINT64_MAX: none) */
        uint64_t soft;            /* soft limit, bytes (UINT64_MAX: none) */
        uint32_t level;           /* current level, as the latest LEVEL */
        uint32_t actions;         /* ... its actions */
        uint64_t goal;            /* ... its goal */
        uint32_t client_id;       /* memrun's name for this connection, for logs */
        uint8_t reserved[12];
};

struct memlimit_msg_level {
        uint32_t level;           /* MEMLIMIT_PROTO_* */
        uint32_t actions;         /* MEMLIMIT_ACT_* to run now */
        uint64_t goal;            /* bytes the sandbox should give back; 0: no figure */
        uint64_t usage;           /* sandbox usage when memrun decided, bytes */
        uint32_t coalesced;       /* LEVELs for this client this one replaced undelivered */
        uint8_t reserved[20];
};

struct memlimit_msg_result {
        uint32_t action;          /* exactly one MEMLIMIT_ACT_* */
        uint32_t callbacks;       /* callbacks run */
        uint64_t freed;           /* bytes */
        uint64_t usec;            /* wall time spent in the callbacks */
        uint8_t reserved[24];
};

struct memlimit_msg_bye {
        uint32_t reason;          /* enum memlimit_bye_reason */
        uint8_t reserved[44];
};

struct memlimit_msg {
        uint32_t magic;
        uint16_t version;
        uint16_t type;
        uint32_t seq;
        uint32_t flags;
        union {
                struct memlimit_msg_hello hello;
                struct memlimit_msg_welcome welcome;
                struct memlimit_msg_level level;
                struct memlimit_msg_result result;
                struct memlimit_msg_bye bye;
                uint8_t raw[48];
        } u;
};

_Static_assert(sizeof(struct memlimit_msg) == MEMLIMIT_MSG_SIZE, "memlimit_msg must be 64 bytes");
_Static_assert(offsetof(struct memlimit_msg, version) == 4, "layout");
_Static_assert(offsetof(struct memlimit_msg, type) == 6, "layout");
_Static_assert(offsetof(struct memlimit_msg, seq) == 8, "layout");
_Static_assert(offsetof(struct memlimit_msg, flags) == 12, "layout");
_Static_assert(offsetof(struct memlimit_msg, u) == 16, "layout");
_Static_assert(sizeof(struct memlimit_msg_hello) == 48 && sizeof(struct memlimit_msg_welcome) == 48 &&
                       sizeof(struct memlimit_msg_level) == 48 && sizeof(struct memlimit_msg_result) == 48 &&
                       sizeof(struct memlimit_msg_bye) == 48,
               "every body is 48 bytes");
_Static_assert(offsetof(struct memlimit_msg_welcome, soft) == 8 && offsetof(struct memlimit_msg_welcome, level) == 16 &&
                       offsetof(struct memlimit_msg_welcome, goal) == 24 &&
                       offsetof(struct memlimit_msg_welcome, client_id) == 32,
               "layout");
_Static_assert(offsetof(struct memlimit_msg_level, goal) == 8 && offsetof(struct memlimit_msg_level, usage) == 16 &&
                       offsetof(struct memlimit_msg_level, coalesced) == 24,
               "layout");
_Static_assert(offsetof(struct memlimit_msg_result, freed) == 8 && offsetof(struct memlimit_msg_result, usec) == 16,
               "layout");

/* A zeroed message of the given type, with magic and this version. */
static inline void memlimit_msg_init(struct memlimit_msg *m, enum memlimit_msg_type type)
{
        memset(m, 0, sizeof *m);
        m->magic = MEMLIMIT_MAGIC;
        m->version = MEMLIMIT_PROTO_VERSION;
        m->type = (uint16_t)type;
}

static inline int memlimit_one_action(uint32_t a)
{
        return a != 0 && (a & ~MEMLIMIT_ACT_ALL) == 0 && (a & (a - 1)) == 0;
}

/* Validate a received message; len is the datagram's real length (recv with MSG_TRUNC), m holds its
 * first MEMLIMIT_MSG_SIZE bytes. 0: valid. -EPROTO: a well-formed header of another protocol version
 * (m->version says which). -EINVAL: anything else (short, long, bad magic, unknown type, a value out
 * of range). Direction is not checked: that is the receiver's business. */
static inline int memlimit_msg_check(const struct memlimit_msg *m, size_t len)
{
        if (!m || len < 8)
                return -EINVAL;
        if (m->magic != MEMLIMIT_MAGIC)
                return -EINVAL;
        if (m->version != MEMLIMIT_PROTO_VERSION)
                return -EPROTO;
        if (len != MEMLIMIT_MSG_SIZE)
                return -EINVAL;
        switch (m->type) {
        case MEMLIMIT_MSG_HELLO:
                if (m->seq != 0 || (m->flags & ~MEMLIMIT_HELLO_ALL) || (m->u.hello.caps & ~MEMLIMIT_ACT_ALL) ||
                    !memchr(m->u.hello.comm, '\0', sizeof m->u.hello.comm))
                        return -EINVAL;
                return 0;
        case MEMLIMIT_MSG_WELCOME:
                if (m->flags != 0 || m->u.welcome.level >= MEMLIMIT_PROTO_LEVEL_MAX ||
                    (m->u.welcome.actions & ~MEMLIMIT_ACT_ALL))
                        return -EINVAL;
                return 0;
        case MEMLIMIT_MSG_LEVEL:
                if (m->seq == 0 || m->flags != 0 || m->u.level.level >= MEMLIMIT_PROTO_LEVEL_MAX ||
                    (m->u.level.actions & ~MEMLIMIT_ACT_ALL))
                        return -EINVAL;
                return 0;
        case MEMLIMIT_MSG_RESULT:
                if ((m->flags & ~MEMLIMIT_RESULT_ALL) || !memlimit_one_action(m->u.result.action))
                        return -EINVAL;
                return 0;
        case MEMLIMIT_MSG_BYE:
                if (m->seq != 0 || m->flags != 0 || m->u.bye.reason >= MEMLIMIT_BYE_REASON_MAX)
                        return -EINVAL;
                return 0;
        default:
                return -EINVAL;
        }
}

/* The socket address for an endpoint string (see "Endpoint" above). -EINVAL: empty or too long. */
/* Send one message, never blocking: 0, -EAGAIN (the peer's queue is full), -EIO (cut short) or
 * -errno. Both ends use it. */
static inline int memlimit_msg_send(int fd, const struct memlimit_msg *m)
{
        ssize_t n;
        do
                n = send(fd, m, sizeof *m, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return (size_t)n == sizeof *m ? 0 : -EIO;
}

static inline int memlimit_endpoint_addr(const char *endpoint, struct sockaddr_un *ret, socklen_t *ret_len)
{
        struct sockaddr_un a;
        size_t n;

        if (!endpoint || !endpoint[0] || (endpoint[0] == '@' && !endpoint[1]))
                return -EINVAL;
        n = strlen(endpoint);
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        if (endpoint[0] == '@') {
                if (n > sizeof a.sun_path)
                        return -EINVAL;
                memcpy(a.sun_path + 1, endpoint + 1, n - 1);
                *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        } else {
                if (n >= sizeof a.sun_path)
                        return -EINVAL;
                memcpy(a.sun_path, endpoint, n);
                *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        }
        *ret = a;
        return 0;
}

static inline const char *memlimit_proto_level_name(uint32_t level)
{
        static const char *const names[MEMLIMIT_PROTO_LEVEL_MAX] = { "ok", "moderate", "high", "critical" };
        return level < MEMLIMIT_PROTO_LEVEL_MAX ? names[level] : "?";
}

/* Name of one action bit. */
static inline const char *memlimit_proto_action_name(uint32_t action)
{
        switch (action) {
        case MEMLIMIT_ACT_TRIM: return "trim";
        case MEMLIMIT_ACT_COLLECT: return "collect";
        case MEMLIMIT_ACT_SHED: return "shed";
        default: return "?";
        }
}

static inline const char *memlimit_msg_type_name(uint32_t type)
{
        static const char *const names[MEMLIMIT_MSG_TYPE_MAX] = { "?", "HELLO", "WELCOME", "LEVEL", "RESULT", "BYE" };
        return type < MEMLIMIT_MSG_TYPE_MAX ? names[type] : "?";
}

static inline const char *memlimit_bye_reason_name(uint32_t reason)
{
        static const char *const names[MEMLIMIT_BYE_REASON_MAX] = { "normal", "version", "malformed", "full" };
        return reason < MEMLIMIT_BYE_REASON_MAX ? names[reason] : "?";
}

/* "trim,collect" for a set of action bits, "none" for 0. Returns buf. */
static inline const char *memlimit_proto_actions_format(uint32_t actions, char *buf, size_t size)
{
        size_t len = 0;

        if (!size)
                return buf;
        buf[0] = '\0';
        for (uint32_t bit = 1; bit & MEMLIMIT_ACT_ALL; bit <<= 1) {
                if (!(actions & bit))
                        continue;
                const char *name = memlimit_proto_action_name(bit);
                size_t n = strlen(name);
                if (len + (len ? 1 : 0) + n + 1 > size)
                        break;
                if (len)
                        buf[len++] = ',';
                memcpy(buf + len, name, n + 1);
                len += n;
        }
        if (!len && size >= 5)
                memcpy(buf, "none", 5);
        return buf;
}
