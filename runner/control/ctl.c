/* ctl: the control socket, the status it serves, and the status's forms (text, JSON, Prometheus). */
#include "control/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define CTL_REQUEST_WAIT_USEC (20 * USEC_PER_MSEC) /* the request comes with the connection: wait this long */

/* ---------------------------------------------------------------- the status's fields */

/* How a field is stored, and what each form does with it. */
enum ctl_type {
        CTL_PID,        /* int, 1..INT32_MAX */
        CTL_UNSIGNED,   /* unsigned, up to UINT32_MAX */
        CTL_U64,        /* read back as decimal or "max", like a cgroup value */
        CTL_U64_MAX,    /* a limit: UINT64_MAX is "max" in the text form, null in JSON, +Inf in Prometheus */
        CTL_DOUBLE,     /* seconds, to the millisecond */
        CTL_TEXT,       /* the user's (name, command): one line in the text form, escaped in JSON */
        CTL_PATH,       /* the cgroup: as is in the text form (sandbox names hold no newline), escaped in JSON */
        CTL_WORD,       /* a word memrun picks ("v2"): as is in every form */
        CTL_LEVEL,      /* the pressure level: a word, and its number in Prometheus */
        _CTL_TYPE_MAX,
};

struct ctl_field {
        const char *key;              /* in the text form */
        enum ctl_type type;
        size_t off, size;             /* in struct ctl_status */
        const char *json_in, *json;   /* the JSON object it sits in (NULL: the top) and its name; NULL: left out */
        struct {
                unsigned rank;        /* its place in the exposition; 0: not exposed */
                const char *series;   /* after "memrun_" */
                const char *label;    /* besides sandbox=, or NULL */
                const char *type, *help; /* on the first sample of a series only */
        } prom;
};

#define F(key_, type_, member)                                                                                        \
        .key = key_, .type = type_, .off = offsetof(struct ctl_status, member),                                      \
        .size = sizeof(((struct ctl_status *)0)->member)
#define JSON(in, name) .json_in = in, .json = name
#define PROM(rank_, series_, label_, type_, help_) .prom = { rank_, series_, label_, type_, help_ }

/* Every field once, in the order of the text form and of the JSON. The exposition has its own order
 * (rank): ranks 1 to 12 are the names docs/ARCHITECTURE.md "Contracts" promises, the rest came
 * later; new series take the next rank, so scrapers see the same order. */
