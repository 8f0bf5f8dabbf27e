/* options: memrun's command line, parsed into a run plan without touching the system. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config/policy.h"
#include "config/size.h"
#include "log.h"
#include "supervise/limits.h"

enum {
        OPT_SWAP = 0x100,
        OPT_CGROUP,
        OPT_REPORT,
        OPT_EXPECT_OOM,
        OPT_NO_HINTS,
        OPT_CHECK_POLICY,
        OPT_PRELOAD,
        OPT_TIMELINE,
        OPT_SANDBOX,
        OPT_USER,
        OPT_WAIT_ALL,
        OPT_METRICS,
        OPT_IN_PLACE,
        OPT_METRICS_LISTEN,
        OPT_PRESSURE_WATCH,
};

static const struct option longopts[] = {
        { "limit", required_argument, NULL, 'l' },
        { "soft", required_argument, NULL, 's' },
        { "swap", required_argument, NULL, OPT_SWAP },
        { "policy", required_argument, NULL, 'p' },
        { "check-policy", required_argument, NULL, OPT_CHECK_POLICY },
        { "name", required_argument, NULL, 'n' },
        { "cgroup", required_argument, NULL, OPT_CGROUP },
        { "report", required_argument, NULL, OPT_REPORT },
        { "timeline", required_argument, NULL, OPT_TIMELINE },
        { "expect-oom", no_argument, NULL, OPT_EXPECT_OOM },
        { "no-hints", no_argument, NULL, OPT_NO_HINTS },
        { "preload", no_argument, NULL, OPT_PRELOAD },
        { "sandbox", no_argument, NULL, OPT_SANDBOX },
        { "wait-all", no_argument, NULL, OPT_WAIT_ALL },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
        { "in-place", no_argument, NULL, OPT_IN_PLACE },
        { "pressure-watch", required_argument, NULL, OPT_PRESSURE_WATCH },
        { "user", required_argument, NULL, OPT_USER },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        {},
};

void options_usage(void)
{
        fputs("Usage: memrun [OPTIONS] [--] COMMAND [ARG...]\n"
              "Run COMMAND in a cgroup under a memory budget and report how it went.\n"
              "\n"
              "  -l, --limit SIZE      hard limit (memory.max); N% = of physical RAM; default max\n"
              "  -s, --soft SIZE|PCT   soft limit (memory.high); default 90% of --limit; PCT is of --limit\n"
              "      --swap SIZE       memory.swap.max; default 0 (no swap: OOM behaviour is reproducible)\n"
              "  -p, --policy FILE     INI policy (memrun.ini(5)); command-line options override it\n"
              "      --check-policy FILE   validate FILE and print the effective plan; exit 0 or 125\n"
              "  -n, --name NAME       sandbox name (cgroup directory, log prefix); default memrun-PID\n"
              "      --cgroup PATH     place the sandbox beneath this (delegated) cgroup\n"
              "      --report FILE     JSON report at exit ('-' = stdout)\n"
              "      --timeline FILE   CSV time series: time, usage, soft, hard, PSI some/full, level,\n"
              "                        bytes asked and freed, governor step\n"
              "      --expect-oom      exit 0 if and only if the sandbox was OOM-killed\n"
              "      --preload         inject libmemlimit into the command (LD_PRELOAD): unmodified programs\n"
              "                        answer trim/collect with their allocator's release (glibc,\n"
              "                        jemalloc, tcmalloc, mimalloc)\n"
              "      --no-hints        do not export the runtime hints (GOMEMLIMIT, NODE_OPTIONS,\n"
              "                        JAVA_TOOL_OPTIONS, DOTNET_GCHeapHardLimit)\n"
              "      --pressure-watch auto|memrun|kernel  what MEMORY_PRESSURE_WATCH names for sd-event\n"
              "                        and GLib programs: memrun's socket, which signals the kernel's\n"
              "                        pressure and every governor ask, or the kernel's pressure file;\n"
              "                        auto (default): the socket when the policy holds the soft limit\n"
              "      --in-place        create no cgroup: supervise inside the enclosing one, whose limits\n"
              "                        apply (containers, Kubernetes pods, a read-only cgroupfs)\n"
              "      --metrics FILE    Prometheus text exposition, rewritten atomically at most once a\n"
              "                        second and at exit (node_exporter's textfile collector)\n"
              "      --metrics-listen [ADDR:]PORT  serve the same text over HTTP at /metrics, rendered\n"
              "                        on each scrape; ADDR defaults to 127.0.0.1 (0.0.0.0 or [::] to\n"
              "                        be scraped from outside: a pod's Prometheus)\n"
              "      --wait-all        supervise until the sandbox is empty, not only until the command\n"
              "                        exits (daemons that fork away)\n"
              "      --sandbox         harden the command: read-only cgroupfs in its own mount namespace,\n"
              "                        no_new_privs, no new namespaces, the default syscall deny list\n"
              "      --user USER[:GROUP]  run the command as USER (root only), after placement\n"
              "  -v, --verbose         log placement, limits and kernel events\n"
              "  -q, --quiet           only errors; no summary line\n"
              "  -h, --help            show this help\n"
              "  -V, --version         show the version\n"
              "\n"
              "SIZE: a number with optional K, M, G, T (base 1024; KiB/KB accepted), decimals allowed\n"
              "(2.5G), or 'max'.\n"
              "\n"
              "Exit status: the command's own status; 128+N if it died of signal N; 137 if the\n"
              "kernel OOM killer ended it; 125 if memrun failed; 126 command not executable;\n"
              "127 command not found. With --expect-oom: 0 if and only if the sandbox was OOM-killed.\n",
              stdout);
}

bool options_name_valid(const char *name)
{
        size_t len = strlen(name);
        if (len == 0 || len > 200)
                return false;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        /* Names the kernel reserves for interface files in a cgroup directory. */
        if (strncmp(name, "cgroup.", 7) == 0 || strncmp(name, "memory.", 7) == 0 ||
            strcmp(name, "supervisor") == 0 || strcmp(name, "tasks") == 0 ||
            strcmp(name, "notify_on_release") == 0 || strcmp(name, "release_agent") == 0)
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") == len;
}

