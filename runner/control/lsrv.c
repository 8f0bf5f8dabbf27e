/* lsrv: the limiter server, memrun's end of the libmemlimit wire protocol: accepts the sandbox's
 * processes, refuses everyone else, sends levels without ever blocking, records what came back. */
#include "control/lsrv.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "log.h"
#include "kernel/proc.h"
#include "util.h"

_Static_assert(LEVEL_OK == MEMLIMIT_PROTO_NORMAL && LEVEL_MODERATE == MEMLIMIT_PROTO_MODERATE &&
                       LEVEL_HIGH == MEMLIMIT_PROTO_HIGH && LEVEL_CRITICAL == MEMLIMIT_PROTO_CRITICAL &&
                       _LEVEL_MAX == MEMLIMIT_PROTO_LEVEL_MAX,
               "memrun's levels are the wire levels");
_Static_assert((1u << ACTION_TRIM) == MEMLIMIT_ACT_TRIM && (1u << ACTION_COLLECT) == MEMLIMIT_ACT_COLLECT &&
                       (1u << ACTION_SHED) == MEMLIMIT_ACT_SHED,
               "memrun's action bits are the wire bits");
_Static_assert(LSRV_MAX_CLIENTS < UINT32_MAX, "slot index fits epoll data");

/* epoll data: the slot in the low half, the connection's generation in the high half, so an event
 * can never be applied to a later occupant of the same slot. */
#define LISTEN_TAG UINT64_MAX
#define TAG(s, c) ((uint64_t)(c)->gen << 32 | (uint64_t)((c) - (s)->clients))

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        uint64_t r;
        return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static struct lsrv_round *round_of(struct lsrv *s, uint32_t seq)
{
        for (size_t i = 0; seq && i < LSRV_ROUNDS; i++)
                if (s->rounds[i].seq == seq)
                        return &s->rounds[i];
        return NULL;
}

static void round_check(struct lsrv *s, struct lsrv_round *r, usec_t now)
{
        if (r->answered < r->asked)
                return;
        r->latency = usec_sub(now, r->sent);
        struct lsrv_round done = *r;
        *r = (struct lsrv_round){};
        if (done.asked && s->on_round)
                s->on_round(&done, s->round_userdata);
}

/* The client's ask is over: answered (or written off, or the client left) with what it gave back so
 * far; withdrawn: it never reached the client. A client that gave back nothing rests before the next. */
static void ask_done(struct lsrv *s, struct lsrv_client *c, bool withdrawn, usec_t now)
{
        if (!c->ask_seq)
                return;
        struct lsrv_round *r = round_of(s, c->ask_seq);
        uint64_t freed = c->ask_freed;
        c->ask_seq = 0;
        c->ask_left = 0;
        c->credit = c->credit / 2 + freed / 2;
        if (!withdrawn) {
                if (c->ask_deferred)
                        s->st.asks_deferred++;
                if (freed == 0 && c->ask_deferred) {
                        /* Put off for its CPU budget, which refills with time: a short rest, not the
                         * doubling one of a client that has nothing. */
                        c->rest_until = now + LSRV_BACKOFF_MIN_USEC;
                } else if (freed == 0) {
                        c->backoff = c->backoff ? c->backoff * 2 : LSRV_BACKOFF_MIN_USEC;
                        if (c->backoff > LSRV_BACKOFF_MAX_USEC)
                                c->backoff = LSRV_BACKOFF_MAX_USEC;
                        c->rest_until = now + c->backoff;
                } else {
                        c->backoff = 0;
                        c->rest_until = 0;
                }
        }
        if (!r)
                return;
        if (withdrawn) {
                r->asked--;
                r->goal = r->goal > c->ask_goal ? r->goal - c->ask_goal : 0;
        } else {
                r->answered++;
                r->freed = add_sat(r->freed, freed);
                r->deferred = r->deferred || c->ask_deferred;
        }
        round_check(s, r, now);
}

void lsrv_init(struct lsrv *s)
{
        memset(s, 0, sizeof *s);
        s->epoll_fd = s->listen_fd = s->proc_fd = -1;
        s->limit = s->soft = UINT64_MAX;
        for (size_t i = 0; i < LSRV_MAX_CLIENTS; i++)
                s->clients[i].fd = -1;
}

