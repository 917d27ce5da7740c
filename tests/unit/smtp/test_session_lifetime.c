/*
 * test_session_lifetime.c - the lifetimes of session memory, driven through the
 * socket-free session: $smtp_command and acl_m variables read after the resets that used
 * to free them (HELO/EHLO, RSET, end of message, rejected MAIL, the banner), the memory
 * bound of an endless EHLO/RSET/NOOP/set session, overlong lines, a maximum-length line
 * split at every byte, DATA after every RCPT was discarded, and ACL-added headers reaching
 * the spool. Under the ASan build (CI) a use-after-free in any of these fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../test_files.h"
#include "../test_spool_reader.h"
#include "session_test_env.h"

#include "postern/config.h"
#include "postern/log.h"
#include "postern/session.h"
#include "postern/spool.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The bound docs/config.md states for a session outside a message with this test's
 * configuration (default 8 KiB arena chunks, 512-byte lines, small variables). */
#define IDLE_SESSION_BOUND (64 * 1024)

static char dir[64];
static char mainlog[128];

static const char *test_config =
    "primary_hostname = test.example\n"
    "smtp_max_line_length = 512\n"
    "smtp_max_unknown_commands = 1000\n"
    "domainlist local_domains = localhost\n"
    "acl_smtp_connect = connect\n"
    "acl_smtp_helo = helo\n"
    "acl_smtp_mail = mail\n"
    "acl_smtp_rcpt = rcpt\n"
    "acl_smtp_predata = predata\n"
    "acl_smtp_data = data\n"
    "acl_smtp_quit = quit\n"
    "acl_smtp_notquit = notquit\n"
    "acl_smtp_vrfy = vrfy\n"
    "begin acl\n"
    "connect:\n"
    "  warn   set acl_m0 = fromconnect\n"
    "         set acl_c0 = conn\n"
    "         set acl_c_n = 0\n"
    "  accept\n"
    "helo:\n"
    "  warn   logwrite = helo-acl saw <$smtp_command> m0=<$acl_m0>\n"
    "         set acl_c0 = $sender_helo_name\n"
    "         set acl_c_n = ${eval:$acl_c_n+1}\n"
    "  defer  condition = ${if eq{$sender_helo_name}{echo}}\n"
    "         message = cmd=<$smtp_command> m0=<$acl_m0>\n"
    "  warn   condition = ${if eq{$sender_helo_name}{keep}}\n"
    "         set acl_m0 = fromhelo\n"
    "  accept\n"
    "mail:\n"
    "  warn   add_header = X-Mail: $sender_address\n"
    "         add_header = :after_received:X-After-1: mail\n"
    "  deny   senders = deny@example.org\n"
    "         message = no sender <$smtp_command>\n"
    "  accept\n"
    "rcpt:\n"
    "  warn    add_header = X-Rcpt: $local_part\n"
    "          add_header = :AT_START_RFC: X-Rfc-1: rcpt\n"
    "  discard local_parts = discard\n"
    "  accept  domains = +local_domains\n"
    "predata:\n"
    "  warn   add_header = :at_start:X-Predata: $recipients_count\n"
    "         add_header = :at_start_rfc:X-Rfc-2: predata\n"
    "  accept\n"
    "data:\n"
    "  warn   add_header = X-Data: $message_size\\n\\tcontinued\n"
    "         add_header = :after_received:X-After-2: data\\n:at_start:X-Start-2: data\n"
    "         add_header = :bogus:X-Unknown: 1\n"
    "         add_header = :at_end:X-End: data\n"
    "  accept\n"
    "quit:\n"
    "  warn   logwrite = quit-acl saw <$smtp_command> m0=<$acl_m0>\n"
    "         set acl_m0 = $acl_m0-quit\n"
    "  accept\n"
    "notquit:\n"
    "  warn   logwrite = notquit-acl saw <$smtp_command> m0=<$acl_m0>\n"
    "  accept\n"
    "vrfy:\n"
    "  warn   set acl_m0 = $acl_m0+vrfy\n"
    "  deny   message = cmd=<$smtp_command> m0=<$acl_m0>\n"
    "begin routers\n"
    "r:\n"
    "  driver = redirect\n"
    "  data = :blackhole:\n";