bool options_cgroup_path_valid(const char *path)
{
        /* Absolute, normal form: the kernel prints cgroup paths this way, and we compare with them. */
        if (path[0] != '/')
                return false;
        if (path[1] == '\0')
                return true;
        for (const char *c = path + 1;;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (c[n] == '\0')
                        return true;
                c += n + 1;
        }
}

static int size_error(const char *opt, const char *text, int r)
{
        if (r == -ERANGE)
                log_error("%s '%s': too large", opt, text);
        else if (r == -EDOM)
                log_error("%s '%s': a percentage is not allowed here", opt, text);
        else
                log_error("%s '%s': not a size (expected e.g. 512M, 2.5G, 1GiB, max)", opt, text);
        return -EINVAL;
}

/* The soft limit in bytes, the one rule for the command line and the policy alike: ppm of the limit
 * when given as a percentage, else the bytes given, else the default share (limits_soft_default). */
static uint64_t soft_bytes(uint64_t limit, uint32_t ppm, bool have_bytes, uint64_t bytes)
{
        if (ppm)
                return limit == SIZE_MAX_VALUE ? SIZE_MAX_VALUE : size_share(limit, ppm);
        if (have_bytes)
                return bytes;
        return limits_soft_default(limit);
}

/* A parse in progress: the options so far, and what waits for the whole command line. */
struct cmdline {
        struct options o;
        const char *soft_text;  /* --soft: a percentage is of --limit, which may come after it */
        uint64_t ram;
};

struct opt;
typedef int opt_setter(struct cmdline *c, const struct opt *d, const char *arg);

