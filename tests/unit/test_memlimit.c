/* test_memlimit: libmemlimit (linked from build/libmemlimit.a, so its hidden memlimit__ internals are
 * reachable): trim order and goals, collect then malloc_trim, the shedding flag and level handlers,
 * the CPU budget, futile skipping, standalone levels from a fake memory source, a real protocol
 * session against a fake memrun in this process, and fork re-attachment. */
#include "unit.h"

#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "limiter/memlimit_int.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* --- recording callbacks --------------------------------------------------------------------------- */
#define MAX_CALLS 32
static struct call {
        int who;
        enum memlimit_level level;
        size_t goal;
} calls[MAX_CALLS];
static unsigned n_calls;

struct fake_cache {
        int id;
        size_t frees;             /* what it says it freed */
        uint64_t burn_ns;         /* CPU to burn first */
};

static void burn(uint64_t ns)
{
        uint64_t t0 = memlimit__now_ns(CLOCK_THREAD_CPUTIME_ID);
        volatile uint64_t x = 0;
        while (memlimit__now_ns(CLOCK_THREAD_CPUTIME_ID) - t0 < ns)
                x++;
}

static size_t fake_fn(enum memlimit_level level, size_t goal, void *ctx)
{
        struct fake_cache *c = ctx;
        if (c->burn_ns)
                burn(c->burn_ns);
        if (n_calls < MAX_CALLS)
                calls[n_calls++] = (struct call){ c->id, level, goal };
        return c->frees;
}

static unsigned n_level_calls;
static enum memlimit_level last_handler_level;
static void level_fn(enum memlimit_level level, void *ctx)
{
        (void)ctx;
        n_level_calls++;
        last_handler_level = level;
}

static int setup(void **state)
{
        (void)state;
        unsetenv(MEMLIMIT_ENV_ENDPOINT);
        unsetenv("MEMLIMIT");
        unsetenv("MEMLIMIT_BUDGET");
        n_calls = n_level_calls = 0;
        memlimit__memory_source = memlimit__rss;
        return memlimit_init(MEMLIMIT_F_BUDGET(100)) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        memlimit_shutdown();
        return 0;
}

/* --- trim ------------------------------------------------------------------------------------------ */
static void test_trim_goals(void **state)
{
        (void)state;
        static const struct {
                uint64_t goal;
                size_t frees[3];
                unsigned n_called;
                size_t goals[3];
                uint64_t freed;
                uint32_t flags;
        } cases[] = {
                /* each cache is asked for what is still missing, in registration order */
                { 100, { 30, 50, 40 }, 3, { 100, 70, 20 }, 120, 0 },
                /* goal met after two: the third is not asked */
                { 60, { 30, 50, 40 }, 2, { 60, 30 }, 80, 0 },
                /* no figure: everyone is asked with 0 */
                { 0, { 1, 2, 3 }, 3, { 0, 0, 0 }, 6, 0 },
                /* ran, freed nothing */
                { 10, { 0, 0, 0 }, 3, { 10, 10, 10 }, 0, MEMLIMIT_RESULT_FUTILE },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct fake_cache fc[3];
                memlimit_shutdown();
                assert_int_equal(memlimit_init(MEMLIMIT_F_BUDGET(100)), 0);
                n_calls = 0;
                for (int k = 0; k < 3; k++) {
                        fc[k] = (struct fake_cache){ .id = k, .frees = cases[i].frees[k] };
                        assert_int_equal(memlimit_register_cache("fake", fake_fn, &fc[k]), 0);
                }
                struct ml_result res[3];
                assert_int_equal(memlimit__run_actions(MEMLIMIT_MODERATE, MEMLIMIT_ACT_TRIM, cases[i].goal, res), 1);
                assert_int_equal(n_calls, cases[i].n_called);
                for (unsigned k = 0; k < cases[i].n_called; k++) {
                        assert_int_equal(calls[k].who, (int)k);
                        assert_int_equal(calls[k].goal, cases[i].goals[k]);
                        assert_int_equal(calls[k].level, MEMLIMIT_MODERATE);
                }
                assert_int_equal(res[0].action, MEMLIMIT_ACT_TRIM);
                assert_int_equal(res[0].freed, cases[i].freed);
                assert_int_equal(res[0].callbacks, cases[i].n_called);
                assert_int_equal(res[0].flags, cases[i].flags);
        }
}

static void test_no_handler(void **state)
{
        (void)state;
        struct ml_result res[3];
        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_ALL, 100, res), 3);
        assert_int_equal(res[0].action, MEMLIMIT_ACT_TRIM);
        assert_int_equal(res[0].flags, MEMLIMIT_RESULT_NO_HANDLER);
        assert_int_equal(res[1].action, MEMLIMIT_ACT_COLLECT);
        assert_false(res[1].flags & MEMLIMIT_RESULT_NO_HANDLER);   /* malloc_trim is always there */
        assert_int_equal(res[1].callbacks, 1);
        assert_int_equal(res[2].action, MEMLIMIT_ACT_SHED);
        assert_int_equal(res[2].flags, 0);
        assert_int_equal(res[2].freed, 0);
}

static void test_registration_limits(void **state)
{
        (void)state;
        static struct fake_cache fc;
        assert_int_equal(memlimit_register_cache("x", NULL, NULL), -EINVAL);
        assert_int_equal(memlimit_on_level(NULL, NULL), -EINVAL);
        for (int i = 0; i < MEMLIMIT_MAX_CACHES; i++)
                assert_int_equal(memlimit_register_cache("x", fake_fn, &fc), 0);
        assert_int_equal(memlimit_register_cache("x", fake_fn, &fc), -ENOSPC);
        assert_int_equal(memlimit_register_collector("y", fake_fn, &fc), 0);
}

