/*
 * test_expand.c - table-driven tests of expand_string(), expand_bool() and
 * expand_check_syntax(): text and escapes, variables, every item, operator and condition,
 * nesting, forced failure, error messages, and the seed's ACL expressions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../test_files.h"

#include "../../../src/expand/expand_internal.h" /* expand_operator(), for the eval test */
#include "postern/expand.h"
#include "postern/snapshot.h"
#include "postern/lookup.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct var_pair {
    const char *name;
    const char *value;
};

static const struct var_pair default_vars[] = {
    {"sender_host_address", "192.0.2.1"},
    {"proxy_host_address", ""},
    {"proxy_session", "yes"},
    {"local_part", "Postmaster"},
    {"domain", "Example.COM"},
    {"sender_address", "Fred.Smith@Example.COM"},
    {"message_size", "2048"},
    {"acl_m_empty", ""},
    {"acl_m_four", "4"},
    {"acl_c_list", "a : b : c"},
    {"dollar", "$"},
    {"braces", "}{"},
    {NULL, NULL},
};

static const char *test_var(struct expand_ctx *ctx, const char *name)
{
    const struct var_pair *vars = ctx->user ? ctx->user : default_vars;
    for (; vars->name; vars++)
        if (strcmp(vars->name, name) == 0)
            return vars->value;
    return NULL;
}

