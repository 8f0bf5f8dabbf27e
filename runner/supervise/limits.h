/* limits: the sandbox's budget, one struct changed in one place. The hard limit (memory.max), the
 * soft one (memory.high, the governor's setpoint), where the soft one came from, swap, and with
 * --in-place the enclosing cgroup's limit that nothing memrun does may exceed. Pure rules; the
 * supervisor (supervisor_set_limits) writes them to the kernel and re-derives what follows. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum limits_soft_from {
        LIMITS_SOFT_DEFAULT,    /* DEFAULT_SOFT_PPM of the hard limit */
        LIMITS_SOFT_GIVEN,      /* --soft, soft=, memrunctl set --soft */
        LIMITS_SOFT_ENCLOSING,  /* --in-place: the enclosing cgroup's memory.high */
        LIMITS_SOFT_SHARE,      /* memrunctl set --limit alone: the same share of the new limit */
        _LIMITS_SOFT_FROM_MAX,
};

struct limits {
        uint64_t hard, soft, swap;        /* bytes; SIZE_MAX_VALUE (UINT64_MAX): max */
        enum limits_soft_from soft_from;
        uint64_t ceiling;                 /* --in-place: the enclosing memory.max; UINT64_MAX: none */
};

#define LIMITS_MIN (1u << 20) /* no program runs in less: memrunctl set refuses it */

const char *limits_soft_from_name(enum limits_soft_from f);
/* The soft limit when none is given: DEFAULT_SOFT_PPM of hard (max stays max). The one place. */
uint64_t limits_soft_default(uint64_t hard);
/* The soft limit that keeps soft's share of old_hard for new_hard (memrunctl set --limit alone). */
uint64_t limits_soft_keep_share(uint64_t soft, uint64_t old_hard, uint64_t new_hard);
/* --in-place: what is in force inside an enclosing cgroup with max and high (UINT64_MAX: none).
 * asked: the command line's (hard may only be lower than max; a given soft is kept under hard). */
struct limits limits_in_place(const struct limits *asked, bool soft_given, uint64_t max, uint64_t high);
/* memrunctl set: cur changed by what was given. 0 and *ret, or -EINVAL with the reason in why. */
int limits_change(const struct limits *cur, bool has_hard, uint64_t hard, bool has_soft, uint64_t soft,
                  struct limits *ret, char *why, size_t why_size);
