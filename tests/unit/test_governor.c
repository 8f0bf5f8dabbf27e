/* test_governor: the control law (limiter/memlimit_law.c) through runner/supervise/governor.c, driven with synthetic sample streams (no
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

#define SETPOINT (SOFT - SOFT / 100 * 3)

/* The setpoint is the soft limit less max(3%, 1 MiB), at every level; [governor] target holds lower. */
static void test_setpoint(void **state)
{
        (void)state;
        struct governor g;
        setup_gov(&g);
        assert_int_equal(gov_setpoint(&g, SOFT, 0), SOFT - size_share(SOFT, 30000));
        assert_int_equal(gov_setpoint(&g, 16 * MiB, 0), 15 * MiB);
        assert_int_equal(gov_setpoint(&g, SIZE_MAX_VALUE, 0), SIZE_MAX_VALUE);
        pol.target_ppm = 700000;
        gov_init(&g, &pol, LIMIT);
        assert_int_equal(gov_setpoint(&g, SOFT, 0), size_share(LIMIT, 700000));
        assert_int_equal(gov_setpoint(&g, SIZE_MAX_VALUE, 0), size_share(LIMIT, 700000));
        pol.target_ppm = 0;
        pol.target = LIMIT; /* above the soft limit's setpoint: no effect */
        gov_init(&g, &pol, LIMIT);
        assert_int_equal(gov_setpoint(&g, SOFT, 0), SOFT - size_share(SOFT, 30000));
}

/* A policy whose levels name no step (trim, collect, reclaim, shed) gives the governor nothing to ask:
 * it stays out (and never lifts memory.high); one step anywhere is enough. */
static void test_active(void **state)
{
        (void)state;
        struct governor g;
        setup_gov(&g);
        assert_true(g.active);
        struct policy p;
        policy_default(&p);
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                p.levels[l].n_actions = 0;
        gov_init(&g, &p, LIMIT);
        assert_false(g.active);
        p.levels[LEVEL_CRITICAL].actions[0] = (struct policy_action){ .type = ACTION_SHED };
        p.levels[LEVEL_CRITICAL].n_actions = 1;
        gov_init(&g, &p, LIMIT);
        assert_true(g.active);
        p.levels[LEVEL_CRITICAL].actions[0] = (struct policy_action){ .type = ACTION_SIGNAL, .signal = 10 };
        gov_init(&g, &p, LIMIT);
        assert_false(g.active);
}

/* A cooperating client: every sample above the setpoint asks again, at any level (ok included), for
 * the excess less what is outstanding; a client with an ask outstanding (askable 0) is not asked. */
static void test_keeps_asking(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        uint64_t sp = gov_setpoint(&g, SOFT, 0), usage = sp + 10 * MiB;

        for (int i = 0; i < 50; i++) {
                struct gov_sample s = smp(i * 0.02, usage, i < 25 ? LEVEL_OK : LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                assert_int_equal(d.limiter, T_TRIM);
                /* the program allocates what it gives back: the headroom grows with that */
                assert_true(d.setpoint <= sp);
                assert_int_equal(d.limiter_goal, usage - d.setpoint);
                if (i == 0)
                        assert_int_equal(d.limiter_goal, 10 * MiB);
                assert_false(d.giveup);
                assert_false(d.shedding);
                gov_reply(&g, false, d.limiter_goal, d.limiter_goal, false, SEC(0.001));
        }
        assert_int_equal(g.law.step, GOV_TRIM);
        /* Outstanding asks are subtracted; nothing left to ask: no ask. */
        struct gov_sample s = smp(2.0, usage, LEVEL_HIGH, 1);
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
        s = smp(2.02, usage, LEVEL_HIGH, 1);
        s.askable = 0;
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0);
        /* Under the setpoint (which the fast giving-back lowered): nothing, even at a level. */
        s = smp(2.04, sp - 40 * MiB, LEVEL_HIGH, 1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0);
        assert_int_equal(d.reclaim, 0);
}

/* N samples TICK s apart at flat usage, each answered with FREED given back in LATENCY: the program
 * allocates FREED per TICK. The decision at the next sample. */
