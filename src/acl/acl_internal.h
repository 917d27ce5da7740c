/*
 * acl_internal.h - private to src/acl: the compiled form of the "begin acl" section and
 * the table of known conditions and modifiers shared by the compiler (acl_compile.c) and
 * the evaluator (acl_eval.c).
 *
 * Ownership: every struct here is allocated in the config arena by acl_compile() and is
 * immutable afterwards, so any worker may read it without locks while it holds the
 * config snapshot.
 */
#ifndef POSTERN_ACL_INTERNAL_H
#define POSTERN_ACL_INTERNAL_H

#include "postern/acl.h"
#include "postern/vars.h"

enum acl_verb {
    ACL_VERB_ACCEPT,
    ACL_VERB_DEFER,
    ACL_VERB_DENY,
    ACL_VERB_DISCARD,
    ACL_VERB_DROP,
    ACL_VERB_REQUIRE,
    ACL_VERB_WARN,
};

/* Every condition and modifier postern knows by name, supported or not. */
enum acl_item_kind {
    ACLI_ACL,
    ACLI_AUTHENTICATED,
    ACLI_CONDITION,
    ACLI_DOMAINS,
    ACLI_HOSTS,
    ACLI_LOCAL_PARTS,
    ACLI_SENDERS,
    ACLI_VERIFY,
    ACLI_ADD_HEADER,
    ACLI_CONTINUE,
    ACLI_CONTROL,
    ACLI_DELAY,
    ACLI_LOG_MESSAGE,
    ACLI_LOGWRITE,
    ACLI_MESSAGE,
    ACLI_SET,
    ACLI_UNSUPPORTED, /* a known Exim word this build refuses at startup */
};

/* Bit for enum acl_where, for the "where is this allowed" masks. */
#define ACL_WHERE_BIT(w) (1u << (unsigned)(w))
#define ACL_WHERE_ALL 0xffffffffu

struct acl_item_def {
    const char *name;
    enum acl_item_kind kind;
    bool modifier;       /* never negated; never "fails" */
    unsigned allowed;    /* ACL_WHERE_BIT mask of the ACLs where it may appear */
    const char *refusal; /* ACLI_UNSUPPORTED: why, e.g. "is not supported in this build" */
};

/* One compiled condition or modifier. */
struct acl_item {
    const struct acl_item_def *def;
    bool negated;
    const char *value;    /* raw text, expanded at run time ("" when none was given) */
    const char *set_name; /* ACLI_SET: the variable name, e.g. "acl_m_flag" */
    const char *file;
    int line;
    struct acl_item *next;
};

struct acl_stmt {
    enum acl_verb verb;
    const char *file;
    int line;
    struct acl_item *items;
    struct acl_stmt *next;
};

struct acl_def {
    const char *name;
    const char *file;
    int line;
    struct acl_stmt *stmts;
    struct acl_def *next;
};

/* struct acl_set (opaque in config.h): the compiled "begin acl" section. */
struct acl_set {
    struct acl_def *acls;
};

/* Table lookups (acl_compile.c). NULL when the word is unknown. */
const struct acl_item_def *acl_item_def_find(const char *name);

/* acl_eval.c: $acl_verify_message, which only message and log_message have (the registry
 * table of that context, include/postern/vars.h; chains to nothing). */
extern const struct var_table acl_message_vars;
bool acl_verb_parse(const char *word, enum acl_verb *verb);
const char *acl_verb_name(enum acl_verb verb);

/* The compiled ACL called `name`, or NULL. cfg may have no compiled ACLs (NULL). */
const struct acl_def *acl_def_find(const struct config *cfg, const char *name);

/* "recipient" / "sender" / "helo" => true and *what. */
bool acl_verify_parse(const char *text, enum acl_verify_what *what, const char **why);

/* Check a "set" variable name: acl_c or acl_m, then a digit or '_', then [A-Za-z0-9_]*. */
bool acl_varname_valid(const char *name);

#endif
