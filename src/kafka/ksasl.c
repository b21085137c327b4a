/* ksasl.c - see ksasl.h. */
#include "ksasl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define FILE_MAX (16u << 20)

static const EVP_MD *md_of(int h) { return h ? EVP_sha512() : EVP_sha256(); }
static size_t hlen_of(int h) { return h ? 64 : 32; }

/* ---- base64 (OpenSSL's block coder, with the padding it leaves counted) -- */

static size_t b64_enc(const uint8_t *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decodes `n` chars (a multiple of 4, canonical) into out (cap bytes).
 * Returns the length, or -1. */
static int b64_dec(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0) return 0;
    if (n % 4 != 0 || n / 4 * 3 > cap || n > 1u << 20) return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0) return -1;
    if (in[n - 1] == '=') len--;
    if (in[n - 2] == '=') len--;
    return len;
}

/* ---- credentials ------------------------------------------------------------ */

int ksasl_store_init(ksasl_store_t *st)
{
    memset(st, 0, sizeof *st);
    return RAND_bytes(st->fake_key, sizeof st->fake_key) == 1 ? 0 : -1;
}

void ksasl_store_free(ksasl_store_t *st)
{
    if (st->users) OPENSSL_cleanse(st->users, st->cap * sizeof *st->users);
    free(st->users);
    memset(st, 0, sizeof *st);
}

int ksasl_valid_user(const char *name, size_t len)
{
    if (len == 0 || len > KSASL_USER_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c == 0x7f || c == ':' || c == '#') return 0;
    }
    return 1;
}

static int hmac(int h, const uint8_t *key, size_t klen, const void *msg, size_t n, uint8_t *out)
{
    unsigned int len = 0;
    return HMAC(md_of(h), key, (int)klen, msg, n, out, &len) != NULL ? 0 : -1;
}

static int digest(int h, const uint8_t *in, size_t n, uint8_t *out)
{
    return EVP_Digest(in, n, out, NULL, md_of(h), NULL) == 1 ? 0 : -1;
}

/* RFC 5802 §3: SaltedPassword, then ClientKey/StoredKey and ServerKey. */
static int salted(int h, const char *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
                  uint32_t iter, uint8_t *sp)
{
    return PKCS5_PBKDF2_HMAC(pw, (int)pw_len, salt, (int)salt_len, (int)iter, md_of(h),
                             (int)hlen_of(h), sp) == 1
               ? 0
               : -1;
}

int ksasl_cred_derive(ksasl_mech_t mech, const char *pw, size_t pw_len, const uint8_t *salt,
                      size_t salt_len, uint32_t iter, ksasl_cred_t *out)
{
    int h = mech == KSASL_SCRAM_SHA_512;
    uint8_t sp[64], ck[64];
    if (salt_len == 0 || salt_len > sizeof out->salt || pw_len > INT32_MAX) return -1;
    memset(out, 0, sizeof *out);
    out->iter = iter;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    int rc = salted(h, pw, pw_len, salt, salt_len, iter, sp) ||
             hmac(h, sp, hlen_of(h), "Client Key", 10, ck) || digest(h, ck, hlen_of(h), out->stored) ||
             hmac(h, sp, hlen_of(h), "Server Key", 10, out->server);
    OPENSSL_cleanse(sp, sizeof sp);
    OPENSSL_cleanse(ck, sizeof ck);
    return rc ? -1 : 0;
}

int ksasl_user_derive(ksasl_user_t *u, const char *name, const char *pw, size_t pw_len, uint32_t iter)
{
    size_t nl = strlen(name);
    if (!ksasl_valid_user(name, nl) || iter < KSASL_ITER_MIN || iter > KSASL_ITER_MAX) return -1;
    memset(u, 0, sizeof *u);
    memcpy(u->name, name, nl);
    for (int h = 0; h < 2; h++) {
        uint8_t salt[KSASL_SALT_LEN];
        if (RAND_bytes(salt, sizeof salt) != 1 ||
            ksasl_cred_derive(h ? KSASL_SCRAM_SHA_512 : KSASL_SCRAM_SHA_256, pw, pw_len, salt,
                              sizeof salt, iter, &u->cred[h]) != 0)
            return -1;
    }
    return 0;
}

