/* confine: --sandbox and --user, the hardening of the command (the sandbox cgroup is cgroup/'s):
 * it cannot leave its budget: read-only cgroupfs, capabilities, user, seccomp. */
#include "confine/confine.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "kernel/proc.h"
#include "util.h"

/* The namespaces restrict_namespaces keeps the command from making. CLONE_NEWTIME is unshare()'s
 * alone: in clone()'s flags that bit is part of the exit signal. */
static const unsigned long ns_flags[] = { CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS,  CLONE_NEWIPC,
                                          CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET, 0x00000080 /* NEWTIME */ };
#define NS_MASK_CLONE                                                                                                 \
        (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

static uint32_t scmp_action(const struct sandbox_spec *s)
{
        switch (s->action) {
        case SANDBOX_KILL:
                return SCMP_ACT_KILL_PROCESS;
        case SANDBOX_LOG:
                return SCMP_ACT_LOG;
        default:
                return SCMP_ACT_ERRNO((uint32_t)s->errno_value);
        }
}

/* libseccomp refuses a rule whose action is the default one (-EACCES): nothing to add then. */
static int rule(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned n_args, const struct scmp_arg_cmp *arg)
{
        int r = seccomp_rule_add_array(ctx, act, nr, n_args, arg);
        return r == -EACCES ? 0 : r;
}

static bool listed(const struct sandbox_filter *f, int nr)
{
        for (unsigned i = 0; i < f->n; i++)
                if (f->nr[i] == nr)
                        return true;
        return false;
}

static int build_filter(const struct sandbox_spec *s, struct confine_run *run)
{
        const struct sandbox_filter *f = &s->filter;
        uint32_t act = scmp_action(s);
        int nr_clone = seccomp_syscall_resolve_name("clone"), nr_unshare = seccomp_syscall_resolve_name("unshare");
        int nr_clone3 = seccomp_syscall_resolve_name("clone3"), nr_setns = seccomp_syscall_resolve_name("setns");
        int r = 0;

        scmp_filter_ctx ctx = seccomp_init(f->allow ? act : SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        /* no_new_privs is memrun's own step (confine_apply), so it can be turned off. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        for (unsigned i = 0; r == 0 && i < s->n_archs; i++) {
                r = seccomp_arch_add(ctx, s->archs[i]);
                if (r == -EEXIST)
                        r = 0; /* native is always in */
        }
        for (unsigned i = 0; r == 0 && i < f->n; i++) {
                int nr = f->nr[i];
                struct scmp_arg_cmp no_ns = SCMP_A0(SCMP_CMP_MASKED_EQ, NS_MASK_CLONE | 0x00000080, 0);
                if (f->allow && s->restrict_namespaces && (nr == nr_clone || nr == nr_unshare))
                        r = rule(ctx, SCMP_ACT_ALLOW, nr, 1, &no_ns);
                else if (nr == nr_clone3 || (f->allow && s->restrict_namespaces && nr == nr_setns))
                        continue; /* below */
                else
                        r = rule(ctx, f->allow ? SCMP_ACT_ALLOW : act, nr, 0, NULL);
                /* A pseudo-number is a syscall of another architecture only: nothing here. */
                if (r == -EDOM || (r < 0 && nr < 0))
                        r = 0;
                run->filter_rules += r == 0;
        }
        /* clone3's flags sit in memory a filter cannot read, and glibc's pthread_create and posix_spawn
         * fall back to clone() only on ENOSYS: whenever clone3 is not plainly allowed, it gets ENOSYS
         * (never the filter's action, which would break thread creation). */
        bool clone3_allowed = f->allow ? listed(f, nr_clone3) && !s->restrict_namespaces
                                       : !listed(f, nr_clone3) && !s->restrict_namespaces;
        if (r == 0 && !clone3_allowed)
                r = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), nr_clone3, 0, NULL);
        else if (r == 0 && f->allow)
                r = rule(ctx, SCMP_ACT_ALLOW, nr_clone3, 0, NULL);
        if (r == 0 && s->restrict_namespaces) {
                if (r == 0 && (f->allow || !listed(f, nr_setns)))
                        r = f->allow ? 0 : rule(ctx, act, nr_setns, 0, NULL);
                for (size_t i = 0; r == 0 && !f->allow && i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
                        struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]);
                        if (!listed(f, nr_unshare))
                                r = rule(ctx, act, nr_unshare, 1, &a);
                        if (r == 0 && ns_flags[i] != 0x00000080 && !listed(f, nr_clone))
                                r = rule(ctx, act, nr_clone, 1, &a);
                }
        }
        if (r < 0) {
                seccomp_release(ctx);
                return r;
        }
        run->filter = ctx;
        return 0;
}

