/*
 * regex.c - regular expressions for match{}{}, sg{}{}{}, "^regex" list items and
 * wildlsearch keys, with PCRE2 as Exim has them: \d, (?i), look-around, lazy quantifiers,
 * all of Perl's syntax.
 *
 * Cost is bounded whatever the pattern and the subject: a pattern is at most
 * REGEX_MAX_PATTERN bytes with at most REGEX_MAX_PARENS nested groups (the compiled form is
 * further bounded by PCRE2's own size limit), and every match runs under REGEX_MATCH_LIMIT,
 * REGEX_DEPTH_LIMIT and REGEX_HEAP_LIMIT_KB. A match that hits a limit is an error the
 * caller turns into a deferral (a temporary failure), never a hang.
 *
 * Patterns that are constant in the configuration are compiled once per snapshot, at load
 * (expand_regex_precompile, called through the load-time checker), and kept in a set the
 * snapshot owns: cfg->regexes, a sorted array freed by a config_add_cleanup() hook when
 * the snapshot's last reference goes. At run time a pattern is looked up there first;
 * patterns that only exist after expansion are compiled at use with the same limits and
 * freed after it.
 *
 * Threads: precompile runs on the loading thread before the snapshot is published; the
 * set is read-only afterwards, so any thread may match. The compile and match contexts
 * holding the limits are built once (pthread_once) and never change.
 */
#include "expand_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define REGEX_MAX_PATTERN 8192
#define REGEX_MAX_PARENS 64
#define REGEX_MATCH_LIMIT 1000000 /* calls of PCRE2's internal match(): about 10 ms */
#define REGEX_DEPTH_LIMIT 10000   /* backtracking depth */
#define REGEX_HEAP_LIMIT_KB 16384 /* backtracking memory of one match */

/* One compiled pattern of a snapshot. */
struct regex_entry {
    const char *pattern; /* cfg->arena */
    bool caseless;
    pcre2_code *code; /* freed by expand_regex_release_all */
};

/* The snapshot's compiled constant patterns, sorted by (pattern, caseless). Owned by the
 * snapshot (cfg->regexes), freed by the cleanup hook; read-only once published. */
struct expand_regex_set {
    struct regex_entry *entries; /* malloc */
    size_t count, cap;
};

static pthread_once_t contexts_once = PTHREAD_ONCE_INIT;
static pcre2_compile_context *compile_context; /* process lifetime */
static pcre2_match_context *match_context;     /* process lifetime */

