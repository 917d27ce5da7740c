/*
 * maildir.c - the appendfile transport in maildir mode: writes the message (with the
 * Return-path:, Envelope-to: and Delivery-date: headers the transport asks for) to
 * <directory>/tmp/<unique>, fsyncs it, links it to <directory>/new/<unique>, removes the
 * tmp name and fsyncs new/. tmp/, new/ and cur/ (and the maildir itself, when
 * create_directory is set) are created as needed. Line ends become LF, as Exim writes
 * mailboxes, unless use_crlf is set.
 *
 * Any delivery thread may call it. The only shared state is the atomic counter that
 * makes unique names distinct within one microsecond and thread.
 */
#include "deliver_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong maildir_counter;

/* Fail the delivery temporarily with errno and a description. */
static enum addr_result maildir_defer(struct delivery *d, struct addr_item *addr, int err,
                                      const char *what, const char *path)
{
    addr->basic_errno = err;
    addr->message = arena_printf(d->arena, "%s %s", what, path);
    addr->transport_stage = true;
    return ADDR_DEFERRED;
}

/* mkdir -p: create each missing component with `mode`. */
static int make_directories(char *path, mode_t mode)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir(path, mode) != 0 && errno != EEXIST) {
            *p = saved;
            return -1;
        }
        *p = saved;
        if (!saved)
            return 0;
    }
}

static enum addr_result maildir_prepare(struct delivery *d, struct addr_item *addr, const char *dir)
{
    const struct transport *t = addr->transport;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || !t->create_directory)
            return maildir_defer(d, addr, errno, "while checking directory", dir);
        if (make_directories(arena_strdup(d->arena, dir), t->directory_mode) != 0)
            return maildir_defer(d, addr, errno, "while creating directory", dir);
    }
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        const char *sub = arena_printf(d->arena, "%s/%s", dir, subdirs[i]);
        if (mkdir(sub, t->directory_mode) != 0 && errno != EEXIST)
            return maildir_defer(d, addr, errno, "while creating directory", sub);
    }
    return ADDR_PENDING;
}

/* "<sec>.M<usec>P<pid>T<tid>Q<n>.<host>" with '/' and ':' in the host escaped. */
static const char *maildir_unique(struct delivery *d)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct buf host;
    buf_init(&host);
    const char *h = d->cfg->primary_hostname ? d->cfg->primary_hostname : "localhost";
    for (; *h; h++) {
        if (*h == '/')
            buf_append_str(&host, "\\057");
        else if (*h == ':')
            buf_append_str(&host, "\\072");
        else
            buf_append(&host, h, 1);
    }
    const char *name =
        arena_printf(d->arena, "%lld.M%06ldP%ldT%ldQ%lu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
                     (long)getpid(), (long)syscall(SYS_gettid),
                     atomic_fetch_add(&maildir_counter, 1) + 1, host.data ? host.data : "");
    buf_free(&host);
    return name;
}

static const struct addr_item *addr_top(const struct addr_item *a)
{
    while (a->parent)
        a = a->parent;
    return a;
}

static void maildir_headers(struct delivery *d, const struct addr_item *addr, struct buf *out)
{
    const struct transport *t = addr->transport;
    const char *eol = t->use_crlf ? "\r\n" : "\n";
    if (t->return_path_add)
        buf_printf(out, "Return-path: <%s>%s", d->env->sender, eol);
    if (t->envelope_to_add)
        buf_printf(out, "Envelope-to: %s%s", addr_top(addr)->address, eol);
    if (t->delivery_date_add) {
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
        buf_printf(out, "Delivery-date: %s%s", date, eol);
    }
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Copy chunk to out, turning CRLF into LF; *cr carries a CR seen at a chunk's end. */
static void crlf_to_lf(const char *in, size_t n, bool *cr, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (*cr && in[i] != '\n')
            buf_append(out, "\r", 1);
        *cr = in[i] == '\r';
        if (!*cr)
            buf_append(out, &in[i], 1);
    }
}

/* Write headers and the -D contents to fd. Returns 0 or an errno. */
static int maildir_copy(struct delivery *d, const struct addr_item *addr, int fd)
{
    struct spool_message_reader data;
    if (!spool_message_open(&data, d->env))
        return errno ? errno : ENOENT;
    struct buf out;
    buf_init(&out);
    maildir_headers(d, addr, &out);
    char chunk[65536];
    ssize_t n;
    bool cr = false, ok = true;
    while (ok && (n = spool_message_read(&data, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (addr->transport->use_crlf)
            buf_append(&out, chunk, (size_t)n);
        else
            crlf_to_lf(chunk, (size_t)n, &cr, &out);
        ok = write_all(fd, out.data, out.len);
        buf_clear(&out);
    }
    if (ok && cr)
        ok = write_all(fd, "\r", 1);
    int err = (!ok || n < 0) ? (errno ? errno : EIO) : 0;
    buf_free(&out);
    spool_message_close(&data);
    return err;
}

static int fsync_directory(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Write tmp/<unique>, then publish it as new/<unique>. */
static enum addr_result maildir_write(struct delivery *d, struct addr_item *addr, const char *dir)
{
    const char *unique = maildir_unique(d);
    const char *tmp = arena_printf(d->arena, "%s/tmp/%s", dir, unique);
    const char *newdir = arena_printf(d->arena, "%s/new", dir);
    const char *final = arena_printf(d->arena, "%s/%s", newdir, unique);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, addr->transport->mode);
    if (fd < 0)
        return maildir_defer(d, addr, errno, "while creating file", tmp);
    int err = maildir_copy(d, addr, fd);
    if (!err && fchmod(fd, addr->transport->mode) != 0)
        err = errno;
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && link(tmp, final) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return maildir_defer(d, addr, err, "while writing", tmp);
    }
    unlink(tmp);
    if (fsync_directory(newdir) != 0)
        return maildir_defer(d, addr, errno, "while syncing directory", newdir);
    return ADDR_DELIVERED;
}

enum addr_result deliver_maildir(struct delivery *d, struct addr_item *addr)
{
    const struct transport *t = addr->transport;
    struct deliver_scope scope = {d, addr, addr->router, t};
    struct expand_ctx ctx;
    const char *dir = NULL, *err = NULL;
    deliver_scope_expand_ctx(&scope, &ctx);
    enum expand_status st = expand_string(&ctx, t->directory, &dir, &err);
    if (st != EXPAND_OK || !dir || !*dir) {
        addr->basic_errno = -1;
        addr->transport_stage = true;
        addr->message =
            arena_printf(d->arena, "failed to expand \"directory\" (%s): %s", t->directory,
                         st == EXPAND_OK ? "empty result"
                         : err           ? err
                                         : "forced failure");
        return ADDR_DEFERRED;
    }
    enum addr_result res = maildir_prepare(d, addr, dir);
    if (res != ADDR_PENDING)
        return res;
    return maildir_write(d, addr, dir);
}
