/*
 * session_data.c - receiving a message: DATA, dot-unstuffing and line ends, the size
 * limit, the PRDR and DATA ACLs, the hand-off to the spool committer and the reply once
 * the message is durable.
 *
 * Line ends (a deliberate choice, see docs/config.md): lines may end in CRLF or in a
 * bare LF; both are stored as CRLF. The end of the message is recognised only as
 * CRLF "." CRLF (a "." line ended by a bare LF, or one that follows a line ended by a
 * bare LF, is message text), so a message cannot be ended early by the bare-LF tricks of
 * SMTP smuggling.
 *
 * Runs on the thread that owns the session; the committer thread only calls the
 * transport's commit_finished hook, and the transport brings the session back here via
 * session_commit_resume().
 */
#include "postern/session.h"

#include "postern/log.h"
#include "postern/spool.h"
#include "session_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define DATA_PARTIAL_FLUSH (64 * 1024) /* flush a line without LF beyond this many bytes */

enum {
    COMMIT_NONE = 0,
    COMMIT_IN_FLIGHT = 1,
    COMMIT_OK = 2,
    COMMIT_FAILED = 3,
};

void session_reset_message(struct session *s)
{
    if (s->writer) {
        spool_message_abort(s->writer);
        s->writer = NULL;
    }
    if (s->commit_writer) {
        spool_message_abort(s->commit_writer);
        s->commit_writer = NULL;
    }
    s->mail_given = false;
    s->queue_only = false;
    s->sender = NULL;
    s->prdr_requested = false;
    s->rcpts = NULL;
    s->rcpt_count = 0;
    s->rcpt_alloc = 0;
    s->rcpt_current = -1;
    s->rcpt_discarded = 0;
    s->rcpt_pending_address = NULL;
    session_vars_clear(&s->acl_m);
    for (int i = 0; i < ACL_HEADER_PLACES; i++)
        buf_free(
            &s->added_headers[i]); /* freed, not kept: nothing message-sized between messages */
    buf_free(&s->pending_reply);
    s->message_id[0] = '\0';
    s->message_size = 0;
    s->received_header_len = 0;
    memset(&s->hdrscan, 0, sizeof s->hdrscan);
    s->data_too_big = false;
    s->data_write_failed = false;
    s->prdr_final[0] = '\0';
    memset(&s->commit_env, 0, sizeof s->commit_env); /* it points into msg_arena */
    if (s->state == SESSION_DATA || s->state == SESSION_COMMIT_WAIT)
        s->state = SESSION_CMD;
    arena_reset(&s->msg_arena);
}

/* The Received: header, from received_header_text when it expands, else built here. */
static const char *received_header(struct session *s)
{
    if (s->cfg->received_header_text && s->cfg->received_header_text[0]) {
        struct expand_ctx ctx;
        const char *out = NULL, *err = NULL;
        expand_ctx_init(&ctx, &s->cmd_arena, s->cfg, session_var_lookup, s);
        if (expand_string(&ctx, s->cfg->received_header_text, &out, &err) == EXPAND_OK && out[0]) {
            /* Normalise line ends of the expanded text to CRLF; like Exim, the date is
             * appended after a semicolon. */
            struct buf b;
            buf_init(&b);
            buf_append_crlf(&b, out);
            while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
                b.len--;
            char date[64];
            time_rfc2822(date, sizeof date, time(NULL));
            buf_printf(&b, "; %s\r\n", date);
            const char *h = arena_strndup(&s->cmd_arena, b.data, b.len);
            buf_free(&b);
            return h;
        }
        log_write(LOG_MAIN | LOG_PANIC, NULL, "expansion of received_header_text failed: %s",
                  err ? err : "empty result");
    }
    char date[64];
    time_rfc2822(date, sizeof date, time(NULL));
    const char *from = s->is_local_input ? "from local (invoked by postern)"
                                         : arena_printf(&s->cmd_arena, "from %s ([%s] port=%d)",
                                                        s->helo_name ? s->helo_name : "",
                                                        s->client_ip, s->client_port);
    return arena_printf(
        &s->cmd_arena,
        "Received: %s\r\n\tby %s with %s (postern %s)\r\n\t(envelope-from <%s>)\r\n"
        "\tid %s%s%s%s;\r\n\t%s\r\n",
        from, s->cfg->primary_hostname, session_protocol(s), POSTERN_VERSION,
        s->sender ? s->sender : "", s->message_id, s->rcpt_count == 1 ? "\r\n\tfor <" : "",
        s->rcpt_count == 1 ? s->rcpts[0].address : "", s->rcpt_count == 1 ? ">" : "", date);
}

