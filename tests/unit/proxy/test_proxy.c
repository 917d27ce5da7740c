/*
 * test_proxy.c - unit tests for proxy_parse() and proxy_crc32c(): every header form of
 * HAProxy's proxy-protocol.txt, the malformed variants, every split position of every
 * valid header (each prefix must ask for more, the whole must parse), and trailing bytes
 * (pipelined SMTP, a TLS ClientHello) that must not be consumed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "postern/proxy.h"

/* ---- helpers ---- */

static const uint8_t V2_SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char TRAIL_SMTP[] = "EHLO x\r\n";
static const uint8_t TRAIL_TLS[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03};

/* A v2 header under construction (heap: up to PROXY_V2_MAX_LEN bytes). */
struct v2_builder {
    uint8_t *buf;
    size_t len;
};

static struct v2_builder *v2_new(uint8_t ver_cmd, uint8_t fam)
{
    struct v2_builder *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->buf = calloc(1, PROXY_V2_MAX_LEN + 64);
    assert_non_null(b->buf);
    memcpy(b->buf, V2_SIG, 12);
    b->buf[12] = ver_cmd;
    b->buf[13] = fam;
    b->len = 16;
    return b;
}

static void v2_free(struct v2_builder *b)
{
    free(b->buf);
    free(b);
}

static void v2_put(struct v2_builder *b, const void *data, size_t n)
{
    memcpy(b->buf + b->len, data, n);
    b->len += n;
}

static void v2_put16(struct v2_builder *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    v2_put(b, x, 2);
}

static void v2_tlv(struct v2_builder *b, uint8_t type, const void *value, size_t n)
{
    v2_put(b, &type, 1);
    v2_put16(b, (uint16_t)n);
    if (n)
        v2_put(b, value, n);
}

/* Writes the declared length from the bytes put so far. */
static void v2_finish(struct v2_builder *b)
{
    b->buf[14] = (uint8_t)((b->len - 16) >> 8);
    b->buf[15] = (uint8_t)(b->len - 16);
}

/* Appends a CRC32C TLV (last), finishes, and fills in the checksum. */
static void v2_finish_crc(struct v2_builder *b)
{
    static const uint8_t zero[4] = {0};
    v2_tlv(b, 0x03, zero, 4);
    v2_finish(b);
    uint32_t crc = proxy_crc32c(0, b->buf, b->len);
    uint8_t *p = b->buf + b->len - 4;
    p[0] = (uint8_t)(crc >> 24);
    p[1] = (uint8_t)(crc >> 16);
    p[2] = (uint8_t)(crc >> 8);
    p[3] = (uint8_t)crc;
}

static void v2_put_inet(struct v2_builder *b, const uint8_t src[4], const uint8_t dst[4],
                        uint16_t sport, uint16_t dport)
{
    v2_put(b, src, 4);
    v2_put(b, dst, 4);
    v2_put16(b, sport);
    v2_put16(b, dport);
}

static enum proxy_status parse_str(const char *s, struct proxy_result *r)
{
    return proxy_parse((const uint8_t *)s, strlen(s), r);
}

/* Feeds `hdr` at every split position (each proper prefix must be NEED_MORE), whole
 * (PROXY_OK, consumed == len), and followed by trailing bytes (same result). The whole-
 * header result is left in *out. */
