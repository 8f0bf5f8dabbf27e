/* test_preload: which programs --preload can reach (dynamic ELF, scripts) and which it cannot
 * (static, setuid), and that an existing LD_PRELOAD is kept. */
#include "unit.h"

#include "supervise/preload.h"

static int open_ro(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void test_elf_kinds(void **state)
{
        (void)state;
        int fd = open_ro("/bin/sh"); /* dash/bash: dynamic on Debian */
        assert_int_equal(preload_elf_dynamic(fd), 1);
        close(fd);
        if (access("/bin/busybox", R_OK) == 0) { /* busybox-static (a test dependency) */
                fd = open_ro("/bin/busybox");
                assert_int_equal(preload_elf_dynamic(fd), 0);
                close(fd);
        }
        char *dir = make_tmpdir();
        put_file(dir, "script", "#!/bin/sh\necho hi\n");
        put_file(dir, "short", "\x7f" "EL");
        put_file(dir, "fakeelf", "\x7f" "ELF\x02\x01\x01garbage-after-the-magic-but-no-real-header......");
        static const char *const notelf[] = { "script", "short" };
        for (size_t i = 0; i < 2; i++) {
                char p[PATH_MAX];
                xsnprintf(p, sizeof p, "%s/%s", dir, notelf[i]);
                fd = open_ro(p);
                assert_int_equal(preload_elf_dynamic(fd), -ENOEXEC);
                close(fd);
        }
        char p[PATH_MAX];
        xsnprintf(p, sizeof p, "%s/fakeelf", dir);
        fd = open_ro(p);
        assert_true(preload_elf_dynamic(fd) != 1); /* a truncated header is never "dynamic" */
        close(fd);
        remove_tmpdir(dir);
}

static void test_value(void **state)
{
        (void)state;
        char v[PATH_MAX * 2];
        assert_int_equal(preload_value("/bin/sh", "/lib/x.so", NULL, v, sizeof v), 1);
        assert_string_equal(v, "/lib/x.so");
        assert_int_equal(preload_value("sh", "/lib/x.so", "/opt/other.so", v, sizeof v), 1); /* via PATH */
        assert_string_equal(v, "/opt/other.so:/lib/x.so");
        assert_int_equal(preload_value("sh", "/lib/x.so", "", v, sizeof v), 1);
        assert_string_equal(v, "/lib/x.so");
        /* not found: exec reports it; nothing to preload */
        assert_int_equal(preload_value("memrun-no-such-command", "/lib/x.so", NULL, v, sizeof v), 0);
        /* too long for the buffer */
        char small[8];
        int saved = stderr_mute();
        assert_int_equal(preload_value("/bin/sh", "/lib/x.so", NULL, small, sizeof small), 0);
        /* setuid: the loader would ignore it */
        char *dir = make_tmpdir();
        char p[PATH_MAX];
        xsnprintf(p, sizeof p, "%s/suid", dir);
        put_file(dir, "suid", "#!/bin/sh\n");
        assert_int_equal(chmod(p, 04755), 0);
        assert_int_equal(preload_value(p, "/lib/x.so", NULL, v, sizeof v), 0);
        stderr_restore(saved);
        remove_tmpdir(dir);
}

static void test_find(void **state)
{
        (void)state;
        char ret[PATH_MAX];
        char *dir = make_tmpdir();
        put_file(dir, "libmemlimit-preload.so", "");
        setenv("MEMRUN_PRELOAD_LIB", "/nonexistent/lib.so", 1);
        assert_int_equal(preload_find("/proc/self/exe", dir, ret, sizeof ret), -ENOENT);
        unsetenv("MEMRUN_PRELOAD_LIB");
        /* /proc/self/exe is the test binary: no preload lib beside it, so libdir is used */
        assert_int_equal(preload_find("/proc/self/exe", dir, ret, sizeof ret), 0);
        char want[PATH_MAX];
        xsnprintf(want, sizeof want, "%s/libmemlimit-preload.so", dir);
        assert_string_equal(ret, want);
        assert_int_equal(preload_find("/proc/self/exe", "/nonexistent", ret, sizeof ret), -ENOENT);
        remove_tmpdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_elf_kinds),
                cmocka_unit_test(test_value),
                cmocka_unit_test(test_find),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
