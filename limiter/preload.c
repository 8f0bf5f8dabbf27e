/* preload: the --preload shim, built as libmemlimit-preload.so with the library linked in, so that
 * LD_PRELOAD of this one file gives an unmodified program a limiter. With no registration from the
 * program it answers "trim" and "collect" with the release of whichever allocator serves malloc
 * (memlimit_heap.c): glibc's malloc_trim(0) (every free page of every arena, not only the top of the
 * heap), jemalloc's arena purge, tcmalloc's ReleaseFreeMemory, mimalloc's mi_collect; the handlers
 * are named after it ("jemalloc_purge"...) and report the resident-set drop as the bytes freed; with
 * no known allocator they free nothing and say so (futile), and memrun escalates. The library's own
 * thread dispatches; a forked child re-attaches (below).
 *
 * It must never disturb the host program: no output above debug level, no abort, no exit, nothing
 * allocated on the callback path (it runs when the sandbox is at its limit), and a failed
 * memlimit_init() (not under memrun, no MEMLIMIT=) leaves the program exactly as it was. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <unistd.h>

#include "memlimit.h"
#include "memlimit_int.h"

/* The allocator's release, counted as the resident-set drop it caused: allocation-free. */
static size_t preload_trim(enum memlimit_level level, size_t goal_bytes, void *ctx)
{
        (void)level;
        (void)goal_bytes;
        (void)ctx;
        return memlimit__heap_trim();
}

/* fork: the library gives the child a fresh connection on its next call, but its dispatcher thread
 * does not survive fork() and the library only restarts it when the program calls it again, which an
 * unmodified program never does. So the child calls memlimit_init() (a no-op but for that restart)
 * from this handler, which runs after the library's own (pthread_atfork child handlers run in the
 * order they were registered). Only in processes where the shim is active. */
static void preload_atfork_child(void)
{
        int saved_errno = errno;
        (void)memlimit_init(MEMLIMIT_F_PRELOAD);
        errno = saved_errno;
}

__attribute__((constructor)) static void memlimit_preload_init(void)
{
        int saved_errno = errno; /* the host program must not see ours */

        /* Both hooks: "trim" alone (the built-in policy's moderate level) would otherwise find no
         * handler, and for an unmodified program the allocator's free memory is the only cache there
         * is. Registered before memlimit_init() so that the HELLO to memrun already lists them; the
         * collect path's own release is then left out (MEMLIMIT_F_NO_MALLOC_TRIM): one per ask. */
        memlimit__heap_detect();
        const char *name = memlimit__heap_release_name();
        bool eager = false;
        if (memlimit_register_cache(name, preload_trim, NULL) < 0 ||
            memlimit_register_collector(name, preload_trim, NULL) < 0 ||
            memlimit_init(MEMLIMIT_F_PRELOAD | MEMLIMIT_F_NO_MALLOC_TRIM) < 0)
                goto fail;
        /* No memrun and no MEMLIMIT=: the library idles. Leave no thread or fd behind in the host. */
        if (memlimit_mode() == MEMLIMIT_MODE_NONE || memlimit_start_thread() < 0)
                goto fail;
        eager = memlimit__heap_eager();
        memlimit__debug("preload: malloc is %s's; trim and collect answered by %s%s", memlimit__heap_name(), name,
                        eager ? " (and mimalloc decommits what any thread frees at once)" : "");
        (void)pthread_atfork(NULL, NULL, preload_atfork_child);
        errno = saved_errno;
        return;
fail:
        memlimit_shutdown(); /* forgets the registrations too */
        errno = saved_errno;
}