/* --- collect --------------------------------------------------------------------------------------- */
#define NBLOCKS 40000
static void *blocks[NBLOCKS];

/* Frees 40 MB of small blocks into malloc's free lists and says it freed nothing: only the malloc_trim
 * that follows can give that memory back, so a drop in RSS proves the order. */
static size_t free_blocks(enum memlimit_level level, size_t goal, void *ctx)
{
        (void)level;
        (void)goal;
        (void)ctx;
        n_calls++;
        for (int i = 0; i < NBLOCKS - 1; i++) {
                free(blocks[i]);
                blocks[i] = NULL;
        }
        return 0;
}

static void test_collect_then_malloc_trim(void **state)
{
        (void)state;
        uint64_t rss0, rss1;
#if defined(__SANITIZE_ADDRESS__)
        /* ASan's allocator quarantines frees and ignores malloc_trim; the plain build runs this. */
        print_message("SKIP: ASan's allocator ignores malloc_trim (this test runs in the plain build)\n");
        skip();
#endif
        mallopt(M_TRIM_THRESHOLD, 1 << 30);   /* free() itself must not give the memory back */
        for (int i = 0; i < NBLOCKS; i++) {
                blocks[i] = malloc(1000);
                assert_non_null(blocks[i]);
                memset(blocks[i], 1, 1000);
        }
        assert_int_equal(memlimit__rss(&rss0), 0);
        assert_int_equal(memlimit_register_collector("blocks", free_blocks, NULL), 0);
        struct ml_result res[3];
        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_COLLECT, 0, res), 1);
        assert_int_equal(memlimit__rss(&rss1), 0);
        assert_int_equal(n_calls, 1);
        assert_int_equal(res[0].action, MEMLIMIT_ACT_COLLECT);
        assert_int_equal(res[0].callbacks, 2);          /* the collector and malloc_trim */
        assert_true(res[0].freed >= 20u << 20);         /* counted from RSS */
        assert_true(rss0 - rss1 >= 20u << 20);
        assert_int_equal(res[0].flags, 0);
        free(blocks[NBLOCKS - 1]);
        mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

/* A cache that frees what it is asked from the bottom of the heap (blocks[] in order) and says so:
 * with the trim threshold raised, the pages stay in malloc until someone calls malloc_trim. */
static int next_block;
static size_t free_goal(enum memlimit_level level, size_t goal, void *ctx)
{
        (void)level;
        (void)ctx;
        size_t freed = 0;
        n_calls++;
        while (freed < goal && next_block < NBLOCKS - 1) {
                free(blocks[next_block]);
                blocks[next_block++] = NULL;
                freed += 1000;
        }
        return freed;
}

/* memrun asks again because usage did not move: what the cache freed on the first ask is still in
 * malloc's heap. Under a headroom's worth (3% of the soft limit) and inside the malloc_trim gap, the
 * cache is asked again; once the held heap is that much, it goes back first and the cache is not
 * asked for what that release already gave. */
static void test_trim_held_heap(void **state)
{
        (void)state;
#if defined(__SANITIZE_ADDRESS__)
        print_message("SKIP: ASan's allocator ignores malloc_trim (this test runs in the plain build)\n");
        skip();
#endif
        struct ml_state *g = &memlimit__g;
        struct ml_result res[3];
        uint64_t rss0, rss1;
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
        for (int i = 0; i < NBLOCKS; i++) {
                blocks[i] = malloc(1000);
                assert_non_null(blocks[i]);
                memset(blocks[i], 1, 1000);
        }
        next_block = 0;
        assert_int_equal(memlimit_register_cache("bottom", free_goal, NULL), 0);
        atomic_store(&g->limit_soft, UINT64_C(1) << 40);   /* far: not urgent, 3% of it never held */
        g->heap_trim_ns = memlimit__now_ns(CLOCK_MONOTONIC);
        g->heap_held = 0;

        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM, 8u << 20, res), 1);
        assert_int_equal(n_calls, 1);
        assert_true(res[0].freed >= 8u << 20);              /* what the cache says */
        assert_true(g->heap_held >= 4u << 20);              /* RSS did not fall by it */
        /* Asked again inside the gap, under 3%: the cache again. */
        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM, 8u << 20, res), 1);
        assert_int_equal(n_calls, 2);
        assert_true(g->heap_held >= 8u << 20);

        /* Now the held heap is more than 3% of the soft limit (far above RSS: not urgent). */
        atomic_store(&g->limit_soft, (uint64_t)200 << 20);
        assert_int_equal(memlimit__rss(&rss0), 0);
        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM, 4u << 20, res), 1);
        assert_int_equal(memlimit__rss(&rss1), 0);
        assert_int_equal(n_calls, 2);                       /* the release gave the 4 MB: no cache call */
        assert_int_equal(res[0].callbacks, 0);
        assert_true(res[0].freed >= 4u << 20);              /* counted from RSS */
        assert_true(rss0 - rss1 >= 8u << 20);
        assert_int_equal(g->heap_held, 0);
        assert_int_equal(res[0].flags, 0);

        atomic_store(&g->limit_soft, UINT64_MAX);
        for (int i = next_block; i < NBLOCKS; i++)
                free(blocks[i]);
        mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

