/* policy: the INI policy (memrun.ini(5)) as a typed struct. Lines are fed to inih through our own
 * reader, which counts lines (for FILE:LINE messages), refuses lines longer than inih's buffer
 * instead of letting them be split, and owns section headers (unknown and duplicate sections are
 * caught even when the section is empty). The handler parses each key strictly. */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "defaults.h"
#include "size.h"
#include "limiter/memlimit_law.h"

#define POLICY_FILE_MAX (1024 * 1024)
#define USEC_PER_MSEC 1000ull
#define USEC_PER_SEC 1000000ull
#define USEC_PER_MIN (60ull * USEC_PER_SEC)
#define USEC_PER_HOUR (3600ull * USEC_PER_SEC)
#define QUOTE_MAX 48 /* characters of a bad value quoted in a message */

typedef unsigned __int128 u128;

/* ---------------------------------------------------------------- names */

const char *level_name(enum level l)
{
        static const char *const names[_LEVEL_MAX] = { "ok", "moderate", "high", "critical" };
        return (unsigned)l < _LEVEL_MAX ? names[l] : "?";
}

const char *action_type_name(enum action_type t)
{
        static const char *const names[_ACTION_TYPE_MAX] = { "trim", "collect", "shed", "reclaim", "signal", "exec" };
        return (unsigned)t < _ACTION_TYPE_MAX ? names[t] : "?";
}

/* ---------------------------------------------------------------- defaults */

/* What a parsed file starts from: no limits, no levels, the built-in recovery/monitor/stall. */
static void policy_base(struct policy *p)
{
        memset(p, 0, sizeof *p);
        p->limit = SIZE_MAX_VALUE;
        p->soft = SIZE_MAX_VALUE;
        p->swap = 0;
        p->hysteresis_ppm = DEFAULT_HYSTERESIS_PCT * (PCT_ONE / 100);
        p->dwell_usec = DEFAULT_DWELL_MSEC * USEC_PER_MSEC;
        p->psi_window_usec = 2 * USEC_PER_SEC;
        p->interval_min_usec = 50 * USEC_PER_MSEC;
        p->interval_max_usec = 2 * USEC_PER_SEC;
        p->hook_timeout_usec = 10 * USEC_PER_SEC;
        p->hold = true;
        p->jvm = true;
        p->giveup_usec = DEFAULT_GIVEUP_MSEC * USEC_PER_MSEC;
        p->target = SIZE_MAX_VALUE;
        p->ask_timeout_usec = USEC_PER_SEC;
        sandbox_spec_default(&p->sandbox);
        p->stall_enabled = true;
        p->stall_psi_full_ppm = 200000;
        p->stall_duration_usec = 10 * USEC_PER_SEC;
        p->stall_action = STALL_RAISE;
        p->stall_step_ppm = 500000;
}

static void add_action(struct policy_level *l, enum action_type t, int sig)
{
        l->actions[l->n_actions++] = (struct policy_action){ .type = t, .signal = sig };
}

void policy_default(struct policy *ret)
{
        policy_base(ret);
        struct policy_level *m = &ret->levels[LEVEL_MODERATE], *h = &ret->levels[LEVEL_HIGH],
                            *c = &ret->levels[LEVEL_CRITICAL];
        m->defined = true;
        m->usage_ppm = DEFAULT_MODERATE_PCT * (PCT_ONE / 100);
        m->psi_some_ppm = 100000;
        add_action(m, ACTION_TRIM, 0);
        h->defined = true;
        h->usage_ppm = DEFAULT_HIGH_PCT * (PCT_ONE / 100);
        add_action(h, ACTION_TRIM, 0);
        add_action(h, ACTION_COLLECT, 0);
        add_action(h, ACTION_RECLAIM, 0);
        c->defined = true;
        c->usage_ppm = DEFAULT_CRITICAL_PCT * (PCT_ONE / 100);
        c->psi_full_ppm = 50000;
        /* Trimming at every level: shedding is the governor's last step, taken only when trimming,
         * collecting and kernel reclaim come back short. */
        add_action(c, ACTION_TRIM, 0);
        add_action(c, ACTION_COLLECT, 0);
        add_action(c, ACTION_RECLAIM, 0);
        add_action(c, ACTION_SHED, 0);
        /* Not the signal:USR1 of docs/ARCHITECTURE.md's policy example: USR1 terminates a program that
         * does not handle it (memrun skips such a signal, but a default should not need that).
         * Policies opt in to signals. */
        ret->builtin = true;
}

/* ---------------------------------------------------------------- formatting helpers */

static void errf(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t err_size, const char *fmt, ...)
{
        if (!err || err_size == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
        if (n < 0)
                err[0] = '\0';
}

/* Quote untrusted text for a message: printable ASCII as is, the rest as \xNN, cut at QUOTE_MAX. */
static const char *quote(const char *s, char *buf, size_t size)
{
        size_t o = 0, i = 0;
        for (; s[i] && o + 5 < size && i < QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 0x20 && c < 0x7f && c != '\\')
                        buf[o++] = (char)c;
                else if (c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = '\\';
                } else
                        o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        }
        if (s[i] && o + 4 < size) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

/* "70%", "92.5%", "0.0001%": parts per million, exact, no trailing zeros. */
static const char *fmt_pct(uint32_t ppm, char *buf, size_t size)
{
        unsigned ip = ppm / 10000, fp = ppm % 10000;
        if (fp == 0) {
                snprintf(buf, size, "%u%%", ip);
                return buf;
        }
        char frac[8];
        snprintf(frac, sizeof frac, "%04u", fp);
        for (size_t n = strlen(frac); n > 0 && frac[n - 1] == '0'; n--)
                frac[n - 1] = '\0';
        snprintf(buf, size, "%u.%s%%", ip, frac);
        return buf;
}

/* "250ms", "2s", "1.5s", "10min", "1h": a form duration_parse reads back to the same value. */
static const char *fmt_duration(uint64_t usec, char *buf, size_t size)
{
        static const struct {
                const char *name;
                uint64_t usec;
        } u[] = { { "h", USEC_PER_HOUR }, { "min", 60 * USEC_PER_SEC }, { "s", USEC_PER_SEC },
                  { "ms", USEC_PER_MSEC }, { "us", 1 } };
        if (usec == 0) {
                snprintf(buf, size, "0s");
                return buf;
        }
        for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
                if (usec % u[i].usec == 0) {
                        snprintf(buf, size, "%llu%s", (unsigned long long)(usec / u[i].usec), u[i].name);
                        return buf;
                }
                if (usec < u[i].usec || u[i].usec > USEC_PER_SEC)
                        continue;
                /* Not a whole number of this unit but at least one: decimals (1.5s, 2.25ms). */
                char frac[24];
                snprintf(frac, sizeof frac, "%06llu", (unsigned long long)(usec % u[i].usec * (USEC_PER_SEC / u[i].usec)));
                for (size_t n = strlen(frac); n > 0 && frac[n - 1] == '0'; n--)
                        frac[n - 1] = '\0';
                snprintf(buf, size, "%llu.%s%s", (unsigned long long)(usec / u[i].usec), frac, u[i].name);
                return buf;
        }
        snprintf(buf, size, "%lluus", (unsigned long long)usec);
        return buf;
}

