/* test_policy: the INI policy parser (good files, every key and value form, hostile files), the
 * built-in policy, the shipped examples, cross-field validation and the printed plan. */
#include "unit.h"

#include <signal.h>

#include "config/policy.h"
#include "config/size.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define MS 1000ull
#define SEC 1000000ull

/* ------------------------------------------------------------------ helpers */

/* A named field of a policy as a number, so tables can say "high.usage" -> 850000. */
static uint64_t field(const struct policy *p, const char *name)
{
        static const char *const lv[] = { "", "moderate.", "high.", "critical." };
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++) {
                size_t n = strlen(lv[l]);
                if (strncmp(name, lv[l], n) != 0)
                        continue;
                const struct policy_level *pl = &p->levels[l];
                const char *k = name + n;
                if (!strcmp(k, "defined"))
                        return pl->defined;
                if (!strcmp(k, "usage"))
                        return pl->usage_ppm;
                if (!strcmp(k, "psi_some"))
                        return pl->psi_some_ppm;
                if (!strcmp(k, "psi_full"))
                        return pl->psi_full_ppm;
                if (!strcmp(k, "predict"))
                        return pl->predict_usec;
                if (!strcmp(k, "repeat"))
                        return pl->repeat_ppm;
                if (!strcmp(k, "n_actions"))
                        return pl->n_actions;
                fail_msg("unknown level field %s", name);
        }
        static const struct {
                const char *name;
                size_t off, size;
        } f[] = {
#define F(n, m) { n, offsetof(struct policy, m), sizeof(((struct policy *)0)->m) }
                F("limit", limit),
                F("soft", soft),
                F("swap", swap),
                F("soft_ppm", soft_ppm),
                F("limit_set", limit_set),
                F("soft_set", soft_set),
                F("swap_set", swap_set),
                F("hysteresis", hysteresis_ppm),
                F("dwell", dwell_usec),
                F("psi_window", psi_window_usec),
                F("interval_min", interval_min_usec),
                F("interval_max", interval_max_usec),
                F("hook_timeout", hook_timeout_usec),
                F("stall.enabled", stall_enabled),
                F("stall.psi_full", stall_psi_full_ppm),
                F("stall.duration", stall_duration_usec),
                F("stall.action", stall_action),
                F("stall.step", stall_step_ppm),
                F("governor.hold", hold),
                F("governor.jvm", jvm),
                F("governor.giveup", giveup_usec),
                F("governor.ask_timeout", ask_timeout_usec),
                F("governor.target", target),
                F("governor.target_ppm", target_ppm),
#undef F
        };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
                if (strcmp(f[i].name, name) != 0)
                        continue;
                const char *b = (const char *)p + f[i].off;
                switch (f[i].size) {
                case 1:
                        return *(const bool *)(const void *)b;
                case 4:
                        return *(const uint32_t *)(const void *)b;
                case 8:
                        return *(const uint64_t *)(const void *)b;
                }
        }
        fail_msg("unknown field %s", name);
        return 0;
}

/* Actions of a level as "trim,signal:10,exec:cmd". */
static const char *actions_str(const struct policy_level *l, char *buf, size_t size)
{
        size_t o = 0;
        buf[0] = '\0';
        for (unsigned i = 0; i < l->n_actions; i++) {
                const struct policy_action *a = &l->actions[i];
                int n;
                if (a->type == ACTION_SIGNAL)
                        n = snprintf(buf + o, size - o, "%ssignal:%d", i ? "," : "", a->signal);
                else if (a->type == ACTION_EXEC)
                        n = snprintf(buf + o, size - o, "%sexec:%s", i ? "," : "", a->cmd);
                else
                        n = snprintf(buf + o, size - o, "%s%s", i ? "," : "", action_type_name(a->type));
                assert_true(n > 0 && (size_t)n < size - o);
                o += (size_t)n;
        }
        return buf;
}

static void parse_ok(const char *text, struct policy *p)
{
        char err[512] = "";
        int r = policy_parse_string(text, "t.ini", p, err, sizeof err);
        if (r != 0)
                fail_msg("parse of\n---\n%s---\nfailed: %d %s", text, r, err);
}

static char *print_to_string(const struct policy *p)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&buf, &size);
        assert_non_null(m);
        policy_print(m, p);
        assert_int_equal(fclose(m), 0);
        return buf;
}

/* Fails unless every needle (NULL-terminated list) is in the haystack. */
static void assert_contains(const char *hay, const char *const *needles, const char *what)
{
        for (size_t i = 0; needles[i]; i++)
                if (!strstr(hay, needles[i]))
                        fail_msg("%s: '%s' not found in:\n%s", what, needles[i], hay);
}

/* A file of the source tree: tests compile from the top directory (__FILE__ is
 * tests/unit/test_policy.c) and `make unit` runs there; else look up from the binary (build/tests). */
static const char *src_path(const char *rel, char *buf, size_t size)
{
        const char *me = __FILE__, *tail = "tests/unit/test_policy.c";
        size_t n = strlen(me), t = strlen(tail);
        if (n > t && strcmp(me + n - t, tail) == 0) {
                xsnprintf(buf, size, "%.*s%s", (int)(n - t), me, rel);
                if (access(buf, R_OK) == 0)
                        return buf;
        }
        xsnprintf(buf, size, "%s", rel);
        if (access(buf, R_OK) == 0)
                return buf;
        char exe[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k > 0) {
                exe[k] = '\0';
                for (int up = 0; up < 4; up++) {
                        char *s = strrchr(exe, '/');
                        if (!s)
                                break;
                        *s = '\0';
                        xsnprintf(buf, size, "%s/%s", exe, rel);
                        if (access(buf, R_OK) == 0)
                                return buf;
                }
        }
        xsnprintf(buf, size, "%s", rel);
        return buf;
}

/* ------------------------------------------------------------------ good files */

struct good_case {
        const char *text;
        const char *field;
        uint64_t want;
};

