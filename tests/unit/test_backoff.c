/* test_backoff.c - the reconnect schedule (backoff.h). */
#include "backoff.h"
#include "unit.h"

static void test_backoff_first_attempt_waits_about_half_a_second(void)
{
    CHECK(backoff_ceiling_ms(1, BACKOFF_CAP_MS) == 500);
    CHECK(backoff_ceiling_ms(0, BACKOFF_CAP_MS) == 500);
    CHECK(backoff_delay_ms(1, BACKOFF_CAP_MS, 0) == 250);
    CHECK(backoff_delay_ms(1, BACKOFF_CAP_MS, 250) == 500);
}

static void test_backoff_doubles_until_the_cap(void)
{
    unsigned want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(backoff_ceiling_ms(i + 1, BACKOFF_CAP_MS) == want[i]);
    CHECK(backoff_ceiling_ms(1000000, BACKOFF_CAP_MS) == 30000);
    CHECK(backoff_ceiling_ms(4000000000u, BACKOFF_CAP_MS) == 30000);
    CHECK(backoff_ceiling_ms(5, 2000) == 2000);
}

static void test_backoff_jitter_stays_within_half_and_whole_ceiling(void)
{
    uint32_t x = 12345;
    for (unsigned attempt = 1; attempt < 40; attempt++) {
        unsigned b = backoff_ceiling_ms(attempt, BACKOFF_CAP_MS);
        unsigned lo = b, hi = 0;
        for (int i = 0; i < 2000; i++) {
            x = x * 1103515245u + 12345u;
            unsigned d = backoff_delay_ms(attempt, BACKOFF_CAP_MS, x);
            CHECK(d >= b / 2 && d <= b);
            CHECK(d <= BACKOFF_CAP_MS);
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        /* the jitter really spreads: both ends of the range are approached */
        CHECK(lo < b / 2 + b / 8 && hi > b - b / 8);
    }
    CHECK(backoff_delay_ms(100, BACKOFF_CAP_MS, 0xffffffffu) <= BACKOFF_CAP_MS);
}

int main(void)
{
    RUN(test_backoff_first_attempt_waits_about_half_a_second);
    RUN(test_backoff_doubles_until_the_cap);
    RUN(test_backoff_jitter_stays_within_half_and_whole_ceiling);
    UNIT_DONE();
}
