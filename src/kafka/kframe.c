/* kframe.c - see kframe.h. */
#include "kframe.h"

#include <stdlib.h>

#include "kwire.h"

int kf_size(const uint8_t *buf, size_t len, uint32_t max, uint32_t *size)
{
    if (len < 4) return KF_NEED_MORE;
    int32_t s = (int32_t)kw_be32(buf);
    if (s < 0 || (uint32_t)s > max) return KF_BAD;
    *size = (uint32_t)s;
    return 0;
}

int kf_looks_like_tls(const uint8_t *buf, size_t len)
{
    return len >= 3 && (buf[0] == 0x15 || buf[0] == 0x16) && buf[1] == 0x03 && buf[2] <= 0x04;
}

int kf_flexible_response(int16_t key, int16_t v)
{
    switch (key) {
    case KAFKA_PRODUCE: return v >= 9;
    case KAFKA_FETCH: return v >= 12;
    case KAFKA_METADATA: return v >= 9;
    case KAFKA_FIND_COORDINATOR: return v >= 3;
    case KAFKA_DESCRIBE_QUORUM:
    case KAFKA_DESCRIBE_CLUSTER:
    case KAFKA_SHARE_FETCH:
    case KAFKA_SHARE_ACKNOWLEDGE: return 1;
    default: return 0; /* ApiVersions included: header v0 always (KIP-511) */
    }
}

int kf_request(const uint8_t *body, size_t avail, size_t frame_len, kf_req_t *out)
{
    if (avail > frame_len) avail = frame_len;
    kw_cur c = kw_init(body, avail);
    out->api_key = kw_i16(&c);
    out->api_version = kw_i16(&c);
    out->corr_id = kw_i32(&c);
    out->expects_response = 1;
    out->intercept = 0;
    out->seen_us = 0;
    if (!c.err && out->api_key == KAFKA_PRODUCE && out->api_version >= 0) {
        /* §5: header v1 (v0-8) or v2 (v9+), then TransactionalId (v3+), Acks. */
        int flex = out->api_version >= 9;
        kw_skip_string(&c, 0, 1); /* ClientId is never compact */
        if (flex) kw_skip_tags(&c);
        if (out->api_version >= 3) kw_skip_string(&c, flex, 1);
        int16_t acks = kw_i16(&c);
        if (!c.err && acks == 0) out->expects_response = 0;
    }
    if (c.err) return avail < frame_len ? KF_NEED_MORE : KF_BAD;
    return 0;
}

void kf_queue_init(kf_queue_t *q)
{
    q->items = NULL;
    q->head = 0;
    q->count = 0;
    q->cap = 0;
}

void kf_queue_free(kf_queue_t *q)
{
    free(q->items);
    kf_queue_init(q);
}

static kf_req_t *queue_at(const kf_queue_t *q, uint32_t i)
{
    return &q->items[(q->head + i) % q->cap];
}

/* Doubles the ring (up to KF_QUEUE_MAX), its entries moved to the start in
 * order. Returns 0, or KF_BAD when out of memory. */
static int queue_grow(kf_queue_t *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : KF_QUEUE_MIN;
    if (cap > KF_QUEUE_MAX) cap = KF_QUEUE_MAX;
    kf_req_t *items = malloc(cap * sizeof *items);
    if (items == NULL) return KF_BAD;
    for (uint32_t i = 0; i < q->count; i++) items[i] = *queue_at(q, i);
    free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = cap;
    return 0;
}

int kf_queue_push(kf_queue_t *q, const kf_req_t *r)
{
    for (uint32_t i = 0; i < q->count; i++)
        if (queue_at(q, i)->corr_id == r->corr_id) return KF_DUPLICATE;
    if (q->count == KF_QUEUE_MAX && !q->items[q->head].expects_response) {
        q->head = (q->head + 1) % q->cap; /* an acks=0 entry nobody answered */
        q->count--;
    }
    if (q->count == KF_QUEUE_MAX) return KF_BAD;
    if (q->count == q->cap && queue_grow(q) != 0) return KF_BAD;
    *queue_at(q, q->count) = *r;
    q->count++;
    return 0;
}

int kf_queue_match(kf_queue_t *q, int32_t corr_id, kf_req_t *out)
{
    uint32_t i = 0;
    while (i < q->count && queue_at(q, i)->corr_id != corr_id) {
        if (queue_at(q, i)->expects_response) return KF_BAD; /* it would be skipped */
        i++;
    }
    if (i == q->count) return KF_BAD;
    *out = *queue_at(q, i);
    q->head = (q->head + i + 1) % q->cap;
    q->count -= i + 1;
    return 0;
}
