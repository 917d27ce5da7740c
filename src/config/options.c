/*
 * options.c - the main-section option table: binds "name = value" settings from the
 * parsed tree to typed fields of struct config, applies defaults, decodes log_selector,
 * and prints options for -bP.
 *
 * The table below is the one list of main options: name, type, field, default (written
 * as it would be in the configuration file, so defaults go through the same parsers as
 * settings), and limits for numbers. To add an option: add the field to struct config
 * and one line here. An unknown name or a bad value is an error naming file:line.
 *
 * Ownership: bound strings point into cfg->arena (the parsed tree) or at the static
 * defaults below; nothing is allocated outside cfg->arena. Called by the loading thread
 * only, before the config is published.
 */
#include "config_internal.h"

#include "postern/expand.h"
#include "postern/session.h"
#include "postern/vars.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

enum opt_type { OPT_BOOL, OPT_INT, OPT_SIZE, OPT_TIME, OPT_FIXED, OPT_STRING, OPT_LOG_SELECTOR };

struct opt_def {
    const char *name;
    enum opt_type type;
    size_t offset;     /* of the field in struct config */
    size_t size;       /* of the field, checked against the type by the self-check */
    const char *def;   /* default, in configuration syntax; NULL = unset */
    int64_t min, max;  /* numbers only */
    const char *alias; /* non-NULL: another spelling of the option named here */
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define OPT_B(n, d)                                                                                \
    {                                                                                              \
#n, OPT_BOOL, FIELD(n), d, 0, 1, NULL                                                      \
    }
#define OPT_I(n, d, lo, hi)                                                                        \
    {                                                                                              \
#n, OPT_INT, FIELD(n), d, lo, hi, NULL                                                     \
    }
#define OPT_Z(n, d, lo, hi)                                                                        \
    {                                                                                              \
#n, OPT_SIZE, FIELD(n), d, lo, hi, NULL                                                    \
    }
#define OPT_T(n, d)                                                                                \
    {                                                                                              \
#n, OPT_TIME, FIELD(n), d, 0, INT64_MAX, NULL                                              \
    }
/* Exim's fixed-point numbers ("8", "2.5"): stored x 1000; unset (no default) = -1 */
#define OPT_F(n)                                                                                   \
    {                                                                                              \
#n, OPT_FIXED, FIELD(n), NULL, 0, INT64_MAX, NULL                                          \
    }
#define OPT_S(n, d)                                                                                \
    {                                                                                              \
#n, OPT_STRING, FIELD(n), d, 0, 0, NULL                                                    \
    }
#define OPT_ALIAS(n, target)                                                                       \
    {                                                                                              \
#n, OPT_STRING, 0, 0, NULL, 0, 0, #target                                                  \
    }

/* Expanded by the session for each connection / message. The Received: default has real
 * newline+tab folds; the session appends "; <date>" as Exim does. */
#define DEFAULT_SMTP_BANNER "$smtp_active_hostname ESMTP postern $version_number $tod_full"
#define DEFAULT_RECEIVED_HEADER                                                                    \
    "Received: ${if def:sender_rcvhost {from $sender_rcvhost\n\t}"                                 \
    "{${if def:sender_helo_name {from $sender_helo_name\n\t}}}}"                                   \
    "by $primary_hostname with $received_protocol (postern $version_number)\n\t"                   \
    "id $message_exim_id${if def:received_for {\n\tfor $received_for}}"

static const struct opt_def main_options[] = {
    /* identity; primary_hostname defaults to uname(), qualify_domain to primary_hostname */
    OPT_S(primary_hostname, NULL),
    OPT_S(qualify_domain, NULL),
    OPT_S(smtp_banner, DEFAULT_SMTP_BANNER),
    OPT_S(received_header_text, DEFAULT_RECEIVED_HEADER),
    /* listening */
    OPT_S(local_interfaces, "<; 0.0.0.0 ; ::"),
    OPT_S(daemon_smtp_ports, "25"),
    OPT_I(smtp_connect_backlog, "4096", 1, 65535),
    OPT_I(smtp_accept_max, "10000", 0, INT_MAX),
    OPT_S(smtp_accept_max_per_host, NULL),
    OPT_I(smtp_worker_threads, "0", 0, 4096),
    /* PROXY protocol */
    OPT_S(proxy_required_hosts, ""),
    OPT_ALIAS(hosts_proxy, proxy_required_hosts),
    OPT_T(proxy_protocol_timeout, "3s"),
    /* SMTP limits and behaviour */
    OPT_Z(message_size_limit, "50M", 0, INT64_MAX),
    OPT_I(recipients_max, "50000", 0, INT_MAX),
    OPT_I(smtp_max_unknown_commands, "3", 0, INT_MAX),
    OPT_T(smtp_receive_timeout, "5m"),
    OPT_T(smtp_data_timeout, "30m"),
    OPT_I(smtp_max_line_length, "2048", 512, 1048576),
    OPT_B(smtp_enforce_sync, "true"),
    OPT_S(pipelining_advertise_hosts, "*"),
    OPT_B(prdr_enable, "false"),
    OPT_S(host_lookup, ""),
    /* ACLs per SMTP stage */
    OPT_S(acl_smtp_connect, NULL),
    OPT_S(acl_smtp_helo, NULL),
    OPT_S(acl_smtp_mail, NULL),
    OPT_S(acl_smtp_rcpt, NULL),
    OPT_S(acl_smtp_predata, NULL),
    OPT_S(acl_smtp_data, NULL),
    OPT_S(acl_smtp_data_prdr, "accept"),
    OPT_ALIAS(acl_data_smtp_prdr, acl_smtp_data_prdr),
    OPT_S(acl_smtp_quit, NULL),
    OPT_S(acl_smtp_notquit, NULL),
    OPT_S(acl_smtp_vrfy, NULL),
    /* spool, queue and delivery */
    OPT_S(spool_directory, "./var/spool"),
    OPT_I(queue_run_max, "4", 0, 1024),
    OPT_T(retry_interval, "15m"),
    OPT_T(timeout_frozen_after, "4d"),
    OPT_I(spool_commit_max_batch, "256", 1, 65536),
    OPT_B(queue_only, "false"),
    OPT_S(queue_only_file, NULL),
    OPT_F(queue_only_load),
    OPT_B(queue_only_load_latch, "true"),
    OPT_B(queue_only_override, "true"),
    /* logging */
    OPT_S(log_file_path, "./var/log/%slog"),
    {"log_selector", OPT_LOG_SELECTOR, FIELD(log_selector), "", 0, 0, NULL},
};

#define N_MAIN_OPTIONS (sizeof main_options / sizeof main_options[0])

/* Exim main options that later issues implement: refused as "not supported yet" (with
 * file:line and the word) rather than as unknown, and never ignored. */
static const char *const main_options_not_yet[] = {
    "event_action",      /* events: the remote-delivery issue */
    "tpda_event_action", /* the experimental TPDA spelling of events */
};

static bool main_option_not_yet(const char *name)
{
    for (size_t i = 0; i < sizeof main_options_not_yet / sizeof main_options_not_yet[0]; i++)
        if (strcmp(main_options_not_yet[i], name) == 0)
            return true;
    return false;
}

/* log_selector names we act on. */
static const struct {
    const char *name;
    unsigned bit;
} log_selectors[] = {
    {"proxy", LOG_SEL_PROXY},
    {"smtp_connection", LOG_SEL_SMTP_CONNECTION},
    {"received_recipients", LOG_SEL_RECEIVED_RECIPIENTS},
    {"incoming_port", LOG_SEL_INCOMING_PORT},
};

/* Exim log_selector names postern never logs: "-name" is honoured (nothing is written
 * either way) so that Exim configurations load; "+name" asks for something postern does
 * not write and is refused as not supported yet. Anything in neither list is unknown. */
static const char *const log_selectors_not_logged[] = {
    "8bitmime",
    "acl_warn_skipped",
    "address_rewrite",
    "all_parents",
    "arguments",
    "connection_reject",
    "delay_delivery",
    "deliver_time",
    "delivery_size",
    "dkim",
    "dkim_verbose",
    "dnslist_defer",
    "dnssec",
    "etrn",
    "host_lookup_failed",
    "ident_timeout",
    "incoming_interface",
    "lost_incoming_connection",
    "millisec",
    "msg_id",
    "msg_id_created",
    "outgoing_interface",
    "outgoing_port",
    "pid",
    "pipelining",
    "queue_run",
    "queue_time",
    "queue_time_overall",
    "received_sender",
    "rejected_header",
    "retry_defer",
    "return_path_on_delivery",
    "sender_on_delivery",
    "sender_verify_fail",
    "size_reject",
    "skip_delivery",
    "smtp_confirmation",
    "smtp_incomplete_transaction",
    "smtp_mailauth",
    "smtp_no_mail",
    "smtp_protocol_error",
    "smtp_syntax_error",
    "subject",
    "tls_certificate_verified",
    "tls_cipher",
    "tls_peerdn",
    "tls_resumption",
    "tls_sni",
    "unknown_in_list",
};

enum log_selector_kind { LOG_SEL_UNKNOWN, LOG_SEL_KNOWN, LOG_SEL_NOT_LOGGED };

static enum log_selector_kind log_selector_lookup(const char *name, size_t n, unsigned *bits)
{
    if (n == 3 && memcmp(name, "all", 3) == 0) {
        *bits = 0;
        for (size_t i = 0; i < sizeof log_selectors / sizeof log_selectors[0]; i++)
            *bits |= log_selectors[i].bit;
        return LOG_SEL_KNOWN;
    }
    for (size_t i = 0; i < sizeof log_selectors / sizeof log_selectors[0]; i++)
        if (strlen(log_selectors[i].name) == n && memcmp(log_selectors[i].name, name, n) == 0) {
            *bits = log_selectors[i].bit;
            return LOG_SEL_KNOWN;
        }
    for (size_t i = 0; i < sizeof log_selectors_not_logged / sizeof log_selectors_not_logged[0];
         i++)
        if (strlen(log_selectors_not_logged[i]) == n &&
            memcmp(log_selectors_not_logged[i], name, n) == 0) {
            *bits = 0;
            return LOG_SEL_NOT_LOGGED;
        }
    return LOG_SEL_UNKNOWN;
}

bool config_parse_log_selector(const char *s, unsigned *flags, char *err, size_t errlen)
{
    unsigned f = *flags;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        char sign = *s;
        if (sign != '+' && sign != '-') {
            snprintf(err, errlen, "log_selector items start with '+' or '-' (at \"%.40s\")", s);
            return false;
        }
        const char *name = ++s;
        while (*s && !isspace((unsigned char)*s) && *s != '+' && *s != '-')
            s++;
        size_t n = (size_t)(s - name);
        unsigned bits = 0;
        enum log_selector_kind kind = n ? log_selector_lookup(name, n, &bits) : LOG_SEL_UNKNOWN;
        if (kind == LOG_SEL_UNKNOWN) {
            snprintf(err, errlen, "unknown log_selector \"%.*s\"", (int)(n > 60 ? 60 : n), name);
            return false;
        }
        if (kind == LOG_SEL_NOT_LOGGED && sign == '+') {
            snprintf(err, errlen,
                     "log_selector \"+%.*s\" is not supported yet (postern does not log it; "
                     "\"-%.*s\" is accepted)",
                     (int)(n > 60 ? 60 : n), name, (int)(n > 60 ? 60 : n), name);
            return false;
        }
        f = sign == '+' ? f | bits : f & ~bits;
    }
    *flags = f;
    return true;
}

