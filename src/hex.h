/* hex.h - hex digits both ways, shared by UUIDs and authentication tags. */
#ifndef BORE_HEX_H
#define BORE_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit in either case, or -1. */
static inline int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes 2*n hex digits into n bytes. Returns 0, or -1 on a non-hex digit. */
static inline int hex_decode(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Writes 2*n lowercase hex digits (no NUL). */
static inline void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
}

#endif
