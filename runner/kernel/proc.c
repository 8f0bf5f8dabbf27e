/* proc: what memrun reads of a process under /proc: its cgroup and the signals it catches. */
#include "kernel/proc.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int proc_open_root(const char *root)
{
        int fd = open(root ? root : "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int proc_parse_sigcgt(const char *status, uint64_t *ret)
{
        static const char key[] = "SigCgt:";
        for (const char *line = status; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                if (strncmp(line, key, sizeof key - 1) != 0)
                        continue;
                const char *v = line + sizeof key - 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                uint64_t m = 0;
                unsigned digits = 0;
                for (; *v && *v != '\n'; v++, digits++) {
                        int d;
                        if (*v >= '0' && *v <= '9')
                                d = *v - '0';
                        else if (*v >= 'a' && *v <= 'f')
                                d = *v - 'a' + 10;
                        else if (*v >= 'A' && *v <= 'F')
                                d = *v - 'A' + 10;
                        else
                                return -EINVAL;
                        if (digits >= 16)
                                return -EINVAL;
                        m = m << 4 | (uint64_t)d;
                }
                if (!digits)
                        return -EINVAL;
                *ret = m;
                return 0;
        }
        return -ENOENT;
}

int proc_cgroup_inside(int proc_fd, pid_t pid, enum cg_mode mode, const char *sandbox, char *buf, size_t size)
{
        char path[32];
        snprintf(path, sizeof path, "%d/cgroup", (int)pid);
        ssize_t n = read_at(proc_fd, path, buf, size);
        if (n < 0)
                return (int)n;
        return cg_cgroup_inside(buf, mode, sandbox);
}

ssize_t proc_self_read(int proc_fd, const char *file, char *buf, size_t size)
{
        char path[64];
        if (snprintf(path, sizeof path, "self/%s", file) >= (int)sizeof path)
                return -ENAMETOOLONG;
        ssize_t n = read_at(proc_fd, path, buf, size);
        if (n >= 0 && (size_t)n + 1 >= size)
                return -EFBIG;
        return n;
}

int proc_self_map_ids(int proc_fd, uid_t uid, gid_t gid)
{
        char map[64];
        int r = write_at(proc_fd, "self/setgroups", "deny");
        if (r < 0 && r != -ENOENT)
                return r;
        snprintf(map, sizeof map, "%u %u 1", (unsigned)uid, (unsigned)uid);
        r = write_at(proc_fd, "self/uid_map", map);
        if (r < 0)
                return r;
        snprintf(map, sizeof map, "%u %u 1", (unsigned)gid, (unsigned)gid);
        return write_at(proc_fd, "self/gid_map", map);
}

/* pid's parent, from proc_fd/PID/status; -errno when it cannot be read. */
static pid_t ppid_of(int proc_fd, pid_t pid)
{
        char path[32], buf[4096];
        snprintf(path, sizeof path, "%d/status", (int)pid);
        ssize_t r = read_at(proc_fd, path, buf, sizeof buf);
        if (r < 0)
                return (pid_t)r;
        const char *pp = strstr(buf, "\nPPid:");
        return pp ? (pid_t)strtol(pp + 6, NULL, 10) : -EINVAL;
}

bool proc_is_descendant(int proc_fd, pid_t pid, pid_t ancestor)
{
        for (int depth = 0; depth < 256 && pid > 1; depth++) {
                pid = ppid_of(proc_fd, pid);
                if (pid == ancestor)
                        return true;
        }
        return false;
}

/* Signal pid, listed as parent's child a moment ago, only if it still is: by then it may have been
 * reaped and its pid reused. The pidfd pins one process; its parent, read after, says it is the one
 * listed (had it died in between, the signal finds no one). 0, or -ESRCH when it is not. */
static int signal_child(int proc_fd, pid_t parent, pid_t pid, int sig)
{
        int fd = pid_open(pid);
        if (fd < 0 && fd != -ENOSYS)
                return fd;
        int r = ppid_of(proc_fd, pid) == parent ? pid_signal(fd, pid, sig) : -ESRCH;
        if (fd >= 0)
                close(fd);
        return r;
}

int proc_signal_descendants(int proc_fd, pid_t pid, int sig)
{
        enum { MAX = 4096 };
        static pid_t queue[MAX];
        size_t head = 0, tail = 0;
        int n = 0;
        queue[tail++] = pid;
        while (head < tail) {
                pid_t p = queue[head++];
                static char buf[1 << 16];
                char path[64];
                snprintf(path, sizeof path, "%d/task", (int)p);
                int tfd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (tfd < 0)
                        continue;
                DIR *d = fdopendir(tfd);
                if (!d) {
                        close(tfd);
                        continue;
                }
                for (struct dirent *de; (de = readdir(d));) {
                        if (de->d_name[0] == '.')
                                continue;
                        char rel[300];
                        snprintf(rel, sizeof rel, "%s/children", de->d_name);
                        ssize_t got = read_at(dirfd(d), rel, buf, sizeof buf);
                        if (got < 0)
                                continue;
                        /* a full buffer may end in the middle of a pid: keep only whole ones */
                        if ((size_t)got + 1 >= sizeof buf) {
                                char *last = strrchr(buf, ' ');
                                if (last)
                                        *last = '\0';
                        }
                        for (char *t = buf, *e; *t; t = e) {
                                long c = strtol(t, &e, 10);
                                if (e == t)
                                        break;
                                if (c > 0 && tail < MAX && signal_child(proc_fd, p, (pid_t)c, sig) == 0) {
                                        queue[tail++] = (pid_t)c;
                                        n++;
                                }
                        }
                }
                closedir(d);
        }
        return n;
}

int proc_catches(int proc_fd, pid_t pid, int sig)
{
        char path[32], buf[8192];
        if (sig < 1 || sig > 64)
                return -EINVAL;
        snprintf(path, sizeof path, "%d/status", (int)pid);
        ssize_t n = read_at(proc_fd, path, buf, sizeof buf);
        if (n < 0)
                return (int)n;
        uint64_t m;
        int r = proc_parse_sigcgt(buf, &m);
        if (r < 0)
                return r;
        return (m >> (sig - 1)) & 1;
}

bool signal_default_kills(int sig)
{
        switch (sig) {
        case SIGCHLD:
        case SIGCONT:
        case SIGURG:
        case SIGWINCH:
        case SIGSTOP:
        case SIGTSTP:
        case SIGTTIN:
        case SIGTTOU:
                return false;
        default:
                return true;
        }
}
