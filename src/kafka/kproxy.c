/* kproxy.c - see kproxy.h. */
#include "kproxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kstream.h"
#include "kwire.h"
#include "list.h"
#include "log.h"
#include "relay.h"
#include "resolve.h"
#include "tunnel.h"

#define LOG_TARGET "bore::kafka"
#define CONTROL_PORT 7835
#define STARTUP_MS 10000
#define HOST_MAX 256
#define NODES_MAX 1024 /* brokers (node ids) a cluster may name: each costs a tunnel */

typedef struct kproxy kproxy_t;

/* A broker (or the bootstrap address, id -1) and its tunnel. */
typedef struct node {
    kproxy_t *px;
    list_t link;
    int32_t id;
    char host[HOST_MAX]; /* internal address, as the cluster advertises it */
    int32_t port;
    tunnel_t *tunnel;
    uint16_t public_port; /* 0 until the tunnel listens */
    list_t waiters;       /* kconn_t.wait_link: responses waiting for public_port */
    uv_getaddrinfo_t gai;
    int resolving;
    int resolve_again; /* the address changed while resolving */
} node_t;

/* One proxied Kafka connection: a relay whose two directions run through
 * the codec. */
typedef struct kconn {
    kproxy_t *px;
    kstream_t ks;
    relay_t *relay;
    node_t *waiting_on;
    list_t wait_link;
} kconn_t;

enum px_state { PX_METADATA, PX_TUNNELS, PX_RUNNING, PX_DONE };

struct kproxy {
    const kproxy_config_t *cfg;
    uv_loop_t *loop;
    enum px_state state;
    int exit_code;
    char bs_host[HOST_MAX];
    uint16_t bs_port;
    struct sockaddr_storage server;
    list_t nodes;
    unsigned n_nodes;
    list_t relays;
    /* start-up: our own ApiVersions + Metadata exchange with the cluster */
    uv_tcp_t probe;
    uv_connect_t probe_req;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    uint8_t *probe_buf;
    size_t probe_len;
    int probe_frames;
    int probe_open;
};

static void px_stop(kproxy_t *px, int code);

/* ---- nodes and their tunnels -------------------------------------------- */

static node_t *node_find(kproxy_t *px, int32_t id)
{
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *n = LIST_ENTRY(e, node_t, link);
        if (n->id == id) return n;
    }
    return NULL;
}

static const char *node_name(const node_t *n, char *buf, size_t cap)
{
    if (n->id < 0)
        snprintf(buf, cap, "bootstrap");
    else
        snprintf(buf, cap, "broker %d", n->id);
    return buf;
}

static void wake_waiters(node_t *n);

static void on_tunnel_listening(void *ctx, tunnel_t *t, uint16_t port)
{
    node_t *n = ctx;
    kproxy_t *px = n->px;
    (void)t;
    n->public_port = port;
    if (px->state == PX_RUNNING) {
        char name[32];
        log_info("%s is public at %s:%u (internal %s:%d)", node_name(n, name, sizeof name),
                 px->cfg->advertised_host, port, n->host, n->port);
    }
    if (px->state == PX_TUNNELS) {
        for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next)
            if (LIST_ENTRY(e, node_t, link)->public_port == 0) return;
        /* Every tunnel is up: the table users copy their settings from. */
        int brokers = 0;
        for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next)
            brokers += LIST_ENTRY(e, node_t, link)->id >= 0;
        node_t *bs = node_find(px, -1);
        printf("bore kafka-proxy: Kafka at %s:%u (%d broker%s) is public on %s\n\n", px->bs_host,
               px->bs_port, brokers, brokers == 1 ? "" : "s", px->cfg->advertised_host);
        printf("  %-10s %-32s %s\n", "NODE", "PUBLIC", "INTERNAL");
        for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
            node_t *m = LIST_ENTRY(e, node_t, link);
            char pub[300], id[16];
            snprintf(pub, sizeof pub, "%s:%u", px->cfg->advertised_host, m->public_port);
            snprintf(id, sizeof id, "%d", m->id);
            printf("  %-10s %-32s %s:%d\n", m->id < 0 ? "bootstrap" : id, pub, m->host, m->port);
        }
        printf("\nbootstrap.servers=%s:%u\n", px->cfg->advertised_host, bs->public_port);
        fflush(stdout);
        px->state = PX_RUNNING;
        log_info("ready: %d brokers exposed", brokers);
    }
    wake_waiters(n);
}

