/*
 * lg.h - internal interface of the SMTP load generator (perf/loadgen): the run
 * configuration, the log-linear latency histogram, the PROXY header builder, the
 * per-thread statistics and the worker loop. Not part of postern; nothing under src/
 * includes this.
 *
 * Threads: main() parses options into one struct lg_config (read-only once workers
 * start), starts lg_config.threads workers (lg_worker_run), each owning its own epoll
 * set, connections and struct lg_stats. The only shared mutable state is struct
 * lg_shared (atomics: message tickets, phase flags). main() merges the stats after
 * joining the workers.
 */
#ifndef POSTERN_PERF_LG_H
#define POSTERN_PERF_LG_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- histogram: log-linear buckets over microseconds ---- */

/* Values below 128 us have exact buckets; above, 64 buckets per power of two
 * (relative error under 1.6 %), up to 2^38 us (about 3 days); larger values clamp. */
#define LG_HIST_LINEAR 128
#define LG_HIST_SUB 64
#define LG_HIST_MAX_MSB 38
#define LG_HIST_BUCKETS (LG_HIST_LINEAR + (LG_HIST_MAX_MSB - 6) * LG_HIST_SUB)

struct lg_hist {
    uint64_t counts[LG_HIST_BUCKETS];
    uint64_t total;
    uint64_t min_us;
    uint64_t max_us;
    double sum_us;
};

void lg_hist_init(struct lg_hist *h);
void lg_hist_record(struct lg_hist *h, uint64_t value_us);
void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from);
/* Value at quantile q (0..1): a representative value of the bucket holding the
 * ceil(q*total)-th smallest sample, clamped to [min, max]. 0 when empty. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);
double lg_hist_mean(const struct lg_hist *h);
/* Bucket index of a value and the [low, high] range of a bucket (for tests). */
unsigned lg_hist_index(uint64_t value_us);
void lg_hist_bucket_range(unsigned index, uint64_t *low, uint64_t *high);

/* ---- PROXY protocol header builder (the client side; bytes only) ---- */

enum lg_proxy_version { LG_PROXY_NONE = 0, LG_PROXY_V1 = 1, LG_PROXY_V2 = 2 };

struct lg_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

/* Parse "198.18.0.0/15" or "2001:db8::/32"; false with reason on junk. */
bool lg_cidr_parse(const char *text, struct lg_cidr *out, char *err, size_t errlen);
/* The n-th address of the block (n wraps modulo the block size, skipping nothing). */
void lg_cidr_nth(const struct lg_cidr *cidr, uint64_t n, struct sockaddr_storage *out);
/* Write a PROXY header for a TCP connection from src to dst into out (cap bytes).
 * v1 needs both addresses of one family. Returns the length, 0 if it does not fit or
 * the families differ. */
size_t lg_proxy_build(enum lg_proxy_version version, const struct sockaddr_storage *src,
                      const struct sockaddr_storage *dst, unsigned char *out, size_t cap);

/* ---- configuration ---- */

#define LG_MAX_SIZES 16

struct lg_config {
    struct sockaddr_storage target; /* loopback only (checked by main) */
    socklen_t target_len;
    char target_text[64];

    unsigned connections;   /* concurrent load connections */
    unsigned idle;          /* extra connections held open, no mail */
    uint64_t messages;      /* total messages to try */
    double duration_s;      /* hard bound on the load phase */
    double setup_timeout_s; /* bound on setting up the idle connections */
    bool sync;              /* marks on stderr; wait for stdin before releasing idle */
    double timeout_s;       /* per-reply timeout */
    unsigned rcpts;         /* recipients per message */
    unsigned per_conn;      /* messages per connection */
    unsigned threads;
    unsigned max_connecting; /* idle connections being set up at once, per thread */
    double rate;             /* open loop arrivals per second; 0 = closed loop */
    bool pipelining;         /* use PIPELINING when advertised */
    bool prdr;               /* request PRDR when advertised */
    bool quit_nowait;        /* close right after sending QUIT */
    enum lg_proxy_version proxy;
    struct lg_cidr proxy_src;

