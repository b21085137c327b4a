/* tls.c - see tls.h. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

#define LOG_TARGET "bore::tls"
#define BIO_KEEP 256              /* a drained memory BIO larger than this is replaced */
#define RECORD 16384              /* plaintext per TLS record */
#define CHUNK (RECORD + 512)      /* ciphertext fed to OpenSSL at a time: about a record */
#define STASH_MAX (1024 * 1024)   /* plaintext held while the handshake runs */

struct tls_ctx {
    SSL_CTX *ssl;
};

struct tls_conn {
    SSL *ssl;
    int server;
    int handshaken;
    int first_seen; /* server: the first bytes were looked at */
    uint8_t *stash; /* plaintext given before the handshake finished */
    size_t stash_n;
    void (*on_handshake)(void *arg);
    void *arg;
    char name[128];
};

/* The first OpenSSL error on this thread, as text (and the queue cleared). */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, cap, "unknown error");
    } else {
        const char *r = ERR_reason_error_string(e);
        if (r)
            snprintf(buf, cap, "%s", r);
        else
            ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

static tls_ctx_t *ctx_new(const SSL_METHOD *m, char *err, size_t cap)
{
    tls_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL || (c->ssl = SSL_CTX_new(m)) == NULL) {
        snprintf(err, cap, "cannot create a TLS context");
        free(c);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
    SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION);
    return c;
}

static int load_pair(tls_ctx_t *c, const char *cert, const char *key, char *err, size_t cap)
{
    char why[160];
    if (SSL_CTX_use_certificate_chain_file(c->ssl, cert) != 1) {
        snprintf(err, cap, "cannot load the certificate %s: %s", cert, ssl_reason(why, sizeof why));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, cap, "cannot load the key %s: %s", key, ssl_reason(why, sizeof why));
        return -1;
    }
    if (SSL_CTX_check_private_key(c->ssl) != 1) {
        snprintf(err, cap, "the key %s does not match the certificate %s", key, cert);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

tls_ctx_t *tls_server_ctx(const char *cert, const char *key, const char *client_ca, char *err,
                          size_t cap)
{
    tls_ctx_t *c = ctx_new(TLS_server_method(), err, cap);
    if (c == NULL) return NULL;
    char why[160];
    static const unsigned char sid[] = "bore kafka-proxy";
    SSL_CTX_set_session_id_context(c->ssl, sid, sizeof sid - 1);
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_SERVER);
    if (load_pair(c, cert, key, err, cap) != 0) goto fail;
    if (client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(c->ssl, client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(err, cap, "cannot load the client CA %s: %s", client_ca, ssl_reason(why, sizeof why));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(c->ssl, names);
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return c;
fail:
    tls_ctx_free(c);
    return NULL;
}

tls_ctx_t *tls_client_ctx(const char *ca, const char *cert, const char *key, char *err, size_t cap)
{
    tls_ctx_t *c = ctx_new(TLS_client_method(), err, cap);
    if (c == NULL) return NULL;
    char why[160];
    int ok = ca ? SSL_CTX_load_verify_locations(c->ssl, ca, NULL) : SSL_CTX_set_default_verify_paths(c->ssl);
    if (ok != 1) {
        snprintf(err, cap, "cannot load the CA %s: %s", ca ? ca : "(system)", ssl_reason(why, sizeof why));
        goto fail;
    }
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    if (cert && load_pair(c, cert, key ? key : cert, err, cap) != 0) goto fail;
    return c;
fail:
    tls_ctx_free(c);
    return NULL;
}

void tls_ctx_free(tls_ctx_t *c)
{
    if (c == NULL) return;
    SSL_CTX_free(c->ssl);
    free(c);
}

tls_conn_t *tls_conn_new(tls_ctx_t *c, int server, const char *name)
{
    tls_conn_t *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    t->ssl = SSL_new(c->ssl);
    if (t->ssl == NULL || rb == NULL || wb == NULL) {
        BIO_free(rb);
        BIO_free(wb);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    SSL_set_bio(t->ssl, rb, wb);
    t->server = server;
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    if (server) {
        SSL_set_accept_state(t->ssl);
        return t;
    }
    SSL_set_connect_state(t->ssl);
    /* The certificate must name the host dialled: an IP address or a DNS name. */
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(t->name);
    if (ip) {
        ASN1_OCTET_STRING_free(ip);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), t->name);
    } else {
        SSL_set_tlsext_host_name(t->ssl, t->name);
        SSL_set1_host(t->ssl, t->name);
    }
    ERR_clear_error();
    (void)SSL_do_handshake(t->ssl); /* queues the ClientHello */
    ERR_clear_error();
    return t;
}

void tls_conn_free(tls_conn_t *t)
{
    if (t == NULL) return;
    SSL_free(t->ssl);
    free(t->stash);
    free(t);
}

void tls_conn_on_handshake(tls_conn_t *t, void (*cb)(void *arg), void *arg)
{
    t->on_handshake = cb;
    t->arg = arg;
}

int tls_conn_handshaken(const tls_conn_t *t) { return t->handshaken; }

int tls_looks_like_kafka(const uint8_t *p, size_t n)
{
    /* size (< 16 MiB, so the first byte is 0), api key 18, version 0-4 */
    if (n < 8) return n >= 1 && p[0] == 0;
    uint32_t size = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return p[0] == 0 && size >= 8 && p[4] == 0 && p[5] == 18 && p[6] == 0 && p[7] <= 4;
}

/* A drained memory BIO that grew is replaced by an empty one: memory BIOs
 * keep their largest size, an idle connection should hold nothing. */
static void shrink(tls_conn_t *t, int write_side)
{
    BIO *b = write_side ? SSL_get_wbio(t->ssl) : SSL_get_rbio(t->ssl);
    BUF_MEM *m = NULL;
    if (BIO_ctrl_pending(b) != 0) return;
    BIO_get_mem_ptr(b, &m);
    if (m == NULL || m->max <= BIO_KEEP) return;
    BIO *fresh = BIO_new(BIO_s_mem());
    if (fresh == NULL) return;
    if (write_side)
        SSL_set0_wbio(t->ssl, fresh);
    else
        SSL_set0_rbio(t->ssl, fresh);
}

static int handshake(tls_conn_t *t)
{
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshaken = 1;
        log_debug("%s: TLS handshake done (%s, %s%s)", t->name, SSL_get_version(t->ssl),
                  SSL_get_cipher_name(t->ssl), SSL_session_reused(t->ssl) ? ", resumed" : "");
        if (t->on_handshake) t->on_handshake(t->arg);
        return 0;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    char why[160];
    ssl_reason(why, sizeof why);
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK)
        log_warn("%s: TLS handshake failed: %s (%s)", t->name, why, X509_verify_cert_error_string(v));
    else
        log_warn("%s: TLS handshake failed: %s", t->name, why);
    metrics_tls_failure(v != X509_V_OK ? "certificate" : "handshake");
    return -1;
}

