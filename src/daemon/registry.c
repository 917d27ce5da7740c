/*
 * registry.c - the live connections of the daemon: a list for timeouts and draining, and
 * per-host counts for smtp_accept_max_per_host, both under srv.registry_lock. The
 * main thread sweeps it once a second; it never touches a session, it only "kicks" a
 * connection whose deadline (conn->deadline_ms, set by its owner) has passed
 * (conn->kick + shutdown(SHUT_RD)) so that its owner answers 421. Called by the acceptor
 * (add), the owner of a connection (close) and the main thread (sweep).
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

/* ------------------------------------------------------------------ */
/* registry and per-host counts (registry_lock)                        */
/* ------------------------------------------------------------------ */

static unsigned host_hash(const char *ip)
{
    return hash_fnv1a32(ip) % HOST_BUCKETS;
}

/* Count a new connection from ip; returns the number including this one. */
int host_count_add(const char *ip, int delta)
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

void registry_add(struct conn *c)
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
void conn_close(struct conn *c)
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

/* A kicked connection whose owner has not closed it after this long (a client that reads
 * none of our replies keeps its 421 unsent) has its write side shut too: the owner's next
 * send fails and it closes. */
#define KICK_GRACE_MS 10000

/* Main thread: time out sessions past their deadline (conn_deadline in worker.c); when
 * draining, notify the idle ones. */
void registry_sweep(int64_t now, bool draining, bool force)
{
    pthread_mutex_lock(&srv.registry_lock);
    for (struct conn *c = srv.registry; c; c = c->next) {
        if (atomic_load(&c->kick) != KICK_NONE) {
            if (c->kicked_ms && now - c->kicked_ms > KICK_GRACE_MS) {
                shutdown(c->fd, SHUT_RDWR);
                c->kicked_ms = 0;
            }
            continue;
        }
        int64_t deadline = atomic_load(&c->deadline_ms);
        int reason = KICK_NONE;
        if (draining && (force || !atomic_load(&c->in_message)))
            reason = KICK_SHUTDOWN;
        else if (deadline > 0 && now >= deadline)
            reason = KICK_TIMEOUT;
        if (reason != KICK_NONE) {
            atomic_store(&c->kick, reason);
            c->kicked_ms = now;
            shutdown(c->fd, SHUT_RD); /* the owner sees EOF and looks at kick */
        }
    }
    pthread_mutex_unlock(&srv.registry_lock);
}