/* --- shedding flag and level handlers -------------------------------------------------------------- */
static void test_shed_flag(void **state)
{
        (void)state;
        static const struct {
                enum memlimit_level level;
                uint32_t actions;
                bool shedding;
                unsigned handler_calls;   /* cumulative */
        } steps[] = {
                { MEMLIMIT_MODERATE, MEMLIMIT_ACT_TRIM, false, 1 },
                { MEMLIMIT_MODERATE, MEMLIMIT_ACT_TRIM, false, 1 },   /* no change, no call */
                { MEMLIMIT_CRITICAL, MEMLIMIT_ACT_SHED, true, 2 },
                { MEMLIMIT_CRITICAL, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_SHED, true, 2 }, /* the governor re-asks */
                { MEMLIMIT_CRITICAL, MEMLIMIT_ACT_TRIM, false, 3 },  /* an ask without SHED: shedding ended */
                { MEMLIMIT_HIGH, MEMLIMIT_ACT_SHED, true, 4 },       /* shed at high: level and flag change */
                { MEMLIMIT_HIGH, MEMLIMIT_ACT_SHED, true, 4 },
                { MEMLIMIT_CRITICAL, MEMLIMIT_ACT_SHED, true, 5 },
                { MEMLIMIT_MODERATE, 0, false, 6 },                  /* every LEVEL states the shedding */
                { MEMLIMIT_OK, 0, false, 7 },
        };
        assert_int_equal(memlimit_on_level(level_fn, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                memlimit__apply_level(steps[i].level, steps[i].actions);
                assert_int_equal(memlimit_level(), steps[i].level);
                assert_int_equal(memlimit_shedding(), steps[i].shedding);
                assert_int_equal(n_level_calls, steps[i].handler_calls);
                assert_int_equal(last_handler_level, steps[i].level);
        }
}

/* --- budget and futility --------------------------------------------------------------------------- */
static void test_budget(void **state)
{
        (void)state;
        memlimit_shutdown();
        assert_int_equal(memlimit_init(MEMLIMIT_F_BUDGET(10)), 0);   /* 100 ms of CPU per second */
        struct fake_cache hog = { .id = 0, .frees = 4096, .burn_ns = 150000000 };
        assert_int_equal(memlimit_register_cache("hog", fake_fn, &hog), 0);
        struct ml_result res[3];

        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM, 1 << 20, res), 1);
        assert_int_equal(res[0].flags, 0);
        assert_int_equal(res[0].callbacks, 1);
        assert_int_equal(res[0].freed, 4096);
        assert_true(res[0].usec >= 100000);

        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 1 << 20, res), 2);
        assert_int_equal(n_calls, 1);                   /* not run again */
        assert_int_equal(res[0].flags, MEMLIMIT_RESULT_SKIPPED_BUDGET);
        assert_int_equal(res[0].callbacks, 0);
        assert_int_equal(res[1].flags, MEMLIMIT_RESULT_SKIPPED_BUDGET);   /* malloc_trim waits too */

        /* The bucket drains at 10% of wall time: 150 ms charged, 100 ms allowed -> room after ~0.5 s. */
        struct timespec ts = { 0, 600000000 };
        nanosleep(&ts, NULL);
        hog.burn_ns = 0;
        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM, 1 << 20, res), 1);
        assert_int_equal(res[0].flags, 0);
        assert_int_equal(n_calls, 2);
}

static void test_budget_bucket(void **state)
{
        (void)state;
        static const struct {
                unsigned pct;
                uint64_t charge_ms, wait_ms;
                bool allowed;
        } cases[] = {
                { 50, 400, 0, true },      /* under the 500 ms burst */
                { 50, 600, 0, false },     /* over it */
                { 50, 600, 300, true },    /* 150 ms drained */
                { 10, 150, 400, false },   /* 40 ms drained: 110 > 100 */
                { 10, 150, 600, true },
                { 100, 5000, 0, true },    /* 100%: never limited */
                { 0, 600, 0, false },      /* 0 means the default, 50% */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct ml_budget b;
                memlimit__budget_init(&b, cases[i].pct, 1000000000);
                assert_true(memlimit__budget_allows(&b, 1000000000));
                memlimit__budget_charge(&b, cases[i].charge_ms * 1000000);
                assert_int_equal(memlimit__budget_allows(&b, 1000000000 + cases[i].wait_ms * 1000000), cases[i].allowed);
        }
}

static void test_futile_skipping(void **state)
{
        (void)state;
        struct fake_cache empty = { .id = 0, .frees = 0 }, full = { .id = 1, .frees = 10 };
        assert_int_equal(memlimit_register_cache("empty", fake_fn, &empty), 0);
        struct ml_result res[3];

        memlimit__apply_level(MEMLIMIT_MODERATE, MEMLIMIT_ACT_TRIM);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(memlimit__run_actions(MEMLIMIT_MODERATE, MEMLIMIT_ACT_TRIM, 100, res), 1);
                assert_int_equal(res[0].flags, MEMLIMIT_RESULT_FUTILE);
                assert_int_equal(res[0].callbacks, 1);
        }
        assert_int_equal(memlimit__run_actions(MEMLIMIT_MODERATE, MEMLIMIT_ACT_TRIM, 100, res), 1);
        assert_int_equal(res[0].flags, MEMLIMIT_RESULT_SKIPPED_FUTILE);
        assert_int_equal(res[0].callbacks, 0);
        assert_int_equal(n_calls, 2);

        /* A cache that frees keeps running while the futile one is skipped. */
        assert_int_equal(memlimit_register_cache("full", fake_fn, &full), 0);
        assert_int_equal(memlimit__run_actions(MEMLIMIT_MODERATE, MEMLIMIT_ACT_TRIM, 100, res), 1);
        assert_int_equal(res[0].flags, 0);
        assert_int_equal(res[0].callbacks, 1);
        assert_int_equal(calls[n_calls - 1].who, 1);

        /* A level change gives it another chance. */
        memlimit__apply_level(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM);
        n_calls = 0;
        assert_int_equal(memlimit__run_actions(MEMLIMIT_HIGH, MEMLIMIT_ACT_TRIM, 100, res), 1);
        assert_int_equal(n_calls, 2);
        assert_int_equal(calls[0].who, 0);
}