/* ---------------------------------------------------------------- signals */

static const struct {
        const char *name;
        int sig;
} signal_aliases[] = { { "IOT", SIGABRT }, { "POLL", SIGIO }, { "CLD", SIGCHLD } };

#define SIGNAL_NUM_MAX 64

/* "USR1", "SIGUSR1", "usr1", "10", "RTMIN+2", "SIGRTMAX-1". */
static int signal_parse(const char *s, int *ret)
{
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        if (!*s)
                return -EINVAL;
        if (*s >= '0' && *s <= '9') {
                unsigned v = 0;
                for (const char *q = s; *q; q++) {
                        if (*q < '0' || *q > '9' || v > SIGNAL_NUM_MAX)
                                return -EINVAL;
                        v = v * 10 + (unsigned)(*q - '0');
                }
                if (v < 1 || v > SIGNAL_NUM_MAX || (int)v > SIGRTMAX)
                        return -ERANGE;
                *ret = (int)v;
                return 0;
        }
        for (int sig = 1; sig < SIGRTMIN; sig++) {
                const char *abbr = sigabbrev_np(sig);
                if (abbr && strcasecmp(abbr, s) == 0) {
                        *ret = sig;
                        return 0;
                }
        }
        for (size_t i = 0; i < sizeof signal_aliases / sizeof signal_aliases[0]; i++)
                if (strcasecmp(signal_aliases[i].name, s) == 0) {
                        *ret = signal_aliases[i].sig;
                        return 0;
                }
        if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
                bool max = toupper((unsigned char)s[3]) == 'A';
                const char *q = s + 5;
                unsigned off = 0;
                if (*q) {
                        if (*q != (max ? '-' : '+') || !q[1])
                                return -EINVAL;
                        for (q++; *q; q++) {
                                if (*q < '0' || *q > '9' || off > SIGNAL_NUM_MAX)
                                        return -EINVAL;
                                off = off * 10 + (unsigned)(*q - '0');
                        }
                }
                if (off > (unsigned)(SIGRTMAX - SIGRTMIN))
                        return -ERANGE;
                *ret = max ? SIGRTMAX - (int)off : SIGRTMIN + (int)off;
                return 0;
        }
        return -EINVAL;
}

static const char *signal_format(int sig, char *buf, size_t size)
{
        const char *abbr = sig > 0 && sig < SIGRTMIN ? sigabbrev_np(sig) : NULL;
        if (abbr)
                snprintf(buf, size, "SIG%s", abbr);
        else if (sig == SIGRTMIN)
                snprintf(buf, size, "SIGRTMIN");
        else if (sig > SIGRTMIN && sig <= SIGRTMAX)
                snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
        else
                snprintf(buf, size, "%d", sig);
        return buf;
}

/* ---------------------------------------------------------------- the schema */

enum section {
        SECT_MEMORY,
        SECT_MODERATE,
        SECT_HIGH,
        SECT_CRITICAL,
        SECT_RECOVERY,
        SECT_MONITOR,
        SECT_STALL,
        SECT_GOVERNOR,
        SECT_SANDBOX,
        _SECT_MAX,
        SECT_NONE = -1,
};

static const char *const section_names[_SECT_MAX] = { "memory",   "level.moderate", "level.high", "level.critical",
                                                       "recovery", "monitor",        "stall",      "governor",
                                                       "sandbox" };

#define IS_LEVEL(s) ((s) >= SECT_MODERATE && (s) <= SECT_CRITICAL)
/* Sections are in level order, so SECT_MODERATE + n is LEVEL_MODERATE + n. */
#define SECT_LEVEL(s) ((enum level)(LEVEL_MODERATE + ((s) - SECT_MODERATE)))

enum kind {
        K_LIMIT,        /* size, no percentage */
        K_SOFT,         /* size or percentage of limit */
        K_TARGET,       /* auto, size or percentage of limit */
        K_SWAP,         /* size */
        K_PCT,          /* percentage in [min, max] ppm */
        K_DURATION,     /* duration in [min, max] usec */
        K_ACTIONS,
        K_STALL_ACTION,
        K_BOOL,
        K_SYSCALLS,     /* [sandbox] syscall_filter */
        K_SYSCALL_ACTION,
        K_ARCHS,
        K_CAPS,
        K_USER,         /* [sandbox] user, group: a name */
        _KIND_MAX,
};

struct key {
        int section;    /* a section, or SECT_MODERATE for every level section */
        const char *name;
        enum kind kind;
        size_t off;     /* in struct policy_level for level keys, else in struct policy */
        uint64_t min, max;
};

#define PL(f) offsetof(struct policy_level, f)
#define P(f) offsetof(struct policy, f)

