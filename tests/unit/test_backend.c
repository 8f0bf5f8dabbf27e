/* test_backend: the cgroup backends on a fake v2 tree (built from real samples, as test_cg does), and
 * supervisor_run failing at each stage of its setup with teardown taking the same way out: nothing
 * left behind (no sandbox directory, no registry record, no fd), exit 125, and a user that does not
 * exist refused before anything is made. */
#include "unit.h"

#include "cgroup/backend.h"
#include "config/size.h"
#include "log.h"
#include "supervise/supervisor.h"

#define MiB (1024ull * 1024)

struct t {
        char *tmp;
        char cg[PATH_MAX], proc[PATH_MAX], run[PATH_MAX];
        int saved_stderr;
};

static void v2_dir(struct t *t, const char *rel)
{
        char p[PATH_MAX];
        make_dirs(t->cg, rel);
        xsnprintf(p, sizeof p, "%s/cgroup.controllers", rel);
        put_fixture(t->cg, p, "v2/cgroup.controllers");
        xsnprintf(p, sizeof p, "%s/cgroup.subtree_control", rel);
        put_fixture(t->cg, p, "v2/cgroup.subtree_control");
        xsnprintf(p, sizeof p, "%s/cgroup.procs", rel);
        put_file(t->cg, p, "");
}

/* The VM's tree: / (all controllers, +memory), /a/b (+memory), memrun in /a/b/sandbox, which
 * holds the enclosing limits of an --in-place run. */
static int setup(void **state)
{
        struct t *t = calloc(1, sizeof *t);
        assert_non_null(t);
        t->tmp = make_tmpdir();
        xsnprintf(t->cg, sizeof t->cg, "%s/cg", t->tmp);
        xsnprintf(t->proc, sizeof t->proc, "%s/proc", t->tmp);
        xsnprintf(t->run, sizeof t->run, "%s/run", t->tmp);
        make_dirs(t->tmp, "cg");
        make_dirs(t->tmp, "proc/self");
        make_dirs(t->tmp, "run");
        put_fixture(t->cg, "cgroup.controllers", "v2/cgroup.controllers_root");
        put_fixture(t->cg, "cgroup.subtree_control", "v2/cgroup.subtree_control_root");
        put_file(t->cg, "cgroup.procs", "");
        v2_dir(t, "a");
        v2_dir(t, "a/b");
        v2_dir(t, "a/b/sandbox");
        put_file(t->cg, "a/b/sandbox/memory.max", "100663296\n");
        put_file(t->cg, "a/b/sandbox/memory.high", "max\n");
        put_file(t->cg, "a/b/sandbox/memory.current", "1048576\n");
        put_fixture(t->cg, "a/b/sandbox/memory.events", "v2/memory.events_fresh");
        put_fixture(t->proc, "self/cgroup", "v2/proc_self_cgroup");
        setenv("MEMRUN_RUNTIME_DIR", t->run, 1);
        t->saved_stderr = stderr_mute();
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        struct t *t = *state;
        stderr_restore(t->saved_stderr);
        remove_tmpdir(t->tmp);
        free(t);
        return 0;
}

