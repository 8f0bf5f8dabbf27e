/* memrunctl: operate running memrun sandboxes (memrunctl(1)): list them, show a supervisor's own
 * status, change its limits, and probe the smallest --limit a command passes at. A second
 * executable, so that `memrun NAME` always runs NAME. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/size.h"
#include "control/ctl.h"
#include "log.h"
#include "cgroup/registry.h"
#include "supervise/limits.h"
#include "util.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
        fputs("Usage: memrunctl ls [--json]\n"
              "       memrunctl status NAME|PID [--json | --prometheus]\n"
              "       memrunctl set NAME|PID [--limit SIZE] [--soft SIZE|PCT]\n"
              "       memrunctl probe [--lo SIZE] [--hi SIZE] [--precision PCT] [--confirm N] [--json] [MEMRUN-OPTION...]\n"
              "                       -- CMD [ARG...]\n"
              "Operate running memrun sandboxes: list them, show one as its supervisor sees it, change its\n"
              "limits while it runs, or find a budget for CMD: the smallest --limit at which it exits 0 without\n"
              "an OOM kill N+1 runs in a row (N 2 unless said), plus the precision.\n",
              f);
}

/* ---------------------------------------------------------------- finding sandboxes */

struct found {
        pid_t pid;
        struct ctl_status st;
};

static char refusal[256]; /* the last "error: ..." a memrun answered while listing */

/* Every live sandbox in the registry (a record whose memrun answers). */
static int list(struct found *out, int max)
{
        char dir[PATH_MAX];
        int n = 0;
        if (registry_dir(dir, sizeof dir) < 0)
                return 0;
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d)) && n < max;) {
                uint64_t pid;
                if (strncmp(de->d_name, "sandbox.", 8) != 0 || parse_u64(de->d_name + 8, &pid) < 0 || pid == 0 ||
                    pid > INT32_MAX)
                        continue;
                char reply[CTL_REPLY_MAX];
                if (ctl_request((pid_t)pid, "status", reply, sizeof reply) < 0)
                        continue;
                if (strncmp(reply, "error: ", 7) == 0) {
                        reply[strcspn(reply, "\n")] = '\0';
                        snprintf(refusal, sizeof refusal, "memrun %d refused: %.200s", (int)pid, reply + 7);
                        continue;
                }
                if (!strstr(reply, "pid=") || ctl_status_parse(reply, &out[n].st) < 0)
                        continue;
                out[n].pid = (pid_t)pid;
                n++;
        }
        closedir(d);
        return n;
}

/* NAME or PID to a live sandbox; logs when there is none. */
static int find(const char *what, struct found *ret)
{
        static struct found all[256];
        int n = list(all, 256);
        uint64_t pid = 0;
        bool numeric = parse_u64(what, &pid) == 0;
        for (int i = 0; i < n; i++)
                if ((numeric && (uint64_t)all[i].pid == pid) || strcmp(all[i].st.name, what) == 0) {
                        *ret = all[i];
                        return 0;
                }
        if (numeric && pid > 0 && pid <= INT32_MAX) {
                /* not in this user's registry, but perhaps a memrun that answers */
                char reply[CTL_REPLY_MAX];
                int r = ctl_request((pid_t)pid, "status", reply, sizeof reply);
                if (r == 0 && strncmp(reply, "error: ", 7) == 0) {
                        reply[strcspn(reply, "\n")] = '\0';
                        log_error("memrun %s: %s", what, reply + 7);
                        return -EPERM;
                }
                if (r == 0 && strstr(reply, "pid=") && ctl_status_parse(reply, &ret->st) == 0) {
                        ret->pid = (pid_t)pid;
                        return 0;
                }
        }
        log_error("no running sandbox '%s' (memrunctl ls lists them)%s%s", what, refusal[0] ? "; " : "", refusal);
        return -ENOENT;
}

/* ---------------------------------------------------------------- output */

/* The status as JSON on stdout; 0, or 1 (memrunctl's exit status) when it cannot be written. */
static int print_json(const struct ctl_status *s)
{
        static char json[CTL_JSON_MAX];
        int r = ctl_status_json(s, json, sizeof json);
        if (r < 0) {
                log_error_errno(r, "memrun %d: its status as JSON: %m", s->pid);
                return 1;
        }
        fputs(json, stdout);
        return 0;
}

