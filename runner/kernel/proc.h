/* proc: what memrun reads of a process under /proc: its cgroup and the signals it catches. Reads go through a
 * dirfd of the proc root (MEMRUN_PROC_ROOT in tests); parsing is pure. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cg.h"

/* Open the proc root (MEMRUN_PROC_ROOT in tests; NULL: /proc) as a directory fd, or -errno. */
int proc_open_root(const char *root);
/* Pure: the SigCgt mask (bit N-1 = signal N) from /proc/PID/status text. 0, -ENOENT (no such line)
 * or -EINVAL. */
int proc_parse_sigcgt(const char *status, uint64_t *ret);
/* Is pid in sandbox or beneath it (cg_cgroup_inside on proc_fd/PID/cgroup, read into buf)? 1 yes,
 * 0 no, -errno when it cannot be told. */
int proc_cgroup_inside(int proc_fd, pid_t pid, enum cg_mode mode, const char *sandbox, char *buf, size_t size);
/* Read proc_fd/self/FILE (e.g. "mountinfo") whole into buf: its length, -EFBIG when it does not
 * fit, or -errno. */
ssize_t proc_self_read(int proc_fd, const char *file, char *buf, size_t size);
/* In a new user namespace: map uid and gid to themselves (setgroups denied first, as the kernel
 * wants of an unprivileged writer). */
int proc_self_map_ids(int proc_fd, uid_t uid, gid_t gid);
/* Send sig (0: only count) to every descendant of pid, found through /proc/PID/task/TID/children;
 * how many there were, or -errno. memrun is a child subreaper, so its descendants stay its. Each is
 * signalled through a pidfd and only while it is still its parent's child (no reused pid is hit). */
int proc_signal_descendants(int proc_fd, pid_t pid, int sig);
/* Is pid a descendant of ancestor (its PPid chain, from proc_fd/PID/status, reaches it)? */
bool proc_is_descendant(int proc_fd, pid_t pid, pid_t ancestor);
/* Does pid catch sig? 1 yes, 0 no, -errno when it cannot be told. */
int proc_catches(int proc_fd, pid_t pid, int sig);
/* Does sig's default disposition end the process (SIGUSR1 does; SIGCHLD, SIGWINCH, SIGURG, SIGCONT
 * and the stop signals do not)? */
bool signal_default_kills(int sig);

/* What the JVM driver needs of a process (supervise/jvm.c), from proc_fd/PID/status: its name
 * (Name: the command, which an exec changes), the effective uid and gid, the pid in its own pid namespace (NSpid's last field; pid without one), the resident
 * set (VmRSS, bytes; 0 for a kernel thread or a zombie) and the start time (field 22 of stat, in
 * clock ticks: with pid, who it is). */
struct proc_ids {
        char name[16];
        uid_t uid;
        gid_t gid;
        pid_t nspid;
        uint64_t rss;
        uint64_t start;
};
int proc_ids(int proc_fd, pid_t pid, struct proc_ids *ret);
/* Pure: parse /proc/PID/status text into ret (start untouched). 0 or -EINVAL. */
int proc_parse_ids(const char *status, pid_t pid, struct proc_ids *ret);
/* Does proc_fd/PID/maps name a file whose path ends in suffix ("/libjvm.so")? 1, 0, or -errno.
 * Read in pieces: a JVM's maps run to hundreds of KiB. */
int proc_maps_has(int proc_fd, pid_t pid, const char *suffix);
/* Is flag one of pid's arguments (proc_fd/PID/cmdline), or inside one of the environment
 * variables named in envs (proc_fd/PID/environ; "JAVA_TOOL_OPTIONS" ...)? 1, 0, or -errno. */
int proc_has_flag(int proc_fd, pid_t pid, const char *flag, const char *const *envs);
