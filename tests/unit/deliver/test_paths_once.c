/*
 * test_paths_once.c - what reaches the disk (issue 7): local parts that would change the
 * meaning of a mailbox path ("../x", "ceo/", "/ceo", "ceo//", ".", "..", "") are never
 * delivered, whatever the ACLs said, and the reason reaches the log and the bounce;
 * $local_part is the unquoted local part; and exactly-once delivery: an attempt after a
 * crash between a maildir delivery and its record finds the earlier delivery (in new/,
 * or moved to cur/ by a mail reader) instead of writing it again, and completes an
 * unpublished one.
 */
#include "deliver_test_env.h"

#include <fcntl.h>

static const char *MESSAGE = "Subject: once\r\n\r\nbody\r\n";

#define CONFIG                                                                                     \
    "begin routers\n"                                                                              \
    "by_file:\n"                                                                                   \
    "  driver = redirect\n"                                                                        \
    "  domains = test.example\n"                                                                   \
    "  file = @ROOT@/aliases/$local_part\n"                                                        \
    "local_user:\n"                                                                                \
    "  driver = accept\n"                                                                          \
    "  domains = +local_domains\n"                                                                 \
    "  transport = local_maildir\n"                                                                \
    "begin transports\n"                                                                           \
    "local_maildir:\n"                                                                             \
    "  driver = appendfile\n"                                                                      \
    "  maildir_format = true\n"                                                                    \
    "  create_directory\n"                                                                         \
    "  directory = @ROOT@/mail/${lc:$local_part}\n"

static void spool_one(const char *sender, const char *rcpt, char id[SPOOL_ID_LEN + 1])
{
    const char *rcpts[] = {rcpt};
    test_spool_message(sender, rcpts, 1, MESSAGE, id);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Every unsafe local part fails with its reason; nothing is created outside mail/ and
 * no mail/ceo appears; the sender's bounce carries the reason. */
static void test_unsafe_local_parts_fail(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    static const struct {
        const char *rcpt, *log;
    } cases[] = {
        {"\"../escaped\"@localhost", "local part \"../escaped\" contains '/'"},
        {"\"../../../../../../tmp/X\"@localhost", "contains '/'"},
        {"ceo/@localhost", "local part \"ceo/\" contains '/'"},
        {"/ceo@localhost", "local part \"/ceo\" contains '/'"},
        {"ceo//@localhost", "contains '/'"},
        {"\".\"@localhost", "local part \".\" is a relative directory name"},
        {"\"..\"@localhost", "local part \"..\" is a relative directory name"},
        {"\"\"@localhost", "local part \"\" is empty"},
        {"\"../aliases\"@test.example", "local part \"../aliases\" contains '/'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[SPOOL_ID_LEN + 1];
        spool_one("sender@localhost", cases[i].rcpt, id);
        assert_true(deliver_message(cfg, id));
        char *lines = test_log_lines("main", id);
        char *expect = NULL;
        assert_true(asprintf(&expect, "** %s", cases[i].rcpt) > 0);
        if (!strstr(lines, expect) || !strstr(lines, cases[i].log) || strstr(lines, "=> "))
            fail_msg("case %zu: log\n%s", i, lines);
        free(expect);
        free(lines);
        assert_false(test_in_spool(id));
    }
    assert_false(exists(test_path("escaped")));
    assert_false(exists(test_path("mail/ceo")));
    assert_false(exists(test_path("mail/ceo/")));
    assert_false(exists("/tmp/x\""));
    /* one bounce per failed message, to sender@localhost, naming the reason */
    assert_int_equal(test_count_files(test_path("mail/sender/new")), 9);
    char *all = test_log_lines("main", NULL);
    assert_non_null(strstr(all, "contains '/': not used in a file path"));
    free(all);
    config_free(cfg);
}

/* The quotes are not part of $local_part: "Ceo"@localhost is ceo's mailbox. */
static void test_quoted_local_part_is_unquoted(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    char id[SPOOL_ID_LEN + 1];
    spool_one("", "\"Ceo\"@localhost", id);
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("mail/ceo/new")), 1);
    char *lines = test_log_lines("main", id);
    assert_non_null(strstr(lines, "=> Ceo <\"Ceo\"@localhost> R=local_user"));
    free(lines);
    config_free(cfg);
}

