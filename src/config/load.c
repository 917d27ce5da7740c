/*
 * load.c - config_load(): parse a configuration (file, text, or the embedded default),
 * bind the main options, then hand the tree to the ACL compiler (src/acl) and the router/
 * transport compiler (src/deliver). Returns an immutable struct config or an error
 * "file:line: reason".
 *
 * Ownership: each struct config is allocated inside its own arena (cfg->arena), together
 * with everything it points to; config_free() deletes that arena, which frees cfg too.
 * Called by the main thread (startup, SIGHUP reload) and by tests; no shared state.
 *
 * acl_compile and deliver_compile are weak references so that builds of only some
 * modules (-DPOSTERN_MODULES="util;config") still link; a missing compiler is a load
 * error, never a silent skip. Note for static linking: a weak reference does not pull an
 * object out of libpostern_core.a, so the object defining acl_compile/deliver_compile
 * must be linked for another reason (the server references the ACL and delivery
 * engines), or the reference must be made strong (delete the two declarations below).
 */
#include "config_internal.h"
#include "postern/acl.h"
#include "postern/deliver.h"

#include <stdio.h>
#include <string.h>

bool acl_compile(struct config *cfg, char *err, size_t errlen) __attribute__((weak));
bool deliver_compile(struct config *cfg, char *err, size_t errlen) __attribute__((weak));

#define CONFIG_ARENA_CHUNK 16384

static struct config *config_new(const char *source)
{
    struct arena *arena = arena_new(CONFIG_ARENA_CHUNK);
    struct config *cfg = arena_zalloc(arena, sizeof *cfg);
    cfg->arena = arena;
    cfg->source = arena_strdup(arena, source);
    return cfg;
}

static bool config_compile(struct config *cfg, char *err, size_t errlen)
{
    if (!config_bind_main(cfg, err, errlen))
        return false;
    if (!acl_compile) {
        snprintf(err, errlen, "%s: ACL support not built (acl_compile is not linked)", cfg->source);
        return false;
    }
    if (!acl_compile(cfg, err, errlen))
        return false;
    if (!deliver_compile) {
        snprintf(err, errlen,
                 "%s: router/transport support not built (deliver_compile is not "
                 "linked)",
                 cfg->source);
        return false;
    }
    return deliver_compile(cfg, err, errlen);
}

struct config *config_load_text(const char *text, const char *name,
                                const struct conf_macro *cmdline_macros, char *err, size_t errlen)
{
    if (!name)
        name = "<text>";
    struct config *cfg = config_new(name);
    if (!conf_parse_text(cfg->arena, text, strlen(text), cfg->source, cmdline_macros, &cfg->tree,
                         err, errlen) ||
        !config_compile(cfg, err, errlen)) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

struct config *config_load(const char *path, const struct conf_macro *cmdline_macros, char *err,
                           size_t errlen)
{
    if (!path)
        return config_load_text(config_embedded_default, "<embedded>", cmdline_macros, err, errlen);
    struct config *cfg = config_new(path);
    if (!conf_parse_file(cfg->arena, cfg->source, cmdline_macros, &cfg->tree, err, errlen) ||
        !config_compile(cfg, err, errlen)) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

struct config_cleanup {
    void (*fn)(void *arg);
    void *arg;
    struct config_cleanup *next;
};

void config_add_cleanup(struct config *cfg, void (*fn)(void *arg), void *arg)
{
    struct config_cleanup *c = arena_alloc(cfg->arena, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = cfg->cleanups;
    cfg->cleanups = c;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (struct config_cleanup *c = cfg->cleanups; c; c = c->next)
        c->fn(c->arg);
    arena_delete(cfg->arena); /* cfg itself lives in this arena */
}
