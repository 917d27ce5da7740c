"""test_exim_prdr.py - real Exim 4.96 (Debian's build, unpacked by exim_peer) as the PRDR
client of postern: one message to three recipients whose PRDR ACL verdicts differ, and
Exim must understand each per-recipient reply (deliver one, defer one, fail one) while
postern keeps and delivers the message for the accepted recipient only. Exim runs with
resolv.conf naming 127.0.0.1 in its own mount namespace, under strace when available,
to show that it made no DNS query and connected to nothing but postern."""

import re
import shutil

import pytest

import exim_peer
import postern_harness as h

PRDR_ACL = """\
acl_check_prdr:
  defer   local_parts = tmp
          message     = try later, $local_part
  deny    local_parts = bad
          message     = no thanks, $local_part@$domain
  accept
"""

# Everything @localhost goes to postern; anything else (the bounce Exim writes to the
# sender for bad@localhost) is thrown away, so nothing leaves for anywhere else.
EXIM_ROUTERS = """\
to_postern:
  driver = manualroute
  domains = localhost
  route_list = * 127.0.0.1
  self = send
  transport = postern_smtp

discard:
  driver = redirect
  data = :blackhole:
"""

EXIM_TRANSPORTS = """\
postern_smtp:
  driver = smtp
  port = @PORT@
  allow_localhost = true
  hosts_try_prdr = *
  hosts_avoid_tls = *
  hosts_try_chunking =
  hosts_try_fastopen =
  connect_timeout = 10s
  command_timeout = 10s
  data_timeout = 10s
  final_timeout = 10s
"""

RCPTS = ["good@localhost", "tmp@localhost", "bad@localhost"]


def _exim(tmp_path, port):
    d = tmp_path / "exim"
    d.mkdir()
    try:
        e = exim_peer.Exim(d, routers=EXIM_ROUTERS,
                           transports=EXIM_TRANSPORTS.replace("@PORT@", str(port)))
    except exim_peer.EximUnavailable as why:
        pytest.skip("no Exim peer: %s" % why)
    e.check_config()
    return e


def _syscalls_leaving_loopback(strace_text, port):
    """Every connect/sendto in an strace log whose address is not 127.0.0.1:port
    (postern) or a local unix socket: a DNS query, or a connection anywhere else."""
    bad = []
    for line in strace_text.splitlines():
        if "sin_port" not in line and "sin6_port" not in line:
            continue
        m = re.search(r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|'
                      r'inet_pton\(AF_INET6?, "([^"]+)")', line)
        if not m:
            bad.append(line)
            continue
        p, addr = int(m.group(1)), m.group(2) or m.group(3)
        if not (addr == "127.0.0.1" and p == port):
            bad.append(line)
    return bad


def test_exim_sends_prdr_to_postern(postern_factory, tmp_path):
    p = postern_factory(main={"prdr_enable": "true", "acl_smtp_data_prdr": "acl_check_prdr"},
                        acl=PRDR_ACL).start()
    e = _exim(tmp_path, p.port)
    strace_log = str(tmp_path / "exim.strace") if shutil.which("strace") else None

    msg = b"From: sender@example.org\nSubject: prdr via exim\n\nsent by exim with PRDR\n"
    r = e.run("-odf", "-oi", "-f", "sender@example.org", *RCPTS, input=msg,
              strace_log=strace_log)
    elog = e.mainlog()
    ctx = "exim rc=%d stderr=%s\nexim mainlog:\n%s\npostern mainlog:\n%s" % (
        r.returncode, r.stderr.decode(errors="replace"), elog, p.mainlog())

    # Exim's view: one connection with PRDR, three different outcomes
    good = re.findall(r"^.* => good@localhost R=to_postern T=postern_smtp "
                      r"H=127\.0\.0\.1 \[127\.0\.0\.1\](.*)$", elog, re.M)
    assert len(good) == 1, ctx
    assert " PRDR" in good[0] and 'C="250' in good[0], ctx
    tmp = re.findall(r"^.* == tmp@localhost R=to_postern T=postern_smtp .*$", elog, re.M)
    assert len(tmp) == 1 and re.search(r": 450[ -].*try later, tmp", tmp[0]), ctx
    bad = re.findall(r"^.* \*\* bad@localhost R=to_postern T=postern_smtp .*$", elog, re.M)
    assert len(bad) == 1 and re.search(r": 550[ -].*no thanks, bad@localhost", bad[0]), ctx
    assert not re.search(r"=> (tmp|bad)@localhost", elog), ctx
    # bad@localhost failed for good: Exim bounced it to the sender (blackholed here; the
    # bounce is delivered before the submitting exim exits, so nothing outlives it)
    orig = re.search(r"^\S+ \S+ (\S+) => good@localhost", elog, re.M).group(1)
    bounce = re.search(r"^\S+ \S+ (\S+) <= <> R=%s " % re.escape(orig), elog, re.M)
    assert bounce, ctx
    assert re.search(r"^\S+ \S+ %s => :blackhole: <sender@example\.org> R=discard" %
                     re.escape(bounce.group(1)), elog, re.M), ctx
    # (-C costs Exim its root privilege, which it notes in its paniclog: nothing else)
    panic = [l for l in e.paniclog().splitlines()
             if not l.endswith("exim user lost privilege for using -C option")]
    assert panic == [], e.paniclog()

    # postern's view: one PRDR arrival, delivered to good only
    arrivals = re.findall(r"^\S+ \S+ (%s) <= sender@example\.org .*$" % h.MSGID_RE,
                          p.mainlog(), re.M)
    assert len(arrivals) == 1, ctx
    msgid = arrivals[0]
    assert re.search(r"^\S+ \S+ %s <= .* PRDR" % msgid, p.mainlog(), re.M), ctx
    p.wait_completed(msgid)
    log = p.mainlog()
    delivered = re.findall(r"^\S+ \S+ %s => (.*)$" % msgid, log, re.M)
    assert len(delivered) == 1 and "good@localhost" in delivered[0], log
    assert len(p.maildir("good")) == 1, p.all_delivered()
    assert b"sent by exim with PRDR" in p.maildir("good")[0]
    assert p.maildir("tmp") == [] and p.maildir("bad") == []
    rej = p.log("reject")
    assert "PRDR" in rej and "tmp@localhost" in rej and "bad@localhost" in rej, rej

    # no DNS query and no connection other than the one to postern
    if strace_log:
        with open(strace_log, errors="replace") as f:
            trace = f.read()
        assert re.search(r"connect\(.*htons\(%d\)" % p.port, trace), trace[-3000:]
        leaks = _syscalls_leaving_loopback(trace, p.port)
        assert leaks == [], "\n".join(leaks)
        assert "htons(53)" not in trace, trace
    else:
        print("strace not installed: DNS isolation rests on the mount namespace alone")
