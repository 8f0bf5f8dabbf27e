/* monitor: the one event loop while the command runs. Sources: signalfd (forward, reap), memory
 * events (v2 memory.events / v1 OOM eventfd), PSI triggers, v1 usage thresholds and pressure
 * levels, an adaptive sampling timer, the limiter socket. Each wake-up samples usage and PSI and
 * feeds the level engine; decisions become actions. */
#include "supervise/monitor.h"
#include "control/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/size.h"
#include "supervise/level.h"
#include "log.h"
#include "kernel/proc.h"
#include "kernel/psi.h"
#include "util.h"

#define MAX_TRIGGERS 6
#define V1_REGISTER_AFTER_S 0.02
#define MONITOR_REASK_USEC 5000   /* a reply while above target brings the next sample this close */

enum src { SRC_SIGNAL = 1, SRC_EVENTS, SRC_TIMER, SRC_TRIGGER, SRC_V1_EVENT, SRC_LIMITER, SRC_NOTIFY, SRC_CTL };

struct trigger {
        int fd;
        bool full;
        uint32_t ppm;
        uint64_t window;
        double fired_until;
};

struct monitor {
        const struct monitor_cfg *cfg;
        const struct policy *p;
        struct cg_sandbox *sb;
        pid_t child;
        int ep, tfd, psi_fd;
        bool psi_ok, psi_system;
        struct trigger trig[MAX_TRIGGERS];
        unsigned n_trig;
        struct v1_event {
                int fd;
                const char *file;
                char arg[32];
        } v1[_LEVEL_MAX + 1];
        unsigned n_v1;
        bool v1_pending;
        int psi_dir;              /* where memory.pressure is, for triggers armed later */
        const char *psi_file;
        bool triggers_pending;
        bool sources_ready;       /* PSI and v1 events set up (after the first 100 ms) */
        struct level_sample last; /* for the timeline's closing row */
        struct level_engine eng;
        struct stall_detector stall;
        struct actions act;
        uint64_t ev_high;
        uint64_t iv;              /* current sampling period, usec */
        uint64_t armed_usec;      /* the timer's period as armed (0: not yet) */
        bool predicting;          /* a level has a predict condition (the policy's, fixed) */
        bool stalled_kill;
        double metrics_t;         /* --metrics last written */
        uint64_t in_place_max;    /* --in-place: the enclosing limit, a ceiling for memrunctl set */
        uint64_t limit_changes;
};

void monitor_reap(pid_t child, int *status, int *reaped, struct actions *a, struct cg_sandbox *sb)
{
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                if (pid == child) {
                        *status = st;
                        *reaped = 1;
                        continue;
                }
                if (a) {
                        uint64_t usage = 0;
                        (void)cg_sandbox_usage(sb, &usage);
                        (void)actions_reaped(a, pid, st, usage, now_mono());
                }
        }
}

