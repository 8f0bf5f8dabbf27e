/* preload: the --preload shim, built as libmemlimit-preload.so with the library linked in, so that
 * LD_PRELOAD of this one file gives an unmodified program a limiter. With no registration from the
 * program it answers "trim" and "collect" with glibc's malloc_trim(0), which (since glibc 2.8) gives
 * back every free page of every arena, not only the top of the heap, and reports the resident-set
 * drop as the bytes freed. The library's own thread dispatches; a forked child re-attaches (below).
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

/* The library's malloc_trim(0), counted as the resident-set drop it caused: allocation-free. */
static size_t preload_trim(enum memlimit_level level, size_t goal_bytes, void *ctx)
{
        (void)level;
        (void)goal_bytes;
        (void)ctx;
        return memlimit__malloc_trim();
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
         * handler, and for an unmodified program malloc_trim is the only cache there is. Registered
         * before memlimit_init() so that the HELLO to memrun already lists them. */
        if (memlimit_register_cache("malloc_trim", preload_trim, NULL) < 0 ||
            memlimit_register_collector("malloc_trim", preload_trim, NULL) < 0 || memlimit_init(MEMLIMIT_F_PRELOAD) < 0)
                goto fail;
        /* No memrun and no MEMLIMIT=: the library idles. Leave no thread or fd behind in the host. */
        if (memlimit_mode() == MEMLIMIT_MODE_NONE || memlimit_start_thread() < 0)
                goto fail;
        (void)pthread_atfork(NULL, NULL, preload_atfork_child);
        errno = saved_errno;
        return;
fail:
        memlimit_shutdown(); /* forgets the registrations too */
        errno = saved_errno;
}
