/* series_ics_dump: the iCalendar writer's output for tests/offline/test_ical_roundtrip.py, which
 * parses it with the Python icalendar and recurring_ical_events packages.
 *
 *   series_ics_dump series < scenario.json   the .ics of one series (series_ics_build); the
 *       JSON object has the fields of struct series_ics ("rule" is the recurrence as a request
 *       gives it, "until_utc" null or seconds) and "occurrences", objects with the fields of
 *       struct series_ics_occurrence
 *   series_ics_dump vtimezone ZONE…          the VTIMEZONE of each zone (ical_vtimezone), or a
 *       line "X-FAILED:<zone>" for one it refuses
 * Exits 1 (with a message on stderr) when the input is wrong or the builder refuses it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../reservation-service/src/series_ics.h"
#include "ical.h"
#include "rrule.h"

static const char *str_or_null(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key)); /* NULL when absent or not a string */
}

static long long int_of(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static int dump_series(void)
{
	int rc = 1;
	json_error_t jerr;
	struct rrule rule;
	struct rrule_error rerr;
	struct series_ics_occurrence *occ = NULL;
	struct ical_text out = {0};
	const char *why = NULL;
	json_t *in = json_loadf(stdin, 0, &jerr); /* owned */
	if (!json_is_object(in)) {
		fprintf(stderr, "series_ics_dump: stdin: %s\n", jerr.text);
		goto out;
	}
	if (!rrule_parse(json_object_get(in, "rule"), &rule, &rerr)) {
		fprintf(stderr, "series_ics_dump: rule: %s\n", rerr.reason);
		goto out;
	}
	const json_t *list = json_object_get(in, "occurrences"); /* borrowed */
	size_t n = json_array_size(list);
	occ = calloc(n ? n : 1, sizeof *occ);
	if (!occ)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(list, i);
		occ[i] = (struct series_ics_occurrence){
			.occurrence_start = str_or_null(o, "occurrence_start"),
			.local_start = str_or_null(o, "local_start"),
			.start_utc = int_of(o, "start_utc"),
			.end_utc = int_of(o, "end_utc"),
			.confirmed = json_is_true(json_object_get(o, "confirmed")),
			.exception = json_is_true(json_object_get(o, "exception")),
			.purpose = str_or_null(o, "purpose"),
			.room_name = str_or_null(o, "room_name"),
		};
	}
	const json_t *until = json_object_get(in, "until_utc");
	struct series_ics s = {
		.id = int_of(in, "id"),
		.zone = str_or_null(in, "zone"),
		.first_start = str_or_null(in, "first_start"),
		.duration_s = (long)int_of(in, "duration_s"),
		.rule = &rule,
		.has_until = json_is_integer(until),
		.until_utc = json_integer_value(until),
		.purpose = str_or_null(in, "purpose"),
		.room_name = str_or_null(in, "room_name"),
		.organizer_email = str_or_null(in, "organizer_email"),
		.created_utc = int_of(in, "created_utc"),
		.updated_utc = int_of(in, "updated_utc"),
		.stamp_utc = int_of(in, "stamp_utc"),
		.version = (int)int_of(in, "version"),
		.cancelled = json_is_true(json_object_get(in, "cancelled")),
		.occurrences = occ,
		.noccurrences = n,
	};
	if (!s.zone) {
		fprintf(stderr, "series_ics_dump: zone missing\n");
		goto out;
	}
	if (!series_ics_build(&s, &out, &why)) {
		fprintf(stderr, "series_ics_dump: refused: %s\n", why ? why : "?");
		goto out;
	}
	fwrite(out.text.data, 1, out.text.len, stdout);
	rc = 0;
out:
	ical_text_free(&out);
	free(occ);
	json_decref(in);
	return rc;
}

static int dump_vtimezones(int argc, char **argv)
{
	int rc = 0;
	for (int i = 0; i < argc; i++) {
		struct ical_text out = {0};
		if (!ical_vtimezone(&out, argv[i]))
			ical_prop(&out, "X-FAILED", argv[i]);
		if (out.text.failed)
			rc = 1;
		else
			fwrite(out.text.data, 1, out.text.len, stdout);
		ical_text_free(&out);
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "series") == 0)
		return dump_series();
	if (argc >= 2 && strcmp(argv[1], "vtimezone") == 0)
		return dump_vtimezones(argc - 2, argv + 2);
	fprintf(stderr, "usage: series_ics_dump series < scenario.json | vtimezone ZONE...\n");
	return 2;
}
