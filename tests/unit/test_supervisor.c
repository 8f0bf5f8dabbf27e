/* test_supervisor: the supervisor's decisions with a fake cgroup backend and fake sources: the
 * rules of struct limits (the soft default, --in-place, memrunctl set's checks), the one setter
 * re-deriving everything downstream (and undoing a change the kernel refuses), which processes the
 * backend says are inside, and the event core dispatching registered sources and timers. */
#include "unit.h"

#include <sys/epoll.h>
#include <sys/wait.h>

#include "config/size.h"
#include "supervise/limits.h"
#include "supervise/loop.h"
#include "supervise/supervisor.h"

#define MiB (1024ull * 1024)
/* The tests speak seconds; the loop takes usec_t. */
#define SEC(x) ((usec_t)((x) * 1e6 + 0.5))

/* --- the fake backend: records what it is told, refuses when asked to --- */

static struct {
        unsigned set_calls;
        struct limits last;
        int refuse;               /* -errno for the next set_limits */
        pid_t inside;             /* the one pid that is inside */
} fake;

static int fake_open(struct cg_backend_state *st, const struct cg_request *req, struct limits *lim)
{
        (void)st;
        (void)req;
        (void)lim;
        return 0;
}

static int fake_set_limits(struct cg_backend_state *st, const struct limits *lim)
{
        (void)st;
        fake.set_calls++;
        if (fake.refuse) {
                int r = fake.refuse;
                fake.refuse = 0;
                return r;
        }
        fake.last = *lim;
        return 0;
}

static int fake_contains(const struct cg_backend_state *st, int proc_fd, pid_t pid)
{
        (void)st;
        (void)proc_fd;
        return pid == fake.inside;
}

static const struct cg_backend fake_backend = { "fake", fake_open, fake_set_limits, fake_contains };

/* A supervisor as setup leaves it, with the fake backend and no kernel behind it. */
static struct plan plan;
static struct supervisor sup;

static struct supervisor *make(uint64_t hard, uint64_t soft)
{
        memset(&fake, 0, sizeof fake);
        policy_default(&plan.policy);
        snprintf(plan.name, sizeof plan.name, "t");
        struct supervisor *s = &sup;
        memset(s, 0, sizeof *s);
        s->plan = &plan;
        s->p = &plan.policy;
        s->backend = &fake_backend;
        s->proc_fd = -1;
        s->mon.tfd = -1;
        s->limits = (struct limits){ .hard = hard, .soft = soft, .ceiling = SIZE_MAX_VALUE };
        cg_backend_state_init(&s->cg);
        lsrv_init(&s->lsrv);
        lsrv_set_limits(&s->lsrv, hard, soft);
        level_engine_init(&s->eng, s->p, hard);
        actions_init(&s->act, s->p, &s->cg.sb, 0, hard, soft, &s->log, 0);
        s->act_ready = true;
        return s;
}

/* --- struct limits --- */

static void test_soft_default(void **state)
{
        (void)state;
        assert_int_equal(limits_soft_default(100 * MiB), 90 * MiB);
        assert_true(limits_soft_default(SIZE_MAX_VALUE) == SIZE_MAX_VALUE);
        /* a new limit alone keeps the soft limit's share; with no old share, the default */
        assert_int_equal(limits_soft_keep_share(50 * MiB, 100 * MiB, 200 * MiB), 100 * MiB);
        assert_int_equal(limits_soft_keep_share(SIZE_MAX_VALUE, SIZE_MAX_VALUE, 100 * MiB), 90 * MiB);
        assert_true(limits_soft_keep_share(50 * MiB, 100 * MiB, SIZE_MAX_VALUE) == SIZE_MAX_VALUE);
}

