/* supervisor: a run from placement to exit status (supervisor.h): setup, the event core until the
 * command is reaped, the post-mortem, teardown whatever stage was reached, and what is said. */
#include "supervise/supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/registry.h"
#include "config/size.h"
#include "kernel/kmsg.h"
#include "kernel/proc.h"
#include "kernel/psi.h"
#include "log.h"
#include "supervise/preload.h"
#include "supervise/spawn.h"
#include "util.h"

#ifndef MEMRUN_LIBDIR
#define MEMRUN_LIBDIR "/usr/local/lib/memrun"
#endif

/* --- the governor's way to the program: the limiter server's clients, and the programs watching
 * memrun's pressure socket (psrv.h), which hear a pulse and never answer: what a pulse gave back
 * is the sandbox's usage drop over the round (PSRV_ROUND_USEC): from the usage the ask was made at
 * to the lowest sample in the round. --- */

#define PSRV_ROUND_USEC PSRV_PULSE_GAP_USEC
#define TRIM_OR_COLLECT (ACTION_MASK(ACTION_TRIM) | ACTION_MASK(ACTION_COLLECT))

static int limiter_broadcast(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage,
                             uint32_t *ret_seq)
{
        struct supervisor *s = ctx;
        int n = 0;
        if (s->endpoint[0])
                n = lsrv_broadcast(&s->lsrv, level, actions, goal, usage, ret_seq);
        if (n >= 0 && (actions & TRIM_OR_COLLECT))
                n += (int)psrv_pulse(&s->psrv, now_usec());
        return n;
}

static int limiter_ask(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage, uint32_t *ret_seq)
{
        struct supervisor *s = ctx;
        int n = 0;
        if (s->endpoint[0])
                n = lsrv_ask(&s->lsrv, level, actions, goal, usage, ret_seq);
        if (n >= 0)
                n += (int)jvm_ask(&s->jvm, actions, goal, level, now_usec());
        if (n >= 0 && !s->pw_round.out && (actions & TRIM_OR_COLLECT)) {
                usec_t now = now_usec();
                unsigned told = psrv_pulse(&s->psrv, now);
                if (told) {
                        s->pw_round.out = true;
                        s->pw_round.sent = now;
                        s->pw_round.usage = s->pw_round.low = usage;
                        s->pw_round.goal = goal;
                        s->pw_round.action = (enum action_type)__builtin_ctz(actions & TRIM_OR_COLLECT);
                        n += (int)told;
                }
        }
        return n;
}

static void limiter_state(void *ctx, usec_t timeout, unsigned *ret_clients, uint64_t *ret_outstanding,
                          unsigned *ret_askable)
{
        struct supervisor *s = ctx;
        *ret_clients = *ret_askable = 0;
        *ret_outstanding = 0;
        if (s->endpoint[0]) {
                lsrv_ask_state(&s->lsrv, timeout, ret_outstanding, ret_askable);
                *ret_clients = s->lsrv.st.clients;
        }
        unsigned pw = s->psrv.st.clients;
        *ret_clients += pw;
        if (s->pw_round.out)
                *ret_outstanding += s->pw_round.goal;
        else
                *ret_askable += pw;
        usec_t now = now_usec();
        jvm_scan(&s->jvm, now);
        *ret_clients += jvm_count(&s->jvm);
        *ret_askable += jvm_askable(&s->jvm, now);
        if (s->jvm.out)
                *ret_outstanding += s->jvm.goal;
}

static void jvm_round(void *userdata, uint64_t goal, uint64_t freed, usec_t latency)
{
        struct supervisor *s = userdata;
        if (s->act_ready) {
                s->act.freed_total += freed;
                actions_round(&s->act, goal, freed, false, latency);
        }
}

static void limiter_soft(void *ctx, uint64_t soft)
{
        struct supervisor *s = ctx;
        lsrv_set_limits(&s->lsrv, s->lsrv.limit, soft);
}

void supervisor_pressure_settle(struct supervisor *s, uint64_t usage, usec_t now)
{
        if (!s->pw_round.out)
                return;
        /* The lowest usage seen in the round: the program gives back at once and may allocate
         * again before the round ends (samples come every MONITOR_HOLD_USEC while above the setpoint). */
        if (usage < s->pw_round.low)
                s->pw_round.low = usage;
        if (usec_sub(now, s->pw_round.sent) < PSRV_ROUND_USEC)
                return;
        uint64_t freed = s->pw_round.usage > s->pw_round.low ? s->pw_round.usage - s->pw_round.low : 0;
        s->pw_round.out = false;
        s->log.pw.freed += freed;
        s->log.agg[s->pw_round.action].freed += freed;
        if (s->act_ready) {
                s->act.freed_total += freed;
                actions_round(&s->act, s->pw_round.goal, freed, false, usec_sub(now, s->pw_round.sent));
        }
}

static void limiter_round(const struct lsrv_round *r, void *userdata)
{
        struct supervisor *s = userdata;
        if (s->act_ready)
                actions_round(&s->act, r->goal, r->freed, r->deferred, r->latency);
}

