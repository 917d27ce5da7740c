/*
 * acl_compile.c - turn the parsed "begin acl" section (cfg->tree.acls) into compiled ACLs
 * (cfg->acls), at config load.
 *
 * Everything that can be known before a message arrives is checked here, so that a bad
 * ACL stops the daemon at startup with "file:line: reason" instead of deferring mail:
 * unknown verbs, unknown conditions and modifiers, Exim conditions this build does not
 * support (spf, dmarc_status, dcc, ratelimit, endpass, ...), negated modifiers, every value
 * and every named list through the expansion checker (syntax, variable names an SMTP
 * session has, constant regular expressions, which are compiled into the snapshot here),
 * bad "set" variable names, unknown verify types, and ACL names (in "acl =" and in the
 * acl_smtp_* options) that name no ACL. Checks that depend on which SMTP stage runs the
 * ACL happen at run time (acl_eval.c).
 *
 * Owns: the table of known conditions/modifiers. Output lives in cfg->arena; compiled
 * regexes in cfg->regexes (freed by the snapshot's cleanup hook, src/expand/regex.c).
 * Threads: called by whoever loads a configuration (main thread); the table is const.
 */
#include "acl_internal.h"

#include "postern/deliver.h"
#include "postern/session.h"
#include "postern/vars.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define W(x) ACL_WHERE_BIT(ACL_WHERE_##x)
#define MESSAGE_ACLS (W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA) | W(DATA_PRDR))
#define RECIPIENT_ACLS (W(RCPT) | W(VRFY) | W(DATA_PRDR))
#define NOT_BUILT "is not supported in this build"

/* Sorted by name. Allowed-where masks follow Exim's acl.c tables. */
static const struct acl_item_def acl_item_defs[] = {
    {"acl", ACLI_ACL, false, ACL_WHERE_ALL, NULL},
    {"add_header", ACLI_ADD_HEADER, true, MESSAGE_ACLS, NULL},
    {"authenticated", ACLI_AUTHENTICATED, false, ~(W(CONNECT) | W(HELO)), NULL},
    {"condition", ACLI_CONDITION, false, ACL_WHERE_ALL, NULL},
    {"continue", ACLI_CONTINUE, true, ACL_WHERE_ALL, NULL},
    {"control", ACLI_CONTROL, true, ACL_WHERE_ALL, NULL},
    {"dcc", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"decode", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"delay", ACLI_DELAY, true, ~W(NOTQUIT), NULL},
    {"dkim_signers", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"dkim_status", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"dmarc_status", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"dnslists", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"domains", ACLI_DOMAINS, false, RECIPIENT_ACLS, NULL},
    {"encrypted", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"endpass", ACLI_UNSUPPORTED, true, 0,
     "is obsolete and not supported (rewrite the statement without it)"},
    {"hosts", ACLI_HOSTS, false, ACL_WHERE_ALL, NULL},
    {"local_parts", ACLI_LOCAL_PARTS, false, RECIPIENT_ACLS, NULL},
    {"log_message", ACLI_LOG_MESSAGE, true, ACL_WHERE_ALL, NULL},
    {"log_reject_target", ACLI_UNSUPPORTED, true, 0, NOT_BUILT},
    {"logwrite", ACLI_LOGWRITE, true, ACL_WHERE_ALL, NULL},
    {"malware", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"message", ACLI_MESSAGE, true, ACL_WHERE_ALL, NULL},
    {"mime_regex", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"queue", ACLI_UNSUPPORTED, true, 0, NOT_BUILT},
    {"ratelimit", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"recipients", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"regex", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"remove_header", ACLI_UNSUPPORTED, true, 0, NOT_BUILT},
    {"seen", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"sender_domains", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"senders", ACLI_SENDERS, false, ~(W(CONNECT) | W(HELO) | W(QUIT) | W(VRFY)), NULL},
    {"set", ACLI_SET, true, ACL_WHERE_ALL, NULL},
    {"spam", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"spf", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"spf_guess", ACLI_UNSUPPORTED, false, 0, NOT_BUILT},
    {"udpsend", ACLI_UNSUPPORTED, true, 0, NOT_BUILT},
    {"verify", ACLI_VERIFY, false, ACL_WHERE_ALL, NULL},
};

