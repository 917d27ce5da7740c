/*
 * test_lists.c - list_split() and the four list matchers: separators, empty items,
 * negation semantics (Exim's "a list ending in a negative item matches the rest"), named
 * lists from a struct config, CIDR for IPv4 and IPv6, wildcards, regexes, lookups in lists
 * (lsearch, net-/netN-, iplsearch, @@lsearch) on temporary files, "/file" items, list
 * expansion and its failures, and the match_* expansion conditions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../test_files.h"

#include "postern/expand.h"
#include "postern/snapshot.h"
#include "postern/vars.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    struct arena arena;
    struct expand_ctx ctx;
    struct snapshot snap; /* config_add_cleanup needs the snapshot around the config */
    char dir[64];
};

static const char *test_var(struct expand_ctx *ctx, const char *name)
{
    if (strcmp(name, "sender_host_address") == 0)
        return "192.0.2.1";
    if (strcmp(name, "empty") == 0)
        return "";
    return NULL;
}

static void add_list(struct fixture *f, enum conf_list_kind kind, const char *name,
                     const char *value)
{
    struct conf_named_list *l = arena_zalloc(&f->arena, sizeof *l);
    l->kind = kind;
    l->name = name;
    l->value = value;
    l->file = "test.conf";
    l->line = 1;
    l->next = f->snap.config.tree.lists;
    f->snap.config.tree.lists = l;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    arena_init(&f->arena, 4096);
    f->snap.config.arena = &f->arena;
    f->snap.config.primary_hostname = "mx.example.org";
    expand_ctx_init(&f->ctx, &f->arena, &f->snap.config, test_var, NULL);
    if (!test_tmpdir(f->dir, sizeof f->dir, "lists"))
        return -1;
    add_list(f, CONF_LIST_HOST, "relay_hosts", "127.0.0.1 : 192.168.0.0/16 : ::::1");
    add_list(f, CONF_LIST_HOST, "relay_v6", "<; ::1 ; 2001:db8::/32");
    add_list(f, CONF_LIST_HOST, "loop", "+loop");
    add_list(f, CONF_LIST_DOMAIN, "local_domains", "@ : localhost : example.com");
    add_list(f, CONF_LIST_DOMAIN, "dom1", "!a.b");
    add_list(f, CONF_LIST_DOMAIN, "dom2", "+dom1 : *.b");
    add_list(f, CONF_LIST_DOMAIN, "hostile_domains", "*.spam.example : evil.example");
    add_list(f, CONF_LIST_ADDRESS, "bad_senders", "spammer@* : *@+hostile_domains");
    add_list(f, CONF_LIST_LOCALPART, "admins", "root : postmaster");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!test_rmtree(f->dir))
        return -1;
    expand_regex_release_all(&f->snap.config); /* what config_free's cleanup hook does */
    arena_reset(&f->arena);
    free(f);
    return 0;
}

static const char *write_file(struct fixture *f, const char *name, const char *content)
{
    return test_write_file(&f->arena, f->dir, name, content);
}

static const char *result_name(enum match_result r)
{
    static const char *const names[] = {"NO", "YES", "DEFER", "ERROR"};
    return (unsigned)r < 4 ? names[r] : "?";
}

enum kind { HOST, DOMAIN, LOCALPART, ADDRESS };

struct list_case {
    enum kind kind;
    const char *list;
    const char *subject; /* ip for hosts */
    const char *name;    /* host name, hosts only */
    enum match_result want;
};

static void check_case(struct fixture *f, const struct list_case *c)
{
    const char *err = NULL;
    enum match_result r;
    switch (c->kind) {
    case HOST:
        r = list_match_host(&f->ctx, c->list, c->subject, c->name, &err);
        break;
    case DOMAIN:
        r = list_match_domain(&f->ctx, c->list, c->subject, &err);
        break;
    case LOCALPART:
        r = list_match_localpart(&f->ctx, c->list, c->subject, &err);
        break;
    default:
        r = list_match_address(&f->ctx, c->list, c->subject, &err);
        break;
    }
    if (r != c->want) {
        print_error("list \"%s\" subject \"%s\" name \"%s\": want %s got %s (%s)\n", c->list,
                    c->subject ? c->subject : "(null)", c->name ? c->name : "(null)",
                    result_name(c->want), result_name(r), err ? err : "-");
        fail();
    }
    if ((r == MATCH_ERROR || r == MATCH_DEFER) && !err) {
        print_error("list \"%s\": %s without a reason\n", c->list, result_name(r));
        fail();
    }
}