/* What an option does with its value; longopts says how it is spelled. */
struct opt {
        int val;                        /* getopt_long's return value */
        opt_setter *set;
        size_t off;                     /* set_flag: a bool, set_text: a const char * in struct options */
        bool (*valid)(const char *arg); /* set_text: NULL takes any text */
        const char *why;                /* set_text: the complaint when valid refuses arg */
};

static const char *long_name(int val)
{
        for (const struct option *lo = longopts; lo->name; lo++)
                if (lo->val == val)
                        return lo->name;
        return "?";
}

static bool nonempty(const char *arg)
{
        return *arg;
}

static int set_flag(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)arg;
        *(bool *)((char *)&c->o + d->off) = true;
        return 0;
}

static int set_text(struct cmdline *c, const struct opt *d, const char *arg)
{
        if (d->valid && !d->valid(arg)) {
                log_error("--%s '%s': %s", long_name(d->val), arg, d->why);
                return -EINVAL;
        }
        *(const char **)((char *)&c->o + d->off) = arg;
        return 0;
}

static int set_limit(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        int r = size_parse(arg, c->ram, &c->o.limit);
        if (r < 0)
                return size_error("--limit", arg, r);
        if (c->o.limit == 0) {
                log_error("--limit '%s': must be greater than zero", arg);
                return -EINVAL;
        }
        c->o.limit_set = true;
        return 0;
}

static int set_soft(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        c->soft_text = arg;
        return 0;
}

static int set_swap(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        int r = size_parse(arg, 0, &c->o.swap);
        if (r < 0)
                return size_error("--swap", arg, r);
        c->o.swap_set = true;
        return 0;
}

static int set_metrics_listen(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        int r = httpd_addr_parse(arg, &c->o.metrics_listen);
        if (r == -ERANGE)
                log_error("--metrics-listen '%s': the port must be 1 to 65535", arg);
        else if (r == -ENODATA)
                log_error("--metrics-listen '%s': no port (expected ADDR:PORT, :PORT or PORT, e.g. 127.0.0.1:9464)",
                          arg);
        else if (r == -EADDRNOTAVAIL)
                log_error("--metrics-listen '%s': not a numeric IPv4 address or a bracketed IPv6 one "
                          "(e.g. 0.0.0.0:9464, [::1]:9464)", arg);
        else if (r < 0)
                log_error("--metrics-listen '%s': expected ADDR:PORT, :PORT or PORT (e.g. 127.0.0.1:9464)", arg);
        return r < 0 ? -EINVAL : 0;
}

static int set_user(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        if (sandbox_user_parse(arg, c->o.user, sizeof c->o.user, c->o.group, sizeof c->o.group) < 0) {
                log_error("--user '%s': not USER or USER:GROUP (names of letters, digits, '_', '-', '.')", arg);
                return -EINVAL;
        }
        return 0;
}

static int set_pressure_watch(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        static const char *const names[] = { [PRESSURE_WATCH_AUTO] = "auto", [PRESSURE_WATCH_MEMRUN] = "memrun",
                                             [PRESSURE_WATCH_KERNEL] = "kernel" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(arg, names[i]) == 0) {
                        c->o.pressure_watch = (enum pressure_watch)i;
                        return 0;
                }
        log_error("--pressure-watch '%s': expected auto, memrun or kernel", arg);
        return -EINVAL;
}

/* -v after -q: verbose, not one step up from quiet. */
static int set_verbose(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        (void)arg;
        c->o.verbosity = c->o.verbosity < 0 ? 1 : c->o.verbosity + 1;
        return 0;
}

static int set_quiet(struct cmdline *c, const struct opt *d, const char *arg)
{
        (void)d;
        (void)arg;
        c->o.verbosity = -1;
        return 0;
}

#define O(f) offsetof(struct options, f)