static const struct key keys[] = {
        { SECT_MEMORY, "limit", K_LIMIT, P(limit), 0, 0 },
        { SECT_MEMORY, "soft", K_SOFT, P(soft), 0, 0 },
        { SECT_MEMORY, "swap", K_SWAP, P(swap), 0, 0 },
        { SECT_MODERATE, "usage", K_PCT, PL(usage_ppm), 1, PCT_ONE },
        { SECT_MODERATE, "psi_some", K_PCT, PL(psi_some_ppm), 1, PCT_ONE },
        { SECT_MODERATE, "psi_full", K_PCT, PL(psi_full_ppm), 1, PCT_ONE },
        { SECT_MODERATE, "predict", K_DURATION, PL(predict_usec), 1, USEC_PER_HOUR },
        { SECT_MODERATE, "repeat", K_PCT, PL(repeat_ppm), 1, PCT_ONE },
        { SECT_MODERATE, "actions", K_ACTIONS, PL(actions), 0, 0 },
        { SECT_RECOVERY, "hysteresis", K_PCT, P(hysteresis_ppm), 0, PCT_ONE },
        { SECT_RECOVERY, "dwell", K_DURATION, P(dwell_usec), 0, USEC_PER_HOUR },
        { SECT_MONITOR, "psi_window", K_DURATION, P(psi_window_usec), 500 * USEC_PER_MSEC, 10 * USEC_PER_SEC },
        { SECT_MONITOR, "interval_min", K_DURATION, P(interval_min_usec), USEC_PER_MSEC, USEC_PER_HOUR },
        { SECT_MONITOR, "interval_max", K_DURATION, P(interval_max_usec), USEC_PER_MSEC, USEC_PER_HOUR },
        { SECT_MONITOR, "hook_timeout", K_DURATION, P(hook_timeout_usec), USEC_PER_MSEC, USEC_PER_HOUR },
        { SECT_STALL, "enabled", K_BOOL, P(stall_enabled), 0, 0 },
        { SECT_STALL, "psi_full", K_PCT, P(stall_psi_full_ppm), 1, PCT_ONE },
        { SECT_STALL, "duration", K_DURATION, P(stall_duration_usec), USEC_PER_MSEC, USEC_PER_HOUR },
        { SECT_STALL, "action", K_STALL_ACTION, P(stall_action), 0, 0 },
        { SECT_STALL, "step", K_PCT, P(stall_step_ppm), 1, PCT_ONE },
        { SECT_GOVERNOR, "hold", K_BOOL, P(hold), 0, 0 },
        { SECT_GOVERNOR, "jvm", K_BOOL, P(jvm), 0, 0 },
        { SECT_GOVERNOR, "giveup", K_DURATION, P(giveup_usec), 0, USEC_PER_HOUR },
        { SECT_GOVERNOR, "target", K_TARGET, P(target), 0, 0 },
        { SECT_GOVERNOR, "ask_timeout", K_DURATION, P(ask_timeout_usec), 10 * USEC_PER_MSEC, USEC_PER_MIN },
        { SECT_SANDBOX, "enabled", K_BOOL, P(sandbox.enabled), 0, 0 },
        { SECT_SANDBOX, "read_only_cgroupfs", K_BOOL, P(sandbox.read_only_cgroupfs), 0, 0 },
        { SECT_SANDBOX, "cgroup_namespace", K_BOOL, P(sandbox.cgroup_namespace), 0, 0 },
        { SECT_SANDBOX, "no_new_privs", K_BOOL, P(sandbox.no_new_privs), 0, 0 },
        { SECT_SANDBOX, "restrict_namespaces", K_BOOL, P(sandbox.restrict_namespaces), 0, 0 },
        { SECT_SANDBOX, "protect_kernel_tunables", K_BOOL, P(sandbox.protect_kernel_tunables), 0, 0 },
        { SECT_SANDBOX, "syscall_filter", K_SYSCALLS, P(sandbox.filter), 0, 0 },
        { SECT_SANDBOX, "syscall_action", K_SYSCALL_ACTION, P(sandbox.action), 0, 0 },
        { SECT_SANDBOX, "architectures", K_ARCHS, P(sandbox.archs), 0, 0 },
        { SECT_SANDBOX, "keep_caps", K_CAPS, P(sandbox.keep_caps), 0, 0 },
        { SECT_SANDBOX, "user", K_USER, P(sandbox.user), 0, 0 },
        { SECT_SANDBOX, "group", K_USER, P(sandbox.group), 0, 0 },
};

#define N_KEYS (sizeof keys / sizeof keys[0])

static bool key_in(const struct key *k, int sect)
{
        return k->section == sect || (k->section == SECT_MODERATE && IS_LEVEL(sect));
}

/* ---------------------------------------------------------------- parser state */

struct parser {
        const char *name;               /* file name for messages */
        const char *pos;                /* next unread byte of the text */
        unsigned line;                  /* the line last handed to inih */
        int section;                    /* current section, SECT_NONE before the first header */
        unsigned section_line[_SECT_MAX];       /* header line, 0 = not seen */
        unsigned key_line[_SECT_MAX][N_KEYS];   /* line of each key given, 0 = not given */
        struct policy *p;
        unsigned err_line;              /* first error found by the reader or the handler; 0 = none */
        char *err;
        size_t err_size;
};

static void perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(struct parser *ps, const char *fmt, ...)
{
        if (ps->err_line)
                return;
        ps->err_line = ps->line ? ps->line : 1;
        if (!ps->err || ps->err_size == 0)
                return;
        int n = snprintf(ps->err, ps->err_size, "%s:%u: ", ps->name, ps->err_line);
        if (n < 0 || (size_t)n >= ps->err_size)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err + n, ps->err_size - (size_t)n, fmt, ap);
        va_end(ap);
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A section header line, "[name]" with an optional comment after it. */
static void section_header(struct parser *ps, const char *line)
{
        char q[QUOTE_MAX * 4 + 8];
        const char *close = strchr(line, ']');
        if (!close) {
                perr(ps, "section header '%s' has no closing ']'", quote(line, q, sizeof q));
                return;
        }
        const char *b = line + 1, *e = close;
        while (b < e && is_space(*b))
                b++;
        while (e > b && is_space(e[-1]))
                e--;
        const char *rest = close + 1;
        while (is_space(*rest))
                rest++;
        if (*rest && *rest != ';' && *rest != '#') {
                perr(ps, "unexpected text after the section header: '%s'", quote(rest, q, sizeof q));
                return;
        }
        size_t n = (size_t)(e - b);
        for (int s = 0; s < _SECT_MAX; s++) {
                if (strlen(section_names[s]) != n || memcmp(section_names[s], b, n) != 0)
                        continue;
                if (ps->section_line[s]) {
                        perr(ps, "duplicate section [%s] (first at line %u)", section_names[s], ps->section_line[s]);
                        return;
                }
                ps->section_line[s] = ps->line;
                ps->section = s;
                if (IS_LEVEL(s))
                        ps->p->levels[SECT_LEVEL(s)].defined = true;
                return;
        }
        char name[QUOTE_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)(n < QUOTE_MAX ? n : QUOTE_MAX), b);
        perr(ps, "unknown section [%s] (expected [memory], [level.moderate], [level.high], [level.critical], "
                 "[recovery], [monitor], [stall], [governor] or [sandbox])",
             quote(name, q, sizeof q));
}

/* inih's reader: one line per call, leading whitespace removed (so inih never takes an indented line
 * for a multi-line continuation), no line ending. Returns NULL at the end or after an error. */
static char *reader(char *str, int num, void *stream)
{
        struct parser *ps = stream;
        if (ps->err_line || !*ps->pos || num < 2)
                return NULL;
        const char *s = ps->pos, *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        ps->pos = nl ? nl + 1 : s + len;
        ps->line++;
        if (len > 0 && s[len - 1] == '\r')
                len--;
        if (len > (size_t)num - 1) {
                /* inih would split the line and parse its tail as a line of its own. */
                perr(ps, "line too long (%zu characters; at most %d)", len, num - 1);
                return NULL;
        }
        while (len > 0 && is_space(*s)) {
                s++;
                len--;
        }
        memcpy(str, s, len);
        str[len] = '\0';
        if (str[0] == '[') {
                section_header(ps, str);
                if (ps->err_line)
                        return NULL;
        }
        return str;
}

/* ---------------------------------------------------------------- values */

static const char *size_why(int r)
{
        switch (r) {
        case -ERANGE:
                return "is too large (at most 8E)";
        case -EDOM:
                return "is a percentage, which is not accepted here";
        default:
                return "is not a size (expected e.g. 512M, 2.5G, 1GiB, max)";
        }
}

static void trim(char **b, char **e)
{
        while (*b < *e && is_space(**b))
                (*b)++;
        while (*e > *b && is_space((*e)[-1]))
                (*e)--;
}

