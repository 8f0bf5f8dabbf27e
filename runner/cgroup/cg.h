/* cg: the cgroup backend. One interface over three host layouts: unified v2, hybrid (v1 memory
 * controller plus the unified hierarchy for cgroup.kill/cgroup.events/memory.pressure) and legacy v1.
 * Every access is relative to a root directory fd, so tests run it on fake trees. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum cg_mode { CG_V2, CG_HYBRID, CG_V1, _CG_MODE_MAX };

const char *cg_mode_name(enum cg_mode m);

struct cg_host {
        enum cg_mode mode;
        char root[PATH_MAX];     /* where the cgroupfs is mounted, for messages */
        int mem_root_fd;         /* hierarchy holding the memory controller */
        int uni_root_fd;         /* unified hierarchy; -1 on legacy v1 */
        char own_mem[PATH_MAX];  /* memrun's own cgroup in the memory hierarchy ("/..." form) */
        char own_uni[PATH_MAX];  /* ... and in the unified hierarchy ("" on v1) */
};

/* Which layout does the tree at root_fd have? -ENOENT: no cgroupfs there. */
int cg_detect(int root_fd, enum cg_mode *ret);
/* Pure: memrun's cgroups from the text of /proc/self/cgroup. */
int cg_parse_self(const char *text, enum cg_mode mode, char *ret_mem, size_t mem_size, char *ret_uni,
                  size_t uni_size);
/* Pure: is the process whose /proc/PID/cgroup text this is in sandbox or beneath it? The memory
 * hierarchy's line is used (cg_parse_self): "0::" on v2, the v1 line listing "memory" otherwise.
 * 1 inside, 0 outside, -ENOENT no such line, -ESTALE a removed cgroup, -EINVAL bad input. */
int cg_cgroup_inside(const char *text, enum cg_mode mode, const char *sandbox);
/* A cgroup filesystem mount (cgroup or cgroup2) from /proc/self/mountinfo: where, and the per-mount
 * flags (MS_NOSUID ...) a read-only remount must keep. */
struct cg_mount {
        char path[PATH_MAX];
        unsigned long flags;
        bool read_only;
};
/* Pure: the cgroup mounts in mountinfo text, in order, at most max. *ret_n is how many there are;
 * -E2BIG when more than max, -EINVAL for a line that is not mountinfo. */
int cg_mounts_parse(const char *text, struct cg_mount *ret, unsigned max, unsigned *ret_n);
/* Open the host's cgroupfs at root, reading proc_root/self/cgroup. Logs what is wrong. */
int cg_host_open(const char *root, const char *proc_root, struct cg_host *ret);
void cg_host_close(struct cg_host *h);

/* --- placement (pure) --- */
struct cg_place_facts {
        enum cg_mode mode;
        const char *explicit_parent;  /* --cgroup, or NULL */
        const char *own;              /* own cgroup in the memory hierarchy */
        bool own_memory_ok;           /* v2: own cgroup may enable +memory for children */
        bool own_alone;               /* v2: memrun is the only process in its cgroup */
        bool root_user;
        bool systemd;                 /* systemd runs the machine */
};
struct cg_placement {
        char parent[PATH_MAX];        /* the sandbox goes beneath this (memory hierarchy) */
        bool split_supervisor;        /* v2: memrun first moves itself to <own>/supervisor */
        bool memrun_subtree;          /* v2: parent is /memrun, created on demand */
};
/* Pure: would a scope from the service manager give memrun a cgroup it may use (v2, systemd, no
 * --cgroup, its own cgroup neither the root nor delegated to it alone)? */
bool cg_place_wants_scope(const struct cg_place_facts *f);
/* Decide where the sandbox goes (docs/ARCHITECTURE.md, and memrun(1) "Where the sandbox goes"). -EPERM with a logged explanation
 * when no usable place exists. */
int cg_place(const struct cg_place_facts *f, struct cg_placement *ret);
/* Gather the facts for cg_place from the live host. */
int cg_place_facts_read(const struct cg_host *h, const char *explicit_parent, struct cg_place_facts *ret);

/* --- the sandbox --- */
struct cg_stats {
        uint64_t current, peak;
        bool has_peak;
        uint64_t ev_high, ev_max, ev_oom, ev_oom_kill, ev_oom_group_kill;
};

