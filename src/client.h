/* client.h - `bore local`: expose a local port through a bore server
 * (bore protocol §3, client side).
 *
 * The control connection authenticates if a secret is set, sends Hello and
 * prints `listening at <to>:<port>`. Each Connection(uuid) opens a new
 * connection to the server (authenticated again), sends Accept(uuid), then
 * connects to the local service and relays. Beyond upstream: a server that
 * sends nothing for --heartbeat-timeout seconds is declared dead and the
 * client exits 1 instead of hanging. */
#ifndef BORE_CLIENT_H
#define BORE_CLIENT_H

#include <stdint.h>

typedef struct {
    const char *local_host;
    uint16_t local_port;
    const char *to; /* server host; the control port is always 7835 */
    uint16_t port;  /* requested remote port, 0 = any */
    const char *secret;
    unsigned heartbeat_timeout_ms;
} client_config_t;

/* Runs until the server closes the control connection (returns 0), a fatal
 * error (prints it, returns 1) or SIGINT/SIGTERM (returns 0). */
int client_run(const client_config_t *cfg);

#endif
