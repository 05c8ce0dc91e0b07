/*
 * calendar.c - systemd.time(7) calendar events and cron lines. See
 * calendar.h for the rules; the search in cal_find() walks the fields
 * from the year down as systemd's calendarspec does, normalising the
 * candidate wall time in the schedule's zone at every step, so that days
 * and hours a zone skips are stepped over.
 */
#include "common/calendar.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/tz.h"
#include "common/xmalloc.h"

#define USEC 1000000LL
#define CAL_YEAR_MIN 1970
#define CAL_YEAR_MAX 2199
#define CAL_CHAIN_MAX 240

/* start[..stop][/repeat]; stop -1 = open, repeat 0 = the one value. */
struct cal_comp {
	int start, stop, repeat;
	int col; /* 1-based column in the expression, for errors */
};

/* A field's values; n == 0 is "*". */
struct cal_chain {
	size_t n;
	struct cal_comp *v;
};

struct cal_spec {
	unsigned weekdays; /* bit 0 Monday .. bit 6 Sunday; 0 = any */
	bool end_of_month; /* the day counts back from the month's end ("~") */
	struct cal_chain year, month, day, hour, minute, usec;
};

struct calendar {
	struct cal_spec alt[2];
	int nalt;
	struct tz_zone *zone;
	char *normalized;
	bool at_start_only;
};

/* Broken-down local time; fields may be out of range until normalised. */
struct cal_tm {
	int64_t year;
	int mon; /* 0..11 */
	int mday, hour, min, sec;
};

/* --- building chains ------------------------------------------------------ */

static void chain_add(struct cal_chain *c, int start, int stop, int repeat, int col) {
	c->v = xreallocarray(c->v, c->n + 1, sizeof *c->v);
	c->v[c->n++] = (struct cal_comp){start, stop, repeat, col};
}

static void chain_clear(struct cal_chain *c) {
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

static void spec_clear(struct cal_spec *s) {
	chain_clear(&s->year);
	chain_clear(&s->month);
	chain_clear(&s->day);
	chain_clear(&s->hour);
	chain_clear(&s->minute);
	chain_clear(&s->usec);
}

static int comp_cmp(const void *pa, const void *pb) {
	const struct cal_comp *a = pa, *b = pb;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->stop != b->stop)
		return a->stop < b->stop ? -1 : 1;
	return a->repeat < b->repeat ? -1 : a->repeat > b->repeat;
}

/* Sorted, without duplicates, each range's stop on its last repetition. */
static void chain_normalize(struct cal_chain *c) {
	for (size_t i = 0; i < c->n; i++) {
		struct cal_comp *p = &c->v[i];
		if (p->stop > p->start && p->repeat > 0)
			p->stop -= (p->stop - p->start) % p->repeat;
	}
	if (c->n < 2)
		return;
	qsort(c->v, c->n, sizeof *c->v, comp_cmp);
	size_t k = 1;
	for (size_t i = 1; i < c->n; i++)
		if (comp_cmp(&c->v[i], &c->v[k - 1]) != 0)
			c->v[k++] = c->v[i];
	c->n = k;
}

/* --- errors --------------------------------------------------------------------- */

struct cal_parse {
	const char *expr;  /* what columns count in (a prefix of @quote, or it) */
	const char *quote; /* the expression as written, for messages */
	const char *p;
	char **cause;
};

static int cal_error(struct cal_parse *ps, const char *at, const char *fmt, const char *what) {
	int col = (int)(at - ps->expr) + 1;
	char *msg = xasprintf(fmt, what);
	*ps->cause = xasprintf("\"%s\": %s at column %d", ps->quote, msg, col);
	free(msg);
	return -1;
}

static int cal_error_token(struct cal_parse *ps, const char *at, const char *fmt) {
	size_t n = strcspn(at, " ,.-~:/");
	char *tok = xstrndup(at, n ? n : 1);
	int r = cal_error(ps, at, fmt, *at ? tok : "end");
	free(tok);
	return r;
}

/* --- parsing systemd.time(7) ------------------------------------------------- */

static const struct {
	const char *name;
	int nr;
} cal_weekdays[] = {
    {"monday", 0}, {"mon", 0}, {"tuesday", 1}, {"tue", 1}, {"wednesday", 2},
    {"wed", 2},    {"thursday", 3}, {"thu", 3}, {"friday", 4}, {"fri", 4},
    {"saturday", 5}, {"sat", 5}, {"sunday", 6}, {"sun", 6},
};

static int weekday_at(const char *p, size_t *len) {
	for (size_t i = 0; i < sizeof cal_weekdays / sizeof cal_weekdays[0]; i++) {
		size_t n = strlen(cal_weekdays[i].name);
		if (strncasecmp(p, cal_weekdays[i].name, n) == 0 && !isalpha((unsigned char)p[n])) {
			*len = n;
			return cal_weekdays[i].nr;
		}
	}
	return -1;
}

