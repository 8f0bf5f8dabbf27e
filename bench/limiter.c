/* limiter: what libmemlimit costs a program, against baselines measured in the same run, interleaved
 * round by round. Prints markdown tables; bench/limiter.sh builds it and adds callgrind's counts.
 *
 *   limiter cases                      the hot-path case names, one a line (for the script)
 *   limiter count CASE N               N calls of CASE and nothing else (run under callgrind)
 *   limiter hot [-n CALLS] [-r ROUNDS] [-I CASE=IR]...
 *   limiter latency [-n SAMPLES] [-r ROUNDS] [-w WARMUP] [-g MIN_US:MAX_US]
 *
 * Hot path. Five cases, each a loop of CALLS calls split over ROUNDS rounds (order rotated every round):
 *   atomic         the baseline: a relaxed atomic load of an int defined here, inlined into the loop
 *   so:level       memlimit_level() in libmemlimit.so, called as a program linked with -lmemlimit calls it
 *                  (through the PLT)
 *   so:shedding    memlimit_shedding(), the same way
 *   a:level        memlimit_level() from libmemlimit.a, linked into this executable (a direct call)
 *   a:shedding     memlimit_shedding(), the same way
 * One executable holds both libraries: the script links a copy of libmemlimit.a whose public symbols are
 * renamed memlimit_* -> bench_static_memlimit_* (objcopy --redefine-syms; the machine code is the
 * archive's own), so the two copies do not clash. Each loop adds the returned values into a sum so
 * nothing can be optimized away; the loop itself costs the same in every case. -I passes callgrind's
 * instruction counts (IR for `count CASE N`, as "CASE=IR/N") to print next to the times.
 *
 * Level-to-callback latency. A fake memrun in this process (an abstract SOCK_SEQPACKET listener, named in
 * MEMRUN_LIMITER) accepts the library's connection, answers HELLO with WELCOME and then sends LEVEL
 * messages built as runner/control/lsrv.c builds them (memlimit_msg_init, seq, level, actions = TRIM, goal,
 * usage; send with MSG_DONTWAIT | MSG_NOSIGNAL). Levels alternate high/moderate so each is a change; the
 * registered cache callback is cheap and says it freed 4096 bytes, so neither the futile-skip rule nor
 * the CPU budget (default 50%) ever holds it back (RESULTs are checked: any flag is counted and shown).
 * Measured: CLOCK_MONOTONIC just before send() of the LEVEL to the first statement of the callback.
 * The server then waits for the RESULT (so each sample starts with the library idle) and sleeps a random
 * gap before the next LEVEL, so every LEVEL finds the receiving thread asleep, as memrun's rare levels do.
 *   raw            the baseline: one thread blocked in recv() on a SOCK_SEQPACKET socketpair, the other
 *                  sends a 64-byte message; time to recv() returning in the woken thread (which then
 *                  answers with 64 bytes, as the library answers with a RESULT)
 *   raw+epoll      the same, the receiver blocked in poll() on an epoll fd holding the socket (the wake-up
 *                  chain the library uses: memlimit_fd() is an epoll fd), then recv()
 *   lib:thread     memlimit_start_thread(): the library's own dispatcher thread
 *   lib:eventloop  a thread of this program polls memlimit_fd() (and a stop eventfd) and calls
 *                  memlimit_dispatch()
 * Each round runs a block of SAMPLES/ROUNDS levels of every case (order rotated); a library block is a
 * whole session: register the cache, memlimit_init(), accept, HELLO/WELCOME, WARMUP unrecorded levels,
 * the samples, memlimit_shutdown() (BYE).
 *
 * A report, not a test: no thresholds. Exit status 1 only if something does not work (a socket call
 * fails, the library does not attach, a callback does not run within 5 s).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "memlimit.h"
#include "memlimit_proto.h"

/* libmemlimit.a's public functions under the names the script gave them. */
enum memlimit_level bench_static_memlimit_level(void);
bool bench_static_memlimit_shedding(void);
int bench_static_memlimit_init(unsigned flags);

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...);
static void die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "limiter: ");
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

