/*
 * session_internal.h - declarations shared by the files of the SMTP session
 * (session.c: commands; session_data.c: DATA and the spool hand-off; session_vars.c:
 * variables and ACL glue). Not for use outside src/smtp/.
 */
#ifndef POSTERN_SESSION_INTERNAL_H
#define POSTERN_SESSION_INTERNAL_H

#include "postern/session.h"

/* Append one reply; `text` may hold several lines separated by '\n' (multi-line reply). */
void session_reply(struct session *s, int code, const char *enhanced, const char *text);
/* Append a raw, already formatted line (CRLF added). */
void session_reply_raw(struct session *s, const char *line);

/* "H=name (helo) [ip]" as in Exim's log lines (arena). */
const char *session_host_id(struct session *s, struct arena *arena);
/* $sender_rcvhost: "name ([ip] helo=x)" etc. */
const char *session_rcvhost(struct session *s, struct arena *arena);
/* smtp, esmtp, local-smtp, local-esmtp */
const char *session_protocol(const struct session *s);

void session_acl_env_init(struct session *s, struct acl_env *env, enum acl_where where);
/* Run an ACL for a stage; returns the result and fills user/log messages (arena). */
enum acl_result session_run_acl(struct session *s, enum acl_where where, const char *acl,
                                const char **user_msg, const char **log_msg);
/* Reply for a non-accept ACL result, using the ACL's message if it has one. */
void session_reply_acl(struct session *s, enum acl_result rc, int deny_code, const char *deny_text,
                       const char *user_msg);

/* -bh trace output (goes to s->out prefixed with ">>> " as Exim's -bh does). */
void session_trace(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* acl_c/acl_m tables (session_vars.c): a set replaces the variable's heap block. */
const char *session_vars_get(const struct session_vars *vars, const char *name);
void session_vars_set(struct session_vars *vars, const char *name, const char *value);
void session_vars_clear(struct session_vars *vars);

/* Abandon the message being received (RSET, rejection, lost connection). */
void session_reset_message(struct session *s);

/* DATA: start receiving, consume data bytes, finish. */
enum session_action session_data_begin(struct session *s);
enum session_action session_data_consume(struct session *s);

#endif
