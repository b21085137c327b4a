/* kwire.h - bounds-checked reading of Kafka wire types (protocol README §3).
 *
 * A `kw_cur` walks [p, end). Every read checks the bytes that remain first;
 * the first failure sets `err` and every later read is a no-op returning 0,
 * so a parser can read a run of fields and test `err` once. Nothing here
 * allocates or reads outside [p, end). */
#ifndef BORE_KWIRE_H
#define BORE_KWIRE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *start; /* frame start, for offsets */
    const uint8_t *p;
    const uint8_t *end;
    int err;
} kw_cur;

static inline kw_cur kw_init(const uint8_t *p, size_t len)
{
    kw_cur c = {p, p, p + len, 0};
    return c;
}

static inline size_t kw_left(const kw_cur *c) { return c->err ? 0 : (size_t)(c->end - c->p); }
static inline size_t kw_off(const kw_cur *c) { return (size_t)(c->p - c->start); }

static inline int kw_need(kw_cur *c, size_t n)
{
    if (c->err || (size_t)(c->end - c->p) < n) {
        c->err = 1;
        return 0;
    }
    return 1;
}

static inline void kw_skip(kw_cur *c, size_t n)
{
    if (kw_need(c, n)) c->p += n;
}

static inline uint16_t kw_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t kw_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void kw_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void kw_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline int8_t kw_i8(kw_cur *c)
{
    if (!kw_need(c, 1)) return 0;
    return (int8_t)*c->p++;
}

static inline int16_t kw_i16(kw_cur *c)
{
    if (!kw_need(c, 2)) return 0;
    int16_t v = (int16_t)kw_be16(c->p);
    c->p += 2;
    return v;
}

static inline int32_t kw_i32(kw_cur *c)
{
    if (!kw_need(c, 4)) return 0;
    int32_t v = (int32_t)kw_be32(c->p);
    c->p += 4;
    return v;
}

/* UNSIGNED_VARINT of at most 32 bits: 1-5 bytes, the 5th carrying 4 bits. */
static inline uint32_t kw_uvarint(kw_cur *c)
{
    uint32_t v = 0;
    for (int i = 0; i < 5; i++) {
        if (!kw_need(c, 1)) return 0;
        uint8_t b = *c->p++;
        if (i == 4 && b > 0x0f) break; /* over-long or over 32 bits */
        v |= (uint32_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) return v;
    }
    c->err = 1;
    return 0;
}

/* Size of v as an UNSIGNED_VARINT, and its encoding (returns bytes written). */
static inline size_t kw_uvarint_len(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline size_t kw_put_uvarint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* STRING / NULLABLE_STRING, or their COMPACT forms. On success *s points
 * into the frame (NULL for null) and *len is its length. */
static inline void kw_string(kw_cur *c, int compact, int nullable, const uint8_t **s, size_t *len)
{
    *s = NULL;
    *len = 0;
    int64_t n;
    if (compact) {
        n = (int64_t)kw_uvarint(c) - 1;
    } else {
        n = kw_i16(c);
    }
    if (c->err) return;
    if (n < 0) {
        if (n != -1 || !nullable) c->err = 1;
        return;
    }
    if (!kw_need(c, (size_t)n)) return;
    *s = c->p;
    *len = (size_t)n;
    c->p += n;
}

static inline void kw_skip_string(kw_cur *c, int compact, int nullable)
{
    const uint8_t *s;
    size_t n;
    kw_string(c, compact, nullable, &s, &n);
}

/* BYTES / RECORDS (nullable) or their COMPACT forms: skipped by length,
 * never touched. */
static inline void kw_skip_bytes(kw_cur *c, int compact)
{
    int64_t n = compact ? (int64_t)kw_uvarint(c) - 1 : kw_i32(c);
    if (c->err || n == -1) return;
    if (n < 0) {
        c->err = 1;
        return;
    }
    kw_skip(c, (size_t)n);
}

/* ARRAY or COMPACT_ARRAY count; -1 for null (if nullable). A count whose
 * elements could not fit in the bytes left (each at least `min_elem`
 * bytes) is an error: a lying count never drives a loop. */
static inline int32_t kw_array(kw_cur *c, int compact, int nullable, size_t min_elem)
{
    int64_t n = compact ? (int64_t)kw_uvarint(c) - 1 : kw_i32(c);
    if (c->err) return 0;
    if (n < 0) {
        if (n != -1 || !nullable) c->err = 1;
        return n == -1 && nullable ? -1 : 0;
    }
    if (min_elem > 0 && (uint64_t)n > kw_left(c) / min_elem) {
        c->err = 1;
        return 0;
    }
    return (int32_t)n;
}

/* A TAGGED_FIELDS section, skipped. */
static inline void kw_skip_tags(kw_cur *c)
{
    uint32_t n = kw_uvarint(c);
    if (!c->err && n > kw_left(c) / 2) c->err = 1;
    for (uint32_t i = 0; i < n && !c->err; i++) {
        (void)kw_uvarint(c);
        kw_skip(c, kw_uvarint(c));
    }
}

#endif
