/* test_report: JSON string escaping (every byte sequence gives valid JSON), the whole JSON report
 * checked by jq, and the stderr summary and OOM line. */
#include "unit.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "config/size.h"
#include "supervise/report.h"

#define MiB (1024ull * 1024)
#define FFFD "\\ufffd"
/* The tests speak seconds; the report takes usec_t. */
#define SEC(x) ((usec_t)((x) * 1e6 + 0.5))

/* What a FILE* writer produced, as a malloc'ed string. */
#define CAPTURE(out, call)                                       \
        do {                                                     \
                size_t cap_size_;                                \
                FILE *f = open_memstream(&(out), &cap_size_);    \
                assert_non_null(f);                              \
                call;                                            \
                assert_int_equal(fclose(f), 0);                  \
        } while (0)

static bool have_jq(void)
{
        return system("command -v jq >/dev/null 2>&1") == 0;
}

/* Run jq with args on json; returns jq's exit status, output in *ret_out (malloc'ed). */
static int jq(const char *json, const char *args, char **ret_out)
{
        char *tmp = make_tmpdir();
        put_file(tmp, "in.json", json);
        char cmd[8192];
        xsnprintf(cmd, sizeof cmd, "jq %s '%s/in.json' 2>&1", args, tmp);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char *out = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&out, &size);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0)
                fwrite(buf, 1, n, m);
        fclose(m);
        int st = pclose(p);
        remove_tmpdir(tmp);
        *ret_out = out;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

struct esc_case {
        const char *in;
        const char *json;    /* exactly what report_json_string writes */
        const char *decoded; /* what a JSON parser reads back */
};

static const struct esc_case esc_cases[] = {
        { "", "\"\"", "" },
        { "plain", "\"plain\"", "plain" },
        { "a\"b", "\"a\\\"b\"", "a\"b" },
        { "back\\slash", "\"back\\\\slash\"", "back\\slash" },
        { "\\\"", "\"\\\\\\\"\"", "\\\"" },
        { "line\nbreak\ttab\rcr", "\"line\\nbreak\\ttab\\rcr\"", "line\nbreak\ttab\rcr" },
        { "\b\f", "\"\\b\\f\"", "\b\f" },
        { "\x01", "\"\\u0001\"", "\x01" },
        { "a\x1f" "b", "\"a\\u001fb\"", "a\x1f" "b" },
        { "\x1b[31m", "\"\\u001b[31m\"", "\x1b[31m" },
        { "del\x7f", "\"del\\u007f\"", "del\x7f" },
        { "/path/to", "\"/path/to\"", "/path/to" },
        { "~ !#$%&'()*+,-.:;<=>?@[]^_`{|}", "\"~ !#$%&'()*+,-.:;<=>?@[]^_`{|}\"", "~ !#$%&'()*+,-.:;<=>?@[]^_`{|}" },
        /* valid UTF-8 passes through untouched */
        { "caf\xc3\xa9", "\"caf\xc3\xa9\"", "caf\xc3\xa9" },
        { "\xc2\x80", "\"\xc2\x80\"", "\xc2\x80" },                         /* U+0080, smallest 2-byte */
        { "\xe2\x82\xac", "\"\xe2\x82\xac\"", "\xe2\x82\xac" },             /* euro sign */
        { "\xef\xbf\xbd", "\"\xef\xbf\xbd\"", "\xef\xbf\xbd" },             /* U+FFFD itself */
        { "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80" }, /* emoji */
        { "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf" }, /* U+10FFFF */
        { "\xed\x9f\xbf", "\"\xed\x9f\xbf\"", "\xed\x9f\xbf" },             /* U+D7FF, just below surrogates */
        /* invalid UTF-8: one U+FFFD per bad byte */
        { "\xff", "\"" FFFD "\"", "\xef\xbf\xbd" },
        { "a\xfe" "b", "\"a" FFFD "b\"", "a\xef\xbf\xbd" "b" },
        { "\xc0\x80", "\"" FFFD FFFD "\"", "\xef\xbf\xbd\xef\xbf\xbd" },            /* overlong NUL */
        { "\xc1\xbf", "\"" FFFD FFFD "\"", "\xef\xbf\xbd\xef\xbf\xbd" },            /* overlong */
        { "\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"",
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
        { "\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"",                        /* above U+10FFFF */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf8\x88\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD FFFD "\"",                /* 5-byte form */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\x80", "\"" FFFD "\"", "\xef\xbf\xbd" },                                  /* lone continuation */
        { "\xe2\x82", "\"" FFFD FFFD "\"", "\xef\xbf\xbd\xef\xbf\xbd" },              /* truncated at end */
        { "\xe2\x82" "A", "\"" FFFD FFFD "A\"", "\xef\xbf\xbd\xef\xbf\xbd" "A" },    /* truncated mid */
        { "\xf0\x9f\x98", "\"" FFFD FFFD FFFD "\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xc3", "\"" FFFD "\"", "\xef\xbf\xbd" },
        { "\xc3\"", "\"" FFFD "\\\"\"", "\xef\xbf\xbd\"" },                          /* bad lead, then a quote */
        { "ok\xc3\xa9\xff\n", "\"ok\xc3\xa9" FFFD "\\n\"", "ok\xc3\xa9\xef\xbf\xbd\n" },
};

static void test_json_string_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof esc_cases / sizeof esc_cases[0]; i++) {
                char *out = NULL;
                CAPTURE(out, report_json_string(f, esc_cases[i].in));
                if (strcmp(out, esc_cases[i].json) != 0)
                        fail_msg("case %zu: wrote [%s], want [%s]", i, out, esc_cases[i].json);
                free(out);
        }
}

