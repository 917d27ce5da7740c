/*
 * message.c - one delivery attempt of one spooled message: lock it, read the envelope,
 * route every recipient not yet done (following redirections), run the transport for
 * each routed address, log "=>", "**" and "==" lines in Exim's format, record finished
 * recipients in the spool journal, send one bounce for the failures, and when nothing is
 * left log "Completed" and remove the message.
 *
 * Child addresses (from redirection) that were delivered or failed are remembered in a
 * small per-message file, <spool>/deliver/<id>, so that a later attempt for a recipient
 * whose other children deferred does not deliver them twice. It is removed with the
 * message.
 *
 * Exactly once: the transport leaves a marker (addr->marker, a tmp/ link of the delivered
 * file) that lets a later attempt recognise a delivery made before a crash; it is unlinked
 * here only after the delivery is recorded (the deliver/<id> line for a child, the -J
 * journal or the removal of the message for an envelope recipient).
 *
 * Threads: any delivery thread (or -q in the main thread); the spool lock makes sure one
 * message is delivered by one thread at a time. Memory: one arena per attempt.
 */
#include "deliver_internal.h"

#include "postern/address.h"
#include "postern/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ptr_array {
    void **items;
    int count;
    int cap;
};

struct message_run {
    struct delivery d;
    struct spool_envelope env;
    const char *done_path;         /* the per-message file of finished child addresses */
    struct ptr_array done;         /* lower-cased child addresses finished in earlier attempts */
    struct ptr_array finals;       /* addr_items that reached a transport in this attempt */
    struct ptr_array failed;       /* failed addr_items, for the bounce */
    struct ptr_array failed_rcpts; /* recipient indices to mark done once bounced */
    struct ptr_array finished;     /* recipient indices finished in this attempt, journalled
                                      (-J) only if the message stays in the queue */
    char bounce_pending[SPOOL_ID_LEN + 1]; /* a bounce chosen before a crash whose failures
                                              were not recorded: reused, never doubled */
    bool bounce_recorded; /* this attempt's bounce must be closed with BOUNCE_DONE */
};

/* Lines of the per-message file besides addresses (an address never starts so): the id
 * of a bounce about to be spooled, and its closing once its failures are recorded. */
#define BOUNCE_PENDING "bounce "
#define BOUNCE_DONE "bounced "

static void ptr_push(struct arena *arena, struct ptr_array *a, void *p)
{
    if (a->count == a->cap) {
        int ncap = a->cap ? a->cap * 2 : 16;
        void **n = arena_alloc(arena, sizeof *n * (size_t)ncap);
        if (a->count)
            memcpy(n, a->items, sizeof *n * (size_t)a->count);
        a->items = n;
        a->cap = ncap;
    }
    a->items[a->count++] = p;
}

static char *addr_key(struct arena *arena, const struct addr_item *a)
{
    return address_key(arena, a->address);
}

/* The delivery of a is recorded: the transport's marker has done its job. */
static void marker_release(struct addr_item *a)
{
    if (a->marker && a->result == ADDR_DELIVERED)
        unlink(a->marker);
    a->marker = NULL;
}

/* ---- the per-message file of finished child addresses ---- */

static void done_load(struct message_run *m)
{
    const char *text = NULL, *err = NULL;
    m->done_path = arena_printf(m->d.arena, "%s/deliver/%s", spool_dir(), m->d.id);
    if (!redirect_read_file(m->d.arena, m->done_path, &text, &err) || !text)
        return;
    char *copy = arena_strdup(m->d.arena, text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, BOUNCE_PENDING, strlen(BOUNCE_PENDING)) == 0 &&
            spool_id_valid(line + strlen(BOUNCE_PENDING)))
            memcpy(m->bounce_pending, line + strlen(BOUNCE_PENDING), SPOOL_ID_LEN + 1);
        else if (strncmp(line, BOUNCE_DONE, strlen(BOUNCE_DONE)) == 0 &&
                 strcmp(line + strlen(BOUNCE_DONE), m->bounce_pending) == 0)
            m->bounce_pending[0] = '\0';
        else
            ptr_push(m->d.arena, &m->done, line);
    }
}

static bool done_contains(const struct message_run *m, const char *key)
{
    for (int i = 0; i < m->done.count; i++)
        if (strcmp(m->done.items[i], key) == 0)
            return true;
    return false;
}

