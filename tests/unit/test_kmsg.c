/* test_kmsg: the kernel's OOM-kill record, parsed from real lines (this host's v1 kernel and the v2
 * VM), and matched to the sandbox's cgroup record by record. */
#include "unit.h"

#include <sys/socket.h>

#include "kernel/kmsg.h"

#define V1_CG "/process_api/9de9426028ba3cf34092c7a1cd93f9f7"

/* Line n (0-based) of a fixture file, without its newline. */
static char *fixture_line(const char *rel, int n)
{
        char *text = fixture(rel);
        char *line = text;
        for (int i = 0; i < n; i++) {
                line = strchr(line, '\n');
                assert_non_null(line);
                line++;
        }
        char *res = strndup(line, strcspn(line, "\n"));
        free(text);
        assert_non_null(res);
        return res;
}

static void test_parse_real_lines(void **state)
{
        (void)state;
        struct oom_victim v;

        /* this host (v1), raw /dev/kmsg record */
        char *l = fixture_line("v1/kmsg_oom_kill", 1);
        assert_int_equal(kmsg_parse_oom(l, &v), 0);
        assert_int_equal(v.pid, 10732);
        assert_string_equal(v.comm, "leak");
        assert_string_equal(v.task_memcg, V1_CG "/memrun-10730");
        assert_string_equal(v.memcg, V1_CG "/memrun-10730");
        free(l);

        /* the same kind of line as dmesg prints it */
        l = fixture_line("v1/dmesg_oom_kill", 0);
        assert_int_equal(kmsg_parse_oom(l, &v), 0);
        assert_int_equal(v.pid, 10732);
        assert_string_equal(v.comm, "leak");
        free(l);

        /* the v2 VM: dd filling tmpfs */
        l = fixture_line("v2/kmsg_oom_kill", 0);
        assert_int_equal(kmsg_parse_oom(l, &v), 0);
        assert_int_equal(v.pid, 110);
        assert_string_equal(v.comm, "dd");
        assert_string_equal(v.task_memcg, "/a/b/sandbox");
        assert_string_equal(v.memcg, "/a/b/sandbox");
        free(l);

        /* the v2 VM: a program whose name holds a comma and spaces */
        l = fixture_line("v2/kmsg_oom_kill", 1);
        assert_int_equal(kmsg_parse_oom(l, &v), 0);
        assert_int_equal(v.pid, 112);
        assert_string_equal(v.comm, "my, odd comm");
        assert_string_equal(v.task_memcg, "/a/b/sandbox");
        free(l);
        l = fixture_line("v2/dmesg_oom_kill", 1);
        assert_int_equal(kmsg_parse_oom(l, &v), 0);
        assert_string_equal(v.comm, "my, odd comm");
        free(l);
}

#define HEAD "6,413,2175456,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"

struct parse_case {
        const char *text;
        int ret;
        pid_t pid;
        const char *comm, *task_memcg, *memcg;
};

