/* level: the level engine and the stall detector. Pure: samples with their clock in, decisions out;
 * no files, no time source. Tested with synthetic sample streams. */
#include "supervise/level.h"

#include <math.h>

#include "config/size.h"

#define RATE_TAU_USEC (2 * USEC_PER_SEC)     /* growth-rate smoothing time constant */
#define RATE_MIN_DT_USEC (10 * USEC_PER_MSEC) /* samples closer than this do not update the rate */

const char *level_reason_name(enum level_reason r)
{
        static const char *const names[_REASON_MAX] = { "none", "usage", "psi_some", "psi_full", "predict",
                                                         "recovered" };
        return r < _REASON_MAX ? names[r] : "?";
}

void level_engine_init(struct level_engine *e, const struct policy *p, uint64_t limit)
{
        *e = (struct level_engine){ .p = p, .limit = limit, .cur = LEVEL_OK, .below_since = USEC_INFINITY };
}

uint64_t level_usage_threshold(const struct level_engine *e, enum level l)
{
        const struct policy_level *pl = &e->p->levels[l];
        if (l == LEVEL_OK || !pl->defined || !pl->usage_ppm || e->limit == SIZE_MAX_VALUE)
                return SIZE_MAX_VALUE;
        return size_share(e->limit, pl->usage_ppm);
}

uint64_t level_next_threshold(const struct level_engine *e)
{
        for (int l = (int)e->cur + 1; l < _LEVEL_MAX; l++) {
                uint64_t t = level_usage_threshold(e, (enum level)l);
                if (t != SIZE_MAX_VALUE)
                        return t;
        }
        return SIZE_MAX_VALUE;
}

usec_t level_eta(const struct level_engine *e, uint64_t usage)
{
        if (e->limit == SIZE_MAX_VALUE || e->rate <= 0)
                return USEC_INFINITY;
        if (usage >= e->limit)
                return 0;
        return usec_at_rate((double)(e->limit - usage), e->rate);
}

/* Does any condition of level l hold? Returns the reason, or REASON_NONE. */
static enum level_reason holds(const struct level_engine *e, enum level l, const struct level_sample *s, usec_t eta)
{
        const struct policy_level *pl = &e->p->levels[l];
        if (!pl->defined)
                return REASON_NONE;
        uint64_t thr = level_usage_threshold(e, l);
        if (thr != SIZE_MAX_VALUE && s->usage >= thr)
                return REASON_USAGE;
        if (s->psi_valid && pl->psi_some_ppm && s->psi_some_ppm >= pl->psi_some_ppm)
                return REASON_PSI_SOME;
        if (s->psi_valid && pl->psi_full_ppm && s->psi_full_ppm >= pl->psi_full_ppm)
                return REASON_PSI_FULL;
        if (pl->predict_usec && eta != USEC_INFINITY && eta <= pl->predict_usec)
                return REASON_PREDICT;
        return REASON_NONE;
}

/* May the engine leave level l? Nothing of l holds and usage is hysteresis below its threshold. */
static bool may_leave(const struct level_engine *e, enum level l, const struct level_sample *s, usec_t eta)
{
        if (holds(e, l, s, eta) != REASON_NONE)
                return false;
        uint64_t thr = level_usage_threshold(e, l);
        if (thr == SIZE_MAX_VALUE)
                return true;
        uint64_t margin = size_share(e->limit, e->p->hysteresis_ppm);
        return s->usage + margin < thr;
}

static void update_rate(struct level_engine *e, const struct level_sample *s)
{
        if (e->have_last) {
                usec_t dt = usec_sub(s->t, e->last_t);
                if (dt < RATE_MIN_DT_USEC)
                        return;
                double inst = per_sec((double)s->usage - (double)e->last_usage, dt);
                double a = 1.0 - exp(-(double)dt / (double)RATE_TAU_USEC);
                e->rate += (inst - e->rate) * a;
                e->inst_rate = inst;
        }
        e->have_last = true;
        e->last_t = s->t;
        e->last_usage = s->usage;
}

