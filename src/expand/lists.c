/*
 * lists.c - Exim's host, domain, local part and address lists: splitting (separator
 * changes with "<x", doubled separators as literals, white space trimmed, a trailing
 * empty item dropped) and matching (first matching item decides; "!" negates; a list
 * whose last item is negative matches what nothing else matched; "+name" named lists;
 * "/file" items read one item per line; "type;data" lookups; regexes; wildcards; CIDR).
 *
 * Lists are expanded before they are split (except where a condition such as match_ip{}{}
 * has expanded them already). A forced expansion failure means "not in the list", any
 * other expansion failure is MATCH_ERROR, a deferred lookup MATCH_DEFER: never a silent
 * no-match. No host name or DNS lookups happen here: name patterns match only the name
 * the caller supplies. A regex item that hits PCRE2's limits is MATCH_DEFER.
 *
 * expand_check_list() is the load-time check of a list: the expansion checker over its
 * text, then, when the text is constant, its "^regex" items compiled into the snapshot.
 *
 * Owns no state; temporaries and errors go in ctx->arena. Any thread may call it.
 */
#include "expand_internal.h"

#include "postern/lookup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIST_FILE_MAX_LINE 4096
#define LIST_FILE_MAX_LINES 100000

struct list_subject {
    enum conf_list_kind kind;
    const char *ip;    /* host lists: textual address; NULL or "" = local (no host) */
    const char *name;  /* host lists: host name when known, else NULL */
    const char *value; /* domain, local part or address */
    bool caseful;      /* "+caseful" seen: local parts compared exactly */
    bool ip_only;      /* match_ip: name patterns never match */
};

/* The verdict of walking items so far. */
struct list_walk {
    bool decided;
    enum match_result result;
    bool last_negative;
};

static enum match_result list_run(struct expand_ctx *ctx, const char *list, struct list_subject *s,
                                  bool expand, int depth, const char **err);

static enum match_result list_error(struct expand_ctx *ctx, const char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum match_result list_error(struct expand_ctx *ctx, const char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err)
        *err = arena_vprintf(ctx->arena, fmt, ap);
    va_end(ap);
    return MATCH_ERROR;
}

/* ------------------------------------------------------------------ */
/* Splitting                                                           */
/* ------------------------------------------------------------------ */

/* Skip a leading "<x" separator change; returns the list body and sets *sep. */
static const char *list_separator(const char *list, char *sep)
{
    const char *p = list;
    *sep = ':';
    while (isspace((unsigned char)*p))
        p++;
    if (p[0] != '<')
        return list;
    if (p[1] == '\\' && p[2] == 'n') { /* "<\n" written in the configuration */
        *sep = '\n';
        return p + 3;
    }
    if (p[1] && (ispunct((unsigned char)p[1]) || iscntrl((unsigned char)p[1]))) {
        *sep = p[1];
        return p + 2;
    }
    return list;
}

