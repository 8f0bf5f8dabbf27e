/* holdcache: a cache that keeps growing, and gives back whatever it is asked for. It links
 * libmemlimit, registers one cache callback that frees exactly the bytes asked (oldest entries
 * first), lets the library's thread dispatch, and adds an --entry sized entry (malloc'd, touched)
 * every --every ms until --total bytes have gone in. Far more than any budget it runs under: it
 * survives only if it is asked again, as often as it takes -- the soft limit as a control loop.
 * With --ignore it registers the callback but frees nothing (an uncooperative client). With
 * --live-from/--live-to part of what it holds is live data it cannot give back, stepping from the one
 * size to the other in 8 equal steps over the run (the step test of Go's GOMEMLIMIT tests). With
 * --linger MS it leaves memrun (memlimit_shutdown) and holds what it has for MS more before exiting:
 * a program on its way out; with --last SIZE it allocates (and touches) SIZE more as it leaves, a last
 * buffer for its results, then stands still.
 *
 * usage: holdcache [--total SIZE] [--entry SIZE] [--every MS] [--ignore] [--live-from SIZE --live-to SIZE]
 *                  [--linger MS [--last SIZE]]
 *   defaults: 600M in entries of 1M, one every 5 ms, no live set
 * stdout, one line at the end:
 *   holdcache: added=N evicted=N held=SIZE asked=N freed=SIZE
 *              live=SIZE p99_add_us=N max_add_us=N cb_cpu_ms=N wall_ms=N
 * (add latency: malloc and touching one entry -- where memory.high throttling shows)
 * Exit 0 when all entries went in. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#include "memlimit.h"

struct entry {
        struct entry *next;
        size_t size;
};

/* Oldest first; the callback runs in the library's thread, the adder in main. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *head, *tail, *live;
static unsigned long long held, evicted, asked, freed_total, live_bytes, cb_cpu_ns;
static int ignore;

static unsigned long long ns_of(clockid_t c)
{
        struct timespec ts;
        clock_gettime(c, &ts);
        return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
        unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
        return x < y ? -1 : x > y;
}

static size_t evict(enum memlimit_level level, size_t goal, void *ctx)
{
        (void)level;
        (void)ctx;
        size_t freed = 0;
        unsigned long long c0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
        pthread_mutex_lock(&lock);
        asked++;
        while (!ignore && head && freed < goal) {
                struct entry *e = head;
                head = e->next;
                if (!head)
                        tail = NULL;
                freed += e->size;
                held -= e->size;
                evicted++;
                free(e);
        }
        freed_total += freed;
        cb_cpu_ns += ns_of(CLOCK_THREAD_CPUTIME_ID) - c0;
        pthread_mutex_unlock(&lock);
        return freed;
}

int main(int argc, char **argv)
{
        unsigned long long total = 600ull << 20, size = 1ull << 20, every_ms = 5, added = 0, live_from = 0, live_to = 0;
        unsigned long long linger_ms = 0, last = 0;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--ignore") == 0) {
                        ignore = 1;
                        continue;
                }
                if (i + 1 >= argc)
                        goto usage;
                const char *o = argv[i], *v = argv[++i];
                if (strcmp(o, "--total") == 0)
                        total = example_size_arg("holdcache", v);
                else if (strcmp(o, "--entry") == 0)
                        size = example_size_arg("holdcache", v);
                else if (strcmp(o, "--every") == 0)
                        every_ms = example_size_arg("holdcache", v);
                else if (strcmp(o, "--live-from") == 0)
                        live_from = example_size_arg("holdcache", v);
                else if (strcmp(o, "--live-to") == 0)
                        live_to = example_size_arg("holdcache", v);
                else if (strcmp(o, "--linger") == 0)
                        linger_ms = example_size_arg("holdcache", v);
                else if (strcmp(o, "--last") == 0)
                        last = example_size_arg("holdcache", v);
                else
                        goto usage;
        }
        if (size < sizeof(struct entry))
                goto usage;

        int r = memlimit_init(0);
        if (r < 0)
                fprintf(stderr, "holdcache: memlimit_init: %s (running without a limiter)\n", strerror(-r));
        (void)memlimit_register_cache("entries", evict, NULL);
        (void)memlimit_start_thread();

        struct timespec tick = { (time_t)(every_ms / 1000), (long)(every_ms % 1000) * 1000000L };
        unsigned n_lat = (unsigned)(total / size + 1), *lat = calloc(n_lat, sizeof *lat);
        if (!lat)
                return 1;
        unsigned long long t_start = ns_of(CLOCK_MONOTONIC);
        for (unsigned long long in = 0; in < total; in += size) {
                /* The live set wanted now: live_from, then 8 equal steps up to live_to. */
                unsigned long long want = live_to > live_from
                                                  ? live_from + (live_to - live_from) * (in * 8 / total) / 7
                                                  : live_from;
                unsigned long long a0 = ns_of(CLOCK_MONOTONIC);
                struct entry *e = malloc(size);
                if (!e) {
                        fprintf(stderr, "holdcache: out of memory after %llu entries\n", added);
                        return 1;
                }
                memset(e, 0xa5, size); /* touched: charged to the cgroup */
                unsigned long long us = (ns_of(CLOCK_MONOTONIC) - a0) / 1000;
                lat[added] = us > UINT32_MAX ? UINT32_MAX : (unsigned)us;
                e->next = NULL;
                e->size = size;
                pthread_mutex_lock(&lock);
                if (live_bytes < want) {
                        e->next = live;
                        live = e;
                        live_bytes += size;
                } else {
                        if (tail)
                                tail->next = e;
                        else
                                head = e;
                        tail = e;
                        held += size;
                }
                pthread_mutex_unlock(&lock);
                added++;
                if (every_ms)
                        nanosleep(&tick, NULL);
        }
        unsigned long long wall = ns_of(CLOCK_MONOTONIC) - t_start;
        qsort(lat, added, sizeof *lat, cmp_u32);
        pthread_mutex_lock(&lock);
        printf("holdcache: added=%llu evicted=%llu held=%lluM asked=%llu freed=%lluM live=%lluM p99_add_us=%u "
               "max_add_us=%u cb_cpu_ms=%llu wall_ms=%llu\n",
               added, evicted, held >> 20, asked, freed_total >> 20, live_bytes >> 20,
               added ? lat[(added - 1) * 99 / 100] : 0, added ? lat[added - 1] : 0, cb_cpu_ns / 1000000,
               wall / 1000000);
        pthread_mutex_unlock(&lock);
        free(lat);
        memlimit_shutdown();
        char *buf = last ? malloc(last) : NULL;
        if (buf)
                memset(buf, 0x5a, last);
        example_sleep_ms((long long)linger_ms);
        free(buf);
        return 0;
usage:
        fprintf(stderr, "usage: holdcache [--total SIZE] [--entry SIZE] [--every MS] [--ignore] "
                        "[--live-from SIZE --live-to SIZE] [--linger MS [--last SIZE]]\n");
        return 2;
}
