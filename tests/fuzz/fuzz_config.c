/*
 * fuzz_config.c - libFuzzer target for the configuration reader, parser and main-option
 * binder (src/config). The input is configuration text; .include is disabled so the fuzzer
 * never reads the disk. A -D macro is supplied so the override path is exercised. When the
 * text parses, the main options are bound and printed as -bP would.
 */
#include "../../src/config/config_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena arena;
    arena_init(&arena, 0);
    char err[512];
    struct conf_macro dmacro = {"FUZZ_D", "from -D", NULL};
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.arena = &arena;
    cfg.source = "fuzz";
    if (conf_parse_text_flags(&arena, (const char *)data, size, "fuzz", &dmacro,
                              CONF_PARSE_NO_INCLUDE, &cfg.tree, err, sizeof err)) {
        if (config_bind_main(&cfg, err, sizeof err)) {
            struct buf out;
            buf_init(&out);
            config_print_option(&cfg, NULL, &out);
            buf_free(&out);
        }
    } else if (!strchr(err, ':')) {
        abort(); /* every parse error names file:line */
    }
    arena_reset(&arena);
    return 0;
}