static void limiter_result(const struct lsrv_result *r, void *userdata)
{
        struct supervisor *s = userdata;
        if (s->act_ready)
                actions_limiter_result(&s->act, r->seq, r->action, r->freed, r->usec);
}

static void on_limiter(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct supervisor *s = userdata;
        (void)l;
        (void)fd;
        (void)events;
        uint64_t rounds = s->log.rounds;
        (void)lsrv_dispatch(&s->lsrv);
        /* A reply while above the setpoint: ask again soon, paced, never in a tight loop. */
        if (s->log.rounds != rounds && s->act.last.setpoint != SIZE_MAX_VALUE &&
            s->mon.last.usage > s->act.last.setpoint)
                monitor_soon(s);
}

static void limiter_start(struct supervisor *s)
{
        int r = lsrv_open(&s->lsrv, s->cg.h.mode, s->cg.sb.path, s->plan->proc_root, s->endpoint, sizeof s->endpoint);
        if (r < 0) {
                log_warn_errno(r, "cannot open the limiter endpoint (%m): trim/collect/shed reach no one");
                s->endpoint[0] = '\0';
                return;
        }
        lsrv_set_limits(&s->lsrv, s->limits.hard, s->limits.soft);
        lsrv_on_result(&s->lsrv, limiter_result, s);
        lsrv_on_round(&s->lsrv, limiter_round, s);
}

/* --- sd_notify: only the command's own processes speak for it --- */

static bool notify_sender_ok(void *ctx, pid_t pid)
{
        return supervisor_contains(ctx, pid) == 1;
}

static void on_notify(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct supervisor *s = userdata;
        (void)l;
        (void)fd;
        (void)events;
        sdnotify_dispatch(&s->notify, now_usec(), notify_sender_ok, s);
}

int supervisor_contains(const struct supervisor *s, pid_t pid)
{
        if (s->proc_fd < 0 || !s->backend)
                return -EBADF;
        return s->backend->contains(&s->cg, s->proc_fd, pid);
}

/* --- the limits --- */

/* How long a lowering waits for usage to come under the new hard limit before writing it anyway. */
#define LIMITS_LOWER_WAIT_USEC (10 * USEC_PER_SEC)
/* How long the run's end waits for a lowering's child to finish its write and answer memrunctl. */
#define LIMITS_TEARDOWN_WAIT_USEC USEC_PER_SEC

/* Limits in force from now on in memrun's own state and everything derived from it, and said. */
static void limits_commit(struct supervisor *s, const struct limits *old, const struct limits *lim, const char *who,
                          const char *how)
{
        char a[32], b[32], c[32], d[32];
        s->limits = *lim;
        s->eng.limit = lim->hard;
        s->act.limit = lim->hard;
        s->act.soft = s->act.soft_configured = lim->soft;
        s->act.gov.limit = lim->hard;
        s->act.lifted = false;
        s->log.high_final = lim->soft;
        lsrv_set_limits(&s->lsrv, lim->hard, lim->soft);
        jvm_set_soft(&s->jvm, lim->soft);
        struct report_action *e = report_log_action(&s->log, usec_sub(now_usec(), s->t0), "set-limit", s->eng.cur);
        size_format(old->hard, a, sizeof a);
        size_format(lim->hard, b, sizeof b);
        size_format(old->soft, c, sizeof c);
        size_format(lim->soft, d, sizeof d);
        if (e)
                snprintf(e->detail, sizeof e->detail, "%.12s: limit %.12s -> %.12s, soft %.12s -> %.12s%s", who, a, b,
                         c, d, how);
        log_info("%s set: limit %s -> %s, soft %s -> %s%s", who, a, b, c, d, how);
        monitor_soon(s);
}

/* In the lowering's child: the soft limit at once (v2's memory.high reclaims in the write), then the
 * hard limit once usage is under it (the program, asked to trim toward the new soft limit, gets
 * there) or LIMITS_LOWER_WAIT_USEC on: then the kernel decides (v2 reclaims and OOM-kills what it
 * cannot reclaim; v1 refuses with EBUSY while usage stays above). 0 or -errno. */
static int lower_limits(struct supervisor *s, const struct limits *old, const struct limits *lim)
{
        struct limits first = *lim;
        first.hard = old->hard > lim->hard ? old->hard : lim->hard;
        first.swap = old->swap;
        /* Never above the hard limit in force: following a lowering someone made at cgroupfs
         * (check_limit), writing the old one back for the wait would undo it for that while. */
        uint64_t cur;
        if (cg_sandbox_hard_limit(&s->cg.sb, &cur) == 0 && cur >= lim->hard && cur < first.hard)
                first.hard = cur;
        int r = s->backend->set_limits(&s->cg, &first);
        if (r < 0)
                return r;
        usec_t end = usec_add_sat(now_usec(), LIMITS_LOWER_WAIT_USEC);
        for (;;) {
                uint64_t usage = 0;
                bool under = cg_sandbox_usage(&s->cg.sb, &usage) == 0 && usage <= lim->hard;
                if (under || now_usec() >= end) {
                        r = s->backend->set_limits(&s->cg, lim);
                        if (r != -EBUSY || now_usec() >= end)
                                return r;
                }
                struct timespec ts = usec_to_timespec(20 * USEC_PER_MSEC);
                nanosleep(&ts, NULL);
        }
}