/* ---- exactly once ---- */

struct saved_spool {
    char *header, *data;
    size_t header_len, data_len;
};

static char *read_all(const char *path, size_t *len)
{
    char *text = test_read_file(path);
    assert_non_null(text);
    *len = strlen(text);
    return text;
}

static void write_all_to(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* The spool as it was before delivery: what a crash before the record leaves behind. */
static void spool_save(const char *id, struct saved_spool *s)
{
    s->header = read_all(test_path("spool/input/%s-H", id), &s->header_len);
    s->data = read_all(test_path("spool/input/%s-D", id), &s->data_len);
}

static void spool_restore(const char *id, struct saved_spool *s)
{
    write_all_to(test_path("spool/input/%s-D", id), s->data, s->data_len);
    write_all_to(test_path("spool/input/%s-H", id), s->header, s->header_len);
    free(s->header);
    free(s->data);
    assert_true(test_in_spool(id));
}

/* The name of the only file in dir (static buffer), or "". */
static const char *only_name(const char *dir)
{
    static char name[512];
    name[0] = '\0';
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && ++n == 1)
            snprintf(name, sizeof name, "%s", de->d_name);
    closedir(d);
    assert_int_equal(n, 1);
    return name;
}

/* Deliver to alice, then put the spool back as a crash before the record would have left
 * it, with the tmp/ marker the crashed attempt would have left. */
static void deliver_then_crash(struct config *cfg, const char *user, char id[SPOOL_ID_LEN + 1],
                               char *name, size_t namelen)
{
    char rcpt[64];
    snprintf(rcpt, sizeof rcpt, "%s@localhost", user);
    spool_one("", rcpt, id);
    struct saved_spool saved;
    spool_save(id, &saved);
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("mail/%s/tmp", user)), 0); /* marker released */
    snprintf(name, namelen, "%s", only_name(test_path("mail/%s/new", user)));
    assert_non_null(strstr(name, id)); /* the name is derived from the message id */
    spool_restore(id, &saved);
    assert_int_equal(
        link(test_path("mail/%s/new/%s", user, name), test_path("mail/%s/tmp/%s", user, name)), 0);
}

static void assert_avoided(const char *id, const char *user)
{
    char *lines = test_log_lines("main", id);
    char *expect = NULL;
    assert_true(asprintf(&expect,
                         "*> %s <%s@localhost> R=local_user T=local_maildir: already delivered by "
                         "an earlier attempt",
                         user, user) > 0);
    if (!strstr(lines, expect))
        fail_msg("log:\n%s", lines);
    free(expect);
    free(lines);
}

static void test_redelivery_finds_new(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    const char *user = "alice";
    char id[SPOOL_ID_LEN + 1], name[512];
    deliver_then_crash(cfg, user, id, name, sizeof name);
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("mail/%s/new", user)), 1);
    assert_int_equal(test_count_files(test_path("mail/%s/tmp", user)), 0);
    assert_false(test_in_spool(id));
    assert_avoided(id, user);
    config_free(cfg);
}

/* A mail reader moved the message to cur/ (and flagged it) before the redelivery. */
static void test_redelivery_finds_cur(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    const char *user = "carol";
    char id[SPOOL_ID_LEN + 1], name[512];
    deliver_then_crash(cfg, user, id, name, sizeof name);
    assert_int_equal(rename(test_path("mail/%s/new/%s", user, name),
                            test_path("mail/%s/cur/%s:2,S", user, name)),
                     0);
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("mail/%s/new", user)), 0);
    assert_int_equal(test_count_files(test_path("mail/%s/cur", user)), 1);
    assert_int_equal(test_count_files(test_path("mail/%s/tmp", user)), 0);
    assert_avoided(id, user);
    config_free(cfg);
}

/* The marker gone but new/<name> there (a record lost after the marker was released):
 * the link finds it. */
static void test_redelivery_without_marker(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    const char *user = "dave";
    char id[SPOOL_ID_LEN + 1], name[512];
    deliver_then_crash(cfg, user, id, name, sizeof name);
    unlink(test_path("mail/%s/tmp/%s", user, name));
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("mail/%s/new", user)), 1);
    assert_int_equal(test_count_files(test_path("mail/%s/tmp", user)), 0);
    assert_avoided(id, user);
    config_free(cfg);
}

