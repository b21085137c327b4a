/* srcmap.c - see srcmap.h. */
#include "srcmap.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    list_t link;
    src_key_t key;
    unsigned count;
} entry_t;

int src_key_of(const uv_tcp_t *handle, src_key_t *out)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    int rc = uv_tcp_getpeername(handle, (struct sockaddr *)&sa, &len);
    if (rc != 0) return rc;
    memset(out, 0, sizeof *out);
    if (sa.ss_family == AF_INET) {
        memcpy(out->b + 12, &((const struct sockaddr_in *)&sa)->sin_addr, 4);
        return 0;
    }
    const uint8_t *a6 = ((const struct sockaddr_in6 *)&sa)->sin6_addr.s6_addr;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6, v4mapped, 12) == 0)
        memcpy(out->b + 12, a6 + 12, 4);
    else
        memcpy(out->b, a6, 8);
    return 0;
}

void srcmap_init(srcmap_t *m)
{
    for (size_t i = 0; i < SRCMAP_BUCKETS; i++) list_init(&m->buckets[i]);
    if (RAND_bytes((unsigned char *)&m->seed, sizeof m->seed) != 1) m->seed = (uintptr_t)m;
}

void srcmap_free(srcmap_t *m)
{
    for (size_t i = 0; i < SRCMAP_BUCKETS; i++)
        while (!list_empty(&m->buckets[i])) {
            entry_t *e = LIST_ENTRY(m->buckets[i].next, entry_t, link);
            list_remove(&e->link);
            free(e);
        }
}

/* FNV-1a over the key, started from the secret seed, then a final mix. */
static list_t *bucket(const srcmap_t *m, const src_key_t *k)
{
    uint64_t h = 0xcbf29ce484222325u ^ m->seed;
    for (size_t i = 0; i < sizeof k->b; i++) h = (h ^ k->b[i]) * 0x100000001b3u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return (list_t *)&m->buckets[h % SRCMAP_BUCKETS];
}

static entry_t *find(const srcmap_t *m, const src_key_t *k)
{
    list_t *b = bucket(m, k);
    for (list_t *e = b->next; e != b; e = e->next) {
        entry_t *x = LIST_ENTRY(e, entry_t, link);
        if (memcmp(&x->key, k, sizeof *k) == 0) return x;
    }
    return NULL;
}

unsigned srcmap_count(const srcmap_t *m, const src_key_t *k)
{
    const entry_t *e = find(m, k);
    return e ? e->count : 0;
}

int srcmap_add(srcmap_t *m, const src_key_t *k)
{
    entry_t *e = find(m, k);
    if (e == NULL) {
        if ((e = calloc(1, sizeof *e)) == NULL) return UV_ENOMEM;
        e->key = *k;
        list_push(bucket(m, k), &e->link);
    }
    e->count++;
    return 0;
}

void srcmap_remove(srcmap_t *m, const src_key_t *k)
{
    entry_t *e = find(m, k);
    if (e == NULL) return;
    if (--e->count == 0) {
        list_remove(&e->link);
        free(e);
    }
}
