/* tunnel.c - see tunnel.h. */
#include "tunnel.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "backoff.h"
#include "frame.h"
#include "list.h"
#include "log.h"
#include "msg.h"
#include "net.h"

#define LOG_TARGET "bore::tunnel"

#define HANDSHAKE_MS 3000 /* §6 */
#define KEEPALIVE_SECS 30
#define PORT_RETRY_CAP_MS 2000 /* "port already in use": the server only has to notice */
#define NO_CHALLENGE_HINT " (no authentication challenge: does the server have a secret?)"

/* CL_WAIT: the control connection was lost; the next attempt is due. */
enum cl_state { CL_CONNECT, CL_CHALLENGE, CL_HELLO, CL_RUNNING, CL_WAIT, CL_DONE };
enum acc_state { ACC_CONNECT, ACC_CHALLENGE, ACC_SEND, ACC_LOCAL, ACC_RELAY, ACC_CLOSING };

struct tunnel {
    tunnel_config_t cfg;
    tunnel_handler_t handler;
    uv_loop_t *loop;
    uint8_t key[AUTH_KEY_LEN];
    enum cl_state state;
    uint16_t port; /* the public port, once listening */
    uint16_t want; /* the port Hello asks for: --port, then the one we had */
    int was_connected;   /* reconnecting rather than starting */
    unsigned attempt;    /* reconnect attempts since the connection was lost */
    uint64_t down_since; /* when it was lost */
    uint64_t reclaim_deadline; /* after the first "port already in use": then a new port */
    int ctl_closing;     /* the lost control handle is not closed yet */
    char name[48];       /* cfg.name, copied */
    struct sockaddr_storage targets[TUNNEL_MAX_TARGETS];
    int n_targets;
    int local_pref; /* the target address that answered last */
    char label[1024]; /* where visitors go, for logs: an owner's label with its advice */
    uv_connect_t creq;
    uv_tcp_t ctl;
    uv_timer_t timer;
    int open_handles;
    int ctl_open;   /* ctl initialised and not yet closing */
    int server_idx; /* the server address being tried, then the one that answered */
    int last_error; /* of the last failed control connect */
    size_t rlen;
    uint8_t rbuf[1024];
    list_t accepts;
};
typedef struct tunnel client_t;

typedef struct accept_conn {
    uv_tcp_t remote; /* first: relay.c hands it back by this pointer */
    uv_tcp_t local;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    client_t *cl;
    list_t link;
    enum acc_state state;
    int open_handles;
    int local_idx; /* address being tried */
    int tries;
    int last_error;
    int local_open; /* a->local initialised and not yet closing */
    uint8_t uuid[16];
    size_t rlen;
    uint8_t rbuf[FRAME_MAX + 1];
    uint8_t wbuf[2 * (FRAME_MAX + 1)];
} accept_t;

static void tunnel_end(client_t *cl, const char *error);
static void ctl_lost(client_t *cl, const char *error, unsigned cap_ms);
static void ctl_schedule(client_t *cl, unsigned delay_ms);

/* The control connection failed: reconnect (tunnel_config_t.reconnect), or
 * end the tunnel with the error, reported through handler.on_closed. */
