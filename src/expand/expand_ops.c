/*
 * expand_ops.c - the ${operator:string} forms: case (lc, uc), lengths and substrings
 * (length_N, substr_S_L, strlen), quoting (quote, quote_pgsql, quote_mysql, quote_redis,
 * rxquote, escape, hexquote), addresses (address, local_part, domain), encodings and
 * digests (str2b64 / base64, base64d, md5, sha1, sha256), IP helpers (mask, mask_n,
 * reverse_ip), listcount and integer arithmetic (eval, eval10).
 *
 * The argument is already expanded; each operator is a pure function of it. Results and
 * errors are allocated in ctx->arena. Any thread may call these.
 */
#include "expand_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

typedef enum expand_status (*op_fn)(struct expand_run *run, const char *arg, const char **out);

/* ---- simple string transformations ---- */

static enum expand_status op_lc(struct expand_run *run, const char *arg, const char **out)
{
    char *r = arena_strdup(run->ctx->arena, arg);
    str_lower(r);
    *out = r;
    return EXPAND_OK;
}

static enum expand_status op_uc(struct expand_run *run, const char *arg, const char **out)
{
    char *r = arena_strdup(run->ctx->arena, arg);
    str_upper(r);
    *out = r;
    return EXPAND_OK;
}

static enum expand_status op_strlen(struct expand_run *run, const char *arg, const char **out)
{
    *out = arena_printf(run->ctx->arena, "%zu", strlen(arg));
    return EXPAND_OK;
}

/* Escape characters from `special` with a backslash; control characters as letters. */
static char *backslash_quote(struct arena *arena, const char *s, const char *special,
                             bool double_quotes)
{
    struct buf b;
    buf_init(&b);
    for (; *s; s++) {
        char c = *s;
        if (double_quotes && c == '\'') {
            buf_append(&b, "''", 2);
            continue;
        }
        if (!strchr(special, c)) {
            buf_append(&b, &c, 1);
            continue;
        }
        char esc[2] = {'\\', c};
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\t')
            esc[1] = 't';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\b')
            esc[1] = 'b';
        buf_append(&b, esc, 2);
    }
    char *r = arena_strndup(arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return r;
}

static enum expand_status op_quote_pgsql(struct expand_run *run, const char *arg, const char **out)
{
    *out = backslash_quote(run->ctx->arena, arg, "\n\t\r\b\"\\", true);
    return EXPAND_OK;
}

static enum expand_status op_quote_mysql(struct expand_run *run, const char *arg, const char **out)
{
    *out = backslash_quote(run->ctx->arena, arg, "\n\t\r\b'\"\\", false);
    return EXPAND_OK;
}

static enum expand_status op_quote_redis(struct expand_run *run, const char *arg, const char **out)
{
    struct buf b;
    buf_init(&b);
    for (const char *s = arg; *s; s++) {
        if (isspace((unsigned char)*s) || *s == '\\')
            buf_append(&b, "\\", 1);
        buf_append(&b, s, 1);
    }
    *out = arena_strndup(run->ctx->arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return EXPAND_OK;
}

static enum expand_status op_quote(struct expand_run *run, const char *arg, const char **out)
{
    bool plain = *arg != '\0';
    for (const char *s = arg; *s && plain; s++)
        plain = isalnum((unsigned char)*s) || *s == '_' || *s == '.' || *s == '-';
    if (plain) {
        *out = arg;
        return EXPAND_OK;
    }
    struct buf b;
    buf_init(&b);
    buf_append(&b, "\"", 1);
    for (const char *s = arg; *s; s++) {
        if (*s == '\n')
            buf_append(&b, "\\n", 2);
        else if (*s == '\r')
            buf_append(&b, "\\r", 2);
        else {
            if (*s == '"' || *s == '\\')
                buf_append(&b, "\\", 1);
            buf_append(&b, s, 1);
        }
    }
    buf_append(&b, "\"", 1);
    *out = arena_strndup(run->ctx->arena, b.data, b.len);
    buf_free(&b);
    return EXPAND_OK;
}

static enum expand_status op_rxquote(struct expand_run *run, const char *arg, const char **out)
{
    struct buf b;
    buf_init(&b);
    for (const char *s = arg; *s; s++) {
        if (!isalnum((unsigned char)*s))
            buf_append(&b, "\\", 1);
        buf_append(&b, s, 1);
    }
    *out = arena_strndup(run->ctx->arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return EXPAND_OK;
}

/* escape: non-printing characters as \n, \t, \r or \ooo; hexquote: as \xHH. */
static char *escape_nonprinting(struct arena *arena, const char *s, bool hex)
{
    struct buf b;
    buf_init(&b);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f)
            buf_append(&b, s, 1);
        else if (hex)
            buf_printf(&b, "\\x%02x", c);
        else if (c == '\n')
            buf_append(&b, "\\n", 2);
        else if (c == '\t')
            buf_append(&b, "\\t", 2);
        else if (c == '\r')
            buf_append(&b, "\\r", 2);
        else
            buf_printf(&b, "\\%03o", c);
    }
    char *r = arena_strndup(arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return r;
}

static enum expand_status op_escape(struct expand_run *run, const char *arg, const char **out)
{
    *out = escape_nonprinting(run->ctx->arena, arg, false);
    return EXPAND_OK;
}

static enum expand_status op_hexquote(struct expand_run *run, const char *arg, const char **out)
{
    *out = escape_nonprinting(run->ctx->arena, arg, true);
    return EXPAND_OK;
}

/* ---- addresses ---- */

/* The effective address of "Name <a@b>" or "a@b (comment)"; "" if none can be found. */
static const char *address_extract(struct arena *arena, const char *s)
{
    const char *lt = strrchr(s, '<');
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt)
            return "";
        return str_trim(arena_strndup(arena, lt + 1, (size_t)(gt - lt - 1)));
    }
    char *copy = arena_strdup(arena, s);
    char *paren = strchr(copy, '(');
    if (paren)
        *paren = '\0';
    char *r = str_trim(copy);
    return strpbrk(r, " \t\"<>,;") ? "" : r;
}

