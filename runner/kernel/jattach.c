/* jattach: HotSpot's dynamic attach mechanism (jattach.h). */
#include "kernel/jattach.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int socket_path(pid_t pid, pid_t nspid, char *buf, size_t size)
{
        /* java.io.tmpdir is /tmp on Linux unless the program changed it; the JVM's /tmp, seen from here */
        int n = snprintf(buf, size, "/proc/%d/root/tmp/.java_pid%d", (int)pid, (int)nspid);
        return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

bool jattach_listening(pid_t pid, pid_t nspid)
{
        char path[108];
        struct stat st;
        return socket_path(pid, nspid, path, sizeof path) == 0 && stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The trigger file, owned by whoever runs this (the JVM's uid): its working directory first, as
 * the JDK does, /tmp where that is not writable or changes the owner (some mounts do). */
static int make_trigger(pid_t pid, pid_t nspid, char *path, size_t size)
{
        const char *const where[] = { "cwd", "root/tmp" };
        for (size_t i = 0; i < 2; i++) {
                snprintf(path, size, "/proc/%d/%s/.attach_pid%d", (int)pid, where[i], (int)nspid);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
                if (fd < 0 && errno == EEXIST)
                        fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        continue;
                struct stat st;
                bool ours = fstat(fd, &st) == 0 && st.st_uid == geteuid();
                close(fd);
                if (ours)
                        return 0;
                (void)unlink(path);
        }
        return -EACCES;
}

int jattach_start(pid_t pid, pid_t nspid, int wait_ms)
{
        char trigger[128];
        int r = make_trigger(pid, nspid, trigger, sizeof trigger);
        if (r < 0)
                return r;
        if (kill(pid, SIGQUIT) < 0) {
                r = -errno;
                (void)unlink(trigger);
                return r;
        }
        r = -ETIMEDOUT;
        /* 10 ms, then 20, 30 ... as jattach does: the listener usually comes within 100 ms */
        for (long step = 10, waited = 0; waited < wait_ms; waited += step, step += 10) {
                struct timespec ts = { 0, step * 1000000L };
                nanosleep(&ts, NULL);
                if (jattach_listening(pid, nspid)) {
                        r = 0;
                        break;
                }
        }
        (void)unlink(trigger);
        return r;
}

int jattach_request(const char *command, char *buf, size_t size)
{
        /* "1" NUL "jcmd" NUL COMMAND NUL NUL NUL: version, operation, three arguments */
        static const char head[] = "1\0jcmd";
        size_t cl = strlen(command), n = sizeof head + cl + 3;
        if (n > size || cl == 0)
                return -ENAMETOOLONG;
        memcpy(buf, head, sizeof head);
        memcpy(buf + sizeof head, command, cl);
        memset(buf + sizeof head + cl, 0, 3);
        return (int)n;
}

int jattach_result(const char *answer, int *ret_code)
{
        char *end;
        errno = 0;
        long v = strtol(answer, &end, 10);
        if (end == answer || errno || (*end != '\n' && *end != '\0') || v < -1000000 || v > 1000000)
                return -EBADMSG;
        *ret_code = (int)v;
        return 0;
}

int jattach_jcmd(pid_t pid, pid_t nspid, const char *command, int *ret_code, char *out, size_t size)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char req[512];
        int n = jattach_request(command, req, sizeof req);
        if (n < 0)
                return n;
        if (socket_path(pid, nspid, sa.sun_path, sizeof sa.sun_path) < 0)
                return -ENAMETOOLONG;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = 0;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                r = -errno;
                goto out;
        }
        for (int off = 0; off < n;) {
                ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        r = w < 0 ? -errno : -EPIPE;
                        goto out;
                }
                off += (int)w;
        }
        size_t len = 0;
        for (;;) {
                char sink[4096];
                char *to = len + 1 < size ? out + len : sink;
                size_t room = len + 1 < size ? size - 1 - len : sizeof sink;
                ssize_t got = read(fd, to, room);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0) {
                        r = -errno;
                        goto out;
                }
                if (got == 0)
                        break;
                if (to != sink)
                        len += (size_t)got;
        }
        if (size)
                out[len < size ? len : size - 1] = '\0';
        r = size ? jattach_result(out, ret_code) : -EBADMSG;
out:
        close(fd);
        return r;
}
