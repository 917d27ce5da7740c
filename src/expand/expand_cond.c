/*
 * expand_cond.c - the conditions of ${if COND {yes}{no}}: string and numeric comparisons,
 * def:, bool{} / bool_lax{}, and{} / or{}, match{}{} (sets $0..$9), the list conditions
 * match_domain / match_ip / match_address / match_local_part, inlist / inlisti, isip,
 * isip4, isip6 and exists. Any condition may be negated with a leading '!'.
 *
 * Every condition is parsed even when `skip` is set (a branch not taken, or a syntax
 * check), so a typo is reported whatever the data. Owns no state; results and errors go
 * in ctx->arena. Any thread may call it.
 */
#include "expand_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

enum cond_kind {
    COND_STRCMP,  /* eq, eqi, lt, lti, le, lei, gt, gti, ge, gei */
    COND_NUMERIC, /* = == < <= > >= */
    COND_BOOL,
    COND_BOOL_LAX,
    COND_ISIP,
    COND_EXISTS,
    COND_MATCH,
    COND_MATCH_LIST, /* match_domain, match_ip, match_address, match_local_part */
    COND_INLIST,
};

struct cond_def {
    const char *name;
    enum cond_kind kind;
    int nargs;
    int variant; /* comparison: <0 less, 0 equal, >0 greater flags; or list kind/case */
};

/* comparison variants: bit 1 = "less" counts, bit 2 = "equal" counts, bit 4 = "greater" */
#define CMP_LT 1
#define CMP_EQ 2
#define CMP_GT 4
#define CMP_CASELESS 8

#define LIST_IP 100 /* match_ip: a host list matched by address only */

static const struct cond_def cond_table[] = {
    {"eq", COND_STRCMP, 2, CMP_EQ},
    {"eqi", COND_STRCMP, 2, CMP_EQ | CMP_CASELESS},
    {"lt", COND_STRCMP, 2, CMP_LT},
    {"lti", COND_STRCMP, 2, CMP_LT | CMP_CASELESS},
    {"le", COND_STRCMP, 2, CMP_LT | CMP_EQ},
    {"lei", COND_STRCMP, 2, CMP_LT | CMP_EQ | CMP_CASELESS},
    {"gt", COND_STRCMP, 2, CMP_GT},
    {"gti", COND_STRCMP, 2, CMP_GT | CMP_CASELESS},
    {"ge", COND_STRCMP, 2, CMP_GT | CMP_EQ},
    {"gei", COND_STRCMP, 2, CMP_GT | CMP_EQ | CMP_CASELESS},
    {"=", COND_NUMERIC, 2, CMP_EQ},
    {"==", COND_NUMERIC, 2, CMP_EQ},
    {"<", COND_NUMERIC, 2, CMP_LT},
    {"<=", COND_NUMERIC, 2, CMP_LT | CMP_EQ},
    {">", COND_NUMERIC, 2, CMP_GT},
    {">=", COND_NUMERIC, 2, CMP_GT | CMP_EQ},
    {"bool", COND_BOOL, 1, 0},
    {"bool_lax", COND_BOOL_LAX, 1, 0},
    {"isip", COND_ISIP, 1, 0},
    {"isip4", COND_ISIP, 1, 4},
    {"isip6", COND_ISIP, 1, 6},
    {"exists", COND_EXISTS, 1, 0},
    {"match", COND_MATCH, 2, 0},
    {"match_domain", COND_MATCH_LIST, 2, CONF_LIST_DOMAIN},
    {"match_address", COND_MATCH_LIST, 2, CONF_LIST_ADDRESS},
    {"match_local_part", COND_MATCH_LIST, 2, CONF_LIST_LOCALPART},
    {"match_ip", COND_MATCH_LIST, 2, LIST_IP},
    {"inlist", COND_INLIST, 2, 0},
    {"inlisti", COND_INLIST, 2, CMP_CASELESS},
};

/* Exim's numeric form: optional sign, decimal digits, optional K/M/G; surrounding
 * blanks ignored; "" (or only blanks) is zero. */
static bool parse_number(const char *s, long long *out)
{
    int64_t v = 0;
    if (s[strspn(s, " \t\r\n\f\v")] && !parse_exim_integer(s, 10, &v))
        return false;
    *out = v;
    return true;
}

static bool compare_holds(int cmp, int variant)
{
    return (cmp < 0 && (variant & CMP_LT)) || (cmp == 0 && (variant & CMP_EQ)) ||
           (cmp > 0 && (variant & CMP_GT));
}