int lsrv_fd(const struct lsrv *s) { return s->epoll_fd; }
const char *lsrv_endpoint(const struct lsrv *s) { return s->endpoint; }

static bool client_send(struct lsrv *s, struct lsrv_client *c, const struct memlimit_msg *m);

/* A WELCOME for c with the limits and its id; seq 0 (no level state) until set_welcome_state. */
static void welcome_init(const struct lsrv *s, const struct lsrv_client *c, struct memlimit_msg *w)
{
        memlimit_msg_init(w, MEMLIMIT_MSG_WELCOME);
        w->u.welcome.limit = s->limit;
        w->u.welcome.soft = s->soft;
        w->u.welcome.client_id = c->id;
}

/* The limits alone: a WELCOME with seq 0. */
static void send_limits(struct lsrv *s, struct lsrv_client *c)
{
        struct memlimit_msg w;
        welcome_init(s, c, &w);
        c->limits_due = false;
        s->st.limits_sent++;
        (void)client_send(s, c, &w);
}

void lsrv_set_limits(struct lsrv *s, uint64_t limit, uint64_t soft)
{
        bool changed = s->limit != limit || s->soft != soft;
        s->limit = limit;
        s->soft = soft;
        for (size_t i = 0; changed && s->listen_fd >= 0 && i < LSRV_MAX_CLIENTS; i++) {
                struct lsrv_client *c = &s->clients[i];
                if (c->fd < 0 || !c->attached)
                        continue;
                if (c->has_pending)
                        c->limits_due = true; /* never replace an ask: it goes out first */
                else
                        send_limits(s, c);
        }
}

void lsrv_on_result(struct lsrv *s, lsrv_result_fn fn, void *userdata)
{
        s->on_result = fn;
        s->userdata = userdata;
}

void lsrv_stats(const struct lsrv *s, struct lsrv_stats *ret) { *ret = s->st; }

static int listen_arm(struct lsrv *s, bool on)
{
        struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.u64 = LISTEN_TAG };
        if (s->listen_armed == on)
                return 0;
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev) < 0)
                return -errno;
        s->listen_armed = on;
        return 0;
}

static int client_arm(struct lsrv *s, struct lsrv_client *c, bool out)
{
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.u64 = TAG(s, c) };
        if (c->want_out == out)
                return 0;
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                return -errno;
        c->want_out = out;
        return 0;
}

static void send_bye(int fd, enum memlimit_bye_reason reason)
{
        struct memlimit_msg m;
        memlimit_msg_init(&m, MEMLIMIT_MSG_BYE);
        m.u.bye.reason = reason;
        (void)memlimit_msg_send(fd, &m);
}