static int list_split_body(struct arena *arena, const char *p, char sep, const char ***items)
{
    struct buf item;
    const char stop[2] = {sep, '\0'};
    int n = 0, cap = 8;
    const char **out = arena_alloc(arena, sizeof *out * (size_t)cap);
    buf_init(&item);
    for (;;) {
        while (*p && *p != sep && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break; /* an empty item at the end is ignored */
        buf_clear(&item);
        for (;;) {
            size_t run = strcspn(p, stop);
            buf_append(&item, p, run);
            p += run;
            if (*p == sep && p[1] == sep && !iscntrl((unsigned char)sep)) {
                buf_append(&item, &sep, 1); /* doubled separator: a literal one */
                p += 2;
                continue;
            }
            break;
        }
        if (n == cap) {
            const char **bigger = arena_alloc(arena, sizeof *out * (size_t)cap * 2);
            memcpy(bigger, out, sizeof *out * (size_t)cap);
            out = bigger;
            cap *= 2;
        }
        char *text = arena_strndup(arena, item.data ? item.data : "", item.len);
        size_t len = item.len;
        while (len && isspace((unsigned char)text[len - 1]))
            text[--len] = '\0';
        out[n++] = text;
        if (*p == sep)
            p++;
    }
    buf_free(&item);
    *items = out;
    return n;
}

int list_split(struct arena *arena, const char *list, const char ***items)
{
    char sep;
    const char *body = list_separator(list ? list : "", &sep);
    return list_split_body(arena, body, sep, items);
}

/* ------------------------------------------------------------------ */
/* Lookups inside lists                                                */
/* ------------------------------------------------------------------ */

/* "type;data" where type is [A-Za-z0-9_-]+ optionally followed by '*' and '@'. */
static bool lookup_item_split(struct arena *arena, const char *item, const char **type,
                              const char **data)
{
    const char *p = item;
    while (isalnum((unsigned char)*p) || *p == '-' || *p == '_')
        p++;
    if (p == item)
        return false;
    if (*p == '*')
        p++;
    if (*p == '@')
        p++;
    if (*p != ';')
        return false;
    *type = arena_strndup(arena, item, (size_t)(p - item));
    *data = p + 1;
    while (isspace((unsigned char)**data))
        (*data)++;
    return true;
}

/* Run a lookup for list membership; key NULL for query-style types. */
/* Run a lookup for a list item: found => YES (the data in *found when wanted). */
static enum match_result list_lookup_data(struct expand_ctx *ctx, const char *type, const char *key,
                                          const char *data, const char **found, const char **err)
{
    const char *result = NULL, *lerr = NULL;
    switch (lookup_run(ctx, type, key, data, &result, &lerr)) {
    case LOOKUP_FOUND:
        if (found)
            *found = result;
        return MATCH_YES;
    case LOOKUP_NOT_FOUND:
        return MATCH_NO;
    case LOOKUP_DEFER:
        if (err)
            *err = arena_printf(ctx->arena, "%s lookup deferred: %s", type, lerr ? lerr : "");
        return MATCH_DEFER;
    default:
        return list_error(ctx, err, "%s lookup failed: %s", type, lerr ? lerr : "error");
    }
}

static enum match_result list_lookup(struct expand_ctx *ctx, const char *type, const char *key,
                                     const char *data, const char **err)
{
    return list_lookup_data(ctx, type, key, data, NULL, err);
}

/* A single-key lookup with `key`, or the query for a query-style type. */
static enum match_result list_lookup_item(struct expand_ctx *ctx, const char *type,
                                          const char *data, const char *key, const char **err)
{
    bool query_style = false;
    if (!lookup_type_known(type, &query_style))
        return list_error(ctx, err, "unknown lookup type \"%s\" in list item \"%s;%s\"", type, type,
                          data);
    if (query_style)
        return list_lookup(ctx, type, NULL, data, err);
    if (!key || !*key)
        return MATCH_NO; /* single-key lookups cannot look up an empty key */
    return list_lookup(ctx, type, key, data, err);
}

/* ------------------------------------------------------------------ */
/* Pattern matching shared by domain, local part and address items     */
/* ------------------------------------------------------------------ */

static bool suffix_matches(const char *subject, const char *suffix, bool caseless)
{
    size_t sl = strlen(subject), xl = strlen(suffix);
    if (xl > sl)
        return false;
    return caseless ? str_ieq(subject + sl - xl, suffix) : strcmp(subject + sl - xl, suffix) == 0;
}

static enum match_result regex_item(struct expand_ctx *ctx, const char *pattern,
                                    const char *subject, bool caseless, const char **err)
{
    const char *rerr = NULL;
    switch (expand_regex_match(ctx, pattern, caseless, subject, &rerr)) {
    case REGEX_MATCH:
        return MATCH_YES;
    case REGEX_NO_MATCH:
        return MATCH_NO;
    case REGEX_LIMIT:
        *err = rerr;
        return MATCH_DEFER;
    default:
        return list_error(ctx, err, "%s", rerr);
    }
}

enum match_result list_match_pattern(struct expand_ctx *ctx, const char *pattern,
                                     const char *subject, bool caseless, const char **err)
{
    const char *type, *data;
    if (*pattern == '^')
        return regex_item(ctx, pattern, subject, caseless, err);
    if (lookup_item_split(ctx->arena, pattern, &type, &data))
        return list_lookup_item(ctx, type, data, subject, err);
    if (*pattern == '*') {
        if (!suffix_matches(subject, pattern + 1, caseless))
            return MATCH_NO;
        ctx->match[0] = subject;
        ctx->match[1] = arena_strndup(ctx->arena, subject, strlen(subject) - strlen(pattern + 1));
        return MATCH_YES;
    }
    bool same = caseless ? str_ieq(pattern, subject) : strcmp(pattern, subject) == 0;
    return same ? MATCH_YES : MATCH_NO;
}

static const char *primary_hostname(struct expand_ctx *ctx)
{
    const char *h = expand_builtin_var(ctx, "primary_hostname");
    return h ? h : "localhost";
}

static bool unsupported_special(const char *item)
{
    return strcmp(item, "@[]") == 0 || strncmp(item, "@mx_", 4) == 0;
}

static enum match_result domain_item(struct expand_ctx *ctx, const char *item, const char *domain,
                                     bool local_host_items, const char **err)
{
    if (local_host_items && strcmp(item, "@") == 0)
        return str_ieq(domain, primary_hostname(ctx)) ? MATCH_YES : MATCH_NO;
    if (local_host_items && unsupported_special(item))
        return list_error(ctx, err, "list item \"%s\" is not supported", item);
    return list_match_pattern(ctx, item, domain, true, err);
}

/* ------------------------------------------------------------------ */
/* Host items                                                          */
/* ------------------------------------------------------------------ */

/* "net-type;data", "netN-type;data", "type;data". */
static enum match_result host_lookup_item(struct expand_ctx *ctx, const char *type,
                                          const char *data, struct list_subject *s,
                                          const char **err)
{
    int bits = -1;
    bool by_ip = false;
    if (strncmp(type, "net", 3) == 0 && (type[3] == '-' || isdigit((unsigned char)type[3]))) {
        const char *p = type + 3;
        if (isdigit((unsigned char)*p)) {
            bits = 0;
            while (isdigit((unsigned char)*p) && bits <= 128)
                bits = bits * 10 + (*p++ - '0');
        }
        if (*p != '-' || bits > 128)
            return list_error(ctx, err, "bad \"net\" prefix in list item \"%s;%s\"", type, data);
        type = p + 1;
        by_ip = true;
    }
    bool query_style = false;
    if (!lookup_type_known(type, &query_style))
        return list_error(ctx, err, "unknown lookup type \"%s\" in host list", type);
    if (query_style)
        return list_lookup(ctx, type, NULL, data, err);
    bool iplsearch = strcmp(type, "iplsearch") == 0;
    if (!by_ip && !iplsearch) { /* keyed by host name, as in Exim */
        if (s->ip_only || !s->name || !*s->name)
            return MATCH_NO;
        return list_lookup(ctx, type, s->name, data, err);
    }
    struct ip_addr ip;
    if (!s->ip || !ip_parse(s->ip, &ip))
        return MATCH_NO;
    int full = ip.family == 4 ? 32 : 128;
    if (bits > full)
        return MATCH_NO;
    return list_lookup(ctx, type, ip_key_text(ctx->arena, &ip, bits, iplsearch), data, err);
}

static enum match_result host_name_item(struct expand_ctx *ctx, const char *item,
                                        struct list_subject *s, const char **err)
{
    if (s->ip_only || !s->name || !*s->name)
        return MATCH_NO;
    if (strcmp(item, "@") == 0)
        return str_ieq(s->name, primary_hostname(ctx)) ? MATCH_YES : MATCH_NO;
    if (*item == '^')
        return regex_item(ctx, item, s->name, true, err);
    if (*item == '*')
        return suffix_matches(s->name, item + 1, true) ? MATCH_YES : MATCH_NO;
    return str_ieq(item, s->name) ? MATCH_YES : MATCH_NO;
}

static enum match_result host_item(struct expand_ctx *ctx, const char *item, struct list_subject *s,
                                   const char **err)
{
    bool local = !s->ip || !*s->ip;
    const char *type, *data;
    if (!*item)
        return local ? MATCH_YES : MATCH_NO;
    if (strcmp(item, "*") == 0)
        return MATCH_YES;
    if (unsupported_special(item))
        return list_error(ctx, err,
                          "host list item \"%s\" (local interfaces / MX) is not "
                          "supported",
                          item);
    if (lookup_item_split(ctx->arena, item, &type, &data))
        return host_lookup_item(ctx, type, data, s, err);
    if (local)
        return MATCH_NO;
    struct ip_addr net, addr;
    int bits;
    if (ip_parse_cidr(item, &net, &bits)) {
        if (!ip_parse(s->ip, &addr))
            return MATCH_NO;
        return ip_in_network(&addr, &net, bits) ? MATCH_YES : MATCH_NO;
    }
    if (strchr(item, ':') || strchr(item, '/'))
        return MATCH_NO; /* an address form we do not recognise can never match */
    return host_name_item(ctx, item, s, err);
}

/* ------------------------------------------------------------------ */
/* Address items                                                       */
/* ------------------------------------------------------------------ */

/* "@@type;file": the domain's entry is a list of local part patterns, first match wins. */
static enum match_result address_split_lookup(struct expand_ctx *ctx, const char *item,
                                              const char *local, const char *domain,
                                              struct list_subject *s, const char **err)
{
    const char *type, *data, *found = NULL;
    bool query_style = false;
    if (!lookup_item_split(ctx->arena, item + 2, &type, &data))
        return list_error(ctx, err, "\"@@\" must be followed by a lookup in \"%s\"", item);
    if (!lookup_type_known(type, &query_style))
        return list_error(ctx, err, "unknown lookup type \"%s\" in list item \"%s\"", type, item);
    enum match_result found_rc =
        list_lookup_data(ctx, type, query_style ? NULL : domain, data, &found, err);
    if (found_rc != MATCH_YES)
        return found_rc;
    const char **items = NULL;
    int n = list_split(ctx->arena, found, &items);
    for (int i = 0; i < n; i++) {
        const char *pattern = items[i];
        bool negative = *pattern == '!';
        if (negative)
            for (pattern++; isspace((unsigned char)*pattern); pattern++)
                ;
        enum match_result r = list_match_pattern(ctx, pattern, local, !s->caseful, err);
        if (r == MATCH_YES)
            return negative ? MATCH_NO : MATCH_YES;
        if (r != MATCH_NO)
            return r;
    }
    return MATCH_NO;
}

/* "local@domain" where local may start with '*' and domain is any domain-list item. */
static enum match_result address_pair_item(struct expand_ctx *ctx, const char *item,
                                           const char *local, const char *domain,
                                           struct list_subject *s, int depth, const char **err)
{
    const char *pdomain = strrchr(item, '@');
    if (pdomain > item && pdomain[-1] == '@' &&
        (pdomain[1] == '\0' || unsupported_special(pdomain)))
        pdomain--; /* "x@@" and friends: the domain pattern is "@" (the local host) */
    size_t pllen = (size_t)(pdomain - item);
    bool caseless = !s->caseful;
    if (*item == '*') {
        char *suffix = arena_strndup(ctx->arena, item + 1, pllen - 1);
        if (!suffix_matches(local, suffix, caseless))
            return MATCH_NO;
    } else {
        char *want = arena_strndup(ctx->arena, item, pllen);
        if (caseless ? !str_ieq(want, local) : strcmp(want, local) != 0)
            return MATCH_NO;
    }
    const char *dpattern = pdomain + 1;
    if (*dpattern == '+') {
        const struct conf_named_list *named =
            config_find_list(ctx->config, CONF_LIST_DOMAIN, dpattern + 1);
        if (!named)
            return list_error(ctx, err, "unknown named domain list \"%s\"", dpattern);
        struct list_subject sub = {.kind = CONF_LIST_DOMAIN, .value = domain};
        return list_run(ctx, named->value, &sub, true, depth + 1, err);
    }
    return domain_item(ctx, dpattern, domain, true, err);
}

static enum match_result address_item(struct expand_ctx *ctx, const char *item,
                                      struct list_subject *s, int depth, const char **err)
{
    const char *address = s->value, *type, *data;
    if (*item == '^')
        return regex_item(ctx, item, address, !s->caseful, err);
    if (lookup_item_split(ctx->arena, item, &type, &data))
        return list_lookup_item(ctx, type, data, address, err);
    if (!*address)
        return *item ? MATCH_NO : MATCH_YES;
    const char *at = strrchr(address, '@');
    const char *local = at ? arena_strndup(ctx->arena, address, (size_t)(at - address)) : address;
    const char *domain = at ? at + 1 : "";
    if (item[0] == '@' && item[1] == '@')
        return address_split_lookup(ctx, item, local, domain, s, err);
    if (strchr(item, '@'))
        return address_pair_item(ctx, item, local, domain, s, depth, err);
    if (!*item)
        return MATCH_NO;
    return list_match_pattern(ctx, item, domain, true, err); /* a bare domain: "*@domain" */
}

/* ------------------------------------------------------------------ */
/* The list walk                                                       */
/* ------------------------------------------------------------------ */

static enum match_result item_match(struct expand_ctx *ctx, const char *item,
                                    struct list_subject *s, int depth, const char **err)
{
    switch (s->kind) {
    case CONF_LIST_HOST:
        return host_item(ctx, item, s, err);
    case CONF_LIST_DOMAIN:
        return domain_item(ctx, item, s->value, true, err);
    case CONF_LIST_LOCALPART:
        if (unsupported_special(item))
            return MATCH_NO;
        return list_match_pattern(ctx, item, s->value, !s->caseful, err);
    case CONF_LIST_ADDRESS:
    default:
        return address_item(ctx, item, s, depth, err);
    }
}

/* Items that change how the rest of the list is read rather than match anything. */
static bool item_is_directive(const char *item, struct list_subject *s)
{
    if (strcmp(item, "+caseful") == 0) {
        if (s->kind == CONF_LIST_ADDRESS || s->kind == CONF_LIST_LOCALPART)
            s->caseful = true;
        return true;
    }
    /* No host name or DNS lookups happen in lists, so these have nothing to change. */
    return s->kind == CONF_LIST_HOST &&
           (strcmp(item, "+include_unknown") == 0 || strcmp(item, "+ignore_unknown") == 0 ||
            strcmp(item, "+include_defer") == 0 || strcmp(item, "+ignore_defer") == 0);
}

/* Apply one (possibly negated) item to the walk. Returns DEFER/ERROR to abort. */
static enum match_result walk_item(struct expand_ctx *ctx, const char *item, bool negative,
                                   struct list_subject *s, int depth, bool in_file,
                                   struct list_walk *walk, const char **err);

static char *file_line_clean(char *line, enum conf_list_kind kind)
{
    for (char *c = line; *c; c++) {
        bool comment = *c == '#' && (kind == CONF_LIST_HOST || kind == CONF_LIST_DOMAIN ||
                                     c == line || isspace((unsigned char)c[-1]));
        if (comment) {
            *c = '\0';
            break;
        }
    }
    return str_trim(line);
}

FILE *expand_open_regular_file(struct arena *arena, const char *path, const char *purpose,
                               const char **err)
{
    /* The path may have been built from message data ($local_part, $domain): never let it
     * climb out of the directory the configuration names. */
    const char *why = NULL;
    if (!fs_path_check(path, &why)) {
        *err = arena_printf(arena, "refusing to open %s %s: %s", path, purpose, why);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *err = arena_printf(arena, "failed to open %s %s: %s", path, purpose, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *err = arena_printf(arena, "%s is not a regular file (%s)", path, purpose);
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        *err = arena_printf(arena, "failed to open %s %s: %s", path, purpose, strerror(errno));
    }
    return f;
}

/* "/file": each line is an item (no expansion, no further files). */
static enum match_result walk_file(struct expand_ctx *ctx, const char *path, bool negative,
                                   struct list_subject *s, int depth, struct list_walk *walk,
                                   const char **err)
{
    const char *oerr = NULL;
    FILE *f = expand_open_regular_file(ctx->arena, path, "as a list file", &oerr);
    if (!f)
        return list_error(ctx, err, "%s", oerr);
    char line[LIST_FILE_MAX_LINE];
    enum match_result r = MATCH_NO;
    int lines = 0;
    while (!walk->decided && fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n') && !feof(f)) {
            r = list_error(ctx, err, "line too long in list file %s", path);
            break;
        }
        if (++lines > LIST_FILE_MAX_LINES) {
            r = list_error(ctx, err, "too many lines in list file %s", path);
            break;
        }
        char *item = file_line_clean(line, s->kind);
        if (!*item)
            continue;
        bool line_negative = *item == '!';
        if (line_negative)
            for (item++; isspace((unsigned char)*item); item++)
                ;
        r = walk_item(ctx, item, negative != line_negative, s, depth, true, walk, err);
        if (r == MATCH_DEFER || r == MATCH_ERROR)
            break;
    }
    fclose(f);
    return r == MATCH_DEFER || r == MATCH_ERROR ? r : MATCH_NO;
}

static enum match_result walk_named(struct expand_ctx *ctx, const char *name,
                                    struct list_subject *s, int depth, const char **err)
{
    enum conf_list_kind kind = s->kind;
    const struct conf_named_list *named = config_find_list(ctx->config, kind, name);
    if (!named)
        return list_error(ctx, err, "unknown named list \"+%s\"", name);
    if (depth >= LIST_MAX_DEPTH)
        return list_error(ctx, err, "named lists nested too deeply at \"+%s\"", name);
    struct list_subject sub = *s;
    return list_run(ctx, named->value, &sub, true, depth + 1, err);
}

static enum match_result walk_item(struct expand_ctx *ctx, const char *item, bool negative,
                                   struct list_subject *s, int depth, bool in_file,
                                   struct list_walk *walk, const char **err)
{
    enum match_result r;
    if (*item == '/' && !in_file)
        return walk_file(ctx, item, negative, s, depth, walk, err);
    if (*item == '+' && item[1] && !in_file)
        r = walk_named(ctx, item + 1, s, depth, err);
    else
        r = item_match(ctx, item, s, depth, err);
    if (r == MATCH_YES) {
        walk->decided = true;
        walk->result = negative ? MATCH_NO : MATCH_YES;
    } else if (r == MATCH_NO) {
        walk->last_negative = negative;
    }
    return r;
}

static enum match_result list_walk_items(struct expand_ctx *ctx, const char **items, int n,
                                         struct list_subject *s, int depth, const char **err)
{
    struct list_walk walk = {.decided = false, .result = MATCH_NO, .last_negative = false};
    for (int i = 0; i < n && !walk.decided; i++) {
        const char *item = items[i];
        bool negative = false;
        while (*item == '!') {
            negative = !negative;
            for (item++; isspace((unsigned char)*item); item++)
                ;
        }
        if (item_is_directive(item, s))
            continue;
        enum match_result r = walk_item(ctx, item, negative, s, depth, false, &walk, err);
        if (r == MATCH_DEFER || r == MATCH_ERROR)
            return r;
    }
    if (walk.decided)
        return walk.result;
    return walk.last_negative ? MATCH_YES : MATCH_NO;
}

static enum match_result list_run(struct expand_ctx *ctx, const char *list, struct list_subject *s,
                                  bool expand, int depth, const char **err)
{
    char sep;
    const char *body = list_separator(list ? list : "", &sep);
    if (depth > LIST_MAX_DEPTH)
        return list_error(ctx, err, "named lists nested too deeply");
    if (expand) {
        const char *expanded = NULL, *xerr = NULL;
        switch (expand_string(ctx, body, &expanded, &xerr)) {
        case EXPAND_OK:
            body = expanded;
            break;
        case EXPAND_FORCED_FAIL:
            return MATCH_NO; /* Exim: as if the subject is not in the list */
        case EXPAND_DEFER:
            if (err)
                *err = arena_printf(ctx->arena, "list expansion deferred: %s", xerr);
            return MATCH_DEFER;
        default:
            return list_error(ctx, err, "failed to expand list \"%s\": %s", list, xerr);
        }
    }
    const char **items = NULL;
    int n = list_split_body(ctx->arena, body, sep, &items);
    return list_walk_items(ctx, items, n, s, depth, err);
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */
/* ------------------------------------------------------------------ */

enum match_result list_match_host(struct expand_ctx *ctx, const char *list, const char *ip,
                                  const char *name, const char **err)
{
    struct list_subject s = {.kind = CONF_LIST_HOST, .ip = ip, .name = name};
    return list_run(ctx, list, &s, true, 0, err);
}

enum match_result list_match_host_noexpand(struct expand_ctx *ctx, const char *list, const char *ip,
                                           const char *name, const char **err)
{
    struct list_subject s = {.kind = CONF_LIST_HOST, .ip = ip, .name = name, .ip_only = !name};
    return list_run(ctx, list, &s, false, 0, err);
}

enum match_result list_match_domain(struct expand_ctx *ctx, const char *list, const char *domain,
                                    const char **err)
{
    struct list_subject s = {.kind = CONF_LIST_DOMAIN, .value = domain ? domain : ""};
    return list_run(ctx, list, &s, true, 0, err);
}

enum match_result list_match_localpart(struct expand_ctx *ctx, const char *list,
                                       const char *local_part, const char **err)
{
    struct list_subject s = {.kind = CONF_LIST_LOCALPART, .value = local_part ? local_part : ""};
    return list_run(ctx, list, &s, true, 0, err);
}

enum match_result list_match_address(struct expand_ctx *ctx, const char *list, const char *address,
                                     const char **err)
{
    struct list_subject s = {.kind = CONF_LIST_ADDRESS, .value = address ? address : ""};
    return list_run(ctx, list, &s, true, 0, err);
}

enum match_result list_match_kind_noexpand(struct expand_ctx *ctx, enum conf_list_kind kind,
                                           const char *list, const char *subject, const char **err)
{
    struct list_subject s = {.kind = kind, .value = subject ? subject : ""};
    return list_run(ctx, list, &s, false, 0, err);
}

/* ------------------------------------------------------------------ */
/* Load-time check                                                     */
/* ------------------------------------------------------------------ */

/* Compile one "^regex" item (after any '!') the way the list walk will use it. */
static bool check_list_regex(const char *item, bool caseless, const struct expand_check *check,
                             struct arena *arena, const char **err)
{
    while (*item == '!' || isspace((unsigned char)*item))
        item++;
    if (*item != '^')
        return true;
    if (check->cfg)
        return expand_regex_precompile(check->cfg, item, caseless, err);
    struct expand_ctx ctx;
    struct expand_regex rx;
    expand_ctx_init(&ctx, arena, NULL, NULL, NULL);
    if (!expand_regex_get(&ctx, item, caseless, &rx, err))
        return false;
    expand_regex_put(&rx);
    return true;
}

bool expand_check_list(const char *list, enum conf_list_kind kind, const struct expand_check *check,
                       struct arena *arena, const char **err)
{
    static const struct expand_check syntax_only;
    if (!check)
        check = &syntax_only;
    if (!expand_check(list, check, arena, err))
        return false;
    if (!list || !expand_text_is_constant(list, strlen(list)))
        return true; /* its regexes exist only after expansion: compiled at use */
    struct expand_ctx ctx;
    const char *text = NULL;
    expand_ctx_init(&ctx, arena, NULL, NULL, NULL);
    if (expand_string(&ctx, list, &text, err) != EXPAND_OK)
        return false;
    const char **items = NULL;
    int n = list_split(arena, text, &items);
    bool caseless = true; /* "+caseful" turns it off for local parts and addresses */
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "+caseful") == 0 && kind != CONF_LIST_HOST && kind != CONF_LIST_DOMAIN)
            caseless = false;
        if (!check_list_regex(items[i], caseless, check, arena, err))
            return false;
    }
    return true;
}
