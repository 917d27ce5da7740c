/*
 * test_spool.c - message ids, the durable spool and the -bp listing: id form and
 * uniqueness across threads, write/commit/read round trip with odd envelopes, abort,
 * journal, removal, startup clean-up of orphans, torn -H files, ACL-added header groups
 * (stored, read back in every step size, older -H files), exact -bp output, group
 * commit from many threads, and a SIGKILL crash test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../test_files.h"
#include "../test_spool_reader.h"

#include "postern/log.h"
#include "postern/spool.h"
#include "postern/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char input[96];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_true(test_tmpdir(f->dir, sizeof f->dir, "spool"));
    snprintf(f->input, sizeof f->input, "%s/input", f->dir);
    char err[256], template[128];
    snprintf(template, sizeof template, "%s/log/%%slog", f->dir);
    assert_true(log_configure(template, err, sizeof err));
    if (!spool_init(f->dir, 64, err, sizeof err))
        fail_msg("spool_init: %s", err);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    spool_shutdown();
    log_close();
    assert_true(test_rmtree(f->dir));
    free(f);
    return 0;
}

/* ---- helpers ---- */

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static bool file_exists(const struct fixture *f, const char *id, const char *suffix)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s%s", f->input, id, suffix);
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    struct buf b;
    buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_append(&b, chunk, n);
    fclose(fp);
    buf_append(&b, "", 0);
    *len = b.len;
    return buf_steal(&b);
}

static void basic_envelope(struct spool_envelope *env, const char *sender, const char **rcpts,
                           int nrcpt)
{
    memset(env, 0, sizeof *env);
    env->sender = sender;
    env->received_time = time(NULL);
    env->host_address = "192.0.2.7";
    env->host_port = 40123;
    env->host_name = "client.example";
    env->helo_name = "helo.example";
    env->protocol = "esmtp";
    env->proxy_address = "";
    env->interface_address = "198.51.100.1";
    env->interface_port = 25;
    env->recipient_count = nrcpt;
    env->recipients = calloc((size_t)nrcpt + 1, sizeof *env->recipients);
    for (int i = 0; i < nrcpt; i++)
        env->recipients[i].address = rcpts[i];
}

/* Write a message of `size` bytes with deterministic content derived from the id. */
static void fill_message(struct spool_writer *w, const char *id, size_t size)
{
    char err[256];
    char chunk[7000];
    size_t done = 0;
    while (done < size) {
        size_t n = size - done < sizeof chunk ? size - done : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = id[(done + i) % 16] ^ (char)((done + i) % 7);
        assert_true(spool_data_write(w, chunk, n, err, sizeof err));
        done += n;
    }
}

static bool check_message_data(const char *id, int64_t size)
{
    int fd = spool_open_data(id);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && st.st_size == size;
    char chunk[65536];
    int64_t pos = 0;
    ssize_t n;
    while (ok && (n = read(fd, chunk, sizeof chunk)) > 0) {
        for (ssize_t i = 0; i < n; i++, pos++)
            if (chunk[i] != (char)(id[pos % 16] ^ (char)(pos % 7)))
                ok = false;
    }
    close(fd);
    return ok && pos == size;
}

static char *commit_simple(const char *sender, const char **rcpts, int nrcpt, size_t size,
                           int64_t received, char id[SPOOL_ID_LEN + 1])
{
    char err[256];
    struct spool_envelope env;
    spool_new_id(id);
    basic_envelope(&env, sender, rcpts, nrcpt);
    if (received)
        env.received_time = received;
    struct spool_writer *w = spool_message_begin(id, err, sizeof err);
    assert_non_null(w);
    fill_message(w, id, size);
    if (!spool_commit_wait(w, &env, err, sizeof err))
        fail_msg("commit: %s", err);
    free(env.recipients);
    return id;
}

/* ---- ids ---- */

