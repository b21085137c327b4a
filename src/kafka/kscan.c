/* kscan.c - see kscan.h. Layouts cite the protocol README §4 and LAYOUTS.md;
 * librdkafka 2.15's mock was read for ShareFetch v1 (AcquisitionLockTimeoutMs). */
#include "kscan.h"

#include <stdlib.h>
#include <string.h>

#include "kwire.h"

/* The smallest a node entry can be on the wire: NodeId + empty host + port. */
#define MIN_NODE 9

int ks_max_version(int16_t key)
{
    switch (key) {
    case KAFKA_PRODUCE: return 13;
    case KAFKA_FETCH: return 18;
    case KAFKA_METADATA: return 13;
    case KAFKA_FIND_COORDINATOR: return 6;
    case KAFKA_API_VERSIONS: return 4;
    case KAFKA_DESCRIBE_QUORUM: return 2;
    case KAFKA_DESCRIBE_CLUSTER: return 2;
    case KAFKA_SHARE_FETCH: return 1;
    case KAFKA_SHARE_ACKNOWLEDGE: return 1;
    default: return -1; /* not rewritten: any version passes */
    }
}

int ks_needs_scan(int16_t key, int16_t v)
{
    switch (key) {
    case KAFKA_PRODUCE: return v >= 10;
    case KAFKA_FETCH: return v >= 16;
    case KAFKA_DESCRIBE_QUORUM: return v >= 2;
    case KAFKA_METADATA:
    case KAFKA_FIND_COORDINATOR:
    case KAFKA_API_VERSIONS:
    case KAFKA_DESCRIBE_CLUSTER:
    case KAFKA_SHARE_FETCH:
    case KAFKA_SHARE_ACKNOWLEDGE: return 1;
    default: return 0;
    }
}

