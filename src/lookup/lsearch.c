/*
 * lsearch.c - the linear-search file lookups: lsearch (literal keys), wildlsearch (keys
 * are expanded, then may be "*suffix", "^regex" or "type;data"), nwildlsearch (the same
 * without expansion) and iplsearch (keys are IP addresses or CIDR networks; IPv6 keys are
 * written in double quotes).
 *
 * File format, as Exim's: "key: data", "key data" or "key" alone; keys are compared
 * case-insensitively and may be double-quoted (with backslash escapes) to hold colons or
 * white space; a line starting with white space continues the previous data (joined with
 * one space); empty lines and lines starting with '#' are ignored everywhere. The first
 * matching key wins.
 *
 * The file is read on every call (no cache yet), with bounded line and data lengths.
 * A file that cannot be opened is a lookup ERROR (an expansion failure, as in Exim), not
 * a "not found". Results go in ctx->arena; any thread may call these.
 */
#include "lookup_drivers.h"

#include "postern/expand.h"
#include "postern/ip.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LSEARCH_MAX_LINE (64 * 1024)
#define LSEARCH_MAX_DATA (1024 * 1024)

enum lsearch_mode { LSEARCH_LITERAL, LSEARCH_WILD, LSEARCH_NWILD, LSEARCH_IP };

struct lsearch_scan {
    struct expand_ctx *ctx;
    enum lsearch_mode mode;
    const char *key;
    struct ip_addr key_ip; /* iplsearch only */
    const char *file;
    const char **err;
};

/* Parse the key at the start of `line` into `key` (a buf); returns the data start. */
static const char *lsearch_parse_key(const char *line, struct buf *key)
{
    const char *p = line;
    buf_clear(key);
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            char c = *p;
            if (c == '\\' && p[1]) {
                c = *++p;
                if (c == 'n')
                    c = '\n';
                else if (c == 't')
                    c = '\t';
                else if (c == 'r')
                    c = '\r';
            }
            buf_append(key, &c, 1);
        }
        if (*p == '"')
            p++;
    } else {
        size_t n = strcspn(p, ": \t");
        buf_append(key, p, n);
        p += n;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == ':')
        p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Does a file key match the lookup key? MATCH_DEFER / MATCH_ERROR abort the scan. */
static enum match_result lsearch_key_matches(struct lsearch_scan *scan, const char *file_key)
{
    struct expand_ctx *ctx = scan->ctx;
    if (scan->mode == LSEARCH_LITERAL)
        return str_ieq(file_key, scan->key) ? MATCH_YES : MATCH_NO;
    if (scan->mode == LSEARCH_IP) {
        struct ip_addr net;
        int bits;
        if (!ip_parse_cidr(file_key, &net, &bits))
            return MATCH_NO;
        return ip_in_network(&scan->key_ip, &net, bits) ? MATCH_YES : MATCH_NO;
    }
    const char *pattern = file_key;
    if (scan->mode == LSEARCH_WILD) {
        const char *xerr = NULL;
        enum expand_status st = expand_string(ctx, file_key, &pattern, &xerr);
        if (st == EXPAND_DEFER) {
            *scan->err = xerr;
            return MATCH_DEFER;
        }
        if (st != EXPAND_OK) {
            *scan->err = arena_printf(ctx->arena, "failed to expand key \"%s\" in %s: %s", file_key,
                                      scan->file, xerr ? xerr : "forced failure");
            return MATCH_ERROR;
        }
    }
    const char *saved[10];
    memcpy(saved, ctx->match, sizeof saved);
    enum match_result r = list_match_pattern(ctx, pattern, scan->key, true, scan->err);
    memcpy(ctx->match, saved, sizeof saved);
    return r;
}

static void trim_right(char *s, size_t *len)
{
    while (*len && isspace((unsigned char)s[*len - 1]))
        s[--*len] = '\0';
}

