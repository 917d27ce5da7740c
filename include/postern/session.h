/*
 * session.h - one SMTP session as a state machine over byte buffers.
 *
 * The session never touches a socket: the transport (src/daemon/worker.c for sockets,
 * src/daemon/stdio.c for -bs/-bh) appends received bytes to s->in, calls
 * session_process(), writes out s->out, and acts on the returned action. This keeps the
 * whole SMTP dialogue testable without sockets.
 *
 * Ownership: a session belongs to exactly one thread at a time (the acceptor until it is
 * handed to the worker pool, then the worker holding its epoll event, or the spool
 * committer while a commit is in flight). cfg is borrowed: the transport holds a snapshot
 * reference for the session's lifetime and drops it after session_free().
 *
 * Lifetimes. Every field below is marked with one of:
 *   [conn]  lives as long as the connection; fixed size or replaced in place (never
 *           accumulates with the number of commands);
 *   [msg]   belongs to the message being received; session_reset_message() (RSET,
 *           MAIL, HELO/EHLO, end of message, rejected MAIL) clears it and frees msg_arena;
 *   [cmd]   belongs to the current command (or DATA transaction) only; cmd_arena is freed
 *           when the next command line starts, and every [cmd] pointer is cleared then.
 * A pointer never points into an arena of shorter lifetime than its own mark. acl_c and
 * acl_m variables and the HELO name are replaced on every `set` / HELO, so they are not
 * in an arena: each is one heap block owned by the session (see struct session_vars).
 * Memory bound: see session_memory() and docs/config.md ("Session memory").
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include "postern/acl.h"
#include "postern/config.h"
#include "postern/smtp_cmd.h"
#include "postern/spool.h"
#include "postern/util.h"
#include "postern/vars.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct session;

enum session_state {
    SESSION_CMD,          /* reading commands */
    SESSION_DATA,         /* reading message data after 354 */
    SESSION_COMMIT_WAIT,  /* message handed to the spool committer */
    SESSION_PROXY_FAILED, /* required PROXY negotiation failed: 503 to all but QUIT */
    SESSION_CLOSING,      /* flush s->out, then close */
};

enum session_action {
    SESSION_CONTINUE,      /* wait for more input (after flushing s->out) */
    SESSION_WAIT_COMMIT,   /* do not read; the committer will call session_commit_done */
    SESSION_CLOSE,         /* flush s->out, then close */
    SESSION_WAIT_DELAY,    /* an ACL said "delay =": send s->out up to delay_hold, wait until
                              delay_until_ms, call session_delay_done, then carry on */
};

/* How the session reaches the world outside its buffers. */
struct session_ops {
    /* true if the client has sent bytes that are not yet in s->in (sync checks) */
    bool (*input_pending)(struct session *s);
    /* the committer finished (called from the committer thread): the transport must get
     * the session processed again by a worker (session_commit_resume). */
    void (*commit_finished)(struct session *s);
    /* a message was committed to the spool (start its delivery); may be NULL */
    void (*message_accepted)(struct session *s, const char *id);
};

struct session_rcpt {
    const char *address;
    const char *local_part;
    const char *domain;
    int prdr_code; /* PRDR per-recipient result code, 0 = not yet */
    const char *prdr_text;
};

/* Variables set with "set acl_c.../acl_m...": one heap block per variable holding its
 * name and value; a new `set` replaces the block, so memory is the sum of the current
 * values, never of the history. */
struct session_var {
    struct session_var *next;
    const char *name;  /* points into this block */
    const char *value; /* points into this block */
    size_t size;       /* bytes of this block */
};

struct session_vars {
    struct session_var *head;
    size_t bytes; /* sum of the blocks' sizes */
};

/* The longest value `set acl_c…`/`set acl_m…` accepts (longer: the ACL fails with an
 * error, 451). Keeps a session's memory bounded however often a client makes an ACL
 * append to a variable. */
#define SESSION_VAR_MAX (64 * 1024)
/* The most bytes of ACL-added header lines one message may carry (more: logged and
 * dropped, the message itself goes on). */
#define SESSION_ADDED_HEADERS_MAX (64 * 1024)

/* The landmarks of a message's header section, found line by line as DATA is stored
 * (session_hdrscan.c, pure): where add_header's placements go. Offsets are in -D, whose
 * first lines are our Received: header. Lifetime [msg]. */
