/* cachesrv: a loopback HTTP/1.1 key-value cache that lives within its memory budget with libmemlimit.
 * One thread, one epoll loop: the listening socket, the clients, a signalfd and memlimit_fd(), whose
 * callbacks (memlimit_dispatch) therefore run between requests and need no locking.
 *
 *   PUT /KEY   (Content-Length body)  store the body: 201 Created (new) or 200 OK (replaced);
 *                                     503 while memlimit_shedding() (the body is read and dropped)
 *   GET /KEY                          200 with the value, or 404
 *   GET /stats                        JSON counters: entries, bytes, hits, misses, rejected_503,
 *                                     trimmed_bytes, trims, level, shedding
 * Keep-alive and pipelining; every request read gets exactly one response, in order.
 *
 * The cache is an LRU with no bound by default (--max-bytes caps it): it grows until memrun's levels,
 * or MEMLIMIT= standalone, make the library call the trimmer, which evicts from the cold end until
 * the goal is met and then malloc_trim(0)s, because 64 KiB values live inside the brk heap and freeing
 * them alone would not lower the resident set.
 *
 * usage: cachesrv [--max-bytes SIZE] [PORT]      (PORT 0 or none: ephemeral)
 * stdout: "listening on 127.0.0.1:PORT"; at SIGTERM/SIGINT a "cachesrv: ..." summary on stderr, exit 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#include "memlimit.h"

#define HDR_MAX (8u << 10)          /* request line + headers */
#define BODY_MAX (64u << 20)        /* a bigger body is refused with 413 */
#define OUT_HIGH (1u << 20)         /* stop reading a client whose responses pile up past this */
#define TRIM_RELEASE (1u << 20)     /* malloc_trim after an eviction at least this big */
#define MAX_EVENTS 64

/* ---------------------------------------------------------------- the LRU cache */

struct entry {
        struct entry *hnext;          /* hash chain */
        struct entry *prev, *next;    /* LRU list: head = most recent */
        size_t len, cost;             /* value length; malloc'd bytes charged for it */
        uint64_t hash;
        char *value;
        char key[];                   /* NUL-terminated */
};

static struct {
        struct entry **table;
        size_t nbuckets, entries, bytes, max_bytes;
        struct entry *head, *tail;
        uint64_t hits, misses, rejected_503, trimmed_bytes, trims, evicted;
} cache;

static uint64_t hash_key(const char *s, size_t n)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
        return h;
}

static void lru_unlink(struct entry *e)
{
        if (e->prev)
                e->prev->next = e->next;
        else
                cache.head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                cache.tail = e->prev;
        e->prev = e->next = NULL;
}

static void lru_push(struct entry *e)
{
        e->prev = NULL;
        e->next = cache.head;
        if (cache.head)
                cache.head->prev = e;
        cache.head = e;
        if (!cache.tail)
                cache.tail = e;
}

static struct entry **bucket(uint64_t h)
{
        return &cache.table[h & (cache.nbuckets - 1)];
}

static struct entry *cache_find(const char *key, size_t klen, uint64_t h)
{
        for (struct entry *e = *bucket(h); e; e = e->hnext)
                if (e->hash == h && strlen(e->key) == klen && memcmp(e->key, key, klen) == 0)
                        return e;
        return NULL;
}

static size_t cache_remove(struct entry *e)
{
        for (struct entry **pp = bucket(e->hash); *pp; pp = &(*pp)->hnext)
                if (*pp == e) {
                        *pp = e->hnext;
                        break;
                }
        lru_unlink(e);
        size_t cost = e->cost;
        cache.entries--;
        cache.bytes -= cost;
        free(e->value);
        free(e);
        return cost;
}

static void cache_grow_table(void)
{
        size_t n = cache.nbuckets * 2;
        struct entry **t = calloc(n, sizeof *t);
        if (!t)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < cache.nbuckets; i++)
                for (struct entry *e = cache.table[i], *next; e; e = next) {
                        next = e->hnext;
                        e->hnext = t[e->hash & (n - 1)];
                        t[e->hash & (n - 1)] = e;
                }
        free(cache.table);
        cache.table = t;
        cache.nbuckets = n;
}

