/* status: the supervisor's own view of the run, served to memrunctl over the control socket (a
 * source of the event core), written as --metrics and served over HTTP as --metrics-listen (two
 * sources: libmicrohttpd's epoll fd and a timer for its deadlines); memrunctl set goes to
 * supervisor_set_limits. */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "supervise/supervisor.h"
#include "util.h"

void status_fill(struct supervisor *s, struct ctl_status *st)
{
        const struct report_log *l = &s->log;
        const struct cg_sandbox *sb = &s->cg.sb;
        struct cg_stats cs = { .current = 0 };
        (void)cg_sandbox_stats(&s->cg.sb, &cs);
        st->pid = (int)getpid();
        snprintf(st->name, sizeof st->name, "%s", s->plan->name);
        snprintf(st->command, sizeof st->command, "%s", s->plan->o.argv[0]);
        snprintf(st->cgroup, sizeof st->cgroup, "%s", sb->path);
        snprintf(st->mode, sizeof st->mode, "%s", cg_mode_name(sb->mode));
        st->limit = s->eng.limit;
        st->soft = s->act.soft;
        if (cg_sandbox_usage(&s->cg.sb, &st->usage) < 0)
                st->usage = s->mon.last.usage;
        st->peak = cs.peak > st->usage ? cs.peak : st->usage;
        snprintf(st->level, sizeof st->level, "%s", level_name(s->eng.cur));
        if (s->act.limiter.state) {
                uint64_t out;
                unsigned askable;
                s->act.limiter.state(s->act.limiter.ctx, s->p->ask_timeout_usec, &st->clients, &out, &askable);
        }
        st->asks = l->asks;
        st->asked = l->asked;
        for (int t = 0; t < _ACTION_TYPE_MAX; t++)
                st->freed += l->agg[t].freed;
        st->asks_trim = l->agg[ACTION_TRIM].asks;
        st->asks_collect = l->agg[ACTION_COLLECT].asks;
        st->asks_reclaim = l->agg[ACTION_RECLAIM].asks;
        st->asks_shed = l->agg[ACTION_SHED].asks;
        st->ev_high = cs.ev_high;
        st->ev_max = cs.ev_max;
        st->ev_oom = cs.ev_oom;
        st->ev_oom_kill = cs.ev_oom_kill;
        st->uptime_s = usec_to_sec(usec_sub(now_usec(), s->t0));
        st->limit_changes = s->limit_changes;
        st->ctl_refused = s->ctl.refused;
        st->ctl_malformed = s->ctl.malformed;
}

static void fill(void *ctx, struct ctl_status *st)
{
        status_fill(ctx, st);
}

/* memrunctl set: the request's limits through the one setter. */
static int set(void *ctx, bool has_limit, uint64_t limit, bool has_soft, uint64_t soft, char *why, size_t why_size)
{
        struct supervisor *s = ctx;
        struct limits lim;
        int r = limits_change(&s->limits, has_limit, limit, has_soft, soft, &lim, why, why_size);
        return r < 0 ? r : supervisor_set_limits(s, &lim, "memrunctl", why, why_size);
}

/* memrunctl: never the sandbox's own processes (nor one that cannot be told apart) */
static bool peer_inside(void *ctx, pid_t pid)
{
        return supervisor_contains(ctx, pid) != 0;
}

static void on_ctl(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct supervisor *s = userdata;
        (void)l;
        (void)fd;
        (void)events;
        struct ctl_ops ops = { fill, set, peer_inside, s, s };
        ctl_dispatch(&s->ctl, &ops);
}

/* --metrics-listen's page: the status as --metrics writes it, rendered for each scrape. */
static int render(void *ctx, char *buf, size_t size)
{
        struct ctl_status st;
        memset(&st, 0, sizeof st);
        status_fill(ctx, &st);
        return ctl_status_prometheus(&st, buf, size);
}

/* Both sources: what is ready, then libmicrohttpd's next deadline (a connection's timeout, or at
 * once when it has input read ahead that no fd will announce) on the timer. */
static void on_http(struct loop *l, int fd, uint32_t events, void *userdata)
{
        struct supervisor *s = userdata;
        (void)l;
        (void)events;
        if (fd == s->http_tfd)
                (void)loop_timer_ack(fd);
        usec_t next = httpd_run(&s->http);
        (void)loop_timer_set(s->http_tfd, next == USEC_INFINITY ? 0 : next > 0 ? next : 1);
}

static int http_start(struct supervisor *s)
{
        const struct httpd_addr *a = &s->plan->o.metrics_listen;
        int r = httpd_open(&s->http, a, render, s);
        if (r < 0)
                return log_error_errno(r, "--metrics-listen: cannot listen on %s: %m", a->text);
        s->http_tfd = r = loop_add_timer(&s->loop, on_http, s, "metrics-listen timer");
        if (r >= 0)
                r = loop_add(&s->loop, httpd_fd(&s->http), EPOLLIN, on_http, s, "metrics-listen");
        if (r < 0)
                return log_error_errno(r, "--metrics-listen %s: event loop: %m", a->text);
        log_info("metrics at http://%s/metrics", a->text);
        return 0;
}

int status_start(struct supervisor *s)
{
        int r = ctl_open(&s->ctl);
        if (r < 0)
                log_debug_errno(r, "no control socket (%m): memrunctl cannot reach this sandbox");
        else
                (void)loop_add(&s->loop, s->ctl.fd, EPOLLIN, on_ctl, s, "control socket");
        return s->plan->o.metrics_listen.len ? http_start(s) : 0;
}

void status_write_metrics(struct supervisor *s, usec_t now)
{
        struct ctl_status st;
        memset(&st, 0, sizeof st);
        status_fill(s, &st);
        int r = ctl_write_metrics(s->plan->o.metrics, &st);
        /* Said once per failure and once when it works again, at error level (-q does not hide a
         * lost output); tried again every second. */
        if (r < 0 && !s->metrics_failing)
                log_error_errno(r, "cannot write --metrics %s: %m; trying again every second", s->plan->o.metrics);
        else if (r == 0 && s->metrics_failing)
                log_error("writing --metrics %s again", s->plan->o.metrics);
        s->metrics_failing = r < 0;
        s->metrics_t = now;
}