static enum expand_status op_address(struct expand_run *run, const char *arg, const char **out)
{
    *out = address_extract(run->ctx->arena, arg);
    return EXPAND_OK;
}

static enum expand_status op_local_part(struct expand_run *run, const char *arg, const char **out)
{
    const char *a = address_extract(run->ctx->arena, arg);
    const char *at = strrchr(a, '@');
    *out = at ? arena_strndup(run->ctx->arena, a, (size_t)(at - a)) : a;
    return EXPAND_OK;
}

static enum expand_status op_domain(struct expand_run *run, const char *arg, const char **out)
{
    const char *a = address_extract(run->ctx->arena, arg);
    const char *at = strrchr(a, '@');
    *out = at ? at + 1 : "";
    return EXPAND_OK;
}

/* ---- encodings and digests ---- */

static enum expand_status op_base64(struct expand_run *run, const char *arg, const char **out)
{
    size_t n = strlen(arg);
    unsigned char *r = arena_alloc(run->ctx->arena, 4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock(r, (const unsigned char *)arg, (int)n);
    *out = (const char *)r;
    return EXPAND_OK;
}

static enum expand_status op_base64d(struct expand_run *run, const char *arg, const char **out)
{
    size_t n = strlen(arg);
    if (n % 4 != 0)
        return expand_fail(run, "base64d: invalid base64 string");
    unsigned char *r = arena_alloc(run->ctx->arena, 3 * (n / 4) + 1);
    int len = EVP_DecodeBlock(r, (const unsigned char *)arg, (int)n);
    if (len < 0)
        return expand_fail(run, "base64d: invalid base64 string");
    /* EVP_DecodeBlock counts padding bytes as data: drop them. */
    for (size_t i = n; i > 0 && arg[i - 1] == '='; i--)
        len--;
    r[len < 0 ? 0 : len] = '\0';
    if (memchr(r, '\0', (size_t)(len < 0 ? 0 : len)))
        return expand_fail(run, "base64d: decoded data contains a NUL byte");
    *out = (const char *)r;
    return EXPAND_OK;
}

static enum expand_status digest_hex(struct expand_run *run, const EVP_MD *md, const char *arg,
                                     const char **out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(arg, strlen(arg), digest, &len, md, NULL))
        return expand_fail(run, "digest computation failed");
    char *r = arena_alloc(run->ctx->arena, 2 * len + 1);
    for (unsigned int i = 0; i < len; i++)
        snprintf(r + 2 * i, 3, "%02x", digest[i]);
    r[2 * len] = '\0';
    *out = r;
    return EXPAND_OK;
}

