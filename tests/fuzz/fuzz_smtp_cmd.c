/*
 * fuzz_smtp_cmd.c - libFuzzer target for smtp_parse_command() and address_split().
 * The whole input is one command line. Beyond "no crash, no overread" it checks the
 * contract: OK leaves no reason and only non-NULL, control-free strings; a parsed path
 * re-splits to the same domain and, unquoted, the same local part; errors carry a one-line reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "postern/address.h"
#include "postern/smtp_cmd.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void check_clean(const char *s)
{
    CHECK(s != NULL);
    for (; *s; s++)
        CHECK((unsigned char)*s >= 0x20 || *s == '\t');
}

static void check_address(struct arena *arena, const struct smtp_command *cmd)
{
    check_clean(cmd->address);
    check_clean(cmd->local_part);
    check_clean(cmd->domain);
    if (!*cmd->address) {
        CHECK(cmd->verb == SMTP_VERB_MAIL); /* only MAIL may have the null path */
        CHECK(!*cmd->local_part && !*cmd->domain);
        return;
    }
    const char *local = NULL, *domain = NULL, *reason = NULL;
    CHECK(address_split(arena, cmd->address, &local, &domain, &reason));
    size_t local_len = strlen(local);
    CHECK(local_len > 0 && local_len <= 64);
    CHECK(strncmp(cmd->address, local, local_len) == 0);
    CHECK(strcmp(address_unquote(arena, local), cmd->local_part) == 0);
    CHECK(strcmp(domain, cmd->domain) == 0);
    if (*cmd->domain)
        CHECK(cmd->address[local_len] == '@');
    else
        CHECK(cmd->address[local_len] == '\0');
    /* quoting the unquoted local part gives a local part that unquotes to it again */
    const char *requoted = address_quote(arena, cmd->local_part);
    CHECK(strcmp(address_unquote(arena, requoted), cmd->local_part) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena arena;
    arena_init(&arena, 4096);
    struct smtp_command cmd;
    const char *reason = NULL;
    enum smtp_parse_status st = smtp_parse_command(&arena, (const char *)data, size, &cmd, &reason);
    CHECK(cmd.verb_text && cmd.arg && cmd.address && cmd.local_part && cmd.domain);
    if (st == SMTP_PARSE_OK) {
        CHECK(reason == NULL);
        CHECK(cmd.verb != SMTP_VERB_UNKNOWN);
        check_clean(cmd.verb_text);
        check_clean(cmd.arg);
        if (cmd.verb == SMTP_VERB_MAIL || cmd.verb == SMTP_VERB_RCPT)
            check_address(&arena, &cmd);
        if (cmd.unknown_param)
            check_clean(cmd.unknown_param);
        CHECK(!cmd.has_size || cmd.size >= 0);
        CHECK(cmd.bdat_size >= 0);
    } else {
        CHECK(st == SMTP_PARSE_SYNTAX || st == SMTP_PARSE_UNKNOWN_COMMAND);
        CHECK(reason != NULL && *reason != '\0');
        CHECK(strchr(reason, '\n') == NULL && strchr(reason, '\r') == NULL);
    }

    /* the address splitter on its own, over the input as a C string */
    char *copy = arena_strndup(&arena, (const char *)data, size);
    const char *local = NULL, *domain = NULL;
    reason = NULL;
    if (address_split(&arena, copy, &local, &domain, &reason))
        CHECK(local && domain && strlen(local) + strlen(domain) <= strlen(copy));
    else
        CHECK(reason != NULL);
    arena_reset(&arena);
    return 0;
}
