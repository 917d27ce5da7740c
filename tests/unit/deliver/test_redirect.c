/*
 * test_redirect.c - redirect_parse(): the non-filter redirection list syntax (separators,
 * comments, quotes, qualification, :blackhole:, :fail:, :defer:, refused items).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../../src/deliver/deliver_internal.h"

#include <string.h>

static struct arena arena;

static struct redirect_result parse_ok(const char *data)
{
    struct redirect_result rr;
    const char *err = NULL;
    if (!redirect_parse(&arena, data, "qualify.example", "incoming.example", &rr, &err))
        fail_msg("redirect_parse(%s) failed: %s", data, err);
    return rr;
}

static void test_list(void **state)
{
    (void)state;
    struct redirect_result rr =
        parse_ok("alice, bob@example.com\n# a comment, with commas\n \\carol ,\"dave@x.example\","
                 " # trailing comment\n Eve Example <eve@y.example>");
    assert_int_equal(rr.kind, REDIRECT_ADDRESSES);
    assert_int_equal(rr.count, 5);
    assert_string_equal(rr.addresses[0], "alice@qualify.example");
    assert_string_equal(rr.addresses[1], "bob@example.com");
    assert_string_equal(rr.addresses[2], "carol@incoming.example");
    assert_string_equal(rr.addresses[3], "dave@x.example");
    assert_string_equal(rr.addresses[4], "eve@y.example");
}

static void test_quoted_local_part(void **state)
{
    (void)state;
    struct redirect_result rr = parse_ok("\"a,b\"@example.com, c@example.com");
    assert_int_equal(rr.count, 2);
    assert_string_equal(rr.addresses[0], "\"a,b\"@example.com");
    assert_string_equal(rr.addresses[1], "c@example.com");
}

static void test_empty(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("").kind, REDIRECT_EMPTY);
    assert_int_equal(parse_ok("  \n# only a comment\n , ,").kind, REDIRECT_EMPTY);
}

static void test_specials(void **state)
{
    (void)state;
    struct redirect_result rr = parse_ok(":blackhole:");
    assert_int_equal(rr.kind, REDIRECT_BLACKHOLE);
    rr = parse_ok("a@b.example, :blackhole:");
    assert_int_equal(rr.kind, REDIRECT_BLACKHOLE);
    rr = parse_ok(":fail: Gone away, no forwarding address\nignored@x.example");
    assert_int_equal(rr.kind, REDIRECT_FAIL);
    assert_string_equal(rr.text, "Gone away, no forwarding address");
    rr = parse_ok("x@y.example, :defer:   busy, try later  ");
    assert_int_equal(rr.kind, REDIRECT_DEFER);
    assert_string_equal(rr.text, "busy, try later");
    rr = parse_ok(":fail:");
    assert_int_equal(rr.kind, REDIRECT_FAIL);
    assert_string_equal(rr.text, "");
}

static void expect_refused(const char *data, const char *fragment)
{
    struct redirect_result rr;
    const char *err = NULL;
    assert_false(redirect_parse(&arena, data, "q.example", "i.example", &rr, &err));
    assert_non_null(err);
    if (!strstr(err, fragment))
        fail_msg("error \"%s\" lacks \"%s\"", err, fragment);
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused("|/usr/bin/procmail", "pipe delivery is not supported");
    expect_refused("/var/mail/x", "file delivery is not supported");
    expect_refused(":include:/etc/lists/x", ":include: is not supported");
    expect_refused("a@b@c..example", "malformed address");
    expect_refused("\\", "empty address");
}

static int teardown(void **state)
{
    (void)state;
    arena_reset(&arena);
    return 0;
}

int main(void)
{
    arena_init(&arena, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_list, teardown),
        cmocka_unit_test_teardown(test_quoted_local_part, teardown),
        cmocka_unit_test_teardown(test_empty, teardown),
        cmocka_unit_test_teardown(test_specials, teardown),
        cmocka_unit_test_teardown(test_refused, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
