/* backend: where the sandbox's cgroup comes from, behind one table (crun's libcrun_cgroup_manager).
 *  created: memrun makes it beneath a place it may use (v1, hybrid, v2), records it in the registry
 *           first, writes its limits, and removes it at the end;
 *  scope:   not delegated, but systemd runs the machine: the service manager is asked for a
 *           Delegate=yes scope over D-Bus, then as created, inside it;
 *  adopted: --in-place: memrun's own cgroup, its limits detected; nothing created, written or removed.
 * Which one, and everything that differs between them, is decided here and in cg_*.c beneath: the
 * supervisor only calls the table. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cgroup/cg.h"
#include "cgroup/registry.h"
#include "supervise/limits.h"

struct cg_request {
        const char *cgroup_root, *proc_root;
        const char *explicit_parent;  /* --cgroup, or NULL */
        const char *name;             /* the sandbox's */
        const char *what;             /* for a scope's description: "memrun NAME: COMMAND" */
        bool in_place;                /* --in-place */
        bool soft_given;              /* --soft or soft= was given (adopted: kept under the ceiling) */
};

/* What a backend holds; cg_backend_close releases all of it, whatever stage open reached. */
struct cg_backend_state {
        struct cg_host h;
        bool host_open;
        struct cg_sandbox sb;
        struct cg_place_facts facts;  /* read once by cg_backend_select (again after a scope) */
        char rundir[PATH_MAX];        /* the registry's directory */
        struct registry reg;
        bool recorded;                /* the registry knows the sandbox: remove it at close */
};

struct cg_backend {
        const char *name;             /* "created", "scope", "adopted" */
        /* Make or adopt the sandbox. *lim: asked in, in force out (adopted narrows it to what
         * encloses). 0 or -errno, logged. */
        int (*open)(struct cg_backend_state *st, const struct cg_request *req, struct limits *lim);
        /* The limits into the kernel's files (adopted: none are memrun's to write). 0 or -errno. */
        int (*set_limits)(struct cg_backend_state *st, const struct limits *lim);
        /* Is pid one of the sandbox's processes? 1 yes, 0 no, -errno when it cannot be told. */
        int (*contains)(const struct cg_backend_state *st, int proc_fd, pid_t pid);
};

void cg_backend_state_init(struct cg_backend_state *st);
/* Open the host's cgroupfs and pick the backend for req. NULL when the host cannot be used
 * (logged). */
const struct cg_backend *cg_backend_select(struct cg_backend_state *st, const struct cg_request *req);
/* Undo what open made: remove a created sandbox (it must be empty by then) and its record, close. */
void cg_backend_close(struct cg_backend_state *st);