struct fixture {
    struct arena arena;
    struct expand_ctx ctx;
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    arena_init(&f->arena, 4096);
    expand_ctx_init(&f->ctx, &f->arena, NULL, test_var, NULL);
    if (!test_tmpdir(f->dir, sizeof f->dir, "expand"))
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

/* Expand and compare; on failure print the case so the table row is easy to find. */
static void check_ok(struct fixture *f, const char *in, const char *want)
{
    const char *out = NULL, *err = NULL;
    enum expand_status st = expand_string(&f->ctx, in, &out, &err);
    if (st != EXPAND_OK || strcmp(out, want) != 0) {
        print_error("input   : %s\nwant    : \"%s\"\ngot     : status %d, \"%s\" (err %s)\n", in,
                    want, st, st == EXPAND_OK ? out : "", err ? err : "-");
        fail();
    }
}

static void check_status(struct fixture *f, const char *in, enum expand_status want,
                         const char *err_part)
{
    const char *out = NULL, *err = NULL;
    enum expand_status st = expand_string(&f->ctx, in, &out, &err);
    if (st != want || (err_part && (!err || !strstr(err, err_part)))) {
        print_error("input   : %s\nwant    : status %d, error containing \"%s\"\n"
                    "got     : status %d, out \"%s\", err \"%s\"\n",
                    in, want, err_part ? err_part : "", st, st == EXPAND_OK ? out : "",
                    err ? err : "-");
        fail();
    }
}

struct ok_case {
    const char *in;
    const char *want;
};

static void run_ok_cases(struct fixture *f, const struct ok_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_ok(f, cases[i].in, cases[i].want);
}

#define RUN_OK(f, cases) run_ok_cases(f, cases, sizeof cases / sizeof cases[0])

static void test_text_and_escapes(void **state)
{
    static const struct ok_case cases[] = {
        {"", ""},
        {"plain text", "plain text"},
        {"a\\$b", "a$b"},
        {"a\\\\b", "a\\b"},
        {"a\\{b\\}", "a{b}"},
        {"line\\nbreak", "line\nbreak"},
        {"tab\\there", "tab\there"},
        {"cr\\r", "cr\r"},
        {"\\101\\x42\\x4a", "ABJ"},
        {"\\N$not ${expanded}\\N!", "$not ${expanded}!"},
        {"\\N^\\d{3}$\\N", "^\\d{3}$"},
        {"\\Nunterminated $x", "unterminated $x"},
        {"braces } are { literal at top", "braces } are { literal at top"},
        {"trailing\\", "trailing\\"},
    };
    RUN_OK((struct fixture *)*state, cases);
}

static void test_variables(void **state)
{
    struct fixture *f = *state;
    static const struct ok_case cases[] = {
        {"$sender_host_address", "192.0.2.1"},
        {"${sender_host_address}", "192.0.2.1"},
        {"[$sender_host_address]", "[192.0.2.1]"},
        {"$local_part@$domain", "Postmaster@Example.COM"},
        {"${local_part}x", "Postmasterx"},
        {"$acl_m_empty<", "<"},
        {"$dollar$braces", "$}{"},
        {"$value", ""},
        {"$1$2", ""},
        {"$primary_hostname", "localhost"},
        {"$smtp_active_hostname", "localhost"},
        {"$qualify_domain", "localhost"},
        {"$version_number", POSTERN_VERSION},
    };
    RUN_OK(f, cases);
    check_status(f, "$nosuchvar", EXPAND_FAIL, "unknown variable name \"nosuchvar\"");
    check_status(f, "${nosuchvar}", EXPAND_FAIL, "unknown variable name \"nosuchvar\"");
    check_status(f, "$", EXPAND_FAIL, "not followed by");
    check_status(f, "a $ b", EXPAND_FAIL, "not followed by");
    check_status(f, "${", EXPAND_FAIL, "missing variable or item name");
    check_status(f, "${local_part", EXPAND_FAIL, "missing \"}\"");
}

static void test_builtin_vars(void **state)
{
    struct fixture *f = *state;
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.primary_hostname = "mx.example.org";
    f->ctx.config = &cfg;
    check_ok(f, "$primary_hostname/$smtp_active_hostname/$qualify_domain",
             "mx.example.org/mx.example.org/mx.example.org");
    cfg.qualify_domain = "example.org";
    check_ok(f, "$qualify_domain", "example.org");
    f->ctx.config = NULL;

    const char *out = NULL, *err = NULL;
    assert_int_equal(expand_string(&f->ctx, "$tod_log", &out, &err), EXPAND_OK);
    assert_int_equal(strlen(out), 19); /* 2026-11-25 03:46:57 */
    assert_true(out[4] == '-' && out[7] == '-' && out[10] == ' ' && out[13] == ':');
    assert_int_equal(expand_string(&f->ctx, "$tod_full", &out, &err), EXPAND_OK);
    assert_int_equal(strlen(out), 31); /* Wed, 25 Nov 2026 03:46:57 +0000 */
    assert_true(out[3] == ',' && (out[26] == '+' || out[26] == '-'));
    assert_int_equal(expand_string(&f->ctx, "$tod_bsdinbox", &out, &err), EXPAND_OK);
    assert_int_equal(strlen(out), 24); /* Wed Nov 25 03:46:57 2026 */
    assert_null(expand_builtin_var(&f->ctx, "sender_host_address"));
    assert_string_equal(expand_builtin_var(&f->ctx, "version_number"), POSTERN_VERSION);
}

static void test_if_conditions(void **state)
{
    static const struct ok_case cases[] = {
        {"${if eq{a}{a}{yes}{no}}", "yes"},
        {"${if eq{a}{b}{yes}{no}}", "no"},
        {"${if eq {$local_part}{Postmaster} {yes}{no} }", "yes"},
        {"${if !eq{a}{b}{yes}{no}}", "yes"},
        {"${if ! eq{a}{a}{yes}{no}}", "no"},
        {"${if !!eq{a}{a}{yes}{no}}", "yes"},
        {"${if eq{a}{b}{yes}}", ""},
        {"${if eq{a}{a}}", "true"},
        {"${if eq{a}{b}}", ""},
        {"${if eqi{ABC}{abc}{y}{n}}", "y"},
        {"${if eq{ABC}{abc}{y}{n}}", "n"},
        {"${if lt{abc}{abd}{y}{n}}", "y"},
        {"${if gt{b}{a}{y}{n}}", "y"},
        {"${if le{a}{a}{y}{n}}", "y"},
        {"${if ge{a}{b}{y}{n}}", "n"},
        {"${if lti{A}{b}{y}{n}}", "y"},
        {"${if ={10}{10}{y}{n}}", "y"},
        {"${if =={10}{11}{y}{n}}", "n"},
        {"${if <{9}{10}{y}{n}}", "y"},
        {"${if >{$message_size}{1K}{y}{n}}", "y"},
        {"${if >{$message_size}{2k}{y}{n}}", "n"},
        {"${if >={$message_size}{2k}{y}{n}}", "y"},
        {"${if <={-5}{-5}{y}{n}}", "y"},
        {"${if >{1M}{1000000}{y}{n}}", "y"},
        {"${if ={}{0}{y}{n}}", "y"},
        {"${if >{$acl_m_four}{3}}", "true"},
        {"${if def:local_part{y}{n}}", "y"},
        {"${if def:acl_m_empty{y}{n}}", "n"},
        {"${if !def:acl_m_empty{y}{n}}", "y"},
        {"${if bool{yes}{y}{n}}", "y"},
        {"${if bool{ TRUE }{y}{n}}", "y"},
        {"${if bool{0}{y}{n}}", "n"},
        {"${if bool{00}{y}{n}}", "n"},
        {"${if bool{12}{y}{n}}", "y"},
        {"${if bool{}{y}{n}}", "n"},
        {"${if bool{  }{y}{n}}", "n"},
        {"${if bool_lax{00}{y}{n}}", "y"},
        {"${if bool_lax{no}{y}{n}}", "n"},
        {"${if bool_lax{whatever}{y}{n}}", "y"},
        {"${if and{{eq{a}{a}}{eq{b}{b}}}{y}{n}}", "y"},
        {"${if and{{eq{a}{a}}{eq{b}{c}}}{y}{n}}", "n"},
        {"${if and{}{y}{n}}", "y"},
        {"${if or{{eq{a}{b}}{eq{b}{b}}}{y}{n}}", "y"},
        {"${if or{{eq{a}{b}} {eq{c}{b}} }{y}{n}}", "n"},
        {"${if or{}{y}{n}}", "n"},
        {"${if and{{or{{eq{1}{2}}{eq{2}{2}}}}{!eq{x}{y}}}{y}{n}}", "y"},
        {"${if isip{192.0.2.1}{y}{n}}", "y"},
        {"${if isip{2001:db8::1}{y}{n}}", "y"},
        {"${if isip4{2001:db8::1}{y}{n}}", "n"},
        {"${if isip6{2001:db8::1}{y}{n}}", "y"},
        {"${if isip4{10.0.0.1}{y}{n}}", "y"},
        {"${if isip{999.1.1.1}{y}{n}}", "n"},
        {"${if isip{host.example}{y}{n}}", "n"},
        {"${if exists{/}{y}{n}}", "y"},
        {"${if exists{/nonexistent/postern}{y}{n}}", "n"},
        {"${if inlist{b}{a:b:c}{y}{n}}", "y"},
        {"${if inlist{B}{a:b:c}{y}{n}}", "n"},
        {"${if inlisti{B}{a:b:c}{y:$value}{n}}", "y:b"},
        {"${if inlist{b}{$acl_c_list}{y}{n}}", "y"},
        {"${if inlist{x}{<; x ; y}{y}{n}}", "y"},
    };
    RUN_OK((struct fixture *)*state, cases);
}

static void test_match_condition(void **state)
{
    struct fixture *f = *state;
    static const struct ok_case cases[] = {
        {"${if match{abc123}{\\N^[a-z]+([0-9]+)$\\N}{$1}{no}}", "123"},
        {"${if match{abc123}{\\N^([a-z]+)([0-9]+)$\\N}{$2-$1-$0}{no}}", "123-abc-abc123"},
        {"${if match{abc}{\\N\\d\\N}{yes}{no}}", "no"},
        {"${if match{ab7}{\\N\\d\\N}{yes}{no}}", "yes"},
        {"${if match{a b}{\\N^a\\sb$\\N}{yes}{no}}", "yes"},
        {"${if match{ABC}{\\N(?i)^abc$\\N}{yes}{no}}", "yes"},
        {"${if match{ABC}{^abc}{yes}{no}}", "no"},
        {"${if match{x.y}{\\N^[\\w.]+$\\N}{yes}{no}}", "yes"},
        {"${if match{foo}{(?:f)(o+)}{$1}{no}}", "oo"},
        {"${if match{abcd}{(?:a)(b)(?:c)(d)}{$2$1}{no}}", "db"},
        /* numeric variables are restored after the ${if} */
        {"${if match{ab}{(b)}{$1}}-$1", "b-"},
        {"${if match{ab}{(b)}{${if match{cd}{(d)}{$1}}$1}}", "db"},
    };
    RUN_OK(f, cases);
    check_status(f, "${if match{a}{(}{y}{n}}", EXPAND_FAIL, "regular expression error");
}

/* PCRE2, as Exim has it: what POSIX regcomp could not do, and bounded cost. */
static void test_pcre2(void **state)
{
    struct fixture *f = *state;
    static const struct ok_case cases[] = {
        /* look-ahead and look-behind */
        {"${if match{foobar}{\\Nfoo(?=bar)\\N}{yes}{no}}", "yes"},
        {"${if match{foobaz}{\\Nfoo(?=bar)\\N}{yes}{no}}", "no"},
        {"${if match{foobar}{\\N(?<=foo)bar\\N}{yes}{no}}", "yes"},
        {"${if match{spam@x}{\\N^(?!postmaster@)\\N}{yes}{no}}", "yes"},
        {"${if match{postmaster@x}{\\N^(?!postmaster@)\\N}{yes}{no}}", "no"},
        /* lazy quantifiers, \d{n}, (?i) in the middle, named groups counted as numbers */
        {"${if match{<a><b>}{\\N<(.+?)>\\N}{$1}{no}}", "a"},
        {"${if match{ab12345}{\\N\\d{3}$\\N}{$0}{no}}", "345"},
        {"${if match{abCD}{\\Nab(?i)cd\\N}{yes}{no}}", "yes"},
        {"${if match{ABcd}{\\Nab(?i)cd\\N}{yes}{no}}", "no"},
        {"${if match{k=v}{\\N(?<key>\\w)=(\\w)\\N}{$1$2}{no}}", "kv"},
        /* unset groups are empty; $3 beyond the groups is empty */
        {"${if match{b}{\\N(a)?(b)\\N}{[$1][$2][$3]}{no}}", "[][b][]"},
        /* sg with look-behind sees the whole subject, and empty matches advance */
        {"${sg{aaa}{\\N(?<=a)a\\N}{b}}", "abb"},
        {"${sg{abc}{x*}{-}}", "-a-b-c-"},
        {"${sg{1.2.3.4}{\\N(\\d+)\\.(\\d+)\\N}{\\$2.\\$1}}", "2.1.4.3"},
    };
    RUN_OK(f, cases);
    /* A pattern that explodes hits the match limit: a deferral with a reason, not a hang. */
    check_status(f,
                 "${if match{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab}"
                 "{\\N^(a|aa|a?)+$\\N}{y}{n}}",
                 EXPAND_DEFER, "match limit exceeded");
    check_status(f, "${sg{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab}{\\N^(a|aa|a?)+$\\N}{x}}",
                 EXPAND_DEFER, "match limit exceeded");
    /* too deeply nested groups are a compile error, whatever PCRE2's own default */
    char deep[200] = "${if match{a}{";
    for (int i = 0; i < 70; i++)
        strcat(deep, "(");
    strcat(deep, "a");
    for (int i = 0; i < 70; i++)
        strcat(deep, ")");
    strcat(deep, "}}");
    check_status(f, deep, EXPAND_FAIL, "parentheses are too deeply nested");
    check_status(f, "${if match{a}{\\N(?<=a+)b\\N}}", EXPAND_FAIL, "regular expression error");
}

/* Workers share a snapshot's compiled patterns and the process-wide limit contexts: run
 * matches from several threads at once (the TSan build checks there is no race). */
struct regex_thread {
    const struct config *cfg;
    int matched;
};

static void *regex_thread_main(void *arg)
{
    struct regex_thread *t = arg;
    struct arena arena;
    arena_init(&arena, 4096);
    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, t->cfg, test_var, NULL);
    for (int i = 0; i < 500; i++) {
        const char *out = NULL, *err = NULL;
        if (expand_string(&ctx, "${if match{a123}{\\N^a(\\d+)$\\N}{$1}}", &out, &err) ==
                EXPAND_OK &&
            strcmp(out, "123") == 0)
            t->matched++;
        if (expand_string(&ctx, "${if match{$local_part}{(?i)^post}{y}{n}}", &out, &err) ==
                EXPAND_OK &&
            strcmp(out, "y") == 0)
            t->matched++;
        arena_reset(&arena);
    }
    return NULL;
}

