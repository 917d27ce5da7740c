/*
 * lookup.h - Exim-style lookups: single-key file lookups (lsearch, wildlsearch,
 * nwildlsearch, iplsearch) now, query-style lookups (redis, pgsql, mysql) later, all
 * behind one interface, one file per lookup type in src/lookup/.
 *
 * Thread safety: every function may be called from any worker or delivery thread.
 * File lookups read the file on each call (small files; a cache may come later).
 * Status: FOUND (*result set, arena), NOT_FOUND, DEFER (server down / temporary: the
 * caller must defer), ERROR (*err says why: bad type, unreadable file).
 */
#ifndef POSTERN_LOOKUP_H
#define POSTERN_LOOKUP_H

#include "postern/expand.h"

enum lookup_status { LOOKUP_FOUND, LOOKUP_NOT_FOUND, LOOKUP_DEFER, LOOKUP_ERROR };

/* true if `type` names a lookup we support; *query_style says whether it takes a query
 * (redis{...}) rather than a key and a file. Partial-/star suffixes are not supported. */
bool lookup_type_known(const char *type, bool *query_style);

/* Single-key: key looked up in file. Query-style: key is NULL and `source` is the query. */
enum lookup_status lookup_run(struct expand_ctx *ctx, const char *type, const char *key,
                              const char *source, const char **result, const char **err);

#endif