static int grow(void **arr, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Reads Host then Port at the cursor and records them for node_id. An
 * entry with node id -1, an empty host or a negative port names no broker
 * (e.g. COORDINATOR_NOT_AVAILABLE) and is left alone. */
static void node_addr(kw_cur *c, ks_scan_t *s, int32_t node_id, int compact, int port16,
                      int in_tag, enum ks_kind kind)
{
    ks_addr_t a = {.node_id = node_id, .compact = (uint8_t)compact, .port16 = (uint8_t)port16,
                   .in_tag = (uint8_t)in_tag, .kind = (uint8_t)kind};
    const uint8_t *host;
    size_t host_len;
    a.host_off = (uint32_t)kw_off(c);
    kw_string(c, compact, 0, &host, &host_len);
    a.host_field_len = (uint32_t)(kw_off(c) - a.host_off);
    a.port_off = (uint32_t)kw_off(c);
    a.port = port16 ? (int32_t)(uint16_t)kw_i16(c) : kw_i32(c);
    if (c->err || node_id < 0 || host_len == 0 || a.port <= 0) return;
    a.host_str_off = (uint32_t)(host - c->start);
    a.host_len = (uint32_t)host_len;
    if (s->n_addrs == s->cap_addrs && grow((void **)&s->addrs, &s->cap_addrs, sizeof a) != 0) {
        c->err = 1;
        return;
    }
    s->addrs[s->n_addrs++] = a;
}

/* NodeEndpoints / Brokers element: NodeId, Host, Port, [Rack], [IsFenced],
 * TAGGED_FIELDS when flexible. */
static void node_list(kw_cur *c, ks_scan_t *s, int flex, int has_rack, int has_fenced, int in_tag)
{
    int32_t n = kw_array(c, flex, 0, MIN_NODE);
    for (int32_t i = 0; i < n && !c->err; i++) {
        int32_t id = kw_i32(c);
        node_addr(c, s, id, flex, 0, in_tag, KS_BROKER);
        if (has_rack) kw_skip_string(c, flex, 1);
        if (has_fenced) kw_skip(c, 1);
        if (flex) kw_skip_tags(c);
    }
}

static void response_header(kw_cur *c, int flex)
{
    kw_skip(c, 4); /* size prefix */
    kw_skip(c, 4); /* CorrelationId */
    if (flex) kw_skip_tags(c);
}

/* The top-level TAGGED_FIELDS of Produce v10+ and Fetch v16+: tag 0 holds
 * NodeEndpoints, whose size varint must be recomputed if a host changes.
 * Other tags are skipped by size and survive byte for byte. */
static void top_tags_with_endpoints(kw_cur *c, ks_scan_t *s)
{
    uint32_t n = kw_uvarint(c);
    if (!c->err && n > kw_left(c) / 2) c->err = 1;
    int64_t last = -1;
    for (uint32_t i = 0; i < n && !c->err; i++) {
        uint32_t tag = kw_uvarint(c);
        /* Tags are strictly ascending (KIP-482): a second tag 0 would be a
         * second NodeEndpoints whose size nobody could keep right. */
        if ((int64_t)tag <= last) {
            c->err = 1;
            return;
        }
        last = tag;
        size_t size_off = kw_off(c);
        uint32_t size = kw_uvarint(c);
        if (c->err || size > kw_left(c)) {
            c->err = 1;
            return;
        }
        if (tag != 0) {
            kw_skip(c, size);
            continue;
        }
        s->has_tag = 1;
        s->tag_size_off = (uint32_t)size_off;
        s->tag_size_len = (uint32_t)(kw_off(c) - size_off);
        s->tag_size = size;
        kw_cur v = *c;
        v.end = c->p + size;
        node_list(&v, s, 1, 1, 0, 1);
        if (v.err || v.p != v.end) {
            c->err = 1; /* the value must hold exactly one NodeEndpoints */
            return;
        }
        c->p = v.end;
    }
}

static void scan_metadata(kw_cur *c, ks_scan_t *s, int v)
{
    int flex = v >= 9;
    response_header(c, flex);
    if (v >= 3) kw_skip(c, 4); /* ThrottleTimeMs */
    node_list(c, s, flex, v >= 1, 0, 0);
    /* Brokers is first in every version: the rest is never parsed. */
}

static void scan_find_coordinator(kw_cur *c, ks_scan_t *s, int v)
{
    int flex = v >= 3;
    response_header(c, flex);
    if (v >= 1) kw_skip(c, 4); /* ThrottleTimeMs */
    if (v <= 3) {
        kw_skip(c, 2); /* ErrorCode */
        if (v >= 1) kw_skip_string(c, flex, 1);
        int32_t id = kw_i32(c);
        node_addr(c, s, id, flex, 0, 0, KS_BROKER);
        return;
    }
    /* v4+: Coordinators[] {Key, NodeId, Host, Port, ErrorCode, ErrorMessage} (KIP-699). */
    int32_t n = kw_array(c, 1, 0, 1 + MIN_NODE + 2 + 1 + 1);
    for (int32_t i = 0; i < n && !c->err; i++) {
        kw_skip_string(c, 1, 0);
        int32_t id = kw_i32(c);
        node_addr(c, s, id, 1, 0, 0, KS_BROKER);
        kw_skip(c, 2);
        kw_skip_string(c, 1, 1);
        kw_skip_tags(c);
    }
}

static void scan_describe_cluster(kw_cur *c, ks_scan_t *s, int v)
{
    response_header(c, 1);
    kw_skip(c, 4 + 2);         /* ThrottleTimeMs, ErrorCode */
    kw_skip_string(c, 1, 1);   /* ErrorMessage */
    if (v >= 1) kw_skip(c, 1); /* EndpointType (KIP-919) */
    kw_skip_string(c, 1, 0);   /* ClusterId */
    kw_skip(c, 4);             /* ControllerId */
    node_list(c, s, 1, 1, v >= 2, 0);
}

static void scan_produce(kw_cur *c, ks_scan_t *s, int v)
{
    response_header(c, 1);
    int32_t topics = kw_array(c, 1, 0, 3);
    for (int32_t t = 0; t < topics && !c->err; t++) {
        if (v >= 13)
            kw_skip(c, 16); /* TopicId */
        else
            kw_skip_string(c, 1, 0);
        int32_t parts = kw_array(c, 1, 0, 4 + 2 + 24 + 3);
        for (int32_t p = 0; p < parts && !c->err; p++) {
            kw_skip(c, 4 + 2 + 8 + 8 + 8); /* Index .. LogStartOffset */
            int32_t errs = kw_array(c, 1, 0, 6);
            for (int32_t e = 0; e < errs && !c->err; e++) {
                kw_skip(c, 4);
                kw_skip_string(c, 1, 1);
                kw_skip_tags(c);
            }
            kw_skip_string(c, 1, 1); /* ErrorMessage */
            kw_skip_tags(c);         /* CurrentLeader (tag 0) holds node ids only */
        }
        kw_skip_tags(c);
    }
    kw_skip(c, 4); /* ThrottleTimeMs */
    top_tags_with_endpoints(c, s);
}

static void scan_fetch(kw_cur *c, ks_scan_t *s)
{
    response_header(c, 1);
    kw_skip(c, 4 + 2 + 4); /* ThrottleTimeMs, ErrorCode, SessionId */
    int32_t topics = kw_array(c, 1, 0, 16 + 2);
    for (int32_t t = 0; t < topics && !c->err; t++) {
        kw_skip(c, 16); /* TopicId */
        int32_t parts = kw_array(c, 1, 0, 30 + 1 + 4 + 1 + 1);
        for (int32_t p = 0; p < parts && !c->err; p++) {
            kw_skip(c, 4 + 2 + 8 + 8 + 8);
            int32_t aborted = kw_array(c, 1, 1, 17);
            for (int32_t a = 0; a < aborted && !c->err; a++) {
                kw_skip(c, 16);
                kw_skip_tags(c);
            }
            kw_skip(c, 4);        /* PreferredReadReplica */
            kw_skip_bytes(c, 1);  /* Records: skipped by length, never read */
            kw_skip_tags(c);
        }
        kw_skip_tags(c);
    }
    top_tags_with_endpoints(c, s);
}

static void scan_share(kw_cur *c, ks_scan_t *s, int v, int fetch)
{
    response_header(c, 1);
    kw_skip(c, 4 + 2);       /* ThrottleTimeMs, ErrorCode */
    kw_skip_string(c, 1, 1); /* ErrorMessage */
    if (fetch && v >= 1) kw_skip(c, 4); /* AcquisitionLockTimeoutMs */
    int32_t topics = kw_array(c, 1, 0, 16 + 2);
    for (int32_t t = 0; t < topics && !c->err; t++) {
        kw_skip(c, 16);
        int32_t parts = kw_array(c, 1, 0, 4 + 2 + 1 + 9);
        for (int32_t p = 0; p < parts && !c->err; p++) {
            kw_skip(c, 4 + 2);
            kw_skip_string(c, 1, 1);
            if (fetch) {
                kw_skip(c, 2);
                kw_skip_string(c, 1, 1);
            }
            kw_skip(c, 8); /* CurrentLeader */
            kw_skip_tags(c);
            if (fetch) {
                kw_skip_bytes(c, 1);
                int32_t acq = kw_array(c, 1, 0, 19);
                for (int32_t a = 0; a < acq && !c->err; a++) {
                    kw_skip(c, 18);
                    kw_skip_tags(c);
                }
            }
            kw_skip_tags(c);
        }
        kw_skip_tags(c);
    }
    node_list(c, s, 1, 1, 0, 0);
}

static void replica_states(kw_cur *c)
{
    int32_t n = kw_array(c, 1, 0, 4 + 16 + 24 + 1);
    for (int32_t i = 0; i < n && !c->err; i++) {
        kw_skip(c, 4 + 16 + 8 + 8 + 8);
        kw_skip_tags(c);
    }
}

static void scan_describe_quorum(kw_cur *c, ks_scan_t *s)
{
    response_header(c, 1);
    kw_skip(c, 2);
    kw_skip_string(c, 1, 1);
    int32_t topics = kw_array(c, 1, 0, 3);
    for (int32_t t = 0; t < topics && !c->err; t++) {
        kw_skip_string(c, 1, 0);
        int32_t parts = kw_array(c, 1, 0, 4 + 2 + 1 + 16 + 3);
        for (int32_t p = 0; p < parts && !c->err; p++) {
            kw_skip(c, 4 + 2);
            kw_skip_string(c, 1, 1);
            kw_skip(c, 4 + 4 + 8);
            replica_states(c); /* CurrentVoters */
            replica_states(c); /* Observers */
            kw_skip_tags(c);
        }
        kw_skip_tags(c);
    }
    /* Nodes[] {NodeId, Listeners[] {Name, Host, Port UINT16}}: controllers. */
    int32_t nodes = kw_array(c, 1, 0, 4 + 1 + 1);
    for (int32_t i = 0; i < nodes && !c->err; i++) {
        int32_t id = kw_i32(c);
        int32_t ls = kw_array(c, 1, 0, 1 + 1 + 2 + 1);
        for (int32_t l = 0; l < ls && !c->err; l++) {
            kw_skip_string(c, 1, 0);
            node_addr(c, s, id, 1, 1, 0, KS_CONTROLLER);
            kw_skip_tags(c);
        }
        kw_skip_tags(c);
    }
}

/* ---- ApiVersions -------------------------------------------------------- */

static int add_patch(ks_scan_t *s, uint32_t off, uint32_t len, const uint8_t *repl, size_t rlen)
{
    if (s->n_patches == s->cap_patches &&
        grow((void **)&s->patches, &s->cap_patches, sizeof(ks_patch_t)) != 0)
        return -1;
    ks_patch_t *p = &s->patches[s->n_patches++];
    p->off = off;
    p->len = len;
    p->repl_len = (uint8_t)rlen;
    if (rlen) memcpy(p->repl, repl, rlen);
    return 0;
}

/* One attempt at reading the body in a given layout: 0 = v0, 1 = v1-2,
 * 3 = v3+ (flexible). It must consume the frame exactly; the caps become
 * patches: MaxVersion lowered in place, or an entry whose MinVersion is
 * already above the cap removed (and the count rewritten). */
static int apiversions_layout(ks_scan_t *s, const uint8_t *frame, size_t len, int layout)
{
    kw_cur c = kw_init(frame, len);
    int flex = layout == 3;
    kw_skip(&c, 8); /* size, CorrelationId: header v0 always */
    kw_skip(&c, 2); /* ErrorCode: 35 comes with a v0 body, and the layouts decide */
    size_t count_off = kw_off(&c);
    int32_t n = kw_array(&c, flex, 0, flex ? 7 : 6);
    size_t count_len = kw_off(&c) - count_off;
    int32_t kept = n;
    s->n_patches = 0;
    for (int32_t i = 0; i < n && !c.err; i++) {
        size_t entry = kw_off(&c);
        int16_t key = kw_i16(&c), min = kw_i16(&c);
        size_t max_off = kw_off(&c);
        int16_t max = kw_i16(&c);
        if (flex) kw_skip_tags(&c);
        int cap = ks_max_version(key);
        if (c.err || cap < 0 || max <= cap) continue;
        uint8_t v[2];
        kw_put16(v, (uint16_t)cap);
        if (min > cap) {
            kept--;
            if (add_patch(s, (uint32_t)entry, (uint32_t)(kw_off(&c) - entry), NULL, 0)) return KF_BAD;
        } else if (add_patch(s, (uint32_t)max_off, 2, v, 2)) {
            return KF_BAD;
        }
    }
    if (layout >= 1) kw_skip(&c, 4); /* ThrottleTimeMs */
    if (flex) kw_skip_tags(&c);      /* features (tags 0-3) survive untouched */
    if (c.err || c.p != c.end) return KF_BAD;
    if (kept != n) {
        uint8_t cnt[5];
        size_t clen;
        if (flex) {
            clen = kw_put_uvarint(cnt, (uint32_t)kept + 1);
        } else {
            kw_put32(cnt, (uint32_t)kept);
            clen = 4;
        }
        /* The count precedes every entry: insert its patch first. */
        if (add_patch(s, (uint32_t)count_off, (uint32_t)count_len, cnt, clen)) return KF_BAD;
        ks_patch_t last = s->patches[s->n_patches - 1];
        memmove(s->patches + 1, s->patches, (s->n_patches - 1) * sizeof last);
        s->patches[0] = last;
    }
    return 0;
}

static int scan_api_versions(ks_scan_t *s, int v, const uint8_t *frame, size_t len)
{
    /* §8: a broker that does not know the requested version answers in the
     * v0 layout (UNSUPPORTED_VERSION): try the requested layout first. */
    int first = v >= 3 ? 3 : v >= 1 ? 1 : 0;
    if (apiversions_layout(s, frame, len, first) == 0) return 0;
    for (int layout = 0; layout <= 1; layout++)
        if (layout != first && apiversions_layout(s, frame, len, layout) == 0) return 0;
    s->n_patches = 0;
    /* An error answer in no known layout (librdkafka's mock answers a v3+
     * request it does not support with a short hand-made body) offers no
     * versions to cap: it passes, and the client retries lower. A success
     * we cannot read would let uncapped versions through: that fails. */
    if (len >= 10 && kw_be16(frame + 8) != 0) return 0;
    return KF_BAD;
}

int ks_scan(ks_scan_t *s, int16_t key, int16_t v, const uint8_t *frame, size_t len)
{
    s->n_addrs = 0;
    s->n_patches = 0;
    s->has_tag = 0;
    int max = ks_max_version(key);
    if (v < 0) return KF_BAD;
    if (key == KAFKA_API_VERSIONS) return scan_api_versions(s, v, frame, len);
    if (max >= 0 && v > max) return KS_UNSUPPORTED;
    if (!ks_needs_scan(key, v)) return 0;

    kw_cur c = kw_init(frame, len);
    switch (key) {
    case KAFKA_METADATA: scan_metadata(&c, s, v); break;
    case KAFKA_FIND_COORDINATOR: scan_find_coordinator(&c, s, v); break;
    case KAFKA_DESCRIBE_CLUSTER: scan_describe_cluster(&c, s, v); break;
    case KAFKA_PRODUCE: scan_produce(&c, s, v); break;
    case KAFKA_FETCH: scan_fetch(&c, s); break;
    case KAFKA_SHARE_FETCH: scan_share(&c, s, v, 1); break;
    case KAFKA_SHARE_ACKNOWLEDGE: scan_share(&c, s, v, 0); break;
    case KAFKA_DESCRIBE_QUORUM: scan_describe_quorum(&c, s); break;
    default: return 0;
    }
    if (c.err) {
        s->n_addrs = 0;
        s->has_tag = 0;
        return KF_BAD;
    }
    return 0;
}

void ks_free(ks_scan_t *s)
{
    free(s->addrs);
    free(s->patches);
    memset(s, 0, sizeof *s);
}
