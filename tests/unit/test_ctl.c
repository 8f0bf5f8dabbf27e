/* test_ctl: the control protocol's text (runner/control/ctl.c): the status round-trips through its
 * key=value form, hostile replies and requests are refused, the Prometheus exposition has one
 * series per level and escaped labels, and every form (text, Prometheus, JSON) is held to golden
 * bytes. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/ctl.h"
#include "supervise/report.h"
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

/* ---------------------------------------------------------------- goldens
 * The exact bytes of each form, captured before the forms were driven by one field table: the
 * text is the wire protocol, the Prometheus form is scraped (memrunctl status --prometheus and
 * memrun --metrics), the JSON is memrunctl's --json. Any change here is a contract change. */

/* Every field set, none to a value another field has: a swapped field shows. */
static struct ctl_status golden_web(void)
{
        struct ctl_status s = { .pid = 31337, .limit = 256u << 20, .soft = 230u << 20, .usage = 123456789,
                                .peak = 198765432, .clients = 2, .asks = 17, .asked = 33554432, .freed = 29360128,
                                .asks_trim = 11, .asks_collect = 3, .asks_reclaim = 2, .asks_shed = 1, .ev_high = 41,
                                .ev_max = 5, .ev_oom = 4, .ev_oom_kill = 1, .uptime_s = 12.3456, .limit_changes = 3,
                                .ctl_refused = 7, .ctl_malformed = 9 };
        snprintf(s.name, sizeof s.name, "web-1");
        snprintf(s.command, sizeof s.command, "python3");
        snprintf(s.cgroup, sizeof s.cgroup, "/sys/fs/cgroup/user.slice/memrun.slice/web-1");
        snprintf(s.mode, sizeof s.mode, "v2");
        snprintf(s.level, sizeof s.level, "moderate");
        return s;
}

/* No limits (max), the largest numbers, and text that needs escaping in every form. */
static struct ctl_status golden_max(void)
{
        struct ctl_status s = { .pid = INT32_MAX, .limit = UINT64_MAX, .soft = UINT64_MAX, .usage = UINT64_MAX - 1,
                                .peak = UINT64_MAX - 2, .clients = UINT32_MAX, .asks = UINT64_MAX - 3,
                                .asked = UINT64_MAX - 4, .freed = UINT64_MAX - 5, .asks_trim = 10, .asks_collect = 20,
                                .asks_reclaim = 30, .asks_shed = 40, .ev_high = 50, .ev_max = 60, .ev_oom = 70,
                                .ev_oom_kill = 80, .uptime_s = 86400.0005, .limit_changes = 90, .ctl_refused = 100,
                                .ctl_malformed = 110 };
        snprintf(s.name, sizeof s.name, "we\"b\\1");
        snprintf(s.command, sizeof s.command, "sh\nevil=1\r\t\x01 caf\xc3\xa9 \xff");
        snprintf(s.cgroup, sizeof s.cgroup, "/a b/\"q\"\\");
        snprintf(s.mode, sizeof s.mode, "hybrid");
        snprintf(s.level, sizeof s.level, "critical");
        return s;
}

static const char golden_web_text[] =
        "pid=31337\n"
        "name=web-1\n"
        "command=python3\n"
        "cgroup=/sys/fs/cgroup/user.slice/memrun.slice/web-1\n"
        "mode=v2\n"
        "limit=268435456\n"
        "soft=241172480\n"
        "usage=123456789\n"
        "peak=198765432\n"
        "level=moderate\n"
        "clients=2\n"
        "asks=17\n"
        "asked=33554432\n"
        "freed=29360128\n"
        "asks_trim=11\n"
        "asks_collect=3\n"
        "asks_reclaim=2\n"
        "asks_shed=1\n"
        "ev_high=41\n"
        "ev_max=5\n"
        "ev_oom=4\n"
        "ev_oom_kill=1\n"
        "uptime_s=12.346\n"
        "limit_changes=3\n"
        "ctl_refused=7\n"
        "ctl_malformed=9\n";
