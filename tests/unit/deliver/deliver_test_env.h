/*
 * deliver_test_env.h - shared fixtures for the delivery tests: a temporary root with a
 * spool, a log directory and maildirs; configs loaded from text; helpers to spool a
 * message and to inspect the mainlog and maildirs. Each test program includes it once.
 */
#ifndef DELIVER_TEST_ENV_H
#define DELIVER_TEST_ENV_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "postern/acl.h"
#include "postern/config.h"
#include "postern/deliver.h"
#include "postern/log.h"
#include "postern/spool.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char test_root[256];
static int64_t test_received_age; /* seconds subtracted from received_time of new messages */

static const char *test_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A path under the test root; returns a static buffer from a small ring. */
static const char *test_path(const char *fmt, ...)
{
    static char ring[8][512];
    static int next;
    char *out = ring[next++ % 8];
    char rel[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(out, sizeof ring[0], "%s/%s", test_root, rel);
    return out;
}

static int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void test_rm_rf(const char *path)
{
    nftw(path, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int test_env_setup(void **state)
{
    (void)state;
    char err[256];
    snprintf(test_root, sizeof test_root, "/tmp/postern-deliver-XXXXXX");
    if (!mkdtemp(test_root))
        return -1;
    mkdir(test_path("log"), 0700);
    mkdir(test_path("mail"), 0700);
    if (!log_configure(test_path("log/%%slog"), err, sizeof err)) {
        fprintf(stderr, "log_configure: %s\n", err);
        return -1;
    }
    if (!spool_init(test_path("spool"), 64, err, sizeof err)) {
        fprintf(stderr, "spool_init: %s\n", err);
        return -1;
    }
    return 0;
}

static int test_env_teardown(void **state)
{
    (void)state;
    spool_shutdown();
    log_close();
    if (!getenv("POSTERN_KEEP_TEST_DIR"))
        test_rm_rf(test_root);
    return 0;
}

/* Load a config: a standard main section followed by `routers_and_transports`, in which
 * every "@ROOT@" is replaced by the test root. Fails the test on error. */
static struct config *test_config(const char *routers_and_transports)
{
    struct buf text;
    buf_init(&text);
    buf_printf(&text,
               "primary_hostname = test.example\n"
               "qualify_domain = localhost\n"
               "spool_directory = %s/spool\n"
               "log_file_path = %s/log/%%slog\n"
               "domainlist local_domains = localhost : test.example\n",
               test_root, test_root);
    for (const char *p = routers_and_transports; *p;) {
        if (strncmp(p, "@ROOT@", 6) == 0) {
            buf_append_str(&text, test_root);
            p += 6;
        } else {
            buf_append(&text, p++, 1);
        }
    }
    char err[512] = "";
    struct config *cfg = config_load_text(text.data, "test.conf", NULL, err, sizeof err);
    if (!cfg)
        fprintf(stderr, "config_load_text: %s\n%s\n", err, text.data);
    buf_free(&text);
    assert_non_null(cfg);
    return cfg;
}

/* Spool a message (data in CRLF form) for the recipients; returns its id in `id`. */
static void test_spool_message(const char *sender, const char *const *rcpts, int n,
                               const char *data, char id[SPOOL_ID_LEN + 1])
{
    char err[256] = "";
    spool_new_id(id);
    struct spool_writer *w = spool_message_begin(id, err, sizeof err);
    assert_non_null(w);
    assert_true(spool_data_write(w, data, strlen(data), err, sizeof err));
    struct spool_recipient *r = calloc((size_t)n, sizeof *r);
    for (int i = 0; i < n; i++)
        r[i].address = rcpts[i];
    struct spool_envelope env;
    memset(&env, 0, sizeof env);
    memcpy(env.id, id, SPOOL_ID_LEN + 1);
    env.sender = sender;
    env.received_time = (int64_t)time(NULL) - test_received_age;
    env.size = (int64_t)strlen(data);
    env.host_address = "192.0.2.7";
    env.host_name = "";
    env.helo_name = "client.example";
    env.protocol = "esmtp";
    env.proxy_address = "";
    env.interface_address = "127.0.0.1";
    env.recipient_count = n;
    env.recipients = r;
    if (!spool_commit_wait(w, &env, err, sizeof err))
        fail_msg("spool_commit_wait: %s", err);
    free(r);
}

static char *test_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    buf_append(&b, "", 0);
    return buf_steal(&b);
}

/* The mainlog lines of one message id (or every line when id is NULL), without the
 * timestamp and id, joined with "\n". Caller frees. */
static char *test_log_lines(const char *which, const char *id)
{
    char *all = test_read_file(test_path("log/%slog", which));
    struct buf out;
    buf_init(&out);
    buf_append(&out, "", 0);
    for (char *save = NULL, *line = all ? strtok_r(all, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strlen(line) < 20)
            continue;
        const char *rest = line + 20;
        if (id) {
            if (strncmp(rest, id, SPOOL_ID_LEN) != 0 || rest[SPOOL_ID_LEN] != ' ')
                continue;
            rest += SPOOL_ID_LEN + 1;
        }
        buf_printf(&out, "%s\n", rest);
    }
    free(all);
    return buf_steal(&out);
}

/* Number of regular files in a directory (-1 if it does not exist). */
static int test_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The content of the only file in a directory (caller frees), or NULL. */
static __attribute__((unused)) char *test_only_file(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char path[1024] = "";
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && ++n == 1)
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    closedir(d);
    return n == 1 ? test_read_file(path) : NULL;
}

static bool test_in_spool(const char *id)
{
    struct arena a;
    arena_init(&a, 0);
    const char **ids = NULL;
    int n = spool_list_ids(&a, &ids);
    bool found = false;
    for (int i = 0; i < n; i++)
        found |= strcmp(ids[i], id) == 0;
    arena_reset(&a);
    return found;
}

#endif
