/* local.h - `bore local`: expose a local port through a bore server: one
 * tunnel (tunnel.h) whose visitors are relayed to the local service. */
#ifndef BORE_LOCAL_H
#define BORE_LOCAL_H

#include <stdint.h>

typedef struct {
    const char *local_host;
    uint16_t local_port;
    const char *to; /* server host; the control port is always 7835 */
    uint16_t port;  /* requested remote port, 0 = any */
    const char *secret;
    unsigned heartbeat_timeout_ms;
} local_config_t;

/* Runs until the server closes the control connection (returns 0), a fatal
 * error (prints "Error: ...", returns 1) or SIGINT/SIGTERM (returns 0). */
int local_run(const local_config_t *cfg);

#endif
