/*
 * main.c - the postern command line, with Exim's flags where Exim has one:
 *   -bd / -bdf      daemon (detached / in the foreground)      -q / -q30m  queue runs
 *   -bs             SMTP on stdin/stdout                       -bh IP[.port]  test session
 *   -bp / -bpu      list the queue (-bpu: undelivered only)    -bV  version, check config
 *   -bP [option]    print configuration options                -C file  -D NAME=value  -oX ports
 *   -oP pidfile     -odq (queue only) / -odb -odi -odf (deliver at once; see queue_only_override)
 * Loads and publishes the configuration, then hands over to the daemon, the stdio session or
 * a one-off command. Main thread only.
 */
#include "daemon.h"

#include "postern/config.h"
#include "postern/deliver.h"
#include "postern/log.h"
#include "postern/snapshot.h"
#include "postern/spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef POSTERN_WITH_JEMALLOC
/* Return dirty pages in the background; see docs/architecture.md. */
const char *malloc_conf = "background_thread:true";
#endif

enum mode {
    MODE_NONE,
    MODE_DAEMON,
    MODE_STDIO,
    MODE_TEST_HOST,
    MODE_LIST_QUEUE,
    MODE_VERSION,
    MODE_PRINT,
    MODE_QUEUE_RUN
};

static void usage(void)
{
    fprintf(stderr,
            "usage: postern [-C file] [-D NAME=value]... [-oX ports] [-oP pidfile]\n"
            "               [-odq | -odb | -odi | -odf]\n"
            "               -bd | -bdf [-q<interval>] | -bs | -bh IP[.port] | -bp | -bpu |\n"
            "               -bV | -bP [option...] | -q\n");
}

static struct conf_macro *add_macro(struct conf_macro *list, const char *def)
{
    struct conf_macro *m = calloc(1, sizeof *m);
    if (!m)
        die("out of memory");
    const char *eq = strchr(def, '=');
    m->name = eq ? strndup(def, (size_t)(eq - def)) : strdup(def);
    m->value = eq ? strdup(eq + 1) : strdup("");
    m->next = list;
    return m;
}

static void free_macros(struct conf_macro *m)
{
    while (m) {
        struct conf_macro *next = m->next;
        free((char *)m->name);
        free((char *)m->value);
        free(m);
        m = next;
    }
}

static void print_version(void)
{
    printf("postern version %s\n", POSTERN_VERSION);
    printf("Support for: PROXY(v1,v2) PRDR pipelining 8BITMIME ENHANCEDSTATUSCODES"
#ifdef POSTERN_WITH_JEMALLOC
           " jemalloc"
#endif
           "\n");
    printf("Lookups: lsearch wildlsearch nwildlsearch iplsearch\n");
    printf("Routers: accept redirect\nTransports: appendfile/maildir\n");
}