static void test_id_form(void **state)
{
    (void)state;
    char id[SPOOL_ID_LEN + 1];
    spool_new_id(id);
    assert_int_equal(strlen(id), SPOOL_ID_LEN);
    assert_true(spool_id_valid(id));
    regex_t re; /* Debian exigrep's \w{6}-\w{6}-\w{2} */
    assert_int_equal(
        regcomp(&re, "^[[:alnum:]_]{6}-[[:alnum:]_]{6}-[[:alnum:]_]{2}$", REG_EXTENDED), 0);
    assert_int_equal(regexec(&re, id, 0, NULL, 0), 0);
    regfree(&re);

    /* the time part is base62 of now */
    const char *digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    int64_t t = 0;
    for (int i = 0; i < 6; i++)
        t = t * 62 + (strchr(digits, id[i]) - digits);
    assert_true(llabs(t - (int64_t)time(NULL)) <= 2);

    assert_true(spool_id_valid("1xW3Jc-00060t-06"));
    assert_false(spool_id_valid(""));
    assert_false(spool_id_valid(NULL));
    assert_false(spool_id_valid("1xW3Jc-00060t-0"));
    assert_false(spool_id_valid("1xW3Jc-00060t-067"));
    assert_false(spool_id_valid("1xW3Jc_00060t-06"));
    assert_false(spool_id_valid("1xW3J_-00060t-06"));
    assert_false(spool_id_valid("1xW3Jc-00060t-0/"));
    assert_false(spool_id_valid("../../etc/passwd"));
}

#define ID_THREADS 8
#define IDS_PER_THREAD 20000

static void *id_thread(void *arg)
{
    char(*ids)[SPOOL_ID_LEN + 1] = arg;
    for (int i = 0; i < IDS_PER_THREAD; i++)
        spool_new_id(ids[i]);
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_id_unique_across_threads(void **state)
{
    (void)state;
    char(*ids)[SPOOL_ID_LEN + 1] = calloc(ID_THREADS * IDS_PER_THREAD, SPOOL_ID_LEN + 1);
    pthread_t threads[ID_THREADS];
    for (int t = 0; t < ID_THREADS; t++)
        pthread_create(&threads[t], NULL, id_thread, ids + t * IDS_PER_THREAD);
    for (int t = 0; t < ID_THREADS; t++)
        pthread_join(threads[t], NULL);
    regex_t re;
    assert_int_equal(
        regcomp(&re, "^[[:alnum:]_]{6}-[[:alnum:]_]{6}-[[:alnum:]_]{2}$", REG_EXTENDED), 0);
    for (int i = 0; i < ID_THREADS * IDS_PER_THREAD; i++) {
        assert_true(spool_id_valid(ids[i]));
        assert_int_equal(regexec(&re, ids[i], 0, NULL, 0), 0);
    }
    regfree(&re);
    /* ids from one thread are increasing (sorting by id sorts by time) */
    for (int i = 1; i < IDS_PER_THREAD; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    qsort(ids, ID_THREADS * IDS_PER_THREAD, SPOOL_ID_LEN + 1, compare_ids);
    for (int i = 1; i < ID_THREADS * IDS_PER_THREAD; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
    free(ids);
}

/* ---- write, commit, read ---- */

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"plain@example.com", "\"odd local\"@example.com",
                           "new\nline%20@x\r.example", "j\xc3\xb6rg@ex\xc3\xa4mple.de", ""};
    const char *names[] = {"acl_m_spam", "acl_m0", "acl_m_empty"};
    const char *values[] = {"yes: 5.2 points\nsecond line with %41 and spaces", "42", ""};
    struct spool_envelope env;
    char id[SPOOL_ID_LEN + 1], err[256];
    spool_new_id(id);
    basic_envelope(&env, "we ird\"sender%@ex ample", rcpts, 5);
    env.received_time = 1764000000;
    env.proxy_address = "203.0.113.9";
    env.prdr = true;
    env.acl_var_count = 3;
    env.acl_var_names = names;
    env.acl_var_values = values;
    env.size = 12345; /* ignored: the written size is authoritative */

    struct spool_writer *w = spool_message_begin(id, err, sizeof err);
    assert_non_null(w);
    assert_null(spool_message_begin(id, err, sizeof err)); /* O_EXCL */
    fill_message(w, id, 200000);                           /* crosses the 64 KiB buffer */
    assert_int_equal(spool_data_size(w), 200000);
    assert_true(spool_commit_wait(w, &env, err, sizeof err));
    free(env.recipients);
    assert_true(file_exists(f, id, "-H"));
    assert_false(file_exists(f, id, "-H.tmp"));

    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope got;
    if (!spool_read_envelope(&arena, id, &got, err, sizeof err))
        fail_msg("read: %s", err);
    assert_string_equal(got.id, id);
    assert_string_equal(got.sender, "we ird\"sender%@ex ample");
    assert_int_equal(got.received_time, 1764000000);
    assert_int_equal(got.size, 200000);
    assert_string_equal(got.host_address, "192.0.2.7");
    assert_int_equal(got.host_port, 40123);
    assert_string_equal(got.host_name, "client.example");
    assert_string_equal(got.helo_name, "helo.example");
    assert_string_equal(got.protocol, "esmtp");
    assert_string_equal(got.proxy_address, "203.0.113.9");
    assert_string_equal(got.interface_address, "198.51.100.1");
    assert_int_equal(got.interface_port, 25);
    assert_true(got.prdr);
    assert_int_equal(got.recipient_count, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(got.recipients[i].address, rcpts[i]);
        assert_false(got.recipients[i].done);
    }
    assert_int_equal(got.acl_var_count, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(got.acl_var_names[i], names[i]);
        assert_string_equal(got.acl_var_values[i], values[i]);
    }
    assert_true(check_message_data(id, 200000));
    arena_reset(&arena);

    /* the -H file is line-structured text that nothing in the values could break */
    char path[256];
    size_t len;
    snprintf(path, sizeof path, "%s/%s-H", f->input, id);
    char *text = slurp(path, &len);
    assert_non_null(strstr(text, "\nrcpt new%0Aline%2520@x%0D.example\n"));
    assert_non_null(strstr(text, "\nacl acl_m_empty \nend\n"));
    free(text);
}

static void test_abort_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    char id[SPOOL_ID_LEN + 1], err[256];
    spool_new_id(id);
    struct spool_writer *w = spool_message_begin(id, err, sizeof err);
    assert_non_null(w);
    fill_message(w, id, 100000);
    spool_message_abort(w);
    assert_int_equal(count_files(f->input), 0);
    assert_null(spool_message_begin("not-an-id", err, sizeof err));
    assert_non_null(strstr(err, "bad message id"));
}