static int cmd_ls(int argc, char **argv)
{
        bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
        if (argc > (json ? 2 : 1)) {
                usage(stderr);
                return EXIT_USAGE;
        }
        static struct found all[256];
        int n = list(all, 256);
        if (json) {
                fputs("[", stdout);
                for (int i = 0; i < n; i++) {
                        fputs(i ? ",\n  " : "\n  ", stdout);
                        if (print_json(&all[i].st) != 0)
                                return 1;
                }
                fputs(n ? "\n]\n" : "]\n", stdout);
                return 0;
        }
        printf("%-24s %8s %-10s %10s %10s  %s\n", "NAME", "PID", "LEVEL", "USAGE", "LIMIT", "COMMAND");
        for (int i = 0; i < n; i++) {
                char u[32], l[32];
                printf("%-24s %8d %-10s %10s %10s  %s\n", all[i].st.name, (int)all[i].pid, all[i].st.level,
                       size_format(all[i].st.usage, u, sizeof u), size_format(all[i].st.limit, l, sizeof l),
                       all[i].st.command);
        }
        return 0;
}

static int cmd_status(int argc, char **argv)
{
        if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--json") != 0 && strcmp(argv[2], "--prometheus") != 0)) {
                usage(stderr);
                return EXIT_USAGE;
        }
        struct found f;
        if (find(argv[1], &f) < 0)
                return 1;
        const struct ctl_status *s = &f.st;
        if (argc == 3 && strcmp(argv[2], "--json") == 0) {
                if (print_json(s) != 0)
                        return 1;
                putchar('\n');
                return 0;
        }
        if (argc == 3) {
                char text[8192];
                if (ctl_status_prometheus(s, text, sizeof text) < 0)
                        return 1;
                fputs(text, stdout);
                return 0;
        }
        char a[32], b[32], c[32], d[32];
        printf("%s (memrun pid %d): %s\n", s->name, s->pid, s->command);
        printf("  cgroup:   %s (%s)\n", s->cgroup, s->mode);
        printf("  limits:   %s, soft %s%s\n", size_format(s->limit, a, sizeof a), size_format(s->soft, b, sizeof b),
               s->limit_changes ? " (changed while running)" : "");
        printf("  memory:   %s now, peak %s; level %s\n", size_format(s->usage, c, sizeof c),
               size_format(s->peak, d, sizeof d), s->level);
        printf("  limiter:  %u client%s; asked %" PRIu64 " times for %s, freed %s\n", s->clients,
               s->clients == 1 ? "" : "s", s->asks, size_format(s->asked, a, sizeof a), size_format(s->freed, b, sizeof b));
        printf("  events:   high %" PRIu64 ", max %" PRIu64 ", oom %" PRIu64 ", oom_kill %" PRIu64 "\n", s->ev_high,
               s->ev_max, s->ev_oom, s->ev_oom_kill);
        printf("  uptime:   %.1fs\n", s->uptime_s);
        return 0;
}

static int cmd_set(int argc, char **argv)
{
        const char *limit_text = NULL, *soft_text = NULL;
        if (argc < 3) {
                usage(stderr);
                return EXIT_USAGE;
        }
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
                        limit_text = argv[++i];
                else if (strcmp(argv[i], "--soft") == 0 && i + 1 < argc)
                        soft_text = argv[++i];
                else {
                        log_error("set: unexpected '%s'", argv[i]);
                        return EXIT_USAGE;
                }
        }
        if (!limit_text && !soft_text) {
                log_error("set: give --limit, --soft or both");
                return EXIT_USAGE;
        }
        struct found f;
        if (find(argv[1], &f) < 0)
                return 1;
        uint64_t limit = f.st.limit, soft = 0;
        char req[CTL_REQUEST_MAX] = "set";
        if (limit_text) {
                int r = size_parse(limit_text, 0, &limit);
                if (r < 0 || limit == 0) {
                        log_error("--limit '%s': not a size (expected e.g. 512M, 2.5G, max)", limit_text);
                        return EXIT_USAGE;
                }
                snprintf(req + strlen(req), sizeof req - strlen(req), " limit=%" PRIu64, limit);
        }
        if (soft_text) {
                int r = size_parse(soft_text, limit == UINT64_MAX ? 0 : limit, &soft);
                if (r < 0 || soft == 0) {
                        log_error("--soft '%s': not a size or a percentage of the limit%s", soft_text,
                                  r == -EDOM ? " (the limit is max)" : "");
                        return EXIT_USAGE;
                }
                snprintf(req + strlen(req), sizeof req - strlen(req), " soft=%" PRIu64, soft);
        } else if (limit_text && limit != UINT64_MAX) {
                /* a new limit alone keeps the soft limit's share of it */
                soft = limits_soft_keep_share(f.st.soft, f.st.limit, limit);
                snprintf(req + strlen(req), sizeof req - strlen(req), " soft=%" PRIu64, soft);
        }
        char reply[CTL_REPLY_MAX];
        int r = ctl_request(f.pid, req, reply, sizeof reply);
        if (r < 0) {
                log_error_errno(r, "memrun %d: %m", (int)f.pid);
                return 1;
        }
        reply[strcspn(reply, "\n")] = '\0';
        if (strncmp(reply, "ok", 2) != 0) {
                log_error("memrun %d refused: %s", (int)f.pid, strncmp(reply, "error: ", 7) == 0 ? reply + 7 : reply);
                return 1;
        }
        char a[32], b[32];
        printf("%s: limit %s, soft %s\n", f.st.name, size_format(limit, a, sizeof a), size_format(soft ? soft : f.st.soft, b, sizeof b));
        return 0;
}

