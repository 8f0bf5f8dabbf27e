/* test_lsrv: the wire protocol's message checks, and a live limiter server in-process: real
 * SOCK_SEQPACKET connections from this process to an abstract socket, with the peer-cgroup check
 * pointed at a fake proc tree whose <our pid>/cgroup puts us inside or outside the sandbox. */
#include "unit.h"

#include <sys/resource.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "limiter/memlimit_proto.h"
#include "control/lsrv.h"
#include "util.h"

/* ---------- messages ---------- */

static void valid_msg(struct memlimit_msg *m, enum memlimit_msg_type type)
{
        memlimit_msg_init(m, type);
        switch (type) {
        case MEMLIMIT_MSG_HELLO:
                m->u.hello.pid = 42;
                m->u.hello.caps = MEMLIMIT_ACT_TRIM;
                memcpy(m->u.hello.comm, "app", 4);
                break;
        case MEMLIMIT_MSG_WELCOME:
                m->u.welcome.limit = 1 << 20;
                m->u.welcome.level = MEMLIMIT_PROTO_HIGH;
                break;
        case MEMLIMIT_MSG_LEVEL:
                m->seq = 7;
                m->u.level.level = MEMLIMIT_PROTO_CRITICAL;
                m->u.level.actions = MEMLIMIT_ACT_ALL;
                break;
        case MEMLIMIT_MSG_RESULT:
                m->seq = 7;
                m->flags = MEMLIMIT_RESULT_FUTILE;
                m->u.result.action = MEMLIMIT_ACT_COLLECT;
                break;
        case MEMLIMIT_MSG_BYE:
                m->u.bye.reason = MEMLIMIT_BYE_FULL;
                break;
        default:
                fail();
        }
}

struct check_case {
        const char *name;
        enum memlimit_msg_type type;
        void (*mutate)(struct memlimit_msg *m);
        size_t len;
        int want;
};

static void m_none(struct memlimit_msg *m) { (void)m; }
static void m_magic(struct memlimit_msg *m) { m->magic ^= 1; }
static void m_zero(struct memlimit_msg *m) { memset(m, 0, sizeof *m); }
static void m_version(struct memlimit_msg *m) { m->version = MEMLIMIT_PROTO_VERSION + 1; }
static void m_version0(struct memlimit_msg *m) { m->version = 0; }
static void m_type0(struct memlimit_msg *m) { m->type = 0; }
static void m_type_big(struct memlimit_msg *m) { m->type = MEMLIMIT_MSG_TYPE_MAX; }
static void m_type_huge(struct memlimit_msg *m) { m->type = 0xffff; }
static void m_level_range(struct memlimit_msg *m) { m->u.level.level = MEMLIMIT_PROTO_LEVEL_MAX; }
static void m_level_huge(struct memlimit_msg *m) { m->u.level.level = UINT32_MAX; }
static void m_level_seq0(struct memlimit_msg *m) { m->seq = 0; }
static void m_level_actions(struct memlimit_msg *m) { m->u.level.actions = 1u << 3; }
static void m_welcome_level(struct memlimit_msg *m) { m->u.welcome.level = 4; }
static void m_result_none(struct memlimit_msg *m) { m->u.result.action = 0; }
static void m_result_two(struct memlimit_msg *m) { m->u.result.action = MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT; }
static void m_result_unknown(struct memlimit_msg *m) { m->u.result.action = 1u << 5; }
static void m_result_flags(struct memlimit_msg *m) { m->flags = 1u << 9; }
static void m_result_all_flags(struct memlimit_msg *m) { m->flags = MEMLIMIT_RESULT_ALL; }
static void m_result_huge(struct memlimit_msg *m) { m->u.result.freed = UINT64_MAX; m->u.result.usec = UINT64_MAX; }
static void m_hello_comm(struct memlimit_msg *m) { memset(m->u.hello.comm, 'x', sizeof m->u.hello.comm); }
static void m_hello_caps(struct memlimit_msg *m) { m->u.hello.caps = 0xff; }
static void m_hello_flags(struct memlimit_msg *m) { m->flags = 1u << 7; }
static void m_hello_seq(struct memlimit_msg *m) { m->seq = 1; }
static void m_bye_reason(struct memlimit_msg *m) { m->u.bye.reason = MEMLIMIT_BYE_REASON_MAX; }
static void m_reserved(struct memlimit_msg *m) { memset(m->u.result.reserved, 0xa5, sizeof m->u.result.reserved); }

