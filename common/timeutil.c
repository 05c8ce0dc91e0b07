/*
 * timeutil.c - clocks and time formatting.
 */
#include "common/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_digits(char *p, unsigned v, int n) {
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Howard Hinnant's civil_from_days(): no gmtime_r() (which takes the time
 * zone lock) and no snprintf() for a time written once per run or more. */
void time_civil_date(int64_t days, char date[10]) {
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned day = doy - (153 * mp + 2) / 5 + 1;
	unsigned month = mp < 10 ? mp + 3 : mp - 9;
	unsigned year = (unsigned)((int64_t)yoe + era * 400 + (month <= 2));
	put_digits(date, year, 4);
	date[4] = '-';
	put_digits(date + 5, month, 2);
	date[7] = '-';
	put_digits(date + 8, day, 2);
}

char *time_format_rfc3339(int64_t ms, char *buf) {
	/* A time read from a damaged record may be anything: keep to years
	 * 0001..9999, which the format can show. */
	if (ms < TIME_MS_MIN)
		ms = TIME_MS_MIN;
	if (ms > TIME_MS_MAX)
		ms = TIME_MS_MAX;
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	unsigned frac = (unsigned)(ms - secs * 1000);
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	unsigned sod = (unsigned)(secs - days * 86400);
	time_civil_date(days, buf);
	buf[10] = 'T';
	put_digits(buf + 11, sod / 3600, 2);
	buf[13] = ':';
	put_digits(buf + 14, sod / 60 % 60, 2);
	buf[16] = ':';
	put_digits(buf + 17, sod % 60, 2);
	buf[19] = '.';
	put_digits(buf + 20, frac, 3);
	buf[23] = 'Z';
	buf[24] = '\0';
	return buf;
}

bool time_parse_rfc3339(const char *s, int64_t *ms) {
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return false;
	int64_t frac = 0;
	if (*p == '.') {
		int digits = 0;
		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (digits == 0)
			return false;
		while (digits++ < 3)
			frac *= 10;
	}
	int64_t offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		/* exactly "+hh:mm": sscanf would take "+1:3" and p += 6 then run past the end */
		const char *d = p + 1;
		if (!isdigit((unsigned char)d[0]) || !isdigit((unsigned char)d[1]) || d[2] != ':' ||
		    !isdigit((unsigned char)d[3]) || !isdigit((unsigned char)d[4]))
			return false;
		int hh = (d[0] - '0') * 10 + (d[1] - '0'), mm = (d[3] - '0') * 10 + (d[4] - '0');
		if (hh > 23 || mm > 59)
			return false;
		offset = (int64_t)(hh * 60 + mm) * 60 * 1000;
		if (*p == '-')
			offset = -offset;
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	*ms = (int64_t)timegm(&tm) * 1000 + frac - offset;
	return true;
}

json_t *time_to_json(int64_t ms) {
	char buf[TIME_RFC3339_LEN];
	if (ms == 0)
		return json_null();
	return json_string(time_format_rfc3339(ms, buf));
}

static void format_span(int64_t ms, char *buf, size_t len) {
	int64_t s = ms / 1000;
	if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldmin", (long long)(s / 60));
	else if (s < 86400)
		snprintf(buf, len, "%lldh %lldmin", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

char *time_format_relative(int64_t when_ms, int64_t now_ms, char *buf, size_t len) {
	char span[32];
	if (when_ms == 0) {
		snprintf(buf, len, "-");
	} else if (when_ms > now_ms + 999) {
		format_span(when_ms - now_ms, span, sizeof span);
		snprintf(buf, len, "in %s", span);
	} else if (when_ms < now_ms - 999) {
		format_span(now_ms - when_ms, span, sizeof span);
		snprintf(buf, len, "%s ago", span);
	} else {
		snprintf(buf, len, "now");
	}
	return buf;
}
