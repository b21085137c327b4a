/* bench/codec.c - the Kafka codec's cost as a ratio to memcpy of the same
 * bytes, measured side by side in one run:
 *
 *   metadata  rewrite a Metadata v12 response with 100 brokers and 10,000
 *             partitions (scan + plan + materialize the output) vs memcpy
 *   fetch     scan a 1 MiB Fetch v16 response (no NodeEndpoints) vs memcpy
 *
 * Each figure is the median of 31 rounds of many iterations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbuild.h"
#include "krewrite.h"
#include "kscan.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int lookup(void *ctx, const ks_addr_t *a, const uint8_t *frame, kr_public_t *out)
{
    (void)ctx;
    (void)frame;
    out->host = "bore.example.com";
    out->host_len = 16;
    out->port = 40000 + a->node_id;
    return KR_DONE;
}

static kb_t metadata_frame(void)
{
    kb_t b = {0};
    kb_i32(&b, 1);
    kb_uvarint(&b, 0);
    kb_i32(&b, 0);
    kb_array(&b, 1, 100);
    for (int i = 0; i < 100; i++) {
        char host[64];
        snprintf(host, sizeof host, "broker-%d.kafka.svc.cluster.local", i);
        kb_i32(&b, i);
        kb_str(&b, 1, host);
        kb_i32(&b, 9092);
        kb_str(&b, 1, "rack-a");
        kb_uvarint(&b, 0);
    }
    kb_str(&b, 1, "cluster");
    kb_i32(&b, 0);
    kb_array(&b, 1, 100);
    for (int t = 0; t < 100; t++) {
        char name[32];
        snprintf(name, sizeof name, "topic-%03d", t);
        kb_i16(&b, 0);
        kb_str(&b, 1, name);
        kb_uuid(&b, t);
        kb_i8(&b, 0);
        kb_array(&b, 1, 100);
        for (int p = 0; p < 100; p++) {
            kb_i16(&b, 0);
            kb_i32(&b, p);
            kb_i32(&b, p % 100);
            kb_i32(&b, 3);
            kb_array(&b, 1, 3);
            for (int r = 0; r < 3; r++) kb_i32(&b, (p + r) % 100);
            kb_array(&b, 1, 3);
            for (int r = 0; r < 3; r++) kb_i32(&b, (p + r) % 100);
            kb_array(&b, 1, 0);
            kb_uvarint(&b, 0);
        }
        kb_i32(&b, 0);
        kb_uvarint(&b, 0);
    }
    kb_uvarint(&b, 0);
    kb_t f = kb_frame(&b);
    kb_free(&b);
    return f;
}

static kb_t fetch_frame(void)
{
    kb_t b = {0};
    static uint8_t records[104857];
    memset(records, 0x5a, sizeof records);
    kb_i32(&b, 1);
    kb_uvarint(&b, 0);
    kb_i32(&b, 0);
    kb_i16(&b, 0);
    kb_i32(&b, 0);
    kb_array(&b, 1, 1);
    kb_uuid(&b, 1);
    kb_array(&b, 1, 10);
    for (int p = 0; p < 10; p++) {
        kb_i32(&b, p);
        kb_i16(&b, 0);
        kb_i64(&b, 1000);
        kb_i64(&b, 1000);
        kb_i64(&b, 0);
        kb_uvarint(&b, 0);
        kb_i32(&b, -1);
        kb_bytes(&b, 1, records, (int32_t)sizeof records);
        kb_uvarint(&b, 0);
    }
    kb_uvarint(&b, 0);
    kb_uvarint(&b, 0);
    kb_t f = kb_frame(&b);
    kb_free(&b);
    return f;
}

/* Median ns per iteration of `fn` over 31 rounds. */
#define MEASURE(result, iters, body)                                                               \
    do {                                                                                           \
        double r_[31];                                                                             \
        for (int k_ = 0; k_ < 31; k_++) {                                                          \
            double t0_ = now_ns();                                                                 \
            for (int i_ = 0; i_ < (iters); i_++) {                                                 \
                body;                                                                              \
            }                                                                                      \
            r_[k_] = (now_ns() - t0_) / (iters);                                                   \
        }                                                                                          \
        qsort(r_, 31, sizeof r_[0], cmp);                                                          \
        result = r_[15];                                                                           \
    } while (0)

int main(void)
{
    ks_scan_t s = {0};
    kr_plan_t plan = {0};
    volatile size_t sinkv = 0;

    kb_t m = metadata_frame();
    uint8_t *out = malloc(m.len * 2);
    double t_copy, t_rewrite, t_scan;
    MEASURE(t_copy, 200, {
        memcpy(out, m.p, m.len);
        sinkv += out[i_ % m.len];
    });
    MEASURE(t_rewrite, 200, {
        ks_scan(&s, 3, 12, m.p, m.len);
        kr_plan(&plan, &s, m.p, m.len, 1u << 30, lookup, NULL);
        kr_materialize(&plan, m.p, m.len, out);
        sinkv += out[i_ % m.len];
    });
    MEASURE(t_scan, 200, {
        ks_scan(&s, 3, 12, m.p, m.len);
        kr_plan(&plan, &s, m.p, m.len, 1u << 30, lookup, NULL);
        sinkv += plan.n;
    });
    printf("| Metadata v12, 100 brokers, 10,000 partitions (%zu bytes) | memcpy %.1f µs | "
           "rewrite %.1f µs (%.2fx memcpy) | scan+plan only %.2f µs (%.3fx) |\n",
           m.len, t_copy / 1e3, t_rewrite / 1e3, t_rewrite / t_copy, t_scan / 1e3, t_scan / t_copy);

    kb_t f = fetch_frame();
    free(out);
    out = malloc(f.len);
    double f_copy, f_scan;
    MEASURE(f_copy, 200, {
        memcpy(out, f.p, f.len);
        sinkv += out[i_ % f.len];
    });
    MEASURE(f_scan, 2000, {
        ks_scan(&s, 1, 16, f.p, f.len);
        sinkv += s.n_addrs;
    });
    printf("| Fetch v16, 10 partitions (%zu bytes) | memcpy %.1f µs | scan %.3f µs (%.2f%% of memcpy) |\n",
           f.len, f_copy / 1e3, f_scan / 1e3, 100 * f_scan / f_copy);

    ks_free(&s);
    kr_free(&plan);
    kb_free(&m);
    kb_free(&f);
    free(out);
    return sinkv == 0xdeadbeef;
}
