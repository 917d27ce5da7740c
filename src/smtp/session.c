/*
 * session.c - the SMTP command dialogue (RFC 5321, PIPELINING per RFC 2920, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES, PRDR): greeting, HELO/EHLO, MAIL, RCPT, RSET, NOOP,
 * VRFY, EXPN, HELP, QUIT, the synchronization checks and the PROXY-failure mode.
 * DATA itself lives in session_data.c.
 *
 * A session is owned by one thread at a time (see session.h); nothing here blocks on
 * the network. Replies are appended to s->out; log lines go through src/log.
 */
#include "postern/session.h"

#include "postern/deliver.h"
#include "postern/log.h"
#include "session_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SESSION_ARENA_CHUNK 8192
#define PROXY_FAILED_REPLY "503 Command refused, required Proxy negotiation failed"

struct session *session_new(const struct config *cfg, const struct session_ops *ops,
                            const char *peer_ip, int peer_port, const char *local_ip,
                            int local_port)
{
    struct session *s = calloc(1, sizeof *s);
    if (!s)
        die("out of memory allocating a session");
    s->cfg = cfg;
    s->ops = ops;
    arena_init(&s->conn_arena, SESSION_ARENA_CHUNK);
    arena_init(&s->msg_arena, SESSION_ARENA_CHUNK);
    arena_init(&s->cmd_arena, SESSION_ARENA_CHUNK);
    buf_init(&s->in);
    buf_init(&s->out);
    for (int i = 0; i < ACL_HEADER_PLACES; i++)
        buf_init(&s->added_headers[i]);
    buf_init(&s->pending_reply);
    strlcpy_p(s->client_ip, peer_ip ? peer_ip : "", sizeof s->client_ip);
    s->client_port = peer_port;
    strlcpy_p(s->local_ip, local_ip ? local_ip : "", sizeof s->local_ip);
    s->local_port = local_port;
    s->is_local_input = !peer_ip || !peer_ip[0];
    s->enforce_sync = cfg->smtp_enforce_sync;
    s->rcpt_current = -1;
    s->state = SESSION_CMD;
    s->last_activity_ms = time_mono_ms();
    return s;
}

void session_free(struct session *s)
{
    if (!s)
        return;
    session_reset_message(s);
    buf_free(&s->in);
    buf_free(&s->out);
    buf_free(&s->pending_reply);
    session_vars_clear(&s->acl_c);
    free(s->helo_name);
    arena_reset(&s->conn_arena);
    arena_reset(&s->msg_arena);
    arena_reset(&s->cmd_arena);
    free(s);
}

size_t session_memory(const struct session *s)
{
    size_t added = 0;
    for (int i = 0; i < ACL_HEADER_PLACES; i++)
        added += s->added_headers[i].cap;
    return sizeof *s + added + arena_footprint(&s->conn_arena) + arena_footprint(&s->msg_arena) +
           arena_footprint(&s->cmd_arena) + s->in.cap + s->out.cap + s->pending_reply.cap +
           s->acl_c.bytes + s->acl_m.bytes + (s->helo_name ? strlen(s->helo_name) + 1 : 0);
}

void session_set_proxy(struct session *s, bool required, bool ok, bool local, const char *src_ip,
                       int src_port, const char *dst_ip, int dst_port, const char *failure_reason)
{
    s->proxy_session = required;
    if (!required)
        return;
    if (!ok) {
        /* The seed's way to detect a failed negotiation: $proxy_session true and
         * $proxy_host_address empty. $sender_host_address stays the peer's. */
        s->proxy_failed = true;
        s->proxy_host_address[0] = '\0';
        s->proxy_failure_reason =
            arena_strdup(&s->conn_arena, failure_reason ? failure_reason : "unknown");
        return;
    }
    strlcpy_p(s->proxy_host_address, s->client_ip, sizeof s->proxy_host_address);
    s->proxy_host_port = s->client_port;
    if (local) {
        /* Health check (v2 LOCAL, v1 UNKNOWN, v2 UNSPEC): the proxy is the client. */
        return;
    }
    strlcpy_p(s->client_ip, src_ip, sizeof s->client_ip);
    s->client_port = src_port;
    strlcpy_p(s->proxy_target_address, dst_ip, sizeof s->proxy_target_address);
    s->proxy_target_port = dst_port;
}

/* ---- replies ---- */

void session_reply_raw(struct session *s, const char *line)
{
    buf_append_str(&s->out, line);
    buf_append(&s->out, "\r\n", 2);
}

