/*
 * test_options.c - the main-option binder (src/config/options.c): defaults, typed values,
 * aliases, bare booleans, log_selector, errors naming file:line and the value, -bP
 * printing, config_load_text()/config_free() and the compiler table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static struct config cfg;
static struct arena arena;
static char err[1024];

static int setup(void **state)
{
    arena_init(&arena, 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.arena = &arena;
    cfg.source = "test.conf";
    err[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    arena_reset(&arena);
    return 0;
}

static bool bind_text(const char *text)
{
    if (!conf_parse_text(&arena, text, strlen(text), "test.conf", NULL, &cfg.tree, err, sizeof err))
        fail_msg("parse error: %s", err);
    return config_bind_main(&cfg, err, sizeof err);
}

static void bind_ok(const char *text)
{
    if (!bind_text(text))
        fail_msg("bind error: %s", err);
}

static void bind_fails(const char *text, const char *expect)
{
    assert_false(bind_text(text));
    if (!strstr(err, expect))
        fail_msg("error \"%s\" does not contain \"%s\"", err, expect);
}

static char *print_option(const char *name)
{
    struct buf b;
    buf_init(&b);
    if (!config_print_option(&cfg, name, &b)) {
        buf_free(&b);
        return NULL;
    }
    char *s = arena_strdup(&arena, b.data ? b.data : "");
    buf_free(&b);
    return s;
}

static void test_selfcheck(void **state)
{
    if (!config_options_selfcheck(err, sizeof err))
        fail_msg("%s", err);
}

static void test_defaults(void **state)
{
    bind_ok("");
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    assert_string_equal(cfg.primary_hostname, u.nodename);
    assert_ptr_equal(cfg.qualify_domain, cfg.primary_hostname);
    assert_string_equal(cfg.smtp_banner,
                        "$smtp_active_hostname ESMTP postern $version_number $tod_full");
    assert_true(strncmp(cfg.received_header_text, "Received: ", 10) == 0);
    assert_non_null(strstr(cfg.received_header_text, "id $message_exim_id"));
    assert_string_equal(cfg.local_interfaces, "<; 0.0.0.0 ; ::");
    assert_string_equal(cfg.daemon_smtp_ports, "25");
    assert_int_equal(cfg.smtp_connect_backlog, 4096);
    assert_int_equal(cfg.smtp_accept_max, 10000);
    assert_null(cfg.smtp_accept_max_per_host);
    assert_int_equal(cfg.smtp_worker_threads, 0);
    assert_string_equal(cfg.proxy_required_hosts, "");
    assert_int_equal(cfg.proxy_protocol_timeout, 3);
    assert_int_equal(cfg.message_size_limit, 50 * 1024 * 1024);
    assert_int_equal(cfg.recipients_max, 50000);
    assert_int_equal(cfg.smtp_max_unknown_commands, 3);
    assert_int_equal(cfg.smtp_receive_timeout, 300);
    assert_int_equal(cfg.smtp_max_line_length, 2048);
    assert_true(cfg.smtp_enforce_sync);
    assert_string_equal(cfg.pipelining_advertise_hosts, "*");
    assert_false(cfg.prdr_enable);
    assert_string_equal(cfg.host_lookup, "");
    assert_null(cfg.acl_smtp_connect);
    assert_null(cfg.acl_smtp_rcpt);
    assert_string_equal(cfg.acl_smtp_data_prdr, "accept");
    assert_string_equal(cfg.spool_directory, "./var/spool");
    assert_int_equal(cfg.queue_run_max, 4);
    assert_int_equal(cfg.retry_interval, 15 * 60);
    assert_int_equal(cfg.timeout_frozen_after, 4 * 86400);
    assert_int_equal(cfg.spool_commit_max_batch, 256);
    assert_string_equal(cfg.log_file_path, "./var/log/%slog");
    assert_int_equal(cfg.log_flags, 0);
}

static void test_values(void **state)
{
    bind_ok("primary_hostname = mx.example.com\n"
            "message_size_limit = 10K\n"
            "smtp_connect_backlog = 0x100\n"
            "smtp_accept_max = 010\n"
            "recipients_max = 2K\n"
            "smtp_receive_timeout = 1h30m\n"
            "proxy_protocol_timeout = 10\n"
            "smtp_enforce_sync = no\n"
            "prdr_enable = TRUE\n"
            "acl_smtp_rcpt = acl_check_rcpt\n"
            "host_lookup =\n"
            "smtp_max_line_length = 64K\n");
    assert_string_equal(cfg.primary_hostname, "mx.example.com");
    assert_string_equal(cfg.qualify_domain, "mx.example.com");
    assert_int_equal(cfg.message_size_limit, 10240);
    assert_int_equal(cfg.smtp_connect_backlog, 256);
    assert_int_equal(cfg.smtp_accept_max, 8);
    assert_int_equal(cfg.recipients_max, 2048);
    assert_int_equal(cfg.smtp_receive_timeout, 5400);
    assert_int_equal(cfg.proxy_protocol_timeout, 10);
    assert_false(cfg.smtp_enforce_sync);
    assert_true(cfg.prdr_enable);
    assert_string_equal(cfg.acl_smtp_rcpt, "acl_check_rcpt");
    assert_string_equal(cfg.host_lookup, "");
    assert_int_equal(cfg.smtp_max_line_length, 65536);
}

static void test_qualify_domain_explicit(void **state)
{
    bind_ok("qualify_domain = example.org\nprimary_hostname = mx.example.org\n");
    assert_string_equal(cfg.qualify_domain, "example.org");
}

static void test_bare_booleans(void **state)
{
    bind_ok("prdr_enable\nno_smtp_enforce_sync\n");
    assert_true(cfg.prdr_enable);
    assert_false(cfg.smtp_enforce_sync);
    bind_ok("prdr_enable\nnot_prdr_enable\nsmtp_enforce_sync = false\nsmtp_enforce_sync\n");
    assert_false(cfg.prdr_enable); /* last setting wins */
    assert_true(cfg.smtp_enforce_sync);
}