static const struct good_case good[] = {
        /* [memory] */
        { "[memory]\nlimit = 2.5G\n", "limit", 2684354560ull },
        { "[memory]\nlimit = 2.5G\n", "limit_set", 1 },
        { "[memory]\nlimit = 512KiB\n", "limit", 512 * KiB },
        { "[memory]\nlimit = 256m\n", "limit", 256 * MiB },
        { "[memory]\nlimit = 4096\n", "limit", 4096 },
        { "[memory]\nlimit = max\n", "limit", SIZE_MAX_VALUE },
        { "[memory]\nlimit = 9223372036854775807\n", "limit", 9223372036854775807ull },
        { "[memory]\nsoft = 90%\n", "soft_ppm", 900000 },
        { "[memory]\nsoft = 90%\n", "soft_set", 1 },
        { "[memory]\nsoft = 92.5%\n", "soft_ppm", 925000 },
        { "[memory]\nsoft = 100%\n", "soft_ppm", PCT_ONE },
        { "[memory]\nsoft = 1G\n", "soft", GiB },
        { "[memory]\nsoft = 1G\n", "soft_ppm", 0 },
        { "[memory]\nswap = 0\n", "swap", 0 },
        { "[memory]\nswap = 0\n", "swap_set", 1 },
        { "[memory]\nswap = 1G\n", "swap", GiB },
        { "[memory]\nswap = max\n", "swap", SIZE_MAX_VALUE },
        { "[memory]\nlimit = 1G\n", "soft_set", 0 },
        { "[memory]\nlimit = 1G\n", "swap_set", 0 },
        /* levels: every key, every value form */
        { "[level.moderate]\nusage = 70%\n", "moderate.usage", 700000 },
        { "[level.moderate]\nusage = 70%\n", "moderate.defined", 1 },
        { "[level.moderate]\nusage = 70%\n", "moderate.n_actions", 0 },
        { "[level.moderate]\nusage = 70%\n", "high.defined", 0 },
        { "[level.moderate]\nusage = 100%\n", "moderate.usage", PCT_ONE },
        { "[level.moderate]\nusage = 0.5%\n", "moderate.usage", 5000 },
        { "[level.moderate]\nusage = 70.25%\n", "moderate.usage", 702500 },
        { "[level.high]\npsi_some = 10%\n", "high.psi_some", 100000 },
        { "[level.high]\npsi_full = 5%\n", "high.psi_full", 50000 },
        { "[level.critical]\npredict = 30s\n", "critical.predict", 30 * SEC },
        { "[level.critical]\npredict = 250ms\n", "critical.predict", 250 * MS },
        { "[level.critical]\npredict = 1m\n", "critical.predict", 60 * SEC },
        { "[level.critical]\npredict = 1.5min\n", "critical.predict", 90 * SEC },
        { "[level.critical]\npredict = 1h\n", "critical.predict", 3600 * SEC },
        { "[level.critical]\nusage = 90%\nrepeat = 2.5%\n", "critical.repeat", 25000 },
        /* [recovery] */
        { "[recovery]\nhysteresis = 3%\n", "hysteresis", 30000 },
        { "[recovery]\nhysteresis = 0%\n", "hysteresis", 0 },
        { "[recovery]\ndwell = 500ms\n", "dwell", 500 * MS },
        { "[recovery]\ndwell = 0s\n", "dwell", 0 },
        /* [monitor] */
        { "[monitor]\npsi_window = 500ms\n", "psi_window", 500 * MS },
        { "[monitor]\npsi_window = 10s\n", "psi_window", 10 * SEC },
        { "[monitor]\ninterval_min = 10ms\n", "interval_min", 10 * MS },
        { "[monitor]\ninterval_max = 5s\n", "interval_max", 5 * SEC },
        { "[monitor]\nhook_timeout = 2m\n", "hook_timeout", 120 * SEC },
        /* [stall] */
        { "[stall]\npsi_full = 30%\n", "stall.psi_full", 300000 },
        { "[stall]\nduration = 20s\n", "stall.duration", 20 * SEC },
        { "[stall]\naction = kill\n", "stall.action", STALL_KILL },
        { "[stall]\naction = raise\n", "stall.action", STALL_RAISE },
        { "[stall]\nstep = 25%\n", "stall.step", 250000 },
        { "[stall]\nenabled = no\n", "stall.enabled", 0 },
        { "[stall]\nenabled = false\n", "stall.enabled", 0 },
        { "[stall]\nenabled = yes\n", "stall.enabled", 1 },
        { "[governor]\nhold = no\n", "governor.hold", 0 },
        { "[governor]\ngiveup = 0s\n", "governor.giveup", 0 },
        { "[governor]\ngiveup = 2.5s\n", "governor.giveup", 2500 * MS },
        { "[governor]\nask_timeout = 10ms\n", "governor.ask_timeout", 10 * MS },
        { "", "governor.hold", 1 },
        { "", "governor.jvm", 1 },
        { "[governor]\njvm = no\n", "governor.jvm", 0 },
        { "", "governor.giveup", 1 * SEC },
        { "", "governor.ask_timeout", 1 * SEC },
        { "", "governor.target", UINT64_MAX },
        { "[governor]\ntarget = auto\n", "governor.target", UINT64_MAX },
        { "[governor]\ntarget = 70%\n", "governor.target_ppm", 700000 },
        { "[governor]\ntarget = 1.5G\n", "governor.target", 1536ull << 20 },
        /* file-level defaults: no levels, built-in recovery/monitor/stall */
        { "", "moderate.defined", 0 },
        { "", "critical.defined", 0 },
        { "", "limit_set", 0 },
        { "", "hysteresis", 50000 },
        { "", "dwell", 2 * SEC },
        { "", "psi_window", 2 * SEC },
        { "", "interval_min", 50 * MS },
        { "", "interval_max", 2 * SEC },
        { "", "hook_timeout", 10 * SEC },
        { "", "stall.enabled", 1 },
        { "[memory]\nlimit = 1G\n", "stall.duration", 10 * SEC },
        /* syntax: comments, whitespace, indentation, CRLF, BOM, "key: value" */
        { "; comment\n# comment\n\n[memory]\nlimit = 1G ; inline comment\n", "limit", GiB },
        { "[memory]\r\nlimit = 1G\r\n", "limit", GiB },
        { "\xef\xbb\xbf[memory]\nlimit = 1G\n", "limit", GiB },
        { "  [memory]  \n\tlimit\t=\t1G\t\n", "limit", GiB },
        { "[ memory ] ; the limits\nlimit = 1G\n", "limit", GiB },
        { "[memory]\nlimit: 1G\n", "limit", GiB },
        { "[memory]\nlimit = 1G", "limit", GiB },                             /* no final newline */
        { "[level.moderate]\nusage = 70%\n    [level.high]\n    usage = 80%\n", "high.usage", 800000 },
        { "[level.moderate]\nusage = 70%\n  psi_some = 10%\n", "moderate.psi_some", 100000 },
};

static void test_good(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                const struct good_case *c = &good[i];
                struct policy p;
                parse_ok(c->text, &p);
                uint64_t v = field(&p, c->field);
                if (v != c->want)
                        fail_msg("case %zu: %s after\n---\n%s---\n= %llu, want %llu", i, c->field, c->text,
                                 (unsigned long long)v, (unsigned long long)c->want);
        }
}

struct actions_case {
        const char *value;
        const char *want;
};

