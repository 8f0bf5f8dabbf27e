/* util: cleanup helpers, bounded control-file I/O relative to a dirfd, strict number parsing, and
 * the one time unit with its conversions. */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

int write_at(int dfd, const char *file, const char *value)
{
        _cleanup_close_ int fd = openat(dfd, file, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return write_whole(fd, value, strlen(value));
}

int write_whole(int fd, const void *buf, size_t len)
{
        ssize_t n;
        do
                n = write(fd, buf, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return (size_t)n == len ? 0 : -EIO;
}

/* Write all of buf (a FIFO or a terminal may take it in more than one write), then close fd: an error
 * from either, the first one, or 0. */
static int write_all_close(int fd, const char *buf, size_t len)
{
        int r = 0;
        while (len > 0) {
                ssize_t n = write(fd, buf, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        break;
                }
                buf += n;
                len -= (size_t)n;
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}

int file_replace(const char *path, const void *buf, size_t len)
{
        struct stat st;
        char tmp[PATH_MAX];
        int fd, r;

        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
                if (S_ISDIR(st.st_mode))
                        return -EISDIR;
                fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
                return fd < 0 ? -errno : write_all_close(fd, buf, len);
        }
        if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
                return -ENAMETOOLONG;
        /* A name others can guess: whatever is there (a planted symlink) goes, and a fresh file is
         * made, never followed. */
        (void)unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        r = write_all_close(fd, buf, len);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

ssize_t read_fd(int fd, char *buf, size_t size)
{
        size_t len = 0;
        if (size == 0)
                return -EINVAL;
        while (len < size - 1) {
                ssize_t n = pread(fd, buf + len, size - 1 - len, (off_t)len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return (ssize_t)len;
}

ssize_t read_at(int dfd, const char *file, char *buf, size_t size)
{
        _cleanup_close_ int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_fd(fd, buf, size);
}

int parse_u64(const char *s, uint64_t *ret)
{
        uint64_t v = 0;
        const char *p = s;
        if (!*p)
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (p == s)
                return -EINVAL;
        if (*p == '\n')
                p++;
        if (*p)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_cg_value(const char *s, uint64_t *ret)
{
        if (strcmp(s, "max") == 0 || strcmp(s, "max\n") == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        return parse_u64(s, ret);
}

int read_u64_at(int dfd, const char *file, uint64_t *ret)
{
        char buf[64];
        ssize_t n = read_at(dfd, file, buf, sizeof buf);
        if (n < 0)
                return (int)n;
        return parse_cg_value(buf, ret);
}

int keyed_u64(const char *buf, const char *key, uint64_t *ret)
{
        size_t klen = strlen(key);
        for (const char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                if (strncmp(line, key, klen) != 0 || line[klen] != ' ')
                        continue;
                char num[32];
                const char *v = line + klen + 1;
                size_t n = strcspn(v, "\n");
                if (n == 0 || n >= sizeof num)
                        return -EINVAL;
                memcpy(num, v, n);
                num[n] = '\0';
                return parse_u64(num, ret);
        }
        return -ENOENT;
}

const char *u64_or_max(uint64_t v, char *buf, size_t size)
{
        if (v == UINT64_MAX)
                snprintf(buf, size, "max");
        else
                snprintf(buf, size, "%llu", (unsigned long long)v);
        return buf;
}

int pid_open(pid_t pid)
{
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
}

int pid_signal(int fd, pid_t pid, int sig)
{
        if (fd >= 0)
                return syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0 ? -errno : 0;
        return kill(pid, sig) < 0 ? -errno : 0;
}

const char *signal_name(int sig, char *buf, size_t size)
{
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev)
                snprintf(buf, size, "SIG%s", abbrev);
        else
                snprintf(buf, size, "SIG%d", sig);
        return buf;
}

/* --- time: the only conversions between usec_t and other units --- */

#define NSEC_PER_USEC 1000

usec_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / NSEC_PER_USEC;
}

double usec_to_sec(usec_t u)
{
        return (double)u / (double)USEC_PER_SEC;
}

double usec_to_msec(usec_t u)
{
        return (double)u / (double)USEC_PER_MSEC;
}

struct timespec usec_to_timespec(usec_t u)
{
        return (struct timespec){ .tv_sec = (time_t)(u / USEC_PER_SEC),
                                  .tv_nsec = (long)(u % USEC_PER_SEC) * NSEC_PER_USEC };
}

int usec_to_poll_ms(usec_t u)
{
        if (u == USEC_INFINITY)
                return -1;
        usec_t ms = u / USEC_PER_MSEC + (u % USEC_PER_MSEC != 0);
        return ms > INT_MAX ? INT_MAX : (int)ms;
}

double per_sec(double amount, usec_t dt)
{
        return dt ? amount * (double)USEC_PER_SEC / (double)dt : 0;
}

double at_rate(double rate, usec_t dt)
{
        return rate * (double)dt / (double)USEC_PER_SEC;
}

usec_t usec_at_rate(double amount, double rate)
{
        if (!(rate > 0))
                return USEC_INFINITY;
        double u = amount / rate * (double)USEC_PER_SEC;
        if (!(u < (double)USEC_INFINITY))
                return USEC_INFINITY;
        return u > 0 ? (usec_t)u : 0;
}

void base64_encode(const void *data, size_t len, char *out)
{
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *in = data;
        size_t i = 0;
        for (; i + 2 < len; i += 3) {
                *out++ = tbl[in[i] >> 2];
                *out++ = tbl[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
                *out++ = tbl[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
                *out++ = tbl[in[i + 2] & 63];
        }
        if (i < len) {
                *out++ = tbl[in[i] >> 2];
                if (i + 1 < len) {
                        *out++ = tbl[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
                        *out++ = tbl[(in[i + 1] & 15) << 2];
                } else {
                        *out++ = tbl[(in[i] & 3) << 4];
                        *out++ = '=';
                }
                *out++ = '=';
        }
        *out = '\0';
}

/* Length of the valid UTF-8 sequence at s, or 0 (overlong, surrogate, past U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s)
{
        if (s[0] < 0x80)
                return 1;
        size_t n;
        uint32_t cp;
        if ((s[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = s[0] & 0x1fu;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = s[0] & 0x0fu;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = s[0] & 0x07u;
        } else {
                return 0;
        }
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3fu);
        }
        static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

size_t json_piece(const unsigned char *s, char *buf, const char **ret, size_t *ret_len)
{
        static const char *const esc[128] = { ['"'] = "\\\"", ['\\'] = "\\\\", ['\n'] = "\\n", ['\r'] = "\\r",
                                              ['\t'] = "\\t", ['\b'] = "\\b", ['\f'] = "\\f" };
        size_t n = utf8_len(s);
        if (n == 0) {
                *ret = "\\ufffd";
                *ret_len = 6;
                return 1;
        }
        *ret = (const char *)s;
        *ret_len = n;
        if (n > 1)
                return n;
        if (*s < 128 && esc[*s]) {
                *ret = esc[*s];
                *ret_len = 2;
        } else if (*s < 0x20 || *s == 0x7f) {
                snprintf(buf, 8, "\\u%04x", *s);
                *ret = buf;
                *ret_len = 6;
        }
        return 1;
}
