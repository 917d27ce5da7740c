/*
 * queue_only.c - Exim's queue_only family: whether an accepted message waits in the
 * spool for the next queue run (-q, -q<time>) instead of being handed to the delivery
 * threads at once.
 *
 *   queue_only            always wait (also -odq on the command line)
 *   queue_only_file       a list of absolute paths: wait while any of them exists
 *                         (stat() per message, so an admin can touch a file to hold mail)
 *   queue_only_load       wait while the 1-minute load average is above this value
 *   queue_only_load_latch once a connection's message waited for the load, the rest of
 *                         that connection's messages wait too (default true)
 *   queue_only_override   -odb/-odi/-odf override queue_only and queue_only_file
 *                         (default true); -odq applies whatever it says
 *
 * Owns: the command line's delivery mode (a process global written once by main()
 * before the first load, read by the loading thread). Bound values live in cfg->arena.
 * config_queue_only_now() is called by any session thread; it reads only the immutable
 * snapshot and the caller's latch.
 */
#include "config_internal.h"
#include "postern/expand.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static enum config_delivery_mode delivery_mode; /* main thread, before any load */

void config_set_delivery_mode(enum config_delivery_mode mode)
{
    delivery_mode = mode;
}

bool config_queue_only_file_check(struct config *cfg, const char *value, char *why, size_t whylen)
{
    const char **items;
    int n = list_split(cfg->arena, value, &items);
    for (int i = 0; i < n; i++) {
        if (strncmp(items[i], "smtp", 4) == 0) {
            snprintf(why, whylen,
                     "\"smtp%s\" (queue remote SMTP deliveries) is not supported yet: postern "
                     "has no SMTP transport",
                     items[i] + 4);
            return false;
        }
        if (items[i][0] != '/') {
            snprintf(why, whylen, "\"%s\" is not an absolute path", items[i]);
            return false;
        }
    }
    return true;
}

void config_bind_queue_only(struct config *cfg)
{
    const char **items = NULL;
    int n = cfg->queue_only_file ? list_split(cfg->arena, cfg->queue_only_file, &items) : 0;
    cfg->queue_only_paths = items;
    cfg->queue_only_path_count = n;
    if (delivery_mode == CONFIG_DELIVERY_QUEUE) {
        cfg->queue_only = true;
    } else if (delivery_mode == CONFIG_DELIVERY_NOW && cfg->queue_only_override) {
        cfg->queue_only = false;
        cfg->queue_only_path_count = 0;
    }
}

static bool queue_only_file_exists(const struct config *cfg)
{
    struct stat st;
    for (int i = 0; i < cfg->queue_only_path_count; i++)
        if (stat(cfg->queue_only_paths[i], &st) == 0)
            return true;
    return false;
}

static bool queue_only_load_exceeded(const struct config *cfg)
{
    double load;
    if (cfg->queue_only_load < 0 || getloadavg(&load, 1) != 1)
        return false;
    return (int64_t)(load * 1000.0) > cfg->queue_only_load;
}

bool config_queue_only_now(const struct config *cfg, bool *session_latch)
{
    if (*session_latch || cfg->queue_only || queue_only_file_exists(cfg))
        return true;
    if (!queue_only_load_exceeded(cfg))
        return false;
    if (cfg->queue_only_load_latch)
        *session_latch = true;
    return true;
}
