/* server.c - see server.h. */
#include "server.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "frame.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "net.h"
#include "relay.h"
#include "srcmap.h"
#include "status.h"
#include "uuid.h"

#define LOG_TARGET "bore::server"

#define HANDSHAKE_MS 3000     /* §6: every handshake message */
#define HEARTBEAT_MS 500      /* §3 step 4 */
#define PARK_MS 10000         /* §3 step 4: unaccepted visitor expiry */
#define PORT_ATTEMPTS 150     /* §4 */
#define CONN_RBUF 1024        /* pre-relay input cap per connection */
#define CTL_OUTQ_MAX 65536    /* queued control output before a peer counts as stuck */
#define DEAD_PEER_SECS 20 /* a vanished client is noticed in about this long */
#define VISITOR_BUCKETS 4096

/* CONN_HELD: a tunnel whose control connection ended, its port kept for
 * --grace so that its client can take it back (with its parked visitors). */
enum conn_state { CONN_AUTH, CONN_HELLO, CONN_TUNNEL, CONN_RELAY, CONN_CLOSING, CONN_HELD };

static const char *const state_names[] = {"auth", "hello", "tunnel", "relay", "closing", "held"};

typedef struct server server_t;

typedef struct conn {
    uv_tcp_t tcp; /* first: relay.c hands it back by this pointer */
    uv_timer_t timer;    /* handshake deadline, then heartbeats */
    net_listener_t listener; /* the tunnel port (TUNNEL only) */
    server_t *srv;
    list_t link;         /* srv->conns, while AUTH/HELLO/TUNNEL */
    enum conn_state state;
    int open_handles;    /* freed when this drops to 0 */
    int has_listener;
    int close_after_write;
    int no_grace;    /* dropped for misbehaving: the port is freed at once */
    uint64_t held_since;
    uint16_t port;
    uint8_t challenge[16];
    list_t parked;       /* visitor_t.tunnel_link */
    unsigned n_parked;
    unsigned n_relays; /* relays of this tunnel's visitors, each holding a reference */
    size_t rlen;
    uint8_t *rbuf; /* CONN_RBUF bytes; freed when the connection becomes a relay */
    struct ctl_write *ctl_writing; /* control output being written, or NULL */
    struct ctl_write *ctl_next;    /* control output collected meanwhile, or NULL */
    char peer[NET_ADDR_STRLEN];
    src_key_t src; /* counted in srv->handshakes_by_src while AUTH/HELLO */
    relay_stats_t stats; /* TUNNEL: its visitors' bytes, [0] to visitors, [1] from them */
    uint64_t visitors_total;
    metrics_series_t *ms[5]; /* TUNNEL: bytes in, out, visitors active, parked, total */
} conn_t;

typedef struct visitor {
    uv_tcp_t tcp; /* first: freed through it */
    conn_t *tunnel;
    list_t tunnel_link;
    list_t expiry_link;
    list_t hash_link;
    uint64_t deadline;
    uint8_t uuid[16];
} visitor_t;

struct server {
    const server_config_t *cfg;
    uv_loop_t *loop;
    uint8_t key[AUTH_KEY_LEN];
    net_listener_t control;
    uv_timer_t expiry;
    uv_signal_t sigint, sigterm;
    list_t conns;
    list_t parked; /* visitor_t.expiry_link, oldest first */
    list_t relays;
    list_t buckets[VISITOR_BUCKETS];
    unsigned n_handshakes, n_tunnels, n_parked, n_relays;
    srcmap_t handshakes_by_src;
    uint64_t n_refused, last_refusal_log;
    uint64_t accept_errors; /* accept failures, EMFILE included */
    uint64_t last_accept_log;
    int stopping;
    uint64_t sessions_total; /* control connections accepted */
    metrics_family_t *f_bytes, *f_tunnel_visitors, *f_tunnel_parked, *f_tunnel_visitors_total;
    metrics_series_t *m_sessions, *m_handshakes, *m_tunnels, *m_parked, *m_relays, *m_expired;
};

/* Why a handshake failed, and which cap refused a visitor or tunnel: one
 * counter each (metrics.h), made at start when --metrics is on. */
enum { HS_INVALID_SECRET, HS_NO_SECRET, HS_MALFORMED, HS_TIMEOUT, HS_FRAME_TOO_LONG, HS_UNKNOWN_ID,
       HS_PORT_REFUSED, HS_CLOSED, HS_N };
static const char *const hs_reasons[HS_N] = {"invalid_secret", "no_secret",        "malformed",
                                             "timeout",        "frame_too_long",   "unknown_id",
                                             "port_refused",   "closed"};
enum { CAP_HANDSHAKES, CAP_HANDSHAKES_PER_SOURCE, CAP_TUNNELS, CAP_PENDING, CAP_PENDING_PER_TUNNEL,
       CAP_RELAYS, CAP_RELAYS_PER_TUNNEL, CAP_N };
static const char *const cap_names[CAP_N] = {"max-handshakes", "max-handshakes-per-source",
                                             "max-tunnels",    "max-pending",
                                             "max-pending-per-tunnel", "max-relays",
                                             "max-relays-per-tunnel"};
static metrics_series_t *m_failed[HS_N], *m_refused[CAP_N];

/* Queued control output: at most two records per connection - one being
 * written, one collecting what comes meanwhile - each a request and its
 * bytes in one allocation. So the heap queued output holds is its payload
 * plus two small headers, and CTL_OUTQ_MAX bounds what is really allocated
 * (issue 13: one record per message cost ~720 bytes for a 12-byte
 * Heartbeat). */
