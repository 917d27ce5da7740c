/*
 * acl_eval.c - run a compiled ACL for one SMTP stage: acl_check().
 *
 * Statements are tried in order; within a statement, conditions and modifiers are taken
 * left to right until a condition fails, as in Exim: "immediate" modifiers (set, logwrite,
 * add_header, control, delay, continue) act when reached; message and log_message are only
 * remembered, and expanded once the statement's outcome is known to need them. A condition
 * that cannot be tested (a lookup deferred) makes the ACL return DEFER, except in a warn
 * statement, which logs that it was skipped and goes on. Reaching the end is a DENY.
 *
 * Owns nothing long-lived: results and temporaries go to env->exp.arena (the caller's
 * session or message arena). Threads: any worker, with its own env; the compiled ACLs
 * in the config snapshot are only read.
 */
#include "acl_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ACL_MAX_DEPTH 20 /* nested "acl =" calls: only catches loops, as in Exim */

/* The outcome of a statement's conditions (Exim's OK/FAIL/FAIL_DROP/DEFER/ERROR/DISCARD). */
enum cond_rc { CR_OK, CR_FAIL, CR_FAIL_DROP, CR_DEFER, CR_ERROR, CR_DISCARD };

/* One acl_check() call, shared by nested ACLs (their messages reach the caller's verb). */
struct acl_run {
    const struct config *cfg;
    struct acl_env *env;
    const char *user_msg; /* for the SMTP reply */
    const char *log_msg;  /* for the log line */
    bool log_defaulted;   /* log_msg was only copied from user_msg (warn then logs nothing) */
};

/* A statement in progress. */
struct acl_stmt_state {
    const struct acl_def *acl;
    const struct acl_stmt *stmt;
    int depth;
    const char *message;     /* raw "message =" last seen */
    const char *log_message; /* raw "log_message =" last seen */
};

static enum acl_result acl_run_text(struct acl_run *run, const char *text, int depth);

static const char *acl_where_name(enum acl_where where)
{
    switch (where) {
    case ACL_WHERE_CONNECT:
        return "connection";
    case ACL_WHERE_HELO:
        return "EHLO or HELO";
    case ACL_WHERE_MAIL:
        return "MAIL";
    case ACL_WHERE_RCPT:
        return "RCPT";
    case ACL_WHERE_PREDATA:
        return "PREDATA";
    case ACL_WHERE_DATA:
        return "DATA";
    case ACL_WHERE_DATA_PRDR:
        return "PRDR";
    case ACL_WHERE_QUIT:
        return "QUIT";
    case ACL_WHERE_NOTQUIT:
        return "NOTQUIT";
    case ACL_WHERE_VRFY:
        return "VRFY";
    }
    return "unknown";
}

