/* jvm: the JVM driver (jvm.h). */
#include "supervise/jvm.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/size.h"
#include "kernel/jattach.h"
#include "kernel/proc.h"
#include "log.h"
#include "supervise/actions.h"
#include "util.h"

/* The child's exit codes. */
enum {
        EXIT_DONE = 0,
        EXIT_REFUSED = 10,      /* the JVM answered with an error: the command is not its */
        EXIT_NO_LISTENER = 11,  /* no attach listener came after SIGQUIT */
        EXIT_FAILED = 12,       /* anything else (credentials, connect, a garbled answer) */
        EXIT_DONE_NO_SOFT_MAX = 13, /* done, but VM.set_flag SoftMaxHeapSize was not (asked again) */
};

static const char *const java_envs[] = { "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", NULL };

void jvm_init(struct jvm_driver *d, bool enabled, int proc_fd, const struct cg_sandbox *sb, struct report_log *log,
              usec_t t0, jvm_round_fn on_round, void *userdata)
{
        *d = (struct jvm_driver){ .enabled = enabled && proc_fd >= 0, .proc_fd = proc_fd, .sb = sb, .log = log,
                                  .t0 = t0, .on_round = on_round, .userdata = userdata, .last_scan = USEC_INFINITY };
}

static void disable(struct jvm *j, const char *why)
{
        if (j->disabled)
                return;
        j->disabled = true;
        snprintf(j->why, sizeof j->why, "%s", why);
        log_warn("jvm: pid %d cannot be driven: %s; not asked again", (int)j->pid, why);
}

static void add(struct jvm_driver *d, pid_t pid, const struct proc_ids *ids, usec_t now)
{
        struct jvm *j = NULL;
        if (d->n < JVM_MAX)
                j = &d->j[d->n++];
        for (unsigned i = 0; !j && i < d->n; i++) /* full: one that is gone makes room */
                if (d->j[i].gone)
                        j = &d->j[i];
        if (!j) {
                log_debug("jvm: pid %d not driven: %d JVMs already are", (int)pid, JVM_MAX);
                return;
        }
        *j = (struct jvm){ .pid = pid, .nspid = ids->nspid, .start = ids->start, .uid = ids->uid, .gid = ids->gid,
                           .seen = now, .last_trim = USEC_INFINITY, .last_collect = USEC_INFINITY };
        j->soft_max_ok = proc_has_flag(d->proc_fd, pid, "-XX:+UseZGC", java_envs) == 1 ||
                         proc_has_flag(d->proc_fd, pid, "-XX:+UseShenandoahGC", java_envs) == 1;
        log_debug("jvm: pid %d (pid %d in its namespace, uid %u) is a JVM%s", (int)pid, (int)ids->nspid,
                  (unsigned)ids->uid, j->soft_max_ok ? " whose collector honours SoftMaxHeapSize" : "");
        if (proc_has_flag(d->proc_fd, pid, "-XX:+DisableAttachMechanism", java_envs) == 1)
                disable(j, "started with -XX:+DisableAttachMechanism");
        /* -Xrs: no SIGQUIT handler, so the signal that starts the listener would end the JVM */
        else if (proc_has_flag(d->proc_fd, pid, "-Xrs", java_envs) == 1 ||
                 proc_has_flag(d->proc_fd, pid, "-XX:+ReduceSignalUsage", java_envs) == 1)
                disable(j, "started with -Xrs: SIGQUIT would end it");
}

