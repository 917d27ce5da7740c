/*
 * spool_envelope.c - the text format of a message's -H (envelope) file. Pure functions
 * over memory: no I/O, no globals; callable from any thread.
 *
 * Format (version 1). Every line is "<key> <value>\n" with exactly one space, in exactly
 * this order; the parser accepts nothing else:
 *
 *     postern-spool 1
 *     id 1xW3Jc-00060t-06
 *     sender <address>             (empty value for the null sender)
 *     received <unix seconds>
 *     size <bytes of -D>
 *     host_address <ip>            (empty for local submission)
 *     host_port <0..65535>
 *     host_name <name>
 *     helo <name>
 *     protocol <esmtp, ...>
 *     proxy_address <ip>
 *     interface_address <ip>
 *     interface_port <0..65535>
 *     prdr <0|1>
 *     recipients <N>
 *     rcpt <address>               (N lines)
 *     acl_vars <M>
 *     acl <name> <value>           (M lines; the name and value separated by one space)
 *     headers_at <offset>          (a pair for each group of header lines ACLs added,
 *     headers <lines>               0 to 4 pairs in order of offset: where in -D they go,
 *                                   and the CRLF-terminated lines, escaped; files written
 *                                   before placements have at most one pair, read alike)
 *     end
 *
 * Text values are escaped so no byte of them can break a line or a field: every byte
 * outside 0x21..0x7e, and '%', is written as %XX (upper-case hex); NUL is not allowed.
 * Numbers are plain decimal. The final "end" line makes the file self-validating: a torn
 * or truncated file is refused, never half-trusted (the committer also only ever renames
 * a fully synced file into place).
 */
#include "spool_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPOOL_FORMAT_MAGIC "postern-spool"
#define SPOOL_FORMAT_VERSION "1"
#define SPOOL_MAX_RECIPIENTS 1000000
#define SPOOL_MAX_ACL_VARS 100000

/* ---- writing ---- */

static void spool_put_escaped(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '%') {
            buf_append(out, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(out, esc, 3);
        }
    }
}

static void spool_put_text(struct buf *out, const char *key, const char *value)
{
    buf_append_str(out, key);
    buf_append(out, " ", 1);
    spool_put_escaped(out, value);
    buf_append(out, "\n", 1);
}

static void spool_put_number(struct buf *out, const char *key, int64_t value)
{
    buf_printf(out, "%s %lld\n", key, (long long)value);
}

void spool_envelope_format(struct buf *out, const struct spool_envelope *env, int64_t size)
{
    spool_put_text(out, SPOOL_FORMAT_MAGIC, SPOOL_FORMAT_VERSION);
    spool_put_text(out, "id", env->id);
    spool_put_text(out, "sender", env->sender);
    spool_put_number(out, "received", env->received_time);
    spool_put_number(out, "size", size);
    spool_put_text(out, "host_address", env->host_address);
    spool_put_number(out, "host_port", env->host_port);
    spool_put_text(out, "host_name", env->host_name);
    spool_put_text(out, "helo", env->helo_name);
    spool_put_text(out, "protocol", env->protocol);
    spool_put_text(out, "proxy_address", env->proxy_address);
    spool_put_text(out, "interface_address", env->interface_address);
    spool_put_number(out, "interface_port", env->interface_port);
    spool_put_number(out, "prdr", env->prdr ? 1 : 0);
    spool_put_number(out, "recipients", env->recipient_count);
    for (int i = 0; i < env->recipient_count; i++)
        spool_put_text(out, "rcpt", env->recipients[i].address);
    spool_put_number(out, "acl_vars", env->acl_var_count);
    for (int i = 0; i < env->acl_var_count; i++) {
        buf_append_str(out, "acl ");
        spool_put_escaped(out, env->acl_var_names[i]);
        buf_append(out, " ", 1);
        spool_put_escaped(out, env->acl_var_values[i]);
        buf_append(out, "\n", 1);
    }
    for (int i = 0; i < env->added_header_groups && i < SPOOL_HEADER_GROUPS; i++) {
        const struct spool_header_group *g = &env->added_headers[i];
        if (!g->text || !g->text[0])
            continue;
        spool_put_number(out, "headers_at", g->at);
        spool_put_text(out, "headers", g->text);
    }
    buf_append_str(out, "end\n");
}

