/* test_governor: the control law of runner/supervise/governor.c driven with synthetic sample streams (no
 * files, no clock), plus the pure helpers beside it: the sampling interval, SigCgt, memory.stat. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/policy.h"
#include "config/size.h"
#include "supervise/actions.h"
#include "cgroup/cg.h"
#include "supervise/governor.h"
#include "supervise/monitor.h"
#include "kernel/proc.h"

#define MiB (1024ull * 1024)
#define LIMIT (128 * MiB)
#define SOFT (LIMIT / 10 * 9)
#define T_TRIM ACTION_MASK(ACTION_TRIM)
#define T_COLLECT ACTION_MASK(ACTION_COLLECT)
#define T_SHED ACTION_MASK(ACTION_SHED)
/* The tests speak seconds; the governor takes usec_t. */
#define SEC(x) ((usec_t)((x) * 1e6 + 0.5))

static struct policy pol;

static void setup_gov(struct governor *g)
{
        policy_default(&pol);
        gov_init(g, &pol, LIMIT);
}

static struct gov_sample smp(double t, uint64_t usage, enum level l, unsigned clients)
{
        return (struct gov_sample){ .t = SEC(t), .usage = usage, .level = l, .soft = SOFT, .reclaimable = SIZE_MAX_VALUE,
                                    .clients = clients, .askable = clients };
}

/* The built-in policy holds at moderate's threshold less hysteresis: 65% of the limit. */
static void test_target(void **state)
{
        (void)state;
        struct governor g;
        setup_gov(&g);
        assert_int_equal(gov_target(&g, LEVEL_MODERATE, SOFT), size_share(LIMIT, 650000));
        /* A level entered higher asks for the lowest level's target, not its own. */
        assert_int_equal(gov_target(&g, LEVEL_CRITICAL, SOFT), size_share(LIMIT, 650000));
        assert_int_equal(gov_target(&g, LEVEL_OK, SIZE_MAX_VALUE), SIZE_MAX_VALUE);
        /* Never above the soft limit less max(3%, 1 MiB). */
        assert_int_equal(gov_target(&g, LEVEL_MODERATE, 64 * MiB), 64 * MiB - 64 * MiB * 3 / 100);
        assert_int_equal(gov_target(&g, LEVEL_MODERATE, 16 * MiB), 15 * MiB);
}

/* A cooperating client: every sample above target asks again, for the whole excess less what is
 * outstanding; a client with an ask outstanding (askable 0) is not asked. */
static void test_keeps_asking(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        uint64_t target = gov_target(&g, LEVEL_MODERATE, SOFT), usage = target + 10 * MiB;

        for (int i = 0; i < 50; i++) {
                struct gov_sample s = smp(i * 0.02, usage, LEVEL_MODERATE, 1);
                gov_step(&g, &s, &d);
                assert_int_equal(d.limiter, T_TRIM);
                assert_true(d.limiter_goal >= 10 * MiB);
                assert_false(d.giveup);
                assert_false(d.shedding);
                gov_reply(&g, false, d.limiter_goal, d.limiter_goal, SEC(0.001));
        }
        assert_int_equal(g.step, GOV_TRIM);
        /* Outstanding asks are subtracted; nothing left to ask: no ask. */
        struct gov_sample s = smp(2.0, usage, LEVEL_MODERATE, 1);
        struct governor g0 = g, g4 = g;
        struct gov_decision d0, d4;
        gov_step(&g0, &s, &d0);
        s.outstanding = 4 * MiB;
        gov_step(&g4, &s, &d4);
        assert_int_equal(d4.limiter_goal + 4 * MiB, d0.limiter_goal);
        s.outstanding = 1024 * MiB;
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0);
        /* Nobody free to answer: no ask. */
        s = smp(2.02, usage, LEVEL_MODERATE, 1);
        s.askable = 0;
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0);
        /* Under target: nothing. */
        s = smp(2.04, target - MiB, LEVEL_MODERATE, 1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0);
        assert_int_equal(d.reclaim, 0);
}

/* The goal adds the growth expected until the reply: a held program's usage is flat while it
 * allocates, so the allocation rate comes from usage growth plus what was given back. */
static void test_goal_includes_growth(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        uint64_t target = gov_target(&g, LEVEL_MODERATE, SOFT), usage = target + 4 * MiB;
        for (int i = 0; i < 100; i++) {
                struct gov_sample s = smp(i * 0.02, usage, LEVEL_MODERATE, 1);
                gov_step(&g, &s, &d);
                /* 10 MiB given back every 20 ms and usage flat: 500 MiB/s of allocation. */
                gov_reply(&g, false, d.limiter_goal, 10 * MiB, SEC(0.05));
        }
        struct gov_sample s = smp(2.0, usage, LEVEL_MODERATE, 1);
        gov_step(&g, &s, &d);
        /* excess 4 MiB + ~500 MiB/s x ~50 ms latency */
        assert_true(d.limiter_goal > 4 * MiB + 15 * MiB);
        assert_true(d.limiter_goal < 4 * MiB + 40 * MiB);
}