static const char golden_web_prometheus[] =
        "# HELP memrun_usage_bytes Memory charged to the sandbox.\n"
        "# TYPE memrun_usage_bytes gauge\n"
        "memrun_usage_bytes{sandbox=\"web-1\"} 123456789\n"
        "# HELP memrun_peak_bytes The highest usage seen.\n"
        "# TYPE memrun_peak_bytes gauge\n"
        "memrun_peak_bytes{sandbox=\"web-1\"} 198765432\n"
        "# HELP memrun_limit_bytes The limits: kind=max is the hard limit (memory.max), kind=high the soft one.\n"
        "# TYPE memrun_limit_bytes gauge\n"
        "memrun_limit_bytes{sandbox=\"web-1\",kind=\"max\"} 268435456\n"
        "memrun_limit_bytes{sandbox=\"web-1\",kind=\"high\"} 241172480\n"
        "# HELP memrun_level The pressure level: 0 ok, 1 moderate, 2 high, 3 critical.\n"
        "# TYPE memrun_level gauge\n"
        "memrun_level{sandbox=\"web-1\"} 1\n"
        "# HELP memrun_oom_kills_total Processes the kernel OOM killer ended in the sandbox.\n"
        "# TYPE memrun_oom_kills_total counter\n"
        "memrun_oom_kills_total{sandbox=\"web-1\"} 1\n"
        "# HELP memrun_asks_total Processes asked to free memory (reclaim: memory.reclaim writes), per action.\n"
        "# TYPE memrun_asks_total counter\n"
        "memrun_asks_total{sandbox=\"web-1\",action=\"trim\"} 11\n"
        "memrun_asks_total{sandbox=\"web-1\",action=\"collect\"} 3\n"
        "memrun_asks_total{sandbox=\"web-1\",action=\"reclaim\"} 2\n"
        "memrun_asks_total{sandbox=\"web-1\",action=\"shed\"} 1\n"
        "# HELP memrun_freed_bytes_total Bytes given back when asked.\n"
        "# TYPE memrun_freed_bytes_total counter\n"
        "memrun_freed_bytes_total{sandbox=\"web-1\"} 29360128\n"
        "# HELP memrun_throttle_events_total Times the kernel throttled the sandbox at memory.high.\n"
        "# TYPE memrun_throttle_events_total counter\n"
        "memrun_throttle_events_total{sandbox=\"web-1\"} 41\n"
        "# HELP memrun_asked_bytes_total Bytes asked of libmemlimit processes.\n"
        "# TYPE memrun_asked_bytes_total counter\n"
        "memrun_asked_bytes_total{sandbox=\"web-1\"} 33554432\n"
        "# HELP memrun_limiter_clients libmemlimit processes attached.\n"
        "# TYPE memrun_limiter_clients gauge\n"
        "memrun_limiter_clients{sandbox=\"web-1\"} 2\n"
        "# HELP memrun_max_events_total Times usage hit memory.max (v1: memory.failcnt).\n"
        "# TYPE memrun_max_events_total counter\n"
        "memrun_max_events_total{sandbox=\"web-1\"} 5\n"
        "# HELP memrun_uptime_seconds Seconds since the command started.\n"
        "# TYPE memrun_uptime_seconds gauge\n"
        "memrun_uptime_seconds{sandbox=\"web-1\"} 12.346\n"
        "# HELP memrun_limit_changes_total Limits changed while running (memrunctl set).\n"
        "# TYPE memrun_limit_changes_total counter\n"
        "memrun_limit_changes_total{sandbox=\"web-1\"} 3\n";
static const char golden_web_json[] =
        "{ \"pid\": 31337, \"name\": \"web-1\", \"command\": \"python3\", "
        "\"cgroup\": \"/sys/fs/cgroup/user.slice/memrun.slice/web-1\", \"mode\": \"v2\", \"limit\": 268435456, "
        "\"soft\": 241172480, \"usage\": 123456789, \"peak\": 198765432, \"level\": \"moderate\", "
        "\"clients\": 2, \"asks\": 17, \"asked\": 33554432, \"freed\": 29360128, \"events\": { \"high\": 41, "
        "\"max\": 5, \"oom\": 4, \"oom_kill\": 1 }, \"uptime_s\": 12.346, \"limit_changes\": 3, "
        "\"control\": { \"refused\": 7, \"malformed\": 9 } }";
static const char golden_max_text[] =
        "pid=2147483647\n"
        "name=we\"b\\1\n"
        "command=sh evil=1 \t\x01 caf\xc3\xa9 \xff\n"
        "cgroup=/a b/\"q\"\\\n"
        "mode=hybrid\n"
        "limit=max\n"
        "soft=max\n"
        "usage=18446744073709551614\n"
        "peak=18446744073709551613\n"
        "level=critical\n"
        "clients=4294967295\n"
        "asks=18446744073709551612\n"
        "asked=18446744073709551611\n"
        "freed=18446744073709551610\n"
        "asks_trim=10\n"
        "asks_collect=20\n"
        "asks_reclaim=30\n"
        "asks_shed=40\n"
        "ev_high=50\n"
        "ev_max=60\n"
        "ev_oom=70\n"
        "ev_oom_kill=80\n"
        "uptime_s=86400.000\n"
        "limit_changes=90\n"
        "ctl_refused=100\n"
        "ctl_malformed=110\n";
