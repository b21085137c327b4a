/* auth.h - challenge/response authentication (bore protocol §5).
 *
 * key = SHA-256(secret); tag = HMAC-SHA256(key, 16 raw UUID bytes) sent as
 * 64 lowercase hex digits. The server compares in constant time. */
#ifndef BORE_AUTH_H
#define BORE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_LEN 32
#define AUTH_TAG_HEX_LEN 64

void auth_key(const char *secret, size_t len, uint8_t key[AUTH_KEY_LEN]);

/* Writes the 64-hex tag and a NUL. Returns 0, or -1 if HMAC fails. */
int auth_tag_hex(const uint8_t key[AUTH_KEY_LEN], const uint8_t challenge[16],
                 char out[AUTH_TAG_HEX_LEN + 1]);

/* 1 if `hex` (either case) is the right tag for the challenge, else 0. */
int auth_verify(const uint8_t key[AUTH_KEY_LEN], const uint8_t challenge[16], const char *hex,
                size_t len);

#endif
