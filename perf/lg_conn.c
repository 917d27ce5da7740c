/*
 * lg_conn.c - the load generator's worker threads and the client side of an SMTP
 * session, as a state machine driven by one epoll set per worker.
 *
 * A worker owns a fixed set of "slots". A load slot claims message tickets from the
 * shared counter, connects, optionally sends a PROXY header, reads the banner, says
 * EHLO and sends up to per_conn messages (MAIL, RCPTs, DATA, body; pipelined in one
 * write when asked and advertised; PRDR when asked and advertised), then QUIT, and
 * starts over with a new connection while tickets remain. An idle slot connects, says
 * EHLO and then holds its connection open until main() releases it.
 *
 * Every command sent pushes the kind of reply it expects onto the connection's queue,
 * so pipelined and lock-step dialogues share one reply handler. (STARTTLS and TLS on
 * connect would add states between connect and banner/EHLO; see perf/README.md.)
 *
 * Owns: the worker's connections, their sockets and buffers, all freed before
 * lg_worker_run() returns. Shared state is touched only through struct lg_shared's
 * atomics. Only the worker thread that owns a connection touches it.
 */
#include "lg.h"

#include "postern/util.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#define LG_INBUF 4096
#define LG_SWEEP_US 250000

enum reply_kind {
    RK_BANNER,
    RK_EHLO,
    RK_MAIL,
    RK_RCPT,
    RK_DATA,
    RK_EOD,
    RK_PRDR_RCPT,
    RK_PRDR_FINAL,
    RK_RSET,
    RK_QUIT,
};

enum conn_state {
    CS_FREE,       /* no socket, no ticket: about to claim one (on the ready list) */
    CS_WAIT,       /* open loop: holds a ticket not yet due (socket may be open) */
    CS_CONNECTING, /* connect() in progress */
    CS_OPEN,       /* in an SMTP dialogue */
    CS_HOLD,       /* idle connection held open */
    CS_DONE,       /* nothing more to do */
};

struct conn {
    int fd;
    bool idle;     /* an idle slot rather than a load slot */
    bool in_ready; /* on the worker's ready list */
    bool held;     /* idle slot reached CS_HOLD at least once */
    enum conn_state state;
    int64_t deadline; /* reply timeout while something is expected */

    uint8_t *expect; /* ring of expected reply kinds */
    unsigned exp_head, exp_count, exp_cap;

    char in[LG_INBUF];
    size_t in_len;
    struct buf out;   /* commands (and the per-message header) not yet written */
    const char *body; /* shared prebuilt body being written after 354 */
    size_t body_len, body_off;
    bool eod_pending; /* the end of data is queued but not yet written */

    bool cap_pipelining, cap_prdr, cap_size;
    bool pipelined, prdr_on; /* for the current message */
    unsigned msgs_on_conn;

    bool has_ticket;
    uint64_t ticket;
    unsigned size_index;
    unsigned rcpt_replies, rcpt_ok;
    bool txn_failed;
    int64_t t_conn, t_ehlo, t_msg, t_mail, t_data, t_eod, due;
    struct conn *wait_next; /* open-loop FIFO */
};

struct worker_ctx {
    struct lg_worker *w;
    const struct lg_config *cfg;
    struct lg_shared *sh;
    struct lg_stats *st;
    int epfd;
    struct conn *conns;
    unsigned nconns; /* load slots first, then idle slots */
    struct conn **ready;
    unsigned nready;
    struct conn *wait_head, *wait_tail;
    unsigned active_load; /* load slots not yet CS_DONE */
    unsigned idle_next;   /* next idle slot to start */
    unsigned idle_setup;  /* idle slots connecting / greeting */
    unsigned idle_open;   /* idle slots holding a connection */
    bool releasing;
    uint64_t rng;
};

static void conn_abort(struct worker_ctx *x, struct conn *c, enum lg_error why);
static void msg_next(struct worker_ctx *x, struct conn *c);

/* ---- small helpers ---- */