typedef struct ctl_write {
    uv_write_t req;
    size_t len, cap;
    uint8_t data[];
} ctl_write_t;

static void conn_close(conn_t *c);
static void ctl_flush(conn_t *c);

/* ---- control output ---------------------------------------------------- */

static size_t ctl_queued(const conn_t *c)
{
    return (c->ctl_writing ? sizeof(ctl_write_t) + c->ctl_writing->cap : 0) +
           (c->ctl_next ? sizeof(ctl_write_t) + c->ctl_next->cap : 0);
}

static void on_ctl_write(uv_write_t *req, int status)
{
    conn_t *c = req->data; /* not handle->data: a relay may own the handle now */
    free(req);
    c->ctl_writing = NULL;
    if (c->state == CONN_CLOSING || c->state == CONN_RELAY || c->state == CONN_HELD) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    ctl_flush(c);
}

/* Starts writing what was collected, or closes if that was asked for and
 * everything is out. */
static void ctl_flush(conn_t *c)
{
    if (c->ctl_next == NULL) {
        if (c->close_after_write) conn_close(c);
        return;
    }
    ctl_write_t *wr = c->ctl_next;
    c->ctl_next = NULL;
    uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)wr->len);
    wr->req.data = c;
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_ctl_write) != 0) {
        free(wr);
        conn_close(c);
        return;
    }
    c->ctl_writing = wr;
}

/* Writes bytes to a control connection. Tries a direct write first; the rest
 * is queued unless the queue would then hold more than CTL_OUTQ_MAX bytes
 * of heap, in which case the peer is not reading and the connection is
 * dropped. With close_after, the connection closes once the bytes are out
 * (an Error before close). */
static void conn_send(conn_t *c, const uint8_t *p, size_t n, int close_after)
{
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    c->close_after_write |= close_after;
    int w = UV_EAGAIN;
    if (c->ctl_writing == NULL) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        w = uv_try_write(s, &b, 1);
    }
    if (w == (int)n) {
        if (c->close_after_write) conn_close(c);
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t left = n - (size_t)(w < 0 ? 0 : w);
    ctl_write_t *wr = c->ctl_next;
    size_t len = (wr ? wr->len : 0) + left;
    if (wr == NULL || len > wr->cap) {
        size_t cap = wr && wr->cap * 2 > len ? wr->cap * 2 : len;
        if (cap < 256) cap = 256;
        size_t others = c->ctl_writing ? sizeof(ctl_write_t) + c->ctl_writing->cap : 0;
        if (others + sizeof(ctl_write_t) + len > CTL_OUTQ_MAX) {
            log_warn("%s is not reading its control connection; dropping it (%zu bytes queued)",
                     c->peer, ctl_queued(c));
            c->no_grace = 1; /* stuck, not lost: its port is not kept */
            conn_close(c);
            return;
        }
        if (others + sizeof(ctl_write_t) + cap > CTL_OUTQ_MAX)
            cap = CTL_OUTQ_MAX - others - sizeof(ctl_write_t);
        ctl_write_t *grown = realloc(wr, sizeof *wr + cap);
        if (grown == NULL) {
            conn_close(c);
            return;
        }
        if (wr == NULL) grown->len = 0;
        grown->cap = cap;
        c->ctl_next = wr = grown;
    }
    memcpy(wr->data + wr->len, p + (n - left), left);
    wr->len += left;
    if (c->ctl_writing == NULL) ctl_flush(c);
}

static void conn_send_error(conn_t *c, const char *text)
{
    uint8_t out[FRAME_MAX + 1];
    int n = msg_encode_text(MSG_ERROR, text, out, sizeof out);
    log_debug("%s: sending error: %s", c->peer, text);
    if (n > 0)
        conn_send(c, out, (size_t)n, 1);
    else
        conn_close(c);
}

/* A Hello or Connection followed by a Heartbeat, in one write, as upstream
 * sends them (§3 steps 3 and 4). */
static void conn_send_with_heartbeat(conn_t *c, const uint8_t *p, int n)
{
    uint8_t out[2 * (FRAME_MAX + 1)];
    int h = n > 0 ? msg_encode(&(msg_t){.type = MSG_HEARTBEAT}, out + n, sizeof out - (size_t)n) : -1;
    if (h < 0) {
        conn_close(c);
        return;
    }
    memcpy(out, p, (size_t)n);
    conn_send(c, out, (size_t)(n + h), 0);
}

/* Refusals come in floods: at most one line a second, with a running count. */
static void log_refusal(server_t *s, const char *who, const char *why, unsigned held)
{
    uint64_t now = uv_now(s->loop);
    if (s->n_refused++ > 0 && now - s->last_refusal_log < 1000) return;
    s->last_refusal_log = now;
    log_warn("refusing %s: %u %s (%llu refused so far)", who, held, why,
             (unsigned long long)s->n_refused);
}

/* ---- parked visitors ----------------------------------------------------- */

static list_t *bucket(server_t *s, const uint8_t uuid[16])
{
    uint32_t h;
    memcpy(&h, uuid, sizeof h);
    return &s->buckets[h % VISITOR_BUCKETS];
}

static void visitor_free(uv_handle_t *h) { free(h); }
static void visitor_release(uv_tcp_t *h) { free(h); }

static void visitor_unpark(server_t *s, visitor_t *v)
{
    list_remove(&v->tunnel_link);
    list_remove(&v->expiry_link);
    list_remove(&v->hash_link);
    v->tunnel->n_parked--;
    s->n_parked--;
}