static unsigned count_entries(const char *dir)
{
        unsigned n = 0;
        DIR *d = opendir(dir);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

static unsigned open_fds(void)
{
        return count_entries("/proc/self/fd");
}

/* --- the backends --- */

static void test_select(void **state)
{
        struct t *t = *state;
        struct cg_backend_state st;
        struct cg_request req = { .cgroup_root = t->cg, .proc_root = t->proc, .explicit_parent = "/a/b", .name = "s1" };
        cg_backend_state_init(&st);
        const struct cg_backend *b = cg_backend_select(&st, &req);
        assert_non_null(b);
        assert_string_equal(b->name, "created"); /* --cgroup: a place memrun may use */
        cg_backend_close(&st);
        req.in_place = true;
        cg_backend_state_init(&st);
        b = cg_backend_select(&st, &req);
        assert_non_null(b);
        assert_string_equal(b->name, "adopted");
        cg_backend_close(&st);
        /* no cgroupfs there: no backend, said why */
        char empty[PATH_MAX];
        xsnprintf(empty, sizeof empty, "%s/run", t->tmp);
        req.cgroup_root = empty;
        cg_backend_state_init(&st);
        assert_null(cg_backend_select(&st, &req));
        cg_backend_close(&st);
}

static void test_adopted(void **state)
{
        struct t *t = *state;
        struct cg_backend_state st;
        struct cg_request req = { .cgroup_root = t->cg, .proc_root = t->proc, .name = "s2", .in_place = true };
        struct limits lim = { .hard = SIZE_MAX_VALUE, .soft = SIZE_MAX_VALUE, .ceiling = SIZE_MAX_VALUE };
        cg_backend_state_init(&st);
        const struct cg_backend *b = cg_backend_select(&st, &req);
        assert_non_null(b);
        assert_int_equal(b->open(&st, &req, &lim), 0);
        /* the enclosing limit, the default share of it, and it is the ceiling */
        assert_int_equal(lim.hard, 96 * MiB);
        assert_int_equal(lim.ceiling, 96 * MiB);
        assert_int_equal(lim.soft, limits_soft_default(96 * MiB));
        assert_false(cg_sandbox_writable(&st.sb));
        /* writing limits writes nothing */
        struct limits lower = lim;
        lower.hard = 64 * MiB;
        assert_int_equal(b->set_limits(&st, &lower), 0);
        char *max = get_file(t->cg, "a/b/sandbox/memory.max");
        assert_string_equal(max, "100663296\n");
        free(max);
        /* and closing removes nothing it did not make */
        cg_backend_close(&st);
        assert_true(path_exists(t->cg, "a/b/sandbox"));
        assert_int_equal(count_entries(t->run), 0);
}

/* created on a fake tree: mkdir makes an empty directory (a real kernel fills it), so writing the
 * limits fails after creation: open fails there, and close removes the directory and the record. */
static void test_created_fails_after_create(void **state)
{
        struct t *t = *state;
        struct cg_backend_state st;
        struct cg_request req = { .cgroup_root = t->cg, .proc_root = t->proc, .explicit_parent = "/a/b", .name = "s3" };
        struct limits lim = { .hard = 64 * MiB, .soft = 60 * MiB, .ceiling = SIZE_MAX_VALUE };
        cg_backend_state_init(&st);
        const struct cg_backend *b = cg_backend_select(&st, &req);
        assert_non_null(b);
        assert_true(b->open(&st, &req, &lim) < 0);
        assert_true(path_exists(t->cg, "a/b/s3"));      /* made ... */
        assert_true(st.recorded);
        assert_int_equal(count_entries(t->run), 1);     /* ... and recorded first */
        cg_backend_close(&st);
        assert_false(path_exists(t->cg, "a/b/s3"));     /* ... and undone */
        assert_int_equal(count_entries(t->run), 0);
}

/* --- supervisor_run, stage by stage --- */

static struct plan plan;

static int run_plan(struct t *t, const char *cgroup_root, const char *name, const char *user)
{
        static char *argv[] = { "true", NULL };
        memset(&plan, 0, sizeof plan);
        policy_default(&plan.policy);
        plan.o.argv = argv;
        plan.o.limit = 64 * MiB;
        plan.o.soft = 60 * MiB;
        plan.o.soft_set = true;
        plan.o.cgroup = "/a/b";
        plan.o.verbosity = -1;
        snprintf(plan.name, sizeof plan.name, "%s", name);
        if (user) {
                plan.policy.sandbox.enabled = false;
                snprintf(plan.policy.sandbox.user, sizeof plan.policy.sandbox.user, "%s", user);
        }
        plan.cgroup_root = cgroup_root;
        plan.proc_root = t->proc;
        plan.dev_root = t->tmp;
        return supervisor_run(&plan);
}

static void test_stages(void **state)
{
        struct t *t = *state;
        char empty[PATH_MAX];
        xsnprintf(empty, sizeof empty, "%s/run", t->tmp);
        unsigned fds = open_fds();
        /* 1. a user that does not exist: refused before anything is made */
        assert_int_equal(run_plan(t, t->cg, "st1", "nosuch-user-x"), EXIT_MEMRUN);
        assert_non_null(strstr(log_last_error(), "nosuch-user-x"));
        assert_false(path_exists(t->cg, "a/b/st1"));
        assert_int_equal(count_entries(t->run), 0);
        assert_int_equal(open_fds(), fds);
        /* 2. no cgroupfs at the root: nothing to place in */
        assert_int_equal(run_plan(t, empty, "st2", NULL), EXIT_MEMRUN);
        assert_non_null(strstr(log_last_error(), "is not a cgroup filesystem"));
        assert_int_equal(count_entries(t->run), 0);
        assert_int_equal(open_fds(), fds);
        /* 3. the kernel's files refuse the limits after the sandbox was made and recorded */
        assert_int_equal(run_plan(t, t->cg, "st3", NULL), EXIT_MEMRUN);
        assert_non_null(strstr(log_last_error(), "cannot set /a/b/st3/memory."));
        assert_false(path_exists(t->cg, "a/b/st3"));
        assert_int_equal(count_entries(t->run), 0);
        assert_int_equal(open_fds(), fds);
        /* 4. the name taken by another sandbox: that one stays, this one leaves nothing */
        make_dirs(t->cg, "a/b/st4");
        assert_int_equal(run_plan(t, t->cg, "st4", NULL), EXIT_MEMRUN);
        assert_non_null(strstr(log_last_error(), "already exists"));
        assert_true(path_exists(t->cg, "a/b/st4"));
        assert_int_equal(count_entries(t->run), 0);
        assert_int_equal(open_fds(), fds);
}

int main(void)
{
        log_set_verbosity(-1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_select, setup, teardown),
                cmocka_unit_test_setup_teardown(test_adopted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_created_fails_after_create, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stages, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
