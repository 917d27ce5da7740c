/*
 * fs.c - small file-system helpers written once for every module: mkdir -p, a write that
 * finishes (EINTR and short writes), fsync of a directory, and the check that a path built
 * from configuration and address data is absolute and has no ".", ".." or empty
 * components. Stateless; errno is left set on failure. Any thread.
 */
#include "postern/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool fs_mkdir_p(const char *path, mode_t mode)
{
    if (!*path) {
        errno = ENOENT;
        return false;
    }
    char *copy = strdup(path);
    if (!copy)
        die("out of memory copying a path");
    bool ok = true;
    for (char *p = copy + 1; ok; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = '\0';
        ok = mkdir(copy, mode) == 0 || errno == EEXIST;
        *p = saved;
        if (!saved)
            break;
    }
    int saved_errno = errno;
    free(copy);
    errno = saved_errno;
    return ok;
}

bool fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return false;
        }
        p += w;
        len -= (size_t)w;
    }
    return true;
}

bool fs_sync_directory(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc == 0;
}

bool fs_path_check(const char *path, const char **reason)
{
    if (path[0] != '/') {
        *reason = "is not an absolute path";
        return false;
    }
    for (const char *p = path + 1; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 && slash) {
            *reason = "contains an empty component (\"//\")";
            return false;
        }
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            *reason = "contains a \".\" or \"..\" component";
            return false;
        }
        if (!slash)
            break;
        p = slash + 1;
    }
    return true;
}