static void test_in_place(void **state)
{
        (void)state;
        struct limits none = { .hard = SIZE_MAX_VALUE, .soft = SIZE_MAX_VALUE, .ceiling = SIZE_MAX_VALUE };
        /* no --limit: the enclosing memory.max, and the default share of it */
        struct limits l = limits_in_place(&none, false, 96 * MiB, SIZE_MAX_VALUE);
        assert_int_equal(l.hard, 96 * MiB);
        assert_int_equal(l.ceiling, 96 * MiB);
        assert_int_equal(l.soft, limits_soft_default(96 * MiB));
        assert_int_equal(l.soft_from, LIMITS_SOFT_DEFAULT);
        /* a --limit above the enclosing one is lowered to it; one below it stands */
        struct limits big = { .hard = 200 * MiB, .soft = 180 * MiB };
        assert_int_equal(limits_in_place(&big, false, 96 * MiB, SIZE_MAX_VALUE).hard, 96 * MiB);
        struct limits small = { .hard = 64 * MiB, .soft = 60 * MiB };
        assert_int_equal(limits_in_place(&small, false, 96 * MiB, SIZE_MAX_VALUE).hard, 64 * MiB);
        /* the enclosing memory.high below the limit is the soft limit */
        l = limits_in_place(&none, false, 96 * MiB, 80 * MiB);
        assert_int_equal(l.soft, 80 * MiB);
        assert_int_equal(l.soft_from, LIMITS_SOFT_ENCLOSING);
        /* a given soft limit is kept, but never above the hard one */
        struct limits given = { .hard = SIZE_MAX_VALUE, .soft = 120 * MiB };
        l = limits_in_place(&given, true, 96 * MiB, SIZE_MAX_VALUE);
        assert_int_equal(l.soft, 96 * MiB);
        assert_int_equal(l.soft_from, LIMITS_SOFT_GIVEN);
        /* nothing encloses: max, and the warning's case */
        l = limits_in_place(&none, false, SIZE_MAX_VALUE, SIZE_MAX_VALUE);
        assert_true(l.hard == SIZE_MAX_VALUE && l.soft == SIZE_MAX_VALUE);
}

static void test_change(void **state)
{
        (void)state;
        struct limits cur = { .hard = 128 * MiB, .soft = 115 * MiB, .ceiling = SIZE_MAX_VALUE }, l;
        char why[128] = "";
        assert_int_equal(limits_change(&cur, true, 256 * MiB, false, 0, &l, why, sizeof why), 0);
        assert_int_equal(l.hard, 256 * MiB);
        assert_int_equal(l.soft, 115 * MiB);
        /* a lower limit alone pulls the soft limit down with it */
        assert_int_equal(limits_change(&cur, true, 64 * MiB, false, 0, &l, why, sizeof why), 0);
        assert_int_equal(l.soft, 64 * MiB);
        assert_int_equal(limits_change(&cur, false, 0, true, 200 * MiB, &l, why, sizeof why), -EINVAL);
        assert_string_equal(why, "soft 200M is above the limit 128M");
        assert_int_equal(limits_change(&cur, true, 512 * 1024, false, 0, &l, why, sizeof why), -EINVAL);
        assert_string_equal(why, "512K is below 1M: no program runs in that");
        cur.ceiling = 96 * MiB;
        assert_int_equal(limits_change(&cur, true, 128 * MiB, false, 0, &l, why, sizeof why), -EINVAL);
        assert_string_equal(why, "--in-place: the enclosing cgroup's limit 96M is the ceiling");
}

/* --- the one setter --- */

static void test_set_limits_rederives(void **state)
{
        (void)state;
        struct supervisor *s = make(128 * MiB, 115 * MiB);
        struct limits l = { .hard = 256 * MiB, .soft = 230 * MiB, .swap = 0, .ceiling = SIZE_MAX_VALUE };
        char why[128] = "";
        assert_int_equal(supervisor_set_limits(s, &l, "memrunctl", why, sizeof why), 0);
        /* the kernel's files, through the backend */
        assert_int_equal(fake.set_calls, 1);
        assert_int_equal(fake.last.hard, 256 * MiB);
        assert_int_equal(fake.last.soft, 230 * MiB);
        /* everything derived */
        assert_int_equal(s->limits.hard, 256 * MiB);
        assert_int_equal(s->eng.limit, 256 * MiB);
        assert_int_equal(s->act.limit, 256 * MiB);
        assert_int_equal(s->act.soft, 230 * MiB);
        assert_int_equal(s->act.soft_configured, 230 * MiB);
        assert_int_equal(s->act.gov.limit, 256 * MiB);
        assert_false(s->act.lifted);
        assert_int_equal(s->lsrv.limit, 256 * MiB);
        assert_int_equal(s->lsrv.soft, 230 * MiB);
        assert_int_equal(s->log.high_final, 230 * MiB);
        assert_int_equal(s->limit_changes, 1);
        /* and the report says who changed what */
        assert_int_equal(s->log.n_actions, 1);
        assert_string_equal(s->log.actions[0].action, "set-limit");
        assert_string_equal(s->log.actions[0].detail, "memrunctl: limit 128M -> 256M, soft 115M -> 230M");
}