static void check_all_splits(const uint8_t *hdr, size_t len, struct proxy_result *out)
{
    struct proxy_result r;
    for (size_t i = 0; i < len; i++) {
        enum proxy_status st = proxy_parse(hdr, i, &r);
        if (st != PROXY_NEED_MORE)
            fail_msg("prefix of %zu/%zu bytes: status %d (%s)", i, len, st, r.reason);
    }
    assert_int_equal(proxy_parse(hdr, len, out), PROXY_OK);
    assert_int_equal(out->consumed, len);

    uint8_t *more = malloc(len + 64);
    assert_non_null(more);
    const void *trails[2] = {TRAIL_SMTP, TRAIL_TLS};
    size_t trail_lens[2] = {strlen(TRAIL_SMTP), sizeof TRAIL_TLS};
    for (int t = 0; t < 2; t++) {
        memcpy(more, hdr, len);
        memcpy(more + len, trails[t], trail_lens[t]);
        assert_int_equal(proxy_parse(more, len + trail_lens[t], &r), PROXY_OK);
        assert_int_equal(r.consumed, len);
        assert_int_equal(r.family, out->family);
        assert_string_equal(r.src_addr, out->src_addr);
        assert_string_equal(r.dst_addr, out->dst_addr);
        assert_int_equal(r.src_port, out->src_port);
        assert_int_equal(r.dst_port, out->dst_port);
        assert_int_equal(r.local, out->local);
    }
    free(more);
}

static void check_v1_ok(const char *line, struct proxy_result *out)
{
    check_all_splits((const uint8_t *)line, strlen(line), out);
    assert_int_equal(out->version, 1);
    assert_false(out->local);
}

/* The line must be refused, and no prefix of it may be accepted as complete. */
static void check_v1_error(const char *line, const char *reason_part)
{
    struct proxy_result r;
    enum proxy_status st = parse_str(line, &r);
    if (st != PROXY_ERROR)
        fail_msg("\"%s\": status %d, want PROXY_ERROR", line, st);
    assert_non_null(strstr(r.reason, reason_part));
    for (size_t i = 0; i < strlen(line); i++)
        assert_int_not_equal(proxy_parse((const uint8_t *)line, i, &r), PROXY_OK);
}

/* ---- CRC32C ---- */

static void test_crc32c_vector(void **state)
{
    (void)state;
    assert_int_equal(proxy_crc32c(0, (const uint8_t *)"123456789", 9), 0xE3069283u);
    assert_int_equal(proxy_crc32c(0, NULL, 0), 0);
    /* chaining over a split gives the same answer */
    uint32_t c = proxy_crc32c(0, (const uint8_t *)"1234", 4);
    assert_int_equal(proxy_crc32c(c, (const uint8_t *)"56789", 5), 0xE3069283u);
    /* RFC 3720 B.4: 32 bytes of zeros */
    uint8_t zeros[32] = {0};
    assert_int_equal(proxy_crc32c(0, zeros, 32), 0x8A9136AAu);
}

/* ---- v1 valid ---- */

static void test_v1_tcp4(void **state)
{
    (void)state;
    struct proxy_result r;
    check_v1_ok("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", &r);
    assert_int_equal(r.family, PROXY_FAMILY_INET);
    assert_int_equal(r.transport, 1);
    assert_string_equal(r.src_addr, "192.168.0.1");
    assert_string_equal(r.dst_addr, "192.168.0.11");
    assert_int_equal(r.src_port, 56324);
    assert_int_equal(r.dst_port, 443);

    check_v1_ok("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n", &r);
    assert_string_equal(r.src_addr, "255.255.255.255");
    assert_string_equal(r.dst_addr, "0.0.0.0");
    assert_int_equal(r.src_port, 65535);
    assert_int_equal(r.dst_port, 0);
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    struct proxy_result r;
    check_v1_ok("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 1234 25\r\n", &r);
    assert_int_equal(r.family, PROXY_FAMILY_INET6);
    assert_string_equal(r.src_addr, "2001:db8::1"); /* RFC 5952 form */
    assert_string_equal(r.dst_addr, "::1");
    assert_int_equal(r.src_port, 1234);
    assert_int_equal(r.dst_port, 25);

    check_v1_ok("PROXY TCP6 ::ffff:192.0.2.1 fe80::1 1 2\r\n", &r);
    assert_string_equal(r.src_addr, "::ffff:192.0.2.1");
    assert_string_equal(r.dst_addr, "fe80::1");

    /* the longest legal TCP6 line: 104 bytes */
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(longest), 104);
    check_v1_ok(longest, &r);
    assert_string_equal(r.dst_addr, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

static void test_v1_unknown(void **state)
{
    (void)state;
    struct proxy_result r;
    check_v1_ok("PROXY UNKNOWN\r\n", &r);
    assert_int_equal(r.family, PROXY_FAMILY_UNSPEC);
    assert_int_equal(r.consumed, 15);
    assert_string_equal(r.src_addr, "");

    check_v1_ok("PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n", &r);
    assert_int_equal(r.family, PROXY_FAMILY_UNSPEC);
    assert_string_equal(r.src_addr, ""); /* addresses after UNKNOWN are ignored */

    /* the worst case of the spec: exactly 107 bytes */
    const char *worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(worst), PROXY_V1_MAX_LEN);
    check_v1_ok(worst, &r);
    assert_int_equal(r.consumed, PROXY_V1_MAX_LEN);
}

