/*
 * route.c - runs the routers over one address, as Exim does: routers in config order;
 * a router is skipped when its preconditions (ancestor rule, verify flags, domains,
 * local_parts, senders, condition) do not hold; accept assigns its transport; redirect
 * expands `data` (or reads `file`) into children, :blackhole:, :fail: or :defer:; a
 * declining router passes the address on unless `more` is false. Also deliver_route_test()
 * for verify = recipient.
 *
 * Loop rule (Exim's): a router is skipped for an address when an ancestor of that address
 * is the same address and was handled by that router. Generations are also bounded.
 *
 * State: none; works on a struct delivery owned by the calling thread.
 */
#include "deliver_internal.h"

#include "postern/address.h"
#include "postern/log.h"

#include <string.h>

enum pre_result { PRE_SKIP, PRE_RUN, PRE_DEFER };
enum router_outcome { ROUTER_DECLINE, ROUTER_DONE };

bool deliver_addr_split(struct delivery *d, struct addr_item *addr, const char *address,
                        const char **reason)
{
    const char *local_part = NULL, *domain = NULL;
    if (!address_split(d->arena, address, &local_part, &domain, reason))
        return false;
    if (!*domain) { /* "postmaster": qualify it, as Exim does with qualify_recipient */
        domain = d->cfg && d->cfg->qualify_domain     ? d->cfg->qualify_domain
                 : d->cfg && d->cfg->primary_hostname ? d->cfg->primary_hostname
                                                      : "localhost";
        address = arena_printf(d->arena, "%s@%s", address, domain);
    }
    addr->address = address;
    addr->local_part = address_unquote(d->arena, local_part); /* Exim's $local_part */
    addr->domain = domain;
    addr->basic_errno = -1;
    return true;
}

const struct addr_item *deliver_addr_top(const struct addr_item *addr)
{
    while (addr->parent)
        addr = addr->parent;
    return addr;
}

bool deliver_path_allowed(struct delivery *d, struct addr_item *addr, const char *option,
                          const char *path)
{
    const char *why = NULL;
    addr->basic_errno = -1;
    if (!address_component_path_safe(addr->local_part, &why)) {
        addr->message = arena_printf(d->arena, "local part \"%s\" %s: not used in a file path",
                                     addr->local_part, why);
        return false;
    }
    if (!address_component_path_safe(addr->domain, &why)) {
        addr->message =
            arena_printf(d->arena, "domain \"%s\" %s: not used in a file path", addr->domain, why);
        return false;
    }
    if (!fs_path_check(path, &why)) {
        addr->message = arena_printf(d->arena, "%s \"%s\" %s", option, path, why);
        return false;
    }
    return true;
}

static bool ancestor_handled_by(const struct addr_item *addr, const struct router *r)
{
    for (const struct addr_item *a = addr->parent; a; a = a->parent)
        if (a->router == r && str_ieq(a->address, addr->address))
            return true;
    return false;
}

static enum pre_result match_to_pre(enum match_result m, struct addr_item *addr,
                                    const struct router *r, const char *what, const char *err)
{
    if (m == MATCH_YES)
        return PRE_RUN;
    if (m == MATCH_NO)
        return PRE_SKIP;
    addr->message = err ? err : "lookup deferred";
    if (m == MATCH_ERROR)
        log_write(LOG_PANIC, NULL, "router %s: %s check failed: %s", r->name, what, addr->message);
    return PRE_DEFER;
}

/* The list preconditions: domains, local_parts, senders. */
static enum pre_result check_lists(struct delivery *d, const struct router *r,
                                   struct addr_item *addr, struct expand_ctx *ctx)
{
    const char *err = NULL;
    enum pre_result p = PRE_RUN;
    if (r->domains) {
        char *domain = arena_strdup(d->arena, addr->domain);
        str_lower(domain);
        p = match_to_pre(list_match_domain(ctx, r->domains, domain, &err), addr, r, "domains", err);
    }
    if (p == PRE_RUN && r->local_parts) {
        char *lp = arena_strdup(d->arena, addr->local_part);
        str_lower(lp);
        p = match_to_pre(list_match_localpart(ctx, r->local_parts, lp, &err), addr, r,
                         "local_parts", err);
    }
    if (p == PRE_RUN && r->senders) {
        const char *sender = d->env ? d->env->sender : "";
        p = match_to_pre(list_match_address(ctx, r->senders, sender, &err), addr, r, "senders",
                         err);
    }
    return p;
}

