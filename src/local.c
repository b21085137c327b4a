/* local.c - see local.h. */
#include "local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "resolve.h"
#include "status.h"
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
    /* metrics: bytes[0] visitor -> local service, [1] back */
    relay_stats_t stats;
    uint16_t public_port;
    uint64_t conns_total, reconnects;
    int64_t conns_active;
    int reconnecting; /* the control connection is down; the tunnel is coming back */
    metrics_series_t *s_up, *s_port, *s_active;
} local_t;

static void relay_ended(void *user)
{
    local_t *l = user;
    l->conns_active--;
    metrics_set(l->s_active, l->conns_active);
}

/* The tunnel's series (--metrics); the counters are read when rendering. */
static void local_metrics(local_t *l)
{
    static const char *const dir[] = {"direction", NULL};
    metrics_family_t *f;
    l->s_up = metrics_series(metrics_family("bore_local_tunnel_up",
                                            "1 while the tunnel listens on the server, 0 otherwise",
                                            METRICS_GAUGE, NULL, NULL), NULL);
    l->s_port = metrics_series(metrics_family("bore_local_public_port",
                                              "The tunnel's public port on the server (0 until it listens)",
                                              METRICS_GAUGE, NULL, NULL), NULL);
    l->s_active = metrics_series(metrics_family("bore_local_connections",
                                                "Visitor connections open through the tunnel",
                                                METRICS_GAUGE, NULL, NULL), NULL);
    metrics_counter_ref(metrics_family("bore_local_connections_total",
                                       "Visitor connections made through the tunnel", METRICS_COUNTER,
                                       NULL, NULL), NULL, &l->conns_total);
    f = metrics_family("bore_local_bytes_total",
                       "Bytes relayed, as they flow: in = visitors to the local service, out = back",
                       METRICS_COUNTER, dir, NULL);
    metrics_counter_ref(f, (const char *const[]){"in"}, &l->stats.bytes[0]);
    metrics_counter_ref(f, (const char *const[]){"out"}, &l->stats.bytes[1]);
    metrics_counter_ref(metrics_family("bore_local_reconnects_total",
                                       "Times the tunnel was opened again after it ended",
                                       METRICS_COUNTER, NULL, NULL), NULL, &l->reconnects);
}

static const char *local_state(const local_t *l)
{
    if (l->tunnel == NULL) return "closed";
    if (l->reconnecting) return "reconnecting";
    return l->public_port ? "listening" : "opening";
}

static json_t *local_status(void *ctx)
{
    local_t *l = ctx;
    char pub[300] = "";
    if (l->public_port) resolve_join(l->cfg->to_host, l->public_port, pub, sizeof pub);
    char internal[300];
    resolve_join(l->cfg->local_host, l->cfg->local_port, internal, sizeof internal);
    return json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}}", "server", l->to,
                     "tunnel", "name", "local", "public", pub, "internal", internal, "state",
                     local_state(l),
                     "public_port", (json_int_t)l->public_port, "connections_active",
                     (json_int_t)l->conns_active, "connections_total", (json_int_t)l->conns_total,
                     "bytes_in", (json_int_t)l->stats.bytes[0], "bytes_out",
                     (json_int_t)l->stats.bytes[1], "reconnects", (json_int_t)l->reconnects);
}

static void local_stop(local_t *l)
{
    if (l->stopping) return;
    l->stopping = 1;
    uv_close((uv_handle_t *)&l->sigint, NULL);
    uv_close((uv_handle_t *)&l->sigterm, NULL);
    status_stop();
    relay_close_all(&l->relays);
}

static void on_listening(void *ctx, tunnel_t *t, uint16_t port)
{
    local_t *l = ctx;
    (void)t;
    char at[300];
    uint16_t before = l->public_port; /* 0 the first time */
    l->public_port = port;
    l->reconnecting = 0;
    metrics_set(l->s_port, port);
    metrics_set(l->s_up, 1);
    status_event("the tunnel is public on port %u", port);
    resolve_join(l->cfg->to_host, port, at, sizeof at);
    if (before == 0) {
        log_info("connected to server");
        log_info("listening at %s", at);
        return;
    }
    l->reconnects++;
    if (port == before)
        log_info("listening at %s again", at);
    else
        log_warn("listening at %s: MOVED from port %u, which could not be had back", at, before);
}

static void on_closed(void *ctx, tunnel_t *t, const char *error)
{
    local_t *l = ctx;
    (void)t;
    l->tunnel = NULL;
    metrics_set(l->s_up, 0);
    fprintf(stderr, "Error: %s\n", error ? error : "the server closed the connection");
    l->exit_code = 1;
    local_stop(l);
}

static void on_lost(void *ctx, tunnel_t *t)
{
    local_t *l = ctx;
    (void)t;
    l->reconnecting = 1;
    metrics_set(l->s_up, 0);
    status_event("the control connection was lost: reconnecting");
}

static int on_pair(void *ctx, tunnel_t *t, uv_tcp_t *remote, relay_release_cb rr, uv_tcp_t *local,
                   relay_release_cb rl, const uint8_t *first, size_t len)
{
    local_t *l = ctx;
    (void)t;
    relay_t *r;
    int rc = relay_start_filtered(&l->relays, remote, rr, local, rl, first, len, NULL, relay_ended, l,
                                  &r);
    if (rc != 0) return rc;
    relay_set_stats(r, &l->stats);
    l->stats.bytes[0] += len; /* the caller's to count (relay.h) */
    l->conns_total++;
    l->conns_active++;
    metrics_set(l->s_active, l->conns_active);
    return 0;
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
    tunnel_handler_t th = {on_listening, on_closed, on_lost, on_pair, &l};
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

    status_set_source("local", local_status, &l);
    if (cfg->metrics_ip) {
        local_metrics(&l);
        if (status_start(l.loop, cfg->metrics_ip, cfg->metrics_port) != 0) {
            tunnel_close(l.tunnel);
            l.tunnel = NULL;
            l.exit_code = 1;
            local_stop(&l);
        }
    }
    uv_run(l.loop, UV_RUN_DEFAULT);
    uv_loop_close(l.loop);
    relay_pool_drain();
    metrics_free();
    return l.exit_code;
}
