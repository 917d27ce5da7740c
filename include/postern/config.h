/*
 * config.h - the configuration: Exim's syntax (a documented subset) parsed into a
 * generic tree, then bound to typed main options and compiled ACLs/routers/transports.
 *
 * Ownership: a struct config and everything it points to live in cfg->arena and are
 * immutable once config_load() returns. Every config is the first member of a struct
 * snapshot (include/postern/snapshot.h) allocated in the same arena, which carries the
 * reference count and the cleanup hooks. The daemon publishes it RCU-protected
 * (src/daemon/snapshot.c); sessions hold a reference for their lifetime. config_free()
 * is called only when the last reference goes (or on a config never published).
 *
 * Errors: every failure fills `err` with "file:line: reason (near 'word')".
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include "postern/util.h"

#include <stdbool.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Generic tree, produced by the pure parser (src/config/parse.c).     */
/* ------------------------------------------------------------------ */

/* One "name = value" setting, or one condition/modifier inside an ACL statement. */
struct conf_item {
    const char *name;  /* option/condition name, without a leading '!' or "no_" */
    const char *value; /* raw text after '=', continuation lines joined, trimmed;
                          NULL when the line had no '=' (bare boolean) */
    bool negated;      /* written as "!name = value" (ACL) or "no_name" / "not_name" (boolean) */
    const char *file;
    int line;
    struct conf_item *next;
};

enum conf_list_kind { CONF_LIST_HOST, CONF_LIST_DOMAIN, CONF_LIST_ADDRESS, CONF_LIST_LOCALPART };

/* "hostlist relay_hosts = 127.0.0.1 : ::1" */
struct conf_named_list {
    enum conf_list_kind kind;
    const char *name;
    const char *value;
    const char *file;
    int line;
    struct conf_named_list *next;
};

/* One ACL statement: a verb followed by its conditions and modifiers, in order.
 * The modifier "set acl_m_x = v" is stored as name "set", value "acl_m_x = v" (the
 * variable as written, " = ", then the value, dequoted): split at the first '='. */
struct conf_acl_stmt {
    const char *verb; /* accept, deny, defer, drop, discard, require, warn */
    const char *file;
    int line;
    struct conf_item *items;
    struct conf_acl_stmt *next;
};

/* A named ACL from "begin acl". */
struct conf_acl {
    const char *name;
    const char *file;
    int line;
    struct conf_acl_stmt *stmts;
    struct conf_acl *next;
};

/* A router or transport instance: "name:" followed by option lines. */
struct conf_block {
    const char *name;
    const char *file;
    int line;
    struct conf_item *items; /* includes "driver = ..." */
    struct conf_block *next;
};

/* A "-D NAME=value" or "NAME = value" macro. */
struct conf_macro {
    const char *name;
    const char *value;
    struct conf_macro *next;
};

struct conf_tree {
    struct conf_item *main_items; /* main-section options, in file order */
    struct conf_named_list *lists;
    struct conf_acl *acls;
    struct conf_block *routers; /* in file order: routers are tried in this order */
    struct conf_block *transports;
    struct conf_macro *macros; /* final macro set, for -bP macros */
};

/*
 * Parse configuration text. `name` is used in error messages (a file path, or
 * "<embedded>"). `cmdline_macros` are -D definitions (they override file macros of the
 * same name). .include paths are read from disk relative to the including file.
 * All output is allocated in `arena`. Returns true on success; on failure fills err
 * with "file:line: reason".
 */
bool conf_parse_text(struct arena *arena, const char *text, size_t len, const char *name,
                     const struct conf_macro *cmdline_macros, struct conf_tree *out, char *err,
                     size_t errlen);
bool conf_parse_file(struct arena *arena, const char *path, const struct conf_macro *cmdline_macros,
                     struct conf_tree *out, char *err, size_t errlen);

/* As conf_parse_text, with flags: CONF_PARSE_NO_INCLUDE makes .include and
 * .include_if_exists an error (for fuzzing and text that must not touch the disk). */