static int add_fd(struct monitor *m, int fd, uint32_t events, enum src src, uint32_t idx)
{
        struct epoll_event ev = { .events = events, .data.u64 = ((uint64_t)src << 32) | idx };
        return epoll_ctl(m->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static bool levels_use_psi(const struct policy *p)
{
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                if (p->levels[l].defined && (p->levels[l].psi_some_ppm || p->levels[l].psi_full_ppm))
                        return true;
        return false;
}

static bool policy_uses_psi(const struct policy *p)
{
        return levels_use_psi(p) || p->stall_enabled;
}

/* Per-cgroup PSI from the sandbox (v2, or the unified sibling on hybrid); else system-wide. */
static void setup_psi(struct monitor *m)
{
        struct psi_source src;
        if (psi_source_open(m->sb->uni_fd, m->cfg->proc_root, &src) < 0) {
                if (policy_uses_psi(m->p))
                        log_warn("no pressure stall information on this kernel (PSI off: boot with psi=1); "
                                 "psi_some/psi_full conditions never hold");
                return;
        }
        if (src.system && policy_uses_psi(m->p))
                log_warn("no per-cgroup PSI for this sandbox: psi conditions use the system-wide "
                         "/proc/pressure/memory");
        m->psi_system = src.system;
        m->psi_ok = true;
        m->psi_fd = src.fd;
        m->psi_dir = src.dir;
        m->psi_file = src.file;
        m->triggers_pending = true;
}

/* Triggers are armed once the command has outlived its first samples: creating and destroying one
 * each costs an RCU grace period in the kernel (~10-30 ms), which a short command should not pay. */
static void arm_triggers(struct monitor *m)
{
        bool said = false;
        m->triggers_pending = false;
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++) {
                const struct policy_level *pl = &m->p->levels[l];
                if (!pl->defined)
                        continue;
                for (int full = 0; full < 2; full++) {
                        uint32_t ppm = full ? pl->psi_full_ppm : pl->psi_some_ppm;
                        if (!ppm || m->n_trig >= MAX_TRIGGERS)
                                continue;
                        uint64_t win;
                        int fd = psi_trigger_open(m->psi_dir, m->psi_file, full ? "full" : "some", ppm,
                                                  m->p->psi_window_usec, &win);
                        if (fd < 0) {
                                /* in a container's read-only cgroupfs this is expected: sampling is the way */
                                log_msg_errno(m->sb->in_place && fd == -EROFS ? LOG_DEBUG : LOG_WARN, fd,
                                              "cannot arm a PSI trigger on %s (%m): %s avg10 is sampled instead",
                                              m->psi_file, full ? "full" : "some");
                                continue;
                        }
                        if (win != m->p->psi_window_usec && !said) {
                                log_warn("PSI trigger window %.1fs rounded to %.1fs (the kernel's rule without "
                                         "CAP_SYS_RESOURCE: 500ms..10s, multiples of 2s)",
                                         (double)m->p->psi_window_usec / 1e6, (double)win / 1e6);
                                said = true;
                        }
                        struct trigger *t = &m->trig[m->n_trig];
                        *t = (struct trigger){ .fd = fd, .full = full, .ppm = ppm, .window = win, .fired_until = -1 };
                        if (add_fd(m, fd, EPOLLPRI, SRC_TRIGGER, m->n_trig) < 0) {
                                close(fd);
                                continue;
                        }
                        m->n_trig++;
                }
        }
}

/* v1 has no memory.events: usage thresholds at each level's boundary, and the pressure level. The
 * eventfds are ours (in the loop from the start); their registration writes to cgroup.event_control
 * can each block for an RCU grace period, so a helper process makes them: the loop never waits. */
static void setup_v1(struct monitor *m)
{
        if (m->sb->mode == CG_V2)
                return;
        for (int l = LEVEL_MODERATE; l <= _LEVEL_MAX; l++) {
                struct v1_event *ev = &m->v1[m->n_v1];
                if (l < _LEVEL_MAX) {
                        uint64_t thr = level_usage_threshold(&m->eng, (enum level)l);
                        if (thr == SIZE_MAX_VALUE)
                                continue;
                        ev->file = "memory.usage_in_bytes";
                        snprintf(ev->arg, sizeof ev->arg, "%llu", (unsigned long long)thr);
                } else {
                        ev->file = "memory.pressure_level";
                        snprintf(ev->arg, sizeof ev->arg, "medium");
                }
                ev->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (ev->fd < 0)
                        continue;
                if (add_fd(m, ev->fd, EPOLLIN, SRC_V1_EVENT, m->n_v1) < 0) {
                        close(ev->fd);
                        continue;
                }
                m->n_v1++;
        }
        m->v1_pending = m->n_v1 > 0;
}

static void register_v1(struct monitor *m)
{
        m->v1_pending = false;
        pid_t pid = fork();
        if (pid != 0) {
                if (pid < 0)
                        log_warn("cannot start the v1 event registration (%m): usage is sampled instead");
                return;
        }
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int bad = 0;
        for (unsigned i = 0; i < m->n_v1; i++)
                bad |= cg_sandbox_event_register(m->sb, m->v1[i].fd, m->v1[i].file, m->v1[i].arg) < 0;
        _exit(bad);
}

/* Slow far from the next threshold, fast near it: half the time the growth needs to reach it, never
 * slower than twice the last period (so a burst after a quiet spell is caught), at most dwell/4 while
 * a level is held (to time the way down), and fast while the governor is above target. v2 has no
 * usage notifications: this is how thresholds are seen there, so its idle period is capped (one
 * pread of memory.current each). */
uint64_t monitor_interval(const struct interval_in *in)
{
        uint64_t lo = in->lo, hi = in->hi;
        if (in->v2 && hi > MONITOR_V2_IDLE_MAX_USEC)
                hi = MONITOR_V2_IDLE_MAX_USEC;
        if (lo > hi)
                lo = hi;
        uint64_t target = hi;
        if (in->next_threshold != SIZE_MAX_VALUE && in->limit != SIZE_MAX_VALUE) {
                uint64_t dist = in->next_threshold > in->usage ? in->next_threshold - in->usage : 0;
                uint64_t band = size_share(in->limit, 200000);
                target = dist >= band || !band ? hi : lo + (uint64_t)((double)(hi - lo) * (double)dist / (double)band);
                if (in->rate > 0) {
                        double half_eta_us = (double)dist / in->rate * 1e6 / 2;
                        if (half_eta_us < (double)target)
                                target = half_eta_us < (double)lo ? lo : (uint64_t)half_eta_us;
                }
        }
        if (in->predicting && in->rate > 0 && target > lo * 4)
                target = lo * 4;
        if (in->in_level && in->dwell / 4 < target)
                target = in->dwell / 4;
        if (in->holding && target > MONITOR_HOLD_USEC)
                target = MONITOR_HOLD_USEC;
        uint64_t backoff = in->last ? in->last * 2 : lo;
        uint64_t iv = target < backoff ? target : backoff;
        if (iv < lo && !in->holding)
                iv = lo;
        if (iv < 1000)
                iv = 1000;
        if (in->v1_pending && iv > (uint64_t)(V1_REGISTER_AFTER_S * 1e6))
                iv = (uint64_t)(V1_REGISTER_AFTER_S * 1e6);
        return iv;
}

static uint64_t next_interval(struct monitor *m, uint64_t usage)
{
        const struct gov_decision *d = &m->act.last;
        struct interval_in in = {
                .lo = m->p->interval_min_usec, .hi = m->p->interval_max_usec, .last = m->iv, .usage = usage,
                .limit = m->eng.limit, .next_threshold = level_next_threshold(&m->eng),
                .rate = m->eng.rate > m->eng.inst_rate ? m->eng.rate : m->eng.inst_rate, .predicting = m->predicting,
                .in_level = m->eng.cur != LEVEL_OK, .dwell = m->p->dwell_usec,
                /* Above target, or close enough to cross it before the next sample at the program's
                 * allocation rate: the governor's pace. */
                .holding = m->p->hold && !m->act.gov.given_up && d->target != SIZE_MAX_VALUE &&
                           (double)usage + m->act.gov.alloc_rate * (double)m->p->interval_min_usec / 1e6 >
                                   (double)d->target,
                .v2 = m->sb->mode == CG_V2, .v1_pending = m->v1_pending,
        };
        m->iv = monitor_interval(&in);
        return m->iv;
}

/* A periodic timer: while the period stays the same (an idle sandbox), no system call re-arms it. */
static void arm_timer(struct monitor *m, uint64_t usec)
{
        if (usec == m->armed_usec)
                return;
        struct timespec ts = { (time_t)(usec / 1000000), (long)(usec % 1000000) * 1000 };
        struct itimerspec its = { .it_interval = ts, .it_value = ts };
        if (timerfd_settime(m->tfd, 0, &its, NULL) == 0)
                m->armed_usec = usec;
}

/* One CSV row per sample, written with one write(2) from the stack: nothing allocated while the
 * sandbox is under pressure. A short write drops the row rather than stall the loop. */
static void timeline_row(struct monitor *m, double now, const struct level_sample *s)
{
        char row[192];
        char soft[24], hard[24];
        u64_or_max(m->act.lifted ? SIZE_MAX_VALUE : m->act.soft, soft, sizeof soft);
        u64_or_max(m->eng.limit, hard, sizeof hard);
        int n = snprintf(row, sizeof row, "%.3f,%llu,%s,%s,%.2f,%.2f,%s,%llu,%llu,%s\n", now - m->cfg->t0,
                         (unsigned long long)s->usage, soft, hard, (double)s->psi_some_ppm / 1e4,
                         (double)s->psi_full_ppm / 1e4, level_name(m->eng.cur), (unsigned long long)m->act.tl_asked,
                         (unsigned long long)m->act.tl_freed,
                         !m->p->hold || m->act.last.target == SIZE_MAX_VALUE ? "-"
                         : m->act.gov.given_up                                 ? "gaveup"
                                                                               : gov_step_name(m->act.last.step));
        m->act.tl_asked = m->act.tl_freed = 0;
        if (n > 0 && (size_t)n < sizeof row)
                (void)!write(m->cfg->timeline_fd, row, (size_t)n);
}

/* The supervisor's own view, for memrunctl status and --metrics. */
static void ctl_status_fill(void *ctx, struct ctl_status *st)
{
        struct monitor *m = ctx;
        const struct report_log *l = m->cfg->log;
        struct cg_stats cs = { .current = 0 };
        (void)cg_sandbox_stats(m->sb, &cs);
        st->pid = (int)getpid();
        snprintf(st->name, sizeof st->name, "%s", m->cfg->name ? m->cfg->name : m->sb->name);
        snprintf(st->command, sizeof st->command, "%s", m->cfg->argv0 ? m->cfg->argv0 : "");
        snprintf(st->cgroup, sizeof st->cgroup, "%s", m->sb->path);
        snprintf(st->mode, sizeof st->mode, "%s", cg_mode_name(m->sb->mode));
        st->limit = m->eng.limit;
        st->soft = m->act.soft;
        st->usage = m->last.usage;
        if (cg_sandbox_usage(m->sb, &st->usage) < 0)
                st->usage = m->last.usage;
        st->peak = cs.peak > st->usage ? cs.peak : st->usage;
        snprintf(st->level, sizeof st->level, "%s", level_name(m->eng.cur));
        if (m->act.limiter.state) {
                uint64_t out;
                unsigned askable;
                m->act.limiter.state(m->act.limiter.ctx, m->p->ask_timeout_usec * 1000, &st->clients, &out, &askable);
        }
        st->asks = l->asks;
        st->asked = l->asked;
        for (int t = 0; t < _ACTION_TYPE_MAX; t++)
                st->freed += l->agg[t].freed;
        st->asks_trim = l->agg[ACTION_TRIM].asks;
        st->asks_collect = l->agg[ACTION_COLLECT].asks;
        st->asks_reclaim = l->agg[ACTION_RECLAIM].asks;
        st->asks_shed = l->agg[ACTION_SHED].asks;
        st->ev_high = cs.ev_high;
        st->ev_max = cs.ev_max;
        st->ev_oom = cs.ev_oom;
        st->ev_oom_kill = cs.ev_oom_kill;
        st->uptime_s = now_mono() - m->cfg->t0;
        st->limit_changes = m->limit_changes;
        if (m->cfg->ctl) {
                st->ctl_refused = m->cfg->ctl->refused;
                st->ctl_malformed = m->cfg->ctl->malformed;
        }
}

/* memrunctl set: the new limits in the kernel, then in everything derived from them. */
static int ctl_set_limits(void *ctx, bool has_limit, uint64_t limit, bool has_soft, uint64_t soft, char *why,
                          size_t why_size)
{
        struct monitor *m = ctx;
        char a[32], b[32], c[32], d[32];
        uint64_t old_limit = m->eng.limit, old_soft = m->act.soft_configured;
        if (!has_limit)
                limit = old_limit;
        if (!has_soft)
                soft = old_soft > limit ? limit : old_soft;
        if (soft > limit) {
                snprintf(why, why_size, "soft %s is above the limit %s", size_format(soft, a, sizeof a),
                         size_format(limit, b, sizeof b));
                return -EINVAL;
        }
        if (limit < CTL_LIMIT_MIN || soft < CTL_LIMIT_MIN) {
                snprintf(why, why_size, "%s is below %s: no program runs in that", size_format(soft, a, sizeof a),
                         size_format(CTL_LIMIT_MIN, b, sizeof b));
                return -EINVAL;
        }
        /* --in-place: the enclosing cgroup is not memrun's to write; its limit stays the ceiling */
        if (m->sb->in_place && limit > m->in_place_max) {
                snprintf(why, why_size, "--in-place: the enclosing cgroup's limit %s is the ceiling",
                         size_format(m->in_place_max, a, sizeof a));
                return -EINVAL;
        }
        int r = m->sb->in_place ? 0 : cg_sandbox_set_limits(m->sb, limit, soft, m->cfg->swap);
        if (r < 0) {
                snprintf(why, why_size, "the kernel refused it: %s", strerror(-r));
                (void)cg_sandbox_set_limits(m->sb, old_limit, old_soft, m->cfg->swap);
                return r;
        }
        m->eng.limit = limit;
        m->act.limit = limit;
        m->act.soft = m->act.soft_configured = soft;
        m->act.gov.limit = limit;
        m->act.lifted = false;
        m->cfg->log->high_final = soft;
        m->limit_changes++;
        if (m->cfg->limits_changed)
                m->cfg->limits_changed(m->cfg->owner, limit, soft);
        double now = now_mono();
        struct report_action *e = report_log_action(m->cfg->log, now - m->cfg->t0, "set-limit", m->eng.cur);
        if (e)
                snprintf(e->detail, sizeof e->detail, "memrunctl: limit %s -> %s, soft %s -> %s",
                         size_format(old_limit, a, sizeof a), size_format(limit, b, sizeof b),
                         size_format(old_soft, c, sizeof c), size_format(soft, d, sizeof d));
        log_info("memrunctl set: limit %s -> %s, soft %s -> %s", a, b, c, d);
        arm_timer(m, MONITOR_REASK_USEC);
        return 0;
}

static void write_metrics(struct monitor *m, double now)
{
        struct ctl_status st;
        memset(&st, 0, sizeof st);
        ctl_status_fill(m, &st);
        int r = ctl_write_metrics(m->cfg->metrics_path, &st);
        if (r < 0 && m->metrics_t == 0)
                log_warn_errno(r, "cannot write --metrics %s: %m", m->cfg->metrics_path);
        m->metrics_t = now;
}

static void sample(struct monitor *m)
{
        double now = now_mono();
        struct level_sample s = { .t = now };
        struct psi psi = {};
        char ub[32], lb[32];

        if (cg_sandbox_usage(m->sb, &s.usage) < 0)
                return;
        /* Idle, with triggers armed for the policy's PSI conditions, the sample is one read of usage. */
        bool near_high = m->sb->mode == CG_V2 && m->p->stall_enabled && level_at_high(s.usage, m->act.soft);
        bool psi_wanted = m->cfg->timeline_fd >= 0 || m->eng.cur != LEVEL_OK || near_high ||
                          (m->n_trig == 0 && levels_use_psi(m->p));
        for (unsigned i = 0; i < m->n_trig && !psi_wanted; i++)
                psi_wanted = m->trig[i].fired_until >= now;
        if (m->psi_ok && psi_wanted && psi_read_fd(m->psi_fd, &psi) == 0) {
                s.psi_valid = true;
                s.psi_some_ppm = psi.some.avg10;
                s.psi_full_ppm = psi.full.avg10;
                /* A trigger that fired within its window counts as its threshold reached, before avg10 shows it. */
                for (unsigned i = 0; i < m->n_trig; i++) {
                        struct trigger *t = &m->trig[i];
                        if (t->fired_until < now)
                                continue;
                        uint32_t *v = t->full ? &s.psi_full_ppm : &s.psi_some_ppm;
                        if (*v < t->ppm)
                                *v = t->ppm;
                }
        }

        struct level_decision d;
        bool entered = false;
        if (level_feed(&m->eng, &s, &d) == 1) {
                entered = d.to > d.from;
                log_debug("level %s -> %s%s (%s; usage %s of %s, psi some %.2f%% full %.2f%%%s)", level_name(d.from),
                          level_name(d.to), d.repeat ? " again" : "", level_reason_name(d.reason),
                          size_format(s.usage, ub, sizeof ub), size_format(m->eng.limit, lb, sizeof lb),
                          (double)s.psi_some_ppm / 1e4, (double)s.psi_full_ppm / 1e4,
                          m->psi_system ? ", system-wide" : "");
                if (!d.repeat)
                        report_log_level(m->cfg->log, now - m->cfg->t0, d.to, s.usage, level_reason_name(d.reason));
                actions_run(&m->act, &m->eng, &d, s.usage, now);
        }
        actions_govern(&m->act, &m->eng, &s, entered, now);

        m->last = s;
        if (m->cfg->timeline_fd >= 0)
                timeline_row(m, now, &s);
        /* Not at once: back-to-back short commands would queue on each other's registrations (each
         * waits for an RCU grace period, as does the next command's cgroup.procs write). */
        if (m->v1_pending && now - m->cfg->t0 >= V1_REGISTER_AFTER_S)
                register_v1(m);
        if (now - m->cfg->t0 >= 0.1) {
                if (!m->sources_ready) {
                        m->sources_ready = true;
                        setup_psi(m);
                }
                if (m->triggers_pending)
                        arm_triggers(m);
        }

        /* Stall: only v2 has memory.high to be stuck on. */
        /* With the governor, only once it was asked again and could not give back. */
        if (near_high && !m->stalled_kill && !m->act.lifted && (!m->p->hold || m->act.gov.exhausted)) {
                char buf[512];
                uint64_t high_ev = m->ev_high;
                if (read_fd(m->sb->events_fd >= 0 ? m->sb->events_fd : -1, buf, sizeof buf) >= 0)
                        (void)keyed_u64(buf, "high", &high_ev);
                m->ev_high = high_ev;
                struct stall_sample ss = {
                        .t = now, .usage = s.usage, .high = m->act.soft, .ev_high = high_ev,
                        .psi_valid = s.psi_valid, .psi_full_ppm = psi.full.avg10, .freed_total = m->act.freed_total,
                };
                if (stall_feed(&m->stall, &ss) == 1 && actions_stall(&m->act, s.usage, now) == 1)
                        m->stalled_kill = true;
        }
        actions_tick(&m->act, now);
        arm_timer(m, next_interval(m, s.usage));
        if (m->cfg->on_sample)
                m->cfg->on_sample(m->cfg->owner, m->eng.cur, s.usage, m->eng.limit);
        if (m->cfg->metrics_path && now - m->metrics_t >= 1.0)
                write_metrics(m, now);
}

int monitor_run(const struct monitor_cfg *cfg, struct cg_sandbox *sb, int sigfd, pid_t child, int *ret_status)
{
        struct monitor m = { .cfg = cfg, .p = cfg->policy, .sb = sb, .child = child, .ep = -1, .tfd = -1,
                             .psi_fd = -1, .psi_dir = -1 };
        int reaped = 0, status = 0, r = 0;

        level_engine_init(&m.eng, m.p, cfg->limit);
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                m.predicting |= m.p->levels[l].defined && m.p->levels[l].predict_usec;
        stall_init(&m.stall, m.p);
        actions_init(&m.act, m.p, sb, child, cfg->limit, cfg->soft, cfg->log, cfg->t0);
        m.act.limiter = cfg->limiter;
        m.act.proc_fd = proc_open_root(cfg->proc_root);

        m.ep = epoll_create1(EPOLL_CLOEXEC);
        m.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (m.ep < 0 || m.tfd < 0 || add_fd(&m, sigfd, EPOLLIN, SRC_SIGNAL, 0) < 0 ||
            add_fd(&m, m.tfd, EPOLLIN, SRC_TIMER, 0) < 0) {
                r = -errno;
                goto out;
        }
        /* kernfs files always poll readable; only PRI means "changed". */
        if (sb->events_fd >= 0)
                (void)add_fd(&m, sb->events_fd, sb->mode == CG_V2 ? EPOLLPRI : EPOLLIN, SRC_EVENTS, 0);
        if (cfg->limiter_fd >= 0)
                (void)add_fd(&m, cfg->limiter_fd, EPOLLIN, SRC_LIMITER, 0);
        if (cfg->notify_fd >= 0)
                (void)add_fd(&m, cfg->notify_fd, EPOLLIN, SRC_NOTIFY, 0);
        if (cfg->ctl && cfg->ctl->fd >= 0)
                (void)add_fd(&m, cfg->ctl->fd, EPOLLIN, SRC_CTL, 0);
        /* metrics: at most once a second, and at the end */
        m.metrics_t = 0;
        m.in_place_max = cfg->limit;
        /* v1 thresholds 20 ms in (see sample(); a program can fill a limit in tens of milliseconds),
         * registered by a helper process; PSI once the command has run 100 ms (see sample()): trigger setup and
         * teardown cost an RCU grace period that a short command should not pay. */
        setup_v1(&m);

        monitor_reap(child, &status, &reaped, &m.act, sb);
        if (!reaped)
                sample(&m);
        /* --wait-all: a daemon that forked away keeps the sandbox populated after the command exits. */
        while (!reaped || (cfg->wait_all && cg_sandbox_populated(sb))) {
                struct epoll_event evs[8];
                int n = epoll_wait(m.ep, evs, 8, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                bool want_sample = false;
                for (int i = 0; i < n; i++) {
                        enum src src = (enum src)(evs[i].data.u64 >> 32);
                        uint32_t idx = (uint32_t)evs[i].data.u64;
                        uint64_t junk;
                        switch (src) {
                        case SRC_SIGNAL: {
                                struct signalfd_siginfo si;
                                char sn[24];
                                while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                                        int sig = (int)si.ssi_signo;
                                        if (sig == SIGCHLD)
                                                continue;
                                        /* A terminal signals the whole foreground group, the command included:
                                         * forwarding would deliver those twice. */
                                        if (si.ssi_code == SI_KERNEL) {
                                                log_debug("%s from the terminal reached the command directly",
                                                          signal_name(sig, sn, sizeof sn));
                                                continue;
                                        }
                                        if (reaped) {
                                                /* --wait-all, the command gone: the sandbox's processes get it */
                                                log_debug("forwarding %s to the sandbox", signal_name(sig, sn, sizeof sn));
                                                (void)cg_sandbox_signal(sb, sig);
                                                continue;
                                        }
                                        log_debug("forwarding %s to pid %d", signal_name(sig, sn, sizeof sn), (int)child);
                                        kill(child, sig);
                                }
                                if (!reaped)
                                        monitor_reap(child, &status, &reaped, &m.act, sb);
                                else
                                        monitor_reap(-1, NULL, NULL, &m.act, sb);
                                break;
                        }
                        case SRC_NOTIFY:
                                if (cfg->notify_dispatch)
                                        cfg->notify_dispatch(cfg->owner);
                                break;
                        case SRC_CTL: {
                                struct ctl_ops ops = { ctl_status_fill, ctl_set_limits, cfg->inside, &m, cfg->owner };
                                ctl_dispatch(cfg->ctl, &ops);
                                break;
                        }
                        case SRC_EVENTS:
                                if (cg_sandbox_event(sb) > 0) {
                                        struct cg_stats st;
                                        if (cg_sandbox_stats(sb, &st) == 0 && (st.ev_oom_kill || st.ev_oom))
                                                log_debug("memory events: oom %llu, oom_kill %llu",
                                                          (unsigned long long)st.ev_oom,
                                                          (unsigned long long)st.ev_oom_kill);
                                }
                                want_sample = true;
                                break;
                        case SRC_TIMER:
                                (void)!read(m.tfd, &junk, sizeof junk);
                                want_sample = true;
                                break;
                        case SRC_TRIGGER:
                                if (idx < m.n_trig) {
                                        struct trigger *t = &m.trig[idx];
                                        t->fired_until = now_mono() + (double)t->window / 1e6;
                                        log_debug("PSI trigger: memory %s >= %.2f%% over %.1fs", t->full ? "full" : "some",
                                                  (double)t->ppm / 1e4, (double)t->window / 1e6);
                                }
                                want_sample = true;
                                break;
                        case SRC_V1_EVENT:
                                if (idx < m.n_v1)
                                        (void)!read(m.v1[idx].fd, &junk, sizeof junk);
                                want_sample = true;
                                break;
                        case SRC_LIMITER: {
                                uint64_t rounds = cfg->log->rounds;
                                if (cfg->limiter_dispatch)
                                        cfg->limiter_dispatch(cfg->limiter_ctx, &m.act);
                                /* A reply while above target: ask again soon, paced, never in a tight loop. */
                                if (cfg->log->rounds != rounds && m.iv > MONITOR_REASK_USEC &&
                                    m.act.last.target != SIZE_MAX_VALUE && m.last.usage > m.act.last.target) {
                                        m.iv = MONITOR_REASK_USEC;
                                        arm_timer(&m, MONITOR_REASK_USEC);
                                }
                                break;
                        }
                        }
                }
                if (want_sample && (!reaped || cfg->wait_all))
                        sample(&m);
        }
        *ret_status = status;
        if (cfg->metrics_path)
                write_metrics(&m, now_mono());
        if (cfg->timeline_fd >= 0) {
                /* A closing row: where usage stood when the command ended (its peak may lie between
                 * samples; the report has memory.peak). */
                struct level_sample fin = m.last;
                fin.t = now_mono();
                if (cg_sandbox_usage(sb, &fin.usage) == 0)
                        timeline_row(&m, fin.t, &fin);
        }
out:
        actions_shutdown(&m.act, now_mono());
        close_fd(&m.act.proc_fd);
        for (unsigned i = 0; i < m.n_trig; i++)
                close(m.trig[i].fd);
        for (unsigned i = 0; i < m.n_v1; i++)
                close(m.v1[i].fd);
        close_fd(&m.psi_fd);
        close_fd(&m.psi_dir);
        close_fd(&m.tfd);
        close_fd(&m.ep);
        return r;
}
