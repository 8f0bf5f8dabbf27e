/* jvm: the JVM driver. Java cannot speak the limiter protocol (its unix sockets are stream-only,
 * JEP 380) and an unmodified JVM links no libmemlimit, so memrun drives each JVM in the sandbox
 * from outside, over HotSpot's attach socket (kernel/jattach.h), as jcmd would: the governor's trim
 * is System.trim_native_heap (JDK 17.0.9+: malloc arenas back to the kernel), its collect GC.run (a
 * full collection, after which the collector gives back what its free-ratio rules allow; repeated
 * while that pays, for the collectors that shrink in steps) then the trim; where the collector honours it (ZGC, Shenandoah), SoftMaxHeapSize follows the soft limit.
 *
 * Each command runs in a child process of memrun, as the JVM's own uid and gid, bounded by
 * JVM_OP_TIMEOUT_SEC: the supervisor never blocks on a JVM. What it gave back is the JVM's RSS
 * (VmRSS) before and after, read by memrun; the governor takes the round like a limiter's answer.
 * A JVM that cannot be attached to (-XX:+DisableAttachMechanism or -Xrs on its command line or in
 * JAVA_TOOL_OPTIONS, no SIGQUIT handler, no listener within JATTACH_START_WAIT_MS JVM_NO_LISTENER
 * times in a row: a JVM throttled at memory.high can be that slow once) is reported once and never
 * asked again. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cg.h"
#include "supervise/report.h"
#include "util.h"

#define JVM_MAX 16                                   /* JVMs driven at once; more are not seen */
#define JVM_SCAN_USEC USEC_PER_SEC                   /* the sandbox looked through for new JVMs at most this often */
#define JVM_OP_TIMEOUT_SEC 30                        /* a command (with the listener's start) is killed after this:
                                                        * generous, as the loop never waits on it and a JVM above
                                                        * memory.high collects throttled until the governor lets go */
#define JVM_TRIM_GAP_USEC (200 * USEC_PER_MSEC)      /* one JVM trimmed at most this often ... */
#define JVM_COLLECT_GAP_USEC (2 * USEC_PER_SEC)      /* ... and fully collected at most this often */
#define JVM_GC_RUNS 4                                /* GC.run at most this often in one collect (see jvm.c) */
#define JVM_SETTLE_MS 1500                           /* after a GC.run, the RSS watched this long at most ... */
#define JVM_SETTLE_IDLE_MS 400                       /* ... or this long when it does not move at all */
#define JVM_NO_LISTENER 3                            /* listener starts that time out before a JVM is given up */
#define JVM_GRACE_USEC (5 * USEC_PER_SEC)            /* a JVM this young may not have its SIGQUIT handler yet */
#define JVM_LOG_ENTRIES 32                           /* commands logged in the report's actions in full */
#define JVM_OTHERS 1024                              /* processes remembered as no JVM (by pid modulo this) */
#define JVM_OTHER_CHECKS 3                           /* ... once their maps showed no libjvm.so this often */

enum jvm_op { JVM_TRIM, JVM_COLLECT };

struct jvm {
        pid_t pid, nspid;
        uint64_t start;                 /* with pid: which process (proc_ids) */
        uid_t uid;
        gid_t gid;
        usec_t seen;                    /* found by a scan */
        bool gone;                      /* it ended: kept for the report */
        bool disabled;                  /* never asked again: why says why */
        char why[96];
        bool trim_unknown;              /* this JVM has no System.trim_native_heap */
        unsigned no_listener;           /* listener starts timed out in a row */
        bool soft_max_ok;               /* ZGC or Shenandoah: SoftMaxHeapSize is honoured */
        uint64_t soft_max_set;          /* SoftMaxHeapSize in force by us (0: never set) */
        /* the command in flight */
        pid_t child;
        enum jvm_op op;
        usec_t started;
        uint64_t rss_before, soft_max_asked;
        struct report_action *entry;
        usec_t last_trim, last_collect;
        uint64_t asks, answered, freed;
};

typedef void (*jvm_round_fn)(void *userdata, uint64_t goal, uint64_t freed, usec_t latency);

/* A process found to be no JVM: its maps are not read again while pid, start and name stay (an exec
 * changes the name). Checked JVM_OTHER_CHECKS times first: the java launcher maps libjvm.so a few
 * milliseconds after its exec. */
struct jvm_other {
        pid_t pid;
        uint64_t start;
        char name[16];
        unsigned checks;
};

struct jvm_driver {
        bool enabled;
        int proc_fd;
        const struct cg_sandbox *sb;
        struct jvm j[JVM_MAX];
        unsigned n;
        usec_t last_scan;
        struct jvm_other others[JVM_OTHERS];
        uint64_t soft_max;              /* SoftMaxHeapSize wanted, from the soft limit (0: none) */
        /* the round in flight: every JVM asked by one jvm_ask */
        bool out;
        unsigned pending;
        uint64_t goal, freed;
        usec_t sent;
        jvm_round_fn on_round;
        void *userdata;
        struct report_log *log;
        usec_t t0;
        unsigned logged;
};

/* enabled: [governor] jvm. log and t0: the report's, for one entry per command. */
void jvm_init(struct jvm_driver *d, bool enabled, int proc_fd, const struct cg_sandbox *sb, struct report_log *log,
              usec_t t0, jvm_round_fn on_round, void *userdata);
/* Look through the sandbox for JVMs (at most every JVM_SCAN_USEC; forget those gone). */
void jvm_scan(struct jvm_driver *d, usec_t now);
/* JVMs that can be asked at all, and of them those free to be asked now (none in flight, paced). */
unsigned jvm_count(const struct jvm_driver *d);
unsigned jvm_askable(const struct jvm_driver *d, usec_t now);
/* The governor's ask (ACTION_MASK bits of trim/collect): a command to each free JVM. How many. */
unsigned jvm_ask(struct jvm_driver *d, uint32_t actions, uint64_t goal, enum level level, usec_t now);
/* The soft limit changed: SoftMaxHeapSize to follow it (sent with the next command). */
void jvm_set_soft(struct jvm_driver *d, uint64_t soft);
/* A child of memrun ended: true if it was one of the driver's (then the round may complete). */
bool jvm_reaped(struct jvm_driver *d, pid_t pid, int status, usec_t now);
/* Kill and reap what still runs (the end of the run). */
void jvm_shutdown(struct jvm_driver *d);
/* For the report. */
void jvm_report(const struct jvm_driver *d, struct report_log *log);
