/*
 * cmd.c - the SMTP command-line parser: one line (without CRLF) in, a struct smtp_command
 * out (RFC 5321 section 4.1 commands and paths, RFC 1870 SIZE, RFC 6152 BODY, RFC 3030
 * BDAT, PRDR, RFC 6531 SMTPUTF8). Whether a command is allowed in the current state is
 * the session's business, not ours.
 *
 * Pure: no I/O, no globals. Every string it returns (in the struct and in *reason) is
 * either a string literal or allocated in the caller's arena, so it lives as long as that
 * arena. Any thread may call it with its own arena.
 *
 * Decisions where RFC 5321 and practice differ:
 *  - The line is trimmed of spaces and tabs at both ends; the verb ends at the first space
 *    or tab and is matched case-insensitively. Any byte below 0x20 other than TAB, or
 *    0x7F, anywhere in the line is a syntax error (the session answers 501); bytes of
 *    0x80 and above pass (SMTPUTF8 addresses, HELO names).
 *  - DATA, RSET, QUIT and STARTTLS take no argument: one is a syntax error, as their
 *    grammar in RFC 5321 / RFC 3207 has none. HELO, EHLO, AUTH and ETRN require one.
 *    NOOP, HELP, VRFY and EXPN take anything. The HELO/EHLO argument is not validated
 *    here: what counts as acceptable is configuration (the session decides).
 *  - MAIL FROM: / RCPT TO: keywords are case-insensitive; spaces after the colon are
 *    tolerated ("MAIL FROM: <a@b>"), as Exim does, and so is a bare address without
 *    angle brackets. "<>" is the null sender for MAIL and a syntax error for RCPT. A
 *    source route ("<@a,@b:user@dom>") is validated and removed. An address without a
 *    domain (RCPT TO:<postmaster>) parses with domain ""; whether it is acceptable is the
 *    session's call.
 *  - Addresses are strict RFC 5321, checked by address_split() (src/util/address.c):
 *    dot-string or quoted-string local part of at most 64 bytes; domain of letters,
 *    digits, '-', '_' and UTF-8 bytes in dot-separated labels of at most 63, or an [IPv4] /
 *    [IPv6:...] literal, at most 255 bytes; the path between the brackets at most 254, so
 *    256 with them. `address` is kept exactly as sent; `local_part` is unquoted
 *    ("\"a b\"@x" gives "a b"), as Exim's $local_part.
 *  - Parameters are KEY[=VALUE] separated by spaces. For MAIL: SIZE=digits (overflow is a
 *    syntax error), BODY=7BIT|8BITMIME|BINARYMIME, PRDR and SMTPUTF8 without values; a
 *    known parameter given twice is a syntax error. Any other keyword (and every RCPT
 *    parameter) is not an error here: the first is kept in unknown_param as sent, for the
 *    session to answer 555.
 */
#include "postern/smtp_cmd.h"

#include "postern/address.h"

#include <string.h>

#define REASON_CONTROL "NUL or control character in command"
#define REASON_TOO_LONG "address too long"

enum arg_rule {
    ARG_ANY,      /* anything, including nothing */
    ARG_NONE,     /* nothing */
    ARG_REQUIRED, /* something; `missing` says what */
    ARG_SPECIAL,  /* MAIL, RCPT, BDAT: parsed by their own functions */
};

struct verb_info {
    const char *name;
    enum smtp_verb verb;
    enum arg_rule rule;
    const char *missing; /* reason when ARG_REQUIRED and absent */
};

