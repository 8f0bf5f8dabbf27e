/* supervise: the one event loop while the command runs: signals (forward, reap) and memory events. */
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void supervise_reap(pid_t child, int *status, int *reaped)
{
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                if (p == child) {
                        *status = st;
                        *reaped = 1;
                }
}

static void log_events(struct cg_sandbox *sb, struct cg_stats *last)
{
        struct cg_stats st;
        if (cg_sandbox_stats(sb, &st) < 0)
                return;
        if (st.ev_oom_kill != last->ev_oom_kill || st.ev_oom != last->ev_oom)
                log_debug("memory events: oom %llu, oom_kill %llu (usage %llu)", (unsigned long long)st.ev_oom,
                          (unsigned long long)st.ev_oom_kill, (unsigned long long)st.current);
        else if (st.ev_max != last->ev_max || st.ev_high != last->ev_high)
                log_debug("memory events: high %llu, max %llu (usage %llu)", (unsigned long long)st.ev_high,
                          (unsigned long long)st.ev_max, (unsigned long long)st.current);
        *last = st;
}

int supervise(struct cg_sandbox *sb, int sigfd, pid_t child, int *ret_status)
{
        _cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = sigfd };
        struct cg_stats last = {};
        int reaped = 0, status = 0;

        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sigfd, &ev) < 0)
                return -errno;
        if (sb->events_fd >= 0) {
                /* kernfs files always poll readable; only PRI means "changed". */
                ev = (struct epoll_event){ .events = sb->mode == CG_V2 ? EPOLLPRI : EPOLLIN,
                                           .data.fd = sb->events_fd };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, sb->events_fd, &ev) < 0)
                        return -errno;
        }
        (void)cg_sandbox_stats(sb, &last);
        /* Without memory.peak the peak is sampled; with it, nothing wakes us but events. */
        int timeout = last.has_peak ? -1 : 100;

        /* The child may have exited before we got here. */
        supervise_reap(child, &status, &reaped);
        while (!reaped) {
                struct epoll_event evs[4];
                int n = epoll_wait(ep, evs, 4, timeout);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        (void)cg_sandbox_stats(sb, &last);
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.fd == sb->events_fd) {
                                if (cg_sandbox_event(sb) > 0)
                                        log_events(sb, &last);
                                continue;
                        }
                        struct signalfd_siginfo si;
                        while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                                int sig = (int)si.ssi_signo;
                                if (sig == SIGCHLD)
                                        continue;
                                /* A terminal sends INT/QUIT/WINCH/HUP to the whole foreground group, the
                                 * command included: forwarding those would deliver them twice. */
                                if (si.ssi_code == SI_KERNEL) {
                                        log_debug("%s from the terminal reached the command directly",
                                                  sigdescr_np(sig));
                                        continue;
                                }
                                log_debug("forwarding %s to pid %d", sigabbrev_np(sig), (int)child);
                                kill(child, sig);
                        }
                        supervise_reap(child, &status, &reaped);
                }
        }
        *ret_status = status;
        return 0;
}