static void test_msg_check_table(void **state)
{
        (void)state;
        static const struct check_case cases[] = {
                { "hello", MEMLIMIT_MSG_HELLO, m_none, 64, 0 },
                { "welcome", MEMLIMIT_MSG_WELCOME, m_none, 64, 0 },
                { "level", MEMLIMIT_MSG_LEVEL, m_none, 64, 0 },
                { "result", MEMLIMIT_MSG_RESULT, m_none, 64, 0 },
                { "bye", MEMLIMIT_MSG_BYE, m_none, 64, 0 },
                { "reserved bytes are ignored", MEMLIMIT_MSG_RESULT, m_reserved, 64, 0 },
                { "huge counts are fine", MEMLIMIT_MSG_RESULT, m_result_huge, 64, 0 },
                { "every result flag", MEMLIMIT_MSG_RESULT, m_result_all_flags, 64, 0 },
                { "bad magic", MEMLIMIT_MSG_RESULT, m_magic, 64, -EINVAL },
                { "all zero", MEMLIMIT_MSG_RESULT, m_zero, 64, -EINVAL },
                { "bad version", MEMLIMIT_MSG_HELLO, m_version, 64, -EPROTO },
                { "version 0", MEMLIMIT_MSG_HELLO, m_version0, 64, -EPROTO },
                { "other version, other size", MEMLIMIT_MSG_HELLO, m_version, 128, -EPROTO },
                { "other version, header only", MEMLIMIT_MSG_HELLO, m_version, 8, -EPROTO },
                { "empty", MEMLIMIT_MSG_RESULT, m_none, 0, -EINVAL },
                { "shorter than a header", MEMLIMIT_MSG_RESULT, m_none, 7, -EINVAL },
                { "one byte short", MEMLIMIT_MSG_RESULT, m_none, 63, -EINVAL },
                { "one byte long", MEMLIMIT_MSG_RESULT, m_none, 65, -EINVAL },
                { "huge", MEMLIMIT_MSG_RESULT, m_none, 1 << 20, -EINVAL },
                { "type 0", MEMLIMIT_MSG_RESULT, m_type0, 64, -EINVAL },
                { "type past the end", MEMLIMIT_MSG_RESULT, m_type_big, 64, -EINVAL },
                { "type 0xffff", MEMLIMIT_MSG_RESULT, m_type_huge, 64, -EINVAL },
                { "level out of range", MEMLIMIT_MSG_LEVEL, m_level_range, 64, -EINVAL },
                { "level UINT32_MAX", MEMLIMIT_MSG_LEVEL, m_level_huge, 64, -EINVAL },
                { "level seq 0", MEMLIMIT_MSG_LEVEL, m_level_seq0, 64, -EINVAL },
                { "level unknown action", MEMLIMIT_MSG_LEVEL, m_level_actions, 64, -EINVAL },
                { "welcome level out of range", MEMLIMIT_MSG_WELCOME, m_welcome_level, 64, -EINVAL },
                { "result without action", MEMLIMIT_MSG_RESULT, m_result_none, 64, -EINVAL },
                { "result with two actions", MEMLIMIT_MSG_RESULT, m_result_two, 64, -EINVAL },
                { "result unknown action", MEMLIMIT_MSG_RESULT, m_result_unknown, 64, -EINVAL },
                { "result unknown flag", MEMLIMIT_MSG_RESULT, m_result_flags, 64, -EINVAL },
                { "hello comm not terminated", MEMLIMIT_MSG_HELLO, m_hello_comm, 64, -EINVAL },
                { "hello unknown caps", MEMLIMIT_MSG_HELLO, m_hello_caps, 64, -EINVAL },
                { "hello unknown flag", MEMLIMIT_MSG_HELLO, m_hello_flags, 64, -EINVAL },
                { "hello with seq", MEMLIMIT_MSG_HELLO, m_hello_seq, 64, -EINVAL },
                { "bye unknown reason", MEMLIMIT_MSG_BYE, m_bye_reason, 64, -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct memlimit_msg m;
                valid_msg(&m, cases[i].type);
                cases[i].mutate(&m);
                int r = memlimit_msg_check(&m, cases[i].len);
                if (r != cases[i].want)
                        fail_msg("case \"%s\": got %d, want %d", cases[i].name, r, cases[i].want);
        }
        assert_int_equal(memlimit_msg_check(NULL, 64), -EINVAL);
}

static void test_msg_layout(void **state)
{
        (void)state;
        struct memlimit_msg m;
        unsigned char raw[64];

        /* The wire bytes, as the table in memlimit_proto.h gives them. */
        memlimit_msg_init(&m, MEMLIMIT_MSG_LEVEL);
        m.seq = 0x01020304;
        m.u.level.level = 2;
        m.u.level.actions = 5;
        m.u.level.goal = 0x1122334455667788;
        m.u.level.usage = 9;
        m.u.level.coalesced = 3;
        memcpy(raw, &m, sizeof raw);
        assert_memory_equal(raw, "MEML", 4);
        assert_int_equal(raw[4], MEMLIMIT_PROTO_VERSION);
        assert_int_equal(raw[6], MEMLIMIT_MSG_LEVEL);
        assert_int_equal(raw[8], 0x04);
        assert_int_equal(raw[16], 2);
        assert_int_equal(raw[20], 5);
        assert_int_equal(raw[24], 0x88);
        assert_int_equal(raw[31], 0x11);
        assert_int_equal(raw[32], 9);
        assert_int_equal(raw[40], 3);
        for (size_t i = 44; i < 64; i++)
                assert_int_equal(raw[i], 0);

        char buf[32];
        assert_string_equal(memlimit_proto_actions_format(0, buf, sizeof buf), "none");
        assert_string_equal(memlimit_proto_actions_format(MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_SHED, buf, sizeof buf),
                            "trim,shed");
        assert_string_equal(memlimit_proto_actions_format(MEMLIMIT_ACT_ALL, buf, sizeof buf), "trim,collect,shed");
        assert_string_equal(memlimit_proto_actions_format(MEMLIMIT_ACT_ALL, buf, 6), "trim");
        assert_string_equal(memlimit_proto_level_name(MEMLIMIT_PROTO_HIGH), "high");
        assert_string_equal(memlimit_proto_level_name(99), "?");
}

static void test_endpoint_addr(void **state)
{
        (void)state;
        struct sockaddr_un a;
        socklen_t len = 0;

        assert_int_equal(memlimit_endpoint_addr("@memrun-1-ab", &a, &len), 0);
        assert_int_equal(a.sun_family, AF_UNIX);
        assert_int_equal(a.sun_path[0], '\0');
        assert_memory_equal(a.sun_path + 1, "memrun-1-ab", 11);
        assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 12);

        assert_int_equal(memlimit_endpoint_addr("/run/x.sock", &a, &len), 0);
        assert_string_equal(a.sun_path, "/run/x.sock");
        assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 12);

        char longname[sizeof a.sun_path + 2];
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        longname[0] = '@';
        len = 0;
        assert_int_equal(memlimit_endpoint_addr(longname, &a, &len), -EINVAL);
        assert_int_equal(len, 0);
        longname[sizeof longname - 2] = '\0';   /* '@' + 107 bytes: exactly fits */
        assert_int_equal(memlimit_endpoint_addr(longname, &a, &len), 0);
        assert_int_equal(len, sizeof(struct sockaddr_un));
        assert_int_equal(memlimit_endpoint_addr("", &a, &len), -EINVAL);
        assert_int_equal(memlimit_endpoint_addr("@", &a, &len), -EINVAL);
        assert_int_equal(memlimit_endpoint_addr(NULL, &a, &len), -EINVAL);
}

/* ---------- peer cgroup ---------- */

