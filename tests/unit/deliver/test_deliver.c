/*
 * test_deliver.c - delivery of spooled messages through real routers and the maildir
 * transport: accept, redirect lists, :blackhole:, :fail: (with and without allow_fail),
 * lsearch alias files, loops, unrouteable addresses, deferral and retry, log lines,
 * bounces and deliver_route_test().
 */
#include "deliver_test_env.h"

#include <time.h>

static const char *MESSAGE = "Subject: hello\r\nFrom: <sender@localhost>\r\n\r\nline one\r\n"
                             "line two\r\n";

#define TRANSPORT_MAILDIR                                                                          \
    "begin transports\n"                                                                           \
    "local_maildir:\n"                                                                             \
    "  driver = appendfile\n"                                                                      \
    "  maildir_format = true\n"                                                                    \
    "  directory = @ROOT@/mail/${lc:$local_part}\n"                                                \
    "  return_path_add\n"                                                                          \
    "  envelope_to_add = true\n"                                                                   \
    "  delivery_date_add\n"

#define ROUTER_LOCAL_USER                                                                          \
    "local_user:\n"                                                                                \
    "  driver = accept\n"                                                                          \
    "  domains = +local_domains\n"                                                                 \
    "  transport = local_maildir\n"

static const char *mail_new(const char *user)
{
    return test_path("mail/%s/new", user);
}

static void deliver_one(const struct config *cfg, const char *sender, const char *rcpt,
                        char id[SPOOL_ID_LEN + 1])
{
    const char *rcpts[] = {rcpt};
    test_spool_message(sender, rcpts, 1, MESSAGE, id);
    assert_true(deliver_message(cfg, id));
}

static void assert_log(const char *id, const char *expected)
{
    char *lines = test_log_lines("main", id);
    if (strcmp(lines, expected) != 0)
        fail_msg("log for %s:\n%s\nexpected:\n%s", id, lines, expected);
    free(lines);
}

static void test_accept_maildir(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "sender@example.com", "User1@localhost", id);

    assert_int_equal(test_count_files(mail_new("user1")), 1);
    assert_int_equal(test_count_files(test_path("mail/user1/tmp")), 0);
    assert_int_equal(test_count_files(test_path("mail/user1/cur")), 0);
    char *msg = test_only_file(mail_new("user1"));
    assert_non_null(msg);
    const char *expect_head = "Return-path: <sender@example.com>\n"
                              "Envelope-to: User1@localhost\n"
                              "Delivery-date: ";
    assert_memory_equal(msg, expect_head, strlen(expect_head));
    const char *body = strstr(msg, "\nSubject: hello\n");
    assert_non_null(body);
    assert_string_equal(body + 1,
                        "Subject: hello\nFrom: <sender@localhost>\n\nline one\nline two\n");
    free(msg);
    assert_log(id, "=> User1 <User1@localhost> R=local_user T=local_maildir\nCompleted\n");
    assert_false(test_in_spool(id));
    config_free(cfg);
}

static void test_file_mode_and_crlf(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_LOCAL_USER "begin transports\n"
                                     "local_maildir:\n"
                                     "  driver = appendfile\n"
                                     "  maildir_format\n"
                                     "  directory = @ROOT@/mail/${lc:$local_part}\n"
                                     "  use_crlf\n"
                                     "  mode = 0640\n");
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "crlf@localhost", id);
    char *msg = test_only_file(mail_new("crlf"));
    assert_non_null(msg);
    assert_string_equal(msg, MESSAGE);
    free(msg);
    DIR *d = opendir(mail_new("crlf"));
    struct dirent *de;
    while ((de = readdir(d)) && de->d_name[0] == '.')
        ;
    assert_non_null(de);
    assert_non_null(strstr(de->d_name, ".test.example"));
    struct stat st;
    assert_int_equal(stat(test_path("mail/crlf/new/%s", de->d_name), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    closedir(d);
    config_free(cfg);
}

static void test_redirect_list(void **state)
{
    (void)state;
    struct config *cfg = test_config(
        "begin routers\n"
        "aliases:\n"
        "  driver = redirect\n"
        "  local_parts = team\n"
        "  data = alice, bob@localhost\\n  \\\\carol\n" ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "team@localhost", id);
    assert_int_equal(test_count_files(mail_new("alice")), 1);
    assert_int_equal(test_count_files(mail_new("bob")), 1);
    assert_int_equal(test_count_files(mail_new("carol")), 1);
    assert_int_equal(test_count_files(mail_new("team")), -1);
    char *alice = test_only_file(mail_new("alice"));
    assert_non_null(strstr(alice, "Envelope-to: team@localhost\n"));
    free(alice);
    assert_log(id, "=> alice <team@localhost> R=local_user T=local_maildir\n"
                   "=> bob <team@localhost> R=local_user T=local_maildir\n"
                   "=> carol <team@localhost> R=local_user T=local_maildir\n"
                   "Completed\n");
    config_free(cfg);
}

static void test_blackhole(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n"
                                     "blackhole_router:\n"
                                     "  driver = redirect\n"
                                     "  local_parts = hole\n"
                                     "  data = :blackhole:\n" ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "a@example.com", "hole@localhost", id);
    assert_int_equal(test_count_files(mail_new("hole")), -1);
    assert_log(id, "=> :blackhole: <hole@localhost> R=blackhole_router\nCompleted\n");
    assert_false(test_in_spool(id));
    config_free(cfg);
}

