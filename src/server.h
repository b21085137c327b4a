/* server.h - `bore server`: the tunnel server (bore protocol §3-§7).
 *
 * One control listener on bind_addr:control_port (7835 by default). Every connection to it is a
 * `conn` state machine: AUTH (challenge sent) -> HELLO (waiting for Hello or
 * Accept) -> TUNNEL (a control connection owning a tunnel listener) or RELAY
 * (an accept connection handed to relay.c). Visitors on a tunnel port are
 * parked under a fresh UUID until the client accepts them or 10 s pass.
 *
 * Beyond upstream: caps on handshakes in flight (shared fairly between
 * source addresses), tunnels, parked visitors and relays (per tunnel and in
 * total), and the memory relays hold in buffers; TCP keepalive on control connections;
 * a control peer that stops reading is dropped; clean SIGINT/SIGTERM exit.
 *
 * Ports survive their client's reconnect: a control connection that ends
 * (or whose peer vanished: keepalive and TCP_USER_TIMEOUT notice it in about
 * 20 s) leaves its listener open for grace_ms (--grace). Visitors arriving
 * meanwhile are parked as usual; the first Hello asking for exactly that
 * port (authenticated, when there is a secret) takes the port and its parked
 * visitors. No new wire message: upstream clients get the same. */
#ifndef BORE_SERVER_H
#define BORE_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *bind_addr;    /* control listener address */
    const char *bind_tunnels; /* tunnel listener address */
    uint16_t control_port;
    uint16_t min_port, max_port;
    const char *secret; /* NULL: authentication off; "" is a valid secret */
    unsigned max_handshakes;
    unsigned max_handshakes_per_source; /* once half of max_handshakes are taken */
    unsigned max_tunnels;
    unsigned max_pending;
    unsigned max_pending_per_tunnel;
    unsigned max_relays;           /* relayed visitor connections, over all tunnels */
    unsigned max_relays_per_tunnel;
    unsigned max_relay_memory_mib; /* relay buffer budget (relay.h) */
    const char *metrics_ip; /* --metrics: serve /metrics etc. on metrics_ip:metrics_port, or NULL */
    uint16_t metrics_port;
    unsigned grace_ms; /* a tunnel's port is kept this long after its control connection ends */
} server_config_t;

/* Runs until SIGINT/SIGTERM (returns 0); 1 if it cannot listen. */
int server_run(const server_config_t *cfg);

#endif
