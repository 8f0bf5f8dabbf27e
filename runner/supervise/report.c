/* report: what happened, as the JSON report (--report), the stderr summary and the OOM line. */
#include "supervise/report.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/size.h"

void report_json_string(FILE *f, const char *str)
{
        const unsigned char *s = (const unsigned char *)str;
        char buf[8];
        const char *piece;
        size_t len;
        fputc('"', f);
        while (*s) {
                s += json_piece(s, buf, &piece, &len);
                fwrite(piece, 1, len, f);
        }
        fputc('"', f);
}

void report_json_u64(FILE *f, uint64_t v)
{
        /* "max" has no byte count: null says "no limit" without a magic number. */
        if (v == SIZE_MAX_VALUE)
                fputs("null", f);
        else
                fprintf(f, "%llu", (unsigned long long)v);
}

void report_log_level(struct report_log *l, usec_t t, enum level level, uint64_t usage, const char *reason)
{
        if (l->n_levels >= REPORT_MAX_LEVELS) {
                l->dropped_levels++;
                return;
        }
        l->levels[l->n_levels++] = (struct report_level){ t, level, usage, reason };
}

struct report_action *report_log_action(struct report_log *l, usec_t t, const char *action, enum level level)
{
        if (l->n_actions >= REPORT_MAX_ACTIONS) {
                l->dropped_actions++;
                return NULL;
        }
        struct report_action *a = &l->actions[l->n_actions++];
        *a = (struct report_action){ .t = t, .action = action, .level = level, .status = -1 };
        return a;
}

static void report_json_log(FILE *f, const struct report_log *l)
{
        fputs("  \"levels\": [", f);
        for (unsigned i = 0; l && i < l->n_levels; i++) {
                const struct report_level *e = &l->levels[i];
                fprintf(f, "%s\n    { \"t\": %.3f, \"level\": \"%s\", \"usage\": %llu, \"reason\": \"%s\" }",
                        i ? "," : "", usec_to_sec(e->t), level_name(e->level), (unsigned long long)e->usage,
                        e->reason ? e->reason : "");
        }
        fputs(l && l->n_levels ? "\n  ],\n" : "],\n", f);
        fputs("  \"actions\": [", f);
        for (unsigned i = 0; l && i < l->n_actions; i++) {
                const struct report_action *a = &l->actions[i];
                fprintf(f, "%s\n    { \"t\": %.3f, \"action\": \"%s\", \"level\": \"%s\", \"freed\": %llu, "
                           "\"ms\": %.1f",
                        i ? "," : "", usec_to_sec(a->t), a->action, level_name(a->level), (unsigned long long)a->freed,
                        usec_to_msec(a->took));
                if (a->status >= 0)
                        fprintf(f, ", \"status\": %d", a->status);
                if (a->seq)
                        fprintf(f, ", \"clients\": %u", a->clients);
                if (a->detail[0]) {
                        fputs(", \"detail\": ", f);
                        report_json_string(f, a->detail);
                }
                fputs(" }", f);
        }
        fputs(l && l->n_actions ? "\n  ],\n" : "],\n", f);
        if (l && (l->dropped_levels || l->dropped_actions))
                fprintf(f, "  \"dropped\": { \"levels\": %u, \"actions\": %u },\n", l->dropped_levels,
                        l->dropped_actions);
        fprintf(f, "  \"limiter\": { \"clients\": %u, \"freed\": %llu, \"deferred\": %llu },\n",
                l ? l->limiter_clients : 0, (unsigned long long)(l ? l->limiter_freed : 0),
                (unsigned long long)(l ? l->limiter_deferred : 0));
        if (l && l->jvm.enabled) {
                fputs("  \"jvm\": [", f);
                for (unsigned i = 0; i < l->jvm.n; i++) {
                        const struct report_jvm *j = &l->jvm.p[i];
                        fprintf(f, "%s\n    { \"pid\": %d, \"asks\": %llu, \"answered\": %llu, \"freed\": %llu, "
                                   "\"trim_native_heap\": %s, \"soft_max_heap\": %llu, \"not_driven\": ",
                                i ? "," : "", (int)j->pid, (unsigned long long)j->asks, (unsigned long long)j->answered,
                                (unsigned long long)j->freed, j->trim ? "true" : "false", (unsigned long long)j->soft_max);
                        if (j->why[0])
                                report_json_string(f, j->why);
                        else
                                fputs("null", f);
                        fputs(" }", f);
                }
                fputs(l->jvm.n ? "\n  ],\n" : "],\n", f);
        } else {
                fputs("  \"jvm\": null,\n", f); /* the driver off (memrun.1 REPORT) */
        }
        if (l && l->pw.mode) {
                fprintf(f, "  \"pressure_watch\": { \"mode\": \"%s\", \"path\": ", l->pw.mode);
                report_json_string(f, l->pw.path ? l->pw.path : "");
                fprintf(f, ", \"clients\": %llu, \"triggers\": %llu, \"pulses\": { \"governor\": %llu, \"kernel\": %llu }, \"freed\": %llu },\n",
                        (unsigned long long)l->pw.clients, (unsigned long long)l->pw.triggers,
                        (unsigned long long)l->pw.pulses_governor, (unsigned long long)l->pw.pulses_kernel,
                        (unsigned long long)l->pw.freed);
        }
        if (!l || !l->governor)
                return;
        /* The loop's totals: "actions" holds only its first asks. */
        fputs("  \"governor\": { \"asks\": {", f);
        static const enum action_type order[] = { ACTION_TRIM, ACTION_COLLECT, ACTION_RECLAIM, ACTION_SHED };
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
                const struct report_agg *g = &l->agg[order[i]];
                fprintf(f, "%s \"%s\": { \"asks\": %llu, \"asked\": %llu, \"freed\": %llu, \"ms\": %.1f }",
                        i ? "," : "", action_type_name(order[i]), (unsigned long long)g->asks,
                        (unsigned long long)g->asked, (unsigned long long)g->freed, usec_to_msec(g->took));
        }
        fprintf(f, " },\n    \"rounds\": %llu, \"not_listed\": %llu, \"step_max\": \"%s\", \"giveups\": %u, "
                   "\"gave_up_t\": ",
                (unsigned long long)l->rounds, (unsigned long long)l->gov_more, l->step_max ? l->step_max : "trim",
                l->giveups);
        if (l->gave_up_t != USEC_INFINITY)
                fprintf(f, "%.3f", usec_to_sec(l->gave_up_t));
        else
                fputs("null", f);
        fprintf(f, ", \"signals_skipped\": %llu },\n", (unsigned long long)l->signals_skipped);
}