int supervisor_set_limits(struct supervisor *s, const struct limits *lim, const char *who, char *why,
                          size_t why_size)
{
        struct limits old = s->limits;
        if (s->limits_pid > 0) {
                snprintf(why, why_size, "the previous change is still being applied (the kernel is reclaiming)");
                return -EBUSY;
        }
        /* Lowering a limit below usage makes the kernel reclaim inside the write (memory.high and
         * memory.max in mm/memcontrol.c; limit_in_bytes on v1), for as long as reclaim takes: the
         * write goes to a child, as memory.reclaim does, and the loop goes on. memrun holds the new
         * limits at once (the clients are asked to trim toward them, which helps the kernel);
         * should the kernel refuse, the old ones come back. */
        if (lim->hard < old.hard || lim->soft < old.soft) {
                pid_t pid = fork();
                if (pid < 0) {
                        snprintf(why, why_size, "cannot fork to apply it: %s", strerror(errno));
                        return -errno;
                }
                if (pid == 0) {
                        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                        _exit(-lower_limits(s, &old, lim));
                }
                s->limits_pid = pid;
                s->limits_old = old;
                s->limits_who = who;
                s->limit_changes++;
                limits_commit(s, &old, lim, who, " (lowering)");
                log_debug("%s: lowering applied by pid %d", who, (int)pid);
                return 1;
        }
        int r = s->backend->set_limits(&s->cg, lim);
        if (r < 0) {
                snprintf(why, why_size, "the kernel refused it: %s", strerror(-r));
                (void)s->backend->set_limits(&s->cg, &old);
                return r;
        }
        s->limit_changes++;
        limits_commit(s, &old, lim, who, "");
        return 0;
}

void supervisor_limits_applied(struct supervisor *s, int st)
{
        char why[256];
        int r = WIFEXITED(st) ? -WEXITSTATUS(st) : -EINTR;
        s->limits_pid = 0;
        if (r == 0) {
                log_debug("%s: the lowering is in force", s->limits_who);
                ctl_reply_pending(&s->ctl, 0, "");
                return;
        }
        struct limits failed = s->limits, back = s->limits_old;
        const char *how = "the previous limits are back";
        bool restore = true;
        if (s->limits_who && strcmp(s->limits_who, "cgroupfs") == 0) {
                /* Following a hard limit someone else lowered (check_limit): it was in force before
                 * memrun followed it and is not memrun's to undo. Writing the old one back would undo
                 * the operator's change for good (memrun would then see its own limit again). Only the
                 * soft limit comes back, if it fits under the limit found; if it does not, nothing of
                 * memrun's is put back (and the write the kernel refused is not tried again). */
                back.hard = failed.hard;
                back.swap = failed.swap;
                if (back.soft > back.hard)
                        back.soft = failed.soft;
                restore = back.soft != failed.soft;
                how = restore ? "the previous soft limit is back, the hard limit stays as found"
                              : "the limits found stay";
        }
        snprintf(why, sizeof why, "the kernel refused it: %s; %s", strerror(-r), how);
        if (restore) {
                (void)s->backend->set_limits(&s->cg, &back);
                limits_commit(s, &failed, &back, s->limits_who, " (restored)");
        }
        log_warn("%s set: %s", s->limits_who, why);
        ctl_reply_pending(&s->ctl, r, why);
}

/* --- the command and the signals memrun receives --- */

/* Reap exited children without blocking: the main child's status, actions' children, the rest. */
static void reap(struct supervisor *s)
{
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                if (pid == s->child && !s->reaped) {
                        s->status = st;
                        s->reaped = true;
                        continue;
                }
                if (pid == s->limits_pid) {
                        supervisor_limits_applied(s, st);
                        continue;
                }
                if (s->act_ready && jvm_reaped(&s->jvm, pid, st, now_usec()))
                        continue;
                if (s->act_ready) {
                        uint64_t usage = 0;
                        (void)cg_sandbox_usage(&s->cg.sb, &usage);
                        (void)actions_reaped(&s->act, pid, st, usage, now_usec());
                }
        }
}

static void forward(struct supervisor *s, const struct signalfd_siginfo *si)
{
        char sn[24];
        int sig = (int)si->ssi_signo;
        /* A terminal signals the whole foreground group, the command included: forwarding would
         * deliver those twice. */
        if (si->ssi_code == SI_KERNEL) {
                log_debug("%s from the terminal reached the command directly", signal_name(sig, sn, sizeof sn));
        } else if (s->reaped) {
                /* --wait-all, the command gone: the sandbox's processes get it */
                log_debug("forwarding %s to the sandbox", signal_name(sig, sn, sizeof sn));
                (void)cg_sandbox_signal(&s->cg.sb, sig);
        } else {
                log_debug("forwarding %s to pid %d", signal_name(sig, sn, sizeof sn), (int)s->child);
                kill(s->child, sig);
        }
}

