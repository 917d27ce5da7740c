/*
 * test_acl.c - acl_check(): verbs, conditions, modifiers, messages, nesting, deferral,
 * where-checks, tracing, and the seed's PROXY connect ACL. Trees are built by hand; the
 * real expansion engine (src/expand) evaluates the values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acl_test_env.h"

#include <unistd.h>

static enum acl_result run(struct fake *f, const char *name)
{
    char err[512];
    if (!f->snap.config.acls && !acl_compile(&f->snap.config, err, sizeof err))
        fail_msg("compile failed: %s", err);
    return acl_check(&f->snap.config, name, &f->env);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* ---- verbs ---- */

static void test_verbs_when_true(void **state)
{
    static const struct {
        const char *verb;
        enum acl_result want;
    } cases[] = {
        {"accept", ACL_ACCEPT}, {"deny", ACL_DENY},       {"defer", ACL_DEFER},
        {"drop", ACL_DROP},     {"discard", ACL_DISCARD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        struct conf_acl *a = tree_acl(f, "x");
        tree_stmtv(f, a, cases[i].verb, 2, "condition", "yes", NULL);
        tree_stmtv(f, a, "accept", 3, NULL);
        assert_int_equal(run(f, "x"), cases[i].want);
        fake_free(f);
    }
}

static void test_verbs_when_false_fall_through(void **state)
{
    const char *verbs[] = {"accept", "deny", "defer", "drop", "discard", "warn"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        struct conf_acl *a = tree_acl(f, "x");
        tree_stmtv(f, a, verbs[i], 2, "condition", "no", NULL);
        tree_stmtv(f, a, "defer", 3, "message", "fell through", NULL);
        assert_int_equal(run(f, "x"), ACL_DEFER);
        assert_string_equal(f->env.user_message, "fell through");
        fake_free(f);
    }
}

static void test_implicit_deny(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, "condition", "false", NULL);
    tree_stmtv(f, a, "warn", 3, "condition", "true", NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_null(f->env.user_message);
    assert_contains(f->trace.data, "end of ACL \"x\": implicit DENY");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_acl(f, "empty");
    assert_int_equal(run(f, "empty"), ACL_DENY);
    fake_free(f);
}

static void test_require(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "require", 2, "message", "need yes", "condition", "$acl_m_in", NULL);
    tree_stmtv(f, a, "accept", 3, NULL);
    fake_set(f, "acl_m_in", "yes");
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    assert_null(f->env.user_message);
    fake_set(f, "acl_m_in", "no");
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "need yes");
    assert_string_equal(f->env.log_message, "need yes");
    fake_free(f);
}

/* The spec's example: the message in force when a condition fails is the one used. */
static void test_require_message_position(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "require", 2, "message", "Can't verify sender", "verify", "sender", "message",
               "Can't verify recipient", "verify", "recipient", "message",
               "This message cannot be used", NULL);
    tree_stmtv(f, a, "accept", 7, NULL);
    f->verify_reason = "Unrouteable address";

    f->verify_result[ACL_VERIFY_SENDER] = MATCH_NO;
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "Can't verify sender");
    assert_int_equal(f->verify_calls, 1); /* stopped at the first failure */

    f->verify_result[ACL_VERIFY_SENDER] = MATCH_YES;
    f->verify_result[ACL_VERIFY_RECIPIENT] = MATCH_NO;
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "Can't verify recipient");

    f->verify_result[ACL_VERIFY_RECIPIENT] = MATCH_YES;
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    assert_null(f->env.user_message);
    fake_free(f);
}

/* ---- messages ---- */

static void test_deny_message_and_log_message(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    fake_set(f, "local_part", "bob");
    fake_set(f, "domain", "example.org");
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "deny", 2, "message", "no mail for $local_part", "log_message",
               "blocked $local_part@$domain", "condition", "yes", NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "no mail for bob");
    assert_string_equal(f->env.log_message, "blocked bob@example.org");
    fake_free(f);
}

/* A verification failure's reason is the default message; "message" overrides it, and
 * $acl_verify_message carries the original into the override. */
