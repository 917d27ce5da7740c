/*
 * misc.c - helpers that several modules wrote for themselves before: the RFC 2822 date
 * of Date:/Received:/Delivery-date: headers, FNV-1a hashing for hash tables and stable
 * names, Exim's "address.port" interface notation, and Exim integers with K/M/G suffixes.
 * Pure functions (the date reads the clock and the time zone). Any thread.
 */
#include "postern/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void time_rfc2822(char *out, size_t size, time_t when)
{
    struct tm tm;
    localtime_r(&when, &tm);
    if (strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && size)
        out[0] = '\0';
}

uint32_t hash_fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

uint64_t hash_fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int ip_split_port(char *address)
{
    char *dot = strrchr(address, '.');
    if (!dot)
        return 0;
    int dots = 0;
    for (const char *p = address; *p; p++)
        dots += *p == '.';
    bool v6 = strchr(address, ':') != NULL;
    if (!((v6 && dots >= 1) || (!v6 && dots == 4)))
        return 0;
    *dot = '\0';
    return atoi(dot + 1);
}

bool parse_exim_integer(const char *s, int base, int64_t *out)
{
    if (!(isdigit((unsigned char)s[0]) ||
          ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (errno || end == s)
        return false;
    int64_t mult = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mult = 1024;
        end++;
        break;
    case 'm':
    case 'M':
        mult = 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mult = 1024LL * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (*end || v > INT64_MAX / mult || v < INT64_MIN / mult)
        return false;
    *out = v * mult;
    return true;
}
