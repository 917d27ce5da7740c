/*
 * parse.c - the configuration parser: logical lines (from reader.c) into a struct
 * conf_tree. Pure apart from reading .include files; knows the shape of Exim's sections
 * but not the meaning of any option (options.c, src/acl and src/deliver check names).
 *
 * Sections: the main section ("name = value", bare booleans "[no_|not_]name", named
 * lists "hostlist|domainlist|addresslist|localpartlist name = value", macro definitions
 * "NAME = value" / "NAME == value"), then "begin acl" ("name:" starts an ACL, a verb
 * starts a statement, other lines add "[!]name = value" items), "begin routers" and
 * "begin transports" ("name:" then option lines). retry, rewrite, authenticators and
 * local_scan are refused. Every error is "file:line: reason (near 'word')".
 *
 * Ownership: all output lives in the caller's arena. Any thread may parse, each with its
 * own arena.
 */
#include "config_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum conf_section { SEC_MAIN, SEC_ACL, SEC_ROUTERS, SEC_TRANSPORTS };

struct conf_parser {
    struct conf_reader r;
    struct arena *arena;
    struct conf_tree *out;
    enum conf_section section;
    unsigned seen; /* 1 << section for every section begun */
    struct conf_item **main_tail;
    struct conf_named_list **list_tail;
    struct conf_acl **acl_tail;
    struct conf_acl *acl; /* ACL being read */
    struct conf_acl_stmt **stmt_tail;
    struct conf_acl_stmt *stmt; /* statement being read */
    struct conf_item **stmt_item_tail;
    struct conf_block **router_tail;
    struct conf_block **transport_tail;
    struct conf_block *block; /* router or transport being read */
    struct conf_item **block_item_tail;
};

static const char *const acl_verbs[] = {"accept",  "deny",    "defer", "drop",
                                        "discard", "require", "warn"};