/* A message may start with its own code ("550 5.7.1 text"): Exim lets it override the
 * default when the first digit agrees. */
static const char *reply_code_override(const char *text, int *code, const char **enhanced)
{
    if (strlen(text) >= 4 && text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
        text[2] >= '0' && text[2] <= '9' && (text[3] == ' ' || text[3] == '-') &&
        text[0] == '0' + *code / 100) {
        *code = atoi(text);
        text += 4;
        /* An enhanced code "x.y.z " of its own stays in the text, replacing ours. */
        if (text[0] == text[-4] && text[1] == '.')
            *enhanced = NULL;
    }
    return text;
}

void session_reply(struct session *s, int code, const char *enhanced, const char *text)
{
    text = reply_code_override(text, &code, &enhanced);
    const char *line = text;
    for (;;) {
        const char *nl = strchr(line, '\n');
        bool last = nl == NULL;
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        buf_printf(&s->out, "%03d%c", code, last ? ' ' : '-');
        if (enhanced && s->esmtp)
            buf_printf(&s->out, "%s ", enhanced);
        buf_append(&s->out, line, n);
        buf_append(&s->out, "\r\n", 2);
        if (last)
            break;
        line = nl + 1;
    }
}

void session_trace(struct session *s, const char *fmt, ...)
{
    if (!s->test_mode)
        return;
    va_list ap;
    va_start(ap, fmt);
    buf_append_str(&s->out, ">>> ");
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One output line per trace: a CR or LF in traced text (a multi-line add_header, say)
     * is shown escaped, as log lines show it. */
    for (const char *p = line; *p; p++) {
        if (*p == '\n' || *p == '\r')
            buf_append_str(&s->out, *p == '\n' ? "\\n" : "\\r");
        else
            buf_append(&s->out, p, 1);
    }
    buf_append(&s->out, "\r\n", 2);
}

/* ---- identities for logs and headers ---- */

const char *session_protocol(const struct session *s)
{
    if (s->is_local_input)
        return s->esmtp ? "local-esmtp" : "local-smtp";
    return s->esmtp ? "esmtp" : "smtp";
}

const char *session_host_id(struct session *s, struct arena *arena)
{
    if (s->is_local_input)
        return "U=postern";
    const char *name = s->client_name;
    const char *helo = s->helo_name;
    bool port = s->cfg->log_flags & LOG_SEL_INCOMING_PORT;
    char addr[96];
    if (port)
        snprintf(addr, sizeof addr, "[%s]:%d", s->client_ip, s->client_port);
    else
        snprintf(addr, sizeof addr, "[%s]", s->client_ip);
    if (name && helo && !str_ieq(name, helo))
        return arena_printf(arena, "H=%s (%s) %s", name, helo, addr);
    if (name)
        return arena_printf(arena, "H=%s %s", name, addr);
    if (helo)
        return arena_printf(arena, "H=(%s) %s", helo, addr);
    return arena_printf(arena, "H=%s", addr);
}

const char *session_rcvhost(struct session *s, struct arena *arena)
{
    if (s->is_local_input)
        return "";
    if (s->client_name)
        return arena_printf(arena, "%s ([%s]%s%s)", s->client_name, s->client_ip,
                            s->helo_name ? " helo=" : "", s->helo_name ? s->helo_name : "");
    return arena_printf(arena, "(%s) [%s]", s->helo_name ? s->helo_name : "", s->client_ip);
}

/* ---- ACL glue ---- */

enum acl_result session_run_acl(struct session *s, enum acl_where where, const char *acl,
                                const char **user_msg, const char **log_msg)
{
    struct acl_env env;
    session_acl_env_init(s, &env, where);
    enum acl_result rc = acl_check(s->cfg, acl, &env);
    *user_msg = env.user_message;
    *log_msg = env.log_message;
    if (env.delay_ms > 0 && !s->test_mode) {
        /* As in Exim, "delay =" holds the reply: what is already in s->out goes out first,
         * then the transport suspends the session (no thread waits) until the time is up. */
        int64_t ms = env.delay_ms > 3600000 ? 3600000 : env.delay_ms;
        if (!s->delay_until_ms) {
            s->delay_hold = s->out.len;
            s->delay_where = where;
            s->delay_until_ms = time_mono_ms();
        }
        s->delay_until_ms += ms;
    } else if (env.delay_ms > 0) {
        session_trace(s, "delay of %lld ms skipped in -bh mode", (long long)env.delay_ms);
    }
    if (rc == ACL_ERROR)
        log_write(LOG_MAIN | LOG_PANIC, s->message_id[0] ? s->message_id : NULL, "%s ACL error: %s",
                  session_host_id(s, &s->cmd_arena), env.log_message ? env.log_message : "unknown");
    if (s->test_mode)
        session_trace(s, "%s ACL returned %s", acl ? acl : "(default)", acl_result_name(rc));
    return rc;
}

