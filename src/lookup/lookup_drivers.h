/*
 * lookup_drivers.h - the private interface between the lookup registry (lookup.c) and the
 * drivers, one file per lookup type (lsearch.c now; redis.c, pgsql.c, mysql.c later).
 * To add a lookup type: write its function here and in its own file, then add one row to
 * the table in lookup.c.
 */
#ifndef POSTERN_LOOKUP_DRIVERS_H
#define POSTERN_LOOKUP_DRIVERS_H

#include "postern/lookup.h"

/*
 * A lookup driver. Single-key drivers get `key` and the file (or other source) in
 * `source`; query-style drivers get key NULL and the query in `source`. On FOUND *result
 * is set (ctx->arena); on DEFER and ERROR *err says why (ctx->arena).
 */
typedef enum lookup_status (*lookup_driver_fn)(struct expand_ctx *ctx, const char *key,
                                               const char *source, const char **result,
                                               const char **err);

struct lookup_driver {
    const char *name;
    bool query_style;
    lookup_driver_fn run;
};

/* lsearch.c */
enum lookup_status lookup_lsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                  const char **result, const char **err);
enum lookup_status lookup_wildlsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                      const char **result, const char **err);
enum lookup_status lookup_nwildlsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                       const char **result, const char **err);
enum lookup_status lookup_iplsearch(struct expand_ctx *ctx, const char *key, const char *file,
                                    const char **result, const char **err);

#endif
