/* ctl: the control socket, the status it serves, and the Prometheus exposition of it. */
#include "control/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------- status text */

#define APPEND(...)                                                                                                   \
        do {                                                                                                          \
                int w_ = snprintf(buf + o, o < size ? size - o : 0, __VA_ARGS__);                                     \
                if (w_ < 0 || (size_t)w_ >= (o < size ? size - o : 0))                                                \
                        return -ENOBUFS;                                                                              \
                o += (size_t)w_;                                                                                      \
        } while (0)

/* One line's worth of untrusted text: no newline, no '=' trouble (values may hold '='). */
static void one_line(char *dst, size_t size, const char *src)
{
        size_t i = 0;
        for (; src && src[i] && i + 1 < size; i++)
                dst[i] = src[i] == '\n' || src[i] == '\r' ? ' ' : src[i];
        dst[i] = '\0';
}

int ctl_status_format(const struct ctl_status *s, char *buf, size_t size)
{
        char l[24], so[24], name[256], cmd[256];
        size_t o = 0;
        one_line(name, sizeof name, s->name);
        one_line(cmd, sizeof cmd, s->command);
        APPEND("pid=%d\nname=%s\ncommand=%s\ncgroup=%s\nmode=%s\n", s->pid, name, cmd, s->cgroup, s->mode);
        APPEND("limit=%s\nsoft=%s\nusage=%" PRIu64 "\npeak=%" PRIu64 "\nlevel=%s\nclients=%u\n",
               u64_or_max(s->limit, l, sizeof l), u64_or_max(s->soft, so, sizeof so), s->usage, s->peak, s->level,
               s->clients);
        APPEND("asks=%" PRIu64 "\nasked=%" PRIu64 "\nfreed=%" PRIu64 "\n", s->asks, s->asked, s->freed);
        APPEND("asks_trim=%" PRIu64 "\nasks_collect=%" PRIu64 "\nasks_reclaim=%" PRIu64 "\nasks_shed=%" PRIu64 "\n",
               s->asks_trim, s->asks_collect, s->asks_reclaim, s->asks_shed);
        APPEND("ev_high=%" PRIu64 "\nev_max=%" PRIu64 "\nev_oom=%" PRIu64 "\nev_oom_kill=%" PRIu64 "\n", s->ev_high,
               s->ev_max, s->ev_oom, s->ev_oom_kill);
        APPEND("uptime_s=%.3f\nlimit_changes=%" PRIu64 "\nctl_refused=%" PRIu64 "\nctl_malformed=%" PRIu64 "\n",
               s->uptime_s, s->limit_changes, s->ctl_refused, s->ctl_malformed);
        return (int)o;
}

