/*
 * test_lsearch.c - the lookup registry and the lsearch family through lookup_run():
 * file format details (separators, quoted keys, continuation lines, comments, first match
 * wins, case-insensitive keys), wildlsearch / nwildlsearch patterns, iplsearch networks,
 * and the error cases (missing file, relative path, over-long line, wrong key style).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../test_files.h"

#include "postern/lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    struct arena arena;
    struct expand_ctx ctx;
    char dir[64];
};

static const char *test_var(struct expand_ctx *ctx, const char *name)
{
    return strcmp(name, "zone") == 0 ? "zone.example" : NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    arena_init(&f->arena, 4096);
    expand_ctx_init(&f->ctx, &f->arena, NULL, test_var, NULL);
    if (!test_tmpdir(f->dir, sizeof f->dir, "lsearch"))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!test_rmtree(f->dir))
        return -1;
    arena_reset(&f->arena);
    free(f);
    return 0;
}

static const char *write_file(struct fixture *f, const char *name, const char *content)
{
    return test_write_file(&f->arena, f->dir, name, content);
}

struct lookup_case {
    const char *type;
    const char *key;
    enum lookup_status want;
    const char *data; /* when FOUND */
};

static void run_cases(struct fixture *f, const char *file, const struct lookup_case *cases,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *result = NULL, *err = NULL;
        enum lookup_status st =
            lookup_run(&f->ctx, cases[i].type, cases[i].key, file, &result, &err);
        bool ok = st == cases[i].want &&
                  (st != LOOKUP_FOUND || strcmp(result, cases[i].data) == 0) &&
                  (st != LOOKUP_ERROR || err != NULL);
        if (!ok) {
            print_error("%s{%s}: want %d \"%s\", got %d \"%s\" (%s)\n", cases[i].type, cases[i].key,
                        cases[i].want, cases[i].data ? cases[i].data : "", st,
                        st == LOOKUP_FOUND ? result : "", err ? err : "-");
            fail();
        }
    }
}

#define RUN(f, file, cases) run_cases(f, file, cases, sizeof cases / sizeof cases[0])

static void test_lsearch_format(void **state)
{
    struct fixture *f = *state;
    const char *file = write_file(f, "aliases",
                                  "# aliases\n"
                                  "postmaster: root\n"
                                  "abuse\troot   \n"
                                  "spaced   :   padded value  \n"
                                  "bare\n"
                                  "baduser:  :fail:\n"
                                  "\"quoted key\": quoted\n"
                                  "\"colon:key\" colon\n"
                                  "\"esc\\\"aped\": escaped\n"
                                  "list: a,\n"
                                  "  b,\n"
                                  "\n"
                                  "# a comment inside the entry\n"
                                  "\t c\n"
                                  "dup: first\n"
                                  "DUP: second\n"
                                  "crlf: windows\r\n"
                                  "postmasterx: wrong\n");
    static const struct lookup_case cases[] = {
        {"lsearch", "postmaster", LOOKUP_FOUND, "root"},
        {"lsearch", "PostMaster", LOOKUP_FOUND, "root"},
        {"lsearch", "abuse", LOOKUP_FOUND, "root"},
        {"lsearch", "spaced", LOOKUP_FOUND, "padded value"},
        {"lsearch", "bare", LOOKUP_FOUND, ""},
        {"lsearch", "baduser", LOOKUP_FOUND, ":fail:"},
        {"lsearch", "quoted key", LOOKUP_FOUND, "quoted"},
        {"lsearch", "colon:key", LOOKUP_FOUND, "colon"},
        {"lsearch", "esc\"aped", LOOKUP_FOUND, "escaped"},
        {"lsearch", "list", LOOKUP_FOUND, "a, b, c"},
        {"lsearch", "dup", LOOKUP_FOUND, "first"},
        {"lsearch", "crlf", LOOKUP_FOUND, "windows"},
        {"lsearch", "post", LOOKUP_NOT_FOUND, NULL},
        {"lsearch", "nobody", LOOKUP_NOT_FOUND, NULL},
        {"lsearch", "", LOOKUP_NOT_FOUND, NULL},
        {"lsearch", "# aliases", LOOKUP_NOT_FOUND, NULL},
    };
    RUN(f, file, cases);
}

