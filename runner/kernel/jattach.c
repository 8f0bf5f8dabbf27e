/* jattach: HotSpot's dynamic attach mechanism (jattach.h). */
#include "kernel/jattach.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* rel opened beneath the JVM's root directory (/proc/PID/root) and resolved inside it: an absolute
 * symlink in the JVM's tree (/tmp -> /x) must lead to its /x, never to memrun's. The last component
 * is never followed. An fd, or -errno. */
static int open_in_root(pid_t pid, const char *rel, int flags)
{
        char root[32];
        snprintf(root, sizeof root, "/proc/%d/root", (int)pid);
        _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return -errno;
        struct open_how how = { .flags = (uint64_t)(unsigned)(flags | O_NOFOLLOW | O_CLOEXEC),
                                .resolve = (uint64_t)(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) };
        int fd = (int)syscall(SYS_openat2, rfd, rel, &how, sizeof how);
        return fd < 0 ? -errno : fd;
}

/* The JVM's attach socket, java.io.tmpdir's .java_pidNSPID (/tmp unless the program changed it): an
 * O_PATH fd of a socket owned by uid, or -errno (-ENOENT: no listener yet; -EPERM: something else
 * is there, a file or another user's socket, which is never talked to). */
static int socket_fd(pid_t pid, pid_t nspid, uid_t uid)
{
        char rel[48];
        snprintf(rel, sizeof rel, "tmp/.java_pid%d", (int)nspid);
        int fd = open_in_root(pid, rel, O_PATH);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != uid) {
                close(fd);
                return -EPERM;
        }
        return fd;
}

bool jattach_listening(pid_t pid, pid_t nspid, uid_t uid)
{
        int fd = socket_fd(pid, nspid, uid);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}

/* The trigger file .attach_pidNSPID, a regular file owned by whoever runs this (the JVM's uid): in the
 * JVM's working directory first, as the JDK does, its /tmp where that is not writable or changes the
 * owner (some mounts do). The directory's fd (for the unlink), or -EACCES. Never blocks: a FIFO
 * planted under that name is refused, not opened for writing. */
static int make_trigger(pid_t pid, pid_t nspid, char *name, size_t size)
{
        snprintf(name, size, ".attach_pid%d", (int)nspid);
        for (int i = 0; i < 2; i++) {
                char cwd[32];
                snprintf(cwd, sizeof cwd, "/proc/%d/cwd", (int)pid);
                int dfd = i == 0 ? open(cwd, O_PATH | O_DIRECTORY | O_CLOEXEC) : open_in_root(pid, "tmp", O_PATH | O_DIRECTORY);
                if (dfd < 0)
                        continue;
                int flags = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
                int fd = openat(dfd, name, flags | O_CREAT | O_EXCL, 0660);
                if (fd < 0 && errno == EEXIST)
                        fd = openat(dfd, name, flags);
                struct stat st;
                bool ours = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid();
                if (fd >= 0)
                        close(fd);
                if (ours)
                        return dfd;
                if (fd >= 0)
                        (void)unlinkat(dfd, name, 0);
                close(dfd);
        }
        return -EACCES;
}

int jattach_start(pid_t pid, pid_t nspid, int pidfd, int wait_ms)
{
        char name[32];
        int dfd = make_trigger(pid, nspid, name, sizeof name);
        if (dfd < 0)
                return dfd;
        int r = pid_signal(pidfd, pid, SIGQUIT);
        if (r == 0) {
                r = -ETIMEDOUT;
                /* 10 ms, then 20, 30 ... as jattach does: the listener usually comes within 100 ms */
                for (long step = 10, waited = 0; waited < wait_ms; waited += step, step += 10) {
                        struct timespec ts = { 0, step * 1000000L };
                        nanosleep(&ts, NULL);
                        if (jattach_listening(pid, nspid, geteuid())) {
                                r = 0;
                                break;
                        }
                }
        }
        (void)unlinkat(dfd, name, 0);
        close(dfd);
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
        /* connect through the socket's own fd (found inside the JVM's root, owned by this uid) */
        _cleanup_close_ int sfd = socket_fd(pid, nspid, geteuid());
        if (sfd < 0)
                return sfd;
        snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d", sfd);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = 0;
        struct ucred peer;
        socklen_t plen = sizeof peer;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                r = -errno;
                goto out;
        }
        /* the listener must be the JVM itself, not a process that bound the name first */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &plen) < 0 || peer.pid != pid) {
                r = -EPERM;
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