static void ready_push(struct worker_ctx *x, struct conn *c)
{
    if (c->in_ready)
        return;
    c->in_ready = true;
    x->ready[x->nready++] = c;
}

static void expect_push(struct worker_ctx *x, struct conn *c, enum reply_kind kind)
{
    if (c->exp_count == c->exp_cap)
        die("loadgen: reply queue overflow");
    c->expect[(c->exp_head + c->exp_count) % c->exp_cap] = (uint8_t)kind;
    c->exp_count++;
    c->deadline = lg_now_us() + (int64_t)(x->cfg->timeout_s * 1e6);
}

static enum reply_kind expect_pop(struct conn *c)
{
    enum reply_kind kind = (enum reply_kind)c->expect[c->exp_head];
    c->exp_head = (c->exp_head + 1) % c->exp_cap;
    c->exp_count--;
    return kind;
}

static void reply_error(struct worker_ctx *x, int code)
{
    if (code >= 0 && code < 1000)
        x->st->reply_errors[code]++;
}

static uint64_t rng_next(struct worker_ctx *x)
{
    x->rng ^= x->rng << 13;
    x->rng ^= x->rng >> 7;
    x->rng ^= x->rng << 17;
    return x->rng;
}

static unsigned pick_size(struct worker_ctx *x)
{
    const struct lg_config *cfg = x->cfg;
    if (cfg->nsizes == 1)
        return 0;
    unsigned r = (unsigned)(rng_next(x) % cfg->weight_total);
    for (unsigned i = 0; i < cfg->nsizes; i++) {
        if (r < cfg->weights[i])
            return i;
        r -= cfg->weights[i];
    }
    return cfg->nsizes - 1;
}

/* Claim the next message ticket; false when all are taken or time is up. */
static bool ticket_claim(struct worker_ctx *x, struct conn *c)
{
    if (lg_now_us() >= x->sh->load_deadline_us)
        return false;
    uint64_t t = atomic_fetch_add(&x->sh->next_ticket, 1);
    if (t >= x->cfg->messages)
        return false;
    c->has_ticket = true;
    c->ticket = t;
    c->due = 0;
    if (x->cfg->rate > 0)
        c->due = x->sh->start_us + (int64_t)((double)t * 1e6 / x->cfg->rate);
    return true;
}

static void ticket_fail(struct worker_ctx *x, struct conn *c)
{
    if (!c->has_ticket)
        return;
    c->has_ticket = false;
    x->st->msgs_failed++;
}

static void wait_push(struct worker_ctx *x, struct conn *c)
{
    c->state = CS_WAIT;
    c->wait_next = NULL;
    if (x->wait_tail)
        x->wait_tail->wait_next = c;
    else
        x->wait_head = c;
    x->wait_tail = c;
}

/* ---- socket I/O ---- */