struct stats {
        double mean, min, max, p50, p90, p99;
};

/* Nearest-rank percentiles. */
static struct stats summarize(const double *v, size_t n)
{
        struct stats s = { 0 };
        double *sorted = malloc(n * sizeof *sorted), sum = 0;
        if (!sorted)
                die("%s", "out of memory");
        memcpy(sorted, v, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_double);
        for (size_t i = 0; i < n; i++)
                sum += sorted[i];
        s.mean = sum / (double)n;
        s.min = sorted[0];
        s.max = sorted[n - 1];
#define RANK(q) sorted[(size_t)((double)n * (q) + 0.999999) - 1]
        s.p50 = RANK(0.50);
        s.p90 = RANK(0.90);
        s.p99 = RANK(0.99);
#undef RANK
        free(sorted);
        return s;
}

/* --- hot path ------------------------------------------------------------------------------------ */
_Atomic int bench_word;
static volatile unsigned long sink;

/* External and noinline: callgrind finds them by name (--toggle-collect), gcc does not clone them. */
unsigned long bench_loop_atomic(unsigned long n);
unsigned long bench_loop_so_level(unsigned long n);
unsigned long bench_loop_so_shedding(unsigned long n);
unsigned long bench_loop_a_level(unsigned long n);
unsigned long bench_loop_a_shedding(unsigned long n);

__attribute__((noinline)) unsigned long bench_loop_atomic(unsigned long n)
{
        unsigned long s = 0;
        for (unsigned long i = 0; i < n; i++)
                s += (unsigned)atomic_load_explicit(&bench_word, memory_order_relaxed);
        return s;
}

__attribute__((noinline)) unsigned long bench_loop_so_level(unsigned long n)
{
        unsigned long s = 0;
        for (unsigned long i = 0; i < n; i++)
                s += (unsigned)memlimit_level();
        return s;
}

__attribute__((noinline)) unsigned long bench_loop_so_shedding(unsigned long n)
{
        unsigned long s = 0;
        for (unsigned long i = 0; i < n; i++)
                s += memlimit_shedding();
        return s;
}

__attribute__((noinline)) unsigned long bench_loop_a_level(unsigned long n)
{
        unsigned long s = 0;
        for (unsigned long i = 0; i < n; i++)
                s += (unsigned)bench_static_memlimit_level();
        return s;
}

__attribute__((noinline)) unsigned long bench_loop_a_shedding(unsigned long n)
{
        unsigned long s = 0;
        for (unsigned long i = 0; i < n; i++)
                s += bench_static_memlimit_shedding();
        return s;
}

#define NHOT 5
static const struct hot_case {
        const char *name, *label;
        unsigned long (*loop)(unsigned long);
} hot[NHOT] = {
        { "atomic", "relaxed atomic load (baseline)", bench_loop_atomic },
        { "so:level", "`memlimit_level()` via libmemlimit.so", bench_loop_so_level },
        { "so:shedding", "`memlimit_shedding()` via libmemlimit.so", bench_loop_so_shedding },
        { "a:level", "`memlimit_level()` via libmemlimit.a", bench_loop_a_level },
        { "a:shedding", "`memlimit_shedding()` via libmemlimit.a", bench_loop_a_shedding },
};

static int hot_find(const char *name)
{
        for (int i = 0; i < NHOT; i++)
                if (!strcmp(hot[i].name, name))
                        return i;
        return -1;
}

static unsigned long parse_ulong(const char *s)
{
        char *end;
        errno = 0;
        double d = strtod(s, &end);   /* accepts 1e8 */
        if (errno || end == s || *end || d < 0 || d > 1e15)
                die("bad number '%s'", s);
        return (unsigned long)d;
}

