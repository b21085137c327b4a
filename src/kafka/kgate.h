/* kgate.h - kafka-proxy's authentication gate: one per client connection,
 * in front of the codec (kstream.h) on the client -> broker direction.
 *
 * Until the client has authenticated, the gate reads every request itself
 * and nothing it is given is passed on: **no byte from an unauthenticated
 * client reaches a broker**. It answers ApiVersions (from the versions the
 * cluster announced at start-up, capped like the codec caps them, plus
 * SaslHandshake 0-1 and SaslAuthenticate 0-2), SaslHandshake v0-v1 and
 * SaslAuthenticate v0-v2 (KIP-43, KIP-152), and runs the mechanism
 * (ksasl.h). A SaslHandshake v0 is followed by raw size-prefixed tokens, as
 * Kafka does.
 *
 * Failures, as a Kafka broker answers them: wrong credentials get
 * SASL_AUTHENTICATION_FAILED (58) with a generic message, an unknown or
 * disabled mechanism UNSUPPORTED_SASL_MECHANISM (33) with the enabled list,
 * a SASL request out of order ILLEGAL_SASL_STATE (34); any other request,
 * a malformed frame or one over 512 KiB closes the connection. Every
 * failure is answered after the same fixed delay (a libuv timer, the loop
 * never blocks), logged with the connection and the reason (never a
 * password), and the connection closes shortly after. Authentication must
 * finish within the deadline.
 *
 * After success the gate steps aside: kgate_input consumes the bytes up to
 * the end of the last SASL request and the caller hands the rest (and
 * everything after) to the codec. */
#ifndef BORE_KGATE_H
#define BORE_KGATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ksasl.h"

#define KGATE_FRAME_MAX (512u * 1024) /* pre-authentication request cap (with its size) */
#define KGATE_DELAY_MS 150            /* before every failure answer */
#define KGATE_GRACE_MS 1000           /* after a failure answer, before closing */
#define KGATE_DEADLINE_MS 10000
#define KGATE_APIS_MAX 256

typedef struct {
    int16_t key, min, max;
} kgate_api_t;

typedef struct {
    const ksasl_store_t *store;
    int plain;            /* offer PLAIN */
    unsigned deadline_ms; /* 0: KGATE_DEADLINE_MS */
    const kgate_api_t *apis; /* the cluster's ApiVersions (kgate_parse_apis) */
    size_t n_apis;
} kgate_config_t;

typedef struct {
    /* An answer for the client: `owned` (len bytes, malloc'd) is the
     * callee's to write and free. */
    void (*emit)(void *ctx, uint8_t *owned, size_t len);
    void (*close)(void *ctx); /* close the connection now */
    void *ctx;
} kgate_io_t;

typedef struct kgate kgate_t;

/* `who` names the connection in log lines (copied). NULL: out of memory. */
kgate_t *kgate_new(uv_loop_t *loop, const kgate_config_t *cfg, const kgate_io_t *io, const char *who);

/* Client bytes. Returns the bytes consumed (fewer than n: hold the rest, and
 * after kgate_passed() hand it to the codec; otherwise stop reading), or
 * < 0 to close the connection now. */
ssize_t kgate_input(kgate_t *g, const uint8_t *p, size_t n);

/* 1 once the client has authenticated. */
int kgate_passed(const kgate_t *g);

/* Stops the timers; no callback runs after it. The memory goes in their
 * close callbacks. */
void kgate_free(kgate_t *g);

/* The ApiVersions v0 response `frame` (size included) into out[]: returns
 * the entries read, or -1 if it is not one. */
int kgate_parse_apis(const uint8_t *frame, size_t len, kgate_api_t *out, size_t cap);

#endif
