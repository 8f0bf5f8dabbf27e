/* sandbox: the [sandbox] specification: syscall groups, filter, action, architectures, capabilities. */
#include "sandbox.h"

#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- syscall groups */

/* systemd's groups (systemd 252, src/shared/seccomp-util.c), member for member, except where noted.
 * A member starting with '@' is another group. Names libseccomp does not know on any architecture
 * are skipped when a group is resolved; names of other architectures count only where they exist. */
#define G(...) ((const char *const[]){ __VA_ARGS__, NULL })
static const struct {
        const char *name;
        const char *const *members;
} groups[] = {
        { "@default",
          G("brk", "cacheflush", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
            "clock_nanosleep", "clock_nanosleep_time64", "execve", "exit", "exit_group", "futex", "futex_time64",
            "get_robust_list", "get_thread_area", "getegid", "getegid32", "geteuid", "geteuid32", "getgid",
            "getgid32", "getgroups", "getgroups32", "getpgid", "getpgrp", "getpid", "getppid", "getrandom",
            "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "getsid", "gettid",
            "gettimeofday", "getuid", "getuid32", "membarrier", "mmap", "mmap2", "mprotect", "munmap",
            "nanosleep", "pause", "prlimit64", "restart_syscall", "rseq", "rt_sigreturn", "sched_getaffinity",
            "sched_yield", "set_robust_list", "set_thread_area", "set_tid_address", "set_tls", "sigreturn", "time",
            "ugetrlimit") },
        { "@aio",
          G("io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup",
            "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup") },
        { "@basic-io",
          G("_llseek", "close", "close_range", "dup", "dup2", "dup3", "lseek", "pread64", "preadv", "preadv2",
            "pwrite64", "pwritev", "pwritev2", "read", "readv", "write", "writev") },
        { "@chown", G("chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32") },
        { "@clock",
          G("adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday") },
        { "@cpu-emulation", G("modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old") },
        { "@debug",
          G("lookup_dcookie", "perf_event_open", "pidfd_getfd", "ptrace", "rtas", "s390_runtime_instr",
            "sys_debug_setcontext") },
        { "@file-system",
          G("access", "chdir", "chmod", "close", "creat", "faccessat", "faccessat2", "fallocate", "fchdir",
            "fchmod", "fchmodat", "fcntl", "fcntl64", "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr",
            "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "ftruncate", "ftruncate64", "futimesat",
            "getcwd", "getdents", "getdents64", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
            "inotify_rm_watch", "lgetxattr", "link", "linkat", "listxattr", "llistxattr", "lremovexattr",
            "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "mmap", "mmap2", "munmap",
            "newfstatat", "oldfstat", "oldlstat", "oldstat", "open", "openat", "openat2", "readlink", "readlinkat",
            "removexattr", "rename", "renameat", "renameat2", "rmdir", "setxattr", "stat", "stat64", "statfs",
            "statfs64", "statx", "symlink", "symlinkat", "truncate", "truncate64", "unlink", "unlinkat", "utime",
            "utimensat", "utimensat_time64", "utimes") },
        { "@io-event",
          G("_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
            "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll", "ppoll_time64",
            "pselect6", "pselect6_time64", "select") },
        { "@ipc",
          G("ipc", "memfd_create", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
            "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget",
            "msgrcv", "msgsnd", "pipe", "pipe2", "process_madvise", "process_vm_readv", "process_vm_writev",
            "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget") },
        { "@keyring", G("add_key", "keyctl", "request_key") },
        { "@memlock", G("mlock", "mlock2", "mlockall", "munlock", "munlockall") },
        { "@module", G("delete_module", "finit_module", "init_module") },
        /* systemd's @mount less chroot: chroot neither leaves the cgroup nor lifts a mount's read-only
         * flag, and sshd and postfix chroot themselves. */
        { "@mount",
          G("fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount", "open_tree",
            "pivot_root", "umount", "umount2") },
        { "@network-io",
          G("accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
            "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
            "setsockopt", "shutdown", "socket", "socketcall", "socketpair") },
        { "@obsolete",
          G("_sysctl", "afs_syscall", "bdflush", "break", "create_module", "ftime", "get_kernel_syms", "getpmsg",
            "gtty", "idle", "lock", "mpx", "prof", "profil", "putpmsg", "query_module", "security", "sgetmask",
            "ssetmask", "stime", "stty", "sysfs", "tuxcall", "ulimit", "uselib", "ustat", "vserver") },
        { "@privileged",
          G("@chown", "@clock", "@module", "@raw-io", "@reboot", "@swap", "_sysctl", "acct", "bpf", "capset",
            "chroot", "fanotify_init", "fanotify_mark", "nfsservctl", "open_by_handle_at", "pivot_root",
            "quotactl", "quotactl_fd", "setdomainname", "setfsuid", "setfsuid32", "setgroups", "setgroups32",
            "sethostname", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32", "vhangup") },
        { "@process",
          G("capget", "clone", "clone3", "execveat", "fork", "getrusage", "kill", "pidfd_open", "pidfd_send_signal",
            "prctl", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "setns", "swapcontext", "tgkill", "times", "tkill",
            "unshare", "vfork", "wait4", "waitid", "waitpid") },
        { "@raw-io",
          G("ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write", "s390_pci_mmio_read",
            "s390_pci_mmio_write") },
        { "@reboot", G("kexec_file_load", "kexec_load", "reboot") },
        { "@resources",
          G("ioprio_set", "mbind", "migrate_pages", "move_pages", "nice", "sched_setaffinity", "sched_setattr",
            "sched_setparam", "sched_setscheduler", "set_mempolicy", "set_mempolicy_home_node", "setpriority",
            "setrlimit") },
        { "@setuid",
          G("setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32",
            "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32") },
        { "@signal",
          G("rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigsuspend", "rt_sigtimedwait",
            "rt_sigtimedwait_time64", "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4", "sigpending",
            "sigprocmask", "sigsuspend") },
        { "@swap", G("swapoff", "swapon") },
        { "@sync", G("fdatasync", "fsync", "msync", "sync", "sync_file_range", "sync_file_range2", "syncfs") },
        { "@system-service",
          G("@aio", "@basic-io", "@chown", "@default", "@file-system", "@io-event", "@ipc", "@keyring", "@memlock",
            "@network-io", "@process", "@resources", "@setuid", "@signal", "@sync", "@timer", "arch_prctl",
            "capget", "capset", "copy_file_range", "fadvise64", "fadvise64_64", "flock", "get_mempolicy", "getcpu",
            "getpriority", "ioctl", "ioprio_get", "kcmp", "madvise", "mremap", "name_to_handle_at", "oldolduname",
            "olduname", "personality", "readahead", "readdir", "remap_file_pages", "sched_get_priority_max",
            "sched_get_priority_min", "sched_getattr", "sched_getparam", "sched_getscheduler",
            "sched_rr_get_interval", "sched_rr_get_interval_time64", "sendfile", "sendfile64", "setfsgid",
            "setfsgid32", "setfsuid", "setfsuid32", "setpgid", "setsid", "splice", "sysinfo", "tee", "umask",
            "uname", "userfaultfd", "vmsplice") },
        { "@timer",
          G("alarm", "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
            "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
            "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times") },
};
#undef G
#define N_GROUPS (sizeof groups / sizeof groups[0])

const char *const *sandbox_group(const char *name)
{
        for (size_t i = 0; i < N_GROUPS; i++)
                if (strcmp(groups[i].name, name) == 0)
                        return groups[i].members;
        return NULL;
}

static void group_list(char *buf, size_t size)
{
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < N_GROUPS && o < size; i++) {
                int w = snprintf(buf + o, size - o, "%s%s", i ? " " : "", groups[i].name);
                if (w < 0)
                        break;
                o += (size_t)w;
        }
}

/* ---------------------------------------------------------------- the filter */

/* A printable, bounded copy of untrusted text for a message. */
static const char *q(const char *s, size_t len, char *buf, size_t size)
{
        size_t o = 0;
        for (size_t i = 0; i < len && s[i] && o + 5 < size && i < 48; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
                        buf[o++] = (char)c;
                else
                        o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        }
        buf[o] = '\0';
        return buf;
}

static bool has_nr(const struct sandbox_filter *f, int nr)
{
        for (unsigned i = 0; i < f->n; i++)
                if (f->nr[i] == nr)
                        return true;
        return false;
}

/* Add one syscall name. -ENOENT if libseccomp knows no such syscall, -E2BIG if the table is full. */
static int add_name(struct sandbox_filter *f, const char *name, unsigned *native)
{
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return -ENOENT;
        if (seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name) >= 0)
                (*native)++;
        if (has_nr(f, nr))
                return 0;
        if (f->n >= SANDBOX_MAX_SYSCALLS)
                return -E2BIG;
        f->nr[f->n++] = nr;
        return 0;
}

