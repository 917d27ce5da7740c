/*
 * server.c - the running daemon: listening sockets, the acceptor thread (connection
 * limits, the PROXY header for proxy_required_hosts), a fixed pool of worker threads on
 * one shared epoll with EPOLLONESHOT, the delay thread (ACL "delay ="), and the main
 * thread's signal loop (SIGHUP reload, SIGTERM drain, the once-a-second timeout sweep).
 *
 * Who owns a connection (struct conn): the acceptor from accept() until the hand-off;
 * then whichever worker took its epoll event, until that worker re-arms it; while a
 * message commit is in flight, the spool committer, which re-arms it when done; while an
 * ACL delay runs, the delay thread (delay.c), which re-arms it likewise. Only the
 * owner reads or writes the session. The main thread never touches a session: to time
 * one out or drain it, it sets conn->kick and shuts down the socket's read side under
 * the registry lock, which makes the owner (or the next worker) see EOF and act.
 */
#include "daemon.h"

#include "server_internal.h"

#include "postern/deliver.h"
#include "postern/log.h"
#include "postern/snapshot.h"
#include "postern/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

struct server_state srv = {.registry_lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------------ */
/* main thread: start, signals, reload, drain                          */
/* ------------------------------------------------------------------ */

static const struct config *deliver_get(void)
{
    return snapshot_get();
}

static const struct deliver_config_source deliver_source = {.get = deliver_get,
                                                            .put = snapshot_put};

static void reload(void)
{
    char err[1024];
    struct config *cfg = config_load(srv.opts->config_path, srv.opts->macros, err, sizeof err);
    if (!cfg) {
        log_write(LOG_MAIN | LOG_PANIC, NULL,
                  "SIGHUP: new configuration refused, keeping the old one: %s", err);
        return;
    }
    char lerr[512];
    if (!log_configure(cfg->log_file_path, lerr, sizeof lerr))
        log_write(LOG_MAIN | LOG_PANIC, NULL, "SIGHUP: log files: %s", lerr);
    snapshot_publish(cfg);
    log_write(LOG_MAIN, NULL, "SIGHUP received: configuration reloaded from %s",
              srv.opts->config_path ? srv.opts->config_path : "<embedded>");
}

static int worker_count(const struct config *cfg)
{
    if (cfg->smtp_worker_threads > 0)
        return cfg->smtp_worker_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return (int)(cpus > 0 ? cpus : 1) * 4;
}

static bool start_threads(const struct config *cfg, char *err, size_t errlen)
{
    srv.acceptor_epoll = epoll_create1(EPOLL_CLOEXEC);
    srv.worker_epoll = epoll_create1(EPOLL_CLOEXEC);
    srv.acceptor_wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    srv.worker_wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv.acceptor_epoll < 0 || srv.worker_epoll < 0 || srv.acceptor_wakeup_fd < 0 ||
        srv.worker_wakeup_fd < 0) {
        snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
        return false;
    }
    srv.wakeup_endpoint.kind = KIND_WAKEUP;
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &srv.wakeup_endpoint};
    epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_ADD, srv.acceptor_wakeup_fd, &wev);
    epoll_ctl(srv.worker_epoll, EPOLL_CTL_ADD, srv.worker_wakeup_fd, &wev); /* level: wakes all */
    for (int i = 0; i < srv.listener_count; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv.listeners[i]};
        epoll_ctl(srv.acceptor_epoll, EPOLL_CTL_ADD, srv.listeners[i].fd, &ev);
    }
    srv.worker_count = worker_count(cfg);
    srv.workers = calloc((size_t)srv.worker_count, sizeof *srv.workers);
    if (!srv.workers)
        die("out of memory");
    for (int i = 0; i < srv.worker_count; i++)
        if (pthread_create(&srv.workers[i], NULL, worker_main, NULL) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            return false;
        }
    if (!delay_thread_start(err, errlen))
        return false;
    if (pthread_create(&srv.acceptor, NULL, acceptor_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the acceptor thread");
        return false;
    }
    return true;
}

static void write_pid_file(const char *path)
{
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
}

