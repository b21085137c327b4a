/* splice.c - see splice.h. */
#include "splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "relay.h"

#define LOG_TARGET "bore::relay"

/* 256 KiB pipes: measured on loopback (docs/BENCHMARKS.md), 64 KiB pipes
 * cost ~8 % more server CPU per byte, 1 MiB ones save ~5 % more. The pipe
 * only holds pages while bytes are in flight; BORE_SPLICE_PIPE (bytes)
 * overrides the size for measurements. */
#define PIPE_SIZE_DEFAULT (256 * 1024)
#define BIG_PIPES 64 /* pipes that get PIPE_SIZE_DEFAULT; later ones keep 64 KiB */
#define POOL_MAX 16 /* idle pipes kept for reuse: 32 descriptors at most */
#define ROUNDS 16   /* fill/drain rounds per event, so one busy relay cannot hog the loop */

struct sdir {
    int src, dst;      /* descriptors, owned by the uv_tcp_t handles */
    int pipe[2];       /* [0] read end, [1] write end; -1: no pipe held */
    size_t in_pipe;    /* bytes in the pipe */
    uint8_t *pre;      /* bytes to write before any spliced byte (direction 0) */
    size_t pre_off, pre_len;
    int eof;           /* the source sent FIN */
    int done;          /* the destination is shut down after that */
};

struct splice_relay {
    uv_poll_t poll[2]; /* on fd[0], fd[1] */
    int fd[2];
    int events[2]; /* polled for now */
    int n_init, n_closed;
    struct sdir dir[2]; /* dir[0]: fd[0] -> fd[1]; dir[1]: fd[1] -> fd[0] */
    struct relay_stats **stats;
    const splice_ops_t *ops;
    void *owner;
    int closing;
    int fallback;
};

static splice_counters_t counters;
static int pool[POOL_MAX][2];
static unsigned pool_len;
static unsigned live; /* splice relays not yet freed */
static int state = -1; /* -1: BORE_SPLICE not read yet; 0: off; 1: on */
static int pipe_size = PIPE_SIZE_DEFAULT;
static size_t piped;                         /* bytes in all relays' pipes */
static size_t budget = (size_t)256 << 20;    /* relay_set_budget's, shared with relay.c */

int splice_enabled(void)
{
    if (state < 0) {
        const char *v = getenv("BORE_SPLICE");
        state = !(v != NULL && strcmp(v, "0") == 0);
        const char *p = getenv("BORE_SPLICE_PIPE");
        if (p != NULL) {
            long n = strtol(p, NULL, 10);
            if (n >= 4096 && n <= 64L * 1024 * 1024) pipe_size = (int)n;
        }
    }
    return state;
}

const splice_counters_t *splice_counters(void) { return &counters; }

void splice_set_budget(size_t bytes) { budget = bytes; }

size_t splice_buffered(void) { return piped; }

/* ---- pipes ----------------------------------------------------------------- */

static void pipe_close(int p[2])
{
    close(p[0]);
    close(p[1]);
    p[0] = p[1] = -1;
    counters.pipes_live--;
}

void splice_pool_drain(void)
{
    while (pool_len > 0) {
        pool_len--;
        pipe_close(pool[pool_len]);
        counters.pipes_live++; /* pooled pipes are not live */
        counters.pipes_pooled--;
    }
}

/* Returns 0, or -errno (EMFILE, ENFILE: no descriptor for a pipe). */
static int pipe_get(struct sdir *d)
{
    if (pool_len > 0) {
        pool_len--;
        d->pipe[0] = pool[pool_len][0];
        d->pipe[1] = pool[pool_len][1];
        counters.pipes_pooled--;
        counters.pipes_live++;
        return 0;
    }
    if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return -errno;
    }
    /* Larger than the default 64 KiB: less CPU per byte. Only for the first
     * BIG_PIPES pipes: an unprivileged user's pipes share 64 MiB of capacity
     * (fs.pipe-user-pages-soft), past which the kernel gives new pipes two
     * pages; at 64 KiB each the rest stay clear of it longer. */
    if (counters.pipes_live + counters.pipes_pooled < BIG_PIPES)
        (void)fcntl(d->pipe[1], F_SETPIPE_SZ, pipe_size);
    counters.pipes_live++;
    return 0;
}

/* An empty pipe goes back to the pool; one that still holds bytes (a
 * relay closed mid-transfer) is closed. */
