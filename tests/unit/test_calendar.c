/*
 * test_calendar.c - calendar schedules (common/calendar.c) and the time
 * zones under them (common/tz.c).
 *
 * The zone reader is checked against glibc's own reading of the same
 * zoneinfo files (setenv("TZ") is fine in a test process) at instants from
 * 1901 to 2100, past the files' last transitions where the POSIX rule in
 * the footer takes over. The elapse times are systemd's: the table below
 * was printed by systemd-analyze calendar (systemd 252) for each
 * expression and base time, and the e2e test test_calendar.py compares
 * mcpjobctl calendar with a live systemd-analyze where one is installed.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/calendar.h"
#include "common/tz.h"

#define USEC 1000000LL

static const char *const zones[] = {
    "Europe/Berlin",    "America/New_York", "Australia/Adelaide", "Australia/Lord_Howe",
    "Asia/Kolkata",     "Pacific/Chatham",  "Europe/Dublin",      "America/Sao_Paulo",
    "Africa/Casablanca", "America/St_Johns", "Pacific/Apia",      "Asia/Tehran",
};

START_TEST(test_tz_offsets_agree_with_glibc_from_1901_to_2100) {
	const char *name = zones[_i];
	struct tz_zone *z;
	char *cause = NULL;
	ck_assert_msg(tz_zone_load(name, &z, &cause) == 0, "%s: %s", name, cause);
	setenv("TZ", name, 1);
	tzset();
	/* Every 29h 17min: lands on every hour of the day and every season. */
	for (int64_t t = -2145916800LL; t < 4102444800LL; t += 29 * 3600 + 17 * 60) {
		time_t s = (time_t)t;
		struct tm tm;
		localtime_r(&s, &tm);
		bool dst;
		const char *abbr;
		int32_t off = tz_offset_at(z, t, &dst, &abbr);
		ck_assert_msg(off == tm.tm_gmtoff, "%s at %lld: offset %d, glibc %ld", name,
		              (long long)t, off, tm.tm_gmtoff);
		ck_assert_msg(dst == (tm.tm_isdst > 0), "%s at %lld: dst %d, glibc %d", name,
		              (long long)t, dst, tm.tm_isdst);
		ck_assert_msg(strcmp(abbr, tm.tm_zone) == 0, "%s at %lld: %s, glibc %s", name,
		              (long long)t, abbr, tm.tm_zone);
	}
	unsetenv("TZ");
	tz_zone_free(z);
}
END_TEST

/* A wall time that happens once maps back to the instant it came from. */
START_TEST(test_tz_wall_times_round_trip_outside_transitions) {
	struct tz_zone *z;
	char *cause = NULL;
	ck_assert_int_eq(tz_zone_load(zones[_i], &z, &cause), 0);
	for (int64_t t = 0; t < 4102444800LL; t += 86400 * 3 + 3600 * 5 + 60 * 7) {
		int64_t wall = t + tz_offset_at(z, t, NULL, NULL);
		int64_t back = tz_wall_to_utc(z, wall);
		/* Within a repeated hour the first occurrence is meant: only that one differs. */
		if (back != t)
			ck_assert_msg(back < t && wall == back + tz_offset_at(z, back, NULL, NULL),
			              "%s: %lld -> wall %lld -> %lld", zones[_i], (long long)t,
			              (long long)wall, (long long)back);
	}
	tz_zone_free(z);
}
END_TEST

START_TEST(test_tz_skipped_time_moves_on_by_the_gap_and_repeated_time_is_first) {
	struct tz_zone *z;
	char *cause = NULL;
	ck_assert_int_eq(tz_zone_load("Europe/Berlin", &z, &cause), 0);
	/* 2026-03-29 02:30 does not exist in Berlin: 03:30 CEST = 01:30 UTC. */
	ck_assert_int_eq(tz_wall_to_utc(z, 1774751400LL), 1774747800LL);
	/* 2026-10-25 02:30 happens twice: the first is 00:30 UTC (CEST). */
	ck_assert_int_eq(tz_wall_to_utc(z, 1792895400LL), 1792888200LL);
	/* 03:30 after it is unambiguous: 02:30 UTC (CET). */
	ck_assert_int_eq(tz_wall_to_utc(z, 1792895400LL + 3600), 1792888200LL + 2 * 3600);
	tz_zone_free(z);
}
END_TEST

