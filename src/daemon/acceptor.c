/*
 * acceptor.c - the listening sockets and the acceptor thread: accept4, connection limits
 * (421 when over), and for peers in proxy_required_hosts the PROXY stage on the
 * acceptor's own epoll (peek, proxy_parse, consume exactly the header, deadline
 * proxy_protocol_timeout; an incomplete header at the deadline is discarded), then the
 * hand-off to the worker pool. Out of descriptors, it pauses accepting (see nofd below).
 * Threads: listeners_open_all() runs in the main thread before the threads start; the rest
 * is the acceptor thread's.
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
#include "postern/expand.h"
#include "postern/vars.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>

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
    int backlog = cfg && cfg->smtp_connect_backlog > 0 ? cfg->smtp_connect_backlog : 4096;
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
    strlcpy_p(addr, item, addrlen);
    *port = ip_split_port(addr);
}

bool listeners_open_all(const struct config *cfg, char *err, size_t errlen)
{
    struct arena arena;
    arena_init(&arena, 4096);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, cfg, NULL, NULL);
    const char *ifaces = NULL, *ports = NULL, *xerr = NULL;
    const char *port_src = srv.opts->port_override
                               ? srv.opts->port_override
                               : (cfg->daemon_smtp_ports ? cfg->daemon_smtp_ports : "25");
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

/* The PROXY stage: connections waiting for their header, in the order they arrived
 * (acceptor only), each registered edge-triggered in the acceptor's epoll. */
static void proxy_stage_enter(struct conn *c, int64_t deadline_ms)
{
    c->proxy_deadline_ms = deadline_ms;
    c->pending_next = NULL;
    if (srv.proxy_wait_tail)
        srv.proxy_wait_tail->pending_next = c;
    else
        srv.proxy_wait_head = c;
    srv.proxy_wait_tail = c;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Before a connection is handed off or closed. */
static void proxy_stage_leave(struct conn *c)
{
    struct conn *prev = NULL;
    for (struct conn **pp = &srv.proxy_wait_head; *pp; prev = *pp, pp = &(*pp)->pending_next) {
        if (*pp == c) {
            *pp = c->pending_next;
            if (srv.proxy_wait_tail == c)
                srv.proxy_wait_tail = prev;
            break;
        }
    }
    epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Try to read the PROXY header; the connection stays in the stage until it is complete. */
static void proxy_try(struct conn *c)
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
            return;
        }
        if (n <= 0) {
            if (peek != small)
                free(peek);
            proxy_stage_leave(c);
            conn_close(c); /* the proxy went away before sending a header */
            return;
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
            return;
        proxy_stage_leave(c);
        /* Consume exactly the header: what follows stays in the socket for the session.
         * A malformed header is not SMTP either: drop the bytes it was judged on (the v2
         * signature even contains "QUIT\n"), then the session refuses what comes next. */
        size_t left = st == PROXY_ERROR ? (size_t)n : pr.consumed;
        uint8_t sink[4096];
        while (left > 0) {
            ssize_t r = recv(c->fd, sink, left < sizeof sink ? left : sizeof sink, MSG_DONTWAIT);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                conn_close(c);
                return;
            }
            left -= (size_t)r;
        }
        if (st == PROXY_ERROR)
            conn_hand_off(c, NULL, true, pr.reason);
        else
            conn_hand_off(c, &pr, true, NULL);
        return;
    }
}

/* Drop the bytes of a header that never completed: they are not SMTP (a v2 signature even
 * contains "QUIT\n"). Everything there belongs to the header, since it is incomplete; the
 * bound stops a peer that keeps sending from holding the acceptor. */
static void proxy_discard_partial(struct conn *c)
{
    uint8_t sink[4096];
    for (size_t total = 0; total < PROXY_V2_MAX_LEN + sizeof sink;) {
        ssize_t r = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        total += (size_t)r;
    }
}