/* Every case is valid JSON, and decodes to the input (invalid bytes as U+FFFD). */
static void test_json_string_parses(void **state)
{
        (void)state;
        if (!have_jq()) {
                print_message("SKIP: jq not found (apt-get install jq)\n");
                skip();
        }
        char *arr = NULL;
        size_t size;
        FILE *f = open_memstream(&arr, &size);
        fputc('[', f);
        for (size_t i = 0; i < sizeof esc_cases / sizeof esc_cases[0]; i++) {
                if (i)
                        fputc(',', f);
                report_json_string(f, esc_cases[i].in);
        }
        fputs("]\n", f);
        fclose(f);
        for (size_t i = 0; i < sizeof esc_cases / sizeof esc_cases[0]; i++) {
                char *out, args[64];
                xsnprintf(args, sizeof args, "-j '.[%zu]'", i);
                int st = jq(arr, args, &out);
                if (st != 0 || strcmp(out, esc_cases[i].decoded) != 0)
                        fail_msg("case %zu: jq status %d, decoded [%s], want [%s]", i, st, out, esc_cases[i].decoded);
                free(out);
        }
        free(arr);
}

/* Every single byte and every byte pair: whatever comes in, valid JSON goes out. */
static void test_json_string_all_bytes(void **state)
{
        (void)state;
        if (!have_jq()) {
                print_message("SKIP: jq not found (apt-get install jq)\n");
                skip();
        }
        char *arr = NULL;
        size_t size;
        FILE *f = open_memstream(&arr, &size);
        fputc('[', f);
        size_t count = 0;
        for (unsigned a = 1; a < 256; a++) {
                char s[3] = { (char)a, 0, 0 };
                fputs(count++ ? "," : "", f);
                report_json_string(f, s);
                for (unsigned b = 1; b < 256; b += 7) {
                        s[1] = (char)b;
                        fputs(",", f);
                        report_json_string(f, s);
                        count++;
                }
        }
        fputs("]\n", f);
        fclose(f);
        char *out, args[64];
        xsnprintf(args, sizeof args, "-e 'length == %zu'", count);
        int st = jq(arr, args, &out);
        if (st != 0)
                fail_msg("jq refused the escaped strings (status %d): %s", st, out);
        free(out);
        free(arr);
}

