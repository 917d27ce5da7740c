/*
 * vars.h - the expansion variable registry: every $variable postern knows, with its
 * lifetime and its getter, in one kind of table that src/smtp, src/deliver and src/expand
 * all use (docs/architecture.md, "Expansion variables", says how to add one).
 *
 * A table is an array of struct var_def sorted by name (checked by var_table_check), looked
 * up by binary search, plus prefix families (acl_c*, acl_m*) matched by prefix when no
 * exact name matches. Tables chain through `next`: a context's own table, then the
 * built-ins every context has (expand_builtin_vars). The engine itself resolves $value
 * and $0..$9 before any table.
 *
 * Tables are const data: any thread may read them. Getters run on the thread expanding,
 * read ctx->user (whatever the context's table documents it to be) and allocate computed
 * values in ctx->arena.
 */
#ifndef POSTERN_VARS_H
#define POSTERN_VARS_H

#include <stdbool.h>
#include <stddef.h>

struct expand_ctx;

/* How long a variable's value stays the same (and which arena it may live in). */
enum var_lifetime {
    VAR_SNAPSHOT,   /* the configuration snapshot (or the process): $primary_hostname */
    VAR_CONNECTION, /* one SMTP connection: $sender_host_address, $acl_c* */
    VAR_MESSAGE,    /* one message, MAIL to end of DATA (or its delivery): $sender_address */
    VAR_COMMAND,    /* one SMTP command: $smtp_command, $local_part in a RCPT ACL */
    VAR_DELIVERY,   /* one address being routed or transported: $local_part, $router_name */
};

/* Return the value ("" when empty or unset); never NULL for a name of the table. */
typedef const char *(*var_get_fn)(struct expand_ctx *ctx, const char *name);

struct var_def {
    const char *name; /* without '$'; for a prefix family, the prefix ("acl_m") */
    enum var_lifetime lifetime;
    var_get_fn get;
};

struct var_table {
    const char *context;        /* "smtp", "delivery", "built-in": for messages */
    const struct var_def *defs; /* sorted by name (strcmp) */
    size_t count;
    const struct var_def *prefixes; /* prefix families, any order */
    size_t prefix_count;
    const struct var_table *next; /* consulted when a name is not here; NULL at the end */
};

#define VAR_TABLE_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The variables every context has ($primary_hostname, $tod_*, $pid, ...). */
extern const struct var_table expand_builtin_vars;
/* A connection being accepted, before any session: $sender_host_address (ctx->user is the
 * peer's address text), then the built-ins. */
extern const struct var_table expand_peer_vars;

/* The definition of `name` in t or the tables it chains to; NULL when none has it. */
const struct var_def *var_table_find(const struct var_table *t, const char *name);

/* Look up and call the getter; NULL when no table in the chain has the name. */
const char *var_table_get(const struct var_table *t, struct expand_ctx *ctx, const char *name);

/* Self-check for tests: sorted, no duplicates, every getter set. False with *why (static
 * or a pointer into the table) naming the first problem. */
bool var_table_check(const struct var_table *t, const char **why);

const char *var_lifetime_name(enum var_lifetime lifetime);

/* The getter of a variable that exists but is always empty in a context (e.g. $tls_cipher
 * until TLS is built, $domain_data before lookups set it). */
const char *var_get_empty(struct expand_ctx *ctx, const char *name);

#endif