static void visitor_drop(server_t *s, visitor_t *v)
{
    visitor_unpark(s, v);
    uv_close((uv_handle_t *)&v->tcp, visitor_free);
}

static visitor_t *visitor_find(server_t *s, const uint8_t uuid[16])
{
    list_t *b = bucket(s, uuid);
    for (list_t *e = b->next; e != b; e = e->next) {
        visitor_t *v = LIST_ENTRY(e, visitor_t, hash_link);
        if (memcmp(v->uuid, uuid, 16) == 0) return v;
    }
    return NULL;
}

/* One timer serves every parked visitor: they expire in arrival order, so
 * the timer only ever waits for the oldest. */
static void on_expiry(uv_timer_t *t)
{
    server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    while (!list_empty(&s->parked)) {
        visitor_t *v = LIST_ENTRY(s->parked.next, visitor_t, expiry_link);
        if (v->deadline > now) {
            uv_timer_start(&s->expiry, on_expiry, v->deadline - now, 0);
            return;
        }
        log_debug("visitor on port %u was not accepted within 10 s; dropped", v->tunnel->port);
        metrics_add(s->m_expired, 1);
        visitor_drop(s, v);
    }
}

static void arm_expiry(server_t *s)
{
    if (!uv_is_active((uv_handle_t *)&s->expiry)) uv_timer_start(&s->expiry, on_expiry, PARK_MS, 0);
}

/* ---- connections --------------------------------------------------------- */

static void conn_unref(conn_t *c)
{
    if (--c->open_handles > 0) return;
    free(c->ctl_next); /* never written: the connection closed first */
    free(c->rbuf);
    free(c);
}

static void conn_on_close(uv_handle_t *h) { conn_unref(h->data); }
static void conn_release_tcp(uv_tcp_t *h) { conn_unref((conn_t *)h); }

static void conn_set_state(conn_t *c, enum conn_state to)
{
    log_debug("%s: %s -> %s", c->peer, state_names[c->state], state_names[to]);
    server_t *s = c->srv;
    if (c->state == CONN_AUTH || c->state == CONN_HELLO) {
        if (to != CONN_AUTH && to != CONN_HELLO) {
            s->n_handshakes--;
            srcmap_remove(&s->handshakes_by_src, &c->src);
        }
    } else if (c->state == CONN_TUNNEL || c->state == CONN_HELD) {
        s->n_tunnels--;
    }
    if (to == CONN_TUNNEL || to == CONN_HELD) s->n_tunnels++;
    c->state = to;
}

static void on_grace_end(uv_timer_t *t)
{
    conn_t *c = t->data;
    conn_close(c); /* the port is free once this returns; c lives until its close callbacks */
    log_info("port %u released: its client (%s) did not come back within %u s", c->port, c->peer,
             c->srv->cfg->grace_ms / 1000);
}

/* The control connection of a tunnel ended: the listener stays for --grace,
 * visitors arriving meanwhile are parked as usual (10 s each), and the first
 * Hello asking for exactly this port takes it all (tunnel_take_back). */
static void conn_hold(conn_t *c)
{
    server_t *s = c->srv;
    log_info("tunnel on port %u: the control connection from %s ended; holding the port for %u s "
             "for its client to come back",
             c->port, c->peer, s->cfg->grace_ms / 1000);
    conn_set_state(c, CONN_HELD);
    c->held_since = uv_now(s->loop);
    uv_close((uv_handle_t *)&c->tcp, conn_on_close);
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_grace_end, s->cfg->grace_ms, 0);
}

static void conn_close(conn_t *c)
{
    if (c->state == CONN_CLOSING || c->state == CONN_RELAY) return;
    server_t *s = c->srv;
    int held = c->state == CONN_HELD;
    if (c->state == CONN_TUNNEL && !s->stopping && s->cfg->grace_ms > 0 && c->has_listener &&
        !c->no_grace) {
        conn_hold(c);
        return;
    }
    if (c->state == CONN_TUNNEL || held) {
        if (!held) {
            log_info("tunnel on port %u closed (%s)", c->port, c->peer);
            status_event("tunnel on port %u closed (%s)", c->port, c->peer);
        }
        for (size_t i = 0; i < sizeof c->ms / sizeof c->ms[0]; i++) {
            metrics_remove(c->ms[i]);
            c->ms[i] = NULL;
        }
        while (!list_empty(&c->parked))
            visitor_drop(s, LIST_ENTRY(c->parked.next, visitor_t, tunnel_link));
    }
    conn_set_state(c, CONN_CLOSING);
    list_remove(&c->link);
    if (!held) uv_close((uv_handle_t *)&c->tcp, conn_on_close);
    uv_close((uv_handle_t *)&c->timer, conn_on_close);
    if (c->has_listener) net_listener_close(&c->listener, conn_on_close);
}

/* ---- tunnels --------------------------------------------------------------- */

static void on_heartbeat(uv_timer_t *t)
{
    conn_t *c = t->data;
    uint8_t out[16];
    int n = msg_encode(&(msg_t){.type = MSG_HEARTBEAT}, out, sizeof out);
    if (n > 0) conn_send(c, out, (size_t)n, 0);
}

/* EMFILE and friends: the listener has shed the pending connection (the
 * peer sees EOF); we count, log at most once a second, and keep serving. */
