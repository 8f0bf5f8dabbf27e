/* cg_sandbox: one sandbox cgroup's life: create, limit, enter, watch, measure, kill, remove. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/size.h"
#include "cgroup/cg.h"
#include "log.h"
#include "kernel/proc.h"
#include "kernel/psi.h"
#include "util.h"

void cg_sandbox_init(struct cg_sandbox *s)
{
        memset(s, 0, sizeof *s);
        s->mem_parent_fd = s->mem_fd = s->uni_parent_fd = s->uni_fd = s->events_fd = s->usage_fd = s->proc_fd = -1;
}

void cg_sandbox_close(struct cg_sandbox *s)
{
        close_fd(&s->mem_parent_fd);
        close_fd(&s->mem_fd);
        close_fd(&s->uni_parent_fd);
        close_fd(&s->uni_fd);
        close_fd(&s->events_fd);
        close_fd(&s->usage_fd);
        close_fd(&s->proc_fd);
}

static void sleep_usec(usec_t u)
{
        struct timespec ts = usec_to_timespec(u);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void join(char *buf, size_t size, const char *parent, const char *name)
{
        int n = snprintf(buf, size, "%s%s%s", parent, strcmp(parent, "/") == 0 ? "" : "/", name);
        if (n < 0 || (size_t)n >= size)
                buf[0] = '\0'; /* an empty path fails loudly at open, never names another cgroup */
}

static const char *advice(int err)
{
        switch (err) {
        case EROFS:
                return ": the cgroup filesystem is mounted read-only (a container?); run 'memrun --in-place' "
                       "to supervise inside the container's own cgroup and limits, or give memrun a writable "
                       "cgroup (--cgroup PATH to a delegated one)";
        case EACCES:
        case EPERM:
                return ": not permitted; run memrun as root or in a delegated cgroup, e.g. 'systemd-run --user "
                       "--scope -p Delegate=yes memrun ...', or pass --cgroup PATH to a cgroup you own";
        default:
                return "";
        }
}

/* v2: make sure children of dir_fd get the memory controller. */
static int enable_memory(int dir_fd, const char *path)
{
        char buf[512];
        ssize_t n = read_at(dir_fd, "cgroup.subtree_control", buf, sizeof buf);
        if (n >= 0 && strstr(buf, "memory"))
                return 0;
        n = read_at(dir_fd, "cgroup.controllers", buf, sizeof buf);
        if (n < 0 || !strstr(buf, "memory")) {
                log_error("the memory controller is not available in %s (cgroup.controllers: '%.*s'): enable it in "
                          "its parent's cgroup.subtree_control or delegate it (Delegate=yes)",
                          path, (int)strcspn(n < 0 ? "" : buf, "\n"), n < 0 ? "" : buf);
                return -EOPNOTSUPP;
        }
        int r = write_at(dir_fd, "cgroup.subtree_control", "+memory");
        if (r == -EBUSY) {
                log_error("cannot enable +memory in %s: it holds processes (cgroup v2 forbids processes in a cgroup "
                          "whose children use controllers); pass --cgroup to an empty delegated cgroup", path);
                return r;
        }
        if (r < 0) {
                log_error_errno(r, "cannot enable +memory in %s/cgroup.subtree_control: %m%s", path,
                          advice(-r));
                return r;
        }
        return 0;
}

static int make_dir(int parent_fd, const char *parent, const char *name, const char *full)
{
        if (mkdirat(parent_fd, name, 0755) < 0) {
                int e = errno;
                if (e == EEXIST)
                        log_error("sandbox cgroup %s already exists: another memrun uses this --name, or pick "
                                  "another name", full);
                else
                        log_error_errno(-e, "cannot create cgroup %s beneath %s: %m%s", full, parent, advice(e));
                return -e;
        }
        return 0;
}

static int split_supervisor(const struct cg_host *h, const char *own)
{
        char pid[32], path[PATH_MAX];
        _cleanup_close_ int own_fd = cg_open_dir(h->mem_root_fd, own);
        if (own_fd < 0)
                return own_fd;
        if (mkdirat(own_fd, "supervisor", 0755) < 0 && errno != EEXIST) {
                int e = errno;
                log_error_errno(-e, "cannot create %s/supervisor: %m%s", own, advice(e));
                return -e;
        }
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        join(path, sizeof path, own, "supervisor");
        _cleanup_close_ int sup_fd = cg_open_dir(h->mem_root_fd, path);
        int r = sup_fd < 0 ? sup_fd : write_at(sup_fd, "cgroup.procs", pid);
        if (r < 0) {
                log_error_errno(r, "cannot move memrun into %s: %m%s", path, advice(-r));
                unlinkat(own_fd, "supervisor", AT_REMOVEDIR);
                return r;
        }
        log_debug("moved memrun into %s so %s may enable +memory for the sandbox", path, own);
        return 0;
}

