/* limits: the rules of the sandbox's budget (limits.h). Pure. */
#include "supervise/limits.h"

#include <errno.h>
#include <stdio.h>

#include "config/defaults.h"
#include "config/size.h"

const char *limits_soft_from_name(enum limits_soft_from f)
{
        static const char *const names[_LIMITS_SOFT_FROM_MAX] = {
                [LIMITS_SOFT_DEFAULT] = "default", [LIMITS_SOFT_GIVEN] = "given",
                [LIMITS_SOFT_ENCLOSING] = "enclosing", [LIMITS_SOFT_SHARE] = "share",
        };
        return f < _LIMITS_SOFT_FROM_MAX ? names[f] : "?";
}

uint64_t limits_soft_default(uint64_t hard)
{
        return hard == SIZE_MAX_VALUE ? SIZE_MAX_VALUE : size_share(hard, DEFAULT_SOFT_PPM);
}

uint64_t limits_soft_keep_share(uint64_t soft, uint64_t old_hard, uint64_t new_hard)
{
        if (new_hard == SIZE_MAX_VALUE)
                return SIZE_MAX_VALUE;
        if (!old_hard || old_hard == SIZE_MAX_VALUE || soft == SIZE_MAX_VALUE)
                return limits_soft_default(new_hard);
        uint64_t ppm = (uint64_t)((unsigned __int128)soft * 1000000 / old_hard);
        return size_share(new_hard, (uint32_t)(ppm > 1000000 ? 1000000 : ppm));
}

struct limits limits_in_place(const struct limits *asked, bool soft_given, uint64_t max, uint64_t high)
{
        struct limits l = *asked;
        /* the enclosing limit is the one that kills: a --limit may only be lower */
        if (l.hard == SIZE_MAX_VALUE || (max != SIZE_MAX_VALUE && l.hard > max))
                l.hard = max;
        l.ceiling = max;
        if (soft_given) {
                l.soft = l.soft > l.hard ? l.hard : l.soft;
                l.soft_from = LIMITS_SOFT_GIVEN;
        } else if (high != SIZE_MAX_VALUE && high < l.hard) {
                l.soft = high;
                l.soft_from = LIMITS_SOFT_ENCLOSING;
        } else {
                l.soft = limits_soft_default(l.hard);
                l.soft_from = LIMITS_SOFT_DEFAULT;
        }
        return l;
}

int limits_change(const struct limits *cur, bool has_hard, uint64_t hard, bool has_soft, uint64_t soft,
                  struct limits *ret, char *why, size_t why_size)
{
        char a[32], b[32];
        struct limits l = *cur;
        if (has_hard)
                l.hard = hard;
        if (has_soft) {
                l.soft = soft;
                l.soft_from = LIMITS_SOFT_GIVEN;
        } else if (l.soft > l.hard)
                l.soft = l.hard;
        if (l.soft > l.hard) {
                snprintf(why, why_size, "soft %s is above the limit %s", size_format(l.soft, a, sizeof a),
                         size_format(l.hard, b, sizeof b));
                return -EINVAL;
        }
        if (l.hard < LIMITS_MIN || l.soft < LIMITS_MIN) {
                snprintf(why, why_size, "%s is below %s: no program runs in that",
                         size_format(l.hard < LIMITS_MIN ? l.hard : l.soft, a, sizeof a),
                         size_format(LIMITS_MIN, b, sizeof b));
                return -EINVAL;
        }
        /* --in-place: the enclosing cgroup is not memrun's to write; its limit stays the ceiling */
        if (l.ceiling != SIZE_MAX_VALUE && l.hard > l.ceiling) {
                snprintf(why, why_size, "--in-place: the enclosing cgroup's limit %s is the ceiling",
                         size_format(l.ceiling, a, sizeof a));
                return -EINVAL;
        }
        *ret = l;
        return 0;
}
