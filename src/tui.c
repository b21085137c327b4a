/* tui.c - see tui.h. */
#include "tui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
    uint64_t start_ns, last_ns;
    prev_t prev[ROWS_MAX];
    size_t n_prev;
    int rows;   /* the terminal's height at the last draw (0: unknown) */
    int height; /* the view's, at the last draw: log lines scroll below it */
};

/* The terminal's height, 0 if it cannot be had. */
static int term_rows(void)
{
    struct winsize ws;
    return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_row : 0;
}

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
    json_t *nodes = json_object_get(s, "nodes"), *ev = json_object_get(s, "events");
    size_t n_nodes = json_array_size(nodes), n_ev = json_array_size(ev);
    int height = 3 + (int)(n_nodes > ROWS_MAX ? ROWS_MAX + 1 : n_nodes) + 2 +
                 (int)(n_ev > EVENTS_SHOWN ? EVENTS_SHOWN : n_ev);
    int rows = term_rows();
    int scroll = rows > height + 2; /* room below the view for log lines */
    if (scroll && (rows != t->rows || height != t->height)) {
        /* Log lines (stderr, the same terminal) scroll in the rows below
         * the view; they continue from its last row. */
        printf("\x1b[%d;%dr\x1b[%d;1H", height + 1, rows, rows);
    } else if (!scroll && t->height) {
        printf("\x1b[r"); /* too small now: no region; the view is redrawn over the logs */
    }
    t->rows = rows;
    t->height = scroll ? height : 0;
    /* Save the cursor (where the logs write), draw from home, every line
     * clearing the rest of it, then put the cursor back. */
    printf("\0337\x1b[H");
    uint64_t up = (now - t->start_ns) / 1000000000u;
    printf("bore kafka-proxy: bootstrap.servers=%s   up %llu:%02u:%02u\x1b[K\n\x1b[K\n",
           jstr(s, "bootstrap_servers"), (unsigned long long)(up / 3600), (unsigned)(up / 60 % 60),
           (unsigned)(up % 60));
    printf("  %-10s %-28s %-28s %-10s %6s %12s %12s %8s\x1b[K\n", "NODE", "PUBLIC", "INTERNAL",
           "STATE", "CONNS", "IN", "OUT", "REQ/S");
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
    if (n_nodes > ROWS_MAX) printf("  ... and %zu more nodes (see /status)\x1b[K\n", n_nodes - ROWS_MAX);
    memcpy(t->prev, next, n * sizeof *next);
    t->n_prev = n;
    printf("\x1b[K\nrecent events:\x1b[K");
    json_array_foreach(ev, i, r) {
        if (i >= EVENTS_SHOWN) break;
        printf("\n  %s  %s\x1b[K", jstr(r, "time"), jstr(r, "text"));
    }
    if (scroll)
        printf("\0338");
    else
        printf("\n\x1b[J"); /* no room for logs: clear what is below */
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
    t->start_ns = uv_hrtime();
    printf("\x1b[2J");
    draw(t);
    uv_timer_start(&t->timer, on_tick, TICK_MS, TICK_MS);
    return t;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void tui_stop(tui_t *t)
{
    if (t == NULL) return;
    if (t->height) { /* the whole terminal scrolls again; carry on below */
        printf("\x1b[r\x1b[%d;1H", t->rows);
        fflush(stdout);
    }
    uv_close((uv_handle_t *)&t->timer, on_closed);
}
