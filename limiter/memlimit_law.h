/* memlimit_law: the governor's control law, one module compiled into memrun (runner/supervise/governor.c
 * adapts memrun's policy to it) and into libmemlimit's standalone mode (limiter/memlimit_standalone.c).
 * docs/governor.md explains it; in short, Go's GOMEMLIMIT pacer across a process boundary:
 *   - The setpoint is the soft limit less headroom: max(3% of it, 1 MiB, what the program allocates
 *     before an ask's reply lands), or the operator's lower target. Usage above it is asked back at
 *     every sample, the goal being the excess less what is asked and unanswered: small asks near the
 *     setpoint, sized to what the program can answer without stalling.
 *   - Asks that come back short escalate: trim -> collect -> reclaim -> shed, as far as the caller's
 *     steps allow; replies that give back what was asked take it back down.
 *   - When there is provably nothing to give (no step left, or the last one answered nothing twice in a
 *     row) and usage heads for the soft limit, the law gives up at once: the kernel's throttle at memory.high must
 *     not delay the OOM killer (golang/go#58106: die fast rather than degrade). Short answers that
 *     still give something, and asks a client put off for its CPU budget, get [governor] giveup at the
 *     soft limit first. For LAW_DETACH_GRACE_US after the last client left (once in
 *     LAW_DETACH_REGRACE_US) the law does not give up at all: most often the program is exiting.
 * Pure: samples, replies and their clock in, decisions out; no files, no clock, no libm. Self-contained:
 * the library links nothing else of memrun. Times are microseconds on any monotonic origin. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

enum law_step { LAW_TRIM, LAW_COLLECT, LAW_RECLAIM, LAW_SHED, LAW_STEPS };
#define LAW_BIT(s) (1u << (s))
#define LAW_NONE UINT64_MAX

#define LAW_HEADROOM_PPM 30000u          /* Go: max(3%, 1 MiB) below the limit */
#define LAW_HEADROOM_MIN (1024u * 1024)
#define LAW_HEADROOM_MAX_PPM 250000u      /* growth never pulls the setpoint below 75% of the soft limit */
#define LAW_MIN_ASK (64u * 1024)          /* smaller excesses are not worth a message */
#define LAW_RECLAIM_MIN (1024u * 1024)    /* less reclaimable than this: the kernel has nothing to give */
#define LAW_SLACK_OFF_US 1000000u         /* a short reclaim of the slack: the clients asked for all this long */
#define LAW_SHORT_STREAK 2                /* short replies in a row before escalating (empty ones: one) */
#define LAW_GOOD_STREAK 4                 /* full replies in a row before stepping back down */
#define LAW_EMPTY_STREAK 2                /* empty replies in a row at the last step: nothing to give */
#define LAW_DETACH_GRACE_US 1000000u      /* the last client left this recently: no give-up yet ... */
#define LAW_DETACH_REGRACE_US 10000000u   /* ... once in this long (clients coming and going cannot keep it) */
#define LAW_RISE_WINDOW_US 250000u        /* heading for the soft limit: usage rose by ... */
#define LAW_RISE_MIN (512u * 1024)        /* ... this much over its lowest of the last 1-2 windows
                                           * (0.25-0.5 s, well inside the detach grace: what the
                                           * program grew as its last client left is forgotten when
                                           * the grace ends) */

struct law_config {
        uint64_t target;          /* the operator's hold point, bytes ([governor] target); LAW_NONE: none */
        uint64_t giveup_us;       /* short answers at the soft limit this long: give up; 0: never */
        uint64_t dwell_us;        /* under the setpoint this long: one escalation step down */
        uint64_t down_margin;     /* bytes under the setpoint that count as "under" for stepping down */
};

struct law_sample {
        uint64_t t;               /* microseconds */
        uint64_t usage;
        uint64_t soft;            /* the soft limit in force; LAW_NONE: none */
        uint32_t steps;           /* LAW_BIT()s the caller's policy allows now */
        bool entered;             /* a level was entered upward by pressure or prediction (not usage) */
        double rate;              /* the caller's smoothed growth estimate, bytes/s; 0: none */
        unsigned clients;         /* who can answer trim/collect/shed */
        unsigned askable;         /* of them: free to be asked now */
        uint64_t outstanding;     /* bytes asked and not answered yet */
        bool can_reclaim, reclaim_running;
        uint64_t reclaimable;     /* LAW_NONE: unknown */
        uint64_t slack;           /* charged, mapped by nobody, freed by reclaim alone; 0: none */
};