static void test_journal_marks_done(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"a@example.com", "b@example.com", "c@example.com"};
    char id[SPOOL_ID_LEN + 1], err[256];
    commit_simple("s@example.com", rcpts, 3, 500, 0, id);
    assert_true(spool_mark_done(id, 0, err, sizeof err));
    assert_true(spool_mark_done(id, 2, err, sizeof err));
    assert_false(spool_mark_done(id, -1, err, sizeof err));

    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    assert_true(env.recipients[0].done);
    assert_false(env.recipients[1].done);
    assert_true(env.recipients[2].done);

    /* a torn last append (no newline) is not a promise: ignored */
    char path[256];
    snprintf(path, sizeof path, "%s/%s-J", f->input, id);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "1", 1), 1);
    close(fd);
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    assert_false(env.recipients[1].done);

    /* an index past the recipients is corruption */
    write_file(path, "0\n7\n");
    assert_false(spool_read_envelope(&arena, id, &env, err, sizeof err));
    assert_non_null(strstr(err, "journal"));
    arena_reset(&arena);
}

static void test_remove_and_lock(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"a@example.com"};
    char id[SPOOL_ID_LEN + 1], err[256];
    commit_simple("s@example.com", rcpts, 1, 100, 0, id);
    assert_true(spool_mark_done(id, 0, err, sizeof err));

    int lock = spool_lock_message(id);
    assert_true(lock >= 0);
    assert_int_equal(spool_lock_message(id), -1); /* someone else has it */
    assert_true(spool_remove(id));
    spool_unlock_message(lock);
    assert_int_equal(count_files(f->input), 0);
    assert_int_equal(spool_lock_message(id), -1);
    assert_int_equal(spool_open_data(id), -1);
    struct arena arena;
    arena_init(&arena, 1024);
    struct spool_envelope env;
    assert_false(spool_read_envelope(&arena, id, &env, err, sizeof err));
    const char **ids;
    assert_int_equal(spool_list_ids(&arena, &ids), 0);
    arena_reset(&arena);
}

/* A removed message's files go to the pool and the next message reuses them, with no
 * byte of the old (longer) message left behind. */