/* ---- v1 invalid ---- */

static void test_v1_bad_addresses(void **state)
{
    (void)state;
    check_v1_error("PROXY TCP4 192.168.0.256 1.2.3.4 1 2\r\n", "bad TCP4 source address");
    check_v1_error("PROXY TCP4 1.2.3.4 1.2.3 1 2\r\n", "bad TCP4 destination address");
    check_v1_error("PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "source address");
    check_v1_error("PROXY TCP4 1.2.3.4 1.2.3.4.5 1 2\r\n", "destination address");
    check_v1_error("PROXY TCP4 1..3.4 1.2.3.4 1 2\r\n", "source address");
    check_v1_error("PROXY TCP4 1.2.3.4 1.2.3.4567 1 2\r\n", "destination address");
    check_v1_error("PROXY TCP6 ::1::2 ::1 1 2\r\n", "bad TCP6 source address");
    check_v1_error("PROXY TCP6 ::1 gggg::1 1 2\r\n", "invalid character");
}

static void test_v1_family_mismatch(void **state)
{
    (void)state;
    check_v1_error("PROXY TCP4 ::1 ::1 1 2\r\n", "invalid character 0x3a in source address");
    check_v1_error("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "bad TCP6 source address");
    check_v1_error("PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "destination address");
}

static void test_v1_bad_ports(void **state)
{
    (void)state;
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n", "bad source port");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 25 99999\r\n", "bad destination port");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 025 25\r\n", "bad source port");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 +25 25\r\n", "invalid character");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 -1 25\r\n", "invalid character");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 100000 25\r\n", "source port too long");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 25 2x\r\n", "invalid character");
}

