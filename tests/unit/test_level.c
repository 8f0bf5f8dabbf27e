/* test_level: the level engine and the stall detector on synthetic sample streams. */
#include "unit.h"

#include "config/size.h"
#include "supervise/actions.h"
#include "supervise/level.h"

#define MiB (1024ull * 1024)
#define LIMIT (100 * MiB)
#define PCT(x) ((uint32_t)((x) * 10000))
/* The tests speak seconds; the engine takes usec_t. */
#define SEC(x) ((usec_t)((x) * 1e6 + 0.5))

/* moderate 70%, high 85%, critical 95% (+ psi_full 5%), hysteresis 5%, dwell 2s. */
static void test_policy(struct policy *p)
{
        memset(p, 0, sizeof *p);
        p->levels[LEVEL_MODERATE] = (struct policy_level){ .defined = true, .usage_ppm = PCT(70), .psi_some_ppm = PCT(10) };
        p->levels[LEVEL_HIGH] = (struct policy_level){ .defined = true, .usage_ppm = PCT(85) };
        p->levels[LEVEL_CRITICAL] = (struct policy_level){ .defined = true, .usage_ppm = PCT(95), .psi_full_ppm = PCT(5) };
        p->hysteresis_ppm = PCT(5);
        p->dwell_usec = 2000000;
        p->stall_enabled = true;
        p->stall_psi_full_ppm = PCT(20);
        p->stall_duration_usec = 10000000;
        p->stall_step_ppm = PCT(50);
}

/* Feed (t, usage MiB) and return the decision count; *last gets the last decision. */
static int feed(struct level_engine *e, double t, double usage_mib, struct level_decision *last)
{
        struct level_sample s = { .t = SEC(t), .usage = (uint64_t)(usage_mib * (double)MiB) };
        struct level_decision d = {};
        int r = level_feed(e, &s, &d);
        if (r && last)
                *last = d;
        return r;
}

static void test_enter_in_order(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        level_engine_init(&e, &p, LIMIT);

        assert_int_equal(feed(&e, 0, 10, &d), 0);
        assert_int_equal(feed(&e, 1, 69.9, &d), 0);
        assert_int_equal(e.cur, LEVEL_OK);
        assert_int_equal(feed(&e, 2, 70, &d), 1);
        assert_int_equal(d.from, LEVEL_OK);
        assert_int_equal(d.to, LEVEL_MODERATE);
        assert_true(d.run_actions);
        assert_int_equal(d.reason, REASON_USAGE);
        assert_int_equal(feed(&e, 3, 80, &d), 0); /* no repeat configured */
        assert_int_equal(feed(&e, 4, 86, &d), 1);
        assert_int_equal(d.to, LEVEL_HIGH);
        assert_int_equal(feed(&e, 5, 96, &d), 1);
        assert_int_equal(d.to, LEVEL_CRITICAL);
}

static void test_skip_levels(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        level_engine_init(&e, &p, LIMIT);
        assert_int_equal(feed(&e, 0, 10, &d), 0);
        assert_int_equal(feed(&e, 0.1, 99, &d), 1);
        assert_int_equal(d.from, LEVEL_OK);
        assert_int_equal(d.to, LEVEL_CRITICAL);
        assert_true(d.run_actions);
}

static void test_step_down_with_hysteresis_and_dwell(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        level_engine_init(&e, &p, LIMIT);
        assert_int_equal(feed(&e, 0, 96, &d), 1);
        assert_int_equal(d.to, LEVEL_CRITICAL);
        /* 92% is below 95% but not 5% below: stay, however long. */
        for (int i = 1; i <= 10; i++)
                assert_int_equal(feed(&e, i, 92, &d), 0);
        assert_int_equal(e.cur, LEVEL_CRITICAL);
        /* 50%: far below everything, but the engine steps down one level per dwell. */
        assert_int_equal(feed(&e, 11, 50, &d), 0);
        assert_int_equal(feed(&e, 12.9, 50, &d), 0);
        assert_int_equal(feed(&e, 13, 50, &d), 1);
        assert_int_equal(d.from, LEVEL_CRITICAL);
        assert_int_equal(d.to, LEVEL_HIGH);
        assert_false(d.run_actions);
        assert_int_equal(d.reason, REASON_RECOVERED);
        assert_int_equal(feed(&e, 13.5, 50, &d), 0); /* the next step waits its own dwell */
        assert_int_equal(feed(&e, 15.4, 50, &d), 0);
        assert_int_equal(feed(&e, 15.6, 50, &d), 1);
        assert_int_equal(d.to, LEVEL_MODERATE);
        assert_int_equal(feed(&e, 16, 50, &d), 0);
        assert_int_equal(feed(&e, 18.1, 50, &d), 1);
        assert_int_equal(d.to, LEVEL_OK);
        assert_int_equal(feed(&e, 30, 50, &d), 0);
}