static void test_aliases(void **state)
{
    bind_ok("hosts_proxy = 10.0.0.1 : 10.0.0.2\nacl_data_smtp_prdr = check_prdr\n");
    assert_string_equal(cfg.proxy_required_hosts, "10.0.0.1 : 10.0.0.2");
    assert_string_equal(cfg.acl_smtp_data_prdr, "check_prdr");
    assert_string_equal(print_option("hosts_proxy"), "hosts_proxy = 10.0.0.1 : 10.0.0.2\n");
    assert_string_equal(print_option("proxy_required_hosts"),
                        "proxy_required_hosts = 10.0.0.1 : 10.0.0.2\n");
}

static void test_unknown_option(void **state)
{
    bind_fails("primary_hostname = x\n\nfoo = bar\n", "test.conf:3: main option \"foo\" unknown");
    bind_fails("no_foo\n", "test.conf:1: main option \"no_foo\" unknown");
    bind_fails("hostlist_x = 1\n", "main option \"hostlist_x\" unknown");
    /* options of Exim's that this build does not implement are refused, not ignored */
    bind_fails("dns_servers = 127.0.0.1\n", "test.conf:1: main option \"dns_servers\" unknown");
    bind_fails("primary_hostname = x\nhost_lookup = *\n",
               "test.conf:2: main option \"host_lookup\": host name lookups are not supported");
}

static void test_bad_values(void **state)
{
    bind_fails("\nmessage_size_limit = 10Q\n",
               "test.conf:2: main option \"message_size_limit\": malformed size");
    assert_non_null(strstr(err, "(near '10Q')"));
    bind_fails("smtp_receive_timeout = 5 minutes\n",
               "test.conf:1: main option \"smtp_receive_timeout\": malformed time interval");
    bind_fails("prdr_enable = maybe\n",
               "test.conf:1: main option \"prdr_enable\": malformed boolean");
    assert_non_null(strstr(err, "(near 'maybe')"));
    bind_fails("recipients_max = lots\n", "main option \"recipients_max\": malformed integer");
    bind_fails("recipients_max = 09\n", "malformed integer");
    bind_fails("recipients_max = -1\n", "main option \"recipients_max\": value out of range");
    bind_fails("smtp_max_line_length = 100\n", "value out of range 512..1048576");
    bind_fails("smtp_accept_max = 4G\n", "value out of range");
    bind_fails("message_size_limit\n",
               "test.conf:1: main option \"message_size_limit\" needs a value");
    bind_fails("no_spool_directory\n", "main option \"spool_directory\" needs a value");
}

