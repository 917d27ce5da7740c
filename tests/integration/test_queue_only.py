"""test_queue_only.py - queue_only and its family against the real binary: accepted
messages wait in the spool for a queue run (-q) instead of being delivered at once, as
in Exim, with queue_only, -odq, queue_only_file and queue_only_load; -odi/-odb override
them unless queue_only_override is false. The queue they leave is listed by -bp/-bpu in
Exim's format, which Debian's exiqsumm and exiqgrep (exim4-base) read; then -q delivers.

Absence of a delivery is proved by state, never by waiting: -bs delivers before it
exits, so its exit is the end of the story; in the daemon a later message on a single
delivery thread (queue_run_max = 1, first in first out) is delivered and logged, so an
earlier message handed to delivery would have been delivered first.

exim4-base itself is not installed: it pulls in exim4-config, which conflicts with (and
would remove) postfix, which the perf suite needs. Its scripts are fetched and unpacked
as test_eximstats.py does, and run with perl."""

import os
import re
import subprocess

import postern_harness as h
from postern_harness import MSGID_RE
from test_eximstats import exim_tool


def session(sender, rcpts, subject):
    lines = [b"EHLO queue.example", b"MAIL FROM:<%s>" % sender.encode()]
    lines += [b"RCPT TO:<%s>" % r.encode() for r in rcpts]
    lines += [b"DATA", b"Subject: %s\r\n\r\nbody of %s\r\n." % (subject.encode(),
                                                                 subject.encode()), b"QUIT"]
    return b"\r\n".join(lines) + b"\r\n"


def bs(p, *args, sender="a@example.org", rcpts=("user@localhost",), subject="m"):
    """One -bs session (delivery, if any, is finished when it returns); the message id."""
    r = p.run(*(list(args) + ["-bs"]), input=session(sender, rcpts, subject), check=True)
    m = re.search(r"^250 .*OK id=(%s)" % MSGID_RE, r.stdout.decode(), re.M)
    assert m, r.stdout.decode()
    return m.group(1)


def queued_ids(p, *args):
    out = p.run("-bp", *args, check=True).stdout.decode()
    return re.findall(r"^ *\d+[mhd] +[\d.]*[KM]? (%s) <" % MSGID_RE, out, re.M)


def test_odq_and_queue_only_wait_for_q(tmp_path):
    p = h.Postern(tmp_path)
    delivered = bs(p, subject="control")  # without queue_only: delivered at once
    assert len(p.maildir("user")) == 1 and queued_ids(p) == []

    held = bs(p, "-odq", subject="odq")
    assert len(p.maildir("user")) == 1, "-odq delivered at once"
    assert queued_ids(p) == [held]
    assert re.search(r"%s <= a@example\.org" % held, p.mainlog())
    assert not re.search(r"%s (=>|Completed)" % held, p.mainlog())

    p.write_config(main={"queue_only": "true"})
    held2 = bs(p, subject="queue_only")
    assert len(p.maildir("user")) == 1 and queued_ids(p) == [held, held2]
    # -odi overrides queue_only (queue_only_override defaults to true) ...
    now = bs(p, "-odi", subject="odi")
    assert len(p.maildir("user")) == 2 and now not in queued_ids(p)
    # ... but not when queue_only_override is false
    p.write_config(main={"queue_only": "true", "queue_only_override": "false"})
    held3 = bs(p, "-odb", subject="odb")
    assert len(p.maildir("user")) == 2 and queued_ids(p) == [held, held2, held3]
    assert p.run("-bP", "queue_only_override", check=True).stdout == b"no_queue_only_override\n"

    p.run("-q", check=True)
    assert queued_ids(p) == []
    assert len(p.maildir("user")) == 5
    for msgid in (delivered, held, held2, now, held3):
        assert re.search(r"%s Completed" % msgid, p.mainlog()), msgid


def test_queue_only_file_is_checked_per_message(tmp_path):
    hold = tmp_path / "hold-mail"
    p = h.Postern(tmp_path, main={"queue_only_file": "%s : /nonexistent/x" % hold})
    first = bs(p, subject="no file")
    assert len(p.maildir("user")) == 1
    hold.write_text("")
    held = bs(p, subject="file exists")
    assert len(p.maildir("user")) == 1 and queued_ids(p) == [held]
    hold.unlink()
    bs(p, subject="file gone")
    assert len(p.maildir("user")) == 2 and queued_ids(p) == [held]
    assert first not in queued_ids(p)


