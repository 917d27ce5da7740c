/*
 * server.c - the running daemon: listening sockets, the acceptor thread (connection
 * limits, the PROXY header for proxy_required_hosts), a fixed pool of worker threads on
 * one shared epoll with EPOLLONESHOT, and the main thread's signal loop (SIGHUP reload,
 * SIGTERM drain, idle timeouts).
 *
 * Who owns a connection (struct conn): the acceptor from accept() until the hand-off;
 * then whichever worker took its epoll event, until that worker re-arms it; while a
 * message commit is in flight, the spool committer, which re-arms it when done. Only the
 * owner reads or writes the session. The main thread never touches a session: to time
 * one out or drain it, it sets conn->kick and shuts down the socket's read side under
 * the registry lock, which makes the owner (or the next worker) see EOF and act.
 */
#include "daemon.h"

#include "postern/deliver.h"
#include "postern/expand.h"
#include "postern/log.h"
#include "postern/proxy.h"
#include "postern/session.h"
#include "postern/snapshot.h"
#include "postern/spool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LISTENERS 32
#define READ_CHUNK 65536
#define READS_PER_TURN 16 /* fairness: at most this many chunks per event */
#define PROXY_PEEK_SMALL 1024

enum endpoint_kind { KIND_LISTENER = 1, KIND_CONN, KIND_WAKEUP };
enum kick_reason { KICK_NONE = 0, KICK_TIMEOUT, KICK_SHUTDOWN };

struct listener {
    int kind; /* KIND_LISTENER; must be first */
    int fd;
    char addr[64];
    int port;
};

struct conn {
    int kind; /* KIND_CONN; must be first */
    int fd;
    struct session *s;
    const struct config *cfg; /* referenced until the session takes it */
    char peer_ip[64];
    int peer_port;
    char local_ip[64];
    int local_port;
    bool started;
    int64_t proxy_deadline_ms;
    struct conn *prev, *next; /* registry, under registry_lock */
    struct conn *pending_next; /* acceptor's PROXY wait list (acceptor only) */
    int64_t timeout_ms; /* smtp_receive_timeout of its config, set before registration */
    _Atomic int64_t last_activity_ms;
    _Atomic int kick;
    _Atomic bool in_message;
};

struct host_count {
    char ip[64];
    int count;
    struct host_count *next;
};

#define HOST_BUCKETS 1024

static struct {
    const struct server_options *opts;
    struct listener listeners[MAX_LISTENERS];
    int listener_count;
    int acceptor_epoll;
    int worker_epoll;
    int acceptor_wakeup_fd; /* eventfd: written once to stop the acceptor */
    int worker_wakeup_fd;   /* eventfd: written once, after draining, to stop all workers */
    struct listener wakeup_endpoint;
    pthread_t acceptor;
    pthread_t *workers;
    int worker_count;
    _Atomic bool stopping;
    _Atomic int live;
    pthread_mutex_t registry_lock;
    struct conn *registry;
    struct host_count *hosts[HOST_BUCKETS];
    struct conn *proxy_wait_head, *proxy_wait_tail; /* acceptor only */
} srv = {.registry_lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------------ */
/* registry and per-host counts (registry_lock)                        */
/* ------------------------------------------------------------------ */

static unsigned host_hash(const char *ip)
{
    unsigned h = 2166136261u;
    for (; *ip; ip++)
        h = (h ^ (unsigned char)*ip) * 16777619u;
    return h % HOST_BUCKETS;
}

/* Count a new connection from ip; returns the number including this one. */
static int host_count_add(const char *ip, int delta)
{
    unsigned b = host_hash(ip);
    struct host_count **pp = &srv.hosts[b];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->ip, ip) == 0)
            break;
    if (!*pp) {
        if (delta <= 0)
            return 0;
        struct host_count *h = calloc(1, sizeof *h);
        if (!h)
            die("out of memory counting hosts");
        strlcpy_p(h->ip, ip, sizeof h->ip);
        *pp = h;
    }
    struct host_count *h = *pp;
    h->count += delta;
    int n = h->count;
    if (n <= 0) {
        *pp = h->next;
        free(h);
    }
    return n;
}