/* ---- reading ---- */

struct spool_cursor {
    const char *p, *end;
    int line;
    struct arena *arena;
    char *err;
    size_t errlen;
};

static bool spool_fail(struct spool_cursor *c, const char *what)
{
    snprintf(c->err, c->errlen, "spool -H line %d: %s", c->line, what);
    return false;
}

/* Take the next line, which must start with "key "; the rest goes to value and vlen. */
static bool spool_take_line(struct spool_cursor *c, const char *key, const char **value,
                            size_t *vlen)
{
    c->line++;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    if (!nl)
        return spool_fail(c, "unterminated or missing line (torn file?)");
    size_t klen = strlen(key);
    size_t llen = (size_t)(nl - c->p);
    if (llen < klen + 1 || memcmp(c->p, key, klen) != 0 || c->p[klen] != ' ') {
        char what[96];
        snprintf(what, sizeof what, "expected \"%s\"", key);
        return spool_fail(c, what);
    }
    *value = c->p + klen + 1;
    *vlen = llen - klen - 1;
    c->p = nl + 1;
    return true;
}

static int spool_hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Undo spool_put_escaped() strictly into an arena string. */
static bool spool_unescape(struct spool_cursor *c, const char *s, size_t len, const char **out)
{
    char *dst = arena_alloc(c->arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%') {
            if (i + 2 >= len)
                return spool_fail(c, "bad %-escape");
            int hi = spool_hex_value(s[i + 1]);
            int lo = spool_hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return spool_fail(c, "bad %-escape");
            dst[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch > 0x20 && ch < 0x7f) {
            dst[n++] = (char)ch;
        } else {
            return spool_fail(c, "unescaped byte in value");
        }
    }
    dst[n] = '\0';
    *out = dst;
    return true;
}

static bool spool_take_text(struct spool_cursor *c, const char *key, const char **out)
{
    const char *v;
    size_t vlen;
    return spool_take_line(c, key, &v, &vlen) && spool_unescape(c, v, vlen, out);
}

static bool spool_take_number(struct spool_cursor *c, const char *key, int64_t min, int64_t max,
                              int64_t *out)
{
    const char *v;
    size_t vlen;
    if (!spool_take_line(c, key, &v, &vlen))
        return false;
    size_t i = (vlen > 0 && v[0] == '-') ? 1 : 0;
    if (vlen == i || vlen - i > 18)
        return spool_fail(c, "bad number");
    int64_t value = 0;
    for (; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return spool_fail(c, "bad number");
        value = value * 10 + (v[i] - '0');
    }
    if (v[0] == '-')
        value = -value;
    if (value < min || value > max)
        return spool_fail(c, "number out of range");
    *out = value;
    return true;
}

static bool spool_take_int(struct spool_cursor *c, const char *key, int64_t min, int64_t max,
                           int *out)
{
    int64_t v;
    if (!spool_take_number(c, key, min, max, &v))
        return false;
    *out = (int)v;
    return true;
}

static bool spool_parse_host(struct spool_cursor *c, struct spool_envelope *env)
{
    int64_t prdr;
    bool ok = spool_take_text(c, "host_address", &env->host_address) &&
              spool_take_int(c, "host_port", 0, 65535, &env->host_port) &&
              spool_take_text(c, "host_name", &env->host_name) &&
              spool_take_text(c, "helo", &env->helo_name) &&
              spool_take_text(c, "protocol", &env->protocol) &&
              spool_take_text(c, "proxy_address", &env->proxy_address) &&
              spool_take_text(c, "interface_address", &env->interface_address) &&
              spool_take_int(c, "interface_port", 0, 65535, &env->interface_port) &&
              spool_take_number(c, "prdr", 0, 1, &prdr);
    env->prdr = ok && prdr == 1;
    return ok;
}

