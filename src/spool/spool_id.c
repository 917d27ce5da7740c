/*
 * spool_id.c - message ids in Exim 4.96's form "TTTTTT-PPPPPP-SS" (base62, 0-9A-Za-z),
 * which is what Debian's exigrep groups log lines by (\w{6}-\w{6}-\w{2}).
 *
 *   TTTTTT  the second the id was made, base62 (ASCII order = time order, so sorting
 *           ids sorts messages by arrival second)
 *   PPPPPP  pid * SPOOL_ID_HIGH_PER_PID + (per-second counter / 3844)
 *   SS      per-second counter % 3844
 *
 * Uniqueness. Within the process: one 64-bit atomic holds (second << 32 | next counter),
 * advanced by compare-and-swap, so no two threads get the same (second, counter); the
 * second never goes backwards even when the wall clock does. When a second's counter is
 * exhausted (about 52 million ids) callers wait for the next second. Across processes:
 * the pid differs. Across restarts (a new process may get the pid of an old one): ids
 * are only issued for seconds strictly after the second this generator first ran, and
 * the old process with our pid had ended before we started, so our seconds are newer
 * than all of its. The price is that the first id of a process may wait up to a second.
 *
 * Threads: any. State: the two atomics below (process-wide, documented in spool.h as
 * "unique across threads").
 */
#include "postern/spool.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char spool_base62_digits[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define SPOOL_ID_LOW_VALUES (62 * 62)         /* 3844 values of SS */
#define SPOOL_ID_MIDDLE_VALUES 56800235584ULL /* 62^6 values of PPPPPP */
#define SPOOL_ID_PID_LIMIT 4194304ULL         /* Linux PID_MAX_LIMIT (2^22) */
#define SPOOL_ID_HIGH_PER_PID (SPOOL_ID_MIDDLE_VALUES / SPOOL_ID_PID_LIMIT) /* 13542 */
#define SPOOL_ID_PER_SECOND ((uint64_t)SPOOL_ID_LOW_VALUES * SPOOL_ID_HIGH_PER_PID)

static _Atomic uint64_t spool_id_state;     /* second << 32 | counter already used */
static _Atomic int64_t spool_id_floor = -1; /* ids only for seconds > this */

static void spool_base62(char *out, int width, uint64_t value)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = spool_base62_digits[value % 62];
        value /= 62;
    }
}

static void spool_id_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Claim (second, counter) for this call. */
static void spool_id_claim(uint64_t *second, uint64_t *counter)
{
    int64_t floor_sec = atomic_load(&spool_id_floor);
    if (floor_sec < 0) {
        int64_t expected = -1;
        atomic_compare_exchange_strong(&spool_id_floor, &expected, (int64_t)time(NULL));
        floor_sec = atomic_load(&spool_id_floor);
    }
    for (;;) {
        int64_t now = (int64_t)time(NULL);
        if (now <= floor_sec) {
            spool_id_sleep_ms(5);
            continue;
        }
        uint64_t state = atomic_load(&spool_id_state);
        uint64_t sec = state >> 32;
        uint64_t used = state & 0xffffffffu;
        if ((uint64_t)now > sec) {
            sec = (uint64_t)now;
            used = 0;
        }
        if (used >= SPOOL_ID_PER_SECOND) {
            spool_id_sleep_ms(1); /* this second is full: wait for the next */
            continue;
        }
        if (atomic_compare_exchange_weak(&spool_id_state, &state, sec << 32 | (used + 1))) {
            *second = sec;
            *counter = used;
            return;
        }
    }
}

void spool_new_id(char id[SPOOL_ID_LEN + 1])
{
    uint64_t second, counter;
    spool_id_claim(&second, &counter);
    uint64_t pid = (uint64_t)getpid() % SPOOL_ID_PID_LIMIT;
    uint64_t middle = pid * SPOOL_ID_HIGH_PER_PID + counter / SPOOL_ID_LOW_VALUES;
    spool_base62(id, 6, second);
    id[6] = '-';
    spool_base62(id + 7, 6, middle);
    id[13] = '-';
    spool_base62(id + 14, 2, counter % SPOOL_ID_LOW_VALUES);
    id[SPOOL_ID_LEN] = '\0';
}

static bool spool_is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool spool_id_valid(const char *id)
{
    if (!id)
        return false;
    for (int i = 0; i < SPOOL_ID_LEN; i++) {
        bool dash = (i == 6 || i == 13);
        if (dash ? id[i] != '-' : !spool_is_base62(id[i]))
            return false;
    }
    return id[SPOOL_ID_LEN] == '\0';
}
