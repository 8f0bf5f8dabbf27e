/* test_options: memrun's command line: defaults, sizes, names, placement paths, errors that quote. */
#include "unit.h"

#include "config/size.h"
#include "log.h"
#include "options.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define RAM (8 * GiB)
#define MAXARGS 16

/* options_parse logs errors to stderr; keep the test output readable. */
static int saved_stderr = -1;
static void quiet(void)
{
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dup2(fd, STDERR_FILENO);
        close(fd);
}
static void loud(void)
{
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
}

/* Parse a NULL-terminated list of literal arguments (copied: getopt wants writable argv). */
struct argbuf {
        char store[MAXARGS][256];
        char *argv[MAXARGS + 1];
        int argc;
};

static int parse(struct argbuf *b, const char *const *args, uint64_t ram, struct options *o)
{
        b->argc = 0;
        b->argv[b->argc++] = strcpy(b->store[0], "memrun");
        for (const char *const *a = args; *a; a++) {
                assert_true(b->argc < MAXARGS);
                assert_true(strlen(*a) < sizeof b->store[0]);
                b->argv[b->argc] = strcpy(b->store[b->argc], *a);
                b->argc++;
        }
        b->argv[b->argc] = NULL;
        quiet();
        int r = options_parse(b->argc, b->argv, ram, o);
        loud();
        return r;
}

static void assert_cmd(char **argv, const char *const *want)
{
        assert_non_null(argv);
        size_t i = 0;
        for (; want[i]; i++) {
                assert_non_null(argv[i]);
                assert_string_equal(argv[i], want[i]);
        }
        assert_null(argv[i]);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_defaults(void **state)
{
        (void)state;
        struct argbuf b;
        struct options o;
        assert_int_equal(parse(&b, ARGS("ls"), RAM, &o), 0);
        assert_true(o.limit == SIZE_MAX_VALUE);
        assert_true(o.soft == SIZE_MAX_VALUE); /* no limit: no soft limit either */
        assert_true(o.swap == 0);              /* no swap: OOM behaviour is reproducible */
        assert_null(o.name);
        assert_null(o.cgroup);
        assert_null(o.report);
        assert_false(o.expect_oom);
        assert_false(o.no_hints);
        assert_int_equal(o.pressure_watch, PRESSURE_WATCH_AUTO);
        assert_int_equal(o.verbosity, 0);
        assert_false(o.help);
        assert_false(o.version);
        assert_cmd(o.argv, ARGS("ls"));
        assert_ptr_equal(o.argv, &b.argv[1]); /* the command is a view into argv, not a copy */
}

struct good_case {
        const char *const *args;
        uint64_t limit, soft, swap;
};

static const struct good_case limit_cases[] = {
        { ARGS("-l", "1G", "true"), GiB, GiB * 9 / 10, 0 },
        { ARGS("--limit", "1G", "true"), GiB, GiB * 9 / 10, 0 },
        { ARGS("--limit=256M", "true"), 256 * MiB, 256 * MiB * 9 / 10, 0 },
        { ARGS("-l256M", "true"), 256 * MiB, 256 * MiB * 9 / 10, 0 },
        { ARGS("-l", "2.5G", "true"), 2684354560ull, 2415919104ull, 0 },
        { ARGS("-l", "1000", "true"), 1000, 900, 0 },
        { ARGS("-l", "50%", "true"), RAM / 2, RAM / 2 * 9 / 10, 0 },
        { ARGS("-l", "12.5%", "true"), GiB, GiB * 9 / 10, 0 },
        { ARGS("-l", "max", "true"), SIZE_MAX_VALUE, SIZE_MAX_VALUE, 0 },
        { ARGS("-l", "1G", "-s", "50%", "true"), GiB, GiB / 2, 0 },
        { ARGS("-l", "1G", "--soft", "92.5%", "true"), GiB, 993211187ull, 0 },
        { ARGS("-l", "1G", "--soft=100%", "true"), GiB, GiB, 0 },
        { ARGS("--soft", "50%", "-l", "1G", "true"), GiB, GiB / 2, 0 }, /* order does not matter */
        { ARGS("-l", "1G", "-s", "512M", "true"), GiB, 512 * MiB, 0 },
        { ARGS("-l", "1G", "-s", "1G", "true"), GiB, GiB, 0 },
        { ARGS("-s", "512M", "true"), SIZE_MAX_VALUE, 512 * MiB, 0 }, /* soft alone: fine */
        { ARGS("-s", "max", "true"), SIZE_MAX_VALUE, SIZE_MAX_VALUE, 0 },
        { ARGS("--swap", "1G", "true"), SIZE_MAX_VALUE, SIZE_MAX_VALUE, GiB },
        { ARGS("--swap", "0", "true"), SIZE_MAX_VALUE, SIZE_MAX_VALUE, 0 },
        { ARGS("--swap", "max", "true"), SIZE_MAX_VALUE, SIZE_MAX_VALUE, SIZE_MAX_VALUE },
        { ARGS("-l", "1G", "-l", "2G", "true"), 2 * GiB, 2 * GiB * 9 / 10, 0 }, /* last one wins */
};

static void test_limits_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof limit_cases / sizeof limit_cases[0]; i++) {
                const struct good_case *c = &limit_cases[i];
                struct argbuf b;
                struct options o;
                memset(&o, 0xa5, sizeof o);
                int r = parse(&b, c->args, RAM, &o);
                if (r != 0)
                        fail_msg("case %zu (%s %s ...): %d: %s", i, c->args[0], c->args[1], r, log_last_error());
                if (o.limit != c->limit || o.soft != c->soft || o.swap != c->swap)
                        fail_msg("case %zu (%s %s ...): limit %llu soft %llu swap %llu; want %llu %llu %llu", i,
                                 c->args[0], c->args[1], (unsigned long long)o.limit, (unsigned long long)o.soft,
                                 (unsigned long long)o.swap, (unsigned long long)c->limit,
                                 (unsigned long long)c->soft, (unsigned long long)c->swap);
                assert_cmd(o.argv, ARGS("true"));
        }
}

