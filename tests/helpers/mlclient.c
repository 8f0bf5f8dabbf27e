/* mlclient: a small libmemlimit stand-in for the integration tests. Attaches to memrun at
 * $MEMRUN_LIMITER, prints every message it receives as one line on stdout and answers LEVELs with
 * RESULTs (freeing --free bytes; with --deferred an answer that frees nothing says its CPU budget put
 * it off, SKIPPED_BUDGET, instead of FUTILE); hostile modes (garbage, flood, never-read, bad
 * version) check that memrun shrugs them off.
 *
 * stdout lines:
 *   welcome id=1 limit=268435456 soft=241591910 level=ok seq=0 actions=none
 *   level=high seq=3 actions=trim,collect goal=1234          (+ " coalesced=N" when N > 0)
 *   bye reason=malformed                                     (+ " server_version=N" for reason=version)
 *   garbage sent=N   flood sent=N   eof
 * Exit status: 0 done (EOF, BYE, --exit-after), 1 cannot connect or I/O error, 2 usage, 3 memrun
 * sent something invalid. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "limiter/memlimit_proto.h"

static const char usage_text[] =
        "usage: mlclient [--free SIZE] [--deferred] [--exit-after SECONDS] [--garbage | --flood N | --never-read |\n"
        "                --bad-version] [--endpoint EP] [--seed N]\n"
        "Attach to memrun at $" MEMLIMIT_ENV_ENDPOINT ", print what arrives, answer each LEVEL.\n";

static uint64_t rng_state;
static bool deferred;   /* --deferred: an empty answer says SKIPPED_BUDGET, not FUTILE */

static uint64_t rnd(void)
{
        /* xorshift64*: reproducible with --seed, no libc state. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_size(const char *s, uint64_t *ret)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-')
                return -EINVAL;
        unsigned shift = 0;
        switch (*end) {
        case '\0': break;
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        case 't': case 'T': shift = 40; end++; break;
        default: return -EINVAL;
        }
        if (*end || (shift && v > (UINT64_MAX >> shift)))
                return -EINVAL;
        *ret = (uint64_t)v << shift;
        return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
        ssize_t n;
        do
                n = send(fd, buf, len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : 0;
}

static int send_hello(int fd, uint16_t version)
{
        struct memlimit_msg m;
        memlimit_msg_init(&m, MEMLIMIT_MSG_HELLO);
        m.version = version;
        m.u.hello.pid = (uint32_t)getpid();
        m.u.hello.caps = MEMLIMIT_ACT_ALL;
        (void)prctl(PR_GET_NAME, m.u.hello.comm, 0, 0, 0);
        m.u.hello.comm[sizeof m.u.hello.comm - 1] = '\0';
        return send_all(fd, &m, sizeof m);
}

static int send_result(int fd, uint32_t seq, uint32_t action, uint64_t freed, uint64_t usec)
{
        struct memlimit_msg m;
        memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
        m.seq = seq;
        m.u.result.action = action;
        m.u.result.callbacks = 1;
        m.u.result.freed = freed;
        m.u.result.usec = usec;
        if (freed == 0 && action != MEMLIMIT_ACT_SHED)
                m.flags = deferred ? MEMLIMIT_RESULT_SKIPPED_BUDGET : MEMLIMIT_RESULT_FUTILE;
        return send_all(fd, &m, sizeof m);
}

/* A garbage datagram: mostly random bytes of a random size, sometimes a near-miss of a real message. */
static size_t make_garbage(unsigned char *buf, size_t cap)
{
        struct memlimit_msg m;
        size_t len = (size_t)(rnd() % (cap + 1));
        for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)rnd();
        switch (rnd() % 8) {
        case 0: /* right size and magic, unknown type */
                memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
                m.type = (uint16_t)(MEMLIMIT_MSG_TYPE_MAX + rnd() % 100);
                break;
        case 1: /* a RESULT naming two actions */
                memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
                m.u.result.action = MEMLIMIT_ACT_TRIM | MEMLIMIT_ACT_SHED;
                break;
        case 2: /* a LEVEL, which only memrun may send, with a level out of range */
                memlimit_msg_init(&m, MEMLIMIT_MSG_LEVEL);
                m.seq = 1;
                m.u.level.level = MEMLIMIT_PROTO_LEVEL_MAX + (uint32_t)(rnd() % 1000);
                break;
        case 3: /* a valid RESULT cut short */
                memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
                m.u.result.action = MEMLIMIT_ACT_TRIM;
                memcpy(buf, &m, sizeof m);
                return 1 + (size_t)(rnd() % (sizeof m - 1));
        default:
                return len;
        }
        memcpy(buf, &m, sizeof m);
        return sizeof m;
}