static void test_cgroup_inside_table(void **state)
{
        (void)state;
        char *v1 = fixture("v1/proc_self_cgroup");
        char *v1sb = fixture("v1/proc_self_cgroup_sandbox");
        char *v2 = fixture("v2/proc_self_cgroup");
        const char *v1own = "/process_api/9de9426028ba3cf34092c7a1cd93f9f7";
        const char *v1box = "/process_api/9de9426028ba3cf34092c7a1cd93f9f7/memrun-10730";
        struct {
                const char *text;
                enum cg_mode mode;
                const char *sandbox;
                int want;
        } cases[] = {
                { v2, CG_V2, "/a/b/sandbox", 1 },
                { v2, CG_V2, "/a/b", 1 },
                { v2, CG_V2, "/a/b/", 1 },
                { v2, CG_V2, "/", 1 },
                { v2, CG_V2, "/a/b/sand", 0 },            /* a prefix, not a parent */
                { v2, CG_V2, "/a/b/sandbox/inner", 0 },   /* the peer is above the sandbox */
                { v2, CG_V2, "/x", 0 },
                { v2, CG_HYBRID, "/a/b/sandbox", -ENOENT }, /* no memory line on a v2 host */
                { v1sb, CG_HYBRID, v1box, 1 },
                { v1sb, CG_V1, v1box, 1 },
                { v1sb, CG_HYBRID, v1own, 1 },
                { v1, CG_HYBRID, v1box, 0 },               /* memrun itself is outside its sandbox */
                { v1sb, CG_V2, "/memrun-10730", 1 },       /* the 0:: line when told v2 */
                { v1sb, CG_V2, v1box, 0 },
                { "4:cpu,memory,pids:/s/x\n", CG_V1, "/s", 1 },
                { "4:cpu,memoryx:/s/x\n", CG_V1, "/s", -ENOENT },
                { "4:xmemory:/s/x\n0::/s\n", CG_V1, "/s", -ENOENT },
                { "0::/s/x (deleted)\n", CG_V2, "/s/x", -ESTALE }, /* a removed cgroup is no home */
                { "0::/s/x", CG_V2, "/s", 1 },             /* no final newline */
                { "0::\n", CG_V2, "/s", -EINVAL },
                { "0::relative\n", CG_V2, "/s", -EINVAL },
                { "", CG_V2, "/s", -ENOENT },
                { "garbage without colons\n\n\n", CG_V2, "/s", -EINVAL },
                { "0::/s\n", CG_V2, "relative", -EINVAL },
                { "1::/s\n", CG_V2, "/s", -ENOENT },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = cg_cgroup_inside(cases[i].text, cases[i].mode, cases[i].sandbox);
                if (r != cases[i].want)
                        fail_msg("case %zu (%s in %.30s): got %d, want %d", i, cases[i].sandbox, cases[i].text, r,
                                 cases[i].want);
        }
        free(v1);
        free(v1sb);
        free(v2);
}

/* ---------- live server ---------- */

#define SANDBOX "/memrun.slice/box"
#define MAX_RESULTS 1024

struct fixture {
        char *dir;                    /* fake proc root */
        struct lsrv *srv;
        char endpoint[128];
        size_t n_results;
        struct lsrv_result results[MAX_RESULTS];
};

static void record_result(const struct lsrv_result *r, void *userdata)
{
        struct fixture *f = userdata;
        if (f->n_results < MAX_RESULTS)
                f->results[f->n_results] = *r;
        f->n_results++;
}

/* Where the fake proc tree says this process lives. */
static void put_cgroup(struct fixture *f, const char *text)
{
        char rel[64];
        xsnprintf(rel, sizeof rel, "%d", (int)getpid());
        make_dirs(f->dir, rel);
        xsnprintf(rel, sizeof rel, "%d/cgroup", (int)getpid());
        put_file(f->dir, rel, text);
}

static int setup_mode(void **state, enum cg_mode mode, const char *sandbox, const char *cgroup_text)
{
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        f->dir = make_tmpdir();
        put_cgroup(f, cgroup_text);
        f->srv = malloc(sizeof *f->srv);
        assert_non_null(f->srv);
        int r = lsrv_open(f->srv, mode, sandbox, f->dir, f->endpoint, sizeof f->endpoint);
        if (r < 0)
                fail_msg("lsrv_open: %s", strerror(-r));
        assert_true(f->endpoint[0] == '@');
        assert_non_null(strstr(f->endpoint, "@memrun-"));
        assert_string_equal(f->endpoint, lsrv_endpoint(f->srv));
        lsrv_set_limits(f->srv, 256u << 20, 230u << 20);
        lsrv_on_result(f->srv, record_result, f);
        *state = f;
        return 0;
}

static int setup(void **state)
{
        return setup_mode(state, CG_V2, SANDBOX, "0::" SANDBOX "/worker\n");
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        lsrv_close(f->srv);
        lsrv_close(f->srv);     /* idempotent */
        free(f->srv);
        remove_tmpdir(f->dir);
        free(f);
        return 0;
}

static struct lsrv_stats stats(struct fixture *f)
{
        struct lsrv_stats st;
        lsrv_stats(f->srv, &st);
        return st;
}

static int dispatch(struct fixture *f)
{
        int r = lsrv_dispatch(f->srv);
        assert_true(r >= 0);
        return r;
}

static int connect_client(struct fixture *f)
{
        struct sockaddr_un a;
        socklen_t alen = 0;
        assert_int_equal(memlimit_endpoint_addr(f->endpoint, &a, &alen), 0);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(fd >= 0);
        if (connect(fd, (struct sockaddr *)&a, alen) < 0)
                fail_msg("connect %s: %s", f->endpoint, strerror(errno));
        return fd;
}

static void send_msg_len(int fd, const void *m, size_t len)
{
        ssize_t n = send(fd, m, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 || (size_t)n != len)
                fail_msg("send: %s", n < 0 ? strerror(errno) : "short");
}

static void send_hello_v(int fd, uint16_t version)
{
        struct memlimit_msg m;
        valid_msg(&m, MEMLIMIT_MSG_HELLO);
        m.version = version;
        m.u.hello.pid = (uint32_t)getpid();
        send_msg_len(fd, &m, sizeof m);
}

static void send_result(int fd, uint32_t seq, uint32_t action, uint64_t freed, uint32_t flags)
{
        struct memlimit_msg m;
        memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
        m.seq = seq;
        m.flags = flags;
        m.u.result.action = action;
        m.u.result.callbacks = 1;
        m.u.result.freed = freed;
        m.u.result.usec = 10;
        send_msg_len(fd, &m, sizeof m);
}

/* The next message already queued for the client: its length, 0 on EOF, -EAGAIN if none. */
static ssize_t recv_msg(int fd, struct memlimit_msg *m)
{
        ssize_t n = recv(fd, m, sizeof *m, MSG_DONTWAIT | MSG_TRUNC);
        return n < 0 ? -errno : n;
}

static void expect_msg(int fd, struct memlimit_msg *m, enum memlimit_msg_type type)
{
        ssize_t n = recv_msg(fd, m);
        if (n != (ssize_t)sizeof *m)
                fail_msg("expected a %s, recv gave %zd", memlimit_msg_type_name(type), n);
        assert_int_equal(memlimit_msg_check(m, (size_t)n), 0);
        assert_int_equal(m->type, type);
}

static void expect_eof(int fd)
{
        struct memlimit_msg m;
        ssize_t n = recv_msg(fd, &m);
        /* A peer closed with our data unread reports ECONNRESET rather than 0: both are the end. */
        if (n != 0 && n != -ECONNRESET)
                fail_msg("expected EOF, recv gave %zd", n);
}

