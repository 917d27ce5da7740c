/*
 * test_parse.c - the configuration reader and parser (src/config/reader.c, parse.c):
 * comments, continuations, macros and -D, .include, .ifdef, sections, ACL statements
 * (including the seed's PROXY and DMARC examples), routers/transports, named lists,
 * quoted values, and that every error names the right file:line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "postern/config.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct arena arena;
static char err[1024];
static char tmpdir[PATH_MAX];

static int setup(void **state)
{
    arena_init(&arena, 0);
    err[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    arena_reset(&arena);
    return 0;
}

static bool parse_macros(const char *text, const struct conf_macro *macros, struct conf_tree *t)
{
    return conf_parse_text(&arena, text, strlen(text), "test.conf", macros, t, err, sizeof err);
}

static struct conf_tree parse_ok(const char *text)
{
    struct conf_tree t;
    bool ok = parse_macros(text, NULL, &t);
    if (!ok)
        fail_msg("unexpected parse error: %s", err);
    return t;
}

/* Parse must fail with an error containing `expect`. */
static void parse_fails(const char *text, const char *expect)
{
    struct conf_tree t;
    assert_false(parse_macros(text, NULL, &t));
    if (!strstr(err, expect))
        fail_msg("error \"%s\" does not contain \"%s\"", err, expect);
}

static const struct conf_item *main_item(const struct conf_tree *t, const char *name)
{
    for (const struct conf_item *i = t->main_items; i; i = i->next)
        if (strcmp(i->name, name) == 0)
            return i;
    fail_msg("no main item %s", name);
    return NULL;
}

static const char *main_value(const struct conf_tree *t, const char *name)
{
    return main_item(t, name)->value;
}

static int count_items(const struct conf_item *i)
{
    int n = 0;
    for (; i; i = i->next)
        n++;
    return n;
}

static void write_file(const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool parse_tmp_file(const char *name, const struct conf_macro *macros, struct conf_tree *t)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return conf_parse_file(&arena, path, macros, t, err, sizeof err);
}

/* ---- basic structure ---- */

static void test_embedded_default(void **state)
{
    struct conf_tree t = parse_ok(config_embedded_default);
    assert_string_equal(main_value(&t, "primary_hostname"), "localhost");
    assert_string_equal(main_value(&t, "message_size_limit"), "50M");
    assert_non_null(t.acls);
    assert_string_equal(t.acls->name, "acl_check_rcpt");
    assert_non_null(t.acls->next);
    assert_string_equal(t.acls->next->name, "acl_check_data");
    assert_string_equal(t.routers->name, "local_user");
    assert_null(t.routers->next);
    assert_string_equal(t.transports->name, "local_maildir");
    assert_int_equal(count_items(t.transports->items), 4);
    const struct conf_named_list *l = t.lists;
    assert_int_equal(l->kind, CONF_LIST_DOMAIN);
    assert_string_equal(l->name, "local_domains");
    assert_string_equal(l->next->value, "<; 127.0.0.1 ; ::1");
}

static void test_comments_and_blank_lines(void **state)
{
    struct conf_tree t = parse_ok("# comment\n"
                                  "   # indented comment\n"
                                  "\n"
                                  "\t\n"
                                  "a = value # not a comment\n"
                                  "b=x#y\n");
    assert_int_equal(count_items(t.main_items), 2);
    assert_string_equal(main_value(&t, "a"), "value # not a comment");
    assert_string_equal(main_value(&t, "b"), "x#y");
    assert_int_equal(main_item(&t, "b")->line, 6);
    assert_string_equal(main_item(&t, "b")->file, "test.conf");
}

static void test_continuation(void **state)
{
    struct conf_tree t = parse_ok("a = uucp:\\\n"
                                  "      # comment inside a continuation is dropped\n"
                                  "      mail   \n"
                                  "b = one \\   \n"
                                  "    two\n"
                                  "c = x\\\n"
                                  "\n"
                                  "d = after blank\n"
                                  "e = last\\");
    assert_string_equal(main_value(&t, "a"), "uucp:mail");
    assert_string_equal(main_value(&t, "b"), "one two");
    assert_string_equal(main_value(&t, "c"), "x"); /* the blank line ended it */
    assert_string_equal(main_value(&t, "d"), "after blank");
    assert_int_equal(main_item(&t, "d")->line, 8);
    assert_string_equal(main_value(&t, "e"), "last");
}

