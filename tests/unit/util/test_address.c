/*
 * test_address.c - unit tests for src/util/address.c: the strict split (moved from the
 * SMTP parser), unquoting as Exim's $local_part has it, quoting back, the lenient split
 * behind the variables, the duplicate key, and the path-safety test that keeps a local
 * part such as "/../../tmp/X" or "ceo/" out of a mailbox path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "postern/address.h"

static struct arena test_arena;

static int setup(void **state)
{
    (void)state;
    arena_init(&test_arena, 4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_reset(&test_arena);
    return 0;
}

static void test_split(void **state)
{
    (void)state;
    const char *local = NULL, *domain = NULL, *reason = NULL;
    assert_true(address_split(&test_arena, "user@example.com", &local, &domain, &reason));
    assert_string_equal(local, "user");
    assert_string_equal(domain, "example.com");
    assert_true(
        address_split(&test_arena, "first.last+tag@sub.example.co.uk", &local, &domain, &reason));
    assert_string_equal(local, "first.last+tag");
    assert_string_equal(domain, "sub.example.co.uk");
    assert_true(address_split(&test_arena, "\"@\"@x.y", &local, &domain, &reason));
    assert_string_equal(local, "\"@\"");
    assert_string_equal(domain, "x.y");
    assert_true(address_split(&test_arena, "\"\"@x.y", &local, &domain, &reason));
    assert_string_equal(local, "\"\"");
    assert_true(address_split(&test_arena, "postmaster", &local, &domain, &reason));
    assert_string_equal(local, "postmaster");
    assert_string_equal(domain, "");
    assert_true(address_split(&test_arena, "a@[192.0.2.1]", &local, &domain, &reason));
    assert_true(address_split(&test_arena, "a@[IPv6:2001:db8::1]", &local, &domain, &reason));

    static const char *const bad[] = {
        "",       "@x.y",  "a@",      "a b@c",   "a@b c", "a\"b@c", "\"a@b", "a@[300.1.1.1]",
        "a@b..c", "a\t@b", "a@b\x01", "a\x7f@b", "<a@b>", "a@b>",   "a@-b",  "a..b@c",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reason = NULL;
        if (address_split(&test_arena, bad[i], &local, &domain, &reason))
            fail_msg("\"%s\" accepted", bad[i]);
        assert_non_null(reason);
    }
    reason = NULL;
    assert_false(address_split(&test_arena, NULL, &local, &domain, &reason));
    assert_non_null(reason);
}

static void test_unquote_and_quote(void **state)
{
    (void)state;
    static const struct {
        const char *written, *unquoted, *canonical;
    } cases[] = {
        {"plain", "plain", "plain"},
        {"first.last", "first.last", "first.last"},
        {"\"ceo\"", "ceo", "ceo"},
        {"\"john doe\"", "john doe", "\"john doe\""},
        {"\"a\\\"b\"", "a\"b", "\"a\\\"b\""},
        {"\"a\\\\b\"", "a\\b", "\"a\\\\b\""},
        {"\"/../../../../../../tmp/X\"", "/../../../../../../tmp/X",
         "\"/../../../../../../tmp/X\""},
        {"\"ceo/\"", "ceo/", "ceo/"},
        {"\"\"", "", "\"\""},
        {"\"..\"", "..", "\"..\""},
        {"\"a.\"", "a.", "\"a.\""},
        {"\"\\c\"", "c", "c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *u = address_unquote(&test_arena, cases[i].written);
        if (strcmp(u, cases[i].unquoted) != 0)
            fail_msg("unquote(%s) = %s, want %s", cases[i].written, u, cases[i].unquoted);
        const char *q = address_quote(&test_arena, u);
        if (strcmp(q, cases[i].canonical) != 0)
            fail_msg("quote(%s) = %s, want %s", u, q, cases[i].canonical);
        assert_string_equal(address_unquote(&test_arena, q), u);
    }
}

static void test_lenient_parts_and_key(void **state)
{
    (void)state;
    assert_string_equal(address_local_part(&test_arena, "\"a@b\"@x.test"), "a@b");
    assert_string_equal(address_domain("\"a@b\"@x.test"), "x.test");
    assert_string_equal(address_local_part(&test_arena, "\"ceo\"@x"), "ceo");
    assert_string_equal(address_local_part(&test_arena, "postmaster"), "postmaster");
    assert_string_equal(address_domain("postmaster"), "");
    assert_string_equal(address_local_part(&test_arena, NULL), "");
    assert_string_equal(address_domain(NULL), "");
    assert_string_equal(address_key(&test_arena, "\"Ceo\"@X.Test"), "ceo@x.test");
    assert_string_equal(address_key(&test_arena, "ceo@x.test"), "ceo@x.test");
    assert_string_equal(address_key(&test_arena, "\"John Doe\"@x"), "\"john doe\"@x");
    assert_string_equal(address_key(&test_arena, "\"j\\ohn\"@x"), "john@x");
}

static void test_path_safety(void **state)
{
    (void)state;
    const char *reason = NULL;
    static const char *const safe[] = {"ceo",     "first.last", "a..b",  "...",
                                       ".hidden", "a b",        "x+tag", "a\\b"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (!address_component_path_safe(safe[i], &reason))
            fail_msg("\"%s\" refused: %s", safe[i], reason);
    static const struct {
        const char *component, *reason;
    } unsafe[] = {
        {"", "is empty"},
        {".", "is a relative directory name"},
        {"..", "is a relative directory name"},
        {"/../../../../../../tmp/X", "contains '/'"},
        {"ceo/", "contains '/'"},
        {"/ceo", "contains '/'"},
        {"ceo//", "contains '/'"},
        {"a/b", "contains '/'"},
    };
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        reason = NULL;
        if (address_component_path_safe(unsafe[i].component, &reason))
            fail_msg("\"%s\" accepted", unsafe[i].component);
        assert_string_equal(reason, unsafe[i].reason);
    }
    assert_false(address_component_path_safe(NULL, &reason));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unquote_and_quote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lenient_parts_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_safety, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
