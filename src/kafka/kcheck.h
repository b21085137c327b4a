/* kcheck.h - the pre-flight check of one Kafka address: can this machine
 * reach it, and does a plaintext Kafka listener answer there?
 *
 * A check resolves the host (an IP literal without the resolver), connects
 * to each resolved address in turn, sends ApiVersions v0 and reads the
 * answer's first bytes: a valid size prefix and our correlation id make it
 * Kafka (whatever the error code: an old broker answers
 * UNSUPPORTED_VERSION in the same layout). One deadline covers the whole
 * check. `bore kafka-proxy` runs one check per broker, all at once, at
 * start-up (and --check runs nothing else), and one for each broker learned
 * later.
 *
 * Contract (libuv's): kcheck_start never calls the callback before it
 * returns; the callback is called exactly once, unless kcheck_cancel is
 * called first; the check frees itself after the callback (or the cancel)
 * once its handles are closed, so the pointer is invalid from the callback
 * on. Nothing the peer sends is buffered beyond KCHECK_PEEK bytes. */
#ifndef BORE_KCHECK_H
#define BORE_KCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define KCHECK_DEADLINE_MS 2000
#define KCHECK_PEEK 16 /* bytes of the answer read: size, correlation id, error code */

typedef enum {
    KCHECK_OK,
    KCHECK_UNRESOLVABLE, /* the name does not resolve here */
    KCHECK_REFUSED,      /* every address refused the connection */
    KCHECK_UNREACHABLE,  /* no route, network down: another connect error */
    KCHECK_TIMEOUT,      /* no connection or no answer before the deadline */
    KCHECK_NOT_KAFKA,    /* an answer that is not a Kafka response, or a close */
    KCHECK_TLS,          /* a TLS record: a TLS listener */
} kcheck_status_t;

typedef struct {
    kcheck_status_t status;
    const char *detail; /* what happened, for humans ("connection refused"); valid in the callback */
    uint64_t ms;        /* time from the start to the verdict */
} kcheck_result_t;

typedef struct kcheck kcheck_t;
typedef void (*kcheck_cb)(void *ctx, const kcheck_result_t *r);

/* Starts checking host:port. NULL when out of memory (no callback). */
kcheck_t *kcheck_start(uv_loop_t *loop, const char *host, uint16_t port, unsigned deadline_ms,
                       kcheck_cb cb, void *ctx);

/* Stops a check whose callback has not run yet; the callback never runs. */
void kcheck_cancel(kcheck_t *c);

/* "ok", "unresolvable", "refused", "unreachable", "timeout", "not Kafka", "TLS". */
const char *kcheck_status_name(kcheck_status_t s);

/* One line telling the user what to do about a failed check of `who`
 * ("broker 2", "the bootstrap address") advertising `advertised`, dialled at
 * `dialled` (NULL when no --map applies). `running`: the proxy is already
 * running, so the advice is to restart it with the map. */
void kcheck_hint(char *buf, size_t cap, const char *who, const char *advertised,
                 const char *dialled, int running, const kcheck_result_t *r);

#endif
