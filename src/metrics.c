/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_MAX ((size_t)64 * 1024 * 1024) /* a runaway registry is cut, not grown forever */
#define COLLECT_MAX 8
#define REASONS_MAX 32

struct metrics_family {
    metrics_family_t *next;
    char *name, *help;
    enum metrics_type type;
    const char *labels[METRICS_LABELS_MAX];
    size_t n_labels;
    uint64_t buckets_us[METRICS_BUCKETS_MAX];
    size_t n_buckets;
    metrics_series_t *series, *tail; /* in creation order */
};

static struct {
    int enabled;
    metrics_family_t *families, *last;
    struct {
        metrics_collect_fn fn;
        void *ctx;
    } collect[COLLECT_MAX];
    size_t n_collect;
    metrics_family_t *tls, *auth;
} reg;

void metrics_enable(void) { reg.enabled = 1; }
int metrics_enabled(void) { return reg.enabled; }

metrics_family_t *metrics_family(const char *name, const char *help, enum metrics_type type,
                                 const char *const *labels, const uint64_t *buckets_us)
{
    if (!reg.enabled) return NULL;
    metrics_family_t *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->name = strdup(name);
    f->help = strdup(help);
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->type = type;
    for (; labels && labels[f->n_labels] && f->n_labels < METRICS_LABELS_MAX; f->n_labels++)
        f->labels[f->n_labels] = labels[f->n_labels];
    for (; buckets_us && buckets_us[f->n_buckets] && f->n_buckets < METRICS_BUCKETS_MAX; f->n_buckets++)
        f->buckets_us[f->n_buckets] = buckets_us[f->n_buckets];
    if (reg.last)
        reg.last->next = f;
    else
        reg.families = f;
    reg.last = f;
    return f;
}

char *metrics_escape(const char *v, char *out, size_t cap)
{
    size_t o = 0;
    for (; *v && o + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
    return out;
}

metrics_series_t *metrics_series(metrics_family_t *f, const char *const *values)
{
    if (f == NULL) return NULL;
    metrics_series_t *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    char buf[1024];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < f->n_labels; i++) {
        char esc[256];
        metrics_escape(values[i] ? values[i] : "", esc, sizeof esc);
        int w = snprintf(buf + used, sizeof buf - used, "%s%s=\"%s\"", i ? "," : "", f->labels[i], esc);
        if (w < 0 || (size_t)w >= sizeof buf - used) break;
        used += (size_t)w;
    }
    s->labels = strdup(buf);
    if (f->type == METRICS_HISTOGRAM) s->buckets = calloc(f->n_buckets + 1, sizeof *s->buckets);
    if (s->labels == NULL || (f->type == METRICS_HISTOGRAM && s->buckets == NULL)) {
        free(s->labels);
        free(s->buckets);
        free(s);
        return NULL;
    }
    s->family = f;
    if (f->tail)
        f->tail->next = s;
    else
        f->series = s;
    f->tail = s;
    return s;
}

metrics_series_t *metrics_counter_ref(metrics_family_t *f, const char *const *values,
                                      const uint64_t *ref)
{
    metrics_series_t *s = metrics_series(f, values);
    if (s) s->ref = ref;
    return s;
}

static void series_free(metrics_series_t *s)
{
    free(s->labels);
    free(s->buckets);
    free(s);
}

void metrics_remove(metrics_series_t *s)
{
    if (s == NULL) return;
    metrics_family_t *f = s->family;
    metrics_series_t *prev = NULL;
    for (metrics_series_t *e = f->series; e; prev = e, e = e->next) {
        if (e != s) continue;
        if (prev)
            prev->next = s->next;
        else
            f->series = s->next;
        if (f->tail == s) f->tail = prev;
        break;
    }
    series_free(s);
}

void metrics_observe_us(metrics_series_t *s, uint64_t us)
{
    if (s == NULL || s->buckets == NULL) return;
    const metrics_family_t *f = s->family;
    size_t i = 0;
    while (i < f->n_buckets && us > f->buckets_us[i]) i++;
    s->buckets[i]++;
    s->count++;
    s->sum_us += us;
}

void metrics_on_collect(metrics_collect_fn fn, void *ctx)
{
    if (!reg.enabled || reg.n_collect >= COLLECT_MAX) return;
    reg.collect[reg.n_collect].fn = fn;
    reg.collect[reg.n_collect].ctx = ctx;
    reg.n_collect++;
}

void metrics_collect(void)
{
    for (size_t i = 0; i < reg.n_collect; i++) reg.collect[i].fn(reg.collect[i].ctx);
}

