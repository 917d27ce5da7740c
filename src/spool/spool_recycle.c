/*
 * spool_recycle.c - a pool of spool files kept for reuse instead of being deleted.
 *
 * Why: every message used to create two files and later delete them. On ext4 without a
 * journal (the machines this project is measured on), allocating an inode skips every
 * inode freed in the last minute or more ("recently_deleted" in ext4's inode allocator),
 * so at a few thousand messages a second creating a file grew costlier the longer the
 * server ran, and freeing blocks sent a discard each time. A finished message's files are
 * therefore renamed into <spool_directory>/free/ and the next message renames one back
 * and overwrites it (the writer truncates it to its new size before it is synced). No
 * inode is allocated or freed in the steady state.
 *
 * Owns: the process-wide stack of free file names (behind `pool.lock`) and free/ itself.
 * Names are "<pid>.<counter>", so several postern processes (daemon, -q, -bs) never make
 * the same name; if two of them race for one file, the loser's rename fails and it
 * simply creates a new file. The pool is bounded (SPOOL_POOL_MAX); past that, files are
 * deleted as before. A recycled file still holds an old message's bytes until it is
 * overwritten: free/ has the spool's permissions, like input/.
 * Threads: any (workers create, delivery threads retire); init/shutdown from the main
 * thread.
 */
#include "spool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_POOL_MAX 4096
#define SPOOL_POOL_NAME 32

static struct {
    pthread_mutex_t lock;
    char free_dir[PATH_MAX];
    char (*names)[SPOOL_POOL_NAME]; /* stack of free file names */
    int count;
    unsigned long counter;
    bool ready;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool pool_path(char *out, size_t outlen, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", pool.free_dir, name);
    return n > 0 && (size_t)n < outlen;
}

bool spool_recycle_init(char *err, size_t errlen)
{
    int n = snprintf(pool.free_dir, sizeof pool.free_dir, "%s/free", spool_store.dir);
    if (n < 0 || (size_t)n >= sizeof pool.free_dir - SPOOL_POOL_NAME) {
        snprintf(err, errlen, "spool_directory too long");
        return false;
    }
    if (mkdir(pool.free_dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", pool.free_dir, strerror(errno));
        return false;
    }
    pool.names = calloc(SPOOL_POOL_MAX, sizeof *pool.names);
    if (!pool.names)
        die("out of memory for the spool file pool");
    pool.count = 0;
    pool.counter = 0;
    DIR *dir = opendir(pool.free_dir);
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (de->d_name[0] == '.')
                continue;
            char path[PATH_MAX];
            size_t len = strlen(de->d_name);
            if (pool.count < SPOOL_POOL_MAX && len < SPOOL_POOL_NAME)
                memcpy(pool.names[pool.count++], de->d_name, len + 1);
            else if (pool_path(path, sizeof path, de->d_name))
                unlink(path);
        }
        closedir(dir);
    }
    pool.ready = true;
    return true;
}

void spool_recycle_shutdown(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.ready = false;
    free(pool.names);
    pool.names = NULL;
    pool.count = 0;
    pthread_mutex_unlock(&pool.lock);
}

/* Take a free file and move it to `path`; returns an O_WRONLY descriptor or -1. */
static int pool_take(const char *path)
{
    char name[SPOOL_POOL_NAME];
    pthread_mutex_lock(&pool.lock);
    bool have = pool.ready && pool.count > 0;
    if (have)
        memcpy(name, pool.names[--pool.count], sizeof name);
    pthread_mutex_unlock(&pool.lock);
    char from[PATH_MAX];
    if (!have || !pool_path(from, sizeof from, name) || rename(from, path) != 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        unlink(path);
    return fd;
}

int spool_file_create(const char *path, int create_flags, int mode)
{
    int fd = pool_take(path);
    if (fd >= 0)
        return fd;
    return open(path, O_WRONLY | O_CREAT | O_CLOEXEC | create_flags, mode);
}

bool spool_file_retire(const char *path)
{
    char name[SPOOL_POOL_NAME], to[PATH_MAX];
    pthread_mutex_lock(&pool.lock);
    bool room = pool.ready && pool.count < SPOOL_POOL_MAX;
    if (room)
        snprintf(name, sizeof name, "%ld.%lu", (long)getpid(), pool.counter++);
    pthread_mutex_unlock(&pool.lock);
    if (room && pool_path(to, sizeof to, name) && rename(path, to) == 0) {
        pthread_mutex_lock(&pool.lock);
        if (pool.ready && pool.count < SPOOL_POOL_MAX) {
            memcpy(pool.names[pool.count++], name, sizeof name);
            pthread_mutex_unlock(&pool.lock);
            return true;
        }
        pthread_mutex_unlock(&pool.lock);
        unlink(to); /* the pool filled up meanwhile */
        return true;
    }
    return unlink(path) == 0 || errno == ENOENT;
}