static void conn_close_fd(struct worker_ctx *x, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(x->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->in_len = 0;
    c->exp_head = c->exp_count = 0;
    buf_clear(&c->out);
    c->body = NULL;
    c->body_len = c->body_off = 0;
    c->eod_pending = false;
}

/* Write what is queued; false if the connection was aborted. */
static bool conn_flush(struct worker_ctx *x, struct conn *c)
{
    while (c->out.len > 0 || c->body_off < c->body_len) {
        struct iovec iov[2];
        int n = 0;
        if (c->out.len > 0)
            iov[n++] = (struct iovec){c->out.data, c->out.len};
        if (c->body_off < c->body_len)
            iov[n++] = (struct iovec){(void *)(c->body + c->body_off), c->body_len - c->body_off};
        ssize_t done = writev(c->fd, iov, n);
        if (done < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return true; /* EPOLLOUT will call again */
            conn_abort(x, c, errno == EPIPE || errno == ECONNRESET ? LG_ERR_CLOSED : LG_ERR_IO);
            return false;
        }
        x->st->bytes_sent += (uint64_t)done;
        size_t from_out = (size_t)done < c->out.len ? (size_t)done : c->out.len;
        buf_consume(&c->out, from_out);
        c->body_off += (size_t)done - from_out;
    }
    if (c->eod_pending) {
        c->eod_pending = false;
        c->t_eod = lg_now_us();
        c->body = NULL;
        c->body_len = c->body_off = 0;
    }
    return true;
}

static void conn_connected(struct worker_ctx *x, struct conn *c)
{
    c->state = CS_OPEN;
    x->st->conns_opened++;
    if (x->cfg->proxy != LG_PROXY_NONE) {
        struct sockaddr_storage src, dst = x->cfg->target;
        lg_cidr_nth(&x->cfg->proxy_src, x->st->conns_opened * x->cfg->threads + x->w->index, &src);
        if (src.ss_family != dst.ss_family) {
            /* the header's destination must share the source's family */
            uint16_t port = ((struct sockaddr_in *)&dst)->sin_port; /* same offset for v6 */
            memset(&dst, 0, sizeof dst);
            if (src.ss_family == AF_INET) {
                struct sockaddr_in *d4 = (struct sockaddr_in *)&dst;
                d4->sin_family = AF_INET;
                d4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                d4->sin_port = port;
            } else {
                struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&dst;
                d6->sin6_family = AF_INET6;
                d6->sin6_addr = in6addr_loopback;
                d6->sin6_port = port;
            }
        }
        unsigned char header[232];
        size_t n = lg_proxy_build(x->cfg->proxy, &src, &dst, header, sizeof header);
        buf_append(&c->out, header, n);
    }
    expect_push(x, c, RK_BANNER);
    conn_flush(x, c);
}

static void conn_connect(struct worker_ctx *x, struct conn *c)
{
    const struct lg_config *cfg = x->cfg;
    c->state = CS_CONNECTING;
    c->t_conn = lg_now_us();
    if (c->t_msg == 0)
        c->t_msg = c->t_conn;
    c->cap_pipelining = c->cap_prdr = c->cap_size = false;
    c->msgs_on_conn = 0;
    int fd = socket(cfg->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_abort(x, c, LG_ERR_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        conn_abort(x, c, LG_ERR_IO);
        return;
    }
    c->deadline = c->t_conn + (int64_t)(cfg->timeout_s * 1e6);
    if (connect(fd, (const struct sockaddr *)&cfg->target, cfg->target_len) == 0) {
        conn_connected(x, c);
    } else if (errno != EINPROGRESS) {
        conn_abort(x, c, LG_ERR_CONNECT);
    }
}

/* ---- slot life cycle ---- */

/* A free load slot: claim a ticket and connect (now, or when it is due). */
static void slot_start(struct worker_ctx *x, struct conn *c)
{
    if (c->idle) {
        conn_connect(x, c);
        return;
    }
    c->t_msg = 0;
    if (!ticket_claim(x, c)) {
        c->state = CS_DONE;
        x->active_load--;
        return;
    }
    if (c->due > 0) {
        c->t_msg = c->due;
        if (c->due > lg_now_us()) {
            wait_push(x, c);
            return;
        }
    }
    conn_connect(x, c);
}

static void idle_start_more(struct worker_ctx *x)
{
    while (x->idle_next < x->nconns && x->idle_setup < x->cfg->max_connecting) {
        struct conn *c = &x->conns[x->idle_next++];
        x->idle_setup++;
        ready_push(x, c);
    }
}

static void idle_settled(struct worker_ctx *x, struct conn *c, bool held)
{
    x->idle_setup--;
    atomic_fetch_add(&x->sh->idle_settled, 1);
    if (held) {
        c->held = true;
        c->state = CS_HOLD;
        x->idle_open++;
        x->st->idle_held++;
    } else {
        c->state = CS_DONE;
    }
    idle_start_more(x);
}

/* The connection is over after QUIT (or the server's close during QUIT). */
static void conn_finish(struct worker_ctx *x, struct conn *c)
{
    conn_close_fd(x, c);
    if (c->idle) {
        if (c->held)
            x->idle_open--;
        c->held = false;
        c->state = CS_DONE;
        return;
    }
    x->st->conns_completed++;
    c->state = CS_FREE;
    ready_push(x, c);
}

static void conn_abort(struct worker_ctx *x, struct conn *c, enum lg_error why)
{
    conn_close_fd(x, c);
    if (c->idle) {
        if (c->held) {
            x->st->errors[LG_ERR_IDLE_LOST]++;
            x->idle_open--;
            c->state = CS_DONE;
        } else {
            if (why != LG_ERR_COUNT)
                x->st->errors[why]++;
            idle_settled(x, c, false);
        }
        return;
    }
    if (why != LG_ERR_COUNT)
        x->st->errors[why]++;
    if (c->state == CS_WAIT) {
        /* the server dropped a connection waiting for its next message: keep the
         * ticket; it reconnects when the message is due */
        return;
    }
    ticket_fail(x, c);
    c->state = CS_FREE;
    ready_push(x, c);
}

/* A 421 or a close where no reply was due: end the connection. */
static void conn_lost(struct worker_ctx *x, struct conn *c, enum lg_error why)
{
    if (c->state == CS_WAIT) {
        conn_close_fd(x, c);
        x->st->errors[why]++;
        return;
    }
    conn_abort(x, c, why);
}

static void conn_quit(struct worker_ctx *x, struct conn *c)
{
    buf_append_str(&c->out, "QUIT\r\n");
    if (x->cfg->quit_nowait) {
        conn_flush(x, c);
        if (c->fd >= 0)
            conn_finish(x, c);
        return;
    }
    expect_push(x, c, RK_QUIT);
}

/* ---- the mail transaction ---- */

static void append_rcpt(struct worker_ctx *x, struct conn *c, unsigned j)
{
    const struct lg_config *cfg = x->cfg;
    const char *mark = strstr(cfg->to_pattern, "{n}");
    if (!mark) {
        buf_printf(&c->out, "RCPT TO:<%s>\r\n", cfg->to_pattern);
        return;
    }
    uint64_t n = (c->ticket * cfg->rcpts + j) % cfg->to_cycle;
    buf_printf(&c->out, "RCPT TO:<%.*s%llu%s>\r\n", (int)(mark - cfg->to_pattern), cfg->to_pattern,
               (unsigned long long)n, mark + 3);
}

static void msg_begin(struct worker_ctx *x, struct conn *c)
{
    const struct lg_config *cfg = x->cfg;
    c->state = CS_OPEN;
    c->t_mail = lg_now_us();
    c->size_index = pick_size(x);
    c->rcpt_replies = c->rcpt_ok = 0;
    c->txn_failed = false;
    c->pipelined = cfg->pipelining && c->cap_pipelining;
    c->prdr_on = cfg->prdr && c->cap_prdr;
    if (cfg->prdr && !c->cap_prdr && c->msgs_on_conn == 0)
        x->st->errors[LG_ERR_NOPRDR]++;
    buf_printf(&c->out, "MAIL FROM:<%s>", cfg->from);
    if (c->cap_size)
        buf_printf(&c->out, " SIZE=%zu", cfg->body_lens[c->size_index]);
    if (c->prdr_on)
        buf_append_str(&c->out, " PRDR");
    buf_append_str(&c->out, "\r\n");
    expect_push(x, c, RK_MAIL);
    if (!c->pipelined)
        return;
    for (unsigned j = 0; j < cfg->rcpts; j++) {
        append_rcpt(x, c, j);
        expect_push(x, c, RK_RCPT);
    }
    buf_append_str(&c->out, "DATA\r\n");
    expect_push(x, c, RK_DATA);
    c->t_data = c->t_mail;
}

static void msg_rset(struct worker_ctx *x, struct conn *c)
{
    ticket_fail(x, c);
    c->msgs_on_conn++;
    buf_append_str(&c->out, "RSET\r\n");
    expect_push(x, c, RK_RSET);
}

static void msg_send_body(struct worker_ctx *x, struct conn *c)
{
    buf_printf(&c->out, "Message-ID: <%llu.%d@%s>\r\n", (unsigned long long)c->ticket,
               (int)getpid(), x->cfg->ehlo);
    c->body = x->cfg->bodies[c->size_index];
    c->body_len = x->cfg->body_lens[c->size_index];
    c->body_off = 0;
    c->eod_pending = true;
    expect_push(x, c, RK_EOD);
}

static void msg_finish(struct worker_ctx *x, struct conn *c, int code)
{
    int64_t now = lg_now_us();
    struct lg_stats *st = x->st;
    lg_hist_record(&st->phase[LG_PHASE_DATA], (uint64_t)(now - c->t_data));
    lg_hist_record(&st->phase[LG_PHASE_EOD], (uint64_t)(now - c->t_eod));
    if (code / 100 == 2) {
        st->msgs_ok++;
        c->has_ticket = false;
        lg_hist_record(&st->phase[LG_PHASE_MESSAGE], (uint64_t)(now - c->t_msg));
    } else {
        reply_error(x, code);
        ticket_fail(x, c);
    }
    st->last_done_us = (uint64_t)now;
    c->msgs_on_conn++;
    msg_next(x, c);
}

/* After a message (or its RSET): the next one on this connection, or QUIT. */
static void msg_next(struct worker_ctx *x, struct conn *c)
{
    if (c->msgs_on_conn >= x->cfg->per_conn || !ticket_claim(x, c)) {
        conn_quit(x, c);
        return;
    }
    int64_t now = lg_now_us();
    c->t_msg = c->due > 0 ? c->due : now;
    if (c->due > now) {
        wait_push(x, c);
        return;
    }
    msg_begin(x, c);
}

static void on_rcpt_reply(struct worker_ctx *x, struct conn *c, int code)
{
    c->rcpt_replies++;
    if (code / 100 == 2) {
        c->rcpt_ok++;
        x->st->rcpts_ok++;
    } else {
        reply_error(x, code);
    }
    if (c->rcpt_replies == x->cfg->rcpts)
        lg_hist_record(&x->st->phase[LG_PHASE_MAIL_RCPT], (uint64_t)(lg_now_us() - c->t_mail));
    if (c->pipelined)
        return;
    if (c->rcpt_replies < x->cfg->rcpts) {
        append_rcpt(x, c, c->rcpt_replies);
        expect_push(x, c, RK_RCPT);
    } else if (c->rcpt_ok > 0) {
        buf_append_str(&c->out, "DATA\r\n");
        expect_push(x, c, RK_DATA);
        c->t_data = lg_now_us();
    } else {
        msg_rset(x, c);
    }
}

static void on_eod_reply(struct worker_ctx *x, struct conn *c, int code, bool prdr_final)
{
    if (!prdr_final && c->prdr_on && code == 353) {
        for (unsigned i = 0; i < c->rcpt_ok; i++)
            expect_push(x, c, RK_PRDR_RCPT);
        expect_push(x, c, RK_PRDR_FINAL);
        return;
    }
    msg_finish(x, c, code);
}

static void on_greeting_reply(struct worker_ctx *x, struct conn *c, enum reply_kind kind, int code)
{
    int64_t now = lg_now_us();
    if (kind == RK_BANNER && code == 220) {
        lg_hist_record(&x->st->phase[LG_PHASE_BANNER], (uint64_t)(now - c->t_conn));
        buf_printf(&c->out, "EHLO %s\r\n", x->cfg->ehlo);
        expect_push(x, c, RK_EHLO);
        c->t_ehlo = now;
        return;
    }
    if (kind == RK_EHLO && code == 250) {
        lg_hist_record(&x->st->phase[LG_PHASE_EHLO], (uint64_t)(now - c->t_ehlo));
        if (c->idle)
            idle_settled(x, c, true);
        else
            msg_begin(x, c);
        return;
    }
    reply_error(x, code);
    if (c->idle) {
        conn_close_fd(x, c);
        idle_settled(x, c, false);
        return;
    }
    ticket_fail(x, c);
    conn_quit(x, c);
}

/* One complete reply (the last line of a possibly multi-line reply). */
static void conn_on_reply(struct worker_ctx *x, struct conn *c, int code)
{
    if (c->exp_count == 0) {
        reply_error(x, code);
        conn_lost(x, c, c->idle && c->held ? LG_ERR_IDLE_LOST : LG_ERR_CLOSED);
        return;
    }
    enum reply_kind kind = expect_pop(c);
    c->deadline = lg_now_us() + (int64_t)(x->cfg->timeout_s * 1e6);
    if (code == 421 && kind != RK_QUIT) {
        reply_error(x, code);
        conn_abort(x, c, LG_ERR_COUNT); /* counted as "421" */
        return;
    }
    switch (kind) {
    case RK_BANNER:
    case RK_EHLO:
        on_greeting_reply(x, c, kind, code);
        break;
    case RK_MAIL:
        if (code / 100 != 2) {
            reply_error(x, code);
            c->txn_failed = true;
        }
        if (!c->pipelined) {
            if (c->txn_failed) {
                msg_rset(x, c);
            } else {
                append_rcpt(x, c, 0);
                expect_push(x, c, RK_RCPT);
            }
        }
        break;
    case RK_RCPT:
        on_rcpt_reply(x, c, code);
        break;
    case RK_DATA:
        if (code == 354) {
            msg_send_body(x, c);
        } else {
            reply_error(x, code);
            msg_rset(x, c);
        }
        break;
    case RK_EOD:
    case RK_PRDR_FINAL:
        on_eod_reply(x, c, code, kind == RK_PRDR_FINAL);
        break;
    case RK_PRDR_RCPT:
        if (code / 100 != 2)
            reply_error(x, code);
        break;
    case RK_RSET:
        if (code != 250)
            reply_error(x, code);
        msg_next(x, c);
        break;
    case RK_QUIT:
        if (code / 100 != 2)
            reply_error(x, code);
        conn_finish(x, c);
        break;
    }
}

/* Note the EHLO keywords we care about from one reply line's text. */
static void conn_note_capability(struct conn *c, const char *text, size_t len)
{
    char word[16];
    size_t n = 0;
    while (n < len && n < sizeof word - 1 && text[n] != ' ' && text[n] != '\r')
        n++;
    memcpy(word, text, n);
    word[n] = '\0';
    if (str_ieq(word, "PIPELINING"))
        c->cap_pipelining = true;
    else if (str_ieq(word, "PRDR"))
        c->cap_prdr = true;
    else if (str_ieq(word, "SIZE"))
        c->cap_size = true;
}

/* Handle the complete lines in c->in; false if the connection went away. */
static bool conn_parse_lines(struct worker_ctx *x, struct conn *c)
{
    size_t start = 0;
    int fd = c->fd;
    while (c->fd == fd) {
        char *nl = memchr(c->in + start, '\n', c->in_len - start);
        if (!nl)
            break;
        char *line = c->in + start;
        size_t len = (size_t)(nl - line);
        start += len + 1;
        if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9' ||
            (len > 3 && line[3] != ' ' && line[3] != '-' && line[3] != '\r')) {
            conn_abort(x, c, LG_ERR_PROTOCOL);
            return false;
        }
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        bool more = len > 3 && line[3] == '-';
        if (c->exp_count > 0 && c->expect[c->exp_head] == RK_EHLO && len > 4)
            conn_note_capability(c, line + 4, len - 4);
        if (!more)
            conn_on_reply(x, c, code);
    }
    if (c->fd != fd)
        return false;
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    return true;
}

static void conn_on_readable(struct worker_ctx *x, struct conn *c)
{
    for (;;) {
        if (c->in_len == sizeof c->in) {
            conn_abort(x, c, LG_ERR_PROTOCOL); /* a reply line longer than 4 KB */
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (!conn_parse_lines(x, c))
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        /* end of stream (or a reset): normal only while waiting for QUIT's reply */
        if (c->exp_count > 0 && c->expect[c->exp_head] == RK_QUIT)
            conn_finish(x, c);
        else
            conn_lost(x, c, c->idle && c->held ? LG_ERR_IDLE_LOST : LG_ERR_CLOSED);
        return;
    }
}

static void conn_on_event(struct worker_ctx *x, struct conn *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            conn_abort(x, c, LG_ERR_CONNECT);
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN)))
            return;
        conn_connected(x, c);
        if (c->fd < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_on_readable(x, c);
    if (c->fd >= 0)
        conn_flush(x, c);
}

