/* supervisor: one object owning a run: the sandbox cgroup (through its backend), the event core
 * and its sources, the limiter server, the level engine, the governor and actions, the report log,
 * and one struct limits that changes only through supervisor_set_limits. Each module registers its
 * own sources with the loop (monitor.c: the sampler, memory events, PSI triggers, v1 events;
 * status.c: memrunctl's socket, --metrics and --metrics-listen; the limiter server; the sd_notify
 * relay; signals and the command in supervisor.c). main.c only makes the plan. Big and fixed-size:
 * static storage, so nothing of it is allocated while the sandbox is under pressure (libmicrohttpd,
 * serving --metrics-listen, allocates its connections' own). */
#pragma once
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/backend.h"
#include "config/policy.h"
#include "confine/confine.h"
#include "control/ctl.h"
#include "control/httpd.h"
#include "control/lsrv.h"
#include "control/psrv.h"
#include "supervise/jvm.h"
#include "options.h"
#include "supervise/actions.h"
#include "supervise/level.h"
#include "supervise/hints.h"
#include "supervise/limits.h"
#include "supervise/loop.h"
#include "supervise/report.h"
#include "systemd/sdnotify.h"

#define EXIT_MEMRUN 125
#define EXIT_OOM 137 /* 128 + SIGKILL: what a shell shows for an OOM-killed command */

/* Everything decided before the run starts, from argv and the policy: made once in main, then read. */
struct plan {
        struct options o;
        struct policy policy;
        char name[256];
        const char *cgroup_root, *proc_root, *dev_root;
};

#define MONITOR_MAX_TRIGGERS 6

/* The sampler's state (monitor.c). */
struct monitor {
        int tfd;                  /* the sampling timer */
        usec_t frozen_since;      /* the sandbox found frozen then (0: not frozen) */
        usec_t frozen_checked;    /* cgroup.events last read for "frozen" */
        usec_t limit_checked;     /* the hard limit last read back (someone else may change it) */
        uint64_t ceiling_refused; /* --in-place: a ceiling memrun could not follow, said once */
        usec_t gap_said;          /* the sample a gap after which was said (once per gap) */
        usec_t iv;                /* current sampling period */
        usec_t armed_usec;        /* the timer's period as armed (0: not yet) */
        int psi_fd, psi_dir;      /* memory.pressure, and where it is for triggers armed later */
        const char *psi_file;
        bool psi_ok, psi_system, triggers_pending, sources_ready;
        struct trigger {
                int fd;
                bool full;
                uint32_t ppm;
                usec_t window;
                usec_t fired_until;      /* counts as reached until then (0: never fired) */
        } trig[MONITOR_MAX_TRIGGERS];
        unsigned n_trig;
        struct v1_event {
                int fd;
                const char *file;
                char arg[32];
        } v1[_LEVEL_MAX + 1];
        unsigned n_v1;
        bool v1_pending;
        bool predicting;          /* a level has a predict condition (the policy's, fixed) */
        bool stalled_kill;
        uint64_t ev_high;
        struct level_sample last; /* for the timeline's closing row and status */
};

