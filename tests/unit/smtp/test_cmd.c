/*
 * test_cmd.c - unit tests for smtp_parse_command(): a table of good lines with every field
 * they must produce, and a table of bad lines with the status and reason they must produce.
 * The address splitter itself is tested in tests/unit/util/test_address.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "postern/smtp_cmd.h"

#define NO_SIZE (-1)

struct good_case {
    const char *line;
    enum smtp_verb verb;
    const char *arg;
    const char *address; /* NULL: not checked (non-MAIL/RCPT) */
    const char *local_part;
    const char *domain;
    int64_t size; /* NO_SIZE: has_size must be false */
    enum smtp_body_type body;
    bool prdr;
    bool smtputf8;
    const char *unknown_param;
    int64_t bdat_size;
    bool bdat_last;
};

static const struct good_case good_cases[] = {
    /* simple verbs, case-insensitive, blanks trimmed */
    {"HELO mail.example.com", SMTP_VERB_HELO, "mail.example.com", .size = NO_SIZE},
    {"ehlo [192.0.2.1]", SMTP_VERB_EHLO, "[192.0.2.1]", .size = NO_SIZE},
    {"EhLo   x.y  ", SMTP_VERB_EHLO, "x.y", .size = NO_SIZE},
    {"  EHLO\tx", SMTP_VERB_EHLO, "x", .size = NO_SIZE},
    {"DATA", SMTP_VERB_DATA, "", .size = NO_SIZE},
    {"data  ", SMTP_VERB_DATA, "", .size = NO_SIZE},
    {"RSET", SMTP_VERB_RSET, "", .size = NO_SIZE},
    {"QUIT", SMTP_VERB_QUIT, "", .size = NO_SIZE},
    {"quit", SMTP_VERB_QUIT, "", .size = NO_SIZE},
    {"STARTTLS", SMTP_VERB_STARTTLS, "", .size = NO_SIZE},
    {"NOOP", SMTP_VERB_NOOP, "", .size = NO_SIZE},
    {"NOOP anything at all", SMTP_VERB_NOOP, "anything at all", .size = NO_SIZE},
    {"HELP MAIL", SMTP_VERB_HELP, "MAIL", .size = NO_SIZE},
    {"VRFY postmaster", SMTP_VERB_VRFY, "postmaster", .size = NO_SIZE},
    {"VRFY", SMTP_VERB_VRFY, "", .size = NO_SIZE},
    {"EXPN staff", SMTP_VERB_EXPN, "staff", .size = NO_SIZE},
    {"AUTH PLAIN AGJvYgBzZWNyZXQ=", SMTP_VERB_AUTH, "PLAIN AGJvYgBzZWNyZXQ=", .size = NO_SIZE},
    {"ETRN example.com", SMTP_VERB_ETRN, "example.com", .size = NO_SIZE},
    {"BDAT 1000", SMTP_VERB_BDAT, "1000", .size = NO_SIZE, .bdat_size = 1000},
    {"bdat 0 last", SMTP_VERB_BDAT, "0 last", .size = NO_SIZE, .bdat_size = 0, .bdat_last = true},
    {"BDAT 9223372036854775807 LAST", SMTP_VERB_BDAT, "9223372036854775807 LAST", .size = NO_SIZE,
     .bdat_size = INT64_MAX, .bdat_last = true},

    /* MAIL FROM */
    {"MAIL FROM:<alice@example.com>", SMTP_VERB_MAIL, "FROM:<alice@example.com>",
     "alice@example.com", "alice", "example.com", .size = NO_SIZE},
    {"mail from:<alice@example.com>", SMTP_VERB_MAIL, "from:<alice@example.com>",
     "alice@example.com", "alice", "example.com", .size = NO_SIZE},
    {"MAIL FROM: <alice@example.com>", SMTP_VERB_MAIL, "FROM: <alice@example.com>",
     "alice@example.com", "alice", "example.com", .size = NO_SIZE},
    {"MAIL FROM:alice@example.com", SMTP_VERB_MAIL, "FROM:alice@example.com", "alice@example.com",
     "alice", "example.com", .size = NO_SIZE},
    {"MAIL FROM:alice@example.com SIZE=5", SMTP_VERB_MAIL, "FROM:alice@example.com SIZE=5",
     "alice@example.com", "alice", "example.com", .size = 5},
    {"MAIL FROM:<>", SMTP_VERB_MAIL, "FROM:<>", "", "", "", .size = NO_SIZE},
    {"MAIL FROM:<> SIZE=0", SMTP_VERB_MAIL, "FROM:<> SIZE=0", "", "", "", .size = 0},
    {"MAIL FROM:<Bob.Smith@Example.COM>", SMTP_VERB_MAIL, "FROM:<Bob.Smith@Example.COM>",
     "Bob.Smith@Example.COM", "Bob.Smith", "Example.COM", .size = NO_SIZE},
    {"MAIL FROM:<a!#$%&'*+-/=?^_`{|}~@x-y_z.example>", SMTP_VERB_MAIL,
     "FROM:<a!#$%&'*+-/=?^_`{|}~@x-y_z.example>", "a!#$%&'*+-/=?^_`{|}~@x-y_z.example",
     "a!#$%&'*+-/=?^_`{|}~", "x-y_z.example", .size = NO_SIZE},
    {"MAIL FROM:<\"john doe\"@example.com>", SMTP_VERB_MAIL, "FROM:<\"john doe\"@example.com>",
     "\"john doe\"@example.com", "john doe", "example.com", .size = NO_SIZE},
    {"MAIL FROM:<\"a>b\\\"c\"@example.com>", SMTP_VERB_MAIL, "FROM:<\"a>b\\\"c\"@example.com>",
     "\"a>b\\\"c\"@example.com", "a>b\"c", "example.com", .size = NO_SIZE},
    /* the local part is unquoted; the address keeps the quotes (issue 7) */
    {"RCPT TO:<\"/../../../../../../tmp/X\"@bars.test>", SMTP_VERB_RCPT,
     "TO:<\"/../../../../../../tmp/X\"@bars.test>", "\"/../../../../../../tmp/X\"@bars.test",
     "/../../../../../../tmp/X", "bars.test", .size = NO_SIZE},
    {"RCPT TO:<ceo/@bars.test>", SMTP_VERB_RCPT, "TO:<ceo/@bars.test>", "ceo/@bars.test", "ceo/",
     "bars.test", .size = NO_SIZE},
    {"RCPT TO:<\"\"@bars.test>", SMTP_VERB_RCPT, "TO:<\"\"@bars.test>", "\"\"@bars.test", "",
     "bars.test", .size = NO_SIZE},
    {"MAIL FROM:<@relay1.example,@relay2.example:user@example.org>", SMTP_VERB_MAIL,
     "FROM:<@relay1.example,@relay2.example:user@example.org>", "user@example.org", "user",
     "example.org", .size = NO_SIZE},
    {"MAIL FROM:<@[192.0.2.1]:user@example.org>", SMTP_VERB_MAIL,
     "FROM:<@[192.0.2.1]:user@example.org>", "user@example.org", "user", "example.org",
     .size = NO_SIZE},
    {"MAIL FROM:<user@[192.0.2.1]>", SMTP_VERB_MAIL, "FROM:<user@[192.0.2.1]>", "user@[192.0.2.1]",
     "user", "[192.0.2.1]", .size = NO_SIZE},
    {"MAIL FROM:<user@[IPv6:2001:db8::1]>", SMTP_VERB_MAIL, "FROM:<user@[IPv6:2001:db8::1]>",
     "user@[IPv6:2001:db8::1]", "user", "[IPv6:2001:db8::1]", .size = NO_SIZE},
    {"MAIL FROM:<user@[ipv6:::1]>", SMTP_VERB_MAIL, "FROM:<user@[ipv6:::1]>", "user@[ipv6:::1]",
     "user", "[ipv6:::1]", .size = NO_SIZE},
    {"MAIL FROM:<j\xc3\xb6rg@b\xc3\xbc"
     "cher.example> SMTPUTF8",
     SMTP_VERB_MAIL,
     "FROM:<j\xc3\xb6rg@b\xc3\xbc"
     "cher.example> SMTPUTF8",
     "j\xc3\xb6rg@b\xc3\xbc"
     "cher.example",
     "j\xc3\xb6rg",
     "b\xc3\xbc"
     "cher.example",
     NO_SIZE, .smtputf8 = true},

    /* MAIL parameters */
    {"MAIL FROM:<a@b.c> SIZE=12345 BODY=8BITMIME", SMTP_VERB_MAIL,
     "FROM:<a@b.c> SIZE=12345 BODY=8BITMIME", "a@b.c", "a", "b.c", .size = 12345,
     .body = SMTP_BODY_8BITMIME},
    {"MAIL FROM:<a@b.c> size=1 body=7bit prdr smtputf8", SMTP_VERB_MAIL,
     "FROM:<a@b.c> size=1 body=7bit prdr smtputf8", "a@b.c", "a", "b.c", .size = 1,
     .body = SMTP_BODY_7BIT, .prdr = true, .smtputf8 = true},
    {"MAIL FROM:<a@b.c> BODY=BINARYMIME", SMTP_VERB_MAIL, "FROM:<a@b.c> BODY=BINARYMIME", "a@b.c",
     "a", "b.c", .size = NO_SIZE, .body = SMTP_BODY_BINARYMIME},
    {"MAIL FROM:<a@b.c>   PRDR\t SIZE=9223372036854775807", SMTP_VERB_MAIL,
     "FROM:<a@b.c>   PRDR\t SIZE=9223372036854775807", "a@b.c", "a", "b.c", INT64_MAX,
     .prdr = true},
    {"MAIL FROM:<a@b.c> AUTH=<> RET=HDRS SIZE=7", SMTP_VERB_MAIL,
     "FROM:<a@b.c> AUTH=<> RET=HDRS SIZE=7", "a@b.c", "a", "b.c", 7, .unknown_param = "AUTH=<>"},
    {"MAIL FROM:<a@b.c> X-FOO", SMTP_VERB_MAIL, "FROM:<a@b.c> X-FOO", "a@b.c", "a", "b.c", NO_SIZE,
     .unknown_param = "X-FOO"},

    /* RCPT TO */
    {"RCPT TO:<bob@example.net>", SMTP_VERB_RCPT, "TO:<bob@example.net>", "bob@example.net", "bob",
     "example.net", .size = NO_SIZE},
    {"rcpt to: <bob@example.net>", SMTP_VERB_RCPT, "to: <bob@example.net>", "bob@example.net",
     "bob", "example.net", .size = NO_SIZE},
    {"RCPT TO:<postmaster>", SMTP_VERB_RCPT, "TO:<postmaster>", "postmaster", "postmaster", "",
     .size = NO_SIZE},
    {"RCPT TO:<Postmaster>", SMTP_VERB_RCPT, "TO:<Postmaster>", "Postmaster", "Postmaster", "",
     .size = NO_SIZE},
    {"RCPT TO:bob@example.net", SMTP_VERB_RCPT, "TO:bob@example.net", "bob@example.net", "bob",
     "example.net", .size = NO_SIZE},
    /* every RCPT parameter is left for the session (555) */
    {"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net",
     SMTP_VERB_RCPT, "TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net",
     "bob@example.net", "bob", "example.net", NO_SIZE, .unknown_param = "NOTIFY=SUCCESS,FAILURE"},
    {"RCPT TO:<bob@example.net> SIZE=10", SMTP_VERB_RCPT, "TO:<bob@example.net> SIZE=10",
     "bob@example.net", "bob", "example.net", NO_SIZE, .unknown_param = "SIZE=10"},
};

