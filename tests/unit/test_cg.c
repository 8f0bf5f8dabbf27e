/* test_cg: the cgroup backend on fake trees built in a temp dir from real v1 (this host) and v2 (the
 * VM) samples: layout detection, /proc/self/cgroup, placement, and a sandbox's whole life. */
#include "unit.h"

#include <signal.h>
#include <sys/wait.h>

#include "config/size.h"
#include "cgroup/cg.h"
#include "kernel/proc.h"
#include "log.h"

#define MiB (1024ull * 1024)
#define V1_OWN "/process_api/9de9426028ba3cf34092c7a1cd93f9f7" /* in fixtures/v1/proc_self_cgroup */

struct t {
        char *tmp;
        char cg[PATH_MAX];   /* fake cgroupfs root */
        char proc[PATH_MAX]; /* fake /proc */
        int saved_stderr;
};

static int setup(void **state)
{
        struct t *t = calloc(1, sizeof *t);
        assert_non_null(t);
        t->tmp = make_tmpdir();
        snprintf(t->cg, sizeof t->cg, "%s/cg", t->tmp);
        snprintf(t->proc, sizeof t->proc, "%s/proc", t->tmp);
        make_dirs(t->tmp, "cg");
        make_dirs(t->tmp, "proc/self");
        /* warnings are expected on purpose here; keep them out of the test output */
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

/* --- fake trees --- */

static void v2_cgroup_dir(struct t *t, const char *rel, const char *controllers, const char *subtree)
{
        char p[PATH_MAX];
        make_dirs(t->cg, rel);
        xsnprintf(p, sizeof p, "%s/cgroup.controllers", rel);
        put_fixture(t->cg, p, controllers);
        xsnprintf(p, sizeof p, "%s/cgroup.subtree_control", rel);
        if (subtree)
                put_fixture(t->cg, p, subtree);
        else
                put_file(t->cg, p, "");
        xsnprintf(p, sizeof p, "%s/cgroup.procs", rel);
        put_file(t->cg, p, "");
}

/* The VM's tree: / (all controllers, +memory), /a/b (+memory), memrun in /a/b/sandbox. */
static void make_v2(struct t *t)
{
        put_fixture(t->cg, "cgroup.controllers", "v2/cgroup.controllers_root");
        put_fixture(t->cg, "cgroup.subtree_control", "v2/cgroup.subtree_control_root");
        put_file(t->cg, "cgroup.procs", "");
        v2_cgroup_dir(t, "a", "v2/cgroup.controllers", "v2/cgroup.subtree_control");
        v2_cgroup_dir(t, "a/b", "v2/cgroup.controllers", "v2/cgroup.subtree_control");
        v2_cgroup_dir(t, "a/b/sandbox", "v2/cgroup.controllers", NULL);
        put_fixture(t->proc, "self/cgroup", "v2/proc_self_cgroup");
}

/* This host's tree: v1 memory hierarchy with memrun's cgroup, plus the unified hierarchy. */
static void make_v1(struct t *t, bool unified)
{
        make_dirs(t->cg, "memory" V1_OWN);
        put_fixture(t->cg, "memory/memory.limit_in_bytes", "v1/memory.limit_in_bytes");
        put_file(t->cg, "memory/cgroup.procs", "");
        static const char *const files[] = { "memory.limit_in_bytes", "memory.usage_in_bytes",
                                             "memory.max_usage_in_bytes", "memory.failcnt",
                                             "memory.oom_control", "memory.memsw.limit_in_bytes" };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                char rel[PATH_MAX], fx[PATH_MAX];
                xsnprintf(rel, sizeof rel, "memory%s/%s", V1_OWN, files[i]);
                xsnprintf(fx, sizeof fx, "v1/%s", files[i]);
                put_fixture(t->cg, rel, fx);
        }
        put_file(t->cg, "memory" V1_OWN "/cgroup.procs", "");
        if (unified) {
                make_dirs(t->cg, "unified");
                put_file(t->cg, "unified/cgroup.procs", "");
                put_fixture(t->cg, "unified/cgroup.controllers", "v1/unified_cgroup.controllers");
        }
        put_fixture(t->proc, "self/cgroup", "v1/proc_self_cgroup");
}

static void open_host(struct t *t, struct cg_host *h)
{
        int r = cg_host_open(t->cg, t->proc, h);
        if (r < 0)
                fail_msg("cg_host_open(%s): %d: %s", t->cg, r, log_last_error());
}

/* --- cg_detect --- */