static void test_crlf(void **state)
{
    struct conf_tree t = parse_ok("a = 1\r\nb = two \\\r\n  three\r\n");
    assert_string_equal(main_value(&t, "a"), "1");
    assert_string_equal(main_value(&t, "b"), "two three");
}

static void test_bare_booleans(void **state)
{
    struct conf_tree t = parse_ok("prdr_enable\nno_smtp_enforce_sync\nnot_foo\nno_\n");
    const struct conf_item *i = t.main_items;
    assert_string_equal(i->name, "prdr_enable");
    assert_null(i->value);
    assert_false(i->negated);
    i = i->next;
    assert_string_equal(i->name, "smtp_enforce_sync");
    assert_true(i->negated);
    assert_null(i->value);
    i = i->next;
    assert_string_equal(i->name, "foo");
    assert_true(i->negated);
    i = i->next;
    assert_string_equal(i->name, "no_"); /* nothing after the prefix: not a negation */
    assert_false(i->negated);
}

static void test_quoted_values(void **state)
{
    struct conf_tree t = parse_ok("a = \"tab\\there\\nnl \\\\ \\\" \\x41\\101\\q\"\n"
                                  "b = \"not\" wholly quoted\n"
                                  "c = \"  spaces kept  \"\n"
                                  "d = \"\"\n"
                                  "e = \"\\x4g\"\n"
                                  "f = \"unterminated\n");
    assert_string_equal(main_value(&t, "a"), "tab\there\nnl \\ \" AAq");
    assert_string_equal(main_value(&t, "b"), "\"not\" wholly quoted");
    assert_string_equal(main_value(&t, "c"), "  spaces kept  ");
    assert_string_equal(main_value(&t, "d"), "");
    assert_string_equal(main_value(&t, "e"), "\x04g");
    assert_string_equal(main_value(&t, "f"), "\"unterminated");
    parse_fails("a = \"x\\0y\"\n", "test.conf:1: quoted value contains a NUL");
}

/* ---- macros ---- */

static void test_macros(void **state)
{
    struct conf_tree t = parse_ok("A = one\n"
                                  "AB = two\n"
                                  "EMPTY =\n"
                                  "x = A AB ABC xA _A A_ (A)\n"
                                  "EMPTY\n"
                                  "MAC = initial\n"
                                  "MAC == MAC plus\n"
                                  "y = MAC\n"
                                  "begin acl\n"
                                  "check:\n"
                                  "  accept hosts = AB\n"
                                  "begin routers\n"
                                  "r:\n"
                                  "  data = A\n");
    /* longest name first, must start a word; the rest of the word does not matter */
    assert_string_equal(main_value(&t, "x"), "one two twoC xA _A one_ (one)");
    assert_string_equal(main_value(&t, "y"), "initial plus");
    assert_string_equal(t.acls->stmts->items->value, "two");
    assert_string_equal(t.routers->items->value, "one");
    assert_int_equal(count_items(t.main_items), 2); /* the line "EMPTY" was dropped */
    const struct conf_macro *m = t.macros;
    assert_string_equal(m->name, "A");
    assert_string_equal(m->next->name, "AB");
    assert_string_equal(m->next->next->name, "EMPTY");
    assert_string_equal(m->next->next->value, "");
    assert_string_equal(m->next->next->next->value, "initial plus");
}

static void test_macro_errors(void **state)
{
    parse_fails("A = 1\nb = 2\nA = 3\n", "test.conf:3: macro \"A\" is already defined");
    parse_fails("\n\nB == 3\n", "test.conf:3: macro \"B\" is not defined");
    parse_fails("a = 1\nBad macro line\n", "test.conf:2: malformed macro definition");
}

