/* test_jvm: the pieces of the JVM driver that need no JVM: the attach protocol's bytes (request and
 * answer, and a whole jcmd against a listener that speaks HotSpot's side), the /proc readers that
 * find JVMs (status, maps, flags in cmdline and JAVA_TOOL_OPTIONS), and the soft heap size. The
 * driver against a real OpenJDK is tests/host/jvm.sh. */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cgroup/cg.h"
#include "config/size.h"
#include "kernel/jattach.h"
#include "kernel/proc.h"
#include "supervise/jvm.h"

static void test_request_bytes(void **state)
{
        (void)state;
        char buf[64];
        int n = jattach_request("GC.run", buf, sizeof buf);
        static const char want[] = "1\0jcmd\0GC.run\0\0"; /* and the literal's own NUL: three after the command */
        assert_int_equal(n, (int)sizeof want);
        assert_memory_equal(buf, want, sizeof want);
        assert_int_equal(jattach_request("GC.run", buf, sizeof want - 1), -ENAMETOOLONG);
        assert_int_equal(jattach_request("GC.run", buf, sizeof want), (int)sizeof want);
        assert_int_equal(jattach_request("", buf, sizeof buf), -ENAMETOOLONG);
}

static void test_result_code(void **state)
{
        (void)state;
        int code = 99;
        assert_int_equal(jattach_result("0\n", &code), 0);
        assert_int_equal(code, 0);
        assert_int_equal(jattach_result("0\nCommand executed successfully\n", &code), 0);
        assert_int_equal(code, 0);
        assert_int_equal(jattach_result("1\nUnknown diagnostic command\n", &code), 0);
        assert_int_equal(code, 1);
        assert_int_equal(jattach_result("-1", &code), 0);
        assert_int_equal(code, -1);
        code = 99;
        assert_int_equal(jattach_result("", &code), -EBADMSG);
        assert_int_equal(jattach_result("x\n", &code), -EBADMSG);
        assert_int_equal(jattach_result("0x\n", &code), -EBADMSG);
        assert_int_equal(jattach_result("99999999999999999999\n", &code), -EBADMSG);
        assert_int_equal(code, 99);
}

/* A listener at /tmp/.java_pidPID (this process's pid: /proc/PID/root is /) that reads one request,
 * checks it byte for byte, and answers as HotSpot does. */
static void test_jcmd_against_listener(void **state)
{
        (void)state;
        char path[108];
        xsnprintf(path, sizeof path, "/tmp/.java_pid%d", (int)getpid());
        unlink(path);
        assert_false(jattach_listening(getpid(), getpid(), geteuid()));
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        memcpy(sa.sun_path, path, strlen(path) + 1);
        assert_true(lfd >= 0);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(lfd, 4), 0);
        assert_true(jattach_listening(getpid(), getpid(), geteuid()));
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                static const char want[] = "1\0jcmd\0VM.set_flag SoftMaxHeapSize 1234\0\0";
                for (int round = 0; round < 2; round++) {
                        char got[256];
                        size_t n = 0;
                        int c = accept(lfd, NULL, NULL);
                        if (c < 0)
                                _exit(2);
                        while (n < sizeof want) {
                                ssize_t r = read(c, got + n, sizeof got - n);
                                if (r <= 0)
                                        _exit(3);
                                n += (size_t)r;
                        }
                        if (n != sizeof want || memcmp(got, want, sizeof want) != 0)
                                _exit(4);
                        const char *answer = round == 0 ? "0\nok\n" : "1\nflag not writeable\n";
                        if (write(c, answer, strlen(answer)) < 0)
                                _exit(5);
                        close(c);
                }
                _exit(0);
        }
        close(lfd);
        char out[64];
        int code = -5;
        assert_int_equal(jattach_jcmd(getpid(), getpid(), "VM.set_flag SoftMaxHeapSize 1234", &code, out, sizeof out), 0);
        assert_int_equal(code, 0);
        assert_non_null(strstr(out, "ok"));
        assert_int_equal(jattach_jcmd(getpid(), getpid(), "VM.set_flag SoftMaxHeapSize 1234", &code, out, sizeof out), 0);
        assert_int_equal(code, 1);
        assert_non_null(strstr(out, "flag not writeable"));
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        /* the listener is gone: refused, and no result code */
        assert_int_equal(jattach_jcmd(getpid(), getpid(), "GC.run", &code, out, sizeof out), -ECONNREFUSED);
        unlink(path);
        assert_int_equal(jattach_jcmd(getpid(), getpid(), "GC.run", &code, out, sizeof out), -ENOENT);
}