/* "Mon,Wed..Fri " - optional; ranges with ".." (or "-", as systemd allows). */
static int parse_weekdays(struct cal_parse *ps, struct cal_spec *s) {
	int from = -1;
	size_t len;
	if (!isalpha((unsigned char)*ps->p))
		return 0;
	for (;;) {
		int d = weekday_at(ps->p, &len);
		if (d < 0)
			return cal_error_token(ps, ps->p, "unknown weekday \"%s\"");
		if (from >= 0 && from > d)
			return cal_error_token(ps, ps->p, "the weekday range ends before it starts, at \"%s\"");
		for (int k = from >= 0 ? from : d; k <= d; k++)
			s->weekdays |= 1u << k;
		ps->p += len;
		from = -1;
		if (*ps->p == '.' && ps->p[1] == '.') {
			from = d;
			ps->p += 2;
		} else if (*ps->p == '-') {
			from = d;
			ps->p++;
		} else if (*ps->p == ',') {
			ps->p++;
		}
		if (*ps->p == '\0' || *ps->p == ' ') {
			if (from >= 0)
				return cal_error(ps, ps->p, "%s", "a weekday range needs its last day");
			ps->p += strspn(ps->p, " ");
			return 0;
		}
		if (from < 0 && ps->p[-1] != ',')
			return cal_error_token(ps, ps->p, "unexpected \"%s\" after a weekday");
	}
}

/* A number; for seconds, with up to six decimals (the seventh rounds). */
static int parse_value(struct cal_parse *ps, bool usec, int *out) {
	const char *p = ps->p;
	long long v = 0;
	if (!isdigit((unsigned char)*p))
		return cal_error_token(ps, p, "expected a number, not \"%s\"");
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		if (v > (usec ? INT_MAX / USEC : INT_MAX))
			return cal_error(ps, ps->p, "%s", "number too large");
	}
	if (usec) {
		v *= USEC;
		if (p[0] == '.' && p[1] != '.') {
			long long frac = 0, scale = USEC / 10;
			for (p++; isdigit((unsigned char)*p); p++, scale /= 10) {
				if (scale > 0)
					frac += (*p - '0') * scale;
				else if (scale == 0 && *p >= '5')
					frac++, scale = -1; /* round once at the seventh digit */
			}
			v += frac;
		}
	}
	ps->p = p;
	*out = (int)v;
	return 0;
}

/* start[..stop][/repeat][,...] or "*". */
static int parse_chain(struct cal_parse *ps, bool usec, struct cal_chain *c) {
	if (*ps->p == '*') {
		ps->p++;
		if (usec)
			chain_add(c, 0, -1, (int)USEC, (int)(ps->p - ps->expr));
		if (*ps->p == '/')
			return cal_error(ps, ps->p, "%s", "\"*/N\" is cron's form; write \"0/N\"");
		return 0;
	}
	for (;;) {
		int col = (int)(ps->p - ps->expr) + 1, start, stop = -1, repeat = 0;
		if (c->n >= CAL_CHAIN_MAX)
			return cal_error(ps, ps->p, "%s", "too many values in one field");
		if (parse_value(ps, usec, &start) < 0)
			return -1;
		if (ps->p[0] == '.' && ps->p[1] == '.') {
			ps->p += 2;
			if (parse_value(ps, usec, &stop) < 0)
				return -1;
			repeat = usec ? (int)USEC : 1;
		}
		if (*ps->p == '/') {
			ps->p++;
			if (parse_value(ps, usec, &repeat) < 0)
				return -1;
			if (repeat == 0)
				return cal_error(ps, ps->p - 1, "%s", "a repetition of 0");
		}
		if (!strchr(" ,-~:", *ps->p))
			return cal_error_token(ps, ps->p, "unexpected \"%s\"");
		chain_add(c, start, stop, repeat, col);
		if (*ps->p != ',')
			return 0;
		ps->p++;
	}
}

static void chain_move(struct cal_chain *to, struct cal_chain *from) {
	chain_clear(to);
	*to = *from;
	*from = (struct cal_chain){0, NULL};
}

