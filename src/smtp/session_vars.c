/*
 * session_vars.c - the expansion variables of an SMTP session and the glue that lets
 * the ACL engine act on a session (set acl_c/acl_m variables, log, add headers,
 * controls, verification).
 *
 * Runs on whichever thread currently owns the session. Values are computed from the
 * session struct; computed strings are allocated in the expansion context's arena (the
 * session's command arena). The acl_c/acl_m tables own their variables (one heap block
 * each, freed when replaced or cleared); added headers are copied into the message's
 * added_headers buffer.
 */
#include "postern/session.h"

#include "postern/deliver.h"
#include "postern/log.h"
#include "session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *int_text(struct expand_ctx *ctx, long long v)
{
    return arena_printf(ctx->arena, "%lld", v);
}

static const char *port_text(struct expand_ctx *ctx, int port)
{
    return port ? int_text(ctx, port) : "";
}

static const char *current_rcpt_part(const struct session *s, bool want_domain)
{
    if (s->rcpt_current >= 0 && s->rcpt_current < s->rcpt_count) {
        const struct session_rcpt *r = &s->rcpts[s->rcpt_current];
        return want_domain ? r->domain : r->local_part;
    }
    return "";
}

static const char *recipients_text(struct session *s, struct expand_ctx *ctx)
{
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < s->rcpt_count; i++) {
        if (i)
            buf_append_str(&b, ", ");
        buf_append_str(&b, s->rcpts[i].address);
    }
    const char *out = arena_strndup(ctx->arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return out;
}

static const char *address_part(struct expand_ctx *ctx, const char *address, bool want_domain)
{
    if (!address)
        return "";
    const char *at = strrchr(address, '@');
    if (!at)
        return want_domain ? "" : address;
    return want_domain ? at + 1 : arena_strndup(ctx->arena, address, (size_t)(at - address));
}

/* Variables about the connection and the PROXY negotiation. */
static const char *connection_var(struct session *s, struct expand_ctx *ctx, const char *name)
{
    if (strcmp(name, "sender_host_address") == 0)
        return s->is_local_input ? "" : s->client_ip;
    if (strcmp(name, "sender_host_port") == 0)
        return s->is_local_input ? "" : port_text(ctx, s->client_port);
    if (strcmp(name, "sender_host_name") == 0)
        return s->client_name ? s->client_name : "";
    if (strcmp(name, "sender_helo_name") == 0)
        return s->helo_name ? s->helo_name : "";
    if (strcmp(name, "sender_rcvhost") == 0)
        return session_rcvhost(s, ctx->arena);
    if (strcmp(name, "received_ip_address") == 0 || strcmp(name, "interface_address") == 0)
        return s->local_ip;
    if (strcmp(name, "received_port") == 0 || strcmp(name, "interface_port") == 0)
        return port_text(ctx, s->local_port);
    if (strcmp(name, "proxy_session") == 0)
        return s->proxy_session ? "yes" : "no";
    if (strcmp(name, "proxy_host_address") == 0 || strcmp(name, "proxy_local_address") == 0)
        return s->proxy_host_address;
    if (strcmp(name, "proxy_host_port") == 0 || strcmp(name, "proxy_local_port") == 0)
        return port_text(ctx, s->proxy_host_port);
    if (strcmp(name, "proxy_target_address") == 0 || strcmp(name, "proxy_external_address") == 0)
        return s->proxy_target_address;
    if (strcmp(name, "proxy_target_port") == 0 || strcmp(name, "proxy_external_port") == 0)
        return port_text(ctx, s->proxy_target_port);
    if (strcmp(name, "smtp_command") == 0)
        return s->smtp_command ? s->smtp_command : "";
    if (strcmp(name, "smtp_notquit_reason") == 0)
        return s->notquit_reason ? s->notquit_reason : "";
    if (strcmp(name, "authenticated_id") == 0 || strcmp(name, "authenticated_sender") == 0)
        return "";
    if (strcmp(name, "tls_in_cipher") == 0 || strcmp(name, "tls_cipher") == 0 ||
        strcmp(name, "tls_in_sni") == 0 || strcmp(name, "tls_sni") == 0)
        return "";
    return NULL;
}

