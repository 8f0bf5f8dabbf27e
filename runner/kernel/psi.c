/* psi: pressure stall information — parsing (pure), reading, and trigger fds with the kernel's
 * window rules (500ms..10s; multiples of 2s without CAP_SYS_RESOURCE). */
#include "kernel/psi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* "12.34" → 123400 ppm; two decimals as the kernel prints them, at most 100.00. */
static int parse_pct2(const char *s, const char **end, uint32_t *ret)
{
        uint32_t ip = 0, fp = 0;
        const char *p = s;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++)
                if (n > 3 || (ip = ip * 10 + (uint32_t)(*p - '0')) > 100)
                        return -EINVAL;
        if (n == 0 || *p != '.')
                return -EINVAL;
        p++;
        for (n = 0; *p >= '0' && *p <= '9'; p++, n++)
                if (n < 2)
                        fp = fp * 10 + (uint32_t)(*p - '0');
        if (n == 0)
                return -EINVAL;
        if (n == 1)
                fp *= 10;
        uint32_t v = ip * 10000 + fp * 100;
        if (v > 1000000)
                return -EINVAL;
        *ret = v;
        *end = p;
        return 0;
}

/* " avg10=X avg60=Y avg300=Z total=N", in any order. A field the kernel adds later (" key=value")
 * is passed over, so a newer kernel does not turn PSI off; the four known ones are required and
 * parsed strictly. */
static int parse_line(const char *p, struct psi_line *ret)
{
        static const char *const keys[] = { "avg10=", "avg60=", "avg300=", "total=" };
        struct psi_line l = {};
        uint32_t *dst[] = { &l.avg10, &l.avg60, &l.avg300 };
        unsigned seen = 0;
        while (*p == ' ') {
                p++;
                size_t i;
                for (i = 0; i < 4; i++)
                        if (strncmp(p, keys[i], strlen(keys[i])) == 0)
                                break;
                if (i < 4) {
                        if (seen & (1u << i))
                                return -EINVAL;
                        seen |= 1u << i;
                        p += strlen(keys[i]);
                        if (i < 3) {
                                if (parse_pct2(p, &p, dst[i]) < 0)
                                        return -EINVAL;
                        } else {
                                char num[24];
                                size_t n = strspn(p, "0123456789");
                                if (n == 0 || n >= sizeof num)
                                        return -EINVAL;
                                memcpy(num, p, n);
                                num[n] = '\0';
                                if (parse_u64(num, &l.total) < 0)
                                        return -EINVAL;
                                p += n;
                        }
                } else {
                        /* an unknown field: a name, '=', a value without spaces */
                        size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
                        if (k == 0 || p[k] != '=')
                                return -EINVAL;
                        p += k + 1;
                        p += strcspn(p, " \n");
                }
                if (*p != ' ' && *p != '\n' && *p != '\0')
                        return -EINVAL;
        }
        if ((*p != '\n' && *p != '\0') || seen != 0xf)
                return -EINVAL;
        *ret = l;
        return 0;
}

/* "some ..." and "full ..." lines; lines of another kind (a later kernel's) are passed over. */
int psi_parse(const char *buf, struct psi *ret)
{
        struct psi v = {};
        bool have_some = false;
        for (const char *line = buf; line && *line;) {
                if (strncmp(line, "some ", 5) == 0) {
                        if (have_some || parse_line(line + 4, &v.some) < 0)
                                return -EINVAL;
                        have_some = true;
                } else if (strncmp(line, "full ", 5) == 0) {
                        if (v.has_full || parse_line(line + 4, &v.full) < 0)
                                return -EINVAL;
                        v.has_full = true;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        if (!have_some)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int try_source(int dir, const char *file, bool system, struct psi_source *ret)
{
        struct psi probe;
        if (dir < 0)
                return -ENOENT;
        int fd = openat(dir, file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = psi_read_fd(fd, &probe);
        int d = r < 0 ? -1 : fcntl(dir, F_DUPFD_CLOEXEC, 3);
        if (r < 0 || d < 0) {
                close(fd);
                return r < 0 ? r : -errno;
        }
        *ret = (struct psi_source){ .fd = fd, .dir = d, .file = file, .system = system };
        return 0;
}

int psi_source_open(int cg_dir, const char *proc_root, struct psi_source *ret)
{
        if (try_source(cg_dir, "memory.pressure", false, ret) == 0)
                return 0;
        char path[256];
        snprintf(path, sizeof path, "%s/pressure", proc_root ? proc_root : "/proc");
        _cleanup_close_ int proc = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc < 0)
                return -errno;
        return try_source(proc, "memory", true, ret);
}

bool psi_cgroup_has_pressure(int cg_dir)
{
        return cg_dir >= 0 && faccessat(cg_dir, "memory.pressure", F_OK, 0) == 0;
}

void psi_source_close(struct psi_source *s)
{
        close_fd(&s->fd);
        close_fd(&s->dir);
}

int psi_read_fd(int fd, struct psi *ret)
{
        char buf[256];
        ssize_t n = read_fd(fd, buf, sizeof buf);
        if (n < 0)
                return (int)n;
        return psi_parse(buf, ret);
}

usec_t psi_window_fix(usec_t w, bool privileged)
{
        const usec_t lo = 500 * USEC_PER_MSEC, hi = 10 * USEC_PER_SEC, step = 2 * USEC_PER_SEC;
        if (w < lo)
                w = lo;
        if (w > hi)
                w = hi;
        if (!privileged && w % step)
                w = (w / step + 1) * step;
        return w > hi ? hi : w;
}

static int arm(int fd, const char *kind, uint32_t threshold_ppm, usec_t window)
{
        char buf[64];
        uint64_t stall = (uint64_t)((unsigned __int128)window * threshold_ppm / 1000000u);
        if (stall == 0)
                stall = 1;
        int n = snprintf(buf, sizeof buf, "%s %llu %llu", kind, (unsigned long long)stall,
                         (unsigned long long)window);
        /* The kernel wants the trigger with its terminating NUL. */
        return write_whole(fd, buf, (size_t)n + 1);
}

int psi_trigger_open(int dirfd, const char *file, const char *kind, uint32_t threshold_ppm, usec_t window_in,
                     usec_t *ret_window)
{
        usec_t window = psi_window_fix(window_in, true);
        int fd = openat(dirfd, file, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = arm(fd, kind, threshold_ppm, window);
        if (r == -EINVAL && psi_window_fix(window, false) != window) {
                /* Unprivileged (no CAP_SYS_RESOURCE): the window must be a multiple of 2s. A trigger
                 * fd takes one trigger, so start over with a fresh open. */
                close(fd);
                window = psi_window_fix(window, false);
                fd = openat(dirfd, file, O_RDWR | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                r = arm(fd, kind, threshold_ppm, window);
        }
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_window = window;
        return fd;
}
