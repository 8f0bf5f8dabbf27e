/* ctl: a running memrun's control socket (memrunctl(1)) and its status, the supervisor's own view.
 * The socket is abstract, "@memrun-ctl-PID" (SOCK_SEQPACKET); one request per connection, one
 * reply. Only root and memrun's own uid are served (SO_PEERCRED); anything else, and any request
 * that is not one of the few below, is answered with an error and counted.
 *   status                        -> "key=value" lines (struct ctl_status)
 *   set limit=BYTES soft=BYTES    -> "ok" or "error: REASON" (either key may be left out); a
 *                                    lowering is answered once the kernel has applied it
 * The status also feeds --metrics (Prometheus text exposition) and memrunctl's --json. One table in
 * ctl.c lists its fields once for every form; formatting and parsing are pure. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_REQUEST_MAX 512
#define CTL_LIMIT_MIN (1u << 20) /* memrunctl set refuses limits below 1 MiB */
#define CTL_REPLY_MAX 4096
/* Room for any status as JSON: every byte of its strings escaped to six ("\u0001"), and the rest. */
#define CTL_JSON_MAX 32768

struct ctl_status {
        int pid;                   /* memrun's */
        char name[256], command[256], cgroup[PATH_MAX], mode[8];
        uint64_t limit, soft;      /* UINT64_MAX: max */
        uint64_t usage, peak;
        char level[16];
        unsigned clients;          /* limiters attached now */
        uint64_t asks, asked, freed; /* the governor's asks: processes asked, bytes asked and freed */
        uint64_t asks_trim, asks_collect, asks_reclaim, asks_shed; /* asks per action */
        uint64_t ev_high, ev_max, ev_oom, ev_oom_kill;
        double uptime_s;
        uint64_t limit_changes, ctl_refused, ctl_malformed;
};

/* Pure: the status as "key=value" lines, and back (unknown keys are skipped, so either side may add
 * some). Format returns the length or -ENOBUFS; parse 0 or -EINVAL (a line that is not key=value, or
 * a number that is not one). */
int ctl_status_format(const struct ctl_status *s, char *buf, size_t size);
int ctl_status_parse(const char *text, struct ctl_status *ret);
/* Pure: Prometheus text exposition (version 0.0.4) of one sandbox; length or -ENOBUFS. */
int ctl_status_prometheus(const struct ctl_status *s, char *buf, size_t size);
/* Pure: one JSON object on one line (memrunctl status --json, ls --json); length or -ENOBUFS.
 * A limit of max is null. */
int ctl_status_json(const struct ctl_status *s, char *buf, size_t size);
/* Pure: a "set ..." request: the limits it names (UINT64_MAX unchanged... see *ret_has_*). */
int ctl_parse_set(const char *req, uint64_t *limit, bool *has_limit, uint64_t *soft, bool *has_soft);

/* The server side, in memrun. */
struct ctl_server {
        int fd;                    /* listening; -1 none */
        char name[64];             /* "@memrun-ctl-PID" */
        uint64_t refused, malformed;
        int pending;               /* a set whose reply follows (ctl_reply_pending); -1 none */
};
/* status fills st; set applies: 0 done, 1 under way (the reply follows through ctl_reply_pending;
 * the connection waits, memrun's loop does not), or -errno with the reason in why. */
struct ctl_ops {
        void (*status)(void *ctx, struct ctl_status *st);
        int (*set)(void *ctx, bool has_limit, uint64_t limit, bool has_soft, uint64_t soft, char *why, size_t why_size);
        /* Is pid one of the sandbox's own processes? They are never served: the command must not
         * change its own budget. true when it cannot be told. */
        bool (*inside)(void *inside_ctx, pid_t pid);
        void *ctx, *inside_ctx;
};
int ctl_open(struct ctl_server *s);
/* Accept and answer what is waiting; never blocks. */
void ctl_dispatch(struct ctl_server *s, const struct ctl_ops *ops);
/* The reply to the set under way: "ok", or the error r with why. */
void ctl_reply_pending(struct ctl_server *s, int r, const char *why);
void ctl_close(struct ctl_server *s);
/* The client side, in memrunctl: one request to memrun PID, the reply in buf. 0 or -errno. */
int ctl_request(pid_t pid, const char *req, char *buf, size_t size);
/* Write --metrics atomically (tmp + rename). 0 or -errno. */
int ctl_write_metrics(const char *path, const struct ctl_status *s);
