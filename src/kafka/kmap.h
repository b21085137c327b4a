/* kmap.h - address maps for `bore kafka-proxy --map`: where to dial a broker
 * that advertises an address the proxy cannot reach (a container name such
 * as kafka-2:29092, a port published under another number).
 *
 *   --map ADVERTISED_HOST:PORT=HOST:PORT   by the address the broker advertises
 *   --map NODE_ID=HOST:PORT                by its node id
 *
 * A map by address wins over a map by node id: it names exactly what the
 * cluster advertises, while a node id also matches after the broker moves.
 * Maps are start-up options; they are consulted each time a broker is
 * learned or moves, and for the bootstrap address (by address only).
 *
 * Host names compare case-insensitively (RFC 4343). Error convention:
 * 0 or -1, with a message for the user in `err`. */
#ifndef BORE_KMAP_H
#define BORE_KMAP_H

#include <stddef.h>
#include <stdint.h>

#define KMAP_MAX 256      /* --map options per command line */
#define KMAP_HOST_MAX 256 /* a DNS name is at most 253 bytes */

typedef struct {
    int32_t node_id;            /* >= 0 for a map by node id, -1 for one by address */
    char from_host[KMAP_HOST_MAX]; /* by address: the advertised host */
    uint16_t from_port;
    char to_host[KMAP_HOST_MAX];
    uint16_t to_port;
} kmap_entry_t;

typedef struct {
    kmap_entry_t *items; /* owned; NULL while empty */
    size_t n;
} kmap_t;

/* Parses one --map value and appends it. Returns 0, or -1 with a reason in
 * `err` (malformed, a port out of range, the same key twice, too many). */
int kmap_add(kmap_t *m, const char *spec, char *err, size_t errcap);

/* The entry for a broker (node_id < 0: the bootstrap address, matched by
 * address only), or NULL when no map applies. `host` need not be
 * NUL-terminated. */
const kmap_entry_t *kmap_find(const kmap_t *m, int32_t node_id, const char *host, size_t host_len,
                              int32_t port);

void kmap_free(kmap_t *m);

#endif
