/* actions: what memrun does at a level: tell the limiters (trim/collect/shed), kernel reclaim,
 * signal the command, run hooks; plus the stall escalation. Nothing here blocks the event loop:
 * reclaim and hooks run in child processes, limiter messages never wait. */
#include "supervise/actions.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/size.h"
#include "log.h"
#include "kernel/proc.h"
#include "util.h"

void actions_init(struct actions *a, const struct policy *p, struct cg_sandbox *sb, pid_t child, uint64_t limit,
                  uint64_t soft, struct report_log *log, usec_t t0)
{
        *a = (struct actions){ .p = p, .sb = sb, .child = child, .limit = limit, .soft = soft,
                               .soft_configured = soft, .log = log, .t0 = t0, .proc_fd = -1 };
        log->high_final = soft;
        log->governor = p->hold;
        log->gave_up_t = USEC_INFINITY;
        gov_init(&a->gov, p, limit);
        a->last.setpoint = SIZE_MAX_VALUE;
}

uint64_t actions_goal(const struct level_engine *e, enum level l, uint64_t usage)
{
        uint64_t thr = level_usage_threshold(e, l);
        if (thr != SIZE_MAX_VALUE) {
                uint64_t margin = size_share(e->limit, e->p->hysteresis_ppm);
                uint64_t target = thr > margin ? thr - margin : 0;
                if (usage > target)
                        return usage - target;
        }
        return usage / 20; /* pressure without a usage threshold: ask for 5% */
}

static struct action_proc *free_proc(struct actions *a)
{
        for (size_t i = 0; i < ACTIONS_MAX_PROCS; i++)
                if (!a->procs[i].pid)
                        return &a->procs[i];
        return NULL;
}

static _Noreturn void child_common_fail(void)
{
        _exit(127);
}

static void child_reset(void)
{
        sigset_t all;
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
}

static pid_t spawn_reclaim(struct actions *a, uint64_t bytes)
{
        pid_t pid = fork();
        if (pid == 0) {
                child_reset();
                /* memory.reclaim blocks until done: that is why it runs here, not in the loop. */
                int r = cg_sandbox_reclaim(a->sb, bytes);
                _exit(r < 0 ? (-r & 0x7f) : 0);
        }
        return pid;
}

static pid_t spawn_hook(struct actions *a, const char *cmd, enum level l, uint64_t usage)
{
        char u[32], lim[32];
        snprintf(u, sizeof u, "%llu", (unsigned long long)usage);
        u64_or_max(a->limit, lim, sizeof lim);
        pid_t pid = fork();
        if (pid == 0) {
                child_reset();
                setpgid(0, 0); /* its own group, so a timeout kills the hook's whole tree */
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        dup2(fd, STDIN_FILENO);
                        if (fd != STDIN_FILENO)
                                close(fd);
                }
                setenv("MEMRUN_LEVEL", level_name(l), 1);
                setenv("MEMRUN_USAGE", u, 1);
                setenv("MEMRUN_LIMIT", lim, 1);
                setenv("MEMRUN_CGROUP", a->sb->path, 1);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                child_common_fail();
        }
        return pid;
}

static struct report_action *entry(struct actions *a, usec_t now, const char *what, enum level l)
{
        return report_log_action(a->log, usec_sub(now, a->t0), what, l);
}

