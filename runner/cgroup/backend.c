/* backend: the three ways to a sandbox cgroup (backend.h). */
#include "cgroup/backend.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "config/size.h"
#include "kernel/proc.h"
#include "log.h"
#include "systemd/sdscope.h"

void cg_backend_state_init(struct cg_backend_state *st)
{
        *st = (struct cg_backend_state){ .reg = { .fd = -1 } };
        cg_sandbox_init(&st->sb);
}

static int created_place(struct cg_backend_state *st, const struct cg_request *req, struct cg_place_facts *facts)
{
        struct cg_placement place;
        int r = cg_place(facts, &place);
        if (r < 0)
                return r;
        cg_sandbox_paths(&st->h, &place, req->name, &st->sb);
        r = registry_add(st->rundir, &st->sb, &st->reg);
        if (r < 0)
                return log_error_errno(r, "cannot record the sandbox in %s: %m", st->rundir);
        st->recorded = true;
        return cg_sandbox_create(&st->h, &place, &st->sb);
}

static int created_set_limits(struct cg_backend_state *st, const struct limits *lim)
{
        return cg_sandbox_set_limits(&st->sb, lim->hard, lim->soft, lim->swap);
}

/* Stale sandboxes of dead memruns go first: they may hold the place this one wants. */
static int sweep(struct cg_backend_state *st)
{
        int r = registry_dir(st->rundir, sizeof st->rundir);
        if (r < 0)
                return log_error_errno(r, "cannot use runtime directory %s: %m", st->rundir);
        (void)registry_sweep(st->rundir, &st->h);
        return 0;
}

static int created_open(struct cg_backend_state *st, const struct cg_request *req, struct limits *lim)
{
        if (!st->rundir[0] && sweep(st) < 0)
                return -EINVAL;
        int r = created_place(st, req, &st->facts);
        return r < 0 ? r : created_set_limits(st, lim);
}

static int created_contains(const struct cg_backend_state *st, int proc_fd, pid_t pid)
{
        char buf[16384];
        return proc_cgroup_inside(proc_fd, pid, st->h.mode, st->sb.path, buf, sizeof buf);
}

/* Not delegated, but systemd runs the machine: ask it for a delegated scope, then place in it. */
static int scope_open(struct cg_backend_state *st, const struct cg_request *req, struct limits *lim)
{
        const struct cg_place_facts *facts = &st->facts;
        char unit[64];
        if (sweep(st) < 0)
                return -EINVAL;
        int r = sdscope_enter(!facts->root_user, req->what, req->proc_root, unit, sizeof unit);
        if (r == 0) {
                log_debug("systemd's %s manager put memrun in %s (Delegate=yes)", facts->root_user ? "system" : "user",
                          unit);
                cg_host_close(&st->h);
                st->host_open = false;
                if (cg_host_open(req->cgroup_root, req->proc_root, &st->h) < 0)
                        return -EINVAL;
                st->host_open = true;
                cg_place_facts_read(&st->h, req->explicit_parent, &st->facts); /* memrun moved */
        } else
                log_warn_errno(r, "memrun's cgroup %s is not delegated and systemd's %s manager gave no scope "
                                  "(%m; -v says why)", facts->own, facts->root_user ? "system" : "user");
        return created_open(st, req, lim);
}

/* A container's own cgroup: nothing created, written or removed; its limits apply. */
static int adopted_open(struct cg_backend_state *st, const struct cg_request *req, struct limits *lim)
{
        uint64_t max, high;
        char a[32], b[32];
        int r = cg_sandbox_adopt(&st->h, req->proc_root, &st->sb, &max, &high);
        if (r < 0)
                return r;
        *lim = limits_in_place(lim, req->soft_given, max, high);
        log_debug("--in-place: cgroup %s, limit %s, soft %s (memrun's own levels hold it; nothing is written)",
                  st->sb.path, size_format(lim->hard, a, sizeof a), size_format(lim->soft, b, sizeof b));
        if (lim->hard == SIZE_MAX_VALUE)
                log_warn("--in-place: the enclosing cgroup %s has no memory limit: levels and the governor "
                         "have nothing to hold to (give --limit)", st->sb.path);
        return 0;
}

static int adopted_set_limits(struct cg_backend_state *st, const struct limits *lim)
{
        (void)st;
        (void)lim;
        return 0; /* the enclosing cgroup is not memrun's to write: its own thresholds follow */
}

/* memrun's own process tree is the sandbox's content (the cgroup holds memrun too) */
static int adopted_contains(const struct cg_backend_state *st, int proc_fd, pid_t pid)
{
        (void)st;
        return proc_is_descendant(proc_fd, pid, getpid());
}

static const struct cg_backend backends[] = {
        { "created", created_open, created_set_limits, created_contains },
        { "scope", scope_open, created_set_limits, created_contains },
        { "adopted", adopted_open, adopted_set_limits, adopted_contains },
};

const struct cg_backend *cg_backend_select(struct cg_backend_state *st, const struct cg_request *req)
{
        if (cg_host_open(req->cgroup_root, req->proc_root, &st->h) < 0)
                return NULL;
        st->host_open = true;
        if (req->in_place)
                return &backends[2];
        cg_place_facts_read(&st->h, req->explicit_parent, &st->facts);
        return cg_place_wants_scope(&st->facts) ? &backends[1] : &backends[0];
}

void cg_backend_close(struct cg_backend_state *st)
{
        if (st->recorded) {
                cg_sandbox_remove(&st->h, &st->sb);
                registry_drop(&st->reg);
                st->recorded = false;
        }
        cg_sandbox_close(&st->sb);
        if (st->host_open)
                cg_host_close(&st->h);
        st->host_open = false;
}