/* [[year-]month-]day, or @SECONDS; returns 1 for @SECONDS (no time follows). */
static int parse_date(struct cal_parse *ps, struct cal_spec *s) {
	struct cal_chain a = {0}, b = {0}, c = {0};
	const char *start = ps->p;
	int r = -1;
	if (*ps->p == '\0')
		return 0;
	if (*ps->p == '@') {
		ps->p++;
		long long v = 0;
		if (!isdigit((unsigned char)*ps->p))
			return cal_error_token(ps, ps->p, "expected seconds since the epoch, not \"%s\"");
		while (isdigit((unsigned char)*ps->p) && v < 100000000000LL)
			v = v * 10 + (*ps->p++ - '0');
		int64_t y;
		int m, d;
		tz_civil_from_days(v / 86400, &y, &m, &d);
		chain_add(&s->year, (int)y, -1, 0, 1);
		chain_add(&s->month, m, -1, 0, 1);
		chain_add(&s->day, d, -1, 0, 1);
		chain_add(&s->hour, (int)(v % 86400 / 3600), -1, 0, 1);
		chain_add(&s->minute, (int)(v % 3600 / 60), -1, 0, 1);
		chain_add(&s->usec, (int)(v % 60 * USEC), -1, 0, 1);
		return 1;
	}
	if (parse_chain(ps, false, &a) < 0)
		goto out;
	if (*ps->p == '\0' || *ps->p == ':') { /* a time, not a date */
		ps->p = start;
		r = 0;
		goto out;
	}
	if (*ps->p != '-' && *ps->p != '~') {
		cal_error_token(ps, ps->p, "unexpected \"%s\" in the date");
		goto out;
	}
	s->end_of_month = *ps->p++ == '~';
	if (parse_chain(ps, false, &b) < 0)
		goto out;
	if (*ps->p == '\0' || *ps->p == ' ') { /* month-day */
		ps->p += strspn(ps->p, " ");
		chain_move(&s->month, &a);
		chain_move(&s->day, &b);
		r = 0;
		goto out;
	}
	if (s->end_of_month || (*ps->p != '-' && *ps->p != '~')) {
		cal_error_token(ps, ps->p, "unexpected \"%s\" in the date");
		goto out;
	}
	s->end_of_month = *ps->p++ == '~';
	if (parse_chain(ps, false, &c) < 0)
		goto out;
	if (*ps->p != '\0' && *ps->p != ' ') {
		cal_error_token(ps, ps->p, "unexpected \"%s\" after the date");
		goto out;
	}
	ps->p += strspn(ps->p, " ");
	chain_move(&s->year, &a);
	chain_move(&s->month, &b);
	chain_move(&s->day, &c);
	r = 0;
out:
	chain_clear(&a);
	chain_clear(&b);
	chain_clear(&c);
	return r;
}

/* hour:minute[:second]; none at all is 00:00:00. */
static int parse_time(struct cal_parse *ps, struct cal_spec *s) {
	if (*ps->p == '\0') {
		chain_add(&s->hour, 0, -1, 0, 0);
		chain_add(&s->minute, 0, -1, 0, 0);
		chain_add(&s->usec, 0, -1, 0, 0);
		return 0;
	}
	if (parse_chain(ps, false, &s->hour) < 0)
		return -1;
	if (*ps->p != ':')
		return cal_error_token(ps, ps->p, "expected \":\" between hour and minute, not \"%s\"");
	ps->p++;
	if (parse_chain(ps, false, &s->minute) < 0)
		return -1;
	if (*ps->p == '\0') {
		chain_add(&s->usec, 0, -1, 0, 0);
		return 0;
	}
	if (*ps->p != ':')
		return cal_error_token(ps, ps->p, "unexpected \"%s\" after the minute");
	ps->p++;
	if (parse_chain(ps, true, &s->usec) < 0)
		return -1;
	if (*ps->p != '\0')
		return cal_error_token(ps, ps->p, "unexpected \"%s\" after the time");
	return 0;
}

/* The shorthands; fills @s and returns true when @word is one. */
static bool parse_shorthand(const char *word, struct cal_spec *s) {
	static const struct {
		const char *name;
		int months[4], day, hour, minute; /* -1: "*" */
		bool monday;
	} table[] = {
	    {"minutely", {0}, -1, -1, -1, false},      {"hourly", {0}, -1, -1, 0, false},
	    {"daily", {0}, -1, 0, 0, false},           {"weekly", {0}, -1, 0, 0, true},
	    {"monthly", {0}, 1, 0, 0, false},          {"yearly", {1}, 1, 0, 0, false},
	    {"annually", {1}, 1, 0, 0, false},         {"anually", {1}, 1, 0, 0, false},
	    {"quarterly", {1, 4, 7, 10}, 1, 0, 0, false}, {"semiannually", {1, 7}, 1, 0, 0, false},
	    {"semi-annually", {1, 7}, 1, 0, 0, false}, {"biannually", {1, 7}, 1, 0, 0, false},
	    {"bi-annually", {1, 7}, 1, 0, 0, false},
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (strcasecmp(word, table[i].name) != 0)
			continue;
		for (int k = 0; k < 4 && table[i].months[k]; k++)
			chain_add(&s->month, table[i].months[k], -1, 0, 0);
		if (table[i].day > 0)
			chain_add(&s->day, table[i].day, -1, 0, 0);
		if (table[i].hour >= 0)
			chain_add(&s->hour, table[i].hour, -1, 0, 0);
		if (table[i].minute >= 0)
			chain_add(&s->minute, table[i].minute, -1, 0, 0);
		chain_add(&s->usec, 0, -1, 0, 0);
		if (table[i].monday)
			s->weekdays = 1;
		return true;
	}
	return false;
}

/* --- validation ----------------------------------------------------------------- */