void jvm_scan(struct jvm_driver *d, usec_t now)
{
        if (!d->enabled || (d->last_scan != USEC_INFINITY && usec_sub(now, d->last_scan) < JVM_SCAN_USEC))
                return;
        d->last_scan = now;
        /* the JVMs that are gone stay in the table for the report (not one whose command is still
         * being reaped) */
        for (unsigned i = 0; i < d->n; i++) {
                struct proc_ids ids;
                struct jvm *j = &d->j[i];
                if (!j->gone && !j->child && (proc_ids(d->proc_fd, j->pid, &ids) < 0 || ids.start != j->start))
                        j->gone = true;
        }
        static pid_t pids[4096];
        int n = cg_sandbox_pids(d->sb, pids, ELEMENTSOF(pids));
        for (int k = 0; k < n; k++) {
                struct proc_ids ids;
                if (proc_ids(d->proc_fd, pids[k], &ids) < 0 || ids.rss == 0)
                        continue;
                bool known = false;
                for (unsigned i = 0; i < d->n && !known; i++)
                        known = !d->j[i].gone && d->j[i].pid == pids[k] && d->j[i].start == ids.start;
                if (known)
                        continue;
                struct jvm_other *o = &d->others[(unsigned)pids[k] % JVM_OTHERS];
                bool same = o->pid == pids[k] && o->start == ids.start && strcmp(o->name, ids.name) == 0;
                if (same && o->checks >= JVM_OTHER_CHECKS)
                        continue;
                if (proc_maps_has(d->proc_fd, pids[k], "/libjvm.so") == 1) {
                        add(d, pids[k], &ids, now);
                        o->pid = 0;
                        continue;
                }
                if (!same) {
                        *o = (struct jvm_other){ .pid = pids[k], .start = ids.start };
                        memcpy(o->name, ids.name, sizeof o->name);
                }
                o->checks++;
        }
}

static bool free_for(const struct jvm *j, enum jvm_op op, usec_t now)
{
        if (j->gone || j->disabled || j->child || (op == JVM_TRIM && j->trim_unknown))
                return false;
        usec_t last = op == JVM_TRIM ? j->last_trim : j->last_collect;
        usec_t gap = op == JVM_TRIM ? JVM_TRIM_GAP_USEC : JVM_COLLECT_GAP_USEC;
        return last == USEC_INFINITY || usec_sub(now, last) >= gap;
}

unsigned jvm_count(const struct jvm_driver *d)
{
        unsigned c = 0;
        for (unsigned i = 0; i < d->n; i++)
                c += !d->j[i].disabled && !d->j[i].gone;
        return c;
}

unsigned jvm_askable(const struct jvm_driver *d, usec_t now)
{
        unsigned c = 0;
        if (d->out)
                return 0;
        for (unsigned i = 0; i < d->n; i++)
                c += free_for(&d->j[i], JVM_TRIM, now) || free_for(&d->j[i], JVM_COLLECT, now);
        return c;
}

void jvm_set_soft(struct jvm_driver *d, uint64_t soft)
{
        /* The heap's share of the budget, as the JAVA_TOOL_OPTIONS hint sizes it (supervise/hints.c):
         * room for what is not heap, then 9/10 of the rest as the soft heap size. */
        if (soft == SIZE_MAX_VALUE) {
                d->soft_max = 0;
                return;
        }
        uint64_t room = soft / 4 > (64u << 20) ? soft / 4 : (64u << 20);
        d->soft_max = soft > room ? (soft - room) / 10 * 9 : 0;
}

/* In the child: become the JVM's user, start its listener if need be, run the commands. */
static uint64_t rss_of(int proc_fd, const struct jvm *j)
{
        struct proc_ids ids;
        return proc_ids(proc_fd, j->pid, &ids) == 0 && ids.start == j->start ? ids.rss : 0;
}

/* The RSS once it has settled after a collection: G1 (JDK 17) and ZGC uncommit in a background
 * thread, so the drop comes after GC.run has returned. Read every 50 ms: done once it dropped and
 * holds still, or when nothing moved for JVM_SETTLE_IDLE_MS, at most JVM_SETTLE_MS. */
