/*
 * daemon.h - the pieces of the running server (src/daemon/): listeners, the acceptor
 * thread with its PROXY-header stage, the worker pool on a shared epoll, the connection
 * registry used for limits, timeouts and draining, and the stdio transport for -bs/-bh.
 * Private to src/daemon.
 */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H

#include "postern/config.h"

#include <stdbool.h>
#include <stdint.h>

struct server_options {
    const char *port_override; /* -oX: replaces daemon_smtp_ports (may be "ip.port" list) */
    int64_t queue_interval;    /* -q30m with -bd: seconds between queue runs (0 = none) */
    bool foreground;           /* -bdf */
    const char *pid_file;      /* -oP */
    const char *config_path;   /* for SIGHUP reloads (NULL = embedded) */
    const struct conf_macro *macros;
};

/* Run the daemon until SIGTERM/SIGINT; returns the process exit code. The initial config
 * must already be published with snapshot_publish(). */
int server_run(const struct server_options *opts);

/* -bs (test_mode false) and -bh IP[.port] (test_mode true): one session on stdin/stdout. */
int stdio_session_run(const struct config *cfg, const char *host, bool test_mode);

#endif
