/*
 * redirect.c - interprets redirection data the way Exim's redirect router does for a
 * non-filter list: items separated by commas or newlines, '#' comments, whole-item double
 * quotes removed, ":blackhole:" (discard), ":fail: text" and ":defer: text" (apply to the
 * whole list; the text runs to the end of the line), "\local" qualified with the incoming
 * domain, other unqualified local parts qualified with qualify_domain. Pipes, files and
 * :include: are refused with a reason (the caller defers and logs to the paniclog).
 *
 * Pure functions over strings, results in the caller's arena; any thread.
 */
#include "deliver_internal.h"

#include "postern/address.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REDIRECT_FILE_MAX (1024 * 1024)

/* Skip separators, blank space and comments; returns the start of the next item. */
static const char *skip_separators(const char *p)
{
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p != '#')
            return p;
        while (*p && *p != '\n')
            p++;
    }
}

/* The end of an unquoted item: a comma or newline outside double quotes. */
static const char *item_end(const char *p)
{
    bool quoted = false;
    for (; *p; p++) {
        if (*p == '\\' && quoted && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && (*p == ',' || *p == '\n'))
            break;
    }
    return p;
}

/* Read one item at *pp into an arena string (quotes around the whole item removed). */
static char *item_next(struct arena *arena, const char **pp)
{
    const char *p = *pp;
    const char *end = item_end(p);
    char *item = str_trim(arena_strndup(arena, p, (size_t)(end - p)));
    size_t n = strlen(item);
    if (n >= 2 && item[0] == '"' && item[n - 1] == '"' && !memchr(item + 1, '"', n - 2)) {
        item[n - 1] = 0;
        item++;
    }
    *pp = end;
    return item;
}

/* ":fail: text" / ":defer: text": the text is the rest of the line. */
static bool special_text(struct arena *arena, const char *p, const char *keyword, const char **text)
{
    size_t n = strlen(keyword);
    if (strncmp(p, keyword, n) != 0)
        return false;
    p += n;
    const char *nl = strchr(p, '\n');
    char *t = arena_strndup(arena, p, nl ? (size_t)(nl - p) : strlen(p));
    *text = str_trim(t);
    return true;
}

/* Strip an RFC 2822 display name: "Name <a@b>" => "a@b". */
static char *strip_display(char *item)
{
    size_t n = strlen(item);
    char *lt = strrchr(item, '<');
    if (n && item[n - 1] == '>' && lt) {
        item[n - 1] = 0;
        return str_trim(lt + 1);
    }
    return item;
}

static const char *qualify(struct arena *arena, char *item, const char *qualify_domain,
                           const char *incoming_domain, const char **err)
{
    bool backslash = item[0] == '\\';
    if (backslash)
        item++;
    if (!*item) {
        *err = "empty address in redirection list";
        return NULL;
    }
    if (strchr(item, '@'))
        return item;
    const char *domain = backslash && incoming_domain ? incoming_domain : qualify_domain;
    return arena_printf(arena, "%s@%s", item, domain ? domain : "localhost");
}

/* Turn one plain item into a qualified, validated address. */
static const char *item_address(struct arena *arena, char *item, const char *qualify_domain,
                                const char *incoming_domain, const char **err)
{
    if (strncmp(item, ":include:", 9) == 0) {
        *err = arena_printf(arena, ":include: is not supported in redirection lists (%s)", item);
        return NULL;
    }
    if ((item[0] == '|' || item[0] == '/') && !strchr(item, '@')) {
        *err = arena_printf(arena, "%s delivery is not supported in redirection lists (%s)",
                            item[0] == '|' ? "pipe" : "file", item);
        return NULL;
    }
    item = strip_display(item);
    const char *address = qualify(arena, item, qualify_domain, incoming_domain, err);
    if (!address)
        return NULL;
    const char *local_part, *domain, *reason = NULL;
    if (!address_split(arena, address, &local_part, &domain, &reason) || !*domain) {
        *err = arena_printf(arena, "malformed address in redirection list: %s%s%s", address,
                            reason ? ": " : "", reason ? reason : "");
        return NULL;
    }
    return address;
}

static void result_add(struct arena *arena, struct redirect_result *out, int *cap,
                       const char *address)
{
    if (out->count == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        const char **n = arena_alloc(arena, sizeof *n * (size_t)ncap);
        if (out->count)
            memcpy(n, out->addresses, sizeof *n * (size_t)out->count);
        out->addresses = n;
        *cap = ncap;
    }
    out->addresses[out->count++] = address;
}

bool redirect_parse(struct arena *arena, const char *data, const char *qualify_domain,
                    const char *incoming_domain, struct redirect_result *out, const char **err)
{
    int cap = 0;
    bool blackhole = false;
    memset(out, 0, sizeof *out);
    for (const char *p = skip_separators(data); *p; p = skip_separators(p)) {
        if (special_text(arena, p, ":fail:", &out->text)) {
            out->kind = REDIRECT_FAIL;
            return true;
        }
        if (special_text(arena, p, ":defer:", &out->text)) {
            out->kind = REDIRECT_DEFER;
            return true;
        }
        char *item = item_next(arena, &p);
        if (!*item)
            continue;
        if (strcmp(item, ":blackhole:") == 0) {
            blackhole = true;
            continue;
        }
        const char *address = item_address(arena, item, qualify_domain, incoming_domain, err);
        if (!address)
            return false;
        result_add(arena, out, &cap, address);
    }
    if (blackhole)
        out->kind = REDIRECT_BLACKHOLE;
    else
        out->kind = out->count ? REDIRECT_ADDRESSES : REDIRECT_EMPTY;
    return true;
}

bool redirect_read_file(struct arena *arena, const char *path, const char **text, const char **err)
{
    *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return true; /* a missing file makes the router decline, as in Exim */
        *err = arena_printf(arena, "failed to open %s: %s", path, strerror(errno));
        return false;
    }
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0 && b.len <= REDIRECT_FILE_MAX)
        buf_append(&b, chunk, (size_t)n);
    int saved = errno;
    close(fd);
    if (n < 0 || b.len > REDIRECT_FILE_MAX) {
        *err = n < 0 ? arena_printf(arena, "failed to read %s: %s", path, strerror(saved))
                     : arena_printf(arena, "%s is larger than %d bytes", path, REDIRECT_FILE_MAX);
        buf_free(&b);
        return false;
    }
    *text = arena_strndup(arena, b.data ? b.data : "", b.len);
    buf_free(&b);
    return true;
}