static void proxy_expire(int64_t now)
{
    while (srv.proxy_wait_head && srv.proxy_wait_head->proxy_deadline_ms <= now) {
        struct conn *c = srv.proxy_wait_head;
        proxy_stage_leave(c);
        proxy_discard_partial(c);
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

/* smtp_accept_max_per_host may refer to the connecting host, as in Exim. */
static const char *accept_var(struct expand_ctx *ctx, const char *name)
{
    return var_table_get(&expand_peer_vars, ctx, name);
}

/* Unset, smtp_accept_max_per_host is this for direct clients (one host cannot take every
 * slot), and no limit for proxy hosts (a load balancer carries many clients). */
#define DEFAULT_ACCEPT_MAX_PER_HOST 100

static int per_host_limit(const struct config *cfg, const char *peer_ip, bool proxy_host)
{
    if (!cfg->smtp_accept_max_per_host)
        return proxy_host ? 0 : DEFAULT_ACCEPT_MAX_PER_HOST;
    if (!cfg->smtp_accept_max_per_host[0])
        return 0;
    struct arena arena;
    arena_init(&arena, 1024);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, cfg, accept_var, (void *)peer_ip);
    const char *out = NULL, *err = NULL;
    int limit = 0;
    if (expand_string(&ctx, cfg->smtp_accept_max_per_host, &out, &err) == EXPAND_OK)
        limit = atoi(out);
    else
        log_write(LOG_MAIN | LOG_PANIC, NULL, "expansion of smtp_accept_max_per_host failed: %s",
                  err ? err : "?");
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

/* Running out of descriptors (EMFILE/ENFILE): the listeners leave the acceptor's epoll
 * for ACCEPT_BACKOFF_MS (its epoll timeout brings them back) while PROXY-stage connections
 * keep being served and timed out. One log line when an episode starts and one with the
 * count when accepting works again, instead of one per failed accept4. Acceptor only. */
#define ACCEPT_BACKOFF_MS 100

static struct {
    bool active;       /* an episode is under way */
    bool paused;       /* the listeners are out of the epoll */
    int64_t resume_ms; /* when to put them back */
    int64_t started_ms;
    int64_t last_failure_ms;
    long failures; /* failed accept4 calls in this episode */
    int err;       /* the errno that started it */
} nofd;

static void listeners_watch(bool on)
{
    for (int i = 0; i < srv.listener_count; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv.listeners[i]};
        epoll_ctl(srv.acceptor_epoll, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, srv.listeners[i].fd, &ev);
    }
}

static void nofd_failed(int err)
{
    int64_t now = time_mono_ms();
    if (!nofd.active) {
        nofd.active = true;
        nofd.started_ms = now;
        nofd.failures = 0;
        nofd.err = err;
        log_write(LOG_MAIN | LOG_PANIC, NULL,
                  "accept: %s: not accepting for now (logged once until it clears)", strerror(err));
    }
    nofd.failures++;
    nofd.last_failure_ms = now;
    if (!nofd.paused)
        listeners_watch(false);
    nofd.paused = true;
    nofd.resume_ms = now + ACCEPT_BACKOFF_MS;
}

/* The episode is over when the listen queue is empty (everything waiting was accepted),
 * or accepts have worked for a while: one success between failures does not end it. */
#define NOFD_QUIET_MS 1000

static void nofd_cleared(bool queue_empty)
{
    if (!nofd.active || (!queue_empty && time_mono_ms() - nofd.last_failure_ms < NOFD_QUIET_MS))
        return;
    nofd.active = false;
    log_write(LOG_MAIN | LOG_PANIC, NULL,
              "accept: %s: cleared after %ld failed accepts in %.1fs; accepting again",
              strerror(nofd.err), nofd.failures, (double)(time_mono_ms() - nofd.started_ms) / 1000);
}

/* The acceptor's epoll timeout: the first PROXY deadline or the end of a back-off. */
static int acceptor_wait_ms(void)
{
    int64_t now = time_mono_ms(), until = -1;
    if (srv.proxy_wait_head)
        until = srv.proxy_wait_head->proxy_deadline_ms;
    if (nofd.paused && (until < 0 || nofd.resume_ms < until))
        until = nofd.resume_ms;
    if (until < 0)
        return -1;
    return until <= now ? 0 : (int)(until - now);
}

static void nofd_resume_due(void)
{
    if (nofd.paused && time_mono_ms() >= nofd.resume_ms) {
        nofd.paused = false;
        listeners_watch(true); /* level-triggered: a waiting connection reports at once */
    }
}

/* Limits count real peers, before any PROXY header (as the seed says). Returns false (and
 * has refused and freed c) when over a limit. */
static bool accept_within_limits(struct conn *c, bool proxy_host)
{
    const struct config *cfg = c->cfg;
    int live = atomic_load(&srv.live);
    const char *why = NULL, *text = NULL;
    if (cfg->smtp_accept_max > 0 && live >= cfg->smtp_accept_max) {
        why = "too many connections";
        text = "Too many concurrent SMTP connections; please try again later.";
    } else {
        int per_host = per_host_limit(cfg, c->peer_ip, proxy_host);
        pthread_mutex_lock(&srv.registry_lock);
        int from_host = host_count_add(c->peer_ip, 1);
        if (per_host > 0 && from_host > per_host) {
            host_count_add(c->peer_ip, -1);
            why = "too many connections from that IP address";
            text = "Too many concurrent SMTP connections from this IP address; please try "
                   "again later.";
        }
        pthread_mutex_unlock(&srv.registry_lock);
    }
    if (!why)
        return true;
    log_write(LOG_MAIN, NULL, "Connection from [%s] refused: %s", c->peer_ip, why);
    refuse(c->fd, cfg->primary_hostname, text);
    snapshot_put(cfg);
    free(c);
    return false;
}

enum accept_status { ACCEPT_DONE, ACCEPT_EMPTY, ACCEPT_NOFD };

static enum accept_status accept_one(struct listener *l)
{
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
            nofd_failed(errno);
            return ACCEPT_NOFD;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            nofd_cleared(true);
            return ACCEPT_EMPTY;
        }
        if (errno != EINTR && errno != ECONNABORTED)
            log_write(LOG_MAIN | LOG_PANIC, NULL, "accept: %s", strerror(errno));
        return ACCEPT_DONE; /* a transient error on one connection: try the next */
    }
    nofd_cleared(false);
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory accepting a connection");
    c->kind = KIND_CONN;
    c->fd = fd;
    c->cfg = snapshot_get();
    sockaddr_text(&peer, c->peer_ip, sizeof c->peer_ip, &c->peer_port);
    getsockname(fd, (struct sockaddr *)&local, &llen);
    sockaddr_text(&local, c->local_ip, sizeof c->local_ip, &c->local_port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    bool proxy_host = host_in_list(c->cfg, c->cfg->proxy_required_hosts, c->peer_ip);
    if (!accept_within_limits(c, proxy_host))
        return ACCEPT_DONE;
    atomic_fetch_add(&srv.live, 1);
    registry_add(c); /* no deadline yet: the PROXY stage has its own, the hand-off sets one */

    if (proxy_host) {
        proxy_stage_enter(c, time_mono_ms() + c->cfg->proxy_protocol_timeout * 1000);
        proxy_try(c); /* the header may already be here */
        return ACCEPT_DONE;
    }
    conn_hand_off(c, NULL, false, NULL);
    return ACCEPT_DONE;
}

