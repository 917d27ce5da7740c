/*
 * spool_commit.c - the committer thread: group commit of finished messages.
 *
 * Workers hand over a message (its -D and -H.tmp descriptors, written but not synced)
 * with spool_committer_enqueue() and go on with other sessions. The committer loops:
 *
 *   wait until something is queued; take everything queued (at most max_batch);
 *   make every file of the batch durable (see below); rename each -H.tmp to -H; fsync the
 *   input directory once; close the files (which releases the writers' -D locks); then
 *   call each done callback.
 *
 * Making the files durable. A lone message: sync_file_range(WRITE) on both files, then
 * fdatasync each. A batch of two or more: ONE syncfs() on the spool's filesystem, which
 * writes back every dirty page, commits the journal and flushes the disk cache once.
 * Measured on ext4 (tools/spool_bench.c): fdatasync per file does not get cheaper after
 * the first one of a batch committed the journal, because ext4 still sends a cache flush
 * for every call; so a batch of 64 paid 128 flushes. With syncfs a batch pays two
 * journal commits (syncfs, then the directory fsync after the renames). The price:
 * syncfs also writes back unrelated dirty data on the same filesystem, so the spool is
 * best on a filesystem of its own. If syncfs reports an error, the batch falls back to
 * per-file fdatasync, which tells which message is affected.
 *
 * A message that fails at any step is removed (-H.tmp, -H, -D) and its callback gets
 * ok=false with the reason. A lone message is taken as soon as it is queued; batches form
 * by themselves from what arrives while the previous batch is being synced.
 *
 * Owns: the commit queue and statistics (process-wide, behind `committer.lock`), the
 * committer thread, and each queued struct spool_commit (freed after its callback).
 * Threads: enqueue from any worker; start/stop from the main thread (spool_init and
 * spool_shutdown); spool_stats() from any thread; callbacks run on the committer thread.
 */
#include "spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SPOOL_DEFAULT_MAX_BATCH 256

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running;  /* accepting commits */
    bool stopping; /* drain, then exit */
    struct spool_commit *head, *tail;
    int max_batch;
    struct spool_stats stats;
} committer = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

int64_t spool_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void spool_commit_fail(struct spool_commit *c, const char *step)
{
    if (c->failed)
        return;
    c->failed = true;
    snprintf(c->reason, sizeof c->reason, "spool commit of %s: %s: %s", c->id, step,
             strerror(errno));
}

