/* test_size: the strict size, percentage and duration parsers and the human size formatter. */
#include "unit.h"

#include "config/size.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)
#define SENTINEL 0xdeadbeefcafef00dull

struct size_case {
        const char *text;
        uint64_t base;
        int ret;
        uint64_t want;
};

static const struct size_case size_good[] = {
        { "0", 0, 0, 0 },
        { "1", 0, 0, 1 },
        { "4096", 0, 0, 4096 },
        { "512b", 0, 0, 512 },
        { "512B", 0, 0, 512 },
        { "1K", 0, 0, KiB },
        { "1k", 0, 0, KiB },
        { "1KB", 0, 0, KiB },
        { "1kb", 0, 0, KiB },
        { "1KiB", 0, 0, KiB },
        { "1kib", 0, 0, KiB },
        { "1KIB", 0, 0, KiB },
        { "512KiB", 0, 0, 512 * KiB },
        { "256M", 0, 0, 256 * MiB },
        { "256m", 0, 0, 256 * MiB },
        { "256MB", 0, 0, 256 * MiB },
        { "256MiB", 0, 0, 256 * MiB },
        { "256mIb", 0, 0, 256 * MiB },
        { "2G", 0, 0, 2 * GiB },
        { "2g", 0, 0, 2 * GiB },
        { "2GiB", 0, 0, 2 * GiB },
        { "2gb", 0, 0, 2 * GiB },
        { "3T", 0, 0, 3 * TiB },
        { "3tib", 0, 0, 3 * TiB },
        { "3TB", 0, 0, 3 * TiB },
        { "2.5G", 0, 0, 2684354560ull },
        { "0.5K", 0, 0, 512 },
        { "1.5M", 0, 0, 1572864 },
        { "0.25T", 0, 0, TiB / 4 },
        { "1.000000000000000000001K", 0, 0, KiB }, /* digits beyond 18 are dropped, not an error */
        { "007M", 0, 0, 7 * MiB },
        { "1.5", 0, 0, 1 },                         /* fractional bytes truncate */
        { "max", 0, 0, SIZE_MAX_VALUE },
        { "MAX", 0, 0, SIZE_MAX_VALUE },
        { "Max", 0, 0, SIZE_MAX_VALUE },
        { "9223372036854775807", 0, 0, 9223372036854775807ull }, /* INT64_MAX: the largest size */
        { "8388607T", 0, 0, 8388607ull * TiB },
        /* percentages of a base */
        { "50%", 1000, 0, 500 },
        { "12.5%", 1000, 0, 125 },
        { "100%", 1000, 0, 1000 },
        { "0%", 1000, 0, 0 },
        { "33.3%", 3000, 0, 999 },
        { "50%", 24 * GiB, 0, 12 * GiB },
        { "0.5%", 1000000, 0, 5000 },
};

static void test_size_parse_good(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof size_good / sizeof size_good[0]; i++) {
                const struct size_case *c = &size_good[i];
                uint64_t v = SENTINEL;
                int r = size_parse(c->text, c->base, &v);
                if (r != 0 || v != c->want)
                        fail_msg("size_parse(\"%s\", %llu) = %d, %llu; want 0, %llu", c->text,
                                 (unsigned long long)c->base, r, (unsigned long long)v,
                                 (unsigned long long)c->want);
        }
}

