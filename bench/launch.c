/* launch: time short command launches, interleaved round by round, and print a markdown table.
 *
 *   launch [-n ROUNDS] [-m MIN_ROUNDS] [-t SECONDS] [-w WARMUP] [-g GAP_MS] [-o CSV]
 *          -c NAME ARG... [&& ARG...] ';'  -c NAME ...
 *
 * Each -c defines a case: one command, or a chain of commands joined by a literal "&&" argument that
 * run one after the other (no shell) and stop at the first failure. "%N" inside an argument becomes the
 * round number, so a chain can use a fresh name every round. The first case is the baseline, the
 * second the subject (ratios subject/baseline and subject/others are printed).
 *
 * Every round runs every case once, in an order that rotates from round to round, so slow drifts
 * (frequency scaling, page cache, other tenants) spread evenly over all cases. Measurement stops after
 * ROUNDS rounds, or after SECONDS once MIN_ROUNDS are done. With -g, every launch is preceded by an
 * untimed idle pause of GAP_MS, so each one starts "cold" (as a lone launch by hand or from a
 * service manager does) instead of right after the previous one. A command that fails ends the run with
 * status 1: this is a report, never a threshold check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CASES 8
#define MAX_STEPS 8

struct step {
        char **argv; /* template, NULL-terminated */
        int argc;
};

struct kase {
        const char *name;
        struct step steps[MAX_STEPS];
        int nsteps;
        double *ms; /* one sample per measured round */
};

static struct kase cases[MAX_CASES];
static int ncases;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...);
static void die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "launch: ");
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

/* Replace every "%N" in tmpl with round; returns a malloc'd string or tmpl itself when no %N. */
static char *expand(char *tmpl, long round)
{
        if (!strstr(tmpl, "%N"))
                return tmpl;
        char num[32];
        int nl = snprintf(num, sizeof num, "%ld", round);
        size_t len = strlen(tmpl) + 1;
        for (const char *p = tmpl; (p = strstr(p, "%N")); p += 2)
                len += (size_t)nl;
        char *out = malloc(len), *o = out;
        if (!out)
                die("%s", "out of memory");
        for (const char *p = tmpl; *p;) {
                if (p[0] == '%' && p[1] == 'N') {
                        memcpy(o, num, (size_t)nl);
                        o += nl;
                        p += 2;
                } else {
                        *o++ = *p++;
                }
        }
        *o = '\0';
        return out;
}

/* Run one step to completion; 0 on exit status 0. */
static int run_step(const struct step *s, long round, const char *case_name)
{
        char *argv[s->argc + 1];
        for (int i = 0; i < s->argc; i++)
                argv[i] = expand(s->argv[i], round);
        argv[s->argc] = NULL;

        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ), st = 0;
        if (r != 0) {
                fprintf(stderr, "launch: %s: cannot run %s: %s\n", case_name, argv[0], strerror(r));
        } else {
                while (waitpid(pid, &st, 0) < 0)
                        if (errno != EINTR) {
                                st = -1;
                                break;
                        }
                if (st != 0) {
                        fprintf(stderr, "launch: %s (round %ld): '", case_name, round);
                        for (int i = 0; argv[i]; i++)
                                fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
                        if (st > 0 && WIFEXITED(st))
                                fprintf(stderr, "' exited with status %d\n", WEXITSTATUS(st));
                        else if (st > 0 && WIFSIGNALED(st))
                                fprintf(stderr, "' died of signal %d\n", WTERMSIG(st));
                        else
                                fprintf(stderr, "' could not be waited for\n");
                }
        }
        for (int i = 0; i < s->argc; i++)
                if (argv[i] != s->argv[i])
                        free(argv[i]);
        return r != 0 || st != 0 ? -1 : 0;
}

static double gap_ms_global;

