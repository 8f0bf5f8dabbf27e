/* test_sandbox: the [sandbox] specification (config/sandbox.c) — syscall names and groups through
 * libseccomp, actions, architectures, capabilities, --user — with good and hostile values; the
 * [sandbox] section through the policy parser (FILE:LINE, the bad value quoted); and the cgroup
 * mounts found in mountinfo (runner/cgroup/cg_detect.c) from a real sample and hostile lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include <cmocka.h>
#include <seccomp.h>

#include "config/policy.h"
#include "config/sandbox.h"
#include "cgroup/cg.h"
#include "util.h"
#include "unit.h"

static struct sandbox_filter f;

static bool has(const char *name)
{
        int nr = seccomp_syscall_resolve_name(name);
        for (unsigned i = 0; i < f.n; i++)
                if (f.nr[i] == nr)
                        return true;
        return false;
}

static void test_filter_good(void **state)
{
        (void)state;
        char why[768];
        assert_int_equal(sandbox_filter_parse(SANDBOX_DEFAULT_FILTER, &f, why, sizeof why), 0);
        assert_false(f.allow);
        assert_true(has("mount") && has("umount2") && has("pivot_root") && has("open_tree") && has("fsopen"));
        assert_true(has("init_module") && has("kexec_load") && has("reboot") && has("swapon") && has("iopl"));
        assert_true(has("setns") && has("bpf") && has("perf_event_open") && has("open_by_handle_at"));
        /* what an ordinary service needs is not in it */
        assert_false(has("chroot") || has("ptrace") || has("read") || has("clone") || has("execve") || has("chown"));
        assert_string_equal(f.terms[0].name, "@mount");
        assert_int_equal(f.terms[0].native, 10); /* systemd's @mount less chroot; umount is not x86_64's */

        assert_int_equal(sandbox_filter_parse("  @system-service  uname ", &f, why, sizeof why), 0);
        assert_true(f.allow);
        assert_true(has("execve") && has("exit_group") && has("read") && has("openat") && has("clone"));
        assert_false(has("mount") || has("init_module") || has("reboot"));
        /* an allow-list always has @default, even when it names one syscall */
        assert_int_equal(sandbox_filter_parse("write", &f, why, sizeof why), 0);
        assert_true(has("execve") && has("write") && has("exit_group"));
        /* groups and names overlapping count once */
        assert_int_equal(sandbox_filter_parse("~@swap swapon", &f, why, sizeof why), 0);
        assert_int_equal(f.n, 2);
        /* nested groups resolve: @privileged holds @chown */
        assert_int_equal(sandbox_filter_parse("~@privileged", &f, why, sizeof why), 0);
        assert_true(has("fchownat") && has("setuid") && has("settimeofday") && has("delete_module"));
}

