/*
 * proxy.c - the PROXY protocol v1 (text) and v2 (binary) header parser, per HAProxy's
 * doc/proxy-protocol.txt (2020/03/05 revision).
 *
 * proxy_parse() is a pure function over the bytes the acceptor has peeked so far: it
 * never reads past `len`, allocates nothing, touches no globals, and fills only the
 * caller's struct proxy_result (zeroed first, so every string in it is NUL-terminated
 * whatever the outcome). Any thread may call it. It answers
 *   PROXY_NEED_MORE  the bytes so far are a valid prefix of a header (v1: shorter than
 *                    107 bytes; v2: the 16-byte fixed part is sane, the rest not here),
 *   PROXY_OK         a complete header; result->consumed is its length, and nothing
 *                    after it (pipelined SMTP, a TLS ClientHello) was looked at,
 *   PROXY_ERROR      the bytes cannot be a header; result->reason says why.
 *
 * Decisions where the specification leaves room:
 *  - v1 is strict: single spaces, CRLF only (a bare CR or LF is an error), IPv4 as
 *    exactly four decimal numbers 0..255 without leading zeros ("01.2.3.4" is refused,
 *    as the spec forbids heading zeroes), IPv6 as accepted by inet_pton() and reported
 *    in RFC 5952 form, ports 0..65535 without sign or leading zeros ("080" is refused),
 *    and the address format must match TCP4/TCP6. Each field is checked as soon as it
 *    is complete, so a bad header is refused before its CRLF arrives.
 *  - v1 "PROXY UNKNOWN": family UNSPEC, local = false, transport 0; whatever follows up
 *    to the CRLF is ignored but must be printable US-ASCII. The caller treats UNSPEC
 *    like LOCAL (keeps the real connection addresses). TCP4/TCP6 report transport 1.
 *  - v2 LOCAL: local = true, family UNSPEC, the whole declared length is consumed and
 *    neither addresses nor TLVs are looked at (the family "is ignored", so where TLVs
 *    would start is undefined).
 *  - v2 PROXY with family UNSPEC: family UNSPEC, body ignored likewise. With a known
 *    family the declared length must cover the address block (12, 36 or 216 bytes),
 *    else ERROR at once. With transport UNSPEC the addresses are not reported (family
 *    UNSPEC) but the block is still skipped and the TLVs after it are validated.
 *  - UNIX paths must be NUL-terminated within their 108 bytes (else ERROR).
 *  - TLV strings (ALPN, AUTHORITY, NETNS, SSL sub-TLVs) longer than their result field
 *    are truncated to fit; control bytes (< 0x20, 0x7F, including NUL) in them and in
 *    UNIX paths become '?', so they are safe in log lines and headers. UNIQUE_ID longer
 *    than 128 bytes, a CRC32C TLV whose length is not 4, an SSL TLV shorter than its
 *    5-byte fixed part, and any TLV or sub-TLV overrunning its container are ERRORs.
 *    A CRC32C mismatch is an ERROR; a match sets crc32c_present. Unknown types
 *    (including the 0xE0-0xEF custom range) are skipped. Repeated TLVs: the last wins.
 */
#include "postern/proxy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define V1_PREFIX "PROXY "
#define V1_IPV4_MAX 15 /* "255.255.255.255" */
#define V1_IPV6_MAX 45 /* INET6_ADDRSTRLEN - 1: "ffff:...:255.255.255.255" */
#define V1_PORT_MAX 5

#define V2_FIXED_LEN 16
#define V2_SIGNATURE_LEN 12
#define V2_UNIX_PATH_LEN 108
#define TLV_HEADER_LEN 3

enum pp2_type {
    PP2_TYPE_ALPN = 0x01,
    PP2_TYPE_AUTHORITY = 0x02,
    PP2_TYPE_CRC32C = 0x03,
    PP2_TYPE_NOOP = 0x04,
    PP2_TYPE_UNIQUE_ID = 0x05,
    PP2_TYPE_SSL = 0x20,
    PP2_SUBTYPE_SSL_VERSION = 0x21,
    PP2_SUBTYPE_SSL_CN = 0x22,
    PP2_SUBTYPE_SSL_CIPHER = 0x23,
    PP2_SUBTYPE_SSL_SIG_ALG = 0x24,
    PP2_SUBTYPE_SSL_KEY_ALG = 0x25,
    PP2_TYPE_NETNS = 0x30,
};

