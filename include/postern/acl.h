/*
 * acl.h - Exim's access control lists: compile the "begin acl" section at config load
 * (an unknown verb, condition or modifier is a startup error naming file:line), and
 * evaluate an ACL for one SMTP stage.
 *
 * The engine is independent of the session: everything it needs from the caller (the
 * variables, verification, logging, controls, headers) comes through struct acl_env
 * callbacks, so it can be unit-tested without sockets and called from any worker.
 * Compiled ACLs live in the config arena and are immutable; evaluation allocates only
 * in env->exp.arena.
 */
#ifndef POSTERN_ACL_H
#define POSTERN_ACL_H

#include "postern/config.h"
#include "postern/expand.h"

enum acl_where {
    ACL_WHERE_CONNECT,
    ACL_WHERE_HELO,
    ACL_WHERE_MAIL,
    ACL_WHERE_RCPT,
    ACL_WHERE_PREDATA,
    ACL_WHERE_DATA,
    ACL_WHERE_DATA_PRDR,
    ACL_WHERE_QUIT,
    ACL_WHERE_NOTQUIT,
    ACL_WHERE_VRFY,
};

enum acl_result {
    ACL_ACCEPT,  /* OK */
    ACL_DENY,    /* FAIL: 5xx */
    ACL_DEFER,   /* 4xx */
    ACL_DROP,    /* 5xx and close the connection */
    ACL_DISCARD, /* accept, but throw the recipient / message away */
    ACL_ERROR,   /* configuration or expansion error: treat as 4xx defer, log to paniclog */
};

/* What a verify= condition asks for. */
enum acl_verify_what { ACL_VERIFY_RECIPIENT, ACL_VERIFY_SENDER, ACL_VERIFY_HELO };

/* Services the caller (SMTP session, -bh tester, unit test) provides. */
struct acl_env {
    struct expand_ctx exp; /* variables come from exp.var; arena = session/message arena */
    enum acl_where where;
    bool authenticated;    /* for the "authenticated" condition: no AUTH yet => false */
    const char *authenticated_id; /* matched by "authenticated = list" */

    /* verify = recipient/sender/helo: return MATCH_YES/NO/DEFER; *reason may be set. */
    enum match_result (*verify)(struct acl_env *env, enum acl_verify_what what,
                                const char **reason);
    /* set acl_c* / acl_m* variables (name without '$'); false if the name is invalid */
    bool (*set_var)(struct acl_env *env, const char *name, const char *value);
    /* logwrite and log_message of warn: which = 'm' mainlog, 'r' rejectlog too,
     * 'p' paniclog (logwrite = :panic: ...). The text is the whole line after the
     * timestamp: warn lines already carry "H=name [ip] Warning: ". */
    void (*log)(struct acl_env *env, char which, const char *text);
    /* add_header: one header line, without the trailing CRLF (continuation lines joined
     * with "\n"); it may start with one of Exim's placement prefixes (see
     * acl_header_place), which the callee reads with acl_header_place() */
    void (*add_header)(struct acl_env *env, const char *header);
    /* control = name[/opts]: false + *err if not valid here */
    bool (*control)(struct acl_env *env, const char *control, const char **err);
    /* optional tracer for -bh: called with one line per decision */
    void (*trace)(struct acl_env *env, const char *line);
    void *user; /* the caller's session */

    /* outputs of acl_check */
    const char *user_message; /* from "message =", for the SMTP reply (may be NULL) */
    const char *log_message;  /* from "log_message =" (may be NULL); on ACL_ERROR or a
                                 DEFER from a lookup: the reason (the caller logs it) */
    int64_t delay_ms;         /* total "delay =" requested; the caller sleeps/defers the reply */
};

/* Compile cfg->tree.acls into cfg->acls. Unknown words => false, err "file:line: ...". */
/* Where add_header puts a line in the message's header section (Exim's placements):
 * before everything, after the first block of Received: lines, after the leading
 * Received:/Resent-* lines (before the first other header), or at the end (the default). */
enum acl_header_place {
    ACL_HEADER_AT_START,       /* ":at_start:" */
    ACL_HEADER_AFTER_RECEIVED, /* ":after_received:" */
    ACL_HEADER_AT_START_RFC,   /* ":at_start_rfc:" */
    ACL_HEADER_AT_END,         /* ":at_end:", and a line without a known prefix */
    ACL_HEADER_PLACES
};
/* The placement prefix of an add_header line, matched without regard to case as Exim
 * does; returns the bytes to skip (the prefix and the blanks after it), 0 when the line
 * has no known prefix (*place is then ACL_HEADER_AT_END). Pure. */
size_t acl_header_place(const char *line, enum acl_header_place *place);

bool acl_compile(struct config *cfg, char *err, size_t errlen);

/*
 * Run ACL `name_or_text` (the value of an acl_smtp_* option: the name of an ACL in
 * "begin acl", or the literal "accept"/"deny") in env. NULL name => the caller's default.
 * (NULL or "" gives Exim's default for an unset option: DENY at RCPT and VRFY, else
 * ACCEPT.) outputs user_message, log_message and delay_ms are reset on entry.
 * The name is expanded first, as Exim does.
 */
enum acl_result acl_check(const struct config *cfg, const char *name_or_text, struct acl_env *env);

const char *acl_result_name(enum acl_result r);

#endif