/* Exim fixed-point: digits, optionally '.' and at most three more digits; x 1000. */
static bool parse_exim_fixed(const char *s, int64_t *out)
{
    int64_t v = 0;
    int digits = 0, decimals = -1;
    for (; *s; s++) {
        if (*s == '.' && decimals < 0 && digits > 0) {
            decimals = 0;
            continue;
        }
        if (*s < '0' || *s > '9' || decimals >= 3 || v > INT64_MAX / 10 - 9)
            return false;
        v = v * 10 + (*s - '0');
        digits++;
        if (decimals >= 0)
            decimals++;
    }
    if (digits == 0 || decimals == 0)
        return false;
    for (int i = decimals < 0 ? 0 : decimals; i < 3; i++) {
        if (v > INT64_MAX / 10)
            return false;
        v *= 10;
    }
    *out = v;
    return true;
}

static bool opt_parse_number(enum opt_type type, const char *value, int64_t *v)
{
    switch (type) {
    case OPT_INT:
        return parse_exim_integer(value, 0, v);
    case OPT_SIZE:
        return parse_size(value, v);
    case OPT_FIXED:
        return parse_exim_fixed(value, v);
    default:
        return parse_time_interval(value, v);
    }
}

static const char *opt_number_form(enum opt_type type)
{
    switch (type) {
    case OPT_INT:
        return "integer";
    case OPT_SIZE:
        return "size (a number, optionally followed by K, M or G)";
    case OPT_FIXED:
        return "number (digits, optionally a point and up to three decimals)";
    default:
        return "time interval (e.g. 30s, 5m, 1h30m, 2d)";
    }
}