    const char *ehlo;
    const char *from;
    const char *to_pattern; /* may contain "{n}" */
    uint64_t to_cycle;      /* {n} runs over 0..to_cycle-1 */

    /* message bodies: one prebuilt body per size, chosen by weight */
    unsigned nsizes;
    size_t sizes[LG_MAX_SIZES];
    unsigned weights[LG_MAX_SIZES];
    unsigned weight_total;
    char *bodies[LG_MAX_SIZES]; /* headers + text + ".\r\n"; owned by main */
    size_t body_lens[LG_MAX_SIZES];
};

/* ---- statistics, one per worker thread, merged at the end ---- */

enum lg_phase {
    LG_PHASE_BANNER,    /* connect() start .. 220 banner received */
    LG_PHASE_EHLO,      /* EHLO sent .. last 250 line */
    LG_PHASE_MAIL_RCPT, /* MAIL sent .. reply to the last RCPT */
    LG_PHASE_DATA,      /* DATA sent .. final reply to the message */
    LG_PHASE_EOD,       /* end of data (".") written .. final reply */
    LG_PHASE_MESSAGE,   /* message start (intended time in open loop) .. final reply */
    LG_PHASE_COUNT
};

enum lg_error {
    LG_ERR_CONNECT,   /* connect() failed (refused, no ports, ...) */
    LG_ERR_CLOSED,    /* server closed the connection unexpectedly */
    LG_ERR_TIMEOUT,   /* no reply within --timeout */
    LG_ERR_PROTOCOL,  /* unparsable or over-long reply line */
    LG_ERR_IO,        /* read/write error other than a close */
    LG_ERR_NOPRDR,    /* --prdr given but PRDR not advertised */
    LG_ERR_IDLE_LOST, /* an idle connection was closed by the server */
    LG_ERR_COUNT
};

struct lg_stats {
    struct lg_hist phase[LG_PHASE_COUNT];
    uint64_t reply_errors[1000]; /* unexpected replies by code */
    uint64_t errors[LG_ERR_COUNT];
    uint64_t msgs_ok;
    uint64_t msgs_failed;
    uint64_t msgs_unfinished; /* claimed but cut off by the deadline */
    uint64_t rcpts_ok;
    uint64_t conns_opened;
    uint64_t conns_completed; /* closed after QUIT */
    uint64_t idle_held;
    uint64_t bytes_sent;
    uint64_t last_done_us; /* completion time of the last message (mono us) */
};

/* ---- state shared by all workers ---- */

struct lg_shared {
    const struct lg_config *cfg;
    int64_t start_us;                  /* start of the load phase (set by main) */
    _Atomic int64_t load_deadline_us;  /* end of the load phase (set by main at its start) */
    _Atomic int64_t final_deadline_us; /* hard end of the run; main extends it per phase */
    _Atomic uint64_t next_ticket;      /* next message number to claim */
    _Atomic unsigned idle_settled;     /* idle connections held or failed */
    _Atomic bool load_go;              /* idle phase over: start load connections */
    _Atomic unsigned load_done;        /* workers whose load connections have all ended */
    _Atomic bool release_idle;         /* main: close the idle connections now */
};

struct lg_worker {
    unsigned index;
    struct lg_shared *shared;
    unsigned first_slot, nslots; /* load slots [first, first+n) */
    unsigned nidle;              /* idle connections owned by this worker */
    struct lg_stats stats;
    char error[256]; /* fatal worker error (epoll failure), empty if none */
};

void *lg_worker_run(void *arg);

int64_t lg_now_us(void);
void lg_stats_init(struct lg_stats *s);
void lg_stats_merge(struct lg_stats *into, const struct lg_stats *from);
const char *lg_error_name(enum lg_error e);
const char *lg_phase_name(enum lg_phase p);

/* Reporting (lg_report.c). elapsed_s: load phase length. */
void lg_report_table(const struct lg_config *cfg, const struct lg_stats *s, double elapsed_s,
                     uint64_t not_started);
void lg_report_json(const struct lg_config *cfg, const struct lg_stats *s, double elapsed_s,
                    uint64_t not_started);

#endif