static void test_filter_hostile(void **state)
{
        (void)state;
        static const struct {
                const char *text, *why;
        } t[] = {
                { "~@nosuch", "'@nosuch' is not a syscall group (known: @default" },
                { "~mount nosuchcall", "'nosuchcall' is not a syscall name libseccomp knows" },
                { "~", "'~' with no names after it denies nothing" },
                { "   ", "no syscall names" },
                { "", "no syscall names" },
                { "~mount mount", "'mount' is listed twice" },
                { "@system-service ~uname", "'~uname': '~' only starts the list" },
                { "~@", "'@' is not a syscall group" },
                { "~mount\x01" "x", "'mount\\x01x' is not a syscall name" },
                { "~aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "is too long for a syscall or group name" },
                { "~mount'", "'mount\\x27' is not a syscall name" },
        };
        char why[768];
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                int r = sandbox_filter_parse(t[i].text, &f, why, sizeof why);
                if (r != -EINVAL || !strstr(why, t[i].why))
                        fail_msg("case %zu '%s': r=%d why '%s', want '%s'", i, t[i].text, r, why, t[i].why);
        }
        /* more names than a filter takes */
        char big[8192] = "~";
        for (int i = 0; i < SANDBOX_MAX_TERMS + 1; i++)
                snprintf(big + strlen(big), sizeof big - strlen(big), " %s", i % 2 ? "mount" : "swapon");
        assert_int_equal(sandbox_filter_parse(big, &f, why, sizeof why), -EINVAL); /* listed twice first */
        strcpy(big, "~");
        const char *const *g = sandbox_group("@system-service");
        assert_non_null(g);
        static const char *const names[] = { "read", "write", "openat", "close", "mmap", "brk", "uname", "ioctl",
                                             "fcntl", "dup", "pipe", "poll", "kill", "futex", "lseek", "stat",
                                             "fstat", "lstat", "chdir", "mkdir", "rmdir", "unlink", "rename",
                                             "link", "symlink", "chmod", "access", "getcwd", "socket", "bind",
                                             "listen", "accept", "connect", "sendto", "recvfrom", "shutdown",
                                             "setsockopt", "getsockopt", "clone", "fork", "vfork", "execve",
                                             "wait4", "getpid", "getppid", "getuid", "geteuid", "getgid",
                                             "getegid", "setpgid", "setsid", "umask", "times", "sysinfo",
                                             "sync", "fsync", "truncate", "ftruncate", "getdents64", "statfs",
                                             "fstatfs", "prctl", "arch_prctl", "gettid", "tkill" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                snprintf(big + strlen(big), sizeof big - strlen(big), " %s", names[i]);
        assert_true(ELEMENTSOF(names) > SANDBOX_MAX_TERMS);
        assert_int_equal(sandbox_filter_parse(big, &f, why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "too many names"));
}

static void test_action_archs_caps_user(void **state)
{
        (void)state;
        char why[768], u[SANDBOX_NAME_MAX], g[SANDBOX_NAME_MAX];
        enum sandbox_action a;
        int e;
        assert_int_equal(sandbox_action_parse("errno:EACCES", &a, &e, why, sizeof why), 0);
        assert_int_equal(a, SANDBOX_ERRNO);
        assert_int_equal(e, EACCES);
        assert_int_equal(sandbox_action_parse("errno:38", &a, &e, why, sizeof why), 0);
        assert_int_equal(e, ENOSYS);
        assert_int_equal(sandbox_action_parse("kill", &a, &e, why, sizeof why), 0);
        assert_int_equal(a, SANDBOX_KILL);
        assert_int_equal(sandbox_action_parse("log", &a, &e, why, sizeof why), 0);
        assert_int_equal(a, SANDBOX_LOG);
        static const char *const bad_act[] = { "errno:", "errno:ENOPE", "errno:0", "errno:4096", "errno:-1",
                                               "errno:1x", "Kill", "", "errno:eperm", "trap" };
        for (size_t i = 0; i < ELEMENTSOF(bad_act); i++)
                if (sandbox_action_parse(bad_act[i], &a, &e, why, sizeof why) != -EINVAL || !why[0])
                        fail_msg("action '%s' accepted", bad_act[i]);
        char buf[48];
        sandbox_action_format(SANDBOX_ERRNO, EPERM, buf, sizeof buf);
        assert_string_equal(buf, "errno:EPERM");

        static struct sandbox_spec s;
        assert_int_equal(sandbox_archs_parse("native x86 x32", &s, why, sizeof why), 0);
        assert_int_equal(s.n_archs, 3);
        assert_string_equal(s.arch_names[1], "x86");
        static const char *const bad_arch[] = { "vax", "", "native native", "x86 x86", "native x86 x32 arm aarch64",
                                                "x86_64x" };
        for (size_t i = 0; i < ELEMENTSOF(bad_arch); i++) {
                memset(&s, 0, sizeof s);
                if (sandbox_archs_parse(bad_arch[i], &s, why, sizeof why) != -EINVAL || !why[0])
                        fail_msg("architectures '%s' accepted", bad_arch[i]);
        }

        uint64_t c;
        assert_int_equal(sandbox_caps_parse("CAP_NET_BIND_SERVICE cap_chown, sys_nice", &c, why, sizeof why), 0);
        assert_int_equal(c, (1ull << 10) | (1ull << 0) | (1ull << 23));
        assert_int_equal(sandbox_caps_parse("none", &c, why, sizeof why), 0);
        assert_int_equal(c, 0);
        assert_int_equal(sandbox_caps_parse("all", &c, why, sizeof why), 0);
        assert_int_equal(c, (1ull << (sandbox_cap_last() + 1)) - 1);
        assert_int_equal(sandbox_caps_parse("CAP_FLY", &c, why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "'CAP_FLY' is not a capability"));
        assert_int_equal(sandbox_caps_parse("CAP_", &c, why, sizeof why), -EINVAL);
        assert_int_equal(sandbox_caps_default(true), 0);
        assert_false(sandbox_caps_default(false) & (1ull << 19)); /* CAP_SYS_PTRACE */
        assert_true(sandbox_caps_default(false) & (1ull << 21));  /* CAP_SYS_ADMIN stays for root */
        assert_false(sandbox_caps_default(false) & (1ull << 16 | 1ull << 17 | 1ull << 22)); /* MODULE RAWIO BOOT */
        assert_string_equal(sandbox_cap_name(19), "CAP_SYS_PTRACE");

        assert_int_equal(sandbox_user_parse("nobody:nogroup", u, sizeof u, g, sizeof g), 0);
        assert_string_equal(u, "nobody");
        assert_string_equal(g, "nogroup");
        assert_int_equal(sandbox_user_parse("65534", u, sizeof u, g, sizeof g), 0);
        assert_string_equal(g, "");
        static const char *const bad_user[] = { "", ":", "a:", ":b", "a b", "a:b:c", "../x", "a\n",
                                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
        for (size_t i = 0; i < ELEMENTSOF(bad_user); i++)
                if (sandbox_user_parse(bad_user[i], u, sizeof u, g, sizeof g) == 0)
                        fail_msg("user '%s' accepted", bad_user[i]);
}

static void test_policy_section(void **state)
{
        (void)state;
        static struct policy p;
        char err[1024];
        const char *good = "[sandbox]\nenabled = yes\nsyscall_filter = ~@mount setns\nsyscall_action = errno:EACCES\n"
                           "architectures = native x86\nkeep_caps = CAP_NET_BIND_SERVICE\nuser = nobody\n"
                           "group = nogroup\ncgroup_namespace = yes\nno_new_privs = yes\nread_only_cgroupfs = yes\n"
                           "restrict_namespaces = no\n";
        assert_int_equal(policy_parse_string(good, "g.ini", &p, err, sizeof err), 0);
        assert_true(p.sandbox.enabled && p.sandbox.filter_set && p.sandbox.cgroup_namespace && p.sandbox.caps_set);
        assert_false(p.sandbox.restrict_namespaces);
        assert_int_equal(p.sandbox.errno_value, EACCES);
        assert_string_equal(p.sandbox.user, "nobody");
        assert_string_equal(p.sandbox.group, "nogroup");
        assert_int_equal(p.sandbox.keep_caps, 1ull << 10);
        /* defaults when the section says only enabled */
        assert_int_equal(policy_parse_string("[sandbox]\nenabled = yes\n", "d.ini", &p, err, sizeof err), 0);
        assert_true(p.sandbox.read_only_cgroupfs && p.sandbox.no_new_privs && p.sandbox.restrict_namespaces);
        assert_false(p.sandbox.filter_set || p.sandbox.filter.allow);
        assert_int_equal(p.sandbox.errno_value, EPERM);
        /* the built-in policy leaves the sandbox off */
        policy_default(&p);
        assert_false(p.sandbox.enabled);

        static const struct {
                const char *text, *err;
        } bad[] = {
                { "[sandbox]\nsyscall_filter = ~@nosuch\n", "b.ini:2: [sandbox] syscall_filter: '@nosuch' is not a syscall group" },
                { "[sandbox]\n\nsyscall_action = errno:ENOPE\n", "b.ini:3: [sandbox] syscall_action: 'errno:ENOPE' is not an errno" },
                { "[sandbox]\narchitectures = vax\n", "b.ini:2: [sandbox] architectures: 'vax' is not an architecture" },
                { "[sandbox]\nkeep_caps = CAP_FLY\n", "b.ini:2: [sandbox] keep_caps: 'CAP_FLY' is not a capability" },
                { "[sandbox]\nuser = a:b\n", "b.ini:2: [sandbox] user: 'a:b' is not a user name" },
                { "[sandbox]\ngroup = a b\n", "b.ini:2: [sandbox] group: 'a b' is not a group name" },
                { "[sandbox]\nenabled = maybe\n", "b.ini:2: [sandbox] enabled: 'maybe' is not a boolean" },
                { "[sandbox]\nseccomp = yes\n", "b.ini:2: unknown key 'seccomp' in [sandbox] (expected enabled," },
                { "[sandbox]\nuser = nobody\nuser = root\n", "b.ini:3: duplicate key 'user' in [sandbox]" },
                { "[sandbox]\nsyscall_filter = ~mount\x7f\n", "b.ini:2: [sandbox] syscall_filter: 'mount\\x7f'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = policy_parse_string(bad[i].text, "b.ini", &p, err, sizeof err);
                if (r != -EINVAL || strncmp(err, bad[i].err, strlen(bad[i].err)) != 0)
                        fail_msg("case %zu: r=%d err '%s', want '%s'", i, r, err, bad[i].err);
        }
}

static void test_mounts(void **state)
{
        (void)state;
        static struct cg_mount m[32];
        unsigned n;
        char *v1 = fixture("v1/mountinfo");
        assert_int_equal(cg_mounts_parse(v1, m, 32, &n), 0);
        assert_true(n >= 2);
        bool memory = false, unified = false;
        for (unsigned i = 0; i < n; i++) {
                memory |= strcmp(m[i].path, "/sys/fs/cgroup/memory") == 0;
                unified |= strcmp(m[i].path, "/sys/fs/cgroup/unified") == 0;
                assert_true(strncmp(m[i].path, "/sys/fs/cgroup/", 15) == 0); /* the tmpfs above is not one */
        }
        assert_true(memory && unified);
        free(v1);

        /* v2 as Debian's systemd mounts it, optional fields, an escaped mount point */
        const char *v2 = "25 30 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
                         "rw,nsdelegate,memory_recursiveprot\n"
                         "26 25 0:24 / /mnt/my\\040cg ro,noatime master:1 shared:2 - cgroup cgroup rw,memory\n"
                         "27 25 0:25 / /proc rw - proc proc rw\n";
        assert_int_equal(cg_mounts_parse(v2, m, 8, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(m[0].path, "/sys/fs/cgroup");
        assert_int_equal(m[0].flags, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
        assert_false(m[0].read_only);
        assert_string_equal(m[1].path, "/mnt/my cg");
        assert_int_equal(m[1].flags, MS_NOATIME);
        assert_true(m[1].read_only);
        assert_int_equal(cg_mounts_parse(v2, m, 1, &n), -E2BIG);
        assert_int_equal(n, 2);

        static const char *const bad[] = {
                "25 30 0:23 / /sys/fs/cgroup rw\n",                    /* no " - " separator */
                "25 30 0:23\n",                                        /* too short */
                "25 30 0:23 / relative rw - cgroup2 cgroup2 rw\n",     /* mount point not absolute */
                "25 30 0:23 / /x rw -\n",                              /* no fstype */
                "garbage\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (cg_mounts_parse(bad[i], m, 8, &n) != -EINVAL)
                        fail_msg("mountinfo case %zu accepted", i);
        assert_int_equal(cg_mounts_parse("", m, 8, &n), 0);
        assert_int_equal(n, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_filter_good),
                cmocka_unit_test(test_filter_hostile),
                cmocka_unit_test(test_action_archs_caps_user),
                cmocka_unit_test(test_policy_section),
                cmocka_unit_test(test_mounts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
