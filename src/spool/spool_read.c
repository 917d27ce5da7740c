/*
 * spool_read.c - reading committed messages and delivery bookkeeping: the envelope (-H,
 * plus the -J journal), the data file, per-message locks, removal, and queue listing.
 *
 * The -J journal: one line "<recipient index>\n" per finished recipient, appended with
 * O_APPEND and fdatasync'ed (the directory too when the journal is new), so a recipient
 * once reported done is never delivered twice after a crash. A last line without its
 * newline (a crash mid-append) is ignored: that recipient was not promised done.
 *
 * Owns nothing long-lived: results go into the caller's arena. Threads: any (delivery
 * threads, the -bp listing); per-message exclusion is the caller's, via
 * spool_lock_message().
 */
#include "spool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_JOURNAL_MAX (16 * 1024 * 1024)

/* Read a whole small file into the arena (NUL-terminated). -1 on error, with err. */
static ssize_t spool_slurp(struct arena *arena, const char *path, size_t max, char **out, char *err,
                           size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if ((size_t)st.st_size > max) {
        snprintf(err, errlen, "%s: file too large", path);
        close(fd);
        return -1;
    }
    char *data = arena_alloc(arena, (size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank meanwhile: parse what we have, the format will tell */
        got += (size_t)n;
    }
    close(fd);
    data[got] = '\0';
    *out = data;
    return (ssize_t)got;
}

/* Mark recipients listed in -J as done. A missing journal is no error. */
static bool spool_apply_journal(struct arena *arena, struct spool_envelope *env, char *err,
                                size_t errlen)
{
    char path[PATH_MAX];
    char *text;
    if (!spool_path(path, sizeof path, env->id, "-J"))
        return false;
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return true;
    ssize_t len = spool_slurp(arena, path, SPOOL_JOURNAL_MAX, &text, err, errlen);
    if (len < 0)
        return false;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break; /* torn last append: not promised */
        char *stop;
        errno = 0;
        long index = strtol(p, &stop, 10);
        if (stop != nl || p == nl || errno != 0 || index < 0 || index >= env->recipient_count) {
            snprintf(err, errlen, "%s: bad journal line", path);
            return false;
        }
        env->recipients[index].done = true;
        p = nl + 1;
    }
    return true;
}

bool spool_read_envelope(struct arena *arena, const char *id, struct spool_envelope *env, char *err,
                         size_t errlen)
{
    char path[PATH_MAX];
    char *text;
    if (!spool_id_valid(id) || !spool_path(path, sizeof path, id, "-H")) {
        snprintf(err, errlen, "bad message id \"%s\"", id ? id : "");
        return false;
    }
    ssize_t len = spool_slurp(arena, path, SPOOL_HEADER_MAX, &text, err, errlen);
    if (len < 0)
        return false;
    if (!spool_envelope_parse(arena, text, (size_t)len, env, err, errlen))
        return false;
    if (strcmp(env->id, id) != 0) {
        snprintf(err, errlen, "%s holds the envelope of %s", path, env->id);
        return false;
    }
    return spool_apply_journal(arena, env, err, errlen);
}

int spool_open_data(const char *id)
{
    char path[PATH_MAX];
    if (!spool_id_valid(id) || !spool_path(path, sizeof path, id, "-D"))
        return -1;
    return open(path, O_RDONLY | O_CLOEXEC);
}

bool spool_message_open(struct spool_message_reader *r, const struct spool_envelope *env)
{
    memset(r, 0, sizeof *r);
    r->fd = spool_open_data(env->id);
    if (r->fd < 0)
        return false;
    r->groups = env->added_headers;
    r->group_count = env->added_header_groups;
    r->group_len = r->group_count > 0 ? strlen(r->groups[0].text) : 0;
    return true;
}

static ssize_t spool_read_retry(int fd, char *buf, size_t n)
{
    ssize_t got;
    do
        got = read(fd, buf, n);
    while (got < 0 && errno == EINTR);
    return got;
}

