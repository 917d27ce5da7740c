/*
 * load.c - config_load(): parse a configuration (file, text, or the embedded default),
 * bind the main options, then run every compiler registered in compilers.c (ACLs,
 * routers/transports, ...) to build the rest of the snapshot. Returns an immutable
 * struct config or an error "file:line: reason (near 'word')".
 *
 * Ownership: each config is the first member of a struct snapshot allocated inside its
 * own arena (cfg->arena), together with everything it points to; config_free() runs the
 * snapshot's cleanup hooks (resources outside the arena), then deletes the arena, which
 * frees the snapshot and cfg too. Called by the main thread (startup, SIGHUP reload,
 * -bV/-bP) and by tests; no shared state. The reference count is src/daemon/snapshot.c's.
 */
#include "config_internal.h"
#include "postern/snapshot.h"

#include <stdio.h>
#include <string.h>

#define CONFIG_ARENA_CHUNK 16384

/* A resource the snapshot owns outside its arena (allocated in the arena itself). */
struct snapshot_cleanup {
    void (*fn)(void *arg);
    void *arg;
    struct snapshot_cleanup *next;
};

static struct config *config_new(const char *source)
{
    struct arena *arena = arena_new(CONFIG_ARENA_CHUNK);
    struct snapshot *snap = arena_zalloc(arena, sizeof *snap);
    struct config *cfg = &snap->config;
    cfg->arena = arena;
    cfg->source = arena_strdup(arena, source);
    return cfg;
}

static bool config_compile(struct config *cfg, char *err, size_t errlen)
{
    if (!config_bind_main(cfg, err, errlen))
        return false;
    for (size_t i = 0; i < config_compilers_count; i++)
        if (!config_compilers[i].compile(cfg, err, errlen))
            return false;
    return true;
}

struct config *config_load_text_flags(const char *text, size_t len, const char *name,
                                      const struct conf_macro *cmdline_macros, unsigned flags,
                                      char *err, size_t errlen)
{
    if (!name)
        name = "<text>";
    struct config *cfg = config_new(name);
    if (!conf_parse_text_flags(cfg->arena, text, len, cfg->source, cmdline_macros, flags,
                               &cfg->tree, err, errlen) ||
        !config_compile(cfg, err, errlen)) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

struct config *config_load_text(const char *text, const char *name,
                                const struct conf_macro *cmdline_macros, char *err, size_t errlen)
{
    return config_load_text_flags(text, strlen(text), name, cmdline_macros, 0, err, errlen);
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

void config_add_cleanup(struct config *cfg, void (*fn)(void *arg), void *arg)
{
    struct snapshot *snap = snapshot_of(cfg);
    struct snapshot_cleanup *c = arena_alloc(cfg->arena, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = snap->cleanups;
    snap->cleanups = c;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (struct snapshot_cleanup *c = snapshot_of(cfg)->cleanups; c; c = c->next)
        c->fn(c->arg);
    arena_delete(cfg->arena); /* the snapshot and cfg live in this arena */
}
