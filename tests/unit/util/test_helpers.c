/*
 * test_helpers.c - unit tests for the helpers that used to be written two or three times:
 * Exim integers and sizes, the path check, mkdir -p and write-all (fs.c), the RFC 2822
 * date, FNV-1a and the "address.port" split (misc.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "postern/util.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static void test_exim_integers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int base;
        int64_t value;
    } good[] = {
        {"0", 0, 0},         {"42", 0, 42},   {"-7", 0, -7},   {"0x10", 0, 16},
        {"010", 0, 8},       {"010", 10, 10}, {"2K", 0, 2048}, {"3m", 10, 3 << 20},
        {"1G", 10, 1 << 30}, {" 5 ", 10, 5},  {"+9", 10, 9},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        if (!parse_exim_integer(good[i].text, good[i].base, &v) || v != good[i].value)
            fail_msg("\"%s\" base %d: got %lld", good[i].text, good[i].base, (long long)v);
    }
    static const char *const bad[] = {
        "", " ", "x", "1x", "1KK", "0x", "-", "99999999999999999999", "9000000000G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (parse_exim_integer(bad[i], 0, &v))
            fail_msg("\"%s\" accepted", bad[i]);
    }
    int64_t size;
    assert_true(parse_size(" 10M ", &size));
    assert_int_equal(size, 10 << 20);
    assert_false(parse_size("-1", &size));
    assert_false(parse_size("", &size));
}

static void test_path_check(void **state)
{
    (void)state;
    const char *reason = NULL;
    static const char *const good[] = {"/", "/var/mail/ceo", "/var/mail/ceo/", "/a/.b/c..d/...",
                                       "/a b/c"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!fs_path_check(good[i], &reason))
            fail_msg("\"%s\" refused: %s", good[i], reason);
    static const char *const bad[] = {"",
                                      "relative/path",
                                      "/var/mail//ceo",
                                      "/var/mail/ceo//",
                                      "/var/mail/../../tmp/x",
                                      "/var/./mail",
                                      "/var/mail/..",
                                      "/var/mail/."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reason = NULL;
        if (fs_path_check(bad[i], &reason))
            fail_msg("\"%s\" accepted", bad[i]);
        assert_non_null(reason);
    }
}

static void test_mkdir_and_write(void **state)
{
    (void)state;
    char root[] = "/tmp/postern-util-XXXXXX";
    assert_non_null(mkdtemp(root));
    char deep[256], file[300];
    snprintf(deep, sizeof deep, "%s/a/b/c", root);
    assert_true(fs_mkdir_p(deep, 0700));
    assert_true(fs_mkdir_p(deep, 0700)); /* already there */
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_true(fs_sync_directory(deep));
    snprintf(file, sizeof file, "%s/f", deep);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_true(fs_write_all(fileno(f), "hello", 5));
    fclose(f);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_size, 5);
    char blocked[320];
    snprintf(blocked, sizeof blocked, "%s/below", file); /* a file in the way */
    assert_false(fs_mkdir_p(blocked, 0700));
    assert_false(fs_mkdir_p("", 0700));
    assert_false(fs_sync_directory("/nonexistent/postern"));
    assert_false(fs_write_all(-1, "x", 1));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

static void test_misc(void **state)
{
    (void)state;
    char date[64];
    setenv("TZ", "UTC", 1);
    time_rfc2822(date, sizeof date, 0);
    assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 +0000");
    time_rfc2822(date, 4, 0); /* too small: empty, not truncated */
    assert_string_equal(date, "");
    assert_int_equal(hash_fnv1a32(""), 2166136261u);
    assert_int_equal(hash_fnv1a32("a"), 0xe40c292cu);
    assert_true(hash_fnv1a64("") == 14695981039346656037ull);
    assert_true(hash_fnv1a64("a") == 0xaf63dc4c8601ec8cull);
    static const struct {
        const char *in, *address;
        int port;
    } ports[] = {
        {"1.2.3.4.25", "1.2.3.4", 25}, {"1.2.3.4", "1.2.3.4", 0},
        {"::1.2525", "::1", 2525},     {"::1", "::1", 0},
        {"localhost", "localhost", 0}, {"a.b.c", "a.b.c", 0},
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", ports[i].in);
        int port = ip_split_port(buf);
        if (port != ports[i].port || strcmp(buf, ports[i].address) != 0)
            fail_msg("\"%s\": \"%s\" port %d", ports[i].in, buf, port);
    }
}

/* Bare LFs become CRLF; CRLFs stay as they are. */
static void test_buf_append_crlf(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_append_crlf(&b, "\nA: 1\n\tmore\r\nB: 2\n");
    assert_string_equal(b.data, "\r\nA: 1\r\n\tmore\r\nB: 2\r\n");
    buf_free(&b);
}

/* Arena memory: usable exactly as asked for; under ASan the bytes after an allocation and
 * the chunk space not handed out are poisoned (so over-reads are reported), and a reset
 * leaves the arena usable. */
static void test_arena_bounds(void **state)
{
    (void)state;
    struct arena arena;
    arena_init(&arena, 256);
    char *a = arena_strdup(&arena, "abcde");
    char *b = arena_alloc(&arena, 1000); /* bigger than a chunk: a chunk of its own */
    memset(b, 'x', 1000);
    char *c = arena_strndup(&arena, "xyz", 3);
    assert_string_equal(a, "abcde");
    assert_string_equal(c, "xyz");
    assert_int_equal((uintptr_t)a % 16, 0);
    assert_int_equal((uintptr_t)b % 16, 0);
#ifdef TEST_ASAN
    assert_false(__asan_address_is_poisoned(a + 5)); /* the NUL */
    assert_true(__asan_address_is_poisoned(a + 6));  /* one past: red zone */
    assert_true(__asan_address_is_poisoned(b + 1000));
    assert_true(__asan_address_is_poisoned(c + 4));
#endif
    arena_reset(&arena);
    char *d = arena_strdup(&arena, "again");
    assert_string_equal(d, "again");
#ifdef TEST_ASAN
    assert_true(__asan_address_is_poisoned(d + 6));
#endif
    arena_reset(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exim_integers),
        cmocka_unit_test(test_path_check),
        cmocka_unit_test(test_mkdir_and_write),
        cmocka_unit_test(test_misc),
        cmocka_unit_test(test_buf_append_crlf),
        cmocka_unit_test(test_arena_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
