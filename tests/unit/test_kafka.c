/* Kafka codec: every rewritten API and version, built independently from
 * the field layouts, rewritten, and compared with exact expected bytes;
 * every input also fed at every split point and one byte at a time; the
 * pending-address resume; ApiVersions caps; malformed frames. */
#include "kbuild.h"
#include "kframe.h"
#include "krewrite.h"
#include "kscan.h"
#include "kstream.h"
#include "kwire.h"
#include "unit.h"

/* ---- addresses ----------------------------------------------------------- */

enum { INTERNAL, PUBLIC };

static int long_public; /* a 200-byte public host: prefixes and tag sizes grow */

static const char *host_for(int mode, int id)
{
    static char buf[512][256]; /* a ring: kr_plan keeps every answer until it returns */
    static int k;
    char *b = buf[k++ % 512];
    if (mode == INTERNAL) {
        snprintf(b, 256, "broker-%d.kafka.svc.cluster.internal", id);
    } else if (long_public) {
        memset(b, 'h', 200);
        snprintf(b + 200, 56, ".%d.example", id);
    } else {
        snprintf(b, 256, "bore.pub");
    }
    return b;
}

static int32_t port_for(int mode, int id) { return mode == INTERNAL ? 9092 + id : 40000 + id; }

typedef struct {
    int brokers;     /* entries in the broker / endpoint list */
    int racks;       /* 0: null racks, 1: racks, 2: alternating */
    int unknown;     /* unknown tagged fields everywhere */
    int topics;      /* topics (and partitions per topic) around the addresses */
} params_t;

static const char *rack(const params_t *p, int i)
{
    if (p->racks == 0 || (p->racks == 2 && i % 2)) return NULL;
    return i % 3 ? "rack-a" : "us-east-1b";
}

/* Broker/endpoint entries: NodeId, Host, Port, [Rack], [IsFenced], [tags]. */
static void brokers(kb_t *b, int mode, int flex, int with_rack, int fenced, const params_t *p)
{
    kb_array(b, flex, p->brokers);
    for (int i = 0; i < p->brokers; i++) {
        int id = i + 1;
        kb_i32(b, id);
        kb_str(b, flex, host_for(mode, id));
        kb_i32(b, port_for(mode, id));
        if (with_rack) kb_str(b, flex, rack(p, i));
        if (fenced) kb_i8(b, i == 1);
        if (flex) kb_tags(b, p->unknown);
    }
}

/* ---- response builders, one per API ------------------------------------- */

static kb_t metadata(int v, int mode, const params_t *p)
{
    kb_t b = {0};
    int flex = v >= 9;
    kb_i32(&b, 42); /* CorrelationId */
    if (flex) kb_tags(&b, p->unknown);
    if (v >= 3) kb_i32(&b, 5);
    brokers(&b, mode, flex, v >= 1, 0, p);
    if (v >= 2) kb_str(&b, flex, v % 2 ? "cluster-xyz" : NULL);
    if (v >= 1) kb_i32(&b, 2);
    kb_array(&b, flex, p->topics);
    for (int t = 0; t < p->topics; t++) {
        kb_i16(&b, 0);
        char name[32];
        snprintf(name, sizeof name, "topic-%d", t);
        kb_str(&b, flex, name);
        if (v >= 10) kb_uuid(&b, t);
        if (v >= 1) kb_i8(&b, 0);
        kb_array(&b, flex, p->topics);
        for (int q = 0; q < p->topics; q++) {
            kb_i16(&b, 0);
            kb_i32(&b, q);
            kb_i32(&b, q % 3 + 1);
            if (v >= 7) kb_i32(&b, 7);
            kb_array(&b, flex, 2);
            kb_i32(&b, 1);
            kb_i32(&b, 2);
            kb_array(&b, flex, 1);
            kb_i32(&b, 1);
            if (v >= 5) kb_array(&b, flex, 0);
            if (flex) kb_tags(&b, p->unknown);
        }
        if (v >= 8) kb_i32(&b, -2147483648);
        if (flex) kb_tags(&b, p->unknown);
    }
    if (v >= 8 && v <= 10) kb_i32(&b, -2147483648);
    if (v >= 13) kb_i16(&b, 0);
    if (flex) kb_tags(&b, p->unknown);
    return b;
}

static kb_t find_coordinator(int v, int mode, const params_t *p)
{
    kb_t b = {0};
    int flex = v >= 3;
    kb_i32(&b, 42);
    if (flex) kb_tags(&b, p->unknown);
    if (v >= 1) kb_i32(&b, 0);
    if (v <= 3) {
        kb_i16(&b, 0);
        if (v >= 1) kb_str(&b, flex, NULL);
        kb_i32(&b, 3);
        kb_str(&b, flex, host_for(mode, 3));
        kb_i32(&b, port_for(mode, 3));
        if (flex) kb_tags(&b, p->unknown);
        return b;
    }
    kb_array(&b, 1, p->brokers + 1);
    for (int i = 0; i <= p->brokers; i++) {
        char key[32];
        snprintf(key, sizeof key, "group-%d", i);
        kb_str(&b, 1, key);
        if (i == p->brokers) { /* COORDINATOR_NOT_AVAILABLE: left alone */
            kb_i32(&b, -1);
            kb_str(&b, 1, "");
            kb_i32(&b, -1);
            kb_i16(&b, 15);
            kb_str(&b, 1, "The coordinator is not available.");
        } else {
            kb_i32(&b, i + 1);
            kb_str(&b, 1, host_for(mode, i + 1));
            kb_i32(&b, port_for(mode, i + 1));
            kb_i16(&b, 0);
            kb_str(&b, 1, NULL);
        }
        kb_tags(&b, p->unknown);
    }
    kb_tags(&b, p->unknown);
    return b;
}

static kb_t describe_cluster(int v, int mode, const params_t *p)
{
    kb_t b = {0};
    kb_i32(&b, 42);
    kb_tags(&b, p->unknown);
    kb_i32(&b, 0);
    kb_i16(&b, 0);
    kb_str(&b, 1, NULL);
    if (v >= 1) kb_i8(&b, 1);
    kb_str(&b, 1, "cluster-xyz");
    kb_i32(&b, 1);
    brokers(&b, mode, 1, 1, v >= 2, p);
    kb_i32(&b, -2147483648);
    kb_tags(&b, p->unknown);
    return b;
}

/* The top-level tagged fields of Produce/Fetch: an unknown tag before and
 * after NodeEndpoints (tag 0) when asked, to check they survive. */