static int parse_action(struct parser *ps, const char *sect, char *item, struct policy_action *ret)
{
        char q[QUOTE_MAX * 4 + 8];
        static const enum action_type plain[] = { ACTION_TRIM, ACTION_COLLECT, ACTION_SHED, ACTION_RECLAIM };
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
                if (strcmp(item, action_type_name(plain[i])) == 0) {
                        *ret = (struct policy_action){ .type = plain[i] };
                        return 0;
                }
        if (strncmp(item, "signal:", 7) == 0) {
                char *b = item + 7, *e = b + strlen(b);
                trim(&b, &e);
                *e = '\0';
                int sig, r = signal_parse(b, &sig);
                if (r < 0) {
                        perr(ps, "[%s] actions: '%s' is not a signal (expected e.g. signal:USR1, signal:SIGTERM, "
                                 "signal:10; numbers 1..%d)",
                             sect, quote(item, q, sizeof q), SIGNAL_NUM_MAX);
                        return -EINVAL;
                }
                *ret = (struct policy_action){ .type = ACTION_SIGNAL, .signal = sig };
                return 0;
        }
        if (strncmp(item, "exec:", 5) == 0) {
                char *b = item + 5, *e = b + strlen(b);
                trim(&b, &e);
                if (b == e) {
                        perr(ps, "[%s] actions: 'exec:' needs a command (e.g. exec:/usr/local/bin/notify)", sect);
                        return -EINVAL;
                }
                if ((size_t)(e - b) >= POLICY_CMD_MAX) {
                        perr(ps, "[%s] actions: exec: command longer than %d characters", sect, POLICY_CMD_MAX - 1);
                        return -EINVAL;
                }
                *ret = (struct policy_action){ .type = ACTION_EXEC };
                memcpy(ret->cmd, b, (size_t)(e - b));
                ret->cmd[e - b] = '\0';
                return 0;
        }
        perr(ps, "[%s] actions: unknown action '%s' (expected trim, collect, shed, reclaim, signal:SIG or exec:CMD)",
             sect, quote(item, q, sizeof q));
        return -EINVAL;
}

static bool same_action(const struct policy_action *a, const struct policy_action *b)
{
        if (a->type != b->type)
                return false;
        if (a->type == ACTION_SIGNAL)
                return a->signal == b->signal;
        if (a->type == ACTION_EXEC)
                return strcmp(a->cmd, b->cmd) == 0;
        return true;
}

static int parse_actions(struct parser *ps, const char *sect, const char *value, struct policy_level *l)
{
        char buf[POLICY_CMD_MAX + 8], q[QUOTE_MAX * 4 + 8];
        struct policy_action a;
        unsigned n = 0;

        /* The value came through inih's line buffer, so it always fits. */
        if (strlen(value) >= sizeof buf) {
                perr(ps, "[%s] actions: value too long", sect);
                return -EINVAL;
        }
        strcpy(buf, value);
        for (char *item = buf;;) {
                char *comma = strchr(item, ','), *e = comma ? comma : item + strlen(item);
                char *b = item;
                trim(&b, &e);
                *e = '\0';
                if (!*b) {
                        perr(ps, "[%s] actions: empty item in '%s'", sect, quote(value, q, sizeof q));
                        return -EINVAL;
                }
                if (n >= POLICY_MAX_ACTIONS) {
                        perr(ps, "[%s] actions: too many actions (at most %d)", sect, POLICY_MAX_ACTIONS);
                        return -EINVAL;
                }
                if (parse_action(ps, sect, b, &a) < 0)
                        return -EINVAL;
                for (unsigned i = 0; i < n; i++)
                        if (same_action(&l->actions[i], &a)) {
                                perr(ps, "[%s] actions: '%s' is listed twice", sect, quote(b, q, sizeof q));
                                return -EINVAL;
                        }
                l->actions[n++] = a;
                if (!comma)
                        break;
                item = comma + 1;
        }
        l->n_actions = n;
        return 0;
}

static int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* One "key = value" on its way into the policy. */
struct assign {
        struct parser *ps;
        const char *sn;         /* the section's name, for messages */
        const struct key *k;
        const char *value;
        void *base;             /* what k->off counts from: the level for level keys, else the policy */
};

static void *field(const struct assign *a)
{
        return (char *)a->base + a->k->off;
}

/* "[SECTION] KEY: 'VALUE' WHY", the shape of most value errors. */
static int bad_value(const struct assign *a, const char *why)
{
        char q[QUOTE_MAX * 4 + 8];
        perr(a->ps, "[%s] %s: '%s' %s", a->sn, a->k->name, quote(a->value, q, sizeof q), why);
        return -EINVAL;
}

static int set_size(const struct assign *a)
{
        bool limit = a->k->kind == K_LIMIT;
        uint64_t v;
        int r = size_parse(a->value, 0, &v);
        /* A share of RAM needs the machine's RAM, which only the command line is parsed against. */
        if (r == -EDOM && limit)
                return bad_value(a, "is a percentage; give a size here (a share of RAM is only accepted by --limit)");
        if (r < 0)
                return bad_value(a, size_why(r));
        if (limit && v == 0)
                return bad_value(a, "must be greater than zero");
        *(uint64_t *)field(a) = v;
        if (limit)
                a->ps->p->limit_set = true;
        else
                a->ps->p->swap_set = true;
        return 0;
}

/* A size, or a share of the limit: a percentage stays a share until the limit is final (the command
 * line may still change it). */
static int parse_share(const struct assign *a, uint64_t *ret_bytes, uint32_t *ret_ppm)
{
        uint32_t ppm;
        uint64_t v;
        int r;

        if (strchr(a->value, '%')) {
                r = pct_parse(a->value, &ppm);
                if (r == -ERANGE)
                        return bad_value(a, "is above 100% of the limit");
                if (r < 0)
                        return bad_value(a, "is not a percentage of the limit (expected e.g. 90%)");
                if (ppm == 0)
                        return bad_value(a, "must be greater than zero");
                *ret_ppm = ppm;
                *ret_bytes = 0;
                return 0;
        }
        r = size_parse(a->value, 0, &v);
        if (r < 0)
                return bad_value(a, size_why(r));
        if (v == 0)
                return bad_value(a, "must be greater than zero");
        *ret_bytes = v;
        *ret_ppm = 0;
        return 0;
}

static int set_soft(const struct assign *a)
{
        struct policy *p = a->ps->p;
        int r = parse_share(a, &p->soft, &p->soft_ppm);
        if (r == 0)
                p->soft_set = true;
        return r;
}

/* [governor] target: "auto" is the soft limit's setpoint; else hold no higher than this. */
static int set_target(const struct assign *a)
{
        struct policy *p = a->ps->p;
        if (strcmp(a->value, "auto") == 0) {
                p->target = SIZE_MAX_VALUE;
                p->target_ppm = 0;
                return 0;
        }
        return parse_share(a, &p->target, &p->target_ppm);
}