const char *acl_result_name(enum acl_result r)
{
    switch (r) {
    case ACL_ACCEPT:
        return "ACCEPT";
    case ACL_DENY:
        return "DENY";
    case ACL_DEFER:
        return "DEFER";
    case ACL_DROP:
        return "DROP";
    case ACL_DISCARD:
        return "DISCARD";
    case ACL_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}

static void acl_trace(struct acl_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void acl_trace(struct acl_run *run, const char *fmt, ...)
{
    if (!run->env->trace)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    run->env->trace(run->env, line);
}

static void acl_log(struct acl_run *run, char which, const char *text)
{
    if (run->env->log)
        run->env->log(run->env, which, text);
}

/* Record why the ACL errs (the caller logs it to the paniclog) and return CR_ERROR. */
static enum cond_rc acl_error(struct acl_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum cond_rc acl_error(struct acl_run *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    run->log_msg = arena_vprintf(run->env->exp.arena, fmt, ap);
    va_end(ap);
    run->log_defaulted = false;
    acl_trace(run, "ACL error: %s", run->log_msg);
    return CR_ERROR;
}

static const char *acl_var(struct acl_run *run, const char *name)
{
    struct expand_ctx *ctx = &run->env->exp;
    const char *v = ctx->var ? ctx->var(ctx, name) : NULL;
    return v ? v : expand_builtin_var(ctx, name);
}

/* Exim's host identification for log lines: "H=name (helo) [ip]"; NULL for local input. */
static const char *acl_host_ident(struct acl_run *run)
{
    struct arena *arena = run->env->exp.arena;
    const char *ip = acl_var(run, "sender_host_address");
    if (!ip || !*ip)
        return NULL;
    const char *name = acl_var(run, "sender_host_name");
    const char *helo = acl_var(run, "sender_helo_name");
    bool has_name = name && *name, has_helo = helo && *helo;
    if (has_name && has_helo && !str_ieq(name, helo))
        return arena_printf(arena, "H=%s (%s) [%s]", name, helo, ip);
    if (has_name)
        return arena_printf(arena, "H=%s [%s]", name, ip);
    if (has_helo)
        return arena_printf(arena, "H=(%s) [%s]", helo, ip);
    return arena_printf(arena, "H=[%s]", ip);
}

/* ---- expansion with $acl_verify_message ---- */

struct acl_verify_hook {
    struct expand_ctx *outer;
    const char *verify_message;
};

static const char *acl_get_verify_message(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct acl_verify_hook *hook = ctx->user;
    return hook->verify_message ? hook->verify_message : "";
}

/* The variables only message and log_message have (ctx->user is the hook), in front of the
 * session's; acl_compile.c checks those modifiers against this table chained to them. */
static const struct var_def acl_message_var_defs[] = {
    {"acl_verify_message", VAR_COMMAND, acl_get_verify_message},
};

const struct var_table acl_message_vars = {
    .context = "ACL message",
    .defs = acl_message_var_defs,
    .count = VAR_TABLE_SIZE(acl_message_var_defs),
};

static const char *acl_hook_var(struct expand_ctx *ctx, const char *name)
{
    const char *v = var_table_get(&acl_message_vars, ctx, name);
    if (v)
        return v;
    struct acl_verify_hook *hook = ctx->user;
    struct expand_ctx *outer = hook->outer;
    return outer->var ? outer->var(outer, name) : NULL;
}

/* Expand message/log_message text with $acl_verify_message set to the earlier message.
 * Failure or an empty result means "no message" (the modifier is ignored), as in Exim. */
static const char *acl_expand_message(struct acl_run *run, const char *raw,
                                      const char *verify_message)
{
    struct acl_verify_hook hook = {&run->env->exp, verify_message};
    struct expand_ctx ctx = run->env->exp;
    ctx.var = acl_hook_var;
    ctx.user = &hook;
    const char *out = NULL, *err = NULL;
    enum expand_status st = expand_string(&ctx, raw, &out, &err);
    if (st == EXPAND_FAIL || st == EXPAND_DEFER) {
        char *line = arena_printf(run->env->exp.arena, "failed to expand ACL message \"%s\": %s",
                                  raw, err ? err : "unknown error");
        acl_log(run, 'p', line);
        return NULL;
    }
    return st == EXPAND_OK && out && *out ? out : NULL;
}

/* Exim's "msgcond": the outcomes of a verb for which message/log_message are used. */
static bool acl_messages_apply(enum acl_verb verb, enum cond_rc rc)
{
    switch (verb) {
    case ACL_VERB_ACCEPT:
    case ACL_VERB_DISCARD:
        return rc == CR_OK || rc == CR_FAIL || rc == CR_FAIL_DROP;
    case ACL_VERB_REQUIRE:
        return rc == CR_FAIL || rc == CR_FAIL_DROP;
    default:
        return rc == CR_OK;
    }
}

/* Settle run->user_msg / run->log_msg for a statement that ended with rc. */
static void acl_apply_messages(struct acl_run *run, const struct acl_stmt_state *st,
                               enum cond_rc rc)
{
    enum acl_verb verb = st->stmt->verb;
    if (!acl_messages_apply(verb, rc))
        return;
    const char *old_user = run->user_msg;
    const char *old_log = run->log_msg ? run->log_msg : old_user;
    /* Messages from conditions (verify, nested ACLs) are dropped when warning or accepting:
     * only this statement's own text counts then. */
    if (verb == ACL_VERB_WARN ||
        (rc == CR_OK && (verb == ACL_VERB_ACCEPT || verb == ACL_VERB_DISCARD)))
        run->user_msg = run->log_msg = NULL;
    run->log_defaulted = false;
    if (st->message) {
        const char *m = acl_expand_message(run, st->message, old_user);
        if (m)
            run->user_msg = m;
    }
    if (st->log_message) {
        const char *m = acl_expand_message(run, st->log_message, old_log);
        if (m)
            run->log_msg =
                run->log_msg ? arena_printf(run->env->exp.arena, "%s: %s", m, run->log_msg) : m;
    }
    if (!run->log_msg && run->user_msg) {
        run->log_msg = run->user_msg;
        run->log_defaulted = true;
    }
}

/* ---- conditions ---- */

static enum cond_rc acl_from_match(struct acl_run *run, const struct acl_item *item,
                                   enum match_result m, const char *err)
{
    switch (m) {
    case MATCH_YES:
        return CR_OK;
    case MATCH_NO:
        return CR_FAIL;
    case MATCH_DEFER:
        run->log_msg =
            err ? err : arena_printf(run->env->exp.arena, "%s lookup deferred", item->def->name);
        run->log_defaulted = false;
        return CR_DEFER;
    case MATCH_ERROR:
        break;
    }
    return acl_error(run, "%s = %s (%s:%d): %s", item->def->name, item->value, item->file,
                     item->line, err ? err : "bad list");
}

/* Expand an argument. *skip: a forced failure, so the item is ignored (treated as true). */
static enum cond_rc acl_expand_arg(struct acl_run *run, const struct acl_item *item,
                                   const char **out, bool *skip)
{
    const char *err = NULL;
    *skip = false;
    switch (expand_string(&run->env->exp, item->value, out, &err)) {
    case EXPAND_OK:
        return CR_OK;
    case EXPAND_FORCED_FAIL:
        *skip = true;
        acl_trace(run, "%s: forced expansion failure: item ignored", item->def->name);
        return CR_OK;
    case EXPAND_DEFER:
        run->log_msg = err ? err : "expansion deferred";
        run->log_defaulted = false;
        return CR_DEFER;
    case EXPAND_FAIL:
        break;
    }
    return acl_error(run, "failed to expand ACL string \"%s\" (%s:%d): %s", item->value, item->file,
                     item->line, err ? err : "unknown error");
}

/* The underlying messages of a failed verification, as Exim sets them: the reason for a
 * recipient; a fixed text (reason logged) for the sender; none for HELO. "message =" and
 * "log_message =" of the statement override or prefix them. */
static void acl_verify_messages(struct acl_run *run, enum acl_verify_what what, enum match_result m,
                                const char *reason)
{
    struct arena *arena = run->env->exp.arena;
    run->log_defaulted = false;
    if (what == ACL_VERIFY_RECIPIENT) {
        run->user_msg = run->log_msg = reason;
    } else if (what == ACL_VERIFY_SENDER) {
        run->user_msg =
            m == MATCH_DEFER ? "Could not complete sender verify" : "Sender verify failed";
        run->log_msg =
            reason ? arena_printf(arena, "%s: %s", run->user_msg, reason) : run->user_msg;
    } else if (m == MATCH_DEFER) {
        run->log_msg = reason;
    }
}

static enum cond_rc acl_cond_verify(struct acl_run *run, const struct acl_item *item, bool *ignored)
{
    const char *arg, *why = NULL;
    enum cond_rc rc = acl_expand_arg(run, item, &arg, ignored);
    if (rc != CR_OK || *ignored)
        return rc;
    enum acl_verify_what what;
    if (!acl_verify_parse(arg, &what, &why))
        return acl_error(run, "verify = %s (%s:%d): %s", arg, item->file, item->line, why);
    enum acl_where where = run->env->where;
    unsigned sender_ok = ACL_WHERE_BIT(ACL_WHERE_MAIL) | ACL_WHERE_BIT(ACL_WHERE_RCPT) |
                         ACL_WHERE_BIT(ACL_WHERE_PREDATA) | ACL_WHERE_BIT(ACL_WHERE_DATA);
    if ((what == ACL_VERIFY_RECIPIENT && where != ACL_WHERE_RCPT) ||
        (what == ACL_VERIFY_SENDER && !(sender_ok & ACL_WHERE_BIT(where))))
        return acl_error(run, "cannot verify %s in ACL for %s", arg, acl_where_name(where));
    if (!run->env->verify)
        return acl_error(run, "verify = %s: verification is not available here", arg);
    const char *reason = NULL;
    enum match_result m = run->env->verify(run->env, what, &reason);
    if (m == MATCH_NO || m == MATCH_DEFER)
        acl_verify_messages(run, what, m, reason);
    if (m == MATCH_DEFER)
        return CR_DEFER;
    return acl_from_match(run, item, m, reason);
}

static enum cond_rc acl_cond_acl(struct acl_run *run, const struct acl_item *item,
                                 const struct acl_stmt_state *st)
{
    if (st->depth + 1 >= ACL_MAX_DEPTH)
        return acl_error(run, "ACLs nested more than %d deep (a loop?) at %s:%d", ACL_MAX_DEPTH,
                         item->file, item->line);
    switch (acl_run_text(run, item->value, st->depth + 1)) {
    case ACL_ACCEPT:
        return CR_OK;
    case ACL_DENY:
        return CR_FAIL;
    case ACL_DROP:
        return CR_FAIL_DROP;
    case ACL_DEFER:
        return CR_DEFER;
    case ACL_ERROR:
        return CR_ERROR;
    case ACL_DISCARD:
        break;
    }
    if (st->stmt->verb != ACL_VERB_ACCEPT && st->stmt->verb != ACL_VERB_DISCARD)
        return acl_error(run, "nested ACL returned \"discard\" for \"%s\" verb (%s:%d)",
                         acl_verb_name(st->stmt->verb), item->file, item->line);
    return CR_DISCARD;
}

static enum cond_rc acl_cond_condition(struct acl_run *run, const struct acl_item *item,
                                       bool *ignored)
{
    bool truth = false;
    const char *err = NULL;
    switch (expand_bool(&run->env->exp, item->value, &truth, &err)) {
    case EXPAND_OK:
        return truth ? CR_OK : CR_FAIL;
    case EXPAND_FORCED_FAIL:
        *ignored = true; /* Exim: a forced failure makes the condition be ignored */
        return CR_OK;
    case EXPAND_DEFER:
        run->log_msg = err ? err : "condition deferred";
        run->log_defaulted = false;
        return CR_DEFER;
    case EXPAND_FAIL:
        break;
    }
    return acl_error(run, "condition = %s (%s:%d): %s", item->value, item->file, item->line,
                     err ? err : "expansion failed");
}

static enum cond_rc acl_cond_list(struct acl_run *run, const struct acl_item *item)
{
    struct expand_ctx *ctx = &run->env->exp;
    const char *err = NULL, *subject;
    enum match_result m = MATCH_NO;
    switch (item->def->kind) {
    case ACLI_HOSTS: {
        const char *name = acl_var(run, "sender_host_name");
        m = list_match_host(ctx, item->value, acl_var(run, "sender_host_address"),
                            name && *name ? name : NULL, &err);
        break;
    }
    case ACLI_DOMAINS:
        subject = acl_var(run, "domain");
        m = list_match_domain(ctx, item->value, subject ? subject : "", &err);
        break;
    case ACLI_LOCAL_PARTS:
        subject = acl_var(run, "local_part");
        m = list_match_localpart(ctx, item->value, subject ? subject : "", &err);
        break;
    case ACLI_SENDERS:
        subject = acl_var(run, "sender_address");
        m = list_match_address(ctx, item->value, subject ? subject : "", &err);
        break;
    case ACLI_AUTHENTICATED:
        if (!run->env->authenticated)
            return CR_FAIL;
        subject = run->env->authenticated_id;
        m = list_match_localpart(ctx, item->value, subject ? subject : "", &err);
        break;
    default:
        return acl_error(run, "internal: %s is not a list condition", item->def->name);
    }
    return acl_from_match(run, item, m, err);
}

/* ---- modifiers ---- */

/* Exim's logwrite: an optional ":main,reject,panic:" prefix selects the logs. */
static enum cond_rc acl_mod_logwrite(struct acl_run *run, const char *text)
{
    if (text[0] != ':') {
        acl_log(run, 'm', text);
        return CR_OK;
    }
    const char *end = strchr(text + 1, ':');
    if (!end)
        return acl_error(run, "logwrite = %s: missing ':' after the log names", text);
    bool main_log = false, reject = false, panic = false;
    char *list = arena_strndup(run->env->exp.arena, text + 1, (size_t)(end - text - 1));
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        name = str_trim(name);
        if (strcmp(name, "main") == 0)
            main_log = true;
        else if (strcmp(name, "reject") == 0)
            reject = true;
        else if (strcmp(name, "panic") == 0)
            panic = true;
        else if (*name)
            return acl_error(run, "logwrite: unknown log name \"%s\"", name);
    }
    text = end + 1;
    while (*text == ' ')
        text++;
    if (panic)
        acl_log(run, 'p', text);
    if (reject)
        acl_log(run, 'r', text); /* the rejectlog copies its lines to the mainlog */
    else if (main_log)
        acl_log(run, 'm', text);
    return CR_OK;
}

static bool acl_header_valid(const char *line)
{
    const char *p = line;
    while (*p > ' ' && *p < 127 && *p != ':')
        p++;
    return p > line && *p == ':';
}

size_t acl_header_place(const char *line, enum acl_header_place *place)
{
    static const struct {
        const char *prefix;
        enum acl_header_place place;
    } places[] = {{":at_start:", ACL_HEADER_AT_START},
                  {":after_received:", ACL_HEADER_AFTER_RECEIVED},
                  {":at_start_rfc:", ACL_HEADER_AT_START_RFC},
                  {":at_end:", ACL_HEADER_AT_END}};
    *place = ACL_HEADER_AT_END;
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        size_t n = strlen(places[i].prefix);
        if (strncasecmp(line, places[i].prefix, n) != 0)
            continue;
        *place = places[i].place;
        while (line[n] == ' ' || line[n] == '\t')
            n++;
        return n;
    }
    return 0;
}

/* One header line, keeping its placement prefix for the caller. An unknown ":word:" is
 * no placement: the line goes at the end, as in Exim (and gets "X-ACL-Warn: ", having no
 * header name). */
static void acl_add_one_header(struct acl_run *run, const char *line, size_t len)
{
    struct arena *arena = run->env->exp.arena;
    enum acl_header_place place;
    size_t plen = acl_header_place(line, &place);
    if (plen > len)
        plen = len;
    char *body = arena_strndup(arena, line + plen, len - plen);
    if (!*body)
        return;
    const char *out = body;
    if (!acl_header_valid(body))
        out = arena_printf(arena, "X-ACL-Warn: %s", body);
    if (plen)
        out = arena_printf(arena, "%.*s%s", (int)plen, line, out);
    acl_trace(run, "add_header: %s", out);
    if (run->env->add_header)
        run->env->add_header(run->env, out);
}

/* Exim: surrounding newlines dropped; a newline not followed by space/tab starts a new line. */
static void acl_mod_add_header(struct acl_run *run, const char *text)
{
    while (*text == '\n' || *text == '\r')
        text++;
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        bool end = i == len || (text[i] == '\n' && text[i + 1] != ' ' && text[i + 1] != '\t');
        if (!end)
            continue;
        size_t stop = i;
        if (stop > start && text[stop - 1] == '\r')
            stop--;
        acl_add_one_header(run, text + start, stop - start);
        start = i + 1;
    }
}