static void on_signal(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct supervisor *s = userdata;
        struct signalfd_siginfo si;
        (void)l;
        (void)events;
        while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCONT) /* memrun's own stop ended: not the command's business */
                        monitor_continued(s);
                else if (si.ssi_signo != SIGCHLD)
                        forward(s, &si);
        }
        reap(s);
}

static int signals_open(struct supervisor *s)
{
        sigset_t mask;
        sigemptyset(&mask);
        for (const int *g = (const int[]){ SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, 0 };
             *g; g++)
                sigaddset(&mask, *g);
        /* SIGPIPE blocked, not read: a --timeline or --report to a closed pipe is an EPIPE to say,
         * not memrun's death. The command gets the original mask back before exec. */
        sigset_t block = mask;
        sigaddset(&block, SIGPIPE);
        sigprocmask(SIG_BLOCK, &block, &s->orig);
        s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->sigfd < 0)
                return log_error_errno(-errno, "signalfd: %m");
        return 0;
}

/* Kill what is left of the sandbox and wait until it is empty, reaping what we can. */
static void empty_sandbox(struct supervisor *s)
{
        (void)cg_sandbox_kill(&s->cg.sb);
        for (int i = 0; i < 1000; i++) {
                reap(s);
                if (!cg_sandbox_populated(&s->cg.sb))
                        return;
                if (i % 100 == 99)
                        (void)cg_sandbox_kill(&s->cg.sb);
                struct timespec ts = usec_to_timespec(i < 50 ? USEC_PER_MSEC : 10 * USEC_PER_MSEC);
                nanosleep(&ts, NULL);
        }
        log_warn("processes remain in %s after SIGKILL (stuck in the kernel?)", s->cg.sb.path);
}

/* --- setup --- */

static void on_pressure(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct supervisor *s = userdata;
        (void)l;
        if (fd == psrv_fd(&s->psrv))
                psrv_dispatch(&s->psrv);
        else
                psrv_trigger(&s->psrv, fd, events); /* a client's kernel trigger (loop_add_member) */
}

static int watch_trigger(void *ctx, int fd, bool on)
{
        struct supervisor *s = ctx;
        if (!on) {
                loop_remove_member(&s->loop, fd);
                return 0;
        }
        return loop_add_member(&s->loop, s->psrv_src, fd, EPOLLPRI);
}

/* Where memrun's pressure socket goes: a private directory in the runtime directory (registry.h:
 * /run/memrun as root), "pressure.NAME.XXXXXX". */
static const char *pressure_prefix(char *buf, size_t size)
{
        char dir[PATH_MAX];
        int r = registry_dir(dir, sizeof dir);
        if (r < 0) {
                log_debug_errno(r, "runtime directory: %m");
                return NULL;
        }
        int n = snprintf(buf, size, "%s/pressure.", dir);
        return n > 0 && (size_t)n < size ? buf : NULL;
}

/* systemd's memory pressure protocol (docs/MEMORY_PRESSURE.md): sd-event programs watch what
 * MEMORY_PRESSURE_WATCH names. With --pressure-watch memrun (auto: when the policy holds the soft
 * limit), that is memrun's socket, which relays the kernel's pressure and pulses on every governor
 * ask; otherwise the kernel's pressure file, on which they arm this trigger themselves. */