/* Short replies escalate trim -> collect -> reclaim -> shed within what the level allows; the
 * escalation comes down again one step per dwell once usage is under target. */
static void test_escalation(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        uint64_t target = gov_target(&g, LEVEL_CRITICAL, SOFT), usage = SOFT;
        static const struct {
                uint32_t limiter;
                bool reclaim, shedding;
        } want[] = {
                { T_TRIM, false, false },
                { T_TRIM, false, false },
                { T_TRIM | T_COLLECT, false, false },
                { T_TRIM | T_COLLECT, false, false },
                { T_TRIM | T_COLLECT, true, false },   /* limiters and reclaim both come back short */
                { T_TRIM | T_COLLECT | T_SHED, true, true },
                { T_TRIM | T_COLLECT | T_SHED, true, true },
        };
        double t = 0;
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
                struct gov_sample s = smp(t += 0.02, usage, LEVEL_CRITICAL, 1);
                s.can_reclaim = true;
                gov_step(&g, &s, &d);
                assert_int_equal(d.limiter, want[i].limiter);
                assert_int_equal(d.reclaim != 0, want[i].reclaim);
                assert_int_equal(d.shedding, want[i].shedding);
                /* short, not empty: a quarter of what was asked */
                gov_reply(&g, false, d.limiter_goal, d.limiter_goal / 4, SEC(0.01));
                if (d.reclaim)
                        gov_reply(&g, true, d.reclaim, d.reclaim / 4, USEC_INFINITY);
        }
        assert_true(g.exhausted || g.step == GOV_SHED);
        /* At moderate only trim is allowed: the escalation asks no more than that. */
        struct gov_sample s = smp(t += 0.02, usage, LEVEL_MODERATE, 1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, T_TRIM);
        assert_false(d.shedding);
        assert_true(d.shed_changed);
        /* Under target for a dwell: one step down each. */
        enum gov_step before = g.step;
        for (int i = 0; i < 150; i++) {
                s = smp(t += 0.02, target - 4 * MiB, LEVEL_CRITICAL, 1);
                s.can_reclaim = true;
                gov_step(&g, &s, &d);
        }
        assert_true(g.step < before);
}

/* An empty answer escalates at once; a run of full answers takes the escalation a step back down. */
static void test_empty_and_full_answers(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        struct gov_sample s = smp(0.02, SOFT, LEVEL_CRITICAL, 1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, T_TRIM);
        gov_reply(&g, false, d.limiter_goal, 0, SEC(0.01));
        s.t = SEC(0.04);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, T_TRIM | T_COLLECT);
        for (int i = 0; i < GOV_GOOD_STREAK; i++)
                gov_reply(&g, false, 8 * MiB, 8 * MiB, SEC(0.01));
        s.t = SEC(0.06);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, T_TRIM);
}