static const struct actions_case actions_good[] = {
        { "trim", "trim" },
        { "trim, collect, reclaim", "trim,collect,reclaim" },
        { "trim,collect,shed,reclaim", "trim,collect,shed,reclaim" },
        { "  shed ,signal:USR1  ", "shed,signal:10" },
        { "signal:SIGUSR2", "signal:12" },
        { "signal:usr1", "signal:10" },
        { "signal:sigterm", "signal:15" },
        { "signal: HUP", "signal:1" },
        { "signal:KILL", "signal:9" },
        { "signal:IOT", "signal:6" },
        { "signal:1", "signal:1" },
        { "signal:64", "signal:64" },
        { "signal:RTMIN", "signal:34" },
        { "signal:RTMIN+2", "signal:36" },
        { "signal:SIGRTMAX", "signal:64" },
        { "signal:RTMAX-1", "signal:63" },
        { "signal:USR1, signal:USR2", "signal:10,signal:12" },
        { "exec:/usr/local/bin/page-oncall --flag", "exec:/usr/local/bin/page-oncall --flag" },
        { "exec:  logger -t memrun \"high: $MEMRUN_USAGE\"  ", "exec:logger -t memrun \"high: $MEMRUN_USAGE\"" },
        { "exec:env A=1 B=2 cmd", "exec:env A=1 B=2 cmd" },
        { "exec:a;b", "exec:a;b" },               /* ';' is a comment only after whitespace */
        { "exec:/bin/a, exec:/bin/b", "exec:/bin/a,exec:/bin/b" },
        { "trim, collect, reclaim, shed, signal:1, signal:2, signal:3, exec:x", /* exactly 8 */
          "trim,collect,reclaim,shed,signal:1,signal:2,signal:3,exec:x" },
        { "shed, signal:USR1, exec:/usr/local/bin/page-oncall ; pages the on-call",
          "shed,signal:10,exec:/usr/local/bin/page-oncall" },
};

static void test_actions_good(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof actions_good / sizeof actions_good[0]; i++) {
                char text[512], got[2048];
                xsnprintf(text, sizeof text, "[level.high]\nusage = 80%%\nactions = %s\n", actions_good[i].value);
                struct policy p;
                parse_ok(text, &p);
                actions_str(&p.levels[LEVEL_HIGH], got, sizeof got);
                if (strcmp(got, actions_good[i].want) != 0)
                        fail_msg("actions = %s: got '%s', want '%s'", actions_good[i].value, got, actions_good[i].want);
        }
}

/* ------------------------------------------------------------------ hostile files */

struct bad_case {
        const char *text;
        const char *prefix;     /* the exact start of the message: "t.ini:LINE: " */
        const char *part1, *part2; /* must appear in the message (the key, the value, the reason) */
};