static void test_verify_reason_and_override(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "require", 2, "verify", "recipient", NULL);
    f->verify_result[ACL_VERIFY_RECIPIENT] = MATCH_NO;
    f->verify_reason = "Unrouteable address";
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "Unrouteable address");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    a = tree_acl(f, "x");
    tree_stmtv(f, a, "deny", 2, "!verify", "recipient", "message", "rejected: $acl_verify_message",
               "log_message", "lm", NULL);
    f->verify_result[ACL_VERIFY_RECIPIENT] = MATCH_NO;
    f->verify_reason = "Unrouteable address";
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "rejected: Unrouteable address");
    assert_string_equal(f->env.log_message, "lm: Unrouteable address");
    fake_free(f);
}

static void test_accept_message_and_empty_message_ignored(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_CONNECT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, "message", "${if eq{a}{b}{x}{}}", "condition", "no", NULL);
    tree_stmtv(f, a, "accept", 3, "message", "220 custom banner", NULL);
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    assert_string_equal(f->env.user_message, "220 custom banner");
    fake_free(f);
}

/* A message given on a warn is not carried to a later deny (Exim resets per statement). */
static void test_warn_message_not_inherited(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "warn", 2, "log_message", "from warn", NULL);
    tree_stmtv(f, a, "deny", 3, NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_null(f->env.user_message);
    assert_null(f->env.log_message);
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT); /* nor to the implicit DENY */
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "log_message", "from warn", "message", "X-H: 1",
               NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_null(f->env.user_message);
    assert_null(f->env.log_message);
    assert_string_equal(fake_logs(f), "m|Warning: from warn\n");
    fake_free(f);
}

/* ---- warn ---- */

static void test_warn_logs_with_host_prefix(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    fake_set(f, "sender_host_address", "192.0.2.7");
    fake_set(f, "sender_host_name", "mx.example.net");
    fake_set(f, "sender_helo_name", "helo.example.net");
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "warn", 2, "log_message", "suspicious $sender_host_address", NULL);
    tree_stmtv(f, a, "warn", 3, "condition", "no", "log_message", "never", NULL);
    tree_stmtv(f, a, "accept", 4, NULL);
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    assert_string_equal(fake_logs(f),
                        "m|H=mx.example.net (helo.example.net) [192.0.2.7] Warning: suspicious "
                        "192.0.2.7\n");
    assert_null(f->env.log_message);
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT); /* local input: no host part */
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "log_message", "local", NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(fake_logs(f), "m|Warning: local\n");
    fake_free(f);
}

static void test_warn_message_adds_header(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_DATA);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "message", "X-Warned: yes", NULL);
    run(f, "x");
    assert_string_equal(fake_headers(f), "X-Warned: yes\n");
    assert_string_equal(fake_logs(f), ""); /* no log_message: nothing logged */
    fake_free(f);
}

static void test_warn_defer_is_logged_and_skipped(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    fake_set(f, "sender_host_address", "192.0.2.7");
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "warn", 2, "verify", "sender", "logwrite", "not reached", NULL);
    tree_stmtv(f, a, "accept", 3, NULL);
    f->verify_result[ACL_VERIFY_SENDER] = MATCH_DEFER;
    f->verify_reason = "DNS timeout";
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    assert_string_equal(fake_logs(f),
                        "m|H=[192.0.2.7] Warning: ACL 'warn' statement skipped (in x at line 2 "
                        "of test.conf): condition test deferred: Could not complete sender verify: "
                        "DNS timeout\n");
    fake_free(f);
}

/* ---- defer and errors ---- */

static void test_defer_propagates(void **state)
{
    const char *verbs[] = {"accept", "deny", "require", "discard", "drop"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        struct conf_acl *a = tree_acl(f, "x");
        tree_stmtv(f, a, verbs[i], 2, "verify", "recipient", NULL);
        tree_stmtv(f, a, "accept", 3, NULL);
        f->verify_result[ACL_VERIFY_RECIPIENT] = MATCH_DEFER;
        f->verify_reason = "lookup server down";
        assert_int_equal(run(f, "x"), ACL_DEFER);
        assert_string_equal(f->env.log_message, "lookup server down");
        fake_free(f);
    }
}

