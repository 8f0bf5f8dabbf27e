/* memlimit_law: the governor's control law (memlimit_law.h), shared by memrun and libmemlimit. */
#include "memlimit_law.h"

#define LATENCY_INIT_US 50000u   /* reply latency assumed before the first reply */
#define LATENCY_MIN_US 2000u     /* a faster reply still waits for a CPU on a busy machine */
#define LATENCY_ALPHA 0.3
#define RATE_TAU_US 500000.0     /* allocation-rate smoothing */
#define RATE_RISE_TAU_US 50000.0 /* ... of the fast-rising one (alloc_fast) on its way up */
#define RATE_MIN_DT_US 1000u     /* samples closer than this do not update the rate */
#define PERIOD_MAX_US 100000u    /* a slower sampler is not holding: its period says nothing */

static uint64_t share(uint64_t v, uint32_t ppm)
{
        return v / 1000000 * ppm + v % 1000000 * ppm / 1000000;
}

static uint64_t bytes_at(double rate, uint64_t us)
{
        double b = rate * (double)us / 1e6;
        return b > 0 && b < 1e18 ? (uint64_t)b : 0;
}

void law_init(struct law *g, const struct law_config *c)
{
        *g = (struct law){ .c = *c, .step = LAW_TRIM, .below_since = LAW_NONE, .exhausted_since = LAW_NONE,
                           .latency = LATENCY_INIT_US, .gave_up_t = LAW_NONE, .detached_t = LAW_NONE,
                           .grace_t = LAW_NONE, .low_t = LAW_NONE, .low = LAW_NONE, .low_prev = LAW_NONE,
                           .slack_off_t = LAW_NONE };
}

/* What the program allocates before an ask lands: until the sample that sees it (one period), and
 * the reply's measured latency after that. The period is the sampler's own (on v1 it shrinks as the
 * program nears the soft limit), so the latency is not floored at a period as well: that held a cache
 * answering in 0.4 ms at 0.94 of the soft limit at 500 MB/s. */
static uint64_t growth(const struct law *g, double rate)
{
        double r = g->alloc_rate > rate ? g->alloc_rate : rate;
        uint64_t lat = g->latency > LATENCY_MIN_US ? g->latency : LATENCY_MIN_US;
        return bytes_at(r, lat + g->period);
}

uint64_t law_setpoint(const struct law *g, uint64_t soft, double rate, uint64_t *ret_headroom)
{
        uint64_t head = 0, sp = LAW_NONE;
        if (soft != LAW_NONE) {
                head = share(soft, LAW_HEADROOM_PPM);
                if (head < LAW_HEADROOM_MIN)
                        head = LAW_HEADROOM_MIN;
                uint64_t grow = growth(g, rate), cap = share(soft, LAW_HEADROOM_MAX_PPM);
                if (grow > head)
                        head = grow > cap && cap > head ? cap : grow;
                sp = soft > head ? soft - head : 0;
        }
        if (g->c.target < sp)
                sp = g->c.target;
        if (ret_headroom)
                *ret_headroom = head;
        return sp;
}

uint32_t law_client_steps(uint32_t step_bits, enum law_step s)
{
        uint32_t m = 0;
        for (int st = LAW_TRIM; st <= (int)s && st < LAW_STEPS; st++)
                if (st != LAW_RECLAIM && (step_bits & LAW_BIT(st)))
                        m |= LAW_BIT(st);
        return m;
}

/* The reclaim step counts the kernel's slack even in the second after a reclaim of it came back
 * short (when ask() does not reclaim it, slack_now()): short is not nothing, and treating it as gone
 * there would take a program whose clients answer short to shedding on that 1 s timer and back, or
 * to a give-up as having nothing to give. */
static bool available(const struct law_sample *s, enum law_step st)
{
        if (!(s->steps & LAW_BIT(st)))
                return false;
        if (st == LAW_RECLAIM)
                return s->can_reclaim &&
                       (s->reclaimable == LAW_NONE || s->reclaimable + s->slack >= LAW_RECLAIM_MIN);
        return s->clients > 0;
}

