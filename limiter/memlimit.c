/* memlimit: libmemlimit's state and public API: init and mode choice, registrations, the one pollable
 * fd (an epoll set holding the memrun socket or the standalone timer, plus a wake-up eventfd),
 * dispatch, the optional thread, fork handling and shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "memlimit_int.h"

#define ML_API __attribute__((visibility("default")))
#define DISPATCH_ROUNDS 4          /* level updates handled per memlimit_dispatch() call at most */

struct ml_state memlimit__g = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .reg_lock = PTHREAD_MUTEX_INITIALIZER,
        .epfd = -1, .kickfd = -1, .sockfd = -1, .timerfd = -1,
        .shed_level = MEMLIMIT_LEVEL_MAX,
        .futile_level = -1,
        .limit_hard = UINT64_MAX, .limit_soft = UINT64_MAX,
        .collectors[MEMLIMIT_MAX_COLLECTORS] = { .name = "malloc_trim" },
};

static bool debug_on;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static __thread bool in_dispatch;

void memlimit__debug(const char *fmt, ...)
{
        char buf[256];
        va_list ap;

        if (!debug_on)
                return;
        int k = snprintf(buf, sizeof buf, "memlimit[%d]: ", (int)getpid());
        if (k < 0 || (size_t)k >= sizeof buf)
                return;
        va_start(ap, fmt);
        int m = vsnprintf(buf + k, sizeof buf - (size_t)k - 1, fmt, ap);
        va_end(ap);
        if (m < 0)
                return;
        size_t len = strlen(buf);
        buf[len++] = '\n';
        ssize_t w = write(STDERR_FILENO, buf, len);
        (void)w;
}