static uint64_t settle(int proc_fd, const struct jvm *j, uint64_t before)
{
        uint64_t prev = before;
        bool dropped = false;
        int still = 0;
        for (int t = 0; t < JVM_SETTLE_MS; t += 50) {
                struct timespec ts = { 0, 50 * 1000000L };
                nanosleep(&ts, NULL);
                uint64_t cur = rss_of(proc_fd, j);
                if (cur + (1u << 20) < prev) {
                        prev = cur;
                        dropped = true;
                        still = 0;
                        continue;
                }
                still++;
                if ((dropped && still >= 2) || (!dropped && t + 50 >= JVM_SETTLE_IDLE_MS))
                        break;
        }
        return prev;
}

/* GC.run, again while it pays: Serial and Parallel damp the shrinking after a System.gc() (HotSpot's
 * ShrinkHeapInSteps: nothing given back on the first, 10% of the excess on the second, 40% on the
 * third, all of it by the fourth), G1 gives back at once. So: up to JVM_GC_RUNS, on while the last
 * one gave back a MiB or none has yet. The JVM's result code of the first. */
static int collect(int proc_fd, const struct jvm *j, char *out, size_t size)
{
        int first = -1;
        uint64_t total = 0, before = rss_of(proc_fd, j);
        for (int i = 0; i < JVM_GC_RUNS; i++) {
                int code = -1;
                if (jattach_jcmd(j->pid, j->nspid, "GC.run", &code, out, size) < 0)
                        _exit(i ? EXIT_DONE : EXIT_FAILED);
                if (i == 0)
                        first = code;
                if (code != 0)
                        break;
                uint64_t after = settle(proc_fd, j, before);
                uint64_t freed = before > after ? before - after : 0;
                total += freed;
                before = after;
                if (freed < (1u << 20) && total >= (1u << 20))
                        break;
        }
        return first;
}

/* Every fd but keep (and stdio) closed: the child takes the JVM's uid without an exec, and must not
 * carry memrun's files, sockets or /dev/kmsg over to that user. */
static void close_all_but(int keep)
{
        if (keep > 3)
                (void)syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u);
        (void)syscall(SYS_close_range, (unsigned)(keep >= 3 ? keep + 1 : 3), ~0u, 0u);
}

static _Noreturn void child_run(int proc_fd, const struct jvm *j, enum jvm_op op, uint64_t soft_max, pid_t parent)
{
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        alarm(JVM_OP_TIMEOUT_SEC);
        close_all_but(proc_fd);
        /* Not made dumpable again after the switch: the JVM's user could then read or trace this copy
         * of memrun. Reaching /proc/PID/root and cwd depends on the JVM's own dumpability. */
        if (geteuid() != j->uid &&
            (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 || setresuid(j->uid, j->uid, j->uid) < 0))
                _exit(EXIT_FAILED);
        /* after the switch: changing ids clears the parent-death signal */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(EXIT_FAILED);
        if (!jattach_listening(j->pid, j->nspid, j->uid)) {
                /* SIGQUIT through a pidfd of the process checked to be this JVM, which still catches it */
                struct proc_ids ids;
                int pidfd = pid_open(j->pid);
                if ((pidfd < 0 && pidfd != -ENOSYS) || proc_ids(proc_fd, j->pid, &ids) < 0 || ids.start != j->start ||
                    proc_catches(proc_fd, j->pid, SIGQUIT) != 1)
                        _exit(EXIT_FAILED);
                int r = jattach_start(j->pid, j->nspid, pidfd, JATTACH_START_WAIT_MS);
                if (r < 0)
                        _exit(r == -ETIMEDOUT ? EXIT_NO_LISTENER : EXIT_FAILED);
        }
        char out[2048], cmd[96];
        int code = -1;
        if (op == JVM_COLLECT)
                code = collect(proc_fd, j, out, sizeof out);
        else if (jattach_jcmd(j->pid, j->nspid, "System.trim_native_heap", &code, out, sizeof out) < 0)
                _exit(EXIT_FAILED);
        if (code == 0 && op == JVM_COLLECT && !j->trim_unknown)
                (void)jattach_jcmd(j->pid, j->nspid, "System.trim_native_heap", &(int){ 0 }, out, sizeof out);
        int set = 0;
        if (soft_max) {
                snprintf(cmd, sizeof cmd, "VM.set_flag SoftMaxHeapSize %llu", (unsigned long long)soft_max);
                if (jattach_jcmd(j->pid, j->nspid, cmd, &set, out, sizeof out) < 0)
                        set = -1;
        }
        _exit(code != 0 ? EXIT_REFUSED : set != 0 ? EXIT_DONE_NO_SOFT_MAX : EXIT_DONE);
}