static int resolve_user(const struct sandbox_spec *s, struct confine_run *r)
{
        struct passwd *pw;
        char *end;

        errno = 0;
        pw = getpwnam(s->user);
        if (!pw) {
                unsigned long v = strtoul(s->user, &end, 10);
                if (*s->user && !*end && v < 0xffffffffUL)
                        pw = getpwuid((uid_t)v);
        }
        if (!pw) {
                log_error("user '%s': no such user%s", s->user, errno ? " (the user database failed)" : "");
                return -ESRCH;
        }
        r->uid = pw->pw_uid;
        r->gid = pw->pw_gid;
        snprintf(r->user, sizeof r->user, "%s", pw->pw_name);
        snprintf(r->home, sizeof r->home, "%s", pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
        snprintf(r->shell, sizeof r->shell, "%s", pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
        if (s->group[0]) {
                struct group *gr = getgrnam(s->group);
                if (!gr) {
                        unsigned long v = strtoul(s->group, &end, 10);
                        if (!*end && v < 0xffffffffUL)
                                gr = getgrgid((gid_t)v);
                }
                if (!gr) {
                        log_error("group '%s': no such group", s->group);
                        return -ESRCH;
                }
                r->gid = gr->gr_gid;
        }
        /* The user's supplementary groups, as login and systemd's User= give them. */
        r->n_groups = CONFINE_MAX_GROUPS;
        if (getgrouplist(r->user, r->gid, r->groups, &r->n_groups) < 0) {
                log_error("user '%s' is in more than %d groups", r->user, CONFINE_MAX_GROUPS);
                return -E2BIG;
        }
        r->drop_user = true;
        return 0;
}

int confine_prepare(const struct sandbox_spec *spec, const char *proc_root, const char *keep_rw, struct confine_run *r)
{
        int k;

        *r = (struct confine_run){ .proc_fd = -1, .spec = spec, .euid = geteuid() };
        if (spec->user[0]) {
                if (r->euid != 0) {
                        log_error("--user '%s' needs root: memrun runs as uid %u", spec->user, (unsigned)r->euid);
                        return -EPERM;
                }
                k = resolve_user(spec, r);
                if (k < 0)
                        return k;
        }
        r->bounding = spec->caps_set ? spec->keep_caps : sandbox_caps_default(r->drop_user);
        r->ambient = r->drop_user && spec->caps_set ? spec->keep_caps : 0;
        if (!spec->enabled) {
                /* --user alone: the user and the bounding set, nothing else. */
                r->bounding_set = r->drop_user;
                return 0;
        }
        r->enabled = true;
        r->bounding_set = r->euid == 0;
        r->no_new_privs = spec->no_new_privs;
        r->restrict_namespaces = spec->restrict_namespaces;
        r->protect_tunables = spec->protect_kernel_tunables;
        r->cgroup_ns = spec->cgroup_namespace;
        r->mount_ns = spec->read_only_cgroupfs;
        r->user_ns = r->euid != 0 && (r->mount_ns || r->cgroup_ns);
        r->proc_fd = proc_open_root(proc_root);
        if (r->proc_fd < 0)
                return log_error_errno(r->proc_fd, "--sandbox: cannot open %s: %m", proc_root);
        if (r->mount_ns) {
                static char text[1 << 18];
                ssize_t n = proc_self_read(r->proc_fd, "mountinfo", text, sizeof text);
                if (n < 0)
                        return log_error_errno((int)n, "--sandbox: cannot read %s/self/mountinfo: %m", proc_root);
                k = cg_mounts_parse(text, r->ro, CONFINE_MAX_MOUNTS, &r->n_ro);
                if (k < 0)
                        return log_error_errno(k, "--sandbox: %s/self/mountinfo: %s", proc_root,
                                               k == -E2BIG ? "more cgroup mounts than memrun handles" : "not mountinfo");
                if (r->n_ro == 0)
                        log_warn("--sandbox: no cgroup filesystem is mounted here: nothing to make read-only");
                if (keep_rw && keep_rw[0])
                        snprintf(r->keep_rw, sizeof r->keep_rw, "%s", keep_rw);
        }
        k = build_filter(spec, r);
        if (k < 0)
                return log_error_errno(k, "--sandbox: building the seccomp filter: %m");
        return 0;
}

static int drop_bounding(uint64_t keep)
{
        for (int c = 0; c <= sandbox_cap_last(); c++) {
                if ((keep >> c) & 1)
                        continue;
                /* EINVAL: a capability this kernel predates. */
                if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0 && errno != EINVAL)
                        return -errno;
        }
        return 0;
}

/* A dropped user keeps the capabilities of keep_caps: permitted, effective, inheritable and
 * ambient, so that they survive execve of an ordinary binary. */
static int raise_ambient(uint64_t caps)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};
        for (int i = 0; i < 2; i++)
                d[i].permitted = d[i].effective = d[i].inheritable = (uint32_t)(caps >> (32 * i));
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        for (int c = 0; c <= sandbox_cap_last(); c++)
                if ((caps >> c) & 1 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0)
                        return -errno;
        return 0;
}