static const struct size_case size_bad[] = {
        { "", 0, -EINVAL, 0 },
        { "-1", 0, -EINVAL, 0 },
        { "1.5.5G", 0, -EINVAL, 0 },
        { "10X", 0, -EINVAL, 0 },
        { "99999999999T", 0, -ERANGE, 0 },
        { "abc", 0, -EINVAL, 0 },
        { " 1G", 0, -EINVAL, 0 },
        { "1G ", 0, -EINVAL, 0 },
        { "1 G", 0, -EINVAL, 0 },
        { "1e3", 0, -EINVAL, 0 },
        { ".5G", 0, -EINVAL, 0 },
        { "5.G", 0, -EINVAL, 0 },
        { "1GG", 0, -EINVAL, 0 },
        { "+1", 0, -EINVAL, 0 },
        { "0x10", 0, -EINVAL, 0 },
        { "101%", 1000, -ERANGE, 0 },
        { "100.0001%", 1000, -ERANGE, 0 },
        { "1%%", 1000, -EINVAL, 0 },
        { "%", 1000, -EINVAL, 0 },
        { "50 %", 1000, -EINVAL, 0 },
        { "50%", 0, -EDOM, 0 },   /* percent refused without a base */
        { "12.5%", 0, -EDOM, 0 },
        { "1P", 0, -EINVAL, 0 },
        { "1E", 0, -EINVAL, 0 },
        { "1Ki", 0, -EINVAL, 0 },
        { "1KiBs", 0, -EINVAL, 0 },
        { "1G\n", 0, -EINVAL, 0 },
        { "max ", 0, -EINVAL, 0 },
        { "maximum", 0, -EINVAL, 0 },
        { "9223372036854775808", 0, -ERANGE, 0 },  /* INT64_MAX + 1 */
        { "8388608T", 0, -ERANGE, 0 },             /* 2^63 */
        { "18446744073709551615", 0, -ERANGE, 0 }, /* UINT64_MAX is not a size */
        { "123456789012345678901", 0, -ERANGE, 0 }, /* 21 digits */
        { "99999999999999999999999999999999999999999999", 0, -ERANGE, 0 },
        { "1\xff", 0, -EINVAL, 0 },
};

static void test_size_parse_hostile(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof size_bad / sizeof size_bad[0]; i++) {
                const struct size_case *c = &size_bad[i];
                uint64_t v = SENTINEL;
                int r = size_parse(c->text, c->base, &v);
                if (r != c->ret || v != SENTINEL)
                        fail_msg("size_parse(\"%s\", %llu) = %d (value %s); want %d and no value", c->text,
                                 (unsigned long long)c->base, r, v == SENTINEL ? "untouched" : "written",
                                 c->ret);
        }
}

static void test_size_parse_null(void **state)
{
        (void)state;
        uint64_t v = SENTINEL;
        assert_int_equal(size_parse(NULL, 0, &v), -EINVAL);
        assert_int_equal(size_parse(NULL, 1000, &v), -EINVAL);
        assert_true(v == SENTINEL);
}

struct pct_case {
        const char *text;
        int ret;
        uint32_t ppm;
};

static const struct pct_case pct_cases[] = {
        { "90%", 0, 900000 },
        { "92.5%", 0, 925000 },
        { "0%", 0, 0 },
        { "100%", 0, PCT_ONE },
        { "0.0001%", 0, 1 },
        { "33.33333%", 0, 333333 },
        { "100.0%", 0, PCT_ONE },
        { "100.1%", -ERANGE, 0 },
        { "101%", -ERANGE, 0 },
        { "1000000000000%", -ERANGE, 0 },
        { "90", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { "%", -EINVAL, 0 },
        { "-5%", -EINVAL, 0 },
        { "+5%", -EINVAL, 0 },
        { " 5%", -EINVAL, 0 },
        { "5% ", -EINVAL, 0 },
        { "5%%", -EINVAL, 0 },
        { ".5%", -EINVAL, 0 },
        { "5.%", -EINVAL, 0 },
        { "1e1%", -EINVAL, 0 },
        { "5G", -EINVAL, 0 },
        { "abc", -EINVAL, 0 },
};

static void test_pct_parse_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof pct_cases / sizeof pct_cases[0]; i++) {
                const struct pct_case *c = &pct_cases[i];
                uint32_t v = 0xdeadbeef;
                int r = pct_parse(c->text, &v);
                uint32_t want = c->ret == 0 ? c->ppm : 0xdeadbeef;
                if (r != c->ret || v != want)
                        fail_msg("pct_parse(\"%s\") = %d, %u; want %d, %u", c->text, r, v, c->ret, want);
        }
        uint32_t v = 7;
        assert_int_equal(pct_parse(NULL, &v), -EINVAL);
        assert_int_equal(v, 7);
}

struct dur_case {
        const char *text;
        int ret;
        uint64_t usec;
};