static void accept_failed(server_t *s, const net_listener_t *l, int status)
{
    uint64_t now = uv_now(s->loop);
    if (s->accept_errors++ > 0 && now - s->last_accept_log < 1000) return;
    s->last_accept_log = now;
    log_error("accept failed on port %u: %s (%s; %llu accept errors so far)",
              net_local_port(l->fd), uv_strerror(status),
              l->shed ? "the connection was closed at once" : "the connection waits",
              (unsigned long long)s->accept_errors);
}

/* 1 (after logging the refusal of `what`) if tunnel t has all the relays
 * --max-relays-per-tunnel allows, or the server all --max-relays does. */
static int relays_full(conn_t *t, const char *what)
{
    server_t *s = t->srv;
    char who[64];
    snprintf(who, sizeof who, "%s on port %u", what, t->port);
    if (t->n_relays >= s->cfg->max_relays_per_tunnel) {
        metrics_add(m_refused[CAP_RELAYS_PER_TUNNEL], 1);
        log_refusal(s, who, "relays on this tunnel (--max-relays-per-tunnel)", t->n_relays);
        return 1;
    }
    if (s->n_relays >= s->cfg->max_relays) {
        metrics_add(m_refused[CAP_RELAYS], 1);
        log_refusal(s, who, "relays in all (--max-relays)", s->n_relays);
        return 1;
    }
    return 0;
}

static void on_visitor(net_listener_t *l, int fd, int status)
{
    conn_t *c = l->poll.data;
    server_t *s = c->srv;
    if (status < 0) {
        accept_failed(s, l, status);
        return;
    }
    visitor_t *v = calloc(1, sizeof *v);
    if (v == NULL) {
        close(fd);
        log_error("out of memory accepting a visitor on port %u", c->port);
        return;
    }
    int initialised;
    if (net_adopt(s->loop, &v->tcp, fd, &initialised) != 0) {
        if (initialised)
            uv_close((uv_handle_t *)&v->tcp, visitor_free);
        else
            free(v);
        return;
    }
    v->tcp.data = v;
    if (relays_full(c, "a visitor")) {
        uv_close((uv_handle_t *)&v->tcp, visitor_free);
        return;
    }
    if (s->n_parked >= s->cfg->max_pending || c->n_parked >= s->cfg->max_pending_per_tunnel) {
        metrics_add(m_refused[s->n_parked >= s->cfg->max_pending ? CAP_PENDING : CAP_PENDING_PER_TUNNEL], 1);
        log_warn("port %u: too many visitors waiting to be accepted (%u here, %u in all); refusing one",
                 c->port, c->n_parked, s->n_parked);
        uv_close((uv_handle_t *)&v->tcp, visitor_free);
        return;
    }
    if (uuid_v4(v->uuid) != 0) {
        log_error("random number generator failed");
        uv_close((uv_handle_t *)&v->tcp, visitor_free);
        return;
    }
    v->tunnel = c;
    v->deadline = uv_now(s->loop) + PARK_MS;
    list_push(&c->parked, &v->tunnel_link);
    list_push(&s->parked, &v->expiry_link);
    list_push(bucket(s, v->uuid), &v->hash_link);
    c->n_parked++;
    s->n_parked++;
    arm_expiry(s);

    char peer[NET_ADDR_STRLEN];
    if (c->state == CONN_HELD) {
        /* Announced to the client when it comes back, if within 10 s. */
        log_info("new visitor %s on port %u, parked until its client comes back",
                 net_peer(&v->tcp, peer), c->port);
        return;
    }
    log_info("new visitor %s on port %u", net_peer(&v->tcp, peer), c->port);
    uint8_t out[FRAME_MAX + 1];
    conn_send_with_heartbeat(c, out, msg_encode_uuid(MSG_CONNECTION, v->uuid, out, sizeof out));
}

/* Binds the tunnel listener for Hello(port), §4. Returns NULL or the error
 * text to send. */
static const char *open_tunnel(conn_t *c, uint16_t want)
{
    server_t *s = c->srv;
    const server_config_t *cfg = s->cfg;
    if (s->n_tunnels >= cfg->max_tunnels) {
        metrics_add(m_refused[CAP_TUNNELS], 1);
        log_warn("refusing a tunnel for %s: %u tunnels open (--max-tunnels)", c->peer, s->n_tunnels);
        return "server is at its tunnel limit, try again later";
    }
    if (want != 0 && (want < cfg->min_port || want > cfg->max_port)) {
        log_warn("refusing port %u to %s: not in the allowed range %u-%u", want, c->peer,
                 cfg->min_port, cfg->max_port);
        return "client port number not in allowed range";
    }

    int rc = UV_EADDRINUSE;
    for (int i = 0; i < (want ? 1 : PORT_ATTEMPTS); i++) {
        uint16_t port = want;
        if (port == 0) {
            uint32_t r;
            if (RAND_bytes((unsigned char *)&r, sizeof r) != 1) return "failed to bind to port";
            port = (uint16_t)(cfg->min_port + r % ((uint32_t)cfg->max_port - cfg->min_port + 1));
        }
        rc = net_listen_fd(cfg->bind_tunnels, port, 128);
        if (rc >= 0) break;
    }
    if (rc >= 0) {
        int initialised;
        rc = net_listener_start(s->loop, &c->listener, rc, on_visitor, &initialised);
        c->listener.poll.data = c;
        if (initialised) {
            c->has_listener = 1;
            c->open_handles++;
        }
        if (rc == 0) {
            c->port = net_local_port(c->listener.fd);
            return NULL;
        }
        log_error("cannot listen on the tunnel port: %s", uv_strerror(rc));
        return "failed to bind to port";
    }
    if (want == 0) {
        log_warn("refusing a tunnel to %s: no free port found in %u-%u after %d tries", c->peer,
                 cfg->min_port, cfg->max_port, PORT_ATTEMPTS);
        return "failed to find an available port";
    }
    log_warn("refusing port %u to %s: %s", want, c->peer, uv_strerror(rc));
    if (rc == UV_EADDRINUSE) return "port already in use";
    if (rc == UV_EACCES || rc == UV_EPERM) return "permission denied";
    return "failed to bind to port";
}