static const struct parse_case parse_cases[] = {
        { HEAD "oom_memcg=/s,task_memcg=/s/x,task=a,b,pid=7,uid=0", 0, 7, "a,b", "/s/x", "/s" },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=x,pid=1,pid=2,pid=3,uid=0", 0, 3, "x,pid=1,pid=2", "/s", "/s" },
        { HEAD "oom_memcg=/s,task_memcg=/s,task= ,pid=9,uid=0", 0, 9, " ", "/s", "/s" },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=w,pid=42", 0, 42, "w", "/s", "/s" },        /* no uid */
        { HEAD "oom_memcg=/s,task_memcg=/s,task=w,pid=42,uid=0\n SUBSYSTEM=x\n", 0, 42, "w", "/s", "/s" },
        { HEAD "task_memcg=/s,task=w,pid=42,uid=0", 0, 42, "w", "/s", "" },                  /* no oom_memcg */
        { "oom-kill:constraint=CONSTRAINT_NONE,task_memcg=/,task=init,pid=2147483647,uid=0", 0, 2147483647,
          "init", "/", "" },
        { "[ 1.0] oom-kill:constraint=CONSTRAINT_NONE,task_memcg=/t,task=c;d,pid=5,uid=0", 0, 5, "c;d", "/t", "" },
        /* missing or bad pid */
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,pid=,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,pid=0,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,pid=-1,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,pid=12x,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,pid=2147483648,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,pid=99999999999999999999999,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        /* missing fields */
        { HEAD "oom_memcg=/s,task=leak,pid=5,uid=0", -EINVAL, 0, NULL, NULL, NULL },         /* no task_memcg */
        { HEAD "oom_memcg=/s,task_memcg=/s,pid=5,uid=0", -EINVAL, 0, NULL, NULL, NULL },     /* no task */
        { HEAD "oom_memcg=/s,task_memcg=/s,task=,pid=5,uid=0", -EINVAL, 0, NULL, NULL, NULL },/* empty comm */
        { HEAD "oom_memcg=/s,task_memcg=/s,task=0123456789012345678901234567890123456789012345678901234567890123,"
               "pid=5,uid=0", -EINVAL, 0, NULL, NULL, NULL },                                      /* 64-char comm */
        /* truncated records */
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak,pi", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_memcg=/s,task=le", -EINVAL, 0, NULL, NULL, NULL },
        { HEAD "oom_memcg=/s,task_mem", -EINVAL, 0, NULL, NULL, NULL },
        { "6,413,2175456,-;oom-kill:", -EINVAL, 0, NULL, NULL, NULL },
        { "6,413,2175456,-;oom-ki", -EINVAL, 0, NULL, NULL, NULL },
        /* the pid must be on the record's first line */
        { HEAD "oom_memcg=/s,task_memcg=/s,task=leak\n pid=5,pid=6", -EINVAL, 0, NULL, NULL, NULL },
        /* other kernel lines, garbage */
        { "3,414,2176200,-;Memory cgroup out of memory: Killed process 110 (dd) total-vm:3284kB", -EINVAL, 0, NULL,
          NULL, NULL },
        { "4,368,2173043,-;dd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", -EINVAL, 0,
          NULL, NULL, NULL },
        { "6,1,2,-;something else; oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/s,task=x,pid=5,uid=0", -EINVAL, 0, NULL, NULL, NULL },
        { "", -EINVAL, 0, NULL, NULL, NULL },
        { ";;;", -EINVAL, 0, NULL, NULL, NULL },
        { "\xff\xfe oom-kill", -EINVAL, 0, NULL, NULL, NULL },
};

static void test_parse_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
                const struct parse_case *c = &parse_cases[i];
                struct oom_victim v;
                memset(&v, 0x61, sizeof v);
                int r = kmsg_parse_oom(c->text, &v);
                if (r != c->ret)
                        fail_msg("case %zu (\"%s\"): %d, want %d", i, c->text, r, c->ret);
                if (r < 0) {
                        struct oom_victim u;
                        memset(&u, 0x61, sizeof u);
                        if (memcmp(&u, &v, sizeof v) != 0)
                                fail_msg("case %zu: output written on failure", i);
                        continue;
                }
                if (v.pid != c->pid || strcmp(v.comm, c->comm) != 0 || strcmp(v.task_memcg, c->task_memcg) != 0 ||
                    strcmp(v.memcg, c->memcg) != 0)
                        fail_msg("case %zu: pid %d comm \"%s\" task_memcg \"%s\" memcg \"%s\"; want %d \"%s\" \"%s\" "
                                 "\"%s\"", i, (int)v.pid, v.comm, v.task_memcg, v.memcg, (int)c->pid, c->comm,
                                 c->task_memcg, c->memcg);
        }
}

/* Records a SOCK_SEQPACKET pair delivers one per read(), like /dev/kmsg. */
static int records(const char *const *recs)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        for (const char *const *r = recs; *r; r++)
                assert_int_equal(write(sv[1], *r, strlen(*r)), (ssize_t)strlen(*r));
        close(sv[1]); /* end of records: read() returns 0 */
        return sv[0];
}

#define REC(cg, comm, pid) \
        "6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=" cg ",task_memcg=" cg ",task=" comm ",pid=" pid ",uid=0\n"