static int chain_check(struct cal_parse *ps, const struct cal_chain *c, const char *field,
                       int from, int to, bool end_of_month, bool usec) {
	if (end_of_month)
		to -= 3; /* no more than 28 days back from the end */
	for (size_t i = 0; i < c->n; i++) {
		const struct cal_comp *p = &c->v[i];
		int d = usec ? (int)USEC : 1;
		bool ok = p->start >= from && p->start <= to && p->repeat <= to - from;
		if (ok && p->stop >= 0)
			ok = p->stop >= from && p->stop <= to && p->start + p->repeat <= p->stop;
		else if (ok && p->repeat > 0)
			ok = end_of_month ? p->start - p->repeat >= from : p->start + p->repeat <= to;
		if (!ok) {
			char *what = xasprintf("the %s (%d..%d)", field, from / d, to / d);
			*ps->cause = xasprintf("\"%s\": a value out of range for %s at column %d",
			                       ps->quote, what, p->col > 0 ? p->col : 1);
			free(what);
			return -1;
		}
	}
	return 0;
}

static void fix_years(struct cal_chain *c) {
	for (size_t i = 0; i < c->n; i++) {
		int *v[2] = {&c->v[i].start, &c->v[i].stop};
		for (int k = 0; k < 2; k++)
			if (*v[k] >= 0 && *v[k] < 100)
				*v[k] += *v[k] < 70 ? 2000 : 1900;
	}
}

static int spec_finish(struct cal_parse *ps, struct cal_spec *s) {
	if (s->weekdays == 0x7f)
		s->weekdays = 0;
	if (s->end_of_month && s->day.n == 0)
		s->end_of_month = false;
	fix_years(&s->year);
	struct cal_chain *chains[] = {&s->year, &s->month, &s->day, &s->hour, &s->minute, &s->usec};
	for (size_t i = 0; i < 6; i++)
		chain_normalize(chains[i]);
	if (chain_check(ps, &s->year, "year", CAL_YEAR_MIN, CAL_YEAR_MAX, false, false) < 0 ||
	    chain_check(ps, &s->month, "month", 1, 12, false, false) < 0 ||
	    chain_check(ps, &s->day, "day", 1, 31, s->end_of_month, false) < 0 ||
	    chain_check(ps, &s->hour, "hour", 0, 23, false, false) < 0 ||
	    chain_check(ps, &s->minute, "minute", 0, 59, false, false) < 0 ||
	    chain_check(ps, &s->usec, "second", 0, (int)(60 * USEC - 1), false, true) < 0)
		return -1;
	return 0;
}

/* --- formatting (systemd-analyze's normalised form) ------------------------- */

static void fmt_weekdays(FILE *f, unsigned bits) {
	static const char *const names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	bool comma = false;
	for (int x = 0; x < 7;) {
		if (!(bits & (1u << x))) {
			x++;
			continue;
		}
		int end = x;
		while (end + 1 < 7 && (bits & (1u << (end + 1))))
			end++;
		fprintf(f, "%s%s", comma ? "," : "", names[x]);
		if (end > x)
			fprintf(f, "%s%s", end > x + 1 ? ".." : ",", names[end]);
		comma = true;
		x = end + 1;
	}
}

static void fmt_chain(FILE *f, int width, const struct cal_chain *c, bool usec) {
	int d = usec ? (int)USEC : 1;
	if (c->n == 0 || (usec && c->n == 1 && c->v[0].start == 0 && c->v[0].stop < 0 &&
	                  c->v[0].repeat == USEC)) {
		fputc('*', f);
		return;
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct cal_comp *p = &c->v[i];
		if (i)
			fputc(',', f);
		fprintf(f, "%0*d", width, p->start / d);
		if (p->start % d)
			fprintf(f, ".%06d", p->start % d);
		if (p->stop > 0)
			fprintf(f, "..%0*d", width, p->stop / d);
		if (p->stop > 0 && p->stop % d)
			fprintf(f, ".%06d", p->stop % d);
		if (p->repeat > 0 && !(p->stop > 0 && p->repeat == d))
			fprintf(f, "/%d", p->repeat / d);
		if (p->repeat % d)
			fprintf(f, ".%06d", p->repeat % d);
	}
}

static void fmt_spec(FILE *f, const struct cal_spec *s) {
	if (s->weekdays) {
		fmt_weekdays(f, s->weekdays);
		fputc(' ', f);
	}
	fmt_chain(f, 4, &s->year, false);
	fputc('-', f);
	fmt_chain(f, 2, &s->month, false);
	fputc(s->end_of_month ? '~' : '-', f);
	fmt_chain(f, 2, &s->day, false);
	fputc(' ', f);
	fmt_chain(f, 2, &s->hour, false);
	fputc(':', f);
	fmt_chain(f, 2, &s->minute, false);
	fputc(':', f);
	fmt_chain(f, 2, &s->usec, true);
}

