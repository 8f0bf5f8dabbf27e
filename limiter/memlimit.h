/* memlimit.h: libmemlimit, the in-process half of memrun. The program registers caches to trim,
 * collectors to run and level handlers; the library receives pressure levels from the memrun that
 * launched it (MEMRUN_LIMITER) or computes them itself from MEMLIMIT=SIZE, runs the callbacks within
 * a CPU budget and tells memrun what they freed. See memlimit(3). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Equal to the wire levels of memlimit_proto.h, and named as memrun's report and policy name them
 * ("ok", "moderate", "high", "critical"). MEMLIMIT_NORMAL is the first release's name for
 * MEMLIMIT_OK, kept so that programs written against it still build. */
enum memlimit_level {
        MEMLIMIT_OK,
        MEMLIMIT_NORMAL = MEMLIMIT_OK,
        MEMLIMIT_MODERATE,
        MEMLIMIT_HIGH,
        MEMLIMIT_CRITICAL,
        MEMLIMIT_LEVEL_MAX
};

/* A cache trimmer or collector: free memory toward goal_bytes (0: no figure, free what you can spare)
 * and return the bytes freed. Runs in the dispatching thread, never concurrently with another
 * callback of this library. */
typedef size_t (*memlimit_fn)(enum memlimit_level level, size_t goal_bytes, void *ctx);
typedef void (*memlimit_level_fn)(enum memlimit_level level, void *ctx);
/* The limits changed: hard and soft, bytes (SIZE_MAX: none). */
typedef void (*memlimit_limits_fn)(size_t hard, size_t soft, void *ctx);

/* memlimit_init() flags. */
#define MEMLIMIT_F_PRELOAD       (1u << 0)   /* the LD_PRELOAD shim: says so to memrun */
#define MEMLIMIT_F_NO_MALLOC_TRIM (1u << 1)  /* do not call the allocator's release (malloc_trim(0) for glibc's) */
#define MEMLIMIT_F_NO_STANDALONE (1u << 2)   /* ignore MEMLIMIT= in the environment */
/* CPU share for trimming and collecting, 1..100 percent (0: $MEMLIMIT_BUDGET, else 50). */
#define MEMLIMIT_F_BUDGET(pct)   (((unsigned)(pct) & 0x7fu) << 8)

enum memlimit_mode {
        MEMLIMIT_MODE_NONE,       /* not initialized, or no memrun and no MEMLIMIT=: levels stay normal */
        MEMLIMIT_MODE_MEMRUN,     /* levels come from memrun */
        MEMLIMIT_MODE_STANDALONE, /* levels computed in-process against a soft limit */
        MEMLIMIT_MODE_MAX
};

#define MEMLIMIT_MAX_CACHES 64
#define MEMLIMIT_MAX_COLLECTORS 64
#define MEMLIMIT_MAX_LEVEL_HANDLERS 32

/* Attach to memrun ($MEMRUN_LIMITER), else run standalone from $MEMLIMIT, else do nothing (levels stay
 * normal). 0 or -errno. Idempotent: later calls return 0; in a forked child they re-attach. */
int memlimit_init(unsigned flags);
/* Standalone soft limit in bytes, as MEMLIMIT= would set it (0: stop). Not while attached to memrun
 * (-EBUSY). Needs memlimit_init() first (-ENOTCONN). */
int memlimit_set_limit(size_t soft_bytes);
/* Registrations last until memlimit_shutdown(); names are for logs (copied, truncated to 31 bytes).
 * -ENOSPC when the fixed table is full, -EINVAL for a NULL fn. May be called before memlimit_init(). */
int memlimit_register_cache(const char *name, memlimit_fn fn, void *ctx);
int memlimit_register_collector(const char *name, memlimit_fn fn, void *ctx);
int memlimit_on_level(memlimit_level_fn fn, void *ctx);
/* Called whenever the limits change: memrun tells every attached process when it starts and each
 * time they change (memrunctl set); runs in the dispatching thread. In standalone mode,
 * memlimit_set_limit() changes the soft limit and runs these in its caller's thread. */
int memlimit_on_limits(memlimit_limits_fn fn, void *ctx);

/* Event-loop mode: poll this fd for POLLIN, then call memlimit_dispatch() in the same thread. The fd
 * stays the same for the life of the process (in a forked child too). -errno if not initialized. */
int memlimit_fd(void);
/* Read what arrived and run the due callbacks. Never blocks. Returns the number of level updates
 * handled (>= 0) or -errno. */
int memlimit_dispatch(void);
/* Or let a library thread do it. 0 or -errno; 0 if already running. */
int memlimit_start_thread(void);

/* Lock-free, no syscall, no allocation: safe anywhere, including signal handlers. */
enum memlimit_level memlimit_level(void);
bool memlimit_shedding(void);
/* The limits in force, bytes (SIZE_MAX: none, or not known yet): memrun's hard and soft limits, or
 * the standalone soft limit (hard: none). Either pointer may be NULL. */
void memlimit_limits(size_t *ret_hard, size_t *ret_soft);
enum memlimit_mode memlimit_mode(void);

/* Stop the thread, say goodbye to memrun, close everything, forget registrations. */
void memlimit_shutdown(void);

#ifdef __cplusplus
}
#endif