uint64_t memlimit__now_ns(clockid_t clk)
{
        struct timespec ts;
        if (clock_gettime(clk, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

static int epoll_add(int epfd, int fd)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int timer_arm(int fd, uint64_t first_ns, uint64_t period_ns)
{
        struct itimerspec its = {
                .it_value = { (time_t)(first_ns / 1000000000u), (long)(first_ns % 1000000000u) },
                .it_interval = { (time_t)(period_ns / 1000000000u), (long)(period_ns % 1000000000u) },
        };
        return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

/* Standalone: a timer in the epoll set, first sample at once. Called with the lock held. */
/* The limits in force; true when they changed (the limits handlers are then due). */
static bool store_limits(uint64_t hard, uint64_t soft)
{
        struct ml_state *g = &memlimit__g;
        bool changed = atomic_load(&g->limit_hard) != hard || atomic_load(&g->limit_soft) != soft;
        atomic_store(&g->limit_hard, hard);
        atomic_store(&g->limit_soft, soft);
        return changed;
}

static size_t as_size(uint64_t v)
{
        return v == UINT64_MAX || v > SIZE_MAX ? SIZE_MAX : (size_t)v;
}

/* Outside every lock, like every callback. */
static void run_limits_handlers(void)
{
        struct ml_state *g = &memlimit__g;
        size_t hard = as_size(atomic_load(&g->limit_hard)), soft = as_size(atomic_load(&g->limit_soft));
        unsigned n = atomic_load_explicit(&g->n_limits_handlers, memory_order_acquire);
        for (unsigned i = 0; i < n; i++)
                g->limits_handlers[i].fn.limits(hard, soft, g->limits_handlers[i].ctx);
}

ML_API void memlimit_limits(size_t *ret_hard, size_t *ret_soft)
{
        if (ret_hard)
                *ret_hard = as_size(atomic_load(&memlimit__g.limit_hard));
        if (ret_soft)
                *ret_soft = as_size(atomic_load(&memlimit__g.limit_soft));
}

static int standalone_start_locked(uint64_t soft)
{
        struct ml_state *g = &memlimit__g;
        int r;

        if (g->timerfd < 0) {
                g->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
                if (g->timerfd < 0)
                        return -errno;
                r = epoll_add(g->epfd, g->timerfd);
                if (r < 0) {
                        close_fd(&g->timerfd);
                        return r;
                }
        }
        memlimit__standalone_init(&g->sa, soft, (enum memlimit_level)atomic_load(&g->level));
        g->timer_period_ns = UINT64_C(100000000);
        r = timer_arm(g->timerfd, 1000000, g->timer_period_ns);
        if (r < 0)
                return r;
        atomic_store(&g->mode, MEMLIMIT_MODE_STANDALONE);
        (void)store_limits(UINT64_MAX, soft);
        memlimit__debug("standalone: soft limit %llu bytes", (unsigned long long)soft);
        return 0;
}

static void disconnect_locked(void)
{
        struct ml_state *g = &memlimit__g;
        if (g->sockfd < 0)
                return;
        (void)epoll_ctl(g->epfd, EPOLL_CTL_DEL, g->sockfd, NULL);
        close_fd(&g->sockfd);
}

static void close_all_locked(void)
{
        struct ml_state *g = &memlimit__g;
        disconnect_locked();
        close_fd(&g->timerfd);
        close_fd(&g->kickfd);
        close_fd(&g->epfd);
}

static void kick(void)
{
        uint64_t one = 1;
        if (memlimit__g.kickfd >= 0) {
                ssize_t w = write(memlimit__g.kickfd, &one, sizeof one);
                (void)w;
        }
}

/* --- fork ----------------------------------------------------------------------------------------
 * Threads and connections do not survive fork(): the child must attach on its own (memrun counts
 * processes by connection) and must not read its parent's socket, timer or wake-up counter, which it
 * shares. The child handler runs where only async-signal-safe work is allowed, so it does system calls
 * only: it closes the shared socket and puts fresh epoll, eventfd and timerfd objects under the same
 * descriptor numbers (dup3), so memlimit_fd() keeps its value, and leaves the wake-up counter at 1 so
 * an event loop polling that fd calls memlimit_dispatch() at once, which connects again (HELLO FORKED).
 * A dispatcher thread is not restarted there (pthread_create is not async-signal-safe): the next call
 * of any memlimit_* function other than memlimit_level()/memlimit_shedding()/memlimit_mode() starts
 * it again; pre-fork servers in thread mode call memlimit_init() in each child. */
static void replace_fd(int *fd, int fresh)
{
        if (fresh < 0)
                return;
        if (*fd < 0)
                *fd = fresh;
        else if (dup3(fresh, *fd, O_CLOEXEC) >= 0)
                close(fresh);
        else
                close(fresh);
}

static void atfork_prepare(void)
{
        pthread_mutex_lock(&memlimit__g.reg_lock);
        pthread_mutex_lock(&memlimit__g.lock);
}

static void atfork_parent(void)
{
        pthread_mutex_unlock(&memlimit__g.lock);
        pthread_mutex_unlock(&memlimit__g.reg_lock);
}

static void atfork_child(void)
{
        struct ml_state *g = &memlimit__g;

        atomic_fetch_add(&g->gen, 1);
        atomic_store(&g->dispatching, false);
        g->thread_running = false;
        atomic_store(&g->thread_stop, false);
        if (g->inited) {
                if (g->sockfd >= 0)
                        close_fd(&g->sockfd);
                replace_fd(&g->epfd, epoll_create1(EPOLL_CLOEXEC));
                replace_fd(&g->kickfd, eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK));
                if (g->epfd >= 0 && g->kickfd >= 0)
                        (void)epoll_add(g->epfd, g->kickfd);
                if (g->timerfd >= 0) {
                        replace_fd(&g->timerfd, timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
                        (void)timer_arm(g->timerfd, 1000000, g->timer_period_ns);
                        if (g->epfd >= 0)
                                (void)epoll_add(g->epfd, g->timerfd);
                }
                if (atomic_load(&g->mode) == MEMLIMIT_MODE_MEMRUN)
                        atomic_store(&g->need_reattach, true);
        }
        pthread_mutex_unlock(&g->lock);
        pthread_mutex_unlock(&g->reg_lock);
}

static void register_atfork(void)
{
        (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Called with the lock held: the first dispatch in a forked child attaches again. */
static void reattach_locked(void)
{
        struct ml_state *g = &memlimit__g;
        if (!atomic_exchange(&g->need_reattach, false))
                return;
        const char *ep = getenv(MEMLIMIT_ENV_ENDPOINT);
        if (!ep || memlimit__connect(ep, true, g->flags) < 0)
                atomic_store(&g->mode, MEMLIMIT_MODE_NONE);
}

static int thread_start_locked(void);

static void restart_thread_if_lost(void)
{
        struct ml_state *g = &memlimit__g;
        pthread_mutex_lock(&g->lock);
        if (g->inited && g->thread_wanted && !g->thread_running)
                (void)thread_start_locked();
        pthread_mutex_unlock(&g->lock);
}

/* --- init and registration ------------------------------------------------------------------------ */
static unsigned budget_pct(unsigned flags)
{
        unsigned pct = (flags >> 8) & 0x7fu;
        const char *e = getenv("MEMLIMIT_BUDGET");
        if (pct == 0 && e && *e) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(e, &end, 10);
                if (!errno && end != e && (*end == '\0' || (*end == '%' && end[1] == '\0')) && v >= 1 && v <= 100)
                        pct = (unsigned)v;
                else
                        memlimit__debug("MEMLIMIT_BUDGET=%s ignored: want 1..100", e);
        }
        return pct ? (pct > 100 ? 100 : pct) : 50;
}

ML_API int memlimit_init(unsigned flags)
{
        struct ml_state *g = &memlimit__g;
        int r;

        (void)pthread_once(&atfork_once, register_atfork);
        pthread_mutex_lock(&g->lock);
        if (g->inited) {
                pthread_mutex_unlock(&g->lock);
                restart_thread_if_lost();
                return 0;
        }
        const char *d = getenv("MEMLIMIT_DEBUG");
        debug_on = d && *d && strcmp(d, "0") != 0;
        memlimit__heap_detect(); /* here, not on the release path: dlsym may allocate */
        g->flags = flags;
        memlimit__budget_init(&g->budget, budget_pct(flags), memlimit__now_ns(CLOCK_MONOTONIC));
        g->epfd = epoll_create1(EPOLL_CLOEXEC);
        g->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (g->epfd < 0 || g->kickfd < 0) {
                r = -errno;
                goto fail;
        }
        r = epoll_add(g->epfd, g->kickfd);
        if (r < 0)
                goto fail;

        const char *ep = getenv(MEMLIMIT_ENV_ENDPOINT), *lim = getenv("MEMLIMIT");
        bool want_sa = !(flags & MEMLIMIT_F_NO_STANDALONE) && lim && *lim;
        r = 0;
        if (ep && *ep) {
                r = memlimit__connect(ep, false, flags);
                if (r == 0)
                        atomic_store(&g->mode, MEMLIMIT_MODE_MEMRUN);
        }
        if (atomic_load(&g->mode) != MEMLIMIT_MODE_MEMRUN && want_sa) {
                uint64_t soft;
                int q = memlimit__size_parse(lim, 0, &soft);
                if (q < 0) {
                        memlimit__debug("MEMLIMIT=%s: not a size", lim);
                        r = q;
                        goto fail;
                }
                /* 0 and "max" mean no limit: nothing to hold */
                r = soft && soft != UINT64_MAX ? standalone_start_locked(soft) : 0;
        }
        if (r < 0)
                goto fail;
        memlimit__debug("initialized: %s, budget %u%%",
                        atomic_load(&g->mode) == MEMLIMIT_MODE_MEMRUN       ? "attached to memrun"
                        : atomic_load(&g->mode) == MEMLIMIT_MODE_STANDALONE ? "standalone"
                                                                            : "no memrun, no MEMLIMIT: idle",
                        g->budget.pct);
        g->inited = true;
        bool standalone = atomic_load(&g->mode) == MEMLIMIT_MODE_STANDALONE;
        pthread_mutex_unlock(&g->lock);
        if (standalone)
                run_limits_handlers();
        return 0;
fail:
        close_all_locked();
        atomic_store(&g->mode, MEMLIMIT_MODE_NONE);
        pthread_mutex_unlock(&g->lock);
        return r;
}

ML_API int memlimit_set_limit(size_t soft_bytes)
{
        struct ml_state *g = &memlimit__g;
        bool changed = false;
        int r = 0;

        pthread_mutex_lock(&g->lock);
        if (!g->inited)
                r = -ENOTCONN;
        else if (atomic_load(&g->mode) == MEMLIMIT_MODE_MEMRUN)
                r = -EBUSY;
        else if (soft_bytes == 0) {
                if (g->timerfd >= 0) {
                        (void)epoll_ctl(g->epfd, EPOLL_CTL_DEL, g->timerfd, NULL);
                        close_fd(&g->timerfd);
                }
                atomic_store(&g->mode, MEMLIMIT_MODE_NONE);
                changed = store_limits(UINT64_MAX, UINT64_MAX);
        } else {
                uint64_t before = atomic_load(&g->limit_soft);
                r = standalone_start_locked(soft_bytes);
                changed = r == 0 && before != soft_bytes;
        }
        pthread_mutex_unlock(&g->lock);
        if (changed)
                run_limits_handlers();
        return r;
}

static int add_callback(struct ml_callback *arr, _Atomic unsigned *n, unsigned max, const char *name,
                        memlimit_fn fn, void *ctx)
{
        struct ml_state *g = &memlimit__g;
        int r = 0;

        if (!fn)
                return -EINVAL;
        pthread_mutex_lock(&g->reg_lock);
        unsigned k = atomic_load_explicit(n, memory_order_relaxed);
        if (k >= max)
                r = -ENOSPC;
        else {
                struct ml_callback *c = &arr[k];
                *c = (struct ml_callback){ .fn = fn, .ctx = ctx };
                snprintf(c->name, sizeof c->name, "%s", name ? name : "?");
                /* The dispatcher reads [0, n) without the lock: publish the entry before the count. */
                atomic_store_explicit(n, k + 1, memory_order_release);
        }
        pthread_mutex_unlock(&g->reg_lock);
        restart_thread_if_lost();
        return r;
}

ML_API int memlimit_register_cache(const char *name, memlimit_fn fn, void *ctx)
{
        return add_callback(memlimit__g.caches, &memlimit__g.n_caches, MEMLIMIT_MAX_CACHES, name, fn, ctx);
}

ML_API int memlimit_register_collector(const char *name, memlimit_fn fn, void *ctx)
{
        return add_callback(memlimit__g.collectors, &memlimit__g.n_collectors, MEMLIMIT_MAX_COLLECTORS, name, fn, ctx);
}

/* Append h to a fixed handler table (readers walk it without the lock, up to *n). */
static int add_handler(struct ml_handler *arr, _Atomic unsigned *n, struct ml_handler h)
{
        struct ml_state *g = &memlimit__g;
        int r = 0;

        pthread_mutex_lock(&g->reg_lock);
        unsigned k = atomic_load_explicit(n, memory_order_relaxed);
        if (k >= MEMLIMIT_MAX_LEVEL_HANDLERS)
                r = -ENOSPC;
        else {
                arr[k] = h;
                atomic_store_explicit(n, k + 1, memory_order_release);
        }
        pthread_mutex_unlock(&g->reg_lock);
        return r;
}

ML_API int memlimit_on_level(memlimit_level_fn fn, void *ctx)
{
        if (!fn)
                return -EINVAL;
        int r = add_handler(memlimit__g.handlers, &memlimit__g.n_handlers,
                            (struct ml_handler){ .fn.level = fn, .ctx = ctx });
        restart_thread_if_lost();
        return r;
}

ML_API int memlimit_on_limits(memlimit_limits_fn fn, void *ctx)
{
        if (!fn)
                return -EINVAL;
        return add_handler(memlimit__g.limits_handlers, &memlimit__g.n_limits_handlers,
                           (struct ml_handler){ .fn.limits = fn, .ctx = ctx });
}

/* --- dispatch ------------------------------------------------------------------------------------- */
struct ml_work {
        bool have;
        bool reply;               /* a LEVEL from memrun: answer with RESULTs */
        enum memlimit_level level;
        uint32_t actions, seq;    /* what to run and answer (SHED too, answered as such) */
        uint64_t goal;
        bool shed;                /* the shedding state to apply (the newest message's) */
        bool limits_changed;      /* a WELCOME brought other limits: the limits handlers are due */
};

static void note_level(struct ml_work *w, uint32_t level, uint32_t actions, uint64_t goal, uint32_t seq, bool reply)
{
        /* The newest state (level, shedding) wins. An ask (trim/collect) read in the same round and
         * overtaken by a LEVEL that asks nothing is still answered, under its own seq: memrun waits for
         * that answer before it asks this process again. */
        const uint32_t ask = MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT;
        if (w->have && w->reply && reply && !(actions & ask) && (w->actions & ask)) {
                w->level = (enum memlimit_level)level;
                w->shed = (actions & MEMLIMIT_ACT_SHED) != 0;
                return;
        }
        *w = (struct ml_work){ .have = true, .reply = reply, .level = (enum memlimit_level)level,
                               .actions = actions, .goal = goal, .seq = seq,
                               .shed = (actions & MEMLIMIT_ACT_SHED) != 0, .limits_changed = w->limits_changed };
}

/* memrun went away or said BYE: back to normal, nobody to answer. */
static void lost_memrun_locked(struct ml_work *w, const char *why)
{
        memlimit__debug("memrun connection closed: %s", why);
        disconnect_locked();
        atomic_store(&memlimit__g.mode, MEMLIMIT_MODE_NONE);
        note_level(w, MEMLIMIT_OK, 0, 0, 0, false);
}

static void receive_locked(struct ml_work *w)
{
        struct ml_state *g = &memlimit__g;

        for (unsigned n = 0; g->sockfd >= 0 && n < 64; n++) {
                struct memlimit_msg m;
                ssize_t len = recv(g->sockfd, &m, sizeof m, MSG_DONTWAIT | MSG_TRUNC);
                if (len < 0) {
                        /* ECONNRESET comes once when memrun closed with our RESULTs unread; its BYE follows. */
                        if (errno == EINTR || errno == ECONNRESET)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                lost_memrun_locked(w, strerror(errno));
                        return;
                }
                if (len == 0) {
                        lost_memrun_locked(w, "end of file");
                        return;
                }
                int r = memlimit_msg_check(&m, (size_t)len);
                if (r == -EPROTO && m.type == MEMLIMIT_MSG_BYE) {
                        lost_memrun_locked(w, "memrun speaks another protocol version");
                        return;
                }
                if (r < 0) {
                        memlimit__debug("dropped a malformed message from memrun (%zd bytes)", len);
                        continue;
                }
                switch (m.type) {
                case MEMLIMIT_MSG_WELCOME:
                        g->client_id = m.u.welcome.client_id;
                        /* the first one, and again whenever memrun's limits change (then seq is 0) */
                        w->limits_changed |= store_limits(m.u.welcome.limit, m.u.welcome.soft);
                        memlimit__debug("memrun welcomes client %u at level %s", g->client_id,
                                        memlimit_proto_level_name(m.u.welcome.level));
                        /* A late attacher takes the current level and shedding state; the trims were
                         * asked of the processes attached then, and memrun repeats them while usage grows. */
                        if (m.seq != 0)
                                note_level(w, m.u.welcome.level, m.u.welcome.actions & MEMLIMIT_ACT_SHED,
                                           m.u.welcome.goal, m.seq, false);
                        break;
                case MEMLIMIT_MSG_LEVEL:
                        note_level(w, m.u.level.level, m.u.level.actions, m.u.level.goal, m.seq, true);
                        break;
                case MEMLIMIT_MSG_BYE:
                        lost_memrun_locked(w, memlimit_bye_reason_name(m.u.bye.reason));
                        return;
                default:
                        memlimit__debug("dropped a %s from memrun", memlimit_msg_type_name(m.type));
                        break;
                }
        }
}

static void standalone_tick_locked(struct ml_work *w)
{
        struct ml_state *g = &memlimit__g;
        uint64_t expirations, usage;

        if (g->timerfd < 0 || read(g->timerfd, &expirations, sizeof expirations) != (ssize_t)sizeof expirations)
                return;
        if (atomic_load(&g->mode) != MEMLIMIT_MODE_STANDALONE || memlimit__memory_source(&usage) < 0)
                return;
        enum memlimit_level old = g->sa.level, level;
        uint32_t actions;
        uint64_t goal, now = memlimit__now_ns(CLOCK_MONOTONIC);
        memlimit__standalone_step(&g->sa, usage, now, &level, &actions, &goal);
        if (level != old || actions)
                note_level(w, level, actions, goal, 0, false);
        uint64_t period = memlimit__standalone_period_ns(&g->sa, usage);
        if (period != g->timer_period_ns) {
                g->timer_period_ns = period;
                (void)timer_arm(g->timerfd, period, period);
        }
}

/* One dispatcher at a time; *ret_busy tells the thread another one is at work. */
static int dispatch(bool *ret_busy)
{
        struct ml_state *g = &memlimit__g;
        bool expected = false;
        int handled = 0;

        *ret_busy = false;
        if (in_dispatch)
                return 0;       /* a callback called memlimit_dispatch() */
        if (!atomic_compare_exchange_strong(&g->dispatching, &expected, true)) {
                *ret_busy = true;
                return 0;
        }
        in_dispatch = true;
        for (int round = 0; round < DISPATCH_ROUNDS; round++) {
                struct ml_work w = {};
                uint64_t drained;

                pthread_mutex_lock(&g->lock);
                if (!g->inited) {
                        pthread_mutex_unlock(&g->lock);
                        if (round == 0)
                                handled = -ENOTCONN;
                        break;
                }
                reattach_locked();
                if (g->kickfd >= 0 && read(g->kickfd, &drained, sizeof drained) < 0)
                        drained = 0;
                receive_locked(&w);
                standalone_tick_locked(&w);
                unsigned gen = atomic_load(&g->gen);
                pthread_mutex_unlock(&g->lock);
                if (w.limits_changed)
                        run_limits_handlers();
                if (!w.have) {
                        if (w.limits_changed)
                                continue;
                        break;
                }

                struct ml_result res[3];
                memlimit__apply_level(w.level, w.shed ? MEMLIMIT_ACT_SHED : 0);
                unsigned n = memlimit__run_actions(w.level, w.actions, w.goal, res);
                handled++;
                if (!w.reply) {
                        if (w.actions && atomic_load(&g->mode) == MEMLIMIT_MODE_STANDALONE) {
                                uint64_t freed = 0, usec = 0;
                                bool deferred = false;
                                for (unsigned i = 0; i < n; i++) {
                                        freed += res[i].freed;
                                        usec += res[i].usec;
                                        deferred = deferred || (res[i].flags & MEMLIMIT_RESULT_SKIPPED_BUDGET);
                                }
                                pthread_mutex_lock(&g->lock);
                                memlimit__standalone_reply(&g->sa, w.goal, freed, deferred, usec);
                                pthread_mutex_unlock(&g->lock);
                        }
                        continue;
                }
                pthread_mutex_lock(&g->lock);
                /* After a fork or shutdown inside a callback, the connection is not ours to answer on. */
                if (gen == atomic_load(&g->gen))
                        for (unsigned i = 0; i < n; i++)
                                memlimit__send_result(w.seq, &res[i]);
                pthread_mutex_unlock(&g->lock);
        }
        in_dispatch = false;
        atomic_store(&g->dispatching, false);
        return handled;
}

ML_API int memlimit_dispatch(void)
{
        bool busy;
        return dispatch(&busy);
}

ML_API int memlimit_fd(void)
{
        struct ml_state *g = &memlimit__g;
        int fd;

        pthread_mutex_lock(&g->lock);
        fd = g->inited ? g->epfd : -ENOTCONN;
        pthread_mutex_unlock(&g->lock);
        restart_thread_if_lost();
        return fd;
}

/* --- thread --------------------------------------------------------------------------------------- */
static void *thread_main(void *arg)
{
        struct ml_state *g = &memlimit__g;
        int epfd = (int)(intptr_t)arg;

        while (!atomic_load(&g->thread_stop)) {
                struct pollfd p = { .fd = epfd, .events = POLLIN };
                int n = poll(&p, 1, -1);
                if (n < 0 && errno != EINTR)
                        break;
                if (atomic_load(&g->thread_stop))
                        break;
                bool busy;
                if (dispatch(&busy) < 0)
                        break;
                if (busy) {
                        /* The program dispatches too: let it finish rather than spin on a ready fd. */
                        struct timespec ts = { 0, 1000000 };
                        nanosleep(&ts, NULL);
                }
        }
        return NULL;
}

static int thread_start_locked(void)
{
        struct ml_state *g = &memlimit__g;
        pthread_attr_t attr;
        sigset_t all, old;
        int r;

        if (g->thread_running)
                return 0;
        if (pthread_attr_init(&attr) != 0)
                return -ENOMEM;
        (void)pthread_attr_setstacksize(&attr, 256 * 1024);
        /* The program's signals belong to its own threads. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        atomic_store(&g->thread_stop, false);
        r = -pthread_create(&g->thread, &attr, thread_main, (void *)(intptr_t)g->epfd);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (r == 0) {
                g->thread_running = true;
                memlimit__debug("dispatcher thread started");
        }
        return r;
}

ML_API int memlimit_start_thread(void)
{
        struct ml_state *g = &memlimit__g;
        int r;

        pthread_mutex_lock(&g->lock);
        if (!g->inited)
                r = -ENOTCONN;
        else {
                g->thread_wanted = true;
                r = thread_start_locked();
        }
        pthread_mutex_unlock(&g->lock);
        return r;
}

/* --- lock-free queries ----------------------------------------------------------------------------- */
ML_API enum memlimit_level memlimit_level(void)
{
        return (enum memlimit_level)atomic_load_explicit(&memlimit__g.level, memory_order_relaxed);
}

ML_API bool memlimit_shedding(void)
{
        return atomic_load_explicit(&memlimit__g.shedding, memory_order_acquire);
}

ML_API enum memlimit_mode memlimit_mode(void)
{
        return (enum memlimit_mode)atomic_load_explicit(&memlimit__g.mode, memory_order_relaxed);
}

/* --- shutdown ------------------------------------------------------------------------------------- */
ML_API void memlimit_shutdown(void)
{
        struct ml_state *g = &memlimit__g;
        bool join;
        pthread_t t;

        pthread_mutex_lock(&g->lock);
        if (!g->inited) {
                pthread_mutex_unlock(&g->lock);
                return;
        }
        g->thread_wanted = false;
        join = g->thread_running;
        t = g->thread;
        g->thread_running = false;
        atomic_store(&g->thread_stop, true);
        kick();
        pthread_mutex_unlock(&g->lock);
        if (join) {
                if (pthread_equal(t, pthread_self()))
                        pthread_detach(t);
                else
                        pthread_join(t, NULL);
        }
        /* Wait for a dispatch running in another thread (not our own: a callback may call this). */
        for (int i = 0; i < 5000 && !in_dispatch && atomic_load(&g->dispatching); i++) {
                struct timespec ts = { 0, 1000000 };
                nanosleep(&ts, NULL);
        }

        pthread_mutex_lock(&g->reg_lock);
        pthread_mutex_lock(&g->lock);
        memlimit__send_bye();
        close_all_locked();
        atomic_fetch_add(&g->gen, 1);
        g->inited = false;
        atomic_store(&g->mode, MEMLIMIT_MODE_NONE);
        atomic_store(&g->level, MEMLIMIT_OK);
        atomic_store(&g->shedding, false);
        atomic_store(&g->need_reattach, false);
        g->shed_level = MEMLIMIT_LEVEL_MAX;
        g->futile_level = -1;
        g->client_id = 0;
        atomic_store(&g->n_caches, 0);
        atomic_store(&g->n_collectors, 0);
        atomic_store(&g->n_handlers, 0);
        atomic_store(&g->n_limits_handlers, 0);
        (void)store_limits(UINT64_MAX, UINT64_MAX);
        g->collectors[MEMLIMIT_MAX_COLLECTORS].futile = 0;
        pthread_mutex_unlock(&g->lock);
        pthread_mutex_unlock(&g->reg_lock);
}
