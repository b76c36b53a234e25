/* body_check: what the unit tests of the services' validators (tests/unit/test_*_validate.c)
 * share.  Failures end the running cmocka test. */
#ifndef BODY_CHECK_H
#define BODY_CHECK_H

#include <stddef.h>

#include <jansson.h>

/* text parsed as req_body_object parses a request body (so NUL characters reach the field
 * checks); a new reference.  A text that does not parse fails the test. */
json_t *body_parse(const char *text);

/* n copies of c (one UTF-8 character) as a new string (caller frees). */
char *body_repeat(const char *c, size_t n);

/* details (borrowed) must hold a non-empty reason for field and nothing else; what names the
 * input in the failure message. */
void body_assert_only(const json_t *details, const char *field, const char *what);

#endif