static void registry_add(struct conn *c)
{
    pthread_mutex_lock(&srv.registry_lock);
    c->prev = NULL;
    c->next = srv.registry;
    if (srv.registry)
        srv.registry->prev = c;
    srv.registry = c;
    pthread_mutex_unlock(&srv.registry_lock);
}

/* Remove, close and free a connection (its owner only). */
static void conn_close(struct conn *c)
{
    pthread_mutex_lock(&srv.registry_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv.registry = c->next;
    if (c->next)
        c->next->prev = c->prev;
    host_count_add(c->peer_ip, -1);
    close(c->fd);
    pthread_mutex_unlock(&srv.registry_lock);
    if (c->s)
        session_free(c->s);
    snapshot_put(c->cfg); /* the reference taken at accept, held for the session's life */
    free(c);
    atomic_fetch_sub(&srv.live, 1);
}

/* Main thread: time out idle sessions; when draining, notify the idle ones. */
static void registry_sweep(int64_t now, bool draining, bool force)
{
    pthread_mutex_lock(&srv.registry_lock);
    for (struct conn *c = srv.registry; c; c = c->next) {
        if (atomic_load(&c->kick) != KICK_NONE)
            continue;
        int64_t timeout_ms = c->timeout_ms;
        int reason = KICK_NONE;
        if (draining && (force || !atomic_load(&c->in_message)))
            reason = KICK_SHUTDOWN;
        else if (timeout_ms > 0 && now - atomic_load(&c->last_activity_ms) > timeout_ms)
            reason = KICK_TIMEOUT;
        if (reason != KICK_NONE) {
            atomic_store(&c->kick, reason);
            shutdown(c->fd, SHUT_RD); /* the owner sees EOF and looks at kick */
        }
    }
    pthread_mutex_unlock(&srv.registry_lock);
}

/* ------------------------------------------------------------------ */
/* listeners                                                           */
/* ------------------------------------------------------------------ */

static bool listener_open(const char *addr, int port, char *err, size_t errlen)
{
    if (srv.listener_count >= MAX_LISTENERS) {
        snprintf(err, errlen, "too many listening sockets");
        return false;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int family;
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, addr, &a6->sin6_addr) != 1)
            goto bad;
        len = sizeof *a6;
        family = AF_INET6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &a4->sin_addr) != 1)
            goto bad;
        len = sizeof *a4;
        family = AF_INET;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    const struct config *cfg = snapshot_get();
    int backlog = cfg && cfg->smtp_connect_backlog > 0 ? cfg->smtp_connect_backlog : 1024;
    snapshot_put(cfg);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
        snprintf(err, errlen, "cannot listen on [%s]:%d: %s", addr, port, strerror(errno));
        close(fd);
        return false;
    }
    struct listener *l = &srv.listeners[srv.listener_count++];
    l->kind = KIND_LISTENER;
    l->fd = fd;
    strlcpy_p(l->addr, addr, sizeof l->addr);
    l->port = port;
    return true;
bad:
    snprintf(err, errlen, "bad listening address \"%s\"", addr);
    return false;
}

/* An interface item may carry its own port: "127.0.0.1.2525" or "::1.2525". */
static void split_interface(const char *item, char *addr, size_t addrlen, int *port)
{
    *port = 0;
    strlcpy_p(addr, item, addrlen);
    char *dot = strrchr(addr, '.');
    if (!dot)
        return;
    int dots = 0;
    for (char *p = addr; *p; p++)
        dots += *p == '.';
    bool v6 = strchr(addr, ':') != NULL;
    if ((v6 && dots >= 1) || (!v6 && dots == 4)) {
        *port = atoi(dot + 1);
        *dot = '\0';
    }
}

