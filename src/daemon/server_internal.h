/*
 * server_internal.h - state shared by the files of the running daemon (server.c: start,
 * signals, drain; registry.c: live connections and limits; acceptor.c: listeners, accept
 * and the PROXY stage; worker.c: the worker pool). Private to src/daemon.
 *
 * Ownership of a struct conn is explained in server.c's header comment.
 */
#ifndef POSTERN_SERVER_INTERNAL_H
#define POSTERN_SERVER_INTERNAL_H

#include "daemon.h"

#include "postern/proxy.h"
#include "postern/session.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

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
    struct conn *prev, *next;  /* registry, under registry_lock */
    struct conn *pending_next; /* acceptor's PROXY wait list (acceptor only) */
    /* When the main thread's sweep times the connection out (monotonic ms; 0 = never):
     * written by the owner after each turn (the acceptor, a worker), read by the sweep. */
    _Atomic int64_t deadline_ms;
    int64_t kicked_ms; /* when the sweep kicked it (main thread only) */
    _Atomic int kick;
    /* "delay =" (worker.c, delay.c): the action the session returned, carried out when the
     * delay thread gives the connection back; owned by whoever owns the connection. */
    enum session_action delay_then;
    bool delayed;
    int64_t delay_until_ms;  /* the delay thread's copy of the deadline (under its lock) */
    size_t delay_heap_index; /* position in the delay thread's heap (under its lock) */
    /* Ownership hand-off through the epoll: the thread that arms the connection bumps it
     * (release) and the worker that takes the event reads it (acquire). epoll itself
     * orders the two, but this makes the hand-off visible to ThreadSanitizer and to the
     * C memory model, not only to the kernel. */
    _Atomic unsigned handoff;
    _Atomic bool in_message;
};

struct host_count {
    char ip[64];
    int count;
    struct host_count *next;
};

#define HOST_BUCKETS 1024

struct server_state {
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
};
extern struct server_state srv;

/* registry.c */
int host_count_add(const char *ip, int delta); /* under srv.registry_lock */
void registry_add(struct conn *c);
void conn_close(struct conn *c); /* the owner only: unregister, close, free */
void registry_sweep(int64_t now, bool draining, bool force);

/* acceptor.c */
bool listeners_open_all(const struct config *cfg, char *err, size_t errlen);
void *acceptor_main(void *arg);

/* delay.c: the delay thread (ACL "delay =") */
bool delay_thread_start(char *err, size_t errlen);
void delay_thread_stop(void);
/* A worker hands over a connection whose session waits until until_ms (or until the client
 * closes or the sweep kicks it); the delay thread then re-arms it in the worker epoll. */
void delay_enter(struct conn *c, int64_t until_ms);

/* worker.c */
void conn_arm(struct conn *c, uint32_t events);
int64_t conn_deadline(const struct conn *c);
void conn_hand_off(struct conn *c, const struct proxy_result *pr, bool proxy_required,
                   const char *proxy_error);
void *worker_main(void *arg);

#endif