struct bad_case {
        const char *const *args;
        const char *quote;   /* must appear in log_last_error() */
        const char *quote2;  /* and this too, when set */
};

static const struct bad_case bad_cases[] = {
        /* sizes */
        { ARGS("-l", "10X", "true"), "'10X'", "--limit" },
        { ARGS("--limit", "abc", "true"), "'abc'", "not a size" },
        { ARGS("-l", "99999999999T", "true"), "'99999999999T'", "too large" },
        { ARGS("-l", "0", "true"), "'0'", "greater than zero" },
        { ARGS("-l", "0K", "true"), "'0K'", "greater than zero" },
        { ARGS("-l", "0%", "true"), "'0%'", "greater than zero" },
        { ARGS("-l", "101%", "true"), "'101%'", "--limit" },
        { ARGS("-l", " 1G", "true"), "' 1G'", "--limit" },
        { ARGS("-l", "", "true"), "''", "--limit" },
        { ARGS("--swap", "1Q", "true"), "'1Q'", "--swap" },
        { ARGS("--swap", "50%", "true"), "'50%'", "percentage is not allowed" },
        /* soft */
        { ARGS("-l", "1G", "-s", "2G", "true"), "'2G'", "above --limit" },
        { ARGS("-l", "1G", "-s", "max", "true"), "'max'", "above --limit" },
        { ARGS("-l", "1G", "-s", "1025M", "true"), "'1025M'", "(1G)" },
        { ARGS("-s", "50%", "true"), "'50%'", "needs a --limit" },
        { ARGS("-l", "max", "-s", "50%", "true"), "'50%'", "needs a --limit" },
        { ARGS("-l", "1G", "-s", "101%", "true"), "'101%'", "--soft" },
        { ARGS("-l", "1G", "-s", "50%%", "true"), "'50%%'", "--soft" },
        { ARGS("-l", "1G", "-s", "%", "true"), "'%'", "--soft" },
        { ARGS("-l", "1G", "-s", "0", "true"), "'0'", "greater than zero" },
        { ARGS("-l", "1G", "-s", "0%", "true"), "'0%'", "greater than zero" },
        { ARGS("-l", "1G", "-s", "lots", "true"), "'lots'", "--soft" },
        /* names */
        { ARGS("-n", "a/b", "true"), "'a/b'", "--name" },
        { ARGS("-n", "..", "true"), "'..'", "--name" },
        { ARGS("-n", ".", "true"), "'.'", "--name" },
        { ARGS("-n", "", "true"), "''", "--name" },
        { ARGS("--name", "cgroup.procs", "true"), "'cgroup.procs'", "--name" },
        { ARGS("--name", "memory.max", "true"), "'memory.max'", "--name" },
        { ARGS("--name", "supervisor", "true"), "'supervisor'", "--name" },
        { ARGS("--name", "tasks", "true"), "'tasks'", "--name" },
        { ARGS("--name", "a b", "true"), "'a b'", "--name" },
        { ARGS("--name", "x\ny", "true"), "'x\ny'", "--name" },
        /* --cgroup */
        { ARGS("--cgroup", "user.slice", "true"), "'user.slice'", "absolute" },
        { ARGS("--cgroup", "/a/../b", "true"), "'/a/../b'", "--cgroup" },
        { ARGS("--cgroup", "/a/..", "true"), "'/a/..'", "--cgroup" },
        { ARGS("--cgroup", "/..", "true"), "'/..'", "--cgroup" },
        { ARGS("--cgroup", "/a//b", "true"), "'/a//b'", "--cgroup" },
        { ARGS("--cgroup", "", "true"), "''", "--cgroup" },
        /* --report */
        { ARGS("--report", "", "true"), "--report ''", NULL },
        { ARGS("--report=", "true"), "--report ''", NULL },
        /* unknown options, missing values, no command */
        { ARGS("--bogus", "true"), "'--bogus'", "unknown option" },
        { ARGS("--bogus=1", "true"), "--bogus", "unknown option" },
        { ARGS("-x", "true"), "'-x'", "unknown option" },
        { ARGS("-vx", "true"), "'-x'", "unknown option" },
        { ARGS("-l"), "'-l'", "needs a value" },
        { ARGS("--limit"), "'--limit'", "needs a value" },
        { ARGS("--soft"), "'--soft'", "needs a value" },
        { ARGS("-n"), "'-n'", "needs a value" },
        { ARGS("--report"), "'--report'", "needs a value" },
        { ARGS("--cgroup"), "'--cgroup'", "needs a value" },
        { ARGS("--swap"), "'--swap'", "needs a value" },
        { ARGS("-l", "1G"), "no command", NULL },
        { ARGS("-l", "1G", "--"), "no command", NULL },
        { ARGS("-v", "-q"), "no command", NULL },
};