static bool listeners_open_all(const struct config *cfg, char *err, size_t errlen)
{
    struct arena arena;
    arena_init(&arena, 4096);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, cfg, NULL, NULL);
    const char *ifaces = NULL, *ports = NULL, *xerr = NULL;
    const char *port_src = srv.opts->port_override ? srv.opts->port_override
                                                   : (cfg->daemon_smtp_ports ? cfg->daemon_smtp_ports
                                                                             : "25");
    bool ok = false;
    if (expand_string(&ctx, cfg->local_interfaces ? cfg->local_interfaces : "<; 0.0.0.0 ; ::",
                      &ifaces, &xerr) != EXPAND_OK ||
        expand_string(&ctx, port_src, &ports, &xerr) != EXPAND_OK) {
        snprintf(err, errlen, "expanding local_interfaces/daemon_smtp_ports: %s", xerr);
        goto out;
    }
    const char **iface_items, **port_items;
    int ni = list_split(&arena, ifaces, &iface_items);
    int np = list_split(&arena, ports, &port_items);
    for (int i = 0; i < ni; i++) {
        char addr[64];
        int own_port;
        split_interface(iface_items[i], addr, sizeof addr, &own_port);
        if (own_port && !srv.opts->port_override) {
            if (!listener_open(addr, own_port, err, errlen))
                goto out;
            continue;
        }
        for (int p = 0; p < np; p++) {
            int port = atoi(port_items[p]);
            if (port <= 0 || port > 65535) {
                snprintf(err, errlen, "bad port \"%s\"", port_items[p]);
                goto out;
            }
            if (!listener_open(addr, port, err, errlen))
                goto out;
        }
    }
    ok = srv.listener_count > 0;
    if (!ok)
        snprintf(err, errlen, "no listening sockets configured");
out:
    arena_reset(&arena);
    return ok;
}

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
    struct epoll_event ev = {.events = events | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(srv.worker_epoll, EPOLL_CTL_MOD, c->fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, c->fd, &ev);
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
    /* Only a message on its way in (data being read, or being committed) may delay a
     * drain; a session idle between commands is told 421 at once. */
    atomic_store(&c->in_message, s->state == SESSION_DATA || s->state == SESSION_COMMIT_WAIT);

    if (!conn_flush(c)) {
        if (action != SESSION_CLOSE)
            session_lost(s, "write failed");
        conn_close(c);
        return;
    }
    if (action == SESSION_WAIT_COMMIT)
        return; /* the committer owns the hand-back now: do not touch c again */
    if (action == SESSION_CLOSE) {
        if (s->out.len == 0) {
            conn_close(c);
            return;
        }
        conn_arm(c, EPOLLOUT); /* finish sending the last replies */
        return;
    }
    conn_arm(c, s->out.len ? EPOLLOUT : EPOLLIN);
}

static void conn_handle_closing_flush(struct conn *c)
{
    if (!conn_flush(c) || c->s->out.len == 0) {
        conn_close(c);
        return;
    }
    conn_arm(c, EPOLLOUT);
}

static void *worker_main(void *arg)
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
        if (c->s->state == SESSION_CLOSING)
            conn_handle_closing_flush(c);
        else
            conn_handle(c);
    }
    snapshot_thread_done();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* acceptor                                                            */
/* ------------------------------------------------------------------ */

static void sockaddr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
            inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], ip, (socklen_t)iplen);
        else
            inet_ntop(AF_INET6, &a6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(a6->sin6_port);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a4->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(a4->sin_port);
    }
}

