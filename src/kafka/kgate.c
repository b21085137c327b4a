/* kgate.c - see kgate.h. Wire layouts: Kafka protocol guide, SaslHandshake
 * (17) v0-1, SaslAuthenticate (36) v0-2, ApiVersions (18) v0-4 (KIP-511). */
#include "kgate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kframe.h"
#include "kscan.h"
#include "kwire.h"
#include "log.h"
#include "metrics.h"

#define LOG_TARGET "bore::kafka::gate"

enum {
    ERR_NONE = 0,
    ERR_UNSUPPORTED_VERSION = 35,
    ERR_UNSUPPORTED_SASL_MECHANISM = 33,
    ERR_ILLEGAL_SASL_STATE = 34,
    ERR_SASL_AUTHENTICATION_FAILED = 58,
};

/* The message every credential failure gets, whatever the reason. */
#define AUTH_FAILED_MSG "Authentication failed: Invalid username or password"

enum gate_state {
    G_START,      /* ApiVersions, SaslHandshake */
    G_HANDSHAKEN, /* SaslAuthenticate (or raw tokens after a v0 handshake) */
    G_PASSED,
    G_FAILED, /* the answer waits for the delay; then the close */
};

struct kgate {
    kgate_config_t cfg;
    kgate_io_t io;
    enum gate_state state;
    char who[160];
    uint8_t *buf; /* the request being read, size included */
    size_t len, cap;
    int raw; /* after SaslHandshake v0: size-prefixed tokens without headers */
    ksasl_session_t sasl;
    int has_session;
    uint8_t *answer; /* a failure answer, sent when the delay ends */
    size_t answer_len;
    uv_timer_t deadline, delay;
    int open_handles;
    int freed;
};

/* ---- answers ----------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int err;
} wbuf;

static void w_need(wbuf *w, size_t n)
{
    if (w->err) return;
    if (w->len + n > w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 256;
        while (ncap < w->len + n) ncap *= 2;
        uint8_t *p = realloc(w->p, ncap);
        if (p == NULL) {
            w->err = 1;
            return;
        }
        w->p = p;
        w->cap = ncap;
    }
}

static void w_bytes(wbuf *w, const void *b, size_t n)
{
    w_need(w, n);
    if (w->err) return;
    if (n) memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void w16(wbuf *w, int16_t v)
{
    uint8_t b[2];
    kw_put16(b, (uint16_t)v);
    w_bytes(w, b, 2);
}

static void w32(wbuf *w, int32_t v)
{
    uint8_t b[4];
    kw_put32(b, (uint32_t)v);
    w_bytes(w, b, 4);
}

static void wuv(wbuf *w, uint32_t v)
{
    uint8_t b[5];
    w_bytes(w, b, kw_put_uvarint(b, v));
}

/* Starts a response: size (filled by w_done), correlation id, and the
 * empty tagged fields of a flexible header (v1). */
static void w_start(wbuf *w, int32_t corr, int flex_header)
{
    memset(w, 0, sizeof *w);
    w32(w, 0);
    w32(w, corr);
    if (flex_header) wuv(w, 0);
}

static uint8_t *w_done(wbuf *w, size_t *len)
{
    if (w->err) {
        free(w->p);
        return NULL;
    }
    kw_put32(w->p, (uint32_t)(w->len - 4));
    *len = w->len;
    return w->p;
}

static int mech_enabled(const kgate_t *g, int m) { return m >= 0 && (m != KSASL_PLAIN || g->cfg.plain); }

static uint8_t *handshake_answer(const kgate_t *g, int32_t corr, int16_t err, size_t *len)
{
    wbuf w;
    w_start(&w, corr, 0);
    w16(&w, err);
    int n = 0;
    for (int m = 0; m < 3; m++) n += mech_enabled(g, m);
    w32(&w, n);
    for (int m = 0; m < 3; m++) {
        if (!mech_enabled(g, m)) continue;
        const char *name = ksasl_mech_name((ksasl_mech_t)m);
        w16(&w, (int16_t)strlen(name));
        w_bytes(&w, name, strlen(name));
    }
    return w_done(&w, len);
}

