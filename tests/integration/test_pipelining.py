"""test_pipelining.py - PIPELINING (RFC 2920) and the synchronization checks: pipelined
groups answered in order, talking before the banner, data before the 354, pipelining
without EHLO; and 100 parallel sessions of 5 messages each, all delivered exactly once."""

import re
import smtplib
import threading

import postern_harness as h


def test_pipelined_group_replies_in_order(postern):
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    c.send("MAIL FROM:<p@example.org>\r\nRCPT TO:<one@localhost>\r\n"
           "RCPT TO:<nobody@elsewhere.example>\r\nRCPT TO:<two@localhost>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354], codes
    c.send("Subject: piped\r\n\r\npipelined body\r\n.\r\nQUIT\r\n")
    code, text = c.reply()
    assert code == 250, text
    assert c.reply()[0] == 221
    msgid = h.msgid_of(text)
    postern.wait_completed(msgid)
    assert len(postern.maildir("one")) == 1 and len(postern.maildir("two")) == 1


def test_whole_transaction_after_354_in_one_send(postern):
    # data, end of data and the next commands all in one segment
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    c.send("MAIL FROM:<p@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n")
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
    c.send("Subject: a\r\n\r\nA\r\n.\r\nMAIL FROM:<p@example.org>\r\nRCPT TO:<u@localhost>\r\n"
           "DATA\r\n")
    replies = [c.reply() for _ in range(4)]
    assert [r[0] for r in replies] == [250, 250, 250, 354], replies
    c.send("Subject: b\r\n\r\nB\r\n.\r\n")
    code, text = c.reply()
    assert code == 250
    postern.wait_completed(h.msgid_of(text))
    postern.wait_completed(h.msgid_of(replies[0][1]))
    assert len(postern.maildir("u")) == 2


def _sync_config():
    # A short delay in the connect ACL makes "client spoke before the banner" certain.
    return dict(main={"acl_smtp_connect": "acl_connect"},
                acl="acl_connect:\n  accept delay = 1s\n")


def test_talk_before_banner_is_sync_error(postern_factory):
    p = postern_factory(**_sync_config()).start()
    c = p.connect(banner=False)
    c.send("EHLO early.example\r\n")
    out = c.read_until_close(timeout=5)
    assert re.search(r"^554 .*SMTP synchronization error", out, re.M), out
    assert not re.search(r"^250", out, re.M), "EHLO was answered: %r" % out
    p.wait_log(r"SMTP protocol synchronization error \(input sent without waiting for greeting\)",
               name="reject")


def test_data_before_354_is_sync_error(postern):
    c = postern.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<p@example.org>", 250)
    c.expect("RCPT TO:<u@localhost>", 250)
    c.send("DATA\r\nSubject: too soon\r\n\r\nbody\r\n.\r\n")
    out = c.read_until_close(timeout=5)
    assert re.search(r"^554 .*SMTP synchronization error", out, re.M), out
    assert not re.search(r"^354", out, re.M), out
    assert postern.maildir("u") == []
    postern.wait_log(r"synchronization error.*next input sent too soon", name="reject")


def test_pipelining_after_helo_is_sync_error(postern):
    c = postern.connect()
    c.expect("HELO client.example", 250)
    c.send("MAIL FROM:<p@example.org>\r\nRCPT TO:<u@localhost>\r\n")
    out = c.read_until_close(timeout=5)
    assert re.search(r"^554 .*SMTP synchronization error", out, re.M), out
    postern.wait_log(r"pipelining was not advertised", name="reject")


def test_100_parallel_sessions_500_messages(postern_factory):
    p = postern_factory(main={"smtp_worker_threads": "4", "queue_run_max": "4"}).start()
    sessions, per_session = 100, 5
    ids = {}
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(sessions)

    def client(n):
        try:
            with smtplib.SMTP("127.0.0.1", p.port, local_hostname="c%d.example" % n,
                              timeout=60) as s:
                code, text = s.ehlo()
                assert code == 250, ("EHLO", code, text)
                barrier.wait(30)
                for k in range(per_session):
                    marker = "m-%03d-%d" % (n, k)
                    msg = ("Subject: %s\r\nX-Marker: %s\r\n\r\nbody of %s\r\n" %
                           (marker, marker, marker)).encode()
                    code, text = s.mail("load@example.org")
                    assert code == 250, ("MAIL", code, text)
                    code, text = s.rcpt("user%d@localhost" % (n % 10))
                    assert code == 250, ("RCPT", code, text)
                    code, text = s.data(msg)
                    assert code == 250, text
                    with lock:
                        ids[marker] = h.msgid_of(text.decode())
        except Exception as e:  # collected and reported below
            with lock:
                errors.append("client %d: %r" % (n, e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert len(ids) == sessions * per_session
    assert len(set(ids.values())) == len(ids), "duplicate message ids"

    def delivered():
        return p.all_delivered() if len(p.all_delivered()) >= len(ids) else None
    h.wait_until(delivered, timeout=90, interval=0.5, what="500 deliveries")
    found = {}
    for user, m in p.all_delivered():
        mk = re.search(rb"X-Marker: (m-\d{3}-\d)", m)
        assert mk, m[:200]
        found.setdefault(mk.group(1).decode(), []).append(user)
    assert set(found) == set(ids)
    dups = {k: v for k, v in found.items() if len(v) != 1}
    assert not dups, "delivered more than once: %r" % list(dups.items())[:5]
    for marker, users in found.items():
        assert users[0] == "user%d" % (int(marker[2:5]) % 10)
