/*
 * reader.c - the configuration line reader: turns Exim-syntax configuration text into
 * logical lines for parse.c.
 *
 * Per physical line, in Exim's order: macros are substituted (longest name first, a name
 * must start with an upper-case letter at the start of a word; the replacement is not
 * rescanned); then directives (.include, .include_if_exists, .ifdef, .ifndef, .elifdef,
 * .elifndef, .else, .endif) are obeyed; lines in a skipped conditional branch, comment
 * lines ('#' first non-blank) and blank lines are dropped. A line ending in a backslash
 * continues on the next line with its leading white space removed; comment lines may sit
 * inside a continuation, a blank line ends it. ".ifdef X" is true when macro substitution
 * changed the line, as in Exim (so ".ifdef AB" is true if macro A is defined).
 *
 * Ownership: file names and macros are copied into the caller's arena (conf_item.file
 * points at them); line buffers and the text of included files are heap memory owned by
 * the reader and released by conf_reader_free(). One reader per loading thread.
 */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One open .ifdef/.ifndef in a file. */
struct conf_cond {
    int line;         /* where the .ifdef/.ifndef was, for "missing .endif" */
    bool parent_live; /* lines were being used when the conditional began */
    bool taken;       /* some branch has been (or is being) used */
    bool live;        /* lines of the current branch are used */
    bool seen_else;
};

/* A text being read: the top-level text or an included file. */
struct conf_source {
    struct conf_source *parent;
    const char *name; /* arena copy: conf_item.file points here */
    char *owned;      /* heap text of an included file, or NULL */
    const char *text;
    size_t len;
    size_t pos;
    int line; /* number of the last line read */
    int ncond;
    struct conf_cond conds[CONF_COND_DEPTH_MAX];
};

struct conf_macro_def {
    const char *name;
    size_t name_len;
    const char *value;
    bool from_cmdline; /* -D: file definitions of the same name are ignored */
    struct conf_macro_def *next;
};

enum phys_kind { PHYS_EOF, PHYS_TEXT, PHYS_BLANK, PHYS_ERROR };

bool conf_fail(char *err, size_t errlen, const char *file, int line, const char *near,
               const char *fmt, ...)
{
    if (!err || !errlen)
        return false;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (near)
        snprintf(err, errlen, "%s:%d: %s (near '%.60s')", file, line, reason, near);
    else
        snprintf(err, errlen, "%s:%d: %s", file, line, reason);
    return false;
}

/* Fail at the current line of the current source. */
static bool reader_fail(struct conf_reader *r, const char *near, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool reader_fail(struct conf_reader *r, const char *near, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    r->failed = true;
    const char *file = r->src ? r->src->name : "<config>";
    int line = r->src ? r->src->line : 0;
    return conf_fail(r->err, r->errlen, file, line, near, "%s", reason);
}

static bool is_name_char(int c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

bool conf_read_file(const char *path, char **text, size_t *len, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "%s", strerror(errno));
        return false;
    }
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > CONF_FILE_MAX) {
            snprintf(why, whylen, "file larger than %u bytes", CONF_FILE_MAX);
            fclose(f);
            buf_free(&b);
            return false;
        }
        buf_append(&b, chunk, n);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(why, whylen, "read error");
        buf_free(&b);
        return false;
    }
    *len = b.len;
    *text = buf_steal(&b);
    return true;
}

static void reader_push(struct conf_reader *r, const char *name, char *owned, const char *text,
                        size_t len)
{
    struct conf_source *s = calloc(1, sizeof *s);
    if (!s)
        die("out of memory opening configuration source");
    s->parent = r->src;
    s->name = arena_strdup(r->arena, name);
    s->owned = owned;
    s->text = text;
    s->len = len;
    r->src = s;
    r->depth++;
}

static void reader_pop(struct conf_reader *r)
{
    struct conf_source *s = r->src;
    r->src = s->parent;
    r->depth--;
    free(s->owned);
    free(s);
}