static const char golden_max_prometheus[] =
        "# HELP memrun_usage_bytes Memory charged to the sandbox.\n"
        "# TYPE memrun_usage_bytes gauge\n"
        "memrun_usage_bytes{sandbox=\"we\\\"b\\\\1\"} 18446744073709551614\n"
        "# HELP memrun_peak_bytes The highest usage seen.\n"
        "# TYPE memrun_peak_bytes gauge\n"
        "memrun_peak_bytes{sandbox=\"we\\\"b\\\\1\"} 18446744073709551613\n"
        "# HELP memrun_limit_bytes The limits: kind=max is the hard limit (memory.max), kind=high the soft one.\n"
        "# TYPE memrun_limit_bytes gauge\n"
        "memrun_limit_bytes{sandbox=\"we\\\"b\\\\1\",kind=\"max\"} +Inf\n"
        "memrun_limit_bytes{sandbox=\"we\\\"b\\\\1\",kind=\"high\"} +Inf\n"
        "# HELP memrun_level The pressure level: 0 ok, 1 moderate, 2 high, 3 critical.\n"
        "# TYPE memrun_level gauge\n"
        "memrun_level{sandbox=\"we\\\"b\\\\1\"} 3\n"
        "# HELP memrun_oom_kills_total Processes the kernel OOM killer ended in the sandbox.\n"
        "# TYPE memrun_oom_kills_total counter\n"
        "memrun_oom_kills_total{sandbox=\"we\\\"b\\\\1\"} 80\n"
        "# HELP memrun_asks_total Processes asked to free memory (reclaim: memory.reclaim writes), per action.\n"
        "# TYPE memrun_asks_total counter\n"
        "memrun_asks_total{sandbox=\"we\\\"b\\\\1\",action=\"trim\"} 10\n"
        "memrun_asks_total{sandbox=\"we\\\"b\\\\1\",action=\"collect\"} 20\n"
        "memrun_asks_total{sandbox=\"we\\\"b\\\\1\",action=\"reclaim\"} 30\n"
        "memrun_asks_total{sandbox=\"we\\\"b\\\\1\",action=\"shed\"} 40\n"
        "# HELP memrun_freed_bytes_total Bytes given back when asked.\n"
        "# TYPE memrun_freed_bytes_total counter\n"
        "memrun_freed_bytes_total{sandbox=\"we\\\"b\\\\1\"} 18446744073709551610\n"
        "# HELP memrun_throttle_events_total Times the kernel throttled the sandbox at memory.high.\n"
        "# TYPE memrun_throttle_events_total counter\n"
        "memrun_throttle_events_total{sandbox=\"we\\\"b\\\\1\"} 50\n"
        "# HELP memrun_asked_bytes_total Bytes asked of libmemlimit processes.\n"
        "# TYPE memrun_asked_bytes_total counter\n"
        "memrun_asked_bytes_total{sandbox=\"we\\\"b\\\\1\"} 18446744073709551611\n"
        "# HELP memrun_limiter_clients libmemlimit processes attached.\n"
        "# TYPE memrun_limiter_clients gauge\n"
        "memrun_limiter_clients{sandbox=\"we\\\"b\\\\1\"} 4294967295\n"
        "# HELP memrun_max_events_total Times usage hit memory.max (v1: memory.failcnt).\n"
        "# TYPE memrun_max_events_total counter\n"
        "memrun_max_events_total{sandbox=\"we\\\"b\\\\1\"} 60\n"
        "# HELP memrun_uptime_seconds Seconds since the command started.\n"
        "# TYPE memrun_uptime_seconds gauge\n"
        "memrun_uptime_seconds{sandbox=\"we\\\"b\\\\1\"} 86400.000\n"
        "# HELP memrun_limit_changes_total Limits changed while running (memrunctl set).\n"
        "# TYPE memrun_limit_changes_total counter\n"
        "memrun_limit_changes_total{sandbox=\"we\\\"b\\\\1\"} 90\n";

static const char golden_max_json[] =
        "{ \"pid\": 2147483647, \"name\": \"we\\\"b\\\\1\", "
        "\"command\": \"sh\\nevil=1\\r\\t\\u0001 caf\xc3\xa9 \\ufffd\", \"cgroup\": \"/a b/\\\"q\\\"\\\\\", "
        "\"mode\": \"hybrid\", \"limit\": null, \"soft\": null, \"usage\": 18446744073709551614, "
        "\"peak\": 18446744073709551613, \"level\": \"critical\", \"clients\": 4294967295, "
        "\"asks\": 18446744073709551612, \"asked\": 18446744073709551611, \"freed\": 18446744073709551610, "
        "\"events\": { \"high\": 50, \"max\": 60, \"oom\": 70, \"oom_kill\": 80 }, \"uptime_s\": 86400.000, "
        "\"limit_changes\": 90, \"control\": { \"refused\": 100, \"malformed\": 110 } }";

