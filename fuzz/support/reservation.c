/* reservation-service validation for the fuzz targets (see fuzz.h). */
#include "../fuzz.h"

#include <strings.h>

#include "../../reservation-service/src/handlers.h"
#include "../../reservation-service/src/repo.h"
#include "timefmt.h"

/* A time as resolve_time() reads it before it asks the database about wall-clock times. */
static void check_time(const char *text)
{
	struct timefmt_time t;
	char local[TIMEFMT_RFC3339_LEN];
	FUZZ_CHECK(text != NULL);
	if (!timefmt_parse_rfc3339(text, &t) || t.has_fraction || t.has_offset)
		return;
	timefmt_local_text(&t, local);
	FUZZ_CHECK(strlen(local) == 19 && strncasecmp(local, text, 19) == 0);
}

void fuzz_reservation_body(const json_t *body, json_t *details)
{
	struct res_change c = {0};
	res_validate_create(body, &c, details);
	if (json_object_size(details) == 0) {
		FUZZ_CHECK(c.room_id >= 1 && c.room_id <= 9007199254740991LL);
		fuzz_check_string(body, "purpose", c.purpose, 0, 200);
		check_time(json_string_value(json_object_get(body, "start_time")));
		check_time(json_string_value(json_object_get(body, "end_time")));
	}
}
