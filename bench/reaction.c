/* reaction: how long memrun takes from a usage threshold being crossed to its action starting.
 *
 *   reaction [--usage PCT] [--pace US] [--idle MS] [--jitter MS] [--over SIZE] [--timeout MS] [--no-watch]
 *   reaction --summarize FILE
 *
 * Run mode (as the command of `memrun --policy P --limit L`, where P has a level with `usage = PCT` and
 * `actions = signal:USR1`): grows its sandbox in 64 KiB steps (one touched byte per 4 KiB page, huge pages
 * off), and after each step reads its own sandbox's usage (v2 memory.current, v1 memory.usage_in_bytes,
 * found from $MEMRUN_CGROUP). The crossing time is the start of the first step after which usage >= PCT of
 * $MEMRUN_LIMIT (memrun's own rounding). Three reactions are timed from that moment, in the same process:
 *   memrun     its SIGUSR1 handler runs (memrun saw the crossing, took its decision, sent the signal);
 *   in-process the program signals itself (SIGUSR2) right after its read shows the crossing: the floor of
 *              any reaction (the cost of the detection primitive the program itself uses, plus a signal);
 *   kernel     v1/hybrid only: a thread blocked on the program's own eventfd threshold
 *              (cgroup.event_control, same threshold, same cgroup) wakes: what the kernel notification that
 *              memrun listens to costs alone. cgroup v2 has no usage notification.
 * Growth: first 0-127 random pages (so the crossing falls at a random point of v1's 128-charge check
 * cycle), then --idle MS (+ up to --jitter MS, random) of nothing, then a 64 KiB step every --pace US
 * (0 = as fast as it can) until memrun's signal and the kernel notification (v1) have both come, or until
 * --over bytes past the threshold; then it waits for memrun at most --timeout MS. Prints one line:
 * "ok memrun_us=.. self_us=.. kernel_us=..|- step_us=.. usage=.. thr=..",
 * or "missed ..." and exits 3 when memrun's signal never came.
 *
 * --summarize FILE: FILE holds lines "SCENARIO ok ..." / "SCENARIO missed ..."; prints markdown tables
 * (p50/p99 by nearest rank, so p99 is the maximum below 100 runs) grouped by scenario, in first-seen order.
 * A report, not a test: no thresholds. Exit status 2 on usage or I/O errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define STEP (64u * 1024u)
#define PAGE 4096u

static volatile sig_atomic_t got_memrun, got_self;
static struct timespec ts_memrun, ts_self;
static struct timespec ts_kernel;
static volatile int got_kernel; /* written by the watcher thread, read after a barrier below */

static double us_of(const struct timespec *t)
{
        return (double)t->tv_sec * 1e6 + (double)t->tv_nsec / 1e3;
}

static double now_us(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return us_of(&t);
}

static void on_usr1(int sig)
{
        (void)sig;
        if (!got_memrun) {
                clock_gettime(CLOCK_MONOTONIC, &ts_memrun);
                got_memrun = 1;
        }
}

static void on_usr2(int sig)
{
        (void)sig;
        if (!got_self) {
                clock_gettime(CLOCK_MONOTONIC, &ts_self);
                got_self = 1;
        }
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...);
static void die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("reaction: ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

static uint64_t parse_u64(const char *s, const char *what)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-')
                die("%s: '%s' is not a number", what, s);
        unsigned shift = 0;
        switch (*end) {
        case '\0': break;
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        default: die("%s: '%s' is not a size", what, s);
        }
        if (*end)
                die("%s: '%s' is not a size", what, s);
        return (uint64_t)v << shift;
}

static int read_usage(int fd, uint64_t *ret)
{
        char buf[64];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (errno || end == buf)
                return -1;
        *ret = v;
        return 0;
}

static void sleep_until_us(double t)
{
        for (;;) {
                double left = t - now_us();
                if (left <= 0)
                        return;
                struct timespec d = { (time_t)(left / 1e6), (long)((left - (double)(time_t)(left / 1e6) * 1e6) * 1e3) };
                nanosleep(&d, NULL); /* EINTR: loop re-computes */
        }
}

static void *watch(void *arg)
{
        int efd = *(int *)arg;
        uint64_t n;
        while (read(efd, &n, sizeof n) < 0 && errno == EINTR)
                ;
        clock_gettime(CLOCK_MONOTONIC, &ts_kernel);
        __atomic_store_n(&got_kernel, 1, __ATOMIC_RELEASE);
        return NULL;
}