static bool opt_set_number(struct config *cfg, const struct opt_def *d, const char *value,
                           char *why, size_t whylen)
{
    int64_t v;
    if (!opt_parse_number(d->type, value, &v)) {
        snprintf(why, whylen, "malformed %s", opt_number_form(d->type));
        return false;
    }
    if (v < d->min || v > d->max) {
        snprintf(why, whylen, "value out of range %lld..%lld", (long long)d->min,
                 (long long)d->max);
        return false;
    }
    char *field = (char *)cfg + d->offset;
    if (d->type == OPT_INT)
        *(int *)field = (int)v;
    else
        *(int64_t *)field = v;
    return true;
}

static bool opt_set(struct config *cfg, const struct opt_def *d, const char *value, char *why,
                    size_t whylen)
{
    char *field = (char *)cfg + d->offset;
    switch (d->type) {
    case OPT_BOOL: {
        bool b;
        if (!parse_bool(value, &b)) {
            snprintf(why, whylen, "malformed boolean (use true, false, yes or no)");
            return false;
        }
        *(bool *)field = b;
        return true;
    }
    case OPT_INT:
    case OPT_SIZE:
    case OPT_TIME:
    case OPT_FIXED:
        return opt_set_number(cfg, d, value, why, whylen);
    case OPT_STRING:
        *(const char **)field = value;
        return true;
    case OPT_LOG_SELECTOR: {
        unsigned flags = 0;
        if (!config_parse_log_selector(value, &flags, why, whylen))
            return false;
        cfg->log_selector = value;
        cfg->log_flags = flags;
        return true;
    }
    }
    return false;
}

