/* governor: the soft limit as a control loop, not an alarm (docs/ARCHITECTURE.md). Pure: samples, replies and
 * their clock in, asks out. The law is Go's GOMEMLIMIT pacer across a process boundary: the goal is
 * re-derived from the limit at every sample, asks go out as often as the excess requires and replies
 * allow, and when nothing can be freed the limit stops being defended (golang/go#58106: die fast
 * rather than degrade for hours). */
#include "supervise/governor.h"

#include <math.h>

#include "config/size.h"
#include "supervise/actions.h"
#include "supervise/level.h"

#define LATENCY_INIT_USEC (50 * USEC_PER_MSEC) /* reply latency assumed before the first reply */
#define LATENCY_MIN_USEC (20 * USEC_PER_MSEC)
#define LATENCY_ALPHA 0.3
#define HEADROOM_PPM 30000        /* Go: the goal is max(3%, 1 MiB) below the limit */
#define HEADROOM_MIN (1024u * 1024)
#define RECLAIM_MIN (1024u * 1024) /* less reclaimable than this: the kernel has nothing to give */
#define DOWN_MARGIN_PPM 10000     /* de-escalate once usage is 1% of the limit under target */
#define RATE_TAU_USEC (500 * USEC_PER_MSEC) /* allocation-rate smoothing */
#define RATE_MIN_DT_USEC USEC_PER_MSEC     /* samples closer than this do not update the rate */

static const char *const step_names[_GOV_STEP_MAX] = { "trim", "collect", "reclaim", "shed" };
static const enum action_type step_action[_GOV_STEP_MAX] = { ACTION_TRIM, ACTION_COLLECT, ACTION_RECLAIM,
                                                             ACTION_SHED };

const char *gov_step_name(enum gov_step s)
{
        return (unsigned)s < _GOV_STEP_MAX ? step_names[s] : "exhausted";
}

void gov_init(struct governor *g, const struct policy *p, uint64_t limit)
{
        *g = (struct governor){ .p = p, .limit = limit, .step = GOV_TRIM, .below_since = USEC_INFINITY,
                                .exhausted_since = USEC_INFINITY, .latency = LATENCY_INIT_USEC,
                                .gave_up_t = USEC_INFINITY };
}

static bool level_allows(const struct policy *p, enum level l, enum action_type t)
{
        const struct policy_level *pl = &p->levels[l];
        if (l == LEVEL_OK || !pl->defined)
                return false;
        for (unsigned i = 0; i < pl->n_actions && i < POLICY_MAX_ACTIONS; i++)
                if (pl->actions[i].type == t)
                        return true;
        return false;
}

uint32_t gov_limiter_actions(const struct policy *p, enum level l, enum gov_step s)
{
        uint32_t m = 0;
        for (int st = GOV_TRIM; st <= (int)s && st < _GOV_STEP_MAX; st++)
                if (st != GOV_RECLAIM && level_allows(p, l, step_action[st]))
                        m |= ACTION_MASK(step_action[st]);
        return m;
}

static bool available(const struct governor *g, const struct gov_sample *s, enum gov_step st)
{
        if (!level_allows(g->p, s->level, step_action[st]))
                return false;
        if (st == GOV_RECLAIM)
                return s->can_reclaim && (s->reclaimable == SIZE_MAX_VALUE || s->reclaimable >= RECLAIM_MIN);
        return s->clients > 0;
}

/* The step in force: the first available one at or above the escalation reached; past the last
 * available one, the highest (and the governor is exhausted). _GOV_STEP_MAX: none available. */
static enum gov_step effective(const struct governor *g, const struct gov_sample *s, bool *ret_exhausted)
{
        for (int st = (int)g->step; st < _GOV_STEP_MAX; st++)
                if (available(g, s, (enum gov_step)st)) {
                        *ret_exhausted = false;
                        return (enum gov_step)st;
                }
        *ret_exhausted = true;
        for (int st = _GOV_STEP_MAX - 1; st >= 0; st--)
                if (available(g, s, (enum gov_step)st))
                        return (enum gov_step)st;
        return _GOV_STEP_MAX;
}