static void client_drop(struct lsrv *s, struct lsrv_client *c, const char *why)
{
        if (c->fd < 0)
                return;
        if (c->attached) {
                log_debug("limiter: pid %d (%s) detached: %s; %" PRIu64 " result(s), %" PRIu64 " bytes freed",
                          (int)c->pid, c->comm, why, c->results, c->freed);
                s->st.clients--;
        } else
                log_debug("limiter: pid %d dropped before HELLO: %s", (int)c->pid, why);
        if (c->has_pending)
                s->st.pending--;
        ask_done(s, c, false, now_usec());
        (void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        memset(c, 0, sizeof *c);
        c->fd = -1;
        s->st.connected--;
        /* A slot and an fd are free again. */
        (void)listen_arm(s, true);
}

/* Queue m as the client's one undelivered message (replacing any) and ask to hear when it can go. */
static void client_queue(struct lsrv *s, struct lsrv_client *c, const struct memlimit_msg *m)
{
        /* a WELCOME replaced undelivered still owes the client its limits */
        if (c->has_pending && c->pending.type == MEMLIMIT_MSG_WELCOME && m->type != MEMLIMIT_MSG_WELCOME)
                c->limits_due = true;
        c->pending = *m;
        if (!c->has_pending) {
                c->has_pending = true;
                s->st.pending++;
        }
        if (client_arm(s, c, true) < 0)
                client_drop(s, c, "epoll failed");
}

/* Send now, or queue on EAGAIN. true: sent or queued; false: the client is gone (dropped). */
static bool client_send(struct lsrv *s, struct lsrv_client *c, const struct memlimit_msg *m)
{
        int r = memlimit_msg_send(c->fd, m);
        if (r == 0) {
                s->st.sent++;
                if (m->type == MEMLIMIT_MSG_LEVEL)
                        c->coalesced = 0;
                return true;
        }
        if (r == -EAGAIN) {
                s->st.slow++;
                log_debug("limiter: pid %d is not reading: %s queued", (int)c->pid, memlimit_msg_type_name(m->type));
                client_queue(s, c, m);
                return c->fd >= 0;
        }
        client_drop(s, c, strerror(-r));
        return false;
}

static void client_flush(struct lsrv *s, struct lsrv_client *c)
{
        if (!c->has_pending) {
                (void)client_arm(s, c, false);
                return;
        }
        int r = memlimit_msg_send(c->fd, &c->pending);
        if (r == -EAGAIN) {
                s->st.slow++;
                return;
        }
        if (r < 0) {
                client_drop(s, c, strerror(-r));
                return;
        }
        s->st.sent++;
        if (c->pending.type == MEMLIMIT_MSG_LEVEL)
                c->coalesced = 0;
        c->has_pending = false;
        s->st.pending--;
        if (client_arm(s, c, false) < 0) {
                client_drop(s, c, "epoll failed");
                return;
        }
        if (c->limits_due)
                send_limits(s, c);
}

static void malformed(struct lsrv *s, struct lsrv_client *c, const char *what)
{
        c->malformed++;
        s->st.malformed++;
        if (c->malformed == 1)
                log_debug("limiter: pid %d sent a malformed message (%s); dropped", (int)c->pid, what);
        if (c->malformed >= LSRV_MAX_MALFORMED) {
                s->st.kicked++;
                send_bye(c->fd, MEMLIMIT_BYE_MALFORMED);
                client_drop(s, c, "too many malformed messages");
        }
}

static void set_welcome_state(const struct lsrv *s, struct memlimit_msg *m)
{
        m->seq = s->st.seq;
        m->u.welcome.level = s->level;
        m->u.welcome.actions = s->actions;
        m->u.welcome.goal = s->goal;
}

static void on_hello(struct lsrv *s, struct lsrv_client *c, const struct memlimit_msg *m)
{
        struct memlimit_msg w;
        char caps[32];
        size_t i;

        for (i = 0; i + 1 < sizeof c->comm && m->u.hello.comm[i]; i++) {
                char ch = m->u.hello.comm[i];
                c->comm[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
        }
        c->comm[i] = '\0';
        c->caps = m->u.hello.caps;
        c->attached = true;
        c->id = ++s->next_id;
        s->st.clients++;
        s->st.clients_ever++;
        log_debug("limiter: pid %d (%s) attached as client %u, handles %s%s%s", (int)c->pid, c->comm, c->id,
                  memlimit_proto_actions_format(c->caps, caps, sizeof caps),
                  m->flags & MEMLIMIT_HELLO_PRELOAD ? ", preloaded" : "",
                  m->u.hello.pid != (uint32_t)c->pid ? " (claims another pid)" : "");

        welcome_init(s, c, &w);
        set_welcome_state(s, &w);
        (void)client_send(s, c, &w);
}

static void on_result(struct lsrv *s, struct lsrv_client *c, const struct memlimit_msg *m)
{
        const struct memlimit_msg_result *r = &m->u.result;
        bool futile = m->flags & (MEMLIMIT_RESULT_FUTILE | MEMLIMIT_RESULT_SKIPPED_FUTILE);

        c->results++;
        c->freed = add_sat(c->freed, r->freed);
        s->st.results++;
        s->st.freed = add_sat(s->st.freed, r->freed);
        s->st.usec = add_sat(s->st.usec, r->usec);
        if (futile)
                s->st.futile++;
        if (m->flags & MEMLIMIT_RESULT_SKIPPED_BUDGET)
                s->st.budget_skipped++;
        if (m->seq != 0 && m->seq == s->st.seq) {
                s->st.seq_results++;
                s->st.seq_freed = add_sat(s->st.seq_freed, r->freed);
                if (futile)
                        s->st.seq_futile++;
        }
        if (c->ask_seq && m->seq == c->ask_seq) {
                c->ask_freed = add_sat(c->ask_freed, r->freed);
                c->ask_deferred = c->ask_deferred || (m->flags & MEMLIMIT_RESULT_SKIPPED_BUDGET);
                c->ask_left &= ~r->action;
                if (!c->ask_left)
                        ask_done(s, c, false, now_usec());
        }
        /* A legitimate client answers a LEVEL with at most one RESULT per action: log those, not floods. */
        if (m->seq != c->log_seq) {
                c->log_seq = m->seq;
                c->log_n = 0;
        }
        if (c->log_n++ < 3)
                log_debug("limiter: pid %d (%s): %s for seq %u freed %" PRIu64 " bytes in %" PRIu64 " us%s%s%s",
                          (int)c->pid, c->comm, memlimit_proto_action_name(r->action), m->seq, r->freed, r->usec,
                          m->flags & MEMLIMIT_RESULT_FUTILE ? ", futile" : "",
                          m->flags & MEMLIMIT_RESULT_SKIPPED_BUDGET ? ", skipped (budget)" : "",
                          m->flags & MEMLIMIT_RESULT_SKIPPED_FUTILE ? ", skipped (futile before)" : "");
        if (s->on_result) {
                struct lsrv_result res = {
                        .client_id = c->id,
                        .pid = c->pid,
                        .seq = m->seq,
                        .action = (enum action_type)__builtin_ctz(r->action),
                        .flags = m->flags,
                        .callbacks = r->callbacks,
                        .freed = r->freed,
                        .usec = r->usec,
                };
                s->on_result(&res, s->userdata);
        }
}

/* recv() returned 0: the peer hung up, or sent an empty datagram. Only a hang-up sets RDHUP. */
static bool peer_hung_up(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        return poll(&p, 1, 0) != 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void client_read(struct lsrv *s, struct lsrv_client *c)
{
        for (unsigned n = 0; n < LSRV_READ_BUDGET && c->fd >= 0; n++) {
                struct memlimit_msg m;
                ssize_t len = recv(c->fd, &m, sizeof m, MSG_DONTWAIT | MSG_TRUNC);
                if (len < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                client_drop(s, c, strerror(errno));
                        return;
                }
                if (len == 0) {
                        if (peer_hung_up(c->fd)) {
                                client_drop(s, c, "hung up");
                                return;
                        }
                        malformed(s, c, "empty");
                        continue;
                }
                int r = memlimit_msg_check(&m, (size_t)len);
                if (r == -EPROTO && !c->attached) {
                        struct memlimit_msg bye;
                        log_debug("limiter: pid %d speaks protocol version %u, not %u", (int)c->pid,
                                  (unsigned)m.version, (unsigned)MEMLIMIT_PROTO_VERSION);
                        s->st.bad_version++;
                        memlimit_msg_init(&bye, MEMLIMIT_MSG_BYE);
                        bye.u.bye.reason = MEMLIMIT_BYE_VERSION;
                        (void)memlimit_msg_send(c->fd, &bye);
                        client_drop(s, c, "protocol version");
                        return;
                }
                if (r < 0) {
                        malformed(s, c, r == -EPROTO ? "version changed" : "invalid");
                        continue;
                }
                switch (m.type) {
                case MEMLIMIT_MSG_HELLO:
                        if (c->attached)
                                malformed(s, c, "second HELLO");
                        else
                                on_hello(s, c, &m);
                        break;
                case MEMLIMIT_MSG_RESULT:
                        if (c->attached)
                                on_result(s, c, &m);
                        else
                                malformed(s, c, "RESULT before HELLO");
                        break;
                case MEMLIMIT_MSG_BYE:
                        client_drop(s, c, "said BYE");
                        return;
                default:
                        malformed(s, c, "server-to-client type");
                        break;
                }
        }
}

/* Is the peer in the sandbox? 1 yes, 0 no, -errno unknown. */
static int peer_inside(struct lsrv *s, pid_t pid)
{
        return proc_cgroup_inside(s->proc_fd, pid, s->mode, s->sandbox, s->cgbuf, sizeof s->cgbuf);
}

static struct lsrv_client *free_slot(struct lsrv *s)
{
        for (size_t i = 0; i < LSRV_MAX_CLIENTS; i++)
                if (s->clients[i].fd < 0)
                        return &s->clients[i];
        return NULL;
}

static void do_accept(struct lsrv *s)
{
        for (unsigned n = 0; n < LSRV_ACCEPT_BUDGET; n++) {
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* Level-triggered: stop listening until a client leaves, or we would spin. */
                                log_debug("limiter: accept: %m; not accepting until a client leaves");
                                (void)listen_arm(s, false);
                        }
                        return;
                }
                struct ucred uc;
                socklen_t ul = sizeof uc;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 || ul != sizeof uc || uc.pid <= 0) {
                        log_debug("limiter: refused a peer with no credentials");
                        s->st.refused++;
                        close(fd);
                        continue;
                }
                int r = peer_inside(s, uc.pid);
                if (r <= 0) {
                        /* Anyone on the host can knock: say it a few times, then only count. */
                        if (s->st.refused < 16)
                                log_debug("limiter: refused pid %d: %s", (int)uc.pid,
                                          r == 0 ? "not in the sandbox's cgroup" : "cannot read its cgroup");
                        s->st.refused++;
                        close(fd);
                        continue;
                }
                struct lsrv_client *c = free_slot(s);
                if (!c) {
                        log_debug("limiter: turned pid %d away: %d clients attached", (int)uc.pid, LSRV_MAX_CLIENTS);
                        s->st.full++;
                        send_bye(fd, MEMLIMIT_BYE_FULL);
                        close(fd);
                        continue;
                }
                int sndbuf = LSRV_SNDBUF;
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
                memset(c, 0, sizeof *c);
                c->gen = ++s->next_gen;
                struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = TAG(s, c) };
                if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        log_debug("limiter: epoll: %m");
                        c->fd = -1;
                        close(fd);
                        continue;
                }
                c->fd = fd;
                c->pid = uc.pid;
                s->st.connected++;
        }
}

