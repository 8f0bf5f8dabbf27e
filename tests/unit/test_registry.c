/* test_registry: sandbox records: the strict parser, and the sweep that removes the cgroups of dead
 * supervisors (lock free) while leaving live (locked), malformed and foreign records alone. */
#include "unit.h"

#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "cgroup/cg.h"
#include "log.h"
#include "cgroup/registry.h"
#include "util.h"

struct reg_case {
        const char *text;
        int ret;
        int mode;
        const char *mem, *uni;
};

static const struct reg_case reg_cases[] = {
        { "mode 0\nmem /a/b\nuni /a/b\n", 0, CG_V2, "/a/b", "/a/b" },
        { "mode 1\nmem /process_api/x/memrun-1\nuni /memrun-1\n", 0, CG_HYBRID, "/process_api/x/memrun-1", "/memrun-1" },
        { "mode 2\nmem /p/memrun-7\nuni \n", 0, CG_V1, "/p/memrun-7", "" },
        { "mode 1\nmem /a b/c\nuni \n", 0, CG_HYBRID, "/a b/c", "" }, /* spaces belong to the path */
        { "mode 1\nmem /a/.x\nuni /.b\n", 0, CG_HYBRID, "/a/.x", "/.b" },
        /* missing or reordered lines */
        { "", -EINVAL, 0, NULL, NULL },
        { "mode 1\n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a\n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nuni /a\nmem /a\n", -EINVAL, 0, NULL, NULL },
        { "mem /a\nuni /a\n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a\nuni /a", -EINVAL, 0, NULL, NULL },   /* truncated: no final newline */
        { "mode 1\nmem /a", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem \nuni \n", -EINVAL, 0, NULL, NULL },     /* mem is required */
        { "mode 1\nmem\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmemory /a\nuni \n", -EINVAL, 0, NULL, NULL },
        /* paths that could name something memrun did not create */
        { "mode 1\nmem a/b\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a/../etc\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /..\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a/..\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a//b\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a/\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a\nuni b\n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a\nuni /\n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a\nuni /x/../y\n", -EINVAL, 0, NULL, NULL },
        /* trailing junk */
        { "mode 1\nmem /a\nuni /b\nextra", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a\nuni /b\n\n", -EINVAL, 0, NULL, NULL },
        { "mode 1\nmem /a\nuni /b\nmem /c\n", -EINVAL, 0, NULL, NULL },
        /* bad mode */
        { "mode 3\nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 9\nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 12\nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode -1\nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode x\nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode 1 \nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "mode \nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "MODE 1\nmem /a\nuni \n", -EINVAL, 0, NULL, NULL },
        { "garbage", -EINVAL, 0, NULL, NULL },
};

static void test_parse_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof reg_cases / sizeof reg_cases[0]; i++) {
                const struct reg_case *c = &reg_cases[i];
                char mem[PATH_MAX], uni[PATH_MAX];
                int mode = -42;
                int r = registry_parse(c->text, &mode, mem, sizeof mem, uni, sizeof uni);
                if (r != c->ret)
                        fail_msg("case %zu (\"%s\"): %d, want %d", i, c->text, r, c->ret);
                if (r == 0 && (mode != c->mode || strcmp(mem, c->mem) != 0 || strcmp(uni, c->uni) != 0))
                        fail_msg("case %zu: mode %d mem \"%s\" uni \"%s\"", i, mode, mem, uni);
                if (r < 0 && mode != -42)
                        fail_msg("case %zu: mode written on failure", i);
        }
}

static void test_parse_small_buffers(void **state)
{
        (void)state;
        char mem[6], uni[6];
        int mode;
        assert_int_equal(registry_parse("mode 1\nmem /abcd\nuni /xy\n", &mode, mem, sizeof mem, uni, sizeof uni), 0);
        assert_string_equal(mem, "/abcd");
        assert_int_equal(registry_parse("mode 1\nmem /abcde\nuni /xy\n", &mode, mem, sizeof mem, uni, sizeof uni),
                         -EINVAL);
        assert_int_equal(registry_parse("mode 1\nmem /ab\nuni /abcdef\n", &mode, mem, sizeof mem, uni, sizeof uni),
                         -EINVAL);
}

/* --- add, drop, sweep on a fake hybrid tree --- */

struct t {
        char *tmp;
        char rt[PATH_MAX]; /* runtime dir */
        char cg[PATH_MAX];
        struct cg_host h;
        int saved_stderr;
};