static void cal_format(struct calendar *c, bool show_zone) {
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) { /* only when memory is gone; the form is for people */
		c->normalized = xstrdup("?");
		return;
	}
	for (int i = 0; i < c->nalt; i++) {
		if (i)
			fputs(" or ", f);
		fmt_spec(f, &c->alt[i]);
	}
	if (show_zone)
		fprintf(f, " %s", tz_zone_name(c->zone));
	fclose(f);
	c->normalized = buf;
}

/* --- the search ------------------------------------------------------------------ */

/* Normalise @tm in @z as mktime() does; returns the instant (seconds). */
static int64_t cal_normalize(const struct tz_zone *z, struct cal_tm *tm) {
	int64_t y = tm->year + (tm->mon >= 0 ? tm->mon / 12 : -((11 - tm->mon) / 12));
	int mon = ((tm->mon % 12) + 12) % 12;
	int64_t days = tz_days_from_civil(y, mon + 1, 1) + tm->mday - 1;
	int64_t wall = days * 86400 + (int64_t)tm->hour * 3600 + (int64_t)tm->min * 60 + tm->sec;
	int64_t t = tz_wall_to_utc(z, wall);
	int64_t local = t + tz_offset_at(z, t, NULL, NULL);
	int64_t ld = local >= 0 ? local / 86400 : -((86399 - local) / 86400);
	int64_t secs = local - ld * 86400;
	int m, d;
	tz_civil_from_days(ld, &tm->year, &m, &d);
	tm->mon = m - 1;
	tm->mday = d;
	tm->hour = (int)(secs / 3600);
	tm->min = (int)(secs % 3600 / 60);
	tm->sec = (int)(secs % 60);
	return t;
}

/* 1 when @tm needed no normalising; else 0 and @tm normalised; -1 past the last year. */
static int cal_within_bounds(const struct tz_zone *z, struct cal_tm *tm) {
	if (tm->year > CAL_YEAR_MAX)
		return -1;
	struct cal_tm t = *tm;
	cal_normalize(z, &t);
	bool good = t.year == tm->year && t.mon == tm->mon && t.mday == tm->mday &&
	            t.hour == tm->hour && t.min == tm->min && t.sec == tm->sec;
	if (!good)
		*tm = t;
	return good;
}

/* The day of the month @back days from the end of @tm's month (1 = the last), or -1. */
static int cal_end_of_month(const struct tz_zone *z, const struct cal_tm *tm, int back) {
	struct cal_tm t = *tm;
	t.mon++;
	t.mday = 1 - back;
	cal_normalize(z, &t);
	return t.mon == tm->mon ? t.mday : -1;
}

/*
 * The smallest value of @c at or after *@val; 1 when it moved, 0 when
 * *@val matched, -1 when nothing is left in this field.
 */
static int cal_match(const struct tz_zone *z, const struct cal_spec *s, const struct cal_chain *c,
                     const struct cal_tm *tm, int *val) {
	bool found = false;
	int best = 0;
	if (c->n == 0)
		return 0;
	for (size_t i = 0; i < c->n; i++) {
		int start = c->v[i].start, stop = c->v[i].stop;
		if (s->end_of_month && c == &s->day) {
			start = cal_end_of_month(z, tm, start);
			stop = cal_end_of_month(z, tm, stop);
			if (stop > 0) {
				int t = start;
				start = stop;
				stop = t;
			}
		}
		if (start >= *val) {
			if (!found || start < best)
				best = start, found = true;
		} else if (c->v[i].repeat > 0) {
			int r = c->v[i].repeat;
			long long k = start + (long long)r * ((*val - start + r - 1) / r);
			if ((!found || k < best) && (stop < 0 || k <= stop) && k <= INT_MAX)
				best = (int)k, found = true;
		}
	}
	if (!found)
		return -1;
	int moved = *val != best;
	*val = best;
	return moved;
}

static bool cal_weekday_ok(const struct tz_zone *z, unsigned bits, const struct cal_tm *tm) {
	if (bits == 0)
		return true;
	struct cal_tm t = *tm;
	cal_normalize(z, &t);
	int64_t days = tz_days_from_civil(t.year, t.mon + 1, t.mday);
	int wday = (int)(((days % 7) + 7 + 4) % 7); /* 0 = Sunday */
	return bits & (1u << (wday == 0 ? 6 : wday - 1));
}

static void zero_below(struct cal_tm *c, int *usec, int level) {
	/* level: 5 month, 4 day, 3 hour, 2 minute, 1 second */
	if (level >= 5)
		c->mon = 0;
	if (level >= 4)
		c->mday = 1;
	if (level >= 3)
		c->hour = 0;
	if (level >= 2)
		c->min = 0;
	c->sec = 0;
	*usec = 0;
}

