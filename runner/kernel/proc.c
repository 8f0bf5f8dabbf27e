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

int proc_parse_ids(const char *status, pid_t pid, struct proc_ids *ret)
{
        const char *u = strstr(status, "\nUid:"), *g = strstr(status, "\nGid:");
        unsigned long ru, eu, rg, eg;
        if (!u || !g || sscanf(u + 5, "%lu %lu", &ru, &eu) != 2 || sscanf(g + 5, "%lu %lu", &rg, &eg) != 2)
                return -EINVAL;
        ret->uid = (uid_t)eu;
        ret->gid = (gid_t)eg;
        ret->name[0] = '\0';
        if (strncmp(status, "Name:\t", 6) == 0) {
                size_t l = strcspn(status + 6, "\n");
                if (l >= sizeof ret->name)
                        l = sizeof ret->name - 1;
                memcpy(ret->name, status + 6, l);
                ret->name[l] = '\0';
        }
        ret->nspid = pid;
        const char *ns = strstr(status, "\nNSpid:");
        if (ns) {
                /* the last field: the pid as the process's own pid namespace knows it */
                const char *p = ns + 7, *eol = strchr(p, '\n');
                long last = -1;
                while (*p && (!eol || p < eol)) {
                        char *end;
                        long v = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        last = v;
                        p = end;
                }
                if (last > 0)
                        ret->nspid = (pid_t)last;
        }
        ret->rss = 0;
        const char *r = strstr(status, "\nVmRSS:");
        unsigned long long kb;
        if (r && sscanf(r + 7, "%llu", &kb) == 1)
                ret->rss = (uint64_t)kb * 1024;
        return 0;
}

int proc_ids(int proc_fd, pid_t pid, struct proc_ids *ret)
{
        char path[32], buf[8192];
        snprintf(path, sizeof path, "%d/status", (int)pid);
        ssize_t n = read_at(proc_fd, path, buf, sizeof buf);
        if (n < 0)
                return (int)n;
        int r = proc_parse_ids(buf, pid, ret);
        if (r < 0)
                return r;
        /* stat: "PID (COMM) S ..."; COMM may hold spaces and parentheses, so count from the last ')' */
        snprintf(path, sizeof path, "%d/stat", (int)pid);
        n = read_at(proc_fd, path, buf, sizeof buf);
        if (n < 0)
                return (int)n;
        const char *p = strrchr(buf, ')');
        unsigned long long start = 0;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &start) != 1)
                return -EINVAL;
        ret->start = start;
        return 0;
}

int proc_maps_has(int proc_fd, pid_t pid, const char *suffix)
{
        char path[32];
        static char buf[65536];
        size_t keep = 0, slen = strlen(suffix);
        snprintf(path, sizeof path, "%d/maps", (int)pid);
        int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int found = 0;
        for (;;) {
                ssize_t n = read(fd, buf + keep, sizeof buf - keep - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        found = n < 0 ? -errno : 0;
                        break;
                }
                size_t len = keep + (size_t)n;
                buf[len] = '\0';
                /* whole lines only; the tail of a cut line waits for the next read */
                char *last_nl = memrchr(buf, '\n', len);
                size_t whole = last_nl ? (size_t)(last_nl - buf) + 1 : 0;
                for (char *line = buf, *eol; line < buf + whole; line = eol + 1) {
                        eol = memchr(line, '\n', (size_t)(buf + whole - line));
                        size_t ll = (size_t)(eol - line);
                        if (ll >= slen && memcmp(eol - slen, suffix, slen) == 0) {
                                found = 1;
                                break;
                        }
                }
                if (found)
                        break;
                keep = len - whole;
                if (keep >= sizeof buf / 2)
                        keep = 0; /* a line this long is no path we look for */
                memmove(buf, buf + whole, keep);
        }
        close(fd);
        return found;
}

/* Is word one of the blank-separated words of text? (the JVM splits JAVA_TOOL_OPTIONS on blanks) */
static bool has_word(const char *text, const char *word)
{
        size_t wl = strlen(word);
        for (const char *p = text; (p = strstr(p, word)); p++)
                if ((p == text || p[-1] == ' ' || p[-1] == '\t') && (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\t'))
                        return true;
        return false;
}

int proc_has_flag(int proc_fd, pid_t pid, const char *flag, const char *const *envs)
{
        char path[32];
        static char buf[1 << 17];
        snprintf(path, sizeof path, "%d/cmdline", (int)pid);
        ssize_t n = read_at(proc_fd, path, buf, sizeof buf);
        if (n < 0)
                return (int)n;
        for (char *a = buf; a < buf + n; a += strlen(a) + 1)
                if (strcmp(a, flag) == 0)
                        return 1;
        snprintf(path, sizeof path, "%d/environ", (int)pid);
        n = read_at(proc_fd, path, buf, sizeof buf);
        if (n < 0)
                return n == -EACCES ? 0 : (int)n;
        for (char *e = buf; e < buf + n; e += strlen(e) + 1)
                for (const char *const *v = envs; v && *v; v++) {
                        size_t l = strlen(*v);
                        if (strncmp(e, *v, l) == 0 && e[l] == '=' && has_word(e + l + 1, flag))
                                return 1;
                }
        return 0;
}
