"""test_cli.py - the one-shot command line modes: -bh (test session with ACL trace,
nothing queued), -bs (SMTP on stdin/stdout, delivered), -bp (queue listing in Exim's
format) and -q (one queue run), -bV (version, and a check of the whole configuration)."""

import os
import re

import postern_harness as h
from postern_harness import MSGID_RE

SESSION = (b"EHLO cli.example\r\n"
           b"MAIL FROM:<cli@example.org>\r\n"
           b"RCPT TO:<user@localhost>\r\n"
           b"DATA\r\n"
           b"Subject: from stdin\r\n\r\nstdin body\r\n.\r\n"
           b"QUIT\r\n")

HOLD_ROUTER = """\
.ifdef HOLD
hold_everything:
  driver = redirect
  allow_defer
  data = :defer: held for the test
.endif
""" + h.DEFAULT_ROUTERS

TRACE_ACL = """\
acl_check_rcpt:
  deny    hosts   = 192.0.2.99
          message = go away
  accept  domains = +local_domains
  deny    message = relay not permitted
"""


def spool_files(p):
    d = p.path("spool", "input")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_bh_traces_and_queues_nothing(tmp_path):
    p = h.Postern(tmp_path, rcpt_acl=TRACE_ACL)
    r = p.run("-bh", "192.0.2.1", input=SESSION)
    out = r.stdout.decode().replace("\r\n", "\n")
    assert r.returncode == 0, r.stderr
    assert re.search(r'^>>> using ACL "acl_check_rcpt"$', out, re.M), out
    assert re.search(r"^>>> check hosts = 192\.0\.2\.99$", out, re.M), out
    assert re.search(r'^>>> accept: condition test succeeded in ACL "acl_check_rcpt"$', out,
                     re.M), out
    assert re.search(r"^250 .*OK id=", out, re.M), out
    assert re.search(r"^221 ", out, re.M), out
    assert "[192.0.2.1]" in out  # the EHLO greeting names the pretend host
    assert [f for f in spool_files(p) if f.endswith("-H") or f.endswith("-D")] == []
    assert p.all_delivered() == []
    assert " <= " not in p.mainlog()
    # the ACL sees the pretend address
    r = p.run("-bh", "192.0.2.99", input=SESSION)
    out = r.stdout.decode()
    assert re.search(r"^550 .*go away", out, re.M), out
    assert not re.search(r"^250 .*OK id=", out, re.M), out


def test_bs_delivers(tmp_path):
    p = h.Postern(tmp_path)
    r = p.run("-bs", input=SESSION)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert out.startswith("220 "), out
    m = re.search(r"^250 .*OK id=(%s)" % MSGID_RE, out, re.M)
    assert m, out
    msgid = m.group(1)
    msgs = p.maildir("user")
    assert len(msgs) == 1 and b"stdin body" in msgs[0]
    log = p.mainlog()
    assert re.search(r"%s <= cli@example\.org .*P=local-esmtp" % msgid, log), log
    assert re.search(r"%s Completed" % msgid, log), log


def test_bp_lists_deferred_and_q_delivers(tmp_path):
    p = h.Postern(tmp_path, routers=HOLD_ROUTER)
    r = p.run("-DHOLD=1", "-bs", input=SESSION.replace(
        b"RCPT TO:<user@localhost>\r\n",
        b"RCPT TO:<user@localhost>\r\nRCPT TO:<other@localhost>\r\n"))
    out = r.stdout.decode()
    msgid = re.search(r"^250 .*OK id=(%s)" % MSGID_RE, out, re.M).group(1)
    assert p.all_delivered() == []
    assert re.search(r"%s == user@localhost .*held for the test" % msgid, p.mainlog()), \
        p.mainlog()
    r = p.run("-bp", check=True)
    listing = r.stdout.decode()
    # Exim's format: age, size, id, <sender>, then the recipients indented, blank line
    m = re.search(r"^ *(\d+[smhdw]) +([\d.]+[KM]?) (%s) <cli@example\.org>\n"
                  r"((?: +\S+\n)+)\n" % msgid, listing, re.M)
    assert m, listing
    assert sorted(m.group(4).split()) == ["other@localhost", "user@localhost"], listing

    # without HOLD the queue run delivers it
    r = p.run("-q", check=True)
    msgs = p.maildir("user")
    assert len(msgs) == 1 and b"stdin body" in msgs[0]
    assert len(p.maildir("other")) == 1
    assert re.search(r"%s Completed" % msgid, p.mainlog())
    assert p.run("-bp", check=True).stdout.strip() == b""


def test_bV():
    import subprocess
    r = subprocess.run([h.postern_bin(), "-bV"], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert re.match(r"postern version \S+", out), out
    assert "PROXY" in out and "PRDR" in out
    # no -C: the default (embedded) configuration is read and checked too
    assert "Configuration file is <embedded>" in out, out


def test_bV_checks_the_whole_config(tmp_path):
    """-bV -C file reads and checks everything (main options, ACLs, routers, transports)
    and exits non-zero with file:line and the word, as exim -bV does."""
    p = h.Postern(tmp_path)
    r = p.run("-bV")
    assert r.returncode == 0, r.stderr
    assert "Configuration file is %s" % p.conf in r.stdout.decode()

    def line_of(text, needle):
        return text.split("\n").index(next(l for l in text.split("\n") if needle in l)) + 1

    bad = {
        "main": h.build_config(p.tmp, p.port, main={"smtp_bogus_option": "1"}),
        "acl": h.build_config(p.tmp, p.port, rcpt_acl="acl_check_rcpt:\n"
                              "  accept  frobnicate = yes\n"),
        "router": h.build_config(p.tmp, p.port, routers=h.DEFAULT_ROUTERS +
                                 "  verify_sender = false\n"),
        "transport": h.build_config(p.tmp, p.port, transports=h.DEFAULT_TRANSPORTS +
                                    "  event_action = ${run{/bin/true}}\n"),
        "macro": h.build_config(p.tmp, p.port, head=".ifdef NEVER\n"),
    }
    words = {"main": "smtp_bogus_option", "acl": "frobnicate", "router": "verify_sender",
             "transport": "event_action", "macro": ".ifdef"}
    for what, text in bad.items():
        p.write_config(text)
        r = p.run("-bV")
        err = r.stderr.decode()
        assert r.returncode != 0, (what, r.stdout, err)
        if what == "macro":  # the missing .endif is found at the end of the file
            assert "%s:" % p.conf in err and "endif" in err, (what, err)
            continue
        line = line_of(text, words[what])
        assert "%s:%d:" % (p.conf, line) in err, (what, err)
        assert words[what] in err, (what, err)
    for what in ("router", "transport"):
        p.write_config(bad[what])
        assert "not supported yet" in p.run("-bV").stderr.decode(), what
    # a -D macro that makes the config valid again is honoured by -bV
    p.write_config(h.build_config(p.tmp, p.port, head=".ifdef BAD\nbogus_option = 1\n.endif\n"))
    assert p.run("-bV").returncode == 0
    r = p.run("-DBAD=1", "-bV")
    assert r.returncode != 0 and "bogus_option" in r.stderr.decode()