int main(int argc, char **argv)
{
    enum mode mode = MODE_NONE;
    struct server_options opts = {0};
    struct conf_macro *macros = NULL;
    const char *test_host = NULL;
    int first_print_arg = argc;
    bool list_undelivered_only = false;
    char err[2048];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-bd") == 0) {
            mode = MODE_DAEMON;
        } else if (strcmp(a, "-bdf") == 0) {
            mode = MODE_DAEMON;
            opts.foreground = true;
        } else if (strcmp(a, "-bs") == 0) {
            mode = MODE_STDIO;
        } else if (strcmp(a, "-bh") == 0 && i + 1 < argc) {
            mode = MODE_TEST_HOST;
            test_host = argv[++i];
        } else if (strcmp(a, "-bp") == 0 || strcmp(a, "-bpu") == 0) {
            mode = MODE_LIST_QUEUE;
            list_undelivered_only = a[3] == 'u';
        } else if (strcmp(a, "-odq") == 0) {
            config_set_delivery_mode(CONFIG_DELIVERY_QUEUE);
        } else if (strcmp(a, "-odb") == 0 || strcmp(a, "-odi") == 0 || strcmp(a, "-odf") == 0) {
            config_set_delivery_mode(CONFIG_DELIVERY_NOW);
        } else if (strcmp(a, "-bV") == 0) {
            mode = MODE_VERSION;
        } else if (strcmp(a, "-bP") == 0) {
            mode = MODE_PRINT;
            first_print_arg = i + 1;
            break;
        } else if (strcmp(a, "-C") == 0 && i + 1 < argc) {
            opts.config_path = argv[++i];
        } else if (strncmp(a, "-D", 2) == 0) {
            macros = add_macro(macros, a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : ""));
        } else if (strcmp(a, "-oX") == 0 && i + 1 < argc) {
            opts.port_override = argv[++i];
        } else if (strcmp(a, "-oP") == 0 && i + 1 < argc) {
            opts.pid_file = argv[++i];
        } else if (strncmp(a, "-q", 2) == 0) {
            if (a[2]) {
                int64_t interval;
                if (!parse_time_interval(a + 2, &interval) || interval <= 0) {
                    fprintf(stderr, "postern: bad queue interval \"%s\"\n", a + 2);
                    return 2;
                }
                opts.queue_interval = interval;
            }
            if (mode == MODE_NONE)
                mode = MODE_QUEUE_RUN;
        } else {
            usage();
            return 2;
        }
    }
    if (mode == MODE_NONE) {
        usage();
        return 2;
    }
    opts.macros = macros;
    if (mode == MODE_VERSION)
        print_version();

    /* Every mode reads and checks the whole configuration first; -bV exists for that
     * (update-exim4.conf and admins run it before a reload). */
    struct config *cfg = config_load(opts.config_path, macros, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "postern: configuration error: %s\n", err);
        free_macros(macros);
        return 1;
    }
    if (mode == MODE_VERSION) {
        printf("Configuration file is %s\n", cfg->source);
        config_free(cfg);
        free_macros(macros);
        return 0;
    }
    if (mode == MODE_PRINT) {
        struct buf out;
        buf_init(&out);
        int rc = 0;
        if (first_print_arg >= argc)
            config_print_option(cfg, NULL, &out);
        for (int i = first_print_arg; i < argc; i++)
            if (!config_print_option(cfg, argv[i], &out)) {
                fprintf(stderr, "postern: unknown option \"%s\"\n", argv[i]);
                rc = 1;
            }
        fputs(out.data ? out.data : "", stdout);
        buf_free(&out);
        config_free(cfg);
        free_macros(macros);
        return rc;
    }
    if (mode != MODE_TEST_HOST && !log_configure(cfg->log_file_path, err, sizeof err)) {
        fprintf(stderr, "postern: log files: %s\n", err);
        config_free(cfg);
        free_macros(macros);
        return 1;
    }
    if (mode == MODE_TEST_HOST)
        log_set_stderr(true);
    snapshot_publish(cfg);

    int rc = 0;
    if (mode == MODE_DAEMON) {
        rc = server_run(&opts);
    } else {
        if (!spool_init(cfg->spool_directory, cfg->spool_commit_max_batch, err, sizeof err)) {
            fprintf(stderr, "postern: spool: %s\n", err);
            snapshot_shutdown();
            free_macros(macros);
            return 1;
        }
        const struct config *ref = snapshot_get();
        switch (mode) {
        case MODE_STDIO:
            rc = stdio_session_run(ref, NULL, false);
            ref = NULL;
            break;
        case MODE_TEST_HOST:
            rc = stdio_session_run(ref, test_host, true);
            ref = NULL;
            break;
        case MODE_LIST_QUEUE: {
            struct buf out;
            buf_init(&out);
            spool_format_queue(&out, list_undelivered_only);
            fputs(out.data ? out.data : "", stdout);
            buf_free(&out);
            break;
        }
        case MODE_QUEUE_RUN:
            deliver_queue_run(ref);
            break;
        default:
            break;
        }
        snapshot_put(ref);
        spool_shutdown();
    }
    snapshot_shutdown();
    snapshot_thread_done();
    log_close();
    free_macros(macros);
    return rc;
}
