/* kcheck.c - see kcheck.h. */
#include "kcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kframe.h"
#include "net.h"
#include "resolve.h"

#define MAX_ADDRS 8
#define ANSWER_MAX (1u << 20) /* an ApiVersions answer is a few hundred bytes */
#define CORR_ID 0x626f7265    /* "bore" */

/* CK_HELLO: the listener closed on our ApiVersions without a byte, as a
 * TLS listener does (OpenSSL, the JDK): a second connection offers a TLS
 * ClientHello, and a TLS record in answer makes it a TLS listener. */
enum ck_state { CK_RESOLVE, CK_CONNECT, CK_ANSWER, CK_HELLO, CK_DONE };

struct kcheck {
    uv_loop_t *loop;
    enum ck_state state;
    kcheck_cb cb;
    void *ctx;
    int cancelled;
    uint64_t t0;
    uv_getaddrinfo_t gai;
    uv_timer_t timer;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    int pending;  /* open handles + a resolution in flight: freed at 0 */
    int tcp_open; /* tcp initialised and not yet closing */
    int resolving;  /* gai in flight */
    int gai_error;  /* uv_getaddrinfo failed at once: reported from the timer */
    int hello;      /* the connection in progress is the TLS one (CK_HELLO) */
    char why[96];   /* the ApiVersions attempt's failure, reported if no TLS answers */
    struct sockaddr_storage addrs[MAX_ADDRS];
    int n_addrs, idx;
    int last_error;
    size_t len;
    uint8_t peek[KCHECK_PEEK];
};

/* ApiVersions v0 (request header v1, client id "bore"): every Kafka broker
 * since 0.10 answers it, before any authentication (KIP-35). */
static const uint8_t api_versions_v0[] = {
    0, 0, 0, 14, 0, 18, 0, 0, 0x62, 0x6f, 0x72, 0x65, 0, 4, 'b', 'o', 'r', 'e',
};

/* A TLS 1.2 ClientHello (RFC 5246 §7.4.1.2) any TLS server answers, with a
 * ServerHello or an alert: ECDHE/RSA AES-GCM suites, TLS 1.3's
 * AES-128-GCM, groups x25519 and P-256, common signature algorithms. */
static const uint8_t client_hello[] = {
    0x16, 0x03, 0x01, 0x00, 0x59,                   /* record: handshake, 89 bytes */
    0x01, 0x00, 0x00, 0x55,                         /* ClientHello, 85 bytes */
    0x03, 0x03,                                     /* TLS 1.2 */
    'b', 'o', 'r', 'e', 'k', 'a', 'f', 'k', 'a', 'p', 'r', 'e', 'f', 'l', 'i', 'g',
    'h', 't', 'c', 'h', 'e', 'c', 'k', 'r', 'a', 'n', 'd', 'o', 'm', '.', '.', '.', /* random */
    0x00,                                           /* no session id */
    0x00, 0x0c, 0xc0, 0x2f, 0xc0, 0x2b, 0xc0, 0x30, 0xc0, 0x2c, 0x00, 0x9c, 0x13, 0x01,
    0x01, 0x00,                                     /* null compression */
    0x00, 0x20,                                     /* extensions, 32 bytes */
    0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17,             /* groups */
    0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                                     /* point formats */
    0x00, 0x0d, 0x00, 0x0c, 0x00, 0x0a, 0x08, 0x04, 0x04, 0x01, 0x04, 0x03, 0x08, 0x05,
    0x05, 0x01,                                                             /* signatures */
};

static void ck_release(kcheck_t *c)
{
    if (--c->pending == 0) free(c);
}

static void ck_on_close(uv_handle_t *h) { ck_release(h->data); }

/* The verdict: reported once, then every handle is closed. */
static void ck_finish(kcheck_t *c, kcheck_status_t status, const char *detail)
{
    if (c->state == CK_DONE) return;
    c->state = CK_DONE;
    if (!c->cancelled) {
        kcheck_result_t r = {status, detail, uv_now(c->loop) - c->t0};
        c->cb(c->ctx, &r);
    }
    if (c->resolving) uv_cancel((uv_req_t *)&c->gai); /* its callback still runs */
    uv_close((uv_handle_t *)&c->timer, ck_on_close);
    if (c->tcp_open) {
        c->tcp_open = 0;
        uv_close((uv_handle_t *)&c->tcp, ck_on_close);
    }
}

void kcheck_cancel(kcheck_t *c)
{
    c->cancelled = 1;
    ck_finish(c, KCHECK_TIMEOUT, NULL);
}

static void ck_connect(kcheck_t *c);

static void ck_on_timeout(uv_timer_t *t)
{
    kcheck_t *c = t->data;
    if (c->gai_error) {
        ck_finish(c, KCHECK_UNRESOLVABLE, uv_strerror(c->gai_error));
        return;
    }
    if (c->state == CK_HELLO) {
        ck_finish(c, KCHECK_NOT_KAFKA, c->why);
        return;
    }
    ck_finish(c, KCHECK_TIMEOUT,
              c->state == CK_RESOLVE   ? "no answer from the resolver"
              : c->state == CK_CONNECT ? "connecting"
                                       : "no answer to ApiVersions");
}

