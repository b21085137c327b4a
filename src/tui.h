/* tui.h - the live terminal view of `bore kafka-proxy`: the node table
 * with connections, bytes/s and requests/s per node, the last events and
 * the uptime, redrawn in place once a second with ANSI escapes, from the
 * same JSON as /status.
 *
 * Only when stdout is a terminal and --no-tui is not given. The view holds
 * the top rows; the rows below are a scroll region (DECSTBM) where log
 * lines (stderr, the same terminal) scroll as usual: each redraw saves the
 * cursor, draws from home and puts the cursor back. A terminal too short
 * for both gets the view alone, redrawn over the logs. */
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