static void test_cmdline_macros(void **state)
{
    struct conf_macro d2 = {"OTHER", "fromD", NULL};
    struct conf_macro d1 = {"LIMIT", "10M", &d2};
    struct conf_tree t;
    assert_true(parse_macros("LIMIT = 50M\n"
                             "LIMIT == 60M\n"
                             "message_size_limit = LIMIT\n"
                             "x = OTHER\n"
                             ".ifdef OTHER\n"
                             "y = defined\n"
                             ".endif\n",
                             &d1, &t));
    assert_string_equal(main_value(&t, "message_size_limit"), "10M");
    assert_string_equal(main_value(&t, "x"), "fromD");
    assert_string_equal(main_value(&t, "y"), "defined");

    struct conf_macro bad = {"lower", "x", NULL};
    assert_false(parse_macros("a = 1\n", &bad, &t));
    assert_non_null(strstr(err, "-D: invalid macro name \"lower\""));
}

/* ---- conditionals ---- */

static void test_ifdef(void **state)
{
    struct conf_tree t = parse_ok("DEF = 1\n"
                                  ".ifdef DEF\n"
                                  "a = yes\n"
                                  "  .ifndef DEF\n"
                                  "  b = no\n"
                                  "  .elifdef NOPE\n"
                                  "  c = no\n"
                                  "  .else\n"
                                  "  d = yes\n"
                                  "  .endif\n"
                                  ".else\n"
                                  "e = no\n"
                                  "  .ifdef DEF\n"
                                  "  f = no (outer branch is dead)\n"
                                  "  .endif\n"
                                  ".endif trailing words are a comment\n"
                                  ".ifdef NOPE\n"
                                  "g = no\n"
                                  ".elifndef NOPE\n"
                                  "h = yes\n"
                                  ".elifdef DEF\n"
                                  "i = no (a branch was already taken)\n"
                                  ".endif\n"
                                  ".ifdef NOPE\n"
                                  ".include /nonexistent/dead/include/is/not/read\n"
                                  ".endif\n");
    const char *want[] = {"a", "d", "h"};
    const struct conf_item *it = t.main_items;
    for (size_t k = 0; k < 3; k++, it = it->next) {
        assert_non_null(it);
        assert_string_equal(it->name, want[k]);
    }
    assert_null(it);
}

static void test_ifdef_errors(void **state)
{
    struct conf_tree t;
    assert_false(parse_macros("a = 1\n.ifdef X\nb = 2\n.ifdef Y\n.endif\n", NULL, &t));
    assert_string_equal(err, "test.conf:2: missing .endif for this conditional");
    parse_fails("a = 1\n.endif\n", "test.conf:2: .endif without a matching .ifdef");
    parse_fails(".ifdef X\n.else\n.else\n.endif\n", "test.conf:3: .else after .else");
    parse_fails(".ifdef X\n.else\n.elifdef Y\n.endif\n", "test.conf:3: .elifdef after .else");
    parse_fails("\n.else\n", "test.conf:2: .else without");
    parse_fails(".ifdef\n.endif\n", "test.conf:1: .ifdef needs a macro name");
    parse_fails("a = 1\n.frobnicate x\n", "test.conf:2: unknown directive (near '.frobnicate')");
}

/* ---- .include ---- */

static void test_include(void **state)
{
    write_file("main.conf", "SUB = sub\n"
                            "a = 1\n"
                            ".include SUB/inc.conf\n"
                            "c = 3 \\\n"
                            "  .include \"part.conf\"\n"
                            ".include_if_exists missing.conf\n"
                            "d = 4\n");
    write_file("sub/inc.conf", "# included\n"
                               "b = from include\n"
                               "INC = macro from include\n");
    write_file("part.conf", "more\n");
    struct conf_tree t;
    if (!parse_tmp_file("main.conf", NULL, &t))
        fail_msg("%s", err);
    assert_string_equal(main_value(&t, "b"), "from include");
    assert_int_equal(main_item(&t, "b")->line, 2);
    assert_non_null(strstr(main_item(&t, "b")->file, "/sub/inc.conf"));
    assert_string_equal(main_value(&t, "c"), "3 more");
    assert_int_equal(main_item(&t, "d")->line, 7);
    assert_non_null(strstr(main_item(&t, "d")->file, "/main.conf"));
    assert_string_equal(t.macros->next->name, "INC");
}