static kcheck_status_t connect_status(int err)
{
    return err == UV_ECONNREFUSED ? KCHECK_REFUSED
           : err == UV_ETIMEDOUT  ? KCHECK_TIMEOUT
                                  : KCHECK_UNREACHABLE;
}

/* The answer's first bytes decide: a size no Kafka answer has (or a TLS
 * record), or a correlation id that is not ours, is not Kafka. */
static void ck_try_hello(kcheck_t *c, const char *why);

static void ck_judge(kcheck_t *c, int eof)
{
    if (c->hello) {
        if (c->len >= 1 && (c->peek[0] == 0x16 || c->peek[0] == 0x15) && (c->len < 2 || c->peek[1] == 3))
            ck_finish(c, KCHECK_TLS, "it answers a TLS ClientHello");
        else if (c->len >= 2 || eof)
            ck_finish(c, KCHECK_NOT_KAFKA, c->why);
        return;
    }
    uint32_t size;
    int rc = kf_size(c->peek, c->len, ANSWER_MAX, &size);
    if (rc == KF_BAD || (rc == 0 && size < 6)) {
        if (kf_looks_like_tls(c->peek, c->len))
            ck_finish(c, KCHECK_TLS, "the answer is a TLS record");
        else
            ck_finish(c, KCHECK_NOT_KAFKA, "the answer is not a Kafka response");
        return;
    }
    if (c->len >= 8) {
        uint32_t corr = (uint32_t)c->peek[4] << 24 | (uint32_t)c->peek[5] << 16 |
                        (uint32_t)c->peek[6] << 8 | c->peek[7];
        if (corr == CORR_ID)
            ck_finish(c, KCHECK_OK, "ApiVersions answered");
        else
            ck_finish(c, KCHECK_NOT_KAFKA, "the answer is not a Kafka response");
        return;
    }
    if (eof && c->len)
        ck_finish(c, KCHECK_NOT_KAFKA, "a partial answer, then the connection closed");
    else if (eof)
        ck_try_hello(c, "the connection closed without an answer");
}

static void ck_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    kcheck_t *c = h->data;
    (void)hint;
    *buf = uv_buf_init((char *)c->peek + c->len, (unsigned)(sizeof c->peek - c->len));
}

static void ck_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    kcheck_t *c = s->data;
    (void)buf;
    if ((c->state != CK_ANSWER && c->state != CK_HELLO) || nread == 0) return;
    if (nread < 0) {
        if (nread == UV_EOF || c->hello)
            ck_judge(c, 1);
        else if (c->len == 0)
            ck_try_hello(c, uv_strerror((int)nread)); /* reset on our unread request */
        else
            ck_finish(c, KCHECK_NOT_KAFKA, uv_strerror((int)nread));
        return;
    }
    c->len += (size_t)nread;
    ck_judge(c, 0);
}

static void ck_on_write(uv_write_t *req, int status)
{
    kcheck_t *c = req->data;
    if (status == 0 || status == UV_ECANCELED) return;
    if (c->state == CK_ANSWER) ck_try_hello(c, uv_strerror(status));
    else if (c->state == CK_HELLO) ck_finish(c, KCHECK_NOT_KAFKA, c->why);
}

static void ck_on_tcp_closed(uv_handle_t *h)
{
    kcheck_t *c = h->data;
    if (c->state == CK_HELLO && !c->hello) {
        c->hello = 1;
        c->len = 0;
        ck_connect(c);
    } else if (c->state == CK_HELLO) {
        ck_finish(c, KCHECK_NOT_KAFKA, c->why); /* the second connection failed */
    } else if (c->state == CK_CONNECT) {
        if (++c->idx < c->n_addrs) {
            ck_connect(c);
        } else {
            ck_finish(c, connect_status(c->last_error), uv_strerror(c->last_error));
        }
    }
    ck_release(c);
}

static void ck_on_connect(uv_connect_t *req, int status)
{
    kcheck_t *c = req->data;
    if (c->state == CK_HELLO && c->hello) {
        if (status < 0) {
            ck_finish(c, KCHECK_NOT_KAFKA, c->why);
            return;
        }
        uv_buf_t hb = uv_buf_init((char *)client_hello, sizeof client_hello);
        c->wreq.data = c;
        int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &hb, 1, ck_on_write);
        if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, ck_alloc, ck_on_read);
        if (rc != 0) ck_finish(c, KCHECK_NOT_KAFKA, c->why);
        return;
    }
    if (c->state != CK_CONNECT) return;
    if (status < 0) {
        /* The next address once this handle is closed. */
        c->last_error = status;
        c->tcp_open = 0;
        uv_close((uv_handle_t *)&c->tcp, ck_on_tcp_closed);
        return;
    }
    c->state = CK_ANSWER;
    uv_buf_t b = uv_buf_init((char *)api_versions_v0, sizeof api_versions_v0);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, ck_on_write);
    if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, ck_alloc, ck_on_read);
    if (rc != 0) ck_finish(c, KCHECK_NOT_KAFKA, uv_strerror(rc));
}

