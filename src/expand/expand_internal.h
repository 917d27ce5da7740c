/*
 * expand_internal.h - private interface between the files of the expansion engine
 * (expand.c, expand_cond.c, expand_ops.c, expand_vars.c, lists.c, ip.c, regex.c) and the
 * lsearch family in src/lookup/, which reuses the list pattern matcher and the regex
 * adapter. Nothing here is part of the public API (include/postern/expand.h).
 *
 * All functions may be called from any thread; they touch only the context they are given.
 */
#ifndef POSTERN_EXPAND_INTERNAL_H
#define POSTERN_EXPAND_INTERNAL_H

#include "postern/expand.h"
#include "postern/ip.h"

#include <regex.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#define EXPAND_MAX_INPUT (64 * 1024)    /* bytes of expansion source */
#define EXPAND_MAX_OUTPUT (1024 * 1024) /* bytes of any intermediate or final result */
#define EXPAND_MAX_NAME 64              /* variable, item, operator and condition names */
#define LIST_MAX_DEPTH 16               /* "+name" references inside named lists */

/* One expand_string() or expand_check_syntax() call. */
struct expand_run {
    struct expand_ctx *ctx;
    const char *err; /* arena; set whenever a function returns FAIL, FORCED_FAIL or DEFER */
};

/* ---- expand.c ---- */
enum expand_status expand_fail(struct expand_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void expand_skip_space(const char **pp);
/* Expand text at *pp up to the end of the string, or (until_brace) up to and including the
 * closing '}'. With skip set nothing is resolved and *out is "". */
enum expand_status expand_text(struct expand_run *run, const char **pp, bool until_brace, bool skip,
                               const char **out);
/* Optional white space, then "{text}". `item` names the construct for error messages. */
enum expand_status expand_arg(struct expand_run *run, const char **pp, bool skip, const char *item,
                              const char **out);
/* $value, $0..$9, then ctx->var, then built-ins. NULL: no such variable. */
const char *expand_resolve_var(struct expand_ctx *ctx, const char *name);

/* ---- expand_cond.c ---- */
enum expand_status expand_condition(struct expand_run *run, const char **pp, bool skip,
                                    bool *result);

/* ---- expand_ops.c: ${name:arg} ---- */
bool expand_operator_known(const char *name);
enum expand_status expand_operator(struct expand_run *run, const char *name, const char *arg,
                                   const char **out);
/* Exim's substring rule: a negative start counts from the end; has_len false = to the end. */
const char *expand_substring(struct arena *arena, const char *s, long start, long len,
                             bool has_len);

/* ---- regex.c: Exim writes PCRE; we compile POSIX EREs after translating the common Perl
 * escapes (\d \w \s and their negations, (?i), (?-i), (?:). ---- */
#define REGEX_MAX_GROUPS 33 /* POSIX groups tracked, including group 0 */
struct expand_regex {
    regex_t re;
    int groups;                       /* '(' groups in the translated pattern */
    int8_t capture[REGEX_MAX_GROUPS]; /* POSIX group -> Perl group number; -1 for (?:) */
};
bool expand_regex_compile(struct expand_regex *rx, const char *pattern, bool caseless,
                          struct arena *arena, const char **err);
void expand_regex_free(struct expand_regex *rx);
/* Run; on a match m[0..9] hold the Perl-numbered groups (rm_so -1 when unset). */
bool expand_regex_exec(const struct expand_regex *rx, const char *subject, int eflags,
                       regmatch_t m[10]);
/* Run; on a match set ctx->match[0..9] (arena copies). */
bool expand_regex_match(struct expand_ctx *ctx, const struct expand_regex *rx, const char *subject);

/* ---- lists.c ---- */
/* Host list match without expanding the list first (match_ip{}{} has expanded it). */
enum match_result list_match_host_noexpand(struct expand_ctx *ctx, const char *list, const char *ip,
                                           const char *name, const char **err);
enum match_result list_match_kind_noexpand(struct expand_ctx *ctx, enum conf_list_kind kind,
                                           const char *list, const char *subject, const char **err);

#endif