/* Run a bad case; NULL when it behaved (-EINVAL, quoted, output untouched), else what went wrong. */
static const char *try_bad(const struct bad_case *c, size_t i, char *why, size_t size)
{
        struct argbuf b;
        struct options o, before;
        memset(&o, 0x5a, sizeof o);
        before = o;
        quiet();
        log_error("(sentinel: nothing logged yet)");
        loud();
        int r = parse(&b, c->args, RAM, &o);
        const char *msg = log_last_error();
        if (r != -EINVAL)
                snprintf(why, size, "bad case %zu (%s ...): returned %d, want -EINVAL", i, c->args[0], r);
        else if (!strstr(msg, c->quote) || (c->quote2 && !strstr(msg, c->quote2)))
                snprintf(why, size, "bad case %zu (%s ...): error \"%s\" does not contain \"%s\"%s%s", i,
                         c->args[0], msg, c->quote, c->quote2 ? " and " : "", c->quote2 ? c->quote2 : "");
        else if (memcmp(&o, &before, sizeof o) != 0)
                snprintf(why, size, "bad case %zu (%s ...): output written on failure", i, c->args[0]);
        else
                return NULL;
        return why;
}

static void check_bad(const struct bad_case *c, size_t i)
{
        char why[1536];
        if (try_bad(c, i, why, sizeof why))
                fail_msg("%s", why);
}

static void test_errors_quote_the_bad_text(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
                check_bad(&bad_cases[i], i);
        }
}

static void test_name_validity(void **state)
{
        (void)state;
        static const char *const good[] = { "web", "web-1", "a.b", "x@y", "A_b-9.z", "..a", "a..", "-", "memory",
                                            "cgroup", "memoryx.y" };
        static const char *const bad[] = { "", ".", "..", "a/b", "/", "cgroup.procs", "cgroup.kill",
                                           "memory.max", "memory.", "cgroup.", "supervisor", "tasks",
                                           "notify_on_release", "release_agent", "a b", "a\tb", "a:b",
                                           "caf\xc3\xa9", "$x", "a*" };
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                if (!options_name_valid(good[i]))
                        fail_msg("name \"%s\" refused", good[i]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (options_name_valid(bad[i]))
                        fail_msg("name \"%s\" accepted", bad[i]);

        char n200[201], n201[202];
        memset(n200, 'a', 200);
        n200[200] = '\0';
        memset(n201, 'a', 201);
        n201[201] = '\0';
        assert_true(options_name_valid(n200));
        assert_false(options_name_valid(n201));

        /* through the parser: the 201-char name is refused and quoted, the 200-char one kept */
        struct options o;
        char *argv1[] = { (char[]){ "memrun" }, (char[]){ "-n" }, n200, (char[]){ "true" }, NULL };
        quiet();
        int r = options_parse(4, argv1, RAM, &o);
        loud();
        assert_int_equal(r, 0);
        assert_ptr_equal(o.name, n200);
        char *argv2[] = { (char[]){ "memrun" }, (char[]){ "--name" }, n201, (char[]){ "true" }, NULL };
        quiet();
        r = options_parse(4, argv2, RAM, &o);
        loud();
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(log_last_error(), n201));
}

