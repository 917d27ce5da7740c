"""test_proxy.py - the PROXY protocol (v1 and v2) from hosts in proxy_required_hosts: the
real client's address in the session, logs and variables; health checks (v1 UNKNOWN,
v2 LOCAL); headers split over several sends; bytes after the header; failed, corrupt and
missing headers (503 to everything but QUIT); a header from a host not in the list; the
seed's connect-ACL logging; and haproxy with send-proxy / send-proxy-v2 in front.

Client sockets bind to 127.0.0.2 (the "proxy") or 127.0.0.3 (a "real client") so the
proxy's address differs from the direct client's; the daemon listens on 127.0.0.1."""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import postern_harness as h
import proxy_headers as pp

PROXY_IP = "127.0.0.2"

# The seed's connect ACL (experimental-spec, "Proxy Protocol Support"), then accept.
SEED_CONNECT_ACL = r"""
acl_check_connect:
  warn    condition      = ${if and{ {bool{$proxy_session}} \
                                     {eq{$proxy_host_address}{}} } }
          log_message    = Failed required proxy protocol negotiation \
                           from $sender_host_name [$sender_host_address]

  warn    condition      = ${if and{ {bool{$proxy_session}} \
                                     {!eq{$proxy_host_address}{}} } }
          # But don't log health probes from the proxy itself
          condition      = ${if eq{$proxy_host_address}{$sender_host_address} \
                                {false}{true}}
          log_message    = Successfully proxied from $sender_host_name \
                           [$sender_host_address] through proxy protocol \
                           host $proxy_host_address

  # Possibly more clear
  warn logwrite = Remote Source Address: $sender_host_address:$sender_host_port
       logwrite = Proxy Target Address: $proxy_target_address:$proxy_target_port
       logwrite = Proxy Internal Address: $proxy_host_address:$proxy_host_port
       logwrite = Internal Server Address: $received_ip_address:$received_port

  accept
"""

# Every variable, logged at RCPT time.
VARS_RCPT_ACL = """\
acl_check_rcpt:
  warn    logwrite = VARS lp=$local_part session=$proxy_session \
                     host=$proxy_host_address:$proxy_host_port \
                     target=$proxy_target_address:$proxy_target_port \
                     local=$proxy_local_address:$proxy_local_port \
                     external=$proxy_external_address:$proxy_external_port \
                     sender=$sender_host_address:$sender_host_port
  accept  domains = +local_domains
  deny    message = relay not permitted
"""


def proxy_config(**main):
    opts = {"proxy_required_hosts": PROXY_IP, "log_selector": "+proxy",
            "proxy_protocol_timeout": "3s", "acl_smtp_connect": "acl_check_connect"}
    opts.update(main)
    return dict(main=opts, acl=SEED_CONNECT_ACL, rcpt_acl=VARS_RCPT_ACL)


@pytest.fixture
def proxied_server(postern_factory):
    return postern_factory(**proxy_config()).start()


