/*
 * spool_store.c - the spool directory and writing messages into it.
 *
 * Owns: the process-wide store state (struct spool_store: the directory names and the
 * descriptor of input/, set by spool_init() and cleared by spool_shutdown(), read-only in
 * between) and each struct spool_writer (malloc'd by spool_message_begin(), owned by the
 * worker writing that message, freed by commit or abort).
 *
 * Files of a message in <spool_directory>/input/:
 *   <id>-D      the message (header and body, CRLF, dot-unstuffed), written here
 *   <id>-H.tmp  the envelope, written at submit; renamed to <id>-H by the committer once
 *               -D and it are on disk; the -H's existence is what makes a message exist
 *   <id>-J      delivery journal, appended by spool_mark_done() (spool_read.c)
 * New files are taken from, and finished ones returned to, the pool in
 * <spool_directory>/free/ (spool_recycle.c), so the steady state creates and deletes no
 * inodes; a reused file is overwritten from offset 0 and truncated to its size before it
 * is synced.
 * While a message is being written, its writer holds flock(LOCK_EX) on -D (the committer
 * releases it by closing the descriptor after the rename and directory sync). That lock
 * is how the startup clean-up tells an orphan from a message another postern process
 * (e.g. -bs next to the daemon) is still writing.
 *
 * Threads: spool_init()/spool_shutdown() from the main thread; the writer functions from
 * any worker (each writer is used by one thread at a time).
 */
#include "spool_internal.h"
#include "postern/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_WRITE_BUFFER (64 * 1024)
#define SPOOL_FILE_MODE 0640
#define SPOOL_DIR_MODE 0750

struct spool_store spool_store = {.input_fd = -1};

struct spool_writer {
    char id[SPOOL_ID_LEN + 1];
    int fd;          /* <id>-D, holds flock(LOCK_EX) */
    int64_t size;    /* bytes accepted so far (written + buffered) */
    size_t buffered; /* bytes in buf not yet written */
    char buf[SPOOL_WRITE_BUFFER];
};

bool spool_path(char *out, size_t outlen, const char *id, const char *suffix)
{
    int n = snprintf(out, outlen, "%s/%s%s", spool_store.input, id, suffix);
    return n > 0 && (size_t)n < outlen;
}

const char *spool_dir(void)
{
    return spool_store.dir;
}

/* ---- setup and crash clean-up ---- */

static bool spool_mkdir_p(const char *path, char *err, size_t errlen)
{
    if (fs_mkdir_p(path, SPOOL_DIR_MODE))
        return true;
    snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    return false;
}

static bool spool_file_exists(const char *id, const char *suffix)
{
    char path[PATH_MAX];
    struct stat st;
    return spool_path(path, sizeof path, id, suffix) && stat(path, &st) == 0;
}

/* Remove <id><suffix> if no process holds the lock on <id>-D and, once we hold it, the
 * message still has no -H. The check happens under the lock: a committer renames -H
 * into place before it lets go of -D, so "no -H while locked by us" means orphan. */
static void spool_remove_orphan(const char *id, const char *suffix)
{
    char data_path[PATH_MAX], path[PATH_MAX];
    if (!spool_path(data_path, sizeof data_path, id, "-D") ||
        !spool_path(path, sizeof path, id, suffix))
        return;
    int fd = open(data_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return; /* being written (or delivered) by someone */
    }
    if (!spool_file_exists(id, "-H") && unlink(path) == 0)
        log_write(LOG_MAIN, id, "spool: removed uncommitted %s%s at startup", id, suffix);
    if (fd >= 0)
        close(fd);
}

/* At startup nothing of ours is being written: remove -H.tmp files, -D files without -H,
 * and -J files without -H (a crash in spool_remove()). */
