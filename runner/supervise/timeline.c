/* timeline: --timeline's CSV, one row per sample (time, usage, soft, hard, PSI, level, bytes asked
 * and freed, the governor's step). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/size.h"
#include "log.h"
#include "supervise/supervisor.h"
#include "util.h"

void timeline_open(struct supervisor *s)
{
        const char *path = s->plan->o.timeline;
        if (!path)
                return;
        s->tl_fd = strcmp(path, "-") == 0 ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)
                                          : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
        static const char header[] = "time_s,usage,soft,hard,psi_some,psi_full,level,asked,freed,step,setpoint\n";
        if (s->tl_fd < 0) {
                log_error("cannot write timeline %s: %m; no timeline", path);
                return;
        }
        timeline_put(s, header, sizeof header - 1);
}

/* One write: a row that cannot go (full filesystem, /dev/full, a closed pipe) is counted and the
 * first failure said at once, at error level (-q does not hide a lost output); the loop never
 * stalls on it. */
void timeline_put(struct supervisor *s, const char *buf, size_t len)
{
        int r = write_whole(s->tl_fd, buf, len);
        if (r == 0)
                return;
        if (s->tl_lost++ == 0) {
                s->tl_err = -r;
                log_error_errno(r, "cannot write timeline %s: %m; rows are lost from here", s->plan->o.timeline);
        }
}

/* The end: close (an error there is a lost timeline too) and say how many rows went missing. */
void timeline_close(struct supervisor *s)
{
        if (s->tl_fd < 0)
                return;
        int fd = s->tl_fd;
        s->tl_fd = -1;
        if (close(fd) < 0 && s->tl_lost == 0)
                log_error("cannot write timeline %s: %m (on close)", s->plan->o.timeline);
        if (s->tl_lost)
                log_error("timeline %s: %llu rows lost (%s)", s->plan->o.timeline, s->tl_lost, strerror(s->tl_err));
}

/* One write(2) from the stack: nothing allocated while the sandbox is under pressure. A short
 * write drops the row rather than stall the loop. */
void timeline_row(struct supervisor *s, usec_t now, const struct level_sample *ls)
{
        const struct actions *a = &s->act;
        char row[192];
        char soft[24], hard[24], sp[24];
        u64_or_max(a->lifted ? SIZE_MAX_VALUE : a->soft, soft, sizeof soft);
        u64_or_max(s->eng.limit, hard, sizeof hard);
        u64_or_max(!s->p->hold || a->gov.law.given_up ? SIZE_MAX_VALUE : a->last.setpoint, sp, sizeof sp);
        int n = snprintf(row, sizeof row, "%.3f,%llu,%s,%s,%.2f,%.2f,%s,%llu,%llu,%s,%s\n",
                         usec_to_sec(usec_sub(now, s->t0)),
                         (unsigned long long)ls->usage, soft, hard, (double)ls->psi_some_ppm / 1e4,
                         (double)ls->psi_full_ppm / 1e4, level_name(s->eng.cur), (unsigned long long)a->tl_asked,
                         (unsigned long long)a->tl_freed,
                         !s->p->hold || a->last.setpoint == SIZE_MAX_VALUE ? "-"
                         : a->gov.law.given_up                             ? "gaveup"
                         : a->last.step == _GOV_STEP_MAX && a->gov.law.step < LAW_STEPS ? "none"
                                                                           : gov_step_name(a->last.step),
                         sp);
        s->act.tl_asked = s->act.tl_freed = 0;
        if (n > 0 && (size_t)n < sizeof row)
                timeline_put(s, row, (size_t)n);
}
