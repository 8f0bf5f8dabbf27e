/* memlimit_client: this process's connection to memrun (memlimit_proto.h): connect and HELLO, RESULTs
 * and BYE, never blocking on memrun. Called with memlimit__g.lock held. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "memlimit_int.h"

int memlimit__connect(const char *endpoint, bool forked, unsigned flags)
{
        struct ml_state *g = &memlimit__g;
        struct sockaddr_un addr;
        socklen_t alen;
        struct memlimit_msg m;
        int r, fd;

        r = memlimit_endpoint_addr(endpoint, &addr, &alen);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A unix connect completes at once or fails; it waits only while memrun's backlog is full. */
        do
                r = connect(fd, (struct sockaddr *)&addr, alen);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
                r = -errno;
                goto fail;
        }
        memlimit_msg_init(&m, MEMLIMIT_MSG_HELLO);
        m.flags = (forked ? MEMLIMIT_HELLO_FORKED : 0) | (flags & MEMLIMIT_F_PRELOAD ? MEMLIMIT_HELLO_PRELOAD : 0);
        m.u.hello.pid = (uint32_t)getpid();
        m.u.hello.caps = MEMLIMIT_ACT_SHED |
                         (atomic_load(&g->n_caches) ? MEMLIMIT_ACT_TRIM : 0) |
                         (atomic_load(&g->n_collectors) || !(flags & MEMLIMIT_F_NO_MALLOC_TRIM) ? MEMLIMIT_ACT_COLLECT : 0);
        (void)prctl(PR_GET_NAME, m.u.hello.comm, 0, 0, 0);
        m.u.hello.comm[sizeof m.u.hello.comm - 1] = '\0';
        r = memlimit_msg_send(fd, &m);
        if (r < 0)
                goto fail;
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        g->sockfd = fd;
        memlimit__debug("attached to memrun at %s%s", endpoint, forked ? " (forked)" : "");
        return 0;
fail:
        memlimit__debug("cannot attach to memrun at %s: %s", endpoint, strerror(-r));
        close(fd);
        return r;
}

void memlimit__send_result(uint32_t seq, const struct ml_result *r)
{
        struct ml_state *g = &memlimit__g;
        struct memlimit_msg m;

        if (g->sockfd < 0)
                return;
        memlimit_msg_init(&m, MEMLIMIT_MSG_RESULT);
        m.seq = seq;
        m.flags = r->flags;
        m.u.result.action = r->action;
        m.u.result.callbacks = r->callbacks;
        m.u.result.freed = r->freed;
        m.u.result.usec = r->usec;
        /* Full socket: memrun is not reading; the protocol lets a RESULT be dropped. */
        int e = memlimit_msg_send(g->sockfd, &m);
        if (e < 0)
                memlimit__debug("RESULT for seq %u not sent: %s", seq, strerror(-e));
}

void memlimit__send_bye(void)
{
        struct ml_state *g = &memlimit__g;
        struct memlimit_msg m;

        if (g->sockfd < 0)
                return;
        memlimit_msg_init(&m, MEMLIMIT_MSG_BYE);
        m.u.bye.reason = MEMLIMIT_BYE_NORMAL;
        (void)memlimit_msg_send(g->sockfd, &m);
}
