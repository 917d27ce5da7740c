"""test_delivery_paths.py - what reaches the disk (issue 7), against the real daemon:
a quoted local part such as "/../../../../../../tmp/X" and local parts such as ceo/,
/ceo and ceo// are accepted by a plain `accept domains = +local_domains` RCPT ACL (and
get past `deny local_parts = ceo`), but no delivery builds a path from them: each one
fails, the mainlog and the bounce say why, and nothing is written outside mail/<user>.
$local_part is the unquoted local part, so "ceo"@localhost is denied like ceo@localhost."""

import os
import re
import uuid

import postern_harness as h

RCPT_ACL = """\
acl_check_rcpt:
  deny    local_parts = ceo
          message = no mail for the ceo
  accept  domains = +local_domains
  deny    message = relay not permitted
"""


def _files_below(top):
    out = set()
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(root, name), top))
    return out


def _send(p, rcpt):
    c = p.connect()
    c.expect("EHLO client.example", 250)
    msgid = c.send_message("sender@localhost", [rcpt], "Subject: path\r\n\r\nbody\r\n")
    c.expect("QUIT", 221)
    c.close()
    return msgid


def test_unsafe_local_parts_never_reach_a_path(postern_factory):
    p = postern_factory(rcpt_acl=RCPT_ACL).start()
    tag = "postern-escape-" + uuid.uuid4().hex[:12]
    escape = '"/../../../../../../tmp/%s"@localhost' % tag
    relative = '"../../%s"@localhost' % tag
    before = _files_below(p.tmp)
    sent = {}
    for rcpt in (escape, relative, '"."@localhost', '".."@localhost'):
        sent[rcpt] = _send(p, rcpt)
    # swaks as a second, independent client for the slash forms
    for rcpt in ("ceo/@localhost", "/ceo@localhost", "ceo//@localhost"):
        r = h.swaks(p.port, "--from", "sender@localhost", "--to", rcpt, "--h-Subject", "path")
        assert r.returncode == 0, r.stdout + r.stderr
        sent[rcpt] = h.msgid_of(re.findall(r"^<-\s+250 .*id=.*$", r.stdout, re.M)[-1])
    for rcpt, msgid in sent.items():
        p.wait_completed(msgid)
        log = "\n".join(l for l in p.mainlog().splitlines() if " %s " % msgid in l)
        assert "** " + rcpt in log, log
        assert "=> " not in log, log
        assert re.search(r"local part \"[^\"]*\" (contains '/'|is a relative directory name)"
                         r": not used in a file path", log), log

    # nothing outside mail/<user>: not in /tmp, not beside the test directory, no mail/ceo
    for name in (tag, tag + '"', tag.lower(), tag.lower() + '"'):
        assert not os.path.exists(os.path.join("/tmp", name)), name
        assert not os.path.exists(os.path.join(os.path.dirname(p.tmp), name)), name
    assert not os.path.exists(p.path("mail", "ceo"))
    # one bounce per message to the sender (delivered after its message completes), each
    # naming the reason
    h.wait_until(lambda: len(p.maildir("sender")) >= len(sent), what="the bounces")
    bounces = p.maildir("sender")
    assert len(bounces) == len(sent)
    for b in bounces:
        assert b"not used in a file path" in b, b[:2000]
    new = _files_below(p.tmp) - before
    outside = sorted(f for f in new if not re.match(r"(mail/sender|spool|log|daemon\.)", f))
    assert not outside, outside
    assert p.paniclog() == ""


def test_quoted_local_part_is_unquoted_for_acls(postern_factory):
    p = postern_factory(rcpt_acl=RCPT_ACL).start()
    c = p.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<sender@localhost>", 250)
    code, text = c.cmd('RCPT TO:<"ceo"@localhost>')
    assert code == 550 and "no mail for the ceo" in text, text
    code, text = c.cmd("RCPT TO:<ceo@localhost>")
    assert code == 550, text
    c.expect('RCPT TO:<"alice"@localhost>', 250)
    c.expect("DATA", 354)
    c.send(b"Subject: quoted\r\n\r\nbody\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    c.expect("QUIT", 221)
    c.close()
    p.wait_completed(h.msgid_of(text))
    assert len(p.maildir("alice")) == 1
    assert re.search(r"=> alice <\"alice\"@localhost> R=local_user", p.mainlog())