static void test_wildlsearch(void **state)
{
    struct fixture *f = *state;
    const char *wild = write_file(f, "wild",
                                  "*.a.b.c       data for anything.a.b.c\n"
                                  "*fish         data for anythingfish\n"
                                  "^\\N\\d+\\.a\\.b\\N    digits\n"
                                  "$zone         from a variable\n"
                                  "^(?-i)\\N[A-Z]+\\.case\\N  caseful\n"
                                  "literal.key   literal\n");
    static const struct lookup_case wild_cases[] = {
        {"wildlsearch", "x.a.b.c", LOOKUP_FOUND, "data for anything.a.b.c"},
        {"wildlsearch", "X.A.B.C", LOOKUP_FOUND, "data for anything.a.b.c"},
        {"wildlsearch", "swordfish", LOOKUP_FOUND, "data for anythingfish"},
        {"wildlsearch", "123.a.b", LOOKUP_FOUND, "digits"},
        {"wildlsearch", "zone.example", LOOKUP_FOUND, "from a variable"},
        {"wildlsearch", "ABC.case", LOOKUP_FOUND, "caseful"},
        {"wildlsearch", "abc.case", LOOKUP_NOT_FOUND, NULL},
        {"wildlsearch", "Literal.Key", LOOKUP_FOUND, "literal"},
        {"wildlsearch", "a.b.c", LOOKUP_NOT_FOUND, NULL},
    };
    RUN(f, wild, wild_cases);

    const char *nwild = write_file(f, "nwild",
                                   "^\\d+\\.a\\.b    digits\n"
                                   "$zone         not expanded\n"
                                   "*.example     suffix\n");
    static const struct lookup_case nwild_cases[] = {
        {"nwildlsearch", "42.a.b", LOOKUP_FOUND, "digits"},
        {"nwildlsearch", "zone.example", LOOKUP_FOUND, "suffix"},
        {"nwildlsearch", "$zone", LOOKUP_FOUND, "not expanded"},
    };
    RUN(f, nwild, nwild_cases);

    const char *bad = write_file(f, "bad", "${nosuchvar} data\n");
    const char *result = NULL, *err = NULL;
    assert_int_equal(lookup_run(&f->ctx, "wildlsearch", "x", bad, &result, &err), LOOKUP_ERROR);
    assert_non_null(strstr(err, "nosuchvar"));
    /* a lookup type used as a key pattern */
    const char *inner = write_file(f, "inner", "member.example\n");
    const char *outer =
        write_file(f, "outer", arena_printf(&f->arena, "lsearch;%s  via inner\n", inner));
    static const struct lookup_case nested[] = {
        {"nwildlsearch", "member.example", LOOKUP_FOUND, "via inner"},
        {"nwildlsearch", "other.example", LOOKUP_NOT_FOUND, NULL},
    };
    RUN(f, outer, nested);
    /* a file that names itself must stop, not recurse forever */
    char *self = arena_printf(&f->arena, "%s/self", f->dir);
    write_file(f, "self", arena_printf(&f->arena, "nwildlsearch;%s  loop\n", self));
    assert_int_equal(lookup_run(&f->ctx, "nwildlsearch", "x", self, &result, &err), LOOKUP_ERROR);
    assert_non_null(strstr(err, "nested too deeply"));
    assert_int_equal(f->ctx.depth, 0);
}

static void test_iplsearch(void **state)
{
    struct fixture *f = *state;
    const char *file = write_file(f, "ips",
                                  "1.2.3.4:           data for 1.2.3.4\n"
                                  "192.168.0.0/16:    data for 192.168.0.0/16\n"
                                  "\"abcd::cdab\":      data for abcd::cdab\n"
                                  "\"abcd:abcd::/32\"   data for abcd:abcd::/32\n"
                                  "not-an-ip         skipped\n"
                                  "0.0.0.0/0         default\n");
    static const struct lookup_case cases[] = {
        {"iplsearch", "1.2.3.4", LOOKUP_FOUND, "data for 1.2.3.4"},
        {"iplsearch", "192.168.77.1", LOOKUP_FOUND, "data for 192.168.0.0/16"},
        {"iplsearch", "abcd::cdab", LOOKUP_FOUND, "data for abcd::cdab"},
        {"iplsearch", "abcd:abcd:1::1", LOOKUP_FOUND, "data for abcd:abcd::/32"},
        {"iplsearch", "::ffff:1.2.3.4", LOOKUP_FOUND, "data for 1.2.3.4"},
        {"iplsearch", "8.8.8.8", LOOKUP_FOUND, "default"},
        {"iplsearch", "abce::1", LOOKUP_NOT_FOUND, NULL},
        {"iplsearch", "1.2.3.0/24", LOOKUP_NOT_FOUND, NULL},
        {"iplsearch", "not-an-ip", LOOKUP_NOT_FOUND, NULL},
    };
    RUN(f, file, cases);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    const char *result = NULL, *err = NULL;
    const char *missing = arena_printf(&f->arena, "%s/missing", f->dir);
    assert_int_equal(lookup_run(&f->ctx, "lsearch", "k", missing, &result, &err), LOOKUP_ERROR);
    assert_non_null(strstr(err, "failed to open"));
    assert_int_equal(lookup_run(&f->ctx, "lsearch", "k", "relative", &result, &err), LOOKUP_ERROR);
    assert_non_null(strstr(err, "absolute path"));
    assert_int_equal(lookup_run(&f->ctx, "lsearch", NULL, "/etc/hosts", &result, &err),
                     LOOKUP_ERROR);
    assert_non_null(strstr(err, "single-key"));
    assert_int_equal(lookup_run(&f->ctx, "nosuch", "k", "/etc/hosts", &result, &err), LOOKUP_ERROR);
    assert_non_null(strstr(err, "unknown lookup type"));

    struct buf big;
    buf_init(&big);
    buf_append_str(&big, "long: ");
    for (int i = 0; i < 70000; i++)
        buf_append(&big, "x", 1);
    buf_append_str(&big, "\nafter: ok\n");
    const char *file = write_file(f, "big", big.data);
    buf_free(&big);
    assert_int_equal(lookup_run(&f->ctx, "lsearch", "after", file, &result, &err), LOOKUP_ERROR);
    assert_non_null(strstr(err, "too long"));

    const char *empty = write_file(f, "empty", "");
    assert_int_equal(lookup_run(&f->ctx, "lsearch", "k", empty, &result, &err), LOOKUP_NOT_FOUND);
}

static void test_registry(void **state)
{
    (void)state;
    bool qs = true;
    static const char *const known[] = {"lsearch", "wildlsearch", "nwildlsearch", "iplsearch"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        qs = true;
        assert_true(lookup_type_known(known[i], &qs));
        assert_false(qs);
    }
    assert_false(lookup_type_known("LSEARCH", &qs));
    assert_false(lookup_type_known("dbm", &qs));
    assert_false(lookup_type_known("partial-lsearch", &qs));
    assert_false(lookup_type_known(NULL, &qs));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lsearch_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildlsearch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iplsearch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
