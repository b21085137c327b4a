/* unit.h - a minimal unit test harness. Each TEST is a function; RUN runs
 * it and prints "ok <name>" or "FAIL <name>" with the failed checks; the
 * binary ends with "N passed, N failed" and exits non-zero on a failure. */
#ifndef BORE_UNIT_H
#define BORE_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed, unit_current_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);             \
            unit_current_failed = 1;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(got, got_len, want, want_len)                                                    \
    CHECK((size_t)(got_len) == (size_t)(want_len) && memcmp((got), (want), (want_len)) == 0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        unit_current_failed = 0;                                                                   \
        fn();                                                                                      \
        if (unit_current_failed) {                                                                 \
            unit_failed++;                                                                         \
            printf("FAIL %s\n", #fn);                                                              \
        } else {                                                                                   \
            unit_passed++;                                                                         \
            printf("ok %s\n", #fn);                                                                \
        }                                                                                          \
    } while (0)

#define UNIT_DONE()                                                                                \
    do {                                                                                           \
        printf("%d passed, %d failed\n", unit_passed, unit_failed);                                \
        return unit_failed ? 1 : 0;                                                                \
    } while (0)

#endif