static void test_files_are_recycled(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"a@example.com", "b@example.com", "c@example.com"};
    char first[SPOOL_ID_LEN + 1], second[SPOOL_ID_LEN + 1], free_dir[160];
    snprintf(free_dir, sizeof free_dir, "%s/free", f->dir);
    commit_simple("long-sender@example.com", rcpts, 3, 20000, 0, first);
    struct stat before;
    char path[256];
    snprintf(path, sizeof path, "%s/%s-D", f->input, first);
    assert_int_equal(stat(path, &before), 0);
    assert_true(spool_remove(first));
    assert_int_equal(count_files(f->input), 0);
    assert_int_equal(count_files(free_dir), 2);

    commit_simple("s@x", rcpts, 1, 300, 0, second);
    assert_int_equal(count_files(free_dir), 0); /* both files were taken back */
    struct stat after;
    snprintf(path, sizeof path, "%s/%s-D", f->input, second);
    assert_int_equal(stat(path, &after), 0);
    assert_true(check_message_data(second, 300)); /* exact size and bytes */
    struct arena arena;
    arena_init(&arena, 1024);
    struct spool_envelope env;
    char err[256];
    assert_true(spool_read_envelope(&arena, second, &env, err, sizeof err));
    assert_string_equal(env.sender, "s@x");
    assert_int_equal(env.recipient_count, 1);
    arena_reset(&arena);
    assert_true(spool_remove(second));
}

/* Orphans of a crash are removed at startup; complete messages and files locked by
 * another writer are kept. */
static void test_startup_cleanup(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"a@example.com"};
    char kept[SPOOL_ID_LEN + 1], id1[SPOOL_ID_LEN + 1], id2[SPOOL_ID_LEN + 1],
        id3[SPOOL_ID_LEN + 1], busy[SPOOL_ID_LEN + 1], path[256];
    commit_simple("s@example.com", rcpts, 1, 100, 0, kept);
    spool_shutdown();
    spool_new_id(id1);
    spool_new_id(id2);
    spool_new_id(id3);
    spool_new_id(busy);
    snprintf(path, sizeof path, "%s/%s-D", f->input, id1); /* -D without -H */
    write_file(path, "data");
    snprintf(path, sizeof path, "%s/%s-D", f->input, id2); /* -D with -H.tmp */
    write_file(path, "data");
    snprintf(path, sizeof path, "%s/%s-H.tmp", f->input, id2);
    write_file(path, "postern-spool 1\n");
    snprintf(path, sizeof path, "%s/%s-J", f->input, id3); /* -J alone */
    write_file(path, "0\n");
    snprintf(path, sizeof path, "%s/%s-D", f->input, busy); /* being written elsewhere */
    write_file(path, "data");
    int busy_fd = open(path, O_RDONLY);
    assert_int_equal(flock(busy_fd, LOCK_EX), 0);
    snprintf(path, sizeof path, "%s/unrelated.txt", f->input);
    write_file(path, "x");

    char err[256];
    assert_true(spool_init(f->dir, 64, err, sizeof err));
    close(busy_fd);
    assert_true(file_exists(f, kept, "-H") && file_exists(f, kept, "-D"));
    assert_true(file_exists(f, busy, "-D"));
    assert_false(file_exists(f, id1, "-D"));
    assert_false(file_exists(f, id2, "-D"));
    assert_false(file_exists(f, id2, "-H.tmp"));
    assert_false(file_exists(f, id3, "-J"));
    assert_int_equal(count_files(f->input), 4); /* kept -H/-D, busy -D, unrelated */

    size_t len;
    snprintf(path, sizeof path, "%s/log/mainlog", f->dir);
    char *log_text = slurp(path, &len);
    assert_non_null(log_text);
    char expect[128];
    snprintf(expect, sizeof expect, "%s spool: removed uncommitted %s-D at startup", id1, id1);
    assert_non_null(strstr(log_text, expect));
    snprintf(expect, sizeof expect, "removed uncommitted %s-H.tmp", id2);
    assert_non_null(strstr(log_text, expect));
    snprintf(expect, sizeof expect, "removed uncommitted %s-J", id3);
    assert_non_null(strstr(log_text, expect));
    assert_null(strstr(log_text, busy));
    free(log_text);
}

