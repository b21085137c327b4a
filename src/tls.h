/* tls.h - TLS for the relay (relay.h's transport), with OpenSSL 3 and
 * memory BIOs: the libuv loop does the socket I/O, OpenSSL only turns
 * ciphertext into plaintext and back.
 *
 * Both roles: the kafka-proxy's public side is a server (--tls), its side
 * towards SSL brokers a client (--broker-tls). TLS 1.2 and 1.3 only, with
 * OpenSSL's default ciphers; renegotiation off; session resumption (server
 * cache and TLS 1.3 tickets); SSL_MODE_RELEASE_BUFFERS, and the memory BIOs
 * are swapped for empty ones once drained, so an idle connection holds no
 * record buffers.
 *
 * A server connection looks at the first bytes it is given: a plaintext
 * Kafka request (a 4-byte size, then an ApiVersions header) is logged as
 * "client spoke plaintext to a TLS port: set security.protocol=SSL (SASL_SSL
 * with the authentication gate)" and the
 * connection is refused; anything else that is not a TLS record is refused
 * too. Handshake failures (untrusted or expired client certificate, no
 * certificate where one is required, ...) are logged with OpenSSL's reason;
 * the alert is queued for the peer. */
#ifndef BORE_TLS_H
#define BORE_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* A server context: `cert` is a PEM file with the certificate and any
 * chain after it, `key` its private key; `client_ca` (may be NULL) a PEM
 * file of CAs whose client certificates are required (mTLS). NULL after
 * writing why into err. */
tls_ctx_t *tls_server_ctx(const char *cert, const char *key, const char *client_ca, char *err,
                          size_t cap);

/* A client context that verifies the peer against `ca` (PEM file; NULL:
 * the system's CAs), with an optional client certificate and key. */
tls_ctx_t *tls_client_ctx(const char *ca, const char *cert, const char *key, char *err, size_t cap);

void tls_ctx_free(tls_ctx_t *c);

/* A connection. Server: `name` labels log lines. Client: `name` is the
 * host the peer's certificate must name (DNS name or IP address); the
 * ClientHello is queued at once. NULL when out of memory. */
tls_conn_t *tls_conn_new(tls_ctx_t *c, int server, const char *name);
void tls_conn_free(tls_conn_t *t);

/* Called once when the handshake completes. */
void tls_conn_on_handshake(tls_conn_t *t, void (*cb)(void *arg), void *arg);

int tls_conn_handshaken(const tls_conn_t *t);

/* The relay_transport_t functions (relay.h), ctx = the tls_conn_t. */
int tls_recv(void *ctx, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n);
int tls_send(void *ctx, const uv_buf_t *bufs, size_t n, uint8_t **out, size_t *out_n);
int tls_pending(void *ctx);
void tls_shutdown(void *ctx);

/* The first bytes of a plaintext Kafka request (size, then an ApiVersions
 * v0-v4 header)? Exposed for the unit test. */
int tls_looks_like_kafka(const uint8_t *p, size_t n);

#endif