static void pressure_env(struct supervisor *s)
{
        const struct policy *p = s->p;
        const struct options *o = &s->plan->o;
        char kernel[PATH_MAX];
        if (cg_sandbox_pressure_path(&s->cg.h, &s->cg.sb, kernel, sizeof kernel) < 0)
                snprintf(kernel, sizeof kernel, "/proc/pressure/memory");
        snprintf(s->watch, sizeof s->watch, "%s", kernel);
        snprintf(s->pw_kernel, sizeof s->pw_kernel, "%s", kernel);
        s->log.pw.mode = "kernel";
        if (o->pressure_watch == PRESSURE_WATCH_MEMRUN || (o->pressure_watch == PRESSURE_WATCH_AUTO && p->hold)) {
                char pb[PATH_MAX];
                const char *prefix = pressure_prefix(pb, sizeof pb);
                int r = !prefix ? -ENAMETOOLONG : psrv_open(&s->psrv, prefix, s->plan->name, s->cg.h.mode, s->cg.sb.path,
                                  s->plan->proc_root, access(kernel, W_OK) == 0 ? kernel : NULL);
                if (r == 0 && (r = loop_add(&s->loop, psrv_fd(&s->psrv), EPOLLIN, on_pressure, s, "pressure watch")) < 0)
                        psrv_close(&s->psrv);
                if (r >= 0) {
                        s->psrv_src = r;
                        psrv_watch_triggers(&s->psrv, watch_trigger, s);
                }
                if (r < 0) {
                        log_msg_errno(o->pressure_watch == PRESSURE_WATCH_MEMRUN ? LOG_WARN : LOG_DEBUG, r,
                                      "cannot serve the pressure watch socket (%m): MEMORY_PRESSURE_WATCH names %s",
                                      kernel);
                } else {
                        snprintf(s->watch, sizeof s->watch, "%s", s->psrv.path);
                        s->log.pw.mode = "memrun";
                }
        }
        s->log.pw.path = s->watch;
        /* The child may lack CAP_SYS_RESOURCE: a window the kernel takes from anyone. */
        uint64_t window = psi_window_fix(p->psi_window_usec, false);
        uint32_t ppm = p->levels[LEVEL_MODERATE].defined && p->levels[LEVEL_MODERATE].psi_some_ppm
                               ? p->levels[LEVEL_MODERATE].psi_some_ppm
                               : 100000;
        char trig[64];
        int n = snprintf(trig, sizeof trig, "some %llu %llu",
                     (unsigned long long)((unsigned __int128)window * ppm / PCT_ONE), (unsigned long long)window);
        if (sizeof s->write64 >= 4 * ((size_t)n + 1 + 2) / 3 + 1)
                base64_encode(trig, (size_t)n + 1, s->write64); /* with its NUL, as the kernel wants it */
        else
                s->write64[0] = '\0';
}

/* Can uid:gid search every directory down to path's parent? Pure but for stat(2). */
static bool reachable_by(const char *path, uid_t uid, gid_t gid)
{
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s", path);
        for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
                *slash = '\0';
                struct stat st;
                if (stat(p[0] ? p : "/", &st) < 0)
                        return false;
                mode_t need = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
                if (!(st.st_mode & need))
                        return false;
        }
        return true;
}

/* --user: the socket's directory becomes the dropped user's, and the runtime directory (0700)
 * 0711, so it passes through to its own and can list nothing. Where it still cannot reach the
 * socket (a private ancestor), MEMORY_PRESSURE_WATCH names the kernel's file after all. */
static void pressure_give(struct supervisor *s)
{
        char dir[PATH_MAX];
        struct stat st;
        snprintf(dir, sizeof dir, "%s", s->psrv.dir);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
                *slash = '\0';
        if (stat(dir, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 0111) != 0111)
                (void)chmod(dir, (st.st_mode & 07777) | 0111);
        int r = psrv_chown(&s->psrv, s->confine.uid, s->confine.gid);
        if (r == 0 && reachable_by(s->psrv.path, s->confine.uid, s->confine.gid))
                return;
        log_warn("%s cannot reach the pressure watch socket %s (%s): MEMORY_PRESSURE_WATCH names the kernel's file",
                 s->confine.user, s->psrv.path, r < 0 ? strerror(-r) : "a directory on the way is closed to it");
        loop_remove(&s->loop, psrv_fd(&s->psrv));
        psrv_close(&s->psrv);
        snprintf(s->watch, sizeof s->watch, "%s", s->pw_kernel);
        s->log.pw.mode = "kernel";
}

/* --sandbox, --user: memrun's socket becomes the dropped user's; where the watch is the kernel's
 * memory.pressure (programs arm a trigger on it), it stays writable and a dropped user owns it. */
static void confine_prepare_pressure(struct supervisor *s)
{
        if (s->confine.drop_user && s->psrv.listen_fd >= 0)
                pressure_give(s);
        if (s->confine.mount_ns && strncmp(s->watch, s->cg.h.root, strlen(s->cg.h.root)) == 0)
                snprintf(s->confine.keep_rw, sizeof s->confine.keep_rw, "%s", s->watch);
        if (s->confine.drop_user && cg_sandbox_writable(&s->cg.sb)) {
                int r = cg_sandbox_chown_pressure(&s->cg.sb, s->confine.uid, s->confine.gid);
                if (r < 0 && r != -ENOENT)
                        log_debug_errno(r, "cannot give memory.pressure to %s: %m", s->confine.user);
        }
        char what[512];
        confine_describe(&s->confine, what, sizeof what);
        log_debug("%s", what);
}

static const char *env_get(const char *name)
{
        return getenv(name);
}