int lsrv_dispatch(struct lsrv *s)
{
        struct epoll_event evs[64];
        int n = epoll_wait(s->epoll_fd, evs, (int)ELEMENTSOF(evs), 0);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                uint64_t tag = evs[i].data.u64;
                uint32_t e = evs[i].events, slot = (uint32_t)tag;
                if (tag == LISTEN_TAG) {
                        do_accept(s);
                        continue;
                }
                if (slot >= LSRV_MAX_CLIENTS)
                        continue;
                struct lsrv_client *c = &s->clients[slot];
                if (c->fd < 0 || c->gen != (uint32_t)(tag >> 32))
                        continue;       /* dropped earlier in this round */
                if (e & EPOLLIN)
                        client_read(s, c);
                else if (e & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
                        client_drop(s, c, "hung up");
                        continue;
                }
                if (c->fd >= 0 && (e & EPOLLOUT))
                        client_flush(s, c);
        }
        return n;
}

int lsrv_broadcast(struct lsrv *s, enum level level, uint32_t actions, uint64_t goal_bytes,
                   uint64_t usage_bytes, uint32_t *ret_seq)
{
        struct memlimit_msg m;
        int count = 0;
        char acts[32];

        if ((unsigned)level >= _LEVEL_MAX || (actions & ~MEMLIMIT_ACT_ALL))
                return -EINVAL;
        if (++s->st.seq == 0)
                s->st.seq = 1;  /* 0 means "no LEVEL" */
        s->level = (uint32_t)level;
        s->actions = actions;
        s->goal = goal_bytes;
        s->st.seq_results = s->st.seq_futile = 0;
        s->st.seq_freed = 0;

        memlimit_msg_init(&m, MEMLIMIT_MSG_LEVEL);
        m.seq = s->st.seq;
        m.u.level.level = (uint32_t)level;
        m.u.level.actions = actions;
        m.u.level.goal = goal_bytes;
        m.u.level.usage = usage_bytes;

        for (size_t i = 0; i < LSRV_MAX_CLIENTS; i++) {
                struct lsrv_client *c = &s->clients[i];
                if (c->fd < 0 || !c->attached)
                        continue;
                /* Back to ok: what a client had to give in the last episode says nothing of the next,
                 * which must not wait out a rest earned then (a burst's second wave was asked only
                 * after its first wave's 400 ms rest, at memory.max on v1). */
                if (level == LEVEL_OK)
                        c->backoff = c->rest_until = 0;
                if (c->has_pending) {
                        /* Not reading: keep one message, the newest state, and send it when writable. */
                        if (c->pending.type == MEMLIMIT_MSG_WELCOME)
                                set_welcome_state(s, &c->pending);
                        else {
                                if (c->ask_seq == c->pending.seq)
                                        ask_done(s, c, true, now_usec());
                                c->coalesced++;
                                s->st.coalesced++;
                                c->pending = m;
                                c->pending.u.level.coalesced = c->coalesced;
                        }
                        count++;
                        continue;
                }
                m.u.level.coalesced = 0;
                if (client_send(s, c, &m))
                        count++;
        }
        s->st.seq_clients = (uint32_t)count;
        /* A moment to retry listening if accept ran out of fds. */
        (void)listen_arm(s, true);
        log_debug("limiter: level %s seq %u (%s, goal %" PRIu64 ") to %d client(s)", memlimit_proto_level_name(s->level),
                  s->st.seq, memlimit_proto_actions_format(actions, acts, sizeof acts), goal_bytes, count);
        if (ret_seq)
                *ret_seq = s->st.seq;
        return count;
}