/* The first time at or after @tm/@usec that @s matches; -1 if none. */
static int cal_find(const struct tz_zone *z, const struct cal_spec *s, struct cal_tm *tm,
                    int *usec_io) {
	struct cal_tm c = *tm;
	int usec = *usec_io, r, v;
	for (int guard = 0; guard < 100000; guard++) {
		cal_normalize(z, &c);
		v = (int)c.year;
		if ((r = cal_match(z, s, &s->year, &c, &v)) < 0)
			return -1;
		c.year = v;
		if (r > 0)
			zero_below(&c, &usec, 5);
		if (cal_within_bounds(z, &c) <= 0)
			return -1;

		v = c.mon + 1;
		r = cal_match(z, s, &s->month, &c, &v);
		c.mon = v - 1;
		if (r > 0)
			zero_below(&c, &usec, 4);
		if (r < 0 || (r = cal_within_bounds(z, &c)) < 0) {
			c.year++;
			zero_below(&c, &usec, 5);
			continue;
		}
		if (r == 0)
			continue;

		v = c.mday;
		r = cal_match(z, s, &s->day, &c, &v);
		c.mday = v;
		if (r > 0)
			zero_below(&c, &usec, 3);
		if (r < 0 || (r = cal_within_bounds(z, &c)) < 0) {
			c.mon++;
			zero_below(&c, &usec, 4);
			continue;
		}
		if (r == 0)
			continue;

		if (!cal_weekday_ok(z, s->weekdays, &c)) {
			c.mday++;
			zero_below(&c, &usec, 3);
			continue;
		}

		v = c.hour;
		r = cal_match(z, s, &s->hour, &c, &v);
		c.hour = v;
		if (r > 0)
			zero_below(&c, &usec, 2);
		if (r < 0 || (r = cal_within_bounds(z, &c)) < 0) {
			c.mday++;
			zero_below(&c, &usec, 3);
			continue;
		}
		if (r == 0)
			continue; /* the hour may not exist that day: again from the normalised time */

		v = c.min;
		r = cal_match(z, s, &s->minute, &c, &v);
		c.min = v;
		if (r > 0)
			zero_below(&c, &usec, 1);
		if (r < 0 || (r = cal_within_bounds(z, &c)) < 0) {
			c.hour++;
			zero_below(&c, &usec, 2);
			continue;
		}
		if (r == 0)
			continue;

		v = c.sec * (int)USEC + usec;
		r = cal_match(z, s, &s->usec, &c, &v);
		usec = v % (int)USEC;
		c.sec = v / (int)USEC;
		if (r < 0 || (r = cal_within_bounds(z, &c)) < 0) {
			c.min++;
			zero_below(&c, &usec, 1);
			continue;
		}
		if (r == 0)
			continue;
		*tm = c;
		*usec_io = usec;
		return 0;
	}
	return -1;
}

static int spec_next(const struct calendar *cal, const struct cal_spec *s, int64_t after_us,
                     int64_t *next) {
	int64_t from = after_us + 1;
	for (int tries = 0; tries < 3; tries++) {
		int64_t secs = from >= 0 ? from / USEC : -((USEC - 1 - from) / USEC);
		int usec = (int)(from - secs * USEC);
		struct cal_tm tm;
		/* The local time of @from, as fields. */
		int64_t local = secs + tz_offset_at(cal->zone, secs, NULL, NULL);
		int64_t ld = local >= 0 ? local / 86400 : -((86399 - local) / 86400);
		int m, d;
		tz_civil_from_days(ld, &tm.year, &m, &d);
		tm.mon = m - 1;
		tm.mday = d;
		tm.hour = (int)((local - ld * 86400) / 3600);
		tm.min = (int)((local - ld * 86400) % 3600 / 60);
		tm.sec = (int)((local - ld * 86400) % 60);
		if (cal_find(cal->zone, s, &tm, &usec) < 0)
			return -1;
		int64_t t = cal_normalize(cal->zone, &tm) * USEC + usec;
		if (t > after_us) {
			*next = t;
			return 0;
		}
		/* A wall time repeated by a fall-back resolved to its first occurrence,
		 * which lies behind us: go on from where the clock leaves the repeat. */
		from += 3600 * USEC;
	}
	return -1;
}

int calendar_next(const struct calendar *c, int64_t after_us, int64_t *next_us) {
	int64_t best = INT64_MAX, t;
	if (c->at_start_only)
		return -1;
	for (int i = 0; i < c->nalt; i++)
		if (spec_next(c, &c->alt[i], after_us, &t) == 0 && t < best)
			best = t;
	if (best == INT64_MAX)
		return -1;
	*next_us = best;
	return 0;
}

/* --- entry points ------------------------------------------------------------------ */

static struct calendar *cal_new(void) {
	struct calendar *c = xcalloc(1, sizeof *c);
	c->nalt = 1;
	return c;
}

void calendar_free(struct calendar *c) {
	if (c == NULL)
		return;
	for (int i = 0; i < 2; i++)
		spec_clear(&c->alt[i]);
	tz_zone_free(c->zone);
	free(c->normalized);
	free(c);
}

const char *calendar_normalized(const struct calendar *c) {
	return c->normalized;
}

bool calendar_at_start_only(const struct calendar *c) {
	return c->at_start_only;
}

/*
 * A trailing zone, " UTC" or " Area/City": loaded into *@zone, returning
 * where it starts; NULL when there is none. A last word that is meant as
 * a zone (it has a "/") but is unknown is an error (*@bad).
 */