struct session_hdrscan {
    int64_t received_end; /* end of the first block of Received: lines (ours, then any at
                             the top of the client's header) */
    int64_t rfc_end;      /* end of the leading Received:/Resent-* lines: before the first
                             other header line */
    int64_t header_end;   /* end of the header section (before its blank line; the end of
                             the data when there is none) */
    unsigned char stage;  /* which of those the scan is still extending (its enum is
                             private to session_hdrscan.c) */
    unsigned char field;  /* the block the last header field belongs to (its continuation
                             lines go with it) */
    unsigned char line;   /* the block the line being stored belongs to */
};
/* Start after our own Received: header of `received_len` bytes. */
void session_hdrscan_start(struct session_hdrscan *h, int64_t received_len);
/* A line (or the first part of a long one) begins with these bytes, dot-unstuffed and
 * without its line end; n == 0 only for a complete empty line. */
void session_hdrscan_line_begin(struct session_hdrscan *h, const char *p, size_t n);
/* The line just stored ended at offset `at` in -D (after its CRLF). */
void session_hdrscan_line_end(struct session_hdrscan *h, int64_t at);

struct session {
    const struct config *cfg;      /* [conn] borrowed, see above */
    const struct session_ops *ops; /* [conn] */
    void *transport;          /* [conn] owned by the transport layer (worker slot, stdio state) */
    enum session_state state; /* [conn] */

    struct arena conn_arena; /* [conn] set-once connection facts only (client name, PROXY
                                failure reason): it never grows with commands */
    struct arena msg_arena;  /* [msg] sender, recipients, the envelope handed to the spool */
    struct arena cmd_arena;  /* [cmd] the command line, its parse, ACL and expansion
                                temporaries, reply texts */
    struct buf in;           /* [conn] received, not yet consumed (at most one command line
                                plus what the client pipelined; DATA is consumed as it comes) */
    struct buf out;          /* [conn] replies not yet written by the transport */

    /* connection [conn] */
    char client_ip[64]; /* $sender_host_address: the real client (after PROXY) */
    int client_port;
    char local_ip[64]; /* $received_ip_address */
    int local_port;
    const char
        *client_name;    /* $sender_host_name: reverse DNS, NULL if not looked up (conn_arena) */
    bool is_local_input; /* -bs: no host at all */
    bool test_mode;      /* -bh: trace ACLs, queue nothing */

    /* PROXY protocol [conn] */
    bool proxy_session;          /* the peer is in proxy_required_hosts */
    bool proxy_failed;           /* negotiation failed (timeout or malformed header) */
    char proxy_host_address[64]; /* the proxy's own address (the socket peer); "" if failed */
    int proxy_host_port;
    char proxy_target_address[108]; /* destination carried in the header */
    int proxy_target_port;
    const char *proxy_failure_reason; /* conn_arena */

    /* SMTP state [conn] */
    char *helo_name; /* heap, owned: replaced (freed) by the next HELO/EHLO */
    bool esmtp;
    bool pipelining_advertised;
    bool prdr_advertised;
    int unknown_commands;
    bool discarding_line; /* an overlong command line was refused: drop input up to
                             and including the next LF */
    int64_t last_activity_ms;
    const char *smtp_command;   /* [cmd] $smtp_command: the current command line (cmd_arena) */
    const char *notquit_reason; /* [cmd] $smtp_notquit_reason while acl_smtp_notquit runs
                                   (a string constant) */
    struct session_vars acl_c;  /* heap: the connection's acl_c variables */
    bool enforce_sync;          /* smtp_enforce_sync, changeable by control = */
    bool no_pipelining;         /* control = no_pipelining */
    bool queue_only_latched;    /* queue_only_load queued a message of this connection and
                                   queue_only_load_latch holds the rest back too */

    /* the message being received [msg] (pointers into msg_arena unless said otherwise) */
    bool mail_given;
    bool queue_only; /* control = queue_only: this message waits for a queue run (as Exim's
                        queue_only_policy, reset with the message) */
    const char *sender;
    bool prdr_requested;
    struct session_rcpt *rcpts;
    int rcpt_count;
    int rcpt_alloc;
    int rcpt_discarded; /* RCPTs accepted on the wire by "discard" (not in rcpts) */
    int rcpt_current;   /* index for $local_part/$domain during RCPT/PRDR ACLs, -1 none */
    const char *rcpt_pending_address; /* [cmd] during the RCPT/VRFY ACL (cmd_arena) */
    struct session_vars acl_m;        /* heap: the message's acl_m variables; cleared with the
                                         message (end of message, MAIL, RSET, HELO/EHLO) */
    struct buf added_headers[ACL_HEADER_PLACES]; /* heap: add_header lines ("Name: value\r\n"
                                         ...) by placement, in delivery order; at most
                                         SESSION_ADDED_HEADERS_MAX bytes in all; freed with
                                         the message */
    char message_id[SPOOL_ID_LEN + 1];
    struct spool_writer *writer;
    int64_t message_size;           /* bytes received in DATA so far (after unstuffing) */
    int64_t received_header_len;    /* bytes of our Received: header at the start of -D */
    struct session_hdrscan hdrscan; /* where the header section's landmarks are in -D, found
                                       as DATA is stored (for add_header's placements) */
    bool data_too_big;
    bool data_write_failed;
    bool data_line_start; /* next byte starts a line */
    bool data_prev_crlf;  /* the previous line ended with CRLF (end marker rule) */