/* The tunnel's series, labelled with its port. */
static void tunnel_metrics(conn_t *c)
{
    server_t *s = c->srv;
    char port[8];
    snprintf(port, sizeof port, "%u", c->port);
    c->ms[0] = metrics_counter_ref(s->f_bytes, (const char *const[]){port, "in"}, &c->stats.bytes[1]);
    c->ms[1] = metrics_counter_ref(s->f_bytes, (const char *const[]){port, "out"}, &c->stats.bytes[0]);
    c->ms[2] = metrics_series(s->f_tunnel_visitors, (const char *const[]){port});
    c->ms[3] = metrics_series(s->f_tunnel_parked, (const char *const[]){port});
    c->ms[4] = metrics_counter_ref(s->f_tunnel_visitors_total, (const char *const[]){port},
                                   &c->visitors_total);
    status_event("new tunnel on port %u for %s", c->port, c->peer);
}

/* The held tunnel on `port`, or NULL. */
static conn_t *held_find(server_t *s, uint16_t port)
{
    for (list_t *e = s->conns.next; e != &s->conns; e = e->next) {
        conn_t *h = LIST_ENTRY(e, conn_t, link);
        if (h->state == CONN_HELD && h->port == port) return h;
    }
    return NULL;
}

/* Hello(port) for a held port: c takes over its listener (the same socket,
 * so nothing in its backlog is lost) and its parked visitors. With a
 * secret, c has authenticated. Returns NULL or the error text to send. */
static const char *tunnel_take_back(conn_t *c, conn_t *h)
{
    server_t *s = c->srv;
    int fd = fcntl(h->listener.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        log_error("cannot hand port %u back: %s", h->port, uv_strerror(uv_translate_sys_error(errno)));
        return "failed to bind to port";
    }
    int initialised;
    int rc = net_listener_start(s->loop, &c->listener, fd, on_visitor, &initialised);
    c->listener.poll.data = c;
    if (initialised) {
        c->has_listener = 1;
        c->open_handles++;
    }
    if (rc != 0) {
        log_error("cannot hand port %u back: %s", h->port, uv_strerror(rc));
        return "failed to bind to port";
    }
    c->port = h->port;
    unsigned moved = 0;
    while (!list_empty(&h->parked)) {
        visitor_t *v = LIST_ENTRY(h->parked.next, visitor_t, tunnel_link);
        list_remove(&v->tunnel_link);
        list_push(&c->parked, &v->tunnel_link);
        v->tunnel = c;
        h->n_parked--;
        c->n_parked++;
        moved++;
    }
    log_info("port %u handed back to its client %s after %.1f s (%u visitor%s waiting)", c->port,
             c->peer, (double)(uv_now(s->loop) - h->held_since) / 1000.0, moved,
             moved == 1 ? "" : "s");
    conn_close(h);
    return NULL;
}