struct cg_sandbox {
        enum cg_mode mode;
        char name[256];
        char path[PATH_MAX];       /* memory hierarchy */
        char uni_path[PATH_MAX];   /* unified hierarchy ("" if none) */
        char own_mem[PATH_MAX];    /* for undoing the supervisor split */
        int mem_parent_fd, mem_fd;
        int uni_parent_fd, uni_fd; /* v2: same directory as mem; v1: -1 */
        int events_fd;             /* v2: memory.events (EPOLLPRI); v1: OOM eventfd */
        int usage_fd;              /* memory.current / memory.usage_in_bytes, held for sampling */
        bool split_supervisor, memrun_subtree;
        bool created;               /* memrun made the directories (only then does it remove them) */
        bool in_place;              /* --in-place: memrun's own cgroup, adopted, never changed */
        struct cg_stats base;       /* --in-place: the counters when memrun started (reported as deltas) */
        int proc_fd;                /* --in-place: memrun's process tree is the sandbox's content */
        uint64_t oom_notifications; /* v1: counted from the eventfd */
        uint64_t max_seen;          /* peak fallback when the kernel has no peak file */
};

void cg_sandbox_init(struct cg_sandbox *s);
/* Fill in the sandbox's paths for a placement, touching nothing (they are recorded before creation). */
void cg_sandbox_paths(const struct cg_host *h, const struct cg_placement *p, const char *name,
                      struct cg_sandbox *s);
/* The effective memory.max and memory.high of cgroup PATH (memory hierarchy): the minimum up the
 * hierarchy as far as memrun sees it; UINT64_MAX: none. */
void cg_effective_limits(const struct cg_host *h, const char *path, uint64_t *ret_max, uint64_t *ret_high);
/* --in-place: adopt memrun's own cgroup as the sandbox (nothing is created, written or removed):
 * open it, note its counters, and read its limits (UINT64_MAX: none). Logs what is wrong. */
int cg_sandbox_adopt(const struct cg_host *h, const char *proc_root, struct cg_sandbox *s, uint64_t *ret_max,
                     uint64_t *ret_high);
/* Create the sandbox directories (and the supervisor split / memrun subtree when placement says). */
int cg_sandbox_create(const struct cg_host *h, const struct cg_placement *p, struct cg_sandbox *s);
int cg_sandbox_set_limits(struct cg_sandbox *s, uint64_t max, uint64_t high, uint64_t swap);
/* Open the fd that wakes on memory events (v2 memory.events / v1 oom eventfd). */
int cg_sandbox_watch(struct cg_sandbox *s);
/* Called by the event loop when events_fd is ready; returns 1 if counters changed. */
int cg_sandbox_event(struct cg_sandbox *s);
/* memory.current / memory.usage_in_bytes only: the cheap read for sampling. */
int cg_sandbox_usage(struct cg_sandbox *s, uint64_t *ret);
/* Pure: bytes the kernel could reclaim without swap, from memory.stat text. -ENODATA: no such keys. */
int cg_stat_reclaimable(const char *text, enum cg_mode mode, uint64_t *ret);
/* Pure: anonymous memory charged and mapped by nobody (v2 keys: the anon LRUs less anon, shmem and
 * swapcached), which reclaim frees without touching the program. -ENODATA: no such keys. */
int cg_stat_slack(const char *text, uint64_t *ret);
/* memory.stat, read once: cg_stat_reclaimable's figure (the return value is its status), and the
 * slack into *ret_slack (0 unless cgroup v2 with memory.swap.max 0). */
int cg_sandbox_reclaim_stat(const struct cg_sandbox *s, uint64_t *ret_reclaimable, uint64_t *ret_slack);
/* v1: make eventfd efd fire on FILE's event (memory.usage_in_bytes + a threshold in bytes, crossed
 * either way; memory.pressure_level + "low"/"medium"/"critical"). The write can block for an RCU
 * grace period (tens of ms): the monitor does it from a helper process. */
int cg_sandbox_event_register(const struct cg_sandbox *s, int efd, const char *file, const char *arg);
/* v2: write memory.high (the stall escalation raises it). -EROFS --in-place: not memrun's to write. */
int cg_sandbox_set_high(struct cg_sandbox *s, uint64_t high);
/* v2: proactive reclaim of bytes (memory.reclaim). Blocks until the kernel is done: call it from a
 * child process. -EAGAIN when the kernel reclaimed less. */
