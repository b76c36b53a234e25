/* meeting: online meeting links (docs/api.md#attendees-and-online-meetings).  A link is
 * JITSI_BASE_URL + "/" + a room name of 26 lower-case base32 characters (130 random bits
 * from RAND_bytes, rnd.h), made once for a reservation and stored with it.  With JITSI_APP_ID and
 * JITSI_APP_SECRET, the API's answers carry the link with "?jwt=" and an HS256 token for the room
 * in Jitsi's format, signed for the caller when the answer is written (the stored link and the
 * events carry no token).  Configured once at start (res_meeting_init, before threads); the rest is thread-safe. */
#ifndef RES_MEETING_H
#define RES_MEETING_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct auth_user;
struct jsonx_text;

/* The room name: 26 lower-case base32 characters, 130 random bits.  One case only, because Jitsi
 * folds room names to lower case (a mixed-case name would carry fewer bits than it shows). */
#define RES_MEETING_ROOM_CHARS 26
#define RES_MEETING_BASE_MAX 512

/* True when url can be JITSI_BASE_URL: https (or http for a loopback host) with a host, at most
 * RES_MEETING_BASE_MAX bytes, no user name, password, query or fragment.  For the configuration
 * table (config.h's check: why gets the reason). */
bool res_meeting_base_valid(const char *url, char *why, size_t whylen);

/* The shortest JITSI_APP_SECRET: an HS256 key that a link's token cannot be brute-forced from. */
#define RES_MEETING_SECRET_MIN 32

/* True when secret can be JITSI_APP_SECRET: empty (no signing) or at least
 * RES_MEETING_SECRET_MIN bytes.  why never quotes the secret. */
bool res_meeting_secret_valid(const char *secret, char *why, size_t whylen);

/* Keeps base_url (valid: res_meeting_base_valid; a trailing "/" dropped), app_id and
 * app_secret (both non-empty to sign; borrowed for the life of the process).  False when
 * base_url is not valid. */
bool res_meeting_init(const char *base_url, const char *app_id, const char *app_secret);

/* A new link: the base URL, "/", a fresh room name.  Heap (caller frees), or NULL when the
 * CSPRNG or memory failed. */
char *res_meeting_new_url(void);

/* How many new links a series booking of starts (an SQL array literal of n starts) needs, as
 * an SQL text[] literal of n fresh links: heap (caller frees), or NULL on failure. */
char *res_meeting_new_urls(size_t n);

/* Writes url as the JSON string of an answer: as it is, or with "?jwt=" and the room's token
 * when signing is configured and reader is given (start_s/end_s: the reservation's span).  The
 * token is the reader's: its context.user is the name and e-mail of reader, the caller the
 * answer is for (the organizer, an attendee or an admin), never someone else's identity.  reader
 * NULL: the link unsigned.  url NULL: null. */
void res_meeting_write_url(struct jsonx_text *t, const char *url, long long start_s,
                           long long end_s, const struct auth_user *reader);

/* The same for a reservation object of an answer to reader (borrowed, changed in place): its
 * meeting_url signed as above.  Nothing without signing or without a link. */
void res_meeting_sign(json_t *reservation, const struct auth_user *reader);

/* res_meeting_sign on every occurrence of a series object's "occurrences". */
void res_meeting_sign_series(json_t *series, const struct auth_user *reader);

#endif
