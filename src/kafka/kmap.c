/* kmap.c - see kmap.h. */
#include "kmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "resolve.h"

static int fail(char *err, size_t cap, const char *msg)
{
    snprintf(err, cap, "%s", msg);
    return -1;
}

/* A node id: decimal digits only, 0..2^31-1. */
static int parse_node_id(const char *s, size_t len, int32_t *out)
{
    if (len == 0 || len > 10) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > INT32_MAX) return -1;
    *out = (int32_t)v;
    return 0;
}

int kmap_add(kmap_t *m, const char *spec, char *err, size_t errcap)
{
    kmap_entry_t e;
    memset(&e, 0, sizeof e);
    const char *eq = strchr(spec, '=');
    if (eq == NULL)
        return fail(err, errcap, "expected ADVERTISED_HOST:PORT=HOST:PORT or NODE_ID=HOST:PORT");
    size_t left = (size_t)(eq - spec);
    char from[KMAP_HOST_MAX + 8];
    if (left >= sizeof from) return fail(err, errcap, "the advertised address is too long");
    memcpy(from, spec, left);
    from[left] = '\0';
    if (parse_node_id(from, left, &e.node_id) != 0) {
        e.node_id = -1;
        if (resolve_split(from, e.from_host, sizeof e.from_host, &e.from_port, 0) != 0)
            return fail(err, errcap,
                        "the left side must be the advertised HOST:PORT (with its port) or a node id");
    }
    if (resolve_split(eq + 1, e.to_host, sizeof e.to_host, &e.to_port, 0) != 0)
        return fail(err, errcap, "the right side must be HOST:PORT (with its port)");
    for (size_t i = 0; i < m->n; i++) {
        const kmap_entry_t *o = &m->items[i];
        if (o->node_id == e.node_id &&
            (e.node_id >= 0 || (o->from_port == e.from_port && strcasecmp(o->from_host, e.from_host) == 0)))
            return fail(err, errcap, "this broker is already mapped by an earlier --map");
    }
    if (m->n >= KMAP_MAX) return fail(err, errcap, "too many --map options (at most 256)");
    kmap_entry_t *items = realloc(m->items, (m->n + 1) * sizeof *items);
    if (items == NULL) return fail(err, errcap, "out of memory");
    items[m->n++] = e;
    m->items = items;
    return 0;
}

const kmap_entry_t *kmap_find(const kmap_t *m, int32_t node_id, const char *host, size_t host_len,
                              int32_t port)
{
    const kmap_entry_t *by_id = NULL;
    for (size_t i = 0; i < m->n; i++) {
        const kmap_entry_t *e = &m->items[i];
        if (e->node_id < 0) {
            if (e->from_port == port && strlen(e->from_host) == host_len &&
                strncasecmp(e->from_host, host, host_len) == 0)
                return e;
        } else if (node_id >= 0 && e->node_id == node_id) {
            by_id = e;
        }
    }
    return by_id;
}

void kmap_free(kmap_t *m)
{
    free(m->items);
    m->items = NULL;
    m->n = 0;
}
