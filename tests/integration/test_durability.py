"""test_durability.py - the 250 after DATA is a promise: kill -9 the daemon while 20
clients send continuously; after a restart every acknowledged message is delivered
(complete, from the maildir), the crashed spool lists cleanly with -bp, and the queue
drains to empty."""

import re
import threading

import postern_harness as h

CLIENTS = 20


def _sender(p, n, acked, lock, stop):
    h.send_marked_load(p.port, n, "d", acked, lock, stop)


def test_kill9_loses_no_acknowledged_message(postern_factory):
    p = postern_factory(main={"smtp_worker_threads": "4", "queue_run_max": "2"}).start()
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    threads = [threading.Thread(target=_sender, args=(p, n, acked, lock, stop))
               for n in range(CLIENTS)]
    for t in threads:
        t.start()
    # kill once a load is in flight: enough acknowledged messages (a state, not a time)
    h.wait_until(lambda: len(acked) >= 200, timeout=60, what="200 acknowledged messages")
    p.kill9()
    stop.set()
    for t in threads:
        t.join(15)
    with lock:
        acked = dict(acked)
    assert len(acked) >= 200, "only %d messages acknowledged" % len(acked)

    # The crashed spool lists cleanly: every -H present parses.
    r = p.run("-bp")
    assert r.returncode == 0, r.stderr
    listing = r.stdout.decode()
    assert "spool read error" not in listing, listing
    listed = set(re.findall(r"^\s*\d+[smhdw]\s+\S+\s+(%s) <" % h.MSGID_RE, listing, re.M))
    delivered_before = set(re.findall(r"^\S+ \S+ (%s) Completed$" % h.MSGID_RE,
                                      p.mainlog(), re.M))

    p.start()

    def found():
        return h.count_markers(p)
    h.wait_until(lambda: set(acked) <= set(found()), timeout=60, interval=0.5,
                 what="all %d acknowledged messages delivered" % len(acked))
    got = found()
    lost = sorted(set(acked) - set(got))
    assert not lost, "acknowledged but lost: %r" % lost[:10]
    assert sum(1 for m in acked if m in got) == len(acked)
    # each acknowledged marker sits in the right mailbox with the id its 250 named
    by_marker = {}
    for user, m in p.all_delivered():
        marker = re.search(rb"X-Marker: (d-\d{2}-\d{5})", m).group(1).decode()
        ids = set(re.findall(rb"\bid (%s)" % h.MSGID_RE.encode(), m))
        by_marker.setdefault(marker, []).append((user, ids))
    for marker, msgid in acked.items():
        box = "box%d" % (int(marker[2:4]) % 4)
        assert any(u == box and msgid.encode() in ids for u, ids in by_marker[marker]), \
            (marker, msgid, by_marker[marker])
    # nothing half-written stays behind: the queue drains to empty, and every message
    # that was in the crashed spool was delivered after the restart
    h.wait_until(lambda: p.run("-bp").stdout.strip() == b"", timeout=30, interval=0.5,
                 what="the queue to drain")
    completed = set(re.findall(r"^\S+ \S+ (%s) Completed$" % h.MSGID_RE, p.mainlog(), re.M))
    assert listed <= completed | delivered_before, \
        sorted(listed - completed - delivered_before)[:10]