static void run_cases(struct fixture *f, const struct list_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_case(f, &cases[i]);
}

#define RUN(f, cases) run_cases(f, cases, sizeof cases / sizeof cases[0])

static void expect_items(struct fixture *f, const char *list, int n, ...)
{
    const char **items = NULL;
    int got = list_split(&f->arena, list, &items);
    if (got != n) {
        print_error("list \"%s\": want %d items, got %d\n", list, n, got);
        fail();
    }
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        if (strcmp(items[i], want) != 0) {
            print_error("list \"%s\" item %d: want \"%s\", got \"%s\"\n", list, i, want, items[i]);
            va_end(ap);
            fail();
        }
    }
    va_end(ap);
}

static void test_split(void **state)
{
    struct fixture *f = *state;
    expect_items(f, "", 0);
    expect_items(f, "   ", 0);
    expect_items(f, "a : b : c", 3, "a", "b", "c");
    expect_items(f, "a:b:c", 3, "a", "b", "c");
    expect_items(f, "a::b", 1, "a:b");
    expect_items(f, "127.0.0.1 : ::::1", 2, "127.0.0.1", "::1");
    expect_items(f, "<; 127.0.0.1 ; ::1", 2, "127.0.0.1", "::1");
    expect_items(f, "<;a;;b", 1, "a;b");
    expect_items(f, "<, a, b ,c", 3, "a", "b", "c");
    expect_items(f, "<\n a\n b\n", 2, "a", "b");
    expect_items(f, "<\\n a\n b", 2, "a", "b");
    expect_items(f, "<\n a\n\n b", 3, "a", "", "b"); /* control separators never double */
    expect_items(f, "user@domain :", 1, "user@domain");
    expect_items(f, ":", 1, "");
    expect_items(f, "a : : b", 3, "a", "", "b");
    expect_items(f, "  spaced item  :x", 2, "spaced item", "x");
    expect_items(f, "<a b", 1, "<a b"); /* '<' + letter is not a separator change */
}

