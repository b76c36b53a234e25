/* cache: the answers of room reads (GET /rooms/{id}, GET /rooms) kept in memory, correct across
 * replicas (docs/architecture.md#the-room-cache).
 *
 * Every statement that changes rooms notifies the channel room_changes (a trigger, migration
 * 002), whoever runs it; each process listens on a session of its own (dblisten.h).  The cache
 * has a stamp: even while the listener is sure to hear of every change, odd while it is not
 * (before the first LISTEN, after the session broke or went quiet).  Any notification, local
 * write or change of the listener's state moves the stamp, and an answer is served from memory
 * only while the stamp it was read under is still the current one.  So: a change is seen by every
 * replica as soon as its notification arrives (milliseconds; at worst DB_LISTEN_FRESH_MS after a
 * silent network failure), and nothing is served from memory while the listener is down.
 *
 * A reader takes the stamp *before* it reads the database (room_cache_stamp), then offers what
 * it read with that stamp (room_cache_put), which keeps it only if nothing changed meanwhile.
 * Entries are immutable and reference-counted: a reader may use one after another thread has
 * evicted it.  Bounded by entry count and bytes (the oldest go first).  All functions are
 * thread-safe. */
#ifndef ROOM_CACHE_H
#define ROOM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define ROOM_CACHE_ETAG_MAX 40
#define ROOM_CACHE_CHANNEL "room_changes" /* the trigger's channel (migration 002) */

/* One answer: the JSON body, its ETag and, for a list that has more pages, the next page's
 * cursor key (as req_next_page() takes it).  Read-only for callers. */
struct room_cache_entry {
	char *body;
	size_t len;
	char etag[ROOM_CACHE_ETAG_MAX];
	json_t *next;
	/* private */
	struct room_cache_entry *chain, *newer;
	_Atomic long refs;
	uint64_t hash;
	size_t bytes;
	char *key;
};

/* Sets the bounds (max_entries 0 disables the cache: every read goes to the database) and,
 * when enabled, starts the listener with application_name app_name (borrowed, must outlive the
 * cache).  Call once after db_configure(), before requests arrive.  False when the listener
 * cannot be started. */
bool room_cache_start(const char *app_name, long long max_entries, long long max_bytes);
/* Stops the listener and frees every entry (after the HTTP server stopped). */
void room_cache_stop(void);

/* The stamp to read the database under. */
uint64_t room_cache_stamp(void);
/* The answer for key (borrowed), or NULL (not cached, or the cache cannot be trusted now).
 * A hit is a reference: room_cache_release() it. */
const struct room_cache_entry *room_cache_get(const char *key);
/* Offers an answer read under stamp: body (stolen, from malloc; len bytes), etag (copied), next
 * (stolen, may be NULL).  Returns an entry holding them, kept for later readers when stamp is
 * still current (and the answer fits), and a reference either way: room_cache_release() it.
 * NULL when out of memory (body and next are freed). */
const struct room_cache_entry *room_cache_put(const char *key, uint64_t stamp, char *body,
                                              size_t len, const char *etag, json_t *next);
void room_cache_release(const struct room_cache_entry *e);
/* Drops every answer (this process changed rooms: its own readers must not wait for the
 * notification). */
void room_cache_invalidate(void);

/* A strong ETag for an answer: body and, for a list with more pages, the next page's cursor
 * (borrowed, may be NULL), which the Link header carries: "\"" + 16 hex digits of their 64-bit
 * FNV-1a hash + "\"".  The same in every process.  false when out of memory. */
bool room_cache_etag(const char *body, size_t len, const json_t *next,
                     char out[ROOM_CACHE_ETAG_MAX]);

#endif