static enum cond_rc acl_modifier(struct acl_run *run, const struct acl_item *item)
{
    const char *arg, *err = NULL;
    bool skip;
    enum cond_rc rc = acl_expand_arg(run, item, &arg, &skip);
    if (rc != CR_OK || skip)
        return rc;
    struct acl_env *env = run->env;
    int64_t seconds;
    switch (item->def->kind) {
    case ACLI_SET:
        acl_trace(run, "set %s = %s", item->set_name, arg);
        if (!env->set_var || !env->set_var(env, item->set_name, arg))
            return acl_error(run, "cannot set variable %s (%s:%d)", item->set_name, item->file,
                             item->line);
        return CR_OK;
    case ACLI_LOGWRITE:
        return acl_mod_logwrite(run, arg);
    case ACLI_ADD_HEADER:
        acl_mod_add_header(run, arg);
        return CR_OK;
    case ACLI_CONTROL:
        if (!env->control || !env->control(env, arg, &err))
            return acl_error(run, "control = %s (%s:%d): %s", arg, item->file, item->line,
                             err ? err : "not available here");
        return CR_OK;
    case ACLI_DELAY:
        if (!parse_time_interval(arg, &seconds))
            return acl_error(run, "delay = %s (%s:%d): bad time value", arg, item->file,
                             item->line);
        acl_trace(run, "delay modifier requested: %s", arg);
        env->delay_ms += seconds * 1000;
        return CR_OK;
    case ACLI_CONTINUE:
        return CR_OK;
    default:
        return acl_error(run, "internal: unexpected modifier %s", item->def->name);
    }
}