uint64_t gov_target(const struct governor *g, enum level l, uint64_t soft)
{
        uint64_t t = SIZE_MAX_VALUE;
        /* The lowest level's: a level entered higher (by pressure or prediction) asks more, not less. */
        for (int k = LEVEL_MODERATE; k <= (int)l && g->limit != SIZE_MAX_VALUE; k++) {
                const struct policy_level *pl = &g->p->levels[k];
                if (!pl->defined || !pl->usage_ppm)
                        continue;
                uint64_t thr = size_share(g->limit, pl->usage_ppm), margin = size_share(g->limit, g->p->hysteresis_ppm);
                uint64_t lt = thr > margin ? thr - margin : 0;
                if (lt < t)
                        t = lt;
        }
        if (soft != SIZE_MAX_VALUE) {
                uint64_t head = size_share(soft, HEADROOM_PPM);
                if (head < HEADROOM_MIN)
                        head = HEADROOM_MIN;
                uint64_t st = soft > head ? soft - head : 0;
                if (st < t)
                        t = st;
        }
        return t;
}

static void set_step(struct governor *g, enum gov_step st)
{
        g->step = st;
        g->short_streak = 0;
        if (st < _GOV_STEP_MAX && st > g->step_max)
                g->step_max = st;
}

void gov_reply(struct governor *g, bool reclaim, uint64_t asked, uint64_t freed, usec_t latency)
{
        if (!reclaim && latency != USEC_INFINITY)
                g->latency = (usec_t)((double)g->latency + ((double)latency - (double)g->latency) * LATENCY_ALPHA);
        g->freed_since += freed;
        if (asked == 0)
                return;
        if (freed * 2 >= asked) {
                /* Given back: whatever was exhausted is not any more, and a run of such answers takes
                 * the escalation a step back down (the cheaper step may do; if not, it comes back). */
                g->short_streak = 0;
                if (g->step >= _GOV_STEP_MAX)
                        g->step = GOV_SHED;
                g->exhausted_since = USEC_INFINITY;
                if (++g->good_streak >= GOV_GOOD_STREAK && g->step > GOV_TRIM) {
                        g->step = (enum gov_step)(g->step - 1);
                        g->good_streak = 0;
                }
                return;
        }
        g->good_streak = 0;
        /* Nothing at all: this step has nothing to give, go past it now; something, but short: twice. */
        if ((freed == 0 || ++g->short_streak >= GOV_SHORT_STREAK) && g->step < _GOV_STEP_MAX)
                set_step(g, (enum gov_step)(g->step + 1));
}

static void update_rate(struct governor *g, const struct gov_sample *s)
{
        usec_t dt = usec_sub(s->t, g->last_t);
        if (g->have_last && dt >= RATE_MIN_DT_USEC) {
                double inst = per_sec((double)s->usage - (double)g->last_usage + (double)g->freed_since, dt);
                if (inst < 0)
                        inst = 0;
                g->alloc_rate += (inst - g->alloc_rate) * (1.0 - exp(-(double)dt / (double)RATE_TAU_USEC));
        } else if (g->have_last) {
                return;
        }
        g->have_last = true;
        g->last_t = s->t;
        g->last_usage = s->usage;
        g->freed_since = 0;
}