static void test_detect(void **state)
{
        struct t *t = *state;
        enum cg_mode m = _CG_MODE_MAX;
        int fd = open(t->cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);

        assert_int_equal(cg_detect(fd, &m), -ENOENT); /* empty */
        assert_int_equal(m, _CG_MODE_MAX);

        make_v1(t, false);
        assert_int_equal(cg_detect(fd, &m), 0);
        assert_int_equal(m, CG_V1);

        make_v1(t, true);
        assert_int_equal(cg_detect(fd, &m), 0);
        assert_int_equal(m, CG_HYBRID);

        make_v2(t); /* cgroup.controllers at the top wins */
        assert_int_equal(cg_detect(fd, &m), 0);
        assert_int_equal(m, CG_V2);
        close(fd);

        /* a memory directory without its interface file is not a memory hierarchy */
        char *t2 = make_tmpdir();
        make_dirs(t2, "memory");
        make_dirs(t2, "unified");
        fd = open(t2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        m = _CG_MODE_MAX;
        assert_int_equal(cg_detect(fd, &m), -ENOENT);
        assert_int_equal(m, _CG_MODE_MAX);
        close(fd);
        remove_tmpdir(t2);

        assert_string_equal(cg_mode_name(CG_V2), "v2");
        assert_string_equal(cg_mode_name(CG_HYBRID), "hybrid");
        assert_string_equal(cg_mode_name(CG_V1), "v1");
        assert_string_equal(cg_mode_name(_CG_MODE_MAX), "?");
}

/* --- cg_parse_self --- */

struct self_case {
        const char *text;
        enum cg_mode mode;
        int ret;
        const char *mem, *uni;
};

static const struct self_case self_cases[] = {
        { "0::/a/b\n", CG_V2, 0, "/a/b", "/a/b" },
        { "0::/a/b", CG_V2, 0, "/a/b", "/a/b" }, /* no final newline */
        { "0::/\n", CG_V2, 0, "/", "/" },
        { "0::/user.slice/user-0.slice/session-1.scope\n", CG_V2, 0,
          "/user.slice/user-0.slice/session-1.scope", "/user.slice/user-0.slice/session-1.scope" },
        { "0::/a:b\n", CG_V2, 0, "/a:b", "/a:b" }, /* a colon in the path is the path's */
        { "4:memory:/m\n0::/u\n", CG_HYBRID, 0, "/m", "/u" },
        { "0::/u\n4:memory:/m\n", CG_HYBRID, 0, "/m", "/u" },
        { "4:memory:/m\n", CG_HYBRID, 0, "/m", "" },
        { "4:memory:/m\n0::/u\n", CG_V1, 0, "/m", "" },
        { "3:cpu,memory:/both\n0::/\n", CG_HYBRID, 0, "/both", "/" },
        { "3:memory,cpu:/both\n", CG_V1, 0, "/both", "" },
        { "3:cpu,memory,blkio:/three\n", CG_V1, 0, "/three", "" },
        { "9:name=systemd:/\n4:memory:/m\n", CG_V1, 0, "/m", "" },
        { "4:memory:/m\n0::/u\n", CG_V2, 0, "/u", "/u" }, /* v2 takes the unified line */
        /* missing lines */
        { "0::/u\n", CG_HYBRID, -ENOENT, NULL, NULL },
        { "0::/u\n", CG_V1, -ENOENT, NULL, NULL },
        { "4:memory:/m\n", CG_V2, -ENOENT, NULL, NULL },
        { "4:cpu:/c\n0::/u\n", CG_V1, -ENOENT, NULL, NULL },
        { "4:memoryx:/m\n", CG_V1, -ENOENT, NULL, NULL },
        { "4:xmemory:/m\n", CG_V1, -ENOENT, NULL, NULL },
        { "4:cpu,memor:/m\n", CG_V1, -ENOENT, NULL, NULL },
        { "", CG_V2, -ENOENT, NULL, NULL },
        /* garbage */
        { "hello\n", CG_V2, -EINVAL, NULL, NULL },
        { "0:/a\n", CG_V2, -EINVAL, NULL, NULL },
        { "0::/a\ngarbage\n", CG_V2, -EINVAL, NULL, NULL },
        { "0::a/b\n", CG_V2, -EINVAL, NULL, NULL },   /* relative */
        { "0::\n", CG_V2, -EINVAL, NULL, NULL },      /* empty path */
        { "4:memory:\n", CG_V1, -EINVAL, NULL, NULL },
        { "0::/a\n", _CG_MODE_MAX, -EINVAL, NULL, NULL },
        /* the kernel marks cgroups removed under us */
        { "0::/a/b (deleted)\n", CG_V2, -ESTALE, NULL, NULL },
        { "4:memory:/m (deleted)\n0::/\n", CG_HYBRID, -ESTALE, NULL, NULL },
};

static void test_parse_self_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof self_cases / sizeof self_cases[0]; i++) {
                const struct self_case *c = &self_cases[i];
                char mem[PATH_MAX] = "untouched", uni[PATH_MAX] = "untouched";
                int r = cg_parse_self(c->text, c->mode, mem, sizeof mem, uni, sizeof uni);
                if (r != c->ret)
                        fail_msg("case %zu (\"%s\", %s): %d, want %d", i, c->text, cg_mode_name(c->mode), r, c->ret);
                if (r == 0 && (strcmp(mem, c->mem) != 0 || strcmp(uni, c->uni) != 0))
                        fail_msg("case %zu (\"%s\"): mem \"%s\" uni \"%s\", want \"%s\" \"%s\"", i, c->text, mem,
                                 uni, c->mem, c->uni);
        }
}

static void test_parse_self_real_samples(void **state)
{
        (void)state;
        char mem[PATH_MAX], uni[PATH_MAX];
        char *v1 = fixture("v1/proc_self_cgroup");
        assert_int_equal(cg_parse_self(v1, CG_HYBRID, mem, sizeof mem, uni, sizeof uni), 0);
        assert_string_equal(mem, V1_OWN);
        assert_string_equal(uni, "/");
        assert_int_equal(cg_parse_self(v1, CG_V1, mem, sizeof mem, uni, sizeof uni), 0);
        assert_string_equal(mem, V1_OWN);
        assert_string_equal(uni, "");
        free(v1);

        char *sb = fixture("v1/proc_self_cgroup_sandbox"); /* memrun's own sandbox on this host */
        assert_int_equal(cg_parse_self(sb, CG_HYBRID, mem, sizeof mem, uni, sizeof uni), 0);
        assert_non_null(strstr(mem, V1_OWN "/memrun-"));
        assert_int_equal(strncmp(uni, "/memrun-", 8), 0);
        free(sb);

        char *v2 = fixture("v2/proc_self_cgroup");
        assert_int_equal(cg_parse_self(v2, CG_V2, mem, sizeof mem, uni, sizeof uni), 0);
        assert_string_equal(mem, "/a/b/sandbox");
        assert_string_equal(uni, "/a/b/sandbox");
        assert_int_equal(cg_parse_self(v2, CG_HYBRID, mem, sizeof mem, uni, sizeof uni), -ENOENT);
        free(v2);
}

static void test_parse_self_small_buffers(void **state)
{
        (void)state;
        char mem[8], uni[8];
        assert_int_equal(cg_parse_self("0::/abcdefgh\n", CG_V2, mem, sizeof mem, uni, sizeof uni), -EINVAL);
        assert_int_equal(cg_parse_self("0::/abcdef\n", CG_V2, mem, sizeof mem, uni, sizeof uni), 0);
        assert_string_equal(mem, "/abcdef");
        /* the unified path fits its buffer but not the memory one */
        char big[64];
        assert_int_equal(cg_parse_self("0::/abcdefghij\n", CG_V2, mem, sizeof mem, big, sizeof big), -EINVAL);
        assert_int_equal(cg_parse_self("4:memory:/abcdefghij\n", CG_V1, mem, sizeof mem, big, sizeof big), -EINVAL);
}

/* --- cg_host_open --- */

static void test_host_open_v2(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        make_v2(t);
        open_host(t, &h);
        assert_int_equal(h.mode, CG_V2);
        assert_string_equal(h.root, t->cg);
        assert_string_equal(h.own_mem, "/a/b/sandbox");
        assert_string_equal(h.own_uni, "/a/b/sandbox");
        assert_true(h.mem_root_fd >= 0);
        assert_true(h.uni_root_fd >= 0);
        assert_int_equal(faccessat(h.mem_root_fd, "a/b/sandbox/cgroup.procs", F_OK, 0), 0);
        cg_host_close(&h);
        assert_int_equal(h.mem_root_fd, -1);
        assert_int_equal(h.uni_root_fd, -1);
}

static void test_host_open_hybrid_and_v1(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        make_v1(t, true);
        open_host(t, &h);
        assert_int_equal(h.mode, CG_HYBRID);
        assert_string_equal(h.own_mem, V1_OWN);
        assert_string_equal(h.own_uni, "/");
        assert_int_equal(faccessat(h.mem_root_fd, &V1_OWN[1], F_OK, 0), 0);
        assert_int_equal(faccessat(h.uni_root_fd, "cgroup.controllers", F_OK, 0), 0);
        cg_host_close(&h);

        /* hybrid tree, but no unified line for us: treated as v1 */
        put_file(t->proc, "self/cgroup", "4:memory:" V1_OWN "\n");
        open_host(t, &h);
        assert_int_equal(h.mode, CG_V1);
        assert_string_equal(h.own_uni, "");
        cg_host_close(&h);

        /* legacy v1: no unified hierarchy at all */
        char *t2 = make_tmpdir();
        struct t tv1 = { .tmp = t2 };
        snprintf(tv1.cg, sizeof tv1.cg, "%s/cg", t2);
        snprintf(tv1.proc, sizeof tv1.proc, "%s/proc", t2);
        make_dirs(t2, "cg");
        make_dirs(t2, "proc/self");
        make_v1(&tv1, false);
        open_host(&tv1, &h);
        assert_int_equal(h.mode, CG_V1);
        assert_int_equal(h.uni_root_fd, -1);
        assert_string_equal(h.own_mem, V1_OWN);
        cg_host_close(&h);
        remove_tmpdir(t2);
}

