/*
 * test_compile.c - acl_compile(): what is refused at startup, and the file:line it names.
 * Trees are built by hand (acl_test_env.h), so no config parser is involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acl_test_env.h"

static char err[512];

static bool compile(struct fake *f)
{
    err[0] = '\0';
    return acl_compile(&f->snap.config, err, sizeof err);
}

/* Compile must fail with an error containing `want`. */
static void expect_error(struct fake *f, const char *want)
{
    assert_false(compile(f));
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    assert_null(f->snap.config.acls);
}

static void test_default_style_acl_compiles(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "acl_check_rcpt");
    tree_stmtv(f, a, "accept", 2, "hosts", ":", NULL);
    tree_stmtv(f, a, "deny", 3, "message", "Restricted characters in address", "local_parts",
               "^[.] : ^.*[@%!/|]", NULL);
    tree_stmtv(f, a, "accept", 5, "domains", "+local_domains", NULL);
    tree_stmtv(f, a, "warn", 6, "set", "acl_m_flag = 1", "logwrite", "x $acl_m_flag", "add_header",
               "X-Test: yes", "control", "queue_only", "delay", "1s", "continue", "${lc:ABC}",
               NULL);
    tree_stmtv(f, a, "require", 7, "verify", "recipient", "verify", "sender", "verify", "helo",
               "acl", "other", "!authenticated", "*", "senders", ":", "condition", "yes", NULL);
    tree_stmtv(f, a, "deny", 8, "message", "relay not permitted", NULL);
    struct conf_acl *b = tree_acl(f, "other");
    tree_stmtv(f, b, "accept", 10, NULL);
    f->snap.config.acl_smtp_rcpt = "acl_check_rcpt";
    f->snap.config.acl_smtp_vrfy = "accept";
    f->snap.config.acl_smtp_data = "${if eq{1}{1}{other}{nothing}}"; /* known only at run time */
    assert_true(compile(f));
    assert_non_null(f->snap.config.acls);
    fake_free(f);
}

static void test_unknown_verb(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, NULL);
    tree_stmtv(f, a, "allow", 7, "hosts", "*", NULL);
    expect_error(f, "test.conf:7: unknown ACL verb \"allow\"");
    fake_free(f);
}

static void test_unknown_condition(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    struct conf_acl_stmt *s = tree_stmt(f, a, "deny", 4);
    tree_item(f, s, "hosts", "*");
    tree_item(f, s, "hostz", "*");
    expect_error(f, "test.conf:5: unknown ACL condition/modifier \"hostz\"");
    fake_free(f);
}

static void test_unsupported_conditions(void **state)
{
    const char *names[] = {"spf", "spf_guess", "dmarc_status", "dcc", "ratelimit", "dnslists"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        struct conf_acl_stmt *s = tree_stmt(f, tree_acl(f, "x"), "deny", 9);
        tree_item(f, s, names[i], "fail");
        char want[128];
        snprintf(want, sizeof want,
                 "test.conf:9: ACL condition \"%s\" is not supported in this build", names[i]);
        expect_error(f, want);
        fake_free(f);
    }
}

static void test_endpass_refused(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl_stmt *s = tree_stmt(f, tree_acl(f, "x"), "accept", 3);
    tree_item(f, s, "domains", "a.example");
    tree_item(f, s, "endpass", NULL);
    expect_error(f, "test.conf:4: ACL modifier \"endpass\" is obsolete");
    fake_free(f);
}

static void test_negated_modifier(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl_stmt *s = tree_stmt(f, tree_acl(f, "x"), "deny", 12);
    tree_item(f, s, "!message", "no");
    expect_error(f, "test.conf:12: negation is not allowed with ACL modifier \"message\"");
    fake_free(f);
}

static void test_negated_condition_is_fine(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl_stmt *s = tree_stmt(f, tree_acl(f, "x"), "deny", 12);
    tree_item(f, s, "!hosts", "1.2.3.4");
    tree_item(f, s, "!verify", "recipient");
    assert_true(compile(f));
    fake_free(f);
}

static void test_bad_expansion_syntax(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, "hosts", "*", NULL);
    tree_stmtv(f, a, "deny", 20, "condition", "${if eq{$a}{b}", NULL);
    expect_error(f, "test.conf:20: condition = ${if eq{$a}{b}");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "deny", 30, "message", "bad ${nosuchitem{x}}", NULL);
    expect_error(f, "test.conf:30: message = ");
    fake_free(f);
}

