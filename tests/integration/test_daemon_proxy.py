"""test_daemon_proxy.py - the acceptor's PROXY stage when a header never completes: the
bytes of a v1 or v2 header still incomplete when proxy_protocol_timeout fires are
discarded, never read as SMTP (the v2 signature contains "QUIT\\n", so reading them would
end the session with 221), and the session is the failed-negotiation one: banner, then
503 to everything but QUIT.

The "proxy" connects from 127.0.0.2; the daemon listens on 127.0.0.1."""

import re
import time

import pytest

import postern_harness as h
import proxy_headers as pp

PROXY_IP = "127.0.0.2"
REFUSED = (503, "503 Command refused, required Proxy negotiation failed")

FULL_V2 = pp.v2("PROXY", "INET", "192.0.2.1", "192.0.2.2", 4000, 25)
TRUNCATED = {
    # the signature (with its "QUIT\n") and the version byte, nothing more
    "v2-signature-only": FULL_V2[:13],
    # all but the last address byte
    "v2-all-but-one-byte": FULL_V2[:-1],
    # a v1 line without its CRLF
    "v1-no-line-end": b"PROXY TCP4 192.0.2.1 192.0.2.2 4000 25",
}


@pytest.mark.parametrize("case", sorted(TRUNCATED))
def test_truncated_header_times_out_as_malformed(postern_factory, case):
    p = postern_factory(main={"proxy_required_hosts": PROXY_IP,
                              "proxy_protocol_timeout": "1s"}).start()
    t0 = time.monotonic()
    c = h.SMTPConn(p.port, source=PROXY_IP, banner=False)
    c.send(TRUNCATED[case])
    code, text = c.reply()  # the banner comes only when the timeout fires
    waited = time.monotonic() - t0
    assert code == 220, text
    assert 0.8 <= waited <= 4.0, "banner after %.2fs, expected ~1s" % waited
    # Exactly one reply per command: nothing of the header was answered as a command.
    assert c.cmd("EHLO client.example") == REFUSED
    assert c.cmd("MAIL FROM:<x@example.org>") == REFUSED
    assert c.cmd("NOOP") == REFUSED
    code, text = c.cmd("QUIT")
    assert code == 221, text
    assert c.closed() and c.buf == b"", c.buf
    p.wait_log(r"proxy negotiation failed from \[%s\]:\d+: timeout waiting for the PROXY header"
               % re.escape(PROXY_IP))
