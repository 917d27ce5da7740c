/*
 * expand_vars.c - the registry table of the variables every expansion context has,
 * whatever the caller's table knows: $primary_hostname, $smtp_active_hostname,
 * $qualify_domain, $qualify_recipient, $version_number, $exim_version, $pid and the
 * time-of-day family ($tod_log, $tod_logfile, $tod_full, $tod_bsdinbox, $tod_epoch,
 * $tod_zulu). Context tables chain to it (include/postern/vars.h).
 *
 * Values come from ctx->config (may be NULL: "localhost" is used) and the clock; results
 * are allocated in ctx->arena. Thread-safe (localtime_r / gmtime_r only).
 */
#include "expand_internal.h"

#include "postern/vars.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef POSTERN_VERSION
#define POSTERN_VERSION "0.0.0"
#endif

static const char *var_primary_hostname(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    if (ctx->config && ctx->config->primary_hostname && *ctx->config->primary_hostname)
        return ctx->config->primary_hostname;
    return "localhost";
}

static const char *var_qualify_domain(struct expand_ctx *ctx, const char *name)
{
    if (ctx->config && ctx->config->qualify_domain && *ctx->config->qualify_domain)
        return ctx->config->qualify_domain;
    return var_primary_hostname(ctx, name);
}

static const char *var_version(struct expand_ctx *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return POSTERN_VERSION;
}

static const char *var_pid(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return arena_printf(ctx->arena, "%ld", (long)getpid());
}

/* Local time with the numeric UTC offset ("+0100"). */
static void time_now(struct tm *tm, char offset[8], time_t *now)
{
    *now = time(NULL);
    localtime_r(now, tm);
    long off = tm->tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(offset, 8, "%c%02ld%02ld", sign, (off / 60) % 100, off % 60);
}

static const char *var_time(struct expand_ctx *ctx, const char *name)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    char offset[8];
    time_t now;
    time_now(&tm, offset, &now);
    if (strcmp(name, "tod_log") == 0)
        return arena_printf(ctx->arena, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (strcmp(name, "tod_logfile") == 0)
        return arena_printf(ctx->arena, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                            tm.tm_mday);
    if (strcmp(name, "tod_full") == 0)
        return arena_printf(ctx->arena, "%s, %02d %s %04d %02d:%02d:%02d %s", days[tm.tm_wday],
                            tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, offset);
    if (strcmp(name, "tod_bsdinbox") == 0)
        return arena_printf(ctx->arena, "%s %s %2d %02d:%02d:%02d %04d", days[tm.tm_wday],
                            months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                            tm.tm_year + 1900);
    if (strcmp(name, "tod_epoch") == 0)
        return arena_printf(ctx->arena, "%lld", (long long)now);
    if (strcmp(name, "tod_zulu") == 0) {
        struct tm utc;
        gmtime_r(&now, &utc);
        return arena_printf(ctx->arena, "%04d%02d%02d%02d%02d%02dZ", utc.tm_year + 1900,
                            utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    }
    return ""; /* not reached: the table names only the forms above */
}

/* Sorted by name. The time of day is read at each use: command lifetime. */
static const struct var_def builtin_defs[] = {
    {"exim_version", VAR_SNAPSHOT, var_version},
    {"pid", VAR_SNAPSHOT, var_pid},
    {"primary_hostname", VAR_SNAPSHOT, var_primary_hostname},
    {"qualify_domain", VAR_SNAPSHOT, var_qualify_domain},
    {"qualify_recipient", VAR_SNAPSHOT, var_qualify_domain},
    {"smtp_active_hostname", VAR_SNAPSHOT, var_primary_hostname},
    {"tod_bsdinbox", VAR_COMMAND, var_time},
    {"tod_epoch", VAR_COMMAND, var_time},
    {"tod_full", VAR_COMMAND, var_time},
    {"tod_log", VAR_COMMAND, var_time},
    {"tod_logfile", VAR_COMMAND, var_time},
    {"tod_zulu", VAR_COMMAND, var_time},
    {"version_number", VAR_SNAPSHOT, var_version},
};

const struct var_table expand_builtin_vars = {
    .context = "built-in",
    .defs = builtin_defs,
    .count = VAR_TABLE_SIZE(builtin_defs),
};

const char *expand_builtin_var(struct expand_ctx *ctx, const char *name)
{
    return var_table_get(&expand_builtin_vars, ctx, name);
}

/* Before a session exists (the acceptor deciding smtp_accept_max_per_host), the only thing
 * known is the peer: ctx->user is its address as text. */
static const char *var_peer_address(struct expand_ctx *ctx, const char *name)
{
    (void)name;
    return ctx->user ? (const char *)ctx->user : "";
}

static const struct var_def peer_defs[] = {
    {"sender_host_address", VAR_CONNECTION, var_peer_address},
};

const struct var_table expand_peer_vars = {
    .context = "connection accept",
    .defs = peer_defs,
    .count = VAR_TABLE_SIZE(peer_defs),
    .next = &expand_builtin_vars,
};