/* Past the groups whose text is all returned. */
static void spool_reader_settle(struct spool_message_reader *r)
{
    while (r->group < r->group_count && r->group_done >= r->group_len) {
        r->group++;
        r->group_done = 0;
        r->group_len = r->group < r->group_count ? strlen(r->groups[r->group].text) : 0;
    }
}

ssize_t spool_message_read(struct spool_message_reader *r, char *buf, size_t n)
{
    spool_reader_settle(r);
    bool pending = r->group < r->group_count;
    int64_t at = pending ? r->groups[r->group].at : 0;
    if (!pending || r->data_done < at) {
        if (pending && (int64_t)n > at - r->data_done)
            n = (size_t)(at - r->data_done);
        ssize_t got = spool_read_retry(r->fd, buf, n);
        if (got > 0)
            r->data_done += got;
        if (got != 0 || !pending)
            return got;
        /* -D ended before the insertion point: the headers still go out */
    }
    size_t take = r->group_len - r->group_done;
    if (take > n)
        take = n;
    memcpy(buf, r->groups[r->group].text + r->group_done, take);
    r->group_done += take;
    return (ssize_t)take;
}

void spool_message_close(struct spool_message_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

bool spool_mark_done(const char *id, int index, char *err, size_t errlen)
{
    char path[PATH_MAX], line[32];
    if (!spool_id_valid(id) || index < 0 || !spool_path(path, sizeof path, id, "-J")) {
        snprintf(err, errlen, "bad message id or recipient index");
        return false;
    }
    bool created = false;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        created = fd >= 0;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    int n = snprintf(line, sizeof line, "%d\n", index);
    ssize_t w;
    do {
        w = write(fd, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
    bool ok = w == n && fdatasync(fd) == 0;
    if (!ok)
        snprintf(err, errlen, "appending to %s: %s", path,
                 w >= 0 && w != n ? "short write" : strerror(errno));
    close(fd);
    if (ok && created && fsync(spool_store.input_fd) != 0) {
        snprintf(err, errlen, "fsync of the spool directory: %s", strerror(errno));
        ok = false;
    }
    return ok;
}

bool spool_remove(const char *id)
{
    static const char *const order[] = {"-H", "-D", "-J"}; /* -H first: gone = invisible */
    char path[PATH_MAX];
    bool ok = spool_id_valid(id);
    for (size_t i = 0; ok && i < sizeof order / sizeof order[0]; i++) {
        if (!spool_path(path, sizeof path, id, order[i]))
            return false;
        if (i < 2) /* -H and -D go back to the pool of reusable files */
            ok = spool_file_retire(path);
        else if (unlink(path) != 0 && errno != ENOENT)
            ok = false;
    }
    return ok;
}

int spool_lock_message(const char *id)
{
    int fd = spool_open_data(id);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void spool_unlock_message(int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd);
}

static int spool_compare_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int spool_list_ids(struct arena *arena, const char ***ids)
{
    *ids = NULL;
    DIR *dir = opendir(spool_store.input);
    if (!dir)
        return 0;
    struct buf list; /* array of const char * being built */
    buf_init(&list);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (strlen(de->d_name) != SPOOL_ID_LEN + 2 || strcmp(de->d_name + SPOOL_ID_LEN, "-H") != 0)
            continue;
        char *id = arena_strndup(arena, de->d_name, SPOOL_ID_LEN);
        if (spool_id_valid(id))
            buf_append(&list, &id, sizeof id);
    }
    closedir(dir);
    int count = (int)(list.len / sizeof(char *));
    const char **array = arena_alloc(arena, sizeof(char *) * (size_t)(count + 1));
    if (count > 0)
        memcpy(array, list.data, list.len);
    array[count] = NULL;
    buf_free(&list);
    qsort(array, (size_t)count, sizeof *array, spool_compare_ids);
    *ids = array;
    return count;
}
