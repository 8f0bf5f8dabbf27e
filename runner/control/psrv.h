/* psrv: the pressure server, memrun's own MEMORY_PRESSURE_WATCH (systemd docs/MEMORY_PRESSURE.md).
 * The protocol allows the watch path to name an AF_UNIX stream socket: a client (sd-event's
 * sd_event_add_memory_pressure, GLib's memory monitor) connects, writes the decoded
 * MEMORY_PRESSURE_WRITE ("some 200000 2000000\0"), and treats every POLLIN as memory pressure.
 * memrun serves that socket so that such programs hear two things: the kernel's pressure, from a PSI
 * trigger armed with the client's own threshold on the sandbox's memory.pressure (what the file
 * would have told it), and every time the governor asks for memory back (a "pulse"). Clients never
 * answer: the governor counts on limiter answers and kernel reclaim, and these programs follow along.
 * Never blocks on a client; fixed memory (a static table). */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cg.h"
#include "util.h"

#define PSRV_MAX_CLIENTS 64                       /* connections at once; more are closed at accept */
#define PSRV_PULSE_GAP_USEC (50 * USEC_PER_MSEC)  /* governor pulses at most this often */
#define PSRV_WRITE_MAX 128                        /* the trigger a client writes, NUL included */

struct psrv_stats {
        unsigned clients;                         /* connected now */
        uint64_t clients_ever;
        uint64_t refused;                         /* peers outside the sandbox, or table full */
        uint64_t triggers;                        /* kernel triggers armed for clients */
        uint64_t bad_triggers;                    /* writes that were not "some|full STALL WINDOW" */
        uint64_t pulses_governor, pulses_kernel;  /* pulse rounds sent */
        uint64_t sent;                            /* bytes written to clients */
        uint64_t slow;                            /* pulses that found a socket full (one is unread) */
};

struct psrv_client {
        int fd;                                   /* -1: free slot */
        int trig_fd;                              /* the kernel trigger armed for it, -1 none */
        pid_t pid;
        size_t got;                               /* bytes of the trigger read so far */
        bool armed;                               /* the trigger is read (armed, or refused) */
        char buf[PSRV_WRITE_MAX];
};

/* Start (on) or stop watching a client's kernel trigger for EPOLLPRI in the caller's own event loop;
 * 0 or -errno. */
typedef int (*psrv_watch_fn)(void *ctx, int fd, bool on);

struct psrv {
        int epoll_fd, listen_fd, proc_fd;
        int dir_fd;                               /* the directory, flocked while memrun lives */
        enum cg_mode mode;
        char sandbox[PATH_MAX];                   /* memory-hierarchy path peers must be in or beneath */
        char kernel[PATH_MAX];                    /* the pressure file triggers are armed on ("": none) */
        char dir[PATH_MAX], path[PATH_MAX];       /* the private directory and the socket in it */
        char cgbuf[4096];
        usec_t last_pulse;
        struct psrv_stats st;
        struct psrv_client clients[PSRV_MAX_CLIENTS];
        psrv_watch_fn watch;                      /* NULL: triggers sit in epoll_fd */
        void *watch_ctx;
};

/* Make a private directory prefix + "NAME.XXXXXX" (0700; NAME cut at 40 bytes) holding the socket
 * "pressure", listen on it. The directory stays flocked while memrun lives: registry_sweep removes
 * those of a memrun that died (SIGKILL). Peers must be in sandbox_path's cgroup (mode's hierarchy) or beneath it. kernel_file: the
 * pressure file the clients' triggers go on ("" or NULL: kernel pressure is not relayed). 0 or
 * -errno; on failure nothing is left behind. */
int psrv_open(struct psrv *s, const char *prefix, const char *name, enum cg_mode mode, const char *sandbox_path,
              const char *proc_root, const char *kernel_file);
/* A dropped user (--sandbox --user) must be able to connect: the directory and socket become its. */
int psrv_chown(struct psrv *s, uid_t uid, gid_t gid);
/* The fd the supervisor's loop watches (EPOLLIN); psrv_dispatch when it is ready. */
int psrv_fd(const struct psrv *s);
void psrv_dispatch(struct psrv *s);
/* The clients' kernel triggers go in the caller's loop (watch), not in psrv_fd's epoll set: a PSI
 * trigger's poll consumes its event, so an epoll set nested in another loses it to the outer set's
 * readiness check. The loop calls psrv_trigger with the fd and its events. Set before clients come. */
void psrv_watch_triggers(struct psrv *s, psrv_watch_fn watch, void *ctx);
void psrv_trigger(struct psrv *s, int fd, uint32_t events);
/* The governor asks for memory back: tell every client (at most every PSRV_PULSE_GAP_USEC).
 * How many were told. */
unsigned psrv_pulse(struct psrv *s, usec_t now);
/* Close every connection and the socket, remove the socket and the directory. Safe twice, and on a
 * psrv never opened (after psrv_init). */
void psrv_close(struct psrv *s);
void psrv_init(struct psrv *s);

/* Pure: parse a client's trigger ("some 150000 2000000", NUL or end-terminated): kind ("some" or
 * "full"), stall and window in microseconds, stall <= window. 0 or -EINVAL. */
int psrv_parse_trigger(const char *buf, size_t len, char kind[8], uint64_t *ret_stall, uint64_t *ret_window);
