/*
 * test_log.c - the Exim-format logs: line format, rejectlog/paniclog duplication into the
 * mainlog, escaping and truncation, concurrent writers (no interleaving, nothing lost),
 * reconfiguration under load, reopening after rotation, stderr copy, bad configurations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../test_files.h"

#include "postern/log.h"
#include "postern/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char template[128];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_true(test_tmpdir(f->dir, sizeof f->dir, "log"));
    /* a nested directory that does not exist yet: log_configure must create it */
    snprintf(f->template, sizeof f->template, "%s/var/log/%%slog", f->dir);
    char err[256];
    assert_true(log_configure(f->template, err, sizeof err));
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    log_close();
    log_set_stderr(false);
    assert_true(test_rmtree(f->dir));
    free(f);
    return 0;
}

/* Whole file as a malloc'd string, or NULL when it does not exist. */
static char *read_file(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/var/log/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_append(&b, chunk, n);
    fclose(fp);
    buf_append(&b, "", 0);
    return buf_steal(&b);
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("\"%s\" does not match /%s/", text, pattern);
}

#define TS "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"

static void test_line_format(void **state)
{
    struct fixture *f = *state;
    log_write(LOG_MAIN, "1xW3Jc-00060t-06", "<= a@b H=(helo) [1.2.3.4] P=%s S=%d", "esmtp", 433);
    log_write(LOG_MAIN, NULL, "Start queue run: pid=%d", 42);
    char *main_log = read_file(f->dir, "mainlog");
    assert_non_null(main_log);
    assert_matches(main_log, "^" TS " 1xW3Jc-00060t-06 <= a@b H=\\(helo\\) \\[1\\.2\\.3\\.4\\] "
                             "P=esmtp S=433\n" TS " Start queue run: pid=42\n$");
    free(main_log);

    struct stat st;
    char path[256];
    snprintf(path, sizeof path, "%s/var/log/mainlog", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* reject and panic logs are created on first use only */
    assert_null(read_file(f->dir, "rejectlog"));
    assert_null(read_file(f->dir, "paniclog"));
}

static void test_timestamp_is_local_now(void **state)
{
    (void)state;
    char ts[32], expect1[32], expect2[32];
    time_t before = time(NULL);
    log_timestamp(ts, sizeof ts);
    time_t after = time(NULL);
    struct tm tm;
    strftime(expect1, sizeof expect1, "%Y-%m-%d %H:%M:%S", localtime_r(&before, &tm));
    strftime(expect2, sizeof expect2, "%Y-%m-%d %H:%M:%S", localtime_r(&after, &tm));
    assert_int_equal(strlen(ts), 19);
    assert_true(strcmp(ts, expect1) == 0 || strcmp(ts, expect2) == 0);
}

static void test_reject_and_panic_duplicated(void **state)
{
    struct fixture *f = *state;
    log_write(LOG_MAIN | LOG_REJECT, NULL, "H=[10.0.0.1] rejected RCPT <x@y>: no");
    log_write(LOG_PANIC, NULL, "something awful");
    log_write(LOG_MAIN, NULL, "ordinary");
    char *main_log = read_file(f->dir, "mainlog");
    char *reject_log = read_file(f->dir, "rejectlog");
    char *panic_log = read_file(f->dir, "paniclog");
    assert_non_null(reject_log);
    assert_non_null(panic_log);
    assert_matches(main_log, "^" TS " H=\\[10\\.0\\.0\\.1\\] rejected RCPT <x@y>: no\n" TS
                             " something awful\n" TS " ordinary\n$");
    assert_matches(reject_log, "^" TS " H=\\[10\\.0\\.0\\.1\\] rejected RCPT <x@y>: no\n$");
    assert_matches(panic_log, "^" TS " something awful\n$");
    free(main_log);
    free(reject_log);
    free(panic_log);
}

static void test_newlines_escaped(void **state)
{
    struct fixture *f = *state;
    log_write(LOG_MAIN, "1xW3Jc-00060t-06", "first\nsecond\r\n%s", "ctl\001\177tab\tend");
    char *main_log = read_file(f->dir, "mainlog");
    assert_matches(main_log, "^" TS " 1xW3Jc-00060t-06 first\\\\nsecond\\\\r\\\\nctl\\\\x01"
                             "\\\\x7Ftab\tend\n$");
    free(main_log);
}

static void test_long_line_truncated(void **state)
{
    struct fixture *f = *state;
    char *big = malloc(20001);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    log_write(LOG_MAIN, NULL, "%s", big);
    /* escapes must not overflow either: every byte becomes 2 characters */
    memset(big, '\n', 20000);
    log_write(LOG_MAIN, NULL, "%s", big);
    free(big);
    char *main_log = read_file(f->dir, "mainlog");
    char *second = strchr(main_log, '\n') + 1;
    assert_true(second - main_log <= 8192);
    assert_memory_equal(second - 15, "...[truncated]\n", 15);
    size_t len2 = strlen(second);
    assert_true(len2 <= 8192);
    assert_string_equal(second + len2 - 15, "...[truncated]\n");
    assert_memory_equal(second + 20, "\\n\\n\\n", 6);
    free(main_log);
}

#define WRITER_THREADS 8
#define LINES_PER_THREAD 1000

static void *writer_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    char pad[201];
    memset(pad, 'a' + t, 200);
    pad[200] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++)
        log_write(LOG_MAIN, "1xW3Jc-00060t-06", "thread=%d line=%d %s end", t, i, pad);
    return NULL;
}