/* Variables about the message being received. */
static const char *message_var(struct session *s, struct expand_ctx *ctx, const char *name)
{
    if (strcmp(name, "sender_address") == 0)
        return s->sender ? s->sender : "";
    if (strcmp(name, "sender_address_local_part") == 0)
        return address_part(ctx, s->sender, false);
    if (strcmp(name, "sender_address_domain") == 0)
        return address_part(ctx, s->sender, true);
    if (strcmp(name, "local_part") == 0) {
        if (s->rcpt_pending_address)
            return address_part(ctx, s->rcpt_pending_address, false);
        return current_rcpt_part(s, false);
    }
    if (strcmp(name, "domain") == 0) {
        if (s->rcpt_pending_address)
            return address_part(ctx, s->rcpt_pending_address, true);
        return current_rcpt_part(s, true);
    }
    if (strcmp(name, "recipients_count") == 0 || strcmp(name, "rcpt_count") == 0)
        return int_text(ctx, s->rcpt_count);
    if (strcmp(name, "received_for") == 0)
        return s->rcpt_count == 1 ? s->rcpts[0].address : "";
    if (strcmp(name, "recipients") == 0)
        return recipients_text(s, ctx);
    if (strcmp(name, "message_exim_id") == 0 || strcmp(name, "message_id") == 0)
        return s->message_id;
    if (strcmp(name, "message_size") == 0)
        return s->message_id[0] ? int_text(ctx, s->message_size) : "-1";
    if (strcmp(name, "prdr_requested") == 0)
        return s->prdr_requested ? "yes" : "no";
    if (strcmp(name, "received_protocol") == 0)
        return session_protocol(s);
    return NULL;
}

const char *session_var_lookup(struct expand_ctx *ctx, const char *name)
{
    struct session *s = ctx->user;
    const char *v = connection_var(s, ctx, name);
    if (!v)
        v = message_var(s, ctx, name);
    if (v)
        return v;
    if (strncmp(name, "acl_c", 5) == 0) {
        v = session_vars_get(&s->acl_c, name);
        return v ? v : "";
    }
    if (strncmp(name, "acl_m", 5) == 0) {
        v = session_vars_get(&s->acl_m, name);
        return v ? v : "";
    }
    return NULL;
}

/* ---- acl_c / acl_m variable tables (heap blocks, replaced on every set) ---- */

