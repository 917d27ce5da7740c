/*
 * compilers.c - the one list of the modules that build a part of the configuration
 * snapshot from the parsed tree, in the order config_load() runs them.
 *
 * src/config parses and binds the main options; everything else in a snapshot (compiled
 * ACLs, routers and transports, and next TLS contexts, DNS/policy settings, lookup
 * handles) is built by the module that uses it, through its compile function listed
 * here. Adding a module's compiler is one line in this table. It is an ordinary table
 * of strong references rather than weak symbols or constructor/section registration so
 * that the static library always links every compiler it names, the order is visible,
 * and a compiler cannot be left out silently (see docs/architecture.md).
 *
 * Owns nothing; read-only data, used by the thread that loads a configuration.
 */
#include "config_internal.h"
#include "postern/acl.h"
#include "postern/deliver.h"

const struct config_compiler config_compilers[] = {
    {"acl", acl_compile},         /* begin acl -> cfg->acls */
    {"deliver", deliver_compile}, /* begin routers, begin transports -> cfg->deliver */
};

const size_t config_compilers_count = sizeof config_compilers / sizeof config_compilers[0];