static void test_dwell_restarts_when_usage_returns(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        level_engine_init(&e, &p, LIMIT);
        assert_int_equal(feed(&e, 0, 72, &d), 1);
        assert_int_equal(feed(&e, 1, 60, &d), 0);   /* below 65%: dwell starts */
        assert_int_equal(feed(&e, 2.5, 68, &d), 0); /* back within hysteresis: dwell resets */
        assert_int_equal(feed(&e, 3.2, 60, &d), 0);
        assert_int_equal(feed(&e, 5.0, 60, &d), 0); /* only 1.8s since 3.2 */
        assert_int_equal(e.cur, LEVEL_MODERATE);
        assert_int_equal(feed(&e, 5.3, 60, &d), 1);
        assert_int_equal(d.to, LEVEL_OK);
}

static void test_repeat_on_growth(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        p.levels[LEVEL_MODERATE].repeat_ppm = PCT(3);
        level_engine_init(&e, &p, LIMIT);
        assert_int_equal(feed(&e, 0, 71, &d), 1);
        assert_int_equal(feed(&e, 1, 73, &d), 0); /* +2% */
        assert_int_equal(feed(&e, 2, 74.1, &d), 1);
        assert_true(d.repeat);
        assert_true(d.run_actions);
        assert_int_equal(d.to, LEVEL_MODERATE);
        /* The program gave memory back (to 72%) and grew again: asked again 3% above its low point. */
        assert_int_equal(feed(&e, 3, 72, &d), 0);
        assert_int_equal(feed(&e, 4, 74.5, &d), 0);
        assert_int_equal(feed(&e, 5, 75.1, &d), 1);
        assert_true(d.repeat);
}

static void test_psi_conditions(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        struct level_sample s = { .t = 0, .usage = 10 * MiB, .psi_valid = true, .psi_some_ppm = PCT(12) };
        test_policy(&p);
        level_engine_init(&e, &p, LIMIT);
        assert_int_equal(level_feed(&e, &s, &d), 1);
        assert_int_equal(d.to, LEVEL_MODERATE);
        assert_int_equal(d.reason, REASON_PSI_SOME);
        s = (struct level_sample){ .t = SEC(1), .usage = 10 * MiB, .psi_valid = true, .psi_full_ppm = PCT(6) };
        assert_int_equal(level_feed(&e, &s, &d), 1);
        assert_int_equal(d.to, LEVEL_CRITICAL);
        assert_int_equal(d.reason, REASON_PSI_FULL);
        /* psi values without psi_valid are ignored */
        level_engine_init(&e, &p, LIMIT);
        s = (struct level_sample){ .t = 0, .usage = 10 * MiB, .psi_valid = false, .psi_full_ppm = PCT(90) };
        assert_int_equal(level_feed(&e, &s, &d), 0);
}

static void test_prediction(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        p.levels[LEVEL_HIGH].predict_usec = 5000000; /* the limit within 5 s: high */
        level_engine_init(&e, &p, LIMIT);
        /* 10 MiB/s from 20%: the limit is ~8 s away at 20 MiB, well above moderate's 70%? no: stays ok */
        int changes = 0;
        double t;
        for (t = 0; t <= 3.0; t += 0.1)
                changes += feed(&e, t, 20 + 10 * t, &d);
        assert_int_equal(changes, 0); /* at 50% growing 10 MiB/s, the limit is 5 s away only at 50% */
        for (; t <= 4.5; t += 0.1)
                changes += feed(&e, t, 20 + 10 * t, &d);
        assert_int_equal(changes, 1);
        assert_int_equal(d.to, LEVEL_HIGH); /* entered before usage reached any threshold */
        assert_int_equal(d.reason, REASON_PREDICT);
        assert_true(d.eta > 0 && d.eta <= SEC(5.0));
        assert_true(e.last_usage < 70 * MiB);
        /* No growth, no prediction. */
        level_engine_init(&e, &p, LIMIT);
        for (t = 0; t < 20; t += 0.5)
                assert_int_equal(feed(&e, t, 60, &d), 0);
        assert_true(level_eta(&e, 60 * MiB) == USEC_INFINITY);
}