void lsrv_on_round(struct lsrv *s, lsrv_round_fn fn, void *userdata)
{
        s->on_round = fn;
        s->round_userdata = userdata;
}

/* Free to be asked: attached, nothing outstanding or undelivered, and not resting -- a rest after
 * giving back nothing holds only for what was asked: an escalated ask (a new action) goes out at once. */
static bool askable(const struct lsrv_client *c, usec_t now, uint32_t actions)
{
        return c->fd >= 0 && c->attached && !c->ask_seq && !c->has_pending &&
               (now >= c->rest_until || (actions & ~c->last_actions) != 0);
}

int lsrv_ask(struct lsrv *s, enum level level, uint32_t actions, uint64_t goal_bytes, uint64_t usage_bytes,
             uint32_t *ret_seq)
{
        if ((unsigned)level >= _LEVEL_MAX || !actions || (actions & ~MEMLIMIT_ACT_ALL))
                return -EINVAL;
        usec_t now = now_usec();
        unsigned n = 0;
        unsigned __int128 weight = 0;
        for (size_t i = 0; i < LSRV_MAX_CLIENTS; i++)
                if (askable(&s->clients[i], now, actions)) {
                        n++;
                        weight += s->clients[i].credit + LSRV_SHARE_FLOOR;
                }
        if (!n)
                return 0;
        struct lsrv_round *r = round_of(s, 0);
        for (size_t i = 0; !r && i < LSRV_ROUNDS; i++)
                if (!s->rounds[i].seq)
                        r = &s->rounds[i];
        if (!r)
                return -ENOBUFS;
        if (++s->st.seq == 0)
                s->st.seq = 1;
        s->level = (uint32_t)level;
        s->actions = actions;
        s->goal = goal_bytes;
        *r = (struct lsrv_round){ .seq = s->st.seq, .actions = actions, .sent = now };

        struct memlimit_msg m;
        memlimit_msg_init(&m, MEMLIMIT_MSG_LEVEL);
        m.seq = s->st.seq;
        m.u.level.level = (uint32_t)level;
        m.u.level.actions = actions;
        m.u.level.usage = usage_bytes;
        for (size_t i = 0; i < LSRV_MAX_CLIENTS; i++) {
                struct lsrv_client *c = &s->clients[i];
                if (!askable(c, now, actions))
                        continue;
                uint64_t g = (uint64_t)((unsigned __int128)goal_bytes * (c->credit + LSRV_SHARE_FLOOR) / weight);
                m.u.level.goal = g ? g : 1;
                m.u.level.coalesced = 0;
                if (!client_send(s, c, &m))
                        continue;
                c->ask_seq = m.seq;
                c->ask_left = actions;
                c->last_actions = actions;
                c->ask_goal = m.u.level.goal;
                c->ask_freed = 0;
                c->ask_deferred = false;
                c->ask_sent = now;
                r->asked++;
                r->goal = add_sat(r->goal, m.u.level.goal);
                s->st.asks++;
                s->st.asked = add_sat(s->st.asked, m.u.level.goal);
        }
        int asked = (int)r->asked;
        if (r->asked)
                s->st.rounds++;
        else
                *r = (struct lsrv_round){};
        if (ret_seq)
                *ret_seq = s->st.seq;
        return asked;
}