/* Per-file durability: a lone message, or the fallback after a failed syncfs. */
static void spool_batch_sync_files(struct spool_commit *batch)
{
    for (struct spool_commit *c = batch; c; c = c->next) {
        /* Only a hint to start I/O early; fdatasync below is what we rely on. */
        sync_file_range(c->data_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        sync_file_range(c->header_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    for (struct spool_commit *c = batch; c; c = c->next) {
        if (fdatasync(c->data_fd) != 0)
            spool_commit_fail(c, "fdatasync -D");
        else if (fdatasync(c->header_fd) != 0)
            spool_commit_fail(c, "fdatasync -H");
    }
}

/* Rename each synced -H.tmp into place; returns how many were renamed. */
static int spool_batch_rename(struct spool_commit *batch)
{
    int renamed = 0;
    for (struct spool_commit *c = batch; c; c = c->next) {
        char from[PATH_MAX], to[PATH_MAX];
        if (c->failed)
            continue;
        if (!spool_path(from, sizeof from, c->id, "-H.tmp") ||
            !spool_path(to, sizeof to, c->id, "-H")) {
            errno = ENAMETOOLONG;
            spool_commit_fail(c, "path");
        } else if (rename(from, to) != 0) {
            spool_commit_fail(c, "rename -H.tmp to -H");
        } else {
            renamed++;
        }
    }
    return renamed;
}

static void spool_batch_finish(struct spool_commit *batch, int count)
{
    /* Remove failed messages while their -D lock is still held, then release. */
    for (struct spool_commit *c = batch; c; c = c->next) {
        if (c->failed)
            spool_unlink_uncommitted(c->id);
        close(c->header_fd);
        close(c->data_fd);
    }
    int64_t now = spool_now_us();
    pthread_mutex_lock(&committer.lock);
    committer.stats.batches++;
    if (count > committer.stats.max_batch)
        committer.stats.max_batch = count;
    for (struct spool_commit *c = batch; c; c = c->next) {
        uint64_t latency = (uint64_t)(now > c->submit_us ? now - c->submit_us : 0);
        committer.stats.messages++;
        committer.stats.failed += c->failed ? 1 : 0;
        committer.stats.latency_us_total += latency;
        if (latency > committer.stats.latency_us_max)
            committer.stats.latency_us_max = latency;
    }
    pthread_mutex_unlock(&committer.lock);

    struct spool_commit *next;
    for (struct spool_commit *c = batch; c; c = next) {
        next = c->next;
        if (c->done)
            c->done(c->arg, !c->failed, c->failed ? c->reason : "");
        free(c);
    }
}

/* Whole-filesystem durability for a batch: one writeback, one journal commit. */
static void spool_batch_sync(struct spool_commit *batch, int count)
{
    if (count < 2 || syncfs(spool_store.input_fd) != 0)
        spool_batch_sync_files(batch);
}

static void spool_commit_batch(struct spool_commit *batch, int count)
{
    spool_batch_sync(batch, count);
    if (spool_batch_rename(batch) > 0 && fsync(spool_store.input_fd) != 0) {
        /* The renames may not be durable: nobody of this batch gets a promise. */
        for (struct spool_commit *c = batch; c; c = c->next)
            spool_commit_fail(c, "fsync of the spool directory");
    }
    spool_batch_finish(batch, count);
}

/* Under committer.lock: detach up to max_batch queued commits. */
static struct spool_commit *spool_take_batch(int *count)
{
    struct spool_commit *batch = committer.head, *last = NULL;
    int n = 0;
    for (struct spool_commit *c = batch; c && n < committer.max_batch; c = c->next) {
        last = c;
        n++;
    }
    committer.head = last->next;
    if (!committer.head)
        committer.tail = NULL;
    last->next = NULL;
    *count = n;
    return batch;
}

static void *spool_committer_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&committer.lock);
    for (;;) {
        while (!committer.head && !committer.stopping)
            pthread_cond_wait(&committer.wake, &committer.lock);
        if (!committer.head)
            break; /* stopping and drained */
        int count;
        struct spool_commit *batch = spool_take_batch(&count);
        pthread_mutex_unlock(&committer.lock);
        spool_commit_batch(batch, count);
        pthread_mutex_lock(&committer.lock);
    }
    pthread_mutex_unlock(&committer.lock);
    return NULL;
}

bool spool_committer_start(int max_batch, char *err, size_t errlen)
{
    pthread_mutex_lock(&committer.lock);
    committer.max_batch = max_batch > 0 ? max_batch : SPOOL_DEFAULT_MAX_BATCH;
    committer.stopping = false;
    committer.head = committer.tail = NULL;
    memset(&committer.stats, 0, sizeof committer.stats);
    int rc = pthread_create(&committer.thread, NULL, spool_committer_main, NULL);
    committer.running = rc == 0;
    pthread_mutex_unlock(&committer.lock);
    if (rc != 0)
        snprintf(err, errlen, "cannot start the spool committer: %s", strerror(rc));
    return rc == 0;
}

void spool_committer_stop(void)
{
    pthread_mutex_lock(&committer.lock);
    if (!committer.running) {
        pthread_mutex_unlock(&committer.lock);
        return;
    }
    committer.running = false;
    committer.stopping = true;
    pthread_cond_signal(&committer.wake);
    pthread_mutex_unlock(&committer.lock);
    pthread_join(committer.thread, NULL);
}

bool spool_committer_enqueue(struct spool_commit *c)
{
    pthread_mutex_lock(&committer.lock);
    if (!committer.running) {
        pthread_mutex_unlock(&committer.lock);
        return false;
    }
    c->next = NULL;
    if (committer.tail)
        committer.tail->next = c;
    else
        committer.head = c;
    committer.tail = c;
    pthread_cond_signal(&committer.wake);
    pthread_mutex_unlock(&committer.lock);
    return true;
}

void spool_stats(struct spool_stats *out)
{
    pthread_mutex_lock(&committer.lock);
    *out = committer.stats;
    pthread_mutex_unlock(&committer.lock);
}
