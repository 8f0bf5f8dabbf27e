/* test_psi: PSI file parsing (real samples and hostile text) and the kernel's trigger window rules. */
#include "unit.h"

#include "kernel/psi.h"

static void test_parse_real(void **state)
{
        (void)state;
        struct psi p;
        assert_int_equal(psi_parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=8502\n"
                                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=7777\n", &p), 0);
        assert_int_equal(p.some.total, 8502);
        assert_int_equal(p.full.total, 7777);
        assert_true(p.has_full);
        assert_int_equal(psi_parse("some avg10=12.34 avg60=5.06 avg300=100.00 total=1\n"
                                   "full avg10=0.5 avg60=0.00 avg300=0.00 total=2\n", &p), 0);
        assert_int_equal(p.some.avg10, 123400);
        assert_int_equal(p.some.avg60, 50600);
        assert_int_equal(p.some.avg300, 1000000);
        assert_int_equal(p.full.avg10, 5000);
        /* CPU pressure at the root has no "full" line on old kernels */
        assert_int_equal(psi_parse("some avg10=1.00 avg60=0.00 avg300=0.00 total=3\n", &p), 0);
        assert_false(p.has_full);
}

static void test_parse_hostile(void **state)
{
        (void)state;
        static const char *const bad[] = {
                "",
                "\n",
                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00\n",
                "some avg10=0.00 avg60=0.00 total=0\n",
                "some avg10=101.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=1 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=99999999999999999999999\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=12x\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0 avg10=1.00\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0 =5\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0  \n",
                "garbage\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                "\xff\xfe",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct psi p = { .some.total = 42 };
                if (psi_parse(bad[i], &p) != -EINVAL)
                        fail_msg("case %zu accepted: '%s'", i, bad[i]);
                assert_int_equal(p.some.total, 42); /* untouched on error */
        }
}

/* What a later kernel may add -- a field, a line of another kind -- is passed over, not taken for
 * "no PSI here"; the fields may come in any order. */
static void test_parse_tolerant(void **state)
{
        (void)state;
        static const char *const ok[] = {
                "some avg10=1.50 avg60=0.00 avg300=0.00 total=7\ngarbage\n",
                "some avg10=1.50 avg60=0.00 avg300=0.00 total=7 avg1=0.20 peak=9\n",
                "some total=7 avg300=0.00 avg60=0.00 avg10=1.50\n",
                "newkind avg10=9.00 avg60=0.00 avg300=0.00 total=1\nsome avg10=1.50 avg60=0.00 avg300=0.00 total=7\n",
        };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
                struct psi p = {};
                if (psi_parse(ok[i], &p) != 0)
                        fail_msg("case %zu refused: '%s'", i, ok[i]);
                assert_int_equal(p.some.avg10, 15000);
                assert_int_equal(p.some.total, 7);
        }
}

static void test_window(void **state)
{
        (void)state;
        static const struct {
                uint64_t in;
                bool priv;
                uint64_t out;
        } cases[] = {
                { 100000, true, 500000 },   { 500000, true, 500000 },    { 2000000, true, 2000000 },
                { 60000000, true, 10000000 }, { 500000, false, 2000000 }, { 2000000, false, 2000000 },
                { 2500000, false, 4000000 }, { 9000000, false, 10000000 }, { 10000000, false, 10000000 },
                { 11000000, false, 10000000 },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                if (psi_window_fix(cases[i].in, cases[i].priv) != cases[i].out)
                        fail_msg("case %zu: %llu -> %llu, want %llu", i, (unsigned long long)cases[i].in,
                                 (unsigned long long)psi_window_fix(cases[i].in, cases[i].priv),
                                 (unsigned long long)cases[i].out);
}

static void test_trigger_on_fake_file(void **state)
{
        (void)state;
        /* A regular file takes any write: check what would be sent to the kernel, NUL included. */
        char *dir = make_tmpdir();
        put_file(dir, "memory.pressure", "");
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        uint64_t win = 0;
        int fd = psi_trigger_open(dfd, "memory.pressure", "some", 100000, 2000000, &win);
        assert_true(fd >= 0);
        assert_int_equal(win, 2000000);
        close(fd);
        char path[PATH_MAX];
        xsnprintf(path, sizeof path, "%s/memory.pressure", dir);
        int f = open(path, O_RDONLY);
        char buf[64] = {};
        ssize_t n = read(f, buf, sizeof buf);
        close(f);
        assert_int_equal(n, (ssize_t)strlen("some 200000 2000000") + 1);
        assert_string_equal(buf, "some 200000 2000000");
        assert_int_equal(psi_trigger_open(dfd, "missing", "some", 1, 2000000, &win), -ENOENT);
        close(dfd);
        remove_tmpdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_real),
                cmocka_unit_test(test_parse_hostile),
                cmocka_unit_test(test_parse_tolerant),
                cmocka_unit_test(test_window),
                cmocka_unit_test(test_trigger_on_fake_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
