/* kports.h - the kafka-proxy's remembered public ports, so that a restarted
 * proxy asks the tunnel server for the ports its clients know.
 *
 * One file in the state directory (state.h), "ports.json":
 *   {"version":1,"clusters":{"<server>|<cluster>":{"-1":29092,"1":31001,...}}}
 * keyed by the tunnel server ("host:port" as given) and the cluster (its
 * bootstrap address as given: the proxy's probe does not learn the cluster
 * id), node id -1 being the bootstrap. Other clusters' entries are kept. A
 * missing or unreadable file is an empty memory, never an error. */
#ifndef BORE_KPORTS_H
#define BORE_KPORTS_H

#include <stddef.h>
#include <stdint.h>

#define KPORTS_FILE "ports.json"
#define KPORTS_MAX 1025 /* NODES_MAX brokers and the bootstrap */
#define KPORTS_FILE_MAX (1u << 20)

typedef struct {
    int32_t id;
    uint16_t port;
} kports_entry_t;

typedef struct {
    kports_entry_t e[KPORTS_MAX];
    size_t n;
} kports_t;

/* Fills `out` with this server's and cluster's ports (empty if none). */
void kports_load(const char *dir, const char *key, kports_t *out);

/* Replaces this key's ports in the file with `in`. Returns 0 or -1 (logged). */
int kports_save(const char *dir, const char *key, const kports_t *in);

/* The remembered port of node `id`, or 0. */
uint16_t kports_get(const kports_t *k, int32_t id);

/* Sets node id's port (0 removes nothing: it is stored as is). */
void kports_set(kports_t *k, int32_t id, uint16_t port);

#endif
