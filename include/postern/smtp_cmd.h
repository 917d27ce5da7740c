/*
 * smtp_cmd.h - the SMTP command-line parser (RFC 5321 commands, RFC 5321 paths, and the
 * MAIL/RCPT parameters of SIZE, BODY, PRDR and friends). Pure: it takes one command
 * line (without CRLF) and fills a struct; strings are allocated in the caller's arena.
 * Unit-tested and fuzzed. Whether a command is allowed now is the session's business.
 */
#ifndef POSTERN_SMTP_CMD_H
#define POSTERN_SMTP_CMD_H

#include "postern/util.h"

#include <stdbool.h>
#include <stdint.h>

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_BDAT,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_HELP,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB_ETRN,
};

enum smtp_body_type { SMTP_BODY_UNSPEC = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

struct smtp_command {
    enum smtp_verb verb;
    const char *verb_text; /* the verb as sent (for logs) */
    const char *arg;       /* everything after the verb and one space, trimmed; "" if none */

    /* MAIL FROM / RCPT TO */
    const char *address;   /* the path without <> exactly as sent (quotes kept), source route
                              removed; "" for the null sender <> */
    const char *local_part; /* unquoted ("\"a b\"@x" gives "a b"), as Exim's $local_part */
    const char *domain;    /* "" when the address has no domain (e.g. <postmaster>) */
    bool has_size;
    int64_t size;          /* SIZE=n */
    enum smtp_body_type body;
    bool prdr;             /* PRDR parameter (value-less) */
    bool smtputf8;
    const char *unknown_param; /* first parameter we do not know (session answers 555) */

    /* BDAT */
    int64_t bdat_size;
    bool bdat_last;
};

enum smtp_parse_status {
    SMTP_PARSE_OK = 0,
    SMTP_PARSE_UNKNOWN_COMMAND, /* 500 */
    SMTP_PARSE_SYNTAX,          /* 501: *reason says why, e.g. "malformed address: ..." */
};

/* Parse one line (no CR/LF; may contain anything else, including NUL - which is a syntax
 * error). */
enum smtp_parse_status smtp_parse_command(struct arena *arena, const char *line, size_t len,
                                          struct smtp_command *cmd, const char **reason);

#endif