static struct conf_macro_def *macro_find(struct conf_reader *r, const char *name)
{
    for (struct conf_macro_def *m = r->macros; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static void macro_append(struct conf_reader *r, const char *name, const char *value,
                         bool from_cmdline)
{
    struct conf_macro_def *m = arena_zalloc(r->arena, sizeof *m);
    m->name = arena_strdup(r->arena, name);
    m->name_len = strlen(name);
    m->value = arena_strdup(r->arena, value);
    m->from_cmdline = from_cmdline;
    struct conf_macro_def **tail = &r->macros;
    while (*tail)
        tail = &(*tail)->next;
    *tail = m;
}

static bool macro_name_valid(const char *name)
{
    if (!isupper((unsigned char)name[0]))
        return false;
    for (const char *p = name; *p; p++)
        if (!is_name_char(*p))
            return false;
    return true;
}

bool conf_reader_init(struct conf_reader *r, struct arena *arena, const char *text, size_t len,
                      const char *name, const struct conf_macro *cmdline_macros, unsigned flags,
                      char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->arena = arena;
    r->flags = flags;
    r->err = err;
    r->errlen = errlen;
    buf_init(&r->raw);
    buf_init(&r->logical);
    reader_push(r, name, NULL, text, len);
    for (const struct conf_macro *m = cmdline_macros; m; m = m->next) {
        if (!m->name || !macro_name_valid(m->name)) {
            r->failed = true;
            snprintf(err, errlen,
                     "-D: invalid macro name \"%s\" (must start with an upper-case "
                     "letter, then letters, digits, underscores)",
                     m->name ? m->name : "");
            return false;
        }
        struct conf_macro_def *old = macro_find(r, m->name);
        if (old)
            old->value = arena_strdup(arena, m->value ? m->value : "");
        else
            macro_append(r, m->name, m->value ? m->value : "", true);
    }
    return true;
}

void conf_reader_free(struct conf_reader *r)
{
    while (r->src)
        reader_pop(r);
    buf_free(&r->raw);
    buf_free(&r->logical);
}

bool conf_reader_define(struct conf_reader *r, const char *name, const char *value, bool redefine,
                        const char *file, int line)
{
    struct conf_macro_def *m = macro_find(r, name);
    if (m && m->from_cmdline)
        return true; /* -D overrides every definition in the file */
    if (redefine) {
        if (!m) {
            r->failed = true;
            return conf_fail(r->err, r->errlen, file, line, name,
                             "macro \"%s\" is not defined (use \"=\" to define it)", name);
        }
        m->value = arena_strdup(r->arena, value);
        return true;
    }
    if (m) {
        r->failed = true;
        return conf_fail(r->err, r->errlen, file, line, name,
                         "macro \"%s\" is already defined (use \"==\" to redefine it)", name);
    }
    macro_append(r, name, value, false);
    return true;
}

struct conf_macro *conf_reader_macros(struct conf_reader *r)
{
    struct conf_macro *head = NULL, **tail = &head;
    for (struct conf_macro_def *m = r->macros; m; m = m->next) {
        struct conf_macro *c = arena_zalloc(r->arena, sizeof *c);
        c->name = m->name;
        c->value = m->value;
        *tail = c;
        tail = &c->next;
    }
    return head;
}

/* Length of the "NAME" of a macro definition "NAME =" / "NAME ==" at the start of s
 * (after blanks), 0 if s does not start like one. The name is not substituted. */
static size_t macro_head_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i >= n || !isupper((unsigned char)s[i]))
        return 0;
    size_t end = i;
    while (end < n && is_name_char(s[end]))
        end++;
    size_t k = end;
    while (k < n && (s[k] == ' ' || s[k] == '\t'))
        k++;
    return k < n && s[k] == '=' ? end : 0;
}

static const struct conf_macro_def *macro_match(const struct conf_reader *r, const char *s,
                                                size_t n)
{
    const struct conf_macro_def *best = NULL;
    for (const struct conf_macro_def *m = r->macros; m; m = m->next)
        if (m->name_len <= n && (!best || m->name_len > best->name_len) &&
            memcmp(s, m->name, m->name_len) == 0)
            best = m;
    return best;
}

/* Substitute macros in s[0..n) into r->raw. Returns the number of substitutions, -1 when
 * the result is too long. */
static int reader_substitute(struct conf_reader *r, const char *s, size_t n, bool line_start)
{
    buf_clear(&r->raw);
    size_t i = line_start ? macro_head_len(s, n) : 0;
    size_t run = 0; /* start of text not yet copied */
    int count = 0;
    while (i < n) {
        if (r->macros && isupper((unsigned char)s[i]) && (i == 0 || !is_name_char(s[i - 1]))) {
            const struct conf_macro_def *m = macro_match(r, s + i, n - i);
            if (m) {
                buf_append(&r->raw, s + run, i - run);
                buf_append_str(&r->raw, m->value);
                i += m->name_len;
                run = i;
                count++;
                if (r->raw.len > CONF_LINE_MAX)
                    return -1;
                continue;
            }
        }
        i++;
    }
    buf_append(&r->raw, s + run, n - run);
    return r->raw.len > CONF_LINE_MAX ? -1 : count;
}