static void test_host_lists(void **state)
{
    struct fixture *f = *state;
    static const struct list_case cases[] = {
        {HOST, "192.0.2.1", "192.0.2.1", NULL, MATCH_YES},
        {HOST, "192.0.2.1", "192.0.2.2", NULL, MATCH_NO},
        {HOST, "192.0.2.0/24", "192.0.2.200", NULL, MATCH_YES},
        {HOST, "192.0.2.0/24", "192.0.3.1", NULL, MATCH_NO},
        {HOST, "192.168.23.236/31", "192.168.23.237", NULL, MATCH_YES},
        {HOST, "192.168.23.236/31", "192.168.23.238", NULL, MATCH_NO},
        {HOST, "0.0.0.0/0", "203.0.113.9", NULL, MATCH_YES},
        {HOST, "10.0.0.0/8 : 192.0.2.0/24", "192.0.2.5", NULL, MATCH_YES},
        {HOST, "<; 2001:db8::/32 ; ::1", "2001:db8:5::1", NULL, MATCH_YES},
        {HOST, "<; 2001:db8::/32 ; ::1", "::1", NULL, MATCH_YES},
        {HOST, "<; 2001:db8::/32 ; ::1", "2001:db9::1", NULL, MATCH_NO},
        {HOST, "2001::db8::::1", "2001:db8::1", NULL, MATCH_YES},
        {HOST, "2001::db8::::/32", "2001:db8:ffff::1", NULL, MATCH_YES},
        {HOST, "3ffe::ffff::836f::::/48", "3ffe:ffff:836f:1::2", NULL, MATCH_YES},
        {HOST, "192.0.2.0/24", "::ffff:192.0.2.1", NULL, MATCH_YES},
        {HOST, "<; ::ffff:192.0.2.0/120", "192.0.2.1", NULL, MATCH_YES},
        {HOST, "192.0.2.1", "2001:db8::1", NULL, MATCH_NO},
        /* special items */
        {HOST, "*", "192.0.2.1", NULL, MATCH_YES},
        {HOST, "*", NULL, NULL, MATCH_YES},
        {HOST, ":", NULL, NULL, MATCH_YES},
        {HOST, ":", "", NULL, MATCH_YES},
        {HOST, ":", "192.0.2.1", NULL, MATCH_NO},
        {HOST, ": 127.0.0.1", NULL, NULL, MATCH_YES},
        {HOST, ": 127.0.0.1", "127.0.0.1", NULL, MATCH_YES},
        {HOST, ": 127.0.0.1", "10.0.0.1", NULL, MATCH_NO},
        {HOST, "192.0.2.1", NULL, NULL, MATCH_NO},
        {HOST, "", "192.0.2.1", NULL, MATCH_NO},
        {HOST, "", NULL, NULL, MATCH_NO}, /* an empty list has no items at all */
        /* names: only with a known host name */
        {HOST, "*.example.com", "192.0.2.1", "mx.Example.COM", MATCH_YES},
        {HOST, "*.example.com", "192.0.2.1", NULL, MATCH_NO},
        {HOST, "*.example.com", "192.0.2.1", "example.org", MATCH_NO},
        {HOST, "mx.example.com", "192.0.2.1", "MX.example.com", MATCH_YES},
        {HOST, "mx.example.com", "192.0.2.1", NULL, MATCH_NO},
        {HOST, "\\N^mx[0-9]+\\.example\\.com$\\N", "192.0.2.1", "mx12.example.com", MATCH_YES},
        {HOST, "\\N^mx[0-9]+\\.example\\.com$\\N", "192.0.2.1", "mxa.example.com", MATCH_NO},
        {HOST, "@", "192.0.2.1", "mx.example.org", MATCH_YES},
        {HOST, "@", "192.0.2.1", "other.example.org", MATCH_NO},
        {HOST, "10.0.0.1 : *.friend.example", "10.0.0.1", NULL, MATCH_YES},
        /* negation */
        {HOST, "!192.0.2.1 : 192.0.2.0/24", "192.0.2.1", NULL, MATCH_NO},
        {HOST, "!192.0.2.1 : 192.0.2.0/24", "192.0.2.2", NULL, MATCH_YES},
        {HOST, "!192.0.2.1 : 192.0.2.0/24", "10.0.0.1", NULL, MATCH_NO},
        {HOST, "!192.0.2.1", "192.0.2.1", NULL, MATCH_NO},
        {HOST, "!192.0.2.1", "192.0.2.2", NULL, MATCH_YES},
        {HOST, "! 192.0.2.1 : !10.0.0.0/8", "10.1.1.1", NULL, MATCH_NO},
        {HOST, "! 192.0.2.1 : !10.0.0.0/8", "172.16.0.1", NULL, MATCH_YES},
        {HOST, "!192.0.2.1 : 10.0.0.1", "172.16.0.1", NULL, MATCH_NO},
        /* named lists */
        {HOST, "+relay_hosts", "192.168.4.4", NULL, MATCH_YES},
        {HOST, "+relay_hosts", "127.0.0.1", NULL, MATCH_YES},
        {HOST, "+relay_hosts", "10.0.0.1", NULL, MATCH_NO},
        {HOST, "! +relay_hosts", "10.0.0.1", NULL, MATCH_YES},
        {HOST, "! +relay_hosts", "192.168.1.1", NULL, MATCH_NO},
        {HOST, "+RELAY_V6", "2001:db8::25", NULL, MATCH_YES},
        {HOST, "+missing", "10.0.0.1", NULL, MATCH_ERROR},
        {HOST, "+loop", "10.0.0.1", NULL, MATCH_ERROR},
        {HOST, "@[]", "10.0.0.1", NULL, MATCH_ERROR},
        {HOST, "+ignore_unknown : 10.0.0.1", "10.0.0.1", NULL, MATCH_YES},
        /* expansion first */
        {HOST, "$sender_host_address", "192.0.2.1", NULL, MATCH_YES},
        {HOST, "${if eq{a}{a}{192.0.2.1}{10.0.0.1}}", "192.0.2.1", NULL, MATCH_YES},
        {HOST, "<; ${if eq{a}{a}{::1}{10.0.0.1}} ; 10.9.9.9", "::1", NULL, MATCH_YES},
        {HOST, "${if eq{a}{b}{192.0.2.1}fail}", "192.0.2.1", NULL, MATCH_NO},
        {HOST, "$nosuchvariable", "192.0.2.1", NULL, MATCH_ERROR},
        {HOST, "${iff}", "192.0.2.1", NULL, MATCH_ERROR},
    };
    RUN(f, cases);
    const char *err = NULL;
    assert_int_equal(list_match_host(&f->ctx, "+missing", "10.0.0.1", NULL, &err), MATCH_ERROR);
    assert_non_null(strstr(err, "unknown named list"));
    assert_int_equal(list_match_host(&f->ctx, "@[]", "10.0.0.1", NULL, &err), MATCH_ERROR);
    assert_non_null(strstr(err, "@[]"));
}

