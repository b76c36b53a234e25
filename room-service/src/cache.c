/* The room cache (cache.h): a chained hash table of immutable entries under one mutex, emptied
 * whenever the stamp moves, oldest entries evicted first. */
#include "cache.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dblisten.h"
#include "log.h"
#include "metrics.h"
#include "rnd.h"
#include "timefmt.h"

static struct {
	pthread_mutex_t lock;
	struct room_cache_entry **buckets; /* nbuckets, a power of two */
	size_t nbuckets;
	struct room_cache_entry *oldest, *newest; /* insertion order, for eviction */
	size_t count, bytes, max_entries, max_bytes;
	uint64_t table_stamp;   /* the stamp every entry in the table was read under */
	_Atomic uint64_t stamp; /* odd: not listening, nothing is served from memory */
	uint64_t seed; /* of the key hash, random per process: no crafted key set fills one chain */
	struct db_listener *listener;
} room_cache = {.lock = PTHREAD_MUTEX_INITIALIZER, .stamp = 1};

#define FNV_BASIS 14695981039346656037ULL

/* FNV-1a of data, continuing from h. */
#define HITS_HELP "room reads answered from memory"
#define MISSES_HELP "room reads the cache could not answer while in use"

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* A key's hash: seeded, and finished (MurmurHash3's fmix64) so that the bucket, its low bits,
 * depends on every bit of every byte. */
