/*
 * compile.c - turns the "begin routers" and "begin transports" blocks of the config tree
 * into struct router / struct transport lists (deliver_config), checking everything that
 * can be checked at startup: known drivers, options valid for that driver, booleans,
 * modes, expansion syntax, router->transport references and required options. Every
 * error names file:line and the offending word.
 *
 * Owns nothing at run time: the result lives in cfg->arena and is immutable once
 * deliver_compile() returns. Called by config_load() in the thread that loads the config.
 */
#include "deliver_internal.h"

#include "postern/expand.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind {
    OPT_BOOL,      /* bool field */
    OPT_STRING,    /* string kept raw (not expanded) */
    OPT_EXPANDED,  /* string checked for expansion syntax, expanded at run time */
    OPT_MODE,      /* octal file mode */
    OPT_TRANSPORT, /* router's transport name, resolved to a pointer */
    OPT_REFUSED,   /* known Exim option we deliberately do not support */
};

/* drivers an option applies to */
#define FOR_ANY 0u
#define FOR_ACCEPT 1u
#define FOR_REDIRECT 2u
#define FOR_APPENDFILE 4u

struct opt_def {
    const char *name;
    enum opt_kind kind;
    size_t offset;
    unsigned drivers;
    const char *refusal; /* OPT_REFUSED: why */
};

#define R_OFF(f) offsetof(struct router, f)
#define T_OFF(f) offsetof(struct transport, f)

static const struct opt_def router_options[] = {
    {"domains", OPT_EXPANDED, R_OFF(domains), FOR_ANY, 0},
    {"local_parts", OPT_EXPANDED, R_OFF(local_parts), FOR_ANY, 0},
    {"senders", OPT_EXPANDED, R_OFF(senders), FOR_ANY, 0},
    {"condition", OPT_EXPANDED, R_OFF(condition), FOR_ANY, 0},
    {"address_data", OPT_EXPANDED, R_OFF(address_data), FOR_ANY, 0},
    {"transport", OPT_TRANSPORT, R_OFF(transport), FOR_ACCEPT, 0},
    /* "verify" is Exim's verify_sender + verify_recipient; postern verifies senders with the
     * verify_recipient setting, so both spellings set the one flag */
    {"verify", OPT_BOOL, R_OFF(verify_recipient), FOR_ANY, 0},
    {"verify_sender", OPT_REFUSED, 0, FOR_ANY,
     "verify_sender is not supported yet (sender verification uses verify_recipient; "
     "use \"verify\" to set both)"},
    {"verify_recipient", OPT_BOOL, R_OFF(verify_recipient), FOR_ANY, 0},
    {"verify_only", OPT_BOOL, R_OFF(verify_only), FOR_ANY, 0},
    {"more", OPT_BOOL, R_OFF(more), FOR_ANY, 0},
    {"log_as_local", OPT_BOOL, R_OFF(log_as_local), FOR_ANY, 0},
    {"data", OPT_EXPANDED, R_OFF(data), FOR_REDIRECT, 0},
    {"file", OPT_EXPANDED, R_OFF(redirect_file), FOR_REDIRECT, 0},
    {"allow_fail", OPT_BOOL, R_OFF(allow_fail), FOR_REDIRECT, 0},
    {"allow_defer", OPT_BOOL, R_OFF(allow_defer), FOR_REDIRECT, 0},
    {"errors_to", OPT_REFUSED, 0, FOR_ANY, "errors_to is not supported"},
    {"check_local_user", OPT_REFUSED, 0, FOR_ANY,
     "check_local_user is not supported: postern does not deliver to system users"},
};

static const struct opt_def transport_options[] = {
    {"return_path_add", OPT_BOOL, T_OFF(return_path_add), FOR_ANY, 0},
    {"envelope_to_add", OPT_BOOL, T_OFF(envelope_to_add), FOR_ANY, 0},
    {"delivery_date_add", OPT_BOOL, T_OFF(delivery_date_add), FOR_ANY, 0},
    {"event_action", OPT_REFUSED, 0, FOR_ANY, "event_action is not supported yet"},
    {"tpda_delivery_action", OPT_REFUSED, 0, FOR_ANY, "tpda_delivery_action is not supported yet"},
    {"tpda_host_defer_action", OPT_REFUSED, 0, FOR_ANY,
     "tpda_host_defer_action is not supported yet"},
    {"directory", OPT_EXPANDED, T_OFF(directory), FOR_APPENDFILE, 0},
    {"maildir_format", OPT_BOOL, T_OFF(maildir_format), FOR_APPENDFILE, 0},
    {"create_directory", OPT_BOOL, T_OFF(create_directory), FOR_APPENDFILE, 0},
    {"use_crlf", OPT_BOOL, T_OFF(use_crlf), FOR_APPENDFILE, 0},
    {"mode", OPT_MODE, T_OFF(mode), FOR_APPENDFILE, 0},
    {"directory_mode", OPT_MODE, T_OFF(directory_mode), FOR_APPENDFILE, 0},
    {"file", OPT_REFUSED, 0, FOR_APPENDFILE,
     "appendfile \"file\" (mbox) delivery is not supported; use maildir_format with directory"},
};