static int run(int argc, char **argv)
{
        double pct = 50, pace_us = 1000, idle_ms = 200, jitter_ms = 0, timeout_ms = 10000;
        uint64_t over = 8u << 20;
        bool want_watch = true;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                char *end;
                if (!strcmp(a, "--no-watch")) {
                        want_watch = false;
                        continue;
                }
                if (!v)
                        die("%s needs a value", a);
                i++;
                if (!strcmp(a, "--over")) {
                        over = parse_u64(v, a);
                        continue;
                }
                double d = strtod(v, &end);
                if (!strcmp(a, "--usage") && *end == '%')
                        end++;
                if (*end || d < 0)
                        die("%s: bad value '%s'", a, v);
                if (!strcmp(a, "--usage"))
                        pct = d;
                else if (!strcmp(a, "--pace"))
                        pace_us = d;
                else if (!strcmp(a, "--idle"))
                        idle_ms = d;
                else if (!strcmp(a, "--jitter"))
                        jitter_ms = d;
                else if (!strcmp(a, "--timeout"))
                        timeout_ms = d;
                else
                        die("unknown option %s", a);
        }
        if (pct <= 0 || pct > 100)
                die("--usage %g%% out of range", pct);

        const char *cg = getenv("MEMRUN_CGROUP"), *lim = getenv("MEMRUN_LIMIT");
        if (!cg || !lim)
                die("MEMRUN_CGROUP / MEMRUN_LIMIT not set: run me under memrun");
        uint64_t limit = parse_u64(lim, "MEMRUN_LIMIT");
        /* memrun keeps percentages in parts per million and rounds the share down: do the same. */
        uint64_t ppm = (uint64_t)(pct * 1e4 + 1e-6);
        uint64_t thr = (uint64_t)((unsigned __int128)limit * ppm / 1000000u);

        bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
        char dir[4096], path[4200];
        snprintf(dir, sizeof dir, "%s%s", v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", cg);
        snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
        int ufd = open(path, O_RDONLY | O_CLOEXEC);
        if (ufd < 0)
                die("cannot open %s: %s", path, strerror(errno));

        struct sigaction sa = { .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        sa.sa_handler = on_usr2;
        sigaction(SIGUSR2, &sa, NULL);
        /* Warm both signal paths once (first-run page faults; under qemu TCG, code translation costs
         * milliseconds), so neither measured reaction pays for them. */
        kill(getpid(), SIGUSR1);
        kill(getpid(), SIGUSR2);
        got_memrun = got_self = 0;

        /* v1: the kernel's own threshold notification, on this sandbox only, in a thread that never takes
         * the signals (they must reach the main thread). */
        bool watching = false;
        int efd = -1;
        pthread_t th;
        if (!v2 && want_watch) {
                efd = eventfd(0, EFD_CLOEXEC);
                char ctl[4200], buf[96];
                snprintf(ctl, sizeof ctl, "%s/cgroup.event_control", dir);
                int cfd = open(ctl, O_WRONLY | O_CLOEXEC);
                int n = snprintf(buf, sizeof buf, "%d %d %" PRIu64, efd, ufd, thr);
                if (efd < 0 || cfd < 0 || write(cfd, buf, (size_t)n) != n)
                        die("cannot arm a usage threshold on %s: %s", ctl, strerror(errno));
                close(cfd);
                sigset_t all, old;
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                if (pthread_create(&th, NULL, watch, &efd) != 0)
                        die("pthread_create failed");
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                watching = true;
        }

        uint64_t usage0;
        if (read_usage(ufd, &usage0) < 0)
                die("cannot read %s", path);
        if (usage0 >= thr)
                die("usage %" PRIu64 " is already at the threshold %" PRIu64, usage0, thr);
        size_t len = (size_t)(thr + over + 2 * STEP);
        unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED)
                die("mmap %zu bytes: %s", len, strerror(errno));
        /* 4 KiB pages, as in the steps: with transparent huge pages (always on in Debian's kernel) usage
         * would jump 2 MiB at a time and the crossing step would be a 2 MiB fault. */
        (void)madvise(mem, len, MADV_NOHUGEPAGE);

        struct timespec seed;
        clock_gettime(CLOCK_MONOTONIC, &seed);
        srandom((unsigned)(seed.tv_nsec ^ getpid()));
        idle_ms += jitter_ms * (double)random() / (double)RAND_MAX;
        /* v1 checks thresholds once per 128 charge events per CPU: a random number of pages first puts the
         * crossing at a random point of that cycle, as in a real program, instead of the same point every run. */
        size_t pre = PAGE * (size_t)(random() % 128);
        for (size_t p = 0; p < pre; p += PAGE)
                mem[p] = 1;
        sleep_until_us(now_us() + idle_ms * 1e3);

        double t0 = now_us(), t_cross = 0, step_sum = 0;
        uint64_t usage = usage0, steps = 0, crossed_usage = 0;
        bool crossed = false;
        /* Growth goes on after memrun's signal until the kernel's own notification fired too: v1 checks
         * thresholds only every 128 charges, and memrun's sampling timer may see the crossing first. */
        for (size_t off = pre; off + STEP <= len; off += STEP) {
                if (got_memrun && (!watching || __atomic_load_n(&got_kernel, __ATOMIC_ACQUIRE)))
                        break;
                double ts = now_us();
                for (size_t p = 0; p < STEP; p += PAGE)
                        mem[off + p] = 1;
                if (read_usage(ufd, &usage) < 0)
                        die("cannot read %s", path);
                step_sum += now_us() - ts;
                steps++;
                if (!crossed && usage >= thr) {
                        crossed = true;
                        t_cross = ts;
                        crossed_usage = usage;
                        kill(getpid(), SIGUSR2); /* handled before kill() returns */
                }
                if (crossed && usage >= thr + over)
                        break;
                if (pace_us > 0)
                        sleep_until_us(t0 + (double)steps * pace_us);
        }
        double deadline = now_us() + timeout_ms * 1e3;
        while (!got_memrun && now_us() < deadline)
                sleep_until_us(now_us() + 1000);
        /* The kernel notification precedes memrun's reaction; give the thread a moment to run all the same. */
        for (int i = 0; watching && i < 1000 && !__atomic_load_n(&got_kernel, __ATOMIC_ACQUIRE); i++)
                sleep_until_us(now_us() + 1000);

        if (!crossed)
                die("usage never reached the threshold %" PRIu64 " (last %" PRIu64 ")", thr, usage);
        double step_us = step_sum / (double)steps;
        char kern[32] = "-";
        if (watching && __atomic_load_n(&got_kernel, __ATOMIC_ACQUIRE))
                snprintf(kern, sizeof kern, "%.1f", us_of(&ts_kernel) - t_cross);
        if (!got_memrun) {
                printf("missed self_us=%.1f kernel_us=%s step_us=%.1f usage=%" PRIu64 " thr=%" PRIu64 "\n",
                       us_of(&ts_self) - t_cross, kern, step_us, usage, thr);
                return 3;
        }
        printf("ok memrun_us=%.1f self_us=%.1f kernel_us=%s step_us=%.1f usage=%" PRIu64 " thr=%" PRIu64 "\n",
               us_of(&ts_memrun) - t_cross, us_of(&ts_self) - t_cross, kern, step_us, crossed_usage, thr);
        fflush(stdout);
        _exit(0); /* the watcher thread may still be blocked (it never fired): do not join it */
}

