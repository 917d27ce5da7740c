"""postern_harness - shared helpers for the integration tests.

Owns: writing a test configuration into a temporary directory, starting and stopping the
real postern binary (``$POSTERN_BIN``) as a foreground daemon, reading its log files and
maildirs, and a small raw SMTP client (``SMTPConn``) that reads whole multi-line replies.

Everything listens and connects on 127.0.0.1 (or other 127.x addresses as client source);
no test may reach the network or DNS. Used from the pytest process only (the raw client
is safe to use from several threads as long as each thread has its own connection).
"""

import os
import re
import signal
import socket
import subprocess
import time

MSGID_RE = r"\w{6}-\w{6}-\w{2}"
TIMEOUT = 10.0  # default bound for every wait in the suite


def postern_bin():
    path = os.environ.get("POSTERN_BIN")
    if not path:
        build = os.environ.get("POSTERN_BUILD_DIR")
        if build:
            path = os.path.join(build, "postern")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("POSTERN_BIN is not set to an executable postern binary")
    return path


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago on host (the usual small race is accepted)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=TIMEOUT, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; return that value or raise."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# configuration

DEFAULT_MAIN = {
    "primary_hostname": "test.example",
    "local_interfaces": "127.0.0.1",
    "smtp_worker_threads": "4",
    "queue_run_max": "2",
    "host_lookup": "",
    "acl_smtp_rcpt": "acl_check_rcpt",
}

DEFAULT_RCPT_ACL = """\
acl_check_rcpt:
  accept  domains = +local_domains
  deny    message = relay not permitted
"""

DEFAULT_ROUTERS = """\
local_user:
  driver = accept
  domains = +local_domains
  transport = local_maildir
"""

DEFAULT_TRANSPORTS = """\
local_maildir:
  driver = appendfile
  maildir_format = true
  directory = @TMP@/mail/${lc:$local_part}
  create_directory = true
"""


def build_config(tmp, port, main=None, acl="", rcpt_acl=DEFAULT_RCPT_ACL, routers=None,
                 transports=None, head="", lists=None):
    """Return the text of a configuration rooted at tmp.

    main: dict of main options overriding DEFAULT_MAIN (value None removes one);
    rcpt_acl: the acl_check_rcpt definition; acl: more ACL definitions after it;
    routers / transports: the whole section bodies (default: one accept router into
    maildirs under @TMP@/mail/<local_part>); lists: extra named-list lines;
    head: raw lines put first (macros, .include, .ifdef).
    "@TMP@" and "@PORT@" anywhere are replaced."""
    opts = dict(DEFAULT_MAIN)
    opts["daemon_smtp_ports"] = str(port)
    opts["spool_directory"] = "@TMP@/spool"
    opts["log_file_path"] = "@TMP@/log/%slog"
    for k, v in (main or {}).items():
        if v is None:
            opts.pop(k, None)
        else:
            opts[k] = v
    lines = [head.rstrip("\n")] if head else []
    for k, v in opts.items():
        lines.append("%s = %s" % (k, v))
    lines.append("")
    lines.append("domainlist local_domains = localhost : test.example")
    for l in lists or []:
        lines.append(l)
    lines.append("")
    lines.append("begin acl")
    lines.append("")
    lines.append(rcpt_acl)
    lines.append(acl)
    lines.append("begin routers")
    lines.append("")
    lines.append(routers if routers is not None else DEFAULT_ROUTERS)
    lines.append("begin transports")
    lines.append("")
    lines.append(transports if transports is not None else DEFAULT_TRANSPORTS)
    text = "\n".join(lines) + "\n"
    return text.replace("@TMP@", str(tmp)).replace("@PORT@", str(port))


# ---------------------------------------------------------------------------
# the daemon

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def sanitizer_report(stderr_text):
    """The first sanitizer report in a process's stderr, or None."""
    for marker in SANITIZER_MARKERS:
        i = stderr_text.find(marker)
        if i >= 0:
            return stderr_text[max(0, i - 200):i + 3000]
    return None


def _raise_nofile(n):
    def f():
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(n, hard) if hard != resource.RLIM_INFINITY else n
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return f


