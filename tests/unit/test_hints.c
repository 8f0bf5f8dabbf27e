/* test_hints: the runtime hints (runner/supervise/hints.c), pure: each number from the soft limit,
 * each left alone where the environment already has it, none without a soft limit. */
#include "unit.h"

#include "config/size.h"
#include "supervise/hints.h"

#define MiB (UINT64_C(1) << 20)

static const char *envv[16][2];
static const char *get(const char *name)
{
        for (size_t i = 0; i < 16 && envv[i][0]; i++)
                if (strcmp(envv[i][0], name) == 0)
                        return envv[i][1];
        return NULL;
}

static const char *hint(const struct hints *h, const char *name)
{
        for (unsigned i = 0; i < h->n; i++)
                if (strcmp(h->v[i].name, name) == 0)
                        return h->v[i].value;
        return NULL;
}

static void test_numbers(void **state)
{
        (void)state;
        struct hints h;
        memset(envv, 0, sizeof envv);
        hints_build(2304 * MiB, get, &h); /* --limit 2.5G: soft 2.25G */
        assert_int_equal(h.n, 4);
        assert_string_equal(h.names, "GOMEMLIMIT,NODE_OPTIONS,JAVA_TOOL_OPTIONS,DOTNET_GCHeapHardLimit");
        assert_string_equal(hint(&h, "GOMEMLIMIT"), "2415919104");
        assert_string_equal(hint(&h, "NODE_OPTIONS"), "--max-old-space-size=1728");      /* 3/4 */
        assert_string_equal(hint(&h, "JAVA_TOOL_OPTIONS"), "-Xmx1728m -XX:SoftMaxHeapSize=1555m"); /* soft - 1/4 */
        assert_string_equal(hint(&h, "DOTNET_GCHeapHardLimit"), "0x6c000000");       /* 3/4, hex */
        /* small budgets: the JVM keeps 64 MiB for what is not heap; nothing below 16 MiB */
        hints_build(128 * MiB, get, &h);
        assert_string_equal(hint(&h, "JAVA_TOOL_OPTIONS"), "-Xmx64m -XX:SoftMaxHeapSize=57m");
        hints_build(40 * MiB, get, &h);
        assert_string_equal(hint(&h, "JAVA_TOOL_OPTIONS"), "-Xmx16m -XX:SoftMaxHeapSize=14m");
        assert_string_equal(hint(&h, "NODE_OPTIONS"), "--max-old-space-size=30");
        hints_build(8 * MiB, get, &h);
        assert_string_equal(hint(&h, "NODE_OPTIONS"), "--max-old-space-size=16");
        /* no soft limit: nothing */
        hints_build(SIZE_MAX_VALUE, get, &h);
        assert_int_equal(h.n, 0);
        assert_string_equal(h.names, "");
}

static void test_users_win(void **state)
{
        (void)state;
        struct hints h;
        memset(envv, 0, sizeof envv);
        envv[0][0] = "GOMEMLIMIT", envv[0][1] = "1GiB";
        envv[1][0] = "NODE_OPTIONS", envv[1][1] = "--trace-warnings";
        envv[2][0] = "JAVA_TOOL_OPTIONS", envv[2][1] = "-XX:MaxRAMPercentage=60";
        envv[3][0] = "DOTNET_GCHeapHardLimitPercent", envv[3][1] = "50";
        hints_build(256 * MiB, get, &h);
        assert_int_equal(h.n, 1);
        assert_string_equal(h.names, "NODE_OPTIONS");
        assert_string_equal(hint(&h, "NODE_OPTIONS"), "--trace-warnings --max-old-space-size=192");
        envv[1][1] = "--max_old_space_size=64"; /* V8 takes either spelling */
        envv[2][1] = "-Xmx1g";
        hints_build(256 * MiB, get, &h);
        assert_int_equal(h.n, 0);
        /* a NODE_OPTIONS too long to extend is left as it is, not cut */
        static char longopt[HINT_VALUE_MAX];
        memset(longopt, 'x', sizeof longopt - 1);
        envv[1][1] = longopt;
        hints_build(256 * MiB, get, &h);
        assert_null(hint(&h, "NODE_OPTIONS"));
}

int main(void)
{
        const struct CMUnitTest tests[] = { cmocka_unit_test(test_numbers), cmocka_unit_test(test_users_win) };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
