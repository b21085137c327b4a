/* tunnel.h - one bore tunnel, client side (bore protocol §3): the control
 * connection and the accept connections it spawns. Used by `bore local`
 * (one tunnel) and `bore kafka-proxy` (one per broker, plus the bootstrap).
 *
 * The control connection is made to each of the server's addresses in turn
 * (as upstream's client does), each with its own 3 s deadline; the one that
 * answers is used for every later connection. It authenticates if a secret
 * is set, sends Hello and reports the public port. Each Connection(uuid) opens a new connection to
 * the server (authenticated again), sends Accept(uuid), then connects to the
 * tunnel's target, trying each of its addresses (the last one that worked
 * first); the connected pair is handed to the owner (handler.on_pair),
 * which relays. A server that sends nothing for heartbeat_timeout_ms is
 * declared dead.
 *
 * Reconnect (cfg.reconnect): once the tunnel has been public, losing the
 * control connection - closed, broken, or silent - is not the end: the
 * tunnel connects again after an exponential backoff with jitter
 * (backoff.h: ~0.5 s doubling to 30 s), and asks with the ordinary Hello for
 * the port it had (our server keeps it for its --grace; any server gives it
 * if it is free). "port already in use" is asked again every <= 2 s for
 * reclaim_ms, then the tunnel takes a new port and says so. on_listening is
 * called again with the port; logs name each step (lost, reconnecting:
 * attempt and delay, restored on the same port, moved). Visitors' connections
 * already relayed are separate TCP connections and keep flowing. */
#ifndef BORE_TUNNEL_H
#define BORE_TUNNEL_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "relay.h"

#define TUNNEL_MAX_TARGETS 8

typedef struct tunnel tunnel_t;

typedef struct {
    /* The server answered Hello: the tunnel is public on `port` (again, after
     * a reconnect: compare with the previous port). */
    void (*on_listening)(void *ctx, tunnel_t *t, uint16_t port);
    /* The tunnel has ended: `error` is NULL when the server closed the
     * control connection (and reconnecting is off). The tunnel frees itself
     * after this returns. */
    void (*on_closed)(void *ctx, tunnel_t *t, const char *error);
    /* The control connection was lost and the tunnel is reconnecting: it
     * is not public until on_listening is called again. May be NULL. */
    void (*on_lost)(void *ctx, tunnel_t *t);
    /* A visitor is connected end to end. On 0 the callee owns both handles
     * (returned through the release callbacks); `first` bytes read from the
     * server after the Accept go to `local` first. */
    int (*on_pair)(void *ctx, tunnel_t *t, uv_tcp_t *remote, relay_release_cb release_remote,
                   uv_tcp_t *local, relay_release_cb release_local, const uint8_t *first,
                   size_t len);
    void *ctx;
} tunnel_handler_t;

typedef struct {
    const char *to; /* the server's "host:control-port", for messages */
    struct sockaddr_storage servers[TUNNEL_MAX_TARGETS]; /* its resolved addresses, in order */
    int n_servers;                                       /* 1..TUNNEL_MAX_TARGETS */
    uint16_t port;  /* requested public port, 0 = any */
    int port_preferred; /* `port` is a wish (remembered): if refused at start, take any */
    const char *secret;             /* NULL: no authentication */
    unsigned heartbeat_timeout_ms;
    const char *name;               /* for logs (copied): "tunnel", "bootstrap", "broker 2" */
    int reconnect;                  /* once connected, come back when the connection is lost */
    unsigned reconnect_attempts;    /* give up after this many failed attempts; 0: never */
    unsigned reclaim_ms; /* keep asking for our port this long after "port already in use" */
} tunnel_config_t;

/* Starts connecting; never calls a handler before returning. NULL on OOM. */
tunnel_t *tunnel_open(uv_loop_t *loop, const tunnel_config_t *cfg, const tunnel_handler_t *handler);

/* Where visitors are connected to (copied). `label` names it in logs. */
void tunnel_set_target(tunnel_t *t, const struct sockaddr_storage *addrs, int n, const char *label);

uint16_t tunnel_port(const tunnel_t *t);

/* Closes the tunnel without calling on_closed; relays already handed over
 * are the owner's. */
void tunnel_close(tunnel_t *t);

#endif