static void undo_split(const struct cg_host *h, const char *own)
{
        char pid[32];
        _cleanup_close_ int own_fd = cg_open_dir(h->mem_root_fd, own);
        if (own_fd < 0)
                return;
        /* Only when nothing else of ours needs +memory there (another sandbox may). */
        (void)write_at(own_fd, "cgroup.subtree_control", "-memory");
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        if (write_at(own_fd, "cgroup.procs", pid) == 0)
                (void)unlinkat(own_fd, "supervisor", AT_REMOVEDIR);
}

static const char *unified_parent(const struct cg_host *h, const struct cg_placement *p)
{
        /* Mirror an explicit parent when the unified hierarchy has it; else beside our own cgroup. */
        if (strcmp(p->parent, h->own_mem) != 0) {
                _cleanup_close_ int probe = cg_open_dir(h->uni_root_fd, p->parent);
                if (probe >= 0)
                        return p->parent;
        }
        return h->own_uni;
}

void cg_sandbox_paths(const struct cg_host *h, const struct cg_placement *p, const char *name,
                      struct cg_sandbox *s)
{
        s->mode = h->mode;
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->own_mem, sizeof s->own_mem, "%s", h->own_mem);
        join(s->path, sizeof s->path, p->parent, name);
        if (h->mode == CG_V2)
                snprintf(s->uni_path, sizeof s->uni_path, "%s", s->path);
        else if (h->mode == CG_HYBRID)
                join(s->uni_path, sizeof s->uni_path, unified_parent(h, p), name);
        else
                s->uni_path[0] = '\0';
}

/* The effective limits of the cgroup at PATH: the minimum up the hierarchy as far as memrun sees it
 * (UINT64_MAX: none; v1 has no memory.high). */
void cg_effective_limits(const struct cg_host *h, const char *cgpath, uint64_t *ret_max, uint64_t *ret_high)
{
        *ret_max = *ret_high = UINT64_MAX;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", cgpath);
        for (;;) {
                _cleanup_close_ int fd = cg_open_dir(h->mem_root_fd, path);
                uint64_t v;
                /* read_u64_at takes "max" as UINT64_MAX, which never lowers the minimum */
                if (fd >= 0 && h->mode == CG_V2) {
                        if (read_u64_at(fd, "memory.max", &v) == 0 && v < *ret_max)
                                *ret_max = v;
                        if (read_u64_at(fd, "memory.high", &v) == 0 && v < *ret_high)
                                *ret_high = v;
                } else if (fd >= 0) {
                        /* v1 says "no limit" with PAGE_COUNTER_MAX pages: anything from 2^62 on is none */
                        if (read_u64_at(fd, "memory.limit_in_bytes", &v) == 0 && v < (UINT64_C(1) << 62) && v < *ret_max)
                                *ret_max = v;
                }
                char *slash = strrchr(path, '/');
                if (!slash || strcmp(path, "/") == 0)
                        break;
                if (slash == path)
                        path[1] = '\0';
                else
                        *slash = '\0';
        }
}

int cg_sandbox_adopt(const struct cg_host *h, const char *proc_root, struct cg_sandbox *s, uint64_t *ret_max,
                     uint64_t *ret_high)
{
        s->mode = h->mode;
        s->in_place = true;
        snprintf(s->path, sizeof s->path, "%s", h->own_mem);
        snprintf(s->uni_path, sizeof s->uni_path, "%s", h->mode == CG_HYBRID ? h->own_uni : h->mode == CG_V2 ? h->own_mem : "");
        const char *n = strrchr(s->path, '/');
        snprintf(s->name, sizeof s->name, "%s", n && n[1] ? n + 1 : "/");
        s->mem_fd = cg_open_dir(h->mem_root_fd, h->own_mem);
        if (s->mem_fd < 0)
                return log_error_errno(s->mem_fd, "--in-place: cannot open memrun's own cgroup %s: %m", h->own_mem);
        if (h->mode == CG_V2)
                s->uni_fd = fcntl(s->mem_fd, F_DUPFD_CLOEXEC, 3);
        else if (h->mode == CG_HYBRID && h->own_uni[0])
                s->uni_fd = cg_open_dir(h->uni_root_fd, h->own_uni);
        cg_effective_limits(h, h->own_mem, ret_max, ret_high);
        s->proc_fd = proc_open_root(proc_root);
        if (s->proc_fd < 0)
                return log_error_errno(s->proc_fd, "--in-place: cannot open %s: %m", proc_root);
        (void)cg_sandbox_stats(s, &s->base);
        return 0;
}

