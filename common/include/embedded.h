/* embedded: what the build generates into every service binary from the service's own files, so
 * that a binary carries its schema and its API description (Makefile, service_rules):
 *   <service>/migrations/NNN_name.sql -> build/gen/<service>/migrations.c (embed-migrations.sh)
 *   <service>/openapi.json            -> build/gen/<service>/openapi.c    (embed-file.sh)
 * The shared library defines none of these: only a service's main.c refers to them, and the
 * generated files include this header so that their definitions are checked against it. */
#ifndef EMBEDDED_H
#define EMBEDDED_H

#include <stddef.h>

#include "db.h"

/* The service's migrations in the order of their numbers (service_migrations_count of them). */
extern const struct db_migration service_migrations[];
extern const size_t service_migrations_count;

/* The service's OpenAPI document, NUL-terminated, served at /openapi.json. */
extern const char service_openapi[];

#endif
