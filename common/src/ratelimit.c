#include "ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_PROBE 8

struct ratelimit_slot {
	char key[RATELIMIT_KEY_MAX];
	double tokens;
	long long last_ms;
};

struct ratelimit {
	pthread_mutex_t mu;
	double capacity;
	double per_ms; /* tokens added per millisecond */
	struct ratelimit_slot slots[RATELIMIT_SLOTS];
};

struct ratelimit *ratelimit_new(unsigned per_minute)
{
	struct ratelimit *rl = calloc(1, sizeof *rl);
	if (!rl)
		return NULL;
	pthread_mutex_init(&rl->mu, NULL);
	rl->capacity = per_minute;
	rl->per_ms = per_minute / 60000.0;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

/* FNV-1a */
static uint32_t ratelimit_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

bool ratelimit_take(struct ratelimit *rl, const char *key, long long now_ms, int *retry_after)
{
	*retry_after = 0;
	if (!rl || rl->capacity <= 0)
		return true;
	char k[RATELIMIT_KEY_MAX];
	strncpy(k, key, sizeof k - 1);
	k[sizeof k - 1] = '\0';

	pthread_mutex_lock(&rl->mu);
	uint32_t h = ratelimit_hash(k);
	struct ratelimit_slot *slot = NULL, *oldest = NULL;
	for (uint32_t i = 0; i < RATELIMIT_PROBE; i++) {
		struct ratelimit_slot *s = &rl->slots[(h + i) % RATELIMIT_SLOTS];
		if (s->key[0] && strcmp(s->key, k) == 0) {
			slot = s;
			break;
		}
		if (!oldest || !s->key[0] || (oldest->key[0] && s->last_ms < oldest->last_ms))
			oldest = s;
	}
	if (!slot) {
		slot = oldest;
		memcpy(slot->key, k, sizeof k);
		slot->tokens = rl->capacity;
		slot->last_ms = now_ms;
	}
	double tokens = slot->tokens + (double)(now_ms - slot->last_ms) * rl->per_ms;
	if (tokens > rl->capacity)
		tokens = rl->capacity;
	slot->last_ms = now_ms;
	bool ok = tokens >= 1.0;
	if (ok)
		tokens -= 1.0;
	else {
		/* Whole seconds, rounded up (the epsilon absorbs floating-point noise). */
		double secs = (1.0 - tokens) / rl->per_ms / 1000.0;
		int whole = (int)secs;
		if (secs - whole > 1e-6)
			whole++;
		*retry_after = whole < 1 ? 1 : whole;
	}
	slot->tokens = tokens;
	pthread_mutex_unlock(&rl->mu);
	return ok;
}
