/*
 * loadgen.c - an SMTP load generator for measuring postern against other MTAs on one
 * machine: many concurrent connections over epoll in a few threads, closed loop (as
 * fast as the server answers) or open loop (--rate, latency measured from each
 * message's intended start so a stalled server cannot hide its latency), optional
 * PIPELINING, PRDR and PROXY v1/v2 headers, idle connections held open beside the
 * load. Bounded in messages and time, and it talks to loopback addresses only.
 *
 * This file: option parsing, the prebuilt message bodies, starting and joining the
 * workers (lg_conn.c) and the run's phases (idle set-up, load, release). Main thread
 * only; owns the struct lg_config and the bodies for the whole run.
 */
#include "lg.h"

#include "postern/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fputs("usage: loadgen [options]\n"
          "  --host ADDR          server address, loopback only (127.0.0.0/8, ::1) [127.0.0.1]\n"
          "  --port N             server port [25]\n"
          "  -c, --connections N  concurrent load connections [10]\n"
          "  -m, --messages N     messages to send in total [1000]\n"
          "  -d, --duration S     hard time bound for the load phase, seconds [60]\n"
          "  --size BYTES         message size (K/M suffixes) [1024]\n"
          "  --size-dist S:W,...  sizes with weights, e.g. 512:50,4096:40,65536:10\n"
          "  -r, --rcpts N        recipients per message [1]\n"
          "  -k, --per-conn N     messages per connection [1]\n"
          "  --rate R             open loop: R message arrivals per second [closed loop]\n"
          "  --pipelining         MAIL+RCPTs+DATA in one write when PIPELINING is offered\n"
          "  --prdr               MAIL FROM:<..> PRDR when PRDR is offered\n"
          "  --proxy v1|v2        send a PROXY header first on every connection\n"
          "  --proxy-src CIDR     made-up client addresses for the header [198.18.0.0/15]\n"
          "  --idle N             also hold N idle connections open (after EHLO) meanwhile\n"
          "  --max-connecting N   idle connections set up at once per thread [64]\n"
          "  --setup-timeout S    time bound for setting up the idle connections [120]\n"
          "  --sync               print \"loadgen: load-start\" and \"loadgen: load-end\" on\n"
          "                       stderr; after load-end wait for a line on stdin (at most\n"
          "                       10 minutes) before closing the idle connections\n"
          "  -t, --threads N      worker threads [1]\n"
          "  --timeout S          per-reply timeout, seconds [60]\n"
          "  --ehlo NAME          [loadgen.bench.example]\n"
          "  --from ADDR          [loadgen@bench.example]\n"
          "  --to PATTERN         recipient; {n} is replaced by a counter [user{n}@bench.example]\n"
          "  --to-count N         {n} runs over 0..N-1 [rcpts x connections]\n"
          "  --quit-nowait        close right after sending QUIT, without waiting for 221\n"
          "  --json               print one JSON object instead of the table\n",
          out);
}

/* Only loopback targets: this tool must never load a machine other than this one. */
static bool target_parse(const char *host, unsigned port, struct lg_config *cfg, char *err,
                         size_t errlen)
{
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    memset(&cfg->target, 0, sizeof cfg->target);
    struct sockaddr_in *sin = (struct sockaddr_in *)&cfg->target;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&cfg->target;
    if (port == 0 || port > 65535) {
        snprintf(err, errlen, "bad port %u", port);
        return false;
    }
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
            snprintf(err, errlen, "refusing %s: only loopback (127.0.0.0/8, ::1) targets", host);
            return false;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        cfg->target_len = sizeof *sin;
        snprintf(cfg->target_text, sizeof cfg->target_text, "%s:%u", host, port);
        return true;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
            snprintf(err, errlen, "refusing %s: only loopback (127.0.0.0/8, ::1) targets", host);
            return false;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        cfg->target_len = sizeof *sin6;
        snprintf(cfg->target_text, sizeof cfg->target_text, "[%s]:%u", host, port);
        return true;
    }
    snprintf(err, errlen, "\"%s\" is not a numeric loopback address", host);
    return false;
}

static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double min, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= min) || v > 1e9)
        return false;
    *out = v;
    return true;
}

/* "512:50,4096:40,65536:10" -> sizes and weights */
static bool size_dist_parse(const char *text, struct lg_config *cfg, char *err, size_t errlen)
{
    char copy[512];
    if (strlcpy_p(copy, text, sizeof copy) >= sizeof copy) {
        snprintf(err, errlen, "--size-dist too long");
        return false;
    }
    cfg->nsizes = 0;
    cfg->weight_total = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        int64_t size;
        uint64_t weight = 1;
        if (colon)
            *colon = '\0';
        if (cfg->nsizes == LG_MAX_SIZES || !parse_size(str_trim(item), &size) || size < 1 ||
            size > 64 * 1024 * 1024 || (colon && !parse_uint(colon + 1, 1, 1000000, &weight))) {
            snprintf(err, errlen, "bad --size-dist \"%s\" (want SIZE:WEIGHT,..., at most %d)", text,
                     LG_MAX_SIZES);
            return false;
        }
        cfg->sizes[cfg->nsizes] = (size_t)size;
        cfg->weights[cfg->nsizes] = (unsigned)weight;
        cfg->weight_total += (unsigned)weight;
        cfg->nsizes++;
    }
    if (cfg->nsizes == 0) {
        snprintf(err, errlen, "empty --size-dist");
        return false;
    }
    return true;
}