const ksasl_user_t *ksasl_store_find(const ksasl_store_t *st, const char *name, size_t len)
{
    for (size_t i = 0; i < st->n; i++)
        if (strlen(st->users[i].name) == len && memcmp(st->users[i].name, name, len) == 0)
            return &st->users[i];
    return NULL;
}

int ksasl_store_put(ksasl_store_t *st, const ksasl_user_t *u)
{
    ksasl_user_t *old = (ksasl_user_t *)ksasl_store_find(st, u->name, strlen(u->name));
    if (old) {
        *old = *u;
        return 0;
    }
    if (st->n == st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 8;
        ksasl_user_t *p = calloc(ncap, sizeof *p);
        if (p == NULL) return -1;
        if (st->n) memcpy(p, st->users, st->n * sizeof *p);
        if (st->users) OPENSSL_cleanse(st->users, st->cap * sizeof *st->users);
        free(st->users);
        st->users = p;
        st->cap = ncap;
    }
    st->users[st->n++] = *u;
    return 0;
}

/* ---- the auth file ------------------------------------------------------------ */

static const char *const cred_tag[2] = {"SCRAM-SHA-256", "SCRAM-SHA-512"};

int ksasl_line_format(const ksasl_user_t *u, char *buf, size_t cap)
{
    size_t used = 0;
    int w = snprintf(buf, cap, "%s", u->name);
    if (w < 0 || (size_t)w >= cap) return -1;
    used = (size_t)w;
    for (int h = 0; h < 2; h++) {
        const ksasl_cred_t *c = &u->cred[h];
        char salt[100], stored[100], server[100];
        b64_enc(c->salt, c->salt_len, salt);
        b64_enc(c->stored, hlen_of(h), stored);
        b64_enc(c->server, hlen_of(h), server);
        w = snprintf(buf + used, cap - used, " %s:%u:%s:%s:%s", cred_tag[h], c->iter, salt, stored,
                     server);
        if (w < 0 || (size_t)w >= cap - used) return -1;
        used += (size_t)w;
    }
    return (int)used;
}

/* "TAG:ITER:SALT:STORED:SERVER" (len bytes at f). */
static int parse_cred(const char *f, size_t len, int h, ksasl_cred_t *c, const char **why)
{
    const char *end = f + len, *part[5];
    size_t plen[5];
    for (int i = 0; i < 5; i++) {
        const char *colon = memchr(f, ':', (size_t)(end - f));
        if ((colon == NULL) != (i == 4)) {
            *why = "a credential has the wrong number of ':'-separated fields";
            return -1;
        }
        part[i] = f;
        plen[i] = (size_t)((colon ? colon : end) - f);
        f = colon ? colon + 1 : end;
    }
    if (plen[0] != strlen(cred_tag[h]) || memcmp(part[0], cred_tag[h], plen[0]) != 0) {
        *why = h ? "the third field must be SCRAM-SHA-512:..." : "the second field must be SCRAM-SHA-256:...";
        return -1;
    }
    char num[16];
    if (plen[1] == 0 || plen[1] >= sizeof num) goto bad_iter;
    memcpy(num, part[1], plen[1]);
    num[plen[1]] = '\0';
    char *e;
    errno = 0;
    unsigned long it = strtoul(num, &e, 10);
    if (errno || *e || num[0] == '-' || it < KSASL_ITER_MIN || it > KSASL_ITER_MAX) goto bad_iter;
    c->iter = (uint32_t)it;
    int n = b64_dec(part[2], plen[2], c->salt, sizeof c->salt);
    if (n <= 0) {
        *why = "bad salt (base64)";
        return -1;
    }
    c->salt_len = (size_t)n;
    uint8_t tmp[100];
    if (b64_dec(part[3], plen[3], tmp, sizeof tmp) != (int)hlen_of(h)) {
        *why = "bad StoredKey (base64 of the hash length)";
        return -1;
    }
    memcpy(c->stored, tmp, hlen_of(h));
    if (b64_dec(part[4], plen[4], tmp, sizeof tmp) != (int)hlen_of(h)) {
        *why = "bad ServerKey (base64 of the hash length)";
        return -1;
    }
    memcpy(c->server, tmp, hlen_of(h));
    return 0;
bad_iter:
    *why = "the iteration count must be a number from 4096 to 1000000";
    return -1;
}