static void test_log_selector(void **state)
{
    bind_ok("log_selector = +proxy +smtp_connection\n");
    assert_int_equal(cfg.log_flags, LOG_SEL_PROXY | LOG_SEL_SMTP_CONNECTION);
    assert_string_equal(cfg.log_selector, "+proxy +smtp_connection");
    bind_ok("log_selector = +all -pipelining -tls_cipher -subject\n");
    assert_int_equal(cfg.log_flags, LOG_SEL_PROXY | LOG_SEL_SMTP_CONNECTION |
                                        LOG_SEL_RECEIVED_RECIPIENTS | LOG_SEL_INCOMING_PORT);
    bind_ok("log_selector = +incoming_port+received_recipients\n");
    assert_int_equal(cfg.log_flags, LOG_SEL_INCOMING_PORT | LOG_SEL_RECEIVED_RECIPIENTS);

    bind_fails("log_selector = +proxy +frobnicate\n",
               "test.conf:1: main option \"log_selector\": unknown log_selector \"frobnicate\"");
    bind_fails("log_selector = proxy\n", "log_selector items start with '+' or '-'");
    bind_fails("log_selector = +\n", "unknown log_selector \"\"");
    /* Exim names postern never logs: "-" is honoured, "+" would be ignored, so refused */
    bind_fails("log_selector = +pipelining\n", "\"+pipelining\" is not supported yet");
    bind_fails("log_selector = +proxy +tls_cipher\n",
               "test.conf:1: main option \"log_selector\": log_selector \"+tls_cipher\" is not "
               "supported yet");

    unsigned flags = LOG_SEL_PROXY;
    assert_true(config_parse_log_selector("", &flags, err, sizeof err));
    assert_int_equal(flags, LOG_SEL_PROXY);
    assert_true(config_parse_log_selector(" -proxy ", &flags, err, sizeof err));
    assert_int_equal(flags, 0);
}

static void test_print(void **state)
{
    bind_ok("smtp_receive_timeout = 90m\nmessage_size_limit = 3072\nrecipients_max = 7\n"
            "timeout_frozen_after = 1w2d3h4m5s\nno_prdr_enable\n");
    assert_string_equal(print_option("prdr_enable"), "no_prdr_enable\n");
    assert_string_equal(print_option("smtp_enforce_sync"), "smtp_enforce_sync\n");
    assert_string_equal(print_option("smtp_receive_timeout"), "smtp_receive_timeout = 1h30m\n");
    assert_string_equal(print_option("timeout_frozen_after"),
                        "timeout_frozen_after = 1w2d3h4m5s\n");
    assert_string_equal(print_option("message_size_limit"), "message_size_limit = 3K\n");
    assert_string_equal(print_option("recipients_max"), "recipients_max = 7\n");
    assert_string_equal(print_option("acl_smtp_connect"), "acl_smtp_connect = \n");
    assert_string_equal(print_option("smtp_max_line_length"), "smtp_max_line_length = 2048\n");
    char *rh = print_option("received_header_text");
    assert_null(strchr(rh, '\t'));
    assert_non_null(strstr(rh, "\\n\\t"));
    assert_null(print_option("no_such_option"));

    char *all = print_option(NULL);
    assert_true(strncmp(all, "primary_hostname = ", 19) == 0);
    assert_null(strstr(all, "hosts_proxy")); /* aliases are not listed twice */
    int lines = 0;
    for (const char *p = all; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 44); /* one per non-alias option */
    assert_non_null(strstr(all, "\nlog_selector = \n"));
}

static void test_queue_only_options(void **state)
{
    bind_ok("primary_hostname = x\n");
    assert_false(cfg.queue_only);
    assert_null(cfg.queue_only_file);
    assert_int_equal(cfg.queue_only_path_count, 0);
    assert_int_equal(cfg.queue_only_load, -1);
    assert_true(cfg.queue_only_load_latch);
    assert_true(cfg.queue_only_override);
    assert_string_equal(print_option("queue_only_load"), "queue_only_load = \n");

    bind_ok("queue_only\nqueue_only_file = /var/run/a : /b\nqueue_only_load = 2.5\n"
            "no_queue_only_load_latch\nqueue_only_override = false\n");
    assert_true(cfg.queue_only);
    assert_int_equal(cfg.queue_only_path_count, 2);
    assert_string_equal(cfg.queue_only_paths[0], "/var/run/a");
    assert_string_equal(cfg.queue_only_paths[1], "/b");
    assert_int_equal(cfg.queue_only_load, 2500);
    assert_false(cfg.queue_only_load_latch);
    assert_false(cfg.queue_only_override);
    assert_string_equal(print_option("queue_only_load"), "queue_only_load = 2.5\n");
    bind_ok("queue_only_load = 8\n");
    assert_int_equal(cfg.queue_only_load, 8000);
    bind_ok("queue_only_load = 0.125\n");
    assert_string_equal(print_option("queue_only_load"), "queue_only_load = 0.125\n");

    bind_fails("queue_only_load = 1.2345\n", "test.conf:1: main option \"queue_only_load\": "
                                             "malformed number");
    bind_fails("queue_only_load = -1\n", "malformed number");
    bind_fails("queue_only_load = .5\n", "malformed number");
    bind_fails("queue_only_load = 5.\n", "malformed number");
    bind_fails("primary_hostname = x\nqueue_only_file = /a : relative\n",
               "test.conf:2: main option \"queue_only_file\": \"relative\" is not an absolute "
               "path");
    bind_fails("queue_only_file = smtp/var/run/hold\n",
               "\"smtp/var/run/hold\" (queue remote SMTP deliveries) is not supported yet");
    bind_fails("event_action = ${run{/bin/true}}\n",
               "test.conf:1: main option \"event_action\" is not supported yet");
}

