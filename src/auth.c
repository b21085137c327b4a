/* auth.c - see auth.h. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "hex.h"

void auth_key(const char *secret, size_t len, uint8_t key[AUTH_KEY_LEN])
{
    SHA256((const unsigned char *)secret, len, key);
}

static int tag(const uint8_t key[AUTH_KEY_LEN], const uint8_t challenge[16], uint8_t out[32])
{
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), key, AUTH_KEY_LEN, challenge, 16, out, &n) == NULL || n != 32)
        return -1;
    return 0;
}

int auth_tag_hex(const uint8_t key[AUTH_KEY_LEN], const uint8_t challenge[16],
                 char out[AUTH_TAG_HEX_LEN + 1])
{
    uint8_t t[32];
    if (tag(key, challenge, t) != 0) return -1;
    hex_encode(t, 32, out);
    out[AUTH_TAG_HEX_LEN] = '\0';
    OPENSSL_cleanse(t, sizeof t);
    return 0;
}

int auth_verify(const uint8_t key[AUTH_KEY_LEN], const uint8_t challenge[16], const char *hex,
                size_t len)
{
    uint8_t want[32], got[32];
    if (len != AUTH_TAG_HEX_LEN || hex_decode(hex, got, 32) != 0) return 0;
    if (tag(key, challenge, want) != 0) return 0;
    int ok = CRYPTO_memcmp(want, got, 32) == 0;
    OPENSSL_cleanse(want, sizeof want);
    return ok;
}
