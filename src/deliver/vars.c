/*
 * vars.c - expansion variables available while routing and transporting one address:
 * $local_part, $domain, $address_data, $sender_address*, $message_exim_id, $message_size,
 * $received_protocol, $sender_host_address, $sender_helo_name, $router_name,
 * $transport_name, $original_*, $parent_*, $acl_m*, then the engine's built-ins.
 *
 * No state of its own: every value is read from a struct deliver_scope that the caller
 * (the delivery thread handling the message) builds on its stack.
 */
#include "deliver_internal.h"

#include <stdio.h>
#include <string.h>

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* Variables about the address being routed or delivered. */
static const char *var_address(struct deliver_scope *s, struct arena *arena, const char *name)
{
    const struct addr_item *a = s->addr;
    if (strcmp(name, "local_part") == 0 || strcmp(name, "domain") == 0) {
        if (!a)
            return "";
        char *v = arena_strdup(arena, name[0] == 'l' ? a->local_part : a->domain);
        str_lower(v);
        return v;
    }
    if (strcmp(name, "address_data") == 0)
        return a ? str_or_empty(a->address_data) : "";
    if (strcmp(name, "local_part_data") == 0 || strcmp(name, "domain_data") == 0)
        return "";
    if (strcmp(name, "original_local_part") == 0)
        return a ? deliver_addr_top(a)->local_part : "";
    if (strcmp(name, "original_domain") == 0)
        return a ? deliver_addr_top(a)->domain : "";
    if (strcmp(name, "parent_local_part") == 0)
        return a && a->parent ? a->parent->local_part : "";
    if (strcmp(name, "parent_domain") == 0)
        return a && a->parent ? a->parent->domain : "";
    if (strcmp(name, "router_name") == 0)
        return s->router ? s->router->name : "";
    if (strcmp(name, "transport_name") == 0)
        return s->transport ? s->transport->name : "";
    return NULL;
}

static const char *var_sender(const struct spool_envelope *env, struct arena *arena,
                              const char *name)
{
    const char *sender = env ? env->sender : "";
    const char *at = strrchr(sender, '@');
    if (strcmp(name, "sender_address") == 0)
        return sender;
    if (strcmp(name, "sender_address_local_part") == 0)
        return at ? arena_strndup(arena, sender, (size_t)(at - sender)) : sender;
    if (strcmp(name, "sender_address_domain") == 0)
        return at ? at + 1 : "";
    return NULL;
}

static const char *var_acl(const struct spool_envelope *env, const char *name)
{
    if (strncmp(name, "acl_m", 5) != 0)
        return NULL;
    for (int i = 0; env && i < env->acl_var_count; i++)
        if (strcmp(env->acl_var_names[i], name) == 0)
            return str_or_empty(env->acl_var_values[i]);
    return ""; /* unset ACL variables expand to nothing, as in Exim */
}

/* Variables about the message (from the envelope). */
static const char *var_message(struct deliver_scope *s, struct arena *arena, const char *name)
{
    const struct spool_envelope *env = s->delivery->env;
    if (strcmp(name, "message_exim_id") == 0 || strcmp(name, "message_id") == 0)
        return str_or_empty(s->delivery->id);
    const char *v = var_sender(env, arena, name);
    if (v)
        return v;
    v = var_acl(env, name);
    if (v)
        return v;
    if (strcmp(name, "message_size") == 0)
        return env ? arena_printf(arena, "%lld", (long long)env->size) : "-1";
    if (strcmp(name, "received_protocol") == 0)
        return env ? str_or_empty(env->protocol) : "";
    if (strcmp(name, "sender_host_address") == 0)
        return env ? str_or_empty(env->host_address) : "";
    if (strcmp(name, "sender_host_name") == 0)
        return env ? str_or_empty(env->host_name) : "";
    if (strcmp(name, "sender_host_port") == 0)
        return env ? arena_printf(arena, "%d", env->host_port) : "0";
    if (strcmp(name, "sender_helo_name") == 0)
        return env ? str_or_empty(env->helo_name) : "";
    if (strcmp(name, "received_time") == 0)
        return env ? arena_printf(arena, "%lld", (long long)env->received_time) : "";
    if (strcmp(name, "recipients_count") == 0)
        return env ? arena_printf(arena, "%d", env->recipient_count) : "0";
    return NULL;
}

static const char *deliver_var(struct expand_ctx *ctx, const char *name)
{
    struct deliver_scope *s = ctx->user;
    const char *v = var_address(s, ctx->arena, name);
    if (!v)
        v = var_message(s, ctx->arena, name);
    if (!v)
        v = expand_builtin_var(ctx, name);
    return v;
}

void deliver_scope_expand_ctx(struct deliver_scope *scope, struct expand_ctx *ctx)
{
    expand_ctx_init(ctx, scope->delivery->arena, scope->delivery->cfg, deliver_var, scope);
}
