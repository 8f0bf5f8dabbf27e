/* monitor: the one event loop while the command runs. Sources: signalfd (forward, reap), memory
 * events (v2 memory.events / v1 OOM eventfd), PSI triggers, v1 usage thresholds and pressure
 * levels, an adaptive sampling timer, the limiter socket. Each wake-up samples usage and PSI and
 * feeds the level engine; decisions become actions. */
#pragma once
#include <sys/types.h>

#include "config/policy.h"
#include "supervise/actions.h"
#include "cgroup/cg.h"
#include "supervise/report.h"

struct ctl_server;

struct monitor_cfg {
        const struct policy *policy;
        uint64_t limit, soft;
        struct limiter_ops limiter;     /* broadcast; no-op if NULL */
        int limiter_fd;                 /* readable when the limiter server has work; -1 none */
        void (*limiter_dispatch)(void *ctx, struct actions *a);
        void *limiter_ctx;
        struct report_log *log;
        double t0;
        int timeline_fd;                /* CSV rows per sample; -1 none */
        const char *proc_root;          /* where /proc is (signal actions look at SigCgt); NULL: /proc */
        int notify_fd;                  /* the command's sd_notify socket; -1 none */
        void (*notify_dispatch)(void *owner);
        void (*on_sample)(void *owner, enum level level, uint64_t usage, uint64_t limit); /* NULL: none */
        bool wait_all;                  /* --wait-all: until the sandbox is empty, not only the command */
        struct ctl_server *ctl;         /* memrunctl's socket; NULL none */
        const char *metrics_path;       /* --metrics FILE; NULL none */
        const char *name, *argv0;       /* for status and metrics */
        uint64_t swap;                  /* kept when memrunctl set changes the limits */
        void (*limits_changed)(void *owner, uint64_t limit, uint64_t soft); /* the limiter server's copy */
        bool (*inside)(void *owner, pid_t pid);  /* a sandbox process? (never served by the control socket) */
        void *owner;                    /* the caller's: passed to the callbacks above */
};

/* Run until the main child has been reaped (with wait_all: and the sandbox is empty); the main
 * child's wait status goes to *ret_status. */
int monitor_run(const struct monitor_cfg *cfg, struct cg_sandbox *sb, int sigfd, pid_t child, int *ret_status);
/* The sampling period: slow far from the next threshold, fast near it and while the governor holds
 * a level. Pure (earlyoom's sleep_time_ms): the inputs below, nothing else. */
struct interval_in {
        uint64_t lo, hi;                /* [monitor] interval_min/max, usec */
        uint64_t last;                  /* the previous period (0: first) */
        uint64_t usage, limit, next_threshold;   /* bytes; UINT64_MAX: none */
        double rate;                    /* bytes/s, the faster of smoothed and instantaneous growth */
        bool predicting;                /* a level has a predict condition */
        bool in_level;                  /* a level above ok is held */
        uint64_t dwell;                 /* [recovery] dwell, usec */
        bool holding;                   /* the governor has usage above target */
        bool v2;                        /* no usage notifications: cap idle periods */
        bool v1_pending;                /* v1 thresholds not registered yet */
};
#define MONITOR_V2_IDLE_MAX_USEC 100000  /* cgroup v2 has no usage notification: never sample slower */
#define MONITOR_HOLD_USEC 20000          /* at most this while usage is above the governor's target */
uint64_t monitor_interval(const struct interval_in *in);
/* Reap exited children without blocking: the main child's status, actions' children, the rest. */
void monitor_reap(pid_t child, int *status, int *reaped, struct actions *a, struct cg_sandbox *sb);
