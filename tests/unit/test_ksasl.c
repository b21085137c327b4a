/* The gate's SASL mechanisms (ksasl.h): RFC 7677's SCRAM-SHA-256 exchange
 * byte for byte, a SCRAM-SHA-512 round trip computed here as a client
 * would, PLAIN, unknown users, tampered messages, and the auth file. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ksasl.h"
#include "unit.h"

static void add(ksasl_store_t *st, const char *user, const char *pw)
{
    ksasl_user_t u;
    CHECK(ksasl_user_derive(&u, user, pw, strlen(pw), 4096) == 0);
    CHECK(ksasl_store_put(st, &u) == 0);
}

static int step(ksasl_session_t *s, const char *in, char *out, size_t cap)
{
    uint8_t *o;
    size_t n;
    int rc = ksasl_step(s, (const uint8_t *)in, strlen(in), &o, &n);
    out[0] = '\0';
    if (o) {
        snprintf(out, cap, "%.*s", (int)n, (const char *)o);
        free(o);
    }
    return rc;
}

/* RFC 7677 §3: user "user", password "pencil". */
static void rfc7677_scram_sha_256(void)
{
    ksasl_store_t st;
    CHECK(ksasl_store_init(&st) == 0);
    ksasl_user_t u = {.name = "user"};
    uint8_t salt[16];
    CHECK(EVP_DecodeBlock(salt, (const unsigned char *)"W22ZaJ0SNY7soEsUEjb6gQ==", 24) == 18);
    CHECK(ksasl_cred_derive(KSASL_SCRAM_SHA_256, "pencil", 6, salt, 16, 4096, &u.cred[0]) == 0);
    CHECK(ksasl_cred_derive(KSASL_SCRAM_SHA_512, "pencil", 6, salt, 16, 4096, &u.cred[1]) == 0);
    CHECK(ksasl_store_put(&st, &u) == 0);
    ksasl_session_t s;
    ksasl_session_init(&s, &st, KSASL_SCRAM_SHA_256);
    s.test_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    char out[256];
    CHECK(step(&s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", out, sizeof out) == KSASL_CONTINUE);
    CHECK(strcmp(out, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") == 0);
    CHECK(step(&s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                   "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", out, sizeof out) == KSASL_OK);
    CHECK(strcmp(out, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") == 0);
    CHECK(strcmp(s.user, "user") == 0);
    ksasl_session_free(&s);

    /* The same exchange with one proof byte changed fails. */
    ksasl_session_init(&s, &st, KSASL_SCRAM_SHA_256);
    s.test_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    CHECK(step(&s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", out, sizeof out) == KSASL_CONTINUE);
    CHECK(step(&s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                   "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVM=", out, sizeof out) == KSASL_FAIL);
    CHECK(strcmp(s.reason, "wrong password") == 0);
    ksasl_session_free(&s);

    /* A nonce that is not the server's fails. */
    ksasl_session_init(&s, &st, KSASL_SCRAM_SHA_256);
    s.test_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    CHECK(step(&s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", out, sizeof out) == KSASL_CONTINUE);
    CHECK(step(&s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
                   "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", out, sizeof out) == KSASL_FAIL);
    ksasl_session_free(&s);
    ksasl_store_free(&st);
}

static void b64(const uint8_t *in, size_t n, char *out) { EVP_EncodeBlock((unsigned char *)out, in, (int)n); }

/* A SCRAM client written from RFC 5802 §3, for SHA-512. */
static int scram_client(ksasl_store_t *st, ksasl_mech_t mech, const char *user, const char *pw)
{
    const EVP_MD *md = mech == KSASL_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
    int hl = EVP_MD_size(md);
    ksasl_session_t s;
    ksasl_session_init(&s, st, mech);
    char first[128], sf[256], out[256];
    snprintf(first, sizeof first, "n,,n=%s,r=fyko+d2lbbFgONRv9qkxdawL", user);
    int rc = step(&s, first, sf, sizeof sf);
    if (rc != KSASL_CONTINUE) goto done;
    char nonce[128], salt64[128];
    unsigned iter;
    CHECK(sscanf(sf, "r=%127[^,],s=%127[^,],i=%u", nonce, salt64, &iter) == 3);
    CHECK(strncmp(nonce, "fyko+d2lbbFgONRv9qkxdawL", 24) == 0 && strlen(nonce) > 24);
    uint8_t salt[96], sp[64], ck[64], sk[64], stored[64], csig[64], ssig[64], proof[64];
    int sl = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    sl -= (salt64[strlen(salt64) - 1] == '=') + (salt64[strlen(salt64) - 2] == '=');
    unsigned len;
    PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sl, (int)iter, md, hl, sp);
    HMAC(md, sp, hl, (const unsigned char *)"Client Key", 10, ck, &len);
    HMAC(md, sp, hl, (const unsigned char *)"Server Key", 10, sk, &len);
    EVP_Digest(ck, (size_t)hl, stored, NULL, md, NULL);
    char final_wo[256], auth[768], final[512], p64[128], v64[128];
    snprintf(final_wo, sizeof final_wo, "c=biws,r=%s", nonce);
    snprintf(auth, sizeof auth, "%s,%s,%s", first + 3, sf, final_wo);
    HMAC(md, stored, hl, (const unsigned char *)auth, strlen(auth), csig, &len);
    HMAC(md, sk, hl, (const unsigned char *)auth, strlen(auth), ssig, &len);
    for (int i = 0; i < hl; i++) proof[i] = ck[i] ^ csig[i];
    b64(proof, (size_t)hl, p64);
    b64(ssig, (size_t)hl, v64);
    snprintf(final, sizeof final, "%s,p=%s", final_wo, p64);
    rc = step(&s, final, out, sizeof out);
    if (rc == KSASL_OK) CHECK(out[0] == 'v' && out[1] == '=' && strcmp(out + 2, v64) == 0);
done:
    ksasl_session_free(&s);
    return rc;
}

static void scram_sha_512_round_trip(void)
{
    ksasl_store_t st;
    CHECK(ksasl_store_init(&st) == 0);
    add(&st, "alice", "s3cret");
    CHECK(scram_client(&st, KSASL_SCRAM_SHA_512, "alice", "s3cret") == KSASL_OK);
    CHECK(scram_client(&st, KSASL_SCRAM_SHA_256, "alice", "s3cret") == KSASL_OK);
    CHECK(scram_client(&st, KSASL_SCRAM_SHA_512, "alice", "wrong") == KSASL_FAIL);
    CHECK(scram_client(&st, KSASL_SCRAM_SHA_512, "bob", "s3cret") == KSASL_FAIL);
    ksasl_store_free(&st);
}

static void scram_unknown_user_gets_a_stable_salt(void)
{
    ksasl_store_t st;
    CHECK(ksasl_store_init(&st) == 0);
    ksasl_session_t a, b;
    char oa[256], ob[256];
    ksasl_session_init(&a, &st, KSASL_SCRAM_SHA_256);
    ksasl_session_init(&b, &st, KSASL_SCRAM_SHA_256);
    CHECK(step(&a, "n,,n=mallory,r=abc", oa, sizeof oa) == KSASL_CONTINUE);
    CHECK(step(&b, "n,,n=mallory,r=abc", ob, sizeof ob) == KSASL_CONTINUE);
    CHECK(strcmp(strchr(oa, ','), strchr(ob, ',')) == 0); /* salt and iterations */
    CHECK(strstr(oa, ",i=4096") != NULL);
    ksasl_session_free(&a);
    ksasl_session_free(&b);
    ksasl_store_free(&st);
}

static int plain(ksasl_store_t *st, const char *az, const char *user, const char *pw, const char **why)
{
    uint8_t msg[256], *o;
    size_t n = 0, ol;
    memcpy(msg + n, az, strlen(az)), n += strlen(az), msg[n++] = 0;
    memcpy(msg + n, user, strlen(user)), n += strlen(user), msg[n++] = 0;
    memcpy(msg + n, pw, strlen(pw)), n += strlen(pw);
    ksasl_session_t s;
    ksasl_session_init(&s, st, KSASL_PLAIN);
    int rc = ksasl_step(&s, msg, n, &o, &ol);
    free(o);
    *why = s.reason;
    ksasl_session_free(&s);
    return rc;
}

static void plain_checks_the_salted_hash(void)
{
    ksasl_store_t st;
    const char *why;
    CHECK(ksasl_store_init(&st) == 0);
    add(&st, "alice", "s3cret");
    CHECK(plain(&st, "", "alice", "s3cret", &why) == KSASL_OK);
    CHECK(plain(&st, "alice", "alice", "s3cret", &why) == KSASL_OK);
    CHECK(plain(&st, "", "alice", "s3creT", &why) == KSASL_FAIL && strcmp(why, "wrong password") == 0);
    CHECK(plain(&st, "", "bob", "s3cret", &why) == KSASL_FAIL && strcmp(why, "unknown user") == 0);
    CHECK(plain(&st, "root", "alice", "s3cret", &why) == KSASL_FAIL);
    uint8_t bad[] = "alice", *o;
    size_t ol;
    ksasl_session_t s;
    ksasl_session_init(&s, &st, KSASL_PLAIN);
    CHECK(ksasl_step(&s, bad, 5, &o, &ol) == KSASL_FAIL && o == NULL);
    ksasl_session_free(&s);
    ksasl_store_free(&st);
}

static void scram_rejects_malformed_messages(void)
{
    ksasl_store_t st;
    CHECK(ksasl_store_init(&st) == 0);
    add(&st, "alice", "pw");
    static const char *const bad[] = {
        "", "n", "p=tls-unique,,n=alice,r=x", "n,,r=x,n=alice", "n,,n=alice", "n,,n=alice,r=",
        "n,,n=alice,r=x,tokenauth=true", "n,,n=al=2Xice,r=x", "n,a=bob,n=alice,r=x", "n,,n=,r=x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ksasl_session_t s;
        char out[256];
        ksasl_session_init(&s, &st, KSASL_SCRAM_SHA_256);
        if (step(&s, bad[i], out, sizeof out) != KSASL_FAIL) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            CHECK(0);
        }
        ksasl_session_free(&s);
    }
    /* Finals: wrong channel binding, missing proof, proof not last. */
    static const char *const finals[][2] = {{"c=eSws,r=", ",p=AAAA"}, {"c=biws,r=", ""},
                                            {"p=AAAA,c=biws,r=", ""}, {"c=biws,r=", ",p=!!!!"}};
    for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
        ksasl_session_t s;
        char out[256], msg[300];
        ksasl_session_init(&s, &st, KSASL_SCRAM_SHA_256);
        CHECK(step(&s, "n,,n=alice,r=abc", out, sizeof out) == KSASL_CONTINUE);
        char nonce[128];
        CHECK(sscanf(out, "r=%127[^,]", nonce) == 1);
        snprintf(msg, sizeof msg, "%s%s%s", finals[i][0], nonce, finals[i][1]);
        CHECK(step(&s, msg, out, sizeof out) == KSASL_FAIL);
        ksasl_session_free(&s);
    }
    ksasl_store_free(&st);
}

static void auth_file_round_trip_keeps_no_password(void)
{
    char path[] = "/tmp/bore-ksasl-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    ksasl_user_t a, b, a2;
    char err[256];
    CHECK(ksasl_user_derive(&a, "alice", "pw-alice", 8, 4096) == 0);
    CHECK(ksasl_user_derive(&b, "bob", "pw-bob", 6, 8192) == 0);
    CHECK(ksasl_user_derive(&a2, "alice", "pw-alice-2", 10, 4096) == 0);
    CHECK(ksasl_file_put(path, &a, err, sizeof err) == 0);
    CHECK(ksasl_file_put(path, &b, err, sizeof err) == 0);
    CHECK(ksasl_file_put(path, &a2, err, sizeof err) == 0); /* replaces alice */
    FILE *f = fopen(path, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    CHECK(strstr(text, "pw-") == NULL);
    CHECK(strncmp(text, "alice SCRAM-SHA-256:4096:", 25) == 0);
    CHECK(strstr(text, "\nbob SCRAM-SHA-256:8192:") != NULL);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    ksasl_store_t st;
    CHECK(ksasl_store_init(&st) == 0);
    CHECK(ksasl_store_load(&st, path, err, sizeof err) == 0);
    CHECK(st.n == 2);
    const char *why;
    CHECK(plain(&st, "", "alice", "pw-alice-2", &why) == KSASL_OK);
    CHECK(plain(&st, "", "alice", "pw-alice", &why) == KSASL_FAIL);
    CHECK(scram_client(&st, KSASL_SCRAM_SHA_512, "bob", "pw-bob") == KSASL_OK);
    ksasl_store_free(&st);

    ksasl_user_t u;
    CHECK(ksasl_line_parse("# comment", 9, &u, &why) == 0);
    CHECK(ksasl_line_parse("   ", 3, &u, &why) == 0);
    CHECK(ksasl_line_parse("alice", 5, &u, &why) == -1);
    const char *low = "x SCRAM-SHA-256:100:AAAA:AAAA:AAAA SCRAM-SHA-512:4096:AAAA:AAAA:AAAA";
    CHECK(ksasl_line_parse(low, strlen(low), &u, &why) == -1);
    unlink(path);
}

int main(void)
{
    RUN(rfc7677_scram_sha_256);
    RUN(scram_sha_512_round_trip);
    RUN(scram_unknown_user_gets_a_stable_salt);
    RUN(plain_checks_the_salted_hash);
    RUN(scram_rejects_malformed_messages);
    RUN(auth_file_round_trip_keeps_no_password);
    UNIT_DONE();
}