/* Scan the open file; the data of the first matching key is collected into `data`. */
static enum lookup_status lsearch_read(struct lsearch_scan *scan, FILE *f, struct buf *data)
{
    char *line = malloc(LSEARCH_MAX_LINE + 2);
    long lineno = 0;
    bool collecting = false;
    enum lookup_status st = LOOKUP_NOT_FOUND;
    struct buf key;
    buf_init(&key);
    if (!line)
        die("lsearch: out of memory");
    while (fgets(line, LSEARCH_MAX_LINE + 2, f)) {
        size_t n = strlen(line);
        lineno++;
        if (n > LSEARCH_MAX_LINE || (n && line[n - 1] != '\n' && !feof(f))) {
            *scan->err =
                arena_printf(scan->ctx->arena, "line %ld of %s is too long", lineno, scan->file);
            st = LOOKUP_ERROR;
            break;
        }
        trim_right(line, &n);
        if (n == 0 || line[0] == '#')
            continue;
        if (isspace((unsigned char)line[0])) {
            if (collecting) {
                const char *more = line + strspn(line, " \t");
                if (data->len)
                    buf_append(data, " ", 1);
                buf_append_str(data, more);
            }
        } else if (collecting) {
            break; /* the next key: the matched entry is complete */
        } else {
            const char *rest = lsearch_parse_key(line, &key);
            enum match_result r = lsearch_key_matches(scan, key.data ? key.data : "");
            if (r == MATCH_DEFER || r == MATCH_ERROR) {
                st = r == MATCH_DEFER ? LOOKUP_DEFER : LOOKUP_ERROR;
                break;
            }
            if (r == MATCH_YES) {
                collecting = true;
                st = LOOKUP_FOUND;
                buf_append_str(data, rest);
            }
        }
        if (data->len > LSEARCH_MAX_DATA) {
            *scan->err = arena_printf(scan->ctx->arena, "data too long in %s", scan->file);
            st = LOOKUP_ERROR;
            break;
        }
    }
    free(line);
    buf_free(&key);
    return st;
}

static enum lookup_status lsearch_run(struct expand_ctx *ctx, enum lsearch_mode mode,
                                      const char *key, const char *file, const char **result,
                                      const char **err)
{
    struct lsearch_scan scan = {.ctx = ctx, .mode = mode, .key = key, .file = file, .err = err};
    if (!file || file[0] != '/') {
        *err = arena_printf(ctx->arena, "\"%s\" is not an absolute path", file ? file : "");
        return LOOKUP_ERROR;
    }
    if (mode == LSEARCH_IP && !ip_parse(key, &scan.key_ip))
        return LOOKUP_NOT_FOUND; /* the key must be an IP address without a mask */
    if (ctx->depth >= EXPAND_MAX_DEPTH) {
        *err = arena_printf(ctx->arena, "lookups nested too deeply at %s", file);
        return LOOKUP_ERROR;
    }
    FILE *f = expand_open_regular_file(ctx->arena, file, "for linear search", err);
    if (!f)
        return LOOKUP_ERROR;
    struct buf data;
    buf_init(&data);
    ctx->depth++;
    enum lookup_status st = lsearch_read(&scan, f, &data);
    ctx->depth--;
    fclose(f);
    if (st == LOOKUP_FOUND) {
        size_t n = data.len;
        if (data.data)
            trim_right(data.data, &n);
        *result = arena_strndup(ctx->arena, data.data ? data.data : "", n);
    }
    buf_free(&data);
    return st;
}

enum lookup_status lookup_lsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                  const char **result, const char **err)
{
    return lsearch_run(ctx, LSEARCH_LITERAL, key, file, result, err);
}

enum lookup_status lookup_wildlsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                      const char **result, const char **err)
{
    return lsearch_run(ctx, LSEARCH_WILD, key, file, result, err);
}

enum lookup_status lookup_nwildlsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                       const char **result, const char **err)
{
    return lsearch_run(ctx, LSEARCH_NWILD, key, file, result, err);
}

enum lookup_status lookup_iplsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                    const char **result, const char **err)
{
    return lsearch_run(ctx, LSEARCH_IP, key, file, result, err);
}