static void expect_nothing(int fd)
{
        struct memlimit_msg m;
        assert_int_equal(recv_msg(fd, &m), -EAGAIN);
}

/* The BYE memrun sent before closing. When it closed with messages of ours unread, the kernel reports
 * ECONNRESET once first (as TCP would); the BYE is still there after it. */
static void expect_bye(int fd, enum memlimit_bye_reason reason)
{
        struct memlimit_msg m;
        ssize_t n = recv_msg(fd, &m);
        if (n == -ECONNRESET)
                n = recv_msg(fd, &m);
        if (n != (ssize_t)sizeof m)
                fail_msg("expected a BYE, recv gave %zd", n);
        assert_int_equal(m.type, MEMLIMIT_MSG_BYE);
        assert_int_equal(m.u.bye.reason, reason);
        expect_eof(fd);
}

/* Connect, HELLO, read the WELCOME: an attached client. */
static int attach(struct fixture *f, struct memlimit_msg *ret_welcome)
{
        struct memlimit_msg w;
        int fd = connect_client(f);
        dispatch(f);
        send_hello_v(fd, MEMLIMIT_PROTO_VERSION);
        dispatch(f);
        expect_msg(fd, ret_welcome ? ret_welcome : &w, MEMLIMIT_MSG_WELCOME);
        return fd;
}

/* memrunctl set: every attached client hears the new limits, in a WELCOME with seq 0 (a version-1
 * client takes it at any time and leaves its level alone), once per change. */
static void test_limits_pushed(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg w;
        lsrv_set_limits(f->srv, 64u << 20, 60u << 20);
        int a = attach(f, &w), b = attach(f, NULL);
        assert_int_equal(w.u.welcome.limit, 64u << 20);
        assert_int_equal(w.u.welcome.soft, 60u << 20);
        lsrv_set_limits(f->srv, 96u << 20, 90u << 20);
        for (int fd = a; fd >= 0; fd = fd == a ? b : -1) {
                expect_msg(fd, &w, MEMLIMIT_MSG_WELCOME);
                assert_int_equal(w.seq, 0);
                assert_int_equal(w.u.welcome.limit, 96u << 20);
                assert_int_equal(w.u.welcome.soft, 90u << 20);
                assert_int_not_equal(w.u.welcome.client_id, 0);
        }
        lsrv_set_limits(f->srv, 96u << 20, 90u << 20); /* the same again: nothing to say */
        expect_nothing(a);
        expect_nothing(b);
        assert_int_equal(stats(f).limits_sent, 2);
        close(a);
        close(b);
}

static void test_inside_accepted(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg w;

        int fd = connect_client(f);
        assert_int_equal(dispatch(f), 1);
        assert_int_equal(stats(f).connected, 1);
        assert_int_equal(stats(f).clients, 0);
        expect_nothing(fd);     /* nothing is said before HELLO */

        send_hello_v(fd, MEMLIMIT_PROTO_VERSION);
        dispatch(f);
        expect_msg(fd, &w, MEMLIMIT_MSG_WELCOME);
        assert_int_equal(w.u.welcome.limit, 256u << 20);
        assert_int_equal(w.u.welcome.soft, 230u << 20);
        assert_int_equal(w.u.welcome.level, MEMLIMIT_PROTO_NORMAL);
        assert_int_equal(w.seq, 0);
        assert_int_equal(w.u.welcome.client_id, 1);
        struct lsrv_stats st = stats(f);
        assert_int_equal(st.clients, 1);
        assert_int_equal(st.clients_ever, 1);
        assert_int_equal(st.refused, 0);
        assert_int_equal(st.sent, 1);

        /* A late attacher starts in the current state. */
        uint32_t seq;
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_SHED, 4096, 1 << 20, &seq), 1);
        int late = attach(f, &w);
        assert_int_equal(w.seq, seq);
        assert_int_equal(w.u.welcome.level, MEMLIMIT_PROTO_HIGH);
        assert_int_equal(w.u.welcome.actions, MEMLIMIT_ACT_SHED);
        assert_int_equal(w.u.welcome.goal, 4096);
        assert_int_equal(w.u.welcome.client_id, 2);
        assert_int_equal(stats(f).clients, 2);

        /* Hanging up is noticed. */
        close(fd);
        dispatch(f);
        assert_int_equal(stats(f).clients, 1);
        assert_int_equal(stats(f).connected, 1);
        close(late);
        dispatch(f);
        assert_int_equal(stats(f).clients, 0);
        assert_int_equal(stats(f).clients_ever, 2);
}

static void test_outside_refused(void **state)
{
        struct fixture *f = *state;

        put_cgroup(f, "0::/memrun.slice/boxer\n");      /* a sibling whose name extends the sandbox's */
        int fd = connect_client(f);
        dispatch(f);
        struct lsrv_stats st = stats(f);
        assert_int_equal(st.refused, 1);
        assert_int_equal(st.connected, 0);
        expect_eof(fd);         /* closed without a word */
        close(fd);

        put_cgroup(f, "0::/\n");
        fd = connect_client(f);
        dispatch(f);
        assert_int_equal(stats(f).refused, 2);
        expect_eof(fd);
        close(fd);

        /* No cgroup file at all (the peer is gone, or proc is not what we think): refused. */
        char rel[64];
        xsnprintf(rel, sizeof rel, "%s/%d/cgroup", f->dir, (int)getpid());
        assert_int_equal(unlink(rel), 0);
        fd = connect_client(f);
        dispatch(f);
        assert_int_equal(stats(f).refused, 3);
        expect_eof(fd);
        close(fd);

        /* Back inside: accepted. */
        put_cgroup(f, "0::" SANDBOX "\n");
        fd = attach(f, NULL);
        assert_int_equal(stats(f).clients, 1);
        assert_int_equal(stats(f).refused, 3);
        close(fd);
}

static int setup_hybrid(void **state)
{
        char *text = fixture("v1/proc_self_cgroup_sandbox");
        int r = setup_mode(state, CG_HYBRID, "/process_api/9de9426028ba3cf34092c7a1cd93f9f7/memrun-10730", text);
        free(text);
        return r;
}

static void test_hybrid_memory_line(void **state)
{
        struct fixture *f = *state;

        int fd = attach(f, NULL);
        assert_int_equal(stats(f).clients, 1);
        close(fd);

        char *text = fixture("v1/proc_self_cgroup");    /* memrun's own cgroup: the sandbox's parent */
        put_cgroup(f, text);
        free(text);
        fd = connect_client(f);
        dispatch(f);
        assert_int_equal(stats(f).refused, 1);
        expect_eof(fd);
        close(fd);
}

