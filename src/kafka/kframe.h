/* kframe.h - Kafka stream framing and request headers (protocol README §1,
 * §2, §5), with the per-connection correlation queue.
 *
 * Parsers follow the picohttpparser contract: they never allocate, never
 * read past `len`, and answer "need more" (KF_NEED_MORE) or "malformed"
 * (KF_BAD) instead of guessing. Nothing is copied: a frame is a size prefix
 * and a view into the caller's buffer. */
#ifndef BORE_KFRAME_H
#define BORE_KFRAME_H

#include <stddef.h>
#include <stdint.h>

#define KF_MAX_FRAME_DEFAULT (100u * 1024 * 1024) /* broker socket.request.max.bytes */
#define KF_QUEUE_MAX 1024                         /* in-flight requests per connection */

enum { KF_DUPLICATE = -3, KF_NEED_MORE = -2, KF_BAD = -1 };

enum {
    KAFKA_PRODUCE = 0,
    KAFKA_FETCH = 1,
    KAFKA_METADATA = 3,
    KAFKA_FIND_COORDINATOR = 10,
    KAFKA_SASL_HANDSHAKE = 17,
    KAFKA_API_VERSIONS = 18,
    KAFKA_SASL_AUTHENTICATE = 36,
    KAFKA_DESCRIBE_QUORUM = 55,
    KAFKA_DESCRIBE_CLUSTER = 60,
    KAFKA_SHARE_FETCH = 78,
    KAFKA_SHARE_ACKNOWLEDGE = 79,
};

/* Reads the INT32 size prefix at buf[0..len). Returns 0 and sets *size, or
 * KF_NEED_MORE (fewer than 4 bytes), or KF_BAD for a negative size or one
 * over `max` - decided before any of the body is awaited. */
int kf_size(const uint8_t *buf, size_t len, uint32_t max, uint32_t *size);

/* 1 if buf starts like a TLS record (handshake 0x16 or alert 0x15, version
 * 3.x): a TLS peer on a plaintext connection. Such a "size" is always over
 * any sane cap, so this only refines the error message. */
int kf_looks_like_tls(const uint8_t *buf, size_t len);

typedef struct {
    int16_t api_key;
    int16_t api_version;
    int32_t corr_id;
    int expects_response; /* 0 only for Produce with acks=0: no response is due */
    int intercept;        /* the codec answers it itself (SaslHandshake v0) */
    uint32_t seen_us;     /* the owner's clock when the request was seen (metrics), mod 2^32 */
} kf_req_t;

/* Parses a request header from a request body (the bytes after the size),
 * of which `avail` are in memory out of `frame_len`. For Produce it also
 * reads Acks. Returns 0; KF_NEED_MORE if avail < frame_len and the fields
 * are not all there yet; KF_BAD if the frame is too short or malformed. */
int kf_request(const uint8_t *body, size_t avail, size_t frame_len, kf_req_t *out);

/* 1 if responses of this API/version use the flexible header (v1, with
 * tagged fields). ApiVersions always answers with header v0. Only defined
 * for the APIs the codec rewrites; others answer 0. */
int kf_flexible_response(int16_t api_key, int16_t api_version);

/* The correlation queue: requests in the order they were sent. A request
 * that expects no response (acks=0) is queued too, as optional: Kafka never
 * answers it, but some brokers (librdkafka's mock) do, and the answer must
 * still find its request. When the queue is full, the oldest optional entry
 * makes room.
 *
 * Invariant: no response reaches a client unless it is matched to the
 * request it answers. Correlation ids in the queue are therefore unique: a
 * request reusing an id still queued (optional entries included) is refused,
 * so a response's id names exactly one request, and matching never guesses.
 * A response may only skip optional entries ahead of its own request; a
 * request that expects a response and is skipped is an error.
 *
 * The ring is allocated on the first push and doubles from KF_QUEUE_MIN
 * entries up to KF_QUEUE_MAX: most connections keep a few requests in
 * flight, and an idle one should not hold 20 KiB of entries. */
#define KF_QUEUE_MIN 8
typedef struct {
    kf_req_t *items; /* cap entries, NULL until the first push */
    uint32_t head, count, cap;
} kf_queue_t;

void kf_queue_init(kf_queue_t *q);
void kf_queue_free(kf_queue_t *q);
/* Returns 0; KF_DUPLICATE when a queued request has r's correlation id;
 * KF_BAD when KF_QUEUE_MAX requests that expect a response are already in
 * flight, or when the ring cannot grow (out of memory). */
int kf_queue_push(kf_queue_t *q, const kf_req_t *r);
/* Finds the request with the response's correlation id, provided only
 * optional entries are queued before it; drops those and removes it into
 * *out. Returns 0, or KF_BAD (nothing removed) if no request matches in
 * order. */
int kf_queue_match(kf_queue_t *q, int32_t corr_id, kf_req_t *out);

#endif