static int run_case(const struct kase *k, long round, double *ret_ms)
{
        if (gap_ms_global > 0) {
                long long ns = (long long)(gap_ms_global * 1e6);
                struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
                        ;
        }
        double t0 = now_ms();
        for (int i = 0; i < k->nsteps; i++)
                if (run_step(&k->steps[i], round, k->name) < 0)
                        return -1;
        *ret_ms = now_ms() - t0;
        return 0;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

struct stats {
        double mean, median, p95, min, max, sd;
};

static struct stats summarize(const double *v, size_t n)
{
        struct stats s = { 0 };
        double *sorted = malloc(n * sizeof *sorted);
        if (!sorted)
                die("%s", "out of memory");
        memcpy(sorted, v, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_double);
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++)
                sum += sorted[i];
        s.mean = sum / (double)n;
        for (size_t i = 0; i < n; i++)
                sq += (sorted[i] - s.mean) * (sorted[i] - s.mean);
        s.sd = n > 1 ? __builtin_sqrt(sq / (double)(n - 1)) : 0;
        s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        size_t k = (size_t)((double)n * 0.95 + 0.999999); /* nearest rank */
        s.p95 = sorted[(k ? k : 1) - 1];
        s.min = sorted[0];
        s.max = sorted[n - 1];
        free(sorted);
        return s;
}