/* Hand a connection to the worker pool: it becomes a session; a worker runs its start. */
static void conn_hand_off(struct conn *c, const struct proxy_result *pr, bool proxy_required,
                          const char *proxy_error)
{
    c->s = session_new(c->cfg, &conn_session_ops, c->peer_ip, c->peer_port, c->local_ip,
                       c->local_port);
    c->s->transport = c;
    if (proxy_required) {
        if (pr) {
            bool local = pr->local || pr->family == PROXY_FAMILY_UNSPEC ||
                         pr->family == PROXY_FAMILY_UNIX;
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
    if (epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        log_write(LOG_PANIC, NULL, "epoll_ctl add: %s", strerror(errno));
        conn_close(c);
    }
}

/* Try to read the PROXY header: true when the connection left the PROXY stage. */
static bool proxy_try(struct conn *c)
{
    uint8_t small[PROXY_PEEK_SMALL];
    uint8_t *peek = small;
    size_t cap = sizeof small;
    struct proxy_result pr;
    for (;;) {
        ssize_t n = recv(c->fd, peek, cap, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (peek != small)
                free(peek);
            return false;
        }
        if (n <= 0) {
            if (peek != small)
                free(peek);
            conn_close(c); /* the proxy went away before sending a header */
            return true;
        }
        enum proxy_status st = proxy_parse(peek, (size_t)n, &pr);
        if (st == PROXY_NEED_MORE && (size_t)n == cap && cap < PROXY_V2_MAX_LEN) {
            /* a large v2 header: peek again with room for the biggest one */
            if (peek != small)
                free(peek);
            cap = PROXY_V2_MAX_LEN;
            peek = malloc(cap);
            if (!peek)
                die("out of memory reading a PROXY header");
            continue;
        }
        if (peek != small)
            free(peek);
        if (st == PROXY_NEED_MORE)
            return false;
        if (st == PROXY_ERROR) {
            conn_hand_off(c, NULL, true, pr.reason);
            return true;
        }
        /* Consume exactly the header: what follows stays in the socket for the session. */
        size_t left = pr.consumed;
        uint8_t sink[4096];
        while (left > 0) {
            ssize_t r = recv(c->fd, sink, left < sizeof sink ? left : sizeof sink, MSG_DONTWAIT);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                conn_close(c);
                return true;
            }
            left -= (size_t)r;
        }
        conn_hand_off(c, &pr, true, NULL);
        return true;
    }
}

static void proxy_wait_remove(struct conn *c)
{
    struct conn **pp = &srv.proxy_wait_head;
    struct conn *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->pending_next) {
        if (*pp == c) {
            *pp = c->pending_next;
            if (srv.proxy_wait_tail == c)
                srv.proxy_wait_tail = prev;
            return;
        }
    }
}

static void proxy_stage_event(struct conn *c)
{
    /* Keep it in the acceptor's epoll until it leaves the stage. */
    int fd = c->fd;
    proxy_wait_remove(c);
    epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_DEL, fd, NULL);
    if (proxy_try(c))
        return;
    /* still incomplete: back into the wait list, same deadline */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_ADD, fd, &ev);
    c->pending_next = NULL;
    /* re-insert keeping deadline order */
    struct conn **pp = &srv.proxy_wait_head;
    struct conn *prev = NULL;
    while (*pp && (*pp)->proxy_deadline_ms <= c->proxy_deadline_ms) {
        prev = *pp;
        pp = &(*pp)->pending_next;
    }
    c->pending_next = *pp;
    *pp = c;
    if (!c->pending_next)
        srv.proxy_wait_tail = c;
    (void)prev;
}

static void proxy_expire(int64_t now)
{
    while (srv.proxy_wait_head && srv.proxy_wait_head->proxy_deadline_ms <= now) {
        struct conn *c = srv.proxy_wait_head;
        srv.proxy_wait_head = c->pending_next;
        if (!srv.proxy_wait_head)
            srv.proxy_wait_tail = NULL;
        epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_DEL, c->fd, NULL);
        conn_hand_off(c, NULL, true, "timeout waiting for the PROXY header");
    }
}