static void test_malformed_counted_then_kicked(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg m;
        unsigned char junk[200];

        int other = attach(f, NULL);
        int fd = connect_client(f);
        dispatch(f);
        /* Before HELLO, a RESULT is a protocol error. */
        send_result(fd, 0, MEMLIMIT_ACT_TRIM, 1, 0);
        dispatch(f);
        assert_int_equal(stats(f).malformed, 1);
        send_hello_v(fd, MEMLIMIT_PROTO_VERSION);
        dispatch(f);
        expect_msg(fd, &m, MEMLIMIT_MSG_WELCOME);

        /* An empty datagram reads like EOF but is not one: counted, the client stays. */
        send_msg_len(fd, junk, 0);
        dispatch(f);
        assert_int_equal(stats(f).malformed, 2);
        assert_int_equal(stats(f).clients, 2);

        memset(junk, 0xee, sizeof junk);
        send_msg_len(fd, junk, sizeof junk);                    /* too long, garbage */
        send_msg_len(fd, junk, 3);                              /* too short */
        valid_msg(&m, MEMLIMIT_MSG_LEVEL);                      /* wrong direction */
        send_msg_len(fd, &m, sizeof m);
        send_hello_v(fd, MEMLIMIT_PROTO_VERSION);               /* second HELLO */
        valid_msg(&m, MEMLIMIT_MSG_RESULT);
        m.u.result.action = 0;                                  /* out of range */
        send_msg_len(fd, &m, sizeof m);
        send_msg_len(fd, &m, 40);                               /* truncated */
        dispatch(f);
        struct lsrv_stats st = stats(f);
        assert_int_equal(st.malformed, 8);
        assert_int_equal(st.kicked, 0);
        assert_int_equal(st.clients, 2);
        assert_int_equal(st.results, 0);

        /* A valid message still counts among the garbage. */
        send_result(fd, 0, MEMLIMIT_ACT_TRIM, 77, 0);
        dispatch(f);
        assert_int_equal(stats(f).results, 1);

        /* This client has sent 8 of LSRV_MAX_MALFORMED; 7 more leave it one short, the next one ends it. */
        for (int i = 0; i < LSRV_MAX_MALFORMED - 9; i++)
                send_msg_len(fd, junk, (size_t)(1 + i));
        dispatch(f);
        assert_int_equal(stats(f).kicked, 0);
        assert_int_equal(stats(f).clients, 2);
        send_msg_len(fd, junk, 64);
        send_result(fd, 0, MEMLIMIT_ACT_TRIM, 77, 0);           /* after the kick: never read */
        dispatch(f);
        st = stats(f);
        assert_int_equal(st.kicked, 1);
        assert_int_equal(st.malformed, LSRV_MAX_MALFORMED);
        assert_int_equal(st.clients, 1);
        assert_int_equal(st.connected, 1);
        assert_int_equal(st.results, 1);
        expect_bye(fd, MEMLIMIT_BYE_MALFORMED);
        close(fd);

        /* The well-behaved client never noticed. */
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM, 1, 2, NULL), 1);
        expect_msg(other, &m, MEMLIMIT_MSG_LEVEL);
        close(other);
}

static void test_bad_version(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg m;

        int fd = connect_client(f);
        dispatch(f);
        send_hello_v(fd, MEMLIMIT_PROTO_VERSION + 1);
        dispatch(f);
        struct lsrv_stats st = stats(f);
        assert_int_equal(st.bad_version, 1);
        assert_int_equal(st.connected, 0);
        assert_int_equal(st.clients_ever, 0);
        expect_msg(fd, &m, MEMLIMIT_MSG_BYE);
        assert_int_equal(m.u.bye.reason, MEMLIMIT_BYE_VERSION);
        assert_int_equal(m.version, MEMLIMIT_PROTO_VERSION);
        expect_eof(fd);
        close(fd);
}

static void test_results_accumulated(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg m;

        int a = attach(f, NULL);
        int b = attach(f, NULL);
        uint32_t seq;
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 1 << 20, 0, &seq),
                         2);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        expect_msg(b, &m, MEMLIMIT_MSG_LEVEL);
        send_result(a, seq, MEMLIMIT_ACT_TRIM, 1000, 0);
        send_result(a, seq, MEMLIMIT_ACT_COLLECT, 0, MEMLIMIT_RESULT_FUTILE);
        send_result(b, seq, MEMLIMIT_ACT_TRIM, 24, 0);
        send_result(b, seq, MEMLIMIT_ACT_COLLECT, 0, MEMLIMIT_RESULT_SKIPPED_BUDGET);
        send_result(b, seq - 1, MEMLIMIT_ACT_TRIM, 5, 0);       /* late answer to an older LEVEL */
        dispatch(f);

        struct lsrv_stats st = stats(f);
        assert_int_equal(st.results, 5);
        assert_int_equal(st.freed, 1029);
        assert_int_equal(st.usec, 50);
        assert_int_equal(st.futile, 1);
        assert_int_equal(st.budget_skipped, 1);
        assert_int_equal(st.seq, seq);
        assert_int_equal(st.seq_clients, 2);
        assert_int_equal(st.seq_results, 4);
        assert_int_equal(st.seq_freed, 1024);
        assert_int_equal(st.seq_futile, 1);

        /* Clients are served in no set order; each one's results arrive in its order. */
        assert_int_equal(f->n_results, 5);
        const struct lsrv_result *ra = f->results[0].freed == 1000 ? &f->results[0] : &f->results[3];
        const struct lsrv_result *rb = ra == f->results ? &f->results[2] : &f->results[0];
        assert_int_equal(ra[0].action, ACTION_TRIM);
        assert_int_equal(ra[0].freed, 1000);
        assert_int_equal(ra[0].seq, seq);
        assert_int_equal(ra[0].pid, getpid());
        assert_int_equal(ra[0].callbacks, 1);
        assert_int_equal(ra[0].usec, 10);
        assert_int_equal(ra[1].action, ACTION_COLLECT);
        assert_int_equal(ra[1].flags, MEMLIMIT_RESULT_FUTILE);
        assert_int_equal(ra[1].client_id, ra[0].client_id);
        assert_int_equal(rb[0].freed, 24);
        assert_int_equal(rb[1].flags, MEMLIMIT_RESULT_SKIPPED_BUDGET);
        assert_int_equal(rb[2].seq, seq - 1);
        assert_int_equal(rb[2].client_id, rb[0].client_id);
        assert_int_not_equal(ra[0].client_id, rb[0].client_id);

        /* A lying client cannot wrap the totals. */
        send_result(a, seq, MEMLIMIT_ACT_TRIM, UINT64_MAX, 0);
        dispatch(f);
        assert_int_equal(stats(f).freed, UINT64_MAX);

        /* The next broadcast starts a new tally. */
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_OK, 0, 0, 0, NULL), 2);
        st = stats(f);
        assert_int_equal(st.seq_results, 0);
        assert_int_equal(st.seq_freed, 0);
        close(a);
        close(b);
}

