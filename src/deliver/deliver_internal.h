/*
 * deliver_internal.h - types shared by the files of src/deliver: the compiled routers and
 * transports (built once by deliver_compile() into cfg->arena, immutable afterwards and
 * read by any delivery thread), and the per-message delivery state (one thread, one
 * message arena).
 */
#ifndef POSTERN_DELIVER_INTERNAL_H
#define POSTERN_DELIVER_INTERNAL_H

#include "postern/config.h"
#include "postern/deliver.h"
#include "postern/expand.h"
#include "postern/spool.h"

#include <stdbool.h>
#include <sys/types.h>

/* Redirection generations before we give up on an address (loop guard). */
#define DELIVER_MAX_GENERATIONS 10

/* ---- compiled configuration (cfg->arena, immutable) ---- */

enum transport_driver { TRANSPORT_APPENDFILE };

struct transport {
    const char *name;
    const char *file; /* where it was defined, for error messages */
    int line;
    enum transport_driver driver;
    bool return_path_add;
    bool envelope_to_add;
    bool delivery_date_add;
    /* appendfile (maildir) */
    const char *directory; /* expanded per address */
    bool maildir_format;
    bool create_directory;
    bool use_crlf; /* keep CRLF line ends in the mailbox (default: LF, as Exim) */
    mode_t mode;
    mode_t directory_mode;
    struct transport *next;
};

enum router_driver { ROUTER_ACCEPT, ROUTER_REDIRECT };

struct router {
    const char *name;
    const char *file;
    int line;
    enum router_driver driver;
    /* preconditions; NULL = unset */
    const char *domains;
    const char *local_parts;
    const char *senders;
    const char *condition;
    const char *address_data; /* expanded after the preconditions pass */
    const struct transport *transport;
    bool verify_recipient;
    bool verify_only;
    bool more;
    bool log_as_local; /* Exim: true for accept, false otherwise */
    /* redirect */
    const char *data;
    const char *redirect_file;
    bool allow_fail;
    bool allow_defer;
    struct router *next;
};

struct deliver_config {
    struct router *routers;
    struct transport *transports;
};

/* cfg->deliver (NULL-safe). */
const struct deliver_config *deliver_config_of(const struct config *cfg);

/* ---- per-message state (message arena, one thread) ---- */

enum addr_result {
    ADDR_PENDING = 0,
    ADDR_ROUTED,     /* router assigned a transport */
    ADDR_REDIRECTED, /* replaced by children */
    ADDR_DELIVERED,
    ADDR_DISCARDED, /* :blackhole: */
    ADDR_FAILED,
    ADDR_DEFERRED,
};

struct addr_item {
    const char *address;    /* local@domain as written (a quoted local part keeps its quotes) */
    const char *local_part; /* unquoted, as Exim's $local_part */
    const char *domain;
    struct addr_item *parent;    /* NULL for an envelope recipient */
    int rcpt_index;              /* envelope recipient this descends from */
    int generation;              /* 0 for envelope recipients */
    const struct router *router; /* last router that handled it */
    const struct transport *transport;
    const char *address_data;
    enum addr_result result;
    const char *message;     /* failure or deferral text */
    int basic_errno;         /* errno for a deferral, -1 when none */
    bool transport_stage;    /* failure/deferral happened in the transport */
    const char *marker;      /* maildir tmp/ link left until the delivery is recorded; the
                                caller unlinks it then (d->arena string) */
    bool redelivery_avoided; /* an earlier attempt had delivered it: not written again */
    struct addr_item *next;  /* in the delivery's list of final addresses */
};

struct delivery {
    struct arena *arena;
    const struct config *cfg;
    const struct deliver_config *dc;
    const struct spool_envelope *env; /* NULL in route tests */
    const char *id;                   /* "" in route tests */
    bool verify_mode;
};

/* Expansion context for one address at one router or transport (vars.c). */
struct deliver_scope {
    struct delivery *delivery;
    const struct addr_item *addr; /* may be NULL */
    const struct router *router;
    const struct transport *transport;
};
void deliver_scope_expand_ctx(struct deliver_scope *scope, struct expand_ctx *ctx);

/* route.c: route one address. Children of a redirect are appended to *children. */
enum addr_result deliver_route_address(struct delivery *d, struct addr_item *addr,
                                       struct addr_item **children);
/* Split local@domain into the address item's fields (d->arena): the address as written,
 * the unquoted local part (Exim's $local_part) and the domain; an address without a domain
 * is qualified with qualify_domain. False with reason ("malformed address: ...") when the
 * address is not valid RFC 5321 syntax (src/util/address.c). */
bool deliver_addr_split(struct delivery *d, struct addr_item *addr, const char *address,
                        const char **reason);
/* May a path built for addr (the expanded `option`: directory, file) be used? Not when
 * addr's local part or domain is empty, ".", ".." or contains '/' (whatever the ACLs
 * said), nor when the path is not absolute or has ".", ".." or empty components. False
 * with addr->message set (the delivery fails). */
bool deliver_path_allowed(struct delivery *d, struct addr_item *addr, const char *option,
                          const char *path);
/* The envelope recipient an address descends from (itself for an envelope recipient). */
const struct addr_item *deliver_addr_top(const struct addr_item *addr);

/* redirect.c: interpret redirection data. */
enum redirect_kind {
    REDIRECT_ADDRESSES,
    REDIRECT_BLACKHOLE,
    REDIRECT_FAIL,
    REDIRECT_DEFER,
    REDIRECT_EMPTY
};
struct redirect_result {
    enum redirect_kind kind;
    const char *text; /* :fail:/:defer: text, or an error */
    int count;
    const char **addresses; /* qualified local@domain */
};
/* Unqualified items get @qualify_domain; "\local" items get @incoming_domain. A syntax
 * error or an unsupported item (pipe, file, :include:) returns false with *err. */
bool redirect_parse(struct arena *arena, const char *data, const char *qualify_domain,
                    const char *incoming_domain, struct redirect_result *out, const char **err);
/* Read a redirect file (aliases style: the whole file is the list). */
bool redirect_read_file(struct arena *arena, const char *path, const char **text, const char **err);

/* maildir.c: deliver the message to the address's transport. On failure fills
 * addr->message/basic_errno and returns ADDR_DEFERRED (temporary) or ADDR_FAILED. */
enum addr_result deliver_maildir(struct delivery *d, struct addr_item *addr);

/* message.c: one delivery attempt of a message. */
enum message_outcome {
    MESSAGE_LOCKED,    /* another thread or process is delivering it */
    MESSAGE_ERROR,     /* unreadable envelope: logged to the paniclog */
    MESSAGE_COMPLETED, /* every recipient done, removed from the spool */
    MESSAGE_DEFERRED,  /* some recipients remain */
};
enum message_outcome deliver_message_run(const struct config *cfg, const char *id);

/* bounce.c: spool a failure report from "<>" to the sender for the failed addresses, as
 * message new_id (chosen and recorded by the caller, so that a repeat after a crash reuses
 * it), and log its arrival; the caller delivers it. Returns false (logged to the paniclog)
 * when it could not be spooled. */
bool deliver_bounce(struct delivery *d, struct addr_item *const *failed, int count,
                    const char *new_id);

#endif