void session_reply_acl(struct session *s, enum acl_result rc, int deny_code, const char *deny_text,
                       const char *user_msg)
{
    switch (rc) {
    case ACL_DEFER:
    case ACL_ERROR:
        session_reply(s, 451, "4.3.0",
                      rc == ACL_DEFER && user_msg ? user_msg
                                                  : "Temporary local problem - please try later");
        break;
    default:
        session_reply(s, deny_code,
                      deny_code / 100 == 5   ? "5.7.1"
                      : deny_code / 100 == 4 ? "4.7.1"
                                             : "2.5.2", /* VRFY's 252 */
                      user_msg ? user_msg : deny_text);
        break;
    }
}

/* Log a rejection the way Exim does: "H=... [F=<sender>] rejected WHAT: reason". */
static void session_log_reject(struct session *s, const char *what, const char *user_msg,
                               const char *log_msg, enum acl_result rc)
{
    const char *reason = log_msg ? log_msg : user_msg;
    if (!reason)
        reason = rc == ACL_DEFER ? "temporarily rejected" : "administrative prohibition";
    if (s->sender)
        log_write(LOG_MAIN | LOG_REJECT, NULL, "%s F=<%s> %s %s: %s",
                  session_host_id(s, &s->cmd_arena), s->sender,
                  rc == ACL_DEFER ? "temporarily rejected" : "rejected", what, reason);
    else
        log_write(LOG_MAIN | LOG_REJECT, NULL, "%s %s %s: %s", session_host_id(s, &s->cmd_arena),
                  rc == ACL_DEFER ? "temporarily rejected" : "rejected", what, reason);
}

static void run_notquit(struct session *s, const char *reason);

/* ---- greeting ---- */

static void sync_error(struct session *s, const char *why, const char *what)
{
    size_t n = s->in.len < 150 ? s->in.len : 150;
    char input[160];
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < sizeof input; i++) {
        unsigned char c = (unsigned char)s->in.data[i];
        input[j++] = (c >= 32 && c < 127) ? (char)c : '.';
    }
    input[j] = '\0';
    log_write(LOG_MAIN | LOG_REJECT, NULL,
              "SMTP protocol synchronization error (%s): rejected %s %s next input=\"%s\"", why,
              what, session_host_id(s, &s->cmd_arena), input);
    session_reply(s, 554, NULL, "SMTP synchronization error");
    s->state = SESSION_CLOSING;
    run_notquit(s, "synchronization-error");
}

static bool input_waiting(struct session *s, size_t consumed)
{
    if (s->in.len > consumed)
        return true;
    return s->ops && s->ops->input_pending && s->ops->input_pending(s);
}

enum session_action session_delay_done(struct session *s, enum session_action then)
{
    bool connect = s->delay_where == ACL_WHERE_CONNECT && s->delay_until_ms;
    s->delay_until_ms = 0;
    s->line_wait_since_ms = time_mono_ms();
    if (connect && then == SESSION_CONTINUE && s->state == SESSION_CMD && s->enforce_sync &&
        input_waiting(s, 0)) {
        s->out.len = s->delay_hold; /* the banner was held: it is never sent */
        s->out.data[s->out.len] = '\0';
        sync_error(s, "input sent without waiting for greeting", "connection from");
        return SESSION_CLOSE;
    }
    return then == SESSION_WAIT_DELAY ? SESSION_CONTINUE : then;
}

enum session_action session_start(struct session *s)
{
    const char *user_msg = NULL, *log_msg = NULL;
    if (s->cfg->log_flags & LOG_SEL_SMTP_CONNECTION)
        log_write(LOG_MAIN, NULL, "SMTP connection from %s", session_host_id(s, &s->cmd_arena));

