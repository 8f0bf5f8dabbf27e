/* confine: --sandbox and --user applied (memrun(1) SANDBOX, docs/ARCHITECTURE.md). The parent
 * resolves everything before fork (the user, the cgroup mounts, the seccomp filter), so the child
 * only makes system calls: after placement and before exec it takes its own mount namespace with
 * every cgroup filesystem read-only, drops capabilities and the user, sets no_new_privs and loads
 * the filter. memrun itself is never filtered. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/sandbox.h"
#include "cgroup/cg.h"

#define CONFINE_MAX_MOUNTS 32
#define CONFINE_MAX_GROUPS 64

struct confine_run {
        bool enabled;               /* --sandbox */
        bool user_ns;               /* not root: the mount namespace is made inside a user namespace */
        bool mount_ns, cgroup_ns, no_new_privs, restrict_namespaces, protect_tunables;
        unsigned n_ro;
        struct cg_mount ro[CONFINE_MAX_MOUNTS]; /* remounted read-only in the child */
        char keep_rw[PATH_MAX];     /* the sandbox's memory.pressure (MEMORY_PRESSURE_WATCH) stays writable */
        void *filter;               /* scmp_filter_ctx; NULL: no filter */
        unsigned filter_rules;      /* syscalls with a rule (the report's count) */
        bool drop_user;
        uid_t uid, euid;            /* euid: memrun's own */
        gid_t gid;
        int n_groups;
        gid_t groups[CONFINE_MAX_GROUPS];
        uint64_t bounding;          /* capabilities left in the bounding set */
        uint64_t ambient;           /* raised as ambient for a dropped user (keep_caps) */
        bool bounding_set;          /* the bounding set is changed at all */
        char user[SANDBOX_NAME_MAX], home[PATH_MAX], shell[PATH_MAX];
        int proc_fd;
        const struct sandbox_spec *spec;
};

/* Resolve spec for a run: the user (getpwnam, getgrouplist), the cgroup mounts from
 * proc_root/self/mountinfo, the filter. keep_rw: a file to leave writable ("" none). Logs what is
 * wrong (a user that does not exist, --user without root ...); -errno. r->enabled false and no
 * user: nothing to do, 0. */
int confine_prepare(const struct sandbox_spec *spec, const char *proc_root, const char *keep_rw, struct confine_run *r);
/* In the child, after it entered the sandbox's cgroup. 0, or -errno with *what naming the step. */
int confine_apply(const struct confine_run *r, char *what, size_t what_size);
/* Environment for a dropped user (USER, LOGNAME, HOME, SHELL), set in the child. */
void confine_user_env(const struct confine_run *r);
void confine_release(struct confine_run *r);
/* The -v line: what was applied. */
void confine_describe(const struct confine_run *r, char *buf, size_t size);
