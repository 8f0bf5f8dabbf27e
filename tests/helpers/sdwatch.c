/* sdwatch: a real sd-event program under memrun's MEMORY_PRESSURE_WATCH. It calls libsystemd's own
 * sd_event_add_memory_pressure() (libsystemd >= 254: Debian bookworm-backports', fetched beside the
 * build by build-aux/libsystemd-bpo.sh, as Debian 12's 252 predates the call), so the protocol is
 * systemd's code, not ours: sd-event reads MEMORY_PRESSURE_WATCH and MEMORY_PRESSURE_WRITE, connects
 * to a socket (or opens a PSI file), writes the trigger and dispatches on what arrives. The program
 * is pwatch's workload (tests/helpers/pwatch.c) on an sd-event loop: a timer adds a 1 MiB chunk every
 * --every-ms; the pressure handler drops the older half of the chunks and then calls
 * sd_event_trim_memory(), the handler sd-event installs when a program passes none.
 * Usage: sdwatch [--total MIB] [--every-ms N]
 * Prints "sdwatch: events=N added=BYTES held=BYTES kind=socket|file libsystemd=VERSION (PATH)" and
 * exits 0 once it has added --total MiB; 2 when sd-event refuses the watch or on a usage error. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#ifndef LIBSYSTEMD_VERSION
#define LIBSYSTEMD_VERSION "unknown"
#endif

#define CHUNK (1024 * 1024)
#define MAX_CHUNKS 4096

struct sdwatch {
        char *chunks[MAX_CHUNKS];
        size_t head, n; /* a ring: the oldest at head */
        unsigned long long added, total, events;
        uint64_t every_us;
};

static int on_pressure(sd_event_source *s, void *userdata)
{
        struct sdwatch *w = userdata;
        (void)s;
        w->events++;
        size_t drop = (w->n + 1) / 2;
        for (size_t k = 0; k < drop; k++) {
                free(w->chunks[w->head]);
                w->head = (w->head + 1) % MAX_CHUNKS;
                w->n--;
        }
        return sd_event_trim_memory();
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct sdwatch *w = userdata;
        if (w->n == MAX_CHUNKS) {
                free(w->chunks[w->head]);
                w->head = (w->head + 1) % MAX_CHUNKS;
                w->n--;
        }
        char *c = malloc(CHUNK);
        if (!c)
                return sd_event_exit(sd_event_source_get_event(s), 2);
        memset(c, 0x5a, CHUNK);
        w->chunks[(w->head + w->n) % MAX_CHUNKS] = c;
        w->n++;
        w->added += CHUNK;
        if (w->added >= w->total)
                return sd_event_exit(sd_event_source_get_event(s), 0);
        int r = sd_event_source_set_time(s, usec + w->every_us);
        return r < 0 ? r : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT); /* a timer fires once */
}

int main(int argc, char **argv)
{
        static struct sdwatch w = { .total = 600ull * CHUNK, .every_us = 10000 };
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--total") == 0 && i + 1 < argc)
                        w.total = strtoull(argv[++i], NULL, 10) * CHUNK;
                else if (strcmp(argv[i], "--every-ms") == 0 && i + 1 < argc)
                        w.every_us = strtoull(argv[++i], NULL, 10) * 1000;
                else {
                        fprintf(stderr, "usage: sdwatch [--total MIB] [--every-ms N]\n");
                        return 2;
                }
        }
        const char *watch = getenv("MEMORY_PRESSURE_WATCH");
        struct stat st;
        const char *kind = watch && stat(watch, &st) == 0 && S_ISSOCK(st.st_mode) ? "socket" : "file";

        sd_event *e = NULL;
        sd_event_source *pressure = NULL, *timer = NULL;
        int r = sd_event_default(&e);
        if (r < 0) {
                fprintf(stderr, "sdwatch: sd_event_default: %s\n", strerror(-r));
                return 2;
        }
        r = sd_event_add_memory_pressure(e, &pressure, on_pressure, &w);
        if (r < 0) {
                fprintf(stderr, "sdwatch: sd_event_add_memory_pressure (MEMORY_PRESSURE_WATCH=%s): %s\n",
                        watch ? watch : "(unset)", strerror(-r));
                return 2;
        }
        uint64_t now;
        sd_event_now(e, CLOCK_MONOTONIC, &now);
        /* accuracy 1 µs: the default (250 ms) would coalesce the timer far past --every-ms */
        r = sd_event_add_time(e, &timer, CLOCK_MONOTONIC, now + w.every_us, 1, on_timer, &w);
        if (r < 0) {
                fprintf(stderr, "sdwatch: sd_event_add_time: %s\n", strerror(-r));
                return 2;
        }
        r = sd_event_loop(e);
        if (r != 0) {
                fprintf(stderr, "sdwatch: sd_event_loop: %s\n", r < 0 ? strerror(-r) : "exit 2");
                return 2;
        }
        /* an event source that failed is disabled by sd-event, quietly: say so */
        int enabled = SD_EVENT_OFF;
        sd_event_source_get_enabled(pressure, &enabled);
        Dl_info info = { 0 };
        dladdr((void *)sd_event_add_memory_pressure, &info);
        printf("sdwatch: events=%llu added=%llu held=%zu kind=%s watch=%s libsystemd=%s (%s)\n", w.events,
               w.added, w.n * (size_t)CHUNK, kind, enabled == SD_EVENT_OFF ? "disabled" : "on",
               LIBSYSTEMD_VERSION, info.dli_fname ? info.dli_fname : "?");
        sd_event_source_unref(timer);
        sd_event_source_unref(pressure);
        sd_event_unref(e);
        return 0;
}