/* Everything one compile needs, so helpers stay short. */
struct compiler {
    struct config *cfg;
    struct deliver_config *dc;
    char *err;
    size_t errlen;
};

static bool compile_fail(struct compiler *c, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool compile_fail(struct compiler *c, const char *file, int line, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s:%d: %s", file ? file : "<config>", line, text);
    return false;
}

static const struct conf_item *block_find_driver(const struct conf_block *b)
{
    for (const struct conf_item *it = b->items; it; it = it->next)
        if (strcmp(it->name, "driver") == 0)
            return it;
    return NULL;
}

static const struct opt_def *opt_find(const struct opt_def *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

static const char *driver_label(unsigned driver)
{
    switch (driver) {
    case FOR_ACCEPT:
        return "accept router";
    case FOR_REDIRECT:
        return "redirect router";
    default:
        return "appendfile transport";
    }
}

static bool parse_mode(const char *s, mode_t *out)
{
    char *end;
    if (!s || !*s)
        return false;
    long v = strtol(s, &end, 8);
    if (*end || v < 0 || v > 07777)
        return false;
    *out = (mode_t)v;
    return true;
}

static const struct transport *transport_find(const struct deliver_config *dc, const char *name)
{
    for (const struct transport *t = dc->transports; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

/* Store one option value into `base` (a struct router or struct transport). */
/* The expansion checker (src/expand) over a router or transport option: syntax, variables
 * of a delivery (a name no delivery has is a load error), and the constant regular
 * expressions, compiled once into the snapshot. domains, local_parts and senders are lists. */
static bool compile_check_expansion(struct compiler *c, const struct conf_item *it,
                                    const char **reason)
{
    static const struct {
        const char *name;
        enum conf_list_kind kind;
    } lists[] = {{"domains", CONF_LIST_DOMAIN},
                 {"local_parts", CONF_LIST_LOCALPART},
                 {"senders", CONF_LIST_ADDRESS}};
    struct expand_check check = {
        .vars = &deliver_var_table, .where = "a router or transport", .cfg = c->cfg};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (strcmp(it->name, lists[i].name) == 0)
            return expand_check_list(it->value, lists[i].kind, &check, c->cfg->arena, reason);
    return expand_check(it->value, &check, c->cfg->arena, reason);
}

static bool opt_apply(struct compiler *c, const char *what, const char *owner,
                      const struct opt_def *def, const struct conf_item *it, void *base)
{
    char *field = (char *)base + def->offset;
    if (def->kind == OPT_REFUSED)
        return compile_fail(c, it->file, it->line, "%s %s: %s (near '%s')", what, owner,
                            def->refusal, it->name);
    if (def->kind == OPT_BOOL) {
        bool v = !it->negated;
        if (it->value && (it->negated || !parse_bool(it->value, &v)))
            return compile_fail(c, it->file, it->line,
                                "%s %s: option %s needs a boolean (true/false/yes/no) "
                                "(near '%s')",
                                what, owner, it->name, it->value);
        *(bool *)field = v;
        return true;
    }
    if (it->negated || !it->value)
        return compile_fail(c, it->file, it->line, "%s %s: option %s needs a value (near '%s')",
                            what, owner, it->name, it->name);
    switch (def->kind) {
    case OPT_MODE:
        if (!parse_mode(it->value, (mode_t *)field))
            return compile_fail(c, it->file, it->line,
                                "%s %s: option %s needs an octal mode (near '%s')", what, owner,
                                it->name, it->value);
        return true;
    case OPT_TRANSPORT: {
        const struct transport *t = transport_find(c->dc, it->value);
        if (!t)
            return compile_fail(c, it->file, it->line,
                                "%s %s: transport '%s' is not defined (near '%s')", what, owner,
                                it->value, it->value);
        *(const struct transport **)field = t;
        return true;
    }
    case OPT_EXPANDED: {
        const char *reason = NULL;
        if (!compile_check_expansion(c, it, &reason))
            return compile_fail(c, it->file, it->line, "%s %s: option %s: %s (near '%s')", what,
                                owner, it->name, reason ? reason : "bad expansion", it->value);
        *(const char **)field = it->value;
        return true;
    }
    default:
        *(const char **)field = it->value;
        return true;
    }
}

/* Apply every item of a block except "driver". */
static bool block_apply_options(struct compiler *c, const char *what, const struct conf_block *b,
                                const struct opt_def *table, size_t n, unsigned driver, void *base)
{
    for (const struct conf_item *it = b->items; it; it = it->next) {
        if (strcmp(it->name, "driver") == 0)
            continue;
        const struct opt_def *def = opt_find(table, n, it->name);
        if (!def || (def->drivers != FOR_ANY && !(def->drivers & driver)))
            return compile_fail(c, it->file, it->line,
                                "%s %s: unknown option for the %s (near '%s')", what, b->name,
                                driver_label(driver), it->name);
        if (!opt_apply(c, what, b->name, def, it, base))
            return false;
    }
    return true;
}

static bool transport_compile(struct compiler *c, const struct conf_block *b, struct transport *t)
{
    const struct conf_item *drv = block_find_driver(b);
    t->name = b->name;
    t->file = b->file;
    t->line = b->line;
    t->create_directory = true;
    t->mode = 0600;
    t->directory_mode = 0700;
    if (!drv || !drv->value)
        return compile_fail(c, b->file, b->line, "transport %s: no driver specified (near '%s')",
                            b->name, b->name);
    if (strcmp(drv->value, "appendfile") != 0)
        return compile_fail(c, drv->file, drv->line, "transport %s: unknown driver (near '%s')",
                            b->name, drv->value);
    t->driver = TRANSPORT_APPENDFILE;
    if (!block_apply_options(c, "transport", b, transport_options,
                             sizeof transport_options / sizeof transport_options[0], FOR_APPENDFILE,
                             t))
        return false;
    if (!t->directory)
        return compile_fail(c, b->file, b->line,
                            "transport %s: appendfile needs \"directory\" (maildir) or \"file\" "
                            "(near '%s')",
                            b->name, b->name);
    if (!t->maildir_format)
        return compile_fail(c, b->file, b->line,
                            "transport %s: appendfile with \"directory\" is supported only with "
                            "maildir_format = true (near '%s')",
                            b->name, b->name);
    return true;
}

static bool router_check_driver_options(struct compiler *c, const struct conf_block *b,
                                        const struct router *r)
{
    if (r->driver == ROUTER_ACCEPT && !r->transport && !r->verify_only)
        return compile_fail(c, b->file, b->line,
                            "router %s: the accept router needs a transport (near '%s')", b->name,
                            b->name);
    if (r->driver == ROUTER_REDIRECT && !r->data == !r->redirect_file)
        return compile_fail(c, b->file, b->line,
                            "router %s: the redirect router needs exactly one of \"data\" and "
                            "\"file\" (near '%s')",
                            b->name, b->name);
    return true;
}

static bool router_compile(struct compiler *c, const struct conf_block *b, struct router *r)
{
    const struct conf_item *drv = block_find_driver(b);
    unsigned driver;
    r->name = b->name;
    r->file = b->file;
    r->line = b->line;
    r->verify_recipient = true;
    r->more = true;
    if (!drv || !drv->value)
        return compile_fail(c, b->file, b->line, "router %s: no driver specified (near '%s')",
                            b->name, b->name);
    if (strcmp(drv->value, "accept") == 0) {
        r->driver = ROUTER_ACCEPT;
        r->log_as_local = true;
        driver = FOR_ACCEPT;
    } else if (strcmp(drv->value, "redirect") == 0) {
        r->driver = ROUTER_REDIRECT;
        driver = FOR_REDIRECT;
    } else {
        return compile_fail(c, drv->file, drv->line, "router %s: unknown driver (near '%s')",
                            b->name, drv->value);
    }
    if (!block_apply_options(c, "router", b, router_options,
                             sizeof router_options / sizeof router_options[0], driver, r))
        return false;
    return router_check_driver_options(c, b, r);
}

static bool names_unique(struct compiler *c, const struct conf_block *list, const char *what)
{
    for (const struct conf_block *a = list; a; a = a->next)
        for (const struct conf_block *b = a->next; b; b = b->next)
            if (strcmp(a->name, b->name) == 0)
                return compile_fail(c, b->file, b->line, "%s %s is defined twice (near '%s')", what,
                                    b->name, b->name);
    return true;
}

const struct deliver_config *deliver_config_of(const struct config *cfg)
{
    return cfg ? cfg->deliver : NULL;
}

bool deliver_compile(struct config *cfg, char *err, size_t errlen)
{
    struct compiler c = {cfg, NULL, err, errlen};
    struct deliver_config *dc = arena_zalloc(cfg->arena, sizeof *dc);
    c.dc = dc;
    if (!names_unique(&c, cfg->tree.transports, "transport") ||
        !names_unique(&c, cfg->tree.routers, "router"))
        return false;

    struct transport **tail_t = &dc->transports;
    for (const struct conf_block *b = cfg->tree.transports; b; b = b->next) {
        struct transport *t = arena_zalloc(cfg->arena, sizeof *t);
        if (!transport_compile(&c, b, t))
            return false;
        *tail_t = t;
        tail_t = &t->next;
    }
    struct router **tail_r = &dc->routers;
    for (const struct conf_block *b = cfg->tree.routers; b; b = b->next) {
        struct router *r = arena_zalloc(cfg->arena, sizeof *r);
        if (!router_compile(&c, b, r))
            return false;
        *tail_r = r;
        tail_r = &r->next;
    }
    cfg->deliver = dc;
    return true;
}