static uint64_t hold_flat(struct governor *g, uint64_t usage, int n, double tick, uint64_t freed, usec_t latency,
                          double *t, struct gov_decision *d)
{
        for (int i = 0; i < n; i++) {
                struct gov_sample s = smp(*t += tick, usage, LEVEL_HIGH, 1);
                gov_step(g, &s, d);
                gov_reply(g, false, d->limiter_goal, freed, false, latency);
        }
        struct gov_sample s = smp(*t += tick, usage, LEVEL_HIGH, 1);
        gov_step(g, &s, d);
        assert_int_equal(d->setpoint, SOFT - d->headroom);
        return d->headroom;
}

/* The headroom grows with what the program allocates before a reply lands (a held program's usage is
 * flat while it allocates, so the rate is usage growth plus what was given back), and shrinks back to
 * max(3%, 1 MiB) once it stops. */
static void test_headroom_follows_growth(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        uint64_t usage = SOFT - 20 * MiB;
        double t = 0;
        /* 10 MiB given back every 20 ms: 500 MiB/s x (20 ms + ~50 ms latency): ~25 MiB under the soft
         * limit */
        uint64_t head = hold_flat(&g, usage, 100, 0.02, 10 * MiB, SEC(0.05), &t, &d);
        assert_true(head > 15 * MiB);
        assert_true(head < 40 * MiB);
        assert_int_equal(d.limiter_goal, usage - d.setpoint);
        /* Allocation stops: the headroom comes back to 3%. */
        for (int i = 0; i < 200; i++) {
                struct gov_sample s = smp(t += 0.02, SETPOINT - 30 * MiB, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
        }
        assert_int_equal(d.headroom, SOFT / 100 * 3 + (SOFT % 100) * 3 / 100);
}

/* A fast sampler and fast replies: the growth term is what the program allocates in one sample
 * period plus the reply's measured latency (floored at 2 ms), not a 20 ms floor on top of the period.
 * 800 MiB/s, samples every 5 ms, replies in 0.5 ms: 800 MiB/s x 7 ms = 5.6 MiB; with the old 20 ms
 * floor it was 800 MiB/s x 25 ms = 20 MiB, which held a program answering in 0.4 ms at 0.94 of the
 * soft limit. */
static void test_headroom_fast_replies(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        double t = 0;
        /* 4 MiB given back every 5 ms: 800 MiB/s */
        uint64_t head = hold_flat(&g, SOFT - 20 * MiB, 600, 0.005, 4 * MiB, SEC(0.0005), &t, &d);
        assert_true(head > 5 * MiB);
        assert_true(head < 6 * MiB);
}

/* Short replies escalate trim -> collect -> reclaim -> shed, shedding only at a level that lists it;
 * the escalation comes down again one step per dwell once usage is under the setpoint. */
static void test_escalation(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        uint64_t usage = SOFT;
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
                gov_reply(&g, false, d.limiter_goal, d.limiter_goal / 4, false, SEC(0.01));
                if (d.reclaim)
                        gov_reply(&g, true, d.reclaim, d.reclaim / 4, false, USEC_INFINITY);
        }
        assert_true(g.law.exhausted || g.law.step == LAW_SHED);
        /* The built-in policy sheds at critical only; trim and collect go on at moderate. */
        struct gov_sample s = smp(t += 0.02, usage, LEVEL_MODERATE, 1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, T_TRIM | T_COLLECT);
        assert_false(d.shedding);
        assert_true(d.shed_changed);
        /* Under the setpoint for a dwell: one step down each. */
        enum law_step before = g.law.step;
        for (int i = 0; i < 150; i++) {
                s = smp(t += 0.02, SETPOINT - 4 * MiB, LEVEL_CRITICAL, 1);
                s.can_reclaim = true;
                gov_step(&g, &s, &d);
        }
        assert_true(g.law.step < before);
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
        gov_reply(&g, false, d.limiter_goal, 0, false, SEC(0.01));
        s.t = SEC(0.04);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, T_TRIM | T_COLLECT);
        for (int i = 0; i < LAW_GOOD_STREAK; i++)
                gov_reply(&g, false, 8 * MiB, 8 * MiB, false, SEC(0.01));
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
                gov_reply(&g, false, d.limiter_goal, 0, false, SEC(0.001));
        }
        assert_true(trims <= 3);
        assert_true(trims >= 1);
}

/* Asks a client put off for its CPU budget (RESULT flagged SKIPPED_BUDGET) are short answers, not
 * empty ones: at the soft limit they escalate and get [governor] giveup of grace, never the at-once
 * give-up that says "nothing to give" (a libmemlimit with MEMLIMIT_BUDGET=1 under a fast cache was
 * given up on and OOM-killed that way). The same stream answered futile gives up at once. */