#define ROUTER_FAIL_ALIASES(allow)                                                                 \
    "aliases:\n"                                                                                   \
    "  driver = redirect\n"                                                                        \
    "  local_parts = gone : later\n"                                                               \
    "  data = ${if eq{$local_part}{gone}{:fail: Gone away, no forwarding}{:defer: try "            \
    "later}}\n" allow

static void test_fail_allowed_bounces(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_FAIL_ALIASES("  allow_fail\n")
                                         ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "sender@localhost", "gone@localhost", id);
    char *lines = test_log_lines("main", id);
    assert_string_equal(lines,
                        "** gone@localhost R=aliases: Gone away, no forwarding\nCompleted\n");
    free(lines);
    assert_false(test_in_spool(id));
    /* the bounce went to the sender's maildir */
    char *bounce = test_only_file(mail_new("sender"));
    assert_non_null(bounce);
    assert_non_null(strstr(bounce, "Return-path: <>\n"));
    assert_non_null(strstr(bounce, "From: Mail Delivery System <Mailer-Daemon@localhost>\n"));
    assert_non_null(strstr(bounce, "X-Failed-Recipients: gone@localhost\n"));
    assert_non_null(
        strstr(bounce, "This message was created automatically by mail delivery software.\n"));
    assert_non_null(strstr(bounce, "  gone@localhost\n    Gone away, no forwarding\n"));
    assert_non_null(strstr(bounce, "\nSubject: hello\n"));
    assert_non_null(strstr(bounce, "line two\n"));
    free(bounce);
    char *all = test_log_lines("main", NULL);
    char arrival[128];
    snprintf(arrival, sizeof arrival, "<= <> R=%s U=postern P=local S=", id);
    assert_non_null(strstr(all, arrival));
    free(all);
    config_free(cfg);
}

static void test_fail_not_allowed_defers(void **state)
{
    (void)state;
    struct config *cfg =
        test_config("begin routers\n" ROUTER_FAIL_ALIASES("") ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "gone@localhost", id);
    /* paniclog lines are copied to the mainlog, as in Exim */
    assert_log(id, "router aliases: :fail: used in redirection data but allow_fail is not set "
                   "for gone@localhost\n"
                   "== gone@localhost R=aliases defer (-1): :fail: used in redirection data but "
                   "allow_fail is not set\n");
    assert_true(test_in_spool(id));
    char *panic = test_log_lines("panic", id);
    assert_non_null(strstr(panic, "router aliases: :fail: used in redirection data but "
                                  "allow_fail is not set for gone@localhost"));
    free(panic);
    assert_true(spool_remove(id));
    config_free(cfg);
}

static void test_defer_allowed(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_FAIL_ALIASES("  allow_defer\n")
                                         ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "later@localhost", id);
    assert_log(id, "== later@localhost R=aliases defer (-1): try later\n");
    assert_true(test_in_spool(id));
    assert_true(spool_remove(id));
    config_free(cfg);
}

static void test_lsearch_aliases(void **state)
{
    (void)state;
    FILE *f = fopen(test_path("aliases"), "w");
    fputs("# system aliases\npostmaster: root\nstaff: dave, erin@localhost\n", f);
    fclose(f);
    struct config *cfg =
        test_config("begin routers\n"
                    "system_aliases:\n"
                    "  driver = redirect\n"
                    "  data = ${lookup{$local_part}lsearch{@ROOT@/aliases}}\n" ROUTER_LOCAL_USER
                        TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "staff@localhost", id);
    assert_log(id, "=> dave <staff@localhost> R=local_user T=local_maildir\n"
                   "=> erin <staff@localhost> R=local_user T=local_maildir\n"
                   "Completed\n");
    /* not in the file: the router declines and local_user takes it */
    deliver_one(cfg, "", "frank@localhost", id);
    assert_log(id, "=> frank <frank@localhost> R=local_user T=local_maildir\nCompleted\n");
    config_free(cfg);
}

