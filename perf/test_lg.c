/*
 * test_lg.c - unit tests of the load generator's pure parts: the log-linear latency
 * histogram (bucket bounds, quantiles, merging) and the PROXY v1/v2 header builder
 * with its made-up client addresses. Single-threaded cmocka program.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_hist_index_is_monotonic_and_tight(void **state)
{
    (void)state;
    unsigned prev = 0;
    for (uint64_t v = 0; v < 5000000; v += 1 + v / 50) {
        unsigned idx = lg_hist_index(v);
        assert_true(idx >= prev);
        assert_true(idx < LG_HIST_BUCKETS);
        uint64_t low, high;
        lg_hist_bucket_range(idx, &low, &high);
        assert_true(low <= v && v <= high);
        /* relative width of a bucket stays under 1/64 */
        assert_true(high - low <= low / 64 + 1);
        prev = idx;
    }
    assert_int_equal(lg_hist_index(0), 0);
    assert_int_equal(lg_hist_index(127), 127);
    assert_int_equal(lg_hist_index(128), 128);
    assert_int_equal(lg_hist_index(UINT64_MAX), LG_HIST_BUCKETS - 1);
}

static void test_hist_quantiles_of_uniform_samples(void **state)
{
    (void)state;
    struct lg_hist h;
    lg_hist_init(&h);
    for (uint64_t v = 1; v <= 10000; v++)
        lg_hist_record(&h, v * 100); /* 100 us .. 1 s */
    assert_int_equal(h.total, 10000);
    assert_int_equal(h.min_us, 100);
    assert_int_equal(h.max_us, 1000000);
    uint64_t p50 = lg_hist_quantile(&h, 0.50);
    uint64_t p99 = lg_hist_quantile(&h, 0.99);
    uint64_t p999 = lg_hist_quantile(&h, 0.999);
    assert_true(p50 > 500000 * 0.98 && p50 < 500000 * 1.02);
    assert_true(p99 > 990000 * 0.98 && p99 < 990000 * 1.02);
    assert_true(p999 > 999000 * 0.98 && p999 <= 1000000);
    assert_int_equal(lg_hist_quantile(&h, 1.0), 1000000);
    assert_int_equal(lg_hist_quantile(&h, 0.0), 100);
    double mean = lg_hist_mean(&h);
    assert_true(mean > 500049 && mean < 500051);
}

static void test_hist_merge_and_outlier(void **state)
{
    (void)state;
    struct lg_hist a, b;
    lg_hist_init(&a);
    lg_hist_init(&b);
    for (int i = 0; i < 999; i++)
        lg_hist_record(&a, 1000);
    lg_hist_record(&b, 3000000); /* one stalled message: 3 s */
    lg_hist_merge(&a, &b);
    assert_int_equal(a.total, 1000);
    assert_int_equal(a.max_us, 3000000);
    assert_in_range(lg_hist_quantile(&a, 0.99), 1000, 1010);
    /* p99.9 of 1000 samples is the 999th: still 1 ms; the maximum shows the stall */
    assert_in_range(lg_hist_quantile(&a, 0.999), 1000, 1010);
    assert_true(lg_hist_quantile(&a, 0.9995) > 2900000);
    struct lg_hist empty;
    lg_hist_init(&empty);
    assert_int_equal(lg_hist_quantile(&empty, 0.5), 0);
}

static void addr4(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sin->sin_addr);
    sin->sin_port = htons((uint16_t)port);
}

static void test_proxy_v1_and_v2_bytes(void **state)
{
    (void)state;
    struct sockaddr_storage src, dst;
    addr4(&src, "198.18.0.7", 40000);
    addr4(&dst, "127.0.0.1", 2526);
    unsigned char out[232];
    size_t n = lg_proxy_build(LG_PROXY_V1, &src, &dst, out, sizeof out);
    const char *want = "PROXY TCP4 198.18.0.7 127.0.0.1 40000 2526\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);

    n = lg_proxy_build(LG_PROXY_V2, &src, &dst, out, sizeof out);
    static const unsigned char want2[28] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11,
        0x00, 0x0C, 198,  18,   0,    7,    127,  0,    0,    1,    0x9C, 0x40, 0x09, 0xDE};
    assert_int_equal(n, sizeof want2);
    assert_memory_equal(out, want2, n);
    /* too small a buffer, or mixed families: nothing */
    assert_int_equal(lg_proxy_build(LG_PROXY_V2, &src, &dst, out, 20), 0);
    struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&dst;
    memset(&dst, 0, sizeof dst);
    d6->sin6_family = AF_INET6;
    d6->sin6_addr = in6addr_loopback;
    assert_int_equal(lg_proxy_build(LG_PROXY_V1, &src, &dst, out, sizeof out), 0);
}

static void test_proxy_v6_header(void **state)
{
    (void)state;
    struct lg_cidr cidr;
    char err[128];
    assert_true(lg_cidr_parse("2001:db8::/32", &cidr, err, sizeof err));
    struct sockaddr_storage src, dst;
    lg_cidr_nth(&cidr, 5, &src);
    memset(&dst, 0, sizeof dst);
    struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&dst;
    d6->sin6_family = AF_INET6;
    d6->sin6_addr = in6addr_loopback;
    d6->sin6_port = htons(25);
    unsigned char out[232];
    size_t n = lg_proxy_build(LG_PROXY_V1, &src, &dst, out, sizeof out);
    out[n] = '\0';
    assert_string_equal((char *)out, "PROXY TCP6 2001:db8::5 ::1 1029 25\r\n");
    n = lg_proxy_build(LG_PROXY_V2, &src, &dst, out, sizeof out);
    assert_int_equal(n, 16 + 36);
    assert_int_equal(out[13], 0x21);
    assert_int_equal(out[15], 36);
}

static void test_cidr_rotation_and_errors(void **state)
{
    (void)state;
    struct lg_cidr cidr;
    char err[128];
    assert_true(lg_cidr_parse("198.18.0.0/15", &cidr, err, sizeof err));
    struct sockaddr_storage ss;
    char text[64];
    lg_cidr_nth(&cidr, 256 + 3, &ss);
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text);
    assert_string_equal(text, "198.18.1.3");
    lg_cidr_nth(&cidr, 131072 + 1, &ss); /* wraps around the /15 */
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text);
    assert_string_equal(text, "198.18.0.1");
    assert_true(lg_cidr_parse("10.9.8.7/8", &cidr, err, sizeof err));
    lg_cidr_nth(&cidr, 0x010203, &ss); /* host bits of the base are cleared */
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text);
    assert_string_equal(text, "10.1.2.3");
    assert_false(lg_cidr_parse("10.0.0.0/33", &cidr, err, sizeof err));
    assert_false(lg_cidr_parse("example.com/8", &cidr, err, sizeof err));
    assert_false(lg_cidr_parse("10.0.0.0/", &cidr, err, sizeof err));
    assert_true(strlen(err) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_index_is_monotonic_and_tight),
        cmocka_unit_test(test_hist_quantiles_of_uniform_samples),
        cmocka_unit_test(test_hist_merge_and_outlier),
        cmocka_unit_test(test_proxy_v1_and_v2_bytes),
        cmocka_unit_test(test_proxy_v6_header),
        cmocka_unit_test(test_cidr_rotation_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