int ctl_status_parse(const char *text, struct ctl_status *ret)
{
        struct ctl_status s = { .pid = 0 };
        static const struct {
                const char *key;
                size_t off;
        } u64s[] = {
                { "limit", offsetof(struct ctl_status, limit) },     { "soft", offsetof(struct ctl_status, soft) },
                { "usage", offsetof(struct ctl_status, usage) },     { "peak", offsetof(struct ctl_status, peak) },
                { "asks", offsetof(struct ctl_status, asks) },       { "asked", offsetof(struct ctl_status, asked) },
                { "freed", offsetof(struct ctl_status, freed) },     { "ev_high", offsetof(struct ctl_status, ev_high) },
                { "asks_trim", offsetof(struct ctl_status, asks_trim) },
                { "asks_collect", offsetof(struct ctl_status, asks_collect) },
                { "asks_reclaim", offsetof(struct ctl_status, asks_reclaim) },
                { "asks_shed", offsetof(struct ctl_status, asks_shed) },
                { "ev_max", offsetof(struct ctl_status, ev_max) },   { "ev_oom", offsetof(struct ctl_status, ev_oom) },
                { "ev_oom_kill", offsetof(struct ctl_status, ev_oom_kill) },
                { "limit_changes", offsetof(struct ctl_status, limit_changes) },
                { "ctl_refused", offsetof(struct ctl_status, ctl_refused) },
                { "ctl_malformed", offsetof(struct ctl_status, ctl_malformed) },
        };
        static const struct {
                const char *key;
                size_t off, size;
        } strs[] = {
                { "name", offsetof(struct ctl_status, name), sizeof s.name },
                { "command", offsetof(struct ctl_status, command), sizeof s.command },
                { "cgroup", offsetof(struct ctl_status, cgroup), sizeof s.cgroup },
                { "mode", offsetof(struct ctl_status, mode), sizeof s.mode },
                { "level", offsetof(struct ctl_status, level), sizeof s.level },
        };
        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                const char *eq = memchr(line, '=', len);
                char key[32], val[PATH_MAX];
                if (!eq || eq == line || (size_t)(eq - line) >= sizeof key || len - (size_t)(eq - line) > sizeof val)
                        return -EINVAL;
                memcpy(key, line, (size_t)(eq - line));
                key[eq - line] = '\0';
                size_t vl = len - (size_t)(eq - line) - 1;
                memcpy(val, eq + 1, vl);
                val[vl] = '\0';
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(u64s) && !known; i++)
                        if (strcmp(key, u64s[i].key) == 0) {
                                if (parse_cg_value(val, (uint64_t *)((char *)&s + u64s[i].off)) < 0)
                                        return -EINVAL;
                                known = true;
                        }
                for (size_t i = 0; i < ELEMENTSOF(strs) && !known; i++)
                        if (strcmp(key, strs[i].key) == 0) {
                                snprintf((char *)&s + strs[i].off, strs[i].size, "%s", val);
                                known = true;
                        }
                if (!known && strcmp(key, "pid") == 0) {
                        uint64_t v;
                        if (parse_u64(val, &v) < 0 || v == 0 || v > INT32_MAX)
                                return -EINVAL;
                        s.pid = (int)v;
                } else if (!known && strcmp(key, "clients") == 0) {
                        uint64_t v;
                        if (parse_u64(val, &v) < 0 || v > UINT32_MAX)
                                return -EINVAL;
                        s.clients = (unsigned)v;
                } else if (!known && strcmp(key, "uptime_s") == 0) {
                        char *end;
                        s.uptime_s = strtod(val, &end);
                        if (end == val || *end)
                                return -EINVAL;
                }
                line = eol ? eol + 1 : NULL;
        }
        *ret = s;
        return 0;
}

/* A Prometheus label value: \ " and newline escaped. */
static void label(char *dst, size_t size, const char *src)
{
        size_t o = 0;
        for (size_t i = 0; src[i] && o + 3 < size; i++) {
                if (src[i] == '\\' || src[i] == '"') {
                        dst[o++] = '\\';
                        dst[o++] = src[i];
                } else if (src[i] == '\n') {
                        dst[o++] = '\\';
                        dst[o++] = 'n';
                } else
                        dst[o++] = src[i];
        }
        dst[o] = '\0';
}

static const char *prom_u64(uint64_t v, char *b, size_t n)
{
        if (v == UINT64_MAX)
                snprintf(b, n, "+Inf");
        else
                snprintf(b, n, "%" PRIu64, v);
        return b;
}

