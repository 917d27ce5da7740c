/*
 * expand.h - Exim's string expansion language (the documented subset) and list matching.
 *
 * expand_string() turns "$var ${if ...} ${lookup ...}" text into a plain string.
 * Variables come from the caller through a callback (normally var_table_get() on the
 * context's table in the variable registry, include/postern/vars.h), so the engine holds no
 * global state and any thread may expand with its own context. Results are allocated in
 * ctx->arena (the caller's session or message arena).
 *
 * List matching implements hostlist/domainlist/addresslist/localpartlist semantics:
 * the list is expanded first, split on ':' (or the separator chosen with "<;" / "<\n"
 * etc.), each item may be negated with '!', "+name" refers to a named list, and lookups
 * ("lsearch;/file", "iplsearch;/file", "net24-lsearch;/file") are allowed where Exim
 * allows them. Hosts match by IP, CIDR, "*" (anything), host name wildcards (only when
 * a host name is known) and the empty item "" (matches the "local" case: no host).
 *
 * Status values: OK, or FAIL (syntax/expansion error: err says why), or DEFER (a lookup
 * could not be done now: a Redis or DNS server down; callers must defer, never accept).
 */
#ifndef POSTERN_EXPAND_H
#define POSTERN_EXPAND_H

#include "postern/config.h"
#include "postern/util.h"

#include <stdbool.h>
#include <stdio.h>

/* Nesting bound for ${...}, conditions and lookups (expand_ctx.depth); a lookup that
 * expands more text checks it too. */
#define EXPAND_MAX_DEPTH 48

enum expand_status {
    EXPAND_OK = 0,
    EXPAND_FAIL,        /* error: *err set */
    EXPAND_FORCED_FAIL, /* ${if ...{}fail} or ${lookup ...fail}: caller decides */
    EXPAND_DEFER,       /* temporary failure (lookup server down) */
};

struct expand_ctx;

/*
 * Variable resolver. Return the value of variable `name` (without '$'), "" for a known
 * but empty variable, or NULL when the variable does not exist (an expansion error).
 * The returned string must stay valid for the duration of the expansion (allocate it in
 * ctx->arena if it is computed).
 */
typedef const char *(*expand_var_fn)(struct expand_ctx *ctx, const char *name);

struct expand_ctx {
    struct arena *arena;         /* results and temporaries */
    const struct config *config; /* named lists, lookups' settings; may be NULL in tests */
    expand_var_fn var;           /* may be NULL: only built-in vars resolve */
    void *user;                  /* for the resolver */
    const char *value;           /* $value inside ${lookup ...}{yes}{no}; managed by engine */
    const char *match[10];       /* $0..$9 after a match{}{} condition; managed by engine */
    int depth;                   /* recursion guard, managed by engine */
};

void expand_ctx_init(struct expand_ctx *ctx, struct arena *arena, const struct config *config,
                     expand_var_fn var, void *user);

/* Expand `in` into *out (arena). On FAIL/DEFER, *err (arena) says why. */
enum expand_status expand_string(struct expand_ctx *ctx, const char *in, const char **out,
                                 const char **err);

/*
 * Expand and interpret as a truth value, the way Exim's "condition =" ACL condition does:
 * "" , "0", "no", "false" => false; "1", "yes", "true" => true (case-insensitive),
 * any other result => FAIL with *err naming the value.
 */
enum expand_status expand_bool(struct expand_ctx *ctx, const char *in, bool *result,
                               const char **err);

/*
 * Load-time check of an expandable string, with the expansion parser itself (nothing is
 * resolved, looked up or matched; every branch is parsed):
 *   - syntax: items, operators, conditions, braces;
 *   - every $name and ${name} and def:name is in `vars` (the registry table of the context
 *     the string is expanded in) with a lifetime in `lifetimes`; $value and $0..$9 always;
 *   - every constant regular expression (match{}{}, sg) compiles; with `cfg` it is compiled
 *     into the snapshot's set for use at run time.
 * False with *err (arena) saying why and naming the variable. The caller adds file:line.
 */
#define VAR_LIFETIME_BIT(l) (1u << (l))
struct expand_check {
    const struct var_table *vars; /* NULL: any variable name is accepted */
    unsigned lifetimes;           /* VAR_LIFETIME_BIT mask; 0: any lifetime */
    const char *where;            /* for messages: "an ACL", "router r1", ... (may be NULL) */
    struct config *cfg;           /* may be NULL: regexes only checked, not kept */
};
bool expand_check(const char *in, const struct expand_check *check, struct arena *arena,
                  const char **err);

/* The check of a list (hosts, domains, local_parts, senders, named lists): expand_check of
 * the text, then, when it is constant, every "^regex" item compiled (into cfg's set). */
bool expand_check_list(const char *list, enum conf_list_kind kind, const struct expand_check *check,
                       struct arena *arena, const char **err);

/* Syntax check only (any variable name accepted): expand_check with no table. */
bool expand_check_syntax(const char *in, struct arena *arena, const char **err);

/*
 * Compile a regular expression that is constant in the configuration into the snapshot's
 * set (once; later uses find it there). Load time only, before cfg is published. False
 * with *err (cfg->arena) when the pattern does not compile: a load error.
 */
bool expand_regex_precompile(struct config *cfg, const char *pattern, bool caseless,
                             const char **err);
/* Free cfg's compiled patterns now. config_free() does it through the cleanup hook; tests
 * whose struct config does not come from config_load call it themselves. */
void expand_regex_release_all(struct config *cfg);
/* How many patterns cfg holds compiled (tests, -bV statistics). */
size_t expand_regex_precompiled_count(const struct config *cfg);

/* Built-in variables every context has: $primary_hostname, $tod_log, $tod_full, $version_number,
 * ... */
const char *expand_builtin_var(struct expand_ctx *ctx, const char *name);

/* ---- list matching ---- */
enum match_result {
    MATCH_NO = 0,
    MATCH_YES,
    MATCH_DEFER, /* lookup temporarily failed */
    MATCH_ERROR, /* bad list: *err says why */
};

/* host: ip is the textual address ("" or NULL for local input), name may be NULL. */
enum match_result list_match_host(struct expand_ctx *ctx, const char *list, const char *ip,
                                  const char *name, const char **err);
enum match_result list_match_domain(struct expand_ctx *ctx, const char *list, const char *domain,
                                    const char **err);
enum match_result list_match_localpart(struct expand_ctx *ctx, const char *list,
                                       const char *local_part, const char **err);
/* address: "local@domain"; items may be "*@domain", "local@*", "@domain", a domain list item... */
enum match_result list_match_address(struct expand_ctx *ctx, const char *list, const char *address,
                                     const char **err);

/* One pattern of the domain-list kind, for lookups that key on patterns (wildlsearch):
 * "*suffix", "^regex", "type;data" lookups with `subject` as the key, or a literal.
 * `caseless` applies to literal, suffix and regex comparisons. */
enum match_result list_match_pattern(struct expand_ctx *ctx, const char *pattern,
                                     const char *subject, bool caseless, const char **err);

/* Open a regular file for reading without blocking on FIFOs or devices (lists' "/file"
 * items and file lookups such as lsearch). NULL with *err set (arena) on failure. */
FILE *expand_open_regular_file(struct arena *arena, const char *path, const char *purpose,
                               const char **err);

/*
 * Split an already-expanded Exim list into items (handles the "<x" separator prefix and
 * doubled separators meaning a literal). Returns the number of items; *items is an
 * arena array.
 */
int list_split(struct arena *arena, const char *list, const char ***items);

#endif