/* issue 7: an unknown $variable is refused at load, with file:line and the name. */
static void test_unknown_variable(void **state)
{
    static const struct {
        const char *item, *value, *want;
    } cases[] = {
        {"condition", "${if eq{$no_such_var}{x}}",
         "test.conf:40: condition = ${if eq{$no_such_var}"
         "{x}}: unknown variable name \"$no_such_var\""},
        {"logwrite", "x ${no_such_var} y", "unknown variable name \"$no_such_var\""},
        {"condition", "${if def:no_such_var}", "unknown variable name \"$no_such_var\""},
        {"set", "acl_m_x = $no_such_var", "test.conf:40: set = $no_such_var: unknown variable"},
        {"hosts", "$no_such_var", "test.conf:40: hosts = $no_such_var: unknown variable"},
        /* in a branch that is not taken at run time, too */
        {"condition", "${if eq{a}{b}{$no_such_var}}", "unknown variable name \"$no_such_var\""},
        /* $acl_verify_message belongs to message and log_message only */
        {"logwrite", "$acl_verify_message", "unknown variable name \"$acl_verify_message\""},
        /* a header variable family is not implemented: refused rather than empty */
        {"condition", "$h_subject:", "unknown variable name \"$h_subject\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        tree_stmtv(f, tree_acl(f, "x"), "warn", 40, cases[i].item, cases[i].value, NULL);
        expect_error(f, cases[i].want);
        fake_free(f);
    }
    /* every variable of an SMTP session, engine variables and prefix families are known */
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "logwrite",
               "$sender_host_address $local_part ${domain} $acl_c0 $acl_m_x $primary_hostname "
               "$tod_log $smtp_command $value $1 ${if def:sender_address}",
               "message", "$acl_verify_message", "log_message", "${acl_verify_message}", NULL);
    assert_true(compile(f));
    fake_free(f);
}

/* Constant regular expressions are compiled at load: once each, and a bad one is an error. */
static void test_constant_regexes(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "deny", 2, "local_parts", "^[.] : ^.*[@%!/|] : !\\N^\\d+$\\N", "condition",
               "${if match{$local_part}{\\N^\\d+$\\N}}", NULL);
    tree_stmtv(f, a, "deny", 3, "local_parts", "^[.]", NULL); /* same pattern */
    tree_stmtv(f, a, "deny", 4, "condition", "${if match{$domain}{$acl_m_re}}", NULL); /* at use */
    assert_true(compile(f));
    assert_int_equal(expand_regex_precompiled_count(&f->snap.config), 4);
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "deny", 50, "domains", "^(unclosed", NULL);
    expect_error(f, "test.conf:50: domains = ^(unclosed: regular expression error");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "deny", 51, "condition", "${if match{$domain}{a(?<=a+)}}",
               NULL);
    expect_error(f, "test.conf:51: condition = ${if match{$domain}{a(?<=a+)}}: match: regular");
    fake_free(f);
}

/* Named lists are checked too (they may use delivery or session variables). */
static void test_named_lists_checked(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_named_list bad = {CONF_LIST_DOMAIN, "local", "a : $no_such_var",
                                  "test.conf",      60,      NULL};
    f->snap.config.tree.lists = &bad;
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, NULL);
    expect_error(f, "test.conf:60: list \"local\": unknown variable name \"$no_such_var\"");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    struct conf_named_list good = {
        CONF_LIST_DOMAIN, "local", "$primary_hostname : ^x\\d", "t", 1, NULL};
    struct conf_named_list good2 = {CONF_LIST_DOMAIN, "r", "${lc:$original_domain}", "t", 2, NULL};
    good.next = &good2;
    f->snap.config.tree.lists = &good;
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, NULL);
    assert_true(compile(f));
    fake_free(f);
}

static void test_missing_value(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl_stmt *s = tree_stmt(f, tree_acl(f, "x"), "deny", 2);
    tree_item(f, s, "hosts", NULL);
    expect_error(f, "test.conf:2: \"=\" missing after ACL condition \"hosts\"");
    fake_free(f);
}

