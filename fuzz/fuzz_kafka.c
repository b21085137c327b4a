/* fuzz_kafka.c - libFuzzer targets for the Kafka codec, one binary per
 * target (chosen with -DTARGET=...):
 *
 *   request   the request framer (kstream_request), fed in two pieces
 *   response  the response framer + rewriter (kstream_response) for an API
 *             and version taken from the first 4 bytes, fed in two pieces
 *   scan_<N>  ks_scan + kr_plan of API key N on one frame; the first 2
 *             bytes pick the version
 *   interleave  one connection: requests and responses interleaved as the
 *             input says, each response answering a request of the fuzzer's
 *             choice (or none), as a hostile broker might
 *
 * The properties: no crash, no over-read (ASan), and a rewritten frame
 * scans clean again with the same number of addresses. For interleave:
 * every byte delivered to the client belongs to a response that was matched
 * to the very request it answers and, when that request's API carries
 * addresses, scanned (and rewritten) whole with that request's layout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kframe.h"
#include "krewrite.h"
#include "kscan.h"
#include "kstream.h"
#include "kwire.h"

static int lookup(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out)
{
    (void)ctx;
    (void)frame;
    if (a->node_id % 7 == 3) return KR_PENDING;
    out->host = "public.example.com";
    out->host_len = 18;
    out->port = 40000 + a->node_id % 1000;
    return KR_DONE;
}

static int sink(void *ctx, const uint8_t *p, size_t len, void *owned)
{
    (void)ctx;
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i += 4096) x ^= p[i];
    free(owned);
    return 0;
}

#if defined(TARGET_REQUEST)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kstream_t ks;
    kstream_init(&ks, 1 << 20);
    size_t cut = size ? data[0] % (size + 1) : 0;
    if (kstream_request(&ks, data, cut) == 0) kstream_request(&ks, data + cut, size - cut);
    kstream_free(&ks);
    return 0;
}
#elif defined(TARGET_RESPONSE)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) return 0;
    kstream_t ks;
    kstream_init(&ks, 1 << 20);
    ks.lookup = lookup;
    ks.emit = sink;
    static const int16_t apis[] = {0, 1, 3, 10, 18, 55, 60, 78, 79, 8};
    /* Four requests of one API; the first one's correlation id is the
     * first frame's, the others follow it (ids in flight are unique). */
    kf_req_t r = {.api_key = apis[data[0] % 10], .api_version = (int16_t)(data[1] % 20),
                  .corr_id = size >= 12 ? (int32_t)kw_be32(data + 8) : 0, .expects_response = 1};
    for (int i = 0; i < 4; i++, r.corr_id = (int32_t)((uint32_t)r.corr_id + 1))
        kf_queue_push(&ks.queue, &r);
    size_t cut = data[2] % (size - 4 + 1);
    const uint8_t *p = data + 4;
    size_t n = size - 4;
    ssize_t used = kstream_response(&ks, p, cut);
    if (used >= 0 && (size_t)used == cut) kstream_response(&ks, p + cut, n - cut);
    kstream_free(&ks);
    return 0;
}
#elif defined(TARGET_SCAN)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int16_t version = (int16_t)(kw_be16(data) % 20);
    size_t len = size - 2 + 4;
    uint8_t *frame = malloc(len);
    kw_put32(frame, (uint32_t)(size - 2));
    memcpy(frame + 4, data + 2, size - 2);
    ks_scan_t s = {0};
    kr_plan_t plan = {0};
    if (ks_scan(&s, TARGET_SCAN, version, frame, len) == 0 &&
        kr_plan(&plan, &s, frame, len, 1 << 24, lookup, NULL) == KR_DONE && plan.n > 0) {
        size_t out_len = kr_output_len(&plan, len);
        uint8_t *out = malloc(out_len);
        kr_materialize(&plan, frame, len, out);
        uint32_t n = s.n_addrs;
        if (TARGET_SCAN != KAFKA_API_VERSIONS) {
            /* The rewrite is a valid frame of the same shape. */
            if (ks_scan(&s, TARGET_SCAN, version, out, out_len) != 0 || s.n_addrs != n) abort();
        }
        free(out);
    }
    ks_free(&s);
    kr_free(&plan);
    free(frame);
    return 0;
}
#elif defined(TARGET_INTERLEAVE)
/* The harness's own model of the connection: the requests the codec
 * accepted, in order, and which of them a response truly answers. */
