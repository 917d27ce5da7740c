/*
 * log.c - mainlog, rejectlog and paniclog in Exim's line format:
 *
 *     "2026-11-25 03:46:57 1xW3Jc-00060t-06 <= a@b H=(helo) [1.2.3.4] P=esmtp S=433"
 *
 * (local time, then the message id and a space when there is one, then the text), so
 * exigrep and eximstats read our logs.
 *
 * What it owns: the process-wide set of log descriptors (the only mutable global state of
 * this module, documented in log.h). Each line is built in a local buffer and written with
 * one write() on an O_APPEND descriptor, so lines from concurrent threads never interleave.
 * A line is capped at LOG_LINE_MAX bytes; a longer one ends in "...[truncated]". Control
 * characters in the text are escaped ("\n", "\r", "\xHH") so one call is always one line.
 *
 * Threads: log_write() and log_timestamp() from any thread; log_configure(), log_close()
 * from the main thread (startup, reload, exit); log_set_stderr() from anywhere.
 *
 * Descriptor swapping: writers hold a read lock on `files_lock` for the duration of the
 * write() (writer-preferring rwlock, so a reload is not starved); log_configure() and the
 * rotation check take the write lock to replace descriptors, then close the old ones. So a
 * writer never writes to a closed (or reused) descriptor, and nothing leaks.
 *
 * Rotation: like Exim, we reopen a log whose file was renamed or removed. At most once a
 * second one writer (whoever wins a compare-and-swap on the check time) stat()s the paths
 * and compares device and inode with the open descriptors; a changed or missing file is
 * reopened under the write lock. Between the rename and the check, lines still go to the
 * old file, as with Exim. The rejectlog and paniclog are opened on first use, so they only
 * exist once something was written to them.
 */
#include "postern/log.h"
#include "postern/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192
#define LOG_TRUNCATED_MARK "...[truncated]"
#define LOG_FILE_MODE 0640
#define LOG_DIR_MODE 0750

enum log_kind { LOG_KIND_MAIN, LOG_KIND_REJECT, LOG_KIND_PANIC, LOG_KIND_COUNT };

static const char *const log_kind_names[LOG_KIND_COUNT] = {"main", "reject", "panic"};

struct log_file {
    int fd; /* -1 when not (yet) open */
    dev_t dev;
    ino_t ino;
    char path[PATH_MAX];
};

/* Process-wide log state (see log.h). files[] and configured are protected by files_lock;
 * the check time and stderr flag are atomics read without it. */
static pthread_rwlock_t files_lock;
static pthread_once_t files_lock_once = PTHREAD_ONCE_INIT;
static struct log_file files[LOG_KIND_COUNT];
static bool configured;
static atomic_llong last_rotation_check;
static atomic_bool copy_to_stderr;

static void log_init_lock(void)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&files_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    for (int i = 0; i < LOG_KIND_COUNT; i++)
        files[i].fd = -1;
}

static void log_lock_ready(void)
{
    pthread_once(&files_lock_once, log_init_lock);
}

void log_timestamp(char *buf, unsigned long size)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    if (strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0 && size > 0)
        buf[0] = '\0';
}

/* Expand the template's single "%s" with main/reject/panic. */
static bool log_expand_path(const char *template, enum log_kind kind, char *out, size_t outlen,
                            char *err, size_t errlen)
{
    const char *pct = strstr(template, "%s");
    if (!pct || strstr(pct + 2, "%") != NULL) {
        snprintf(err, errlen, "log_file_path \"%s\" must contain exactly one %%s", template);
        return false;
    }
    int n = snprintf(out, outlen, "%.*s%s%s", (int)(pct - template), template, log_kind_names[kind],
                     pct + 2);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "log file path too long: %s", template);
        return false;
    }
    return true;
}

/* mkdir -p for the directory part of path. */
static bool log_make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    strlcpy_p(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return true;
    *slash = '\0';
    if (!fs_mkdir_p(dir, LOG_DIR_MODE)) {
        snprintf(err, errlen, "cannot create log directory %s: %s", dir, strerror(errno));
        return false;
    }
    return true;
}

/* Open f->path and record its identity. */
static bool log_file_open(struct log_file *f, char *err, size_t errlen)
{
    int fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, LOG_FILE_MODE);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open log file %s: %s", f->path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat log file %s: %s", f->path, strerror(errno));
        close(fd);
        return false;
    }
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return true;
}