/* The ApiVersions attempt got no byte back: is it a TLS listener? */
static void ck_try_hello(kcheck_t *c, const char *why)
{
    snprintf(c->why, sizeof c->why, "%s", why);
    c->state = CK_HELLO;
    c->tcp_open = 0;
    uv_close((uv_handle_t *)&c->tcp, ck_on_tcp_closed);
}

static void ck_connect(kcheck_t *c)
{
    if (!c->hello) c->state = CK_CONNECT;
    uv_tcp_init(c->loop, &c->tcp);
    c->tcp.data = c;
    c->tcp_open = 1;
    c->pending++;
    c->creq.data = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&c->addrs[c->idx],
                            ck_on_connect);
    if (rc != 0) {
        c->last_error = rc;
        c->tcp_open = 0;
        uv_close((uv_handle_t *)&c->tcp, ck_on_tcp_closed);
    }
}

static void ck_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    kcheck_t *c = req->data;
    c->resolving = 0;
    c->n_addrs = resolve_copy(res, c->addrs, MAX_ADDRS);
    uv_freeaddrinfo(res);
    if (c->state == CK_RESOLVE) {
        if (status < 0 || c->n_addrs == 0)
            ck_finish(c, KCHECK_UNRESOLVABLE, uv_strerror(status < 0 ? status : UV_EAI_NONAME));
        else
            ck_connect(c);
    }
    ck_release(c);
}

kcheck_t *kcheck_start(uv_loop_t *loop, const char *host, uint16_t port, unsigned deadline_ms,
                       kcheck_cb cb, void *ctx)
{
    kcheck_t *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->loop = loop;
    c->cb = cb;
    c->ctx = ctx;
    c->t0 = uv_now(loop);
    c->state = CK_RESOLVE;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->pending = 1;
    uv_timer_start(&c->timer, ck_on_timeout, deadline_ms, 0);
    /* An IP literal needs no resolver: 60 brokers at IP addresses are
     * checked at once, not 4 at a time through libuv's thread pool. */
    if (net_parse_ip(host, port, &c->addrs[0]) == 0) {
        c->n_addrs = 1;
        ck_connect(c);
        return c;
    }
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->gai.data = c;
    int rc = uv_getaddrinfo(loop, &c->gai, ck_on_resolved, host, service, &hints);
    if (rc == 0) {
        c->pending++;
        c->resolving = 1;
        return c;
    }
    /* Reported from the loop, not from here: the timer fires at once. */
    c->gai_error = rc;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, ck_on_timeout, 0, 0);
    return c;
}

const char *kcheck_status_name(kcheck_status_t s)
{
    switch (s) {
    case KCHECK_OK: return "ok";
    case KCHECK_UNRESOLVABLE: return "unresolvable";
    case KCHECK_REFUSED: return "refused";
    case KCHECK_UNREACHABLE: return "unreachable";
    case KCHECK_TIMEOUT: return "timeout";
    case KCHECK_NOT_KAFKA: return "not Kafka";
    case KCHECK_TLS: return "TLS";
    }
    return "?";
}

void kcheck_hint(char *buf, size_t cap, const char *who, const char *advertised,
                 const char *dialled, int running, const kcheck_result_t *r)
{
    const char *add = running ? "restart bore kafka-proxy with" : "add";
    const char *at = dialled ? dialled : advertised;
    char map[600];
    if (dialled)
        snprintf(map, sizeof map, "correct its --map (%s=%s)", advertised, dialled);
    else
        snprintf(map, sizeof map, "%s --map %s=<host>:<port>", add, advertised);
    switch (r->status) {
    case KCHECK_OK:
        snprintf(buf, cap, "%s at %s is reachable", who, at);
        break;
    case KCHECK_UNRESOLVABLE:
        if (dialled)
            snprintf(buf, cap, "%s is mapped to %s, which does not resolve here (%s): %s", who,
                     dialled, r->detail, map);
        else
            snprintf(buf, cap, "%s advertises %s, which does not resolve here: %s", who, advertised,
                     map);
        break;
    case KCHECK_REFUSED:
        snprintf(buf, cap, "%s: nothing listens at %s (connection refused): is the broker up? If "
                 "it is reachable at another address from here, %s", who, at, map);
        break;
    case KCHECK_UNREACHABLE:
        snprintf(buf, cap, "%s: %s is not reachable from here (%s): %s", who, at, r->detail, map);
        break;
    case KCHECK_TIMEOUT:
        snprintf(buf, cap, "%s: %s did not answer in time (%s; a firewall, or an address that is "
                 "not this broker's?): %s", who, at, r->detail, map);
        break;
    case KCHECK_NOT_KAFKA:
        snprintf(buf, cap, "%s: what answers at %s is not a Kafka listener (%s): check the port "
                 "of the broker's client listener", who, at, r->detail);
        break;
    case KCHECK_TLS:
        snprintf(buf, cap, "%s: %s answered with TLS: it is an SSL listener; run with "
                 "--broker-tls (and --broker-ca FILE, the CA of its certificate)", who, at);
        break;
    }
}