static int add_group(struct sandbox_filter *f, const char *const *members, unsigned depth, unsigned *native)
{
        if (depth > 4)
                return -ELOOP;
        for (const char *const *m = members; *m; m++) {
                int r;
                if ((*m)[0] == '@') {
                        const char *const *sub = sandbox_group(*m);
                        r = sub ? add_group(f, sub, depth + 1, native) : -ENOENT;
                } else {
                        r = add_name(f, *m, native);
                        if (r == -ENOENT)
                                r = 0; /* a name this libseccomp predates: nothing to filter */
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int resolve_term(struct sandbox_filter *f, struct sandbox_term *t, char *why, size_t why_size)
{
        char b[256], list[600];
        size_t len = strlen(t->name);
        int r;

        if (t->name[0] == '~') {
                snprintf(why, why_size, "'%s': '~' only starts the list (it makes all of it a deny list)",
                         q(t->name, len, b, sizeof b));
                return -EINVAL;
        } else if (t->name[0] == '@') {
                const char *const *g = sandbox_group(t->name);
                if (!g) {
                        group_list(list, sizeof list);
                        snprintf(why, why_size, "'%s' is not a syscall group (known: %s)", q(t->name, len, b, sizeof b),
                                 list);
                        return -EINVAL;
                }
                r = add_group(f, g, 0, &t->native);
        } else {
                r = add_name(f, t->name, &t->native);
                if (r == -ENOENT) {
                        snprintf(why, why_size, "'%s' is not a syscall name libseccomp knows", q(t->name, len, b, sizeof b));
                        return -EINVAL;
                }
        }
        if (r < 0) {
                snprintf(why, why_size, "'%s': %s", q(t->name, len, b, sizeof b),
                         r == -E2BIG ? "more syscalls than the filter holds" : "groups nest too deep");
                return -EINVAL;
        }
        return 0;
}

/* One name or @group: the len bytes at p, which go on into the rest of the list. */
static int add_term(struct sandbox_filter *f, const char *p, size_t len, char *why, size_t why_size)
{
        char b[256];

        if (len >= sizeof f->terms[0].name) {
                snprintf(why, why_size, "'%s' is too long for a syscall or group name", q(p, len, b, sizeof b));
                return -EINVAL;
        }
        if (f->n_terms >= SANDBOX_MAX_TERMS) {
                snprintf(why, why_size, "too many names (at most %d)", SANDBOX_MAX_TERMS);
                return -EINVAL;
        }
        struct sandbox_term *t = &f->terms[f->n_terms];
        memcpy(t->name, p, len);
        t->name[len] = '\0';
        for (unsigned i = 0; i < f->n_terms; i++)
                if (strcmp(f->terms[i].name, t->name) == 0) {
                        snprintf(why, why_size, "'%s' is listed twice", q(t->name, len, b, sizeof b));
                        return -EINVAL;
                }
        if (resolve_term(f, t, why, why_size) < 0)
                return -EINVAL;
        f->n_terms++;
        return 0;
}

int sandbox_filter_parse(const char *text, struct sandbox_filter *ret, char *why, size_t why_size)
{
        struct sandbox_filter *f = ret;
        const char *p = text;

        memset(f, 0, sizeof *f);
        why[0] = '\0';
        if (!text)
                return -EINVAL;
        while (isspace((unsigned char)*p))
                p++;
        f->allow = *p != '~';
        if (!f->allow)
                p++;
        if (f->allow) {
                unsigned dummy = 0;
                (void)add_group(f, sandbox_group("@default"), 0, &dummy);
        }
        for (;;) {
                while (isspace((unsigned char)*p))
                        p++;
                if (!*p)
                        break;
                size_t len = strcspn(p, " \t\r\n\v\f");
                if (add_term(f, p, len, why, why_size) < 0)
                        return -EINVAL;
                p += len;
        }
        if (!f->allow && f->n_terms == 0) {
                snprintf(why, why_size, "'~' with no names after it denies nothing");
                return -EINVAL;
        }
        if (f->allow && f->n_terms == 0) {
                snprintf(why, why_size, "no syscall names (an allow-list of @default alone cannot run a program)");
                return -EINVAL;
        }
        return 0;
}

/* ---------------------------------------------------------------- action, architectures */

int sandbox_action_parse(const char *text, enum sandbox_action *ret, int *ret_errno, char *why, size_t why_size)
{
        char b[256];
        why[0] = '\0';
        if (strcmp(text, "kill") == 0) {
                *ret = SANDBOX_KILL;
                *ret_errno = 0;
                return 0;
        }
        if (strcmp(text, "log") == 0) {
                *ret = SANDBOX_LOG;
                *ret_errno = 0;
                return 0;
        }
        if (strncmp(text, "errno:", 6) == 0 && text[6]) {
                const char *e = text + 6;
                if (*e >= '0' && *e <= '9') {
                        char *end;
                        errno = 0;
                        long v = strtol(e, &end, 10);
                        if (!errno && !*end && v >= 1 && v <= 4095) {
                                *ret = SANDBOX_ERRNO;
                                *ret_errno = (int)v;
                                return 0;
                        }
                } else
                        for (int v = 1; v < 4096; v++) {
                                const char *n = strerrorname_np(v);
                                if (n && strcmp(n, e) == 0) {
                                        *ret = SANDBOX_ERRNO;
                                        *ret_errno = v;
                                        return 0;
                                }
                        }
                snprintf(why, why_size, "'%s' is not an errno (expected e.g. errno:EPERM, errno:EACCES, errno:1)",
                         q(text, strlen(text), b, sizeof b));
                return -EINVAL;
        }
        snprintf(why, why_size, "'%s' is not a syscall action (expected errno:NAME, kill or log)",
                 q(text, strlen(text), b, sizeof b));
        return -EINVAL;
}

void sandbox_action_format(enum sandbox_action a, int err, char *buf, size_t size)
{
        if (a == SANDBOX_KILL)
                snprintf(buf, size, "kill");
        else if (a == SANDBOX_LOG)
                snprintf(buf, size, "log");
        else if (strerrorname_np(err))
                snprintf(buf, size, "errno:%s", strerrorname_np(err));
        else
                snprintf(buf, size, "errno:%d", err);
}

int sandbox_archs_parse(const char *text, struct sandbox_spec *s, char *why, size_t why_size)
{
        char name[16], b[256];
        uint32_t *ret = s->archs;
        unsigned n = 0;
        why[0] = '\0';
        for (const char *p = text;;) {
                while (isspace((unsigned char)*p))
                        p++;
                if (!*p)
                        break;
                size_t len = strcspn(p, " \t\r\n\v\f");
                if (len >= sizeof name) {
                        snprintf(why, why_size, "'%s' is not an architecture", q(p, len, b, sizeof b));
                        return -EINVAL;
                }
                memcpy(name, p, len);
                name[len] = '\0';
                uint32_t a = strcmp(name, "native") == 0 ? seccomp_arch_native() : seccomp_arch_resolve_name(name);
                if (a == 0) {
                        snprintf(why, why_size, "'%s' is not an architecture libseccomp knows (e.g. native, x86_64, "
                                 "x86, x32, aarch64)", q(name, len, b, sizeof b));
                        return -EINVAL;
                }
                for (unsigned i = 0; i < n; i++)
                        if (ret[i] == a) {
                                snprintf(why, why_size, "'%s' is listed twice", q(name, len, b, sizeof b));
                                return -EINVAL;
                        }
                if (n >= SANDBOX_MAX_ARCHS) {
                        snprintf(why, why_size, "too many architectures (at most %d)", SANDBOX_MAX_ARCHS);
                        return -EINVAL;
                }
                memcpy(s->arch_names[n], name, len + 1);
                ret[n++] = a;
                p += len;
        }
        if (n == 0) {
                snprintf(why, why_size, "no architecture named (expected e.g. native)");
                return -EINVAL;
        }
        s->n_archs = n;
        return 0;
}

/* ---------------------------------------------------------------- capabilities, user */

static const char *const cap_names[] = {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
_Static_assert(sizeof cap_names / sizeof cap_names[0] == CAP_LAST_CAP + 1, "a name per capability");

int sandbox_cap_last(void)
{
        return CAP_LAST_CAP;
}

const char *sandbox_cap_name(int cap)
{
        return cap >= 0 && cap <= CAP_LAST_CAP ? cap_names[cap] : NULL;
}

uint64_t sandbox_caps_default(bool drop_user)
{
        uint64_t all = (UINT64_C(1) << (CAP_LAST_CAP + 1)) - 1;
        uint64_t dropped = UINT64_C(1) << CAP_SYS_PTRACE | UINT64_C(1) << CAP_SYS_MODULE | UINT64_C(1) << CAP_SYS_RAWIO |
                           UINT64_C(1) << CAP_SYS_BOOT;
        return drop_user ? 0 : all & ~dropped;
}

int sandbox_caps_parse(const char *text, uint64_t *ret, char *why, size_t why_size)
{
        char name[40], b[256];
        uint64_t m = 0;
        why[0] = '\0';
        for (const char *p = text;;) {
                while (isspace((unsigned char)*p) || *p == ',')
                        p++;
                if (!*p)
                        break;
                size_t len = strcspn(p, " \t\r\n\v\f,");
                if (len >= sizeof name - 4) {
                        snprintf(why, why_size, "'%s' is not a capability", q(p, len, b, sizeof b));
                        return -EINVAL;
                }
                memcpy(name, p, len);
                name[len] = '\0';
                p += len;
                if (strcasecmp(name, "none") == 0)
                        continue;
                if (strcasecmp(name, "all") == 0) {
                        m |= (UINT64_C(1) << (CAP_LAST_CAP + 1)) - 1;
                        continue;
                }
                int found = -1;
                for (int c = 0; c <= CAP_LAST_CAP && found < 0; c++)
                        if (strcasecmp(name, cap_names[c]) == 0 || strcasecmp(name, cap_names[c] + 4) == 0)
                                found = c;
                if (found < 0) {
                        snprintf(why, why_size, "'%s' is not a capability (expected e.g. CAP_NET_BIND_SERVICE)",
                                 q(name, len, b, sizeof b));
                        return -EINVAL;
                }
                m |= UINT64_C(1) << found;
        }
        *ret = m;
        return 0;
}

static bool name_ok(const char *s, size_t len)
{
        if (len == 0 || len >= SANDBOX_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.' ||
                      (s[i] == '$' && i == len - 1)))
                        return false;
        return true;
}

int sandbox_user_parse(const char *text, char *user, size_t user_size, char *group, size_t group_size)
{
        const char *colon = strchr(text, ':');
        size_t ul = colon ? (size_t)(colon - text) : strlen(text);
        if (!name_ok(text, ul) || ul >= user_size)
                return -EINVAL;
        memcpy(user, text, ul);
        user[ul] = '\0';
        group[0] = '\0';
        if (colon) {
                size_t gl = strlen(colon + 1);
                if (!name_ok(colon + 1, gl) || gl >= group_size)
                        return -EINVAL;
                memcpy(group, colon + 1, gl + 1);
        }
        return 0;
}

/* ---------------------------------------------------------------- defaults, printing */

void sandbox_spec_default(struct sandbox_spec *ret)
{
        char why[256];
        memset(ret, 0, sizeof *ret);
        ret->read_only_cgroupfs = true;
        ret->no_new_privs = true;
        ret->restrict_namespaces = true;
        ret->protect_kernel_tunables = true;
        ret->action = SANDBOX_ERRNO;
        ret->errno_value = EPERM;
        /* The built-in list names only what libseccomp knows: it cannot fail. */
        if (sandbox_filter_parse(SANDBOX_DEFAULT_FILTER, &ret->filter, why, sizeof why) < 0)
                abort();
}

void sandbox_spec_print(FILE *f, const struct sandbox_spec *s)
{
        char act[48];
        fprintf(f, "sandbox: %s\n", s->enabled ? "yes" : "no (--sandbox or [sandbox] enabled=yes turns it on)");
        fprintf(f, "  read-only cgroupfs: %s, kernel tunables read-only: %s, cgroup namespace: %s, no_new_privs: %s, "
                   "restrict namespaces: %s\n",
                s->read_only_cgroupfs ? "yes" : "no", s->read_only_cgroupfs && s->protect_kernel_tunables ? "yes" : "no",
                s->cgroup_namespace ? "yes" : "no", s->no_new_privs ? "yes" : "no", s->restrict_namespaces ? "yes" : "no");
        sandbox_action_format(s->action, s->errno_value, act, sizeof act);
        fprintf(f, "  syscall filter (%s): %s %u syscall%s, the rest %s; action %s\n",
                s->filter_set ? "syscall_filter" : "built in", s->filter.allow ? "allows" : "denies", s->filter.n,
                s->filter.n == 1 ? "" : "s", s->filter.allow ? "denied" : "allowed", act);
        for (unsigned i = 0; i < s->filter.n_terms; i++)
                fprintf(f, "    %-16s %u syscall%s on this architecture\n", s->filter.terms[i].name,
                        s->filter.terms[i].native, s->filter.terms[i].native == 1 ? "" : "s");
        if (s->filter.allow)
                fprintf(f, "    %-16s always allowed in an allow-list\n", "@default");
        fprintf(f, "  architectures:");
        if (s->n_archs == 0)
                fprintf(f, " native");
        for (unsigned i = 0; i < s->n_archs; i++)
                fprintf(f, " %s", s->arch_names[i]);
        fprintf(f, "\n");
        if (s->user[0])
                fprintf(f, "  user: %s%s%s\n", s->user, s->group[0] ? ", group " : "", s->group);
        if (s->caps_set) {
                unsigned n = 0;
                for (int c = 0; c <= CAP_LAST_CAP; c++)
                        n += (unsigned)((s->keep_caps >> c) & 1);
                fprintf(f, "  capabilities kept: %u of %d:", n, CAP_LAST_CAP + 1);
                for (int c = 0; c <= CAP_LAST_CAP && n <= 8; c++)
                        if ((s->keep_caps >> c) & 1)
                                fprintf(f, " %s", cap_names[c]);
                fprintf(f, "\n");
        } else
                fprintf(f, "  capabilities kept: %s\n",
                        s->user[0] ? "none (a dropped user)"
                                   : "all but CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_BOOT (root)");
}
