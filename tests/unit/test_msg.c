/* Control messages (bore protocol §2): every form encoded to the exact
 * bytes and decoded back; the lenient inputs of §1 and the rejects. */
#include "msg.h"
#include "unit.h"
#include "uuid.h"

static const uint8_t U[16] = {0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f,
                              0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f, 0xe0, 0xc8};
#define US "67e55044-10b1-426f-9247-bb680e5fe0c8"

static int decode(enum msg_dir d, const char *s, msg_t *m)
{
    return msg_decode(d, (const uint8_t *)s, strlen(s), m);
}

/* Encodes, compares with `want` (which includes the NUL), decodes it back. */
static void roundtrip(const msg_t *m, enum msg_dir dir, const char *want, size_t want_len)
{
    uint8_t out[300];
    int n = msg_encode(m, out, sizeof out);
    CHECK(n > 0);
    CHECK_MEM(out, n, want, want_len);
    msg_t back;
    CHECK(n > 0 && msg_decode(dir, out, (size_t)n - 1, &back) == 0);
    CHECK(back.type == m->type && back.port == m->port && memcmp(back.uuid, m->uuid, 16) == 0);
    CHECK(back.text_len == m->text_len && memcmp(back.text, m->text, m->text_len) == 0);
}

static void encodes_every_form_exactly(void)
{
    msg_t m = {.type = MSG_HELLO, .port = 0};
    roundtrip(&m, MSG_FROM_CLIENT, "{\"Hello\":0}", 12);
    static const uint8_t hello0[] = {0x7b, 0x22, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x22, 0x3a, 0x30, 0x7d, 0x00};
    uint8_t out[300];
    CHECK_MEM(out, msg_encode(&m, out, sizeof out), hello0, sizeof hello0);

    m.port = 40032;
    roundtrip(&m, MSG_FROM_SERVER, "{\"Hello\":40032}", 16);

    msg_t hb = {.type = MSG_HEARTBEAT};
    static const uint8_t hbb[] = {0x22, 0x48, 0x65, 0x61, 0x72, 0x74, 0x62, 0x65, 0x61, 0x74, 0x22, 0x00};
    CHECK_MEM(out, msg_encode(&hb, out, sizeof out), hbb, sizeof hbb);
    roundtrip(&hb, MSG_FROM_SERVER, "\"Heartbeat\"", 12);

    msg_t u = {.type = MSG_ACCEPT};
    memcpy(u.uuid, U, 16);
    roundtrip(&u, MSG_FROM_CLIENT, "{\"Accept\":\"" US "\"}", sizeof "{\"Accept\":\"" US "\"}");
    u.type = MSG_CHALLENGE;
    roundtrip(&u, MSG_FROM_SERVER, "{\"Challenge\":\"" US "\"}", sizeof "{\"Challenge\":\"" US "\"}");
    u.type = MSG_CONNECTION;
    roundtrip(&u, MSG_FROM_SERVER, "{\"Connection\":\"" US "\"}", sizeof "{\"Connection\":\"" US "\"}");

    msg_t e = {.type = MSG_ERROR, .text = "port already in use", .text_len = 19};
    roundtrip(&e, MSG_FROM_SERVER, "{\"Error\":\"port already in use\"}", 32);

    static const char tag[] = "981cb051fe0f683277b7fff374fbb88346f57acc6e5a062339e486b784c60891";
    msg_t a = {.type = MSG_AUTHENTICATE, .text_len = 64};
    memcpy(a.text, tag, 65);
    int n = msg_encode(&a, out, sizeof out);
    CHECK(n == 84);
    roundtrip(&a, MSG_FROM_CLIENT, "{\"Authenticate\":\"" "981cb051fe0f683277b7fff374fbb88346f57acc6e5a062339e486b784c60891" "\"}", 84);
}

static void encode_respects_limits(void)
{
    uint8_t out[300];
    CHECK(msg_encode_port(MSG_HELLO, 1, out, 5) == -1); /* too small a buffer */
    char big[FRAME_MAX + 1];
    memset(big, 'x', FRAME_MAX);
    big[FRAME_MAX] = '\0';
    CHECK(msg_encode_text(MSG_ERROR, big, out, sizeof out) == -1); /* over the frame cap */
}

