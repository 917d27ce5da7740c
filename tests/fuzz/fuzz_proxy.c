/*
 * fuzz_proxy.c - libFuzzer target for proxy_parse(). Beyond "no crash, no overread" it
 * checks the parser's contract on every input: a complete header is self-delimiting
 * (its exact bytes parse the same, one byte fewer asks for more), consumed never exceeds
 * the input or the protocol maxima, errors carry a reason, and every string field of the
 * result is NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "postern/proxy.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define CHECK_TERMINATED(field) CHECK(memchr((field), '\0', sizeof(field)) != NULL)

static void check_strings(const struct proxy_result *r)
{
    CHECK_TERMINATED(r->src_addr);
    CHECK_TERMINATED(r->dst_addr);
    CHECK_TERMINATED(r->alpn);
    CHECK_TERMINATED(r->authority);
    CHECK_TERMINATED(r->ssl_version);
    CHECK_TERMINATED(r->ssl_cn);
    CHECK_TERMINATED(r->ssl_cipher);
    CHECK_TERMINATED(r->ssl_sig_alg);
    CHECK_TERMINATED(r->ssl_key_alg);
    CHECK_TERMINATED(r->netns);
    CHECK_TERMINATED(r->reason);
    CHECK(r->unique_id_len <= sizeof r->unique_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proxy_result r, again; /* large: keep them off the fuzzer's stack */
    enum proxy_status st = proxy_parse(data, size, &r);
    check_strings(&r);
    switch (st) {
    case PROXY_OK:
        CHECK(r.consumed > 0 && r.consumed <= size);
        CHECK(r.version == 1 || r.version == 2);
        CHECK(r.version != 1 || r.consumed <= PROXY_V1_MAX_LEN);
        CHECK(r.consumed <= PROXY_V2_MAX_LEN);
        CHECK(r.family >= PROXY_FAMILY_UNSPEC && r.family <= PROXY_FAMILY_UNIX);
        CHECK(proxy_parse(data, r.consumed, &again) == PROXY_OK);
        CHECK(again.consumed == r.consumed);
        CHECK(strcmp(again.src_addr, r.src_addr) == 0);
        CHECK(proxy_parse(data, r.consumed - 1, &again) == PROXY_NEED_MORE);
        break;
    case PROXY_NEED_MORE:
        CHECK(size < PROXY_V2_MAX_LEN);
        CHECK(r.reason[0] == '\0');
        break;
    case PROXY_ERROR:
        CHECK(r.reason[0] != '\0');
        break;
    default:
        abort();
    }
    return 0;
}