static enum expand_status eval_bool(struct expand_run *run, const char *arg, bool lax, bool *result)
{
    char *v = str_trim(arena_strdup(run->ctx->arena, arg));
    if (lax) {
        *result = !(!*v || str_ieq(v, "false") || str_ieq(v, "no") || strcmp(v, "0") == 0);
        return EXPAND_OK;
    }
    long long n;
    if (!*v || str_ieq(v, "false") || str_ieq(v, "no")) {
        *result = false;
    } else if (str_ieq(v, "true") || str_ieq(v, "yes")) {
        *result = true;
    } else if (strspn(v + (*v == '-'), "0123456789") == strlen(v + (*v == '-')) &&
               parse_number(v, &n)) {
        *result = n != 0;
    } else {
        return expand_fail(run, "unrecognised boolean value \"%s\" in \"bool\" condition", v);
    }
    return EXPAND_OK;
}

static enum expand_status eval_match(struct expand_run *run, const char *subject, const char *regex,
                                     bool *result)
{
    const char *err = NULL;
    enum regex_result r = expand_regex_match(run->ctx, regex, false, subject, &err);
    if (r == REGEX_BAD || r == REGEX_LIMIT)
        return expand_regex_status(run, r, "match", err);
    *result = r == REGEX_MATCH;
    return EXPAND_OK;
}

static enum expand_status eval_list(struct expand_run *run, int variant, const char *subject,
                                    const char *list, bool *result)
{
    const char *err = NULL;
    enum match_result r;
    if (variant == LIST_IP) {
        struct ip_addr ip;
        if (!ip_parse(subject, &ip))
            return expand_fail(run, "\"%s\" is not an IP address (in \"match_ip\")", subject);
        r = list_match_host_noexpand(run->ctx, list, subject, NULL, &err);
    } else {
        r = list_match_kind_noexpand(run->ctx, (enum conf_list_kind)variant, list, subject, &err);
    }
    switch (r) {
    case MATCH_YES:
        *result = true;
        return EXPAND_OK;
    case MATCH_NO:
        *result = false;
        return EXPAND_OK;
    case MATCH_DEFER:
        run->err = arena_printf(run->ctx->arena, "list match deferred: %s", err ? err : "");
        return EXPAND_DEFER;
    default:
        return expand_fail(run, "list match failed: %s", err ? err : "bad list");
    }
}

static bool eval_inlist(struct expand_ctx *ctx, const char *subject, const char *list,
                        bool caseless)
{
    const char **items = NULL;
    int n = list_split(ctx->arena, list, &items);
    for (int i = 0; i < n; i++) {
        if (caseless ? str_ieq(items[i], subject) : strcmp(items[i], subject) == 0) {
            ctx->value = items[i];
            return true;
        }
    }
    return false;
}

static enum expand_status eval_simple(struct expand_run *run, const struct cond_def *def,
                                      const char **args, bool *result)
{
    long long a, b;
    struct ip_addr ip;
    struct stat sb;
    switch (def->kind) {
    case COND_STRCMP: {
        int cmp =
            (def->variant & CMP_CASELESS) ? strcasecmp(args[0], args[1]) : strcmp(args[0], args[1]);
        *result = compare_holds(cmp, def->variant);
        return EXPAND_OK;
    }
    case COND_NUMERIC:
        if (!parse_number(args[0], &a))
            return expand_fail(run, "\"%s\" is not a number (in \"%s\")", args[0], def->name);
        if (!parse_number(args[1], &b))
            return expand_fail(run, "\"%s\" is not a number (in \"%s\")", args[1], def->name);
        *result = compare_holds(a < b ? -1 : a > b, def->variant);
        return EXPAND_OK;
    case COND_BOOL:
    case COND_BOOL_LAX:
        return eval_bool(run, args[0], def->kind == COND_BOOL_LAX, result);
    case COND_ISIP:
        *result = ip_parse(args[0], &ip) && strchr(args[0], '/') == NULL &&
                  (def->variant == 0 || (def->variant == 4) == (strchr(args[0], ':') == NULL));
        return EXPAND_OK;
    case COND_EXISTS:
        *result = stat(args[0], &sb) == 0;
        return EXPAND_OK;
    case COND_MATCH:
        return eval_match(run, args[0], args[1], result);
    case COND_MATCH_LIST:
        return eval_list(run, def->variant, args[0], args[1], result);
    case COND_INLIST:
        *result = eval_inlist(run->ctx, args[0], args[1], def->variant & CMP_CASELESS);
        return EXPAND_OK;
    }
    return expand_fail(run, "internal error: condition \"%s\"", def->name);
}

