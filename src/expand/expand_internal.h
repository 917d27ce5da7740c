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
#include "postern/vars.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
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
    const struct expand_check *check; /* load-time check (everything skipped); else NULL */
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
/* The load-time checks of a name met while checking (run->check set): known where the
 * string is used, with an allowed lifetime. EXPAND_OK when not checking. */
enum expand_status expand_check_var(struct expand_run *run, const char *name);
/* True when expanding the source text s[0..len) needs nothing but the text: no '$'
 * outside \N...\N. Its expansion is then the same at load and at every use. */
bool expand_text_is_constant(const char *s, size_t len);
/* expand_arg for an argument that is a regular expression: when checking and the argument
 * is constant, it is compiled now (into the snapshot's set), so a bad one is a load error. */
enum expand_status expand_arg_regex(struct expand_run *run, const char **pp, bool skip,
                                    const char *item, const char **out);
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

/* ---- regex.c: PCRE2 with bounded cost; constant patterns compiled once per snapshot ---- */
enum regex_result {
    REGEX_NO_MATCH = 0,
    REGEX_MATCH,
    REGEX_BAD,   /* the pattern does not compile (or PCRE2 refused it): an error */
    REGEX_LIMIT, /* match, depth or heap limit hit: a temporary failure (defer) */
};
/* A compiled pattern for one use: borrowed from the snapshot's set, or owned (freed by
 * expand_regex_put). */
struct expand_regex {
    pcre2_code *code;
    bool owned;
};
/* Find `pattern` in ctx->config's precompiled set or compile it now (*err on failure). */
bool expand_regex_get(struct expand_ctx *ctx, const char *pattern, bool caseless,
                      struct expand_regex *rx, const char **err);
void expand_regex_put(struct expand_regex *rx);
/* Match from byte `offset`; on REGEX_MATCH m[2i], m[2i+1] are the bounds of group i
 * (SIZE_MAX when unset). REGEX_BAD / REGEX_LIMIT set *err. */
enum regex_result expand_regex_exec(struct expand_ctx *ctx, const struct expand_regex *rx,
                                    const char *subject, size_t offset, size_t m[20],
                                    const char **err);
/* ctx->match[0..9] = the groups of a match (arena copies; NULL when unset). */
void expand_regex_set_groups(struct expand_ctx *ctx, const char *subject, const size_t m[20]);
/* get + exec + set_groups on a match + put. */
enum regex_result expand_regex_match(struct expand_ctx *ctx, const char *pattern, bool caseless,
                                     const char *subject, const char **err);

/* (expand.c) A regex_result other than a match or no match, as a status: FAIL, or DEFER
 * when a limit was hit. */
enum expand_status expand_regex_status(struct expand_run *run, enum regex_result r,
                                       const char *item, const char *err);

/* ---- lists.c ---- */
/* Host list match without expanding the list first (match_ip{}{} has expanded it). */
enum match_result list_match_host_noexpand(struct expand_ctx *ctx, const char *list, const char *ip,
                                           const char *name, const char **err);
enum match_result list_match_kind_noexpand(struct expand_ctx *ctx, enum conf_list_kind kind,
                                           const char *list, const char *subject, const char **err);

#endif
