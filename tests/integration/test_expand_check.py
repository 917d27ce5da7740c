"""test_expand_check.py - the load-time expansion checker and PCRE2 regular expressions,
against the real binary.

A configuration naming an unknown $variable (in an ACL, a router option or an expanded
main option) or holding a regular expression that does not compile is refused at load
with file:line and the name, by -bP and by the daemon (-bdf), exit status 1. Regular
expressions are Perl-compatible (\\d, (?i), look-ahead) end to end in an SMTP dialogue, and
a pattern that explodes defers the command (451) instead of holding a worker."""

import os
import re
import subprocess

import pytest

import postern_harness as h


def _line_of(text, needle):
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            return i
    raise AssertionError("%r not in config" % needle)


BROKEN = {
    "acl-condition": (dict(acl="acl_x:\n  deny  condition = ${if eq{$no_such_var}{x}}\n"),
                      "$no_such_var}{x}", "$no_such_var"),
    "acl-logwrite-braced": (dict(acl="acl_x:\n  warn  logwrite = ${sendr_address}\n"),
                            "logwrite = ${sendr_address}", "$sendr_address"),
    "router-option": (dict(routers=h.DEFAULT_ROUTERS.replace(
        "driver = accept", "driver = accept\n  condition = ${if eq{$sender_adress}{}}")),
                      "$sender_adress", "$sender_adress"),
    "main-option": (dict(main={"smtp_banner": "$primary_hostname hi $no_such_var"}),
                    "smtp_banner", "$no_such_var"),
    # the banner is expanded before any message: a message variable is refused there
    "main-option-lifetime": (dict(main={"smtp_banner": "$primary_hostname $sender_address"}),
                             "smtp_banner", "$sender_address"),
    "named-list": (dict(lists=["domainlist other = a.example : $no_such_var"]),
                   "domainlist other", "$no_such_var"),
    "bad-regex-list": (dict(rcpt_acl="acl_check_rcpt:\n  deny  local_parts = ^(ab\n"
                                     "  accept  domains = +local_domains\n"),
                       "local_parts = ^(ab", "regular expression error"),
    "bad-regex-match": (dict(acl="acl_x:\n  deny  condition = ${if match{$domain}{a(?<=a+)b}}\n"),
                        "a(?<=a+)b", "regular expression error"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_refused_at_load_with_file_line_name(tmp_path, case):
    cfg, needle, word = BROKEN[case]
    p = h.Postern(tmp_path, **cfg)
    text = open(p.conf).read()
    line = _line_of(text, needle)
    want = r"%s:%d\b" % (re.escape(os.path.basename(p.conf)), line)
    r = p.run("-bP", "primary_hostname", timeout=10)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, r.stdout, err)
    assert re.search(want, err) and word in err, err
    try:
        r = subprocess.run([h.postern_bin(), "-bdf", "-C", p.conf, "-oX", str(p.port)],
                           capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the daemon started with a broken configuration (%s)" % case)
    err = r.stderr.decode()
    assert r.returncode == 1 and re.search(want, err) and word in err, err


PCRE_RCPT_ACL = r"""acl_check_rcpt:
  deny    message = numeric local parts are refused
          local_parts = \N^\d+$\N
  deny    message = no shouting
          condition = ${if match{$local_part}{\N(?i)^shout(?=er)\N}}
  defer   message = regex limit
          condition = ${if match{$local_part}{\N^(a|aa|a?)+$\N}}
  accept  domains = +local_domains
  deny    message = relay not permitted
"""


def test_pcre2_in_acls_end_to_end(postern_factory):
    p = postern_factory(rcpt_acl=PCRE_RCPT_ACL)
    p.start()
    c = h.SMTPConn(p.port)
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@example.org>", 250)
    assert "numeric" in c.expect("RCPT TO:<12345@localhost>", 550)
    assert "shouting" in c.expect("RCPT TO:<SHOUTer@localhost>", 550)
    c.expect("RCPT TO:<shout@localhost>", 250)  # the look-ahead needs "er"
    c.expect("RCPT TO:<a1b@localhost>", 250)
    # a pattern that explodes: the match limit stops it and the command is deferred
    code, text = c.cmd("RCPT TO:<%sb@localhost>" % ("a" * 40))
    assert code == 451, text
    c.expect("RCPT TO:<user@localhost>", 250)  # the session and its worker are fine
    c.expect("QUIT", 221)
    p.wait_log(r"temporarily rejected RCPT <a+b@localhost>: match: regular expression match "
               r"failed: match limit exceeded")