/* ---------------------------------------------------------------- probe */

/* What probe was asked, and its runs so far. */
struct probe {
        uint64_t lo, hi;           /* bytes; hi 0: from the peak of an unlimited run */
        uint32_t precision;        /* ppm: done when lo and hi are this close */
        unsigned confirm;          /* runs that must pass again at the budget */
        bool json;
        char *opts[64];            /* memrun's options, for every run */
        int n_opts;
        char **cmd;
        char report[sizeof "/tmp/memrunctl-probe-XXXXXX"];
        unsigned runs;
};

struct probe_run {
        uint64_t limit, peak;
        int exit_code;
        bool oom;
};

static char memrun_path[PATH_MAX];

static void find_memrun(void)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        snprintf(slash + 1, sizeof self - (size_t)(slash + 1 - self), "memrun");
                        if (access(self, X_OK) == 0) {
                                snprintf(memrun_path, sizeof memrun_path, "%s", self);
                                return;
                        }
                }
        }
        snprintf(memrun_path, sizeof memrun_path, "memrun");
}

static void log_run(unsigned n, const struct probe_run *r)
{
        char l[32], pk[32];
        log_info("probe: run %u: --limit %s: exit %d%s, peak %s", n, size_format(r->limit, l, sizeof l), r->exit_code,
                 r->oom ? ", OOM-killed" : "", size_format(r->peak, pk, sizeof pk));
}

/* One run: memrun -q --report TMP [opts] --limit L -- CMD, counted in p->runs and logged. */
static int probe_once(struct probe *p, uint64_t limit, struct probe_run *ret)
{
        char lim[32];
        u64_or_max(limit, lim, sizeof lim);
        char *argv[256];
        int k = 0, n_cmd = 0;
        while (p->cmd[n_cmd])
                n_cmd++;
        if (p->n_opts + n_cmd + 8 > 255)
                return -E2BIG;
        argv[k++] = memrun_path;
        argv[k++] = (char *)"-q";
        argv[k++] = (char *)"--report";
        argv[k++] = p->report;
        for (int i = 0; i < p->n_opts; i++)
                argv[k++] = p->opts[i];
        argv[k++] = (char *)"--limit";
        argv[k++] = lim;
        argv[k++] = (char *)"--";
        for (int i = 0; p->cmd[i]; i++)
                argv[k++] = p->cmd[i];
        argv[k] = NULL;
        (void)unlink(p->report); /* a run that writes no report must not read the last one's */
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* the command's output is not probe's: stdout stays for the result */
                (void)dup2(STDERR_FILENO, STDOUT_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *ret = (struct probe_run){ .limit = limit, .exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st) };
        /* the report says whether the kernel OOM-killed anything, and the peak */
        if (ret->exit_code == 125) {
                log_error("probe: memrun refused the run (exit 125; its message is above)");
                return -EINVAL;
        }
        FILE *f = fopen(p->report, "re");
        if (!f) {
                log_error("probe: the run at --limit %s left no report (exit %d)", lim, ret->exit_code);
                return -ENOENT;
        }
        char buf[65536];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *at = strstr(buf, "\"peak\": ");
        if (at)
                ret->peak = strtoull(at + 8, NULL, 10);
        at = strstr(buf, "\"oom_kill\": ");
        ret->oom = at && strtoull(at + 12, NULL, 10) > 0;
        log_run(++p->runs, ret);
        return 0;
}

static bool passed(const struct probe_run *r)
{
        return r->exit_code == 0 && !r->oom;
}

static uint64_t page_round(uint64_t v)
{
        return (v + 4095) / 4096 * 4096;
}

/* limit plus the precision, page-rounded: probe's step up, and its margin. */
static uint64_t step_up(const struct probe *p, uint64_t limit)
{
        return page_round(limit + size_share(limit, p->precision));
}

