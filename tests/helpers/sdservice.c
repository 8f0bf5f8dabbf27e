/* sdservice: a small service that speaks systemd's protocols itself (no libsystemd), for the
 * systemd VM suite to run bare and under memrun and compare what systemd reports.
 *   sdservice notify [--stop-pinging-after S]   STATUS=starting, READY=1 after 1 s (or once the file
 *                                               SDSERVICE_READY_FILE exists), STATUS=serving,
 *                                               WATCHDOG=1 every WATCHDOG_USEC/4 when meant for it;
 *                                               SIGHUP: RELOADING=1 ... READY=1; SIGTERM: STOPPING=1, exit 0
 *   sdservice listen                            sd_listen_fds(): needs LISTEN_PID = its pid and
 *                                               LISTEN_FDS >= 1; answers each connection on fd 3
 *                                               with "hello from sdservice PID" and READY=1 first */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_hup, got_term;
static void on_sig(int s) { if (s == SIGHUP) got_hup = 1; else got_term = 1; }

static void notify(const char *msg)
{
        const char *ns = getenv("NOTIFY_SOCKET");
        if (!ns || !*ns)
                return;
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        size_t n = strlen(ns);
        if (n >= sizeof a.sun_path)
                return;
        memcpy(a.sun_path, ns, n);
        if (a.sun_path[0] == '@')
                a.sun_path[0] = '\0';
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&a,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (ns[0] == '@' ? 0 : 1))) < 0)
                fprintf(stderr, "sdservice: notify: %s\n", strerror(errno));
        close(fd);
}

static int mine(const char *var)
{
        const char *v = getenv(var);
        return v && atol(v) == (long)getpid();
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        struct sigaction sa = { .sa_handler = on_sig };
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        if (argc >= 2 && strcmp(argv[1], "listen") == 0) {
                const char *lf = getenv("LISTEN_FDS");
                if (!mine("LISTEN_PID") || !lf || atoi(lf) < 1) {
                        fprintf(stderr, "sdservice: no sockets for me (LISTEN_PID=%s, LISTEN_FDS=%s, pid %d)\n",
                                getenv("LISTEN_PID") ? getenv("LISTEN_PID") : "-", lf ? lf : "-", (int)getpid());
                        return 3;
                }
                notify("READY=1\nSTATUS=listening");
                while (!got_term) {
                        int c = accept(3, NULL, NULL);
                        if (c < 0) {
                                if (errno == EINTR)
                                        continue;
                                fprintf(stderr, "sdservice: accept: %s\n", strerror(errno));
                                return 4;
                        }
                        char msg[64];
                        int n = snprintf(msg, sizeof msg, "hello from sdservice %d\n", (int)getpid());
                        (void)!write(c, msg, (size_t)n);
                        close(c);
                }
                return 0;
        }
        if (argc < 2 || strcmp(argv[1], "notify") != 0) {
                fprintf(stderr, "usage: sdservice notify [--stop-pinging-after S] | sdservice listen\n");
                return 2;
        }
        double stop_after = argc >= 4 && strcmp(argv[2], "--stop-pinging-after") == 0 ? atof(argv[3]) : -1;
        const char *wu = getenv("WATCHDOG_USEC");
        long wd_usec = wu && mine("WATCHDOG_PID") ? atol(wu) : 0;
        notify("STATUS=starting");
        /* SDSERVICE_READY_FILE: ready only once the test has made that file (no race with a clock). */
        const char *gate = getenv("SDSERVICE_READY_FILE");
        while (gate && access(gate, F_OK) != 0 && !got_term)
                usleep(50000);
        if (!gate)
                sleep(1);
        notify("READY=1\nSTATUS=serving");
        fprintf(stderr, "sdservice: ready (pid %d, watchdog %ld us)\n", (int)getpid(), wd_usec);
        double t0 = now();
        int reloads = 0;
        while (!got_term) {
                if (got_hup) {
                        got_hup = 0;
                        notify("RELOADING=1");
                        char m[64];
                        snprintf(m, sizeof m, "READY=1\nSTATUS=reloaded %d", ++reloads);
                        notify(m);
                }
                if (wd_usec > 0 && (stop_after < 0 || now() - t0 < stop_after))
                        notify("WATCHDOG=1");
                usleep(wd_usec > 0 ? (useconds_t)(wd_usec / 4) : 200000);
        }
        notify("STOPPING=1");
        fprintf(stderr, "sdservice: stopping\n");
        return 0;
}
