/* test_ctl: the control protocol's text (runner/control/ctl.c): the status round-trips through its
 * key=value form, hostile replies and requests are refused, and the Prometheus exposition has one
 * series per level and escaped labels. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "control/ctl.h"
#include "util.h"

static struct ctl_status sample(void)
{
        struct ctl_status s = { .pid = 4242, .limit = 64u << 20, .soft = UINT64_MAX, .usage = 1000, .peak = 2000,
                                .clients = 3, .asks = 7, .asked = 8, .freed = 9, .ev_high = 1, .ev_max = 2,
                                .ev_oom = 3, .ev_oom_kill = 4, .uptime_s = 1.5, .limit_changes = 2,
                                .ctl_refused = 5, .ctl_malformed = 6 };
        snprintf(s.name, sizeof s.name, "we\"b\\1");
        snprintf(s.command, sizeof s.command, "sh\nevil=1");
        snprintf(s.cgroup, sizeof s.cgroup, "/a/b");
        snprintf(s.mode, sizeof s.mode, "v2");
        snprintf(s.level, sizeof s.level, "high");
        return s;
}

static void test_roundtrip(void **state)
{
        (void)state;
        struct ctl_status s = sample(), back;
        char buf[CTL_REPLY_MAX];
        int n = ctl_status_format(&s, buf, sizeof buf);
        assert_true(n > 0);
        assert_int_equal(ctl_status_parse(buf, &back), 0);
        assert_int_equal(back.pid, 4242);
        assert_int_equal(back.limit, 64u << 20);
        assert_int_equal(back.soft, UINT64_MAX);
        assert_int_equal(back.ev_oom_kill, 4);
        assert_int_equal(back.ctl_malformed, 6);
        assert_int_equal(back.clients, 3);
        assert_string_equal(back.level, "high");
        assert_string_equal(back.command, "sh evil=1"); /* a newline cannot inject a key */
        assert_int_equal(back.limit_changes, 2);
        assert_true(back.uptime_s > 1.4 && back.uptime_s < 1.6);
        assert_int_equal(ctl_status_format(&s, buf, 64), -ENOBUFS);
        /* unknown keys are skipped: either side may add some */
        assert_int_equal(ctl_status_parse("pid=1\nnew_key=whatever\nusage=5\n", &back), 0);
        assert_int_equal(back.usage, 5);
}

static void test_hostile(void **state)
{
        (void)state;
        struct ctl_status st;
        static const char *const bad[] = { "usage=12x\n", "pid=0\n", "pid=-1\n", "no equals\n", "limit=\n",
                                           "clients=99999999999\n", "uptime_s=fast\n", "=5\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (ctl_status_parse(bad[i], &st) != -EINVAL)
                        fail_msg("status '%s' accepted", bad[i]);
        uint64_t l, s;
        bool hl, hs;
        assert_int_equal(ctl_parse_set("set limit=100 soft=50", &l, &hl, &s, &hs), 0);
        assert_true(hl && hs && l == 100 && s == 50);
        assert_int_equal(ctl_parse_set("set soft=max", &l, &hl, &s, &hs), 0);
        assert_true(!hl && hs && s == UINT64_MAX);
        static const char *const bad_set[] = { "set", "set ", "set limit=0", "set limit=1 limit=2", "set x=1",
                                               "setlimit=1", "set limit=-5", "set limit=1e9", "status" };
        for (size_t i = 0; i < ELEMENTSOF(bad_set); i++)
                if (ctl_parse_set(bad_set[i], &l, &hl, &s, &hs) != -EINVAL)
                        fail_msg("request '%s' accepted", bad_set[i]);
}

static void test_prometheus(void **state)
{
        (void)state;
        struct ctl_status s = sample();
        char buf[8192];
        assert_true(ctl_status_prometheus(&s, buf, sizeof buf) > 0);
        assert_non_null(strstr(buf, "memrun_limit_bytes{sandbox=\"we\\\"b\\\\1\",kind=\"max\"} 67108864\n"));
        assert_non_null(strstr(buf, "memrun_limit_bytes{sandbox=\"we\\\"b\\\\1\",kind=\"high\"} +Inf\n"));
        assert_non_null(strstr(buf, "memrun_level{sandbox=\"we\\\"b\\\\1\"} 2\n"));
        assert_non_null(strstr(buf, "# TYPE memrun_freed_bytes_total counter\n"));
        assert_non_null(strstr(buf, "memrun_oom_kills_total{sandbox=\"we\\\"b\\\\1\"} 4\n"));
        assert_non_null(strstr(buf, "memrun_throttle_events_total{sandbox=\"we\\\"b\\\\1\"} 1\n"));
        assert_non_null(strstr(buf, ",action=\"trim\"} 0\n"));
        assert_int_equal(ctl_status_prometheus(&s, buf, 100), -ENOBUFS);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_prometheus),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