static void test_regex_threads(void **state)
{
    (void)state;
    struct arena *arena = arena_new(4096);
    struct snapshot *snap = arena_zalloc(arena, sizeof *snap);
    struct config *cfg = &snap->config;
    cfg->arena = arena;
    const char *err = NULL;
    assert_true(expand_regex_precompile(cfg, "^a(\\d+)$", false, &err));
    pthread_t threads[4];
    struct regex_thread t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct regex_thread){.cfg = cfg};
        assert_int_equal(pthread_create(&threads[i], NULL, regex_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(t[i].matched, 1000);
    }
    config_free(cfg);
}

/* Constant patterns are compiled once into the snapshot's set and used from there. */
static void test_regex_precompiled(void **state)
{
    struct fixture *f = *state;
    struct arena *arena = arena_new(4096); /* the snapshot's arena, as config_load makes it */
    struct snapshot *snap = arena_zalloc(arena, sizeof *snap);
    struct config *cfg = &snap->config;
    cfg->arena = arena;
    const char *err = NULL;
    assert_true(expand_regex_precompile(cfg, "^\\d+$", false, &err));
    assert_true(expand_regex_precompile(cfg, "^\\d+$", false, &err)); /* same: once */
    assert_true(expand_regex_precompile(cfg, "^\\d+$", true, &err));
    assert_int_equal(expand_regex_precompiled_count(cfg), 2);
    assert_false(expand_regex_precompile(cfg, "a(b", false, &err));
    assert_non_null(strstr(err, "missing closing parenthesis"));
    f->ctx.config = cfg;
    check_ok(f, "${if match{123}{\\N^\\d+$\\N}{yes}{no}}", "yes");
    check_ok(f, "${if match{12a}{\\N^\\d+$\\N}{yes}{no}}", "no");
    f->ctx.config = NULL;
    config_free(cfg); /* runs the cleanup hook: ASan's leak check sees the codes freed */
}

