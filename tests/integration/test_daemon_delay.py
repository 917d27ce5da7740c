"""test_daemon_delay.py - ACL "delay =" suspends the session, not a worker thread: with two
workers and more clients than that inside a 20 s delay, a new client gets its banner and
sends a message at once; the delayed clients get their reply no sooner than the delay,
after the replies before it (pipelined) went out first, as Exim flushes them; a client
that closes during its delay ends the delay, and so does a SIGTERM drain; a -bh session
only traces the delay."""

import re
import threading
import time

import postern_harness as h

DELAY = 20

DELAY_RCPT_ACL = """\
acl_check_rcpt:
  accept  local_parts = slow
          logwrite = DELAYING $sender_host_port
          delay = %ds
  accept  domains = +local_domains
  deny    message = relay not permitted
""" % DELAY


def _delay_server(postern_factory, **main):
    opts = {"smtp_worker_threads": "2", "log_selector": "+smtp_connection +incoming_port"}
    opts.update(main)
    return postern_factory(main=opts, rcpt_acl=DELAY_RCPT_ACL).start()


def test_delay_holds_no_worker(postern_factory):
    p = _delay_server(postern_factory)
    delayed = []
    for i in range(5):  # more than the two workers
        c = p.connect(timeout=DELAY + 15)
        c.expect("EHLO delayed%d.example" % i, 250)
        # pipelined: MAIL's reply goes out before the delay, RCPT's after it
        c.send("MAIL FROM:<d%d@example.org>\r\nRCPT TO:<slow@localhost>\r\n" % i)
        sent = time.monotonic()
        code, text = c.reply()
        assert code == 250, text
        assert time.monotonic() - sent < 5, "MAIL's reply waited for the RCPT delay"
        delayed.append((c, sent))
    p.wait_log(r"DELAYING", count=5)

    # a new client is served at once, while all five wait
    t0 = time.monotonic()
    c = p.connect()
    banner_s = time.monotonic() - t0
    c.expect("EHLO quick.example", 250)
    msgid = c.send_message("q@example.org", ["quick@localhost"], "Subject: quick\r\n\r\nhi")
    c.expect("QUIT", 221)
    served_s = time.monotonic() - t0
    assert banner_s < 2 and served_s < 5, (banner_s, served_s)
    p.wait_completed(msgid)

    results = [None] * len(delayed)

    def finish(i, conn, sent):
        code, text = conn.reply()  # the RCPT reply, after the delay
        results[i] = (code, time.monotonic() - sent)
        conn.expect("QUIT", 221)

    threads = [threading.Thread(target=finish, args=(i, c, s)) for i, (c, s) in enumerate(delayed)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DELAY + 20)
    for code, waited in results:
        assert code == 250
        assert waited >= DELAY - 0.05, "RCPT reply after %.2fs, delay is %ds" % (waited, DELAY)
        assert waited < DELAY + 10, waited


def test_client_closing_ends_its_delay(postern_factory):
    p = _delay_server(postern_factory)
    c = p.connect()
    c.expect("EHLO closer.example", 250)
    c.expect("MAIL FROM:<c@example.org>", 250)
    c.send("RCPT TO:<slow@localhost>\r\n")
    p.wait_log(r"DELAYING")
    port = c.local_port
    t0 = time.monotonic()
    c.close()
    p.wait_log(r"SMTP connection from .*\[127\.0\.0\.1\]:%d lost" % port, timeout=DELAY / 2)
    assert time.monotonic() - t0 < DELAY / 2


def test_delay_in_bh_is_traced_only(postern_factory):
    p = postern_factory(rcpt_acl=DELAY_RCPT_ACL)
    t0 = time.monotonic()
    r = p.run("-bh", "192.0.2.7", input=b"EHLO bh.example\r\nMAIL FROM:<b@example.org>\r\n"
              b"RCPT TO:<slow@localhost>\r\nQUIT\r\n", check=True)
    out = r.stdout.decode()
    assert time.monotonic() - t0 < DELAY / 2, "-bh waited for the delay"
    assert re.search(r"delay of %d000 ms skipped in -bh mode" % DELAY, out), out
    lines = out.splitlines()
    traced = [i for i, l in enumerate(lines) if "skipped in -bh mode" in l][0]
    assert any(l.startswith("250") for l in lines[traced:]), out


def test_sigterm_ends_delays(postern_factory):
    # a drain kicks sessions in a delay like idle ones: the delay ends, the client is told
    p = _delay_server(postern_factory)
    clients = []
    for i in range(3):
        c = p.connect(timeout=DELAY)
        c.expect("EHLO drained%d.example" % i, 250)
        c.expect("MAIL FROM:<s@example.org>", 250)
        c.send("RCPT TO:<slow@localhost>\r\n")
        clients.append(c)
    p.wait_log(r"DELAYING", count=3)
    t0 = time.monotonic()
    assert p.stop() == 0
    assert time.monotonic() - t0 < DELAY / 2, "the drain waited for the delays"
    for c in clients:
        out = c.read_until_close(timeout=5)
        assert re.search(r"^421 .*service shutting down", out, re.M), out
