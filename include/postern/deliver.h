/*
 * deliver.h - routing and local delivery: routers (accept, redirect), transports
 * (appendfile in maildir mode; smtp later), the queue runner threads and -q.
 *
 * Routers are tried in config order for each recipient; a router's preconditions
 * (domains, local_parts, senders, condition) decide whether it runs. accept assigns its
 * transport; redirect expands `data` (or reads `file`) into new addresses, ":blackhole:",
 * ":fail: text" (needs allow_fail), ":defer: text" (needs allow_defer), and the new
 * addresses are routed again from the first router. Results are logged Exim-style:
 * "=>" delivered, "**" failed, "==" deferred, then "Completed" when nothing is left.
 *
 * Threads: deliver_start() starts queue_run_max delivery threads that take message ids
 * from an in-memory queue (fed by deliver_enqueue() after each commit, and by periodic
 * queue runs that scan the spool). A message is delivered by one thread at a time (spool
 * lock). Each thread takes a config snapshot reference per message.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include "postern/config.h"
#include "postern/vars.h"

#include <stdbool.h>
#include <stdint.h>

/* Compile cfg->tree.routers/transports into cfg->deliver; errors name file:line. */
bool deliver_compile(struct config *cfg, char *err, size_t errlen);

/* Config source for long-running threads: returns a referenced snapshot; put releases. */
struct deliver_config_source {
    const struct config *(*get)(void);
    void (*put)(const struct config *cfg);
};

/* Start `threads` delivery threads; queue_interval_s > 0 also runs the whole queue
 * periodically (and once at start, so the daemon picks up what is already spooled). */
bool deliver_start(const struct deliver_config_source *src, int threads, int64_t queue_interval_s,
                   char *err, size_t errlen);
void deliver_enqueue(const char *id); /* deliver this message soon (non-blocking) */
void deliver_stop(void);              /* finish current deliveries and join */
/* Periodic spool scans finished since the process started (tests wait on it). */
uint64_t deliver_queue_scans(void);

/* Deliver one message now, in this thread (used by -q and by delivery threads).
 * Returns true when the message was processed (even if some addresses deferred). */
bool deliver_message(const struct config *cfg, const char *id);

/* -q: one queue run in the foreground over every message in the spool. Returns the number of
 * messages processed. */
int deliver_queue_run(const struct config *cfg);

/* -bt style: route one address and describe the outcome (used by verify = recipient).
 * Returns 0 routable, 1 fail (reason set), 2 defer. */
int deliver_route_test(const struct config *cfg, struct arena *arena, const char *address,
                       const char **reason);

/* The delivery variables in the registry (src/deliver/vars.c): ctx->user is the struct
 * deliver_scope of the address being routed or transported. Chains to the built-ins. */
extern const struct var_table deliver_var_table;

#endif
