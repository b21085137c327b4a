/* relay.c - see relay.h. */
#include "relay.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"
#include "splice.h"

#define LOG_TARGET "bore::relay"

/* Read buffers come in size classes from 4 KiB to 128 KiB. A direction
 * starts with the smallest and doubles while data flows - each read filled
 * its buffer and was written at once - up to 128 KiB, large enough that
 * loopback throughput is bound by the kernel copy, not by syscalls (an
 * 8 KiB relay loses 2-4x). A write that stalls sends it back to 4 KiB. A
 * buffer is held only while its bytes wait to be written: an idle relay
 * holds none. */
#define BUF_MIN_SHIFT 12
#define BUF_MAX_SHIFT 17
#define BUF_CLASSES (BUF_MAX_SHIFT - BUF_MIN_SHIFT + 1)
#define RELAY_BUF_SIZE ((size_t)1 << BUF_MAX_SHIFT)
#define POOL_BYTES (512 * 1024)       /* idle buffers kept per class for reuse */
#define TRIM_AFTER (16 * 1024 * 1024) /* bytes freed between malloc_trim calls */
#define TRIM_IDLE (256 * 1024)        /* ... or once no relay is left */

/* Output waiting to be written: views (of the input buffer) and owned
 * blocks, in order. Two of these per direction: one being filled, one
 * in flight. */
typedef struct {
    uv_buf_t *bufs;
    size_t n, cap;
    void **owned;
    size_t n_owned, cap_owned;
    uv_buf_t small[2]; /* a plain relay never needs more: no allocation */
    void *small_owned[2];
} outq_t;

struct half {
    uv_tcp_t *src, *dst;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    relay_filter_fn filter;
    relay_alloc_fn filter_alloc;
    void *filter_ctx;
    char *in;              /* pooled input buffer still referenced, or NULL */
    unsigned in_class;     /* its size class */
    unsigned level;        /* size class of the next read */
    int filled;            /* the last read filled its buffer */
    char *data;            /* the current input: `in`, or the filter's own memory */
    size_t in_off, in_len; /* input not yet given to the filter */
    int foreign;           /* the read in progress goes to the filter's memory */
    uint8_t *plain;        /* the current input when src has a transport: owned */
    int src_closed;        /* the transport saw the peer's close: EOF once the input is out */
    outq_t q[2];
    int cur;           /* q[cur] is being filled; q[!cur] is in flight while writing */
    int writing;       /* a uv_write is in flight */
    int paused;        /* the filter holds input until relay_continue */
    int want_continue; /* relay_continue arrived while writing */
    int eof;           /* src sent FIN */
    int done;          /* dst shut down after src's EOF */
};

struct relay {
    list_t link;
    uv_tcp_t *h[2];
    relay_release_cb release[2];
    struct half dir[2]; /* dir[0]: h[0] -> h[1]; dir[1]: h[1] -> h[0] */
    relay_end_cb on_end;
    void *user;
    relay_stats_t *stats; /* NULL: not counted */
    relay_transport_t tp[2]; /* tp[i].recv == NULL: h[i] is plain TCP */
    splice_relay_t *sp;   /* the splice path (splice.h) moves the bytes, or NULL */
    int closing;
    int closed;
};

/* ---- buffers: a pool per size class, and the budget ------------------------ */

static char *pool[BUF_CLASSES][POOL_BYTES >> BUF_MIN_SHIFT];
static size_t pool_len[BUF_CLASSES];
static size_t held;                          /* bytes in buffers relays hold */
static size_t budget = RELAY_BUDGET_DEFAULT; /* for buffers above the smallest class */
static size_t freed_since_trim;
static unsigned live; /* relays not yet freed */

static size_t class_size(unsigned c) { return (size_t)1 << (BUF_MIN_SHIFT + c); }

static size_t pool_max(unsigned c) { return POOL_BYTES / class_size(c); }

/* The largest class up to `want` that the budget allows; the smallest is
 * always allowed. */
static unsigned affordable(unsigned want)
{
    while (want > 0 && held + class_size(want) > budget) want--;
    return want;
}

static char *buf_get(unsigned c)
{
    char *p = pool_len[c] > 0 ? pool[c][--pool_len[c]] : malloc(class_size(c));
    if (p != NULL) held += class_size(c);
    return p;
}

/* Returns memory to the system: glibc keeps freed chunks (and, once a
 * 128 KiB block has been freed, serves the next ones from the heap), so
 * without this a burst of relays leaves the process at its peak size. */
