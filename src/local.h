/* local.h - `bore local`: expose a local port through a bore server: one
 * tunnel (tunnel.h) whose visitors are relayed to the local service. */
#ifndef BORE_LOCAL_H
#define BORE_LOCAL_H

#include <stdint.h>

typedef struct {
    const char *local_host;
    uint16_t local_port;
    const char *to_host; /* the server */
    uint16_t to_port;    /* its control port (7835 by default) */
    uint16_t port;       /* requested remote port, 0 = any */
    const char *secret;
    unsigned heartbeat_timeout_ms;
    const char *metrics_ip; /* --metrics: serve /metrics etc. on metrics_ip:metrics_port, or NULL */
    uint16_t metrics_port;
    int reconnect;               /* --no-reconnect clears it */
    unsigned reconnect_attempts; /* 0: forever */
    unsigned reclaim_ms;
} local_config_t;

/* Runs until SIGINT/SIGTERM (returns 0), or until the tunnel ends: a fatal
 * error at start, reconnecting given up, or (--no-reconnect) the server
 * closing the control connection (prints "Error: ...", returns 1, so that a
 * supervisor restarts it). */
int local_run(const local_config_t *cfg);

#endif