void actions_run(struct actions *a, const struct level_engine *e, const struct level_decision *d, uint64_t usage,
                 usec_t now)
{
        enum level l = d->to;
        const struct policy_level *pl = &a->p->levels[l];
        uint64_t goal = actions_goal(e, l, usage);
        uint32_t mask = 0;
        char gbuf[32];

        if (a->p->hold) {
                /* The governor asks; limiters hear the level, and whether shedding is on. */
                if (a->limiter.broadcast && !d->repeat) {
                        uint32_t shed = a->gov.law.shedding && (gov_limiter_actions(a->p, l, GOV_SHED) & ACTION_MASK(ACTION_SHED))
                                                ? ACTION_MASK(ACTION_SHED)
                                                : 0;
                        (void)a->limiter.broadcast(a->limiter.ctx, l, shed, 0, usage, NULL);
                }
                if (!d->run_actions)
                        return;
                goto entry_actions;
        }
        for (unsigned i = 0; i < pl->n_actions; i++) {
                enum action_type t = pl->actions[i].type;
                if (t == ACTION_TRIM || t == ACTION_COLLECT || t == ACTION_SHED)
                        mask |= ACTION_MASK(t);
        }
        /* Limiters hear every level change, with or without actions (shedding ends on the way down). */
        if (a->limiter.broadcast && (mask || !d->run_actions)) {
                uint32_t seq = 0;
                int n = a->limiter.broadcast(a->limiter.ctx, l, d->run_actions ? mask : 0, goal, usage, &seq);
                for (int t = 0; d->run_actions && t < _ACTION_TYPE_MAX; t++) {
                        if (!(mask & ACTION_MASK(t)))
                                continue;
                        struct report_action *r = entry(a, now, action_type_name((enum action_type)t), l);
                        if (r) {
                                r->seq = seq ? seq : 0;
                                snprintf(r->detail, sizeof r->detail, "goal %s, %d limiter%s", size_format(goal, gbuf, sizeof gbuf),
                                         n < 0 ? 0 : n, n == 1 ? "" : "s");
                        }
                }
        } else if (mask && d->run_actions && !a->said_no_limiter) {
                log_debug("no limiter endpoint: trim/collect/shed have no one to tell");
                a->said_no_limiter = true;
        }
        if (!d->run_actions)
                return;

entry_actions:
        for (unsigned i = 0; i < pl->n_actions; i++) {
                const struct policy_action *pa = &pl->actions[i];
                struct report_action *r;
                struct action_proc *slot;
                switch (pa->type) {
                case ACTION_RECLAIM:
                        if (a->p->hold && cg_sandbox_can_reclaim(a->sb))
                                break; /* the governor's */
                        r = entry(a, now, "reclaim", l);
                        if (!cg_sandbox_can_reclaim(a->sb)) {
                                if (r)
                                        snprintf(r->detail, sizeof r->detail, "unsupported (no memory.reclaim)");
                                if (!a->said_no_reclaim)
                                        log_msg(a->p->builtin ? LOG_DEBUG : LOG_WARN, "reclaim: this cgroup has no memory.reclaim (cgroup v1 or a kernel "
                                                 "before 5.19); skipped");
                                a->said_no_reclaim = true;
                                break;
                        }
                        slot = free_proc(a);
                        if (!slot) {
                                if (r)
                                        snprintf(r->detail, sizeof r->detail, "skipped: too many running");
                                break;
                        }
                        pid_t pid = spawn_reclaim(a, goal);
                        if (pid < 0) {
                                if (r)
                                        snprintf(r->detail, sizeof r->detail, "fork: %s", strerror(errno));
                                break;
                        }
                        *slot = (struct action_proc){ .pid = pid, .started = now, .entry = r, .pa = pa, .usage_before = usage, .reclaim = true };
                        if (r)
                                snprintf(r->detail, sizeof r->detail, "goal %s", size_format(goal, gbuf, sizeof gbuf));
                        log_debug("%s: memory.reclaim %s (pid %d)", level_name(l), gbuf, (int)pid);
                        break;
                case ACTION_SIGNAL:
                        r = entry(a, now, "signal", l);
                        char sn[24];
                        signal_name(pa->signal, sn, sizeof sn);
                        /* Never kill by accident: a warning the program does not catch would end it. */
                        int caught = signal_default_kills(pa->signal) && a->proc_fd >= 0
                                             ? proc_catches(a->proc_fd, a->child, pa->signal)
                                             : 1;
                        if (caught == 0) {
                                a->log->signals_skipped++;
                                if (r) {
                                        snprintf(r->detail, sizeof r->detail, "%s skipped: not handled by pid %d", sn,
                                                 (int)a->child);
                                        r->took = 0;
                                }
                                if (a->said_unhandled++ == 0)
                                        log_warn("%s: not sending %s: pid %d does not handle it, and it would end "
                                                 "the program (signal actions are warnings)",
                                                 level_name(l), sn, (int)a->child);
                                break;
                        }
                        int k = kill(a->child, pa->signal);
                        if (r) {
                                snprintf(r->detail, sizeof r->detail, "%s to pid %d%s", sn, (int)a->child,
                                         k < 0 ? " failed" : "");
                                r->took = 0;
                        }
                        log_debug("%s: %s to pid %d", level_name(l), sn, (int)a->child);
                        break;
                case ACTION_EXEC:
                        r = entry(a, now, "exec", l);
                        bool running = false;
                        for (size_t j = 0; j < ACTIONS_MAX_PROCS; j++)
                                running |= a->procs[j].pid && a->procs[j].pa == pa;
                        slot = running ? NULL : free_proc(a);
                        if (!slot) {
                                if (r)
                                        snprintf(r->detail, sizeof r->detail, "skipped: %s",
                                                 running ? "previous run still going" : "too many running");
                                break;
                        }
                        pid = spawn_hook(a, pa->cmd, l, usage);
                        if (pid < 0) {
                                if (r)
                                        snprintf(r->detail, sizeof r->detail, "fork: %s", strerror(errno));
                                break;
                        }
                        *slot = (struct action_proc){ .pid = pid, .started = now, .entry = r, .pa = pa, .usage_before = usage };
                        if (r)
                                snprintf(r->detail, sizeof r->detail, "%.90s", pa->cmd);
                        log_debug("%s: hook '%s' (pid %d)", level_name(l), pa->cmd, (int)pid);
                        break;
                default:
                        break; /* limiter actions went out above */
                }
        }
}

