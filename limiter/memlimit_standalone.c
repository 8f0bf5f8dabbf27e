/* memlimit_standalone: levels without memrun, from MEMLIMIT=SIZE: the process's resident memory
 * (/proc/self/statm) against that soft limit with memrun's built-in thresholds, held there by the
 * same law as memrun's governor. Parsing and the level
 * engine are pure; reading memory goes through a replaceable source. Self-contained: the .so links
 * nothing else of the project. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "memlimit_int.h"
#include "../config/defaults.h"

/* Thresholds in percent of the soft limit: moderate, high, critical (memrun's built-in policy). */
static const unsigned thresholds[MEMLIMIT_LEVEL_MAX] = { 0, DEFAULT_MODERATE_PCT, DEFAULT_HIGH_PCT,
                                                         DEFAULT_CRITICAL_PCT };
static const uint32_t level_actions[MEMLIMIT_LEVEL_MAX] = {
        0,
        MEMLIMIT_ACT_TRIM,
        MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT,
        MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT | MEMLIMIT_ACT_SHED,
};
#define HYSTERESIS_PCT DEFAULT_HYSTERESIS_PCT /* leave a level this far below its threshold */
#define DOWN_NS UINT64_C(1000000000)   /* under target this long: one escalation step down */

/* Resident bytes of this process. Opened each time: /proc/self resolves at open, and a descriptor
 * kept across fork() would go on describing the parent. */
int memlimit__rss(uint64_t *ret)
{
        char buf[128];
        int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n;
        do
                n = read(fd, buf, sizeof buf - 1);
        while (n < 0 && errno == EINTR);
        int e = errno;
        close(fd);
        if (n <= 0)
                return n < 0 ? -e : -EIO;
        buf[n] = '\0';
        char *p = buf, *end;
        errno = 0;
        (void)strtoull(p, &end, 10);              /* size */
        if (errno || end == p || *end != ' ')
                return -EIO;
        p = end + 1;
        unsigned long long pages = strtoull(p, &end, 10);
        if (errno || end == p)
                return -EIO;
        long psz = sysconf(_SC_PAGESIZE);
        *ret = (uint64_t)pages * (uint64_t)(psz > 0 ? psz : 4096);
        return 0;
}

int (*memlimit__memory_source)(uint64_t *ret) = memlimit__rss;

static uint64_t pct_of(uint64_t v, unsigned pct) { return v / 100 * pct + v % 100 * pct / 100; }

static uint32_t cumulative[3] = { MEMLIMIT_ACT_TRIM, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT,
                                  MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT | MEMLIMIT_ACT_SHED };

/* memrun's governor, in-process: while usage is above the level's target, ask again at every sample;
 * asks that come back short escalate trim -> collect -> shed as far as the level allows, and the
 * escalation steps down once usage has stayed under target for DOWN_NS. */
void memlimit__standalone_step(struct ml_standalone *sa, uint64_t usage, uint64_t now_ns,
                               enum memlimit_level *ret_level, uint32_t *ret_actions, uint64_t *ret_goal)
{
        enum memlimit_level raw = MEMLIMIT_OK, down = MEMLIMIT_OK, cur = sa->level, next = cur;
        uint32_t actions = 0;
        uint64_t goal = 0;

        for (int l = MEMLIMIT_MODERATE; l < MEMLIMIT_LEVEL_MAX; l++) {
                if (usage >= pct_of(sa->soft, thresholds[l]))
                        raw = (enum memlimit_level)l;
                if (usage >= pct_of(sa->soft, thresholds[l] - HYSTERESIS_PCT))
                        down = (enum memlimit_level)l;
        }
        if (raw > cur)
                next = raw;
        else if (down < cur)
                next = down;

        uint64_t target = next > MEMLIMIT_OK ? pct_of(sa->soft, thresholds[next] - HYSTERESIS_PCT) : UINT64_MAX;
        if (next > MEMLIMIT_OK && usage > target) {
                sa->below_ns = 0;
                uint32_t allowed = level_actions[next];
                actions = cumulative[sa->step] & allowed;
                if (!actions)
                        actions = allowed & -allowed;   /* the level's cheapest */
                goal = usage - target;
        } else {
                if (!sa->below_ns)
                        sa->below_ns = now_ns ? now_ns : 1;
                if (sa->step && now_ns - sa->below_ns >= DOWN_NS) {
                        sa->step--;
                        sa->short_streak = 0;
                        sa->below_ns = now_ns;
                }
                if (next > cur) {
                        /* Entered (usage at the threshold's edge): one ask for the way to target. */
                        actions = cumulative[sa->step] & level_actions[next];
                        goal = pct_of(usage, 5);
                }
        }
        if (actions) {
                sa->last_usage = usage;
                sa->last_run_ns = now_ns;
        }
        sa->level = next;
        *ret_level = next;
        *ret_actions = actions;
        *ret_goal = goal;
}

void memlimit__standalone_reply(struct ml_standalone *sa, uint64_t asked, uint64_t freed)
{
        if (!asked)
                return;
        if (freed * 2 >= asked) {
                sa->short_streak = 0;
                return;
        }
        if (++sa->short_streak >= 2 && sa->step < 2) {
                sa->step++;
                sa->short_streak = 0;
        }
}

/* A sample costs one small read of /proc: every 10 ms while above target, faster the nearer usage is
 * to the first threshold, slowly far below it. */
uint64_t memlimit__standalone_period_ns(const struct ml_standalone *sa, uint64_t usage)
{
        if (sa->level > MEMLIMIT_OK && usage > pct_of(sa->soft, thresholds[sa->level] - HYSTERESIS_PCT))
                return UINT64_C(10000000);
        if (sa->level > MEMLIMIT_OK || usage >= pct_of(sa->soft, thresholds[MEMLIMIT_MODERATE] - 15))
                return UINT64_C(20000000);
        if (usage >= pct_of(sa->soft, 40))
                return UINT64_C(50000000);
        return UINT64_C(200000000);
}