struct golden {
        struct ctl_status (*status)(void);
        const char *text, *prometheus, *json;
};

static const struct golden goldens[] = {
        { golden_web, golden_web_text, golden_web_prometheus, golden_web_json },
        { golden_max, golden_max_text, golden_max_prometheus, golden_max_json },
};

/* One form of one golden: exactly the bytes, and -ENOBUFS one byte short (the NUL must fit too). */
static void check_form(int (*form)(const struct ctl_status *, char *, size_t), const struct ctl_status *s,
                       const char *want)
{
        static char buf[65536];
        size_t len = strlen(want);
        assert_int_equal(form(s, buf, sizeof buf), (int)len);
        assert_string_equal(buf, want);
        assert_int_equal(form(s, buf, len + 1), (int)len);
        assert_string_equal(buf, want);
        assert_int_equal(form(s, buf, len), -ENOBUFS);
}

static void test_golden_text(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(goldens); i++) {
                struct ctl_status s = goldens[i].status(), back;
                check_form(ctl_status_format, &s, goldens[i].text);
                /* what memrunctl reads back is what memrun meant: formatted again, the same bytes */
                assert_int_equal(ctl_status_parse(goldens[i].text, &back), 0);
                check_form(ctl_status_format, &back, goldens[i].text);
        }
}

static void test_golden_prometheus(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(goldens); i++) {
                struct ctl_status s = goldens[i].status();
                check_form(ctl_status_prometheus, &s, goldens[i].prometheus);
        }
}

static void test_golden_json(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(goldens); i++) {
                struct ctl_status s = goldens[i].status();
                check_form(ctl_status_json, &s, goldens[i].json);
        }
}

/* memrunctl's JSON and the report escape strings alike (json_piece, util.c), byte for byte, for
 * whatever bytes a name may hold. */
static void test_json_strings(void **state)
{
        (void)state;
        static const char *const names[] = {
                "", "plain", "q\"uote\\back", "\n\r\t\b\f\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                "\xff\xfe", "\xc3", "\xc3(", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                "\xf0\x9f\x98", "a\xe2\x82",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                struct ctl_status s = golden_web();
                snprintf(s.name, sizeof s.name, "%s", names[i]);
                char *want = NULL, got[CTL_JSON_MAX];
                size_t want_size = 0;
                FILE *f = open_memstream(&want, &want_size);
                assert_non_null(f);
                fputs("{ \"pid\": 31337, \"name\": ", f);
                report_json_string(f, names[i]);
                fputs(", \"command\": ", f);
                fclose(f);
                assert_true(ctl_status_json(&s, got, sizeof got) > 0);
                if (strncmp(got, want, want_size) != 0)
                        fail_msg("name %zu: got %.80s, want %s", i, got, want);
                free(want);
        }
}

/* CTL_JSON_MAX holds any status: every string full of bytes escaped to six, the longest numbers. */
static void test_json_worst_case(void **state)
{
        (void)state;
        struct ctl_status s;
        memset(&s, 0x01, sizeof s);
        memset(s.command, 0xff, sizeof s.command);
        s.name[sizeof s.name - 1] = s.command[sizeof s.command - 1] = s.cgroup[sizeof s.cgroup - 1] = '\0';
        s.mode[sizeof s.mode - 1] = s.level[sizeof s.level - 1] = '\0';
        s.pid = INT32_MIN;
        s.uptime_s = -DBL_MAX;
        s.usage = s.peak = s.asks = s.asked = s.freed = s.ev_high = s.ev_max = s.ev_oom = s.ev_oom_kill = UINT64_MAX;
        s.limit = s.soft = s.limit_changes = s.ctl_refused = s.ctl_malformed = UINT64_MAX - 1;
        static char buf[CTL_JSON_MAX];
        int n = ctl_status_json(&s, buf, sizeof buf);
        assert_true(n > 6 * PATH_MAX && n < CTL_JSON_MAX);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_prometheus),
                cmocka_unit_test(test_golden_text),
                cmocka_unit_test(test_golden_prometheus),
                cmocka_unit_test(test_golden_json),
                cmocka_unit_test(test_json_strings),
                cmocka_unit_test(test_json_worst_case),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