/* Check every line of text is one intact writer_thread line, in order per thread. */
static int check_writer_lines(char *text, int *next_line)
{
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^" TS " 1xW3Jc-00060t-06 thread=([0-9]) line=([0-9]+) "
                             "([a-z]{200}) end$",
                             REG_EXTENDED),
                     0);
    int count = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[4];
        if (regexec(&re, line, 4, m, 0) != 0)
            fail_msg("damaged line: %.300s", line);
        int t = atoi(line + m[1].rm_so);
        int n = atoi(line + m[2].rm_so);
        assert_true(t >= 0 && t < WRITER_THREADS);
        assert_int_equal(n, next_line[t]); /* per-thread order kept, nothing lost */
        for (regoff_t k = m[3].rm_so; k < m[3].rm_eo; k++)
            assert_int_equal(line[k], 'a' + t);
        next_line[t]++;
        count++;
    }
    regfree(&re);
    return count;
}

static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    pthread_t threads[WRITER_THREADS];
    for (int t = 0; t < WRITER_THREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, writer_thread, (void *)(intptr_t)t), 0);
    for (int t = 0; t < WRITER_THREADS; t++)
        pthread_join(threads[t], NULL);
    char *main_log = read_file(f->dir, "mainlog");
    int next_line[WRITER_THREADS] = {0};
    assert_int_equal(check_writer_lines(main_log, next_line), WRITER_THREADS * LINES_PER_THREAD);
    for (int t = 0; t < WRITER_THREADS; t++)
        assert_int_equal(next_line[t], LINES_PER_THREAD);
    free(main_log);
}

/* Writers keep going while the main thread switches the log between two directories:
 * every line must land, whole, in one of the two mainlogs. */