static void usage(void)
{
        fprintf(stderr, "usage: launch [-n ROUNDS] [-m MIN_ROUNDS] [-t SECONDS] [-w WARMUP] [-g GAP_MS] [-o CSV] "
                        "-c NAME CMD... [&& CMD...] ';' [-c ...]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        long rounds = 500, min_rounds = 200, warmup = 10;
        double seconds = 60, gap_ms = 0;
        const char *csv = NULL;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if ((!strcmp(a, "-n") || !strcmp(a, "-m") || !strcmp(a, "-t") || !strcmp(a, "-w") ||
                     !strcmp(a, "-g") || !strcmp(a, "-o")) &&
                    i + 1 < argc) {
                        const char *v = argv[++i];
                        char *end;
                        if (a[1] == 'o') {
                                csv = v;
                                continue;
                        }
                        double d = strtod(v, &end);
                        if (*end || d < 0)
                                die("bad number '%s'", v);
                        if (a[1] == 'n')
                                rounds = (long)d;
                        else if (a[1] == 'm')
                                min_rounds = (long)d;
                        else if (a[1] == 't')
                                seconds = d;
                        else if (a[1] == 'g')
                                gap_ms = d;
                        else
                                warmup = (long)d;
                } else if (!strcmp(a, "-c") && i + 2 < argc) {
                        if (ncases == MAX_CASES)
                                die("%s", "too many cases");
                        struct kase *k = &cases[ncases++];
                        k->name = argv[++i];
                        struct step *s = &k->steps[0];
                        k->nsteps = 1;
                        s->argv = &argv[i + 1];
                        for (i++; i < argc && strcmp(argv[i], ";"); i++) {
                                if (!strcmp(argv[i], "&&")) {
                                        if (s->argc == 0 || k->nsteps == MAX_STEPS)
                                                die("bad chain in case '%s'", k->name);
                                        argv[i] = NULL; /* terminates the previous step's argv */
                                        s = &k->steps[k->nsteps++];
                                        s->argv = &argv[i + 1];
                                } else {
                                        s->argc++;
                                }
                        }
                        if (s->argc == 0)
                                die("empty command in case '%s'", k->name);
                        if (i < argc)
                                argv[i] = NULL; /* the ';' */
                } else {
                        usage();
                }
        }
        if (ncases < 2 || rounds < 1)
                usage();
        if (min_rounds > rounds)
                min_rounds = rounds;
        gap_ms_global = gap_ms;

        for (int c = 0; c < ncases; c++) {
                cases[c].ms = calloc((size_t)rounds, sizeof(double));
                if (!cases[c].ms)
                        die("%s", "out of memory");
        }
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);

        /* Warm-up rounds (page cache, dentries, binaries' first faults) are run but not kept. Round
         * numbers keep counting so names built from %N are never reused within one run. */
        long round = 0;
        for (long w = 0; w < warmup && !stop; w++, round++)
                for (int c = 0; c < ncases; c++) {
                        double ms;
                        if (run_case(&cases[c], round, &ms) < 0)
                                return 1;
                }

        double t_start = now_ms(), budget = seconds * 1e3;
        long done = 0;
        while (done < rounds && !stop) {
                if (done >= min_rounds && now_ms() - t_start > budget)
                        break;
                for (int j = 0; j < ncases; j++) {
                        /* rotate the order: round r starts with case r mod ncases */
                        struct kase *k = &cases[(done + j) % ncases];
                        if (run_case(k, round, &k->ms[done]) < 0)
                                return 1;
                }
                done++;
                round++;
        }
        if (stop) {
                fprintf(stderr, "launch: interrupted after %ld rounds\n", done);
                return 1;
        }
        double wall = (now_ms() - t_start) / 1e3;

        if (csv) {
                FILE *f = fopen(csv, "w");
                if (!f) {
                        fprintf(stderr, "launch: cannot write %s: %s\n", csv, strerror(errno));
                        return 1;
                }
                fprintf(f, "round");
                for (int c = 0; c < ncases; c++)
                        fprintf(f, ",%s_ms", cases[c].name);
                fputc('\n', f);
                for (long r = 0; r < done; r++) {
                        fprintf(f, "%ld", r);
                        for (int c = 0; c < ncases; c++)
                                fprintf(f, ",%.4f", cases[c].ms[r]);
                        fputc('\n', f);
                }
                fclose(f);
        }

        struct stats st[MAX_CASES];
        for (int c = 0; c < ncases; c++)
                st[c] = summarize(cases[c].ms, (size_t)done);

        printf("| launch | mean (ms) | median (ms) | p95 (ms) | min (ms) | max (ms) | sd (ms) |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
        for (int c = 0; c < ncases; c++)
                printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", cases[c].name, st[c].mean,
                       st[c].median, st[c].p95, st[c].min, st[c].max, st[c].sd);
        printf("\n");

        const struct stats *b = &st[0], *s = &st[1];
        printf("| ratio | mean | median | p95 |\n");
        printf("|---|---:|---:|---:|\n");
        printf("| %s / %s | %.2fx | %.2fx | %.2fx |\n", cases[1].name, cases[0].name, s->mean / b->mean,
               s->median / b->median, s->p95 / b->p95);
        printf("| %s − %s | %+.3f ms | %+.3f ms | %+.3f ms |\n", cases[1].name, cases[0].name, s->mean - b->mean,
               s->median - b->median, s->p95 - b->p95);
        size_t n1 = strlen(cases[1].name);
        for (int c = 2; c < ncases; c++) {
                /* "memrun --sandbox" is a variant of "memrun": its cost over it; other cases are baselines. */
                if (strncmp(cases[c].name, cases[1].name, n1) == 0 && cases[c].name[n1] == ' ') {
                        const struct stats *v = &st[c];
                        printf("| %s / %s | %.2fx | %.2fx | %.2fx |\n", cases[c].name, cases[1].name, v->mean / s->mean,
                               v->median / s->median, v->p95 / s->p95);
                        printf("| %s − %s | %+.3f ms | %+.3f ms | %+.3f ms |\n", cases[c].name, cases[1].name,
                               v->mean - s->mean, v->median - s->median, v->p95 - s->p95);
                } else
                        printf("| %s / %s | %.2fx | %.2fx | %.2fx |\n", cases[1].name, cases[c].name,
                               s->mean / st[c].mean, s->median / st[c].median, s->p95 / st[c].p95);
        }
        printf("\n%ld interleaved rounds (+%ld warm-up) in %.1f s; order rotated every round", done, warmup, wall);
        if (gap_ms > 0)
                printf("; %.0f ms idle before every launch (not timed)", gap_ms);
        else
                printf("; launches back to back");
        printf("%s%s.\n", csv ? "; raw samples: " : "", csv ? csv : "");
        return 0;
}
