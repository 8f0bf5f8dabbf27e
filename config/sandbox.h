/* sandbox: what --sandbox and the [sandbox] policy section ask for (memrun.ini(5), SANDBOX): the
 * syscall filter in systemd's vocabulary (names, @groups, ~ for a deny list), its action and
 * architectures, the capabilities kept, the user. Parsing and name resolution only; runner/confine/confine.c
 * applies it in the child. Syscall names are resolved with libseccomp, so a name is known exactly
 * when the filter can use it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SANDBOX_MAX_SYSCALLS 512
#define SANDBOX_MAX_ARCHS 4
#define SANDBOX_MAX_TERMS 64     /* names and groups in one syscall_filter */
#define SANDBOX_NAME_MAX 64      /* user and group names */

enum sandbox_action { SANDBOX_ERRNO, SANDBOX_KILL, SANDBOX_LOG };

struct sandbox_term {
        char name[32];           /* as written: "@mount", "setns" */
        unsigned native;         /* syscalls of it that exist on this machine's architecture */
};

struct sandbox_filter {
        bool allow;              /* an allow-list: everything else gets the action; else a deny list */
        unsigned n;              /* syscalls, as libseccomp's (native or pseudo) numbers */
        int nr[SANDBOX_MAX_SYSCALLS];
        unsigned n_terms;
        struct sandbox_term terms[SANDBOX_MAX_TERMS];
};

struct sandbox_spec {
        bool enabled;            /* --sandbox or [sandbox] enabled=yes */
        bool read_only_cgroupfs; /* own mount namespace, every cgroup mount read-only */
        bool cgroup_namespace;   /* own cgroup namespace (rooted at the sandbox) */
        bool no_new_privs;
        bool restrict_namespaces; /* no new namespaces: clone/unshare flags, setns, clone3 */
        bool protect_kernel_tunables; /* /proc/sys and /sys read-only (with read_only_cgroupfs) */
        bool filter_set;         /* syscall_filter given; else SANDBOX_DEFAULT_FILTER */
        struct sandbox_filter filter;
        enum sandbox_action action;
        int errno_value;         /* SANDBOX_ERRNO */
        unsigned n_archs;        /* 0: native only */
        uint32_t archs[SANDBOX_MAX_ARCHS];
        char arch_names[SANDBOX_MAX_ARCHS][16];
        bool caps_set;           /* keep_caps given; else the default (see sandbox_caps_default) */
        uint64_t keep_caps;      /* bit N = capability N stays in the bounding set */
        char user[SANDBOX_NAME_MAX], group[SANDBOX_NAME_MAX]; /* "" = unchanged */
};

/* The built-in deny list: what would leave the sandbox or its budget, and nothing an ordinary
 * service needs (memrun.ini(5) gives the reason for each). */
#define SANDBOX_DEFAULT_FILTER \
        "~@mount @module @reboot @swap @raw-io @obsolete @cpu-emulation setns bpf perf_event_open " \
        "open_by_handle_at lookup_dcookie"

/* The defaults of [sandbox] (read-only cgroupfs, no_new_privs, restrict_namespaces on; filter
 * SANDBOX_DEFAULT_FILTER; errno:EPERM; native architecture), with enabled off. */
void sandbox_spec_default(struct sandbox_spec *ret);
/* syscall_filter: "NAME|@GROUP ...", a leading "~" makes it a deny list. An allow-list always
 * includes @default (what every program needs to run at all). 0 or -EINVAL with the reason in why
 * (quoting the bad name). */
int sandbox_filter_parse(const char *text, struct sandbox_filter *ret, char *why, size_t why_size);
/* syscall_action: "errno:NAME", "errno:N" (1..4095), "kill", "log". */
int sandbox_action_parse(const char *text, enum sandbox_action *ret, int *ret_errno, char *why, size_t why_size);
/* architectures: "native x86 x32 ..." (libseccomp's names) into s->archs, s->arch_names, s->n_archs. */
int sandbox_archs_parse(const char *text, struct sandbox_spec *s, char *why, size_t why_size);
/* keep_caps: "CAP_NET_BIND_SERVICE cap_chown ..." or "" / "none"; "all". Bit N = capability N. */
int sandbox_caps_parse(const char *text, uint64_t *ret, char *why, size_t why_size);
/* The capabilities kept when keep_caps is not given: none for a dropped user; for root all but
 * CAP_SYS_PTRACE (it would reach memrun's mount namespace through /proc/PID/root), CAP_SYS_MODULE,
 * CAP_SYS_RAWIO (/dev/mem, raw disks) and CAP_SYS_BOOT. */
uint64_t sandbox_caps_default(bool drop_user);
/* "--user USER[:GROUP]" into its two names. */
int sandbox_user_parse(const char *text, char *user, size_t user_size, char *group, size_t group_size);
/* The syscall group's members (for --check-policy and the docs); NULL if there is no such group. */
const char *const *sandbox_group(const char *name);
/* Names for messages and the report. */
const char *sandbox_cap_name(int cap);
int sandbox_cap_last(void);
void sandbox_action_format(enum sandbox_action a, int err, char *buf, size_t size);
/* The resolved [sandbox] section for --check-policy. */
void sandbox_spec_print(FILE *f, const struct sandbox_spec *s);