/* The first release's name still builds and means the same level. */
_Static_assert(MEMLIMIT_NORMAL == MEMLIMIT_OK && MEMLIMIT_MODERATE == 1 && MEMLIMIT_CRITICAL == 3,
               "memlimit_level values are part of the ABI");

/* --- standalone ------------------------------------------------------------------------------------ */
static void test_size_parse(void **state)
{
        (void)state;
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } cases[] = {
                { "512M", 0, 512u << 20 },      { "2.5G", 0, 5ull << 29 },   { "1048576", 0, 1048576 },
                { "64KiB", 0, 64u << 10 },      { "1kb", 0, 1024 },          { "3t", 0, 3ull << 40 },
                { "0", 0, 0 },                  { "", -EINVAL, 0 },          { "M", -EINVAL, 0 },
                { "12X", -EINVAL, 0 },          { "-5M", -EINVAL, 0 },       { "1.G", -EINVAL, 0 },
                { " 5M", -EINVAL, 0 },          { "5M ", -EINVAL, 0 },       { "99999999999999999999999", -ERANGE, 0 },
                { "17179869184G", -ERANGE, 0 }, { "max", 0, UINT64_MAX },  { "50%", -EDOM, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0;
                assert_int_equal(memlimit__size_parse(cases[i].s, 0, &v), cases[i].r);
                if (cases[i].r == 0)
                        assert_int_equal(v, cases[i].v);
        }
        assert_int_equal(memlimit__size_parse(NULL, 0, NULL), -EINVAL);
}

/* The standalone levels are memrun's built-in ones on the hard limit memrun pairs with the soft limit
 * (soft / 90%); asks start above the setpoint (the soft limit less 3%), whatever the level. */
#define SA_SOFT (1000ull << 20)
#define SA_MIB (1ull << 20)
static void test_standalone_levels(void **state)
{
        (void)state;
        static const struct {
                uint64_t usage_mib;       /* of a soft limit of 1000 MiB: hard 1111.1, setpoint 970 */
                enum memlimit_level level;
                bool ask;
        } steps[] = {
                { 100, MEMLIMIT_OK, false },
                { 777, MEMLIMIT_OK, false },        /* moderate is 70% of 1111.1 = 777.8 */
                { 778, MEMLIMIT_MODERATE, false },  /* a level, not an ask: under the setpoint */
                { 945, MEMLIMIT_HIGH, false },
                { 969, MEMLIMIT_HIGH, false },
                { 980, MEMLIMIT_HIGH, true },       /* above the setpoint: asked for the excess */
                { 990, MEMLIMIT_HIGH, true },       /* still above: asked again */
                { 1060, MEMLIMIT_CRITICAL, true },  /* 95% of 1111.1 = 1055.6; trimming first */
                { 1000, MEMLIMIT_CRITICAL, true },  /* down only 5% of the hard limit under the threshold */
                { 100, MEMLIMIT_OK, false },
        };
        struct ml_standalone sa = { 0 };
        memlimit__standalone_init(&sa, SA_SOFT, MEMLIMIT_OK);
        uint64_t sp = SA_SOFT - SA_SOFT / 100 * 3, now = 5000000000;
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                enum memlimit_level l;
                uint32_t a;
                uint64_t goal, usage = steps[i].usage_mib * SA_MIB;
                now += UINT64_C(10000000000);   /* 10 s apart: no growth term in the headroom */
                memlimit__standalone_step(&sa, usage, now, &l, &a, &goal);
                assert_int_equal(l, steps[i].level);
                assert_int_equal(a, steps[i].ask ? MEMLIMIT_ACT_TRIM : 0);
                if (a) {
                        assert_true(goal + SA_MIB / 2 >= usage - sp);
                        assert_true(goal <= usage - sp);
                        memlimit__standalone_reply(&sa, goal, goal, false, 1000);
                }
        }
}

/* Short answers escalate trim -> collect -> shed (shedding only at critical); nothing at all, at
 * the top, is a give-up: no more asks until usage is back under the setpoint. */