static void test_negated_defer_still_defers(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "deny", 2, "!verify", "recipient", NULL);
    f->verify_result[ACL_VERIFY_RECIPIENT] = MATCH_DEFER;
    assert_int_equal(run(f, "x"), ACL_DEFER);
    fake_free(f);
}

static void test_expansion_error_is_error(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    /* (an unknown variable is refused at load now: test_compile.c) */
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "condition", "${eval:1/0}", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    assert_non_null(f->env.log_message);
    assert_contains(f->env.log_message, "test.conf:2");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT); /* a non-boolean condition value */
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "condition", "maybe", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    fake_free(f);
}

static void test_forced_failure_ignores_condition(void **state)
{
    const char *names[] = {"condition", "!condition"};
    for (size_t i = 0; i < 2; i++) {
        struct fake *f = fake_new(ACL_WHERE_RCPT);
        struct conf_acl *a = tree_acl(f, "x");
        tree_stmtv(f, a, "deny", 2, names[i], "${if eq{a}{b}{yes}fail}", "message", "ignored",
                   NULL);
        assert_int_equal(run(f, "x"), ACL_DENY);
        assert_string_equal(f->env.user_message, "ignored");
        fake_free(f);
    }
}

/* ---- list conditions ---- */

static void test_hosts_domains_local_parts_senders(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    fake_set(f, "sender_host_address", "10.1.2.3");
    fake_set(f, "domain", "Example.ORG");
    fake_set(f, "local_part", "postmaster");
    fake_set(f, "sender_address", "alice@sender.example");
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, "hosts", "10.0.0.0/8", "domains", "example.org : other.example",
               "local_parts", "postmaster : abuse", "senders", "*@sender.example", NULL);
    assert_int_equal(run(f, "x"), ACL_ACCEPT);

    fake_set(f, "sender_host_address", "192.0.2.1");
    assert_int_equal(run(f, "x"), ACL_DENY);
    fake_set(f, "sender_host_address", "10.1.2.3");
    fake_set(f, "local_part", "root");
    assert_int_equal(run(f, "x"), ACL_DENY);
    fake_free(f);
}

/* A list item that is a lookup: found, not found, and a file that cannot be read (a lookup
 * error, which must not read as "not in the list"). */
static void test_list_lookup(void **state)
{
    char path[] = "/tmp/acl_test_domainsXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "relay.example: yes\nother.example: yes\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);

    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, "domains", arena_printf(&f->arena, "lsearch;%s", path), NULL);
    tree_stmtv(f, a, "deny", 3, "message", "not relayed", NULL);
    fake_set(f, "domain", "relay.example");
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    fake_set(f, "domain", "elsewhere.example");
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "not relayed");
    fake_free(f);
    unlink(path);

    f = fake_new(ACL_WHERE_RCPT);
    a = tree_acl(f, "x");
    tree_stmtv(f, a, "deny", 2, "domains", "lsearch;/nonexistent/acl/test/file", NULL);
    tree_stmtv(f, a, "accept", 3, NULL);
    fake_set(f, "domain", "relay.example");
    assert_int_equal(run(f, "x"), ACL_ERROR);
    assert_contains(f->env.log_message, "test.conf:2");
    assert_contains(f->env.log_message, "/nonexistent/acl/test/file");
    fake_free(f);
}

static void test_hosts_empty_item_matches_local(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "hosts", ":", NULL);
    fake_set(f, "sender_host_address", "");
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    fake_set(f, "sender_host_address", "192.0.2.1");
    assert_int_equal(run(f, "x"), ACL_DENY);
    fake_free(f);
}

static void test_senders_null_sender(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_MAIL);
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "senders", ":", NULL);
    fake_set(f, "sender_address", "");
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    fake_set(f, "sender_address", "a@b.example");
    assert_int_equal(run(f, "x"), ACL_DENY);
    fake_free(f);
}