    if (!s->proxy_failed) {
        enum acl_result rc =
            session_run_acl(s, ACL_WHERE_CONNECT, s->cfg->acl_smtp_connect, &user_msg, &log_msg);
        if (rc != ACL_ACCEPT && rc != ACL_DISCARD) {
            log_write(LOG_MAIN | LOG_REJECT, NULL, "%s rejected connection in \"connect\" ACL%s%s",
                      session_host_id(s, &s->cmd_arena), (log_msg || user_msg) ? ": " : "",
                      log_msg    ? log_msg
                      : user_msg ? user_msg
                                 : "");
            session_reply_acl(s, rc, 554, "Administrative prohibition", user_msg);
            s->state = SESSION_CLOSING;
            return SESSION_CLOSE;
        }
        if (s->enforce_sync && input_waiting(s, 0)) {
            sync_error(s, "input sent without waiting for greeting", "connection from");
            return SESSION_CLOSE;
        }
    } else {
        /* Run the connect ACL too, so the seed's example can log the failure. */
        session_run_acl(s, ACL_WHERE_CONNECT, s->cfg->acl_smtp_connect, &user_msg, &log_msg);
        s->state = SESSION_PROXY_FAILED;
    }

    const char *banner = NULL, *err = NULL;
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &s->cmd_arena, s->cfg, session_var_lookup, s);
    if (expand_string(&ctx, s->cfg->smtp_banner ? s->cfg->smtp_banner : "$primary_hostname ESMTP",
                      &banner, &err) != EXPAND_OK) {
        log_write(LOG_MAIN | LOG_PANIC, NULL, "expansion of smtp_banner failed: %s",
                  err ? err : "?");
        banner = s->cfg->primary_hostname;
    }
    session_reply(s, 220, NULL, banner);
    return SESSION_CONTINUE;
}

/* ---- commands ---- */

/* The HELO name is replaced by every HELO/EHLO: one heap block, the old one freed. */
static void session_set_helo(struct session *s, const char *name)
{
    free(s->helo_name);
    s->helo_name = NULL;
    if (name && !(s->helo_name = strdup(name)))
        die("out of memory storing a HELO name");
}

static void cmd_helo(struct session *s, const struct smtp_command *cmd)
{
    const char *user_msg = NULL, *log_msg = NULL;
    /* HELO/EHLO abandons any message (and its acl_m variables) before the HELO ACL runs. */
    session_reset_message(s);
    session_set_helo(s, cmd->arg);
    const char *helo = s->helo_name;
    s->esmtp = cmd->verb == SMTP_VERB_EHLO;
    enum acl_result rc =
        session_run_acl(s, ACL_WHERE_HELO, s->cfg->acl_smtp_helo, &user_msg, &log_msg);
    if (rc != ACL_ACCEPT && rc != ACL_DISCARD) {
        session_log_reject(s, cmd->verb == SMTP_VERB_EHLO ? "EHLO or HELO" : "EHLO or HELO",
                           user_msg, log_msg, rc);
        session_set_helo(s, NULL);
        s->esmtp = false;
        session_reply_acl(s, rc, 550, "Administrative prohibition", user_msg);
        if (rc == ACL_DROP)
            s->state = SESSION_CLOSING;
        return;
    }
    const char *greeting =
        s->is_local_input
            ? arena_printf(&s->cmd_arena, "%s Hello %s", s->cfg->primary_hostname, helo)
            : arena_printf(&s->cmd_arena, "%s Hello %s [%s]", s->cfg->primary_hostname, helo,
                           s->client_ip);
    if (!s->esmtp) {
        session_reply(s, 250, NULL, greeting);
        s->pipelining_advertised = false;
        return;
    }
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &s->cmd_arena, s->cfg, session_var_lookup, s);
    const char *err = NULL;
    enum match_result pipelining = s->no_pipelining
                                       ? MATCH_NO
                                       : list_match_host(&ctx,
                                                         s->cfg->pipelining_advertise_hosts
                                                             ? s->cfg->pipelining_advertise_hosts
                                                             : "*",
                                                         s->client_ip, s->client_name, &err);
    s->pipelining_advertised = pipelining == MATCH_YES;
    s->prdr_advertised = s->cfg->prdr_enable;
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, greeting);
    if (s->cfg->message_size_limit > 0)
        buf_printf(&b, "\nSIZE %lld", (long long)s->cfg->message_size_limit);
    else
        buf_append_str(&b, "\nSIZE");
    buf_append_str(&b, "\n8BITMIME");
    if (s->pipelining_advertised)
        buf_append_str(&b, "\nPIPELINING");
    buf_append_str(&b, "\nENHANCEDSTATUSCODES");
    if (s->prdr_advertised)
        buf_append_str(&b, "\nPRDR");
    buf_append_str(&b, "\nHELP");
    bool esmtp = s->esmtp;
    s->esmtp = false; /* no enhanced codes on the EHLO reply lines */
    session_reply(s, 250, NULL, b.data);
    s->esmtp = esmtp;
    buf_free(&b);
}