struct bad_case {
    const char *line;
    size_t len; /* 0: strlen(line) */
    enum smtp_parse_status status;
    const char *reason; /* substring */
};

static const struct bad_case bad_cases[] = {
    /* unknown commands */
    {"", 0, SMTP_PARSE_UNKNOWN_COMMAND, "unrecognized"},
    {"   ", 0, SMTP_PARSE_UNKNOWN_COMMAND, "unrecognized"},
    {"GET / HTTP/1.1", 0, SMTP_PARSE_UNKNOWN_COMMAND, "unrecognized"},
    {"HELOX foo", 0, SMTP_PARSE_UNKNOWN_COMMAND, "unrecognized"},
    {"MAIL:FROM:<a@b>", 0, SMTP_PARSE_UNKNOWN_COMMAND, "unrecognized"},
    {"HEL", 0, SMTP_PARSE_UNKNOWN_COMMAND, "unrecognized"},
    /* control characters, NUL */
    {"NOOP a\0b", 8, SMTP_PARSE_SYNTAX, "NUL or control character in command"},
    {"\0", 1, SMTP_PARSE_SYNTAX, "NUL or control character"},
    {"HELO x\ry", 0, SMTP_PARSE_SYNTAX, "NUL or control character"},
    {"HELO x\ny", 0, SMTP_PARSE_SYNTAX, "NUL or control character"},
    {"MAIL FROM:<a\x01@b.c>", 0, SMTP_PARSE_SYNTAX, "NUL or control character"},
    {"RCPT TO:<a@b.c>\x7f", 0, SMTP_PARSE_SYNTAX, "NUL or control character"},
    {"XYZZY \x1b[31m", 0, SMTP_PARSE_SYNTAX, "NUL or control character"},
    /* argument rules */
    {"HELO", 0, SMTP_PARSE_SYNTAX, "HELO requires domain or address"},
    {"EHLO   ", 0, SMTP_PARSE_SYNTAX, "EHLO requires domain or address"},
    {"DATA now", 0, SMTP_PARSE_SYNTAX, "DATA takes no arguments"},
    {"RSET x", 0, SMTP_PARSE_SYNTAX, "RSET takes no arguments"},
    {"QUIT bye", 0, SMTP_PARSE_SYNTAX, "QUIT takes no arguments"},
    {"STARTTLS x", 0, SMTP_PARSE_SYNTAX, "STARTTLS takes no arguments"},
    {"AUTH", 0, SMTP_PARSE_SYNTAX, "AUTH requires a mechanism"},
    {"ETRN", 0, SMTP_PARSE_SYNTAX, "ETRN requires"},
    {"BDAT", 0, SMTP_PARSE_SYNTAX, "BDAT requires a chunk size"},
    {"BDAT x", 0, SMTP_PARSE_SYNTAX, "invalid BDAT chunk size"},
    {"BDAT -1", 0, SMTP_PARSE_SYNTAX, "invalid BDAT chunk size"},
    {"BDAT 9223372036854775808", 0, SMTP_PARSE_SYNTAX, "invalid BDAT chunk size"},
    {"BDAT 10 LAST x", 0, SMTP_PARSE_SYNTAX, "invalid BDAT arguments"},
    {"BDAT 10 FIRST", 0, SMTP_PARSE_SYNTAX, "invalid BDAT arguments"},
    /* MAIL / RCPT framing */
    {"MAIL", 0, SMTP_PARSE_SYNTAX, "MAIL must be followed by FROM:"},
    {"MAIL TO:<a@b.c>", 0, SMTP_PARSE_SYNTAX, "FROM:"},
    {"MAIL FROM <a@b.c>", 0, SMTP_PARSE_SYNTAX, "FROM:"},
    {"RCPT FROM:<a@b.c>", 0, SMTP_PARSE_SYNTAX, "RCPT must be followed by TO:"},
    {"MAIL FROM:", 0, SMTP_PARSE_SYNTAX, "MAIL must have an address operand"},
    {"MAIL FROM:   ", 0, SMTP_PARSE_SYNTAX, "MAIL must have an address operand"},
    {"RCPT TO:", 0, SMTP_PARSE_SYNTAX, "RCPT must have an address operand"},
    {"RCPT TO:<>", 0, SMTP_PARSE_SYNTAX, "empty recipient"},
    {"MAIL FROM:<a@b.c", 0, SMTP_PARSE_SYNTAX, "unbalanced angle brackets"},
    {"MAIL FROM:a@b.c>", 0, SMTP_PARSE_SYNTAX, "unbalanced angle brackets"},
    {"MAIL FROM:<<a@b.c>>", 0, SMTP_PARSE_SYNTAX, "unbalanced angle brackets"},
    {"MAIL FROM:<a<b@c.d>", 0, SMTP_PARSE_SYNTAX, "unbalanced angle brackets"},
    {"MAIL FROM:<a@b.c>SIZE=10", 0, SMTP_PARSE_SYNTAX, "junk after the closing angle bracket"},
    {"MAIL FROM:<a@b.c>>", 0, SMTP_PARSE_SYNTAX, "junk after"},
    {"MAIL FROM:<\"a@b.c>", 0, SMTP_PARSE_SYNTAX, "unterminated quoted string"},
    /* malformed addresses */
    {"MAIL FROM:<a b@c.d>", 0, SMTP_PARSE_SYNTAX, "space in address"},
    {"MAIL FROM:<a@b .c>", 0, SMTP_PARSE_SYNTAX, "malformed address"},
    {"MAIL FROM:<@b.c>", 0, SMTP_PARSE_SYNTAX, "source route without ':'"},
    {"MAIL FROM:<a@>", 0, SMTP_PARSE_SYNTAX, "missing domain"},
    {"MAIL FROM:<a@@b.c>", 0, SMTP_PARSE_SYNTAX, "malformed address"},
    {"MAIL FROM:<a@b@c.d>", 0, SMTP_PARSE_SYNTAX, "invalid character in domain"},
    {"MAIL FROM:<.a@b.c>", 0, SMTP_PARSE_SYNTAX, "empty element in local part"},
    {"MAIL FROM:<a.@b.c>", 0, SMTP_PARSE_SYNTAX, "empty element in local part"},
    {"MAIL FROM:<a..b@c.d>", 0, SMTP_PARSE_SYNTAX, "empty element in local part"},
    {"MAIL FROM:<a(b)@c.d>", 0, SMTP_PARSE_SYNTAX, "invalid character in local part"},
    {"MAIL FROM:<a,b@c.d>", 0, SMTP_PARSE_SYNTAX, "invalid character in local part"},
    {"MAIL FROM:<a@b..c>", 0, SMTP_PARSE_SYNTAX, "empty domain label"},
    {"MAIL FROM:<a@b.c.>", 0, SMTP_PARSE_SYNTAX, "empty domain label"},
    {"MAIL FROM:<a@.b.c>", 0, SMTP_PARSE_SYNTAX, "empty domain label"},
    {"MAIL FROM:<a@-b.c>", 0, SMTP_PARSE_SYNTAX, "invalid domain"},
    {"MAIL FROM:<a@b-.c>", 0, SMTP_PARSE_SYNTAX, "invalid domain"},
    {"MAIL FROM:<a@b!c.d>", 0, SMTP_PARSE_SYNTAX, "invalid character in domain"},
    {"MAIL FROM:<a@[1.2.3]>", 0, SMTP_PARSE_SYNTAX, "invalid address literal"},
    {"MAIL FROM:<a@[1.2.3.4>", 0, SMTP_PARSE_SYNTAX, "invalid address literal"},
    {"MAIL FROM:<a@[IPv6:1.2.3.4]>", 0, SMTP_PARSE_SYNTAX, "invalid address literal"},
    {"MAIL FROM:<a@[2001:db8::1]>", 0, SMTP_PARSE_SYNTAX, "invalid address literal"},
    {"MAIL FROM:<a@[x]y>", 0, SMTP_PARSE_SYNTAX, "invalid address literal"},
    {"MAIL FROM:<\"a\\\x01\"@b.c>", 0, SMTP_PARSE_SYNTAX, "NUL or control"},
    {"MAIL FROM:<@a,:b@c.d>", 0, SMTP_PARSE_SYNTAX, "invalid source route"},
    {"MAIL FROM:<@a,b:c@d.e>", 0, SMTP_PARSE_SYNTAX, "invalid source route"},
    {"MAIL FROM:<@:c@d.e>", 0, SMTP_PARSE_SYNTAX, "invalid source route"},
    {"MAIL FROM:<@a..b:c@d.e>", 0, SMTP_PARSE_SYNTAX, "empty domain label"},
    {"RCPT TO:<@a:>", 0, SMTP_PARSE_SYNTAX, "empty address"},
    /* parameters */
    {"MAIL FROM:<a@b.c> SIZE", 0, SMTP_PARSE_SYNTAX, "invalid SIZE parameter"},
    {"MAIL FROM:<a@b.c> SIZE=", 0, SMTP_PARSE_SYNTAX, "malformed parameter"},
    {"MAIL FROM:<a@b.c> SIZE=1k", 0, SMTP_PARSE_SYNTAX, "invalid SIZE parameter"},
    {"MAIL FROM:<a@b.c> SIZE=-1", 0, SMTP_PARSE_SYNTAX, "invalid SIZE parameter"},
    {"MAIL FROM:<a@b.c> SIZE=+1", 0, SMTP_PARSE_SYNTAX, "invalid SIZE parameter"},
    {"MAIL FROM:<a@b.c> SIZE=9223372036854775808", 0, SMTP_PARSE_SYNTAX, "invalid SIZE parameter"},
    {"MAIL FROM:<a@b.c> SIZE=99999999999999999999999", 0, SMTP_PARSE_SYNTAX, "invalid SIZE"},
    {"MAIL FROM:<a@b.c> SIZE=1 SIZE=2", 0, SMTP_PARSE_SYNTAX, "duplicate parameter"},
    {"MAIL FROM:<a@b.c> BODY=8BIT", 0, SMTP_PARSE_SYNTAX, "invalid BODY parameter"},
    {"MAIL FROM:<a@b.c> BODY", 0, SMTP_PARSE_SYNTAX, "invalid BODY parameter"},
    {"MAIL FROM:<a@b.c> PRDR=yes", 0, SMTP_PARSE_SYNTAX, "PRDR takes no value"},
    {"MAIL FROM:<a@b.c> SMTPUTF8=1", 0, SMTP_PARSE_SYNTAX, "SMTPUTF8 takes no value"},
    {"MAIL FROM:<a@b.c> =x", 0, SMTP_PARSE_SYNTAX, "malformed parameter"},
    {"MAIL FROM:<a@b.c> -X=1", 0, SMTP_PARSE_SYNTAX, "malformed parameter"},
    {"MAIL FROM:<a@b.c> X_Y=1", 0, SMTP_PARSE_SYNTAX, "malformed parameter"},
    {"MAIL FROM:<a@b.c> X=a=b", 0, SMTP_PARSE_SYNTAX, "malformed parameter"},
    {"RCPT TO:<a@b.c> =", 0, SMTP_PARSE_SYNTAX, "malformed parameter"},
};