/* ---- statements ---- */

/* One condition or modifier: CR_OK lets the statement go on to its next item. */
static enum cond_rc acl_item_run(struct acl_run *run, struct acl_stmt_state *st,
                                 const struct acl_item *item)
{
    const struct acl_item_def *def = item->def;
    if (def->kind == ACLI_MESSAGE || def->kind == ACLI_LOG_MESSAGE) {
        acl_trace(run, "%s: %s", def->kind == ACLI_MESSAGE ? "  message" : "l_message",
                  item->value);
        *(def->kind == ACLI_MESSAGE ? &st->message : &st->log_message) = item->value;
        return CR_OK;
    }
    acl_trace(run, "check %s%s%s%s = %s", item->negated ? "!" : "", def->name,
              item->set_name ? " " : "", item->set_name ? item->set_name : "", item->value);
    if (!(def->allowed & ACL_WHERE_BIT(run->env->where)))
        return acl_error(run, "cannot %s %s %s in %s ACL (%s:%d)", def->modifier ? "use" : "test",
                         def->name, def->modifier ? "modifier" : "condition",
                         acl_where_name(run->env->where), item->file, item->line);
    if (def->modifier)
        return acl_modifier(run, item);

    bool ignored = false;
    enum cond_rc rc;
    switch (def->kind) {
    case ACLI_CONDITION:
        rc = acl_cond_condition(run, item, &ignored);
        break;
    case ACLI_VERIFY:
        rc = acl_cond_verify(run, item, &ignored);
        break;
    case ACLI_ACL:
        rc = acl_cond_acl(run, item, st);
        break;
    default:
        rc = acl_cond_list(run, item);
        break;
    }
    if (item->negated && !ignored) {
        if (rc == CR_OK)
            rc = CR_FAIL;
        else if (rc == CR_FAIL || rc == CR_FAIL_DROP)
            rc = CR_OK;
    }
    return rc;
}