/* Every value in longopts needs an entry: without one, the option reads as unknown. */
static const struct opt opts[] = {
        { 'l', set_limit, 0, NULL, NULL },
        { 's', set_soft, 0, NULL, NULL },
        { OPT_SWAP, set_swap, 0, NULL, NULL },
        { 'p', set_text, O(policy), NULL, NULL },
        { OPT_CHECK_POLICY, set_text, O(check_policy), NULL, NULL },
        { 'n', set_text, O(name), options_name_valid,
          "not a usable sandbox name (letters, digits, '.', '_', '@', '-'; at most 200; not a cgroup interface file "
          "name)" },
        { OPT_CGROUP, set_text, O(cgroup), options_cgroup_path_valid,
          "expected an absolute cgroup path like /user.slice/my.scope" },
        { OPT_REPORT, set_text, O(report), nonempty, "expected a file name or '-'" },
        { OPT_TIMELINE, set_text, O(timeline), nonempty, "expected a file name or '-'" },
        { OPT_METRICS, set_text, O(metrics), nonempty, "needs a file name" },
        { OPT_METRICS_LISTEN, set_metrics_listen, 0, NULL, NULL },
        { OPT_EXPECT_OOM, set_flag, O(expect_oom), NULL, NULL },
        { OPT_NO_HINTS, set_flag, O(no_hints), NULL, NULL },
        { OPT_PRELOAD, set_flag, O(preload), NULL, NULL },
        { OPT_SANDBOX, set_flag, O(sandbox), NULL, NULL },
        { OPT_WAIT_ALL, set_flag, O(wait_all), NULL, NULL },
        { OPT_IN_PLACE, set_flag, O(in_place), NULL, NULL },
        { OPT_USER, set_user, 0, NULL, NULL },
        { OPT_PRESSURE_WATCH, set_pressure_watch, 0, NULL, NULL },
        { 'v', set_verbose, 0, NULL, NULL },
        { 'q', set_quiet, 0, NULL, NULL },
        { 'h', set_flag, O(help), NULL, NULL },
        { 'V', set_flag, O(version), NULL, NULL },
};

#undef O

static const struct opt *opt_find(int val)
{
        for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
                if (opts[i].val == val)
                        return &opts[i];
        return NULL;
}

/* getopt_long refused argv[optind - 1] (ch is '?' or ':'): quote the text as typed. */
static int bad_option(int ch, int argc, char **argv)
{
        if (ch == ':') {
                log_error("option '%s' needs a value", argv[optind - 1]);
                return -EINVAL;
        }
        /* For long options glibc leaves optopt at the option's value: quote the text. */
        if (optind > 0 && optind <= argc && strncmp(argv[optind - 1], "--", 2) == 0) {
                const char *arg = argv[optind - 1], *eq = strchr(arg, '=');
                size_t n = eq ? (size_t)(eq - arg - 2) : 0;
                bool known = false;
                for (const struct option *lo = longopts; eq && lo->name; lo++)
                        known |= strlen(lo->name) == n && strncmp(lo->name, arg + 2, n) == 0;
                if (known)
                        log_error("option '%.*s' takes no value (in '%s')", (int)(n + 2), arg, arg);
                else
                        log_error("unknown option '%s' (see memrun --help)", arg);
        } else if (optopt > 0 && optopt < 0x80)
                log_error("unknown option '-%c' (see memrun --help)", optopt);
        else
                log_error("unknown option '%s' (see memrun --help)", argv[optind - 1]);
        return -EINVAL;
}

