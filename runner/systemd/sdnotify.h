/* sdnotify: memrun as a systemd service's main process, transparent to the service it runs
 * (memrun(1) SYSTEMD). systemd talks to memrun's pid; the command talks to memrun:
 *  - sd_notify: the command's NOTIFY_SOCKET is memrun's relay; its READY=1, RELOADING=1, STOPPING=1,
 *    WATCHDOG=1, ... (and passed fds) go on to systemd's socket from memrun, so NotifyAccess=main
 *    holds. Its STATUS= goes on with memrun's own appended (level, usage of limit).
 *  - watchdog: WATCHDOG_USEC meant for memrun is handed on with WATCHDOG_PID = the command's pid.
 *  - socket activation: LISTEN_FDS meant for memrun are handed on (fds 3.., LISTEN_FDNAMES as they
 *    are) with LISTEN_PID = the command's pid; memrun's own children (hooks) do not inherit them.
 * Only systemd's documented environment (sd_notify(3), sd_listen_fds(3), sd_watchdog_enabled(3)). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "util.h"

struct sdnotify {
        int up_fd;                       /* to systemd's NOTIFY_SOCKET; -1: not under a service manager */
        struct sockaddr_un up_addr;
        socklen_t up_len;
        int relay_fd;                    /* the command's NOTIFY_SOCKET (memrun's end); -1 none */
        char relay_name[64];             /* "@memrun-notify-PID-RANDOM" */
        char child_status[256];          /* the command's last STATUS= */
        char memrun_status[128];         /* memrun's part, as last sent */
        usec_t status_t;                 /* when STATUS= was last sent; USEC_INFINITY: never */
        bool watchdog;                   /* hand WATCHDOG_USEC on */
        int listen_fds;                  /* LISTEN_FDS meant for memrun: fds 3 .. 3+N-1; 0 none */
        uint64_t relayed, dropped;
};

/* From memrun's environment: NOTIFY_SOCKET, WATCHDOG_PID/USEC, LISTEN_PID/FDS. Nothing set: all
 * off, 0. Failing to make the relay is logged; the command then gets systemd's socket as is. */
int sdnotify_open(struct sdnotify *n);
/* In the command's process, after fork, before exec: its NOTIFY_SOCKET, WATCHDOG_PID and
 * LISTEN_PID, and the listening fds inheritable again. */
void sdnotify_child(const struct sdnotify *n);
/* Relay what the command sent (non-blocking, at most a few dozen datagrams a call; call when
 * relay_fd is readable). Only senders for which inside() says yes are relayed: the abstract name
 * is visible to every local user, and systemd would take whatever memrun passes on as memrun's. */
void sdnotify_dispatch(struct sdnotify *n, usec_t now, bool (*inside)(void *ctx, pid_t pid), void *ctx);
/* memrun's part of STATUS= ("memrun: high, 57.1M of 64M"): sent when it changes its level word or
 * every few seconds, never more than needed. */
void sdnotify_status(struct sdnotify *n, const char *level, uint64_t usage, uint64_t limit, usec_t now);
void sdnotify_close(struct sdnotify *n);

/* Pure: split one notify datagram (newline-separated assignments) into what goes on as is (out,
 * without MAINPID=, which would claim memrun's role, and STATUS=) and the STATUS= value (status,
 * "" if none). Returns the number of assignments kept, or -EINVAL for a datagram that is not text. */
int sdnotify_filter(const char *msg, size_t len, char *out, size_t out_size, char *status, size_t status_size,
                    bool *ret_has_status);
