/* report: what happened, as the JSON report (--report), the stderr summary and the OOM line. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/policy.h"
#include "cgroup/cg.h"
#include "kernel/kmsg.h"
#include "confine/confine.h"
#include "supervise/hints.h"
#include "util.h"

/* Bounded, preallocated: the supervisor must not allocate while the sandbox is at its limit. */
#define REPORT_MAX_LEVELS 512
#define REPORT_MAX_ACTIONS 1024

struct report_level {
        usec_t t;                  /* from the start of the run */
        enum level level;
        uint64_t usage;
        const char *reason;
};

struct report_action {
        usec_t t;                  /* from the start of the run */
        const char *action;        /* "trim", "reclaim", "signal", "exec", "stall-raise", ... */
        enum level level;
        uint64_t freed;
        usec_t took;               /* time it took; 0 until it ends */
        int status;                /* hooks/reclaim: exit status; -1 unknown */
        uint32_t seq;              /* limiter broadcast sequence (0 = none) */
        unsigned clients;          /* limiters that answered */
        char detail[96];
};

/* Per-action totals: the governor asks many times a second, so the log keeps the first asks in full
 * and these sums for all of them. */
struct report_agg {
        uint64_t asks;             /* clients asked (limiters) or memory.reclaim writes */
        uint64_t asked, freed;     /* bytes */
        usec_t took;               /* time spent answering, summed (saturating) */
};

#define REPORT_GOV_ENTRIES 32      /* governor asks logged in full; the rest are counted */

/* One JVM the driver found (supervise/jvm.h). */
struct report_jvm {
        pid_t pid;
        uint64_t asks, answered, freed, soft_max;
        bool trim;                 /* System.trim_native_heap known to it */
        char why[96];              /* why it cannot be driven ("": it can) */
};
#define REPORT_MAX_JVMS 16

struct report_log {
        struct report_level levels[REPORT_MAX_LEVELS];
        struct report_action actions[REPORT_MAX_ACTIONS];
        unsigned n_levels, n_actions, dropped_levels, dropped_actions;
        unsigned limiter_clients;  /* clients ever attached */
        uint64_t limiter_freed;
        uint64_t limiter_deferred; /* asks a client put off for its CPU budget (a SKIPPED_BUDGET RESULT) */
        uint64_t high_final;       /* memory.high at the end (stall escalation may raise it) */
        bool stall_killed;
        /* the governor */
        bool governor;             /* [governor] hold: asks were the governor's */
        struct report_agg agg[_ACTION_TYPE_MAX];
        unsigned gov_entries;      /* governor asks in actions[] */
        uint64_t gov_more;         /* governor asks not in actions[] */
        uint64_t rounds;           /* limiter rounds completed */
        uint64_t asks, asked;      /* limiter asks sent (processes) and bytes asked, each round once */
        unsigned giveups;
        usec_t gave_up_t;          /* first give-up, from the start; USEC_INFINITY: never */
        const char *step_max;      /* highest escalation step used */
        uint64_t signals_skipped;  /* signal actions skipped: the command does not handle them */
        /* the JVM driver */
        struct {
                bool enabled;
                unsigned n;
                struct report_jvm p[REPORT_MAX_JVMS];
        } jvm;
        /* MEMORY_PRESSURE_WATCH: "memrun" (the socket), "kernel" (the file); NULL: not said */
        struct {
                const char *mode, *path;
                uint64_t clients, triggers, pulses_governor, pulses_kernel, freed;
        } pw;
};

/* t: from the start of the run. */
void report_log_level(struct report_log *l, usec_t t, enum level level, uint64_t usage, const char *reason);
/* A new action entry (NULL when the log is full: the entry is counted as dropped). */
struct report_action *report_log_action(struct report_log *l, usec_t t, const char *action, enum level level);

struct report {
        char **argv;
        usec_t duration;
        enum cg_mode mode;
        const char *cgroup_path;
        uint64_t max, high, swap_max;
        struct cg_stats stats;     /* peak, final usage, events */
        int exit_code;             /* memrun's exit status */
        int signal;                /* the command's terminating signal, 0 if it exited */
        bool oom_killed;           /* the command was ended by the OOM killer */
        bool victim_known;
        struct oom_victim victim;
        const struct report_log *log;  /* levels and actions; NULL = none */
        const struct confine_run *confine; /* --sandbox / --user as applied (the JSON's "sandbox"); NULL = neither */
        const struct hints *hints;  /* what memrun exported for the runtimes (the JSON's "hints"); NULL = none */
};

/* JSON string literal for arbitrary bytes: escapes, and U+FFFD for invalid UTF-8. */
void report_json_string(FILE *f, const char *s);
/* A byte count, or null for UINT64_MAX (max). */
void report_json_u64(FILE *f, uint64_t v);
void report_json(FILE *f, const struct report *r);
/* Write to path ('-' = stdout) atomically (temp file + rename). 0 or -errno. */
int report_write(const char *path, const struct report *r);
/* "memrun: exited 0 after 1.20s; peak 12.0M of 256M (4.7%); 0 memory.high throttling events" */
void report_summary(FILE *f, const char *prefix, const struct report *r);
/* The one line that explains an OOM kill. */
void report_oom_line(FILE *f, const char *prefix, const struct report *r);
