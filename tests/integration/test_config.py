"""test_config.py - configuration handling of the real binary: errors name file:line and
the offending word and make postern exit 1; -bP; -D macro overrides; .include; SIGHUP
reload (a broken file is refused and the old config keeps serving; a good one changes
behaviour for new connections only); SIGTERM with an idle session (421, quick exit)."""

import os
import re
import signal
import subprocess
import time

import pytest

import postern_harness as h


def _line_of(text, needle):
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            return i
    raise AssertionError("%r not in config" % needle)


def _assert_names(stderr, path, line, word):
    assert re.search(r"%s:%d\b" % (re.escape(os.path.basename(path)), line), stderr), \
        "no %s:%d in %r" % (path, line, stderr)
    assert word in stderr, "no %r in %r" % (word, stderr)


TYPOS = {
    "unknown-option": (dict(main={"smtp_accpet_max": "5"}), "smtp_accpet_max = 5",
                       "smtp_accpet_max"),
    "bad-number": (dict(main={"smtp_accept_max": "lots"}), "smtp_accept_max = lots", "lots"),
    "bad-time": (dict(main={"smtp_receive_timeout": "5parsecs"}), "smtp_receive_timeout",
                 "5parsecs"),
    "bad-bool": (dict(main={"prdr_enable": "maybe"}), "prdr_enable = maybe", "maybe"),
    "unknown-acl-condition": (dict(acl="acl_x:\n  deny  flavour = salty\n"), "flavour = salty",
                              "flavour"),
    "unknown-acl-verb": (dict(acl="acl_x:\n  permit  hosts = *\n"), "permit  hosts", "permit"),
    "unknown-router-driver": (dict(routers="teleporter:\n  driver = teleport\n"),
                              "driver = teleport", "teleport"),
    "unknown-transport-option": (dict(transports=h.DEFAULT_TRANSPORTS +
                                      "\nt:\n  driver = appendfile\n  directroy = /tmp/x\n"),
                                 "directroy", "directroy"),
}


