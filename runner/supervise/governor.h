/* governor: the soft limit as a control loop, not an alarm (docs/ARCHITECTURE.md). While usage is above the
 * current level's target it keeps asking: each ask's goal is the excess plus the growth expected until
 * replies arrive, minus what is already asked and unanswered; asks that come back short escalate
 * (trim -> collect -> reclaim -> shed, as far as the level's actions allow); once nothing can be freed
 * and usage sits at the soft limit for [governor] giveup, it gives up so that memory.max acts.
 * Pure: samples, replies and their clock in, asks out; no files, no time source. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "config/policy.h"
#include "util.h"

/* Escalation steps, cheapest first. Shedding comes last: it is the one that costs the program's
 * users something (refused work); kernel reclaim of page cache costs them nothing they can see. */
enum gov_step { GOV_TRIM, GOV_COLLECT, GOV_RECLAIM, GOV_SHED, _GOV_STEP_MAX };

#define GOV_MIN_ASK (64u * 1024)          /* smaller excesses are not worth a message */
#define GOV_SHORT_STREAK 2                /* short replies in a row before escalating (empty ones: one) */
#define GOV_GOOD_STREAK 4                 /* full replies in a row before stepping back down */

struct gov_sample {
        usec_t t;                 /* any monotonic origin */
        uint64_t usage;
        enum level level;         /* the level engine's level after this sample */
        bool entered;             /* the level was entered upward at this sample */
        double rate;              /* smoothed growth, bytes/s (may be negative) */
        uint64_t soft;            /* the soft limit in force (memory.high); UINT64_MAX: none */
        uint64_t reclaimable;     /* what the kernel could still reclaim; UINT64_MAX: unknown */
        bool can_reclaim;         /* memory.reclaim exists */
        bool reclaim_running;
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
        bool resume;              /* after a give-up, usage is back under target: restore memory.high */
        enum gov_step step;       /* the step in force */
        uint64_t target;          /* bytes; UINT64_MAX: none at this level */
};

struct governor {
        const struct policy *p;
        uint64_t limit;
        enum gov_step step;       /* escalation reached (may be above what a level allows) */
        unsigned short_streak, good_streak;
        bool exhausted;           /* escalated past the last available step: nothing more to ask */
        bool given_up, shedding;
        usec_t below_since;       /* usage under target since (for de-escalation); USEC_INFINITY: not */
        usec_t exhausted_since;   /* exhausted and at the soft limit since; USEC_INFINITY: not */
        usec_t latency;           /* smoothed reply latency */
        usec_t gave_up_t;         /* when it gave up; USEC_INFINITY: never */
        unsigned giveups;
        enum gov_step step_max;   /* highest step used, for the report */
        /* The program's own allocation rate: usage growth plus what was given back meanwhile (a held
         * program's usage is flat while it allocates fast). */
        bool have_last;
        usec_t last_t;
        uint64_t last_usage, freed_since;
        double alloc_rate;        /* bytes/s, smoothed */
};

void gov_init(struct governor *g, const struct policy *p, uint64_t limit);
/* Where the governor holds usage at level l with soft limit soft: the lowest usage threshold of the
 * levels up to l, less hysteresis, and never above the soft limit less Go's headroom (max(3%, 1 MiB)).
 * UINT64_MAX: none. */
uint64_t gov_target(const struct governor *g, enum level l, uint64_t soft);
/* One sample: what to ask now. Always fills *ret. */
void gov_step(struct governor *g, const struct gov_sample *s, struct gov_decision *ret);
/* An ask came back (all clients of one limiter round, or one memory.reclaim): asked and freed bytes,
 * how long the replies took (USEC_INFINITY: not timed). */
void gov_reply(struct governor *g, bool reclaim, uint64_t asked, uint64_t freed, usec_t latency);
const char *gov_step_name(enum gov_step s);
/* ACTION_MASK() bits of the limiter actions a decision at step s asks at level l (cumulative:
 * collecting still trims). */
uint32_t gov_limiter_actions(const struct policy *p, enum level l, enum gov_step s);