/* Find an option by name; *shown is the name asked for (an alias prints as itself). */
static const struct opt_def *opt_find(const char *name)
{
    for (size_t i = 0; i < N_MAIN_OPTIONS; i++) {
        const struct opt_def *d = &main_options[i];
        if (strcmp(d->name, name) != 0)
            continue;
        if (!d->alias)
            return d;
        for (size_t j = 0; j < N_MAIN_OPTIONS; j++)
            if (!main_options[j].alias && strcmp(main_options[j].name, d->alias) == 0)
                return &main_options[j];
        return NULL;
    }
    return NULL;
}

static void config_apply_defaults(struct config *cfg)
{
    char why[256];
    for (size_t i = 0; i < N_MAIN_OPTIONS; i++) {
        const struct opt_def *d = &main_options[i];
        if (d->alias)
            continue;
        if (!d->def && d->type == OPT_FIXED) {
            *(int64_t *)((char *)cfg + d->offset) = -1; /* unset */
            continue;
        }
        if (!d->def) {
            *(const char **)((char *)cfg + d->offset) = NULL; /* only strings lack defaults */
            continue;
        }
        if (!opt_set(cfg, d, d->def, why, sizeof why))
            die("config: bad built-in default for %s: %s", d->name, why);
    }
}

static void config_computed_defaults(struct config *cfg)
{
    if (!cfg->primary_hostname || !*cfg->primary_hostname) {
        struct utsname u;
        const char *node = uname(&u) == 0 && u.nodename[0] ? u.nodename : "localhost";
        cfg->primary_hostname = arena_strdup(cfg->arena, node);
    }
    if (!cfg->qualify_domain || !*cfg->qualify_domain)
        cfg->qualify_domain = cfg->primary_hostname;
    config_bind_queue_only(cfg);
}

/* Values a type alone cannot check; false with a reason. */
static bool opt_check_value(struct config *cfg, const struct opt_def *d, char *why, size_t whylen)
{
    /* Reverse DNS of clients needs the DNS module, which is not built yet: an empty list
     * (no lookups) is all we can honour, and anything else must not be ignored. */
    if (strcmp(d->name, "host_lookup") == 0 && cfg->host_lookup[0]) {
        snprintf(why, whylen, "host name lookups are not supported in this build (leave it empty)");
        return false;
    }
    if (strcmp(d->name, "queue_only_file") == 0)
        return config_queue_only_file_check(cfg, cfg->queue_only_file, why, whylen);
    return true;
}

