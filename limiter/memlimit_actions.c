/* memlimit_actions: what a level asks of the process: the shedding flag and level handlers, cache
 * trimming toward a goal, collectors then malloc_trim, under a CPU budget and with futile callbacks
 * skipped. Runs in the dispatching thread only (one at a time), allocates nothing. */
#include <malloc.h>
#include <time.h>

#include "memlimit_int.h"

_Static_assert(MEMLIMIT_OK == MEMLIMIT_PROTO_NORMAL && MEMLIMIT_MODERATE == MEMLIMIT_PROTO_MODERATE &&
                       MEMLIMIT_HIGH == MEMLIMIT_PROTO_HIGH && MEMLIMIT_CRITICAL == MEMLIMIT_PROTO_CRITICAL &&
                       MEMLIMIT_LEVEL_MAX == MEMLIMIT_PROTO_LEVEL_MAX,
               "library levels are the wire levels");

void memlimit__budget_init(struct ml_budget *b, unsigned pct, uint64_t now_ns)
{
        b->pct = pct ? (pct > 100 ? 100 : pct) : 50;
        b->fill_ns = 0;
        b->last_ns = now_ns;
}

/* Drain what the elapsed wall time earned, then: is there room for another callback? At 100% the
 * budget never stops anything. */
bool memlimit__budget_allows(struct ml_budget *b, uint64_t now_ns)
{
        if (now_ns > b->last_ns) {
                uint64_t earned = (now_ns - b->last_ns) / 100 * b->pct;
                b->fill_ns = b->fill_ns > earned ? b->fill_ns - earned : 0;
                b->last_ns = now_ns;
        }
        return b->pct >= 100 || b->fill_ns <= ML_BUDGET_WINDOW_NS / 100 * b->pct;
}

void memlimit__budget_charge(struct ml_budget *b, uint64_t cpu_ns)
{
        b->fill_ns = __builtin_add_overflow(b->fill_ns, cpu_ns, &b->fill_ns) ? UINT64_MAX : b->fill_ns;
}

void memlimit__apply_level(enum memlimit_level level, uint32_t actions)
{
        struct ml_state *g = &memlimit__g;
        int old = atomic_load_explicit(&g->level, memory_order_relaxed);
        bool old_shed = atomic_load_explicit(&g->shedding, memory_order_relaxed), shed = old_shed;

        /* Every LEVEL states the shedding it wants: memrun's governor keeps SHED in its asks while it
         * sheds, and sends one without it when shedding ends. */
        shed = (actions & MEMLIMIT_ACT_SHED) != 0;
        g->shed_level = shed ? (int)level : MEMLIMIT_LEVEL_MAX;
        atomic_store_explicit(&g->level, (int)level, memory_order_release);
        atomic_store_explicit(&g->shedding, shed, memory_order_release);

        if ((int)level != g->futile_level) {
                /* "Until the level changes": a new level gives every callback another chance. */
                for (unsigned i = 0; i < MEMLIMIT_MAX_CACHES; i++)
                        g->caches[i].futile = 0;
                for (unsigned i = 0; i <= MEMLIMIT_MAX_COLLECTORS; i++)
                        g->collectors[i].futile = 0;
                g->futile_level = (int)level;
        }
        if ((int)level == old && shed == old_shed)
                return;
        memlimit__debug("level %s -> %s%s", memlimit_proto_level_name((uint32_t)old),
                        memlimit_proto_level_name((uint32_t)level), shed ? ", shedding" : "");
        unsigned n = atomic_load_explicit(&g->n_handlers, memory_order_acquire);
        for (unsigned i = 0; i < n; i++)
                g->handlers[i].fn.level(level, g->handlers[i].ctx);
}

struct ml_run {
        enum memlimit_level level;
        uint64_t remaining;       /* of the goal; meaningful when goal != 0 */
        uint64_t goal;
        unsigned ran, futile_skips;
        bool budget_skip;
        uint64_t freed, usec;
};