static void test_v1_bad_framing(void **state)
{
    (void)state;
    struct proxy_result r;
    /* missing CRLF / bare LF / bare CR */
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "invalid character 0x0a");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not followed by LF");
    check_v1_error("PROXY UNKNOWN\rX", "CR not followed by LF");
    check_v1_error("PROXY UNKNOWN foo\n", "invalid character 0x0a");
    /* double and trailing spaces, missing fields */
    check_v1_error("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol");
    check_v1_error("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "empty source address");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", "empty source port");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "unexpected space");
    check_v1_error("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "premature end of line");
    check_v1_error("PROXY TCP4\r\n", "without addresses");
    /* lower case, wrong protocol words */
    check_v1_error("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header");
    check_v1_error("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol must be");
    check_v1_error("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "protocol must be");
    check_v1_error("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol must be");
    check_v1_error("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol");
    check_v1_error("PROXY UNKNOWNX\r\n", "protocol must be");
    check_v1_error("PROXY UNKNOWN \x01\r\n", "invalid character 0x01");
    check_v1_error("PROXY\r\n", "not a PROXY protocol header");
    /* fuzzer find: a NUL right after a complete protocol word must not match its end */
    static const char nul_after[] = "PROXY TCP4\0\x7f.&22\n";
    assert_int_equal(proxy_parse((const uint8_t *)nul_after, sizeof nul_after - 1, &r),
                     PROXY_ERROR);
    assert_non_null(strstr(r.reason, "protocol must be"));
    check_v1_error("PROXX TCP4", "not a PROXY protocol header");
}

static void test_v1_overlong(void **state)
{
    (void)state;
    struct proxy_result r;
    char line[300];
    /* UNKNOWN with 107 bytes and no CRLF: refused at exactly 107 bytes */
    memset(line, 'a', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    for (size_t i = 0; i < PROXY_V1_MAX_LEN; i++)
        assert_int_equal(proxy_parse((const uint8_t *)line, i, &r), PROXY_NEED_MORE);
    assert_int_equal(proxy_parse((const uint8_t *)line, PROXY_V1_MAX_LEN, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "no CRLF within 107 bytes"));
    assert_int_equal(proxy_parse((const uint8_t *)line, sizeof line, &r), PROXY_ERROR);
    /* a CRLF at byte 108 comes too late */
    memcpy(line + 106, "\r\n", 2);
    assert_int_equal(proxy_parse((const uint8_t *)line, 108, &r), PROXY_ERROR);
    /* a CRLF ending at byte 107 is fine */
    memcpy(line + 105, "\r\n", 2);
    assert_int_equal(proxy_parse((const uint8_t *)line, 200, &r), PROXY_OK);
    assert_int_equal(r.consumed, 107);
    /* an address field that cannot be an address any more */
    check_v1_error("PROXY TCP4 1111111111111111 1.2.3.4 1 2\r\n", "source address too long");
}

static void test_not_proxy(void **state)
{
    (void)state;
    struct proxy_result r;
    assert_int_equal(proxy_parse((const uint8_t *)"", 0, &r), PROXY_NEED_MORE);
    assert_int_equal(parse_str("EHLO x\r\n", &r), PROXY_ERROR);
    assert_string_equal(r.reason, "not a PROXY protocol header");
    assert_int_equal(proxy_parse(TRAIL_TLS, sizeof TRAIL_TLS, &r), PROXY_ERROR);
    assert_int_equal(parse_str("GET / HTTP/1.0\r\n", &r), PROXY_ERROR);
    assert_int_equal(parse_str("\r\n\r\n", &r), PROXY_NEED_MORE); /* v2 signature prefix */
    assert_int_equal(parse_str("\r\nQUIT\r\n", &r), PROXY_ERROR);
    assert_int_equal(parse_str("P", &r), PROXY_NEED_MORE);
    assert_int_equal(parse_str("PROX", &r), PROXY_NEED_MORE);
}

/* ---- v2 valid ---- */

static const uint8_t IP_A[4] = {192, 0, 2, 1};
static const uint8_t IP_B[4] = {198, 51, 100, 7};

static void test_v2_inet(void **state)
{
    (void)state;
    struct proxy_result r;
    struct v2_builder *b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 40000, 25);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_int_equal(r.version, 2);
    assert_false(r.local);
    assert_int_equal(r.family, PROXY_FAMILY_INET);
    assert_int_equal(r.transport, 1);
    assert_string_equal(r.src_addr, "192.0.2.1");
    assert_string_equal(r.dst_addr, "198.51.100.7");
    assert_int_equal(r.src_port, 40000);
    assert_int_equal(r.dst_port, 25);
    assert_int_equal(r.consumed, 28);
    assert_false(r.crc32c_present);
    v2_free(b);

    /* UDP over IPv4 */
    b = v2_new(0x21, 0x12);
    v2_put_inet(b, IP_A, IP_B, 53, 5353);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_int_equal(r.transport, 2);
    assert_int_equal(r.dst_port, 5353);
    v2_free(b);
}

static void test_v2_inet6(void **state)
{
    (void)state;
    struct proxy_result r;
    uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    uint8_t dst[16] = {[10] = 0xff, [11] = 0xff, [12] = 10, [13] = 0, [14] = 0, [15] = 1};
    struct v2_builder *b = v2_new(0x21, 0x21);
    v2_put(b, src, 16);
    v2_put(b, dst, 16);
    v2_put16(b, 65535);
    v2_put16(b, 587);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_int_equal(r.family, PROXY_FAMILY_INET6);
    assert_string_equal(r.src_addr, "2001:db8::1");
    assert_string_equal(r.dst_addr, "::ffff:10.0.0.1");
    assert_int_equal(r.src_port, 65535);
    assert_int_equal(r.dst_port, 587);
    assert_int_equal(r.consumed, 16 + 36);
    v2_free(b);
}

static void test_v2_unix(void **state)
{
    (void)state;
    struct proxy_result r;
    uint8_t paths[216] = {0};
    strcpy((char *)paths, "/run/haproxy/front.sock");
    memset(paths + 108, 'x', 107); /* 107 bytes + NUL at the 108th: the longest path */
    struct v2_builder *b = v2_new(0x21, 0x31);
    v2_put(b, paths, sizeof paths);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_int_equal(r.family, PROXY_FAMILY_UNIX);
    assert_string_equal(r.src_addr, "/run/haproxy/front.sock");
    assert_int_equal(strlen(r.dst_addr), 107);
    assert_int_equal(r.src_port, 0);
    assert_int_equal(r.consumed, 16 + 216);
    v2_free(b);

    /* unterminated path */
    b = v2_new(0x21, 0x32);
    memset(paths, 'y', 108);
    v2_put(b, paths, sizeof paths);
    v2_finish(b);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "not NUL-terminated"));
    v2_free(b);

    /* control bytes in a path are neutralised */
    b = v2_new(0x21, 0x31);
    memset(paths, 0, sizeof paths);
    strcpy((char *)paths, "/a\nb");
    v2_put(b, paths, sizeof paths);
    v2_finish(b);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_OK);
    assert_string_equal(r.src_addr, "/a?b");
    assert_string_equal(r.dst_addr, "");
    v2_free(b);
}