static void test_authenticated(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, "authenticated", "*", NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    f->env.authenticated = true;
    f->env.authenticated_id = "alice";
    assert_int_equal(run(f, "x"), ACL_ACCEPT);
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "!authenticated", "*", NULL);
    assert_int_equal(run(f, "x"), ACL_ACCEPT); /* not authenticated: the negation holds */
    fake_free(f);
}

static void test_condition_not_allowed_here(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_MAIL);
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "domains", "*", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    assert_contains(f->env.log_message, "cannot test domains condition in MAIL ACL");
    fake_free(f);

    f = fake_new(ACL_WHERE_MAIL);
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "verify", "recipient", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    assert_contains(f->env.log_message, "cannot verify recipient in ACL for MAIL");
    assert_int_equal(f->verify_calls, 0);
    fake_free(f);

    f = fake_new(ACL_WHERE_CONNECT);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "add_header", "X-A: b", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    assert_contains(f->env.log_message, "cannot use add_header modifier in connection ACL");
    fake_free(f);
}

/* ---- modifiers ---- */

static void test_set_visible_later(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "warn", 2, "set", "acl_m_flag = ${uc:yes}", "set", "acl_c0 = conn", NULL);
    tree_stmtv(f, a, "deny", 3, "condition", "${if eq{$acl_m_flag}{YES}}", "message",
               "flag $acl_m_flag $acl_c0", NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(f->env.user_message, "flag YES conn");
    assert_string_equal(fake_get(f, "acl_m_flag"), "YES");
    fake_free(f);
}

/* Modifiers act when reached: those after a failing condition do not. */
static void test_immediate_modifiers_order(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "accept", 2, "logwrite", "before", "add_header", "X-Before: 1", "control",
               "queue_only", "delay", "2s", "set", "acl_m_a = 1", "continue", "${lc:X}",
               "condition", "no", "logwrite", "after", "add_header", "X-After: 1", "set",
               "acl_m_b = 1", "delay", "5s", NULL);
    tree_stmtv(f, a, "deny", 3, NULL);
    assert_int_equal(run(f, "x"), ACL_DENY);
    assert_string_equal(fake_logs(f), "m|before\n");
    assert_string_equal(fake_headers(f), "X-Before: 1\n");
    assert_string_equal(f->controls.data, "queue_only\n");
    assert_int_equal(f->env.delay_ms, 2000);
    assert_string_equal(fake_get(f, "acl_m_a"), "1");
    assert_null(fake_get(f, "acl_m_b"));
    fake_free(f);
}

static void test_logwrite_targets(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *a = tree_acl(f, "x");
    tree_stmtv(f, a, "warn", 2, "logwrite", ":main,reject: both", "logwrite", ":panic: oops",
               "logwrite", ":main:only main", "logwrite", "plain", NULL);
    run(f, "x");
    assert_string_equal(fake_logs(f), "r|both\np|oops\nm|only main\nm|plain\n");
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "logwrite", ":nosuch: x", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    fake_free(f);
}

static void test_add_header_lines(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "add_header",
               "\\nX-One: 1\\nnot a header\\nX-Two: a\\n\\tcontinued\\n:at_start:X-First: f\\n",
               NULL);
    run(f, "x");
    assert_string_equal(fake_headers(f), "X-One: 1\nX-ACL-Warn: not a header\n"
                                         "X-Two: a\n\tcontinued\n:at_start:X-First: f\n");
    fake_free(f);
}

static void test_control_refused_is_error(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "x"), "accept", 2, "control", "no_enforce_sync", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    assert_contains(f->env.log_message, "control no_enforce_sync is not allowed here");
    fake_free(f);
}

static void test_set_refused_by_caller_is_error(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    f->env.set_var = NULL;
    tree_stmtv(f, tree_acl(f, "x"), "warn", 2, "set", "acl_m_x = 1", NULL);
    assert_int_equal(run(f, "x"), ACL_ERROR);
    fake_free(f);
}

/* ---- nesting and names ---- */