static void trim(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    freed_since_trim = 0;
}

static void freed(size_t n)
{
    freed_since_trim += n;
    if (freed_since_trim >= TRIM_AFTER) trim();
}

static void buf_put(char *p, unsigned c)
{
    if (p == NULL) return;
    held -= class_size(c);
    if (pool_len[c] < pool_max(c)) {
        pool[c][pool_len[c]++] = p;
        return;
    }
    free(p);
    freed(class_size(c));
}

void relay_pool_drain(void)
{
    for (unsigned c = 0; c < BUF_CLASSES; c++)
        while (pool_len[c] > 0) free(pool[c][--pool_len[c]]);
    splice_pool_drain();
}

/* The last relay ended. After a burst, the pool and the freed memory go
 * back to the system; one short connection after another (little pooled,
 * little freed) does not pay for a trim each. */
static void idle(void)
{
    size_t pooled = 0;
    for (unsigned c = 0; c < BUF_CLASSES; c++) pooled += pool_len[c] * class_size(c);
    if (pooled + freed_since_trim < TRIM_IDLE) return;
    relay_pool_drain();
    trim();
}

void relay_set_budget(size_t bytes)
{
    budget = bytes;
    splice_set_budget(bytes);
}

size_t relay_buffered(void) { return held + splice_buffered(); }

static void outq_clear(outq_t *q)
{
    for (size_t i = 0; i < q->n_owned; i++) free(q->owned[i]);
    q->n = 0;
    q->n_owned = 0;
}

static void outq_free(outq_t *q)
{
    outq_clear(q);
    if (q->bufs != q->small) free(q->bufs);
    if (q->owned != q->small_owned) free(q->owned);
}

/* Makes room for one more element in an array that starts inline. */
static int outq_grow(void **arr, size_t *cap, void *small, size_t elem)
{
    if (*cap == 0) {
        *arr = small;
        *cap = 2;
        return 0;
    }
    void *p = malloc(*cap * 2 * elem);
    if (p == NULL) return -1;
    memcpy(p, *arr, *cap * elem);
    if (*arr != small) free(*arr);
    *arr = p;
    *cap *= 2;
    return 0;
}

static unsigned class_of(size_t size)
{
    unsigned c = 0;
    while (class_size(c) < size) c++;
    return c;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    relay_t *r = h->data;
    int i = (uv_tcp_t *)h == r->h[0] ? 0 : 1;
    struct half *d = &r->dir[i];
    (void)hint;
    if (d->filter_alloc && !r->tp[i].recv && d->filter_alloc(d->filter_ctx, buf)) {
        d->foreign = 1;
        return;
    }
    unsigned c = affordable(d->level);
    char *p = buf_get(c);
    *buf = uv_buf_init(p, p ? (unsigned)class_size(c) : 0);
}

static void on_close(uv_handle_t *h)
{
    relay_t *r = h->data;
    int i = (uv_tcp_t *)h == r->h[0] ? 0 : 1;
    r->release[i]((uv_tcp_t *)h);
    if (++r->closed < 2) return;
    for (int d = 0; d < 2; d++) {
        buf_put(r->dir[d].in, r->dir[d].in_class);
        free(r->dir[d].plain);
        outq_free(&r->dir[d].q[0]);
        outq_free(&r->dir[d].q[1]);
    }
    if (r->on_end) r->on_end(r->user);
    free(r);
    freed(sizeof *r);
    if (--live == 0) idle();
}