static void endpoints_tag(kb_t *b, int mode, const params_t *p)
{
    int n = (p->brokers > 0) + (p->unknown ? 1 : 0);
    kb_uvarint(b, (uint32_t)n);
    if (p->brokers > 0) {
        kb_t v = {0};
        brokers(&v, mode, 1, 1, 0, p);
        kb_uvarint(b, 0);
        kb_uvarint(b, (uint32_t)v.len);
        kb_raw(b, v.p, v.len);
        kb_free(&v);
    }
    if (p->unknown) {
        kb_uvarint(b, 9);
        kb_uvarint(b, 2);
        kb_raw(b, "\xaa\xbb", 2);
    }
}

static kb_t produce(int v, int mode, const params_t *p)
{
    kb_t b = {0};
    kb_i32(&b, 42);
    kb_tags(&b, p->unknown);
    kb_array(&b, 1, p->topics);
    for (int t = 0; t < p->topics; t++) {
        if (v >= 13)
            kb_uuid(&b, t);
        else
            kb_str(&b, 1, "orders");
        kb_array(&b, 1, p->topics);
        for (int q = 0; q < p->topics; q++) {
            kb_i32(&b, q);
            kb_i16(&b, q == 0 ? 6 : 0); /* NOT_LEADER_OR_FOLLOWER on one */
            kb_i64(&b, 1000 + q);
            kb_i64(&b, -1);
            kb_i64(&b, 0);
            kb_array(&b, 1, q == 1);
            if (q == 1) {
                kb_i32(&b, 0);
                kb_str(&b, 1, "bad record");
                kb_tags(&b, 0);
            }
            kb_str(&b, 1, NULL);
            if (q == 0) { /* tag 0 CurrentLeader: node ids only */
                kb_uvarint(&b, 1);
                kb_uvarint(&b, 0);
                kb_uvarint(&b, 9);
                kb_i32(&b, 2);
                kb_i32(&b, 5);
                kb_uvarint(&b, 0);
            } else {
                kb_tags(&b, p->unknown);
            }
        }
        kb_tags(&b, p->unknown);
    }
    kb_i32(&b, 0);
    endpoints_tag(&b, mode, p);
    return b;
}

static kb_t fetch(int v, int mode, const params_t *p)
{
    (void)v;
    kb_t b = {0};
    static uint8_t records[3000];
    for (size_t i = 0; i < sizeof records; i++) records[i] = (uint8_t)(i * 7);
    kb_i32(&b, 42);
    kb_tags(&b, p->unknown);
    kb_i32(&b, 0);
    kb_i16(&b, 0);
    kb_i32(&b, 12345);
    kb_array(&b, 1, p->topics);
    for (int t = 0; t < p->topics; t++) {
        kb_uuid(&b, t);
        kb_array(&b, 1, p->topics);
        for (int q = 0; q < p->topics; q++) {
            kb_i32(&b, q);
            kb_i16(&b, 0);
            kb_i64(&b, 500);
            kb_i64(&b, 500);
            kb_i64(&b, 0);
            if (q % 2) {
                kb_uvarint(&b, 0); /* null AbortedTransactions */
            } else {
                kb_array(&b, 1, 1);
                kb_i64(&b, 77);
                kb_i64(&b, 10);
                kb_tags(&b, 0);
            }
            kb_i32(&b, -1);
            if (q == 2)
                kb_uvarint(&b, 0); /* null records */
            else
                kb_bytes(&b, 1, records, (int32_t)(q * 997 % sizeof records));
            kb_tags(&b, p->unknown);
        }
        kb_tags(&b, p->unknown);
    }
    endpoints_tag(&b, mode, p);
    return b;
}

static kb_t share(int v, int mode, const params_t *p, int is_fetch)
{
    kb_t b = {0};
    kb_i32(&b, 42);
    kb_tags(&b, p->unknown);
    kb_i32(&b, 0);
    kb_i16(&b, 0);
    kb_str(&b, 1, NULL);
    if (is_fetch && v >= 1) kb_i32(&b, 30000);
    kb_array(&b, 1, p->topics);
    for (int t = 0; t < p->topics; t++) {
        kb_uuid(&b, t);
        kb_array(&b, 1, p->topics);
        for (int q = 0; q < p->topics; q++) {
            kb_i32(&b, q);
            kb_i16(&b, 0);
            kb_str(&b, 1, NULL);
            if (is_fetch) {
                kb_i16(&b, 0);
                kb_str(&b, 1, q ? NULL : "ack failed");
            }
            kb_i32(&b, 1);
            kb_i32(&b, 4);
            kb_tags(&b, 0);
            if (is_fetch) {
                kb_bytes(&b, 1, "recordbytes", q == 1 ? 11 : 0);
                kb_array(&b, 1, 1);
                kb_i64(&b, 0);
                kb_i64(&b, 9);
                kb_i16(&b, 1);
                kb_tags(&b, 0);
            }
            kb_tags(&b, p->unknown);
        }
        kb_tags(&b, p->unknown);
    }
    brokers(&b, mode, 1, 1, 0, p);
    kb_tags(&b, p->unknown);
    return b;
}

static kb_t describe_quorum(int v, int mode, const params_t *p)
{
    (void)v;
    kb_t b = {0};
    kb_i32(&b, 42);
    kb_tags(&b, p->unknown);
    kb_i16(&b, 0);
    kb_str(&b, 1, NULL);
    kb_array(&b, 1, 1);
    kb_str(&b, 1, "__cluster_metadata");
    kb_array(&b, 1, 1);
    kb_i32(&b, 0);
    kb_i16(&b, 0);
    kb_str(&b, 1, NULL);
    kb_i32(&b, 1);
    kb_i32(&b, 3);
    kb_i64(&b, 100);
    for (int list = 0; list < 2; list++) {
        kb_array(&b, 1, list ? 0 : p->brokers);
        for (int i = 0; i < (list ? 0 : p->brokers); i++) {
            kb_i32(&b, i + 1);
            kb_uuid(&b, i);
            kb_i64(&b, 100);
            kb_i64(&b, -1);
            kb_i64(&b, -1);
            kb_tags(&b, p->unknown);
        }
    }
    kb_tags(&b, p->unknown);
    kb_tags(&b, p->unknown);
    kb_array(&b, 1, p->brokers);
    for (int i = 0; i < p->brokers; i++) {
        kb_i32(&b, i + 1);
        kb_array(&b, 1, 1);
        kb_str(&b, 1, "CONTROLLER");
        kb_str(&b, 1, host_for(mode, i + 1));
        kb_i16(&b, port_for(mode, i + 1));
        kb_tags(&b, p->unknown);
        kb_tags(&b, p->unknown);
    }
    kb_tags(&b, p->unknown);
    return b;
}

/* ---- running the codec --------------------------------------------------- */

