"""conftest.py - pytest fixtures for the postern integration tests.

`postern_factory(**cfg)` writes a configuration (see postern_harness.build_config) into a
fresh temporary directory with spool/, log/ and mail/ below it, picks a free port, and
returns a Postern object; call .start() to run the daemon (`-bdf -C conf -oX port`),
which waits until the port listens. On teardown every started daemon gets SIGTERM, must
exit within 20 s with status 0, print no sanitizer report (ASan/UBSan/TSan builds) on
stderr, and its paniclog must be empty unless the test set .expect_panic.
`postern` is the same with the default configuration, already started.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import postern_harness as h  # noqa: E402


@pytest.fixture
def postern_factory(tmp_path):
    made = []
    counter = [0]

    def make(**cfg):
        counter[0] += 1
        d = tmp_path / ("p%d" % counter[0])
        d.mkdir()
        p = h.Postern(d, **cfg)
        made.append(p)
        return p

    yield make

    problems = []
    for p in made:
        try:
            rc = p.stop()
            if rc not in (None, 0):
                problems.append("postern in %s exited with %d after SIGTERM:\n%s" %
                                (p.tmp, rc, p.stderr_text()[-3000:]))
        except AssertionError as e:
            problems.append(str(e))
        report = h.sanitizer_report(p.stderr_text())
        if report:
            problems.append("sanitizer report from postern in %s:\n%s" % (p.tmp, report))
        panic = p.paniclog()
        if panic.strip() and not p.expect_panic:
            problems.append("paniclog of %s is not empty:\n%s" % (p.tmp, panic))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def postern(postern_factory):
    return postern_factory().start()