static struct report sample_report(char **argv)
{
        struct report r = {
                .argv = argv,
                .duration = SEC(1.5),
                .mode = CG_V2,
                .cgroup_path = "/a/b/memrun-112",
                .max = 32 * MiB,
                .high = SIZE_MAX_VALUE,
                .swap_max = 0,
                .stats = { .current = 36864, .peak = 33554432, .has_peak = true, .ev_high = 0, .ev_max = 70,
                           .ev_oom = 2, .ev_oom_kill = 4, .ev_oom_group_kill = 2 },
                .exit_code = 137,
                .signal = SIGKILL,
                .oom_killed = true,
                .victim_known = true,
                .victim = { .pid = 112, .comm = "my, odd \"comm\"" },
        };
        return r;
}

static void check_jq(const char *json, const char *filter)
{
        char *out, args[1024];
        xsnprintf(args, sizeof args, "-e '%s'", filter);
        int st = jq(json, args, &out);
        if (st != 0)
                fail_msg("jq -e '%s' failed (status %d, output %s) on:\n%s", filter, st, out, json);
        free(out);
}

static void test_json_report(void **state)
{
        (void)state;
        char *argv[] = { (char[]){ "sh" }, (char[]){ "-c" }, (char[]){ "echo \"hi\"\n\tx\\" }, (char[]){ "\xff\xfe" },
                         (char[]){ "\xc3\xbc" }, (char[]){ "" }, (char[]){ "\x01" }, NULL };
        struct report r = sample_report(argv);
        char *json = NULL;
        CAPTURE(json, report_json(f, &r));
        /* the parts that have one right spelling */
        assert_non_null(strstr(json, "\"version\": 1"));
        assert_non_null(strstr(json, "\"command\": [\"sh\", \"-c\", \"echo \\\"hi\\\"\\n\\tx\\\\\", \"" FFFD FFFD
                                     "\", \"\xc3\xbc\", \"\", \"\\u0001\"]"));
        assert_non_null(strstr(json, "\"high\": null"));
        if (!have_jq()) {
                free(json);
                print_message("SKIP: jq not found (apt-get install jq)\n");
                skip();
        }
        check_jq(json, ".version == 1");
        check_jq(json, ".command | length == 7");
        check_jq(json, ".command[0] == \"sh\" and .command[2] == \"echo \\\"hi\\\"\\n\\tx\\\\\"");
        check_jq(json, ".command[3] == \"\\ufffd\\ufffd\" and .command[4] == \"\\u00fc\"");
        check_jq(json, ".command[5] == \"\" and .command[6] == \"\\u0001\"");
        check_jq(json, ".duration_s == 1.5");
        check_jq(json, ".cgroup.version == 2 and .cgroup.path == \"/a/b/memrun-112\"");
        check_jq(json, ".limits.max == 33554432 and .limits.high == null and .limits.swap_max == 0");
        check_jq(json, ".memory.peak == 33554432 and .memory.final == 36864");
        check_jq(json, ".events == {\"high\": 0, \"max\": 70, \"oom\": 2, \"oom_kill\": 4, \"oom_group_kill\": 2}");
        check_jq(json, ".levels == [] and .actions == []");
        check_jq(json, ".limiter.clients == 0");
        check_jq(json, ".limiter.deferred == 0");
        check_jq(json, ".exit.code == 137 and .exit.signal == \"SIGKILL\" and .exit.oom_killed == true");
        check_jq(json, ".exit.oom_victim.pid == 112 and .exit.oom_victim.comm == \"my, odd \\\"comm\\\"\"");
        free(json);

        /* a clean exit on v1: no signal, no victim, "max" limits are null */
        char *argv2[] = { (char[]){ "true" }, NULL };
        struct report r2 = { .argv = argv2, .duration = SEC(0.25), .mode = CG_HYBRID, .cgroup_path = "/p/\"x\"",
                             .max = SIZE_MAX_VALUE, .high = SIZE_MAX_VALUE, .swap_max = SIZE_MAX_VALUE };
        CAPTURE(json, report_json(f, &r2));
        check_jq(json, ".command == [\"true\"]");
        check_jq(json, ".cgroup.version == 1 and .cgroup.mode == \"hybrid\" and .cgroup.path == \"/p/\\\"x\\\"\"");
        check_jq(json, ".limits == {\"max\": null, \"high\": null, \"swap_max\": null}");
        check_jq(json, ".exit.code == 0 and .exit.signal == null and .exit.oom_killed == false");
        check_jq(json, ".exit | has(\"oom_victim\") | not");
        free(json);

        /* killed by a signal without a short name still gives a string */
        r2.signal = 64;
        r2.exit_code = 128 + 64;
        CAPTURE(json, report_json(f, &r2));
        check_jq(json, ".exit.signal | startswith(\"SIG\")");
        free(json);
}

