/*
 * snapshot.h - the current configuration as an RCU-published, reference-counted
 * snapshot.
 *
 * The main thread publishes a new struct config on startup and on SIGHUP; any thread
 * takes a reference with snapshot_get() (an RCU read-side section covers only the
 * pointer load and the reference increment, so no thread ever blocks inside it) and
 * drops it with snapshot_put(). A session keeps its snapshot for its whole life, so a
 * reload affects new connections only. The last put frees the config. Threads that call
 * snapshot_get() are registered with liburcu (memb flavour) on first use.
 */
#ifndef POSTERN_SNAPSHOT_H
#define POSTERN_SNAPSHOT_H

#include "postern/config.h"

void snapshot_publish(struct config *cfg); /* takes ownership; the old one is put */
const struct config *snapshot_get(void);   /* NULL before the first publish */
void snapshot_put(const struct config *cfg);
void snapshot_thread_done(void);           /* unregister the calling thread from RCU */
void snapshot_shutdown(void);              /* drop the published one (at exit) */

#endif
