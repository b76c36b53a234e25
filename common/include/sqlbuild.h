/* sqlbuild: a statement assembled from fixed pieces of SQL (never from request text), each piece
 * adding at most one parameter.  A list endpoint adds only the conditions of the filters it was
 * given, so that each combination of filters is a statement text of its own: prepared once per
 * connection, with a plan (generic or custom, whatever PostgreSQL keeps for that text) made for
 * just those conditions and able to use their index, where one catch-all text
 * ("$1 IS NULL OR col = $1") gets no good generic plan.  Not thread-safe per struct; a struct is
 * a stack value of one request.  Also the text of a text[] parameter (sqlbuild_text_array), for
 * the lists a statement takes as one array. */
#ifndef SQLBUILD_H
#define SQLBUILD_H

#include <stddef.h>

#define SQLBUILD_TEXT_MAX 2048
#define SQLBUILD_PARAMS_MAX 12

struct sqlbuild {
	char text[SQLBUILD_TEXT_MAX]; /* the statement so far, NUL-terminated */
	size_t len;
	const char
		*params[SQLBUILD_PARAMS_MAX]; /* borrowed: they must outlive the statement's run */
	int n;                                /* parameters so far */
};

/* Appends piece to s->text.  value non-NULL: it becomes the next parameter ($n, borrowed) and
 * every '?' of piece is written as its "$n"; value NULL: piece must hold no '?'.  Overflowing the
 * text or the parameters is a programming error (the pieces are fixed): asserted. */
void sqlbuild_add(struct sqlbuild *s, const char *piece, const char *value);

/* The PostgreSQL text[] literal of items[0..n) (borrowed), as a parameter's text for a
 * "$n::text[]" cast: "{}" for none, else every item in double quotes with each '"' and '\'
 * escaped by a backslash, so that any string (commas, braces, blanks, quotes) is read back as it
 * is; a NULL item is the SQL NULL element.  Heap (caller frees), or NULL when memory is short.
 * Thread-safe. */
char *sqlbuild_text_array(const char *const *items, size_t n);

#endif
