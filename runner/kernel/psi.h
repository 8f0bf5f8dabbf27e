/* psi: pressure stall information — parsing (pure), reading, and trigger fds with the kernel's
 * window rules (500ms..10s; multiples of 2s without CAP_SYS_RESOURCE). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct psi_line {
        uint32_t avg10, avg60, avg300; /* parts per million (1% = 10000) */
        uint64_t total;                /* microseconds stalled */
};

struct psi {
        struct psi_line some, full;
        bool has_full;
};

/* Pure: parse the text of a memory.pressure or /proc/pressure/memory file. */
int psi_parse(const char *buf, struct psi *ret);
/* Read an open pressure file from offset 0 and parse it. */
int psi_read_fd(int fd, struct psi *ret);

/* Where memory pressure is read: the cgroup's memory.pressure (cg_dir, -1 for none), else the
 * system-wide pressure/memory under proc_root -- the first that opens and parses. */
struct psi_source {
        int fd;                        /* for reads */
        int dir;                       /* the directory, for triggers on file */
        const char *file;
        bool system;                   /* the system-wide file */
};
/* 0 with *ret filled (the caller closes fd and dir), or -errno when neither works (PSI off). */
int psi_source_open(int cg_dir, const char *proc_root, struct psi_source *ret);
void psi_source_close(struct psi_source *s);
/* Does the cgroup directory have a memory.pressure file (per-cgroup PSI)? */
bool psi_cgroup_has_pressure(int cg_dir);

/* The window the kernel will accept: clamped to 500ms..10s and, when unprivileged, rounded up to
 * a multiple of 2s. Pure. */
usec_t psi_window_fix(usec_t window, bool privileged);
/* Open dirfd/file and arm a trigger "KIND STALL WINDOW" for threshold_ppm of the window. On
 * EINVAL with a window that is not a 2s multiple, retries rounded up (reported in *ret_window).
 * Returns the fd to poll for EPOLLPRI, or -errno. */
int psi_trigger_open(int dirfd, const char *file, const char *kind, uint32_t threshold_ppm, usec_t window,
                     usec_t *ret_window);
