/* tz: IANA time zones.  Names are checked against the system's zoneinfo database (package
 * tzdata), so a zone accepted here is one PostgreSQL and the C library can also use. */
#ifndef TZ_H
#define TZ_H

#include <stdbool.h>

#define TZ_NAME_MAX 64

/* True when name is a zone or link defined by the IANA tz database (tzdata.zi: "UTC",
 * "Europe/Berlin", "US/Eastern") and loadable from the zoneinfo directory.  Rejects paths,
 * odd characters and the helper files ("localtime", "posixrules", "posix/…").  Thread-safe; the
 * list of names is read once. */
bool tz_valid(const char *name);

/* The zoneinfo directory: $TZDIR when set, else /usr/share/zoneinfo.  Build a path from it only
 * with a name tz_valid accepted. */
const char *tz_dir(void);

#endif