/* Run one callback if it is not futile and the budget allows. false: stop (budget spent). */
static bool run_one(struct ml_run *run, struct ml_callback *c, size_t (*trim)(void))
{
        struct ml_state *g = &memlimit__g;

        uint64_t w0 = memlimit__now_ns(CLOCK_MONOTONIC);
        if (c->futile >= ML_FUTILE_SKIP) {
                /* Skipped, but not for ever: a cache that was empty may have filled again. */
                if (w0 - c->futile_ns < ML_FUTILE_RETRY_NS) {
                        run->futile_skips++;
                        return true;
                }
                c->futile = ML_FUTILE_SKIP - 1;
        }
        if (!memlimit__budget_allows(&g->budget, w0)) {
                run->budget_skip = true;
                return false;
        }
        uint64_t c0 = memlimit__now_ns(CLOCK_THREAD_CPUTIME_ID);
        uint64_t ask = run->goal ? run->remaining : 0;
        size_t freed = trim ? trim() : c->fn(run->level, ask > SIZE_MAX ? SIZE_MAX : (size_t)ask, c->ctx);
        uint64_t c1 = memlimit__now_ns(CLOCK_THREAD_CPUTIME_ID), w1 = memlimit__now_ns(CLOCK_MONOTONIC);

        memlimit__budget_charge(&g->budget, c1 > c0 ? c1 - c0 : 0);
        run->ran++;
        run->usec += (w1 > w0 ? w1 - w0 : 0) / 1000;
        c->futile = freed ? 0 : c->futile + 1;
        if (c->futile == ML_FUTILE_SKIP)
                c->futile_ns = w1;
        run->freed += freed;
        run->remaining = run->remaining > freed ? run->remaining - freed : 0;
        memlimit__debug("%s %s freed %zu bytes (asked %llu)%s", trim ? "collect" : "callback", c->name, freed,
                        (unsigned long long)ask, freed ? "" : ", futile");
        return true;
}

/* The allocator's release (malloc_trim(0) for glibc's), counted as the drop in resident memory it
 * caused (two reads of /proc/self/statm): the only figure that says what went back to the kernel. */
size_t memlimit__heap_trim(void)
{
        uint64_t before = 0, after = 0;
        memlimit__heap_detect(); /* done by memlimit_init already: no allocation here then */
        bool ok = memlimit__rss(&before) == 0;
        ok = memlimit__heap_release() && ok;
        ok = ok && memlimit__rss(&after) == 0;
        return ok && before > after ? (size_t)(before - after) : 0;
}

/* Whether the trim path should hand the free heap back now (resident memory rss). */
static bool heap_trim_due(uint64_t rss)
{
        struct ml_state *g = &memlimit__g;
        uint64_t soft = atomic_load(&g->limit_soft), now = memlimit__now_ns(CLOCK_MONOTONIC);
        bool urgent = soft == UINT64_MAX || rss + soft / 50 >= soft;
        if (!urgent && g->heap_trim_ns && now - g->heap_trim_ns < ML_HEAP_TRIM_GAP_NS)
                return false;
        g->heap_trim_ns = now;
        return true;
}

/* Whether the heap the caches freed on earlier asks should go back before they are asked again: a
 * headroom's worth of it (3% of the soft limit, the governor's), or the gap since the last malloc_trim
 * passed, or usage is near the soft limit. Not at every ask: malloc_trim gives back every free page of
 * every arena, the holes a cache reuses in place included, and each is faulted in again. */
static bool held_due(uint64_t rss)
{
        struct ml_state *g = &memlimit__g;
        uint64_t soft = atomic_load(&g->limit_soft);
        if (g->heap_held < ML_HEAP_HELD_MIN)
                return false;
        if (soft != UINT64_MAX && g->heap_held >= soft / 1000000 * LAW_HEADROOM_PPM)
                return true;
        return heap_trim_due(rss);
}

/* The trim path hands back the heap its caches freed on earlier asks: the drop in resident memory
 * (memlimit__heap_trim) counts as freed, against the goal. *before moves down by it. */
static void held_release(struct ml_run *run, uint64_t *before)
{
        struct ml_state *g = &memlimit__g;
        uint64_t held = g->heap_held, drop = memlimit__heap_trim();
        g->heap_trim_ns = memlimit__now_ns(CLOCK_MONOTONIC);
        g->heap_held = 0;
        memlimit__debug("malloc held %llu bytes the caches freed before: released, resident memory fell %llu",
                        (unsigned long long)held, (unsigned long long)drop);
        run->freed += drop;
        run->remaining = run->remaining > drop ? run->remaining - drop : 0;
        *before = *before > drop ? *before - drop : 0;
}