static void test_if_errors(void **state)
{
    struct fixture *f = *state;
    check_status(f, "${if eq{a}{b}{yes}fail}", EXPAND_FORCED_FAIL, NULL);
    check_ok(f, "${if eq{a}{a}{yes}fail}", "yes");
    check_status(f, "${iff eq{a}{b}}", EXPAND_FAIL, "unknown expansion item \"iff\"");
    check_status(f, "${if eqq{a}{b}}", EXPAND_FAIL, "unknown condition \"eqq\"");
    check_status(f, "${if eq{a}}", EXPAND_FAIL, "missing \"{\"");
    check_status(f, "${if eq{a}{b}{yes}{no}", EXPAND_FAIL, "missing \"}\"");
    check_status(f, "${if eq{a}{b}{yes}{no}junk}", EXPAND_FAIL, "missing \"}\"");
    check_status(f, "${if eq{a}{b", EXPAND_FAIL, "missing \"}\"");
    check_status(f, "${if def:nosuch{y}{n}}", EXPAND_FAIL, "unknown variable \"nosuch\"");
    check_status(f, "${if def:$local_part{y}{n}}", EXPAND_FAIL, "no \"$\"");
    check_status(f, "${if bool{maybe}{y}{n}}", EXPAND_FAIL, "maybe");
    check_status(f, "${if >{abc}{1}{y}{n}}", EXPAND_FAIL, "\"abc\" is not a number");
    check_status(f, "${if and{eq{a}{a}}{y}{n}}", EXPAND_FAIL, "must be in braces");
    check_status(f, "${if {y}{n}}", EXPAND_FAIL, "condition name expected");
    /* the branch not taken is parsed but not evaluated */
    check_ok(f, "${if eq{a}{a}{ok}{$nosuchvar}}", "ok");
    check_ok(f, "${if eq{a}{b}{$nosuchvar}{ok}}", "ok");
    check_ok(f, "${if or{{eq{a}{a}}{def:nosuch}}{short}{n}}", "short");
    check_status(f, "${if eq{a}{b}{${iff x}}{ok}}", EXPAND_FAIL, "unknown expansion item");
    check_ok(f, "${if eq{a}{b}{${iff}}{ok}}", "ok"); /* ${name} is a variable: not resolved */
}