static void client_fail(client_t *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_fail(client_t *cl, const char *fmt, ...)
{
    if (cl->state == CL_DONE || cl->state == CL_WAIT) return;
    char error[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, sizeof error, fmt, ap);
    va_end(ap);
    ctl_lost(cl, error, BACKOFF_CAP_MS);
}

/* The Authenticate answering `challenge` (nothing when it is NULL, i.e. no
 * secret), at the start of out; §5: the client then sends its next message
 * without waiting for a verdict. Returns the bytes written, or -1. */
static int encode_answer(const client_t *cl, const uint8_t *challenge, uint8_t *out, size_t cap)
{
    if (challenge == NULL) return 0;
    char tag[AUTH_TAG_HEX_LEN + 1];
    if (auth_tag_hex(cl->key, challenge, tag) != 0) return -1;
    return msg_encode_text(MSG_AUTHENTICATE, tag, out, cap);
}

/* ---- accept connections (one per visitor) ---------------------------------- */

static void acc_on_close(uv_handle_t *h)
{
    accept_t *a = h->data;
    if (--a->open_handles == 0) free(a);
}

static void acc_release_remote(uv_tcp_t *h)
{
    accept_t *a = (accept_t *)h;
    if (--a->open_handles == 0) free(a);
}

static void acc_release_local(uv_tcp_t *h)
{
    accept_t *a = LIST_ENTRY(h, accept_t, local);
    if (--a->open_handles == 0) free(a);
}

static void acc_close(accept_t *a)
{
    if (a->state == ACC_CLOSING || a->state == ACC_RELAY) return;
    a->state = ACC_CLOSING;
    list_remove(&a->link);
    uv_close((uv_handle_t *)&a->remote, acc_on_close);
    uv_close((uv_handle_t *)&a->timer, acc_on_close);
    if (a->local_open) {
        a->local_open = 0;
        uv_close((uv_handle_t *)&a->local, acc_on_close);
    }
}

static void acc_on_timeout(uv_timer_t *t)
{
    accept_t *a = t->data;
    if (a->state == ACC_LOCAL)
        log_warn("timed out connecting to %s", a->cl->label);
    else
        log_warn("timed out setting up a connection (server)");
    acc_close(a);
}

static void acc_connect_local(accept_t *a);

/* A failed local connect: once its handle is closed, try the next address. */
static void acc_on_local_closed(uv_handle_t *h)
{
    accept_t *a = h->data;
    client_t *cl = a->cl;
    if (--a->open_handles == 0) {
        free(a);
        return;
    }
    if (a->state != ACC_LOCAL) return;
    a->tries++;
    if (a->tries < cl->n_targets) {
        a->local_idx = (a->local_idx + 1) % cl->n_targets;
        acc_connect_local(a);
        return;
    }
    log_warn("could not connect to %s: %s", cl->label, uv_strerror(a->last_error));
    acc_close(a);
}

static void acc_on_local(uv_connect_t *req, int status)
{
    accept_t *a = req->data;
    if (a->state != ACC_LOCAL) return;
    if (status < 0) {
        a->last_error = status;
        a->local_open = 0;
        uv_close((uv_handle_t *)&a->local, acc_on_local_closed);
        return;
    }
    a->cl->local_pref = a->local_idx;
    net_tune(&a->remote, 0);
    net_tune(&a->local, 0);
    int rc = a->cl->handler.on_pair(a->cl->handler.ctx, a->cl, &a->remote, acc_release_remote,
                                    &a->local, acc_release_local, a->rbuf, a->rlen);
    if (rc != 0) {
        log_error("cannot start a relay: %s", uv_strerror(rc));
        acc_close(a);
        return;
    }
    a->state = ACC_RELAY;
    list_remove(&a->link);
    uv_close((uv_handle_t *)&a->timer, acc_on_close);
    log_info("new connection through port %u, relayed to %s", a->cl->port, a->cl->label);
}

/* §3 accept step 3: after Accept is sent, connect to the local service,
 * trying each resolved address in turn. */
static void acc_connect_local(accept_t *a)
{
    client_t *cl = a->cl;
    if (cl->n_targets == 0) {
        log_warn("no address to connect to %s; closing the connection", cl->label);
        acc_close(a);
        return;
    }
    if (a->state != ACC_LOCAL) a->local_idx = cl->local_pref < cl->n_targets ? cl->local_pref : 0;
    a->state = ACC_LOCAL;
    uv_tcp_init(cl->loop, &a->local);
    a->local.data = a;
    a->local_open = 1;
    a->open_handles++;
    a->creq.data = a;
    uv_timer_start(&a->timer, acc_on_timeout, HANDSHAKE_MS, 0);
    int rc = uv_tcp_connect(&a->creq, &a->local,
                            (const struct sockaddr *)&cl->targets[a->local_idx], acc_on_local);
    if (rc != 0) {
        log_warn("could not connect to %s: %s", cl->label, uv_strerror(rc));
        acc_close(a);
    }
}

static void acc_on_write(uv_write_t *req, int status)
{
    accept_t *a = req->data;
    if (a->state != ACC_SEND) return;
    if (status < 0) {
        acc_close(a);
        return;
    }
    acc_connect_local(a);
}

/* Sends [Authenticate(tag)] Accept(uuid), then moves on to the local side. */
static void acc_send_accept(accept_t *a, const uint8_t *challenge)
{
    int k = encode_answer(a->cl, challenge, a->wbuf, sizeof a->wbuf);
    int m = k < 0 ? -1 : msg_encode_uuid(MSG_ACCEPT, a->uuid, a->wbuf + k, sizeof a->wbuf - (size_t)k);
    if (m < 0) {
        acc_close(a);
        return;
    }
    size_t n = (size_t)(k + m);
    uv_read_stop((uv_stream_t *)&a->remote);
    a->state = ACC_SEND;
    uv_buf_t b = uv_buf_init((char *)a->wbuf, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&a->remote, &b, 1);
    if (w == (int)n) {
        acc_connect_local(a);
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        acc_close(a);
        return;
    }
    if (w < 0) w = 0;
    b = uv_buf_init((char *)a->wbuf + w, (unsigned)(n - (size_t)w));
    a->wreq.data = a;
    if (uv_write(&a->wreq, (uv_stream_t *)&a->remote, &b, 1, acc_on_write) != 0) acc_close(a);
}

static void acc_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    accept_t *a = h->data;
    (void)hint;
    *buf = uv_buf_init((char *)a->rbuf + a->rlen, (unsigned)(sizeof a->rbuf - a->rlen));
}

