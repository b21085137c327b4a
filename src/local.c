/* local.c - see local.h. */
#include "local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "relay.h"
#include "resolve.h"
#include "tunnel.h"

#define LOG_TARGET "bore::client"

typedef struct {
    const local_config_t *cfg;
    char to[300]; /* "host:control-port", for messages */
    uv_loop_t *loop;
    tunnel_t *tunnel;
    uv_signal_t sigint, sigterm;
    list_t relays;
    int exit_code;
    int stopping;
    uint16_t port; /* public, once listening */
} local_t;

static void local_stop(local_t *l)
{
    if (l->stopping) return;
    l->stopping = 1;
    uv_close((uv_handle_t *)&l->sigint, NULL);
    uv_close((uv_handle_t *)&l->sigterm, NULL);
    relay_close_all(&l->relays);
}

static void on_listening(void *ctx, tunnel_t *t, uint16_t port)
{
    local_t *l = ctx;
    (void)t;
    char at[300];
    resolve_join(l->cfg->to_host, port, at, sizeof at);
    if (l->port == 0) {
        log_info("connected to server");
        log_info("listening at %s", at);
    } else if (port == l->port) {
        log_info("listening at %s again", at);
    } else {
        log_warn("listening at %s: MOVED from port %u, which could not be had back", at, l->port);
    }
    l->port = port;
}

static void on_closed(void *ctx, tunnel_t *t, const char *error)
{
    local_t *l = ctx;
    (void)t;
    l->tunnel = NULL;
    fprintf(stderr, "Error: %s\n", error ? error : "the server closed the connection");
    l->exit_code = 1;
    local_stop(l);
}

static int on_pair(void *ctx, tunnel_t *t, uv_tcp_t *remote, relay_release_cb rr, uv_tcp_t *local,
                   relay_release_cb rl, const uint8_t *first, size_t len)
{
    local_t *l = ctx;
    (void)t;
    return relay_start(&l->relays, remote, rr, local, rl, first, len, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    local_t *l = sig->data;
    log_info("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    if (l->tunnel) tunnel_close(l->tunnel);
    l->tunnel = NULL;
    local_stop(l);
}

int local_run(const local_config_t *cfg)
{
    local_t l = {.cfg = cfg, .loop = uv_default_loop()};
    list_init(&l.relays);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_storage targets[TUNNEL_MAX_TARGETS];
    int n = resolve_host(l.loop, cfg->local_host, cfg->local_port, targets, TUNNEL_MAX_TARGETS);
    if (n < 0) {
        fprintf(stderr, "Error: could not resolve local host %s: %s\n", cfg->local_host, uv_strerror(n));
        return 1;
    }
    resolve_join(cfg->to_host, cfg->to_port, l.to, sizeof l.to);
    tunnel_config_t tc = {.to = l.to, .port = cfg->port, .secret = cfg->secret,
                          .heartbeat_timeout_ms = cfg->heartbeat_timeout_ms, .name = "tunnel",
                          .reconnect = cfg->reconnect, .reconnect_attempts = cfg->reconnect_attempts,
                          .reclaim_ms = cfg->reclaim_ms};
    tc.n_servers = resolve_host(l.loop, cfg->to_host, cfg->to_port, tc.servers, TUNNEL_MAX_TARGETS);
    if (tc.n_servers < 0) {
        fprintf(stderr, "Error: could not connect to %s: %s\n", l.to, uv_strerror(tc.n_servers));
        return 1;
    }
    tunnel_handler_t th = {on_listening, on_closed, on_pair, &l};
    l.tunnel = tunnel_open(l.loop, &tc, &th);
    if (l.tunnel == NULL) {
        fprintf(stderr, "Error: out of memory\n");
        return 1;
    }
    char label[300];
    snprintf(label, sizeof label, "%s:%u", cfg->local_host, cfg->local_port);
    tunnel_set_target(l.tunnel, targets, n, label);

    uv_signal_init(l.loop, &l.sigint);
    uv_signal_init(l.loop, &l.sigterm);
    l.sigint.data = l.sigterm.data = &l;
    uv_signal_start(&l.sigint, on_signal, SIGINT);
    uv_signal_start(&l.sigterm, on_signal, SIGTERM);

    uv_run(l.loop, UV_RUN_DEFAULT);
    uv_loop_close(l.loop);
    relay_pool_drain();
    return l.exit_code;
}
