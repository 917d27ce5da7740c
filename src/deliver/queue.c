/*
 * queue.c - the queue runner: delivery threads fed by an in-memory FIFO of message ids
 * (deliver_enqueue() after each commit, and periodic scans of the spool by a timer
 * thread), plus deliver_queue_run() for -q.
 *
 * Process-wide state (documented in deliver.h: there is one set of delivery threads per
 * process): struct queue_runtime below, guarded by its mutex. It holds the FIFO (bounded:
 * enqueues beyond QUEUE_FIFO_MAX are dropped, the next scan picks them up), and a table
 * of ids that are queued or being delivered (never queued twice) with the time of their
 * last attempt (a scan skips a message tried less than retry_interval ago). Entries of
 * completed messages are removed; entries of messages removed behind our back are
 * dropped by the next scan.
 *
 * Threads: deliver_start/deliver_stop from the main thread; deliver_enqueue from any
 * thread (never blocks on I/O); deliver_queue_run in the calling thread.
 */
#include "deliver_internal.h"

#include "postern/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_FIFO_MAX 10000
#define QUEUE_BUCKETS 4096

struct queue_entry {
    char id[SPOOL_ID_LEN + 1];
    bool busy;               /* in the FIFO or being delivered */
    bool seen;               /* present in the latest spool scan */
    int64_t last_attempt_ms; /* 0 = never tried by this process */
    struct queue_entry *next;
};

struct queue_runtime {
    pthread_mutex_t lock;
    pthread_cond_t work;  /* FIFO not empty, or stopping */
    pthread_cond_t timer; /* stopping (timer waits on it with a timeout) */
    bool running;
    bool stopping;
    struct deliver_config_source src;
    int64_t interval_s;
    char (*fifo)[SPOOL_ID_LEN + 1]; /* ring of QUEUE_FIFO_MAX ids */
    int head;
    int count;
    struct queue_entry *buckets[QUEUE_BUCKETS];
    pthread_t *threads;
    int thread_count;
    pthread_t timer_thread;
    bool has_timer;
    uint64_t scans; /* spool scans finished since the process started */
};

static struct queue_runtime queue = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static unsigned queue_hash(const char *id)
{
    return hash_fnv1a32(id) % QUEUE_BUCKETS;
}

