/* watchlimits: a program that follows its budget. libmemlimit tells it the limits when it attaches to
 * memrun and again each time they change (memrunctl set); it prints one line per change,
 * "limits HARD SOFT" in bytes (18446744073709551615: none), and exits after --seconds.
 *   memrun --limit 64M -- watchlimits --seconds 30 &   memrunctl set PID --limit 96M */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memlimit.h"

static void on_limits(size_t hard, size_t soft, void *ctx)
{
        (void)ctx;
        printf("limits %zu %zu\n", hard, soft);
        fflush(stdout);
}

int main(int argc, char **argv)
{
        long seconds = 10;
        for (int i = 1; i < argc; i++) {
                char *end;
                if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
                        errno = 0;
                        seconds = strtol(argv[++i], &end, 10);
                        if (errno || *end || seconds < 0) {
                                fprintf(stderr, "watchlimits: --seconds '%s': not a number of seconds\n", argv[i]);
                                return 2;
                        }
                } else {
                        fprintf(stderr, "usage: watchlimits [--seconds N]\n");
                        return 2;
                }
        }
        int r = memlimit_on_limits(on_limits, NULL);
        if (r == 0)
                r = memlimit_init(0);
        if (r == 0)
                r = memlimit_start_thread();
        if (r < 0) {
                fprintf(stderr, "watchlimits: libmemlimit: %s\n", strerror(-r));
                return 1;
        }
        struct timespec ts = { seconds, 0 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        memlimit_shutdown();
        return 0;
}