static void finish(struct ml_result *r, uint32_t action, const struct ml_run *run, bool any)
{
        *r = (struct ml_result){ .action = action, .callbacks = run->ran, .freed = run->freed, .usec = run->usec };
        if (!any)
                r->flags |= MEMLIMIT_RESULT_NO_HANDLER;
        if (run->budget_skip)
                r->flags |= MEMLIMIT_RESULT_SKIPPED_BUDGET;
        if (run->ran == 0 && run->futile_skips > 0)
                r->flags |= MEMLIMIT_RESULT_SKIPPED_FUTILE;
        if (run->ran > 0 && run->freed == 0)
                r->flags |= MEMLIMIT_RESULT_FUTILE;
}

unsigned memlimit__run_actions(enum memlimit_level level, uint32_t actions, uint64_t goal, struct ml_result results[3])
{
        struct ml_state *g = &memlimit__g;
        unsigned k = 0;

        if (actions & MEMLIMIT_ACT_TRIM) {
                /* Each cache in registration order is asked for what is still missing, until the goal is
                 * met; with no goal, every cache is asked to free what it can spare. */
                struct ml_run run = { .level = level, .goal = goal, .remaining = goal };
                unsigned n = atomic_load_explicit(&g->n_caches, memory_order_acquire);
                bool heap = !(g->flags & MEMLIMIT_F_NO_MALLOC_TRIM);
                uint64_t before = 0, after = 0;
                heap = heap && n > 0 && memlimit__rss(&before) == 0;
                /* What the caches freed on earlier asks and malloc still holds: memrun asks again
                 * because usage did not move. Once that is a headroom's worth (or due anyway), hand
                 * that heap back first and ask the caches only for what is still missing; trimming
                 * them again and again would free into the same heap, and a cache would shrink by
                 * every ask while usage stood still. */
                if (heap && goal && held_due(before))
                        held_release(&run, &before);
                uint64_t by_caches = run.freed;
                for (unsigned i = 0; i < n && !(goal && run.remaining == 0); i++)
                        if (!run_one(&run, &g->caches[i], NULL))
                                break;
                by_caches = run.freed - by_caches;
                /* What a cache frees with free() may stay in malloc's heap (below its top, or under a
                 * raised mmap threshold): if resident memory fell by less than half of it, hand the free
                 * heap pages back, or trimming frees nothing the kernel sees. At once near the soft
                 * limit; under it at most once per ML_HEAP_TRIM_GAP_NS: malloc_trim holds each arena's
                 * lock while it madvises, and the next inserts fault the pages back in, where a cache
                 * answering small asks near the setpoint would have reused that heap in place. What
                 * stays held is counted (heap_held) for the next ask. */
                if (heap && by_caches && memlimit__rss(&after) == 0) {
                        uint64_t seen = before > after ? before - after : 0;
                        if (seen < by_caches / 2 && heap_trim_due(after)) {
                                (void)memlimit__heap_release();
                                g->heap_held = 0;
                        } else if (seen < by_caches) {
                                g->heap_held += by_caches - seen;
                        }
                }
                finish(&results[k++], MEMLIMIT_ACT_TRIM, &run, n > 0);
        }
        if (actions & MEMLIMIT_ACT_COLLECT) {
                /* Every collector runs (what they free mostly returns to malloc, not the kernel), then
                 * malloc_trim hands the free heap back. */
                struct ml_run run = { .level = level, .goal = goal, .remaining = goal };
                unsigned n = atomic_load_explicit(&g->n_collectors, memory_order_acquire);
                bool go = true, trim = !(g->flags & MEMLIMIT_F_NO_MALLOC_TRIM);
                for (unsigned i = 0; i < n && go; i++)
                        go = run_one(&run, &g->collectors[i], NULL);
                if (go && trim) {
                        (void)run_one(&run, &g->collectors[MEMLIMIT_MAX_COLLECTORS], memlimit__heap_trim);
                        g->heap_held = 0;
                }
                finish(&results[k++], MEMLIMIT_ACT_COLLECT, &run, n > 0 || trim);
        }
        if (actions & MEMLIMIT_ACT_SHED) {
                /* The flag went up in memlimit__apply_level; shedding frees nothing by itself. */
                results[k++] = (struct ml_result){ .action = MEMLIMIT_ACT_SHED,
                                                   .callbacks = atomic_load_explicit(&g->n_handlers, memory_order_acquire) };
        }
        return k;
}
