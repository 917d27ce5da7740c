/*
 * worker.c - the worker pool: threads sharing one epoll with EPOLLONESHOT. A worker
 * owns a connection from the moment it takes its event until it re-arms it: it reads
 * what is there (bounded per turn), runs the session, writes the replies, sets the
 * connection's timeout deadline, and re-arms (or hands it to the spool committer or, for an
 * ACL's "delay =", to the delay thread, which re-arm it when they are done).
 */
#include "server_internal.h"

#include "postern/log.h"
#include "postern/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "postern/deliver.h"

#include <sys/epoll.h>

/* ------------------------------------------------------------------ */
/* workers                                                             */
/* ------------------------------------------------------------------ */

static bool conn_input_pending(struct session *s)
{
    struct conn *c = s->transport;
    char byte;
    ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0;
}

void conn_arm(struct conn *c, uint32_t events)
{
    int fd = c->fd; /* after the release below, c belongs to whoever takes the event */
    struct epoll_event ev = {.events = events | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
    atomic_fetch_add_explicit(&c->handoff, 1, memory_order_release);
    if (epoll_ctl(srv.worker_epoll, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, fd, &ev);
}

/* When the sweep should time the session out (0 = not now): smtp_receive_timeout after it
 * began waiting for its current input line (a command, or a line of message data), and
 * in DATA no later than smtp_data_timeout after the 354. Owner thread. */
int64_t conn_deadline(const struct conn *c)
{
    const struct session *s = c->s;
    const struct config *cfg = s->cfg;
    if (s->state == SESSION_COMMIT_WAIT || s->delay_until_ms)
        return 0; /* the committer or the delay thread has it; the client is not late */
    int64_t deadline = 0;
    if (cfg->smtp_receive_timeout > 0)
        deadline = s->line_wait_since_ms + cfg->smtp_receive_timeout * 1000;
    if (s->state == SESSION_DATA && cfg->smtp_data_timeout > 0) {
        int64_t whole = s->data_started_ms + cfg->smtp_data_timeout * 1000;
        if (!deadline || whole < deadline)
            deadline = whole;
    }
    return deadline;
}

/* Committer thread: the message is durable (or failed); give the session back to a
 * worker. EPOLLOUT fires at once on a connected socket. */
static void conn_commit_finished(struct session *s)
{
    conn_arm(s->transport, EPOLLOUT);
}

static void conn_message_accepted(struct session *s, const char *id)
{
    deliver_enqueue(id);
}

static const struct session_ops conn_session_ops = {
    .input_pending = conn_input_pending,
    .commit_finished = conn_commit_finished,
    .message_accepted = conn_message_accepted,
};

/* Write as much of the first limit bytes of s->out as the socket takes; false on a hard
 * error. Returns the count written in *sent. */
static bool conn_flush_upto(struct conn *c, size_t limit, size_t *sent)
{
    struct buf *out = &c->s->out;
    size_t done = 0;
    bool ok = true;
    if (limit > out->len)
        limit = out->len;
    while (done < limit) {
        ssize_t n = send(c->fd, out->data + done, limit - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        ok = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        break;
    }
    buf_consume(out, done);
    *sent = done;
    return ok;
}

static bool conn_flush(struct conn *c)
{
    size_t sent;
    return conn_flush_upto(c, c->s->out.len, &sent);
}

/* Read what the client has sent (bounded per turn); returns 1 data (3: data, and the
 * socket had no more: a short read), 0 EOF, -1 error, 2 nothing available. The bytes go
 * through a per-thread buffer, so an idle connection's input buffer stays as small as
 * what it actually holds (thousands of slow clients must stay cheap). */
static int conn_read(struct conn *c)
{
    static _Thread_local char chunk[READ_CHUNK];
    ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
    if (n > 0) {
        buf_append(&c->s->in, chunk, (size_t)n);
        return n < READ_CHUNK ? 3 : 1;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 2;
    return -1;
}

/* A closing session: send what is left of its replies, then close. */
static void conn_handle_closing_flush(struct conn *c)
{
    if (!conn_flush(c) || c->s->out.len == 0) {
        conn_close(c);
        return;
    }
    conn_arm(c, EPOLLOUT);
}

/* An ACL said "delay =": send the replies before it (as Exim flushes them), then hand the
 * connection to the delay thread; a worker carries on with `then` when it is over. */
static void conn_delay(struct conn *c, enum session_action then)
{
    struct session *s = c->s;
    size_t sent = 0;
    if (!conn_flush_upto(c, s->delay_hold, &sent)) {
        session_lost(s, "write failed");
        conn_close(c);
        return;
    }
    s->delay_hold -= sent;
    c->delay_then = then;
    c->delayed = true;
    atomic_store(&c->deadline_ms, 0);
    delay_enter(c, s->delay_until_ms); /* do not touch c again */
}

/* What the session does first in this turn: its banner, the end of a commit or a delay. */
static enum session_action conn_turn_begin(struct conn *c)
{
    struct session *s = c->s;
    if (c->delayed) {
        c->delayed = false;
        enum session_action a = session_delay_done(s, c->delay_then);
        return a == SESSION_CONTINUE ? session_process(s) : a; /* input held back meanwhile */
    }
    if (!c->started) {
        c->started = true;
        enum session_action a = session_start(s);
        s->line_wait_since_ms = time_mono_ms();
        return a;
    }
    if (s->state == SESSION_COMMIT_WAIT) {
        s->line_wait_since_ms = time_mono_ms();
        return session_commit_resume(s);
    }
    return SESSION_CONTINUE;
}

/* Read and process until the socket is drained, the session waits (spool, delay), or this
 * turn has had its share. Sets *eof when the client (or a kick) closed the read side. */
static enum session_action conn_turn_read(struct conn *c, enum session_action action, bool *eof)
{
    struct session *s = c->s;
    for (int turn = 0; action == SESSION_CONTINUE && !s->delay_until_ms && turn < READS_PER_TURN;
         turn++) {
        if (s->out.len > 256 * 1024)
            break; /* the client is not reading its replies: flush first */
        int r = conn_read(c);
        if (r == 2)
            break;
        if (r <= 0) {
            *eof = true;
            break;
        }
        action = session_process(s);
        if (r == 3)
            break; /* a short read drained the socket: re-arming reports anything newer */
    }
    return action;
}

static enum session_action conn_turn_eof(struct conn *c)
{
    struct session *s = c->s;
    int kick = atomic_load(&c->kick);
    if (kick == KICK_TIMEOUT)
        return session_timeout(s);
    if (kick == KICK_SHUTDOWN)
        return session_shutdown_notice(s);
    session_lost(s, NULL);
    buf_clear(&s->out);
    return SESSION_CLOSE;
}

static void conn_handle(struct conn *c)
{
    struct session *s = c->s;
    bool eof = false;
    enum session_action action = conn_turn_begin(c);
    action = conn_turn_read(c, action, &eof);
    if (eof && action == SESSION_CONTINUE && !s->delay_until_ms)
        action = conn_turn_eof(c);

    /* A delay comes first (its reply, and a commit after the DATA ACL, wait for it). A
     * finished message goes to the committer only once the replies before it are out:
     * after session_commit_start the session is the committer's, not ours. */
    for (;;) {
        if (s->delay_until_ms) {
            conn_delay(c, action);
            return; /* do not touch c again: the delay thread re-arms it */
        }
        if (action != SESSION_WAIT_COMMIT)
            break;
        atomic_store(&c->in_message, true);
        atomic_store(&c->deadline_ms, 0);
        if (!conn_flush(c)) {
            session_lost(s, "write failed");
            conn_close(c);
            return;
        }
        if (session_commit_start(s))
            return;                  /* do not touch c again: the committer re-arms it */
        action = session_process(s); /* could not commit: 451 sent, carry on */
    }

    /* Only a message on its way in (data being read, or being committed) may delay a
     * drain; a session idle between commands is told 421 at once. */
    atomic_store(&c->in_message, s->state == SESSION_DATA || s->state == SESSION_COMMIT_WAIT);
    atomic_store(&c->deadline_ms, conn_deadline(c));

    if (action == SESSION_CLOSE) {
        conn_handle_closing_flush(c);
        return;
    }
    if (!conn_flush(c)) {
        session_lost(s, "write failed");
        conn_close(c);
        return;
    }
    conn_arm(c, s->out.len ? EPOLLOUT : EPOLLIN);
}

void *worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct epoll_event ev;
        int n = epoll_wait(srv.worker_epoll, &ev, 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_write(LOG_PANIC, NULL, "worker epoll_wait: %s", strerror(errno));
            break;
        }
        if (n == 0)
            continue;
        int kind = *(int *)ev.data.ptr;
        if (kind == KIND_WAKEUP)
            break;
        struct conn *c = ev.data.ptr;
        atomic_load_explicit(&c->handoff, memory_order_acquire); /* take ownership */
        if (c->s->state == SESSION_CLOSING && !c->delayed)
            conn_handle_closing_flush(c);
        else
            conn_handle(c);
    }
    snapshot_thread_done();
    return NULL;
}

/* Hand a connection to the worker pool: it becomes a session; a worker runs its start. */
void conn_hand_off(struct conn *c, const struct proxy_result *pr, bool proxy_required,
                   const char *proxy_error)
{
    c->s = session_new(c->cfg, &conn_session_ops, c->peer_ip, c->peer_port, c->local_ip,
                       c->local_port);
    c->s->transport = c;
    if (proxy_required) {
        if (pr) {
            bool local =
                pr->local || pr->family == PROXY_FAMILY_UNSPEC || pr->family == PROXY_FAMILY_UNIX;
            session_set_proxy(c->s, true, true, local, pr->src_addr, pr->src_port, pr->dst_addr,
                              pr->dst_port, NULL);
        } else {
            session_set_proxy(c->s, true, false, false, NULL, 0, NULL, 0, proxy_error);
            log_write(LOG_MAIN, NULL, "proxy negotiation failed from [%s]:%d: %s", c->peer_ip,
                      c->peer_port, proxy_error ? proxy_error : "unknown");
        }
    }
    int64_t timeout = c->cfg->smtp_receive_timeout * 1000;
    atomic_store(&c->deadline_ms, timeout > 0 ? time_mono_ms() + timeout : 0);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
    atomic_fetch_add_explicit(&c->handoff, 1, memory_order_release);
    if (epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        log_write(LOG_PANIC, NULL, "epoll_ctl add: %s", strerror(errno));
        conn_close(c);
    }
}
