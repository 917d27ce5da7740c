/*
 * lg_report.c - prints the load generator's merged results: a human-readable table, or
 * one JSON object (--json) for perf/compare and other scripts.
 *
 * Reads the merged struct lg_stats after all workers have been joined; main thread only.
 */
#include "lg.h"

#include <stdio.h>
#include <string.h>

static const double report_quantiles[] = {0.50, 0.90, 0.99, 0.999};
static const char *const report_quantile_names[] = {"p50", "p90", "p99", "p99.9"};
#define REPORT_NQ (sizeof report_quantiles / sizeof report_quantiles[0])

static uint64_t report_error_total(const struct lg_stats *s)
{
    uint64_t total = 0;
    for (unsigned c = 0; c < 1000; c++)
        total += s->reply_errors[c];
    for (unsigned e = 0; e < LG_ERR_COUNT; e++)
        total += s->errors[e];
    return total;
}

/* "421: 3, 451: 10, connect: 2" (or "none") */
static void report_errors_line(const struct lg_stats *s, FILE *out)
{
    bool any = false;
    for (unsigned c = 0; c < 1000; c++) {
        if (!s->reply_errors[c])
            continue;
        fprintf(out, "%s%03u: %llu", any ? ", " : "", c, (unsigned long long)s->reply_errors[c]);
        any = true;
    }
    for (unsigned e = 0; e < LG_ERR_COUNT; e++) {
        if (!s->errors[e])
            continue;
        fprintf(out, "%s%s: %llu", any ? ", " : "", lg_error_name(e),
                (unsigned long long)s->errors[e]);
        any = true;
    }
    if (!any)
        fputs("none", out);
}

static void report_sizes(const struct lg_config *cfg, FILE *out, bool json)
{
    for (unsigned i = 0; i < cfg->nsizes; i++) {
        if (json)
            fprintf(out, "%s[%zu,%u]", i ? "," : "", cfg->sizes[i], cfg->weights[i]);
        else if (cfg->nsizes == 1)
            fprintf(out, "%zu B", cfg->sizes[i]);
        else
            fprintf(out, "%s%zu:%u", i ? "," : "", cfg->sizes[i], cfg->weights[i]);
    }
}

void lg_report_table(const struct lg_config *cfg, const struct lg_stats *s, double elapsed_s,
                     uint64_t not_started)
{
    FILE *out = stdout;
    fprintf(out, "target        %s  connections %u (+%u idle)  threads %u\n", cfg->target_text,
            cfg->connections, cfg->idle, cfg->threads);
    fprintf(out, "workload      %llu messages of ", (unsigned long long)cfg->messages);
    report_sizes(cfg, out, false);
    fprintf(out, ", %u rcpt, %u per connection, %s", cfg->rcpts, cfg->per_conn,
            cfg->rate > 0 ? "open loop" : "closed loop");
    if (cfg->rate > 0)
        fprintf(out, " at %.1f/s", cfg->rate);
    fprintf(out, "%s%s%s\n", cfg->pipelining ? ", pipelining" : "", cfg->prdr ? ", prdr" : "",
            cfg->proxy == LG_PROXY_V1   ? ", proxy v1"
            : cfg->proxy == LG_PROXY_V2 ? ", proxy v2"
                                        : "");
    fprintf(out, "elapsed       %.3f s\n", elapsed_s);
    fprintf(out, "messages      ok %llu  failed %llu  unfinished %llu  not started %llu\n",
            (unsigned long long)s->msgs_ok, (unsigned long long)s->msgs_failed,
            (unsigned long long)s->msgs_unfinished, (unsigned long long)not_started);
    double secs = elapsed_s > 0 ? elapsed_s : 1e-9;
    fprintf(out, "throughput    %.1f msgs/s  %.1f conns/s  %.2f MB/s sent\n",
            (double)s->msgs_ok / secs, (double)s->conns_completed / secs,
            (double)s->bytes_sent / secs / 1e6);
    fprintf(out, "connections   opened %llu  completed %llu  idle held %llu\n",
            (unsigned long long)s->conns_opened, (unsigned long long)s->conns_completed,
            (unsigned long long)s->idle_held);
    fprintf(out, "latency ms    %10s", "count");
    for (unsigned q = 0; q < REPORT_NQ; q++)
        fprintf(out, " %9s", report_quantile_names[q]);
    fprintf(out, " %9s %9s\n", "max", "mean");
    for (unsigned p = 0; p < LG_PHASE_COUNT; p++) {
        const struct lg_hist *h = &s->phase[p];
        fprintf(out, "  %-11s %10llu", lg_phase_name(p), (unsigned long long)h->total);
        for (unsigned q = 0; q < REPORT_NQ; q++)
            fprintf(out, " %9.3f", (double)lg_hist_quantile(h, report_quantiles[q]) / 1000.0);
        fprintf(out, " %9.3f %9.3f\n", (double)h->max_us / 1000.0, lg_hist_mean(h) / 1000.0);
    }
    fprintf(out, "errors        ");
    report_errors_line(s, out);
    fprintf(out, "\nresult: %llu sent, %llu failed, %llu errors\n", (unsigned long long)s->msgs_ok,
            (unsigned long long)(s->msgs_failed + s->msgs_unfinished),
            (unsigned long long)report_error_total(s));
}