static uint8_t *authenticate_answer(int16_t ver, int32_t corr, int16_t err, const char *msg,
                                    const uint8_t *tok, size_t tok_len, size_t *len)
{
    wbuf w;
    int flex = ver >= 2;
    w_start(&w, corr, flex);
    w16(&w, err);
    size_t ml = msg ? strlen(msg) : 0;
    if (flex) {
        wuv(&w, msg ? (uint32_t)ml + 1 : 0);
        w_bytes(&w, msg, ml);
        wuv(&w, (uint32_t)tok_len + 1);
    } else {
        w16(&w, msg ? (int16_t)ml : -1);
        w_bytes(&w, msg, ml);
        w32(&w, (int32_t)tok_len);
    }
    w_bytes(&w, tok, tok_len);
    if (ver >= 1) {
        w32(&w, 0); /* SessionLifetimeMs (INT64) 0: no re-authentication (KIP-368) */
        w32(&w, 0);
    }
    if (flex) wuv(&w, 0);
    return w_done(&w, len);
}

/* The cluster's versions, capped as the codec caps them (kscan.h), with
 * the SASL APIs the gate serves in place of the cluster's. */
static int16_t api_max(const kgate_t *g, int16_t key)
{
    for (size_t i = 0; i < g->cfg.n_apis; i++)
        if (g->cfg.apis[i].key == key) {
            int cap = ks_max_version(key);
            return cap >= 0 && g->cfg.apis[i].max > cap ? (int16_t)cap : g->cfg.apis[i].max;
        }
    return key == KAFKA_API_VERSIONS ? 3 : -1;
}

static void api_entries(const kgate_t *g, wbuf *w, int flex)
{
    int n = 2;
    int have_av = 0;
    for (size_t i = 0; i < g->cfg.n_apis; i++) {
        const kgate_api_t *a = &g->cfg.apis[i];
        int cap = ks_max_version(a->key);
        if (a->key == KAFKA_SASL_HANDSHAKE || a->key == KAFKA_SASL_AUTHENTICATE) continue;
        if (cap >= 0 && a->min > cap) continue;
        have_av |= a->key == KAFKA_API_VERSIONS;
        n++;
    }
    n += !have_av;
    if (flex)
        wuv(w, (uint32_t)n + 1);
    else
        w32(w, n);
    const kgate_api_t own[] = {{KAFKA_SASL_HANDSHAKE, 0, 1},
                               {KAFKA_SASL_AUTHENTICATE, 0, 2},
                               {KAFKA_API_VERSIONS, 0, 3}};
    for (int i = 0; i < 3; i++) {
        if (i == 2 && have_av) break;
        w16(w, own[i].key);
        w16(w, own[i].min);
        w16(w, own[i].max);
        if (flex) wuv(w, 0);
    }
    for (size_t i = 0; i < g->cfg.n_apis; i++) {
        const kgate_api_t *a = &g->cfg.apis[i];
        int cap = ks_max_version(a->key);
        if (a->key == KAFKA_SASL_HANDSHAKE || a->key == KAFKA_SASL_AUTHENTICATE) continue;
        if (cap >= 0 && a->min > cap) continue;
        w16(w, a->key);
        w16(w, a->min);
        w16(w, cap >= 0 && a->max > cap ? (int16_t)cap : a->max);
        if (flex) wuv(w, 0);
    }
}

/* KIP-511: a version the gate does not serve gets the v0 layout with
 * UNSUPPORTED_VERSION and the list, and the client retries lower. */