/* ---- the worker loop ---- */

static void worker_run_ready(struct worker_ctx *x)
{
    while (x->nready > 0) {
        struct conn *c = x->ready[--x->nready];
        c->in_ready = false;
        if (c->idle)
            conn_connect(x, c);
        else
            slot_start(x, c);
        if (c->fd >= 0)
            conn_flush(x, c);
    }
}

/* Open loop: start the messages whose intended time has come. */
static void worker_run_due(struct worker_ctx *x, int64_t now)
{
    while (x->wait_head && x->wait_head->due <= now) {
        struct conn *c = x->wait_head;
        x->wait_head = c->wait_next;
        if (!x->wait_head)
            x->wait_tail = NULL;
        if (c->fd >= 0) {
            msg_begin(x, c);
            conn_flush(x, c);
        } else {
            conn_connect(x, c);
        }
    }
}

static void worker_sweep_timeouts(struct worker_ctx *x, int64_t now)
{
    for (unsigned i = 0; i < x->nconns; i++) {
        struct conn *c = &x->conns[i];
        if (c->fd < 0 || now <= c->deadline)
            continue;
        if (c->state == CS_CONNECTING || c->exp_count > 0)
            conn_abort(x, c, LG_ERR_TIMEOUT);
    }
}

/* The load phase's time is up: drop every load connection; claimed messages are
 * counted as unfinished. Idle connections stay. */