static void libs_init(void)
{
        /* As a program would: initialized, no memrun, no MEMLIMIT: levels stay normal. */
        unsetenv(MEMLIMIT_ENV_ENDPOINT);
        unsetenv("MEMLIMIT");
        if (memlimit_init(MEMLIMIT_F_NO_STANDALONE) < 0 || bench_static_memlimit_init(MEMLIMIT_F_NO_STANDALONE) < 0)
                die("%s", "memlimit_init failed");
        /* The first call through the PLT binds the symbol (lazy binding): not part of any measurement. */
        sink += (unsigned)memlimit_level() + memlimit_shedding() + (unsigned)bench_static_memlimit_level() +
                bench_static_memlimit_shedding();
}

static int cmd_count(int argc, char **argv)
{
        if (argc != 4)
                die("%s", "usage: limiter count CASE N");
        int c = hot_find(argv[2]);
        if (c < 0)
                die("unknown case '%s'", argv[2]);
        libs_init();
        sink += hot[c].loop(parse_ulong(argv[3]));
        return 0;
}

static int cmd_hot(int argc, char **argv)
{
        unsigned long calls = 100000000, rounds = 20;
        const char *ir[NHOT] = { 0 };

        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "-n") && i + 1 < argc)
                        calls = parse_ulong(argv[++i]);
                else if (!strcmp(argv[i], "-r") && i + 1 < argc)
                        rounds = parse_ulong(argv[++i]);
                else if (!strcmp(argv[i], "-I") && i + 1 < argc) {
                        char *eq = strchr(argv[++i], '=');
                        if (!eq)
                                die("bad -I '%s'", argv[i]);
                        *eq = '\0';
                        int c = hot_find(argv[i]);
                        if (c < 0)
                                die("unknown case '%s'", argv[i]);
                        ir[c] = eq + 1;
                } else
                        die("usage: limiter hot [-n CALLS] [-r ROUNDS] [-I CASE=IR]... (got '%s')", argv[i]);
        }
        if (rounds < 1 || calls < rounds)
                die("%s", "need CALLS >= ROUNDS >= 1");
        unsigned long per = calls / rounds;
        libs_init();

        double *ns[NHOT];
        for (int c = 0; c < NHOT; c++)
                if (!(ns[c] = calloc(rounds, sizeof(double))))
                        die("%s", "out of memory");
        /* One unrecorded round: page in the code, settle the clock frequency. */
        for (int c = 0; c < NHOT; c++)
                sink += hot[c].loop(per / 10 + 1);
        uint64_t t_start = now_ns();
        for (unsigned long r = 0; r < rounds; r++)
                for (int j = 0; j < NHOT; j++) {
                        int c = (int)((r + (unsigned long)j) % NHOT);
                        uint64_t t0 = now_ns();
                        sink += hot[c].loop(per);
                        ns[c][r] = (double)(now_ns() - t0) / (double)per;
                }
        double wall = (double)(now_ns() - t_start) / 1e9;

        struct stats st[NHOT];
        for (int c = 0; c < NHOT; c++)
                st[c] = summarize(ns[c], rounds);
        double ir0 = ir[0] ? strtod(ir[0], NULL) : 0;
        printf("| call | median (ns/call) | mean | min | max | median / baseline | median − baseline (ns) "
               "| instructions/call (callgrind) | − baseline |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int c = 0; c < NHOT; c++) {
                printf("| %s | %.3f | %.3f | %.3f | %.3f | ", hot[c].label, st[c].p50, st[c].mean, st[c].min,
                       st[c].max);
                if (c == 0)
                        printf("1.00x | — | ");
                else
                        printf("%.2fx | %+.3f | ", st[c].p50 / st[0].p50, st[c].p50 - st[0].p50);
                if (!ir[c])
                        printf("— | — |\n");
                else if (c == 0)
                        printf("%.2f | — |\n", ir0);
                else
                        printf("%.2f | %+.2f |\n", strtod(ir[c], NULL), strtod(ir[c], NULL) - ir0);
        }
        printf("\n%lu calls of each (%lu interleaved rounds of %lu, order rotated every round, after one "
               "unrecorded warm-up round) in %.1f s. Times include the loop (add, increment, compare, branch), "
               "which is the same in every case; per-round ns/call from CLOCK_MONOTONIC around each block.\n",
               per * rounds, rounds, per, wall);
        return 0;
}