static void test_seed_expressions(void **state)
{
    struct fixture *f = *state;
    const char *flat = "${if and{ {bool{$proxy_session}} {eq{$proxy_host_address}{}} } }";
    const char *second = "${if eq{$proxy_host_address}{$sender_host_address}{false}{true}}";
    const char *third = "${if and{ {bool{$proxy_session}} {!eq{$proxy_host_address}{}} } }";
    check_ok(f, flat, "true");
    check_ok(f, second, "true");
    check_ok(f, third, "");
    /* (the seed writes these over continuation lines; the config reader joins them) */
    check_ok(f, "${if and{ {bool{$proxy_session}}\n    {eq{$proxy_host_address}{}} } }", "true");

    static const struct var_pair proxied[] = {
        {"proxy_session", "1"},
        {"proxy_host_address", "192.0.2.1"},
        {"sender_host_address", "192.0.2.1"},
        {NULL, NULL},
    };
    f->ctx.user = (void *)proxied;
    check_ok(f, flat, "");
    check_ok(f, second, "false");
    check_ok(f, third, "true");
    bool b = true;
    const char *err = NULL;
    assert_int_equal(expand_bool(&f->ctx, second, &b, &err), EXPAND_OK);
    assert_false(b);
    f->ctx.user = NULL;
    assert_int_equal(expand_bool(&f->ctx, second, &b, &err), EXPAND_OK);
    assert_true(b);

    check_ok(f, "'${quote_pgsql:${lc:$local_part}}'", "'postmaster'");
    check_ok(f, "${if eq{${lc:$domain}}{example.com}{local}{remote}}", "local");
}

static void test_operators(void **state)
{
    struct fixture *f = *state;
    static const struct ok_case cases[] = {
        {"${lc:$domain}", "example.com"},
        {"${uc:$local_part}", "POSTMASTER"},
        {"${lc:${uc:MiXeD}}", "mixed"},
        {"${length_3:abcdef}", "abc"},
        {"${length_10:abc}", "abc"},
        {"${length_0:abc}", ""},
        {"${substr_2_3:abcdef}", "cde"},
        {"${substr_2:abcdef}", "cdef"},
        {"${substr_-3_2:abcdef}", "de"},
        {"${substr_10:abc}", ""},
        {"${strlen:hello}", "5"},
        {"${quote_pgsql:it's a \"test\"\\\\}", "it''s a \\\"test\\\"\\\\"},
        {"${quote_pgsql:line\\nbreak}", "line\\nbreak"},
        {"${quote_mysql:it's \"x\"\\\\}", "it\\'s \\\"x\\\"\\\\"},
        {"${quote_mysql:a\\tb}", "a\\tb"},
        {"${quote_redis:a b\\\\c\\td}", "a\\ b\\\\c\\\td"},
        {"${quote:simple.word-1}", "simple.word-1"},
        {"${quote:two words}", "\"two words\""},
        {"${quote:}", "\"\""},
        {"${quote:a\\\"b}", "\"a\\\"b\""},
        {"${rxquote:a.b*c}", "a\\.b\\*c"},
        {"${local_part:Fred.Smith@Example.COM}", "Fred.Smith"},
        {"${domain:Fred.Smith@Example.COM}", "Example.COM"},
        {"${domain:Fred <fred@example.net>}", "example.net"},
        {"${local_part:Fred <fred@example.net>}", "fred"},
        {"${address:Fred <fred@example.net>}", "fred@example.net"},
        {"${domain:nodomain}", ""},
        {"${domain:}", ""},
        {"${str2b64:hello}", "aGVsbG8="},
        {"${base64:ab}", "YWI="},
        {"${base64d:aGVsbG8=}", "hello"},
        {"${base64d:YWI=}", "ab"},
        {"${md5:abc}", "900150983cd24fb0d6963f7d28e17f72"},
        {"${sha1:abc}", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"${sha256:}", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"${mask:10.111.131.206/28}", "10.111.131.192/28"},
        {"${mask:3ffe:ffff:836f:0a00:000a:0800:200a:c031/99}",
         "3ffe.ffff.836f.0a00.000a.0800.2000.0000/99"},
        {"${mask_n:2001:db8::1/32}", "2001:db8::/32"},
        {"${reverse_ip:192.0.2.1}", "1.2.0.192"},
        {"${reverse_ip:2001:db8::1}",
         "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"},
        {"${listcount:a:b:c}", "3"},
        {"${listcount:<; a;b}", "2"},
        {"${listcount:}", "0"},
        {"${eval:1+2*3}", "7"},
        {"${eval:(1+2)*3}", "9"},
        {"${eval:-7/2}", "-3"},
        {"${eval:7%3}", "1"},
        {"${eval:1<<4 | 1}", "17"},
        {"${eval:0x10}", "16"},
        {"${eval10:010}", "10"},
        {"${eval:2K}", "2048"},
        {"${escape:a\\tb}", "a\\tb"},
        {"${hexquote:a\\x01b}", "a\\x01b"},
    };
    RUN_OK(f, cases);
    check_status(f, "${nosuchop:x}", EXPAND_FAIL, "unknown expansion operator \"nosuchop\"");
    check_status(f, "${length_x:abc}", EXPAND_FAIL, "unknown expansion operator");
    check_status(f, "${lc:abc", EXPAND_FAIL, "missing \"}\"");
    check_status(f, "${mask:10.0.0.1}", EXPAND_FAIL, "not an IP address with a mask");
    check_status(f, "${eval:1/0}", EXPAND_FAIL, "divide by zero");
    check_status(f, "${eval:1+}", EXPAND_FAIL, "number expected");
    /* issue 7: a missing ")" at the very end stepped past the string (ASan: heap overflow) */
    check_status(f, "${eval:(1}", EXPAND_FAIL, "missing \")\"");
    check_status(f, "${eval:((2*(3}", EXPAND_FAIL, "missing \")\"");
    check_status(f, "${eval10:(}", EXPAND_FAIL, "number expected");
    check_status(f, "${base64d:abc}", EXPAND_FAIL, "invalid base64");
}

