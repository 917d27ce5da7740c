/*
 * spool_internal.h - what the spool's source files share and nobody else sees: the
 * store's process-wide state, file naming, the -H text format (pure functions), and the
 * hand-off between spool_store.c (writers) and spool_commit.c (the committer thread).
 */
#ifndef POSTERN_SPOOL_INTERNAL_H
#define POSTERN_SPOOL_INTERNAL_H

#include "postern/spool.h"
#include "postern/util.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest -H file we agree to read: a few hundred thousand recipients. */
#define SPOOL_HEADER_MAX (64 * 1024 * 1024)

/* Process-wide store state, set by spool_init() (main thread) before any worker runs and
 * cleared by spool_shutdown() after they stopped; read-only in between. */
struct spool_store {
    bool ready;
    char dir[PATH_MAX];   /* spool_directory as given */
    char input[PATH_MAX]; /* spool_directory/input */
    int input_fd;         /* O_DIRECTORY descriptor of input/, for fsync */
};
extern struct spool_store spool_store;

/* "<input>/<id><suffix>" into out (PATH_MAX); false if too long. */
bool spool_path(char *out, size_t outlen, const char *id, const char *suffix);

/* ---- the -H format (spool_envelope.c): pure, no I/O ---- */
/* Serialise env into out; size is the authoritative byte count of -D. */
void spool_envelope_format(struct buf *out, const struct spool_envelope *env, int64_t size);
/* Strictly parse a whole -H file. Strings go into arena. Recipients' done flags are
 * false (the -J journal is applied by the caller). */
bool spool_envelope_parse(struct arena *arena, const char *text, size_t len,
                          struct spool_envelope *env, char *err, size_t errlen);

/* ---- group commit (spool_commit.c) ---- */
/* One message waiting for the committer. Owned by the committer queue once submitted;
 * the committer closes the descriptors (releasing the -D lock) and frees it. */
struct spool_commit {
    struct spool_commit *next;
    char id[SPOOL_ID_LEN + 1];
    int data_fd;   /* <id>-D, write descriptor holding the writer's flock */
    int header_fd; /* <id>-H.tmp */
    spool_done_fn done;
    void *arg;
    int64_t submit_us; /* monotonic, for the latency statistics */
    bool failed;
    char reason[256];
};

int64_t spool_now_us(void); /* monotonic microseconds */
bool spool_committer_start(int max_batch, char *err, size_t errlen);
void spool_committer_stop(void); /* drains the queue, joins the thread */
/* False when the committer is not running (then c is untouched). */
bool spool_committer_enqueue(struct spool_commit *c);

/* ---- the pool of reusable files (spool_recycle.c) ---- */
bool spool_recycle_init(char *err, size_t errlen); /* after spool_store.dir is set */
void spool_recycle_shutdown(void);
/* An O_WRONLY descriptor for a new file at path: a recycled file moved there (old bytes
 * still in it: write from offset 0 and ftruncate to the final size), or a new file created
 * with O_CREAT | create_flags. -1 with errno on failure. */
int spool_file_create(const char *path, int create_flags, int mode);
/* A message's file is finished with: move it to the pool (or delete it when the pool is
 * full). No descriptor of it may be used for reading or writing afterwards. */
bool spool_file_retire(const char *path);

/* Remove every file of a message that failed before becoming visible. */
void spool_unlink_uncommitted(const char *id);

#endif