/* What is at the attach name but is not the JVM's listener is never talked to: a regular file, a
 * socket of another owner, and a socket another process listens on (a squatter that bound the name
 * first: SO_PEERCRED names it, not the JVM). The listener "JVM" is this process. */
static void test_jcmd_refuses_impostors(void **state)
{
        (void)state;
        char path[108], out[64];
        int code = -5;
        xsnprintf(path, sizeof path, "/tmp/.java_pid%d", (int)getpid());
        unlink(path);
        put_file("/tmp", path + 5, "");
        assert_false(jattach_listening(getpid(), getpid(), geteuid()));
        assert_int_equal(jattach_jcmd(getpid(), getpid(), "GC.run", &code, out, sizeof out), -EPERM);
        unlink(path);

        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t squatter = fork();
        assert_true(squatter >= 0);
        if (squatter == 0) {
                int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                memcpy(sa.sun_path, path, strlen(path) + 1);
                if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4) < 0 ||
                    write(ready[1], "x", 1) != 1)
                        _exit(2);
                int c = accept(lfd, NULL, NULL);
                if (c >= 0 && write(c, "0\nfake\n", 7) < 0)
                        _exit(3);
                _exit(0);
        }
        char x;
        assert_int_equal(read(ready[0], &x, 1), 1);
        close(ready[0]);
        close(ready[1]);
        assert_true(jattach_listening(getpid(), getpid(), geteuid())); /* a socket of the right owner */
        assert_false(jattach_listening(getpid(), getpid(), geteuid() + 1)); /* not of another */
        assert_int_equal(jattach_jcmd(getpid(), getpid(), "GC.run", &code, out, sizeof out), -EPERM);
        assert_int_equal(code, -5);
        kill(squatter, SIGKILL);
        waitpid(squatter, NULL, 0);
        unlink(path);
}

static void test_parse_ids(void **state)
{
        (void)state;
        struct proc_ids ids;
        const char *st = "Name:\tjava\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\n"
                         "Uid:\t1000\t1001\t1001\t1001\nGid:\t2000\t2002\t2002\t2002\n"
                         "NSpid:\t4242\t17\nVmRSS:\t  394216 kB\n";
        assert_int_equal(proc_parse_ids(st, 4242, &ids), 0);
        assert_string_equal(ids.name, "java");
        assert_int_equal(ids.uid, 1001); /* the effective ids: the attach file must be the JVM's euid's */
        assert_int_equal(ids.gid, 2002);
        assert_int_equal(ids.nspid, 17);
        assert_int_equal(ids.rss, (uint64_t)394216 * 1024);
        /* no NSpid (an old kernel), no VmRSS (a kernel thread or a zombie) */
        assert_int_equal(proc_parse_ids("Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", 9, &ids), 0);
        assert_int_equal(ids.nspid, 9);
        assert_int_equal(ids.rss, 0);
        assert_int_equal(proc_parse_ids("Name:\tx\nGid:\t0\t0\t0\t0\n", 9, &ids), -EINVAL);
        assert_int_equal(proc_parse_ids("Name:\ta-name-longer-than-15\nUid:\t0\t0\nGid:\t0\t0\n", 9, &ids), 0);
        assert_string_equal(ids.name, "a-name-longer-t");
}