static const struct bad_case bad[] = {
        /* unknown, duplicate, misplaced */
        { "[memory]\nlimit = 1G\n[memroy]\n", "t.ini:3: ", "unknown section", "[memroy]" },
        { "[level.urgent]\nusage = 99%\n", "t.ini:1: ", "unknown section", "[level.urgent]" },
        { "[Memory]\n", "t.ini:1: ", "unknown section", "[Memory]" },
        { "[]\n", "t.ini:1: ", "unknown section", "[]" },
        { "[memory]\nlimit = 1G\n\n[memory]\nswap = 0\n", "t.ini:4: ", "duplicate section [memory]", "first at line 1" },
        { "[stall]\n[stall]\n", "t.ini:2: ", "duplicate section [stall]", NULL }, /* empty sections too */
        { "[memory]\nlimt = 1G\n", "t.ini:2: ", "unknown key 'limt' in [memory]", "expected limit, soft or swap" },
        { "[level.high]\nusage = 80%\naction = trim\n", "t.ini:3: ", "unknown key 'action' in [level.high]",
          "actions" },
        { "[recovery]\nusage = 80%\n", "t.ini:2: ", "unknown key 'usage' in [recovery]", NULL },
        { "[memory]\nlimit = 1G\nswap = 0\nlimit = 2G\n", "t.ini:4: ", "duplicate key 'limit' in [memory]",
          "first at line 2" },
        { "[level.moderate]\nusage = 70%\nusage = 75%\n", "t.ini:3: ", "duplicate key 'usage'", "[level.moderate]" },
        { "limit = 1G\n", "t.ini:1: ", "key 'limit' is outside any section", NULL },
        { "[memory]\n= 1G\n", "t.ini:2: ", "missing key name", NULL },
        { "[memory]\nlimit\n", "t.ini:2: ", "expected 'key = value'", "'limit'" },
        { "[memory]\nlimit = 1G\njunk here\n", "t.ini:3: ", "expected 'key = value'", "'junk here'" },
        { "[memory\nlimit = 1G\n", "t.ini:1: ", "no closing ']'", NULL },
        { "[memory] limit = 1G\n", "t.ini:1: ", "unexpected text after the section header", "'limit = 1G'" },
        /* an inih syntax error before a handler error: the earlier line wins */
        { "[memory]\njunk\nlimt = 1G\n", "t.ini:2: ", "expected 'key = value'", "'junk'" },
        /* bad values: the key, the value and the right line */
        { "[memory]\nlimit = 1X\n", "t.ini:2: ", "[memory] limit: '1X'", "not a size" },
        { "[memory]\nlimit = -1G\n", "t.ini:2: ", "limit: '-1G'", "not a size" },
        { "[memory]\nlimit = 2.5 G\n", "t.ini:2: ", "limit: '2.5 G'", "not a size" },
        { "[memory]\nlimit = 1G # comment\n", "t.ini:2: ", "limit: '1G # comment'", "not a size" },
        { "[memory]\nlimit = 0\n", "t.ini:2: ", "limit: '0'", "greater than zero" },
        { "[memory]\nlimit = 50%\n", "t.ini:2: ", "limit: '50%'", "percentage" },
        { "[memory]\nlimit =\n", "t.ini:2: ", "[memory] limit: no value", NULL },
        { "[memory]\nsoft = 0%\n", "t.ini:2: ", "soft: '0%'", "greater than zero" },
        { "[memory]\nsoft = 0\n", "t.ini:2: ", "soft: '0'", "greater than zero" },
        { "[memory]\nsoft = 101%\n", "t.ini:2: ", "soft: '101%'", "above 100%" },
        { "[memory]\nsoft = 9O%\n", "t.ini:2: ", "soft: '9O%'", "not a percentage" },
        { "[memory]\nswap = lots\n", "t.ini:2: ", "swap: 'lots'", "not a size" },
        { "[level.moderate]\nusage = 70\n", "t.ini:2: ", "[level.moderate] usage: '70'", "not a percentage" },
        { "[level.moderate]\nusage = 0%\n", "t.ini:2: ", "usage: '0%'", "greater than 0%" },
        { "[level.moderate]\nusage = 100.5%\n", "t.ini:2: ", "usage: '100.5%'", "above 100%" },
        { "[level.moderate]\nusage = 70%%\n", "t.ini:2: ", "usage: '70%%'", "not a percentage" },
        { "[level.high]\npsi_some = high\n", "t.ini:2: ", "psi_some: 'high'", NULL },
        { "[level.high]\npsi_full = 5 %\n", "t.ini:2: ", "psi_full: '5 %'", NULL },
        { "[level.high]\npredict = 30\n", "t.ini:2: ", "predict: '30'", "not a duration" },
        { "[level.high]\npredict = 0s\n", "t.ini:2: ", "predict: '0s'", "out of range" },
        { "[level.high]\npredict = 2h\n", "t.ini:2: ", "predict: '2h'", "out of range" },
        { "[level.high]\nusage = 80%\nrepeat = 0%\n", "t.ini:3: ", "repeat: '0%'", NULL },
        { "[recovery]\nhysteresis = 5\n", "t.ini:2: ", "hysteresis: '5'", NULL },
        { "[recovery]\ndwell = forever\n", "t.ini:2: ", "dwell: 'forever'", "not a duration" },
        { "[monitor]\npsi_window = 100ms\n", "t.ini:2: ", "psi_window: '100ms'", "500ms to 10s" },
        { "[monitor]\npsi_window = 11s\n", "t.ini:2: ", "psi_window: '11s'", "500ms to 10s" },
        { "[monitor]\ninterval_min = 0ms\n", "t.ini:2: ", "interval_min: '0ms'", "out of range" },
        { "[monitor]\nhook_timeout = 10\n", "t.ini:2: ", "hook_timeout: '10'", NULL },
        { "[stall]\naction = restart\n", "t.ini:2: ", "[stall] action: 'restart'", "raise or kill" },
        { "[stall]\naction = Raise\n", "t.ini:2: ", "action: 'Raise'", NULL },
        { "[stall]\nenabled = maybe\n", "t.ini:2: ", "enabled: 'maybe'", "yes or no" },
        { "[stall]\nstep = 0%\n", "t.ini:2: ", "step: '0%'", NULL },
        { "[stall]\nduration = 1\n", "t.ini:2: ", "duration: '1'", NULL },
        { "[governor]\nhold = maybe\n", "t.ini:2: ", "[governor] hold: 'maybe'", "yes or no" },
        { "[governor]\njvm = sometimes\n", "t.ini:2: ", "[governor] jvm: 'sometimes'", "yes or no" },
        { "[governor]\ngiveup = 0\n", "t.ini:2: ", "giveup: '0'", "not a duration" },
        { "[governor]\ngiveup = 2h\n", "t.ini:2: ", "giveup: '2h'", "out of range" },
        { "[governor]\nask_timeout = 1ms\n", "t.ini:2: ", "ask_timeout: '1ms'", "10ms to 1min" },
        { "[governor]\ntarget = lots\n", "t.ini:2: ", "[governor] target: 'lots'", NULL },
        { "[governor]\ntarget = 0\n", "t.ini:2: ", "target: '0'", "greater than zero" },
        { "[governor]\ntarget = 120%\n", "t.ini:2: ", "target: '120%'", "above 100%" },
        { "[governor]\nask_timeout = 2min\n", "t.ini:2: ", "ask_timeout: '2min'", "10ms to 1min" },
        { "[governor]\nhold_on = yes\n", "t.ini:2: ", "unknown key 'hold_on' in [governor]", NULL },
        /* huge numbers */
        { "[memory]\nlimit = 99999999999999999999999999999999G\n", "t.ini:2: ", "limit: '9999", "too large" },
        { "[memory]\nlimit = 9223372036854775808\n", "t.ini:2: ", "limit: '9223372036854775808'", "too large" },
        { "[memory]\nlimit = 8388608T\n", "t.ini:2: ", "limit: '8388608T'", "too large" },
        { "[memory]\nswap = 18446744073709551616\n", "t.ini:2: ", "swap: '", "too large" },
        { "[level.high]\nusage = 99999999999999999999999%\n", "t.ini:2: ", "usage: '9999", NULL },
        { "[level.high]\npredict = 99999999999999999999h\n", "t.ini:2: ", "predict: '9999", NULL },
        { "[level.high]\npredict = 9999999999h\n", "t.ini:2: ", "predict: '9999999999h'", NULL },
        /* actions */
        { "[level.high]\nusage = 80%\nactions = trimm\n", "t.ini:3: ", "unknown action 'trimm'", "[level.high]" },
        { "[level.high]\nusage = 80%\nactions = Trim\n", "t.ini:3: ", "unknown action 'Trim'", NULL },
        { "[level.high]\nusage = 80%\nactions = trim collect\n", "t.ini:3: ", "unknown action 'trim collect'", NULL },
        { "[level.high]\nusage = 80%\nactions = trim,\n", "t.ini:3: ", "empty item", NULL },
        { "[level.high]\nusage = 80%\nactions = ,trim\n", "t.ini:3: ", "empty item", NULL },
        { "[level.high]\nusage = 80%\nactions = trim,,collect\n", "t.ini:3: ", "empty item", NULL },
        { "[level.high]\nusage = 80%\nactions =\n", "t.ini:3: ", "actions: no value", NULL },
        { "[level.high]\nusage = 80%\nactions = trim, collect, trim\n", "t.ini:3: ", "'trim' is listed twice", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:USR1, signal:10\n", "t.ini:3: ", "'signal:10' is listed twice",
          NULL },
        { "[level.high]\nusage = 80%\nactions = exec:a, exec:a\n", "t.ini:3: ", "listed twice", NULL },
        { "[level.high]\nusage = 80%\nactions = trim,collect,shed,reclaim,signal:1,signal:2,signal:3,signal:4,signal:5\n",
          "t.ini:3: ", "too many actions", "at most 8" },
        { "[level.high]\nusage = 80%\nactions = signal:USR3\n", "t.ini:3: ", "'signal:USR3' is not a signal", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:SIGFOO\n", "t.ini:3: ", "'signal:SIGFOO'", "not a signal" },
        { "[level.high]\nusage = 80%\nactions = signal:\n", "t.ini:3: ", "'signal:' is not a signal", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:SIG\n", "t.ini:3: ", "'signal:SIG' is not a signal", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:0\n", "t.ini:3: ", "'signal:0' is not a signal", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:65\n", "t.ini:3: ", "'signal:65' is not a signal", "1..64" },
        { "[level.high]\nusage = 80%\nactions = signal:-1\n", "t.ini:3: ", "'signal:-1' is not a signal", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:99999999999999999999\n", "t.ini:3: ", "is not a signal", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:RTMIN+99\n", "t.ini:3: ", "'signal:RTMIN+99'", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:RTMIN-1\n", "t.ini:3: ", "'signal:RTMIN-1'", NULL },
        { "[level.high]\nusage = 80%\nactions = signal:10x\n", "t.ini:3: ", "'signal:10x'", NULL },
        { "[level.high]\nusage = 80%\nactions = exec:\n", "t.ini:3: ", "'exec:' needs a command", NULL },
        { "[level.high]\nusage = 80%\nactions = trim, exec:   \n", "t.ini:3: ", "'exec:' needs a command", NULL },
        { "[level.high]\nusage = 80%\nactions = exec\n", "t.ini:3: ", "unknown action 'exec'", NULL },
        /* levels without a condition: reported at the section header */
        { "[level.high]\nactions = trim\n", "t.ini:1: ", "[level.high] has no condition", "usage, psi_some" },
        { "[level.moderate]\nusage = 70%\n\n[level.critical]\n", "t.ini:4: ", "[level.critical] has no condition",
          NULL },
        { "[level.moderate]\nusage = 70%\n[level.high]\nrepeat = 5%\nactions = trim\n", "t.ini:3: ",
          "[level.high] has no condition", NULL },
        /* binary junk (without NUL: the string parser sees it all) */
        { "\x7f" "ELF\x02\x01\x01\x03\xff\xfe\n", "t.ini:1: ", "expected 'key = value'", "\\x7fELF\\x02" },
        { "\xff\xfe=\x80\x81\n", "t.ini:1: ", "outside any section", "\\xff\\xfe" },
        { "[memory]\n\x01\x02\x03=\x04\n", "t.ini:2: ", "unknown key '\\x01\\x02\\x03'", NULL },
        { "[\x80\x90]\n", "t.ini:1: ", "unknown section [\\x80\\x90]", NULL },
        { "[memory]\nlimit = 1G\x1b[31m\n", "t.ini:2: ", "limit: '1G\\x1b[31m'", NULL },
};

static void test_bad(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                const struct bad_case *c = &bad[i];
                struct policy p;
                char err[512];
                memset(err, 'X', sizeof err);
                int r = policy_parse_string(c->text, "t.ini", &p, err, sizeof err);
                if (r != -EINVAL)
                        fail_msg("case %zu: parse of\n---\n%s---\nreturned %d, want -EINVAL", i, c->text, r);
                if (strncmp(err, c->prefix, strlen(c->prefix)) != 0 || (c->part1 && !strstr(err, c->part1)) ||
                    (c->part2 && !strstr(err, c->part2)))
                        fail_msg("case %zu: parse of\n---\n%s---\nsaid: %s\nwant: %s...%s...%s", i, c->text, err,
                                 c->prefix, c->part1 ? c->part1 : "", c->part2 ? c->part2 : "");
                assert_null(strchr(err, '\n'));
        }
}

/* On error the output policy is not touched. */
static void test_bad_leaves_output(void **state)
{
        (void)state;
        static struct policy p, before;
        memset(&p, 0xa5, sizeof p);
        before = p;
        char err[256];
        assert_int_equal(policy_parse_string("[memory]\nlimit = 1G\nswap = nope\n", "t.ini", &p, err, sizeof err),
                         -EINVAL);
        assert_memory_equal(&p, &before, sizeof p);
        assert_int_equal(policy_parse_string("[level.high]\nactions = trim\n", "t.ini", &p, err, sizeof err), -EINVAL);
        assert_memory_equal(&p, &before, sizeof p);
}

/* Error buffers: tiny ones are terminated, NULL is allowed, the name defaults. */
static void test_err_buffers(void **state)
{
        (void)state;
        struct policy p;
        char small[6];
        memset(small, 'X', sizeof small);
        assert_int_equal(policy_parse_string("[nope]\n", "t.ini", &p, small, sizeof small), -EINVAL);
        assert_string_equal(small, "t.ini");
        assert_int_equal(policy_parse_string("[nope]\n", "t.ini", &p, NULL, 0), -EINVAL);
        char one[1] = { 'X' };
        assert_int_equal(policy_parse_string("[nope]\n", "t.ini", &p, one, sizeof one), -EINVAL);
        assert_int_equal(one[0], '\0');
        char err[256];
        assert_int_equal(policy_parse_string("[nope]\n", NULL, &p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, ":1: unknown section"));
        assert_int_equal(policy_parse_string(NULL, "t.ini", &p, err, sizeof err), -EINVAL);
}

/* inih reads lines into a 200-byte buffer: a longer line must be refused, not split in two. */
static void test_long_lines(void **state)
{
        (void)state;
        struct policy p;
        char err[512], text[2048], pad[1100];

        /* 199 characters: accepted (a comment of that length, CRLF not counted). */
        memset(pad, 'x', sizeof pad);
        xsnprintf(text, sizeof text, "[memory]\n;%.*s\r\nlimit = 1G\n", 198, pad);
        parse_ok(text, &p);
        assert_int_equal(p.limit, GiB);
        /* 200: refused, naming the line. */
        xsnprintf(text, sizeof text, "[memory]\n;%.*s\nlimit = 1G\n", 199, pad);
        assert_int_equal(policy_parse_string(text, "t.ini", &p, err, sizeof err), -EINVAL);
        assert_string_equal(err, "t.ini:2: line too long (200 characters; at most 199)");
        /* A split would have made "limit = 2G" a key of its own: it must not be seen at all. */
        char spaces[301];
        memset(spaces, ' ', 300);
        spaces[300] = '\0';
        xsnprintf(text, sizeof text, "[memory]\nswap = 0 ;%slimit = 2G\n", spaces);
        assert_int_equal(policy_parse_string(text, "t.ini", &p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "t.ini:2: line too long"));
        /* A long exec: command. */
        xsnprintf(text, sizeof text, "[level.high]\nusage = 80%%\nactions = exec:/bin/echo %.*s\n", 1000, pad);
        assert_int_equal(policy_parse_string(text, "t.ini", &p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "t.ini:3: line too long"));
        /* Long leading whitespace counts too. */
        xsnprintf(text, sizeof text, "[memory]\n%*slimit = 1G\n", 250, "");
        assert_int_equal(policy_parse_string(text, "t.ini", &p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "t.ini:2: line too long"));
        /* Long key and section names are quoted, shortened. */
        xsnprintf(text, sizeof text, "[memory]\n%.*s = 1\n", 150, pad);
        assert_int_equal(policy_parse_string(text, "t.ini", &p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "t.ini:2: unknown key 'xxx"));
        xsnprintf(text, sizeof text, "[%.*s]\n", 150, pad);
        assert_int_equal(policy_parse_string(text, "t.ini", &p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "t.ini:1: unknown section [xxx"));
        assert_true(strlen(err) < 300);
}

static void test_empty(void **state)
{
        (void)state;
        static const char *const empties[] = { "", "\n", "\n\n\n", "; nothing\n# at all\n", "   \t\n", "\xef\xbb\xbf" };
        for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
                struct policy p;
                char err[256];
                parse_ok(empties[i], &p);
                for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                        assert_false(p.levels[l].defined);
                assert_false(p.limit_set);
                assert_false(p.soft_set);
                assert_false(p.swap_set);
                assert_int_equal(policy_validate(&p, err, sizeof err), 0);
                char *out = print_to_string(&p);
                assert_non_null(strstr(out, "levels: none"));
                free(out);
        }
}

/* ------------------------------------------------------------------ files */

static void test_files(void **state)
{
        (void)state;
        char *dir = make_tmpdir(), path[PATH_MAX], err[512];
        struct policy p;

        /* A good file. */
        put_file(dir, "good.ini", "[memory]\nlimit = 1G\n[level.high]\nusage = 80%\nactions = trim\n");
        xsnprintf(path, sizeof path, "%s/good.ini", dir);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), 0);
        assert_int_equal(p.limit, GiB);
        assert_true(p.levels[LEVEL_HIGH].defined);

        /* Errors name the file as given. */
        put_file(dir, "bad.ini", "[memory]\nlimit = 1G\nswap = x\n");
        xsnprintf(path, sizeof path, "%s/bad.ini", dir);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), -EINVAL);
        char want[PATH_MAX + 64];
        xsnprintf(want, sizeof want, "%s:3: [memory] swap: 'x'", path);
        assert_memory_equal(err, want, strlen(want));

        /* Empty file. */
        put_file(dir, "empty.ini", "");
        xsnprintf(path, sizeof path, "%s/empty.ini", dir);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), 0);
        assert_false(p.levels[LEVEL_MODERATE].defined);
        assert_int_equal(policy_validate(&p, err, sizeof err), 0);

        /* NUL bytes: found by the file reader, with their line. */
        static const char nul[] = "[memory]\nlimit = 1G\nswap\0 = 0\n";
        xsnprintf(path, sizeof path, "%s/nul.ini", dir);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(nul, 1, sizeof nul - 1, f), sizeof nul - 1);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), -EINVAL);
        xsnprintf(want, sizeof want, "%s:3: NUL byte", path);
        assert_memory_equal(err, want, strlen(want));

        /* Binary junk with NULs everywhere (an ELF header). */
        static const unsigned char elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0 };
        xsnprintf(path, sizeof path, "%s/junk.ini", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(elf, 1, sizeof elf, f), sizeof elf);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), -EINVAL);
        xsnprintf(want, sizeof want, "%s:1: NUL byte", path);
        assert_memory_equal(err, want, strlen(want));

        /* Binary junk without NULs. */
        xsnprintf(path, sizeof path, "%s/junk2.ini", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        for (unsigned i = 0; i < 5000; i++)
                fputc((int)(1 + (i * 2654435761u >> 7) % 255), f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), -EINVAL);
        xsnprintf(want, sizeof want, "%s:", path);
        assert_memory_equal(err, want, strlen(want));

        /* Over 1 MiB: refused before parsing, even if it is all comments. */
        xsnprintf(path, sizeof path, "%s/big.ini", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        for (unsigned i = 0; i < 1024 * 1024 / 64 + 1; i++)
                fputs("; padding padding padding padding padding padding padding paddi\n", f); /* 64 bytes */
        assert_int_equal(fclose(f), 0);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), -EFBIG);
        assert_non_null(strstr(err, "larger than 1024 KiB"));
        /* Exactly 1 MiB of comments is fine. */
        assert_int_equal(truncate(path, 1024 * 1024), 0);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), 0);

        /* Missing file, directory: strerror. */
        xsnprintf(path, sizeof path, "%s/missing.ini", dir);
        assert_int_equal(policy_parse_file(path, &p, err, sizeof err), -ENOENT);
        xsnprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
        assert_string_equal(err, want);
        assert_int_equal(policy_parse_file(dir, &p, err, sizeof err), -EISDIR);
        assert_non_null(strstr(err, "Is a directory"));

        remove_tmpdir(dir);
}

