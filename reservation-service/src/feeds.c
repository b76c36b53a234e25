/* The calendar feeds (feeds.h).  A feed is written whole on every request from one statement
 * (repo_feeds.h); its ETag is a hash of the body, so a client's If-None-Match gets 304 exactly
 * while what it would receive is unchanged (the room's name or zone included).  The body is the
 * same bytes for the same data: DTSTAMP is the reservation's last change (RFC 5545 3.8.7.2, a
 * calendar without METHOD), not the time of the request.
 *
 * Times carry the TZID of the room's zone, with that zone's VTIMEZONE (ical.h), so a client
 * shows the room's own clock; near a change of the zone's UTC offset (repo_feeds.h) and for a
 * zone without a VTIMEZONE here they are written in UTC, which names the instant whatever the
 * client does with a local time that occurs twice.
 *
 * The feed token is a secret in a URL: it is never logged (the request log line holds the path
 * only, the gateway's the path only) nor quoted in an error message. */
#include "feeds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "encoding.h"
#include "handlers.h"
#include "httpparse.h"
#include "ical.h"
#include "log.h"
#include "repo_feeds.h"
#include "rnd.h"

/* Random bytes of a feed token: 256 bits, 43 base64url characters. */
#define FEED_TOKEN_BYTES 32
#define FEED_TOKEN_LEN 43
/* Subscribed clients poll every 15 minutes to a day; within 5 minutes a client (or a browser)
 * may use what it has without asking.  private: a room's busy times are for signed-in users,
 * and a personal feed's URL is a secret. */
#define FEED_CACHE_CONTROL "private, max-age=300"
#define FEED_REFRESH "PT15M"
/* The zones one feed describes; events of any further zone are written in UTC. */
#define FEED_MAX_ZONES 32

/* The zones of a feed's events and whether each has a VTIMEZONE in the body. */
struct feed_zones {
	const char *name[FEED_MAX_ZONES];
	bool described[FEED_MAX_ZONES];
	size_t n;
};

/* Whether zone has a VTIMEZONE in the body: written the first time the zone is met. */
static bool feed_zone(struct feed_zones *z, struct ical_text *out, const char *zone)
{
	for (size_t i = 0; i < z->n; i++)
		if (strcmp(z->name[i], zone) == 0)
			return z->described[i];
	if (z->n == FEED_MAX_ZONES)
		return false;
	z->name[z->n] = zone;
	z->described[z->n] = ical_vtimezone(out, zone);
	return z->described[z->n++];
}

/* NAME;TZID=zone:local when the zone is described and local is known, else NAME:…Z. */
static void feed_time(struct ical_text *out, const char *name, bool described, const char *zone,
                      const char *local, long long utc)
{
	if (!described || !local || !ical_prop_local(out, name, zone, local))
		ical_prop_utc(out, name, utc);
}

static void feed_event(struct ical_text *out, const struct res_feed_event *e, bool described,
                       bool busy)
{
	char uid[64], sequence[24], updated[ICAL_DATETIME_LEN];
	snprintf(uid, sizeof uid, "%s-%lld@meeting-rooms", busy ? "busy" : "reservation", e->id);
	snprintf(sequence, sizeof sequence, "%lld", e->version > 0 ? e->version - 1 : 0);
	ical_prop(out, "BEGIN", "VEVENT");
	ical_utc(e->updated_utc, updated);
	ical_prop(out, "UID", uid);
	ical_prop(out, "DTSTAMP", updated);
	ical_prop_utc(out, "CREATED", e->created_utc);
	ical_prop(out, "LAST-MODIFIED", updated);
	ical_prop(out, "SEQUENCE", sequence);
	feed_time(out, "DTSTART", described, e->zone, e->local_start, e->start_utc);
	feed_time(out, "DTEND", described, e->zone, e->local_end, e->end_utc);
	if (busy)
		ical_prop(out, "SUMMARY", "Busy");
	else
		ical_prop_text(out, "SUMMARY",
		               e->purpose && *e->purpose ? e->purpose : "Reservation");
	ical_prop_text(out, "LOCATION", e->room_name);
	/* The online meeting's link, as URL (RFC 5545 3.8.4.6) and for the clients that show only
	 * the description; without the Jitsi token (a feed is a long-lived URL). */
	if (!busy && e->meeting_url) {
		ical_prop(out, "URL", e->meeting_url);
		ical_lit(out, "DESCRIPTION:Online meeting: ");
		ical_escaped(out, e->meeting_url);
		ical_end_line(out);
	}
	ical_prop(out, "STATUS", e->cancelled ? "CANCELLED" : "CONFIRMED");
	ical_prop(out, "TRANSP", e->cancelled ? "TRANSPARENT" : "OPAQUE");
	ical_prop(out, "END", "VEVENT");
}

