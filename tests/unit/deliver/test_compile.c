/*
 * test_compile.c - deliver_compile() through config_load_text(): good configs become
 * router/transport lists with the right settings; every kind of mistake is refused with
 * file:line and the offending word.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../../src/deliver/deliver_internal.h"
#include "postern/acl.h"

#include <stdio.h>
#include <string.h>

bool (*const test_keep_acl_compile)(struct config *, char *, size_t) = acl_compile;
bool (*const test_keep_deliver_compile)(struct config *, char *, size_t) = deliver_compile;

static const char *HEAD = "primary_hostname = test.example\n" /* line 1 */
                          "begin routers\n";                  /* line 2 */

static struct config *load(const char *body, char *err, size_t errlen)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s", HEAD, body);
    err[0] = 0;
    return config_load_text(text, "test.conf", NULL, err, errlen);
}

static void expect_error(const char *body, const char *expected)
{
    char err[512];
    struct config *cfg = load(body, err, sizeof err);
    if (cfg) {
        config_free(cfg);
        fail_msg("config was accepted, expected error: %s", expected);
    }
    if (!strstr(err, expected))
        fail_msg("error was \"%s\", expected it to contain \"%s\"", err, expected);
}

#define GOOD_TRANSPORT                                                                             \
    "begin transports\n"                                                                           \
    "t:\n"                                                                                         \
    "  driver = appendfile\n"                                                                      \
    "  maildir_format\n"                                                                           \
    "  directory = /tmp/x/$local_part\n"

