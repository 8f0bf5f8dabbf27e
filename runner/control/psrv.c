/* psrv: the pressure server, memrun's own MEMORY_PRESSURE_WATCH (psrv.h). */
#include "control/psrv.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "kernel/proc.h"
#include "kernel/psi.h"
#include "log.h"

#define LISTEN_TAG UINT64_MAX
#define TRIG_BIT (UINT64_C(1) << 32)   /* data.u64: slot, | TRIG_BIT for its kernel trigger */
#define ACCEPT_BUDGET 16

void psrv_init(struct psrv *s)
{
        memset(s, 0, sizeof *s);
        s->epoll_fd = s->listen_fd = s->proc_fd = s->dir_fd = -1;
        s->last_pulse = USEC_INFINITY;
        for (size_t i = 0; i < PSRV_MAX_CLIENTS; i++)
                s->clients[i].fd = s->clients[i].trig_fd = -1;
}

static void unwatch(struct psrv *s, int fd)
{
        if (s->watch)
                (void)s->watch(s->watch_ctx, fd, false);
        else
                (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

int psrv_parse_trigger(const char *buf, size_t len, char kind[8], uint64_t *ret_stall, uint64_t *ret_window)
{
        char line[PSRV_WRITE_MAX];
        if (len == 0 || len >= sizeof line)
                return -EINVAL;
        memcpy(line, buf, len);
        line[len] = '\0';
        if (strlen(line) + 1 < len)
                return -EINVAL; /* bytes after the NUL */
        char k[8], extra;
        unsigned long long stall, window;
        if (sscanf(line, "%7s %llu %llu %c", k, &stall, &window, &extra) != 3)
                return -EINVAL;
        if ((strcmp(k, "some") != 0 && strcmp(k, "full") != 0) || stall == 0 || window == 0 || stall > window)
                return -EINVAL;
        for (const char *p = line; *p; p++) /* sscanf takes signs and leading blanks; the kernel does not */
                if (!(*p == ' ' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')))
                        return -EINVAL;
        memcpy(kind, k, strlen(k) + 1);
        *ret_stall = stall;
        *ret_window = window;
        return 0;
}

static void client_drop(struct psrv *s, struct psrv_client *c, const char *why)
{
        log_debug("pressure watch: pid %d left (%s)", (int)c->pid, why);
        if (c->trig_fd >= 0) {
                unwatch(s, c->trig_fd);
                close_fd(&c->trig_fd);
        }
        (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close_fd(&c->fd);
        c->pid = 0;
        s->st.clients--;
}

static void client_tell(struct psrv *s, struct psrv_client *c)
{
        /* One byte is the event; one unread is as good as many, so a full socket is not an error. */
        if (send(c->fd, "p", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
                s->st.sent++;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
                s->st.slow++;
}

/* The client's trigger, relayed to the kernel: what the pressure file itself would have told it. */
static void client_arm(struct psrv *s, struct psrv_client *c, size_t slot)
{
        char kind[8];
        uint64_t stall, window;
        c->armed = true;
        if (psrv_parse_trigger(c->buf, c->got, kind, &stall, &window) < 0) {
                s->st.bad_triggers++;
                log_debug("pressure watch: pid %d wrote no trigger memrun understands; it hears the governor only",
                          (int)c->pid);
                return;
        }
        if (!s->kernel[0])
                return;
        usec_t got_window;
        uint32_t ppm = (uint32_t)((unsigned __int128)stall * 1000000u / window);
        int fd = psi_trigger_open(AT_FDCWD, s->kernel, kind, ppm ? ppm : 1, window, &got_window);
        if (fd < 0) {
                log_debug_errno(fd, "pressure watch: cannot arm \"%s %llu %llu\" on %s for pid %d: %m", kind,
                                (unsigned long long)stall, (unsigned long long)window, s->kernel, (int)c->pid);
                return;
        }
        struct epoll_event ev = { .events = EPOLLPRI, .data.u64 = slot | TRIG_BIT };
        int r = s->watch ? s->watch(s->watch_ctx, fd, true)
                         : epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
        if (r < 0) {
                log_debug_errno(r, "pressure watch: cannot watch pid %d's trigger: %m", (int)c->pid);
                close(fd);
                return;
        }
        c->trig_fd = fd;
        s->st.triggers++;
        log_debug("pressure watch: pid %d: \"%s %llu %llu\" armed on %s", (int)c->pid, kind, (unsigned long long)stall,
                  (unsigned long long)got_window, s->kernel);
}

/* A client's kernel trigger is ready: true if it fired (the client was told). */
static bool trigger_fired(struct psrv *s, struct psrv_client *c, uint32_t events)
{
        if (c->trig_fd < 0)
                return false;
        if (events & EPOLLERR) {
                /* The cgroup went away under the trigger: nothing more will come. */
                unwatch(s, c->trig_fd);
                close_fd(&c->trig_fd);
                return false;
        }
        if (!(events & EPOLLPRI))
                return false;
        client_tell(s, c);
        return true;
}

void psrv_watch_triggers(struct psrv *s, psrv_watch_fn watch, void *ctx)
{
        s->watch = watch;
        s->watch_ctx = ctx;
}

void psrv_trigger(struct psrv *s, int fd, uint32_t events)
{
        for (size_t i = 0; fd >= 0 && i < PSRV_MAX_CLIENTS; i++)
                if (s->clients[i].fd >= 0 && s->clients[i].trig_fd == fd) {
                        if (trigger_fired(s, &s->clients[i], events))
                                s->st.pulses_kernel++;
                        return;
                }
}

static void client_read(struct psrv *s, struct psrv_client *c, size_t slot)
{
        char junk[256];
        /* a bounded number of reads per wakeup: a client that writes without end after its trigger
         * (the protocol has nothing more to say) gets the loop's next turn, not all of them */
        for (int reads = 0; reads < 16; reads++) {
                char *to = c->armed ? junk : c->buf + c->got;
                size_t room = c->armed ? sizeof junk : sizeof c->buf - c->got;
                ssize_t n = recv(c->fd, to, room, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                client_drop(s, c, strerror(errno));
                        return;
                }
                if (n == 0) {
                        client_drop(s, c, "hung up");
                        return;
                }
                if (c->armed)
                        continue;
                c->got += (size_t)n;
                /* The trigger ends with its NUL (what the kernel wants), or fills the buffer. */
                const char *nul = memchr(c->buf, '\0', c->got);
                if (nul || c->got == sizeof c->buf) {
                        if (nul)
                                c->got = (size_t)(nul - c->buf) + 1;
                        client_arm(s, c, slot);
                }
        }
}

static void do_accept(struct psrv *s)
{
        for (unsigned n = 0; n < ACCEPT_BUDGET; n++) {
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return;
                }
                struct ucred uc;
                socklen_t ul = sizeof uc;
                int r = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 || ul != sizeof uc || uc.pid <= 0
                                ? -EPERM
                                : proc_cgroup_inside(s->proc_fd, uc.pid, s->mode, s->sandbox, s->cgbuf, sizeof s->cgbuf);
                size_t slot = PSRV_MAX_CLIENTS;
                for (size_t i = 0; r > 0 && i < PSRV_MAX_CLIENTS && slot == PSRV_MAX_CLIENTS; i++)
                        if (s->clients[i].fd < 0)
                                slot = i;
                struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = slot };
                if (r <= 0 || slot == PSRV_MAX_CLIENTS || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        if (s->st.refused < 16)
                                log_debug("pressure watch: refused pid %d: %s", r == -EPERM ? 0 : (int)uc.pid,
                                          r <= 0 ? "not in the sandbox's cgroup" : "too many connections");
                        s->st.refused++;
                        close(fd);
                        continue;
                }
                s->clients[slot] = (struct psrv_client){ .fd = fd, .trig_fd = -1, .pid = uc.pid };
                s->st.clients++;
                s->st.clients_ever++;
                log_debug("pressure watch: pid %d connected", (int)uc.pid);
        }
}

void psrv_dispatch(struct psrv *s)
{
        struct epoll_event evs[16];
        int n = epoll_wait(s->epoll_fd, evs, (int)ELEMENTSOF(evs), 0);
        bool kernel = false;
        for (int i = 0; i < n; i++) {
                uint64_t tag = evs[i].data.u64;
                if (tag == LISTEN_TAG) {
                        do_accept(s);
                        continue;
                }
                size_t slot = (size_t)(tag & ~TRIG_BIT);
                if (slot >= PSRV_MAX_CLIENTS || s->clients[slot].fd < 0)
                        continue;
                struct psrv_client *c = &s->clients[slot];
                if (tag & TRIG_BIT) {
                        kernel |= trigger_fired(s, c, evs[i].events);
                        continue;
                }
                client_read(s, c, slot);
        }
        if (kernel)
                s->st.pulses_kernel++;
}

unsigned psrv_pulse(struct psrv *s, usec_t now)
{
        if (s->listen_fd < 0 || s->st.clients == 0)
                return 0;
        if (s->last_pulse != USEC_INFINITY && usec_sub(now, s->last_pulse) < PSRV_PULSE_GAP_USEC)
                return 0;
        s->last_pulse = now;
        unsigned told = 0;
        for (size_t i = 0; i < PSRV_MAX_CLIENTS; i++)
                if (s->clients[i].fd >= 0) {
                        client_tell(s, &s->clients[i]);
                        told++;
                }
        s->st.pulses_governor++;
        return told;
}

int psrv_fd(const struct psrv *s)
{
        return s->epoll_fd;
}

/* s->dir holds the template "PREFIX NAME.XXXXXX". The directory is made as ".BASENAME..." and locked
 * (flock, held in dir_fd while memrun lives) before it takes its final name, so the next memrun's
 * registry_sweep never finds it unlocked while this one is alive. */
static int make_locked_dir(struct psrv *s)
{
        char tmp[PATH_MAX];
        const char *slash = strrchr(s->dir, '/');
        size_t head = slash ? (size_t)(slash - s->dir) + 1 : 0;
        int n = snprintf(tmp, sizeof tmp, "%.*s.%s", (int)head, s->dir, s->dir + head);
        if (n < 0 || (size_t)n >= sizeof tmp)
                return -ENAMETOOLONG;
        if (!mkdtemp(tmp))
                return -errno;
        memcpy(s->dir + strlen(s->dir) - 6, tmp + n - 6, 6);
        int r = 0;
        s->dir_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s->dir_fd < 0 || flock(s->dir_fd, LOCK_EX | LOCK_NB) < 0 ||
            renameat2(AT_FDCWD, tmp, AT_FDCWD, s->dir, RENAME_NOREPLACE) < 0)
                r = -errno;
        if (r < 0) {
                close_fd(&s->dir_fd);
                (void)rmdir(tmp);
        }
        return r;
}

int psrv_open(struct psrv *s, const char *prefix, const char *name, enum cg_mode mode, const char *sandbox_path,
              const char *proc_root, const char *kernel_file)
{
        int r;
        psrv_init(s);
        if ((unsigned)mode >= _CG_MODE_MAX || !prefix || !name || !sandbox_path || sandbox_path[0] != '/' || !proc_root)
                return -EINVAL;
        if (strlen(sandbox_path) >= sizeof s->sandbox || (kernel_file && strlen(kernel_file) >= sizeof s->kernel))
                return -ENAMETOOLONG;
        s->mode = mode;
        memcpy(s->sandbox, sandbox_path, strlen(sandbox_path) + 1);
        if (kernel_file)
                memcpy(s->kernel, kernel_file, strlen(kernel_file) + 1);

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(s->dir, sizeof s->dir, "%s%.40s.XXXXXX", prefix, name);
        if (n < 0 || (size_t)n >= sizeof s->dir)
                return -ENAMETOOLONG;
        /* The socket's path must fit sun_path: check before anything is made. */
        if ((size_t)n + strlen("/pressure") >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        r = make_locked_dir(s);
        if (r < 0) {
                s->dir[0] = '\0';
                return r;
        }
        n = snprintf(s->path, sizeof s->path, "%s/pressure", s->dir);
        if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
                r = -ENAMETOOLONG;
                goto fail;
        }
        memcpy(sa.sun_path, s->path, (size_t)n + 1);

        s->proc_fd = proc_open_root(proc_root);
        if (s->proc_fd < 0) {
                r = s->proc_fd;
                goto fail;
        }
        s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->epoll_fd < 0 || s->listen_fd < 0) {
                r = -errno;
                goto fail;
        }
        if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s->listen_fd, 64) < 0) {
                r = -errno;
                goto fail;
        }
        /* Anyone may connect as far as the mode goes: the directory (0700, or the dropped user's)
         * keeps strangers out, and the peer's cgroup is checked at accept. */
        if (chmod(s->path, 0666) < 0) {
                r = -errno;
                goto fail;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LISTEN_TAG };
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        log_debug("pressure watch: listening on %s for processes in %s%s%s", s->path, s->sandbox,
                  s->kernel[0] ? ", relaying " : "", s->kernel);
        return 0;
fail:
        psrv_close(s);
        return r;
}

int psrv_chown(struct psrv *s, uid_t uid, gid_t gid)
{
        if (!s->dir[0])
                return -EBADF;
        if (chown(s->dir, uid, gid) < 0 || chown(s->path, uid, gid) < 0)
                return -errno;
        return 0;
}

void psrv_close(struct psrv *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < PSRV_MAX_CLIENTS; i++) {
                if (s->clients[i].trig_fd >= 0 && s->watch)
                        (void)s->watch(s->watch_ctx, s->clients[i].trig_fd, false);
                close_fd(&s->clients[i].trig_fd);
                close_fd(&s->clients[i].fd);
        }
        s->st.clients = 0;
        close_fd(&s->listen_fd);
        close_fd(&s->epoll_fd);
        close_fd(&s->proc_fd);
        if (s->path[0] && unlink(s->path) < 0 && errno != ENOENT)
                log_debug("pressure watch: cannot remove %s: %m", s->path);
        if (s->dir[0] && rmdir(s->dir) < 0 && errno != ENOENT)
                log_debug("pressure watch: cannot remove %s: %m", s->dir);
        close_fd(&s->dir_fd); /* after rmdir: a sweep must never find it unlocked */
        s->path[0] = s->dir[0] = '\0';
}
