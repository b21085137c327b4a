/* fuzz_control.c - libFuzzer target for the bore control parsers: the
 * framer over a byte stream (every frame also decoded as a client and as a
 * server message, and re-encoded when valid). */
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (;;) {
        size_t n;
        int rc = frame_next(data + off, size - off, 1, &n);
        if (rc <= 0) break;
        msg_t m;
        uint8_t out[FRAME_MAX + 1];
        for (int dir = 0; dir < 2; dir++)
            if (msg_decode((enum msg_dir)dir, data + off, n, &m) == 0) (void)msg_encode(&m, out, sizeof out);
        off += (size_t)rc;
    }
    return 0;
}
