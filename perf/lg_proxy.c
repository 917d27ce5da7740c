/*
 * lg_proxy.c - the client side of the PROXY protocol for the load generator: builds
 * v1 (text) and v2 (binary) headers for made-up client addresses taken in turn from a
 * CIDR block. The addresses only ever appear as bytes in the header; nothing connects
 * to or from them.
 *
 * Pure functions over caller-supplied buffers; callable from any thread.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char proxy_v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                     0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

bool lg_cidr_parse(const char *text, struct lg_cidr *out, char *err, size_t errlen)
{
    char host[64];
    const char *slash = strchr(text, '/');
    size_t hostlen = slash ? (size_t)(slash - text) : strlen(text);
    if (hostlen == 0 || hostlen >= sizeof host) {
        snprintf(err, errlen, "bad address block \"%s\"", text);
        return false;
    }
    memcpy(host, text, hostlen);
    host[hostlen] = '\0';
    memset(out, 0, sizeof *out);
    unsigned maxbits;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        maxbits = 128;
    } else {
        snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address", host);
        return false;
    }
    out->prefix = maxbits;
    if (slash) {
        char *end;
        unsigned long prefix = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || end == slash + 1 || prefix > maxbits) {
            snprintf(err, errlen, "bad prefix length in \"%s\"", text);
            return false;
        }
        out->prefix = (unsigned)prefix;
    }
    return true;
}

/* Add offset to the big-endian number in bytes[0..len). */
static void cidr_add(unsigned char *bytes, size_t len, uint64_t offset)
{
    for (size_t i = len; i-- > 0 && offset;) {
        uint64_t sum = bytes[i] + (offset & 0xff);
        bytes[i] = (unsigned char)sum;
        offset = (offset >> 8) + (sum >> 8);
    }
}

void lg_cidr_nth(const struct lg_cidr *cidr, uint64_t n, struct sockaddr_storage *out)
{
    size_t len = cidr->family == AF_INET ? 4 : 16;
    unsigned hostbits = (unsigned)(len * 8) - cidr->prefix;
    uint64_t offset = hostbits >= 64 ? n : n % ((uint64_t)1 << hostbits);
    unsigned char bytes[16];
    memcpy(bytes, cidr->addr, len);
    /* clear the host part, then add the offset */
    for (unsigned bit = cidr->prefix; bit < len * 8; bit++)
        bytes[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    cidr_add(bytes, len, offset);
    uint16_t port = (uint16_t)(1024 + n % 64000);
    memset(out, 0, sizeof *out);
    if (cidr->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, bytes, 4);
        sin->sin_port = htons(port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, bytes, 16);
        sin6->sin6_port = htons(port);
    }
}

static size_t proxy_build_v1(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
                             unsigned char *out, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    unsigned sport, dport;
    const char *proto;
    if (src->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
        inet_ntop(AF_INET, &a->sin_addr, s, sizeof s);
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof d);
        sport = ntohs(a->sin_port);
        dport = ntohs(b->sin_port);
        proto = "TCP4";
    } else {
        const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
        inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof s);
        inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof d);
        sport = ntohs(a->sin6_port);
        dport = ntohs(b->sin6_port);
        proto = "TCP6";
    }
    int n = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n", proto, s, d, sport, dport);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static size_t proxy_build_v2(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
                             unsigned char *out, size_t cap)
{
    bool v4 = src->ss_family == AF_INET;
    size_t addrlen = v4 ? 12 : 36;
    if (cap < 16 + addrlen)
        return 0;
    memcpy(out, proxy_v2_signature, sizeof proxy_v2_signature);
    out[12] = 0x21;             /* version 2, command PROXY */
    out[13] = v4 ? 0x11 : 0x21; /* TCP over IPv4 / IPv6 */
    out[14] = 0;
    out[15] = (unsigned char)addrlen;
    unsigned char *p = out + 16;
    if (v4) {
        const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
        memcpy(p, &a->sin_addr, 4);
        memcpy(p + 4, &b->sin_addr, 4);
        memcpy(p + 8, &a->sin_port, 2);
        memcpy(p + 10, &b->sin_port, 2);
    } else {
        const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
        memcpy(p, &a->sin6_addr, 16);
        memcpy(p + 16, &b->sin6_addr, 16);
        memcpy(p + 32, &a->sin6_port, 2);
        memcpy(p + 34, &b->sin6_port, 2);
    }
    return 16 + addrlen;
}

size_t lg_proxy_build(enum lg_proxy_version version, const struct sockaddr_storage *src,
                      const struct sockaddr_storage *dst, unsigned char *out, size_t cap)
{
    if (src->ss_family != dst->ss_family)
        return 0;
    if (src->ss_family != AF_INET && src->ss_family != AF_INET6)
        return 0;
    if (version == LG_PROXY_V1)
        return proxy_build_v1(src, dst, out, cap);
    if (version == LG_PROXY_V2)
        return proxy_build_v2(src, dst, out, cap);
    return 0;
}
