/*
 * snapshot.h - the current configuration as an RCU-published, reference-counted
 * snapshot.
 *
 * A struct snapshot is what config_load() builds: the struct config (its first member),
 * the reference count and the cleanup hooks of resources that are not arena memory
 * (compiled regexes, SSL_CTX, connection pools), all allocated in the config's arena.
 * Callers see only the const struct config *; snapshot_of() finds the snapshot around it.
 *
 * The main thread publishes a new one on startup and on SIGHUP; any thread takes a
 * reference with snapshot_get() (an RCU read-side section covers only the pointer load
 * and the reference increment, so no thread ever blocks inside it) and drops it with
 * snapshot_put(). A session keeps its snapshot for its whole life, so a reload affects
 * new connections only. The last put runs the cleanup hooks and frees the arena
 * (config_free). Threads that call snapshot_get() are registered with liburcu (memb
 * flavour) on first use.
 */
#ifndef POSTERN_SNAPSHOT_H
#define POSTERN_SNAPSHOT_H

#include "postern/config.h"

#include <stddef.h>

struct snapshot_cleanup; /* one hook: fn(arg) and the next one; in the arena (load.c) */

struct snapshot {
    struct config config; /* first member; config_load() returns &snap->config */
    _Atomic long refs;    /* the published reference + one per holder; 0 until published.
                             Changed only by src/daemon/snapshot.c */
    struct snapshot_cleanup *cleanups; /* newest first; added by config_add_cleanup() while
                                          the compilers build, run once by config_free() */
};

/* The snapshot that contains cfg (every config comes from config_load()). */
static inline struct snapshot *snapshot_of(const struct config *cfg)
{
    return (struct snapshot *)((char *)(struct config *)cfg - offsetof(struct snapshot, config));
}

void snapshot_publish(struct config *cfg); /* takes ownership; the old one is put */
const struct config *snapshot_get(void);   /* NULL before the first publish */
void snapshot_put(const struct config *cfg);
void snapshot_thread_done(void); /* unregister the calling thread from RCU */
void snapshot_shutdown(void);    /* drop the published one (at exit) */

#endif