/* Every proper prefix of a -H file, and a few corruptions, must be refused. */
static void test_torn_header_rejected(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"a@example.com", "b c@example.com"};
    char id[SPOOL_ID_LEN + 1], err[256], path[256];
    commit_simple("s@example.com", rcpts, 2, 100, 0, id);
    snprintf(path, sizeof path, "%s/%s-H", f->input, id);
    size_t len;
    char *good = slurp(path, &len);
    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    char *torn = malloc(len + 64);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(torn, good, cut);
        torn[cut] = '\0';
        write_file(path, torn);
        if (spool_read_envelope(&arena, id, &env, err, sizeof err))
            fail_msg("a -H cut at %zu of %zu bytes was accepted", cut, len);
    }
    const char *corruptions[][2] = {
        {"end\n", "end\nextra\n"},
        {"\nrecipients 2\n", "\nrecipients 3\n"},
        {"\nrecipients 2\n", "\nrecipients 1\n"},
        {"\nprdr 0\n", "\nprdr 2\n"},
        {"rcpt b%20c", "rcpt b c"},
        {"rcpt b%20c", "rcpt b%2"},
        {"rcpt b%20c", "rcpt b%00c"},
        {"\nsize 100\n", "\nsize 1x0\n"},
        {"\nhost_port 40123\n", "\nhost_port 99999\n"},
        {"postern-spool 1", "postern-spool 2"},
        {"\nhelo ", "\nhelo  "},
        {"\nsender ", "\nSender "},
    };
    for (size_t i = 0; i < sizeof corruptions / sizeof corruptions[0]; i++) {
        char *at = strstr(good, corruptions[i][0]);
        assert_non_null(at);
        struct buf b;
        buf_init(&b);
        buf_append(&b, good, (size_t)(at - good));
        buf_append_str(&b, corruptions[i][1]);
        buf_append_str(&b, at + strlen(corruptions[i][0]));
        write_file(path, b.data);
        buf_free(&b);
        if (spool_read_envelope(&arena, id, &env, err, sizeof err))
            fail_msg("corruption %zu (%s) accepted", i, corruptions[i][1]);
    }
    write_file(path, good); /* and the original still reads */
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    /* an envelope stored under another id's name is refused */
    char other[SPOOL_ID_LEN + 1], other_path[256];
    spool_new_id(other);
    snprintf(other_path, sizeof other_path, "%s/%s-H", f->input, other);
    write_file(other_path, good);
    assert_false(spool_read_envelope(&arena, other, &env, err, sizeof err));
    unlink(other_path);
    free(torn);
    free(good);
    arena_reset(&arena);
}

/* ---- ACL-added header lines ---- */

/* Commit -D = data with the given groups; return the id. */
static void commit_with_groups(const char *data, const struct spool_header_group *groups, int n,
                               char id[SPOOL_ID_LEN + 1])
{
    const char *rcpts[] = {"a@example.com"};
    struct spool_envelope env;
    char err[256];
    spool_new_id(id);
    basic_envelope(&env, "s@example.com", rcpts, 1);
    env.added_header_groups = n;
    memcpy(env.added_headers, groups, sizeof *groups * (size_t)n);
    struct spool_writer *w = spool_message_begin(id, err, sizeof err);
    assert_non_null(w);
    assert_true(spool_data_write(w, data, strlen(data), err, sizeof err));
    assert_true(spool_commit_wait(w, &env, err, sizeof err));
    free(env.recipients);
}

static void read_delivered_in_every_step(const char *id, const char *expect)
{
    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    char err[256];
    if (!spool_read_envelope(&arena, id, &env, err, sizeof err))
        fail_msg("read: %s", err);
    test_read_delivered_in_steps(&env, expect, strlen(expect));
    arena_reset(&arena);
}

/* Up to four groups, each at its offset (two at the same one keep their order; one at the
 * very end of -D goes out after it); an older -H with one pair reads alike; groups out of
 * order, more than four, an empty one or an offset past -D are refused. */
