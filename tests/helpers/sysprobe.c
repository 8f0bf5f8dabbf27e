/* sysprobe: make the named system calls and print what each returned, one "NAME=ok" or
 * "NAME=ERRNO" line per call, so the sandbox tests can see exactly what the seccomp filter and
 * the kernel answered. Every call is harmless when it succeeds: namespaces are made only in a
 * child that exits at once, and the calls that would change the system name nothing that exists.
 * Usage: sysprobe CALL...  (uname, unshare-net, unshare-user, unshare-files, clone-newns, clone3,
 *                           setns, bpf, swapon, euid) */
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static int last_errno;
static int do_unshare_net(void) { return unshare(CLONE_NEWNET) < 0 ? (last_errno = errno, -1) : 0; }
static int do_unshare_user(void) { return unshare(CLONE_NEWUSER) < 0 ? (last_errno = errno, -1) : 0; }

static int probe(const char *name)
{
        struct utsname u;
        if (strcmp(name, "uname") == 0)
                return uname(&u) < 0 ? -errno : 0;
        if (strcmp(name, "unshare-files") == 0)
                return unshare(CLONE_FILES) < 0 ? -errno : 0;
        if (strcmp(name, "unshare-net") == 0 || strcmp(name, "unshare-user") == 0) {
                /* In a child, so this process's own namespaces stay as they are. */
                int fd[2];
                if (pipe(fd) < 0)
                        return -errno;
                pid_t pid = fork();
                if (pid == 0) {
                        int r = strcmp(name, "unshare-net") == 0 ? do_unshare_net() : do_unshare_user();
                        int e = r < 0 ? last_errno : 0;
                        (void)!write(fd[1], &e, sizeof e);
                        _exit(0);
                }
                close(fd[1]);
                int e = EIO;
                if (pid < 0 || read(fd[0], &e, sizeof e) != (ssize_t)sizeof e)
                        e = pid < 0 ? errno : EIO;
                close(fd[0]);
                if (pid > 0)
                        waitpid(pid, NULL, 0);
                return -e;
        }
        if (strcmp(name, "clone-newns") == 0 || strcmp(name, "clone3") == 0) {
                struct clone_args a = { .exit_signal = SIGCHLD };
                long pid = strcmp(name, "clone3") == 0 ? syscall(SYS_clone3, &a, sizeof a)
                                                       : syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);
                if (pid < 0)
                        return -errno;
                if (pid == 0)
                        _exit(0); /* the child: gone at once */
                waitpid((pid_t)pid, NULL, 0);
                return 0;
        }
        if (strcmp(name, "setns") == 0)
                return setns(-1, 0) < 0 ? -errno : 0;          /* EBADF when let through */
        if (strcmp(name, "bpf") == 0)
                return syscall(SYS_bpf, -1, NULL, 0) < 0 ? -errno : 0; /* EINVAL when let through */
        if (strcmp(name, "swapon") == 0)
                return swapon("/nonexistent/swap", 0) < 0 ? -errno : 0; /* ENOENT when let through */
        return -ENOSYS;
}

int main(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "euid") == 0) {
                        printf("euid=%u\n", (unsigned)geteuid());
                        continue;
                }
                int r = probe(argv[i]);
                printf("%s=%s\n", argv[i], r == 0 ? "ok" : strerrorname_np(-r) ? strerrorname_np(-r) : "?");
        }
        return 0;
}
