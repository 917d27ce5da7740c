/*
 * lg_stats.c - the load generator's measurements: a log-linear latency histogram (in
 * the spirit of HdrHistogram: exact below 128 us, then 64 linear buckets per power of
 * two) and the per-thread counters that are merged at the end of a run.
 *
 * Owns nothing beyond the structs the caller passes in. Each histogram and stats block
 * belongs to one worker thread during the run; main() merges them after joining.
 */
#include "lg.h"

#include <string.h>
#include <time.h>

void lg_hist_init(struct lg_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_us = UINT64_MAX;
}

unsigned lg_hist_index(uint64_t value_us)
{
    if (value_us < LG_HIST_LINEAR)
        return (unsigned)value_us;
    unsigned msb = 63u - (unsigned)__builtin_clzll(value_us);
    if (msb > LG_HIST_MAX_MSB)
        return LG_HIST_BUCKETS - 1;
    unsigned shift = msb - 6u;
    unsigned sub = (unsigned)(value_us >> shift) - LG_HIST_SUB;
    return LG_HIST_LINEAR + (msb - 7u) * LG_HIST_SUB + sub;
}

void lg_hist_bucket_range(unsigned index, uint64_t *low, uint64_t *high)
{
    if (index < LG_HIST_LINEAR) {
        *low = *high = index;
        return;
    }
    unsigned k = index - LG_HIST_LINEAR;
    unsigned msb = 7u + k / LG_HIST_SUB;
    unsigned shift = msb - 6u;
    *low = (uint64_t)(LG_HIST_SUB + k % LG_HIST_SUB) << shift;
    *high = *low + ((uint64_t)1 << shift) - 1;
}

void lg_hist_record(struct lg_hist *h, uint64_t value_us)
{
    h->counts[lg_hist_index(value_us)]++;
    h->total++;
    h->sum_us += (double)value_us;
    if (value_us < h->min_us)
        h->min_us = value_us;
    if (value_us > h->max_us)
        h->max_us = value_us;
}

void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from)
{
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum_us += from->sum_us;
    if (from->total) {
        if (from->min_us < into->min_us)
            into->min_us = from->min_us;
        if (from->max_us > into->max_us)
            into->max_us = from->max_us;
    }
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
    if (h->total == 0)
        return 0;
    if (q <= 0)
        return h->min_us;
    if (q >= 1)
        return h->max_us;
    /* rank of the sample we want, 1-based: ceil(q * total) */
    double exact = q * (double)h->total;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t low, high;
            lg_hist_bucket_range(i, &low, &high);
            uint64_t value = low + (high - low) / 2;
            if (value < h->min_us)
                value = h->min_us;
            if (value > h->max_us)
                value = h->max_us;
            return value;
        }
    }
    return h->max_us;
}

double lg_hist_mean(const struct lg_hist *h)
{
    return h->total ? h->sum_us / (double)h->total : 0.0;
}

int64_t lg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void lg_stats_init(struct lg_stats *s)
{
    memset(s, 0, sizeof *s);
    for (unsigned p = 0; p < LG_PHASE_COUNT; p++)
        lg_hist_init(&s->phase[p]);
}

void lg_stats_merge(struct lg_stats *into, const struct lg_stats *from)
{
    for (unsigned p = 0; p < LG_PHASE_COUNT; p++)
        lg_hist_merge(&into->phase[p], &from->phase[p]);
    for (unsigned c = 0; c < 1000; c++)
        into->reply_errors[c] += from->reply_errors[c];
    for (unsigned e = 0; e < LG_ERR_COUNT; e++)
        into->errors[e] += from->errors[e];
    into->msgs_ok += from->msgs_ok;
    into->msgs_failed += from->msgs_failed;
    into->msgs_unfinished += from->msgs_unfinished;
    into->rcpts_ok += from->rcpts_ok;
    into->conns_opened += from->conns_opened;
    into->conns_completed += from->conns_completed;
    into->idle_held += from->idle_held;
    into->bytes_sent += from->bytes_sent;
    if (from->last_done_us > into->last_done_us)
        into->last_done_us = from->last_done_us;
}

const char *lg_error_name(enum lg_error e)
{
    static const char *const names[LG_ERR_COUNT] = {
        [LG_ERR_CONNECT] = "connect",     [LG_ERR_CLOSED] = "closed", [LG_ERR_TIMEOUT] = "timeout",
        [LG_ERR_PROTOCOL] = "protocol",   [LG_ERR_IO] = "io",         [LG_ERR_NOPRDR] = "no-prdr",
        [LG_ERR_IDLE_LOST] = "idle-lost",
    };
    return (unsigned)e < LG_ERR_COUNT ? names[e] : "?";
}

const char *lg_phase_name(enum lg_phase p)
{
    static const char *const names[LG_PHASE_COUNT] = {
        [LG_PHASE_BANNER] = "banner", [LG_PHASE_EHLO] = "ehlo", [LG_PHASE_MAIL_RCPT] = "mail_rcpt",
        [LG_PHASE_DATA] = "data",     [LG_PHASE_EOD] = "eod",   [LG_PHASE_MESSAGE] = "message",
    };
    return (unsigned)p < LG_PHASE_COUNT ? names[p] : "?";
}
