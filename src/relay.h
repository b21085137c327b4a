/* relay.h - splice two TCP streams together, both directions, with
 * backpressure and half-close (bore protocol §3, accept step 4).
 *
 * Each direction reads into a pooled buffer and writes it at once with
 * uv_try_write; only when the destination cannot take it all is the rest
 * queued, and reading from the source stops until that write completes. So
 * at most one buffer per direction is in flight, and an idle relay holds no
 * buffer at all. EOF from one side shuts down writing on the other and the
 * reverse direction keeps flowing; the relay ends when both directions have
 * ended, or at the first error on either side. */
#ifndef BORE_RELAY_H
#define BORE_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "list.h"

/* Called once per handle from its close callback: the owner frees it. */
typedef void (*relay_release_cb)(uv_tcp_t *handle);

/* Takes ownership of a and b (their `data` is overwritten) and registers the
 * relay in `set`. `first`/`len` bytes (may be 0, at most 128 KiB) are written
 * to b before anything read from a; they are copied. Returns 0, after which
 * the handles always come back through the release callbacks (a later I/O
 * error closes them); or UV_ENOMEM / UV_EINVAL, and the caller keeps them. */
int relay_start(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                relay_release_cb release_b, const uint8_t *first, size_t len);

/* Closes every relay in `set` (shutdown). */
void relay_close_all(list_t *set);

/* Frees the process-wide buffer pool (at exit, for leak checkers). */
void relay_pool_drain(void);

#endif
