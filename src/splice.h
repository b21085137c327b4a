/* splice.h - the relay's zero-copy path for plain (unfiltered) relays on
 * Linux: each direction moves bytes socket -> pipe -> socket with splice(2),
 * so they never enter user space.
 *
 * relay.c starts it for a relay without filters and keeps the relay_t API
 * (close, end callback, release callbacks, stats); this module only moves
 * bytes. It drives the two sockets from the libuv loop with a uv_poll_t on
 * each socket's fd; the uv_tcp_t handles are not read or written meanwhile.
 *
 * Per direction: the `first` bytes (direction 0 only) are written first;
 * then, while the source has data, splice(src -> pipe) and splice(pipe ->
 * dst), SPLICE_F_NONBLOCK | SPLICE_F_MOVE. A direction takes a pipe on its
 * first data and gives it back to a small process-wide pool as soon as the
 * pipe is empty and the source has nothing more (an idle relay holds no
 * pipe, only its two poll handles). While the pipe holds bytes the
 * destination cannot take, the source is not polled for reading: a slow
 * reader stalls only its own direction. EOF from the source shuts down
 * writing on the destination once the pipe is drained; the relay ends when
 * both directions have, or at the first error on either side.
 *
 * BORE_SPLICE=0 in the environment turns the path off (relays then use the
 * read/write path, for tests and benchmarks). If splice fails with EINVAL
 * or ENOSYS the path is turned off for the rest of the process, and the
 * relay falls back to the read/write path when no byte of it is in flight
 * (otherwise it is closed). */
#ifndef BORE_SPLICE_H
#define BORE_SPLICE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct splice_relay splice_relay_t;
struct relay_stats;

/* What the owner hears: `end` - the relay must close (both directions
 * done, or an error): the owner calls splice_close; `closed` - see below. */
typedef struct {
    void (*end)(void *owner);
    /* After splice_close (or a fallback): the poll handles are closed and
     * the splice_relay_t is gone. With `fallback` set the owner goes on with
     * read/write: eof[dir] / done[dir] tell whether the direction's source
     * sent EOF / its destination is shut down, and rest/n are the `first`
     * bytes not yet written (valid during the call). */
    void (*closed)(void *owner, int fallback, const int eof[2], const int done[2],
                   const uint8_t *rest, size_t n);
} splice_ops_t;

/* 1 unless BORE_SPLICE=0 (read once) or splice proved unavailable. */
int splice_enabled(void);

/* Starts moving a <-> b. `first`/`len` are written to b before anything
 * read from a (copied). `*stats` (may be NULL, may change later) is a
 * relay_stats_t to count into. Returns 0 or a negative UV error (nothing to
 * undo then: the caller goes on with the read/write path). The owner may
 * hear `end` before this returns; *out is set by then. */
int splice_start(splice_relay_t **out, uv_tcp_t *a, uv_tcp_t *b, const uint8_t *first,
                 size_t len, struct relay_stats **stats, const splice_ops_t *ops, void *owner);

/* Stops and uv_closes the poll handles; ops->closed comes once they are
 * closed, after which the splice_relay_t is gone. */
void splice_close(splice_relay_t *s);

/* The process-wide budget (relay_set_budget) also bounds the bytes held in
 * pipes: past it a direction moves 4 KiB at a time. */
void splice_set_budget(size_t bytes);

/* Bytes held in all relays' pipes right now (counted in relay_buffered). */
size_t splice_buffered(void);

/* Process-wide counters, for tests and metrics. */
typedef struct {
    uint64_t relays;   /* relays started on the splice path */
    uint64_t bytes;    /* bytes moved through pipes */
    uint64_t fallback; /* relays that fell back to read/write */
    unsigned pipes_live, pipes_pooled;
} splice_counters_t;

const splice_counters_t *splice_counters(void);

/* Closes the pooled pipes (at exit). */
void splice_pool_drain(void);

#endif