static void worker_stop_load(struct worker_ctx *x)
{
    for (unsigned i = 0; i < x->w->nslots; i++) {
        struct conn *c = &x->conns[i];
        if (c->has_ticket)
            x->st->msgs_unfinished++;
        c->has_ticket = false;
        conn_close_fd(x, c);
        c->state = CS_DONE;
    }
    unsigned kept = 0; /* idle slots waiting to connect stay on the ready list */
    for (unsigned i = 0; i < x->nready; i++) {
        if (x->ready[i]->idle)
            x->ready[kept++] = x->ready[i];
        else
            x->ready[i]->in_ready = false;
    }
    x->nready = kept;
    x->wait_head = x->wait_tail = NULL;
    x->active_load = 0;
}

static void worker_release_idle(struct worker_ctx *x)
{
    for (unsigned i = 0; i < x->nconns; i++) {
        struct conn *c = &x->conns[i];
        if (!c->idle || c->state != CS_HOLD || c->fd < 0)
            continue;
        conn_quit(x, c);
        if (c->fd >= 0)
            conn_flush(x, c);
    }
}

/* epoll_wait timeout in ms: until the next due message, sweep or deadline. */
static int worker_wait_ms(const struct worker_ctx *x, bool load_started, int64_t now,
                          int64_t next_sweep)
{
    int64_t until = next_sweep;
    if (x->sh->final_deadline_us < until)
        until = x->sh->final_deadline_us;
    if (x->active_load > 0 && x->sh->load_deadline_us < until)
        until = x->sh->load_deadline_us;
    if (x->wait_head && x->wait_head->due < until)
        until = x->wait_head->due;
    if (!load_started && now + 5000 < until)
        until = now + 5000; /* poll for the start signal */
    if (until <= now)
        return 0;
    return (int)((until - now + 999) / 1000);
}