/*
 * issue 7: ${eval} with a missing ")" stepped past the end of its argument. Inside
 * expand_string() the argument is an arena copy, where reading a byte or two too far is
 * not seen by ASan; here the operator gets an exactly-sized heap copy, so the ASan build
 * reports any read past its end.
 */
static void test_eval_stays_in_its_argument(void **state)
{
    struct fixture *f = *state;
    static const char *const args[] = {"(1", "((2*(3", "(", "1+(", "-(", "((((", "(1)+(2"};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        for (int decimal = 0; decimal < 2; decimal++) {
            char *arg = strdup(args[i]);
            struct expand_run run = {.ctx = &f->ctx};
            const char *out = NULL;
            enum expand_status st = expand_operator(&run, decimal ? "eval10" : "eval", arg, &out);
            assert_int_equal(st, EXPAND_FAIL);
            assert_non_null(run.err);
            free(arg);
        }
    }
}

static void test_items(void **state)
{
    struct fixture *f = *state;
    static const struct ok_case cases[] = {
        {"${sg{abcdefabcdef}{abc}{xyz}}", "xyzdefxyzdef"},
        {"${sg{abcdef}{^(...)(...)\\$}{\\$2\\$1}}", "defabc"},
        {"${sg{1=A 4=D 3=C}{\\N(\\d+)=\\N}{K\\$1=}}", "K1=A K4=D K3=C"},
        {"${sg{aaa}{x*}{-}}", "-a-a-a-"},
        {"${sg{2001:db8::1}{:}{.}}", "2001.db8..1"},
        {"${sg{}{a}{b}}", ""},
        {"${tr{abcabc}{ab}{xy}}", "xycxyc"},
        {"${tr{abc}{abc}{x}}", "xxx"},
        {"${tr{a.b.c}{.}{_}}", "a_b_c"},
        {"${length{3}{abcdef}}", "abc"},
        {"${substr{1}{2}{abcdef}}", "bc"},
        {"${substr{-2}{5}{abcdef}}", "ef"},
        {"${extract{b}{a=1 b=2 c=3}}", "2"},
        {"${extract{B}{a=1 b=\"two words\" c=3}}", "two words"},
        {"${extract{z}{a=1}{found}{missing}}", "missing"},
        {"${extract{a}{a=1}{<$value>}{missing}}", "<1>"},
        {"${extract{2}{:}{a:b:c}}", "b"},
        {"${extract{-1}{:}{a:b:c}}", "c"},
        {"${extract{5}{:}{a:b:c}{y}{n}}", "n"},
        {"${extract{3}{,;}{a,b;c}}", "c"},
    };
    RUN_OK(f, cases);
    check_status(f, "${sg{a}{(}{b}}", EXPAND_FAIL, "regular expression error");
    check_status(f, "${sg{a}{b}}", EXPAND_FAIL, "missing \"{\"");
    check_status(f, "${length{x}{abc}}", EXPAND_FAIL, "not a number");
}