static bool data_write(struct session *s, const void *p, size_t n)
{
    if (s->data_too_big || s->data_write_failed)
        return false;
    if (s->cfg->message_size_limit > 0 &&
        s->message_size + (int64_t)n > s->cfg->message_size_limit) {
        s->data_too_big = true;
        return false;
    }
    s->message_size += (int64_t)n;
    if (!s->writer)
        return true; /* -bh: nothing is stored */
    char err[256];
    if (!spool_data_write(s->writer, p, n, err, sizeof err)) {
        log_write(LOG_MAIN | LOG_PANIC, s->message_id, "spool write failed: %s", err);
        s->data_write_failed = true;
        return false;
    }
    return true;
}

enum session_action session_data_begin(struct session *s)
{
    if (!s->mail_given) {
        session_reply(s, 503, "5.5.1", "MAIL command must precede DATA");
        return SESSION_CONTINUE;
    }
    if (s->rcpt_count == 0 && s->rcpt_discarded == 0) {
        session_reply(s, 503, "5.5.1", "Valid RCPT command must precede DATA");
        return SESSION_CONTINUE;
    }
    const char *user_msg = NULL, *log_msg = NULL;
    enum acl_result rc =
        session_run_acl(s, ACL_WHERE_PREDATA, s->cfg->acl_smtp_predata, &user_msg, &log_msg);
    if (rc != ACL_ACCEPT && rc != ACL_DISCARD) {
        log_write(LOG_MAIN | LOG_REJECT, NULL, "%s F=<%s> rejected DATA: %s",
                  session_host_id(s, &s->cmd_arena), s->sender,
                  log_msg    ? log_msg
                  : user_msg ? user_msg
                             : "administrative prohibition");
        session_reply_acl(s, rc, 550, "Administrative prohibition", user_msg);
        if (rc == ACL_DROP) {
            s->state = SESSION_CLOSING;
            return SESSION_CLOSE;
        }
        return SESSION_CONTINUE;
    }
    spool_new_id(s->message_id);
    /* Every recipient discarded: take the data as Exim does, but store nothing. */
    if (!s->test_mode && s->rcpt_count > 0) {
        char err[256];
        s->writer = spool_message_begin(s->message_id, err, sizeof err);
        if (!s->writer) {
            log_write(LOG_MAIN | LOG_PANIC, s->message_id, "cannot create spool file: %s", err);
            session_reply(s, 451, "4.3.0", "Temporary local problem - please try later");
            session_reset_message(s);
            return SESSION_CONTINUE;
        }
    }
    s->message_size = 0;
    const char *received = received_header(s);
    s->received_header_len = (int64_t)strlen(received);
    data_write(s, received, strlen(received));
    session_hdrscan_start(&s->hdrscan, s->received_header_len);
    s->state = SESSION_DATA;
    s->data_line_start = true;
    s->data_prev_crlf = true;
    session_reply(s, 354, NULL, "Enter message, ending with \".\" on a line by itself");
    return SESSION_CONTINUE;
}

/* ---- end of data ---- */

static void prdr_recipient_reply(struct session *s, int i, enum acl_result rc, const char *msg)
{
    struct session_rcpt *r = &s->rcpts[i];
    switch (rc) {
    case ACL_ACCEPT:
    case ACL_DISCARD:
        r->prdr_code = 250;
        r->prdr_text = arena_printf(&s->msg_arena, "250 2.1.5 PRDR R=<%s> acceptance", r->address);
        break;
    case ACL_DEFER:
    case ACL_ERROR:
        r->prdr_code = 450;
        r->prdr_text = arena_printf(
            &s->msg_arena, "450 4.7.1 %s",
            msg ? msg : arena_printf(&s->msg_arena, "PRDR R=<%s> temporary refusal", r->address));
        break;
    default:
        r->prdr_code = 550;
        r->prdr_text = arena_printf(
            &s->msg_arena, "550 5.7.1 %s",
            msg ? msg : arena_printf(&s->msg_arena, "PRDR R=<%s> refusal", r->address));
        break;
    }
    buf_append_str(&s->pending_reply, r->prdr_text);
    buf_append(&s->pending_reply, "\r\n", 2);
    if (r->prdr_code != 250)
        log_write(LOG_MAIN | LOG_REJECT, s->message_id, "%s F=<%s> PRDR %s RCPT <%s>: %s",
                  session_host_id(s, &s->cmd_arena), s->sender,
                  r->prdr_code == 450 ? "temporarily rejected" : "rejected", r->address,
                  msg ? msg : "refused by the PRDR ACL");
}

