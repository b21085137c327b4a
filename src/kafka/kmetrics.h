/* kmetrics.h - the metrics of one Kafka node (the bootstrap address or a
 * broker) in `bore kafka-proxy`: bytes each way (counted by the relays
 * into `bytes`), connections, requests by API key and version, and a
 * response-time histogram per API key from the request being seen to its
 * response being released to the client (a response held for a broker's
 * tunnel counts its wait).
 *
 * Embedded in the proxy's node; every function is a no-op when metrics are
 * off (metrics.h). Series for an API key or version are made the first
 * time one is seen; counting never allocates after that. */
#ifndef BORE_KMETRICS_H
#define BORE_KMETRICS_H

#include <stdint.h>

#include "kframe.h"
#include "metrics.h"
#include "relay.h"

#define KMETRICS_API_MAX 128 /* API keys counted each; higher ones count as "other" */
#define KMETRICS_VER_MAX 32

typedef struct {
    char node[16]; /* the node label: "bootstrap" or the broker id */
    relay_stats_t bytes; /* [0] client -> broker, [1] broker -> client */
    uint64_t conns_total, requests_total, rewritten, held, reconnects;
    int64_t conns_active;
    metrics_series_t *s_bytes[2], *s_conns_total, *s_conns_active, *s_rewritten, *s_held,
        *s_reconnects, *s_port, *s_up;
    metrics_series_t **req[KMETRICS_API_MAX + 1]; /* [api][version], made when first seen */
    metrics_series_t *lat[KMETRICS_API_MAX + 1];
} kmetrics_node_t;

/* Registers the kafka-proxy families (once, at start, after metrics_enable). */
void kmetrics_init(void);

/* The node's series (id < 0: the bootstrap address). */
void kmetrics_node_init(kmetrics_node_t *m, int32_t id);
void kmetrics_node_free(kmetrics_node_t *m);

/* The tunnel's state: its public port (0 while not listening). */
void kmetrics_node_port(kmetrics_node_t *m, uint16_t port);
/* The node's tunnel is reconnecting: down, its port kept for the return. */
void kmetrics_node_lost(kmetrics_node_t *m);

void kmetrics_conn_open(kmetrics_node_t *m);
void kmetrics_conn_close(kmetrics_node_t *m);
void kmetrics_reconnect(kmetrics_node_t *m);
void kmetrics_held(kmetrics_node_t *m);

/* A request seen (stamps req->seen_us), a response released. */
void kmetrics_request(kmetrics_node_t *m, kf_req_t *req);
void kmetrics_response(kmetrics_node_t *m, const kf_req_t *req, int rewritten);

/* "Produce", "Fetch", ... or NULL for a key the table does not name. */
const char *kmetrics_api_name(int16_t key);

#endif