static void test_flags(void **state)
{
        (void)state;
        struct argbuf b;
        struct options o;

        assert_int_equal(parse(&b, ARGS("-n", "job.1", "--cgroup", "/user.slice/x.scope", "--report", "-",
                                        "--expect-oom", "--no-hints", "true"),
                               RAM, &o),
                         0);
        assert_string_equal(o.name, "job.1");
        assert_string_equal(o.cgroup, "/user.slice/x.scope");
        assert_string_equal(o.report, "-");
        assert_true(o.expect_oom);
        assert_true(o.no_hints);
        assert_cmd(o.argv, ARGS("true"));

        assert_int_equal(parse(&b, ARGS("--cgroup", "/", "--report", "out.json", "true"), RAM, &o), 0);
        assert_string_equal(o.cgroup, "/");
        assert_string_equal(o.report, "out.json");
        assert_false(o.expect_oom);
        assert_false(o.no_hints);

        const struct {
                const char *const *args;
                int verbosity;
        } verb[] = {
                { ARGS("-v", "true"), 1 },
                { ARGS("-v", "-v", "true"), 2 },
                { ARGS("-vv", "true"), 2 },
                { ARGS("--verbose", "true"), 1 },
                { ARGS("-q", "true"), -1 },
                { ARGS("--quiet", "true"), -1 },
                { ARGS("-v", "-q", "true"), -1 },
                { ARGS("-q", "-v", "true"), 1 },
        };
        for (size_t i = 0; i < sizeof verb / sizeof verb[0]; i++) {
                assert_int_equal(parse(&b, verb[i].args, RAM, &o), 0);
                if (o.verbosity != verb[i].verbosity)
                        fail_msg("verbosity case %zu: %d, want %d", i, o.verbosity, verb[i].verbosity);
        }
}

static void test_command_and_double_dash(void **state)
{
        (void)state;
        struct argbuf b;
        struct options o;

        assert_int_equal(parse(&b, ARGS("-l", "1G", "--", "ls", "-l"), RAM, &o), 0);
        assert_cmd(o.argv, ARGS("ls", "-l"));
        assert_int_equal(o.limit, GiB);

        assert_int_equal(parse(&b, ARGS("-l", "1G", "ls", "-l"), RAM, &o), 0);
        assert_cmd(o.argv, ARGS("ls", "-l"));
        assert_int_equal(o.limit, GiB);

        /* memrun's options after the command belong to the command */
        assert_int_equal(parse(&b, ARGS("sh", "-c", "exit 3", "--limit", "1G", "-q", "--", "-v"), RAM, &o), 0);
        assert_cmd(o.argv, ARGS("sh", "-c", "exit 3", "--limit", "1G", "-q", "--", "-v"));
        assert_true(o.limit == SIZE_MAX_VALUE);
        assert_int_equal(o.verbosity, 0);

        /* a second "--" is the command's */
        assert_int_equal(parse(&b, ARGS("--", "--", "x"), RAM, &o), 0);
        assert_cmd(o.argv, ARGS("--", "x"));

        /* a command that looks like an option after "--" */
        assert_int_equal(parse(&b, ARGS("-q", "--", "-l"), RAM, &o), 0);
        assert_cmd(o.argv, ARGS("-l"));
        assert_int_equal(o.verbosity, -1);

        /* an option value that looks like an option is still the value */
        assert_int_equal(parse(&b, ARGS("-n", "-v", "true"), RAM, &o), 0);
        assert_string_equal(o.name, "-v");
        assert_int_equal(o.verbosity, 0);
}

static void test_help_version(void **state)
{
        (void)state;
        struct argbuf b;
        struct options o;

        assert_int_equal(parse(&b, ARGS("-h"), RAM, &o), 0);
        assert_true(o.help);
        assert_false(o.version);
        assert_null(o.argv);

        assert_int_equal(parse(&b, ARGS("--help"), RAM, &o), 0);
        assert_true(o.help);

        assert_int_equal(parse(&b, ARGS("-V"), RAM, &o), 0);
        assert_true(o.version);
        assert_false(o.help);

        assert_int_equal(parse(&b, ARGS("--version", "ls"), RAM, &o), 0);
        assert_true(o.version);

        /* still an error when something else is wrong before it */
        assert_int_equal(parse(&b, ARGS("-l", "junk", "-h"), RAM, &o), -EINVAL);
        assert_non_null(strstr(log_last_error(), "'junk'"));
}