/* The main options that are expanded at run time, with the variables of the place that
 * expands them; each setting is checked at load (expand_check, expand_check_list). */
static const struct {
    const char *name;
    const struct var_table *vars;
    unsigned lifetimes; /* 0: any */
    bool host_list;
} expanded_options[] = {
    {"smtp_banner", &session_var_table,
     VAR_LIFETIME_BIT(VAR_SNAPSHOT) | VAR_LIFETIME_BIT(VAR_CONNECTION), false},
    {"received_header_text", &session_var_table, 0, false},
    {"smtp_accept_max_per_host", &expand_peer_vars, 0, false},
    {"local_interfaces", &expand_builtin_vars, 0, false},
    {"daemon_smtp_ports", &expand_builtin_vars, 0, false},
    {"proxy_required_hosts", &expand_builtin_vars, 0, true},
    {"pipelining_advertise_hosts", &session_var_table,
     VAR_LIFETIME_BIT(VAR_SNAPSHOT) | VAR_LIFETIME_BIT(VAR_CONNECTION), true},
};

static bool opt_check_expansion(struct config *cfg, const struct opt_def *d,
                                const struct conf_item *it, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof expanded_options / sizeof expanded_options[0]; i++) {
        if (strcmp(expanded_options[i].name, d->name) != 0)
            continue;
        const char *why = NULL;
        struct expand_check check = {.vars = expanded_options[i].vars,
                                     .lifetimes = expanded_options[i].lifetimes,
                                     .where = d->name,
                                     .cfg = cfg};
        bool ok = expanded_options[i].host_list
                      ? expand_check_list(it->value, CONF_LIST_HOST, &check, cfg->arena, &why)
                      : expand_check(it->value, &check, cfg->arena, &why);
        if (!ok)
            return conf_fail(err, errlen, it->file, it->line, it->value, "main option \"%s\": %s",
                             it->name, why ? why : "bad expansion");
    }
    return true;
}

bool config_bind_main(struct config *cfg, char *err, size_t errlen)
{
    config_apply_defaults(cfg);
    char why[256];
    for (const struct conf_item *it = cfg->tree.main_items; it; it = it->next) {
        const struct opt_def *d = opt_find(it->name);
        bool bare = it->value == NULL;
        if (!d && main_option_not_yet(it->name))
            return conf_fail(err, errlen, it->file, it->line, it->name,
                             "main option \"%s\" is not supported yet", it->name);
        if (!d)
            return conf_fail(err, errlen, it->file, it->line, NULL, "main option \"%s%s\" unknown",
                             bare && it->negated ? "no_" : "", it->name);
        if (bare && d->type != OPT_BOOL)
            return conf_fail(err, errlen, it->file, it->line, it->name,
                             "main option \"%s\" needs a value (\"%s = ...\")", it->name, it->name);
        if (bare) {
            *(bool *)((char *)cfg + d->offset) = !it->negated;
            continue;
        }
        if (!opt_set(cfg, d, it->value, why, sizeof why) ||
            !opt_check_value(cfg, d, why, sizeof why))
            return conf_fail(err, errlen, it->file, it->line, it->value, "main option \"%s\": %s",
                             it->name, why);
        if (!opt_check_expansion(cfg, d, it, err, errlen))
            return false;
    }
    config_computed_defaults(cfg);
    return true;
}

/* Exim's string_printing(): escape what would break a one-line display. */
static void print_string(struct buf *out, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            buf_append_str(out, "\\n");
        else if (c == '\t')
            buf_append_str(out, "\\t");
        else if (c == '\r')
            buf_append_str(out, "\\r");
        else if (c < 32 || c == 127)
            buf_printf(out, "\\%03o", c);
        else
            buf_append(out, s, 1);
    }
}

