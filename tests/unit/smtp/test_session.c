/*
 * test_session.c - the SMTP session state machine driven without sockets: bytes in,
 * replies out, with a real configuration, the real ACL engine and a real spool in a
 * temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../test_files.h"
#include "session_test_env.h"

#include "postern/config.h"
#include "postern/log.h"
#include "postern/session.h"
#include "postern/spool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char spool_path[256];

/* clang-format off */
static const char *test_config =
    "primary_hostname = test.example\n"
    "prdr_enable = true\n"
    "message_size_limit = 2K\n"
    "recipients_max = 3\n"
    "smtp_max_unknown_commands = 2\n"
    "domainlist local_domains = localhost\n"
    "acl_smtp_helo = helo\n"
    "acl_smtp_rcpt = rcpt\n"
    "acl_smtp_data_prdr = prdr\n"
    "acl_smtp_quit = quit\n"
    "begin acl\n"
    "quit:\n"
    "  accept  condition = ${if eq{$sender_helo_name}{polite}}\n"
    "          message = $primary_hostname says goodbye\n"
    "  accept\n"
    "helo:\n"
    "  accept  condition = ${if eq{$sender_helo_name}{queue}}\n"
    "          control = queue_only\n"
    "  accept\n"
    "rcpt:\n"
    "  warn    local_parts = queued\n"
    "          control = queue_only\n"
    "  deny    local_parts = blocked\n"
    "          message = blocked here\n"
    "  accept  domains = +local_domains\n"
    "  deny    message = relay not permitted\n"
    "prdr:\n"
    "  defer   local_parts = tmp\n"
    "  deny    local_parts = bad\n"
    "  accept\n"
    "begin routers\n"
    "r:\n"
    "  driver = redirect\n"
    "  data = :blackhole:\n";
/* clang-format on */

static int setup(void **state)
{
    return session_env_setup(state, test_config);
}

static int teardown(void **state)
{
    return session_env_teardown(state);
}

static const char *start(struct harness *h)
{
    return session_env_start(h);
}

/* control = queue_only holds back the current message only, and only where there is one. */
static void test_control_queue_only_is_per_message(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO c\r\n");
    feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<queued@localhost>\r\nDATA\r\n");
    assert_true(strncmp(feed(h, "Subject: q\r\n\r\nbody\r\n.\r\n"), "250 2.0.0 OK id=", 16) == 0);
    assert_int_equal(h->accepted, 0); /* spooled, not handed to delivery */
    feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n");
    assert_true(strncmp(feed(h, "Subject: n\r\n\r\nbody\r\n.\r\n"), "250 2.0.0 OK id=", 16) == 0);
    assert_int_equal(h->accepted, 1); /* the next message is delivered at once */
    /* in the HELO ACL there is no message to queue: an ACL error, not a silent no-op */
    assert_string_equal(feed(h, "EHLO queue\r\n"),
                        "451 Temporary local problem - please try later\r\n");
}

/* The QUIT ACL's message is the 221 text, as in Exim; without one, the usual text. */
static void test_quit_acl_message(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO polite\r\n");
    assert_string_equal(feed(h, "QUIT\r\n"), "221 2.0.0 test.example says goodbye\r\n");
}

static void test_banner_and_ehlo(void **state)
{
    struct harness *h = *state;
    assert_true(strncmp(start(h), "220 ", 4) == 0);
    const char *r = feed(h, "EHLO client.example\r\n");
    assert_non_null(strstr(r, "250-test.example Hello client.example [192.0.2.1]\r\n"));
    assert_non_null(strstr(r, "250-SIZE 2048\r\n"));
    assert_non_null(strstr(r, "250-PIPELINING\r\n"));
    assert_non_null(strstr(r, "250-PRDR\r\n"));
    assert_non_null(strstr(r, "250 HELP\r\n"));
}

