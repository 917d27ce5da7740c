/*
 * arena.c - bump allocator used for session-, message- and config-lifetime memory.
 *
 * An arena owns a singly linked list of chunks; allocation takes bytes from the newest
 * chunk and starts a new one when it is full (oversized requests get a chunk of their
 * own). Everything is released at once by arena_reset()/arena_delete(). One owner at a
 * time: arenas are never shared between threads without a hand-off.
 *
 * Under AddressSanitizer every byte of a chunk that is not part of a live allocation is
 * poisoned, and each allocation is followed by a poisoned red zone, so a read or write
 * past the end of an arena string (or into space not handed out yet) is reported as it
 * would be for malloc'd memory; without it, an over-read inside a chunk is invisible.
 */
#include "postern/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

#define ARENA_ALIGN 16u

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_REDZONE ARENA_ALIGN /* poisoned bytes after every allocation */
#define arena_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define arena_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_REDZONE 0u
#define arena_poison(p, n) ((void)(p), (void)(n))
#define arena_unpoison(p, n) ((void)(p), (void)(n))
#endif

void arena_init(struct arena *arena, size_t chunk_size)
{
    arena->head = NULL;
    arena->chunk_size = chunk_size ? chunk_size : 4096;
    arena->total = 0;
}

struct arena *arena_new(size_t chunk_size)
{
    struct arena *arena = malloc(sizeof *arena);
    if (!arena)
        die("out of memory allocating arena");
    arena_init(arena, chunk_size);
    return arena;
}

void arena_reset(struct arena *arena)
{
    struct arena_chunk *chunk = arena->head;
    while (chunk) {
        struct arena_chunk *next = chunk->next;
        arena_unpoison(chunk->data, chunk->size);
        free(chunk);
        chunk = next;
    }
    arena->head = NULL;
    arena->total = 0;
}

size_t arena_footprint(const struct arena *arena)
{
    size_t bytes = 0;
    for (const struct arena_chunk *c = arena->head; c; c = c->next)
        bytes += sizeof *c + c->size;
    return bytes;
}

void arena_delete(struct arena *arena)
{
    if (!arena)
        return;
    arena_reset(arena);
    free(arena);
}

static struct arena_chunk *arena_add_chunk(struct arena *arena, size_t min_size)
{
    size_t size = arena->chunk_size > min_size ? arena->chunk_size : min_size;
    struct arena_chunk *chunk = malloc(sizeof *chunk + size);
    if (!chunk)
        die("out of memory allocating %zu-byte arena chunk", size);
    chunk->size = size;
    chunk->used = 0;
    arena_poison(chunk->data, size);
    if (min_size > arena->chunk_size / 2 && arena->head) {
        /* A large block: keep the current chunk as head so its free space is not lost. */
        chunk->next = arena->head->next;
        arena->head->next = chunk;
    } else {
        chunk->next = arena->head;
        arena->head = chunk;
    }
    return chunk;
}

void *arena_alloc(struct arena *arena, size_t size)
{
    size_t rounded = (size + ARENA_REDZONE + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (rounded < size)
        die("arena allocation overflow");
    struct arena_chunk *chunk = arena->head;
    if (!chunk || chunk->size - chunk->used < rounded)
        chunk = arena_add_chunk(arena, rounded);
    void *p = chunk->data + chunk->used;
    arena_unpoison(p, size);
    chunk->used += rounded;
    arena->total += rounded;
    return p;
}

void *arena_zalloc(struct arena *arena, size_t size)
{
    void *p = arena_alloc(arena, size);
    memset(p, 0, size);
    return p;
}

char *arena_strndup(struct arena *arena, const char *s, size_t n)
{
    char *p = arena_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(struct arena *arena, const char *s)
{
    return arena_strndup(arena, s, strlen(s));
}

char *arena_vprintf(struct arena *arena, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        die("arena_vprintf: bad format");
    char *p = arena_alloc(arena, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *arena_printf(struct arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = arena_vprintf(arena, fmt, ap);
    va_end(ap);
    return p;
}