/* Decrypts what the memory BIO holds into *buf (grown as needed). Returns
 * 0, 1 at close_notify, -1 on error. */
static int drain_plain(tls_conn_t *t, uint8_t **buf, size_t *cap, size_t *len)
{
    for (;;) {
        /* Only with bytes to read: a read that finds none makes OpenSSL set
         * up its 16 KiB record buffer again and keep it. */
        if (SSL_pending(t->ssl) == 0 && BIO_ctrl_pending(SSL_get_rbio(t->ssl)) == 0) return 0;
        if (*cap - *len < 256) {
            /* The plaintext is never longer than the ciphertext waiting
             * plus what OpenSSL has decrypted already. */
            size_t ncap = *cap + BIO_ctrl_pending(SSL_get_rbio(t->ssl)) + (size_t)SSL_pending(t->ssl) + 256;
            uint8_t *nb = realloc(*buf, ncap);
            if (nb == NULL) return -1;
            *buf = nb;
            *cap = ncap;
        }
        size_t got = 0;
        int rc = SSL_read_ex(t->ssl, *buf + *len, *cap - *len, &got);
        if (rc == 1) {
            *len += got;
            continue;
        }
        int e = SSL_get_error(t->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        if (e == SSL_ERROR_ZERO_RETURN) return 1;
        char why[160];
        log_warn("%s: TLS error: %s", t->name, ssl_reason(why, sizeof why));
        return -1;
    }
}

int tls_recv(void *ctx, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n)
{
    tls_conn_t *t = ctx;
    *out = NULL;
    *out_n = 0;
    if (n == 0) return 0;
    if (t->server && !t->first_seen) {
        t->first_seen = 1;
        if (in[0] != 0x16) { /* not a TLS handshake record */
            if (tls_looks_like_kafka(in, n))
                log_warn("client spoke plaintext to a TLS port: set security.protocol=SSL (SASL_SSL "
                         "with the authentication gate) (%s)",
                         t->name);
            else
                log_warn("%s: the client did not start with a TLS handshake; closing", t->name);
            metrics_tls_failure("plaintext");
            return -1;
        }
    }
    /* Fed a record's worth at a time, so the memory BIO stays small. */
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0;) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        if (BIO_write(SSL_get_rbio(t->ssl), in + off, (int)k) != (int)k) rc = -1;
        off += k;
        if (rc == 0 && !t->handshaken && handshake(t) != 0) rc = -1;
        if (rc == 0 && t->handshaken) rc = drain_plain(t, &buf, &cap, &len);
    }
    shrink(t, 0);
    if (rc < 0 || len == 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_n = len;
    return rc;
}

