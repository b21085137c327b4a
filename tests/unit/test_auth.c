/* Authentication (bore protocol §5): all eight HMAC vectors, the two live
 * pairs, and the verifier's rejects. */
#include "auth.h"
#include "unit.h"
#include "uuid.h"

static const struct {
    const char *secret, *challenge, *tag;
} vectors[] = {
    {"", "00000000-0000-0000-0000-000000000000", "d12735575423a0e7f53a6191fd5ffe258d92297e771ff55f4ba8e4672bf05aba"},
    {"", "67e55044-10b1-426f-9247-bb680e5fe0c8", "a843ecfc278c6e239b223976b9cb758e8c9edac1d25ce85ba612cae34fd1c9eb"},
    {"abc", "00000000-0000-0000-0000-000000000000", "4fc5de8656c9bff277dc567838734f55309f363059f228ec14ab2506ab8793a8"},
    {"abc", "67e55044-10b1-426f-9247-bb680e5fe0c8", "1424b8e9f59eb93ad61f3281b3e700dcd0b265ae01090c31fad0009019a74155"},
    {"my secret", "00000000-0000-0000-0000-000000000000", "6f16586a48d19d76c9a2780d52bae9796ea2c46e787c1a4d50aff7250a3a4d72"},
    {"my secret", "67e55044-10b1-426f-9247-bb680e5fe0c8", "981cb051fe0f683277b7fff374fbb88346f57acc6e5a062339e486b784c60891"},
    {"some secret string", "00000000-0000-0000-0000-000000000000", "c8a5f3b80f953d6137406c0c832683620e330228cf1d5efa617f7d9aa2d957d1"},
    {"some secret string", "67e55044-10b1-426f-9247-bb680e5fe0c8", "644048067903b23cb7641f8eb7060c6b20661200385b394443530ae12df659ad"},
    {"my secret", "58754649-28b9-4a87-bac6-64737ce386b3", "34fa3ef734fde23de97d871a1da4081a55871fad9725599d6de4d7745a00365c"},
    {"my secret", "740e37b3-ff45-4611-be5a-bdf5b9e76008", "1dd8b27cd553382021fe5aea918347e0dadfc235e5a9ee07ecebb770e4cca7be"},
};

static void hmac_vectors(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        uint8_t key[AUTH_KEY_LEN], u[16];
        char tag[AUTH_TAG_HEX_LEN + 1];
        auth_key(vectors[i].secret, strlen(vectors[i].secret), key);
        CHECK(uuid_parse(vectors[i].challenge, 36, u) == 0);
        CHECK(auth_tag_hex(key, u, tag) == 0);
        if (strcmp(tag, vectors[i].tag) != 0) {
            fprintf(stderr, "  vector %zu: got %s\n", i, tag);
            CHECK(0);
        }
        CHECK(auth_verify(key, u, vectors[i].tag, 64) == 1);
    }
}

static void verify_rejects(void)
{
    uint8_t key[AUTH_KEY_LEN], u[16] = {0};
    auth_key("abc", 3, key);
    char good[] = "4fc5de8656c9bff277dc567838734f55309f363059f228ec14ab2506ab8793a8";
    char upper[] = "4FC5DE8656C9BFF277DC567838734F55309F363059F228EC14AB2506AB8793A8";
    CHECK(auth_verify(key, u, upper, 64) == 1); /* either case */
    CHECK(auth_verify(key, u, good, 63) == 0);  /* wrong length */
    char bad[65];
    memcpy(bad, good, 65);
    bad[10] = 'g';
    CHECK(auth_verify(key, u, bad, 64) == 0); /* non-hex */
    memcpy(bad, good, 65);
    bad[63] = '9';
    CHECK(auth_verify(key, u, bad, 64) == 0); /* last byte differs */
    uint8_t other[AUTH_KEY_LEN];
    auth_key("", 0, other);
    CHECK(auth_verify(other, u, good, 64) == 0); /* wrong secret */
}

int main(void)
{
    RUN(hmac_vectors);
    RUN(verify_rejects);
    UNIT_DONE();
}
