/* kstream.c - see kstream.h. */
#include "kstream.h"

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kwire.h"

enum { R_HEADER, R_PASS, R_DISCARD, R_BUFFER };

/* Request fields kf_request may need: header + ClientId + tags + TransactionalId + Acks. */
#define PEEK_MAX (8 + 2 + 32767 + 16 + 5 + 32767 + 2)

void kstream_init(kstream_t *ks, uint32_t max_frame)
{
    memset(ks, 0, sizeof *ks);
    ks->max_frame = max_frame;
    kf_queue_init(&ks->queue);
}

void kstream_free(kstream_t *ks)
{
    free(ks->peek);
    free(ks->frame);
    ks_free(&ks->scan);
    kr_free(&ks->plan);
    kf_queue_free(&ks->queue);
    ks->peek = NULL;
    ks->peek_cap = 0;
    ks->frame = NULL;
}

static int fail(kstream_t *ks, int rc, const char *why)
{
    ks->error = why;
    return rc;
}

/* ---- requests ------------------------------------------------------------ */

static int request_header(kstream_t *ks, const uint8_t *body, size_t avail)
{
    kf_req_t r;
    int rc = kf_request(body, avail, ks->req_size, &r);
    if (rc != 0) return rc;
    if (r.api_key == KAFKA_SASL_HANDSHAKE && r.api_version == 0) r.intercept = 1;
    if (ks->on_request) ks->on_request(ks->request_ctx, &r);
    rc = kf_queue_push(&ks->queue, &r);
    if (rc == KF_DUPLICATE) {
        snprintf(ks->errbuf, sizeof ks->errbuf,
                 "request (api %d v%d) reuses correlation id %d, still in flight", r.api_key,
                 r.api_version, r.corr_id);
        return fail(ks, KF_BAD, ks->errbuf);
    }
    if (rc != 0)
        return fail(ks, KF_BAD, ks->queue.count == KF_QUEUE_MAX ? "too many requests in flight"
                                                                : "out of memory for the request queue");
    return 0;
}

/* Requests pass through untouched; only their first bytes are copied into
 * `peek` (in growing steps, so a typical 50-byte header costs one small
 * copy) until the header parses. */
int kstream_request(kstream_t *ks, const uint8_t *p, size_t len)
{
    while (len > 0) {
        if (ks->req_left > 0) {
            size_t n = len < ks->req_left ? len : ks->req_left;
            ks->req_left -= (uint32_t)n;
            p += n;
            len -= n;
            continue;
        }
        size_t need = ks->peek_need ? ks->peek_need : 4;
        size_t step = ks->peek_len < 64 ? 64 : ks->peek_len;
        size_t take = need - ks->peek_len;
        if (take > step) take = step;
        if (take > len) take = len;
        if (ks->peek_len + take > ks->peek_cap) {
            /* Grown as needed: an idle connection keeps a small buffer. */
            size_t cap = ks->peek_cap ? ks->peek_cap : 256;
            while (cap < ks->peek_len + take) cap *= 2;
            if (cap > PEEK_MAX) cap = PEEK_MAX;
            uint8_t *np = realloc(ks->peek, cap);
            if (np == NULL) return fail(ks, KF_BAD, "out of memory");
            ks->peek = np;
            ks->peek_cap = cap;
        }
        memcpy(ks->peek + ks->peek_len, p, take);
        ks->peek_len += take;
        p += take;
        len -= take;
        if (ks->peek_need == 0) {
            if (ks->peek_len < 4) continue;
            uint32_t size;
            if (kf_size(ks->peek, 4, ks->max_frame, &size) != 0)
                return fail(ks, KF_BAD, kf_looks_like_tls(ks->peek, 4)
                                            ? "client speaks TLS to a plaintext port"
                                            : "request size is negative or over the cap");
            ks->req_size = size;
            ks->peek_need = 4 + (size < PEEK_MAX - 4 ? size : PEEK_MAX - 4);
            continue;
        }
        int rc = request_header(ks, ks->peek + 4, ks->peek_len - 4);
        if (rc == KF_NEED_MORE && ks->peek_len < ks->peek_need) continue;
        if (rc != 0) return fail(ks, KF_BAD, ks->error ? ks->error : "malformed request header");
        ks->req_left = ks->req_size - (uint32_t)(ks->peek_len - 4);
        ks->peek_len = 0;
        ks->peek_need = 0;
    }
    return 0;
}