static void test_host_open_errors(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        memset(&h, 0x77, sizeof h);
        struct cg_host before = h;
        char path[PATH_MAX];

        /* no such root */
        xsnprintf(path, sizeof path, "%s/nope", t->tmp);
        assert_int_equal(cg_host_open(path, t->proc, &h), -ENOENT);
        assert_non_null(strstr(log_last_error(), path));

        /* a directory that is no cgroupfs */
        assert_int_equal(cg_host_open(t->cg, t->proc, &h), -ENOENT);
        assert_non_null(strstr(log_last_error(), "not a cgroup filesystem"));
        assert_non_null(strstr(log_last_error(), t->cg));

        /* v2 whose root lacks the memory controller */
        make_v2(t);
        put_file(t->cg, "cgroup.controllers", "cpuset cpu io hugetlb pids rdma misc\n");
        assert_int_equal(cg_host_open(t->cg, t->proc, &h), -EOPNOTSUPP);
        assert_non_null(strstr(log_last_error(), "no memory controller"));
        assert_non_null(strstr(log_last_error(), "'cpuset cpu io hugetlb pids rdma misc'"));
        put_file(t->cg, "cgroup.controllers", "");
        assert_int_equal(cg_host_open(t->cg, t->proc, &h), -EOPNOTSUPP);
        assert_non_null(strstr(log_last_error(), "cgroup.controllers: ''"));
        put_fixture(t->cg, "cgroup.controllers", "v2/cgroup.controllers_root");

        /* /proc/self/cgroup missing, garbage, or naming no cgroup of the right kind */
        xsnprintf(path, sizeof path, "%s/self/cgroup", t->proc);
        unlink(path);
        assert_int_equal(cg_host_open(t->cg, t->proc, &h), -ENOENT);
        assert_non_null(strstr(log_last_error(), path));
        put_file(t->proc, "self/cgroup", "garbage\n");
        assert_int_equal(cg_host_open(t->cg, t->proc, &h), -EINVAL);
        assert_non_null(strstr(log_last_error(), path));
        put_fixture(t->proc, "self/cgroup", "v1/proc_self_cgroup"); /* v1 lines only name "/" for unified */
        open_host(t, &h);
        assert_string_equal(h.own_mem, "/");
        cg_host_close(&h);
        put_file(t->proc, "self/cgroup", "4:memory:/m\n");
        assert_int_equal(cg_host_open(t->cg, t->proc, &h), -ENOENT);
        assert_non_null(strstr(log_last_error(), "unified"));
        put_file(t->proc, "self/cgroup", "0::/gone (deleted)\n");
        memset(&h, 0x77, sizeof h);
        assert_int_equal(cg_host_open(t->cg, t->proc, &h), -ESTALE);
        assert_memory_equal(&h, &before, sizeof h); /* nothing written on failure */

        /* hybrid tree whose self/cgroup has no memory line */
        char *t2 = make_tmpdir();
        struct t th = { .tmp = t2 };
        snprintf(th.cg, sizeof th.cg, "%s/cg", t2);
        snprintf(th.proc, sizeof th.proc, "%s/proc", t2);
        make_dirs(t2, "cg");
        make_dirs(t2, "proc/self");
        make_v1(&th, true);
        put_file(th.proc, "self/cgroup", "0::/\n1:cpu:/\n");
        assert_int_equal(cg_host_open(th.cg, th.proc, &h), -ENOENT);
        assert_non_null(strstr(log_last_error(), "memory"));
        remove_tmpdir(t2);
}

/* --- placement --- */

struct place_case {
        struct cg_place_facts f;
        int ret;
        const char *parent;
        bool split, subtree;
        const char *msg1, *msg2; /* -EPERM: must appear in the error */
};

static const struct place_case place_cases[] = {
        /* an explicit --cgroup wins whatever else holds */
        { { CG_V2, "/deleg/x", "/a", false, false, false, true }, 0, "/deleg/x", false, false, NULL, NULL },
        { { CG_V1, "/deleg/x", "/a", false, false, false, false }, 0, "/deleg/x", false, false, NULL, NULL },
        /* v1 and hybrid: beneath our own memory cgroup */
        { { CG_V1, NULL, V1_OWN, false, false, false, false }, 0, V1_OWN, false, false, NULL, NULL },
        { { CG_HYBRID, NULL, V1_OWN, false, false, true, true }, 0, V1_OWN, false, false, NULL, NULL },
        { { CG_HYBRID, NULL, "/", false, false, false, false }, 0, "/", false, false, NULL, NULL },
        /* v2, memrun in the root cgroup */
        { { CG_V2, NULL, "/", false, false, false, false }, 0, "/", false, false, NULL, NULL },
        { { CG_V2, NULL, "/", true, true, true, true }, 0, "/", false, false, NULL, NULL },
        /* v2, delegated and alone: split */
        { { CG_V2, NULL, "/svc", true, true, false, true }, 0, "/svc", true, false, NULL, NULL },
        { { CG_V2, NULL, "/svc", true, true, true, false }, 0, "/svc", true, false, NULL, NULL },
        /* v2, not usable, root without systemd: /memrun subtree */
        { { CG_V2, NULL, "/svc", true, false, true, false }, 0, "/memrun", false, true, NULL, NULL },
        { { CG_V2, NULL, "/svc", false, true, true, false }, 0, "/memrun", false, true, NULL, NULL },
        { { CG_V2, NULL, "/svc", false, false, true, false }, 0, "/memrun", false, true, NULL, NULL },
        /* v2, nowhere to go */
        { { CG_V2, NULL, "/svc", false, false, false, false }, -EPERM, NULL, false, false, "not delegated", "not root" },
        { { CG_V2, NULL, "/svc", false, true, false, true }, -EPERM, NULL, false, false, "not delegated", "not root" },
        { { CG_V2, NULL, "/svc", false, false, true, true }, -EPERM, NULL, false, false, "not delegated", "systemd" },
        { { CG_V2, NULL, "/svc", true, false, false, false }, -EPERM, NULL, false, false, "other processes", "not root" },
        { { CG_V2, NULL, "/svc", true, false, true, true }, -EPERM, NULL, false, false, "other processes", "systemd" },
};