static bool spool_parse_recipients(struct spool_cursor *c, struct spool_envelope *env)
{
    if (!spool_take_int(c, "recipients", 0, SPOOL_MAX_RECIPIENTS, &env->recipient_count))
        return false;
    /* Each rcpt line takes at least 6 bytes: refuse counts the file cannot hold before
     * allocating for them. */
    if ((size_t)env->recipient_count > (size_t)(c->end - c->p) / 6)
        return spool_fail(c, "recipient count larger than the file");
    env->recipients =
        arena_zalloc(c->arena, sizeof *env->recipients * (size_t)(env->recipient_count + 1));
    for (int i = 0; i < env->recipient_count; i++)
        if (!spool_take_text(c, "rcpt", &env->recipients[i].address))
            return false;
    return true;
}

static bool spool_parse_acl_vars(struct spool_cursor *c, struct spool_envelope *env)
{
    int n;
    if (!spool_take_int(c, "acl_vars", 0, SPOOL_MAX_ACL_VARS, &n))
        return false;
    if ((size_t)n > (size_t)(c->end - c->p) / 6)
        return spool_fail(c, "acl variable count larger than the file");
    env->acl_var_count = n;
    env->acl_var_names = arena_zalloc(c->arena, sizeof(char *) * (size_t)(n + 1));
    env->acl_var_values = arena_zalloc(c->arena, sizeof(char *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        const char *v;
        size_t vlen;
        if (!spool_take_line(c, "acl", &v, &vlen))
            return false;
        const char *space = memchr(v, ' ', vlen);
        if (!space || space == v)
            return spool_fail(c, "acl line needs \"name value\"");
        if (!spool_unescape(c, v, (size_t)(space - v), &env->acl_var_names[i]) ||
            !spool_unescape(c, space + 1, vlen - (size_t)(space - v) - 1, &env->acl_var_values[i]))
            return false;
    }
    return true;
}

/* The optional pairs of lines for ACL-added headers: offsets inside -D, in order, the
 * text not empty. */
static bool spool_parse_added_headers(struct spool_cursor *c, struct spool_envelope *env,
                                      int64_t size)
{
    int64_t from = 0;
    env->added_header_groups = 0;
    while ((size_t)(c->end - c->p) >= 11 && memcmp(c->p, "headers_at ", 11) == 0) {
        if (env->added_header_groups == SPOOL_HEADER_GROUPS)
            return spool_fail(c, "too many groups of added headers");
        struct spool_header_group *g = &env->added_headers[env->added_header_groups++];
        if (!spool_take_number(c, "headers_at", from, size, &g->at) ||
            !spool_take_text(c, "headers", &g->text))
            return false;
        if (!g->text[0])
            return spool_fail(c, "empty headers");
        from = g->at;
    }
    return true;
}

bool spool_envelope_parse(struct arena *arena, const char *text, size_t len,
                          struct spool_envelope *env, char *err, size_t errlen)
{
    struct spool_cursor c = {
        .p = text, .end = text + len, .line = 0, .arena = arena, .err = err, .errlen = errlen};
    memset(env, 0, sizeof *env);
    const char *magic, *id;
    int64_t size;
    if (!spool_take_text(&c, SPOOL_FORMAT_MAGIC, &magic))
        return false;
    if (strcmp(magic, SPOOL_FORMAT_VERSION) != 0)
        return spool_fail(&c, "unknown format version");
    if (!spool_take_text(&c, "id", &id))
        return false;
    if (!spool_id_valid(id))
        return spool_fail(&c, "bad message id");
    memcpy(env->id, id, SPOOL_ID_LEN + 1);
    if (!spool_take_text(&c, "sender", &env->sender) ||
        !spool_take_number(&c, "received", 0, INT64_C(1) << 40, &env->received_time) ||
        !spool_take_number(&c, "size", 0, INT64_C(1) << 50, &size) || !spool_parse_host(&c, env) ||
        !spool_parse_recipients(&c, env) || !spool_parse_acl_vars(&c, env) ||
        !spool_parse_added_headers(&c, env, size))
        return false;
    env->size = size;
    c.line++;
    if ((size_t)(c.end - c.p) != 4 || memcmp(c.p, "end\n", 4) != 0)
        return spool_fail(&c, "missing or misplaced \"end\" (torn file?)");
    return true;
}