static const struct {
    const char *word;
    enum conf_list_kind kind;
} list_kinds[] = {{"hostlist", CONF_LIST_HOST},
                  {"domainlist", CONF_LIST_DOMAIN},
                  {"addresslist", CONF_LIST_ADDRESS},
                  {"localpartlist", CONF_LIST_LOCALPART}};

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static size_t span_option_name(const char *s)
{
    size_t n = 0;
    while (islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_')
        n++;
    return n;
}

/* Names of ACLs, routers, transports and named lists. */
static size_t span_block_name(const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-' || s[n] == '.')
        n++;
    return n;
}

/* The first white-space separated word of s, for "(near '...')". */
static const char *near_word(struct conf_parser *p, const char *s)
{
    size_t n = 0;
    while (s[n] && !isspace((unsigned char)s[n]) && n < 60)
        n++;
    return arena_strndup(p->arena, s, n);
}

static bool parse_fail(struct conf_parser *p, const struct conf_line *ln, const char *near,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool parse_fail(struct conf_parser *p, const struct conf_line *ln, const char *near,
                       const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return conf_fail(p->r.err, p->r.errlen, ln->file, ln->line, near, "%s", reason);
}

static int hex_digit(int c)
{
    if (isdigit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode one escape after a backslash at s; returns the byte, advances *s. */
static unsigned char decode_escape(const char **s)
{
    const char *q = *s;
    unsigned v = 0;
    int i = 0;
    switch (*q) {
    case 'n':
        *s = q + 1;
        return '\n';
    case 'r':
        *s = q + 1;
        return '\r';
    case 't':
        *s = q + 1;
        return '\t';
    case 'x':
        q++;
        for (int d; i < 2 && (d = hex_digit((unsigned char)q[i])) >= 0; i++)
            v = v * 16 + (unsigned)d;
        if (i == 0) {
            *s = q;
            return 'x';
        }
        *s = q + i;
        return (unsigned char)v;
    default:
        if (*q >= '0' && *q <= '7') {
            for (; i < 3 && q[i] >= '0' && q[i] <= '7'; i++)
                v = v * 8 + (unsigned)(q[i] - '0');
            *s = q + i;
            return (unsigned char)(v & 0xff);
        }
        *s = q + 1;
        return (unsigned char)*q;
    }
}

bool conf_value_dequote(struct arena *arena, const char *raw, const char **out)
{
    size_t i = 1;
    if (raw[0] == '"')
        while (raw[i] && raw[i] != '"')
            i += raw[i] == '\\' && raw[i + 1] ? 2 : 1;
    if (raw[0] != '"' || raw[i] != '"' || raw[i + 1] != '\0') {
        *out = arena_strdup(arena, raw); /* not wholly quoted: keep the text as written */
        return true;
    }
    char *dst = arena_alloc(arena, i);
    size_t n = 0;
    const char *s = raw + 1;
    const char *end = raw + i;
    while (s < end) {
        unsigned char c = (unsigned char)*s++;
        if (c == '\\')
            c = decode_escape(&s);
        if (c == '\0')
            return false;
        dst[n++] = (char)c;
    }
    dst[n] = '\0';
    *out = dst;
    return true;
}

static bool parse_value(struct conf_parser *p, const struct conf_line *ln, const char *raw,
                        const char **out)
{
    if (conf_value_dequote(p->arena, raw, out))
        return true;
    return parse_fail(p, ln, raw, "quoted value contains a NUL character");
}

static struct conf_item *item_new(struct conf_parser *p, const struct conf_line *ln)
{
    struct conf_item *it = arena_zalloc(p->arena, sizeof *it);
    it->file = ln->file;
    it->line = ln->line;
    return it;
}

/* "name = value" or a bare boolean "[no_|not_]name" (main section, routers, transports). */
static bool parse_option(struct conf_parser *p, const struct conf_line *ln, const char *t,
                         const char *what, struct conf_item ***tail)
{
    size_t n = span_option_name(t);
    const char *q = skip_blanks(t + n);
    struct conf_item *it = item_new(p, ln);
    if (n && *q == '=') {
        it->name = arena_strndup(p->arena, t, n);
        if (!parse_value(p, ln, skip_blanks(q + 1), &it->value))
            return false;
    } else if (n && *q == '\0') {
        size_t skip = 0;
        if (n > 3 && strncmp(t, "no_", 3) == 0)
            skip = 3;
        else if (n > 4 && strncmp(t, "not_", 4) == 0)
            skip = 4;
        it->name = arena_strndup(p->arena, t + skip, n - skip);
        it->negated = skip > 0;
    } else {
        return parse_fail(p, ln, near_word(p, t),
                          "malformed %s setting: expected \"name = value\" or a boolean name",
                          what);
    }
    **tail = it;
    *tail = &it->next;
    return true;
}

/* "NAME = value" / "NAME == value". Returns 1 if handled, 0 if not a definition, -1 error. */
static int parse_macro_definition(struct conf_parser *p, const struct conf_line *ln)
{
    const char *t = ln->text;
    size_t n = 0;
    while (isalnum((unsigned char)t[n]) || t[n] == '_')
        n++;
    const char *q = skip_blanks(t + n);
    if (*q != '=')
        return 0;
    bool redefine = q[1] == '=';
    const char *value = skip_blanks(q + (redefine ? 2 : 1));
    char *name = arena_strndup(p->arena, t, n);
    return conf_reader_define(&p->r, name, value, redefine, ln->file, ln->line) ? 1 : -1;
}

/* "hostlist name = value" etc. Returns 1 if handled, 0 if not a list line, -1 error. */
static int parse_named_list(struct conf_parser *p, const struct conf_line *ln)
{
    const char *t = ln->text;
    size_t w = span_option_name(t);
    for (size_t i = 0; i < sizeof list_kinds / sizeof list_kinds[0]; i++) {
        size_t kl = strlen(list_kinds[i].word);
        if (w == kl + 6 && strncmp(t, list_kinds[i].word, kl) == 0 &&
            strncmp(t + kl, "_cache", 6) == 0)
            return parse_fail(p, ln, near_word(p, t), "this kind of named list is not supported"),
                   -1;
        if (w != kl || strncmp(t, list_kinds[i].word, kl) != 0 || !isspace((unsigned char)t[w]))
            continue;
        const char *s = skip_blanks(t + w);
        size_t n = span_block_name(s);
        const char *q = skip_blanks(s + n);
        if (n == 0 || *q != '=')
            return parse_fail(p, ln, near_word(p, s), "malformed %s: expected \"%s name = value\"",
                              list_kinds[i].word, list_kinds[i].word),
                   -1;
        struct conf_named_list *l = arena_zalloc(p->arena, sizeof *l);
        l->kind = list_kinds[i].kind;
        l->name = arena_strndup(p->arena, s, n);
        l->file = ln->file;
        l->line = ln->line;
        for (const struct conf_named_list *o = p->out->lists; o; o = o->next)
            if (o->kind == l->kind && strcmp(o->name, l->name) == 0)
                return parse_fail(p, ln, l->name, "there is already a %s called \"%s\" (%s:%d)",
                                  list_kinds[i].word, l->name, o->file, o->line),
                       -1;
        if (!parse_value(p, ln, skip_blanks(q + 1), &l->value))
            return -1;
        *p->list_tail = l;
        p->list_tail = &l->next;
        return 1;
    }
    return 0;
}

static bool parse_main_line(struct conf_parser *p, const struct conf_line *ln)
{
    int r = parse_named_list(p, ln);
    if (r)
        return r > 0;
    return parse_option(p, ln, ln->text, "main option", &p->main_tail);
}

static bool parse_begin(struct conf_parser *p, const struct conf_line *ln)
{
    const char *name = skip_blanks(ln->text + 5);
    static const struct {
        const char *name;
        int section; /* -1: refused */
    } sections[] = {{"acl", SEC_ACL},  {"routers", SEC_ROUTERS}, {"transports", SEC_TRANSPORTS},
                    {"retry", -1},     {"rewrite", -1},          {"authenticators", -1},
                    {"local_scan", -1}};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (!str_ieq(name, sections[i].name))
            continue;
        int sec = sections[i].section;
        if (sec < 0)
            return parse_fail(p, ln, name, "section \"begin %s\" is not supported",
                              sections[i].name);
        if (p->seen & (1u << sec))
            return parse_fail(p, ln, name, "section \"begin %s\" appears twice", sections[i].name);
        p->seen |= 1u << sec;
        p->section = (enum conf_section)sec;
        p->acl = NULL;
        p->stmt = NULL;
        p->block = NULL;
        return true;
    }
    return parse_fail(p, ln, near_word(p, name), "unknown configuration section");
}

/* "name:" at the start of t: returns the name length and sets *rest to the text after the
 * colon, or 0 if t does not start that way. */
static size_t block_header(const char *t, const char **rest)
{
    size_t n = span_block_name(t);
    const char *q = skip_blanks(t + n);
    if (n == 0 || *q != ':')
        return 0;
    *rest = skip_blanks(q + 1);
    return n;
}

/* "set acl_m_x = value": item value becomes "acl_m_x = value". */
static bool parse_acl_set(struct conf_parser *p, const struct conf_line *ln, const char *s,
                          struct conf_item *it)
{
    const char *eq = strchr(s, '=');
    size_t n = eq ? (size_t)(eq - s) : 0;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (!eq || n == 0)
        return parse_fail(p, ln, near_word(p, s), "\"set\" needs \"variable = value\"");
    const char *value;
    if (!parse_value(p, ln, skip_blanks(eq + 1), &value))
        return false;
    it->value = arena_printf(p->arena, "%.*s = %s", (int)n, s, value);
    return true;
}

/* One condition or modifier: "[!]name = value". */
static bool parse_acl_item(struct conf_parser *p, const struct conf_line *ln, const char *s)
{
    struct conf_item *it = item_new(p, ln);
    if (*s == '!') {
        it->negated = true;
        s = skip_blanks(s + 1);
    }
    size_t n = span_option_name(s);
    if (n == 0)
        return parse_fail(p, ln, near_word(p, s), "malformed ACL condition or modifier");
    it->name = arena_strndup(p->arena, s, n);
    const char *q = skip_blanks(s + n);
    if (n == 3 && memcmp(s, "set", 3) == 0 && q > s + n) {
        if (!parse_acl_set(p, ln, q, it))
            return false;
    } else if (*q != '=') {
        return parse_fail(p, ln, it->name, "ACL condition or modifier \"%s\" without '='",
                          it->name);
    } else if (!parse_value(p, ln, skip_blanks(q + 1), &it->value)) {
        return false;
    }
    *p->stmt_item_tail = it;
    p->stmt_item_tail = &it->next;
    return true;
}

static bool parse_acl_start(struct conf_parser *p, const struct conf_line *ln, size_t n,
                            const char *rest)
{
    const char *t = ln->text;
    if (*rest)
        return parse_fail(p, ln, near_word(p, rest), "unexpected text after ACL name");
    struct conf_acl *a = arena_zalloc(p->arena, sizeof *a);
    a->name = arena_strndup(p->arena, t, n);
    a->file = ln->file;
    a->line = ln->line;
    for (const struct conf_acl *o = p->out->acls; o; o = o->next)
        if (strcmp(o->name, a->name) == 0)
            return parse_fail(p, ln, a->name, "there is already an ACL called \"%s\" (%s:%d)",
                              a->name, o->file, o->line);
    *p->acl_tail = a;
    p->acl_tail = &a->next;
    p->acl = a;
    p->stmt = NULL;
    p->stmt_tail = &a->stmts;
    return true;
}

static bool parse_acl_line(struct conf_parser *p, const struct conf_line *ln)
{
    const char *t = ln->text;
    const char *rest;
    size_t n = block_header(t, &rest);
    if (n)
        return parse_acl_start(p, ln, n, rest);
    size_t w = 0;
    while (islower((unsigned char)t[w]))
        w++;
    for (size_t i = 0; i < sizeof acl_verbs / sizeof acl_verbs[0]; i++) {
        if (strlen(acl_verbs[i]) != w || memcmp(t, acl_verbs[i], w) != 0 ||
            (t[w] && !isspace((unsigned char)t[w])))
            continue;
        if (!p->acl)
            return parse_fail(p, ln, acl_verbs[i], "ACL statement before any ACL name");
        struct conf_acl_stmt *st = arena_zalloc(p->arena, sizeof *st);
        st->verb = acl_verbs[i];
        st->file = ln->file;
        st->line = ln->line;
        *p->stmt_tail = st;
        p->stmt_tail = &st->next;
        p->stmt = st;
        p->stmt_item_tail = &st->items;
        const char *first = skip_blanks(t + w);
        return *first ? parse_acl_item(p, ln, first) : true;
    }
    if (!p->stmt)
        return parse_fail(p, ln, near_word(p, t),
                          p->acl ? "ACL condition or modifier before any verb"
                                 : "text in the ACL section before any ACL name");
    return parse_acl_item(p, ln, t);
}

/* Routers and transports: "name:" (optionally followed by an option) or option lines. */
static bool parse_driver_line(struct conf_parser *p, const struct conf_line *ln,
                              struct conf_block ***tail, struct conf_block *all, const char *kind)
{
    const char *t = ln->text;
    const char *rest;
    size_t n = block_header(t, &rest);
    if (n) {
        struct conf_block *b = arena_zalloc(p->arena, sizeof *b);
        b->name = arena_strndup(p->arena, t, n);
        b->file = ln->file;
        b->line = ln->line;
        for (const struct conf_block *o = all; o; o = o->next)
            if (strcmp(o->name, b->name) == 0)
                return parse_fail(p, ln, b->name, "there is already a %s called \"%s\" (%s:%d)",
                                  kind, b->name, o->file, o->line);
        **tail = b;
        *tail = &b->next;
        p->block = b;
        p->block_item_tail = &b->items;
        if (!*rest)
            return true;
        t = rest;
    } else if (!p->block) {
        return parse_fail(p, ln, near_word(p, t), "%s option before any %s name", kind, kind);
    }
    char what[32];
    snprintf(what, sizeof what, "%s option", kind);
    return parse_option(p, ln, t, what, &p->block_item_tail);
}

static bool parse_line(struct conf_parser *p, const struct conf_line *ln)
{
    const char *t = ln->text;
    if (isupper((unsigned char)t[0])) {
        int r = parse_macro_definition(p, ln);
        if (r)
            return r > 0;
        if (p->section == SEC_MAIN)
            return parse_fail(p, ln, near_word(p, t),
                              "malformed macro definition: expected \"NAME = value\"");
    }
    if (strncmp(t, "begin", 5) == 0 && (t[5] == ' ' || t[5] == '\t'))
        return parse_begin(p, ln);
    switch (p->section) {
    case SEC_MAIN:
        return parse_main_line(p, ln);
    case SEC_ACL:
        return parse_acl_line(p, ln);
    case SEC_ROUTERS:
        return parse_driver_line(p, ln, &p->router_tail, p->out->routers, "router");
    case SEC_TRANSPORTS:
        return parse_driver_line(p, ln, &p->transport_tail, p->out->transports, "transport");
    }
    return false;
}

bool conf_parse_text_flags(struct arena *arena, const char *text, size_t len, const char *name,
                           const struct conf_macro *cmdline_macros, unsigned flags,
                           struct conf_tree *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    struct conf_parser p;
    memset(&p, 0, sizeof p);
    p.arena = arena;
    p.out = out;
    p.section = SEC_MAIN;
    p.main_tail = &out->main_items;
    p.list_tail = &out->lists;
    p.acl_tail = &out->acls;
    p.router_tail = &out->routers;
    p.transport_tail = &out->transports;
    bool ok = conf_reader_init(&p.r, arena, text ? text : "", text ? len : 0,
                               name ? name : "<text>", cmdline_macros, flags, err, errlen);
    struct conf_line ln;
    while (ok && conf_reader_next(&p.r, &ln))
        ok = parse_line(&p, &ln);
    if (p.r.failed)
        ok = false;
    if (ok)
        out->macros = conf_reader_macros(&p.r);
    conf_reader_free(&p.r);
    return ok;
}

bool conf_parse_text(struct arena *arena, const char *text, size_t len, const char *name,
                     const struct conf_macro *cmdline_macros, struct conf_tree *out, char *err,
                     size_t errlen)
{
    return conf_parse_text_flags(arena, text, len, name, cmdline_macros, 0, out, err, errlen);
}

bool conf_parse_file(struct arena *arena, const char *path, const struct conf_macro *cmdline_macros,
                     struct conf_tree *out, char *err, size_t errlen)
{
    char *text;
    size_t len;
    char why[256];
    memset(out, 0, sizeof *out);
    if (!conf_read_file(path, &text, &len, why, sizeof why)) {
        snprintf(err, errlen, "%s: cannot read configuration file: %s", path, why);
        return false;
    }
    bool ok = conf_parse_text(arena, text, len, path, cmdline_macros, out, err, errlen);
    free(text);
    return ok;
}