typedef struct {
    kb_t out;
    int pending_for; /* node id answered "not known yet" until cleared */
    int lookups;
} sink_t;

static int test_lookup(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out)
{
    sink_t *s = ctx;
    (void)frame;
    s->lookups++;
    if (a->node_id == s->pending_for) return KR_PENDING;
    out->host = host_for(PUBLIC, a->node_id);
    out->host_len = strlen(out->host);
    out->port = port_for(PUBLIC, a->node_id);
    return KR_DONE;
}

static int test_emit(void *ctx, const uint8_t *p, size_t len, void *owned)
{
    sink_t *s = ctx;
    kb_raw(&s->out, p, len);
    free(owned);
    return 0;
}

static void stream_setup(kstream_t *ks, sink_t *s, int16_t api, int16_t ver, int frames)
{
    memset(s, 0, sizeof *s);
    s->pending_for = -100;
    kstream_init(ks, KF_MAX_FRAME_DEFAULT);
    ks->lookup = test_lookup;
    ks->lookup_ctx = s;
    ks->emit = test_emit;
    ks->emit_ctx = s;
    for (int i = 0; i < frames; i++) {
        kf_req_t r = {.api_key = api, .api_version = ver, .corr_id = 42 + i, .expects_response = 1};
        kf_queue_push(&ks->queue, &r);
    }
}

/* Feeds `in` in pieces cut at `cuts`; returns 0 or the first error. */
static int feed(kstream_t *ks, const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts)
{
    size_t pos = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        /* A private copy ending at a heap boundary: ASan sees any over-read. */
        uint8_t *piece = malloc(end - pos + 1);
        memcpy(piece, in + pos, end - pos);
        ssize_t rc = kstream_response(ks, piece, end - pos);
        free(piece);
        if (rc < 0) return (int)rc;
        if ((size_t)rc != end - pos) return -99;
        pos = end;
    }
    return 0;
}

/* The whole check for one case: the frame fed whole, at every split point
 * and one byte at a time must give the same, exact bytes. Small frames go
 * twice back to back, so that framing across a frame boundary is covered
 * too (at every split point of the pair). */
static void check_rewrite(int16_t api, int16_t ver, const kb_t *in_body, const kb_t *want_body)
{
    kb_t f1 = kb_frame(in_body), w1 = kb_frame(want_body);
    int copies = f1.len <= 4000 ? 2 : 1;
    kb_t in = {0}, want = {0};
    for (int i = 0; i < copies; i++) {
        /* Each copy answers its own request: correlation ids 42, 43. */
        kw_put32(f1.p + 4, (uint32_t)(42 + i));
        kw_put32(w1.p + 4, (uint32_t)(42 + i));
        kb_raw(&in, f1.p, f1.len);
        kb_raw(&want, w1.p, w1.len);
    }
    kw_put32(w1.p + 4, 42);

    kstream_t ks;
    sink_t s;
    stream_setup(&ks, &s, api, ver, copies);
    int rc = feed(&ks, in.p, in.len, NULL, 0);
    if (rc != 0 || s.out.len != want.len || memcmp(s.out.p, want.p, want.len) != 0) {
        fprintf(stderr, "  api %d v%d: rc=%d (%s), out %zu bytes, want %zu\n", api, ver, rc,
                ks.error ? ks.error : "-", s.out.len, want.len);
        CHECK(0);
    }
    /* The output scans clean: only public addresses are left. */
    ks_scan_t sc = {0};
    if (ks_needs_scan(api, ver) && api != KAFKA_API_VERSIONS) {
        CHECK(ks_scan(&sc, api, ver, s.out.p, w1.len) == 0);
        for (uint32_t i = 0; i < sc.n_addrs; i++) {
            const char *h = host_for(PUBLIC, sc.addrs[i].node_id);
            CHECK(sc.addrs[i].host_len == strlen(h) &&
                  memcmp(s.out.p + sc.addrs[i].host_str_off, h, strlen(h)) == 0);
            CHECK(sc.addrs[i].port == port_for(PUBLIC, sc.addrs[i].node_id));
        }
    }
    ks_free(&sc);
    kstream_free(&ks);
    kb_free(&s.out);

    for (size_t cut = 0; cut <= in.len && !unit_current_failed; cut++) {
        stream_setup(&ks, &s, api, ver, copies);
        size_t cuts[1] = {cut};
        rc = feed(&ks, in.p, in.len, cuts, 1);
        if (rc != 0 || s.out.len != want.len || memcmp(s.out.p, want.p, want.len) != 0) {
            fprintf(stderr, "  api %d v%d: split at %zu differs\n", api, ver, cut);
            CHECK(0);
        }
        kstream_free(&ks);
        kb_free(&s.out);
    }
    size_t *cuts = malloc(in.len * sizeof *cuts);
    for (size_t i = 0; i < in.len; i++) cuts[i] = i + 1;
    stream_setup(&ks, &s, api, ver, copies);
    rc = feed(&ks, in.p, in.len, cuts, in.len);
    CHECK(rc == 0 && s.out.len == want.len && memcmp(s.out.p, want.p, want.len) == 0);
    kstream_free(&ks);
    kb_free(&s.out);
    free(cuts);
    kb_free(&f1);
    kb_free(&w1);
    kb_free(&in);
    kb_free(&want);
}

typedef kb_t (*builder_fn)(int v, int mode, const params_t *p);

static const params_t shapes[] = {
    {3, 2, 0, 2},   /* three brokers, mixed racks */
    {1, 1, 1, 1},   /* unknown tags everywhere */
    {0, 0, 0, 0},   /* empty arrays */
    {130, 2, 1, 3}, /* a large broker list: its count takes a 2-byte varint */
};

static void check_api(int16_t api, int vmin, int vmax, builder_fn build)
{
    for (int lp = 0; lp < 2; lp++) {
        long_public = lp;
        for (int v = vmin; v <= vmax; v++) {
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
                kb_t in = build(v, INTERNAL, &shapes[i]);
                kb_t want = build(v, PUBLIC, &shapes[i]);
                check_rewrite(api, (int16_t)v, &in, &want);
                kb_free(&in);
                kb_free(&want);
            }
        }
    }
    long_public = 0;
}

static kb_t share_fetch(int v, int mode, const params_t *p) { return share(v, mode, p, 1); }
static kb_t share_ack(int v, int mode, const params_t *p) { return share(v, mode, p, 0); }