int cg_sandbox_reclaim(const struct cg_sandbox *s, uint64_t bytes);
/* What this sandbox offers, so that no caller outside cgroup/ tests a mode or --in-place itself: */
/* memory.high is memrun's (v2, not --in-place): the kernel throttles at the soft limit, and a
 * give-up lifts it. --in-place the enclosing cgroup's memory.high is never written. */
bool cg_sandbox_has_high(const struct cg_sandbox *s);
/* Usage crossings and pressure levels come as eventfds registered by memrun (v1 and hybrid). */
bool cg_sandbox_usage_notifies(const struct cg_sandbox *s);
/* How events_fd wakes: EPOLLPRI (kernfs memory.events) or EPOLLIN (the v1 OOM eventfd). */
uint32_t cg_sandbox_events_poll(const struct cg_sandbox *s);
/* The hard limit in the kernel now (memory.max, v1 limit_in_bytes; UINT64_MAX: none), for noticing
 * a change made by someone else. 0, or -errno. */
int cg_sandbox_hard_limit(const struct cg_sandbox *s, uint64_t *ret);
/* Is the sandbox frozen (cgroup.events "frozen 1": someone wrote cgroup.freeze; v2, or hybrid's
 * unified sibling)? 1, 0, or -EOPNOTSUPP where there is no cgroup2 directory of memrun's own. */
int cg_sandbox_frozen(const struct cg_sandbox *s);
/* memrun may write the sandbox's files (not an adopted, often read-only, cgroup). */
bool cg_sandbox_writable(const struct cg_sandbox *s);
/* The sandbox's memory.pressure as a path (MEMORY_PRESSURE_WATCH); -ENOENT when it has none. */
int cg_sandbox_pressure_path(const struct cg_host *h, const struct cg_sandbox *s, char *buf, size_t size);
/* How spawn starts the command inside: a cgroup fd for clone3(CLONE_INTO_CGROUP), or -1; and
 * whether a plain fork is inside already (an adopted cgroup holds memrun itself). */
int cg_sandbox_spawn_fd(const struct cg_sandbox *s, bool *ret_inside);
/* v2: does the kernel offer memory.reclaim for this sandbox? */
bool cg_sandbox_can_reclaim(const struct cg_sandbox *s);
/* In a freshly forked child: move the calling process into the sandbox. No allocation. */
int cg_sandbox_enter(const struct cg_sandbox *s);
/* Give the sandbox's memory.pressure (unified hierarchy) to uid:gid, so a dropped user's sd-event
 * program can arm its trigger. -ENOENT: no unified hierarchy. */
int cg_sandbox_chown_pressure(const struct cg_sandbox *s, uid_t uid, gid_t gid);
int cg_sandbox_stats(struct cg_sandbox *s, struct cg_stats *ret);
/* SIGKILL every process in the sandbox (cgroup.kill, else freeze-kill-thaw, else per pid). */
int cg_sandbox_kill(const struct cg_sandbox *s);
/* Send sig to every process in the sandbox (--wait-all forwarding); how many, or -errno. */
int cg_sandbox_signal(const struct cg_sandbox *s, int sig);
/* The sandbox's processes (cgroup.procs; in place, only memrun's descendants), at most max: how
 * many, or -errno. A list read once: any of them may be gone by the time it is used. */
int cg_sandbox_pids(const struct cg_sandbox *s, pid_t *pids, size_t max);
/* Is any process left? */
bool cg_sandbox_populated(const struct cg_sandbox *s);
/* Remove the directories (sandbox must be empty) and undo the placement's own changes. */
int cg_sandbox_remove(const struct cg_host *h, struct cg_sandbox *s);
void cg_sandbox_close(struct cg_sandbox *s);

/* Remove a stale sandbox left by a dead memrun: kill what is left, rmdir. 0, or -errno. */
int cg_remove_stale(int hierarchy_root_fd, const char *path);

/* Open "/a/b" relative to a hierarchy root as a directory fd. */
int cg_open_dir(int root_fd, const char *path);