/* Run acl_smtp_data_prdr once per recipient; returns how many were accepted. */
static int run_prdr(struct session *s, int *deferred)
{
    int accepted = 0;
    *deferred = 0;
    buf_clear(&s->pending_reply);
    buf_append_str(&s->pending_reply, "353 PRDR content analysis beginning\r\n");
    for (int i = 0; i < s->rcpt_count; i++) {
        const char *user_msg = NULL, *log_msg = NULL;
        s->rcpt_current = i;
        enum acl_result rc =
            session_run_acl(s, ACL_WHERE_DATA_PRDR,
                            s->cfg->acl_smtp_data_prdr ? s->cfg->acl_smtp_data_prdr : "accept",
                            &user_msg, &log_msg);
        prdr_recipient_reply(s, i, rc, user_msg);
        if (s->rcpts[i].prdr_code == 250)
            accepted++;
        else if (s->rcpts[i].prdr_code == 450)
            (*deferred)++;
    }
    s->rcpt_current = -1;
    return accepted;
}

/* The added header lines by placement, each group at its offset in -D (in the order of
 * enum acl_header_place, which is the order of the offsets). */
static void fill_added_headers(struct session *s, struct spool_envelope *env)
{
    const int64_t at[ACL_HEADER_PLACES] = {
        [ACL_HEADER_AT_START] = 0,
        [ACL_HEADER_AFTER_RECEIVED] = s->hdrscan.received_end,
        [ACL_HEADER_AT_START_RFC] = s->hdrscan.rfc_end,
        [ACL_HEADER_AT_END] = s->hdrscan.header_end,
    };
    int n = 0;
    for (int i = 0; i < ACL_HEADER_PLACES; i++) {
        if (!s->added_headers[i].len)
            continue;
        env->added_headers[n].at = at[i];
        env->added_headers[n].text = s->added_headers[i].data;
        n++;
    }
    env->added_header_groups = n;
}

static void fill_envelope(struct session *s, struct spool_envelope *env)
{
    memset(env, 0, sizeof *env);
    memcpy(env->id, s->message_id, sizeof env->id);
    env->sender = s->sender ? s->sender : "";
    env->received_time = time(NULL);
    env->size = s->message_size;
    env->host_address = s->is_local_input ? "" : s->client_ip;
    env->host_port = s->client_port;
    env->host_name = s->client_name ? s->client_name : "";
    env->helo_name = s->helo_name ? s->helo_name : "";
    env->protocol = session_protocol(s);
    env->proxy_address = s->proxy_session && !s->proxy_failed ? s->proxy_host_address : "";
    env->interface_address = s->local_ip;
    env->interface_port = s->local_port;
    env->prdr = s->prdr_requested;
    fill_added_headers(s, env);
    int n = 0;
    env->recipients = arena_zalloc(&s->msg_arena, sizeof *env->recipients * (size_t)s->rcpt_count);
    for (int i = 0; i < s->rcpt_count; i++) {
        if (s->prdr_requested && s->rcpts[i].prdr_code && s->rcpts[i].prdr_code != 250)
            continue;
        env->recipients[n++].address = s->rcpts[i].address;
    }
    env->recipient_count = n;
    int vars = 0;
    for (struct session_var *v = s->acl_m.head; v; v = v->next)
        vars++;
    env->acl_var_count = vars;
    env->acl_var_names = arena_alloc(&s->msg_arena, sizeof(char *) * (size_t)(vars + 1));
    env->acl_var_values = arena_alloc(&s->msg_arena, sizeof(char *) * (size_t)(vars + 1));
    int i = 0;
    for (struct session_var *v = s->acl_m.head; v; v = v->next, i++) {
        env->acl_var_names[i] = v->name;
        env->acl_var_values[i] = v->value;
    }
}

static void commit_done(void *arg, bool ok, const char *reason)
{
    struct session *s = arg;
    snprintf(s->commit_reason, sizeof s->commit_reason, "%s",
             ok ? "" : (reason && reason[0] ? reason : "spool commit failed"));
    atomic_store_explicit(&s->commit_state, ok ? COMMIT_OK : COMMIT_FAILED, memory_order_release);
    s->ops->commit_finished(s);
}

