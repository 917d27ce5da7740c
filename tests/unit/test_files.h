/*
 * test_files.h - temporary directories and files for the unit tests (one copy of what
 * several test programs need). Test-only; every helper fails the running cmocka test on
 * error rather than returning it.
 */
#ifndef POSTERN_TEST_FILES_H
#define POSTERN_TEST_FILES_H

#include "postern/util.h"

#include <stdio.h>
#include <stdlib.h>

/* A new directory /tmp/postern-<tag>-XXXXXX in dir (size >= 64); false on failure. */
static inline bool test_tmpdir(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/postern-%s-XXXXXX", tag);
    return mkdtemp(dir) != NULL;
}

/* Remove a directory made by test_tmpdir and everything in it. */
static inline bool test_rmtree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0;
}

/* Write content to dir/name; returns the path (in arena). */
static inline const char *test_write_file(struct arena *arena, const char *dir, const char *name,
                                          const char *content)
{
    char *path = arena_printf(arena, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
    return path;
}

#endif