/* --- latency: the fake memrun ---------------------------------------------------------------------- */
#define FREED 4096u
#define GOAL_BASE (UINT64_C(1) << 20)
#define WAIT_MS 5000

static _Atomic uint64_t cb_t1, cb_goal;
static _Atomic unsigned long cb_runs;

static size_t cache_fn(enum memlimit_level level, size_t goal, void *ctx)
{
        uint64_t t = now_ns();   /* the first thing the callback does */
        (void)level;
        (void)ctx;
        atomic_store(&cb_goal, goal);
        atomic_store(&cb_t1, t);
        atomic_fetch_add(&cb_runs, 1);
        return FREED;
}

static uint32_t rng = 0x9e3779b9u;
static unsigned gap_min_us = 200, gap_max_us = 700;

static void gap(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        unsigned us = gap_min_us + (gap_max_us > gap_min_us ? rng % (gap_max_us - gap_min_us + 1) : 0);
        struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int recv_within(int fd, struct memlimit_msg *m, int ms)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n;
        while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
                ;
        if (n <= 0)
                return -1;
        ssize_t len = recv(fd, m, sizeof *m, MSG_DONTWAIT | MSG_TRUNC);
        if (len <= 0 || memlimit_msg_check(m, (size_t)len) != 0)
                return -1;
        return m->type;
}

static void send_or_die(int fd, const struct memlimit_msg *m)
{
        ssize_t n;
        do
                n = send(fd, m, sizeof *m, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof *m)
                die("send: %s", n < 0 ? strerror(errno) : "short");
}

/* A LEVEL as runner/control/lsrv.c's lsrv_broadcast() builds it. */
static void level_msg(struct memlimit_msg *m, uint32_t seq, uint32_t level, uint32_t actions, uint64_t goal)
{
        memlimit_msg_init(m, MEMLIMIT_MSG_LEVEL);
        m->seq = seq;
        m->u.level.level = level;
        m->u.level.actions = actions;
        m->u.level.goal = goal;
        m->u.level.usage = UINT64_C(60) << 20;
        m->u.level.coalesced = 0;
}

enum kind { RAW, RAW_EPOLL, LIB_THREAD, LIB_LOOP, NKIND };
static const char *const kind_name[NKIND] = { "raw", "raw+epoll", "lib:thread", "lib:eventloop" };
static const char *const kind_label[NKIND] = {
        "raw SOCK_SEQPACKET send → recv() wake-up (baseline)",
        "raw send → poll(epoll fd) wake-up → recv()",
        "libmemlimit, `memlimit_start_thread()`",
        "libmemlimit, event loop: poll(`memlimit_fd()`) + `memlimit_dispatch()`",
};

static uint32_t seq;
static unsigned long result_flags_seen, result_bad;

/* --- raw baselines --- */
struct raw_rx {
        int fd;
        bool epoll;
        pthread_t t;
};
static _Atomic uint64_t raw_t1, raw_tag;