static int set_pct(const struct assign *a)
{
        uint32_t ppm;
        int r = pct_parse(a->value, &ppm);
        if (r < 0)
                return bad_value(a, r == -ERANGE ? "is above 100%" : "is not a percentage (expected e.g. 70% or 92.5%)");
        if (ppm < a->k->min || ppm > a->k->max)
                return bad_value(a, a->k->min ? "must be greater than 0%" : "must be between 0% and 100%");
        *(uint32_t *)field(a) = ppm;
        return 0;
}

static int set_duration(const struct assign *a)
{
        char lo[32], hi[32], why[96];
        uint64_t v;
        int r = duration_parse(a->value, &v);
        if (r < 0)
                return bad_value(a, r == -ERANGE ? "is too long" : "is not a duration (expected e.g. 250ms, 2s, 1.5min, 1h)");
        if (v < a->k->min || v > a->k->max) {
                if (a->k->min)
                        snprintf(why, sizeof why, "is out of range (%s to %s)", fmt_duration(a->k->min, lo, sizeof lo),
                                 fmt_duration(a->k->max, hi, sizeof hi));
                else
                        snprintf(why, sizeof why, "is out of range (at most %s)", fmt_duration(a->k->max, hi, sizeof hi));
                return bad_value(a, why);
        }
        *(uint64_t *)field(a) = v;
        return 0;
}

static int set_actions(const struct assign *a)
{
        return parse_actions(a->ps, a->sn, a->value, a->base);
}

static int set_stall_action(const struct assign *a)
{
        enum stall_action *s = field(a);
        if (strcmp(a->value, "raise") == 0)
                *s = STALL_RAISE;
        else if (strcmp(a->value, "kill") == 0)
                *s = STALL_KILL;
        else
                return bad_value(a, "is not a stall action (expected raise or kill)");
        return 0;
}

static int set_bool(const struct assign *a)
{
        if (parse_bool(a->value, field(a)) < 0)
                return bad_value(a, "is not a boolean (expected yes or no)");
        return 0;
}

/* The [sandbox] keys whose values config/sandbox.c parses; its reason quotes the bad name. */
static int set_sandbox(const struct assign *a)
{
        struct sandbox_spec *sb = &a->ps->p->sandbox;
        char why[768];
        int r;
        switch (a->k->kind) {
        case K_SYSCALLS:
                r = sandbox_filter_parse(a->value, &sb->filter, why, sizeof why);
                sb->filter_set = r == 0;
                break;
        case K_SYSCALL_ACTION:
                r = sandbox_action_parse(a->value, &sb->action, &sb->errno_value, why, sizeof why);
                break;
        case K_ARCHS:
                r = sandbox_archs_parse(a->value, sb, why, sizeof why);
                break;
        default:
                r = sandbox_caps_parse(a->value, &sb->keep_caps, why, sizeof why);
                sb->caps_set = r == 0;
                break;
        }
        if (r < 0)
                perr(a->ps, "[%s] %s: %s", a->sn, a->k->name, why);
        return r;
}

/* user and group are separate keys here: the "USER:GROUP" form is the command line's. */
static int set_user(const struct assign *a)
{
        char group[32], why[48];
        if (strlen(a->value) >= SANDBOX_NAME_MAX || strchr(a->value, ':') ||
            sandbox_user_parse(a->value, field(a), SANDBOX_NAME_MAX, group, sizeof group) < 0) {
                snprintf(why, sizeof why, "is not a %s name", a->k->name);
                return bad_value(a, why);
        }
        return 0;
}

/* Every kind needs an entry: set_value calls it unchecked. */
static int (*const setters[_KIND_MAX])(const struct assign *a) = {
        [K_LIMIT] = set_size,
        [K_SOFT] = set_soft,
        [K_TARGET] = set_target,
        [K_SWAP] = set_size,
        [K_PCT] = set_pct,
        [K_DURATION] = set_duration,
        [K_ACTIONS] = set_actions,
        [K_STALL_ACTION] = set_stall_action,
        [K_BOOL] = set_bool,
        [K_SYSCALLS] = set_sandbox,
        [K_SYSCALL_ACTION] = set_sandbox,
        [K_ARCHS] = set_sandbox,
        [K_CAPS] = set_sandbox,
        [K_USER] = set_user,
};

static int set_value(struct parser *ps, int sect, const struct key *k, const char *value)
{
        const struct assign a = {
                .ps = ps,
                .sn = section_names[sect],
                .k = k,
                .value = value,
                .base = IS_LEVEL(sect) ? (void *)&ps->p->levels[SECT_LEVEL(sect)] : (void *)ps->p,
        };
        return setters[k->kind](&a);
}

static void list_keys(int sect, char *buf, size_t size)
{
        size_t o = 0;
        unsigned n = 0, total = 0;
        for (size_t i = 0; i < N_KEYS; i++)
                total += key_in(&keys[i], sect);
        buf[0] = '\0';
        for (size_t i = 0; i < N_KEYS && o < size; i++) {
                if (!key_in(&keys[i], sect))
                        continue;
                n++;
                int w = snprintf(buf + o, size - o, "%s%s", n == 1 ? "" : n == total ? " or " : ", ", keys[i].name);
                if (w < 0)
                        break;
                o += (size_t)w;
        }
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
        struct parser *ps = user;
        char q[QUOTE_MAX * 4 + 8], list[400];
        (void)section; /* our reader tracks sections itself (including empty ones) */

        if (ps->err_line)
                return 0;
        if (!*name) {
                perr(ps, "missing key name before '='");
                return 0;
        }
        if (ps->section == SECT_NONE) {
                perr(ps, "key '%s' is outside any section (start with e.g. [memory] or [level.moderate])",
                     quote(name, q, sizeof q));
                return 0;
        }
        const int sect = ps->section;
        const char *sn = section_names[sect];
        size_t ki = N_KEYS;
        for (size_t i = 0; i < N_KEYS; i++)
                if (key_in(&keys[i], sect) && strcmp(keys[i].name, name) == 0) {
                        ki = i;
                        break;
                }
        if (ki == N_KEYS) {
                list_keys(sect, list, sizeof list);
                perr(ps, "unknown key '%s' in [%s] (expected %s)", quote(name, q, sizeof q), sn, list);
                return 0;
        }
        if (ps->key_line[sect][ki]) {
                perr(ps, "duplicate key '%s' in [%s] (first at line %u)", name, sn, ps->key_line[sect][ki]);
                return 0;
        }
        ps->key_line[sect][ki] = ps->line;
        if (!value || !*value) {
                perr(ps, "[%s] %s: no value", sn, name);
                return 0;
        }
        return set_value(ps, sect, &keys[ki], value) < 0 ? 0 : 1;
}

