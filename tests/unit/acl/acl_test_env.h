/*
 * acl_test_env.h - helpers shared by the ACL unit tests: build a "begin acl" tree by hand
 * (no config parser needed), and a fake struct acl_env with a variable table, a verify
 * callback, and capture of log lines, headers, controls and trace lines.
 *
 * Everything is allocated in the fixture's arena; one fixture per test.
 */
#ifndef ACL_TEST_ENV_H
#define ACL_TEST_ENV_H

#include "postern/acl.h"
#include "postern/snapshot.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_VARS_MAX 64

struct fake {
    struct arena arena;
    struct snapshot snap; /* config_add_cleanup needs the snapshot around the config */
    struct acl_env env;
    const char *var_names[FAKE_VARS_MAX];
    const char *var_values[FAKE_VARS_MAX];
    int nvars;
    enum match_result verify_result[3]; /* per enum acl_verify_what */
    const char *verify_reason;
    int verify_calls;
    struct buf logs;    /* "m|text\n" per log call */
    struct buf headers; /* one line per add_header call */
    struct buf controls;
    struct buf trace;
    struct conf_acl **acl_tail;
};

static inline const char *fake_get(struct fake *f, const char *name)
{
    for (int i = 0; i < f->nvars; i++)
        if (strcmp(f->var_names[i], name) == 0)
            return f->var_values[i];
    return NULL;
}

static inline void fake_set(struct fake *f, const char *name, const char *value)
{
    for (int i = 0; i < f->nvars; i++)
        if (strcmp(f->var_names[i], name) == 0) {
            f->var_values[i] = arena_strdup(&f->arena, value);
            return;
        }
    if (f->nvars == FAKE_VARS_MAX)
        abort();
    f->var_names[f->nvars] = arena_strdup(&f->arena, name);
    f->var_values[f->nvars++] = arena_strdup(&f->arena, value);
}

static inline const char *fake_var(struct expand_ctx *ctx, const char *name)
{
    struct fake *f = ctx->user;
    const char *v = fake_get(f, name);
    if (v)
        return v;
    /* Exim without strict_acl_vars: unset ACL variables are empty */
    if (strncmp(name, "acl_c", 5) == 0 || strncmp(name, "acl_m", 5) == 0)
        return "";
    return NULL;
}

static inline enum match_result fake_verify(struct acl_env *env, enum acl_verify_what what,
                                            const char **reason)
{
    struct fake *f = env->user;
    f->verify_calls++;
    if (f->verify_result[what] != MATCH_YES)
        *reason = f->verify_reason;
    return f->verify_result[what];
}

static inline bool fake_set_var(struct acl_env *env, const char *name, const char *value)
{
    struct fake *f = env->user;
    if (strncmp(name, "acl_c", 5) != 0 && strncmp(name, "acl_m", 5) != 0)
        return false;
    fake_set(f, name, value);
    return true;
}

static inline void fake_log(struct acl_env *env, char which, const char *text)
{
    struct fake *f = env->user;
    buf_printf(&f->logs, "%c|%s\n", which, text);
}

static inline void fake_add_header(struct acl_env *env, const char *header)
{
    struct fake *f = env->user;
    buf_printf(&f->headers, "%s\n", header);
}

static inline bool fake_control(struct acl_env *env, const char *control, const char **err)
{
    struct fake *f = env->user;
    if (strcmp(control, "no_enforce_sync") == 0) {
        *err = "control no_enforce_sync is not allowed here";
        return false;
    }
    buf_printf(&f->controls, "%s\n", control);
    return true;
}

static inline void fake_trace(struct acl_env *env, const char *line)
{
    struct fake *f = env->user;
    buf_printf(&f->trace, "%s\n", line);
}

static inline struct fake *fake_new(enum acl_where where)
{
    struct fake *f = calloc(1, sizeof *f);
    arena_init(&f->arena, 8192);
    f->snap.config.arena = &f->arena;
    f->snap.config.source = "test.conf";
    f->acl_tail = &f->snap.config.tree.acls;
    expand_ctx_init(&f->env.exp, &f->arena, &f->snap.config, fake_var, f);
    f->env.where = where;
    f->env.verify = fake_verify;
    f->env.set_var = fake_set_var;
    f->env.log = fake_log;
    f->env.add_header = fake_add_header;
    f->env.control = fake_control;
    f->env.trace = fake_trace;
    f->env.user = f;
    for (int i = 0; i < 3; i++)
        f->verify_result[i] = MATCH_YES;
    buf_init(&f->logs);
    buf_init(&f->headers);
    buf_init(&f->controls);
    buf_init(&f->trace);
    return f;
}

static inline void fake_free(struct fake *f)
{
    buf_free(&f->logs);
    buf_free(&f->headers);
    buf_free(&f->controls);
    buf_free(&f->trace);
    expand_regex_release_all(&f->snap.config); /* what config_free's cleanup hook does */
    arena_reset(&f->arena);
    free(f);
}

static inline const char *fake_logs(struct fake *f)
{
    return f->logs.len ? f->logs.data : "";
}

static inline const char *fake_headers(struct fake *f)
{
    return f->headers.len ? f->headers.data : "";
}

/* ---- tree builders ---- */

static inline struct conf_acl *tree_acl(struct fake *f, const char *name)
{
    struct conf_acl *a = arena_zalloc(&f->arena, sizeof *a);
    a->name = name;
    a->file = "test.conf";
    a->line = 1;
    *f->acl_tail = a;
    f->acl_tail = &a->next;
    return a;
}

static inline struct conf_acl_stmt *tree_stmt(struct fake *f, struct conf_acl *a, const char *verb,
                                              int line)
{
    struct conf_acl_stmt *s = arena_zalloc(&f->arena, sizeof *s), **tail = &a->stmts;
    s->verb = verb;
    s->file = "test.conf";
    s->line = line;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    return s;
}

/* name may start with '!' (negation); value NULL = no "=". */
static inline struct conf_item *tree_item(struct fake *f, struct conf_acl_stmt *s, const char *name,
                                          const char *value)
{
    struct conf_item *it = arena_zalloc(&f->arena, sizeof *it), **tail = &s->items;
    it->negated = name[0] == '!';
    it->name = name + (name[0] == '!');
    it->value = value;
    it->file = "test.conf";
    it->line = s->line;
    for (struct conf_item *p = s->items; p; p = p->next)
        it->line = p->line + 1;
    while (*tail)
        tail = &(*tail)->next;
    *tail = it;
    return it;
}

/* "verb name=value name=value ..." helper: pairs of (name, value), NULL-terminated. */
static inline struct conf_acl_stmt *tree_stmtv(struct fake *f, struct conf_acl *a, const char *verb,
                                               int line, ...)
{
    struct conf_acl_stmt *s = tree_stmt(f, a, verb, line);
    va_list ap;
    va_start(ap, line);
    for (const char *name; (name = va_arg(ap, const char *));)
        tree_item(f, s, name, va_arg(ap, const char *));
    va_end(ap);
    return s;
}

#endif