static void test_place_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof place_cases / sizeof place_cases[0]; i++) {
                const struct place_case *c = &place_cases[i];
                struct cg_placement p;
                memset(&p, 0x33, sizeof p);
                log_error("(sentinel)");
                int r = cg_place(&c->f, &p);
                if (r != c->ret)
                        fail_msg("place case %zu: %d, want %d (%s)", i, r, c->ret, log_last_error());
                if (r == 0) {
                        if (strcmp(p.parent, c->parent) != 0 || p.split_supervisor != c->split ||
                            p.memrun_subtree != c->subtree)
                                fail_msg("place case %zu: parent %s split %d subtree %d; want %s %d %d", i, p.parent,
                                         p.split_supervisor, p.memrun_subtree, c->parent, c->split, c->subtree);
                        continue;
                }
                const char *msg = log_last_error();
                if (!strstr(msg, "Delegate=yes") || !strstr(msg, c->f.own) || !strstr(msg, c->msg1) ||
                    !strstr(msg, c->msg2) || !strstr(msg, "--cgroup"))
                        fail_msg("place case %zu: message \"%s\" lacks Delegate=yes, %s, %s, %s or --cgroup", i, msg,
                                 c->f.own, c->msg1, c->msg2);
                const unsigned char *b = (const unsigned char *)&p;
                for (size_t k = 0; k < sizeof p; k++)
                        if (b[k] != 0x33)
                                fail_msg("place case %zu: placement written on failure", i);
        }
}

/* A scope is asked for exactly when systemd could give a usable cgroup that memrun lacks. */
static void test_place_wants_scope(void **state)
{
        (void)state;
        static const struct {
                struct cg_place_facts f;
                bool want;
        } t[] = {
                { { CG_V2, NULL, "/svc", false, false, false, true }, true },   /* user, not delegated */
                { { CG_V2, NULL, "/svc", false, false, true, true }, true },    /* root service, no Delegate= */
                { { CG_V2, NULL, "/svc", true, false, true, true }, true },     /* delegated, not alone */
                { { CG_V2, NULL, "/svc", true, true, false, true }, false },    /* delegated and alone: split */
                { { CG_V2, NULL, "/svc", false, false, true, false }, false },  /* no systemd */
                { { CG_V2, NULL, "/", false, false, true, true }, false },      /* the root cgroup */
                { { CG_V2, "/deleg", "/svc", false, false, false, true }, false }, /* --cgroup */
                { { CG_HYBRID, NULL, "/svc", false, false, true, true }, false },  /* v1 has no such rule */
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
                if (cg_place_wants_scope(&t[i].f) != t[i].want)
                        fail_msg("wants-scope case %zu: want %d", i, t[i].want);
}

static void test_place_facts_read(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_place_facts f;
        char pid[32];
        xsnprintf(pid, sizeof pid, "%d\n", (int)getpid());

        make_v2(t);
        open_host(t, &h);
        put_file(t->cg, "a/b/sandbox/cgroup.procs", pid);
        assert_int_equal(cg_place_facts_read(&h, NULL, &f), 0);
        assert_int_equal(f.mode, CG_V2);
        assert_null(f.explicit_parent);
        assert_string_equal(f.own, "/a/b/sandbox");
        assert_int_equal(f.root_user, geteuid() == 0);
        assert_int_equal(f.systemd, access("/run/systemd/system", F_OK) == 0);
        assert_true(f.own_alone);
        if (geteuid() == 0) /* root may write any file; others need the tree's modes */
                assert_true(f.own_memory_ok);

        /* another process beside memrun */
        char two[64];
        xsnprintf(two, sizeof two, "%d\n1\n", (int)getpid());
        put_file(t->cg, "a/b/sandbox/cgroup.procs", two);
        assert_int_equal(cg_place_facts_read(&h, "/x", &f), 0);
        assert_false(f.own_alone);
        assert_string_equal(f.explicit_parent, "/x");

        /* the memory controller not given to our cgroup */
        put_file(t->cg, "a/b/sandbox/cgroup.controllers", "cpu io\n");
        assert_int_equal(cg_place_facts_read(&h, NULL, &f), 0);
        assert_false(f.own_memory_ok);
        put_file(t->cg, "a/b/sandbox/cgroup.controllers", "nomemory\n"); /* a word, not a substring */
        assert_int_equal(cg_place_facts_read(&h, NULL, &f), 0);
        assert_false(f.own_memory_ok);
        cg_host_close(&h);
}

/* --- the sandbox on a fake v2 tree --- */

/* What the kernel would create in a new v2 cgroup: empty interface files. */
static void v2_populate(struct t *t, const char *rel)
{
        static const char *const files[] = { "memory.max", "memory.high", "memory.swap.max", "memory.oom.group",
                                             "memory.events", "memory.current", "memory.peak",
                                             "cgroup.events", "cgroup.procs", "cgroup.controllers",
                                             "cgroup.subtree_control" };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                char p[PATH_MAX];
                xsnprintf(p, sizeof p, "%s/%s", rel, files[i]);
                put_file(t->cg, p, "");
        }
}

static void v2_unpopulate(struct t *t, const char *rel)
{
        char dir[PATH_MAX];
        xsnprintf(dir, sizeof dir, "%s/%s", t->cg, rel);
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_type == DT_REG)
                        assert_int_equal(unlinkat(dirfd(d), de->d_name, 0), 0);
        closedir(d);
}

static void assert_file(struct t *t, const char *rel, const char *want)
{
        char *got = get_file(t->cg, rel);
        if (strcmp(got, want) != 0)
                fail_msg("%s: \"%s\", want \"%s\"", rel, got, want);
        free(got);
}

/* A child that waits to be signalled. */
static pid_t child_pausing(void)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        return pid;
}

