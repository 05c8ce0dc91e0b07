/*
 * timeutil.h - wall-clock and monotonic time, RFC 3339 and relative times.
 *
 * Times that are stored or sent are wall-clock milliseconds since the epoch
 * (int64_t); 0 means "absent" (sent as JSON null). Schedules are kept in
 * wall-clock terms so they survive restarts; intervals between two events of
 * one process use the monotonic clock.
 */
#ifndef MCPJOB_TIMEUTIL_H
#define MCPJOB_TIMEUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIME_RFC3339_LEN 96

int64_t time_now_ms(void);
int64_t time_mono_ms(void);

/* "2026-11-28T16:23:01.123Z" into buf (at least TIME_RFC3339_LEN bytes);
 * a time before year 0001 or after 9999 is written as that bound. */
#define TIME_MS_MIN (-62135596800000LL) /* 0001-01-01T00:00:00.000Z */
#define TIME_MS_MAX 253402300799999LL   /* 9999-12-31T23:59:59.999Z */
char *time_format_rfc3339(int64_t ms, char *buf);
/* "YYYY-MM-DD" (not NUL-terminated) of the day @days after 1970-01-01. */
void time_civil_date(int64_t days, char date[10]);
/* Parse RFC 3339 ("Z" or "+hh:mm", optional fraction); false if malformed. */
bool time_parse_rfc3339(const char *s, int64_t *ms);
/* RFC 3339 string, or JSON null for 0. New reference. */
json_t *time_to_json(int64_t ms);

/*
 * time_format_relative() - "in 14min", "3h ago", "now" (as list-timers),
 * "-" for 0. @buf at least 32 bytes.
 */
char *time_format_relative(int64_t when_ms, int64_t now_ms, char *buf, size_t len);

#endif