class Postern:
    """One postern instance rooted at tmp (config, spool, log, mail below it)."""

    def __init__(self, tmp, port=None, nofile=None, **cfg):
        self.tmp = str(tmp)
        self.port = port or free_port()
        self.nofile = nofile
        self.proc = None
        self.expect_panic = False
        self.conf = os.path.join(self.tmp, "postern.conf")
        for d in ("spool", "log", "mail"):
            os.makedirs(os.path.join(self.tmp, d), exist_ok=True)
        self.write_config(**cfg)

    # -- files
    def write_config(self, text=None, **cfg):
        if text is None:
            text = build_config(self.tmp, self.port, **cfg)
        with open(self.conf, "w") as f:
            f.write(text)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def log(self, name="main"):
        try:
            with open(self.path("log", name + "log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def mainlog(self):
        return self.log("main")

    def paniclog(self):
        return self.log("panic")

    def maildir(self, user):
        """Contents (bytes) of every message in mail/<user>/new, sorted by file name."""
        d = self.path("mail", user, "new")
        if not os.path.isdir(d):
            return []
        out = []
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                out.append(f.read())
        return out

    def all_delivered(self):
        """Every message in every mail/*/new, as (user, bytes)."""
        out = []
        base = self.path("mail")
        for user in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            for m in self.maildir(user):
                out.append((user, m))
        return out

    def wait_log(self, pattern, timeout=TIMEOUT, count=1, name="main"):
        """Wait until pattern (regex, MULTILINE) matches count times in a log; return matches."""
        rx = re.compile(pattern, re.M)

        def check():
            m = rx.findall(self.log(name))
            return m if len(m) >= count else None
        return wait_until(check, timeout, what="log %r x%d in %slog" % (pattern, count, name))

    def wait_completed(self, msgid, timeout=TIMEOUT):
        self.wait_log(r"^\S+ \S+ %s Completed" % re.escape(msgid), timeout)

    # -- running
    def run(self, *args, input=None, timeout=30, check=False):
        """Run the binary with -C conf and args (not as a daemon); returns CompletedProcess."""
        cmd = [postern_bin(), "-C", self.conf] + list(args)
        r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
        report = sanitizer_report(r.stderr.decode("utf-8", "replace"))
        if report:
            raise AssertionError("sanitizer report from %s:\n%s" % (cmd, report))
        if check and r.returncode != 0:
            raise AssertionError("%s exited %d: %s" % (cmd, r.returncode, r.stderr.decode()))
        return r

    def start(self, extra_args=(), timeout=TIMEOUT):
        assert self.proc is None
        starts = self.mainlog().count("daemon started")
        self.stdout = open(self.path("daemon.stdout"), "ab")
        self.stderr = open(self.path("daemon.stderr"), "ab")
        cmd = [postern_bin(), "-bdf", "-C", self.conf, "-oX", str(self.port)] + list(extra_args)
        self.proc = subprocess.Popen(cmd, stdout=self.stdout, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=_raise_nofile(self.nofile) if self.nofile else None)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("postern exited with %d at start: %s" %
                                     (self.proc.returncode, self.stderr_text()))
            return self.mainlog().count("daemon started") > starts and self._port_open()
        wait_until(up, timeout, what="postern to listen on port %d" % self.port)
        return self

    def _port_open(self):
        # Only checks that something listens (connect then close at once would make
        # a session: check /proc/net/tcp instead).
        want = ":%04X" % self.port
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(name) as f:
                    for line in f.readlines()[1:]:
                        fields = line.split()
                        if fields[1].endswith(want) and fields[3] == "0A":
                            return True
            except FileNotFoundError:
                pass
        return False

    def stderr_text(self):
        try:
            with open(self.path("daemon.stderr"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit code (kills after timeout and raises).
        Sessions in the middle of a transaction get up to 10 s to finish, so the bound
        here is larger."""
        if self.proc is None:
            return None
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.proc = None
                raise AssertionError("postern did not exit within %.0fs of SIGTERM" % timeout)
        self.proc = None
        self.stdout.close()
        self.stderr.close()
        return p.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.stdout.close()
        self.stderr.close()

    def threads(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        return None

    def connect(self, source=None, banner=True, timeout=TIMEOUT):
        return SMTPConn(self.port, source=source, banner=banner, timeout=timeout)


# ---------------------------------------------------------------------------
# raw SMTP client


class SMTPError(AssertionError):
    pass


class SMTPConn:
    """A raw SMTP client over one TCP connection, reading whole (multi-line) replies."""

    def __init__(self, port, host="127.0.0.1", source=None, banner=True, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.banner = self.reply() if banner else None

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SMTPError("connection closed by server; unread: %r" % self.buf)
        self.buf += chunk

    def line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Read one reply: returns (code:int, text:str with lines joined by newline)."""
        lines = []
        while True:
            l = self.line()
            if len(l) < 3 or not l[:3].isdigit():
                raise SMTPError("malformed reply line %r" % l)
            lines.append(l)
            if len(l) == 3 or l[3] == " ":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code):
        """Send line, read its reply, assert the code; return the reply text."""
        c, text = self.cmd(line) if line is not None else self.reply()
        if c != code:
            raise SMTPError("%r: expected %d, got %r" % (line, code, text))
        return text

    def closed(self, timeout=3.0):
        """True if the server closes the connection (EOF or reset) within timeout, with no
        further bytes (any unread bytes are kept in self.buf)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def read_until_close(self, timeout=5.0):
        self.closed(timeout)
        data, self.buf = self.buf, b""
        return data.decode("utf-8", "replace")

    def send_message(self, sender, rcpts, body, ehlo="client.example"):
        """A whole lockstep transaction (EHLO if not yet done is the caller's job)."""
        self.expect("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250)
        self.expect("DATA", 354)
        if isinstance(body, str):
            body = body.encode()
        self.send(body + b"\r\n.\r\n")
        code, text = self.reply()
        if code != 250:
            raise SMTPError("end of data: expected 250, got %r" % text)
        return msgid_of(text)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def msgid_of(reply_text):
    m = re.search(r"\bid=(%s)" % MSGID_RE, reply_text)
    if not m:
        raise SMTPError("no 'OK id=<msgid>' in %r" % reply_text)
    return m.group(1)


def swaks(port, *args, timeout=30):
    """Run swaks against 127.0.0.1:port; returns CompletedProcess (text)."""
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--timeout", "15"] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def send_marked_load(port, n, prefix, acked, lock, stop, lines=20, limit=None):
    """Client n of a durability load: sends messages "<prefix>-<n>-<k>" (Subject,
    X-Marker, and an END-OF-<marker> last line) to box<n % 4>@localhost until stop is
    set (or limit messages), recording acked[marker] = msgid for each 250. Returns
    quietly when the daemon dies under it."""
    k = 0
    try:
        c = SMTPConn(port, timeout=5)
        c.expect("EHLO c%d.example" % n, 250)
        while not stop.is_set() and (limit is None or k < limit):
            marker = "%s-%02d-%05d" % (prefix, n, k)
            k += 1
            c.expect("MAIL FROM:<dur@example.org>", 250)
            c.expect("RCPT TO:<box%d@localhost>" % (n % 4), 250)
            c.expect("DATA", 354)
            c.send("Subject: %s\r\nX-Marker: %s\r\n\r\n%s\r\nEND-OF-%s\r\n.\r\n" %
                   (marker, marker, "line of text\r\n" * lines, marker))
            code, text = c.reply()
            if code == 250:
                with lock:
                    acked[marker] = msgid_of(text)
    except (OSError, AssertionError):
        pass  # the daemon died under us: expected


def count_markers(p, subdirs=("new",)):
    """marker -> copies of it in every mail/*/<subdir> (messages of send_marked_load);
    asserts that each message is whole (its END-OF-<marker> line is there)."""
    got = {}
    base = p.path("mail")
    for user in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        for sub in subdirs:
            d = os.path.join(base, user, sub)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                with open(os.path.join(d, name), "rb") as f:
                    m = f.read()
                mk = re.search(rb"X-Marker: ([a-z]-[\d-]+)", m)
                assert mk, m[:300]
                marker = mk.group(1).decode()
                assert ("END-OF-" + marker).encode() in m, "truncated message %s" % marker
                got[marker] = got.get(marker, 0) + 1
    return got