static enum cond_rc acl_stmt_conditions(struct acl_run *run, struct acl_stmt_state *st)
{
    enum cond_rc rc = CR_OK;
    for (const struct acl_item *item = st->stmt->items; item; item = item->next) {
        rc = acl_item_run(run, st, item);
        if (rc != CR_OK)
            break;
    }
    acl_apply_messages(run, st, rc);
    return rc;
}

static void acl_warn(struct acl_run *run, const struct acl_stmt_state *st, enum cond_rc rc)
{
    struct arena *arena = run->env->exp.arena;
    const char *ident = acl_host_ident(run);
    const char *prefix = ident ? arena_printf(arena, "%s ", ident) : "";
    if (rc == CR_DEFER) {
        acl_log(run, 'm',
                arena_printf(arena,
                             "%sWarning: ACL 'warn' statement skipped (in %s at line %d of %s):"
                             " condition test deferred%s%s",
                             prefix, st->acl->name, st->stmt->line, st->stmt->file,
                             run->log_msg ? ": " : "", run->log_msg ? run->log_msg : ""));
        return;
    }
    if (rc != CR_OK)
        return;
    if (run->log_msg && !run->log_defaulted)
        acl_log(run, 'm', arena_printf(arena, "%sWarning: %s", prefix, run->log_msg));
    if (!run->user_msg)
        return;
    /* Exim's deprecated use: "message" on warn adds a header line in message ACLs. */
    unsigned message_acls = ACL_WHERE_BIT(ACL_WHERE_MAIL) | ACL_WHERE_BIT(ACL_WHERE_RCPT) |
                            ACL_WHERE_BIT(ACL_WHERE_PREDATA) | ACL_WHERE_BIT(ACL_WHERE_DATA) |
                            ACL_WHERE_BIT(ACL_WHERE_DATA_PRDR);
    if (message_acls & ACL_WHERE_BIT(run->env->where))
        acl_mod_add_header(run, run->user_msg);
    else
        acl_log(run, 'p',
                arena_printf(arena,
                             "ACL \"warn\" with \"message\" setting found in a non-message "
                             "(%s) ACL: cannot specify header lines here: message ignored",
                             acl_where_name(run->env->where)));
}

