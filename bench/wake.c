/* wake: the floor of any sampler that wakes every 100 ms -- a periodic timerfd, epoll_wait, and one
 * pread of a file (the sandbox's usage file), nothing else. bench/idle.sh runs it beside memrun so
 * memrun's idle cost on cgroup v2 (where it samples every 100 ms) has its baseline in the same run.
 * usage: wake FILE SECONDS */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: wake FILE SECONDS\n");
                return 2;
        }
        long n = strtol(argv[2], NULL, 10) * 10;
        int t = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        int ep = epoll_create1(EPOLL_CLOEXEC);
        int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
        struct itimerspec its = { { 0, 100000000 }, { 0, 100000000 } };
        struct epoll_event ev = { .events = EPOLLIN };
        if (t < 0 || ep < 0 || fd < 0 || timerfd_settime(t, 0, &its, NULL) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev) < 0) {
                perror("wake");
                return 1;
        }
        char buf[64];
        for (long i = 0; i < n; i++) {
                struct epoll_event e;
                uint64_t x;
                if (epoll_wait(ep, &e, 1, -1) < 0 || read(t, &x, sizeof x) < 0 || pread(fd, buf, sizeof buf, 0) < 0) {
                        perror("wake");
                        return 1;
                }
        }
        return 0;
}