/* Appends everything the write BIO holds to the output buffer. */
static int drain_wire(tls_conn_t *t, uint8_t **buf, size_t *cap, size_t *len)
{
    BIO *wb = SSL_get_wbio(t->ssl);
    size_t pend = BIO_ctrl_pending(wb);
    if (pend == 0) return 0;
    if (*cap - *len < pend) {
        size_t ncap = *len + pend + (*cap - *len < pend ? *cap / 2 : 0);
        uint8_t *nb = realloc(*buf, ncap);
        if (nb == NULL) return -1;
        *buf = nb;
        *cap = ncap;
    }
    if (BIO_read(wb, *buf + *len, (int)pend) != (int)pend) return -1;
    *len += pend;
    return 0;
}

/* Encrypts p in records, draining the write BIO after each one. */
static int write_all(tls_conn_t *t, const uint8_t *p, size_t n, uint8_t **buf, size_t *cap, size_t *len)
{
    while (n > 0) {
        size_t w = 0, k = n < RECORD ? n : RECORD;
        if (SSL_write_ex(t->ssl, p, k, &w) != 1) {
            char why[160];
            log_warn("%s: TLS write failed: %s", t->name, ssl_reason(why, sizeof why));
            return -1;
        }
        if (drain_wire(t, buf, cap, len) != 0) return -1;
        p += w;
        n -= w;
    }
    return 0;
}

int tls_send(void *ctx, const uv_buf_t *bufs, size_t n, uint8_t **out, size_t *out_n)
{
    tls_conn_t *t = ctx;
    *out = NULL;
    *out_n = 0;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0, total = t->stash_n;
    if (!t->handshaken) {
        /* Only a client may have something to say this early: kept until the handshake is done. */
        for (size_t i = 0; i < n; i++) {
            if (t->stash_n + bufs[i].len > STASH_MAX) return -1;
            uint8_t *s = realloc(t->stash, t->stash_n + bufs[i].len);
            if (s == NULL) return -1;
            t->stash = s;
            memcpy(t->stash + t->stash_n, bufs[i].base, bufs[i].len);
            t->stash_n += bufs[i].len;
        }
    } else {
        for (size_t i = 0; i < n; i++) total += bufs[i].len;
        /* The ciphertext: the plaintext and each record's overhead (header, tag). */
        cap = BIO_ctrl_pending(SSL_get_wbio(t->ssl)) + total + (total / RECORD + 1) * 64;
        if ((buf = malloc(cap)) == NULL) return -1;
        int rc = drain_wire(t, &buf, &cap, &len);
        if (rc == 0 && t->stash_n > 0) rc = write_all(t, t->stash, t->stash_n, &buf, &cap, &len);
        free(t->stash);
        t->stash = NULL;
        t->stash_n = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = write_all(t, (const uint8_t *)bufs[i].base, bufs[i].len, &buf, &cap, &len);
        if (rc != 0) {
            free(buf);
            return -1;
        }
    }
    if (drain_wire(t, &buf, &cap, &len) != 0) {
        free(buf);
        return -1;
    }
    shrink(t, 1);
    if (len == 0) {
        free(buf);
        return 0;
    }
    *out = buf;
    *out_n = len;
    return 0;
}

int tls_pending(void *ctx)
{
    tls_conn_t *t = ctx;
    return BIO_ctrl_pending(SSL_get_wbio(t->ssl)) > 0 || (t->handshaken && t->stash_n > 0);
}

void tls_shutdown(void *ctx)
{
    tls_conn_t *t = ctx;
    if (!t->handshaken) return;
    (void)SSL_shutdown(t->ssl); /* queues close_notify */
    ERR_clear_error();
}
