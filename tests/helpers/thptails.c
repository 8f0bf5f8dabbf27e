/* thptails: charged anonymous memory that nobody maps, for the governor's slack test. Maps --tails
 * SIZE x 2 in huge pages (MADV_HUGEPAGE, 2 MiB aligned), touches it, then drops the second half of
 * every huge page (MADV_DONTNEED): the huge pages stay whole and charged until the kernel's deferred
 * split, which only reclaim runs -- what malloc_trim leaves behind on a THP-always kernel. Then
 * touches --mapped SIZE more at --rate MiB/s (ordinary pages) and holds for --hold seconds.
 * stdout: "thptails: huge=N" (bytes in huge pages before the drop, from /proc/self/smaps_rollup),
 * then "thptails: ready". Exit 0; 1 on a failed mmap; 2 usage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define HUGE (2u << 20)

static uint64_t mib_arg(const char *s)
{
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || (*end && strcmp(end, "M") != 0))
                exit(2);
        return (uint64_t)v << 20;
}

static unsigned long long anon_huge(void)
{
        FILE *f = fopen("/proc/self/smaps_rollup", "re");
        char line[256];
        unsigned long long kb = 0;
        while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
                        break;
        if (f)
                fclose(f);
        return kb * 1024;
}

int main(int argc, char **argv)
{
        uint64_t tails = 0, mapped = 0, rate = 40;
        unsigned hold = 5;
        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--tails"))
                        tails = mib_arg(argv[i + 1]);
                else if (!strcmp(argv[i], "--mapped"))
                        mapped = mib_arg(argv[i + 1]);
                else if (!strcmp(argv[i], "--rate"))
                        rate = strtoull(argv[i + 1], NULL, 10);
                else if (!strcmp(argv[i], "--hold"))
                        hold = (unsigned)atoi(argv[i + 1]);
                else
                        return 2;
        }
        if (!rate)
                return 2;
        size_t len = (size_t)tails * 2;
        if (len) {
                char *raw = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (raw == MAP_FAILED)
                        return 1;
                char *p = (char *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
                (void)madvise(p, len, MADV_HUGEPAGE);
                memset(p, 1, len);
                printf("thptails: huge=%llu\n", anon_huge());
                for (size_t off = 0; off < len; off += HUGE)
                        (void)madvise(p + off + HUGE / 2, HUGE / 2, MADV_DONTNEED);
        } else {
                printf("thptails: huge=0\n");
        }
        fflush(stdout);
        for (uint64_t done = 0; done < mapped; done += 1u << 20) {
                char *m = malloc(1u << 20);
                if (!m)
                        return 1;
                memset(m, 2, 1u << 20);
                struct timespec ts = { 0, (long)(1000000000ull / rate) };
                nanosleep(&ts, NULL);
        }
        printf("thptails: ready\n");
        fflush(stdout);
        sleep(hold);
        return 0;
}
