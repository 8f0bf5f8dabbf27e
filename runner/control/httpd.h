/* httpd: --metrics-listen, memrun's Prometheus exposition served over HTTP by libmicrohttpd:
 * GET and HEAD /metrics (text/plain; version=0.0.4), 404 for any other path, 405 for any other
 * method. libmicrohttpd runs without a thread of its own: its epoll fd is one source of memrun's
 * event loop and httpd_run() does what is ready, never blocking, so the page is rendered on request
 * in the loop's thread and nothing needs a lock. A slow or stalled client holds one of
 * HTTPD_CONNECTIONS slots until HTTPD_TIMEOUT_SEC pass without progress, never the loop.
 * The address is parsed here too (pure), so options.c refuses a bad one before anything is made. */
#pragma once
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

#define HTTPD_CONNECTIONS 8
#define HTTPD_TIMEOUT_SEC 10
#define HTTPD_PAGE_MAX 8192 /* the exposition's size bound, as ctl_write_metrics's */

struct httpd_addr {
        struct sockaddr_storage ss;
        socklen_t len;                   /* 0: none given */
        char text[INET6_ADDRSTRLEN + 8]; /* "127.0.0.1:9464", "[::1]:9464": for messages and the URL */
};

/* Pure: "ADDR:PORT", "[IPV6]:PORT", ":PORT" or "PORT" (the last two: 127.0.0.1). ADDR is numeric.
 * 0; -ENODATA no port; -EINVAL not one of those forms; -ERANGE a port outside 1..65535;
 * -EADDRNOTAVAIL an address that is not a numeric IPv4 or bracketed IPv6 one. */
int httpd_addr_parse(const char *text, struct httpd_addr *ret);

/* The page: its length in buf, or -errno (answered 500). Called once per GET or HEAD /metrics. */
typedef int (*httpd_render)(void *ctx, char *buf, size_t size);

struct MHD_Daemon;
struct httpd {
        struct MHD_Daemon *d; /* NULL: not serving (a zeroed struct is closed) */
        httpd_render render;
        void *ctx;
};

/* Bind and listen on a (SO_REUSEADDR, close-on-exec) and start serving. 0 or -errno: -EADDRINUSE,
 * -EACCES ... from bind, -ENOTSUP when libmicrohttpd lacks epoll, -ENOMEM when it fails otherwise. */
int httpd_open(struct httpd *h, const struct httpd_addr *a, httpd_render render, void *ctx);
/* The fd to watch for EPOLLIN (libmicrohttpd's epoll set); -1 when not serving. */
int httpd_fd(const struct httpd *h);
/* Accept, read, answer what is ready; never blocks. How soon it must run again even when nothing is
 * ready (a connection's timeout, input already read): 0 at once, USEC_INFINITY no deadline. */
usec_t httpd_run(struct httpd *h);
/* Close every connection and the listening socket. Safe on a closed or zeroed struct. */
void httpd_close(struct httpd *h);
