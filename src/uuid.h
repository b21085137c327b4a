/* uuid.h - RFC 4122 UUIDs as 16 raw bytes: random v4 generation (OpenSSL's
 * CSPRNG), lenient parsing and canonical formatting (bore protocol §1). */
#ifndef BORE_UUID_H
#define BORE_UUID_H

#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 36

/* Fills u with a random version-4 UUID. Returns 0, or -1 if the CSPRNG fails. */
int uuid_v4(uint8_t u[16]);

/* Parses hyphenated, 32-hex "simple", braced "{...}" and "urn:uuid:" forms,
 * in any case. Returns 0 on success, -1 otherwise. */
int uuid_parse(const char *s, size_t len, uint8_t u[16]);

/* Writes the lowercase hyphenated form and a terminating NUL (37 bytes). */
void uuid_format(const uint8_t u[16], char out[UUID_STR_LEN + 1]);

#endif