static void test_sandbox_v2_lifecycle(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_place_facts f = { .mode = CG_V2, .explicit_parent = "/a/b", .own = "/a/b/sandbox" };
        struct cg_placement p;
        struct cg_sandbox s;

        make_v2(t);
        open_host(t, &h);
        assert_int_equal(cg_place(&f, &p), 0);
        cg_sandbox_init(&s);
        assert_int_equal(s.mem_fd, -1);
        assert_int_equal(s.events_fd, -1);
        cg_sandbox_paths(&h, &p, "job-1", &s);
        assert_string_equal(s.path, "/a/b/job-1");
        assert_string_equal(s.uni_path, "/a/b/job-1");
        assert_string_equal(s.own_mem, "/a/b/sandbox");
        assert_false(path_exists(t->cg, "a/b/job-1")); /* paths touch nothing */

        assert_int_equal(cg_sandbox_create(&h, &p, &s), 0);
        assert_true(path_exists(t->cg, "a/b/job-1"));
        assert_true(s.mem_fd >= 0);
        assert_true(s.uni_fd >= 0);
        assert_false(s.split_supervisor);
        assert_false(s.memrun_subtree);
        v2_populate(t, "a/b/job-1");

        assert_int_equal(cg_sandbox_set_limits(&s, 256 * MiB, 230 * MiB, 0), 0);
        assert_file(t, "a/b/job-1/memory.max", "268435456");
        assert_file(t, "a/b/job-1/memory.high", "241172480");
        assert_file(t, "a/b/job-1/memory.swap.max", "0");
        assert_file(t, "a/b/job-1/memory.oom.group", "1");

        /* a populated sandbox: v2 asks cgroup.events */
        put_fixture(t->cg, "a/b/job-1/cgroup.events", "v2/cgroup.events_populated");
        assert_true(cg_sandbox_populated(&s));
        put_fixture(t->cg, "a/b/job-1/cgroup.events", "v2/cgroup.events_empty");
        assert_false(cg_sandbox_populated(&s));

        /* signals go to the listed processes only, each still listed when signalled: a live child
         * listed, one that is not (alive, never listed), a pid that is gone (reaped), and junk */
        pid_t listed_child = child_pausing(), unlisted_child = child_pausing(), gone = fork();
        if (gone == 0)
                _exit(0);
        assert_int_equal(waitpid(gone, NULL, 0), gone);
        char procs[96];
        xsnprintf(procs, sizeof procs, "%d\n%d\nnot-a-pid\n1\n", (int)listed_child, (int)gone);
        put_file(t->cg, "a/b/job-1/cgroup.procs", procs);
        assert_int_equal(cg_sandbox_signal(&s, SIGTERM), 1);
        int st;
        assert_int_equal(waitpid(listed_child, &st, 0), listed_child);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
        assert_int_equal(waitpid(unlisted_child, &st, WNOHANG), 0); /* untouched */
        kill(unlisted_child, SIGKILL);
        assert_int_equal(waitpid(unlisted_child, &st, 0), unlisted_child);
        put_file(t->cg, "a/b/job-1/cgroup.procs", "");

        /* the same name again: refused, and the message says so */
        struct cg_sandbox s2;
        cg_sandbox_init(&s2);
        cg_sandbox_paths(&h, &p, "job-1", &s2);
        assert_int_equal(cg_sandbox_create(&h, &p, &s2), -EEXIST);
        assert_non_null(strstr(log_last_error(), "/a/b/job-1"));
        assert_non_null(strstr(log_last_error(), "already exists"));
        cg_sandbox_close(&s2);

        /* removal fails loudly while the directory holds files (a real rmdir fails while populated) */
        assert_int_equal(cg_sandbox_remove(&h, &s), -ENOTEMPTY);
        assert_true(path_exists(t->cg, "a/b/job-1"));
        assert_int_equal(s.mem_parent_fd, -1);

        /* and succeeds once empty */
        v2_unpopulate(t, "a/b/job-1");
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "job-1", &s);
        s.mem_parent_fd = cg_open_dir(h.mem_root_fd, "/a/b");
        assert_true(s.mem_parent_fd >= 0);
        /* what memrun did not make it does not remove (a failed mkdir in a read-only tree) */
        assert_int_equal(cg_sandbox_remove(&h, &s), 0);
        assert_true(path_exists(t->cg, "a/b/job-1"));
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "job-1", &s);
        s.mem_parent_fd = cg_open_dir(h.mem_root_fd, "/a/b");
        s.created = true;
        assert_int_equal(cg_sandbox_remove(&h, &s), 0);
        assert_false(path_exists(t->cg, "a/b/job-1"));
        assert_int_equal(s.mem_parent_fd, -1);
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

static void test_sandbox_v2_limits_variants(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_placement p = { .parent = "/a/b" };
        struct cg_sandbox s;

        make_v2(t);
        open_host(t, &h);
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "j", &s);
        assert_int_equal(cg_sandbox_create(&h, &p, &s), 0);

        /* "max" everywhere; a kernel with neither swap accounting nor oom.group */
        put_file(t->cg, "a/b/j/memory.max", "");
        put_file(t->cg, "a/b/j/memory.high", "");
        assert_int_equal(cg_sandbox_set_limits(&s, SIZE_MAX_VALUE, SIZE_MAX_VALUE, (1ull << 30)), 0);
        assert_file(t, "a/b/j/memory.max", "max");
        assert_file(t, "a/b/j/memory.high", "max");
        assert_false(path_exists(t->cg, "a/b/j/memory.swap.max")); /* control files are never created */
        assert_false(path_exists(t->cg, "a/b/j/memory.oom.group"));

        /* swap max is written as "max" */
        put_file(t->cg, "a/b/j/memory.max", "");
        put_file(t->cg, "a/b/j/memory.high", "");
        put_file(t->cg, "a/b/j/memory.swap.max", "");
        assert_int_equal(cg_sandbox_set_limits(&s, 32 * MiB, 28 * MiB, SIZE_MAX_VALUE), 0);
        assert_file(t, "a/b/j/memory.swap.max", "max");
        assert_file(t, "a/b/j/memory.max", "33554432");
        assert_file(t, "a/b/j/memory.high", "29360128");

        /* a missing memory.max is an error naming the file */
        char p2[PATH_MAX];
        xsnprintf(p2, sizeof p2, "%s/a/b/j/memory.max", t->cg);
        unlink(p2);
        assert_int_equal(cg_sandbox_set_limits(&s, 32 * MiB, 28 * MiB, 0), -ENOENT);
        assert_non_null(strstr(log_last_error(), "/a/b/j/memory.max"));
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

/* --in-place: memrun's own cgroup adopted: limits read, counters from now on, nothing removed. */
static void test_sandbox_v2_adopt(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_sandbox s;
        struct cg_stats st;
        uint64_t max, high;

        make_v2(t);
        open_host(t, &h);
        put_file(t->cg, "a/b/sandbox/memory.max", "100663296\n");
        put_file(t->cg, "a/b/sandbox/memory.high", "max\n");
        put_file(t->cg, "a/b/sandbox/memory.current", "1048576\n");
        put_fixture(t->cg, "a/b/sandbox/memory.events", "v2/memory.events_after_oom"); /* kills before memrun */
        cg_sandbox_init(&s);
        assert_int_equal(cg_sandbox_adopt(&h, NULL, &s, &max, &high), 0);
        assert_true(s.in_place);
        assert_false(s.created);
        assert_string_equal(s.path, "/a/b/sandbox");
        assert_int_equal(max, 100663296);
        assert_int_equal(high, UINT64_MAX);
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.ev_oom_kill, 0); /* the container's history is not this run's */
        put_file(t->cg, "a/b/sandbox/memory.events", "low 0\nhigh 0\nmax 71\noom 3\noom_kill 5\noom_group_kill 2\n");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.ev_oom_kill, 1);
        assert_int_equal(st.ev_max, 1);
        /* no processes of memrun's own: empty; remove touches nothing */
        assert_false(cg_sandbox_populated(&s));
        assert_int_equal(cg_sandbox_remove(&h, &s), 0);
        assert_true(path_exists(t->cg, "a/b/sandbox"));
        assert_file(t, "a/b/sandbox/memory.max", "100663296\n"); /* as written above: untouched */
        cg_sandbox_close(&s);
        /* the effective limit is the lowest up the hierarchy */
        put_file(t->cg, "a/b/memory.max", "52428800\n");
        put_file(t->cg, "a/memory.max", "max\n");
        cg_sandbox_init(&s);
        assert_int_equal(cg_sandbox_adopt(&h, NULL, &s, &max, &high), 0);
        assert_int_equal(max, 52428800);
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

