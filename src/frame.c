/* frame.c - see frame.h. */
#include "frame.h"

#include <string.h>

int frame_parse(const uint8_t *buf, size_t len, size_t *frame_len)
{
    size_t scan = len < FRAME_MAX + 1 ? len : FRAME_MAX + 1;
    const uint8_t *nul = memchr(buf, 0, scan);
    if (nul != NULL) {
        *frame_len = (size_t)(nul - buf);
        return (int)*frame_len + 1;
    }
    return len > FRAME_MAX ? FRAME_TOO_LONG : FRAME_NEED_MORE;
}

int frame_next(const uint8_t *buf, size_t len, int eof, size_t *frame_len)
{
    int rc = frame_parse(buf, len, frame_len);
    if (rc == FRAME_NEED_MORE && eof && len > 0) {
        *frame_len = len;
        return (int)len;
    }
    return rc;
}
