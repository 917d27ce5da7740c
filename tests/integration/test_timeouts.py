"""test_timeouts.py - smtp_receive_timeout applies per input line (a command, or a line of
message data), not between reads: a client trickling a byte at a time gets Exim's 421
when a line takes longer than the timeout, whatever it sends meanwhile; smtp_data_timeout
bounds a whole DATA even when every line arrives in time; and thousands of trickling
clients (from 100 source addresses, under the default connection limits) neither keep a
normal client out nor outlive the timeout.

Pacing sleeps below are the clients' own behaviour (how slowly they send), not waits
for a state; every state is waited on with a deadline."""

import re
import resource
import selectors
import socket
import time

import postern_harness as h

CMD_TIMEOUT = re.compile(rb"^421 (4\.4\.2 )?test\.example: SMTP command timeout - closing connection",
                         re.M)
DATA_TIMEOUT = re.compile(
    rb"^421 (4\.4\.2 )?test\.example: SMTP incoming data timeout - closing connection", re.M)


def _trickle(c, data, every, until_close):
    """Send data one byte every `every` seconds until the server closes (or data runs out);
    returns the seconds it took and what the server sent."""
    t0 = time.monotonic()
    c.sock.settimeout(every)
    for i in range(len(data)):
        try:
            c.sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            c.buf += chunk
        except socket.timeout:
            pass  # the pacing: nothing from the server yet
        except ConnectionResetError:
            break
    if until_close:
        c.closed(timeout=10)
    return time.monotonic() - t0, c.buf


def test_trickled_command_line_times_out(postern_factory):
    p = postern_factory(main={"smtp_receive_timeout": "3s"}).start()
    c = p.connect()
    # 60 bytes at one every 0.5 s: reads every 0.5 s, but the line would take 30 s
    took, got = _trickle(c, b"HELO " + b"x" * 53 + b"\r\n", 0.5, until_close=True)
    assert CMD_TIMEOUT.search(got), got
    assert 2.5 <= took <= 7, took
    p.wait_log(r"SMTP command timeout on connection from")


def test_lines_in_time_are_not_timed_out(postern_factory):
    p = postern_factory(main={"smtp_receive_timeout": "2s"}).start()
    c = p.connect()
    for _ in range(4):  # 6 s in all, each line well inside the timeout
        time.sleep(1)
        c.expect("NOOP", 250)
    c.expect("QUIT", 221)


def test_trickled_data_line_times_out(postern_factory):
    p = postern_factory(main={"smtp_receive_timeout": "3s"}).start()
    c = p.connect()
    c.expect("EHLO trickle.example", 250)
    c.expect("MAIL FROM:<t@example.org>", 250)
    c.expect("RCPT TO:<u@localhost>", 250)
    c.expect("DATA", 354)
    took, got = _trickle(c, b"Subject: " + b"y" * 60 + b"\r\n", 0.5, until_close=True)
    assert DATA_TIMEOUT.search(got), got
    assert 2.5 <= took <= 7, took
    p.wait_log(r"SMTP data timeout on connection from .* \(message abandoned\)")
    assert p.maildir("u") == []


def test_whole_message_deadline(postern_factory):
    p = postern_factory(main={"smtp_receive_timeout": "3s", "smtp_data_timeout": "4s"}).start()
    c = p.connect()
    c.expect("EHLO slowdata.example", 250)
    c.expect("MAIL FROM:<t@example.org>", 250)
    c.expect("RCPT TO:<u@localhost>", 250)
    c.expect("DATA", 354)
    t0 = time.monotonic()
    c.sock.settimeout(1)
    got = b""
    while not DATA_TIMEOUT.search(got) and time.monotonic() - t0 < 12:
        try:
            c.sock.sendall(b"a complete line, each well inside smtp_receive_timeout\r\n")
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            got += chunk
        except socket.timeout:
            pass  # one line a second
        except (BrokenPipeError, ConnectionResetError):
            break
    took = time.monotonic() - t0
    assert DATA_TIMEOUT.search(got), got
    assert 3.5 <= took <= 7, took
    p.wait_log(r"SMTP data timeout on connection from .* \(message abandoned\)")
    assert p.maildir("u") == []


TRICKLERS = 5000
SOURCES = 100  # 50 each: within the default smtp_accept_max_per_host (100)


WAVE = 500  # connections opened at once: well inside the listen backlog


def _open_tricklers(port, n):
    """Open n connections in waves, each wave waiting (up to 60 s) for its banners: the
    test is about holding thousands of slow sessions, not about a SYN burst larger than the
    kernel's accept queue, which Linux may drop silently once SYN cookies are in use."""
    sel = selectors.DefaultSelector()
    socks = []
    datas = {}
    for first in range(0, n, WAVE):
        wave = []
        for i in range(first, min(n, first + WAVE)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind(("127.0.1.%d" % (1 + i % SOURCES), 0))
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
            wave.append(s)
            datas[s] = bytearray()
            sel.register(s, selectors.EVENT_READ, datas[s])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and \
                not all(b"\n" in datas[s] or datas[s].endswith(b"<EOF>") for s in wave):
            _read_ready(sel, 0.5)
    return sel, socks, datas


def _read_ready(sel, timeout):
    for key, _ in sel.select(timeout):
        try:
            chunk = key.fileobj.recv(4096)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            chunk = b""
        if chunk:
            key.data.extend(chunk)
        else:
            key.data.extend(b"<EOF>")
            sel.unregister(key.fileobj)


def test_thousands_of_tricklers_do_not_lock_out_a_normal_client(postern_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = TRICKLERS + 500
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need, "cannot raise RLIMIT_NOFILE"
    # default smtp_accept_max and smtp_accept_max_per_host; a short timeout for the test
    p = postern_factory(nofile=TRICKLERS + 1000, main={"smtp_receive_timeout": "10s"}).start()
    opened = time.monotonic()
    sel, socks, datas = _open_tricklers(p.port, TRICKLERS)
    try:
        banners = sum(1 for d in datas.values() if d.startswith(b"220 "))
        assert banners == TRICKLERS, "%d of %d tricklers got a banner" % (banners, TRICKLERS)
        started = time.monotonic()

        # they trickle (a byte each per 2 s, a line they would take 2 minutes to finish)...
        line = b"HELO " + b"z" * 55 + b"\r\n"
        sent = 0

        def trickle_round():
            for s in socks:
                try:
                    s.send(line[sent:sent + 1])
                except OSError:
                    pass

        trickle_round()
        sent += 1
        # ...and a normal client is served meanwhile
        t0 = time.monotonic()
        c = p.connect()
        c.expect("EHLO normal.example", 250)
        msgid = c.send_message("n@example.org", ["normal@localhost"], "Subject: n\r\n\r\nhi")
        c.expect("QUIT", 221)
        served = time.monotonic() - t0
        assert served < 5, "the normal client took %.1fs" % served
        p.wait_completed(msgid)

        # the tricklers are timed out with Exim's 421 within the timeout (plus the sweep)
        next_round = time.monotonic() + 2
        while time.monotonic() - started < 30:
            _read_ready(sel, 0.5)
            if all(d.endswith(b"<EOF>") for d in datas.values()):
                break
            if time.monotonic() >= next_round:
                trickle_round()
                sent += 1
                next_round += 2
        timed_out = sum(1 for d in datas.values() if CMD_TIMEOUT.search(bytes(d)))
        assert timed_out == TRICKLERS, "%d of %d tricklers got the 421 timeout" % (
            timed_out, TRICKLERS)
        assert time.monotonic() - opened >= 9, "timed out before smtp_receive_timeout"
    finally:
        for s in socks:
            s.close()