@pytest.mark.parametrize("case", sorted(TYPOS))
def test_config_error_names_file_line_word(tmp_path, case):
    cfg, needle, word = TYPOS[case]
    p = h.Postern(tmp_path, **cfg)
    text = open(p.conf).read()
    line = _line_of(text, needle)
    r = p.run("-bP", "primary_hostname", timeout=10)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    _assert_names(r.stderr.decode(), p.conf, line, word)
    # the daemon refuses to start the same way
    try:
        r = subprocess.run([h.postern_bin(), "-bdf", "-C", p.conf, "-oX", str(p.port)],
                           capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the daemon started with a broken configuration (%s)" % case)
    assert r.returncode == 1
    _assert_names(r.stderr.decode(), p.conf, line, word)


def test_bP_prints_name_equals_value(tmp_path):
    p = h.Postern(tmp_path, main={"smtp_accept_max": "77", "message_size_limit": "10M"})
    r = p.run("-bP", "primary_hostname", "smtp_accept_max", check=True)
    assert r.stdout.decode().splitlines() == ["primary_hostname = test.example",
                                              "smtp_accept_max = 77"]
    r = p.run("-bP", "no_such_option")
    assert r.returncode != 0 and b"no_such_option" in r.stderr
    r = p.run("-bP", check=True)  # everything
    out = r.stdout.decode()
    assert re.search(r"^primary_hostname = test\.example$", out, re.M)
    assert re.search(r"^spool_directory = %s/spool$" % re.escape(p.tmp), out, re.M), out


def test_macro_and_D_override(tmp_path):
    head = "MYHOST = default.example\nLIMIT = 11\n"
    p = h.Postern(tmp_path, head=head, main={"primary_hostname": "MYHOST",
                                             "smtp_accept_max": "LIMIT"})
    r = p.run("-bP", "primary_hostname", "smtp_accept_max", check=True)
    assert r.stdout.decode().splitlines() == ["primary_hostname = default.example",
                                              "smtp_accept_max = 11"]
    r = subprocess.run([h.postern_bin(), "-C", p.conf, "-DMYHOST=override.example",
                        "-D", "LIMIT=22", "-bP", "primary_hostname", "smtp_accept_max"],
                       capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["primary_hostname = override.example",
                                              "smtp_accept_max = 22"]


def test_ifdef_and_include(tmp_path):
    inc = tmp_path / "extra.conf"
    inc.write_text("# included\nsmtp_accept_max = 33\n")
    head = ".include %s\n.ifdef FANCY\nqualify_domain = fancy.example\n.else\n" \
           "qualify_domain = plain.example\n.endif\n" % inc
    p = h.Postern(tmp_path, head=head)
    r = p.run("-bP", "smtp_accept_max", "qualify_domain", check=True)
    assert r.stdout.decode().splitlines() == ["smtp_accept_max = 33",
                                              "qualify_domain = plain.example"]
    r = p.run("-DFANCY=1", "-bP", "qualify_domain", check=True)
    assert r.stdout.decode().strip() == "qualify_domain = fancy.example"
    # an error inside the included file names that file and its line
    inc.write_text("# included\n\nsmtp_accept_max = many\n")
    r = p.run("-bP", "smtp_accept_max")
    assert r.returncode == 1
    _assert_names(r.stderr.decode(), str(inc), 3, "many")


BLOCK_ACL = """\
acl_check_rcpt:
  deny    local_parts = blocked
          message     = blocked by VERSION
  accept  domains = +local_domains
  deny    message = relay not permitted
"""


def test_sighup_reload(postern_factory):
    p = postern_factory(rcpt_acl=BLOCK_ACL.replace("VERSION", "config one")).start()
    old = p.connect()
    old.expect("EHLO old.example", 250)
    old.expect("MAIL FROM:<x@example.org>", 250)
    assert "config one" in old.expect("RCPT TO:<blocked@localhost>", 550)

    # a broken file is refused; the running config keeps serving
    good_text = open(p.conf).read()
    broken = good_text.replace("smtp_worker_threads = 4", "smtp_worker_threads = 4\nbogus_option = 1")
    with open(p.conf, "w") as f:
        f.write(broken)
    line = _line_of(broken, "bogus_option")
    p.expect_panic = True
    p.signal(signal.SIGHUP)
    p.wait_log(r"%s:%d.*bogus_option|bogus_option.*%s:%d" %
               (re.escape(os.path.basename(p.conf)), line, re.escape(os.path.basename(p.conf)),
                line))
    assert "bogus_option" in p.paniclog()
    assert p.proc.poll() is None, "daemon died on a broken reload"
    c = p.connect()
    c.expect("EHLO after.broken", 250)
    c.expect("MAIL FROM:<x@example.org>", 250)
    assert "config one" in c.expect("RCPT TO:<blocked@localhost>", 550)
    c.expect("RSET", 250)
    msgid = c.send_message("x@example.org", ["still@localhost"], "Subject: still\r\n\r\nserving")
    p.wait_completed(msgid)
    c.expect("QUIT", 221)

    # a good new file changes behaviour for new connections
    with open(p.conf, "w") as f:
        f.write(good_text.replace("config one", "config two"))
    p.signal(signal.SIGHUP)
    p.wait_log(r"SIGHUP received: configuration reloaded")
    new = p.connect()
    new.expect("EHLO new.example", 250)
    new.expect("MAIL FROM:<x@example.org>", 250)
    assert "config two" in new.expect("RCPT TO:<blocked@localhost>", 550)
    # the session opened before the reload keeps its snapshot
    assert "config one" in old.expect("RCPT TO:<blocked@localhost>", 550)
    old.expect("QUIT", 221)
    new.expect("QUIT", 221)


def test_sigterm_idle_session_gets_421(postern_factory):
    p = postern_factory().start()
    c = p.connect()
    c.expect("EHLO idle.example", 250)
    busy = p.connect()
    busy.expect("EHLO busy.example", 250)
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    code, text = c.reply()
    assert code == 421, text
    assert c.closed()
    assert busy.reply()[0] == 421
    rc = p.proc.wait(10)
    assert time.monotonic() - t0 < 5.0
    assert rc == 0
    p.wait_log(r"SIGTERM received: daemon terminating")
    # nothing listens any more
    with pytest.raises(ConnectionRefusedError):
        h.SMTPConn(p.port)


def test_sigterm_lets_a_message_finish(postern_factory):
    p = postern_factory().start()
    idle = p.connect()
    idle.expect("EHLO idle.example", 250)
    busy = p.connect()
    busy.expect("EHLO busy.example", 250)
    busy.expect("MAIL FROM:<b@example.org>", 250)
    busy.expect("RCPT TO:<late@localhost>", 250)
    busy.expect("DATA", 354)
    busy.send("Subject: late\r\n\r\nstarted before, ")
    p.signal(signal.SIGTERM)
    assert idle.reply()[0] == 421
    # the shutdown is under way (logged, and the idle session is closed), and the session
    # reading a message may still finish it
    p.wait_log(r"SIGTERM received: daemon terminating")
    assert idle.closed(h.TIMEOUT), "the idle session was not closed after its 421"
    assert p.proc.poll() is None, "the daemon exited with a message still being received"
    busy.send("finished during shutdown\r\n.\r\n")
    code, text = busy.reply()
    assert code == 250, text
    msgid = h.msgid_of(text)
    assert busy.read_until_close(5).startswith("421"), "no 421 after the message"
    rc = p.proc.wait(15)
    assert rc == 0
    # accepted means kept: delivered already, or spooled for the next start
    delivered = any(b"finished during shutdown" in m for m in p.maildir("late"))
    spooled = os.path.exists(p.path("spool", "input", msgid + "-H"))
    assert delivered or spooled, "message %s neither delivered nor spooled" % msgid
