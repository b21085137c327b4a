/* metrics.h - the process's metrics registry and its Prometheus text
 * rendering (exposition format 0.0.4).
 *
 * A family (name, help, type, label names) holds series, one per set of
 * label values. Series are created when their object appears (a tunnel
 * opens, an API key is first seen) and removed when it goes; on the data
 * path a counter is a plain `s->value += n` through metrics_add: no lookup,
 * no allocation, no lock (the process is one libuv loop).
 *
 * A series may instead point at a counter its owner already keeps
 * (metrics_counter_ref: relay_stats_t bytes), read only when rendering, or
 * be a gauge its owner refreshes from the collect hooks, run just before
 * each rendering. Histograms have fixed buckets, given in microseconds and
 * rendered in seconds.
 *
 * Every function tolerates a NULL series or family, so owners need no
 * "metrics on?" test: with --metrics off nothing is registered
 * (metrics_enabled() is 0) and every call is a no-op. */
#ifndef BORE_METRICS_H
#define BORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

#define METRICS_LABELS_MAX 4
#define METRICS_BUCKETS_MAX 16

typedef struct metrics_family metrics_family_t;
typedef struct metrics_series metrics_series_t;

struct metrics_series {
    metrics_series_t *next;
    metrics_family_t *family;
    char *labels;          /* rendered: `a="1",b="x"` (escaped), or "" */
    uint64_t value;        /* counter */
    int64_t gauge;         /* gauge */
    const uint64_t *ref;   /* counter kept by the owner, or NULL */
    uint64_t *buckets;     /* histogram: counts per bucket (not cumulative) */
    uint64_t count, sum_us;
};

/* Turns the registry on (the command's --metrics). Before that, every
 * registration returns NULL. */
void metrics_enable(void);
int metrics_enabled(void);

/* A family. `labels`: up to METRICS_LABELS_MAX names, NULL-terminated (or
 * NULL). `buckets_us`: upper bounds for a histogram, ascending, ending
 * with 0 (+Inf is implicit). Families live until metrics_free. */
metrics_family_t *metrics_family(const char *name, const char *help, enum metrics_type type,
                                 const char *const *labels, const uint64_t *buckets_us);

/* A series with the given label values (as many as the family's names).
 * NULL on OOM or when metrics are off. */
metrics_series_t *metrics_series(metrics_family_t *f, const char *const *values);
/* The same with the value read from *ref when rendering (a counter). */
metrics_series_t *metrics_counter_ref(metrics_family_t *f, const char *const *values,
                                      const uint64_t *ref);
/* Unlinks and frees a series (NULL: nothing). */
void metrics_remove(metrics_series_t *s);

static inline void metrics_add(metrics_series_t *s, uint64_t n)
{
    if (s) s->value += n;
}
static inline void metrics_set(metrics_series_t *s, int64_t v)
{
    if (s) s->gauge = v;
}
void metrics_observe_us(metrics_series_t *s, uint64_t us);

/* Called before every rendering, in registration order, to refresh gauges. */
typedef void (*metrics_collect_fn)(void *ctx);
void metrics_on_collect(metrics_collect_fn fn, void *ctx);
void metrics_collect(void);

/* The Prometheus text of every family (with series) into a malloc'd,
 * NUL-terminated string; *len its length. NULL on OOM. Runs the collect
 * hooks first. */
char *metrics_render(size_t *len);

/* Counters for stages added by other modules (TLS, SASL gate): one series
 * per distinct `reason` (at most 32; later ones count as "other"). Safe to
 * call with metrics off. */
void metrics_tls_failure(const char *reason);
void metrics_auth_failure(const char *reason);

/* Frees the registry (at exit, for leak checkers). */
void metrics_free(void);

/* Escapes a label value (\\, \", \n) into out; returns out. */
char *metrics_escape(const char *v, char *out, size_t cap);

#endif
