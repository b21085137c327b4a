/* tlsca.c - see tlsca.h. */
#include "tlsca.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define LOG_TARGET "bore::tls"
#define PEM_MAX (64 * 1024)
#define DAY (24L * 60 * 60)
#define CA_DAYS 3650
#define LEAF_DAYS 397
#define RENEW_DAYS 30

static EVP_PKEY *keygen(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); }

/* PEM text of a key or certificate, malloc'd (NUL-terminated). */
static char *to_pem(EVP_PKEY *k, X509 *x, size_t *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL) return NULL;
    int ok = k ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_X509(b, x);
    char *data = NULL, *out = NULL;
    long len = BIO_get_mem_data(b, &data);
    if (ok == 1 && len > 0 && (out = malloc((size_t)len + 1)) != NULL) {
        memcpy(out, data, (size_t)len);
        out[len] = 0;
        *n = (size_t)len;
    }
    BIO_free(b);
    return out;
}

static int save(const char *dir, const char *name, EVP_PKEY *k, X509 *x, mode_t mode)
{
    size_t n = 0;
    char *pem = to_pem(k, x, &n);
    if (pem == NULL) return -1;
    int rc = state_write(dir, name, pem, n, mode);
    OPENSSL_cleanse(pem, n);
    free(pem);
    return rc;
}

/* Reads dir/name as a key (want_key) or a certificate. 1: absent, 0: read, -1: bad. */
static int load(const char *dir, const char *name, EVP_PKEY **k, X509 **x)
{
    char *data;
    size_t n;
    int rc = state_read(dir, name, PEM_MAX, &data, &n);
    if (rc != 0) return rc;
    BIO *b = BIO_new_mem_buf(data, (int)n);
    if (b) {
        if (k)
            *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        else
            *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    }
    BIO_free(b);
    OPENSSL_cleanse(data, n);
    free(data);
    ERR_clear_error();
    return (k ? *k != NULL : *x != NULL) ? 0 : -1;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (e == NULL) return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok == 1 ? 0 : -1;
}

/* A certificate for `key`, signed by ca_key (issuer: ca, or itself when
 * ca is NULL). */
static X509 *issue(EVP_PKEY *key, const char *cn, long days, X509 *ca, EVP_PKEY *ca_key,
                   const char *const exts[][2], size_t n_exts)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    if (x == NULL || bn == NULL) goto fail;
    if (X509_set_version(x, 2) != 1) goto fail;
    /* 127 random bits: positive, unique. */
    if (BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto fail;
    if (X509_gmtime_adj(X509_getm_notBefore(x), -DAY) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), days * DAY) == NULL)
        goto fail;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"bore kafka-proxy",
                                   -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1)
        goto fail;
    if (X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name) != 1) goto fail;
    if (X509_set_pubkey(x, key) != 1) goto fail;
    for (size_t i = 0; i < n_exts; i++)
        if (add_ext(x, ca ? ca : x, OBJ_txt2nid(exts[i][0]), exts[i][1]) != 0) goto fail;
    if (X509_sign(x, ca_key, EVP_sha256()) <= 0) goto fail;
    BN_free(bn);
    return x;
fail:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