static void test_reconfigure_under_load(void **state)
{
    struct fixture *f = *state;
    char other[160], err[256];
    snprintf(other, sizeof other, "%s/other/%%slog", f->dir);
    pthread_t threads[WRITER_THREADS];
    for (int t = 0; t < WRITER_THREADS; t++)
        pthread_create(&threads[t], NULL, writer_thread, (void *)(intptr_t)t);
    for (int i = 0; i < 40; i++) {
        assert_true(log_configure(i % 2 ? f->template : other, err, sizeof err));
        usleep(500);
    }
    for (int t = 0; t < WRITER_THREADS; t++)
        pthread_join(threads[t], NULL);

    char *a = read_file(f->dir, "mainlog");
    char path[200];
    snprintf(path, sizeof path, "%s/other/mainlog", f->dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_append(&b, chunk, n);
    fclose(fp);
    int lines = 0;
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^" TS " 1xW3Jc-00060t-06 thread=[0-9] line=[0-9]+ [a-z]{200} end$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    char *texts[2] = {a ? a : strdup(""), b.data ? b.data : strdup("")};
    for (int k = 0; k < 2; k++)
        for (char *save = NULL, *line = strtok_r(texts[k], "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            if (regexec(&re, line, 0, NULL, 0) != 0)
                fail_msg("damaged line: %.300s", line);
            lines++;
        }
    regfree(&re);
    assert_int_equal(lines, WRITER_THREADS * LINES_PER_THREAD);
    free(texts[0]);
    free(texts[1]);
}

static void test_reopen_after_rotation(void **state)
{
    struct fixture *f = *state;
    char path[200], rotated[200];
    snprintf(path, sizeof path, "%s/var/log/mainlog", f->dir);
    snprintf(rotated, sizeof rotated, "%s/var/log/mainlog.1", f->dir);
    log_write(LOG_MAIN, NULL, "before rotation");
    assert_int_equal(rename(path, rotated), 0);
    /* the check runs at most once a second: keep writing until the new file appears */
    int64_t deadline = time_mono_ms() + 3000;
    struct stat st;
    int written = 0;
    while (stat(path, &st) != 0 && time_mono_ms() < deadline) {
        log_write(LOG_MAIN, NULL, "during rotation %d", written++);
        usleep(20000);
    }
    assert_int_equal(stat(path, &st), 0);
    log_write(LOG_MAIN, NULL, "after rotation");
    char *fresh = read_file(f->dir, "mainlog");
    char *old = read_file(f->dir, "mainlog.1");
    assert_matches(old, "^" TS " before rotation\n");
    assert_null(strstr(old, "after rotation"));
    assert_matches(fresh, TS " after rotation\n$");
    free(fresh);
    free(old);
}

static void test_stderr_copy(void **state)
{
    struct fixture *f = *state;
    char path[200];
    snprintf(path, sizeof path, "%s/stderr.txt", f->dir);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, STDERR_FILENO);
    log_set_stderr(true);
    log_write(LOG_MAIN, NULL, "to both");
    log_set_stderr(false);
    log_write(LOG_MAIN, NULL, "file only");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    char *copy = read_file(f->dir, "../../stderr.txt");
    assert_non_null(copy);
    assert_matches(copy, "^" TS " to both\n$");
    free(copy);
}

static void test_unconfigured_writes_nowhere(void **state)
{
    struct fixture *f = *state;
    log_close();
    log_write(LOG_MAIN | LOG_PANIC, NULL, "lost");
    char *main_log = read_file(f->dir, "mainlog");
    assert_non_null(main_log);
    assert_string_equal(main_log, "");
    free(main_log);
    assert_null(read_file(f->dir, "paniclog"));
}

static void test_bad_configuration(void **state)
{
    (void)state;
    char err[256];
    assert_false(log_configure("/tmp/no-placeholder-log", err, sizeof err));
    assert_non_null(strstr(err, "%s"));
    assert_false(log_configure("syslog", err, sizeof err));
    assert_false(log_configure("/tmp/%s/%s", err, sizeof err));
    assert_false(log_configure("/proc/postern-no-such/%slog", err, sizeof err));
    assert_non_null(strstr(err, "/proc/postern-no-such"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_format, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_is_local_now, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reject_and_panic_duplicated, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_newlines_escaped, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_long_line_truncated, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reconfigure_under_load, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rotation, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_stderr_copy, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unconfigured_writes_nowhere, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_configuration, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
