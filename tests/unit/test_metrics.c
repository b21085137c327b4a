/* The metrics registry (metrics.h): the exact Prometheus text of each type,
 * label escaping, series removal, the off switch, the failure counters of
 * other stages; and --metrics address parsing (status.h). */
#include <stdlib.h>

#include "metrics.h"
#include "status.h"
#include "unit.h"

static int has(const char *text, const char *want)
{
    if (strstr(text, want)) return 1;
    fprintf(stderr, "  missing: %s\n", want);
    return 0;
}

static void off_means_no_op(void)
{
    CHECK(!metrics_enabled());
    metrics_family_t *f = metrics_family("x_total", "x", METRICS_COUNTER, NULL, NULL);
    CHECK(f == NULL);
    metrics_series_t *s = metrics_series(f, NULL);
    CHECK(s == NULL);
    metrics_add(s, 1);
    metrics_observe_us(s, 1);
    metrics_remove(s);
    metrics_tls_failure("bad certificate");
    size_t len = 99;
    char *text = metrics_render(&len);
    CHECK(text != NULL && len == 0);
    free(text);
}

static void renders_each_type(void)
{
    metrics_enable();
    static const char *const dir[] = {"port", "direction", NULL};
    static const uint64_t buckets[] = {1000, 250000, 0};
    uint64_t kept = 1048576;
    metrics_family_t *c = metrics_family("t_bytes_total", "Bytes.", METRICS_COUNTER, dir, NULL);
    metrics_series_t *a = metrics_series(c, (const char *const[]){"9000", "in"});
    metrics_counter_ref(c, (const char *const[]){"9000", "out"}, &kept);
    metrics_add(a, 5);
    metrics_add(a, 7);
    metrics_series_t *g = metrics_series(metrics_family("t_up", "Up.", METRICS_GAUGE, NULL, NULL), NULL);
    metrics_set(g, -3);
    metrics_family_t *h = metrics_family("t_seconds", "Time.", METRICS_HISTOGRAM,
                                         (const char *const[]){"api", NULL}, buckets);
    metrics_series_t *hs = metrics_series(h, (const char *const[]){"Pro\"d\\u\nce"});
    metrics_observe_us(hs, 500);     /* <= 1 ms */
    metrics_observe_us(hs, 1000);    /* <= 1 ms: bounds are inclusive */
    metrics_observe_us(hs, 200000);  /* <= 250 ms */
    metrics_observe_us(hs, 9000000); /* +Inf */
    metrics_tls_failure("bad certificate");
    metrics_tls_failure("bad certificate");
    metrics_auth_failure("invalid credentials");
    size_t len;
    char *t = metrics_render(&len);
    CHECK(t != NULL && strlen(t) == len);
    CHECK(has(t, "# HELP t_bytes_total Bytes.\n# TYPE t_bytes_total counter\n"
                 "t_bytes_total{port=\"9000\",direction=\"in\"} 12\n"
                 "t_bytes_total{port=\"9000\",direction=\"out\"} 1048576\n"));
    CHECK(has(t, "# TYPE t_up gauge\nt_up -3\n"));
    CHECK(has(t, "# TYPE t_seconds histogram\n"
                 "t_seconds_bucket{api=\"Pro\\\"d\\\\u\\nce\",le=\"0.001000\"} 2\n"
                 "t_seconds_bucket{api=\"Pro\\\"d\\\\u\\nce\",le=\"0.250000\"} 3\n"
                 "t_seconds_bucket{api=\"Pro\\\"d\\\\u\\nce\",le=\"+Inf\"} 4\n"
                 "t_seconds_sum{api=\"Pro\\\"d\\\\u\\nce\"} 9.201500\n"
                 "t_seconds_count{api=\"Pro\\\"d\\\\u\\nce\"} 4\n"));
    CHECK(has(t, "bore_tls_failures_total{reason=\"bad certificate\"} 2\n"));
    CHECK(has(t, "bore_auth_failures_total{reason=\"invalid credentials\"} 1\n"));
    free(t);
    /* a removed series is gone; a family without series is not rendered */
    metrics_remove(a);
    metrics_remove(g);
    t = metrics_render(&len);
    CHECK(strstr(t, "direction=\"in\"") == NULL && strstr(t, "t_up") == NULL);
    CHECK(has(t, "direction=\"out\"} 1048576"));
    free(t);
    metrics_free();
}

static void reasons_are_capped(void)
{
    metrics_enable();
    char r[32];
    for (int i = 0; i < 100; i++) {
        snprintf(r, sizeof r, "reason %d", i);
        metrics_auth_failure(r);
    }
    size_t len;
    char *t = metrics_render(&len);
    int lines = 0;
    for (const char *p = t; (p = strstr(p, "bore_auth_failures_total{")) != NULL; p++) lines++;
    CHECK(lines == 33);
    CHECK(has(t, "bore_auth_failures_total{reason=\"other\"} 68\n"));
    free(t);
    metrics_free();
}

static void parses_metrics_addresses(void)
{
    char ip[64];
    uint16_t port;
    CHECK(status_parse_addr("9100", ip, sizeof ip, &port) == 0 && strcmp(ip, "127.0.0.1") == 0 &&
          port == 9100);
    CHECK(status_parse_addr("0.0.0.0:80", ip, sizeof ip, &port) == 0 && strcmp(ip, "0.0.0.0") == 0 &&
          port == 80);
    CHECK(status_parse_addr("[::1]:9100", ip, sizeof ip, &port) == 0 && strcmp(ip, "::1") == 0);
    CHECK(status_parse_addr("localhost:9100", ip, sizeof ip, &port) != 0);
    CHECK(status_parse_addr("65536", ip, sizeof ip, &port) != 0);
    CHECK(status_parse_addr("", ip, sizeof ip, &port) != 0);
    CHECK(status_parse_addr("1.2.3.4:", ip, sizeof ip, &port) != 0);
    CHECK(status_parse_addr("-1", ip, sizeof ip, &port) != 0);
    CHECK(status_parse_addr(":9100", ip, sizeof ip, &port) != 0);
}

int main(void)
{
    RUN(off_means_no_op);
    RUN(renders_each_type);
    RUN(reasons_are_capped);
    RUN(parses_metrics_addresses);
    UNIT_DONE();
}