struct supervisor {
        const struct plan *plan;
        const struct policy *p;
        struct limits limits;             /* in force: supervisor_set_limits changes them */
        uint64_t limit_changes;
        pid_t limits_pid;                 /* a lowering being written by a child (0: none) */
        struct limits limits_old;         /* what comes back if the kernel refuses it */
        const char *limits_who;
        /* the sandbox's cgroup */
        const struct cg_backend *backend;
        struct cg_backend_state cg;
        /* the event core */
        struct loop loop;
        int sigfd;
        sigset_t orig;
        struct monitor mon;
        /* decisions */
        struct level_engine eng;
        struct stall_detector stall;
        struct actions act;
        bool act_ready;                   /* actions_init ran: actions_shutdown at the end */
        /* the command */
        pid_t child;                      /* 0: not spawned */
        int status;
        bool reaped, emptied;
        usec_t t0;                        /* the command spawned; report times are from here */
        /* what is said at the end */
        struct report_log log;
        struct report rep;
        bool sandbox_oom;
        int kfd;
        int tl_fd;                        /* --timeline; -1 none */
        usec_t metrics_t;                 /* --metrics last written (0: never) */
        bool metrics_failing;             /* the last --metrics write failed (said once) */
        unsigned long long tl_lost;       /* --timeline rows that could not be written */
        int tl_err;                       /* the first row's error (errno) */
        /* what the command talks to */
        struct lsrv lsrv;                 /* the limiter server: libmemlimit clients attach to it */
        struct psrv psrv;                 /* MEMORY_PRESSURE_WATCH as memrun's socket (psrv.h) */
        int psrv_src;                     /* its loop source: the clients' triggers are watched under it */
        struct jvm_driver jvm;            /* the sandbox's JVMs, over their attach socket (jvm.h) */
        struct {                          /* the governor's pulse to psrv's clients, until settled */
                bool out;
                usec_t sent;
                uint64_t usage, low, goal;   /* at the ask; the lowest since; asked */
                enum action_type action;     /* the cheapest asked: what it gave counts as */
        } pw_round;
        struct ctl_server ctl;
        struct httpd http;                /* --metrics-listen (status.c) */
        int http_tfd;                     /* when libmicrohttpd must run again; -1 none */
        struct sdnotify notify;
        struct confine_run confine;       /* --sandbox, --user: the hardening */
        bool confined;
        char endpoint[128], watch[PATH_MAX], write64[128], preload[PATH_MAX * 2];
        char pw_kernel[PATH_MAX];         /* the kernel's pressure file (what watch names without psrv) */
        const char *env[12];
        struct hints hints;               /* GOMEMLIMIT, NODE_OPTIONS... (empty with --no-hints) */
        int proc_fd;                      /* who is in the sandbox (control and notify peers) */
};

/* The whole run: setup, supervise, post-mortem, teardown, what is said. The exit status. */
int supervisor_run(const struct plan *plan);
/* The one way the limits change: the kernel's files through the backend, then everything derived
 * (level engine, governor and actions, the limiter server and every attached client, the report,
 * the timeline). who names the change in the report ("memrunctl"). 0, or -errno with why. A
 * lowering is written by a child (the kernel reclaims inside the write): 1, in force in memrun at
 * once, and the control socket's pending request answered when the child ends. */
int supervisor_set_limits(struct supervisor *s, const struct limits *lim, const char *who, char *why,
                          size_t why_size);
/* A lowering's child ended (status as waitpid gives it): memrunctl gets its answer. If the kernel
 * refused the lowering, the previous limits come back; for a hard limit lowered at cgroupfs (who
 * "cgroupfs") only the soft limit does: the hard limit found stays, it is not memrun's to undo. */
void supervisor_limits_applied(struct supervisor *s, int st);
/* The governor's pulse to the pressure socket's clients, settled once PSRV_ROUND_USEC passed: what
 * it gave back is the usage drop since (monitor.c calls it at each sample, before the governor). */
void supervisor_pressure_settle(struct supervisor *s, uint64_t usage, usec_t now);
/* Is pid one of the sandbox's processes? 1 yes, 0 no, -errno when it cannot be told. */
int supervisor_contains(const struct supervisor *s, pid_t pid);

/* monitor.c: the sampler and the kernel's memory sources, registered with s->loop. */
int monitor_start(struct supervisor *s);
/* One sample: usage, PSI, the level engine, the governor, the timeline. */
void monitor_sample(struct supervisor *s);
/* memrun was stopped and is running again (SIGCONT): the time since the last sample went
 * unwatched, said and recorded once; then a sample at once. */
void monitor_continued(struct supervisor *s);
/* Sample soon (a reply came while above target). */
void monitor_soon(struct supervisor *s);
void monitor_stop(struct supervisor *s);
/* status.c: memrunctl's socket, --metrics and --metrics-listen, registered with s->loop. 0, or
 * -errno when --metrics-listen cannot listen (said): the run stops before the command starts. */
int status_start(struct supervisor *s);
void status_fill(struct supervisor *s, struct ctl_status *st);
void status_write_metrics(struct supervisor *s, usec_t now);
/* timeline.c: --timeline's CSV. */
void timeline_open(struct supervisor *s);
void timeline_row(struct supervisor *s, usec_t now, const struct level_sample *sample);
void timeline_put(struct supervisor *s, const char *buf, size_t len);
void timeline_close(struct supervisor *s);
