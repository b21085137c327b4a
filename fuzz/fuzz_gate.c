/* fuzz_gate.c - the authentication gate (kgate.h, ksasl.h) driven by a
 * hostile client: the input is the client's bytes, cut into reads of a
 * size taken from its first byte. Besides ASan/UBSan/LSan, one invariant:
 * the gate never passes. The one user's password is random per process,
 * so no input can know it, and a gate that passed would hand an
 * unauthenticated client's bytes to a broker. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/rand.h>
#include <uv.h>

#include "kgate.h"
#include "ksasl.h"
#include "log.h"

static ksasl_store_t store;

static void on_emit(void *ctx, uint8_t *owned, size_t len)
{
    (void)ctx;
    (void)len;
    free(owned);
}

static void on_close(void *ctx) { (void)ctx; }

static void setup(void)
{
    setenv("BORE_LOG", "error", 1);
    log_init();
    uint8_t pw[16];
    char hex[33];
    ksasl_user_t u;
    if (ksasl_store_init(&store) != 0 || RAND_bytes(pw, sizeof pw) != 1) abort();
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", pw[i]);
    if (ksasl_user_derive(&u, "alice", hex, 32, KSASL_ITER_MIN) != 0 || ksasl_store_put(&store, &u) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1) return 0;
    size_t step = (size_t)data[0] % 97 + 1;
    data++;
    size--;
    uv_loop_t *loop = uv_default_loop();
    static const kgate_api_t apis[] = {{18, 0, 4}, {3, 0, 13}, {0, 0, 11}, {17, 0, 1}, {36, 0, 2}};
    kgate_config_t cfg = {&store, 1, 0, apis, sizeof apis / sizeof apis[0]};
    kgate_io_t io = {on_emit, on_close, NULL};
    kgate_t *g = kgate_new(loop, &cfg, &io, "fuzz");
    if (g == NULL) return 0;
    for (size_t off = 0; off < size;) {
        size_t k = size - off < step ? size - off : step;
        ssize_t used = kgate_input(g, data + off, k);
        if (kgate_passed(g)) abort();
        if (used < 0 || (size_t)used < k) break; /* closed, or paused for good */
        off += k;
    }
    kgate_free(g);
    uv_run(loop, UV_RUN_NOWAIT); /* the timers' close callbacks free the gate */
    return 0;
}
