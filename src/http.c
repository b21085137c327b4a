/* http.c - see http.h. */
#include "http.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "net.h"

#define LOG_TARGET "bore::metrics"
#define READ_CHUNK 4096

struct http_server {
    uv_loop_t *loop;
    net_listener_t listener;
    list_t conns;
    unsigned n_conns;
    http_route_fn route;
    void *ctx;
    int stopping;
    int listener_open;
    char rbuf[READ_CHUNK]; /* every read is parsed at once: one buffer serves all */
};

enum hc_state { HC_READING, HC_WRITING, HC_CLOSING };

typedef struct hconn {
    uv_tcp_t tcp; /* first */
    uv_timer_t timer;
    http_server_t *srv;
    list_t link;
    int handles; /* freed when both are closed */
    enum hc_state state;
    http_parser parser;
    size_t head_bytes;
    unsigned n_headers;
    int in_field;
    int headers_done, complete;
    int error; /* an HTTP status to answer with, set by a parser callback */
    size_t url_len;
    char url[HTTP_URL_MAX + 1];
    uv_write_t wr;
    char *out;
} hconn_t;

static void server_maybe_free(http_server_t *s)
{
    if (s->stopping && !s->listener_open && s->n_conns == 0) free(s);
}

static void hc_on_close(uv_handle_t *h)
{
    hconn_t *c = h->data;
    if (--c->handles > 0) return;
    http_server_t *s = c->srv;
    free(c->out);
    free(c);
    s->n_conns--;
    server_maybe_free(s);
}

static void hc_close(hconn_t *c)
{
    if (c->state == HC_CLOSING) return;
    c->state = HC_CLOSING;
    list_remove(&c->link);
    uv_close((uv_handle_t *)&c->tcp, hc_on_close);
    uv_close((uv_handle_t *)&c->timer, hc_on_close);
}

/* ---- parser callbacks: they only record; answers are sent after ---------- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    hconn_t *c = p->data;
    if (len > HTTP_URL_MAX - c->url_len) {
        c->error = 414;
        return 1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    hconn_t *c = p->data;
    (void)at;
    (void)len;
    if (!c->in_field && ++c->n_headers > HTTP_HEADERS_MAX) {
        c->error = 431;
        return 1;
    }
    c->in_field = 1;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    hconn_t *c = p->data;
    (void)at;
    (void)len;
    c->in_field = 0;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    hconn_t *c = p->data;
    c->headers_done = 1;
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        c->error = 405;
        return 1; /* no body expected: the answer goes out without reading it */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hconn_t *c = p->data;
    (void)at;
    (void)len;
    if (c->error == 0) c->error = 400; /* GET carries no body */
    return 1;
}

static int on_message_complete(http_parser *p)
{
    hconn_t *c = p->data;
    c->complete = 1;
    return 1; /* stop: one request per connection */
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- answers ----------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
    }
}

static void on_written(uv_write_t *req, int status)
{
    hconn_t *c = req->data;
    (void)status;
    hc_close(c);
}

static void hc_answer(hconn_t *c, const http_reply_t *r, int head_only)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->state = HC_WRITING;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s"
                     "Connection: close\r\n\r\n",
                     r->status, reason(r->status), r->content_type, r->len,
                     r->status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t body = head_only ? 0 : r->len;
    c->out = n > 0 ? malloc((size_t)n + body) : NULL;
    if (c->out == NULL) {
        hc_close(c);
        return;
    }
    memcpy(c->out, head, (size_t)n);
    if (body) memcpy(c->out + n, r->body, body);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)((size_t)n + body));
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) hc_close(c);
}

static void hc_error(hconn_t *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    http_reply_t r = {status, "text/plain; charset=utf-8", body, (size_t)n, 0};
    log_debug("metrics port: answering %d", status);
    hc_answer(c, &r, 0);
}

