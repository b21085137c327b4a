/* krewrite.h - turn a scan into edits: each broker's host and port replaced
 * by its public address, every other byte kept (protocol README §3 rule 6).
 *
 * The mapping is an interface: for each address the caller's lookup answers
 * the public address, or "not known yet" (KR_PENDING). Nothing is emitted
 * then; the caller opens the tunnel and calls kr_plan again with the same
 * scan - the frame is never parsed twice.
 *
 * The output is an edit list over the original frame: [off, off+len) is
 * replaced by scratch[repl_off, repl_off+repl_len). Edits are sorted and
 * disjoint, so the output is the frame's untouched stretches interleaved
 * with the replacements - which a writer can send with writev, copying
 * nothing. The lengths that change are recomputed: host string prefixes,
 * the tagged field's size varint, and the frame size. */
#ifndef BORE_KREWRITE_H
#define BORE_KREWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "kscan.h"

enum { KR_DONE = 0, KR_PENDING = 1 };

typedef struct {
    const char *host;
    size_t host_len;
    int32_t port;
} kr_public_t;

/* Called for each address in frame order. Returns KR_DONE with *out set,
 * KR_PENDING if the public address is not known yet, or < 0 to fail the
 * frame. The host must stay valid until kr_plan returns. */
typedef int (*kr_lookup_fn)(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out);

typedef struct {
    uint32_t off, len;
    uint32_t repl_off, repl_len;
} kr_edit_t;

typedef struct {
    kr_edit_t *edits;
    uint32_t n, cap;
    uint8_t *scratch;
    uint32_t slen, scap;
    int32_t pending_node; /* after KR_PENDING: the node id asked about */
    uint32_t pending_index;
} kr_plan_t;

/* Builds the edits for one scanned frame. Returns KR_DONE (n == 0 means
 * the frame goes out unchanged), KR_PENDING, or KF_BAD (lookup failure,
 * an output over `max_frame`, out of memory). */
int kr_plan(kr_plan_t *p, const ks_scan_t *s, const uint8_t *frame, size_t len, uint32_t max_frame,
            kr_lookup_fn lookup, void *ctx);

/* Output size after the edits, and the output copied into `out`. */
size_t kr_output_len(const kr_plan_t *p, size_t len);
void kr_materialize(const kr_plan_t *p, const uint8_t *frame, size_t len, uint8_t *out);

void kr_free(kr_plan_t *p);

#endif