/* A message of about `size` bytes (headers included, the per-message Message-ID
 * header too), ending with the terminating ".\r\n". No line starts with a dot. */
static char *body_build(const struct lg_config *cfg, size_t size, size_t *len_out)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b,
               "From: <%s>\r\nTo: undisclosed-recipients:;\r\nSubject: loadgen %zu bytes\r\n"
               "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
               cfg->from, size);
    /* "Message-ID: <ticket.pid@ehlo>\r\n" is added per message */
    size_t msgid_len = 20 + 12 + strlen(cfg->ehlo);
    size_t target = size > msgid_len ? size - msgid_len : 0;
    static const char text[] = "The quick brown fox jumps over the lazy dog while postern "
                               "counts the messages. 0123456789 ";
    unsigned line = 0;
    do {
        size_t left = target > b.len ? target - b.len : 0; /* including the CRLF */
        size_t width = left > 78 ? 76 : left >= 8 ? left - 2 : 6;
        buf_printf(&b, "%05u ", line % 100000);
        for (size_t i = 6; i < width; i++)
            buf_append(&b, &text[(line * 7 + i) % (sizeof text - 1)], 1);
        buf_append_str(&b, "\r\n");
        line++;
    } while (b.len < target);
    buf_append_str(&b, ".\r\n");
    *len_out = b.len;
    return buf_steal(&b);
}

static bool option_apply(int opt, const char *arg, struct lg_config *cfg, char *err, size_t n);

