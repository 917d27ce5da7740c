/*
 * session_vars.c - the expansion variables of an SMTP session and the glue that lets
 * the ACL engine act on a session (set acl_c/acl_m variables, log, add headers,
 * controls, verification).
 *
 * The variables are the session's table in the variable registry (session_var_table,
 * include/postern/vars.h): name, lifetime, getter. Runs on whichever thread currently owns
 * the session. Values are computed from the session struct; computed strings are
 * allocated in the expansion context's arena (the session's command arena). The acl_c/acl_m
 * tables own their variables (one heap block each, freed when replaced or cleared); added
 * headers are copied into the message's added_headers buffers, one per placement.
 */
#include "postern/session.h"

#include "postern/address.h"
#include "postern/deliver.h"
#include "postern/log.h"
#include "postern/vars.h"
#include "session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The session's table in the variable registry (include/postern/vars.h) ----
 * Getters read ctx->user, the struct session expanding. Adding a variable: one getter and
 * one line in session_var_defs (kept sorted; tests/unit/expand/test_vars.c checks it). */

static struct session *var_session(const struct expand_ctx *ctx)
{
    return ctx->user;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

static const char *int_text(struct expand_ctx *ctx, long long v)
{
    return arena_printf(ctx->arena, "%lld", v);
}

static const char *port_text(struct expand_ctx *ctx, int port)
{
    return port ? int_text(ctx, port) : "";
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

/* The recipient a RCPT, VRFY or PRDR ACL is about (pending, or the current one). */
static const char *current_rcpt_part(struct expand_ctx *ctx, bool want_domain)
{
    const struct session *s = var_session(ctx);
    if (s->rcpt_pending_address) /* unquoted, as Exim's $local_part */
        return want_domain ? address_domain(s->rcpt_pending_address)
                           : address_local_part(ctx->arena, s->rcpt_pending_address);
    if (s->rcpt_current >= 0 && s->rcpt_current < s->rcpt_count) {
        const struct session_rcpt *r = &s->rcpts[s->rcpt_current];
        return str_or_empty(want_domain ? r->domain : r->local_part);
    }
    return "";
}

static const char *get_host_address(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->is_local_input ? "" : var_session(ctx)->client_ip;
}

static const char *get_host_port(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->is_local_input ? "" : port_text(ctx, var_session(ctx)->client_port);
}

static const char *get_host_name(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return str_or_empty(var_session(ctx)->client_name);
}

static const char *get_helo_name(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return str_or_empty(var_session(ctx)->helo_name);
}

static const char *get_rcvhost(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return session_rcvhost(var_session(ctx), ctx->arena);
}

static const char *get_local_ip(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->local_ip;
}

static const char *get_local_port(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return port_text(ctx, var_session(ctx)->local_port);
}

static const char *get_proxy_session(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->proxy_session ? "yes" : "no";
}

static const char *get_proxy_host_address(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->proxy_host_address;
}

static const char *get_proxy_host_port(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return port_text(ctx, var_session(ctx)->proxy_host_port);
}

static const char *get_proxy_target_address(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->proxy_target_address;
}

static const char *get_proxy_target_port(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return port_text(ctx, var_session(ctx)->proxy_target_port);
}

static const char *get_smtp_command(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return str_or_empty(var_session(ctx)->smtp_command);
}

static const char *get_notquit_reason(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return str_or_empty(var_session(ctx)->notquit_reason);
}

static const char *get_sender(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return str_or_empty(var_session(ctx)->sender);
}

static const char *get_sender_local_part(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return address_part(ctx, var_session(ctx)->sender, false);
}

static const char *get_sender_domain(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return address_part(ctx, var_session(ctx)->sender, true);
}

static const char *get_local_part(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return current_rcpt_part(ctx, false);
}

static const char *get_domain(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return current_rcpt_part(ctx, true);
}

static const char *get_rcpt_count(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return int_text(ctx, var_session(ctx)->rcpt_count);
}

static const char *get_received_for(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct session *s = var_session(ctx);
    return s->rcpt_count == 1 ? s->rcpts[0].address : "";
}

static const char *get_recipients(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct session *s = var_session(ctx);
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

static const char *get_message_id(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->message_id;
}

static const char *get_message_size(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct session *s = var_session(ctx);
    return s->message_id[0] ? int_text(ctx, s->message_size) : "-1";
}

static const char *get_prdr_requested(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_session(ctx)->prdr_requested ? "yes" : "no";
}

static const char *get_received_protocol(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return session_protocol(var_session(ctx));
}

static const char *get_acl_c(struct expand_ctx *ctx, const char *name)
{
    const char *v = session_vars_get(&var_session(ctx)->acl_c, name);
    return v ? v : ""; /* unset ACL variables expand to nothing, as in Exim */
}

static const char *get_acl_m(struct expand_ctx *ctx, const char *name)
{
    const char *v = session_vars_get(&var_session(ctx)->acl_m, name);
    return v ? v : "";
}

#define C VAR_CONNECTION
#define M VAR_MESSAGE
#define K VAR_COMMAND
/* Sorted by name. authenticated_* and tls_* stay empty until AUTH and TLS exist. */
static const struct var_def session_var_defs[] = {
    {"authenticated_id", C, var_get_empty},
    {"authenticated_sender", M, var_get_empty},
    {"domain", K, get_domain},
    {"interface_address", C, get_local_ip},
    {"interface_port", C, get_local_port},
    {"local_part", K, get_local_part},
    {"message_exim_id", M, get_message_id},
    {"message_id", M, get_message_id},
    {"message_size", M, get_message_size},
    {"prdr_requested", M, get_prdr_requested},
    {"proxy_external_address", C, get_proxy_target_address},
    {"proxy_external_port", C, get_proxy_target_port},
    {"proxy_host_address", C, get_proxy_host_address},
    {"proxy_host_port", C, get_proxy_host_port},
    {"proxy_local_address", C, get_proxy_host_address},
    {"proxy_local_port", C, get_proxy_host_port},
    {"proxy_session", C, get_proxy_session},
    {"proxy_target_address", C, get_proxy_target_address},
    {"proxy_target_port", C, get_proxy_target_port},
    {"rcpt_count", M, get_rcpt_count},
    {"received_for", M, get_received_for},
    {"received_ip_address", C, get_local_ip},
    {"received_port", C, get_local_port},
    {"received_protocol", M, get_received_protocol},
    {"recipients", M, get_recipients},
    {"recipients_count", M, get_rcpt_count},
    {"sender_address", M, get_sender},
    {"sender_address_domain", M, get_sender_domain},
    {"sender_address_local_part", M, get_sender_local_part},
    {"sender_helo_name", C, get_helo_name},
    {"sender_host_address", C, get_host_address},
    {"sender_host_name", C, get_host_name},
    {"sender_host_port", C, get_host_port},
    {"sender_rcvhost", C, get_rcvhost},
    {"smtp_command", K, get_smtp_command},
    {"smtp_notquit_reason", C, get_notquit_reason},
    {"tls_cipher", C, var_get_empty},
    {"tls_in_cipher", C, var_get_empty},
    {"tls_in_sni", C, var_get_empty},
    {"tls_sni", C, var_get_empty},
};

static const struct var_def session_var_prefixes[] = {
    {"acl_c", C, get_acl_c},
    {"acl_m", M, get_acl_m},
};
#undef C
#undef M
#undef K

const struct var_table session_var_table = {
    .context = "smtp",
    .defs = session_var_defs,
    .count = VAR_TABLE_SIZE(session_var_defs),
    .prefixes = session_var_prefixes,
    .prefix_count = VAR_TABLE_SIZE(session_var_prefixes),
    .next = &expand_builtin_vars,
};

const char *session_var_lookup(struct expand_ctx *ctx, const char *name)
{
    return var_table_get(&session_var_table, ctx, name);
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

/* Exim puts each line added at the start, after the Received: block or at the RFC start
 * right at its place, so before the lines added there earlier (its spec: "they end up in
 * reverse order"); lines added at the end follow one another. */
static void env_add_header(struct acl_env *env, const char *header)
{
    struct session *s = env_session(env);
    enum acl_header_place place;
    header += acl_header_place(header, &place);
    size_t n = strlen(header), total = 0;
    for (int i = 0; i < ACL_HEADER_PLACES; i++)
        total += s->added_headers[i].len;
    if (total + n + 2 > SESSION_ADDED_HEADERS_MAX) {
        log_write(LOG_MAIN | LOG_PANIC, s->message_id[0] ? s->message_id : NULL,
                  "%s: add_header dropped: the message's added headers would exceed %d bytes",
                  session_host_id(s, &s->cmd_arena), SESSION_ADDED_HEADERS_MAX);
        return;
    }
    struct buf line;
    buf_init(&line);
    buf_append_crlf(&line, header); /* a continued header comes joined with "\n" */
    buf_append_str(&line, "\r\n");
    struct buf *group = &s->added_headers[place];
    if (place == ACL_HEADER_AT_END) {
        buf_append(group, line.data, line.len);
        buf_free(&line);
        return;
    }
    buf_append(&line, group->data, group->len);
    buf_free(group);
    *group = line;
}

/* control = queue_only acts on the message: only where there is one (as Exim permits it). */
static bool where_has_message(enum acl_where where)
{
    return where == ACL_WHERE_MAIL || where == ACL_WHERE_RCPT || where == ACL_WHERE_PREDATA ||
           where == ACL_WHERE_DATA || where == ACL_WHERE_DATA_PRDR;
}

static bool env_control(struct acl_env *env, const char *control, const char **err)
{
    struct session *s = env_session(env);
    if (strchr(control, '/')) {
        /* literal ones are refused at load; this is one that came out of an expansion */
        *err =
            arena_printf(&s->cmd_arena, "control \"%s\": no control takes options here", control);
        return false;
    }
    if (strcmp(control, "no_pipelining") == 0) {
        s->no_pipelining = true;
        return true;
    }
    if (strcmp(control, "no_enforce_sync") == 0 || strcmp(control, "enforce_sync") == 0) {
        s->enforce_sync = strcmp(control, "enforce_sync") == 0;
        return true;
    }
    if (strcmp(control, "queue_only") == 0 || strcmp(control, "queue") == 0) {
        if (!where_has_message(env->where)) {
            *err = arena_printf(&s->cmd_arena,
                                "control \"%s\" is permitted only in the MAIL, RCPT, PREDATA, "
                                "DATA and PRDR ACLs",
                                control);
            return false;
        }
        s->queue_only = true;
        return true;
    }
    *err = arena_printf(&s->cmd_arena, "control \"%s\" is not supported", control);
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
