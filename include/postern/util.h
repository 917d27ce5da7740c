/*
 * util.h - small helpers every module uses: a session-lifetime arena, a growable byte
 * buffer, string helpers and Exim value parsers, file helpers (mkdir -p, write-all,
 * directory fsync, path checks), the RFC 2822 date, FNV-1a hashes and Exim's
 * "address.port" notation. Address syntax is in postern/address.h.
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
#include <sys/types.h>
#include <time.h>

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
char *arena_printf(struct arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *arena, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

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
/* Append s with every bare LF (one not after a CR) written as CRLF: text from the
 * configuration or an expansion on its way into a message header. */
void buf_append_crlf(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_clear(struct buf *b);
char *buf_steal(struct buf *b); /* returns malloc'd NUL-terminated data; b becomes empty */

/* ---- strings ---- */
bool str_ieq(const char *a, const char *b);            /* ASCII case-insensitive equality */
bool str_nieq(const char *a, const char *b, size_t n); /* first n bytes, case-insensitive */
bool str_istarts(const char *s, const char *prefix);   /* case-insensitive prefix test */
char *str_trim(char *s);                               /* trims ASCII space in place */
void str_lower(char *s);
void str_upper(char *s);
size_t strlcpy_p(char *dst, const char *src, size_t size); /* BSD strlcpy semantics */

/* Parse "10", "10K", "5M" (1024-based) into bytes; false on junk. */
bool parse_size(const char *s, int64_t *out);
/* Parse Exim time values: "30s", "5m", "1h", "2d", "1w", "1h30m", or bare seconds. */
bool parse_time_interval(const char *s, int64_t *seconds);
/* Parse Exim booleans: true/false/yes/no (case-insensitive). */
bool parse_bool(const char *s, bool *out);

/* Exim integers: optional sign, digits in `base` (0: C rules, so 0x.. hex and 0.. octal, as
 * the configuration file; 10 in expansions), optional K/M/G (1024-based); blanks around
 * are allowed, nothing else. */
bool parse_exim_integer(const char *s, int base, int64_t *out);

/* ---- files (fs.c); on failure errno says why ---- */
bool fs_mkdir_p(const char *path, mode_t mode);          /* each missing component with `mode` */
bool fs_write_all(int fd, const void *data, size_t len); /* retries EINTR and short writes */
bool fs_sync_directory(const char *path);                /* open + fsync + close */
/* A path built from configuration and message data must be absolute with no ".", ".." or
 * empty components (one trailing '/' is allowed). False with *reason when not. */
bool fs_path_check(const char *path, const char **reason);

/* ---- misc.c ---- */
/* "Mon, 07 Dec 2026 03:20:33 +0000" in local time (Date:, Received:, Delivery-date:). */
void time_rfc2822(char *out, size_t size, time_t when);
uint32_t hash_fnv1a32(const char *s);
uint64_t hash_fnv1a64(const char *s);
/* Exim's interface notation: "1.2.3.4.25" / "::1.25" carry a port after the last dot.
 * Cuts the port off `address` in place and returns it; 0 (address untouched) if none. */
int ip_split_port(char *address);

/* Monotonic and wall clocks in milliseconds. */
int64_t time_mono_ms(void);
int64_t time_wall_ms(void);

/* Abort with a message (out-of-memory and broken invariants only). */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