static const struct ctl_field fields[] = {
        { F("pid", CTL_PID, pid), JSON(NULL, "pid") },
        { F("name", CTL_TEXT, name), JSON(NULL, "name") },
        { F("command", CTL_TEXT, command), JSON(NULL, "command") },
        { F("cgroup", CTL_PATH, cgroup), JSON(NULL, "cgroup") },
        { F("mode", CTL_WORD, mode), JSON(NULL, "mode") },
        { F("limit", CTL_U64_MAX, limit), JSON(NULL, "limit"),
          PROM(3, "limit_bytes", "kind=\"max\"", "gauge",
               "The limits: kind=max is the hard limit (memory.max), kind=high the soft one.") },
        { F("soft", CTL_U64_MAX, soft), JSON(NULL, "soft"), PROM(4, "limit_bytes", "kind=\"high\"", NULL, NULL) },
        { F("usage", CTL_U64, usage), JSON(NULL, "usage"),
          PROM(1, "usage_bytes", NULL, "gauge", "Memory charged to the sandbox.") },
        { F("peak", CTL_U64, peak), JSON(NULL, "peak"),
          PROM(2, "peak_bytes", NULL, "gauge", "The highest usage seen.") },
        { F("level", CTL_LEVEL, level), JSON(NULL, "level"),
          PROM(5, "level", NULL, "gauge", "The pressure level: 0 ok, 1 moderate, 2 high, 3 critical.") },
        { F("clients", CTL_UNSIGNED, clients), JSON(NULL, "clients"),
          PROM(14, "limiter_clients", NULL, "gauge", "libmemlimit processes attached.") },
        { F("asks", CTL_U64, asks), JSON(NULL, "asks") },
        { F("asked", CTL_U64, asked), JSON(NULL, "asked"),
          PROM(13, "asked_bytes_total", NULL, "counter", "Bytes asked of libmemlimit processes.") },
        { F("freed", CTL_U64, freed), JSON(NULL, "freed"),
          PROM(11, "freed_bytes_total", NULL, "counter", "Bytes given back when asked.") },
        { F("asks_trim", CTL_U64, asks_trim),
          PROM(7, "asks_total", "action=\"trim\"", "counter",
               "Processes asked to free memory (reclaim: memory.reclaim writes), per action.") },
        { F("asks_collect", CTL_U64, asks_collect), PROM(8, "asks_total", "action=\"collect\"", NULL, NULL) },
        { F("asks_reclaim", CTL_U64, asks_reclaim), PROM(9, "asks_total", "action=\"reclaim\"", NULL, NULL) },
        { F("asks_shed", CTL_U64, asks_shed), PROM(10, "asks_total", "action=\"shed\"", NULL, NULL) },
        { F("ev_high", CTL_U64, ev_high), JSON("events", "high"),
          PROM(12, "throttle_events_total", NULL, "counter",
               "Times the kernel throttled the sandbox at memory.high.") },
        { F("ev_max", CTL_U64, ev_max), JSON("events", "max"),
          PROM(15, "max_events_total", NULL, "counter", "Times usage hit memory.max (v1: memory.failcnt).") },
        { F("ev_oom", CTL_U64, ev_oom), JSON("events", "oom") },
        { F("ev_oom_kill", CTL_U64, ev_oom_kill), JSON("events", "oom_kill"),
          PROM(6, "oom_kills_total", NULL, "counter", "Processes the kernel OOM killer ended in the sandbox.") },
        { F("uptime_s", CTL_DOUBLE, uptime_s), JSON(NULL, "uptime_s"),
          PROM(16, "uptime_seconds", NULL, "gauge", "Seconds since the command started.") },
        { F("limit_changes", CTL_U64, limit_changes), JSON(NULL, "limit_changes"),
          PROM(17, "limit_changes_total", NULL, "counter", "Limits changed while running (memrunctl set).") },
        { F("ctl_refused", CTL_U64, ctl_refused), JSON("control", "refused") },
        { F("ctl_malformed", CTL_U64, ctl_malformed), JSON("control", "malformed") },
};

#undef F
#undef JSON
#undef PROM

static bool is_string(enum ctl_type t)
{
        return t == CTL_TEXT || t == CTL_PATH || t == CTL_WORD || t == CTL_LEVEL;
}

static const void *field_in(const struct ctl_status *s, const struct ctl_field *f)
{
        return (const char *)s + f->off;
}

/* The level's number in the exposition; a word it does not know is 0, ok. */
static int level_index(const char *level)
{
        static const char *const levels[] = { "ok", "moderate", "high", "critical" };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (strcmp(level, levels[i]) == 0)
                        return (int)i;
        return 0;
}

/* ---------------------------------------------------------------- writing into a caller's buffer */

/* Whatever does not fit, with its NUL, makes the whole -ENOBUFS: a cut status would read as a
 * smaller one. */
struct out {
        char *buf;
        size_t size, len;
        bool full;
};

static void out_write(struct out *w, const char *p, size_t n)
{
        if (w->full || n >= w->size - w->len) {
                w->full = true;
                return;
        }
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        w->buf[w->len] = '\0';
}

static void out_printf(struct out *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *w, const char *fmt, ...)
{
        if (w->full)
                return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(w->buf + w->len, w->size - w->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= w->size - w->len)
                w->full = true;
        else
                w->len += (size_t)n;
}

static int out_end(const struct out *w)
{
        return w->full ? -ENOBUFS : (int)w->len;
}

/* A numeric field; max is how the form spells a limit of UINT64_MAX. */
static void out_number(struct out *w, const struct ctl_field *f, const struct ctl_status *s, const char *max)
{
        const void *p = field_in(s, f);
        switch (f->type) {
        case CTL_PID:
                out_printf(w, "%d", *(const int *)p);
                break;
        case CTL_UNSIGNED:
                out_printf(w, "%u", *(const unsigned *)p);
                break;
        case CTL_U64:
        case CTL_U64_MAX:
                if (f->type == CTL_U64_MAX && *(const uint64_t *)p == UINT64_MAX)
                        out_printf(w, "%s", max);
                else
                        out_printf(w, "%" PRIu64, *(const uint64_t *)p);
                break;
        case CTL_DOUBLE:
                out_printf(w, "%.3f", *(const double *)p);
                break;
        case CTL_LEVEL:
                out_printf(w, "%d", level_index(p));
                break;
        case CTL_TEXT:
        case CTL_PATH:
        case CTL_WORD:
        case _CTL_TYPE_MAX:
                break;
        }
}

