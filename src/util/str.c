/*
 * str.c - string helpers and Exim-style value parsers (sizes, time intervals,
 * booleans). Pure functions, safe from any thread.
 */
#include "postern/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool str_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

bool str_nieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return false;
        if (!a[i])
            return true;
    }
    return true;
}

bool str_istarts(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strlen(s) >= n && str_nieq(s, prefix, n);
}

char *str_trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

void str_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

void str_upper(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

size_t strlcpy_p(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

bool parse_exim_integer(const char *s, int base, int64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
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
    while (isspace((unsigned char)*end))
        end++;
    if (*end || v > INT64_MAX / mult || v < INT64_MIN / mult)
        return false;
    *out = v * mult;
    return true;
}

bool parse_size(const char *s, int64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    return isdigit((unsigned char)*s) && parse_exim_integer(s, 10, out);
}

bool parse_time_interval(const char *s, int64_t *seconds)
{
    int64_t total = 0;
    bool any = false;
    while (isspace((unsigned char)*s))
        s++;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return false;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 0)
            return false;
        int64_t mult;
        switch (*end) {
        case 's':
            mult = 1;
            end++;
            break;
        case 'm':
            mult = 60;
            end++;
            break;
        case 'h':
            mult = 3600;
            end++;
            break;
        case 'd':
            mult = 86400;
            end++;
            break;
        case 'w':
            mult = 7 * 86400;
            end++;
            break;
        case '\0':
            mult = 1;
            break;
        default:
            return false;
        }
        if (v > (INT64_MAX - total) / mult)
            return false;
        total += v * mult;
        any = true;
        s = end;
        while (isspace((unsigned char)*s))
            s++;
    }
    if (!any)
        return false;
    *seconds = total;
    return true;
}

bool parse_bool(const char *s, bool *out)
{
    if (str_ieq(s, "true") || str_ieq(s, "yes")) {
        *out = true;
        return true;
    }
    if (str_ieq(s, "false") || str_ieq(s, "no")) {
        *out = false;
        return true;
    }
    return false;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("postern: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}
