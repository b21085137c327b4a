/* tui.h - the live terminal view of `bore kafka-proxy`: the node table
 * with connections, bytes/s and requests/s per node, and the last events,
 * redrawn in place once a second with ANSI escapes (cursor home, clear to
 * end of line and of screen), from the same JSON as /status.
 *
 * Only when stdout is a terminal and --no-tui is not given; log lines
 * still go to stderr and are wiped at the next redraw (the view keeps the
 * recent events). */
#ifndef BORE_TUI_H
#define BORE_TUI_H

#include <uv.h>

#include "status.h"

typedef struct tui tui_t;

/* 1 if stdout is a terminal. */
int tui_wanted(void);

/* Starts redrawing every second from status_json() (status_set_source
 * first). NULL on OOM. */
tui_t *tui_start(uv_loop_t *loop);

/* Stops; the memory goes in the timer's close callback. */
void tui_stop(tui_t *t);

#endif
