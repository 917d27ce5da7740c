"""test_session_acl.py - what session ACLs do to a real message through the real daemon:
add_header in the MAIL, RCPT, PREDATA and DATA ACLs reaches the delivered maildir file
at each of Exim's placements (:at_start:, :after_received: past the client's own
Received: lines, :at_start_rfc: past its Resent- lines, the end of the header section by
default or with :at_end:), continuation lines kept; a message whose every RCPT was
accepted by "discard" is taken (250) and thrown away, logged as Exim does; variables and
$smtp_command read in the ACLs that run after the resets that used to free them (the
sanitizer builds fail the test on any use-after-free, via the harness teardown)."""

import re

ADD_HEADER_ACLS = """\
acl_mail:
  warn    add_header = X-Mail-ACL: from $sender_address
          add_header = :after_received:X-After-Mail: 1
  accept
acl_rcpt_h:
  warn    add_header = :at_start:X-Rcpt-ACL: $local_part@$domain
          add_header = :at_start_rfc:X-Rfc-Rcpt: 1
  discard local_parts = discard
  accept  domains = +local_domains
  deny    message = relay not permitted
acl_predata:
  warn    add_header = X-Predata-ACL: $recipients_count recipient(s)
          add_header = :at_start:X-Start-Predata: 1
  accept
acl_data:
  warn    add_header = X-Data-ACL: size $message_size\\n\\tsecond line
  warn    message = X-Warn-Message: from the DATA ACL
  warn    add_header = :after_received:X-After-Data: 1\\n:at_start_rfc:X-Rfc-Data: 1
          add_header = :at_end:X-End-Data: 1
  accept
"""

ADD_HEADER_MAIN = {
    "acl_smtp_mail": "acl_mail",
    "acl_smtp_rcpt": "acl_rcpt_h",
    "acl_smtp_predata": "acl_predata",
    "acl_smtp_data": "acl_data",
}


def test_add_header_in_every_message_acl_reaches_the_maildir(postern_factory):
    p = postern_factory(main=ADD_HEADER_MAIN, acl=ADD_HEADER_ACLS).start()
    c = p.connect()
    c.expect("EHLO client.example", 250)
    client_head = ("Received: from relay.example by client.example;\r\n"
                   "\tMon, 7 Dec 2026 04:00:00 +0000\r\n"
                   "Resent-From: <r@example.org>\r\n"
                   "Subject: headers\r\nFrom: <sender@example.org>\r\n")
    msgid = c.send_message("sender@example.org", ["user@localhost"],
                           client_head + "\r\nbody")
    c.expect("QUIT", 221)
    p.wait_completed(msgid)
    msgs = p.maildir("user")
    assert len(msgs) == 1
    text = msgs[0].decode()
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    # :at_start: before our Received: (each before the ones added earlier, as Exim's
    # spec says), then ours with its continuation lines
    assert lines[:2] == ["X-Start-Predata: 1", "X-Rcpt-ACL: user@localhost"], head
    assert lines[2].startswith("Received: "), head
    i = 3
    while lines[i].startswith(("\t", " ")):
        i += 1
    data_acl = lines.index("\tsecond line") - 1
    assert re.fullmatch(r"X-Data-ACL: size \d+", lines[data_acl]), head
    assert lines[i:] == [
        # the client's Received: (the rest of the block at the top), then :after_received:
        "Received: from relay.example by client.example;",
        "\tMon, 7 Dec 2026 04:00:00 +0000",
        "X-After-Data: 1",
        "X-After-Mail: 1",
        # past the Resent- line: :at_start_rfc:
        "Resent-From: <r@example.org>",
        "X-Rfc-Data: 1",
        "X-Rfc-Rcpt: 1",
        "Subject: headers",
        "From: <sender@example.org>",
        # the end of the header section (the default, and :at_end:), in ACL order
        "X-Mail-ACL: from sender@example.org",
        "X-Predata-ACL: 1 recipient(s)",
        lines[data_acl],
        "\tsecond line",
        "X-Warn-Message: from the DATA ACL",
        "X-End-Data: 1",
    ], head
    assert body == "body\n"


def test_discard_every_rcpt_takes_the_data(postern_factory):
    p = postern_factory(main=ADD_HEADER_MAIN, acl=ADD_HEADER_ACLS).start()
    c = p.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<sender@example.org>", 250)
    c.expect("RCPT TO:<discard@localhost>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: gone\r\n\r\nnobody gets this\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    msgid = re.search(r"id=(\S+)", text).group(1)
    # the session goes on, and a real message after it is delivered
    good = c.send_message("sender@example.org", ["user@localhost"], "Subject: kept\r\n\r\nx")
    c.expect("QUIT", 221)
    p.wait_completed(good)
    p.wait_log(re.escape(msgid) + r" => blackhole \(RCPT ACL discarded recipients\)")
    p.wait_log(re.escape(msgid) + r" Completed")
    p.wait_log(re.escape(msgid) + r" <= sender@example.org ")
    msgs = p.maildir("user")
    assert len(msgs) == 1 and b"Subject: kept" in msgs[0]
    assert not p.maildir("discard")


LIFETIME_ACLS = """\
acl_connect:
  warn    set acl_m0 = connect
  accept
acl_helo:
  warn    logwrite = helo saw $smtp_command m0=$acl_m0
  accept
acl_quit:
  warn    logwrite = quit saw $smtp_command m0=$acl_m0
          set acl_m0 = $acl_m0 quit
  accept
acl_notquit:
  warn    logwrite = notquit saw $smtp_command m0=$acl_m0 reason=$smtp_notquit_reason
  accept
acl_vrfy:
  warn    set acl_m0 = $acl_m0 vrfy
  deny    message = m0=$acl_m0
"""


def test_variables_after_resets(postern_factory):
    p = postern_factory(main={
        "acl_smtp_connect": "acl_connect",
        "acl_smtp_helo": "acl_helo",
        "acl_smtp_quit": "acl_quit",
        "acl_smtp_notquit": "acl_notquit",
        "acl_smtp_vrfy": "acl_vrfy",
    }, acl=LIFETIME_ACLS).start()
    for _ in range(3):  # the release daemon used to die after one or two of these
        c = p.connect()
        code, text = c.cmd("VRFY someone")
        assert code == 252 and "m0=connect vrfy" in text, text
        c.expect("QUIT", 221)
        c.close()
    p.wait_log(r"quit saw QUIT m0=connect vrfy", count=3)
    c = p.connect()
    c.expect("EHLO client.example", 250)
    p.wait_log(r"helo saw EHLO client\.example m0=$")
    c.expect("RSET", 250)
    c.close()
    p.wait_log(r"notquit saw RSET m0= reason=connection-lost")
    c = p.connect()
    c.expect("EHLO client.example", 250)
    code, text = c.cmd("NOOP " + "x" * 3000)
    assert code == 500 and "too long" in text, text
    c.expect("NOOP", 250)
    c.expect("QUIT", 221)