static enum expand_status op_md5(struct expand_run *run, const char *arg, const char **out)
{
    return digest_hex(run, EVP_md5(), arg, out);
}

static enum expand_status op_sha1(struct expand_run *run, const char *arg, const char **out)
{
    return digest_hex(run, EVP_sha1(), arg, out);
}

static enum expand_status op_sha256(struct expand_run *run, const char *arg, const char **out)
{
    return digest_hex(run, EVP_sha256(), arg, out);
}

/* ---- IP helpers ---- */

static enum expand_status mask_common(struct expand_run *run, const char *arg, bool normal,
                                      const char **out)
{
    struct ip_addr ip;
    int bits;
    if (!strchr(arg, '/') || !ip_parse_cidr(arg, &ip, &bits))
        return expand_fail(run, "\"%s\" is not an IP address with a mask (in \"mask\")", arg);
    int full = ip.family == 4 ? 32 : 128;
    for (int i = bits; i < full; i++)
        ip.bytes[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    if (normal && ip.family == 6) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, ip.bytes, text, sizeof text);
        *out = arena_printf(run->ctx->arena, "%s/%d", text, bits);
    } else {
        *out = ip_key_text(run->ctx->arena, &ip, bits, false);
    }
    return EXPAND_OK;
}

static enum expand_status op_mask(struct expand_run *run, const char *arg, const char **out)
{
    return mask_common(run, arg, false, out);
}

static enum expand_status op_mask_n(struct expand_run *run, const char *arg, const char **out)
{
    return mask_common(run, arg, true, out);
}

static enum expand_status op_reverse_ip(struct expand_run *run, const char *arg, const char **out)
{
    struct ip_addr ip;
    if (!ip_parse(arg, &ip))
        return expand_fail(run, "\"%s\" is not an IP address (in \"reverse_ip\")", arg);
    struct buf b;
    buf_init(&b);
    if (ip.family == 4) {
        buf_printf(&b, "%u.%u.%u.%u", ip.bytes[3], ip.bytes[2], ip.bytes[1], ip.bytes[0]);
    } else {
        for (int i = 15; i >= 0; i--)
            buf_printf(&b, "%x.%x%s", ip.bytes[i] & 0xf, ip.bytes[i] >> 4, i ? "." : "");
    }
    *out = arena_strndup(run->ctx->arena, b.data, b.len);
    buf_free(&b);
    return EXPAND_OK;
}

static enum expand_status op_listcount(struct expand_run *run, const char *arg, const char **out)
{
    const char **items = NULL;
    *out = arena_printf(run->ctx->arena, "%d", list_split(run->ctx->arena, arg, &items));
    return EXPAND_OK;
}

/* ---- eval: integer arithmetic with C precedence ---- */

struct eval_state {
    const char *p;
    bool decimal_only; /* eval10: leading zeros are not octal */
    const char *err;
};

static long long eval_expr(struct eval_state *e, int level);