void relay_close(relay_t *r)
{
    if (r->closing) return;
    r->closing = 1;
    list_remove(&r->link);
    if (r->sp != NULL) { /* its poll handles close first, then the sockets */
        splice_close(r->sp);
        return;
    }
    for (int i = 0; i < 2; i++) uv_close((uv_handle_t *)r->h[i], on_close);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void process(relay_t *r, struct half *d);
static void flush(relay_t *r, struct half *d);
static void src_eof(relay_t *r, struct half *d);
static void unseal(relay_t *r, struct half *d, const uint8_t *p, size_t n);

/* The transport of the handle direction d writes to, or NULL. */
static relay_transport_t *dst_tp(relay_t *r, struct half *d)
{
    relay_transport_t *t = &r->tp[d->dst == r->h[0] ? 0 : 1];
    return t->send ? t : NULL;
}

/* Turns the plaintext queued for d's destination into what its transport
 * writes (with any handshake output it has waiting). */
static int seal(relay_t *r, struct half *d)
{
    relay_transport_t *t = dst_tp(r, d);
    outq_t *q = &d->q[d->cur];
    if (t == NULL || (q->n == 0 && !t->pending(t->ctx))) return 0;
    uint8_t *out;
    size_t n;
    if (t->send(t->ctx, q->bufs, q->n, &out, &n) != 0) return -1;
    outq_clear(q);
    if (out) relay_emit(r, (int)(d - r->dir), out, n, out);
    return r->closing ? -1 : 0;
}

/* The transport of d's destination may have output while d has none (a
 * handshake answer): write it now unless a write is in flight (its end
 * flushes again). */
static void kick(relay_t *r, struct half *d)
{
    relay_transport_t *t = dst_tp(r, d);
    if (t && !r->closing && !d->writing && !d->eof && t->pending(t->ctx)) flush(r, d);
}

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

/* Everything queued so far is written: release what it referenced, then
 * read on - unless the filter is paused (input kept) or asked to go on. */
static void written(relay_t *r, struct half *d)
{
    if (r->closing) return;
    if (!d->paused) {
        buf_put(d->in, d->in_class);
        d->in = NULL;
        free(d->plain);
        d->plain = NULL;
    }
    if (d->want_continue) {
        d->want_continue = 0;
        d->paused = 0;
        process(r, d);
        return;
    }
    if (!d->paused && !d->eof && d->src_closed) {
        src_eof(r, d);
        return;
    }
    if (!d->paused && !d->eof) {
        int rc = uv_read_start((uv_stream_t *)d->src, on_alloc, on_read);
        if (rc != 0 && rc != UV_EALREADY) relay_close(r);
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct half *d = req->data;
    relay_t *r = req->handle->data;
    d->writing = 0;
    outq_clear(&d->q[!d->cur]);
    if (status < 0) {
        if (status != UV_ECANCELED) log_debug("write failed: %s", uv_strerror(status));
        relay_close(r);
        return;
    }
    relay_transport_t *t = dst_tp(r, d);
    if (t && !d->eof && t->pending(t->ctx))
        flush(r, d);
    else
        written(r, d);
}

/* Writes the queued output: directly if the socket takes it all, otherwise
 * the rest is queued and reading from d->src pauses until it is written. */
static void flush(relay_t *r, struct half *d)
{
    if (seal(r, d) != 0) {
        relay_close(r);
        return;
    }
    outq_t *q = &d->q[d->cur];
    if (q->n == 0) {
        written(r, d);
        return;
    }
    int w = uv_try_write((uv_stream_t *)d->dst, q->bufs, (unsigned)q->n);
    if (w < 0 && w != UV_EAGAIN) {
        log_debug("write failed: %s", uv_strerror(w));
        relay_close(r);
        return;
    }
    size_t left = w < 0 ? 0 : (size_t)w, i = 0;
    while (i < q->n && left >= q->bufs[i].len) left -= q->bufs[i++].len;
    if (i == q->n) {
        if (d->filled && d->level < BUF_CLASSES - 1) d->level++; /* data flows: read more */
        d->filled = 0;
        outq_clear(q);
        written(r, d);
        return;
    }
    d->level = 0; /* the destination is slow: hold little while it catches up */
    d->filled = 0;
    q->bufs[i].base += left;
    q->bufs[i].len -= left;
    d->wreq.data = d;
    int rc = uv_write(&d->wreq, (uv_stream_t *)d->dst, q->bufs + i, (unsigned)(q->n - i), on_write);
    if (rc != 0) {
        relay_close(r);
        return;
    }
    d->writing = 1;
    d->cur = !d->cur; /* later output queues behind this write */
    uv_read_stop((uv_stream_t *)d->src);
}

/* Runs the filter (or not) over the input kept in d, then writes. */
static void process(relay_t *r, struct half *d)
{
    size_t n = d->in_len - d->in_off;
    if (d->filter && n > 0) {
        ssize_t used = d->filter(d->filter_ctx, r, (int)(d - r->dir), (uint8_t *)d->data + d->in_off, n);
        if (used < 0) {
            relay_close(r);
            return;
        }
        d->in_off += (size_t)used;
        d->paused = d->in_off < d->in_len;
    } else if (n > 0) {
        relay_emit(r, (int)(d - r->dir), (uint8_t *)d->data + d->in_off, n, NULL);
        d->in_off = d->in_len;
    }
    if (r->closing) return;
    if (d->paused) uv_read_stop((uv_stream_t *)d->src);
    flush(r, d);
}

void relay_emit(relay_t *r, int dir, const uint8_t *p, size_t n, void *owned)
{
    struct half *d = &r->dir[dir];
    outq_t *q = &d->q[d->cur];
    if (r->closing) {
        free(owned);
        return;
    }
    if (owned != NULL) {
        if (q->n_owned == q->cap_owned &&
            outq_grow((void **)&q->owned, &q->cap_owned, q->small_owned, sizeof *q->owned) != 0) {
            free(owned);
            relay_close(r);
            return;
        }
        q->owned[q->n_owned++] = owned;
    }
    if (n == 0) return;
    /* Consecutive views of one buffer become one write buffer. */
    if (owned == NULL && q->n > 0 && q->bufs[q->n - 1].base + q->bufs[q->n - 1].len == (const char *)p) {
        q->bufs[q->n - 1].len += n;
        return;
    }
    if (q->n == q->cap && outq_grow((void **)&q->bufs, &q->cap, q->small, sizeof *q->bufs) != 0) {
        relay_close(r);
        return;
    }
    q->bufs[q->n++] = uv_buf_init((char *)p, (unsigned)n);
}

void relay_continue(relay_t *r, int dir)
{
    struct half *d = &r->dir[dir];
    if (r->closing) return;
    if (d->writing) {
        d->want_continue = 1;
        return;
    }
    d->paused = 0;
    process(r, d);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    relay_t *r = s->data;
    struct half *d = &r->dir[(uv_tcp_t *)s == r->h[0] ? 0 : 1];
    int foreign = d->foreign;
    d->foreign = 0;
    if (nread > 0) {
        if (r->stats) r->stats->bytes[d == &r->dir[1]] += (uint64_t)nread;
        /* Reading only happens with nothing kept and nothing in flight. */
        buf_put(d->in, d->in_class);
        if (r->tp[d - r->dir].recv) {
            d->in = NULL;
            d->filled = (size_t)nread == buf->len;
            unseal(r, d, (const uint8_t *)buf->base, (size_t)nread);
            buf_put(buf->base, class_of(buf->len));
            return;
        }
        d->in = foreign ? NULL : buf->base;
        d->in_class = foreign ? 0 : class_of(buf->len);
        d->filled = (size_t)nread == buf->len;
        d->data = buf->base;
        d->in_off = 0;
        d->in_len = (size_t)nread;
        process(r, d);
        return;
    }
    if (!foreign) buf_put(buf->base, class_of(buf->len));
    if (nread == 0) return;
    uv_read_stop(s);
    if (nread != UV_EOF) {
        log_debug("read failed: %s", uv_strerror((int)nread));
        relay_close(r);
        return;
    }
    src_eof(r, d);
}

/* d's source has ended: shut d's destination down after what is queued
 * (with a transport: after its own close, e.g. close_notify). */
static void src_eof(relay_t *r, struct half *d)
{
    relay_transport_t *t = dst_tp(r, d);
    uv_read_stop((uv_stream_t *)d->src);
    d->eof = 1;
    if (t && !d->writing) {
        t->shutdown(t->ctx);
        if (seal(r, d) != 0) {
            relay_close(r);
            return;
        }
        outq_t *q = &d->q[d->cur];
        if (q->n > 0) {
            d->wreq.data = d;
            if (uv_write(&d->wreq, (uv_stream_t *)d->dst, q->bufs, (unsigned)q->n, on_write) != 0) {
                relay_close(r);
                return;
            }
            d->writing = 1;
            d->cur = !d->cur;
        }
    }
    d->sreq.data = d;
    /* libuv runs the shutdown after any queued write. */
    if (uv_shutdown(&d->sreq, (uv_stream_t *)d->dst, on_shutdown) != 0) relay_close(r);
}

/* Input from a side with a transport: its plaintext becomes d's input, and
 * whatever the transport has to answer (handshake) goes out the other way. */
static void unseal(relay_t *r, struct half *d, const uint8_t *p, size_t n)
{
    int i = (int)(d - r->dir);
    uint8_t *out;
    size_t out_n;
    int rc = r->tp[i].recv(r->tp[i].ctx, p, n, &out, &out_n);
    free(d->plain);
    d->plain = out;
    d->data = (char *)out;
    d->in_off = 0;
    d->in_len = out ? out_n : 0;
    kick(r, &r->dir[!i]); /* the answer: handshake, alert */
    if (r->closing) return;
    if (rc < 0) {
        relay_close(r);
        return;
    }
    if (rc == 1) d->src_closed = 1;
    process(r, d);
}

static void splice_end(void *owner) { relay_close(owner); }

static int start_reading(relay_t *r, const uint8_t *first, size_t len);

/* The splice path's poll handles are closed: close the sockets, or go on
 * with read/write from where it left off. */
static void splice_closed(void *owner, int fallback, const int eof[2], const int done[2],
                          const uint8_t *rest, size_t n)
{
    relay_t *r = owner;
    r->sp = NULL;
    if (r->closing || !fallback) {
        r->closing = 0;
        relay_close(r);
        return;
    }
    for (int i = 0; i < 2; i++) {
        struct half *d = &r->dir[i];
        d->eof = eof[i];
        d->done = done[i];
        if (d->eof && !d->done) {
            d->sreq.data = d;
            if (uv_shutdown(&d->sreq, (uv_stream_t *)d->dst, on_shutdown) != 0) {
                relay_close(r);
                return;
            }
        }
    }
    if (start_reading(r, rest, n) != 0) relay_close(r);
    else maybe_finish(r);
}

static const splice_ops_t splice_ops = {splice_end, splice_closed};

/* Reads from both sides (those that have not sent EOF), the `first` bytes
 * being a's input before anything else. */
static int start_reading(relay_t *r, const uint8_t *first, size_t len)
{
    if (!r->dir[1].eof && uv_read_start((uv_stream_t *)r->h[1], on_alloc, on_read) != 0) return -1;
    if (len > 0 && r->tp[0].recv) {
        unseal(r, &r->dir[0], first, len); /* a's reading starts once its plaintext is out */
        return 0;
    }
    if (len > 0) {
        /* The bytes read past the Accept go through a's filter first. */
        struct half *d = &r->dir[0];
        d->in_class = class_of(len);
        if ((d->in = d->data = buf_get(d->in_class)) == NULL) return -1;
        memcpy(d->in, first, len);
        d->in_off = 0;
        d->in_len = len;
        process(r, d);
        return 0;
    }
    if (!r->dir[0].eof && uv_read_start((uv_stream_t *)r->h[0], on_alloc, on_read) != 0) return -1;
    return 0;
}

int relay_start_filtered(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                         relay_release_cb release_b, const uint8_t *first, size_t len,
                         const relay_filter_t filters[2], relay_end_cb on_end, void *user,
                         relay_t **out)
{
    return relay_start_transport(set, a, release_a, b, release_b, first, len, filters, NULL, on_end,
                                 user, out);
}

int relay_start_transport(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                          relay_release_cb release_b, const uint8_t *first, size_t len,
                          const relay_filter_t filters[2], const relay_transport_t *tp[2],
                          relay_end_cb on_end, void *user, relay_t **out)
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
    r->on_end = on_end;
    r->user = user;
    live++;
    a->data = b->data = r;
    for (int i = 0; i < 2; i++) {
        r->dir[i].src = r->h[i];
        r->dir[i].dst = r->h[!i];
        if (filters) {
            r->dir[i].filter = filters[i].fn;
            r->dir[i].filter_alloc = filters[i].alloc;
            r->dir[i].filter_ctx = filters[i].ctx;
        }
    }
    for (int i = 0; tp && i < 2; i++)
        if (tp[i]) r->tp[i] = *tp[i];
    if (out) *out = r;

    /* Plain relays move bytes with splice(2) where the kernel has it. */
    int plain = (filters == NULL || (filters[0].fn == NULL && filters[0].alloc == NULL &&
                                     filters[1].fn == NULL && filters[1].alloc == NULL)) &&
                r->tp[0].recv == NULL && r->tp[1].recv == NULL; /* TLS needs the bytes */
    if (plain && splice_enabled() &&
        splice_start(&r->sp, a, b, first, len, &r->stats, &splice_ops, r) == 0)
        return 0;
    if (start_reading(r, first, len) != 0) relay_close(r);
    return 0;
}

int relay_start(list_t *set, uv_tcp_t *a, relay_release_cb release_a, uv_tcp_t *b,
                relay_release_cb release_b, const uint8_t *first, size_t len,
                struct relay_stats *stats)
{
    relay_t *r;
    if (stats) stats->bytes[0] += len;
    int rc = relay_start_filtered(set, a, release_a, b, release_b, first, len, NULL, NULL, NULL, &r);
    if (rc == 0) r->stats = stats;
    return rc;
}

void relay_set_stats(relay_t *r, relay_stats_t *s)
{
    r->stats = s;
}

void relay_close_all(list_t *set)
{
    while (!list_empty(set)) relay_close(LIST_ENTRY(set->next, relay_t, link));
}