bool actions_reaped(struct actions *a, pid_t pid, int status, uint64_t usage_now, usec_t now)
{
        for (size_t i = 0; i < ACTIONS_MAX_PROCS; i++) {
                struct action_proc *p = &a->procs[i];
                if (p->pid != pid)
                        continue;
                struct report_action *r = p->entry;
                usec_t took = usec_sub(now, p->started);
                int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (r) {
                        r->took = took;
                        r->status = p->timed_out ? 124 : code;
                        if (p->reclaim) {
                                r->freed = p->usage_before > usage_now ? p->usage_before - usage_now : 0;
                                a->freed_total += r->freed;
                                if (code == EAGAIN)
                                        snprintf(r->detail + strlen(r->detail), sizeof r->detail - strlen(r->detail),
                                                 " (kernel reclaimed less)");
                        }
                }
                if (p->governor) {
                        /* memory.reclaim succeeds only once it reclaimed all it was asked; short of that the
                         * drop in usage is what it did (a growing program hides some of it). */
                        uint64_t drop = p->usage_before > usage_now ? p->usage_before - usage_now : 0;
                        uint64_t freed = code == 0 ? p->asked : drop;
                        if (!r)
                                a->freed_total += drop;
                        a->log->agg[ACTION_RECLAIM].freed += freed;
                        a->log->agg[ACTION_RECLAIM].took = usec_add_sat(a->log->agg[ACTION_RECLAIM].took, took);
                        a->tl_freed += freed;
                        a->gov_reclaiming = false;
                        if (p->slack)
                                gov_slack_reply(&a->gov, p->asked, freed);
                        else
                                gov_reply(&a->gov, true, p->asked, freed, false, USEC_INFINITY);
                }
                log_debug("%s pid %d ended with status %d after %.0f ms", p->reclaim ? "reclaim" : "hook", (int)pid,
                          code, usec_to_msec(took));
                *p = (struct action_proc){};
                return true;
        }
        return false;
}

void actions_tick(struct actions *a, usec_t now)
{
        for (size_t i = 0; i < ACTIONS_MAX_PROCS; i++) {
                struct action_proc *p = &a->procs[i];
                if (!p->pid || p->reclaim || p->timed_out || usec_sub(now, p->started) < a->p->hook_timeout_usec)
                        continue;
                if (p->entry)
                        snprintf(p->entry->detail, sizeof p->entry->detail, "timed out: %.70s", p->pa->cmd);
                p->timed_out = true;
                log_warn("hook '%s' ran past %.1fs: killed", p->pa->cmd, usec_to_sec(a->p->hook_timeout_usec));
                kill(-p->pid, SIGKILL);
                kill(p->pid, SIGKILL);
        }
}