static void cmd_mail(struct session *s, const struct smtp_command *cmd)
{
    const char *user_msg = NULL, *log_msg = NULL;
    if (!s->helo_name) {
        session_reply(s, 503, "5.5.1", "HELO or EHLO required");
        return;
    }
    if (s->mail_given) {
        session_reply(s, 503, "5.5.1", "sender already given");
        return;
    }
    if (cmd->unknown_param) {
        session_reply(
            s, 555, "5.5.4",
            arena_printf(&s->cmd_arena, "Unsupported MAIL parameter: %s", cmd->unknown_param));
        return;
    }
    if (cmd->has_size && s->cfg->message_size_limit > 0 && cmd->size > s->cfg->message_size_limit) {
        session_reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
        return;
    }
    /* As in Exim, MAIL starts a message afresh: acl_m variables set before it (connect,
     * HELO, VRFY ACLs) are gone before the MAIL ACL runs. */
    session_reset_message(s);
    s->sender = arena_strdup(&s->msg_arena, cmd->address);
    s->prdr_requested = cmd->prdr && s->prdr_advertised;
    enum acl_result rc =
        session_run_acl(s, ACL_WHERE_MAIL, s->cfg->acl_smtp_mail, &user_msg, &log_msg);
    if (rc != ACL_ACCEPT && rc != ACL_DISCARD) {
        session_log_reject(s, arena_printf(&s->cmd_arena, "MAIL <%s>", cmd->address), user_msg,
                           log_msg, rc);
        session_reply_acl(s, rc, 550, "Administrative prohibition", user_msg);
        session_reset_message(s); /* after the reply: user_msg lives in msg_arena */
        if (rc == ACL_DROP)
            s->state = SESSION_CLOSING;
        return;
    }
    s->mail_given = true;
    session_reply(s, 250, "2.1.0", s->prdr_requested ? "OK, PRDR Requested" : "OK");
}

static void add_recipient(struct session *s, const struct smtp_command *cmd)
{
    if (s->rcpt_count == s->rcpt_alloc) {
        int n = s->rcpt_alloc ? s->rcpt_alloc * 2 : 8;
        struct session_rcpt *r = arena_zalloc(&s->msg_arena, sizeof *r * (size_t)n);
        if (s->rcpt_count)
            memcpy(r, s->rcpts, sizeof *r * (size_t)s->rcpt_count);
        s->rcpts = r;
        s->rcpt_alloc = n;
    }
    struct session_rcpt *r = &s->rcpts[s->rcpt_count++];
    memset(r, 0, sizeof *r);
    r->address = arena_strdup(&s->msg_arena, cmd->address);
    r->local_part = arena_strdup(&s->msg_arena, cmd->local_part);
    r->domain = arena_strdup(&s->msg_arena, cmd->domain);
}

static void cmd_rcpt(struct session *s, const struct smtp_command *cmd)
{
    const char *user_msg = NULL, *log_msg = NULL;
    if (!s->mail_given) {
        session_reply(s, 503, "5.5.1", "sender not yet given");
        return;
    }
    if (cmd->unknown_param) {
        session_reply(
            s, 555, "5.5.4",
            arena_printf(&s->cmd_arena, "Unsupported RCPT parameter: %s", cmd->unknown_param));
        return;
    }
    if (s->cfg->recipients_max > 0 && s->rcpt_count >= s->cfg->recipients_max) {
        session_reply(s, 452, "4.5.3", "Too many recipients");
        return;
    }
    s->rcpt_pending_address = cmd->address;
    enum acl_result rc =
        s->cfg->acl_smtp_rcpt
            ? session_run_acl(s, ACL_WHERE_RCPT, s->cfg->acl_smtp_rcpt, &user_msg, &log_msg)
            : ACL_DENY;
    s->rcpt_pending_address = NULL;
    if (rc == ACL_ACCEPT) {
        add_recipient(s, cmd);
        session_reply(s, 250, "2.1.5", "Accepted");
        return;
    }
    if (rc == ACL_DISCARD) {
        /* Accepted on the wire, thrown away (Exim logs it at arrival). */
        s->rcpt_discarded++;
        log_write(LOG_MAIN, NULL, "%s F=<%s> RCPT %s: discarded by RCPT ACL",
                  session_host_id(s, &s->cmd_arena), s->sender, cmd->address);
        session_reply(s, 250, "2.1.5", "Accepted");
        return;
    }
    session_log_reject(s, arena_printf(&s->cmd_arena, "RCPT <%s>", cmd->address), user_msg, log_msg,
                       rc);
    session_reply_acl(s, rc, 550, "Administrative prohibition", user_msg);
    if (rc == ACL_DROP)
        s->state = SESSION_CLOSING;
}