static void test_lookup_item(void **state)
{
    struct fixture *f = *state;
    const char *file = write_file(f, "aliases",
                                  "# comment\n"
                                  "postmaster: root\n"
                                  "abuse   root, security\n"
                                  "\n"
                                  "multi: first\n"
                                  "  second\n"
                                  "# between\n"
                                  "\tthird\n"
                                  "empty:\n");
    char *in;
    in = arena_printf(&f->arena, "${lookup{postmaster}lsearch{%s}}", file);
    check_ok(f, in, "root");
    in = arena_printf(&f->arena, "${lookup{POSTMASTER}lsearch{%s}{<$value>}{none}}", file);
    check_ok(f, in, "<root>");
    in = arena_printf(&f->arena, "${lookup {abuse} lsearch {%s} {$value}}", file);
    check_ok(f, in, "root, security");
    in = arena_printf(&f->arena, "${lookup{multi}lsearch{%s}}", file);
    check_ok(f, in, "first second third");
    in = arena_printf(&f->arena, "${lookup{empty}lsearch{%s}{found[$value]}{no}}", file);
    check_ok(f, in, "found[]");
    in = arena_printf(&f->arena, "${lookup{nobody}lsearch{%s}{$value}{none}}", file);
    check_ok(f, in, "none");
    in = arena_printf(&f->arena, "${lookup{nobody}lsearch{%s}}", file);
    check_ok(f, in, "");
    in = arena_printf(&f->arena, "${lookup{nobody}lsearch{%s}{$value}fail}", file);
    check_status(f, in, EXPAND_FORCED_FAIL, NULL);
    /* $value is restored after the item, and nested lookups see their own */
    in = arena_printf(&f->arena,
                      "${lookup{postmaster}lsearch{%s}{${lookup{abuse}lsearch{%s}{$value}}+$value}}"
                      "[$value]",
                      file, file);
    check_ok(f, in, "root, security+root[]");
    /* a lower-case local part as the key */
    in = arena_printf(&f->arena, "${lookup{${lc:$local_part}}lsearch{%s}}", file);
    check_ok(f, in, "root");

    in = arena_printf(&f->arena, "${lookup{x}lsearch{%s/missing}}", f->dir);
    check_status(f, in, EXPAND_FAIL, "failed to open");
    check_status(f, "${lookup{x}nosuchdb{/etc/hosts}}", EXPAND_FAIL,
                 "unknown lookup type \"nosuchdb\"");
    check_status(f, "${lookup lsearch{/etc/hosts}}", EXPAND_FAIL, "missing {key}");
    check_status(f, "${lookup{x}lsearch{relative/file}}", EXPAND_FAIL, "absolute path");
    /* a path that climbs (as one built from a local part "../x" would) is refused, even
     * though it names the same, existing file */
    const char *dir_name = strrchr(f->dir, '/') + 1;
    in = arena_printf(&f->arena, "${lookup{postmaster}lsearch{%s/../%s%s}}", f->dir, dir_name,
                      strrchr(file, '/'));
    check_status(f, in, EXPAND_FAIL, "refusing to open");
}

static void test_wild_and_ip_lookups(void **state)
{
    struct fixture *f = *state;
    const char *wild = write_file(f, "wild",
                                  "*.example.com  wildcard\n"
                                  "^\\N\\d+\\.num\\.test$\\N  regex\n"
                                  "exact.test: exact\n"
                                  "\"${lc:UPPER.TEST}\": expanded\n");
    const char *nwild = write_file(f, "nwild",
                                   "^\\d+\\.num\\.test$  regex\n"
                                   "*fish  fish\n");
    const char *ips = write_file(f, "ips",
                                 "192.0.2.0/24: test-net\n"
                                 "10.1.2.3 single\n"
                                 "\"2001:db8::/32\": doc-v6\n"
                                 "\"::1\" loopback6\n");
    struct ok_case cases[] = {
        {arena_printf(&f->arena, "${lookup{a.b.Example.COM}wildlsearch{%s}}", wild), "wildcard"},
        {arena_printf(&f->arena, "${lookup{42.num.test}wildlsearch{%s}}", wild), "regex"},
        {arena_printf(&f->arena, "${lookup{x42.num.test}wildlsearch{%s}}", wild), ""},
        {arena_printf(&f->arena, "${lookup{EXACT.test}wildlsearch{%s}}", wild), "exact"},
        {arena_printf(&f->arena, "${lookup{upper.test}wildlsearch{%s}}", wild), "expanded"},
        {arena_printf(&f->arena, "${lookup{7.num.test}nwildlsearch{%s}}", nwild), "regex"},
        {arena_printf(&f->arena, "${lookup{swordfish}nwildlsearch{%s}}", nwild), "fish"},
        {arena_printf(&f->arena, "${lookup{192.0.2.77}iplsearch{%s}}", ips), "test-net"},
        {arena_printf(&f->arena, "${lookup{10.1.2.3}iplsearch{%s}}", ips), "single"},
        {arena_printf(&f->arena, "${lookup{10.1.2.4}iplsearch{%s}{$value}{none}}", ips), "none"},
        {arena_printf(&f->arena, "${lookup{2001:db8:1::5}iplsearch{%s}}", ips), "doc-v6"},
        {arena_printf(&f->arena, "${lookup{::1}iplsearch{%s}}", ips), "loopback6"},
        {arena_printf(&f->arena, "${lookup{::ffff:192.0.2.9}iplsearch{%s}}", ips), "test-net"},
        {arena_printf(&f->arena, "${lookup{not-an-ip}iplsearch{%s}{y}{n}}", ips), "n"},
    };
    run_ok_cases(f, cases, sizeof cases / sizeof cases[0]);
}

