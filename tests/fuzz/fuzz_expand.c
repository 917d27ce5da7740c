/*
 * fuzz_expand.c - libFuzzer target for the expansion engine and list matching. The input
 * (NUL-terminated, bounded) goes through expand_check_syntax(), expand_string() with a
 * test variable resolver and a config holding named lists, expand_bool(), and the four
 * list matchers with the input as the list; and the load-time checker (expand_check,
 * expand_check_list) with the SMTP session's variables, whose constant regexes are then
 * used by the expansions. Any crash, leak, sanitizer report or an
 * inconsistent result (OK with no output, failure with no reason) is a bug.
 */
#include "postern/config.h"
#include "postern/expand.h"
#include "postern/snapshot.h"
#include "postern/session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *fuzz_var(struct expand_ctx *ctx, const char *name)
{
    static const char *const vars[][2] = {
        {"sender_host_address", "192.0.2.1"},
        {"proxy_host_address", ""},
        {"proxy_session", "yes"},
        {"local_part", "Fred"},
        {"domain", "example.com"},
        {"acl_m_list", "a : b : <; c"},
        {"regex", "^(a+)+$"},
        {"empty", ""},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strcmp(vars[i][0], name) == 0)
            return vars[i][1];
    return strncmp(name, "acl_", 4) == 0 ? "" : NULL;
}

static void fuzz_check(enum expand_status st, const char *out, const char *err)
{
    if (st == EXPAND_OK && !out)
        abort();
    if (st != EXPAND_OK && !err)
        abort();
}

static void fuzz_lists(struct expand_ctx *ctx, const char *input)
{
    const char *err = NULL;
    enum match_result r[5];
    r[0] = list_match_host(ctx, input, "192.0.2.1", "mx.example.com", &err);
    r[1] = list_match_host(ctx, input, NULL, NULL, &err);
    r[2] = list_match_domain(ctx, input, "mx.example.com", &err);
    r[3] = list_match_localpart(ctx, input, "Fred", &err);
    r[4] = list_match_address(ctx, input, "fred@example.com", &err);
    for (int i = 0; i < 5; i++)
        if (r[i] != MATCH_NO && r[i] != MATCH_YES && r[i] != MATCH_DEFER && r[i] != MATCH_ERROR)
            abort();
    const char **items = NULL;
    int n = list_split(ctx->arena, input, &items);
    for (int i = 0; i < n; i++)
        if (!items[i])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *input = malloc(size + 1);
    if (!input)
        return 0;
    memcpy(input, data, size);
    input[size] = '\0';

    struct arena arena;
    arena_init(&arena, 4096);
    struct conf_named_list lists[] = {
        {CONF_LIST_HOST, "relay", "127.0.0.1 : 192.0.2.0/24 : +self", "f", 1, &lists[1]},
        {CONF_LIST_HOST, "self", "+relay", "f", 2, &lists[2]},
        {CONF_LIST_DOMAIN, "local", "@ : *.example.com : !x.example.com", "f", 3, &lists[3]},
        {CONF_LIST_ADDRESS, "bad", "*@+local : ^spam", "f", 4, NULL},
    };
    struct snapshot snap; /* config_add_cleanup needs the snapshot around the config */
    memset(&snap, 0, sizeof snap);
    struct config *cfg = &snap.config;
    cfg->arena = &arena;
    cfg->primary_hostname = "mx.example.com";
    cfg->tree.lists = lists;

    const char *out = NULL, *err = NULL;
    bool ok = expand_check_syntax(input, &arena, &err);
    if (!ok && !err)
        abort();
    /* the load-time checker: variables of an SMTP session, constant regexes compiled into
     * the config's set (used by the expansions below, then released) */
    struct expand_check check = {.vars = &session_var_table, .where = "fuzz", .cfg = cfg};
    err = NULL;
    if (!expand_check(input, &check, &arena, &err) && !err)
        abort();
    if (ok && !expand_check(input, NULL, &arena, &err)) /* the same as the syntax check */
        abort();
    err = NULL;
    if (!expand_check_list(input, CONF_LIST_ADDRESS, &check, &arena, &err) && !err)
        abort();

    struct expand_ctx ctx;
    expand_ctx_init(&ctx, &arena, cfg, fuzz_var, NULL);
    err = NULL;
    enum expand_status st = expand_string(&ctx, input, &out, &err);
    fuzz_check(st, out, err);
    if (ctx.depth != 0)
        abort();
    bool b;
    err = NULL;
    st = expand_bool(&ctx, input, &b, &err);
    if (st != EXPAND_OK && !err)
        abort();
    fuzz_lists(&ctx, input);
    if (ctx.depth != 0)
        abort();

    expand_regex_release_all(cfg);
    arena_reset(&arena);
    free(input);
    return 0;
}