static void test_standalone_escalation(void **state)
{
        (void)state;
        struct ml_standalone sa = { 0 };
        memlimit__standalone_init(&sa, SA_SOFT, MEMLIMIT_OK);
        uint64_t now = 1000000000, goal;
        enum memlimit_level l;
        uint32_t a;
        static const uint32_t want[] = {
                MEMLIMIT_ACT_TRIM, MEMLIMIT_ACT_TRIM,                                         /* short twice */
                MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT,
                MEMLIMIT_ACT_ALL, MEMLIMIT_ACT_ALL,                                           /* the top */
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                now += 10000000;
                memlimit__standalone_step(&sa, 1060 * SA_MIB, now, &l, &a, &goal);
                assert_int_equal(l, MEMLIMIT_CRITICAL);
                assert_int_equal(a, want[i]);
                memlimit__standalone_reply(&sa, goal, goal / 4, false, 1000);
        }
        /* Past the top with short answers: exhausted, still asking at the top until giveup at the soft
         * limit (an empty answer would have made it at once). */
        for (int i = 0; i < 4 && !sa.law.exhausted; i++) {
                now += 10000000;
                memlimit__standalone_step(&sa, 1060 * SA_MIB, now, &l, &a, &goal);
                assert_int_equal(a, MEMLIMIT_ACT_ALL);
                memlimit__standalone_reply(&sa, goal, goal / 4, false, 1000);
        }
        now += 10000000;
        memlimit__standalone_step(&sa, 1060 * SA_MIB, now, &l, &a, &goal);
        assert_int_equal(a, MEMLIMIT_ACT_ALL);
        assert_true(sa.law.exhausted);
        assert_false(sa.law.given_up);
        now += UINT64_C(1100000000);
        memlimit__standalone_step(&sa, 1060 * SA_MIB, now, &l, &a, &goal);
        assert_true(sa.law.given_up);
        assert_int_equal(a, 0);
        /* Back under the setpoint (less 1% of the hard limit): holding again, from the cheapest step. */
        memlimit__standalone_step(&sa, 900 * SA_MIB, now += 10000000, &l, &a, &goal);
        assert_false(sa.law.given_up);
        memlimit__standalone_step(&sa, 990 * SA_MIB, now += UINT64_C(10000000000), &l, &a, &goal);
        assert_int_equal(l, MEMLIMIT_HIGH);
        assert_int_equal(a & MEMLIMIT_ACT_SHED, 0);
        assert_true(a & MEMLIMIT_ACT_TRIM);
}

static uint64_t fake_usage;
static int fake_source(uint64_t *ret)
{
        *ret = fake_usage;
        return 0;
}

static bool wait_dispatch_until(bool (*done)(void), int ms)
{
        int fd = memlimit_fd();
        for (int waited = 0; waited < ms && !done(); waited += 10) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10) > 0)
                        (void)memlimit_dispatch();
        }
        return done();
}

static bool is_high(void) { return memlimit_level() == MEMLIMIT_HIGH; }
static bool is_normal(void) { return memlimit_level() == MEMLIMIT_OK; }
static bool is_critical_shedding(void) { return memlimit_level() == MEMLIMIT_CRITICAL && memlimit_shedding(); }

static void test_standalone_session(void **state)
{
        (void)state;
        struct fake_cache fc = { .id = 7, .frees = 1000 };
        memlimit_shutdown();
        setenv("MEMLIMIT", "1000M", 1);
        memlimit__memory_source = fake_source;
        fake_usage = 990 * SA_MIB;      /* 89.1% of the hard limit (1111.1M): high; above the setpoint */
        assert_int_equal(memlimit_register_cache("c", fake_fn, &fc), 0);
        assert_int_equal(memlimit_init(0), 0);
        unsetenv("MEMLIMIT");
        assert_int_equal(memlimit_mode(), MEMLIMIT_MODE_STANDALONE);
        assert_true(wait_dispatch_until(is_high, 2000));
        assert_true(n_calls >= 1);
        assert_int_equal(calls[0].who, 7);
        /* The setpoint: the soft limit less 3%. */
        assert_int_equal(calls[0].goal, 990 * SA_MIB - (SA_SOFT - SA_SOFT / 100 * 3));

        fake_usage = 1080 * SA_MIB;     /* 97.2%: critical; the cache gives back little: escalated to shed */
        assert_true(wait_dispatch_until(is_critical_shedding, 2000));
        fake_usage = 10u << 10;
        assert_true(wait_dispatch_until(is_normal, 2000));
        assert_false(memlimit_shedding());

        /* Thread mode: the library samples by itself. */
        assert_int_equal(memlimit_start_thread(), 0);
        fake_usage = 990 * SA_MIB;
        for (int i = 0; i < 300 && memlimit_level() != MEMLIMIT_HIGH; i++) {
                struct timespec ts = { 0, 10000000 };
                nanosleep(&ts, NULL);
        }
        assert_int_equal(memlimit_level(), MEMLIMIT_HIGH);
        assert_int_equal(memlimit_set_limit(0), 0);
        assert_int_equal(memlimit_mode(), MEMLIMIT_MODE_NONE);
}

static void test_bad_env(void **state)
{
        (void)state;
        memlimit_shutdown();
        setenv("MEMLIMIT", "lots", 1);
        assert_int_equal(memlimit_init(0), -EINVAL);
        assert_int_equal(memlimit_fd(), -ENOTCONN);
        assert_int_equal(memlimit_dispatch(), -ENOTCONN);
        assert_int_equal(memlimit_start_thread(), -ENOTCONN);
        assert_int_equal(memlimit_init(MEMLIMIT_F_NO_STANDALONE), 0);   /* a failed init can be retried */
        unsetenv("MEMLIMIT");
        setenv(MEMLIMIT_ENV_ENDPOINT, "@memlimit-test-nobody-listens-here", 1);
        memlimit_shutdown();
        assert_int_equal(memlimit_init(0), -ECONNREFUSED);
        unsetenv(MEMLIMIT_ENV_ENDPOINT);
        assert_int_equal(memlimit_init(0), 0);
        assert_int_equal(memlimit_mode(), MEMLIMIT_MODE_NONE);
        assert_int_equal(memlimit_init(0), 0);   /* idempotent */
}

