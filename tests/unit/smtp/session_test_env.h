/*
 * session_test_env.h - the harness the session unit tests share: a real configuration
 * (the test's text), one socket-free session over it, and feed()/feed_n() that hand it
 * bytes as one read would and carry it through spool commits (the real committer thread)
 * and ACL delays (ended at once, as the delay thread would when its time is up).
 *
 * Include once per test program after defining nothing; call session_env_setup() from
 * the cmocka setup with the test's configuration text. One harness at a time (static).
 */
#ifndef POSTERN_TEST_SESSION_ENV_H
#define POSTERN_TEST_SESSION_ENV_H

#include "postern/config.h"
#include "postern/session.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct harness {
    struct config *cfg;
    struct session *s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool committed; /* the committer handed the session back */
    bool pending;   /* what ops->input_pending answers (synchronization checks) */
    int accepted;   /* messages committed and handed to delivery */
};

static struct harness *session_env_current;

static bool h_input_pending(struct session *s)
{
    (void)s;
    return session_env_current->pending;
}

static void h_commit_finished(struct session *s)
{
    (void)s;
    struct harness *h = session_env_current;
    pthread_mutex_lock(&h->lock);
    h->committed = true;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static void h_accepted(struct session *s, const char *id)
{
    (void)s;
    (void)id;
    session_env_current->accepted++;
}

static const struct session_ops h_ops = {h_input_pending, h_commit_finished, h_accepted};

/* Load config_text and open a session from 192.0.2.1:4321 to 127.0.0.1:25. */
static inline int session_env_setup(void **state, const char *config_text)
{
    static struct harness h;
    memset(&h, 0, sizeof h);
    pthread_mutex_init(&h.lock, NULL);
    pthread_cond_init(&h.cond, NULL);
    char err[1024];
    h.cfg = config_load_text(config_text, "<test>", NULL, err, sizeof err);
    if (!h.cfg)
        fail_msg("config: %s", err);
    h.s = session_new(h.cfg, &h_ops, "192.0.2.1", 4321, "127.0.0.1", 25);
    session_env_current = &h;
    *state = &h;
    return 0;
}

static inline int session_env_teardown(void **state)
{
    struct harness *h = *state;
    session_free(h->s); /* does not free cfg: the session does not own it */
    config_free(h->cfg);
    return 0;
}

/* Carry the session through commits and delays until it waits for input or closes. */
static inline enum session_action session_env_settle(struct harness *h, enum session_action a)
{
    for (;;) {
        if (h->s->delay_until_ms) {
            a = session_delay_done(h->s, a);
            if (a == SESSION_CONTINUE)
                a = session_process(h->s);
        } else if (a == SESSION_WAIT_COMMIT) {
            if (!session_commit_start(h->s)) {
                a = session_process(h->s);
                continue;
            }
            pthread_mutex_lock(&h->lock);
            while (!h->committed)
                pthread_cond_wait(&h->cond, &h->lock);
            h->committed = false;
            pthread_mutex_unlock(&h->lock);
            a = session_commit_resume(h->s);
        } else {
            return a;
        }
    }
}

/* Feed n bytes as one read; return what the session wrote (then cleared). */
static inline const char *feed_n(struct harness *h, const char *bytes, size_t n)
{
    static char out[65536];
    buf_append(&h->s->in, bytes, n);
    session_env_settle(h, session_process(h->s));
    snprintf(out, sizeof out, "%s", h->s->out.data ? h->s->out.data : "");
    buf_clear(&h->s->out);
    return out;
}

static inline const char *feed(struct harness *h, const char *bytes)
{
    return feed_n(h, bytes, strlen(bytes));
}

/* Run the connect ACL; return the banner (or refusal) the session wrote (then cleared). */
static inline const char *session_env_start(struct harness *h)
{
    static char out[4096];
    session_env_settle(h, session_start(h->s));
    snprintf(out, sizeof out, "%s", h->s->out.data ? h->s->out.data : "");
    buf_clear(&h->s->out);
    return out;
}

#endif
