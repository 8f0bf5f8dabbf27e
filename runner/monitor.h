/* monitor: the one event loop while the command runs. Sources: signalfd (forward, reap), memory
 * events (v2 memory.events / v1 OOM eventfd), PSI triggers, v1 usage thresholds and pressure
 * levels, an adaptive sampling timer, the limiter socket. Each wake-up samples usage and PSI and
 * feeds the level engine; decisions become actions. */
#pragma once
#include <sys/types.h>

#include "../config/policy.h"
#include "actions.h"
#include "cg.h"
#include "report.h"

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
};

/* Run until the main child has been reaped; its wait status goes to *ret_status. */
int monitor_run(const struct monitor_cfg *cfg, struct cg_sandbox *sb, int sigfd, pid_t child, int *ret_status);
/* Reap exited children without blocking: the main child's status, actions' children, the rest. */
void monitor_reap(pid_t child, int *status, int *reaped, struct actions *a, struct cg_sandbox *sb);
