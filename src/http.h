/* http.h - the tiny HTTP/1.1 server of the metrics port (--metrics).
 *
 * Parsing is Node's http_parser (Debian's libhttp-parser-dev, 2.9), driven
 * by libuv; this module only frames, caps and answers:
 *   - GET (and HEAD) only: other methods get 405;
 *   - the request line (URL) at most HTTP_URL_MAX bytes (414), the whole
 *     head at most HTTP_HEAD_MAX bytes and HTTP_HEADERS_MAX headers (431);
 *     a request with a body, or anything malformed, gets 400;
 *   - a request must arrive, and its answer leave, within HTTP_DEADLINE_MS
 *     of the connection opening (a slowloris scraper, or one that does not
 *     read its answer, is closed then);
 *   - one request per connection: the answer carries `Connection: close`
 *     and the connection closes once it is written;
 *   - at most HTTP_CONNS_MAX connections at once: beyond that a new one is
 *     closed at once.
 * So a connection holds at most HTTP_HEAD_MAX bytes of input and one
 * answer, and all of them together at most HTTP_CONNS_MAX times that: a
 * slow or hostile scraper cannot take memory or time from the tunnels.
 *
 * The owner routes the path (query string removed, never decoded: "/%2e%2e"
 * is just an unknown path) to an answer. */
#ifndef BORE_HTTP_H
#define BORE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HTTP_URL_MAX 1024
#define HTTP_HEAD_MAX 8192
#define HTTP_HEADERS_MAX 64
#define HTTP_DEADLINE_MS 10000
#define HTTP_CONNS_MAX 32

typedef struct {
    int status;               /* 200, 404 */
    const char *content_type; /* e.g. "text/plain; version=0.0.4; charset=utf-8" */
    char *body;               /* the answer's body; freed by the server if `owned` */
    size_t len;
    int owned;
} http_reply_t;

/* Fills *out for `path`. */
typedef void (*http_route_fn)(void *ctx, const char *path, http_reply_t *out);

typedef struct http_server http_server_t;

/* Listens on ip:port. Returns NULL and sets *err (a UV_E* code) on failure. */
http_server_t *http_server_start(uv_loop_t *loop, const char *ip, uint16_t port, http_route_fn route,
                                 void *ctx, int *err);

/* The port it listens on (useful with port 0). */
uint16_t http_server_port(const http_server_t *s);

/* Stops listening and closes every connection; the memory goes once the
 * loop has run the close callbacks. */
void http_server_stop(http_server_t *s);

#endif