/* Only read while waiting for the Challenge of an authenticated accept. */
static void acc_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    accept_t *a = s->data;
    (void)buf;
    if (nread == 0 || a->state != ACC_CHALLENGE) return;
    if (nread > 0) a->rlen += (size_t)nread;
    size_t n;
    int rc = frame_next(a->rbuf, a->rlen, nread < 0, &n);
    if (rc == FRAME_NEED_MORE && nread > 0) return;
    msg_t m;
    if (rc < 0 || msg_decode(MSG_FROM_SERVER, a->rbuf, n, &m) != 0 || m.type != MSG_CHALLENGE) {
        log_warn("server did not send a challenge for a new connection");
        acc_close(a);
        return;
    }
    memmove(a->rbuf, a->rbuf + rc, a->rlen - (size_t)rc);
    a->rlen -= (size_t)rc;
    acc_send_accept(a, m.uuid);
}

static void acc_on_connect(uv_connect_t *req, int status)
{
    accept_t *a = req->data;
    if (a->state != ACC_CONNECT) return;
    if (status < 0) {
        log_warn("could not connect to the server for a new connection: %s", uv_strerror(status));
        acc_close(a);
        return;
    }
    if (a->cl->cfg.secret == NULL) {
        acc_send_accept(a, NULL);
        return;
    }
    a->state = ACC_CHALLENGE;
    uv_timer_start(&a->timer, acc_on_timeout, HANDSHAKE_MS, 0);
    if (uv_read_start((uv_stream_t *)&a->remote, acc_on_alloc, acc_on_read) != 0) acc_close(a);
}

static void acc_start(client_t *cl, const uint8_t uuid[16])
{
    accept_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        log_error("out of memory for a new connection");
        return;
    }
    a->cl = cl;
    memcpy(a->uuid, uuid, 16);
    list_push(&cl->accepts, &a->link);
    uv_tcp_init(cl->loop, &a->remote);
    uv_timer_init(cl->loop, &a->timer);
    a->remote.data = a->timer.data = a;
    a->open_handles = 2;
    a->creq.data = a;
    uv_timer_start(&a->timer, acc_on_timeout, HANDSHAKE_MS, 0);
    int rc = uv_tcp_connect(&a->creq, &a->remote,
                            (const struct sockaddr *)&cl->cfg.servers[cl->server_idx], acc_on_connect);
    if (rc != 0) {
        log_warn("could not connect to the server for a new connection: %s", uv_strerror(rc));
        acc_close(a);
    }
}

/* ---- control connection ------------------------------------------------ */

