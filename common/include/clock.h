/* clock: "now" for business rules (booking rules, the no-show releaser, check-in windows):
 * the real clock (CLOCK_REALTIME) plus an offset in seconds, 0 unless a test deployment moves
 * it.  The offset can be set only after clock_configure(true), which a service does when its
 * TEST_CLOCK variable is true (CLOCK_CFG_PARAM); the integration tests then drive time forward
 * instead of sleeping for minutes.  Never use it for what must follow the real clock: token
 * expiry, logs, metrics, timeouts and back-off (timefmt.h).  Thread-safe: the switch and the
 * offset are atomics, read on every call (no lock). */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdbool.h>

#include "config.h"

/* The largest offset either way: 10 years (keeps every sum far from overflow). */
#define CLOCK_MAX_OFFSET_S 315360000LL

/* The configuration row of the switch, for a service's table (config.h): TEST_CLOCK, a bool,
 * default false.  s is the configuration struct, member its bool field. */
#define CLOCK_CFG_PARAM(s, member) CFG_BOOL(s, "TEST_CLOCK", member, "false")

/* Turns the test clock on or off and resets the offset to 0.  On: logs a warning that the
 * clock can be moved, so that no such start goes unnoticed.  Call once at start, after
 * logging is set up (svc_init), before threads. */
void clock_configure(bool test_clock);
/* Whether clock_configure(true) was called. */
bool clock_test_enabled(void);

/* Sets the offset (seconds, may be negative; the last call wins).  False, leaving it as it
 * was, when the test clock is off or |offset_s| > CLOCK_MAX_OFFSET_S. */
bool clock_set_offset_s(long long offset_s);
long long clock_offset_s(void);

/* Milliseconds / whole seconds since the Unix epoch, offset included. */
long long clock_now_ms(void);
long long clock_now_s(void);

#endif