static enum pre_result router_preconditions(struct delivery *d, const struct router *r,
                                            struct addr_item *addr)
{
    if (ancestor_handled_by(addr, r))
        return PRE_SKIP;
    if (d->verify_mode ? !r->verify_recipient : r->verify_only)
        return PRE_SKIP;
    struct deliver_scope scope = {d, addr, r, NULL};
    struct expand_ctx ctx;
    deliver_scope_expand_ctx(&scope, &ctx);
    enum pre_result p = check_lists(d, r, addr, &ctx);
    if (p != PRE_RUN || !r->condition)
        return p;
    bool yes = false;
    const char *err = NULL;
    enum expand_status st = expand_bool(&ctx, r->condition, &yes, &err);
    if (st == EXPAND_OK)
        return yes ? PRE_RUN : PRE_SKIP;
    if (st == EXPAND_FORCED_FAIL)
        return PRE_SKIP;
    addr->message = arena_printf(d->arena, "failed to expand condition: %s", err ? err : "?");
    return PRE_DEFER;
}

/* Expand one router/transport option for this address. */
static enum expand_status expand_for(struct delivery *d, const struct router *r,
                                     struct addr_item *addr, const char *in, const char **out)
{
    struct deliver_scope scope = {d, addr, r, NULL};
    struct expand_ctx ctx;
    const char *err = NULL;
    deliver_scope_expand_ctx(&scope, &ctx);
    enum expand_status st = expand_string(&ctx, in, out, &err);
    if (st == EXPAND_FAIL || st == EXPAND_DEFER)
        *out = err ? err : "expansion failed";
    return st;
}

/* Get the redirection text; NULL text means decline. */
static enum addr_result redirect_text(struct delivery *d, const struct router *r,
                                      struct addr_item *addr, const char **text)
{
    const char *value = NULL;
    enum expand_status st = expand_for(d, r, addr, r->data ? r->data : r->redirect_file, &value);
    *text = NULL;
    if (st == EXPAND_FORCED_FAIL)
        return ADDR_PENDING;
    if (st != EXPAND_OK) {
        addr->message =
            arena_printf(d->arena, "failed to expand \"%s\": %s", r->data ? "data" : "file", value);
        return ADDR_DEFERRED;
    }
    if (r->data) {
        *text = value;
        return ADDR_PENDING;
    }
    const char *err = NULL;
    if (!deliver_path_allowed(d, addr, "file", value))
        return ADDR_FAILED;
    if (!redirect_read_file(d->arena, value, text, &err)) {
        addr->message = err;
        return ADDR_DEFERRED;
    }
    return ADDR_PENDING;
}

static void children_add(struct delivery *d, struct addr_item *addr,
                         const struct redirect_result *rr, struct addr_item **children)
{
    struct addr_item **tail = children;
    while (*tail)
        tail = &(*tail)->next;
    for (int i = 0; i < rr->count; i++) {
        struct addr_item *c = arena_zalloc(d->arena, sizeof *c);
        const char *reason = NULL;
        if (!deliver_addr_split(d, c, rr->addresses[i], &reason))
            continue; /* redirect_parse validated it already */
        c->parent = addr;
        c->rcpt_index = addr->rcpt_index;
        c->generation = addr->generation + 1;
        *tail = c;
        tail = &c->next;
    }
}

/* A :fail:/:defer: that the router does not allow is a configuration error. */
static enum addr_result redirect_not_allowed(struct delivery *d, const struct router *r,
                                             struct addr_item *addr, const char *item,
                                             const char *option)
{
    addr->message =
        arena_printf(d->arena, "%s used in redirection data but %s is not set", item, option);
    log_write(LOG_PANIC, d->id[0] ? d->id : NULL, "router %s: %s for %s", r->name, addr->message,
              addr->address);
    return ADDR_DEFERRED;
}

