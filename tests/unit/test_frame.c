/* Control framing (bore protocol §1): every split point, one byte at a time,
 * the 256/257 boundary, an unterminated final frame, several frames per read. */
#include <stdlib.h>

#include "frame.h"
#include "unit.h"

#define MAXF 16

typedef struct {
    char frames[MAXF][FRAME_MAX + 1];
    size_t lens[MAXF];
    int n;
    int error;
} result_t;

/* Feeds `in` to a reader in chunks whose boundaries are given by `cuts`
 * (increasing offsets), then EOF; collects what the reader decodes, the
 * same way the server and client loops do. */
static void feed(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts, result_t *r)
{
    uint8_t buf[4096];
    size_t have = 0, pos = 0;
    memset(r, 0, sizeof *r);
    for (size_t c = 0; c <= ncuts && !r->error; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        int eof = c == ncuts;
        memcpy(buf + have, in + pos, end - pos);
        have += end - pos;
        pos = end;
        size_t off = 0;
        for (;;) {
            size_t n;
            int rc = frame_next(buf + off, have - off, eof, &n);
            if (rc == FRAME_NEED_MORE) break;
            if (rc == FRAME_TOO_LONG) {
                r->error = 1;
                break;
            }
            if (r->n < MAXF) {
                memcpy(r->frames[r->n], buf + off, n);
                r->lens[r->n++] = n;
            }
            off += (size_t)rc;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
}

static int same(const result_t *a, const result_t *b)
{
    if (a->n != b->n || a->error != b->error) return 0;
    for (int i = 0; i < a->n; i++)
        if (a->lens[i] != b->lens[i] || memcmp(a->frames[i], b->frames[i], a->lens[i]) != 0)
            return 0;
    return 1;
}

/* Whole input, every single split point, every pair of split points, and
 * one byte at a time must all agree with `want`. */
static void check_all_splits(const uint8_t *in, size_t len, const result_t *want)
{
    result_t r;
    feed(in, len, NULL, 0, &r);
    CHECK(same(&r, want));
    for (size_t i = 0; i <= len; i++) {
        size_t cuts[1] = {i};
        feed(in, len, cuts, 1, &r);
        if (!same(&r, want)) {
            fprintf(stderr, "  split at %zu differs\n", i);
            CHECK(0);
            return;
        }
        for (size_t j = i; j <= len && len < 80; j++) {
            size_t two[2] = {i, j};
            feed(in, len, two, 2, &r);
            CHECK(same(&r, want));
        }
    }
    size_t *bytes = malloc((len + 1) * sizeof *bytes);
    for (size_t i = 0; i < len; i++) bytes[i] = i + 1;
    feed(in, len, bytes, len, &r);
    CHECK(same(&r, want));
    free(bytes);
}

static void want_frames(result_t *w, int n, const char **frames)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < n; i++) {
        w->lens[i] = strlen(frames[i]);
        memcpy(w->frames[i], frames[i], w->lens[i]);
    }
    w->n = n;
}

static void several_frames_in_one_read(void)
{
    static const uint8_t in[] = "{\"Hello\":40032}\0\"Heartbeat\"\0{\"Connection\":\"52317d5c-6dee-4e94-b69a-40d5b4753466\"}";
    const char *frames[] = {"{\"Hello\":40032}", "\"Heartbeat\"",
                            "{\"Connection\":\"52317d5c-6dee-4e94-b69a-40d5b4753466\"}"};
    result_t w;
    want_frames(&w, 3, frames);
    check_all_splits(in, sizeof in, &w); /* sizeof includes the final NUL */
}

static void unterminated_frame_at_eof(void)
{
    static const uint8_t in[] = "{\"Hello\":0}\0{\"Accept\":\"x\"}";
    const char *frames[] = {"{\"Hello\":0}", "{\"Accept\":\"x\"}"};
    result_t w;
    want_frames(&w, 2, frames);
    check_all_splits(in, sizeof in - 1, &w); /* no final NUL */
}

static void boundary_256_accepted(void)
{
    uint8_t in[258];
    memset(in, 'a', 256);
    in[256] = 0;
    in[257] = 0; /* then an empty frame */
    size_t n;
    CHECK(frame_parse(in, 257, &n) == 257 && n == 256);
    CHECK(frame_parse(in, 256, &n) == FRAME_NEED_MORE);
    result_t w;
    memset(&w, 0, sizeof w);
    memset(w.frames[0], 'a', 256);
    w.lens[0] = 256;
    w.n = 2;
    check_all_splits(in, sizeof in, &w);
}

static void boundary_257_rejected(void)
{
    uint8_t in[258];
    memset(in, 'a', 257);
    in[257] = 0;
    size_t n;
    CHECK(frame_parse(in, 258, &n) == FRAME_TOO_LONG);
    /* It fails as soon as 257 bytes hold no NUL, without waiting for more. */
    CHECK(frame_parse(in, 257, &n) == FRAME_TOO_LONG);
    CHECK(frame_parse(in, 256, &n) == FRAME_NEED_MORE);
    result_t w;
    memset(&w, 0, sizeof w);
    w.error = 1;
    check_all_splits(in, sizeof in, &w);
}

static void garbage_megabyte_cut_off(void)
{
    size_t len = 1 << 20;
    uint8_t *in = malloc(len);
    memset(in, '*', len);
    size_t n;
    CHECK(frame_parse(in, len, &n) == FRAME_TOO_LONG);
    free(in);
}

static void empty_input_and_empty_frame(void)
{
    size_t n = 99;
    CHECK(frame_next((const uint8_t *)"", 0, 1, &n) == FRAME_NEED_MORE);
    CHECK(frame_parse((const uint8_t *)"\0", 1, &n) == 1 && n == 0);
}

static void never_reads_past_len(void)
{
    /* The input ends exactly at a heap allocation's end: ASan catches an
     * over-read if the parser looks one byte too far. */
    for (size_t len = 0; len <= 300; len++) {
        uint8_t *p = malloc(len ? len : 1);
        memset(p, 'x', len);
        size_t n;
        int rc = frame_parse(p, len, &n);
        CHECK(len > FRAME_MAX ? rc == FRAME_TOO_LONG : rc == FRAME_NEED_MORE);
        free(p);
    }
}

int main(void)
{
    RUN(several_frames_in_one_read);
    RUN(unterminated_frame_at_eof);
    RUN(boundary_256_accepted);
    RUN(boundary_257_rejected);
    RUN(garbage_megabyte_cut_off);
    RUN(empty_input_and_empty_frame);
    RUN(never_reads_past_len);
    UNIT_DONE();
}
