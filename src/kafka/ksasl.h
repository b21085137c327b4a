/* ksasl.h - the SASL mechanisms of kafka-proxy's authentication gate:
 * PLAIN (RFC 4616) and SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677)
 * as a server, the credential store, and the auth file.
 *
 * No I/O, no event loop: a session takes the client's token and returns the
 * server's. Credentials are kept salted, never as passwords: per user and
 * hash, a salt, an iteration count (>= 4096), StoredKey and ServerKey
 * (RFC 5802 §3). PLAIN is checked against the SCRAM-SHA-256 credentials
 * (PBKDF2 of the offered password with that salt, then StoredKey compared),
 * so no password is kept for it either. Secrets are compared with
 * CRYPTO_memcmp; nonces come from RAND_bytes.
 *
 * An unknown user is not told apart on the wire: SCRAM goes on with a salt
 * derived from the user name and a per-process key, and fails at the proof,
 * like a wrong password.
 *
 * Auth file: one user a line, fields separated by spaces; '#' starts a
 * comment line:
 *   USER SCRAM-SHA-256:ITER:SALT:STOREDKEY:SERVERKEY SCRAM-SHA-512:ITER:SALT:STOREDKEY:SERVERKEY
 * (base64). USER is 1-255 printable bytes without space, ':' or '#'. */
#ifndef BORE_KSASL_H
#define BORE_KSASL_H

#include <stddef.h>
#include <stdint.h>

#define KSASL_USER_MAX 255
#define KSASL_ITER_MIN 4096
#define KSASL_ITER_DEFAULT 4096
#define KSASL_ITER_MAX 1000000
#define KSASL_SALT_LEN 24
#define KSASL_TOKEN_MAX 4096 /* a client token longer than this fails */
#define KSASL_LINE_MAX 1024

typedef enum { KSASL_PLAIN = 0, KSASL_SCRAM_SHA_256 = 1, KSASL_SCRAM_SHA_512 = 2 } ksasl_mech_t;

typedef struct {
    uint32_t iter;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t stored[64], server[64]; /* hash length: 32 or 64 */
} ksasl_cred_t;

typedef struct {
    char name[KSASL_USER_MAX + 1];
    ksasl_cred_t cred[2]; /* [0] SCRAM-SHA-256, [1] SCRAM-SHA-512 */
} ksasl_user_t;

typedef struct ksasl_store {
    ksasl_user_t *users;
    size_t n, cap;
    uint8_t fake_key[32]; /* per process: salts for unknown users */
} ksasl_store_t;

/* 0, or -1 (RAND_bytes failed). */
int ksasl_store_init(ksasl_store_t *st);
void ksasl_store_free(ksasl_store_t *st);

/* 1 if `name` (len bytes) is a valid user name for the store and the file. */
int ksasl_valid_user(const char *name, size_t len);

/* Derives the credentials of `pw` with fresh random salts. 0, or -1. */
int ksasl_user_derive(ksasl_user_t *u, const char *name, const char *pw, size_t pw_len, uint32_t iter);

/* Derives one hash's credentials with a given salt (tests use RFC 7677's). */
int ksasl_cred_derive(ksasl_mech_t mech, const char *pw, size_t pw_len, const uint8_t *salt,
                      size_t salt_len, uint32_t iter, ksasl_cred_t *out);

/* Adds (or replaces, by name) a user. 0, or -1 (out of memory). */
int ksasl_store_put(ksasl_store_t *st, const ksasl_user_t *u);
const ksasl_user_t *ksasl_store_find(const ksasl_store_t *st, const char *name, size_t len);

/* One auth-file line (no newline) into buf. Returns its length, or -1. */
int ksasl_line_format(const ksasl_user_t *u, char *buf, size_t cap);
/* Parses one line. 1: a user; 0: blank or comment; -1: malformed (*why). */
int ksasl_line_parse(const char *line, size_t len, ksasl_user_t *u, const char **why);

/* Loads every user of an auth file into the store. 0, or -1 with a message
 * ("FILE:LINE: why") in err. */
int ksasl_store_load(ksasl_store_t *st, const char *path, char *err, size_t cap);

/* Adds or replaces `u` in the auth file at `path` (created 0600; rewritten
 * atomically: temporary file, fsync, rename). 0, or -1 with err set. */
int ksasl_file_put(const char *path, const ksasl_user_t *u, char *err, size_t cap);

/* The mechanism named by a SaslHandshake (case-sensitive, as Kafka), or -1. */
int ksasl_mech_parse(const uint8_t *name, size_t len);
const char *ksasl_mech_name(ksasl_mech_t m);

enum { KSASL_FAIL = -1, KSASL_OK = 0, KSASL_CONTINUE = 1 };

typedef struct {
    const ksasl_store_t *store;
    ksasl_mech_t mech;
    int step; /* 0: expects the first token; 1: SCRAM client-final; 2: done */
    char user[KSASL_USER_MAX + 1];
    const ksasl_cred_t *cred;
    ksasl_cred_t fake;  /* unknown user: SCRAM goes on with these */
    int unknown;
    char *first_bare;   /* client-first-message-bare */
    char *server_first; /* server-first-message */
    char gs2[KSASL_USER_MAX + 8];
    char nonce[160]; /* client nonce + server nonce */
    const char *test_server_nonce; /* tests: instead of RAND_bytes */
    const char *reason; /* why it failed, for the log (never a secret) */
} ksasl_session_t;

void ksasl_session_init(ksasl_session_t *s, const ksasl_store_t *store, ksasl_mech_t mech);
void ksasl_session_free(ksasl_session_t *s);

/* Takes the client's token; the server's answer (possibly empty) is
 * malloc'd into *out (the caller frees it; NULL on KSASL_FAIL). Returns
 * KSASL_CONTINUE (another token is due), KSASL_OK (authenticated as
 * s->user) or KSASL_FAIL (s->reason says why). */
int ksasl_step(ksasl_session_t *s, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len);

#endif