static void handle_hello(conn_t *c, uint16_t want)
{
    server_t *s = c->srv;
    conn_t *h = want != 0 ? held_find(s, want) : NULL;
    const char *err = h != NULL ? tunnel_take_back(c, h) : open_tunnel(c, want);
    if (err != NULL) {
        metrics_add(m_failed[HS_PORT_REFUSED], 1);
        conn_send_error(c, err);
        return;
    }
    conn_set_state(c, CONN_TUNNEL);
    if (h == NULL) log_info("new tunnel on port %u for %s", c->port, c->peer);
    tunnel_metrics(c);
    net_tune(&c->tcp, 0);
    net_detect_dead_peer(&c->tcp, DEAD_PEER_SECS); /* keepalive + TCP_USER_TIMEOUT */
    uv_timer_start(&c->timer, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
    uint8_t out[FRAME_MAX + 1];
    conn_send_with_heartbeat(c, out, msg_encode_port(MSG_HELLO, c->port, out, sizeof out));
    /* The visitors that came while the port was held, announced again. */
    for (list_t *e = c->parked.next; e != &c->parked && c->state == CONN_TUNNEL; e = e->next) {
        visitor_t *v = LIST_ENTRY(e, visitor_t, tunnel_link);
        conn_send_with_heartbeat(c, out, msg_encode_uuid(MSG_CONNECTION, v->uuid, out, sizeof out));
    }
}

static void on_relay_end(void *user)
{
    conn_t *t = user;
    t->n_relays--;
    t->srv->n_relays--;
    conn_unref(t);
}

/* Accept(uuid): hand this connection and the parked visitor to a relay,
 * forwarding whatever the client sent after the Accept's NUL first (§1). */
static void handle_accept(conn_t *c, const uint8_t uuid[16], const uint8_t *rest, size_t len)
{
    server_t *s = c->srv;
    visitor_t *v = visitor_find(s, uuid);
    if (v == NULL) {
        log_debug("%s: accept for an unknown or expired id", c->peer);
        metrics_add(m_failed[HS_UNKNOWN_ID], 1);
        conn_close(c);
        return;
    }
    conn_t *t = v->tunnel;
    if (relays_full(t, "an accept")) { /* parked before the relays filled up */
        visitor_drop(s, v);
        conn_close(c);
        return;
    }
    visitor_unpark(s, v);
    net_tune(&c->tcp, 0);
    net_tune(&v->tcp, 0);
    uv_read_stop((uv_stream_t *)&c->tcp);
    relay_t *r = NULL;
    int rc = relay_start_filtered(&s->relays, &c->tcp, conn_release_tcp, &v->tcp, visitor_release,
                                  rest, len, NULL, on_relay_end, t, &r);
    if (rc != 0) {
        log_error("cannot start a relay: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&v->tcp, visitor_free);
        conn_close(c);
        return;
    }
    relay_set_stats(r, &t->stats);
    t->stats.bytes[0] += len; /* the caller's to count (relay.h) */
    t->visitors_total++;
    t->n_relays++;
    t->open_handles++; /* the tunnel's counters outlive its control connection */
    s->n_relays++;
    conn_set_state(c, CONN_RELAY);
    list_remove(&c->link);
    uv_close((uv_handle_t *)&c->timer, conn_on_close);
    /* The leftover was copied by relay_start: an idle relay keeps no buffer. */
    free(c->rbuf);
    c->rbuf = NULL;
}

/* ---- handshake input --------------------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    conn_t *c = t->data;
    metrics_add(m_failed[HS_TIMEOUT], 1);
    if (c->state == CONN_AUTH) {
        conn_send_error(c, "timed out waiting for initial message");
    } else {
        log_debug("%s: no message within 3 s; closing", c->peer);
        conn_close(c);
    }
}

/* One complete frame in AUTH or HELLO state (§7). `rest` is the input after
 * it. Returns 1 if the caller should keep parsing frames. */
static int handle_frame(conn_t *c, const uint8_t *p, size_t n, const uint8_t *rest, size_t rest_len)
{
    server_t *s = c->srv;
    msg_t m;
    int ok = msg_decode(MSG_FROM_CLIENT, p, n, &m) == 0;

    if (c->state == CONN_AUTH) {
        if (!ok) {
            metrics_add(m_failed[HS_MALFORMED], 1);
            conn_send_error(c, "unable to parse message");
        } else if (m.type != MSG_AUTHENTICATE) {
            metrics_add(m_failed[HS_NO_SECRET], 1);
            conn_send_error(c, "server requires secret, but no secret was provided");
        } else if (!auth_verify(s->key, c->challenge, m.text, m.text_len)) {
            metrics_add(m_failed[HS_INVALID_SECRET], 1);
            log_warn("%s: invalid secret", c->peer);
            conn_send_error(c, "invalid secret");
        } else {
            conn_set_state(c, CONN_HELLO);
            uv_timer_start(&c->timer, on_deadline, HANDSHAKE_MS, 0);
            return 1;
        }
        return 0;
    }
    if (!ok || m.type == MSG_AUTHENTICATE) {
        metrics_add(m_failed[HS_MALFORMED], 1);
        log_debug("%s: unexpected or malformed message; closing", c->peer);
        conn_close(c);
        return 0;
    }
    if (m.type == MSG_HELLO)
        handle_hello(c, m.port);
    else
        handle_accept(c, m.uuid, rest, rest_len);
    return 0;
}

static void on_conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)hint;
    /* A tunnel's control connection is only read to notice the client
     * leaving: its input is discarded. */
    if (c->state == CONN_TUNNEL) c->rlen = 0;
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(CONN_RBUF - c->rlen));
}

