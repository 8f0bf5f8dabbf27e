/* util: cleanup helpers, bounded control-file I/O relative to a dirfd, strict number parsing. */
#pragma once
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

/* "SIGUSR1", or "SIG34" where the C library has no name (real-time signals). Returns buf. */
const char *signal_name(int sig, char *buf, size_t size);

/* Monotonic seconds. */
double now_mono(void);