static void test_broadcast_reaches_all(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg m;
        int fds[6];

        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = attach(f, NULL);
        int unattached = connect_client(f);     /* no HELLO: gets nothing */
        dispatch(f);
        assert_int_equal(stats(f).connected, 7);

        assert_int_equal(lsrv_broadcast(f->srv, _LEVEL_MAX, 0, 0, 0, NULL), -EINVAL);
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_HIGH, 1u << 3, 0, 0, NULL), -EINVAL);
        assert_int_equal(stats(f).seq, 0);

        uint32_t seq1, seq2;
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 1234, 5678, &seq1),
                         6);
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_CRITICAL, MEMLIMIT_ACT_SHED, 99, 6000, &seq2), 6);
        assert_int_equal(seq1, 1);
        assert_int_equal(seq2, 2);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                expect_msg(fds[i], &m, MEMLIMIT_MSG_LEVEL);
                assert_int_equal(m.seq, seq1);
                assert_int_equal(m.u.level.level, MEMLIMIT_PROTO_HIGH);
                assert_int_equal(m.u.level.actions, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT);
                assert_int_equal(m.u.level.goal, 1234);
                assert_int_equal(m.u.level.usage, 5678);
                assert_int_equal(m.u.level.coalesced, 0);
                expect_msg(fds[i], &m, MEMLIMIT_MSG_LEVEL);
                assert_int_equal(m.seq, seq2);
                assert_int_equal(m.u.level.level, MEMLIMIT_PROTO_CRITICAL);
                expect_nothing(fds[i]);
        }
        expect_nothing(unattached);
        assert_int_equal(stats(f).sent, 6 + 12);

        /* Closing the server says goodbye to everyone attached. */
        lsrv_close(f->srv);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                expect_msg(fds[i], &m, MEMLIMIT_MSG_BYE);
                assert_int_equal(m.u.bye.reason, MEMLIMIT_BYE_NORMAL);
                expect_eof(fds[i]);
                close(fds[i]);
        }
        expect_eof(unattached);
        close(unattached);
}

static void test_never_reader_does_not_block(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg m;
        enum { N = 5000 };

        int slow = attach(f, NULL);
        int good = attach(f, NULL);
        for (uint32_t i = 1; i <= N; i++) {
                /* Sockets are non-blocking and the test is single-threaded: a blocking send would hang here. */
                assert_int_equal(lsrv_broadcast(f->srv, (enum level)(i % _LEVEL_MAX), MEMLIMIT_ACT_TRIM, i, i, NULL), 2);
                expect_msg(good, &m, MEMLIMIT_MSG_LEVEL);
                assert_int_equal(m.seq, i);
                assert_int_equal(m.u.level.coalesced, 0);
                if (i % 100 == 0)
                        dispatch(f);    /* the loop runs meanwhile: nothing to flush while the reader sleeps */
        }
        struct lsrv_stats st = stats(f);
        assert_int_equal(st.slow, 1);           /* one EAGAIN, then coalescing without syscalls */
        assert_int_equal(st.pending, 1);
        assert_int_equal(st.seq, N);

        /* What reached the slow client's socket before it filled, in order. */
        uint32_t delivered = 0;
        while (recv_msg(slow, &m) == (ssize_t)sizeof m) {
                assert_int_equal(m.type, MEMLIMIT_MSG_LEVEL);
                assert_int_equal(m.seq, ++delivered);
        }
        assert_true(delivered > 0 && delivered < N - 1);
        assert_int_equal(st.coalesced, N - delivered - 1);
        assert_int_equal(st.sent, 2 + N + delivered);

        /* Once it reads, the one queued message arrives: the latest level, saying how many it replaced. */
        dispatch(f);
        expect_msg(slow, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.seq, N);
        assert_int_equal(m.u.level.goal, N);
        assert_int_equal(m.u.level.coalesced, N - delivered - 1);
        expect_nothing(slow);
        st = stats(f);
        assert_int_equal(st.pending, 0);
        assert_int_equal(st.sent, 2 + N + delivered + 1);

        /* And it is an ordinary client again. */
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_OK, 0, 0, 0, NULL), 2);
        expect_msg(slow, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.u.level.coalesced, 0);

        /* A never-reader that leaves with a queued message leaves no trace. */
        for (uint32_t i = 0; i < 200; i++) {
                assert_int_equal(lsrv_broadcast(f->srv, LEVEL_HIGH, 0, 0, 0, NULL), 2);
                expect_msg(good, &m, MEMLIMIT_MSG_LEVEL);
        }
        assert_int_equal(stats(f).pending, 1);
        close(slow);
        dispatch(f);
        st = stats(f);
        assert_int_equal(st.pending, 0);
        assert_int_equal(st.clients, 1);
        close(good);
}

static void test_flood_is_paced(void **state)
{
        struct fixture *f = *state;
        enum { FLOOD = 5 * LSRV_READ_BUDGET + 3 };

        int flooder = attach(f, NULL);
        int quiet = attach(f, NULL);
        for (int i = 0; i < FLOOD; i++)
                send_result(flooder, 0, MEMLIMIT_ACT_TRIM, 1, 0);
        send_result(quiet, 0, MEMLIMIT_ACT_COLLECT, 500, 0);

        /* First round: one budget's worth of the flood, and the quiet client is served too. */
        dispatch(f);
        assert_int_equal(f->n_results, LSRV_READ_BUDGET + 1);
        size_t quiet_seen = 0;
        for (size_t i = 0; i < f->n_results; i++)
                quiet_seen += f->results[i].action == ACTION_COLLECT && f->results[i].freed == 500;
        assert_int_equal(quiet_seen, 1);

        /* The rest comes a budget per round, and all of it. */
        int rounds = 1;
        while (stats(f).results < FLOOD + 1) {
                size_t before = f->n_results;
                assert_true(dispatch(f) > 0);
                assert_true(f->n_results - before <= LSRV_READ_BUDGET);
                rounds++;
                assert_true(rounds < 100);
        }
        assert_int_equal(rounds, (FLOOD + LSRV_READ_BUDGET - 1) / LSRV_READ_BUDGET);
        struct lsrv_stats st = stats(f);
        assert_int_equal(st.freed, FLOOD + 500);
        assert_int_equal(st.malformed, 0);
        assert_int_equal(st.clients, 2);
        assert_int_equal(dispatch(f), 0);       /* nothing left */
        close(flooder);
        close(quiet);
}