#define MODEL_MAX (KF_QUEUE_MAX + 1)

typedef struct {
    kstream_t ks;
    kf_req_t model[MODEL_MAX];
    uint32_t n_model;
    const kf_req_t *truth; /* the request the response being fed answers, or NULL */
    /* the client's view of the output: frames parsed back */
    uint8_t hdr[8];
    size_t hdr_len;
    uint32_t frame_left;
    int frames_started;
} conn_t;

static int lookup_done(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out)
{
    (void)ctx;
    (void)frame;
    out->host = "public.example.com";
    out->host_len = 18;
    out->port = 40000 + a->node_id % 1000;
    return KR_DONE;
}

static void violation(const char *why)
{
    fprintf(stderr, "property violated: %s\n", why);
    abort();
}

static int check_emit(void *ctx, const uint8_t *p, size_t len, void *owned)
{
    conn_t *c = ctx;
    const kf_req_t *cur = &c->ks.cur;
    while (len > 0) {
        if (c->frame_left == 0) {
            size_t take = 8 - c->hdr_len < len ? 8 - c->hdr_len : len;
            memcpy(c->hdr + c->hdr_len, p, take);
            c->hdr_len += take;
            p += take;
            len -= take;
            if (c->hdr_len < 8) break;
            c->hdr_len = 0;
            c->frame_left = kw_be32(c->hdr) - 4;
            c->frames_started++;
            if (c->truth == NULL) violation("a response that answers no request reached the client");
            if ((int32_t)kw_be32(c->hdr + 4) != c->truth->corr_id)
                violation("delivered under another correlation id");
            if (cur->api_key != c->truth->api_key || cur->api_version != c->truth->api_version)
                violation("matched to a request it does not answer");
            continue;
        }
        size_t n = len < c->frame_left ? len : c->frame_left;
        c->frame_left -= (uint32_t)n;
        p += n;
        len -= n;
    }
    free(owned);
    return 0;
}

static const struct {
    int16_t key, max_version;
} apis[] = {{KAFKA_PRODUCE, 13}, {KAFKA_FETCH, 18}, {KAFKA_METADATA, 13},
            {KAFKA_FIND_COORDINATOR, 6}, {KAFKA_API_VERSIONS, 4}, {KAFKA_DESCRIBE_CLUSTER, 2},
            {KAFKA_SASL_HANDSHAKE, 1}, {8, 8}};

typedef struct {
    const uint8_t *p, *end;
} input_t;

static uint8_t next(input_t *in) { return in->p < in->end ? *in->p++ : 0; }