static void test_host_lookups(void **state)
{
    struct fixture *f = *state;
    const char *bynet = write_file(f, "bynet",
                                   "192.0.2.0/24: documentation\n"
                                   "2001.0db8.0000.0000.0000.0000.0000.0000/64 v6net\n");
    const char *byip = write_file(f, "byip",
                                  "# single addresses\n"
                                  "192.0.2.7\n"
                                  "2001.0db8.0000.0000.0000.0000.0000.0001\n");
    const char *ipfile = write_file(f, "ipfile",
                                    "10.0.0.0/8 internal\n"
                                    "\"2001:db8::/32\" doc\n");
    const char *names = write_file(f, "names", "mx.friend.example: yes\n");
    struct list_case cases[] = {
        {HOST, arena_printf(&f->arena, "net24-lsearch;%s", bynet), "192.0.2.77", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "net24-lsearch;%s", bynet), "192.0.3.77", NULL, MATCH_NO},
        {HOST, arena_printf(&f->arena, "net64-lsearch;%s", bynet), "2001:db8::99", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "net-lsearch;%s", byip), "192.0.2.7", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "net-lsearch;%s", byip), "192.0.2.8", NULL, MATCH_NO},
        {HOST, arena_printf(&f->arena, "net-lsearch;%s", byip), "2001:db8::1", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "net-lsearch;%s", byip), NULL, NULL, MATCH_NO},
        {HOST, arena_printf(&f->arena, "iplsearch;%s", ipfile), "10.2.3.4", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "net-iplsearch;%s", ipfile), "2001:db8::5", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "iplsearch;%s", ipfile), "192.0.2.1", NULL, MATCH_NO},
        {HOST, arena_printf(&f->arena, "!iplsearch;%s", ipfile), "192.0.2.1", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "lsearch;%s", names), "192.0.2.1", "MX.friend.example",
         MATCH_YES},
        {HOST, arena_printf(&f->arena, "lsearch;%s", names), "192.0.2.1", NULL, MATCH_NO},
        {HOST, arena_printf(&f->arena, "lsearch;%s/missing", f->dir), "192.0.2.1", "x",
         MATCH_ERROR},
        {HOST, arena_printf(&f->arena, "nosuchtype;%s", names), "192.0.2.1", "x", MATCH_ERROR},
        {HOST, arena_printf(&f->arena, "net33-lsearch;%s", bynet), "192.0.2.1", NULL, MATCH_NO},
    };
    RUN(f, cases);
}