static void print_time(struct buf *out, int64_t t)
{
    static const struct {
        int64_t seconds;
        char letter;
    } units[] = {{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    if (t == 0) {
        buf_append_str(out, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (t >= units[i].seconds) {
            buf_printf(out, "%lld%c", (long long)(t / units[i].seconds), units[i].letter);
            t %= units[i].seconds;
        }
}

static void print_size(struct buf *out, int64_t v)
{
    if (v != 0 && v % (1024LL * 1024 * 1024) == 0)
        buf_printf(out, "%lldG", (long long)(v / (1024LL * 1024 * 1024)));
    else if (v != 0 && v % (1024 * 1024) == 0)
        buf_printf(out, "%lldM", (long long)(v / (1024 * 1024)));
    else if (v != 0 && v % 1024 == 0)
        buf_printf(out, "%lldK", (long long)(v / 1024));
    else
        buf_printf(out, "%lld", (long long)v);
}

static void print_fixed(struct buf *out, int64_t v)
{
    if (v < 0)
        return; /* unset */
    buf_printf(out, "%lld", (long long)(v / 1000));
    if (v % 1000) {
        char frac[8];
        snprintf(frac, sizeof frac, "%03lld", (long long)(v % 1000));
        for (size_t n = strlen(frac); n > 0 && frac[n - 1] == '0'; n--)
            frac[n - 1] = '\0';
        buf_printf(out, ".%s", frac);
    }
}

static void opt_print(const struct config *cfg, const struct opt_def *d, const char *name,
                      struct buf *out)
{
    const char *field = (const char *)cfg + d->offset;
    switch (d->type) {
    case OPT_BOOL:
        buf_printf(out, "%s%s\n", *(const bool *)field ? "" : "no_", name);
        return;
    case OPT_INT:
        buf_printf(out, "%s = %d\n", name, *(const int *)field);
        return;
    case OPT_SIZE:
        buf_printf(out, "%s = ", name);
        print_size(out, *(const int64_t *)field);
        break;
    case OPT_TIME:
        buf_printf(out, "%s = ", name);
        print_time(out, *(const int64_t *)field);
        break;
    case OPT_FIXED:
        buf_printf(out, "%s = ", name);
        print_fixed(out, *(const int64_t *)field);
        break;
    case OPT_STRING:
    case OPT_LOG_SELECTOR:
        buf_printf(out, "%s = ", name);
        print_string(out, *(const char *const *)field);
        break;
    }
    buf_append_str(out, "\n");
}

bool config_print_option(const struct config *cfg, const char *name, struct buf *out)
{
    if (!name) {
        for (size_t i = 0; i < N_MAIN_OPTIONS; i++)
            if (!main_options[i].alias)
                opt_print(cfg, &main_options[i], main_options[i].name, out);
        return true;
    }
    const struct opt_def *d = opt_find(name);
    if (!d)
        return false;
    opt_print(cfg, d, name, out);
    return true;
}

static size_t opt_type_size(enum opt_type t)
{
    switch (t) {
    case OPT_BOOL:
        return sizeof(bool);
    case OPT_INT:
        return sizeof(int);
    case OPT_SIZE:
    case OPT_TIME:
    case OPT_FIXED:
        return sizeof(int64_t);
    case OPT_STRING:
    case OPT_LOG_SELECTOR:
        return sizeof(const char *);
    }
    return 0;
}

bool config_options_selfcheck(char *err, size_t errlen)
{
    struct config *scratch = calloc(1, sizeof *scratch);
    if (!scratch)
        die("out of memory");
    char why[256];
    bool ok = true;
    for (size_t i = 0; ok && i < N_MAIN_OPTIONS; i++) {
        const struct opt_def *d = &main_options[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(main_options[j].name, d->name) == 0) {
                snprintf(err, errlen, "option %s listed twice", d->name);
                ok = false;
            }
        if (ok && d->alias && opt_find(d->name) == NULL) {
            snprintf(err, errlen, "alias %s names unknown option %s", d->name, d->alias);
            ok = false;
        } else if (ok && !d->alias && d->size != opt_type_size(d->type)) {
            snprintf(err, errlen, "option %s: field size does not match its type", d->name);
            ok = false;
        } else if (ok && !d->alias && d->def && !opt_set(scratch, d, d->def, why, sizeof why)) {
            snprintf(err, errlen, "option %s: bad default: %s", d->name, why);
            ok = false;
        } else if (ok && !d->alias && !d->def && d->type != OPT_STRING && d->type != OPT_FIXED) {
            snprintf(err, errlen,
                     "option %s: only strings and fixed-point numbers may lack a "
                     "default",
                     d->name);
            ok = false;
        }
    }
    free(scratch);
    return ok;
}