void actions_limiter_result(struct actions *a, uint32_t seq, enum action_type type, uint64_t freed, usec_t took)
{
        a->freed_total += freed;
        a->log->limiter_freed += freed;
        if ((unsigned)type < _ACTION_TYPE_MAX) {
                a->log->agg[type].freed += freed;
                a->log->agg[type].took = usec_add_sat(a->log->agg[type].took, took);
        }
        const char *name = action_type_name(type);
        for (unsigned i = a->log->n_actions; i-- > 0;) {
                struct report_action *r = &a->log->actions[i];
                if (r->seq != seq || strcmp(r->action, name) != 0)
                        continue;
                r->freed += freed;
                r->clients++;
                if (took > r->took)
                        r->took = took;
                return;
        }
}

/* The first governor asks go into the report's actions in full; the rest are only counted. */
static struct report_action *gov_entry(struct actions *a, usec_t now, const char *what, enum level l)
{
        if (a->log->gov_entries >= REPORT_GOV_ENTRIES) {
                a->log->gov_more++;
                return NULL;
        }
        struct report_action *r = entry(a, now, what, l);
        if (r)
                a->log->gov_entries++;
        return r;
}

static void govern_limiters(struct actions *a, enum level l, uint32_t mask, uint64_t goal, uint64_t usage, usec_t now)
{
        uint32_t seq = 0;
        char gbuf[32];
        int n = a->limiter.ask(a->limiter.ctx, l, mask, goal, usage, &seq);
        if (n <= 0)
                return;
        a->tl_asked += goal;
        a->log->asks += (uint64_t)n;
        a->log->asked += goal;
        for (int t = 0; t < _ACTION_TYPE_MAX; t++) {
                if (!(mask & ACTION_MASK(t)))
                        continue;
                a->log->agg[t].asks += (uint64_t)n;
                a->log->agg[t].asked += goal;
        }
        /* One entry per round, named by its cheapest action (the first REPORT_GOV_ENTRIES; the log
         * line below names the goal for every one). */
        size_format(goal, gbuf, sizeof gbuf);
        struct report_action *r = gov_entry(a, now, action_type_name((enum action_type)__builtin_ctz(mask)), l);
        if (r) {
                r->seq = seq;
                snprintf(r->detail, sizeof r->detail, "goal %s, %d limiter%s (governor, %s)", gbuf, n,
                         n == 1 ? "" : "s", gov_step_name((enum gov_step)a->gov.law.step));
        }
        log_debug("governor: %s asks %d limiter%s for %s (usage %llu)", level_name(l), n, n == 1 ? "" : "s", gbuf,
                  (unsigned long long)usage);
}

static void govern_reclaim(struct actions *a, enum level l, uint64_t bytes, bool slack, uint64_t usage, usec_t now)
{
        char gbuf[32];
        struct action_proc *slot = free_proc(a);
        if (!slot)
                return;
        pid_t pid = spawn_reclaim(a, bytes);
        if (pid < 0) {
                log_debug("governor: cannot fork for memory.reclaim: %m");
                return;
        }
        struct report_action *r = gov_entry(a, now, "reclaim", l);
        if (r)
                snprintf(r->detail, sizeof r->detail, "goal %s (governor%s)", size_format(bytes, gbuf, sizeof gbuf),
                         slack ? ", unmapped anon" : "");
        *slot = (struct action_proc){ .pid = pid, .started = now, .entry = r, .usage_before = usage, .reclaim = true,
                                      .governor = true, .asked = bytes, .slack = slack };
        a->gov_reclaiming = true;
        a->log->agg[ACTION_RECLAIM].asks++;
        a->log->agg[ACTION_RECLAIM].asked += bytes;
        a->tl_asked += bytes;
}