static void report_json_sandbox(FILE *f, const struct confine_run *s)
{
        char act[48];
        if (!s)
                return;
        fprintf(f, "  \"sandbox\": { \"enabled\": %s", s->enabled ? "true" : "false");
        if (s->enabled) {
                fprintf(f, ", \"mount_namespace\": %s, \"user_namespace\": %s, \"read_only\": [",
                        s->mount_ns ? "true" : "false", s->user_ns ? "true" : "false");
                for (unsigned i = 0; s->mount_ns && i < s->n_ro; i++) {
                        fputs(i ? ", " : "", f);
                        report_json_string(f, s->ro[i].path);
                }
                sandbox_action_format(s->spec->action, s->spec->errno_value, act, sizeof act);
                fprintf(f, "], \"cgroup_namespace\": %s, \"no_new_privs\": %s, \"restrict_namespaces\": %s, "
                           "\"seccomp\": { \"mode\": \"%s\", \"action\": \"%s\", \"syscalls\": %u }",
                        s->cgroup_ns ? "true" : "false", s->no_new_privs ? "true" : "false",
                        s->restrict_namespaces ? "true" : "false", s->spec->filter.allow ? "allow" : "deny", act,
                        s->filter_rules);
        }
        fputs(", \"user\": ", f);
        if (s->drop_user) {
                fputs("{ \"name\": ", f);
                report_json_string(f, s->user);
                fprintf(f, ", \"uid\": %u, \"gid\": %u, \"groups\": [", (unsigned)s->uid, (unsigned)s->gid);
                for (int i = 0; i < s->n_groups; i++)
                        fprintf(f, "%s%u", i ? ", " : "", (unsigned)s->groups[i]);
                fputs("] }", f);
        } else
                fputs("null", f);
        fputs(", \"capabilities\": ", f);
        if (s->bounding_set) {
                fputc('[', f);
                for (int c = 0, n = 0; c <= sandbox_cap_last(); c++)
                        if ((s->bounding >> c) & 1)
                                fprintf(f, "%s\"%s\"", n++ ? ", " : "", sandbox_cap_name(c));
                fputc(']', f);
        } else
                fputs("null", f);
        fputs(" },\n", f);
}

