/* spawn: start the command inside the sandbox, so nothing it allocates is charged elsewhere, and
 * bring exec failures back to the parent through a close-on-exec pipe. */
#include "supervise/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervise/hints.h"
#include "config/size.h"
#include "log.h"
#include "confine/confine.h"
#include "systemd/sdnotify.h"
#include "util.h"

enum spawn_stage { STAGE_SETUP, STAGE_CGROUP, STAGE_SANDBOX, STAGE_EXEC, _STAGE_MAX };

/* One write on the pipe, well under PIPE_BUF: it arrives whole. */
struct spawn_error {
        int stage;
        int err;
        char what[200]; /* STAGE_SANDBOX: the step that failed */
};

int spawn_exec_status(int err)
{
        return err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG ? 127 : 126;
}

static void setenv_u64(const char *name, uint64_t v)
{
        char buf[32];
        setenv(name, u64_or_max(v, buf, sizeof buf), 1);
}

/* v2: clone3(CLONE_INTO_CGROUP) starts the child inside the sandbox, skipping the cgroup.procs
 * write (and the RCU grace period it can wait for). -ENOSYS etc. when the kernel lacks it. */
static pid_t fork_into(const struct cg_sandbox *sb, bool *ret_entered)
{
        int cgfd = cg_sandbox_spawn_fd(sb, ret_entered);
        if (*ret_entered)
                return fork(); /* --in-place: the command stays in memrun's own cgroup, where it already is */
#ifdef CLONE_INTO_CGROUP
        if (cgfd >= 0) {
                struct clone_args args = {
                        .flags = CLONE_INTO_CGROUP,
                        .exit_signal = SIGCHLD,
                        .cgroup = (__u64)(unsigned int)cgfd,
                };
                long pid = syscall(SYS_clone3, &args, sizeof args);
                if (pid >= 0) {
                        *ret_entered = true;
                        return (pid_t)pid;
                }
                log_debug("clone3(CLONE_INTO_CGROUP): %m; falling back to fork");
        }
#endif
        return fork();
}

static _Noreturn void child(const struct spawn_req *r, pid_t parent, int errfd, bool entered)
{
        struct spawn_error e = { STAGE_SETUP, 0, "" };

        /* If memrun dies, so does the command; and it may have died before prctl took effect. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
                e.err = errno ? errno : ESRCH;
                goto fail;
        }
        int k = entered ? 0 : cg_sandbox_enter(r->sandbox);
        if (k < 0) {
                e = (struct spawn_error){ STAGE_CGROUP, -k, "" };
                goto fail;
        }
        setenv_u64("MEMRUN_LIMIT", r->limit);
        setenv_u64("MEMRUN_SOFT_LIMIT", r->soft);
        setenv("MEMRUN_CGROUP", r->sandbox->path, 1);
        for (const char *const *kv = r->env; kv && kv[0] && kv[1]; kv += 2)
                setenv(kv[0], kv[1], 1);
        /* MEMRUN_HINTS lists the variables memrun set as hints, so a client library can tell memrun's
         * GOMEMLIMIT from the user's (the Go client owns the runtime's limit only in the first case). */
        unsetenv("MEMRUN_HINTS");
        for (unsigned i = 0; r->hints && i < r->hints->n; i++)
                setenv(r->hints->v[i].name, r->hints->v[i].value, 1);
        if (r->hints && r->hints->n)
                setenv("MEMRUN_HINTS", r->hints->names, 1);
        if (r->notify)
                sdnotify_child(r->notify);
        if (r->confine) {
                confine_user_env(r->confine);
                k = confine_apply(r->confine, e.what, sizeof e.what);
                if (k == 0 && getppid() != parent) {
                        /* memrun died before the parent-death signal was set again (after --user) */
                        snprintf(e.what, sizeof e.what, "staying memrun's child");
                        k = -ESRCH;
                }
                if (k < 0) {
                        e.stage = STAGE_SANDBOX;
                        e.err = -k;
                        goto fail;
                }
        }
        sigprocmask(SIG_SETMASK, r->child_mask, NULL);
        execvp(r->argv[0], r->argv);
        e.stage = STAGE_EXEC;
        e.err = errno;
fail:
        (void)!write(errfd, &e, sizeof e);
        _exit(e.stage == STAGE_EXEC ? spawn_exec_status(e.err) : 125);
}

int spawn_child(const struct spawn_req *r, pid_t *ret_pid)
{
        int p[2];
        pid_t parent = getpid();

        if (pipe2(p, O_CLOEXEC) < 0) {
                log_error("pipe: %m");
                return 125;
        }
        bool entered;
        pid_t pid = fork_into(r->sandbox, &entered);
        if (pid < 0) {
                log_error("fork: %m");
                close(p[0]);
                close(p[1]);
                return 125;
        }
        if (pid == 0) {
                close(p[0]);
                child(r, parent, p[1], entered);
        }
        close(p[1]);

        struct spawn_error e;
        ssize_t n;
        do
                n = read(p[0], &e, sizeof e);
        while (n < 0 && errno == EINTR);
        close(p[0]);
        if (n == 0) {
                *ret_pid = pid;
                return 0; /* the pipe closed on exec */
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (n != (ssize_t)sizeof e) {
                log_error("the command's process failed before exec");
                return 125;
        }
        switch (e.stage) {
        case STAGE_CGROUP:
                log_error_errno(-e.err, "cannot move the command into cgroup %s: %m", r->sandbox->path);
                return 125;
        case STAGE_SANDBOX:
                e.what[sizeof e.what - 1] = '\0';
                log_error_errno(-e.err, "--sandbox: %s failed: %m", e.what);
                return 125;
        case STAGE_EXEC:
                if (spawn_exec_status(e.err) == 127)
                        log_error("%s: command not found", r->argv[0]);
                else
                        log_error_errno(-e.err, "%s: cannot execute: %m", r->argv[0]);
                return spawn_exec_status(e.err);
        default:
                log_error_errno(-e.err, "cannot start the command: %m");
                return 125;
        }
}