unsigned jvm_ask(struct jvm_driver *d, uint32_t actions, uint64_t goal, enum level level, usec_t now)
{
        bool collect = actions & ACTION_MASK(ACTION_COLLECT);
        if (!d->enabled || d->out || !(actions & (ACTION_MASK(ACTION_TRIM) | ACTION_MASK(ACTION_COLLECT))))
                return 0;
        unsigned asked = 0;
        for (unsigned i = 0; i < d->n; i++) {
                struct jvm *j = &d->j[i];
                /* a trim this JVM cannot do becomes its collect, paced as one */
                enum jvm_op op = collect || j->trim_unknown ? JVM_COLLECT : JVM_TRIM;
                if (!free_for(j, op, now))
                        continue;
                struct proc_ids ids;
                if (proc_ids(d->proc_fd, j->pid, &ids) < 0 || ids.start != j->start)
                        continue;
                /* SIGQUIT with no handler would end the JVM (-Xrs): only where the listener runs already */
                if (!jattach_listening(j->pid, j->nspid, j->uid) && proc_catches(d->proc_fd, j->pid, SIGQUIT) != 1) {
                        if (usec_sub(now, j->seen) >= JVM_GRACE_USEC)
                                disable(j, "it does not catch SIGQUIT (-Xrs?), which would end it");
                        continue;
                }
                uint64_t soft_max = j->soft_max_ok && d->soft_max && d->soft_max != j->soft_max_set ? d->soft_max : 0;
                pid_t self = getpid(), c = fork();
                if (c < 0) {
                        log_debug("jvm: fork: %m");
                        break;
                }
                if (c == 0)
                        child_run(d->proc_fd, j, op, soft_max, self);
                j->child = c;
                j->op = op;
                j->started = now;
                j->rss_before = ids.rss;
                j->soft_max_asked = soft_max;
                j->asks++;
                if (op == JVM_TRIM)
                        j->last_trim = now;
                else
                        j->last_collect = now;
                j->entry = NULL;
                if (d->logged < JVM_LOG_ENTRIES && d->log) {
                        j->entry = report_log_action(d->log, usec_sub(now, d->t0), op == JVM_TRIM ? "jvm-trim" : "jvm-collect",
                                                     level);
                        d->logged += j->entry != NULL;
                }
                if (d->log)
                        d->log->agg[op == JVM_TRIM ? ACTION_TRIM : ACTION_COLLECT].asks++;
                asked++;
        }
        if (asked) {
                d->out = true;
                d->pending = asked;
                d->goal = goal;
                d->freed = 0;
                d->sent = now;
        }
        return asked;
}