static void test_nested_acl(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    fake_set(f, "sender_host_address", "10.0.0.1");
    struct conf_acl *top = tree_acl(f, "top");
    tree_stmtv(f, top, "accept", 2, "acl", "inner", NULL);
    tree_stmtv(f, top, "deny", 3, "message", "inner said no", NULL);
    struct conf_acl *inner = tree_acl(f, "inner");
    tree_stmtv(f, inner, "accept", 10, "hosts", "10.0.0.0/8", NULL);
    assert_int_equal(run(f, "top"), ACL_ACCEPT);
    fake_set(f, "sender_host_address", "192.0.2.1");
    assert_int_equal(run(f, "top"), ACL_DENY);
    assert_string_equal(f->env.user_message, "inner said no");
    fake_free(f);
}

static void test_nested_defer_drop_discard(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    struct conf_acl *top = tree_acl(f, "top");
    tree_stmtv(f, top, "require", 2, "message", "outer message", "acl",
               "${if eq{$acl_m_which}{}{def}{$acl_m_which}}", NULL);
    tree_stmtv(f, top, "accept", 3, NULL);
    tree_stmtv(f, tree_acl(f, "def"), "defer", 10, NULL);
    tree_stmtv(f, tree_acl(f, "drp"), "drop", 20, NULL);
    tree_stmtv(f, tree_acl(f, "dis"), "discard", 30, NULL);
    assert_int_equal(run(f, "top"), ACL_DEFER);
    fake_set(f, "acl_m_which", "drp");
    assert_int_equal(run(f, "top"), ACL_DROP); /* require + inner drop = drop */
    assert_string_equal(f->env.user_message, "outer message");
    fake_set(f, "acl_m_which", "dis");
    assert_int_equal(run(f, "top"), ACL_ERROR); /* discard only for accept/discard */
    fake_free(f);

    f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "top"), "accept", 2, "acl", "dis", NULL);
    tree_stmtv(f, tree_acl(f, "dis"), "discard", 30, NULL);
    assert_int_equal(run(f, "top"), ACL_DISCARD);
    fake_free(f);
}

static void test_nested_loop_is_error(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "a"), "accept", 2, "acl", "b", NULL);
    tree_stmtv(f, tree_acl(f, "b"), "accept", 5, "acl", "a", NULL);
    assert_int_equal(run(f, "a"), ACL_ERROR);
    assert_contains(f->env.log_message, "nested more than 20 deep");
    fake_free(f);
}

static void test_names_and_defaults(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    tree_stmtv(f, tree_acl(f, "a1"), "accept", 2, NULL);
    tree_stmtv(f, tree_acl(f, "a2"), "deny", 5, "message", "a2", NULL);
    assert_int_equal(run(f, NULL), ACL_DENY); /* acl_smtp_rcpt unset: deny all */
    assert_int_equal(run(f, "accept"), ACL_ACCEPT);
    assert_int_equal(run(f, "deny"), ACL_DENY);
    assert_int_equal(run(f, "nosuch"), ACL_ERROR);
    assert_contains(f->env.log_message, "ACL \"nosuch\" not found");
    fake_set(f, "interface_port", "25");
    assert_int_equal(run(f, "${if eq{$interface_port}{25}{a1}{a2}}"), ACL_ACCEPT);
    fake_set(f, "interface_port", "587");
    assert_int_equal(run(f, "${if eq{$interface_port}{25}{a1}{a2}}"), ACL_DENY);
    assert_string_equal(f->env.user_message, "a2");
    assert_int_equal(run(f, "${if eq{1}{2}{a2}fail}"), ACL_ACCEPT); /* Exim: forced fail */
    f->env.where = ACL_WHERE_MAIL;
    assert_int_equal(run(f, NULL), ACL_ACCEPT);
    f->env.where = ACL_WHERE_VRFY;
    assert_int_equal(run(f, ""), ACL_DENY);
    fake_free(f);
}

static void test_quit_acl_may_not_fail(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_QUIT);
    struct conf_acl *a = tree_acl(f, "q");
    tree_stmtv(f, a, "warn", 2, "logwrite", "bye", NULL);
    tree_stmtv(f, a, "deny", 3, NULL);
    assert_int_equal(run(f, "q"), ACL_ERROR);
    assert_contains(f->env.log_message, "QUIT or not-QUIT toplevel ACL may not fail");
    fake_free(f);
}

