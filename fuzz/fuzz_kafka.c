/* fuzz_kafka.c - libFuzzer targets for the Kafka codec, one binary per
 * target (chosen with -DTARGET=...):
 *
 *   request   the request framer (kstream_request), fed in two pieces
 *   response  the response framer + rewriter (kstream_response) for an API
 *             and version taken from the first 4 bytes, fed in two pieces
 *   scan_<N>  ks_scan + kr_plan of API key N on one frame; the first 2
 *             bytes pick the version
 *
 * The properties: no crash, no over-read (ASan), and a rewritten frame
 * scans clean again with the same number of addresses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kframe.h"
#include "krewrite.h"
#include "kscan.h"
#include "kstream.h"
#include "kwire.h"

static int lookup(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out)
{
    (void)ctx;
    (void)frame;
    if (a->node_id % 7 == 3) return KR_PENDING;
    out->host = "public.example.com";
    out->host_len = 18;
    out->port = 40000 + a->node_id % 1000;
    return KR_DONE;
}

static int sink(void *ctx, const uint8_t *p, size_t len, void *owned)
{
    (void)ctx;
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i += 4096) x ^= p[i];
    free(owned);
    return 0;
}

#if defined(TARGET_REQUEST)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kstream_t ks;
    kstream_init(&ks, 1 << 20);
    size_t cut = size ? data[0] % (size + 1) : 0;
    if (kstream_request(&ks, data, cut) == 0) kstream_request(&ks, data + cut, size - cut);
    kstream_free(&ks);
    return 0;
}
#elif defined(TARGET_RESPONSE)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) return 0;
    kstream_t ks;
    kstream_init(&ks, 1 << 20);
    ks.lookup = lookup;
    ks.emit = sink;
    static const int16_t apis[] = {0, 1, 3, 10, 18, 55, 60, 78, 79, 8};
    /* Four requests of one API whose correlation id is the first frame's. */
    kf_req_t r = {.api_key = apis[data[0] % 10], .api_version = (int16_t)(data[1] % 20),
                  .corr_id = size >= 12 ? (int32_t)kw_be32(data + 8) : 0, .expects_response = 1};
    for (int i = 0; i < 4; i++) kf_queue_push(&ks.queue, &r);
    size_t cut = data[2] % (size - 4 + 1);
    const uint8_t *p = data + 4;
    size_t n = size - 4;
    ssize_t used = kstream_response(&ks, p, cut);
    if (used >= 0 && (size_t)used == cut) kstream_response(&ks, p + cut, n - cut);
    kstream_free(&ks);
    return 0;
}
#elif defined(TARGET_SCAN)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int16_t version = (int16_t)(kw_be16(data) % 20);
    size_t len = size - 2 + 4;
    uint8_t *frame = malloc(len);
    kw_put32(frame, (uint32_t)(size - 2));
    memcpy(frame + 4, data + 2, size - 2);
    ks_scan_t s = {0};
    kr_plan_t plan = {0};
    if (ks_scan(&s, TARGET_SCAN, version, frame, len) == 0 &&
        kr_plan(&plan, &s, frame, len, 1 << 24, lookup, NULL) == KR_DONE && plan.n > 0) {
        size_t out_len = kr_output_len(&plan, len);
        uint8_t *out = malloc(out_len);
        kr_materialize(&plan, frame, len, out);
        uint32_t n = s.n_addrs;
        if (TARGET_SCAN != KAFKA_API_VERSIONS) {
            /* The rewrite is a valid frame of the same shape. */
            if (ks_scan(&s, TARGET_SCAN, version, out, out_len) != 0 || s.n_addrs != n) abort();
        }
        free(out);
    }
    ks_free(&s);
    kr_free(&plan);
    free(frame);
    return 0;
}
#else
#error "define TARGET_REQUEST, TARGET_RESPONSE or TARGET_SCAN=<api key>"
#endif
