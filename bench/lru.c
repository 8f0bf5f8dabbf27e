/* lru: the workload of the governor's hit-rate benchmark (bench/lru.sh) -- a multi-threaded LRU cache in
 * front of a slow backend, the way a service author writes one: one hash table and one LRU list under
 * one mutex, --threads workers drawing keys from a skewed distribution over --keys keys, values of
 * 1-64 KiB (each key's size fixed by a hash: glibc's arenas, not mmap), a --backend-us sleep behind
 * every miss; the values a worker evicts to stay under its cap are recycled for the next inserts (a
 * small pool, below). Either a static cap (--cap SIZE: evict while the payload is above it, an operator's
 * choice) or none (--cap 0): then the cache registers with libmemlimit and gives back what memrun asks,
 * least recently used first, in slices so that workers get the lock between them (and free what they
 * evicted after dropping it). --adapt: the cache also keeps the size it was trimmed to as its cap
 * (workers evict on insert, reusing what they evicted), and once memrun has been quiet for
 * 200 ms grows the cap back by --regrow (1/64) a second: memrun has little to ask; by --regrow-far
 * (1/4) a second while its resident memory is under --far-pct (75%) of the soft limit it reads from
 * memlimit_limits() (a burst of other memory took that, and went): most of the budget back within a
 * second or two, the last quarter slowly, since what grows there is what memrun asks back when the
 * next burst comes (each byte of it trimmed and faulted in again). --room: the same,
 * but it grows the cap into the room under the soft limit it reads from memlimit_limits() (with no
 * limit known, as --adapt), no higher than where memrun's last ask wanted the process (see sizer):
 * it uses the budget, and moves memory back and forth with whatever else the program allocates.
 * The two patterns memlimit(3) describes.
 * --spike SIZE: every --spike-every seconds another thread allocates SIZE of request buffers (1 MiB
 * each, touched) over 200 ms and frees them a second later: memory that is not the cache's.
 * Runs --seconds; counts only the second half.
 * --trace: a line on stderr every 100 ms (payload, cap, resident memory, minor faults, trims so far):
 * how the cache moves with the asks and the spikes.
 * --fault-cost: no cache; prints what faulting in one fresh 4 KiB page of anonymous memory costs here
 * (64 MiB touched a page at a time, no huge pages, best of 3): the price a cache pays for every page
 * the kernel took back and an insert touches again.
 *
 * stdout, one line at the end:
 *   lru: requests=N hits=N hit_rate=F payload=SIZE payload_mean=SIZE trims=N trimmed=SIZE max_lock_wait_us=N minflt=N cpu_ms=N
 * (payload: at the end; payload_mean: the mean over the measured half, sampled every 10 ms; minflt and
 * cpu_ms: the process's minor page faults and CPU time, user and system, in the measured half)
 * Exit 0. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memlimit.h"

#define SLICE (256u * 1024)       /* a trim evicts this much per lock hold */