static void hc_route(hconn_t *c)
{
    enum http_method m = (enum http_method)c->parser.method;
    if (m != HTTP_GET && m != HTTP_HEAD) {
        hc_error(c, 405);
        return;
    }
    char *q = strchr(c->url, '?');
    if (q) *q = '\0';
    http_reply_t r = {404, "text/plain; charset=utf-8", NULL, 0, 0};
    c->srv->route(c->srv->ctx, c->url, &r);
    if (r.body == NULL && r.status == 404) {
        hc_error(c, 404);
        return;
    }
    if (r.body == NULL) {
        hc_error(c, 500);
        return;
    }
    hc_answer(c, &r, m == HTTP_HEAD);
    if (r.owned) free(r.body);
}

/* ---- input ------------------------------------------------------------------- */

static void hc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    hconn_t *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

static void hc_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    hconn_t *c = st->data;
    if (c->state != HC_READING || nread == 0) return;
    if (nread < 0) {
        hc_close(c); /* EOF before a whole request */
        return;
    }
    size_t len = (size_t)nread;
    if (!c->headers_done) {
        /* The head cap is checked before parsing what would pass it. */
        if (len > HTTP_HEAD_MAX - c->head_bytes) {
            hc_error(c, c->url_len > 0 || c->n_headers > 0 ? 431 : 414);
            return;
        }
        c->head_bytes += len;
    }
    http_parser_execute(&c->parser, &settings, buf->base, len);
    if (c->error) {
        hc_error(c, c->error);
        return;
    }
    if (c->complete) {
        hc_route(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) hc_error(c, 400);
}

static void hc_deadline(uv_timer_t *t)
{
    hconn_t *c = t->data;
    log_debug("metrics port: a client took over %d ms; closing it", HTTP_DEADLINE_MS);
    hc_close(c);
}

static void on_accept(net_listener_t *l, int fd, int status)
{
    http_server_t *s = l->poll.data;
    if (status < 0 || s->stopping) {
        if (fd >= 0) close(fd);
        return;
    }
    if (s->n_conns >= HTTP_CONNS_MAX) {
        close(fd);
        log_debug("metrics port: %d connections open; closing a new one", HTTP_CONNS_MAX);
        return;
    }
    hconn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->srv = s;
    s->n_conns++;
    int initialised;
    if (net_adopt(s->loop, &c->tcp, fd, &initialised) != 0) {
        if (initialised) {
            c->tcp.data = c;
            c->handles = 1;
            c->state = HC_CLOSING;
            uv_close((uv_handle_t *)&c->tcp, hc_on_close);
        } else {
            free(c);
            s->n_conns--;
        }
        return;
    }
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    uv_timer_init(s->loop, &c->timer);
    list_push(&s->conns, &c->link);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, hc_deadline, HTTP_DEADLINE_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, hc_alloc, hc_read) != 0) hc_close(c);
}

/* ---- lifecycle ----------------------------------------------------------------- */

http_server_t *http_server_start(uv_loop_t *loop, const char *ip, uint16_t port, http_route_fn route,
                                 void *ctx, int *err)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        *err = UV_ENOMEM;
        return NULL;
    }
    s->loop = loop;
    s->route = route;
    s->ctx = ctx;
    list_init(&s->conns);
    int fd = net_listen_fd(ip, port, 64);
    if (fd < 0) {
        *err = fd;
        free(s);
        return NULL;
    }
    int initialised;
    int rc = net_listener_start(loop, &s->listener, fd, on_accept, &initialised);
    s->listener.poll.data = s;
    if (rc != 0) {
        *err = rc;
        if (initialised) {
            s->stopping = 1;
            s->listener_open = 1;
            http_server_stop(s);
            return NULL;
        }
        free(s);
        return NULL;
    }
    s->listener_open = 1;
    return s;
}

uint16_t http_server_port(const http_server_t *s) { return net_local_port(s->listener.fd); }

static void on_listener_closed(uv_handle_t *h)
{
    http_server_t *s = h->data;
    s->listener_open = 0;
    server_maybe_free(s);
}

void http_server_stop(http_server_t *s)
{
    if (s == NULL) return;
    s->stopping = 1;
    net_listener_close(&s->listener, on_listener_closed);
    while (!list_empty(&s->conns)) hc_close(LIST_ENTRY(s->conns.next, hconn_t, link));
}
