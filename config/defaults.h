/* defaults: the built-in policy's numbers, shared by memrun (config/policy.c) and libmemlimit's
 * standalone mode (limiter/memlimit_standalone.c), which must agree. Header-only: the library links
 * nothing of memrun. */
#pragma once

/* Level thresholds, in percent of the soft limit: moderate, high, critical. */
#define DEFAULT_MODERATE_PCT 70
#define DEFAULT_HIGH_PCT 85
#define DEFAULT_CRITICAL_PCT 95
/* A level is left this far below its threshold. */
#define DEFAULT_HYSTERESIS_PCT 5
/* The soft limit (memory.high) when none is given, in ppm of the hard limit: 90%. Only
 * limits_soft_default (runner/supervise/limits.c) reads it. */
#define DEFAULT_SOFT_PPM 900000