struct law_decision {
        uint32_t ask;             /* LAW_BIT()s to ask of the clients (cumulative: collecting still trims); 0: none */
        uint64_t goal;            /* bytes, for all of them together */
        uint64_t reclaim;         /* bytes for kernel reclaim; 0: none */
        bool shed_changed, shedding;
        bool giveup;              /* stop defending the soft limit */
        bool at_once;             /* ... at once: provably nothing to give, usage heading for the soft limit */
        bool resume;              /* after a give-up, usage is back under the setpoint */
        enum law_step step;       /* in force; LAW_STEPS: none available */
        uint64_t setpoint;        /* LAW_NONE: none */
        uint64_t headroom;
};

struct law {
        struct law_config c;
        enum law_step step;       /* escalation reached (LAW_STEPS: past the last) */
        unsigned short_streak, good_streak;
        bool exhausted;           /* no step left at or above the escalation */
        bool empty;               /* the last reply gave back nothing at all */
        unsigned empty_streak;    /* ... and how many before it did too */
        bool given_up, shedding;
        uint64_t below_since;     /* under the setpoint since; LAW_NONE: not */
        uint64_t exhausted_since; /* exhausted at the soft limit since; LAW_NONE: not */
        uint64_t latency;         /* smoothed reply latency, us */
        uint64_t gave_up_t;       /* LAW_NONE: never */
        unsigned giveups;
        enum law_step step_max;   /* highest step used */
        bool have_last;
        uint64_t last_t, last_usage, freed_since;
        uint64_t period;          /* between the last two samples, us (at most 100 ms) */
        double alloc_rate;        /* the program's allocation: usage growth plus what it gave back, bytes/s */
        double alloc_fast;        /* the same rising within 0.05 s (falling as slowly): when to look next
                                   * (memrun's sampler), never the headroom (a noisy sample would widen it) */
        unsigned last_clients;    /* at the last sample */
        uint64_t detached_t;      /* the grace after the last client left started; LAW_NONE: none running */
        uint64_t grace_t;         /* the last grace started; LAW_NONE: never */
        uint64_t low_t;           /* the current rise window started (LAW_NONE: none yet) */
        uint64_t low, low_prev;   /* lowest usage in it, and in the window before (LAW_NONE: none) */
        uint64_t slack_off_t;     /* a reclaim of the slack came back short then; LAW_NONE: not */
};

void law_init(struct law *g, const struct law_config *c);
/* The setpoint for soft limit soft now (rate: the caller's growth estimate, as in a sample; 0: none), and
 * the headroom below soft it keeps. LAW_NONE: none. */
uint64_t law_setpoint(const struct law *g, uint64_t soft, double rate, uint64_t *ret_headroom);
/* One sample: what to ask now. Always fills *ret. */
void law_step(struct law *g, const struct law_sample *s, struct law_decision *ret);
/* The program could not run for a while (its cgroup frozen): what its silence said is no evidence.
 * The escalation, the empty and short answers, exhaustion and the rate estimate start over; a give-up
 * in force stays. */
void law_forget(struct law *g);
/* An ask came back: asked and freed bytes, how long the replies took (LAW_NONE: not timed). deferred:
 * a client put the ask off (its CPU budget for trimming was spent, MEMLIMIT_RESULT_SKIPPED_BUDGET):
 * the reply is short, never empty, since it says nothing about what the program could give. */
void law_reply(struct law *g, bool reclaim, uint64_t asked, uint64_t freed, bool deferred, uint64_t latency_us);
/* A reclaim of the kernel's slack alone came back (law_sample.slack): no escalation either way; if
 * it freed less than half of what it was asked, the slack is not trusted for LAW_SLACK_OFF_US. */
void law_slack_reply(struct law *g, uint64_t asked, uint64_t freed);
/* The steps at or under s that step_bits allows, without reclaim (the clients' part of an ask). */
uint32_t law_client_steps(uint32_t step_bits, enum law_step s);