static void pipe_put(struct sdir *d)
{
    if (d->pipe[0] < 0) return;
    if (d->in_pipe == 0 && pool_len < POOL_MAX) {
        pool[pool_len][0] = d->pipe[0];
        pool[pool_len][1] = d->pipe[1];
        pool_len++;
        d->pipe[0] = d->pipe[1] = -1;
        counters.pipes_live--;
        counters.pipes_pooled++;
        return;
    }
    pipe_close(d->pipe);
    piped -= d->in_pipe;
    d->in_pipe = 0;
}

/* ---- moving bytes ---------------------------------------------------------- */

/* splice(2) into a socket whose peer is gone raises SIGPIPE like write(2):
 * bore server and bore local ignore it (the only users of this path). */

enum { PUMP_WAIT, PUMP_ERROR, PUMP_FALLBACK };

static void count(splice_relay_t *s, struct sdir *d, size_t n)
{
    counters.bytes += n;
    if (*s->stats != NULL) (*s->stats)->bytes[d == &s->dir[1]] += n;
}

/* Moves what can be moved now without blocking. What the direction waits
 * for next follows from its state (see want_read/want_write). */
static int pump(splice_relay_t *s, struct sdir *d)
{
    for (int round = 0; round < ROUNDS; round++) {
        while (d->pre_off < d->pre_len) {
            ssize_t n = send(d->dst, d->pre + d->pre_off, d->pre_len - d->pre_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return PUMP_WAIT;
                log_debug("write failed: %s", strerror(errno));
                return PUMP_ERROR;
            }
            d->pre_off += (size_t)n;
        }
        if (d->pre != NULL) {
            free(d->pre);
            d->pre = NULL;
        }
        while (d->in_pipe > 0) {
            ssize_t n = splice(d->pipe[0], NULL, d->dst, NULL, d->in_pipe,
                               SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return PUMP_WAIT; /* the destination is full */
                log_debug("splice to socket failed: %s", strerror(errno));
                return PUMP_ERROR;
            }
            d->in_pipe -= (size_t)n;
            piped -= (size_t)n;
        }
        if (d->eof) {
            pipe_put(d);
            if (!d->done) {
                if (shutdown(d->dst, SHUT_WR) != 0 && errno != ENOTCONN) {
                    log_debug("shutdown failed: %s", strerror(errno));
                    return PUMP_ERROR;
                }
                d->done = 1;
            }
            return PUMP_WAIT;
        }
        if (d->pipe[0] < 0) {
            int rc = pipe_get(d);
            if (rc != 0) {
                log_warn("cannot create a pipe for a relay: %s; closing the connection",
                         strerror(-rc));
                return PUMP_ERROR;
            }
        }
        /* Past the budget, a direction moves 4 KiB at a time, as relay.c's
         * read/write path does. */
        size_t want = piped + (size_t)pipe_size > budget ? 4096 : (size_t)pipe_size;
        ssize_t n = splice(d->src, NULL, d->pipe[1], NULL, want, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (n > 0) {
            d->in_pipe = (size_t)n;
            piped += (size_t)n;
            count(s, d, (size_t)n);
            continue;
        }
        if (n == 0) {
            d->eof = 1;
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) { /* the source has nothing: idle, hold no pipe */
            pipe_put(d);
            return PUMP_WAIT;
        }
        if (errno == EINVAL || errno == ENOSYS) {
            log_debug("splice from socket failed: %s", strerror(errno));
            pipe_put(d);
            return PUMP_FALLBACK;
        }
        log_debug("splice from socket failed: %s", strerror(errno));
        return PUMP_ERROR;
    }
    return PUMP_WAIT; /* more may be ready: the poll is level-triggered */
}

static int want_read(const struct sdir *d)
{
    return !d->eof && d->in_pipe == 0 && d->pre_off >= d->pre_len;
}

static int want_write(const struct sdir *d)
{
    return d->pre_off < d->pre_len || d->in_pipe > 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void fail(splice_relay_t *s)
{
    s->ops->end(s->owner);
}

/* Polls each socket for what its directions wait for; ends the relay when
 * both directions are done. */
static void update(splice_relay_t *s)
{
    if (s->closing) return;
    if (s->dir[0].done && s->dir[1].done) {
        s->ops->end(s->owner);
        return;
    }
    for (int i = 0; i < 2; i++) {
        int ev = (want_read(&s->dir[i]) ? UV_READABLE : 0) |
                 (want_write(&s->dir[!i]) ? UV_WRITABLE : 0);
        if (ev == s->events[i]) continue;
        int rc = ev ? uv_poll_start(&s->poll[i], ev, on_poll) : uv_poll_stop(&s->poll[i]);
        if (rc != 0) {
            log_debug("poll failed: %s", uv_strerror(rc));
            fail(s);
            return;
        }
        s->events[i] = ev;
    }
}

static void on_poll_close(uv_handle_t *h)
{
    splice_relay_t *s = h->data;
    if (++s->n_closed < s->n_init) return;
    int eof[2], done[2];
    for (int i = 0; i < 2; i++) {
        pipe_put(&s->dir[i]);
        eof[i] = s->dir[i].eof;
        done[i] = s->dir[i].done;
    }
    struct sdir *d = &s->dir[0];
    const uint8_t *rest = d->pre != NULL ? d->pre + d->pre_off : NULL;
    s->ops->closed(s->owner, s->fallback, eof, done, rest, d->pre_len - d->pre_off);
    free(d->pre);
    free(s);
    if (--live == 0) splice_pool_drain(); /* no descriptor held once all relays are gone */
}

void splice_close(splice_relay_t *s)
{
    if (s->closing) return;
    s->closing = 1;
    for (int i = 0; i < s->n_init; i++) uv_close((uv_handle_t *)&s->poll[i], on_poll_close);
}

/* splice(2) is not available for these sockets: nothing is in flight, so
 * the relay goes on with read/write, and so does every later one. */
static void fall_back(splice_relay_t *s)
{
    for (int i = 0; i < 2; i++) {
        if (want_write(&s->dir[i])) {
            fail(s);
            return;
        }
    }
    if (state != 0) log_warn("splice(2) unavailable; relaying with read/write");
    state = 0;
    counters.fallback++;
    s->fallback = 1;
    splice_close(s);
}

static void run(splice_relay_t *s, struct sdir *d)
{
    switch (pump(s, d)) {
    case PUMP_ERROR: fail(s); return;
    case PUMP_FALLBACK: fall_back(s); return;
    default: return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    splice_relay_t *s = h->data;
    int i = h == &s->poll[0] ? 0 : 1;
    if (s->closing) return;
    if (status < 0) {
        log_debug("poll failed: %s", uv_strerror(status));
        fail(s);
        return;
    }
    /* Writable first: draining a pipe may let the other side read on. */
    if ((events & UV_WRITABLE) && want_write(&s->dir[!i])) run(s, &s->dir[!i]);
    if (s->closing) return;
    if ((events & UV_READABLE) && want_read(&s->dir[i])) run(s, &s->dir[i]);
    update(s);
}

int splice_start(splice_relay_t **out, uv_tcp_t *a, uv_tcp_t *b, const uint8_t *first,
                 size_t len, struct relay_stats **stats, const splice_ops_t *ops, void *owner)
{
    uv_os_fd_t fa, fb;
    if (uv_fileno((uv_handle_t *)a, &fa) != 0 || uv_fileno((uv_handle_t *)b, &fb) != 0)
        return UV_EINVAL;
    splice_relay_t *s = calloc(1, sizeof *s);
    if (s == NULL) return UV_ENOMEM;
    if (len > 0) {
        if ((s->dir[0].pre = malloc(len)) == NULL) {
            free(s);
            return UV_ENOMEM;
        }
        memcpy(s->dir[0].pre, first, len);
        s->dir[0].pre_len = len;
    }
    s->fd[0] = fa;
    s->fd[1] = fb;
    for (int i = 0; i < 2; i++) {
        s->dir[i].src = s->fd[i];
        s->dir[i].dst = s->fd[!i];
        s->dir[i].pipe[0] = s->dir[i].pipe[1] = -1;
    }
    s->stats = stats;
    s->ops = ops;
    s->owner = owner;
    /* libuv must not watch these descriptors itself meanwhile. */
    uv_read_stop((uv_stream_t *)a);
    uv_read_stop((uv_stream_t *)b);
    for (int i = 0; i < 2; i++) {
        /* UV_EEXIST: the handle still has a write in flight. */
        int rc = uv_poll_init_socket(a->loop, &s->poll[i], s->fd[i]);
        if (rc != 0) {
            if (i == 0) {
                free(s->dir[0].pre);
                free(s);
                return rc;
            }
            /* The first poll handle must be closed before s goes; the
             * owner then hears `closed` with fallback set. */
            s->n_init = 1;
            live++;
            s->fallback = 1;
            *out = s;
            splice_close(s);
            return 0;
        }
        s->poll[i].data = s;
        s->n_init++;
    }
    live++;
    counters.relays++;
    *out = s;
    log_debug("relay on the splice path (fds %d <-> %d)", s->fd[0], s->fd[1]);
    /* The leftover bytes go first; a's data follows once they are written. */
    if (len > 0) run(s, &s->dir[0]);
    update(s);
    return 0;
}