static void on_conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    (void)buf;
    if (nread == 0 || c->state == CONN_CLOSING || c->close_after_write) return;
    if (c->state == CONN_TUNNEL) {
        if (nread < 0) {
            log_debug("%s: control connection ended: %s", c->peer, uv_strerror((int)nread));
            conn_close(c);
        }
        return;
    }
    int eof = nread < 0;
    if (eof && nread != UV_EOF) {
        metrics_add(m_failed[HS_CLOSED], 1);
        log_debug("%s: read failed: %s", c->peer, uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (!eof) c->rlen += (size_t)nread;

    size_t off = 0;
    for (;;) {
        size_t n;
        int rc = frame_next(c->rbuf + off, c->rlen - off, eof, &n);
        if (rc == FRAME_TOO_LONG) {
            metrics_add(m_failed[HS_FRAME_TOO_LONG], 1);
            log_debug("%s: frame over %d bytes; closing", c->peer, FRAME_MAX);
            if (c->state == CONN_AUTH)
                conn_send_error(c, "frame error, invalid byte length");
            else
                conn_close(c);
            return;
        }
        if (rc == FRAME_NEED_MORE) break;
        const uint8_t *frame = c->rbuf + off;
        off += (size_t)rc;
        if (!handle_frame(c, frame, n, c->rbuf + off, c->rlen - off)) return;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (eof) {
        metrics_add(m_failed[c->state == CONN_AUTH ? HS_NO_SECRET : HS_CLOSED], 1);
        if (c->state == CONN_AUTH)
            conn_send_error(c, "server requires secret, but no secret was provided");
        else
            conn_close(c);
    }
}

/* ---- control listener ------------------------------------------------------ */

/* The handshake pool (--max-handshakes) is shared fairly: once half of it
 * is taken, a source (srcmap.h) that already holds
 * --max-handshakes-per-source slots gets no more, so one address flooding
 * the control port holds at most half the pool and everyone else keeps
 * getting in (OpenSSH's PerSourceMaxStartups, in spirit). Below half, a
 * busy client's burst of Accept connections is never refused. Returns 1 and
 * counts c's source, or 0 after logging the refusal. */
static int admit_handshake(server_t *s, conn_t *c)
{
    const server_config_t *cfg = s->cfg;
    if (s->n_handshakes >= cfg->max_handshakes) {
        metrics_add(m_refused[CAP_HANDSHAKES], 1);
        log_refusal(s, c->peer, "connections already in handshake (--max-handshakes)", s->n_handshakes);
        return 0;
    }
    if (src_key_of(&c->tcp, &c->src) != 0) return 0; /* already gone */
    unsigned mine = srcmap_count(&s->handshakes_by_src, &c->src);
    if (s->n_handshakes >= cfg->max_handshakes / 2 && mine >= cfg->max_handshakes_per_source) {
        metrics_add(m_refused[CAP_HANDSHAKES_PER_SOURCE], 1);
        log_refusal(s, c->peer, "connections from this source in handshake (--max-handshakes-per-source)",
                    mine);
        return 0;
    }
    if (srcmap_add(&s->handshakes_by_src, &c->src) != 0) {
        log_error("out of memory accepting a connection");
        return 0;
    }
    return 1;
}

static void on_control(net_listener_t *l, int fd, int status)
{
    server_t *s = l->poll.data;
    if (status < 0) {
        accept_failed(s, l, status);
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (c != NULL && (c->rbuf = malloc(CONN_RBUF)) == NULL) {
        free(c);
        c = NULL;
    }
    if (c == NULL) {
        close(fd);
        log_error("out of memory accepting a connection");
        return;
    }
    c->srv = s;
    c->open_handles = 1;
    list_init(&c->link);
    list_init(&c->parked);
    int initialised;
    if (net_adopt(s->loop, &c->tcp, fd, &initialised) != 0) {
        if (initialised) {
            c->tcp.data = c;
            uv_close((uv_handle_t *)&c->tcp, conn_on_close);
        } else {
            free(c->rbuf);
            free(c);
        }
        return;
    }
    c->tcp.data = c;
    net_peer(&c->tcp, c->peer);
    if (!admit_handshake(s, c)) {
        uv_close((uv_handle_t *)&c->tcp, conn_on_close);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->open_handles++;
    list_push(&s->conns, &c->link);
    s->n_handshakes++;
    s->sessions_total++;
    c->state = s->cfg->secret ? CONN_AUTH : CONN_HELLO;
    log_debug("incoming connection from %s", c->peer);

    uv_timer_start(&c->timer, on_deadline, HANDSHAKE_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read) != 0) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_AUTH) {
        uint8_t out[FRAME_MAX + 1];
        int n = uuid_v4(c->challenge) == 0
                    ? msg_encode_uuid(MSG_CHALLENGE, c->challenge, out, sizeof out)
                    : -1;
        if (n < 0)
            conn_close(c);
        else
            conn_send(c, out, (size_t)n, 0);
    }
}

/* ---- metrics and /status ------------------------------------------------------ */

static void server_collect(void *ctx)
{
    server_t *s = ctx;
    metrics_set(s->m_handshakes, s->n_handshakes);
    metrics_set(s->m_tunnels, s->n_tunnels);
    metrics_set(s->m_parked, s->n_parked);
    metrics_set(s->m_relays, s->n_relays);
    for (list_t *e = s->conns.next; e != &s->conns; e = e->next) {
        conn_t *c = LIST_ENTRY(e, conn_t, link);
        if (c->state != CONN_TUNNEL) continue;
        metrics_set(c->ms[2], c->n_relays);
        metrics_set(c->ms[3], c->n_parked);
    }
}

static void server_metrics(server_t *s)
{
    static const char *const port_dir[] = {"port", "direction", NULL};
    static const char *const port[] = {"port", NULL};
    static const char *const reason[] = {"reason", NULL};
    static const char *const cap[] = {"cap", NULL};
    s->m_sessions = metrics_counter_ref(
        metrics_family("bore_server_control_connections_total",
                       "Connections accepted on the control port", METRICS_COUNTER, NULL, NULL),
        NULL, &s->sessions_total);
    s->m_handshakes = metrics_series(metrics_family("bore_server_handshakes",
                                                    "Control connections in handshake now",
                                                    METRICS_GAUGE, NULL, NULL), NULL);
    s->m_tunnels = metrics_series(metrics_family("bore_server_tunnels",
                                                 "Tunnels open now (control sessions owning a port)",
                                                 METRICS_GAUGE, NULL, NULL), NULL);
    s->m_parked = metrics_series(metrics_family("bore_server_visitors_parked",
                                                "Visitors waiting for their client to accept them",
                                                METRICS_GAUGE, NULL, NULL), NULL);
    s->m_relays = metrics_series(metrics_family("bore_server_visitors_active",
                                                "Visitor connections being relayed now",
                                                METRICS_GAUGE, NULL, NULL), NULL);
    s->m_expired = metrics_series(metrics_family("bore_server_visitors_expired_total",
                                                 "Visitors dropped because no client accepted them "
                                                 "within 10 s",
                                                 METRICS_COUNTER, NULL, NULL), NULL);
    metrics_family_t *f = metrics_family("bore_server_refused_total",
                                         "Connections refused by a cap, by the option that sets it",
                                         METRICS_COUNTER, cap, NULL);
    for (int i = 0; i < CAP_N; i++) m_refused[i] = metrics_series(f, (const char *const[]){cap_names[i]});
    f = metrics_family("bore_server_handshakes_failed_total",
                       "Control connections that ended before becoming a tunnel or a relay, by reason",
                       METRICS_COUNTER, reason, NULL);
    for (int i = 0; i < HS_N; i++) m_failed[i] = metrics_series(f, (const char *const[]){hs_reasons[i]});
    s->f_tunnel_visitors = metrics_family("bore_server_tunnel_visitors_active",
                                          "Visitor connections being relayed now, per tunnel",
                                          METRICS_GAUGE, port, NULL);
    s->f_tunnel_parked = metrics_family("bore_server_tunnel_visitors_parked",
                                        "Visitors waiting to be accepted, per tunnel", METRICS_GAUGE,
                                        port, NULL);
    s->f_tunnel_visitors_total = metrics_family("bore_server_tunnel_visitors_total",
                                                "Visitor connections relayed, per tunnel",
                                                METRICS_COUNTER, port, NULL);
    s->f_bytes = metrics_family("bore_server_tunnel_bytes_total",
                                "Bytes relayed per tunnel, as they flow: in = from visitors, out = to "
                                "visitors",
                                METRICS_COUNTER, port_dir, NULL);
    metrics_on_collect(server_collect, s);
}

static json_t *server_status(void *ctx)
{
    server_t *s = ctx;
    json_t *rows = json_array();
    for (list_t *e = s->conns.next; e != &s->conns; e = e->next) {
        conn_t *c = LIST_ENTRY(e, conn_t, link);
        if (c->state != CONN_TUNNEL) continue;
        char name[16], pub[64];
        snprintf(name, sizeof name, "port %u", c->port);
        snprintf(pub, sizeof pub, "%s:%u", s->cfg->bind_tunnels, c->port);
        json_array_append_new(
            rows, json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "name", name,
                            "port", (int)c->port, "public", pub, "internal", c->peer, "state",
                            "listening", "connections_active", (json_int_t)c->n_relays,
                            "connections_total", (json_int_t)c->visitors_total, "parked",
                            (json_int_t)c->n_parked, "bytes_in", (json_int_t)c->stats.bytes[1],
                            "bytes_out", (json_int_t)c->stats.bytes[0]));
    }
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I}", "tunnels", rows, "control_sessions",
                     (json_int_t)(s->n_handshakes + s->n_tunnels), "control_connections_total",
                     (json_int_t)s->sessions_total, "handshakes", (json_int_t)s->n_handshakes,
                     "visitors_parked", (json_int_t)s->n_parked, "visitors_active",
                     (json_int_t)s->n_relays);
}