/* Long options: the value field is the short code the switch in option_apply uses. */
static const struct option long_options[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"connections", required_argument, NULL, 'c'},
    {"messages", required_argument, NULL, 'm'},
    {"duration", required_argument, NULL, 'd'},
    {"size", required_argument, NULL, 's'},
    {"size-dist", required_argument, NULL, 'S'},
    {"rcpts", required_argument, NULL, 'r'},
    {"per-conn", required_argument, NULL, 'k'},
    {"rate", required_argument, NULL, 'R'},
    {"pipelining", no_argument, NULL, 'P'},
    {"prdr", no_argument, NULL, 'D'},
    {"proxy", required_argument, NULL, 'x'},
    {"proxy-src", required_argument, NULL, 'X'},
    {"idle", required_argument, NULL, 'i'},
    {"max-connecting", required_argument, NULL, 'M'},
    {"threads", required_argument, NULL, 't'},
    {"timeout", required_argument, NULL, 'T'},
    {"ehlo", required_argument, NULL, 'e'},
    {"from", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 'o'},
    {"to-count", required_argument, NULL, 'C'},
    {"quit-nowait", no_argument, NULL, 'Q'},
    {"json", no_argument, NULL, 'j'},
    {"setup-timeout", required_argument, NULL, 'U'},
    {"sync", no_argument, NULL, 'Y'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct cli {
    struct lg_config cfg;
    const char *host;
    uint64_t port;
    bool json;
};

static bool option_apply(int opt, const char *arg, struct lg_config *cfg, char *err, size_t n)
{
    uint64_t v = 0;
    int64_t size;
    bool ok = true;
    switch (opt) {
    case 'c':
        ok = parse_uint(arg, 1, 100000, &v);
        cfg->connections = (unsigned)v;
        break;
    case 'm':
        ok = parse_uint(arg, 0, UINT64_C(1) << 40, &v);
        cfg->messages = v;
        break;
    case 'd':
        ok = parse_double(arg, 0.001, &cfg->duration_s);
        break;
    case 'T':
        ok = parse_double(arg, 0.001, &cfg->timeout_s);
        break;
    case 'U':
        ok = parse_double(arg, 0.001, &cfg->setup_timeout_s);
        break;
    case 'Y':
        cfg->sync = true;
        break;
    case 'R':
        ok = parse_double(arg, 0.0, &cfg->rate);
        break;
    case 'r':
        ok = parse_uint(arg, 1, 1000, &v);
        cfg->rcpts = (unsigned)v;
        break;
    case 'k':
        ok = parse_uint(arg, 1, 1000000, &v);
        cfg->per_conn = (unsigned)v;
        break;
    case 'i':
        ok = parse_uint(arg, 0, 100000, &v);
        cfg->idle = (unsigned)v;
        break;
    case 'M':
        ok = parse_uint(arg, 1, 100000, &v);
        cfg->max_connecting = (unsigned)v;
        break;
    case 't':
        ok = parse_uint(arg, 1, 64, &v);
        cfg->threads = (unsigned)v;
        break;
    case 'C':
        ok = parse_uint(arg, 1, UINT64_C(1) << 40, &v);
        cfg->to_cycle = v;
        break;
    case 'P':
        cfg->pipelining = true;
        break;
    case 'D':
        cfg->prdr = true;
        break;
    case 'Q':
        cfg->quit_nowait = true;
        break;
    case 'e':
        cfg->ehlo = arg;
        break;
    case 'f':
        cfg->from = arg;
        break;
    case 'o':
        cfg->to_pattern = arg;
        break;
    case 's':
        ok = parse_size(arg, &size) && size >= 1 && size <= 64 * 1024 * 1024;
        cfg->nsizes = 1;
        cfg->sizes[0] = ok ? (size_t)size : 0;
        cfg->weights[0] = 1;
        cfg->weight_total = 1;
        break;
    case 'S':
        return size_dist_parse(arg, cfg, err, n);
    case 'X':
        return lg_cidr_parse(arg, &cfg->proxy_src, err, n);
    case 'x':
        ok = strcmp(arg, "v1") == 0 || strcmp(arg, "v2") == 0;
        cfg->proxy = arg[1] == '1' ? LG_PROXY_V1 : LG_PROXY_V2;
        break;
    default:
        ok = false;
    }
    if (!ok)
        snprintf(err, n, "bad value \"%s\" for an option (see --help)", arg ? arg : "");
    return ok;
}

static int cli_parse(int argc, char **argv, struct cli *cli)
{
    struct lg_config *cfg = &cli->cfg;
    char err[256] = "";
    cli->host = "127.0.0.1";
    cli->port = 25;
    cfg->connections = 10;
    cfg->messages = 1000;
    cfg->duration_s = 60;
    cfg->timeout_s = 60;
    cfg->setup_timeout_s = 120;
    cfg->rcpts = 1;
    cfg->per_conn = 1;
    cfg->threads = 1;
    cfg->max_connecting = 64;
    cfg->nsizes = 1;
    cfg->sizes[0] = 1024;
    cfg->weights[0] = 1;
    cfg->weight_total = 1;
    cfg->ehlo = "loadgen.bench.example";
    cfg->from = "loadgen@bench.example";
    cfg->to_pattern = "user{n}@bench.example";
    lg_cidr_parse("198.18.0.0/15", &cfg->proxy_src, err, sizeof err);
    int opt;
    while ((opt = getopt_long(argc, argv, "c:m:d:r:k:t:h", long_options, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            exit(0);
        } else if (opt == 'H') {
            cli->host = optarg;
        } else if (opt == 'p') {
            if (!parse_uint(optarg, 1, 65535, &cli->port))
                snprintf(err, sizeof err, "bad --port \"%s\"", optarg);
        } else if (opt == 'j') {
            cli->json = true;
        } else if (opt == '?') {
            usage(stderr);
            return 2;
        } else {
            option_apply(opt, optarg, cfg, err, sizeof err);
        }
        if (err[0])
            break;
    }
    if (!err[0] && optind < argc)
        snprintf(err, sizeof err, "unexpected argument \"%s\"", argv[optind]);
    if (!err[0])
        target_parse(cli->host, (unsigned)cli->port, cfg, err, sizeof err);
    if (err[0]) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    if (cfg->to_cycle == 0)
        cfg->to_cycle = (uint64_t)cfg->rcpts * cfg->connections;
    return 0;
}

/* Enough descriptors for every connection plus slack. */
static void raise_fd_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        fprintf(stderr, "loadgen: warning: only %llu file descriptors for %u connections\n",
                (unsigned long long)rl.rlim_cur, want);
}

/* Wait until cond(sh) holds or `until` (monotonic us) passes; polls every few ms. */
static void wait_until(struct lg_shared *sh, bool (*cond)(struct lg_shared *), int64_t until)
{
    while (!cond(sh) && lg_now_us() < until)
        usleep(2000);
}

/* --sync: the caller writes a line (or closes stdin) when it has taken its samples. */
#define SYNC_WAIT_S 600
static void sync_wait_stdin(void)
{
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    if (poll(&pfd, 1, SYNC_WAIT_S * 1000) > 0) {
        char line[64];
        if (read(0, line, sizeof line) < 0)
            fprintf(stderr, "loadgen: reading stdin: %s\n", strerror(errno));
    }
}

static bool idle_all_settled(struct lg_shared *sh)
{
    return atomic_load(&sh->idle_settled) >= sh->cfg->idle;
}

static bool load_all_done(struct lg_shared *sh)
{
    return atomic_load(&sh->load_done) >= sh->cfg->threads;
}

/* Split load slots and idle connections over the workers and run them. */
static int run_workers(struct lg_config *cfg, struct lg_shared *sh, struct lg_stats *total,
                       double *elapsed_s)
{
    struct lg_worker *workers = calloc(cfg->threads, sizeof *workers);
    pthread_t *tids = calloc(cfg->threads, sizeof *tids);
    if (!workers || !tids)
        die("loadgen: out of memory");
    unsigned slot = 0;
    for (unsigned i = 0; i < cfg->threads; i++) {
        struct lg_worker *w = &workers[i];
        w->index = i;
        w->shared = sh;
        w->first_slot = slot;
        w->nslots = cfg->connections / cfg->threads + (i < cfg->connections % cfg->threads);
        w->nidle = cfg->idle / cfg->threads + (i < cfg->idle % cfg->threads);
        slot += w->nslots;
        int rc = pthread_create(&tids[i], NULL, lg_worker_run, w);
        if (rc != 0)
            die("loadgen: pthread_create: %s", strerror(rc));
    }
    wait_until(sh, idle_all_settled, lg_now_us() + (int64_t)(cfg->setup_timeout_s * 1e6));
    sh->start_us = lg_now_us();
    int64_t load_end = sh->start_us + (int64_t)(cfg->duration_s * 1e6);
    atomic_store(&sh->final_deadline_us, load_end + (int64_t)(SYNC_WAIT_S + 60) * 1000000);
    atomic_store(&sh->load_deadline_us, load_end);
    atomic_store(&sh->load_go, true);
    if (cfg->sync)
        fprintf(stderr, "loadgen: load-start\n");
    /* workers give up their load connections themselves at load_end */
    wait_until(sh, load_all_done, load_end + 5000000);
    int64_t end_us = lg_now_us();
    if (cfg->sync) {
        fprintf(stderr, "loadgen: load-end\n");
        sync_wait_stdin();
    }
    /* the idle connections get 30 s to say QUIT and close */
    atomic_store(&sh->final_deadline_us, lg_now_us() + (int64_t)30 * 1000000);
    atomic_store(&sh->release_idle, true);
    int status = 0;
    lg_stats_init(total);
    for (unsigned i = 0; i < cfg->threads; i++) {
        pthread_join(tids[i], NULL);
        if (workers[i].error[0]) {
            fprintf(stderr, "loadgen: worker %u: %s\n", i, workers[i].error);
            status = 1;
        }
        lg_stats_merge(total, &workers[i].stats);
    }
    /* the load phase ends with the last message when there was one */
    if (total->last_done_us > (uint64_t)sh->start_us)
        end_us = (int64_t)total->last_done_us;
    *elapsed_s = (double)(end_us - sh->start_us) / 1e6;
    free(workers);
    free(tids);
    return status;
}

int main(int argc, char **argv)
{
    struct cli cli;
    memset(&cli, 0, sizeof cli);
    int rc = cli_parse(argc, argv, &cli);
    if (rc != 0)
        return rc;
    struct lg_config *cfg = &cli.cfg;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg->connections + cfg->idle + 64);
    for (unsigned i = 0; i < cfg->nsizes; i++)
        cfg->bodies[i] = body_build(cfg, cfg->sizes[i], &cfg->body_lens[i]);

    static struct lg_shared shared; /* zeroed; the workers' only shared state */
    shared.cfg = cfg;
    /* until the load phase starts: the idle set-up's bound plus the load's */
    double first_s = (cfg->idle ? cfg->setup_timeout_s : 0) + cfg->duration_s + 60;
    shared.final_deadline_us = lg_now_us() + (int64_t)(first_s * 1e6);
    shared.load_deadline_us = INT64_MAX;
    struct lg_stats *total = malloc(sizeof *total);
    if (!total)
        die("loadgen: out of memory");
    double elapsed_s = 0;
    int status = run_workers(cfg, &shared, total, &elapsed_s);

    uint64_t claimed = atomic_load(&shared.next_ticket);
    uint64_t not_started = claimed < cfg->messages ? cfg->messages - claimed : 0;
    if (cli.json)
        lg_report_json(cfg, total, elapsed_s, not_started);
    else
        lg_report_table(cfg, total, elapsed_s, not_started);
    bool clean = total->msgs_ok == cfg->messages && total->idle_held == cfg->idle;
    for (unsigned e = 0; e < LG_ERR_COUNT; e++)
        clean = clean && total->errors[e] == 0;
    for (unsigned c = 0; c < 1000; c++)
        clean = clean && total->reply_errors[c] == 0;
    for (unsigned i = 0; i < cfg->nsizes; i++)
        free(cfg->bodies[i]);
    free(total);
    return status ? status : clean ? 0 : 1;
}
