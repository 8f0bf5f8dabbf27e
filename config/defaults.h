/* defaults: the built-in policy's numbers, shared by memrun (config/policy.c) and libmemlimit's
 * standalone mode (limiter/memlimit_standalone.c), which must agree. Header-only: the library links
 * nothing of memrun. */
#pragma once

/* Level thresholds, in percent of the hard limit: moderate, high, critical. The standalone mode's
 * hard limit is the one memrun would pair with its soft limit: soft / DEFAULT_SOFT_PPM. */
#define DEFAULT_MODERATE_PCT 70
#define DEFAULT_HIGH_PCT 85
#define DEFAULT_CRITICAL_PCT 95
/* A level is left this far below its threshold. */
#define DEFAULT_HYSTERESIS_PCT 5
/* The soft limit (memory.high) when none is given, in ppm of the hard limit: 90%.
 * limits_soft_default (runner/supervise/limits.c) and the standalone mode (for its hard limit) read it. */
#define DEFAULT_SOFT_PPM 900000
/* [recovery] dwell and [governor] giveup. */
#define DEFAULT_DWELL_MSEC 2000
#define DEFAULT_GIVEUP_MSEC 1000