/* The text of line n (1-based) of text, quoted, for inih's own syntax errors. */
static const char *line_text(const char *text, unsigned n, char *buf, size_t size)
{
        const char *s = text;
        for (unsigned i = 1; i < n && s; i++) {
                s = strchr(s, '\n');
                if (s)
                        s++;
        }
        if (!s) {
                buf[0] = '\0';
                return buf;
        }
        while (is_space(*s))
                s++;
        char line[QUOTE_MAX + 1];
        size_t len = strcspn(s, "\r\n");
        snprintf(line, sizeof line, "%.*s", (int)(len < QUOTE_MAX ? len : QUOTE_MAX), s);
        quote(line, buf, size);
        if (len > QUOTE_MAX && strlen(buf) + 4 < size)
                strcat(buf, "...");
        return buf;
}

int policy_parse_string(const char *text, const char *name, struct policy *ret, char *err, size_t err_size)
{
        struct policy p;
        struct parser ps = { .name = name ? name : "<policy>", .section = SECT_NONE, .p = &p, .err = err,
                             .err_size = err_size };
        char q[QUOTE_MAX * 4 + 8];

        if (err && err_size)
                err[0] = '\0';
        if (!text)
                return -EINVAL;
        policy_base(&p);
        /* A UTF-8 byte order mark is allowed; strip it here so inih's own handling never matters. */
        if (strncmp(text, "\xef\xbb\xbf", 3) == 0)
                text += 3;
        ps.pos = text;

        int r = ini_parse_stream(reader, &ps, handler, &ps);
        if (r > 0 && (!ps.err_line || (unsigned)r < ps.err_line)) {
                /* inih's own error: a line that is neither a section, a key = value nor a comment. */
                ps.err_line = 0;
                ps.line = (unsigned)r;
                perr(&ps, "expected 'key = value', '[section]' or a comment, got '%s'",
                     line_text(text, (unsigned)r, q, sizeof q));
                return -EINVAL;
        }
        if (r < 0 && !ps.err_line) {
                errf(err, err_size, "%s: cannot parse (inih error %d)", ps.name, r);
                return -EINVAL;
        }
        if (ps.err_line)
                return -EINVAL;

        for (int s = SECT_MODERATE; s <= SECT_CRITICAL; s++) {
                const struct policy_level *l = &p.levels[SECT_LEVEL(s)];
                if (l->defined && !l->usage_ppm && !l->psi_some_ppm && !l->psi_full_ppm && !l->predict_usec) {
                        ps.line = ps.section_line[s];
                        perr(&ps, "[%s] has no condition: give usage, psi_some, psi_full or predict", section_names[s]);
                        return -EINVAL;
                }
        }
        *ret = p;
        return 0;
}

int policy_parse_file(const char *path, struct policy *ret, char *err, size_t err_size)
{
        if (err && err_size)
                err[0] = '\0';
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int e = errno;
                errf(err, err_size, "%s: cannot open: %s", path, strerror(e));
                return -e;
        }
        char *buf = malloc(POLICY_FILE_MAX + 2);
        if (!buf) {
                close(fd);
                errf(err, err_size, "%s: %s", path, strerror(ENOMEM));
                return -ENOMEM;
        }
        size_t n = 0;
        int r = 0;
        while (n < POLICY_FILE_MAX + 1) {
                ssize_t k = read(fd, buf + n, POLICY_FILE_MAX + 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        errf(err, err_size, "%s: cannot read: %s", path, strerror(-r));
                        goto out;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        if (n > POLICY_FILE_MAX) {
                errf(err, err_size, "%s: larger than %d KiB: not a policy file", path, POLICY_FILE_MAX / 1024);
                r = -EFBIG;
                goto out;
        }
        buf[n] = '\0';
        const char *nul = memchr(buf, '\0', n);
        if (nul) {
                unsigned line = 1;
                for (const char *s = buf; s < nul; s++)
                        line += *s == '\n';
                errf(err, err_size, "%s:%u: NUL byte in the file (a binary file, not a policy?)", path, line);
                r = -EINVAL;
                goto out;
        }
        r = policy_parse_string(buf, path, ret, err, err_size);
out:
        free(buf);
        close(fd);
        return r;
}

/* ---------------------------------------------------------------- validation */

/* The first level with a usage threshold: hysteresis and the governor's target count down from it. */
static enum level lowest_usage_level(const struct policy *p)
{
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                if (p->levels[l].defined && p->levels[l].usage_ppm)
                        return (enum level)l;
        return LEVEL_OK;
}

static int validate_memory(const struct policy *p, char *err, size_t err_size)
{
        char a[32], b[32];

        if (p->limit_set && p->limit == 0) {
                errf(err, err_size, "limit must be greater than zero");
                return -EINVAL;
        }
        if (p->soft_set && p->soft_ppm == 0 && p->soft == 0) {
                errf(err, err_size, "soft limit must be greater than zero");
                return -EINVAL;
        }
        if (p->soft_set && p->soft_ppm > PCT_ONE) {
                errf(err, err_size, "soft (%s of limit) is above 100%%", fmt_pct(p->soft_ppm, a, sizeof a));
                return -EINVAL;
        }
        if (p->soft_set && p->soft_ppm && p->limit_set && p->limit == SIZE_MAX_VALUE) {
                errf(err, err_size, "soft (%s) is a share of the limit, but limit is max",
                     fmt_pct(p->soft_ppm, a, sizeof a));
                return -EINVAL;
        }
        if (p->soft_set && p->soft_ppm == 0 && p->limit_set && p->soft > p->limit) {
                errf(err, err_size, "soft (%s) is above limit (%s)", size_format(p->soft, a, sizeof a),
                     size_format(p->limit, b, sizeof b));
                return -EINVAL;
        }
        return 0;
}

static int validate_governor(const struct policy *p, char *err, size_t err_size)
{
        char a[32], b[32];

        if (p->target_ppm && p->limit_set && p->limit == SIZE_MAX_VALUE) {
                errf(err, err_size, "[governor] target (%s) is a share of the limit, but limit is max",
                     fmt_pct(p->target_ppm, a, sizeof a));
                return -EINVAL;
        }
        if (!p->target_ppm && p->target != SIZE_MAX_VALUE && p->limit_set && p->target > p->limit) {
                errf(err, err_size, "[governor] target (%s) is above limit (%s)", size_format(p->target, a, sizeof a),
                     size_format(p->limit, b, sizeof b));
                return -EINVAL;
        }
        return 0;
}

static int validate_level(const struct policy_level *pl, const char *ln, char *err, size_t err_size)
{
        if (!pl->usage_ppm && !pl->psi_some_ppm && !pl->psi_full_ppm && !pl->predict_usec) {
                errf(err, err_size, "[level.%s] has no condition: give usage, psi_some, psi_full or predict", ln);
                return -EINVAL;
        }
        if (pl->usage_ppm > PCT_ONE || pl->psi_some_ppm > PCT_ONE || pl->psi_full_ppm > PCT_ONE ||
            pl->repeat_ppm > PCT_ONE) {
                errf(err, err_size, "[level.%s] has a percentage above 100%%", ln);
                return -EINVAL;
        }
        if (pl->n_actions > POLICY_MAX_ACTIONS) {
                errf(err, err_size, "[level.%s] has more than %d actions", ln, POLICY_MAX_ACTIONS);
                return -EINVAL;
        }
        return 0;
}

static int validate_levels(const struct policy *p, char *err, size_t err_size)
{
        char a[32], b[32];
        enum level prev = LEVEL_OK;

        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++) {
                const struct policy_level *pl = &p->levels[l];
                if (!pl->defined)
                        continue;
                if (validate_level(pl, level_name((enum level)l), err, err_size) < 0)
                        return -EINVAL;
                if (!pl->usage_ppm)
                        continue;
                if (prev != LEVEL_OK && pl->usage_ppm <= p->levels[prev].usage_ppm) {
                        errf(err, err_size, "[level.%s] usage (%s) must be above [level.%s] usage (%s)",
                             level_name((enum level)l), fmt_pct(pl->usage_ppm, a, sizeof a), level_name(prev),
                             fmt_pct(p->levels[prev].usage_ppm, b, sizeof b));
                        return -EINVAL;
                }
                prev = (enum level)l;
        }
        return 0;
}

