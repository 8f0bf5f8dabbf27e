/* test_psrv: the pressure server (runner/control/psrv.h) in-process: the trigger parser, and real
 * AF_UNIX stream connections to its socket, with the peer-cgroup check pointed at a fake proc tree
 * whose <our pid>/cgroup puts us inside or outside the sandbox. The kernel relay needs a real
 * pressure file: the host and VM suites test it (tests/host/pressure.sh). */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "control/psrv.h"
#include "supervise/loop.h"
#include "util.h"

#define SANDBOX "/memrun.slice/box"

static void test_parse_trigger(void **state)
{
        (void)state;
        static const struct {
                const char *text;
                size_t len; /* 0: strlen + 1 (with the NUL, as MEMORY_PRESSURE_WRITE carries it) */
                int r;
                const char *kind;
                uint64_t stall, window;
        } cases[] = {
                { "some 200000 2000000", 0, 0, "some", 200000, 2000000 },
                { "full 150000 1000000", 0, 0, "full", 150000, 1000000 },
                { "some 200000 2000000", 19, 0, "some", 200000, 2000000 },  /* without its NUL */
                { "some 1 1", 0, 0, "some", 1, 1 },
                { "bogus", 0, -EINVAL, NULL, 0, 0 },
                { "none 200000 2000000", 0, -EINVAL, NULL, 0, 0 },
                { "some 2000001 2000000", 0, -EINVAL, NULL, 0, 0 },         /* stall above the window */
                { "some 0 2000000", 0, -EINVAL, NULL, 0, 0 },
                { "some 200000 0", 0, -EINVAL, NULL, 0, 0 },
                { "some -5 2000000", 0, -EINVAL, NULL, 0, 0 },
                { "some 200000 2000000 x", 0, -EINVAL, NULL, 0, 0 },
                { "some 200000", 0, -EINVAL, NULL, 0, 0 },
                { "", 0, -EINVAL, NULL, 0, 0 },
                { "some 200000 2000000\0junk", 25, -EINVAL, NULL, 0, 0 },  /* bytes after the NUL */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char kind[8] = "";
                uint64_t stall = 0, window = 0;
                size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text) + 1;
                int r = psrv_parse_trigger(cases[i].text, len, kind, &stall, &window);
                if (r != cases[i].r)
                        fail_msg("'%s' (%zu bytes): %d, expected %d", cases[i].text, len, r, cases[i].r);
                if (r == 0) {
                        assert_string_equal(kind, cases[i].kind);
                        assert_int_equal(stall, cases[i].stall);
                        assert_int_equal(window, cases[i].window);
                }
        }
        char big[PSRV_WRITE_MAX + 8];
        memset(big, '1', sizeof big);
        assert_int_equal(psrv_parse_trigger(big, sizeof big, (char[8]){ 0 }, &(uint64_t){ 0 }, &(uint64_t){ 0 }), -EINVAL);
}

struct fixture {
        char *dir;      /* fake proc root, and where the socket's directory goes */
        struct psrv *srv;
};

static void put_cgroup(struct fixture *f, const char *text)
{
        char rel[64];
        xsnprintf(rel, sizeof rel, "%d", (int)getpid());
        make_dirs(f->dir, rel);
        xsnprintf(rel, sizeof rel, "%d/cgroup", (int)getpid());
        put_file(f->dir, rel, text);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        f->dir = make_tmpdir();
        put_cgroup(f, "0::" SANDBOX "/worker\n");
        f->srv = malloc(sizeof *f->srv);
        assert_non_null(f->srv);
        char prefix[PATH_MAX];
        xsnprintf(prefix, sizeof prefix, "%s/memrun.", f->dir);
        int r = psrv_open(f->srv, prefix, "unit", CG_V2, SANDBOX, f->dir, NULL);
        if (r < 0)
                fail_msg("psrv_open: %s", strerror(-r));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        psrv_close(f->srv);
        psrv_close(f->srv); /* idempotent */
        free(f->srv);
        remove_tmpdir(f->dir);
        free(f);
        return 0;
}