/* One step of confine_apply: on failure, name it in what and return -errno. STEP for a system
 * call that sets errno, STEP_R for a function that returns 0 or -errno. */
#define STEP(cond, ...)                                                                                               \
        do {                                                                                                          \
                if (cond) {                                                                                           \
                        int e_ = errno;                                                                               \
                        snprintf(what, what_size, __VA_ARGS__);                                                       \
                        return -e_;                                                                                   \
                }                                                                                                     \
        } while (0)
#define STEP_R(call, ...)                                                                                             \
        do {                                                                                                          \
                int k_ = (call);                                                                                      \
                if (k_ < 0) {                                                                                         \
                        snprintf(what, what_size, __VA_ARGS__);                                                       \
                        return k_;                                                                                    \
                }                                                                                                     \
        } while (0)

/* Nothing done in the sandbox's mount namespace may reach the host's mounts, and no mount the host
 * makes later (a cgroup filesystem mounted writable) may reach the sandbox: every mount is made
 * private, recursively from "/". In a chroot "/" is no mount point (EINVAL): then each mount the
 * sandbox changes or mounts on is made private instead (the cgroup filesystems, /proc and /sys),
 * which is all that can carry a mount either way here. */
static int make_mounts_private(const struct confine_run *r, char *what, size_t what_size)
{
#define CHROOT_ADVICE "making %s private (in a chroot? '/' is not a mount point, nor is %s: mount it there)"
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
                return 0;
        STEP(errno != EINVAL, "making its mounts private");
        for (unsigned i = 0; i < r->n_ro; i++)
                STEP(mount(NULL, r->ro[i].path, NULL, MS_REC | MS_PRIVATE, NULL) < 0, CHROOT_ADVICE, r->ro[i].path,
                     r->ro[i].path);
        static const char *const tunables[] = { "/proc", "/sys" };
        for (size_t i = 0; r->protect_tunables && i < sizeof tunables / sizeof tunables[0]; i++)
                STEP(mount(NULL, tunables[i], NULL, MS_REC | MS_PRIVATE, NULL) < 0, CHROOT_ADVICE, tunables[i], tunables[i]);
#undef CHROOT_ADVICE
        return 0;
}