static void test_sandbox_v2_stats(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_placement p = { .parent = "/a/b" };
        struct cg_sandbox s;
        struct cg_stats st;

        make_v2(t);
        open_host(t, &h);
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "sb", &s);
        assert_int_equal(cg_sandbox_create(&h, &p, &s), 0);

        /* after the VM's real OOM kills */
        put_fixture(t->cg, "a/b/sb/memory.current", "v2/memory.current_after_oom");
        put_fixture(t->cg, "a/b/sb/memory.peak", "v2/memory.peak_after_oom");
        put_fixture(t->cg, "a/b/sb/memory.events", "v2/memory.events_after_oom");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.current, 36864);
        assert_true(st.has_peak);
        assert_int_equal(st.peak, 33554432);
        assert_int_equal(st.ev_high, 0);
        assert_int_equal(st.ev_max, 70);
        assert_int_equal(st.ev_oom, 2);
        assert_int_equal(st.ev_oom_kill, 4);
        assert_int_equal(st.ev_oom_group_kill, 2);

        /* fresh counters */
        put_fixture(t->cg, "a/b/sb/memory.events", "v2/memory.events_fresh");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.ev_max + st.ev_oom + st.ev_oom_kill + st.ev_oom_group_kill, 0);

        /* keys must match whole: "oom" is not "oom_kill", whatever the order */
        put_file(t->cg, "a/b/sb/memory.events", "oom_group_kill 9\noom_kill 7\noom 3\nmax 5\nhigh 11\nlow 1\n");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.ev_high, 11);
        assert_int_equal(st.ev_max, 5);
        assert_int_equal(st.ev_oom, 3);
        assert_int_equal(st.ev_oom_kill, 7);
        assert_int_equal(st.ev_oom_group_kill, 9);

        /* truncated or garbage events: counters read as 0, never garbage */
        put_file(t->cg, "a/b/sb/memory.events", "high 1\nmax x\noom_kill\noom 18446744073709551616\n");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.ev_high, 1);
        assert_int_equal(st.ev_max, 0);
        assert_int_equal(st.ev_oom_kill, 0);
        assert_int_equal(st.ev_oom, 0);

        /* a kernel without memory.peak (< 5.19): the highest usage memrun saw */
        char pk[PATH_MAX];
        xsnprintf(pk, sizeof pk, "%s/a/b/sb/memory.peak", t->cg);
        assert_int_equal(unlink(pk), 0);
        s.max_seen = 0;
        put_fixture(t->cg, "a/b/sb/memory.current", "v2/memory.current_running");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_false(st.has_peak);
        assert_int_equal(st.peak, 155648);
        put_fixture(t->cg, "a/b/sb/memory.current", "v2/memory.current_after_oom");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.current, 36864);
        assert_int_equal(st.peak, 155648);

        /* memory.current missing or garbage: an error, and the output untouched */
        struct cg_stats before;
        memset(&st, 0x44, sizeof st);
        before = st;
        put_file(t->cg, "a/b/sb/memory.current", "12ab\n");
        assert_int_equal(cg_sandbox_stats(&s, &st), -EINVAL);
        put_file(t->cg, "a/b/sb/memory.current", "");
        assert_int_equal(cg_sandbox_stats(&s, &st), -EINVAL);
        xsnprintf(pk, sizeof pk, "%s/a/b/sb/memory.current", t->cg);
        assert_int_equal(unlink(pk), 0);
        assert_int_equal(cg_sandbox_stats(&s, &st), -ENOENT);
        assert_memory_equal(&st, &before, sizeof st);
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

static void test_sandbox_v2_memrun_subtree(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_place_facts f = { .mode = CG_V2, .own = "/a/b/sandbox", .root_user = true };
        struct cg_placement p;
        struct cg_sandbox s;

        make_v2(t);
        put_file(t->cg, "cgroup.subtree_control", ""); /* +memory not yet enabled at the root */
        /* a real kernel fills /memrun when memrun mkdirs it; the fake tree has it ready */
        v2_cgroup_dir(t, "memrun", "v2/cgroup.controllers", NULL);
        open_host(t, &h);
        assert_int_equal(cg_place(&f, &p), 0);
        assert_true(p.memrun_subtree);
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "m1", &s);
        assert_string_equal(s.path, "/memrun/m1");
        assert_int_equal(cg_sandbox_create(&h, &p, &s), 0);
        assert_true(s.memrun_subtree);
        assert_file(t, "cgroup.subtree_control", "+memory");
        assert_file(t, "memrun/cgroup.subtree_control", "+memory");
        assert_true(path_exists(t->cg, "memrun/m1"));
        assert_int_equal(cg_sandbox_remove(&h, &s), 0);
        assert_false(path_exists(t->cg, "memrun/m1"));
        assert_true(path_exists(t->cg, "memrun")); /* still holds files: left for others */
        assert_false(s.memrun_subtree);
        cg_sandbox_close(&s);

        /* the parent lacks the memory controller: a clear error */
        put_file(t->cg, "memrun/cgroup.subtree_control", "");
        put_file(t->cg, "memrun/cgroup.controllers", "cpu\n");
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "m2", &s);
        assert_int_equal(cg_sandbox_create(&h, &p, &s), -EOPNOTSUPP);
        assert_non_null(strstr(log_last_error(), "memory controller is not available in /memrun"));
        assert_false(path_exists(t->cg, "memrun/m2"));
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

static void test_sandbox_v2_split_supervisor(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_place_facts f = { .mode = CG_V2, .own = "/a/b/sandbox", .own_memory_ok = true,
                                    .own_alone = true };
        struct cg_placement p;
        struct cg_sandbox s;
        char pid[32];
        xsnprintf(pid, sizeof pid, "%d", (int)getpid());

        make_v2(t);
        open_host(t, &h);
        assert_int_equal(cg_place(&f, &p), 0);
        assert_true(p.split_supervisor);

        /* the supervisor cgroup gets no cgroup.procs on a fake tree: the move fails and is undone */
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "w", &s);
        assert_int_equal(cg_sandbox_create(&h, &p, &s), -ENOENT);
        assert_non_null(strstr(log_last_error(), "/a/b/sandbox/supervisor"));
        assert_false(path_exists(t->cg, "a/b/sandbox/supervisor"));
        assert_false(path_exists(t->cg, "a/b/sandbox/w"));
        cg_sandbox_close(&s);

        /* with the supervisor's interface file there (as the kernel would make it) */
        v2_cgroup_dir(t, "a/b/sandbox/supervisor", "v2/cgroup.controllers", NULL);
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "w", &s);
        assert_int_equal(cg_sandbox_create(&h, &p, &s), 0);
        assert_true(s.split_supervisor);
        assert_file(t, "a/b/sandbox/supervisor/cgroup.procs", pid);
        assert_file(t, "a/b/sandbox/cgroup.subtree_control", "+memory");
        assert_true(path_exists(t->cg, "a/b/sandbox/w"));
        assert_int_equal(cg_sandbox_remove(&h, &s), 0);
        assert_false(path_exists(t->cg, "a/b/sandbox/w"));
        /* undone: memrun back in its own cgroup, +memory withdrawn */
        assert_file(t, "a/b/sandbox/cgroup.procs", pid);
        assert_file(t, "a/b/sandbox/cgroup.subtree_control", "-memory");
        assert_false(s.split_supervisor);
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