/* A request frame of the chosen API; Produce carries its Acks (§5). */
static size_t build_request(input_t *in, kf_req_t *r, uint8_t *out)
{
    uint8_t a = next(in);
    r->api_key = apis[a % (sizeof apis / sizeof apis[0])].key;
    r->api_version = (int16_t)(next(in) % (apis[a % (sizeof apis / sizeof apis[0])].max_version + 1));
    r->corr_id = next(in) % 8; /* few ids: reuse is frequent */
    int16_t acks = next(in) & 1 ? 0 : -1;
    size_t n = 4;
    kw_put16(out + n, (uint16_t)r->api_key);
    kw_put16(out + n + 2, (uint16_t)r->api_version);
    kw_put32(out + n + 4, (uint32_t)r->corr_id);
    kw_put16(out + n + 8, 1);
    out[n + 10] = 'f';
    n += 11;
    if (r->api_key == KAFKA_PRODUCE) {
        int flex = r->api_version >= 9;
        if (flex) out[n++] = 0; /* header tags */
        if (r->api_version >= 3) {
            if (flex) {
                out[n++] = 0; /* TransactionalId: null */
            } else {
                kw_put16(out + n, 0xffff);
                n += 2;
            }
        }
        kw_put16(out + n, (uint16_t)acks);
        n += 2;
    }
    kw_put32(out, (uint32_t)(n - 4));
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static conn_t c;
    memset(&c, 0, sizeof c);
    kstream_init(&c.ks, 1 << 20);
    c.ks.lookup = lookup_done;
    c.ks.emit = check_emit;
    c.ks.emit_ctx = &c;
    input_t in = {data, data + size};
    uint8_t buf[8 + 256 + 64];
    while (in.p < in.end) {
        uint8_t op = next(&in);
        if (op % 3 != 2) {
            kf_req_t r;
            size_t n = build_request(&in, &r, buf);
            size_t cut = next(&in) % (n + 1);
            if (kstream_request(&c.ks, buf, cut) != 0 || kstream_request(&c.ks, buf + cut, n - cut) != 0)
                break; /* the proxy closes the connection */
            const kf_queue_t *q = &c.ks.queue;
            r.expects_response = q->items[(q->head + q->count - 1) % q->cap].expects_response;
            if (q->count > c.n_model) {
                if (c.n_model == KF_QUEUE_MAX) violation("queue grew past its cap");
                c.model[c.n_model++] = r;
            } else { /* the oldest unanswered acks=0 entry made room */
                if (c.n_model == 0 || c.model[0].expects_response) violation("a request was dropped");
                memmove(c.model, c.model + 1, (c.n_model - 1) * sizeof c.model[0]);
                c.model[c.n_model - 1] = r;
            }
            continue;
        }
        /* A response: to model[target] (a hostile broker may pick any), or
         * with an arbitrary id - which answers the request holding that id,
         * if one does: the id is all a response says about itself. */
        uint32_t target = c.n_model ? next(&in) % (c.n_model + 1) : 0;
        int32_t corr = target < c.n_model ? c.model[target].corr_id : next(&in) % 8;
        for (uint32_t i = 0; target == c.n_model && i < c.n_model; i++)
            if (c.model[i].corr_id == corr) target = i;
        for (uint32_t i = 0; i < c.n_model; i++)
            if (i != target && c.model[i].corr_id == corr)
                violation("two requests in flight share a correlation id");
        size_t body = next(&in);
        if (body > (size_t)(in.end - in.p)) body = (size_t)(in.end - in.p);
        kw_put32(buf, (uint32_t)(4 + body));
        kw_put32(buf + 4, (uint32_t)corr);
        memcpy(buf + 8, in.p, body);
        in.p += body;
        c.truth = target < c.n_model ? &c.model[target] : NULL;
        uint64_t scanned = c.ks.frames_passed + c.ks.frames_rewritten;
        int started = c.frames_started;
        size_t len = 8 + body, cut = next(&in) % (len + 1);
        ssize_t u1 = kstream_response(&c.ks, buf, cut);
        if (u1 != (ssize_t)cut) break; /* the proxy closes the connection */
        ssize_t u2 = kstream_response(&c.ks, buf + cut, len - cut);
        if (u2 != (ssize_t)(len - cut)) break;
        if (c.frames_started != started + 1 || c.frame_left != 0 || c.hdr_len != 0)
            violation("a response was not delivered whole, exactly once");
        const kf_req_t *t = c.truth;
        int needs = ks_needs_scan(t->api_key, t->api_version) && !c.ks.cur.intercept;
        if (c.ks.frames_passed + c.ks.frames_rewritten != scanned + (uint64_t)needs)
            violation("delivered without the scan its request's layout requires");
        for (uint32_t i = 0; i < target; i++)
            if (c.model[i].expects_response) violation("a response overtook a request that expects one");
        memmove(c.model, c.model + target + 1, (c.n_model - target - 1) * sizeof c.model[0]);
        c.n_model -= target + 1;
        if (c.ks.queue.count != c.n_model) violation("queue and model disagree");
        c.truth = NULL;
    }
    kstream_free(&c.ks);
    return 0;
}
#else
#error "define TARGET_REQUEST, TARGET_RESPONSE, TARGET_INTERLEAVE or TARGET_SCAN=<api key>\"
#endif