static void test_file_items(void **state)
{
    struct fixture *f = *state;
    const char *hosts = write_file(f, "hosts",
                                   "# trusted networks\n"
                                   "!192.0.2.66   # except this one\n"
                                   "192.0.2.0/24\n"
                                   "\n"
                                   "<; not-a-separator-here\n");
    const char *domains = write_file(f, "domains",
                                     "!a.b.c\n"
                                     "*.b.c\n");
    const char *locals = write_file(f, "locals", "not#comment   # but this is\n");
    struct list_case cases[] = {
        {HOST, hosts, "192.0.2.1", NULL, MATCH_YES},
        {HOST, hosts, "192.0.2.66", NULL, MATCH_NO},
        {HOST, hosts, "10.0.0.1", NULL, MATCH_NO},
        {HOST, arena_printf(&f->arena, "10.0.0.1 : %s", hosts), "10.0.0.1", NULL, MATCH_YES},
        {DOMAIN, domains, "x.b.c", NULL, MATCH_YES},
        {DOMAIN, domains, "a.b.c", NULL, MATCH_NO},
        /* "!/file" inverts the sense of matches within the file */
        {DOMAIN, arena_printf(&f->arena, "!%s", domains), "a.b.c", NULL, MATCH_YES},
        {DOMAIN, arena_printf(&f->arena, "!%s", domains), "x.b.c", NULL, MATCH_NO},
        {LOCALPART, locals, "not#comment", NULL, MATCH_YES},
        {HOST, arena_printf(&f->arena, "%s/nonexistent", f->dir), "10.0.0.1", NULL, MATCH_ERROR},
    };
    RUN(f, cases);
}

static void test_domain_lists(void **state)
{
    struct fixture *f = *state;
    const char *file = write_file(f, "virtual", "virtual.example: yes\nother.example\n");
    struct list_case cases[] = {
        {DOMAIN, "example.com", "EXAMPLE.com", NULL, MATCH_YES},
        {DOMAIN, "example.com", "example.org", NULL, MATCH_NO},
        {DOMAIN, "*.example.com", "a.example.com", NULL, MATCH_YES},
        {DOMAIN, "*.example.com", "example.com", NULL, MATCH_NO},
        {DOMAIN, "*key.ex", "donkey.ex", NULL, MATCH_YES},
        {DOMAIN, "*key.ex", "cipher.key.ex", NULL, MATCH_YES},
        {DOMAIN, "*", "anything.example", NULL, MATCH_YES},
        {DOMAIN, "\\N^[0-9]{2}\\.test$\\N", "42.TEST", NULL, MATCH_YES},
        {DOMAIN, "\\N^[0-9]{2}\\.test$\\N", "421.test", NULL, MATCH_NO},
        {DOMAIN, "\\N^\\d+\\.test$\\N", "7.test", NULL, MATCH_YES},
        {DOMAIN, "@", "MX.example.org", NULL, MATCH_YES},
        {DOMAIN, "@", "example.org", NULL, MATCH_NO},
        {DOMAIN, "@ : localhost", "localhost", NULL, MATCH_YES},
        {DOMAIN, "!a.b.c : *.b.c", "a.b.c", NULL, MATCH_NO},
        {DOMAIN, "!a.b.c : *.b.c", "x.b.c", NULL, MATCH_YES},
        {DOMAIN, "!a.b.c : *.b.c", "x.y", NULL, MATCH_NO},
        {DOMAIN, "!a.b.c", "x.y", NULL, MATCH_YES},
        {DOMAIN, "!a.b.c", "a.b.c", NULL, MATCH_NO},
        {DOMAIN, "+local_domains", "Example.com", NULL, MATCH_YES},
        {DOMAIN, "+local_domains", "mx.example.org", NULL, MATCH_YES},
        {DOMAIN, "+local_domains", "example.net", NULL, MATCH_NO},
        {DOMAIN, "! +local_domains", "example.net", NULL, MATCH_YES},
        /* the spec's warning: negation does not propagate out of a named list */
        {DOMAIN, "+dom2", "x.y", NULL, MATCH_YES},
        {DOMAIN, "!a.b : *.b", "x.y", NULL, MATCH_NO},
        {DOMAIN, "+dom2", "a.b", NULL, MATCH_YES}, /* in *.b */
        {DOMAIN, arena_printf(&f->arena, "lsearch;%s", file), "Virtual.Example", NULL, MATCH_YES},
        {DOMAIN, arena_printf(&f->arena, "lsearch;%s", file), "other.example", NULL, MATCH_YES},
        {DOMAIN, arena_printf(&f->arena, "lsearch;%s", file), "nope.example", NULL, MATCH_NO},
        {DOMAIN, arena_printf(&f->arena, "partial-lsearch;%s", file), "x", NULL, MATCH_ERROR},
        {DOMAIN, "@mx_any", "example.com", NULL, MATCH_ERROR},
        {DOMAIN, "+host_list_name_is_not_a_domain_list", "x", NULL, MATCH_ERROR},
        {DOMAIN, "+relay_hosts", "x", NULL, MATCH_ERROR},
    };
    RUN(f, cases);
}