static void eval_space(struct eval_state *e)
{
    while (isspace((unsigned char)*e->p))
        e->p++;
}

static long long eval_primary(struct eval_state *e)
{
    eval_space(e);
    if (*e->p == '(') {
        e->p++;
        long long v = eval_expr(e, 0);
        eval_space(e);
        if (*e->p != ')') { /* never step past the end of the string */
            if (!e->err)
                e->err = "missing \")\"";
            return v;
        }
        e->p++;
        return v;
    }
    if (*e->p == '-' || *e->p == '+' || *e->p == '~') {
        char op = *e->p++;
        long long v = eval_primary(e);
        return op == '-' ? (long long)(0ULL - (unsigned long long)v) : op == '~' ? ~v : v;
    }
    if (!isdigit((unsigned char)*e->p)) {
        if (!e->err)
            e->err = "number expected";
        return 0;
    }
    char *end;
    long long v = strtoll(e->p, &end, e->decimal_only ? 10 : 0);
    e->p = end;
    switch (tolower((unsigned char)*e->p)) {
    case 'k':
        v *= 1024;
        e->p++;
        break;
    case 'm':
        v *= 1024 * 1024;
        e->p++;
        break;
    case 'g':
        v *= 1024LL * 1024 * 1024;
        e->p++;
        break;
    }
    return v;
}

/* Binary operators by precedence level, lowest first. */
static const char *const eval_levels[] = {"|", "^", "&", "<< >>", "+ -", "* / %"};

static bool eval_operator_at(struct eval_state *e, int level, char *op)
{
    eval_space(e);
    const char *p = e->p;
    if ((p[0] == '<' && p[1] == '<') || (p[0] == '>' && p[1] == '>')) {
        if (level != 3)
            return false;
        *op = p[0];
        e->p += 2;
        return true;
    }
    if (!*p || strchr("<>", *p) || !strchr(eval_levels[level], *p) || *p == ' ')
        return false;
    *op = *p;
    e->p++;
    return true;
}

static long long eval_apply(struct eval_state *e, char op, long long a, long long b)
{
    unsigned long long ua = (unsigned long long)a, ub = (unsigned long long)b;
    switch (op) {
    case '|':
        return a | b;
    case '^':
        return a ^ b;
    case '&':
        return a & b;
    case '<':
        return (b < 0 || b > 63) ? 0 : (long long)(ua << b);
    case '>':
        return (b < 0 || b > 63) ? 0 : a >> b;
    case '+':
        return (long long)(ua + ub);
    case '-':
        return (long long)(ua - ub);
    case '*':
        return (long long)(ua * ub);
    default:
        if (b == 0 || (a == (-9223372036854775807LL - 1) && b == -1)) {
            if (!e->err)
                e->err = "divide by zero";
            return 0;
        }
        return op == '/' ? a / b : a % b;
    }
}

static long long eval_expr(struct eval_state *e, int level)
{
    if (level >= (int)(sizeof eval_levels / sizeof eval_levels[0]))
        return eval_primary(e);
    long long v = eval_expr(e, level + 1);
    char op;
    while (!e->err && eval_operator_at(e, level, &op))
        v = eval_apply(e, op, v, eval_expr(e, level + 1));
    return v;
}

static enum expand_status eval_common(struct expand_run *run, const char *arg, bool decimal,
                                      const char **out)
{
    struct eval_state e = {.p = arg, .decimal_only = decimal};
    /* Parentheses nest through the C stack: bound them first. */
    int open = 0;
    for (const char *s = arg; *s; s++)
        if (*s == '(' && ++open > 100)
            return expand_fail(run, "eval: expression nested too deeply");
    long long v = eval_expr(&e, 0);
    eval_space(&e);
    if (!e.err && *e.p)
        e.err = "unexpected character";
    if (e.err)
        return expand_fail(run, "eval: %s in \"%s\"", e.err, arg);
    *out = arena_printf(run->ctx->arena, "%lld", v);
    return EXPAND_OK;
}

