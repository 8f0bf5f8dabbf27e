/* lsrv: the limiter server, memrun's end of the libmemlimit wire protocol (limiter/memlimit_proto.h).
 * Owns the listening socket, the table of attached processes, what they reported back, and an epoll
 * fd of its own that the supervisor's loop watches as one source. Never blocks on a client; memory is
 * fixed at open (a static table, at most one undelivered message per client, no allocation). */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/policy.h"
#include "limiter/memlimit_proto.h"
#include "cgroup/cg.h"
#include "util.h"

#define LSRV_MAX_CLIENTS 512          /* processes attached at once; more are turned away (BYE FULL) */
#define LSRV_MAX_MALFORMED MEMLIMIT_MAX_MALFORMED
#define LSRV_READ_BUDGET 32           /* messages read from one client per dispatch: floods wait their turn */
#define LSRV_ACCEPT_BUDGET 16         /* connections accepted per dispatch */
#define LSRV_SNDBUF 8192              /* per-client socket send buffer: caps kernel memory per slow client */

/* One RESULT, as handed to the result callback. */
struct lsrv_result {
        uint32_t client_id;
        pid_t pid;
        uint32_t seq;                 /* the LEVEL it answers (0: none) */
        enum action_type action;      /* ACTION_TRIM, ACTION_COLLECT or ACTION_SHED */
        uint32_t flags;               /* MEMLIMIT_RESULT_* */
        uint32_t callbacks;
        uint64_t freed;
        usec_t usec;                  /* the time the action took, as the client reported it */
};
typedef void (*lsrv_result_fn)(const struct lsrv_result *r, void *userdata);

/* One ask round (lsrv_ask): the clients it went to, and what they gave back once every one of them
 * answered, timed out, hung up, or had the ask withdrawn (a newer message replaced it undelivered). */
struct lsrv_round {
        uint32_t seq;                 /* 0: free slot */
        uint32_t actions;
        unsigned asked, answered;
        uint64_t goal, freed;
        bool deferred;                /* a client put its part off: its CPU budget was spent */
        usec_t sent;                  /* CLOCK_MONOTONIC */
        usec_t latency;               /* when it completed, from sent */
};
typedef void (*lsrv_round_fn)(const struct lsrv_round *r, void *userdata);

#define LSRV_ROUNDS 64                /* ask rounds unanswered at once; more wait for a free one */
#define LSRV_BACKOFF_MIN_USEC (50 * USEC_PER_MSEC)  /* a client that gave back nothing rests this long ... */
#define LSRV_BACKOFF_MAX_USEC (500 * USEC_PER_MSEC) /* ... doubling each time, up to this (2 asks a second) */
#define LSRV_SHARE_FLOOR (1024u * 1024)    /* goal shares weigh recent giving plus this */

struct lsrv_stats {
        unsigned clients;             /* attached now (HELLO accepted) */
        unsigned connected;           /* connections now, attached or not */
        unsigned pending;             /* clients with an undelivered message */
        uint64_t clients_ever;        /* HELLOs accepted */
        uint64_t results;             /* RESULTs received */
        uint64_t freed;               /* their sums (saturating) */
        usec_t usec;
        uint64_t futile;              /* RESULTs flagged FUTILE or SKIPPED_FUTILE */
        uint64_t budget_skipped;      /* RESULTs flagged SKIPPED_BUDGET */
        uint64_t asks_deferred;       /* asks answered (or written off) with such a RESULT among theirs */
        uint64_t malformed;           /* messages dropped as malformed */
        uint64_t kicked;              /* clients disconnected for sending too many of them */
        uint64_t refused;             /* peers outside the sandbox, or whose cgroup could not be read */
        uint64_t full;                /* connections turned away: table full */
        uint64_t bad_version;         /* clients disconnected for speaking another version */
        uint64_t sent;                /* WELCOME and LEVEL messages delivered */
        uint64_t limits_sent;         /* WELCOMEs sent because the limits changed */
        uint64_t slow;                /* sends that found a client's socket full (EAGAIN) */
        uint64_t coalesced;           /* LEVELs replaced, undelivered, by a newer one */
        uint64_t asks, rounds;        /* asks sent to clients, rounds they made up */
        uint64_t ask_timeouts;        /* asks written off unanswered */
        uint64_t asked;               /* bytes asked, summed over asks (saturating) */
        /* The latest broadcast and what has come back for it so far. */
        uint32_t seq;
        uint32_t seq_clients;         /* clients it was sent or queued to */
        uint32_t seq_results, seq_futile;
        uint64_t seq_freed;
};

