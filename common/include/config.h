/* config: declarative configuration from environment variables.  Each service describes its
 * variables in one table (name, type, default, bounds, required, and a check of the value's
 * form where bounds are not enough) plus the rules that relate two of them; cfg_load() reads and
 * validates everything once at start, before threads.  The result is read-only afterwards. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum cfg_type {
	CFG_TYPE_STRING, /* char * (heap copy); min/max bound the length in bytes */
	CFG_TYPE_INT,    /* long long; min/max bound the value */
	CFG_TYPE_BOOL,   /* bool; true/false, 1/0, yes/no, on/off */
};

/* A row's own check of its value, beyond type and bounds (e.g. "a list of CIDRs"), with the
 * member that matches the row's type (the CFG_*_CHECKED macros set it).  It gets the loaded
 * value; to refuse it, it returns false and writes into why what is wrong, as words that follow
 * the variable's name ("must be ...", "is no longer supported ...") without quoting the value,
 * which may be a secret. */
union cfg_value_check {
	bool (*str)(const char *value, char *why, size_t whylen);
	bool (*num)(long long value, char *why, size_t whylen);
	bool (*flag)(bool value, char *why, size_t whylen);
};

struct cfg_param {
	const char *name; /* environment variable */
	enum cfg_type type;
	const char *def;             /* default as text, NULL = no default */
	long long min, max;          /* bounds (see enum cfg_type); max 0 = unbounded for strings */
	bool required;               /* unset or empty is an error */
	size_t offset;               /* where the value goes inside the caller's struct */
	union cfg_value_check check; /* all NULL = none */
};

/* A rule between two variables of the same table, checked after every row loaded. */
enum cfg_check_kind {
	CFG_CHECK_KIND_LE,       /* integer lhs <= integer rhs */
	CFG_CHECK_KIND_REQUIRES, /* string lhs non-empty => string rhs non-empty */
};

struct cfg_check {
	enum cfg_check_kind kind;
	size_t lhs, rhs; /* offsets of two fields, each loaded by a row of the same table */
};

/* A service's whole configuration: rows and rules.  checks may be NULL when nchecks is 0. */
struct cfg_table {
	const struct cfg_param *params;
	size_t nparams;
	const struct cfg_check *checks;
	size_t nchecks;
};

/* offsetof(s, m), refusing to compile unless member m of struct s has type T: a row's type and
 * the field it fills cannot disagree (cfg_load copies sizeof(T) bytes there). */
#define CFG_OFFSET_(s, m, T)                                                                \
	(offsetof(s, m) + 0 * sizeof(struct {                                               \
				  int cfg_unused_;                                          \
				  _Static_assert(_Generic(((s *)0)->m, T : 1, default : 0), \
		                                 #m " must be " #T);                        \
			  }))

/* Rows of a table, as designated initialisers of struct cfg_param.  s is the configuration
 * struct, var the environment variable, member the field (e.g. common.port), dflt the default
 * as text (NULL = none).  Integers are bounded by lo..hi; strings are lo..hi bytes long
 * (hi 0 = no upper bound). */
#define CFG_INT(s, var, member, dflt, lo, hi)                                         \
	{                                                                             \
		.name = var, .type = CFG_TYPE_INT, .def = dflt, .min = lo, .max = hi, \
		.offset = CFG_OFFSET_(s, member, long long)                           \
	}
#define CFG_STR(s, var, member, dflt, lo, hi)                                            \
	{                                                                                \
		.name = var, .type = CFG_TYPE_STRING, .def = dflt, .min = lo, .max = hi, \
		.offset = CFG_OFFSET_(s, member, char *)                                 \
	}
#define CFG_REQUIRED_STR(s, var, member, lo, hi)                                              \
	{                                                                                     \
		.name = var, .type = CFG_TYPE_STRING, .min = lo, .max = hi, .required = true, \
		.offset = CFG_OFFSET_(s, member, char *)                                      \
	}
#define CFG_BOOL(s, var, member, dflt)                           \
	{                                                        \
		.name = var, .type = CFG_TYPE_BOOL, .def = dflt, \
		.offset = CFG_OFFSET_(s, member, bool)           \
	}

/* The same rows with a check of the loaded value (union cfg_value_check), which also runs on
 * the default.  The error is "<VAR> <why>". */
#define CFG_INT_CHECKED(s, var, member, dflt, lo, hi, fn)                             \
	{                                                                             \
		.name = var, .type = CFG_TYPE_INT, .def = dflt, .min = lo, .max = hi, \
		.offset = CFG_OFFSET_(s, member, long long), .check = {               \
			.num = fn                                                     \
		}                                                                     \
	}
#define CFG_STR_CHECKED(s, var, member, dflt, lo, hi, fn)                                \
	{                                                                                \
		.name = var, .type = CFG_TYPE_STRING, .def = dflt, .min = lo, .max = hi, \
		.offset = CFG_OFFSET_(s, member, char *), .check = {                     \
			.str = fn                                                        \
		}                                                                        \
	}
#define CFG_BOOL_CHECKED(s, var, member, dflt, fn)                 \
	{                                                          \
		.name = var, .type = CFG_TYPE_BOOL, .def = dflt,   \
		.offset = CFG_OFFSET_(s, member, bool), .check = { \
			.flag = fn                                 \
		}                                                  \
	}

/* Rules of a table, as designated initialisers of struct cfg_check.  The error names both
 * variables: "<LHS> must not exceed <RHS>", "<RHS> is required when <LHS> is set". */
#define CFG_CHECK_LE(s, x, y)                                                   \
	{                                                                       \
		.kind = CFG_CHECK_KIND_LE, .lhs = CFG_OFFSET_(s, x, long long), \
		.rhs = CFG_OFFSET_(s, y, long long)                             \
	}
#define CFG_CHECK_REQUIRES(s, x, y)                                                \
	{                                                                          \
		.kind = CFG_CHECK_KIND_REQUIRES, .lhs = CFG_OFFSET_(s, x, char *), \
		.rhs = CFG_OFFSET_(s, y, char *)                                   \
	}

/* Loads every row into the struct at `out`, then applies the rules.  On failure returns false
 * and writes one line naming the variable(s) into err (never the value of a variable, which may
 * be a secret), and frees what it had loaded.  An optional variable without default that is
 * unset gives "", 0 or false.  Strings are heap copies owned by the struct; release them with
 * cfg_free().  A rule naming a field that no row of the table loads, or a row of the wrong
 * type, is reported as an error in the table. */
bool cfg_load(const struct cfg_table *t, void *out, char *err, size_t errlen);
/* Frees the strings of the struct at `out` and resets them to NULL; a second call is harmless. */
void cfg_free(const struct cfg_table *t, void *out);

#endif
