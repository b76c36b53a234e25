/* countof: the number of elements of an array, as a size_t.  Only for real arrays: given a
 * pointer, gcc's and clang's -Wsizeof-pointer-div (part of -Wall, so an error with -Werror)
 * reject the division. */
#ifndef COUNTOF_H
#define COUNTOF_H

#include <stddef.h>

#define countof(a) (sizeof(a) / sizeof((a)[0]))

#endif