static void test_sandbox_create_errors(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_placement p = { .parent = "/no/such" };
        struct cg_sandbox s;

        make_v2(t);
        open_host(t, &h);
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "x", &s);
        assert_int_equal(cg_sandbox_create(&h, &p, &s), -ENOENT);
        assert_non_null(strstr(log_last_error(), "--cgroup /no/such"));
        assert_non_null(strstr(log_last_error(), t->cg));
        assert_false(path_exists(t->cg, "no"));
        cg_sandbox_close(&s);

        /* a path too long for the buffer becomes "", never another cgroup's name */
        struct cg_placement lp;
        memset(lp.parent, 'a', sizeof lp.parent - 1);
        lp.parent[0] = '/';
        lp.parent[sizeof lp.parent - 1] = '\0';
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &lp, "name", &s);
        assert_string_equal(s.path, "");
        assert_string_equal(s.uni_path, "");
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

/* --- the sandbox on a fake hybrid / v1 tree --- */

static int cmp_pid(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

static void test_sandbox_hybrid_lifecycle(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_place_facts f;
        struct cg_placement p;
        struct cg_sandbox s;
        struct cg_stats st;

        make_v1(t, true);
        open_host(t, &h);
        assert_int_equal(cg_place_facts_read(&h, NULL, &f), 0);
        assert_int_equal(cg_place(&f, &p), 0);
        assert_string_equal(p.parent, V1_OWN);
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "memrun-42", &s);
        assert_string_equal(s.path, V1_OWN "/memrun-42");
        assert_string_equal(s.uni_path, "/memrun-42"); /* beside our own unified cgroup "/" */
        assert_int_equal(cg_sandbox_create(&h, &p, &s), 0);
        assert_true(path_exists(t->cg, "memory" V1_OWN "/memrun-42"));
        assert_true(path_exists(t->cg, "unified/memrun-42"));
        assert_true(s.uni_fd >= 0);

        static const char *const files[] = { "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                                             "memory.usage_in_bytes", "memory.max_usage_in_bytes",
                                             "memory.failcnt", "memory.oom_control", "cgroup.procs" };
        char rel[PATH_MAX];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                xsnprintf(rel, sizeof rel, "memory%s/memrun-42/%s", V1_OWN, files[i]);
                put_file(t->cg, rel, "");
        }
        assert_int_equal(cg_sandbox_set_limits(&s, 32 * MiB, 28 * MiB, 0), 0);
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "33554432");
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes", "33554432");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes", "");
        assert_int_equal(cg_sandbox_set_limits(&s, 32 * MiB, 28 * MiB, 16 * MiB), 0);
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes", "50331648");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes", "");
        assert_int_equal(cg_sandbox_set_limits(&s, SIZE_MAX_VALUE, SIZE_MAX_VALUE, 0), 0);
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "-1");
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes", "-1");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes", "");
        assert_int_equal(cg_sandbox_set_limits(&s, 32 * MiB, 28 * MiB, SIZE_MAX_VALUE), 0);
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "33554432");
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes", "-1");
        /* no swap accounting: only the memory limit */
        xsnprintf(rel, sizeof rel, "%s/memory%s/memrun-42/memory.memsw.limit_in_bytes", t->cg, V1_OWN);
        assert_int_equal(unlink(rel), 0);
        put_file(t->cg, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "");
        assert_int_equal(cg_sandbox_set_limits(&s, 64 * MiB, 60 * MiB, 0), 0);
        assert_file(t, "memory" V1_OWN "/memrun-42/memory.limit_in_bytes", "67108864");
        assert_false(path_exists(t->cg, "memory" V1_OWN "/memrun-42/memory.memsw.limit_in_bytes"));
        /* v1 has no memory.high: nothing of that name appears */
        assert_false(path_exists(t->cg, "memory" V1_OWN "/memrun-42/memory.high"));

        /* stats from this host's real sandbox after an OOM kill */
        put_fixture(t->cg, "memory" V1_OWN "/memrun-42/memory.usage_in_bytes", "v1/memory.usage_in_bytes_after_oom");
        put_fixture(t->cg, "memory" V1_OWN "/memrun-42/memory.max_usage_in_bytes",
                    "v1/memory.max_usage_in_bytes_after_oom");
        put_fixture(t->cg, "memory" V1_OWN "/memrun-42/memory.failcnt", "v1/memory.failcnt_after_oom");
        put_fixture(t->cg, "memory" V1_OWN "/memrun-42/memory.oom_control", "v1/memory.oom_control_after_oom");
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.current, 978944);
        assert_true(st.has_peak);
        assert_int_equal(st.peak, 33554432);
        assert_int_equal(st.ev_oom_kill, 1);
        assert_int_equal(st.ev_oom, 1);      /* at least the kills */
        assert_int_equal(st.ev_max, 0);      /* failcnt */
        assert_int_equal(st.ev_high, 0);
        s.oom_notifications = 3;              /* counted from the eventfd */
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.ev_oom, 3);
        put_fixture(t->cg, "memory" V1_OWN "/memrun-42/memory.oom_control", "v1/memory.oom_control");
        s.oom_notifications = 0;
        assert_int_equal(cg_sandbox_stats(&s, &st), 0);
        assert_int_equal(st.ev_oom_kill, 0);
        assert_int_equal(st.ev_oom, 0);

        /* the unified sibling answers "populated" */
        put_file(t->cg, "unified/memrun-42/cgroup.events", "");
        put_fixture(t->cg, "unified/memrun-42/cgroup.events", "v1/unified_cgroup.events_populated");
        assert_true(cg_sandbox_populated(&s));
        put_fixture(t->cg, "unified/memrun-42/cgroup.events", "v2/cgroup.events_empty");
        assert_false(cg_sandbox_populated(&s));
        put_file(t->cg, "memory" V1_OWN "/memrun-42/cgroup.procs", "4242\n");
        assert_true(cg_sandbox_populated(&s)); /* the v1 side still lists a process */
        put_file(t->cg, "memory" V1_OWN "/memrun-42/cgroup.procs", "");

        /* cgroups the program made inside the sandbox are the sandbox's: their processes are listed,
         * counted as populated, and the directories go with the sandbox (deepest first) */
        make_dirs(t->cg, "memory" V1_OWN "/memrun-42/app/worker");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/cgroup.procs", "4242\n");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/app/cgroup.procs", "4243\n4244\n");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/app/worker/cgroup.procs", "4245\n");
        pid_t pids[8];
        assert_int_equal(cg_sandbox_pids(&s, pids, 8), 4);
        qsort(pids, 4, sizeof pids[0], cmp_pid);
        assert_int_equal(pids[0], 4242);
        assert_int_equal(pids[3], 4245);
        assert_int_equal(cg_sandbox_pids(&s, pids, 2), 2); /* at most max */
        put_file(t->cg, "memory" V1_OWN "/memrun-42/cgroup.procs", "");
        put_file(t->cg, "memory" V1_OWN "/memrun-42/app/cgroup.procs", "");
        assert_true(cg_sandbox_populated(&s)); /* only the deepest lists one */
        put_file(t->cg, "memory" V1_OWN "/memrun-42/app/worker/cgroup.procs", "");
        assert_false(cg_sandbox_populated(&s));
        xsnprintf(rel, sizeof rel, "memory%s/memrun-42/app/worker", V1_OWN);
        v2_unpopulate(t, rel);
        xsnprintf(rel, sizeof rel, "memory%s/memrun-42/app", V1_OWN);
        v2_unpopulate(t, rel);

        /* remove both directories once empty */
        xsnprintf(rel, sizeof rel, "memory%s/memrun-42", V1_OWN);
        v2_unpopulate(t, rel);
        v2_unpopulate(t, "unified/memrun-42");
        assert_int_equal(cg_sandbox_remove(&h, &s), 0);
        assert_false(path_exists(t->cg, rel));
        assert_false(path_exists(t->cg, "unified/memrun-42"));
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