static void test_deferred_answers(void **state)
{
        (void)state;
        for (int deferred = 0; deferred <= 1; deferred++) {
                struct governor g;
                struct gov_decision d = { 0 };
                setup_gov(&g);
                usec_t gave = USEC_INFINITY, top = USEC_INFINITY;
                bool at_once = false;
                for (int i = 0; i < 300 && gave == USEC_INFINITY; i++) {
                        struct gov_sample s = smp(i * 0.02, SOFT, LEVEL_HIGH, 1);
                        gov_step(&g, &s, &d);
                        if (g.law.exhausted && top == USEC_INFINITY)
                                top = s.t;
                        if (d.giveup) {
                                gave = s.t;
                                at_once = d.at_once;
                        }
                        if (d.limiter)
                                gov_reply(&g, false, d.limiter_goal, 0, deferred, SEC(0.001));
                }
                assert_true(top != USEC_INFINITY); /* escalated to the top either way */
                assert_true(gave != USEC_INFINITY);
                if (deferred) {
                        assert_false(at_once);
                        assert_false(g.law.empty);
                        assert_true(gave - top >= SEC(1.0) && gave - top < SEC(1.1));
                } else {
                        assert_true(at_once);
                        assert_true(gave - top < SEC(0.5));
                }
        }
}

/* The last client leaves while usage is near the soft limit, most often because the program is
 * exiting: no give-up for LAW_DETACH_GRACE_US (memrun reported "nothing to give ... giving up" on
 * holdcache's last breath). Still there after it, and nothing to give: at once, as before. */