static const char *const acl_verb_names[] = {
    [ACL_VERB_ACCEPT] = "accept",   [ACL_VERB_DEFER] = "defer", [ACL_VERB_DENY] = "deny",
    [ACL_VERB_DISCARD] = "discard", [ACL_VERB_DROP] = "drop",   [ACL_VERB_REQUIRE] = "require",
    [ACL_VERB_WARN] = "warn",
};

/* verify types Exim has and this build refuses (rather than silently ignoring) */
static const char *const acl_verify_unsupported[] = {
    "reverse_host_lookup", "certificate",        "csa", "header_syntax", "not_blind",
    "header_sender",       "header_names_ascii", "arc",
};

const struct acl_item_def *acl_item_def_find(const char *name)
{
    for (size_t i = 0; i < sizeof acl_item_defs / sizeof acl_item_defs[0]; i++)
        if (strcmp(acl_item_defs[i].name, name) == 0)
            return &acl_item_defs[i];
    return NULL;
}

bool acl_verb_parse(const char *word, enum acl_verb *verb)
{
    for (size_t i = 0; i < sizeof acl_verb_names / sizeof acl_verb_names[0]; i++)
        if (strcmp(acl_verb_names[i], word) == 0) {
            *verb = (enum acl_verb)i;
            return true;
        }
    return false;
}

const char *acl_verb_name(enum acl_verb verb)
{
    return acl_verb_names[verb];
}

