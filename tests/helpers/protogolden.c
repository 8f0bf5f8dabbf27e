/* protogolden: the wire protocol's golden messages, made by the C definition (memlimit_proto.h) that
 * memrun and libmemlimit compile against, for the Go and Python clients' codec tests: they encode the
 * fields and must get these bytes, decode these bytes and must get these fields, and must reject the
 * malformed ones for the same reason memlimit_msg_check() does. Nothing here is hand-written hex.
 *
 * One message per line, space-separated:
 *   VERDICT HEX TYPE seq=N flags=N FIELD=N ...
 * VERDICT: ok, eproto (another version: tell it apart from garbage), einval (garbage). HEX: the
 * datagram, lower-case, 2 digits per byte (64 bytes, except the length cases). TYPE and the fields
 * name the message as memlimit_proto.h does (comm is a string without spaces). */
#include <stdio.h>

#include "limiter/memlimit_proto.h"

static void line(const struct memlimit_msg *m, size_t len, const char *fields)
{
        int rc = memlimit_msg_check(m, len);
        fputs(rc == 0 ? "ok " : rc == -EPROTO ? "eproto " : "einval ", stdout);
        const unsigned char *p = (const unsigned char *)m;
        for (size_t i = 0; i < len; i++)
                printf("%02x", p[i]);
        printf(" %s seq=%u flags=%u%s%s\n", memlimit_msg_type_name(m->type), m->seq, m->flags, *fields ? " " : "", fields);
}

static void hello(uint32_t flags, uint32_t pid, uint32_t caps, const char *comm)
{
        struct memlimit_msg m;
        char f[128];
        memlimit_msg_init(&m, MEMLIMIT_MSG_HELLO);
        m.flags = flags;
        m.u.hello.pid = pid;
        m.u.hello.caps = caps;
        strncpy(m.u.hello.comm, comm, sizeof m.u.hello.comm - 1);
        snprintf(f, sizeof f, "pid=%u caps=%u comm=%s", pid, caps, comm);
        line(&m, sizeof m, f);
}

static void welcome(uint32_t seq, uint64_t limit, uint64_t soft, uint32_t level, uint32_t actions, uint64_t goal, uint32_t id)
{
        struct memlimit_msg m;
        char f[200];
        memlimit_msg_init(&m, MEMLIMIT_MSG_WELCOME);
        m.seq = seq;
        m.u.welcome = (struct memlimit_msg_welcome){ .limit = limit, .soft = soft, .level = level, .actions = actions,
                                                     .goal = goal, .client_id = id };
        snprintf(f, sizeof f, "limit=%llu soft=%llu level=%u actions=%u goal=%llu client_id=%u", (unsigned long long)limit,
                 (unsigned long long)soft, level, actions, (unsigned long long)goal, id);
        line(&m, sizeof m, f);
}

static void level(uint32_t seq, uint32_t lvl, uint32_t actions, uint64_t goal, uint64_t usage, uint32_t coalesced)
{
        struct memlimit_msg m;
        char f[200];
        memlimit_msg_init(&m, MEMLIMIT_MSG_LEVEL);
        m.seq = seq;
        m.u.level = (struct memlimit_msg_level){ .level = lvl, .actions = actions, .goal = goal, .usage = usage,
                                                 .coalesced = coalesced };
        snprintf(f, sizeof f, "level=%u actions=%u goal=%llu usage=%llu coalesced=%u", lvl, actions,
                 (unsigned long long)goal, (unsigned long long)usage, coalesced);
        line(&m, sizeof m, f);
}

static void result(uint32_t seq, uint32_t flags, uint32_t action, uint32_t callbacks, uint64_t freed, uint64_t usec)
{
        struct memlimit_msg m;
        char f[200];
        memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
        m.seq = seq;
        m.flags = flags;
        m.u.result = (struct memlimit_msg_result){ .action = action, .callbacks = callbacks, .freed = freed, .usec = usec };
        snprintf(f, sizeof f, "action=%u callbacks=%u freed=%llu usec=%llu", action, callbacks, (unsigned long long)freed,
                 (unsigned long long)usec);
        line(&m, sizeof m, f);
}

static void bye(uint32_t reason)
{
        struct memlimit_msg m;
        char f[32];
        memlimit_msg_init(&m, MEMLIMIT_MSG_BYE);
        m.u.bye.reason = reason;
        snprintf(f, sizeof f, "reason=%u", reason);
        line(&m, sizeof m, f);
}