static bool worker_setup(struct worker_ctx *x, struct lg_worker *w)
{
    memset(x, 0, sizeof *x);
    x->w = w;
    x->sh = w->shared;
    x->cfg = w->shared->cfg;
    x->st = &w->stats;
    x->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)w->index + 1) * 0xD1B54A32D192ED03ull;
    x->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (x->epfd < 0) {
        snprintf(w->error, sizeof w->error, "epoll_create1: %s", strerror(errno));
        return false;
    }
    x->nconns = w->nslots + w->nidle;
    x->conns = calloc(x->nconns ? x->nconns : 1, sizeof *x->conns);
    x->ready = calloc(x->nconns ? x->nconns : 1, sizeof *x->ready);
    if (!x->conns || !x->ready)
        die("loadgen: out of memory for %u connections", x->nconns);
    for (unsigned i = 0; i < x->nconns; i++) {
        struct conn *c = &x->conns[i];
        c->fd = -1;
        c->idle = i >= w->nslots;
        c->exp_cap = x->cfg->rcpts + 8;
        c->expect = malloc(c->exp_cap);
        if (!c->expect)
            die("loadgen: out of memory");
        buf_init(&c->out);
    }
    x->active_load = w->nslots;
    x->idle_next = w->nslots;
    return true;
}