    /* timing (connection lifetime; written and read by the owner thread only). The
     * transport turns these into the connection's deadline (smtp_receive_timeout per
     * input line, smtp_data_timeout per message) and honours an ACL's delay. */
    int64_t line_wait_since_ms; /* the session began waiting for the input line now due */
    int64_t data_started_ms;    /* 354 was sent (meaningful in SESSION_DATA only) */
    int64_t delay_until_ms;     /* "delay =" pending: hold output from delay_hold until then */
    size_t delay_hold;          /* bytes of s->out that go out before the delay, as in Exim */
    enum acl_where delay_where; /* the ACL that asked for the delay */

    /* commit hand-back [msg] (written by the committer thread, read by a worker) */
    _Atomic int commit_state;         /* 0 none, 1 in flight, 2 done ok, 3 done failed */
    char commit_reason[256];          /* a copy (the committer frees its text after the callback),
                                         written before commit_state is stored with release */
    char prdr_final[256];             /* the reply to send once the commit is done */
    struct buf pending_reply;         /* PRDR lines prepared before the commit */
    struct spool_envelope commit_env; /* prepared at the end of DATA for session_commit_start */
    struct spool_writer *commit_writer;
};

/* Create a session for a connection. ip/port are the socket's peer and local addresses;
 * peer_ip NULL means local input (-bs). cfg must outlive the session. */
struct session *session_new(const struct config *cfg, const struct session_ops *ops,
                            const char *peer_ip, int peer_port, const char *local_ip,
                            int local_port);
void session_free(struct session *s); /* aborts an unfinished message; cfg is not touched */

/* Record the PROXY outcome before session_start (acceptor). */
void session_set_proxy(struct session *s, bool required, bool ok, bool local, const char *src_ip,
                       int src_port, const char *dst_ip, int dst_port, const char *failure_reason);

/* Run the connect ACL and produce the banner (or the refusal). */
enum session_action session_start(struct session *s);
/* Consume as much of s->in as possible. */
enum session_action session_process(struct session *s);
/* After SESSION_WAIT_COMMIT, once the transport has finished with the session (replies
 * flushed): hand the message to the spool committer. From then on the session belongs to
 * the committer until ops->commit_finished. Returns false if the commit could not even be
 * started: a 451 is then in s->out and the session carries on (call session_process). */
bool session_commit_start(struct session *s);
/* After commit_finished: produce the post-DATA reply and carry on with queued input. */
enum session_action session_commit_resume(struct session *s);
/* After SESSION_WAIT_DELAY (or any action returned while delay_until_ms is set), once the
 * delay is over or the client closed: clears the delay and restarts the input clock. A
 * delay in the connect ACL is where early talkers are caught: if the client spoke during
 * it (and smtp_enforce_sync is on), the held banner becomes a 554 and the session closes.
 * Returns the action to continue with (the caller's own, or SESSION_CLOSE). */
enum session_action session_delay_done(struct session *s, enum session_action then);
/* Timeouts and shutdown: produce a 421 and close. */
enum session_action session_timeout(struct session *s);
enum session_action session_shutdown_notice(struct session *s);
/* The client went away (EOF or error) in the middle of something. */
void session_lost(struct session *s, const char *why);

/* Bytes of heap the session holds (arenas, buffers, variables, HELO name): the
 * accounting behind the bound stated in docs/config.md; exposed for tests. */
size_t session_memory(const struct session *s);

/* Expansion variables of a session (used by its ACL env; exposed for tests). */
const char *session_var_lookup(struct expand_ctx *ctx, const char *name);
/* The SMTP session's variables in the registry (include/postern/vars.h); ctx->user is the
 * struct session. Chains to the built-ins. */
extern const struct var_table session_var_table;

#endif