static void test_report_write(void **state)
{
        (void)state;
        char *tmp = make_tmpdir();
        char *argv[] = { (char[]){ "leak" }, NULL };
        struct report r = sample_report(argv);
        char path[PATH_MAX];

        xsnprintf(path, sizeof path, "%s/out.json", tmp);
        assert_int_equal(report_write(path, &r), 0);
        char *got = get_file(tmp, "out.json"), *want = NULL;
        CAPTURE(want, report_json(f, &r));
        assert_string_equal(got, want);
        free(got);
        free(want);
        /* nothing but the report is left behind */
        DIR *d = opendir(tmp);
        int n = 0;
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        assert_int_equal(n, 1);

        xsnprintf(path, sizeof path, "%s/no/such/out.json", tmp);
        assert_int_equal(report_write(path, &r), -ENOENT);
        /* a device is written in place, never replaced by a file, and its refusal said */
        struct stat st;
        assert_int_equal(report_write("/dev/full", &r), -ENOSPC);
        assert_int_equal(stat("/dev/full", &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(report_write("/dev/null", &r), 0);
        assert_int_equal(report_write(tmp, &r), -EISDIR);
        remove_tmpdir(tmp);
}

static void assert_contains(const char *text, const char *part)
{
        if (!strstr(text, part))
                fail_msg("\"%s\" does not contain \"%s\"", text, part);
}

static void test_summary(void **state)
{
        (void)state;
        char *argv[] = { (char[]){ "leak" }, NULL };
        struct report r = sample_report(argv);
        char *s = NULL;

        CAPTURE(s, report_summary(f, "memrun", &r));
        assert_contains(s, "memrun: OOM-killed after 1.50s");
        assert_contains(s, "peak 32M of 32M (100.0%)");
        assert_contains(s, "0 memory.high throttling events");
        assert_null(strstr(s, "v1"));
        assert_int_equal(s[strlen(s) - 1], '\n');
        assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1); /* exactly one line */
        free(s);

        r.oom_killed = false;
        r.signal = SIGTERM;
        r.stats.ev_high = 1;
        r.stats.peak = 12 * MiB;
        r.max = 256 * MiB;
        CAPTURE(s, report_summary(f, "job", &r));
        assert_contains(s, "job: killed by SIGTERM after 1.50s");
        assert_contains(s, "peak 12M of 256M (4.7%)");
        assert_contains(s, "; 1 memory.high throttling event\n");
        free(s);

        r.signal = 0;
        r.exit_code = 3;
        r.mode = CG_V1;
        r.max = SIZE_MAX_VALUE;
        r.stats.ev_high = 2;
        CAPTURE(s, report_summary(f, "memrun", &r));
        assert_contains(s, "memrun: exited 3 after 1.50s; peak 12M of max;");
        assert_null(strstr(s, "%)"));
        assert_contains(s, "2 memory.high throttling events (v1: no memory.high)");
        free(s);
}

static void test_oom_line(void **state)
{
        (void)state;
        char *argv[] = { (char[]){ "leak" }, NULL };
        struct report r = sample_report(argv);
        char *s = NULL;

        CAPTURE(s, report_oom_line(f, "memrun", &r));
        assert_contains(s, "memrun: OOM:");
        assert_contains(s, "my, odd \"comm\" (pid 112)");
        assert_contains(s, "in /a/b/memrun-112");
        assert_contains(s, "limit 32M");
        assert_contains(s, "peak 32M");
        assert_contains(s, "after 1.50s");
        assert_contains(s, "(oom_kill 4)\n");
        free(s);

        r.victim_known = false;
        r.max = 2684354560ull;
        r.stats.peak = 2684354560ull - 4096;
        CAPTURE(s, report_oom_line(f, "memrun", &r));
        assert_contains(s, "ended a process in /a/b/memrun-112");
        assert_contains(s, "limit 2.5G");
        assert_null(strstr(s, "pid"));
        free(s);
}

/* Times are kept in usec_t and printed as before: seconds with three decimals ("t", "gave_up_t",
 * "duration_s"), milliseconds with one ("ms"); an action that has not ended shows 0 ms. */
static void test_log_times(void **state)
{
        (void)state;
        char *argv[] = { (char[]){ "leak" }, NULL };
        struct report r = sample_report(argv);
        struct report_log *l = calloc(1, sizeof *l);
        assert_non_null(l);
        l->governor = true;
        l->gave_up_t = USEC_INFINITY;
        report_log_level(l, SEC(1.5), LEVEL_HIGH, 4096, "usage");
        struct report_action *a = report_log_action(l, 2250, "trim", LEVEL_HIGH);
        assert_non_null(a);
        a->took = 2560;
        assert_non_null(report_log_action(l, SEC(3), "exec", LEVEL_HIGH)); /* still running */
        l->agg[ACTION_TRIM].took = SEC(1.25);
        r.log = l;
        r.duration = 12345678;
        char *json = NULL;
        CAPTURE(json, report_json(f, &r));
        assert_non_null(strstr(json, "\"duration_s\": 12.346,"));
        assert_non_null(strstr(json, "{ \"t\": 1.500, \"level\": \"high\", \"usage\": 4096, \"reason\": \"usage\" }"));
        assert_non_null(strstr(json, "{ \"t\": 0.002, \"action\": \"trim\", \"level\": \"high\", \"freed\": 0, \"ms\": 2.6"));
        assert_non_null(strstr(json, "{ \"t\": 3.000, \"action\": \"exec\", \"level\": \"high\", \"freed\": 0, \"ms\": 0.0"));
        assert_non_null(strstr(json, "\"trim\": { \"asks\": 0, \"asked\": 0, \"freed\": 0, \"ms\": 1250.0 }"));
        assert_non_null(strstr(json, "\"gave_up_t\": null,"));
        free(json);
        l->giveups = 1;
        l->gave_up_t = SEC(0.75);
        CAPTURE(json, report_json(f, &r));
        assert_non_null(strstr(json, "\"gave_up_t\": 0.750,"));
        free(json);
        CAPTURE(json, report_summary(f, "memrun", &r));
        assert_non_null(strstr(json, "after 12.35s;"));
        assert_non_null(strstr(json, "; gave up holding the soft limit at 0.75s"));
        free(json);
        free(l);
}

int main(void)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_string_table),
                cmocka_unit_test(test_json_string_parses),
                cmocka_unit_test(test_json_string_all_bytes),
                cmocka_unit_test(test_json_report),
                cmocka_unit_test(test_report_write),
                cmocka_unit_test(test_summary),
                cmocka_unit_test(test_oom_line),
                cmocka_unit_test(test_log_times),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