static void on_tunnel_closed(void *ctx, tunnel_t *t, const char *error)
{
    node_t *n = ctx;
    kproxy_t *px = n->px;
    char name[32];
    (void)t;
    n->tunnel = NULL;
    if (px->state == PX_DONE) return;
    if (error) {
        fprintf(stderr, "Error: %s\n", error);
        log_error("the tunnel for %s ended: %s", node_name(n, name, sizeof name), error);
        px_stop(px, 1);
    } else {
        log_info("the server closed the tunnel for %s", node_name(n, name, sizeof name));
        px_stop(px, 0);
    }
}

static int on_tunnel_pair(void *ctx, tunnel_t *t, uv_tcp_t *remote, relay_release_cb rr,
                          uv_tcp_t *local, relay_release_cb rl, const uint8_t *first, size_t len);

static void node_resolve(node_t *n);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    node_t *n = req->data;
    n->resolving = 0;
    struct sockaddr_storage addrs[TUNNEL_MAX_TARGETS];
    int count = resolve_copy(res, addrs, TUNNEL_MAX_TARGETS);
    uv_freeaddrinfo(res);
    char label[HOST_MAX + 16], name[32];
    snprintf(label, sizeof label, "%s:%d", n->host, n->port);
    if (status < 0 || count == 0) {
        log_warn("cannot resolve %s (%s): %s", label, node_name(n, name, sizeof name),
                 uv_strerror(status));
    } else if (n->tunnel != NULL) {
        tunnel_set_target(n->tunnel, addrs, count, label);
    }
    if (n->px->state != PX_DONE && n->resolve_again) {
        n->resolve_again = 0;
        node_resolve(n);
    }
}