struct node {
        struct node *hnext;       /* hash chain */
        struct node *prev, *next; /* LRU: head is the most recent */
        uint32_t key;
        uint32_t size;            /* the value's bytes */
        uint32_t room;            /* the bytes behind data (>= size, a recycled value's): what it holds */
        unsigned char data[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node **table;
static uint32_t nbuckets;
static struct node *lru_head, *lru_tail;
static uint64_t payload, cap, trims, trimmed;
static int adapt, use_room;
static uint64_t adapt_cap, adapt_room, last_trim_ns, last_grow_ns;   /* --adapt: under the lock */
static uint64_t ask_ceiling = UINT64_MAX, ask_ceiling_ns;               /* --room: under the lock */
static uint32_t nkeys = 40000, backend_us = 100;
static double skew = 3.0, regrow = 1.0 / 64, regrow_far = 1.0 / 4;
static unsigned far_pct = 75;
static int adapt_far;                                                   /* --adapt: under the lock */
static volatile int measuring, stopping;
static uint64_t requests, hits, max_wait_ns;

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t mix(uint32_t x)
{
        x ^= x >> 16;
        x *= 0x7feb352d;
        x ^= x >> 15;
        x *= 0x846ca68b;
        return x ^ (x >> 16);
}

static uint32_t value_size(uint32_t key) { return 1024 + mix(key) % (63 * 1024); }

static void lru_unlink(struct node *n)
{
        if (n->prev)
                n->prev->next = n->next;
        else
                lru_head = n->next;
        if (n->next)
                n->next->prev = n->prev;
        else
                lru_tail = n->prev;
}

static void lru_push(struct node *n)
{
        n->prev = NULL;
        n->next = lru_head;
        if (lru_head)
                lru_head->prev = n;
        lru_head = n;
        if (!lru_tail)
                lru_tail = n;
}

/* Evict the least recently used entry onto *dead; the caller holds the lock and frees *dead after
 * dropping it (free() may wait for malloc's arena lock, which malloc_trim holds while it hands pages
 * back: not with every worker waiting behind the cache's lock). */
static uint32_t evict_one(struct node **dead)
{
        struct node *n = lru_tail;
        if (!n)
                return 0;
        lru_unlink(n);
        struct node **p = &table[n->key % nbuckets];
        while (*p != n)
                p = &(*p)->hnext;
        *p = n->hnext;
        uint32_t sz = n->room;
        payload -= sz;
        n->hnext = *dead;
        *dead = n;
        return sz;
}

/* Recycling, in every arm: the values the workers evict to stay under the cap wait in a small pool
 * (SPARE_MAX, at most 4 MiB) for the next inserts, which take the smallest one with room enough (at
 * most SPARE_SLACK more) before they malloc. That memory was in use a moment ago and is resident;
 * malloc would as likely hand out a hole malloc_trim gave back to the kernel, and the insert's first
 * touch would fault it in again: what a governed cache, asked again and again while a spike comes,
 * paid for most. An ask leaves the pool alone (its inserts need it most then): up to 4 MiB that no
 * payload counts and no ask gives back. Under the lock. */
#define SPARE_MAX 64
#define SPARE_SLACK 8192u
static struct node *spare[SPARE_MAX];
static unsigned nspare;

static struct node *spare_take(uint32_t sz)
{
        unsigned best = SPARE_MAX;
        for (unsigned i = 0; i < nspare; i++)
                if (spare[i]->room >= sz && spare[i]->room - sz <= SPARE_SLACK &&
                    (best == SPARE_MAX || spare[i]->room < spare[best]->room))
                        best = i;
        if (best == SPARE_MAX)
                return NULL;
        struct node *n = spare[best];
        spare[best] = spare[--nspare];
        return n;
}

/* The workers' evictions (*dead) into the pool; the spares it pushes out from the front (about the
 * oldest: spare_take moves the last into the slot it empties) are left in *dead for the caller to
 * free after the lock. */
static void spare_keep(struct node **dead)
{
        struct node *out = NULL;
        while (*dead) {
                struct node *n = *dead;
                *dead = n->hnext;
                if (nspare == SPARE_MAX) {
                        struct node *old = spare[0];
                        memmove(spare, spare + 1, (SPARE_MAX - 1) * sizeof *spare);
                        nspare--;
                        old->hnext = out;
                        out = old;
                }
                spare[nspare++] = n;
        }
        *dead = out;
}

static void free_dead(struct node *dead)
{
        while (dead) {
                struct node *next = dead->hnext;
                free(dead);
                dead = next;
        }
}

/* This process's resident memory (/proc/self/statm). */
static uint64_t resident(void)
{
        FILE *f = fopen("/proc/self/statm", "re");
        unsigned long long size, res = 0;
        if (f) {
                if (fscanf(f, "%llu %llu", &size, &res) != 2)
                        res = 0;
                fclose(f);
        }
        return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* memrun asks: give back goal bytes, a slice per lock hold so the workers are not stopped for long. */
static size_t trim(enum memlimit_level level, size_t goal, void *ctx)
{
        (void)level;
        (void)ctx;
        size_t freed = 0;
        if (use_room && goal) {
                /* Where memrun wants this process: what it holds now less what it asks for (0: no
                 * figure, nothing learnt). */
                uint64_t rss = resident();
                pthread_mutex_lock(&lock);
                ask_ceiling = rss > goal ? rss - goal : 0;
                ask_ceiling_ns = now_ns();
                pthread_mutex_unlock(&lock);
        }
        while (freed < goal) {
                size_t slice = 0;
                struct node *dead = NULL;
                pthread_mutex_lock(&lock);
                while (slice < SLICE && freed + slice < goal && lru_tail)
                        slice += evict_one(&dead);
                int empty = lru_tail == NULL;
                if (adapt) {
                        adapt_cap = payload;
                        last_trim_ns = now_ns();
                }
                pthread_mutex_unlock(&lock);
                free_dead(dead);
                freed += slice;
                if (!slice || empty)
                        break;
        }
        __atomic_add_fetch(&trims, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&trimmed, freed, __ATOMIC_RELAXED);
        return freed;
}

/* A skewed key: N * u^skew for a uniform u, so low keys are hot (skew 1: uniform). */
static uint32_t draw(uint64_t *rng)
{
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(*rng >> 11) / 9007199254740992.0;
        uint32_t k = (uint32_t)(pow(u, skew) * nkeys);
        return k < nkeys ? k : nkeys - 1;
}

static void *worker(void *arg)
{
        uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
        while (!stopping) {
                uint32_t key = draw(&rng);
                uint64_t t0 = now_ns();
                pthread_mutex_lock(&lock);
                uint64_t waited = now_ns() - t0;
                struct node *n = table[key % nbuckets];
                while (n && n->key != key)
                        n = n->hnext;
                if (n) {
                        lru_unlink(n);
                        lru_push(n);
                }
                pthread_mutex_unlock(&lock);
                if (measuring) {
                        __atomic_add_fetch(&requests, 1, __ATOMIC_RELAXED);
                        if (n)
                                __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED);
                        uint64_t m = __atomic_load_n(&max_wait_ns, __ATOMIC_RELAXED);
                        while (waited > m && !__atomic_compare_exchange_n(&max_wait_ns, &m, waited, 0,
                                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                                ;
                }
                if (n)
                        continue;
                /* Miss: the backend, then fill. */
                struct timespec ts = { 0, (long)backend_us * 1000 };
                nanosleep(&ts, NULL);
                uint32_t sz = value_size(key);
                pthread_mutex_lock(&lock);
                struct node *v = spare_take(sz);
                pthread_mutex_unlock(&lock);
                if (!v) {
                        v = malloc(sizeof *v + sz);
                        if (!v)
                                continue;
                        v->room = sz;
                }
                memset(v->data, (int)key, sz);
                v->key = key;
                v->size = sz;
                struct node *dead = NULL;
                pthread_mutex_lock(&lock);
                struct node *again = table[key % nbuckets];
                while (again && again->key != key)
                        again = again->hnext;
                if (again) {
                        pthread_mutex_unlock(&lock);
                        free(v);
                        continue;
                }
                v->hnext = table[key % nbuckets];
                table[key % nbuckets] = v;
                lru_push(v);
                payload += v->room;
                while (cap && payload > cap && lru_tail)
                        evict_one(&dead);
                if (adapt && adapt_cap) {
                        /* Quiet for 200 ms: grow by --regrow (1/64) a second, or with --room into
                         * the room the sizer saw; else hold the trimmed size. */
                        uint64_t now = now_ns();
                        if (now - last_trim_ns > 200000000 && now > last_grow_ns) {
                                if (adapt_room != UINT64_MAX) {
                                        adapt_cap += adapt_room;
                                        adapt_room = 0;
                                } else {
                                        double rate = adapt_far ? regrow_far : regrow;
                                        adapt_cap += (uint64_t)((double)adapt_cap * rate *
                                                                (double)(now - last_grow_ns) / 1e9);
                                }
                                last_grow_ns = now;
                        } else if (now - last_trim_ns <= 200000000) {
                                last_grow_ns = now;
                        }
                        while (payload > adapt_cap && lru_tail)
                                evict_one(&dead);
                }
                spare_keep(&dead);
                pthread_mutex_unlock(&lock);
                free_dead(dead);
        }
        return NULL;
}

/* The sizer (--adapt, --room), every 50 ms. --adapt: whether resident memory is under --far-pct of
 * the soft limit (then the cap grows back by --regrow-far). --room: the room between this process's
 * resident memory and 96% of the soft limit (memlimit_limits(), which memrun keeps up to date: the
 * governor holds at least 3% under it, the rest is what the kernel charges beside the heap), and no
 * higher than where memrun's last ask wanted the process (its resident memory then less the ask's
 * goal), a ceiling that rises by 1% of the soft limit a second while nothing is asked: the
 * governor's setpoint sits lower when the program allocates fast or answers slowly, and growing past
 * it only draws the next ask. The workers grow the cap by half of the room once memrun has been
 * quiet for 200 ms. */
static void *sizer(void *arg)
{
        (void)arg;
        while (!stopping) {
                struct timespec ts = { 0, 50000000 };
                nanosleep(&ts, NULL);
                size_t soft;
                memlimit_limits(NULL, &soft);
                uint64_t room = UINT64_MAX;
                uint64_t rss = soft != SIZE_MAX ? resident() : 0;
                pthread_mutex_lock(&lock);
                if (!use_room) {
                        adapt_far = rss && rss < (uint64_t)soft / 100 * far_pct;
                        pthread_mutex_unlock(&lock);
                        continue;
                }
                if (soft != SIZE_MAX) {
                        uint64_t aim = (uint64_t)soft / 100 * 96;
                        if (ask_ceiling != UINT64_MAX) {
                                double up = (double)soft / 100 * (double)(now_ns() - ask_ceiling_ns) / 1e9;
                                if (ask_ceiling + (uint64_t)up < aim)
                                        aim = ask_ceiling + (uint64_t)up;
                        }
                        room = rss && rss < aim ? (aim - rss) / 2 : 0;
                }
                adapt_room = room;
                pthread_mutex_unlock(&lock);
        }
        return NULL;
}

/* --trace: a line on stderr every 100 ms (time, payload, cap, resident, minor faults, trims, trimmed):
 * how the cache moves with the asks and the spikes. */
static void *tracer(void *arg)
{
        (void)arg;
        uint64_t t0 = now_ns();
        while (!stopping) {
                struct timespec ts = { 0, 100000000 };
                nanosleep(&ts, NULL);
                struct rusage ru;
                getrusage(RUSAGE_SELF, &ru);
                pthread_mutex_lock(&lock);
                uint64_t pl = payload, c = adapt ? adapt_cap : cap;
                pthread_mutex_unlock(&lock);
                fprintf(stderr, "lru: trace t=%.1f payload=%.1fM cap=%.1fM rss=%.1fM minflt=%ld trims=%llu trimmed=%.1fM\n",
                        (double)(now_ns() - t0) / 1e9, (double)pl / 1048576, (double)c / 1048576,
                        (double)resident() / 1048576, ru.ru_minflt,
                        (unsigned long long)__atomic_load_n(&trims, __ATOMIC_RELAXED),
                        (double)__atomic_load_n(&trimmed, __ATOMIC_RELAXED) / 1048576);
        }
        return NULL;
}

static uint64_t spike_bytes;
static unsigned spike_every = 4;

static void *spiker(void *arg)
{
        (void)arg;
        size_t n = (size_t)(spike_bytes >> 20);
        void **bufs = calloc(n, sizeof *bufs);
        if (!bufs)
                return NULL;
        while (!stopping) {
                sleep(spike_every - 1 > 0 ? spike_every - 1 : 1);
                for (size_t i = 0; i < n && !stopping; i++) {
                        bufs[i] = malloc(1u << 20);
                        if (bufs[i])
                                memset(bufs[i], 1, 1u << 20);
                        struct timespec ts = { 0, (long)(200000000 / n) };
                        nanosleep(&ts, NULL);
                }
                sleep(1);
                for (size_t i = 0; i < n; i++) {
                        free(bufs[i]);
                        bufs[i] = NULL;
                }
        }
        free(bufs);
        return NULL;
}

/* User and system CPU time in ms. */
static long long cpu_ms(const struct rusage *ru)
{
        return ((long long)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
               ((long long)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

static int size_arg(const char *s, uint64_t *ret)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || v < 0)
                return -1;
        switch (*end) {
        case 'K': v *= 1024; end++; break;
        case 'M': v *= 1048576; end++; break;
        case 'G': v *= 1073741824.0; end++; break;
        }
        if (*end)
                return -1;
        *ret = (uint64_t)v;
        return 0;
}

static int fault_cost(void)
{
        const size_t len = 64u << 20, page = 4096;
        double best = 0;
        for (int r = 0; r < 3; r++) {
                unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) {
                        perror("lru: mmap");
                        return 1;
                }
                (void)madvise(p, len, MADV_NOHUGEPAGE);
                uint64_t t0 = now_ns();
                for (size_t i = 0; i < len; i += page)
                        p[i] = 1;
                double us = (double)(now_ns() - t0) / 1e3 / (double)(len / page);
                if (r == 0 || us < best)
                        best = us;
                munmap(p, len);
        }
        printf("lru: fault_us=%.2f\n", best);
        return 0;
}

int main(int argc, char **argv)
{
        unsigned threads = 4, seconds = 20;
        int trace = 0;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                uint64_t x;
                if (!strcmp(a, "--fault-cost"))
                        return fault_cost();
                if (!strcmp(a, "--adapt")) {
                        adapt = 1;
                        continue;
                }
                if (!strcmp(a, "--trace")) {
                        trace = 1;
                        continue;
                }
                if (!strcmp(a, "--room")) {
                        adapt = use_room = 1;
                        continue;
                }
                if (!v)
                        goto usage;
                if (!strcmp(a, "--cap") && size_arg(v, &cap) == 0)
                        ;
                else if (!strcmp(a, "--spike") && size_arg(v, &spike_bytes) == 0)
                        ;
                else if (!strcmp(a, "--threads") && size_arg(v, &x) == 0 && x > 0 && x < 64)
                        threads = (unsigned)x;
                else if (!strcmp(a, "--seconds") && size_arg(v, &x) == 0 && x >= 2)
                        seconds = (unsigned)x;
                else if (!strcmp(a, "--keys") && size_arg(v, &x) == 0 && x > 0 && x < (1u << 30))
                        nkeys = (uint32_t)x;
                else if (!strcmp(a, "--backend-us") && size_arg(v, &x) == 0 && x < 1000000)
                        backend_us = (uint32_t)x;
                else if (!strcmp(a, "--spike-every") && size_arg(v, &x) == 0 && x >= 2)
                        spike_every = (unsigned)x;
                else if (!strcmp(a, "--skew") && (skew = strtod(v, NULL)) >= 1.0)
                        ;
                else if (!strcmp(a, "--regrow") && (regrow = strtod(v, NULL)) > 0 && regrow <= 10)
                        ;
                else if (!strcmp(a, "--far-pct") && size_arg(v, &x) == 0 && x <= 100)
                        far_pct = (unsigned)x;
                else if (!strcmp(a, "--regrow-far") && (regrow_far = strtod(v, NULL)) > 0 && regrow_far <= 10)
                        ;
                else
                        goto usage;
                i++;
        }
        nbuckets = nkeys / 2 + 1;
        table = calloc(nbuckets, sizeof *table);
        if (!table)
                return 1;
        if (!cap) {
                int r = memlimit_register_cache("lru", trim, NULL);
                if (r == 0)
                        r = memlimit_init(0);
                if (r == 0)
                        r = memlimit_start_thread();
                if (r < 0) {
                        fprintf(stderr, "lru: libmemlimit: %s\n", strerror(-r));
                        return 1;
                }
        }
        pthread_t tid[64], sp, sz, tr;
        adapt_room = UINT64_MAX;
        if (trace)
                pthread_create(&tr, NULL, tracer, NULL);
        if (adapt)
                pthread_create(&sz, NULL, sizer, NULL);
        for (unsigned i = 0; i < threads; i++)
                pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(i + 1));
        if (spike_bytes)
                pthread_create(&sp, NULL, spiker, NULL);
        sleep(seconds / 2);
        struct rusage ru0, ru1;
        getrusage(RUSAGE_SELF, &ru0);
        measuring = 1;
        /* The cache's mean payload over the measured half, sampled every 10 ms. */
        uint64_t t_end = now_ns() + (uint64_t)(seconds - seconds / 2) * 1000000000u, sum = 0, n = 0;
        while (now_ns() < t_end) {
                struct timespec ts = { 0, 10000000 };
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&lock);
                sum += payload;
                pthread_mutex_unlock(&lock);
                n++;
        }
        measuring = 0;
        getrusage(RUSAGE_SELF, &ru1);
        stopping = 1;
        for (unsigned i = 0; i < threads; i++)
                pthread_join(tid[i], NULL);
        if (spike_bytes)
                pthread_join(sp, NULL);
        if (adapt)
                pthread_join(sz, NULL);
        if (trace)
                pthread_join(tr, NULL);
        printf("lru: requests=%llu hits=%llu hit_rate=%.4f payload=%llu payload_mean=%llu trims=%llu trimmed=%llu "
               "max_lock_wait_us=%llu minflt=%ld cpu_ms=%lld\n",
               (unsigned long long)requests, (unsigned long long)hits,
               requests ? (double)hits / (double)requests : 0.0, (unsigned long long)payload,
               (unsigned long long)(n ? sum / n : 0),
               (unsigned long long)trims, (unsigned long long)trimmed, (unsigned long long)(max_wait_ns / 1000),
               ru1.ru_minflt - ru0.ru_minflt, cpu_ms(&ru1) - cpu_ms(&ru0));
        if (!cap)
                memlimit_shutdown();
        return 0;
usage:
        fprintf(stderr, "usage: lru --fault-cost | [--cap SIZE | --adapt | --room] [--trace] [--threads N] [--seconds N] [--keys N] [--backend-us N] "
                        "[--skew F] [--regrow F] [--regrow-far F] [--far-pct N] [--spike SIZE] [--spike-every SECONDS]\n");
        return 2;
}