/* probe's arguments into *ret: 0, or EXIT_USAGE (said why). */
static int probe_parse(int argc, char **argv, struct probe *ret)
{
        struct probe p = { .lo = 1 << 20, .precision = 50000 /* ppm: 5% */, .confirm = 2 };
        int i = 1;
        for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
                int r = 0;
                if (strcmp(argv[i], "--lo") == 0 && i + 1 < argc)
                        r = size_parse(argv[++i], 0, &p.lo);
                else if (strcmp(argv[i], "--hi") == 0 && i + 1 < argc)
                        r = size_parse(argv[++i], 0, &p.hi);
                else if (strcmp(argv[i], "--precision") == 0 && i + 1 < argc) {
                        r = pct_parse(argv[++i], &p.precision);
                        if (r == 0 && (p.precision == 0 || p.precision > 500000))
                                r = -ERANGE;
                } else if (strcmp(argv[i], "--confirm") == 0 && i + 1 < argc) {
                        uint64_t v;
                        r = parse_u64(argv[++i], &v);
                        if (r == 0 && v > 100)
                                r = -ERANGE;
                        if (r == 0)
                                p.confirm = (unsigned)v;
                } else if (strcmp(argv[i], "--json") == 0)
                        p.json = true;
                else if (strcmp(argv[i], "--limit") == 0 || strcmp(argv[i], "-l") == 0 || strcmp(argv[i], "--report") == 0) {
                        log_error("probe: %s is probe's to choose", argv[i]);
                        return EXIT_USAGE;
                } else if (p.n_opts < 60)
                        p.opts[p.n_opts++] = argv[i];
                else {
                        log_error("probe: too many memrun options");
                        return EXIT_USAGE;
                }
                if (r < 0) {
                        log_error("probe: '%s' is not a %s", argv[i],
                                  strcmp(argv[i - 1], "--precision") == 0 ? "percentage in (0%, 50%]"
                                  : strcmp(argv[i - 1], "--confirm") == 0 ? "number of runs from 0 to 100"
                                                                          : "size");
                        return EXIT_USAGE;
                }
        }
        if (i >= argc - 1) {
                usage(stderr);
                return EXIT_USAGE;
        }
        p.cmd = argv + i + 1;
        *ret = p;
        return 0;
}

/* The first run, unlimited (or at --hi): it must pass there, or memory is not what the command
 * lacks. Without --hi, hi becomes a guess from its peak. 0, or memrunctl's exit status. */
static int probe_first(struct probe *p, struct probe_run *best)
{
        struct probe_run r;
        if (probe_once(p, p->hi ? p->hi : UINT64_MAX, &r) < 0) {
                log_error("probe: could not run memrun (%s)", memrun_path);
                return 1;
        }
        if (!passed(&r)) {
                if (r.oom)
                        log_error("probe: %s is OOM-killed even at --hi: raise --hi", p->cmd[0]);
                else
                        log_error("probe: %s fails for another reason than memory: exit %d at --limit %s with no OOM "
                                  "kill", p->cmd[0], r.exit_code, p->hi ? "--hi" : "max");
                return 3;
        }
        *best = r;
        if (!p->hi)
                p->hi = page_round(r.peak + r.peak / 4 + (1 << 20));
        return 0;
}

/* Make sure the guessed hi passes (the peak of an unlimited run may not be enough under a limit); a
 * command that passes unlimited passes at some finite limit, but do not double forever. 0, or
 * memrunctl's exit status. */
static int probe_double(struct probe *p, struct probe_run *best)
{
        for (int doubling = 0;; doubling++) {
                if (doubling >= 20 || p->hi > (UINT64_C(1) << 50)) {
                        log_error("probe: %s passes without a limit but at no limit up to %" PRIu64 " bytes", p->cmd[0],
                                  p->hi);
                        return 1;
                }
                struct probe_run r;
                if (probe_once(p, p->hi, &r) < 0)
                        return 1;
                if (passed(&r)) {
                        *best = r;
                        return 0;
                }
                p->lo = p->hi;
                p->hi *= 2;
        }
}

/* Bisect: hi passes, lo is not known to. 0, or memrunctl's exit status. */
static int probe_bisect(struct probe *p, struct probe_run *best)
{
        if (p->lo >= p->hi)
                p->lo = p->hi / 2;
        while (p->hi - p->lo > size_share(p->hi, p->precision) && p->hi - p->lo > 4096) {
                uint64_t mid = page_round(p->lo + (p->hi - p->lo) / 2);
                if (mid >= p->hi)
                        break;
                struct probe_run r;
                if (probe_once(p, mid, &r) < 0)
                        return 1;
                if (passed(&r)) {
                        p->hi = mid;
                        *best = r;
                } else
                        p->lo = mid;
        }
        return 0;
}