/* --- summarize ----------------------------------------------------------------------------------- */

#define MAX_SCEN 8

struct series {
        double *v;
        size_t n, cap;
};

struct scen {
        char name[64];
        struct series memrun, self, kernel, diff, step;
        unsigned missed;
};

static void push(struct series *s, double v)
{
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 64;
                s->v = realloc(s->v, s->cap * sizeof *s->v);
                if (!s->v)
                        die("out of memory");
        }
        s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* nearest rank */
static double pct_of(struct series *s, double p)
{
        if (!s->n)
                return NAN;
        qsort(s->v, s->n, sizeof *s->v, cmp_double);
        size_t k = (size_t)((double)s->n * p / 100.0 + 0.999999);
        return s->v[(k ? k : 1) - 1];
}

static bool field(const char *line, const char *key, double *ret)
{
        const char *p = strstr(line, key);
        if (!p)
                return false;
        p += strlen(key);
        char *end;
        double d = strtod(p, &end);
        if (end == p)
                return false;
        *ret = d;
        return true;
}

/* Milliseconds, with enough digits for microsecond-scale numbers. */
static const char *ms(double us, char *buf, size_t len)
{
        if (isnan(us))
                snprintf(buf, len, "–");
        else if (fabs(us) < 10000)
                snprintf(buf, len, "%.3f", us / 1e3);
        else
                snprintf(buf, len, "%.1f", us / 1e3);
        return buf;
}

