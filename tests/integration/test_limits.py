"""test_limits.py - connection limits and idle sessions: smtp_accept_max,
smtp_accept_max_per_host (set, and its default), smtp_receive_timeout, and 2,000 idle
connections held open
while another client sends mail, with the daemon's thread count staying small."""

import resource
import select
import smtplib
import socket
import time

import postern_harness as h


def test_smtp_accept_max(postern_factory):
    p = postern_factory(main={"smtp_accept_max": "5"}).start()
    held = [p.connect() for _ in range(5)]
    assert all(c.banner[0] == 220 for c in held)
    extra = p.connect()
    assert extra.banner[0] == 421, extra.banner
    assert extra.closed()
    p.wait_log(r"refused: too many connections")
    # a slot frees up: a new connection is served again
    held.pop().expect("QUIT", 221)

    def served():
        c = p.connect()
        ok = c.banner[0] == 220
        c.close()
        return ok
    h.wait_until(served, what="a free slot after one QUIT")
    for c in held:
        c.close()


def test_smtp_accept_max_per_host(postern_factory):
    p = postern_factory(main={"smtp_accept_max_per_host": "2"}).start()
    a, b = p.connect(), p.connect()
    assert a.banner[0] == 220 and b.banner[0] == 220
    third = p.connect()
    assert third.banner[0] == 421, third.banner
    assert third.closed()
    other = p.connect(source="127.0.0.2")  # another host has its own count
    assert other.banner[0] == 220
    p.wait_log(r"refused: too many connections from that IP address")
    for c in (a, b, other):
        c.expect("QUIT", 221)


def test_smtp_receive_timeout(postern_factory):
    p = postern_factory(main={"smtp_receive_timeout": "2s"}).start()
    c = p.connect()
    c.expect("EHLO idle.example", 250)
    t0 = time.monotonic()
    code, text = c.reply()  # nothing sent: wait for the server
    waited = time.monotonic() - t0
    assert code == 421 and "timeout" in text, text
    assert 1.5 <= waited <= 6.0, "timed out after %.1fs" % waited
    assert c.closed()
    p.wait_log(r"SMTP command timeout on connection from (H=)?\(idle\.example\) \[127\.0\.0\.1\]")
    # (a session whose lines come in time is not timed out: test_timeouts.py)


def test_default_per_host_limit(postern_factory):
    # unset, smtp_accept_max_per_host is 100 for a direct client...
    p = postern_factory().start()
    held = [p.connect(source="127.0.0.5") for _ in range(100)]
    assert all(c.banner[0] == 220 for c in held)
    extra = p.connect(source="127.0.0.5")
    assert extra.banner[0] == 421 and "from this IP address" in extra.banner[1], extra.banner
    assert p.connect(source="127.0.0.6").banner[0] == 220  # another host is served
    for c in held:
        c.close()


def test_default_per_host_limit_spares_proxy_hosts(postern_factory):
    # ...and none for a host in proxy_required_hosts (a load balancer carries many clients)
    p = postern_factory(main={"proxy_required_hosts": "127.0.0.7",
                              "proxy_protocol_timeout": "30s"}).start()
    held = []
    for _ in range(110):
        c = h.SMTPConn(p.port, source="127.0.0.7", banner=False)
        c.send("PROXY TCP4 192.0.2.1 192.0.2.2 1000 25\r\n")
        held.append(c)
    for c in held:
        assert c.reply()[0] == 220
    for c in held:
        c.close()


def test_2000_idle_connections_cost_no_threads(postern_factory):
    idle = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = idle + 500
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need, "cannot raise RLIMIT_NOFILE"
    p = postern_factory(nofile=idle + 1000,
                        main={"smtp_accept_max": "2100", "smtp_worker_threads": "4",
                              "smtp_accept_max_per_host": "0"}).start()
    socks = []
    try:
        for i in range(idle):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind(("127.0.0.%d" % (2 + i % 4), 0))
            s.connect(("127.0.0.1", p.port))
            socks.append(s)
        # every idle connection got its banner
        by_fd = {s.fileno(): s for s in socks}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        got = {}
        pending = set(by_fd)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(1000):
                got[fd] = got.get(fd, b"") + by_fd[fd].recv(4096)
                if b"\n" in got[fd]:
                    pending.discard(fd)
                    poller.unregister(fd)
        assert not pending, "%d idle connections got no banner" % len(pending)
        assert all(v.startswith(b"220 ") for v in got.values())
        threads_idle = p.threads()
        assert threads_idle < 100, "%d threads with %d idle sessions" % (threads_idle, idle)
        # another client sends 20 messages meanwhile
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="busy.example", timeout=20) as c:
            for i in range(20):
                c.sendmail("busy@example.org", ["busy@localhost"],
                           ("Subject: busy %d\r\n\r\nbody %d\r\n" % (i, i)).encode())
        h.wait_until(lambda: len(p.maildir("busy")) == 20, timeout=30, what="20 deliveries")
        threads_busy = p.threads()
        assert threads_busy < 100, threads_busy
        # the idle ones are still there and still answer
        for s in socks[:: idle // 20]:
            s.sendall(b"NOOP\r\n")
            assert s.recv(4096).startswith(b"250"), "an idle session stopped answering"
    finally:
        for s in socks:
            s.close()