int ksasl_line_parse(const char *line, size_t len, ksasl_user_t *u, const char **why)
{
    const char *p = line, *end = line + len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
    if (p == end || *p == '#') return 0;
    const char *f[3];
    size_t fl[3];
    for (int i = 0; i < 3; i++) {
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (p == end) {
            *why = "expected USER SCRAM-SHA-256:... SCRAM-SHA-512:...";
            return -1;
        }
        f[i] = p;
        while (p < end && *p != ' ' && *p != '\t') p++;
        fl[i] = (size_t)(p - f[i]);
    }
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p != end) {
        *why = "too many fields";
        return -1;
    }
    memset(u, 0, sizeof *u);
    if (!ksasl_valid_user(f[0], fl[0])) {
        *why = "bad user name (1-255 printable bytes, no space, ':' or '#')";
        return -1;
    }
    memcpy(u->name, f[0], fl[0]);
    for (int h = 0; h < 2; h++)
        if (parse_cred(f[1 + h], fl[1 + h], h, &u->cred[h], why) != 0) return -1;
    return 1;
}

static int read_file(const char *path, char **data, size_t *n, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? 1 : -1;
    }
    char *buf = malloc(FILE_MAX + 1);
    size_t got = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || got > FILE_MAX;
    fclose(f);
    if (bad) {
        snprintf(err, cap, "%s: unreadable or larger than 16 MiB", path);
        free(buf);
        return -1;
    }
    buf[got] = '\0';
    *data = buf;
    *n = got;
    return 0;
}

int ksasl_store_load(ksasl_store_t *st, const char *path, char *err, size_t cap)
{
    char *data;
    size_t n;
    if (read_file(path, &data, &n, err, cap) != 0) return -1;
    int rc = 0, lineno = 0;
    for (size_t off = 0; off < n && rc == 0;) {
        const char *nl = memchr(data + off, '\n', n - off);
        size_t len = (size_t)((nl ? nl : data + n) - (data + off));
        lineno++;
        ksasl_user_t u;
        const char *why = NULL;
        int r = ksasl_line_parse(data + off, len, &u, &why);
        if (r < 0) {
            snprintf(err, cap, "%s:%d: %s", path, lineno, why);
            rc = -1;
        } else if (r == 1 && ksasl_store_put(st, &u) != 0) {
            snprintf(err, cap, "out of memory");
            rc = -1;
        }
        OPENSSL_cleanse(&u, sizeof u);
        off += len + 1;
    }
    OPENSSL_cleanse(data, n);
    free(data);
    return rc;
}