/* options_parse resets getopt, so parsing twice (or after an error half-way) gives the same answer. */
static void test_reparse(void **state)
{
        (void)state;
        struct argbuf b;
        struct options o;
        assert_int_equal(parse(&b, ARGS("-l", "1G", "-x", "true"), RAM, &o), -EINVAL);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(parse(&b, ARGS("-l", "1G", "-s", "50%", "cmd", "arg"), RAM, &o), 0);
                assert_int_equal(o.limit, GiB);
                assert_int_equal(o.soft, GiB / 2);
                assert_cmd(o.argv, ARGS("cmd", "arg"));
        }
        /* the last short option error must not leak into an unknown long option's message */
        assert_int_equal(parse(&b, ARGS("-x", "true"), RAM, &o), -EINVAL);
        assert_int_equal(parse(&b, ARGS("--nope", "true"), RAM, &o), -EINVAL);
        assert_non_null(strstr(log_last_error(), "'--nope'"));
}

/* --pressure-watch: the three values, and anything else refused quoting it. */
static void test_pressure_watch(void **state)
{
        (void)state;
        struct argbuf b;
        struct options o;
        static const struct {
                const char *arg;
                enum pressure_watch want;
        } pw[] = { { "auto", PRESSURE_WATCH_AUTO }, { "memrun", PRESSURE_WATCH_MEMRUN }, { "kernel", PRESSURE_WATCH_KERNEL } };
        for (size_t i = 0; i < sizeof pw / sizeof pw[0]; i++) {
                assert_int_equal(parse(&b, ARGS("--pressure-watch", pw[i].arg, "true"), RAM, &o), 0);
                assert_int_equal(o.pressure_watch, pw[i].want);
        }
        assert_int_equal(parse(&b, ARGS("--pressure-watch", "Kernel", "true"), RAM, &o), -EINVAL);
        assert_non_null(strstr(log_last_error(), "--pressure-watch 'Kernel': expected auto, memrun or kernel"));
}

/* A percentage --limit needs the RAM size; with none known it is refused, not 0. */
static void test_limit_percent_without_ram(void **state)
{
        (void)state;
        struct argbuf b;
        struct options o;
        assert_int_equal(parse(&b, ARGS("-l", "50%", "true"), 0, &o), -EINVAL);
        assert_non_null(strstr(log_last_error(), "'50%'"));
}

/* A flag that takes no value, given one ("--expect-oom=1"), is reported quoting the option as typed
 * (glibc sets optopt to the long option's val, which must not be printed as a character). */
static void test_flag_with_value_quoted(void **state)
{
        (void)state;
        const struct bad_case cases[] = {
                { ARGS("--expect-oom=1", "true"), "--expect-oom", NULL },
                { ARGS("--no-hints=yes", "true"), "--no-hints", NULL },
                { ARGS("--help=x"), "--help", NULL },
                { ARGS("--verbose=2", "true"), "--verbose", NULL },
        };
        char why[1536];
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                if (try_bad(&cases[i], i, why, sizeof why))
                        fail_msg("a long flag given a value: %s", why);
}

/* --cgroup names a cgroup in the normal form the kernel prints and registry_parse accepts: "/a/b/"
 * or "/a/./b" would make the sandbox "/a/b//memrun-PID", which the registry refuses (a stale sandbox
 * there would never be swept) and which never equals the kernel's task_memcg (the OOM victim would
 * never be named). */
static void test_cgroup_not_normal_form(void **state)
{
        (void)state;
        const struct bad_case cases[] = {
                { ARGS("--cgroup", "/a/b/", "true"), "'/a/b/'", "--cgroup" },
                { ARGS("--cgroup", "/a/./b", "true"), "'/a/./b'", "--cgroup" },
                { ARGS("--cgroup", "/a/.", "true"), "'/a/.'", "--cgroup" },
        };
        char why[1536];
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                if (try_bad(&cases[i], i, why, sizeof why))
                        fail_msg("--cgroup not in normal form: %s", why);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_limits_table),
                cmocka_unit_test(test_errors_quote_the_bad_text),
                cmocka_unit_test(test_name_validity),
                cmocka_unit_test(test_flags),
                cmocka_unit_test(test_command_and_double_dash),
                cmocka_unit_test(test_help_version),
                cmocka_unit_test(test_reparse),
                cmocka_unit_test(test_limit_percent_without_ram),
                cmocka_unit_test(test_pressure_watch),
                cmocka_unit_test(test_flag_with_value_quoted),
                cmocka_unit_test(test_cgroup_not_normal_form),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