static bool host_in_list(const struct config *cfg, const char *list, const char *ip)
{
    if (!list || !list[0])
        return false;
    struct arena arena;
    arena_init(&arena, 2048);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, cfg, NULL, NULL);
    const char *err = NULL;
    enum match_result m = list_match_host(&ctx, list, ip, NULL, &err);
    if (m == MATCH_ERROR || m == MATCH_DEFER)
        log_write(LOG_MAIN | LOG_PANIC, NULL, "checking [%s] against \"%s\": %s", ip, list,
                  err ? err : "lookup deferred");
    arena_reset(&arena);
    /* A list that cannot be checked counts as a match: such a host must then prove itself
     * with a PROXY header rather than be trusted as a direct client. */
    return m != MATCH_NO;
}

static int per_host_limit(const struct config *cfg)
{
    if (!cfg->smtp_accept_max_per_host || !cfg->smtp_accept_max_per_host[0])
        return 0;
    struct arena arena;
    arena_init(&arena, 1024);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, cfg, NULL, NULL);
    const char *out = NULL, *err = NULL;
    int limit = 0;
    if (expand_string(&ctx, cfg->smtp_accept_max_per_host, &out, &err) == EXPAND_OK)
        limit = atoi(out);
    arena_reset(&arena);
    return limit;
}

static void refuse(int fd, const char *hostname, const char *text)
{
    char line[512];
    int n = snprintf(line, sizeof line, "421 %s %s\r\n", hostname, text);
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* nothing more to do: the client is gone */
    }
    close(fd);
}

static void accept_one(struct listener *l)
{
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_write(LOG_MAIN | LOG_PANIC, NULL, "accept: %s", strerror(errno));
        if (errno == EMFILE || errno == ENFILE)
            usleep(10000);
        return;
    }
    const struct config *cfg = snapshot_get();
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory accepting a connection");
    c->kind = KIND_CONN;
    c->fd = fd;
    c->cfg = cfg;
    sockaddr_text(&peer, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
    getsockname(fd, (struct sockaddr *)&local, &llen);
    sockaddr_text(&local, c->local_ip, sizeof c->local_ip, &c->local_port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    /* Limits count real peers, before any PROXY header (as the seed says). */
    int live = atomic_load(&srv.live);
    if (cfg->smtp_accept_max > 0 && live >= cfg->smtp_accept_max) {
        log_write(LOG_MAIN, NULL, "Connection from [%s] refused: too many connections",
                  c->peer_ip);
        refuse(fd, cfg->primary_hostname,
               "Too many concurrent SMTP connections; please try again later.");
        snapshot_put(cfg);
        free(c);
        return;
    }
    int per_host = per_host_limit(cfg);
    pthread_mutex_lock(&srv.registry_lock);
    int from_host = host_count_add(c->peer_ip, 1);
    if (per_host > 0 && from_host > per_host) {
        host_count_add(c->peer_ip, -1);
        pthread_mutex_unlock(&srv.registry_lock);
        log_write(LOG_MAIN, NULL, "Connection from [%s] refused: too many connections from that IP address",
                  c->peer_ip);
        refuse(fd, cfg->primary_hostname,
               "Too many concurrent SMTP connections from this IP address; please try again "
               "later.");
        snapshot_put(cfg);
        free(c);
        return;
    }
    pthread_mutex_unlock(&srv.registry_lock);
    atomic_fetch_add(&srv.live, 1);
    c->timeout_ms = cfg->smtp_receive_timeout * 1000;
    atomic_store(&c->last_activity_ms, time_mono_ms());
    registry_add(c);

    if (host_in_list(cfg, cfg->proxy_required_hosts, c->peer_ip)) {
        c->proxy_deadline_ms = time_mono_ms() + cfg->proxy_protocol_timeout * 1000;
        c->pending_next = NULL;
        if (srv.proxy_wait_tail)
            srv.proxy_wait_tail->pending_next = c;
        else
            srv.proxy_wait_head = c;
        srv.proxy_wait_tail = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_ADD, fd, &ev);
        /* the header may already be here */
        proxy_stage_event(c);
        return;
    }
    conn_hand_off(c, NULL, false, NULL);
}

