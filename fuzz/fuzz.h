/* fuzz: what the suite's libFuzzer targets share.  Targets check invariants with FUZZ_CHECK: a
 * broken one aborts, and libFuzzer keeps the input as a crash.  The checks below live in
 * fuzz/support/check.c. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                     \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

/* data[0..size) as a heap NUL-terminated string (caller frees); as a C string from the network
 * it ends at the first NUL of the input.  Aborts when out of memory. */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* An accepted string member: borrowed from body[key], no NUL inside, [min, max] code points.
 * Nothing to check when s is NULL. */
void fuzz_check_string(const json_t *body, const char *key, const char *s, size_t min, size_t max);

/* A validation result: an object of field -> non-empty reason string. */
void fuzz_check_details(const json_t *details);

/* An accepted equipment list (room-service): at most 50 trimmed strings of 1–50 characters,
 * distinct case-insensitively. */
void fuzz_check_equipment(const json_t *eq);
/* Equipment (borrowed value) through equipment_normalise: accepted lists are checked, a
 * refusal goes to details. */
void fuzz_room_equipment(const json_t *value, json_t *details);

#endif