static const uint8_t v2_signature[V2_SIGNATURE_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

__attribute__((format(printf, 2, 3))) static enum proxy_status
proxy_fail(struct proxy_result *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(result->reason, sizeof result->reason, fmt, ap);
    va_end(ap);
    return PROXY_ERROR;
}

/* Copies an untrusted byte string into a fixed field: truncated to fit, NUL-terminated,
 * control bytes replaced so the text is safe to log. */
static void proxy_copy_text(char *dst, size_t dst_size, const uint8_t *src, size_t src_len)
{
    size_t n = src_len < dst_size - 1 ? src_len : dst_size - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (src[i] < 0x20 || src[i] == 0x7F) ? '?' : (char)src[i];
    dst[n] = '\0';
}

/* ------------------------------------------------------------------------------------ */
/* v1: "PROXY TCP4|TCP6|UNKNOWN ...\r\n"                                                 */
/* ------------------------------------------------------------------------------------ */

struct v1_parser {
    const uint8_t *buf;
    size_t avail;     /* bytes we may look at: min(len, PROXY_V1_MAX_LEN) */
    bool window_full; /* avail reached PROXY_V1_MAX_LEN: running out means "too long" */
    size_t pos;
    struct proxy_result *result;
};

/* Called when the bytes end before the line does. */
static enum proxy_status v1_out_of_bytes(struct v1_parser *p)
{
    if (p->window_full)
        return proxy_fail(p->result, "v1 header: no CRLF within %u bytes", PROXY_V1_MAX_LEN);
    return PROXY_NEED_MORE;
}

static bool v1_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool v1_is_ipv4_char(uint8_t c)
{
    return v1_is_digit(c) || c == '.';
}

static bool v1_is_ipv6_char(uint8_t c)
{
    return v1_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
}

/* Reads one field ended by a space or CR into `out` (NUL-terminated). The terminator
 * must be `want_end`; the field must be non-empty, at most `max` bytes of `allowed`. */
static enum proxy_status v1_read_field(struct v1_parser *p, bool (*allowed)(uint8_t), size_t max,
                                       uint8_t want_end, const char *what, char *out)
{
    size_t start = p->pos;
    for (size_t i = start; i < p->avail; i++) {
        uint8_t c = p->buf[i];
        size_t n = i - start;
        if (c == ' ' || c == '\r') {
            if (n == 0)
                return proxy_fail(p->result, "v1 header: empty %s (double space?)", what);
            if (c != want_end)
                return proxy_fail(p->result, "v1 header: %s after %s",
                                  c == ' ' ? "unexpected space" : "premature end of line", what);
            memcpy(out, p->buf + start, n);
            out[n] = '\0';
            p->pos = i + 1;
            return PROXY_OK;
        }
        if (!allowed(c))
            return proxy_fail(p->result, "v1 header: invalid character 0x%02x in %s", c, what);
        if (n >= max)
            return proxy_fail(p->result, "v1 header: %s too long", what);
    }
    return v1_out_of_bytes(p);
}

/* Dotted quad: exactly four decimal numbers 0..255, no leading zeros. */
static bool v1_valid_ipv4(const char *s)
{
    for (int part = 0; part < 4; part++) {
        if (part > 0 && *s++ != '.')
            return false;
        if (!v1_is_digit((uint8_t)*s))
            return false;
        if (s[0] == '0' && v1_is_digit((uint8_t)s[1]))
            return false;
        unsigned value = 0;
        int digits = 0;
        while (v1_is_digit((uint8_t)*s) && digits < 4) {
            value = value * 10 + (unsigned)(*s++ - '0');
            digits++;
        }
        if (value > 255)
            return false;
    }
    return *s == '\0';
}

/* Validates an address field for the family and stores its text form. */
static bool v1_store_address(const char *text, enum proxy_family family, char *out, size_t out_size)
{
    if (family == PROXY_FAMILY_INET) {
        if (!v1_valid_ipv4(text))
            return false;
        snprintf(out, out_size, "%s", text);
        return true;
    }
    struct in6_addr addr;
    if (inet_pton(AF_INET6, text, &addr) != 1)
        return false;
    return inet_ntop(AF_INET6, &addr, out, (socklen_t)out_size) != NULL;
}

static bool v1_parse_port(const char *text, uint16_t *port)
{
    if (text[0] == '0' && text[1] != '\0')
        return false;
    unsigned long value = 0;
    for (const char *s = text; *s; s++)
        value = value * 10 + (unsigned long)(*s - '0'); /* at most 5 digits: no overflow */
    if (value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

/* Expects CR LF at p->pos (the CR may already be consumed as a field terminator). */
static enum proxy_status v1_expect_lf(struct v1_parser *p)
{
    if (p->pos >= p->avail)
        return v1_out_of_bytes(p);
    if (p->buf[p->pos] != '\n')
        return proxy_fail(p->result, "v1 header: CR not followed by LF");
    p->pos++;
    p->result->consumed = p->pos;
    return PROXY_OK;
}

/* "UNKNOWN" then either CRLF or a space and anything printable up to CRLF. */
static enum proxy_status v1_parse_unknown(struct v1_parser *p, uint8_t terminator)
{
    p->result->family = PROXY_FAMILY_UNSPEC;
    p->result->transport = 0;
    if (terminator == '\r')
        return v1_expect_lf(p);
    for (; p->pos < p->avail; p->pos++) {
        uint8_t c = p->buf[p->pos];
        if (c == '\r') {
            p->pos++;
            return v1_expect_lf(p);
        }
        if (c < 0x20 || c > 0x7E)
            return proxy_fail(p->result, "v1 header: invalid character 0x%02x after UNKNOWN", c);
    }
    return v1_out_of_bytes(p);
}

/* The protocol word: must stay a prefix of TCP4, TCP6 or UNKNOWN while it is read. */
static enum proxy_status v1_read_protocol(struct v1_parser *p, char word[8], uint8_t *terminator)
{
    static const char *const words[] = {"TCP4", "TCP6", "UNKNOWN"};
    size_t n = 0;
    for (; p->pos < p->avail; p->pos++) {
        uint8_t c = p->buf[p->pos];
        if (c == ' ' || c == '\r') {
            word[n] = '\0';
            for (size_t w = 0; w < 3; w++) {
                if (strcmp(word, words[w]) == 0) {
                    *terminator = c;
                    p->pos++;
                    return PROXY_OK;
                }
            }
            return proxy_fail(p->result, "v1 header: unknown protocol \"%s\"", word);
        }
        bool prefix_ok = false;
        for (size_t w = 0; w < 3; w++) /* n < strlen: a NUL byte never matches the end */
            prefix_ok = prefix_ok || (n < strlen(words[w]) && strncmp(word, words[w], n) == 0 &&
                                      (uint8_t)words[w][n] == c);
        if (!prefix_ok)
            return proxy_fail(p->result, "v1 header: protocol must be TCP4, TCP6 or UNKNOWN");
        word[n++] = (char)c;
    }
    return v1_out_of_bytes(p);
}

/* "SRC DST SPORT DPORT\r\n" after "TCP4 " or "TCP6 ". */
static enum proxy_status v1_parse_tcp(struct v1_parser *p, enum proxy_family family)
{
    struct proxy_result *r = p->result;
    bool (*allowed)(uint8_t) = family == PROXY_FAMILY_INET ? v1_is_ipv4_char : v1_is_ipv6_char;
    size_t max = family == PROXY_FAMILY_INET ? V1_IPV4_MAX : V1_IPV6_MAX;
    const char *fam_name = family == PROXY_FAMILY_INET ? "TCP4" : "TCP6";
    char field[V1_IPV6_MAX + 1];
    enum proxy_status st;

    r->family = family;
    r->transport = 1;
    if ((st = v1_read_field(p, allowed, max, ' ', "source address", field)) != PROXY_OK)
        return st;
    if (!v1_store_address(field, family, r->src_addr, sizeof r->src_addr))
        return proxy_fail(r, "v1 header: bad %s source address", fam_name);
    if ((st = v1_read_field(p, allowed, max, ' ', "destination address", field)) != PROXY_OK)
        return st;
    if (!v1_store_address(field, family, r->dst_addr, sizeof r->dst_addr))
        return proxy_fail(r, "v1 header: bad %s destination address", fam_name);
    if ((st = v1_read_field(p, v1_is_digit, V1_PORT_MAX, ' ', "source port", field)) != PROXY_OK)
        return st;
    if (!v1_parse_port(field, &r->src_port))
        return proxy_fail(r, "v1 header: bad source port");
    st = v1_read_field(p, v1_is_digit, V1_PORT_MAX, '\r', "destination port", field);
    if (st != PROXY_OK)
        return st;
    if (!v1_parse_port(field, &r->dst_port))
        return proxy_fail(r, "v1 header: bad destination port");
    return v1_expect_lf(p);
}

static enum proxy_status proxy_parse_v1(const uint8_t *buf, size_t len, struct proxy_result *r)
{
    struct v1_parser p = {
        .buf = buf,
        .avail = len < PROXY_V1_MAX_LEN ? len : PROXY_V1_MAX_LEN,
        .window_full = len >= PROXY_V1_MAX_LEN,
        .result = r,
    };
    size_t prefix_len = strlen(V1_PREFIX);
    size_t n = p.avail < prefix_len ? p.avail : prefix_len;
    if (memcmp(buf, V1_PREFIX, n) != 0)
        return proxy_fail(r, "not a PROXY protocol header");
    if (n < prefix_len)
        return PROXY_NEED_MORE;
    p.pos = prefix_len;
    r->version = 1;

    char word[8];
    uint8_t terminator = 0;
    enum proxy_status st = v1_read_protocol(&p, word, &terminator);
    if (st != PROXY_OK)
        return st;
    if (strcmp(word, "UNKNOWN") == 0)
        return v1_parse_unknown(&p, terminator);
    if (terminator != ' ')
        return proxy_fail(r, "v1 header: %s without addresses", word);
    return v1_parse_tcp(&p, word[3] == '4' ? PROXY_FAMILY_INET : PROXY_FAMILY_INET6);
}

/* ------------------------------------------------------------------------------------ */
/* v2: 12-byte signature, version/command, family/transport, length, body               */
/* ------------------------------------------------------------------------------------ */

/* A complete v2 header: `hdr` holds exactly `hdr_len` = 16 + declared length bytes. */
struct v2_header {
    const uint8_t *hdr;
    size_t hdr_len;
};

static uint16_t v2_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t v2_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Address block length for a family nibble (1..3). */
static size_t v2_address_block_len(unsigned family)
{
    switch (family) {
    case 1:
        return 12;
    case 2:
        return 36;
    case 3:
        return 2 * V2_UNIX_PATH_LEN;
    default:
        return 0;
    }
}

static enum proxy_status v2_decode_unix(const uint8_t *block, struct proxy_result *r)
{
    const uint8_t *src = block, *dst = block + V2_UNIX_PATH_LEN;
    const uint8_t *src_end = memchr(src, '\0', V2_UNIX_PATH_LEN);
    const uint8_t *dst_end = memchr(dst, '\0', V2_UNIX_PATH_LEN);
    if (!src_end || !dst_end)
        return proxy_fail(r, "v2 header: UNIX path not NUL-terminated");
    proxy_copy_text(r->src_addr, sizeof r->src_addr, src, (size_t)(src_end - src));
    proxy_copy_text(r->dst_addr, sizeof r->dst_addr, dst, (size_t)(dst_end - dst));
    return PROXY_OK;
}

/* Decodes the address block at hdr[16] for family nibble 1..3. */
static enum proxy_status v2_decode_addresses(const uint8_t *block, unsigned family,
                                             struct proxy_result *r)
{
    if (family == 3) {
        r->family = PROXY_FAMILY_UNIX;
        return v2_decode_unix(block, r);
    }
    int af = family == 1 ? AF_INET : AF_INET6;
    size_t addr_len = family == 1 ? 4 : 16;
    r->family = family == 1 ? PROXY_FAMILY_INET : PROXY_FAMILY_INET6;
    if (!inet_ntop(af, block, r->src_addr, sizeof r->src_addr) ||
        !inet_ntop(af, block + addr_len, r->dst_addr, sizeof r->dst_addr))
        return proxy_fail(r, "v2 header: cannot format address");
    r->src_port = v2_get16(block + 2 * addr_len);
    r->dst_port = v2_get16(block + 2 * addr_len + 2);
    return PROXY_OK;
}

/* CRC32C TLV at hdr[value_off]: the checksum of the whole header with those 4 bytes as
 * zeros must equal the value (network byte order). */
static enum proxy_status v2_check_crc(const struct v2_header *h, size_t value_off, size_t vlen,
                                      struct proxy_result *r)
{
    static const uint8_t zeros[4] = {0, 0, 0, 0};
    if (vlen != 4)
        return proxy_fail(r, "v2 header: CRC32C TLV length %zu, want 4", vlen);
    uint32_t crc = proxy_crc32c(0, h->hdr, value_off);
    crc = proxy_crc32c(crc, zeros, 4);
    crc = proxy_crc32c(crc, h->hdr + value_off + 4, h->hdr_len - value_off - 4);
    if (crc != v2_get32(h->hdr + value_off))
        return proxy_fail(r, "v2 header: CRC32C mismatch");
    r->crc32c_present = true;
    return PROXY_OK;
}

static enum proxy_status v2_walk_tlvs(const struct v2_header *h, size_t start, size_t end,
                                      bool ssl_sub, struct proxy_result *r);

/* PP2_TYPE_SSL: client byte, verify (uint32, network order), then sub-TLVs. */
static enum proxy_status v2_parse_ssl(const struct v2_header *h, size_t value_off, size_t vlen,
                                      struct proxy_result *r)
{
    if (vlen < 5)
        return proxy_fail(r, "v2 header: SSL TLV shorter than 5 bytes");
    const uint8_t *v = h->hdr + value_off;
    r->ssl_present = true;
    r->ssl_client = v[0];
    r->ssl_verify = v2_get32(v + 1);
    return v2_walk_tlvs(h, value_off + 5, value_off + vlen, true, r);
}

/* Records one SSL sub-TLV; unknown subtypes are skipped. */
static void v2_record_ssl_sub(uint8_t type, const uint8_t *v, size_t vlen, struct proxy_result *r)
{
    switch (type) {
    case PP2_SUBTYPE_SSL_VERSION:
        proxy_copy_text(r->ssl_version, sizeof r->ssl_version, v, vlen);
        break;
    case PP2_SUBTYPE_SSL_CN:
        proxy_copy_text(r->ssl_cn, sizeof r->ssl_cn, v, vlen);
        break;
    case PP2_SUBTYPE_SSL_CIPHER:
        proxy_copy_text(r->ssl_cipher, sizeof r->ssl_cipher, v, vlen);
        break;
    case PP2_SUBTYPE_SSL_SIG_ALG:
        proxy_copy_text(r->ssl_sig_alg, sizeof r->ssl_sig_alg, v, vlen);
        break;
    case PP2_SUBTYPE_SSL_KEY_ALG:
        proxy_copy_text(r->ssl_key_alg, sizeof r->ssl_key_alg, v, vlen);
        break;
    default:
        break;
    }
}

/* Records one top-level TLV whose value is hdr[value_off .. value_off + vlen). */
static enum proxy_status v2_record_tlv(const struct v2_header *h, uint8_t type, size_t value_off,
                                       size_t vlen, struct proxy_result *r)
{
    const uint8_t *v = h->hdr + value_off;
    switch (type) {
    case PP2_TYPE_ALPN:
        proxy_copy_text(r->alpn, sizeof r->alpn, v, vlen);
        return PROXY_OK;
    case PP2_TYPE_AUTHORITY:
        proxy_copy_text(r->authority, sizeof r->authority, v, vlen);
        return PROXY_OK;
    case PP2_TYPE_CRC32C:
        return v2_check_crc(h, value_off, vlen, r);
    case PP2_TYPE_UNIQUE_ID:
        if (vlen > sizeof r->unique_id)
            return proxy_fail(r, "v2 header: UNIQUE_ID TLV longer than %zu bytes",
                              sizeof r->unique_id);
        memcpy(r->unique_id, v, vlen);
        r->unique_id_len = vlen;
        return PROXY_OK;
    case PP2_TYPE_SSL:
        return v2_parse_ssl(h, value_off, vlen, r);
    case PP2_TYPE_NETNS:
        proxy_copy_text(r->netns, sizeof r->netns, v, vlen);
        return PROXY_OK;
    default: /* NOOP, custom, experimental, future and unknown types */
        return PROXY_OK;
    }
}

/* Walks the TLVs in hdr[start .. end), validating each length before use. `ssl_sub`
 * selects the SSL sub-TLV namespace. */
static enum proxy_status v2_walk_tlvs(const struct v2_header *h, size_t start, size_t end,
                                      bool ssl_sub, struct proxy_result *r)
{
    size_t pos = start;
    while (pos < end) {
        if (end - pos < TLV_HEADER_LEN)
            return proxy_fail(r, "v2 header: truncated %s header", ssl_sub ? "SSL sub-TLV" : "TLV");
        uint8_t type = h->hdr[pos];
        size_t vlen = v2_get16(h->hdr + pos + 1);
        if (vlen > end - pos - TLV_HEADER_LEN)
            return proxy_fail(r, "v2 header: %s 0x%02x overruns its container",
                              ssl_sub ? "SSL sub-TLV" : "TLV", type);
        size_t value_off = pos + TLV_HEADER_LEN;
        if (ssl_sub) {
            v2_record_ssl_sub(type, h->hdr + value_off, vlen, r);
        } else {
            enum proxy_status st = v2_record_tlv(h, type, value_off, vlen, r);
            if (st != PROXY_OK)
                return st;
        }
        pos = value_off + vlen;
    }
    return PROXY_OK;
}

/* Checks the 16-byte fixed part as far as it is present. PROXY_OK means all 16 bytes are
 * here and sane; *body_len is then the declared length. */
static enum proxy_status v2_check_fixed(const uint8_t *buf, size_t len, struct proxy_result *r,
                                        size_t *body_len)
{
    size_t n = len < V2_SIGNATURE_LEN ? len : V2_SIGNATURE_LEN;
    if (memcmp(buf, v2_signature, n) != 0)
        return proxy_fail(r, "not a PROXY protocol header");
    if (len <= V2_SIGNATURE_LEN)
        return PROXY_NEED_MORE;
    if ((buf[12] >> 4) != 2)
        return proxy_fail(r, "v2 header: unsupported version %u", buf[12] >> 4);
    if ((buf[12] & 0x0F) > 1)
        return proxy_fail(r, "v2 header: unknown command %u", buf[12] & 0x0F);
    if (len < 14)
        return PROXY_NEED_MORE;
    if ((buf[13] >> 4) > 3)
        return proxy_fail(r, "v2 header: unknown address family %u", buf[13] >> 4);
    if ((buf[13] & 0x0F) > 2)
        return proxy_fail(r, "v2 header: unknown transport %u", buf[13] & 0x0F);
    if (len < V2_FIXED_LEN)
        return PROXY_NEED_MORE;
    *body_len = v2_get16(buf + 14);
    bool is_proxy = (buf[12] & 0x0F) == 1;
    size_t need = v2_address_block_len(buf[13] >> 4);
    if (is_proxy && *body_len < need)
        return proxy_fail(r, "v2 header: length %zu too short for a %zu-byte address block",
                          *body_len, need);
    return PROXY_OK;
}

static enum proxy_status proxy_parse_v2(const uint8_t *buf, size_t len, struct proxy_result *r)
{
    size_t body_len = 0;
    enum proxy_status st = v2_check_fixed(buf, len, r, &body_len);
    if (st != PROXY_OK)
        return st;
    if (len < V2_FIXED_LEN + body_len)
        return PROXY_NEED_MORE;

    struct v2_header h = {.hdr = buf, .hdr_len = V2_FIXED_LEN + body_len};
    unsigned family = buf[13] >> 4, transport = buf[13] & 0x0F;
    r->version = 2;
    r->transport = (int)transport;
    r->family = PROXY_FAMILY_UNSPEC;
    if ((buf[12] & 0x0F) == 0) { /* LOCAL: a health check from the proxy itself */
        r->local = true;
        r->consumed = h.hdr_len;
        return PROXY_OK;
    }
    if (family == 0) { /* AF_UNSPEC: the receiver ignores the address information */
        r->consumed = h.hdr_len;
        return PROXY_OK;
    }
    size_t block = v2_address_block_len(family);
    if (transport != 0 && (st = v2_decode_addresses(buf + V2_FIXED_LEN, family, r)) != PROXY_OK)
        return st;
    st = v2_walk_tlvs(&h, V2_FIXED_LEN + block, h.hdr_len, false, r);
    if (st != PROXY_OK)
        return st;
    r->consumed = h.hdr_len;
    return PROXY_OK;
}

enum proxy_status proxy_parse(const uint8_t *buf, size_t len, struct proxy_result *result)
{
    memset(result, 0, sizeof *result);
    if (len == 0)
        return PROXY_NEED_MORE;
    if (buf[0] == 'P')
        return proxy_parse_v1(buf, len, result);
    if (buf[0] == v2_signature[0])
        return proxy_parse_v2(buf, len, result);
    return proxy_fail(result, "not a PROXY protocol header");
}
