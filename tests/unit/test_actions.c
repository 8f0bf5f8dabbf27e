/* test_actions: runner/supervise/actions.c through its seams -- a fake limiter (struct limiter_ops), a fake v2
 * sandbox directory (memory.high, memory.stat, memory.reclaim as plain files) and a fake /proc whose
 * status file says which signals the command catches. The governor's asks, its give-up and resume,
 * the fire-once ladder, and signals that are never sent to a process that would die of them. */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "config/policy.h"
#include "config/size.h"
#include "supervise/actions.h"
#include "supervise/report.h"
#include "util.h"

#define MiB (1024ull * 1024)
#define LIMIT (128 * MiB)
#define SOFT (LIMIT / 10 * 9)
/* The tests speak seconds; actions take usec_t. */
#define SEC(x) ((usec_t)((x) * 1e6 + 0.5))

struct fake_limiter {
        unsigned broadcasts, asks, clients;
        uint32_t last_actions;
        uint64_t last_goal, outstanding;
        enum level last_level;
        uint32_t seq;
};

/* What the fake limiter was last told, by broadcast or ask alike. */
static int fake_record(struct fake_limiter *f, enum level level, uint32_t actions, uint64_t goal, uint32_t *ret_seq)
{
        f->last_level = level;
        f->last_actions = actions;
        f->last_goal = goal;
        if (ret_seq)
                *ret_seq = ++f->seq;
        return (int)f->clients;
}

static int fake_broadcast(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage,
                          uint32_t *ret_seq)
{
        (void)usage;
        struct fake_limiter *f = ctx;
        f->broadcasts++;
        return fake_record(f, level, actions, goal, ret_seq);
}

static int fake_ask(void *ctx, enum level level, uint32_t actions, uint64_t goal, uint64_t usage, uint32_t *ret_seq)
{
        (void)usage;
        struct fake_limiter *f = ctx;
        f->asks++;
        return fake_record(f, level, actions, goal, ret_seq);
}

static void fake_state(void *ctx, usec_t timeout, unsigned *ret_clients, uint64_t *ret_outstanding,
                       unsigned *ret_askable)
{
        (void)timeout;
        struct fake_limiter *f = ctx;
        *ret_clients = f->clients;
        *ret_outstanding = f->outstanding;
        *ret_askable = f->clients;
}

struct fixture {
        char *dir;                /* the sandbox directory */
        char *proc;               /* the fake /proc */
        struct cg_sandbox sb;
        struct policy p;
        struct report_log *log;
        struct actions a;
        struct level_engine e;
        struct fake_limiter lim;
};

static void fixture_init(struct fixture *f, pid_t child, const char *sigcgt)
{
        memset(f, 0, sizeof *f);
        f->dir = make_tmpdir();
        f->proc = make_tmpdir();
        /* Plain files stand in for kernfs ones: empty, so each single write(2) is the whole content. */
        put_file(f->dir, "memory.high", "");
        put_file(f->dir, "memory.stat", "anon 100000000\nfile 0\nactive_file 0\ninactive_file 0\nslab_reclaimable 0\n");
        char rel[64], text[128];
        xsnprintf(rel, sizeof rel, "%d", (int)child);
        make_dirs(f->proc, rel);
        xsnprintf(rel, sizeof rel, "%d/status", (int)child);
        xsnprintf(text, sizeof text, "Name:\tprog\nSigIgn:\t0000000000000000\nSigCgt:\t%s\n", sigcgt);
        put_file(f->proc, rel, text);
        cg_sandbox_init(&f->sb);
        f->sb.mode = CG_V2;
        f->sb.mem_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->sb.mem_fd >= 0);
        xsnprintf(f->sb.path, sizeof f->sb.path, "/test/box");
        policy_default(&f->p);
        f->log = calloc(1, sizeof *f->log);
        assert_non_null(f->log);
        level_engine_init(&f->e, &f->p, LIMIT);
        actions_init(&f->a, &f->p, &f->sb, child, LIMIT, SOFT, f->log, 0);
        f->a.proc_fd = open(f->proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        f->lim.clients = 1;
        f->a.limiter = (struct limiter_ops){ fake_broadcast, fake_ask, fake_state, NULL, &f->lim };
}

static void fixture_free(struct fixture *f)
{
        actions_shutdown(&f->a, SEC(100));
        close_fd(&f->a.proc_fd);
        cg_sandbox_close(&f->sb);
        free(f->log);
        remove_tmpdir(f->dir);
        remove_tmpdir(f->proc);
}

/* Feed one sample through the level engine and the governor, as the monitor does. */
static void feed(struct fixture *f, double t, uint64_t usage)
{
        struct level_sample s = { .t = SEC(t), .usage = usage };
        struct level_decision d;
        bool entered = false;
        if (level_feed(&f->e, &s, &d) == 1) {
                entered = d.to > d.from && d.reason != REASON_USAGE;
                actions_run(&f->a, &f->e, &d, usage, s.t);
        }
        actions_govern(&f->a, &f->e, &s, entered, s.t);
}

