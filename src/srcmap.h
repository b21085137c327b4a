/* srcmap.h - how many of a capped resource each source address holds, so
 * that one address cannot take a whole pool (issue 13: one client kept all
 * --max-handshakes slots full and locked everyone else out).
 *
 * A source is an IPv4 address, or an IPv6 /64 (what one subscriber is
 * usually given, so a single host cannot mint fresh sources). Entries exist
 * only while their count is above zero: the map never holds more entries
 * than there are counted resources, whatever the peers do. Buckets are
 * chosen with a per-process random key, so peers cannot aim at one bucket.
 *
 * Error convention: 0 or a negative libuv error code (UV_E*). */
#ifndef BORE_SRCMAP_H
#define BORE_SRCMAP_H

#include <stdint.h>
#include <uv.h>

#include "list.h"

#define SRCMAP_BUCKETS 1024

typedef struct {
    uint8_t b[16]; /* IPv4: 12 zero bytes then the address; IPv6: the /64, then zeros */
} src_key_t;

typedef struct {
    list_t buckets[SRCMAP_BUCKETS];
    uint64_t seed;
} srcmap_t;

/* The source of a connected socket. Returns 0 or a negative error. */
int src_key_of(const uv_tcp_t *handle, src_key_t *out);

void srcmap_init(srcmap_t *m);
/* Frees every entry (at exit). */
void srcmap_free(srcmap_t *m);

/* The count held by `k` (0 if none). */
unsigned srcmap_count(const srcmap_t *m, const src_key_t *k);
/* Returns 0, or UV_ENOMEM (nothing counted). */
int srcmap_add(srcmap_t *m, const src_key_t *k);
/* Undoes one srcmap_add. */
void srcmap_remove(srcmap_t *m, const src_key_t *k);

#endif
