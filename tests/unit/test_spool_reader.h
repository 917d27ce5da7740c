/*
 * test_spool_reader.h - read a spooled message as delivery does (spool_message_reader:
 * -D with the ACL-added header groups inserted) a few bytes at a time, and compare it with
 * what the test expects. Shared by the spool and session unit tests. Test-only: fails the
 * running cmocka test on any difference. Include after <cmocka.h>.
 */
#ifndef POSTERN_TEST_SPOOL_READER_H
#define POSTERN_TEST_SPOOL_READER_H

#include "postern/spool.h"

#include <string.h>

/* Read the message `step` bytes at a time; it must be exactly expect[0..expect_len). */
static inline void test_read_delivered(const struct spool_envelope *env, size_t step,
                                       const char *expect, size_t expect_len)
{
    struct spool_message_reader rd;
    assert_true(spool_message_open(&rd, env));
    static char got[8192], chunk[65536];
    size_t len = 0;
    ssize_t n;
    while ((n = spool_message_read(&rd, chunk, step)) > 0) {
        assert_true(len + (size_t)n < sizeof got);
        memcpy(got + len, chunk, (size_t)n);
        len += (size_t)n;
    }
    spool_message_close(&rd);
    assert_int_equal(n, 0);
    got[len] = '\0';
    if (len != expect_len || memcmp(got, expect, len) != 0)
        fail_msg("reading %zu bytes at a time gave %zu bytes\n%s\nwant %zu bytes\n%.*s", step, len,
                 got, expect_len, (int)expect_len, expect);
}

/* The same in steps of 1 to 7 bytes, and all at once. */
static inline void test_read_delivered_in_steps(const struct spool_envelope *env,
                                                const char *expect, size_t expect_len)
{
    for (size_t step = 1; step <= 7; step++)
        test_read_delivered(env, step, expect, expect_len);
    test_read_delivered(env, 65536, expect, expect_len);
}

#endif