/* Run the server until nothing is ready. */
static void settle(struct fixture *f)
{
        for (int i = 0; i < 20; i++) {
                struct pollfd p = { .fd = psrv_fd(f->srv), .events = POLLIN };
                if (poll(&p, 1, i == 0 ? 50 : 10) <= 0)
                        return;
                psrv_dispatch(f->srv);
        }
}

static int connect_client(struct fixture *f, const void *trigger, size_t len)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        assert_true(strlen(f->srv->path) < sizeof a.sun_path);
        memcpy(a.sun_path, f->srv->path, strlen(f->srv->path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        if (len)
                assert_int_equal(send(fd, trigger, len, MSG_NOSIGNAL), (ssize_t)len);
        return fd;
}

/* Bytes readable on fd now (0: none, -1: the server hung up). */
static int readable(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
                return 0;
        char buf[64];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        return n == 0 ? -1 : (int)n;
}

static void test_socket_made_private(void **state)
{
        struct fixture *f = *state;
        struct stat st;
        assert_int_equal(lstat(f->srv->path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(lstat(f->srv->dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_non_null(strstr(f->srv->dir, "/memrun.unit."));
        /* locked while the server lives (registry_sweep leaves it), and made under a name the sweep
         * ignores: no ".memrun.unit.*" left */
        int fd = open(f->srv->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
        assert_int_equal(errno, EWOULDBLOCK);
        close(fd);
        DIR *d = opendir(f->dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                assert_true(strncmp(de->d_name, ".memrun.", 8) != 0);
        closedir(d);
        char path[PATH_MAX], dir[PATH_MAX];
        xsnprintf(path, sizeof path, "%s", f->srv->path);
        xsnprintf(dir, sizeof dir, "%s", f->srv->dir);
        psrv_close(f->srv);
        assert_int_equal(lstat(path, &st), -1);
        assert_int_equal(lstat(dir, &st), -1); /* nothing left behind */
}

static void test_pulse_reaches_clients(void **state)
{
        struct fixture *f = *state;
        static const char trig[] = "some 200000 2000000"; /* sizeof: with its NUL */
        int a = connect_client(f, trig, sizeof trig), b = connect_client(f, NULL, 0);
        settle(f);
        assert_int_equal(f->srv->st.clients, 2);
        assert_int_equal(f->srv->st.clients_ever, 2);
        assert_int_equal(f->srv->st.bad_triggers, 0);
        assert_int_equal(f->srv->st.triggers, 0); /* no kernel file given: nothing armed */
        assert_int_equal(readable(a), 0);          /* nothing is said unasked */

        usec_t t = now_usec();
        assert_int_equal(psrv_pulse(f->srv, t), 2);
        assert_int_equal(readable(a), 1);
        assert_int_equal(readable(b), 1);
        /* paced: a second pulse within the gap is not sent */
        assert_int_equal(psrv_pulse(f->srv, t + PSRV_PULSE_GAP_USEC / 2), 0);
        assert_int_equal(readable(a), 0);
        assert_int_equal(psrv_pulse(f->srv, t + PSRV_PULSE_GAP_USEC), 2);
        assert_int_equal(readable(a), 1);
        assert_int_equal(readable(b), 1);
        assert_int_equal(f->srv->st.pulses_governor, 2);

        /* a hang-up is noticed; the others still hear */
        close(b);
        settle(f);
        assert_int_equal(f->srv->st.clients, 1);
        assert_int_equal(psrv_pulse(f->srv, t + 3 * PSRV_PULSE_GAP_USEC), 1);
        assert_int_equal(readable(a), 1);
        close(a);
        settle(f);
        assert_int_equal(f->srv->st.clients, 0);
        assert_int_equal(psrv_pulse(f->srv, t + 5 * PSRV_PULSE_GAP_USEC), 0);
}

static void test_never_reader_does_not_block(void **state)
{
        struct fixture *f = *state;
        int a = connect_client(f, NULL, 0);
        settle(f);
        /* far more pulses than any socket buffer holds: none blocks, the full socket is counted */
        usec_t t = now_usec();
        for (int i = 0; i < 400000; i++)
                (void)psrv_pulse(f->srv, t + (usec_t)i * PSRV_PULSE_GAP_USEC);
        assert_true(f->srv->st.slow > 0);
        assert_true(readable(a) > 0);
        close(a);
}

static void test_bad_trigger_still_hears(void **state)
{
        struct fixture *f = *state;
        static const char bogus[] = "bogus";
        int a = connect_client(f, bogus, sizeof bogus);
        settle(f);
        assert_int_equal(f->srv->st.bad_triggers, 1);
        assert_int_equal(f->srv->st.clients, 1);
        assert_int_equal(psrv_pulse(f->srv, now_usec()), 1);
        assert_int_equal(readable(a), 1);
        /* more bytes after the trigger are read and dropped, not taken as a second trigger */
        assert_int_equal(send(a, "more", 4, MSG_NOSIGNAL), 4);
        settle(f);
        assert_int_equal(f->srv->st.bad_triggers, 1);
        assert_int_equal(f->srv->st.clients, 1);
        close(a);
}

static void test_outside_refused(void **state)
{
        struct fixture *f = *state;
        put_cgroup(f, "0::/elsewhere\n");
        int a = connect_client(f, NULL, 0);
        settle(f);
        assert_int_equal(f->srv->st.clients, 0);
        assert_int_equal(f->srv->st.refused, 1);
        assert_int_equal(readable(a), -1); /* closed on it */
        close(a);
}

static void test_table_full(void **state)
{
        struct fixture *f = *state;
        int fds[PSRV_MAX_CLIENTS + 1];
        for (int i = 0; i <= PSRV_MAX_CLIENTS; i++) {
                fds[i] = connect_client(f, NULL, 0);
                if (i % 8 == 7)
                        settle(f);
        }
        settle(f);
        assert_int_equal(f->srv->st.clients, PSRV_MAX_CLIENTS);
        assert_int_equal(f->srv->st.refused, 1);
        for (int i = 0; i <= PSRV_MAX_CLIENTS; i++)
                close(fds[i]);
}

/* The watch hook: which trigger fds the server hands to the caller's loop. */
struct watched {
        int fds[8];
        int n_on, n_off;
};

static int record_watch(void *ctx, int fd, bool on)
{
        struct watched *w = ctx;
        if (on)
                w->fds[w->n_on++ % 8] = fd;
        else
                w->n_off++;
        return 0;
}

/* A client's kernel trigger goes to the caller's loop (a PSI trigger's poll consumes its event: in
 * an epoll set nested in the loop's, the outer readiness check would eat it), and what the loop
 * reports is relayed: EPOLLPRI tells the client, EPOLLERR (the cgroup is gone) drops the trigger. */
static void test_trigger_in_callers_loop(void **state)
{
        struct fixture *f = *state;
        if (access("/proc/pressure/memory", W_OK) != 0)
                skip(); /* cmocka prints SKIPPED: this kernel has no PSI */
        psrv_close(f->srv);
        char prefix[PATH_MAX];
        xsnprintf(prefix, sizeof prefix, "%s/memrun.", f->dir);
        assert_int_equal(psrv_open(f->srv, prefix, "unit", CG_V2, SANDBOX, f->dir, "/proc/pressure/memory"), 0);
        struct watched w = { .n_on = 0 };
        psrv_watch_triggers(f->srv, record_watch, &w);
        static const char trig[] = "some 150000 1000000";
        int a = connect_client(f, trig, sizeof trig);
        settle(f);
        assert_int_equal(f->srv->st.triggers, 1);
        assert_int_equal(w.n_on, 1);
        int tfd = w.fds[0];
        assert_true(tfd >= 0);
        /* not in the server's own set: its epoll never reports it */
        struct epoll_event ev;
        assert_int_equal(epoll_ctl(psrv_fd(f->srv), EPOLL_CTL_DEL, tfd, &ev), -1);
        assert_int_equal(errno, ENOENT);
        psrv_trigger(f->srv, tfd, EPOLLPRI);
        assert_int_equal(f->srv->st.pulses_kernel, 1);
        assert_int_equal(readable(a), 1);
        psrv_trigger(f->srv, tfd + 1000, EPOLLPRI); /* no client's: nothing */
        assert_int_equal(f->srv->st.pulses_kernel, 1);
        psrv_trigger(f->srv, tfd, EPOLLERR);
        assert_int_equal(w.n_off, 1);
        psrv_trigger(f->srv, tfd, EPOLLPRI); /* dropped: nothing more */
        assert_int_equal(f->srv->st.pulses_kernel, 1);
        close(a);
        settle(f);
        assert_int_equal(w.n_off, 1); /* not unwatched twice */
}

static void on_src(struct loop *l, int fd, uint32_t events, void *userdata)
{
        (void)l;
        (void)events;
        int *got = userdata;
        *got = fd;
        char c;
        assert_int_equal(read(fd, &c, 1), 1);
}

/* loop_add_member: a member's readiness runs its source's handler with the member's fd. */
static void test_loop_members(void **state)
{
        (void)state;
        struct loop l;
        int src[2], mem[2], got = -1;
        assert_int_equal(loop_open(&l), 0);
        assert_int_equal(pipe2(src, O_CLOEXEC | O_NONBLOCK), 0);
        assert_int_equal(pipe2(mem, O_CLOEXEC | O_NONBLOCK), 0);
        int id = loop_add(&l, src[0], EPOLLIN, on_src, &got, "src");
        assert_true(id >= 0);
        assert_int_equal(loop_add_member(&l, id, mem[0], EPOLLIN), 0);
        assert_int_equal(loop_add_member(&l, id + 1, mem[0], EPOLLIN), -EINVAL); /* no such source */
        assert_int_equal(write(mem[1], "x", 1), 1);
        assert_int_equal(loop_dispatch(&l, 100 * USEC_PER_MSEC), 1);
        assert_int_equal(got, mem[0]);
        assert_int_equal(write(src[1], "x", 1), 1);
        assert_int_equal(loop_dispatch(&l, 100 * USEC_PER_MSEC), 1);
        assert_int_equal(got, src[0]);
        loop_remove_member(&l, mem[0]);
        got = -1;
        assert_int_equal(write(mem[1], "x", 1), 1);
        assert_int_equal(loop_dispatch(&l, 10 * USEC_PER_MSEC), 0);
        assert_int_equal(got, -1);
        loop_close(&l);
        for (int i = 0; i < 2; i++) {
                close(src[i]);
                close(mem[i]);
        }
}

static void test_open_errors(void **state)
{
        (void)state;
        struct psrv *s = malloc(sizeof *s);
        assert_non_null(s);
        char *dir = make_tmpdir();
        char prefix[PATH_MAX];
        xsnprintf(prefix, sizeof prefix, "%s/memrun.", dir);
        assert_int_equal(psrv_open(s, prefix, "x", CG_V2, "relative", "/proc", NULL), -EINVAL);
        assert_int_equal(psrv_open(s, prefix, "x", CG_V2, "/", "/nonexistent-proc-root", NULL), -ENOENT);
        /* a prefix so long the socket could not be named: refused before anything is made */
        char longp[200];
        memset(longp, 'a', sizeof longp - 1);
        longp[0] = '/';
        longp[sizeof longp - 1] = '\0';
        assert_int_equal(psrv_open(s, longp, "x", CG_V2, "/", "/proc", NULL), -ENAMETOOLONG);
        assert_int_equal(psrv_open(s, "/nonexistent-dir/memrun.", "x", CG_V2, "/", "/proc", NULL), -ENOENT);
        psrv_close(s);
        /* nothing was left in dir */
        assert_int_equal(rmdir(dir), 0);
        free(dir);
        psrv_init(s);
        psrv_close(s); /* never opened */
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_trigger),
                cmocka_unit_test_setup_teardown(test_socket_made_private, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pulse_reaches_clients, setup, teardown),
                cmocka_unit_test_setup_teardown(test_never_reader_does_not_block, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_trigger_still_hears, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outside_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trigger_in_callers_loop, setup, teardown),
                cmocka_unit_test(test_loop_members),
                cmocka_unit_test(test_open_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
