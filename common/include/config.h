/* config: declarative configuration from environment variables.  Each service describes its
 * variables in one table (name, type, default, bounds, required); cfg_load() reads and validates
 * them once at start, before threads.  The result is read-only afterwards. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum cfg_type {
	CFG_STRING, /* char * (heap copy); min/max bound the length in bytes */
	CFG_INT,    /* long long; min/max bound the value */
	CFG_BOOL,   /* bool; true/false, 1/0, yes/no, on/off */
};

struct cfg_param {
	const char *name;    /* environment variable */
	enum cfg_type type;
	const char *def;     /* default as text, NULL = no default */
	long long min, max;  /* bounds (see enum cfg_type); max 0 = unbounded for strings */
	bool required;       /* unset or empty is an error */
	size_t offset;       /* where the value goes inside the caller's struct */
};

/* Loads every parameter into the struct at `out`.  On failure returns false and writes one line
 * naming the variable into err (never the value of a variable, which may be a secret), and
 * frees what it had loaded.  An optional variable without default that is unset gives "", 0 or
 * false.  Strings are heap copies owned by the struct; release them with cfg_free(). */
bool cfg_load(const struct cfg_param *params, size_t n, void *out, char *err, size_t errlen);
void cfg_free(const struct cfg_param *params, size_t n, void *out);

#endif