/* (Re)resolves the node's internal address; the tunnel dials the result. */
static void node_resolve(node_t *n)
{
    if (n->resolving) {
        n->resolve_again = 1;
        return;
    }
    char port[8];
    snprintf(port, sizeof port, "%d", n->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    n->gai.data = n;
    if (uv_getaddrinfo(n->px->loop, &n->gai, on_resolved, n->host, port, &hints) == 0)
        n->resolving = 1;
}

static node_t *node_add(kproxy_t *px, int32_t id, const char *host, size_t host_len, int32_t port,
                        uint16_t public_port)
{
    if (px->n_nodes >= NODES_MAX) {
        log_error("the cluster names more than %d brokers; not opening a tunnel for broker %d",
                  NODES_MAX, id);
        return NULL;
    }
    node_t *n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    n->px = px;
    n->id = id;
    if (host_len >= HOST_MAX) host_len = HOST_MAX - 1;
    memcpy(n->host, host, host_len);
    n->port = port;
    list_init(&n->waiters);
    list_push(&px->nodes, &n->link);
    tunnel_config_t tc = {.to = px->cfg->to, .server = px->server, .port = public_port,
                          .secret = px->cfg->secret,
                          .heartbeat_timeout_ms = px->cfg->heartbeat_timeout_ms};
    tunnel_handler_t th = {on_tunnel_listening, on_tunnel_closed, on_tunnel_pair, n};
    n->tunnel = tunnel_open(px->loop, &tc, &th);
    if (n->tunnel == NULL) {
        list_remove(&n->link);
        free(n);
        return NULL;
    }
    px->n_nodes++;
    node_resolve(n);
    return n;
}

/* ---- the codec's view of the mapping -------------------------------------- */

/* kr_lookup_fn: the public address for an address the cluster advertised.
 * A node seen for the first time gets a tunnel (and the answer "not known
 * yet"); a node whose address changed is followed. */
static int lookup(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out)
{
    kconn_t *kc = ctx;
    kproxy_t *px = kc->px;
    const char *host = (const char *)frame + a->host_str_off;
    out->host = px->cfg->advertised_host;
    out->host_len = strlen(out->host);
    if (a->kind == KS_CONTROLLER) {
        /* Controller listeners (DescribeQuorum) are not tunnelled: clients only
         * display them. Hide the internal address. */
        out->port = 0;
        return KR_DONE;
    }
    node_t *n = node_find(px, a->node_id);
    if (n == NULL) {
        log_info("new broker %d at %.*s:%d: opening a tunnel", a->node_id, (int)a->host_len, host,
                 a->port);
        n = node_add(px, a->node_id, host, a->host_len, a->port, 0);
        if (n == NULL) return -1;
    } else if (n->port != a->port || strlen(n->host) != a->host_len ||
               memcmp(n->host, host, a->host_len) != 0) {
        log_info("broker %d moved from %s:%d to %.*s:%d", n->id, n->host, n->port, (int)a->host_len,
                 host, a->port);
        size_t len = a->host_len < HOST_MAX ? a->host_len : HOST_MAX - 1;
        memcpy(n->host, host, len);
        n->host[len] = '\0';
        n->port = a->port;
        node_resolve(n);
    }
    if (n->public_port == 0) return n->tunnel ? KR_PENDING : -1;
    out->port = n->public_port;
    return KR_DONE;
}

static void wake_waiters(node_t *n)
{
    while (!list_empty(&n->waiters)) {
        kconn_t *kc = LIST_ENTRY(n->waiters.next, kconn_t, wait_link);
        list_remove(&kc->wait_link);
        kc->waiting_on = NULL;
        int rc = kstream_resume(&kc->ks);
        if (rc == KR_PENDING) {
            node_t *m = node_find(n->px, kc->ks.plan.pending_node);
            if (m != NULL) {
                kc->waiting_on = m;
                list_push(&m->waiters, &kc->wait_link);
                continue;
            }
            rc = KF_BAD;
        }
        if (rc < 0) {
            log_warn("closing a client connection: %s", kc->ks.error ? kc->ks.error : "rewrite failed");
            relay_close(kc->relay);
            continue;
        }
        relay_continue(kc->relay, 1);
    }
}

/* ---- proxied connections ------------------------------------------------------ */

static int emit(void *ctx, const uint8_t *p, size_t len, void *owned)
{
    kconn_t *kc = ctx;
    relay_emit(kc->relay, 1, p, len, owned);
    return 0;
}

static void on_request(void *ctx, kf_req_t *req)
{
    (void)ctx;
    if (req->intercept)
        log_warn("a client uses SaslHandshake v0 (raw SASL tokens), which cannot be proxied: "
                 "answering UNSUPPORTED_VERSION; use a client with SaslHandshake v1");
    else
        log_debug("request api %d v%d correlation %d", req->api_key, req->api_version, req->corr_id);
}

/* Client -> broker: inspected, forwarded as is. */
static ssize_t filter_requests(void *ctx, relay_t *r, int dir, const uint8_t *p, size_t n)
{
    kconn_t *kc = ctx;
    if (kstream_request(&kc->ks, p, n) != 0) {
        log_warn("closing a client connection: %s", kc->ks.error);
        return -1;
    }
    relay_emit(r, dir, p, n, NULL);
    return (ssize_t)n;
}

/* Broker -> client: framed, matched, rewritten. A response naming a broker
 * without a tunnel yet pauses this direction until the tunnel listens. */
static ssize_t filter_responses(void *ctx, relay_t *r, int dir, const uint8_t *p, size_t n)
{
    kconn_t *kc = ctx;
    (void)r;
    (void)dir;
    if (kc->ks.pending) return 0;
    ssize_t used = kstream_response(&kc->ks, p, n);
    if (used < 0) {
        log_warn("closing a client connection: %s", kc->ks.error);
        return -1;
    }
    if (kc->ks.pending) {
        node_t *m = node_find(kc->px, kc->ks.plan.pending_node);
        if (m == NULL) return -1;
        kc->waiting_on = m;
        list_push(&m->waiters, &kc->wait_link);
    }
    return used;
}

/* Large buffered responses (Fetch v16+) are read in place. */
static int alloc_responses(void *ctx, uv_buf_t *buf)
{
    kconn_t *kc = ctx;
    uint8_t *p;
    size_t len;
    if (!kstream_response_buffer(&kc->ks, &p, &len)) return 0;
    *buf = uv_buf_init((char *)p, (unsigned)(len < (1u << 30) ? len : 1u << 30));
    return 1;
}

static void kconn_end(void *user)
{
    kconn_t *kc = user;
    list_remove(&kc->wait_link);
    kstream_free(&kc->ks);
    free(kc);
}

static int on_tunnel_pair(void *ctx, tunnel_t *t, uv_tcp_t *remote, relay_release_cb rr,
                          uv_tcp_t *local, relay_release_cb rl, const uint8_t *first, size_t len)
{
    node_t *n = ctx;
    kproxy_t *px = n->px;
    (void)t;
    kconn_t *kc = calloc(1, sizeof *kc);
    if (kc == NULL) return UV_ENOMEM;
    kc->px = px;
    list_init(&kc->wait_link);
    kstream_init(&kc->ks, px->cfg->max_frame);
    kc->ks.lookup = lookup;
    kc->ks.lookup_ctx = kc;
    kc->ks.emit = emit;
    kc->ks.emit_ctx = kc;
    kc->ks.on_request = on_request;
    kc->ks.request_ctx = kc;
    relay_filter_t filters[2] = {{filter_requests, kc, NULL}, {filter_responses, kc, alloc_responses}};
    int rc = relay_start_filtered(&px->relays, remote, rr, local, rl, first, len, filters, kconn_end,
                                  kc, &kc->relay);
    if (rc != 0) {
        kstream_free(&kc->ks);
        free(kc);
    }
    return rc;
}

/* ---- start-up: ask the cluster for its brokers ---------------------------------- */

static void probe_fail(kproxy_t *px, const char *why)
{
    fprintf(stderr, "Error: Kafka at %s:%u: %s\n", px->bs_host, px->bs_port, why);
    px_stop(px, 1);
}

/* The Metadata answer: one tunnel per broker, plus the bootstrap's. */
static void probe_metadata(kproxy_t *px, const uint8_t *frame, size_t len)
{
    ks_scan_t s = {0};
    if (ks_scan(&s, KAFKA_METADATA, 1, frame, len) != 0 || s.n_addrs == 0) {
        ks_free(&s);
        probe_fail(px, "unreadable Metadata response (is it a Kafka broker?)");
        return;
    }
    px->state = PX_TUNNELS;
    uv_close((uv_handle_t *)&px->probe, NULL);
    px->probe_open = 0;
    if (node_add(px, -1, px->bs_host, strlen(px->bs_host), px->bs_port, px->cfg->port) == NULL) {
        ks_free(&s);
        probe_fail(px, "out of memory");
        return;
    }
    for (uint32_t i = 0; i < s.n_addrs; i++) {
        const ks_addr_t *a = &s.addrs[i];
        if (node_find(px, a->node_id)) continue;
        if (node_add(px, a->node_id, (const char *)frame + a->host_str_off, a->host_len, a->port, 0) ==
            NULL) {
            ks_free(&s);
            probe_fail(px, px->n_nodes >= NODES_MAX ? "the cluster names more brokers than the proxy "
                                                      "tunnels (1024)"
                                                    : "out of memory");
            return;
        }
    }
    log_info("the cluster has %u broker%s; opening tunnels on %s", s.n_addrs,
             s.n_addrs == 1 ? "" : "s", px->cfg->to);
    ks_free(&s);
}

static void probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    kproxy_t *px = h->data;
    (void)hint;
    size_t cap = 1 << 20; /* a Metadata answer for no topics is small */
    if (px->probe_buf == NULL) px->probe_buf = malloc(cap);
    *buf = uv_buf_init((char *)px->probe_buf + px->probe_len,
                       px->probe_buf ? (unsigned)(cap - px->probe_len) : 0);
}