static void test_no_limit_means_no_usage_levels(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        level_engine_init(&e, &p, SIZE_MAX_VALUE);
        assert_int_equal(feed(&e, 0, 1e6, &d), 0);
        assert_int_equal(level_next_threshold(&e), SIZE_MAX_VALUE);
}

static void test_thresholds_and_goal(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        test_policy(&p);
        level_engine_init(&e, &p, LIMIT);
        assert_int_equal(level_next_threshold(&e), 70 * MiB);
        assert_int_equal(level_usage_threshold(&e, LEVEL_HIGH), 85 * MiB);
        e.cur = LEVEL_HIGH;
        assert_int_equal(level_next_threshold(&e), 95 * MiB);
        /* goal: usage down to the level's threshold less hysteresis (85% - 5% = 80%) */
        assert_int_equal(actions_goal(&e, LEVEL_HIGH, 90 * MiB), 10 * MiB);
        /* pressure-only entry (usage below that): 5% of usage */
        assert_int_equal(actions_goal(&e, LEVEL_HIGH, 40 * MiB), 2 * MiB);
        /* undefined levels are skipped */
        p.levels[LEVEL_HIGH].defined = false;
        e.cur = LEVEL_MODERATE;
        assert_int_equal(level_next_threshold(&e), 95 * MiB);
}

static void test_step_down_skips_undefined_levels(void **state)
{
        (void)state;
        struct policy p;
        struct level_engine e;
        struct level_decision d = {};
        test_policy(&p);
        p.levels[LEVEL_HIGH].defined = false;
        level_engine_init(&e, &p, LIMIT);
        assert_int_equal(feed(&e, 0, 97, &d), 1);
        assert_int_equal(feed(&e, 1, 10, &d), 0);
        assert_int_equal(feed(&e, 3.1, 10, &d), 1);
        assert_int_equal(d.to, LEVEL_MODERATE);
}

static int stall(struct stall_detector *s, double t, double usage_mib, uint64_t ev_high, uint32_t full, uint64_t freed)
{
        struct stall_sample ss = { .t = SEC(t), .usage = (uint64_t)(usage_mib * (double)MiB), .high = 90 * MiB,
                                   .ev_high = ev_high, .psi_valid = true, .psi_full_ppm = full,
                                   .freed_total = freed };
        return stall_feed(s, &ss);
}

static void test_stall(void **state)
{
        (void)state;
        struct policy p;
        struct stall_detector s;
        test_policy(&p);
        stall_init(&s, &p);
        uint64_t ev = 0;
        assert_int_equal(stall(&s, 0, 90, ev, PCT(40), 0), 0); /* primes */
        int fired = 0;
        double t;
        for (t = 0.5; t < 9.9; t += 0.5)
                fired += stall(&s, t, 90, ev += 10, PCT(40), 0);
        assert_int_equal(fired, 0);
        for (; t < 11; t += 0.5)
                fired += stall(&s, t, 90, ev += 10, PCT(40), 0);
        assert_int_equal(fired, 1);

        /* Something is being freed: not a stall. */
        stall_init(&s, &p);
        uint64_t freed = 0;
        fired = 0;
        for (t = 0; t < 30; t += 0.5)
                fired += stall(&s, t, 90, ev += 10, PCT(40), freed += MiB);
        assert_int_equal(fired, 0);

        /* Low PSI full: throttled but not stalled. */
        stall_init(&s, &p);
        for (t = 0; t < 30; t += 0.5)
                fired += stall(&s, t, 90, ev += 10, PCT(1), 0);
        assert_int_equal(fired, 0);

        /* Well below memory.high: not parked on it. */
        stall_init(&s, &p);
        for (t = 0; t < 30; t += 0.5)
                fired += stall(&s, t, 50, ev += 10, PCT(40), 0);
        assert_int_equal(fired, 0);

        /* Disabled. */
        p.stall_enabled = false;
        stall_init(&s, &p);
        for (t = 0; t < 30; t += 0.5)
                fired += stall(&s, t, 90, ev += 10, PCT(40), 0);
        assert_int_equal(fired, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_enter_in_order),
                cmocka_unit_test(test_skip_levels),
                cmocka_unit_test(test_step_down_with_hysteresis_and_dwell),
                cmocka_unit_test(test_dwell_restarts_when_usage_returns),
                cmocka_unit_test(test_repeat_on_growth),
                cmocka_unit_test(test_psi_conditions),
                cmocka_unit_test(test_prediction),
                cmocka_unit_test(test_no_limit_means_no_usage_levels),
                cmocka_unit_test(test_thresholds_and_goal),
                cmocka_unit_test(test_step_down_skips_undefined_levels),
                cmocka_unit_test(test_stall),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
