/* kmsg: the kernel's OOM report from /dev/kmsg, matched to the sandbox, to name the victim. */
#include "kernel/kmsg.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int kmsg_open(const char *dev_root)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/kmsg", dev_root ? dev_root : "/dev") >= (int)sizeof path)
                return -ENAMETOOLONG;
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (lseek(fd, 0, SEEK_END) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static int field(const char *text, const char *key, const char *end, char *out, size_t size)
{
        const char *p = strstr(text, key);
        if (!p || p >= end)
                return -ENOENT;
        p += strlen(key);
        const char *q = end;
        size_t n = (size_t)(q - p);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
}

/* The decimal pid at p, its digits ending at p + *ret_len: 1..INT32_MAX. */
static int parse_pid(const char *p, size_t *ret_len, pid_t *ret)
{
        char num[16];
        size_t nd = strspn(p, "0123456789");
        uint64_t n;
        if (nd == 0 || nd >= sizeof num)
                return -EINVAL;
        memcpy(num, p, nd);
        num[nd] = '\0';
        if (parse_u64(num, &n) < 0 || n == 0 || n > INT32_MAX)
                return -EINVAL;
        *ret_len = nd;
        *ret = (pid_t)n;
        return 0;
}

int kmsg_parse_oom(const char *text, struct oom_victim *ret)
{
        struct oom_victim v = {};
        const char *semi = strchr(text, ';');
        const char *msg = strstr(text, "oom-kill:");

        if (!msg || (semi && semi < msg && msg != semi + 1))
                return -EINVAL;
        const char *end = msg + strcspn(msg, "\n");
        /* comm may hold commas: take task= up to the last ",pid=" */
        const char *task = strstr(msg, ",task=");
        const char *pid = NULL;
        for (const char *p = task; p && (p = strstr(p + 1, ",pid=")) && p < end;)
                pid = p;
        if (!task || !pid || task > pid)
                return -EINVAL;
        size_t clen = (size_t)(pid - (task + 6));
        if (clen == 0 || clen >= sizeof v.comm)
                return -EINVAL;
        memcpy(v.comm, task + 6, clen);
        size_t nd;
        if (parse_pid(pid + 5, &nd, &v.pid) < 0 || (pid[5 + nd] != ',' && pid + 5 + nd != end))
                return -EINVAL;
        /* cgroup names may hold commas: each path runs up to the key that follows it */
        if (field(msg, ",task_memcg=", task, v.task_memcg, sizeof v.task_memcg) < 0)
                return -EINVAL;
        (void)field(msg, ",oom_memcg=", strstr(msg, ",task_memcg="), v.memcg, sizeof v.memcg);
        *ret = v;
        return 0;
}

static bool beneath(const char *path, const char *cgroup)
{
        size_t n = strlen(cgroup);
        return strncmp(path, cgroup, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int kmsg_parse_killed(const char *text, struct oom_victim *ret)
{
        const char *semi = strchr(text, ';');
        const char *msg = semi ? semi + 1 : text;
        const char *k = strstr(msg, "Killed process ");
        if (!k)
                return -ENOENT;
        k += strlen("Killed process ");
        struct oom_victim v = {};
        size_t nd;
        if (parse_pid(k, &nd, &v.pid) < 0 || k[nd] != ' ' || k[nd + 1] != '(')
                return -EINVAL;
        /* The comm may hold ") ": it ends where the kernel's " total-vm:" begins. */
        const char *c = k + nd + 2, *e = strstr(c, ") total-vm:");
        if (!e)
                e = strrchr(c, ')');
        if (!e || e == c || (size_t)(e - c) >= sizeof v.comm)
                return -EINVAL;
        memcpy(v.comm, c, (size_t)(e - c));
        *ret = v;
        return 0;
}

/* Read what is new: the last summary record of a victim in cgroup, else the last "Killed process"
 * record of pid (0: none wanted). */
static int scan(int fd, const char *cgroup, pid_t pid, struct oom_victim *ret)
{
        char rec[8192];
        int found = 0;
        struct oom_victim by_pid;
        bool have_pid = false;

        for (;;) {
                ssize_t n = read(fd, rec, sizeof rec - 1);
                if (n < 0) {
                        if (errno == EPIPE) /* overwritten records: keep reading */
                                continue;
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (n == 0)
                        break;
                rec[n] = '\0';
                struct oom_victim v;
                if (kmsg_parse_oom(rec, &v) == 0) {
                        if (beneath(v.task_memcg, cgroup)) {
                                *ret = v;
                                found = 1;
                        }
                } else if (pid > 0 && kmsg_parse_killed(rec, &v) == 0 && v.pid == pid) {
                        by_pid = v;
                        have_pid = true;
                }
        }
        if (!found && have_pid) {
                *ret = by_pid;
                found = 1;
        }
        return found;
}

int kmsg_find_oom(int fd, const char *cgroup, struct oom_victim *ret)
{
        return scan(fd, cgroup, 0, ret);
}

int kmsg_wait_oom(int fd, const char *cgroup, pid_t pid, usec_t timeout, struct oom_victim *ret)
{
        usec_t end = usec_add_sat(now_usec(), timeout);
        for (;;) {
                if (scan(fd, cgroup, pid, ret) > 0)
                        return 1;
                usec_t left = usec_sub(end, now_usec());
                if (left == 0)
                        return 0;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, usec_to_poll_ms(left)) < 0 && errno != EINTR)
                        return 0;
        }
}
