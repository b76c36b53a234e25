/* The business clock (clock.h): timefmt_now_ms() plus an atomic offset. */
#include "clock.h"

#include <stdatomic.h>

#include "log.h"
#include "timefmt.h"

static _Atomic bool clock_enabled;
static _Atomic long long clock_offset;

void clock_configure(bool test_clock)
{
	atomic_store(&clock_offset, 0);
	atomic_store(&clock_enabled, test_clock);
	if (test_clock)
		log_warn("TEST_CLOCK is on: the clock of booking rules can be moved by a request "
		         "(for tests only, never in production)");
}

bool clock_test_enabled(void)
{
	return atomic_load(&clock_enabled);
}

bool clock_set_offset_s(long long offset_s)
{
	if (!atomic_load(&clock_enabled) || offset_s > CLOCK_MAX_OFFSET_S ||
	    offset_s < -CLOCK_MAX_OFFSET_S)
		return false;
	atomic_store(&clock_offset, offset_s);
	return true;
}

long long clock_offset_s(void)
{
	return atomic_load(&clock_offset);
}

long long clock_now_ms(void)
{
	return timefmt_now_ms() + atomic_load(&clock_offset) * 1000;
}

long long clock_now_s(void)
{
	/* From one reading, so that now_s == now_ms / 1000 (the epoch is long past: no
	 * negative division). */
	return clock_now_ms() / 1000;
}