static void metadata_v0_v13(void) { check_api(KAFKA_METADATA, 0, 13, metadata); }
static void find_coordinator_v0_v6(void) { check_api(KAFKA_FIND_COORDINATOR, 0, 6, find_coordinator); }
static void describe_cluster_v0_v2(void) { check_api(KAFKA_DESCRIBE_CLUSTER, 0, 2, describe_cluster); }
static void produce_v10_v13(void) { check_api(KAFKA_PRODUCE, 10, 13, produce); }
static void fetch_v16_v18(void) { check_api(KAFKA_FETCH, 16, 18, fetch); }
static void share_fetch_v0_v1(void) { check_api(KAFKA_SHARE_FETCH, 0, 1, share_fetch); }
static void share_acknowledge_v0_v1(void) { check_api(KAFKA_SHARE_ACKNOWLEDGE, 0, 1, share_ack); }
static void describe_quorum_v2(void) { check_api(KAFKA_DESCRIBE_QUORUM, 2, 2, describe_quorum); }

/* ---- untouched paths --------------------------------------------------------- */

/* Feeds one frame that needs no rewrite; checks it comes out as it went in
 * and reports how the stream handled it (frames buffered whole / rewritten). */
static void check_unchanged(int16_t api, int16_t ver, const kb_t *f, uint64_t *passed,
                            uint64_t *rewritten)
{
    kstream_t ks;
    sink_t s;
    stream_setup(&ks, &s, api, ver, 1);
    CHECK(feed(&ks, f->p, f->len, NULL, 0) == 0);
    CHECK_MEM(s.out.p, s.out.len, f->p, f->len);
    CHECK(ks.frame == NULL);
    *passed = ks.frames_passed;
    *rewritten = ks.frames_rewritten;
    kstream_free(&ks);
    kb_free(&s.out);
}

static void unrewritten_apis_stream_through(void)
{
    /* Produce v9 and Fetch v15 carry no NodeEndpoints; OffsetCommit and a
     * vendor key never carry addresses: all pass as views of the input. */
    const int16_t cases[][2] = {{KAFKA_PRODUCE, 9}, {KAFKA_FETCH, 15}, {8, 8}, {10001, 3}};
    for (size_t i = 0; i < 4; i++) {
        kb_t body = {0};
        kb_i32(&body, 42);
        for (int k = 0; k < 1000; k++) kb_i8(&body, k);
        kb_t f = kb_frame(&body);
        uint64_t passed, rewritten;
        check_unchanged(cases[i][0], cases[i][1], &f, &passed, &rewritten);
        CHECK(passed == 0 && rewritten == 0); /* streamed, never buffered */
        kb_free(&f);
        kb_free(&body);
    }
}

static void fetch_without_endpoints_is_not_reencoded(void)
{
    params_t p = {0, 0, 0, 3};
    kb_t body = fetch(16, INTERNAL, &p);
    kb_t f = kb_frame(&body);
    uint64_t passed, rewritten;
    check_unchanged(KAFKA_FETCH, 16, &f, &passed, &rewritten);
    CHECK(passed == 1 && rewritten == 0); /* buffered and scanned, sent as it came */
    kb_free(&f);
    kb_free(&body);
}

static void large_frames_read_in_place(void)
{
    /* A Fetch v16 response with NodeEndpoints and 60 KiB of records: after
     * its header, the bytes are "read" straight into the buffer the stream
     * offers, as the proxy does, and the result is the same rewrite. */
    params_t p = {3, 1, 0, 12};
    kb_t in = fetch(16, INTERNAL, &p), want = fetch(16, PUBLIC, &p);
    kb_t fin = kb_frame(&in), fwant = kb_frame(&want);
    CHECK(fin.len > 50000);
    kstream_t ks;
    sink_t s;
    stream_setup(&ks, &s, KAFKA_FETCH, 16, 1);
    size_t pos = 0;
    int in_place = 0;
    while (pos < fin.len) {
        uint8_t *dst;
        size_t room, n;
        if (kstream_response_buffer(&ks, &dst, &room)) {
            n = room < 7000 ? room : 7000;
            memcpy(dst, fin.p + pos, n);
            in_place++;
            CHECK(kstream_response(&ks, dst, n) == (ssize_t)n);
        } else {
            n = fin.len - pos < 100 ? fin.len - pos : 100;
            CHECK(kstream_response(&ks, fin.p + pos, n) == (ssize_t)n);
        }
        pos += n;
    }
    CHECK(in_place > 3);
    CHECK_MEM(s.out.p, s.out.len, fwant.p, fwant.len);
    kstream_free(&ks);
    kb_t *bufs[] = {&in, &want, &fin, &fwant, &s.out};
    for (size_t i = 0; i < 5; i++) kb_free(bufs[i]);
}

/* ---- pending addresses ------------------------------------------------------- */

static void pending_address_holds_then_resumes(void)
{
    params_t p = {3, 1, 0, 1};
    kb_t in = metadata(12, INTERNAL, &p), want = metadata(12, PUBLIC, &p);
    kb_t fin = kb_frame(&in), fwant = kb_frame(&want);
    /* A Metadata frame naming node 2 (no tunnel yet), then an OffsetCommit
     * response that must not overtake it. */
    kb_t other = {0};
    kb_i32(&other, 43);
    kb_raw(&other, "after", 5);
    kb_t fother = kb_frame(&other);
    kb_t all = {0};
    kb_raw(&all, fin.p, fin.len);
    kb_raw(&all, fother.p, fother.len);

    kstream_t ks;
    sink_t s;
    stream_setup(&ks, &s, KAFKA_METADATA, 12, 1);
    kf_req_t r2 = {.api_key = 8, .api_version = 8, .corr_id = 43, .expects_response = 1};
    kf_queue_push(&ks.queue, &r2);
    s.pending_for = 2;
    ssize_t used = kstream_response(&ks, all.p, all.len);
    CHECK(used == (ssize_t)fin.len); /* stops right after the waiting frame */
    CHECK(ks.pending && ks.plan.pending_node == 2);
    CHECK(s.out.len == 0); /* nothing emitted, nothing overtook */
    int scans_before = s.lookups;
    CHECK(kstream_resume(&ks) == KR_PENDING); /* still unknown */
    s.pending_for = -100;
    CHECK(kstream_resume(&ks) == KR_DONE);
    CHECK(s.lookups > scans_before);
    CHECK(kstream_response(&ks, all.p + used, all.len - (size_t)used) == (ssize_t)(all.len - (size_t)used));
    kb_t expect = {0};
    kb_raw(&expect, fwant.p, fwant.len);
    kb_raw(&expect, fother.p, fother.len);
    CHECK_MEM(s.out.p, s.out.len, expect.p, expect.len);
    kstream_free(&ks);
    kb_t *bufs[] = {&in, &want, &fin, &fwant, &other, &fother, &all, &expect, &s.out};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) kb_free(bufs[i]);
}