static void test_added_header_groups(void **state)
{
    struct fixture *f = *state;
    const char *data = "Received: ours\r\nReceived: theirs\r\nResent-To: r\r\nSubject: s\r\n"
                       "\r\nbody\r\n";
    int64_t after = strstr(data, "Resent-To") - data, subject = strstr(data, "Subject") - data;
    const struct spool_header_group groups[] = {
        {0, "A: 1\r\n"}, {after, "B: 2\r\nB: 3\r\n"}, {subject, "C: 4\r\n"}, {subject, "D: 5\r\n"}};
    char id[SPOOL_ID_LEN + 1], err[256], path[256];
    commit_with_groups(data, groups, 4, id);
    read_delivered_in_every_step(id,
                                 "A: 1\r\nReceived: ours\r\nReceived: theirs\r\nB: 2\r\nB: 3\r\n"
                                 "Resent-To: r\r\nC: 4\r\nD: 5\r\nSubject: s\r\n\r\nbody\r\n");
    char end_id[SPOOL_ID_LEN + 1];
    const struct spool_header_group at_end[] = {{(int64_t)strlen(data), "E: 6\r\n"}};
    commit_with_groups(data, at_end, 1, end_id);
    read_delivered_in_every_step(end_id, "Received: ours\r\nReceived: theirs\r\nResent-To: r\r\n"
                                         "Subject: s\r\n\r\nbody\r\nE: 6\r\n");

    snprintf(path, sizeof path, "%s/%s-H", f->input, id);
    size_t len;
    char *good = slurp(path, &len);
    char *pairs = strstr(good, "headers_at ");
    assert_non_null(pairs);
    /* a file from before placements: one pair, after our Received: */
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%.*sheaders_at 16\nheaders X-Old:%%201%%0D%%0A\nend\n", (int)(pairs - good),
               good);
    write_file(path, b.data);
    read_delivered_in_every_step(id, "Received: ours\r\nX-Old: 1\r\nReceived: theirs\r\n"
                                     "Resent-To: r\r\nSubject: s\r\n\r\nbody\r\n");
    const char *bad[] = {
        "headers_at 16\nheaders X-A:%201%0D%0A\nheaders_at 0\nheaders X-B:%201%0D%0A\n",
        "headers_at 0\nheaders X:%0D%0A\nheaders_at 0\nheaders X:%0D%0A\nheaders_at 0\n"
        "headers X:%0D%0A\nheaders_at 0\nheaders X:%0D%0A\nheaders_at 0\nheaders X:%0D%0A\n",
        "headers_at 0\nheaders \n",
        "headers_at 999\nheaders X:%0D%0A\n",
        "headers_at 0\n",
    };
    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_clear(&b);
        buf_printf(&b, "%.*s%send\n", (int)(pairs - good), good, bad[i]);
        write_file(path, b.data);
        if (spool_read_envelope(&arena, id, &env, err, sizeof err))
            fail_msg("added headers %zu accepted:\n%s", i, bad[i]);
    }
    write_file(path, good);
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    assert_int_equal(env.added_header_groups, 4);
    arena_reset(&arena);
    buf_free(&b);
    free(good);
    spool_remove(id);
    spool_remove(end_id);
}

/* ---- -bp ---- */

static void test_format_queue_exact(void **state)
{
    (void)state;
    const char *kings[] = {"red.king@looking-glass.fict.example",
                           "white.king@looking-glass.fict.example"};
    const char *one[] = {"postmaster@example.com"};
    char id1[SPOOL_ID_LEN + 1], id2[SPOOL_ID_LEN + 1], id3[SPOOL_ID_LEN + 1], id4[SPOOL_ID_LEN + 1],
        id5[SPOOL_ID_LEN + 1], err[256];
    int64_t now = time(NULL);
    commit_simple("alice@wonderland.fict.example", kings, 2, 2970, now - 1510, id1);
    commit_simple("", one, 1, 433, now - 3 * 3600 - 100, id2);
    commit_simple("bob@example.com", one, 1, 12000, now - 5 * 86400, id3);
    commit_simple("carol@example.com", one, 1, 1258291, now - 100 * 60, id4);
    commit_simple("dave@example.com", one, 1, 15728640, now, id5);
    assert_true(spool_mark_done(id1, 1, err, sizeof err));

    struct buf out, expect;
    buf_init(&out);
    buf_init(&expect);
    spool_format_queue(&out, false);
    buf_printf(&expect,
               "25m  2.9K %s <alice@wonderland.fict.example>\n"
               "          red.king@looking-glass.fict.example\n"
               "        D white.king@looking-glass.fict.example\n\n",
               id1);
    buf_printf(&expect, " 3h   433 %s <>\n          postmaster@example.com\n\n", id2);
    buf_printf(&expect, " 5d   12K %s <bob@example.com>\n          postmaster@example.com\n\n",
               id3);
    buf_printf(&expect, " 2h  1.2M %s <carol@example.com>\n          postmaster@example.com\n\n",
               id4);
    buf_printf(&expect, " 0m   15M %s <dave@example.com>\n          postmaster@example.com\n\n",
               id5);
    assert_string_equal(out.data, expect.data);
    /* -bpu: the finished recipient is left out, the rest is the same */
    buf_clear(&out);
    spool_format_queue(&out, true);
    assert_non_null(strstr(out.data, "          red.king@looking-glass.fict.example\n\n"));
    assert_null(strstr(out.data, "white.king"));
    assert_non_null(strstr(out.data, id5));

    struct arena arena;
    arena_init(&arena, 1024);
    const char **ids;
    assert_int_equal(spool_list_ids(&arena, &ids), 5);
    assert_string_equal(ids[0], id1);
    assert_string_equal(ids[4], id5);
    assert_null(ids[5]);
    arena_reset(&arena);
    buf_free(&out);
    buf_free(&expect);
}

