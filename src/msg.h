/* msg.h - bore control messages (bore protocol §2): serde "externally
 * tagged" JSON, decoded leniently with jansson and encoded in the exact
 * compact forms upstream emits.
 *
 * Decoding is direction-specific, as upstream's two enums are: a server reads
 * client messages (Authenticate, Hello, Accept), a client reads server
 * messages (Challenge, Hello, Heartbeat, Connection, Error). */
#ifndef BORE_MSG_H
#define BORE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

enum msg_type {
    MSG_AUTHENTICATE,
    MSG_HELLO,
    MSG_ACCEPT,
    MSG_CHALLENGE,
    MSG_HEARTBEAT,
    MSG_CONNECTION,
    MSG_ERROR,
};

enum msg_dir { MSG_FROM_CLIENT, MSG_FROM_SERVER };

typedef struct {
    enum msg_type type;
    uint16_t port;         /* Hello */
    uint8_t uuid[16];      /* Accept, Challenge, Connection */
    char text[FRAME_MAX + 1]; /* Authenticate, Error: NUL-terminated */
    size_t text_len;
} msg_t;

/* Decodes one frame payload. Returns 0, or -1 for anything that is not a
 * valid message of that direction (bad JSON, wrong type, trailing garbage). */
int msg_decode(enum msg_dir dir, const uint8_t *p, size_t len, msg_t *out);

/* Encodes m followed by its NUL into out. Returns the byte count including
 * the NUL, or -1 if it would not fit in `cap` or in FRAME_MAX. */
int msg_encode(const msg_t *m, uint8_t *out, size_t cap);

/* Shorthands for encoding. */
int msg_encode_port(enum msg_type type, uint16_t port, uint8_t *out, size_t cap);
int msg_encode_uuid(enum msg_type type, const uint8_t uuid[16], uint8_t *out, size_t cap);
int msg_encode_text(enum msg_type type, const char *text, uint8_t *out, size_t cap);

#endif
