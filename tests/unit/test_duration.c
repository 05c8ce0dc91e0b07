/*
 * test_duration.c - human durations (common/duration.c) and times
 * (common/timeutil.c): parsing, shortest formatting, RFC 3339 round trips
 * and the relative forms mcpjobctl prints.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/duration.h"
#include "common/timeutil.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

static int64_t parse_ok(const char *s) {
	int64_t ms = -1;
	char *cause = NULL;
	ck_assert_msg(duration_parse(s, &ms, &cause) == 0, "\"%s\" refused: %s", s,
	              cause ? cause : "?");
	ck_assert_ptr_null(cause);
	return ms;
}

/* Parse @s expecting a refusal; returns the cause (caller frees). */
static char *parse_bad(const char *s) {
	int64_t ms = 12345;
	char *cause = NULL;
	ck_assert_msg(duration_parse(s, &ms, &cause) == -1, "\"%s\" accepted", s);
	ck_assert_ptr_nonnull(cause);
	ck_assert_int_eq(ms, 12345); /* untouched on failure */
	return cause;
}

START_TEST(test_duration_parses_every_unit_and_sums) {
	ck_assert_int_eq(parse_ok("250ms"), 250);
	ck_assert_int_eq(parse_ok("30s"), 30 * SEC);
	ck_assert_int_eq(parse_ok("45sec"), 45 * SEC);
	ck_assert_int_eq(parse_ok("15m"), 15 * MIN);
	ck_assert_int_eq(parse_ok("10min"), 10 * MIN);
	ck_assert_int_eq(parse_ok("2h"), 2 * HOUR);
	ck_assert_int_eq(parse_ok("7d"), 7 * DAY);
	ck_assert_int_eq(parse_ok("2w"), 14 * DAY);
	ck_assert_int_eq(parse_ok("1h30m"), 90 * MIN);
	ck_assert_int_eq(parse_ok("1d12h30m15s500ms"), DAY + 12 * HOUR + 30 * MIN + 15 * SEC + 500);
	ck_assert_int_eq(parse_ok("0s"), 0);
	ck_assert_int_eq(parse_ok("90s"), 90 * SEC);
}
END_TEST

START_TEST(test_duration_refuses_bare_numbers_and_junk_with_a_hint) {
	char *cause = parse_bad("15");
	ck_assert_str_eq(cause, "\"15\" is not a duration (a number needs a unit) "
	                        "(try \"30s\", \"15m\", \"1h30m\" or \"7d\")");
	free(cause);
	static const char *const bad[] = {"", "m", "15x", "1.5h", "-5m", " 5m", "5m ", "5 m",
	                                  "5M", "h1", "1hh"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = parse_bad(bad[i]);
		ck_assert_msg(strstr(cause, "is not a duration") != NULL, "%s", cause);
		ck_assert_msg(strstr(cause, "(try \"30s\"") != NULL, "%s", cause);
		free(cause);
	}
}
END_TEST

START_TEST(test_duration_refuses_overflow) {
	char *cause = parse_bad("99999999999999999999s");
	ck_assert_ptr_nonnull(strstr(cause, "too large"));
	free(cause);
	cause = parse_bad("999999999999w");
	ck_assert_ptr_nonnull(strstr(cause, "too large"));
	free(cause);
}
END_TEST

START_TEST(test_duration_format_is_shortest_exact_form) {
	char buf[32];
	ck_assert_str_eq(duration_format(90 * MIN, buf, sizeof buf), "1h30m");
	ck_assert_str_eq(duration_format(0, buf, sizeof buf), "0s");
	ck_assert_str_eq(duration_format(1500, buf, sizeof buf), "1s500ms");
	ck_assert_str_eq(duration_format(7 * DAY, buf, sizeof buf), "7d");
	ck_assert_str_eq(duration_format(DAY + 1, buf, sizeof buf), "1d1ms");
	ck_assert_str_eq(duration_format(59 * SEC, buf, sizeof buf), "59s");
}
END_TEST