static int validate_recovery(const struct policy *p, char *err, size_t err_size)
{
        char a[32], b[32];
        enum level lowest = lowest_usage_level(p);

        if (lowest != LEVEL_OK && p->hysteresis_ppm >= p->levels[lowest].usage_ppm) {
                errf(err, err_size, "[recovery] hysteresis (%s) must be below the lowest usage threshold (%s, [level.%s])",
                     fmt_pct(p->hysteresis_ppm, a, sizeof a), fmt_pct(p->levels[lowest].usage_ppm, b, sizeof b),
                     level_name(lowest));
                return -EINVAL;
        }
        if (p->hysteresis_ppm > PCT_ONE) {
                errf(err, err_size, "[recovery] hysteresis is above 100%%");
                return -EINVAL;
        }
        return 0;
}

static int validate_monitor(const struct policy *p, char *err, size_t err_size)
{
        char a[32], b[32];

        if (p->psi_window_usec < 500 * USEC_PER_MSEC || p->psi_window_usec > 10 * USEC_PER_SEC) {
                errf(err, err_size, "[monitor] psi_window (%s) must be between 500ms and 10s",
                     fmt_duration(p->psi_window_usec, a, sizeof a));
                return -EINVAL;
        }
        if (p->interval_min_usec == 0 || p->interval_max_usec == 0) {
                errf(err, err_size, "[monitor] interval_min and interval_max must be greater than zero");
                return -EINVAL;
        }
        if (p->interval_min_usec > p->interval_max_usec) {
                errf(err, err_size, "[monitor] interval_min (%s) must not be above interval_max (%s)",
                     fmt_duration(p->interval_min_usec, a, sizeof a), fmt_duration(p->interval_max_usec, b, sizeof b));
                return -EINVAL;
        }
        if (p->hook_timeout_usec == 0) {
                errf(err, err_size, "[monitor] hook_timeout must be greater than zero");
                return -EINVAL;
        }
        return 0;
}

static int validate_stall(const struct policy *p, char *err, size_t err_size)
{
        if (!p->stall_enabled)
                return 0;
        if (p->stall_psi_full_ppm == 0 || p->stall_psi_full_ppm > PCT_ONE || p->stall_step_ppm == 0 ||
            p->stall_step_ppm > PCT_ONE) {
                errf(err, err_size, "[stall] psi_full and step must be above 0%% and at most 100%%");
                return -EINVAL;
        }
        if (p->stall_duration_usec == 0) {
                errf(err, err_size, "[stall] duration must be greater than zero");
                return -EINVAL;
        }
        if ((unsigned)p->stall_action >= _STALL_ACTION_MAX) {
                errf(err, err_size, "[stall] action must be raise or kill");
                return -EINVAL;
        }
        return 0;
}

int policy_validate(const struct policy *p, char *err, size_t err_size)
{
        /* In this order: the first failing check is the one reported. */
        static int (*const checks[])(const struct policy *p, char *err, size_t err_size) = {
                validate_memory, validate_levels, validate_recovery, validate_monitor, validate_stall,
                validate_governor,
        };

        if (err && err_size)
                err[0] = '\0';
        for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
                if (checks[i](p, err, err_size) < 0)
                        return -EINVAL;
        return 0;
}

/* ---------------------------------------------------------------- the effective plan */

static bool limit_known(const struct policy *p)
{
        return p->limit_set && p->limit != SIZE_MAX_VALUE;
}

/* "70% of limit (700M)"; while the limit is unknown, "70% of limit". */
static const char *fmt_share(const struct policy *p, uint32_t ppm, char *buf, size_t size)
{
        char a[32], b[32];
        if (limit_known(p))
                snprintf(buf, size, "%s of limit (%s)", fmt_pct(ppm, a, sizeof a),
                         size_format(size_share(p->limit, ppm), b, sizeof b));
        else
                snprintf(buf, size, "%s of limit", fmt_pct(ppm, a, sizeof a));
        return buf;
}

static void print_duration(FILE *f, const char *name, uint64_t usec)
{
        char a[32];
        fprintf(f, "  %s: %s\n", name, fmt_duration(usec, a, sizeof a));
}

static void print_action(FILE *f, const struct policy_action *a)
{
        char s[40];
        switch (a->type) {
        case ACTION_SIGNAL:
                fprintf(f, "signal:%s", signal_format(a->signal, s, sizeof s));
                break;
        case ACTION_EXEC:
                fprintf(f, "exec:%s", a->cmd);
                break;
        default:
                fputs(action_type_name(a->type), f);
        }
}

static void print_limits(FILE *f, const struct policy *p)
{
        char a[32], s[96];

        fprintf(f, "limits:\n");
        if (!p->limit_set)
                fprintf(f, "  limit: not set (from the command line, else max)\n");
        else
                fprintf(f, "  limit: %s\n", size_format(p->limit, a, sizeof a));
        if (!p->soft_set)
                fprintf(f, "  soft: not set (from the command line, else 90%% of limit)\n");
        else if (p->soft_ppm)
                fprintf(f, "  soft: %s\n", fmt_share(p, p->soft_ppm, s, sizeof s));
        else
                fprintf(f, "  soft: %s\n", size_format(p->soft, a, sizeof a));
        if (!p->swap_set)
                fprintf(f, "  swap: not set (from the command line, else 0)\n");
        else
                fprintf(f, "  swap: %s\n", size_format(p->swap, a, sizeof a));
}

