/*
 * config_internal.h - declarations shared by the files of src/config only.
 *
 * reader.c turns configuration text into logical lines (macros substituted, .include and
 * .ifdef processed, comments dropped, continuations joined); parse.c turns logical lines
 * into a struct conf_tree; options.c binds the main section to struct config; load.c ties
 * them together and runs the compilers listed in compilers.c. Nothing here is thread-shared: a
 * reader belongs to the one thread that is loading a configuration.
 */
#ifndef POSTERN_CONFIG_INTERNAL_H
#define POSTERN_CONFIG_INTERNAL_H

#include "postern/config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest physical or logical line, and longest macro value, after macro substitution. */
#define CONF_LINE_MAX (1024u * 1024u)
/* Deepest .include nesting and .ifdef nesting per file. */
#define CONF_INCLUDE_DEPTH_MAX 32
#define CONF_COND_DEPTH_MAX 64
/* Largest configuration file read from disk. */
#define CONF_FILE_MAX (16u * 1024u * 1024u)

/* ---- reader.c: logical lines ---- */

struct conf_source;
struct conf_macro_def;

struct conf_reader {
    struct arena *arena;           /* output arena: file names, macros */
    unsigned flags;                /* CONF_PARSE_* */
    struct conf_source *src;       /* innermost file being read (heap) */
    int depth;                     /* number of open sources */
    struct conf_macro_def *macros; /* in definition order */
    struct buf raw;                /* current physical line after substitution */
    struct buf logical;            /* current logical line */
    char *err;
    size_t errlen;
    bool failed;
};

/* One logical line: text is valid until the next conf_reader_next(). */
struct conf_line {
    char *text; /* trimmed, continuation lines joined, never empty */
    const char *file;
    int line; /* line number of the first physical line */
};

/* Open `text` as the top-level source. False (err filled) for an invalid -D macro name. */
bool conf_reader_init(struct conf_reader *r, struct arena *arena, const char *text, size_t len,
                      const char *name, const struct conf_macro *cmdline_macros, unsigned flags,
                      char *err, size_t errlen);
/* Next logical line; false at the end of input or on error (then r->failed is set). */
bool conf_reader_next(struct conf_reader *r, struct conf_line *out);
/* Define (redefine when `redefine`) a macro from a "NAME = value" line. False + error when
 * "=" is used for an existing macro or "==" for an unknown one. -D macros win silently. */
bool conf_reader_define(struct conf_reader *r, const char *name, const char *value, bool redefine,
                        const char *file, int line);
/* The final macro set, in definition order, copied into the arena. */
struct conf_macro *conf_reader_macros(struct conf_reader *r);
void conf_reader_free(struct conf_reader *r);

/* Read a whole file (at most CONF_FILE_MAX bytes) into a malloc'd, NUL-terminated buffer
 * the caller frees. False with a reason in why. */
bool conf_read_file(const char *path, char **text, size_t *len, char *why, size_t whylen);

/* Fill err with "file:line: reason (near 'word')"; near may be NULL. Always returns false. */
bool conf_fail(char *err, size_t errlen, const char *file, int line, const char *near,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- parse.c ---- */

/* Copy a value into the arena: a value wholly in double quotes has Exim's string escapes
 * decoded and the quotes removed; anything else is copied unchanged. False if the decoded value
 * would contain a NUL byte. */
bool conf_value_dequote(struct arena *arena, const char *raw, const char **out);

/* ---- load.c ---- */

/* config_load_text() for text of a given length (not NUL-terminated) with parse flags
 * (CONF_PARSE_NO_INCLUDE): the whole load, compilers included. For the fuzz target. */
struct config *config_load_text_flags(const char *text, size_t len, const char *name,
                                      const struct conf_macro *cmdline_macros, unsigned flags,
                                      char *err, size_t errlen);

/* ---- compilers.c: the modules that build the rest of a snapshot ---- */

/* One module's builder: reads cfg->tree (and the bound main options), stores its result
 * in cfg (allocated in cfg->arena; other resources through config_add_cleanup()). False
 * with err "file:line: reason (near 'word')". */
struct config_compiler {
    const char *name; /* the module, for error messages and tests */
    bool (*compile)(struct config *cfg, char *err, size_t errlen);
};
extern const struct config_compiler config_compilers[];
extern const size_t config_compilers_count;

/* ---- options.c: the main-option binder ---- */

/* Apply defaults, then every cfg->tree.main_items entry (unknown option or bad value =>
 * false with "file:line: ..."), then the computed defaults (primary_hostname from uname,
 * qualify_domain from primary_hostname). */
bool config_bind_main(struct config *cfg, char *err, size_t errlen);
/* Decode a log_selector string ("+proxy -smtp_connection") into LOG_SEL_* bits, starting
 * from `flags`. False with a reason naming the bad word. */
bool config_parse_log_selector(const char *text, unsigned *flags, char *err, size_t errlen);
/* ---- queue_only.c ---- */

/* queue_only_file's value: every item an absolute path, no "smtp" prefix (no SMTP
 * transport yet). False with a reason naming the item. */
bool config_queue_only_file_check(struct config *cfg, const char *value, char *why, size_t whylen);
/* After binding: split queue_only_file, apply the command line's -od option. */
void config_bind_queue_only(struct config *cfg);

/* Self-check of the option table (types match field sizes, defaults parse). For tests. */
bool config_options_selfcheck(char *err, size_t errlen);

#endif