static void test_message_is_spooled(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO c\r\n");
    const char *r = feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\n");
    assert_string_equal(r, "250 2.1.0 OK\r\n250 2.1.5 Accepted\r\n");
    assert_string_equal(feed(h, "DATA\r\n"),
                        "354 Enter message, ending with \".\" on a line by itself\r\n");
    r = feed(h, "Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\n");
    assert_true(strncmp(r, "250 2.0.0 OK id=", 16) == 0);
    char id[SPOOL_ID_LEN + 1];
    memcpy(id, r + 16, SPOOL_ID_LEN);
    id[SPOOL_ID_LEN] = '\0';
    assert_true(spool_id_valid(id));
    assert_int_equal(h->accepted, 1);
    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    char err[256];
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    assert_string_equal(env.sender, "a@example.org");
    assert_int_equal(env.recipient_count, 1);
    assert_string_equal(env.recipients[0].address, "u@localhost");
    int fd = spool_open_data(id);
    assert_true(fd >= 0);
    char data[4096];
    ssize_t n = read(fd, data, sizeof data - 1);
    close(fd);
    assert_true(n > 0);
    data[n] = '\0';
    assert_true(strncmp(data, "Received: ", 10) == 0);
    assert_non_null(strstr(data, "\r\nSubject: x\r\n\r\n.dot\r\nbody\r\n"));
    assert_null(strstr(data, "..dot"));
    spool_remove(id);
    arena_reset(&arena);
}

static void test_rejections(void **state)
{
    struct harness *h = *state;
    start(h);
    assert_true(strncmp(feed(h, "MAIL FROM:<a@b>\r\n"), "503 ", 4) == 0);
    feed(h, "EHLO c\r\n");
    assert_true(strncmp(feed(h, "RCPT TO:<u@localhost>\r\n"), "503 ", 4) == 0);
    feed(h, "MAIL FROM:<a@b>\r\n");
    assert_string_equal(feed(h, "RCPT TO:<u@remote.example>\r\n"),
                        "550 5.7.1 relay not permitted\r\n");
    assert_string_equal(feed(h, "RCPT TO:<blocked@localhost>\r\n"), "550 5.7.1 blocked here\r\n");
    assert_true(strncmp(feed(h, "DATA\r\n"), "503 ", 4) == 0);
    feed(h, "RCPT TO:<a@localhost>\r\nRCPT TO:<b@localhost>\r\nRCPT TO:<c@localhost>\r\n");
    assert_true(strncmp(feed(h, "RCPT TO:<d@localhost>\r\n"), "452 ", 4) == 0);
    assert_true(strncmp(feed(h, "MAIL FROM:<x@y> SIZE=99999\r\n"), "503 ", 4) == 0);
    feed(h, "RSET\r\n");
    assert_true(strncmp(feed(h, "MAIL FROM:<x@y> SIZE=99999\r\n"), "552 ", 4) == 0);
}

static void test_too_big_after_data(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO c\r\n");
    feed(h, "MAIL FROM:<a@b>\r\nRCPT TO:<u@localhost>\r\n");
    feed(h, "DATA\r\n");
    char big[4096];
    memset(big, 'x', sizeof big - 3);
    memcpy(big + sizeof big - 3, "\r\n", 3);
    feed(h, big);
    assert_true(strncmp(feed(h, ".\r\n"), "552 ", 4) == 0);
    assert_int_equal(h->accepted, 0);
}

static void test_unknown_commands_drop(void **state)
{
    struct harness *h = *state;
    start(h);
    assert_true(strncmp(feed(h, "FOO\r\n"), "500 ", 4) == 0);
    assert_true(strncmp(feed(h, "BAR\r\n"), "500 ", 4) == 0);
    assert_true(strncmp(feed(h, "BAZ\r\n"), "500 ", 4) == 0);
    assert_int_equal(h->s->state, SESSION_CLOSING);
}

static void test_sync_error_after_data(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO c\r\n");
    feed(h, "MAIL FROM:<a@b>\r\nRCPT TO:<u@localhost>\r\n");
    const char *r = feed(h, "DATA\r\nSubject: too early\r\n");
    assert_string_equal(r, "554 SMTP synchronization error\r\n");
    assert_int_equal(h->s->state, SESSION_CLOSING);
}