static const char *acl_cond_word(enum cond_rc rc)
{
    static const char *const words[] = {
        [CR_OK] = "succeeded",   [CR_FAIL] = "failed", [CR_FAIL_DROP] = "yielded \"drop\"",
        [CR_DEFER] = "deferred", [CR_ERROR] = "error", [CR_DISCARD] = "yielded \"discard\"",
    };
    return words[rc];
}

/* What the verb makes of its conditions' outcome; false = go on to the next statement. */
static bool acl_verb_decides(enum acl_verb verb, enum cond_rc rc, enum acl_result *out)
{
    switch (verb) {
    case ACL_VERB_ACCEPT:
        *out = rc == CR_DISCARD ? ACL_DISCARD : ACL_ACCEPT;
        return rc == CR_OK || rc == CR_DISCARD;
    case ACL_VERB_DISCARD:
        *out = ACL_DISCARD;
        return rc == CR_OK || rc == CR_DISCARD;
    case ACL_VERB_DEFER:
        *out = ACL_DEFER;
        return rc == CR_OK;
    case ACL_VERB_DENY:
        *out = ACL_DENY;
        return rc == CR_OK;
    case ACL_VERB_DROP:
        *out = ACL_DROP;
        return rc == CR_OK;
    case ACL_VERB_REQUIRE:
        *out = rc == CR_FAIL_DROP ? ACL_DROP : ACL_DENY;
        return rc != CR_OK;
    case ACL_VERB_WARN:
        return false;
    }
    return false;
}