static void test_v2_unspec_and_local(void **state)
{
    (void)state;
    struct proxy_result r;

    /* LOCAL, no body */
    struct v2_builder *b = v2_new(0x20, 0x00);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_true(r.local);
    assert_int_equal(r.family, PROXY_FAMILY_UNSPEC);
    assert_int_equal(r.consumed, 16);
    v2_free(b);

    /* LOCAL with an address block and junk: ignored, but all of it consumed */
    b = v2_new(0x20, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_put(b, "\xff\xff\xff", 3); /* would be an overrunning TLV */
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_true(r.local);
    assert_string_equal(r.src_addr, "");
    assert_int_equal(r.consumed, 16 + 15);
    v2_free(b);

    /* LOCAL with a length shorter than the family's block is still fine */
    b = v2_new(0x20, 0x21);
    v2_put(b, "ab", 2);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_true(r.local);
    v2_free(b);

    /* PROXY with AF_UNSPEC: addresses ignored, length consumed */
    b = v2_new(0x21, 0x00);
    v2_put(b, "some opaque bytes", 17);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_false(r.local);
    assert_int_equal(r.family, PROXY_FAMILY_UNSPEC);
    assert_int_equal(r.consumed, 33);
    v2_free(b);

    /* INET with transport UNSPEC: addresses not reported, TLVs still read */
    b = v2_new(0x21, 0x10);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x02, "mx.example", 10);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_int_equal(r.family, PROXY_FAMILY_UNSPEC);
    assert_int_equal(r.transport, 0);
    assert_string_equal(r.src_addr, "");
    assert_string_equal(r.authority, "mx.example");
    v2_free(b);
}