static void put_bytes(const char *dir, const char *rel, const char *bytes, size_t n)
{
        char path[PATH_MAX];
        xsnprintf(path, sizeof path, "%s/%s", dir, rel);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, bytes, n), (ssize_t)n);
        close(fd);
}

static void test_flags_and_maps(void **state)
{
        (void)state;
        char *root = make_tmpdir();
        make_dirs(root, "77");
        static const char cmdline[] = "java\0-Xmx500m\0-XX:+DisableAttachMechanism\0Main";
        put_bytes(root, "77/cmdline", cmdline, sizeof cmdline);
        static const char environ_[] = "HOME=/root\0JAVA_TOOL_OPTIONS=-Xss1m -Xrs  -XX:+UseZGC\0_JAVA_OPTIONS=-Xrsx";
        put_bytes(root, "77/environ", environ_, sizeof environ_);
        /* a maps file far larger than one read, the JVM's library after the cut */
        size_t size = 300000, off = 0;
        char *maps = malloc(size + 256);
        assert_non_null(maps);
        while (off < size)
                off += (size_t)sprintf(maps + off, "7f00%08zx-7f01 r--p 00000000 08:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6\n", off);
        off += (size_t)sprintf(maps + off, "7f02-7f03 r-xp 00000000 08:01 99 /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so\n");
        put_bytes(root, "77/maps", maps, off);
        make_dirs(root, "78");
        put_bytes(root, "78/maps", maps, off - strlen("libjvm.so\n") - 1);
        put_bytes(root, "78/cmdline", "x", 2);
        free(maps);

        int proc_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(proc_fd >= 0);
        static const char *const envs[] = { "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", NULL };
        assert_int_equal(proc_maps_has(proc_fd, 77, "/libjvm.so"), 1);
        assert_int_equal(proc_maps_has(proc_fd, 78, "/libjvm.so"), 0);
        assert_int_equal(proc_maps_has(proc_fd, 79, "/libjvm.so"), -ENOENT);
        assert_int_equal(proc_has_flag(proc_fd, 77, "-XX:+DisableAttachMechanism", envs), 1);
        assert_int_equal(proc_has_flag(proc_fd, 77, "-Xrs", envs), 1);       /* a word of JAVA_TOOL_OPTIONS */
        assert_int_equal(proc_has_flag(proc_fd, 77, "-XX:+UseZGC", envs), 1); /* the last word */
        assert_int_equal(proc_has_flag(proc_fd, 77, "-Xrs", NULL), 0);        /* the environment not asked */
        assert_int_equal(proc_has_flag(proc_fd, 77, "-Xss", envs), 0);        /* part of a word is no flag */
        assert_int_equal(proc_has_flag(proc_fd, 77, "-Xmx", envs), 0);
        assert_int_equal(proc_has_flag(proc_fd, 77, "Main", envs), 1);
        assert_int_equal(proc_has_flag(proc_fd, 78, "-Xrs", envs), -ENOENT); /* no environ */
        close(proc_fd);
        remove_tmpdir(root);
}

static void put_proc(const char *root, int pid, const char *name, const char *lib)
{
        char rel[64], text[512];
        xsnprintf(rel, sizeof rel, "%d", pid);
        make_dirs(root, rel);
        xsnprintf(rel, sizeof rel, "%d/status", pid);
        xsnprintf(text, sizeof text, "Name:\t%s\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmRSS:\t 1000 kB\n", name);
        put_file(root, rel, text);
        xsnprintf(rel, sizeof rel, "%d/stat", pid);
        xsnprintf(text, sizeof text, "%d (%s) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4711 0 0\n", pid, name);
        put_file(root, rel, text);
        xsnprintf(rel, sizeof rel, "%d/maps", pid);
        xsnprintf(text, sizeof text, "5555-6666 r-xp 00000000 08:01 7 /usr/bin/%s\n7f00-7f01 r-xp 00000000 08:01 9 %s\n",
                  name, lib);
        put_file(root, rel, text);
}

