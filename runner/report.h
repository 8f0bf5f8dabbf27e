/* report: what happened, as the JSON report (--report), the stderr summary and the OOM line. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cg.h"
#include "kmsg.h"

struct report {
        char **argv;
        double duration_s;
        enum cg_mode mode;
        const char *cgroup_path;
        uint64_t max, high, swap_max;
        struct cg_stats stats;     /* peak, final usage, events */
        int exit_code;             /* memrun's exit status */
        int signal;                /* the command's terminating signal, 0 if it exited */
        bool oom_killed;           /* the command was ended by the OOM killer */
        bool victim_known;
        struct oom_victim victim;
};

/* JSON string literal for arbitrary bytes: escapes, and U+FFFD for invalid UTF-8. */
void report_json_string(FILE *f, const char *s);
void report_json(FILE *f, const struct report *r);
/* Write to path ('-' = stdout) atomically (temp file + rename). 0 or -errno. */
int report_write(const char *path, const struct report *r);
/* "memrun: exited 0 after 1.20s; peak 12.0M of 256M (4.7%); 0 memory.high throttling events" */
void report_summary(FILE *f, const char *prefix, const struct report *r);
/* The one line that explains an OOM kill. */
void report_oom_line(FILE *f, const char *prefix, const struct report *r);