START_TEST(test_tz_unknown_zone_is_named_and_paths_are_refused) {
	struct tz_zone *z;
	char *cause = NULL;
	ck_assert_int_eq(tz_zone_load("Europe/Berln", &z, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "unknown time zone \"Europe/Berln\""));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(tz_zone_load("../../etc/passwd", &z, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "not a time zone name"));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(tz_zone_load("/etc/localtime", &z, &cause), -1);
	free(cause);
}
END_TEST

START_TEST(test_tz_local_zone_follows_tz_variable_and_posix_rules) {
	struct tz_zone *z;
	char *cause = NULL;
	setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
	ck_assert_int_eq(tz_zone_load(NULL, &z, &cause), 0);
	ck_assert_int_eq(tz_offset_at(z, 1782000000LL, NULL, NULL), -4 * 3600); /* June 2026 */
	ck_assert_int_eq(tz_offset_at(z, 1767225600LL, NULL, NULL), -5 * 3600); /* Jan 2026 */
	tz_zone_free(z);
	setenv("TZ", ":Asia/Kolkata", 1);
	ck_assert_int_eq(tz_zone_load(NULL, &z, &cause), 0);
	ck_assert_int_eq(tz_offset_at(z, 1767225600LL, NULL, NULL), 5 * 3600 + 1800);
	tz_zone_free(z);
	unsetenv("TZ");
}
END_TEST

/* --- elapse times: systemd-analyze calendar --iterations=4 --base-time=... --- */

static const struct {
	const char *expr;
	long long base;
	long long next[4]; /* 0: never */
} systemd_table[] = {
#include "calendar_systemd_table.inc"
};

START_TEST(test_calendar_elapses_as_systemd_does_across_dst) {
	const char *expr = systemd_table[_i].expr;
	struct calendar *c;
	char *cause = NULL;
	ck_assert_msg(calendar_parse(expr, NULL, &c, &cause) == 0, "%s: %s", expr, cause);
	int64_t t = systemd_table[_i].base * USEC, next;
	for (int k = 0; k < 4; k++) {
		long long want = systemd_table[_i].next[k];
		int r = calendar_next(c, t, &next);
		if (want == 0) {
			ck_assert_msg(r == -1, "%s #%d: elapses at %lld, systemd says never", expr, k + 1,
			              (long long)(next / USEC));
			break;
		}
		ck_assert_msg(r == 0 && next == want * USEC, "%s #%d: %lld, systemd %lld", expr, k + 1,
		              r == 0 ? (long long)(next / USEC) : -1LL, want);
		t = next;
	}
	calendar_free(c);
}
END_TEST

