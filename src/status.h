/* status.h - what `--metrics ADDR:PORT` serves, and the recent events.
 *
 *   /metrics  the registry in Prometheus text format 0.0.4 (metrics.h)
 *   /healthz  "ok" while the event loop runs
 *   /status   JSON from the command's status function (like ngrok's
 *             /api/tunnels): its tunnels or nodes, with counters, and the
 *             recent events
 *   /         a self-contained HTML page (src/status_page.html, built into
 *             the binary) that polls /status once a second and shows the
 *             table, throughput and requests per second, and the events
 *
 * Served by http.h on its own port; nothing here runs unless --metrics is
 * given, except the event ring (a few lines, kept for the page and the
 * terminal view). */
#ifndef BORE_STATUS_H
#define BORE_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The command's state as a new JSON object (the caller adds "command" and
 * "events"). */
typedef json_t *(*status_json_fn)(void *ctx);

/* Parses --metrics: "PORT" (bound to 127.0.0.1), "IP:PORT" or "[IPv6]:PORT".
 * Returns 0, or -1 if it is none of these. */
int status_parse_addr(const char *s, char *ip, size_t cap, uint16_t *port);

/* Enables the metrics registry (metrics_enable). Call before the command
 * registers its series. */
void status_enable(void);

/* Where /status (and the terminal view) get the command's state. */
void status_set_source(const char *command, status_json_fn fn, void *ctx);

/* Starts serving on ip:port. Returns 0 or a UV_E* error (logged). */
int status_start(uv_loop_t *loop, const char *ip, uint16_t port);

/* Stops serving and frees the registry; safe if never started. */
void status_stop(void);

/* The whole /status document (NULL if no status function is set). */
json_t *status_json(void);

/* Records an event for /status and the terminal view (the last 32 are kept). */
void status_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The page, generated from src/status_page.html by the Makefile. */
extern const unsigned char status_page[];
extern const unsigned long status_page_len;

#endif