static void test_set_names(void **state)
{
    static const struct {
        const char *value;
        const char *error; /* NULL: accepted */
    } cases[] = {
        {"acl_c0 = v", NULL},
        {"acl_m_name = v", NULL},
        {"acl_m9x = v", NULL},
        {"acl_mfoo = v", "must start \"acl_c\" or \"acl_m\", then a digit or underscore"},
        {"$acl_m_quarantine = 1", "without the leading '$' (set acl_m_quarantine = ...)"},
        {"foo = 1", "invalid variable name \"foo\""},
        {"acl_m_a-b = 1", "invalid variable name \"acl_m_a-b\""},
        {"acl_m_x", "needs \"set acl_<name> = value\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        struct conf_acl_stmt *s = tree_stmt(f, tree_acl(f, "x"), "warn", 40);
        tree_item(f, s, "set", cases[i].value);
        if (!cases[i].error)
            assert_true(compile(f));
        else
            expect_error(f, cases[i].error);
        fake_free(f);
    }
    /* the other split: name "set acl_m_y", value "v" */
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_item(f, tree_stmt(f, tree_acl(f, "x"), "warn", 1), "set acl_m_y", "v");
    assert_true(compile(f));
    fake_free(f);
}

static void test_verify_types(void **state)
{
    static const struct {
        const char *value;
        const char *error;
    } cases[] = {
        {"recipient", NULL},
        {"sender", NULL},
        {"helo", NULL},
        {"recipient/callout=10s", "verify options"},
        {"reverse_host_lookup", "not supported in this build"},
        {"sender=a@b.example", "not supported in this build"},
        {"bogus", "verify = bogus: unknown verify type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        tree_stmtv(f, tree_acl(f, "x"), "require", 50, "verify", cases[i].value, NULL);
        if (!cases[i].error)
            assert_true(compile(f));
        else
            expect_error(f, cases[i].error);
        fake_free(f);
    }
}

static void test_acl_references(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "first");
    tree_stmtv(f, a, "accept", 2, "acl", "later", NULL); /* forward reference is fine */
    tree_stmtv(f, a, "accept", 3, "acl", "deny", NULL);  /* bare verb is fine */
    tree_stmtv(f, tree_acl(f, "later"), "accept", 5, NULL);
    assert_true(compile(f));
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "first"), "accept", 6, "acl", "missing", NULL);
    expect_error(f, "test.conf:6: acl = missing: no ACL of that name is defined");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "first"), "accept", 7, "acl", "first arg1", NULL);
    expect_error(f, "test.conf:7: acl = first arg1: inline ACL text and ACL arguments");
    fake_free(f);
}

static void test_duplicate_acl(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_acl(f, "dup");
    struct conf_acl *second = tree_acl(f, "dup");
    second->line = 9;
    expect_error(f, "test.conf:9: there are two ACLs called \"dup\"");
    fake_free(f);
}

static void test_option_names_checked(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "acl_check_rcpt"), "accept", 2, NULL);
    struct conf_item *opt = arena_zalloc(&f->arena, sizeof *opt);
    opt->name = "acl_smtp_mail";
    opt->value = "acl_check_mial";
    opt->file = "main.conf";
    opt->line = 17;
    f->snap.config.tree.main_items = opt;
    f->snap.config.acl_smtp_rcpt = "acl_check_rcpt";
    f->snap.config.acl_smtp_mail = "acl_check_mial";
    expect_error(f, "main.conf:17: acl_smtp_mail = acl_check_mial: no ACL of that name");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    f->snap.config.acl_smtp_connect = "/etc/acl/file";
    expect_error(f, "acl_smtp_connect = /etc/acl/file: ACL files are not supported");
    fake_free(f);
}

static void test_bad_delay(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 3, "delay", "soon", NULL);
    expect_error(f, "test.conf:3: delay = soon: bad time value");
    fake_free(f);
}

static void test_unknown_control(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 3, "control", "freeze", NULL);
    expect_error(f, "test.conf:3: control = freeze: unknown control");
    fake_free(f);
    /* a known control with options that nothing would act on is refused, not ignored */
    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 4, "control", "queue/first_pass_route", NULL);
    expect_error(f, "test.conf:4: control = queue/first_pass_route: options after '/' are not "
                    "supported yet");
    fake_free(f);
}

static void test_empty_section(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    assert_true(compile(f));
    assert_non_null(f->snap.config.acls);
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_style_acl_compiles),
        cmocka_unit_test(test_unknown_verb),
        cmocka_unit_test(test_unknown_condition),
        cmocka_unit_test(test_unsupported_conditions),
        cmocka_unit_test(test_endpass_refused),
        cmocka_unit_test(test_negated_modifier),
        cmocka_unit_test(test_negated_condition_is_fine),
        cmocka_unit_test(test_bad_expansion_syntax),
        cmocka_unit_test(test_unknown_variable),
        cmocka_unit_test(test_constant_regexes),
        cmocka_unit_test(test_named_lists_checked),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_set_names),
        cmocka_unit_test(test_verify_types),
        cmocka_unit_test(test_acl_references),
        cmocka_unit_test(test_duplicate_acl),
        cmocka_unit_test(test_option_names_checked),
        cmocka_unit_test(test_bad_delay),
        cmocka_unit_test(test_unknown_control),
        cmocka_unit_test(test_empty_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