/* Accept what is waiting on l, up to a batch: stop when the queue is empty or descriptors
 * ran out. */
static void accept_batch(struct listener *l)
{
    for (int k = 0; k < 64; k++)
        if (accept_one(l) != ACCEPT_DONE)
            return;
}

void *acceptor_main(void *arg)
{
    (void)arg;
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(srv.acceptor_epoll, events, 64, acceptor_wait_ms());
        if (n < 0 && errno != EINTR) {
            log_write(LOG_PANIC, NULL, "acceptor epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            int kind = *(int *)events[i].data.ptr;
            if (kind == KIND_WAKEUP)
                goto done;
            if (kind == KIND_LISTENER) {
                if (!nofd.paused) /* an event fetched before the listeners left the epoll */
                    accept_batch(events[i].data.ptr);
            } else {
                proxy_try(events[i].data.ptr);
            }
        }
        proxy_expire(time_mono_ms());
        nofd_resume_due();
    }
done:
    /* connections still waiting for a header are dropped */
    while (srv.proxy_wait_head) {
        struct conn *c = srv.proxy_wait_head;
        proxy_stage_leave(c);
        conn_close(c);
    }
    for (int i = 0; i < srv.listener_count; i++)
        close(srv.listeners[i].fd);
    snapshot_thread_done();
    return NULL;
}
