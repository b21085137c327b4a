/* uuid.c - see uuid.h. */
#include "uuid.h"

#include <openssl/rand.h>
#include <string.h>
#include <strings.h>

#include "hex.h"

int uuid_v4(uint8_t u[16])
{
    if (RAND_bytes(u, 16) != 1) return -1;
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    return 0;
}

/* 32 hex digits, with hyphens exactly at the canonical places if `hyphens`. */
static int parse_hex(const char *s, size_t len, int hyphens, uint8_t u[16])
{
    if (len != (hyphens ? 36u : 32u)) return -1;
    int n = 0;
    for (size_t i = 0; i < len;) {
        if (hyphens && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i++] != '-') return -1;
            continue;
        }
        if (hex_decode(s + i, u + n, 1) != 0) return -1;
        n++;
        i += 2;
    }
    return 0;
}

int uuid_parse(const char *s, size_t len, uint8_t u[16])
{
    if (len == 32) return parse_hex(s, len, 0, u);
    if (len == 36) return parse_hex(s, len, 1, u);
    if (len == 38 && s[0] == '{' && s[37] == '}') return parse_hex(s + 1, 36, 1, u);
    if (len == 45 && strncasecmp(s, "urn:uuid:", 9) == 0) return parse_hex(s + 9, 36, 1, u);
    return -1;
}

void uuid_format(const uint8_t u[16], char out[UUID_STR_LEN + 1])
{
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        hex_encode(u + i, 1, p);
        p += 2;
    }
    *p = '\0';
}