/* VRFY: refused unless acl_smtp_vrfy accepts; then the address is routed, as Exim does. */
static void cmd_vrfy(struct session *s, const struct smtp_command *cmd)
{
    const char *user_msg = NULL, *log_msg = NULL, *reason = NULL;
    const char *address = cmd->arg;
    size_t n = strlen(address);
    if (n >= 2 && address[0] == '<' && address[n - 1] == '>')
        address = arena_strndup(&s->cmd_arena, address + 1, n - 2);
    if (!s->cfg->acl_smtp_vrfy) {
        session_reply(s, 252, "2.5.2", "Administrative prohibition");
        return;
    }
    s->rcpt_pending_address = address;
    enum acl_result rc =
        session_run_acl(s, ACL_WHERE_VRFY, s->cfg->acl_smtp_vrfy, &user_msg, &log_msg);
    if (rc != ACL_ACCEPT) {
        s->rcpt_pending_address = NULL;
        session_reply_acl(s, rc, 252, "Administrative prohibition", user_msg);
        return;
    }
    int routed = deliver_route_test(s->cfg, &s->cmd_arena, address, &reason);
    s->rcpt_pending_address = NULL;
    if (routed == 0)
        session_reply(s, 250, "2.1.5", arena_printf(&s->cmd_arena, "<%s> is deliverable", address));
    else if (routed == 2)
        session_reply(s, 451, "4.3.0",
                      arena_printf(&s->cmd_arena, "<%s> could not be verified now", address));
    else
        session_reply(s, 550, "5.1.1",
                      arena_printf(&s->cmd_arena, "<%s> is not deliverable: %s", address,
                                   reason ? reason : "Unrouteable address"));
}

/* acl_smtp_notquit: run, for logging only, when a session ends without QUIT. */
static void run_notquit(struct session *s, const char *reason)
{
    if (!s->cfg->acl_smtp_notquit || s->proxy_failed)
        return;
    const char *user_msg = NULL, *log_msg = NULL;
    s->notquit_reason = reason;
    session_run_acl(s, ACL_WHERE_NOTQUIT, s->cfg->acl_smtp_notquit, &user_msg, &log_msg);
}

static enum session_action cmd_quit(struct session *s)
{
    const char *user_msg = NULL, *log_msg = NULL;
    if (!s->proxy_failed && s->cfg->acl_smtp_quit)
        session_run_acl(s, ACL_WHERE_QUIT, s->cfg->acl_smtp_quit, &user_msg, &log_msg);
    /* As in Exim, the QUIT ACL's result changes nothing, but its message is the 221 text. */
    session_reply(s, 221, "2.0.0",
                  user_msg ? user_msg
                           : arena_printf(&s->cmd_arena, "%s closing connection",
                                          s->cfg->primary_hostname));
    if (s->cfg->log_flags & LOG_SEL_SMTP_CONNECTION)
        log_write(LOG_MAIN, NULL, "SMTP connection from %s closed by QUIT",
                  session_host_id(s, &s->cmd_arena));
    s->state = SESSION_CLOSING;
    return SESSION_CLOSE;
}

/* An unrecognized command or an overlong line: 500, and too many of them end the session. */
static void cmd_unknown(struct session *s, const char *enhanced, const char *reason)
{
    s->unknown_commands++;
    if (s->cfg->smtp_max_unknown_commands > 0 &&
        s->unknown_commands > s->cfg->smtp_max_unknown_commands) {
        log_write(LOG_MAIN | LOG_REJECT, NULL,
                  "SMTP call from %s dropped: too many unrecognized commands",
                  session_host_id(s, &s->cmd_arena));
        session_reply(s, 500, "5.5.1", "Too many unrecognized commands");
        s->state = SESSION_CLOSING;
        run_notquit(s, "bad-commands");
        return;
    }
    session_reply(s, 500, enhanced, reason);
}

/* RFC 2920: commands that must end a pipelined group, and, without PIPELINING, all. */
static bool command_needs_sync(const struct session *s, enum smtp_verb verb)
{
    switch (verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
    case SMTP_VERB_DATA:
    case SMTP_VERB_VRFY:
    case SMTP_VERB_EXPN:
    case SMTP_VERB_ETRN:
    case SMTP_VERB_STARTTLS:
        return true;
    case SMTP_VERB_QUIT:
        return false;
    default:
        return !s->pipelining_advertised;
    }
}