static void test_localpart_lists(void **state)
{
    struct fixture *f = *state;
    const char *file = write_file(f, "users", "alice\nBob: x\n");
    struct list_case cases[] = {
        {LOCALPART, "postmaster", "PostMaster", NULL, MATCH_YES},
        {LOCALPART, "+caseful : postmaster", "PostMaster", NULL, MATCH_NO},
        {LOCALPART, "+caseful : postmaster", "postmaster", NULL, MATCH_YES},
        {LOCALPART, "\\N^abuse\\N", "Abuse-reports", NULL, MATCH_YES},
        {LOCALPART, "+caseful : \\N^abuse\\N", "Abuse-reports", NULL, MATCH_NO},
        {LOCALPART, "*-request", "list-REQUEST", NULL, MATCH_YES},
        {LOCALPART, "*-request", "list", NULL, MATCH_NO},
        {LOCALPART, "+admins", "root", NULL, MATCH_YES},
        {LOCALPART, "!+admins", "root", NULL, MATCH_NO},
        {LOCALPART, "!+admins", "fred", NULL, MATCH_YES},
        {LOCALPART, "@", "mx.example.org", NULL, MATCH_NO}, /* no local host items here */
        {LOCALPART, arena_printf(&f->arena, "lsearch;%s", file), "ALICE", NULL, MATCH_YES},
        {LOCALPART, arena_printf(&f->arena, "lsearch;%s", file), "bob", NULL, MATCH_YES},
        {LOCALPART, arena_printf(&f->arena, "lsearch;%s", file), "carol", NULL, MATCH_NO},
        {LOCALPART, "*", "", NULL, MATCH_YES},
    };
    RUN(f, cases);
}