static void *raw_rx_main(void *arg)
{
        struct raw_rx *rx = arg;
        struct memlimit_msg m;
        int epfd = -1;

        if (rx->epoll) {
                struct epoll_event ev = { .events = EPOLLIN, .data.fd = rx->fd };
                epfd = epoll_create1(EPOLL_CLOEXEC);
                if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, rx->fd, &ev) < 0)
                        die("epoll: %s", strerror(errno));
        }
        for (;;) {
                ssize_t n;
                if (rx->epoll) {
                        struct pollfd p = { .fd = epfd, .events = POLLIN };
                        if (poll(&p, 1, -1) < 0) {
                                if (errno == EINTR)
                                        continue;
                                die("poll: %s", strerror(errno));
                        }
                        n = recv(rx->fd, &m, sizeof m, MSG_DONTWAIT);
                        if (n < 0 && errno == EAGAIN)
                                continue;
                } else
                        n = recv(rx->fd, &m, sizeof m, 0);
                uint64_t t = now_ns();
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                atomic_store(&raw_tag, m.seq);
                atomic_store(&raw_t1, t);
                struct memlimit_msg r;
                memlimit_msg_init(&r, MEMLIMIT_MSG_RESULT);
                r.seq = m.seq;
                r.u.result.action = MEMLIMIT_ACT_TRIM;
                r.u.result.callbacks = 1;
                r.u.result.freed = FREED;
                send_or_die(rx->fd, &r);
        }
        if (epfd >= 0)
                close(epfd);
        return NULL;
}

static void raw_block(bool epoll, double *out, unsigned n, unsigned warmup)
{
        int sv[2];
        struct raw_rx rx = { .epoll = epoll };

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair: %s", strerror(errno));
        rx.fd = sv[1];
        if (pthread_create(&rx.t, NULL, raw_rx_main, &rx) != 0)
                die("%s", "pthread_create failed");
        for (unsigned i = 0; i < warmup + n; i++) {
                struct memlimit_msg m;
                ++seq;
                level_msg(&m, seq, seq & 1 ? MEMLIMIT_PROTO_HIGH : MEMLIMIT_PROTO_MODERATE, MEMLIMIT_ACT_TRIM,
                          GOAL_BASE + seq);
                gap();
                uint64_t t0 = now_ns();
                send_or_die(sv[0], &m);
                if (recv_within(sv[0], &m, WAIT_MS) != MEMLIMIT_MSG_RESULT || m.seq != seq)
                        die("%s: no answer within %d ms", kind_name[epoll ? RAW_EPOLL : RAW], WAIT_MS);
                if (atomic_load(&raw_tag) != seq)
                        die("%s", "raw: receiver out of step");
                if (i >= warmup)
                        out[i - warmup] = (double)(atomic_load(&raw_t1) - t0) / 1e3;
        }
        close(sv[0]);   /* the receiver sees EOF */
        pthread_join(rx.t, NULL);
        close(sv[1]);
}

/* --- the library, attached to the fake memrun --- */
static int lfd = -1;
static char endpoint[108];

static void fake_listen(void)
{
        struct sockaddr_un a;
        socklen_t alen = 0;
        uint64_t rnd = now_ns();
        snprintf(endpoint, sizeof endpoint, "@memlimit-bench-%d-%016llx", (int)getpid(), (unsigned long long)rnd);
        if (memlimit_endpoint_addr(endpoint, &a, &alen) < 0)
                die("%s", "endpoint");
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, alen) < 0 || listen(lfd, 8) < 0)
                die("fake memrun: cannot listen on %s: %s", endpoint, strerror(errno));
        setenv(MEMLIMIT_ENV_ENDPOINT, endpoint, 1);
}

struct loop_thread {
        int stopfd;
        pthread_t t;
};

static void *loop_main(void *arg)
{
        struct loop_thread *lt = arg;
        int fd = memlimit_fd();
        if (fd < 0)
                die("memlimit_fd: %s", strerror(-fd));
        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = lt->stopfd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        die("poll: %s", strerror(errno));
                }
                if (p[1].revents)
                        break;
                if (p[0].revents) {
                        int r = memlimit_dispatch();
                        if (r < 0)
                                die("memlimit_dispatch: %s", strerror(-r));
                }
        }
        return NULL;
}