static int print_bye(const struct memlimit_msg *m)
{
        if (m->u.bye.reason == MEMLIMIT_BYE_VERSION)
                printf("bye reason=version server_version=%u\n", (unsigned)m->version);
        else
                printf("bye reason=%s\n", memlimit_bye_reason_name(m->u.bye.reason));
        return 0;
}

/* Read until EOF, printing BYEs: what memrun says after it is done with us. */
static void drain(int fd)
{
        for (;;) {
                struct memlimit_msg m;
                ssize_t n = recv(fd, &m, sizeof m, MSG_TRUNC);
                /* ECONNRESET: memrun closed with messages of ours unread; what it sent is still there. */
                if (n < 0 && (errno == EINTR || errno == ECONNRESET))
                        continue;
                if (n <= 0)
                        break;
                int r = memlimit_msg_check(&m, (size_t)n);
                if ((r == 0 || r == -EPROTO) && m.type == MEMLIMIT_MSG_BYE && (size_t)n == sizeof m)
                        print_bye(&m);
        }
        printf("eof\n");
}

int main(int argc, char **argv)
{
        enum { NORMAL, GARBAGE, FLOOD, NEVER_READ, BAD_VERSION } mode = NORMAL;
        static const struct option opts[] = {
                { "free", required_argument, NULL, 'f' },
                { "deferred", no_argument, NULL, 'd' },
                { "exit-after", required_argument, NULL, 'x' },
                { "garbage", no_argument, NULL, 'g' },
                { "flood", required_argument, NULL, 'F' },
                { "never-read", no_argument, NULL, 'n' },
                { "bad-version", no_argument, NULL, 'b' },
                { "endpoint", required_argument, NULL, 'e' },
                { "seed", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t free_bytes = 0, flood = 0, seed = (uint64_t)getpid();
        double exit_after = 0;
        const char *endpoint = getenv(MEMLIMIT_ENV_ENDPOINT);
        int c;

        setvbuf(stdout, NULL, _IOLBF, 0);
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                char *end;
                switch (c) {
                case 'f':
                        if (parse_size(optarg, &free_bytes) < 0)
                                goto bad;
                        break;
                case 'x':
                        errno = 0;
                        exit_after = strtod(optarg, &end);
                        if (errno || end == optarg || *end || exit_after < 0)
                                goto bad;
                        break;
                case 'd': deferred = true; break;
                case 'g': mode = GARBAGE; break;
                case 'F':
                        mode = FLOOD;
                        if (parse_size(optarg, &flood) < 0)
                                goto bad;
                        break;
                case 'n': mode = NEVER_READ; break;
                case 'b': mode = BAD_VERSION; break;
                case 'e': endpoint = optarg; break;
                case 's':
                        if (parse_size(optarg, &seed) < 0)
                                goto bad;
                        break;
                case 'h':
                        fputs(usage_text, stdout);
                        return 0;
                default:
                        fputs(usage_text, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fputs(usage_text, stderr);
                return 2;
        }
        rng_state = seed ? seed : 1;

        struct sockaddr_un addr;
        socklen_t alen;
        if (!endpoint || memlimit_endpoint_addr(endpoint, &addr, &alen) < 0) {
                fprintf(stderr, "mlclient: no usable endpoint (%s=%s)\n", MEMLIMIT_ENV_ENDPOINT,
                        endpoint ? endpoint : "(unset)");
                return 1;
        }
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, alen) < 0) {
                fprintf(stderr, "mlclient: connect %s: %s\n", endpoint, strerror(errno));
                return 1;
        }
        double deadline = exit_after > 0 ? now() + exit_after : 0;

        if (send_hello(fd, mode == BAD_VERSION ? MEMLIMIT_PROTO_VERSION + 1 : MEMLIMIT_PROTO_VERSION) < 0) {
                fprintf(stderr, "mlclient: HELLO: %s\n", strerror(errno));
                drain(fd);
                return 0;       /* refused (outside the sandbox) */
        }

        if (mode == NEVER_READ) {
                while (deadline == 0 || now() < deadline) {
                        double left = deadline > 0 ? deadline - now() : 3600;
                        struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
                        nanosleep(&ts, NULL);
                }
                return 0;
        }
        if (mode == GARBAGE) {
                unsigned char buf[256];
                uint64_t sent = 0;
                while (deadline == 0 || now() < deadline) {
                        size_t len = make_garbage(buf, sizeof buf);
                        if (send_all(fd, buf, len) < 0)
                                break;
                        sent++;
                }
                printf("garbage sent=%" PRIu64 "\n", sent);
                drain(fd);
                return 0;
        }
        if (mode == FLOOD) {
                uint64_t sent = 0;
                while (sent < flood && send_result(fd, 0, MEMLIMIT_ACT_TRIM, free_bytes, 0) == 0)
                        sent++;
                printf("flood sent=%" PRIu64 "\n", sent);
        }

        for (;;) {
                int timeout = -1;
                if (deadline > 0) {
                        double left = deadline - now();
                        if (left <= 0)
                                return 0;
                        timeout = (int)(left * 1000) + 1;
                }
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int n = poll(&p, 1, timeout);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fprintf(stderr, "mlclient: poll: %s\n", strerror(errno));
                        return 1;
                }
                if (n == 0)
                        continue;

                struct memlimit_msg m;
                ssize_t len = recv(fd, &m, sizeof m, MSG_TRUNC | MSG_DONTWAIT);
                if (len < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (len < 0) {
                        if (errno == ECONNRESET) {
                                drain(fd);
                                return 0;
                        }
                        fprintf(stderr, "mlclient: recv: %s\n", strerror(errno));
                        return 1;
                }
                if (len == 0) {
                        printf("eof\n");
                        return 0;
                }
                int r = memlimit_msg_check(&m, (size_t)len);
                if (r == -EPROTO && m.type == MEMLIMIT_MSG_BYE && (size_t)len == sizeof m) {
                        print_bye(&m);
                        continue;
                }
                if (r < 0) {
                        fprintf(stderr, "mlclient: invalid message from memrun (%zd bytes): %s\n", len, strerror(-r));
                        return 3;
                }
                char acts[32];
                switch (m.type) {
                case MEMLIMIT_MSG_WELCOME:
                        printf("welcome id=%u limit=%" PRIu64 " soft=%" PRIu64 " level=%s seq=%u actions=%s\n",
                               m.u.welcome.client_id, m.u.welcome.limit, m.u.welcome.soft,
                               memlimit_proto_level_name(m.u.welcome.level), m.seq,
                               memlimit_proto_actions_format(m.u.welcome.actions, acts, sizeof acts));
                        break;
                case MEMLIMIT_MSG_LEVEL: {
                        double t0 = now();
                        printf("level=%s seq=%u actions=%s goal=%" PRIu64, memlimit_proto_level_name(m.u.level.level),
                               m.seq, memlimit_proto_actions_format(m.u.level.actions, acts, sizeof acts),
                               m.u.level.goal);
                        if (m.u.level.coalesced)
                                printf(" coalesced=%u", m.u.level.coalesced);
                        printf("\n");
                        for (uint32_t bit = 1; bit & MEMLIMIT_ACT_ALL; bit <<= 1) {
                                if (!(m.u.level.actions & bit))
                                        continue;
                                uint64_t freed = bit == MEMLIMIT_ACT_SHED ? 0 : free_bytes;
                                uint64_t usec = (uint64_t)((now() - t0) * 1e6);
                                if (send_result(fd, m.seq, bit, freed, usec) < 0) {
                                        drain(fd);
                                        return 0;
                                }
                        }
                        break;
                }
                case MEMLIMIT_MSG_BYE:
                        print_bye(&m);
                        break;
                default:
                        fprintf(stderr, "mlclient: memrun sent a %s\n", memlimit_msg_type_name(m.type));
                        return 3;
                }
        }
bad:
        fprintf(stderr, "mlclient: bad option value: %s\n", optarg);
        return 2;
}