static void ctl_connect_failed(client_t *cl, int error);

static void on_ctl_timeout(uv_timer_t *t)
{
    client_t *cl = t->data;
    if (cl->state == CL_RUNNING)
        client_fail(cl, "no heartbeat from %s for %u s; the server is gone", cl->cfg.to,
                    cl->cfg.heartbeat_timeout_ms / 1000);
    else if (cl->state == CL_CONNECT)
        ctl_connect_failed(cl, cl->last_error ? cl->last_error : UV_ETIMEDOUT);
    else
        client_fail(cl, "timed out waiting for initial message%s",
                    cl->state == CL_CHALLENGE ? NO_CHALLENGE_HINT : "");
}

/* Writes a control message; it is tiny and the socket fresh, so anything but
 * a complete write is an error worth ending on. */
static void ctl_send(client_t *cl, const uint8_t *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&cl->ctl, &b, 1);
    if (w != (int)n)
        client_fail(cl, "could not write to the server: %s", w < 0 ? uv_strerror(w) : "short write");
}

static void send_hello(client_t *cl, const uint8_t *challenge)
{
    uint8_t out[2 * (FRAME_MAX + 1)];
    int n = encode_answer(cl, challenge, out, sizeof out);
    int k = n < 0 ? -1 : msg_encode_port(MSG_HELLO, cl->want, out + n, sizeof out - (size_t)n);
    if (k < 0) {
        client_fail(cl, "cannot compute the authentication tag or encode Hello");
        return;
    }
    ctl_send(cl, out, (size_t)(n + k));
    cl->state = CL_HELLO;
    uv_timer_start(&cl->timer, on_ctl_timeout, HANDSHAKE_MS, 0);
}

static void handle_ctl_msg(client_t *cl, const msg_t *m)
{
    switch (cl->state) {
    case CL_CHALLENGE:
        if (m->type != MSG_CHALLENGE) {
            client_fail(cl, "expected authentication challenge, but no secret was required");
            return;
        }
        send_hello(cl, m->uuid);
        return;
    case CL_HELLO:
        if (m->type == MSG_HELLO) {
            cl->state = CL_RUNNING;
            uint16_t old = cl->port;
            cl->port = m->port;
            /* Repeating, so that uv_timer_again re-arms it on every message. */
            uv_timer_start(&cl->timer, on_ctl_timeout, cl->cfg.heartbeat_timeout_ms,
                           cl->cfg.heartbeat_timeout_ms);
            if (cl->was_connected) {
                double down = (double)(uv_now(cl->loop) - cl->down_since) / 1000.0;
                if (m->port == old)
                    log_info("%s: reconnected to %s: restored on the same port %u after %.1f s "
                             "(attempt %u)", cl->name, cl->cfg.to, m->port, down, cl->attempt);
                else
                    log_warn("%s: reconnected to %s after %.1f s, but MOVED to a new port: %u "
                             "(port %u could not be had back)", cl->name, cl->cfg.to, down,
                             m->port, old);
            } else {
                log_info("%s: connected to %s, public on port %u", cl->name, cl->cfg.to, m->port);
            }
            cl->was_connected = 1;
            cl->want = m->port;
            cl->attempt = 0;
            cl->reclaim_deadline = 0;
            cl->handler.on_listening(cl->handler.ctx, cl, m->port);
        } else if (m->type == MSG_ERROR) {
            /* The wire text is upstream's; the facts are ours to add. */
            if (cl->was_connected && cl->want != 0 && strcmp(m->text, "port already in use") == 0) {
                /* Our old control connection, not noticed dead yet, or a
                 * stranger: wait for the server, then take a new port. */
                uint64_t now = uv_now(cl->loop);
                if (cl->reclaim_deadline == 0) cl->reclaim_deadline = now + cl->cfg.reclaim_ms;
                char why[128];
                if (now < cl->reclaim_deadline) {
                    snprintf(why, sizeof why, "port %u is still in use on the server (asking again "
                             "for up to %.0f s more)", cl->want,
                             (double)(cl->reclaim_deadline - now) / 1000.0);
                    ctl_lost(cl, why, PORT_RETRY_CAP_MS);
                } else {
                    log_warn("%s: port %u is still in use on the server after %u s: asking for a "
                             "new port", cl->name, cl->want, cl->cfg.reclaim_ms / 1000);
                    cl->want = 0;
                    snprintf(why, sizeof why, "port %u is taken", cl->port);
                    ctl_lost(cl, why, PORT_RETRY_CAP_MS);
                }
            } else if (!cl->was_connected && cl->cfg.port_preferred && cl->want != 0 &&
                       (strstr(m->text, "port") != NULL || strcmp(m->text, "permission denied") == 0)) {
                log_warn("%s: the port it had before, %u, is not available (%s): asking for a new one",
                         cl->name, cl->want, m->text);
                cl->want = 0;
                ctl_schedule(cl, 0);
            } else if (cl->want != 0 &&
                (strstr(m->text, "port") != NULL || strcmp(m->text, "permission denied") == 0))
                client_fail(cl, "server error: %s (port %u was requested)", m->text, cl->want);
            else
                client_fail(cl, "server error: %s", m->text);
        } else if (m->type == MSG_CHALLENGE) {
            client_fail(cl, "server requires authentication, but no client secret was provided");
        } else {
            client_fail(cl, "unexpected initial non-hello message");
        }
        return;
    case CL_RUNNING:
        uv_timer_again(&cl->timer);
        if (m->type == MSG_CONNECTION)
            acc_start(cl, m->uuid);
        else if (m->type == MSG_ERROR)
            log_error("server error: %s", m->text);
        else if (m->type != MSG_HEARTBEAT)
            log_warn("unexpected message from the server");
        return;
    default:
        return;
    }
}