static void test_find_matches_cgroup(void **state)
{
        (void)state;
        struct oom_victim v;
        const char *const recs[] = {
                "4,5,6,-;x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n",
                REC("/a/bc", "sibling", "10"),   /* a name that only starts like ours */
                REC("/a", "parent", "11"),       /* above us */
                REC("/a/b/c", "child", "12"),    /* beneath us: ours */
                "garbage",
                REC("/a/b", "ours", "13"),       /* exactly us, later: the last one wins */
                REC("/z", "other", "14"),
                "6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/a/b,task=broken,pid=,uid=0\n",
                NULL,
        };
        int fd = records(recs);
        memset(&v, 0, sizeof v);
        assert_int_equal(kmsg_find_oom(fd, "/a/b", &v), 1);
        assert_int_equal(v.pid, 13);
        assert_string_equal(v.comm, "ours");
        close(fd);

        const char *const only_child[] = { REC("/a/b/c/d", "deep", "20"), REC("/a/bc", "no", "21"), NULL };
        fd = records(only_child);
        assert_int_equal(kmsg_find_oom(fd, "/a/b", &v), 1);
        assert_int_equal(v.pid, 20);
        assert_string_equal(v.comm, "deep");
        close(fd);

        const char *const none[] = { REC("/a/bc", "no", "30"), REC("/a", "no", "31"), REC("/", "no", "32"),
                                     "3,4,5,-;Memory cgroup out of memory: Killed process 30 (no)\n", NULL };
        fd = records(none);
        struct oom_victim u;
        memset(&v, 0x5c, sizeof v);
        u = v;
        assert_int_equal(kmsg_find_oom(fd, "/a/b", &v), 0);
        assert_memory_equal(&u, &v, sizeof v); /* untouched when nothing matched */
        close(fd);

        /* real records from this host and from the VM */
        char *v1 = fixture("v1/kmsg_oom_kill"), *v2 = fixture("v2/kmsg_oom_kill");
        char *v1a = strndup(v1, strcspn(v1, "\n") + 1), *v1b = strdup(v1 + strcspn(v1, "\n") + 1);
        char *v2a = strndup(v2, strcspn(v2, "\n") + 1), *v2b = strdup(v2 + strcspn(v2, "\n") + 1);
        const char *const real[] = { v1a, v1b, v2a, v2b, NULL };
        fd = records(real);
        assert_int_equal(kmsg_find_oom(fd, V1_CG "/memrun-10693", &v), 1);
        assert_int_equal(v.pid, 10695);
        close(fd);
        fd = records(real);
        assert_int_equal(kmsg_find_oom(fd, "/a/b", &v), 1);
        assert_int_equal(v.pid, 112);
        assert_string_equal(v.comm, "my, odd comm");
        close(fd);
        fd = records(real);
        assert_int_equal(kmsg_find_oom(fd, V1_CG, &v), 1); /* memrun's own cgroup holds both sandboxes */
        assert_int_equal(v.pid, 10732);
        close(fd);
        free(v1), free(v2), free(v1a), free(v1b), free(v2a), free(v2b);

        /* a non-blocking source with nothing (more) to read: EAGAIN ends the scan */
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        const char *r1 = REC("/a/b", "nb", "40");
        assert_int_equal(write(sv[1], r1, strlen(r1)), (ssize_t)strlen(r1));
        assert_int_equal(kmsg_find_oom(sv[0], "/a/b", &v), 1);
        assert_int_equal(v.pid, 40);
        assert_int_equal(kmsg_find_oom(sv[0], "/a/b", &v), 0);
        close(sv[0]);
        close(sv[1]);
}

static void test_open(void **state)
{
        (void)state;
        char *tmp = make_tmpdir();
        char path[PATH_MAX];
        struct oom_victim v;

        xsnprintf(path, sizeof path, "%s/nope", tmp);
        assert_int_equal(kmsg_open(path), -ENOENT); /* no nope/kmsg */

        /* records already there are not ours: kmsg_open starts after them */
        put_file(tmp, "kmsg", REC("/a/b", "old", "50"));
        xsnprintf(path, sizeof path, "%s/kmsg", tmp);
        int fd = kmsg_open(tmp);
        assert_true(fd >= 0);
        assert_int_equal(kmsg_find_oom(fd, "/a/b", &v), 0);
        int flags = fcntl(fd, F_GETFD);
        assert_true(flags & FD_CLOEXEC);
        assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
        /* a record appended later is found */
        FILE *f = fopen(path, "ae");
        assert_non_null(f);
        fputs(REC("/a/b", "new", "51"), f);
        fclose(f);
        assert_int_equal(kmsg_find_oom(fd, "/a/b", &v), 1);
        assert_int_equal(v.pid, 51);
        assert_string_equal(v.comm, "new");
        close(fd);
        remove_tmpdir(tmp);
}