/* The "<=" line, as Exim writes it. */
static void log_arrival(struct session *s)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "<= %s %s P=%s", s->sender && s->sender[0] ? s->sender : "<>",
               session_host_id(s, &s->cmd_arena), session_protocol(s));
    if ((s->cfg->log_flags & LOG_SEL_PROXY) && s->proxy_session && !s->proxy_failed)
        buf_printf(&b, " PRX=%s", s->proxy_host_address);
    buf_printf(&b, " S=%lld", (long long)s->message_size);
    if (s->prdr_requested)
        buf_append_str(&b, " PRDR");
    if ((s->cfg->log_flags & LOG_SEL_RECEIVED_RECIPIENTS) && s->rcpt_count > 0) {
        buf_append_str(&b, " for");
        for (int i = 0; i < s->rcpt_count; i++)
            if (!s->rcpts[i].prdr_code || s->rcpts[i].prdr_code == 250)
                buf_printf(&b, " %s", s->rcpts[i].address);
    }
    log_write(LOG_MAIN, s->message_id, "%s", b.data);
    buf_free(&b);
}

/* A message taken and thrown away (every RCPT, or the DATA ACL, said "discard"): logged
 * as Exim does, arrival, blackhole delivery, completion. */
static enum session_action data_discarded(struct session *s, const char *which_acl)
{
    if (s->test_mode) {
        session_trace(s, "SMTP testing: that is not a real message id!");
    } else {
        log_arrival(s);
        log_write(LOG_MAIN, s->message_id, "=> blackhole (%s ACL discarded recipients)", which_acl);
        log_write(LOG_MAIN, s->message_id, "Completed");
    }
    session_reply(s, 250, "2.0.0", arena_printf(&s->cmd_arena, "OK id=%s", s->message_id));
    session_reset_message(s);
    return SESSION_CONTINUE;
}

/* Everything after the final "." : PRDR, the DATA ACL, then the spool commit. */
static enum session_action data_finished(struct session *s)
{
    const char *user_msg = NULL, *log_msg = NULL;
    if (s->data_too_big) {
        log_write(LOG_MAIN | LOG_REJECT, NULL,
                  "%s F=<%s> rejected after DATA: message too big: read=%lld max=%lld",
                  session_host_id(s, &s->cmd_arena), s->sender, (long long)s->message_size,
                  (long long)s->cfg->message_size_limit);
        session_reply(s, 552, "5.3.4", "Message size exceeds maximum permitted");
        session_reset_message(s);
        return SESSION_CONTINUE;
    }
    if (s->data_write_failed) {
        session_reply(s, 451, "4.3.0", "Temporary local problem - please try later");
        session_reset_message(s);
        return SESSION_CONTINUE;
    }
    if (s->rcpt_count == 0) /* every RCPT was discarded: no PRDR, no DATA ACL */
        return data_discarded(s, "RCPT");
    bool prdr = s->prdr_requested && s->rcpt_count > 1;
    int accepted = s->rcpt_count, deferred = 0;
    if (prdr)
        accepted = run_prdr(s, &deferred);

    enum acl_result rc = ACL_ACCEPT;
    if (accepted > 0)
        rc = session_run_acl(s, ACL_WHERE_DATA, s->cfg->acl_smtp_data, &user_msg, &log_msg);
    if (accepted == 0 || (rc != ACL_ACCEPT && rc != ACL_DISCARD)) {
        if (accepted > 0)
            log_write(LOG_MAIN | LOG_REJECT, NULL, "%s F=<%s> %s after DATA: %s",
                      session_host_id(s, &s->cmd_arena), s->sender,
                      rc == ACL_DEFER ? "temporarily rejected" : "rejected",
                      log_msg    ? log_msg
                      : user_msg ? user_msg
                                 : "administrative prohibition");
        if (prdr)
            buf_append_str(&s->out, s->pending_reply.data);
        if (accepted == 0)
            session_reply(s, deferred ? 450 : 550, deferred ? "4.7.1" : "5.7.1",
                          deferred ? "message temporarily rejected for all recipients"
                                   : "message rejected for all recipients");
        else
            session_reply_acl(s, rc, 550, "Administrative prohibition", user_msg);
        bool drop = rc == ACL_DROP;
        session_reset_message(s);
        if (drop) {
            s->state = SESSION_CLOSING;
            return SESSION_CLOSE;
        }
        return SESSION_CONTINUE;
    }
    if (rc == ACL_DISCARD || s->test_mode) {
        if (prdr)
            buf_append_str(&s->out, s->pending_reply.data);
        return data_discarded(s, "DATA");
    }
    /* Exim's final PRDR reply when some recipients were refused (its test 5500). */
    if (prdr && accepted < s->rcpt_count)
        snprintf(s->prdr_final, sizeof s->prdr_final, "id=%s message accepted for some recipients",
                 s->message_id);
    fill_envelope(s, &s->commit_env);
    s->commit_writer = s->writer;
    s->writer = NULL;
    s->state = SESSION_COMMIT_WAIT;
    return SESSION_WAIT_COMMIT; /* the transport calls session_commit_start when done */
}

