/* loop: the event core (loop.h). */
#include "supervise/loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util.h"

int loop_open(struct loop *l)
{
        for (unsigned i = 0; i < LOOP_MAX_SOURCES; i++)
                l->src[i] = (struct loop_source){ .fd = -1 };
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        return l->ep < 0 ? -errno : 0;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_handler fn, void *userdata, const char *name)
{
        unsigned i = 0;
        while (i < LOOP_MAX_SOURCES && l->src[i].fd >= 0)
                i++;
        if (i == LOOP_MAX_SOURCES)
                return -ENOSPC;
        struct epoll_event ev = { .events = events, .data.u64 = i };
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        l->src[i] = (struct loop_source){ .fd = fd, .fn = fn, .userdata = userdata, .name = name };
        return (int)i;
}

void loop_remove(struct loop *l, int fd)
{
        for (unsigned i = 0; fd >= 0 && i < LOOP_MAX_SOURCES; i++)
                if (l->src[i].fd == fd) {
                        (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
                        l->src[i].fd = -1;
                }
}

int loop_add_member(struct loop *l, int id, int fd, uint32_t events)
{
        if (id < 0 || id >= LOOP_MAX_SOURCES || l->src[id].fd < 0 || fd < 0)
                return -EINVAL;
        struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)id | ((uint64_t)fd + 1) << 32 };
        return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void loop_remove_member(struct loop *l, int fd)
{
        if (l->ep >= 0 && fd >= 0)
                (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
}

int loop_add_timer(struct loop *l, loop_handler fn, void *userdata, const char *name)
{
        int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (fd < 0)
                return -errno;
        int r = loop_add(l, fd, EPOLLIN, fn, userdata, name);
        if (r < 0) {
                close(fd);
                return r;
        }
        l->src[r].owned = true;
        return fd;
}

int loop_timer_set(int tfd, usec_t period)
{
        struct timespec ts = usec_to_timespec(period);
        struct itimerspec its = { .it_interval = ts, .it_value = ts };
        return timerfd_settime(tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

uint64_t loop_timer_ack(int tfd)
{
        uint64_t n = 0;
        return read(tfd, &n, sizeof n) == (ssize_t)sizeof n ? n : 0;
}

int loop_dispatch(struct loop *l, usec_t timeout)
{
        struct epoll_event evs[8];
        int n = epoll_wait(l->ep, evs, 8, usec_to_poll_ms(timeout));
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                uint32_t id = (uint32_t)evs[i].data.u64, member = (uint32_t)(evs[i].data.u64 >> 32);
                /* a handler earlier in this batch may have removed this source */
                if (id >= LOOP_MAX_SOURCES || l->src[id].fd < 0)
                        continue;
                struct loop_source *s = &l->src[id];
                s->fn(l, member ? (int)(member - 1) : s->fd, evs[i].events, s->userdata);
        }
        return n;
}

void loop_close(struct loop *l)
{
        for (unsigned i = 0; l->ep >= 0 && i < LOOP_MAX_SOURCES; i++)
                if (l->src[i].fd >= 0 && l->src[i].owned)
                        close_fd(&l->src[i].fd);
        close_fd(&l->ep);
}