static const struct verb_info verb_table[] = {
    {"HELO", SMTP_VERB_HELO, ARG_REQUIRED, "HELO requires domain or address"},
    {"EHLO", SMTP_VERB_EHLO, ARG_REQUIRED, "EHLO requires domain or address"},
    {"MAIL", SMTP_VERB_MAIL, ARG_SPECIAL, NULL},
    {"RCPT", SMTP_VERB_RCPT, ARG_SPECIAL, NULL},
    {"DATA", SMTP_VERB_DATA, ARG_NONE, NULL},
    {"BDAT", SMTP_VERB_BDAT, ARG_SPECIAL, NULL},
    {"RSET", SMTP_VERB_RSET, ARG_NONE, NULL},
    {"NOOP", SMTP_VERB_NOOP, ARG_ANY, NULL},
    {"QUIT", SMTP_VERB_QUIT, ARG_NONE, NULL},
    {"VRFY", SMTP_VERB_VRFY, ARG_ANY, NULL},
    {"EXPN", SMTP_VERB_EXPN, ARG_ANY, NULL},
    {"HELP", SMTP_VERB_HELP, ARG_ANY, NULL},
    {"STARTTLS", SMTP_VERB_STARTTLS, ARG_NONE, NULL},
    {"AUTH", SMTP_VERB_AUTH, ARG_REQUIRED, "AUTH requires a mechanism"},
    {"ETRN", SMTP_VERB_ETRN, ARG_REQUIRED, "ETRN requires an argument"},
};

/* ---- character classes (ASCII only: never the locale's) ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_utf8_byte(char c)
{
    return (unsigned char)c >= 0x80;
}

/* ---- paths: "<...>" or a bare address ---- */

/* Validates and skips a source route "@a,@b:" at the start of `path`; sets *mailbox. */
static bool path_strip_route(struct arena *arena, const char *path, const char **mailbox,
                             const char **reason)
{
    const char *colon = path;
    int depth = 0; /* a route domain may be an address literal holding ':' */
    for (; *colon && (*colon != ':' || depth > 0); colon++)
        depth += *colon == '[' ? 1 : *colon == ']' ? -1 : 0;
    if (!*colon) {
        *reason = "malformed address: source route without ':'";
        return false;
    }
    const char *p = path;
    while (p < colon) {
        const char *comma = memchr(p, ',', (size_t)(colon - p));
        const char *stop = comma ? comma : colon;
        if (*p != '@' || stop == p + 1) {
            *reason = "malformed address: invalid source route";
            return false;
        }
        char *dom = arena_strndup(arena, p + 1, (size_t)(stop - p - 1));
        if (!address_check_domain(dom, reason))
            return false;
        p = stop + (comma ? 1 : 0);
        if (comma && p == colon) {
            *reason = "malformed address: invalid source route";
            return false;
        }
    }
    *mailbox = colon + 1;
    return true;
}

/* Finds the end of the path starting at s: the '>' closing s[0] == '<', or for a bare
 * address the first blank; quoted strings are skipped. Returns NULL on imbalance. */
static const char *path_find_end(const char *s, bool bracketed, const char **reason)
{
    bool quoted = false;
    const char *p = bracketed ? s + 1 : s;
    for (; *p; p++) {
        if (quoted) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = false;
            continue;
        }
        if (*p == '"')
            quoted = true;
        else if (*p == '>' && bracketed)
            return p;
        else if (*p == '<' || *p == '>')
            break;
        else if (is_blank(*p) && !bracketed)
            return p;
    }
    if (quoted) {
        *reason = "malformed address: unterminated quoted string";
        return NULL;
    }
    if (!bracketed && !*p)
        return p;
    *reason = "malformed address: unbalanced angle brackets";
    return NULL;
}

/* Parses the path at s (after "FROM:"/"TO:" and any blanks) into cmd; *rest is set to
 * what follows it (parameters). */
static bool path_parse(struct arena *arena, const char *s, bool is_mail, struct smtp_command *cmd,
                       const char **rest, const char **reason)
{
    if (!*s) {
        *reason =
            is_mail ? "MAIL must have an address operand" : "RCPT must have an address operand";
        return false;
    }
    bool bracketed = *s == '<';
    const char *end = path_find_end(s, bracketed, reason);
    if (!end)
        return false;
    const char *inner = bracketed ? s + 1 : s;
    *rest = bracketed ? end + 1 : end;
    if (**rest && !is_blank(**rest)) {
        *reason = "malformed address: junk after the closing angle bracket";
        return false;
    }
    if ((size_t)(end - inner) > ADDRESS_PATH_MAX) {
        *reason = REASON_TOO_LONG;
        return false;
    }
    const char *path = arena_strndup(arena, inner, (size_t)(end - inner));
    if (!*path) {
        if (!is_mail) {
            *reason = "malformed address: empty recipient";
            return false;
        }
        return true; /* null sender: address, local_part, domain stay "" */
    }
    const char *mailbox = path;
    if (*path == '@' && !path_strip_route(arena, path, &mailbox, reason))
        return false;
    const char *local_part = NULL;
    if (!address_split(arena, mailbox, &local_part, &cmd->domain, reason))
        return false;
    cmd->local_part = address_unquote(arena, local_part);
    cmd->address = mailbox;
    return true;
}

