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

#include "../config/policy.h"
#include "../config/size.h"
#include "cg.h"
#include "kmsg.h"
#include "log.h"
#include "lsrv.h"
#include "monitor.h"
#include "options.h"
#include "preload.h"
#include "psi.h"
#include "registry.h"
#include "report.h"
#include "spawn.h"
#include "util.h"

#ifndef MEMRUN_VERSION
#define MEMRUN_VERSION "0.0.0"
#endif

#define EXIT_MEMRUN 125

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
static struct policy policy;

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
                actions_round(link->act, r->seq, r->actions, r->asked, r->goal, r->freed, (double)r->latency_ns / 1e9,
                              now_mono());
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

static int run(const struct options *o, const char *name)
{
        struct cg_host h;
        struct cg_sandbox sb;
        struct cg_place_facts facts;
        struct cg_placement place;
        struct registry reg = { .fd = -1 };
        char rundir[PATH_MAX];
        _cleanup_close_ int kfd = -1, tl_fd = -1;
        int r, ret = EXIT_MEMRUN;

        sigset_t mask, orig;
        sigemptyset(&mask);
        for (const int *s = (const int[]){ SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, 0 };
             *s; s++)
                sigaddset(&mask, *s);
        sigprocmask(SIG_BLOCK, &mask, &orig);
        _cleanup_close_ int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sigfd < 0) {
                log_error("signalfd: %m");
                return EXIT_MEMRUN;
        }

        if (cg_host_open(env_or("MEMRUN_CGROUP_ROOT", "/sys/fs/cgroup"), env_or("MEMRUN_PROC_ROOT", "/proc"), &h) <
            0)
                return EXIT_MEMRUN;
        cg_sandbox_init(&sb);
        lsrv_init(&limiter);

        r = registry_dir(rundir, sizeof rundir);
        if (r < 0) {
                log_error_errno(r, "cannot use runtime directory %s: %m", rundir);
                goto out_host;
        }
        (void)registry_sweep(rundir, &h);

        cg_place_facts_read(&h, o->cgroup, &facts);
        if (cg_place(&facts, &place) < 0)
                goto out_host;
        cg_sandbox_paths(&h, &place, name, &sb);
        r = registry_add(rundir, &sb, &reg);
        if (r < 0) {
                log_error_errno(r, "cannot record the sandbox in %s: %m", rundir);
                goto out_host;
        }
        if (cg_sandbox_create(&h, &place, &sb) < 0)
                goto out_remove;
        if (cg_sandbox_set_limits(&sb, o->limit, o->soft, o->swap) < 0)
                goto out_remove;
        r = cg_sandbox_watch(&sb);
        if (r < 0)
                log_warn_errno(r, "cannot watch memory events of %s: %m (OOM kills are still read at exit)", sb.path);

        char endpoint[128] = "", watch[PATH_MAX], write64[128];
        struct limiter_link link = {};
        r = lsrv_open(&limiter, h.mode, sb.path, env_or("MEMRUN_PROC_ROOT", "/proc"), endpoint, sizeof endpoint);
        if (r < 0) {
                log_warn_errno(r, "cannot open the limiter endpoint (%m): trim/collect/shed reach no one");
                endpoint[0] = '\0';
        } else {
                lsrv_set_limits(&limiter, o->limit, o->soft);
                lsrv_on_result(&limiter, limiter_result, &link);
                lsrv_on_round(&limiter, limiter_round, &link);
        }
        pressure_env(&h, &sb, &policy, watch, sizeof watch, write64, sizeof write64);
        char preload[PATH_MAX * 2] = "";
        if (o->preload) {
                char lib[PATH_MAX];
                r = preload_find("/proc/self/exe", MEMRUN_LIBDIR, lib, sizeof lib);
                if (r < 0)
                        log_warn_errno(r, "--preload: libmemlimit-preload.so not found beside memrun or in %s (%m): running "
                                 "the command without it", MEMRUN_LIBDIR);
                else if (preload_value(o->argv[0], lib, getenv("LD_PRELOAD"), preload, sizeof preload) > 0)
                        log_debug("LD_PRELOAD=%s", preload);
        }
        const char *env[12] = { "MEMORY_PRESSURE_WATCH", watch, "MEMORY_PRESSURE_WRITE", write64 };
        size_t ne = 4;
        if (endpoint[0]) {
                env[ne++] = "MEMRUN_LIMITER";
                env[ne++] = endpoint;
        }
        if (preload[0]) {
                env[ne++] = "LD_PRELOAD";
                env[ne++] = preload;
        }
        env[ne] = NULL;

        kfd = kmsg_open("/dev/kmsg");
        if (kfd < 0)
                log_debug_errno(kfd, "/dev/kmsg not readable (%m): OOM victims will not be named");
        /* Orphaned grandchildren come to us, so they are reaped and the cgroup can empty. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);

        struct spawn_req req = {
                .argv = o->argv,
                .sandbox = &sb,
                .limit = o->limit,
                .soft = o->soft,
                .hints = !o->no_hints,
                .child_mask = &orig,
                .env = env,
        };
        pid_t child;
        double t0 = now_mono();
        r = spawn_child(&req, &child);
        if (r > 0) {
                ret = r;
                goto out_remove;
        }

        int status = 0, reaped = 0;
        if (o->timeline) {
                tl_fd = strcmp(o->timeline, "-") == 0
                                ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)
                                : open(o->timeline, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
                static const char header[] = "time_s,usage,soft,hard,psi_some,psi_full,level,asked,freed,step\n";
                if (tl_fd < 0 || write(tl_fd, header, sizeof header - 1) < 0)
                        log_warn("cannot write timeline %s: %m", o->timeline);
        }
        struct monitor_cfg mcfg = {
                .policy = &policy,
                .limit = o->limit,
                .soft = o->soft,
                .limiter = { endpoint[0] ? limiter_broadcast : NULL, endpoint[0] ? limiter_ask : NULL,
                             endpoint[0] ? limiter_state : NULL, &limiter },
                .proc_root = env_or("MEMRUN_PROC_ROOT", "/proc"),
                .limiter_fd = endpoint[0] ? lsrv_fd(&limiter) : -1,
                .limiter_dispatch = limiter_dispatch,
                .limiter_ctx = &link,
                .log = &replog,
                .t0 = t0,
                .timeline_fd = tl_fd,
        };
        r = monitor_run(&mcfg, &sb, sigfd, child, &status);
        link.act = NULL;
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m; killing the sandbox");
                (void)cg_sandbox_kill(&sb);
                while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                        ;
        }
        double t1 = now_mono();

        struct report rep = {
                .argv = o->argv,
                .duration_s = t1 - t0,
                .mode = h.mode,
                .cgroup_path = sb.path,
                .max = o->limit,
                .high = o->soft,
                .swap_max = o->swap,
                .log = &replog,
        };
        (void)cg_sandbox_stats(&sb, &rep.stats);
        empty_sandbox(&sb, child, &status, &reaped);
        /* Counters may have moved while the rest of the tree died (group OOM kill in flight). */
        struct cg_stats late;
        if (cg_sandbox_stats(&sb, &late) == 0) {
                rep.stats.ev_oom_kill = late.ev_oom_kill;
                rep.stats.ev_oom_group_kill = late.ev_oom_group_kill;
                rep.stats.ev_oom = late.ev_oom;
                if (late.peak > rep.stats.peak)
                        rep.stats.peak = late.peak;
        }
        bool sandbox_oom = rep.stats.ev_oom_kill > 0 || rep.stats.ev_oom_group_kill > 0;
        if (sandbox_oom && kfd >= 0)
                rep.victim_known = kmsg_wait_oom(kfd, sb.path, child, 500, &rep.victim) > 0;

        if (WIFSIGNALED(status)) {
                rep.signal = WTERMSIG(status);
                rep.exit_code = 128 + rep.signal;
                rep.oom_killed = rep.signal == SIGKILL && sandbox_oom;
        } else {
                rep.exit_code = WEXITSTATUS(status);
        }
        ret = rep.exit_code;

        struct lsrv_stats ls;
        lsrv_stats(&limiter, &ls);
        replog.limiter_clients = (unsigned)ls.clients_ever;
        lsrv_close(&limiter);
        cg_sandbox_remove(&h, &sb);
        registry_drop(&reg);

        if (rep.oom_killed)
                report_oom_line(stderr, "memrun", &rep);
        else if (sandbox_oom)
                log_warn("the OOM killer ended %s in the sandbox (oom_kill %llu), but %s itself %s %d",
                         rep.victim_known ? rep.victim.comm : "a process",
                         (unsigned long long)rep.stats.ev_oom_kill, o->argv[0],
                         rep.signal ? "died with status" : "exited", rep.exit_code);
        if (o->verbosity >= 0)
                report_summary(stderr, "memrun", &rep);
        if (o->report) {
                r = report_write(o->report, &rep);
                if (r < 0) {
                        log_error_errno(r, "cannot write report %s: %m", o->report);
                        return EXIT_MEMRUN;
                }
        }
        if (o->expect_oom) {
                if (sandbox_oom)
                        return 0;
                log_error("--expect-oom: %s was not OOM-killed (%s %d)", o->argv[0],
                          rep.signal ? "status" : "exit status", rep.exit_code);
                return rep.exit_code ? rep.exit_code : 1;
        }
        cg_host_close(&h);
        return ret;

