/*
 * test_queue.c - the delivery threads: 200 messages through 4 threads are each delivered
 * exactly once; the periodic queue scan picks up spooled messages nobody enqueued; a
 * deferred message is not retried before retry_interval; deliver_stop() joins.
 */
#include "deliver_test_env.h"

#include <time.h>

static struct config *current_config;
static int config_refs; /* get/put balance, checked at the end */

static const struct config *source_get(void)
{
    __atomic_add_fetch(&config_refs, 1, __ATOMIC_SEQ_CST);
    return current_config;
}

static void source_put(const struct config *cfg)
{
    assert_ptr_equal(cfg, current_config);
    __atomic_sub_fetch(&config_refs, 1, __ATOMIC_SEQ_CST);
}

static const struct deliver_config_source source = {source_get, source_put};

static const char *CONFIG = "begin routers\n"
                            "local_user:\n"
                            "  driver = accept\n"
                            "  domains = +local_domains\n"
                            "  transport = local_maildir\n"
                            "begin transports\n"
                            "local_maildir:\n"
                            "  driver = appendfile\n"
                            "  maildir_format = true\n"
                            "  directory = @ROOT@/mail/${lc:$local_part}\n";

static int spool_count(void)
{
    struct arena a;
    arena_init(&a, 0);
    const char **ids = NULL;
    int n = spool_list_ids(&a, &ids);
    arena_reset(&a);
    return n;
}

static bool wait_spool_count(int expected, int seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        if (spool_count() == expected)
            return true;
        usleep(10000);
    }
    return spool_count() == expected;
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_threads_deliver_each_message_once(void **state)
{
    (void)state;
    current_config = test_config(CONFIG);
    char err[256];
    assert_true(deliver_start(&source, 4, 0, err, sizeof err));
    enum { N = 200 };
    static char ids[N][SPOOL_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        char rcpt[64];
        snprintf(rcpt, sizeof rcpt, "user%d@localhost", i % 10);
        const char *rcpts[] = {rcpt, "all@localhost"};
        test_spool_message("", rcpts, 2, "Subject: x\r\n\r\nbody\r\n", ids[i]);
        deliver_enqueue(ids[i]);
        if (i % 3 == 0)
            deliver_enqueue(ids[i]); /* duplicates are ignored */
    }
    assert_true(wait_spool_count(0, 60));
    deliver_stop();
    assert_int_equal(config_refs, 0);

    int total = 0;
    for (int u = 0; u < 10; u++) {
        int n = test_count_files(test_path("mail/user%d/new", u));
        assert_int_equal(n, N / 10);
        total += n;
    }
    assert_int_equal(total, N);
    assert_int_equal(test_count_files(test_path("mail/all/new")), N);
    char *log = test_log_lines("main", NULL);
    assert_int_equal(count_substr(log, "Completed\n"), N);
    assert_int_equal(count_substr(log, "=> all <all@localhost>"), N);
    for (int i = 0; i < N; i++) {
        char *lines = test_log_lines("main", ids[i]);
        assert_int_equal(count_substr(lines, "Completed"), 1);
        assert_int_equal(count_substr(lines, "=> "), 2);
        free(lines);
    }
    free(log);
    config_free(current_config);
}

static void test_periodic_scan_and_retry_interval(void **state)
{
    (void)state;
    current_config = test_config("begin routers\n"
                                 "local_user:\n"
                                 "  driver = accept\n"
                                 "  transport = local_maildir\n"
                                 "begin transports\n"
                                 "local_maildir:\n"
                                 "  driver = appendfile\n"
                                 "  maildir_format = true\n"
                                 "  directory = @ROOT@/scan/${lc:$local_part}\n");
    current_config->retry_interval = 3600;
    fclose(fopen(test_path("scan"), "w")); /* deliveries defer until this is a directory */
    char deferred[SPOOL_ID_LEN + 1];
    const char *rcpts[] = {"late@localhost"};
    test_spool_message("", rcpts, 1, "Subject: y\r\n\r\nbody\r\n", deferred);

    char err[256];
    assert_true(deliver_start(&source, 2, 1, err, sizeof err)); /* scans at once, then 1/s */
    for (int i = 0; i < 300; i++) {
        char *lines = test_log_lines("main", deferred);
        bool seen = strstr(lines, "== late@localhost") != NULL;
        free(lines);
        if (seen)
            break;
        usleep(10000);
    }
    unlink(test_path("scan"));
    mkdir(test_path("scan"), 0700);
    /* a new message found by the next scan, without deliver_enqueue */
    char fresh[SPOOL_ID_LEN + 1];
    const char *rcpts2[] = {"fresh@localhost"};
    test_spool_message("", rcpts2, 1, "Subject: z\r\n\r\nbody\r\n", fresh);
    for (int i = 0; i < 500 && test_count_files(test_path("scan/fresh/new")) != 1; i++)
        usleep(10000);
    assert_int_equal(test_count_files(test_path("scan/fresh/new")), 1);
    /* two more scans: the deferred message is not due before retry_interval */
    uint64_t scans = deliver_queue_scans();
    for (int i = 0; i < 500 && deliver_queue_scans() < scans + 2; i++)
        usleep(10000);
    assert_true(deliver_queue_scans() >= scans + 2);
    deliver_stop();
    assert_int_equal(config_refs, 0);
    char *lines = test_log_lines("main", deferred);
    assert_int_equal(count_substr(lines, "== late@localhost"), 1);
    assert_null(strstr(lines, "Completed"));
    free(lines);
    assert_true(test_in_spool(deferred));
    assert_false(test_in_spool(fresh));

    /* -q ignores retry times here (no memory of earlier attempts) and delivers it */
    assert_int_equal(deliver_queue_run(current_config), 1);
    assert_false(test_in_spool(deferred));
    assert_int_equal(test_count_files(test_path("scan/late/new")), 1);
    config_free(current_config);
}

static void test_start_errors_and_stop_twice(void **state)
{
    (void)state;
    char err[256];
    assert_false(deliver_start(&source, 0, 0, err, sizeof err));
    assert_non_null(strstr(err, "at least one thread"));
    current_config = test_config(CONFIG);
    assert_true(deliver_start(&source, 1, 0, err, sizeof err));
    assert_false(deliver_start(&source, 1, 0, err, sizeof err));
    assert_non_null(strstr(err, "already running"));
    deliver_stop();
    deliver_stop();
    deliver_enqueue("1xW3Jc-00060t-06"); /* not running: ignored */
    config_free(current_config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_deliver_each_message_once),
        cmocka_unit_test(test_periodic_scan_and_retry_interval),
        cmocka_unit_test(test_start_errors_and_stop_twice),
    };
    return cmocka_run_group_tests(tests, test_env_setup, test_env_teardown);
}
