/*
 * ip.c - IP address parsing and CIDR comparison (postern/ip.h) for host lists, iplsearch,
 * the mask operator and the daemon. IPv4-mapped IPv6 addresses are treated as the IPv4
 * address, as Exim does. Pure functions; any thread.
 */
#include "postern/ip.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool ip_parse(const char *text, struct ip_addr *out)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text || strlen(text) >= INET6_ADDRSTRLEN)
        return false;
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, text, out->bytes) != 1)
        return false;
    out->family = 6;
    if (memcmp(out->bytes, v4_mapped_prefix, 12) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
        out->family = 4;
    }
    return true;
}

bool ip_parse_cidr(const char *text, struct ip_addr *out, int *bits)
{
    const char *slash = strchr(text, '/');
    if (!slash) {
        if (!ip_parse(text, out))
            return false;
        *bits = out->family == 4 ? 32 : 128;
        return true;
    }
    char addr[INET6_ADDRSTRLEN];
    size_t n = (size_t)(slash - text);
    if (n >= sizeof addr)
        return false;
    memcpy(addr, text, n);
    addr[n] = '\0';
    bool mapped = strchr(addr, ':') != NULL;
    if (!ip_parse(addr, out) || !isdigit((unsigned char)slash[1]))
        return false;
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (*end)
        return false;
    if (mapped && out->family == 4) /* ::ffff:a.b.c.d/120 means a.b.c.d/24 */
        b -= 96;
    if (b < 0 || b > (out->family == 4 ? 32 : 128))
        return false;
    *bits = (int)b;
    return true;
}

bool ip_in_network(const struct ip_addr *addr, const struct ip_addr *net, int bits)
{
    if (addr->family != net->family)
        return false;
    int full = bits / 8, rest = bits % 8;
    if (memcmp(addr->bytes, net->bytes, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (addr->bytes[full] & mask) == (net->bytes[full] & mask);
}

char *ip_key_text(struct arena *arena, const struct ip_addr *addr, int bits, bool colons)
{
    struct ip_addr masked = *addr;
    int full = addr->family == 4 ? 32 : 128;
    for (int i = bits < 0 ? full : bits; i < full; i++)
        masked.bytes[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    char text[64];
    const uint8_t *b = masked.bytes;
    if (masked.family == 4) {
        snprintf(text, sizeof text, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    } else {
        char sep = colons ? ':' : '.';
        size_t n = 0;
        for (int i = 0; i < 8; i++) {
            if (i)
                text[n++] = sep;
            n += (size_t)snprintf(text + n, sizeof text - n, "%02x%02x", b[2 * i], b[2 * i + 1]);
        }
    }
    return bits < 0 ? arena_strdup(arena, text) : arena_printf(arena, "%s/%d", text, bits);
}
