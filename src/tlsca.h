/* tlsca.h - the kafka-proxy's own certificate authority, for --tls without
 * --tls-cert: created on first use in the state directory (state.h) and
 * reused on later runs, so clients trust it once.
 *
 * Files: ca.pem (the CA certificate, what clients trust), ca.key (0600),
 * leaf-<host>.pem and leaf-<host>.key (0600): the certificate for the
 * advertised host, issued by the CA, with the host as its subjectAltName
 * (an IP address or a DNS name). A leaf is reissued when it is missing,
 * not issued by the current CA, or expires within 30 days. Keys are ECDSA
 * P-256; the CA is valid for 10 years, a leaf for 397 days (what browsers
 * and Java accept). */
#ifndef BORE_TLSCA_H
#define BORE_TLSCA_H

#include <stddef.h>

#include "state.h"

typedef struct {
    char ca[STATE_PATH_MAX];   /* ca.pem */
    char cert[STATE_PATH_MAX]; /* leaf-<host>.pem */
    char key[STATE_PATH_MAX];  /* leaf-<host>.key */
    int created_ca;            /* the CA was created by this call */
    int issued_leaf;           /* the leaf was (re)issued by this call */
} tlsca_files_t;

/* Makes sure the CA and a leaf for `host` exist in `dir` (an existing
 * directory). Returns 0, or -1 after writing why into err. */
int tlsca_ensure(const char *dir, const char *host, tlsca_files_t *out, char *err, size_t cap);

/* --print-ca: prints the CA certificate (PEM) of the state directory
 * (override: --state-dir, or NULL). Returns the exit code. */
int tlsca_print(const char *override);

#endif
