/*
 * expand.c - the string expansion engine: literal text, backslash escapes, \N...\N,
 * $variables and the ${item ...} forms (if, lookup, sg, tr, length, substr, extract).
 * Conditions live in expand_cond.c, ${op:...} operators in expand_ops.c, built-in
 * variables in expand_vars.c.
 *
 * Parsing and evaluation are one recursive-descent pass over the source text. Every
 * function takes a `skip` flag: when it is set the text is parsed and checked but nothing
 * is resolved, looked up or matched. That is how the branch not taken by ${if} is passed
 * over, and how expand_check() validates a string at config load: with run->check set,
 * skipped variable names are looked up in the registry table of the place the string is
 * used (include/postern/vars.h), and constant regular expressions are compiled into the
 * snapshot (regex.c). There is no second parser for the check.
 *
 * Owns no global state. Results and error strings are allocated in ctx->arena; the
 * intermediate struct buf of each level is freed before that level returns. Any thread may
 * call it with its own expand_ctx.
 */
#include "expand_internal.h"

#include "postern/lookup.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum expand_status expand_fail(struct expand_run *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    run->err = arena_vprintf(run->ctx->arena, fmt, ap);
    va_end(ap);
    return EXPAND_FAIL;
}

void expand_skip_space(const char **pp)
{
    while (isspace((unsigned char)**pp))
        (*pp)++;
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* ------------------------------------------------------------------ */
/* Variables                                                           */
/* ------------------------------------------------------------------ */

const char *expand_resolve_var(struct expand_ctx *ctx, const char *name)
{
    if (strcmp(name, "value") == 0)
        return ctx->value ? ctx->value : "";
    if (isdigit((unsigned char)name[0])) {
        if (strspn(name, "0123456789") != strlen(name))
            return NULL;
        if (strlen(name) == 1 && ctx->match[name[0] - '0'])
            return ctx->match[name[0] - '0'];
        return "";
    }
    if (ctx->var) {
        const char *v = ctx->var(ctx, name);
        if (v)
            return v;
    }
    return expand_builtin_var(ctx, name);
}

/* Read a variable name at *pp (digits only when it starts with a digit). */
static bool read_var_name(const char **pp, char *name, size_t size)
{
    const char *p = *pp;
    size_t n = 0;
    bool numeric = isdigit((unsigned char)*p);
    while (numeric ? isdigit((unsigned char)*p) : is_name_char(*p)) {
        if (n + 1 >= size)
            return false;
        name[n++] = *p++;
    }
    name[n] = '\0';
    *pp = p;
    return true;
}

static bool name_is_engine_var(const char *name)
{
    return strcmp(name, "value") == 0 || strspn(name, "0123456789") == strlen(name);
}

enum expand_status expand_check_var(struct expand_run *run, const char *name)
{
    const struct expand_check *check = run->check;
    if (!check || !check->vars || name_is_engine_var(name))
        return EXPAND_OK;
    const struct var_def *def = var_table_find(check->vars, name);
    if (!def)
        return expand_fail(run, "unknown variable name \"$%s\"%s%s", name,
                           check->where ? " in " : "", check->where ? check->where : "");
    if (check->lifetimes && !(check->lifetimes & VAR_LIFETIME_BIT(def->lifetime)))
        return expand_fail(run, "variable \"$%s\" (%s lifetime) is not available in %s", name,
                           var_lifetime_name(def->lifetime), check->where ? check->where : "here");
    return EXPAND_OK;
}

static enum expand_status append_var(struct expand_run *run, const char *name, struct buf *out)
{
    const char *v = expand_resolve_var(run->ctx, name);
    if (!v)
        return expand_fail(run, "unknown variable name \"%s\"", name);
    buf_append_str(out, v);
    return EXPAND_OK;
}

/* ------------------------------------------------------------------ */
/* Text and escapes                                                    */
/* ------------------------------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* p points at a backslash. Appends the escaped text (unless out is NULL), returns the
 * position after the escape. */
static const char *text_escape(const char *p, struct buf *out)
{
    p++;
    if (*p == 'N') {
        const char *end = strstr(p + 1, "\\N");
        size_t n = end ? (size_t)(end - (p + 1)) : strlen(p + 1);
        if (out)
            buf_append(out, p + 1, n);
        return end ? end + 2 : p + 1 + n;
    }
    if (*p == '\0') {
        if (out)
            buf_append(out, "\\", 1);
        return p;
    }
    int c = (unsigned char)*p++;
    if (c == 'n')
        c = '\n';
    else if (c == 'r')
        c = '\r';
    else if (c == 't')
        c = '\t';
    else if (c >= '0' && c <= '7') {
        c -= '0';
        for (int i = 0; i < 2 && *p >= '0' && *p <= '7'; i++)
            c = c * 8 + (*p++ - '0');
        c &= 0xff;
    } else if (c == 'x' && hex_value(*p) >= 0) {
        c = hex_value(*p++);
        if (hex_value(*p) >= 0)
            c = c * 16 + hex_value(*p++);
    }
    if (out && c != 0) { /* a NUL cannot live in a C string: dropped */
        char ch = (char)c;
        buf_append(out, &ch, 1);
    }
    return p;
}

static enum expand_status expand_brace(struct expand_run *run, const char **pp, bool skip,
                                       struct buf *out);

/* p points at '$'. */
static enum expand_status expand_dollar(struct expand_run *run, const char **pp, bool skip,
                                        struct buf *out)
{
    const char *p = *pp + 1;
    if (*p == '{')
        return expand_brace(run, pp, skip, out);
    if (!is_name_char(*p))
        return expand_fail(run, "\"$\" not followed by a letter, digit or \"{\"");
    char name[EXPAND_MAX_NAME];
    if (!read_var_name(&p, name, sizeof name))
        return expand_fail(run, "variable name too long near \"%.20s\"", *pp);
    *pp = p;
    return skip ? expand_check_var(run, name) : append_var(run, name, out);
}

enum expand_status expand_text(struct expand_run *run, const char **pp, bool until_brace, bool skip,
                               const char **out)
{
    struct buf b;
    buf_init(&b);
    const char *p = *pp;
    enum expand_status st = EXPAND_OK;
    for (;;) {
        size_t plain = strcspn(p, until_brace ? "\\$}" : "\\$");
        if (plain && !skip)
            buf_append(&b, p, plain);
        p += plain;
        if (*p == '\0') {
            if (until_brace)
                st = expand_fail(run, "missing \"}\" at end of string");
            break;
        }
        if (*p == '}') {
            p++;
            break;
        }
        if (*p == '\\')
            p = text_escape(p, skip ? NULL : &b);
        else if ((st = expand_dollar(run, &p, skip, &b)) != EXPAND_OK)
            break;
        if (b.len > EXPAND_MAX_OUTPUT) {
            st = expand_fail(run, "expansion result too long (over %d bytes)", EXPAND_MAX_OUTPUT);
            break;
        }
    }
    *pp = p;
    if (st == EXPAND_OK)
        *out = skip ? "" : arena_strndup(run->ctx->arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return st;
}

enum expand_status expand_arg(struct expand_run *run, const char **pp, bool skip, const char *item,
                              const char **out)
{
    expand_skip_space(pp);
    if (**pp != '{')
        return expand_fail(run, "missing \"{\" in \"%s\" item", item);
    (*pp)++;
    return expand_text(run, pp, true, skip, out);
}

bool expand_text_is_constant(const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        if (*s == '$')
            return false;
        if (*s == '\\' && s + 1 < end && s[1] == 'N') { /* \N...\N is literal */
            const char *close = s + 2;
            while (close + 1 < end && !(close[0] == '\\' && close[1] == 'N'))
                close++;
            s = close + 2;
            continue;
        }
        s += *s == '\\' ? 2 : 1;
    }
    return true;
}

/* The regular expression of a constant argument, compiled now: into the snapshot's set when
 * the check has one, else only to see that it compiles. */
static enum expand_status check_constant_regex(struct expand_run *run, const char *source,
                                               size_t len, const char *item)
{
    struct expand_run pure = {.ctx = run->ctx};
    const char *text = arena_strndup(run->ctx->arena, source, len), *pattern = NULL, *err = NULL;
    if (expand_text(&pure, &text, false, false, &pattern) != EXPAND_OK)
        return EXPAND_OK; /* cannot happen without '$'; the syntax check reports the rest */
    bool ok;
    if (run->check->cfg) {
        ok = expand_regex_precompile(run->check->cfg, pattern, false, &err);
    } else {
        struct expand_regex rx;
        ok = expand_regex_get(run->ctx, pattern, false, &rx, &err);
        if (ok)
            expand_regex_put(&rx);
    }
    return ok ? EXPAND_OK : expand_fail(run, "%s: %s", item, err);
}

enum expand_status expand_arg_regex(struct expand_run *run, const char **pp, bool skip,
                                    const char *item, const char **out)
{
    expand_skip_space(pp);
    const char *start = *pp + 1;
    enum expand_status st = expand_arg(run, pp, skip, item, out);
    if (st != EXPAND_OK || !run->check)
        return st;
    size_t len = (size_t)(*pp - 1 - start); /* *pp is past the closing '}' */
    if (!expand_text_is_constant(start, len))
        return EXPAND_OK; /* known only at run time: compiled at use */
    return check_constant_regex(run, start, len, item);
}

/* Optional white space then the '}' closing an item. */
static enum expand_status expect_close(struct expand_run *run, const char **pp, const char *item)
{
    expand_skip_space(pp);
    if (**pp != '}')
        return expand_fail(run, "missing \"}\" at end of \"%s\" item", item);
    (*pp)++;
    return EXPAND_OK;
}

/*
 * The "{yes}{no}" tail shared by ${if} and ${lookup}: both strings optional, "fail" in place
 * of {no} forces failure. With no strings the result is `yes_default` when `take_yes`.
 * Consumes the closing '}' of the item.
 */
static enum expand_status expand_yes_no(struct expand_run *run, const char **pp, bool skip,
                                        bool take_yes, const char *item, const char *yes_default,
                                        const char **out)
{
    const char *yes = "", *no = "";
    bool forced = false;
    enum expand_status st;
    expand_skip_space(pp);
    if (**pp == '}') {
        (*pp)++;
        *out = take_yes && !skip ? yes_default : "";
        return EXPAND_OK;
    }
    if ((st = expand_arg(run, pp, skip || !take_yes, item, &yes)) != EXPAND_OK)
        return st;
    expand_skip_space(pp);
    if (**pp == '{') {
        if ((st = expand_arg(run, pp, skip || take_yes, item, &no)) != EXPAND_OK)
            return st;
    } else if (strncmp(*pp, "fail", 4) == 0 && !is_name_char((*pp)[4])) {
        *pp += 4;
        forced = true;
    }
    if ((st = expect_close(run, pp, item)) != EXPAND_OK)
        return st;
    if (skip) {
        *out = "";
        return EXPAND_OK;
    }
    if (!take_yes && forced) {
        run->err = arena_printf(run->ctx->arena, "\"%s\" failed and \"fail\" requested", item);
        return EXPAND_FORCED_FAIL;
    }
    *out = take_yes ? yes : no;
    return EXPAND_OK;
}

/* ------------------------------------------------------------------ */
/* Items                                                               */
/* ------------------------------------------------------------------ */

typedef enum expand_status (*item_fn)(struct expand_run *run, const char **pp, bool skip,
                                      const char **out);

static enum expand_status item_if(struct expand_run *run, const char **pp, bool skip,
                                  const char **out)
{
    struct expand_ctx *ctx = run->ctx;
    const char *saved_match[10];
    const char *saved_value = ctx->value;
    memcpy(saved_match, ctx->match, sizeof saved_match);
    bool cond = false;
    enum expand_status st = expand_condition(run, pp, skip, &cond);
    if (st == EXPAND_OK)
        st = expand_yes_no(run, pp, skip, cond, "if", "true", out);
    memcpy(ctx->match, saved_match, sizeof saved_match);
    ctx->value = saved_value;
    return st;
}

/* Lookup type name: letters, digits, '-', '_', '*', '@' and ",options". */
static bool read_lookup_type(const char **pp, char *type, size_t size)
{
    size_t n = 0;
    const char *p = *pp;
    while (*p && !isspace((unsigned char)*p) && *p != '{' && *p != '}') {
        if (n + 1 >= size)
            return false;
        type[n++] = *p++;
    }
    type[n] = '\0';
    *pp = p;
    return n > 0;
}

static enum expand_status run_lookup(struct expand_run *run, const char *type, const char *key,
                                     const char *source, const char **data, bool *found)
{
    const char *err = NULL;
    *found = false;
    switch (lookup_run(run->ctx, type, key, source, data, &err)) {
    case LOOKUP_FOUND:
        *found = true;
        return EXPAND_OK;
    case LOOKUP_NOT_FOUND:
        return EXPAND_OK;
    case LOOKUP_DEFER:
        run->err = arena_printf(run->ctx->arena, "%s lookup deferred: %s", type,
                                err ? err : "temporary failure");
        return EXPAND_DEFER;
    case LOOKUP_ERROR:
    default:
        return expand_fail(run, "%s lookup failed: %s", type, err ? err : "error");
    }
}

static enum expand_status item_lookup(struct expand_run *run, const char **pp, bool skip,
                                      const char **out)
{
    const char *key = NULL, *source = NULL, *data = NULL;
    char type[EXPAND_MAX_NAME];
    bool query_style = false, found = false;
    enum expand_status st;
    expand_skip_space(pp);
    if (**pp == '{' && (st = expand_arg(run, pp, skip, "lookup", &key)) != EXPAND_OK)
        return st;
    expand_skip_space(pp);
    if (!read_lookup_type(pp, type, sizeof type))
        return expand_fail(run, "missing or bad lookup type in \"lookup\" item");
    if (!lookup_type_known(type, &query_style))
        return expand_fail(run, "unknown lookup type \"%s\"", type);
    if (query_style && key)
        return expand_fail(run, "a single key was given for query-style lookup \"%s\"", type);
    if (!query_style && !key)
        return expand_fail(run, "missing {key} for single-key lookup \"%s\"", type);
    if ((st = expand_arg(run, pp, skip, "lookup", &source)) != EXPAND_OK)
        return st;
    if (!skip && (st = run_lookup(run, type, key, source, &data, &found)) != EXPAND_OK)
        return st;
    const char *saved_value = run->ctx->value;
    if (found)
        run->ctx->value = data;
    st = expand_yes_no(run, pp, skip, found, "lookup", found ? data : "", out);
    run->ctx->value = saved_value;
    return st;
}

/* Expand `replacement` with $0..$9 set from one match of `re` at `subject`. */
static enum expand_status sg_replace(struct expand_run *run, const char *replacement,
                                     struct buf *out)
{
    struct expand_run sub = {.ctx = run->ctx};
    const char *p = replacement, *text = NULL;
    enum expand_status st = expand_text(&sub, &p, false, false, &text);
    if (st != EXPAND_OK) {
        run->err = sub.err;
        return st;
    }
    buf_append_str(out, text);
    return EXPAND_OK;
}

/* A regex failure as an expansion status: a limit hit defers, a bad pattern fails. */
enum expand_status expand_regex_status(struct expand_run *run, enum regex_result r,
                                       const char *item, const char *err)
{
    if (r == REGEX_LIMIT) {
        run->err = arena_printf(run->ctx->arena, "%s: %s", item, err);
        return EXPAND_DEFER;
    }
    return expand_fail(run, "%s: %s", item, err);
}

/* Replace every match of rx in subject; $0..$9 are set while each replacement expands. */
static enum expand_status sg_loop(struct expand_run *run, const struct expand_regex *rx,
                                  const char *subject, const char *replacement, struct buf *b)
{
    struct expand_ctx *ctx = run->ctx;
    size_t at = 0, len = strlen(subject), m[20];
    const char *err = NULL;
    enum expand_status st = EXPAND_OK;
    while (st == EXPAND_OK && at <= len) {
        enum regex_result r = expand_regex_exec(ctx, rx, subject, at, m, &err);
        if (r == REGEX_NO_MATCH)
            break;
        if (r != REGEX_MATCH)
            return expand_regex_status(run, r, "sg", err);
        buf_append(b, subject + at, m[0] - at);
        expand_regex_set_groups(ctx, subject, m);
        st = sg_replace(run, replacement, b);
        at = m[1];
        if (m[1] == m[0]) { /* empty match: copy one character and move on */
            if (at == len)
                return st;
            buf_append(b, subject + at, 1);
            at++;
        }
        if (b->len > EXPAND_MAX_OUTPUT)
            st = expand_fail(run, "sg: result too long");
    }
    if (st == EXPAND_OK && at < len)
        buf_append_str(b, subject + at);
    return st;
}

static enum expand_status sg_apply(struct expand_run *run, const char *subject, const char *regex,
                                   const char *replacement, const char **out)
{
    struct expand_regex rx;
    const char *err = NULL;
    struct expand_ctx *ctx = run->ctx;
    if (!expand_regex_get(ctx, regex, false, &rx, &err))
        return expand_fail(run, "sg: %s", err);
    const char *saved[10];
    memcpy(saved, ctx->match, sizeof saved);
    struct buf b;
    buf_init(&b);
    enum expand_status st = sg_loop(run, &rx, subject, replacement, &b);
    if (st == EXPAND_OK)
        *out = arena_strndup(ctx->arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    memcpy(ctx->match, saved, sizeof saved);
    expand_regex_put(&rx);
    return st;
}

static enum expand_status item_sg(struct expand_run *run, const char **pp, bool skip,
                                  const char **out)
{
    const char *subject, *regex, *replacement;
    enum expand_status st;
    if ((st = expand_arg(run, pp, skip, "sg", &subject)) != EXPAND_OK ||
        (st = expand_arg_regex(run, pp, skip, "sg", &regex)) != EXPAND_OK ||
        (st = expand_arg(run, pp, skip, "sg", &replacement)) != EXPAND_OK ||
        (st = expect_close(run, pp, "sg")) != EXPAND_OK)
        return st;
    if (skip) {
        *out = "";
        return EXPAND_OK;
    }
    return sg_apply(run, subject, regex, replacement, out);
}

static enum expand_status item_tr(struct expand_run *run, const char **pp, bool skip,
                                  const char **out)
{
    const char *subject, *from, *to;
    enum expand_status st;
    if ((st = expand_arg(run, pp, skip, "tr", &subject)) != EXPAND_OK ||
        (st = expand_arg(run, pp, skip, "tr", &from)) != EXPAND_OK ||
        (st = expand_arg(run, pp, skip, "tr", &to)) != EXPAND_OK ||
        (st = expect_close(run, pp, "tr")) != EXPAND_OK)
        return st;
    if (skip) {
        *out = "";
        return EXPAND_OK;
    }
    char *r = arena_strdup(run->ctx->arena, subject);
    size_t to_len = strlen(to);
    for (char *c = r; *c && to_len; c++) {
        const char *hit = NULL;
        for (const char *f = from; *f; f++) /* the last occurrence wins, as in Exim */
            if (*f == *c)
                hit = f;
        if (hit) {
            size_t i = (size_t)(hit - from);
            *c = to[i < to_len ? i : to_len - 1];
        }
    }
    *out = r;
    return EXPAND_OK;
}

/* Parse a (possibly negative) decimal integer argument of length/substr/extract. */
static enum expand_status parse_int_arg(struct expand_run *run, const char *text, const char *item,
                                        long *value)
{
    char *end;
    while (isspace((unsigned char)*text))
        text++;
    long v = strtol(text, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (end == text || *end || v > 1000000000L || v < -1000000000L)
        return expand_fail(run, "\"%s\" is not a number (in \"%s\" item)", text, item);
    *value = v;
    return EXPAND_OK;
}

static enum expand_status item_length(struct expand_run *run, const char **pp, bool skip,
                                      const char **out)
{
    const char *num, *subject;
    long n = 0;
    enum expand_status st;
    if ((st = expand_arg(run, pp, skip, "length", &num)) != EXPAND_OK ||
        (st = expand_arg(run, pp, skip, "length", &subject)) != EXPAND_OK ||
        (st = expect_close(run, pp, "length")) != EXPAND_OK)
        return st;
    *out = "";
    if (skip)
        return EXPAND_OK;
    if ((st = parse_int_arg(run, num, "length", &n)) != EXPAND_OK)
        return st;
    if (n < 0)
        return expand_fail(run, "\"length\" needs a non-negative number");
    *out = expand_substring(run->ctx->arena, subject, 0, n, true);
    return EXPAND_OK;
}

static enum expand_status item_substr(struct expand_run *run, const char **pp, bool skip,
                                      const char **out)
{
    const char *start, *len, *subject;
    long s = 0, l = 0;
    enum expand_status st;
    if ((st = expand_arg(run, pp, skip, "substr", &start)) != EXPAND_OK ||
        (st = expand_arg(run, pp, skip, "substr", &len)) != EXPAND_OK ||
        (st = expand_arg(run, pp, skip, "substr", &subject)) != EXPAND_OK ||
        (st = expect_close(run, pp, "substr")) != EXPAND_OK)
        return st;
    *out = "";
    if (skip)
        return EXPAND_OK;
    if ((st = parse_int_arg(run, start, "substr", &s)) != EXPAND_OK ||
        (st = parse_int_arg(run, len, "substr", &l)) != EXPAND_OK)
        return st;
    *out = expand_substring(run->ctx->arena, subject, s, l, true);
    return EXPAND_OK;
}

/* ${extract{key}{string}...}: "key=value" pairs separated by white space; values may be
 * double-quoted. Returns NULL when the key is absent. */
static const char *extract_named(struct arena *arena, const char *key, const char *s)
{
    size_t klen = strlen(key);
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        const char *name = s;
        while (*s && *s != '=' && !isspace((unsigned char)*s))
            s++;
        size_t nlen = (size_t)(s - name);
        while (isspace((unsigned char)*s))
            s++;
        const char *value = "";
        size_t vlen = 0;
        if (*s == '=') {
            s++;
            while (isspace((unsigned char)*s))
                s++;
            if (*s == '"') {
                value = ++s;
                while (*s && *s != '"')
                    s += (*s == '\\' && s[1]) ? 2 : 1;
                vlen = (size_t)(s - value);
                if (*s)
                    s++;
            } else {
                value = s;
                while (*s && !isspace((unsigned char)*s))
                    s++;
                vlen = (size_t)(s - value);
            }
        }
        if (nlen == klen && nlen && str_nieq(name, key, klen))
            return arena_strndup(arena, value, vlen);
    }
    return NULL;
}

/* ${extract{n}{separators}{string}...}: field n (1-based; negative from the end; 0 = all). */
static const char *extract_numbered(struct arena *arena, long n, const char *seps, const char *s)
{
    if (n == 0)
        return s;
    long count = 1;
    for (const char *c = s; *c; c++)
        if (strchr(seps, *c))
            count++;
    if (n < 0)
        n += count + 1;
    if (n <= 0 || n > count)
        return NULL;
    const char *start = s;
    for (long i = 1; i < n; i++)
        start += strcspn(start, seps) + 1;
    return arena_strndup(arena, start, strcspn(start, seps));
}

static bool looks_numeric(const char *s)
{
    if (*s == '-')
        s++;
    return *s && strspn(s, "0123456789") == strlen(s);
}

static enum expand_status item_extract(struct expand_run *run, const char **pp, bool skip,
                                       const char **out)
{
    const char *key, *arg2, *arg3 = NULL;
    enum expand_status st;
    if ((st = expand_arg(run, pp, skip, "extract", &key)) != EXPAND_OK ||
        (st = expand_arg(run, pp, skip, "extract", &arg2)) != EXPAND_OK)
        return st;
    /* The numbered form takes a third argument. When only checking syntax the first
     * argument is unknown, so a third brace group is accepted either way (the forms
     * then differ only in how many of the remaining groups are yes/no strings). */
    expand_skip_space(pp);
    bool numeric = skip ? **pp == '{' : looks_numeric(key);
    if (numeric && (st = expand_arg(run, pp, skip, "extract", &arg3)) != EXPAND_OK)
        return st;
    const char *data = NULL;
    if (!skip) {
        if (numeric) {
            long n = 0;
            if ((st = parse_int_arg(run, key, "extract", &n)) != EXPAND_OK)
                return st;
            data = extract_numbered(run->ctx->arena, n, arg2, arg3);
        } else {
            data = extract_named(run->ctx->arena, key, arg2);
        }
    }
    const char *saved = run->ctx->value;
    if (data)
        run->ctx->value = data;
    st = expand_yes_no(run, pp, skip, data != NULL, "extract", data ? data : "", out);
    run->ctx->value = saved;
    return st;
}

static const struct {
    const char *name;
    item_fn fn;
} expand_items[] = {
    {"if", item_if},         {"lookup", item_lookup}, {"sg", item_sg},           {"tr", item_tr},
    {"length", item_length}, {"substr", item_substr}, {"extract", item_extract},
};

static enum expand_status expand_operator_item(struct expand_run *run, const char **pp,
                                               const char *name, bool skip, struct buf *out)
{
    if (!expand_operator_known(name))
        return expand_fail(run, "unknown expansion operator \"%s\"", name);
    const char *arg = NULL, *result = NULL;
    enum expand_status st = expand_text(run, pp, true, skip, &arg);
    if (st != EXPAND_OK || skip)
        return st;
    if ((st = expand_operator(run, name, arg, &result)) == EXPAND_OK)
        buf_append_str(out, result);
    return st;
}

static enum expand_status expand_named(struct expand_run *run, const char **pp, const char *name,
                                       bool skip, struct buf *out)
{
    const char *p = *pp;
    enum expand_status st;
    if (*p == '}') {
        *pp = p + 1;
        return skip ? expand_check_var(run, name) : append_var(run, name, out);
    }
    if (*p == ':') {
        *pp = p + 1;
        return expand_operator_item(run, pp, name, skip, out);
    }
    for (size_t i = 0; i < sizeof expand_items / sizeof expand_items[0]; i++) {
        if (strcmp(name, expand_items[i].name) != 0)
            continue;
        const char *result = NULL;
        if ((st = expand_items[i].fn(run, pp, skip, &result)) == EXPAND_OK && !skip)
            buf_append_str(out, result);
        return st;
    }
    if (*p == '{' || isspace((unsigned char)*p))
        return expand_fail(run, "unknown expansion item \"%s\"", name);
    if (*p == '\0')
        return expand_fail(run, "missing \"}\" after \"${%s\"", name);
    return expand_fail(run, "unexpected character \"%c\" after \"${%s\"", *p, name);
}

/* p points at "${". */
static enum expand_status expand_brace(struct expand_run *run, const char **pp, bool skip,
                                       struct buf *out)
{
    struct expand_ctx *ctx = run->ctx;
    const char *p = *pp + 2;
    char name[EXPAND_MAX_NAME];
    size_t n = 0;
    bool numeric = isdigit((unsigned char)*p);
    while (numeric ? isdigit((unsigned char)*p) : (is_name_char(*p) || (*p == '-' && n))) {
        if (n + 1 >= sizeof name)
            return expand_fail(run, "name too long after \"${\"");
        name[n++] = *p++;
    }
    name[n] = '\0';
    if (n == 0)
        return expand_fail(run, "missing variable or item name after \"${\"");
    if (++ctx->depth > EXPAND_MAX_DEPTH) {
        ctx->depth--;
        return expand_fail(run, "expansion nested too deeply (more than %d levels)",
                           EXPAND_MAX_DEPTH);
    }
    enum expand_status st = expand_named(run, &p, name, skip, out);
    ctx->depth--;
    *pp = p;
    return st;
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */
/* ------------------------------------------------------------------ */

void expand_ctx_init(struct expand_ctx *ctx, struct arena *arena, const struct config *config,
                     expand_var_fn var, void *user)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->arena = arena;
    ctx->config = config;
    ctx->var = var;
    ctx->user = user;
}

static enum expand_status expand_top(struct expand_ctx *ctx, const char *in,
                                     const struct expand_check *check, bool skip, const char **out,
                                     const char **err)
{
    struct expand_run run = {.ctx = ctx, .check = check};
    const char *result = "";
    if (!in)
        in = "";
    if (strlen(in) > EXPAND_MAX_INPUT) {
        if (err)
            *err = arena_printf(ctx->arena, "expansion string too long (over %d bytes)",
                                EXPAND_MAX_INPUT);
        return EXPAND_FAIL;
    }
    if (ctx->depth > EXPAND_MAX_DEPTH) {
        if (err)
            *err = "expansion nested too deeply (lookups expanding keys)";
        return EXPAND_FAIL;
    }
    const char *p = in;
    enum expand_status st = expand_text(&run, &p, false, skip, &result);
    if (st == EXPAND_OK) {
        if (out)
            *out = result;
    } else if (err) {
        *err = run.err ? run.err : "expansion failed";
    }
    return st;
}

enum expand_status expand_string(struct expand_ctx *ctx, const char *in, const char **out,
                                 const char **err)
{
    return expand_top(ctx, in, NULL, false, out, err);
}

bool expand_check(const char *in, const struct expand_check *check, struct arena *arena,
                  const char **err)
{
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, arena, check ? check->cfg : NULL, NULL, NULL);
    static const struct expand_check syntax_only;
    return expand_top(&ctx, in, check ? check : &syntax_only, true, NULL, err) == EXPAND_OK;
}

bool expand_check_syntax(const char *in, struct arena *arena, const char **err)
{
    return expand_check(in, NULL, arena, err);
}

enum expand_status expand_bool(struct expand_ctx *ctx, const char *in, bool *result,
                               const char **err)
{
    const char *s = NULL;
    enum expand_status st = expand_string(ctx, in, &s, err);
    if (st != EXPAND_OK)
        return st;
    char *v = str_trim(arena_strdup(ctx->arena, s));
    if (!*v || strcmp(v, "0") == 0 || str_ieq(v, "no") || str_ieq(v, "false")) {
        *result = false;
        return EXPAND_OK;
    }
    if (strcmp(v, "1") == 0 || str_ieq(v, "yes") || str_ieq(v, "true")) {
        *result = true;
        return EXPAND_OK;
    }
    if (err)
        *err =
            arena_printf(ctx->arena, "\"%s\" is not a valid boolean (expansion of \"%s\")", v, in);
    return EXPAND_FAIL;
}