const char *session_vars_get(const struct session_vars *vars, const char *name)
{
    for (const struct session_var *v = vars->head; v; v = v->next)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

static struct session_var *vars_block(const char *name, const char *value)
{
    size_t nlen = strlen(name) + 1, vlen = strlen(value) + 1;
    size_t size = sizeof(struct session_var) + nlen + vlen;
    struct session_var *v = malloc(size);
    if (!v)
        die("out of memory setting %s", name);
    char *text = (char *)(v + 1);
    memcpy(text, name, nlen);
    memcpy(text + nlen, value, vlen);
    v->name = text;
    v->value = text + nlen;
    v->size = size;
    v->next = NULL;
    return v;
}

void session_vars_set(struct session_vars *vars, const char *name, const char *value)
{
    struct session_var *fresh = vars_block(name, value);
    struct session_var **link = &vars->head;
    while (*link && strcmp((*link)->name, name) != 0)
        link = &(*link)->next;
    if (*link) {
        struct session_var *old = *link;
        fresh->next = old->next;
        vars->bytes -= old->size;
        free(old);
    }
    *link = fresh;
    vars->bytes += fresh->size;
}

void session_vars_clear(struct session_vars *vars)
{
    struct session_var *v = vars->head;
    while (v) {
        struct session_var *next = v->next;
        free(v);
        v = next;
    }
    vars->head = NULL;
    vars->bytes = 0;
}

/* ---- ACL environment callbacks ---- */

static struct session *env_session(struct acl_env *env)
{
    return env->user;
}

static bool env_set_var(struct acl_env *env, const char *name, const char *value)
{
    struct session *s = env_session(env);
    bool conn = strncmp(name, "acl_c", 5) == 0;
    if (!conn && strncmp(name, "acl_m", 5) != 0)
        return false;
    if (strlen(value) > SESSION_VAR_MAX) {
        log_write(LOG_MAIN | LOG_PANIC, s->message_id[0] ? s->message_id : NULL,
                  "%s: set %s: value of %zu bytes is longer than the limit of %d",
                  session_host_id(s, &s->cmd_arena), name, strlen(value), SESSION_VAR_MAX);
        return false;
    }
    session_vars_set(conn ? &s->acl_c : &s->acl_m, name, value);
    return true;
}

static void env_log(struct acl_env *env, char which, const char *text)
{
    struct session *s = env_session(env);
    unsigned dest = which == 'r'   ? (LOG_MAIN | LOG_REJECT)
                    : which == 'p' ? (LOG_MAIN | LOG_PANIC)
                                   : LOG_MAIN;
    log_write(dest, s->message_id[0] ? s->message_id : NULL, "%s", text);
    if (s->test_mode)
        session_trace(s, "LOG: %s", text);
}

static void env_add_header(struct acl_env *env, const char *header)
{
    struct session *s = env_session(env);
    /* Placement prefixes (:at_start:, :at_end:, :after_received:, :at_start_rfc:): all our
     * added headers go together after Received:, so the prefix only needs removing. */
    if (header[0] == ':') {
        const char *end = strchr(header + 1, ':');
        if (end && end - header < 20)
            header = end + 1;
    }
    size_t n = strlen(header);
    if (s->added_headers.len + n + 2 > SESSION_ADDED_HEADERS_MAX) {
        log_write(LOG_MAIN | LOG_PANIC, s->message_id[0] ? s->message_id : NULL,
                  "%s: add_header dropped: the message's added headers would exceed %d bytes",
                  session_host_id(s, &s->cmd_arena), SESSION_ADDED_HEADERS_MAX);
        return;
    }
    /* A header continued over several lines comes joined with "\n": store CRLF. */
    for (const char *p = header; *p; p++) {
        if (*p == '\n' && (p == header || p[-1] != '\r'))
            buf_append(&s->added_headers, "\r", 1);
        buf_append(&s->added_headers, p, 1);
    }
    buf_append_str(&s->added_headers, "\r\n");
}

static bool env_control(struct acl_env *env, const char *control, const char **err)
{
    struct session *s = env_session(env);
    size_t len = strcspn(control, "/"); /* options after '/' are not used by these */
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), control);
    control = name;
    if (strcmp(control, "no_pipelining") == 0) {
        s->no_pipelining = true;
        return true;
    }
    if (strcmp(control, "no_enforce_sync") == 0 || strcmp(control, "enforce_sync") == 0) {
        s->enforce_sync = strcmp(control, "enforce_sync") == 0;
        return true;
    }
    if (strcmp(control, "queue_only") == 0 || strcmp(control, "queue") == 0) {
        s->queue_only = true;
        return true;
    }
    *err = arena_printf(&s->cmd_arena, "control \"%s\" is not supported", name);
    return false;
}

static enum match_result env_verify(struct acl_env *env, enum acl_verify_what what,
                                    const char **reason)
{
    struct session *s = env_session(env);
    const char *address = NULL;
    switch (what) {
    case ACL_VERIFY_HELO:
        if (!s->helo_name)
            return MATCH_NO;
        if (s->helo_name[0] == '[') {
            size_t n = strlen(s->helo_name);
            return (n > 2 && strncmp(s->helo_name + 1, s->client_ip, n - 2) == 0 &&
                    s->client_ip[n - 2] == '\0')
                       ? MATCH_YES
                       : MATCH_NO;
        }
        return (s->client_name && str_ieq(s->client_name, s->helo_name)) ? MATCH_YES : MATCH_NO;
    case ACL_VERIFY_SENDER:
        if (!s->sender || !s->sender[0])
            return MATCH_YES; /* the null sender always verifies */
        address = s->sender;
        break;
    case ACL_VERIFY_RECIPIENT:
        address = s->rcpt_pending_address;
        if (!address && s->rcpt_current >= 0 && s->rcpt_current < s->rcpt_count)
            address = s->rcpts[s->rcpt_current].address;
        break;
    }
    if (!address)
        return MATCH_NO;
    int rc = deliver_route_test(s->cfg, &s->cmd_arena, address, reason);
    return rc == 0 ? MATCH_YES : rc == 2 ? MATCH_DEFER : MATCH_NO;
}

static void env_trace(struct acl_env *env, const char *line)
{
    session_trace(env_session(env), "%s", line);
}

void session_acl_env_init(struct session *s, struct acl_env *env, enum acl_where where)
{
    memset(env, 0, sizeof *env);
    expand_ctx_init(&env->exp, &s->cmd_arena, s->cfg, session_var_lookup, s);
    env->where = where;
    env->verify = env_verify;
    env->set_var = env_set_var;
    env->log = env_log;
    env->add_header = env_add_header;
    env->control = env_control;
    env->trace = s->test_mode ? env_trace : NULL;
    env->user = s;
}
