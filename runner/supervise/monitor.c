/* monitor: the supervisor's sources that watch the sandbox (monitor.h): the sampling timer, memory
 * events, PSI triggers, v1 usage thresholds and pressure levels; each wake-up is one sample that
 * feeds the level engine and the governor. */
#include "supervise/monitor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "config/size.h"
#include "kernel/psi.h"
#include "log.h"
#include "supervise/supervisor.h"
#include "util.h"

#define V1_REGISTER_AFTER_USEC (20 * USEC_PER_MSEC)  /* v1 event registration, once the command ran this long */
#define LATE_SOURCES_AFTER_USEC (100 * USEC_PER_MSEC) /* PSI and its triggers, likewise */

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
static void setup_psi(struct supervisor *s)
{
        struct monitor *m = &s->mon;
        struct psi_source src;
        if (psi_source_open(s->cg.sb.uni_fd, s->plan->proc_root, &src) < 0) {
                if (policy_uses_psi(s->p))
                        log_warn("no pressure stall information on this kernel (PSI off: boot with psi=1); "
                                 "psi_some/psi_full conditions never hold");
                return;
        }
        if (src.system && policy_uses_psi(s->p))
                log_warn("no per-cgroup PSI for this sandbox: psi conditions use the system-wide "
                         "/proc/pressure/memory");
        m->psi_system = src.system;
        m->psi_ok = true;
        m->psi_fd = src.fd;
        m->psi_dir = src.dir;
        m->psi_file = src.file;
        m->triggers_pending = true;
}

static void on_trigger(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct monitor *m = &((struct supervisor *)userdata)->mon;
        (void)l;
        (void)events;
        for (unsigned i = 0; i < m->n_trig; i++) {
                struct trigger *t = &m->trig[i];
                if (t->fd != fd)
                        continue;
                t->fired_until = usec_add_sat(now_usec(), t->window);
                log_debug("PSI trigger: memory %s >= %.2f%% over %.1fs", t->full ? "full" : "some",
                          (double)t->ppm / 1e4, usec_to_sec(t->window));
        }
        monitor_sample(userdata);
}

/* One trigger: armed and in the loop, or said why not. */
static void arm_trigger(struct supervisor *s, bool full, uint32_t ppm, bool *said)
{
        struct monitor *m = &s->mon;
        usec_t win;
        int fd = psi_trigger_open(m->psi_dir, m->psi_file, full ? "full" : "some", ppm, s->p->psi_window_usec, &win);
        if (fd < 0) {
                /* in a container's read-only cgroupfs this is expected: sampling is the way */
                log_msg_errno(!cg_sandbox_writable(&s->cg.sb) && fd == -EROFS ? LOG_DEBUG : LOG_WARN, fd,
                              "cannot arm a PSI trigger on %s (%m): %s avg10 is sampled instead", m->psi_file,
                              full ? "full" : "some");
                return;
        }
        if (win != s->p->psi_window_usec && !*said) {
                log_warn("PSI trigger window %.1fs rounded to %.1fs (the kernel's rule without "
                         "CAP_SYS_RESOURCE: 500ms..10s, multiples of 2s)",
                         usec_to_sec(s->p->psi_window_usec), usec_to_sec(win));
                *said = true;
        }
        if (loop_add(&s->loop, fd, EPOLLPRI, on_trigger, s, "psi trigger") < 0) {
                close(fd);
                return;
        }
        m->trig[m->n_trig++] = (struct trigger){ .fd = fd, .full = full, .ppm = ppm, .window = win, .fired_until = 0 };
}

/* Triggers are armed once the command has outlived its first samples: creating and destroying one
 * each costs an RCU grace period in the kernel (~10-30 ms), which a short command should not pay. */
static void arm_triggers(struct supervisor *s)
{
        bool said = false;
        s->mon.triggers_pending = false;
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++) {
                const struct policy_level *pl = &s->p->levels[l];
                for (int full = 0; pl->defined && full < 2; full++) {
                        uint32_t ppm = full ? pl->psi_full_ppm : pl->psi_some_ppm;
                        if (ppm && s->mon.n_trig < MONITOR_MAX_TRIGGERS)
                                arm_trigger(s, full, ppm, &said);
                }
        }
}

static void on_v1_event(struct loop *l, int fd, uint32_t events, void *userdata)
{
        (void)l;
        (void)events;
        uint64_t junk;
        (void)!read(fd, &junk, sizeof junk);
        monitor_sample(userdata);
}

