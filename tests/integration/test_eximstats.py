"""test_eximstats.py - our mainlog is Exim's format: Debian's eximstats counts what we
received and delivered, and exigrep finds a message's lines by its id.

eximstats and exigrep come from Debian's exim4-base. If they are not installed, the
package is fetched with `apt-get download exim4-base` and unpacked with `dpkg -x` into
$POSTERN_BUILD_DIR/exim4-base (once); the scripts are run with perl."""

import os
import re
import smtplib
import subprocess
import tempfile

import pytest

import postern_harness as h


def exim_tool(name):
    for d in ("/usr/sbin", "/usr/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    base = os.environ.get("POSTERN_BUILD_DIR") or tempfile.gettempdir()
    root = os.path.join(base, "exim4-base")
    tool = os.path.join(root, "usr", "sbin", name)
    if not os.path.exists(tool):
        os.makedirs(root, exist_ok=True)
        dl = os.path.join(root, "deb")
        os.makedirs(dl, exist_ok=True)
        r = subprocess.run(["apt-get", "download", "exim4-base"], cwd=dl, capture_output=True,
                           timeout=120)
        debs = [f for f in os.listdir(dl) if f.endswith(".deb")]
        if not debs:
            pytest.fail("exim4-base is not installed and apt-get download failed: %s" %
                        r.stderr.decode())
        subprocess.run(["dpkg", "-x", os.path.join(dl, debs[0]), root], check=True, timeout=60)
    return tool


@pytest.fixture(scope="module")
def ten_messages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stats")
    p = h.Postern(tmp).start()
    try:
        ids = []
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="stats.example", timeout=10) as s:
            s.ehlo()
            for i in range(10):
                s.mail("stats%d@example.org" % (i % 3))
                s.rcpt("user%d@localhost" % (i % 2))
                code, text = s.data(("Subject: %d\r\n\r\n%s\r\n" % (i, "x" * 500)).encode())
                assert code == 250
                ids.append(h.msgid_of(text.decode()))
        for i in ids:
            p.wait_completed(i)
    finally:
        rc = p.stop()
    assert rc == 0, p.stderr_text()
    assert not h.sanitizer_report(p.stderr_text()), p.stderr_text()
    assert p.paniclog().strip() == ""
    return p, ids


def test_eximstats_counts(ten_messages):
    p, ids = ten_messages
    tool = exim_tool("eximstats")
    r = subprocess.run(["perl", tool, "-nr", "-t0", p.path("log", "mainlog")],
                       capture_output=True, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    received = re.search(r"^\s*Received\s+\S+\s+(\d+)\s+(\d+)\s", out, re.M)
    delivered = re.search(r"^\s*Delivered\s+\S+\s+(\d+)", out, re.M)
    assert received and delivered, out
    assert int(received.group(1)) == 10, out
    assert int(delivered.group(1)) == 10, out
    assert int(received.group(2)) == 1, out  # one sending host, recognised from H=


def test_exigrep_finds_message(ten_messages):
    p, ids = ten_messages
    tool = exim_tool("exigrep")
    r = subprocess.run(["perl", tool, ids[3], p.path("log", "mainlog")], capture_output=True,
                       timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    lines = [l for l in out.splitlines() if l.strip()]
    assert any(" %s <= stats0@example.org" % ids[3] in l for l in lines), out
    assert any(" %s => user1 <user1@localhost>" % ids[3] in l for l in lines), out
    assert any(" %s Completed" % ids[3] in l for l in lines), out
    assert not any(i in out for i in ids if i != ids[3]), out
