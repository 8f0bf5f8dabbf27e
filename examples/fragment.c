/* fragment: a glibc malloc retention case. Memory the program has freed stays charged to it, so it is
 * OOM-killed under a plain limit it fits in, and survives when something calls malloc_trim(0) (the
 * memrun --preload shim, on "trim"/"collect").
 *
 * The scenario, a program that builds a big index of small objects, drops it but keeps a few, then
 * moves on to a phase of big buffers:
 *   1. build: --small bytes of 256-byte blocks from the main heap (brk). Every --pin-every'th block
 *      is a long-lived "pin" that is kept; the pins end up spread over the whole heap.
 *   2. drop: free every block that is not a pin. The runs between pins coalesce into free chunks of
 *      ~--pin-every * 272 bytes, but glibc only returns memory from the *top* of the heap
 *      (M_TRIM_THRESHOLD), and the last pin holds the top: the freed pages stay resident and
 *      charged. malloc_trim(0) walks the bins and MADV_DONTNEEDs the whole pages inside free chunks.
 *   3. big: --large bytes in 1 MiB blocks, touched, allocated gradually (--interval ms apart) so a
 *      supervisor has time to act. 1 MiB is above M_MMAP_THRESHOLD (128 KiB, never raised here since
 *      no mmapped block is freed), so these are fresh mmaps that cannot reuse the freed heap: without
 *      a trim, usage = retained heap + big, and a limit between (pins + big) and (small + big) kills.
 * Then it holds for --hold seconds and exits 0.
 *
 * usage: fragment [--small SIZE] [--pin-every N] [--large SIZE] [--interval MS] [--pause MS]
 *                 [--hold SECONDS] [--trim]
 * --trim calls malloc_trim(0) itself after the drop: the measurement of what the shim would give back.
 * Each phase prints one line with the resident set (/proc/self/statm). */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define SMALL_BLOCK 256
#define LARGE_BLOCK (1u << 20)

static unsigned long long size_arg(const char *s)
{
        return example_size_arg("fragment", s);
}

static double rss_mib(void)
{
        char buf[128];
        long pages = -1;
        int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof buf - 1);
                close(fd);
                if (n > 0) {
                        buf[n] = '\0';
                        char *p;
                        (void)strtol(buf, &p, 10);
                        pages = strtol(p, NULL, 10);
                }
        }
        return pages < 0 ? -1.0 : (double)pages * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

int main(int argc, char **argv)
{
        unsigned long long small = 48ull << 20, large = 96ull << 20, pin_every = 128;
        long interval_ms = 10, pause_ms = 200, hold = 0;
        int trim = 0;

        for (int i = 1; i < argc; i++) {
                if (i + 1 < argc && strcmp(argv[i], "--small") == 0)
                        small = size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--large") == 0)
                        large = size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--pin-every") == 0)
                        pin_every = size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--interval") == 0)
                        interval_ms = (long)size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--pause") == 0)
                        pause_ms = (long)size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--hold") == 0)
                        hold = (long)size_arg(argv[++i]);
                else if (strcmp(argv[i], "--trim") == 0)
                        trim = 1;
                else {
                        fprintf(stderr, "usage: fragment [--small SIZE] [--pin-every N] [--large SIZE] "
                                        "[--interval MS] [--pause MS] [--hold SECONDS] [--trim]\n");
                        return 2;
                }
        }
        if (pin_every < 2) {
                fprintf(stderr, "fragment: --pin-every must be at least 2\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);

        size_t nsmall = (size_t)(small / SMALL_BLOCK);
        char **blocks = calloc(nsmall ? nsmall : 1, sizeof *blocks);
        if (!blocks) {
                fprintf(stderr, "fragment: out of memory\n");
                return 1;
        }
        /* 1. build; the pins are the blocks whose index is a multiple of pin_every, so they sit at
         *    regular addresses across the heap, the last one close to its top */
        for (size_t i = 0; i < nsmall; i++) {
                blocks[i] = malloc(SMALL_BLOCK);
                if (!blocks[i]) {
                        fprintf(stderr, "fragment: malloc failed after %zu blocks\n", i);
                        return 1;
                }
                memset(blocks[i], (int)(i & 0xff), SMALL_BLOCK);
        }
        size_t npins = (nsmall + pin_every - 1) / pin_every;
        printf("fragment: built %zu blocks of %d bytes, rss %.1f MiB\n", nsmall, SMALL_BLOCK, rss_mib());

        /* 2. drop everything but the pins */
        for (size_t i = 0; i < nsmall; i++)
                if (i % pin_every != 0) {
                        free(blocks[i]);
                        blocks[i] = NULL;
                }
        printf("fragment: freed all but %zu pins (%.1f KiB), rss %.1f MiB\n", npins,
               (double)npins * SMALL_BLOCK / 1024.0, rss_mib());
        if (trim) {
                malloc_trim(0);
                printf("fragment: malloc_trim(0), rss %.1f MiB\n", rss_mib());
        }
        example_sleep_ms(pause_ms);

        /* 3. big buffers, gradually */
        unsigned long long got = 0;
        while (got + LARGE_BLOCK <= large) {
                char *p = malloc(LARGE_BLOCK);
                if (!p) {
                        fprintf(stderr, "fragment: malloc failed after %llu large bytes\n", got);
                        return 1;
                }
                memset(p, 0x5a, LARGE_BLOCK); /* touched: only touched pages are charged */
                got += LARGE_BLOCK;
                example_sleep_ms(interval_ms);
        }
        printf("fragment: holding %llu MiB of large blocks and %zu pins, rss %.1f MiB\n", got >> 20, npins,
               rss_mib());
        if (hold > 0)
                sleep((unsigned)hold);
        return 0;
}
