/* frame.h - control-connection framing (bore protocol §1).
 *
 * A frame is compact JSON followed by one NUL byte, at most FRAME_MAX bytes
 * long not counting the NUL. The parser follows the picohttpparser contract:
 * it never allocates and never reads past `len`. */
#ifndef BORE_FRAME_H
#define BORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX 256

enum { FRAME_NEED_MORE = -2, FRAME_TOO_LONG = -1 };

/* Looks for one frame at the start of buf[0..len).
 * Returns the bytes consumed including the NUL (> 0) and sets *frame_len to
 * the payload length; FRAME_NEED_MORE if no NUL yet and len <= FRAME_MAX;
 * FRAME_TOO_LONG as soon as more than FRAME_MAX bytes hold no NUL. At EOF the
 * caller decodes a non-empty unterminated remainder (<= FRAME_MAX) as a final
 * frame, as upstream does. */
int frame_parse(const uint8_t *buf, size_t len, size_t *frame_len);

/* frame_parse, plus the EOF rule: with `eof` set, a non-empty unterminated
 * remainder is returned as a final frame (consuming all of it). */
int frame_next(const uint8_t *buf, size_t len, int eof, size_t *frame_len);

#endif
