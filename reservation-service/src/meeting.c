/* Online meeting links: made here (a random room name under JITSI_BASE_URL), stored by the
 * booking functions, signed for Jitsi when the answer is written. */
#include "meeting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "jsonx.h"
#include "jwt.h"
#include "log.h"
#include "rnd.h"
#include "sqlbuild.h"
#include "timefmt.h"
#include "urlcheck.h"

/* The token is valid from an hour before the meeting to an hour after it (design14.md). */
#define TOKEN_MARGIN_S 3600

/* Set once by res_meeting_init before threads start; read-only afterwards. */
static char base[RES_MEETING_BASE_MAX + 1] = "https://meet.jit.si";
static char host[RES_MEETING_BASE_MAX + 1] = "meet.jit.si";
static const char *app_id, *app_secret;

bool res_meeting_base_valid(const char *url, char *why, size_t whylen)
{
	return urlcheck_outbound(url, RES_MEETING_BASE_MAX, URLCHECK_NO_QUERY, NULL, 0, why,
	                         whylen);
}

bool res_meeting_secret_valid(const char *secret, char *why, size_t whylen)
{
	if (secret[0] && strlen(secret) < RES_MEETING_SECRET_MIN) {
		snprintf(why, whylen, "must be at least %d bytes long (or empty)",
		         RES_MEETING_SECRET_MIN);
		return false;
	}
	return true;
}

bool res_meeting_init(const char *base_url, const char *id, const char *secret)
{
	char why[128];
	if (!urlcheck_outbound(base_url, RES_MEETING_BASE_MAX, URLCHECK_NO_QUERY, host, sizeof host,
	                       why, sizeof why)) {
		log_error("JITSI_BASE_URL %s", why);
		return false;
	}
	snprintf(base, sizeof base, "%s", base_url);
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		base[--n] = '\0';
	app_id = id && id[0] && secret && secret[0] ? id : NULL;
	app_secret = app_id ? secret : NULL;
	return true;
}

char *res_meeting_new_url(void)
{
	char *room = rnd_name32(RES_MEETING_ROOM_CHARS), *url = NULL;
	size_t n = strlen(base) + 1 + (room ? strlen(room) : 0) + 1;
	if (room && (url = malloc(n)))
		snprintf(url, n, "%s/%s", base, room);
	free(room);
	return url;
}

char *res_meeting_new_urls(size_t n)
{
	char **urls = calloc(n ? n : 1, sizeof *urls), *literal = NULL;
	size_t made = 0;
	if (!urls)
		return NULL;
	while (made < n && (urls[made] = res_meeting_new_url()))
		made++;
	if (made == n)
		literal = sqlbuild_text_array((const char *const *)urls, n);
	for (size_t i = 0; i < made; i++)
		free(urls[i]);
	free(urls);
	return literal;
}

/* The token for the room of url (its last path segment), or NULL. */
static char *room_token(const char *url, long long start_s, long long end_s,
                        const struct auth_user *reader)
{
	const char *name = reader->name, *email = reader->email;
	const char *room = strrchr(url, '/');
	json_t *claims = json_pack(
		"{s:s, s:s, s:s, s:s, s:I, s:I, s:{s:{s:s, s:s}}}", "aud", "jitsi", "iss", app_id,
		"sub", host, "room", room ? room + 1 : url, "nbf",
		(json_int_t)(start_s - TOKEN_MARGIN_S), "exp", (json_int_t)(end_s + TOKEN_MARGIN_S),
		"context", "user", "name", name, "email", email);
	char *token = claims ? jwt_sign_hs256(claims, (const unsigned char *)app_secret,
	                                      strlen(app_secret))
	                     : NULL;
	json_decref(claims);
	return token;
}

void res_meeting_write_url(struct jsonx_text *t, const char *url, long long start_s,
                           long long end_s, const struct auth_user *reader)
{
	char *token = url && app_id && reader ? room_token(url, start_s, end_s, reader) : NULL;
	if (!url) {
		jsonx_text_lit(t, "null");
	} else if (!token) {
		jsonx_text_str(t, url);
	} else {
		size_t n = strlen(url) + strlen(token) + 6;
		char *signed_url = malloc(n);
		if (signed_url)
			snprintf(signed_url, n, "%s?jwt=%s", url, token);
		jsonx_text_str(t, signed_url ? signed_url : url);
		free(signed_url);
	}
	free(token);
}

/* The Unix seconds of an answer's RFC 3339 time (0 when not one). */
static long long seconds(const json_t *v)
{
	struct timefmt_time t;
	const char *s = json_string_value(v);
	return s && timefmt_parse_rfc3339(s, &t) && t.has_offset ? t.utc : 0;
}

void res_meeting_sign(json_t *res, const struct auth_user *reader)
{
	const char *url = json_string_value(json_object_get(res, "meeting_url"));
	if (!app_id || !url || !reader || strstr(url, "?jwt="))
		return;
	char *token = room_token(url, seconds(json_object_get(res, "start_time")),
	                         seconds(json_object_get(res, "end_time")), reader);
	if (token)
		json_object_set_new(res, "meeting_url", json_sprintf("%s?jwt=%s", url, token));
	free(token);
}

void res_meeting_sign_series(json_t *series, const struct auth_user *reader)
{
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(series, "occurrences"), i, o)
		res_meeting_sign(o, reader);
}
