/*
 * ip.h - IP address parsing and CIDR comparison (src/util/ip.c), shared by host lists,
 * the iplsearch lookup, the ${mask:} operator and the daemon. IPv4-mapped IPv6 addresses
 * are treated as the IPv4 address, as Exim does. Pure functions; any thread.
 */
#ifndef POSTERN_IP_H
#define POSTERN_IP_H

#include "postern/util.h"

#include <stdbool.h>
#include <stdint.h>

struct ip_addr {
    int family;        /* 4 or 6 */
    uint8_t bytes[16]; /* network order; IPv4 uses the first 4 */
};
/* Parse an address; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4. */
bool ip_parse(const char *text, struct ip_addr *out);
/* "addr" or "addr/bits"; *bits is the full length when no mask is given. */
bool ip_parse_cidr(const char *text, struct ip_addr *out, int *bits);
bool ip_in_network(const struct ip_addr *addr, const struct ip_addr *net, int bits);
/* Exim's key text for net-/netN- lookups: IPv4 dotted quad; IPv6 eight %04x groups joined
 * by '.' (or ':' when colons is set). bits < 0: no mask and no "/bits" suffix. */
char *ip_key_text(struct arena *arena, const struct ip_addr *addr, int bits, bool colons);

#endif