static int feed_one(int16_t api, int16_t ver, const uint8_t *p, size_t len, uint32_t max);

/* ---- ApiVersions -------------------------------------------------------------- */

static kb_t api_versions(int layout, const int16_t (*keys)[3], int n, int err)
{
    kb_t b = {0};
    int flex = layout == 3;
    kb_i32(&b, 42);
    kb_i16(&b, err);
    kb_array(&b, flex, n);
    for (int i = 0; i < n; i++) {
        kb_i16(&b, keys[i][0]);
        kb_i16(&b, keys[i][1]);
        kb_i16(&b, keys[i][2]);
        if (flex) kb_tags(&b, 0);
    }
    if (layout >= 1) kb_i32(&b, 0);
    if (flex) {
        kb_uvarint(&b, 1); /* FinalizedFeaturesEpoch (tag 1) survives */
        kb_uvarint(&b, 1);
        kb_uvarint(&b, 8);
        kb_i64(&b, 99);
    }
    return b;
}

static void api_versions_caps(void)
{
    /* The broker offers newer versions than the codec knows. */
    static const int16_t broker[][3] = {
        {0, 3, 15}, {1, 4, 20}, {3, 0, 14}, {10, 0, 7}, {18, 0, 4}, {60, 0, 3},
        {8, 0, 9},  {55, 0, 2}, {78, 3, 4}, {10001, 0, 50},
    };
    static const int16_t capped[][3] = {
        {0, 3, 13}, {1, 4, 18}, {3, 0, 13}, {10, 0, 6}, {18, 0, 4}, {60, 0, 2},
        {8, 0, 9},  {55, 0, 2}, {10001, 0, 50}, /* ShareFetch 3-4 dropped: min over the cap */
    };
    for (int reqv = 0; reqv <= 4; reqv++) {
        int layout = reqv >= 3 ? 3 : reqv >= 1 ? 1 : 0;
        kb_t in = api_versions(layout, broker, 10, 0);
        kb_t want = api_versions(layout, capped, 9, 0);
        check_rewrite(KAFKA_API_VERSIONS, (int16_t)reqv, &in, &want);
        kb_free(&in);
        kb_free(&want);
    }
    /* §8 fallback: a v3 request answered with a v0 body (UNSUPPORTED_VERSION). */
    kb_t in = api_versions(0, broker, 10, 35);
    kb_t want = api_versions(0, capped, 9, 35);
    check_rewrite(KAFKA_API_VERSIONS, 3, &in, &want);
    kb_free(&in);
    kb_free(&want);
    /* librdkafka's mock answers an unsupported v3+ request with a body in
     * no standard layout: an error answer offers nothing to cap, it passes. */
    static const uint8_t mock[] = {0, 0, 0, 17, 0, 0, 0, 42, 0, 35, 1, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0};
    kb_t mb = {0};
    kb_raw(&mb, mock + 4, sizeof mock - 4);
    check_rewrite(KAFKA_API_VERSIONS, 4, &mb, &mb);
    kb_free(&mb);
    /* The same bytes with no error cannot be capped: the connection fails. */
    uint8_t ok_body[sizeof mock];
    memcpy(ok_body, mock, sizeof mock);
    ok_body[9] = 0;
    CHECK(feed_one(KAFKA_API_VERSIONS, 4, ok_body, sizeof ok_body, KF_MAX_FRAME_DEFAULT) == KF_BAD);
    /* Nothing to cap: the frame passes unchanged. */
    in = api_versions(3, capped, 9, 0);
    check_rewrite(KAFKA_API_VERSIONS, 3, &in, &in);
    kb_free(&in);
}

/* ---- requests ----------------------------------------------------------------- */

static kb_t produce_request(int v, int acks, const char *txn, int32_t corr)
{
    kb_t b = {0};
    int flex = v >= 9;
    kb_i16(&b, 0);
    kb_i16(&b, v);
    kb_i32(&b, corr);
    kb_str(&b, 0, "client-1");
    if (flex) kb_tags(&b, 1);
    if (v >= 3) kb_str(&b, flex, txn);
    kb_i16(&b, acks);
    kb_i32(&b, 30000);
    for (int i = 0; i < 200; i++) kb_i8(&b, i);
    return b;
}

static void requests_queue_and_acks0(void)
{
    kb_t all = {0};
    int expected = 0;
    for (int v = 0; v <= 13; v++) {
        for (int acks = -1; acks <= 1; acks++) {
            kb_t body = produce_request(v, acks, v % 2 ? "txn" : NULL, 1000 + 3 * v + acks + 1);
            kb_t f = kb_frame(&body);
            kb_raw(&all, f.p, f.len);
            expected++; /* acks=0 too, as optional entries */
            kb_free(&f);
            kb_free(&body);
        }
    }
    kb_t meta = {0};
    kb_i16(&meta, 3);
    kb_i16(&meta, 12);
    kb_i32(&meta, 7);
    kb_str(&meta, 0, NULL);
    kb_tags(&meta, 0);
    kb_t fm = kb_frame(&meta);
    kb_raw(&all, fm.p, fm.len);
    expected++;

    size_t cut_step = all.len / 300 + 1;
    for (size_t cut = 0; cut <= all.len; cut += cut_step) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            kstream_t ks;
            kstream_init(&ks, KF_MAX_FRAME_DEFAULT);
            int ok = 1;
            if (bytewise) {
                for (size_t i = 0; i < all.len && ok; i++) ok = kstream_request(&ks, all.p + i, 1) == 0;
            } else {
                ok = kstream_request(&ks, all.p, cut) == 0 &&
                     kstream_request(&ks, all.p + cut, all.len - cut) == 0;
            }
            CHECK(ok);
            CHECK(ks.queue.count == (uint32_t)expected);
            kf_req_t r;
            CHECK(kf_queue_match(&ks.queue, 1000, &r) == 0 && r.api_version == 0); /* v0 acks=-1 */
            /* v0's acks=0 entry is skipped (no answer is due) on the way to v0's
             * acks=1; v13's acks=1 cannot be matched past required requests. */
            CHECK(kf_queue_match(&ks.queue, 1002, &r) == 0 && r.api_version == 0);
            CHECK(ks.queue.count == (uint32_t)expected - 3);
            CHECK(kf_queue_match(&ks.queue, 1000 + 3 * 13 + 2, &r) == KF_BAD);
            CHECK(ks.queue.count == (uint32_t)expected - 3); /* a failed match removes nothing */
            kstream_free(&ks);
            if (bytewise && cut > 0) break;
        }
    }
    kb_free(&all);
    kb_free(&meta);
    kb_free(&fm);
}