/* The scan: JVMs found by libjvm.so in their maps; a process found to be none is read three times
 * (the java launcher maps libjvm.so just after its exec), then no more while it stays what it was;
 * an exec (a new name) makes it new again. */
static void test_scan(void **state)
{
        (void)state;
        char *root = make_tmpdir();
        make_dirs(root, "proc");
        make_dirs(root, "cg");
        char path[PATH_MAX], proc[PATH_MAX];
        xsnprintf(proc, sizeof proc, "%s/proc", root);
        put_file(root, "cg/cgroup.procs", "100\n101\n");
        put_proc(proc, 100, "sh", "/usr/lib/x86_64-linux-gnu/libc.so.6");
        put_proc(proc, 101, "java", "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so");
        int proc_fd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        xsnprintf(path, sizeof path, "%s/cg", root);
        struct cg_sandbox sb;
        memset(&sb, 0, sizeof sb);
        sb.mem_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(proc_fd >= 0 && sb.mem_fd >= 0);
        static struct jvm_driver d;
        jvm_init(&d, true, proc_fd, &sb, NULL, 0, NULL, NULL);
        usec_t t = USEC_PER_SEC;
        jvm_scan(&d, t);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.j[0].pid, 101);
        assert_int_equal(jvm_count(&d), 1);
        jvm_scan(&d, t + USEC_PER_SEC / 2); /* too soon: nothing read */
        assert_int_equal(d.others[100].checks, 1);
        for (int i = 2; i <= 5; i++)
                jvm_scan(&d, t += USEC_PER_SEC);
        assert_int_equal(d.others[100].checks, 3); /* no more reads after the third */
        /* libjvm.so now, same process (it would be read again only as something else) */
        put_proc(proc, 100, "sh", "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so");
        jvm_scan(&d, t += USEC_PER_SEC);
        assert_int_equal(d.n, 1);
        /* it execs java: a new name */
        put_proc(proc, 100, "java", "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so");
        jvm_scan(&d, t += USEC_PER_SEC);
        assert_int_equal(d.n, 2);
        assert_int_equal(d.j[1].pid, 100);
        /* the first JVM ends: kept for the report, no longer counted */
        put_file(root, "cg/cgroup.procs", "100\n");
        xsnprintf(path, sizeof path, "%s/proc/101/status", root);
        assert_int_equal(unlink(path), 0);
        jvm_scan(&d, t += USEC_PER_SEC);
        assert_true(d.j[0].gone);
        assert_int_equal(jvm_count(&d), 1);
        close(sb.mem_fd);
        close(proc_fd);
        remove_tmpdir(root);
}

static void test_soft_heap(void **state)
{
        (void)state;
        struct jvm_driver d;
        memset(&d, 0, sizeof d);
        jvm_set_soft(&d, UINT64_C(1) << 30);
        /* a quarter of 1G is left to what is not heap, 9/10 of the rest is the soft heap size */
        assert_int_equal(d.soft_max, (UINT64_C(768) << 20) / 10 * 9);
        jvm_set_soft(&d, UINT64_C(128) << 20); /* at least 64M for the rest */
        assert_int_equal(d.soft_max, (UINT64_C(64) << 20) / 10 * 9);
        jvm_set_soft(&d, UINT64_C(32) << 20);
        assert_int_equal(d.soft_max, 0);
        jvm_set_soft(&d, SIZE_MAX_VALUE);
        assert_int_equal(d.soft_max, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_bytes),
                cmocka_unit_test(test_result_code),
                cmocka_unit_test(test_jcmd_against_listener),
                cmocka_unit_test(test_jcmd_refuses_impostors),
                cmocka_unit_test(test_parse_ids),
                cmocka_unit_test(test_flags_and_maps),
                cmocka_unit_test(test_scan),
                cmocka_unit_test(test_soft_heap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
