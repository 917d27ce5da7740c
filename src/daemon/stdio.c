/*
 * stdio.c - one SMTP session on standard input/output: -bs (a real session from a
 * local process: messages are spooled and then delivered in this process) and
 * -bh IP[.port] (a test session as if from that host: ACL decisions are traced with
 * ">>> " lines and nothing is queued).
 *
 * Single-threaded except for the spool committer; an ACL delay sleeps here, since this
 * process serves only this session. Input is fed to the session line by
 * line, so synchronization checks never fire on piped input (documented in docs/config.md).
 */
#include "daemon.h"

#include "postern/deliver.h"
#include "postern/log.h"
#include "postern/session.h"
#include "postern/snapshot.h"
#include "postern/spool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct stdio_transport {
    pthread_mutex_t lock;
    pthread_cond_t done;
    bool committed;
    struct buf accepted_ids; /* space-separated ids to deliver at the end (-bs) */
};

static bool stdio_input_pending(struct session *s)
{
    return false;
}

static void stdio_commit_finished(struct session *s)
{
    struct stdio_transport *t = s->transport;
    pthread_mutex_lock(&t->lock);
    t->committed = true;
    pthread_cond_signal(&t->done);
    pthread_mutex_unlock(&t->lock);
}

static void stdio_message_accepted(struct session *s, const char *id)
{
    struct stdio_transport *t = s->transport;
    buf_printf(&t->accepted_ids, "%s ", id);
}

static const struct session_ops stdio_ops = {
    .input_pending = stdio_input_pending,
    .commit_finished = stdio_commit_finished,
    .message_accepted = stdio_message_accepted,
};

static void flush_out(struct session *s)
{
    if (s->out.len) {
        fwrite(s->out.data, 1, s->out.len, stdout);
        fflush(stdout);
        buf_clear(&s->out);
    }
}

static enum session_action wait_commit(struct session *s, struct stdio_transport *t)
{
    pthread_mutex_lock(&t->lock);
    while (!t->committed)
        pthread_cond_wait(&t->done, &t->lock);
    t->committed = false;
    pthread_mutex_unlock(&t->lock);
    return session_commit_resume(s);
}

/* An ACL's "delay =": this process is the session's own (as in Exim), so it sleeps, after
 * sending the replies before the delay. (-bh never gets here: it only traces delays.) */
static enum session_action stdio_delay(struct session *s, enum session_action then)
{
    fwrite(s->out.data, 1, s->delay_hold, stdout);
    fflush(stdout);
    buf_consume(&s->out, s->delay_hold);
    s->delay_hold = 0;
    for (int64_t left; (left = s->delay_until_ms - time_mono_ms()) > 0;) {
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return session_delay_done(s, then);
}

/* Carry the session on through delays and commits until it waits for input or closes. */
static enum session_action stdio_settle(struct session *s, struct stdio_transport *t,
                                        enum session_action a)
{
    for (;;) {
        if (s->delay_until_ms) {
            a = stdio_delay(s, a);
            if (a == SESSION_CONTINUE)
                a = session_process(s);
            continue;
        }
        if (a != SESSION_WAIT_COMMIT)
            return a;
        flush_out(s);
        a = session_commit_start(s) ? wait_commit(s, t) : session_process(s);
    }
}

/* "1.2.3.4" or "1.2.3.4.25" / "::1.25": split a trailing port as Exim's -bh does. */
static int split_host(const char *host, char *ip, size_t iplen)
{
    strlcpy_p(ip, host, iplen);
    return ip_split_port(ip);
}

/* cfg is a referenced snapshot; it is released when the session ends. */
int stdio_session_run(const struct config *cfg, const char *host, bool test_mode)
{
    struct stdio_transport t = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                .done = PTHREAD_COND_INITIALIZER};
    buf_init(&t.accepted_ids);
    char ip[64] = "";
    int port = 0;
    if (host)
        port = split_host(host, ip, sizeof ip);
    struct session *s = session_new(cfg, &stdio_ops, host ? ip : NULL, port, "127.0.0.1", 25);
    s->transport = &t;
    s->test_mode = test_mode;
    enum session_action a = stdio_settle(s, &t, session_start(s));
    flush_out(s);
    char *line = NULL;
    size_t cap = 0;
    while (a != SESSION_CLOSE) {
        ssize_t n = getline(&line, &cap, stdin);
        if (n <= 0) {
            session_lost(s, "end of input");
            break;
        }
        buf_append(&s->in, line, (size_t)n);
        a = stdio_settle(s, &t, session_process(s));
        flush_out(s);
    }
    flush_out(s);
    free(line);
    session_free(s);
    snapshot_put(cfg);

    /* -bs: deliver what was accepted, as Exim's delivery process would. */
    if (!test_mode && t.accepted_ids.len) {
        const struct config *dcfg = snapshot_get();
        char *save = NULL;
        for (char *id = strtok_r(t.accepted_ids.data, " ", &save); id;
             id = strtok_r(NULL, " ", &save))
            deliver_message(dcfg, id);
        snapshot_put(dcfg);
    }
    buf_free(&t.accepted_ids);
    return 0;
}
