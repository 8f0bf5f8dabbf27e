/* memlimit_int.h: libmemlimit's internal state shared by its files. Every non-static symbol is
 * memlimit__* and hidden, so neither the .so nor the .a can clash with the host program. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memlimit.h"
#include "memlimit_proto.h"

#define ML_HIDDEN __attribute__((visibility("hidden")))

#define ML_NAME_MAX 32
#define ML_BUDGET_WINDOW_NS UINT64_C(1000000000)   /* burst allowance: pct of this window */
#define ML_FUTILE_SKIP 2                           /* freed nothing this many times in a row: skip ... */
#define ML_FUTILE_RETRY_NS UINT64_C(100000000)     /* ... for this long, then try once more */
#define ML_HEAP_TRIM_GAP_NS UINT64_C(1000000000)   /* under the soft limit, trim's malloc_trim at most this often */
#define ML_HEAP_HELD_MIN (64u * 1024)              /* held heap worth a malloc_trim before trimming caches again */

struct ml_callback {
        memlimit_fn fn;
        void *ctx;
        char name[ML_NAME_MAX];
        unsigned futile;          /* consecutive runs that freed nothing; dispatcher-only */
        uint64_t futile_ns;       /* when it reached ML_FUTILE_SKIP */
};

/* A level or limits handler: one table shape, one way to add to it (add_handler). */
struct ml_handler {
        union {
                memlimit_level_fn level;
                memlimit_limits_fn limits;
        } fn;
        void *ctx;
};

/* What one action did, before it becomes a RESULT. */
struct ml_result {
        uint32_t action;          /* one MEMLIMIT_ACT_* */
        uint32_t flags;           /* MEMLIMIT_RESULT_* */
        uint32_t callbacks;
        uint64_t freed, usec;
};

/* The CPU budget: a leaky bucket filled with the callbacks' thread CPU time and drained at pct
 * nanoseconds per wall-clock nanosecond; over capacity (pct of ML_BUDGET_WINDOW_NS), actions wait. */
struct ml_budget {
        unsigned pct;
        uint64_t fill_ns;
        uint64_t last_ns;         /* CLOCK_MONOTONIC of the last drain */
};

/* The governor's law (memlimit_law.c) under the library's private names (memlimit_govern.c). */
#define law_init memlimit__law_init
#define law_setpoint memlimit__law_setpoint
#define law_step memlimit__law_step
#define law_reply memlimit__law_reply
#define law_forget memlimit__law_forget
#define law_slack_reply memlimit__law_slack_reply
#define law_client_steps memlimit__law_client_steps
#include "memlimit_law.h"

/* Standalone mode: memrun's built-in policy in-process. MEMLIMIT is the soft limit; levels are memrun's
 * built-in thresholds on the hard limit memrun would pair with that soft limit (soft / 90%), so a
 * program held at the setpoint reads the same level under memrun and without it. */
struct ml_standalone {
        uint64_t soft;
        enum memlimit_level level;
        struct law law;
};

struct ml_state {
        pthread_mutex_t lock;     /* connection and fds; never held across callbacks */
        pthread_mutex_t reg_lock; /* registration writers */
        _Atomic int level;
        _Atomic bool shedding;
        _Atomic int mode;
        bool inited;
        unsigned flags;
        int shed_level;           /* level at which SHED was last asked; shedding while level >= it */

        int epfd, kickfd, sockfd, timerfd;
        uint32_t client_id;
        bool hello_forked;        /* next HELLO says FORKED */
        _Atomic uint64_t limit_hard, limit_soft;  /* in force (UINT64_MAX: none, or not known) */

        _Atomic bool need_reattach;  /* set in the fork child: fds rebuilt, connection not yet */
        _Atomic unsigned gen;        /* bumped by fork and shutdown: results of an older gen are dropped */
        _Atomic bool dispatching;
        bool thread_wanted;
        bool thread_running;
        _Atomic bool thread_stop;
        pthread_t thread;

        struct ml_budget budget;
        struct ml_standalone sa;
        uint64_t timer_period_ns;