out_remove:
        lsrv_close(&limiter);
        if (sb.mem_fd >= 0) {
                int st = 0, rp = 0;
                empty_sandbox(&sb, -1, &st, &rp);
        }
        cg_sandbox_remove(&h, &sb);
        registry_drop(&reg);
out_host:
        cg_sandbox_close(&sb);
        cg_host_close(&h);
        return ret;
}

int main(int argc, char **argv)
{
        struct options o;
        char name[256];

        if (options_parse(argc, argv, physical_ram(), &o) < 0)
                return EXIT_MEMRUN;
        if (o.help) {
                options_usage();
                return 0;
        }
        if (o.version) {
                printf("memrun %s\n", MEMRUN_VERSION);
                return 0;
        }
        log_set_verbosity(o.verbosity);

        const char *policy_file = o.check_policy ? o.check_policy : o.policy;
        char err[1024];
        if (policy_file) {
                if (policy_parse_file(policy_file, &policy, err, sizeof err) < 0) {
                        log_error("%s", err);
                        return EXIT_MEMRUN;
                }
        } else {
                policy_default(&policy);
        }
        if (options_apply_policy(&o, &policy) < 0)
                return EXIT_MEMRUN;
        if (policy_validate(&policy, err, sizeof err) < 0) {
                log_error("%s%s%s", policy_file ? policy_file : "", policy_file ? ": " : "", err);
                return EXIT_MEMRUN;
        }
        if (o.check_policy) {
                policy_print(stdout, &policy);
                return 0;
        }
        if (o.name)
                snprintf(name, sizeof name, "%s", o.name);
        else
                snprintf(name, sizeof name, "memrun-%d", (int)getpid());
        return run(&o, name);
}