static void spool_clean_orphans(void)
{
    DIR *dir = opendir(spool_store.input);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        char id[SPOOL_ID_LEN + 1];
        if (strlen(de->d_name) < SPOOL_ID_LEN + 2)
            continue;
        memcpy(id, de->d_name, SPOOL_ID_LEN);
        id[SPOOL_ID_LEN] = '\0';
        const char *suffix = de->d_name + SPOOL_ID_LEN;
        if (!spool_id_valid(id))
            continue;
        if (strcmp(suffix, "-H.tmp") == 0 || strcmp(suffix, "-D") == 0 || strcmp(suffix, "-J") == 0)
            spool_remove_orphan(id, suffix);
    }
    closedir(dir);
    fsync(spool_store.input_fd);
}

bool spool_init(const char *spool_directory, int max_batch, char *err, size_t errlen)
{
    if (spool_store.ready) {
        snprintf(err, errlen, "spool already initialised at %s", spool_store.dir);
        return false;
    }
    int n1 = snprintf(spool_store.dir, sizeof spool_store.dir, "%s", spool_directory);
    int n2 = snprintf(spool_store.input, sizeof spool_store.input, "%s/input", spool_directory);
    if (n1 < 0 || (size_t)n1 >= sizeof spool_store.dir || n2 < 0 ||
        (size_t)n2 + SPOOL_ID_LEN + 8 >= sizeof spool_store.input) {
        snprintf(err, errlen, "spool_directory too long");
        return false;
    }
    if (!spool_mkdir_p(spool_store.input, err, errlen))
        return false;
    spool_store.input_fd = open(spool_store.input, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool_store.input_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", spool_store.input, strerror(errno));
        return false;
    }
    spool_clean_orphans();
    if (!spool_recycle_init(err, errlen) || !spool_committer_start(max_batch, err, errlen)) {
        close(spool_store.input_fd);
        spool_store.input_fd = -1;
        return false;
    }
    spool_store.ready = true;
    return true;
}

void spool_shutdown(void)
{
    if (!spool_store.ready)
        return;
    spool_committer_stop();
    spool_recycle_shutdown();
    close(spool_store.input_fd);
    spool_store.input_fd = -1;
    spool_store.ready = false;
}

/* ---- writing ---- */

struct spool_writer *spool_message_begin(const char *id, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (!spool_store.ready) {
        snprintf(err, errlen, "spool not initialised");
        return NULL;
    }
    if (!spool_id_valid(id) || !spool_path(path, sizeof path, id, "-D")) {
        snprintf(err, errlen, "bad message id \"%s\"", id ? id : "");
        return NULL;
    }
    int fd = spool_file_create(path, O_EXCL, SPOOL_FILE_MODE);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* a recycled file whose last user has not closed it yet: take a new one */
        close(fd);
        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, SPOOL_FILE_MODE);
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return NULL;
    }
    struct spool_writer *w = malloc(sizeof *w);
    if (!w)
        die("out of memory for a spool writer");
    memcpy(w->id, id, SPOOL_ID_LEN + 1);
    w->fd = fd;
    w->size = 0;
    w->buffered = 0;
    return w;
}

static bool spool_write_fully(int fd, const char *data, size_t len, const char *what, char *err,
                              size_t errlen)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "writing %s: %s", what, n < 0 ? strerror(errno) : "no progress");
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static bool spool_writer_flush(struct spool_writer *w, char *err, size_t errlen)
{
    if (w->buffered == 0)
        return true;
    bool ok = spool_write_fully(w->fd, w->buf, w->buffered, "spool -D file", err, errlen);
    w->buffered = 0;
    return ok;
}

/* A recycled -D may hold more bytes than this message: cut it to what was written. */
static bool spool_writer_truncate(struct spool_writer *w, char *err, size_t errlen)
{
    if (ftruncate(w->fd, (off_t)w->size) == 0)
        return true;
    snprintf(err, errlen, "truncating the spool -D file: %s", strerror(errno));
    return false;
}

bool spool_data_write(struct spool_writer *w, const void *data, size_t len, char *err,
                      size_t errlen)
{
    const char *p = data;
    if (w->buffered + len > sizeof w->buf && !spool_writer_flush(w, err, errlen))
        return false;
    if (len >= sizeof w->buf) { /* large piece: no point copying it */
        if (!spool_write_fully(w->fd, p, len, "spool -D file", err, errlen))
            return false;
    } else {
        memcpy(w->buf + w->buffered, p, len);
        w->buffered += len;
    }
    w->size += (int64_t)len;
    return true;
}

