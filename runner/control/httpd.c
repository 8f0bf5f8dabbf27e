/* httpd: --metrics-listen's HTTP server (httpd.h): the address, the listening socket, and
 * libmicrohttpd driven from memrun's event loop. */
#include "control/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---------------------------------------------------------------- the address */

static int port_parse(const char *s, uint16_t *ret)
{
        size_t n = strlen(s);
        if (n == 0)
                return -ENODATA;
        if (strspn(s, "0123456789") != n)
                return -EINVAL;
        uint64_t v;
        if (parse_u64(s, &v) < 0 || v == 0 || v > 65535)
                return -ERANGE;
        *ret = (uint16_t)v;
        return 0;
}

int httpd_addr_parse(const char *text, struct httpd_addr *ret)
{
        char host[INET6_ADDRSTRLEN + 2];
        const char *port;
        bool v6 = false;

        if (text[0] == '[') {
                const char *end = strchr(text, ']');
                if (!end)
                        return -EADDRNOTAVAIL;
                if (end[1] != ':')
                        return end[1] ? -EINVAL : -ENODATA;
                if ((size_t)(end - text - 1) >= sizeof host)
                        return -EADDRNOTAVAIL;
                snprintf(host, sizeof host, "%.*s", (int)(end - text - 1), text + 1);
                port = end + 2;
                v6 = true;
        } else {
                const char *colon = strrchr(text, ':');
                if (!colon) {
                        if (strchr(text, '.'))
                                return -ENODATA; /* an address alone */
                        port = text; /* PORT */
                        host[0] = '\0';
                } else {
                        if (memchr(text, ':', (size_t)(colon - text)))
                                return -EADDRNOTAVAIL; /* an IPv6 address without its brackets */
                        if ((size_t)(colon - text) >= sizeof host)
                                return -EADDRNOTAVAIL;
                        snprintf(host, sizeof host, "%.*s", (int)(colon - text), text);
                        port = colon + 1;
                }
        }
        uint16_t p;
        int r = port_parse(port, &p);
        if (r < 0)
                return r;

        struct httpd_addr a;
        memset(&a, 0, sizeof a);
        char shown[INET6_ADDRSTRLEN];
        if (v6) {
                struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&a.ss;
                if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
                        return -EADDRNOTAVAIL;
                sa->sin6_family = AF_INET6;
                sa->sin6_port = htons(p);
                a.len = sizeof *sa;
                inet_ntop(AF_INET6, &sa->sin6_addr, shown, sizeof shown);
                snprintf(a.text, sizeof a.text, "[%s]:%u", shown, (unsigned)p);
        } else {
                struct sockaddr_in *sa = (struct sockaddr_in *)&a.ss;
                /* loopback unless an address is named: serving beyond the host is asked for, never assumed */
                if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &sa->sin_addr) != 1)
                        return -EADDRNOTAVAIL;
                sa->sin_family = AF_INET;
                sa->sin_port = htons(p);
                a.len = sizeof *sa;
                inet_ntop(AF_INET, &sa->sin_addr, shown, sizeof shown);
                snprintf(a.text, sizeof a.text, "%s:%u", shown, (unsigned)p);
        }
        *ret = a;
        return 0;
}

/* ---------------------------------------------------------------- answers */

static const char CONTENT_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode, const char *type)
{
        struct MHD_Response *rsp = MHD_create_response_from_buffer(len, (void *)body, mode);
        if (!rsp)
                return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
        enum MHD_Result r = MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        if (r == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED)
                r = MHD_add_response_header(rsp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        if (r == MHD_YES)
                r = MHD_queue_response(c, status, rsp);
        MHD_destroy_response(rsp);
        return r;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
        return reply(c, status, text, strlen(text), MHD_RESPMEM_PERSISTENT, "text/plain; charset=utf-8");
}

/* Every request is answered on its first call, from its headers: a body (which no valid request
 * has) is never read, and no state is kept between calls. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
        struct httpd *h = cls;
        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        (void)req_cls;
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "memrun serves GET and HEAD /metrics\n");
        if (strcmp(url, "/metrics") != 0)
                return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: memrun serves /metrics\n");
        /* Rendered now, so a scrape sees the sandbox as it is; HEAD renders too, for Content-Length
         * (libmicrohttpd sends no body). The response is copied: a slow reader of this one must not
         * see the next one's bytes. */
        char page[HTTPD_PAGE_MAX];
        int n = h->render(h->ctx, page, sizeof page);
        if (n < 0) {
                log_debug_errno(n, "--metrics-listen: cannot render the page: %m");
                return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "memrun cannot render its metrics\n");
        }
        return reply(c, MHD_HTTP_OK, page, (size_t)n, MHD_RESPMEM_MUST_COPY, CONTENT_TYPE);
}

/* libmicrohttpd's own complaints (a client that sent garbage, a failed accept): debug level, as
 * the rest of memrun's library-side code. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char buf[256];
        (void)cls;
        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        log_debug("libmicrohttpd: %s", buf);
}

/* ---------------------------------------------------------------- the server */

static int listen_on(const struct httpd_addr *a)
{
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* a restarted memrun rebinds at once (connections of the last one in TIME_WAIT); a socket
         * that listens there still refuses it (EADDRINUSE) */
        int on = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 16) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int httpd_open(struct httpd *h, const struct httpd_addr *a, httpd_render render, void *ctx)
{
        if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES)
                return -ENOTSUP;
        /* Our own socket, so a bind error is the kernel's errno, not a NULL from MHD_start_daemon. */
        int fd = listen_on(a);
        if (fd < 0)
                return fd;
        h->render = render;
        h->ctx = ctx;
        /* MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD: no thread; we poll its epoll fd. */
        h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
                                MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTPD_CONNECTIONS,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTPD_TIMEOUT_SEC,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_END);
        if (!h->d) {
                /* On some of its failure paths libmicrohttpd has closed the socket already, on others
                 * not; nothing else opens an fd in between (memrun is single-threaded here). */
                if (fcntl(fd, F_GETFD) >= 0)
                        close(fd);
                return -ENOMEM;
        }
        return 0;
}

int httpd_fd(const struct httpd *h)
{
        if (!h->d)
                return -1;
        const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
        return i ? i->epoll_fd : -1;
}

static unsigned connections(struct MHD_Daemon *d)
{
        const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        return i ? i->num_connections : 0;
}

usec_t httpd_run(struct httpd *h)
{
        if (!h->d)
                return USEC_INFINITY;
        /* At its connection limit libmicrohttpd takes the listening socket out of its epoll set, and
         * puts it back only at the start of a later MHD_run: when connections closed during this
         * one, nothing would wake us for that (a client waiting in the backlog would wait forever).
         * So run again while connections go; each round closes one at least, HTTPD_CONNECTIONS at
         * most. */
        unsigned before, after = connections(h->d);
        do {
                before = after;
                (void)MHD_run(h->d);
                after = connections(h->d);
        } while (after < before);
        MHD_UNSIGNED_LONG_LONG ms;
        if (MHD_get_timeout(h->d, &ms) != MHD_YES)
                return USEC_INFINITY;
        return ms > (USEC_INFINITY - 1) / USEC_PER_MSEC ? USEC_INFINITY - 1 : (usec_t)ms * USEC_PER_MSEC;
}

void httpd_close(struct httpd *h)
{
        if (h->d)
                MHD_stop_daemon(h->d);
        h->d = NULL;
}
