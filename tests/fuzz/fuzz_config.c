/*
 * fuzz_config.c - libFuzzer target for the whole configuration load (src/config and the
 * compilers it runs): reader, parser, main-option binder, then every compiler in
 * src/config/compilers.c (ACLs, routers, transports) into a real snapshot, as -bV and a
 * reload do. The input is configuration text; .include is disabled so the fuzzer never
 * reads the disk. A -D macro is supplied so the override path is exercised. A config
 * that loads is printed as -bP would and freed (cleanup hooks included); every error must
 * start with "fuzz:" and a line number. One thread.
 */
#include "../../src/config/config_internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    struct conf_macro dmacro = {"FUZZ_D", "from -D", NULL};
    err[0] = '\0';
    struct config *cfg = config_load_text_flags((const char *)data, size, "fuzz", &dmacro,
                                                CONF_PARSE_NO_INCLUDE, err, sizeof err);
    if (!cfg) {
        /* every load error names file:line */
        if (strncmp(err, "fuzz:", 5) != 0 || !isdigit((unsigned char)err[5]))
            abort();
        return 0;
    }
    struct buf out;
    buf_init(&out);
    config_print_option(cfg, NULL, &out);
    buf_free(&out);
    config_free(cfg);
    return 0;
}