/* ---- rendering ----------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} out_t;

static void out_printf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(out_t *o, const char *fmt, ...)
{
    if (o->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)w < o->cap - o->len) {
            o->len += (size_t)w;
            return;
        }
        size_t cap = o->cap * 2;
        while (cap - o->len <= (size_t)w) cap *= 2;
        char *np = cap <= RENDER_MAX ? realloc(o->p, cap) : NULL;
        if (np == NULL) {
            o->failed = 1;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

static void render_us(out_t *o, uint64_t us)
{
    out_printf(o, "%llu.%06llu", (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
}

/* `name{labels[,extra]}` */
static void series_name(out_t *o, const char *name, const char *suffix, const char *labels,
                        const char *extra)
{
    int has = labels[0] != '\0', ex = extra != NULL;
    out_printf(o, "%s%s%s%s%s%s%s", name, suffix, has || ex ? "{" : "", labels,
               has && ex ? "," : "", ex ? extra : "", has || ex ? "}" : "");
}

static void render_family(out_t *o, const metrics_family_t *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
    for (const metrics_series_t *s = f->series; s; s = s->next) {
        if (f->type == METRICS_COUNTER) {
            series_name(o, f->name, "", s->labels, NULL);
            out_printf(o, " %llu\n", (unsigned long long)(s->ref ? *s->ref : s->value));
        } else if (f->type == METRICS_GAUGE) {
            series_name(o, f->name, "", s->labels, NULL);
            out_printf(o, " %lld\n", (long long)s->gauge);
        } else {
            uint64_t cum = 0;
            for (size_t i = 0; i <= f->n_buckets; i++) {
                char le[48];
                cum += s->buckets[i];
                if (i < f->n_buckets)
                    snprintf(le, sizeof le, "le=\"%llu.%06llu\"",
                             (unsigned long long)(f->buckets_us[i] / 1000000),
                             (unsigned long long)(f->buckets_us[i] % 1000000));
                else
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                series_name(o, f->name, "_bucket", s->labels, le);
                out_printf(o, " %llu\n", (unsigned long long)cum);
            }
            series_name(o, f->name, "_sum", s->labels, NULL);
            out_printf(o, " ");
            render_us(o, s->sum_us);
            out_printf(o, "\n");
            series_name(o, f->name, "_count", s->labels, NULL);
            out_printf(o, " %llu\n", (unsigned long long)s->count);
        }
    }
}

char *metrics_render(size_t *len)
{
    metrics_collect();
    out_t o = {malloc(16384), 0, 16384, 0};
    if (o.p == NULL) return NULL;
    o.p[0] = '\0';
    for (const metrics_family_t *f = reg.families; f; f = f->next)
        if (f->series) render_family(&o, f);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}

/* ---- failure counters for other stages ----------------------------------- */

static void count_reason(metrics_family_t **fam, const char *name, const char *help, const char *reason)
{
    if (!reg.enabled) return;
    static const char *const labels[] = {"reason", NULL};
    if (*fam == NULL && (*fam = metrics_family(name, help, METRICS_COUNTER, labels, NULL)) == NULL)
        return;
    char esc[256];
    metrics_escape(reason ? reason : "", esc, sizeof esc);
    size_t n = 0;
    metrics_series_t *other = NULL;
    for (metrics_series_t *s = (*fam)->series; s; s = s->next, n++) {
        /* labels are `reason="<esc>"` */
        size_t el = strlen(esc);
        if (strncmp(s->labels + 8, esc, el) == 0 && strcmp(s->labels + 8 + el, "\"") == 0) {
            s->value++;
            return;
        }
        if (strcmp(s->labels, "reason=\"other\"") == 0) other = s;
    }
    if (n >= REASONS_MAX) {
        if (other == NULL) other = metrics_series(*fam, (const char *const[]){"other"});
        metrics_add(other, 1);
        return;
    }
    metrics_add(metrics_series(*fam, (const char *const[]){reason ? reason : ""}), 1);
}

void metrics_tls_failure(const char *reason)
{
    count_reason(&reg.tls, "bore_tls_failures_total", "TLS handshakes that failed, by reason", reason);
}

void metrics_auth_failure(const char *reason)
{
    count_reason(&reg.auth, "bore_auth_failures_total",
                 "Client authentications (SASL gate) that failed, by reason", reason);
}

void metrics_free(void)
{
    metrics_family_t *f = reg.families;
    while (f) {
        metrics_family_t *next = f->next;
        while (f->series) {
            metrics_series_t *s = f->series;
            f->series = s->next;
            series_free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
        f = next;
    }
    memset(&reg, 0, sizeof reg);
}
