/*
 * spool_queue.c - the queue listing in Exim's -bp format, so admins' scripts (exiqgrep,
 * exiqsumm, eyes) keep working:
 *
 *     25m  2.9K 0t5C6f-0000c8-00 <alice@wonderland.fict.example>
 *               red.king@looking-glass.fict.example
 *             D white.king@looking-glass.fict.example
 *
 * Age: minutes as "%2dm", above 90 minutes rounded hours "%2dh", above 72 hours rounded
 * days "%2dd". Size: Exim's 5-column form ("  433", " 2.9K", "  12K", " 1.2M", "  15M");
 * ours is the size of the -D file. Then the id and <sender> ("<>" for bounces), then
 * each recipient on its own line after 8 spaces and "D " (finished) or "  " (pending),
 * then an empty line (-bpu: finished recipients left out). An unreadable envelope is
 * listed with its reason, as Exim does.
 *
 * Owns nothing: output goes to the caller's buf. Threads: any.
 */
#include "spool_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Exim's queue age column, including its trailing space. */
static void spool_format_age(struct buf *out, int64_t seconds)
{
    int64_t minutes = seconds > 0 ? seconds / 60 : 0;
    if (minutes <= 90) {
        buf_printf(out, "%2lldm ", (long long)minutes);
        return;
    }
    int64_t hours = (minutes + 30) / 60;
    if (hours > 72)
        buf_printf(out, "%2lldd ", (long long)((hours + 12) / 24));
    else
        buf_printf(out, "%2lldh ", (long long)hours);
}

/* Exim's 5-character size column. */
static void spool_format_size(struct buf *out, int64_t size)
{
    const double kib = 1024.0, mib = 1024.0 * 1024.0;
    if (size <= 0)
        buf_append_str(out, "     ");
    else if (size < 1024)
        buf_printf(out, "%5lld", (long long)size);
    else if (size < 10 * 1024)
        buf_printf(out, "%4.1fK", (double)size / kib);
    else if (size < 1024 * 1024)
        buf_printf(out, "%4lldK", (long long)((size + 512) / 1024));
    else if (size < 10 * 1024 * 1024)
        buf_printf(out, "%4.1fM", (double)size / mib);
    else
        buf_printf(out, "%4lldM", (long long)((size + 512 * 1024) / (1024 * 1024)));
}

static void spool_format_message(struct buf *out, const struct spool_envelope *env, int64_t now,
                                 bool undelivered_only)
{
    spool_format_age(out, now - env->received_time);
    spool_format_size(out, env->size);
    buf_printf(out, " %s <%s>\n", env->id, env->sender);
    for (int i = 0; i < env->recipient_count; i++)
        if (!undelivered_only || !env->recipients[i].done)
            buf_printf(out, "        %s %s\n", env->recipients[i].done ? "D" : " ",
                       env->recipients[i].address);
    buf_append_str(out, "\n");
}

void spool_format_queue(struct buf *out, bool undelivered_only)
{
    struct arena list_arena, message_arena;
    arena_init(&list_arena, 4096);
    arena_init(&message_arena, 16384);
    const char **ids;
    int count = spool_list_ids(&list_arena, &ids);
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < count; i++) {
        struct spool_envelope env;
        char err[256];
        arena_reset(&message_arena);
        if (spool_read_envelope(&message_arena, ids[i], &env, err, sizeof err)) {
            spool_format_message(out, &env, now, undelivered_only);
            continue;
        }
        char path[PATH_MAX];
        struct stat st;
        if (spool_path(path, sizeof path, ids[i], "-H") && stat(path, &st) != 0 && errno == ENOENT)
            continue; /* delivered and removed while we were listing */
        buf_printf(out, "      %s\n    *** spool read error: %s ***\n\n", ids[i], err);
    }
    arena_reset(&message_arena);
    arena_reset(&list_arena);
}
