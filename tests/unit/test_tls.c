/* TLS (tls.h) and the generated CA (tlsca.h): the CA is created once and
 * reused, a leaf per host, key files 0600; a handshake through the memory
 * BIOs between a server with that leaf and a client that trusts the CA,
 * data both ways, close_notify as EOF; host name verification refuses a
 * leaf for another host; plaintext Kafka is told from a TLS record. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls.h"
#include "tlsca.h"
#include "unit.h"

static char dir[64];

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = calloc(1, 65536);
    if (buf) fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

static void ca_created_once_and_reused(void)
{
    tlsca_files_t a, b, c;
    char err[256], key[300];
    CHECK(tlsca_ensure(dir, "192.0.2.6", &a, err, sizeof err) == 0);
    CHECK(a.created_ca && a.issued_leaf);
    char *ca1 = slurp(a.ca), *leaf1 = slurp(a.cert);
    CHECK(tlsca_ensure(dir, "192.0.2.6", &b, err, sizeof err) == 0);
    CHECK(!b.created_ca && !b.issued_leaf);
    char *ca2 = slurp(b.ca), *leaf2 = slurp(b.cert);
    CHECK(ca1 && ca2 && strcmp(ca1, ca2) == 0);
    CHECK(leaf1 && leaf2 && strcmp(leaf1, leaf2) == 0);
    CHECK(tlsca_ensure(dir, "kafka.example.test", &c, err, sizeof err) == 0);
    CHECK(!c.created_ca && c.issued_leaf);
    CHECK(strstr(c.cert, "leaf-kafka.example.test.pem") != NULL);
    snprintf(key, sizeof key, "%s/ca.key", dir);
    CHECK(mode_of(key) == 0600);
    CHECK(mode_of(a.key) == 0600 && mode_of(c.key) == 0600);
    free(ca1);
    free(ca2);
    free(leaf1);
    free(leaf2);
}

/* Moves everything one side has to write into the other; returns the
 * other's recv result (or -2 if nothing moved). Plaintext lands in out. */
static int pump(tls_conn_t *from, tls_conn_t *to, char *out, size_t *out_len)
{
    uint8_t *w, *p;
    size_t wn, pn;
    if (tls_send(from, NULL, 0, &w, &wn) != 0) return -3;
    if (w == NULL) return -2;
    int rc = tls_recv(to, w, wn, &p, &pn);
    free(w);
    if (p && out) {
        memcpy(out + *out_len, p, pn);
        *out_len += pn;
    }
    free(p);
    return rc;
}

static int handshake(tls_conn_t *s, tls_conn_t *c)
{
    for (int i = 0; i < 10 && !(tls_conn_handshaken(s) && tls_conn_handshaken(c)); i++) {
        if (pump(c, s, NULL, NULL) == -1) return -1;
        if (pump(s, c, NULL, NULL) == -1) return -1;
    }
    return tls_conn_handshaken(s) && tls_conn_handshaken(c) ? 0 : -1;
}

static void handshake_data_and_close(void)
{
    tlsca_files_t f;
    char err[256];
    CHECK(tlsca_ensure(dir, "192.0.2.6", &f, err, sizeof err) == 0);
    tls_ctx_t *sc = tls_server_ctx(f.cert, f.key, NULL, err, sizeof err);
    tls_ctx_t *cc = tls_client_ctx(f.ca, NULL, NULL, err, sizeof err);
    CHECK(sc && cc);
    if (!sc || !cc) return;
    tls_conn_t *s = tls_conn_new(sc, 1, "test"), *c = tls_conn_new(cc, 0, "192.0.2.6");
    CHECK(handshake(s, c) == 0);

    char got[256];
    size_t got_len = 0;
    uint8_t *w, *p;
    size_t wn, pn;
    uv_buf_t msg = uv_buf_init((char *)"ping", 4);
    CHECK(tls_send(c, &msg, 1, &w, &wn) == 0 && w != NULL);
    CHECK(memmem(w, wn, "ping", 4) == NULL); /* ciphertext */
    CHECK(tls_recv(s, w, wn, &p, &pn) == 0);
    CHECK_MEM(p, pn, "ping", 4);
    free(w);
    free(p);
    msg = uv_buf_init((char *)"pong", 4);
    CHECK(tls_send(s, &msg, 1, &w, &wn) == 0 && w != NULL);
    CHECK(tls_recv(c, w, wn, &p, &pn) == 0);
    CHECK_MEM(p, pn, "pong", 4);
    free(w);
    free(p);

    tls_shutdown(s); /* close_notify: EOF for the client */
    CHECK(pump(s, c, got, &got_len) == 1);
    tls_conn_free(s);
    tls_conn_free(c);

    /* The leaf names 192.0.2.6: a client dialling 192.0.2.7 refuses it. */
    s = tls_conn_new(sc, 1, "test");
    c = tls_conn_new(cc, 0, "192.0.2.7");
    CHECK(handshake(s, c) != 0);
    tls_conn_free(s);
    tls_conn_free(c);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void plaintext_kafka_is_recognised(void)
{
    static const uint8_t api_versions[] = {0, 0, 0, 14, 0, 18, 0, 3, 0, 0, 0, 1, 0, 4};
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x00, 0x59, 0x01, 0x00, 0x00};
    CHECK(tls_looks_like_kafka(api_versions, sizeof api_versions));
    CHECK(!tls_looks_like_kafka(hello, sizeof hello));
    CHECK(!tls_looks_like_kafka((const uint8_t *)"GET / HTTP/1.1", 14));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/bore-tls-unit-XXXXXX");
    if (mkdtemp(dir) == NULL) return 1;
    RUN(ca_created_once_and_reused);
    RUN(handshake_data_and_close);
    RUN(plaintext_kafka_is_recognised);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    UNIT_DONE();
}