/* Evict from the cold end until `goal` bytes are freed or the cache is empty; returns bytes freed. */
static size_t cache_evict(size_t goal)
{
        size_t freed = 0;
        while (freed < goal && cache.tail) {
                freed += cache_remove(cache.tail);
                cache.evicted++;
        }
        return freed;
}

/* Takes ownership of value. Returns 201 (new), 200 (replaced) or 503 (no memory for the entry). */
static int cache_put(const char *key, size_t klen, char *value, size_t len)
{
        uint64_t h = hash_key(key, klen);
        struct entry *old = cache_find(key, klen, h);
        if (old)
                cache_remove(old);
        struct entry *e = malloc(sizeof *e + klen + 1);
        if (!e) {
                free(value);
                return 503;
        }
        memcpy(e->key, key, klen);
        e->key[klen] = '\0';
        e->hash = h;
        e->value = value;
        e->len = len;
        e->cost = malloc_usable_size(e) + (value ? malloc_usable_size(value) : 0);
        e->hnext = *bucket(h);
        *bucket(h) = e;
        lru_push(e);
        cache.entries++;
        cache.bytes += e->cost;
        if (cache.entries > cache.nbuckets)
                cache_grow_table();
        if (cache.max_bytes && cache.bytes > cache.max_bytes)
                cache_evict(cache.bytes - cache.max_bytes);
        return old ? 200 : 201;
}

/* The libmemlimit cache trimmer. The goal is for the whole sandbox; with no figure (0), give back a
 * share that grows with the level. Either way at least that share, so one trim moves usage well
 * below the threshold instead of hovering on it. */
static size_t cache_trimmer(enum memlimit_level level, size_t goal, void *ctx)
{
        static const unsigned share_pct[] = { 0, 20, 35, 50 };
        (void)ctx;
        unsigned pct = (unsigned)level < sizeof share_pct / sizeof share_pct[0] ? share_pct[level] : 50;
        size_t min = cache.bytes / 100 * pct;
        size_t freed = cache_evict(goal > min ? goal : min);
        if (freed >= TRIM_RELEASE)
                malloc_trim(0);
        cache.trimmed_bytes += freed;
        cache.trims++;
        return freed;
}

/* Shedding alone would park the cache at the critical level for good (no PUT gets in, nothing gets
 * out, the level never drops): on entering it, evict as a critical trim would even when the policy
 * asks only to shed, so usage falls and the level, and the shedding, can end. */
static void on_level(enum memlimit_level level, void *ctx)
{
        (void)ctx;
        if (level == MEMLIMIT_CRITICAL)
                (void)cache_trimmer(level, 0, NULL);
}

/* ---------------------------------------------------------------- connections */

enum conn_state { READ_HEAD, READ_BODY, DISCARD_BODY };

struct conn {
        int fd;
        bool close_after, peer_closed;
        enum conn_state state;
        char head[HDR_MAX];
        size_t head_len;
        /* the request being read */
        bool keep_alive;
        char key[256];
        size_t klen;
        char *body;
        size_t body_len, body_got;
        /* responses not yet sent */
        char *out;
        size_t out_len, out_off, out_cap;
};

static int epfd;
static const char *level_names[] = { "normal", "moderate", "high", "critical" };

static void set_events(struct conn *c)
{
        struct epoll_event ev = { .events = 0, .data.ptr = c };
        if (!c->peer_closed && !c->close_after && c->out_len - c->out_off < OUT_HIGH)
                ev.events |= EPOLLIN | EPOLLRDHUP;
        if (c->out_len > c->out_off)
                ev.events |= EPOLLOUT;
        (void)epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_free(struct conn *c)
{
        (void)epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c->body);
        free(c->out);
        free(c);
}

/* Append to the output; false when out of memory (the caller closes the connection). */
static bool out_append(struct conn *c, const void *p, size_t n)
{
        if (c->out_off && c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + n > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : 4096;
                while (cap < c->out_len + n)
                        cap *= 2;
                char *q = realloc(c->out, cap);
                if (!q)
                        return false;
                c->out = q;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, p, n);
        c->out_len += n;
        return true;
}

static const char *reason(int status)
{
        switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 503: return "Service Unavailable";
        default: return "Error";
        }
}