static void test_set_limits_refused(void **state)
{
        (void)state;
        struct supervisor *s = make(128 * MiB, 115 * MiB);
        struct limits l = { .hard = 256 * MiB, .soft = 230 * MiB, .ceiling = SIZE_MAX_VALUE };
        char why[128] = "";
        fake.refuse = -EBUSY;
        assert_int_equal(supervisor_set_limits(s, &l, "memrunctl", why, sizeof why), -EBUSY);
        assert_string_equal(why, "the kernel refused it: Device or resource busy");
        /* the old limits are written back, and nothing downstream moved */
        assert_int_equal(fake.set_calls, 2);
        assert_int_equal(fake.last.hard, 128 * MiB);
        assert_int_equal(s->limits.hard, 128 * MiB);
        assert_int_equal(s->eng.limit, 128 * MiB);
        assert_int_equal(s->act.soft, 115 * MiB);
        assert_int_equal(s->lsrv.limit, 128 * MiB);
        assert_int_equal(s->limit_changes, 0);
        assert_int_equal(s->log.n_actions, 0);
}

/* A lowering: written by a child (the kernel reclaims inside the write), in force in memrun at
 * once; one change at a time. */
static void test_set_limits_lowering(void **state)
{
        (void)state;
        struct supervisor *s = make(128 * MiB, 115 * MiB);
        struct limits l = { .hard = 32 * MiB, .soft = 30 * MiB, .ceiling = SIZE_MAX_VALUE };
        char why[128] = "";
        fake.refuse = -EBUSY; /* the child's write fails at once: it ends quickly */
        assert_int_equal(supervisor_set_limits(s, &l, "memrunctl", why, sizeof why), 1);
        assert_true(s->limits_pid > 0);
        assert_int_equal(fake.set_calls, 0); /* not written here */
        assert_int_equal(s->limits.hard, 32 * MiB);
        assert_int_equal(s->eng.limit, 32 * MiB);
        assert_int_equal(s->act.soft, 30 * MiB);
        assert_int_equal(s->lsrv.limit, 32 * MiB);
        assert_int_equal(s->limits_old.hard, 128 * MiB);
        struct limits again = { .hard = 16 * MiB, .soft = 15 * MiB, .ceiling = SIZE_MAX_VALUE };
        assert_int_equal(supervisor_set_limits(s, &again, "memrunctl", why, sizeof why), -EBUSY);
        assert_non_null(strstr(why, "still being applied"));
        int st;
        assert_int_equal(waitpid(s->limits_pid, &st, 0), s->limits_pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == EBUSY);
        s->limits_pid = 0;
}

/* The backend was told hard and soft, once, and memrun's state and its limiter server follow. */
static void assert_written(const struct supervisor *s, uint64_t hard, uint64_t soft)
{
        assert_int_equal(fake.set_calls, 1);
        assert_int_equal(fake.last.hard, hard);
        assert_int_equal(fake.last.soft, soft);
        assert_int_equal(s->limits.hard, hard);
        assert_int_equal(s->act.soft, soft);
        assert_int_equal(s->lsrv.limit, hard);
}

/* The kernel refused a lowering: memrunctl's limits come back whole; a hard limit someone lowered at
 * cgroupfs (memrun followed it) stays, only the soft limit may come back. */