static void command_env(struct supervisor *s)
{
        const struct options *o = &s->plan->o;
        if (o->preload) {
                char lib[PATH_MAX];
                int r = preload_find("/proc/self/exe", MEMRUN_LIBDIR, lib, sizeof lib);
                if (r < 0)
                        log_warn_errno(r, "--preload: libmemlimit-preload.so not found beside memrun or in %s (%m): "
                                          "running the command without it", MEMRUN_LIBDIR);
                else if (preload_value(o->argv[0], lib, getenv("LD_PRELOAD"), s->preload, sizeof s->preload) > 0)
                        log_debug("LD_PRELOAD=%s", s->preload);
        }
        const char *pairs[][2] = { { "MEMORY_PRESSURE_WATCH", s->watch }, { "MEMORY_PRESSURE_WRITE", s->write64 },
                                   { "MEMRUN_LIMITER", s->endpoint }, { "LD_PRELOAD", s->preload } };
        size_t ne = 0;
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++)
                if (i < 2 || pairs[i][1][0]) {
                        s->env[ne++] = pairs[i][0];
                        s->env[ne++] = pairs[i][1];
                }
        s->env[ne] = NULL;
        if (!o->no_hints)
                hints_build(s->limits.soft, env_get, &s->hints);
        for (unsigned i = 0; i < s->hints.n; i++)
                log_debug("hint: %s=%s", s->hints.v[i].name, s->hints.v[i].value);
}

/* The sandbox's cgroup through its backend, with the limits it puts in force. */
static int place(struct supervisor *s)
{
        const struct options *o = &s->plan->o;
        char what[300];
        snprintf(what, sizeof what, "memrun %s: %s", s->plan->name, o->argv[0]);
        struct cg_request req = {
                .cgroup_root = s->plan->cgroup_root, .proc_root = s->plan->proc_root, .explicit_parent = o->cgroup,
                .name = s->plan->name, .what = what, .in_place = o->in_place, .soft_given = o->soft_set,
        };
        s->limits = (struct limits){ .hard = o->limit, .soft = o->soft, .swap = o->swap, .ceiling = SIZE_MAX_VALUE,
                                     .soft_from = o->soft_set ? LIMITS_SOFT_GIVEN : LIMITS_SOFT_DEFAULT };
        s->backend = cg_backend_select(&s->cg, &req);
        if (!s->backend)
                return -EINVAL;
        /* Before anything is made: a user that does not exist leaves nothing behind. */
        const struct sandbox_spec *spec = &s->p->sandbox;
        s->confined = spec->enabled || spec->user[0];
        if (s->confined && confine_prepare(spec, s->plan->proc_root, NULL, &s->confine) < 0)
                return -EINVAL;
        int r = s->backend->open(&s->cg, &req, &s->limits);
        if (r < 0)
                return r;
        r = cg_sandbox_watch(&s->cg.sb);
        if (r < 0)
                log_msg_errno(!cg_sandbox_writable(&s->cg.sb) && r == -EROFS ? LOG_DEBUG : LOG_WARN, r,
                              "cannot watch memory events of %s: %m (OOM kills are still read at exit)", s->cg.sb.path);
        return 0;
}

/* The event core and the sources that exist before the command does. */
static int sources_start(struct supervisor *s)
{
        int r = loop_open(&s->loop);
        if (r < 0 || (r = loop_add(&s->loop, s->sigfd, EPOLLIN, on_signal, s, "signals")) < 0)
                return log_error_errno(r, "event loop: %m");
        if ((r = status_start(s)) < 0)
                return r;
        limiter_start(s);
        if (s->endpoint[0])
                (void)loop_add(&s->loop, lsrv_fd(&s->lsrv), EPOLLIN, on_limiter, s, "limiter server");
        if (s->notify.up_fd >= 0 && s->notify.relay_fd >= 0)
                (void)loop_add(&s->loop, s->notify.relay_fd, EPOLLIN, on_notify, s, "sd_notify relay");
        return 0;
}

/* Place, create, limit, watch, open the limiter, spawn. 0 when the command runs; else the exit
 * status to give (125, or 126/127 from spawn), with what was made left for teardown. */
