"""test_prdr.py - PRDR (per-recipient data responses): swaks --prdr as the real client,
the raw dialogue (353, one reply per recipient, final reply), single-recipient messages
(no PRDR), and a DATA ACL that refuses after the per-recipient 250s."""

import re

import postern_harness as h

PRDR_ACL = """\
acl_check_prdr:
  defer   local_parts = tmp
          message     = try later, $local_part
  deny    local_parts = bad
          message     = no thanks, $local_part@$domain
  accept

acl_check_data:
  deny    senders = spammer@example.org
          message = data refused
  accept
"""


def prdr_server(factory):
    return factory(main={"prdr_enable": "true", "acl_smtp_data_prdr": "acl_check_prdr",
                         "acl_smtp_data": "acl_check_data"},
                   acl=PRDR_ACL).start()


def test_swaks_prdr_mixed_results(postern_factory):
    p = prdr_server(postern_factory)
    r = h.swaks(p.port, "--prdr", "--to", "good@localhost,tmp@localhost,bad@localhost",
                "--from", "s@example.org", "--helo", "client.example", "--body", "prdr body")
    out = r.stdout
    # (swaks exits non-zero when some recipient was refused: judge by the dialogue)
    assert "-> DATA" in out, out + r.stderr
    assert re.search(r"^<-\s+250[- ]PRDR", out, re.M), out
    assert re.search(r"^<-\s+250 .*PRDR Requested", out, re.M), out
    after_dot = out.split("\n -> .\n", 1)[1] if "\n -> .\n" in out else out
    replies = re.findall(r"^<[-~*]{1,2}\s+(\d{3}) (.*)$", after_dot, re.M)
    codes = [c for c, _ in replies]
    assert codes[:5] == ["353", "250", "450", "550", "250"], replies
    assert "try later, tmp" in replies[2][1]
    assert "no thanks, bad@localhost" in replies[3][1]
    assert "accepted for some recipients" in replies[4][1], replies[4]
    msgid = h.msgid_of(replies[4][1])
    p.wait_completed(msgid)
    assert len(p.maildir("good")) == 1 and b"prdr body" in p.maildir("good")[0]
    assert p.maildir("tmp") == [] and p.maildir("bad") == []
    log = p.mainlog()
    assert len(re.findall(r"^.* %s => " % msgid, log, re.M)) == 1, log
    rej = p.log("reject")
    assert "PRDR" in rej and "tmp@localhost" in rej and "bad@localhost" in rej, rej


def _prdr_transaction(c, rcpts, sender="s@example.org"):
    text = c.expect("EHLO client.example", 250)
    assert re.search(r"^250[- ]PRDR$", text, re.M), text
    assert "PRDR Requested" in c.expect("MAIL FROM:<%s> PRDR" % sender, 250)
    for r in rcpts:
        c.expect("RCPT TO:<%s>" % r, 250)
    c.expect("DATA", 354)
    c.send("Subject: prdr\r\n\r\nper recipient\r\n.\r\n")


def test_raw_prdr_dialogue(postern_factory):
    p = prdr_server(postern_factory)
    c = p.connect()
    _prdr_transaction(c, ["bad@localhost", "good@localhost", "tmp@localhost",
                          "good2@localhost"])
    first = c.reply()
    assert first[0] == 353, first
    per = [c.reply() for _ in range(4)]
    assert [x[0] for x in per] == [550, 250, 450, 250], per
    assert "no thanks, bad@localhost" in per[0][1]
    final = c.reply()
    assert final[0] == 250 and "accepted for some recipients" in final[1], final
    c.expect("QUIT", 221)
    p.wait_completed(h.msgid_of(final[1]))
    assert len(p.maildir("good")) == 1 and len(p.maildir("good2")) == 1
    assert p.maildir("bad") == [] and p.maildir("tmp") == []


def test_prdr_all_refused(postern_factory):
    p = prdr_server(postern_factory)
    c = p.connect()
    _prdr_transaction(c, ["bad@localhost", "tmp@localhost"])
    assert c.reply()[0] == 353
    assert [c.reply()[0] for _ in range(2)] == [550, 450]
    final = c.reply()
    assert final[0] in (450, 550), final
    assert "OK id=" not in final[1]
    c.expect("NOOP", 250)
    assert p.all_delivered() == []


def test_single_recipient_prdr_is_plain(postern_factory):
    p = prdr_server(postern_factory)
    c = p.connect()
    _prdr_transaction(c, ["good@localhost"])
    code, text = c.reply()
    assert code == 250 and "OK id=" in text, text
    assert "accepted for some" not in text
    c.expect("NOOP", 250)  # nothing else was sent after the single reply
    p.wait_completed(h.msgid_of(text))
    # single recipient: the PRDR ACL does not run, so even "bad" is accepted here
    c2 = p.connect()
    _prdr_transaction(c2, ["bad@localhost"])
    code, text = c2.reply()
    assert code == 250, text
    p.wait_completed(h.msgid_of(text))
    assert len(p.maildir("bad")) == 1


def test_data_acl_deny_after_prdr_acceptances(postern_factory):
    p = prdr_server(postern_factory)
    c = p.connect()
    _prdr_transaction(c, ["good@localhost", "good2@localhost"], sender="spammer@example.org")
    assert c.reply()[0] == 353
    assert [c.reply()[0] for _ in range(2)] == [250, 250]
    final = c.reply()
    assert final[0] == 550 and "data refused" in final[1], final
    c.expect("QUIT", 221)
    assert p.all_delivered() == []
    p.wait_log(r"F=<spammer@example\.org> rejected after DATA: data refused", name="reject")
    assert " <= spammer@example.org" not in p.mainlog()