/* --- a fake memrun --------------------------------------------------------------------------------- */
static int fake_listen(char *endpoint, size_t size)
{
        struct sockaddr_un a;
        socklen_t alen = 0;
        snprintf(endpoint, size, "@memlimit-test-%d-%ld", (int)getpid(), (long)memlimit__now_ns(CLOCK_MONOTONIC));
        assert_int_equal(memlimit_endpoint_addr(endpoint, &a, &alen), 0);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, alen), 0);
        assert_int_equal(listen(fd, 8), 0);
        return fd;
}

/* One message within timeout_ms, validated; its type, or -1. */
static int srv_recv(int fd, struct memlimit_msg *m, int timeout_ms)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) <= 0)
                return -1;
        ssize_t n = recv(fd, m, sizeof *m, MSG_TRUNC);
        if (n <= 0 || memlimit_msg_check(m, (size_t)n) != 0)
                return -1;
        return m->type;
}

static void srv_send_level(int fd, uint32_t seq, uint32_t level, uint32_t actions, uint64_t goal)
{
        struct memlimit_msg m;
        memlimit_msg_init(&m, MEMLIMIT_MSG_LEVEL);
        m.seq = seq;
        m.u.level.level = level;
        m.u.level.actions = actions;
        m.u.level.goal = goal;
        assert_int_equal(send(fd, &m, sizeof m, MSG_NOSIGNAL), (ssize_t)sizeof m);
}

static void srv_send_welcome(int fd, uint32_t id)
{
        struct memlimit_msg m;
        memlimit_msg_init(&m, MEMLIMIT_MSG_WELCOME);
        m.u.welcome.limit = 64u << 20;
        m.u.welcome.soft = 60u << 20;
        m.u.welcome.client_id = id;
        assert_int_equal(send(fd, &m, sizeof m, MSG_NOSIGNAL), (ssize_t)sizeof m);
}

static int accept_within(int lfd, int ms)
{
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        if (poll(&p, 1, ms) <= 0)
                return -1;
        return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void test_protocol_session(void **state)
{
        (void)state;
        char ep[108];
        int lfd = fake_listen(ep, sizeof ep);
        struct fake_cache a = { .id = 0, .frees = 3000 }, b = { .id = 1, .frees = 5000 };
        struct memlimit_msg m;

        memlimit_shutdown();
        setenv(MEMLIMIT_ENV_ENDPOINT, ep, 1);
        assert_int_equal(memlimit_register_cache("a", fake_fn, &a), 0);
        assert_int_equal(memlimit_register_cache("b", fake_fn, &b), 0);
        assert_int_equal(memlimit_on_level(level_fn, NULL), 0);
        assert_int_equal(memlimit_init(0), 0);
        assert_int_equal(memlimit_mode(), MEMLIMIT_MODE_MEMRUN);

        int cfd = accept_within(lfd, 2000);
        assert_true(cfd >= 0);
        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_HELLO);
        assert_int_equal(m.u.hello.pid, (uint32_t)getpid());
        assert_int_equal(m.flags, 0);
        assert_int_equal(m.u.hello.caps, MEMLIMIT_ACT_ALL);

        srv_send_welcome(cfd, 1);
        srv_send_level(cfd, 1, MEMLIMIT_PROTO_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 6000);
        assert_true(wait_dispatch_until(is_high, 2000));
        assert_int_equal(n_level_calls, 1);
        assert_int_equal(n_calls, 2);
        assert_int_equal(calls[0].goal, 6000);
        assert_int_equal(calls[1].goal, 3000);

        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_RESULT);
        assert_int_equal(m.seq, 1);
        assert_int_equal(m.u.result.action, MEMLIMIT_ACT_TRIM);
        assert_int_equal(m.u.result.freed, 8000);
        assert_int_equal(m.u.result.callbacks, 2);
        assert_int_equal(m.flags, 0);
        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_RESULT);
        assert_int_equal(m.seq, 1);
        assert_int_equal(m.u.result.action, MEMLIMIT_ACT_COLLECT);
        assert_int_equal(m.u.result.callbacks, 1);   /* malloc_trim */

        srv_send_level(cfd, 2, MEMLIMIT_PROTO_CRITICAL, MEMLIMIT_ACT_SHED, 0);
        assert_true(wait_dispatch_until(is_critical_shedding, 2000));
        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_RESULT);
        assert_int_equal(m.seq, 2);
        assert_int_equal(m.u.result.action, MEMLIMIT_ACT_SHED);
        assert_int_equal(m.u.result.freed, 0);
        assert_int_equal(m.flags, 0);

        /* Dropped, nothing asked: no RESULT, shedding over. */
        srv_send_level(cfd, 3, MEMLIMIT_PROTO_NORMAL, 0, 0);
        assert_true(wait_dispatch_until(is_normal, 2000));
        assert_false(memlimit_shedding());
        assert_int_equal(srv_recv(cfd, &m, 100), -1);

        /* Garbage from "memrun" is dropped, the session goes on. */
        char junk[10] = "garbage!!";
        assert_int_equal(send(cfd, junk, sizeof junk, MSG_NOSIGNAL), (ssize_t)sizeof junk);
        srv_send_level(cfd, 4, MEMLIMIT_PROTO_HIGH, 0, 0);
        assert_true(wait_dispatch_until(is_high, 2000));

        /* BYE: back to normal, detached. */
        memlimit_msg_init(&m, MEMLIMIT_MSG_BYE);
        assert_int_equal(send(cfd, &m, sizeof m, MSG_NOSIGNAL), (ssize_t)sizeof m);
        assert_true(wait_dispatch_until(is_normal, 2000));
        assert_int_equal(memlimit_mode(), MEMLIMIT_MODE_NONE);

        memlimit_shutdown();
        close(cfd);
        close(lfd);
        unsetenv(MEMLIMIT_ENV_ENDPOINT);
}