/* ---------------------------------------------------------------- the text form */

/* Untrusted text on one line: a newline in a value must not start a key of its own. */
static void out_one_line(struct out *w, const char *s)
{
        while (*s) {
                size_t n = strcspn(s, "\r\n");
                out_write(w, s, n);
                s += n;
                if (*s) {
                        out_write(w, " ", 1);
                        s++;
                }
        }
}

int ctl_status_format(const struct ctl_status *s, char *buf, size_t size)
{
        struct out w = { buf, size, 0, false };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct ctl_field *f = &fields[i];
                out_printf(&w, "%s=", f->key);
                if (f->type == CTL_TEXT)
                        out_one_line(&w, field_in(s, f));
                else if (is_string(f->type))
                        out_printf(&w, "%s", (const char *)field_in(s, f));
                else
                        out_number(&w, f, s, "max");
                out_write(&w, "\n", 1);
        }
        return out_end(&w);
}

static const struct ctl_field *field_by_key(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (strcmp(key, fields[i].key) == 0)
                        return &fields[i];
        return NULL;
}

/* val into its field of s: 0, or -EINVAL when it is not one. */
static int parse_field(const struct ctl_field *f, const char *val, struct ctl_status *s)
{
        void *p = (char *)s + f->off;
        uint64_t v;
        char *end;
        switch (f->type) {
        case CTL_PID:
                if (parse_u64(val, &v) < 0 || v == 0 || v > INT32_MAX)
                        return -EINVAL;
                *(int *)p = (int)v;
                return 0;
        case CTL_UNSIGNED:
                if (parse_u64(val, &v) < 0 || v > UINT32_MAX)
                        return -EINVAL;
                *(unsigned *)p = (unsigned)v;
                return 0;
        case CTL_U64:
        case CTL_U64_MAX:
                return parse_cg_value(val, p) < 0 ? -EINVAL : 0;
        case CTL_DOUBLE:
                *(double *)p = strtod(val, &end);
                return end == val || *end ? -EINVAL : 0;
        case CTL_TEXT:
        case CTL_PATH:
        case CTL_WORD:
        case CTL_LEVEL:
                snprintf(p, f->size, "%s", val);
                return 0;
        case _CTL_TYPE_MAX:
                break;
        }
        return -EINVAL;
}

/* One "key=value" line (not its newline) into key and val: 0, or -EINVAL when it is not one. */
static int split_line(const char *line, size_t len, char *key, size_t key_size, char *val, size_t val_size)
{
        const char *eq = memchr(line, '=', len);
        if (!eq || eq == line || (size_t)(eq - line) >= key_size || len - (size_t)(eq - line) > val_size)
                return -EINVAL;
        memcpy(key, line, (size_t)(eq - line));
        key[eq - line] = '\0';
        size_t vl = len - (size_t)(eq - line) - 1;
        memcpy(val, eq + 1, vl);
        val[vl] = '\0';
        return 0;
}

int ctl_status_parse(const char *text, struct ctl_status *ret)
{
        struct ctl_status s = { .pid = 0 };
        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                char key[32], val[PATH_MAX];
                if (split_line(line, len, key, sizeof key, val, sizeof val) < 0)
                        return -EINVAL;
                const struct ctl_field *f = field_by_key(key);
                if (f && parse_field(f, val, &s) < 0)
                        return -EINVAL;
                line = eol ? eol + 1 : NULL;
        }
        *ret = s;
        return 0;
}

/* ---------------------------------------------------------------- JSON */

/* A JSON string literal of arbitrary bytes, through the one escaper (json_piece, util.c). */
static void out_json_string(struct out *w, const char *str)
{
        const unsigned char *s = (const unsigned char *)str;
        char buf[8];
        const char *piece;
        size_t len;
        out_write(w, "\"", 1);
        while (*s) {
                s += json_piece(s, buf, &piece, &len);
                out_write(w, piece, len);
        }
        out_write(w, "\"", 1);
}