/* --soft, read once the whole command line is: a percentage is of the final --limit. */
static int resolve_soft(struct cmdline *c)
{
        struct options *o = &c->o;
        const char *text = c->soft_text;
        char a[32], b[32];
        uint32_t ppm;
        int r;

        if (!text) {
                o->soft = soft_bytes(o->limit, 0, false, 0);
                return 0;
        }
        if (strchr(text, '%')) {
                r = pct_parse(text, &ppm);
                if (r < 0) {
                        log_error("--soft '%s': not a percentage of --limit (expected e.g. 90%%)", text);
                        return -EINVAL;
                }
                if (ppm == 0) {
                        log_error("--soft '%s': must be greater than zero", text);
                        return -EINVAL;
                }
                if (o->limit == SIZE_MAX_VALUE && !o->policy && !o->check_policy) {
                        log_error("--soft '%s': a percentage needs a --limit", text);
                        return -EINVAL;
                }
                o->soft_ppm = ppm;
                o->soft = soft_bytes(o->limit, ppm, false, 0);
        } else {
                r = size_parse(text, 0, &o->soft);
                if (r < 0)
                        return size_error("--soft", text, r);
        }
        o->soft_set = true;
        if (o->soft == 0) {
                log_error("--soft '%s': must be greater than zero", text);
                return -EINVAL;
        }
        if (o->soft > o->limit) {
                log_error("--soft '%s' (%s) is above --limit (%s)", text, size_format(o->soft, a, sizeof a),
                          size_format(o->limit, b, sizeof b));
                return -EINVAL;
        }
        return 0;
}

int options_parse(int argc, char **argv, uint64_t ram, struct options *ret)
{
        struct cmdline c = { .o = { .limit = SIZE_MAX_VALUE, .soft = SIZE_MAX_VALUE }, .ram = ram };
        struct options *o = &c.o;
        int ch;

        optind = 0; /* glibc: full re-initialisation, so the parser can run more than once */
        opterr = 0;
        while ((ch = getopt_long(argc, argv, "+:l:s:n:p:vqhV", longopts, NULL)) != -1) {
                const struct opt *d = opt_find(ch);
                if (!d)
                        return bad_option(ch, argc, argv);
                if (d->set(&c, d, optarg) < 0)
                        return -EINVAL;
        }
        if (o->help || o->version) {
                *ret = *o;
                return 0;
        }
        if (o->check_policy && o->policy) {
                log_error("--check-policy and --policy both name a policy; give one");
                return -EINVAL;
        }
        if (optind >= argc && !o->check_policy) {
                log_error("no command given (usage: memrun [OPTIONS] [--] COMMAND [ARG...])");
                return -EINVAL;
        }
        if (resolve_soft(&c) < 0)
                return -EINVAL;
        o->argv = optind < argc ? argv + optind : NULL;
        *ret = *o;
        return 0;
}

int options_apply_policy(struct options *o, struct policy *p)
{
        char a[32], b[32];
        uint64_t limit = o->limit_set ? o->limit : p->limit_set ? p->limit : SIZE_MAX_VALUE;
        uint64_t soft;
        uint32_t soft_ppm = 0;

        if (o->soft_set)
                soft_ppm = o->soft_ppm;
        else if (p->soft_set)
                soft_ppm = p->soft_ppm;
        soft = soft_bytes(limit, soft_ppm, o->soft_set || p->soft_set, o->soft_set ? o->soft : p->soft);
        if (soft_ppm && limit == SIZE_MAX_VALUE) {
                log_error("soft limit %.4g%% needs a limit (--limit or [memory] limit)", (double)soft_ppm / 1e4);
                return -EINVAL;
        }
        if (soft == 0) {
                log_error("soft limit rounds to zero bytes");
                return -EINVAL;
        }
        if (soft > limit) {
                log_error("soft limit %s is above the limit %s", size_format(soft, a, sizeof a),
                          size_format(limit, b, sizeof b));
                return -EINVAL;
        }
        o->limit = p->limit = limit;
        o->soft = p->soft = soft;
        o->swap = p->swap = o->swap_set ? o->swap : p->swap_set ? p->swap : 0;
        p->limit_set = p->soft_set = p->swap_set = true;
        if (o->sandbox)
                p->sandbox.enabled = true;
        if (o->user[0]) {
                memcpy(p->sandbox.user, o->user, sizeof p->sandbox.user);
                memcpy(p->sandbox.group, o->group, sizeof p->sandbox.group);
        }
        p->soft_ppm = 0;
        return 0;
}
