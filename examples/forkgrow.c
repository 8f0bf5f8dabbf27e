/* forkgrow: pre-fork workers that each grow a cache, for libmemlimit's trim across processes.
 * examples/prefork.c only records the levels its processes receive and never gives memory back, so
 * under a budget below its growth it dies whatever the limiter says; forkgrow's caches can be
 * dropped. The parent calls memlimit_init() and forks --workers workers; every process (the parent
 * included) grows a cache of 256 KiB entries (mmapped: freeing one returns it) by --step every
 * --interval ms up to --max, registers a trimmer that evicts entries until the goal is met (all of
 * them when there is no goal) and runs its own loop on memlimit_fd()/memlimit_dispatch().
 *
 * usage: forkgrow [--workers N] [--step SIZE] [--interval MS] [--max SIZE] [--seconds N]
 *   defaults: 3 workers (4 processes), 1M every 20 ms up to 32M each, 3 seconds: 128M wanted.
 * stdout, each line one write(2) so the processes' lines never mix:
 *   forkgrow: pid=P trim freed=BYTES                       at every trim
 *   forkgrow: pid=P ops=N grown_mib=N trims=N freed_mib=N  when a process ends (ops: --interval
 *                                                          steps done, the unit of work)
 *   forkgrow: workers=N ok=N                               the parent, last
 * Exit 0 when every worker exited 0. */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#include "memlimit.h"

#define ENTRY (256u << 10)
#define MAX_ENTRIES 8192

static char *cache[MAX_ENTRIES];
static unsigned n_entries;
static unsigned long long grown, freed_total, trims, ops;

static unsigned long long num_arg(const char *s)
{
        return example_size_arg("forkgrow", s);
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        char line[160];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (n > 0)
                (void)!write(STDOUT_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static size_t trim(enum memlimit_level level, size_t goal, void *ctx)
{
        size_t freed = 0;
        (void)level;
        (void)ctx;
        while (n_entries > 0 && (goal == 0 || freed < goal)) {
                free(cache[--n_entries]);
                freed += ENTRY;
        }
        freed_total += freed;
        trims++;
        say("forkgrow: pid=%d trim freed=%zu\n", (int)getpid(), freed);
        return freed;
}

static int serve(unsigned long long step, long interval_ms, unsigned long long max, double seconds)
{
        double end = now() + seconds, next_grow = now();
        int r = memlimit_register_cache("forkgrow", trim, NULL);
        if (r < 0)
                fprintf(stderr, "forkgrow[%d]: memlimit_register_cache: %s\n", (int)getpid(), strerror(-r));
        for (double t = now(); t < end; t = now()) {
                if (t >= next_grow) {
                        ops++; /* one unit of work: a step inserted, or served from a full cache */
                        for (unsigned long long g = 0; g < step; g += ENTRY) {
                                if ((unsigned long long)n_entries * ENTRY >= max || n_entries >= MAX_ENTRIES)
                                        break;
                                char *p = malloc(ENTRY);
                                if (!p)
                                        break;
                                memset(p, 0x5a, ENTRY); /* touched: charged */
                                cache[n_entries++] = p;
                                grown += ENTRY;
                        }
                        next_grow = t + (double)interval_ms / 1000.0;
                }
                struct pollfd pfd = { .fd = memlimit_fd(), .events = POLLIN };
                int timeout = (int)((next_grow > t ? next_grow - t : 0) * 1000) + 1;
                if (poll(&pfd, pfd.fd >= 0 ? 1 : 0, timeout > 100 ? 100 : timeout) > 0)
                        (void)memlimit_dispatch();
        }
        say("forkgrow: pid=%d ops=%llu grown_mib=%llu trims=%llu freed_mib=%llu\n", (int)getpid(), ops, grown >> 20,
            trims, freed_total >> 20);
        return 0;
}

int main(int argc, char **argv)
{
        unsigned long long workers = 3, step = 1 << 20, max = 32 << 20;
        long interval_ms = 20;
        double seconds = 3;

        for (int i = 1; i < argc; i++) {
                if (i + 1 >= argc)
                        goto usage;
                const char *o = argv[i], *v = argv[++i];
                if (strcmp(o, "--workers") == 0) workers = num_arg(v);
                else if (strcmp(o, "--step") == 0) step = num_arg(v);
                else if (strcmp(o, "--interval") == 0) interval_ms = (long)num_arg(v);
                else if (strcmp(o, "--max") == 0) max = num_arg(v);
                else if (strcmp(o, "--seconds") == 0) seconds = (double)num_arg(v);
                else goto usage;
        }
        if (workers > 64 || step == 0)
                goto usage;
        int r = memlimit_init(0);
        if (r < 0)
                fprintf(stderr, "forkgrow: memlimit_init: %s (running without levels)\n", strerror(-r));

        pid_t kids[64];
        for (unsigned i = 0; i < workers; i++) {
                kids[i] = fork();
                if (kids[i] < 0) {
                        fprintf(stderr, "forkgrow: fork: %s\n", strerror(errno));
                        return 1;
                }
                if (kids[i] == 0) {
                        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                        _exit(serve(step, interval_ms, max, seconds));
                }
        }
        int rc = serve(step, interval_ms, max, seconds);
        unsigned long long ok = 0;
        for (unsigned i = 0; i < workers; i++) {
                int st;
                while (waitpid(kids[i], &st, 0) < 0 && errno == EINTR)
                        ;
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        ok++;
                else
                        rc = 1;
        }
        say("forkgrow: workers=%llu ok=%llu\n", workers, ok);
        return rc;
usage:
        fprintf(stderr, "usage: forkgrow [--workers N] [--step SIZE] [--interval MS] [--max SIZE] [--seconds N]\n");
        return 2;
}
