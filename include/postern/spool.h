/*
 * spool.h - the durable message store: Exim-style message ids, the -D (data) and -H
 * (envelope) files under spool_directory/input/, group commit, delivery journals and
 * queue listing.
 *
 * Durability contract: spool_commit_submit() calls `done` only after the message's -D
 * and -H files have been fdatasync'ed (or, for a batch, the spool's filesystem syncfs'ed),
 * the -H file renamed into place and the input directory fsync'ed. A message is visible
 * to the queue (an "<id>-H" file exists) only once complete. Commits from many sessions are grouped by one committer thread: it takes
 * every pending commit, syncs them together, and calls each `done` (from the committer
 * thread). A lone message is committed at once, without waiting for company.
 *
 * Threads: spool_message_begin/spool_data_write/spool_commit_submit from workers; the
 * committer thread internally; reading and journal functions from delivery threads.
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include "postern/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SPOOL_ID_LEN 16 /* "1xW3Jc-00060t-06" */

/* A fresh Exim 4.96-style message id: base62 time, then a unique 6-char and 2-char part.
 * Unique across threads of this process and across restarts. */
void spool_new_id(char id[SPOOL_ID_LEN + 1]);
bool spool_id_valid(const char *id);

/* Header lines added by ACLs, to go into -D's text at one offset (add_header's placements:
 * at most one group per placement, SPOOL_HEADER_GROUPS in all). */
#define SPOOL_HEADER_GROUPS 4
struct spool_header_group {
    int64_t at;       /* the offset in -D before which they go */
    const char *text; /* the CRLF-terminated lines, not "" (owned as the envelope's strings) */
};

struct spool_recipient {
    const char *address;  /* as accepted (local@domain) */
    bool done;            /* delivered or failed permanently (from the -J journal) */
};

/* The envelope as stored in -H. Strings are arena-owned. */
struct spool_envelope {
    char id[SPOOL_ID_LEN + 1];
    const char *sender;          /* "" for the null sender */
    int64_t received_time;       /* unix seconds */
    int64_t size;                /* bytes of -D (header + body) */
    const char *host_address;    /* "" for local submission */
    int host_port;
    const char *host_name;       /* may be "" */
    const char *helo_name;
    const char *protocol;        /* smtp, esmtp, esmtps, local-smtp, ... */
    const char *proxy_address;   /* "" when not proxied */
    const char *interface_address;
    int interface_port;
    bool prdr;
    int recipient_count;
    struct spool_recipient *recipients;
    int added_header_groups;     /* header lines added by ACLs, stored in -H and inserted
                                    into -D's text at delivery (spool_message_open): groups
                                    in order of offset (equal offsets: in this order) */
    struct spool_header_group added_headers[SPOOL_HEADER_GROUPS];
    int acl_var_count;           /* acl_m* variables carried to delivery */
    const char **acl_var_names;
    const char **acl_var_values;
};

/* ---- store setup ---- */
/* Create spool_directory/input (and parents); start the committer thread.
 * max_batch bounds one group commit. */
bool spool_init(const char *spool_directory, int max_batch, char *err, size_t errlen);
void spool_shutdown(void); /* waits for pending commits, stops the committer */
const char *spool_dir(void);

/* Group-commit statistics since spool_init() (readable from any thread). */
struct spool_stats {
    uint64_t batches;          /* group commits done (each: one directory fsync) */
    uint64_t messages;         /* messages through the committer, ok or not */
    uint64_t failed;           /* of which failed */
    int max_batch;             /* largest batch seen */
    uint64_t latency_us_total; /* sum over messages of submit -> done callback */
    uint64_t latency_us_max;
};
void spool_stats(struct spool_stats *out);

/* ---- writing a message (worker thread) ---- */
struct spool_writer; /* owns the open -D file until commit or abort */

struct spool_writer *spool_message_begin(const char *id, char *err, size_t errlen);
/* Append message bytes (headers and body, dot-unstuffed, CRLF line ends). */
bool spool_data_write(struct spool_writer *w, const void *data, size_t len, char *err,
                      size_t errlen);
int64_t spool_data_size(const struct spool_writer *w);
/* Remove everything written (rejected message, lost connection). Frees w. */
void spool_message_abort(struct spool_writer *w);

/*
 * Hand the message to the committer: writes -H.tmp from env, then (committer thread)
 * syncs both files, renames, syncs the directory, and calls done(arg, ok, reason).
 * On failure `ok` is false and nothing is left in the spool. Frees w either way.
 * If spool_commit_submit() itself returns false (err set), the message was removed and
 * `done` is never called.
 */
typedef void (*spool_done_fn)(void *arg, bool ok, const char *reason);
bool spool_commit_submit(struct spool_writer *w, const struct spool_envelope *env,
                         spool_done_fn done, void *arg, char *err, size_t errlen);

/* Synchronous variant for -bs/-bh-less tools and tests: commit and wait. */
bool spool_commit_wait(struct spool_writer *w, const struct spool_envelope *env, char *err,
                       size_t errlen);

/* ---- reading and delivery bookkeeping (delivery threads) ---- */
bool spool_read_envelope(struct arena *arena, const char *id, struct spool_envelope *env,
                         char *err, size_t errlen); /* applies the -J journal to .done */
int spool_open_data(const char *id); /* read-only fd of -D, or -1 */

/* The message as delivered: -D with each group of the envelope's ACL-added header lines
 * inserted at its offset, streamed. Everything that hands the message on (transports,
 * bounces) reads it through this. env must outlive the reader. */
struct spool_message_reader {
    int fd;                                  /* -D, read-only */
    const struct spool_header_group *groups; /* env->added_headers (env owns them) */
    int group_count;
    int group;         /* the group now being returned or waited for */
    size_t group_len;  /* bytes of its text */
    size_t group_done; /* of which already returned */
    int64_t data_done; /* bytes of -D already returned */
};
bool spool_message_open(struct spool_message_reader *r, const struct spool_envelope *env);
/* Like read(2): bytes into buf, 0 at the end, -1 with errno on error. */
ssize_t spool_message_read(struct spool_message_reader *r, char *buf, size_t n);
void spool_message_close(struct spool_message_reader *r);
/* Record that recipient index i is finished (delivered or failed): fsynced append to -J. */
bool spool_mark_done(const char *id, int index, char *err, size_t errlen);
/* All recipients done: remove -H, -D and -J. */
bool spool_remove(const char *id);

/* List the ids in the queue (oldest first); *ids is an arena array. */
int spool_list_ids(struct arena *arena, const char ***ids);
/* Exim -bp format: for each message "age size id <sender>", recipients indented,
 * delivered ones prefixed with "D " (left out when undelivered_only, as -bpu), a blank
 * line after each. */
void spool_format_queue(struct buf *out, bool undelivered_only);

/* Per-message exclusive lock for delivery (flock on -D); false if someone else has it. */
int spool_lock_message(const char *id); /* returns fd >= 0 or -1 */
void spool_unlock_message(int lock_fd);

#endif