/* v1 has no memory.events: usage thresholds at each level's boundary, and the pressure level. The
 * eventfds are ours (in the loop from the start); their registration writes to cgroup.event_control
 * can each block for an RCU grace period, so a helper process makes them: the loop never waits. */
static void setup_v1(struct supervisor *s)
{
        struct monitor *m = &s->mon;
        if (!cg_sandbox_usage_notifies(&s->cg.sb))
                return;
        for (int l = LEVEL_MODERATE; l <= _LEVEL_MAX; l++) {
                struct v1_event *ev = &m->v1[m->n_v1];
                if (l < _LEVEL_MAX) {
                        uint64_t thr = level_usage_threshold(&s->eng, (enum level)l);
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
                if (loop_add(&s->loop, ev->fd, EPOLLIN, on_v1_event, s, "v1 event") < 0) {
                        close(ev->fd);
                        continue;
                }
                m->n_v1++;
        }
        m->v1_pending = m->n_v1 > 0;
}

static void register_v1(struct supervisor *s)
{
        struct monitor *m = &s->mon;
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
                bad |= cg_sandbox_event_register(&s->cg.sb, m->v1[i].fd, m->v1[i].file, m->v1[i].arg) < 0;
        _exit(bad);
}

/* Slow far from the next threshold, fast near it: half the time the growth needs to reach it, never
 * slower than twice the last period (so a burst after a quiet spell is caught), at most dwell/4 while
 * a level is held (to time the way down), and fast while the governor is above target. v2 has no
 * usage notifications: this is how thresholds are seen there, so its idle period is capped (one
 * pread of memory.current each). Holding on v1, also half the time the program's allocation takes to
 * the soft limit (the law's fast-rising estimate: a burst from idle is seen within 0.05 s): while
 * it gives back what it is asked its usage stands still, so growth says nothing, and with no
 * memory.high only the next sample stops it (a CI run at 1 MiB per 2 ms fell under the setpoint,
 * waited the 20 ms hold period and sampled 10 MiB later, over the soft limit). */
usec_t monitor_interval(const struct interval_in *in)
{
        usec_t lo = in->lo, hi = in->hi;
        if (in->v2 && hi > MONITOR_V2_IDLE_MAX_USEC)
                hi = MONITOR_V2_IDLE_MAX_USEC;
        if (lo > hi)
                lo = hi;
        usec_t target = hi;
        if (in->next_threshold != SIZE_MAX_VALUE && in->limit != SIZE_MAX_VALUE) {
                uint64_t dist = in->next_threshold > in->usage ? in->next_threshold - in->usage : 0;
                uint64_t band = size_share(in->limit, 200000);
                target = dist >= band || !band ? hi : lo + (usec_t)((double)(hi - lo) * (double)dist / (double)band);
                /* USEC_INFINITY when not growing: halved, still above any target */
                usec_t half_eta = usec_at_rate((double)dist, in->rate) / 2;
                if (half_eta < target)
                        target = half_eta < lo ? lo : half_eta;
        }
        if (in->predicting && in->rate > 0 && target > lo * 4)
                target = lo * 4;
        if (in->in_level && in->dwell / 4 < target)
                target = in->dwell / 4;
        if (in->holding && target > MONITOR_HOLD_USEC)
                target = MONITOR_HOLD_USEC;
        if (in->holding && in->no_high && in->soft != SIZE_MAX_VALUE) {
                double r = in->alloc_rate > in->rate ? in->alloc_rate : in->rate;
                usec_t half_eta = usec_at_rate((double)(in->soft > in->usage ? in->soft - in->usage : 0), r) / 2;
                if (half_eta < target)
                        target = half_eta;
        }
        usec_t backoff = in->last ? in->last * 2 : lo;
        usec_t iv = target < backoff ? target : backoff;
        if (iv < lo && !in->holding)
                iv = lo;
        if (iv < MONITOR_MIN_USEC)
                iv = MONITOR_MIN_USEC;
        if (in->v1_pending && iv > V1_REGISTER_AFTER_USEC)
                iv = V1_REGISTER_AFTER_USEC;
        return iv;
}

/* The next usage the loop must not sleep through: a level's threshold, or the governor's setpoint. */
static uint64_t next_threshold(const struct supervisor *s, uint64_t usage)
{
        uint64_t thr = level_next_threshold(&s->eng), sp = s->act.last.setpoint;
        if (s->p->hold && !s->act.gov.law.given_up && sp != SIZE_MAX_VALUE && sp > usage && sp < thr)
                thr = sp;
        return thr;
}

/* How close to the setpoint counts as holding: what the program allocates in one fastest period (by
 * the law's fast-rising estimate: a cache that just gave back 20 MiB and refills at 0.6 GB/s is
 * near); and without memory.high (v1), one headroom: nothing slows a burst that starts there before
 * memory.max, and at a slower pace it would reach the soft limit between two samples. */
static double near_setpoint(const struct supervisor *s, const struct gov_decision *d)
{
        double grow = at_rate(s->act.gov.law.alloc_fast, s->p->interval_min_usec);
        if (!cg_sandbox_has_high(&s->cg.sb) && (double)d->headroom > grow)
                grow = (double)d->headroom;
        return grow;
}

static usec_t next_interval(struct supervisor *s, uint64_t usage)
{
        struct monitor *m = &s->mon;
        const struct gov_decision *d = &s->act.last;
        struct interval_in in = {
                .lo = s->p->interval_min_usec, .hi = s->p->interval_max_usec, .last = m->iv, .usage = usage,
                .limit = s->eng.limit, .next_threshold = next_threshold(s, usage),
                .rate = s->eng.rate > s->eng.inst_rate ? s->eng.rate : s->eng.inst_rate, .predicting = m->predicting,
                .in_level = s->eng.cur != LEVEL_OK, .dwell = s->p->dwell_usec,
                /* Above the setpoint, or near it (near_setpoint): the governor's pace. */
                .holding = s->p->hold && !s->act.gov.law.given_up && d->setpoint != SIZE_MAX_VALUE &&
                           (double)usage + near_setpoint(s, d) > (double)d->setpoint,
                .soft = s->act.soft, .alloc_rate = s->act.gov.law.alloc_fast, .no_high = !cg_sandbox_has_high(&s->cg.sb),
                .v2 = !cg_sandbox_usage_notifies(&s->cg.sb), .v1_pending = m->v1_pending,
        };
        m->iv = monitor_interval(&in);
        return m->iv;
}

/* A periodic timer: while the period stays the same (an idle sandbox), no system call re-arms it. */
static void arm_timer(struct supervisor *s, usec_t usec)
{
        if (usec != s->mon.armed_usec && loop_timer_set(s->mon.tfd, usec) == 0)
                s->mon.armed_usec = usec;
}

void monitor_soon(struct supervisor *s)
{
        if (s->mon.iv > MONITOR_REASK_USEC) {
                s->mon.iv = MONITOR_REASK_USEC;
                arm_timer(s, MONITOR_REASK_USEC);
        }
}

/* PSI is read only when something needs it: idle, with triggers armed for the policy's PSI
 * conditions, a sample is one read of usage. */
static void read_psi(struct supervisor *s, struct level_sample *ls, struct psi *psi, bool near_high)
{
        struct monitor *m = &s->mon;
        bool wanted = s->tl_fd >= 0 || s->eng.cur != LEVEL_OK || near_high || (m->n_trig == 0 && levels_use_psi(s->p));
        for (unsigned i = 0; i < m->n_trig && !wanted; i++)
                wanted = m->trig[i].fired_until >= ls->t;
        if (!m->psi_ok || !wanted || psi_read_fd(m->psi_fd, psi) != 0)
                return;
        ls->psi_valid = true;
        ls->psi_some_ppm = psi->some.avg10;
        ls->psi_full_ppm = psi->full.avg10;
        /* A trigger that fired within its window counts as its threshold reached, before avg10 shows it. */
        for (unsigned i = 0; i < m->n_trig; i++) {
                struct trigger *t = &m->trig[i];
                uint32_t *v = t->full ? &ls->psi_full_ppm : &ls->psi_some_ppm;
                if (t->fired_until >= ls->t && *v < t->ppm)
                        *v = t->ppm;
        }
}

/* The level engine, then the governor. */
static void decide(struct supervisor *s, const struct level_sample *ls)
{
        struct level_decision d;
        char ub[32], lb[32];
        bool entered = false;
        if (level_feed(&s->eng, ls, &d) == 1) {
                /* Entered by usage, the setpoint is the governor's business; by pressure or
                 * prediction, one ask for 5% (the law). */
                entered = d.to > d.from && d.reason != REASON_USAGE;
                log_debug("level %s -> %s%s (%s; usage %s of %s, psi some %.2f%% full %.2f%%%s)", level_name(d.from),
                          level_name(d.to), d.repeat ? " again" : "", level_reason_name(d.reason),
                          size_format(ls->usage, ub, sizeof ub), size_format(s->eng.limit, lb, sizeof lb),
                          (double)ls->psi_some_ppm / 1e4, (double)ls->psi_full_ppm / 1e4,
                          s->mon.psi_system ? ", system-wide" : "");
                if (!d.repeat)
                        report_log_level(&s->log, usec_sub(ls->t, s->t0), d.to, ls->usage, level_reason_name(d.reason));
                actions_run(&s->act, &s->eng, &d, ls->usage, ls->t);
        }
        supervisor_pressure_settle(s, ls->usage, ls->t);
        actions_govern(&s->act, &s->eng, ls, entered, ls->t);
}

/* Sources that cost a short command too much are set up once it has run a while. */
static void late_sources(struct supervisor *s, usec_t now)
{
        struct monitor *m = &s->mon;
        /* Not at once: back-to-back short commands would queue on each other's registrations (each
         * waits for an RCU grace period, as does the next command's cgroup.procs write). */
        if (m->v1_pending && usec_sub(now, s->t0) >= V1_REGISTER_AFTER_USEC)
                register_v1(s);
        if (usec_sub(now, s->t0) >= LATE_SOURCES_AFTER_USEC) {
                if (!m->sources_ready) {
                        m->sources_ready = true;
                        setup_psi(s);
                }
                if (m->triggers_pending)
                        arm_triggers(s);
        }
}

/* Stall: only v2 has memory.high to be stuck on; with the governor, only once it was asked again
 * and could not give back. */
static void check_stall(struct supervisor *s, const struct level_sample *ls, const struct psi *psi)
{
        struct monitor *m = &s->mon;
        if (m->stalled_kill || s->act.lifted || (s->p->hold && s->act.gov.active && !s->act.gov.law.exhausted))
                return;
        char buf[512];
        uint64_t high_ev = m->ev_high;
        if (read_fd(s->cg.sb.events_fd >= 0 ? s->cg.sb.events_fd : -1, buf, sizeof buf) >= 0)
                (void)keyed_u64(buf, "high", &high_ev);
        m->ev_high = high_ev;
        struct stall_sample ss = {
                .t = ls->t, .usage = ls->usage, .high = s->act.soft, .ev_high = high_ev,
                .psi_valid = ls->psi_valid, .psi_full_ppm = psi->full.avg10, .freed_total = s->act.freed_total,
        };
        if (stall_feed(&s->stall, &ss) == 1 && actions_stall(&s->act, ls->usage, ls->t) == 1)
                m->stalled_kill = true;
}

/* memrun itself did not run for a while (stopped with SIGSTOP, or starved of CPU): whatever the
 * sandbox did meanwhile went unwatched. Said once per gap, and in the report. */
static void say_gap(struct supervisor *s, usec_t now, usec_t gap, const char *why)
{
        struct report_action *e = report_log_action(&s->log, usec_sub(now, s->t0), "unwatched", s->eng.cur);
        if (e)
                snprintf(e->detail, sizeof e->detail, "memrun did not run for %.1fs", usec_to_sec(gap));
        log_warn("memrun did not run for %.1fs (%s): the sandbox went unwatched; watching again", usec_to_sec(gap), why);
        s->mon.gap_said = s->mon.last.t;
}

static void check_gap(struct supervisor *s, usec_t now)
{
        struct monitor *m = &s->mon;
        usec_t gap = m->last.t ? usec_sub(now, m->last.t) : 0;
        usec_t expected = m->armed_usec > m->iv ? m->armed_usec : m->iv;
        if (m->last.t == m->gap_said || gap < MONITOR_GAP_USEC || gap < 2 * expected)
                return;
        say_gap(s, now, gap, "stopped, or starved of CPU");
}

void monitor_continued(struct supervisor *s)
{
        struct monitor *m = &s->mon;
        usec_t now = now_usec(), gap = m->last.t ? usec_sub(now, m->last.t) : 0;
        usec_t expected = m->armed_usec > m->iv ? m->armed_usec : m->iv;
        /* a sample was due and did not happen: memrun really was stopped (a SIGCONT alone is not) */
        if (m->last.t != m->gap_said && gap >= MONITOR_GAP_USEC && gap > expected + MONITOR_GAP_SLACK_USEC)
                say_gap(s, now, gap, "stopped, then continued");
        monitor_sample(s);
}

/* Someone froze the sandbox (cgroup.freeze): a frozen program can neither allocate nor answer, so
 * nothing is decided (no level change, ask, escalation or give-up) until it thaws. Said on both
 * edges, and in the report. Read at most every MONITOR_FROZEN_CHECK_USEC while not frozen. */
static bool check_frozen(struct supervisor *s, usec_t now)
{
        struct monitor *m = &s->mon;
        if (!m->frozen_since && usec_sub(now, m->frozen_checked) < MONITOR_FROZEN_CHECK_USEC)
                return false;
        m->frozen_checked = now;
        bool frozen = cg_sandbox_frozen(&s->cg.sb) == 1;
        if (frozen && !m->frozen_since) {
                m->frozen_since = now;
                log_warn("the sandbox %s is frozen (cgroup.freeze, not memrun's doing): nothing is asked or "
                         "escalated until it thaws", s->cg.sb.path);
        } else if (!frozen && m->frozen_since) {
                double held = usec_to_sec(usec_sub(now, m->frozen_since));
                struct report_action *e = report_log_action(&s->log, usec_sub(m->frozen_since, s->t0), "frozen",
                                                            s->eng.cur);
                if (e)
                        snprintf(e->detail, sizeof e->detail, "frozen by someone else for %.1fs", held);
                log_warn("the sandbox thawed after %.1fs frozen; supervising on", held);
                m->frozen_since = 0;
                gov_thawed(&s->act.gov, now, s->p->ask_timeout_usec);
        }
        return frozen;
}

/* Follow a hard limit someone else set, from the limits CUR (the soft limit keeps its share), through
 * the one setter; says so when it cannot. < 0: not followed. */
static int follow_hard(struct supervisor *s, struct limits cur, uint64_t hard, const char *who)
{
        char why[256], b[32];
        struct limits lim;
        uint64_t soft = limits_soft_keep_share(cur.soft, cur.hard, hard);
        int r = limits_change(&cur, true, hard, true, soft, &lim, why, sizeof why);
        if (r == 0)
                r = supervisor_set_limits(s, &lim, who, why, sizeof why);
        if (r < 0)
                log_warn("cannot follow it (%s): memrun's levels and clients keep %s", why,
                         size_format(s->limits.hard, b, sizeof b));
        return r;
}

/* --in-place: the enclosing cgroup's limit, the ceiling, changed (a container resized: docker update,
 * a Kubernetes in-place resize). memrun follows it as it follows a hard limit someone else wrote: a
 * hard limit that was the ceiling moves with it, a lower --limit stays unless the new ceiling is under
 * it, the soft limit keeps its share, the clients hear it. Nothing is written (the cgroup is not
 * memrun's). */
static void check_ceiling(struct supervisor *s)
{
        uint64_t max, high;
        cg_effective_limits(&s->cg.h, s->cg.sb.path, &max, &high);
        if (max == s->limits.ceiling || max == s->mon.ceiling_refused)
                return;
        char b1[32], b2[32];
        struct limits cur = s->limits;
        uint64_t hard = cur.hard == cur.ceiling || max < cur.hard ? max : cur.hard;
        log_warn("--in-place: the enclosing cgroup's limit was changed to %s (it was %s): following it",
                 size_format(max, b1, sizeof b1), size_format(cur.ceiling, b2, sizeof b2));
        cur.ceiling = max;
        if (follow_hard(s, cur, hard, "ceiling") < 0)
                s->mon.ceiling_refused = max;
}

/* Someone else wrote the sandbox's hard limit (an operator at cgroupfs, a tool): memrun follows it
 * as it would a memrunctl set of the limit alone (the soft limit keeps its share), says so once per
 * change, and tells its clients. The kernel keeps limits in pages: compared page-rounded. */
static void check_limit(struct supervisor *s, usec_t now)
{
        struct monitor *m = &s->mon;
        uint64_t max, page = (uint64_t)sysconf(_SC_PAGESIZE);
        if (usec_sub(now, m->limit_checked) < MONITOR_LIMIT_CHECK_USEC || s->limits_pid > 0)
                return;
        if (!cg_sandbox_writable(&s->cg.sb)) {
                m->limit_checked = now;
                if (s->cg.sb.in_place)
                        check_ceiling(s);
                return;
        }
        m->limit_checked = now;
        if (cg_sandbox_hard_limit(&s->cg.sb, &max) < 0)
                return;
        uint64_t ours = s->limits.hard == SIZE_MAX_VALUE ? SIZE_MAX_VALUE : s->limits.hard / page * page;
        if (max == ours)
                return;
        char b1[32], b2[32];
        log_warn("the sandbox's hard limit was changed to %s by someone else (it was %s): following it",
                 size_format(max, b1, sizeof b1), size_format(s->limits.hard, b2, sizeof b2));
        (void)follow_hard(s, s->limits, max, "cgroupfs");
}

void monitor_sample(struct supervisor *s)
{
        if (s->reaped && !s->plan->o.wait_all)
                return;
        usec_t now = now_usec();
        struct level_sample ls = { .t = now };
        struct psi psi = {};
        if (cg_sandbox_usage(&s->cg.sb, &ls.usage) < 0)
                return;
        check_gap(s, now);
        check_limit(s, now);
        /* frozen: nothing decided (no level, ask, escalation, stall); the rest goes on */
        bool frozen = check_frozen(s, now);
        bool near_high = !frozen && cg_sandbox_has_high(&s->cg.sb) && s->p->stall_enabled &&
                         level_at_high(ls.usage, s->act.soft);
        if (!frozen) {
                read_psi(s, &ls, &psi, near_high);
                decide(s, &ls);
        }
        s->mon.last = ls;
        if (s->tl_fd >= 0)
                timeline_row(s, now, &ls);
        late_sources(s, now);
        if (near_high)
                check_stall(s, &ls, &psi);
        actions_tick(&s->act, now);
        arm_timer(s, frozen ? MONITOR_FROZEN_CHECK_USEC : next_interval(s, ls.usage));
        if (s->notify.up_fd >= 0)
                sdnotify_status(&s->notify, level_name(s->eng.cur), ls.usage, s->eng.limit, now);
        if (s->plan->o.metrics && usec_sub(now, s->metrics_t) >= USEC_PER_SEC)
                status_write_metrics(s, now);
}

static void on_timer(struct loop *l, int fd, uint32_t events, void *userdata)
{
        (void)l;
        (void)events;
        (void)loop_timer_ack(fd);
        monitor_sample(userdata);
}

static void on_memory_events(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct supervisor *s = userdata;
        (void)l;
        (void)fd;
        (void)events;
        if (cg_sandbox_event(&s->cg.sb) > 0) {
                struct cg_stats st;
                if (cg_sandbox_stats(&s->cg.sb, &st) == 0 && (st.ev_oom_kill || st.ev_oom))
                        log_debug("memory events: oom %llu, oom_kill %llu", (unsigned long long)st.ev_oom,
                                  (unsigned long long)st.ev_oom_kill);
        }
        monitor_sample(s);
}

int monitor_start(struct supervisor *s)
{
        struct monitor *m = &s->mon;
        *m = (struct monitor){ .tfd = -1, .psi_fd = -1, .psi_dir = -1 };
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                m->predicting |= s->p->levels[l].defined && s->p->levels[l].predict_usec;
        m->tfd = loop_add_timer(&s->loop, on_timer, s, "sampler");
        if (m->tfd < 0)
                return m->tfd;
        /* kernfs files always poll readable; only PRI means "changed". */
        if (s->cg.sb.events_fd >= 0)
                (void)loop_add(&s->loop, s->cg.sb.events_fd, cg_sandbox_events_poll(&s->cg.sb),
                               on_memory_events, s, "memory events");
        /* v1 thresholds 20 ms in, registered by a helper process; PSI once the command has run 100 ms
         * (late_sources): trigger setup and teardown cost an RCU grace period that a short command
         * should not pay. */
        setup_v1(s);
        return 0;
}

void monitor_stop(struct supervisor *s)
{
        struct monitor *m = &s->mon;
        for (unsigned i = 0; i < m->n_trig; i++) {
                loop_remove(&s->loop, m->trig[i].fd);
                close(m->trig[i].fd);
        }
        for (unsigned i = 0; i < m->n_v1; i++) {
                loop_remove(&s->loop, m->v1[i].fd);
                close(m->v1[i].fd);
        }
        m->n_trig = m->n_v1 = 0;
        loop_remove(&s->loop, s->cg.sb.events_fd);
        close_fd(&m->psi_fd);
        close_fd(&m->psi_dir);
}
