/*
 * util.h - small helpers every module uses: a session-lifetime arena, a growable byte
 * buffer, and a few string helpers.
 *
 * Ownership: memory from an arena belongs to the arena and is released only by
 * arena_destroy() (or arena_reset()); never free() it. A struct buf owns its storage
 * and is released with buf_free(). Nothing here is shared between threads: each arena
 * and buffer has exactly one owner at a time.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena: bump allocator in chunks, freed all at once ---- */
struct arena_chunk;
struct arena {
    struct arena_chunk *head; /* newest chunk first */
    size_t chunk_size;        /* size of ordinary chunks */
    size_t total;             /* bytes handed out, for statistics */
};

void arena_init(struct arena *arena, size_t chunk_size);
struct arena *arena_new(size_t chunk_size); /* heap-allocated; free with arena_delete */
void arena_delete(struct arena *arena);
void arena_reset(struct arena *arena); /* frees all chunks, arena stays usable */
size_t arena_footprint(const struct arena *arena); /* heap bytes held (chunks and headers) */
void *arena_alloc(struct arena *arena, size_t size);  /* aborts on OOM; 16-byte aligned */
void *arena_zalloc(struct arena *arena, size_t size);
char *arena_strdup(struct arena *arena, const char *s);
char *arena_strndup(struct arena *arena, const char *s, size_t n);
char *arena_printf(struct arena *arena, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *arena, const char *fmt, va_list ap);

/* ---- buf: growable byte buffer (heap, owned by whoever embeds it) ---- */
struct buf {
    char *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated; data[len] is always a NUL when cap > 0 */
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reserve(struct buf *b, size_t extra); /* aborts on OOM */
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_clear(struct buf *b);
char *buf_steal(struct buf *b); /* returns malloc'd NUL-terminated data; b becomes empty */

/* ---- strings ---- */
bool str_ieq(const char *a, const char *b);                /* ASCII case-insensitive equality */
bool str_nieq(const char *a, const char *b, size_t n);     /* first n bytes, case-insensitive */
bool str_istarts(const char *s, const char *prefix);       /* case-insensitive prefix test */
char *str_trim(char *s);                                   /* trims ASCII space in place */
void str_lower(char *s);
void str_upper(char *s);
size_t strlcpy_p(char *dst, const char *src, size_t size); /* BSD strlcpy semantics */

/* Parse "10", "10K", "5M" (1024-based) into bytes; false on junk. */
bool parse_size(const char *s, int64_t *out);
/* Parse Exim time values: "30s", "5m", "1h", "2d", "1w", "1h30m", or bare seconds. */
bool parse_time_interval(const char *s, int64_t *seconds);
/* Parse Exim booleans: true/false/yes/no (case-insensitive). */
bool parse_bool(const char *s, bool *out);

/* Monotonic and wall clocks in milliseconds. */
int64_t time_mono_ms(void);
int64_t time_wall_ms(void);

/* Abort with a message (out-of-memory and broken invariants only). */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