static uint64_t key_hash(const char *key)
{
	uint64_t h = fnv1a(FNV_BASIS ^ room_cache.seed, key, strlen(key));
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

bool room_cache_etag(const char *body, size_t len, const json_t *next,
                     char out[ROOM_CACHE_ETAG_MAX])
{
	uint64_t h = fnv1a(FNV_BASIS, body, len);
	if (next) {
		/* The next page's cursor is part of the answer (its Link): a NUL, which JSON text
		 * never holds, then the cursor's JSON. */
		char *text = json_dumps(next, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text)
			return false;
		h = fnv1a(fnv1a(h, "", 1), text, strlen(text));
		free(text);
	}
	snprintf(out, ROOM_CACHE_ETAG_MAX, "\"%016" PRIx64 "\"", h);
	return true;
}

static void entry_free(struct room_cache_entry *e)
{
	free(e->body);
	free(e->key);
	json_decref(e->next);
	free(e);
}

void room_cache_release(const struct room_cache_entry *e)
{
	struct room_cache_entry *m = (struct room_cache_entry *)e;
	if (m && atomic_fetch_sub(&m->refs, 1) == 1)
		entry_free(m);
}

/* Unlinks e from its bucket and the insertion list (lock held) and drops the table's
 * reference. */
static void table_remove(struct room_cache_entry *e)
{
	struct room_cache_entry **p = &room_cache.buckets[e->hash & (room_cache.nbuckets - 1)];
	while (*p != e)
		p = &(*p)->chain;
	*p = e->chain;
	/* Only the oldest entry is ever removed singly (eviction); clearing empties the list. */
	room_cache.oldest = e->newer;
	if (!room_cache.oldest)
		room_cache.newest = NULL;
	room_cache.count--;
	room_cache.bytes -= e->bytes;
	room_cache_release(e);
}

/* Brings the table to stamp (lock held): answers read under an older one go.  An older stamp
 * (a reader that loaded it before another thread moved on) changes nothing: the table's
 * answers are newer than what that reader asked for. */
static void table_sync(uint64_t stamp)
{
	if (stamp <= room_cache.table_stamp)
		return;
	while (room_cache.oldest)
		table_remove(room_cache.oldest);
	room_cache.table_stamp = stamp;
}

const struct room_cache_entry *room_cache_get(const char *key)
{
	struct room_cache_entry *hit = NULL;
	uint64_t stamp = atomic_load(&room_cache.stamp);
	if (room_cache.max_entries == 0 || (stamp & 1))
		return NULL;
	/* The listener flips the stamp when it goes quiet, but only when its thread runs. */
	if (timefmt_mono_ms() - db_listen_confirmed_ms(room_cache.listener) >= DB_LISTEN_FRESH_MS)
		return NULL;
	uint64_t h = key_hash(key);
	pthread_mutex_lock(&room_cache.lock);
	table_sync(stamp);
	for (struct room_cache_entry *e = room_cache.buckets[h & (room_cache.nbuckets - 1)]; e;
	     e = e->chain) {
		if (e->hash == h && strcmp(e->key, key) == 0) {
			atomic_fetch_add(&e->refs, 1);
			hit = e;
			break;
		}
	}
	pthread_mutex_unlock(&room_cache.lock);
	if (hit)
		metrics_counter_add("room_cache_hits_total", HITS_HELP, 1);
	else
		metrics_counter_add("room_cache_misses_total", MISSES_HELP, 1);
	return hit;
}

uint64_t room_cache_stamp(void)
{
	return atomic_load(&room_cache.stamp);
}

const struct room_cache_entry *room_cache_put(const char *key, uint64_t stamp, char *body,
                                              size_t len, const char *etag, json_t *next)
{
	struct room_cache_entry *e = calloc(1, sizeof *e);
	char *k = strdup(key);
	if (!e || !k) {
		free(e);
		free(k);
		free(body);
		json_decref(next);
		return NULL;
	}
	e->body = body;
	e->len = len;
	snprintf(e->etag, sizeof e->etag, "%s", etag);
	e->next = next;
	e->key = k;
	e->hash = key_hash(key);
	e->bytes = sizeof *e + len + strlen(key) + 1 + (next ? 64 : 0);
	e->refs = 1;
	if (room_cache.max_entries == 0 || (stamp & 1) || e->bytes > room_cache.max_bytes)
		return e;
	pthread_mutex_lock(&room_cache.lock);
	uint64_t now = atomic_load(&room_cache.stamp);
	if (now == stamp) {
		table_sync(now);
		struct room_cache_entry **p =
			&room_cache.buckets[e->hash & (room_cache.nbuckets - 1)];
		bool present = false;
		for (struct room_cache_entry *o = *p; o; o = o->chain)
			present = present || (o->hash == e->hash && strcmp(o->key, key) == 0);
		if (!present) {
			while (room_cache.oldest &&
			       (room_cache.count + 1 > room_cache.max_entries ||
			        room_cache.bytes + e->bytes > room_cache.max_bytes))
				table_remove(room_cache.oldest);
			e->refs = 2; /* the table's and the caller's */
			e->chain = *p;
			*p = e;
			if (room_cache.newest)
				room_cache.newest->newer = e;
			else
				room_cache.oldest = e;
			room_cache.newest = e;
			room_cache.count++;
			room_cache.bytes += e->bytes;
		}
	}
	pthread_mutex_unlock(&room_cache.lock);
	return e;
}

void room_cache_invalidate(void)
{
	/* +2 keeps the parity: listening or not is the listener's to say. */
	atomic_fetch_add(&room_cache.stamp, 2);
}

/* The listener's thread: UP and DOWN alternate (dblisten.h), so each flips the parity. */
static void room_cache_heard(void *arg, enum db_listen_event event)
{
	(void)arg;
	atomic_fetch_add(&room_cache.stamp, event == DB_LISTEN_NOTIFIED ? 2 : 1);
	if (event != DB_LISTEN_NOTIFIED)
		log_info("room cache %s", event == DB_LISTEN_UP ? "in use" : "bypassed");
}

static double gauge_entries(void)
{
	pthread_mutex_lock(&room_cache.lock);
	double v = (double)room_cache.count;
	pthread_mutex_unlock(&room_cache.lock);
	return v;
}

static double gauge_bytes(void)
{
	pthread_mutex_lock(&room_cache.lock);
	double v = (double)room_cache.bytes;
	pthread_mutex_unlock(&room_cache.lock);
	return v;
}

static double gauge_listening(void)
{
	return (atomic_load(&room_cache.stamp) & 1) ? 0 : 1;
}

bool room_cache_start(const char *app_name, long long max_entries, long long max_bytes)
{
	if (max_entries <= 0)
		return true;
	size_t n = 16;
	while (n < (size_t)max_entries * 2)
		n *= 2;
	unsigned char seed[sizeof room_cache.seed];
	if (!rnd_bytes(seed, sizeof seed))
		return false;
	memcpy(&room_cache.seed, seed, sizeof seed);
	room_cache.buckets = calloc(n, sizeof *room_cache.buckets);
	if (!room_cache.buckets)
		return false;
	room_cache.nbuckets = n;
	room_cache.max_entries = (size_t)max_entries;
	room_cache.max_bytes = (size_t)max_bytes;
	metrics_register_gauge("room_cache_entries", "answers in the room cache", gauge_entries);
	metrics_register_gauge("room_cache_bytes", "bytes held by the room cache", gauge_bytes);
	metrics_register_gauge("room_cache_listening",
	                       "1 while the room cache is in use (its listener is current)",
	                       gauge_listening);
	/* Shown from the start, not from the first hit or miss. */
	metrics_counter_add("room_cache_hits_total", HITS_HELP, 0);
	metrics_counter_add("room_cache_misses_total", MISSES_HELP, 0);
	room_cache.listener = db_listen_start(ROOM_CACHE_CHANNEL, app_name, room_cache_heard, NULL);
	return room_cache.listener != NULL;
}

void room_cache_stop(void)
{
	db_listen_stop(room_cache.listener);
	room_cache.listener = NULL;
	pthread_mutex_lock(&room_cache.lock);
	while (room_cache.oldest)
		table_remove(room_cache.oldest);
	pthread_mutex_unlock(&room_cache.lock);
	free(room_cache.buckets);
	room_cache.buckets = NULL;
	room_cache.max_entries = 0;
}
