/* test_sdnotify: what memrun relays of the command's sd_notify datagrams (runner/systemd/sdnotify.c):
 * assignments pass as they are, STATUS= is taken out (memrun sends it with its own part), MAINPID=
 * is dropped (memrun is the main process), anything that is not text is refused; and the relay
 * live, through a socketpair standing for systemd's NOTIFY_SOCKET. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "systemd/sdnotify.h"
#include "util.h"

/* The tests speak seconds; sdnotify takes usec_t. */
#define SEC(x) ((usec_t)((x) * 1e6 + 0.5))

static void test_filter(void **state)
{
        (void)state;
        static const struct {
                const char *in, *out, *status;
                int kept;
                bool has_status;
        } t[] = {
                { "READY=1", "READY=1\n", "", 1, false },
                { "READY=1\nSTATUS=serving", "READY=1\n", "serving", 1, true },
                { "STATUS=", "", "", 0, true },
                { "MAINPID=42\nREADY=1\n", "READY=1\n", "", 1, false },
                { "WATCHDOG=1\n\nRELOADING=1", "WATCHDOG=1\nRELOADING=1\n", "", 2, false },
                { "FDSTORE=1\nFDNAME=db", "FDSTORE=1\nFDNAME=db\n", "", 2, false },
                { "STATUS=a=b c\nSTATUS=second", "", "second", 0, true },
                { "garbage", NULL, NULL, -EINVAL, false },
                { "READY=1\nno equals sign", NULL, NULL, -EINVAL, false },
                { "", "", "", 0, false },
        };
        char out[256], status[64];
        bool hs;
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                int r = sdnotify_filter(t[i].in, strlen(t[i].in), out, sizeof out, status, sizeof status, &hs);
                if (r != t[i].kept || (r >= 0 && (strcmp(out, t[i].out) != 0 || strcmp(status, t[i].status) != 0 ||
                                                  hs != t[i].has_status)))
                        fail_msg("case %zu '%s': r=%d out '%s' status '%s'", i, t[i].in, r, out, status);
        }
        /* a NUL inside is not sd_notify text */
        assert_int_equal(sdnotify_filter("READY=1\0x", 9, out, sizeof out, status, sizeof status, &hs), -EINVAL);
        /* a long STATUS= is cut, not overflowed */
        char big[200];
        memset(big, 'x', sizeof big);
        memcpy(big, "STATUS=", 7);
        assert_int_equal(sdnotify_filter(big, sizeof big, out, sizeof out, status, sizeof status, &hs), 0);
        assert_int_equal(strlen(status), sizeof status - 1);
        /* more than fits in out is refused whole */
        char many[600];
        size_t o = 0;
        while (o + 10 < sizeof many)
                o += (size_t)snprintf(many + o, sizeof many - o, "X%03zu=1\n", o);
        assert_int_equal(sdnotify_filter(many, o, out, 64, status, sizeof status, &hs), -EINVAL);
}

static bool refuse_all(void *ctx, pid_t pid)
{
        (void)ctx;
        (void)pid;
        return false;
}

/* The relay end to end: a datagram to the command's socket reaches "systemd" with STATUS= rebuilt. */
static void test_relay(void **state)
{
        (void)state;
        int sp[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
        char path[64];
        snprintf(path, sizeof path, "@memrun-test-sdnotify-%d", (int)getpid());
        int up = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        memcpy(a.sun_path + 1, path + 1, strlen(path) - 1);
        socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
        assert_int_equal(bind(up, (struct sockaddr *)&a, al), 0);
        setenv("NOTIFY_SOCKET", path, 1);
        unsetenv("LISTEN_FDS");
        struct sdnotify n;
        assert_int_equal(sdnotify_open(&n), 0);
        assert_true(n.up_fd >= 0 && n.relay_fd >= 0);
        assert_int_equal(strncmp(n.relay_name, "@memrun-notify-", 15), 0);

        int c = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un r = { .sun_family = AF_UNIX };
        memcpy(r.sun_path + 1, n.relay_name + 1, strlen(n.relay_name) - 1);
        socklen_t rl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(n.relay_name));
        const char *msg = "READY=1\nSTATUS=serving\nMAINPID=1";
        assert_true(sendto(c, msg, strlen(msg), 0, (struct sockaddr *)&r, rl) > 0);
        sdnotify_dispatch(&n, SEC(10.0), NULL, NULL);
        char got[512];
        ssize_t k = recv(up, got, sizeof got - 1, MSG_DONTWAIT);
        assert_true(k > 0);
        got[k] = '\0';
        assert_string_equal(got, "READY=1\n");
        k = recv(up, got, sizeof got - 1, MSG_DONTWAIT);
        assert_true(k > 0);
        got[k] = '\0';
        assert_string_equal(got, "STATUS=serving"); /* no sample yet: no memrun part */
        /* memrun's part: sent on a level change, then not again within a few seconds */
        sdnotify_status(&n, "high", 60u << 20, 64u << 20, SEC(11.0));
        k = recv(up, got, sizeof got - 1, MSG_DONTWAIT);
        assert_true(k > 0);
        got[k] = '\0';
        assert_string_equal(got, "STATUS=serving (memrun: high, 60M of 64M)");
        sdnotify_status(&n, "high", 61u << 20, 64u << 20, SEC(12.0));
        assert_true(recv(up, got, sizeof got - 1, MSG_DONTWAIT) < 0);
        sdnotify_status(&n, "critical", 62u << 20, 64u << 20, SEC(12.5));
        assert_true(recv(up, got, sizeof got - 1, MSG_DONTWAIT) > 0);
        /* a sender that is not the command's: dropped and counted, even when the text is fine */
        assert_true(sendto(c, "STOPPING=1", 10, 0, (struct sockaddr *)&r, rl) > 0);
        sdnotify_dispatch(&n, SEC(12.8), refuse_all, NULL);
        assert_int_equal(n.dropped, 1);
        assert_true(recv(up, got, sizeof got - 1, MSG_DONTWAIT) < 0);
        n.dropped = 0;
        /* not text: dropped and counted */
        assert_true(sendto(c, "x\0y", 3, 0, (struct sockaddr *)&r, rl) > 0);
        sdnotify_dispatch(&n, SEC(13.0), NULL, NULL);
        assert_int_equal(n.dropped, 1);
        assert_true(recv(up, got, sizeof got - 1, MSG_DONTWAIT) < 0);
        sdnotify_close(&n);
        close(c);
        close(up);
        close(sp[0]);
        close(sp[1]);
        unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_filter),
                cmocka_unit_test(test_relay),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
