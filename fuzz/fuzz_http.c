/* fuzz_http.c - libFuzzer target for the metrics port's HTTP server
 * (http.c: http_parser driven by libuv, with our caps in front). Each input
 * is one connection's bytes, sent over real loopback TCP to a server that
 * lives for the whole run; the connection must end (answered or closed)
 * with the loop still serving. Inputs cut at a 0xff byte are sent in two
 * writes with a loop turn between them, so parser state crosses reads. */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

static uv_loop_t loop;
static http_server_t *srv;
static struct sockaddr_in at;

static void route(void *ctx, const char *path, http_reply_t *out)
{
    (void)ctx;
    if (strcmp(path, "/metrics") == 0) {
        out->status = 200;
        out->content_type = "text/plain; version=0.0.4; charset=utf-8";
        out->body = (char *)"up 1\n";
        out->len = 5;
    } else if (strcmp(path, "/status") == 0) {
        out->status = 200;
        out->content_type = "application/json";
        out->body = strdup("{}");
        out->len = out->body ? 2 : 0;
        out->owned = 1;
    }
}

static void start(void)
{
    int err = 0;
    setenv("BORE_LOG", "error", 1);
    log_init();
    uv_loop_init(&loop);
    srv = http_server_start(&loop, "127.0.0.1", 0, route, NULL, &err);
    if (srv == NULL) abort();
    memset(&at, 0, sizeof at);
    at.sin_family = AF_INET;
    at.sin_port = htons(http_server_port(srv));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* Sends what it can of [p, p+n) without blocking; returns how much. */
static size_t send_some(int fd, const uint8_t *p, size_t n)
{
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    return k > 0 ? (size_t)k : (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL) start();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&at, sizeof at) != 0) abort();
    const uint8_t *cut = memchr(data, 0xff, size);
    size_t first = cut ? (size_t)(cut - data) : size, sent = 0;
    int shut = 0;
    uint8_t buf[4096];
    uint64_t t0 = uv_hrtime();
    for (int turn = 0; uv_hrtime() - t0 < (uint64_t)5e9; turn++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        size_t goal = turn == 0 ? first : size;
        if (sent < goal) sent += send_some(fd, data + sent, goal - sent);
        if (sent >= size && !shut) {
            (void)shutdown(fd, SHUT_WR);
            shut = 1;
        }
        ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            close(fd);
            uv_run(&loop, UV_RUN_NOWAIT); /* the server's close callbacks */
            return 0;
        }
    }
    abort(); /* in 5 s the server neither answered nor closed the connection */
}