static void test_v2_tlvs(void **state)
{
    (void)state;
    struct proxy_result r;
    uint8_t uid[128];
    for (size_t i = 0; i < sizeof uid; i++)
        uid[i] = (uint8_t)(i * 7);
    struct v2_builder *b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1000, 465);
    v2_tlv(b, 0x01, "smtp", 4);
    v2_tlv(b, 0x02, "mail.example.org", 16);
    v2_tlv(b, 0x04, "\0\0\0\0\0", 5); /* NOOP */
    v2_tlv(b, 0x04, NULL, 0);         /* empty NOOP */
    v2_tlv(b, 0x05, uid, sizeof uid);
    v2_tlv(b, 0x30, "blue", 4);
    v2_tlv(b, 0xE0, "custom", 6);
    v2_tlv(b, 0xEF, NULL, 0);
    v2_tlv(b, 0xF3, "experiment", 10);
    v2_tlv(b, 0xFF, "future", 6);
    v2_tlv(b, 0x99, "unknown", 7);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_string_equal(r.alpn, "smtp");
    assert_string_equal(r.authority, "mail.example.org");
    assert_int_equal(r.unique_id_len, 128);
    assert_memory_equal(r.unique_id, uid, 128);
    assert_string_equal(r.netns, "blue");
    assert_false(r.ssl_present);
    assert_string_equal(r.src_addr, "192.0.2.1");
    v2_free(b);
}

static void test_v2_ssl(void **state)
{
    (void)state;
    struct proxy_result r;
    struct v2_builder sub = {.buf = calloc(1, 1024), .len = 0};
    assert_non_null(sub.buf);
    uint8_t fixed[5] = {0x07, 0x00, 0x00, 0x00, 0x00}; /* SSL|CERT_CONN|CERT_SESS, verified */
    v2_put(&sub, fixed, 5);
    v2_tlv(&sub, 0x21, "TLSv1.3", 7);
    v2_tlv(&sub, 0x22, "client.example", 14);
    v2_tlv(&sub, 0x23, "TLS_AES_256_GCM_SHA384", 22);
    v2_tlv(&sub, 0x24, "RSA-SHA256", 10);
    v2_tlv(&sub, 0x25, "RSA2048", 7);
    v2_tlv(&sub, 0x7a, "skip", 4); /* unknown subtype */

    struct v2_builder *b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x20, sub.buf, sub.len);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_true(r.ssl_present);
    assert_int_equal(r.ssl_client, 7);
    assert_int_equal(r.ssl_verify, 0);
    assert_string_equal(r.ssl_version, "TLSv1.3");
    assert_string_equal(r.ssl_cn, "client.example");
    assert_string_equal(r.ssl_cipher, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(r.ssl_sig_alg, "RSA-SHA256");
    assert_string_equal(r.ssl_key_alg, "RSA2048");
    v2_free(b);

    /* verify is a big-endian uint32; a bare SSL TLV has no sub-TLVs */
    uint8_t bare[5] = {0x01, 0x00, 0x00, 0x01, 0x02};
    b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x20, bare, 5);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_int_equal(r.ssl_client, 1);
    assert_int_equal(r.ssl_verify, 0x102);
    assert_string_equal(r.ssl_cn, "");
    v2_free(b);

    /* SSL TLV shorter than its fixed part */
    b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x20, bare, 4);
    v2_finish(b);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "SSL TLV shorter"));
    v2_free(b);

    /* sub-TLV overrunning the SSL TLV (but not the header) */
    sub.len = 5;
    v2_tlv(&sub, 0x22, "abc", 3);
    sub.buf[sub.len - 4] = 9; /* claims 9 bytes, has 3 */
    b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x20, sub.buf, sub.len);
    v2_tlv(b, 0x04, "padding-padding", 15);
    v2_finish(b);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "SSL sub-TLV 0x22 overruns"));
    v2_free(b);
    free(sub.buf);
}