static void test_redirect_loops(void **state)
{
    (void)state;
    FILE *f = fopen(test_path("loop-aliases"), "w");
    fputs("ping: pong\npong: ping\nself: self, other\n", f);
    fclose(f);
    struct config *cfg = test_config("begin routers\n"
                                     "aliases:\n"
                                     "  driver = redirect\n"
                                     "  data = ${lookup{$local_part}lsearch{@ROOT@/loop-aliases}}\n"
                                     "growing:\n"
                                     "  driver = redirect\n"
                                     "  local_parts = ^x+\\$\n"
                                     "  data = x$local_part\n" ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    /* ping -> pong -> ping: the aliases router skips ping the second time round */
    deliver_one(cfg, "", "ping@localhost", id);
    assert_log(id, "=> ping <ping@localhost> R=local_user T=local_maildir\nCompleted\n");
    /* self -> self, other */
    deliver_one(cfg, "", "self@localhost", id);
    assert_log(id, "=> self <self@localhost> R=local_user T=local_maildir\n"
                   "=> other <self@localhost> R=local_user T=local_maildir\n"
                   "Completed\n");
    /* x -> xx -> xxx ... bounded */
    deliver_one(cfg, "", "x@localhost", id);
    assert_log(id, "** xxxxxxxxxxxx@localhost <x@localhost>: too many redirections (routing "
                   "loop?)\nCompleted\n");
    config_free(cfg);
}

static void test_unrouteable(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "nobody@elsewhere.example", id);
    assert_log(id, "** nobody@elsewhere.example: Unrouteable address\nCompleted\n");
    assert_false(test_in_spool(id));
    config_free(cfg);
}

static void test_defer_then_retry(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_LOCAL_USER "begin transports\n"
                                     "local_maildir:\n"
                                     "  driver = appendfile\n"
                                     "  maildir_format = true\n"
                                     "  directory = @ROOT@/blocked/${lc:$local_part}\n");
    FILE *f = fopen(test_path("blocked"), "w"); /* a file where a directory must go */
    fclose(f);
    const char *rcpts[] = {"ok@localhost", "later@localhost"};
    char id[SPOOL_ID_LEN + 1];
    test_spool_message("", rcpts, 2, MESSAGE, id);
    assert_true(deliver_message(cfg, id));
    char expect[1024];
    snprintf(expect, sizeof expect,
             "== ok@localhost R=local_user T=local_maildir defer (20): Not a directory: while "
             "checking directory %s/blocked/ok\n"
             "== later@localhost R=local_user T=local_maildir defer (20): Not a directory: "
             "while checking directory %s/blocked/later\n",
             test_root, test_root);
    assert_log(id, expect);
    assert_true(test_in_spool(id));

    unlink(test_path("blocked"));
    mkdir(test_path("blocked"), 0700);
    fclose(fopen(test_path("blocked/later"), "w")); /* ok can be delivered, later cannot */
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("blocked/ok/new")), 1);
    assert_true(test_in_spool(id));

    unlink(test_path("blocked/later"));
    assert_int_equal(deliver_queue_run(cfg), 1);
    assert_int_equal(test_count_files(test_path("blocked/ok/new")), 1); /* not again */
    assert_int_equal(test_count_files(test_path("blocked/later/new")), 1);
    assert_false(test_in_spool(id));
    char *lines = test_log_lines("main", id);
    const char *tail = "=> later <later@localhost> R=local_user T=local_maildir\nCompleted\n";
    assert_non_null(strstr(lines, "=> ok <ok@localhost> R=local_user T=local_maildir\n"));
    assert_string_equal(lines + strlen(lines) - strlen(tail), tail);
    free(lines);
    config_free(cfg);
}

static void test_defer_too_long_fails(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_FAIL_ALIASES("  allow_defer\n")
                                         ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    cfg->timeout_frozen_after = 3600;
    test_received_age = 7200;
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "later@localhost", id);
    test_received_age = 0;
    assert_log(id, "** later@localhost R=aliases: try later: retry timeout exceeded\nCompleted\n");
    assert_false(test_in_spool(id));
    config_free(cfg);
}