static void on_ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    client_t *cl = h->data;
    (void)hint;
    *buf = uv_buf_init((char *)cl->rbuf + cl->rlen, (unsigned)(sizeof cl->rbuf - cl->rlen));
}

static void on_ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client_t *cl = s->data;
    (void)buf;
    if (nread == 0 || cl->state == CL_DONE) return;
    int eof = nread == UV_EOF;
    if (nread < 0 && !eof) {
        client_fail(cl, "lost the connection to the server: %s", uv_strerror((int)nread));
        return;
    }
    if (!eof) cl->rlen += (size_t)nread;
    size_t off = 0;
    while (cl->state != CL_DONE) {
        size_t n;
        int rc = frame_next(cl->rbuf + off, cl->rlen - off, eof, &n);
        if (rc == FRAME_NEED_MORE) break;
        if (rc == FRAME_TOO_LONG) {
            client_fail(cl, "frame error, invalid byte length");
            return;
        }
        msg_t m;
        if (msg_decode(MSG_FROM_SERVER, cl->rbuf + off, n, &m) != 0) {
            client_fail(cl, "unable to parse message from the server");
            return;
        }
        off += (size_t)rc;
        handle_ctl_msg(cl, &m);
    }
    if (cl->state == CL_DONE) return;
    memmove(cl->rbuf, cl->rbuf + off, cl->rlen - off);
    cl->rlen -= off;
    if (!eof) return;
    if (cl->state == CL_RUNNING) {
        ctl_lost(cl, NULL, BACKOFF_CAP_MS);
    } else {
        /* Waiting for a Challenge, EOF is the server's own 3 s deadline
         * racing ours: the same cause, so the same message. */
        if (cl->state == CL_CHALLENGE)
            client_fail(cl, "timed out waiting for initial message" NO_CHALLENGE_HINT);
        else
            client_fail(cl, "unexpected EOF");
    }
}

static void on_ctl_connect(uv_connect_t *req, int status)
{
    client_t *cl = req->data;
    /* !ctl_open: a cancelled attempt (deadline passed, or the tunnel closed). */
    if (cl->state != CL_CONNECT || !cl->ctl_open) return;
    if (status < 0) {
        ctl_connect_failed(cl, status);
        return;
    }
    net_tune(&cl->ctl, KEEPALIVE_SECS);
    if (uv_read_start((uv_stream_t *)&cl->ctl, on_ctl_alloc, on_ctl_read) != 0) {
        client_fail(cl, "cannot read from the server");
        return;
    }
    if (cl->cfg.secret != NULL) {
        cl->state = CL_CHALLENGE;
        uv_timer_start(&cl->timer, on_ctl_timeout, HANDSHAKE_MS, 0);
    } else {
        send_hello(cl, NULL);
    }
}

