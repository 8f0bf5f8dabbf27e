/* prefork: a pre-fork server's shape for libmemlimit: the parent calls memlimit_init(), then forks
 * workers; every process (the parent and each worker) registers a level handler and runs its own
 * event loop on memlimit_fd()/memlimit_dispatch(), so every one of them must get the levels (the
 * library re-attaches a forked child on its first dispatch). Each process also grows its heap a
 * little at a time, so under memrun the sandbox as a whole climbs the ladder.
 *
 * usage: prefork --out FILE [--workers N] [--step SIZE] [--interval MS] [--max SIZE] [--seconds N]
 * Each level a process receives is appended to FILE as one line "PID LEVEL" (LEVEL 0..3), with
 * O_APPEND so the lines of the processes do not mix. Defaults: 3 workers (4 processes), 512K every
 * 20 ms up to 12M per process, 4 seconds. Exit 0 when every worker exited 0. */
#include <errno.h>
#include <fcntl.h>
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

static int out_fd = -1;

static unsigned long long num_arg(const char *s)
{
        return example_size_arg("prefork", s);
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_level(enum memlimit_level level, void *ctx)
{
        char line[48];
        (void)ctx;
        int n = snprintf(line, sizeof line, "%d %d\n", (int)getpid(), (int)level);
        if (n > 0)
                (void)!write(out_fd, line, (size_t)n);
}

/* One process's life: grow, and dispatch the limiter's events as they come. */
static int serve(unsigned long long step, long interval_ms, unsigned long long max, double seconds)
{
        unsigned long long held = 0;
        double end = now() + seconds, next_grow = now();
        int r = memlimit_on_level(on_level, NULL);
        if (r < 0) {
                fprintf(stderr, "prefork[%d]: memlimit_on_level: %s\n", (int)getpid(), strerror(-r));
                return 1;
        }
        for (double t = now(); t < end; t = now()) {
                if (held + step <= max && t >= next_grow) {
                        char *p = malloc(step);
                        if (p) {
                                memset(p, 0x5a, step); /* touched: charged */
                                held += step;
                        }
                        next_grow = t + (double)interval_ms / 1000.0;
                }
                struct pollfd pfd = { .fd = memlimit_fd(), .events = POLLIN };
                int timeout = (int)((next_grow > t ? next_grow - t : 0) * 1000) + 1;
                if (poll(&pfd, pfd.fd >= 0 ? 1 : 0, timeout > 100 ? 100 : timeout) > 0)
                        (void)memlimit_dispatch();
        }
        return 0;
}

int main(int argc, char **argv)
{
        unsigned long long workers = 3, step = 512 << 10, max = 12 << 20;
        long interval_ms = 20;
        double seconds = 4;
        const char *out = NULL;

        for (int i = 1; i < argc; i++) {
                if (i + 1 >= argc)
                        goto usage;
                const char *o = argv[i], *v = argv[++i];
                if (strcmp(o, "--out") == 0) out = v;
                else if (strcmp(o, "--workers") == 0) workers = num_arg(v);
                else if (strcmp(o, "--step") == 0) step = num_arg(v);
                else if (strcmp(o, "--interval") == 0) interval_ms = (long)num_arg(v);
                else if (strcmp(o, "--max") == 0) max = num_arg(v);
                else if (strcmp(o, "--seconds") == 0) seconds = (double)num_arg(v);
                else goto usage;
        }
        if (!out || workers > 64 || step == 0)
                goto usage;
        out_fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (out_fd < 0) {
                fprintf(stderr, "prefork: %s: %s\n", out, strerror(errno));
                return 1;
        }
        int r = memlimit_init(0);
        if (r < 0)
                fprintf(stderr, "prefork: memlimit_init: %s (running without levels)\n", strerror(-r));

        pid_t kids[64];
        for (unsigned i = 0; i < workers; i++) {
                kids[i] = fork();
                if (kids[i] < 0) {
                        fprintf(stderr, "prefork: fork: %s\n", strerror(errno));
                        return 1;
                }
                if (kids[i] == 0) {
                        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                        _exit(serve(step, interval_ms, max, seconds));
                }
        }
        printf("prefork: %d and %llu workers\n", (int)getpid(), workers);
        fflush(stdout);
        int rc = serve(step, interval_ms, max, seconds);
        for (unsigned i = 0; i < workers; i++) {
                int st;
                while (waitpid(kids[i], &st, 0) < 0 && errno == EINTR)
                        ;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        rc = 1;
        }
        return rc;
usage:
        fprintf(stderr, "usage: prefork --out FILE [--workers N] [--step SIZE] [--interval MS] [--max SIZE] "
                        "[--seconds N]\n");
        return 2;
}