static uint8_t *api_versions_answer(const kgate_t *g, int16_t ver, int32_t corr, size_t *len)
{
    wbuf w;
    w_start(&w, corr, 0);
    if (ver < 0 || ver > api_max(g, KAFKA_API_VERSIONS)) {
        w16(&w, ERR_UNSUPPORTED_VERSION);
        api_entries(g, &w, 0);
        return w_done(&w, len);
    }
    int flex = ver >= 3;
    w16(&w, ERR_NONE);
    api_entries(g, &w, flex);
    if (ver >= 1) w32(&w, 0); /* ThrottleTimeMs */
    if (flex) wuv(&w, 0);
    return w_done(&w, len);
}

static uint8_t *raw_token(const uint8_t *tok, size_t n, size_t *len)
{
    wbuf w = {0};
    w32(&w, (int32_t)n);
    w_bytes(&w, tok, n);
    return w_done(&w, len);
}

/* ---- state --------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    kgate_t *g = h->data;
    if (--g->open_handles == 0) {
        free(g->buf);
        free(g->answer);
        free(g);
    }
}

static void on_grace(uv_timer_t *t)
{
    kgate_t *g = t->data;
    g->io.close(g->io.ctx);
}

static void on_delay(uv_timer_t *t)
{
    kgate_t *g = t->data;
    if (g->answer == NULL) {
        g->io.close(g->io.ctx);
        return;
    }
    uint8_t *a = g->answer;
    g->answer = NULL;
    g->io.emit(g->io.ctx, a, g->answer_len);
    uv_timer_start(&g->delay, on_grace, KGATE_GRACE_MS, 0);
}

/* Every failure: logged now, answered (or closed) after the fixed delay. */
static void gate_fail(kgate_t *g, const char *reason, uint8_t *answer, size_t len, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));

/* `reason`: a short label for the failures counter (metrics.h). */
static void gate_fail(kgate_t *g, const char *reason, uint8_t *answer, size_t len, const char *fmt,
                      ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    log_warn("authentication gate: %s: %s", g->who, why);
    metrics_auth_failure(reason);
    g->state = G_FAILED;
    g->answer = answer;
    g->answer_len = len;
    uv_timer_stop(&g->deadline);
    uv_timer_start(&g->delay, on_delay, KGATE_DELAY_MS, 0);
}

static void on_deadline(uv_timer_t *t)
{
    kgate_t *g = t->data;
    if (g->state == G_PASSED || g->state == G_FAILED) return;
    log_warn("authentication gate: %s: authentication did not finish within %u ms: closing", g->who,
             g->cfg.deadline_ms);
    metrics_auth_failure("deadline");
    g->io.close(g->io.ctx);
}

static void emit(kgate_t *g, uint8_t *a, size_t len)
{
    if (a) g->io.emit(g->io.ctx, a, len);
}

/* A token for the mechanism (SaslAuthenticate's bytes, or a raw token). */
static void sasl_token(kgate_t *g, int16_t ver, int32_t corr, const uint8_t *tok, size_t n)
{
    uint8_t *out;
    size_t out_len, len = 0;
    int rc = ksasl_step(&g->sasl, tok, n, &out, &out_len);
    if (rc == KSASL_FAIL) {
        uint8_t *a = g->raw ? NULL
                            : authenticate_answer(ver, corr, ERR_SASL_AUTHENTICATION_FAILED,
                                                  AUTH_FAILED_MSG, NULL, 0, &len);
        gate_fail(g, "bad_credentials", a, len, "%s authentication failed for user \"%s\": %s",
                  ksasl_mech_name(g->sasl.mech), g->sasl.user, g->sasl.reason);
        return;
    }
    uint8_t *a = g->raw ? raw_token(out, out_len, &len)
                        : authenticate_answer(ver, corr, ERR_NONE, NULL, out, out_len, &len);
    free(out);
    if (rc == KSASL_OK) {
        g->state = G_PASSED;
        uv_timer_stop(&g->deadline);
        log_info("authentication gate: %s: authenticated as \"%s\" (%s)", g->who, g->sasl.user,
                 ksasl_mech_name(g->sasl.mech));
    }
    emit(g, a, len);
}