static enum session_action session_command(struct session *s, const char *line, size_t len)
{
    struct smtp_command cmd;
    const char *reason = NULL;
    s->smtp_command = arena_strndup(&s->cmd_arena, line, len);
    enum smtp_parse_status st = smtp_parse_command(&s->cmd_arena, line, len, &cmd, &reason);

    if (s->state == SESSION_PROXY_FAILED) {
        if (st == SMTP_PARSE_OK && cmd.verb == SMTP_VERB_QUIT) {
            session_reply(
                s, 221, NULL,
                arena_printf(&s->cmd_arena, "%s closing connection", s->cfg->primary_hostname));
            s->state = SESSION_CLOSING;
            return SESSION_CLOSE;
        }
        session_reply_raw(s, PROXY_FAILED_REPLY);
        return SESSION_CONTINUE;
    }
    if (st == SMTP_PARSE_UNKNOWN_COMMAND) {
        cmd_unknown(s, "5.5.1", "Unrecognized command");
        return s->state == SESSION_CLOSING ? SESSION_CLOSE : SESSION_CONTINUE;
    }
    if (st == SMTP_PARSE_SYNTAX) {
        session_reply(s, 501, "5.5.2", reason ? reason : "syntax error");
        return SESSION_CONTINUE;
    }
    if (s->enforce_sync && command_needs_sync(s, cmd.verb) && input_waiting(s, 0)) {
        sync_error(s,
                   s->pipelining_advertised ? "next input sent too soon"
                                            : "next input sent too soon: pipelining was not "
                                              "advertised",
                   arena_printf(&s->cmd_arena, "\"%.*s\"", (int)(len > 100 ? 100 : len), line));
        return SESSION_CLOSE;
    }
    switch (cmd.verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
        cmd_helo(s, &cmd);
        break;
    case SMTP_VERB_MAIL:
        cmd_mail(s, &cmd);
        break;
    case SMTP_VERB_RCPT:
        cmd_rcpt(s, &cmd);
        break;
    case SMTP_VERB_DATA:
        return session_data_begin(s);
    case SMTP_VERB_RSET:
        session_reset_message(s);
        session_reply(s, 250, "2.0.0", "Reset OK");
        break;
    case SMTP_VERB_NOOP:
        session_reply(s, 250, "2.0.0", "OK");
        break;
    case SMTP_VERB_QUIT:
        return cmd_quit(s);
    case SMTP_VERB_VRFY:
        cmd_vrfy(s, &cmd);
        break;
    case SMTP_VERB_EXPN:
        session_reply(s, 550, "5.7.1", "Administrative prohibition");
        break;
    case SMTP_VERB_HELP:
        session_reply(s, 214, NULL,
                      "Commands supported:\nHELO EHLO MAIL RCPT DATA NOOP QUIT RSET HELP");
        break;
    case SMTP_VERB_BDAT:
    case SMTP_VERB_STARTTLS:
    case SMTP_VERB_AUTH:
    case SMTP_VERB_ETRN:
    default:
        session_reply(s, 502, "5.5.1",
                      arena_printf(&s->cmd_arena, "%s command not implemented", cmd.verb_text));
        break;
    }
    return s->state == SESSION_CLOSING ? SESSION_CLOSE : SESSION_CONTINUE;
}

/* Find the end of the next line in s->in; returns its length (without the terminator) and
 * sets *next to the offset after the LF, or returns -1 when no complete line is there. */
static long next_line(const struct buf *in, size_t *next)
{
    const char *lf = in->len ? memchr(in->data, '\n', in->len) : NULL;
    if (!lf)
        return -1;
    size_t end = (size_t)(lf - in->data);
    *next = end + 1;
    if (end > 0 && in->data[end - 1] == '\r')
        end--;
    return (long)end;
}

/* The longest command line accepted, without its CRLF. */
static size_t max_line(const struct session *s)
{
    return (size_t)(s->cfg->smtp_max_line_length > 0 ? s->cfg->smtp_max_line_length : 2048);
}

/* No LF yet: is what is buffered already longer than any acceptable line? A line of
 * exactly the maximum may be waiting for its LF with its CR already here. */
static bool partial_line_too_long(const struct session *s)
{
    size_t max = max_line(s);
    if (s->in.len <= max)
        return false;
    return !(s->in.len == max + 1 && s->in.data[max] == '\r');
}

/* After an overlong line was refused: drop input up to and including the next LF, which
 * may come in a later read. Returns true once the rest of the line is gone. */