int64_t spool_data_size(const struct spool_writer *w)
{
    return w->size;
}

void spool_unlink_uncommitted(const char *id)
{
    static const char *const suffixes[] = {"-H.tmp", "-H", "-D"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (spool_path(path, sizeof path, id, suffixes[i]))
            unlink(path);
}

void spool_message_abort(struct spool_writer *w)
{
    if (!w)
        return;
    spool_unlink_uncommitted(w->id); /* unlink while still holding the lock */
    close(w->fd);
    free(w);
}

/* Write <id>-H.tmp; returns its descriptor (not yet synced) or -1. */
static int spool_write_header_tmp(const struct spool_writer *w, const struct spool_envelope *env,
                                  char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (!spool_path(path, sizeof path, w->id, "-H.tmp")) {
        snprintf(err, errlen, "spool path too long");
        return -1;
    }
    int fd = spool_file_create(path, O_TRUNC, SPOOL_FILE_MODE);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    struct spool_envelope copy = *env;
    memcpy(copy.id, w->id, sizeof copy.id); /* the file name is the truth */
    struct buf text;
    buf_init(&text);
    spool_envelope_format(&text, &copy, w->size);
    bool ok = spool_write_fully(fd, text.data, text.len, "spool -H file", err, errlen);
    if (ok && ftruncate(fd, (off_t)text.len) != 0) { /* a recycled file may be longer */
        snprintf(err, errlen, "truncating %s: %s", path, strerror(errno));
        ok = false;
    }
    buf_free(&text);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

bool spool_commit_submit(struct spool_writer *w, const struct spool_envelope *env,
                         spool_done_fn done, void *arg, char *err, size_t errlen)
{
    int header_fd = -1;
    if (!spool_writer_flush(w, err, errlen) || !spool_writer_truncate(w, err, errlen) ||
        (header_fd = spool_write_header_tmp(w, env, err, errlen)) < 0) {
        spool_message_abort(w);
        return false;
    }
    struct spool_commit *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory for a spool commit");
    memcpy(c->id, w->id, sizeof c->id);
    c->data_fd = w->fd;
    c->header_fd = header_fd;
    c->done = done;
    c->arg = arg;
    c->submit_us = spool_now_us();
    if (!spool_committer_enqueue(c)) {
        snprintf(err, errlen, "spool committer not running");
        close(header_fd);
        free(c);
        spool_message_abort(w);
        return false;
    }
    free(w); /* its descriptor now belongs to the commit */
    return true;
}

/* ---- synchronous commit ---- */

struct spool_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool finished;
    bool ok;
    char reason[256];
};

static void spool_waiter_done(void *arg, bool ok, const char *reason)
{
    struct spool_waiter *wt = arg;
    pthread_mutex_lock(&wt->lock);
    wt->ok = ok;
    snprintf(wt->reason, sizeof wt->reason, "%s", reason ? reason : "");
    wt->finished = true;
    pthread_cond_signal(&wt->cond);
    pthread_mutex_unlock(&wt->lock);
}

bool spool_commit_wait(struct spool_writer *w, const struct spool_envelope *env, char *err,
                       size_t errlen)
{
    struct spool_waiter wt = {.finished = false};
    pthread_mutex_init(&wt.lock, NULL);
    pthread_cond_init(&wt.cond, NULL);
    bool ok = spool_commit_submit(w, env, spool_waiter_done, &wt, err, errlen);
    if (ok) {
        pthread_mutex_lock(&wt.lock);
        while (!wt.finished)
            pthread_cond_wait(&wt.cond, &wt.lock);
        pthread_mutex_unlock(&wt.lock);
        ok = wt.ok;
        if (!ok)
            snprintf(err, errlen, "%s", wt.reason);
    }
    pthread_cond_destroy(&wt.cond);
    pthread_mutex_destroy(&wt.lock);
    return ok;
}
