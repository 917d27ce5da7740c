/*
 * address.h - mail address syntax, once for every module: the strict RFC 5321 split used
 * by the SMTP parser and by redirection, the local-part quoting rules ($local_part is the
 * unquoted local part, as in Exim), the lenient split behind $local_part / $domain, the
 * key that finds duplicate addresses, and the test that an address component is safe to
 * put in a file path.
 *
 * Pure functions: no I/O, no globals. Returned strings are string literals or allocated
 * in the caller's arena (they live as long as it). Any thread.
 */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H

#include "postern/util.h"

#include <stdbool.h>

#define ADDRESS_LOCAL_PART_MAX 64 /* RFC 5321 4.5.3.1.1 */
#define ADDRESS_DOMAIN_MAX 255    /* RFC 5321 4.5.3.1.2 */
#define ADDRESS_LABEL_MAX 63
#define ADDRESS_PATH_MAX 254 /* 256 octets of RFC 5321 4.5.3.1.3 minus the angle brackets */

/* Validate "local@domain" (or a bare "local", domain "") strictly: a dot-string or
 * quoted-string local part of at most 64 bytes, a domain of labels or an address literal.
 * *local_part is the local part as written (quotes kept); use address_unquote() for the
 * local part as delivery sees it. False with *reason ("malformed address: ...") when not. */
bool address_split(struct arena *arena, const char *address, const char **local_part,
                   const char **domain, const char **reason);

/* Validate a domain: dot-separated labels (letters, digits, '-', '_', UTF-8) or an
 * address literal "[1.2.3.4]" / "[IPv6:...]". */
bool address_check_domain(const char *domain, const char **reason);

/* The local part as delivery sees it (Exim's deliver_split_address): double quotes
 * removed and backslash escapes resolved. "\"a b\"" -> "a b", "\"/../x\"" -> "/../x". */
char *address_unquote(struct arena *arena, const char *local_part);

/* The inverse: the local part unchanged when it is a dot-string, else a quoted-string
 * with '"' and '\' escaped. address_quote(address_unquote(x)) is the canonical form of x. */
char *address_quote(struct arena *arena, const char *local_part);

/* Lenient split at the last '@' for variables ($local_part, $sender_address_domain):
 * the unquoted local part ("" for NULL), and the domain ("" when there is no '@'). */
const char *address_local_part(struct arena *arena, const char *address);
const char *address_domain(const char *address);

/* The canonical key of an address for duplicate detection: the local part re-quoted
 * canonically, '@', the domain; all lower-cased. "\"Ceo\"@X.test" -> "ceo@x.test". */
char *address_key(struct arena *arena, const char *address);

/* May this (unquoted) address component become part of a file path? Not when it is
 * empty, ".", "..", or contains '/' (or a NUL, which cannot be in a C string anyway).
 * False with a reason naming the problem. */
bool address_component_path_safe(const char *component, const char **reason);

#endif