/* ------------------------------------------------------------------ defaults and examples */

static void test_default(void **state)
{
        (void)state;
        struct policy p;
        char got[2048], err[256];
        policy_default(&p);
        assert_false(p.limit_set);
        assert_false(p.soft_set);
        assert_false(p.swap_set);
        assert_true(p.levels[LEVEL_MODERATE].defined);
        assert_int_equal(p.levels[LEVEL_MODERATE].usage_ppm, 700000);
        assert_int_equal(p.levels[LEVEL_MODERATE].psi_some_ppm, 100000);
        assert_string_equal(actions_str(&p.levels[LEVEL_MODERATE], got, sizeof got), "trim");
        assert_int_equal(p.levels[LEVEL_HIGH].usage_ppm, 850000);
        assert_string_equal(actions_str(&p.levels[LEVEL_HIGH], got, sizeof got), "trim,collect,reclaim");
        assert_int_equal(p.levels[LEVEL_CRITICAL].usage_ppm, 950000);
        assert_int_equal(p.levels[LEVEL_CRITICAL].psi_full_ppm, 50000);
        /* No signal:USR1 (unlike docs/ARCHITECTURE.md's example): it would kill programs that do not handle it. */
        /* Trimming at every level: the governor sheds only when trimming, collecting and reclaim fall short. */
        assert_string_equal(actions_str(&p.levels[LEVEL_CRITICAL], got, sizeof got), "trim,collect,reclaim,shed");
        assert_true(p.hold);
        assert_int_equal(p.giveup_usec, 1 * SEC);
        assert_int_equal(p.ask_timeout_usec, 1 * SEC);
        assert_true(p.builtin);
        assert_false(p.levels[LEVEL_OK].defined);
        assert_int_equal(p.hysteresis_ppm, 50000);
        assert_int_equal(p.dwell_usec, 2 * SEC);
        assert_int_equal(p.psi_window_usec, 2 * SEC);
        assert_int_equal(p.interval_min_usec, 50 * MS);
        assert_int_equal(p.interval_max_usec, 2 * SEC);
        assert_int_equal(p.hook_timeout_usec, 10 * SEC);
        assert_true(p.stall_enabled);
        assert_int_equal(p.stall_psi_full_ppm, 200000);
        assert_int_equal(p.stall_duration_usec, 10 * SEC);
        assert_int_equal(p.stall_action, STALL_RAISE);
        assert_int_equal(p.stall_step_ppm, 500000);
        assert_int_equal(policy_validate(&p, err, sizeof err), 0);

        /* The built-in policy, written out as INI (docs/ARCHITECTURE.md's example, with trim, collect and
         * reclaim before shed at critical, and without its signal:USR1 and exec: hook). */
        struct policy q;
        parse_ok("[level.moderate]\nusage    = 70%\npsi_some = 10%\nactions  = trim\n"
                 "[level.high]\nusage   = 85%\nactions = trim, collect, reclaim\n"
                 "[level.critical]\nusage    = 95%\npsi_full = 5%\nactions  = trim, collect, reclaim, shed\n"
                 "[recovery]\nhysteresis = 5%\ndwell      = 2s\n",
                 &q);
        q.builtin = true;
        assert_memory_equal(&p, &q, sizeof p);
}