/* One complete request (body: after the size). */
static void request(kgate_t *g, const uint8_t *body, size_t n)
{
    size_t len = 0;
    if (g->raw) {
        sasl_token(g, 0, 0, body, n);
        return;
    }
    kw_cur c = kw_init(body, n);
    int16_t key = kw_i16(&c), ver = kw_i16(&c);
    int32_t corr = kw_i32(&c);
    kw_skip_string(&c, 0, 1); /* ClientId */
    if (c.err) {
        gate_fail(g, "malformed", NULL, 0, "malformed request header before authentication");
        return;
    }
    if (key == KAFKA_API_VERSIONS && g->state == G_START) {
        uint8_t *a = api_versions_answer(g, ver, corr, &len);
        emit(g, a, len);
        return;
    }
    if (key == KAFKA_SASL_HANDSHAKE && (ver == 0 || ver == 1)) {
        const uint8_t *m;
        size_t ml;
        kw_string(&c, 0, 0, &m, &ml);
        if (c.err) {
            gate_fail(g, "malformed", NULL, 0, "malformed SaslHandshake");
            return;
        }
        if (g->state != G_START) {
            uint8_t *a = handshake_answer(g, corr, ERR_ILLEGAL_SASL_STATE, &len);
            gate_fail(g, "illegal_state", a, len,
                      "SaslHandshake out of order (ILLEGAL_SASL_STATE)");
            return;
        }
        int mech = ksasl_mech_parse(m, ml);
        if (!mech_enabled(g, mech)) {
            uint8_t *a = handshake_answer(g, corr, ERR_UNSUPPORTED_SASL_MECHANISM, &len);
            gate_fail(g, "unsupported_mechanism", a, len,
                      "mechanism \"%.*s\" is not enabled (UNSUPPORTED_SASL_MECHANISM)%s",
                      (int)(ml > 64 ? 64 : ml), (const char *)m,
                      mech == KSASL_PLAIN ? "; PLAIN needs TLS, or --allow-plain-without-tls" : "");
            return;
        }
        ksasl_session_init(&g->sasl, g->cfg.store, (ksasl_mech_t)mech);
        g->has_session = 1;
        g->raw = ver == 0;
        g->state = G_HANDSHAKEN;
        uint8_t *a = handshake_answer(g, corr, ERR_NONE, &len);
        emit(g, a, len);
        return;
    }
    if (key == KAFKA_SASL_AUTHENTICATE && ver >= 0 && ver <= 2) {
        int flex = ver >= 2;
        if (flex) kw_skip_tags(&c);
        const uint8_t *tok = NULL;
        size_t tl = 0;
        if (flex) {
            uint32_t l = kw_uvarint(&c);
            if (l == 0) c.err = 1;
            tl = l ? l - 1 : 0;
        } else {
            int32_t l = kw_i32(&c);
            if (l < 0) c.err = 1;
            tl = l < 0 ? 0 : (size_t)l;
        }
        if (kw_need(&c, tl)) tok = c.p;
        if (c.err) {
            gate_fail(g, "malformed", NULL, 0, "malformed SaslAuthenticate");
            return;
        }
        if (g->state != G_HANDSHAKEN) {
            uint8_t *a = authenticate_answer(ver, corr, ERR_ILLEGAL_SASL_STATE,
                                             "SaslAuthenticate before SaslHandshake", NULL, 0, &len);
            gate_fail(g, "illegal_state", a, len, "SaslAuthenticate before SaslHandshake (ILLEGAL_SASL_STATE)");
            return;
        }
        sasl_token(g, ver, corr, tok, tl);
        return;
    }
    /* Kafka closes a connection whose first requests are not SASL's. */
    gate_fail(g, "request_before_auth", NULL, 0,
              "request api %d v%d before authentication: closing (this address requires SASL: "
              "the client needs security.protocol=SASL_SSL or SASL_PLAINTEXT and a sasl.mechanism)",
              key, ver);
}