static void test_sandbox_hybrid_no_unified_parent(void **state)
{
        struct t *t = *state;
        struct cg_host h;
        struct cg_placement p = { .parent = V1_OWN };
        struct cg_sandbox s;

        make_v1(t, true);
        put_file(t->proc, "self/cgroup", "4:memory:" V1_OWN "\n0::/gone/away\n");
        open_host(t, &h);
        assert_int_equal(h.mode, CG_HYBRID);
        cg_sandbox_init(&s);
        cg_sandbox_paths(&h, &p, "n", &s);
        assert_string_equal(s.uni_path, "/gone/away/n");
        assert_int_equal(cg_sandbox_create(&h, &p, &s), 0); /* v1 only, with a warning */
        assert_string_equal(s.uni_path, "");
        assert_int_equal(s.uni_fd, -1);
        assert_int_equal(s.uni_parent_fd, -1);
        assert_true(path_exists(t->cg, "memory" V1_OWN "/n"));
        assert_int_equal(cg_sandbox_remove(&h, &s), 0);
        assert_false(path_exists(t->cg, "memory" V1_OWN "/n"));
        cg_sandbox_close(&s);
        cg_host_close(&h);
}

/* --- stale sandboxes --- */

static void test_remove_stale(void **state)
{
        struct t *t = *state;
        int fd = open(t->cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        make_dirs(t->cg, "p/stale");
        make_dirs(t->cg, "keep");

        static const char *const refused[] = { "", "p/stale", "stale", "/", "/p/", "/p/stale/", "/p/../keep",
                                               "/..", "/p/..", "//keep", "/p//stale", "/../etc" };
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
                if (cg_remove_stale(fd, refused[i]) != -EINVAL)
                        fail_msg("cg_remove_stale(\"%s\") not refused", refused[i]);
        assert_true(path_exists(t->cg, "p/stale"));
        assert_true(path_exists(t->cg, "keep"));

        assert_int_equal(cg_remove_stale(fd, "/p/gone"), 0); /* already gone: fine */
        assert_int_equal(cg_remove_stale(fd, "/p/stale"), 0);
        assert_false(path_exists(t->cg, "p/stale"));
        assert_true(path_exists(t->cg, "p"));
        assert_int_equal(cg_remove_stale(fd, "/keep"), 0); /* directly beneath the root */
        assert_false(path_exists(t->cg, "keep"));

        /* the cgroups a program made inside go first, deepest first */
        make_dirs(t->cg, "p/nested/app/worker");
        make_dirs(t->cg, "p/nested/other");
        assert_int_equal(cg_remove_stale(fd, "/p/nested"), 0);
        assert_false(path_exists(t->cg, "p/nested"));

        /* an unremovable directory is reported, not hidden (a fake tree's file stands for a process) */
        make_dirs(t->cg, "p/full/child");
        put_file(t->cg, "p/full/child/tasks", "");
        assert_int_equal(cg_remove_stale(fd, "/p/full"), -ENOTEMPTY);
        assert_true(path_exists(t->cg, "p/full/child"));
        close(fd);
}

/* In place, memrun signals its descendants found through /proc/PID/task/TID/children. A pid listed
 * there may be reaped and reused by an unrelated process before the signal: it is signalled only
 * while its parent is still the one it was listed under. A fake /proc lists a real child of this
 * test under a fake parent; the child's status names that parent, then another one (reused). */
static void test_signal_descendants_checks_parent(void **state)
{
        struct t *t = *state;
        char rel[64], text[64];
        make_dirs(t->proc, "4242/task/4242");
        pid_t c = child_pausing();
        xsnprintf(text, sizeof text, "%d", (int)c);
        make_dirs(t->proc, text);
        xsnprintf(rel, sizeof rel, "%d/task/%d/children", 4242, 4242);
        xsnprintf(text, sizeof text, "%d ", (int)c);
        put_file(t->proc, rel, text);
        xsnprintf(rel, sizeof rel, "%d/status", (int)c);
        put_file(t->proc, rel, "Name:\tsleep\nPPid:\t1\n"); /* reused: someone else's now */
        int proc_fd = open(t->proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(proc_fd >= 0);
        assert_int_equal(proc_signal_descendants(proc_fd, 4242, SIGTERM), 0);
        int st;
        assert_int_equal(waitpid(c, &st, WNOHANG), 0); /* not signalled */
        put_file(t->proc, rel, "Name:\tsleep\nPPid:\t4242\n"); /* still the listed one */
        assert_int_equal(proc_signal_descendants(proc_fd, 4242, SIGTERM), 1);
        assert_int_equal(waitpid(c, &st, 0), c);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
        close(proc_fd);
}

int main(void)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_detect),
                T(test_signal_descendants_checks_parent),
                T(test_parse_self_table),
                T(test_parse_self_real_samples),
                T(test_parse_self_small_buffers),
                T(test_host_open_v2),
                T(test_host_open_hybrid_and_v1),
                T(test_host_open_errors),
                T(test_place_table),
                T(test_place_wants_scope),
                T(test_sandbox_v2_adopt),
                T(test_place_facts_read),
                T(test_sandbox_v2_lifecycle),
                T(test_sandbox_v2_limits_variants),
                T(test_sandbox_v2_stats),
                T(test_sandbox_v2_memrun_subtree),
                T(test_sandbox_v2_split_supervisor),
                T(test_sandbox_create_errors),
                T(test_sandbox_hybrid_lifecycle),
                T(test_sandbox_hybrid_no_unified_parent),
                T(test_remove_stale),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