static void test_address_lists(void **state)
{
    struct fixture *f = *state;
    const char *whole = write_file(f, "senders", "fred@example.com\n\"odd:one@example.com\"\n");
    const char *bydomain = write_file(f, "bydomain",
                                      "baddomain.com:  !postmaster : *\n"
                                      "aol.com:  spammer1 : spammer2 : ^[0-9]+$ :\n"
                                      "  spammer3\n");
    struct list_case cases[] = {
        {ADDRESS, "fred@example.com", "Fred@EXAMPLE.com", NULL, MATCH_YES},
        {ADDRESS, "+caseful : fred@example.com", "Fred@EXAMPLE.com", NULL, MATCH_NO},
        {ADDRESS, "+caseful : fred@example.com", "fred@EXAMPLE.com", NULL, MATCH_YES},
        {ADDRESS, "fred@example.com", "fred@example.org", NULL, MATCH_NO},
        {ADDRESS, "*@example.com", "anyone@example.com", NULL, MATCH_YES},
        {ADDRESS, "*@example.com", "anyone@sub.example.com", NULL, MATCH_NO},
        {ADDRESS, "fred@*", "fred@anywhere.example", NULL, MATCH_YES},
        {ADDRESS, "fred@*", "jim@anywhere.example", NULL, MATCH_NO},
        {ADDRESS, "*@*.spamming.site", "x@a.spamming.site", NULL, MATCH_YES},
        {ADDRESS, "*-request@lists.example", "dev-request@lists.example", NULL, MATCH_YES},
        {ADDRESS, "example.com", "x@example.com", NULL, MATCH_YES},
        {ADDRESS, "example.com", "x@sub.example.com", NULL, MATCH_NO},
        {ADDRESS, "*.example.com", "x@sub.example.com", NULL, MATCH_YES},
        /* as in Exim, "@domain" requires an empty local part */
        {ADDRESS, "@example.com", "x@example.com", NULL, MATCH_NO},
        {ADDRESS, "postmaster@@", "postmaster@MX.example.org", NULL, MATCH_YES},
        {ADDRESS, "postmaster@@", "postmaster@example.org", NULL, MATCH_NO},
        /* the empty (bounce) sender */
        {ADDRESS, ":", "", NULL, MATCH_YES},
        {ADDRESS, ":", "fred@example.com", NULL, MATCH_NO},
        {ADDRESS, "*@example.com", "", NULL, MATCH_NO},
        {ADDRESS, "\\N^$\\N", "", NULL, MATCH_YES},
        {ADDRESS, "\\N^fred@\\N", "Fred@x.example", NULL, MATCH_YES},
        {ADDRESS, "\\N^.*this.*@example\\.com$\\N", "xthisx@example.com", NULL, MATCH_YES},
        /* named lists */
        {ADDRESS, "+bad_senders", "spammer@anywhere.example", NULL, MATCH_YES},
        {ADDRESS, "+bad_senders", "x@a.spam.example", NULL, MATCH_YES},
        {ADDRESS, "+bad_senders", "x@good.example", NULL, MATCH_NO},
        {ADDRESS, "*@+hostile_domains", "bob@evil.example", NULL, MATCH_YES},
        {ADDRESS, "*@+hostile_domains", "bob@nice.example", NULL, MATCH_NO},
        {ADDRESS, "*@+no_such_domains", "bob@nice.example", NULL, MATCH_ERROR},
        /* lookups */
        {ADDRESS, arena_printf(&f->arena, "lsearch;%s", whole), "Fred@example.com", NULL,
         MATCH_YES},
        {ADDRESS, arena_printf(&f->arena, "lsearch;%s", whole), "odd:one@example.com", NULL,
         MATCH_YES},
        {ADDRESS, arena_printf(&f->arena, "lsearch;%s", whole), "jim@example.com", NULL, MATCH_NO},
        {ADDRESS, arena_printf(&f->arena, "lsearch;%s", whole), "", NULL, MATCH_NO},
        {ADDRESS, arena_printf(&f->arena, "@@lsearch;%s", bydomain), "postmaster@baddomain.com",
         NULL, MATCH_NO},
        {ADDRESS, arena_printf(&f->arena, "@@lsearch;%s", bydomain), "other@baddomain.com", NULL,
         MATCH_YES},
        {ADDRESS, arena_printf(&f->arena, "@@lsearch;%s", bydomain), "12345@aol.com", NULL,
         MATCH_YES},
        {ADDRESS, arena_printf(&f->arena, "@@lsearch;%s", bydomain), "spammer3@aol.com", NULL,
         MATCH_YES},
        {ADDRESS, arena_printf(&f->arena, "@@lsearch;%s", bydomain), "nice@aol.com", NULL,
         MATCH_NO},
        {ADDRESS, arena_printf(&f->arena, "@@lsearch;%s", bydomain), "x@elsewhere.com", NULL,
         MATCH_NO},
        /* negation */
        {ADDRESS, "!fred@example.com : *@example.com", "fred@example.com", NULL, MATCH_NO},
        {ADDRESS, "!fred@example.com : *@example.com", "jim@example.com", NULL, MATCH_YES},
        {ADDRESS, "!fred@example.com", "jim@example.org", NULL, MATCH_YES},
    };
    RUN(f, cases);
}