static void give_up(struct actions *a, enum level l, uint64_t usage, const struct gov_sample *s, bool at_once,
                    usec_t now)
{
        char b1[32], b2[32], b3[32], why[64];
        struct report_action *r = entry(a, now, "giveup", l);
        a->log->giveups++;
        struct cg_stats st;
        a->giveup_oom_kills = cg_sandbox_stats(a->sb, &st) == 0 ? st.ev_oom_kill : 0;
        if (a->log->gave_up_t == USEC_INFINITY)
                a->log->gave_up_t = usec_sub(now, a->t0);
        bool high = cg_sandbox_has_high(a->sb);
        int w = high && a->soft != SIZE_MAX_VALUE ? cg_sandbox_set_high(a->sb, SIZE_MAX_VALUE) : 0;
        a->lifted = high && w == 0;
        if (a->lifted)
                a->log->high_final = SIZE_MAX_VALUE;
        if (at_once)
                snprintf(why, sizeof why, "nothing to give, heading for the soft limit");
        else
                snprintf(why, sizeof why, "short answers at the soft limit for %.1fs", usec_to_sec(a->p->giveup_usec));
        if (r)
                snprintf(r->detail, sizeof r->detail, "at %s: %s%s", size_format(usage, b1, sizeof b1), why,
                         a->lifted ? "; memory.high lifted" : "");
        log_warn("governor: usage %s of soft limit %s: %s (%s, %s); giving up: %s, memory.max (%s) decides",
                 size_format(usage, b1, sizeof b1), size_format(a->soft, b2, sizeof b2), why,
                 s->clients ? "the limiters gave back nothing" : "no limiter attached",
                 s->can_reclaim ? "nothing reclaimable" : "no kernel reclaim here",
                 a->lifted ? "memory.high lifted" : "no more asks", size_format(a->limit, b3, sizeof b3));
        if (a->lifted && a->limiter.soft)
                a->limiter.soft(a->limiter.ctx, SIZE_MAX_VALUE);
}

void actions_govern(struct actions *a, const struct level_engine *e, const struct level_sample *ls, bool entered,
                    usec_t now)
{
        if (!a->p->hold || !a->gov.active)
                return;
        struct gov_sample s = {
                .t = now, .usage = ls->usage, .level = e->cur, .entered = entered, .rate = e->rate, .soft = a->soft,
                .reclaimable = SIZE_MAX_VALUE, .can_reclaim = cg_sandbox_can_reclaim(a->sb),
                .reclaim_running = a->gov_reclaiming,
        };
        /* Who can answer, at every sample (a table walk, no system call): the law gives up at once on
         * a program with nobody to ask, so it must never be told "nobody" for want of looking. */
        if (a->limiter.state)
                a->limiter.state(a->limiter.ctx, a->p->ask_timeout_usec, &s.clients, &s.outstanding,
                                 &s.askable);
        /* memory.stat only near the setpoint: the idle sample stays one read (unknown counts as
         * reclaimable, never as nothing to give). */
        uint64_t sp = gov_setpoint(&a->gov, a->soft, e->rate);
        bool near = sp != SIZE_MAX_VALUE && ls->usage + ls->usage / 16 > sp;
        if (s.can_reclaim && near) {
                uint64_t rc;
                if (cg_sandbox_reclaim_stat(a->sb, &rc, &s.slack) == 0)
                        s.reclaimable = rc;
        }
        struct gov_decision d;
        gov_step(&a->gov, &s, &d);
        a->last = d;
        if (a->gov.law.step_max > LAW_TRIM || d.limiter || d.reclaim)
                a->log->step_max = gov_step_name((enum gov_step)a->gov.law.step_max);

        if (d.shed_changed && a->limiter.broadcast) {
                log_debug("governor: shedding %s", d.shedding ? "on" : "off");
                (void)a->limiter.broadcast(a->limiter.ctx, e->cur, d.shedding ? ACTION_MASK(ACTION_SHED) : 0, 0,
                                           ls->usage, NULL);
        }
        if (d.limiter && a->limiter.ask)
                govern_limiters(a, e->cur, d.limiter, d.limiter_goal, ls->usage, now);
        if (d.reclaim)
                govern_reclaim(a, e->cur, d.reclaim, d.step < GOV_RECLAIM, ls->usage, now);
        if (d.giveup)
                give_up(a, e->cur, ls->usage, &s, d.at_once, now);
        if (d.resume) {
                if (a->lifted && cg_sandbox_set_high(a->sb, a->soft) == 0) {
                        a->lifted = false;
                        a->log->high_final = a->soft;
                        if (a->limiter.soft)
                                a->limiter.soft(a->limiter.ctx, a->soft);
                }
                /* Usage fell because the OOM killer ended a process (memory.max decided, as the
                 * give-up said): the OOM report tells that; "back under" would read as a recovery. */
                struct cg_stats st;
                if (cg_sandbox_stats(a->sb, &st) == 0 && st.ev_oom_kill > a->giveup_oom_kills)
                        log_debug("governor: usage is back under the setpoint after an OOM kill");
                else
                        log_info("governor: usage is back under the setpoint: holding the soft limit again");
        }
}