static struct arena test_arena;

static int setup(void **state)
{
    (void)state;
    arena_init(&test_arena, 4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_reset(&test_arena);
    return 0;
}

static void test_good_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const struct good_case *g = &good_cases[i];
        struct smtp_command cmd;
        const char *reason = "unset";
        enum smtp_parse_status st =
            smtp_parse_command(&test_arena, g->line, strlen(g->line), &cmd, &reason);
        if (st != SMTP_PARSE_OK)
            fail_msg("\"%s\": status %d (%s)", g->line, st, reason ? reason : "");
        assert_null(reason);
        assert_int_equal(cmd.verb, g->verb);
        assert_string_equal(cmd.arg, g->arg);
        assert_non_null(cmd.verb_text);
        if (g->address) {
            assert_string_equal(cmd.address, g->address);
            assert_string_equal(cmd.local_part, g->local_part);
            assert_string_equal(cmd.domain, g->domain);
        } else {
            assert_string_equal(cmd.address, "");
        }
        if (g->size == NO_SIZE) {
            assert_false(cmd.has_size);
        } else {
            assert_true(cmd.has_size);
            assert_int_equal(cmd.size, g->size);
        }
        assert_int_equal(cmd.body, g->body);
        assert_int_equal(cmd.prdr, g->prdr);
        assert_int_equal(cmd.smtputf8, g->smtputf8);
        if (g->unknown_param)
            assert_string_equal(cmd.unknown_param, g->unknown_param);
        else
            assert_null(cmd.unknown_param);
        assert_int_equal(cmd.bdat_size, g->bdat_size);
        assert_int_equal(cmd.bdat_last, g->bdat_last);
    }
}