/* The step in force: the first available one at or above the escalation reached; past the last
 * available one, the highest (and the law is exhausted). LAW_STEPS: none available. */
static enum law_step effective(const struct law *g, const struct law_sample *s, bool *ret_exhausted)
{
        for (int st = (int)g->step; st < LAW_STEPS; st++)
                if (available(s, (enum law_step)st)) {
                        *ret_exhausted = false;
                        return (enum law_step)st;
                }
        *ret_exhausted = true;
        for (int st = LAW_STEPS - 1; st >= 0; st--)
                if (available(s, (enum law_step)st))
                        return (enum law_step)st;
        return LAW_STEPS;
}

static void set_step(struct law *g, enum law_step st)
{
        g->step = st;
        g->short_streak = 0;
        if (st < LAW_STEPS && st > g->step_max)
                g->step_max = st;
}

void law_forget(struct law *g)
{
        g->step = LAW_TRIM;
        g->short_streak = g->good_streak = 0;
        g->exhausted = g->empty = false;
        g->empty_streak = 0;
        g->exhausted_since = LAW_NONE;
        g->have_last = false;
        g->freed_since = 0;
        g->alloc_rate = g->alloc_fast = 0;
        g->low_t = g->low = g->low_prev = LAW_NONE;
}

void law_reply(struct law *g, bool reclaim, uint64_t asked, uint64_t freed, bool deferred, uint64_t latency_us)
{
        if (!reclaim && latency_us != LAW_NONE)
                g->latency = (uint64_t)((double)g->latency + ((double)latency_us - (double)g->latency) * LATENCY_ALPHA);
        g->freed_since += freed;
        if (asked == 0)
                return;
        /* Shedding gives back over time, as work in flight completes: its empty answer proves nothing.
         * An ask put off for the client's CPU budget was not tried: it says nothing either way (an
         * empty streak around it stands). */
        if (!(deferred && freed == 0)) {
                g->empty = freed == 0 && !g->shedding;
                g->empty_streak = g->empty ? g->empty_streak + 1 : 0;
        }
        if (freed * 2 >= asked) {
                /* Given back: whatever was exhausted is not any more, and a run of such answers takes
                 * the escalation a step back down (the cheaper step may do; if not, it comes back). */
                g->short_streak = 0;
                if (g->step >= LAW_STEPS)
                        g->step = LAW_SHED;
                g->exhausted_since = LAW_NONE;
                if (++g->good_streak >= LAW_GOOD_STREAK && g->step > LAW_TRIM) {
                        g->step = (enum law_step)(g->step - 1);
                        g->good_streak = 0;
                }
                return;
        }
        g->good_streak = 0;
        /* Nothing at all: this step has nothing to give, go past it now; something (or put off), but
         * short: twice. */
        if (((freed == 0 && !deferred) || ++g->short_streak >= LAW_SHORT_STREAK) && g->step < LAW_STEPS)
                set_step(g, (enum law_step)(g->step + 1));
}

void law_slack_reply(struct law *g, uint64_t asked, uint64_t freed)
{
        g->freed_since += freed;
        g->slack_off_t = freed * 2 < asked ? g->last_t : LAW_NONE;
}

static void update_rate(struct law *g, const struct law_sample *s)
{
        uint64_t dt = s->t > g->last_t ? s->t - g->last_t : 0;
        if (g->have_last && dt < RATE_MIN_DT_US)
                return;
        if (g->have_last) {
                g->period = dt < PERIOD_MAX_US ? dt : PERIOD_MAX_US;
                double inst = ((double)s->usage - (double)g->last_usage + (double)g->freed_since) * 1e6 / (double)dt;
                if (inst < 0)
                        inst = 0;
                /* 1 - exp(-dt/tau), without libm: dt/(tau+dt) has the same limits and slope at 0. */
                g->alloc_rate += (inst - g->alloc_rate) * ((double)dt / (RATE_TAU_US + (double)dt));
                double tau = inst > g->alloc_fast ? RATE_RISE_TAU_US : RATE_TAU_US;
                g->alloc_fast += (inst - g->alloc_fast) * ((double)dt / (tau + (double)dt));
        }
        g->have_last = true;
        g->last_t = s->t;
        g->last_usage = s->usage;
        g->freed_since = 0;
}