/* Above the setpoint the governor asks at every sample, and the report keeps totals and the first asks. */
static void test_governor_asks(void **state)
{
        (void)state;
        struct fixture f;
        fixture_init(&f, getpid(), "0000000000000000");
        feed(&f, 0.00, 10 * MiB);
        assert_int_equal(f.lim.asks, 0);
        for (int i = 1; i <= 40; i++) {
                feed(&f, 0.02 * i, SOFT);
                actions_round(&f.a, f.lim.last_goal, f.lim.last_goal, false, SEC(0.001));
        }
        assert_int_equal(f.lim.asks, 40);
        assert_int_equal(f.lim.last_actions, ACTION_MASK(ACTION_TRIM));
        /* at the soft limit: at least its 3% headroom */
        assert_true(f.lim.last_goal >= size_share(SOFT, 30000));
        assert_int_equal(f.log->agg[ACTION_TRIM].asks, 40);
        assert_int_equal(f.log->asks, 40);         /* each round once, whatever it asked */
        assert_true(f.log->asked >= f.log->agg[ACTION_TRIM].asked);
        assert_int_equal(f.log->rounds, 40);
        assert_int_equal(f.log->gov_entries, REPORT_GOV_ENTRIES);
        assert_int_equal(f.log->gov_more, 40 - REPORT_GOV_ENTRIES);
        /* level moderate was broadcast once, on entry, asking nothing by itself */
        assert_true(f.lim.broadcasts >= 1);
        fixture_free(&f);
}

/* Nothing to give back (no client, reclaim gives nothing) at the soft limit: memory.high is lifted to
 * max at once, not after [governor] giveup; back under the setpoint it is restored. */
static void test_giveup_and_resume(void **state)
{
        (void)state;
        struct fixture f;
        fixture_init(&f, getpid(), "0000000000000000");
        f.lim.clients = 0;
        put_file(f.dir, "memory.reclaim", "");
        double t = 0;
        for (; t < 1.5 && f.log->giveups == 0; t += 0.02)
                feed(&f, t, SOFT);
        assert_int_equal(f.log->giveups, 1);
        assert_true(f.log->gave_up_t != USEC_INFINITY && f.log->gave_up_t < SEC(1.0));
        char *high = get_file(f.dir, "memory.high");
        assert_string_equal(high, "max");
        free(high);
        assert_true(f.a.lifted);
        assert_int_equal(f.lim.asks, 0);
        put_file(f.dir, "memory.high", "");
        /* the program fell back on its own: hold again */
        for (int i = 0; i < 10; i++)
                feed(&f, t += 0.02, 10 * MiB);
        high = get_file(f.dir, "memory.high");
        assert_int_equal(strtoull(high, NULL, 10), SOFT);
        free(high);
        assert_false(f.a.lifted);
        fixture_free(&f);
}

/* hold = no: the old ladder, every action of the level once, on entry. */
static void test_fire_once(void **state)
{
        (void)state;
        struct fixture f;
        fixture_init(&f, getpid(), "0000000000000000");
        f.p.hold = false;
        for (int i = 0; i < 20; i++)
                feed(&f, 0.02 * i, 100 * MiB);
        assert_int_equal(f.lim.asks, 0);
        assert_int_equal(f.lim.broadcasts, 1);
        assert_int_equal(f.lim.last_actions, ACTION_MASK(ACTION_TRIM));
        fixture_free(&f);
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
        (void)sig;
        got_usr1 = 1;
}

/* signal:USR1 is skipped for a process that does not catch it, sent to one that does. */
static void test_signal_only_if_caught(void **state)
{
        (void)state;
        struct fixture f;
        for (int caught = 0; caught < 2; caught++) {
                struct sigaction sa = { .sa_handler = on_usr1 };
                sigemptyset(&sa.sa_mask);
                assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
                got_usr1 = 0;
                fixture_init(&f, getpid(), caught ? "0000000000000200" : "0000000000000000");
                memset(f.p.levels, 0, sizeof f.p.levels);
                f.p.levels[LEVEL_MODERATE] = (struct policy_level){
                        .defined = true, .usage_ppm = 100000, .n_actions = 1,
                        .actions = { { .type = ACTION_SIGNAL, .signal = SIGUSR1 } },
                };
                feed(&f, 0, 64 * MiB);
                assert_int_equal(got_usr1, caught);
                assert_int_equal(f.log->signals_skipped, caught ? 0 : 1);
                assert_int_equal(f.log->n_actions, 1);
                assert_non_null(strstr(f.log->actions[0].detail, caught ? "SIGUSR1 to pid" : "not handled"));
                fixture_free(&f);
        }
        signal(SIGUSR1, SIG_DFL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_governor_asks),
                cmocka_unit_test(test_giveup_and_resume),
                cmocka_unit_test(test_fire_once),
                cmocka_unit_test(test_signal_only_if_caught),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
