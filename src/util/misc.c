/*
 * misc.c - helpers that several modules wrote for themselves before: the RFC 2822 date
 * of Date:/Received:/Delivery-date: headers, FNV-1a hashing for hash tables and stable
 * names, and Exim's "address.port" interface notation. Pure functions (the date reads
 * the time zone). Any thread.
 */
#include "postern/util.h"

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