static void test_redirect_partial_defer_no_duplicates(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n"
                                     "aliases:\n"
                                     "  driver = redirect\n"
                                     "  local_parts = grp\n"
                                     "  data = gina, hank\n" ROUTER_LOCAL_USER "begin transports\n"
                                     "local_maildir:\n"
                                     "  driver = appendfile\n"
                                     "  maildir_format = true\n"
                                     "  directory = @ROOT@/grp/${lc:$local_part}\n");
    mkdir(test_path("grp"), 0700);
    fclose(fopen(test_path("grp/hank"), "w"));
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "", "grp@localhost", id);
    assert_int_equal(test_count_files(test_path("grp/gina/new")), 1);
    assert_true(test_in_spool(id));
    unlink(test_path("grp/hank"));
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("grp/gina/new")), 1);
    assert_int_equal(test_count_files(test_path("grp/hank/new")), 1);
    assert_false(test_in_spool(id));
    config_free(cfg);
}

static void test_variables(void **state)
{
    (void)state;
    struct config *cfg = test_config(
        "begin routers\n"
        "vip:\n"
        "  driver = accept\n"
        "  condition = ${if eq{$sender_address_domain}{vip.example}}\n"
        "  address_data = ${uc:$local_part}\n"
        "  transport = vars_maildir\n" ROUTER_LOCAL_USER "begin transports\n"
        "vars_maildir:\n"
        "  driver = appendfile\n"
        "  maildir_format = true\n"
        "  directory = @ROOT@/vars/${address_data}_${domain}_${sender_address_local_part}_"
        "${router_name}_${transport_name}_${message_size}_${sender_host_address}_"
        "${received_protocol}_${original_local_part}\n"
        "local_maildir:\n"
        "  driver = appendfile\n"
        "  maildir_format = true\n"
        "  directory = @ROOT@/mail/${lc:$local_part}\n");
    char id[SPOOL_ID_LEN + 1];
    deliver_one(cfg, "boss@vip.example", "ivy@localhost", id);
    char dir[512];
    snprintf(dir, sizeof dir,
             "vars/IVY_localhost_boss_vip_vars_maildir_%zu_192.0.2.7_esmtp_ivy/new",
             strlen(MESSAGE));
    assert_int_equal(test_count_files(test_path("%s", dir)), 1);
    deliver_one(cfg, "pleb@example.com", "ivy@localhost", id);
    assert_int_equal(test_count_files(mail_new("ivy")), 1);
    config_free(cfg);
}

static void test_route_test(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_FAIL_ALIASES(
        "  allow_fail\n  allow_defer\n") ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    struct arena a;
    arena_init(&a, 0);
    const char *reason = NULL;
    assert_int_equal(deliver_route_test(cfg, &a, "someone@localhost", &reason), 0);
    assert_int_equal(deliver_route_test(cfg, &a, "postmaster", &reason), 0); /* qualified */
    assert_int_equal(deliver_route_test(cfg, &a, "x@elsewhere.example", &reason), 1);
    assert_string_equal(reason, "Unrouteable address");
    assert_int_equal(deliver_route_test(cfg, &a, "gone@localhost", &reason), 1);
    assert_string_equal(reason, "Gone away, no forwarding");
    assert_int_equal(deliver_route_test(cfg, &a, "later@localhost", &reason), 2);
    assert_string_equal(reason, "try later");
    arena_reset(&a);
    assert_int_equal(test_count_files(mail_new("someone")), -1); /* nothing delivered */
    config_free(cfg);
}

static void test_locked_message_is_skipped(void **state)
{
    (void)state;
    struct config *cfg = test_config("begin routers\n" ROUTER_LOCAL_USER TRANSPORT_MAILDIR);
    const char *rcpts[] = {"locked@localhost"};
    char id[SPOOL_ID_LEN + 1];
    test_spool_message("", rcpts, 1, MESSAGE, id);
    int lock = spool_lock_message(id);
    assert_true(lock >= 0);
    assert_false(deliver_message(cfg, id));
    spool_unlock_message(lock);
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(mail_new("locked")), 1);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_maildir),
        cmocka_unit_test(test_file_mode_and_crlf),
        cmocka_unit_test(test_redirect_list),
        cmocka_unit_test(test_blackhole),
        cmocka_unit_test(test_fail_allowed_bounces),
        cmocka_unit_test(test_fail_not_allowed_defers),
        cmocka_unit_test(test_defer_allowed),
        cmocka_unit_test(test_lsearch_aliases),
        cmocka_unit_test(test_redirect_loops),
        cmocka_unit_test(test_unrouteable),
        cmocka_unit_test(test_defer_then_retry),
        cmocka_unit_test(test_defer_too_long_fails),
        cmocka_unit_test(test_redirect_partial_defer_no_duplicates),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_route_test),
        cmocka_unit_test(test_locked_message_is_skipped),
    };
    return cmocka_run_group_tests(tests, test_env_setup, test_env_teardown);
}