        struct ml_callback caches[MEMLIMIT_MAX_CACHES];
        struct ml_callback collectors[MEMLIMIT_MAX_COLLECTORS + 1];   /* + malloc_trim's bookkeeping */
        struct ml_handler handlers[MEMLIMIT_MAX_LEVEL_HANDLERS];
        struct ml_handler limits_handlers[MEMLIMIT_MAX_LEVEL_HANDLERS];
        _Atomic unsigned n_caches, n_collectors, n_handlers, n_limits_handlers;
        int futile_level;         /* futile counters are for this level; reset when it changes */
        uint64_t heap_trim_ns;    /* the trim path's last malloc_trim; dispatcher-only */
        uint64_t heap_held;       /* freed by the caches since, resident memory not fallen by it; dispatcher-only */
};

ML_HIDDEN extern struct ml_state memlimit__g;

ML_HIDDEN void memlimit__debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
ML_HIDDEN uint64_t memlimit__now_ns(clockid_t clk);

/* actions: run one LEVEL's actions in the calling thread; results[] gets one entry per action bit
 * asked, in bit order; returns how many. */
ML_HIDDEN unsigned memlimit__run_actions(enum memlimit_level level, uint32_t actions, uint64_t goal,
                                         struct ml_result results[3]);
ML_HIDDEN void memlimit__apply_level(enum memlimit_level level, uint32_t actions);
ML_HIDDEN void memlimit__budget_init(struct ml_budget *b, unsigned pct, uint64_t now_ns);
ML_HIDDEN bool memlimit__budget_allows(struct ml_budget *b, uint64_t now_ns);
ML_HIDDEN void memlimit__budget_charge(struct ml_budget *b, uint64_t cpu_ns);

/* standalone */
/* config/size.c's size_parse under the library's name (memlimit_size.c): "N%" of pct_base (0: refused),
 * "max" = UINT64_MAX. */
ML_HIDDEN int memlimit__size_parse(const char *s, uint64_t pct_base, uint64_t *ret);
ML_HIDDEN int memlimit__rss(uint64_t *ret);
/* The heap's free memory handed back by the allocator that serves malloc (memlimit_heap.c: glibc,
 * jemalloc, tcmalloc, mimalloc), returning the drop in resident memory it caused; 0 when no release
 * is known (the answer is then futile). The --preload shim's handler too. */
ML_HIDDEN size_t memlimit__heap_trim(void);
enum ml_heap_kind { ML_HEAP_NONE, ML_HEAP_GLIBC, ML_HEAP_JEMALLOC, ML_HEAP_TCMALLOC, ML_HEAP_MIMALLOC };
/* Which allocator serves malloc: found once (memlimit_init; dlsym may allocate, the release must not). */
ML_HIDDEN void memlimit__heap_detect(void);
ML_HIDDEN enum ml_heap_kind memlimit__heap_kind(void);
ML_HIDDEN const char *memlimit__heap_name(void);          /* "glibc", "jemalloc", ... "unknown" */
ML_HIDDEN const char *memlimit__heap_release_name(void);  /* "malloc_trim", "jemalloc_purge", ... */
/* The allocator's own release; false when none is known. */
ML_HIDDEN bool memlimit__heap_release(void);
/* Where an allocator can only be told in advance (mimalloc: its collection is per thread), tell it to
 * return what any thread frees at once; true when it did. The --preload shim calls it at start. */
ML_HIDDEN bool memlimit__heap_eager(void);
ML_HIDDEN extern int (*memlimit__memory_source)(uint64_t *ret);   /* tests replace it */
ML_HIDDEN void memlimit__standalone_init(struct ml_standalone *sa, uint64_t soft, enum memlimit_level level);
/* One sample: the level, and the actions/goal the law asks now (0: none). */
ML_HIDDEN void memlimit__standalone_step(struct ml_standalone *sa, uint64_t usage, uint64_t now_ns,
                                         enum memlimit_level *ret_level, uint32_t *ret_actions,
                                         uint64_t *ret_goal);
/* What the last ask freed of its goal, whether the CPU budget put a callback off, and how long the
 * callbacks took. */
ML_HIDDEN void memlimit__standalone_reply(struct ml_standalone *sa, uint64_t asked, uint64_t freed, bool deferred,
                                          uint64_t usec);
ML_HIDDEN uint64_t memlimit__standalone_period_ns(const struct ml_standalone *sa, uint64_t usage);

/* client */
ML_HIDDEN int memlimit__connect(const char *endpoint, bool forked, unsigned flags);
ML_HIDDEN void memlimit__send_result(uint32_t seq, const struct ml_result *r);
ML_HIDDEN void memlimit__send_bye(void);