static void *acceptor_main(void *arg)
{
    (void)arg;
    struct epoll_event events[64];
    for (;;) {
        int timeout = -1;
        if (srv.proxy_wait_head) {
            int64_t wait = srv.proxy_wait_head->proxy_deadline_ms - time_mono_ms();
            timeout = wait < 0 ? 0 : (int)wait;
        }
        int n = epoll_wait(srv.acceptor_epoll, events, 64, timeout);
        if (n < 0 && errno != EINTR) {
            log_write(LOG_PANIC, NULL, "acceptor epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            int kind = *(int *)events[i].data.ptr;
            if (kind == KIND_WAKEUP)
                goto done;
            if (kind == KIND_LISTENER) {
                struct listener *l = events[i].data.ptr;
                for (int k = 0; k < 64; k++)
                    accept_one(l);
            } else {
                proxy_stage_event(events[i].data.ptr);
            }
        }
        proxy_expire(time_mono_ms());
    }
done:
    /* connections still waiting for a header are dropped */
    while (srv.proxy_wait_head) {
        struct conn *c = srv.proxy_wait_head;
        srv.proxy_wait_head = c->pending_next;
        conn_close(c);
    }
    for (int i = 0; i < srv.listener_count; i++)
        close(srv.listeners[i].fd);
    snapshot_thread_done();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* main thread: start, signals, reload, drain                          */
/* ------------------------------------------------------------------ */

static const struct config *deliver_get(void)
{
    return snapshot_get();
}

static const struct deliver_config_source deliver_source = {.get = deliver_get,
                                                             .put = snapshot_put};

static void reload(void)
{
    char err[1024];
    struct config *cfg = config_load(srv.opts->config_path, srv.opts->macros, err, sizeof err);
    if (!cfg) {
        log_write(LOG_MAIN | LOG_PANIC, NULL, "SIGHUP: new configuration refused, keeping the old one: %s",
                  err);
        return;
    }
    char lerr[512];
    if (!log_configure(cfg->log_file_path, lerr, sizeof lerr))
        log_write(LOG_MAIN | LOG_PANIC, NULL, "SIGHUP: log files: %s", lerr);
    snapshot_publish(cfg);
    log_write(LOG_MAIN, NULL, "SIGHUP received: configuration reloaded from %s",
              srv.opts->config_path ? srv.opts->config_path : "<embedded>");
}

static int worker_count(const struct config *cfg)
{
    if (cfg->smtp_worker_threads > 0)
        return cfg->smtp_worker_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return (int)(cpus > 0 ? cpus : 1) * 4;
}

static bool start_threads(const struct config *cfg, char *err, size_t errlen)
{
    srv.acceptor_epoll = epoll_create1(EPOLL_CLOEXEC);
    srv.worker_epoll = epoll_create1(EPOLL_CLOEXEC);
    srv.acceptor_wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    srv.worker_wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv.acceptor_epoll < 0 || srv.worker_epoll < 0 || srv.acceptor_wakeup_fd < 0 ||
        srv.worker_wakeup_fd < 0) {
        snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
        return false;
    }
    srv.wakeup_endpoint.kind = KIND_WAKEUP;
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &srv.wakeup_endpoint};
    epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_ADD, srv.acceptor_wakeup_fd, &wev);
    epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, srv.worker_wakeup_fd, &wev); /* level: wakes all */
    for (int i = 0; i < srv.listener_count; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv.listeners[i]};
        epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_ADD, srv.listeners[i].fd, &ev);
    }
    srv.worker_count = worker_count(cfg);
    srv.workers = calloc((size_t)srv.worker_count, sizeof *srv.workers);
    if (!srv.workers)
        die("out of memory");
    for (int i = 0; i < srv.worker_count; i++)
        if (pthread_create(&srv.workers[i], NULL, worker_main, NULL) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            return false;
        }
    if (pthread_create(&srv.acceptor, NULL, acceptor_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the acceptor thread");
        return false;
    }
    return true;
}