ssize_t kgate_input(kgate_t *g, const uint8_t *p, size_t n)
{
    size_t used = 0;
    while (used < n && (g->state == G_START || g->state == G_HANDSHAKEN)) {
        if (g->len < 4) {
            size_t take = 4 - g->len < n - used ? 4 - g->len : n - used;
            if (g->cap < 4) {
                uint8_t *b = realloc(g->buf, 64);
                if (b == NULL) return -1;
                g->buf = b;
                g->cap = 64;
            }
            memcpy(g->buf + g->len, p + used, take);
            g->len += take;
            used += take;
            if (g->len < 4) break;
        }
        uint32_t size;
        if (kf_size(g->buf, 4, KGATE_FRAME_MAX - 4, &size) != 0) {
            gate_fail(g, "bad_frame", NULL, 0, "%s before authentication: closing",
                      kf_looks_like_tls(g->buf, 4) ? "a TLS handshake (the client uses SSL; this "
                                                     "port is plaintext)"
                                                   : "a request over 512 KiB or a negative size");
            return (ssize_t)used;
        }
        size_t want = 4 + (size_t)size, take = want - g->len < n - used ? want - g->len : n - used;
        if (g->len + take > g->cap) { /* grows as bytes arrive, never to the announced size */
            size_t ncap = g->cap * 2 > g->len + take ? g->cap * 2 : g->len + take;
            if (ncap > want) ncap = want;
            uint8_t *b = realloc(g->buf, ncap);
            if (b == NULL) return -1;
            g->buf = b;
            g->cap = ncap;
        }
        memcpy(g->buf + g->len, p + used, take);
        g->len += take;
        used += take;
        if (g->len < want) break;
        g->len = 0;
        request(g, g->buf + 4, size);
        OPENSSL_cleanse(g->buf, want); /* a PLAIN token holds the password */
    }
    if (g->state == G_PASSED) {
        free(g->buf);
        g->buf = NULL;
        g->cap = 0;
    }
    return (ssize_t)used;
}

int kgate_passed(const kgate_t *g) { return g->state == G_PASSED; }

kgate_t *kgate_new(uv_loop_t *loop, const kgate_config_t *cfg, const kgate_io_t *io, const char *who)
{
    kgate_t *g = calloc(1, sizeof *g);
    if (g == NULL) return NULL;
    g->cfg = *cfg;
    if (g->cfg.deadline_ms == 0) g->cfg.deadline_ms = KGATE_DEADLINE_MS;
    g->io = *io;
    snprintf(g->who, sizeof g->who, "%s", who);
    uv_timer_init(loop, &g->deadline);
    uv_timer_init(loop, &g->delay);
    g->deadline.data = g->delay.data = g;
    g->open_handles = 2;
    uv_timer_start(&g->deadline, on_deadline, g->cfg.deadline_ms, 0);
    return g;
}

void kgate_free(kgate_t *g)
{
    if (g == NULL || g->freed) return;
    g->freed = 1;
    if (g->has_session) ksasl_session_free(&g->sasl);
    if (g->buf) OPENSSL_cleanse(g->buf, g->cap);
    uv_close((uv_handle_t *)&g->deadline, on_handle_closed);
    uv_close((uv_handle_t *)&g->delay, on_handle_closed);
}

int kgate_parse_apis(const uint8_t *frame, size_t len, kgate_api_t *out, size_t cap)
{
    kw_cur c = kw_init(frame, len);
    kw_skip(&c, 8); /* size, CorrelationId */
    int16_t err = kw_i16(&c);
    int32_t n = kw_array(&c, 0, 0, 6);
    if (c.err || err != 0) return -1;
    size_t k = 0;
    for (int32_t i = 0; i < n && !c.err; i++) {
        kgate_api_t a;
        a.key = kw_i16(&c);
        a.min = kw_i16(&c);
        a.max = kw_i16(&c);
        if (!c.err && k < cap) out[k++] = a;
    }
    return c.err ? -1 : (int)k;
}
