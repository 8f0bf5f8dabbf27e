/* burst: a request burst for libmemlimit's shedding. Requests arrive one per tick; each admitted one
 * allocates a large buffer (--size, touched: charged) and holds it for --hold ticks, then completes
 * and frees it (the buffers are mmapped: freeing returns them). At --hold concurrent requests the
 * burst needs hold * size bytes at once, more than the budget: without a limiter it is OOM-killed.
 * Before admitting a request it asks memlimit_shedding(): while memrun (or MEMLIMIT=) says shed, the
 * request is rejected and counted, and the requests in flight still complete, so the level drops and
 * admission resumes. Arrivals are counted in ticks, not wall time, so the concurrency (and the
 * outcome) is the same on a fast host and under emulation.
 *
 * usage: burst [--requests N] [--size SIZE] [--hold TICKS] [--tick MS]
 *   defaults: 80 requests of 8M, held 16 ticks of 25 ms (128M wanted at the top of the burst)
 * stdout: "burst: done=N rejected=N" after every request that ends, then one summary line
 *   burst: requests=N done=N rejected=N lost=N max_inflight=N
 * Every request ends as done or rejected: lost = requests - done - rejected, printed so a reader sees
 * it is 0. Exit 0 iff lost == 0. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#include "memlimit.h"

#define MAX_HOLD 256

static unsigned long long num_arg(const char *s)
{
        return example_size_arg("burst", s);
}

struct req {
        char *buf;
        unsigned long long born; /* tick it was admitted */
};

/* Wait one tick, handling the limiter's messages as they come in meanwhile. */
static void tick_wait(long tick_ms)
{
        struct pollfd pfd = { .fd = memlimit_fd(), .events = POLLIN };
        if (pfd.fd < 0) {
                (void)poll(NULL, 0, (int)tick_ms);
                return;
        }
        if (poll(&pfd, 1, (int)tick_ms) > 0)
                (void)memlimit_dispatch();
}

int main(int argc, char **argv)
{
        unsigned long long requests = 80, size = 8ull << 20, hold = 16;
        long tick_ms = 25;

        for (int i = 1; i < argc; i++) {
                if (i + 1 >= argc)
                        goto usage;
                const char *o = argv[i], *v = argv[++i];
                if (strcmp(o, "--requests") == 0) requests = num_arg(v);
                else if (strcmp(o, "--size") == 0) size = num_arg(v);
                else if (strcmp(o, "--hold") == 0) hold = num_arg(v);
                else if (strcmp(o, "--tick") == 0) tick_ms = (long)num_arg(v);
                else goto usage;
        }
        if (size == 0 || hold == 0 || hold > MAX_HOLD)
                goto usage;
        int r = memlimit_init(0);
        if (r < 0)
                fprintf(stderr, "burst: memlimit_init: %s (running without shedding)\n", strerror(-r));

        struct req slot[MAX_HOLD] = { { 0 } };
        unsigned long long arrived = 0, done = 0, rejected = 0, inflight = 0, max_inflight = 0;
        for (unsigned long long t = 0; done + rejected < requests; t++) {
                if (memlimit_fd() >= 0)
                        (void)memlimit_dispatch();
                /* complete what has been held long enough: its buffer goes back at once */
                for (unsigned i = 0; i < hold; i++) {
                        if (slot[i].buf && t - slot[i].born >= hold) {
                                free(slot[i].buf);
                                slot[i].buf = NULL;
                                inflight--;
                                done++;
                                printf("burst: done=%llu rejected=%llu\n", done, rejected);
                                fflush(stdout);
                        }
                }
                if (arrived < requests) {
                        arrived++;
                        if (memlimit_shedding()) {
                                rejected++;
                                printf("burst: done=%llu rejected=%llu\n", done, rejected);
                                fflush(stdout);
                        } else {
                                unsigned i = 0;
                                while (slot[i].buf) /* a free slot exists: at most hold are in flight */
                                        i++;
                                slot[i].buf = malloc(size);
                                if (!slot[i].buf) {
                                        fprintf(stderr, "burst: malloc(%llu) failed\n", size);
                                        return 1;
                                }
                                memset(slot[i].buf, 0x5a, size); /* touched: charged */
                                slot[i].born = t;
                                if (++inflight > max_inflight)
                                        max_inflight = inflight;
                        }
                }
                tick_wait(tick_ms);
        }
        unsigned long long lost = requests - done - rejected;
        printf("burst: requests=%llu done=%llu rejected=%llu lost=%llu max_inflight=%llu\n", requests, done,
               rejected, lost, max_inflight);
        return lost == 0 ? 0 : 1;
usage:
        fprintf(stderr, "usage: burst [--requests N] [--size SIZE] [--hold TICKS (1..%d)] [--tick MS]\n", MAX_HOLD);
        return 2;
}