struct lsrv_client {
        int fd;                       /* -1: free slot */
        uint32_t gen;                 /* which connection holds the slot, for stale epoll events */
        pid_t pid;                    /* SO_PEERCRED at connect */
        uint32_t id;
        bool attached;                /* HELLO accepted */
        bool has_pending;             /* pending holds an undelivered WELCOME or LEVEL */
        bool limits_due;              /* a WELCOME with the limits was replaced undelivered, or waits
                                       * behind the pending message: send it once that one is out */
        bool want_out;                /* EPOLLOUT armed */
        uint32_t caps;
        uint32_t malformed;
        uint32_t coalesced;           /* LEVELs replaced since the last delivery */
        uint64_t results, freed;
        uint32_t log_seq, log_n;      /* RESULT log lines for log_seq so far */
        /* The ask outstanding (lsrv_ask): no new one until it is answered or written off. */
        uint32_t ask_seq;             /* 0: none */
        uint32_t ask_left;            /* action bits not answered yet */
        uint64_t ask_goal, ask_freed;
        bool ask_deferred;            /* a RESULT for it said SKIPPED_BUDGET */
        usec_t ask_sent;
        uint64_t credit;              /* smoothed bytes given back per ask: weighs its next share */
        usec_t backoff, rest_until;
        uint32_t last_actions;        /* of the latest ask: a rest holds for these only */
        char comm[16];                /* sanitized, for logs */
        struct memlimit_msg pending;
};

struct lsrv {
        int epoll_fd, listen_fd, proc_fd;
        bool listen_armed;            /* false while accept(2) is out of fds/memory */
        enum cg_mode mode;
        char sandbox[PATH_MAX];       /* memory-hierarchy path peers must be in or beneath */
        char endpoint[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
        uint64_t limit, soft;
        uint32_t level, actions;      /* the latest broadcast, for WELCOME */
        uint64_t goal;
        uint32_t next_id, next_gen;
        lsrv_result_fn on_result;
        void *userdata;
        lsrv_round_fn on_round;
        void *round_userdata;
        struct lsrv_round rounds[LSRV_ROUNDS];
        struct lsrv_stats st;
        char cgbuf[16384];            /* <pid>/cgroup, read at accept */
        struct lsrv_client clients[LSRV_MAX_CLIENTS];
};

/* Make lsrv_close() safe on a server that was never opened. */
void lsrv_init(struct lsrv *s);
/* Listen on a fresh abstract socket. Peers must be in sandbox_path (the memory-hierarchy cgroup, "/..."
 * form, as struct cg_sandbox.path) or beneath it, as read from proc_root/<pid>/cgroup. The endpoint
 * string for MEMRUN_LIMITER ("@memrun-<pid>-<hex>") goes to ret_endpoint. 0 or -errno; on failure
 * nothing is left open. */
int lsrv_open(struct lsrv *s, enum cg_mode mode, const char *sandbox_path, const char *proc_root,
              char *ret_endpoint, size_t size);
/* The one fd for the supervisor's epoll (EPOLLIN): when readable, call lsrv_dispatch(). */
int lsrv_fd(const struct lsrv *s);
const char *lsrv_endpoint(const struct lsrv *s);
/* The limits (bytes, UINT64_MAX: none): announced in WELCOME, and when they change, a WELCOME with
 * seq 0 to every attached client (a version-1 client takes a WELCOME at any time, and with seq 0 it
 * leaves its level alone), after whatever is pending for it. */
void lsrv_set_limits(struct lsrv *s, uint64_t limit, uint64_t soft);
/* Called for every valid RESULT, from lsrv_dispatch. */
void lsrv_on_result(struct lsrv *s, lsrv_result_fn fn, void *userdata);
/* One round without waiting: accept, read (at most LSRV_READ_BUDGET messages per client), flush
 * pending sends. Returns the number of ready fds handled, or -errno if epoll failed. */
int lsrv_dispatch(struct lsrv *s);
/* Send a LEVEL to every attached client. actions: bits (1u << ACTION_TRIM | ACTION_COLLECT |
 * ACTION_SHED), equal to MEMLIMIT_ACT_*. Clients whose socket is full get it queued, replacing what
 * was queued. Returns how many clients it was sent or queued to (>= 0), or -EINVAL. The seq it used
 * goes to *ret_seq (may be NULL). */
int lsrv_broadcast(struct lsrv *s, enum level level, uint32_t actions, uint64_t goal_bytes,
                   uint64_t usage_bytes, uint32_t *ret_seq);
void lsrv_stats(const struct lsrv *s, struct lsrv_stats *ret);
/* Called when an ask round completes, from lsrv_dispatch, lsrv_ask_state or lsrv_broadcast. */
void lsrv_on_round(struct lsrv *s, lsrv_round_fn fn, void *userdata);
/* The governor's ask: a LEVEL with these actions to every attached client that has no ask outstanding
 * and is not resting after giving back nothing to the same actions, goal_bytes shared among them by
 * what each gave back lately. Returns how many were asked (>= 0; 0 when none could be), -EINVAL, or -ENOBUFS when every
 * round slot is in use. The seq goes to *ret_seq (may be NULL). */
int lsrv_ask(struct lsrv *s, enum level level, uint32_t actions, uint64_t goal_bytes, uint64_t usage_bytes,
             uint32_t *ret_seq);
/* Write off asks older than timeout (their rounds complete with what came back), then: bytes asked
 * and not answered, and how many clients have no ask outstanding (some may be resting: lsrv_ask
 * skips those unless the actions changed). */
void lsrv_ask_state(struct lsrv *s, usec_t timeout, uint64_t *ret_outstanding, unsigned *ret_askable);
/* Say BYE to everyone, close everything. Accepts NULL and never-opened (lsrv_init) servers. */
void lsrv_close(struct lsrv *s);