static int setup(void **state)
{
    return session_env_setup(state, test_config);
}

static int teardown(void **state)
{
    return session_env_teardown(state);
}

static void start(struct harness *h)
{
    assert_true(strncmp(session_env_start(h), "220 ", 4) == 0);
}

/* The mainlog holds a line containing `text`. */
static bool mainlog_has(const char *text)
{
    FILE *f = fopen(mainlog, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* ---- use-after-free regressions ---- */

static void test_smtp_command_in_helo_acl(void **state)
{
    struct harness *h = *state;
    start(h);
    /* the HELO ACL runs after the HELO reset; $smtp_command must still be the command */
    assert_string_equal(feed(h, "EHLO echo\r\n"), "451 cmd=<EHLO echo> m0=<>\r\n");
    assert_true(mainlog_has("helo-acl saw <EHLO echo> m0=<>"));
}

static void test_smtp_command_after_resets_in_notquit(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO client\r\n");
    /* rejected MAIL resets the message; RSET; then the connection is lost */
    assert_string_equal(feed(h, "MAIL FROM:<deny@example.org>\r\n"),
                        "550 5.7.1 no sender <MAIL FROM:<deny@example.org>>\r\n");
    session_lost(h->s, "test");
    assert_true(mainlog_has("notquit-acl saw <MAIL FROM:<deny@example.org>> m0=<>"));
}

static void test_smtp_command_after_rset_and_message(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO client\r\n");
    assert_string_equal(feed(h, "RSET\r\n"), "250 2.0.0 Reset OK\r\n");
    feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n");
    const char *r = feed(h, "Subject: x\r\n\r\nbody\r\n.\r\n");
    assert_true(strncmp(r, "250 2.0.0 OK id=", 16) == 0);
    session_timeout(h->s);
    assert_true(mainlog_has("notquit-acl saw <DATA> m0=<>"));
}

static void test_acl_m_from_connect_in_vrfy_and_quit(void **state)
{
    struct harness *h = *state;
    start(h);
    /* set in the connect ACL, read and set again by VRFY and QUIT before any reset */
    assert_string_equal(feed(h, "VRFY someone\r\n"),
                        "252 cmd=<VRFY someone> m0=<fromconnect+vrfy>\r\n");
    assert_string_equal(feed(h, "VRFY again\r\n"),
                        "252 cmd=<VRFY again> m0=<fromconnect+vrfy+vrfy>\r\n");
    assert_string_equal(feed(h, "QUIT\r\n"), "221 test.example closing connection\r\n");
    assert_true(mainlog_has("quit-acl saw <QUIT> m0=<fromconnect+vrfy+vrfy>"));
}

static void test_acl_m_reset_points(void **state)
{
    struct harness *h = *state;
    start(h);
    /* HELO/EHLO clears acl_m before the HELO ACL (what that sets lasts until MAIL) */
    feed(h, "EHLO keep\r\n");
    assert_string_equal(feed(h, "VRFY x\r\n"), "252 2.5.2 cmd=<VRFY x> m0=<fromhelo+vrfy>\r\n");
    /* MAIL clears it (Exim: reset by MAIL, RSET, EHLO, HELO and at the end of a message) */
    feed(h, "MAIL FROM:<a@example.org>\r\n");
    assert_string_equal(feed(h, "VRFY x\r\n"), "252 2.5.2 cmd=<VRFY x> m0=<+vrfy>\r\n");
    feed(h, "EHLO keep\r\n");
    /* RSET clears it */
    feed(h, "RSET\r\n");
    assert_string_equal(feed(h, "VRFY x\r\n"), "252 2.5.2 cmd=<VRFY x> m0=<+vrfy>\r\n");
    /* the end of a message clears it */
    feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n");
    assert_true(strncmp(feed(h, "\r\nb\r\n.\r\n"), "250 ", 4) == 0);
    assert_string_equal(feed(h, "VRFY x\r\n"), "252 2.5.2 cmd=<VRFY x> m0=<+vrfy>\r\n");
    /* a rejected MAIL clears it */
    feed(h, "MAIL FROM:<deny@example.org>\r\n");
    assert_string_equal(feed(h, "VRFY x\r\n"), "252 2.5.2 cmd=<VRFY x> m0=<+vrfy>\r\n");
}

/* ---- memory bound ---- */

static void test_memory_bounded_over_100000_cycles(void **state)
{
    struct harness *h = *state;
    start(h);
    char line[128];
    size_t after_warmup = 0, peak = 0;
    for (int i = 0; i < 100000; i++) {
        /* every EHLO name is new; the HELO ACL sets acl_c0 and a counter each time */
        snprintf(line, sizeof line, "EHLO host-%d.example\r\n", i);
        feed(h, line);
        const char *r = feed(h, "RSET\r\nNOOP\r\n");
        if (i == 0 && !strstr(r, "250 2.0.0 OK\r\n"))
            fail_msg("first cycle: %s", r);
        size_t m = session_memory(h->s);
        if (i == 1000)
            after_warmup = m;
        if (m > peak)
            peak = m;
    }
    printf("session memory: %zu bytes after 1,000 cycles, peak %zu over 100,000\n", after_warmup,
           peak);
    assert_true(peak < IDLE_SESSION_BOUND);
    assert_true(peak <= after_warmup + 64); /* no growth with the cycle count */
    assert_string_equal(feed(h, "VRFY x\r\n"), "252 2.5.2 cmd=<VRFY x> m0=<+vrfy>\r\n");
}

/* ---- long lines ---- */

static void test_overlong_line_continues(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO client\r\n");
    char big[700];
    memset(big, 'A', sizeof big);
    memcpy(big, "NOOP ", 5);
    /* refused as soon as it cannot be a valid line, before its end arrives */
    assert_string_equal(feed_n(h, big, sizeof big), "500 5.5.2 Line too long\r\n");
    assert_string_equal(feed_n(h, big, sizeof big), ""); /* still the same line: dropped */
    assert_string_equal(feed(h, "tail\r\nNOOP\r\n"), "250 2.0.0 OK\r\n");
    /* a complete overlong line in one read: 500, the next command is served */
    char line[700];
    memset(line, 'B', sizeof line);
    memcpy(line, "NOOP ", 5);
    memcpy(line + sizeof line - 8, "\r\nNOOP\r\n", 8);
    assert_string_equal(feed_n(h, line, sizeof line),
                        "500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n");
    assert_true(mainlog_has("SMTP command line too long"));
}

/* A line of exactly smtp_max_line_length (512) bytes before its CRLF, cut at `at`. */
static void max_line_split_at(struct harness *h, size_t at, size_t len, const char *expect)
{
    char line[600];
    memset(line, 'x', len);
    memcpy(line, "NOOP ", 5);
    memcpy(line + len, "\r\n", 2);
    const char *r1 = feed_n(h, line, at);
    char first[256];
    snprintf(first, sizeof first, "%.255s", r1);
    const char *r2 = feed_n(h, line + at, len + 2 - at);
    char both[512];
    snprintf(both, sizeof both, "%s%.255s", first, r2);
    if (strcmp(both, expect) != 0)
        fail_msg("line of %zu split at %zu: got \"%s\"", len, at, both);
}

static void test_max_line_at_every_split(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO client\r\n");
    for (size_t at = 0; at <= 514; at++)
        max_line_split_at(h, at, 512, "250 2.0.0 OK\r\n");
    for (size_t at = 0; at <= 515; at++)
        max_line_split_at(h, at, 513, "500 5.5.2 Line too long\r\n");
    assert_string_equal(feed(h, "NOOP\r\n"), "250 2.0.0 OK\r\n");
}

/* ---- discard ---- */

static void test_data_after_all_rcpts_discarded(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO client\r\n");
    feed(h, "MAIL FROM:<a@example.org>\r\n");
    assert_string_equal(feed(h, "RCPT TO:<discard@localhost>\r\n"), "250 2.1.5 Accepted\r\n");
    assert_string_equal(feed(h, "DATA\r\n"),
                        "354 Enter message, ending with \".\" on a line by itself\r\n");
    const char *r = feed(h, "Subject: gone\r\n\r\nbody\r\n.\r\n");
    assert_true(strncmp(r, "250 2.0.0 OK id=", 16) == 0);
    char id[SPOOL_ID_LEN + 1];
    snprintf(id, sizeof id, "%.*s", SPOOL_ID_LEN, r + 16);
    assert_int_equal(h->accepted, 0);
    assert_int_equal(spool_open_data(id), -1);
    char want[128];
    snprintf(want, sizeof want, "%s => blackhole (RCPT ACL discarded recipients)", id);
    assert_true(mainlog_has(want));
    snprintf(want, sizeof want, "%s Completed", id);
    assert_true(mainlog_has(want));
    /* the session goes on */
    assert_string_equal(feed(h, "MAIL FROM:<b@example.org>\r\n"), "250 2.1.0 OK\r\n");
}

/* ---- add_header ---- */

/* The message as delivered: -D with each group of added lines at its offset. */
static int insert_groups(const struct spool_envelope *env, const char *data, size_t dlen, char *out,
                         size_t cap)
{
    size_t len = 0, from = 0;
    for (int i = 0; i <= env->added_header_groups; i++) {
        size_t at = i < env->added_header_groups ? (size_t)env->added_headers[i].at : dlen;
        const char *text = i < env->added_header_groups ? env->added_headers[i].text : "";
        assert_true(at >= from && at <= dlen && len + (at - from) + strlen(text) < cap);
        memcpy(out + len, data + from, at - from);
        len += at - from;
        memcpy(out + len, text, strlen(text));
        len += strlen(text);
        from = at;
    }
    return (int)len;
}

/* Every placement, with a client that sends Received: (one continued), Resent- and other
 * header lines: each group goes where Exim puts it, and reads back whole in any step. */
static void test_added_headers_reach_the_spool(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO client\r\n");
    feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n");
    const char *client = "Received: from a by b;\r\n\tMon, 7 Dec 2026 04:00:00 +0000\n"
                         "Received: from c by d; Mon, 7 Dec 2026 03:59:00 +0000\r\n"
                         "Resent-From: r@example.org\r\n"
                         "Subject: h\r\n"
                         "Received: late, not at the top\r\n"
                         "\r\nbody\r\n";
    const char *r = feed(h, arena_printf(&h->s->conn_arena, "%s.\r\n", client));
    assert_true(strncmp(r, "250 2.0.0 OK id=", 16) == 0);
    char id[SPOOL_ID_LEN + 1];
    snprintf(id, sizeof id, "%.*s", SPOOL_ID_LEN, r + 16);
    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    char err[256];
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    int fd = spool_open_data(id);
    assert_true(fd >= 0);
    char data[4096];
    ssize_t dlen = read(fd, data, sizeof data - 1);
    close(fd);
    assert_true(dlen > 0);
    data[dlen] = '\0';
    const char *resent = strstr(data, "Resent-From:"), *subject = strstr(data, "Subject: h");
    const char *blank = strstr(data, "\r\n\r\n");
    assert_non_null(resent);
    assert_non_null(subject);
    assert_non_null(blank);
    /* at the start, after the Received: block (the client's two after ours), after the
     * Resent- lines, at the end: the first three each before the ones added earlier */
    assert_int_equal(env.added_header_groups, 4);
    assert_int_equal(env.added_headers[0].at, 0);
    assert_string_equal(env.added_headers[0].text, "X-Start-2: data\r\nX-Predata: 1\r\n");
    assert_int_equal(env.added_headers[1].at, resent - data);
    assert_string_equal(env.added_headers[1].text, "X-After-2: data\r\nX-After-1: mail\r\n");
    assert_int_equal(env.added_headers[2].at, subject - data);
    assert_string_equal(env.added_headers[2].text, "X-Rfc-2: predata\r\nX-Rfc-1: rcpt\r\n");
    assert_int_equal(env.added_headers[3].at, blank + 2 - data);
    const char *end = env.added_headers[3].text;
    const char *want = "X-Mail: a@example.org\r\nX-Rcpt: u\r\nX-Data: ";
    const char *tail = "\r\n\tcontinued\r\nX-ACL-Warn: :bogus:X-Unknown: 1\r\nX-End: data\r\n";
    assert_true(strncmp(end, want, strlen(want)) == 0);
    assert_true(strlen(end) > strlen(tail) && strcmp(end + strlen(end) - strlen(tail), tail) == 0);
    /* our Received: comes first in -D, the client's lines follow it unchanged */
    const char *theirs = strstr(data, "Received: from a by b;\r\n");
    assert_true(strncmp(data, "Received: ", 10) == 0 && theirs && theirs > data);
    assert_non_null(strstr(data, "\r\n\tMon, 7 Dec 2026 04:00:00 +0000\r\nReceived: from c"));
    char expect[8192];
    int elen = insert_groups(&env, data, (size_t)dlen, expect, sizeof expect);
    test_read_delivered_in_steps(&env, expect, (size_t)elen);
    arena_reset(&arena);
    spool_remove(id);
}

/* -D of a message, whole (malloc'd, NUL-terminated). */
static char *read_data_file(const char *id, size_t *len)
{
    int fd = spool_open_data(id);
    assert_true(fd >= 0);
    size_t cap = 1 << 20;
    char *data = malloc(cap);
    assert_non_null(data);
    ssize_t n;
    *len = 0;
    while ((n = read(fd, data + *len, cap - 1 - *len)) > 0)
        *len += (size_t)n;
    close(fd);
    data[*len] = '\0';
    return data;
}

/* Send `head` (in two reads, cut at `cut` when it is not 0: a line longer than the
 * partial-flush size then reaches the spool in pieces) and `rest`; check that -D holds
 * at the :after_received:, :at_start_rfc: and end-of-header offsets the text in want[]
 * ("" for the end of -D). */
static void check_landmarks(struct harness *h, const char *head, size_t cut,
                            const char *const want[3])
{
    feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n");
    if (cut)
        assert_string_equal(feed_n(h, head, cut), "");
    const char *r = feed(h, head + cut);
    if (strncmp(r, "250 2.0.0 OK id=", 16) != 0)
        fail_msg("message \"%.30s\" got \"%s\"", head, r);
    char id[SPOOL_ID_LEN + 1], err[256];
    snprintf(id, sizeof id, "%.*s", SPOOL_ID_LEN, r + 16);
    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    assert_true(spool_read_envelope(&arena, id, &env, err, sizeof err));
    size_t dlen;
    char *data = read_data_file(id, &dlen);
    assert_int_equal(env.added_header_groups, 4);
    for (int i = 0; i < 3; i++) {
        int64_t at = env.added_headers[i + 1].at;
        assert_true(at > 0 && (size_t)at <= dlen);
        if (strncmp(data + at, want[i], strlen(want[i])) != 0 ||
            (!want[i][0] && (size_t)at != dlen))
            fail_msg("placement %d: at %lld of %zu, \"%.20s\", want \"%s\"", i + 1, (long long)at,
                     dlen, data + at, want[i]);
    }
    free(data);
    arena_reset(&arena);
    spool_remove(id);
}

/* The landmarks in odd header sections: Resent- before Received:, no blank line, no
 * header, bare LF line ends, dot-stuffing, and header lines long enough to be stored in
 * pieces. */
static void test_placement_landmarks(void **state)
{
    struct harness *h = *state;
    start(h);
    feed(h, "EHLO client\r\n");
    const char *const resent_first[] = {"Resent-Date: x", "Subject: s", "\r\nb"};
    check_landmarks(h, "Resent-Date: x\r\nReceived: y\r\nSubject: s\r\n\r\nb\r\n.\r\n", 0,
                    resent_first);
    const char *const no_blank[] = {"Subject: s", "Subject: s", ""};
    check_landmarks(h, "Subject: s\r\n.\r\n", 0, no_blank);
    const char *const no_header[] = {"just text", "just text", "just text"};
    check_landmarks(h, "just text\r\nSubject: no\r\n\r\nx\r\n.\r\n", 0, no_header);
    const char *const empty_header[] = {"\r\nbody", "\r\nbody", "\r\nbody"};
    check_landmarks(h, "\r\nbody\r\n.\r\n", 0, empty_header);
    const char *const bare_lf[] = {"Resent-To: r", "Subject: s", "\r\nbody"};
    check_landmarks(h, "Received: a\n\tb\nResent-To: r\nSubject: s\n\nbody\r\n.\r\n", 0, bare_lf);
    const char *const stuffed[] = {".Received: z", ".Received: z", "\r\n..b"};
    check_landmarks(h, "Received: a\r\n..Received: z\r\n\r\n...b\r\n.\r\n", 0, stuffed);
    /* a Received: line of 100000 bytes, its first 70000 in one read (stored before its
     * end arrives), and a long Subject: */
    size_t big = 100000;
    char *head = malloc(3 * big);
    assert_non_null(head);
    int n = snprintf(head, 3 * big, "Received: %0*d\r\nSubject: %0*d\r\n\r\nbody\r\n.\r\n",
                     (int)big, 0, (int)big, 0);
    assert_true(n > 0 && (size_t)n < 3 * big);
    const char *const long_lines[] = {"Subject: 000", "Subject: 000", "\r\nbody"};
    check_landmarks(h, head, 70000, long_lines);
    free(head);
}

/* -bh: a multi-line added header is traced on one line, its newline escaped. */
static void test_trace_keeps_reply_framing(void **state)
{
    struct harness *h = *state;
    h->s->test_mode = true;
    assert_int_equal(session_start(h->s), SESSION_CONTINUE);
    assert_non_null(strstr(h->s->out.data, "\r\n220 "));
    buf_clear(&h->s->out);
    feed(h, "EHLO client\r\n");
    feed(h, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n");
    const char *r = feed(h, "Subject: h\r\n\r\nbody\r\n.\r\n");
    assert_non_null(strstr(r, ">>> add_header: X-Data: "));
    assert_non_null(strstr(r, "\\n\tcontinued\r\n"));
    for (const char *p = strchr(r, '\n'); p; p = strchr(p + 1, '\n'))
        assert_true(p > r && p[-1] == '\r');
}

int main(void)
{
    if (!test_tmpdir(dir, sizeof dir, "session-lifetime")) {
        perror("mkdtemp");
        return 1;
    }
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/spool", dir);
    if (!spool_init(path, 64, err, sizeof err)) {
        fprintf(stderr, "spool_init: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/%%slog", dir);
    snprintf(mainlog, sizeof mainlog, "%s/mainlog", dir);
    if (!log_configure(path, err, sizeof err)) {
        fprintf(stderr, "log_configure: %s\n", err);
        return 1;
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_smtp_command_in_helo_acl),
        T(test_smtp_command_after_resets_in_notquit),
        T(test_smtp_command_after_rset_and_message),
        T(test_acl_m_from_connect_in_vrfy_and_quit),
        T(test_acl_m_reset_points),
        T(test_memory_bounded_over_100000_cycles),
        T(test_overlong_line_continues),
        T(test_placement_landmarks),
        T(test_max_line_at_every_split),
        T(test_data_after_all_rcpts_discarded),
        T(test_added_headers_reach_the_spool),
        T(test_trace_keeps_reply_framing),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    spool_shutdown();
    log_close();
    if (!test_rmtree(dir))
        fprintf(stderr, "cleanup of %s failed\n", dir);
    return rc;
}
