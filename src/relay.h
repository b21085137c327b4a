/* relay.h - splice two TCP streams together, both directions, with
 * backpressure and half-close (bore protocol §3, accept step 4), and an
 * optional filter per direction (the Kafka proxy's codec).
 *
 * Each direction reads into a pooled buffer and writes it at once with
 * uv_try_write; only when the destination cannot take it all is the rest
 * queued, and reading from the source stops until that write completes. So
 * at most one buffer per direction is in flight, and an idle relay holds no
 * buffer at all. Buffers start at 4 KiB and double, up to 128 KiB, only
 * while data flows; a stalled write sends the direction back to 4 KiB.
 *
 * Memory: all relays of the process together hold at most the budget
 * (relay_set_budget) in buffers, plus 4 KiB per direction, which a relay
 * may always have; beyond the budget, reads use 4 KiB buffers. So relays
 * whose peers send and never read cost at most budget + 8 KiB each. Freed
 * buffers go back to the system (malloc_trim) when the last relay ends and
 * after every 16 MiB freed. EOF from one side shuts down writing on the
 * other and the reverse direction keeps flowing; the relay ends when both
 * directions have ended, or at the first error on either side.
 *
 * A filter sees each piece of input before it is written and emits the
 * output itself (relay_emit): views of the input, which stay valid until
 * written, or blocks it owns. It may consume less than it was given: the
 * direction then pauses - the rest is kept, reading stops - until the owner
 * calls relay_continue. Unfiltered directions forward input as it is.
 *
 * A relay started without filters moves its bytes with splice(2) instead,
 * through a pipe per direction (splice.h), unless BORE_SPLICE=0; the API,
 * the budget (which then bounds the bytes held in pipes) and the stats are
 * the same. */
#ifndef BORE_RELAY_H
#define BORE_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "list.h"

typedef struct relay relay_t;
struct relay_stats;

/* Called once per handle from its close callback: the owner frees it. */
typedef void (*relay_release_cb)(uv_tcp_t *handle);

/* Returns the input bytes consumed (<= n), or < 0 to close the relay. */
typedef ssize_t (*relay_filter_fn)(void *ctx, relay_t *r, int dir, const uint8_t *p, size_t n);

/* Optional: the filter may ask for the next read to land in its own
 * memory (returns 1 and fills buf), to avoid copying a large frame it
 * would buffer anyway. It must then consume all of that read. */
typedef int (*relay_alloc_fn)(void *ctx, uv_buf_t *buf);

typedef struct {
    relay_filter_fn fn; /* NULL: forward as is */
    void *ctx;
    relay_alloc_fn alloc;
} relay_filter_t;

/* Called once, after both handles are released: free the filter state. */
typedef void (*relay_end_cb)(void *user);

/* Takes ownership of a and b (their `data` is overwritten) and registers the
 * relay in `set`. `first`/`len` bytes (may be 0, at most 128 KiB) are treated
 * as read from a, before anything else; they are copied. Returns 0, after
 * which the handles always come back through the release callbacks (a later
 * I/O error closes them); or UV_ENOMEM / UV_EINVAL, and the caller keeps
 * them. Direction 0 is a -> b, direction 1 is b -> a. `stats` (may be NULL)
 * counts the traffic, as relay_set_stats below. */
int relay_start(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                relay_release_cb release_b, const uint8_t *first, size_t len,
                struct relay_stats *stats);

/* The same with filters (filters[dir], may be NULL), an end callback and
 * the relay returned in *out. */
int relay_start_filtered(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                         relay_release_cb release_b, const uint8_t *first, size_t len,
                         const relay_filter_t filters[2], relay_end_cb on_end, void *user,
                         relay_t **out);

/* A transport on one side (TLS, tls.h): what is read from that handle is
 * given to recv first, and its plaintext is the input; what is written to
 * it goes through send. All functions get `ctx`.
 *   recv: ciphertext in; plaintext out in *out (malloc'd, or NULL). Returns
 *         0, 1 when the peer closed its side (close_notify: like EOF), < 0
 *         to close the relay.
 *   send: plaintext bufs in (may be none); everything to write out in *out
 *         (malloc'd, or NULL). Returns 0 or < 0.
 *   pending: whether send has something to write even with no input
 *         (handshake, tickets, alerts).
 *   shutdown: the other side sent EOF: queue the transport's own close. */
typedef struct {
    int (*recv)(void *ctx, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n);
    int (*send)(void *ctx, const uv_buf_t *bufs, size_t n, uint8_t **out, size_t *out_n);
    int (*pending)(void *ctx);
    void (*shutdown)(void *ctx);
    void *ctx;
} relay_transport_t;

/* relay_start_filtered with a transport per side (tp[0] for a, tp[1] for
 * b; either or both NULL). `first` is read from a: it goes through a's
 * transport too. */
int relay_start_transport(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                          relay_release_cb release_b, const uint8_t *first, size_t len,
                          const relay_filter_t filters[2], const relay_transport_t *tp[2],
                          relay_end_cb on_end, void *user, relay_t **out);

/* Queues output for direction `dir`, after everything queued before. If
 * `owned` is set it is freed once written (or when the relay closes). */
void relay_emit(relay_t *r, int dir, const uint8_t *p, size_t n, void *owned);

/* A paused direction may go on: output emitted meanwhile is written, then
 * the filter is given the input it left. */
void relay_continue(relay_t *r, int dir);

void relay_close(relay_t *r);

/* Byte counters that move as bytes flow (not when a relay ends): bytes[dir]
 * counts the bytes read from direction dir's source once set (the `first`
 * bytes given to relay_start are the caller's to count). Owned by the
 * caller; may be shared by many relays; must outlive them. */
typedef struct relay_stats {
    uint64_t bytes[2];
} relay_stats_t;

/* Counts this relay's traffic into `s` from now on (NULL: stop counting). */
void relay_set_stats(relay_t *r, relay_stats_t *s);

/* Closes every relay in `set` (shutdown). */
void relay_close_all(list_t *set);

/* Frees the process-wide buffer pool (at exit, for leak checkers). */
void relay_pool_drain(void);

#define RELAY_BUDGET_DEFAULT ((size_t)256 * 1024 * 1024)

/* Sets the process-wide buffer budget (see above), in bytes. */
void relay_set_budget(size_t bytes);

/* Bytes held in buffers by all relays right now. */
size_t relay_buffered(void);

#endif