START_TEST(test_duration_format_parses_back_to_the_same_value) {
	static const int64_t values[] = {1, 999, SEC, 61 * SEC, 15 * MIN, 90 * MIN,
	                                 DAY - 1, 30 * DAY, 365 * DAY + 7 * HOUR + 3};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char buf[32];
		duration_format(values[i], buf, sizeof buf);
		ck_assert_msg(parse_ok(buf) == values[i], "%lld -> %s", (long long)values[i], buf);
	}
}
END_TEST

START_TEST(test_rfc3339_formats_utc_with_milliseconds) {
	char buf[TIME_RFC3339_LEN];
	ck_assert_str_eq(time_format_rfc3339(0, buf), "1970-01-01T00:00:00.000Z");
	ck_assert_str_eq(time_format_rfc3339(1795882981123LL, buf), "2026-11-28T16:23:01.123Z");
	ck_assert_str_eq(time_format_rfc3339(951868799000LL, buf), "2000-02-29T23:59:59.000Z");
	ck_assert_str_eq(time_format_rfc3339(-1, buf), "1969-12-31T23:59:59.999Z");
}
END_TEST

/* The date arithmetic against the C library's, from year 0001 to 9999. */
START_TEST(test_rfc3339_is_what_gmtime_says_across_the_years) {
	const int64_t lo = TIME_MS_MIN, hi = TIME_MS_MAX;
	const int64_t step = 86400000LL * 37 + 3600000LL * 5 + 61001; /* walks days and hours */
	for (int64_t ms = lo; ms <= hi; ms += step) {
		for (int64_t d = -1; d <= 1; d++) {
			int64_t v = ms + d;
			if (v < lo || v > hi)
				continue;
			char got[TIME_RFC3339_LEN], want[64];
			time_t secs = (time_t)(v >= 0 ? v / 1000 : (v - 999) / 1000);
			struct tm tm;
			ck_assert_ptr_nonnull(gmtime_r(&secs, &tm));
			snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			         (int)(v - (int64_t)secs * 1000));
			ck_assert_str_eq(time_format_rfc3339(v, got), want);
		}
	}
	char buf[TIME_RFC3339_LEN];
	ck_assert_str_eq(time_format_rfc3339(INT64_MIN, buf), "0001-01-01T00:00:00.000Z");
	ck_assert_str_eq(time_format_rfc3339(INT64_MAX, buf), "9999-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(test_rfc3339_round_trips) {
	static const int64_t values[] = {1, 999, 1000, 951868799000LL, 1795882981123LL,
	                                 4102444800000LL, -1, -86400000LL};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char buf[TIME_RFC3339_LEN];
		int64_t back = 0;
		time_format_rfc3339(values[i], buf);
		ck_assert_msg(time_parse_rfc3339(buf, &back), "%s not parsed", buf);
		ck_assert_int_eq(back, values[i]);
	}
	int64_t now = time_now_ms(), back = 0;
	char buf[TIME_RFC3339_LEN];
	ck_assert(time_parse_rfc3339(time_format_rfc3339(now, buf), &back));
	ck_assert_int_eq(back, now);
}
END_TEST

START_TEST(test_rfc3339_parses_offsets_and_fractions) {
	int64_t ms = 0;
	ck_assert(time_parse_rfc3339("2026-11-28T16:23:01Z", &ms));
	ck_assert_int_eq(ms, 1795882981000LL);
	ck_assert(time_parse_rfc3339("2026-11-28T16:23:01.1z", &ms));
	ck_assert_int_eq(ms, 1795882981100LL);
	ck_assert(time_parse_rfc3339("2026-11-28T16:23:01.123456789Z", &ms));
	ck_assert_int_eq(ms, 1795882981123LL); /* beyond milliseconds is dropped */
	ck_assert(time_parse_rfc3339("2026-11-28T17:53:01.123+01:30", &ms));
	ck_assert_int_eq(ms, 1795882981123LL);
	ck_assert(time_parse_rfc3339("2026-11-28T11:23:01.123-05:00", &ms));
	ck_assert_int_eq(ms, 1795882981123LL);
}
END_TEST