/* Find (or, with create, add) the entry for id. Caller holds the lock. */
static struct queue_entry *entry_get(const char *id, bool create)
{
    struct queue_entry **slot = &queue.buckets[queue_hash(id)];
    for (struct queue_entry *e = *slot; e; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    if (!create)
        return NULL;
    struct queue_entry *e = calloc(1, sizeof *e);
    if (!e)
        die("out of memory in the delivery queue");
    strlcpy_p(e->id, id, sizeof e->id);
    e->next = *slot;
    *slot = e;
    return e;
}

static void entry_remove(const char *id)
{
    for (struct queue_entry **p = &queue.buckets[queue_hash(id)]; *p; p = &(*p)->next) {
        if (strcmp((*p)->id, id) == 0) {
            struct queue_entry *e = *p;
            *p = e->next;
            free(e);
            return;
        }
    }
}

static void entries_free(void)
{
    for (int i = 0; i < QUEUE_BUCKETS; i++) {
        while (queue.buckets[i]) {
            struct queue_entry *e = queue.buckets[i];
            queue.buckets[i] = e->next;
            free(e);
        }
    }
}

/* Queue id unless it is queued or busy, or (retry_ms > 0) was tried too recently.
 * Caller holds the lock. */
static void enqueue_locked(const char *id, int64_t retry_ms)
{
    if (!queue.running || queue.stopping || !spool_id_valid(id))
        return;
    struct queue_entry *e = entry_get(id, true);
    e->seen = true;
    if (e->busy)
        return;
    if (retry_ms > 0 && e->last_attempt_ms && time_mono_ms() - e->last_attempt_ms < retry_ms)
        return;
    if (queue.count >= QUEUE_FIFO_MAX)
        return; /* dropped: the next queue scan finds it in the spool */
    strlcpy_p(queue.fifo[(queue.head + queue.count) % QUEUE_FIFO_MAX], id, SPOOL_ID_LEN + 1);
    queue.count++;
    e->busy = true;
    pthread_cond_signal(&queue.work);
}

void deliver_enqueue(const char *id)
{
    pthread_mutex_lock(&queue.lock);
    enqueue_locked(id, 0);
    pthread_mutex_unlock(&queue.lock);
}

/* Record the outcome of one attempt. */
static void attempt_done(const char *id, enum message_outcome outcome)
{
    pthread_mutex_lock(&queue.lock);
    struct queue_entry *e = entry_get(id, false);
    if (e && outcome == MESSAGE_COMPLETED) {
        entry_remove(id);
    } else if (e) {
        e->busy = false;
        e->last_attempt_ms = time_mono_ms();
    }
    pthread_mutex_unlock(&queue.lock);
}

static void *delivery_thread(void *arg)
{
    char id[SPOOL_ID_LEN + 1];
    pthread_mutex_lock(&queue.lock);
    for (;;) {
        while (!queue.count && !queue.stopping)
            pthread_cond_wait(&queue.work, &queue.lock);
        if (queue.stopping)
            break;
        memcpy(id, queue.fifo[queue.head], sizeof id);
        queue.head = (queue.head + 1) % QUEUE_FIFO_MAX;
        queue.count--;
        pthread_mutex_unlock(&queue.lock);

        const struct config *cfg = queue.src.get();
        enum message_outcome outcome = cfg ? deliver_message_run(cfg, id) : MESSAGE_ERROR;
        if (cfg)
            queue.src.put(cfg);
        attempt_done(id, outcome);
        pthread_mutex_lock(&queue.lock);
    }
    pthread_mutex_unlock(&queue.lock);
    return arg;
}

/* Forget entries of messages that are no longer in the spool. Caller holds the lock. */
static void entries_sweep(void)
{
    for (int i = 0; i < QUEUE_BUCKETS; i++) {
        for (struct queue_entry **p = &queue.buckets[i]; *p;) {
            struct queue_entry *e = *p;
            if (!e->seen && !e->busy) {
                *p = e->next;
                free(e);
                continue;
            }
            e->seen = false;
            p = &e->next;
        }
    }
}

/* One scan: queue every spooled message that is not busy and is due for a retry. */
static void queue_scan(void)
{
    const struct config *cfg = queue.src.get();
    if (!cfg)
        return;
    struct arena *arena = arena_new(16384);
    const char **ids = NULL;
    int n = spool_list_ids(arena, &ids);
    int64_t retry_ms = cfg->retry_interval > 0 ? cfg->retry_interval * 1000 : 1;
    pthread_mutex_lock(&queue.lock);
    for (int i = 0; i < n; i++)
        enqueue_locked(ids[i], retry_ms);
    entries_sweep();
    queue.scans++;
    pthread_mutex_unlock(&queue.lock);
    arena_delete(arena);
    queue.src.put(cfg);
}

uint64_t deliver_queue_scans(void)
{
    pthread_mutex_lock(&queue.lock);
    uint64_t n = queue.scans;
    pthread_mutex_unlock(&queue.lock);
    return n;
}

static void *timer_thread(void *arg)
{
    pthread_mutex_lock(&queue.lock);
    while (!queue.stopping) {
        pthread_mutex_unlock(&queue.lock);
        queue_scan();
        pthread_mutex_lock(&queue.lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)queue.interval_s;
        while (!queue.stopping &&
               pthread_cond_timedwait(&queue.timer, &queue.lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&queue.lock);
    return arg;
}

static bool runtime_init(const struct deliver_config_source *src, int threads, int64_t interval_s)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&queue.timer, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&queue.work, NULL);
    queue.fifo = calloc(QUEUE_FIFO_MAX, sizeof *queue.fifo);
    queue.threads = calloc((size_t)threads, sizeof *queue.threads);
    if (!queue.fifo || !queue.threads) {
        free(queue.fifo);
        free(queue.threads);
        return false;
    }
    queue.src = *src;
    queue.interval_s = interval_s;
    queue.head = queue.count = 0;
    queue.thread_count = 0;
    queue.has_timer = false;
    queue.stopping = false;
    queue.running = true;
    return true;
}

bool deliver_start(const struct deliver_config_source *src, int threads, int64_t queue_interval_s,
                   char *err, size_t errlen)
{
    if (!src || !src->get || !src->put || threads <= 0) {
        snprintf(err, errlen, "deliver_start: need a config source and at least one thread");
        return false;
    }
    pthread_mutex_lock(&queue.lock);
    bool ok = !queue.running && runtime_init(src, threads, queue_interval_s);
    pthread_mutex_unlock(&queue.lock);
    if (!ok) {
        snprintf(err, errlen, "deliver_start: %s",
                 queue.running ? "delivery threads already running" : "out of memory");
        return false;
    }
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&queue.threads[i], NULL, delivery_thread, NULL);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start delivery thread: %s", strerror(rc));
            deliver_stop();
            return false;
        }
        queue.thread_count++;
    }
    if (queue_interval_s > 0) {
        int rc = pthread_create(&queue.timer_thread, NULL, timer_thread, NULL);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start the queue timer thread: %s", strerror(rc));
            deliver_stop();
            return false;
        }
        queue.has_timer = true;
    }
    return true;
}

void deliver_stop(void)
{
    pthread_mutex_lock(&queue.lock);
    if (!queue.running) {
        pthread_mutex_unlock(&queue.lock);
        return;
    }
    queue.stopping = true;
    pthread_cond_broadcast(&queue.work);
    pthread_cond_broadcast(&queue.timer);
    pthread_mutex_unlock(&queue.lock);
    for (int i = 0; i < queue.thread_count; i++)
        pthread_join(queue.threads[i], NULL);
    if (queue.has_timer)
        pthread_join(queue.timer_thread, NULL);
    pthread_mutex_lock(&queue.lock);
    entries_free();
    free(queue.fifo);
    free(queue.threads);
    queue.fifo = NULL;
    queue.threads = NULL;
    queue.count = 0;
    queue.running = false;
    queue.stopping = false;
    pthread_cond_destroy(&queue.work);
    pthread_cond_destroy(&queue.timer);
    pthread_mutex_unlock(&queue.lock);
}

int deliver_queue_run(const struct config *cfg)
{
    struct arena *arena = arena_new(16384);
    const char **ids = NULL;
    int n = spool_list_ids(arena, &ids), processed = 0;
    log_write(LOG_MAIN, NULL, "Start queue run: pid=%d", (int)getpid());
    for (int i = 0; i < n; i++) {
        enum message_outcome outcome = deliver_message_run(cfg, ids[i]);
        processed += outcome == MESSAGE_COMPLETED || outcome == MESSAGE_DEFERRED;
    }
    log_write(LOG_MAIN, NULL, "End queue run: pid=%d", (int)getpid());
    arena_delete(arena);
    return processed;
}
