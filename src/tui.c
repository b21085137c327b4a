/* tui.c - see tui.h. */
#include "tui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS 1000
#define ROWS_MAX 64 /* nodes shown; the rest are summarised */
#define EVENTS_SHOWN 8

typedef struct {
    char name[32];
    uint64_t in, out, req;
} prev_t;

struct tui {
    uv_timer_t timer;
    uint64_t last_ns;
    prev_t prev[ROWS_MAX];
    size_t n_prev;
};

int tui_wanted(void) { return isatty(STDOUT_FILENO); }

static uint64_t jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void human(double v, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
    size_t u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s/s" : "%.0f %s/s", v, units[u]);
}

static void draw(tui_t *t)
{
    json_t *s = status_json();
    if (s == NULL) return;
    uint64_t now = uv_hrtime();
    double dt = t->last_ns ? (double)(now - t->last_ns) / 1e9 : 0;
    t->last_ns = now;
    /* Cursor home; every line ends by clearing the rest of it. */
    printf("\x1b[H");
    printf("bore kafka-proxy: bootstrap.servers=%s\x1b[K\n\x1b[K\n", jstr(s, "bootstrap_servers"));
    printf("  %-10s %-28s %-28s %-10s %6s %12s %12s %8s\x1b[K\n", "NODE", "PUBLIC", "INTERNAL",
           "STATE", "CONNS", "IN", "OUT", "REQ/S");
    json_t *nodes = json_object_get(s, "nodes");
    prev_t next[ROWS_MAX];
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(nodes, i, r) {
        if (n >= ROWS_MAX) break;
        prev_t *cur = &next[n++];
        snprintf(cur->name, sizeof cur->name, "%s", jstr(r, "name"));
        cur->in = jnum(r, "bytes_in");
        cur->out = jnum(r, "bytes_out");
        cur->req = jnum(r, "requests");
        const prev_t *p = NULL;
        for (size_t k = 0; k < t->n_prev; k++)
            if (strcmp(t->prev[k].name, cur->name) == 0) p = &t->prev[k];
        char in[32] = "-", out[32] = "-", req[32] = "-";
        if (p && dt > 0) {
            human((double)(cur->in - p->in) / dt, in, sizeof in);
            human((double)(cur->out - p->out) / dt, out, sizeof out);
            snprintf(req, sizeof req, "%.1f", (double)(cur->req - p->req) / dt);
        }
        printf("  %-10s %-28s %-28s %-10s %6llu %12s %12s %8s\x1b[K\n", cur->name, jstr(r, "public"),
               jstr(r, "internal"), jstr(r, "state"),
               (unsigned long long)jnum(r, "connections_active"), in, out, req);
    }
    if (json_array_size(nodes) > ROWS_MAX)
        printf("  ... and %zu more nodes (see /status)\x1b[K\n", json_array_size(nodes) - ROWS_MAX);
    memcpy(t->prev, next, n * sizeof *next);
    t->n_prev = n;
    printf("\x1b[K\nrecent events:\x1b[K\n");
    json_t *ev = json_object_get(s, "events");
    json_array_foreach(ev, i, r) {
        if (i >= EVENTS_SHOWN) break;
        printf("  %s  %s\x1b[K\n", jstr(r, "time"), jstr(r, "text"));
    }
    printf("\x1b[J"); /* clear what is below: log lines written since the last draw */
    fflush(stdout);
    json_decref(s);
}

static void on_tick(uv_timer_t *timer) { draw(timer->data); }

tui_t *tui_start(uv_loop_t *loop)
{
    tui_t *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    printf("\x1b[2J");
    draw(t);
    uv_timer_start(&t->timer, on_tick, TICK_MS, TICK_MS);
    return t;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void tui_stop(tui_t *t)
{
    if (t == NULL) return;
    uv_close((uv_handle_t *)&t->timer, on_closed);
}