static void worker_teardown(struct worker_ctx *x)
{
    for (unsigned i = 0; i < x->nconns; i++) {
        struct conn *c = &x->conns[i];
        if (c->has_ticket)
            x->st->msgs_unfinished++;
        conn_close_fd(x, c);
        buf_free(&c->out);
        free(c->expect);
    }
    free(x->conns);
    free(x->ready);
    if (x->epfd >= 0)
        close(x->epfd);
}

void *lg_worker_run(void *arg)
{
    struct lg_worker *w = arg;
    struct worker_ctx x;
    lg_stats_init(&w->stats);
    if (!worker_setup(&x, w)) {
        atomic_fetch_add(&w->shared->idle_settled, w->nidle);
        atomic_fetch_add(&w->shared->load_done, 1);
        return NULL;
    }
    idle_start_more(&x);
    bool load_started = false, load_reported = false;
    int64_t next_sweep = lg_now_us() + LG_SWEEP_US;
    struct epoll_event events[256];
    for (;;) {
        int64_t now = lg_now_us();
        if (now >= x.sh->final_deadline_us)
            break;
        if (load_started && x.active_load > 0 && now >= x.sh->load_deadline_us)
            worker_stop_load(&x);
        if (!load_started && atomic_load(&x.sh->load_go)) {
            load_started = true;
            for (unsigned i = 0; i < w->nslots; i++)
                ready_push(&x, &x.conns[i]);
        }
        worker_run_ready(&x);
        worker_run_due(&x, now);
        if (load_started && !load_reported && x.active_load == 0) {
            load_reported = true;
            atomic_fetch_add(&x.sh->load_done, 1);
        }
        if (!x.releasing && atomic_load(&x.sh->release_idle)) {
            x.releasing = true;
            worker_release_idle(&x);
        }
        if (load_reported && x.releasing && x.idle_open == 0 && x.idle_setup == 0)
            break;
        int n = epoll_wait(x.epfd, events, 256, worker_wait_ms(&x, load_started, now, next_sweep));
        if (n < 0 && errno != EINTR) {
            snprintf(w->error, sizeof w->error, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            conn_on_event(&x, events[i].data.ptr, events[i].events);
        now = lg_now_us();
        if (now >= next_sweep) {
            worker_sweep_timeouts(&x, now);
            next_sweep = now + LG_SWEEP_US;
        }
    }
    if (!load_reported)
        atomic_fetch_add(&x.sh->load_done, 1);
    worker_teardown(&x);
    return NULL;
}