/* Stop accepting, tell idle sessions, give busy ones time to finish, then stop. */
static void drain_and_stop(void)
{
    uint64_t one = 1;
    atomic_store(&srv.stopping, true);
    /* stop the acceptor first: no new connections */
    if (write(srv.acceptor_wakeup_fd, &one, sizeof one) < 0)
        log_write(LOG_PANIC, NULL, "wakeup: %s", strerror(errno));
    pthread_join(srv.acceptor, NULL);
    int64_t start = time_mono_ms();
    while (atomic_load(&srv.live) > 0) {
        int64_t elapsed = time_mono_ms() - start;
        registry_sweep(time_mono_ms(), true, elapsed > 5000);
        if (elapsed > 8000)
            break;
        usleep(20000);
    }
    /* sessions still in a delay go back to the workers, which are still running */
    delay_thread_stop();
    /* the wakeup eventfd is level-triggered and stays readable: every worker exits */
    if (write(srv.worker_wakeup_fd, &one, sizeof one) < 0)
        log_write(LOG_PANIC, NULL, "wakeup: %s", strerror(errno));
    for (int i = 0; i < srv.worker_count; i++)
        pthread_join(srv.workers[i], NULL);
    free(srv.workers);
}

/* Connections are cheap here (no thread each), so the open-file limit is what bounds
 * them: raise the soft limit to the hard one, and say so when smtp_accept_max cannot be
 * reached (the acceptor then meets EMFILE and pauses instead of refusing with 421). */
static void raise_file_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* each connection is one descriptor, two more while it writes a message to the spool */
    rlim_t wanted = (rlim_t)cfg->smtp_accept_max + 256;
    if (cfg->smtp_accept_max > 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < wanted)
        log_write(LOG_MAIN, NULL,
                  "open-file limit %llu is below smtp_accept_max (%d) + 256: connections beyond "
                  "it wait in the listen queue",
                  (unsigned long long)rl.rlim_cur, cfg->smtp_accept_max);
}

int server_run(const struct server_options *opts)
{
    char err[1024];
    srv.opts = opts;
    const struct config *cfg = snapshot_get();
    if (!listeners_open_all(cfg, err, sizeof err)) {
        fprintf(stderr, "postern: %s\n", err);
        log_write(LOG_MAIN | LOG_PANIC, NULL, "%s", err);
        snapshot_put(cfg);
        return 1;
    }
    if (!opts->foreground) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid > 0)
            _exit(0);
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            close(devnull);
        }
    }
    write_pid_file(opts->pid_file);
    raise_file_limit(cfg);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);

    if (!spool_init(cfg->spool_directory, cfg->spool_commit_max_batch, err, sizeof err)) {
        fprintf(stderr, "postern: spool: %s\n", err);
        log_write(LOG_MAIN | LOG_PANIC, NULL, "spool: %s", err);
        snapshot_put(cfg);
        return 1;
    }
    if (!deliver_start(&deliver_source, cfg->queue_run_max > 0 ? cfg->queue_run_max : 1,
                       opts->queue_interval, err, sizeof err) ||
        !start_threads(cfg, err, sizeof err)) {
        fprintf(stderr, "postern: %s\n", err);
        log_write(LOG_MAIN | LOG_PANIC, NULL, "%s", err);
        snapshot_put(cfg);
        return 1;
    }
    /* Message ids are issued only for seconds after the generator first ran (so that a
     * restart reusing the pid cannot repeat one): start it now, not on the first DATA. */
    char warm_id[SPOOL_ID_LEN + 1];
    spool_new_id(warm_id);
    /* Whatever is already spooled (from before a restart) is delivered now, unless
     * queue_only says messages wait for a queue run (-q, -q<time>). */
    if (opts->queue_interval <= 0 && !cfg->queue_only) {
        struct arena arena;
        arena_init(&arena, 4096);
        const char **ids;
        int n = spool_list_ids(&arena, &ids);
        for (int i = 0; i < n; i++)
            deliver_enqueue(ids[i]);
        arena_reset(&arena);
    }
    struct buf ports;
    buf_init(&ports);
    for (int i = 0; i < srv.listener_count; i++)
        buf_printf(&ports, "%s[%s]:%d", i ? " " : "", srv.listeners[i].addr, srv.listeners[i].port);
    log_write(LOG_MAIN, NULL,
              "postern %s daemon started: pid=%d, %d worker threads, listening for SMTP on %s",
              POSTERN_VERSION, (int)getpid(), srv.worker_count, ports.data);
    buf_free(&ports);
    snapshot_put(cfg);

    for (;;) {
        struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGHUP) {
            reload();
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_write(LOG_MAIN, NULL, "pid %d: SIG%s received: daemon terminating", (int)getpid(),
                      sig == SIGTERM ? "TERM" : "INT");
            break;
        }
        registry_sweep(time_mono_ms(), false, false);
    }
    drain_and_stop();
    deliver_stop();
    spool_shutdown();
    if (opts->pid_file)
        unlink(opts->pid_file);
    return 0;
}
