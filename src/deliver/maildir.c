/*
 * maildir.c - the appendfile transport in maildir mode: writes the message (with the
 * Return-path:, Envelope-to: and Delivery-date: headers the transport asks for) to
 * <directory>/tmp/<name>, fsyncs it, links it to <directory>/new/<name> and fsyncs new/.
 * tmp/, new/ and cur/ (and the maildir itself, when create_directory is set) are created
 * as needed. Line ends become LF, as Exim writes mailboxes, unless use_crlf is set.
 *
 * Paths: an address whose local part or domain is empty, "." or "..", or contains '/',
 * is never delivered (the delivery fails with the reason), whatever the ACLs said, and
 * the expanded directory must be absolute without ".", ".." or empty components.
 *
 * Exactly once: <name> is derived from the message id and the recipient
 * ("<received>.<id>_<fnv64 of the address key>.<host>"), so every attempt at the same
 * delivery uses the same name. The tmp/<name> link is left in place as a marker until the
 * caller has recorded the delivery in the spool (message.c unlinks it then); a later
 * attempt that finds the marker still there knows an earlier one got that far and checks
 * the marker's link count: 2 (or more) means new/<name> was published (it may have moved
 * to cur/ since: a rename keeps the link), so the delivery is not repeated. See
 * docs/architecture.md, "Exactly-once local delivery".
 *
 * Any delivery thread may call it. No shared state.
 */
#include "deliver_internal.h"

#include "postern/address.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Fail the delivery temporarily with errno and a description. */
static enum addr_result maildir_defer(struct delivery *d, struct addr_item *addr, int err,
                                      const char *what, const char *path)
{
    addr->basic_errno = err;
    addr->message = arena_printf(d->arena, "%s %s", what, path);
    addr->transport_stage = true;
    return ADDR_DEFERRED;
}

static enum addr_result maildir_prepare(struct delivery *d, struct addr_item *addr, const char *dir)
{
    const struct transport *t = addr->transport;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || !t->create_directory)
            return maildir_defer(d, addr, errno, "while checking directory", dir);
        if (!fs_mkdir_p(dir, t->directory_mode))
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

/* "<received>.<id>_<hash>.<host>": the same for every attempt at delivering this message
 * to this address; '/' and ':' in the host escaped as the maildir convention asks. */
static const char *maildir_name(struct delivery *d, const struct addr_item *addr)
{
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
    unsigned long long hash = hash_fnv1a64(address_key(d->arena, addr->address));
    const char *name =
        arena_printf(d->arena, "%lld.%s_%016llx.%s", (long long)d->env->received_time, d->id, hash,
                     host.data ? host.data : "");
    buf_free(&host);
    return name;
}

static void maildir_headers(struct delivery *d, const struct addr_item *addr, struct buf *out)
{
    const struct transport *t = addr->transport;
    const char *eol = t->use_crlf ? "\r\n" : "\n";
    if (t->return_path_add)
        buf_printf(out, "Return-path: <%s>%s", d->env->sender, eol);
    if (t->envelope_to_add)
        buf_printf(out, "Envelope-to: %s%s", deliver_addr_top(addr)->address, eol);
    if (t->delivery_date_add) {
        char date[64];
        time_rfc2822(date, sizeof date, time(NULL));
        buf_printf(out, "Delivery-date: %s%s", date, eol);
    }
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
        ok = fs_write_all(fd, out.data, out.len);
        buf_clear(&out);
    }
    if (ok && cr)
        ok = fs_write_all(fd, "\r", 1);
    int err = (!ok || n < 0) ? (errno ? errno : EIO) : 0;
    buf_free(&out);
    spool_message_close(&data);
    return err;
}

/* An earlier attempt left tmp/<name>: was it published? The marker and new/<name> are one
 * inode, so a link count above 1 says yes, wherever a mail reader has moved it since. */
static bool maildir_marker_published(const char *tmp)
{
    struct stat st;
    return lstat(tmp, &st) == 0 && st.st_nlink > 1;
}

/* Open tmp/<name> for writing. *published is set when an earlier attempt already
 * delivered this message to this address. */
static int maildir_open_tmp(const char *tmp, mode_t mode, bool *published)
{
    *published = false;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd >= 0 || errno != EEXIST)
        return fd;
    if (maildir_marker_published(tmp)) {
        *published = true;
        return -1;
    }
    return open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC); /* an unpublished earlier attempt */
}

/* Write tmp/<name> and publish it as new/<name>; tmp/<name> stays as the marker. */
static enum addr_result maildir_write(struct delivery *d, struct addr_item *addr, const char *dir)
{
    const char *name = maildir_name(d, addr);
    const char *tmp = arena_printf(d->arena, "%s/tmp/%s", dir, name);
    const char *newdir = arena_printf(d->arena, "%s/new", dir);
    const char *final = arena_printf(d->arena, "%s/%s", newdir, name);
    bool published = false;
    int fd = maildir_open_tmp(tmp, addr->transport->mode, &published);
    if (published) {
        addr->marker = tmp;
        addr->redelivery_avoided = true;
        return ADDR_DELIVERED;
    }
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
    if (err == EEXIST) { /* published by an attempt whose marker is gone */
        addr->marker = tmp;
        addr->redelivery_avoided = true;
        return ADDR_DELIVERED;
    }
    if (err) {
        unlink(tmp);
        return maildir_defer(d, addr, err, "while writing", tmp);
    }
    addr->marker = tmp;
    if (!fs_sync_directory(newdir))
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
    if (!deliver_path_allowed(d, addr, "directory", dir)) {
        addr->transport_stage = true;
        return ADDR_FAILED;
    }
    enum addr_result res = maildir_prepare(d, addr, dir);
    if (res != ADDR_PENDING)
        return res;
    return maildir_write(d, addr, dir);
}
