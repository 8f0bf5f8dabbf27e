/* governor: memrun's policy fed to the control law (governor.h, limiter/memlimit_law.h). */
#include "supervise/governor.h"

#include "config/size.h"
#include "supervise/actions.h"

#define DOWN_MARGIN_PPM 10000     /* de-escalate once usage is 1% of the limit under the setpoint */

static const char *const step_names[_GOV_STEP_MAX] = { "trim", "collect", "reclaim", "shed" };
static const enum action_type step_action[_GOV_STEP_MAX] = { ACTION_TRIM, ACTION_COLLECT, ACTION_RECLAIM,
                                                             ACTION_SHED };

const char *gov_step_name(enum gov_step s)
{
        return (unsigned)s < _GOV_STEP_MAX ? step_names[s] : "exhausted";
}

uint64_t gov_policy_target(const struct policy *p, uint64_t limit)
{
        if (p->target_ppm)
                return limit == SIZE_MAX_VALUE ? SIZE_MAX_VALUE : size_share(limit, p->target_ppm);
        return p->target;
}

static bool lists(const struct policy_level *pl, enum action_type t)
{
        for (unsigned i = 0; pl->defined && i < pl->n_actions && i < POLICY_MAX_ACTIONS; i++)
                if (pl->actions[i].type == t)
                        return true;
        return false;
}

/* The steps the policy allows at level l: the governor's vocabulary (trim, collect, reclaim) from any
 * level, since it holds the setpoint whatever the level; shedding refuses work, so only where l lists it. */
static uint32_t policy_steps(const struct policy *p, enum level l)
{
        uint32_t m = 0;
        for (int k = LEVEL_MODERATE; k < _LEVEL_MAX; k++)
                for (int st = GOV_TRIM; st < GOV_SHED; st++)
                        if (lists(&p->levels[k], step_action[st]))
                                m |= LAW_BIT(st);
        if (l != LEVEL_OK && lists(&p->levels[l], ACTION_SHED))
                m |= LAW_BIT(GOV_SHED);
        return m;
}

/* The law's knobs from the policy and the hard limit in force (shares follow the limit). */
static struct law_config law_config_of(const struct policy *p, uint64_t limit)
{
        return (struct law_config){
                .target = gov_policy_target(p, limit), .giveup_us = p->giveup_usec, .dwell_us = p->dwell_usec,
                .down_margin = limit == SIZE_MAX_VALUE ? 0 : size_share(limit, DOWN_MARGIN_PPM),
        };
}

void gov_init(struct governor *g, const struct policy *p, uint64_t limit)
{
        struct law_config c = law_config_of(p, limit);
        *g = (struct governor){ .p = p, .limit = limit };
        law_init(&g->law, &c);
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                g->active |= policy_steps(p, (enum level)l) != 0;
}

uint32_t gov_limiter_actions(const struct policy *p, enum level l, enum gov_step s)
{
        uint32_t bits = law_client_steps(policy_steps(p, l), (enum law_step)s), m = 0;
        for (int st = GOV_TRIM; st < _GOV_STEP_MAX; st++)
                if (bits & LAW_BIT(st))
                        m |= ACTION_MASK(step_action[st]);
        return m;
}

uint64_t gov_setpoint(const struct governor *g, uint64_t soft, double rate)
{
        return law_setpoint(&g->law, soft, rate, NULL);
}

void gov_step(struct governor *g, const struct gov_sample *s, struct gov_decision *ret)
{
        /* The limit may have changed (memrunctl set): the share-based knobs follow it. */
        g->law.c = law_config_of(g->p, g->limit);
        struct law_sample ls = {
                .t = s->t, .usage = s->usage, .soft = s->soft, .steps = policy_steps(g->p, s->level),
                .entered = s->entered, .rate = s->rate, .clients = s->clients, .askable = s->askable,
                .outstanding = s->outstanding, .can_reclaim = s->can_reclaim, .reclaim_running = s->reclaim_running,
                .reclaimable = s->reclaimable, .slack = s->slack,
        };
        struct law_decision d;
        law_step(&g->law, &ls, &d);
        uint32_t m = 0;
        for (int st = GOV_TRIM; st < _GOV_STEP_MAX; st++)
                if (d.ask & LAW_BIT(st))
                        m |= ACTION_MASK(step_action[st]);
        *ret = (struct gov_decision){
                .limiter = m, .limiter_goal = d.goal, .reclaim = d.reclaim, .shed_changed = d.shed_changed,
                .shedding = d.shedding, .giveup = d.giveup, .at_once = d.at_once, .resume = d.resume, .step = (enum gov_step)d.step,
                .setpoint = d.setpoint, .headroom = d.headroom,
        };
}

void gov_reply(struct governor *g, bool reclaim, uint64_t asked, uint64_t freed, bool deferred, usec_t latency)
{
        if (freed == 0 && g->deaf_until && now_usec() < g->deaf_until)
                return;
        law_reply(&g->law, reclaim, asked, freed, deferred, latency == USEC_INFINITY ? LAW_NONE : latency);
}

void gov_slack_reply(struct governor *g, uint64_t asked, uint64_t freed)
{
        law_slack_reply(&g->law, asked, freed);
}

void gov_thawed(struct governor *g, usec_t now, usec_t ask_timeout)
{
        law_forget(&g->law);
        g->deaf_until = usec_add_sat(now, 2 * ask_timeout);
}