/* ---- lifecycle ------------------------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum)
{
    server_t *s = sig->data;
    if (s->stopping) return;
    s->stopping = 1;
    log_info("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    net_listener_close(&s->control, NULL);
    uv_close((uv_handle_t *)&s->expiry, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    status_stop();
    while (!list_empty(&s->conns)) conn_close(LIST_ENTRY(s->conns.next, conn_t, link));
    relay_close_all(&s->relays);
}

int server_run(const server_config_t *cfg)
{
    server_t s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.loop = uv_default_loop();
    list_init(&s.conns);
    list_init(&s.parked);
    list_init(&s.relays);
    srcmap_init(&s.handshakes_by_src);
    relay_set_budget((size_t)cfg->max_relay_memory_mib * 1024 * 1024);
    for (size_t i = 0; i < VISITOR_BUCKETS; i++) list_init(&s.buckets[i]);
    if (cfg->secret) auth_key(cfg->secret, strlen(cfg->secret), s.key);

    int fd = net_listen_fd(cfg->bind_addr, cfg->control_port, 511);
    if (fd < 0) {
        log_error("cannot listen on %s:%u: %s", cfg->bind_addr, cfg->control_port, uv_strerror(fd));
        return 1;
    }
    int initialised, rc;
    rc = net_listener_start(s.loop, &s.control, fd, on_control, &initialised);
    s.control.poll.data = &s;
    if (rc != 0) {
        log_error("cannot listen on %s:%u: %s", cfg->bind_addr, cfg->control_port, uv_strerror(rc));
        if (initialised) net_listener_close(&s.control, NULL);
        uv_run(s.loop, UV_RUN_DEFAULT);
        uv_loop_close(s.loop);
        return 1;
    }
    uv_timer_init(s.loop, &s.expiry);
    s.expiry.data = &s;
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    signal(SIGPIPE, SIG_IGN);

    /* The protocol does not carry the tunnel address (§3): clients print
     * the address they dialled, which is wrong when the two differ. */
    log_info("server listening at %s:%u, tunnels on %s ports %u-%u%s%s", cfg->bind_addr,
             cfg->control_port, cfg->bind_tunnels, cfg->min_port, cfg->max_port,
             cfg->secret ? ", secret required" : "",
             strcmp(cfg->bind_tunnels, cfg->bind_addr) != 0
                 ? " (clients are not told the tunnel address: their \"listening at\" line shows "
                   "the server address they dialled, with the right port)"
                 : "");
    status_set_source("server", server_status, &s);
    int exit_code = 0;
    if (cfg->metrics_ip) {
        server_metrics(&s);
        if (status_start(s.loop, cfg->metrics_ip, cfg->metrics_port) != 0) {
            exit_code = 1;
            on_signal(&s.sigterm, SIGTERM);
        }
    }
    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_loop_close(s.loop);
    metrics_free();
    OPENSSL_cleanse(s.key, sizeof s.key);
    srcmap_free(&s.handshakes_by_src);
    relay_pool_drain();
    log_info("server stopped");
    return exit_code;
}
