/* sdnotify: systemd's notify, watchdog and socket-activation protocols, relayed for the command. */
#include "systemd/sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "config/size.h"
#include "log.h"
#include "util.h"

#define STATUS_EVERY_USEC (5 * USEC_PER_SEC)
#define MAX_PASSED_FDS 32

int sdnotify_filter(const char *msg, size_t len, char *out, size_t out_size, char *status, size_t status_size,
                    bool *ret_has_status)
{
        size_t o = 0;
        int kept = 0;
        *ret_has_status = false;
        status[0] = '\0';
        if (out_size == 0 || memchr(msg, '\0', len))
                return -EINVAL;
        out[0] = '\0';
        for (size_t i = 0; i < len;) {
                const char *line = msg + i;
                const char *nl = memchr(line, '\n', len - i);
                size_t ll = nl ? (size_t)(nl - line) : len - i;
                i += ll + (nl ? 1 : 0);
                if (ll == 0)
                        continue;
                if (ll >= 7 && memcmp(line, "STATUS=", 7) == 0) {
                        size_t v = ll - 7 < status_size - 1 ? ll - 7 : status_size - 1;
                        memcpy(status, line + 7, v);
                        status[v] = '\0';
                        *ret_has_status = true;
                        continue;
                }
                /* memrun is the main process, and the unit's access rules are its own */
                if ((ll >= 8 && memcmp(line, "MAINPID=", 8) == 0) || (ll >= 13 && memcmp(line, "NOTIFYACCESS=", 13) == 0))
                        continue;
                if (!memchr(line, '=', ll))
                        return -EINVAL;
                if (o + ll + 2 > out_size)
                        return -EINVAL;
                memcpy(out + o, line, ll);
                o += ll;
                out[o++] = '\n';
                out[o] = '\0';
                kept++;
        }
        return kept;
}