static void test_table_full(void **state)
{
        struct fixture *f = *state;
        struct rlimit rl;
        struct memlimit_msg m;
        enum { NEED = 2 * LSRV_MAX_CLIENTS + 64 };

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < NEED) {
                if (rl.rlim_max < NEED) {
                        print_message("SKIP: RLIMIT_NOFILE hard limit %llu < %d\n", (unsigned long long)rl.rlim_max, NEED);
                        skip();
                }
                rl.rlim_cur = NEED;
                assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        }
        int *fds = calloc(LSRV_MAX_CLIENTS + 1, sizeof *fds);
        assert_non_null(fds);
        for (int i = 0; i < LSRV_MAX_CLIENTS; i++) {
                fds[i] = connect_client(f);
                if (i % LSRV_ACCEPT_BUDGET == LSRV_ACCEPT_BUDGET - 1)
                        dispatch(f);
        }
        while (stats(f).connected < LSRV_MAX_CLIENTS)
                assert_true(dispatch(f) > 0);
        int extra = connect_client(f);
        dispatch(f);
        struct lsrv_stats st = stats(f);
        assert_int_equal(st.full, 1);
        assert_int_equal(st.connected, LSRV_MAX_CLIENTS);
        expect_msg(extra, &m, MEMLIMIT_MSG_BYE);
        assert_int_equal(m.u.bye.reason, MEMLIMIT_BYE_FULL);
        expect_eof(extra);
        close(extra);

        /* One leaves, the next gets in. */
        close(fds[0]);
        dispatch(f);
        assert_int_equal(stats(f).connected, LSRV_MAX_CLIENTS - 1);
        fds[0] = connect_client(f);
        dispatch(f);
        assert_int_equal(stats(f).connected, LSRV_MAX_CLIENTS);
        assert_int_equal(stats(f).full, 1);
        for (int i = 0; i < LSRV_MAX_CLIENTS; i++)
                close(fds[i]);
        free(fds);
}

static void test_close_unopened(void **state)
{
        (void)state;
        struct lsrv *s = malloc(sizeof *s);
        assert_non_null(s);
        lsrv_init(s);
        lsrv_close(s);
        lsrv_close(NULL);
        /* Bad arguments leave nothing open. */
        assert_int_equal(lsrv_open(s, CG_V2, "relative", "/proc", NULL, 0), -EINVAL);
        assert_int_equal(lsrv_open(s, _CG_MODE_MAX, "/", "/proc", NULL, 0), -EINVAL);
        assert_int_equal(lsrv_open(s, CG_V2, "/", "/nonexistent-proc-root", NULL, 0), -ENOENT);
        assert_int_equal(lsrv_fd(s), -1);
        char small[4];
        assert_int_equal(lsrv_open(s, CG_V2, "/", "/proc", small, sizeof small), -ENAMETOOLONG);
        assert_int_equal(lsrv_fd(s), -1);
        lsrv_close(s);
        free(s);
}

/* ---------- the governor's asks: one outstanding per client, rounds, shares, rest after nothing ---------- */
struct rounds {
        unsigned n;
        struct lsrv_round last;
};
static void record_round(const struct lsrv_round *r, void *userdata)
{
        struct rounds *rs = userdata;
        rs->n++;
        rs->last = *r;
}

static void test_ask_rounds(void **state)
{
        struct fixture *f = *state;
        struct rounds rs = {};
        struct memlimit_msg m;
        uint64_t out;
        unsigned askable;
        uint32_t seq;
        lsrv_on_round(f->srv, record_round, &rs);

        assert_int_equal(lsrv_ask(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM, 1 << 20, 1 << 26, &seq), 0); /* nobody */
        int a = attach(f, NULL), b = attach(f, NULL);
        lsrv_ask_state(f->srv, USEC_PER_SEC, &out, &askable);
        assert_int_equal(askable, 2);
        assert_int_equal(out, 0);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 4 << 20, 1 << 26, &seq),
                         2);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.seq, seq);
        assert_int_equal(m.u.level.goal, 2 << 20); /* shared evenly: neither gave anything yet */
        expect_msg(b, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.u.level.goal, 2 << 20);
        /* Outstanding: not asked again. */
        lsrv_ask_state(f->srv, USEC_PER_SEC, &out, &askable);
        assert_int_equal(askable, 0);
        assert_int_equal(out, 4 << 20);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM, 1 << 20, 1 << 26, NULL), 0);
        expect_nothing(a);

        /* a answers both actions; b only one: the round is not complete yet. */
        send_result(a, seq, MEMLIMIT_ACT_TRIM, 3 << 20, 0);
        send_result(a, seq, MEMLIMIT_ACT_COLLECT, 0, MEMLIMIT_RESULT_FUTILE);
        send_result(b, seq, MEMLIMIT_ACT_TRIM, 0, MEMLIMIT_RESULT_FUTILE);
        dispatch(f);
        assert_int_equal(rs.n, 0);
        lsrv_ask_state(f->srv, USEC_PER_SEC, &out, &askable);
        assert_int_equal(askable, 1); /* a */
        send_result(b, seq, MEMLIMIT_ACT_COLLECT, 0, MEMLIMIT_RESULT_FUTILE);
        dispatch(f);
        assert_int_equal(rs.n, 1);
        assert_int_equal(rs.last.seq, seq);
        assert_int_equal(rs.last.asked, 2);
        assert_int_equal(rs.last.answered, 2);
        assert_int_equal(rs.last.goal, 4 << 20);
        assert_int_equal(rs.last.freed, 3 << 20);
        /* b gave nothing: it rests (still counted free: an escalated ask would reach it); a is asked,
         * with the larger share for what it gave. */
        lsrv_ask_state(f->srv, USEC_PER_SEC, &out, &askable);
        assert_int_equal(askable, 2);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM, 8 << 20, 1 << 26, &seq), 1);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.u.level.goal, 8 << 20);
        expect_nothing(b);
        /* An escalated ask (a new action) reaches the resting b at once. */
        assert_int_equal(lsrv_ask(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT | MEMLIMIT_ACT_SHED,
                                  1 << 20, 1 << 26, &seq), 1);
        expect_msg(b, &m, MEMLIMIT_MSG_LEVEL);
        send_result(b, seq, MEMLIMIT_ACT_TRIM, 0, MEMLIMIT_RESULT_FUTILE);
        send_result(b, seq, MEMLIMIT_ACT_COLLECT, 0, MEMLIMIT_RESULT_FUTILE);
        send_result(b, seq, MEMLIMIT_ACT_SHED, 0, 0);
        dispatch(f);
        assert_int_equal(rs.n, 2);
        assert_int_equal(rs.last.answered, 1);
        rs.n = 1;

        /* An ask nobody answers is written off after the timeout: the round completes short. */
        lsrv_ask_state(f->srv, 0, &out, &askable);
        assert_int_equal(rs.n, 2);
        assert_int_equal(rs.last.freed, 0);
        assert_int_equal(stats(f).ask_timeouts, 1);
        /* A client that hangs up with an ask outstanding ends its part of the round. */
        struct timespec ts = { 0, 150000000 }; /* both rests (50 and 100 ms: they gave nothing) are over */
        nanosleep(&ts, NULL);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM, 2 << 20, 1 << 26, &seq), 2);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        expect_msg(b, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.seq, seq);
        close(b);
        dispatch(f);
        assert_int_equal(rs.n, 2); /* a has not answered */
        send_result(a, seq, MEMLIMIT_ACT_TRIM, 1 << 20, 0);
        dispatch(f);
        assert_int_equal(rs.n, 3);
        assert_int_equal(rs.last.seq, seq);
        assert_int_equal(rs.last.answered, 2);
        assert_int_equal(rs.last.freed, 1 << 20);
        assert_int_equal(stats(f).asks, 6);
        assert_int_equal(stats(f).rounds, 4);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_HIGH, 0, 1, 1, NULL), -EINVAL);
        close(a);
        dispatch(f);
}