static bool respond(struct conn *c, int status, const char *body, size_t len, const char *ctype)
{
        char h[256];
        int n = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s\r\n", status,
                         reason(status), len, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                         ctype ? "\r\n" : "", status == 503 ? "Retry-After: 1\r\n" : "");
        if (n < 0 || (size_t)n >= sizeof h)
                return false;
        if (!c->keep_alive) {
                /* insert before the blank line */
                memcpy(h + n - 2, "Connection: close\r\n\r\n", 22);
                n += 19;
                c->close_after = true;
        }
        return out_append(c, h, (size_t)n) && (len == 0 || out_append(c, body, len));
}

static bool respond_stats(struct conn *c)
{
        char b[512];
        int n = snprintf(b, sizeof b,
                         "{\"entries\":%zu,\"bytes\":%zu,\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
                         ",\"rejected_503\":%" PRIu64 ",\"trimmed_bytes\":%" PRIu64 ",\"trims\":%" PRIu64
                         ",\"evicted\":%" PRIu64 ",\"level\":\"%s\",\"shedding\":%s}\n",
                         cache.entries, cache.bytes, cache.hits, cache.misses, cache.rejected_503,
                         cache.trimmed_bytes, cache.trims, cache.evicted, level_names[memlimit_level() & 3],
                         memlimit_shedding() ? "true" : "false");
        return respond(c, 200, b, (size_t)n, "application/json");
}

/* A complete PUT body: store it. */
static bool finish_put(struct conn *c)
{
        int status = cache_put(c->key, c->klen, c->body, c->body_len);
        c->body = NULL;
        if (status == 503)
                cache.rejected_503++;
        c->state = READ_HEAD;
        return respond(c, status, NULL, 0, NULL);
}

/* Parse one request head ending at `end` (exclusive of the blank line). Returns false to close. */
static bool handle_head(struct conn *c, char *head)
{
        char *line_end = strstr(head, "\r\n");
        char method[8], target[300], version[16];
        size_t clen = 0;
        bool has_clen = false;

        *line_end = '\0';
        if (sscanf(head, "%7s %299s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0) {
                c->keep_alive = false;
                return respond(c, 400, NULL, 0, NULL);
        }
        c->keep_alive = strcmp(version, "HTTP/1.0") != 0;
        for (char *h = line_end + 2; *h;) {
                char *e = strstr(h, "\r\n");
                if (e)
                        *e = '\0';
                if (strncasecmp(h, "Content-Length:", 15) == 0) {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(h + 15, &end, 10);
                        while (*end == ' ' || *end == '\t')
                                end++;
                        if (errno || *end || v > SIZE_MAX) {
                                c->keep_alive = false;
                                return respond(c, 400, NULL, 0, NULL);
                        }
                        clen = (size_t)v;
                        has_clen = true;
                } else if (strncasecmp(h, "Connection:", 11) == 0) {
                        if (strcasestr(h + 11, "close"))
                                c->keep_alive = false;
                        else if (strcasestr(h + 11, "keep-alive"))
                                c->keep_alive = true;
                } else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0) {
                        c->keep_alive = false; /* no chunked bodies here: we could not find the next request */
                        return respond(c, 400, NULL, 0, NULL);
                }
                if (!e)
                        break;
                h = e + 2;
        }
        size_t tlen = strlen(target);
        if (target[0] != '/' || tlen < 2 || tlen - 1 >= sizeof c->key) {
                if (has_clen && clen) {
                        c->state = DISCARD_BODY;
                        c->body_len = clen;
                        c->body_got = 0;
                }
                return respond(c, strcmp(target, "/") == 0 ? 404 : 400, NULL, 0, NULL);
        }
        memcpy(c->key, target + 1, tlen - 1);
        c->klen = tlen - 1;

        if (strcmp(method, "GET") == 0) {
                if (has_clen && clen) { /* a GET with a body: drop it, keep the stream in step */
                        c->state = DISCARD_BODY;
                        c->body_len = clen;
                        c->body_got = 0;
                }
                if (strcmp(target, "/stats") == 0)
                        return respond_stats(c);
                struct entry *e = cache_find(c->key, c->klen, hash_key(c->key, c->klen));
                if (!e) {
                        cache.misses++;
                        return respond(c, 404, NULL, 0, NULL);
                }
                cache.hits++;
                lru_unlink(e);
                lru_push(e);
                return respond(c, 200, e->value, e->len, "application/octet-stream");
        }
        if (strcmp(method, "PUT") == 0) {
                if (!has_clen) {
                        c->keep_alive = false;
                        return respond(c, 400, NULL, 0, NULL);
                }
                c->body_len = clen;
                c->body_got = 0;
                if (clen > BODY_MAX || memlimit_shedding() || !(c->body = malloc(clen ? clen : 1))) {
                        int status = clen > BODY_MAX ? 413 : 503;
                        if (status == 503)
                                cache.rejected_503++;
                        c->state = DISCARD_BODY;
                        return respond(c, status, NULL, 0, NULL);
                }
                c->state = READ_BODY;
                if (clen == 0)
                        return finish_put(c);
                return true;
        }
        c->state = has_clen && clen ? DISCARD_BODY : READ_HEAD;
        c->body_len = clen;
        c->body_got = 0;
        return respond(c, 405, NULL, 0, NULL);
}