static int addr_of(const char *path, struct sockaddr_un *a, socklen_t *len)
{
        size_t n = strlen(path);
        memset(a, 0, sizeof *a);
        a->sun_family = AF_UNIX;
        if (n == 0 || n >= sizeof a->sun_path || (path[0] != '/' && path[0] != '@'))
                return -EINVAL;
        memcpy(a->sun_path, path, n);
        if (path[0] == '@') {
                a->sun_path[0] = '\0';
                *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        } else
                *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

static bool for_us(const char *pid_var)
{
        const char *v = getenv(pid_var);
        char self[24];
        snprintf(self, sizeof self, "%d", (int)getpid());
        return v && strcmp(v, self) == 0;
}

int sdnotify_open(struct sdnotify *n)
{
        *n = (struct sdnotify){ .up_fd = -1, .relay_fd = -1, .status_t = USEC_INFINITY };
        const char *ns = getenv("NOTIFY_SOCKET");
        const char *lf = getenv("LISTEN_FDS");

        if (lf && for_us("LISTEN_PID")) {
                int k = atoi(lf);
                if (k > 0 && k < 1024) {
                        n->listen_fds = k;
                        /* memrun's own children (hooks, reclaim) must not hold the service's sockets. */
                        for (int fd = 3; fd < 3 + k; fd++)
                                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                        log_debug("socket activation: handing %d fd%s on to the command", k, k == 1 ? "" : "s");
                }
        }
        if (!ns || !*ns)
                return 0;
        if (addr_of(ns, &n->up_addr, &n->up_len) < 0)
                return log_warn_errno(-EINVAL, "NOTIFY_SOCKET '%s' is not a socket address: passing it on as is", ns), 0;
        n->watchdog = getenv("WATCHDOG_USEC") && (!getenv("WATCHDOG_PID") || for_us("WATCHDOG_PID"));
        n->up_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        n->relay_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
                rnd = (uint64_t)getpid() * 2654435761u;
        snprintf(n->relay_name, sizeof n->relay_name, "@memrun-notify-%d-%016" PRIx64, (int)getpid(), rnd);
        struct sockaddr_un ra;
        socklen_t rl;
        int one = 1;
        if (n->up_fd < 0 || n->relay_fd < 0 || addr_of(n->relay_name, &ra, &rl) < 0 ||
            bind(n->relay_fd, (struct sockaddr *)&ra, rl) < 0 ||
            setsockopt(n->relay_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
                int e = errno;
                close_fd(&n->relay_fd);
                n->relay_name[0] = '\0';
                log_warn_errno(-e, "cannot make the command's notify socket (%m): it gets systemd's own, which "
                                   "takes messages from memrun alone");
        }
        log_debug("notify: relaying %s -> %s%s", n->relay_name[0] ? n->relay_name : "(none)", ns,
                  n->watchdog ? ", watchdog handed on" : "");
        return 0;
}

void sdnotify_child(const struct sdnotify *n)
{
        char pid[24];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        if (n->relay_name[0])
                setenv("NOTIFY_SOCKET", n->relay_name, 1);
        if (n->watchdog)
                setenv("WATCHDOG_PID", pid, 1);
        if (n->listen_fds > 0) {
                setenv("LISTEN_PID", pid, 1);
                for (int fd = 3; fd < 3 + n->listen_fds; fd++)
                        (void)fcntl(fd, F_SETFD, 0);
        }
}

/* One datagram to systemd, with fds passed along (FDSTORE=1). */
static int send_up(const struct sdnotify *n, const char *text, const int *fds, size_t n_fds)
{
        struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * MAX_PASSED_FDS)];
        } c;
        struct msghdr mh = { .msg_name = (void *)&n->up_addr, .msg_namelen = n->up_len, .msg_iov = &iov, .msg_iovlen = 1 };
        if (n_fds) {
                memset(&c, 0, sizeof c);
                mh.msg_control = c.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        return sendmsg(n->up_fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void send_status(struct sdnotify *n, usec_t now)
{
        char msg[512];
        if (n->child_status[0] && n->memrun_status[0])
                snprintf(msg, sizeof msg, "STATUS=%s (%s)", n->child_status, n->memrun_status);
        else if (n->child_status[0])
                snprintf(msg, sizeof msg, "STATUS=%s", n->child_status);
        else
                snprintf(msg, sizeof msg, "STATUS=%s", n->memrun_status);
        if (send_up(n, msg, NULL, 0) == 0)
                n->status_t = now;
}

void sdnotify_dispatch(struct sdnotify *n, usec_t now, bool (*inside)(void *ctx, pid_t pid), void *ctx)
{
        for (int round = 0; round < 64; round++) {
                char buf[4096], out[4096], status[256];
                union {
                        struct cmsghdr h;
                        char b[CMSG_SPACE(sizeof(int) * MAX_PASSED_FDS) + CMSG_SPACE(sizeof(struct ucred))];
                } c;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof c.b };
                ssize_t len = recvmsg(n->relay_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                if (len < 0)
                        return; /* EAGAIN: all read */
                int fds[MAX_PASSED_FDS];
                size_t n_fds = 0;
                pid_t sender = 0;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
                            cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                                struct ucred uc;
                                memcpy(&uc, CMSG_DATA(cm), sizeof uc);
                                sender = uc.pid;
                        }
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                                size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t i = 0; i < k; i++) {
                                        int fd;
                                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
                                        if (n_fds < MAX_PASSED_FDS)
                                                fds[n_fds++] = fd;
                                        else
                                                close(fd);
                                }
                        }
                }
                bool has_status;
                int kept = (size_t)len < sizeof buf && !(mh.msg_flags & MSG_CTRUNC) && sender > 0 &&
                                           (!inside || inside(ctx, sender))
                                   ? sdnotify_filter(buf, (size_t)len, out, sizeof out, status, sizeof status, &has_status)
                                   : -EINVAL;
                if (kept < 0) {
                        n->dropped++;
                        log_debug("notify: dropped a datagram from pid %d: not the command's, or not sd_notify text "
                                  "(%zd bytes)", (int)sender, len);
                } else {
                        if (kept > 0 && send_up(n, out, fds, n_fds) == 0)
                                n->relayed++;
                        if (has_status) {
                                snprintf(n->child_status, sizeof n->child_status, "%s", status);
                                send_status(n, now);
                        }
                }
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
        }
}

void sdnotify_status(struct sdnotify *n, const char *level, uint64_t usage, uint64_t limit, usec_t now)
{
        char u[32], l[32], part[sizeof n->memrun_status];
        if (n->up_fd < 0)
                return;
        snprintf(part, sizeof part, "memrun: %s, %s of %s", level, size_format(usage, u, sizeof u),
                 size_format(limit, l, sizeof l));
        bool level_changed = strncmp(part, n->memrun_status, strlen("memrun: ") + strlen(level) + 1) != 0;
        if (!level_changed && n->status_t != USEC_INFINITY && usec_sub(now, n->status_t) < STATUS_EVERY_USEC)
                return;
        memcpy(n->memrun_status, part, sizeof part);
        send_status(n, now);
}

void sdnotify_close(struct sdnotify *n)
{
        close_fd(&n->relay_fd);
        close_fd(&n->up_fd);
}