/* ---- MAIL/RCPT parameters ---- */

static bool param_parse_number(const char *s, int64_t *out)
{
    if (!*s)
        return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (!is_digit(*s) || v > (INT64_MAX - (*s - '0')) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

/* A known MAIL parameter; returns false with *reason on a bad value. *known is set when
 * the keyword is one we understand. */
static bool param_apply_mail(struct smtp_command *cmd, const char *key, const char *value,
                             bool *known, unsigned *seen, const char **reason)
{
    static const char *const names[] = {"SIZE", "BODY", "PRDR", "SMTPUTF8"};
    unsigned idx = 0;
    while (idx < 4 && !str_ieq(key, names[idx]))
        idx++;
    *known = idx < 4;
    if (!*known)
        return true;
    if (*seen & (1u << idx)) {
        *reason = "duplicate parameter";
        return false;
    }
    *seen |= 1u << idx;
    bool ok;
    switch (idx) {
    case 0:
        ok = cmd->has_size = value && param_parse_number(value, &cmd->size);
        *reason = ok ? NULL : "invalid SIZE parameter";
        break;
    case 1:
        cmd->body = !value                         ? SMTP_BODY_UNSPEC
                    : str_ieq(value, "7BIT")       ? SMTP_BODY_7BIT
                    : str_ieq(value, "8BITMIME")   ? SMTP_BODY_8BITMIME
                    : str_ieq(value, "BINARYMIME") ? SMTP_BODY_BINARYMIME
                                                   : SMTP_BODY_UNSPEC;
        ok = cmd->body != SMTP_BODY_UNSPEC;
        *reason = ok ? NULL : "invalid BODY parameter";
        break;
    case 2:
        ok = cmd->prdr = !value;
        *reason = ok ? NULL : "PRDR takes no value";
        break;
    default:
        ok = cmd->smtputf8 = !value;
        *reason = ok ? NULL : "SMTPUTF8 takes no value";
        break;
    }
    return ok;
}

/* esmtp-keyword: (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value: 1*(%d33-60 / %d62-126)
 * (UTF-8 allowed too, RFC 6531). */
static bool param_well_formed(const char *key, const char *value)
{
    if (!is_alpha(*key) && !is_digit(*key))
        return false;
    for (const char *p = key; *p; p++)
        if (!is_alpha(*p) && !is_digit(*p) && *p != '-')
            return false;
    if (!value)
        return true;
    if (!*value)
        return false;
    for (const char *p = value; *p; p++)
        if (!((*p >= 33 && *p <= 126 && *p != '=') || is_utf8_byte(*p)))
            return false;
    return true;
}

static bool params_parse(struct arena *arena, const char *s, bool is_mail, struct smtp_command *cmd,
                         const char **reason)
{
    unsigned seen = 0;
    for (;;) {
        while (is_blank(*s))
            s++;
        if (!*s)
            return true;
        const char *start = s;
        while (*s && !is_blank(*s))
            s++;
        char *token = arena_strndup(arena, start, (size_t)(s - start));
        char *eq = strchr(token, '=');
        const char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (!param_well_formed(token, value)) {
            *reason = "malformed parameter";
            return false;
        }
        bool known = false;
        if (is_mail && !param_apply_mail(cmd, token, value, &known, &seen, reason))
            return false;
        if (!known && !cmd->unknown_param)
            cmd->unknown_param = arena_strndup(arena, start, (size_t)(s - start));
    }
}

/* "FROM:<path> params" / "TO:<path> params" */
static enum smtp_parse_status cmd_parse_mail_rcpt(struct arena *arena, struct smtp_command *cmd,
                                                  const char **reason)
{
    bool is_mail = cmd->verb == SMTP_VERB_MAIL;
    const char *keyword = is_mail ? "FROM:" : "TO:";
    if (!str_istarts(cmd->arg, keyword)) {
        *reason = is_mail ? "MAIL must be followed by FROM:" : "RCPT must be followed by TO:";
        return SMTP_PARSE_SYNTAX;
    }
    const char *s = cmd->arg + strlen(keyword);
    while (is_blank(*s))
        s++;
    const char *rest = NULL;
    if (!path_parse(arena, s, is_mail, cmd, &rest, reason))
        return SMTP_PARSE_SYNTAX;
    if (!params_parse(arena, rest, is_mail, cmd, reason))
        return SMTP_PARSE_SYNTAX;
    return SMTP_PARSE_OK;
}

/* "BDAT <size> [LAST]" (RFC 3030) */
static enum smtp_parse_status cmd_parse_bdat(struct arena *arena, struct smtp_command *cmd,
                                             const char **reason)
{
    const char *s = cmd->arg;
    if (!*s) {
        *reason = "BDAT requires a chunk size";
        return SMTP_PARSE_SYNTAX;
    }
    const char *end = s;
    while (*end && !is_blank(*end))
        end++;
    const char *size = arena_strndup(arena, s, (size_t)(end - s));
    if (!param_parse_number(size, &cmd->bdat_size)) {
        *reason = "invalid BDAT chunk size";
        return SMTP_PARSE_SYNTAX;
    }
    while (is_blank(*end))
        end++;
    if (!*end)
        return SMTP_PARSE_OK;
    if (!str_ieq(end, "LAST")) {
        *reason = "invalid BDAT arguments";
        return SMTP_PARSE_SYNTAX;
    }
    cmd->bdat_last = true;
    return SMTP_PARSE_OK;
}

/* ---- the command line ---- */

static const struct verb_info *cmd_find_verb(const char *verb)
{
    for (size_t i = 0; i < sizeof verb_table / sizeof verb_table[0]; i++)
        if (str_ieq(verb, verb_table[i].name))
            return &verb_table[i];
    return NULL;
}

static void cmd_clear(struct smtp_command *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->verb = SMTP_VERB_UNKNOWN;
    cmd->verb_text = "";
    cmd->arg = "";
    cmd->address = "";
    cmd->local_part = "";
    cmd->domain = "";
    cmd->body = SMTP_BODY_UNSPEC;
    cmd->unknown_param = NULL;
}

enum smtp_parse_status smtp_parse_command(struct arena *arena, const char *line, size_t len,
                                          struct smtp_command *cmd, const char **reason)
{
    cmd_clear(cmd);
    *reason = NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            *reason = REASON_CONTROL;
            return SMTP_PARSE_SYNTAX;
        }
    }
    const char *s = line, *end = line + len;
    while (s < end && is_blank(*s))
        s++;
    while (end > s && is_blank(end[-1]))
        end--;
    const char *verb_end = s;
    while (verb_end < end && !is_blank(*verb_end))
        verb_end++;
    cmd->verb_text = arena_strndup(arena, s, (size_t)(verb_end - s));
    const char *arg = verb_end;
    while (arg < end && is_blank(*arg))
        arg++;
    cmd->arg = arena_strndup(arena, arg, (size_t)(end - arg));

    const struct verb_info *info = cmd_find_verb(cmd->verb_text);
    if (!info) {
        *reason = "unrecognized command";
        return SMTP_PARSE_UNKNOWN_COMMAND;
    }
    cmd->verb = info->verb;
    switch (info->rule) {
    case ARG_NONE:
        if (*cmd->arg) {
            *reason = arena_printf(arena, "%s takes no arguments", info->name);
            return SMTP_PARSE_SYNTAX;
        }
        return SMTP_PARSE_OK;
    case ARG_REQUIRED:
        if (!*cmd->arg) {
            *reason = info->missing;
            return SMTP_PARSE_SYNTAX;
        }
        return SMTP_PARSE_OK;
    case ARG_SPECIAL:
        return info->verb == SMTP_VERB_BDAT ? cmd_parse_bdat(arena, cmd, reason)
                                            : cmd_parse_mail_rcpt(arena, cmd, reason);
    default:
        return SMTP_PARSE_OK;
    }
}