static int setup(struct supervisor *s)
{
        if (signals_open(s) < 0)
                return EXIT_MEMRUN;
        (void)sdnotify_open(&s->notify);
        s->proc_fd = proc_open_root(s->plan->proc_root);
        if (place(s) < 0 || sources_start(s) < 0)
                return EXIT_MEMRUN;
        pressure_env(s);
        if (s->confined)
                confine_prepare_pressure(s);
        command_env(s);
        s->kfd = kmsg_open(s->plan->dev_root);
        if (s->kfd < 0)
                log_debug_errno(s->kfd, "/dev/kmsg not readable (%m): OOM victims will not be named");
        /* Orphaned grandchildren come to us, so they are reaped and the cgroup can empty. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        struct spawn_req req = {
                .argv = s->plan->o.argv, .sandbox = &s->cg.sb, .limit = s->limits.hard, .soft = s->limits.soft,
                .hints = &s->hints, .child_mask = &s->orig, .env = s->env,
                .confine = s->confined ? &s->confine : NULL, .notify = &s->notify,
        };
        s->t0 = now_usec();
        int r = spawn_child(&req, &s->child);
        if (r > 0) {
                s->child = 0;
                return r;
        }
        return 0;
}

/* --- supervise, and after --- */

/* The command runs: the loop until it is reaped (--wait-all: and the sandbox is empty). */
static void supervise(struct supervisor *s)
{
        timeline_open(s);
        level_engine_init(&s->eng, s->p, s->limits.hard);
        stall_init(&s->stall, s->p);
        actions_init(&s->act, s->p, &s->cg.sb, s->child, s->limits.hard, s->limits.soft, &s->log, s->t0);
        s->act.proc_fd = proc_open_root(s->plan->proc_root);
        jvm_init(&s->jvm, s->p->jvm && s->p->hold, s->act.proc_fd, &s->cg.sb, &s->log, s->t0, jvm_round, s);
        jvm_set_soft(&s->jvm, s->limits.soft);
        if (s->endpoint[0] || s->psrv.listen_fd >= 0 || s->jvm.enabled)
                s->act.limiter = (struct limiter_ops){ limiter_broadcast, limiter_ask, limiter_state, limiter_soft, s };
        s->act_ready = true;
        int r = monitor_start(s);
        reap(s);
        if (!s->reaped && r == 0)
                monitor_sample(s);
        while (r >= 0 && (!s->reaped || (s->plan->o.wait_all && cg_sandbox_populated(&s->cg.sb))))
                r = loop_dispatch(&s->loop, USEC_INFINITY);
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m; killing the sandbox");
                (void)cg_sandbox_kill(&s->cg.sb);
                while (!s->reaped && waitpid(s->child, &s->status, 0) < 0 && errno == EINTR)
                        ;
                s->reaped = true;
        }
        if (s->plan->o.metrics)
                status_write_metrics(s, now_usec());
        if (s->tl_fd >= 0) {
                /* A closing row: where usage stood when the command ended (its peak may lie between
                 * samples; the report has memory.peak). */
                struct level_sample fin = s->mon.last;
                fin.t = now_usec();
                if (cg_sandbox_usage(&s->cg.sb, &fin.usage) == 0)
                        timeline_row(s, fin.t, &fin);
        }
        jvm_shutdown(&s->jvm);
        jvm_report(&s->jvm, &s->log);
        actions_shutdown(&s->act, now_usec());
        close_fd(&s->act.proc_fd);
        monitor_stop(s);
}

/* What happened: the sandbox's counters, emptied, the OOM victim, the exit status. */
static void post_mortem(struct supervisor *s)
{
        const struct options *o = &s->plan->o;
        struct report *rep = &s->rep;
        *rep = (struct report){
                .argv = o->argv, .duration = usec_sub(now_usec(), s->t0), .mode = s->cg.h.mode,
                .cgroup_path = s->cg.sb.path,
                .max = s->limits.hard, .high = s->limits.soft, .swap_max = s->limits.swap, .log = &s->log,
                .confine = s->confined ? &s->confine : NULL, .hints = &s->hints,
        };
        (void)cg_sandbox_stats(&s->cg.sb, &rep->stats);
        empty_sandbox(s);
        s->emptied = true;
        /* Counters may have moved while the rest of the tree died (group OOM kill in flight). */
        struct cg_stats late;
        if (cg_sandbox_stats(&s->cg.sb, &late) == 0) {
                rep->stats.ev_oom_kill = late.ev_oom_kill;
                rep->stats.ev_oom_group_kill = late.ev_oom_group_kill;
                rep->stats.ev_oom = late.ev_oom;
                if (late.peak > rep->stats.peak)
                        rep->stats.peak = late.peak;
        }
        s->sandbox_oom = rep->stats.ev_oom_kill > 0 || rep->stats.ev_oom_group_kill > 0;
        if (s->sandbox_oom && s->kfd >= 0)
                rep->victim_known =
                        kmsg_wait_oom(s->kfd, s->cg.sb.path, s->child, 500 * USEC_PER_MSEC, &rep->victim) > 0;
        if (WIFSIGNALED(s->status)) {
                rep->signal = WTERMSIG(s->status);
                rep->exit_code = 128 + rep->signal;
                rep->oom_killed = rep->signal == SIGKILL && s->sandbox_oom;
        } else {
                rep->exit_code = WEXITSTATUS(s->status);
        }
        /* --wait-all: the daemon the command left behind is what ran; its OOM kill is the run's. */
        if (o->wait_all && s->sandbox_oom && !rep->oom_killed) {
                rep->oom_killed = true;
                rep->exit_code = EXIT_OOM;
        }
        struct lsrv_stats ls;
        lsrv_stats(&s->lsrv, &ls);
        s->log.limiter_clients = (unsigned)ls.clients_ever;
        s->log.limiter_deferred = ls.asks_deferred;
        s->log.pw.clients = s->psrv.st.clients_ever;
        s->log.pw.triggers = s->psrv.st.triggers;
        s->log.pw.pulses_governor = s->psrv.st.pulses_governor;
        s->log.pw.pulses_kernel = s->psrv.st.pulses_kernel;
}