#define CONF_PARSE_NO_INCLUDE 0x1u
bool conf_parse_text_flags(struct arena *arena, const char *text, size_t len, const char *name,
                           const struct conf_macro *cmdline_macros, unsigned flags,
                           struct conf_tree *out, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Bound configuration.                                                 */
/* ------------------------------------------------------------------ */

struct acl_set;        /* compiled ACLs, owned by src/acl (in cfg->arena) */
struct deliver_config; /* compiled routers and transports, owned by src/deliver */

struct config {
    struct arena *arena; /* owns everything reachable from here, and the struct snapshot
                            that contains this config (include/postern/snapshot.h) */
    const char *source;  /* config file path, or "<embedded>" */
    struct conf_tree tree;

    /* identity */
    const char *primary_hostname; /* default: uname nodename */
    const char *qualify_domain;   /* default: primary_hostname */
    const char *smtp_banner;      /* expanded per connection */
    const char *received_header_text;

    /* listening */
    const char *local_interfaces;         /* Exim list, default "<; 0.0.0.0 ; ::" */
    const char *daemon_smtp_ports;        /* Exim list, default "25" */
    int smtp_connect_backlog;             /* default 4096 (the kernel caps it at somaxconn) */
    int smtp_accept_max;                  /* 0 = unlimited; default 10000 */
    const char *smtp_accept_max_per_host; /* expanded; NULL = 100 for direct clients */
    int smtp_worker_threads;              /* 0 = number of CPUs x 4 */

    /* PROXY protocol */
    const char *proxy_required_hosts; /* host list; also set by hosts_proxy */
    int64_t proxy_protocol_timeout;   /* seconds, default 3 */

    /* SMTP limits and behaviour */
    int64_t message_size_limit;             /* bytes, default 50M; 0 = none */
    int recipients_max;                     /* default 50000; 0 = none */
    int smtp_max_unknown_commands;          /* default 3 */
    int64_t smtp_receive_timeout;           /* seconds per input line, default 300 */
    int64_t smtp_data_timeout;              /* seconds for a whole DATA, default 1800; 0 = none */
    int smtp_max_line_length;               /* command line limit, default 2048 (RFC min 512) */
    bool smtp_enforce_sync;                 /* default true */
    const char *pipelining_advertise_hosts; /* default "*" */
    bool prdr_enable;                       /* default false */
    const char *host_lookup;                /* must stay empty: no reverse DNS in this build */

    /* ACL names (or inline "accept"/"deny") for each SMTP stage; NULL = default */
    const char *acl_smtp_connect;
    const char *acl_smtp_helo;
    const char *acl_smtp_mail;
    const char *acl_smtp_rcpt; /* NULL => deny all recipients, as Exim does */
    const char *acl_smtp_predata;
    const char *acl_smtp_data;
    const char *acl_smtp_data_prdr; /* default "accept"; alias acl_data_smtp_prdr */
    const char *acl_smtp_quit;
    const char *acl_smtp_notquit;
    const char *acl_smtp_vrfy;

    /* spool, queue and delivery */
    const char *spool_directory;  /* default "./var/spool" */
    int queue_run_max;            /* delivery threads, default 4 */
    int64_t retry_interval;       /* seconds between tries of a deferred address, default 15m */
    int64_t timeout_frozen_after; /* give up after, default 4d */
    int spool_commit_max_batch;   /* group commit: max messages per fsync pass, default 256 */

    /* queue_only and friends: when an accepted message waits for a queue run instead of
     * being handed to the delivery threads (config_queue_only_now(), src/config/queue_only.c) */
    bool queue_only;                     /* default false; -odq sets it, -odb/-odi/-odf clear it */
    const char *queue_only_file;         /* Exim list of absolute paths, as written (for -bP) */
    const char *const *queue_only_paths; /* queue_only_file split; stat()ed per message;
                                            empty when -odb/-odi override it (arena) */
    int queue_only_path_count;
    int64_t queue_only_load;    /* load average x 1000 above which messages wait; -1 unset */
    bool queue_only_load_latch; /* default true: once queued for load, the rest of the
                                   connection's messages are queued too */
    bool queue_only_override;   /* default true: -odb/-odi/-odf override queue_only and
                                   queue_only_file (-odq always applies) */

    /* logging */
    const char *log_file_path; /* default "./var/log/%slog" */
    const char *log_selector;  /* e.g. "+proxy" */
    unsigned log_flags;        /* LOG_SEL_* bits derived from log_selector */

    /* compiled sub-configurations */
    struct acl_set *acls;
    struct deliver_config *deliver;
    /* the configuration's constant regular expressions, compiled at load (src/expand/regex.c);
     * freed by the cleanup hook regex.c registers; read-only once published */
    struct expand_regex_set *regexes;
};

/* log_selector bits */
#define LOG_SEL_PROXY 0x0001u /* PRX= on <= lines */
#define LOG_SEL_SMTP_CONNECTION 0x0002u
#define LOG_SEL_RECEIVED_RECIPIENTS 0x0004u
#define LOG_SEL_INCOMING_PORT 0x0008u
/* reserved for the session's protocol-error logging; no log_selector sets them yet
 * ("+smtp_protocol_error", "+pipelining", "+smtp_syntax_error" are refused until then) */
#define LOG_SEL_SMTP_PROTOCOL_ERROR 0x0010u
#define LOG_SEL_PIPELINING 0x0020u
#define LOG_SEL_SMTP_SYNTAX_ERROR 0x0040u

/* The embedded default configuration (conf/postern.conf, compiled in). */
extern const char config_embedded_default[];

/*
 * Load and validate a complete configuration: parse, bind main options (unknown option
 * => error naming file:line and the word), then run every registered compiler (ACLs,
 * routers/transports, ...: the table in src/config/compilers.c). path NULL => the
 * embedded default. The result is the config inside a fresh struct snapshot (reference
 * count zero until snapshot_publish()); free it with config_free() if never published.
 * Returns NULL on failure with err filled.
 */
struct config *config_load(const char *path, const struct conf_macro *cmdline_macros, char *err,
                           size_t errlen);
struct config *config_load_text(const char *text, const char *name,
                                const struct conf_macro *cmdline_macros, char *err, size_t errlen);
void config_free(struct config *cfg);

/* Give the snapshot a resource to release when it is freed (its last reference goes):
 * fn(arg) runs once from config_free(), newest registration first, before the arena is
 * deleted. For compilers building a snapshot; never called on a published config. The
 * list lives in the struct snapshot that contains cfg, not in struct config. */
void config_add_cleanup(struct config *cfg, void (*fn)(void *arg), void *arg);

/* Find a named list; NULL if none. (Inline so list matching needs no link to src/config.) */
static inline const struct conf_named_list *
config_find_list(const struct config *cfg, enum conf_list_kind kind, const char *name)
{
    for (const struct conf_named_list *l = cfg ? cfg->tree.lists : 0; l; l = l->next)
        if (l->kind == kind && str_ieq(l->name, name))
            return l;
    return 0;
}

/* The command line's delivery mode (-odq queue, -odb/-odi/-odf deliver), applied by
 * every load (startup and SIGHUP) as Exim applies it: set once by main() before the
 * first config_load(); main thread only. */
enum config_delivery_mode {
    CONFIG_DELIVERY_DEFAULT, /* no -od option */
    CONFIG_DELIVERY_QUEUE,   /* -odq: queue_only */
    CONFIG_DELIVERY_NOW,     /* -odb/-odi/-odf: deliver, if queue_only_override allows */
};
void config_set_delivery_mode(enum config_delivery_mode mode);

/* Whether a message accepted now must wait for a queue run instead of being delivered
 * at once: queue_only (or -odq), an existing queue_only_file path, or a load average
 * above queue_only_load. *session_latch is the connection's flag: when true the message
 * waits; when the load decides and queue_only_load_latch is set, it is set to true.
 * Any thread (stat() and getloadavg() only). */
bool config_queue_only_now(const struct config *cfg, bool *session_latch);

/* -bP support: print "name = value" for one option (or all when name is NULL). Returns false
 * if the option is unknown. */
bool config_print_option(const struct config *cfg, const char *name, struct buf *out);

#endif