static bool same_object(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

int ctl_status_json(const struct ctl_status *s, char *buf, size_t size)
{
        struct out w = { buf, size, 0, false };
        const char *in = NULL; /* the object open now; NULL: the top */
        bool first = true;     /* nothing written in it yet */
        out_write(&w, "{ ", 2);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct ctl_field *f = &fields[i];
                if (!f->json)
                        continue;
                if (!same_object(in, f->json_in)) {
                        if (in) {
                                out_write(&w, " }", 2);
                                first = false;
                        }
                        in = f->json_in;
                        if (in) {
                                out_printf(&w, "%s\"%s\": { ", first ? "" : ", ", in);
                                first = true;
                        }
                }
                out_printf(&w, "%s\"%s\": ", first ? "" : ", ", f->json);
                first = false;
                if (f->type == CTL_TEXT || f->type == CTL_PATH)
                        out_json_string(&w, field_in(s, f));
                else if (is_string(f->type))
                        out_printf(&w, "\"%s\"", (const char *)field_in(s, f));
                else
                        out_number(&w, f, s, "null");
        }
        if (in)
                out_write(&w, " }", 2);
        out_write(&w, " }", 2);
        return out_end(&w);
}

/* ---------------------------------------------------------------- Prometheus */

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

static const struct ctl_field *field_by_rank(unsigned rank)
{
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (fields[i].prom.rank == rank)
                        return &fields[i];
        return NULL;
}

int ctl_status_prometheus(const struct ctl_status *s, char *buf, size_t size)
{
        struct out w = { buf, size, 0, false };
        char sb[600];
        label(sb, sizeof sb, s->name);
        const struct ctl_field *f;
        for (unsigned rank = 1; (f = field_by_rank(rank)); rank++) {
                if (f->prom.help)
                        out_printf(&w, "# HELP memrun_%s %s\n# TYPE memrun_%s %s\n", f->prom.series, f->prom.help,
                                   f->prom.series, f->prom.type);
                out_printf(&w, "memrun_%s{sandbox=\"%s\"%s%s} ", f->prom.series, sb, f->prom.label ? "," : "",
                           f->prom.label ? f->prom.label : "");
                out_number(&w, f, s, "+Inf");
                out_write(&w, "\n", 1);
        }
        return out_end(&w);
}

/* ---------------------------------------------------------------- requests */

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
        *s = (struct ctl_server){ .fd = -1, .pending = -1 };
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
                ssize_t n = poll(&pf, 1, usec_to_poll_ms(CTL_REQUEST_WAIT_USEC)) == 1
                                    ? recv(c, req, sizeof req, MSG_DONTWAIT | MSG_TRUNC)
                                    : -1;
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
                        int r = ops->set(ops->ctx, hl, lim, hs, soft, why, sizeof why);
                        if (r > 0 && s->pending < 0) {
                                s->pending = c; /* answered when the kernel is done */
                                continue;
                        }
                        if (r >= 0)
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

void ctl_reply_pending(struct ctl_server *s, int r, const char *why)
{
        char out[CTL_REPLY_MAX];
        if (s->pending < 0)
                return;
        if (r >= 0)
                snprintf(out, sizeof out, "ok\n");
        else
                snprintf(out, sizeof out, "error: %s\n", why);
        reply(s->pending, out);
        close_fd(&s->pending);
}

void ctl_close(struct ctl_server *s)
{
        ctl_reply_pending(s, -ECANCELED, "memrun is ending");
        close_fd(&s->fd);
}

int ctl_request(pid_t pid, const char *req, char *buf, size_t size)
{
        struct sockaddr_un a;
        socklen_t al = ctl_addr(pid, &a, NULL, 0);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* a status is answered at once; a lowering once the kernel has reclaimed down to it */
        struct timeval tv = { strncmp(req, "set", 3) == 0 ? 120 : 5, 0 };
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
        char text[8192];
        int n = ctl_status_prometheus(s, text, sizeof text);
        if (n < 0)
                return n;
        return file_replace(path, text, (size_t)n);
}
