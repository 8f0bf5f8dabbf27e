/* pwatch: a program that follows systemd's memory pressure protocol (docs/MEMORY_PRESSURE.md) the way
 * sd-event's sd_event_add_memory_pressure() does, for the tests (Debian 12's libsystemd 252 predates
 * that call): read MEMORY_PRESSURE_WATCH and MEMORY_PRESSURE_WRITE; if the path is a socket, connect
 * (stream), write the decoded trigger, and take every POLLIN as pressure (reading what came); if it
 * is a regular file (PSI), write the trigger to it and take POLLPRI. Meanwhile it grows a cache of
 * 1 MiB chunks and, on every event, drops the older half of it (what sd-event's default handler,
 * sd_event_trim_memory, does: give back what it can, then malloc_trim(0)).
 * Usage: pwatch [--total SIZE] [--every-ms N] [--out FILE]
 * Prints "pwatch: events=N added=BYTES held=BYTES kind=socket|file" and exits 0 when it has added
 * --total bytes; 2 on a usage or protocol error (said on stderr). */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1024 * 1024)
#define MAX_CHUNKS 4096

static int b64(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Base64 (padded) to bytes; the length, or -1. */
static int decode(const char *in, unsigned char *out, size_t size)
{
        size_t n = 0, len = strlen(in);
        if (len % 4)
                return -1;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                for (size_t k = 0; k < 4; k++)
                        v[k] = in[i + k] == '=' ? 0 : b64(in[i + k]);
                if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0 || n + 3 > size)
                        return -1;
                unsigned w = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
                out[n++] = (unsigned char)(w >> 16);
                if (in[i + 2] != '=')
                        out[n++] = (unsigned char)(w >> 8);
                if (in[i + 3] != '=')
                        out[n++] = (unsigned char)w;
        }
        return (int)n;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        unsigned long long total = 600ull * CHUNK;
        int every_ms = 10;
        const char *out = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--total") == 0 && i + 1 < argc)
                        total = strtoull(argv[++i], NULL, 10) * CHUNK;
                else if (strcmp(argv[i], "--every-ms") == 0 && i + 1 < argc)
                        every_ms = atoi(argv[++i]);
                else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
                        out = argv[++i];
                else {
                        fprintf(stderr, "usage: pwatch [--total MIB] [--every-ms N] [--out FILE]\n");
                        return 2;
                }
        }
        const char *watch = getenv("MEMORY_PRESSURE_WATCH"), *write64 = getenv("MEMORY_PRESSURE_WRITE");
        if (!watch || watch[0] != '/' || !write64) {
                fprintf(stderr, "pwatch: MEMORY_PRESSURE_WATCH/WRITE not set\n");
                return 2;
        }
        unsigned char trig[256];
        int tlen = decode(write64, trig, sizeof trig);
        if (tlen <= 0) {
                fprintf(stderr, "pwatch: MEMORY_PRESSURE_WRITE '%s' is not base64\n", write64);
                return 2;
        }
        struct stat st;
        if (stat(watch, &st) < 0) {
                fprintf(stderr, "pwatch: %s: %s\n", watch, strerror(errno));
                return 2;
        }
        int fd;
        short events;
        const char *kind;
        if (S_ISSOCK(st.st_mode)) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                if (strlen(watch) >= sizeof sa.sun_path)
                        return 2;
                memcpy(sa.sun_path, watch, strlen(watch) + 1);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                        fprintf(stderr, "pwatch: connect %s: %s\n", watch, strerror(errno));
                        return 2;
                }
                events = POLLIN;
                kind = "socket";
        } else {
                fd = open(watch, O_RDWR | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0) {
                        fprintf(stderr, "pwatch: open %s: %s\n", watch, strerror(errno));
                        return 2;
                }
                events = POLLPRI;
                kind = "file";
        }
        if ((events == POLLIN ? send(fd, trig, (size_t)tlen, MSG_NOSIGNAL) : write(fd, trig, (size_t)tlen)) != tlen) {
                fprintf(stderr, "pwatch: writing the trigger to %s: %s\n", watch, strerror(errno));
                return 2;
        }
        FILE *log = out ? fopen(out, "w") : NULL;
        static char *chunks[MAX_CHUNKS];
        size_t head = 0, n = 0; /* a ring: the oldest at head */
        unsigned long long added = 0, events_seen = 0;
        double t0 = now_s();
        while (added < total) {
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, every_ms);
                if (r < 0 && errno != EINTR)
                        return 2;
                if (r > 0) {
                        if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
                                fprintf(stderr, "pwatch: %s hung up\n", watch);
                                return 2;
                        }
                        if (events == POLLIN) {
                                char buf[256];
                                if (read(fd, buf, sizeof buf) <= 0) {
                                        fprintf(stderr, "pwatch: %s closed\n", watch);
                                        return 2;
                                }
                        }
                        events_seen++;
                        size_t drop = (n + 1) / 2;
                        for (size_t k = 0; k < drop; k++) {
                                free(chunks[head]);
                                head = (head + 1) % MAX_CHUNKS;
                                n--;
                        }
                        malloc_trim(0);
                        if (log) {
                                fprintf(log, "%.3f event %llu held %zu\n", now_s() - t0, events_seen, n * (size_t)CHUNK);
                                fflush(log);
                        }
                        continue;
                }
                if (n == MAX_CHUNKS) {
                        free(chunks[head]);
                        head = (head + 1) % MAX_CHUNKS;
                        n--;
                }
                char *c = malloc(CHUNK);
                if (!c)
                        return 2;
                memset(c, 0x5a, CHUNK);
                chunks[(head + n) % MAX_CHUNKS] = c;
                n++;
                added += CHUNK;
        }
        printf("pwatch: events=%llu added=%llu held=%zu kind=%s\n", events_seen, added, n * (size_t)CHUNK, kind);
        if (log)
                fclose(log);
        return 0;
}