static void test_lookup_helpers(void **state)
{
    bool qs = true;
    (void)state;
    assert_true(lookup_type_known("lsearch", &qs));
    assert_false(qs);
    assert_true(lookup_type_known("iplsearch", &qs));
    assert_true(lookup_type_known("wildlsearch", NULL));
    assert_true(lookup_type_known("nwildlsearch", NULL));
    assert_false(lookup_type_known("partial-lsearch", &qs));
    assert_false(lookup_type_known("lsearch*", &qs));
    assert_false(lookup_type_known("", &qs));
}

static void test_limits(void **state)
{
    struct fixture *f = *state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 100; i++)
        buf_append_str(&b, "${lc:");
    buf_append_str(&b, "x");
    for (int i = 0; i < 100; i++)
        buf_append_str(&b, "}");
    check_status(f, b.data, EXPAND_FAIL, "nested too deeply");
    buf_clear(&b);
    for (int i = 0; i < 40; i++)
        buf_append_str(&b, "${lc:");
    buf_append_str(&b, "X");
    for (int i = 0; i < 40; i++)
        buf_append_str(&b, "}");
    check_ok(f, b.data, "x");
    buf_clear(&b);
    for (int i = 0; i < 70000; i++)
        buf_append_str(&b, "a");
    check_status(f, b.data, EXPAND_FAIL, "too long");
    buf_free(&b);
    /* the depth counter is balanced after failures */
    assert_int_equal(f->ctx.depth, 0);
    check_ok(f, "${lc:OK}", "ok");
}

static void test_expand_bool(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *in;
        bool want;
    } cases[] = {
        {"", false},
        {"0", false},
        {"no", false},
        {"FALSE", false},
        {" false ", false},
        {"1", true},
        {"yes", true},
        {"True", true},
        {"${if eq{a}{a}}", true},
        {"${if eq{a}{b}}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool r = !cases[i].want;
        const char *err = NULL;
        assert_int_equal(expand_bool(&f->ctx, cases[i].in, &r, &err), EXPAND_OK);
        assert_int_equal(r, cases[i].want);
    }
    bool r;
    const char *err = NULL;
    assert_int_equal(expand_bool(&f->ctx, "maybe", &r, &err), EXPAND_FAIL);
    assert_non_null(strstr(err, "maybe"));
    assert_int_equal(expand_bool(&f->ctx, "$nosuch", &r, &err), EXPAND_FAIL);
    assert_int_equal(expand_bool(&f->ctx, "${if eq{a}{b}{y}fail}", &r, &err), EXPAND_FORCED_FAIL);
}

static void test_check_syntax(void **state)
{
    struct fixture *f = *state;
    static const char *const good[] = {
        "plain",
        "$anything_at_all ${unknown_var_is_fine}",
        "${if and{ {bool{$proxy_session}} {eq{$proxy_host_address}{}} } }",
        "${if eq{$proxy_host_address}{$sender_host_address}{false}{true}}",
        "${lookup{$sender_helo_name}nwildlsearch{/etc/mail/multipleip_sites}{$value}{}}",
        "${if def:acl_m_dcc_override_client_ip}",
        "${quote_pgsql:${lc:$sender_address_local_part}}",
        "${if match{$x}{\\N^\\d{3}\\N}{$1}fail}",
        "${sg{$a}{b}{c}} ${tr{a}{b}{c}} ${extract{1}{:}{$x}} ${substr_1_2:$y}",
        "${if or{{eq{a}{b}}{!isip{$x}}}{yes}{no}}",
        "${extract{$n}{:}{a:b}{y}{n}}",
        "${extract{$key}{a=1 b=2}{y}{n}}",
        "${extract{$key}{a=1 b=2}}",
    };
    static const struct {
        const char *in;
        const char *err;
    } bad[] = {
        {"${iff eq{a}{b}}", "unknown expansion item \"iff\""},
        {"${if eqq{a}{b}}", "unknown condition \"eqq\""},
        {"${if eq{a}{b}", "missing"},
        {"${lc:x", "missing \"}\""},
        {"${frobnicate:x}", "unknown expansion operator \"frobnicate\""},
        {"${lookup{x}nosuch{/f}}", "unknown lookup type"},
        {"${if def:}", "missing variable name"},
        {"$", "not followed by"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *err = NULL;
        if (!expand_check_syntax(good[i], &f->arena, &err)) {
            print_error("syntax check failed for %s: %s\n", good[i], err);
            fail();
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *err = NULL;
        assert_false(expand_check_syntax(bad[i].in, &f->arena, &err));
        assert_non_null(err);
        if (!strstr(err, bad[i].err)) {
            print_error("%s: error \"%s\" lacks \"%s\"\n", bad[i].in, err, bad[i].err);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_and_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_vars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_if_conditions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_condition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcre2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regex_precompiled, setup, teardown),
        cmocka_unit_test(test_regex_threads),
        cmocka_unit_test_setup_teardown(test_if_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_expressions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_stays_in_its_argument, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wild_and_ip_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_helpers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expand_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_syntax, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