void gov_step(struct governor *g, const struct gov_sample *s, struct gov_decision *ret)
{
        update_rate(g, s);
        const struct policy *p = g->p;
        struct gov_decision d = { .step = g->step };
        bool exhausted;
        enum gov_step eff = effective(g, s, &exhausted);
        uint64_t target = s->level == LEVEL_OK ? SIZE_MAX_VALUE : gov_target(g, s->level, s->soft);
        uint64_t down = g->limit == SIZE_MAX_VALUE ? 0 : size_share(g->limit, DOWN_MARGIN_PPM);

        d.target = target;

        if (g->given_up) {
                if (target != SIZE_MAX_VALUE && s->usage + down < target) {
                        g->given_up = false;
                        d.resume = true;
                        set_step(g, eff < _GOV_STEP_MAX ? eff : GOV_TRIM);
                } else {
                        d.step = g->step;
                        *ret = d;
                        return;
                }
        }

        /* Under target (or no level): de-escalate one step per dwell. */
        bool above = target != SIZE_MAX_VALUE && s->usage > target;
        if (!above) {
                g->exhausted_since = USEC_INFINITY;
                if (target == SIZE_MAX_VALUE || s->usage + down < target) {
                        if (g->below_since == USEC_INFINITY)
                                g->below_since = s->t;
                        if (g->step > GOV_TRIM && usec_sub(s->t, g->below_since) >= p->dwell_usec) {
                                enum gov_step to = g->step >= _GOV_STEP_MAX ? (eff < _GOV_STEP_MAX ? eff : GOV_SHED)
                                                                            : (enum gov_step)(g->step - 1);
                                g->step = to;
                                g->short_streak = 0;
                                g->good_streak = 0;
                                g->below_since = s->t;
                                eff = effective(g, s, &exhausted);
                        }
                } else {
                        g->below_since = USEC_INFINITY;
                }
        } else {
                g->below_since = USEC_INFINITY;
        }

        g->exhausted = exhausted;
        bool shed = eff == GOV_SHED && s->level != LEVEL_OK;
        if (shed != g->shedding) {
                g->shedding = shed;
                d.shed_changed = true;
        }
        d.shedding = g->shedding;
        d.step = eff;

        if (above && eff < _GOV_STEP_MAX) {
                uint64_t excess = s->usage - target;
                usec_t lat = g->latency > LATENCY_MIN_USEC ? g->latency : LATENCY_MIN_USEC;
                double rate = g->alloc_rate > s->rate ? g->alloc_rate : s->rate;
                double growth = rate > 0 ? at_rate(rate, lat) : 0;
                uint64_t need = excess + (growth > 0 && growth < 1e18 ? (uint64_t)growth : 0);
                uint64_t fresh = need > s->outstanding ? need - s->outstanding : 0;
                uint32_t lim = gov_limiter_actions(p, s->level, eff);
                if (lim && s->clients > 0 && s->askable > 0 && fresh >= GOV_MIN_ASK) {
                        d.limiter = lim;
                        d.limiter_goal = fresh;
                }
                if (eff >= GOV_RECLAIM && available(g, s, GOV_RECLAIM) && !s->reclaim_running &&
                    excess >= GOV_MIN_ASK) {
                        uint64_t r = need;
                        if (s->reclaimable != SIZE_MAX_VALUE && r > s->reclaimable)
                                r = s->reclaimable;
                        d.reclaim = r;
                }
        } else if (s->entered && eff < _GOV_STEP_MAX && s->clients > 0 && s->askable > 0) {
                /* Entered by pressure or prediction, usage under target: one ask for 5%. */
                uint32_t lim = gov_limiter_actions(p, s->level, eff);
                if (lim) {
                        d.limiter = lim;
                        d.limiter_goal = s->usage / 20 > GOV_MIN_ASK ? s->usage / 20 : GOV_MIN_ASK;
                }
        }

        /* Nothing left to ask and parked at the soft limit: after giveup, let memory.max act. */
        bool at_soft = level_at_high(s->usage, s->soft);
        if (above && g->exhausted && at_soft && p->giveup_usec) {
                if (g->exhausted_since == USEC_INFINITY)
                        g->exhausted_since = s->t;
                if (usec_sub(s->t, g->exhausted_since) >= p->giveup_usec) {
                        g->given_up = true;
                        g->gave_up_t = s->t;
                        g->giveups++;
                        g->exhausted_since = USEC_INFINITY;
                        d.giveup = true;
                        d.limiter = 0;
                        d.reclaim = 0;
                }
        } else {
                g->exhausted_since = USEC_INFINITY;
        }
        *ret = d;
}
