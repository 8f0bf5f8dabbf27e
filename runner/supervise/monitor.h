/* monitor: how the supervisor watches the sandbox (supervisor.h has the calls that take the
 * supervisor): the sampling timer, memory events (v2 memory.events / v1 OOM eventfd), PSI triggers,
 * v1 usage thresholds and pressure levels, each a source of the event core. Every wake-up samples
 * usage and PSI and feeds the level engine and the governor. The sampling period is pure. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* The sampling period: slow far from the next threshold, fast near it and while the governor holds
 * a level. Pure (earlyoom's sleep_time_ms): the inputs below, nothing else. */
struct interval_in {
        usec_t lo, hi;                  /* [monitor] interval_min/max */
        usec_t last;                    /* the previous period (0: first) */
        uint64_t usage, limit, next_threshold;   /* bytes; UINT64_MAX: none */
        double rate;                    /* bytes/s, the faster of smoothed and instantaneous growth */
        bool predicting;                /* a level has a predict condition */
        bool in_level;                  /* a level above ok is held */
        usec_t dwell;                   /* [recovery] dwell */
        bool holding;                   /* the governor has usage above target */
        uint64_t soft;                  /* the soft limit, bytes; UINT64_MAX: none */
        double alloc_rate;              /* the governor's fast-rising allocation estimate (growth plus
                                         * what was given back), bytes/s */
        bool no_high;                   /* v1: nothing but the next sample stops a program that heads past
                                         * the soft limit */
        bool v2;                        /* no usage notifications: cap idle periods */
        bool v1_pending;                /* v1 thresholds not registered yet */
};
#define MONITOR_V2_IDLE_MAX_USEC (100 * USEC_PER_MSEC) /* cgroup v2 has no usage notification: never sample slower */
#define MONITOR_HOLD_USEC (20 * USEC_PER_MSEC)  /* at most this while usage is above the governor's target */
#define MONITOR_REASK_USEC (5 * USEC_PER_MSEC)  /* a reply while above target brings the next sample this close */
#define MONITOR_MIN_USEC USEC_PER_MSEC          /* never sample faster */
#define MONITOR_GAP_USEC USEC_PER_SEC           /* memrun not running this long (and twice its period): said */
#define MONITOR_GAP_SLACK_USEC (100 * USEC_PER_MSEC) /* after SIGCONT: a sample this late was missed */
#define MONITOR_LIMIT_CHECK_USEC USEC_PER_SEC   /* the hard limit read back at most this often */
#define MONITOR_FROZEN_CHECK_USEC (100 * USEC_PER_MSEC) /* cgroup.events "frozen" read at most this often */
usec_t monitor_interval(const struct interval_in *in);