/* The VCALENDAR of feed f named name + suffix (X-WR-CALNAME) into out; zone (may be NULL) is
 * described even without events.  busy: times only (a room's feed).  False when memory ran out
 * or a text was not UTF-8. */
static bool feed_write(const struct res_feed *f, const char *name, const char *suffix,
                       const char *zone, bool busy, struct ical_text *out)
{
	struct feed_zones zones = {.n = 0};
	ical_prop(out, "BEGIN", "VCALENDAR");
	ical_prop(out, "VERSION", "2.0");
	ical_prop(out, "PRODID", "-//meeting-rooms//reservation-service//EN");
	ical_prop(out, "CALSCALE", "GREGORIAN");
	ical_lit(out, "X-WR-CALNAME:");
	ical_escaped(out, name);
	ical_escaped(out, suffix);
	ical_end_line(out);
	/* How often to ask again: RFC 7986 and the older name clients still read. */
	ical_prop(out, "REFRESH-INTERVAL;VALUE=DURATION", FEED_REFRESH);
	ical_prop(out, "X-PUBLISHED-TTL", FEED_REFRESH);
	if (zone)
		(void)feed_zone(&zones, out, zone);
	/* Every VTIMEZONE before the first VEVENT, as clients expect. */
	for (size_t i = 0; i < f->nevents; i++)
		(void)feed_zone(&zones, out, f->events[i].zone);
	for (size_t i = 0; i < f->nevents; i++) {
		const struct res_feed_event *e = &f->events[i];
		feed_event(out, e, feed_zone(&zones, out, e->zone), busy);
	}
	ical_prop(out, "END", "VCALENDAR");
	return !out->text.failed;
}

/* Replies 200 with the feed (or 304 when If-None-Match names its ETag). */
static void feed_reply(struct req *r, const struct ical_text *body, const char *filename)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char hex[33], etag[40], disposition[96];
	SHA256((const unsigned char *)body->text.data, body->text.len, digest);
	enc_hex(digest, 16, hex);
	snprintf(etag, sizeof etag, "\"%s\"", hex);
	req_add_header(r, "Cache-Control", FEED_CACHE_CONTROL);
	if (req_not_modified(r, etag))
		return;
	req_add_header(r, "ETag", etag);
	snprintf(disposition, sizeof disposition, "inline; filename=\"%s\"", filename);
	req_add_header(r, "Content-Disposition", disposition);
	req_reply_text(r, 200, "text/calendar; charset=utf-8", body->text.data, body->text.len);
}

static bool feed_token_shape(const char *s);

/* The feed token of ?token= (q: req_query's answer; hash receives its hash), or 404 replied and
 * false when it names no feed: absent, malformed, unknown, rotated or revoked.  A 401 would make
 * calendar clients ask for a password that does not exist.  Never quoted: it is a secret. */
static bool feed_token_hash(struct req *r, int q, const char *token, char hash[RND_TOKEN_HASH_LEN])
{
	if (q == 0 || !feed_token_shape(token)) {
		req_error(r, ERR_NOT_FOUND, NULL, "no calendar feed for this token");
		return false;
	}
	rnd_token_hash(token, hash);
	return true;
}

/* Whether the caller of the room feed may read it: a bearer token (checked by the route,
 * HTTP_BEARER_OR_TOKEN), or a feed token as ?token= (calendar clients send no bearer token; the
 * busy view only, so any user's feed token will do).  Replies when not. */
static bool feed_room_allowed(struct req *r)
{
	char token[FEED_TOKEN_LEN + 16], hash[RND_TOKEN_HASH_LEN], stored[RND_TOKEN_HASH_LEN];
	bool known = false;
	int q = req_query(r, "token", token, sizeof token);
	if (q < 0)
		return false;
	if (q == 0)
		return req_user(r) != NULL; /* the route verified the bearer token */
	if (!feed_token_hash(r, q, token, hash))
		return false;
	enum db_status st = res_repo_feed_token_known(hash, &known, stored);
	if (st != DB_OK) {
		req_db_error(r, st);
		return false;
	}
	if (!known || !rnd_token_hash_equal(stored, hash)) {
		req_error(r, ERR_NOT_FOUND, NULL, "no calendar feed for this token");
		return false;
	}
	return true;
}