static void test_trace_lines(void **state)
{
    struct fake *f = fake_new(ACL_WHERE_RCPT);
    fake_set(f, "sender_host_address", "192.0.2.1");
    struct conf_acl *a = tree_acl(f, "acl_check_rcpt");
    tree_stmtv(f, a, "accept", 2, "hosts", ":", NULL);
    tree_stmtv(f, a, "deny", 3, "message", "relay not permitted", NULL);
    assert_int_equal(run(f, "acl_check_rcpt"), ACL_DENY);
    assert_string_equal(f->trace.data, "using ACL \"acl_check_rcpt\"\n"
                                       "processing \"accept\" (test.conf:2)\n"
                                       "check hosts = :\n"
                                       "accept: condition test failed in ACL \"acl_check_rcpt\"\n"
                                       "processing \"deny\" (test.conf:3)\n"
                                       "  message: relay not permitted\n"
                                       "deny: condition test succeeded in ACL \"acl_check_rcpt\"\n"
                                       "end of ACL \"acl_check_rcpt\": DENY\n");
    assert_string_equal(acl_result_name(ACL_DENY), "DENY");
    assert_string_equal(acl_result_name(ACL_DISCARD), "DISCARD");
    fake_free(f);
}

/* ---- the seed's PROXY connect ACL ---- */

static struct fake *proxy_fixture(const char *session, const char *proxy_addr, const char *addr)
{
    struct fake *f = fake_new(ACL_WHERE_CONNECT);
    fake_set(f, "proxy_session", session);
    fake_set(f, "proxy_host_address", proxy_addr);
    fake_set(f, "proxy_host_port", *proxy_addr ? "41000" : "");
    fake_set(f, "proxy_target_address", *proxy_addr ? "203.0.113.5" : "");
    fake_set(f, "proxy_target_port", *proxy_addr ? "25" : "");
    fake_set(f, "sender_host_address", addr);
    fake_set(f, "sender_host_port", "50123");
    fake_set(f, "sender_host_name", "");
    fake_set(f, "received_ip_address", "10.0.0.2");
    fake_set(f, "received_port", "25");
    struct conf_acl *a = tree_acl(f, "acl_check_connect");
    tree_stmtv(f, a, "warn", 2, "condition",
               "${if and{ {bool{$proxy_session}} {eq{$proxy_host_address}{}} } }", "log_message",
               "Failed required proxy protocol negotiation from $sender_host_name "
               "[$sender_host_address]",
               NULL);
    tree_stmtv(f, a, "warn", 7, "condition",
               "${if and{ {bool{$proxy_session}} {!eq{$proxy_host_address}{}} } }", "condition",
               "${if eq{$proxy_host_address}{$sender_host_address} {false}{true}}", "log_message",
               "Successfully proxied from $sender_host_name [$sender_host_address] through "
               "proxy protocol host $proxy_host_address",
               NULL);
    tree_stmtv(f, a, "warn", 17, "logwrite",
               "Remote Source Address: $sender_host_address:$sender_host_port", "logwrite",
               "Proxy Target Address: $proxy_target_address:$proxy_target_port", "logwrite",
               "Proxy Internal Address: $proxy_host_address:$proxy_host_port", "logwrite",
               "Internal Server Address: $received_ip_address:$received_port", NULL);
    tree_stmtv(f, a, "accept", 22, NULL);
    return f;
}

static void test_seed_proxy_failed_session(void **state)
{
    struct fake *f = proxy_fixture("yes", "", "192.168.1.2");
    assert_int_equal(run(f, "acl_check_connect"), ACL_ACCEPT);
    assert_string_equal(fake_logs(f),
                        "m|H=[192.168.1.2] Warning: Failed required proxy protocol negotiation "
                        "from  [192.168.1.2]\n"
                        "m|Remote Source Address: 192.168.1.2:50123\n"
                        "m|Proxy Target Address: :\n"
                        "m|Proxy Internal Address: :\n"
                        "m|Internal Server Address: 10.0.0.2:25\n");
    fake_free(f);
}