static const char *split_zone(const char *expr, struct tz_zone **zone, char **cause, bool *bad) {
	const char *sp = strrchr(expr, ' ');
	size_t wl;
	char *why = NULL;
	*bad = false;
	if (sp == NULL)
		return NULL;
	const char *name = sp + 1;
	if (strcasecmp(name, "UTC") == 0)
		name = "UTC";
	else if (!isalpha((unsigned char)*name) || strpbrk(name, ":,") ||
	         (weekday_at(name, &wl) >= 0 && name[wl] == '\0'))
		return NULL;
	if (tz_zone_load(name, zone, &why) == 0)
		return sp;
	if (strchr(name, '/')) {
		*cause = xasprintf("\"%s\": %s at column %d", expr, why, (int)(name - expr) + 1);
		*bad = true;
	}
	free(why);
	return NULL;
}

static int cal_set_zone(struct calendar *c, const char *name, char **cause) {
	return tz_zone_load(name, &c->zone, cause);
}

static int spec_parse(struct cal_parse *ps, struct cal_spec *s) {
	const char *body = ps->p;
	if (*body == '\0') {
		*ps->cause = xstrdup("an empty calendar expression (try \"daily\" or "
		                     "\"Mon *-*-* 03:00\")");
		return -1;
	}
	if (!parse_shorthand(body, s)) {
		if (parse_weekdays(ps, s) < 0)
			return -1;
		int d = parse_date(ps, s);
		if (d < 0 || (d == 0 && parse_time(ps, s) < 0))
			return -1;
		if (d == 1 && *ps->p != '\0')
			return cal_error_token(ps, ps->p, "unexpected \"%s\"");
	}
	return spec_finish(ps, s);
}