static int setup(void **state)
{
        struct t *t = calloc(1, sizeof *t);
        assert_non_null(t);
        t->tmp = make_tmpdir();
        xsnprintf(t->rt, sizeof t->rt, "%s/rt", t->tmp);
        xsnprintf(t->cg, sizeof t->cg, "%s/cg", t->tmp);
        assert_int_equal(mkdir(t->rt, 0700), 0);
        make_dirs(t->tmp, "cg/memory/own");
        make_dirs(t->tmp, "cg/unified");
        t->h.mode = CG_HYBRID;
        xsnprintf(t->h.root, sizeof t->h.root, "%s", t->cg);
        xsnprintf(t->h.own_mem, sizeof t->h.own_mem, "/own");
        xsnprintf(t->h.own_uni, sizeof t->h.own_uni, "/");
        char p[PATH_MAX];
        xsnprintf(p, sizeof p, "%s/memory", t->cg);
        t->h.mem_root_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        xsnprintf(p, sizeof p, "%s/unified", t->cg);
        t->h.uni_root_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(t->h.mem_root_fd >= 0 && t->h.uni_root_fd >= 0);
        t->saved_stderr = stderr_mute();
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        struct t *t = *state;
        stderr_restore(t->saved_stderr);
        cg_host_close(&t->h);
        remove_tmpdir(t->tmp);
        free(t);
        return 0;
}

static void sandbox_for(struct cg_sandbox *s, enum cg_mode mode, const char *path, const char *uni)
{
        cg_sandbox_init(s);
        s->mode = mode;
        xsnprintf(s->path, sizeof s->path, "%s", path);
        xsnprintf(s->uni_path, sizeof s->uni_path, "%s", uni);
}

static void test_add_and_drop(void **state)
{
        struct t *t = *state;
        struct cg_sandbox s;
        struct registry reg = { .fd = -1 };
        char want[PATH_MAX], rel[64];

        sandbox_for(&s, CG_HYBRID, "/own/memrun-5", "/memrun-5");
        assert_int_equal(registry_add(t->rt, &s, &reg), 0);
        assert_true(reg.fd >= 0);
        xsnprintf(want, sizeof want, "%s/sandbox.%d", t->rt, (int)getpid());
        assert_string_equal(reg.path, want);
        xsnprintf(rel, sizeof rel, "sandbox.%d", (int)getpid());
        char *text = get_file(t->rt, rel);
        assert_string_equal(text, "mode 1\nmem /own/memrun-5\nuni /memrun-5\n");
        /* what add writes, parse reads */
        int mode;
        char mem[PATH_MAX], uni[PATH_MAX];
        assert_int_equal(registry_parse(text, &mode, mem, sizeof mem, uni, sizeof uni), 0);
        assert_int_equal(mode, CG_HYBRID);
        assert_string_equal(mem, "/own/memrun-5");
        assert_string_equal(uni, "/memrun-5");
        free(text);
        xsnprintf(rel, sizeof rel, ".new.%d", (int)getpid());
        assert_false(path_exists(t->rt, rel)); /* the temp name is gone */

        /* the record is locked: another open file description cannot take the lock */
        int fd = open(reg.path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
        assert_int_equal(errno, EWOULDBLOCK);

        registry_drop(&reg);
        assert_int_equal(reg.fd, -1);
        assert_int_equal(access(want, F_OK), -1);
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0); /* lock released */
        close(fd);
        registry_drop(&reg); /* twice is harmless */

        /* a v1 record has an empty unified line, and still parses */
        sandbox_for(&s, CG_V1, "/own/memrun-6", "");
        assert_int_equal(registry_add(t->rt, &s, &reg), 0);
        xsnprintf(rel, sizeof rel, "sandbox.%d", (int)getpid());
        text = get_file(t->rt, rel);
        assert_string_equal(text, "mode 2\nmem /own/memrun-6\nuni \n");
        assert_int_equal(registry_parse(text, &mode, mem, sizeof mem, uni, sizeof uni), 0);
        free(text);
        registry_drop(&reg);

        /* no runtime directory */
        char nodir[PATH_MAX];
        xsnprintf(nodir, sizeof nodir, "%s/nope", t->tmp);
        reg.fd = -1;
        assert_int_equal(registry_add(nodir, &s, &reg), -ENOENT);
        assert_int_equal(reg.fd, -1);
}

