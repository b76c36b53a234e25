/* Validation of user-service request bodies (see validate.h). */
#include "validate.h"

#include <string.h>

#include "auth.h"
#include "countof.h"
#include "jsonx.h"

#define NAME_MAX_CHARS 200
#define PICTURE_MAX_CHARS 2048
#define EMAIL_MAX_CHARS AUTH_EMAIL_MAX_CHARS
#define TOKEN_MAX_CHARS 512

/* True when s holds no blank and no control character (URLs, e-mail addresses). */
static bool no_blank_or_control(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* A picture URL: http(s), printable. */
static bool valid_picture(const char *s)
{
	return (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) &&
	       no_blank_or_control(s);
}

/* A plausible e-mail address: one @, something on both sides, a dot in the domain, no spaces. */
static bool valid_email(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.') || at[1] == '.' ||
	    s[strlen(s) - 1] == '.')
		return false;
	return no_blank_or_control(s);
}

void user_validate_profile(const json_t *body, struct user_profile_change *c, json_t *details)
{
	static const struct jsonx_field fields[] = {{"name", JSONX_STRING, false},
	                                            {"picture", JSONX_STRING | JSONX_NULL, false},
	                                            {"email", JSONX_STRING, false},
	                                            {"role", JSONX_STRING, false}};
	jsonx_check(body, fields, countof(fields), details);
	if (json_object_get(body, "email"))
		json_object_set_new(details, "email", json_string("cannot be changed here"));
	if (json_object_get(body, "role"))
		json_object_set_new(details, "role", json_string("cannot be changed here"));
	jsonx_string_len(body, "name", 1, NAME_MAX_CHARS, &c->name, details);
	jsonx_string_len(body, "picture", 0, PICTURE_MAX_CHARS, &c->picture, details);
	if (c->picture && *c->picture && !valid_picture(c->picture))
		json_object_set_new(details, "picture", json_string("must be an http(s) URL"));
	bool has_picture = json_object_get(body, "picture") != NULL;
	if (json_object_size(details) == 0 && !c->name && !has_picture)
		json_object_set_new(details, "name", json_string("is required"));
	/* An explicit null or "" clears the picture. */
	if (json_object_size(details) == 0 && has_picture && !c->picture)
		c->picture = "";
}

void user_validate_admin(const json_t *body, struct user_patch *p, json_t *details)
{
	static const struct jsonx_field fields[] = {{"name", JSONX_STRING, false},
	                                            {"email", JSONX_STRING, false},
	                                            {"role", JSONX_STRING, false},
	                                            {"disabled", JSONX_BOOL, false}};
	jsonx_check(body, fields, countof(fields), details);
	jsonx_string_len(body, "name", 1, NAME_MAX_CHARS, &p->name, details);
	jsonx_string_len(body, "email", 3, EMAIL_MAX_CHARS, &p->email, details);
	jsonx_string_len(body, "role", 1, 15, &p->role, details);
	if (p->email && !valid_email(p->email))
		json_object_set_new(details, "email", json_string("must be an e-mail address"));
	if (p->role && strcmp(p->role, "admin") != 0 && strcmp(p->role, "employee") != 0)
		json_object_set_new(details, "role", json_string("must be admin or employee"));
	json_t *disabled = json_object_get(body, "disabled");
	if (json_is_boolean(disabled)) {
		p->set_disabled = true;
		p->disabled = json_is_true(disabled);
	}
}

void user_validate_refresh(const json_t *body, bool cookie, const char **token, json_t *details)
{
	static const struct jsonx_field fields[] = {{"refresh_token", JSONX_STRING, true}};
	static const struct jsonx_field cookie_fields[] = {{"refresh_token", JSONX_STRING, false}};
	*token = NULL;
	if (!body && cookie)
		return;
	if (jsonx_check(body, cookie ? cookie_fields : fields, countof(fields), details))
		jsonx_string_len(body, "refresh_token", 1, TOKEN_MAX_CHARS, token, details);
}

void user_validate_logout(const json_t *body, bool cookie, const char **token, bool *all,
                          json_t *details)
{
	static const struct jsonx_field fields[] = {{"refresh_token", JSONX_STRING, false},
	                                            {"all", JSONX_BOOL, false}};
	*token = NULL;
	*all = json_is_true(json_object_get(body, "all"));
	if (!body && cookie)
		return;
	if (jsonx_check(body, fields, countof(fields), details) &&
	    jsonx_string_len(body, "refresh_token", 1, TOKEN_MAX_CHARS, token, details) &&
	    !*token && !*all && !cookie)
		json_object_set_new(details, "refresh_token",
		                    json_string("is required unless all is true"));
}

const char *user_validate_return_to(const char *s)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789/._~%?=&+-";
	size_t len = strlen(s);
	if (len == 0 || len > USER_RETURN_TO_MAX)
		return "must be 1 to 512 characters";
	if (s[0] != '/' || s[1] == '/')
		return "must be a path of this site: starting with / but not //";
	if (strspn(s, allowed) != len)
		return "may only hold letters, digits and /._~%?=&+-";
	return NULL;
}
