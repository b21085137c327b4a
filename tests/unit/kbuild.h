/* kbuild.h - an independent Kafka response encoder for the codec tests.
 *
 * Responses are built field by field from the layouts in the protocol
 * reference, once with internal broker addresses (the input) and once with
 * the public ones (the expected output), so a test compares the rewriter's
 * output with bytes it did not produce. */
#ifndef BORE_KBUILD_H
#define BORE_KBUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t len, cap;
} kb_t;

static void kb_raw(kb_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void kb_i8(kb_t *b, int v)
{
    uint8_t x = (uint8_t)v;
    kb_raw(b, &x, 1);
}
static void kb_i16(kb_t *b, int v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    kb_raw(b, x, 2);
}
static void kb_i32(kb_t *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t x[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    kb_raw(b, x, 4);
}
static void kb_i64(kb_t *b, int64_t v)
{
    kb_i32(b, (int32_t)(v >> 32));
    kb_i32(b, (int32_t)v);
}
static void kb_uvarint(kb_t *b, uint32_t v)
{
    while (v >= 0x80) {
        kb_i8(b, (int)(v | 0x80));
        v >>= 7;
    }
    kb_i8(b, (int)v);
}
static void kb_uuid(kb_t *b, int seed)
{
    for (int i = 0; i < 16; i++) kb_i8(b, seed * 16 + i);
}
/* STRING or COMPACT_STRING; s == NULL writes null (nullable forms). */
static void kb_str(kb_t *b, int compact, const char *s)
{
    if (s == NULL) {
        if (compact)
            kb_uvarint(b, 0);
        else
            kb_i16(b, -1);
        return;
    }
    size_t n = strlen(s);
    if (compact)
        kb_uvarint(b, (uint32_t)n + 1);
    else
        kb_i16(b, (int)n);
    kb_raw(b, s, n);
}
static void kb_array(kb_t *b, int compact, int32_t n)
{
    if (compact)
        kb_uvarint(b, (uint32_t)(n + 1));
    else
        kb_i32(b, n);
}
static void kb_bytes(kb_t *b, int compact, const void *p, int32_t n)
{
    if (compact)
        kb_uvarint(b, (uint32_t)(n + 1));
    else
        kb_i32(b, n);
    if (n > 0) kb_raw(b, p, (size_t)n);
}
/* An empty TAGGED_FIELDS section, or one with an unknown tag that must
 * survive byte for byte. */
static void kb_tags(kb_t *b, int unknown)
{
    if (!unknown) {
        kb_uvarint(b, 0);
        return;
    }
    kb_uvarint(b, 1);
    kb_uvarint(b, 77);
    kb_uvarint(b, 3);
    kb_raw(b, "\x01\x02\x03", 3);
}
/* Wraps body as a frame: size prefix, then what was built. */
static kb_t kb_frame(const kb_t *body)
{
    kb_t f = {0};
    kb_i32(&f, (int32_t)body->len);
    kb_raw(&f, body->p, body->len);
    return f;
}
static void kb_free(kb_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

#endif
