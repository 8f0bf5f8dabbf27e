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

/* Resident pages from /proc/self/statm (second field), or -1. A stack buffer and raw syscalls:
 * no allocation, no stdio, safe in whichever thread the library calls us. */
static long statm_resident(void)
{
        char buf[128];
        ssize_t n;
        int fd;

        do
                fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0)
                return -1;
        do
                n = read(fd, buf, sizeof buf - 1);
        while (n < 0 && errno == EINTR);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';

        /* "size resident shared text lib data dt": skip the first number, parse the second. */
        const char *p = buf;
        while (*p >= '0' && *p <= '9')
                p++;
        if (*p != ' ')
                return -1;
        p++;
        if (*p < '0' || *p > '9')
                return -1;
        long v = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (long)(((unsigned long)-1 >> 1) / 10) - 10)
                        return -1;
                v = v * 10 + (*p - '0');
        }
        return v;
}

static size_t preload_trim(enum memlimit_level level, size_t goal_bytes, void *ctx)
{
        (void)level;
        (void)goal_bytes;
        (void)ctx;
        long before = statm_resident();
        malloc_trim(0);
        long after = statm_resident();
        if (before < 0 || after < 0 || after >= before)
                return 0;
        long page = sysconf(_SC_PAGESIZE);
        return (size_t)(before - after) * (size_t)(page > 0 ? page : 4096);
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
