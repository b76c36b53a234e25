/* ratelimit: token buckets per client key (an IP address), for abuse-prone endpoints such as
 * sign-in.  A bucket holds up to `per_minute` tokens and refills continuously.  The table is
 * bounded (RATELIMIT_SLOTS keys); when it is full the least recently seen key of a probe window
 * is forgotten.  Thread-safe (one mutex; a take is a few instructions). */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stdbool.h>

#define RATELIMIT_SLOTS 4096
#define RATELIMIT_KEY_MAX 64

struct ratelimit;

/* per_minute 0 disables limiting (every take succeeds).  NULL on allocation failure. */
struct ratelimit *ratelimit_new(unsigned per_minute);
void ratelimit_free(struct ratelimit *rl);

/* Takes one token for key at time now_ms (monotonic).  Returns false when the bucket is empty;
 * *retry_after then receives the whole seconds until a token is back (≥ 1). */
bool ratelimit_take(struct ratelimit *rl, const char *key, long long now_ms, int *retry_after);

#endif
