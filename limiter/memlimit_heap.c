/* memlimit_heap: which allocator serves this process's malloc, and that allocator's own way to hand
 * its free memory back to the kernel. What a program frees stays resident in its allocator until
 * the allocator lets go, and each one has its own call for that:
 *   glibc      malloc_trim(0): every arena's whole free pages (MADV_DONTNEED), not only the top;
 *   jemalloc   mallctl("arena.4096.purge"): 4096 is MALLCTL_ARENAS_ALL, every arena's dirty and
 *              muzzy extents purged now instead of over the decay time (10 s by default);
 *   gperftools MallocExtension_ReleaseFreeMemory(): the page heap's free spans released (tcmalloc
 *              otherwise releases at TCMALLOC_RELEASE_RATE, slowly);
 *   mimalloc   mi_collect(true) collects only the calling thread's heap (and the process-wide
 *              caches), and the limiter's thread holds nothing: memory the program's own threads
 *              freed is theirs to hand back, which mimalloc 2.0 schedules for mi_option_decommit_delay
 *              (25 ms) later and does only when that thread next works in that segment, so an ask
 *              comes too late for what was freed before it. What can be done is to tell mimalloc in
 *              advance: memlimit__heap_eager() (the --preload shim, at start) sets decommit_delay to
 *              0, process-wide: every thread then decommits what it frees at once (measured on
 *              examples/fragment: 52 MiB freed into the heap stay resident by default, 15 MiB do
 *              so), at the cost of a page fault when that memory is used again.
 * Found once, at init (dlsym and dladdr may allocate; the release path must not): the object that
 * defines the malloc this process calls (dladdr of dlsym(RTLD_DEFAULT, "malloc")) is the allocator,
 * and its release function must come from that same object, so a library that merely exports a
 * mallctl of its own is not mistaken for the allocator. */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "memlimit_int.h"

#define JEMALLOC_ARENAS_ALL_PURGE "arena.4096.purge"

static enum ml_heap_kind kind = ML_HEAP_NONE;
static int (*je_mallctl)(const char *, void *, size_t *, void *, size_t);
static void (*tc_release)(void);
static void (*mi_collect_fn)(bool);
static void (*mi_option_set_fn)(int, long);
#define MI_OPTION_DECOMMIT_DELAY 15 /* mimalloc.h: mi_option_decommit_delay (2.0), purge_delay (2.1) */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* name, if the object that defines malloc defines it too; NULL otherwise. */
static void *from_malloc_object(const void *malloc_base, const char *name)
{
        void *p = dlsym(RTLD_DEFAULT, name);
        Dl_info di;
        if (!p || !dladdr(p, &di) || di.dli_fbase != malloc_base)
                return NULL;
        return p;
}

static void detect(void)
{
        Dl_info di;
        void *m = dlsym(RTLD_DEFAULT, "malloc");
        if (!m || !dladdr(m, &di))
                return;
        const void *base = di.dli_fbase;
        void *p;
        if ((p = from_malloc_object(base, "mallctl"))) {
                *(void **)&je_mallctl = p;
                kind = ML_HEAP_JEMALLOC;
        } else if ((p = from_malloc_object(base, "MallocExtension_ReleaseFreeMemory"))) {
                *(void **)&tc_release = p;
                kind = ML_HEAP_TCMALLOC;
        } else if ((p = from_malloc_object(base, "mi_collect"))) {
                *(void **)&mi_collect_fn = p;
                *(void **)&mi_option_set_fn = from_malloc_object(base, "mi_option_set");
                kind = ML_HEAP_MIMALLOC;
        } else if (from_malloc_object(base, "malloc_trim") && from_malloc_object(base, "gnu_get_libc_version")) {
                kind = ML_HEAP_GLIBC; /* glibc's own malloc (libc.so.6 defines both) */
        }
        memlimit__debug("malloc is %s's (%s): release with %s", memlimit__heap_name(), di.dli_fname ? di.dli_fname : "?",
                        kind == ML_HEAP_NONE ? "nothing known (answers are futile)" : memlimit__heap_release_name());
}

void memlimit__heap_detect(void)
{
        (void)pthread_once(&once, detect);
}

enum ml_heap_kind memlimit__heap_kind(void)
{
        return kind;
}

const char *memlimit__heap_name(void)
{
        switch (kind) {
        case ML_HEAP_GLIBC: return "glibc";
        case ML_HEAP_JEMALLOC: return "jemalloc";
        case ML_HEAP_TCMALLOC: return "tcmalloc";
        case ML_HEAP_MIMALLOC: return "mimalloc";
        case ML_HEAP_NONE: break;
        }
        return "unknown";
}

const char *memlimit__heap_release_name(void)
{
        switch (kind) {
        case ML_HEAP_GLIBC: return "malloc_trim";
        case ML_HEAP_JEMALLOC: return "jemalloc_purge";
        case ML_HEAP_TCMALLOC: return "tcmalloc_release";
        case ML_HEAP_MIMALLOC: return "mimalloc_collect";
        case ML_HEAP_NONE: break;
        }
        return "heap_release";
}

bool memlimit__heap_eager(void)
{
        memlimit__heap_detect();
        if (kind != ML_HEAP_MIMALLOC || !mi_option_set_fn)
                return false;
        mi_option_set_fn(MI_OPTION_DECOMMIT_DELAY, 0);
        return true;
}

bool memlimit__heap_release(void)
{
        switch (kind) {
        case ML_HEAP_GLIBC:
                (void)malloc_trim(0);
                return true;
        case ML_HEAP_JEMALLOC:
                return je_mallctl(JEMALLOC_ARENAS_ALL_PURGE, NULL, NULL, NULL, 0) == 0;
        case ML_HEAP_TCMALLOC:
                tc_release();
                return true;
        case ML_HEAP_MIMALLOC:
                mi_collect_fn(true);
                return true;
        case ML_HEAP_NONE: break;
        }
        return false;
}
