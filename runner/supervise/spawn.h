/* spawn: start the command inside the sandbox, so nothing it allocates is charged elsewhere, and
 * bring exec failures back to the parent through a close-on-exec pipe. */
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cg.h"

struct confine_run;
struct hints;
struct sdnotify;

struct spawn_req {
        char **argv;
        const struct cg_sandbox *sandbox;
        uint64_t limit, soft;
        const struct hints *hints; /* GOMEMLIMIT, NODE_OPTIONS...: exported, MEMRUN_HINTS names them; NULL = none */
        const sigset_t *child_mask; /* signal mask the command starts with */
        const char *const *env;     /* extra NAME, VALUE pairs, NULL-terminated; NULL = none */
        const struct confine_run *confine; /* applied after placement, before exec; NULL = none */
        const struct sdnotify *notify; /* systemd's NOTIFY_SOCKET/WATCHDOG/LISTEN_* handed on; NULL = none */
};

/* Returns 0 with *ret_pid set, or the exit status memrun should use (125/126/127) as a positive
 * number after logging why; the failed child has been reaped. */
int spawn_child(const struct spawn_req *r, pid_t *ret_pid);
/* Pure: the exit status for an exec errno (127 not found, 126 otherwise). */
int spawn_exec_status(int err);