/* def:name - true when the variable is not empty; an unknown name is an error. */
static enum expand_status cond_def(struct expand_run *run, const char **pp, bool skip, bool *result)
{
    const char *p = *pp;
    if (*p != ':')
        return expand_fail(run, "\"def\" must be followed by \":\" and a variable name");
    p++;
    if (*p == '$')
        return expand_fail(run, "no \"$\" is needed after \"def:\"");
    char name[EXPAND_MAX_NAME];
    size_t n = 0;
    while (isalnum((unsigned char)*p) || *p == '_') {
        if (n + 1 >= sizeof name)
            return expand_fail(run, "variable name too long after \"def:\"");
        name[n++] = *p++;
    }
    name[n] = '\0';
    *pp = p;
    if (n == 0)
        return expand_fail(run, "missing variable name after \"def:\"");
    if (skip)
        return expand_check_var(run, name);
    const char *v = expand_resolve_var(run->ctx, name);
    if (!v)
        return expand_fail(run, "unknown variable \"%s\" after \"def:\"", name);
    *result = *v != '\0';
    return EXPAND_OK;
}

/* and{{c1}{c2}...} / or{{c1}{c2}...}: short-circuit, but every sub-condition is parsed. */
static enum expand_status cond_combine(struct expand_run *run, const char **pp, bool skip,
                                       bool is_and, bool *result)
{
    const char *name = is_and ? "and" : "or";
    enum expand_status st;
    bool decided = false;
    *result = is_and;
    expand_skip_space(pp);
    if (**pp != '{')
        return expand_fail(run, "missing \"{\" after \"%s\"", name);
    (*pp)++;
    for (;;) {
        expand_skip_space(pp);
        if (**pp == '}') {
            (*pp)++;
            return EXPAND_OK;
        }
        if (**pp != '{')
            return expand_fail(run, "each condition inside \"%s\" must be in braces", name);
        (*pp)++;
        bool r = false;
        if ((st = expand_condition(run, pp, skip || decided, &r)) != EXPAND_OK)
            return st;
        expand_skip_space(pp);
        if (**pp != '}')
            return expand_fail(run, "missing \"}\" after a condition inside \"%s\"", name);
        (*pp)++;
        if (!skip && !decided && r != is_and) {
            *result = r;
            decided = true;
        }
    }
}

/* Condition name: a word, or one of the symbolic numeric operators. */
static bool read_cond_name(const char **pp, char *name, size_t size)
{
    const char *p = *pp;
    size_t n = 0;
    if (isalpha((unsigned char)*p)) {
        while (isalnum((unsigned char)*p) || *p == '_') {
            if (n + 1 >= size)
                return false;
            name[n++] = *p++;
        }
    } else {
        while (n < 2 && (*p == '=' || *p == '<' || *p == '>'))
            name[n++] = *p++;
    }
    name[n] = '\0';
    *pp = p;
    return n > 0;
}

static enum expand_status cond_dispatch(struct expand_run *run, const char **pp, const char *name,
                                        bool skip, bool *result)
{
    if (strcmp(name, "def") == 0)
        return cond_def(run, pp, skip, result);
    if (strcmp(name, "and") == 0 || strcmp(name, "or") == 0)
        return cond_combine(run, pp, skip, name[0] == 'a', result);
    for (size_t i = 0; i < sizeof cond_table / sizeof cond_table[0]; i++) {
        const struct cond_def *def = &cond_table[i];
        if (strcmp(name, def->name) != 0)
            continue;
        const char *args[2] = {"", ""};
        for (int a = 0; a < def->nargs; a++) {
            bool regex = def->kind == COND_MATCH && a == 1;
            enum expand_status st = regex ? expand_arg_regex(run, pp, skip, def->name, &args[a])
                                          : expand_arg(run, pp, skip, def->name, &args[a]);
            if (st != EXPAND_OK)
                return st;
        }
        return skip ? EXPAND_OK : eval_simple(run, def, args, result);
    }
    return expand_fail(run, "unknown condition \"%s\"", name);
}

enum expand_status expand_condition(struct expand_run *run, const char **pp, bool skip,
                                    bool *result)
{
    struct expand_ctx *ctx = run->ctx;
    bool negate = false;
    expand_skip_space(pp);
    while (**pp == '!') {
        negate = !negate;
        (*pp)++;
        expand_skip_space(pp);
    }
    char name[EXPAND_MAX_NAME];
    if (!read_cond_name(pp, name, sizeof name))
        return expand_fail(run, "condition name expected near \"%.20s\"", *pp);
    if (++ctx->depth > EXPAND_MAX_DEPTH) {
        ctx->depth--;
        return expand_fail(run, "conditions nested too deeply");
    }
    bool r = false;
    enum expand_status st = cond_dispatch(run, pp, name, skip, &r);
    ctx->depth--;
    *result = negate ? !r : r;
    return st;
}