static void acks0_entries_are_optional(void)
{
    kf_queue_t q;
    kf_queue_init(&q);
    kf_req_t a0 = {.api_key = 0, .api_version = 9, .corr_id = 1, .expects_response = 0};
    kf_req_t a1 = {.api_key = 0, .api_version = 9, .corr_id = 2, .expects_response = 0};
    kf_req_t m = {.api_key = 3, .api_version = 12, .corr_id = 3, .expects_response = 1};
    kf_queue_push(&q, &a0);
    kf_queue_push(&q, &a1);
    kf_queue_push(&q, &m);
    kf_req_t r;
    CHECK(kf_queue_match(&q, 2, &r) == 0 && r.corr_id == 2); /* a broker that answers acks=0 */
    CHECK(kf_queue_match(&q, 3, &r) == 0 && r.api_key == 3);
    CHECK(q.count == 0);
    /* A full queue of unanswered acks=0 requests still takes more. */
    for (int i = 0; i < KF_QUEUE_MAX + 10; i++) {
        kf_req_t x = {.api_key = 0, .corr_id = 100 + i, .expects_response = 0};
        CHECK(kf_queue_push(&q, &x) == 0);
    }
    CHECK(kf_queue_push(&q, &m) == 0);
    CHECK(kf_queue_match(&q, 3, &r) == 0 && r.api_key == 3); /* skips all of them */
    /* A required request is never skipped. */
    kf_queue_push(&q, &m);
    CHECK(kf_queue_match(&q, 4, &r) == KF_BAD);
    kf_queue_free(&q);
}

static void queue_refuses_the_1025th_request_that_expects_a_response(void)
{
    kf_queue_t q;
    kf_queue_init(&q);
    for (int i = 0; i < KF_QUEUE_MAX; i++) {
        kf_req_t r = {.api_key = 3, .corr_id = i, .expects_response = 1};
        CHECK(kf_queue_push(&q, &r) == 0);
    }
    kf_req_t more = {.api_key = 3, .corr_id = KF_QUEUE_MAX, .expects_response = 1};
    CHECK(kf_queue_push(&q, &more) == KF_BAD);
    CHECK(q.count == KF_QUEUE_MAX);
    kf_queue_free(&q);
}

/* The ring starts empty (an idle connection's queue holds no memory) and
 * grows from KF_QUEUE_MIN entries while wrapped around: order survives. */
static void queue_grows_in_order_while_wrapped(void)
{
    kf_queue_t q;
    kf_queue_init(&q);
    CHECK(q.items == NULL && q.cap == 0);
    int32_t next_in = 0, next_out = 0;
    kf_req_t r;
    for (int i = 0; i < KF_QUEUE_MIN; i++) {
        kf_req_t x = {.api_key = 3, .corr_id = next_in++, .expects_response = 1};
        CHECK(kf_queue_push(&q, &x) == 0);
    }
    CHECK(q.cap == KF_QUEUE_MIN);
    for (int i = 0; i < KF_QUEUE_MIN / 2 + 1; i++)
        CHECK(kf_queue_match(&q, next_out++, &r) == 0 && r.corr_id == next_out - 1);
    for (int i = 0; i < 3 * KF_QUEUE_MIN; i++) { /* wraps, then grows twice */
        kf_req_t x = {.api_key = 3, .corr_id = next_in++, .expects_response = 1};
        CHECK(kf_queue_push(&q, &x) == 0);
    }
    CHECK(q.cap == 4 * KF_QUEUE_MIN);
    while (next_out < next_in) CHECK(kf_queue_match(&q, next_out++, &r) == 0 && r.corr_id == next_out - 1);
    CHECK(q.count == 0);
    kf_queue_free(&q);
}

/* Issue 13: Produce acks=0 and then Metadata, both with correlation id 7.
 * Kafka never answers the first, so the Metadata response would have been
 * matched to it and passed on unscanned. The second request is refused. */
static void reused_correlation_id_is_refused(void)
{
    kb_t produce = produce_request(3, 0, NULL, 7);
    kb_t meta = {0};
    kb_i16(&meta, 3);
    kb_i16(&meta, 1);
    kb_i32(&meta, 7);
    kb_str(&meta, 0, "client-1");
    kb_i32(&meta, -1);
    kb_t fp = kb_frame(&produce), fm = kb_frame(&meta);
    kstream_t ks;
    kstream_init(&ks, KF_MAX_FRAME_DEFAULT);
    CHECK(kstream_request(&ks, fp.p, fp.len) == 0 && ks.queue.count == 1);
    CHECK(kstream_request(&ks, fm.p, fm.len) == KF_BAD);
    CHECK(ks.error && strstr(ks.error, "reuses correlation id 7") != NULL);
    CHECK(ks.queue.count == 1);
    kstream_free(&ks);

    /* The queue alone: any entry still queued holds its id, optional or not. */
    kf_queue_t q;
    kf_queue_init(&q);
    kf_req_t a0 = {.api_key = 0, .corr_id = 7, .expects_response = 0};
    kf_req_t m = {.api_key = 3, .api_version = 1, .corr_id = 7, .expects_response = 1};
    CHECK(kf_queue_push(&q, &a0) == 0);
    CHECK(kf_queue_push(&q, &m) == KF_DUPLICATE);
    kf_req_t r;
    CHECK(kf_queue_match(&q, 7, &r) == 0 && r.api_key == 0); /* a broker that answers acks=0 */
    CHECK(kf_queue_push(&q, &m) == 0); /* the id is free again */
    CHECK(kf_queue_match(&q, 7, &r) == 0 && r.api_key == 3);
    kf_queue_free(&q);
    kb_free(&produce);
    kb_free(&meta);
    kb_free(&fp);
    kb_free(&fm);
}

static void sasl_handshake_v0_refused(void)
{
    kb_t req = {0};
    kb_i16(&req, 17);
    kb_i16(&req, 0);
    kb_i32(&req, 9);
    kb_str(&req, 0, "kcat");
    kb_str(&req, 0, "PLAIN");
    kb_t f = kb_frame(&req);
    kstream_t ks;
    sink_t s;
    stream_setup(&ks, &s, 0, 0, 0);
    CHECK(kstream_request(&ks, f.p, f.len) == 0);
    /* The broker's own answer is replaced by UNSUPPORTED_VERSION. */
    kb_t resp = {0};
    kb_i32(&resp, 9);
    kb_i16(&resp, 0);
    kb_array(&resp, 0, 1);
    kb_str(&resp, 0, "PLAIN");
    kb_t fr = kb_frame(&resp);
    CHECK(feed(&ks, fr.p, fr.len, NULL, 0) == 0);
    static const uint8_t want[] = {0, 0, 0, 10, 0, 0, 0, 9, 0, 35, 0, 0, 0, 0};
    CHECK_MEM(s.out.p, s.out.len, want, sizeof want);
    kstream_free(&ks);
    kb_t *bufs[] = {&req, &f, &resp, &fr, &s.out};
    for (size_t i = 0; i < 5; i++) kb_free(bufs[i]);
}

