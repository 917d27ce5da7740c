/*
 * lookup.c - the lookup registry: one table mapping a lookup type name ("lsearch",
 * "iplsearch", later "redis", "pgsql", "mysql") to whether it is query-style and the
 * driver function that runs it. ${lookup ...} items and "type;data" list items come
 * through lookup_run().
 *
 * The table is constant; any thread may call these functions.
 */
#include "lookup_drivers.h"

#include <string.h>

static const struct lookup_driver lookup_drivers[] = {
    {"lsearch", false, lookup_lsearch},
    {"wildlsearch", false, lookup_wildlsearch},
    {"nwildlsearch", false, lookup_nwildlsearch},
    {"iplsearch", false, lookup_iplsearch},
};

static const struct lookup_driver *lookup_find(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < sizeof lookup_drivers / sizeof lookup_drivers[0]; i++)
        if (strcmp(lookup_drivers[i].name, type) == 0)
            return &lookup_drivers[i];
    return NULL;
}

bool lookup_type_known(const char *type, bool *query_style)
{
    const struct lookup_driver *d = lookup_find(type);
    if (d && query_style)
        *query_style = d->query_style;
    return d != NULL;
}

enum lookup_status lookup_run(struct expand_ctx *ctx, const char *type, const char *key,
                              const char *source, const char **result, const char **err)
{
    const struct lookup_driver *d = lookup_find(type);
    const char *dummy_result = NULL, *dummy_err = NULL;
    if (!result)
        result = &dummy_result;
    if (!err)
        err = &dummy_err;
    if (!d) {
        *err = arena_printf(ctx->arena, "unknown lookup type \"%s\"", type ? type : "");
        return LOOKUP_ERROR;
    }
    if (d->query_style != (key == NULL)) {
        *err = arena_printf(ctx->arena,
                            d->query_style ? "%s is a query-style lookup: no key "
                                             "is taken"
                                           : "%s is a single-key lookup: a key is "
                                             "needed",
                            d->name);
        return LOOKUP_ERROR;
    }
    return d->run(ctx, key, source ? source : "", result, err);
}
