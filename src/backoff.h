/* backoff.h - the reconnect schedule: exponential backoff with jitter.
 *
 * Attempt 1 waits about 0.5 s, each later attempt about twice the one
 * before, up to a cap (30 s for reconnects). "Equal jitter": the delay of
 * attempt n is drawn from [b/2, b], b = min(BACKOFF_BASE_MS * 2^(n-1), cap),
 * so clients cut off together do not come back together, and no delay ever
 * exceeds the cap. A pure function of its inputs: `rnd` is the caller's
 * random number. */
#ifndef BORE_BACKOFF_H
#define BORE_BACKOFF_H

#include <stdint.h>

#define BACKOFF_BASE_MS 500u
#define BACKOFF_CAP_MS 30000u

/* The ceiling b of attempt `attempt` (1, 2, ...; 0 counts as 1). */
unsigned backoff_ceiling_ms(unsigned attempt, unsigned cap_ms);

/* The delay before attempt `attempt`, in [ceiling/2, ceiling]. */
unsigned backoff_delay_ms(unsigned attempt, unsigned cap_ms, uint32_t rnd);

#endif
