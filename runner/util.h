/* util: cleanup helpers, bounded control-file I/O relative to a dirfd, strict number parsing, and
 * the one time unit with its conversions. */
#pragma once
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) { int e = errno; close(*fd); errno = e; } }
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Close *fd if open and set it to -1. */
void close_fd(int *fd);

/* Write the whole value with one write(2) to an existing file; -errno on failure. */
int write_at(int dfd, const char *file, const char *value);
/* Read at most size-1 bytes, NUL-terminate; returns the length or -errno. */
ssize_t read_at(int dfd, const char *file, char *buf, size_t size);
/* One write() of all of buf, retried on EINTR (cgroupfs and PSI take a value in one write): 0,
 * -EIO when cut short, or -errno. */
int write_whole(int fd, const void *buf, size_t len);
/* Same, from an already open fd, at offset 0 (pread). */
ssize_t read_fd(int fd, char *buf, size_t size);
/* An output file's whole new content (--report, --metrics): a regular file (or a name not there yet)
 * is replaced atomically through a fresh PATH.tmp.PID and rename(2), never followed if planted; a
 * path that names something else (a device such as /dev/stdout or /dev/full, a FIFO) is written in
 * place, never replaced by a file. Every step is checked, close included: 0 or -errno (-EIO: cut
 * short), and on failure nothing is left but what was there. */
int file_replace(const char *path, const void *buf, size_t len);

/* Strict decimal u64: digits only, optional single trailing newline. */
int parse_u64(const char *s, uint64_t *ret);
/* A cgroup value: decimal or "max" (UINT64_MAX). */
int parse_cg_value(const char *s, uint64_t *ret);
int read_u64_at(int dfd, const char *file, uint64_t *ret);
/* Find "key N" in a flat-keyed file (memory.events, memory.oom_control). */
int keyed_u64(const char *buf, const char *key, uint64_t *ret);

/* Base64 (RFC 4648, padded) of len bytes into out (size >= 4 * ceil(len / 3) + 1). */
void base64_encode(const void *data, size_t len, char *out);

/* One piece of a JSON string literal for the bytes at s (not at its NUL): what to write (*ret,
 * *ret_len; buf, at least 8 bytes, may hold it) and how many bytes of s it stands for. Valid UTF-8
 * goes as it is, invalid bytes become U+FFFD, quotes, backslashes and control bytes are escaped. The
 * one escaper: the report and the control protocol's JSON both use it. */
size_t json_piece(const unsigned char *s, char *buf, const char **ret, size_t *ret_len);

/* A cgroup value as the kernel writes it: decimal, or "max" for UINT64_MAX. Returns buf. */
const char *u64_or_max(uint64_t v, char *buf, size_t size);

/* A process by pidfd (pidfd_open(2)): it stays the same process whatever happens to its pid, so a pid
 * read from a list (cgroup.procs, /proc/PID/task/TID/children) is opened first, checked against the
 * list again, and only then signalled. pid_open returns the fd, -ENOSYS before Linux 5.3 (then
 * pid_signal falls back to kill(2) on the pid, as before) or -errno (-ESRCH: gone). pid_signal sends
 * sig (0: is it alive?) through fd when fd >= 0; 0 or -errno. */
int pid_open(pid_t pid);
int pid_signal(int fd, pid_t pid, int sig);

/* "SIGUSR1", or "SIG34" where the C library has no name (real-time signals). Returns buf. */
const char *signal_name(int sig, char *buf, size_t size);

/* Time: one unit inside memrun, microseconds on CLOCK_MONOTONIC (systemd's usec_t). Seconds,
 * milliseconds and nanoseconds appear only at the edges (messages, the report, the timeline, the
 * kernel's timespec and poll APIs), and only through the helpers below: the one place that knows the
 * factors. Rates stay per second (bytes/s): a rate is not a time. */
typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t)UINT64_MAX) /* never, or not set */
#define USEC_PER_SEC ((usec_t)1000000)
#define USEC_PER_MSEC ((usec_t)1000)

usec_t now_usec(void);
/* later - earlier, or 0 if later is not later: a clock difference never wraps. */
static inline usec_t usec_sub(usec_t later, usec_t earlier)
{
        return later > earlier ? later - earlier : 0;
}
/* a + b, or USEC_INFINITY past what a usec_t holds. */
static inline usec_t usec_add_sat(usec_t a, usec_t b)
{
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}
/* For messages, the JSON report and the timeline. */
double usec_to_sec(usec_t u);
double usec_to_msec(usec_t u);
/* For timerfd and nanosleep. */
struct timespec usec_to_timespec(usec_t u);
/* For poll and epoll_wait: milliseconds rounded up (a wait never ends early), -1 for USEC_INFINITY. */
int usec_to_poll_ms(usec_t u);
/* amount per second over dt (0 when dt is 0); what a rate per second adds up to over dt; how long an
 * amount takes at a rate per second (USEC_INFINITY when the rate is not positive or it takes longer
 * than a usec_t holds). */
double per_sec(double amount, usec_t dt);
double at_rate(double rate, usec_t dt);
usec_t usec_at_rate(double amount, double rate);