/* ---- malformed input ------------------------------------------------------------- */

static int feed_one(int16_t api, int16_t ver, const uint8_t *p, size_t len, uint32_t max)
{
    kstream_t ks;
    sink_t s;
    stream_setup(&ks, &s, api, ver, 1);
    ks.max_frame = max;
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    ssize_t rc = kstream_response(&ks, copy, len);
    free(copy);
    int err = rc < 0 ? (int)rc : 0;
    CHECK(err == 0 || ks.error != NULL);
    kstream_free(&ks);
    kb_free(&s.out);
    return err;
}

static void truncated_anywhere(void)
{
    /* Every prefix of the body, with a size prefix that claims exactly it:
     * each that ends before the last internal address is over (host and
     * port) must be a clean error - never accepted, never a crash or an
     * over-read. The scanners stop after the last address a response can
     * hold, so a cut in the tail past it (topics of a Metadata answer) is
     * passed on unread, for the client to judge. */
    params_t p = {3, 2, 1, 2};
    builder_fn builders[] = {metadata, find_coordinator, describe_cluster, produce, fetch,
                             share_fetch, share_ack, describe_quorum};
    int16_t apis[] = {3, 10, 60, 0, 1, 78, 79, 55};
    int16_t vers[] = {12, 4, 1, 11, 16, 1, 1, 2};
    for (size_t k = 0; k < 8; k++) {
        kb_t body = builders[k](vers[k], INTERNAL, &p);
        static const char tail[] = "cluster.internal";
        size_t addr_end = 0; /* just past the last internal host and its port */
        for (size_t i = 0; i + sizeof tail - 1 <= body.len; i++)
            if (memcmp(body.p + i, tail, sizeof tail - 1) == 0) addr_end = i + sizeof tail - 1 + 4;
        CHECK(addr_end > 0);
        size_t accepted = 0;
        for (size_t cut = 4; cut < addr_end; cut++) {
            kb_t part = {0};
            kb_raw(&part, body.p, cut);
            kb_t f = kb_frame(&part);
            if (feed_one(apis[k], vers[k], f.p, f.len, KF_MAX_FRAME_DEFAULT) == 0) {
                fprintf(stderr, "  api %d v%d: a body cut at %zu of %zu was accepted\n", apis[k],
                        vers[k], cut, body.len);
                accepted++;
            }
            kb_free(&f);
            kb_free(&part);
        }
        CHECK(accepted == 0);
        kb_free(&body);
    }
}

static void named_malformed_cases(void)
{
    /* negative frame size */
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 42};
    CHECK(feed_one(3, 12, neg, sizeof neg, KF_MAX_FRAME_DEFAULT) == KF_BAD);
    /* over the cap: rejected from the size alone, before the body */
    static const uint8_t big[] = {0x00, 0x10, 0x00, 0x01, 0, 0, 0, 42};
    CHECK(feed_one(3, 12, big, 4, 1 << 20) == KF_BAD);
    /* TLS bytes where a size should be */
    static const uint8_t tls[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50, 0x00};
    kstream_t ks;
    sink_t s;
    stream_setup(&ks, &s, 3, 12, 1);
    CHECK(kstream_response(&ks, tls, sizeof tls) == KF_BAD);
    CHECK(ks.error && strstr(ks.error, "TLS"));
    kstream_free(&ks);
    /* correlation id mismatch */
    kb_t body = {0};
    kb_i32(&body, 41);
    kb_i16(&body, 0);
    kb_t f = kb_frame(&body);
    stream_setup(&ks, &s, 8, 8, 1);
    CHECK(kstream_response(&ks, f.p, f.len) == KF_BAD);
    CHECK(strstr(ks.error, "correlation") != NULL);
    kstream_free(&ks);
    kb_free(&f);
    kb_free(&body);
    /* a response with no request at all */
    stream_setup(&ks, &s, 8, 8, 0);
    static const uint8_t lone[] = {0, 0, 0, 4, 0, 0, 0, 42};
    CHECK(kstream_response(&ks, lone, sizeof lone) == KF_BAD);
    kstream_free(&ks);

    /* Metadata v12 with: a negative host length (non-compact v8), a lying
     * broker count, an over-long varint. */
    kb_t b = {0};
    kb_i32(&b, 42);
    kb_i32(&b, 0);
    kb_array(&b, 0, 1);
    kb_i32(&b, 1);
    kb_i16(&b, -5);
    f = kb_frame(&b);
    CHECK(feed_one(3, 8, f.p, f.len, KF_MAX_FRAME_DEFAULT) == KF_BAD);
    kb_free(&f);
    kb_free(&b);
    kb_i32(&b, 42);
    kb_i32(&b, 0);
    kb_array(&b, 0, 1000000);
    kb_i32(&b, 1);
    f = kb_frame(&b);
    CHECK(feed_one(3, 8, f.p, f.len, KF_MAX_FRAME_DEFAULT) == KF_BAD);
    kb_free(&f);
    kb_free(&b);
    kb_i32(&b, 42);
    kb_uvarint(&b, 0);
    kb_i32(&b, 0);
    kb_raw(&b, "\xff\xff\xff\xff\xff\x01", 6); /* 6-byte varint count */
    f = kb_frame(&b);
    CHECK(feed_one(3, 12, f.p, f.len, KF_MAX_FRAME_DEFAULT) == KF_BAD);
    kb_free(&f);
    kb_free(&b);
    /* A tagged NodeEndpoints whose size lies about its content. */
    params_t p = {2, 1, 0, 1};
    kb_t good = produce(11, INTERNAL, &p);
    good.p[good.len - 1] ^= 0x40; /* corrupt the last rack length */
    f = kb_frame(&good);
    CHECK(feed_one(0, 11, f.p, f.len, KF_MAX_FRAME_DEFAULT) == KF_BAD);
    kb_free(&f);
    kb_free(&good);
    /* Two tag-0 NodeEndpoints (tags must ascend): found by fuzzing. */
    {
        params_t one = {1, 0, 0, 0};
        kb_t dup = produce(11, INTERNAL, &one);
        kb_t nodes = {0};
        brokers(&nodes, INTERNAL, 1, 1, 0, &one);
        /* Replace the final tag section (count 1, tag 0) by count 2, tag 0 twice. */
        size_t tag_start = dup.len - (1 + 1 + 1 + nodes.len);
        dup.len = tag_start;
        kb_uvarint(&dup, 2);
        for (int t = 0; t < 2; t++) {
            kb_uvarint(&dup, 0);
            kb_uvarint(&dup, (uint32_t)nodes.len);
            kb_raw(&dup, nodes.p, nodes.len);
        }
        f = kb_frame(&dup);
        CHECK(feed_one(0, 11, f.p, f.len, KF_MAX_FRAME_DEFAULT) == KF_BAD);
        kb_free(&f);
        kb_free(&dup);
        kb_free(&nodes);
    }
    /* A version newer than the codec knows, for a rewritten API. */
    params_t q = {1, 0, 0, 0};
    kb_t m = metadata(13, INTERNAL, &q);
    f = kb_frame(&m);
    CHECK(feed_one(3, 14, f.p, f.len, KF_MAX_FRAME_DEFAULT) == KS_UNSUPPORTED);
    kb_free(&f);
    kb_free(&m);
    /* Requests: negative size, over the cap, TLS ClientHello. */
    stream_setup(&ks, &s, 0, 0, 0);
    CHECK(kstream_request(&ks, neg, sizeof neg) == KF_BAD);
    kstream_free(&ks);
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    stream_setup(&ks, &s, 0, 0, 0);
    CHECK(kstream_request(&ks, hello, sizeof hello) == KF_BAD);
    CHECK(strstr(ks.error, "TLS") != NULL);
    kstream_free(&ks);
    static const uint8_t tiny[] = {0, 0, 0, 3, 0, 0, 0};
    stream_setup(&ks, &s, 0, 0, 0);
    CHECK(kstream_request(&ks, tiny, sizeof tiny) == KF_BAD);
    kstream_free(&ks);
}