static void lib_block(enum kind k, double *out, unsigned n, unsigned warmup)
{
        struct memlimit_msg m;
        struct loop_thread lt = { .stopfd = -1 };
        int r;

        if ((r = memlimit_register_cache("bench", cache_fn, NULL)) < 0)
                die("memlimit_register_cache: %s", strerror(-r));
        if ((r = memlimit_init(0)) < 0)
                die("memlimit_init: %s", strerror(-r));
        if (memlimit_mode() != MEMLIMIT_MODE_MEMRUN)
                die("%s", "the library did not attach to the fake memrun");
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        if (poll(&p, 1, WAIT_MS) <= 0)
                die("%s", "fake memrun: no connection");
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
                die("accept: %s", strerror(errno));
        if (recv_within(cfd, &m, WAIT_MS) != MEMLIMIT_MSG_HELLO || !(m.u.hello.caps & MEMLIMIT_ACT_TRIM))
                die("%s", "fake memrun: no HELLO announcing trim");
        memlimit_msg_init(&m, MEMLIMIT_MSG_WELCOME);   /* as lsrv.c: no LEVEL yet, seq 0 */
        m.u.welcome.limit = UINT64_C(64) << 20;
        m.u.welcome.soft = UINT64_C(58) << 20;
        m.u.welcome.client_id = 1;
        send_or_die(cfd, &m);

        if (k == LIB_THREAD) {
                if ((r = memlimit_start_thread()) < 0)
                        die("memlimit_start_thread: %s", strerror(-r));
        } else {
                lt.stopfd = eventfd(0, EFD_CLOEXEC);
                if (lt.stopfd < 0 || pthread_create(&lt.t, NULL, loop_main, &lt) != 0)
                        die("%s", "cannot start the event-loop thread");
        }
        for (unsigned i = 0; i < warmup + n; i++) {
                ++seq;
                uint64_t goal = GOAL_BASE + seq;
                level_msg(&m, seq, seq & 1 ? MEMLIMIT_PROTO_HIGH : MEMLIMIT_PROTO_MODERATE, MEMLIMIT_ACT_TRIM, goal);
                gap();
                uint64_t t0 = now_ns();
                send_or_die(cfd, &m);
                if (recv_within(cfd, &m, WAIT_MS) != MEMLIMIT_MSG_RESULT)
                        die("%s: no RESULT within %d ms of LEVEL seq %u", kind_name[k], WAIT_MS, seq);
                if (m.seq != seq || m.u.result.action != MEMLIMIT_ACT_TRIM || m.u.result.freed != FREED)
                        result_bad++;
                if (m.flags)
                        result_flags_seen++;
                if (atomic_load(&cb_goal) != goal)
                        die("%s: the callback did not run for LEVEL seq %u", kind_name[k], seq);
                if (i >= warmup)
                        out[i - warmup] = (double)(atomic_load(&cb_t1) - t0) / 1e3;
        }
        if (k == LIB_LOOP) {
                uint64_t one = 1;
                if (write(lt.stopfd, &one, sizeof one) != (ssize_t)sizeof one)
                        die("%s", "eventfd write");
                pthread_join(lt.t, NULL);
                close(lt.stopfd);
        }
        memlimit_shutdown();
        (void)recv_within(cfd, &m, WAIT_MS);   /* its BYE */
        close(cfd);
}

