/* backoff.c - see backoff.h. */
#include "backoff.h"

unsigned backoff_ceiling_ms(unsigned attempt, unsigned cap_ms)
{
    unsigned b = BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempt && b < cap_ms; i++) b *= 2; /* stops long before overflow */
    return b < cap_ms ? b : cap_ms;
}

unsigned backoff_delay_ms(unsigned attempt, unsigned cap_ms, uint32_t rnd)
{
    unsigned b = backoff_ceiling_ms(attempt, cap_ms);
    unsigned half = b / 2;
    return half + (unsigned)(rnd % (uint32_t)(b - half + 1));
}