/* The example of docs/ARCHITECTURE.md's "Policy INI" contract, verbatim. */
static void test_design_example(void **state)
{
        (void)state;
        static const char text[] = "[memory]\n"
                                   "limit = 2.5G\n"
                                   "soft  = 90%              ; memory.high\n"
                                   "swap  = 0\n"
                                   "\n"
                                   "[level.moderate]         ; enter when ANY condition holds\n"
                                   "usage    = 70%           ; of limit\n"
                                   "psi_some = 10%           ; memory some avg10\n"
                                   "actions  = trim\n"
                                   "\n"
                                   "[level.high]\n"
                                   "usage   = 85%\n"
                                   "actions = trim, collect, reclaim\n"
                                   "\n"
                                   "[level.critical]\n"
                                   "usage    = 95%\n"
                                   "psi_full = 5%\n"
                                   "actions  = shed, signal:USR1, exec:/usr/local/bin/page-oncall\n"
                                   "\n"
                                   "[recovery]\n"
                                   "hysteresis = 5%          ; leave a level this far below its threshold\n"
                                   "dwell      = 2s          ; and only after this long\n";
        struct policy p;
        char got[2048], err[256];
        parse_ok(text, &p);
        assert_int_equal(policy_validate(&p, err, sizeof err), 0);
        assert_int_equal(p.limit, 2684354560ull);
        assert_int_equal(p.soft_ppm, 900000);
        assert_true(p.swap_set);
        assert_int_equal(p.swap, 0);
        assert_int_equal(p.levels[LEVEL_MODERATE].psi_some_ppm, 100000);
        assert_string_equal(actions_str(&p.levels[LEVEL_CRITICAL], got, sizeof got),
                            "shed,signal:10,exec:/usr/local/bin/page-oncall");
        char *out = print_to_string(&p);
        static const char *const lines[] = { "  soft: 90% of limit (2.2G)\n", "  usage >= 70% of limit (1.8G of 2.5G)\n",
                                             "  actions: shed, signal:SIGUSR1, exec:/usr/local/bin/page-oncall\n",
                                             NULL };
        assert_contains(out, lines, "docs/ARCHITECTURE.md example");
        free(out);
}

