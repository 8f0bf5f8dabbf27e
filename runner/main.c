/* main: memrun's command line to exit status: place, limit, spawn, supervise, clean up, report. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/policy.h"
#include "config/size.h"
#include "cgroup/cg.h"
#include "kernel/kmsg.h"
#include "log.h"
#include "control/lsrv.h"
#include "supervise/monitor.h"
#include "options.h"
#include "supervise/preload.h"
#include "kernel/psi.h"
#include "kernel/proc.h"
#include "cgroup/registry.h"
#include "confine/sandbox.h"
#include "systemd/sdnotify.h"
#include "systemd/sdscope.h"
#include "control/ctl.h"
#include "supervise/report.h"
#include "supervise/spawn.h"
#include "util.h"

#ifndef MEMRUN_VERSION
#define MEMRUN_VERSION "0.0.0"
#endif

#define EXIT_MEMRUN 125
#define EXIT_OOM 137 /* 128 + SIGKILL: what a shell shows for an OOM-killed command */

#ifndef MEMRUN_LIBDIR
#define MEMRUN_LIBDIR "/usr/local/lib/memrun"
#endif

static uint64_t physical_ram(void)
{
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static const char *env_or(const char *name, const char *def)
{
        const char *v = getenv(name);
        return v && *v ? v : def;
}

/* Big and fixed-size: static, so nothing of it is allocated while the sandbox is under pressure. */
static struct lsrv limiter;
static struct report_log replog;

struct limiter_link {
        struct actions *act;
};

static int limiter_broadcast(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage,
                             uint32_t *ret_seq)
{
        return lsrv_broadcast(ctx, level, actions, goal, usage, ret_seq);
}

static int limiter_ask(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage, uint32_t *ret_seq)
{
        return lsrv_ask(ctx, level, actions, goal, usage, ret_seq);
}

static void limiter_state(void *ctx, uint64_t timeout_ns, unsigned *ret_clients, uint64_t *ret_outstanding,
                          unsigned *ret_askable)
{
        struct lsrv *s = ctx;
        lsrv_ask_state(s, timeout_ns, ret_outstanding, ret_askable);
        *ret_clients = s->st.clients;
}

static void limiter_round(const struct lsrv_round *r, void *userdata)
{
        struct limiter_link *link = userdata;
        if (link->act)
                actions_round(link->act, r->goal, r->freed, (double)r->latency_ns / 1e9);
}

static void limiter_result(const struct lsrv_result *r, void *userdata)
{
        struct limiter_link *link = userdata;
        if (link->act)
                actions_limiter_result(link->act, r->seq, r->action, r->freed, (double)r->usec / 1000.0);
}

static void limiter_dispatch(void *ctx, struct actions *a)
{
        struct limiter_link *link = ctx;
        link->act = a;
        (void)lsrv_dispatch(&limiter);
}

/* systemd's memory pressure protocol (docs/PRESSURE.md): sd-event programs arm this trigger. */
static void pressure_env(const struct cg_host *h, const struct cg_sandbox *sb, const struct policy *p, char *watch,
                         size_t watch_size, char *write64, size_t write_size)
{
        int n = -1;
        if (psi_cgroup_has_pressure(sb->uni_fd))
                n = snprintf(watch, watch_size, "%s%s%s/memory.pressure", h->root,
                             h->mode == CG_HYBRID ? "/unified" : "", sb->uni_path);
        if (n < 0 || (size_t)n >= watch_size)
                snprintf(watch, watch_size, "/proc/pressure/memory");
        /* The child may lack CAP_SYS_RESOURCE: a window the kernel takes from anyone. */
        uint64_t window = psi_window_fix(p->psi_window_usec, false);
        uint32_t ppm = p->levels[LEVEL_MODERATE].defined && p->levels[LEVEL_MODERATE].psi_some_ppm
                               ? p->levels[LEVEL_MODERATE].psi_some_ppm
                               : 100000;
        char trig[64];
        n = snprintf(trig, sizeof trig, "some %llu %llu",
                         (unsigned long long)((unsigned __int128)window * ppm / PCT_ONE), (unsigned long long)window);
        if (write_size >= 4 * ((size_t)n + 1 + 2) / 3 + 1)
                base64_encode(trig, (size_t)n + 1, write64); /* with its NUL, as the kernel wants it */
        else
                write64[0] = '\0';
}

/* Kill what is left of the sandbox and wait until it is empty, reaping what we can. */
static void empty_sandbox(struct cg_sandbox *sb, pid_t child, int *status, int *reaped)
{
        (void)cg_sandbox_kill(sb);
        for (int i = 0; i < 1000; i++) {
                monitor_reap(child, status, reaped, NULL, sb);
                if (!cg_sandbox_populated(sb))
                        return;
                if (i % 100 == 99)
                        (void)cg_sandbox_kill(sb);
                struct timespec ts = { 0, i < 50 ? 1000000L : 10000000L };
                nanosleep(&ts, NULL);
        }
        log_warn("processes remain in %s after SIGKILL (stuck in the kernel?)", sb->path);
}

/* Everything decided before the run starts, from argv and the policy: made once in main, then only
 * read. Static storage, like the rest of the big state: nothing of it is allocated. */
struct plan {
        struct options o;
        struct policy policy;
        char name[256];
        const char *cgroup_root, *proc_root, *dev_root;
};

/* What a run holds; run_teardown releases all of it, whatever stage the run reached. */
struct run {
        const struct plan *plan;
        struct cg_host h;
        bool host_open;
        struct cg_sandbox sb;
        bool recorded;            /* the registry knows the sandbox: remove it at teardown */
        struct registry reg;
        int sigfd, kfd, tl_fd;
        sigset_t orig;
        struct limiter_link link;
        char endpoint[128], watch[PATH_MAX], write64[128], preload[PATH_MAX * 2];
        const char *env[12];
        pid_t child;              /* 0: not spawned */
        int status, reaped;
        bool emptied;
        double t0;
        struct report rep;
        bool sandbox_oom;
        struct sandbox_run sbx;   /* --sandbox, --user */
        bool sbx_used;
        struct sdnotify notify;   /* systemd's protocols, handed on to the command */
        struct ctl_server ctl;    /* memrunctl's socket */
        uint64_t limit, soft;     /* in force: the plan's, or with --in-place the enclosing cgroup's */
        int proc_fd;              /* who is in the sandbox (control and notify peers) */
};

static struct plan plan;

static void limits_changed(void *owner, uint64_t limit, uint64_t soft)
{
        (void)owner;
        lsrv_set_limits(&limiter, limit, soft);
}

/* Is pid one of the sandbox's processes? 1 yes, 0 no, -errno when it cannot be told. */
static int sandbox_has(const struct run *R, pid_t pid)
{
        char buf[16384];
        if (R->proc_fd < 0)
                return -EBADF;
        if (R->sb.in_place)
                return proc_is_descendant(R->proc_fd, pid, getpid());
        return proc_cgroup_inside(R->proc_fd, pid, R->h.mode, R->sb.path, buf, sizeof buf);
}

/* memrunctl: never the sandbox's own processes (nor one that cannot be told apart) */
static bool ctl_peer_inside(void *ctx, pid_t pid)
{
        return sandbox_has(ctx, pid) != 0;
}

/* sd_notify: only the command's own processes speak for it */
static bool notify_sender_ok(void *ctx, pid_t pid)
{
        return sandbox_has(ctx, pid) == 1;
}

static void notify_dispatch(void *owner)
{
        struct run *R = owner;
        sdnotify_dispatch(&R->notify, now_mono(), notify_sender_ok, R);
}

static void notify_sample(void *owner, enum level level, uint64_t usage, uint64_t limit)
{
        struct run *R = owner;
        sdnotify_status(&R->notify, level_name(level), usage, limit, now_mono());
}

/* Place, create, limit, watch, open the limiter, spawn. 0 when the command runs; else the exit
 * status to give (125, or 126/127 from spawn), with what was made left for run_teardown. */
static int run_setup(struct run *R)
{
        const struct options *o = &R->plan->o;
        struct cg_place_facts facts;
        struct cg_placement place;
        char rundir[PATH_MAX];
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        for (const int *s = (const int[]){ SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, 0 };
             *s; s++)
                sigaddset(&mask, *s);
        sigprocmask(SIG_BLOCK, &mask, &R->orig);
        R->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (R->sigfd < 0) {
                log_error("signalfd: %m");
                return EXIT_MEMRUN;
        }
        (void)sdnotify_open(&R->notify);
        R->proc_fd = proc_open_root(R->plan->proc_root);
        if (cg_host_open(R->plan->cgroup_root, R->plan->proc_root, &R->h) < 0)
                return EXIT_MEMRUN;
        R->host_open = true;
        /* Before anything is made: a user that does not exist leaves nothing behind. */
        const struct sandbox_spec *spec = &R->plan->policy.sandbox;
        R->sbx_used = spec->enabled || spec->user[0];
        if (R->sbx_used && sandbox_prepare(spec, R->plan->proc_root, NULL, &R->sbx) < 0)
                return EXIT_MEMRUN;

        R->limit = o->limit;
        R->soft = o->soft;
        if (o->in_place) {
                /* A container's own cgroup: nothing created, written or removed; its limits apply. */
                uint64_t max, high;
                if (cg_sandbox_adopt(&R->h, R->plan->proc_root, &R->sb, &max, &high) < 0)
                        return EXIT_MEMRUN;
                /* the enclosing limit is the one that kills: a --limit may only be lower */
                if (R->limit == SIZE_MAX_VALUE || (max != SIZE_MAX_VALUE && R->limit > max))
                        R->limit = max;
                R->soft = o->soft_set ? (R->soft > R->limit ? R->limit : R->soft)
                          : high != SIZE_MAX_VALUE && high < R->limit ? high
                          : R->limit == SIZE_MAX_VALUE ? SIZE_MAX_VALUE
                                                       : size_share(R->limit, 900000);
                char a[32], b[32];
                log_debug("--in-place: cgroup %s, limit %s, soft %s (memrun's own levels hold it; nothing is written)",
                          R->sb.path, size_format(R->limit, a, sizeof a), size_format(R->soft, b, sizeof b));
                if (R->limit == SIZE_MAX_VALUE)
                        log_warn("--in-place: the enclosing cgroup %s has no memory limit: levels and the governor "
                                 "have nothing to hold to (give --limit)", R->sb.path);
        } else {
                r = registry_dir(rundir, sizeof rundir);
                if (r < 0)
                        return log_error_errno(r, "cannot use runtime directory %s: %m", rundir), EXIT_MEMRUN;
                (void)registry_sweep(rundir, &R->h);

                cg_place_facts_read(&R->h, o->cgroup, &facts);
                if (cg_place_wants_scope(&facts)) {
                        /* Not delegated, but systemd runs the machine: ask it for a delegated scope. */
                        char unit[64], desc[300];
                        snprintf(desc, sizeof desc, "memrun %s: %s", R->plan->name, o->argv[0]);
                        r = sdscope_enter(!facts.root_user, desc, R->plan->proc_root, unit, sizeof unit);
                        if (r == 0) {
                                log_debug("systemd's %s manager put memrun in %s (Delegate=yes)",
                                          facts.root_user ? "system" : "user", unit);
                                cg_host_close(&R->h);
                                R->host_open = false;
                                if (cg_host_open(R->plan->cgroup_root, R->plan->proc_root, &R->h) < 0)
                                        return EXIT_MEMRUN;
                                R->host_open = true;
                                cg_place_facts_read(&R->h, o->cgroup, &facts);
                        } else
                                log_warn_errno(r, "memrun's cgroup %s is not delegated and systemd's %s manager gave no scope "
                                                  "(%m; -v says why)", facts.own, facts.root_user ? "system" : "user");
                }
                if (cg_place(&facts, &place) < 0)
                        return EXIT_MEMRUN;
                cg_sandbox_paths(&R->h, &place, R->plan->name, &R->sb);
                r = registry_add(rundir, &R->sb, &R->reg);
                if (r < 0)
                        return log_error_errno(r, "cannot record the sandbox in %s: %m", rundir), EXIT_MEMRUN;
                R->recorded = true;
                if (cg_sandbox_create(&R->h, &place, &R->sb) < 0)
                        return EXIT_MEMRUN;
                if (cg_sandbox_set_limits(&R->sb, R->limit, R->soft, o->swap) < 0)
                        return EXIT_MEMRUN;
        }
        r = cg_sandbox_watch(&R->sb);
        if (r < 0)
                log_msg_errno(R->sb.in_place && r == -EROFS ? LOG_DEBUG : LOG_WARN, r,
                              "cannot watch memory events of %s: %m (OOM kills are still read at exit)", R->sb.path);

        r = ctl_open(&R->ctl);
        if (r < 0)
                log_debug_errno(r, "no control socket (%m): memrunctl cannot reach this sandbox");
        r = lsrv_open(&limiter, R->h.mode, R->sb.path, R->plan->proc_root, R->endpoint, sizeof R->endpoint);
        if (r < 0) {
                log_warn_errno(r, "cannot open the limiter endpoint (%m): trim/collect/shed reach no one");
                R->endpoint[0] = '\0';
        } else {
                lsrv_set_limits(&limiter, R->limit, R->soft);
                lsrv_on_result(&limiter, limiter_result, &R->link);
                lsrv_on_round(&limiter, limiter_round, &R->link);
        }
        pressure_env(&R->h, &R->sb, &R->plan->policy, R->watch, sizeof R->watch, R->write64, sizeof R->write64);
        if (R->sbx_used) {
                /* sd-event programs arm a trigger on memory.pressure: under --sandbox it stays
                 * writable, and a dropped user owns it. */
                if (R->sbx.mount_ns && strncmp(R->watch, R->h.root, strlen(R->h.root)) == 0)
                        snprintf(R->sbx.keep_rw, sizeof R->sbx.keep_rw, "%s", R->watch);
                if (R->sbx.drop_user && !R->sb.in_place) {
                        r = cg_sandbox_chown_pressure(&R->sb, R->sbx.uid, R->sbx.gid);
                        if (r < 0 && r != -ENOENT)
                                log_debug_errno(r, "cannot give memory.pressure to %s: %m", R->sbx.user);
                }
                char what[512];
                sandbox_describe(&R->sbx, what, sizeof what);
                log_debug("%s", what);
        }
        if (o->preload) {
                char lib[PATH_MAX];
                r = preload_find("/proc/self/exe", MEMRUN_LIBDIR, lib, sizeof lib);
                if (r < 0)
                        log_warn_errno(r, "--preload: libmemlimit-preload.so not found beside memrun or in %s (%m): "
                                       "running the command without it", MEMRUN_LIBDIR);
                else if (preload_value(o->argv[0], lib, getenv("LD_PRELOAD"), R->preload, sizeof R->preload) > 0)
                        log_debug("LD_PRELOAD=%s", R->preload);
        }
        size_t ne = 0;
        R->env[ne++] = "MEMORY_PRESSURE_WATCH";
        R->env[ne++] = R->watch;
        R->env[ne++] = "MEMORY_PRESSURE_WRITE";
        R->env[ne++] = R->write64;
        if (R->endpoint[0]) {
                R->env[ne++] = "MEMRUN_LIMITER";
                R->env[ne++] = R->endpoint;
        }
        if (R->preload[0]) {
                R->env[ne++] = "LD_PRELOAD";
                R->env[ne++] = R->preload;
        }
        R->env[ne] = NULL;

        R->kfd = kmsg_open(R->plan->dev_root);
        if (R->kfd < 0)
                log_debug_errno(R->kfd, "/dev/kmsg not readable (%m): OOM victims will not be named");
        /* Orphaned grandchildren come to us, so they are reaped and the cgroup can empty. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);

        struct spawn_req req = {
                .argv = o->argv,
                .sandbox = &R->sb,
                .limit = R->limit,
                .soft = R->soft,
                .hints = !o->no_hints,
                .child_mask = &R->orig,
                .env = R->env,
                .sandbox_run = R->sbx_used ? &R->sbx : NULL,
                .notify = &R->notify,
        };
        R->t0 = now_mono();
        r = spawn_child(&req, &R->child);
        if (r > 0) {
                R->child = 0;
                return r;
        }
        return 0;
}

/* The command runs: the monitor's loop until it is reaped. */
static void run_supervise(struct run *R)
{
        const struct options *o = &R->plan->o;
        bool lim = R->endpoint[0] != '\0';
        if (o->timeline) {
                R->tl_fd = strcmp(o->timeline, "-") == 0
                                   ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)
                                   : open(o->timeline, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
                static const char header[] = "time_s,usage,soft,hard,psi_some,psi_full,level,asked,freed,step\n";
                if (R->tl_fd < 0 || write(R->tl_fd, header, sizeof header - 1) < 0)
                        log_warn("cannot write timeline %s: %m", o->timeline);
        }
        struct monitor_cfg mcfg = {
                .policy = &R->plan->policy,
                .limit = R->limit,
                .soft = R->soft,
                .limiter = { lim ? limiter_broadcast : NULL, lim ? limiter_ask : NULL, lim ? limiter_state : NULL,
                             &limiter },
                .proc_root = R->plan->proc_root,
                .limiter_fd = lim ? lsrv_fd(&limiter) : -1,
                .limiter_dispatch = limiter_dispatch,
                .limiter_ctx = &R->link,
                .log = &replog,
                .t0 = R->t0,
                .timeline_fd = R->tl_fd,
                .notify_fd = R->notify.up_fd >= 0 ? R->notify.relay_fd : -1,
                .notify_dispatch = notify_dispatch,
                .on_sample = R->notify.up_fd >= 0 ? notify_sample : NULL,
                .wait_all = o->wait_all,
                .ctl = R->ctl.fd >= 0 ? &R->ctl : NULL,
                .metrics_path = o->metrics,
                .name = R->plan->name,
                .argv0 = o->argv[0],
                .swap = o->swap,
                .limits_changed = limits_changed,
                .inside = ctl_peer_inside,
                .owner = R,
        };
        int r = monitor_run(&mcfg, &R->sb, R->sigfd, R->child, &R->status);
        R->link.act = NULL;
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m; killing the sandbox");
                (void)cg_sandbox_kill(&R->sb);
                while (waitpid(R->child, &R->status, 0) < 0 && errno == EINTR)
                        ;
        }
}

/* What happened: the sandbox's counters, emptied, the OOM victim, the exit status. */
static void run_post_mortem(struct run *R)
{
        const struct options *o = &R->plan->o;
        struct report *rep = &R->rep;
        *rep = (struct report){
                .argv = o->argv,
                .duration_s = now_mono() - R->t0,
                .mode = R->h.mode,
                .cgroup_path = R->sb.path,
                .max = R->limit,
                .high = R->soft,
                .swap_max = o->swap,
                .log = &replog,
                .sandbox = R->sbx_used ? &R->sbx : NULL,
        };
        (void)cg_sandbox_stats(&R->sb, &rep->stats);
        empty_sandbox(&R->sb, R->child, &R->status, &R->reaped);
        R->emptied = true;
        /* Counters may have moved while the rest of the tree died (group OOM kill in flight). */
        struct cg_stats late;
        if (cg_sandbox_stats(&R->sb, &late) == 0) {
                rep->stats.ev_oom_kill = late.ev_oom_kill;
                rep->stats.ev_oom_group_kill = late.ev_oom_group_kill;
                rep->stats.ev_oom = late.ev_oom;
                if (late.peak > rep->stats.peak)
                        rep->stats.peak = late.peak;
        }
        R->sandbox_oom = rep->stats.ev_oom_kill > 0 || rep->stats.ev_oom_group_kill > 0;
        if (R->sandbox_oom && R->kfd >= 0)
                rep->victim_known = kmsg_wait_oom(R->kfd, R->sb.path, R->child, 500, &rep->victim) > 0;
        if (WIFSIGNALED(R->status)) {
                rep->signal = WTERMSIG(R->status);
                rep->exit_code = 128 + rep->signal;
                rep->oom_killed = rep->signal == SIGKILL && R->sandbox_oom;
        } else {
                rep->exit_code = WEXITSTATUS(R->status);
        }
        /* --wait-all: the daemon the command left behind is what ran; its OOM kill is the run's. */
        if (o->wait_all && R->sandbox_oom && !rep->oom_killed) {
                rep->oom_killed = true;
                rep->exit_code = EXIT_OOM;
        }
        struct lsrv_stats ls;
        lsrv_stats(&limiter, &ls);
        replog.limiter_clients = (unsigned)ls.clients_ever;
}

/* The one way out: whatever the run made is undone, in reverse. */
static void run_teardown(struct run *R)
{
        lsrv_close(&limiter);
        if (R->recorded) {
                if (!R->emptied && R->sb.mem_fd >= 0) {
                        int st = 0, rp = 0;
                        empty_sandbox(&R->sb, -1, &st, &rp);
                }
                cg_sandbox_remove(&R->h, &R->sb);
                registry_drop(&R->reg);
        }
        cg_sandbox_close(&R->sb);
        if (R->host_open)
                cg_host_close(&R->h);
        close_fd(&R->kfd);
        close_fd(&R->tl_fd);
        close_fd(&R->sigfd);
        if (R->sbx_used)
                sandbox_release(&R->sbx);
        sdnotify_close(&R->notify);
        ctl_close(&R->ctl);
        close_fd(&R->proc_fd);
}

/* Say what happened: the OOM line, the summary, the report; the exit status. */
static int run_emit(const struct run *R)
{
        const struct options *o = &R->plan->o;
        const struct report *rep = &R->rep;
        char warn_prefix[16], info_prefix[16];
        snprintf(warn_prefix, sizeof warn_prefix, "%smemrun", log_journal_prefix(LOG_WARN));
        snprintf(info_prefix, sizeof info_prefix, "%smemrun", log_journal_prefix(LOG_INFO));
        if (rep->oom_killed)
                report_oom_line(stderr, warn_prefix, rep);
        else if (R->sandbox_oom)
                log_warn("the OOM killer ended %s in the sandbox (oom_kill %llu), but %s itself %s %d",
                         rep->victim_known ? rep->victim.comm : "a process",
                         (unsigned long long)rep->stats.ev_oom_kill, o->argv[0],
                         rep->signal ? "died with status" : "exited", rep->exit_code);
        if (o->verbosity >= 0)
                report_summary(stderr, info_prefix, rep);
        if (o->report) {
                int r = report_write(o->report, rep);
                if (r < 0)
                        return log_error_errno(r, "cannot write report %s: %m", o->report), EXIT_MEMRUN;
        }
        if (o->expect_oom) {
                if (R->sandbox_oom)
                        return 0;
                log_error("--expect-oom: %s was not OOM-killed (%s %d)", o->argv[0],
                          rep->signal ? "status" : "exit status", rep->exit_code);
                return rep->exit_code ? rep->exit_code : 1;
        }
        return rep->exit_code;
}

static int run(const struct plan *p)
{
        static struct run R;
        R = (struct run){ .plan = p, .reg = { .fd = -1 }, .sigfd = -1, .kfd = -1, .tl_fd = -1, .ctl = { .fd = -1 }, .proc_fd = -1 };
        cg_sandbox_init(&R.sb);
        lsrv_init(&limiter);

        int r = run_setup(&R);
        if (r != 0) {
                run_teardown(&R);
                return r;
        }
        run_supervise(&R);
        run_post_mortem(&R);
        run_teardown(&R);
        r = run_emit(&R);
        /* A command ended by TERM, INT or HUP (stopped by systemd, interrupted at a terminal): end
         * memrun by the same signal, so its parent sees what it would have seen of the bare command
         * (a service manager counts these as a clean stop; a shell stops its loop on INT). */
        int sig = R.rep.signal;
        if ((sig == SIGTERM || sig == SIGINT || sig == SIGHUP) && !p->o.expect_oom && !R.rep.oom_killed) {
                sigset_t m;
                fflush(NULL);
                signal(sig, SIG_DFL);
                sigemptyset(&m);
                sigaddset(&m, sig);
                sigprocmask(SIG_UNBLOCK, &m, NULL);
                raise(sig);
        }
        return r;
}

int main(int argc, char **argv)
{
        struct options *o = &plan.o;

        (void)log_detect_journal();
        if (options_parse(argc, argv, physical_ram(), o) < 0)
                return EXIT_MEMRUN;
        if (o->help) {
                options_usage();
                return 0;
        }
        if (o->version) {
                printf("memrun %s\n", MEMRUN_VERSION);
                return 0;
        }
        log_set_verbosity(o->verbosity);

        const char *policy_file = o->check_policy ? o->check_policy : o->policy;
        char err[1024];
        if (policy_file) {
                if (policy_parse_file(policy_file, &plan.policy, err, sizeof err) < 0) {
                        log_error("%s", err);
                        return EXIT_MEMRUN;
                }
        } else {
                policy_default(&plan.policy);
        }
        if (options_apply_policy(o, &plan.policy) < 0)
                return EXIT_MEMRUN;
        if (policy_validate(&plan.policy, err, sizeof err) < 0) {
                log_error("%s%s%s", policy_file ? policy_file : "", policy_file ? ": " : "", err);
                return EXIT_MEMRUN;
        }
        if (o->check_policy) {
                policy_print(stdout, &plan.policy);
                return 0;
        }
        if (o->name)
                snprintf(plan.name, sizeof plan.name, "%s", o->name);
        else
                snprintf(plan.name, sizeof plan.name, "memrun-%d", (int)getpid());
        plan.cgroup_root = env_or("MEMRUN_CGROUP_ROOT", "/sys/fs/cgroup");
        plan.proc_root = env_or("MEMRUN_PROC_ROOT", "/proc");
        plan.dev_root = env_or("MEMRUN_DEV_ROOT", "/dev");
        return run(&plan);
}