static void decodes_lenient_forms(void)
{
    msg_t m;
    CHECK(decode(MSG_FROM_SERVER, "\"Heartbeat\"", &m) == 0 && m.type == MSG_HEARTBEAT);
    CHECK(decode(MSG_FROM_SERVER, "{\"Heartbeat\":null}", &m) == 0 && m.type == MSG_HEARTBEAT);
    CHECK(decode(MSG_FROM_CLIENT, " { \"Hello\" :\n 65535 } ", &m) == 0 && m.port == 65535);
    const char *forms[] = {
        "{\"Accept\":\"" US "\"}",
        "{\"Accept\":\"67E55044-10B1-426F-9247-BB680E5FE0C8\"}",
        "{\"Accept\":\"67e5504410b1426f9247bb680e5fe0c8\"}",
        "{\"Accept\":\"{67e55044-10b1-426f-9247-bb680e5fe0c8}\"}",
        "{\"Accept\":\"urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8\"}",
        "{\"Accept\":\"URN:UUID:67E55044-10b1-426f-9247-bb680e5fe0c8\"}",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        memset(&m, 0, sizeof m);
        CHECK(decode(MSG_FROM_CLIENT, forms[i], &m) == 0 && m.type == MSG_ACCEPT &&
              memcmp(m.uuid, U, 16) == 0);
    }
}

static void rejects(void)
{
    msg_t m;
    const char *client_bad[] = {
        "",
        "{}",
        "null",
        "{\"Hello\":65536}",
        "{\"Hello\":-1}",
        "{\"Hello\":\"80\"}",
        "{\"Hello\":80.0}",
        "{\"Hello\":1e2}",
        "{\"Hello\":null}",
        "\"Hello\"",
        "{\"Hello\":1,\"Accept\":\"" US "\"}",
        "{\"Hello\":1,\"Hello\":2}",
        "{\"Hello\":1} x",
        "{\"Hello\":1}{}",
        "[\"Hello\",1]",
        "\"Heartbeat\"",              /* a server message, not a client one */
        "{\"Challenge\":\"" US "\"}", /* likewise */
        "{\"Accept\":\"67e55044-10b1-426f-9247-bb680e5fe0c\"}",
        "{\"Accept\":\"67e55044-10b1-426f-9247-bb680e5fe0cg\"}",
        "{\"Accept\":\"67e5504410b1-426f-9247-bb680e5fe0c8-\"}",
        "{\"Accept\":12}",
        "{\"Authenticate\":7}",
        "{\"hello\":1}",
        "{\"Hello\":1",
    };
    for (size_t i = 0; i < sizeof client_bad / sizeof client_bad[0]; i++) {
        if (decode(MSG_FROM_CLIENT, client_bad[i], &m) != -1) {
            fprintf(stderr, "  accepted: %s\n", client_bad[i]);
            CHECK(0);
        }
    }
    CHECK(decode(MSG_FROM_SERVER, "{\"Authenticate\":\"x\"}", &m) == -1);
    CHECK(decode(MSG_FROM_SERVER, "{\"Heartbeat\":1}", &m) == -1);
    CHECK(decode(MSG_FROM_SERVER, "{\"Error\":\"a\\u0000b\"}", &m) == -1);
    /* Not valid UTF-8. */
    CHECK(msg_decode(MSG_FROM_SERVER, (const uint8_t *)"{\"Error\":\"\xff\"}", 13, &m) == -1);
}

static void uuid_v4_is_random_v4(void)
{
    uint8_t a[16], b[16];
    CHECK(uuid_v4(a) == 0 && uuid_v4(b) == 0);
    CHECK(memcmp(a, b, 16) != 0);
    CHECK((a[6] >> 4) == 4 && (a[8] & 0xc0) == 0x80);
    char s[UUID_STR_LEN + 1];
    uuid_format(U, s);
    CHECK(strcmp(s, US) == 0);
}

int main(void)
{
    RUN(encodes_every_form_exactly);
    RUN(encode_respects_limits);
    RUN(decodes_lenient_forms);
    RUN(rejects);
    RUN(uuid_v4_is_random_v4);
    UNIT_DONE();
}
