/* test_kports.c - kafka-proxy's remembered ports (kports.h): a round trip,
 * other clusters' entries kept, a bad or hostile file read as empty. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kports.h"
#include "log.h"
#include "state.h"
#include "unit.h"

static char dir[64];

static void write_file(const char *text)
{
    CHECK(state_write(dir, KPORTS_FILE, text, strlen(text), 0600) == 0);
}

static void test_kports_round_trip_keeps_other_clusters(void)
{
    kports_t *k = calloc(1, sizeof *k);
    kports_set(k, -1, 29092);
    kports_set(k, 1, 31001);
    kports_set(k, 2, 31002);
    kports_set(k, 1, 31011); /* replaced, not added */
    CHECK(k->n == 3);
    CHECK(kports_save(dir, "srv:7835|kafka:9092", k) == 0);
    kports_t *o = calloc(1, sizeof *o);
    kports_set(o, -1, 40000);
    CHECK(kports_save(dir, "other:7835|kafka:9092", o) == 0);
    kports_t *got = calloc(1, sizeof *got);
    kports_load(dir, "srv:7835|kafka:9092", got);
    CHECK(got->n == 3);
    CHECK(kports_get(got, -1) == 29092 && kports_get(got, 1) == 31011 && kports_get(got, 2) == 31002);
    CHECK(kports_get(got, 3) == 0);
    kports_load(dir, "other:7835|kafka:9092", got);
    CHECK(got->n == 1 && kports_get(got, -1) == 40000);
    kports_load(dir, "unknown", got);
    CHECK(got->n == 0);
    free(k);
    free(o);
    free(got);
}

static void test_kports_bad_files_are_an_empty_memory(void)
{
    static const char *const bad[] = {
        "", "not json", "[1,2]", "{\"clusters\":[]}", "{\"clusters\":{\"k\":[]}}",
        "{\"clusters\":{\"k\":{\"1\":\"31001\",\"x\":1,\"2\":0,\"3\":65536,\"-2\":5,\"4\":-1,"
        "\"99999999999\":5,\"5\":1.5}}}",
    };
    kports_t *got = calloc(1, sizeof *got);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bad[i]);
        kports_load(dir, "k", got);
        CHECK(got->n == 0);
    }
    write_file("{\"clusters\":{\"k\":{\"1\":31001,\"x\":1,\"2\":70000}}}");
    kports_load(dir, "k", got);
    CHECK(got->n == 1 && kports_get(got, 1) == 31001);
    /* saving over a bad file replaces it */
    write_file("garbage");
    kports_set(got, 2, 31002);
    CHECK(kports_save(dir, "k", got) == 0);
    kports_load(dir, "k", got);
    CHECK(got->n == 2 && kports_get(got, 2) == 31002);
    free(got);
}

int main(void)
{
    log_init();
    snprintf(dir, sizeof dir, "/tmp/bore-test-kports-XXXXXX");
    if (mkdtemp(dir) == NULL) return 1;
    RUN(test_kports_round_trip_keeps_other_clusters);
    RUN(test_kports_bad_files_are_an_empty_memory);
    char path[STATE_PATH_MAX];
    if (state_path(dir, KPORTS_FILE, path, sizeof path) == 0) unlink(path);
    rmdir(dir);
    UNIT_DONE();
}
