/*
 * delay.c - the delay thread: sessions whose ACL said "delay =" wait here, holding no
 * worker. It owns, while they wait, the connections handed to it by delay_enter(): a
 * min-heap of their deadlines (under delay.lock) and its own epoll, in which each waiting
 * socket is watched for EPOLLRDHUP (the client closed, or the main thread's sweep kicked
 * it with SHUT_RD), which ends the delay early, as Exim's poll(POLLRDHUP) does. When the
 * time is up (or on such an event) it re-arms the connection in the worker epoll, and the
 * worker that takes it carries on where the session stopped (worker.c).
 *
 * Threads: delay_enter() is called by workers; everything else runs in the delay thread,
 * started and stopped by server.c's main thread.
 */
#include "server_internal.h"

#include "postern/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct {
    pthread_t thread;
    int epoll;   /* waiting sockets (EPOLLRDHUP) and the wake-up eventfd */
    int wake_fd; /* eventfd: a new earliest deadline, or stop */
    struct listener wake_endpoint;
    pthread_mutex_t lock; /* the heap and stop */
    struct conn **heap;   /* min-heap on delay_until (malloc'd, grows) */
    size_t len, cap;
    bool stop;
} delay = {.lock = PTHREAD_MUTEX_INITIALIZER, .epoll = -1, .wake_fd = -1};

static int64_t conn_until(const struct conn *c)
{
    return c->delay_until_ms;
}

static void heap_set(size_t i, struct conn *c)
{
    delay.heap[i] = c;
    c->delay_heap_index = i;
}

static void heap_up(size_t i)
{
    struct conn *c = delay.heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (conn_until(delay.heap[parent]) <= conn_until(c))
            break;
        heap_set(i, delay.heap[parent]);
        i = parent;
    }
    heap_set(i, c);
}

static void heap_down(size_t i)
{
    struct conn *c = delay.heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= delay.len)
            break;
        if (child + 1 < delay.len &&
            conn_until(delay.heap[child + 1]) < conn_until(delay.heap[child]))
            child++;
        if (conn_until(c) <= conn_until(delay.heap[child]))
            break;
        heap_set(i, delay.heap[child]);
        i = child;
    }
    heap_set(i, c);
}

static void heap_remove(struct conn *c)
{
    size_t i = c->delay_heap_index;
    struct conn *last = delay.heap[--delay.len];
    if (i == delay.len)
        return;
    heap_set(i, last);
    heap_down(i);
    heap_up(last->delay_heap_index);
}

/* Worker: the session waits until until_ms; from now on the delay thread owns c. */
void delay_enter(struct conn *c, int64_t until_ms)
{
    pthread_mutex_lock(&delay.lock);
    c->delay_until_ms = until_ms;
    if (delay.len == delay.cap) {
        delay.cap = delay.cap ? delay.cap * 2 : 64;
        delay.heap = realloc(delay.heap, delay.cap * sizeof *delay.heap);
        if (!delay.heap)
            die("out of memory for the delay heap");
    }
    heap_set(delay.len++, c);
    heap_up(delay.len - 1);
    bool earliest = delay.heap[0] == c;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(delay.epoll, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        log_write(LOG_PANIC, NULL, "delay epoll_ctl add: %s", strerror(errno));
    pthread_mutex_unlock(&delay.lock);
    uint64_t one = 1;
    if (earliest && write(delay.wake_fd, &one, sizeof one) < 0)
        log_write(LOG_PANIC, NULL, "delay wakeup: %s", strerror(errno));
}

/* Delay thread, under the lock: give c back to the worker pool. */
static void delay_leave(struct conn *c)
{
    heap_remove(c);
    epoll_ctl(delay.epoll, EPOLL_CTL_DEL, c->fd, NULL);
    conn_arm(c, EPOLLOUT); /* EPOLLOUT fires at once: a worker carries on */
}

static int delay_wait_ms(int64_t now)
{
    if (delay.len == 0)
        return -1;
    int64_t wait = conn_until(delay.heap[0]) - now;
    return wait <= 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

static void *delay_main(void *arg)
{
    (void)arg;
    struct epoll_event events[64];
    pthread_mutex_lock(&delay.lock);
    while (!delay.stop) {
        int timeout = delay_wait_ms(time_mono_ms());
        pthread_mutex_unlock(&delay.lock);
        int n = epoll_wait(delay.epoll, events, 64, timeout);
        pthread_mutex_lock(&delay.lock);
        for (int i = 0; i < n; i++) {
            if (*(int *)events[i].data.ptr == KIND_WAKEUP) {
                uint64_t v;
                if (read(delay.wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
                    log_write(LOG_PANIC, NULL, "delay wakeup read: %s", strerror(errno));
                continue;
            }
            delay_leave(events[i].data.ptr); /* the client closed, or it was kicked */
        }
        int64_t now = time_mono_ms();
        while (delay.len > 0 && conn_until(delay.heap[0]) <= now)
            delay_leave(delay.heap[0]);
    }
    /* Stopping (after the drain): whatever still waits goes back to the workers. */
    while (delay.len > 0)
        delay_leave(delay.heap[0]);
    pthread_mutex_unlock(&delay.lock);
    return NULL;
}

bool delay_thread_start(char *err, size_t errlen)
{
    delay.epoll = epoll_create1(EPOLL_CLOEXEC);
    delay.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (delay.epoll < 0 || delay.wake_fd < 0) {
        snprintf(err, errlen, "delay thread epoll/eventfd: %s", strerror(errno));
        return false;
    }
    delay.wake_endpoint.kind = KIND_WAKEUP;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &delay.wake_endpoint};
    epoll_ctl(delay.epoll, EPOLL_CTL_ADD, delay.wake_fd, &ev);
    if (pthread_create(&delay.thread, NULL, delay_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the delay thread");
        return false;
    }
    return true;
}

/* Main thread, while the workers still run (they take what is handed back). */
void delay_thread_stop(void)
{
    pthread_mutex_lock(&delay.lock);
    delay.stop = true;
    pthread_mutex_unlock(&delay.lock);
    uint64_t one = 1;
    if (write(delay.wake_fd, &one, sizeof one) < 0)
        log_write(LOG_PANIC, NULL, "delay wakeup: %s", strerror(errno));
    pthread_join(delay.thread, NULL);
    free(delay.heap);
    close(delay.epoll);
    close(delay.wake_fd);
}
