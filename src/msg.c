/* msg.c - see msg.h. */
#include "msg.h"

#include <jansson.h>
#include <string.h>

#include "uuid.h"

static const char *const names[] = {
    [MSG_AUTHENTICATE] = "Authenticate", [MSG_HELLO] = "Hello",
    [MSG_ACCEPT] = "Accept",             [MSG_CHALLENGE] = "Challenge",
    [MSG_HEARTBEAT] = "Heartbeat",       [MSG_CONNECTION] = "Connection",
    [MSG_ERROR] = "Error",
};

static int allowed(enum msg_dir dir, enum msg_type t)
{
    if (dir == MSG_FROM_CLIENT) return t == MSG_AUTHENTICATE || t == MSG_HELLO || t == MSG_ACCEPT;
    return t == MSG_CHALLENGE || t == MSG_HELLO || t == MSG_HEARTBEAT || t == MSG_CONNECTION ||
           t == MSG_ERROR;
}

static int lookup(enum msg_dir dir, const char *name, enum msg_type *t)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0 && allowed(dir, (enum msg_type)i)) {
            *t = (enum msg_type)i;
            return 0;
        }
    }
    return -1;
}

static int decode_value(enum msg_type t, json_t *v, msg_t *out)
{
    switch (t) {
    case MSG_HEARTBEAT:
        return json_is_null(v) ? 0 : -1;
    case MSG_HELLO: {
        if (!json_is_integer(v)) return -1;
        json_int_t port = json_integer_value(v);
        if (port < 0 || port > 65535) return -1;
        out->port = (uint16_t)port;
        return 0;
    }
    case MSG_ACCEPT:
    case MSG_CHALLENGE:
    case MSG_CONNECTION:
        if (!json_is_string(v)) return -1;
        return uuid_parse(json_string_value(v), json_string_length(v), out->uuid);
    case MSG_AUTHENTICATE:
    case MSG_ERROR: {
        if (!json_is_string(v)) return -1;
        size_t n = json_string_length(v);
        if (n > FRAME_MAX) return -1; /* cannot happen: the frame is smaller */
        memcpy(out->text, json_string_value(v), n);
        out->text[n] = '\0';
        out->text_len = n;
        return 0;
    }
    }
    return -1;
}

int msg_decode(enum msg_dir dir, const uint8_t *p, size_t len, msg_t *out)
{
    json_error_t err;
    json_t *root = json_loadb((const char *)p, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (root == NULL) return -1;

    int rc = -1;
    memset(out, 0, sizeof *out);
    if (json_is_string(root)) {
        /* A bare string names a unit variant; Heartbeat is the only one. */
        if (lookup(dir, json_string_value(root), &out->type) == 0 && out->type == MSG_HEARTBEAT)
            rc = 0;
    } else if (json_is_object(root) && json_object_size(root) == 1) {
        const char *key = json_object_iter_key(json_object_iter(root));
        json_t *v = json_object_iter_value(json_object_iter(root));
        if (lookup(dir, key, &out->type) == 0) rc = decode_value(out->type, v, out);
    }
    json_decref(root);
    return rc;
}

int msg_encode(const msg_t *m, uint8_t *out, size_t cap)
{
    json_t *v;
    switch (m->type) {
    case MSG_HEARTBEAT:
        v = json_string(names[MSG_HEARTBEAT]);
        break;
    case MSG_HELLO:
        v = json_pack("{s:i}", names[m->type], (int)m->port);
        break;
    case MSG_ACCEPT:
    case MSG_CHALLENGE:
    case MSG_CONNECTION: {
        char s[UUID_STR_LEN + 1];
        uuid_format(m->uuid, s);
        v = json_pack("{s:s}", names[m->type], s);
        break;
    }
    case MSG_AUTHENTICATE:
    case MSG_ERROR:
        v = json_pack("{s:s%}", names[m->type], m->text, m->text_len);
        break;
    default:
        return -1;
    }
    if (v == NULL) return -1;
    size_t limit = cap - 1 < FRAME_MAX ? cap - 1 : FRAME_MAX;
    size_t n = cap > 0 ? json_dumpb(v, (char *)out, limit, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
    json_decref(v);
    if (n == 0 || n > limit) return -1;
    out[n] = '\0';
    return (int)n + 1;
}

int msg_encode_port(enum msg_type type, uint16_t port, uint8_t *out, size_t cap)
{
    msg_t m = {.type = type, .port = port};
    return msg_encode(&m, out, cap);
}

int msg_encode_uuid(enum msg_type type, const uint8_t uuid[16], uint8_t *out, size_t cap)
{
    msg_t m = {.type = type};
    memcpy(m.uuid, uuid, 16);
    return msg_encode(&m, out, cap);
}

int msg_encode_text(enum msg_type type, const char *text, uint8_t *out, size_t cap)
{
    msg_t m = {.type = type};
    size_t n = strlen(text);
    if (n > FRAME_MAX) return -1;
    memcpy(m.text, text, n + 1);
    m.text_len = n;
    return msg_encode(&m, out, cap);
}