static bool discard_rest_of_line(struct session *s)
{
    const char *lf = s->in.len ? memchr(s->in.data, '\n', s->in.len) : NULL;
    if (!lf) {
        buf_clear(&s->in);
        return false;
    }
    buf_consume(&s->in, (size_t)(lf - s->in.data) + 1);
    s->discarding_line = false;
    return true;
}

/* An overlong command line: 500, as Exim does, and the session goes on with the next line. */
static void refuse_long_line(struct session *s)
{
    log_write(LOG_MAIN | LOG_REJECT, NULL, "%s SMTP command line too long (over %zu bytes)",
              session_host_id(s, &s->cmd_arena), max_line(s));
    cmd_unknown(s, "5.5.2", "Line too long");
}

/* Starting a new command: everything of the previous command's lifetime goes. */
static void session_begin_command(struct session *s)
{
    arena_reset(&s->cmd_arena);
    s->smtp_command = NULL;
    s->rcpt_pending_address = NULL;
    s->notquit_reason = NULL;
}

enum session_action session_process(struct session *s)
{
    s->last_activity_ms = time_mono_ms();
    for (;;) {
        if (s->state == SESSION_CLOSING)
            return SESSION_CLOSE;
        if (s->state == SESSION_COMMIT_WAIT)
            return SESSION_WAIT_COMMIT;
        if (s->delay_until_ms)
            return SESSION_WAIT_DELAY; /* nothing more is read until the delay is over */
        if (s->state == SESSION_DATA) {
            enum session_action a = session_data_consume(s);
            if (a != SESSION_CONTINUE || s->state == SESSION_DATA)
                return a;
            continue;
        }
        if (s->discarding_line && !discard_rest_of_line(s))
            return SESSION_CONTINUE;
        size_t next = 0;
        long len = next_line(&s->in, &next);
        if (len < 0 && !partial_line_too_long(s))
            return SESSION_CONTINUE;
        session_begin_command(s);
        if (len < 0 || (size_t)len > max_line(s)) {
            s->discarding_line = true;
            refuse_long_line(s);
            continue;
        }
        size_t line_len = (size_t)len;
        char *line = arena_strndup(&s->cmd_arena, s->in.data, line_len); /* keeps NULs */
        buf_consume(&s->in, next);
        bool was_data = s->state == SESSION_DATA;
        enum session_action a = session_command(s, line, line_len);
        s->line_wait_since_ms = time_mono_ms(); /* smtp_receive_timeout counts per line */
        if (s->state == SESSION_DATA && !was_data)
            s->data_started_ms = s->line_wait_since_ms;
        if (a == SESSION_CLOSE || s->state == SESSION_CLOSING)
            return SESSION_CLOSE;
    }
}

enum session_action session_timeout(struct session *s)
{
    bool in_data = s->state == SESSION_DATA;
    run_notquit(s, in_data ? "data-timeout" : "command-timeout");
    log_write(LOG_MAIN, NULL, "SMTP %s timeout on connection from %s%s",
              in_data ? "data" : "command", session_host_id(s, &s->cmd_arena),
              in_data ? " (message abandoned)" : "");
    session_reset_message(s);
    session_reply(s, 421, "4.4.2",
                  arena_printf(&s->cmd_arena, "%s: SMTP %s timeout - closing connection",
                               s->cfg->primary_hostname, in_data ? "incoming data" : "command"));
    s->state = SESSION_CLOSING;
    return SESSION_CLOSE;
}

enum session_action session_shutdown_notice(struct session *s)
{
    run_notquit(s, "signal-exit");
    session_reset_message(s);
    session_reply(s, 421, "4.3.2",
                  arena_printf(&s->cmd_arena, "%s lost input connection... service shutting down",
                               s->cfg->primary_hostname));
    s->state = SESSION_CLOSING;
    return SESSION_CLOSE;
}

void session_lost(struct session *s, const char *why)
{
    run_notquit(s, "connection-lost");
    if (s->state == SESSION_DATA || s->writer)
        log_write(LOG_MAIN, NULL, "SMTP connection from %s lost while reading message data%s%s",
                  session_host_id(s, &s->cmd_arena), why ? ": " : "", why ? why : "");
    else if (s->cfg->log_flags & LOG_SEL_SMTP_CONNECTION)
        log_write(LOG_MAIN, NULL, "SMTP connection from %s lost%s%s",
                  session_host_id(s, &s->cmd_arena), why ? ": " : "", why ? why : "");
    session_reset_message(s);
}
