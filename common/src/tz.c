#include "tz.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tz_dir(void)
{
	const char *d = getenv("TZDIR");
	return d && *d ? d : "/usr/share/zoneinfo";
}

/* The zone and link names of tzdata.zi ("Z name …", "L target name"), sorted; loaded once. */
static char **tz_names;
static size_t tz_count;
static pthread_once_t tz_once = PTHREAD_ONCE_INIT;

static int tz_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void tz_load(void)
{
	char path[256], line[512];
	size_t cap = 0;
	snprintf(path, sizeof path, "%s/tzdata.zi", tz_dir());
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char a[128], b[128];
		const char *name = NULL;
		if (line[0] == 'Z' && sscanf(line, "Z %127s", a) == 1)
			name = a;
		else if (line[0] == 'L' && sscanf(line, "L %127s %127s", a, b) == 2)
			name = b;
		if (!name)
			continue;
		if (tz_count == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			char **p = realloc(tz_names, ncap * sizeof *p);
			if (!p)
				break;
			tz_names = p;
			cap = ncap;
		}
		if ((tz_names[tz_count] = strdup(name)) != NULL)
			tz_count++;
	}
	fclose(f);
	qsort(tz_names, tz_count, sizeof *tz_names, tz_cmp);
}

/* Fallback without tzdata.zi: a TZif file that is not one of the helper files. */
static bool tz_file_ok(const char *name)
{
	if (strcmp(name, "localtime") == 0 || strcmp(name, "posixrules") == 0 ||
	    strncmp(name, "posix/", 6) == 0 || strncmp(name, "right/", 6) == 0)
		return false;
	char path[256], magic[4];
	snprintf(path, sizeof path, "%s/%s", tz_dir(), name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	bool ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return ok;
}

bool tz_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > TZ_NAME_MAX || name[0] == '/' || name[len - 1] == '/' ||
	    name[0] == '.' || strstr(name, "..") || strstr(name, "//"))
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!isalnum(c) && c != '/' && c != '_' && c != '-' && c != '+')
			return false;
	}
	pthread_once(&tz_once, tz_load);
	if (tz_count == 0)
		return tz_file_ok(name);
	/* Only names the tz database defines (zones and their links), and that this system can
	 * actually load. */
	return bsearch(&name, tz_names, tz_count, sizeof *tz_names, tz_cmp) != NULL &&
	       tz_file_ok(name);
}