static bool source_live(const struct conf_source *s)
{
    return s->ncond == 0 || s->conds[s->ncond - 1].live;
}

/* Next raw line of s (without its newline and a trailing CR); false at the end. */
static bool source_next_raw(struct conf_source *s, const char **line, size_t *n)
{
    if (s->pos >= s->len)
        return false;
    const char *start = s->text + s->pos;
    const char *nl = memchr(start, '\n', s->len - s->pos);
    size_t len = nl ? (size_t)(nl - start) : s->len - s->pos;
    s->pos += len + (nl ? 1 : 0);
    if (len && start[len - 1] == '\r')
        len--;
    s->line++;
    *line = start;
    *n = len;
    return true;
}

/* .include / .include_if_exists with argument arg (after macro substitution). */
static bool reader_include(struct conf_reader *r, const char *arg, bool if_exists)
{
    const char *directive = if_exists ? ".include_if_exists" : ".include";
    if (r->flags & CONF_PARSE_NO_INCLUDE)
        return reader_fail(r, directive, "%s is not allowed here", directive);
    size_t n = strlen(arg);
    while (n && isspace((unsigned char)arg[n - 1]))
        n--;
    if (n >= 2 && arg[0] == '"' && arg[n - 1] == '"') {
        arg++;
        n -= 2;
    }
    if (n == 0)
        return reader_fail(r, directive, "%s needs a file name", directive);
    if (r->depth >= CONF_INCLUDE_DEPTH_MAX)
        return reader_fail(r, directive, "%s nested more than %d deep (a loop?)", directive,
                           CONF_INCLUDE_DEPTH_MAX);
    const char *name = r->src->name;
    const char *slash = strrchr(name, '/');
    char *path;
    if (arg[0] == '/' || !slash)
        path = arena_strndup(r->arena, arg, n);
    else
        path = arena_printf(r->arena, "%.*s/%.*s", (int)(slash - name), name, (int)n, arg);
    if (if_exists && access(path, F_OK) != 0 && errno == ENOENT)
        return true;
    char *text;
    size_t len;
    char why[256];
    if (!conf_read_file(path, &text, &len, why, sizeof why)) {
        return reader_fail(r, path, "%s: cannot read %s: %s", directive, path, why);
    }
    reader_push(r, path, text, text, len);
    return true;
}

static bool word_is(const char *w, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(w, s, n) == 0;
}

/* Conditional directives. kind: 'i' ifdef, 'n' ifndef, 'e' elifdef, 'f' elifndef, 'l' else,
 * 'x' endif. */
static bool reader_conditional(struct conf_reader *r, char kind, const char *word, const char *arg,
                               bool substituted)
{
    struct conf_source *s = r->src;
    bool defined = substituted;
    if ((kind == 'i' || kind == 'n' || kind == 'e' || kind == 'f') && !*arg)
        return reader_fail(r, word, "%s needs a macro name", word);
    if (kind == 'i' || kind == 'n') {
        if (s->ncond >= CONF_COND_DEPTH_MAX)
            return reader_fail(r, word, "conditionals nested more than %d deep",
                               CONF_COND_DEPTH_MAX);
        struct conf_cond *c = &s->conds[s->ncond];
        c->line = s->line;
        c->parent_live = source_live(s);
        c->seen_else = false;
        c->live = c->parent_live && (kind == 'i' ? defined : !defined);
        c->taken = c->live;
        s->ncond++;
        return true;
    }
    if (s->ncond == 0)
        return reader_fail(r, word, "%s without a matching .ifdef or .ifndef", word);
    struct conf_cond *c = &s->conds[s->ncond - 1];
    if (kind == 'x') {
        s->ncond--;
        return true;
    }
    if (c->seen_else)
        return reader_fail(r, word, "%s after .else", word);
    bool cond = kind == 'l' || (kind == 'e' ? defined : !defined);
    c->live = c->parent_live && !c->taken && cond;
    if (c->live)
        c->taken = true;
    if (kind == 'l')
        c->seen_else = true;
    return true;
}

/* A line starting with '.' (p points at it). Returns 1 when it was a directive (obeyed),
 * 0 when it is ordinary text, -1 on error. */
