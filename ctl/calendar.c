/*
 * calendar.c - "mcpjobctl calendar EXPR... [-n N] [--from TIME] [--cron]".
 * See calendar.h.
 */
#include "ctl/calendar.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/calendar.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

/* "Sat 2026-03-28 01:30:00 CET" in local time, or in UTC. */
static void fmt_time(int64_t us, bool utc, char *buf, size_t len) {
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	if (utc)
		gmtime_r(&s, &tm);
	else
		localtime_r(&s, &tm);
	strftime(buf, len, utc ? "%a %Y-%m-%d %H:%M:%S UTC" : "%a %Y-%m-%d %H:%M:%S %Z", &tm);
}

static bool local_is_utc(int64_t us) {
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	localtime_r(&s, &tm);
	return tm.tm_gmtoff == 0 && strcmp(tm.tm_zone, "UTC") == 0;
}

static int show_one(const struct ctl_calendar_opts *o, const char *expr, int64_t base_us,
                    int64_t now_us, json_t *all, bool first) {
	struct calendar *cal;
	char *cause = NULL;
	int r = o->cron ? calendar_parse_cron(expr, o->zone, &cal, &cause)
	                : calendar_parse(expr, o->zone, &cal, &cause);
	if (r < 0) {
		fprintf(stderr, "mcpjobctl: %s\n", cause);
		free(cause);
		return -1;
	}
	json_t *times = json_array();
	if (!o->json)
		printf("%s  Original form: %s\nNormalized form: %s\n", first ? "" : "\n", expr,
		       calendar_normalized(cal));
	int64_t t = base_us, next;
	for (long i = 0; i < o->iterations; i++) {
		if (calendar_next(cal, t, &next) < 0) {
			if (!o->json && i == 0)
				printf("    Next elapse: never\n");
			break;
		}
		char local[64], utc[64], rel[32];
		fmt_time(next, false, local, sizeof local);
		fmt_time(next, true, utc, sizeof utc);
		time_format_relative(next / 1000, now_us / 1000, rel, sizeof rel);
		if (o->json) {
			json_array_append_new(times, time_to_json(next / 1000));
		} else {
			if (i == 0)
				printf("    Next elapse: %s\n", local);
			else
				printf("%*s#%ld: %s\n", 14 - snprintf(NULL, 0, "%ld", i + 1), "Iter. ", i + 1,
				       local); /* aligned on the colon, as systemd-analyze does */
			if (!local_is_utc(next))
				printf("       (in UTC): %s\n", utc);
			printf("       From now: %s\n", rel);
		}
		t = next;
	}
	if (o->json)
		json_array_append_new(all, json_pack("{s:s, s:s, s:o}", "expression", expr, "normalized",
		                                     calendar_normalized(cal), "next", times));
	else
		json_decref(times);
	calendar_free(cal);
	return 0;
}

int ctl_calendar_show(const struct ctl_calendar_opts *o, int n, char **exprs) {
	int64_t now_us = time_now_ms() * 1000, base_us = now_us, ms;
	if (o->from != NULL) {
		if (!time_parse_rfc3339(o->from, &ms)) {
			fprintf(stderr, "mcpjobctl: --from wants an RFC 3339 time such as "
			                "2026-03-28T00:00:00Z, not \"%s\"\n", o->from);
			return 2;
		}
		base_us = ms * 1000;
	}
	json_t *all = json_array();
	int rc = 0;
	for (int i = 0; i < n; i++)
		if (show_one(o, exprs[i], base_us, now_us, all, i == 0) < 0)
			rc = 1;
	if (o->json) {
		char *s = json_dumps(all, JSON_INDENT(2));
		puts(s);
		free(s);
	}
	json_decref(all);
	return rc;
}