/* Consume what is buffered in head[]: request heads, and body bytes that arrived with them. */
static bool process(struct conn *c)
{
        for (;;) {
                if (c->state != READ_HEAD) {
                        size_t want = c->body_len - c->body_got, n = c->head_len < want ? c->head_len : want;
                        if (c->state == READ_BODY)
                                memcpy(c->body + c->body_got, c->head, n);
                        c->body_got += n;
                        memmove(c->head, c->head + n, c->head_len - n);
                        c->head_len -= n;
                        if (c->body_got < c->body_len)
                                return true;
                        if (c->state == READ_BODY) {
                                if (!finish_put(c))
                                        return false;
                        } else
                                c->state = READ_HEAD;
                        continue;
                }
                if (c->close_after)
                        return true;
                char *end = c->head_len >= 4 ? memmem(c->head, c->head_len, "\r\n\r\n", 4) : NULL;
                if (!end) {
                        if (c->head_len == sizeof c->head) {
                                c->keep_alive = false;
                                c->head_len = 0;
                                return respond(c, 400, NULL, 0, NULL);
                        }
                        return true;
                }
                size_t used = (size_t)(end - c->head) + 4;
                end[2] = '\0'; /* keep the last header's \r\n for the line splitter */
                if (!handle_head(c, c->head))
                        return false;
                memmove(c->head, c->head + used, c->head_len - used);
                c->head_len -= used;
        }
}

/* Read what the socket has. A pending body is read straight into its buffer, not through head[]. */
static bool conn_read(struct conn *c)
{
        for (;;) {
                if (c->close_after)
                        return true; /* nothing after a "Connection: close" request is read */
                bool direct = c->state == READ_BODY && c->head_len == 0;
                ssize_t n;
                if (direct)
                        n = recv(c->fd, c->body + c->body_got, c->body_len - c->body_got, 0);
                else if (c->head_len < sizeof c->head)
                        n = recv(c->fd, c->head + c->head_len, sizeof c->head - c->head_len, 0);
                else
                        return process(c);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK;
                if (n == 0) {
                        c->peer_closed = true;
                        return true;
                }
                if (direct) {
                        c->body_got += (size_t)n;
                        if (c->body_got == c->body_len && !finish_put(c))
                                return false;
                } else
                        c->head_len += (size_t)n;
                if (!process(c))
                        return false;
                if (c->out_len - c->out_off >= OUT_HIGH)
                        return true;
        }
}

static bool conn_write(struct conn *c)
{
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK;
                c->out_off += (size_t)n;
        }
        return true;
}

/* ---------------------------------------------------------------- main loop */

static unsigned long long size_arg(const char *s)
{
        return example_size_arg("cachesrv", s);
}

static void accept_all(int lfd)
{
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        return; /* EAGAIN, or EMFILE/ENOMEM: the client waits in the backlog */
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct conn *c = calloc(1, sizeof *c);
                struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
                if (!c || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        free(c);
                        close(fd); /* nothing was read from it: no request lost */
                        continue;
                }
                c->fd = fd;
        }
}

