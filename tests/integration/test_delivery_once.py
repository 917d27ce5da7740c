"""test_delivery_once.py - exactly-once local delivery across kill -9 (issue 7): 8
clients send (up to 150 messages each a round) while the daemon delivers; the daemon is killed with SIGKILL
in the middle, restarted, and killed again, for several rounds. Afterwards every message
that got its 250 is in its mailbox exactly once (no loss, no duplicate), and no message
is delivered twice even if its 250 never arrived. A mail reader moves half of what it
finds from new/ to cur/ between rounds, as a real one would, so a redelivery has to
find earlier deliveries there too. Prints the rounds' counts (including the deliveries
the daemon found already made: the "*>" lines)."""

import os
import re
import threading

import postern_harness as h

CLIENTS = 8
ROUNDS = 6
PER_CLIENT = 150  # messages a client sends in a round at most (bounds the drain)


def _markers(p):
    return h.count_markers(p, ("new", "cur"))


def _read_some(p):
    """A mail reader: move every other message of new/ to cur/ with flags."""
    base = p.path("mail")
    for user in os.listdir(base):
        d = os.path.join(base, user, "new")
        for i, name in enumerate(sorted(os.listdir(d)) if os.path.isdir(d) else []):
            if i % 2 == 0:
                os.rename(os.path.join(d, name), os.path.join(base, user, "cur", name + ":2,S"))


def test_kill9_rounds_deliver_exactly_once(postern_factory):
    p = postern_factory(main={"smtp_worker_threads": "4", "queue_run_max": "2"}).start()
    acked, lock = {}, threading.Lock()
    for round_no in range(ROUNDS):
        stop = threading.Event()
        threads = [threading.Thread(target=h.send_marked_load,
                                    args=(p.port, n, "o-%d" % round_no, acked, lock, stop),
                                    kwargs={"lines": 10, "limit": PER_CLIENT})
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        # kill while deliveries are going on: once 100 more have been logged this round
        start = p.mainlog().count("=> box")
        h.wait_until(lambda: p.mainlog().count("=> box") >= start + 100, timeout=60,
                     interval=0.02, what="round %d deliveries" % round_no)
        p.kill9()
        stop.set()
        for t in threads:
            t.join(15)
        _read_some(p)
        p.start()

    with lock:
        acked = dict(acked)
    h.wait_until(lambda: set(acked) <= set(_markers(p)), timeout=120, interval=0.5,
                 what="all %d acknowledged messages delivered" % len(acked))
    h.wait_until(lambda: p.run("-bp").stdout.strip() == b"", timeout=60, interval=0.5,
                 what="the queue to drain")
    got = _markers(p)
    lost = sorted(set(acked) - set(got))
    duplicated = sorted(m for m, n in got.items() if n > 1)
    log = p.mainlog()
    avoided = len(re.findall(r"^\S+ \S+ \S+ \*> .*already delivered by an earlier attempt$",
                             log, re.M))
    print("exactly-once: %d rounds, %d acknowledged, %d delivered (%d unacknowledged), "
          "%d lost, %d duplicated, %d redeliveries avoided" %
          (ROUNDS, len(acked), len(got), len(set(got) - set(acked)), len(lost),
           len(duplicated), avoided))
    assert len(acked) >= 200, "only %d messages acknowledged" % len(acked)
    assert not lost, "acknowledged but lost: %r" % lost[:10]
    assert not duplicated, "delivered more than once: %r" % [(m, got[m]) for m in duplicated[:10]]