/* The leaf file names use the host with anything unusual replaced. */
static void leaf_names(const char *host, char *cert, char *key, size_t cap)
{
    char safe[256];
    size_t i = 0;
    for (; host[i] && i < sizeof safe - 1; i++) {
        char c = host[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == ':';
        safe[i] = ok ? c : '_';
    }
    safe[i] = 0;
    snprintf(cert, cap, "leaf-%s.pem", safe);
    snprintf(key, cap, "leaf-%s.key", safe);
}

/* An existing leaf is kept if the current CA issued it and it is valid
 * for RENEW_DAYS more. */
static int leaf_usable(X509 *leaf, EVP_PKEY *leaf_key, EVP_PKEY *ca_key, const char *host)
{
    time_t soon = time(NULL) + RENEW_DAYS * DAY;
    int ok = X509_verify(leaf, ca_key) == 1 && X509_check_private_key(leaf, leaf_key) == 1 &&
             X509_cmp_time(X509_get0_notAfter(leaf), &soon) > 0 &&
             (X509_check_host(leaf, host, 0, 0, NULL) == 1 || X509_check_ip_asc(leaf, host, 0) == 1);
    ERR_clear_error();
    return ok;
}

int tlsca_ensure(const char *dir, const char *host, tlsca_files_t *out, char *err, size_t cap)
{
    EVP_PKEY *ca_key = NULL, *leaf_key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    char cert_name[300], key_name[300];
    int rc = -1;
    memset(out, 0, sizeof *out);
    leaf_names(host, cert_name, key_name, sizeof cert_name);
    if (state_path(dir, "ca.pem", out->ca, sizeof out->ca) != 0 ||
        state_path(dir, cert_name, out->cert, sizeof out->cert) != 0 ||
        state_path(dir, key_name, out->key, sizeof out->key) != 0) {
        snprintf(err, cap, "the state directory's path is too long");
        return -1;
    }

    int rk = load(dir, "ca.key", &ca_key, NULL), rc_ = load(dir, "ca.pem", NULL, &ca);
    if (rk < 0 || rc_ < 0 || rk != rc_) {
        snprintf(err, cap, "%s/ca.pem or ca.key is unreadable or missing its pair: move both away "
                           "to create a new CA (clients must then trust the new one)", dir);
        goto out;
    }
    if (rk == 0 && X509_check_private_key(ca, ca_key) != 1) {
        ERR_clear_error();
        snprintf(err, cap, "%s/ca.key does not match ca.pem", dir);
        goto out;
    }
    if (rk == 1) {
        static const char *const ca_exts[][2] = {
            {"basicConstraints", "critical,CA:TRUE,pathlen:0"},
            {"keyUsage", "critical,keyCertSign,cRLSign"},
            {"subjectKeyIdentifier", "hash"},
        };
        char cn[300];
        snprintf(cn, sizeof cn, "bore kafka-proxy CA for %.200s", host);
        if ((ca_key = keygen()) == NULL ||
            (ca = issue(ca_key, cn, CA_DAYS, NULL, ca_key, ca_exts, 3)) == NULL) {
            snprintf(err, cap, "cannot create the CA");
            goto out;
        }
        /* The key first: a ca.pem without its key is refused above. */
        if (save(dir, "ca.key", ca_key, NULL, 0600) != 0 || save(dir, "ca.pem", NULL, ca, 0644) != 0) {
            snprintf(err, cap, "cannot write the CA to %s", dir);
            goto out;
        }
        out->created_ca = 1;
        log_info("created a CA for TLS: %s (clients trust this file)", out->ca);
    }

    int lk = load(dir, key_name, &leaf_key, NULL), lc = load(dir, cert_name, NULL, &leaf);
    if (lk == 0 && lc == 0 && leaf_usable(leaf, leaf_key, X509_get0_pubkey(ca), host)) {
        rc = 0;
        goto out;
    }
    EVP_PKEY_free(leaf_key);
    X509_free(leaf);
    leaf = NULL;
    char san[300];
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
    snprintf(san, sizeof san, "%s:%.250s", ip ? "IP" : "DNS", host);
    ASN1_OCTET_STRING_free(ip);
    ERR_clear_error();
    const char *const leaf_exts[][2] = {
        {"basicConstraints", "critical,CA:FALSE"},
        {"keyUsage", "critical,digitalSignature"},
        {"extendedKeyUsage", "serverAuth"},
        {"subjectKeyIdentifier", "hash"},
        {"authorityKeyIdentifier", "keyid"},
        {"subjectAltName", san},
    };
    if ((leaf_key = keygen()) == NULL ||
        (leaf = issue(leaf_key, host, LEAF_DAYS, ca, ca_key, leaf_exts, 6)) == NULL) {
        snprintf(err, cap, "cannot issue a certificate for %s", host);
        goto out;
    }
    if (save(dir, key_name, leaf_key, NULL, 0600) != 0 || save(dir, cert_name, NULL, leaf, 0644) != 0) {
        snprintf(err, cap, "cannot write the certificate for %s to %s", host, dir);
        goto out;
    }
    out->issued_leaf = 1;
    log_info("issued a TLS certificate for %s: %s", host, out->cert);
    rc = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    X509_free(ca);
    X509_free(leaf);
    return rc;
}

int tlsca_print(const char *override)
{
    char dir[STATE_PATH_MAX], *data;
    size_t n;
    if (state_dir(override, dir, sizeof dir) != 0) return 1;
    int rc = state_read(dir, "ca.pem", PEM_MAX, &data, &n);
    if (rc == 1) fprintf(stderr, "Error: no CA in %s yet: `bore kafka-proxy --tls` creates it\n", dir);
    if (rc != 0) return 1;
    fwrite(data, 1, n, stdout);
    fflush(stdout);
    free(data);
    return 0;
}
