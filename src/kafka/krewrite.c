/* krewrite.c - see krewrite.h. */
#include "krewrite.h"

#include <stdlib.h>
#include <string.h>

#include "kframe.h"
#include "kwire.h"

static int reserve(kr_plan_t *p, uint32_t edits, uint32_t bytes)
{
    if (p->n + edits > p->cap) {
        uint32_t ncap = p->cap ? p->cap : 16;
        while (ncap < p->n + edits) ncap *= 2;
        kr_edit_t *e = realloc(p->edits, ncap * sizeof *e);
        if (e == NULL) return -1;
        p->edits = e;
        p->cap = ncap;
    }
    if (p->slen + bytes > p->scap) {
        uint32_t ncap = p->scap ? p->scap : 256;
        while (ncap < p->slen + bytes) ncap *= 2;
        uint8_t *s = realloc(p->scratch, ncap);
        if (s == NULL) return -1;
        p->scratch = s;
        p->scap = ncap;
    }
    return 0;
}

/* Appends an edit whose replacement is `n` bytes at the end of scratch
 * (written by the caller through the returned pointer). */
static uint8_t *edit(kr_plan_t *p, uint32_t off, uint32_t len, uint32_t n)
{
    if (reserve(p, 1, n) != 0) return NULL;
    p->edits[p->n++] = (kr_edit_t){off, len, p->slen, n};
    uint8_t *w = p->scratch + p->slen;
    p->slen += n;
    return w;
}

static size_t host_field_len(int compact, size_t host_len)
{
    return compact ? kw_uvarint_len((uint32_t)host_len + 1) + host_len : 2 + host_len;
}

int kr_plan(kr_plan_t *p, const ks_scan_t *s, const uint8_t *frame, size_t len, uint32_t max_frame,
            kr_lookup_fn lookup, void *ctx)
{
    p->n = 0;
    p->slen = 0;
    p->pending_node = -1;
    if (s->n_addrs == 0 && s->n_patches == 0) return KR_DONE;

    /* Pass 1: ask for every public address before emitting anything, and
     * total the size changes (inside the tagged field, and overall). */
    kr_public_t *pub = s->n_addrs ? malloc(s->n_addrs * sizeof *pub) : NULL;
    if (s->n_addrs && pub == NULL) return KF_BAD;
    int64_t delta = 0, tag_delta = 0;
    int changed = 0;
    for (uint32_t i = 0; i < s->n_addrs; i++) {
        const ks_addr_t *a = &s->addrs[i];
        int rc = lookup(ctx, a, frame, &pub[i]);
        if (rc == KR_PENDING) {
            p->pending_node = a->node_id;
            p->pending_index = i;
            free(pub);
            return KR_PENDING;
        }
        if (rc < 0 || pub[i].host_len > 32767 || pub[i].port < 0 ||
            (a->port16 && pub[i].port > 65535)) {
            free(pub);
            return KF_BAD;
        }
        int same = pub[i].host_len == a->host_len && pub[i].port == a->port &&
                   memcmp(pub[i].host, frame + a->host_str_off, a->host_len) == 0;
        if (same) {
            pub[i].host = NULL; /* marks "no edit" */
            continue;
        }
        changed = 1;
        int64_t d = (int64_t)host_field_len(a->compact, pub[i].host_len) - a->host_field_len;
        delta += d;
        if (a->in_tag) tag_delta += d;
    }
    for (uint32_t i = 0; i < s->n_patches; i++)
        delta += (int64_t)s->patches[i].repl_len - s->patches[i].len;
    if (!changed && s->n_patches == 0) {
        free(pub);
        return KR_DONE;
    }

    uint32_t new_tag_size = 0;
    if (s->has_tag && tag_delta != 0) {
        new_tag_size = (uint32_t)((int64_t)s->tag_size + tag_delta);
        delta += (int64_t)kw_uvarint_len(new_tag_size) - s->tag_size_len;
    }
    int64_t new_size = (int64_t)len - 4 + delta;
    if (new_size < 0 || new_size > (int64_t)max_frame) goto fail;

    /* Pass 2: the edits, in frame order. */
    uint8_t *w;
    if (delta != 0) {
        if ((w = edit(p, 0, 4, 4)) == NULL) goto fail;
        kw_put32(w, (uint32_t)new_size);
    }
    uint32_t pi = 0;
    int tag_done = !(s->has_tag && tag_delta != 0);
    for (uint32_t i = 0; i <= s->n_addrs; i++) {
        uint32_t at = i < s->n_addrs ? s->addrs[i].host_off : UINT32_MAX;
        while (pi < s->n_patches && s->patches[pi].off < at) {
            const ks_patch_t *pa = &s->patches[pi++];
            if ((w = edit(p, pa->off, pa->len, pa->repl_len)) == NULL) goto fail;
            memcpy(w, pa->repl, pa->repl_len);
        }
        if (!tag_done && s->tag_size_off < at) {
            tag_done = 1;
            if ((w = edit(p, s->tag_size_off, s->tag_size_len,
                          (uint32_t)kw_uvarint_len(new_tag_size))) == NULL)
                goto fail;
            kw_put_uvarint(w, new_tag_size);
        }
        if (i == s->n_addrs) break;
        const ks_addr_t *a = &s->addrs[i];
        if (pub[i].host == NULL) continue;
        uint32_t hl = (uint32_t)host_field_len(a->compact, pub[i].host_len);
        if ((w = edit(p, a->host_off, a->host_field_len, hl)) == NULL) goto fail;
        if (a->compact)
            w += kw_put_uvarint(w, (uint32_t)pub[i].host_len + 1);
        else
            kw_put16(w, (uint16_t)pub[i].host_len), w += 2;
        memcpy(w, pub[i].host, pub[i].host_len);
        if (a->port16) {
            if ((w = edit(p, a->port_off, 2, 2)) == NULL) goto fail;
            kw_put16(w, (uint16_t)pub[i].port);
        } else {
            if ((w = edit(p, a->port_off, 4, 4)) == NULL) goto fail;
            kw_put32(w, (uint32_t)pub[i].port);
        }
    }
    free(pub);
    return KR_DONE;
fail:
    free(pub);
    p->n = 0;
    return KF_BAD;
}

size_t kr_output_len(const kr_plan_t *p, size_t len)
{
    size_t n = len;
    for (uint32_t i = 0; i < p->n; i++) n = n - p->edits[i].len + p->edits[i].repl_len;
    return n;
}

void kr_materialize(const kr_plan_t *p, const uint8_t *frame, size_t len, uint8_t *out)
{
    size_t pos = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        const kr_edit_t *e = &p->edits[i];
        memcpy(out, frame + pos, e->off - pos);
        out += e->off - pos;
        memcpy(out, p->scratch + e->repl_off, e->repl_len);
        out += e->repl_len;
        pos = e->off + e->len;
    }
    memcpy(out, frame + pos, len - pos);
}

void kr_free(kr_plan_t *p)
{
    free(p->edits);
    free(p->scratch);
    memset(p, 0, sizeof *p);
}