static void test_bad_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *b = &bad_cases[i];
        size_t len = b->len ? b->len : strlen(b->line);
        struct smtp_command cmd;
        const char *reason = NULL;
        enum smtp_parse_status st = smtp_parse_command(&test_arena, b->line, len, &cmd, &reason);
        if (st != b->status)
            fail_msg("case %zu \"%s\": status %d (%s), want %d", i, b->line, st,
                     reason ? reason : "", b->status);
        assert_non_null(reason);
        if (!strstr(reason, b->reason))
            fail_msg("case %zu \"%s\": reason \"%s\", want \"%s\"", i, b->line, reason, b->reason);
        assert_null(strchr(reason, '\n'));
        assert_non_null(cmd.verb_text);
        assert_non_null(cmd.arg);
    }
}

static void test_verb_kept_on_syntax_error(void **state)
{
    (void)state;
    struct smtp_command cmd;
    const char *reason;
    const char *line = "Mail FROM:<a b@c>";
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_SYNTAX);
    assert_int_equal(cmd.verb, SMTP_VERB_MAIL);
    assert_string_equal(cmd.verb_text, "Mail");
    line = "FOO bar";
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_UNKNOWN_COMMAND);
    assert_string_equal(cmd.verb_text, "FOO");
    assert_string_equal(cmd.arg, "bar");
}