static void varint_limits(void)
{
    static const uint8_t five[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    kw_cur c = kw_init(five, 5);
    CHECK(kw_uvarint(&c) == 0xffffffffu && !c.err);
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0x10};
    c = kw_init(over, 5);
    kw_uvarint(&c);
    CHECK(c.err);
    static const uint8_t cut[] = {0x80, 0x80};
    c = kw_init(cut, 2);
    kw_uvarint(&c);
    CHECK(c.err);
    uint8_t buf[5];
    uint32_t vals[] = {0, 127, 128, 16383, 16384, 0xffffffffu};
    for (size_t i = 0; i < 6; i++) {
        size_t n = kw_put_uvarint(buf, vals[i]);
        CHECK(n == kw_uvarint_len(vals[i]));
        c = kw_init(buf, n);
        CHECK(kw_uvarint(&c) == vals[i] && c.p == c.end);
    }
}

/* --seeds DIR: writes the inputs these tests build as libFuzzer seed
 * corpora (fuzz/corpus/<target>/), so the fuzzers start from valid frames. */
static void write_file(const char *dir, const char *target, int n, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/seed-%03d", dir, target, n);
    FILE *f = fopen(path, "wb");
    if (f == NULL) return;
    fwrite(p, 1, len, f);
    fclose(f);
}

static void write_seeds(const char *dir)
{
    static const struct {
        const char *name;
        int16_t api;
        int vmin, vmax;
        builder_fn build;
    } t[] = {
        {"scan_3", 3, 0, 13, metadata},        {"scan_10", 10, 0, 6, find_coordinator},
        {"scan_60", 60, 0, 2, describe_cluster}, {"scan_0", 0, 10, 13, produce},
        {"scan_1", 1, 16, 18, fetch},          {"scan_78", 78, 0, 1, share_fetch},
        {"scan_79", 79, 0, 1, share_ack},      {"scan_55", 55, 2, 2, describe_quorum},
    };
    static const int16_t response_apis[] = {0, 1, 3, 10, 18, 55, 60, 78, 79, 8};
    int nresp = 0;
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        int n = 0;
        for (int v = t[k].vmin; v <= t[k].vmax; v++) {
            kb_t b = t[k].build(v, INTERNAL, &shapes[n % 3]);
            kb_t seed = {0};
            kb_i16(&seed, v);
            kb_raw(&seed, b.p, b.len);
            write_file(dir, t[k].name, n++, seed.p, seed.len);
            kb_t resp = {0};
            uint8_t idx = 0;
            while (response_apis[idx] != t[k].api) idx++;
            uint8_t hdr[4] = {idx, (uint8_t)v, (uint8_t)(b.len / 2), 0};
            kb_raw(&resp, hdr, 4);
            kb_t f = kb_frame(&b);
            kb_raw(&resp, f.p, f.len);
            write_file(dir, "response", nresp++, resp.p, resp.len);
            kb_free(&resp);
            kb_free(&f);
            kb_free(&seed);
            kb_free(&b);
        }
    }
    static const int16_t keys[][3] = {{0, 3, 15}, {3, 0, 14}, {78, 3, 4}};
    for (int layout = 0; layout <= 3; layout += layout == 1 ? 2 : 1) {
        kb_t b = api_versions(layout, keys, 3, 0);
        kb_t seed = {0};
        kb_i16(&seed, layout);
        kb_raw(&seed, b.p, b.len);
        write_file(dir, "scan_18", layout, seed.p, seed.len);
        kb_free(&seed);
        kb_free(&b);
    }
    for (int v = 0; v <= 13; v += 3) {
        kb_t body = produce_request(v, v % 2, "txn", 1000 + v);
        kb_t f = kb_frame(&body);
        write_file(dir, "request", v, f.p, f.len);
        kb_free(&f);
        kb_free(&body);
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
        write_seeds(argv[2]);
        return 0;
    }
    RUN(metadata_v0_v13);
    RUN(find_coordinator_v0_v6);
    RUN(describe_cluster_v0_v2);
    RUN(produce_v10_v13);
    RUN(fetch_v16_v18);
    RUN(share_fetch_v0_v1);
    RUN(share_acknowledge_v0_v1);
    RUN(describe_quorum_v2);
    RUN(unrewritten_apis_stream_through);
    RUN(fetch_without_endpoints_is_not_reencoded);
    RUN(large_frames_read_in_place);
    RUN(pending_address_holds_then_resumes);
    RUN(api_versions_caps);
    RUN(requests_queue_and_acks0);
    RUN(acks0_entries_are_optional);
    RUN(reused_correlation_id_is_refused);
    RUN(queue_refuses_the_1025th_request_that_expects_a_response);
    RUN(queue_grows_in_order_while_wrapped);
    RUN(sasl_handshake_v0_refused);
    RUN(truncated_anywhere);
    RUN(named_malformed_cases);
    RUN(varint_limits);
    UNIT_DONE();
}