void res_handle_feed_room(struct req *r)
{
	char raw[32], name[64];
	long long id;
	struct res_feed f = {0};
	struct ical_text out = {0};
	if (!feed_room_allowed(r))
		return;
	size_t len = req_param(r, "id", raw, sizeof raw) ? strlen(raw) : 0;
	if (len <= 4 || strcmp(raw + len - 4, ".ics") != 0) {
		req_error(r, ERR_NOT_FOUND, NULL, "no such path");
		return;
	}
	raw[len - 4] = '\0';
	if (!httpparse_positive_id(raw, &id)) {
		req_error(r, ERR_NOT_FOUND, NULL, "no such room");
		return;
	}
	enum db_status st = res_repo_feed_room(id, &f);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (!f.found) {
		req_error(r, ERR_NOT_FOUND, NULL, "no room with id %lld", id);
		goto out;
	}
	if (!feed_write(&f, f.room_name, " (busy)", f.zone, true, &out)) {
		log_error("room %lld: no calendar feed (out of memory or text not UTF-8)", id);
		req_error(r, ERR_INTERNAL, NULL, "room %lld cannot be written as iCalendar", id);
		goto out;
	}
	snprintf(name, sizeof name, "room-%lld.ics", id);
	feed_reply(r, &out, name);
out:
	ical_text_free(&out);
	res_feed_free(&f);
}

/* Whether s looks like a token of ours (FEED_TOKEN_LEN base64url characters): anything else
 * names no feed and costs no query. */
static bool feed_token_shape(const char *s)
{
	if (strlen(s) != FEED_TOKEN_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

void res_handle_feed_me(struct req *r)
{
	/* Room for a longer value than a token, so that one is told "no feed" rather than 400. */
	char token[FEED_TOKEN_LEN + 16], hash[RND_TOKEN_HASH_LEN];
	struct res_feed f = {0};
	struct ical_text out = {0};
	int q = req_query(r, "token", token, sizeof token);
	if (q < 0 || !feed_token_hash(r, q, token, hash))
		return;
	enum db_status st = res_repo_feed_me(hash, &f);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (!f.found || !rnd_token_hash_equal(f.token_hash, hash)) {
		req_error(r, ERR_NOT_FOUND, NULL, "no calendar feed for this token");
		goto out;
	}
	if (!feed_write(&f, "My reservations", "", NULL, false, &out)) {
		log_error("user %lld: no calendar feed (out of memory or text not UTF-8)",
		          f.user_id);
		req_error(r, ERR_INTERNAL, NULL, "the feed cannot be written as iCalendar");
		goto out;
	}
	feed_reply(r, &out, "my-reservations.ics");
out:
	ical_text_free(&out);
	res_feed_free(&f);
}

void res_handle_feed_token_create(struct req *r)
{
	const struct auth_user *u = req_user(r);
	char hash[RND_TOKEN_HASH_LEN];
	bool revoked = false;
	char *token = rnd_token(FEED_TOKEN_BYTES);
	if (!token) {
		req_error(r, ERR_INTERNAL, NULL, "no random token");
		return;
	}
	rnd_token_hash(token, hash);
	enum db_status st = res_repo_feed_token_set(u->id, u->email, hash, u->issued_ms, &revoked);
	if (st != DB_OK) {
		req_db_error(r, st);
	} else if (revoked) {
		req_error(r, ERR_TOKEN_REVOKED, NULL, NULL);
	} else {
		char url[64 + FEED_TOKEN_LEN];
		snprintf(url, sizeof url, "/calendars/me.ics?token=%s", token);
		req_add_header(r, "Cache-Control", "no-store");
		req_reply_json(r, 201, json_pack("{s:s, s:s}", "token", token, "url", url));
	}
	free(token);
}

void res_handle_feed_token_delete(struct req *r)
{
	bool removed = false;
	enum db_status st = res_repo_feed_token_delete(req_user(r)->id, &removed);
	if (st != DB_OK)
		req_db_error(r, st);
	else
		req_reply_empty(r, 204);
}