static enum acl_result acl_run_def(struct acl_run *run, const struct acl_def *acl, int depth)
{
    bool quit_acl =
        depth == 0 && (run->env->where == ACL_WHERE_QUIT || run->env->where == ACL_WHERE_NOTQUIT);
    acl_trace(run, "using ACL \"%s\"", acl->name);
    for (const struct acl_stmt *stmt = acl->stmts; stmt; stmt = stmt->next) {
        struct acl_stmt_state st = {.acl = acl, .stmt = stmt, .depth = depth};
        const char *verb = acl_verb_name(stmt->verb);
        run->user_msg = run->log_msg = NULL;
        run->log_defaulted = false;
        acl_trace(run, "processing \"%s\" (%s:%d)", verb, stmt->file, stmt->line);
        enum cond_rc rc = acl_stmt_conditions(run, &st);
        acl_trace(run, "%s: condition test %s in ACL \"%s\"", verb, acl_cond_word(rc), acl->name);
        if (rc == CR_ERROR)
            return ACL_ERROR;
        if (rc == CR_DEFER && stmt->verb != ACL_VERB_WARN)
            return ACL_DEFER;
        enum acl_result result;
        if (stmt->verb == ACL_VERB_WARN) {
            acl_warn(run, &st, rc);
            run->user_msg = run->log_msg = NULL; /* in case the implicit DENY follows */
        } else if (acl_verb_decides(stmt->verb, rc, &result)) {
            if (quit_acl && result != ACL_ACCEPT) {
                acl_error(run,
                          "QUIT or not-QUIT toplevel ACL may not fail ('%s' verb used "
                          "incorrectly)",
                          verb);
                return ACL_ERROR;
            }
            acl_trace(run, "end of ACL \"%s\": %s", acl->name, acl_result_name(result));
            return result;
        }
    }
    acl_trace(run, "end of ACL \"%s\": implicit DENY", acl->name);
    return ACL_DENY;
}

