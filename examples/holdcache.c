/* holdcache: a cache that keeps growing, and gives back whatever it is asked for. It links
 * libmemlimit, registers one cache callback that frees exactly the bytes asked (oldest entries
 * first), lets the library's thread dispatch, and adds an --entry sized entry (malloc'd, touched)
 * every --every ms until --total bytes have gone in. Far more than any budget it runs under: it
 * survives only if it is asked again, as often as it takes -- the soft limit as a control loop.
 * With --ignore it registers the callback but frees nothing (an uncooperative client).
 *
 * usage: holdcache [--total SIZE] [--entry SIZE] [--every MS] [--ignore]
 *   defaults: 600M in entries of 1M, one every 5 ms
 * stdout, one line at the end:
 *   holdcache: added=N evicted=N held=SIZE asked=N freed=SIZE
 * Exit 0 when all entries went in. */
#include <pthread.h>
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
static struct entry *head, *tail;
static unsigned long long held, evicted, asked, freed_total;
static int ignore;

static size_t evict(enum memlimit_level level, size_t goal, void *ctx)
{
        (void)level;
        (void)ctx;
        size_t freed = 0;
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
        pthread_mutex_unlock(&lock);
        return freed;
}

int main(int argc, char **argv)
{
        unsigned long long total = 600ull << 20, size = 1ull << 20, every_ms = 5, added = 0;
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
        for (unsigned long long in = 0; in < total; in += size) {
                struct entry *e = malloc(size);
                if (!e) {
                        fprintf(stderr, "holdcache: out of memory after %llu entries\n", added);
                        return 1;
                }
                memset(e, 0xa5, size); /* touched: charged to the cgroup */
                e->next = NULL;
                e->size = size;
                pthread_mutex_lock(&lock);
                if (tail)
                        tail->next = e;
                else
                        head = e;
                tail = e;
                held += size;
                pthread_mutex_unlock(&lock);
                added++;
                if (every_ms)
                        nanosleep(&tick, NULL);
        }
        pthread_mutex_lock(&lock);
        printf("holdcache: added=%llu evicted=%llu held=%lluM asked=%llu freed=%lluM\n", added, evicted, held >> 20,
               asked, freed_total >> 20);
        pthread_mutex_unlock(&lock);
        memlimit_shutdown();
        return 0;
usage:
        fprintf(stderr, "usage: holdcache [--total SIZE] [--entry SIZE] [--every MS] [--ignore]\n");
        return 2;
}