static void print_level(FILE *f, const struct policy *p, enum level l)
{
        const struct policy_level *pl = &p->levels[l];
        char a[32], b[32], c[32], s[96];

        fprintf(f, "level %s: entered when any condition holds\n", level_name(l));
        if (pl->usage_ppm && limit_known(p))
                fprintf(f, "  usage >= %s of limit (%s of %s)\n", fmt_pct(pl->usage_ppm, a, sizeof a),
                        size_format(size_share(p->limit, pl->usage_ppm), b, sizeof b), size_format(p->limit, c, sizeof c));
        else if (pl->usage_ppm)
                fprintf(f, "  usage >= %s of limit\n", fmt_pct(pl->usage_ppm, a, sizeof a));
        if (pl->psi_some_ppm)
                fprintf(f, "  psi some avg10 >= %s\n", fmt_pct(pl->psi_some_ppm, a, sizeof a));
        if (pl->psi_full_ppm)
                fprintf(f, "  psi full avg10 >= %s\n", fmt_pct(pl->psi_full_ppm, a, sizeof a));
        if (pl->predict_usec)
                fprintf(f, "  limit predicted within %s\n", fmt_duration(pl->predict_usec, a, sizeof a));
        if (pl->n_actions == 0) {
                fprintf(f, "  actions: none (watch only)\n");
        } else {
                fprintf(f, "  actions: ");
                for (unsigned i = 0; i < pl->n_actions && i < POLICY_MAX_ACTIONS; i++) {
                        if (i)
                                fputs(", ", f);
                        print_action(f, &pl->actions[i]);
                }
                fputc('\n', f);
        }
        if (pl->repeat_ppm)
                fprintf(f, "  repeat: actions again each time usage grows %s\n", fmt_share(p, pl->repeat_ppm, s, sizeof s));
}

static void print_levels(FILE *f, const struct policy *p)
{
        bool any = false;
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                any |= p->levels[l].defined;
        if (!any)
                fprintf(f, "levels: none (memrun only enforces the limits)\n");
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++) {
                if (p->levels[l].defined)
                        print_level(f, p, (enum level)l);
                else if (any)
                        fprintf(f, "level %s: not defined\n", level_name((enum level)l));
        }
}

static void print_recovery_monitor(FILE *f, const struct policy *p)
{
        char a[32];

        fprintf(f, "recovery:\n");
        fprintf(f, "  hysteresis: %s of limit below the level's usage threshold\n", fmt_pct(p->hysteresis_ppm, a, sizeof a));
        print_duration(f, "dwell", p->dwell_usec);
        fprintf(f, "monitor:\n");
        print_duration(f, "psi_window", p->psi_window_usec);
        print_duration(f, "interval_min", p->interval_min_usec);
        print_duration(f, "interval_max", p->interval_max_usec);
        print_duration(f, "hook_timeout", p->hook_timeout_usec);
}

/* The soft limit in force once the command runs, bytes; UINT64_MAX: not known yet, or none. */
static uint64_t effective_soft(const struct policy *p)
{
        if (p->soft_set && !p->soft_ppm)
                return p->soft;
        if (!limit_known(p))
                return SIZE_MAX_VALUE;
        return size_share(p->limit, p->soft_set ? p->soft_ppm : DEFAULT_SOFT_PPM);
}

static void print_setpoint(FILE *f, const struct policy *p)
{
        char a[32], b[32], s[96];
        uint64_t soft = effective_soft(p), target = p->target;
        if (p->target_ppm)
                target = limit_known(p) ? size_share(p->limit, p->target_ppm) : SIZE_MAX_VALUE;
        if (p->target_ppm)
                fprintf(f, "  target: %s: hold no higher\n", fmt_share(p, p->target_ppm, s, sizeof s));
        else if (p->target != SIZE_MAX_VALUE)
                fprintf(f, "  target: %s: hold no higher\n", size_format(p->target, a, sizeof a));
        else
                fprintf(f, "  target: auto (the soft limit's setpoint)\n");
        if (soft == SIZE_MAX_VALUE) {
                fprintf(f, "  setpoint: the soft limit less max(3%%, 1M), more while the program allocates faster "
                           "than asks land%s\n", p->target_ppm || p->target != SIZE_MAX_VALUE ? ", at most target" : "");
                return;
        }
        uint64_t head = size_share(soft, LAW_HEADROOM_PPM);
        if (head < LAW_HEADROOM_MIN)
                head = LAW_HEADROOM_MIN;
        uint64_t sp = soft > head ? soft - head : 0;
        if (target < sp)
                sp = target;
        fprintf(f, "  setpoint: %s (soft limit %s less max(3%%, 1M)%s), lower while the program allocates faster "
                   "than asks land\n", size_format(sp, a, sizeof a), size_format(soft, b, sizeof b),
                target < soft - head ? ", capped by target" : "");
}

static void print_governor(FILE *f, const struct policy *p)
{
        char a[32];

        fprintf(f, "governor:\n");
        if (!p->hold) {
                fprintf(f, "  hold: no (each level's actions run once when it is entered, and on repeat)\n");
                return;
        }
        bool steps = false;
        for (int l = LEVEL_MODERATE; l < _LEVEL_MAX; l++)
                for (unsigned i = 0; p->levels[l].defined && i < p->levels[l].n_actions; i++)
                        steps |= p->levels[l].actions[i].type <= ACTION_RECLAIM;
        if (!steps) {
                fprintf(f, "  hold: yes, but no level names trim, collect, reclaim or shed: nothing to ask, the "
                           "governor stays out (memory.high acts alone)\n");
                return;
        }
        fprintf(f, "  hold: yes (above the setpoint, keep asking: trim -> collect -> reclaim, as the levels' actions "
                   "name them, then shed where the level lists it)\n");
        print_setpoint(f, p);
        print_duration(f, "ask_timeout", p->ask_timeout_usec);
        fprintf(f, "  jvm: %s\n", p->jvm ? "yes (JVMs in the sandbox are asked over their attach socket: trim = "
                                            "System.trim_native_heap, collect = GC.run)"
                                          : "no (JVMs are not attached to)");
        if (p->giveup_usec)
                fprintf(f, "  giveup: after %s of short answers at the soft limit (nothing to give at all: at "
                           "once): lift memory.high, let memory.max act\n", fmt_duration(p->giveup_usec, a, sizeof a));
        else
                fprintf(f, "  giveup: never\n");
}

static void print_stall(FILE *f, const struct policy *p)
{
        char a[32], b[32];

        fprintf(f, "stall:\n");
        if (!p->stall_enabled) {
                fprintf(f, "  disabled\n");
                return;
        }
        fprintf(f, "  when throttled at memory.high with psi full avg10 >= %s for %s and nothing freed\n",
                fmt_pct(p->stall_psi_full_ppm, a, sizeof a), fmt_duration(p->stall_duration_usec, b, sizeof b));
        if (p->stall_action == STALL_KILL)
                fprintf(f, "  action: kill\n");
        else
                fprintf(f, "  action: raise memory.high by %s of (memory.max - memory.high)\n",
                        fmt_pct(p->stall_step_ppm, a, sizeof a));
}

void policy_print(FILE *f, const struct policy *p)
{
        print_limits(f, p);
        print_levels(f, p);
        print_recovery_monitor(f, p);
        print_governor(f, p);
        print_stall(f, p);
        sandbox_spec_print(f, &p->sandbox);
}