static const struct {
	const char *in, *normalized;
} normal_forms[] = {
    /* systemd.time(7)'s own examples */
    {"Sat,Thu,Mon..Wed,Sat..Sun", "Mon..Thu,Sat,Sun *-*-* 00:00:00"},
    {"Mon,Sun 12-*-* 2,1:23", "Mon,Sun 2012-*-* 01,02:23:00"},
    {"Wed *-1", "Wed *-*-01 00:00:00"},
    {"Wed..Wed,Wed *-1", "Wed *-*-01 00:00:00"},
    {"Wed, 17:48", "Wed *-*-* 17:48:00"},
    {"Wed..Sat,Tue 12-10-15 1:2:3", "Tue..Sat 2012-10-15 01:02:03"},
    {"*-*-7 0:0:0", "*-*-07 00:00:00"},
    {"10-15", "*-10-15 00:00:00"},
    {"monday *-12-* 17:00", "Mon *-12-* 17:00:00"},
    {"Mon,Fri *-*-3,1,2 *:30:45", "Mon,Fri *-*-01,02,03 *:30:45"},
    {"12,14,13,12:20,10,30", "*-*-* 12,13,14:10,20,30:00"},
    {"12..14:10,20,30", "*-*-* 12..14:10,20,30:00"},
    {"mon,fri *-1/2-1,3 *:30:45", "Mon,Fri *-01/2-01,03 *:30:45"},
    {"03-05 08:05:40", "*-03-05 08:05:40"},
    {"08:05:40", "*-*-* 08:05:40"},
    {"05:40", "*-*-* 05:40:00"},
    {"Sat,Sun 12-05 08:05:40", "Sat,Sun *-12-05 08:05:40"},
    {"Sat,Sun 08:05:40", "Sat,Sun *-*-* 08:05:40"},
    {"2003-03-05 05:40", "2003-03-05 05:40:00"},
    {"05:40:23.4200004/3.1700005", "*-*-* 05:40:23.420000/3.170001"},
    {"2003-02..04-05", "2003-02..04-05 00:00:00"},
    {"2003-03-05 05:40 UTC", "2003-03-05 05:40:00 UTC"},
    {"2003-03-05", "2003-03-05 00:00:00"},
    {"03-05", "*-03-05 00:00:00"},
    {"hourly", "*-*-* *:00:00"},
    {"daily", "*-*-* 00:00:00"},
    {"daily UTC", "*-*-* 00:00:00 UTC"},
    {"monthly", "*-*-01 00:00:00"},
    {"weekly", "Mon *-*-* 00:00:00"},
    {"weekly Pacific/Auckland", "Mon *-*-* 00:00:00 Pacific/Auckland"},
    {"yearly", "*-01-01 00:00:00"},
    {"annually", "*-01-01 00:00:00"},
    {"*:2/3", "*-*-* *:02/3:00"},
    {"minutely", "*-*-* *:*:00"},
    {"quarterly", "*-01,04,07,10-01 00:00:00"},
    {"semiannually", "*-01,07-01 00:00:00"},
    {"*-*~01 18:00", "*-*~01 18:00:00"},
    {"Mon *-05~07/1", "Mon *-05~07/1 00:00:00"},
    {"@1700000000", "2023-11-14 22:13:20 UTC"},
    {"@6444444412", "2174-03-20 11:26:52 UTC"}, /* a year above 2147 (found by fuzzing) */
};

START_TEST(test_calendar_normalizes_as_systemd_time_7_shows) {
	struct calendar *c;
	char *cause = NULL;
	ck_assert_msg(calendar_parse(normal_forms[_i].in, NULL, &c, &cause) == 0, "%s: %s",
	              normal_forms[_i].in, cause);
	ck_assert_str_eq(calendar_normalized(c), normal_forms[_i].normalized);
	calendar_free(c);
}
END_TEST

static char *parse_error(const char *expr, bool cron) {
	struct calendar *c = NULL;
	char *cause = NULL;
	int r = cron ? calendar_parse_cron(expr, NULL, &c, &cause)
	             : calendar_parse(expr, NULL, &c, &cause);
	ck_assert_msg(r == -1, "\"%s\" accepted", expr);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(cause);
	return cause;
}

static void assert_error(const char *expr, bool cron, const char *want) {
	char *cause = parse_error(expr, cron);
	ck_assert_msg(strstr(cause, want) != NULL, "\"%s\": \"%s\" lacks \"%s\"", expr, cause, want);
	free(cause);
}

START_TEST(test_calendar_errors_name_the_column) {
	assert_error("Mon..Fry", false, "\"Mon..Fry\": unknown weekday \"Fry\" at column 6");
	assert_error("Fri..Mon 10:00", false, "ends before it starts, at \"Mon\" at column 6");
	assert_error("*-*-* 25:00", false, "out of range for the hour (0..23) at column 7");
	assert_error("*-13-01", false, "out of range for the month (1..12) at column 3");
	assert_error("*-*-* 10:61", false, "minute (0..59) at column 10");
	assert_error("*-*-* 10:00 Europe/Berln", false,
	             "unknown time zone \"Europe/Berln\" (see timedatectl list-timezones) at column 13");
	assert_error("10:x0", false, "expected a number, not \"x0\" at column 4");
	assert_error("*:*/5", false, "\"*/N\" is cron's form; write \"0/N\"");
	assert_error("every day at 03:00", false, "unknown weekday \"every\" at column 1");
	assert_error("", false, "empty calendar expression");
	assert_error("1969-01-01", false, "out of range for the year (1970..2199)");
	assert_error("*:0/0", false, "a repetition of 0");
}
END_TEST

