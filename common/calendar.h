/*
 * calendar.h - calendar schedules: systemd.time(7) calendar events and
 * 5-field cron lines, one engine underneath.
 *
 * "Mon..Fri *-*-* 03:00 Europe/Berlin", "*-*~01 18:00" (the last day of
 * every month), "daily", "0 3 * * 1-5", "@weekly". A calendar answers one
 * question: when does it elapse next after a given instant. The answer is
 * the one systemd gives for OnCalendar= (the same search over year, month,
 * day, weekday, hour, minute, second, in the schedule's own time zone):
 * a wall time that does not exist that day (spring forward) is skipped, a
 * wall time that happens twice (fall back) elapses once, at its first
 * occurrence.
 *
 * Cron's rule for a line that restricts both the day of month and the day
 * of week (neither field starts with "*"): it elapses when EITHER matches
 * ("0 0 1 * Mon" is every 1st and every Monday), as in Vixie cron; when
 * one of them starts with "*", both must match. Such a line is two
 * calendars; the next elapse is the earlier of the two.
 *
 * The parsers' errors quote the expression and name the column:
 * "\"Mon..Fry\": unknown weekday \"Fry\" at column 6".
 */
#ifndef MCPJOB_CALENDAR_H
#define MCPJOB_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

struct calendar;

/*
 * calendar_parse() - a systemd.time(7) calendar event. A time zone at the
 * end of @expr ("... Europe/Berlin", "... UTC") wins; else @zone (the
 * job's "timezone", may be NULL); else the local zone. Returns 0, or -1
 * with *@cause.
 */
int calendar_parse(const char *expr, const char *zone, struct calendar **out, char **cause);
/* calendar_parse_cron() - "m h dom mon dow" or @yearly ... @reboot, in @zone. */
int calendar_parse_cron(const char *line, const char *zone, struct calendar **out,
                        char **cause);
void calendar_free(struct calendar *c);

/* The normalised form, as systemd-analyze calendar prints it. */
const char *calendar_normalized(const struct calendar *c);
/* "@reboot": elapses once when the daemon starts, never on the clock. */
bool calendar_at_start_only(const struct calendar *c);

/*
 * calendar_next() - the first elapse strictly after @after_us
 * (microseconds since the epoch). Returns 0 and *@next_us, or -1 when the
 * calendar never elapses again (a year in the past, "2003-*-*").
 */
int calendar_next(const struct calendar *c, int64_t after_us, int64_t *next_us);

#endif