/* Move to level `to`: the dwell clock and the repeat floor start over there. */
static int move_to(struct level_engine *e, enum level to, uint64_t usage, struct level_decision *d,
                   struct level_decision *ret)
{
        e->cur = to;
        e->below_since = USEC_INFINITY;
        e->floor = usage;
        d->to = to;
        *ret = *d;
        return 1;
}

int level_feed(struct level_engine *e, const struct level_sample *s, struct level_decision *ret)
{
        update_rate(e, s);
        usec_t eta = level_eta(e, s->usage);

        enum level target = LEVEL_OK;
        enum level_reason why = REASON_NONE;
        for (int l = _LEVEL_MAX - 1; l > LEVEL_OK; l--) {
                enum level_reason r = holds(e, (enum level)l, s, eta);
                if (r != REASON_NONE) {
                        target = (enum level)l;
                        why = r;
                        break;
                }
        }
        struct level_decision d = { .from = e->cur, .to = e->cur, .reason = why, .eta = eta };

        if (target > e->cur) {
                /* Up at once, skipping levels if need be. */
                d.run_actions = true;
                return move_to(e, target, s->usage, &d, ret);
        }
        if (e->cur == LEVEL_OK)
                return 0;
        if (s->usage < e->floor)
                e->floor = s->usage;

        if (target < e->cur && may_leave(e, e->cur, s, eta)) {
                if (e->below_since == USEC_INFINITY)
                        e->below_since = s->t;
                if (usec_sub(s->t, e->below_since) >= e->p->dwell_usec) {
                        /* Down one defined step at a time; each step waits its own dwell. */
                        enum level next = LEVEL_OK;
                        for (int l = (int)e->cur - 1; l > LEVEL_OK; l--)
                                if (e->p->levels[l].defined) {
                                        next = (enum level)l;
                                        break;
                                }
                        d.reason = REASON_RECOVERED;
                        return move_to(e, next, s->usage, &d, ret);
                }
                return 0;
        }
        e->below_since = USEC_INFINITY;

        /* Same level, still climbing: ask again each time usage rises a step above its low point. */
        const struct policy_level *pl = &e->p->levels[e->cur];
        if (pl->repeat_ppm && e->limit != SIZE_MAX_VALUE && s->usage >= e->floor + size_share(e->limit, pl->repeat_ppm)) {
                e->floor = s->usage;
                d.run_actions = true;
                d.repeat = true;
                d.reason = why != REASON_NONE ? why : REASON_USAGE;
                *ret = d;
                return 1;
        }
        return 0;
}

void stall_init(struct stall_detector *d, const struct policy *p)
{
        *d = (struct stall_detector){ .p = p, .since = USEC_INFINITY };
}

int stall_feed(struct stall_detector *d, const struct stall_sample *s)
{
        const struct policy *p = d->p;
        if (!p->stall_enabled || s->high == SIZE_MAX_VALUE) {
                d->since = USEC_INFINITY;
                return 0;
        }
        bool throttled = d->primed && s->ev_high > d->last_ev_high;
        bool freeing = d->primed && s->freed_total > d->last_freed;
        bool at_high = level_at_high(s->usage, s->high);
        bool pressured = !s->psi_valid || s->psi_full_ppm >= p->stall_psi_full_ppm;
        d->primed = true;
        d->last_ev_high = s->ev_high;
        d->last_freed = s->freed_total;

        if (!(at_high && pressured && !freeing && (throttled || d->since != USEC_INFINITY))) {
                d->since = USEC_INFINITY;
                return 0;
        }
        if (!throttled && d->since != USEC_INFINITY) {
                /* No new throttling since the last sample: keep the clock only while PSI says stalled. */
                if (!s->psi_valid) {
                        d->since = USEC_INFINITY;
                        return 0;
                }
        }
        if (d->since == USEC_INFINITY)
                d->since = s->t;
        if (usec_sub(s->t, d->since) >= p->stall_duration_usec) {
                d->since = s->t;
                return 1;
        }
        return 0;
}