static void test_include_errors(void **state)
{
    struct conf_tree t;
    write_file("bad_inner.conf", "ok = 1\n\nthis is wrong\n");
    write_file("bad_outer.conf", "a = 1\n.include bad_inner.conf\n");
    assert_false(parse_tmp_file("bad_outer.conf", NULL, &t));
    assert_non_null(strstr(err, "/bad_inner.conf:3: malformed main option setting"));

    write_file("missing.conf", "a = 1\n\n.include nothere.conf\n");
    assert_false(parse_tmp_file("missing.conf", NULL, &t));
    assert_non_null(strstr(err, "/missing.conf:3: .include: cannot read "));

    write_file("loop.conf", ".include loop.conf\n");
    assert_false(parse_tmp_file("loop.conf", NULL, &t));
    assert_non_null(strstr(err, "nested more than"));

    write_file("unbalanced_inc.conf", "x = 1\n.ifdef FOO\n");
    write_file("unbalanced.conf", ".include unbalanced_inc.conf\n.endif\n");
    assert_false(parse_tmp_file("unbalanced.conf", NULL, &t));
    assert_non_null(strstr(err, "/unbalanced_inc.conf:2: missing .endif"));

    const char *text = "a = 1\n.include /etc/hostname\n";
    assert_false(conf_parse_text_flags(&arena, text, strlen(text), "fuzz", NULL,
                                       CONF_PARSE_NO_INCLUDE, &t, err, sizeof err));
    assert_string_equal(err, "fuzz:2: .include is not allowed here (near '.include')");

    assert_false(conf_parse_file(&arena, "/nonexistent/postern.conf", NULL, &t, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/postern.conf: cannot read configuration file"));
}

/* ---- sections ---- */

static void test_named_lists(void **state)
{
    struct conf_tree t = parse_ok("hostlist relay = 127.0.0.1 : ::::1\n"
                                  "domainlist local = @ : localhost\n"
                                  "addresslist bad_senders = a@b.example\n"
                                  "localpartlist   admins=root : postmaster\n");
    const struct conf_named_list *l = t.lists;
    assert_int_equal(l->kind, CONF_LIST_HOST);
    assert_string_equal(l->value, "127.0.0.1 : ::::1");
    l = l->next;
    assert_int_equal(l->kind, CONF_LIST_DOMAIN);
    l = l->next;
    assert_int_equal(l->kind, CONF_LIST_ADDRESS);
    assert_string_equal(l->name, "bad_senders");
    l = l->next;
    assert_int_equal(l->kind, CONF_LIST_LOCALPART);
    assert_string_equal(l->name, "admins");
    assert_string_equal(l->value, "root : postmaster");
    assert_int_equal(l->line, 4);
    assert_null(t.main_items);

    parse_fails("hostlist a = 1\nhostlist a = 2\n", "test.conf:2: there is already a hostlist");
    parse_fails("\nhostlist_cache a = 1\n",
                "test.conf:2: this kind of named list is not supported");
    parse_fails("domainlist = x\n", "test.conf:1: malformed domainlist");
    parse_fails("domainlist foo bar\n", "test.conf:1: malformed domainlist");
}

static void test_section_errors(void **state)
{
    parse_fails("a = 1\nbegin retry\n", "test.conf:2: section \"begin retry\" is not supported "
                                        "(near 'retry')");
    parse_fails("begin rewrite\n", "test.conf:1: section \"begin rewrite\" is not supported");
    parse_fails("\n\n\nbegin authenticators\n", "test.conf:4: section \"begin authenticators\"");
    parse_fails("begin frobs\n", "test.conf:1: unknown configuration section (near 'frobs')");
    parse_fails("begin acl\nbegin routers\nbegin acl\n", "test.conf:3: section \"begin acl\" "
                                                         "appears twice");
    parse_fails("a = 1\nthis line is bad\n", "test.conf:2: malformed main option setting");
    parse_fails("a = 1\nfoo : bar\n", "(near 'foo')");
    const char nul[] = "a = 1\nb = x\0y\n";
    struct conf_tree t;
    assert_false(
        conf_parse_text(&arena, nul, sizeof nul - 1, "nul.conf", NULL, &t, err, sizeof err));
    assert_string_equal(err, "nul.conf:2: NUL byte in configuration text");
}

static void test_routers_transports(void **state)
{
    struct conf_tree t = parse_ok("begin routers\n"
                                  "dnslookup:\n"
                                  "  driver = dnslookup\n"
                                  "  no_verify\n"
                                  "  domains = ! +local_domains\n"
                                  "aliases: driver = redirect\n"
                                  "  allow_fail\n"
                                  "  data = ${lookup{$local_part}lsearch{/etc/aliases}}\n"
                                  "begin transports\n"
                                  "remote_smtp:\n"
                                  "  driver = smtp\n");
    const struct conf_block *r = t.routers;
    assert_string_equal(r->name, "dnslookup");
    assert_int_equal(r->line, 2);
    assert_string_equal(r->items->name, "driver");
    assert_string_equal(r->items->next->name, "verify");
    assert_true(r->items->next->negated);
    assert_null(r->items->next->value);
    assert_string_equal(r->items->next->next->value, "! +local_domains");
    r = r->next;
    assert_string_equal(r->name, "aliases");
    assert_string_equal(r->items->value, "redirect");
    assert_int_equal(count_items(r->items), 3);
    assert_string_equal(t.transports->name, "remote_smtp");

    parse_fails("begin routers\n  driver = accept\n",
                "test.conf:2: router option before any router name (near 'driver')");
    parse_fails("begin transports\nt:\n driver = x\nt:\n",
                "test.conf:4: there is already a transport called \"t\" (test.conf:2)");
    parse_fails("begin routers\nr:\n  data x\n", "test.conf:3: malformed router option");
}

/* ---- ACLs ---- */

static const struct conf_acl_stmt *stmt_at(const struct conf_acl *a, int index)
{
    const struct conf_acl_stmt *s = a->stmts;
    while (s && index--)
        s = s->next;
    assert_non_null(s);
    return s;
}

static void test_acl_statements(void **state)
{
    struct conf_tree t = parse_ok("begin acl\n"
                                  "check_rcpt:\n"
                                  "  accept\n"
                                  "  deny    message = Restricted characters\n"
                                  "          local_parts = ^[.] : ^.*[@%!/|]\n"
                                  "  require verify = sender\n"
                                  "  defer   !dcc = *\n"
                                  "  drop    ! hosts = +bad\n"
                                  "  discard senders = :\n"
                                  "  warn    set acl_m_x = \"a\\tb\"\n"
                                  "          set acl_c0=1\n"
                                  "\n"
                                  "second:\n"
                                  "  accept  hosts = :\n");
    const struct conf_acl *a = t.acls;
    assert_string_equal(a->name, "check_rcpt");
    assert_null(stmt_at(a, 0)->items);
    assert_string_equal(stmt_at(a, 0)->verb, "accept");
    const struct conf_acl_stmt *s = stmt_at(a, 1);
    assert_string_equal(s->verb, "deny");
    assert_int_equal(s->line, 4);
    assert_string_equal(s->items->name, "message");
    assert_string_equal(s->items->next->value, "^[.] : ^.*[@%!/|]");
    assert_int_equal(s->items->next->line, 5);
    s = stmt_at(a, 3);
    assert_string_equal(s->verb, "defer");
    assert_true(s->items->negated);
    assert_string_equal(s->items->name, "dcc");
    s = stmt_at(a, 4);
    assert_true(s->items->negated);
    assert_string_equal(s->items->name, "hosts");
    s = stmt_at(a, 6);
    assert_string_equal(s->items->name, "set");
    assert_string_equal(s->items->value, "acl_m_x = a\tb");
    assert_string_equal(s->items->next->value, "acl_c0 = 1");
    assert_string_equal(a->next->name, "second");
    assert_string_equal(a->next->stmts->items->value, ":");
}

static void test_acl_errors(void **state)
{
    parse_fails("begin acl\n  accept\n", "test.conf:2: ACL statement before any ACL name");
    parse_fails("begin acl\na:\n  hosts = x\n",
                "test.conf:3: ACL condition or modifier before any verb (near 'hosts')");
    parse_fails("begin acl\na:\n  accept hosts\n",
                "test.conf:3: ACL condition or modifier \"hosts\" without '=' (near 'hosts')");
    parse_fails("begin acl\na:\n  accept\n  endpass\n", "test.conf:4: ACL condition or modifier "
                                                        "\"endpass\" without '='");
    parse_fails("begin acl\na:\n  warn set acl_m_x\n", "test.conf:3: \"set\" needs");
    parse_fails("begin acl\na:\nb:\na:\n", "test.conf:4: there is already an ACL called \"a\"");
    parse_fails("begin acl\na: accept\n", "test.conf:2: unexpected text after ACL name");
    parse_fails("begin acl\na:\n  Accept\n", "test.conf:3: ACL condition or modifier before any "
                                             "verb (near 'Accept')");
    parse_fails("begin acl\na:\n  accept\n  = x\n", "test.conf:4: malformed ACL condition");
}

/* The PROXY connect-ACL example from the seed (experimental-spec), verbatim. */
static const char seed_proxy_acl[] =
    "begin acl\n"
    "check_connect:\n"
    "  warn    condition      = ${if and{ {bool{$proxy_session}} \\\n"
    "                                     {eq{$proxy_host_address}{}} } }\n"
    "          log_message    = Failed required proxy protocol negotiation \\\n"
    "                           from $sender_host_name [$sender_host_address]\n"
    "\n"
    "  warn    condition      = ${if and{ {bool{$proxy_session}} \\\n"
    "                                     {!eq{$proxy_host_address}{}} } }\n"
    "          # But don't log health probes from the proxy itself\n"
    "          condition      = ${if eq{$proxy_host_address}{$sender_host_address} \\\n"
    "                                {false}{true}}\n"
    "          log_message    = Successfully proxied from $sender_host_name \\\n"
    "                           [$sender_host_address] through proxy protocol \\\n"
    "                           host $proxy_host_address\n"
    "\n"
    "  # Possibly more clear\n"
    "  warn logwrite = Remote Source Address: $sender_host_address:$sender_host_port\n"
    "       logwrite = Proxy Target Address: $proxy_target_address:$proxy_target_port\n"
    "       logwrite = Proxy Internal Address: $proxy_host_address:$proxy_host_port\n"
    "       logwrite = Internal Server Address: $received_ip_address:$received_port\n";

static void test_seed_proxy_acl(void **state)
{
    struct conf_tree t = parse_ok(seed_proxy_acl);
    const struct conf_acl *a = t.acls;
    const struct conf_acl_stmt *s = stmt_at(a, 0);
    assert_string_equal(s->items->value,
                        "${if and{ {bool{$proxy_session}} {eq{$proxy_host_address}{}} } }");
    assert_string_equal(s->items->next->value, "Failed required proxy protocol negotiation "
                                               "from $sender_host_name [$sender_host_address]");
    s = stmt_at(a, 1);
    assert_int_equal(s->line, 8);
    assert_int_equal(count_items(s->items), 3);
    assert_string_equal(s->items->next->value,
                        "${if eq{$proxy_host_address}{$sender_host_address} {false}{true}}");
    assert_int_equal(s->items->next->line, 11);
    assert_string_equal(s->items->next->next->value,
                        "Successfully proxied from $sender_host_name [$sender_host_address] "
                        "through proxy protocol host $proxy_host_address");
    s = stmt_at(a, 2);
    assert_string_equal(s->verb, "warn");
    assert_int_equal(count_items(s->items), 4);
    assert_string_equal(s->items->name, "logwrite");
    assert_string_equal(s->items->next->next->next->value,
                        "Internal Server Address: $received_ip_address:$received_port");
    assert_null(s->next);
}

/* The DMARC example ACLs from the seed, as two ACLs. */
static const char seed_dmarc_acls[] =
    "begin acl\n"
    "rcpt:\n"
    "  warn    domains        = +local_domains\n"
    "          hosts          = +local_hosts\n"
    "          control        = dmarc_disable_verify\n"
    "\n"
    "  warn    !domains       = +screwed_up_dmarc_records\n"
    "          control        = dmarc_enable_forensic\n"
    "\n"
    "  warn    condition      = (lookup if destined to mailing list)\n"
    "          set acl_m_mailing_list = 1\n"
    "data:\n"
    "  warn    dmarc_status   = accept : none : off\n"
    "          !authenticated = *\n"
    "          log_message    = DMARC DEBUG: $dmarc_status $dmarc_used_domain\n"
    "          add_header     = $dmarc_ar_header\n"
    "\n"
    "  warn    dmarc_status   = !accept\n"
    "          !authenticated = *\n"
    "          log_message    = DMARC DEBUG: '$dmarc_status' for $dmarc_used_domain\n"
    "\n"
    "  warn    dmarc_status   = quarantine\n"
    "          !authenticated = *\n"
    "          set $acl_m_quarantine = 1\n"
    "          # Do something in a transport with this flag variable\n"
    "\n"
    "  deny    condition      = ${if eq{$dmarc_domain_policy}{reject}}\n"
    "          condition      = ${if eq{$acl_m_mailing_list}{1}}\n"
    "          message        = Messages from $dmarc_used_domain break mailing lists\n"
    "\n"
    "  deny    dmarc_status   = reject\n"
    "          !authenticated = *\n"
    "          message        = Message from $domain_used_domain failed sender's DMARC "
    "policy, REJECT\n";

static void test_seed_dmarc_acls(void **state)
{
    struct conf_tree t = parse_ok(seed_dmarc_acls);
    const struct conf_acl *rcpt = t.acls, *data = t.acls->next;
    assert_string_equal(rcpt->name, "rcpt");
    assert_true(stmt_at(rcpt, 1)->items->negated);
    assert_string_equal(stmt_at(rcpt, 2)->items->next->value, "acl_m_mailing_list = 1");
    assert_string_equal(data->name, "data");
    const struct conf_acl_stmt *s = stmt_at(data, 1);
    assert_string_equal(s->items->value, "!accept");
    assert_false(s->items->negated);
    assert_true(s->items->next->negated);
    assert_string_equal(s->items->next->name, "authenticated");
    assert_string_equal(stmt_at(data, 2)->items->next->next->value, "$acl_m_quarantine = 1");
    s = stmt_at(data, 4);
    assert_string_equal(s->verb, "deny");
    assert_string_equal(s->items->next->next->value,
                        "Message from $domain_used_domain failed sender's DMARC policy, REJECT");
    assert_null(s->next);
}

static void test_macros_in_acl_between_blocks(void **state)
{
    struct conf_tree t = parse_ok("begin acl\n"
                                  "RELAY = 10.0.0.1\n"
                                  "a:\n"
                                  "  accept hosts = RELAY\n"
                                  "begin routers\n"
                                  "TR = local\n"
                                  "r:\n"
                                  "  transport = TR\n");
    assert_string_equal(t.acls->stmts->items->value, "10.0.0.1");
    assert_string_equal(t.routers->items->value, "local");
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(void)
{
    char tmpl[] = "/tmp/postern-test-config-XXXXXX";
    if (!mkdtemp(tmpl))
        return 1;
    snprintf(tmpdir, sizeof tmpdir, "%s", tmpl);
    char sub[PATH_MAX + 8];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    if (mkdir(sub, 0700) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_embedded_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_comments_and_blank_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continuation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crlf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_booleans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_macros, setup, teardown),
        cmocka_unit_test_setup_teardown(test_macro_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_macros, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ifdef, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ifdef_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_section_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routers_transports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_proxy_acl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_dmarc_acls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_macros_in_acl_between_blocks, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed;
}