static void test_match_conditions(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"${if match_domain{a.example.com}{*.example.com}{y}{n}}", "y"},
        {"${if match_domain{example.com}{*.example.com}{y}{n}}", "n"},
        {"${if match_domain{example.com}{+local_domains}{y}{n}}", "y"},
        {"${if match_domain{42.test}{\\N^\\d+\\.test$\\N}{y}{n}}", "y"},
        {"${if match_ip{192.0.2.1}{192.0.2.0/24}{y}{n}}", "y"},
        {"${if match_ip{192.0.3.1}{192.0.2.0/24}{y}{n}}", "n"},
        {"${if match_ip{::1}{<; ::1 ; 10.0.0.0/8}{y}{n}}", "y"},
        {"${if match_ip{10.1.1.1}{+relay_hosts : 10.0.0.0/8}{y}{n}}", "y"},
        {"${if match_ip{192.0.2.1}{*.example.com}{y}{n}}", "n"},
        {"${if match_ip{$sender_host_address}{!192.0.2.1}{y}{n}}", "n"},
        {"${if match_address{a@b.example}{*@b.example}{y}{n}}", "y"},
        {"${if match_address{a@c.example}{*@b.example}{y}{n}}", "n"},
        {"${if match_local_part{Fred}{fred : jim}{y}{n}}", "y"},
        {"${if match_local_part{Fred}{+caseful : fred}{y}{n}}", "n"},
        {"${if match_domain{x.b.c}{!a.b.c : *.b.c}{y}{n}}", "y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out = NULL, *err = NULL;
        enum expand_status st = expand_string(&f->ctx, cases[i].in, &out, &err);
        if (st != EXPAND_OK || strcmp(out, cases[i].want) != 0) {
            print_error("%s: want \"%s\", got %d \"%s\" (%s)\n", cases[i].in, cases[i].want, st,
                        st == EXPAND_OK ? out : "", err ? err : "-");
            fail();
        }
    }
    const char *out = NULL, *err = NULL;
    assert_int_equal(expand_string(&f->ctx, "${if match_ip{nonsense}{*}{y}{n}}", &out, &err),
                     EXPAND_FAIL);
    assert_non_null(strstr(err, "not an IP address"));
    assert_int_equal(expand_string(&f->ctx, "${if match_domain{x}{+nope}{y}{n}}", &out, &err),
                     EXPAND_FAIL);
    assert_non_null(strstr(err, "unknown named list"));
}

/* The load-time check of a list: its constant "^regex" items are compiled into the
 * snapshot once (with the case rule the walk will use), a bad one is an error, and a list
 * with variables is left for run time. */
static void test_check_list(void **state)
{
    struct fixture *f = *state;
    const char *err = NULL;
    struct expand_check check = {.vars = &expand_builtin_vars, .cfg = &f->snap.config};
    assert_true(expand_check_list("a.example : \\N^mx\\d+\\.\\N : ! ^spam", CONF_LIST_DOMAIN,
                                  &check, &f->arena, &err));
    assert_int_equal(expand_regex_precompiled_count(&f->snap.config), 2);
    /* +caseful: the later regex is compiled case-sensitively, as list_walk will use it */
    assert_true(
        expand_check_list("^A : +caseful : ^B", CONF_LIST_LOCALPART, &check, &f->arena, &err));
    assert_int_equal(expand_regex_precompiled_count(&f->snap.config), 4);
    /* a regex that only exists after expansion is compiled at use */
    assert_true(
        expand_check_list("^$primary_hostname(", CONF_LIST_DOMAIN, &check, &f->arena, &err));
    assert_int_equal(expand_regex_precompiled_count(&f->snap.config), 4);
    assert_false(expand_check_list("a : ^x(y", CONF_LIST_HOST, &check, &f->arena, &err));
    assert_non_null(strstr(err, "regular expression error in \"^x(y\""));
    assert_false(expand_check_list("a : $nope", CONF_LIST_DOMAIN, &check, &f->arena, &err));
    assert_non_null(strstr(err, "unknown variable name \"$nope\""));
    /* the precompiled set is what matching uses: same results */
    assert_int_equal(
        list_match_domain(&f->ctx, "a.example : \\N^mx\\d+\\.\\N", "MX12.example.org", &err),
        MATCH_YES);
    assert_int_equal(list_match_localpart(&f->ctx, "^A : +caseful : ^B", "b", &err), MATCH_NO);
    assert_int_equal(list_match_localpart(&f->ctx, "^A : +caseful : ^B", "a", &err), MATCH_YES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_localpart_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_conditions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