static void probe_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    kproxy_t *px = st->data;
    (void)buf;
    if (px->state != PX_METADATA || nread == 0) return;
    if (nread < 0) {
        probe_fail(px, nread == UV_EOF ? "the broker closed the connection (is it Kafka, and plaintext?)"
                                       : uv_strerror((int)nread));
        return;
    }
    px->probe_len += (size_t)nread;
    while (px->state == PX_METADATA) {
        uint32_t size;
        int rc = kf_size(px->probe_buf, px->probe_len, (1 << 20) - 4, &size);
        if (rc == KF_NEED_MORE) return;
        if (rc != 0) {
            probe_fail(px, kf_looks_like_tls(px->probe_buf, px->probe_len)
                               ? "the broker answered with TLS: it expects TLS clients, and bore "
                                 "kafka-proxy connects to brokers in plaintext"
                               : "the answer is not Kafka (bad frame size)");
            return;
        }
        if (px->probe_len < 4 + (size_t)size) {
            if (4 + (size_t)size > (1 << 20)) probe_fail(px, "Metadata response too large");
            return;
        }
        if (px->probe_frames++ == 1) {
            probe_metadata(px, px->probe_buf, 4 + (size_t)size);
            return;
        }
        /* The first answer is ApiVersions: only its framing matters here. */
        memmove(px->probe_buf, px->probe_buf + 4 + size, px->probe_len - 4 - size);
        px->probe_len -= 4 + (size_t)size;
    }
}

static void probe_connected(uv_connect_t *req, int status)
{
    kproxy_t *px = req->data;
    if (px->state != PX_METADATA) return;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "not reachable: %s", uv_strerror(status));
        probe_fail(px, why);
        return;
    }
    /* ApiVersions v0 and Metadata v1 for no topics (an empty array), pipelined. */
    static const uint8_t req_bytes[] = {
        0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, 'b', 'o', 'r', 'e',
        0, 0, 0, 18, 0, 3, 0, 1, 0, 0, 0, 2, 0, 4, 'b', 'o', 'r', 'e', 0, 0, 0, 0,
    };
    uv_buf_t b = uv_buf_init((char *)req_bytes, sizeof req_bytes);
    if (uv_try_write((uv_stream_t *)&px->probe, &b, 1) != (int)sizeof req_bytes ||
        uv_read_start((uv_stream_t *)&px->probe, probe_alloc, probe_read) != 0)
        probe_fail(px, "cannot send the Metadata request");
}