static enum expand_status op_eval(struct expand_run *run, const char *arg, const char **out)
{
    return eval_common(run, arg, false, out);
}

static enum expand_status op_eval10(struct expand_run *run, const char *arg, const char **out)
{
    return eval_common(run, arg, true, out);
}

static const struct {
    const char *name;
    op_fn fn;
} expand_ops[] = {
    {"lc", op_lc},
    {"uc", op_uc},
    {"strlen", op_strlen},
    {"quote", op_quote},
    {"quote_pgsql", op_quote_pgsql},
    {"quote_mysql", op_quote_mysql},
    {"quote_redis", op_quote_redis},
    {"rxquote", op_rxquote},
    {"escape", op_escape},
    {"hexquote", op_hexquote},
    {"address", op_address},
    {"local_part", op_local_part},
    {"domain", op_domain},
    {"str2b64", op_base64},
    {"base64", op_base64},
    {"base64d", op_base64d},
    {"md5", op_md5},
    {"sha1", op_sha1},
    {"sha256", op_sha256},
    {"mask", op_mask},
    {"mask_n", op_mask_n},
    {"reverse_ip", op_reverse_ip},
    {"listcount", op_listcount},
    {"eval", op_eval},
    {"eval10", op_eval10},
};

/* "length_N" and "substr_S" / "substr_S_L": numbers are part of the operator name. */
static bool parse_numbered_op(const char *name, const char *prefix, long nums[2], int *count)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0 || name[plen] != '_')
        return false;
    const char *p = name + plen;
    *count = 0;
    while (*p == '_' && *count < 2) {
        char *end;
        p++;
        if (!isdigit((unsigned char)*p) && !(*p == '-' && isdigit((unsigned char)p[1])))
            return false;
        nums[(*count)++] = strtol(p, &end, 10);
        if (nums[*count - 1] > 1000000000L || nums[*count - 1] < -1000000000L)
            return false;
        p = end;
    }
    return *p == '\0' && *count > 0;
}

bool expand_operator_known(const char *name)
{
    long nums[2];
    int count;
    for (size_t i = 0; i < sizeof expand_ops / sizeof expand_ops[0]; i++)
        if (strcmp(name, expand_ops[i].name) == 0)
            return true;
    if (parse_numbered_op(name, "length", nums, &count))
        return count == 1 && nums[0] >= 0;
    return parse_numbered_op(name, "substr", nums, &count);
}

const char *expand_substring(struct arena *arena, const char *s, long start, long len, bool has_len)
{
    long n = (long)strlen(s);
    if (start < 0) {
        start += n;
        if (start < 0) {
            if (has_len)
                len += start;
            start = 0;
        }
    }
    if (start > n)
        start = n;
    if (!has_len || len > n - start)
        len = n - start;
    return arena_strndup(arena, s + start, (size_t)(len < 0 ? 0 : len));
}

enum expand_status expand_operator(struct expand_run *run, const char *name, const char *arg,
                                   const char **out)
{
    long nums[2] = {0, 0};
    int count = 0;
    for (size_t i = 0; i < sizeof expand_ops / sizeof expand_ops[0]; i++)
        if (strcmp(name, expand_ops[i].name) == 0)
            return expand_ops[i].fn(run, arg, out);
    if (parse_numbered_op(name, "length", nums, &count) && count == 1 && nums[0] >= 0) {
        *out = expand_substring(run->ctx->arena, arg, 0, nums[0], true);
        return EXPAND_OK;
    }
    if (parse_numbered_op(name, "substr", nums, &count)) {
        *out = expand_substring(run->ctx->arena, arg, nums[0], nums[1], count == 2);
        return EXPAND_OK;
    }
    return expand_fail(run, "unknown expansion operator \"%s\"", name);
}
