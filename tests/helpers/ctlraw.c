/* ctlraw: send raw bytes to a memrun's control socket (@memrun-ctl-PID) and print the reply, for
 * the tests that feed it garbage. Usage: ctlraw PID TEXT */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        if (argc != 3)
                return 2;
        char name[64];
        int n = snprintf(name, sizeof name, "memrun-ctl-%s", argv[1]);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        memcpy(a.sun_path + 1, name, (size_t)n);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) < 0) {
                perror("ctlraw: connect");
                return 1;
        }
        (void)send(fd, argv[2], strlen(argv[2]), MSG_NOSIGNAL);
        char buf[4096];
        ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
        if (k > 0) {
                buf[k] = '\0';
                fputs(buf, stdout);
        }
        close(fd);
        return 0;
}
