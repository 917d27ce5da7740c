/*
 * regex.c - regular expressions for match{}{}, sg{}{}{}, "^regex" list items and
 * wildlsearch keys. Exim uses PCRE; we compile POSIX extended expressions (regcomp) after
 * translating the Perl forms Exim configurations commonly use: \d \D \w \W \s \S (also
 * inside brackets where POSIX allows), (?i) and (?-i) option settings, and (?:...) groups.
 * Anything else PCRE-only (look-around, lazy quantifiers with other meaning) is passed
 * through and fails to compile with a reason, rather than matching the wrong thing.
 *
 * Pure functions; any thread. The translated pattern lives in a struct buf freed here.
 */
#include "expand_internal.h"

#include <string.h>

#define REGEX_MAX_PATTERN 8192

/* Bracket-expression contents for \d \w \s (negated forms are handled by the caller). */
static const char *class_body(char c)
{
    switch (c) {
    case 'd':
    case 'D':
        return "0-9";
    case 'w':
    case 'W':
        return "[:alnum:]_";
    case 's':
    case 'S':
        return "[:space:]";
    }
    return NULL;
}

/* Translate one backslash escape at p (p[0] == '\\'); returns characters consumed. */
static size_t translate_escape(const char *p, bool in_bracket, struct buf *out)
{
    const char *body = class_body(p[1]);
    if (body && in_bracket) {
        if (p[1] == 'd' || p[1] == 'w' || p[1] == 's') {
            buf_append_str(out, body);
            return 2;
        }
        buf_append(out, p, 2); /* negated class inside brackets: leave for regcomp */
        return 2;
    }
    if (body) {
        bool negated = p[1] == 'D' || p[1] == 'W' || p[1] == 'S';
        buf_printf(out, "[%s%s]", negated ? "^" : "", body);
        return 2;
    }
    if (p[1] == '\0') {
        buf_append(out, "\\\\", 2);
        return 1;
    }
    if (in_bracket) { /* POSIX brackets have no escapes: keep the literal character */
        if (p[1] != '\\')
            buf_append(out, p + 1, 1);
        else
            buf_append(out, "\\", 1);
        return 2;
    }
    buf_append(out, p, 2);
    return 2;
}

/* Build the POSIX pattern; *caseless is updated by (?i) / (?-i), rx->capture records
 * which POSIX groups are Perl capturing groups. */
static void translate_pattern(const char *pattern, bool *caseless, struct expand_regex *rx,
                              struct buf *out)
{
    bool in_bracket = false;
    int perl_groups = 0;
    const char *p = pattern;
    while (*p) {
        if (*p == '\\') {
            p += translate_escape(p, in_bracket, out);
            continue;
        }
        if (in_bracket) {
            if (*p == ']')
                in_bracket = false;
            buf_append(out, p++, 1);
            continue;
        }
        if (strncmp(p, "(?i)", 4) == 0 || strncmp(p, "(?-i)", 5) == 0) {
            *caseless = p[2] == 'i';
            p += p[2] == 'i' ? 4 : 5;
            continue;
        }
        if (*p == '(') {
            bool capturing = strncmp(p, "(?:", 3) != 0;
            if (++rx->groups < REGEX_MAX_GROUPS)
                rx->capture[rx->groups] = (int8_t)(capturing ? ++perl_groups : -1);
            buf_append(out, "(", 1);
            p += capturing ? 1 : 3;
            continue;
        }
        if (*p == '[') {
            in_bracket = true;
            buf_append(out, p++, 1);
            if (*p == '^')
                buf_append(out, p++, 1);
            if (*p == ']') /* a leading ']' is literal */
                buf_append(out, p++, 1);
            continue;
        }
        buf_append(out, p++, 1);
    }
}

bool expand_regex_compile(struct expand_regex *rx, const char *pattern, bool caseless,
                          struct arena *arena, const char **err)
{
    memset(rx, 0, sizeof *rx);
    if (strlen(pattern) > REGEX_MAX_PATTERN) {
        *err =
            arena_printf(arena, "regular expression too long (over %d bytes)", REGEX_MAX_PATTERN);
        return false;
    }
    struct buf b;
    buf_init(&b);
    translate_pattern(pattern, &caseless, rx, &b);
    int flags = REG_EXTENDED | (caseless ? REG_ICASE : 0);
    int rc = regcomp(&rx->re, b.data ? b.data : "", flags);
    buf_free(&b);
    if (rc != 0) {
        char msg[256];
        regerror(rc, &rx->re, msg, sizeof msg);
        *err = arena_printf(arena, "regular expression error in \"%s\": %s", pattern, msg);
        return false;
    }
    return true;
}

void expand_regex_free(struct expand_regex *rx)
{
    regfree(&rx->re);
}

bool expand_regex_exec(const struct expand_regex *rx, const char *subject, int eflags,
                       regmatch_t m[10])
{
    regmatch_t posix[REGEX_MAX_GROUPS];
    if (regexec(&rx->re, subject, REGEX_MAX_GROUPS, posix, eflags) != 0)
        return false;
    for (int i = 0; i < 10; i++)
        m[i].rm_so = m[i].rm_eo = -1;
    m[0] = posix[0];
    for (int g = 1; g < REGEX_MAX_GROUPS && g <= rx->groups; g++)
        if (rx->capture[g] > 0 && rx->capture[g] < 10)
            m[rx->capture[g]] = posix[g];
    return true;
}

bool expand_regex_match(struct expand_ctx *ctx, const struct expand_regex *rx, const char *subject)
{
    regmatch_t m[10];
    if (!expand_regex_exec(rx, subject, 0, m))
        return false;
    for (int i = 0; i < 10; i++)
        ctx->match[i] = m[i].rm_so < 0 ? NULL
                                       : arena_strndup(ctx->arena, subject + m[i].rm_so,
                                                       (size_t)(m[i].rm_eo - m[i].rm_so));
    return true;
}