static const char *const examples[] = { "config/web-service.ini", "config/batch-job.ini", "config/ci-oom-repro.ini" };

static void test_examples(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
                char path[PATH_MAX], err[512];
                struct policy p;
                src_path(examples[i], path, sizeof path);
                if (policy_parse_file(path, &p, err, sizeof err) != 0)
                        fail_msg("%s: %s", path, err);
                if (policy_validate(&p, err, sizeof err) != 0)
                        fail_msg("%s: validate: %s", path, err);
                assert_true(p.limit_set);
                assert_true(p.levels[LEVEL_MODERATE].defined);
                assert_true(p.levels[LEVEL_HIGH].defined);
                assert_true(p.levels[LEVEL_CRITICAL].defined);
                char *out = print_to_string(&p);
                static const char *const lines[] = { "level moderate:", "level high:", "level critical:",
                                                     "recovery:", "monitor:", "stall:", NULL };
                assert_contains(out, lines, path);
                free(out);
        }
}

/* What each example promises its users. */
static void test_examples_intent(void **state)
{
        (void)state;
        char path[PATH_MAX], err[512], got[2048];
        struct policy p;

        assert_int_equal(policy_parse_file(src_path("config/web-service.ini", path, sizeof path), &p, err, sizeof err), 0);
        assert_string_equal(actions_str(&p.levels[LEVEL_MODERATE], got, sizeof got), "trim");
        assert_non_null(strstr(actions_str(&p.levels[LEVEL_CRITICAL], got, sizeof got), "shed"));
        assert_non_null(strstr(got, "signal:10"));
        /* Held at its setpoint (soft less 3%), the service never reads critical: no shedding, no USR1. */
        assert_true((double)p.levels[LEVEL_CRITICAL].usage_ppm > (double)p.soft_ppm * 0.97);

        assert_int_equal(policy_parse_file(src_path("config/batch-job.ini", path, sizeof path), &p, err, sizeof err), 0);
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                for (unsigned i = 0; i < p.levels[l].n_actions; i++)
                        assert_int_not_equal(p.levels[l].actions[i].type, ACTION_SHED);
        assert_non_null(strstr(actions_str(&p.levels[LEVEL_HIGH], got, sizeof got), "reclaim"));
        assert_non_null(strstr(got, "collect"));

        assert_int_equal(policy_parse_file(src_path("config/ci-oom-repro.ini", path, sizeof path), &p, err, sizeof err), 0);
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                assert_int_equal(p.levels[l].n_actions, 0);
        assert_int_equal(p.swap, 0);
        assert_true(p.swap_set);
        assert_int_equal(p.soft_ppm, PCT_ONE);
        assert_false(p.stall_enabled);
}

/* ------------------------------------------------------------------ validation */

struct validate_case {
        const char *text;
        const char *part1, *part2;  /* NULL part1: must validate */
};

static const struct validate_case validate_cases[] = {
        { "[level.moderate]\nusage = 70%\n[level.high]\nusage = 85%\n[level.critical]\nusage = 95%\n", NULL, NULL },
        { "[level.moderate]\nusage = 70%\n[level.critical]\nusage = 80%\n", NULL, NULL },  /* a gap is fine */
        { "[level.high]\npsi_some = 10%\n[level.critical]\nusage = 50%\n", NULL, NULL },  /* psi-only level */
        { "[level.moderate]\nusage = 70%\n[level.high]\nusage = 60%\n", "[level.high] usage (60%)",
          "above [level.moderate] usage (70%)" },
        { "[level.moderate]\nusage = 70%\n[level.high]\nusage = 70%\n", "[level.high] usage (70%)", NULL },
        { "[level.moderate]\nusage = 70%\n[level.high]\nusage = 80%\n[level.critical]\nusage = 75%\n",
          "[level.critical] usage (75%)", "[level.high] usage (80%)" },
        { "[level.moderate]\nusage = 90%\n[level.critical]\nusage = 80%\n", "[level.critical] usage (80%)",
          "[level.moderate] usage (90%)" },
        { "[level.moderate]\nusage = 4%\n", "hysteresis (5%)", "lowest usage threshold (4%" },
        { "[memory]\nlimit = 1G\n[governor]\ntarget = 2G\n", "[governor] target (2G)", "above limit (1G)" },
        { "[memory]\nlimit = max\n[governor]\ntarget = 80%\n", "[governor] target (80%)", "limit is max" },
        { "[level.moderate]\nusage = 10%\n[recovery]\nhysteresis = 10%\n", "hysteresis (10%)", NULL },
        { "[level.moderate]\nusage = 10%\n[recovery]\nhysteresis = 9.99%\n", NULL, NULL },
        { "[level.high]\npsi_some = 10%\n[recovery]\nhysteresis = 50%\n", NULL, NULL }, /* no usage threshold */
        { "[monitor]\ninterval_min = 3s\n", "interval_min (3s)", "interval_max (2s)" },
        { "[monitor]\ninterval_min = 2s\ninterval_max = 2s\n", NULL, NULL },
        { "[monitor]\ninterval_min = 1s\ninterval_max = 100ms\n", "interval_min (1s)", "interval_max (100ms)" },
        { "[memory]\nlimit = 1G\nsoft = 2G\n", "soft (2G)", "above limit (1G)" },
        { "[memory]\nlimit = 1G\nsoft = max\n", "soft (max)", "limit (1G)" },
        { "[memory]\nlimit = 1G\nsoft = 1G\n", NULL, NULL },
        { "[memory]\nlimit = max\nsoft = 1G\n", NULL, NULL },
        { "[memory]\nlimit = max\nsoft = 90%\n", "soft (90%)", "limit is max" },
        { "[memory]\nsoft = 2G\n", NULL, NULL },        /* the limit may come from the command line */
        { "[memory]\nsoft = 90%\n", NULL, NULL },
};

static void test_validate(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof validate_cases / sizeof validate_cases[0]; i++) {
                const struct validate_case *c = &validate_cases[i];
                struct policy p;
                char err[512];
                parse_ok(c->text, &p);
                memset(err, 'X', sizeof err);
                int r = policy_validate(&p, err, sizeof err);
                if (!c->part1) {
                        if (r != 0)
                                fail_msg("case %zu: validate of\n---\n%s---\nsaid %s", i, c->text, err);
                        assert_string_equal(err, "");
                        continue;
                }
                if (r != -EINVAL || !strstr(err, c->part1) || (c->part2 && !strstr(err, c->part2)))
                        fail_msg("case %zu: validate of\n---\n%s---\nreturned %d: %s\nwant: %s ... %s", i, c->text, r,
                                 err, c->part1, c->part2 ? c->part2 : "");
        }
}