START_TEST(test_rfc3339_refuses_malformed_times) {
	static const char *const bad[] = {
		"", "now", "2026-11-28", "2026-11-28T16:23:01", "2026-11-28T16:23:01.Z",
		"2026-11-28T16:23:01Zjunk", "2026-11-28T16:23:01+01", "2026-11-28T16:23:01+1:30",
		"2026-11-28T16:23:01+01:3", "2026-11-28T16:23:01+01:30x", "2026-11-28 16:23:01Z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t ms = 42;
		ck_assert_msg(!time_parse_rfc3339(bad[i], &ms), "\"%s\" accepted", bad[i]);
		ck_assert_int_eq(ms, 42);
	}
}
END_TEST

START_TEST(test_time_to_json_sends_null_for_absent) {
	json_t *v = time_to_json(0);
	ck_assert(json_is_null(v));
	json_decref(v);
	v = time_to_json(1795882981123LL);
	ck_assert_str_eq(json_string_value(v), "2026-11-28T16:23:01.123Z");
	json_decref(v);
}
END_TEST

START_TEST(test_relative_times_read_like_list_timers) {
	char buf[32];
	const int64_t now = 1795882981123LL;
	ck_assert_str_eq(time_format_relative(0, now, buf, sizeof buf), "-");
	ck_assert_str_eq(time_format_relative(now, now, buf, sizeof buf), "now");
	ck_assert_str_eq(time_format_relative(now + 500, now, buf, sizeof buf), "now");
	ck_assert_str_eq(time_format_relative(now + 30 * SEC, now, buf, sizeof buf), "in 30s");
	ck_assert_str_eq(time_format_relative(now + 14 * MIN, now, buf, sizeof buf), "in 14min");
	ck_assert_str_eq(time_format_relative(now - 3 * HOUR, now, buf, sizeof buf), "3h 0min ago");
	ck_assert_str_eq(time_format_relative(now - 90 * MIN, now, buf, sizeof buf),
	                 "1h 30min ago");
	ck_assert_str_eq(time_format_relative(now + 2 * DAY + 3 * HOUR, now, buf, sizeof buf),
	                 "in 2d 3h");
	ck_assert_str_eq(time_format_relative(now - 5 * SEC, now, buf, sizeof buf), "5s ago");
}
END_TEST

START_TEST(test_clocks_move_forward) {
	int64_t wall = time_now_ms();
	ck_assert_int_gt(wall, 1577836800000LL); /* after 2020-01-01 */
	int64_t a = time_mono_ms(), b = time_mono_ms();
	ck_assert_int_ge(b, a);
}
END_TEST

static Suite *duration_suite(void) {
	Suite *s = suite_create("duration");
	TCase *tc = tcase_create("duration");
	tcase_add_test(tc, test_duration_parses_every_unit_and_sums);
	tcase_add_test(tc, test_duration_refuses_bare_numbers_and_junk_with_a_hint);
	tcase_add_test(tc, test_duration_refuses_overflow);
	tcase_add_test(tc, test_duration_format_is_shortest_exact_form);
	tcase_add_test(tc, test_duration_format_parses_back_to_the_same_value);
	suite_add_tcase(s, tc);
	tc = tcase_create("timeutil");
	tcase_add_test(tc, test_rfc3339_formats_utc_with_milliseconds);
	tcase_add_test(tc, test_rfc3339_is_what_gmtime_says_across_the_years);
	tcase_add_test(tc, test_rfc3339_round_trips);
	tcase_add_test(tc, test_rfc3339_parses_offsets_and_fractions);
	tcase_add_test(tc, test_rfc3339_refuses_malformed_times);
	tcase_add_test(tc, test_time_to_json_sends_null_for_absent);
	tcase_add_test(tc, test_relative_times_read_like_list_timers);
	tcase_add_test(tc, test_clocks_move_forward);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(duration_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