static void log_file_close(struct log_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

bool log_configure(const char *path_template, char *err, unsigned long errlen)
{
    log_lock_ready();
    if (!path_template || strcmp(path_template, "syslog") == 0 || !*path_template) {
        snprintf(err, errlen, "log_file_path \"%s\" is not supported",
                 path_template ? path_template : "");
        return false;
    }
    struct log_file fresh[LOG_KIND_COUNT];
    for (int i = 0; i < LOG_KIND_COUNT; i++) {
        fresh[i].fd = -1;
        if (!log_expand_path(path_template, i, fresh[i].path, sizeof fresh[i].path, err, errlen))
            return false;
    }
    if (!log_make_parent_dirs(fresh[LOG_KIND_MAIN].path, err, errlen))
        return false;
    if (!log_file_open(&fresh[LOG_KIND_MAIN], err, errlen))
        return false;

    struct log_file old[LOG_KIND_COUNT];
    pthread_rwlock_wrlock(&files_lock);
    memcpy(old, files, sizeof old);
    memcpy(files, fresh, sizeof files);
    configured = true;
    pthread_rwlock_unlock(&files_lock);
    for (int i = 0; i < LOG_KIND_COUNT; i++)
        log_file_close(&old[i]);
    return true;
}

void log_set_stderr(bool on)
{
    atomic_store(&copy_to_stderr, on);
}

void log_close(void)
{
    log_lock_ready();
    pthread_rwlock_wrlock(&files_lock);
    for (int i = 0; i < LOG_KIND_COUNT; i++)
        log_file_close(&files[i]);
    configured = false;
    pthread_rwlock_unlock(&files_lock);
}

/* Once a second (per process) see whether a log file was rotated away. */
static bool log_rotation_due(void)
{
    long long now = (long long)time(NULL);
    long long last = atomic_load_explicit(&last_rotation_check, memory_order_relaxed);
    if (now == last)
        return false;
    return atomic_compare_exchange_strong(&last_rotation_check, &last, now);
}

/* True when the file at f->path is no longer the one f->fd refers to (renamed away or
 * removed). Called with files_lock held (read or write). */
static bool log_file_rotated(const struct log_file *f)
{
    if (f->fd < 0)
        return false;
    struct stat st;
    if (stat(f->path, &st) != 0)
        return true;
    return st.st_dev != f->dev || st.st_ino != f->ino;
}

/* Under the write lock: open the wanted files that are not open yet, and reopen the
 * ones whose path now names another file (or none). */
static void log_reopen_locked(unsigned wanted_kinds)
{
    char err[256];
    for (int i = 0; i < LOG_KIND_COUNT; i++) {
        struct log_file *f = &files[i];
        bool want = (wanted_kinds & (1u << i)) != 0;
        if (f->fd >= 0 ? !log_file_rotated(f) : !want)
            continue;
        struct log_file fresh = *f;
        fresh.fd = -1;
        if (!log_make_parent_dirs(fresh.path, err, sizeof err) ||
            !log_file_open(&fresh, err, sizeof err))
            continue; /* keep writing to the old file rather than nowhere */
        log_file_close(f);
        *f = fresh;
    }
}

/* Under the read lock: does any file need opening or reopening? */
static bool log_needs_reopen(unsigned kinds)
{
    for (int i = 0; i < LOG_KIND_COUNT; i++)
        if ((kinds & (1u << i)) && files[i].fd < 0)
            return true;
    if (!log_rotation_due())
        return false;
    for (int i = 0; i < LOG_KIND_COUNT; i++)
        if (log_file_rotated(&files[i]))
            return true;
    return false;
}

/* Append an escaped copy of text to line[*len..cap); marks truncation. */
static void log_append_escaped(char *line, size_t *len, size_t cap, const char *text)
{
    size_t room_end = cap - sizeof LOG_TRUNCATED_MARK; /* keep space for mark and NUL */
    size_t n = *len;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char esc[5];
        size_t elen;
        if (*p == '\n')
            elen = (size_t)snprintf(esc, sizeof esc, "\\n");
        else if (*p == '\r')
            elen = (size_t)snprintf(esc, sizeof esc, "\\r");
        else if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            elen = (size_t)snprintf(esc, sizeof esc, "\\x%02X", *p);
        else {
            esc[0] = (char)*p;
            elen = 1;
        }
        if (n + elen > room_end) {
            memcpy(line + n, LOG_TRUNCATED_MARK, sizeof LOG_TRUNCATED_MARK - 1);
            n += sizeof LOG_TRUNCATED_MARK - 1;
            break;
        }
        memcpy(line + n, esc, elen);
        n += elen;
    }
    *len = n;
}

static void log_write_all(int fd, const char *data, size_t len)
{
    /* One write() for the whole line; a short write on a regular O_APPEND file only
     * happens on a full disk, where the rest is lost anyway. Retry only on EINTR. */
    ssize_t w;
    do {
        w = write(fd, data, len);
    } while (w < 0 && errno == EINTR);
}

/* Which files a line goes to: the mainlog always, plus reject and/or panic. */
static unsigned log_kinds_for(unsigned which)
{
    unsigned kinds = 1u << LOG_KIND_MAIN;
    if (which & LOG_REJECT)
        kinds |= 1u << LOG_KIND_REJECT;
    if (which & LOG_PANIC)
        kinds |= 1u << LOG_KIND_PANIC;
    return kinds;
}

static void log_emit(unsigned kinds, const char *line, size_t len)
{
    if (atomic_load_explicit(&copy_to_stderr, memory_order_relaxed))
        log_write_all(STDERR_FILENO, line, len);

    pthread_rwlock_rdlock(&files_lock);
    if (configured && log_needs_reopen(kinds)) {
        pthread_rwlock_unlock(&files_lock);
        pthread_rwlock_wrlock(&files_lock);
        if (configured)
            log_reopen_locked(kinds);
        pthread_rwlock_unlock(&files_lock);
        pthread_rwlock_rdlock(&files_lock);
    }
    for (int i = 0; configured && i < LOG_KIND_COUNT; i++)
        if ((kinds & (1u << i)) && files[i].fd >= 0)
            log_write_all(files[i].fd, line, len);
    pthread_rwlock_unlock(&files_lock);
}

void log_write(unsigned which, const char *msgid, const char *fmt, ...)
{
    log_lock_ready();
    char text[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);

    char line[LOG_LINE_MAX];
    log_timestamp(line, sizeof line);
    size_t len = strlen(line);
    line[len++] = ' ';
    if (msgid && *msgid) {
        int n = snprintf(line + len, 64, "%.40s ", msgid);
        len += (size_t)(n > 0 ? n : 0);
    }
    log_append_escaped(line, &len, sizeof line, text);
    line[len++] = '\n';
    log_emit(log_kinds_for(which), line, len);
}