static void json_hist(FILE *out, const struct lg_hist *h)
{
    fprintf(out, "{\"count\":%llu", (unsigned long long)h->total);
    for (unsigned q = 0; q < REPORT_NQ; q++)
        fprintf(out, ",\"%s\":%.3f", report_quantile_names[q],
                (double)lg_hist_quantile(h, report_quantiles[q]) / 1000.0);
    fprintf(out, ",\"min\":%.3f,\"max\":%.3f,\"mean\":%.3f}",
            h->total ? (double)h->min_us / 1000.0 : 0.0, (double)h->max_us / 1000.0,
            lg_hist_mean(h) / 1000.0);
}

static void json_config(FILE *out, const struct lg_config *cfg)
{
    fprintf(out,
            "\"config\":{\"target\":\"%s\",\"connections\":%u,\"idle\":%u,\"threads\":%u,"
            "\"messages\":%llu,\"sizes\":[",
            cfg->target_text, cfg->connections, cfg->idle, cfg->threads,
            (unsigned long long)cfg->messages);
    report_sizes(cfg, out, true);
    fprintf(out,
            "],\"rcpts\":%u,\"per_conn\":%u,\"rate\":%.3f,\"pipelining\":%s,\"prdr\":%s,"
            "\"proxy\":%u,\"duration_max\":%.3f}",
            cfg->rcpts, cfg->per_conn, cfg->rate, cfg->pipelining ? "true" : "false",
            cfg->prdr ? "true" : "false", (unsigned)cfg->proxy, cfg->duration_s);
}

void lg_report_json(const struct lg_config *cfg, const struct lg_stats *s, double elapsed_s,
                    uint64_t not_started)
{
    FILE *out = stdout;
    double secs = elapsed_s > 0 ? elapsed_s : 1e-9;
    fputc('{', out);
    json_config(out, cfg);
    fprintf(out, ",\"elapsed_s\":%.6f", elapsed_s);
    fprintf(out,
            ",\"messages\":{\"ok\":%llu,\"failed\":%llu,\"unfinished\":%llu,"
            "\"not_started\":%llu}",
            (unsigned long long)s->msgs_ok, (unsigned long long)s->msgs_failed,
            (unsigned long long)s->msgs_unfinished, (unsigned long long)not_started);
    fprintf(out, ",\"msgs_per_s\":%.3f,\"conns_per_s\":%.3f,\"bytes_sent\":%llu",
            (double)s->msgs_ok / secs, (double)s->conns_completed / secs,
            (unsigned long long)s->bytes_sent);
    fprintf(out,
            ",\"connections\":{\"opened\":%llu,\"completed\":%llu,\"idle_held\":%llu}"
            ",\"rcpts_ok\":%llu",
            (unsigned long long)s->conns_opened, (unsigned long long)s->conns_completed,
            (unsigned long long)s->idle_held, (unsigned long long)s->rcpts_ok);
    fputs(",\"latency_ms\":{", out);
    for (unsigned p = 0; p < LG_PHASE_COUNT; p++) {
        fprintf(out, "%s\"%s\":", p ? "," : "", lg_phase_name(p));
        json_hist(out, &s->phase[p]);
    }
    fputs("},\"errors\":{", out);
    bool any = false;
    for (unsigned c = 0; c < 1000; c++) {
        if (s->reply_errors[c]) {
            fprintf(out, "%s\"%03u\":%llu", any ? "," : "", c,
                    (unsigned long long)s->reply_errors[c]);
            any = true;
        }
    }
    for (unsigned e = 0; e < LG_ERR_COUNT; e++) {
        if (s->errors[e]) {
            fprintf(out, "%s\"%s\":%llu", any ? "," : "", lg_error_name(e),
                    (unsigned long long)s->errors[e]);
            any = true;
        }
    }
    fprintf(out, "},\"error_total\":%llu}\n", (unsigned long long)report_error_total(s));
}
