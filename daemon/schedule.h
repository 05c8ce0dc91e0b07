/*
 * schedule.h - the arithmetic of a job's schedule, as pure functions: the
 * interval grid, flex windows, catch-up spreading and retry backoff. The
 * engine keeps the state; these decide the times, and the unit tests pin
 * them down.
 */
#ifndef MCPJOB_SCHEDULE_H
#define MCPJOB_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/job.h"

/*
 * sched_next_regular() - the first point of the grid anchor + k*interval
 * strictly after @at (k >= 0; @anchor itself when it is after @at). The
 * grid keeps a job's rhythm across late starts and downtime: a job due at
 * 12:00 every 15 min that ran late at 12:07 is next due at 12:15, not
 * 12:22. An anchor further than one interval ahead (the interval was made
 * shorter) or absent (0) gives @at + interval.
 */
int64_t sched_next_regular(int64_t anchor, int64_t interval_ms, int64_t at);

/* When a job due at @due may start: @flex earlier, except for retries. */
int64_t sched_window_start(int64_t due, int64_t flex_ms, enum run_trigger trigger);

/*
 * sched_catchup_offset() - the delay of missed job number @slot of @nslots
 * at start-up, spreading their catch-up runs evenly over @spread_ms so they
 * do not all start in the same second.
 */
int64_t sched_catchup_offset(size_t slot, size_t nslots, int64_t spread_ms);

/*
 * sched_retry_delay() - wait before attempt @attempt + 1 after attempt
 * @attempt (1-based) failed: exponential initial * 2^(attempt-1) or linear
 * initial * attempt, clamped to max.
 */
int64_t sched_retry_delay(const struct retry_policy *p, int attempt);

#endif
