/* actions: what memrun does: the governor's asks (limiters: trim/collect/shed; kernel reclaim), its
 * give-up, what a level does on entry (signal the command, run hooks; with hold = no, everything),
 * and the stall escalation. Nothing here blocks the event loop: reclaim and hooks run in child
 * processes, limiter messages never wait. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/policy.h"
#include "cgroup/cg.h"
#include "supervise/governor.h"
#include "supervise/level.h"
#include "supervise/report.h"

#define ACTION_MASK(t) (1u << (t))
#define ACTIONS_MAX_PROCS 8

/* How actions reach the limiters in the sandbox (the limiter server, or a fake in tests). */
struct limiter_ops {
        /* Send a level and the actions to run; returns how many limiters it reached, -errno. */
        int (*broadcast)(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage,
                         uint32_t *ret_seq);
        /* The governor's ask, to the clients free to answer; returns how many were asked, -errno. */
        int (*ask)(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage, uint32_t *ret_seq);
        /* Attached clients; bytes asked and unanswered (asks older than timeout written off); how many
         * could be asked now. */
        void (*state)(void *ctx, usec_t timeout, unsigned *ret_clients, uint64_t *ret_outstanding,
                      unsigned *ret_askable);
        /* The soft limit the program should hold changed (the governor gave up: none; it resumed). */
        void (*soft)(void *ctx, uint64_t soft);
        void *ctx;
};

struct action_proc {
        pid_t pid;                /* 0 = free slot */
        usec_t started;
        struct report_action *entry;
        const struct policy_action *pa;
        uint64_t usage_before;
        bool reclaim;
        bool governor;            /* a reclaim the governor asked for: its reply goes back to it */
        uint64_t asked;
        bool slack;               /* a governor reclaim of the kernel's slack only: no escalation reply */
        bool timed_out;           /* a hook killed for overrunning: not killed again while it dies */
};

struct actions {
        const struct policy *p;
        struct cg_sandbox *sb;
        pid_t child;
        uint64_t limit, soft, soft_configured; /* memory.max; memory.high now and as configured */
        struct limiter_ops limiter;
        struct report_log *log;
        usec_t t0;                /* report times are relative to this */
        struct action_proc procs[ACTIONS_MAX_PROCS];
        uint64_t freed_total;     /* by reclaim and limiters: the stall detector watches it */
        bool said_no_reclaim, said_no_limiter;
        int proc_fd;              /* /proc, to see which signals the command catches; -1: unknown */
        struct governor gov;
        bool lifted;              /* the governor gave up: memory.high is at max, a->soft is what it was */
        uint64_t giveup_oom_kills; /* memory.events oom_kill at the give-up */
        bool gov_reclaiming;
        unsigned said_unhandled;  /* signal actions skipped, for the log */
        struct gov_decision last; /* the latest decision, for the timeline */
        uint64_t tl_asked, tl_freed;  /* bytes asked / given back since the last timeline row */
};

void actions_init(struct actions *a, const struct policy *p, struct cg_sandbox *sb, pid_t child, uint64_t limit,
                  uint64_t soft, struct report_log *log, usec_t t0);
/* The governor, once per sample: ask what the excess over target needs, escalate, give up. */
void actions_govern(struct actions *a, const struct level_engine *e, const struct level_sample *s, bool entered,
                    usec_t now);
/* A limiter round came back: every client asked answered (or timed out), latency after it went out;
 * deferred: a client put its part off for its CPU budget (gov_reply). */
void actions_round(struct actions *a, uint64_t goal, uint64_t freed, bool deferred, usec_t latency);
/* Level l was entered or left (d says why); usage is the sample that led here. With [governor]
 * hold, only signal and exec actions run here (trim/collect/shed/reclaim are the governor's). */
void actions_run(struct actions *a, const struct level_engine *e, const struct level_decision *d, uint64_t usage,
                 usec_t now);
/* A child exited: is it one of ours (hook, reclaim)? Records the outcome. */
bool actions_reaped(struct actions *a, pid_t pid, int status, uint64_t usage_now, usec_t now);
/* Kill hooks that overran hook_timeout. */
void actions_tick(struct actions *a, usec_t now);
/* A limiter answered: bytes freed by one action of broadcast seq, and how long that took it. */
void actions_limiter_result(struct actions *a, uint32_t seq, enum action_type type, uint64_t freed, usec_t took);
/* Stall escalation per [stall]: raise memory.high or kill. Returns 1 if the sandbox was killed. */
int actions_stall(struct actions *a, uint64_t usage, usec_t now);
/* At exit: kill what still runs and reap it. */
void actions_shutdown(struct actions *a, usec_t now);
/* Bytes to give back at level l: from usage down to the level's threshold less hysteresis. */
uint64_t actions_goal(const struct level_engine *e, enum level l, uint64_t usage);