/* A valid LEVEL changed by one thing, or cut to len bytes. */
static void bad_level(size_t len, uint32_t magic, uint16_t version, uint16_t type, uint32_t seq, uint32_t lvl, uint32_t actions)
{
        struct memlimit_msg m[2];
        memset(m, 0, sizeof m);
        memlimit_msg_init(&m[0], MEMLIMIT_MSG_LEVEL);
        m[0].magic = magic;
        m[0].version = version;
        m[0].type = type;
        m[0].seq = seq;
        m[0].u.level.level = lvl;
        m[0].u.level.actions = actions;
        line(&m[0], len, "");
}

int main(void)
{
        hello(0, 4242, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, "python3");
        hello(MEMLIMIT_HELLO_FORKED, 1, MEMLIMIT_ACT_ALL, "go-cache");
        hello(MEMLIMIT_HELLO_PRELOAD, 4294967295u, 0, "x");
        welcome(0, 134217728, 127506841, MEMLIMIT_PROTO_NORMAL, 0, 0, 1);
        welcome(17, UINT64_MAX, UINT64_MAX, MEMLIMIT_PROTO_CRITICAL, MEMLIMIT_ACT_ALL, 1u << 20, 4294967295u);
        level(1, MEMLIMIT_PROTO_MODERATE, MEMLIMIT_ACT_TRIM, 1048576, 125829120, 0);
        level(4294967295u, MEMLIMIT_PROTO_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 0, UINT64_MAX, 3);
        level(9, MEMLIMIT_PROTO_NORMAL, 0, 0, 1, 0);
        level(10, MEMLIMIT_PROTO_CRITICAL, MEMLIMIT_ACT_SHED, 0, 268435456, 0);
        result(3, 0, MEMLIMIT_ACT_TRIM, 2, 2097152, 150);
        result(4, MEMLIMIT_RESULT_FUTILE, MEMLIMIT_ACT_COLLECT, 1, 0, 9000);
        result(0, MEMLIMIT_RESULT_NO_HANDLER, MEMLIMIT_ACT_SHED, 0, 0, 0);
        result(5, MEMLIMIT_RESULT_SKIPPED_BUDGET | MEMLIMIT_RESULT_SKIPPED_FUTILE, MEMLIMIT_ACT_TRIM, 0, 0, UINT64_MAX);
        for (uint32_t r = 0; r < MEMLIMIT_BYE_REASON_MAX; r++)
                bye(r);
        /* rejected: another version (told apart from garbage even when short), then garbage */
        bad_level(MEMLIMIT_MSG_SIZE, MEMLIMIT_MAGIC, 2, MEMLIMIT_MSG_LEVEL, 1, 0, 0);
        bad_level(8, MEMLIMIT_MAGIC, 7, MEMLIMIT_MSG_LEVEL, 0, 0, 0);
        bad_level(MEMLIMIT_MSG_SIZE, 0x4c4d454e, 1, MEMLIMIT_MSG_LEVEL, 1, 0, 0);
        bad_level(MEMLIMIT_MSG_SIZE - 1, MEMLIMIT_MAGIC, 1, MEMLIMIT_MSG_LEVEL, 1, 0, 0);
        bad_level(7, MEMLIMIT_MAGIC, 1, MEMLIMIT_MSG_LEVEL, 1, 0, 0);
        bad_level(MEMLIMIT_MSG_SIZE, MEMLIMIT_MAGIC, 1, 0, 1, 0, 0);
        bad_level(MEMLIMIT_MSG_SIZE, MEMLIMIT_MAGIC, 1, MEMLIMIT_MSG_TYPE_MAX, 1, 0, 0);
        bad_level(MEMLIMIT_MSG_SIZE, MEMLIMIT_MAGIC, 1, MEMLIMIT_MSG_LEVEL, 0, 0, 0);
        bad_level(MEMLIMIT_MSG_SIZE, MEMLIMIT_MAGIC, 1, MEMLIMIT_MSG_LEVEL, 1, MEMLIMIT_PROTO_LEVEL_MAX, 0);
        bad_level(MEMLIMIT_MSG_SIZE, MEMLIMIT_MAGIC, 1, MEMLIMIT_MSG_LEVEL, 1, 0, 8);
        {
                struct memlimit_msg m;
                memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
                m.u.result.action = MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT;
                line(&m, sizeof m, "action=3 callbacks=0 freed=0 usec=0");
                memlimit_msg_init(&m, MEMLIMIT_MSG_BYE);
                m.u.bye.reason = MEMLIMIT_BYE_REASON_MAX;
                line(&m, sizeof m, "reason=4");
                memlimit_msg_init(&m, MEMLIMIT_MSG_HELLO);
                memset(m.u.hello.comm, 'a', sizeof m.u.hello.comm);
                line(&m, sizeof m, "pid=0 caps=0 comm=aaaaaaaaaaaaaaaa");
        }
        return fflush(stdout) == 0 ? 0 : 1;
}
