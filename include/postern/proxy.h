/*
 * proxy.h - PROXY protocol v1 and v2 header parser (HAProxy's doc/proxy-protocol.txt).
 *
 * proxy_parse() is a pure function over bytes: it never reads a socket, allocates or
 * touches globals, so it is unit-tested for every byte split and fuzzed. The acceptor
 * peeks at the socket, calls proxy_parse() on what it has, and on PROXY_OK consumes
 * exactly result.consumed bytes, so anything the client sent after the header (pipelined
 * SMTP, a TLS ClientHello) stays in the socket for the session.
 */
#ifndef POSTERN_PROXY_H
#define POSTERN_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX_LEN 107u             /* "PROXY UNKNOWN ..." upper bound incl. CRLF */
#define PROXY_V2_MAX_LEN (16u + 65535u)  /* fixed header + maximum payload */

enum proxy_status {
    PROXY_NEED_MORE, /* a valid prefix: wait for more bytes */
    PROXY_OK,        /* a complete header: result filled, result.consumed bytes used */
    PROXY_ERROR,     /* malformed: result.reason says why */
};

enum proxy_family {
    PROXY_FAMILY_UNSPEC = 0, /* v1 UNKNOWN, v2 AF_UNSPEC */
    PROXY_FAMILY_INET,
    PROXY_FAMILY_INET6,
    PROXY_FAMILY_UNIX,
};

struct proxy_result {
    int version;      /* 1 or 2 */
    bool local;       /* v2 LOCAL command: a health check; keep the connection's addresses */
    enum proxy_family family;
    int transport;    /* v2: 0 unspec, 1 stream, 2 dgram; v1: 1 */
    char src_addr[108]; /* text form: dotted quad, RFC 5952 IPv6, or the UNIX path */
    char dst_addr[108];
    uint16_t src_port;
    uint16_t dst_port;
    size_t consumed;  /* header length in bytes, on PROXY_OK */

    /* v2 TLVs we record (others are skipped after their length is validated) */
    bool crc32c_present; /* a CRC32C TLV was present and verified */
    char alpn[256];
    char authority[256];
    unsigned char unique_id[128];
    size_t unique_id_len;
    bool ssl_present;
    uint8_t ssl_client;  /* PP2_CLIENT_SSL | _CERT_CONN | _CERT_SESS bits */
    uint32_t ssl_verify; /* 0 = client certificate verified */
    char ssl_version[64];
    char ssl_cn[256];
    char ssl_cipher[128];
    char ssl_sig_alg[64];
    char ssl_key_alg[64];
    char netns[256];

    char reason[128]; /* on PROXY_ERROR: human-readable, no newline */
};

/* Parse the start of `buf`. Decides v1 vs v2 by the signature; anything else is an error
 * as soon as enough bytes show it cannot be a PROXY header. */
enum proxy_status proxy_parse(const uint8_t *buf, size_t len, struct proxy_result *result);

/* CRC32C (Castagnoli), exposed for tests and for building v2 headers in perf tools. */
uint32_t proxy_crc32c(uint32_t crc, const uint8_t *data, size_t len);

#endif