static void test_v2_crc32c(void **state)
{
    (void)state;
    struct proxy_result r;
    struct v2_builder *b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1234, 25);
    v2_tlv(b, 0x02, "example.net", 11);
    v2_finish_crc(b);
    check_all_splits(b->buf, b->len, &r);
    assert_true(r.crc32c_present);
    assert_string_equal(r.authority, "example.net");

    /* a flipped bit anywhere after the fixed part is caught (except in the CRC TLV's own
     * type byte: 0x03 ^ 0x20 is an unknown type, skipped, so nothing is checked) */
    for (size_t i = 16; i < b->len; i++) {
        if (i == b->len - 7)
            continue;
        b->buf[i] ^= 0x20;
        enum proxy_status st = proxy_parse(b->buf, b->len, &r);
        assert_int_equal(st, PROXY_ERROR);
        b->buf[i] ^= 0x20;
    }
    b->buf[b->len - 1] ^= 1;
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "CRC32C mismatch"));
    assert_false(r.crc32c_present);
    v2_free(b);

    /* CRC TLV with a wrong length */
    b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x03, "abc", 3);
    v2_finish(b);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "CRC32C TLV length 3"));
    v2_free(b);

    /* CRC in the middle, followed by other TLVs, also covers them */
    b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    static const uint8_t zero[4] = {0};
    v2_tlv(b, 0x03, zero, 4);
    size_t crc_at = b->len - 4;
    v2_tlv(b, 0x01, "h2", 2);
    v2_finish(b);
    uint32_t crc = proxy_crc32c(0, b->buf, b->len);
    for (int i = 0; i < 4; i++)
        b->buf[crc_at + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
    check_all_splits(b->buf, b->len, &r);
    assert_true(r.crc32c_present);
    assert_string_equal(r.alpn, "h2");
    b->buf[b->len - 1] = '3';
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    v2_free(b);
}

static void test_v2_long_strings(void **state)
{
    (void)state;
    struct proxy_result r;
    char big[1000];
    memset(big, 'a', sizeof big);
    struct v2_builder *b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x01, big, sizeof big);
    v2_tlv(b, 0x02, "x\0y\r\n", 5);
    v2_tlv(b, 0x30, big, 300);
    v2_finish(b);
    check_all_splits(b->buf, b->len, &r);
    assert_int_equal(strlen(r.alpn), sizeof r.alpn - 1); /* truncated */
    assert_string_equal(r.authority, "x?y??");           /* control bytes neutralised */
    assert_int_equal(strlen(r.netns), sizeof r.netns - 1);
    v2_free(b);

    /* UNIQUE_ID over 128 bytes is an error */
    b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x05, big, 129);
    v2_finish(b);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "UNIQUE_ID"));
    v2_free(b);
}

static void test_v2_maximum_length(void **state)
{
    (void)state;
    struct proxy_result r;
    struct v2_builder *b = v2_new(0x21, 0x21);
    uint8_t addrs[36] = {0};
    v2_put(b, addrs, sizeof addrs);
    size_t pad = 65535 - 36 - 3;
    uint8_t *noop = calloc(1, pad);
    assert_non_null(noop);
    v2_tlv(b, 0x04, noop, pad);
    free(noop);
    v2_finish(b);
    assert_int_equal(b->len, PROXY_V2_MAX_LEN);
    assert_int_equal(proxy_parse(b->buf, b->len - 1, &r), PROXY_NEED_MORE);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_OK);
    assert_int_equal(r.consumed, PROXY_V2_MAX_LEN);
    assert_string_equal(r.src_addr, "::");
    v2_free(b);
}

/* ---- v2 invalid ---- */