static int summarize(const char *file)
{
        FILE *f = fopen(file, "r");
        if (!f)
                die("%s: %s", file, strerror(errno));
        static struct scen sc[MAX_SCEN];
        size_t nsc = 0;
        char line[512];
        while (fgets(line, sizeof line, f)) {
                char name[64], kind[16];
                if (sscanf(line, "%63s %15s", name, kind) != 2)
                        continue;
                size_t i;
                for (i = 0; i < nsc && strcmp(sc[i].name, name); i++)
                        ;
                if (i == nsc) {
                        if (nsc == MAX_SCEN)
                                die("too many scenarios");
                        snprintf(sc[nsc++].name, sizeof sc[0].name, "%s", name);
                }
                struct scen *s = &sc[i];
                double m, self, k, st;
                if (!strcmp(kind, "missed")) {
                        s->missed++;
                        continue;
                }
                if (strcmp(kind, "ok") || !field(line, "memrun_us=", &m) || !field(line, "self_us=", &self))
                        die("%s: bad line: %s", file, line);
                push(&s->memrun, m);
                push(&s->self, self);
                if (field(line, "kernel_us=", &k)) {
                        push(&s->kernel, k);
                        push(&s->diff, m - k);
                }
                if (field(line, "step_us=", &st))
                        push(&s->step, st);
        }
        fclose(f);

        char a[32], b[32], c[32], d[32], e[32], g[32], h[32];
        bool any_kernel = false;
        for (size_t i = 0; i < nsc; i++)
                any_kernel |= sc[i].kernel.n > 0;

        printf("| scenario | runs | memrun p50 (ms) | memrun p99 (ms) | in-process p50 (ms) | in-process p99 (ms) |%s "
               "step (ms) |\n",
               any_kernel ? " kernel eventfd p50 (ms) | kernel eventfd p99 (ms) |" : "");
        printf("|---|---:|---:|---:|---:|---:|%s---:|\n", any_kernel ? "---:|---:|" : "");
        for (size_t i = 0; i < nsc; i++) {
                struct scen *s = &sc[i];
                char missed[32] = "";
                if (s->missed)
                        snprintf(missed, sizeof missed, " (+%u missed)", s->missed);
                printf("| %s | %zu%s | %s | %s | %s | %s |", s->name, s->memrun.n, missed,
                       ms(pct_of(&s->memrun, 50), a, sizeof a), ms(pct_of(&s->memrun, 99), b, sizeof b),
                       ms(pct_of(&s->self, 50), c, sizeof c), ms(pct_of(&s->self, 99), d, sizeof d));
                if (any_kernel)
                        printf(" %s | %s |", ms(pct_of(&s->kernel, 50), e, sizeof e),
                               ms(pct_of(&s->kernel, 99), g, sizeof g));
                printf(" %s |\n", ms(pct_of(&s->step, 50), h, sizeof h));
        }
        printf("\n");

        printf("| scenario | memrun / in-process (p50) | memrun / in-process (p99) |%s\n",
               any_kernel ? " memrun − kernel eventfd, per run: p50 (ms) | p99 (ms) | memrun / kernel eventfd (p50) |"
                          : "");
        printf("|---|---:|---:|%s\n", any_kernel ? "---:|---:|---:|" : "");
        for (size_t i = 0; i < nsc; i++) {
                struct scen *s = &sc[i];
                double m50 = pct_of(&s->memrun, 50), m99 = pct_of(&s->memrun, 99);
                double s50 = pct_of(&s->self, 50), s99 = pct_of(&s->self, 99);
                printf("| %s | %.0fx | %.0fx |", s->name, m50 / s50, m99 / s99);
                if (any_kernel && s->kernel.n)
                        printf(" %s | %s | %.2fx |", ms(pct_of(&s->diff, 50), a, sizeof a),
                               ms(pct_of(&s->diff, 99), b, sizeof b), m50 / pct_of(&s->kernel, 50));
                else if (any_kernel)
                        printf(" – | – | – |");
                printf("\n");
        }
        for (size_t i = 0; i < nsc; i++)
                if (sc[i].missed)
                        printf("\n%s: memrun's signal never came in %u run(s) (timeout); those runs are not in the "
                               "percentiles.\n",
                               sc[i].name, sc[i].missed);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 3 && !strcmp(argv[1], "--summarize"))
                return summarize(argv[2]);
        return run(argc, argv);
}
