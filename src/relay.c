/* relay.c - see relay.h. */
#include "relay.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define LOG_TARGET "bore::relay"

/* 128 KiB per read: large enough that loopback throughput is bound by the
 * kernel copy, not by syscalls (an 8 KiB relay loses 2-4x). */
#define RELAY_BUF_SIZE (128 * 1024)
#define POOL_MAX 64

struct half {
    uv_tcp_t *src, *dst;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    char *inflight; /* pooled buffer owned by wreq, or NULL */
    int eof;        /* src sent FIN */
    int done;       /* dst shut down after src's EOF */
};

typedef struct relay {
    list_t link;
    uv_tcp_t *h[2];
    relay_release_cb release[2];
    struct half dir[2]; /* dir[0]: h[0] -> h[1]; dir[1]: h[1] -> h[0] */
    int closing;
    int closed;
} relay_t;

static char *pool[POOL_MAX];
static int pool_len;

static char *pool_get(void) { return pool_len > 0 ? pool[--pool_len] : malloc(RELAY_BUF_SIZE); }

static void pool_put(char *p)
{
    if (p == NULL) return;
    if (pool_len < POOL_MAX)
        pool[pool_len++] = p;
    else
        free(p);
}

void relay_pool_drain(void)
{
    while (pool_len > 0) free(pool[--pool_len]);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    char *p = pool_get();
    *buf = uv_buf_init(p, p ? RELAY_BUF_SIZE : 0);
}

static void on_close(uv_handle_t *h)
{
    relay_t *r = h->data;
    int i = (uv_tcp_t *)h == r->h[0] ? 0 : 1;
    r->release[i]((uv_tcp_t *)h);
    if (++r->closed == 2) free(r);
}

static void relay_close(relay_t *r)
{
    if (r->closing) return;
    r->closing = 1;
    list_remove(&r->link);
    for (int i = 0; i < 2; i++) uv_close((uv_handle_t *)r->h[i], on_close);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void maybe_finish(relay_t *r)
{
    if (r->dir[0].done && r->dir[1].done) relay_close(r);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct half *d = req->data;
    relay_t *r = req->handle->data;
    if (status < 0) {
        if (status != UV_ECANCELED) log_debug("shutdown failed: %s", uv_strerror(status));
        relay_close(r);
        return;
    }
    d->done = 1;
    maybe_finish(r);
}

static void on_write(uv_write_t *req, int status)
{
    struct half *d = req->data;
    relay_t *r = req->handle->data;
    pool_put(d->inflight);
    d->inflight = NULL;
    if (status < 0) {
        if (status != UV_ECANCELED) log_debug("write failed: %s", uv_strerror(status));
        relay_close(r);
        return;
    }
    if (!r->closing && !d->eof) {
        int rc = uv_read_start((uv_stream_t *)d->src, on_alloc, on_read);
        if (rc != 0) relay_close(r);
    }
}

/* Sends p[0..n) on d->dst: directly if the socket takes it all, otherwise
 * the rest is queued and reading from d->src pauses until it is written. */
static void forward(relay_t *r, struct half *d, char *p, size_t n)
{
    uv_buf_t b = uv_buf_init(p, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)d->dst, &b, 1);
    if (w == (int)n) {
        pool_put(p);
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        pool_put(p);
        log_debug("write failed: %s", uv_strerror(w));
        relay_close(r);
        return;
    }
    if (w < 0) w = 0;
    b = uv_buf_init(p + w, (unsigned)(n - (size_t)w));
    d->inflight = p;
    d->wreq.data = d;
    int rc = uv_write(&d->wreq, (uv_stream_t *)d->dst, &b, 1, on_write);
    if (rc != 0) {
        d->inflight = NULL;
        pool_put(p);
        relay_close(r);
        return;
    }
    uv_read_stop((uv_stream_t *)d->src);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    relay_t *r = s->data;
    struct half *d = &r->dir[(uv_tcp_t *)s == r->h[0] ? 0 : 1];
    if (nread > 0) {
        forward(r, d, buf->base, (size_t)nread);
        return;
    }
    pool_put(buf->base);
    if (nread == 0) return;
    uv_read_stop(s);
    if (nread != UV_EOF) {
        log_debug("read failed: %s", uv_strerror((int)nread));
        relay_close(r);
        return;
    }
    d->eof = 1;
    d->sreq.data = d;
    /* libuv runs the shutdown after any queued write. */
    if (uv_shutdown(&d->sreq, (uv_stream_t *)d->dst, on_shutdown) != 0) relay_close(r);
}

int relay_start(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                relay_release_cb release_b, const uint8_t *first, size_t len)
{
    if (len > RELAY_BUF_SIZE) return UV_EINVAL;
    relay_t *r = calloc(1, sizeof *r);
    if (r == NULL) return UV_ENOMEM;
    list_init(&r->link);
    list_push(set, &r->link);
    r->h[0] = a;
    r->h[1] = b;
    r->release[0] = release_a;
    r->release[1] = release_b;
    a->data = b->data = r;
    r->dir[0].src = a;
    r->dir[0].dst = b;
    r->dir[1].src = b;
    r->dir[1].dst = a;

    if (uv_read_start((uv_stream_t *)b, on_alloc, on_read) != 0) goto fail;
    if (len > 0) {
        char *p = pool_get();
        if (p == NULL) goto fail;
        memcpy(p, first, len);
        forward(r, &r->dir[0], p, len);
        if (r->closing || r->dir[0].inflight != NULL) return 0;
    }
    if (uv_read_start((uv_stream_t *)a, on_alloc, on_read) != 0) goto fail;
    return 0;
fail:
    relay_close(r);
    return 0;
}

void relay_close_all(list_t *set)
{
    while (!list_empty(set)) relay_close(LIST_ENTRY(set->next, relay_t, link));
}
