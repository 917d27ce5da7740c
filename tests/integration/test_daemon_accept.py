"""test_daemon_accept.py - the acceptor out of file descriptors: a daemon whose open-file
limit is lowered (prlimit) under a flood of connections logs one line when the episode
starts and one with the count of failed accepts when it ends (not one per accept4, ~100 a
second as before), keeps serving the PROXY stage meanwhile (a proxy connection that sends
nothing still gets its banner at proxy_protocol_timeout, not later), and serves normally
once descriptors are free again."""

import os
import re
import resource
import socket
import time

import pytest

import postern_harness as h

PROXY_IP = "127.0.0.2"
FLOOD = 80


def _fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# ThreadSanitizer needs descriptors to start its symbolizer, and applies tests/tsan.supp
# only to symbolized reports: with none left, the suppressed epoll_ctl report (see there)
# aborts the daemon. The path tested here runs in the acceptor thread alone.
@pytest.mark.skipif("TSAN_OPTIONS" in os.environ,
                    reason="TSan cannot symbolize (so cannot suppress) without descriptors")
def test_emfile_episode_logged_once_then_normal_service(postern_factory):
    p = postern_factory(main={"proxy_required_hosts": PROXY_IP,
                              "proxy_protocol_timeout": "2s"}).start()
    p.expect_panic = True  # the episode's two lines go to the paniclog too
    # a proxy connection waits in the PROXY stage (accepted before the limit is lowered)
    base = _fds(p.pid)
    proxied = h.SMTPConn(p.port, source=PROXY_IP, banner=False)
    h.wait_until(lambda: _fds(p.pid) > base, what="the proxy connection accepted")
    limit = _fds(p.pid) + 8
    hard = resource.prlimit(p.pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(p.pid, resource.RLIMIT_NOFILE, (limit, hard))
    t_proxy = time.monotonic()

    flood = []
    for _ in range(FLOOD):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", p.port))
        flood.append(s)
    p.wait_log(r"accept: Too many open files: not accepting for now")

    # the PROXY deadline does not slip while accepts fail
    code, text = proxied.reply()
    waited = time.monotonic() - t_proxy
    assert code == 220, text
    assert waited < 3.5, "PROXY timeout banner after %.1fs (timeout 2s)" % waited
    assert proxied.cmd("NOOP")[0] == 503
    proxied.close()

    # descriptors come back when the flood goes away
    for s in flood:
        s.close()
    line = p.wait_log(r"accept: Too many open files: cleared after (\d+) failed accepts in "
                      r"[\d.]+s; accepting again", timeout=15)
    log = p.mainlog()
    assert len(re.findall(r"not accepting for now", log)) == 1, log
    failures = int(re.search(r"cleared after (\d+) failed accepts", log).group(1))
    assert failures >= 2, log
    # one line per episode, not one per accept4: the episode lasted over a second
    assert len(re.findall(r"accept: Too many open files", log)) == 2, log

    resource.prlimit(p.pid, resource.RLIMIT_NOFILE, (4096, hard))
    c = p.connect()
    c.expect("EHLO after.example", 250)
    msgid = c.send_message("a@example.org", ["after@localhost"], "Subject: after\r\n\r\nok")
    c.expect("QUIT", 221)
    p.wait_completed(msgid)
