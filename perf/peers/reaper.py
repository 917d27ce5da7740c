#!/usr/bin/python3
"""reaper.py STATUS_FILE CMD [ARGS...] - run CMD as a "child subreaper" and stay.

Servers that daemonize (postfix start) or hand work to detached processes (Exim's
delivery processes) leave orphans. Orphans of a subreaper are reparented to it
rather than to init, so every process the server ever starts stays a descendant of
this one, and the CPU time of the ones that exit is added to an ancestor's cutime/
cstime when it is reaped. perf/compare can then measure "all of the server's
processes" from /proc as the process tree under this pid.

Writes CMD's exit status to STATUS_FILE when CMD returns, keeps reaping orphans,
and exits when it has no children left (the server stopped). SIGTERM is passed on
to CMD if CMD is still running; otherwise it ends the reaper (orphans stay).
"""
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    status_file, cmd = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.stderr.write("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed\n")
        return 1
    child = subprocess.Popen(cmd)
    state = {"child_running": True}

    def on_term(signum, frame):
        if state["child_running"]:
            child.send_signal(signum)
        else:
            sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child.pid:
            state["child_running"] = False
            code = os.waitstatus_to_exitcode(status)
            with open(status_file + ".tmp", "w") as f:
                f.write("%d\n" % code)
            os.replace(status_file + ".tmp", status_file)


if __name__ == "__main__":
    sys.exit(main())
