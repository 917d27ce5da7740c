/*
 * buf.c - growable byte buffer. The embedding struct owns the storage; buf_free()
 * releases it. The contents are always NUL-terminated (when allocated) so text can be
 * handed to string functions, but binary data with NULs is allowed.
 */
#include "postern/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reserve(struct buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        die("out of memory growing buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_append_str(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_append_crlf(struct buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n' && (p == s || p[-1] != '\r'))
            buf_append(b, "\r", 1);
        buf_append(b, p, 1);
    }
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        die("buf_printf: bad format");
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void buf_clear(struct buf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

char *buf_steal(struct buf *b)
{
    if (!b->data)
        buf_reserve(b, 0);
    b->data[b->len] = '\0';
    char *p = b->data;
    buf_init(b);
    return p;
}