static void tunnel_on_close(uv_handle_t *h);

/* Connects the control connection to server address server_idx, with its
 * own deadline. Errors arrive through ctl_connect_failed, from the loop. */
static void ctl_connect(client_t *cl)
{
    uv_tcp_init(cl->loop, &cl->ctl);
    cl->ctl.data = cl;
    cl->ctl_open = 1;
    cl->open_handles++;
    cl->creq.data = cl;
    cl->last_error = 0;
    uv_timer_start(&cl->timer, on_ctl_timeout, HANDSHAKE_MS, 0);
    int rc = uv_tcp_connect(&cl->creq, &cl->ctl,
                            (const struct sockaddr *)&cl->cfg.servers[cl->server_idx], on_ctl_connect);
    if (rc != 0) {
        cl->last_error = rc; /* reported from the loop, by the deadline firing now */
        uv_timer_start(&cl->timer, on_ctl_timeout, 0, 0);
    }
}

/* Once the failed attempt's handle is closed: the next address, or the end. */
static void on_ctl_attempt_closed(uv_handle_t *h)
{
    client_t *cl = h->data;
    if (cl->state != CL_CONNECT) {
        tunnel_on_close(h);
        return;
    }
    cl->open_handles--;
    if (++cl->server_idx < cl->cfg.n_servers) {
        ctl_connect(cl);
        return;
    }
    cl->server_idx = 0;
    client_fail(cl, "could not connect to %s: %s", cl->cfg.to, uv_strerror(cl->last_error));
}

static void ctl_connect_failed(client_t *cl, int error)
{
    cl->last_error = error;
    if (log_enabled(LOG_DEBUG)) {
        char ip[NET_ADDR_STRLEN] = "?";
        uv_ip_name((const struct sockaddr *)&cl->cfg.servers[cl->server_idx], ip, sizeof ip);
        log_debug("could not connect to %s (address %s, %d of %d): %s", cl->cfg.to, ip,
                  cl->server_idx + 1, cl->cfg.n_servers, uv_strerror(cl->last_error));
    }
    uv_timer_stop(&cl->timer);
    cl->ctl_open = 0;
    uv_close((uv_handle_t *)&cl->ctl, on_ctl_attempt_closed);
}

/* ---- lifecycle ------------------------------------------------------------- */

static void on_ctl_lost_closed(uv_handle_t *h)
{
    client_t *cl = h->data;
    cl->ctl_closing = 0;
    tunnel_on_close(h);
}

static void on_retry(uv_timer_t *t)
{
    client_t *cl = t->data;
    if (cl->state != CL_WAIT) return;
    if (cl->ctl_closing) { /* not yet: a close callback is due in this loop turn */
        uv_timer_start(&cl->timer, on_retry, 10, 0);
        return;
    }
    cl->state = CL_CONNECT;
    cl->server_idx = 0;
    cl->rlen = 0;
    ctl_connect(cl);
}

/* Drops the control connection and connects again in delay_ms. */
static void ctl_schedule(client_t *cl, unsigned delay_ms)
{
    if (cl->ctl_open) {
        cl->ctl_open = 0;
        cl->ctl_closing = 1;
        uv_close((uv_handle_t *)&cl->ctl, on_ctl_lost_closed);
    }
    cl->state = CL_WAIT;
    uv_timer_stop(&cl->timer);
    uv_timer_start(&cl->timer, on_retry, delay_ms, 0);
}

/* The control connection is gone (error NULL: the server closed it) or an
 * attempt to bring it back failed. Once connected, a tunnel reconnects
 * (unless cfg.reconnect is 0) after a backoff delay capped at cap_ms, up to
 * cfg.reconnect_attempts times (0: forever), asking for the port it had.
 * Accept connections and relays already open are separate TCP connections
 * and carry on. Before the first connection, errors end the tunnel. */
