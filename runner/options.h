/* options: memrun's command line, parsed into a run plan without touching the system. */
#pragma once
#include "config/sandbox.h"
#include "control/httpd.h"
#include <stdbool.h>
#include <stdint.h>

/* MEMORY_PRESSURE_WATCH: memrun's socket (kernel pressure and the governor's asks), the kernel's
 * pressure file, or auto (the socket when the policy holds the soft limit, else the file). */
enum pressure_watch { PRESSURE_WATCH_AUTO, PRESSURE_WATCH_MEMRUN, PRESSURE_WATCH_KERNEL };

struct options {
        uint64_t limit;       /* memory.max; UINT64_MAX = max */
        uint64_t soft;        /* memory.high; UINT64_MAX = max */
        uint64_t swap;        /* memory.swap.max */
        bool limit_set, soft_set, swap_set; /* given on the command line (they override the policy) */
        uint32_t soft_ppm;    /* --soft PCT, when the limit may come from the policy */
        const char *policy;   /* --policy FILE */
        const char *check_policy; /* --check-policy FILE */
        const char *name;     /* sandbox name, NULL = memrun-<pid> */
        const char *cgroup;   /* --cgroup parent, NULL = placement rules */
        const char *report;   /* JSON report path, "-" = stdout */
        const char *timeline; /* CSV time series path, "-" = stdout */
        bool expect_oom;
        bool no_hints;
        bool preload;         /* --preload: LD_PRELOAD libmemlimit into the command */
        bool sandbox;         /* --sandbox: [sandbox] enabled */
        bool wait_all;        /* --wait-all: until the sandbox is empty */
        bool in_place;        /* --in-place: memrun's own cgroup is the sandbox */
        enum pressure_watch pressure_watch; /* --pressure-watch: what MEMORY_PRESSURE_WATCH names */
        const char *metrics;  /* --metrics FILE: Prometheus text, NULL = none */
        struct httpd_addr metrics_listen; /* --metrics-listen ADDR:PORT; .len 0 = none */
        char user[SANDBOX_NAME_MAX], group[SANDBOX_NAME_MAX]; /* --user USER[:GROUP]; "" = none */
        int verbosity;        /* -1 quiet, 0 normal, 1+ verbose */
        bool help, version;
        char **argv;          /* the command, NULL-terminated */
};

/* Parse argv. ram is physical memory in bytes (for "N%" limits). Returns 0, or -EINVAL
 * after logging an error that quotes the bad text. limit/soft are final unless a policy file
 * sets what the command line left unset: see options_apply_policy. */
int options_parse(int argc, char **argv, uint64_t ram, struct options *ret);
/* Is NAME usable as a cgroup directory name? */
bool options_name_valid(const char *name);
/* Is PATH an absolute cgroup path in normal form (no empty, "." or ".." components)? */
bool options_cgroup_path_valid(const char *path);
void options_usage(void);

struct policy;
/* Merge: the command line wins; then the policy's [memory]; then the defaults (limit max, soft 90%
 * of limit, swap 0). Writes the result into o->limit/soft/swap and the policy. -EINVAL logged. */
int options_apply_policy(struct options *o, struct policy *p);