/* The one way out: whatever the run made is undone, in reverse. */
static void teardown(struct supervisor *s)
{
        if (s->limits_pid > 0) {
                /* Ended or ending (its write OOM-killed the program, which ended the run before the
                 * write returned: in the emulated VM a CI run found it still in the write at the first
                 * look): memrunctl gets the lowering's own answer, not "memrun is ending". Still
                 * waiting for usage after LIMITS_TEARDOWN_WAIT_USEC: the sandbox is going anyway. */
                int st;
                pid_t r;
                usec_t end = usec_add_sat(now_usec(), LIMITS_TEARDOWN_WAIT_USEC);
                while ((r = waitpid(s->limits_pid, &st, WNOHANG)) == 0 && now_usec() < end) {
                        struct timespec ts = usec_to_timespec(10 * USEC_PER_MSEC);
                        nanosleep(&ts, NULL);
                }
                if (r == s->limits_pid) {
                        supervisor_limits_applied(s, st);
                } else {
                        kill(s->limits_pid, SIGKILL);
                        (void)waitpid(s->limits_pid, NULL, 0);
                        s->limits_pid = 0;
                }
        }
        lsrv_close(&s->lsrv);
        psrv_close(&s->psrv);
        if (s->cg.recorded && !s->emptied && s->cg.sb.mem_fd >= 0)
                empty_sandbox(s);
        cg_backend_close(&s->cg);
        loop_close(&s->loop);
        close_fd(&s->kfd);
        timeline_close(s);
        close_fd(&s->sigfd);
        if (s->confined)
                confine_release(&s->confine);
        sdnotify_close(&s->notify);
        ctl_close(&s->ctl);
        httpd_close(&s->http);
        close_fd(&s->proc_fd);
}

/* Say what happened: the OOM line, the summary, the report; the exit status. */
static int emit(const struct supervisor *s)
{
        const struct options *o = &s->plan->o;
        const struct report *rep = &s->rep;
        char warn_prefix[16], info_prefix[16];
        snprintf(warn_prefix, sizeof warn_prefix, "%smemrun", log_journal_prefix(LOG_WARN));
        snprintf(info_prefix, sizeof info_prefix, "%smemrun", log_journal_prefix(LOG_INFO));
        if (rep->oom_killed)
                report_oom_line(stderr, warn_prefix, rep);
        else if (s->sandbox_oom)
                log_warn("the OOM killer ended %s in the sandbox (oom_kill %llu), but %s itself %s %d",
                         rep->victim_known ? rep->victim.comm : "a process",
                         (unsigned long long)rep->stats.ev_oom_kill, o->argv[0],
                         rep->signal ? "died with status" : "exited", rep->exit_code);
        if (o->verbosity >= 0)
                report_summary(stderr, info_prefix, rep);
        /* A lost output is said (at error level: -q does not hide it) and the status stays the
         * command's: what memrun could not write must not hide how the program ended. */
        if (o->report) {
                int r = report_write(o->report, rep);
                if (r < 0)
                        log_error_errno(r, "cannot write report %s: %m; the report is lost", o->report);
        }
        if (o->expect_oom) {
                if (s->sandbox_oom)
                        return 0;
                log_error("--expect-oom: %s was not OOM-killed (%s %d)", o->argv[0],
                          rep->signal ? "status" : "exit status", rep->exit_code);
                return rep->exit_code ? rep->exit_code : 1;
        }
        return rep->exit_code;
}

/* A command ended by TERM, INT or HUP (stopped by systemd, interrupted at a terminal): end memrun
 * by the same signal, so its parent sees what it would have seen of the bare command (a service
 * manager counts these as a clean stop; a shell stops its loop on INT). */
static void pass_signal_up(const struct supervisor *s)
{
        int sig = s->rep.signal;
        if ((sig != SIGTERM && sig != SIGINT && sig != SIGHUP) || s->plan->o.expect_oom || s->rep.oom_killed)
                return;
        sigset_t m;
        fflush(NULL);
        signal(sig, SIG_DFL);
        sigemptyset(&m);
        sigaddset(&m, sig);
        sigprocmask(SIG_UNBLOCK, &m, NULL);
        raise(sig);
}

int supervisor_run(const struct plan *plan)
{
        static struct supervisor S;
        static bool used;
        struct supervisor *s = &S;
        /* Static storage starts zeroed: half a MiB, mostly the report log's and the limiter's fixed
         * tables. Zeroing it again (or assigning a compound literal, built on the stack and copied)
         * touches every page of it, which measurably slows a short launch; only a second run in
         * the same process (the unit tests) needs it. */
        if (used)
                memset(s, 0, sizeof *s);
        used = true;
        s->plan = plan;
        s->p = &plan->policy;
        s->sigfd = s->kfd = s->tl_fd = s->proc_fd = s->http_tfd = -1;
        s->ctl.fd = s->ctl.pending = -1;
        s->loop.ep = -1;
        cg_backend_state_init(&s->cg);
        lsrv_init(&s->lsrv);
        psrv_init(&s->psrv);
        int r = setup(s);
        if (r != 0) {
                teardown(s);
                return r;
        }
        supervise(s);
        post_mortem(s);
        teardown(s);
        r = emit(s);
        pass_signal_up(s);
        return r;
}