static void test_detach_grace(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        double t = 0.02;
        for (int i = 0; i < 10; i++, t += 0.02) {
                struct gov_sample s = smp(t, SETPOINT - MiB, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
        }
        double left = t;
        usec_t gave = USEC_INFINITY;
        for (; t < left + 3 && gave == USEC_INFINITY; t += 0.02) {
                struct gov_sample s = smp(t, SOFT - MiB / 2, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                if (d.giveup) {
                        gave = s.t;
                        assert_true(d.at_once);
                }
        }
        assert_true(gave != USEC_INFINITY);
        assert_true(gave >= SEC(left) + LAW_DETACH_GRACE_US);
        assert_true(gave < SEC(left) + LAW_DETACH_GRACE_US + SEC(0.1));
        /* A program that never had a client gets no grace: at once (test_giveup). Clients that come
         * and go cannot keep the grace: one in LAW_DETACH_REGRACE_US. */
        setup_gov(&g);
        struct gov_sample s = smp(0.02, SOFT - MiB / 2, LEVEL_HIGH, 1);
        gov_step(&g, &s, &d);
        s = smp(0.04, SOFT - MiB / 2, LEVEL_HIGH, 0); /* left: the grace starts */
        gov_step(&g, &s, &d);
        assert_false(d.giveup);
        s = smp(0.5, SOFT - MiB / 2, LEVEL_HIGH, 1);  /* back: the grace ends */
        gov_step(&g, &s, &d);
        s = smp(0.9, SOFT - MiB / 2, LEVEL_HIGH, 0);  /* left again, 0.86 s later: no second grace */
        gov_step(&g, &s, &d);
        assert_true(d.giveup);
        assert_true(d.at_once);
        /* Once given up, back under the setpoint it resumes; a client leaving 10 s after the first
         * grace gets a new one. */
        s = smp(1.0, LIMIT / 2, LEVEL_MODERATE, 1);
        gov_step(&g, &s, &d);
        assert_true(d.resume);
        s = smp(10.1, SOFT - MiB / 2, LEVEL_HIGH, 1);
        gov_step(&g, &s, &d);
        s = smp(10.12, SOFT - MiB / 2, LEVEL_HIGH, 0);
        gov_step(&g, &s, &d);
        assert_false(d.giveup);
}

/* The last client left a program that had been allocating fast, and the program then stands still
 * above the setpoint, short of the soft limit: nothing to give, but it is not heading anywhere. No
 * give-up after the grace (the allocation rate measured while it grew has not decayed yet, and was
 * taken as where it is going). Once it grows again, at once, far short of the soft limit's 2% (held
 * at [governor] target = 70%: room to tell the rising test from the soft limit's). */
static void test_idle_after_detach(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        policy_default(&pol);
        pol.target_ppm = 700000;
        gov_init(&g, &pol, LIMIT);
        const uint64_t target = LIMIT / 10 * 7;
        double t = 0.02;
        uint64_t usage = LIMIT / 4;
        for (; usage < target; t += 0.02, usage += 8 * MiB) { /* 400 MB/s */
                struct gov_sample s = smp(t, usage, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
        }
        /* A second held there, still allocating 400 MB/s: the client gives back as much */
        for (double held = t; t < held + 1; t += 0.02) {
                struct gov_sample s = smp(t, target + MiB / 2, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                if (d.limiter)
                        gov_reply(&g, false, d.limiter_goal, 8 * MiB, false, 1000);
        }
        usage = target + MiB;
        double left = t;
        for (; t < left + 4; t += 0.02) {
                struct gov_sample s = smp(t, usage, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                assert_false(d.giveup);
        }
        bool gave = false;
        for (; t < left + 6 && !gave; t += 0.02) {
                usage += 2 * MiB; /* 100 MB/s */
                struct gov_sample s = smp(t, usage, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                if (d.giveup) {
                        gave = true;
                        assert_true(d.at_once);
                        assert_true(usage + SOFT / 10 < SOFT);
                }
        }
        assert_true(gave);
}

/* Nothing to give (no client, no reclaim) at the soft limit: give up at once. Short answers at the soft
 * limit: after [governor] giveup. Back under the setpoint, resume; giveup = 0s: never. */
static void test_giveup(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        struct gov_sample s = smp(0.02, SOFT, LEVEL_HIGH, 0);
        gov_step(&g, &s, &d);
        assert_true(d.giveup);
        assert_true(d.at_once);
        assert_true(g.law.given_up);
        s = smp(5.0, SOFT, LEVEL_HIGH, 1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.limiter, 0); /* given up: asks nothing */
        s = smp(5.1, LIMIT / 2, LEVEL_MODERATE, 1);
        gov_step(&g, &s, &d);
        assert_true(d.resume);
        assert_false(g.law.given_up);

        /* Short answers: escalation to the top (no shed at high, no reclaim here), then giveup at the
         * soft limit. */
        setup_gov(&g);
        usec_t gave = USEC_INFINITY, top = USEC_INFINITY;
        for (int i = 0; i < 300 && gave == USEC_INFINITY; i++) {
                s = smp(i * 0.02, SOFT, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                if (g.law.exhausted && top == USEC_INFINITY)
                        top = s.t;
                if (d.giveup)
                        gave = s.t;
                gov_reply(&g, false, d.limiter_goal, d.limiter_goal / 4, false, SEC(0.001));
        }
        assert_true(top != USEC_INFINITY);
        assert_true(gave != USEC_INFINITY);
        assert_false(d.at_once);
        assert_true(gave - top >= SEC(1.0) && gave - top < SEC(1.1));

        /* A client that measures what went back (Go, Python) can read one empty answer while the
         * program allocates beside it: one empty answer at the top step is no proof; two in a row
         * are, and give up at once. */
        setup_gov(&g);
        double t = 0.5;
        for (int i = 0; i < 20 && !g.law.exhausted; i++, t += 0.02) {
                s = smp(t, SOFT - MiB / 2, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                assert_false(d.giveup);
                if (d.limiter)
                        gov_reply(&g, false, d.limiter_goal, d.limiter_goal / 4, false, SEC(0.001));
        }
        assert_true(g.law.exhausted); /* short answers took it to the top step */
        unsigned empties = 0;
        for (int i = 0; i < 20 && !d.giveup; i++, t += 0.02) {
                s = smp(t, SOFT - MiB / 2, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                if (d.giveup)
                        break;
                if (d.limiter) {
                        gov_reply(&g, false, d.limiter_goal, 0, false, SEC(0.001));
                        empties++;
                }
        }
        assert_true(d.giveup);
        assert_true(d.at_once);
        assert_int_equal(empties, LAW_EMPTY_STREAK);

        /* The same, but the sandbox was frozen and thawed before the empty answers: those were asks
         * the program could not hear. The law starts over, and empty answers just after the thaw do
         * not count: no give-up. */
        setup_gov(&g);
        t = 0.5;
        for (int i = 0; i < 20 && !g.law.exhausted; i++, t += 0.02) {
                s = smp(t, SOFT - MiB / 2, LEVEL_HIGH, 1);
                gov_step(&g, &s, &d);
                if (d.limiter)
                        gov_reply(&g, false, d.limiter_goal, d.limiter_goal / 4, false, SEC(0.001));
        }
        assert_true(g.law.exhausted);
        gov_thawed(&g, now_usec(), SEC(1.0));
        assert_false(g.law.exhausted);
        assert_int_equal(g.law.step, LAW_TRIM);
        for (int i = 0; i < LAW_EMPTY_STREAK + 2; i++) {
                gov_reply(&g, false, MiB, 0, false, SEC(0.001)); /* timed out while frozen */
                assert_int_equal(g.law.empty_streak, 0);
        }
        s = smp(t, SOFT - MiB / 2, LEVEL_HIGH, 1);
        gov_step(&g, &s, &d);
        assert_false(d.giveup);

        /* Flat under the soft limit with nothing to give: not given up, however long. */
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
                gov_reply(&g, false, d.limiter_goal, d.limiter_goal, false, SEC(0.001));
        }
        /* giveup = 0s: never. */
        setup_gov(&g);
        pol.giveup_usec = 0;
        gov_init(&g, &pol, LIMIT);
        for (int i = 0; i < 500; i++) {
                s = smp(i * 0.02, SOFT, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                assert_false(d.giveup);
        }
}

/* A leak with nothing to give: given up on before it reaches the soft limit, so that the kernel's
 * throttle at memory.high never delays memory.max. */
static void test_leak_dies_before_the_throttle(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        usec_t gave = USEC_INFINITY;
        uint64_t at = 0;
        for (int i = 0; i < 500 && gave == USEC_INFINITY; i++) {
                uint64_t usage = LIMIT / 2 + (uint64_t)i * (uint64_t)(0.4 * MiB); /* 20 MiB/s */
                struct gov_sample s = smp(i * 0.02, usage, LEVEL_HIGH, 0);
                gov_step(&g, &s, &d);
                if (d.giveup) {
                        gave = s.t;
                        at = usage;
                }
        }
        assert_true(gave != USEC_INFINITY);
        assert_true(at > SETPOINT);
        assert_true(at < SOFT);
}

/* Entered by pressure with usage under the setpoint: one ask for 5% of usage. */
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
        /* Holding on v1 (no memory.high), 5 MiB under the soft limit, allocating 500 MiB/s while giving
         * back as much (its usage stands still: in.rate 0): half the 10 ms it needs to get there. */
        in.v2 = false;
        in.last = MONITOR_HOLD_USEC;
        in.soft = LIMIT / 10 * 9;
        in.usage = in.soft - 5 * MiB;
        in.alloc_rate = 500.0 * MiB;
        in.no_high = true;
        assert_int_equal(monitor_interval(&in), 5000);
        /* ... the faster of the two rates: growing at 1000 MiB/s (the allocation estimate still rising) */
        in.rate = 1000.0 * MiB;
        assert_int_equal(monitor_interval(&in), 2500);
        /* over the soft limit: as fast as the sampler goes */
        in.usage = in.soft + MiB;
        assert_int_equal(monitor_interval(&in), MONITOR_MIN_USEC);
        /* with memory.high the kernel slows the program there: the hold period */
        in.usage = in.soft - 5 * MiB;
        in.no_high = false;
        assert_int_equal(monitor_interval(&in), MONITOR_HOLD_USEC);
        /* not holding (under the setpoint by more than a period's growth): the rule does not apply */
        in.no_high = true;
        in.holding = false;
        in.rate = 0;
        assert_true(monitor_interval(&in) >= in.lo);
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

/* Anonymous memory charged to the cgroup and mapped by nobody (huge-page tails malloc_trim left, on
 * a THP-always kernel) goes to memory.reclaim first; the clients are asked only for the rest. */
static void test_slack_first(void **state)
{
        (void)state;
        struct governor g;
        struct gov_decision d;
        setup_gov(&g);
        uint64_t sp = gov_setpoint(&g, SOFT, 0), usage = sp + 10 * MiB;
        struct gov_sample s = smp(0, usage, LEVEL_OK, 1);
        s.can_reclaim = true;
        s.slack = 8 * MiB;
        struct governor g1 = g;
        gov_step(&g1, &s, &d);
        assert_int_equal(d.reclaim, 8 * MiB);
        assert_int_equal(d.limiter, T_TRIM);
        assert_int_equal(d.limiter_goal, 2 * MiB);
        /* one reclaim at a time; its part is still not the clients' */
        s.reclaim_running = true;
        g1 = g;
        gov_step(&g1, &s, &d);
        assert_int_equal(d.reclaim, 0);
        assert_int_equal(d.limiter_goal, 2 * MiB);
        /* more slack than excess: the kernel alone */
        s.reclaim_running = false;
        s.slack = 20 * MiB;
        g1 = g;
        gov_step(&g1, &s, &d);
        assert_int_equal(d.reclaim, 10 * MiB);
        assert_int_equal(d.limiter, 0);
        /* under 1 MiB, or no memory.reclaim: the clients are asked for all of it */
        s.slack = MiB / 2;
        g1 = g;
        gov_step(&g1, &s, &d);
        assert_int_equal(d.reclaim, 0);
        assert_int_equal(d.limiter_goal, 10 * MiB);
        s.slack = 8 * MiB;
        s.can_reclaim = false;
        g1 = g;
        gov_step(&g1, &s, &d);
        assert_int_equal(d.reclaim, 0);
        assert_int_equal(d.limiter_goal, 10 * MiB);
        /* a reclaim of it that frees under half: for a second the clients are asked for all; a full
         * one changes nothing; neither escalates */
        s.can_reclaim = true;
        gov_step(&g, &s, &d);
        assert_int_equal(d.reclaim, 8 * MiB);
        gov_slack_reply(&g, 8 * MiB, 8 * MiB);
        s.t = SEC(0.02);
        gov_step(&g, &s, &d);
        assert_int_equal(d.reclaim, 8 * MiB);
        gov_slack_reply(&g, 8 * MiB, 1 * MiB);
        assert_int_equal(g.law.step, GOV_TRIM);
        s.t = SEC(0.04);
        gov_step(&g, &s, &d);
        assert_int_equal(d.reclaim, 0);
        assert_int_equal(d.limiter_goal, 10 * MiB);
        s.t = SEC(1.1);
        gov_step(&g, &s, &d);
        assert_int_equal(d.reclaim, 8 * MiB);
}

static void test_stat_slack(void **state)
{
        (void)state;
        uint64_t r;
        /* the VM's numbers (THP always, a cache trimmed 20 s) */
        const char *v2 = "anon 210931712\nfile 0\nkernel 729088\nshmem 4096\nanon_thp 0\n"
                         "inactive_anon 227745792\nactive_anon 4096\ninactive_file 0\n";
        assert_int_equal(cg_stat_slack(v2, &r), 0);
        assert_int_equal(r, 227745792 + 4096 - 210931712 - 4096);
        /* shmem and the swap cache sit on the anon LRUs too: not slack */
        assert_int_equal(cg_stat_slack("anon 10\nshmem 5\nswapcached 3\nactive_anon 10\ninactive_anon 9\n", &r), 0);
        assert_int_equal(r, 1);
        assert_int_equal(cg_stat_slack("anon 10\nactive_anon 4\ninactive_anon 4\n", &r), 0);
        assert_int_equal(r, 0);
        assert_int_equal(cg_stat_slack("anon 10\nactive_anon 4\n", &r), -ENODATA);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_setpoint),       cmocka_unit_test(test_active),
                cmocka_unit_test(test_keeps_asking),
                cmocka_unit_test(test_headroom_follows_growth), cmocka_unit_test(test_headroom_fast_replies), cmocka_unit_test(test_escalation),
                cmocka_unit_test(test_futile_client),  cmocka_unit_test(test_empty_and_full_answers),
                cmocka_unit_test(test_giveup),         cmocka_unit_test(test_leak_dies_before_the_throttle),
                cmocka_unit_test(test_deferred_answers), cmocka_unit_test(test_detach_grace),
                cmocka_unit_test(test_idle_after_detach),
                cmocka_unit_test(test_entered_by_pressure), cmocka_unit_test(test_interval),
                cmocka_unit_test(test_sigcgt),         cmocka_unit_test(test_reclaimable),
                cmocka_unit_test(test_slack_first),    cmocka_unit_test(test_stat_slack),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