/* A client that gave back nothing rests, but not past the end of the episode: once the level is back
 * to ok, the next ask reaches it at once (the burst scenario's second wave was asked only after the
 * first wave's rest, at memory.max on v1). A level above ok keeps the rest. */
static void test_rest_ends_at_ok(void **state)
{
        struct fixture *f = *state;
        struct memlimit_msg m;
        uint32_t seq;
        int a = attach(f, NULL);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM, 1 << 20, 1 << 26, &seq), 1);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        send_result(a, seq, MEMLIMIT_ACT_TRIM, 0, MEMLIMIT_RESULT_FUTILE);
        dispatch(f);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM, 1 << 20, 1 << 26, NULL), 0); /* resting */
        expect_nothing(a);
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM, 0, 1 << 26, NULL), 1);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM, 1 << 20, 1 << 26, NULL), 0); /* still */
        expect_nothing(a);
        assert_int_equal(lsrv_broadcast(f->srv, LEVEL_OK, 0, 0, 1 << 20, NULL), 1);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.u.level.level, LEVEL_OK);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_MODERATE, MEMLIMIT_ACT_TRIM, 1 << 20, 1 << 26, &seq), 1);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        assert_int_equal(m.seq, seq);
        close(a);
        dispatch(f);
}

/* A RESULT flagged SKIPPED_BUDGET marks its ask as put off: the round says deferred (also when the
 * ask is written off after it), the stats count the ask once, the client rests only the short
 * LSRV_BACKOFF_MIN_USEC (its budget refills with time), and the next ask starts clean. */
static void test_ask_deferred(void **state)
{
        struct fixture *f = *state;
        struct rounds rs = {};
        struct memlimit_msg m;
        uint64_t out;
        unsigned askable;
        uint32_t seq;
        struct timespec rest = { 0, 70000000 }; /* past LSRV_BACKOFF_MIN_USEC, short of twice it */
        lsrv_on_round(f->srv, record_round, &rs);
        int a = attach(f, NULL);

        for (int i = 0; i < 3; i++) {
                assert_int_equal(lsrv_ask(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 4 << 20, 1 << 26,
                                          &seq), 1);
                expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
                send_result(a, seq, MEMLIMIT_ACT_TRIM, 0, MEMLIMIT_RESULT_SKIPPED_BUDGET);
                send_result(a, seq, MEMLIMIT_ACT_COLLECT, 0, MEMLIMIT_RESULT_SKIPPED_BUDGET);
                dispatch(f);
                assert_int_equal(rs.n, (unsigned)i + 1);
                assert_true(rs.last.deferred);
                assert_int_equal(rs.last.freed, 0);
                nanosleep(&rest, NULL); /* no doubling: a futile client would still rest 100, 200 ms */
        }
        assert_int_equal(stats(f).asks_deferred, 3);
        assert_int_equal(stats(f).budget_skipped, 6);

        /* The next ask, answered futile: not deferred. */
        assert_int_equal(lsrv_ask(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM, 1 << 20, 1 << 26, &seq), 1);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        send_result(a, seq, MEMLIMIT_ACT_TRIM, 0, MEMLIMIT_RESULT_FUTILE);
        dispatch(f);
        assert_int_equal(rs.n, 4);
        assert_false(rs.last.deferred);
        assert_int_equal(stats(f).asks_deferred, 3);

        /* Put off in part, then written off at the timeout: still deferred. */
        nanosleep(&rest, NULL);
        assert_int_equal(lsrv_ask(f->srv, LEVEL_HIGH, MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_COLLECT, 1 << 20, 1 << 26, &seq),
                         1);
        expect_msg(a, &m, MEMLIMIT_MSG_LEVEL);
        send_result(a, seq, MEMLIMIT_ACT_TRIM, 0, MEMLIMIT_RESULT_SKIPPED_BUDGET);
        dispatch(f);
        assert_int_equal(rs.n, 4);
        lsrv_ask_state(f->srv, 0, &out, &askable);
        assert_int_equal(rs.n, 5);
        assert_true(rs.last.deferred);
        assert_int_equal(stats(f).asks_deferred, 4);
        close(a);
        dispatch(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_msg_check_table),
                cmocka_unit_test(test_msg_layout),
                cmocka_unit_test(test_endpoint_addr),
                cmocka_unit_test(test_cgroup_inside_table),
                cmocka_unit_test_setup_teardown(test_limits_pushed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_inside_accepted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outside_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hybrid_memory_line, setup_hybrid, teardown),
                cmocka_unit_test_setup_teardown(test_malformed_counted_then_kicked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_results_accumulated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broadcast_reaches_all, setup, teardown),
                cmocka_unit_test_setup_teardown(test_never_reader_does_not_block, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flood_is_paced, setup, teardown),
                cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ask_rounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ask_deferred, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rest_ends_at_ok, setup, teardown),
                cmocka_unit_test(test_close_unopened),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