/* Append one line to the per-message file, durably; false (logged) on failure. */
static bool done_append(struct message_run *m, const char *text, const char *what)
{
    char *dir = arena_printf(m->d.arena, "%s/deliver", spool_dir());
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        goto fail;
    int fd = open(m->done_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        goto fail;
    const char *line = arena_printf(m->d.arena, "%s\n", text);
    bool ok = fs_write_all(fd, line, strlen(line)) && fdatasync(fd) == 0;
    int saved = errno;
    close(fd);
    errno = saved;
    if (ok)
        return true;
fail:
    log_write(LOG_PANIC, m->d.id, "cannot record %s in %s: %s", what, m->done_path,
              strerror(errno));
    return false;
}

/* Record one finished child address. On failure the marker stays, so a later attempt
 * still finds the delivery. */
static bool done_record(struct message_run *m, const struct addr_item *a)
{
    return done_append(m, addr_key(m->d.arena, a),
                       arena_printf(m->d.arena, "the delivery of %s", a->address));
}

/* ---- log lines ---- */

/* Exim's address text: "local_part <top>" for local-style successes, else the address,
 * followed by " <top>" when it differs from the original recipient. */
static void log_address(struct buf *b, const struct addr_item *a, bool local_style)
{
    const struct addr_item *top = deliver_addr_top(a);
    if (local_style) {
        buf_printf(b, "%s <%s>", a->local_part, top->address);
        return;
    }
    buf_append_str(b, a->address);
    size_t lp_len = strlen(a->local_part);
    if (!str_ieq(a->address, top->address) || strncmp(a->address, top->address, lp_len) != 0)
        buf_printf(b, " <%s>", top->address);
}

/* "=>", or "*>" with a note when an attempt before a crash had delivered it already (not
 * "=>": log readers count those, and that delivery may have logged one). */
static void log_delivered(const struct message_run *m, const struct addr_item *a)
{
    struct buf b;
    buf_init(&b);
    log_address(&b, a, a->router && a->router->log_as_local);
    log_write(LOG_MAIN, m->d.id, "%s %s R=%s T=%s%s", a->redelivery_avoided ? "*>" : "=>", b.data,
              a->router ? a->router->name : "", a->transport ? a->transport->name : "",
              a->redelivery_avoided ? ": already delivered by an earlier attempt" : "");
    buf_free(&b);
}

static void log_drivers(struct buf *b, const struct addr_item *a)
{
    if (a->router)
        buf_printf(b, " R=%s", a->router->name);
    if (a->transport && a->transport_stage)
        buf_printf(b, " T=%s", a->transport->name);
}

static void log_failed(const struct message_run *m, const struct addr_item *a)
{
    struct buf b;
    buf_init(&b);
    log_address(&b, a, false);
    log_drivers(&b, a);
    if (a->basic_errno > 0)
        buf_printf(&b, ": %s", strerror(a->basic_errno));
    if (a->message && *a->message)
        buf_printf(&b, ": %s", a->message);
    log_write(LOG_MAIN, m->d.id, "** %s", b.data);
    buf_free(&b);
}

static void log_deferred(const struct message_run *m, const struct addr_item *a)
{
    struct buf b;
    buf_init(&b);
    log_address(&b, a, false);
    log_drivers(&b, a);
    buf_printf(&b, " defer (%d)", a->basic_errno);
    if (a->basic_errno > 0)
        buf_printf(&b, ": %s", strerror(a->basic_errno));
    if (a->message && *a->message)
        buf_printf(&b, ": %s", a->message);
    log_write(LOG_MAIN, m->d.id, "== %s", b.data);
    buf_free(&b);
}

/* ---- outcomes ---- */

static void note_failed(struct message_run *m, struct addr_item *a)
{
    a->result = ADDR_FAILED;
    log_failed(m, a);
    ptr_push(m->d.arena, &m->failed, a);
}

/* A deferral, unless the message has been in the queue longer than timeout_frozen_after. */
static enum addr_result note_deferred(struct message_run *m, struct addr_item *a)
{
    int64_t limit = m->d.cfg->timeout_frozen_after;
    if (limit > 0 && (int64_t)time(NULL) - m->env.received_time > limit) {
        a->message = arena_printf(m->d.arena, "%s%sretry timeout exceeded",
                                  a->message ? a->message : "", a->message ? ": " : "");
        note_failed(m, a);
        return ADDR_FAILED;
    }
    a->result = ADDR_DEFERRED;
    log_deferred(m, a);
    return ADDR_DEFERRED;
}

/* Run the transport for a routed address, once per distinct address per attempt. */
static enum addr_result deliver_final(struct message_run *m, struct addr_item *a)
{
    char *key = addr_key(m->d.arena, a);
    for (int i = 0; i < m->finals.count; i++) {
        const struct addr_item *prev = m->finals.items[i];
        if (strcmp(addr_key(m->d.arena, prev), key) == 0)
            return prev->result == ADDR_FAILED ? ADDR_DISCARDED : prev->result;
    }
    ptr_push(m->d.arena, &m->finals, a);
    enum addr_result res = deliver_maildir(&m->d, a);
    if (res == ADDR_DELIVERED) {
        a->result = ADDR_DELIVERED;
        log_delivered(m, a);
        if (a->parent && done_record(m, a))
            marker_release(a);
        return res;
    }
    if (res == ADDR_FAILED) {
        note_failed(m, a);
        return res;
    }
    return note_deferred(m, a);
}

/* Route one address; returns its outcome; children are appended to *queue_tail. */
static enum addr_result address_process(struct message_run *m, struct addr_item *a,
                                        struct addr_item ***queue_tail)
{
    if (a->parent && done_contains(m, addr_key(m->d.arena, a)))
        return ADDR_DELIVERED; /* finished in an earlier attempt */
    struct addr_item *children = NULL;
    enum addr_result res = deliver_route_address(&m->d, a, &children);
    switch (res) {
    case ADDR_ROUTED:
        return deliver_final(m, a);
    case ADDR_REDIRECTED:
        **queue_tail = children;
        while (**queue_tail)
            *queue_tail = &(**queue_tail)->next;
        return res;
    case ADDR_FAILED:
        note_failed(m, a);
        return res;
    case ADDR_DEFERRED:
        return note_deferred(m, a);
    default:
        return res; /* discarded */
    }
}

/* Deliver envelope recipient i and everything it redirects to. */
static void recipient_process(struct message_run *m, int index)
{
    struct addr_item *top = arena_zalloc(m->d.arena, sizeof *top);
    const char *reason = NULL;
    if (!deliver_addr_split(&m->d, top, m->env.recipients[index].address, &reason)) {
        top->address = m->env.recipients[index].address;
        top->local_part = top->address;
        top->domain = "";
        top->message = reason;
        note_failed(m, top);
        ptr_push(m->d.arena, &m->failed_rcpts, (void *)(intptr_t)index);
        return;
    }
    top->rcpt_index = index;
    int failed_before = m->failed.count;
    bool deferred = false;
    struct addr_item *queue = top, **tail = &top->next;
    for (struct addr_item *a = queue; a; a = a->next)
        deferred |= address_process(m, a, &tail) == ADDR_DEFERRED;
    if (deferred)
        return;
    if (m->failed.count > failed_before) {
        ptr_push(m->d.arena, &m->failed_rcpts, (void *)(intptr_t)index);
        return;
    }
    m->env.recipients[index].done = true;
    ptr_push(m->d.arena, &m->finished, (void *)(intptr_t)index);
}

/* Spool the bounce once: its id is recorded before it is spooled, so an attempt after a
 * crash that came before the failures were recorded reuses it (and finds it spooled, or
 * delivered under the same maildir name) instead of sending a second bounce. */
static bool bounce_once(struct message_run *m, char bounce_id[SPOOL_ID_LEN + 1])
{
    struct spool_envelope earlier;
    char err[256];
    if (m->bounce_pending[0]) {
        memcpy(bounce_id, m->bounce_pending, SPOOL_ID_LEN + 1);
        m->bounce_recorded = true;
        if (spool_read_envelope(m->d.arena, bounce_id, &earlier, err, sizeof err))
            return true; /* spooled before the crash: deliver that one */
    } else {
        spool_new_id(bounce_id);
        if (!done_append(m, arena_printf(m->d.arena, BOUNCE_PENDING "%s", bounce_id),
                         "the bounce id"))
            return false;
        memcpy(m->bounce_pending, bounce_id, SPOOL_ID_LEN + 1);
        m->bounce_recorded = true;
    }
    return deliver_bounce(&m->d, (struct addr_item *const *)m->failed.items, m->failed.count,
                          bounce_id);
}

/* Bounce the failures (unless the sender is <>), then record them as finished. */
static void failures_finish(struct message_run *m, char bounce_id[SPOOL_ID_LEN + 1])
{
    if (m->failed.count == 0)
        return;
    if (m->env.sender[0] && !bounce_once(m, bounce_id)) {
        bounce_id[0] = '\0';
        return; /* retried next time: the failures are not recorded */
    }
    for (int i = 0; i < m->failed.count; i++) {
        const struct addr_item *a = m->failed.items[i];
        if (a->parent)
            done_record(m, a);
    }
    for (int i = 0; i < m->failed_rcpts.count; i++) {
        int index = (int)(intptr_t)m->failed_rcpts.items[i];
        m->env.recipients[index].done = true;
        ptr_push(m->d.arena, &m->finished, m->failed_rcpts.items[i]);
    }
}

/* Envelope recipient `index` (or every one, for -1) is recorded: release the markers of
 * the addresses delivered for it. */
static void markers_release(struct message_run *m, int index)
{
    for (int i = 0; i < m->finals.count; i++) {
        struct addr_item *a = m->finals.items[i];
        if (index < 0 || a->rcpt_index == index)
            marker_release(a);
    }
}

/* The message stays queued: record what this attempt finished in the -J journal. When
 * everything is finished the journal is not needed at all (removing -H records it), which
 * saves a file creation and two syncs per message. A crash between a delivery and its
 * record means that recipient is tried again; the transport's marker makes that attempt
 * find the earlier delivery instead of repeating it. */
static void finished_journal(struct message_run *m)
{
    bool all = true;
    for (int i = 0; i < m->finished.count; i++) {
        int index = (int)(intptr_t)m->finished.items[i];
        char err[256];
        if (!spool_mark_done(m->d.id, index, err, sizeof err)) {
            log_write(LOG_PANIC, m->d.id, "cannot mark recipient %d done: %s", index, err);
            all = false;
            continue;
        }
        markers_release(m, index);
    }
    if (m->bounce_recorded && all) /* its failures are recorded: a new failure, a new bounce */
        done_append(m, arena_printf(m->d.arena, BOUNCE_DONE "%s", m->bounce_pending), "the bounce");
}

static enum message_outcome message_finish(struct message_run *m)
{
    for (int i = 0; i < m->env.recipient_count; i++)
        if (!m->env.recipients[i].done) {
            finished_journal(m);
            return MESSAGE_DEFERRED;
        }
    log_write(LOG_MAIN, m->d.id, "Completed");
    if (!spool_remove(m->d.id)) {
        log_write(LOG_PANIC, m->d.id, "failed to remove the message from the spool");
        return MESSAGE_COMPLETED; /* the markers stay: a repeat finds the deliveries */
    }
    markers_release(m, -1);
    unlink(m->done_path);
    return MESSAGE_COMPLETED;
}

static enum message_outcome message_attempt(const struct config *cfg, const char *id,
                                            struct arena *arena, char bounce_id[SPOOL_ID_LEN + 1])
{
    struct message_run m;
    char err[256];
    memset(&m, 0, sizeof m);
    m.d.arena = arena;
    m.d.cfg = cfg;
    m.d.dc = deliver_config_of(cfg);
    m.d.env = &m.env;
    m.d.id = arena_strdup(arena, id);
    if (!spool_read_envelope(arena, id, &m.env, err, sizeof err)) {
        log_write(LOG_PANIC, id, "cannot read the envelope: %s", err);
        return MESSAGE_ERROR;
    }
    done_load(&m);
    for (int i = 0; i < m.env.recipient_count; i++)
        if (!m.env.recipients[i].done)
            recipient_process(&m, i);
    failures_finish(&m, bounce_id);
    return message_finish(&m);
}

enum message_outcome deliver_message_run(const struct config *cfg, const char *id)
{
    int lock = spool_lock_message(id);
    if (lock < 0)
        return MESSAGE_LOCKED;
    struct arena *arena = arena_new(16384);
    char bounce_id[SPOOL_ID_LEN + 1] = "";
    enum message_outcome outcome = message_attempt(cfg, id, arena, bounce_id);
    arena_delete(arena);
    spool_unlock_message(lock);
    if (bounce_id[0])
        deliver_message_run(cfg, bounce_id); /* a bounce is never bounced: depth 1 */
    return outcome;
}

bool deliver_message(const struct config *cfg, const char *id)
{
    enum message_outcome outcome = deliver_message_run(cfg, id);
    return outcome == MESSAGE_COMPLETED || outcome == MESSAGE_DEFERRED;
}
