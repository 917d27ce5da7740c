/*
 * vars.c - the delivery table of the variable registry (include/postern/vars.h): the
 * variables available while routing and transporting one address ($local_part, $domain,
 * $address_data, $sender_address*, $message_exim_id, $message_size, $received_protocol,
 * $sender_host_*, $sender_helo_name, $router_name, $transport_name, $original_*,
 * $parent_*, $acl_m*), chained to the engine's built-ins. Adding one: a getter and one line
 * in deliver_var_defs (sorted).
 *
 * No state of its own: every value is read from the struct deliver_scope in ctx->user that
 * the caller (the delivery thread handling the message) builds on its stack.
 */
#include "deliver_internal.h"

#include "postern/vars.h"

#include <stdio.h>
#include <string.h>

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

static struct deliver_scope *var_scope(const struct expand_ctx *ctx)
{
    return ctx->user;
}

static const struct spool_envelope *var_envelope(const struct expand_ctx *ctx)
{
    return var_scope(ctx)->delivery->env;
}

/* $local_part and $domain: lower-cased, as Exim routes them. */
static const char *get_address_part(struct expand_ctx *ctx, const char *name)
{
    const struct addr_item *a = var_scope(ctx)->addr;
    if (!a)
        return "";
    char *v = arena_strdup(ctx->arena, name[0] == 'l' ? a->local_part : a->domain);
    str_lower(v);
    return v;
}

static const char *get_address_data(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct addr_item *a = var_scope(ctx)->addr;
    return a ? str_or_empty(a->address_data) : "";
}

/* $original_local_part / $original_domain: the top address of a redirection chain. */
static const char *get_original(struct expand_ctx *ctx, const char *name)
{
    const struct addr_item *a =
        var_scope(ctx)->addr ? deliver_addr_top(var_scope(ctx)->addr) : NULL;
    if (!a)
        return "";
    return strcmp(name, "original_domain") == 0 ? a->domain : a->local_part;
}

static const char *get_parent(struct expand_ctx *ctx, const char *name)
{
    const struct addr_item *a = var_scope(ctx)->addr;
    if (!a || !a->parent)
        return "";
    return strcmp(name, "parent_domain") == 0 ? a->parent->domain : a->parent->local_part;
}

static const char *get_router_name(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_scope(ctx)->router ? var_scope(ctx)->router->name : "";
}

static const char *get_transport_name(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return var_scope(ctx)->transport ? var_scope(ctx)->transport->name : "";
}

static const char *get_message_id(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return str_or_empty(var_scope(ctx)->delivery->id);
}

/* $sender_address and its parts. */
static const char *get_sender(struct expand_ctx *ctx, const char *name)
{
    const struct spool_envelope *env = var_envelope(ctx);
    const char *sender = env ? str_or_empty(env->sender) : "";
    const char *at = strrchr(sender, '@');
    if (strcmp(name, "sender_address_local_part") == 0)
        return at ? arena_strndup(ctx->arena, sender, (size_t)(at - sender)) : sender;
    if (strcmp(name, "sender_address_domain") == 0)
        return at ? at + 1 : "";
    return sender;
}

static const char *get_acl_m(struct expand_ctx *ctx, const char *name)
{
    const struct spool_envelope *env = var_envelope(ctx);
    for (int i = 0; env && i < env->acl_var_count; i++)
        if (strcmp(env->acl_var_names[i], name) == 0)
            return str_or_empty(env->acl_var_values[i]);
    return ""; /* unset ACL variables expand to nothing, as in Exim */
}

static const char *get_message_size(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct spool_envelope *env = var_envelope(ctx);
    return env ? arena_printf(ctx->arena, "%lld", (long long)env->size) : "-1";
}

static const char *get_received_time(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct spool_envelope *env = var_envelope(ctx);
    return env ? arena_printf(ctx->arena, "%lld", (long long)env->received_time) : "";
}

static const char *get_recipients_count(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct spool_envelope *env = var_envelope(ctx);
    return env ? arena_printf(ctx->arena, "%d", env->recipient_count) : "0";
}

static const char *get_host_port(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    const struct spool_envelope *env = var_envelope(ctx);
    return env ? arena_printf(ctx->arena, "%d", env->host_port) : "0";
}

/* Envelope strings: which field each name reads. */
static const char *get_envelope_text(struct expand_ctx *ctx, const char *name)
{
    const struct spool_envelope *env = var_envelope(ctx);
    if (!env)
        return "";
    if (strcmp(name, "received_protocol") == 0)
        return str_or_empty(env->protocol);
    if (strcmp(name, "sender_host_address") == 0)
        return str_or_empty(env->host_address);
    if (strcmp(name, "sender_host_name") == 0)
        return str_or_empty(env->host_name);
    return str_or_empty(env->helo_name); /* sender_helo_name */
}

#define M VAR_MESSAGE
#define D VAR_DELIVERY
/* Sorted by name. */
static const struct var_def deliver_var_defs[] = {
    {"address_data", D, get_address_data},
    {"domain", D, get_address_part},
    {"domain_data", D, var_get_empty},
    {"local_part", D, get_address_part},
    {"local_part_data", D, var_get_empty},
    {"message_exim_id", M, get_message_id},
    {"message_id", M, get_message_id},
    {"message_size", M, get_message_size},
    {"original_domain", D, get_original},
    {"original_local_part", D, get_original},
    {"parent_domain", D, get_parent},
    {"parent_local_part", D, get_parent},
    {"received_protocol", M, get_envelope_text},
    {"received_time", M, get_received_time},
    {"recipients_count", M, get_recipients_count},
    {"router_name", D, get_router_name},
    {"sender_address", M, get_sender},
    {"sender_address_domain", M, get_sender},
    {"sender_address_local_part", M, get_sender},
    {"sender_helo_name", M, get_envelope_text},
    {"sender_host_address", M, get_envelope_text},
    {"sender_host_name", M, get_envelope_text},
    {"sender_host_port", M, get_host_port},
    {"transport_name", D, get_transport_name},
};

static const struct var_def deliver_var_prefixes[] = {
    {"acl_m", M, get_acl_m},
};
#undef M
#undef D

const struct var_table deliver_var_table = {
    .context = "delivery",
    .defs = deliver_var_defs,
    .count = VAR_TABLE_SIZE(deliver_var_defs),
    .prefixes = deliver_var_prefixes,
    .prefix_count = VAR_TABLE_SIZE(deliver_var_prefixes),
    .next = &expand_builtin_vars,
};

static const char *deliver_var(struct expand_ctx *ctx, const char *name)
{
    return var_table_get(&deliver_var_table, ctx, name);
}

void deliver_scope_expand_ctx(struct deliver_scope *scope, struct expand_ctx *ctx)
{
    expand_ctx_init(ctx, scope->delivery->arena, scope->delivery->cfg, deliver_var, scope);
}