const struct acl_def *acl_def_find(const struct config *cfg, const char *name)
{
    if (!cfg || !cfg->acls)
        return NULL;
    for (const struct acl_def *d = cfg->acls->acls; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

bool acl_varname_valid(const char *name)
{
    if (strncmp(name, "acl_c", 5) != 0 && strncmp(name, "acl_m", 5) != 0)
        return false;
    const char *p = name + 5;
    if (!isdigit((unsigned char)*p) && *p != '_')
        return false;
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

bool acl_verify_parse(const char *text, enum acl_verify_what *what, const char **why)
{
    size_t n = strcspn(text, "/");
    if (text[n] == '/') {
        *why = "verify options (\"/...\") are not supported in this build";
        return false;
    }
    if (strcmp(text, "recipient") == 0)
        *what = ACL_VERIFY_RECIPIENT;
    else if (strcmp(text, "sender") == 0)
        *what = ACL_VERIFY_SENDER;
    else if (strcmp(text, "helo") == 0)
        *what = ACL_VERIFY_HELO;
    else {
        *why = "unknown verify type";
        if (strncmp(text, "sender=", 7) == 0)
            *why = "verify = sender=<address> is not supported in this build";
        for (size_t i = 0; i < sizeof acl_verify_unsupported / sizeof(char *); i++)
            if (strcmp(text, acl_verify_unsupported[i]) == 0)
                *why = "this verify type is not supported in this build";
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */

struct compile_state {
    struct config *cfg;
    char *err;
    size_t errlen;
};

static bool compile_fail(struct compile_state *cs, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool compile_fail(struct compile_state *cs, const char *file, int line, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (cs->errlen)
        snprintf(cs->err, cs->errlen, "%s:%d: %s", file ? file : "?", line, reason);
    return false;
}

/* A value that names an ACL (acl = X, acl_smtp_* = X) and has no expansion in it: it must
 * be a defined ACL or a bare verb ("accept", "deny", ...). Returns NULL or the reason. */
static const char *compile_check_acl_ref(const struct config *cfg, const char *value)
{
    enum acl_verb verb;
    if (strchr(value, '$'))
        return NULL; /* known only at run time */
    if (value[0] == '/')
        return "ACL files are not supported in this build";
    if (value[strcspn(value, " \t\r\n")] != '\0')
        return "inline ACL text and ACL arguments are not supported in this build";
    if (acl_def_find(cfg, value) || acl_verb_parse(value, &verb))
        return NULL;
    return "no ACL of that name is defined";
}

/* "set acl_m_x = v" may reach us as name "set acl_m_x" + value "v", or as name "set" +
 * value "acl_m_x = v", depending on how the line was split. Accept both. */
static bool compile_split_set(struct compile_state *cs, const struct conf_item *ci,
                              struct acl_item *item)
{
    struct arena *arena = cs->cfg->arena;
    char *var;
    const char *value = ci->value;
    if (ci->name[3] != '\0') {
        var = str_trim(arena_strdup(arena, ci->name + 3));
    } else if (ci->value && strchr(ci->value, '=')) {
        const char *eq = strchr(ci->value, '=');
        var = str_trim(arena_strndup(arena, ci->value, (size_t)(eq - ci->value)));
        value = str_trim(arena_strdup(arena, eq + 1));
    } else {
        return compile_fail(cs, ci->file, ci->line,
                            "ACL modifier \"set\" needs \"set acl_<name> = value\"");
    }
    if (!value)
        return compile_fail(cs, ci->file, ci->line, "\"=\" missing after \"set %s\"", var);
    if (var[0] == '$')
        return compile_fail(cs, ci->file, ci->line,
                            "invalid variable name \"%s\" after \"set\": write it without "
                            "the leading '$' (set %s = ...)",
                            var, var + 1);
    if (!acl_varname_valid(var))
        return compile_fail(cs, ci->file, ci->line,
                            "invalid variable name \"%s\" after \"set\" (must start \"acl_c\" "
                            "or \"acl_m\", then a digit or underscore, then letters, digits "
                            "and underscores)",
                            var);
    item->set_name = var;
    item->value = value;
    return true;
}

/* The controls the SMTP session implements (src/smtp/session_vars.c env_control). */
static const char *const known_controls[] = {"no_pipelining", "enforce_sync", "no_enforce_sync",
                                             "queue_only", "queue"};

static bool control_known(const char *value)
{
    size_t n = strcspn(value, "/");
    for (size_t i = 0; i < sizeof known_controls / sizeof known_controls[0]; i++)
        if (strlen(known_controls[i]) == n && strncmp(known_controls[i], value, n) == 0)
            return true;
    return false;
}

/* The list kind of a list condition, or -1 for a plain expanded value. */
static int item_list_kind(enum acl_item_kind kind)
{
    switch (kind) {
    case ACLI_DOMAINS:
        return CONF_LIST_DOMAIN;
    case ACLI_HOSTS:
        return CONF_LIST_HOST;
    case ACLI_LOCAL_PARTS:
        return CONF_LIST_LOCALPART;
    case ACLI_SENDERS:
        return CONF_LIST_ADDRESS;
    default:
        return -1;
    }
}

/* The expansion checker over a value: syntax, variables an SMTP session has (any stage: a
 * variable of another stage, such as $local_part in a HELO ACL, expands to nothing, as in
 * Exim), constant regular expressions compiled into the snapshot. */
static bool compile_check_expansion(struct compile_state *cs, const struct acl_item *item,
                                    const char **why)
{
    struct expand_check check = {.vars = &session_var_table, .where = "an ACL", .cfg = cs->cfg};
    struct var_table message_vars = acl_message_vars;
    if (item->def->kind == ACLI_MESSAGE || item->def->kind == ACLI_LOG_MESSAGE) {
        message_vars.next = &session_var_table;
        check.vars = &message_vars;
    }
    int list = item_list_kind(item->def->kind);
    if (list >= 0)
        return expand_check_list(item->value, (enum conf_list_kind)list, &check, cs->cfg->arena,
                                 why);
    return expand_check(item->value, &check, cs->cfg->arena, why);
}

/* Checks that need the value: expansion, verify type, ACL reference, delay, control. */
static bool compile_check_value(struct compile_state *cs, const struct acl_item *item)
{
    const char *why = NULL;
    if (!compile_check_expansion(cs, item, &why))
        return compile_fail(cs, item->file, item->line, "%s = %s: %s",
                            item->set_name ? "set" : item->def->name, item->value,
                            why ? why : "expansion syntax error");
    if (strchr(item->value, '$'))
        return true; /* the rest is checked when the value is known */
    enum acl_verify_what what;
    if (item->def->kind == ACLI_VERIFY && !acl_verify_parse(item->value, &what, &why))
        return compile_fail(cs, item->file, item->line, "verify = %s: %s", item->value, why);
    if (item->def->kind == ACLI_ACL && (why = compile_check_acl_ref(cs->cfg, item->value)))
        return compile_fail(cs, item->file, item->line, "acl = %s: %s", item->value, why);
    int64_t seconds;
    if (item->def->kind == ACLI_DELAY && !parse_time_interval(item->value, &seconds))
        return compile_fail(cs, item->file, item->line, "delay = %s: bad time value", item->value);
    if (item->def->kind == ACLI_CONTROL && !control_known(item->value))
        return compile_fail(cs, item->file, item->line, "control = %s: unknown control",
                            item->value);
    /* none of the known controls acts on options (Exim's queue/first_pass_route...) */
    if (item->def->kind == ACLI_CONTROL && strchr(item->value, '/'))
        return compile_fail(cs, item->file, item->line,
                            "control = %s: options after '/' are not supported yet", item->value);
    return true;
}

static bool compile_item(struct compile_state *cs, const struct conf_item *ci,
                         struct acl_item **out)
{
    const char *word = ci->name;
    bool is_set =
        strncmp(word, "set", 3) == 0 && (word[3] == '\0' || isspace((unsigned char)word[3]));
    const struct acl_item_def *def = acl_item_def_find(is_set ? "set" : word);
    if (!def)
        return compile_fail(cs, ci->file, ci->line, "unknown ACL condition/modifier \"%s\"", word);
    const char *kind_word = def->modifier ? "modifier" : "condition";
    if (def->kind == ACLI_UNSUPPORTED)
        return compile_fail(cs, ci->file, ci->line, "ACL %s \"%s\" %s", kind_word, def->name,
                            def->refusal);
    if (ci->negated && def->modifier)
        return compile_fail(cs, ci->file, ci->line,
                            "negation is not allowed with ACL modifier \"%s\"", def->name);

    struct acl_item *item = arena_zalloc(cs->cfg->arena, sizeof *item);
    item->def = def;
    item->negated = ci->negated;
    item->file = ci->file;
    item->line = ci->line;
    item->value = ci->value;
    if (def->kind == ACLI_SET) {
        if (!compile_split_set(cs, ci, item))
            return false;
    } else if (!ci->value) {
        return compile_fail(cs, ci->file, ci->line, "\"=\" missing after ACL %s \"%s\"", kind_word,
                            def->name);
    }
    if (!compile_check_value(cs, item))
        return false;
    *out = item;
    return true;
}

static bool compile_stmt(struct compile_state *cs, const struct conf_acl_stmt *cst,
                         struct acl_stmt **out)
{
    struct acl_stmt *stmt = arena_zalloc(cs->cfg->arena, sizeof *stmt);
    if (!cst->verb || !acl_verb_parse(cst->verb, &stmt->verb))
        return compile_fail(cs, cst->file, cst->line, "unknown ACL verb \"%s\"",
                            cst->verb ? cst->verb : "");
    stmt->file = cst->file;
    stmt->line = cst->line;
    struct acl_item **tail = &stmt->items;
    for (const struct conf_item *ci = cst->items; ci; ci = ci->next) {
        if (!compile_item(cs, ci, tail))
            return false;
        tail = &(*tail)->next;
    }
    *out = stmt;
    return true;
}

/* Pass 1: every ACL and its statements (so "acl =" may refer to an ACL defined later). */
static bool compile_all_acls(struct compile_state *cs, struct acl_set *set)
{
    struct acl_def **tail = &set->acls;
    for (const struct conf_acl *ca = cs->cfg->tree.acls; ca; ca = ca->next) {
        for (const struct acl_def *d = set->acls; d; d = d->next)
            if (strcmp(d->name, ca->name) == 0)
                return compile_fail(cs, ca->file, ca->line,
                                    "there are two ACLs called \"%s\" (the first at %s:%d)",
                                    ca->name, d->file, d->line);
        struct acl_def *def = arena_zalloc(cs->cfg->arena, sizeof *def);
        def->name = ca->name;
        def->file = ca->file;
        def->line = ca->line;
        *tail = def;
        tail = &def->next;
    }
    struct acl_def *def = set->acls;
    for (const struct conf_acl *ca = cs->cfg->tree.acls; ca; ca = ca->next, def = def->next) {
        struct acl_stmt **stail = &def->stmts;
        for (const struct conf_acl_stmt *cst = ca->stmts; cst; cst = cst->next) {
            if (!compile_stmt(cs, cst, stail))
                return false;
            stail = &(*stail)->next;
        }
    }
    return true;
}

/* The main-section item that set option `name`, for its file:line; NULL if defaulted. */
static const struct conf_item *compile_find_option(const struct config *cfg, const char *name)
{
    const struct conf_item *found = NULL;
    for (const struct conf_item *ci = cfg->tree.main_items; ci; ci = ci->next)
        if (ci->name && strcmp(ci->name, name) == 0)
            found = ci; /* the last setting wins */
    return found;
}

static bool compile_check_options(struct compile_state *cs)
{
    const struct config *cfg = cs->cfg;
    const struct {
        const char *name, *alias, *value;
    } options[] = {
        {"acl_smtp_connect", NULL, cfg->acl_smtp_connect},
        {"acl_smtp_helo", NULL, cfg->acl_smtp_helo},
        {"acl_smtp_mail", NULL, cfg->acl_smtp_mail},
        {"acl_smtp_rcpt", NULL, cfg->acl_smtp_rcpt},
        {"acl_smtp_predata", NULL, cfg->acl_smtp_predata},
        {"acl_smtp_data", NULL, cfg->acl_smtp_data},
        {"acl_smtp_data_prdr", "acl_data_smtp_prdr", cfg->acl_smtp_data_prdr},
        {"acl_smtp_quit", NULL, cfg->acl_smtp_quit},
        {"acl_smtp_notquit", NULL, cfg->acl_smtp_notquit},
        {"acl_smtp_vrfy", NULL, cfg->acl_smtp_vrfy},
    };
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const char *why;
        if (!options[i].value || !options[i].value[0])
            continue;
        if (!(why = compile_check_acl_ref(cfg, options[i].value)))
            continue;
        const struct conf_item *ci = compile_find_option(cfg, options[i].name);
        if (!ci && options[i].alias)
            ci = compile_find_option(cfg, options[i].alias);
        return compile_fail(cs, ci ? ci->file : cfg->source, ci ? ci->line : 0, "%s = %s: %s",
                            options[i].name, options[i].value, why);
    }
    return true;
}

/* Named lists are used by ACLs and by routers: a variable of either context is accepted. */
static bool compile_check_named_lists(struct compile_state *cs)
{
    struct var_table either = deliver_var_table;
    either.next = &session_var_table; /* which chains to the built-ins */
    struct expand_check check = {.vars = &either, .where = "a named list", .cfg = cs->cfg};
    for (const struct conf_named_list *l = cs->cfg->tree.lists; l; l = l->next) {
        const char *why = NULL;
        if (!expand_check_list(l->value, l->kind, &check, cs->cfg->arena, &why))
            return compile_fail(cs, l->file, l->line, "list \"%s\": %s", l->name,
                                why ? why : "bad list");
    }
    return true;
}

bool acl_compile(struct config *cfg, char *err, size_t errlen)
{
    struct compile_state cs = {.cfg = cfg, .err = err, .errlen = errlen};
    struct acl_set *set = arena_zalloc(cfg->arena, sizeof *set);
    cfg->acls = set; /* published early: "acl =" checks look names up through cfg */
    if (!compile_check_named_lists(&cs) || !compile_all_acls(&cs, set) ||
        !compile_check_options(&cs)) {
        cfg->acls = NULL;
        return false;
    }
    return true;
}
