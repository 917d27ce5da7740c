/*
 * test_snapshot.c - the configuration snapshot: the compiler table builds every part,
 * the reference count lives in struct snapshot (around the config), cleanup hooks run
 * exactly once when the last reference goes (never while a holder remains), and
 * concurrent get/put against repeated publishes frees every snapshot once (run under
 * TSan in the TSan build). Threads: the test's main thread and SNAP_THREADS readers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/config/config_internal.h"
#include "postern/snapshot.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_THREADS 4
#define SNAP_PUBLISHES 200

static atomic_int cleanups_run;

static void count_cleanup(void *arg)
{
    atomic_fetch_add(&cleanups_run, 1);
    int *order = arg;
    if (order)
        *order = atomic_load(&cleanups_run);
}

static struct config *load_default(void)
{
    char err[512];
    struct config *cfg = config_load(NULL, NULL, err, sizeof err);
    if (!cfg)
        fail_msg("embedded default does not load: %s", err);
    return cfg;
}

static void test_compiler_table(void **state)
{
    bool acl = false, deliver = false;
    for (size_t i = 0; i < config_compilers_count; i++) {
        assert_non_null(config_compilers[i].compile);
        acl |= strcmp(config_compilers[i].name, "acl") == 0;
        deliver |= strcmp(config_compilers[i].name, "deliver") == 0;
    }
    assert_true(acl && deliver);
    struct config *cfg = load_default();
    assert_ptr_equal(&snapshot_of(cfg)->config, cfg);
    assert_int_equal(atomic_load(&snapshot_of(cfg)->refs), 0); /* not published yet */
    config_free(cfg);
}

static void test_cleanup_newest_first(void **state)
{
    atomic_store(&cleanups_run, 0);
    int first = 0, second = 0;
    struct config *cfg = load_default();
    config_add_cleanup(cfg, count_cleanup, &first);
    config_add_cleanup(cfg, count_cleanup, &second);
    config_free(cfg);
    assert_int_equal(atomic_load(&cleanups_run), 2);
    assert_int_equal(second, 1); /* registered last, run first */
    assert_int_equal(first, 2);
}

static void test_last_reference_frees(void **state)
{
    atomic_store(&cleanups_run, 0);
    struct config *a = load_default();
    config_add_cleanup(a, count_cleanup, NULL);
    snapshot_publish(a);
    const struct config *held = snapshot_get();
    assert_ptr_equal(held, a);
    assert_int_equal(atomic_load(&snapshot_of(a)->refs), 2);

    snapshot_publish(load_default()); /* a is unpublished but still held */
    assert_int_equal(atomic_load(&cleanups_run), 0);
    assert_string_equal(held->source, "<embedded>"); /* still readable */
    snapshot_put(held);
    assert_int_equal(atomic_load(&cleanups_run), 1);
    snapshot_shutdown();
}

static atomic_bool readers_stop;

static void *reader_main(void *unused)
{
    while (!atomic_load(&readers_stop)) {
        const struct config *cfg = snapshot_get();
        if (cfg && strcmp(cfg->source, "<embedded>") != 0)
            abort();
        snapshot_put(cfg);
    }
    snapshot_thread_done();
    return NULL;
}

static void test_concurrent_publish(void **state)
{
    atomic_store(&cleanups_run, 0);
    atomic_store(&readers_stop, false);
    pthread_t t[SNAP_THREADS];
    for (int i = 0; i < SNAP_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, NULL), 0);
    for (int i = 0; i < SNAP_PUBLISHES; i++) {
        struct config *cfg = load_default();
        config_add_cleanup(cfg, count_cleanup, NULL);
        snapshot_publish(cfg);
    }
    atomic_store(&readers_stop, true);
    for (int i = 0; i < SNAP_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&cleanups_run), SNAP_PUBLISHES - 1);
    snapshot_shutdown();
    assert_int_equal(atomic_load(&cleanups_run), SNAP_PUBLISHES);
    snapshot_thread_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compiler_table),
        cmocka_unit_test(test_cleanup_newest_first),
        cmocka_unit_test(test_last_reference_frees),
        cmocka_unit_test(test_concurrent_publish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