/* The limits: memrun's from the first WELCOME, and each change it pushes (a WELCOME with seq 0,
 * which leaves the level alone); the standalone soft limit from memlimit_set_limit(). The handlers
 * run once per change. */
static size_t lim_hard, lim_soft;
static int lim_calls;
static void limits_fn(size_t hard, size_t soft, void *ctx)
{
        (void)ctx;
        lim_hard = hard;
        lim_soft = soft;
        lim_calls++;
}
static bool limits_96(void) { return lim_hard == (96u << 20); }

static void test_limits(void **state)
{
        (void)state;
        char ep[108];
        int lfd = fake_listen(ep, sizeof ep);
        struct memlimit_msg m;
        size_t hard, soft;

        memlimit_shutdown();
        lim_calls = 0;
        memlimit_limits(&hard, &soft);
        assert_true(hard == SIZE_MAX && soft == SIZE_MAX); /* not known yet */
        setenv(MEMLIMIT_ENV_ENDPOINT, ep, 1);
        assert_int_equal(memlimit_on_limits(limits_fn, NULL), 0);
        assert_int_equal(memlimit_on_limits(NULL, NULL), -EINVAL);
        assert_int_equal(memlimit_init(0), 0);
        int cfd = accept_within(lfd, 2000);
        assert_true(cfd >= 0);
        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_HELLO);
        srv_send_welcome(cfd, 1);
        srv_send_level(cfd, 1, MEMLIMIT_PROTO_HIGH, 0, 0);
        assert_true(wait_dispatch_until(is_high, 2000));
        assert_int_equal(lim_calls, 1);
        assert_int_equal(lim_hard, 64u << 20);
        assert_int_equal(lim_soft, 60u << 20);
        /* memrunctl set: the new limits, the level as it was */
        memlimit_msg_init(&m, MEMLIMIT_MSG_WELCOME);
        m.u.welcome.limit = 96u << 20;
        m.u.welcome.soft = 90u << 20;
        m.u.welcome.client_id = 1;
        assert_int_equal(send(cfd, &m, sizeof m, MSG_NOSIGNAL), (ssize_t)sizeof m);
        assert_true(wait_dispatch_until(limits_96, 2000));
        assert_int_equal(lim_calls, 2);
        assert_int_equal(lim_soft, 90u << 20);
        assert_int_equal(memlimit_level(), MEMLIMIT_HIGH);
        memlimit_limits(&hard, &soft);
        assert_int_equal(hard, 96u << 20);
        assert_int_equal(soft, 90u << 20);
        /* the same again: no call */
        assert_int_equal(send(cfd, &m, sizeof m, MSG_NOSIGNAL), (ssize_t)sizeof m);
        srv_send_level(cfd, 2, MEMLIMIT_PROTO_NORMAL, 0, 0);
        assert_true(wait_dispatch_until(is_normal, 2000));
        assert_int_equal(lim_calls, 2);
        /* attached to memrun, the soft limit is memrun's */
        assert_int_equal(memlimit_set_limit(10u << 20), -EBUSY);
        memlimit_shutdown();
        close(cfd);
        close(lfd);
        unsetenv(MEMLIMIT_ENV_ENDPOINT);

        /* standalone: memlimit_set_limit() is the change */
        lim_calls = 0;
        assert_int_equal(memlimit_on_limits(limits_fn, NULL), 0);
        assert_int_equal(memlimit_init(MEMLIMIT_F_NO_STANDALONE), 0);
        assert_int_equal(memlimit_set_limit(200u << 20), 0);
        assert_int_equal(lim_calls, 1);
        assert_true(lim_hard == SIZE_MAX);
        assert_int_equal(lim_soft, 200u << 20);
        assert_int_equal(memlimit_set_limit(200u << 20), 0);
        assert_int_equal(lim_calls, 1);
        assert_int_equal(memlimit_set_limit(0), 0);
        assert_int_equal(lim_calls, 2);
        assert_true(lim_soft == SIZE_MAX);
        memlimit_shutdown();
}

/* A late attacher takes the current state from WELCOME; shutdown says BYE. */
static void test_welcome_state_and_bye(void **state)
{
        (void)state;
        char ep[108];
        int lfd = fake_listen(ep, sizeof ep);
        struct memlimit_msg m;

        memlimit_shutdown();
        setenv(MEMLIMIT_ENV_ENDPOINT, ep, 1);
        assert_int_equal(memlimit_init(MEMLIMIT_F_PRELOAD), 0);
        assert_int_equal(memlimit_start_thread(), 0);
        int cfd = accept_within(lfd, 2000);
        assert_true(cfd >= 0);
        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_HELLO);
        assert_int_equal(m.flags, MEMLIMIT_HELLO_PRELOAD);
        memlimit_msg_init(&m, MEMLIMIT_MSG_WELCOME);
        m.seq = 9;
        m.u.welcome.level = MEMLIMIT_PROTO_CRITICAL;
        m.u.welcome.actions = MEMLIMIT_ACT_SHED | MEMLIMIT_ACT_TRIM;
        assert_int_equal(send(cfd, &m, sizeof m, MSG_NOSIGNAL), (ssize_t)sizeof m);
        for (int i = 0; i < 200 && !is_critical_shedding(); i++) {
                struct timespec ts = { 0, 10000000 };
                nanosleep(&ts, NULL);
        }
        assert_true(is_critical_shedding());
        assert_int_equal(srv_recv(cfd, &m, 100), -1);   /* WELCOME is not answered */
        memlimit_shutdown();
        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_BYE);
        assert_int_equal(m.u.bye.reason, MEMLIMIT_BYE_NORMAL);
        close(cfd);
        close(lfd);
        unsetenv(MEMLIMIT_ENV_ENDPOINT);
}

