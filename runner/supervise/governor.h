/* governor: memrun's policy fed to the one control law (limiter/memlimit_law.h, shared with
 * libmemlimit's standalone mode). This file decides what the law may use: the steps the policy names
 * (trim, collect and reclaim from any level; shedding only at a level that lists it), the operator's
 * [governor] target, [governor] giveup and [recovery] dwell; the law decides when and how much to ask.
 * Pure: samples, replies and their clock in, asks out; no files, no time source. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "config/policy.h"
#include "limiter/memlimit_law.h"
#include "util.h"

/* Escalation steps, cheapest first (the law's). Shedding comes last: it is the one that costs the
 * program's users something (refused work); kernel reclaim of page cache costs them nothing they see. */
enum gov_step { GOV_TRIM = LAW_TRIM, GOV_COLLECT = LAW_COLLECT, GOV_RECLAIM = LAW_RECLAIM, GOV_SHED = LAW_SHED,
                _GOV_STEP_MAX = LAW_STEPS };

#define GOV_MIN_ASK LAW_MIN_ASK

struct gov_sample {
        usec_t t;                 /* any monotonic origin */
        uint64_t usage;
        enum level level;         /* the level engine's level after this sample */
        bool entered;             /* a level was entered upward at this sample by pressure or prediction */
        double rate;              /* smoothed growth, bytes/s (may be negative) */
        uint64_t soft;            /* the soft limit in force (memory.high); UINT64_MAX: none */
        uint64_t reclaimable;     /* what the kernel could still reclaim; UINT64_MAX: unknown */
        bool can_reclaim;         /* memory.reclaim exists */
        bool reclaim_running;
        uint64_t slack;           /* charged anon nobody maps (huge-page tails): reclaim's first */
        unsigned clients;         /* limiters attached */
        unsigned askable;         /* of them: no ask outstanding, not backing off after futile replies */
        uint64_t outstanding;     /* bytes asked of limiters and not answered yet */
};

struct gov_decision {
        uint32_t limiter;         /* ACTION_MASK() bits to ask of the askable limiters; 0: no ask */
        uint64_t limiter_goal;    /* bytes, for all of them together */
        uint64_t reclaim;         /* bytes to ask of memory.reclaim; 0: none */
        bool shed_changed;        /* shedding starts or ends: tell every limiter */
        bool shedding;
        bool giveup;              /* stop asking; lift memory.high so that memory.max acts */
        bool at_once;             /* ... at once: nothing to give (else: short answers at the soft limit) */
        bool resume;              /* after a give-up, usage is back under the setpoint: restore memory.high */
        enum gov_step step;       /* the step in force */
        uint64_t setpoint;        /* bytes; UINT64_MAX: none (no soft limit, no target) */
        uint64_t headroom;        /* how far under the soft limit the setpoint is */
};

struct governor {
        const struct policy *p;
        uint64_t limit;
        bool active;              /* some level names a step (trim, collect, reclaim, shed): else there
                                   * is nothing to ask, and nothing to give up, memory.high acts alone */
        struct law law;
        usec_t deaf_until;        /* empty answers before then were asks the frozen program could not hear */
};

void gov_init(struct governor *g, const struct policy *p, uint64_t limit);
/* The operator's [governor] target in bytes for hard limit limit; UINT64_MAX: none. */
uint64_t gov_policy_target(const struct policy *p, uint64_t limit);
/* Where the governor holds usage now with soft limit soft, the usage growing at rate bytes/s (see the
 * law). UINT64_MAX: none. */
uint64_t gov_setpoint(const struct governor *g, uint64_t soft, double rate);
/* One sample: what to ask now. Always fills *ret. */
void gov_step(struct governor *g, const struct gov_sample *s, struct gov_decision *ret);
/* An ask came back (all clients of one limiter round, or one memory.reclaim): asked and freed bytes,
 * whether a client put it off for its CPU budget (law_reply), how long the replies took
 * (USEC_INFINITY: not timed). */
void gov_reply(struct governor *g, bool reclaim, uint64_t asked, uint64_t freed, bool deferred, usec_t latency);
/* A reclaim of the kernel's slack alone came back (law_slack_reply). */
void gov_slack_reply(struct governor *g, uint64_t asked, uint64_t freed);
/* The sandbox thawed at now after a freeze: the law forgets, and for ask_timeout more the empty
 * answers (asks that timed out while it was frozen) are not counted. */
void gov_thawed(struct governor *g, usec_t now, usec_t ask_timeout);
const char *gov_step_name(enum gov_step s);
/* ACTION_MASK() bits of the limiter actions a decision at step s asks at level l (cumulative:
 * collecting still trims). */
uint32_t gov_limiter_actions(const struct policy *p, enum level l, enum gov_step s);