/* A bare verb used as an ACL ("acl_smtp_vrfy = accept"): one statement, no conditions. */
static enum acl_result acl_literal_result(enum acl_verb verb)
{
    enum acl_result r = ACL_DENY;
    if (!acl_verb_decides(verb, CR_OK, &r))
        r = ACL_DENY; /* require/warn pass, then the implicit DENY */
    return r;
}

static enum acl_result acl_run_text(struct acl_run *run, const char *text, int depth)
{
    const char *name = text, *err = NULL;
    if (strchr(text, '$') || strchr(text, '\\')) {
        enum expand_status es = expand_string(&run->env->exp, text, &name, &err);
        if (es == EXPAND_DEFER) {
            run->log_msg = err;
            return ACL_DEFER;
        }
        if (es == EXPAND_FORCED_FAIL && depth == 0) {
            acl_trace(run, "ACL name \"%s\": forced expansion failure: ACCEPT", text);
            return ACL_ACCEPT; /* as Exim does for a forced failure of acl_smtp_* */
        }
        if (es != EXPAND_OK) {
            acl_error(run, "failed to expand ACL name \"%s\": %s", text,
                      err ? err : "forced failure");
            return ACL_ERROR;
        }
        name = str_trim(arena_strdup(run->env->exp.arena, name));
    }
    const struct acl_def *acl = acl_def_find(run->cfg, name);
    if (acl)
        return acl_run_def(run, acl, depth);
    enum acl_verb verb;
    if (acl_verb_parse(name, &verb)) {
        enum acl_result r = acl_literal_result(verb);
        acl_trace(run, "ACL \"%s\" (inline): %s", name, acl_result_name(r));
        return r;
    }
    acl_error(run, "ACL \"%s\" not found", name);
    return ACL_ERROR;
}

/* What Exim does when the acl_smtp_* option for this stage is not set. */
static enum acl_result acl_default_result(enum acl_where where)
{
    return where == ACL_WHERE_RCPT || where == ACL_WHERE_VRFY ? ACL_DENY : ACL_ACCEPT;
}

enum acl_result acl_check(const struct config *cfg, const char *name_or_text, struct acl_env *env)
{
    struct acl_run run = {.cfg = cfg, .env = env};
    env->user_message = env->log_message = NULL;
    env->delay_ms = 0;
    enum acl_result r;
    if (!name_or_text || !*name_or_text) {
        r = acl_default_result(env->where);
        acl_trace(&run, "no ACL for %s: %s", acl_where_name(env->where), acl_result_name(r));
        return r;
    }
    r = acl_run_text(&run, name_or_text, 0);
    env->user_message = run.user_msg;
    env->log_message = run.log_msg;
    return r;
}