int ctl_status_prometheus(const struct ctl_status *s, char *buf, size_t size)
{
        static const char *const levels[] = { "ok", "moderate", "high", "critical" };
        char sb[600], a[32], h[32];
        size_t o = 0;
        int lv = 0;
        label(sb, sizeof sb, s->name);
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (strcmp(s->level, levels[i]) == 0)
                        lv = (int)i;
#define HEAD(name, type, help) APPEND("# HELP memrun_" name " " help "\n# TYPE memrun_" name " " type "\n")
#define ONE(name, fmt, ...) APPEND("memrun_" name "{sandbox=\"%s\"} " fmt "\n", sb, __VA_ARGS__)
        /* the names of docs/ARCHITECTURE.md "Contracts" (they only ever grow) */
        HEAD("usage_bytes", "gauge", "Memory charged to the sandbox.");
        ONE("usage_bytes", "%" PRIu64, s->usage);
        HEAD("peak_bytes", "gauge", "The highest usage seen.");
        ONE("peak_bytes", "%" PRIu64, s->peak);
        HEAD("limit_bytes", "gauge", "The limits: kind=max is the hard limit (memory.max), kind=high the soft one.");
        APPEND("memrun_limit_bytes{sandbox=\"%s\",kind=\"max\"} %s\n", sb, prom_u64(s->limit, a, sizeof a));
        APPEND("memrun_limit_bytes{sandbox=\"%s\",kind=\"high\"} %s\n", sb, prom_u64(s->soft, h, sizeof h));
        HEAD("level", "gauge", "The pressure level: 0 ok, 1 moderate, 2 high, 3 critical.");
        ONE("level", "%d", lv);
        HEAD("oom_kills_total", "counter", "Processes the kernel OOM killer ended in the sandbox.");
        ONE("oom_kills_total", "%" PRIu64, s->ev_oom_kill);
        HEAD("asks_total", "counter", "Processes asked to free memory (reclaim: memory.reclaim writes), per action.");
        APPEND("memrun_asks_total{sandbox=\"%s\",action=\"trim\"} %" PRIu64 "\n", sb, s->asks_trim);
        APPEND("memrun_asks_total{sandbox=\"%s\",action=\"collect\"} %" PRIu64 "\n", sb, s->asks_collect);
        APPEND("memrun_asks_total{sandbox=\"%s\",action=\"reclaim\"} %" PRIu64 "\n", sb, s->asks_reclaim);
        APPEND("memrun_asks_total{sandbox=\"%s\",action=\"shed\"} %" PRIu64 "\n", sb, s->asks_shed);
        HEAD("freed_bytes_total", "counter", "Bytes given back when asked.");
        ONE("freed_bytes_total", "%" PRIu64, s->freed);
        HEAD("throttle_events_total", "counter", "Times the kernel throttled the sandbox at memory.high.");
        ONE("throttle_events_total", "%" PRIu64, s->ev_high);
        /* more than the contract names */
        HEAD("asked_bytes_total", "counter", "Bytes asked of libmemlimit processes.");
        ONE("asked_bytes_total", "%" PRIu64, s->asked);
        HEAD("limiter_clients", "gauge", "libmemlimit processes attached.");
        ONE("limiter_clients", "%u", s->clients);
        HEAD("max_events_total", "counter", "Times usage hit memory.max (v1: memory.failcnt).");
        ONE("max_events_total", "%" PRIu64, s->ev_max);
        HEAD("uptime_seconds", "gauge", "Seconds since the command started.");
        ONE("uptime_seconds", "%.3f", s->uptime_s);
        HEAD("limit_changes_total", "counter", "Limits changed while running (memrunctl set).");
        ONE("limit_changes_total", "%" PRIu64, s->limit_changes);
#undef HEAD
#undef ONE
        return (int)o;
}

int ctl_parse_set(const char *req, uint64_t *limit, bool *has_limit, uint64_t *soft, bool *has_soft)
{
        *has_limit = *has_soft = false;
        if (strncmp(req, "set", 3) != 0 || (req[3] != ' ' && req[3] != '\0'))
                return -EINVAL;
        char buf[CTL_REQUEST_MAX];
        snprintf(buf, sizeof buf, "%s", req + 3);
        char *save = NULL;
        for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
                uint64_t v;
                if (strncmp(t, "limit=", 6) == 0 && !*has_limit && parse_cg_value(t + 6, &v) == 0 && v > 0) {
                        *limit = v;
                        *has_limit = true;
                } else if (strncmp(t, "soft=", 5) == 0 && !*has_soft && parse_cg_value(t + 5, &v) == 0 && v > 0) {
                        *soft = v;
                        *has_soft = true;
                } else
                        return -EINVAL;
        }
        return *has_limit || *has_soft ? 0 : -EINVAL;
}

/* ---------------------------------------------------------------- the socket */

static socklen_t ctl_addr(pid_t pid, struct sockaddr_un *a, char *name, size_t name_size)
{
        char n[64];
        snprintf(n, sizeof n, "@memrun-ctl-%d", (int)pid);
        if (name)
                snprintf(name, name_size, "%s", n);
        memset(a, 0, sizeof *a);
        a->sun_family = AF_UNIX;
        memcpy(a->sun_path + 1, n + 1, strlen(n) - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(n));
}

int ctl_open(struct ctl_server *s)
{
        struct sockaddr_un a;
        *s = (struct ctl_server){ .fd = -1 };
        socklen_t al = ctl_addr(getpid(), &a, s->name, sizeof s->name);
        s->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, al) < 0 || listen(s->fd, 8) < 0) {
                int e = errno;
                close_fd(&s->fd);
                return -e;
        }
        return 0;
}