/* A crash before the link: a partial tmp/<name> and nothing published. The next attempt
 * writes the whole message and publishes it once. */
static void test_unpublished_attempt_completes(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    const char *user = "erin";
    char id[SPOOL_ID_LEN + 1], name[512];
    deliver_then_crash(cfg, user, id, name, sizeof name);
    unlink(test_path("mail/%s/tmp/%s", user, name));
    assert_int_equal(
        rename(test_path("mail/%s/new/%s", user, name), test_path("mail/%s/tmp/%s", user, name)),
        0);
    assert_int_equal(truncate(test_path("mail/%s/tmp/%s", user, name), 5), 0);
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("mail/%s/new", user)), 1);
    assert_int_equal(test_count_files(test_path("mail/%s/tmp", user)), 0);
    char *msg = test_read_file(test_path("mail/%s/new/%s", user, name));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Subject: once\n\nbody\n"));
    free(msg);
    char *lines = test_log_lines("main", id);
    assert_non_null(strstr(lines, "=> erin <erin@localhost>"));
    free(lines);
    config_free(cfg);
}

/* Two envelope recipients, the same mailbox: one copy; two messages: two copies. */
static void test_names_per_message_and_address(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    char id1[SPOOL_ID_LEN + 1], id2[SPOOL_ID_LEN + 1];
    const char *rcpts[] = {"bob@localhost", "\"bob\"@localhost", "Bob@Localhost"};
    test_spool_message("", rcpts, 3, MESSAGE, id1);
    assert_true(deliver_message(cfg, id1));
    spool_one("", "bob@localhost", id2);
    assert_true(deliver_message(cfg, id2));
    assert_int_equal(test_count_files(test_path("mail/bob/new")), 2);
    config_free(cfg);
}

/* A crash after the bounce was spooled (and delivered) but before the failure was
 * recorded: the next attempt reuses the recorded bounce id, and the sender gets one
 * bounce, not two. */
static void test_bounce_once_after_crash(void **state)
{
    (void)state;
    struct config *cfg = test_config(CONFIG);
    char id[SPOOL_ID_LEN + 1];
    spool_one("frank@localhost", "ceo/@localhost", id);
    struct saved_spool saved;
    spool_save(id, &saved);
    assert_true(deliver_message(cfg, id));
    assert_int_equal(test_count_files(test_path("mail/frank/new")), 1);
    char *all = test_log_lines("main", NULL), bounce[SPOOL_ID_LEN + 1] = "";
    char *needle = NULL;
    assert_true(asprintf(&needle, " <= <> R=%s ", id) > 0);
    char *at = strstr(all, needle);
    assert_non_null(at);
    assert_true(at - all >= SPOOL_ID_LEN);
    memcpy(bounce, at - SPOOL_ID_LEN, SPOOL_ID_LEN);
    free(needle);
    free(all);
    /* what the crashed attempt leaves: the spool as before and the bounce id recorded */
    spool_restore(id, &saved);
    char *line = NULL;
    assert_true(asprintf(&line, "bounce %s\n", bounce) > 0);
    write_all_to(test_path("spool/deliver/%s", id), line, strlen(line));
    free(line);
    assert_true(deliver_message(cfg, id));
    assert_false(test_in_spool(id));
    assert_false(test_in_spool(bounce));
    assert_int_equal(test_count_files(test_path("mail/frank/new")), 1);
    char *lines = test_log_lines("main", bounce);
    if (!strstr(lines, "*> frank <frank@localhost> R=local_user T=local_maildir: already "
                       "delivered by an earlier attempt"))
        fail_msg("bounce log:\n%s", lines);
    free(lines);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsafe_local_parts_fail),
        cmocka_unit_test(test_quoted_local_part_is_unquoted),
        cmocka_unit_test(test_redelivery_finds_new),
        cmocka_unit_test(test_redelivery_finds_cur),
        cmocka_unit_test(test_redelivery_without_marker),
        cmocka_unit_test(test_unpublished_attempt_completes),
        cmocka_unit_test(test_names_per_message_and_address),
        cmocka_unit_test(test_bounce_once_after_crash),
    };
    return cmocka_run_group_tests(tests, test_env_setup, test_env_teardown);
}