/* Structs built in code (command-line overrides) get the same checks the parser makes. */
static void test_validate_struct(void **state)
{
        (void)state;
        struct policy p;
        char err[512];

        policy_default(&p);
        p.psi_window_usec = 400 * MS;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "psi_window (400ms) must be between 500ms and 10s"));
        p.psi_window_usec = 20 * SEC;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "psi_window (20s)"));

        policy_default(&p);
        p.soft_set = true;
        p.soft_ppm = PCT_ONE + 1;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "above 100%"));

        policy_default(&p);
        p.limit_set = true;
        p.limit = 0;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "limit must be greater than zero"));

        policy_default(&p);
        p.levels[LEVEL_CRITICAL].usage_ppm = 0; /* critical keeps psi_full */
        assert_int_equal(policy_validate(&p, err, sizeof err), 0);
        p.levels[LEVEL_CRITICAL].psi_full_ppm = 0;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);
        assert_string_equal(err, "[level.critical] has no condition: give usage, psi_some, psi_full or predict");
        p.levels[LEVEL_CRITICAL].defined = false; /* an undefined level is not checked */
        assert_int_equal(policy_validate(&p, err, sizeof err), 0);

        policy_default(&p);
        p.interval_min_usec = 0;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);

        policy_default(&p);
        p.stall_step_ppm = 0;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "[stall]"));
        p.stall_enabled = false; /* a disabled stall section is not checked */
        assert_int_equal(policy_validate(&p, err, sizeof err), 0);

        policy_default(&p);
        p.levels[LEVEL_MODERATE].n_actions = POLICY_MAX_ACTIONS + 1;
        assert_int_equal(policy_validate(&p, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "more than 8 actions"));

        /* A NULL or empty error buffer is allowed. */
        policy_default(&p);
        p.interval_min_usec = 10 * SEC;
        assert_int_equal(policy_validate(&p, NULL, 0), -EINVAL);
}

/* ------------------------------------------------------------------ the printed plan */

static void test_print(void **state)
{
        (void)state;
        struct policy p;
        char *out;

        policy_default(&p);
        p.limit = 256 * MiB;
        p.limit_set = true;
        out = print_to_string(&p);
        static const char *const with_limit[] = {
                "  limit: 256M\n",
                "  soft: not set",
                "  swap: not set",
                "level moderate:",
                "  usage >= 70% of limit (179.2M of 256M)\n",
                "  psi some avg10 >= 10%\n",
                "  actions: trim\n",
                "  usage >= 85% of limit (217.6M of 256M)\n",
                "  actions: trim, collect, reclaim\n",
                "  usage >= 95% of limit (243.2M of 256M)\n",
                "  psi full avg10 >= 5%\n",
                "  actions: trim, collect, reclaim, shed\n",
                "recovery:\n",
                "  hysteresis: 5% of limit",
                "  dwell: 2s\n",
                "  psi_window: 2s\n",
                "  interval_min: 50ms\n",
                "  interval_max: 2s\n",
                "  hook_timeout: 10s\n",
                "governor:\n",
                "  hold: yes",
                "  target: auto (the soft limit's setpoint)\n",
                "  setpoint: 223.5M (soft limit 230.4M less max(3%, 1M)), lower while the program allocates",
                "  ask_timeout: 1s\n",
                "  giveup: after 1s of short answers at the soft limit (nothing to give at all: at once)",
                "psi full avg10 >= 20% for 10s",
                "  action: raise memory.high by 50% of (memory.max - memory.high)\n",
                NULL,
        };
        assert_contains(out, with_limit, "default policy, 256M");
        free(out);

        policy_default(&p);
        out = print_to_string(&p);
        static const char *const no_limit[] = { "  limit: not set (from the command line, else max)\n",
                                                "  usage >= 70% of limit\n", NULL };
        assert_contains(out, no_limit, "default policy, no limit");
        free(out);

        parse_ok("[memory]\nlimit = 1G\nsoft = 80%\nswap = 0\n"
                 "[level.high]\nusage = 80%\npredict = 1.5s\nrepeat = 2.5%\n"
                 "actions = exec:/bin/true --x, signal:RTMIN+1, signal:TERM\n"
                 "[stall]\naction = kill\n[monitor]\nhook_timeout = 250ms\n",
                 &p);
        out = print_to_string(&p);
        static const char *const parsed[] = {
                "  soft: 80% of limit (819.2M)\n",
                "  swap: 0B\n",
                "level moderate: not defined\n",
                "level critical: not defined\n",
                "  usage >= 80% of limit (819.2M of 1G)\n",
                "  limit predicted within 1.5s\n",
                "  actions: exec:/bin/true --x, signal:SIGRTMIN+1, signal:SIGTERM\n",
                "  repeat: actions again each time usage grows 2.5% of limit (25.6M)\n",
                "  action: kill\n",
                "  hook_timeout: 250ms\n",
                NULL,
        };
        assert_contains(out, parsed, "parsed policy");
        free(out);

        parse_ok("[level.moderate]\nusage = 50%\n[stall]\nenabled = off\n", &p);
        out = print_to_string(&p);
        static const char *const watch[] = { "  actions: none (watch only)\n", "stall:\n  disabled\n", NULL };
        assert_contains(out, watch, "watch-only policy");
        free(out);
}

static void test_names(void **state)
{
        (void)state;
        assert_string_equal(level_name(LEVEL_OK), "ok");
        assert_string_equal(level_name(LEVEL_MODERATE), "moderate");
        assert_string_equal(level_name(LEVEL_HIGH), "high");
        assert_string_equal(level_name(LEVEL_CRITICAL), "critical");
        assert_string_equal(level_name(_LEVEL_MAX), "?");
        assert_string_equal(action_type_name(ACTION_TRIM), "trim");
        assert_string_equal(action_type_name(ACTION_COLLECT), "collect");
        assert_string_equal(action_type_name(ACTION_SHED), "shed");
        assert_string_equal(action_type_name(ACTION_RECLAIM), "reclaim");
        assert_string_equal(action_type_name(ACTION_SIGNAL), "signal");
        assert_string_equal(action_type_name(ACTION_EXEC), "exec");
        assert_string_equal(action_type_name(_ACTION_TYPE_MAX), "?");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_actions_good),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_bad_leaves_output),
                cmocka_unit_test(test_err_buffers),
                cmocka_unit_test(test_long_lines),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_files),
                cmocka_unit_test(test_default),
                cmocka_unit_test(test_design_example),
                cmocka_unit_test(test_examples),
                cmocka_unit_test(test_examples_intent),
                cmocka_unit_test(test_validate),
                cmocka_unit_test(test_validate_struct),
                cmocka_unit_test(test_print),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