bool jvm_reaped(struct jvm_driver *d, pid_t pid, int status, usec_t now)
{
        struct jvm *j = NULL;
        for (unsigned i = 0; i < d->n && !j; i++)
                if (d->j[i].child == pid)
                        j = &d->j[i];
        if (!j)
                return false;
        j->child = 0;
        struct proc_ids ids;
        bool alive = proc_ids(d->proc_fd, j->pid, &ids) == 0 && ids.start == j->start;
        uint64_t after = alive ? ids.rss : j->rss_before;
        uint64_t freed = j->rss_before > after ? j->rss_before - after : 0;
        const char *cmd = j->op == JVM_TRIM ? "System.trim_native_heap" : "GC.run";
        char what[48], b1[32], b2[32];
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        switch (code) {
        case EXIT_DONE:
        case EXIT_DONE_NO_SOFT_MAX: /* the soft heap size refused (above MaxHeapSize): not in force */
                j->no_listener = 0;
                j->answered++;
                j->freed += freed;
                if (j->soft_max_asked && code == EXIT_DONE)
                        j->soft_max_set = j->soft_max_asked;
                snprintf(what, sizeof what, "%s", cmd);
                break;
        case EXIT_REFUSED:
                j->no_listener = 0;
                if (j->op == JVM_TRIM) {
                        j->trim_unknown = true; /* a JDK before 17.0.9: collect does the work */
                        snprintf(what, sizeof what, "%s unknown to this JVM", cmd);
                } else {
                        snprintf(what, sizeof what, "%s refused", cmd);
                }
                freed = 0;
                break;
        case EXIT_NO_LISTENER:
                if (++j->no_listener >= JVM_NO_LISTENER)
                        disable(j, "no attach listener after SIGQUIT (-XX:+DisableAttachMechanism?)");
                snprintf(what, sizeof what, "no attach listener");
                freed = 0;
                break;
        default:
                if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
                        /* the command was sent and may still be running in the JVM: what its resident
                         * set dropped meanwhile is still its doing */
                        snprintf(what, sizeof what, "%s timed out", cmd);
                        j->freed += freed;
                        break;
                }
                snprintf(what, sizeof what, "%s failed (attach)", cmd);
                freed = 0;
                break;
        }
        usec_t took = usec_sub(now, j->started);
        if (j->entry) {
                j->entry->freed = freed;
                j->entry->took = took;
                int n = snprintf(j->entry->detail, sizeof j->entry->detail, "pid %d: %s, RSS %s -> %s", (int)j->pid,
                                 what, size_format(j->rss_before, b1, sizeof b1), size_format(after, b2, sizeof b2));
                (void)n; /* cut short at worst: the numbers are in the entry */
                j->entry = NULL;
        }
        log_debug("jvm: pid %d: %s in %.0f ms, RSS %s -> %s", (int)j->pid, what, usec_to_msec(took),
                  size_format(j->rss_before, b1, sizeof b1), size_format(after, b2, sizeof b2));
        if (d->log)
                d->log->agg[j->op == JVM_TRIM ? ACTION_TRIM : ACTION_COLLECT].freed += freed;
        if (d->out) {
                d->freed += freed;
                if (--d->pending == 0) {
                        d->out = false;
                        if (d->on_round)
                                d->on_round(d->userdata, d->goal, d->freed, usec_sub(now, d->sent));
                }
        }
        return true;
}

void jvm_shutdown(struct jvm_driver *d)
{
        for (unsigned i = 0; i < d->n; i++) {
                struct jvm *j = &d->j[i];
                if (!j->child)
                        continue;
                kill(j->child, SIGKILL);
                while (waitpid(j->child, NULL, 0) < 0 && errno == EINTR)
                        ;
                j->child = 0;
        }
        d->out = false;
}

void jvm_report(const struct jvm_driver *d, struct report_log *log)
{
        log->jvm.enabled = d->enabled;
        log->jvm.n = 0;
        for (unsigned i = 0; i < d->n && log->jvm.n < REPORT_MAX_JVMS; i++) {
                const struct jvm *j = &d->j[i];
                struct report_jvm *r = &log->jvm.p[log->jvm.n++];
                *r = (struct report_jvm){ .pid = j->pid, .asks = j->asks, .answered = j->answered, .freed = j->freed,
                                          .soft_max = j->soft_max_set, .trim = !j->trim_unknown };
                snprintf(r->why, sizeof r->why, "%s", j->disabled ? j->why : "");
        }
}
