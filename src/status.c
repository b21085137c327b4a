/* status.c - see status.h. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "net.h"

#define LOG_TARGET "bore::metrics"
#define EVENTS_MAX 32
#define EVENT_LEN 200

static struct {
    http_server_t *http;
    const char *command;
    status_json_fn fn;
    void *ctx;
    struct {
        char time[32];
        char text[EVENT_LEN];
    } events[EVENTS_MAX];
    unsigned n_events; /* total recorded; the ring holds the last EVENTS_MAX */
} st;

int status_parse_addr(const char *s, char *ip, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    const char *ps = colon ? colon + 1 : s;
    char *end;
    if (*ps == '\0' || *ps == '-' || *ps == '+') return -1;
    unsigned long p = strtoul(ps, &end, 10);
    if (*end != '\0' || p > 65535) return -1;
    size_t n;
    const char *h;
    if (colon == NULL) {
        h = "127.0.0.1";
        n = strlen(h);
    } else {
        h = s;
        n = (size_t)(colon - s);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
            h++;
            n -= 2;
        }
    }
    if (n == 0 || n >= cap) return -1;
    memcpy(ip, h, n);
    ip[n] = '\0';
    struct sockaddr_storage sa;
    if (net_parse_ip(ip, 0, &sa) != 0) return -1;
    *port = (uint16_t)p;
    return 0;
}

void status_event(const char *fmt, ...)
{
    unsigned i = st.n_events++ % EVENTS_MAX;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(st.events[i].time, sizeof st.events[i].time, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st.events[i].text, sizeof st.events[i].text, fmt, ap);
    va_end(ap);
}

json_t *status_json(void)
{
    if (st.fn == NULL) return NULL;
    json_t *root = st.fn(st.ctx);
    if (root == NULL) return NULL;
    json_object_set_new(root, "command", json_string(st.command));
    json_t *ev = json_array();
    unsigned n = st.n_events < EVENTS_MAX ? st.n_events : EVENTS_MAX;
    for (unsigned k = 0; k < n; k++) { /* newest first */
        unsigned i = (st.n_events - 1 - k) % EVENTS_MAX;
        json_array_append_new(ev, json_pack("{s:s, s:s}", "time", st.events[i].time, "text",
                                            st.events[i].text));
    }
    json_object_set_new(root, "events", ev);
    return root;
}

static void route(void *ctx, const char *path, http_reply_t *out)
{
    (void)ctx;
    if (strcmp(path, "/metrics") == 0) {
        out->body = metrics_render(&out->len);
        out->owned = 1;
        out->status = out->body ? 200 : 500;
        out->content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(path, "/healthz") == 0) {
        out->body = (char *)"ok\n";
        out->len = 3;
        out->status = 200;
    } else if (strcmp(path, "/status") == 0) {
        json_t *j = status_json();
        out->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        out->len = out->body ? strlen(out->body) : 0;
        out->owned = 1;
        out->status = out->body ? 200 : 500;
        out->content_type = "application/json";
    } else if (strcmp(path, "/") == 0) {
        out->body = (char *)status_page;
        out->len = (size_t)status_page_len;
        out->status = 200;
        out->content_type = "text/html; charset=utf-8";
    }
}

void status_enable(void) { metrics_enable(); }

void status_set_source(const char *command, status_json_fn fn, void *ctx)
{
    st.command = command;
    st.fn = fn;
    st.ctx = ctx;
}

int status_start(uv_loop_t *loop, const char *ip, uint16_t port)
{
    int err = 0;
    st.http = http_server_start(loop, ip, port, route, NULL, &err);
    if (st.http == NULL) {
        log_error("cannot serve metrics on %s:%u: %s", ip, port, uv_strerror(err));
        return err;
    }
    log_info("metrics at http://%s%s%s:%u/metrics (status page at /)", strchr(ip, ':') ? "[" : "", ip,
             strchr(ip, ':') ? "]" : "", http_server_port(st.http));
    return 0;
}

void status_stop(void)
{
    http_server_stop(st.http);
    st.http = NULL;
}