static const struct dur_case dur_cases[] = {
        { "250ms", 0, 250000 },
        { "2s", 0, 2000000 },
        { "1m", 0, 60000000 },
        { "1min", 0, 60000000 },
        { "1.5s", 0, 1500000 },
        { "1.5m", 0, 90000000 },
        { "100us", 0, 100 },
        { "1h", 0, 3600000000ull },
        { "0s", 0, 0 },
        { "0.5ms", 0, 500 },
        { "0.0001s", 0, 100 },
        { "2562047788h", 0, 2562047788ull * 3600000000ull }, /* just below INT64_MAX usec */
        { "2562047789h", -ERANGE, 0 },
        { "99999999999999999999h", -ERANGE, 0 },
        { "123456789012345678901s", -ERANGE, 0 },
        { "5", -EINVAL, 0 },   /* a bare number has no unit: refused */
        { "5.5", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { "s", -EINVAL, 0 },
        { "ms", -EINVAL, 0 },
        { "-1s", -EINVAL, 0 },
        { "+1s", -EINVAL, 0 },
        { "1 s", -EINVAL, 0 },
        { " 1s", -EINVAL, 0 },
        { "1s ", -EINVAL, 0 },
        { "1sec", -EINVAL, 0 },
        { "1ss", -EINVAL, 0 },
        { "1.s", -EINVAL, 0 },
        { ".5s", -EINVAL, 0 },
        { "1d", -EINVAL, 0 },
        { "1ns", -EINVAL, 0 },
        { "1e3ms", -EINVAL, 0 },
        { "1%", -EINVAL, 0 },
        { "garbage", -EINVAL, 0 },
};

static void test_duration_parse_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof dur_cases / sizeof dur_cases[0]; i++) {
                const struct dur_case *c = &dur_cases[i];
                uint64_t v = SENTINEL;
                int r = duration_parse(c->text, &v);
                uint64_t want = c->ret == 0 ? c->usec : SENTINEL;
                if (r != c->ret || v != want)
                        fail_msg("duration_parse(\"%s\") = %d, %llu; want %d, %llu", c->text, r,
                                 (unsigned long long)v, c->ret, (unsigned long long)want);
        }
        uint64_t v = SENTINEL;
        assert_int_equal(duration_parse(NULL, &v), -EINVAL);
        assert_true(v == SENTINEL);
}

struct fmt_case {
        uint64_t v;
        const char *text;
};

static const struct fmt_case fmt_cases[] = {
        { 0, "0B" },
        { 1, "1B" },
        { 1023, "1023B" },
        { KiB, "1K" },
        { 1536, "1.5K" },
        { 256 * MiB, "256M" },
        { 2684354560ull, "2.5G" },
        { 24 * GiB, "24G" },
        { TiB, "1T" },
        { 1024 * TiB, "1P" },
        { 9223372036854775807ull, "8E" },
        { SIZE_MAX_VALUE, "max" },
};

static void test_size_format_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
                char buf[32];
                memset(buf, 'x', sizeof buf);
                const char *s = size_format(fmt_cases[i].v, buf, sizeof buf);
                assert_ptr_equal(s, buf);
                assert_string_equal(s, fmt_cases[i].text);
        }
}

/* What size_format prints, size_parse reads back exactly (for values it prints without rounding). */
static void test_size_format_round_trip(void **state)
{
        (void)state;
        static const uint64_t values[] = { 0, 512, 1023, KiB, 1536, 512 * KiB, 256 * MiB, 2684354560ull,
                                           3 * GiB, 2 * TiB, SIZE_MAX_VALUE };
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
                char buf[32];
                uint64_t back = SENTINEL;
                size_format(values[i], buf, sizeof buf);
                int r = size_parse(buf, 0, &back);
                if (r != 0 || back != values[i])
                        fail_msg("round trip %llu -> \"%s\" -> %d, %llu", (unsigned long long)values[i], buf, r,
                                 (unsigned long long)back);
        }
}

static void test_size_format_small_buffer(void **state)
{
        (void)state;
        char buf[8];
        memset(buf, 'x', sizeof buf);
        size_format(2684354560ull, buf, 3); /* "2.5G" does not fit: truncated, terminated, no overrun */
        assert_string_equal(buf, "2.");
        assert_int_equal(buf[3], 'x');
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_size_parse_good),
                cmocka_unit_test(test_size_parse_hostile),
                cmocka_unit_test(test_size_parse_null),
                cmocka_unit_test(test_pct_parse_table),
                cmocka_unit_test(test_duration_parse_table),
                cmocka_unit_test(test_size_format_table),
                cmocka_unit_test(test_size_format_round_trip),
                cmocka_unit_test(test_size_format_small_buffer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
