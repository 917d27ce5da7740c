"""test_smtp_basic.py - the SMTP dialogue of the real daemon: delivery end to end (swaks,
smtplib), the simple commands, command ordering, syntax errors, size and recipient
limits, dot-stuffing and the bare-LF end-of-data rules."""

import re
import smtplib

import postern_harness as h
from postern_harness import MSGID_RE


def test_swaks_delivers_to_maildir_and_logs(postern):
    r = h.swaks(postern.port, "--to", "user@localhost", "--from", "sender@example.org",
                "--helo", "client.example", "--header", "Subject: basic test",
                "--body", "hello from the integration suite")
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"<-\s+250 .*OK id=(%s)" % MSGID_RE, r.stdout)
    assert m, r.stdout
    msgid = m.group(1)
    postern.wait_completed(msgid)
    msgs = postern.maildir("user")
    assert len(msgs) == 1
    msg = msgs[0]
    assert b"hello from the integration suite" in msg
    assert b"Subject: basic test" in msg
    assert msg.startswith(b"Received:") or b"\nReceived:" in msg
    assert msgid.encode() in msg  # the Received: header names the id
    log = postern.mainlog()
    assert re.search(r"^\S+ \S+ %s <= sender@example\.org H=\(client\.example\) \[127\.0\.0\.1\] "
                     r"P=esmtp S=\d+" % msgid, log, re.M), log
    # Exim's form for a local delivery: "=> local_part <address> R=router T=transport"
    assert re.search(r"^\S+ \S+ %s => user <user@localhost> R=local_user T=local_maildir$" %
                     msgid, log, re.M), log
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d %s Completed$" % msgid, log, re.M), log


def test_smtplib_multiple_recipients(postern):
    with smtplib.SMTP("127.0.0.1", postern.port, local_hostname="client.example",
                      timeout=10) as s:
        refused = s.sendmail("multi@example.org", ["a@localhost", "b@localhost", "c@test.example"],
                             b"Subject: three\r\n\r\none body, three mailboxes\r\n")
        assert refused == {}
    for user in ("a", "b", "c"):
        h.wait_until(lambda: postern.maildir(user), what="delivery to " + user)
        msgs = postern.maildir(user)
        assert len(msgs) == 1 and b"one body, three mailboxes" in msgs[0]
    # one arrival, three deliveries
    postern.wait_log(r" Completed$")
    log = postern.mainlog()
    assert len(re.findall(r" <= multi@example\.org ", log)) == 1
    assert len(re.findall(r" => ([abc]) <\1@(localhost|test\.example)> R=local_user ", log)) == 3


def test_relay_refused(postern):
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<x@example.org>", 250)
    text = c.expect("RCPT TO:<someone@elsewhere.example>", 550)
    assert "relay not permitted" in text
    c.expect("QUIT", 221)