/* ---- group commit ---- */

#define COMMIT_THREADS 16
#define COMMITS_PER_THREAD 50

struct callback_record {
    atomic_int calls[COMMIT_THREADS * COMMITS_PER_THREAD];
    atomic_int ok;
    atomic_int finished;
    char ids[COMMIT_THREADS * COMMITS_PER_THREAD][SPOOL_ID_LEN + 1];
};

struct callback_arg {
    struct callback_record *record;
    int index;
};

static void on_commit(void *arg, bool ok, const char *reason)
{
    struct callback_arg *a = arg;
    atomic_fetch_add(&a->record->calls[a->index], 1);
    if (ok && reason && *reason == '\0')
        atomic_fetch_add(&a->record->ok, 1);
    atomic_fetch_add(&a->record->finished, 1);
}

struct submitter {
    struct callback_record *record;
    struct callback_arg args[COMMITS_PER_THREAD];
    int thread;
};

static void *submit_thread(void *arg)
{
    struct submitter *s = arg;
    const char *rcpts[] = {"group@example.com"};
    for (int i = 0; i < COMMITS_PER_THREAD; i++) {
        int index = s->thread * COMMITS_PER_THREAD + i;
        char *id = s->record->ids[index], err[256];
        struct spool_envelope env;
        spool_new_id(id);
        basic_envelope(&env, "sender@example.com", rcpts, 1);
        struct spool_writer *w = spool_message_begin(id, err, sizeof err);
        assert_non_null(w);
        fill_message(w, id, 1000 + (size_t)index);
        s->args[i].record = s->record;
        s->args[i].index = index;
        assert_true(spool_commit_submit(w, &env, on_commit, &s->args[i], err, sizeof err));
        free(env.recipients);
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    (void)state;
    struct callback_record *record = calloc(1, sizeof *record);
    struct submitter *subs = calloc(COMMIT_THREADS, sizeof *subs);
    pthread_t threads[COMMIT_THREADS];
    for (int t = 0; t < COMMIT_THREADS; t++) {
        subs[t].record = record;
        subs[t].thread = t;
        pthread_create(&threads[t], NULL, submit_thread, &subs[t]);
    }
    for (int t = 0; t < COMMIT_THREADS; t++)
        pthread_join(threads[t], NULL);
    const int total = COMMIT_THREADS * COMMITS_PER_THREAD;
    int64_t deadline = time_mono_ms() + 60000;
    while (atomic_load(&record->finished) < total && time_mono_ms() < deadline)
        usleep(1000);
    spool_shutdown(); /* drains; no callback may come after this */
    assert_int_equal(atomic_load(&record->finished), total);
    assert_int_equal(atomic_load(&record->ok), total);
    for (int i = 0; i < total; i++)
        assert_int_equal(atomic_load(&record->calls[i]), 1);

    struct spool_stats stats;
    spool_stats(&stats);
    print_message("group commit: %llu messages in %llu batches, max batch %d, "
                  "mean latency %.2f ms, max %.2f ms\n",
                  (unsigned long long)stats.messages, (unsigned long long)stats.batches,
                  stats.max_batch, stats.latency_us_total / 1000.0 / (double)stats.messages,
                  stats.latency_us_max / 1000.0);
    assert_int_equal(stats.messages, total);
    assert_int_equal(stats.failed, 0);
    assert_true(stats.batches < stats.messages);
    assert_true(stats.max_batch > 1 && stats.max_batch <= 64);

    char err[256];
    struct fixture *f = *state;
    assert_true(spool_init(f->dir, 64, err, sizeof err)); /* reading needs the store */
    struct arena arena;
    arena_init(&arena, 4096);
    const char **ids;
    assert_int_equal(spool_list_ids(&arena, &ids), total);
    for (int i = 0; i < total; i++) {
        struct spool_envelope env;
        assert_true(spool_read_envelope(&arena, record->ids[i], &env, err, sizeof err));
        assert_int_equal(env.size, 1000 + i);
        assert_true(check_message_data(record->ids[i], env.size));
    }
    arena_reset(&arena);
    free(record);
    free(subs);
}

static void test_lone_commit_is_prompt(void **state)
{
    (void)state;
    const char *rcpts[] = {"a@example.com"};
    char id[SPOOL_ID_LEN + 1];
    struct spool_stats before, after;
    spool_stats(&before);
    commit_simple("s@example.com", rcpts, 1, 1000, 0, id);
    spool_stats(&after);
    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.messages - before.messages, 1);
    /* one create+write+fsync runs in milliseconds; a lone message must not wait long */
    assert_true(after.latency_us_max < 1000000);
}