/* The budget must pass again, p->confirm times in a row: one pass close to what the command needs
 * can be luck (the kernel's own memory in the cgroup, page tables, per-CPU charge batches vary from
 * run to run by a few percent). A limit that fails once is not the budget: step up by the
 * precision and start over there. 0, or memrunctl's exit status. */
static int probe_confirm(struct probe *p, struct probe_run *best)
{
        unsigned passes = 1; /* the run that made it the best */
        for (int steps = 0;; steps++) {
                while (passes <= p->confirm) {
                        struct probe_run r;
                        if (probe_once(p, best->limit, &r) < 0)
                                return 1;
                        if (!passed(&r))
                                break;
                        if (r.peak > best->peak)
                                best->peak = r.peak;
                        passes++;
                }
                if (passes > p->confirm)
                        return 0;
                char l[32], n[32];
                uint64_t next = step_up(p, best->limit);
                if (steps >= 20) {
                        log_error("probe: %s passes now and then but not %u times in a row, up to --limit %s",
                                  p->cmd[0], p->confirm + 1, size_format(best->limit, l, sizeof l));
                        return 1;
                }
                log_info("probe: --limit %s passed %u run%s, then failed: trying %s", size_format(best->limit, l, sizeof l),
                         passes, passes == 1 ? "" : "s in a row", size_format(next, n, sizeof n));
                p->lo = best->limit;
                *best = (struct probe_run){ .limit = next };
                passes = 0;
        }
}

/* The budget is the lowest limit that passed every run there, plus the precision: that close to the
 * need a limit still fails now and then (in the cgroup v2 VM, one passed three runs in a row and
 * failed the fourth), and a budget is for every run. */
static void probe_print(const struct probe *p, const struct probe_run *best)
{
        char a[32], b[32], c[32];
        uint64_t budget = step_up(p, best->limit);
        if (p->json)
                printf("{ \"budget\": %" PRIu64 ", \"lowest_pass\": %" PRIu64 ", \"peak\": %" PRIu64 ", \"runs\": %u, "
                       "\"precision_pct\": %.4g, \"lower_fails\": %" PRIu64 ", \"passes_at_lowest\": %u }\n",
                       budget, best->limit, best->peak, p->runs, (double)p->precision / 1e4, p->lo, p->confirm + 1);
        else
                printf("budget %s: %s passed %u run%s in a row (peak %s), plus %.4g%%; %u runs\n",
                       size_format(budget, a, sizeof a), size_format(best->limit, c, sizeof c), p->confirm + 1,
                       p->confirm ? "s" : "", size_format(best->peak, b, sizeof b), (double)p->precision / 1e4, p->runs);
}

static int cmd_probe(int argc, char **argv)
{
        struct probe p;
        int rc = probe_parse(argc, argv, &p);
        if (rc != 0)
                return rc;
        find_memrun();
        snprintf(p.report, sizeof p.report, "/tmp/memrunctl-probe-XXXXXX");
        int tfd = mkstemp(p.report);
        if (tfd < 0) {
                log_error_errno(-errno, "mkstemp: %m");
                return 1;
        }
        close(tfd);
        struct probe_run best = { .limit = 0 };
        bool guess_hi = p.hi == 0;
        rc = probe_first(&p, &best);
        if (rc == 0 && guess_hi)
                rc = probe_double(&p, &best);
        if (rc == 0)
                rc = probe_bisect(&p, &best);
        if (rc == 0)
                rc = probe_confirm(&p, &best);
        if (rc == 0)
                probe_print(&p, &best);
        unlink(p.report);
        return rc;
}

int main(int argc, char **argv)
{
        log_set_prefix("memrunctl");
        if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : 0;
        }
        if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
                printf("memrunctl %s\n", MEMRUN_VERSION);
                return 0;
        }
        if (strcmp(argv[1], "ls") == 0)
                return cmd_ls(argc - 1, argv + 1);
        if (strcmp(argv[1], "status") == 0)
                return cmd_status(argc - 1, argv + 1);
        if (strcmp(argv[1], "set") == 0)
                return cmd_set(argc - 1, argv + 1);
        if (strcmp(argv[1], "probe") == 0)
                return cmd_probe(argc - 1, argv + 1);
        log_error("unknown command '%s' (expected ls, status, set or probe)", argv[1]);
        return EXIT_USAGE;
}