def test_queue_only_load(tmp_path):
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    p = h.Postern(tmp_path, main={"queue_only_load": "100000"})
    bs(p, subject="low load")
    assert len(p.maildir("user")) == 1
    if load <= 0.0:
        print("load average is 0.00: the queue_only_load = 0 case is skipped")
        return
    p.write_config(main={"queue_only_load": "0"})
    held = bs(p, subject="high load")
    assert len(p.maildir("user")) == 1 and queued_ids(p) == [held]


def test_daemon_queue_only_then_q_run(tmp_path):
    """A daemon with queue_only spools what it accepts; after a reload without it, the
    next message is delivered on the single delivery thread while the earlier one is
    still queued: it was never handed to delivery. Then -q delivers it."""
    main = {"queue_only": "true", "queue_run_max": "1"}
    p = h.Postern(tmp_path, main=main)
    p.start()
    try:
        c = p.connect()
        c.expect("EHLO client.example", 250)
        held = [c.send_message("s%d@example.org" % i, ["user@localhost", "other@test.example"],
                               "Subject: held %d\r\n\r\nheld\r\n" % i) for i in range(3)]
        c.expect("QUIT", 221)
        c.close()
        for msgid in held:
            p.wait_log(r"%s <= " % msgid)
        main["queue_only"] = "false"
        p.write_config(main=main)
        reloads = p.mainlog().count("configuration reloaded")
        p.signal(1)  # SIGHUP
        h.wait_until(lambda: p.mainlog().count("configuration reloaded") > reloads,
                     what="the reload")
        c = p.connect()
        c.expect("EHLO client.example", 250)
        after = c.send_message("late@example.org", ["user@localhost"], "Subject: late\r\n\r\nx")
        c.expect("QUIT", 221)
        c.close()
        p.wait_completed(after)
        log = p.mainlog()
        for msgid in held:
            assert not re.search(r"%s (=>|Completed)" % msgid, log), log
        assert len(p.maildir("user")) == 1
    finally:
        assert p.stop() == 0

    # the queue as exiqsumm and exiqgrep read it
    assert queued_ids(p) == held
    listing = p.run("-bp", check=True).stdout.decode()
    summ = subprocess.run(["perl", exim_tool("exiqsumm")], input=listing, capture_output=True,
                          text=True, timeout=60)
    assert summ.returncode == 0, summ.stderr
    rows = {m.group(5): (int(m.group(1)), m.group(2)) for m in re.finditer(
        r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", summ.stdout, re.M)}
    assert rows.get("localhost", (0,))[0] == 3, summ.stdout
    assert rows.get("test.example", (0,))[0] == 3, summ.stdout
    assert rows.get("TOTAL", (0,))[0] == 6, summ.stdout

    def exiqgrep(*args):
        r = subprocess.run(["perl", exim_tool("exiqgrep"), "-E", h.postern_bin(), "-C", p.conf]
                           + list(args), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert sorted(exiqgrep("-i", "-f", "example.org").split()) == sorted(held)
    assert exiqgrep("-i", "-f", "^<s1@").split() == [held[1]]
    assert exiqgrep("-c", "-r", "other@test").strip().startswith("3 matches out of 3")
    assert exiqgrep("-i", "-o", "86400", "-f", ".") == ""  # none older than a day
    assert sorted(exiqgrep("-i", "-y", "86400", "-f", ".").split()) == sorted(held)
    assert sorted(exiqgrep("-i", "-x", "-f", ".").split()) == sorted(held)  # not frozen
    long = exiqgrep("-f", "s2@")
    assert held[2] in long and "user@localhost" in long and "other@test.example" in long

    r = p.run("-q", check=True)
    assert queued_ids(p) == []
    assert len(p.maildir("user")) == 4 and len(p.maildir("other")) == 3
    for msgid in held:
        assert re.search(r"%s Completed" % msgid, p.mainlog())


def test_bpu_leaves_out_delivered_recipients(tmp_path):
    router = """\
hold_other:
  driver = redirect
  local_parts = other
  allow_defer
  data = :defer: held for the test
""" + h.DEFAULT_ROUTERS
    p = h.Postern(tmp_path, routers=router)
    msgid = bs(p, rcpts=("user@localhost", "other@localhost"))
    full = p.run("-bp", check=True).stdout.decode()
    assert re.search(r"^ +D user@localhost$", full, re.M), full
    assert re.search(r"^ +other@localhost$", full, re.M), full
    undelivered = p.run("-bpu", check=True).stdout.decode()
    assert msgid in undelivered and "user@localhost" not in undelivered, undelivered
    assert re.search(r"^ +other@localhost$", undelivered, re.M), undelivered