void lsrv_ask_state(struct lsrv *s, usec_t timeout, uint64_t *ret_outstanding, unsigned *ret_askable)
{
        usec_t now = now_usec();
        uint64_t out = 0;
        unsigned n = 0, seen = 0;
        for (size_t i = 0; i < LSRV_MAX_CLIENTS && seen < s->st.connected; i++) {
                struct lsrv_client *c = &s->clients[i];
                if (c->fd < 0)
                        continue;
                seen++;
                if (!c->attached)
                        continue;
                if (c->ask_seq && usec_sub(now, c->ask_sent) >= timeout) {
                        s->st.ask_timeouts++;
                        log_debug("limiter: pid %d (%s) did not answer ask %u within %.0f ms", (int)c->pid, c->comm,
                                  c->ask_seq, usec_to_msec(timeout));
                        ask_done(s, c, false, now);
                }
                if (c->ask_seq)
                        out = add_sat(out, c->ask_goal > c->ask_freed ? c->ask_goal - c->ask_freed : 0);
                else if (askable(c, now, UINT32_MAX)) /* resting or not: the next ask may escalate */
                        n++;
        }
        *ret_outstanding = out;
        *ret_askable = n;
}

static int bind_abstract(int fd, char *name, size_t size)
{
        for (int attempt = 0; attempt < 8; attempt++) {
                uint64_t rnd = 0;
                if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        rnd = (uint64_t)ts.tv_nsec * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)ts.tv_sec ^
                              (uint64_t)attempt;
                }
                int k = snprintf(name, size, "@memrun-%d-%016" PRIx64, (int)getpid(), rnd);
                if (k < 0 || (size_t)k >= size)
                        return -ENAMETOOLONG;
                struct sockaddr_un a;
                socklen_t alen;
                int r = memlimit_endpoint_addr(name, &a, &alen);
                if (r < 0)
                        return r;
                if (bind(fd, (struct sockaddr *)&a, alen) == 0)
                        return 0;
                if (errno != EADDRINUSE)
                        return -errno;
        }
        return -EADDRINUSE;
}