/* --- fork ------------------------------------------------------------------------------------------ */
static size_t child_cache(enum memlimit_level level, size_t goal, void *ctx)
{
        (void)level;
        (void)goal;
        (void)ctx;
        return (size_t)getpid();   /* tells the server whose callback ran */
}

/* The child attaches on its own (HELLO FORKED, its own pid), receives its own levels and answers; the
 * parent's connection is untouched. thread_mode: the child re-arms the dispatcher by memlimit_init(). */
static void fork_case(bool thread_mode)
{
        char ep[108];
        int lfd = fake_listen(ep, sizeof ep);
        struct memlimit_msg m;

        memlimit_shutdown();
        setenv(MEMLIMIT_ENV_ENDPOINT, ep, 1);
        assert_int_equal(memlimit_register_cache("pid", child_cache, NULL), 0);
        assert_int_equal(memlimit_init(0), 0);
        if (thread_mode)
                assert_int_equal(memlimit_start_thread(), 0);
        int pfd = accept_within(lfd, 2000);
        assert_true(pfd >= 0);
        assert_int_equal(srv_recv(pfd, &m, 2000), MEMLIMIT_MSG_HELLO);
        int fd_before = memlimit_fd();

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int rc = 0;
                if (thread_mode) {
                        if (memlimit_init(0) != 0)
                                _exit(10);
                        for (int i = 0; i < 300 && memlimit_level() != MEMLIMIT_HIGH; i++) {
                                struct timespec ts = { 0, 10000000 };
                                nanosleep(&ts, NULL);
                        }
                } else {
                        if (memlimit_fd() != fd_before)
                                _exit(11);
                        (void)wait_dispatch_until(is_high, 3000);
                }
                if (memlimit_level() != MEMLIMIT_HIGH)
                        rc = 12;
                memlimit_shutdown();
                _exit(rc);
        }
        int cfd = accept_within(lfd, 3000);
        assert_true(cfd >= 0);
        assert_int_equal(srv_recv(cfd, &m, 2000), MEMLIMIT_MSG_HELLO);
        assert_int_equal(m.flags, MEMLIMIT_HELLO_FORKED);
        assert_int_equal(m.u.hello.pid, (uint32_t)pid);
        srv_send_welcome(cfd, 2);
        srv_send_level(cfd, 1, MEMLIMIT_PROTO_HIGH, MEMLIMIT_ACT_TRIM, 1);
        assert_int_equal(srv_recv(cfd, &m, 3000), MEMLIMIT_MSG_RESULT);
        assert_int_equal(m.u.result.action, MEMLIMIT_ACT_TRIM);
        assert_int_equal(m.u.result.freed, (uint64_t)pid);   /* the child's callback ran in the child */
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* The parent still has its own connection and level. */
        assert_int_equal(memlimit_level(), MEMLIMIT_OK);
        srv_send_level(pfd, 1, MEMLIMIT_PROTO_MODERATE, MEMLIMIT_ACT_TRIM, 1);
        if (thread_mode) {
                for (int i = 0; i < 300 && memlimit_level() != MEMLIMIT_MODERATE; i++) {
                        struct timespec ts = { 0, 10000000 };
                        nanosleep(&ts, NULL);
                }
        } else {
                int fd = memlimit_fd();
                for (int i = 0; i < 300 && memlimit_level() != MEMLIMIT_MODERATE; i++) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        if (poll(&p, 1, 10) > 0)
                                (void)memlimit_dispatch();
                }
        }
        assert_int_equal(memlimit_level(), MEMLIMIT_MODERATE);
        assert_int_equal(srv_recv(pfd, &m, 2000), MEMLIMIT_MSG_RESULT);
        assert_int_equal(m.u.result.freed, (uint64_t)getpid());

        memlimit_shutdown();
        close(cfd);
        close(pfd);
        close(lfd);
        unsetenv(MEMLIMIT_ENV_ENDPOINT);
}

static void test_fork_event_loop(void **state)
{
        (void)state;
        fork_case(false);
}

static void test_fork_thread(void **state)
{
        (void)state;
        fork_case(true);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_trim_goals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_handler, setup, teardown),
                cmocka_unit_test_setup_teardown(test_registration_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_collect_then_malloc_trim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trim_held_heap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shed_flag, setup, teardown),
                cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
                cmocka_unit_test(test_budget_bucket),
                cmocka_unit_test_setup_teardown(test_futile_skipping, setup, teardown),
                cmocka_unit_test(test_size_parse),
                cmocka_unit_test(test_standalone_levels),
                cmocka_unit_test(test_standalone_escalation),
                cmocka_unit_test_setup_teardown(test_standalone_session, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_env, setup, teardown),
                cmocka_unit_test_setup_teardown(test_protocol_session, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_welcome_state_and_bye, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fork_event_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fork_thread, setup, teardown),
        };
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
