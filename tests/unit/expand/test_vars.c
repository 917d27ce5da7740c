/*
 * test_vars.c - the variable registry (include/postern/vars.h): every table is sorted with a
 * getter for each name (so binary search finds every entry), lookups go exact name, then
 * prefix family, then the chained tables, and the lifetimes the tables declare.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "postern/deliver.h"
#include "postern/expand.h"
#include "postern/session.h"
#include "postern/vars.h"

#include <string.h>

static const struct var_table *const all_tables[] = {
    &expand_builtin_vars,
    &expand_peer_vars,
    &session_var_table,
    &deliver_var_table,
};

static void test_tables_sorted_and_complete(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof all_tables / sizeof all_tables[0]; i++) {
        const char *why = NULL;
        if (!var_table_check(all_tables[i], &why))
            fail_msg("table \"%s\": %s", all_tables[i]->context, why);
        /* every entry is found by the binary search, as itself */
        for (size_t j = 0; j < all_tables[i]->count; j++)
            assert_ptr_equal(var_table_find(all_tables[i], all_tables[i]->defs[j].name),
                             &all_tables[i]->defs[j]);
    }
}

static void test_find_exact_prefix_chain(void **state)
{
    (void)state;
    const struct var_def *d = var_table_find(&session_var_table, "sender_host_address");
    assert_non_null(d);
    assert_int_equal(d->lifetime, VAR_CONNECTION);
    d = var_table_find(&session_var_table, "acl_m_flag"); /* prefix family */
    assert_non_null(d);
    assert_string_equal(d->name, "acl_m");
    assert_int_equal(d->lifetime, VAR_MESSAGE);
    assert_int_equal(var_table_find(&session_var_table, "acl_c0")->lifetime, VAR_CONNECTION);
    assert_int_equal(var_table_find(&session_var_table, "smtp_command")->lifetime, VAR_COMMAND);
    d = var_table_find(&session_var_table, "primary_hostname"); /* chained built-in */
    assert_ptr_equal(d, var_table_find(&expand_builtin_vars, "primary_hostname"));
    assert_int_equal(d->lifetime, VAR_SNAPSHOT);
    assert_int_equal(var_table_find(&deliver_var_table, "local_part")->lifetime, VAR_DELIVERY);
    assert_null(var_table_find(&deliver_var_table, "acl_c0")); /* not kept in the spool */
    assert_null(var_table_find(&session_var_table, "router_name"));
    assert_null(var_table_find(&session_var_table, "no_such_var"));
    assert_null(var_table_find(&session_var_table, ""));
    assert_null(var_table_find(&expand_peer_vars, "sender_host_name"));
    assert_string_equal(var_lifetime_name(VAR_DELIVERY), "delivery");
}

static void test_getters(void **state)
{
    (void)state;
    struct arena arena;
    arena_init(&arena, 1024);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, NULL, NULL, (void *)"192.0.2.7");
    assert_string_equal(var_table_get(&expand_peer_vars, &ctx, "sender_host_address"), "192.0.2.7");
    assert_string_equal(var_table_get(&expand_peer_vars, &ctx, "primary_hostname"), "localhost");
    assert_null(var_table_get(&expand_peer_vars, &ctx, "local_part"));
    /* the engine resolves through the table the context names */
    expand_ctx_init(&ctx, &arena, NULL, NULL, NULL);
    const char *out = NULL, *err = NULL;
    assert_int_equal(expand_string(&ctx, "${tod_epoch}", &out, &err), EXPAND_OK);
    assert_true(strlen(out) >= 10);
    assert_int_equal(expand_string(&ctx, "$tod_nonsense", &out, &err), EXPAND_FAIL);
    arena_reset(&arena);
}

/* The load-time checker honours the table and the lifetimes it is given. */
static void test_check_tables_and_lifetimes(void **state)
{
    (void)state;
    struct arena arena;
    arena_init(&arena, 1024);
    const char *err = NULL;
    struct expand_check smtp = {.vars = &session_var_table, .where = "an ACL"};
    assert_true(expand_check("$local_part ${sender_address} $acl_m9 $tod_log $value $3", &smtp,
                             &arena, &err));
    assert_false(expand_check("$router_name", &smtp, &arena, &err));
    assert_string_equal(err, "unknown variable name \"$router_name\" in an ACL");
    struct expand_check banner = {.vars = &session_var_table,
                                  .lifetimes = VAR_LIFETIME_BIT(VAR_SNAPSHOT) |
                                               VAR_LIFETIME_BIT(VAR_CONNECTION),
                                  .where = "smtp_banner"};
    assert_true(expand_check("$primary_hostname $sender_host_address", &banner, &arena, &err));
    assert_false(expand_check("${if def:sender_address{x}}", &banner, &arena, &err));
    assert_string_equal(err, "variable \"$sender_address\" (message lifetime) is not available "
                             "in smtp_banner");
    struct expand_check deliver = {.vars = &deliver_var_table};
    assert_true(expand_check("$local_part $original_domain $acl_m_x", &deliver, &arena, &err));
    assert_false(expand_check("$acl_c_x", &deliver, &arena, &err));
    assert_true(expand_check_syntax("$anything_at_all", &arena, &err)); /* no table: any name */
    arena_reset(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_sorted_and_complete),
        cmocka_unit_test(test_find_exact_prefix_chain),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_check_tables_and_lifetimes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
