/* loadgen: load for cachesrv over loopback. N keep-alive connections, each with one request in flight:
 * PUTs of random keys (values of --size bytes), or a --get share of GETs, as fast as possible or at
 * --rate requests/s in total, until --count requests were sent or --duration seconds passed. Then it
 * waits up to --grace seconds for the answers still due.
 *
 * Every request is accounted for exactly once: by its response status, or as lost (sent, and the
 * connection closed or the grace period ended before its response came). Connection failures and
 * unparsable responses are errors.
 *
 * usage: loadgen --port PORT [--conns N] [--size SIZE] [--count N] [--duration SECONDS] [--rate N]
 *                [--keys N] [--get PCT] [--grace SECONDS] [--seed N]
 * One line on stdout:
 *   loadgen: sent=N ok=N 503=N 404=N errors=N lost=N p50_ms=X p99_ms=X
 * (ok = 200 + 201; other statuses count as errors). Exit 0 iff lost == 0 and errors == 0, else 1;
 * 2 for bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_CONNS 256
#define MAX_SAMPLES (1u << 21)   /* latency samples kept; past it, the rest are not sampled */
#define MAX_RECONNECTS 16        /* per connection, after the server closed it */

struct lconn {
        int fd;
        bool busy, connecting, dead;
        unsigned reconnects;
        double sent_at;
        /* request being written: head, then (PUT) the shared body */
        char head[160];
        size_t head_len, body_len, off;
        /* response being read */
        char in[4096];
        size_t in_len;
        long status;
        size_t resp_body_left;
        bool in_body;
};

static struct {
        uint64_t sent, ok, s503, s404, errors, lost, other;
} st;
static uint32_t *samples;
static size_t nsamples;
static char *body;
static uint16_t port;
static int epfd;
static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long num_arg(const char *s)
{
        return example_size_arg("loadgen", s);
}

static double dbl_arg(const char *s, const char *what)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || v < 0) {
                fprintf(stderr, "loadgen: %s: bad number '%s'\n", what, s);
                exit(2);
        }
        return v;
}

static void conn_close(struct lconn *c)
{
        if (c->fd >= 0) {
                (void)epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
        }
        c->fd = -1;
        if (c->busy)
                st.lost++;
        c->busy = false;
        c->in_len = 0;
        c->in_body = false;
}

static int conn_open(struct lconn *c)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
                int r = -errno;
                close(c->fd);
                c->fd = -1;
                return r;
        }
        c->connecting = true;
        struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                int r = -errno;
                close(c->fd);
                c->fd = -1;
                return r;
        }
        return 0;
}

static void want(struct lconn *c, bool out)
{
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = c };
        (void)epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static bool conn_flush(struct lconn *c)
{
        while (c->off < c->head_len + c->body_len) {
                struct iovec iov[2];
                int n = 0;
                if (c->off < c->head_len)
                        iov[n++] = (struct iovec){ c->head + c->off, c->head_len - c->off };
                size_t boff = c->off > c->head_len ? c->off - c->head_len : 0;
                if (c->body_len > boff)
                        iov[n++] = (struct iovec){ body + boff, c->body_len - boff };
                struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
                ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        want(c, true);
                        return true;
                }
                if (w < 0)
                        return false;
                c->off += (size_t)w;
        }
        want(c, false);
        return true;
}

