/* tz: IANA time zones.  Names are checked against the system's zoneinfo database (package
 * tzdata), so a zone accepted here is one PostgreSQL and the C library can also use. */
#ifndef TZ_H
#define TZ_H

#include <stdbool.h>

#define TZ_NAME_MAX 64

/* True when name is a valid IANA zone name present in the zoneinfo database ("UTC",
 * "Europe/Berlin").  Rejects paths ("../", leading '/'), odd characters and non-TZif files. */
bool tz_valid(const char *name);

#endif
