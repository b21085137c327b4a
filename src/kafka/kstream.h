/* kstream.h - one Kafka connection as the proxy sees it: requests are
 * inspected on their way to the broker (never held, never copied), and
 * responses are framed, matched to their requests, and either streamed
 * through untouched or buffered, scanned and rewritten.
 *
 *   client --requests--> kstream_request() (peek) ------------> broker
 *   client <-- emit() <-- kstream_response() (frame, match, rewrite) <--
 *
 * Responses of APIs that carry no address are never buffered: their bytes
 * are emitted as they arrive, as views of the caller's input. A response
 * that must be rewritten is buffered (up to max_frame), scanned once, and
 * emitted whole: the very buffer when nothing changed, or a rewritten copy.
 * If an address is not known yet the frame waits (KR_PENDING): nothing
 * behind it is emitted, so responses stay in order, and kstream_resume()
 * continues from the scan without parsing again. */
#ifndef BORE_KSTREAM_H
#define BORE_KSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kframe.h"
#include "krewrite.h"
#include "kscan.h"

/* Output: `len` bytes at `p`. If `owned` is non-NULL it is a malloc'd block
 * containing p that the callee now owns (free it after writing); if NULL, p
 * points into the input passed to kstream_response and is valid only during
 * that call. Returns 0, or < 0 to stop. */
typedef int (*kstream_emit_fn)(void *ctx, const uint8_t *p, size_t len, void *owned);

/* Told about each request as its header is read; may mark it for the
 * codec to answer itself (see kstream_t.intercept). */
typedef void (*kstream_request_fn)(void *ctx, kf_req_t *req);

/* Told about each response as it is released to the client (its first
 * bytes emitted), with the request it answers; `rewritten` when the codec
 * changed it. */
typedef void (*kstream_response_fn)(void *ctx, const kf_req_t *req, int rewritten);

typedef struct {
    uint32_t max_frame;
    kr_lookup_fn lookup;
    void *lookup_ctx;
    kstream_emit_fn emit;
    void *emit_ctx;
    kstream_request_fn on_request;
    void *request_ctx;
    kstream_response_fn on_response; /* may be NULL; called with request_ctx */
    const char *error; /* set on failure: a human-readable reason */
    char errbuf[160];

    kf_queue_t queue;

    /* request side */
    uint32_t req_left;   /* bytes of the current request still to pass */
    uint8_t *peek;       /* a request's first bytes, when split across reads */
    size_t peek_len, peek_need, peek_cap; /* peek grows as a header needs, up to PEEK_MAX */
    uint32_t req_size;

    /* response side */
    int rstate;
    uint8_t hdr[8];
    size_t hdr_len;
    uint32_t pass_left;
    kf_req_t cur;
    uint8_t *frame;
    size_t frame_len, frame_have;
    ks_scan_t scan;
    kr_plan_t plan;
    int pending; /* a frame waits for kstream_resume() */

    uint64_t frames_rewritten, frames_passed;
} kstream_t;

void kstream_init(kstream_t *ks, uint32_t max_frame);
void kstream_free(kstream_t *ks);

/* Inspects client->broker bytes (all of them are to be forwarded as they
 * are). Returns 0, or KF_BAD with ks->error set. */
int kstream_request(kstream_t *ks, const uint8_t *p, size_t len);

/* Feeds broker->client bytes. Returns the bytes consumed: len, or fewer
 * when a frame waits for an address (ks->pending; feed the rest after
 * kstream_resume returns KR_DONE). Negative (KF_BAD, KS_UNSUPPORTED) with
 * ks->error set on a fatal error for this connection. */
ssize_t kstream_response(kstream_t *ks, const uint8_t *p, size_t len);

/* While a large response is being buffered, where the next bytes of it
 * belong: the caller may read straight into *p (up to *len bytes) and then
 * pass that same pointer to kstream_response, which skips the copy.
 * Returns 0 when there is no such frame (or too little of it left). */
int kstream_response_buffer(kstream_t *ks, uint8_t **p, size_t *len);

/* Retries the waiting frame: KR_DONE (emitted), KR_PENDING, or < 0. */
int kstream_resume(kstream_t *ks);

/* A SaslHandshake v0 answer of UNSUPPORTED_VERSION (error 35, no
 * mechanisms) for correlation id `corr`: 14 bytes written to out. */
size_t kstream_sasl_v0_refusal(int32_t corr, uint8_t out[14]);

#endif