static bool send_request(struct lconn *c, uint64_t keys, unsigned get_pct, size_t size)
{
        uint64_t key = rnd() % keys;
        bool get = get_pct && rnd() % 100 < get_pct;
        int n = get ? snprintf(c->head, sizeof c->head, "GET /k%llu HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                               (unsigned long long)key)
                    : snprintf(c->head, sizeof c->head,
                               "PUT /k%llu HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n",
                               (unsigned long long)key, size);
        c->head_len = (size_t)n;
        c->body_len = get ? 0 : size;
        c->off = 0;
        c->busy = true;
        c->status = 0;
        c->sent_at = now();
        st.sent++;
        return conn_flush(c);
}

static void count(struct lconn *c)
{
        switch (c->status) {
        case 200: case 201: st.ok++; break;
        case 503: st.s503++; break;
        case 404: st.s404++; break;
        default: st.errors++; st.other++; break;
        }
        if (nsamples < MAX_SAMPLES)
                samples[nsamples++] = (uint32_t)((now() - c->sent_at) * 1e6);
        c->busy = false;
}

/* Parse what is in c->in: a status line and headers, then skip Content-Length body bytes.
 * Returns -1 on a protocol error, 0 when more input is needed, 1 when a response completed. */
static int parse(struct lconn *c)
{
        if (c->in_body) {
                size_t n = c->in_len < c->resp_body_left ? c->in_len : c->resp_body_left;
                memmove(c->in, c->in + n, c->in_len - n);
                c->in_len -= n;
                c->resp_body_left -= n;
                if (c->resp_body_left)
                        return 0;
                c->in_body = false;
                return 1;
        }
        char *end = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
        if (!end)
                return c->in_len == sizeof c->in ? -1 : 0;
        size_t used = (size_t)(end - c->in) + 4;
        *end = '\0';
        if (strncmp(c->in, "HTTP/1.1 ", 9) != 0)
                return -1;
        c->status = strtol(c->in + 9, NULL, 10);
        size_t clen = 0;
        for (char *h = strstr(c->in, "\r\n"); h; h = strstr(h + 2, "\r\n"))
                if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
                        clen = (size_t)strtoull(h + 17, NULL, 10);
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        c->resp_body_left = clen;
        c->in_body = true;
        return parse(c);
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        unsigned long long conns = 4, size = 64 << 10, count_max = 0, keys = 1000000, seed = 0, pport = 0;
        double duration = 0, rate = 0, grace = 10;
        unsigned get_pct = 0;

        for (int i = 1; i < argc; i++) {
                const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!v)
                        goto usage;
                i++;
                if (strcmp(o, "--port") == 0) pport = num_arg(v);
                else if (strcmp(o, "--conns") == 0) conns = num_arg(v);
                else if (strcmp(o, "--size") == 0) size = num_arg(v);
                else if (strcmp(o, "--count") == 0) count_max = num_arg(v);
                else if (strcmp(o, "--duration") == 0) duration = dbl_arg(v, o);
                else if (strcmp(o, "--rate") == 0) rate = dbl_arg(v, o);
                else if (strcmp(o, "--keys") == 0) keys = num_arg(v);
                else if (strcmp(o, "--get") == 0) get_pct = (unsigned)num_arg(v);
                else if (strcmp(o, "--grace") == 0) grace = dbl_arg(v, o);
                else if (strcmp(o, "--seed") == 0) seed = num_arg(v);
                else goto usage;
        }
        if (pport == 0 || pport > 65535 || conns == 0 || conns > MAX_CONNS || keys == 0 || get_pct > 100 ||
            size > (256u << 20) || (count_max == 0 && duration <= 0))
                goto usage;
        port = (uint16_t)pport;
        rng ^= seed ? seed : (uint64_t)getpid() * 2654435761u;
        body = malloc(size ? size : 1);
        samples = malloc(MAX_SAMPLES * sizeof *samples);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!body || !samples || epfd < 0) {
                fprintf(stderr, "loadgen: %s\n", strerror(errno));
                return 1;
        }
        for (size_t i = 0; i < size; i++)
                body[i] = (char)('a' + i % 26);

        static struct lconn cs[MAX_CONNS];
        for (unsigned i = 0; i < conns; i++) {
                cs[i].fd = -1;
                if (conn_open(&cs[i]) < 0) {
                        st.errors++;
                        cs[i].dead = true;
                }
        }

        double start = now(), stop_sending = duration > 0 ? start + duration : 0, deadline = 0;
        for (;;) {
                double t = now();
                bool sending = (count_max == 0 || st.sent < count_max) && (stop_sending == 0 || t < stop_sending);
                bool inflight = false, alive = false;
                for (unsigned i = 0; i < conns; i++) {
                        inflight |= cs[i].busy;
                        alive |= !cs[i].dead;
                }
                if (!alive || (!sending && !inflight))
                        break;
                if (!sending && deadline == 0)
                        deadline = t + grace;
                if (deadline != 0 && t >= deadline)
                        break;
                /* start requests on idle connections, as the rate allows */
                int timeout = 100;
                if (sending)
                        for (unsigned i = 0; i < conns && (count_max == 0 || st.sent < count_max); i++) {
                                struct lconn *c = &cs[i];
                                if (c->dead || c->busy || c->connecting || c->fd < 0)
                                        continue;
                                if (rate > 0 && (double)st.sent >= (t - start) * rate) {
                                        double due = start + (double)st.sent / rate - t;
                                        timeout = due > 0 ? (int)(due * 1000) + 1 : 0;
                                        break;
                                }
                                if (!send_request(c, keys, get_pct, (size_t)size)) {
                                        conn_close(c); /* the request went nowhere: lost */
                                        c->dead = true;
                                        st.errors++;
                                }
                        }
                struct epoll_event evs[MAX_CONNS];
                int n = epoll_wait(epfd, evs, MAX_CONNS, timeout);
                for (int k = 0; k < n; k++) {
                        struct lconn *c = evs[k].data.ptr;
                        if (c->fd < 0)
                                continue;
                        if (c->connecting && (evs[k].events & EPOLLOUT)) {
                                int err = 0;
                                socklen_t l = sizeof err;
                                (void)getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                                if (err) {
                                        conn_close(c);
                                        c->dead = true;
                                        st.errors++;
                                        continue;
                                }
                                c->connecting = false;
                                want(c, false);
                        } else if ((evs[k].events & EPOLLOUT) && c->busy && !conn_flush(c)) {
                                /* the server stopped reading; what it answers is still readable below */
                                want(c, false);
                        }
                        if (!(evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                                continue;
                        bool closed = false;
                        for (;;) {
                                ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
                                if (r < 0 && errno == EINTR)
                                        continue;
                                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                                        closed = true;
                                        break;
                                }
                                if (r < 0)
                                        break;
                                c->in_len += (size_t)r;
                                int p;
                                while ((p = parse(c)) == 1) {
                                        if (!c->busy) { /* an answer nobody asked for */
                                                st.errors++;
                                                continue;
                                        }
                                        count(c);
                                }
                                if (p < 0) {
                                        st.errors++;
                                        closed = true;
                                        break;
                                }
                        }
                        if (closed) {
                                conn_close(c);
                                /* the server may close a keep-alive connection; open another */
                                if (c->reconnects++ >= MAX_RECONNECTS || conn_open(c) < 0) {
                                        c->dead = true;
                                        st.errors++;
                                }
                        }
                }
        }
        for (unsigned i = 0; i < conns; i++)
                conn_close(&cs[i]); /* whatever is still in flight now is lost */

        double p50 = 0, p99 = 0;
        if (nsamples) {
                qsort(samples, nsamples, sizeof *samples, cmp_u32);
                p50 = samples[nsamples / 2] / 1000.0;
                p99 = samples[(nsamples * 99) / 100 < nsamples ? (nsamples * 99) / 100 : nsamples - 1] / 1000.0;
        }
        printf("loadgen: sent=%llu ok=%llu 503=%llu 404=%llu errors=%llu lost=%llu p50_ms=%.2f p99_ms=%.2f\n",
               (unsigned long long)st.sent, (unsigned long long)st.ok, (unsigned long long)st.s503,
               (unsigned long long)st.s404, (unsigned long long)st.errors, (unsigned long long)st.lost, p50, p99);
        return st.lost == 0 && st.errors == 0 ? 0 : 1;
usage:
        fprintf(stderr, "usage: loadgen --port PORT [--conns N<=%d] [--size SIZE] [--count N] [--duration SECONDS]\n"
                        "               [--rate N] [--keys N] [--get PCT] [--grace SECONDS] [--seed N]\n"
                        "(--count or --duration is required)\n",
                MAX_CONNS);
        return 2;
}