def open_proxied(p, header, source=PROXY_IP, pieces=1, pause=0.0):
    c = h.SMTPConn(p.port, source=source, banner=False)
    step = max(1, (len(header) + pieces - 1) // pieces)
    for i in range(0, len(header), step):
        c.send(header[i:i + step])
        if pause:
            time.sleep(pause)
    c.banner = c.reply()
    return c


def vars_line(p, lp):
    m = p.wait_log(r"^.* VARS lp=%s (.*)$" % re.escape(lp))
    return m[0]


CASES = {
    "v1-tcp4": (pp.v1("TCP4", "192.0.2.10", "198.51.100.1", 40000, 2525),
                "192.0.2.10", 40000, "198.51.100.1", 2525),
    "v1-tcp6": (pp.v1("TCP6", "2001:db8::10", "2001:db8::1", 40001, 25),
                "2001:db8::10", 40001, "2001:db8::1", 25),
    "v2-inet-tlv-crc": (pp.v2("PROXY", "INET", "203.0.113.7", "198.51.100.2", 51000, 587,
                              tlvs=[(pp.PP2_TYPE_ALPN, b"smtp"),
                                    (pp.PP2_TYPE_AUTHORITY, b"mx.example"),
                                    (pp.PP2_TYPE_UNIQUE_ID, b"\x01\x02\x03"),
                                    (pp.PP2_TYPE_NOOP, b"\x00" * 5)], crc=True),
                        "203.0.113.7", 51000, "198.51.100.2", 587),
    "v2-inet6-tlv": (pp.v2("PROXY", "INET6", "2001:db8:1::7", "2001:db8:2::1", 52000, 25,
                           tlvs=[(pp.PP2_TYPE_NOOP, b"")]),
                     "2001:db8:1::7", 52000, "2001:db8:2::1", 25),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_proxied_session(proxied_server, case):
    p = proxied_server
    header, ip, port, tip, tport = CASES[case]
    c = open_proxied(p, header)
    assert c.banner[0] == 220, c.banner
    text = c.expect("EHLO client.example", 250)
    assert "[%s]" % ip in text, text
    lp = "u-" + case
    msgid = c.send_message("s@example.org", ["%s@localhost" % lp], "Subject: %s\r\n\r\nx" % case)
    c.expect("QUIT", 221)
    p.wait_completed(msgid)
    assert len(p.maildir(lp)) == 1
    log = p.mainlog()
    arrival = re.search(r"^.* %s <= s@example\.org (.*)$" % msgid, log, re.M)
    assert arrival, log
    assert re.search(r"H=\(client\.example\) \[%s\] P=esmtp PRX=%s S=\d+" %
                     (re.escape(ip), re.escape(PROXY_IP)), arrival.group(1)), arrival.group(0)
    lport = c.local_port
    v = vars_line(p, lp)
    assert "session=yes" in v, v
    assert "host=%s:%d" % (PROXY_IP, lport) in v, v
    assert "target=%s:%d" % (tip, tport) in v, v
    assert "local=%s:%d" % (PROXY_IP, lport) in v, v
    assert "external=%s:%d" % (tip, tport) in v, v
    assert "sender=%s:%d" % (ip, port) in v, v
    # the seed's connect ACL
    assert re.search(r"Successfully proxied from\s+\[%s\] through proxy protocol host %s$" %
                     (re.escape(ip), re.escape(PROXY_IP)), log, re.M), log
    assert re.search(r"Remote Source Address: %s:%d$" % (re.escape(ip), port), log, re.M)
    assert re.search(r"Proxy Target Address: %s:%d$" % (re.escape(tip), tport), log, re.M)
    assert re.search(r"Proxy Internal Address: %s:%d$" % (re.escape(PROXY_IP), lport), log, re.M)
    assert re.search(r"Internal Server Address: 127\.0\.0\.1:%d$" % p.port, log, re.M), log
    assert "Failed required proxy protocol negotiation" not in log


HEALTH = {
    "v1-unknown": pp.v1("UNKNOWN"),
    "v2-local": pp.v2("LOCAL", tlvs=[(pp.PP2_TYPE_NOOP, b"xx")], crc=True),
    "v2-proxy-unspec": pp.v2("PROXY", None),
}


@pytest.mark.parametrize("case", sorted(HEALTH))
def test_health_check_keeps_proxy_address(proxied_server, case):
    p = proxied_server
    c = open_proxied(p, HEALTH[case])
    assert c.banner[0] == 220
    text = c.expect("EHLO probe.example", 250)
    assert "[%s]" % PROXY_IP in text, text
    lp = "hc-" + case
    c.expect("MAIL FROM:<>", 250)
    c.expect("RCPT TO:<%s@localhost>" % lp, 250)
    c.expect("QUIT", 221)
    lport = c.local_port
    v = vars_line(p, lp)
    assert "session=yes" in v, v
    assert "host=%s:%d" % (PROXY_IP, lport) in v, v
    assert "sender=%s:%d" % (PROXY_IP, lport) in v, v
    log = p.mainlog()
    assert "Successfully proxied" not in log, log
    assert "Failed required proxy protocol negotiation" not in log, log
    assert re.search(r"Remote Source Address: %s:%d$" % (re.escape(PROXY_IP), lport), log, re.M)
    assert re.search(r"Proxy Internal Address: %s:%d$" % (re.escape(PROXY_IP), lport), log, re.M)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_header_split_over_sends(proxied_server, version):
    p = proxied_server
    header = CASES["v1-tcp4" if version == "v1" else "v2-inet-tlv-crc"][0]
    c = open_proxied(p, header, pieces=4, pause=0.25)
    assert c.banner[0] == 220
    ip = "192.0.2.10" if version == "v1" else "203.0.113.7"
    assert "[%s]" % ip in c.expect("EHLO split.example", 250)
    c.expect("QUIT", 221)


def test_header_and_ehlo_in_one_send_reach_session(postern_factory):
    # Without the greeting check, the EHLO that came with the header is answered after
    # the banner: the header was consumed exactly and nothing after it was lost.
    p = postern_factory(**proxy_config(smtp_enforce_sync="false")).start()
    c = h.SMTPConn(p.port, source=PROXY_IP, banner=False)
    c.send(CASES["v2-inet-tlv-crc"][0] + b"EHLO same.segment\r\nNOOP\r\n")
    assert c.reply()[0] == 220
    code, text = c.reply()
    assert code == 250 and "same.segment" in text and "[203.0.113.7]" in text, text
    assert c.reply()[0] == 250  # NOOP
    c.expect("QUIT", 221)


def test_header_and_ehlo_in_one_send_is_early_talker(proxied_server):
    # With smtp_enforce_sync (the default) an EHLO sent before the banner is a
    # synchronization error, like any client that talks first (the session saw the
    # bytes after the header, as coming from the real client).
    p = proxied_server
    c = h.SMTPConn(p.port, source=PROXY_IP, banner=False)
    c.send(CASES["v1-tcp4"][0] + b"EHLO same.segment\r\n")
    out = c.read_until_close(5)
    assert re.search(r"^554 .*synchronization error", out, re.M), out
    p.wait_log(r"synchronization error \(input sent without waiting for greeting\).*"
               r"\[192\.0\.2\.10\]", name="reject")


def _assert_refused_session(c):
    """After a failed negotiation: 503 to every command but QUIT, which gets 221. The
    bytes of a malformed header are dropped, not answered as commands: one reply each."""
    refused = (503, "503 Command refused, required Proxy negotiation failed")
    assert c.cmd("EHLO client.example") == refused
    assert c.cmd("MAIL FROM:<x@example.org>") == refused
    assert c.cmd("RCPT TO:<user@localhost>") == refused
    assert c.cmd("NOOP") == refused
    code, text = c.cmd("QUIT")
    assert code == 221, text
    assert c.closed() and c.buf == b"", c.buf


BAD_HEADERS = {
    "v1-garbage": b"PROXY GARBAGE\r\n",
    "v1-bad-address": b"PROXY TCP4 192.0.2.300 198.51.100.1 1 25\r\n",
    "v1-family-mismatch": b"PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n",
    "v2-bad-crc": pp.v2("PROXY", "INET", "192.0.2.1", "192.0.2.2", 1, 25, crc=True,
                        corrupt_crc=True),
    "v2-bad-version": b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + b"\x00" * 12,
    "smtp-instead": b"EHLO no.header.example\r\n",
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_malformed_header_refuses_session(proxied_server, case):
    p = proxied_server
    t0 = time.monotonic()
    c = open_proxied(p, BAD_HEADERS[case])
    assert c.banner[0] == 220
    assert time.monotonic() - t0 < 2.5, "banner waited for the timeout on a bad header"
    _assert_refused_session(c)
    log = p.wait_log(r"Failed required proxy protocol negotiation\s+from\s+\[%s\]" %
                     re.escape(PROXY_IP))
    assert log
    assert "Successfully proxied" not in p.mainlog()


def test_timeout_then_503(postern_factory):
    p = postern_factory(**proxy_config(proxy_protocol_timeout="1s")).start()
    t0 = time.monotonic()
    c = h.SMTPConn(p.port, source=PROXY_IP, banner=False)
    c.banner = c.reply()
    waited = time.monotonic() - t0
    assert c.banner[0] == 220
    assert 0.8 <= waited <= 3.0, "banner after %.2fs, expected ~1s" % waited
    _assert_refused_session(c)
    p.wait_log(r"Failed required proxy protocol negotiation\s+from\s+\[%s\]" %
               re.escape(PROXY_IP))


def test_header_from_unlisted_host_is_a_bad_command(proxied_server):
    p = proxied_server
    c = p.connect(source="127.0.0.3")  # not in proxy_required_hosts: banner at once
    assert c.banner[0] == 220
    c.expect(pp.v1("TCP4", "192.0.2.10", "198.51.100.1", 40000, 25).decode().strip(), 500)
    text = c.expect("EHLO direct.example", 250)
    assert "[127.0.0.3]" in text
    c.expect("MAIL FROM:<d@example.org>", 250)
    c.expect("RCPT TO:<direct@localhost>", 250)
    v = vars_line(p, "direct")
    assert "session=yes" not in v and "host=:" in v and "sender=127.0.0.3:" in v, v
    c.expect("DATA", 354)
    c.send("Subject: direct\r\n\r\nx\r\n.\r\n")
    msgid = h.msgid_of(c.reply()[1])
    p.wait_completed(msgid)
    arrival = re.search(r"^.* %s <= .*$" % msgid, p.mainlog(), re.M).group(0)
    assert "[127.0.0.3]" in arrival and "PRX=" not in arrival, arrival


# ---------------------------------------------------------------------------
# haproxy in front

HAPROXY_CFG = """\
global
    maxconn 200
    log stdout format raw local0 err

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend fe_v1
    bind 127.0.0.1:{p1}
    default_backend be_v1

backend be_v1
    server s1 127.0.0.1:{port} send-proxy

frontend fe_v2
    bind 127.0.0.1:{p2}
    default_backend be_v2

backend be_v2
    server s2 127.0.0.1:{port} send-proxy-v2 check check-send-proxy inter 300ms
"""


@pytest.fixture
def haproxy_front(postern_factory, tmp_path):
    if not shutil.which("haproxy"):
        pytest.fail("haproxy is not installed (tools/setup.sh installs it)")
    p = postern_factory(**proxy_config(proxy_required_hosts="127.0.0.1")).start()
    p1, p2 = h.free_port(), h.free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(p1=p1, p2=p2, port=p.port))
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    # A private mount namespace whose resolv.conf names only 127.0.0.1: nothing haproxy
    # might look up leaves the machine.
    cmd = ["unshare", "-m", "sh", "-c",
           'mount --bind "$1" /etc/resolv.conf && exec haproxy -db -f "$2"', "sh",
           str(resolv), str(cfg)]
    log = open(tmp_path / "haproxy.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        def listening():
            if proc.poll() is not None:
                raise AssertionError("haproxy exited: %s" %
                                     (tmp_path / "haproxy.log").read_text())
            return all(_listens(x) for x in (p1, p2))
        h.wait_until(listening, what="haproxy to listen")
        yield p, p1, p2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _listens(port):
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        return any(l.split()[1].endswith(want) and l.split()[3] == "0A"
                   for l in f.readlines()[1:])


@pytest.mark.parametrize("which", ["send-proxy", "send-proxy-v2"])
def test_swaks_through_haproxy(haproxy_front, which):
    p, p1, p2 = haproxy_front
    front = p1 if which == "send-proxy" else p2
    lp = "via-" + which.replace("-", "")
    r = h.swaks(front, "--local-interface", "127.0.0.3", "--to", "%s@localhost" % lp,
                "--from", "far@example.org", "--helo", "far.example",
                "--body", "through haproxy " + which)
    assert r.returncode == 0, r.stdout + r.stderr
    msgid = re.search(r"<-\s+250 .*OK id=(%s)" % h.MSGID_RE, r.stdout).group(1)
    p.wait_completed(msgid)
    msgs = p.maildir(lp)
    assert len(msgs) == 1 and ("through haproxy " + which).encode() in msgs[0]
    log = p.mainlog()
    arrival = re.search(r"^.* %s <= far@example\.org (.*)$" % msgid, log, re.M).group(1)
    assert re.search(r"H=\(far\.example\) \[127\.0\.0\.3\] P=esmtp PRX=127\.0\.0\.1 S=\d+",
                     arrival), arrival
    assert re.search(r"Successfully proxied from\s+\[127\.0\.0\.3\] through proxy protocol "
                     r"host 127\.0\.0\.1$", log, re.M), log
    v = vars_line(p, lp)
    assert "session=yes" in v and "sender=127.0.0.3:" in v and "host=127.0.0.1:" in v, v
    assert re.search(r"target=127\.0\.0\.1:%d" % front, v), v


def test_haproxy_health_checks_not_logged_as_proxied(haproxy_front):
    p, _, _ = haproxy_front
    # check-send-proxy health checks arrive every 300ms on the v2 backend
    p.wait_log(r"Remote Source Address: 127\.0\.0\.1:\d+$", count=2)
    log = p.mainlog()
    assert "Failed required proxy protocol negotiation" not in log, log
    assert not re.search(r"Successfully proxied from\s+\[127\.0\.0\.1\]", log), log


# ---------------------------------------------------------------------------
# conf/examples: the configuration for running behind haproxy, and its haproxy.cfg


def _examples_dir():
    src = os.environ.get("POSTERN_SOURCE_DIR") or os.path.join(os.path.dirname(__file__),
                                                               "..", "..")
    return os.path.join(src, "conf", "examples")


def _haproxy_stat(sock_path):
    import socket as _s
    s = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    return [dict(zip(head, l.split(","))) for l in lines[1:] if l]


def test_example_configs_behind_haproxy(tmp_path):
    ex = _examples_dir()
    conf_text = open(os.path.join(ex, "postern-behind-haproxy.conf")).read()
    hap_text = open(os.path.join(ex, "haproxy.cfg")).read()
    instances = []
    try:
        for name in ("mx1", "mx2"):
            d = tmp_path / name
            d.mkdir()
            p = h.Postern(d)
            p.write_config(text=conf_text)
            p.start(extra_args=["-D", "VAR=%s" % d])
            instances.append(p)
        front = h.free_port()
        hap = hap_text.replace("bind :25", "bind 127.0.0.1:%d" % front)
        hap = hap.replace("127.0.0.1:2526", "127.0.0.1:%d" % instances[0].port)
        hap = hap.replace("127.0.0.1:2527", "127.0.0.1:%d" % instances[1].port)
        hap = hap.replace("inter 5s", "inter 200ms")
        sock = tmp_path / "haproxy.sock"
        hap = hap.replace("global\n", "global\n    stats socket %s level admin\n" % sock, 1)
        assert hap.count(str(instances[0].port)) == 1 and "127.0.0.1:%d" % front in hap
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(hap)
        resolv = tmp_path / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")
        log = open(tmp_path / "haproxy.log", "wb")
        proc = subprocess.Popen(["unshare", "-m", "sh", "-c",
                                 'mount --bind "$1" /etc/resolv.conf && exec haproxy -db -f "$2"',
                                 "sh", str(resolv), str(cfg)], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            def checks_ok():
                if proc.poll() is not None:
                    raise AssertionError((tmp_path / "haproxy.log").read_text())
                if not sock.exists():
                    return False
                rows = [r for r in _haproxy_stat(str(sock)) if r.get("svname") in ("mx1", "mx2")]
                return len(rows) == 2 and all(r["check_status"] == "L7OK" for r in rows)
            h.wait_until(checks_ok, timeout=15, what="haproxy health checks L7OK on both")
            for i in range(4):
                r = h.swaks(front, "--local-interface", "127.0.0.3", "--to",
                            "postmaster@localhost", "--from", "ex%d@example.org" % i,
                            "--helo", "client.example", "--body", "example %d" % i)
                assert r.returncode == 0, r.stdout + r.stderr
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
            log.close()
        got = sum(len(p.maildir("postmaster")) for p in instances)
        h.wait_until(lambda: sum(len(p.maildir("postmaster")) for p in instances) == 4,
                     what="4 deliveries across both instances (had %d)" % got)
        for p in instances:
            log_text = p.mainlog()
            for line in re.findall(r"^.* <= .*$", log_text, re.M):
                assert "[127.0.0.3]" in line and "PRX=127.0.0.1" in line, line
            assert "Failed required proxy protocol negotiation" not in log_text
            assert not re.search(r"Successfully proxied from\s+\[127\.0\.0\.1\]", log_text)
            assert "synchronization error" not in p.log("reject"), p.log("reject")
    finally:
        for p in instances:
            assert p.stop() == 0, p.stderr_text()
            assert not h.sanitizer_report(p.stderr_text()), p.stderr_text()
            assert p.paniclog().strip() == "", p.paniclog()