int main(int argc, char **argv)
{
        unsigned long port = 0;
        static char lmarker, smarker; /* epoll tags for the listener and the signalfd */

        for (int i = 1; i < argc; i++) {
                if (i + 1 < argc && strcmp(argv[i], "--max-bytes") == 0)
                        cache.max_bytes = (size_t)size_arg(argv[++i]);
                else if (argv[i][0] != '-' && i == argc - 1) {
                        port = (unsigned long)size_arg(argv[i]);
                        if (port > 65535)
                                goto usage;
                } else
                        goto usage;
        }
        cache.nbuckets = 1024;
        cache.table = calloc(cache.nbuckets, sizeof *cache.table);
        if (!cache.table)
                return 1;

        int r = memlimit_init(0);
        if (r < 0)
                fprintf(stderr, "cachesrv: no limiter (%s): running without levels\n", strerror(-r));
        else if (fprintf(stderr, "cachesrv: limiter: %s\n",
                         memlimit_mode() == MEMLIMIT_MODE_MEMRUN       ? "memrun"
                         : memlimit_mode() == MEMLIMIT_MODE_STANDALONE ? "standalone (MEMLIMIT)"
                                                                       : "none (no memrun, no MEMLIMIT)") < 0 ||
                 (r = memlimit_register_cache("lru", cache_trimmer, NULL)) < 0 ||
                 (r = memlimit_on_level(on_level, NULL)) < 0)
                fprintf(stderr, "cachesrv: memlimit registration: %s\n", strerror(-r));

        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof a;
        (void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 512) < 0 ||
            getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
                fprintf(stderr, "cachesrv: listen on 127.0.0.1:%lu: %s\n", port, strerror(errno));
                return 1;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lmarker };
        if (sfd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
                fprintf(stderr, "cachesrv: %s\n", strerror(errno));
                return 1;
        }
        ev.data.ptr = &smarker;
        (void)epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

        /* The limiter's fd carries data.ptr NULL. Re-checked each round: the library may replace it. */
        int mlfd = -1;
        printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(a.sin_port));
        fflush(stdout);

        for (;;) {
                int f = memlimit_fd();
                if (f != mlfd) {
                        if (mlfd >= 0)
                                (void)epoll_ctl(epfd, EPOLL_CTL_DEL, mlfd, NULL);
                        ev.events = EPOLLIN;
                        ev.data.ptr = NULL;
                        mlfd = f >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, f, &ev) == 0 ? f : -1;
                }
                struct epoll_event evs[MAX_EVENTS];
                int n = epoll_wait(epfd, evs, MAX_EVENTS, 1000);
                if (n < 0 && errno != EINTR) {
                        fprintf(stderr, "cachesrv: epoll_wait: %s\n", strerror(errno));
                        return 1;
                }
                /* Pressure first: a trim or the shedding flag should apply to this round's requests. */
                for (int i = 0; i < n; i++)
                        if (evs[i].data.ptr == NULL)
                                (void)memlimit_dispatch();
                for (int i = 0; i < n; i++) {
                        void *p = evs[i].data.ptr;
                        if (p == NULL)
                                continue;
                        if (p == &lmarker) {
                                accept_all(lfd);
                                continue;
                        }
                        if (p == &smarker) {
                                fprintf(stderr,
                                        "cachesrv: entries=%zu bytes=%zu hits=%" PRIu64 " misses=%" PRIu64
                                        " rejected_503=%" PRIu64 " trimmed_bytes=%" PRIu64 " trims=%" PRIu64 "\n",
                                        cache.entries, cache.bytes, cache.hits, cache.misses, cache.rejected_503,
                                        cache.trimmed_bytes, cache.trims);
                                memlimit_shutdown();
                                return 0;
                        }
                        struct conn *c = p;
                        bool ok = true;
                        if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                                ok = conn_read(c);
                        if (ok)
                                ok = conn_write(c);
                        if (!ok || (evs[i].events & EPOLLERR) ||
                            ((c->peer_closed || c->close_after) && c->out_off == c->out_len)) {
                                conn_free(c);
                                continue;
                        }
                        set_events(c);
                }
        }
usage:
        fprintf(stderr, "usage: cachesrv [--max-bytes SIZE] [PORT]\n");
        return 2;
}