static enum addr_result redirect_apply(struct delivery *d, const struct router *r,
                                       struct addr_item *addr, const struct redirect_result *rr,
                                       struct addr_item **children)
{
    const char *text = rr->text && *rr->text ? rr->text : NULL;
    switch (rr->kind) {
    case REDIRECT_BLACKHOLE:
        if (!d->verify_mode)
            log_write(LOG_MAIN, d->id, "=> :blackhole: <%s> R=%s", addr->address, r->name);
        return ADDR_DISCARDED;
    case REDIRECT_FAIL:
        if (!r->allow_fail)
            return redirect_not_allowed(d, r, addr, ":fail:", "allow_fail");
        addr->message = text;
        return ADDR_FAILED;
    case REDIRECT_DEFER:
        if (!r->allow_defer)
            return redirect_not_allowed(d, r, addr, ":defer:", "allow_defer");
        addr->message = text;
        return ADDR_DEFERRED;
    case REDIRECT_ADDRESSES:
        children_add(d, addr, rr, children);
        return ADDR_REDIRECTED;
    default:
        return ADDR_PENDING; /* empty: decline */
    }
}

static enum addr_result router_redirect(struct delivery *d, const struct router *r,
                                        struct addr_item *addr, struct addr_item **children)
{
    const char *text = NULL, *err = NULL;
    enum addr_result res = redirect_text(d, r, addr, &text);
    if (res != ADDR_PENDING || !text)
        return res;
    const char *qualify =
        d->cfg->qualify_domain ? d->cfg->qualify_domain : d->cfg->primary_hostname;
    struct redirect_result rr;
    if (!redirect_parse(d->arena, text, qualify, addr->domain, &rr, &err)) {
        addr->message = arena_printf(d->arena, "error in redirect data: %s", err);
        log_write(LOG_PANIC, d->id[0] ? d->id : NULL, "router %s: %s (address %s)", r->name,
                  addr->message, addr->address);
        return ADDR_DEFERRED;
    }
    return redirect_apply(d, r, addr, &rr, children);
}

/* Run router r on addr. ADDR_PENDING means the router declined. */
static enum addr_result router_run(struct delivery *d, const struct router *r,
                                   struct addr_item *addr, struct addr_item **children)
{
    addr->address_data = NULL;
    if (r->address_data) {
        const char *value = NULL;
        enum expand_status st = expand_for(d, r, addr, r->address_data, &value);
        if (st == EXPAND_FORCED_FAIL)
            return ADDR_PENDING;
        if (st != EXPAND_OK) {
            addr->message = arena_printf(d->arena, "failed to expand \"address_data\": %s", value);
            return ADDR_DEFERRED;
        }
        addr->address_data = value;
    }
    if (r->driver == ROUTER_ACCEPT) {
        addr->transport = r->transport;
        return ADDR_ROUTED;
    }
    return router_redirect(d, r, addr, children);
}

enum addr_result deliver_route_address(struct delivery *d, struct addr_item *addr,
                                       struct addr_item **children)
{
    addr->basic_errno = -1;
    if (addr->generation > DELIVER_MAX_GENERATIONS) {
        addr->message = "too many redirections (routing loop?)";
        return ADDR_FAILED;
    }
    for (const struct router *r = d->dc ? d->dc->routers : NULL; r; r = r->next) {
        enum pre_result p = router_preconditions(d, r, addr);
        if (p == PRE_SKIP)
            continue;
        addr->router = r;
        if (p == PRE_DEFER)
            return ADDR_DEFERRED;
        enum addr_result res = router_run(d, r, addr, children);
        if (res != ADDR_PENDING)
            return res;
        if (!r->more)
            break;
    }
    addr->router = NULL;
    addr->message = "Unrouteable address";
    return ADDR_FAILED;
}

int deliver_route_test(const struct config *cfg, struct arena *arena, const char *address,
                       const char **reason)
{
    struct delivery d = {arena, cfg, deliver_config_of(cfg), NULL, "", true};
    struct addr_item *addr = arena_zalloc(arena, sizeof *addr);
    *reason = NULL;
    if (!deliver_addr_split(&d, addr, arena_strdup(arena, address), reason))
        return 1;
    for (;;) {
        struct addr_item *children = NULL;
        switch (deliver_route_address(&d, addr, &children)) {
        case ADDR_ROUTED:
        case ADDR_DISCARDED:
            return 0;
        case ADDR_REDIRECTED:
            if (!children || children->next)
                return 0; /* several addresses: verified, as Exim does */
            addr = children;
            continue;
        case ADDR_DEFERRED:
            *reason = addr->message ? addr->message : "routing deferred";
            return 2;
        default:
            *reason = addr->message ? addr->message : "Unrouteable address";
            return 1;
        }
    }
}
