/* loop: the event core. One epoll set; each module registers its own fds (timers are timerfds) with
 * a handler and its userdata, and the loop only dispatches. A feature lands as a module that adds its
 * source here, never as another callback threaded through main (systemd-oomd's Manager and its
 * sd-event handlers). Fixed-size: nothing is allocated while the sandbox is under pressure. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define LOOP_MAX_SOURCES 32

struct loop;
typedef void (*loop_handler)(struct loop *l, int fd, uint32_t events, void *userdata);

struct loop_source {
        int fd;                   /* -1: free slot */
        loop_handler fn;
        void *userdata;
        const char *name;         /* for the debug log */
        bool owned;               /* a timer the loop made: closed by loop_close */
};

struct loop {
        int ep;
        struct loop_source src[LOOP_MAX_SOURCES];
};

/* 0 or -errno. loop_close() is safe after a failed or no open (ep = -1). */
int loop_open(struct loop *l);
/* Watch fd for events (EPOLLIN, EPOLLPRI ...); fn(l, fd, events, userdata) when ready. The source's
 * id (>= 0), or -errno (-ENOSPC: no free slot). */
int loop_add(struct loop *l, int fd, uint32_t events, loop_handler fn, void *userdata, const char *name);
/* Stop watching fd (the caller closes it). */
void loop_remove(struct loop *l, int fd);
/* Watch one more fd under source id (loop_add's): its handler runs with this fd. For a module's
 * per-client fds that cannot sit in an epoll set of the module's own nested in this one: a PSI
 * trigger's poll consumes its event, so the outer set's readiness check would eat it. 0 or -errno. */
int loop_add_member(struct loop *l, int id, int fd, uint32_t events);
void loop_remove_member(struct loop *l, int fd);
/* A periodic CLOCK_MONOTONIC timerfd, registered with fn; its fd, or -errno. The handler reads it
 * (loop_timer_ack). */
int loop_add_timer(struct loop *l, loop_handler fn, void *userdata, const char *name);
/* (Re)arm a timer: every period (0: disarm). 0 or -errno. */
int loop_timer_set(int tfd, usec_t period);
/* Expirations since the last read (0 when none). */
uint64_t loop_timer_ack(int tfd);
/* Wait at most timeout (USEC_INFINITY: until something is ready) and run the handlers of what is
 * ready. How many ran, 0 on EINTR or timeout, -errno when epoll fails. */
int loop_dispatch(struct loop *l, usec_t timeout);
/* Close the epoll set and every timer it made; other fds stay their owners'. */
void loop_close(struct loop *l);