static void test_queue_only_now(void **state)
{
    char dir[] = "/tmp/postern-qof-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char text[512];
    snprintf(text, sizeof text, "queue_only_file = %s/hold\n", dir);
    bind_ok(text);
    bool latch = false;
    assert_false(config_queue_only_now(&cfg, &latch)); /* no file: deliver */
    char path[128];
    snprintf(path, sizeof path, "%s/hold", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_true(config_queue_only_now(&cfg, &latch)); /* the file exists: wait */
    assert_false(latch);                              /* a file does not latch */
    unlink(path);
    rmdir(dir);
    assert_false(config_queue_only_now(&cfg, &latch));
    latch = true; /* control = queue_only, or an earlier load latch */
    assert_true(config_queue_only_now(&cfg, &latch));

    /* the load: 0 is exceeded by any load above 0.000 (read it to know), a huge value
     * never is */
    double load = 0;
    assert_int_equal(getloadavg(&load, 1), 1);
    bind_ok("queue_only_load = 100000\n");
    latch = false;
    assert_false(config_queue_only_now(&cfg, &latch));
    if ((int64_t)(load * 1000.0) > 0) {
        bind_ok("queue_only_load = 0\n");
        assert_true(config_queue_only_now(&cfg, &latch));
        assert_true(latch); /* queue_only_load_latch defaults to true */
        bind_ok("queue_only_load = 0\nqueue_only_load_latch = false\n");
        latch = false;
        assert_true(config_queue_only_now(&cfg, &latch));
        assert_false(latch);
    } else {
        print_message("load average is 0.00: the queue_only_load = 0 case is skipped\n");
    }
}

static void test_delivery_mode(void **state)
{
    /* -odq queues whatever queue_only_override says */
    config_set_delivery_mode(CONFIG_DELIVERY_QUEUE);
    bind_ok("queue_only_override = false\n");
    assert_true(cfg.queue_only);
    /* -odi/-odb override queue_only and queue_only_file only with queue_only_override */
    config_set_delivery_mode(CONFIG_DELIVERY_NOW);
    bind_ok("queue_only\nqueue_only_file = /\n");
    assert_false(cfg.queue_only);
    assert_int_equal(cfg.queue_only_path_count, 0);
    assert_string_equal(cfg.queue_only_file, "/"); /* -bP still shows the setting */
    bind_ok("queue_only\nqueue_only_file = /\nno_queue_only_override\n");
    assert_true(cfg.queue_only);
    assert_int_equal(cfg.queue_only_path_count, 1);
    config_set_delivery_mode(CONFIG_DELIVERY_DEFAULT);
    bind_ok("primary_hostname = x\n");
    assert_false(cfg.queue_only);
}

static void test_embedded_default_binds(void **state)
{
    bind_ok(config_embedded_default);
    assert_string_equal(cfg.primary_hostname, "localhost");
    assert_string_equal(cfg.daemon_smtp_ports, "2525");
    assert_true(cfg.prdr_enable);
    assert_string_equal(cfg.acl_smtp_rcpt, "acl_check_rcpt");
}

static void test_load_text(void **state)
{
    char e[512];
    struct config *c =
        config_load_text("primary_hostname = a\nbogus = 1\n", "x.conf", NULL, e, sizeof e);
    assert_null(c);
    assert_string_equal(e, "x.conf:2: main option \"bogus\" unknown");
    c = config_load_text("a = \n.endif\n", "y.conf", NULL, e, sizeof e);
    assert_null(c);
    assert_string_equal(e, "y.conf:2: .endif without a matching .ifdef or .ifndef "
                           "(near '.endif')");

    c = config_load(NULL, NULL, e, sizeof e);
    if (!c)
        fail_msg("embedded default does not load: %s", e);
    assert_string_equal(c->source, "<embedded>");
    assert_string_equal(c->primary_hostname, "localhost");
    assert_non_null(c->acls);    /* built by the "acl" compiler */
    assert_non_null(c->deliver); /* built by the "deliver" compiler */
    config_free(c);
    assert_null(config_load("/nonexistent/p.conf", NULL, e, sizeof e));
    assert_non_null(strstr(e, "/nonexistent/p.conf: cannot read configuration file"));
    config_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selfcheck),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qualify_domain_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_booleans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_selector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_only_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_only_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedded_default_binds, setup, teardown),
        cmocka_unit_test(test_load_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