START_TEST(test_calendar_repetitions_and_end_of_month) {
	struct calendar *c;
	char *cause = NULL;
	int64_t next;
	/* The second-to-last day of every month, 2026-01-01T00:00Z on. */
	ck_assert_int_eq(calendar_parse("*-*~02 UTC", NULL, &c, &cause), 0);
	ck_assert_int_eq(calendar_next(c, 1767225600LL * USEC, &next), 0);
	ck_assert_int_eq(next, 1769731200LL * USEC); /* 2026-01-30 */
	ck_assert_int_eq(calendar_next(c, next, &next), 0);
	ck_assert_int_eq(next, 1772150400LL * USEC); /* 2026-02-27 */
	calendar_free(c);
	/* A year that is over never elapses again. */
	ck_assert_int_eq(calendar_parse("2003-*-* UTC", NULL, &c, &cause), 0);
	ck_assert_int_eq(calendar_next(c, 1767225600LL * USEC, &next), -1);
	calendar_free(c);
	/* An impossible date neither loops nor elapses. */
	ck_assert_int_eq(calendar_parse("*-02-30 UTC", NULL, &c, &cause), 0);
	ck_assert_int_eq(calendar_next(c, 1767225600LL * USEC, &next), -1);
	calendar_free(c);
}
END_TEST

START_TEST(test_calendar_zone_key_applies_unless_the_expression_names_one) {
	struct calendar *c;
	char *cause = NULL;
	int64_t next;
	ck_assert_int_eq(calendar_parse("*-*-* 03:00", "Asia/Kolkata", &c, &cause), 0);
	ck_assert_str_eq(calendar_normalized(c), "*-*-* 03:00:00 Asia/Kolkata");
	ck_assert_int_eq(calendar_next(c, 1767225600LL * USEC, &next), 0);
	/* 00:00 UTC is 05:30 IST: the next 03:00 IST is 21:30 UTC. */
	ck_assert_int_eq(next, (1767225600LL + 21 * 3600 + 1800) * USEC);
	calendar_free(c);
	ck_assert_int_eq(calendar_parse("*-*-* 03:00 UTC", "Asia/Kolkata", &c, &cause), 0);
	ck_assert_str_eq(calendar_normalized(c), "*-*-* 03:00:00 UTC");
	calendar_free(c);
	ck_assert_int_eq(calendar_parse("daily", "Mars/Olympus", &c, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "unknown time zone \"Mars/Olympus\""));
	free(cause);
}
END_TEST

/* --- cron ----------------------------------------------------------------------- */

static const struct {
	const char *line, *normalized;
} cron_forms[] = {
    {"0 3 * * 1-5", "Mon..Fri *-*-* 03:00:00"},
    {"30 4 1,15 * *", "*-*-01,15 04:30:00"},
    {"0 0 * * sun", "Sun *-*-* 00:00:00"},
    {"0 0 * * 7", "Sun *-*-* 00:00:00"},
    {"0 0 * * 0,7", "Sun *-*-* 00:00:00"},
    {"15 */6 * * *", "*-*-* 00,06,12,18:15:00"},
    {"0 9-17/2 * jan-mar mon-fri", "Mon..Fri *-01..03-* 09,11,13,15,17:00:00"},
    {"0 0 1 * mon", "*-*-01 00:00:00 or Mon *-*-* 00:00:00"},
    {"0 0 */2 * mon", "Mon *-*-01,03,05,07,09,11,13,15,17,19,21,23,25,27,29,31 00:00:00"},
    {"@daily", "*-*-* 00:00:00"},
    {"@hourly", "*-*-* *:00:00"},
    {"@weekly", "Sun *-*-* 00:00:00"},
    {"@monthly", "*-*-01 00:00:00"},
    {"@yearly", "*-01-01 00:00:00"},
    {"@reboot", "@reboot (once, when mcpjobd starts)"},
};

START_TEST(test_cron_lines_normalize_to_calendar_form) {
	struct calendar *c;
	char *cause = NULL;
	ck_assert_msg(calendar_parse_cron(cron_forms[_i].line, NULL, &c, &cause) == 0, "%s: %s",
	              cron_forms[_i].line, cause);
	ck_assert_str_eq(calendar_normalized(c), cron_forms[_i].normalized);
	calendar_free(c);
}
END_TEST