/* A client that frees nothing is escalated past within three asks. */
static void test_futile_client(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        unsigned trims = 0;
        for (int i = 0; i < 10; i++) {
                struct gov_sample s = smp(i * 0.3, SOFT - MiB, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                if (d.limiter == T_TRIM)
                        trims++;
                gov_reply(&g, false, d.limiter_goal, 0, SEC(0.001));
        }
        assert_true(trims <= 3);
        assert_true(trims >= 1);
}

/* Nothing can be freed (no client, no reclaim) and usage sits at the soft limit: after giveup, give
 * up; with giveup = 0s, never. Back under target, resume. */
static void test_giveup(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        usec_t gave = USEC_INFINITY;
        for (int i = 0; i < 200 && gave == USEC_INFINITY; i++) {
                struct gov_sample s = smp(i * 0.02, SOFT, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                assert_int_equal(d.limiter, 0);
                if (d.giveup)
                        gave = s.t;
        }
        assert_true(gave >= SEC(1.0) && gave < SEC(1.1));
        assert_true(g.given_up);
        struct gov_sample s = smp(5.0, SOFT, LEVEL_HIGH, 1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0); /* given up: asks nothing */
        s = smp(5.1, LIMIT / 2, LEVEL_MODERATE, 1);
        gov_step(&g, &s, &d);
        assert_true(d.resume);
        assert_false(g.given_up);

        /* Below the soft limit nothing is given up, however long. */
        setup_gov(&g);
        for (int i = 0; i < 500; i++) {
                s = smp(i * 0.02, SOFT - 8 * MiB, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                assert_false(d.giveup);
        }
        /* A client that keeps giving back is never given up on. */
        setup_gov(&g);
        for (int i = 0; i < 500; i++) {
                s = smp(i * 0.02, SOFT, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                assert_false(d.giveup);
                gov_reply(&g, false, d.limiter_goal, d.limiter_goal, SEC(0.001));
        }
        /* giveup = 0s: never. */
        setup_gov(&g);
        pol.giveup_usec = 0;
        for (int i = 0; i < 500; i++) {
                s = smp(i * 0.02, SOFT, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                assert_false(d.giveup);
        }
}

/* Entered by pressure with usage under target: one ask for 5% of usage. */
static void test_entered_by_pressure(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        struct gov_sample s = smp(0, LIMIT / 2, LEVEL_MODERATE, 1);
        s.entered = true;
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, T_TRIM);
        assert_int_equal(d.limiter_goal, LIMIT / 2 / 20);
        s.entered = false;
        s.t = SEC(0.02);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0);
}

static void test_interval(void **state)
{
        (void)state;
        struct interval_in in = { .lo = 50000, .hi = 2000000, .usage = 0, .limit = LIMIT,
                                  .next_threshold = LIMIT / 10 * 7, .dwell = 2000000 };
        /* Idle on v1: backs off to interval_max by doubling. */
        uint64_t iv = 0;
        for (int i = 0; i < 20; i++) {
                in.last = iv;
                iv = monitor_interval(&in);
        }
        assert_int_equal(iv, 2000000);
        /* Idle on v2: never slower than 100 ms. */
        in.v2 = true;
        in.last = 0;
        for (int i = 0; i < 20; i++) {
                in.last = iv;
                iv = monitor_interval(&in);
        }
        assert_int_equal(iv, MONITOR_V2_IDLE_MAX_USEC);
        /* Holding above target: 20 ms, even past interval_min. */
        in.holding = true;
        in.lo = 100000;
        iv = monitor_interval(&in);
        assert_int_equal(iv, MONITOR_HOLD_USEC);
}

static void test_sigcgt(void **state)
{
        (void)state;
        uint64_t m;
        assert_int_equal(proc_parse_sigcgt("Name:\tx\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000200\n", &m), 0);
        assert_int_equal(m, 1u << (SIGUSR1 - 1));
        assert_int_equal(proc_parse_sigcgt("SigCgt:\t00000001800044eb\n", &m), 0);
        assert_int_equal(m, 0x1800044ebull);
        assert_int_equal(proc_parse_sigcgt("SigIgn:\t0\n", &m), -ENOENT);
        assert_int_equal(proc_parse_sigcgt("SigCgt:\t00zz\n", &m), -EINVAL);
        assert_int_equal(proc_parse_sigcgt("SigCgt:\t\n", &m), -EINVAL);
        assert_int_equal(proc_parse_sigcgt("SigCgt:\t00000000000000000\n", &m), -EINVAL);
        assert_true(signal_default_kills(SIGUSR1));
        assert_true(signal_default_kills(SIGUSR2));
        assert_false(signal_default_kills(SIGWINCH));
        assert_false(signal_default_kills(SIGCHLD));
}

static void test_reclaimable(void **state)
{
        (void)state;
        uint64_t r;
        const char *v2 = "anon 104857600\nfile 20971520\nshmem 0\nactive_anon 1\ninactive_anon 2\n"
                         "active_file 4194304\ninactive_file 8388608\nslab_reclaimable 1048576\n";
        assert_int_equal(cg_stat_reclaimable(v2, CG_V2, &r), 0);
        assert_int_equal(r, 4194304 + 8388608 + 1048576);
        const char *v1 = "cache 1\nrss 2\ntotal_active_file 3\ntotal_inactive_file 4\n";
        assert_int_equal(cg_stat_reclaimable(v1, CG_V1, &r), 0);
        assert_int_equal(r, 7);
        assert_int_equal(cg_stat_reclaimable("anon 5\n", CG_V2, &r), -ENODATA);
        assert_int_equal(cg_stat_reclaimable("active_file x\ninactive_file 1\n", CG_V2, &r), 0);
        assert_int_equal(r, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_target),         cmocka_unit_test(test_keeps_asking),
                cmocka_unit_test(test_goal_includes_growth), cmocka_unit_test(test_escalation),
                cmocka_unit_test(test_futile_client),  cmocka_unit_test(test_empty_and_full_answers),  cmocka_unit_test(test_giveup),
                cmocka_unit_test(test_entered_by_pressure), cmocka_unit_test(test_interval),
                cmocka_unit_test(test_sigcgt),         cmocka_unit_test(test_reclaimable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
