/* options: memrun's command line, parsed into a run plan without touching the system. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
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
        { "in-place", no_argument, NULL, OPT_IN_PLACE },
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
              "                        answer trim/collect with malloc_trim\n"
              "      --no-hints        do not export GOMEMLIMIT\n"
              "      --in-place        create no cgroup: supervise inside the enclosing one, whose limits\n"
              "                        apply (containers, Kubernetes pods, a read-only cgroupfs)\n"
              "      --metrics FILE    Prometheus text exposition, rewritten atomically at most once a\n"
              "                        second and at exit (node_exporter's textfile collector)\n"
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

int options_parse(int argc, char **argv, uint64_t ram, struct options *ret)
{
        struct options o = { .limit = SIZE_MAX_VALUE, .soft = SIZE_MAX_VALUE };
        const char *soft_text = NULL;
        char a[32], b[32];
        int c, r;

        optind = 0; /* glibc: full re-initialisation, so the parser can run more than once */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:l:s:n:p:vqhV", longopts, NULL)) != -1) {
                switch (c) {
                case 'l':
                        r = size_parse(optarg, ram, &o.limit);
                        if (r < 0)
                                return size_error("--limit", optarg, r);
                        if (o.limit == 0) {
                                log_error("--limit '%s': must be greater than zero", optarg);
                                return -EINVAL;
                        }
                        o.limit_set = true;
                        break;
                case 's':
                        soft_text = optarg;
                        break;
                case OPT_SWAP:
                        r = size_parse(optarg, 0, &o.swap);
                        if (r < 0)
                                return size_error("--swap", optarg, r);
                        o.swap_set = true;
                        break;
                case 'p':
                        o.policy = optarg;
                        break;
                case OPT_CHECK_POLICY:
                        o.check_policy = optarg;
                        break;
                case 'n':
                        if (!options_name_valid(optarg)) {
                                log_error("--name '%s': not a usable sandbox name (letters, digits, '.', '_', '@', '-'; "
                                          "at most 200; not a cgroup interface file name)", optarg);
                                return -EINVAL;
                        }
                        o.name = optarg;
                        break;
                case OPT_CGROUP:
                        if (!options_cgroup_path_valid(optarg)) {
                                log_error("--cgroup '%s': expected an absolute cgroup path like /user.slice/my.scope",
                                          optarg);
                                return -EINVAL;
                        }
                        o.cgroup = optarg;
                        break;
                case OPT_REPORT:
                        if (!*optarg) {
                                log_error("--report '': expected a file name or '-'");
                                return -EINVAL;
                        }
                        o.report = optarg;
                        break;
                case OPT_TIMELINE:
                        if (!*optarg) {
                                log_error("--timeline '': expected a file name or '-'");
                                return -EINVAL;
                        }
                        o.timeline = optarg;
                        break;
                case OPT_EXPECT_OOM:
                        o.expect_oom = true;
                        break;
                case OPT_NO_HINTS:
                        o.no_hints = true;
                        break;
                case OPT_PRELOAD:
                        o.preload = true;
                        break;
                case OPT_SANDBOX:
                        o.sandbox = true;
                        break;
                case OPT_WAIT_ALL:
                        o.wait_all = true;
                        break;
                case OPT_IN_PLACE:
                        o.in_place = true;
                        break;
                case OPT_METRICS:
                        if (!*optarg) {
                                log_error("--metrics '': needs a file name");
                                return -EINVAL;
                        }
                        o.metrics = optarg;
                        break;
                case OPT_USER:
                        if (sandbox_user_parse(optarg, o.user, sizeof o.user, o.group, sizeof o.group) < 0) {
                                log_error("--user '%s': not USER or USER:GROUP (names of letters, digits, '_', '-', "
                                          "'.')", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'v':
                        o.verbosity = o.verbosity < 0 ? 1 : o.verbosity + 1;
                        break;
                case 'q':
                        o.verbosity = -1;
                        break;
                case 'h':
                        o.help = true;
                        break;
                case 'V':
                        o.version = true;
                        break;
                case ':':
                        log_error("option '%s' needs a value", argv[optind - 1]);
                        return -EINVAL;
                default:
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
        }
        if (o.help || o.version) {
                *ret = o;
                return 0;
        }
        if (o.check_policy && o.policy) {
                log_error("--check-policy and --policy both name a policy; give one");
                return -EINVAL;
        }
        if (optind >= argc && !o.check_policy) {
                log_error("no command given (usage: memrun [OPTIONS] [--] COMMAND [ARG...])");
                return -EINVAL;
        }
        if (soft_text) {
                uint32_t ppm;
                if (strchr(soft_text, '%')) {
                        r = pct_parse(soft_text, &ppm);
                        if (r < 0) {
                                log_error("--soft '%s': not a percentage of --limit (expected e.g. 90%%)", soft_text);
                                return -EINVAL;
                        }
                        if (ppm == 0) {
                                log_error("--soft '%s': must be greater than zero", soft_text);
                                return -EINVAL;
                        }
                        if (o.limit == SIZE_MAX_VALUE && !o.policy && !o.check_policy) {
                                log_error("--soft '%s': a percentage needs a --limit", soft_text);
                                return -EINVAL;
                        }
                        o.soft_ppm = ppm;
                        o.soft = soft_bytes(o.limit, ppm, false, 0);
                } else {
                        r = size_parse(soft_text, 0, &o.soft);
                        if (r < 0)
                                return size_error("--soft", soft_text, r);
                }
                o.soft_set = true;
                if (o.soft == 0) {
                        log_error("--soft '%s': must be greater than zero", soft_text);
                        return -EINVAL;
                }
                if (o.soft > o.limit) {
                        log_error("--soft '%s' (%s) is above --limit (%s)", soft_text,
                                  size_format(o.soft, a, sizeof a), size_format(o.limit, b, sizeof b));
                        return -EINVAL;
                }
        } else {
                o.soft = soft_bytes(o.limit, 0, false, 0);
        }
        o.argv = optind < argc ? argv + optind : NULL;
        *ret = o;
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