static void reply(int c, const char *text)
{
        (void)send(c, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void ctl_dispatch(struct ctl_server *s, const struct ctl_ops *ops)
{
        for (int i = 0; i < 16; i++) {
                int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0)
                        return;
                struct ucred cr = { .pid = 0, .uid = (uid_t)-1 };
                socklen_t cl = sizeof cr;
                char req[CTL_REQUEST_MAX + 1], out[CTL_REPLY_MAX], why[256];
                bool ok = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0;
                /* The request comes with the connection: wait for it a little (bounded), never spin.
                 * It is read even from a peer that is refused: closing on unread data would reset the
                 * connection and lose the answer. */
                struct pollfd pf = { .fd = c, .events = POLLIN };
                ssize_t n = poll(&pf, 1, 20) == 1 ? recv(c, req, sizeof req, MSG_DONTWAIT | MSG_TRUNC) : -1;
                if (!ok || (cr.uid != 0 && cr.uid != geteuid()) || (ops->inside && ops->inside(ops->inside_ctx, cr.pid))) {
                        s->refused++;
                        log_debug("control: refused a peer (pid %d, uid %d)", ok ? (int)cr.pid : -1, ok ? (int)cr.uid : -1);
                        reply(c, ok && (cr.uid == 0 || cr.uid == geteuid())
                                         ? "error: permission denied (the sandbox's own processes are not served)\n"
                                         : "error: permission denied (only root and memrun's own user)\n");
                        close(c);
                        continue;
                }
                if (n <= 0 || n > CTL_REQUEST_MAX) {
                        s->malformed++;
                        if (n > CTL_REQUEST_MAX)
                                reply(c, "error: request too long\n");
                        close(c);
                        continue;
                }
                req[n] = '\0';
                while (n > 0 && (req[n - 1] == '\n' || req[n - 1] == ' '))
                        req[--n] = '\0';
                uint64_t lim = 0, soft = 0;
                bool hl, hs;
                if (strcmp(req, "status") == 0) {
                        struct ctl_status st;
                        memset(&st, 0, sizeof st);
                        ops->status(ops->ctx, &st);
                        st.ctl_refused = s->refused;
                        st.ctl_malformed = s->malformed;
                        if (ctl_status_format(&st, out, sizeof out) > 0)
                                reply(c, out);
                } else if (ctl_parse_set(req, &lim, &hl, &soft, &hs) == 0) {
                        why[0] = '\0';
                        if (ops->set(ops->ctx, hl, lim, hs, soft, why, sizeof why) == 0)
                                reply(c, "ok\n");
                        else {
                                snprintf(out, sizeof out, "error: %s\n", why);
                                reply(c, out);
                        }
                } else {
                        s->malformed++;
                        log_debug("control: dropped a request that is not one (%zd bytes)", n);
                        reply(c, "error: unknown request (expected 'status' or 'set limit=BYTES soft=BYTES')\n");
                }
                close(c);
        }
}

void ctl_close(struct ctl_server *s)
{
        close_fd(&s->fd);
}

int ctl_request(pid_t pid, const char *req, char *buf, size_t size)
{
        struct sockaddr_un a;
        socklen_t al = ctl_addr(pid, &a, NULL, 0);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct timeval tv = { 5, 0 };
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int r = 0;
        if (connect(fd, (struct sockaddr *)&a, al) < 0)
                r = -errno;
        /* the abstract name is guessable: the server must be that memrun, root's or ours */
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (r == 0 && (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.pid != pid ||
                       (cr.uid != 0 && cr.uid != geteuid())))
                r = -EPERM;
        /* A refused peer gets its answer before memrun reads the request: send may fail, recv not. */
        if (r == 0)
                (void)send(fd, req, strlen(req), MSG_NOSIGNAL);
        ssize_t n = r == 0 ? recv(fd, buf, size - 1, 0) : -1;
        if (r == 0 && n < 0)
                r = -errno;
        if (r == 0)
                buf[n] = '\0';
        close(fd);
        return r;
}

int ctl_write_metrics(const char *path, const struct ctl_status *s)
{
        char text[8192], tmp[PATH_MAX];
        int n = ctl_status_prometheus(s, text, sizeof text);
        if (n < 0)
                return n;
        if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
                return -ENAMETOOLONG;
        /* A name others can guess: whatever is there (a planted symlink) goes, and a fresh file is
         * made, never followed. */
        (void)unlink(tmp);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        int r = write_whole(fd, text, (size_t)n);
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}
