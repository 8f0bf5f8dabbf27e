/* policy: the INI policy (memrun.ini(5)) as a typed struct; parsing with file:line errors, the
 * built-in default policy, and the effective plan printed by --check-policy. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "sandbox.h"

enum level { LEVEL_OK, LEVEL_MODERATE, LEVEL_HIGH, LEVEL_CRITICAL, _LEVEL_MAX };

enum action_type {
        ACTION_TRIM,     /* libmemlimit: run cache trimmers */
        ACTION_COLLECT,  /* libmemlimit: run collectors, malloc_trim */
        ACTION_SHED,     /* libmemlimit: raise the shedding flag */
        ACTION_RECLAIM,  /* kernel proactive reclaim via memory.reclaim */
        ACTION_SIGNAL,   /* signal:SIG to the main child */
        ACTION_EXEC,     /* exec:CMD hook through /bin/sh -c */
        _ACTION_TYPE_MAX
};

#define POLICY_MAX_ACTIONS 8
#define POLICY_CMD_MAX 1024

struct policy_action {
        enum action_type type;
        int signal;                     /* ACTION_SIGNAL */
        char cmd[POLICY_CMD_MAX];       /* ACTION_EXEC */
};

/* All ratios are parts per million (PCT_ONE = 100%); 0 = condition not set. */
struct policy_level {
        bool defined;
        uint32_t usage_ppm;             /* usage >= this share of the hard limit */
        uint32_t psi_some_ppm;          /* memory "some" avg10 >= this */
        uint32_t psi_full_ppm;          /* memory "full" avg10 >= this */
        uint64_t predict_usec;          /* the hard limit is predicted within this long */
        uint32_t repeat_ppm;            /* re-run actions each time usage climbs this share of the limit */
        unsigned n_actions;
        struct policy_action actions[POLICY_MAX_ACTIONS];
};

enum stall_action { STALL_RAISE, STALL_KILL, _STALL_ACTION_MAX };

struct policy {
        bool builtin;                   /* policy_default(), not a file */
        /* [memory]: set_* says the file gave the key (the command line may override). */
        uint64_t limit, soft, swap;     /* bytes; UINT64_MAX = max */
        uint32_t soft_ppm;              /* soft given as PCT of limit (0 = bytes in .soft) */
        bool limit_set, soft_set, swap_set;
        struct policy_level levels[_LEVEL_MAX];   /* index LEVEL_OK unused */
        /* [recovery] */
        uint32_t hysteresis_ppm;
        uint64_t dwell_usec;
        /* [monitor] */
        uint64_t psi_window_usec;       /* PSI trigger window (kernel: 500ms..10s) */
        uint64_t interval_min_usec, interval_max_usec;  /* usage sampling period bounds */
        uint64_t hook_timeout_usec;     /* exec: hooks are killed after this */
        /* [governor]: the soft limit as a control loop (docs/ARCHITECTURE.md, "The governor") */
        bool hold;                      /* keep asking while above target; no = the fire-once ladder */
        uint64_t giveup_usec;           /* above the soft limit with nothing freeable this long: give up */
        uint64_t target;                /* hold no higher than this, bytes; UINT64_MAX: auto (the soft limit's setpoint) */
        uint32_t target_ppm;            /* target as a share of limit (0 = bytes in .target) */
        uint64_t ask_timeout_usec;      /* an unanswered ask is written off after this */
        bool jvm;                       /* ask the sandbox's JVMs over HotSpot's attach socket (supervise/jvm.c) */
        /* [stall] */
        bool stall_enabled;
        uint32_t stall_psi_full_ppm;
        uint64_t stall_duration_usec;
        enum stall_action stall_action;
        uint32_t stall_step_ppm;        /* raise memory.high by this share of (max - high) */
        /* [sandbox] (memrun.ini(5), SANDBOX); --sandbox and --user override it */
        struct sandbox_spec sandbox;
};

/* The built-in policy (memrun.ini(5), BUILT-IN POLICY). */
void policy_default(struct policy *ret);
/* Parse INI text. name is used in messages ("FILE:LINE: message"). On error returns -EINVAL and
 * writes the message to err (always NUL-terminated). Starts from an empty policy (no levels),
 * except [recovery]/[monitor]/[stall] defaults, so a file states its levels completely. */
int policy_parse_string(const char *text, const char *name, struct policy *ret, char *err, size_t err_size);
int policy_parse_file(const char *path, struct policy *ret, char *err, size_t err_size);
/* Cross-field checks (ordering of levels, soft <= limit ...), after command-line overrides. */
int policy_validate(const struct policy *p, char *err, size_t err_size);
/* The effective plan, human-readable, for --check-policy. */
void policy_print(FILE *f, const struct policy *p);

const char *level_name(enum level l);
const char *action_type_name(enum action_type t);
