/* kmsg: the kernel's OOM report from /dev/kmsg, matched to the sandbox, to name the victim. */
#pragma once
#include <limits.h>
#include <sys/types.h>

#include "util.h"

struct oom_victim {
        pid_t pid;
        char comm[64];
        char memcg[PATH_MAX];      /* the cgroup whose limit was hit (oom_memcg) */
        char task_memcg[PATH_MAX]; /* the victim's own cgroup */
};

/* Open dev_root/kmsg (MEMRUN_DEV_ROOT in tests; NULL: /dev) positioned after the records already
 * there; -errno when not readable. */
int kmsg_open(const char *dev_root);
/* Pure: parse one record's text ("oom-kill:constraint=...,oom_memcg=...,task_memcg=...,task=...,pid=N,uid=N").
 * The text may carry the "PRI,SEQ,TS,FLAGS;" prefix of a /dev/kmsg record. */
int kmsg_parse_oom(const char *text, struct oom_victim *ret);
/* Read new records; keep the last OOM kill whose victim lived in cgroup (or beneath it). 1 found, 0 not. */
int kmsg_find_oom(int fd, const char *cgroup, struct oom_victim *ret);
/* Pure: the "...: Killed process PID (COMM) total-vm:..." record. The kernel always logs it, while
 * the oom-kill: summary above it is rate-limited (10 per 5 s, machine-wide). Fills pid and comm. */
int kmsg_parse_killed(const char *text, struct oom_victim *ret);
/* As kmsg_find_oom, waiting up to timeout for the record (the kernel counts the kill in
 * memory.events before a /dev/kmsg reader is sure to see it); when the summary was rate-limited
 * away, a "Killed process" record of pid (the command) names it. 1 found, 0 not. */
int kmsg_wait_oom(int fd, const char *cgroup, pid_t pid, usec_t timeout, struct oom_victim *ret);
