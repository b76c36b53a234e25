/* Fuzzes token parsing and verification.  The first byte picks the mode, the rest is the input:
 *   0  an access token: jwt_verify_hs256 (fixed secret), jwt_check_claims, auth_verify_access
 *   1  an id_token: jwt_verify_rs256 against a fixed JWKS, jwt_check_claims with issuer and
 *      audience as the OIDC client checks them
 *   2  a claims object: signed with jwt_sign_hs256, the token must verify and give the same
 *      claims back; then jwt_check_claims and auth_verify_access on it
 *   3  a JWKS: a fixed valid RS256 token verified against it (keys from the network)
 * The RS256 seeds and FIXED_TOKEN were signed with a throwaway RSA key whose private half was
 * discarded; its public half is FIXED_JWKS. */
#include "fuzz.h"

#include "auth.h"
#include "jwt.h"

#define SECRET "fuzz-secret-0123456789abcdef-0123456789"
#define ISSUER "https://reservations.example"
#define NOW ((time_t)1800000000) /* 2027-01-15 */

static const char FIXED_JWKS[] =
	"{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k0\"},"
	"{\"kty\":\"RSA\",\"use\":\"enc\",\"kid\":\"k1\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	"{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"k1\",\"e\":\"AQAB\",\"n\":\""
	"k6Bk_0YgGUDEd8yumIYRD7-YtW4DR22HDYisqXeXEl8ql_yiHC3Wmg6fNoeUN-04QjpgqE_k0lg_PN8g8R7krSyv"
	"3HofIZbj-2cKIHTJTGpAoy0rI-9E1hdv8UoQFGvtIThsH6K0Y-9xPDu3t-QQwR4wmr05um4tzMheegLu4E6js7EG"
	"69U_9KcB-E8hpuXH6pMyySx_wM1TOJTjJOPrDISHiusFaKI_HbNJFP27Yob6YB99H7fqjopGGQeDBxsSakHldFOh"
	"zDLhM0tW2qWOZ35NFX3mRyrdfOQB6jkjn7mL8sG6IY4xNNZi-E5OC-0HLDtYtjfBvfIm_rgvurVLDw"
	"\"}]}";

static const char FIXED_TOKEN[] =
	"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdv"
	"b2dsZS5jb20iLCJhdWQiOiJmdXp6LWNsaWVudCIsInN1YiI6IjEyMzQ1Njc4OTAiLCJlbWFpbCI6ImFkYUBleGFt"
	"cGxlLmNvbSIsImVtYWlsX3ZlcmlmaWVkIjp0cnVlLCJuYW1lIjoiQWRhIiwibm9uY2UiOiJuLTBTNl9XekEyTWoi"
	"LCJpYXQiOjE4MDAwMDAwMDAsImV4cCI6NDEwMjQ0NDgwMH0.J_xb0yBYqF172HAveOgcI9ALsgwh2WwlfmGi4h5O"
	"lsiqkcUvVlfN-joHMf1Q7tpxTVisllyZblJrG05U1e8pvnaL7ai86avd2-hCKAR8jOM85SxiLdWqtTqyOstxfmg1"
	"JPOicAcOUcvS1WIPphbRCGrE4QO52ivH8__lz0EticpmJM2ekCFAys1wUvgVMX8CD_Ny2HTDydf5XoHAOnByY14n"
	"hzjsqXrjSDV_ZQFR4U7D5EISHuUE_ygCKofJbydYXSgp6F0OCGhMlu3gRiM96-113d3t7DEYibAVdQv9USzwPnue"
	"V7_1R6Jq9Mq9a4OO_C7pSIsOre_7GkXRoOvG1A";

static const struct auth_config auth = {.secret = SECRET, .issuer = ISSUER, .access_ttl = 900};
static json_t *jwks; /* FIXED_JWKS, parsed once */

/* Every status has a description. */
static void check_status(enum jwt_status st)
{
	FUZZ_CHECK(st >= JWT_OK && st <= JWT_MISSING_CLAIM);
	FUZZ_CHECK(strcmp(jwt_status_str(st), "invalid token") != 0);
}

/* What auth_verify_access accepted is what the http layer relies on. */
static void check_user(enum jwt_status st, const struct auth_user *u)
{
	check_status(st);
	if (st != JWT_OK)
		return;
	FUZZ_CHECK(u->id > 0);
	FUZZ_CHECK(strcmp(u->role, "admin") == 0 || strcmp(u->role, "employee") == 0);
	FUZZ_CHECK(u->admin == (strcmp(u->role, "admin") == 0));
	FUZZ_CHECK(strlen(u->email) < sizeof u->email && strlen(u->name) < sizeof u->name);
}

static void access_token(const char *token)
{
	json_t *claims = NULL;
	struct auth_user u;
	enum jwt_status st = jwt_verify_hs256(token, (const unsigned char *)SECRET, strlen(SECRET),
	                                      &claims);
	check_status(st);
	FUZZ_CHECK((st == JWT_OK) == (claims != NULL));
	if (claims) {
		FUZZ_CHECK(json_is_object(claims));
		check_status(
			jwt_check_claims(claims, NOW, AUTH_LEEWAY_SECONDS, ISSUER, NULL, NULL));
	}
	json_decref(claims);
	check_user(auth_verify_access(&auth, token, NOW, &u), &u);
}

static void id_token(const char *token, const json_t *keys)
{
	json_t *claims = NULL;
	enum jwt_status st = jwt_verify_rs256(token, keys, &claims);
	check_status(st);
	FUZZ_CHECK((st == JWT_OK) == (claims != NULL));
	if (claims)
		check_status(jwt_check_claims(claims, NOW, 60, "https://accounts.google.com",
		                              "accounts.google.com", "fuzz-client"));
	json_decref(claims);
}

static void round_trip(const uint8_t *data, size_t size)
{
	json_t *claims = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(claims))
		goto out;
	char *token = jwt_sign_hs256(claims, (const unsigned char *)SECRET, strlen(SECRET));
	FUZZ_CHECK(token != NULL);
	json_t *back = NULL;
	enum jwt_status st = jwt_verify_hs256(token, (const unsigned char *)SECRET, strlen(SECRET),
	                                      &back);
	if (strlen(token) > JWT_MAX_LEN) {
		FUZZ_CHECK(st == JWT_TOO_LARGE);
	} else {
		FUZZ_CHECK(st == JWT_OK);
		FUZZ_CHECK(json_equal(claims, back));
		/* Another key must not verify it. */
		json_t *other = NULL;
		FUZZ_CHECK(jwt_verify_hs256(token, (const unsigned char *)"x", 1, &other) ==
		           JWT_BAD_SIGNATURE);
		FUZZ_CHECK(other == NULL);
		check_status(jwt_check_claims(back, NOW, AUTH_LEEWAY_SECONDS, ISSUER, NULL, NULL));
		check_status(jwt_check_claims(back, NOW, 60, ISSUER, "other", "fuzz-client"));
		struct auth_user u;
		check_user(auth_verify_access(&auth, token, NOW, &u), &u);
	}
	json_decref(back);
	free(token);
out:
	json_decref(claims);
}

static void fuzzed_jwks(const uint8_t *data, size_t size)
{
	json_t *keys = json_loadb((const char *)data, size, 0, NULL);
	if (keys)
		id_token(FIXED_TOKEN, keys);
	json_decref(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!jwks) {
		jwks = json_loads(FIXED_JWKS, 0, NULL);
		FUZZ_CHECK(jwks != NULL);
		/* The fixed pair must verify, or mode 1 and 3 test nothing. */
		json_t *claims = NULL;
		FUZZ_CHECK(jwt_verify_rs256(FIXED_TOKEN, jwks, &claims) == JWT_OK);
		json_decref(claims);
	}
	if (size < 1)
		return 0;
	char *text = NULL;
	switch (data[0] & 3) {
	case 0:
		text = fuzz_cstr(data + 1, size - 1);
		access_token(text);
		break;
	case 1:
		text = fuzz_cstr(data + 1, size - 1);
		id_token(text, jwks);
		break;
	case 2:
		round_trip(data + 1, size - 1);
		break;
	default:
		fuzzed_jwks(data + 1, size - 1);
		break;
	}
	free(text);
	return 0;
}