int lsrv_open(struct lsrv *s, enum cg_mode mode, const char *sandbox_path, const char *proc_root,
              char *ret_endpoint, size_t size)
{
        int r;

        lsrv_init(s);
        if ((unsigned)mode >= _CG_MODE_MAX || !sandbox_path || sandbox_path[0] != '/' || !proc_root)
                return -EINVAL;
        if (strlen(sandbox_path) >= sizeof s->sandbox)
                return -ENAMETOOLONG;
        s->mode = mode;
        memcpy(s->sandbox, sandbox_path, strlen(sandbox_path) + 1);

        s->proc_fd = proc_open_root(proc_root);
        if (s->proc_fd < 0) {
                r = s->proc_fd;
                goto fail;
        }
        s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->epoll_fd < 0 || s->listen_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = bind_abstract(s->listen_fd, s->endpoint, sizeof s->endpoint);
        if (r < 0)
                goto fail;
        if (listen(s->listen_fd, SOMAXCONN) < 0) {
                r = -errno;
                goto fail;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LISTEN_TAG };
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        s->listen_armed = true;
        if (ret_endpoint) {
                if (strlen(s->endpoint) >= size) {
                        r = -ENAMETOOLONG;
                        goto fail;
                }
                memcpy(ret_endpoint, s->endpoint, strlen(s->endpoint) + 1);
        }
        log_debug("limiter: listening on %s for processes in %s", s->endpoint, s->sandbox);
        return 0;
fail:
        lsrv_close(s);
        return r;
}

void lsrv_close(struct lsrv *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < LSRV_MAX_CLIENTS; i++) {
                struct lsrv_client *c = &s->clients[i];
                if (c->fd < 0)
                        continue;
                if (c->attached)
                        send_bye(c->fd, MEMLIMIT_BYE_NORMAL);
                close(c->fd);
                c->fd = -1;
        }
        close_fd(&s->listen_fd);
        close_fd(&s->epoll_fd);
        close_fd(&s->proc_fd);
        s->st.clients = s->st.connected = s->st.pending = 0;
}
