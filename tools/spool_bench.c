/*
 * spool_bench.c - commit throughput of the spool: durable messages per second for
 * N concurrent submitters, using the real group committer, against a baseline that makes
 * each message durable on its own (fdatasync -D, fdatasync -H, rename, fsync directory:
 * what a process-per-message MTA pays).
 *
 * Not built by CMake. Build and run by hand from the repository root:
 *
 *   gcc -O2 -D_GNU_SOURCE -Iinclude -o /tmp/spool_bench tools/spool_bench.c \
 *       src/spool/[a-z_]*.c src/log/log.c src/util/[a-z]*.c -lpthread
 *   /tmp/spool_bench [spool_dir [seconds [message_bytes [submitters,...]]]]
 *
 * Defaults: /tmp/spool-bench, 3 s per run, 1024-byte messages, submitters 1,16,100.
 * Each submitter thread loops: new id, write the message, spool_commit_wait(). The
 * spool directory is emptied between runs.
 */
#include "postern/spool.h"
#include "postern/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *bench_dir = "/tmp/spool-bench";
static size_t message_bytes = 1024;
static atomic_bool stop;
static atomic_long committed;

static void bench_empty_spool(void)
{
    char input[512], path[1024];
    snprintf(input, sizeof input, "%s/input", bench_dir);
    DIR *d = opendir(input);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", input, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static void *bench_submitter(void *arg)
{
    (void)arg;
    const char *rcpts[] = {"bench@example.com"};
    struct spool_recipient recipients[1] = {{.address = rcpts[0]}};
    char *body = malloc(message_bytes);
    memset(body, 'm', message_bytes);
    while (!atomic_load(&stop)) {
        char id[SPOOL_ID_LEN + 1], err[256];
        spool_new_id(id);
        struct spool_envelope env = {.sender = "sender@example.com",
                                     .received_time = 0,
                                     .host_address = "127.0.0.1",
                                     .host_name = "",
                                     .helo_name = "bench",
                                     .protocol = "esmtp",
                                     .proxy_address = "",
                                     .interface_address = "127.0.0.1",
                                     .interface_port = 25,
                                     .recipient_count = 1,
                                     .recipients = recipients};
        struct spool_writer *w = spool_message_begin(id, err, sizeof err);
        if (!w || !spool_data_write(w, body, message_bytes, err, sizeof err) ||
            !spool_commit_wait(w, &env, err, sizeof err)) {
            fprintf(stderr, "commit failed: %s\n", err);
            exit(1);
        }
        atomic_fetch_add(&committed, 1);
    }
    free(body);
    return NULL;
}

/* Baseline: each thread makes its own message durable, no grouping. */
static void *bench_serial_submitter(void *arg)
{
    (void)arg;
    char input[512];
    snprintf(input, sizeof input, "%s/input", bench_dir);
    int dirfd = open(input, O_RDONLY | O_DIRECTORY);
    char *body = malloc(message_bytes);
    memset(body, 'm', message_bytes);
    const char header[] = "postern-spool 1\nid x\nsender s@example.com\nrcpt b@example.com\nend\n";
    while (!atomic_load(&stop)) {
        char id[SPOOL_ID_LEN + 1], d[1024], h[1024], ht[1024];
        spool_new_id(id);
        snprintf(d, sizeof d, "%s/%s-D", input, id);
        snprintf(h, sizeof h, "%s/%s-H", input, id);
        snprintf(ht, sizeof ht, "%s/%s-H.tmp", input, id);
        int fd = open(d, O_WRONLY | O_CREAT | O_EXCL, 0640);
        int hfd = open(ht, O_WRONLY | O_CREAT | O_EXCL, 0640);
        if (fd < 0 || hfd < 0 || write(fd, body, message_bytes) < 0 ||
            write(hfd, header, sizeof header - 1) < 0 || fdatasync(fd) != 0 ||
            fdatasync(hfd) != 0 || rename(ht, h) != 0 || fsync(dirfd) != 0) {
            perror("baseline");
            exit(1);
        }
        close(fd);
        close(hfd);
        atomic_fetch_add(&committed, 1);
    }
    close(dirfd);
    free(body);
    return NULL;
}

static void bench_run(int submitters, double seconds, bool baseline)
{
    char err[256];
    bench_empty_spool();
    if (!spool_init(bench_dir, 256, err, sizeof err)) {
        fprintf(stderr, "spool_init: %s\n", err);
        exit(1);
    }
    char warm[SPOOL_ID_LEN + 1];
    spool_new_id(warm); /* the first id of a process may wait for the next second */
    atomic_store(&stop, false);
    atomic_store(&committed, 0);
    pthread_t *threads = calloc((size_t)submitters, sizeof *threads);
    int64_t start = time_mono_ms();
    for (int i = 0; i < submitters; i++)
        pthread_create(&threads[i], NULL, baseline ? bench_serial_submitter : bench_submitter,
                       NULL);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, true);
    for (int i = 0; i < submitters; i++)
        pthread_join(threads[i], NULL);
    double elapsed = (double)(time_mono_ms() - start) / 1000.0;
    struct spool_stats st;
    spool_stats(&st);
    spool_shutdown();
    long n = atomic_load(&committed);
    if (baseline) {
        printf("%-22s %5d submitters: %8.0f commits/s   (one fsync set per message)\n",
               "baseline (no grouping)", submitters, (double)n / elapsed);
    } else {
        printf("%-22s %5d submitters: %8.0f commits/s   batches %llu, avg batch %.1f, max %d, "
               "mean latency %.2f ms, max %.2f ms\n",
               "group commit", submitters, (double)n / elapsed, (unsigned long long)st.batches,
               st.batches ? (double)st.messages / (double)st.batches : 0.0, st.max_batch,
               st.messages ? (double)st.latency_us_total / 1000.0 / (double)st.messages : 0.0,
               (double)st.latency_us_max / 1000.0);
    }
    free(threads);
}

int main(int argc, char **argv)
{
    double seconds = 3;
    const char *list = "1,16,100";
    if (argc > 1)
        bench_dir = argv[1];
    if (argc > 2)
        seconds = atof(argv[2]);
    if (argc > 3)
        message_bytes = (size_t)atol(argv[3]);
    if (argc > 4)
        list = argv[4];
    printf("spool bench: %s, %.1f s per run, %zu-byte messages\n", bench_dir, seconds,
           message_bytes);
    char *copy = strdup(list);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int n = atoi(tok);
        bench_run(n, seconds, true);
        bench_run(n, seconds, false);
    }
    free(copy);
    bench_empty_spool();
    return 0;
}