static void test_set_limits_refused_restore(void **state)
{
        (void)state;
        char why[128] = "";
        int st;
        for (int outside = 0; outside <= 1; outside++) {
                struct supervisor *s = make(128 * MiB, 115 * MiB);
                s->ctl.pending = -1;
                struct limits l = { .hard = 32 * MiB, .soft = 28 * MiB, .ceiling = SIZE_MAX_VALUE };
                fake.refuse = -EBUSY;
                assert_int_equal(supervisor_set_limits(s, &l, outside ? "cgroupfs" : "memrunctl", why, sizeof why), 1);
                assert_int_equal(waitpid(s->limits_pid, &st, 0), s->limits_pid);
                assert_true(WIFEXITED(st) && WEXITSTATUS(st) == EBUSY);
                fake.refuse = 0;
                supervisor_limits_applied(s, st);
                assert_int_equal(s->limits_pid, 0);
                if (outside) {
                        /* 115M does not fit under 32M: the limits found stay, nothing is written */
                        assert_int_equal(fake.set_calls, 0);
                        assert_int_equal(s->limits.hard, 32 * MiB);
                        assert_int_equal(s->limits.soft, 28 * MiB);
                        assert_int_equal(s->lsrv.limit, 32 * MiB);
                } else {
                        assert_written(s, 128 * MiB, 115 * MiB);
                }
        }
        /* a hard limit lowered a little at cgroupfs: the old soft limit fits and comes back */
        struct supervisor *s = make(128 * MiB, 100 * MiB);
        s->ctl.pending = -1;
        struct limits l = { .hard = 120 * MiB, .soft = 94 * MiB, .ceiling = SIZE_MAX_VALUE };
        fake.refuse = -EBUSY;
        assert_int_equal(supervisor_set_limits(s, &l, "cgroupfs", why, sizeof why), 1);
        assert_int_equal(waitpid(s->limits_pid, &st, 0), s->limits_pid);
        fake.refuse = 0;
        supervisor_limits_applied(s, st);
        assert_written(s, 120 * MiB, 100 * MiB);
}

static void test_contains(void **state)
{
        (void)state;
        struct supervisor *s = make(128 * MiB, 115 * MiB);
        /* no /proc: it cannot be told (and the control socket refuses such a peer) */
        assert_int_equal(supervisor_contains(s, 42), -EBADF);
        s->proc_fd = 0;
        fake.inside = 42;
        assert_int_equal(supervisor_contains(s, 42), 1);
        assert_int_equal(supervisor_contains(s, 43), 0);
}

/* --- the event core --- */

static int seen_fd, seen_n;
static void count(struct loop *l, int fd, uint32_t events, void *userdata)
{
        (void)l;
        (void)events;
        seen_fd = fd;
        seen_n += *(int *)userdata;
        char b[16];
        (void)!read(fd, b, sizeof b);
}

static void test_loop_sources(void **state)
{
        (void)state;
        struct loop l;
        int p[2], q[2], one = 1, ten = 10;
        assert_int_equal(loop_open(&l), 0);
        assert_int_equal(pipe(p), 0);
        assert_int_equal(pipe(q), 0);
        assert_true(loop_add(&l, p[0], EPOLLIN, count, &one, "p") >= 0);
        assert_true(loop_add(&l, q[0], EPOLLIN, count, &ten, "q") >= 0);
        seen_n = 0;
        assert_int_equal(write(q[1], "x", 1), 1);
        assert_int_equal(loop_dispatch(&l, SEC(1)), 1);
        assert_int_equal(seen_fd, q[0]);
        assert_int_equal(seen_n, 10);
        /* a removed source is not dispatched */
        loop_remove(&l, q[0]);
        assert_int_equal(write(q[1], "x", 1), 1);
        assert_int_equal(write(p[1], "x", 1), 1);
        assert_int_equal(loop_dispatch(&l, SEC(1)), 1);
        assert_int_equal(seen_fd, p[0]);
        assert_int_equal(seen_n, 11);
        /* a timer */
        int t = loop_add_timer(&l, count, &ten, "timer");
        assert_true(t >= 0);
        assert_int_equal(loop_timer_set(t, SEC(0.001)), 0);
        seen_n = 0;
        while (seen_n == 0)
                assert_true(loop_dispatch(&l, SEC(1)) >= 0);
        assert_int_equal(seen_fd, t);
        /* the table is fixed-size: the next source past it is refused, not allocated */
        int n = 0;
        while (loop_add(&l, dup(p[0]), EPOLLIN, count, &one, "x") >= 0)
                n++;
        assert_int_equal(n, LOOP_MAX_SOURCES - 2);
        assert_int_equal(loop_add(&l, p[1], EPOLLOUT, count, &one, "y"), -ENOSPC);
        loop_close(&l);
        assert_int_equal(l.ep, -1);
        close(p[0]);
        close(p[1]);
        close(q[0]);
        close(q[1]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_soft_default),       cmocka_unit_test(test_in_place),
                cmocka_unit_test(test_change),             cmocka_unit_test(test_set_limits_rederives),
                cmocka_unit_test(test_set_limits_refused), cmocka_unit_test(test_set_limits_lowering),
                cmocka_unit_test(test_set_limits_refused_restore),
                cmocka_unit_test(test_contains),
                cmocka_unit_test(test_loop_sources),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