int ksasl_file_put(const char *path, const ksasl_user_t *u, char *err, size_t cap)
{
    char *data = NULL;
    size_t n = 0;
    int r = read_file(path, &data, &n, err, cap);
    if (r < 0) return -1;
    size_t out_cap = n + KSASL_LINE_MAX + 2, used = 0;
    char *out = malloc(out_cap), line[KSASL_LINE_MAX];
    int ll = ksasl_line_format(u, line, sizeof line), replaced = 0, rc = -1;
    if (out == NULL || ll < 0) {
        snprintf(err, cap, "out of memory");
        goto done;
    }
    for (size_t off = 0; off < n;) {
        const char *nl = memchr(data + off, '\n', n - off);
        size_t len = (size_t)((nl ? nl : data + n) - (data + off));
        ksasl_user_t old;
        const char *why;
        int pr = ksasl_line_parse(data + off, len, &old, &why);
        if (pr == 1 && strcmp(old.name, u->name) == 0) {
            if (!replaced) {
                memcpy(out + used, line, (size_t)ll);
                used += (size_t)ll;
                out[used++] = '\n';
            }
            replaced = 1;
        } else {
            memcpy(out + used, data + off, len);
            used += len;
            out[used++] = '\n';
        }
        off += len + 1;
    }
    if (!replaced) {
        memcpy(out + used, line, (size_t)ll);
        used += (size_t)ll;
        out[used++] = '\n';
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, cap, "%s: path too long", path);
        goto done;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, cap, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    size_t w = 0;
    while (w < used) {
        ssize_t k = write(fd, out + w, used - w);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        w += (size_t)k;
    }
    if (w != used || fsync(fd) != 0) {
        snprintf(err, cap, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
done:
    if (data) OPENSSL_cleanse(data, n);
    free(data);
    free(out);
    return rc;
}

/* ---- mechanisms ------------------------------------------------------------- */

int ksasl_mech_parse(const uint8_t *name, size_t len)
{
    static const char *const names[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    for (int i = 0; i < 3; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
    return -1;
}

const char *ksasl_mech_name(ksasl_mech_t m)
{
    return m == KSASL_PLAIN ? "PLAIN" : m == KSASL_SCRAM_SHA_256 ? "SCRAM-SHA-256" : "SCRAM-SHA-512";
}

void ksasl_session_init(ksasl_session_t *s, const ksasl_store_t *store, ksasl_mech_t mech)
{
    memset(s, 0, sizeof *s);
    s->store = store;
    s->mech = mech;
}

void ksasl_session_free(ksasl_session_t *s)
{
    free(s->first_bare);
    free(s->server_first);
    OPENSSL_cleanse(s, sizeof *s);
}

static int fail(ksasl_session_t *s, const char *why)
{
    s->reason = why;
    s->step = 2;
    return KSASL_FAIL;
}

static int dup_out(const char *str, size_t n, uint8_t **out, size_t *out_len)
{
    *out = malloc(n ? n : 1);
    if (*out == NULL) return -1;
    memcpy(*out, str, n);
    *out_len = n;
    return 0;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static int plain(ksasl_session_t *s, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    const uint8_t *end = in + n, *z1 = memchr(in, 0, n);
    const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
    if (z2 == NULL || memchr(z2 + 1, 0, (size_t)(end - z2 - 1)) != NULL)
        return fail(s, "malformed PLAIN message");
    const uint8_t *user = z1 + 1, *pw = z2 + 1;
    size_t ulen = (size_t)(z2 - user), azlen = (size_t)(z1 - in), pwlen = (size_t)(end - pw);
    if (!ksasl_valid_user((const char *)user, ulen)) return fail(s, "malformed user name");
    memcpy(s->user, user, ulen);
    s->user[ulen] = '\0';
    if (azlen && (azlen != ulen || memcmp(in, user, ulen) != 0))
        return fail(s, "authorization id differs from the user");
    const ksasl_user_t *u = ksasl_store_find(s->store, (const char *)user, ulen);
    ksasl_cred_t try, fake;
    const ksasl_cred_t *c = u ? &u->cred[0] : &fake;
    if (u == NULL) { /* same work either way */
        memset(&fake, 0, sizeof fake);
        fake.iter = KSASL_ITER_DEFAULT;
        fake.salt_len = KSASL_SALT_LEN;
    }
    int ok = ksasl_cred_derive(KSASL_SCRAM_SHA_256, (const char *)pw, pwlen, c->salt, c->salt_len,
                               c->iter, &try) == 0 &&
             CRYPTO_memcmp(try.stored, c->stored, 32) == 0;
    OPENSSL_cleanse(&try, sizeof try);
    if (u == NULL) return fail(s, "unknown user");
    if (!ok) return fail(s, "wrong password");
    s->step = 2;
    return dup_out("", 0, out, out_len) ? fail(s, "out of memory") : KSASL_OK;
}

/* Reads "x=value" at *p (up to end); the value ends at ',' or end. */
static int attr(const char **p, const char *end, char name, const char **v, size_t *vlen)
{
    if (end - *p < 2 || (*p)[0] != name || (*p)[1] != '=') return -1;
    *v = *p + 2;
    const char *comma = memchr(*v, ',', (size_t)(end - *v));
    *vlen = (size_t)((comma ? comma : end) - *v);
    *p = comma ? comma + 1 : end;
    return 0;
}

/* saslname (RFC 5802 §5.1): "=2C" is ',' and "=3D" is '='. */
static int unescape_user(const char *v, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '=') {
            if (n - i < 3) return -1;
            if (v[i + 1] == '2' && v[i + 2] == 'C')
                c = ',';
            else if (v[i + 1] == '3' && v[i + 2] == 'D')
                c = '=';
            else
                return -1;
            i += 2;
        }
        if (o >= KSASL_USER_MAX) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return ksasl_valid_user(out, o) ? 0 : -1;
}

/* client-first-message: gs2-header client-first-message-bare. */
static int scram_first(ksasl_session_t *s, const char *in, size_t n, uint8_t **out, size_t *out_len)
{
    int h = s->mech == KSASL_SCRAM_SHA_512;
    const char *p = in, *end = in + n;
    if (n < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
        return fail(s, "malformed SCRAM client-first (channel binding is not supported)");
    p += 2;
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (comma == NULL) return fail(s, "malformed SCRAM client-first");
    const char *authzid = NULL;
    size_t azlen = 0;
    if (comma != p && attr(&p, end, 'a', &authzid, &azlen) != 0)
        return fail(s, "malformed SCRAM authzid");
    p = comma + 1;
    size_t gs2_len = (size_t)(p - in);
    if (gs2_len >= sizeof s->gs2) return fail(s, "SCRAM authzid too long");
    memcpy(s->gs2, in, gs2_len);
    s->gs2[gs2_len] = '\0';
    const char *bare = p, *user, *cnonce;
    size_t ulen, cnlen;
    if (attr(&p, end, 'n', &user, &ulen) != 0 || attr(&p, end, 'r', &cnonce, &cnlen) != 0)
        return fail(s, "malformed SCRAM client-first");
    if (cnlen == 0 || cnlen > 96) return fail(s, "bad SCRAM client nonce");
    for (size_t i = 0; i < cnlen; i++)
        if (cnonce[i] < 0x21 || cnonce[i] > 0x7e) return fail(s, "bad SCRAM client nonce");
    /* Extensions (Kafka: tokenauth=true, KIP-255) are not served. */
    if (p != end) return fail(s, "SCRAM extensions are not supported");
    if (unescape_user(user, ulen, s->user) != 0) return fail(s, "malformed user name");
    if (authzid && (azlen != ulen || memcmp(authzid, user, ulen) != 0))
        return fail(s, "authorization id differs from the user");
    const ksasl_user_t *u = ksasl_store_find(s->store, s->user, strlen(s->user));
    if (u) {
        s->cred = &u->cred[h];
    } else {
        /* A salt that stays the same for this name within the process. */
        s->unknown = 1;
        s->fake.iter = KSASL_ITER_DEFAULT;
        uint8_t mac[64];
        if (hmac(1, s->store->fake_key, sizeof s->store->fake_key, s->user, strlen(s->user), mac))
            return fail(s, "HMAC failed");
        memcpy(s->fake.salt, mac, KSASL_SALT_LEN);
        s->fake.salt_len = KSASL_SALT_LEN;
        s->cred = &s->fake;
    }
    /* server-first-message: r=cnonce+snonce,s=salt,i=iter */
    char snonce[64];
    if (s->test_server_nonce) {
        snprintf(snonce, sizeof snonce, "%s", s->test_server_nonce);
    } else {
        uint8_t rnd[24];
        if (RAND_bytes(rnd, sizeof rnd) != 1) return fail(s, "RAND_bytes failed");
        b64_enc(rnd, sizeof rnd, snonce); /* 32 chars, no ',' */
    }
    snprintf(s->nonce, sizeof s->nonce, "%.*s%s", (int)cnlen, cnonce, snonce);
    char salt[100];
    b64_enc(s->cred->salt, s->cred->salt_len, salt);
    size_t cap = strlen(s->nonce) + strlen(salt) + 32;
    s->server_first = malloc(cap);
    s->first_bare = malloc((size_t)(end - bare) + 1);
    if (s->server_first == NULL || s->first_bare == NULL) return fail(s, "out of memory");
    memcpy(s->first_bare, bare, (size_t)(end - bare));
    s->first_bare[end - bare] = '\0';
    int len = snprintf(s->server_first, cap, "r=%s,s=%s,i=%u", s->nonce, salt, s->cred->iter);
    if (dup_out(s->server_first, (size_t)len, out, out_len)) return fail(s, "out of memory");
    s->step = 1;
    return KSASL_CONTINUE;
}

/* client-final-message: c=..,r=..,p=.. (RFC 5802 §3, §7). */
static int scram_final(ksasl_session_t *s, const char *in, size_t n, uint8_t **out, size_t *out_len)
{
    int h = s->mech == KSASL_SCRAM_SHA_512;
    size_t hl = hlen_of(h);
    const char *p = in, *end = in + n, *cb, *nonce, *proof;
    size_t cblen, nlen, plen;
    if (attr(&p, end, 'c', &cb, &cblen) != 0 || attr(&p, end, 'r', &nonce, &nlen) != 0)
        return fail(s, "malformed SCRAM client-final");
    /* Extensions before the proof are skipped; the proof is last. */
    const char *pr = NULL;
    for (const char *q = p; q + 2 <= end; q++)
        if ((q == in || q[-1] == ',') && q[0] == 'p' && q[1] == '=') pr = q;
    if (pr == NULL || pr == in) return fail(s, "malformed SCRAM client-final");
    size_t without_proof = (size_t)(pr - 1 - in);
    p = pr;
    if (attr(&p, end, 'p', &proof, &plen) != 0 || p != end) return fail(s, "malformed SCRAM proof");
    uint8_t gs2[sizeof s->gs2], cproof[100];
    int g = b64_dec(cb, cblen, gs2, sizeof gs2);
    if (g < 0 || (size_t)g != strlen(s->gs2) || memcmp(gs2, s->gs2, (size_t)g) != 0)
        return fail(s, "SCRAM channel binding does not match");
    if (nlen != strlen(s->nonce) || CRYPTO_memcmp(nonce, s->nonce, nlen) != 0)
        return fail(s, "SCRAM nonce does not match");
    if (b64_dec(proof, plen, cproof, sizeof cproof) != (int)hl) return fail(s, "malformed SCRAM proof");
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    size_t fl = strlen(s->first_bare), sl = strlen(s->server_first);
    size_t alen = fl + 1 + sl + 1 + without_proof;
    char *auth = malloc(alen);
    if (auth == NULL) return fail(s, "out of memory");
    memcpy(auth, s->first_bare, fl);
    auth[fl] = ',';
    memcpy(auth + fl + 1, s->server_first, sl);
    auth[fl + 1 + sl] = ',';
    memcpy(auth + fl + 2 + sl, in, without_proof);
    uint8_t csig[64], ckey[64], stored[64], ssig[64];
    int bad = hmac(h, s->cred->stored, hl, auth, alen, csig) ||
              hmac(h, s->cred->server, hl, auth, alen, ssig);
    free(auth);
    if (bad) return fail(s, "HMAC failed");
    for (size_t i = 0; i < hl; i++) ckey[i] = cproof[i] ^ csig[i];
    if (digest(h, ckey, hl, stored)) return fail(s, "digest failed");
    int match = CRYPTO_memcmp(stored, s->cred->stored, hl) == 0;
    OPENSSL_cleanse(ckey, sizeof ckey);
    if (s->unknown) return fail(s, "unknown user");
    if (!match) return fail(s, "wrong password");
    char v[2 + 100];
    v[0] = 'v';
    v[1] = '=';
    size_t vl = 2 + b64_enc(ssig, hl, v + 2);
    s->step = 2;
    return dup_out(v, vl, out, out_len) ? fail(s, "out of memory") : KSASL_OK;
}

int ksasl_step(ksasl_session_t *s, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (s->step == 2) return fail(s, "authentication already over");
    if (n > KSASL_TOKEN_MAX) return fail(s, "token too long");
    if (s->mech == KSASL_PLAIN) return plain(s, in, n, out, out_len);
    if (memchr(in, 0, n) != NULL) return fail(s, "NUL in a SCRAM message");
    if (s->step == 0) return scram_first(s, (const char *)in, n, out, out_len);
    return scram_final(s, (const char *)in, n, out, out_len);
}