int calendar_parse(const char *expr, const char *zone, struct calendar **out, char **cause) {
	struct calendar *c = cal_new();
	bool bad;
	const char *zs = split_zone(expr, &c->zone, cause, &bad);
	char *body = zs ? xstrndup(expr, (size_t)(zs - expr)) : xstrdup(expr);
	/* Columns count in @body, a prefix of @expr, so they agree with @expr's. */
	struct cal_parse ps = {body, expr, body, cause};
	int r = bad ? -1 : spec_parse(&ps, &c->alt[0]);
	/* "@SECONDS" is an instant: UTC, as systemd reads it. */
	bool instant = body[strspn(body, " ")] == '@';
	if (r == 0 && c->zone == NULL)
		r = cal_set_zone(c, instant ? "UTC" : zone, cause);
	if (r == 0)
		cal_format(c, zs != NULL || zone != NULL || instant);
	free(body);
	if (r < 0) {
		calendar_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

/* --- cron ------------------------------------------------------------------------ */

static const char *const cron_months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const cron_days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct cron_field {
	const char *name;
	int lo, hi;
	const char *const *names; /* value lo + index */
	int nnames;
};

static const struct cron_field cron_fields[5] = {
    {"minute", 0, 59, NULL, 0},
    {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},
    {"month", 1, 12, cron_months, 12},
    {"day of week", 0, 7, cron_days, 7},
};

static int cron_value(struct cal_parse *ps, const struct cron_field *f, int *out) {
	const char *p = ps->p;
	if (isalpha((unsigned char)*p)) {
		for (int i = 0; i < f->nnames; i++) {
			if (strncasecmp(p, f->names[i], 3) == 0 && !isalpha((unsigned char)p[3])) {
				ps->p = p + 3;
				*out = (f->names == cron_months ? 1 : 0) + i;
				return 0;
			}
		}
		char *msg = xasprintf("unknown name \"%%s\" in the %s field", f->name);
		int r = cal_error_token(ps, p, msg);
		free(msg);
		return r;
	}
	int v = 0, n = 0;
	while (isdigit((unsigned char)*p) && n < 4)
		v = v * 10 + (*p++ - '0'), n++;
	if (n == 0) {
		char *msg = xasprintf("expected a number in the %s field, not \"%%s\"", f->name);
		int r = cal_error_token(ps, ps->p, msg);
		free(msg);
		return r;
	}
	if (v < f->lo || v > f->hi) {
		char *msg = xasprintf("%%s is out of range for the %s (%d-%d)", f->name, f->lo, f->hi);
		int r = cal_error_token(ps, ps->p, msg);
		free(msg);
		return r;
	}
	ps->p = p;
	*out = v;
	return 0;
}

/* One field: "*", "*\/S", "N", "N-M", "N-M/S", lists. Sets *@star for "*...". */
static int cron_field_parse(struct cal_parse *ps, const struct cron_field *f, bool *bits,
                            bool *star) {
	*star = *ps->p == '*';
	for (;;) {
		const char *at = ps->p;
		int lo, hi, step = 1;
		if (*ps->p == '*') {
			ps->p++;
			lo = f->lo;
			hi = f->hi;
		} else {
			if (cron_value(ps, f, &lo) < 0)
				return -1;
			hi = lo;
			if (*ps->p == '-') {
				ps->p++;
				if (cron_value(ps, f, &hi) < 0)
					return -1;
				if (hi < lo)
					return cal_error(ps, at, "%s", "a range that ends before it starts");
			}
		}
		if (*ps->p == '/') {
			ps->p++;
			step = 0;
			while (isdigit((unsigned char)*ps->p) && step < 1000)
				step = step * 10 + (*ps->p++ - '0');
			if (step == 0)
				return cal_error(ps, ps->p, "%s", "a step must be a number from 1");
			if (hi == lo && at[0] != '*')
				hi = f->hi; /* "5/10" is "5-max/10", as cron reads it */
		}
		for (int v = lo; v <= hi; v += step)
			bits[v] = true;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p != '\0' && *ps->p != ' ' && *ps->p != '\t') {
			char *msg = xasprintf("unexpected \"%%s\" in the %s field", f->name);
			int r = cal_error_token(ps, ps->p, msg);
			free(msg);
			return r;
		}
		return 0;
	}
}

/* Runs of set bits become ranges, as systemd writes them. */
static void chain_from_bits(struct cal_chain *c, const bool *bits, int lo, int hi) {
	int n = 0;
	for (int v = lo; v <= hi; v++)
		n += bits[v];
	if (n == hi - lo + 1)
		return; /* every value: "*" */
	for (int v = lo; v <= hi;) {
		if (!bits[v]) {
			v++;
			continue;
		}
		int end = v;
		while (end + 1 <= hi && bits[end + 1])
			end++;
		if (end > v + 1)
			chain_add(c, v, end, 1, 0);
		else
			for (int k = v; k <= end; k++)
				chain_add(c, k, -1, 0, 0);
		v = end + 1;
	}
}

static const struct {
	const char *name, *line;
} cron_shorthands[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int cron_build(struct cal_parse *ps, struct calendar *c) {
	bool bits[5][60] = {{false}}, star[5];
	for (int i = 0; i < 5; i++) {
		ps->p += strspn(ps->p, " \t");
		if (*ps->p == '\0')
			return cal_error(ps, ps->p, "%s",
			                 "a cron line has 5 fields: minute hour day-of-month month "
			                 "day-of-week");
		if (cron_field_parse(ps, &cron_fields[i], bits[i], &star[i]) < 0)
			return -1;
	}
	ps->p += strspn(ps->p, " \t");
	if (*ps->p != '\0')
		return cal_error_token(ps, ps->p, "unexpected \"%s\" after the 5 fields");
	bits[4][0] = bits[4][0] || bits[4][7]; /* 7 is Sunday too */
	unsigned wd = 0;
	for (int d = 0; d < 7; d++)
		if (bits[4][d])
			wd |= 1u << (d == 0 ? 6 : d - 1);
	bool both = !star[2] && !star[4];
	c->nalt = both ? 2 : 1;
	for (int a = 0; a < c->nalt; a++) {
		struct cal_spec *s = &c->alt[a];
		chain_from_bits(&s->minute, bits[0], 0, 59);
		chain_from_bits(&s->hour, bits[1], 0, 23);
		chain_from_bits(&s->month, bits[3], 1, 12);
		chain_add(&s->usec, 0, -1, 0, 0);
		if (!both || a == 0)
			chain_from_bits(&s->day, bits[2], 1, 31);
		if (!both || a == 1)
			s->weekdays = wd == 0x7f ? 0 : wd;
		if (spec_finish(ps, s) < 0)
			return -1;
	}
	return 0;
}

int calendar_parse_cron(const char *line, const char *zone, struct calendar **out,
                        char **cause) {
	struct calendar *c = cal_new();
	const char *body = line + strspn(line, " \t");
	struct cal_parse ps = {line, line, body, cause};
	int r = -1;
	if (strcasecmp(body, "@reboot") == 0) {
		c->at_start_only = true;
		c->normalized = xstrdup("@reboot (once, when mcpjobd starts)");
		r = 0;
	} else if (*body == '@') {
		size_t i, n = sizeof cron_shorthands / sizeof cron_shorthands[0];
		for (i = 0; i < n && strcasecmp(body, cron_shorthands[i].name) != 0; i++)
			;
		if (i == n) {
			cal_error_token(&ps, body, "unknown shorthand \"%s\" (@yearly, @monthly, @weekly, "
			                           "@daily, @hourly or @reboot)");
		} else {
			struct cal_parse sub = {cron_shorthands[i].line, line, cron_shorthands[i].line, cause};
			r = cron_build(&sub, c);
		}
	} else {
		r = cron_build(&ps, c);
	}
	if (r == 0)
		r = cal_set_zone(c, zone, cause);
	if (r == 0 && !c->at_start_only)
		cal_format(c, zone != NULL);
	if (r < 0) {
		calendar_free(c);
		return -1;
	}
	*out = c;
	return 0;
}