/* The lowest usage of the last one to two LAW_RISE_WINDOW_US: whether usage is rising. */
static void update_low(struct law *g, const struct law_sample *s)
{
        if (g->low_t == LAW_NONE || s->t - g->low_t >= LAW_RISE_WINDOW_US) {
                g->low_prev = g->low;
                g->low = s->usage;
                g->low_t = s->t;
        } else if (s->usage < g->low) {
                g->low = s->usage;
        }
}

/* Usage rose by LAW_RISE_MIN over its lowest in the last one to two windows. */
static bool rising(const struct law *g, const struct law_sample *s)
{
        uint64_t low = g->low < g->low_prev ? g->low : g->low_prev;
        return low != LAW_NONE && s->usage >= low + LAW_RISE_MIN;
}

/* Under the setpoint for a dwell: one escalation step down. */
static void step_down(struct law *g, const struct law_sample *s, uint64_t sp, enum law_step *eff, bool *exhausted)
{
        g->exhausted_since = LAW_NONE;
        if (sp != LAW_NONE && s->usage + g->c.down_margin >= sp) {
                g->below_since = LAW_NONE;
                return;
        }
        if (g->below_since == LAW_NONE)
                g->below_since = s->t;
        if (g->step > LAW_TRIM && s->t - g->below_since >= g->c.dwell_us) {
                g->step = g->step >= LAW_STEPS ? (*eff < LAW_STEPS ? *eff : LAW_SHED) : (enum law_step)(g->step - 1);
                g->short_streak = 0;
                g->good_streak = 0;
                g->empty = false;
                g->empty_streak = 0;
                g->below_since = s->t;
                *eff = effective(g, s, exhausted);
        }
}

/* What the kernel frees on its own under reclaim (s->slack), unless the last reclaim of it freed
 * less than half of what it was asked within LAW_SLACK_OFF_US. */
static uint64_t slack_now(const struct law *g, const struct law_sample *s)
{
        if (!s->can_reclaim || s->slack < LAW_RECLAIM_MIN || !(s->steps & LAW_BIT(LAW_RECLAIM)))
                return 0;
        if (g->slack_off_t != LAW_NONE && s->t - g->slack_off_t < LAW_SLACK_OFF_US)
                return 0;
        return s->slack;
}

/* Over the setpoint: the kernel's slack to memory.reclaim first, the clients asked for the rest
 * less what they were asked and have not answered yet. */
static void ask(const struct law *g, const struct law_sample *s, enum law_step eff, uint64_t sp, struct law_decision *d)
{
        uint64_t excess = s->usage - sp;
        uint64_t slack = slack_now(g, s);
        if (slack > excess)
                slack = excess;
        if (slack && !s->reclaim_running)
                d->reclaim = slack;
        uint64_t fresh = excess > s->outstanding + slack ? excess - s->outstanding - slack : 0;
        uint32_t bits = law_client_steps(s->steps, eff);
        if (bits && s->clients > 0 && s->askable > 0 && fresh >= LAW_MIN_ASK) {
                d->ask = bits;
                d->goal = fresh;
        }
        if (eff >= LAW_RECLAIM && available(s, LAW_RECLAIM) && !s->reclaim_running && excess >= LAW_MIN_ASK) {
                uint64_t r = excess;
                if (s->reclaimable != LAW_NONE && r > s->reclaimable + slack)
                        r = s->reclaimable + slack;
                d->reclaim = r;
        }
}

/* Give up when there is provably nothing to give and usage heads for the soft limit (at once: the
 * kernel's throttle there would only delay the end), or after giveup_us at the soft limit when the
 * answers are short but not empty. Heading for it: at it (within 2%), or rising (by LAW_RISE_MIN over
 * its lowest of the last 0.25-0.5 s) at a rate that gets there within giveup_us. The rate alone is not
 * enough: it decays with RATE_TAU_US, and a program that grew fast and then stopped short of the
 * soft limit (its library gone, nothing left to ask) would be given up on while standing still. */