static void contexts_create(void)
{
    compile_context = pcre2_compile_context_create(NULL);
    match_context = pcre2_match_context_create(NULL);
    if (!compile_context || !match_context)
        die("out of memory creating PCRE2 contexts");
    pcre2_set_max_pattern_length(compile_context, REGEX_MAX_PATTERN);
    pcre2_set_parens_nest_limit(compile_context, REGEX_MAX_PARENS);
    pcre2_set_match_limit(match_context, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(match_context, REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(match_context, REGEX_HEAP_LIMIT_KB);
}

static const char *pcre2_message(struct arena *arena, int code)
{
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
        return arena_printf(arena, "PCRE2 error %d", code);
    return arena_strdup(arena, (const char *)msg);
}

/* Compile with the limits; NULL with *err (arena) naming the pattern and the reason. */
static pcre2_code *regex_compile(const char *pattern, bool caseless, struct arena *arena,
                                 const char **err)
{
    pthread_once(&contexts_once, contexts_create);
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   caseless ? PCRE2_CASELESS : 0, &code, &offset, compile_context);
    if (!re)
        *err = arena_printf(arena, "regular expression error in \"%.200s\" at offset %zu: %s",
                            pattern, (size_t)offset, pcre2_message(arena, code));
    return re;
}

static int entry_compare(const char *pattern, bool caseless, const struct regex_entry *e)
{
    int c = strcmp(pattern, e->pattern);
    return c ? c : (int)caseless - (int)e->caseless;
}

/* Index of the entry, or where it would go (*found false). */
static size_t set_position(const struct expand_regex_set *set, const char *pattern, bool caseless,
                           bool *found)
{
    size_t lo = 0, hi = set ? set->count : 0;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = entry_compare(pattern, caseless, &set->entries[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void expand_regex_release_all(struct config *cfg)
{
    struct expand_regex_set *set = cfg->regexes;
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        pcre2_code_free(set->entries[i].code);
    free(set->entries);
    free(set);
    cfg->regexes = NULL;
}

/* The snapshot's cleanup hook: arg is the struct config, still valid while hooks run. */
static void regex_set_cleanup(void *arg)
{
    expand_regex_release_all(arg);
}

static struct expand_regex_set *regex_set_of(struct config *cfg)
{
    if (!cfg->regexes) {
        struct expand_regex_set *set = calloc(1, sizeof *set);
        if (!set)
            die("out of memory");
        cfg->regexes = set;
        config_add_cleanup(cfg, regex_set_cleanup, cfg);
    }
    return cfg->regexes;
}

bool expand_regex_precompile(struct config *cfg, const char *pattern, bool caseless,
                             const char **err)
{
    struct expand_regex_set *set = regex_set_of(cfg);
    bool found;
    size_t at = set_position(set, pattern, caseless, &found);
    if (found)
        return true;
    pcre2_code *code = regex_compile(pattern, caseless, cfg->arena, err);
    if (!code)
        return false;
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct regex_entry *e = realloc(set->entries, cap * sizeof *e);
        if (!e)
            die("out of memory");
        set->entries = e;
        set->cap = cap;
    }
    memmove(&set->entries[at + 1], &set->entries[at], (set->count - at) * sizeof *set->entries);
    set->entries[at] = (struct regex_entry){arena_strdup(cfg->arena, pattern), caseless, code};
    set->count++;
    return true;
}

size_t expand_regex_precompiled_count(const struct config *cfg)
{
    return cfg && cfg->regexes ? cfg->regexes->count : 0;
}

bool expand_regex_get(struct expand_ctx *ctx, const char *pattern, bool caseless,
                      struct expand_regex *rx, const char **err)
{
    bool found;
    const struct expand_regex_set *set = ctx->config ? ctx->config->regexes : NULL;
    size_t at = set_position(set, pattern, caseless, &found);
    memset(rx, 0, sizeof *rx);
    if (found) {
        rx->code = set->entries[at].code;
        return true;
    }
    rx->code = regex_compile(pattern, caseless, ctx->arena, err);
    rx->owned = true;
    return rx->code != NULL;
}

void expand_regex_put(struct expand_regex *rx)
{
    if (rx->owned)
        pcre2_code_free(rx->code);
    rx->code = NULL;
}

enum regex_result expand_regex_exec(struct expand_ctx *ctx, const struct expand_regex *rx,
                                    const char *subject, size_t offset, size_t m[20],
                                    const char **err)
{
    pthread_once(&contexts_once, contexts_create);
    pcre2_match_data *md = pcre2_match_data_create(10, NULL);
    if (!md)
        die("out of memory");
    size_t len = strlen(subject);
    int rc = pcre2_match(rx->code, (PCRE2_SPTR)subject, len, offset, 0, md, match_context);
    enum regex_result r = REGEX_NO_MATCH;
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t pairs = pcre2_get_ovector_count(md);
        for (uint32_t i = 0; i < 10; i++) {
            bool set = i < pairs && (rc == 0 || (int)i < rc) && ov[2 * i] != PCRE2_UNSET;
            m[2 * i] = set ? ov[2 * i] : SIZE_MAX;
            m[2 * i + 1] = set ? ov[2 * i + 1] : SIZE_MAX;
        }
        r = REGEX_MATCH;
    } else if (rc != PCRE2_ERROR_NOMATCH) {
        *err = arena_printf(ctx->arena, "regular expression match failed: %s",
                            pcre2_message(ctx->arena, rc));
        r = rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
                    rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_NOMEMORY
                ? REGEX_LIMIT
                : REGEX_BAD;
    }
    pcre2_match_data_free(md);
    return r;
}

void expand_regex_set_groups(struct expand_ctx *ctx, const char *subject, const size_t m[20])
{
    for (int i = 0; i < 10; i++)
        ctx->match[i] = m[2 * i] == SIZE_MAX ? NULL
                                             : arena_strndup(ctx->arena, subject + m[2 * i],
                                                             m[2 * i + 1] - m[2 * i]);
}

enum regex_result expand_regex_match(struct expand_ctx *ctx, const char *pattern, bool caseless,
                                     const char *subject, const char **err)
{
    struct expand_regex rx;
    if (!expand_regex_get(ctx, pattern, caseless, &rx, err))
        return REGEX_BAD;
    size_t m[20];
    enum regex_result r = expand_regex_exec(ctx, &rx, subject, 0, m, err);
    if (r == REGEX_MATCH)
        expand_regex_set_groups(ctx, subject, m);
    expand_regex_put(&rx);
    return r;
}