static void test_good_config(void **state)
{
    (void)state;
    char err[512];
    struct config *cfg = load("aliases:\n"            /* 3 */
                              "  driver = redirect\n" /* 4 */
                              "  data = ${lookup{$local_part}lsearch{/etc/aliases}}\n"
                              "  allow_fail\n"
                              "  no_verify\n"
                              "local:\n"
                              "  driver = accept\n"
                              "  domains = localhost\n"
                              "  transport = t\n"
                              "  more = false\n"
                              "  log_as_local = no\n" GOOD_TRANSPORT "  envelope_to_add\n"
                              "  mode = 0640\n"
                              "  directory_mode = 0750\n"
                              "  create_directory = false\n",
                              err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    const struct deliver_config *dc = cfg->deliver;
    assert_non_null(dc);
    const struct router *r = dc->routers;
    assert_string_equal(r->name, "aliases");
    assert_int_equal(r->driver, ROUTER_REDIRECT);
    assert_true(r->allow_fail);
    assert_false(r->allow_defer);
    assert_false(r->verify_recipient);
    assert_true(r->more);
    assert_string_equal(r->data, "${lookup{$local_part}lsearch{/etc/aliases}}");
    r = r->next;
    assert_string_equal(r->name, "local");
    assert_int_equal(r->driver, ROUTER_ACCEPT);
    assert_false(r->more);
    assert_false(r->log_as_local);
    assert_true(r->verify_recipient);
    assert_string_equal(r->domains, "localhost");
    assert_ptr_equal(r->transport, dc->transports);
    assert_null(r->next);
    const struct transport *t = dc->transports;
    assert_string_equal(t->name, "t");
    assert_true(t->maildir_format);
    assert_true(t->envelope_to_add);
    assert_false(t->return_path_add);
    assert_false(t->create_directory);
    assert_int_equal(t->mode, 0640);
    assert_int_equal(t->directory_mode, 0750);
    config_free(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    char err[512];
    struct config *cfg =
        load("r:\n  driver = accept\n  transport = t\n" GOOD_TRANSPORT, err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    const struct router *r = cfg->deliver->routers;
    assert_true(r->more);
    assert_true(r->log_as_local);
    assert_true(r->verify_recipient);
    assert_false(r->verify_only);
    const struct transport *t = cfg->deliver->transports;
    assert_true(t->create_directory);
    assert_int_equal(t->mode, 0600);
    assert_int_equal(t->directory_mode, 0700);
    assert_false(t->use_crlf);
    config_free(cfg);
}

static void test_unknown_driver(void **state)
{
    (void)state;
    expect_error("dns:\n  driver = dnslookup\n",
                 "test.conf:4: router dns: unknown driver (near 'dnslookup')");
    expect_error("r:\n  driver = accept\n  transport = t\nbegin transports\nt:\n  driver = pipe\n",
                 "test.conf:8: transport t: unknown driver (near 'pipe')");
    expect_error("r:\n  transport = t\n" GOOD_TRANSPORT,
                 "test.conf:3: router r: no driver specified");
}

static void test_unknown_option(void **state)
{
    (void)state;
    expect_error("r:\n  driver = accept\n  transport = t\n  data = foo\n" GOOD_TRANSPORT,
                 "test.conf:6: router r: unknown option for the accept router (near 'data')");
    expect_error("r:\n  driver = accept\n  transport = t\n  frobnicate = 1\n" GOOD_TRANSPORT,
                 "test.conf:6: router r: unknown option for the accept router (near "
                 "'frobnicate')");
    expect_error("r:\n  driver = redirect\n  data = x\n  transport = t\n" GOOD_TRANSPORT,
                 "test.conf:6: router r: unknown option for the redirect router (near "
                 "'transport')");
    expect_error("r:\n  driver = accept\n  transport = t\n" GOOD_TRANSPORT "  quota = 10M\n",
                 "test.conf:11: transport t: unknown option for the appendfile transport (near "
                 "'quota')");
}

static void test_refused_options(void **state)
{
    (void)state;
    expect_error("r:\n  driver = accept\n  check_local_user\n  transport = t\n" GOOD_TRANSPORT,
                 "test.conf:5: router r: check_local_user is not supported");
    expect_error("r:\n  driver = redirect\n  data = x\n  errors_to = a@b\n" GOOD_TRANSPORT,
                 "test.conf:6: router r: errors_to is not supported");
    /* parsed by Exim, not acted on here yet: refused rather than ignored */
    expect_error("r:\n  driver = accept\n  verify_sender = false\n  transport = t\n" GOOD_TRANSPORT,
                 "test.conf:5: router r: verify_sender is not supported yet");
    expect_error("r:\n  driver = accept\n  transport = t\n" GOOD_TRANSPORT
                 "  event_action = ${if eq{1}{1}{x}}\n",
                 "event_action is not supported yet (near 'event_action')");
    expect_error("r:\n  driver = accept\n  transport = t\n" GOOD_TRANSPORT
                 "  tpda_delivery_action = x\n",
                 "tpda_delivery_action is not supported yet (near 'tpda_delivery_action')");
    expect_error("r:\n  driver = accept\n  transport = t\nbegin transports\nt:\n"
                 "  driver = appendfile\n  file = /var/mail/$local_part\n",
                 "test.conf:9: transport t: appendfile \"file\" (mbox) delivery is not "
                 "supported");
}

static void test_missing_and_bad_values(void **state)
{
    (void)state;
    expect_error("r:\n  driver = accept\n  transport = nosuch\n" GOOD_TRANSPORT,
                 "test.conf:5: router r: transport 'nosuch' is not defined (near 'nosuch')");
    expect_error("r:\n  driver = accept\n" GOOD_TRANSPORT,
                 "test.conf:3: router r: the accept router needs a transport");
    expect_error("r:\n  driver = redirect\n  allow_fail\n" GOOD_TRANSPORT,
                 "test.conf:3: router r: the redirect router needs exactly one of");
    expect_error("r:\n  driver = redirect\n  data = x\n  allow_fail = maybe\n" GOOD_TRANSPORT,
                 "test.conf:6: router r: option allow_fail needs a boolean (true/false/yes/no) "
                 "(near 'maybe')");
    expect_error("r:\n  driver = accept\n  transport = t\nbegin transports\nt:\n"
                 "  driver = appendfile\n  maildir_format\n",
                 "test.conf:7: transport t: appendfile needs \"directory\"");
    expect_error("r:\n  driver = accept\n  transport = t\nbegin transports\nt:\n"
                 "  driver = appendfile\n  directory = /tmp/x\n",
                 "test.conf:7: transport t: appendfile with \"directory\" is supported only with "
                 "maildir_format = true");
    expect_error("r:\n  driver = accept\n  transport = t\n" GOOD_TRANSPORT "  mode = 999\n",
                 "test.conf:11: transport t: option mode needs an octal mode (near '999')");
    expect_error("r:\n  driver = accept\n  transport = t\nr:\n  driver = accept\n"
                 "  transport = t\n" GOOD_TRANSPORT,
                 "test.conf:6: ");
}

static void test_bad_expansion(void **state)
{
    (void)state;
    expect_error("r:\n  driver = redirect\n  data = ${lookup{$local_part\n" GOOD_TRANSPORT,
                 "test.conf:5: router r: option data: ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config),     cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_unknown_driver),  cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_refused_options), cmocka_unit_test(test_missing_and_bad_values),
        cmocka_unit_test(test_bad_expansion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