/* Cgroup names may contain commas and the kernel prints the path as is, so task_memcg runs up to
 * ",task=" and oom_memcg up to ",task_memcg=", not to the first comma: a sandbox under
 * --cgroup /deleg,x gets its victim named. */
static void test_memcg_with_comma(void **state)
{
        (void)state;
        struct oom_victim v;
        const char *line = "6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
                           "oom_memcg=/deleg,x/sb,task_memcg=/deleg,x/sb,task=leak,pid=77,uid=0";
        assert_int_equal(kmsg_parse_oom(line, &v), 0);
        assert_int_equal(v.pid, 77);
        assert_string_equal(v.comm, "leak");
        if (strcmp(v.task_memcg, "/deleg,x/sb") != 0 || strcmp(v.memcg, "/deleg,x/sb") != 0)
                fail_msg("a cgroup path with a comma: task_memcg \"%s\", oom_memcg \"%s\"; want \"/deleg,x/sb\" for both",
                         v.task_memcg, v.memcg);
}

/* The rate-limited summary missing: the always-logged "Killed process" record of the command's pid
 * names the victim; another pid's does not; a summary that matches the cgroup still wins. */
static void test_killed_fallback(void **state)
{
        (void)state;
        struct oom_victim v;
        static const struct {
                const char *text;
                int r;
                int pid;
                const char *comm;
        } t[] = {
                { "3,740,1960606,-;Memory cgroup out of memory: Killed process 4242 (python3) total-vm:217000kB, "
                  "anon-rss:65184kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:176kB oom_score_adj:0\n",
                  0, 4242, "python3" },
                { "Out of memory: Killed process 7 (a) b) total-vm:1kB\n", 0, 7, "a) b" },
                { "Killed process 7 (x)", 0, 7, "x" },
                { "Killed process (x) total-vm:1kB", -EINVAL, 0, NULL },
                { "Killed process 0 (x) total-vm:1kB", -EINVAL, 0, NULL },
                { "Killed process 99999999999 (x) total-vm:1kB", -EINVAL, 0, NULL },
                { "Killed process 5 () total-vm:1kB", -EINVAL, 0, NULL },
                { "Killed process 5 x", -EINVAL, 0, NULL },
                { "oom-kill:constraint=CONSTRAINT_MEMCG", -ENOENT, 0, NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                memset(&v, 0, sizeof v);
                assert_int_equal(kmsg_parse_killed(t[i].text, &v), t[i].r);
                if (t[i].r == 0) {
                        assert_int_equal(v.pid, t[i].pid);
                        assert_string_equal(v.comm, t[i].comm);
                }
        }
        const char *const recs[] = {
                "3,1,2,-;Memory cgroup out of memory: Killed process 50 (other) total-vm:1kB\n",
                "3,2,3,-;Memory cgroup out of memory: Killed process 51 (ours) total-vm:1kB\n",
                NULL,
        };
        int fd = records(recs);
        assert_int_equal(kmsg_wait_oom(fd, "/a/b", 51, 0, &v), 1);
        assert_int_equal(v.pid, 51);
        assert_string_equal(v.comm, "ours");
        close(fd);
        fd = records(recs);
        assert_int_equal(kmsg_wait_oom(fd, "/a/b", 52, 0, &v), 0);
        close(fd);
        fd = records(recs);
        assert_int_equal(kmsg_find_oom(fd, "/a/b", &v), 0); /* no pid given: no fallback */
        close(fd);
        const char *const both[] = { recs[1], REC("/a/b", "summary", "51"), NULL };
        fd = records(both);
        assert_int_equal(kmsg_wait_oom(fd, "/a/b", 51, 0, &v), 1);
        assert_string_equal(v.comm, "summary");
        close(fd);
}

int main(void)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_real_lines),
                cmocka_unit_test(test_parse_table),
                cmocka_unit_test(test_find_matches_cgroup),
                cmocka_unit_test(test_killed_fallback),
                cmocka_unit_test(test_open),
                cmocka_unit_test(test_memcg_with_comma),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
