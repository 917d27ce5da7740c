/*
 * address.c - mail address syntax (see postern/address.h): the strict RFC 5321 split,
 * local-part quoting and unquoting, the lenient split behind the address variables, the
 * duplicate-detection key, and the path-safety test for address components.
 *
 * Pure: no I/O, no globals; strings in the caller's arena. Any thread.
 */
#include "postern/address.h"

#include <arpa/inet.h>
#include <string.h>

#define REASON_TOO_LONG "address too long"

/* ---- character classes (ASCII only: never the locale's) ---- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_utf8_byte(char c)
{
    return (unsigned char)c >= 0x80;
}

/* RFC 5322 atext, plus UTF-8 (RFC 6531). */
static bool is_atext(char c)
{
    return is_alnum(c) || is_utf8_byte(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5321 qtextSMTP (printable ASCII except '"' and '\'), plus UTF-8. */
static bool is_qtext(char c)
{
    return (c >= 32 && c <= 126 && c != '"' && c != '\\') || is_utf8_byte(c);
}

static bool is_label_char(char c)
{
    return is_alnum(c) || c == '-' || c == '_' || is_utf8_byte(c);
}

/* ---- the strict split ---- */

static bool scan_quoted(const char *s, const char **end, const char **reason)
{
    const char *p = s + 1;
    for (; *p != '"'; p++) {
        if (*p == '\\' && p[1] >= 32 && p[1] <= 126) {
            p++;
            continue;
        }
        if (!*p) {
            *reason = "malformed address: unterminated quoted string";
            return false;
        }
        if (!is_qtext(*p)) {
            *reason = "malformed address: invalid character in quoted local part";
            return false;
        }
    }
    *end = p + 1;
    return true;
}

/* Local part at s: quoted-string or dot-string. Sets *end past it. */
static bool scan_local_part(const char *s, const char **end, const char **reason)
{
    if (*s == '"')
        return scan_quoted(s, end, reason);
    const char *p = s;
    for (;;) {
        const char *atom = p;
        while (is_atext(*p))
            p++;
        if (p == atom) {
            *reason = (*p == '.' || *p == '@' || !*p)
                          ? "malformed address: empty element in local part"
                          : "malformed address: invalid character in local part";
            return false;
        }
        if (*p != '.')
            break;
        p++;
    }
    *end = p;
    return true;
}

/* "[1.2.3.4]" or "[IPv6:...]" (the whole domain string). */
static bool check_literal(const char *domain, const char **reason)
{
    size_t n = strlen(domain);
    char inner[ADDRESS_DOMAIN_MAX + 1];
    if (n < 3 || domain[n - 1] != ']' || n - 2 > ADDRESS_DOMAIN_MAX) {
        *reason = "malformed address: invalid address literal";
        return false;
    }
    memcpy(inner, domain + 1, n - 2);
    inner[n - 2] = '\0';
    unsigned char addr[16];
    bool ok = str_nieq(inner, "IPv6:", 5) ? inet_pton(AF_INET6, inner + 5, addr) == 1
                                          : inet_pton(AF_INET, inner, addr) == 1;
    if (!ok)
        *reason = "malformed address: invalid address literal";
    return ok;
}

bool address_check_domain(const char *domain, const char **reason)
{
    if (!*domain) {
        *reason = "malformed address: missing domain after '@'";
        return false;
    }
    if (strlen(domain) > ADDRESS_DOMAIN_MAX) {
        *reason = REASON_TOO_LONG;
        return false;
    }
    if (*domain == '[')
        return check_literal(domain, reason);
    const char *p = domain;
    for (;;) {
        const char *label = p;
        while (is_label_char(*p))
            p++;
        size_t n = (size_t)(p - label);
        if (n == 0 || n > ADDRESS_LABEL_MAX || label[0] == '-' || p[-1] == '-') {
            *reason = n == 0 && (*p == '.' || !*p) ? "malformed address: empty domain label"
                                                   : "malformed address: invalid domain";
            return false;
        }
        if (!*p)
            return true;
        if (*p != '.') {
            *reason = "malformed address: invalid character in domain";
            return false;
        }
        p++;
    }
}

bool address_split(struct arena *arena, const char *address, const char **local_part,
                   const char **domain, const char **reason)
{
    if (!address || !*address) {
        *reason = "malformed address: empty address";
        return false;
    }
    if (strlen(address) > ADDRESS_PATH_MAX) {
        *reason = REASON_TOO_LONG;
        return false;
    }
    const char *end;
    if (!scan_local_part(address, &end, reason))
        return false;
    if ((size_t)(end - address) > ADDRESS_LOCAL_PART_MAX) {
        *reason = REASON_TOO_LONG;
        return false;
    }
    if (*end && *end != '@') {
        *reason = (*end == ' ' || *end == '\t')
                      ? "malformed address: space in address"
                      : "malformed address: invalid character in local part";
        return false;
    }
    const char *dom = *end == '@' ? end + 1 : end;
    if (*end == '@' && !address_check_domain(dom, reason))
        return false;
    *local_part = arena_strndup(arena, address, (size_t)(end - address));
    *domain = arena_strdup(arena, dom);
    return true;
}

/* ---- quoting ---- */

char *address_unquote(struct arena *arena, const char *local_part)
{
    size_t n = strlen(local_part);
    char *out = arena_alloc(arena, n + 1), *t = out;
    for (const char *p = local_part; *p; p++) {
        if (*p == '"')
            continue;
        if (*p == '\\' && p[1])
            p++;
        *t++ = *p;
    }
    *t = '\0';
    return out;
}

/* A dot-string: atoms of atext separated by single dots. */
static bool is_dot_string(const char *s)
{
    const char *p = s;
    for (;;) {
        const char *atom = p;
        while (is_atext(*p))
            p++;
        if (p == atom)
            return false;
        if (!*p)
            return true;
        if (*p != '.')
            return false;
        p++;
    }
}

char *address_quote(struct arena *arena, const char *local_part)
{
    if (is_dot_string(local_part))
        return arena_strdup(arena, local_part);
    struct buf b;
    buf_init(&b);
    buf_append(&b, "\"", 1);
    for (const char *p = local_part; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_append(&b, "\\", 1);
        buf_append(&b, p, 1);
    }
    buf_append(&b, "\"", 1);
    char *out = arena_strndup(arena, b.data, b.len);
    buf_free(&b);
    return out;
}

/* ---- lenient split for variables ---- */

const char *address_local_part(struct arena *arena, const char *address)
{
    if (!address)
        return "";
    const char *at = strrchr(address, '@');
    char *lp = arena_strndup(arena, address, at ? (size_t)(at - address) : strlen(address));
    return address_unquote(arena, lp);
}

const char *address_domain(const char *address)
{
    const char *at = address ? strrchr(address, '@') : NULL;
    return at ? at + 1 : "";
}

char *address_key(struct arena *arena, const char *address)
{
    const char *at = strrchr(address, '@');
    char *key = at ? arena_printf(arena, "%s@%s",
                                  address_quote(arena, address_local_part(arena, address)), at + 1)
                   : address_quote(arena, address_unquote(arena, address));
    str_lower(key);
    return key;
}

/* ---- paths ---- */

bool address_component_path_safe(const char *component, const char **reason)
{
    if (!component || !*component) {
        *reason = "is empty";
        return false;
    }
    if (strcmp(component, ".") == 0 || strcmp(component, "..") == 0) {
        *reason = "is a relative directory name";
        return false;
    }
    if (strchr(component, '/')) {
        *reason = "contains '/'";
        return false;
    }
    return true;
}
