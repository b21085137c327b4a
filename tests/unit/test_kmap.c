/* Address maps (kmap.h): both forms of --map, what is refused, and which map
 * a broker gets (by address before by node id; names in any case; the
 * bootstrap address by address only). */
#include <stdlib.h>

#include "kmap.h"
#include "unit.h"

static void test_parse_both_forms(void)
{
    kmap_t m = {NULL, 0};
    char err[160];
    CHECK(kmap_add(&m, "kafka-2.internal.example:29092=127.0.0.1:19092", err, sizeof err) == 0);
    CHECK(kmap_add(&m, "3=[::1]:19093", err, sizeof err) == 0);
    CHECK(m.n == 2);
    CHECK(m.items[0].node_id == -1 && strcmp(m.items[0].from_host, "kafka-2.internal.example") == 0 &&
          m.items[0].from_port == 29092 && strcmp(m.items[0].to_host, "127.0.0.1") == 0 &&
          m.items[0].to_port == 19092);
    CHECK(m.items[1].node_id == 3 && strcmp(m.items[1].to_host, "::1") == 0 && m.items[1].to_port == 19093);
    kmap_free(&m);
}

static void test_refused(void)
{
    static const char *const bad[] = {
        "kafka-2:29092",        /* no '=' */
        "=a:1",                 /* nothing on the left */
        "kafka-2=a:1",          /* advertised address without its port */
        "kafka-2:0=a:1",        /* port out of range */
        "1=a",                  /* target without a port */
        "1=a:65536",            /* target port out of range */
        "1=",                   /* no target */
        "2147483648=a:1",       /* node id over INT32_MAX */
        "-1=a:1",               /* not a node id, not HOST:PORT */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kmap_t m = {NULL, 0};
        char err[160] = "";
        CHECK(kmap_add(&m, bad[i], err, sizeof err) == -1);
        CHECK(err[0] != '\0' && m.n == 0);
        kmap_free(&m);
    }
}

static void test_duplicates_and_cap(void)
{
    kmap_t m = {NULL, 0};
    char err[160], spec[64];
    CHECK(kmap_add(&m, "2=a:1", err, sizeof err) == 0);
    CHECK(kmap_add(&m, "2=b:1", err, sizeof err) == -1);
    CHECK(kmap_add(&m, "Kafka-2:9=a:1", err, sizeof err) == 0);
    CHECK(kmap_add(&m, "kafka-2:9=b:1", err, sizeof err) == -1); /* the same name, another case */
    CHECK(kmap_add(&m, "kafka-2:10=b:1", err, sizeof err) == 0);  /* another port: another key */
    kmap_free(&m);
    for (int i = 0; i < KMAP_MAX; i++) {
        snprintf(spec, sizeof spec, "%d=h:1", i);
        CHECK(kmap_add(&m, spec, err, sizeof err) == 0);
    }
    CHECK(kmap_add(&m, "999999=h:1", err, sizeof err) == -1 && strstr(err, "too many") != NULL);
    kmap_free(&m);
}

static void test_find(void)
{
    kmap_t m = {NULL, 0};
    char err[160];
    CHECK(kmap_add(&m, "2=by-id:1", err, sizeof err) == 0);
    CHECK(kmap_add(&m, "KAFKA-2.example:29092=by-address:2", err, sizeof err) == 0);
    const char *host = "kafka-2.example:29092 trailing bytes"; /* not NUL-terminated at the name */
    const kmap_entry_t *e = kmap_find(&m, 2, host, 15, 29092);
    CHECK(e != NULL && strcmp(e->to_host, "by-address") == 0); /* by address wins */
    e = kmap_find(&m, 2, "elsewhere", 9, 29092);
    CHECK(e != NULL && strcmp(e->to_host, "by-id") == 0);
    CHECK(kmap_find(&m, 3, "elsewhere", 9, 29092) == NULL);
    CHECK(kmap_find(&m, 2, host, 15, 29093) != NULL);             /* by id still */
    CHECK(kmap_find(&m, -1, host, 15, 29093) == NULL);            /* bootstrap: by address only */
    CHECK(kmap_find(&m, -1, host, 15, 29092) != NULL);
    CHECK(kmap_find(&m, 5, host, 14, 29092) == NULL);             /* a prefix of the name is not it */
    kmap_t empty = {NULL, 0};
    CHECK(kmap_find(&empty, 2, host, 15, 29092) == NULL);
    kmap_free(&m);
}

int main(void)
{
    RUN(test_parse_both_forms);
    RUN(test_refused);
    RUN(test_duplicates_and_cap);
    RUN(test_find);
    UNIT_DONE();
}