void actions_round(struct actions *a, uint64_t goal, uint64_t freed, bool deferred, usec_t latency)
{
        a->log->rounds++;
        a->tl_freed += freed;
        gov_reply(&a->gov, false, goal, freed, deferred, latency);
}

int actions_stall(struct actions *a, uint64_t usage, usec_t now)
{
        const struct policy *p = a->p;
        char b1[32], b2[32], b3[32];
        if (p->stall_action == STALL_KILL || a->soft >= a->limit) {
                struct report_action *r = entry(a, now, "stall-kill", LEVEL_CRITICAL);
                if (r)
                        snprintf(r->detail, sizeof r->detail, "throttled at memory.high %s for %.1fs, nothing freed",
                                 size_format(a->soft, b1, sizeof b1), usec_to_sec(p->stall_duration_usec));
                log_warn("stall: the sandbox sat throttled at memory.high (%s, usage %s) for %.1fs with nothing "
                         "freed; killing it ([stall] action = %s)",
                         size_format(a->soft, b1, sizeof b1), size_format(usage, b2, sizeof b2),
                         usec_to_sec(p->stall_duration_usec), p->stall_action == STALL_KILL ? "kill" : "raise, at max");
                a->log->stall_killed = true;
                (void)cg_sandbox_kill(a->sb);
                return 1;
        }
        uint64_t step = size_share(a->limit - a->soft, p->stall_step_ppm);
        if (step < 4096)
                step = a->limit - a->soft;
        uint64_t nh = a->soft + step > a->limit ? a->limit : a->soft + step;
        int r = cg_sandbox_set_high(a->sb, nh);
        struct report_action *e = entry(a, now, "stall-raise", LEVEL_CRITICAL);
        if (e)
                snprintf(e->detail, sizeof e->detail, "memory.high %s -> %s%s", size_format(a->soft, b1, sizeof b1),
                         size_format(nh, b2, sizeof b2), r < 0 ? " (write failed)" : "");
        log_warn("stall: throttled at memory.high for %.1fs with nothing freed (usage %s): raising memory.high %s -> %s",
                 usec_to_sec(p->stall_duration_usec), size_format(usage, b3, sizeof b3), b1, b2);
        if (r == 0) {
                a->soft = nh;
                a->log->high_final = nh;
        }
        return 0;
}

void actions_shutdown(struct actions *a, usec_t now)
{
        for (size_t i = 0; i < ACTIONS_MAX_PROCS; i++) {
                struct action_proc *p = &a->procs[i];
                if (!p->pid)
                        continue;
                if (!p->reclaim)
                        kill(-p->pid, SIGKILL);
                kill(p->pid, SIGKILL);
                int st;
                while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
                        ;
                if (p->entry) {
                        p->entry->took = usec_sub(now, p->started);
                        snprintf(p->entry->detail + strlen(p->entry->detail),
                                 sizeof p->entry->detail - strlen(p->entry->detail), " (killed at exit)");
                }
                *p = (struct action_proc){};
        }
}