static bool give_up(struct law *g, const struct law_sample *s, enum law_step eff, bool above, bool *ret_at_once)
{
        bool at_soft = s->soft != LAW_NONE && s->usage + s->soft / 50 >= s->soft;
        if (!above || !g->exhausted || !g->c.giveup_us || s->soft == LAW_NONE) {
                g->exhausted_since = LAW_NONE;
                return false;
        }
        /* Twice: a client that measures what went back (the Go and Python clients read the runtime or
         * RSS) can read one empty answer while the program allocates beside it. */
        bool empty = eff == LAW_STEPS || (g->empty && g->empty_streak >= LAW_EMPTY_STREAK);
        /* The last client just left: most often the program is exiting and its memory about to go.
         * No give-up for the grace; the timed one's clock keeps running. */
        bool grace = s->clients == 0 && g->detached_t != LAW_NONE && s->t - g->detached_t < LAW_DETACH_GRACE_US;
        uint64_t to_soft = s->soft > s->usage ? s->soft - s->usage : 0;
        double rate = g->alloc_rate > s->rate ? g->alloc_rate : s->rate;
        if (empty && (at_soft || (rising(g, s) && bytes_at(rate, g->c.giveup_us) >= to_soft))) {
                if (grace)
                        return false;
                *ret_at_once = true;
                return true;
        }
        if (!at_soft) {
                g->exhausted_since = LAW_NONE;
                return false;
        }
        if (g->exhausted_since == LAW_NONE)
                g->exhausted_since = s->t;
        return !grace && s->t - g->exhausted_since >= g->c.giveup_us;
}

void law_step(struct law *g, const struct law_sample *s, struct law_decision *ret)
{
        update_rate(g, s);
        update_low(g, s);
        if (g->last_clients && !s->clients) {
                if (g->grace_t == LAW_NONE || s->t - g->grace_t >= LAW_DETACH_REGRACE_US)
                        g->detached_t = g->grace_t = s->t;
        } else if (s->clients) {
                g->detached_t = LAW_NONE;
        }
        g->last_clients = s->clients;
        struct law_decision d = { .step = g->step };
        bool exhausted;
        enum law_step eff = effective(g, s, &exhausted);
        uint64_t sp = law_setpoint(g, s->soft, s->rate, &d.headroom);
        d.setpoint = sp;

        if (g->given_up) {
                if (sp == LAW_NONE || s->usage + g->c.down_margin >= sp) {
                        *ret = d;
                        return;
                }
                g->given_up = false;
                g->empty = false;
                g->empty_streak = 0;
                d.resume = true;
                set_step(g, eff < LAW_STEPS ? eff : LAW_TRIM);
        }

        bool above = sp != LAW_NONE && s->usage > sp;
        if (above)
                g->below_since = LAW_NONE;
        else
                step_down(g, s, sp, &eff, &exhausted);

        g->exhausted = exhausted;
        bool shed = eff == LAW_SHED;
        if (shed != g->shedding) {
                g->shedding = shed;
                d.shed_changed = true;
        }
        d.shedding = g->shedding;
        d.step = eff;

        if (above && eff < LAW_STEPS) {
                ask(g, s, eff, sp, &d);
        } else if (s->entered && eff < LAW_STEPS && s->clients > 0 && s->askable > 0) {
                /* Entered by pressure or prediction, usage under the setpoint: one ask for 5%. */
                uint32_t bits = law_client_steps(s->steps, eff);
                if (bits) {
                        d.ask = bits;
                        d.goal = s->usage / 20 > LAW_MIN_ASK ? s->usage / 20 : LAW_MIN_ASK;
                }
        }

        if (give_up(g, s, eff, above, &d.at_once)) {
                g->given_up = true;
                g->gave_up_t = s->t;
                g->giveups++;
                g->exhausted_since = LAW_NONE;
                d.giveup = true;
                d.ask = 0;
                d.goal = 0;
                d.reclaim = 0;
        }
        *ret = d;
}