static void on_startup_timeout(uv_timer_t *t)
{
    kproxy_t *px = t->data;
    if (px->state == PX_METADATA)
        probe_fail(px, "no answer within 10 s");
    else if (px->state == PX_TUNNELS) {
        fprintf(stderr, "Error: the tunnel server %s did not open every tunnel within 10 s\n",
                px->cfg->to);
        px_stop(px, 1);
    }
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void px_stop(kproxy_t *px, int code)
{
    if (px->state == PX_DONE) return;
    px->state = PX_DONE;
    px->exit_code = code;
    if (px->probe_open) {
        px->probe_open = 0;
        uv_close((uv_handle_t *)&px->probe, NULL);
    }
    uv_close((uv_handle_t *)&px->timer, NULL);
    uv_close((uv_handle_t *)&px->sigint, NULL);
    uv_close((uv_handle_t *)&px->sigterm, NULL);
    for (list_t *e = px->nodes.next; e != &px->nodes; e = e->next) {
        node_t *n = LIST_ENTRY(e, node_t, link);
        if (n->resolving) uv_cancel((uv_req_t *)&n->gai);
        if (n->tunnel) tunnel_close(n->tunnel);
        n->tunnel = NULL;
    }
    relay_close_all(&px->relays);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    kproxy_t *px = sig->data;
    log_info("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    px_stop(px, 0);
}

int kproxy_run(const kproxy_config_t *cfg)
{
    kproxy_t *px = calloc(1, sizeof *px);
    if (px == NULL) return 1;
    px->cfg = cfg;
    px->loop = uv_default_loop();
    list_init(&px->nodes);
    list_init(&px->relays);
    signal(SIGPIPE, SIG_IGN);
    int code = 1;

    if (resolve_split(cfg->bootstrap, px->bs_host, sizeof px->bs_host, &px->bs_port, 9092) != 0) {
        fprintf(stderr, "Error: invalid --bootstrap-server '%s' (expected HOST:PORT)\n", cfg->bootstrap);
        goto out;
    }
    struct sockaddr_storage bs;
    int rc = resolve_host(px->loop, px->bs_host, px->bs_port, &bs, 1);
    if (rc < 0) {
        fprintf(stderr, "Error: Kafka at %s:%u: cannot resolve %s: %s\n", px->bs_host, px->bs_port,
                px->bs_host, uv_strerror(rc));
        goto out;
    }
    rc = resolve_host(px->loop, cfg->to, CONTROL_PORT, &px->server, 1);
    if (rc < 0) {
        fprintf(stderr, "Error: could not connect to %s:%d: %s\n", cfg->to, CONTROL_PORT, uv_strerror(rc));
        goto out;
    }

    uv_timer_init(px->loop, &px->timer);
    px->timer.data = px;
    uv_timer_start(&px->timer, on_startup_timeout, STARTUP_MS, 0);
    uv_signal_init(px->loop, &px->sigint);
    uv_signal_init(px->loop, &px->sigterm);
    px->sigint.data = px->sigterm.data = px;
    uv_signal_start(&px->sigint, on_signal, SIGINT);
    uv_signal_start(&px->sigterm, on_signal, SIGTERM);

    log_info("asking Kafka at %s:%u for its brokers", px->bs_host, px->bs_port);
    uv_tcp_init(px->loop, &px->probe);
    px->probe.data = px;
    px->probe_open = 1;
    px->probe_req.data = px;
    rc = uv_tcp_connect(&px->probe_req, &px->probe, (const struct sockaddr *)&bs, probe_connected);
    if (rc != 0) {
        char why[128];
        snprintf(why, sizeof why, "not reachable: %s", uv_strerror(rc));
        probe_fail(px, why);
    }
    uv_run(px->loop, UV_RUN_DEFAULT);
    code = px->exit_code;
out:
    while (!list_empty(&px->nodes)) {
        node_t *n = LIST_ENTRY(px->nodes.next, node_t, link);
        list_remove(&n->link);
        free(n);
    }
    uv_loop_close(px->loop);
    relay_pool_drain();
    free(px->probe_buf);
    free(px);
    return code;
}