static void write_pid_file(const char *path)
{
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
}

/* Stop accepting, tell idle sessions, give busy ones time to finish, then stop. */
static void drain_and_stop(void)
{
    uint64_t one = 1;
    atomic_store(&srv.stopping, true);
    /* stop the acceptor first: no new connections */
    if (write(srv.acceptor_wakeup_fd, &one, sizeof one) < 0)
        log_write(LOG_PANIC, NULL, "wakeup: %s", strerror(errno));
    pthread_join(srv.acceptor, NULL);
    int64_t start = time_mono_ms();
    while (atomic_load(&srv.live) > 0) {
        int64_t elapsed = time_mono_ms() - start;
        registry_sweep(time_mono_ms(), true, elapsed > 5000);
        if (elapsed > 8000)
            break;
        usleep(20000);
    }
    /* the wakeup eventfd is level-triggered and stays readable: every worker exits */
    if (write(srv.worker_wakeup_fd, &one, sizeof one) < 0)
        log_write(LOG_PANIC, NULL, "wakeup: %s", strerror(errno));
    for (int i = 0; i < srv.worker_count; i++)
        pthread_join(srv.workers[i], NULL);
    free(srv.workers);
}

int server_run(const struct server_options *opts)
{
    char err[1024];
    srv.opts = opts;
    const struct config *cfg = snapshot_get();
    if (!listeners_open_all(cfg, err, sizeof err)) {
        fprintf(stderr, "postern: %s\n", err);
        log_write(LOG_MAIN | LOG_PANIC, NULL, "%s", err);
        snapshot_put(cfg);
        return 1;
    }
    if (!opts->foreground) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid > 0)
            _exit(0);
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            close(devnull);
        }
    }
    write_pid_file(opts->pid_file);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);

    if (!spool_init(cfg->spool_directory, cfg->spool_commit_max_batch, err, sizeof err)) {
        fprintf(stderr, "postern: spool: %s\n", err);
        log_write(LOG_MAIN | LOG_PANIC, NULL, "spool: %s", err);
        snapshot_put(cfg);
        return 1;
    }
    if (!deliver_start(&deliver_source, cfg->queue_run_max > 0 ? cfg->queue_run_max : 1,
                       opts->queue_interval, err, sizeof err) ||
        !start_threads(cfg, err, sizeof err)) {
        fprintf(stderr, "postern: %s\n", err);
        log_write(LOG_MAIN | LOG_PANIC, NULL, "%s", err);
        snapshot_put(cfg);
        return 1;
    }
    /* Whatever is already spooled (from before a restart) is delivered now. */
    if (opts->queue_interval <= 0) {
        struct arena arena;
        arena_init(&arena, 4096);
        const char **ids;
        int n = spool_list_ids(&arena, &ids);
        for (int i = 0; i < n; i++)
            deliver_enqueue(ids[i]);
        arena_reset(&arena);
    }
    struct buf ports;
    buf_init(&ports);
    for (int i = 0; i < srv.listener_count; i++)
        buf_printf(&ports, "%s[%s]:%d", i ? " " : "", srv.listeners[i].addr,
                   srv.listeners[i].port);
    log_write(LOG_MAIN, NULL, "postern %s daemon started: pid=%d, %d worker threads, listening for SMTP on %s",
              POSTERN_VERSION, (int)getpid(), srv.worker_count, ports.data);
    buf_free(&ports);
    snapshot_put(cfg);

    for (;;) {
        struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGHUP) {
            reload();
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_write(LOG_MAIN, NULL, "pid %d: SIG%s received: daemon terminating",
                      (int)getpid(), sig == SIGTERM ? "TERM" : "INT");
            break;
        }
        registry_sweep(time_mono_ms(), false, false);
    }
    drain_and_stop();
    deliver_stop();
    spool_shutdown();
    if (opts->pid_file)
        unlink(opts->pid_file);
    return 0;
}