/* ---- crash safety ---- */

static void *crash_worker(void *arg)
{
    (void)arg;
    const char *rcpts[] = {"x@example.com", "y@example.com"};
    unsigned seed = (unsigned)pthread_self();
    for (;;) {
        char id[SPOOL_ID_LEN + 1], err[256];
        struct spool_envelope env;
        spool_new_id(id);
        basic_envelope(&env, "crash@example.com", rcpts, 2);
        struct spool_writer *w = spool_message_begin(id, err, sizeof err);
        if (!w)
            _exit(3);
        fill_message(w, id, 100 + (size_t)(rand_r(&seed) % 150000));
        if (!spool_commit_wait(w, &env, err, sizeof err))
            _exit(4);
        free(env.recipients);
    }
    return NULL;
}

static void crash_child(const char *dir)
{
    char err[256];
    if (!spool_init(dir, 64, err, sizeof err))
        _exit(2);
    pthread_t threads[6];
    for (int i = 0; i < 6; i++)
        pthread_create(&threads[i], NULL, crash_worker, NULL);
    pause();
    _exit(0);
}

static void test_crash_leaves_no_half_message(void **state)
{
    struct fixture *f = *state;
    spool_shutdown(); /* the child owns the spool while it runs */
    const char *seed_env = getenv("POSTERN_TEST_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    printf("test_crash_leaves_no_half_message: seed %u (POSTERN_TEST_SEED=%u repeats it)\n", seed,
           seed);
    srand(seed);
    int total_visible = 0;
    for (int round = 0; round < 8; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            crash_child(f->dir);
        usleep(50000 + (useconds_t)(rand() % 250000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        /* restart: clean-up, then every visible message must be whole */
        char err[256];
        assert_true(spool_init(f->dir, 64, err, sizeof err));
        struct arena arena;
        arena_init(&arena, 65536);
        const char **ids;
        int n = spool_list_ids(&arena, &ids);
        for (int i = 0; i < n; i++) {
            struct spool_envelope env;
            if (!spool_read_envelope(&arena, ids[i], &env, err, sizeof err))
                fail_msg("round %d: visible message %s unreadable: %s", round, ids[i], err);
            assert_int_equal(env.recipient_count, 2);
            if (!check_message_data(ids[i], env.size))
                fail_msg("round %d: %s data does not match its -H size %lld", round, ids[i],
                         (long long)env.size);
        }
        /* nothing but complete messages is left after the startup clean-up */
        int files = count_files(f->input);
        assert_int_equal(files, 2 * n);
        total_visible = n;
        arena_reset(&arena);
        spool_shutdown();
    }
    print_message("crash test: %d complete messages after 8 kills\n", total_visible);
    assert_true(total_visible > 0);
    char err[256];
    assert_true(spool_init(f->dir, 64, err, sizeof err));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_id_form),
        T(test_id_unique_across_threads),
        T(test_round_trip),
        T(test_abort_leaves_nothing),
        T(test_journal_marks_done),
        T(test_remove_and_lock),
        T(test_files_are_recycled),
        T(test_startup_cleanup),
        T(test_torn_header_rejected),
        T(test_added_header_groups),
        T(test_format_queue_exact),
        T(test_group_commit),
        T(test_lone_commit_is_prompt),
        T(test_crash_leaves_no_half_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