static int reader_directive(struct conf_reader *r, const char *p, bool substituted,
                            bool in_continuation)
{
    size_t n = 1;
    while (islower((unsigned char)p[n]) || p[n] == '_')
        n++;
    const char *arg = skip_blanks(p + n);
    bool plain = p[n] == '\0' || p[n] == ' ' || p[n] == '\t';
    static const struct {
        const char *word;
        char kind;
    } conds[] = {{".ifdef", 'i'},    {".ifndef", 'n'}, {".elifdef", 'e'},
                 {".elifndef", 'f'}, {".else", 'l'},   {".endif", 'x'}};
    for (size_t i = 0; plain && i < sizeof conds / sizeof conds[0]; i++)
        if (word_is(p, n, conds[i].word))
            return reader_conditional(r, conds[i].kind, conds[i].word, arg, substituted) ? 1 : -1;
    bool inc = word_is(p, n, ".include"), inc_if = word_is(p, n, ".include_if_exists");
    if (plain && (inc || inc_if)) {
        if (!source_live(r->src))
            return 1;
        return reader_include(r, arg, inc_if) ? 1 : -1;
    }
    if (in_continuation || !source_live(r->src))
        return 0;
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)(n < 60 ? n : 60), p);
    reader_fail(r, word, "unknown directive");
    return -1;
}

static bool text_is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

/* Next physical line that matters, substituted, into r->raw. */
static enum phys_kind reader_physical(struct conf_reader *r, bool in_continuation)
{
    for (;;) {
        struct conf_source *s = r->src;
        if (!s)
            return PHYS_EOF;
        const char *line;
        size_t n;
        if (!source_next_raw(s, &line, &n)) {
            if (s->ncond) {
                s->line = s->conds[s->ncond - 1].line;
                reader_fail(r, NULL, "missing .endif for this conditional");
                return PHYS_ERROR;
            }
            reader_pop(r); /* file names stay valid: they live in the arena */
            continue;
        }
        if (memchr(line, '\0', n)) {
            reader_fail(r, NULL, "NUL byte in configuration text");
            return PHYS_ERROR;
        }
        int subs = reader_substitute(r, line, n, !in_continuation);
        if (subs < 0) {
            reader_fail(r, NULL, "line longer than %u bytes (after macro substitution)",
                        CONF_LINE_MAX);
            return PHYS_ERROR;
        }
        const char *p = skip_blanks(r->raw.data);
        if (*p == '.') {
            int d = reader_directive(r, p, subs > 0, in_continuation);
            if (d < 0)
                return PHYS_ERROR;
            if (d > 0)
                continue;
        }
        if (!source_live(s) || *p == '#')
            continue;
        if (text_is_blank(p, strlen(p))) {
            if (!text_is_blank(line, n))
                continue; /* a macro that expanded to nothing: the line is ignored */
            return PHYS_BLANK;
        }
        return PHYS_TEXT;
    }
}

/* Append the current physical line (trimmed) to the logical line. Returns true when the
 * line ends in a backslash, i.e. continues. */
static bool reader_join(struct conf_reader *r)
{
    char *t = (char *)skip_blanks(r->raw.data);
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1]))
        n--;
    bool more = n && t[n - 1] == '\\';
    if (more)
        n--;
    buf_append(&r->logical, t, n);
    return more;
}

bool conf_reader_next(struct conf_reader *r, struct conf_line *out)
{
    while (!r->failed) {
        buf_clear(&r->logical);
        bool cont = false;
        enum phys_kind k;
        while ((k = reader_physical(r, cont)) != PHYS_EOF) {
            if (k == PHYS_ERROR)
                return false;
            if (k == PHYS_BLANK) {
                if (cont)
                    break;
                continue;
            }
            if (!cont) {
                out->file = r->src->name;
                out->line = r->src->line;
            }
            cont = reader_join(r);
            if (r->logical.len > CONF_LINE_MAX) {
                reader_fail(r, NULL, "continued line longer than %u bytes", CONF_LINE_MAX);
                return false;
            }
            if (!cont)
                break;
        }
        size_t n = r->logical.len;
        while (n && isspace((unsigned char)r->logical.data[n - 1]))
            n--;
        if (n) {
            r->logical.data[n] = '\0';
            r->logical.len = n;
            out->text = r->logical.data;
            return true;
        }
        if (k == PHYS_EOF)
            return false;
    }
    return false;
}