bool session_commit_start(struct session *s)
{
    char err[256];
    struct spool_writer *w = s->commit_writer;
    s->commit_writer = NULL;
    atomic_store_explicit(&s->commit_state, COMMIT_IN_FLIGHT, memory_order_relaxed);
    if (spool_commit_submit(w, &s->commit_env, commit_done, s, err, sizeof err))
        return true; /* the committer owns the session now */
    log_write(LOG_MAIN | LOG_PANIC, s->message_id, "spool commit failed: %s", err);
    atomic_store_explicit(&s->commit_state, COMMIT_NONE, memory_order_relaxed);
    s->state = SESSION_CMD;
    session_reply(s, 451, "4.3.0", "Temporary local problem - please try later");
    session_reset_message(s);
    return false;
}

enum session_action session_commit_resume(struct session *s)
{
    int st = atomic_load_explicit(&s->commit_state, memory_order_acquire);
    if (st != COMMIT_OK && st != COMMIT_FAILED)
        return SESSION_WAIT_COMMIT;
    atomic_store_explicit(&s->commit_state, COMMIT_NONE, memory_order_relaxed);
    s->state = SESSION_CMD;
    bool prdr = s->prdr_requested && s->rcpt_count > 1;
    if (prdr)
        buf_append_str(&s->out, s->pending_reply.data);
    if (st == COMMIT_OK) {
        log_arrival(s);
        session_reply(s, 250, "2.0.0",
                      s->prdr_final[0] ? s->prdr_final
                                       : arena_printf(&s->cmd_arena, "OK id=%s", s->message_id));
        bool wait = s->queue_only || config_queue_only_now(s->cfg, &s->queue_only_latched);
        if (!wait && s->ops && s->ops->message_accepted)
            s->ops->message_accepted(s, s->message_id);
    } else {
        log_write(LOG_MAIN | LOG_PANIC, s->message_id, "spool commit failed: %s",
                  s->commit_reason[0] ? s->commit_reason : "unknown");
        session_reply(s, 451, "4.3.0", "Temporary local problem - please try later");
    }
    session_reset_message(s);
    return session_process(s);
}

/* ---- the data stream ---- */

/* Store one complete line (without its terminator). */
static void data_line(struct session *s, const char *p, size_t n)
{
    if (s->data_line_start && n > 0 && p[0] == '.' && !(n == 1)) {
        p++; /* dot-unstuffing: "..x" -> ".x" */
        n--;
    }
    session_hdrscan_line_begin(&s->hdrscan, p, n);
    data_write(s, p, n);
    data_write(s, "\r\n", 2);
    session_hdrscan_line_end(&s->hdrscan, s->message_size);
    s->data_line_start = true;
}

enum session_action session_data_consume(struct session *s)
{
    size_t pos = 0;
    enum session_action result = SESSION_CONTINUE;
    while (pos < s->in.len) {
        const char *start = s->in.data + pos;
        size_t avail = s->in.len - pos;
        const char *lf = memchr(start, '\n', avail);
        if (!lf) {
            if (avail < DATA_PARTIAL_FLUSH)
                break;
            /* A very long line: store what we have; it is not a line start any more. */
            size_t n = avail;
            if (start[n - 1] == '\r')
                n--; /* keep a possible CR of a CRLF pair for the next round */
            const char *p = start;
            if (s->data_line_start && p[0] == '.') {
                p++;
                n--;
            }
            if (s->data_line_start)
                session_hdrscan_line_begin(&s->hdrscan, p, n);
            data_write(s, p, n);
            s->data_line_start = false;
            pos += (size_t)(p - start) + n;
            continue;
        }
        size_t line_len = (size_t)(lf - start);
        bool crlf = line_len > 0 && start[line_len - 1] == '\r';
        size_t text_len = crlf ? line_len - 1 : line_len;
        pos += line_len + 1;
        if (s->data_line_start && crlf && s->data_prev_crlf && text_len == 1 && start[0] == '.') {
            buf_consume(&s->in, pos);
            pos = 0;
            result = data_finished(s);
            return result;
        }
        if (!s->data_line_start) {
            data_write(s, start, text_len);
            data_write(s, "\r\n", 2);
            session_hdrscan_line_end(&s->hdrscan, s->message_size);
            s->data_line_start = true;
        } else {
            data_line(s, start, text_len);
        }
        s->data_prev_crlf = crlf;
        s->line_wait_since_ms = time_mono_ms(); /* smtp_receive_timeout counts per line */
    }
    buf_consume(&s->in, pos);
    return result;
}