int cg_sandbox_create(const struct cg_host *h, const struct cg_placement *p, struct cg_sandbox *s)
{
        const char *name = s->name;
        int r;

        if (h->mode == CG_V2) {
                if (p->memrun_subtree) {
                        r = enable_memory(h->mem_root_fd, "/");
                        if (r < 0)
                                return r;
                        if (mkdirat(h->mem_root_fd, "memrun", 0755) < 0 && errno != EEXIST) {
                                r = -errno;
                                log_error_errno(r, "cannot create cgroup /memrun: %m%s", advice(-r));
                                return r;
                        }
                        s->memrun_subtree = true;
                }
                if (p->split_supervisor) {
                        r = split_supervisor(h, h->own_mem);
                        if (r < 0)
                                return r;
                        s->split_supervisor = true;
                }
        }

        s->mem_parent_fd = cg_open_dir(h->mem_root_fd, p->parent);
        if (s->mem_parent_fd < 0) {
                r = s->mem_parent_fd;
                if (r == -ENOENT && p->parent[0] && strcmp(p->parent, h->own_mem) != 0)
                        log_error("--cgroup %s: no such cgroup under %s", p->parent, h->root);
                else
                        log_error_errno(r, "cannot open cgroup %s: %m", p->parent);
                return r;
        }
        if (h->mode == CG_V2) {
                r = enable_memory(s->mem_parent_fd, p->parent);
                if (r < 0)
                        return r;
        }
        r = make_dir(s->mem_parent_fd, p->parent, name, s->path);
        if (r < 0)
                return r;
        s->created = true;
        s->mem_fd = openat(s->mem_parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->mem_fd < 0) {
                r = -errno;
                (void)unlinkat(s->mem_parent_fd, name, AT_REMOVEDIR);
                return r;
        }

        if (h->mode == CG_V2) {
                s->uni_fd = fcntl(s->mem_fd, F_DUPFD_CLOEXEC, 3);
        } else if (h->mode == CG_HYBRID) {
                /* The unified sibling gives cgroup.kill, cgroup.events and per-cgroup PSI. */
                const char *uparent = unified_parent(h, p);
                s->uni_parent_fd = cg_open_dir(h->uni_root_fd, uparent);
                if (s->uni_parent_fd >= 0 && mkdirat(s->uni_parent_fd, name, 0755) == 0)
                        s->uni_fd = openat(s->uni_parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (s->uni_fd < 0) {
                        log_warn("cannot create the unified-hierarchy sibling %s (%m): continuing with v1 only "
                                 "(no cgroup.kill, no per-cgroup pressure)", s->uni_path);
                        s->uni_path[0] = '\0';
                        close_fd(&s->uni_parent_fd);
                }
        }
        log_debug("sandbox %s (cgroup %s: %s%s%s)", name, cg_mode_name(h->mode), s->path,
                  h->mode == CG_HYBRID && s->uni_path[0] ? ", unified " : "",
                  h->mode == CG_HYBRID ? s->uni_path : "");
        return 0;
}

static int set_value(struct cg_sandbox *s, const char *file, uint64_t v, bool minus_one_for_max)
{
        char buf[32];
        if (v == SIZE_MAX_VALUE && minus_one_for_max)
                snprintf(buf, sizeof buf, "-1"); /* v1 spells "no limit" -1 */
        else
                u64_or_max(v, buf, sizeof buf);
        int r = write_at(s->mem_fd, file, buf);
        if (r < 0)
                log_error_errno(r, "cannot set %s/%s to %s: %m", s->path, file, buf);
        else
                log_debug("%s/%s = %s", s->path, file, buf);
        return r;
}

int cg_sandbox_set_limits(struct cg_sandbox *s, uint64_t max, uint64_t high, uint64_t swap)
{
        int r;

        if (s->mode == CG_V2) {
                if (faccessat(s->mem_fd, "memory.swap.max", F_OK, 0) == 0) {
                        r = set_value(s, "memory.swap.max", swap, false);
                        if (r < 0)
                                return r;
                } else if (swap != 0) {
                        log_warn("--swap: this kernel has no swap accounting (memory.swap.max missing); ignored");
                }
                r = set_value(s, "memory.high", high, false);
                if (r < 0)
                        return r;
                r = set_value(s, "memory.max", max, false);
                if (r < 0)
                        return r;
                /* An OOM kill takes the whole sandbox, so a half-dead process tree never lingers. */
                if (write_at(s->mem_fd, "memory.oom.group", "1") < 0)
                        log_debug("memory.oom.group not available");
                return 0;
        }
        /* v1: no memory.high; the soft limit is memrun's to enforce with its levels. The kernel keeps
         * memsw >= limit at every step: a raise writes memsw first, a cut the limit first. */
        bool has_memsw = faccessat(s->mem_fd, "memory.memsw.limit_in_bytes", F_OK, 0) == 0;
        uint64_t memsw = (max == SIZE_MAX_VALUE || swap == SIZE_MAX_VALUE || max + swap < max) ? SIZE_MAX_VALUE
                                                                                               : max + swap;
        uint64_t cur = 0;
        bool raise = has_memsw && read_u64_at(s->mem_fd, "memory.limit_in_bytes", &cur) == 0 && max > cur;
        if (raise && (r = set_value(s, "memory.memsw.limit_in_bytes", memsw, true)) < 0)
                return r;
        r = set_value(s, "memory.limit_in_bytes", max, true);
        if (r < 0)
                return r;
        if (has_memsw && !raise) {
                r = set_value(s, "memory.memsw.limit_in_bytes", memsw, true);
                if (r < 0)
                        return r;
        } else if (!has_memsw && swap != SIZE_MAX_VALUE) {
                log_debug("no memory.memsw.limit_in_bytes (swap accounting off): swap use is not limited");
        }
        return 0;
}

int cg_sandbox_watch(struct cg_sandbox *s)
{
        if (s->mode == CG_V2) {
                s->events_fd = openat(s->mem_fd, "memory.events", O_RDONLY | O_CLOEXEC);
                return s->events_fd < 0 ? -errno : 0;
        }
        _cleanup_close_ int ctl = openat(s->mem_fd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
        if (ctl < 0)
                return -errno;
        int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return -errno;
        char buf[64];
        snprintf(buf, sizeof buf, "%d %d", efd, ctl);
        int r = write_at(s->mem_fd, "cgroup.event_control", buf);
        if (r < 0) {
                close(efd);
                return r;
        }
        s->events_fd = efd;
        return 0;
}

int cg_sandbox_event(struct cg_sandbox *s)
{
        if (s->mode == CG_V2) {
                char buf[512];
                /* Reading through the same fd re-arms kernfs' POLLPRI notification. */
                return read_fd(s->events_fd, buf, sizeof buf) < 0 ? -errno : 1;
        }
        uint64_t n;
        if (read(s->events_fd, &n, sizeof n) != (ssize_t)sizeof n)
                return errno == EAGAIN ? 0 : -errno;
        s->oom_notifications += n;
        return 1;
}

int cg_sandbox_usage(struct cg_sandbox *s, uint64_t *ret)
{
        uint64_t v;
        char buf[32];
        /* The sampler's one read: a pread on a held fd, no open/close per sample. */
        if (s->usage_fd < 0)
                s->usage_fd = openat(s->mem_fd, s->mode == CG_V2 ? "memory.current" : "memory.usage_in_bytes",
                                     O_RDONLY | O_CLOEXEC);
        if (s->usage_fd < 0)
                return -errno;
        /* One pread: the value (at most 20 digits and a newline) comes whole in one read. */
        ssize_t n;
        do
                n = pread(s->usage_fd, buf, sizeof buf - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        int r = parse_u64(buf, &v);
        if (r < 0)
                return r;
        if (v > s->max_seen)
                s->max_seen = v;
        *ret = v;
        return 0;
}

int cg_stat_reclaimable(const char *text, enum cg_mode mode, uint64_t *ret)
{
        /* What reclaim can take without swap: the file LRUs and reclaimable slab. shmem sits on the anon
         * LRUs, so it is not counted here. v1 spells them total_* (hierarchical) and has no slab line. */
        static const char *const v2[] = { "active_file", "inactive_file", "slab_reclaimable" };
        static const char *const v1[] = { "total_active_file", "total_inactive_file" };
        const char *const *keys = mode == CG_V2 ? v2 : v1;
        size_t n = mode == CG_V2 ? ELEMENTSOF(v2) : ELEMENTSOF(v1);
        uint64_t sum = 0;
        bool any = false;
        for (size_t i = 0; i < n; i++) {
                uint64_t v;
                if (keyed_u64(text, keys[i], &v) == 0) {
                        any = true;
                        sum = __builtin_add_overflow(sum, v, &sum) ? UINT64_MAX : sum;
                }
        }
        if (!any)
                return -ENODATA;
        *ret = sum;
        return 0;
}

int cg_stat_slack(const char *text, uint64_t *ret)
{
        uint64_t a = 0, i = 0, anon = 0, shmem = 0, sc = 0;
        if (keyed_u64(text, "active_anon", &a) < 0 || keyed_u64(text, "inactive_anon", &i) < 0 ||
            keyed_u64(text, "anon", &anon) < 0)
                return -ENODATA;
        (void)keyed_u64(text, "shmem", &shmem);
        (void)keyed_u64(text, "swapcached", &sc);
        uint64_t lru = a + i, used = anon + shmem + sc;
        *ret = lru > used ? lru - used : 0;
        return 0;
}

/* v2 with no swap for the sandbox: with swap, memory.reclaim takes the program's own pages too, and
 * then there is no slack. */
static bool slack_possible(const struct cg_sandbox *s)
{
        char buf[64];
        return s->mode == CG_V2 && read_at(s->mem_fd, "memory.swap.max", buf, sizeof buf) >= 0 &&
               strcmp(buf, "0\n") == 0;
}

int cg_sandbox_reclaim_stat(const struct cg_sandbox *s, uint64_t *ret_reclaimable, uint64_t *ret_slack)
{
        char buf[8192];
        *ret_slack = 0;
        ssize_t n = read_at(s->mem_fd, "memory.stat", buf, sizeof buf);
        if (n < 0)
                return (int)n;
        if (slack_possible(s))
                (void)cg_stat_slack(buf, ret_slack);
        return cg_stat_reclaimable(buf, s->mode, ret_reclaimable);
}

int cg_sandbox_event_register(const struct cg_sandbox *s, int efd, const char *file, const char *arg)
{
        if (s->mode == CG_V2)
                return -EOPNOTSUPP;
        _cleanup_close_ int ctl = openat(s->mem_fd, file, O_RDONLY | O_CLOEXEC);
        if (ctl < 0)
                return -errno;
        char buf[96];
        snprintf(buf, sizeof buf, "%d %d %s", efd, ctl, arg);
        return write_at(s->mem_fd, "cgroup.event_control", buf);
}

int cg_sandbox_set_high(struct cg_sandbox *s, uint64_t high)
{
        if (s->mode != CG_V2)
                return -EOPNOTSUPP;
        if (s->in_place)
                return -EROFS; /* the enclosing cgroup's memory.high is not memrun's to write */
        return set_value(s, "memory.high", high, false);
}

int cg_sandbox_reclaim(const struct cg_sandbox *s, uint64_t bytes)
{
        char buf[32];
        if (s->mode != CG_V2)
                return -EOPNOTSUPP;
        return write_at(s->mem_fd, "memory.reclaim", u64_or_max(bytes, buf, sizeof buf));
}

bool cg_sandbox_has_high(const struct cg_sandbox *s)
{
        /* --in-place: memory.high is the container's (memrun's own levels hold the soft limit) */
        return s->mode == CG_V2 && !s->in_place;
}

bool cg_sandbox_usage_notifies(const struct cg_sandbox *s)
{
        return s->mode != CG_V2;
}

uint32_t cg_sandbox_events_poll(const struct cg_sandbox *s)
{
        return s->mode == CG_V2 ? EPOLLPRI : EPOLLIN;
}

bool cg_sandbox_writable(const struct cg_sandbox *s)
{
        return !s->in_place;
}

int cg_sandbox_pressure_path(const struct cg_host *h, const struct cg_sandbox *s, char *buf, size_t size)
{
        if (!psi_cgroup_has_pressure(s->uni_fd))
                return -ENOENT;
        int n = snprintf(buf, size, "%s%s%s/memory.pressure", h->root, h->mode == CG_HYBRID ? "/unified" : "",
                         s->uni_path);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int cg_sandbox_spawn_fd(const struct cg_sandbox *s, bool *ret_inside)
{
        *ret_inside = s->in_place;
        return !s->in_place && s->mode == CG_V2 ? s->mem_fd : -1;
}

bool cg_sandbox_can_reclaim(const struct cg_sandbox *s)
{
        return s->mode == CG_V2 && faccessat(s->mem_fd, "memory.reclaim", W_OK, 0) == 0;
}

int cg_sandbox_chown_pressure(const struct cg_sandbox *s, uid_t uid, gid_t gid)
{
        if (s->uni_fd < 0)
                return -ENOENT;
        return fchownat(s->uni_fd, "memory.pressure", uid, gid, 0) < 0 ? -errno : 0;
}

int cg_sandbox_enter(const struct cg_sandbox *s)
{
        int r = write_at(s->mem_fd, "cgroup.procs", "0");
        if (r < 0)
                return r;
        if (s->mode == CG_HYBRID && s->uni_fd >= 0)
                return write_at(s->uni_fd, "cgroup.procs", "0");
        return 0;
}

static uint64_t keyed_or_zero(const char *buf, const char *key)
{
        uint64_t v = 0;
        return keyed_u64(buf, key, &v) < 0 ? 0 : v;
}

int cg_sandbox_stats(struct cg_sandbox *s, struct cg_stats *ret)
{
        struct cg_stats st = {};
        char buf[1024];
        int r;

        if (s->mode == CG_V2) {
                r = read_u64_at(s->mem_fd, "memory.current", &st.current);
                if (r < 0)
                        return r;
                st.has_peak = read_u64_at(s->mem_fd, "memory.peak", &st.peak) == 0;
                if (read_at(s->mem_fd, "memory.events", buf, sizeof buf) >= 0) {
                        st.ev_high = keyed_or_zero(buf, "high");
                        st.ev_max = keyed_or_zero(buf, "max");
                        st.ev_oom = keyed_or_zero(buf, "oom");
                        st.ev_oom_kill = keyed_or_zero(buf, "oom_kill");
                        st.ev_oom_group_kill = keyed_or_zero(buf, "oom_group_kill");
                }
        } else {
                r = read_u64_at(s->mem_fd, "memory.usage_in_bytes", &st.current);
                if (r < 0)
                        return r;
                st.has_peak = read_u64_at(s->mem_fd, "memory.max_usage_in_bytes", &st.peak) == 0;
                (void)read_u64_at(s->mem_fd, "memory.failcnt", &st.ev_max);
                if (read_at(s->mem_fd, "memory.oom_control", buf, sizeof buf) >= 0)
                        st.ev_oom_kill = keyed_or_zero(buf, "oom_kill");
                st.ev_oom = s->oom_notifications;
                if (st.ev_oom < st.ev_oom_kill)
                        st.ev_oom = st.ev_oom_kill;
        }
        if (st.current > s->max_seen)
                s->max_seen = st.current;
        if (!st.has_peak)
                st.peak = s->max_seen;
        if (s->in_place) {
                /* the enclosing cgroup's counters since memrun started */
#define SINCE(f) st.f = st.f > s->base.f ? st.f - s->base.f : 0
                SINCE(ev_high);
                SINCE(ev_max);
                SINCE(ev_oom);
                SINCE(ev_oom_kill);
                SINCE(ev_oom_group_kill);
#undef SINCE
        }
        *ret = st;
        return 0;
}

/* Is pid a whole line of the list (cgroup.procs)? */
static bool listed(const char *list, pid_t pid)
{
        char want[16];
        snprintf(want, sizeof want, "%d\n", (int)pid);
        for (const char *p = list; (p = strstr(p, want)); p++)
                if (p == list || p[-1] == '\n')
                        return true;
        return false;
}

/* A program may make cgroups of its own inside the sandbox (a container runtime, a service manager;
 * on v2 only where it was given the directory). They are part of the sandbox: its processes, its
 * signals, its cleanup. walk_cgroups visits dir_fd and every cgroup below it, at most CG_TREE_DEPTH
 * levels down, following no symlinks: pre(fd) before a cgroup's children, parents first, stopping at
 * the first nonzero, which it returns; post(parent_fd, name) after them, deepest first. */
#define CG_TREE_DEPTH 16
struct cgroup_walk {
        int (*pre)(int dir_fd, void *ctx);
        void (*post)(int parent_fd, const char *name, void *ctx);
        void *ctx;
};
static bool dot_or_dotdot(const char *name)
{
        return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}
static int walk_below(int dir_fd, unsigned depth, const struct cgroup_walk *w)
{
        int r = w->pre ? w->pre(dir_fd, w->ctx) : 0;
        if (r != 0 || depth >= CG_TREE_DEPTH)
                return r;
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return 0;
        }
        for (struct dirent *de; r == 0 && (de = readdir(d));) {
                if (de->d_type != DT_DIR || dot_or_dotdot(de->d_name))
                        continue;
                int c = openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (c < 0)
                        continue;
                r = walk_below(c, depth + 1, w);
                close(c);
                if (r == 0 && w->post)
                        w->post(dir_fd, de->d_name, w->ctx);
        }
        closedir(d);
        return r;
}
static int for_each_cgroup(int dir_fd, int (*fn)(int dir_fd, void *ctx), void *ctx)
{
        return walk_below(dir_fd, 0, &(struct cgroup_walk){ .pre = fn, .ctx = ctx });
}

static void rmdir_one(int parent_fd, const char *name, void *ctx)
{
        if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                log_debug("cannot remove the program's cgroup %s below %s: %s", name, (const char *)ctx,
                          strerror(errno));
}
/* Remove the cgroups below dir_fd (path, for the messages), deepest first: the program's own, once
 * their processes are gone. */
static void rmdir_below(int dir_fd, const char *path)
{
        walk_below(dir_fd, 0, &(struct cgroup_walk){ .post = rmdir_one, .ctx = (void *)path });
}

/* Send sig to each pid listed in dir_fd/cgroup.procs; returns how many were signalled. A pid read
 * from the list may die and be reused outside the cgroup before it is signalled: each is opened as
 * a pidfd first, and signalled only if the list, read again after, still names it (then the pidfd
 * holds that member, or a process already dead, which the signal does not reach). */
static int kill_listed(int dir_fd, int sig)
{
        enum { MAX = 4096 };
        static char buf[65536];
        static pid_t pids[MAX];
        static int fds[MAX];
        size_t k = 0;
        ssize_t r = read_at(dir_fd, "cgroup.procs", buf, sizeof buf);
        if (r < 0)
                return (int)r;
        for (char *p = buf, *eol; *p && k < MAX; p = eol + 1) {
                eol = strchr(p, '\n');
                if (!eol)
                        break;
                *eol = '\0';
                uint64_t pid;
                if (parse_u64(p, &pid) != 0 || pid <= 1 || pid > INT32_MAX)
                        continue;
                int fd = pid_open((pid_t)pid);
                if (fd >= 0 || fd == -ENOSYS) {
                        pids[k] = (pid_t)pid;
                        fds[k++] = fd;
                }
        }
        int n = 0;
        bool reread = read_at(dir_fd, "cgroup.procs", buf, sizeof buf) >= 0;
        for (size_t i = 0; i < k; i++) {
                if (reread && listed(buf, pids[i]) && pid_signal(fds[i], pids[i], sig) == 0)
                        n++;
                if (fds[i] >= 0)
                        close(fds[i]);
        }
        return n;
}

struct signal_tree {
        int sig, n;
};
static int signal_one(int dir_fd, void *ctx)
{
        struct signal_tree *t = ctx;
        int r = kill_listed(dir_fd, t->sig);
        if (r > 0)
                t->n += r;
        return 0;
}
/* kill_listed on dir_fd and every cgroup below it: how many were signalled */
static int kill_listed_tree(int dir_fd, int sig)
{
        struct signal_tree t = { .sig = sig };
        for_each_cgroup(dir_fd, signal_one, &t);
        return t.n;
}

static int kill_dir(int dir_fd, bool v2)
{
        if (write_at(dir_fd, "cgroup.kill", "1") == 0)
                return 0;
        /* Before cgroup.kill (5.14), and on v1: freeze so nothing forks while we kill (v2), then thaw to
         * let them die. */
        bool frozen = v2 && write_at(dir_fd, "cgroup.freeze", "1") == 0;
        for (int i = 0; i < 100 && kill_listed_tree(dir_fd, SIGKILL) > 0; i++)
                ;
        if (frozen)
                (void)write_at(dir_fd, "cgroup.freeze", "0");
        return 0;
}

struct pid_list {
        const struct cg_sandbox *s;
        pid_t *pids, self;
        size_t k, max;
        int err;
};
static int list_one(int dir_fd, void *ctx)
{
        struct pid_list *l = ctx;
        const struct cg_sandbox *s = l->s;
        static char buf[65536];
        ssize_t r = read_at(dir_fd, "cgroup.procs", buf, sizeof buf);
        if (r < 0) {
                if (l->err == 0)
                        l->err = (int)r;
                return 0;
        }
        for (char *p = buf, *eol; *p && l->k < l->max; p = eol + 1) {
                eol = strchr(p, '\n');
                if (!eol)
                        break;
                *eol = '\0';
                uint64_t pid;
                if (parse_u64(p, &pid) != 0 || pid <= 1 || pid > INT32_MAX || (pid_t)pid == l->self)
                        continue;
                if (s->in_place && !proc_is_descendant(s->proc_fd, (pid_t)pid, l->self))
                        continue;
                l->pids[l->k++] = (pid_t)pid;
        }
        return l->k == l->max;
}

int cg_sandbox_pids(const struct cg_sandbox *s, pid_t *pids, size_t max)
{
        struct pid_list l = { .s = s, .pids = pids, .self = getpid(), .max = max };
        if (max == 0)
                return 0;
        /* in place, the cgroup is the container's: what is below it is not memrun's to look into */
        if (s->in_place)
                list_one(s->mem_fd, &l);
        else
                for_each_cgroup(s->mem_fd, list_one, &l);
        /* the sandbox's own list unreadable is an error; a sub-cgroup gone meanwhile is not */
        return l.k == 0 && l.err < 0 ? l.err : (int)l.k;
}

int cg_sandbox_signal(const struct cg_sandbox *s, int sig)
{
        /* in place, the cgroup holds memrun and maybe others of the container: only memrun's tree */
        if (s->in_place)
                return proc_signal_descendants(s->proc_fd, getpid(), sig);
        return kill_listed_tree(s->mem_fd, sig);
}

int cg_sandbox_kill(const struct cg_sandbox *s)
{
        if (s->in_place)
                return proc_signal_descendants(s->proc_fd, getpid(), SIGKILL) < 0 ? -ESRCH : 0;
        if (s->uni_fd >= 0)
                return kill_dir(s->uni_fd, true);
        return kill_dir(s->mem_fd, false);
}

static int lists_a_process(int dir_fd, void *ctx)
{
        char buf[256];
        (void)ctx;
        return read_at(dir_fd, "cgroup.procs", buf, sizeof buf) > 0;
}

static bool dir_populated(int dir_fd, bool has_events)
{
        char buf[256];
        uint64_t v;
        /* v2's "populated" counts the cgroups below; v1 has no such file: ask each of them */
        if (has_events && read_at(dir_fd, "cgroup.events", buf, sizeof buf) >= 0 &&
            keyed_u64(buf, "populated", &v) == 0)
                return v != 0;
        return for_each_cgroup(dir_fd, lists_a_process, NULL) != 0;
}

int cg_sandbox_hard_limit(const struct cg_sandbox *s, uint64_t *ret)
{
        uint64_t v;
        int r = read_u64_at(s->mem_fd, s->mode == CG_V2 ? "memory.max" : "memory.limit_in_bytes", &v);
        if (r < 0)
                return r;
        *ret = v >= (UINT64_C(1) << 62) ? SIZE_MAX_VALUE : v; /* v1 spells "none" PAGE_COUNTER_MAX pages */
        return 0;
}

int cg_sandbox_frozen(const struct cg_sandbox *s)
{
        char buf[256];
        uint64_t v;
        if (s->in_place || s->uni_fd < 0)
                return -EOPNOTSUPP;
        ssize_t r = read_at(s->uni_fd, "cgroup.events", buf, sizeof buf);
        if (r < 0)
                return (int)r;
        return keyed_u64(buf, "frozen", &v) == 0 ? v != 0 : -EOPNOTSUPP;
}

bool cg_sandbox_populated(const struct cg_sandbox *s)
{
        if (s->in_place)
                return proc_signal_descendants(s->proc_fd, getpid(), 0) > 0;
        if (s->uni_fd >= 0 && dir_populated(s->uni_fd, true))
                return true;
        return dir_populated(s->mem_fd, false);
}

static int rmdir_retry(int parent_fd, const char *name, const char *path)
{
        /* Exiting tasks leave the cgroup a moment after they are reaped. */
        for (int i = 0; i < 200; i++) {
                /* the cgroups the program made inside (each must be empty too) */
                int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0) {
                        rmdir_below(fd, path);
                        close(fd);
                }
                if (unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY)
                        break;
                sleep_usec(i < 20 ? USEC_PER_MSEC : 10 * USEC_PER_MSEC);
        }
        int r = -errno;
        log_warn_errno(r, "cannot remove cgroup %s: %m", path);
        return r;
}

int cg_sandbox_remove(const struct cg_host *h, struct cg_sandbox *s)
{
        int r = 0;

        close_fd(&s->events_fd);
        close_fd(&s->mem_fd);
        close_fd(&s->uni_fd);
        if (s->mem_parent_fd >= 0 && s->created)
                r = rmdir_retry(s->mem_parent_fd, s->name, s->path);
        if (s->mode == CG_HYBRID && s->uni_parent_fd >= 0 && s->created && s->uni_path[0]) {
                int k = rmdir_retry(s->uni_parent_fd, s->name, s->uni_path);
                if (r == 0)
                        r = k;
        }
        if (s->split_supervisor)
                undo_split(h, s->own_mem);
        if (s->memrun_subtree)
                (void)unlinkat(h->mem_root_fd, "memrun", AT_REMOVEDIR); /* fails while others use it */
        s->split_supervisor = s->memrun_subtree = false;
        close_fd(&s->mem_parent_fd);
        close_fd(&s->uni_parent_fd);
        return r;
}

int cg_remove_stale(int root_fd, const char *path)
{
        char parent[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (path[0] != '/' || !slash || slash[1] == '\0' || strstr(path, "/..") || strstr(path, "//"))
                return -EINVAL;
        snprintf(parent, sizeof parent, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        _cleanup_close_ int fd = cg_open_dir(root_fd, path);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return fd;
        bool v2 = faccessat(fd, "cgroup.events", F_OK, 0) == 0;
        if (dir_populated(fd, v2)) {
                (void)kill_dir(fd, v2);
                for (int i = 0; i < 200 && dir_populated(fd, v2); i++)
                        sleep_usec(10 * USEC_PER_MSEC);
        }
        _cleanup_close_ int pfd = cg_open_dir(root_fd, parent);
        if (pfd < 0)
                return pfd;
        return rmdir_retry(pfd, slash + 1, path);
}