static void test_v2_bad_fixed_part(void **state)
{
    (void)state;
    struct proxy_result r;
    struct v2_builder *b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_finish(b);

    static const struct {
        size_t offset;
        uint8_t value;
        const char *reason;
    } cases[] = {
        {4, 0x01, "not a PROXY protocol header"}, {11, 0x0B, "not a PROXY protocol header"},
        {12, 0x11, "unsupported version 1"},      {12, 0x31, "unsupported version 3"},
        {12, 0x22, "unknown command 2"},          {12, 0x2F, "unknown command 15"},
        {13, 0x41, "unknown address family 4"},   {13, 0x13, "unknown transport 3"},
        {13, 0xF0, "unknown address family 15"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t saved = b->buf[cases[i].offset];
        b->buf[cases[i].offset] = cases[i].value;
        assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
        assert_non_null(strstr(r.reason, cases[i].reason));
        /* refused as soon as the bad byte is visible */
        assert_int_equal(proxy_parse(b->buf, cases[i].offset + 1, &r), PROXY_ERROR);
        b->buf[cases[i].offset] = saved;
    }
    v2_free(b);
}

static void test_v2_short_length_for_family(void **state)
{
    (void)state;
    struct proxy_result r;
    static const struct {
        uint8_t fam;
        size_t len;
    } cases[] = {{0x11, 11}, {0x12, 0}, {0x21, 35}, {0x22, 12}, {0x31, 215}, {0x32, 36}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct v2_builder *b = v2_new(0x21, cases[i].fam);
        uint8_t *zeros = calloc(1, cases[i].len + 1);
        assert_non_null(zeros);
        v2_put(b, zeros, cases[i].len);
        free(zeros);
        v2_finish(b);
        /* refused from the 16 fixed bytes alone, before the body arrives */
        assert_int_equal(proxy_parse(b->buf, 16, &r), PROXY_ERROR);
        assert_non_null(strstr(r.reason, "too short"));
        assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
        v2_free(b);
    }
}

static void test_v2_overrunning_tlv(void **state)
{
    (void)state;
    struct proxy_result r;
    /* a TLV whose length runs past the declared header length, though the buffer has
     * more bytes after it (which must not be read as part of the TLV) */
    struct v2_builder *b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_tlv(b, 0x02, "abcdef", 6);
    v2_finish(b);
    b->buf[b->len - 7] = 7; /* claims 7 bytes, header holds 6 */
    memcpy(b->buf + b->len, "EHLO x\r\n", 8);
    assert_int_equal(proxy_parse(b->buf, b->len + 8, &r), PROXY_ERROR);
    assert_non_null(strstr(r.reason, "TLV 0x02 overruns"));
    v2_free(b);

    /* 1 or 2 stray bytes after the last TLV: a truncated TLV header */
    for (size_t stray = 1; stray <= 2; stray++) {
        b = v2_new(0x21, 0x11);
        v2_put_inet(b, IP_A, IP_B, 1, 2);
        v2_put(b, "\x01\x00", stray);
        v2_finish(b);
        assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
        assert_non_null(strstr(r.reason, "truncated TLV"));
        v2_free(b);
    }

    /* a huge TLV length at the very end */
    b = v2_new(0x21, 0x11);
    v2_put_inet(b, IP_A, IP_B, 1, 2);
    v2_put(b, "\x20\xff\xff", 3);
    v2_finish(b);
    assert_int_equal(proxy_parse(b->buf, b->len, &r), PROXY_ERROR);
    v2_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vector),
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_bad_addresses),
        cmocka_unit_test(test_v1_family_mismatch),
        cmocka_unit_test(test_v1_bad_ports),
        cmocka_unit_test(test_v1_bad_framing),
        cmocka_unit_test(test_v1_overlong),
        cmocka_unit_test(test_not_proxy),
        cmocka_unit_test(test_v2_inet),
        cmocka_unit_test(test_v2_inet6),
        cmocka_unit_test(test_v2_unix),
        cmocka_unit_test(test_v2_unspec_and_local),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_ssl),
        cmocka_unit_test(test_v2_crc32c),
        cmocka_unit_test(test_v2_long_strings),
        cmocka_unit_test(test_v2_maximum_length),
        cmocka_unit_test(test_v2_bad_fixed_part),
        cmocka_unit_test(test_v2_short_length_for_family),
        cmocka_unit_test(test_v2_overrunning_tlv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
