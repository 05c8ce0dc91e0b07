/*
 * calendar.h - "mcpjobctl calendar": check a schedule before using it.
 *
 * Needs no daemon: parses each expression with the engine's own calendar
 * code (common/calendar.h) and prints its normalised form and next elapse
 * times the way systemd-analyze calendar does, in the local time zone and,
 * where that is not UTC, in UTC too.
 */
#ifndef MCPJOB_CTL_CALENDAR_H
#define MCPJOB_CTL_CALENDAR_H

#include <stdbool.h>

struct ctl_calendar_opts {
	bool cron;          /* the expressions are cron lines */
	bool json;          /* one JSON object per expression, in an array */
	long iterations;    /* elapse times to show, >= 1 */
	const char *from;   /* RFC 3339 base time, NULL = now */
	const char *zone;   /* --timezone, as a job's "timezone" key; may be NULL */
};

/* Prints every expression; returns the exit status (1 if any was invalid). */
int ctl_calendar_show(const struct ctl_calendar_opts *o, int n, char **exprs);

#endif