void report_json(FILE *f, const struct report *r)
{
        char sig[32];
        fputs("{\n  \"version\": 1,\n  \"command\": [", f);
        for (char **a = r->argv; *a; a++) {
                if (a != r->argv)
                        fputs(", ", f);
                report_json_string(f, *a);
        }
        fprintf(f, "],\n  \"duration_s\": %.3f,\n", usec_to_sec(r->duration));
        fprintf(f, "  \"cgroup\": { \"version\": %d, \"mode\": \"%s\", \"path\": ", r->mode == CG_V2 ? 2 : 1,
                cg_mode_name(r->mode));
        report_json_string(f, r->cgroup_path);
        fputs(" },\n  \"limits\": { \"max\": ", f);
        report_json_u64(f, r->max);
        fputs(", \"high\": ", f);
        report_json_u64(f, r->high);
        fputs(", \"swap_max\": ", f);
        report_json_u64(f, r->swap_max);
        fprintf(f, " },\n  \"memory\": { \"peak\": %llu, \"final\": %llu },\n",
                (unsigned long long)r->stats.peak, (unsigned long long)r->stats.current);
        fprintf(f, "  \"events\": { \"high\": %llu, \"max\": %llu, \"oom\": %llu, \"oom_kill\": %llu, "
                   "\"oom_group_kill\": %llu },\n",
                (unsigned long long)r->stats.ev_high, (unsigned long long)r->stats.ev_max,
                (unsigned long long)r->stats.ev_oom, (unsigned long long)r->stats.ev_oom_kill,
                (unsigned long long)r->stats.ev_oom_group_kill);
        report_json_log(f, r->log);
        report_json_sandbox(f, r->confine);
        fputs("  \"hints\": {", f);
        for (unsigned i = 0; r->hints && i < r->hints->n; i++) {
                fprintf(f, "%s ", i ? "," : "");
                report_json_string(f, r->hints->v[i].name);
                fputs(": ", f);
                report_json_string(f, r->hints->v[i].value);
        }
        fputs(r->hints && r->hints->n ? " },\n" : "},\n", f);
        fprintf(f, "  \"exit\": { \"code\": %d, \"signal\": ", r->exit_code);
        if (r->signal) {
                fputc('"', f);
                fputs(signal_name(r->signal, sig, sizeof sig), f);
                fputc('"', f);
        } else {
                fputs("null", f);
        }
        fprintf(f, ", \"oom_killed\": %s", r->oom_killed ? "true" : "false");
        if (r->victim_known) {
                fprintf(f, ", \"oom_victim\": { \"pid\": %d, \"comm\": ", (int)r->victim.pid);
                report_json_string(f, r->victim.comm);
                fputs(" }", f);
        }
        fputs(" }\n}\n", f);
}

int report_write(const char *path, const struct report *r)
{
        if (strcmp(path, "-") == 0) {
                report_json(stdout, r);
                return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -(errno ? errno : EIO);
        }
        /* Rendered in memory first: the file is replaced whole or not at all (util.h, file_replace). */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -errno;
        report_json(f, r);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        int k = file_replace(path, buf, len);
        free(buf);
        return k;
}

void report_summary(FILE *f, const char *prefix, const struct report *r)
{
        char peak[32], max[32], sig[32];
        size_format(r->stats.peak, peak, sizeof peak);
        size_format(r->max, max, sizeof max);
        fprintf(f, "%s: ", prefix);
        if (r->oom_killed)
                fputs("OOM-killed", f);
        else if (r->signal)
                fprintf(f, "killed by %s%s", signal_name(r->signal, sig, sizeof sig),
                        r->signal == SIGSYS && r->confine && r->confine->enabled && r->confine->spec->action == SANDBOX_KILL
                                ? " (a system call the sandbox's seccomp filter denies)"
                                : "");
        else
                fprintf(f, "exited %d", r->exit_code);
        fprintf(f, " after %.2fs; peak %s of %s", usec_to_sec(r->duration), peak, max);
        if (r->max != SIZE_MAX_VALUE && r->max)
                fprintf(f, " (%.1f%%)", 100.0 * (double)r->stats.peak / (double)r->max);
        fprintf(f, "; %llu memory.high throttling event%s", (unsigned long long)r->stats.ev_high,
                r->stats.ev_high == 1 ? "" : "s");
        if (r->mode != CG_V2)
                fputs(" (v1: no memory.high)", f);
        const struct report_log *l = r->log;
        if (l && l->governor) {
                uint64_t asks = l->asks, asked = l->asked, freed = 0;
                for (int t = 0; t < _ACTION_TYPE_MAX; t++)
                        freed += l->agg[t].freed;
                char a[32], b[32];
                uint64_t rc = l->agg[ACTION_RECLAIM].asks;
                if (asks || rc)
                        fprintf(f, "; %llu ask%s, %llu reclaim%s, %s freed of %s asked", (unsigned long long)asks,
                                asks == 1 ? "" : "s", (unsigned long long)rc, rc == 1 ? "" : "s",
                                size_format(freed, a, sizeof a),
                                size_format(asked + l->agg[ACTION_RECLAIM].asked, b, sizeof b));
                if (l->giveups)
                        fprintf(f, "; gave up holding the soft limit at %.2fs", usec_to_sec(l->gave_up_t));
        }
        fputc('\n', f);
}

void report_oom_line(FILE *f, const char *prefix, const struct report *r)
{
        char peak[32], max[32];
        size_format(r->stats.peak, peak, sizeof peak);
        size_format(r->max, max, sizeof max);
        fprintf(f, "%s: OOM: the kernel OOM killer ended ", prefix);
        if (r->victim_known)
                fprintf(f, "%s (pid %d)", r->victim.comm, (int)r->victim.pid);
        else
                fputs("a process", f);
        fprintf(f, " in %s: limit %s, peak %s, after %.2fs (oom_kill %llu)\n", r->cgroup_path, max,
                peak, usec_to_sec(r->duration), (unsigned long long)(r->stats.ev_oom_kill));
}
