"""exim_peer - a private Exim 4.96 (Debian's exim4-daemon-heavy) as a peer of postern in
the integration tests, unpacked from Debian's packages into the build directory: it never
replaces the machine's MTA and nothing is installed.

Owns: obtaining the binary (`apt-get download exim4-daemon-heavy exim4-base` + `dpkg -x`
into $POSTERN_BUILD_DIR/exim-peer, reused when present), the Debian-exim user its -C mode
drops to, and one Exim instance per test directory (configuration, spool, logs) whose
commands run in a private mount namespace where /etc/resolv.conf names only 127.0.0.1,
so that no DNS query it might make can leave the machine.

`exim_binary()` raises EximUnavailable (with the reason) when the peer cannot be had;
tests turn that into pytest.skip. Used from the pytest process only.
"""

import os
import pwd
import re
import shutil
import subprocess
import tempfile

PACKAGES = ("exim4-daemon-heavy", "exim4-base")
EXIM_USER = "Debian-exim"
RUN_TIMEOUT = 60  # bound for one Exim command (a submission with foreground delivery)


class EximUnavailable(Exception):
    pass


def _peer_dir():
    build = os.environ.get("POSTERN_BUILD_DIR")
    if not build:
        raise EximUnavailable("POSTERN_BUILD_DIR is not set (run through ctest)")
    return os.path.join(build, "exim-peer")


def _unpack(dest):
    """Download the packages and unpack them into dest/root (atomically: a scratch dir
    renamed at the end, so a failed run leaves nothing half-made)."""
    scratch = tempfile.mkdtemp(prefix="exim-peer.", dir=os.path.dirname(dest))
    os.chmod(scratch, 0o755)  # Exim re-executes itself as Debian-exim: it must reach it
    try:
        debs = os.path.join(scratch, "debs")
        os.mkdir(debs)
        try:
            r = subprocess.run(["apt-get", "download"] + list(PACKAGES), cwd=debs,
                               capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EximUnavailable("apt-get download %s: %s" % (" ".join(PACKAGES), e))
        if r.returncode != 0:
            raise EximUnavailable("apt-get download %s failed (%d): %s" %
                                  (" ".join(PACKAGES), r.returncode, r.stderr.strip()[-500:]))
        root = os.path.join(scratch, "root")
        for name in sorted(os.listdir(debs)):
            subprocess.run(["dpkg", "-x", os.path.join(debs, name), root], check=True,
                           capture_output=True, timeout=120)
        os.rename(scratch, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _ensure_user():
    try:
        pwd.getpwnam(EXIM_USER)
        return
    except KeyError:
        pass
    r = subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                        EXIM_USER], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise EximUnavailable("cannot create user %s: %s" % (EXIM_USER, r.stderr.strip()))


def exim_binary():
    """Path of the unpacked exim4 binary, downloading it the first time."""
    if os.geteuid() != 0:
        raise EximUnavailable("needs root (Exim's -C mode and unshare -m)")
    for tool in ("apt-get", "dpkg", "unshare", "mount"):
        if not shutil.which(tool):
            raise EximUnavailable("%s not found" % tool)
    dest = _peer_dir()
    exim = os.path.join(dest, "root", "usr", "sbin", "exim4")
    if not os.access(exim, os.X_OK):
        shutil.rmtree(dest, ignore_errors=True)
        _unpack(dest)
    if not os.access(exim, os.X_OK):
        raise EximUnavailable("no %s after unpacking %s" % (exim, " ".join(PACKAGES)))
    r = subprocess.run(["ldd", exim], capture_output=True, text=True, timeout=30)
    missing = re.findall(r"^\s*(\S+) => not found", r.stdout, re.M)
    if missing:
        raise EximUnavailable("exim4 needs %s (apt-get install libmariadb3 libidn12)" %
                              " ".join(missing))
    _ensure_user()
    return exim


CONF_TEMPLATE = """\
# Exim as a client of postern, written by tests/integration/exim_peer.py
primary_hostname = exim.test.example
qualify_domain = exim.test.example
exim_path = @EXIM@
spool_directory = @DIR@/spool
log_file_path = @DIR@/log/%slog
pid_file_path = @DIR@/exim.pid
never_users = root
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
daemon_smtp_ports =
keep_environment =
@MAIN@

begin routers

@ROUTERS@

begin transports

@TRANSPORTS@

begin retry

*   *   F,1h,15m
"""


class Exim:
    """One Exim instance rooted at tmp: exim.conf, spool/, log/ below it."""

    def __init__(self, tmp, main="", routers="", transports=""):
        self.exim = exim_binary()
        self.tmp = str(tmp)
        self.conf = os.path.join(self.tmp, "exim.conf")
        user = pwd.getpwnam(EXIM_USER)
        for d in ("spool", "log"):
            path = os.path.join(self.tmp, d)
            os.makedirs(path, exist_ok=True)
            os.chown(path, user.pw_uid, user.pw_gid)
        # the test's tmp_path is private to root (0700): Exim, once it has dropped to
        # Debian-exim, must be able to traverse down to its spool and logs
        self._open_path_for_exim()
        self.resolv = os.path.join(self.tmp, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        text = CONF_TEMPLATE
        for key, value in (("@MAIN@", main), ("@ROUTERS@", routers),
                           ("@TRANSPORTS@", transports), ("@EXIM@", self.exim),
                           ("@DIR@", self.tmp)):
            text = text.replace(key, value)
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o644)

    def _open_path_for_exim(self):
        path = self.tmp
        while path not in ("/", ""):
            mode = os.stat(path).st_mode
            if not mode & 0o001:
                os.chmod(path, (mode & 0o7777) | 0o711)
            path = os.path.dirname(path)

    def command(self, *args, strace_log=None):
        """The argv that runs exim with args in the private mount namespace (optionally
        under strace, recording every connect/sendto of every process into strace_log)."""
        cmd = [self.exim, "-C", self.conf] + list(args)
        if strace_log:
            cmd = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg",
                   "-o", strace_log] + cmd
        return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.resolv] + cmd

    def run(self, *args, input=None, timeout=RUN_TIMEOUT, strace_log=None):
        return subprocess.run(self.command(*args, strace_log=strace_log), input=input,
                              capture_output=True, timeout=timeout)

    def check_config(self):
        r = self.run("-bV")
        if r.returncode != 0:
            raise AssertionError("exim -bV rejects %s:\n%s%s" %
                                 (self.conf, r.stdout.decode(errors="replace"),
                                  r.stderr.decode(errors="replace")))

    def log(self, name="main"):
        try:
            with open(os.path.join(self.tmp, "log", name + "log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def mainlog(self):
        return self.log("main")

    def paniclog(self):
        return self.log("panic")