def test_ehlo_keywords_rset_noop_vrfy_help(postern):
    c = postern.connect()
    assert c.banner[0] == 220 and "test.example" in c.banner[1]
    text = c.expect("EHLO client.example", 250)
    for kw in ("SIZE", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES", "HELP"):
        assert re.search(r"^250[- ]%s\b" % kw, text, re.M), text
    assert not re.search(r"^250[- ]PRDR", text, re.M), "PRDR advertised without prdr_enable"
    c.expect("MAIL FROM:<x@example.org>", 250)
    c.expect("RCPT TO:<user@localhost>", 250)
    c.expect("RSET", 250)
    # the transaction is gone: RCPT needs a new MAIL
    c.expect("RCPT TO:<user@localhost>", 503)
    c.expect("NOOP", 250)
    c.expect("VRFY user@localhost", 252)
    c.expect("HELP", 214)
    c.expect("QUIT", 221)
    assert c.closed()


def test_unknown_commands_dropped_after_limit(postern_factory):
    p = postern_factory(main={"smtp_max_unknown_commands": "3"}).start()
    c = p.connect()
    c.expect("EHLO client.example", 250)
    for i in range(3):
        c.expect("FROB %d" % i, 500)
    c.expect("FROB 3", 500)  # one too many: refused and the connection closes
    assert c.closed(), "connection not closed after too many unknown commands"
    p.wait_log(r"too many unrecognized commands")


def test_syntax_errors_501(postern):
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<a\x00b@example.org>", 501)
    c.expect("MAIL FROM:<unterminated@example.org", 501)
    c.expect("MAIL FROM:<two@at@example.org>", 501)
    c.expect("MAIL FROM:<ok@example.org>", 250)
    c.expect("RCPT TO:<user@@localhost>", 501)
    c.expect("RCPT TO:<user@localhost", 501)
    c.expect("RCPT TO:<user@localhost>", 250)
    c.expect("QUIT", 221)


def test_command_order_503(postern):
    c = postern.connect()
    c.expect("MAIL FROM:<x@example.org>", 503)  # before EHLO
    c.expect("EHLO client.example", 250)
    c.expect("RCPT TO:<user@localhost>", 503)  # before MAIL
    c.expect("DATA", 503)  # before MAIL
    c.expect("MAIL FROM:<x@example.org>", 250)
    c.expect("MAIL FROM:<y@example.org>", 503)  # nested MAIL
    c.expect("DATA", 503)  # no valid recipient
    c.expect("RCPT TO:<user@localhost>", 250)
    c.expect("QUIT", 221)


def test_line_too_long(postern):
    # smtp_max_line_length (default 2048): a longer command line is refused with 500 and
    # the session goes on, as in Exim
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    code, text = c.cmd("NOOP " + "A" * 5000)
    assert code == 500 and "too long" in text, text
    assert c.cmd("NOOP")[0] == 250


def test_line_too_long_without_end(postern):
    # the refusal comes before the line's end; the rest of the line, arriving in later
    # segments, is discarded up to its LF and the session goes on
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    c.send("NOOP " + "A" * 5000)  # no CRLF yet
    code, text = c.reply()
    assert code == 500 and "too long" in text, text
    postern.wait_log(r"SMTP command line too long", name="reject")
    c.send("B" * 3000)
    c.send("C" * 10 + "\r\n")
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("QUIT")[0] == 221


def test_message_size_limit(postern_factory):
    p = postern_factory(main={"message_size_limit": "10K"}).start()
    c = p.connect()
    text = c.expect("EHLO client.example", 250)
    assert re.search(r"^250[- ]SIZE 10240\b", text, re.M), text
    # declared too big at MAIL
    c.expect("MAIL FROM:<big@example.org> SIZE=20000", 552)
    # undeclared, too big after the data
    c.expect("MAIL FROM:<big@example.org>", 250)
    c.expect("RCPT TO:<user@localhost>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 300 + b".\r\n")
    code, text = c.reply()
    assert code == 552, text
    # the session goes on; a small message is fine
    msgid = c.send_message("small@example.org", ["user@localhost"], "Subject: small\r\n\r\nok")
    p.wait_completed(msgid)
    msgs = p.maildir("user")
    assert len(msgs) == 1 and b"Subject: small" in msgs[0]


def test_recipients_max(postern_factory):
    p = postern_factory(main={"recipients_max": "3"}).start()
    c = p.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<x@example.org>", 250)
    for i in range(3):
        c.expect("RCPT TO:<u%d@localhost>" % i, 250)
    c.expect("RCPT TO:<u3@localhost>", 452)
    c.expect("DATA", 354)
    c.send(b"Subject: max\r\n\r\nbody\r\n.\r\n")
    msgid = h.msgid_of(c.reply()[1])
    p.wait_completed(msgid)
    assert [len(p.maildir("u%d" % i)) for i in range(4)] == [1, 1, 1, 0]


def test_dot_stuffing_round_trip(postern):
    body = (b"Subject: dots\r\n\r\n"
            b"first\r\n"
            b".leading dot\r\n"
            b"..two dots\r\n"
            b".\ttab after dot\r\n"
            b"last\r\n")
    with smtplib.SMTP("127.0.0.1", postern.port, local_hostname="client.example",
                      timeout=10) as s:
        s.sendmail("dots@example.org", ["dots@localhost"], body)  # smtplib stuffs the dots
    h.wait_until(lambda: postern.maildir("dots"), what="delivery")
    msg = postern.maildir("dots")[0]
    assert b"\nfirst\n.leading dot\n..two dots\n.\ttab after dot\nlast\n" in \
        msg.replace(b"\r\n", b"\n"), msg


def _raw_data(postern, payload, rcpt="user@localhost"):
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<x@example.org>", 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)
    c.send(payload)
    return c


def test_bare_lf_dot_does_not_end_message(postern):
    # A "." line ended by a bare LF, then something that looks like a second
    # transaction: it must all be message text (no smuggled message to victim@).
    smuggle = (b"MAIL FROM:<evil@example.org>\r\n"
               b"RCPT TO:<victim@localhost>\r\n"
               b"DATA\r\n"
               b"Subject: smuggled\r\n\r\nsmuggled text\r\n")
    c = _raw_data(postern, b"Subject: carrier\r\n\r\nline one\r\n.\n" + smuggle)
    # nothing ended yet: the server must still be waiting for data
    assert not c.closed(timeout=1.0) and c.buf == b"", c.buf
    c.send(b"tail\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    msgid = h.msgid_of(text)
    c.expect("QUIT", 221)
    postern.wait_completed(msgid)
    msgs = postern.maildir("user")
    assert len(msgs) == 1
    assert b"smuggled text" in msgs[0] and b"tail" in msgs[0]
    assert postern.maildir("victim") == []
    assert " <= evil@example.org" not in postern.mainlog()


def test_dot_after_bare_lf_line_does_not_end_message(postern):
    # "\n.\r\n": the dot line follows a line ended by a bare LF
    c = _raw_data(postern, b"Subject: lf\r\n\r\nline one\n.\r\nRSET\r\n")
    assert not c.closed(timeout=1.0) and c.buf == b"", c.buf
    c.send(b"more\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    msgid = h.msgid_of(text)
    postern.wait_completed(msgid)
    msg = postern.maildir("user")[0]
    assert b"RSET" in msg and b"more" in msg


def test_crlf_dot_crlf_ends_message(postern):
    c = _raw_data(postern, b"Subject: plain\r\n\r\nbody\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    c.expect("NOOP", 250)
    postern.wait_completed(h.msgid_of(text))
    assert len(postern.maildir("user")) == 1