int confine_apply(const struct confine_run *r, char *what, size_t what_size)
{
        if (r->enabled) {
                int flags = (r->mount_ns ? CLONE_NEWNS : 0) | (r->cgroup_ns ? CLONE_NEWCGROUP : 0);
                if (r->user_ns) {
                        STEP(unshare(CLONE_NEWUSER) < 0, "a user namespace (unshare)");
                        STEP_R(proc_self_map_ids(r->proc_fd, r->euid, getegid()), "mapping its uid in the user namespace");
                }
                STEP(flags && unshare(flags) < 0, r->mount_ns ? "its own mount namespace (unshare)"
                                                              : "its own cgroup namespace (unshare)");
                if (r->mount_ns) {
                        int k = make_mounts_private(r, what, what_size);
                        if (k < 0)
                                return k;
                        if (r->keep_rw[0])
                                (void)mount(r->keep_rw, r->keep_rw, NULL, MS_BIND, NULL);
                        for (unsigned i = 0; i < r->n_ro; i++) {
                                unsigned long f = MS_REMOUNT | MS_BIND | MS_RDONLY | r->ro[i].flags;
                                STEP(mount(NULL, r->ro[i].path, NULL, f, NULL) < 0, "remounting %s read-only", r->ro[i].path);
                        }
                        /* The kernel's tunables too (systemd's ProtectKernelTunables=): as root the command
                         * could otherwise name a program the kernel runs as root outside the sandbox
                         * (kernel.core_pattern, kernel.modprobe) or change how memory is accounted. */
                        static const char *const tunables[] = { "/proc/sys", "/sys" };
                        for (size_t i = 0; r->protect_tunables && i < sizeof tunables / sizeof tunables[0]; i++) {
                                const char *t = tunables[i];
                                STEP(mount(t, t, NULL, MS_BIND | MS_REC, NULL) < 0 ||
                                             mount(NULL, t, NULL,
                                                   MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0,
                                     "making %s read-only", t);
                        }
                }
        }
        if (r->bounding_set)
                STEP_R(drop_bounding(r->bounding), "dropping capabilities from the bounding set");
        if (r->drop_user) {
                STEP(r->ambient && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0, "keeping capabilities (PR_SET_KEEPCAPS)");
                STEP(setgroups((size_t)r->n_groups, r->groups) < 0, "setgroups");
                STEP(setresgid(r->gid, r->gid, r->gid) < 0, "setresgid");
                STEP(setresuid(r->uid, r->uid, r->uid) < 0, "setresuid");
                /* the kernel clears the parent-death signal when the ids change: if memrun dies, so
                 * must the command, whoever it runs as */
                STEP(prctl(PR_SET_PDEATHSIG, SIGKILL) < 0, "keeping the parent-death signal");
                if (r->ambient)
                        STEP_R(raise_ambient(r->ambient), "raising the kept capabilities");
        }
        if (r->enabled) {
                STEP(r->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0, "no_new_privs");
                if (r->filter)
                        STEP_R(seccomp_load(r->filter), "loading the seccomp filter%s",
                               r->no_new_privs ? "" : " (without no_new_privs it needs CAP_SYS_ADMIN)");
        }
        return 0;
}

void confine_user_env(const struct confine_run *r)
{
        if (!r->drop_user)
                return;
        setenv("USER", r->user, 1);
        setenv("LOGNAME", r->user, 1);
        setenv("HOME", r->home, 1);
        setenv("SHELL", r->shell, 1);
}

void confine_release(struct confine_run *r)
{
        if (r->filter)
                seccomp_release(r->filter);
        r->filter = NULL;
        close_fd(&r->proc_fd);
}

static unsigned popcount64(uint64_t v)
{
        unsigned n = 0;
        for (; v; v &= v - 1)
                n++;
        return n;
}

void confine_describe(const struct confine_run *r, char *buf, size_t size)
{
        char act[48];
        size_t o = 0;
        buf[0] = '\0';
#define ADD(...)                                                                                                      \
        do {                                                                                                          \
                int w_ = snprintf(buf + o, o < size ? size - o : 0, __VA_ARGS__);                                     \
                if (w_ > 0)                                                                                           \
                        o += (size_t)w_;                                                                              \
        } while (0)
        if (r->enabled) {
                sandbox_action_format(r->spec->action, r->spec->errno_value, act, sizeof act);
                ADD("sandbox: %s%u cgroup mount%s read-only%s, %s%s, seccomp %s %u syscalls (%s)",
                    r->user_ns ? "user namespace, " : "", r->n_ro, r->n_ro == 1 ? "" : "s",
                    r->mount_ns ? "" : " (off)", r->cgroup_ns ? "cgroup namespace, " : "",
                    r->no_new_privs ? "no_new_privs" : "new privileges allowed",
                    r->spec->filter.allow ? "allows" : "denies", r->filter_rules, act);
                if (r->restrict_namespaces)
                        ADD(", no new namespaces");
        }
        if (r->drop_user)
                ADD("%suser %s (uid %u, gid %u, %d group%s)", o ? "; " : "", r->user, (unsigned)r->uid,
                    (unsigned)r->gid, r->n_groups, r->n_groups == 1 ? "" : "s");
        if (r->bounding_set)
                ADD("%scapabilities kept: %u", o ? "; " : "", popcount64(r->bounding));
#undef ADD
}