static void ctl_lost(client_t *cl, const char *error, unsigned cap_ms)
{
    if (cl->state == CL_DONE || cl->state == CL_WAIT) return;
    if (!cl->cfg.reconnect || !cl->was_connected) {
        tunnel_end(cl, error);
        return;
    }
    const char *why = error ? error : "the server closed the connection";
    if (cl->cfg.reconnect_attempts != 0 && cl->attempt >= cl->cfg.reconnect_attempts) {
        char msg[640];
        snprintf(msg, sizeof msg, "gave up reconnecting after %u attempts: %s", cl->attempt, why);
        tunnel_end(cl, msg);
        return;
    }
    if (cl->attempt++ == 0) {
        cl->down_since = uv_now(cl->loop);
        log_warn("%s: lost the control connection to %s (port %u): %s", cl->name, cl->cfg.to,
                 cl->port, why);
        if (cl->handler.on_lost) cl->handler.on_lost(cl->handler.ctx, cl);
    }
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1) r = (uint32_t)uv_hrtime();
    unsigned delay = backoff_delay_ms(cl->attempt, cap_ms, r);
    log_info("%s: reconnecting to %s (attempt %u, next try in %.1f s)%s%s", cl->name, cl->cfg.to,
             cl->attempt, delay / 1000.0, cl->attempt > 1 ? ": " : "", cl->attempt > 1 ? why : "");
    ctl_schedule(cl, delay);
}

static void tunnel_on_close(uv_handle_t *h)
{
    client_t *cl = h->data;
    if (--cl->open_handles == 0) {
        OPENSSL_cleanse(cl->key, sizeof cl->key);
        free(cl);
    }
}

static void tunnel_shutdown(client_t *cl)
{
    cl->state = CL_DONE;
    if (cl->ctl_open) {
        cl->ctl_open = 0;
        uv_close((uv_handle_t *)&cl->ctl, tunnel_on_close);
    }
    uv_close((uv_handle_t *)&cl->timer, tunnel_on_close);
    while (!list_empty(&cl->accepts)) acc_close(LIST_ENTRY(cl->accepts.next, accept_t, link));
}

static void tunnel_end(client_t *cl, const char *error)
{
    if (cl->state == CL_DONE) return;
    tunnel_shutdown(cl);
    cl->handler.on_closed(cl->handler.ctx, cl, error);
}

void tunnel_close(tunnel_t *t)
{
    if (t->state != CL_DONE) tunnel_shutdown(t);
}

uint16_t tunnel_port(const tunnel_t *t) { return t->port; }

void tunnel_set_target(tunnel_t *t, const struct sockaddr_storage *addrs, int n, const char *label)
{
    if (n > TUNNEL_MAX_TARGETS) n = TUNNEL_MAX_TARGETS;
    memcpy(t->targets, addrs, (size_t)n * sizeof *addrs);
    t->n_targets = n;
    t->local_pref = 0;
    snprintf(t->label, sizeof t->label, "%s", label);
}

tunnel_t *tunnel_open(uv_loop_t *loop, const tunnel_config_t *cfg, const tunnel_handler_t *handler)
{
    client_t *cl = calloc(1, sizeof *cl);
    if (cl == NULL) return NULL;
    cl->cfg = *cfg;
    cl->handler = *handler;
    cl->loop = loop;
    cl->want = cfg->port;
    snprintf(cl->name, sizeof cl->name, "%s", cfg->name ? cfg->name : "tunnel");
    list_init(&cl->accepts);
    if (cfg->secret) auth_key(cfg->secret, strlen(cfg->secret), cl->key);
    if (cl->cfg.n_servers < 1 || cl->cfg.n_servers > TUNNEL_MAX_TARGETS) cl->cfg.n_servers = 1;
    uv_timer_init(loop, &cl->timer);
    cl->timer.data = cl;
    cl->open_handles = 1;
    cl->state = CL_CONNECT;
    ctl_connect(cl); /* never calls a handler from here */
    return cl;
}