static void test_sweep(void **state)
{
        struct t *t = *state;
        struct cg_sandbox s;
        struct registry live = { .fd = -1 };

        /* 1. live: our own locked record, its cgroup present and empty */
        make_dirs(t->cg, "memory/own/live");
        make_dirs(t->cg, "unified/live");
        sandbox_for(&s, CG_HYBRID, "/own/live", "/live");
        assert_int_equal(registry_add(t->rt, &s, &live), 0);

        /* 2. stale: nobody holds the lock, cgroups present and empty */
        make_dirs(t->cg, "memory/own/stale");
        make_dirs(t->cg, "unified/stale");
        put_file(t->rt, "sandbox.999991", "mode 1\nmem /own/stale\nuni /stale\n");

        /* 3. stale, cgroups already gone */
        put_file(t->rt, "sandbox.999992", "mode 1\nmem /own/gone\nuni /gone\n");

        /* 4. malformed: left alone, with its cgroup */
        make_dirs(t->cg, "memory/own/bad");
        put_file(t->rt, "sandbox.999993", "mode 1\nmem /own/bad/../../..\nuni \n");
        put_file(t->rt, "sandbox.999994", "");

        /* 5. another layout's record: not judged */
        make_dirs(t->cg, "memory/own/other");
        put_file(t->rt, "sandbox.999995", "mode 0\nmem /own/other\nuni /own/other\n");

        /* 6. stale but the cgroup cannot be removed (a process left in a cgroup the program made
         * inside, which a fake tree's file stands for): record kept for next time */
        make_dirs(t->cg, "memory/own/busy/child");
        put_file(t->cg, "memory/own/busy/child/tasks", "");
        put_file(t->rt, "sandbox.999996", "mode 1\nmem /own/busy\nuni \n");

        /* 7. not a record name */
        make_dirs(t->cg, "memory/own/tmp");
        put_file(t->rt, ".new.999997", "mode 1\nmem /own/tmp\nuni \n");
        put_file(t->rt, "notes", "mode 1\nmem /own/tmp\nuni \n");

        /* 8. a live record held by another process (a real second supervisor) */
        make_dirs(t->cg, "memory/own/child");
        put_file(t->rt, "sandbox.999998", "mode 1\nmem /own/child\nuni \n");
        char rec[PATH_MAX];
        xsnprintf(rec, sizeof rec, "%s/sandbox.999998", t->rt);
        int pipefd[2];
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = open(rec, O_RDONLY | O_CLOEXEC);
                char c = 'x';
                if (fd < 0 || flock(fd, LOCK_EX) < 0)
                        c = 'e';
                if (write(pipefd[1], &c, 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        close(pipefd[1]);
        char c = 0;
        assert_int_equal(read(pipefd[0], &c, 1), 1);
        close(pipefd[0]);
        assert_int_equal(c, 'x');

        int r = registry_sweep(t->rt, &t->h);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        assert_int_equal(r, 2); /* the stale one and the one already gone */

        assert_true(path_exists(t->cg, "memory/own/live"));
        assert_true(path_exists(t->cg, "unified/live"));
        assert_true(path_exists(t->rt, live.path + strlen(t->rt) + 1));

        assert_false(path_exists(t->cg, "memory/own/stale"));
        assert_false(path_exists(t->cg, "unified/stale"));
        assert_false(path_exists(t->rt, "sandbox.999991"));
        assert_false(path_exists(t->rt, "sandbox.999992"));

        assert_true(path_exists(t->rt, "sandbox.999993"));
        assert_true(path_exists(t->rt, "sandbox.999994"));
        assert_true(path_exists(t->cg, "memory/own/bad"));
        assert_true(path_exists(t->cg, "memory/own"));

        assert_true(path_exists(t->rt, "sandbox.999995"));
        assert_true(path_exists(t->cg, "memory/own/other"));

        assert_true(path_exists(t->rt, "sandbox.999996"));
        assert_true(path_exists(t->cg, "memory/own/busy/child"));

        assert_true(path_exists(t->rt, ".new.999997"));
        assert_true(path_exists(t->rt, "notes"));
        assert_true(path_exists(t->cg, "memory/own/tmp"));

        assert_true(path_exists(t->rt, "sandbox.999998"));
        assert_true(path_exists(t->cg, "memory/own/child"));

        /* the supervisor of the live one dies (drops its lock without deleting): the next sweep cleans */
        close_fd(&live.fd);
        r = registry_sweep(t->rt, &t->h);
        assert_int_equal(r, 2); /* ours, and 999998 whose holder was killed */
        assert_false(path_exists(t->cg, "memory/own/live"));
        assert_false(path_exists(t->cg, "unified/live"));
        assert_false(path_exists(t->cg, "memory/own/child"));
        assert_false(path_exists(t->rt, "sandbox.999998"));
        assert_true(path_exists(t->rt, "sandbox.999993")); /* still never touched */

        char nodir[PATH_MAX];
        xsnprintf(nodir, sizeof nodir, "%s/nope", t->tmp);
        assert_int_equal(registry_sweep(nodir, &t->h), -ENOENT);
}

/* Pressure socket directories (control/psrv.c): a stale one (lock free) loses its socket and goes;
 * a locked one stays; one holding anything else stays (only "pressure" is ever removed); a
 * regular file or a symlink named pressure.* is never followed or removed. */
static void test_sweep_pressure_dirs(void **state)
{
        struct t *t = *state;
        make_dirs(t->rt, "pressure.stale.AAAAAA");
        put_file(t->rt, "pressure.stale.AAAAAA/pressure", "");
        make_dirs(t->rt, "pressure.live.BBBBBB");
        put_file(t->rt, "pressure.live.BBBBBB/pressure", "");
        make_dirs(t->rt, "pressure.full.CCCCCC");
        put_file(t->rt, "pressure.full.CCCCCC/pressure", "");
        put_file(t->rt, "pressure.full.CCCCCC/other", "x");
        put_file(t->rt, "pressure.file", "x");
        /* one never finished (its memrun died between mkdtemp and the rename): swept once it is old;
         * one being made now is left to its memrun */
        make_dirs(t->rt, ".pressure.died.DDDDDD");
        make_dirs(t->rt, ".pressure.making.EEEEEE");
        char old[PATH_MAX];
        xsnprintf(old, sizeof old, "%s/.pressure.died.DDDDDD", t->rt);
        struct timespec then[2] = { { .tv_sec = time(NULL) - 3600 }, { .tv_sec = time(NULL) - 3600 } };
        assert_int_equal(utimensat(AT_FDCWD, old, then, 0), 0);
        make_dirs(t->tmp, "outside");
        put_file(t->tmp, "outside/pressure", "");
        char target[PATH_MAX], link[PATH_MAX];
        xsnprintf(target, sizeof target, "%s/outside", t->tmp);
        xsnprintf(link, sizeof link, "%s/pressure.link", t->rt);
        assert_int_equal(symlink(target, link), 0);

        char live[PATH_MAX];
        xsnprintf(live, sizeof live, "%s/pressure.live.BBBBBB", t->rt);
        int fd = open(live, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX), 0);
        /* the lock is the open file's: a fork's own open (the sweep's) cannot take it */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(registry_sweep(t->rt, &t->h) == 0 ? 0 : 1);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_int_equal(st, 0);

        assert_false(path_exists(t->rt, "pressure.stale.AAAAAA"));
        assert_false(path_exists(t->rt, ".pressure.died.DDDDDD"));
        assert_true(path_exists(t->rt, ".pressure.making.EEEEEE"));
        assert_true(path_exists(t->rt, "pressure.live.BBBBBB/pressure"));
        assert_true(path_exists(t->rt, "pressure.full.CCCCCC/other"));
        assert_true(path_exists(t->rt, "pressure.file"));
        assert_true(path_exists(t->tmp, "outside/pressure"));

        close(fd); /* its memrun dies */
        assert_int_equal(registry_sweep(t->rt, &t->h), 0);
        assert_false(path_exists(t->rt, "pressure.live.BBBBBB"));
}

static void test_runtime_dir(void **state)
{
        struct t *t = *state;
        char buf[PATH_MAX], want[PATH_MAX];
        const char *old = getenv("MEMRUN_RUNTIME_DIR");
        char *saved = old ? strdup(old) : NULL;

        xsnprintf(want, sizeof want, "%s/made", t->tmp);
        setenv("MEMRUN_RUNTIME_DIR", want, 1);
        assert_int_equal(registry_dir(buf, sizeof buf), 0);
        assert_string_equal(buf, want);
        struct stat st;
        assert_int_equal(stat(want, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 077, 0);
        assert_int_equal(registry_dir(buf, sizeof buf), 0); /* exists already: fine */

        /* a directory others may write could feed us paths to remove */
        assert_int_equal(chmod(want, 0777), 0);
        assert_int_equal(registry_dir(buf, sizeof buf), -EPERM);
        assert_int_equal(chmod(want, 0720), 0);
        assert_int_equal(registry_dir(buf, sizeof buf), -EPERM);

        /* not a directory */
        xsnprintf(want, sizeof want, "%s/file", t->tmp);
        put_file(t->tmp, "file", "");
        setenv("MEMRUN_RUNTIME_DIR", want, 1);
        assert_int_equal(registry_dir(buf, sizeof buf), -EPERM);

        /* parent missing */
        xsnprintf(want, sizeof want, "%s/no/such", t->tmp);
        setenv("MEMRUN_RUNTIME_DIR", want, 1);
        assert_int_equal(registry_dir(buf, sizeof buf), -ENOENT);

        if (saved) {
                setenv("MEMRUN_RUNTIME_DIR", saved, 1);
                free(saved);
        } else {
                unsetenv("MEMRUN_RUNTIME_DIR");
        }
}

int main(void)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_table),
                cmocka_unit_test(test_parse_small_buffers),
                cmocka_unit_test_setup_teardown(test_add_and_drop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sweep_pressure_dirs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_dir, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
