/*
 * var_registry.c - lookup in the expansion variable registry (include/postern/vars.h):
 * binary search over a context's sorted table, then its prefix families, then the tables
 * it chains to.
 *
 * Owns nothing: tables are const data defined by the modules whose state the getters read
 * (src/smtp/session_vars.c, src/deliver/vars.c, src/expand/expand_vars.c). Any thread.
 */
#include "postern/vars.h"

#include <stdlib.h>
#include <string.h>

static int def_compare(const void *key, const void *elem)
{
    return strcmp(key, ((const struct var_def *)elem)->name);
}

static const struct var_def *table_find_one(const struct var_table *t, const char *name)
{
    const struct var_def *d = bsearch(name, t->defs, t->count, sizeof *t->defs, def_compare);
    if (d)
        return d;
    for (size_t i = 0; i < t->prefix_count; i++)
        if (strncmp(name, t->prefixes[i].name, strlen(t->prefixes[i].name)) == 0)
            return &t->prefixes[i];
    return NULL;
}

const struct var_def *var_table_find(const struct var_table *t, const char *name)
{
    for (; t; t = t->next) {
        const struct var_def *d = table_find_one(t, name);
        if (d)
            return d;
    }
    return NULL;
}

const char *var_table_get(const struct var_table *t, struct expand_ctx *ctx, const char *name)
{
    const struct var_def *d = var_table_find(t, name);
    return d ? d->get(ctx, name) : NULL;
}

bool var_table_check(const struct var_table *t, const char **why)
{
    for (size_t i = 0; i < t->count; i++) {
        if (!t->defs[i].get) {
            *why = t->defs[i].name;
            return false;
        }
        if (i && strcmp(t->defs[i - 1].name, t->defs[i].name) >= 0) {
            *why = t->defs[i].name; /* out of order or duplicated */
            return false;
        }
    }
    for (size_t i = 0; i < t->prefix_count; i++) {
        if (!t->prefixes[i].get || !t->prefixes[i].name[0]) {
            *why = "a prefix family without a getter or a prefix";
            return false;
        }
    }
    return true;
}

const char *var_get_empty(struct expand_ctx *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return "";
}

const char *var_lifetime_name(enum var_lifetime lifetime)
{
    static const char *const names[] = {
        [VAR_SNAPSHOT] = "snapshot", [VAR_CONNECTION] = "connection", [VAR_MESSAGE] = "message",
        [VAR_COMMAND] = "command",   [VAR_DELIVERY] = "delivery",
    };
    return (unsigned)lifetime < VAR_TABLE_SIZE(names) ? names[lifetime] : "?";
}
