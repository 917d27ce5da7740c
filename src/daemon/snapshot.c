/*
 * snapshot.c - RCU publication and reference counting of the configuration snapshot
 * (see include/postern/snapshot.h). liburcu's memb flavour: read-side sections are
 * cheap and quiescence is implicit outside them, so threads that block in DNS, Redis
 * or fsync never hold up a grace period. The count lives in struct snapshot (around the
 * config); the last put hands the snapshot to config_free(), which runs its cleanup hooks.
 * Called from any thread; publish/shutdown from the main thread only.
 */
#include "postern/snapshot.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <urcu/urcu-memb.h>

/* RCU-protected. Published and read with C11 atomics (exchange / acquire load): the same
 * ordering as rcu_xchg_pointer/rcu_dereference, but visible to ThreadSanitizer, which
 * does not see inside liburcu. RCU still decides when the old one may be released. */
static _Atomic(struct config *) current_config;
static _Thread_local bool rcu_registered;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key; /* its destructor unregisters a thread that forgot to */

static void unregister_at_exit(void *unused)
{
    (void)unused;
    snapshot_thread_done();
}

static void exit_key_create(void)
{
    pthread_key_create(&exit_key, unregister_at_exit);
}

/* Threads register on first use; a thread that exits without snapshot_thread_done() is
 * unregistered by the key destructor, so a grace period never waits on (or writes to)
 * the stack of a thread that is gone. */
static void register_thread(void)
{
    if (!rcu_registered) {
        urcu_memb_register_thread();
        rcu_registered = true;
        pthread_once(&exit_key_once, exit_key_create);
        pthread_setspecific(exit_key, (void *)1);
    }
}

static _Atomic long *refs_of(const struct config *cfg)
{
    return &snapshot_of(cfg)->refs;
}

void snapshot_put(const struct config *cfg)
{
    if (!cfg)
        return;
    if (atomic_fetch_sub_explicit(refs_of(cfg), 1, memory_order_acq_rel) == 1)
        config_free((struct config *)cfg);
}

const struct config *snapshot_get(void)
{
    register_thread();
    urcu_memb_read_lock();
    struct config *cfg = atomic_load_explicit(&current_config, memory_order_acquire);
    if (cfg) {
        _Atomic long *refs = refs_of(cfg);
        long r = atomic_load_explicit(refs, memory_order_relaxed);
        /* increment unless zero: a snapshot whose last reference is gone stays gone */
        while (r > 0 && !atomic_compare_exchange_weak_explicit(
                            refs, &r, r + 1, memory_order_acq_rel, memory_order_relaxed))
            ;
        if (r == 0)
            cfg = NULL;
    }
    urcu_memb_read_unlock();
    return cfg;
}

void snapshot_publish(struct config *cfg)
{
    register_thread();
    atomic_store_explicit(refs_of(cfg), 1, memory_order_relaxed); /* the published reference */
    struct config *old = atomic_exchange_explicit(&current_config, cfg, memory_order_acq_rel);
    if (old) {
        urcu_memb_synchronize_rcu(); /* no reader can still be incrementing old's count */
        snapshot_put(old);
    }
}

void snapshot_shutdown(void)
{
    register_thread();
    struct config *old = atomic_exchange_explicit(&current_config, NULL, memory_order_acq_rel);
    if (old) {
        urcu_memb_synchronize_rcu();
        snapshot_put(old);
    }
}

void snapshot_thread_done(void)
{
    if (rcu_registered) {
        urcu_memb_unregister_thread();
        rcu_registered = false;
        pthread_setspecific(exit_key, NULL);
    }
}
