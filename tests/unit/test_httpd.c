/* test_httpd: --metrics-listen's address: the forms accepted (loopback unless an address is named)
 * and hostile text, each refusal with the errno options.c turns into its message. */
#include "unit.h"

#include <errno.h>
#include <string.h>

#include "control/httpd.h"

static void test_addr_good(void **state)
{
        (void)state;
        static const struct {
                const char *in, *text;
                int family;
        } good[] = {
                { "9464", "127.0.0.1:9464", AF_INET },
                { ":9464", "127.0.0.1:9464", AF_INET },
                { "127.0.0.1:1", "127.0.0.1:1", AF_INET },
                { "0.0.0.0:65535", "0.0.0.0:65535", AF_INET },
                { "10.1.2.3:09464", "10.1.2.3:9464", AF_INET },
                { "000000080", "127.0.0.1:80", AF_INET },
                { "[::1]:9464", "[::1]:9464", AF_INET6 },
                { "[::]:80", "[::]:80", AF_INET6 },
                { "[0:0:0:0:0:0:0:1]:80", "[::1]:80", AF_INET6 },
        };
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                struct httpd_addr a;
                memset(&a, 0xAA, sizeof a);
                assert_int_equal(httpd_addr_parse(good[i].in, &a), 0);
                assert_string_equal(a.text, good[i].text);
                assert_int_equal(a.ss.ss_family, good[i].family);
                assert_true(a.len == (good[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                                 : sizeof(struct sockaddr_in6)));
        }
}

static void test_addr_bad(void **state)
{
        (void)state;
        static const struct {
                const char *in;
                int r;
        } bad[] = {
                { "", -ENODATA },          { ":", -ENODATA },
                { "127.0.0.1", -ENODATA }, { "127.0.0.1:", -ENODATA },
                { "[::1]", -ENODATA },     { "[::1]:", -ENODATA },
                { "x", -EINVAL },          { "[::1]x80", -EINVAL },
                { "1.2.3.4:-1", -EINVAL }, { "1.2.3.4:80x", -EINVAL },
                { "1.2.3.4: 80", -EINVAL }, { "+80", -EINVAL },
                { ":0", -ERANGE },         { "0", -ERANGE },
                { "65536", -ERANGE },      { "000000000", -ERANGE },
                { "99999999999999999999999", -ERANGE },
                { "1.2.3:80", -EADDRNOTAVAIL },     { "300.1.1.1:80", -EADDRNOTAVAIL },
                { "localhost:80", -EADDRNOTAVAIL }, { "::1:80", -EADDRNOTAVAIL },
                { "[::1:80", -EADDRNOTAVAIL },      { "[nonsense]:80", -EADDRNOTAVAIL },
                { "[127.0.0.1]:80", -EADDRNOTAVAIL },
                { "[0000000000000000000000000000000000000000000000000000000000::1]:80", -EADDRNOTAVAIL },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct httpd_addr a = { .len = 7 };
                int r = httpd_addr_parse(bad[i].in, &a);
                if (r != bad[i].r)
                        fail_msg("'%s': %d, expected %d", bad[i].in, r, bad[i].r);
                assert_int_equal(a.len, 7); /* written only on success */
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_addr_good),
                cmocka_unit_test(test_addr_bad),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
