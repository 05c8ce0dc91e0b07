/*
 * schedule.c - schedule arithmetic.
 */
#include "daemon/schedule.h"

int64_t sched_next_regular(int64_t anchor, int64_t interval_ms, int64_t at) {
	if (interval_ms <= 0)
		return at;
	if (anchor == 0 || anchor > at + interval_ms)
		return at + interval_ms;
	if (anchor > at)
		return anchor;
	return anchor + ((at - anchor) / interval_ms + 1) * interval_ms;
}

int64_t sched_window_start(int64_t due, int64_t flex_ms, enum run_trigger trigger) {
	return trigger == TRIGGER_RETRY ? due : due - flex_ms;
}

int64_t sched_catchup_offset(size_t slot, size_t nslots, int64_t spread_ms) {
	if (nslots <= 1 || spread_ms <= 0)
		return 0;
	return spread_ms * (int64_t)slot / (int64_t)nslots;
}

int64_t sched_retry_delay(const struct retry_policy *p, int attempt) {
	int64_t d = p->initial_ms;
	if (attempt < 1)
		attempt = 1;
	if (p->backoff == BACKOFF_LINEAR) {
		d = attempt > p->max_ms / (p->initial_ms ? p->initial_ms : 1) ? p->max_ms
		                                                              : p->initial_ms * attempt;
	} else {
		for (int i = 1; i < attempt && d < p->max_ms; i++)
			d *= 2;
	}
	return d > p->max_ms ? p->max_ms : d;
}