static void test_sync_error_before_banner(void **state)
{
    struct harness *h = *state;
    h->pending = true;
    assert_string_equal(start(h), "554 SMTP synchronization error\r\n");
    assert_int_equal(h->s->state, SESSION_CLOSING);
}

static void test_bare_lf_dot_does_not_end_data(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO c\r\n");
    feed(h, "MAIL FROM:<a@b>\r\nRCPT TO:<u@localhost>\r\n");
    feed(h, "DATA\r\n");
    assert_string_equal(feed(h, "line\n.\nMAIL FROM:<evil@x>\r\n"), "");
    assert_int_equal(h->s->state, SESSION_DATA);
    assert_true(strncmp(feed(h, ".\r\n"), "250 ", 4) == 0);
}

static void test_prdr(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO c\r\n");
    assert_string_equal(feed(h, "MAIL FROM:<a@b> PRDR\r\n"), "250 2.1.0 OK, PRDR Requested\r\n");
    feed(h, "RCPT TO:<good@localhost>\r\nRCPT TO:<tmp@localhost>\r\nRCPT TO:<bad@localhost>\r\n");
    feed(h, "DATA\r\n");
    const char *r = feed(h, "Subject: p\r\n\r\nhi\r\n.\r\n");
    const char *expect_head = "353 PRDR content analysis beginning\r\n"
                              "250 2.1.5 PRDR R=<good@localhost> acceptance\r\n"
                              "450 4.7.1 PRDR R=<tmp@localhost> temporary refusal\r\n"
                              "550 5.7.1 PRDR R=<bad@localhost> refusal\r\n"
                              "250 2.0.0 id=";
    assert_true(strncmp(r, expect_head, strlen(expect_head)) == 0);
    assert_non_null(strstr(r, " message accepted for some recipients\r\n"));
}

static void test_proxy_failed_mode(void **state)
{
    struct harness *h = *state;
    session_set_proxy(h->s, true, false, false, NULL, 0, NULL, 0, "timeout");
    assert_true(strncmp(start(h), "220 ", 4) == 0);
    assert_string_equal(feed(h, "EHLO localhost\r\n"),
                        "503 Command refused, required Proxy negotiation failed\r\n");
    assert_string_equal(feed(h, "QUIT\r\n"), "221 test.example closing connection\r\n");
}

static void test_proxy_variables(void **state)
{
    struct harness *h = *state;
    session_set_proxy(h->s, true, true, false, "203.0.113.9", 5555, "198.51.100.1", 25, NULL);
    struct arena arena;
    arena_init(&arena, 1024);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, h->cfg, session_var_lookup, h->s);
    const char *out, *err;
    assert_int_equal(expand_string(&ctx,
                                   "$sender_host_address:$sender_host_port "
                                   "$proxy_host_address:$proxy_host_port "
                                   "$proxy_target_address:$proxy_target_port $proxy_session",
                                   &out, &err),
                     EXPAND_OK);
    assert_string_equal(out, "203.0.113.9:5555 192.0.2.1:4321 198.51.100.1:25 yes");
    arena_reset(&arena);
}

int main(void)
{
    char dir[64];
    if (!test_tmpdir(dir, sizeof dir, "session")) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(spool_path, sizeof spool_path, "%s/spool", dir);
    char err[256];
    if (!spool_init(spool_path, 64, err, sizeof err)) {
        fprintf(stderr, "spool_init: %s\n", err);
        return 1;
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_banner_and_ehlo),
        T(test_control_queue_only_is_per_message),
        T(test_quit_acl_message),
        T(test_message_is_spooled),
        T(test_rejections),
        T(test_too_big_after_data),
        T(test_unknown_commands_drop),
        T(test_sync_error_after_data),
        T(test_sync_error_before_banner),
        T(test_bare_lf_dot_does_not_end_data),
        T(test_prdr),
        T(test_proxy_failed_mode),
        T(test_proxy_variables),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    spool_shutdown();
    if (!test_rmtree(dir))
        fprintf(stderr, "cleanup of %s failed\n", dir);
    return rc;
}