static void test_seed_proxy_success(void **state)
{
    struct fake *f = proxy_fixture("yes", "192.168.1.2", "1.2.3.4");
    assert_int_equal(run(f, "acl_check_connect"), ACL_ACCEPT);
    assert_string_equal(fake_logs(f),
                        "m|H=[1.2.3.4] Warning: Successfully proxied from  [1.2.3.4] through "
                        "proxy protocol host 192.168.1.2\n"
                        "m|Remote Source Address: 1.2.3.4:50123\n"
                        "m|Proxy Target Address: 203.0.113.5:25\n"
                        "m|Proxy Internal Address: 192.168.1.2:41000\n"
                        "m|Internal Server Address: 10.0.0.2:25\n");
    fake_free(f);
}

static void test_seed_proxy_health_probe(void **state)
{
    struct fake *f = proxy_fixture("yes", "192.168.1.2", "192.168.1.2");
    assert_int_equal(run(f, "acl_check_connect"), ACL_ACCEPT);
    assert_string_equal(fake_logs(f), "m|Remote Source Address: 192.168.1.2:50123\n"
                                      "m|Proxy Target Address: 203.0.113.5:25\n"
                                      "m|Proxy Internal Address: 192.168.1.2:41000\n"
                                      "m|Internal Server Address: 10.0.0.2:25\n");
    fake_free(f);
}

static void test_seed_not_proxied(void **state)
{
    struct fake *f = proxy_fixture("no", "", "1.2.3.4");
    assert_int_equal(run(f, "acl_check_connect"), ACL_ACCEPT);
    assert_string_equal(fake_logs(f), "m|Remote Source Address: 1.2.3.4:50123\n"
                                      "m|Proxy Target Address: :\n"
                                      "m|Proxy Internal Address: :\n"
                                      "m|Internal Server Address: 10.0.0.2:25\n");
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs_when_true),
        cmocka_unit_test(test_verbs_when_false_fall_through),
        cmocka_unit_test(test_implicit_deny),
        cmocka_unit_test(test_require),
        cmocka_unit_test(test_require_message_position),
        cmocka_unit_test(test_deny_message_and_log_message),
        cmocka_unit_test(test_verify_reason_and_override),
        cmocka_unit_test(test_accept_message_and_empty_message_ignored),
        cmocka_unit_test(test_warn_message_not_inherited),
        cmocka_unit_test(test_warn_logs_with_host_prefix),
        cmocka_unit_test(test_warn_message_adds_header),
        cmocka_unit_test(test_warn_defer_is_logged_and_skipped),
        cmocka_unit_test(test_defer_propagates),
        cmocka_unit_test(test_negated_defer_still_defers),
        cmocka_unit_test(test_expansion_error_is_error),
        cmocka_unit_test(test_forced_failure_ignores_condition),
        cmocka_unit_test(test_hosts_domains_local_parts_senders),
        cmocka_unit_test(test_list_lookup),
        cmocka_unit_test(test_hosts_empty_item_matches_local),
        cmocka_unit_test(test_senders_null_sender),
        cmocka_unit_test(test_authenticated),
        cmocka_unit_test(test_condition_not_allowed_here),
        cmocka_unit_test(test_set_visible_later),
        cmocka_unit_test(test_immediate_modifiers_order),
        cmocka_unit_test(test_logwrite_targets),
        cmocka_unit_test(test_add_header_lines),
        cmocka_unit_test(test_control_refused_is_error),
        cmocka_unit_test(test_set_refused_by_caller_is_error),
        cmocka_unit_test(test_nested_acl),
        cmocka_unit_test(test_nested_defer_drop_discard),
        cmocka_unit_test(test_nested_loop_is_error),
        cmocka_unit_test(test_names_and_defaults),
        cmocka_unit_test(test_quit_acl_may_not_fail),
        cmocka_unit_test(test_trace_lines),
        cmocka_unit_test(test_seed_proxy_failed_session),
        cmocka_unit_test(test_seed_proxy_success),
        cmocka_unit_test(test_seed_proxy_health_probe),
        cmocka_unit_test(test_seed_not_proxied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
