/* leak: grows its heap steadily and touches every page, like a service with a leak.
 * usage: leak [--step SIZE] [--interval MS] [--max SIZE] [--hold SECONDS]
 * Without --max it grows until something stops it (under memrun: the OOM killer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static unsigned long long size_arg(const char *s)
{
        return example_size_arg("leak", s);
}

int main(int argc, char **argv)
{
        unsigned long long step = 1 << 20, max = 0, total = 0;
        long interval_ms = 5, hold = 0;

        for (int i = 1; i < argc; i++) {
                if (i + 1 < argc && strcmp(argv[i], "--step") == 0)
                        step = size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--interval") == 0)
                        interval_ms = (long)size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--max") == 0)
                        max = size_arg(argv[++i]);
                else if (i + 1 < argc && strcmp(argv[i], "--hold") == 0)
                        hold = (long)size_arg(argv[++i]);
                else {
                        fprintf(stderr, "usage: leak [--step SIZE] [--interval MS] [--max SIZE] [--hold SECONDS]\n");
                        return 2;
                }
        }
        if (step == 0) {
                fprintf(stderr, "leak: --step must be > 0\n");
                return 2;
        }
        while (max == 0 || total + step <= max) {
                char *p = malloc(step);
                if (!p) {
                        fprintf(stderr, "leak: malloc failed after %llu bytes\n", total);
                        return 1;
                }
                memset(p, 0x5a, step); /* touch it: only touched pages are charged */
                total += step;
                if (interval_ms > 0) {
                        struct timespec ts = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
                        nanosleep(&ts, NULL);
                }
        }
        printf("leak: holding %llu bytes\n", total);
        fflush(stdout);
        if (hold > 0)
                sleep((unsigned)hold);
        return 0;
}
