/* memlimit_standalone: levels without memrun, from MEMLIMIT=SIZE: the process's resident memory
 * (/proc/self/statm) against that soft limit, with memrun's built-in policy (levels, dwell, giveup)
 * and held at the setpoint by the very law memrun's governor runs (memlimit_law.c). The level
 * engine is pure; reading memory goes through a replaceable source. Self-contained: the .so links
 * nothing else of the project. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "memlimit_int.h"
#include "../config/defaults.h"

/* Thresholds in percent of the hard limit: moderate, high, critical (memrun's built-in policy). */
static const unsigned thresholds[MEMLIMIT_LEVEL_MAX] = { 0, DEFAULT_MODERATE_PCT, DEFAULT_HIGH_PCT,
                                                         DEFAULT_CRITICAL_PCT };
#define DOWN_MARGIN_PCT 1         /* memrun's: under the setpoint by 1% of the hard limit counts as under */

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

/* The hard limit memrun would pair with this soft limit (--limit X sets soft to 90% of X). */
static uint64_t hard_of(uint64_t soft)
{
        uint64_t ppm = DEFAULT_SOFT_PPM;
        return soft / ppm * 1000000 + soft % ppm * 1000000 / ppm;
}

void memlimit__standalone_init(struct ml_standalone *sa, uint64_t soft, enum memlimit_level level)
{
        struct law_config c = { .target = LAW_NONE, .giveup_us = DEFAULT_GIVEUP_MSEC * UINT64_C(1000),
                                .dwell_us = DEFAULT_DWELL_MSEC * UINT64_C(1000),
                                .down_margin = pct_of(hard_of(soft), DOWN_MARGIN_PCT) };
        if (sa->soft) {
                /* A new soft limit (memlimit_set_limit): the law keeps what it learnt. */
                sa->soft = soft;
                sa->law.c = c;
                return;
        }
        *sa = (struct ml_standalone){ .soft = soft, .level = level };
        law_init(&sa->law, &c);
}

/* memrun's level engine on usage alone: up at a threshold, down once usage is hysteresis under it. */
static enum memlimit_level next_level(const struct ml_standalone *sa, uint64_t usage)
{
        uint64_t hard = hard_of(sa->soft);
        enum memlimit_level raw = MEMLIMIT_OK, down = MEMLIMIT_OK;
        for (int l = MEMLIMIT_MODERATE; l < MEMLIMIT_LEVEL_MAX; l++) {
                if (usage >= pct_of(hard, thresholds[l]))
                        raw = (enum memlimit_level)l;
                if (usage >= pct_of(hard, thresholds[l] - DEFAULT_HYSTERESIS_PCT))
                        down = (enum memlimit_level)l;
        }
        return raw > sa->level ? raw : down < sa->level ? down : sa->level;
}

static const uint32_t step_act[LAW_STEPS] = { MEMLIMIT_ACT_TRIM, MEMLIMIT_ACT_COLLECT, 0, MEMLIMIT_ACT_SHED };

void memlimit__standalone_step(struct ml_standalone *sa, uint64_t usage, uint64_t now_ns,
                               enum memlimit_level *ret_level, uint32_t *ret_actions, uint64_t *ret_goal)
{
        sa->level = next_level(sa, usage);
        /* The built-in policy's steps, as memrun's governor takes them: trim and collect at any level (no
         * kernel reclaim in-process), shedding at critical. The process is its one client, answering
         * each ask before the next sample. */
        struct law_sample s = {
                .t = now_ns / 1000, .usage = usage, .soft = sa->soft,
                .steps = LAW_BIT(LAW_TRIM) | LAW_BIT(LAW_COLLECT) |
                         (sa->level == MEMLIMIT_CRITICAL ? LAW_BIT(LAW_SHED) : 0),
                .clients = 1, .askable = 1, .reclaimable = LAW_NONE,
        };
        struct law_decision d;
        law_step(&sa->law, &s, &d);
        uint32_t actions = 0;
        for (int st = 0; st < LAW_STEPS; st++)
                if (d.ask & LAW_BIT(st))
                        actions |= step_act[st];
        *ret_level = sa->level;
        *ret_actions = actions;
        *ret_goal = d.goal;
}

void memlimit__standalone_reply(struct ml_standalone *sa, uint64_t asked, uint64_t freed, bool deferred,
                                uint64_t usec)
{
        law_reply(&sa->law, false, asked, freed, deferred, usec);
}

/* A sample costs one small read of /proc: every 10 ms near the setpoint, slower the further below. */
uint64_t memlimit__standalone_period_ns(const struct ml_standalone *sa, uint64_t usage)
{
        uint64_t sp = law_setpoint(&sa->law, sa->soft, 0, NULL);
        if (usage >= sp - sp / 50)
                return UINT64_C(10000000);
        if (usage >= pct_of(sp, 85))
                return UINT64_C(20000000);
        if (usage >= pct_of(sp, 40))
                return UINT64_C(50000000);
        return UINT64_C(200000000);
}