/* ---- responses ------------------------------------------------------------ */

size_t kstream_sasl_v0_refusal(int32_t corr, uint8_t out[14])
{
    kw_put32(out, 10);
    kw_put32(out + 4, (uint32_t)corr);
    kw_put16(out + 8, 35);        /* UNSUPPORTED_VERSION */
    kw_put32(out + 10, 0);        /* Mechanisms: empty array */
    return 14;
}

static int emit_copy(kstream_t *ks, const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n);
    if (c == NULL) return fail(ks, KF_BAD, "out of memory");
    memcpy(c, p, n);
    return ks->emit(ks->emit_ctx, c, n, c) < 0 ? fail(ks, KF_BAD, "output failed") : 0;
}

/* The buffered frame is complete: scan it once, then plan and emit. */
static int finish_frame(kstream_t *ks)
{
    int rc = ks_scan(&ks->scan, ks->cur.api_key, ks->cur.api_version, ks->frame, ks->frame_len);
    if (rc == KS_UNSUPPORTED) return fail(ks, rc, "response version newer than the codec knows");
    if (rc != 0) return fail(ks, KF_BAD, "malformed response");
    return kstream_resume(ks);
}

int kstream_resume(kstream_t *ks)
{
    int rc = kr_plan(&ks->plan, &ks->scan, ks->frame, ks->frame_len, ks->max_frame, ks->lookup,
                     ks->lookup_ctx);
    if (rc == KR_PENDING) {
        ks->pending = 1;
        return KR_PENDING;
    }
    ks->pending = 0;
    if (rc != KR_DONE) return fail(ks, KF_BAD, "cannot rewrite response");
    uint8_t *out = ks->frame;
    size_t n = ks->frame_len;
    if (ks->plan.n > 0) {
        n = kr_output_len(&ks->plan, ks->frame_len);
        out = malloc(n);
        if (out == NULL) return fail(ks, KF_BAD, "out of memory");
        kr_materialize(&ks->plan, ks->frame, ks->frame_len, out);
        free(ks->frame);
        ks->frames_rewritten++;
    } else {
        ks->frames_passed++;
    }
    if (ks->on_response) ks->on_response(ks->request_ctx, &ks->cur, ks->plan.n > 0);
    ks->frame = NULL;
    ks->rstate = R_HEADER;
    /* Ownership of the frame (or its rewrite) goes to the writer. */
    return ks->emit(ks->emit_ctx, out, n, out) < 0 ? fail(ks, KF_BAD, "output failed") : KR_DONE;
}