/* Vixie cron: both day fields restricted -> either matches. */
START_TEST(test_cron_day_of_month_or_day_of_week_when_both_restricted) {
	struct calendar *c;
	char *cause = NULL;
	int64_t t = 1767225600LL * USEC, next; /* Thu 2026-01-01 00:00 UTC */
	ck_assert_int_eq(calendar_parse_cron("0 12 13 * fri", "UTC", &c, &cause), 0);
	/* Fri 01-02, Fri 01-09, Tue 01-13, Fri 01-16 */
	static const long long want[] = {1767355200LL, 1767960000LL, 1768305600LL, 1768564800LL};
	for (int k = 0; k < 4; k++) {
		ck_assert_int_eq(calendar_next(c, t, &next), 0);
		ck_assert_int_eq(next, want[k] * USEC);
		t = next;
	}
	calendar_free(c);
	/* "*" in one of them: both must match (Friday the 13th only... of 2026: Feb, Mar, Nov). */
	ck_assert_int_eq(calendar_parse_cron("0 12 13 * *", "UTC", &c, &cause), 0);
	ck_assert_int_eq(calendar_next(c, 1767225600LL * USEC, &next), 0);
	ck_assert_int_eq(next, 1768305600LL * USEC);
	calendar_free(c);
}
END_TEST

START_TEST(test_cron_reboot_never_elapses_on_the_clock) {
	struct calendar *c;
	char *cause = NULL;
	int64_t next;
	ck_assert_int_eq(calendar_parse_cron("@reboot", NULL, &c, &cause), 0);
	ck_assert(calendar_at_start_only(c));
	ck_assert_int_eq(calendar_next(c, 0, &next), -1);
	calendar_free(c);
}
END_TEST

START_TEST(test_cron_errors_name_field_and_column) {
	assert_error("0 3 * * Fry", true, "unknown name \"Fry\" in the day of week field at column 9");
	assert_error("60 * * * *", true, "60 is out of range for the minute (0-59) at column 1");
	assert_error("0 3 * *", true, "a cron line has 5 fields");
	assert_error("0 3 * * * extra", true, "unexpected \"extra\" after the 5 fields");
	assert_error("0 5-3 * * *", true, "a range that ends before it starts at column 3");
	assert_error("@fortnightly", true, "unknown shorthand \"@fortnightly\"");
	assert_error("*/0 * * * *", true, "a step must be a number from 1");
}
END_TEST

static Suite *calendar_suite(void) {
	Suite *s = suite_create("calendar");
	TCase *tc = tcase_create("tz");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_tz_offsets_agree_with_glibc_from_1901_to_2100, 0,
	                    sizeof zones / sizeof zones[0]);
	tcase_add_loop_test(tc, test_tz_wall_times_round_trip_outside_transitions, 0,
	                    sizeof zones / sizeof zones[0]);
	tcase_add_test(tc, test_tz_skipped_time_moves_on_by_the_gap_and_repeated_time_is_first);
	tcase_add_test(tc, test_tz_unknown_zone_is_named_and_paths_are_refused);
	tcase_add_test(tc, test_tz_local_zone_follows_tz_variable_and_posix_rules);
	suite_add_tcase(s, tc);
	tc = tcase_create("calendar");
	tcase_add_loop_test(tc, test_calendar_elapses_as_systemd_does_across_dst, 0,
	                    sizeof systemd_table / sizeof systemd_table[0]);
	tcase_add_loop_test(tc, test_calendar_normalizes_as_systemd_time_7_shows, 0,
	                    sizeof normal_forms / sizeof normal_forms[0]);
	tcase_add_test(tc, test_calendar_errors_name_the_column);
	tcase_add_test(tc, test_calendar_repetitions_and_end_of_month);
	tcase_add_test(tc, test_calendar_zone_key_applies_unless_the_expression_names_one);
	suite_add_tcase(s, tc);
	tc = tcase_create("cron");
	tcase_add_loop_test(tc, test_cron_lines_normalize_to_calendar_form, 0,
	                    sizeof cron_forms / sizeof cron_forms[0]);
	tcase_add_test(tc, test_cron_day_of_month_or_day_of_week_when_both_restricted);
	tcase_add_test(tc, test_cron_reboot_never_elapses_on_the_clock);
	tcase_add_test(tc, test_cron_errors_name_field_and_column);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(calendar_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