static int cmd_latency(int argc, char **argv)
{
        unsigned long samples = 2000, rounds = 20, warmup = 20;

        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "-n") && i + 1 < argc)
                        samples = parse_ulong(argv[++i]);
                else if (!strcmp(argv[i], "-r") && i + 1 < argc)
                        rounds = parse_ulong(argv[++i]);
                else if (!strcmp(argv[i], "-w") && i + 1 < argc)
                        warmup = parse_ulong(argv[++i]);
                else if (!strcmp(argv[i], "-g") && i + 1 < argc) {
                        if (sscanf(argv[++i], "%u:%u", &gap_min_us, &gap_max_us) != 2 || gap_max_us < gap_min_us)
                                die("bad gap '%s' (MIN_US:MAX_US)", argv[i]);
                } else
                        die("usage: limiter latency [-n SAMPLES] [-r ROUNDS] [-w WARMUP] [-g MIN_US:MAX_US] (got '%s')",
                            argv[i]);
        }
        if (rounds < 1 || samples < rounds)
                die("%s", "need SAMPLES >= ROUNDS >= 1");
        unsigned per = (unsigned)(samples / rounds);
        unsetenv("MEMLIMIT");
        unsetenv("MEMLIMIT_BUDGET");
        unsetenv("MEMLIMIT_DEBUG");
        fake_listen();

        double *us[NKIND];
        for (int k = 0; k < NKIND; k++)
                if (!(us[k] = calloc((size_t)per * rounds, sizeof(double))))
                        die("%s", "out of memory");
        uint64_t t_start = now_ns();
        for (unsigned long r = 0; r < rounds; r++)
                for (int j = 0; j < NKIND; j++) {
                        enum kind k = (enum kind)((r + (unsigned long)j) % NKIND);
                        double *out = us[k] + r * per;
                        if (k == RAW || k == RAW_EPOLL)
                                raw_block(k == RAW_EPOLL, out, per, (unsigned)warmup);
                        else
                                lib_block(k, out, per, (unsigned)warmup);
                }
        double wall = (double)(now_ns() - t_start) / 1e9;
        size_t total = (size_t)per * rounds;

        struct stats st[NKIND];
        for (int k = 0; k < NKIND; k++)
                st[k] = summarize(us[k], total);
        printf("| path | p50 (µs) | p90 (µs) | p99 (µs) | mean (µs) | min (µs) | max (µs) |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < NKIND; k++)
                printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", kind_label[k], st[k].p50, st[k].p90,
                       st[k].p99, st[k].mean, st[k].min, st[k].max);
        printf("\n| ratio | p50 | p99 | p50 difference | p99 difference |\n");
        printf("|---|---:|---:|---:|---:|\n");
        static const int pairs[][2] = { { LIB_THREAD, RAW }, { LIB_LOOP, RAW }, { RAW_EPOLL, RAW },
                                        { LIB_THREAD, RAW_EPOLL }, { LIB_LOOP, RAW_EPOLL } };
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
                const struct stats *a = &st[pairs[i][0]], *b = &st[pairs[i][1]];
                printf("| %s / %s | %.2fx | %.2fx | %+.2f µs | %+.2f µs |\n", kind_name[pairs[i][0]],
                       kind_name[pairs[i][1]], a->p50 / b->p50, a->p99 / b->p99, a->p50 - b->p50, a->p99 - b->p99);
        }
        printf("\n%zu levels per path (%lu interleaved rounds of %u, order rotated every round, +%lu unrecorded "
               "warm-up levels per block) in %.1f s; a random %u–%u µs idle gap before every level; "
               "%lu callbacks ran; RESULTs with a flag (futile, skipped): %lu, malformed or mismatched: %lu.\n",
               total, rounds, per, warmup, wall, gap_min_us, gap_max_us, atomic_load(&cb_runs), result_flags_seen,
               result_bad);
        close(lfd);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 2 && !strcmp(argv[1], "cases")) {
                for (int i = 0; i < NHOT; i++)
                        printf("%s\n", hot[i].name);
                return 0;
        }
        if (argc >= 2 && !strcmp(argv[1], "count"))
                return cmd_count(argc, argv);
        if (argc >= 2 && !strcmp(argv[1], "hot"))
                return cmd_hot(argc, argv);
        if (argc >= 2 && !strcmp(argv[1], "latency"))
                return cmd_latency(argc, argv);
        fprintf(stderr, "usage: limiter cases | count CASE N | hot [...] | latency [...]\n");
        return 2;
}
