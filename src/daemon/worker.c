/*
 * worker.c - the worker pool: threads sharing one epoll with EPOLLONESHOT. A worker
 * owns a connection from the moment it takes its event until it re-arms it: it reads
 * what is there (bounded per turn), runs the session, writes the replies, and re-arms
 * (or lets the spool committer re-arm after a commit).
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

static void conn_arm(struct conn *c, uint32_t events)
{
    int fd = c->fd; /* after the release below, c belongs to whoever takes the event */
    struct epoll_event ev = {.events = events | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
    atomic_fetch_add_explicit(&c->handoff, 1, memory_order_release);
    if (epoll_ctl(srv.worker_epoll, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, fd, &ev);
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

/* Write as much of s->out as the socket takes; false on a hard error. */
static bool conn_flush(struct conn *c)
{
    struct buf *out = &c->s->out;
    size_t done = 0;
    while (done < out->len) {
        ssize_t n = send(c->fd, out->data + done, out->len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        buf_consume(out, done);
        return false;
    }
    buf_consume(out, done);
    return true;
}

/* Read what the client has sent (bounded per turn); returns 1 data (3: data, and the
 * socket had no more: a short read), 0 EOF, -1 error, 2 nothing available. */
static int conn_read(struct conn *c)
{
    struct buf *in = &c->s->in;
    buf_reserve(in, READ_CHUNK);
    ssize_t n = recv(c->fd, in->data + in->len, READ_CHUNK, 0);
    if (n > 0) {
        in->len += (size_t)n;
        in->data[in->len] = '\0';
        atomic_store_explicit(&c->last_activity_ms, time_mono_ms(), memory_order_relaxed);
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

static void conn_handle(struct conn *c)
{
    struct session *s = c->s;
    enum session_action action = SESSION_CONTINUE;

    if (!c->started) {
        c->started = true;
        action = session_start(s);
    } else if (s->state == SESSION_COMMIT_WAIT) {
        action = session_commit_resume(s);
    }

    /* Read and process until the socket is drained, the session waits for the spool, or
     * this turn has had its share. */
    bool eof = false;
    for (int turn = 0; action == SESSION_CONTINUE && turn < READS_PER_TURN; turn++) {
        if (s->out.len > 256 * 1024)
            break; /* the client is not reading its replies: flush first */
        int r = conn_read(c);
        if (r == 2)
            break;
        if (r <= 0) {
            eof = true;
            break;
        }
        action = session_process(s);
        if (r == 3)
            break; /* a short read drained the socket: re-arming reports anything newer */
    }

    if (eof && action == SESSION_CONTINUE) {
        int kick = atomic_load(&c->kick);
        if (kick == KICK_TIMEOUT)
            action = session_timeout(s);
        else if (kick == KICK_SHUTDOWN)
            action = session_shutdown_notice(s);
        else {
            session_lost(s, NULL);
            action = SESSION_CLOSE;
            buf_clear(&s->out);
        }
    }
    /* A finished message goes to the committer only once the replies before it are out:
     * after session_commit_start the session is the committer's, not ours. */
    while (action == SESSION_WAIT_COMMIT) {
        atomic_store(&c->in_message, true);
        if (!conn_flush(c)) {
            session_lost(s, "write failed");
            conn_close(c);
            return;
        }
        if (session_commit_start(s))
            return; /* do not touch c again: the committer re-arms it */
        action = session_process(s); /* could not commit: 451 sent, carry on */
    }

    /* Only a message on its way in (data being read, or being committed) may delay a
     * drain; a session idle between commands is told 421 at once. */
    atomic_store(&c->in_message, s->state == SESSION_DATA || s->state == SESSION_COMMIT_WAIT);

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
        if (c->s->state == SESSION_CLOSING)
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
    atomic_store(&c->last_activity_ms, time_mono_ms());
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
    atomic_fetch_add_explicit(&c->handoff, 1, memory_order_release);
    if (epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        log_write(LOG_PANIC, NULL, "epoll_ctl add: %s", strerror(errno));
        conn_close(c);
    }
}