/* The line is (pointer, length): bytes past len are never part of the command. */
static void test_length_respected(void **state)
{
    (void)state;
    struct smtp_command cmd;
    const char *reason;
    const char line[] = "QUIT\r\nMAIL FROM:<x@y>";
    assert_int_equal(smtp_parse_command(&test_arena, line, 4, &cmd, &reason), SMTP_PARSE_OK);
    assert_int_equal(cmd.verb, SMTP_VERB_QUIT);
    const char mail[] = "MAIL FROM:<a@b.c> SIZE=123456";
    assert_int_equal(smtp_parse_command(&test_arena, mail, strlen(mail) - 3, &cmd, &reason),
                     SMTP_PARSE_OK);
    assert_int_equal(cmd.size, 123);
}

static void test_length_limits(void **state)
{
    (void)state;
    char local[100], domain[300], line[700];
    struct smtp_command cmd;
    const char *reason;

    /* local part: 64 ok, 65 too long */
    memset(local, 'l', 64);
    local[64] = '\0';
    snprintf(line, sizeof line, "MAIL FROM:<%s@example.com>", local);
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_OK);
    assert_int_equal(strlen(cmd.local_part), 64);
    local[64] = 'l';
    local[65] = '\0';
    snprintf(line, sizeof line, "MAIL FROM:<%s@example.com>", local);
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_SYNTAX);
    assert_string_equal(reason, "address too long");

    /* a 63-byte label is fine, 64 is not */
    memset(domain, 'd', 63);
    strcpy(domain + 63, ".example");
    snprintf(line, sizeof line, "RCPT TO:<a@%s>", domain);
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_OK);
    memset(domain, 'd', 64);
    strcpy(domain + 64, ".example");
    snprintf(line, sizeof line, "RCPT TO:<a@%s>", domain);
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_SYNTAX);

    /* whole path: 254 between the brackets ok, 255 too long */
    memset(local, 'l', 64);
    local[64] = '\0';
    size_t dlen = 254 - 65; /* "l...l@" is 65 bytes */
    for (size_t i = 0; i < dlen; i++)
        domain[i] = (i % 50 == 49) ? '.' : 'd';
    domain[dlen] = '\0';
    snprintf(line, sizeof line, "RCPT TO:<%s@%s>", local, domain);
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_OK);
    assert_int_equal(strlen(cmd.address), 254);
    domain[dlen] = 'd';
    domain[dlen + 1] = '\0';
    snprintf(line, sizeof line, "RCPT TO:<%s@%s>", local, domain);
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_SYNTAX);
    assert_string_equal(reason, "address too long");
    snprintf(line, sizeof line, "RCPT TO:%s@%s", local, domain); /* bare, same limit */
    assert_int_equal(smtp_parse_command(&test_arena, line, strlen(line), &cmd, &reason),
                     SMTP_PARSE_SYNTAX);
    assert_string_equal(reason, "address too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_lines),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_verb_kept_on_syntax_error),
        cmocka_unit_test(test_length_respected),
        cmocka_unit_test(test_length_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