/* A response header (size, correlation id) is known: match and dispatch. */
static int start_response(kstream_t *ks, const uint8_t *hdr, const uint8_t *in_input)
{
    uint32_t size;
    if (kf_size(hdr, 8, ks->max_frame, &size) != 0)
        return fail(ks, KF_BAD, kf_looks_like_tls(hdr, 8)
                                    ? "broker answered with TLS: it expects a TLS client"
                                    : "response size is negative or over the cap");
    if (size < 4) return fail(ks, KF_BAD, "response too short");
    int32_t corr = (int32_t)kw_be32(hdr + 4);
    if (kf_queue_match(&ks->queue, corr, &ks->cur) != 0) {
        const kf_req_t *old = ks->queue.count ? &ks->queue.items[ks->queue.head] : NULL;
        snprintf(ks->errbuf, sizeof ks->errbuf,
                 "response correlation id %d does not match the oldest request (%s %d, api %d v%d)",
                 corr, old ? "correlation id" : "none", old ? old->corr_id : 0,
                 old ? old->api_key : -1, old ? old->api_version : -1);
        return fail(ks, KF_BAD, ks->errbuf);
    }
    if (ks->on_response && !ks_needs_scan(ks->cur.api_key, ks->cur.api_version))
        ks->on_response(ks->request_ctx, &ks->cur, ks->cur.intercept);
    if (ks->cur.intercept) {
        uint8_t r[14];
        kstream_sasl_v0_refusal(corr, r);
        ks->pass_left = size - 4;
        ks->rstate = ks->pass_left ? R_DISCARD : R_HEADER;
        return emit_copy(ks, r, sizeof r);
    }
    if (ks_needs_scan(ks->cur.api_key, ks->cur.api_version)) {
        ks->frame_len = (size_t)size + 4;
        ks->frame = malloc(ks->frame_len);
        if (ks->frame == NULL) return fail(ks, KF_BAD, "out of memory");
        memcpy(ks->frame, hdr, 8);
        ks->frame_have = 8;
        ks->rstate = R_BUFFER;
        return ks->frame_have == ks->frame_len ? finish_frame(ks) : 0;
    }
    ks->pass_left = size - 4;
    ks->rstate = ks->pass_left ? R_PASS : R_HEADER;
    if (in_input) return ks->emit(ks->emit_ctx, in_input, 8, NULL) < 0 ? KF_BAD : 0;
    return emit_copy(ks, hdr, 8);
}

int kstream_response_buffer(kstream_t *ks, uint8_t **p, size_t *len)
{
    if (ks->rstate != R_BUFFER || ks->pending) return 0;
    size_t left = ks->frame_len - ks->frame_have;
    if (left < 16384) return 0; /* small remainders: one pooled read is as good */
    *p = ks->frame + ks->frame_have;
    *len = left;
    return 1;
}

ssize_t kstream_response(kstream_t *ks, const uint8_t *p, size_t len)
{
    size_t used = 0;
    while (used < len && !ks->pending) {
        const uint8_t *in = p + used;
        size_t left = len - used;
        int rc = 0;
        switch (ks->rstate) {
        case R_HEADER:
            if (ks->hdr_len == 0 && left >= 8) {
                used += 8;
                rc = start_response(ks, in, in);
            } else {
                size_t take = 8 - ks->hdr_len < left ? 8 - ks->hdr_len : left;
                memcpy(ks->hdr + ks->hdr_len, in, take);
                ks->hdr_len += take;
                used += take;
                if (ks->hdr_len == 8) {
                    ks->hdr_len = 0;
                    rc = start_response(ks, ks->hdr, NULL);
                } else if (ks->hdr_len >= 4) {
                    uint32_t size; /* reject a bad size before waiting for more */
                    if (kf_size(ks->hdr, 4, ks->max_frame, &size) != 0)
                        rc = fail(ks, KF_BAD, kf_looks_like_tls(ks->hdr, ks->hdr_len)
                                                  ? "broker answered with TLS: it expects a TLS client"
                                                  : "response size is negative or over the cap");
                }
            }
            break;
        case R_PASS:
        case R_DISCARD: {
            size_t n = left < ks->pass_left ? left : ks->pass_left;
            if (ks->rstate == R_PASS && ks->emit(ks->emit_ctx, in, n, NULL) < 0)
                rc = fail(ks, KF_BAD, "output failed");
            ks->pass_left -= (uint32_t)n;
            used += n;
            if (ks->pass_left == 0) ks->rstate = R_HEADER;
            break;
        }
        case R_BUFFER: {
            size_t n = ks->frame_len - ks->frame_have;
            if (n > left) n = left;
            if (in != ks->frame + ks->frame_have) /* not read in place */
                memcpy(ks->frame + ks->frame_have, in, n);
            ks->frame_have += n;
            used += n;
            if (ks->frame_have == ks->frame_len) rc = finish_frame(ks);
            break;
        }
        }
        if (rc < 0) return rc;
    }
    return (ssize_t)used;
}
