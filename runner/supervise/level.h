/* level: the level engine and the stall detector. Pure: samples with their clock in, decisions out;
 * no files, no time source. Tested with synthetic sample streams. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "config/policy.h"
#include "util.h"

struct level_sample {
        usec_t t;                 /* any monotonic origin */
        uint64_t usage;           /* bytes */
        bool psi_valid;
        uint32_t psi_some_ppm;    /* memory pressure "some" avg10, parts per million */
        uint32_t psi_full_ppm;
};

enum level_reason { REASON_NONE, REASON_USAGE, REASON_PSI_SOME, REASON_PSI_FULL, REASON_PREDICT, REASON_RECOVERED,
                    _REASON_MAX };

struct level_decision {
        enum level from, to;
        bool run_actions;         /* entered upward, or repeating at the same level */
        bool repeat;
        enum level_reason reason;
        usec_t eta;               /* predicted time to the hard limit; USEC_INFINITY when not growing */
};

struct level_engine {
        const struct policy *p;
        uint64_t limit;           /* hard limit; UINT64_MAX disables usage and prediction */
        enum level cur;
        usec_t below_since;       /* since when cur's exit condition holds; USEC_INFINITY = not holding */
        uint64_t floor;           /* lowest usage since the level's actions last ran */
        bool have_last;
        usec_t last_t;
        uint64_t last_usage;
        double rate;              /* smoothed growth, bytes/s */
        double inst_rate;         /* growth between the last two samples, bytes/s */
};

void level_engine_init(struct level_engine *e, const struct policy *p, uint64_t limit);
/* 1 and *ret filled when the level changes or actions should repeat; 0 otherwise. */
int level_feed(struct level_engine *e, const struct level_sample *s, struct level_decision *ret);
/* Usage in bytes at which a level above the current one is entered by usage; UINT64_MAX if none. */
uint64_t level_next_threshold(const struct level_engine *e);
/* Usage threshold of level l in bytes (UINT64_MAX if unset). */
uint64_t level_usage_threshold(const struct level_engine *e, enum level l);
/* Predicted time until usage reaches the limit at the current growth rate; USEC_INFINITY if not
 * growing. */
usec_t level_eta(const struct level_engine *e, uint64_t usage);
const char *level_reason_name(enum level_reason r);

/* "At memory.high": the kernel keeps usage around high by throttling, so allow 2% slack. False for
 * an unlimited (UINT64_MAX) high. */
static inline bool level_at_high(uint64_t usage, uint64_t high)
{
        return high != UINT64_MAX && usage + high / 50 >= high;
}

/* --- stall: a sandbox parked above memory.high, throttled, with nothing being freed --- */
struct stall_sample {
        usec_t t;
        uint64_t usage, high;     /* memory.current, memory.high */
        uint64_t ev_high;         /* memory.events "high" counter */
        bool psi_valid;
        uint32_t psi_full_ppm;
        uint64_t freed_total;     /* bytes freed so far by limiters and reclaim */
};

struct stall_detector {
        const struct policy *p;
        usec_t since;             /* USEC_INFINITY: not stalled */
        uint64_t last_ev_high, last_freed;
        bool primed;
};

void stall_init(struct stall_detector *d, const struct policy *p);
/* 1 when the stall has lasted stall.duration (the detector then restarts its clock). */
int stall_feed(struct stall_detector *d, const struct stall_sample *s);
