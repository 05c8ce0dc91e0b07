/*
 * tz.c - TZif files (RFC 8536) and POSIX TZ rules, read without libc's
 * process-wide TZ. See tz.h for what is answered and why.
 */
#include "common/tz.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"

#define TZ_FILE_MAX (1 << 20)
#define TZ_ABBR_MAX 16
/* Offsets on Earth stay within a day; look this far around a wall time. */
#define TZ_WINDOW (27 * 3600)

struct tz_type {
	int32_t off;
	bool dst;
	uint8_t abbr; /* index into abbrs */
};

/* A day in a POSIX TZ rule: Jn (1..365, no leap day), n (0..365), Mm.w.d. */
struct tz_day {
	char kind; /* 'J', 'N' or 'M' */
	int n, m, w, d;
};

struct tz_rule {
	int32_t std_off, dst_off; /* east of Greenwich */
	char std_abbr[TZ_ABBR_MAX], dst_abbr[TZ_ABBR_MAX];
	bool has_dst;
	struct tz_day start, end;
	int32_t start_time, end_time; /* local seconds after midnight */
};

struct tz_zone {
	char *name;
	bool utc;
	size_t ntrans, ntypes, nabbr;
	int64_t *trans;
	uint8_t *trans_type;
	struct tz_type *types;
	char *abbrs;
	bool have_rule;
	struct tz_rule rule;
};

/* --- civil dates (H. Hinnant's algorithms) ------------------------------ */

int64_t tz_days_from_civil(int64_t y, int m, int d) {
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b) {
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool is_leap(int64_t y) {
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* --- POSIX TZ rules ------------------------------------------------------ */

static const char *rule_abbr(const char *p, char *out) {
	size_t n = 0;
	if (*p == '<') {
		for (p++; *p && *p != '>'; p++)
			if (n + 1 < TZ_ABBR_MAX)
				out[n++] = *p;
		if (*p != '>')
			return NULL;
		p++;
	} else {
		for (; isalpha((unsigned char)*p); p++)
			if (n + 1 < TZ_ABBR_MAX)
				out[n++] = *p;
	}
	out[n] = '\0';
	return n >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536 allows that in rule times). */
static const char *rule_hms(const char *p, int32_t *out) {
	int sign = 1, part[3] = {0, 0, 0};
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*p))
			return i == 0 ? NULL : p;
		int v = 0;
		while (isdigit((unsigned char)*p) && v < 1000)
			v = v * 10 + (*p++ - '0');
		part[i] = v;
		if (i == 2 || *p != ':')
			break;
		p++;
	}
	if (part[0] > 167 || part[1] > 59 || part[2] > 59)
		return NULL;
	*out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return p;
}

static const char *rule_num(const char *p, int *out, int lo, int hi) {
	int v = 0, n = 0;
	while (isdigit((unsigned char)*p) && n < 4) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	if (n == 0 || v < lo || v > hi)
		return NULL;
	*out = v;
	return p;
}

static const char *rule_day(const char *p, struct tz_day *day, int32_t *time) {
	if (*p == 'J') {
		day->kind = 'J';
		p = rule_num(p + 1, &day->n, 1, 365);
	} else if (*p == 'M') {
		day->kind = 'M';
		if ((p = rule_num(p + 1, &day->m, 1, 12)) == NULL || *p++ != '.' ||
		    (p = rule_num(p, &day->w, 1, 5)) == NULL || *p++ != '.')
			return NULL;
		p = rule_num(p, &day->d, 0, 6);
	} else {
		day->kind = 'N';
		p = rule_num(p, &day->n, 0, 365);
	}
	if (p == NULL)
		return NULL;
	*time = 2 * 3600;
	if (*p == '/')
		p = rule_hms(p + 1, time);
	return p;
}

/* "CET-1CEST,M3.5.0,M10.5.0/3"; POSIX offsets are west of Greenwich. */
static int rule_parse(const char *s, struct tz_rule *r) {
	const char *p;
	int32_t off;
	memset(r, 0, sizeof *r);
	if ((p = rule_abbr(s, r->std_abbr)) == NULL || (p = rule_hms(p, &off)) == NULL)
		return -1;
	r->std_off = -off;
	if (*p == '\0')
		return 0;
	if ((p = rule_abbr(p, r->dst_abbr)) == NULL)
		return -1;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*p && *p != ',') {
		if ((p = rule_hms(p, &off)) == NULL)
			return -1;
		r->dst_off = -off;
	}
	if (*p == '\0') { /* no rule given: the US rules POSIX implies */
		r->start = (struct tz_day){'M', 0, 3, 2, 0};
		r->end = (struct tz_day){'M', 0, 11, 1, 0};
		r->start_time = r->end_time = 2 * 3600;
		return 0;
	}
	if (*p++ != ',' || (p = rule_day(p, &r->start, &r->start_time)) == NULL || *p++ != ',' ||
	    (p = rule_day(p, &r->end, &r->end_time)) == NULL)
		return -1;
	return *p == '\0' ? 0 : -1;
}

/* Days since the epoch of a rule's day in year @y. */
static int64_t rule_day_in_year(const struct tz_day *day, int64_t y) {
	int64_t jan1 = tz_days_from_civil(y, 1, 1);
	if (day->kind == 'J')
		return jan1 + day->n - 1 + (is_leap(y) && day->n >= 60);
	if (day->kind == 'N')
		return jan1 + day->n;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int64_t first = tz_days_from_civil(y, day->m, 1);
	int wd1 = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
	int mday = 1 + (day->d - wd1 + 7) % 7 + (day->w - 1) * 7;
	int len = mdays[day->m - 1] + (day->m == 2 && is_leap(y));
	while (mday > len)
		mday -= 7;
	return first + mday - 1;
}

/* The instants DST starts and ends in year @y. */
static void rule_year(const struct tz_rule *r, int64_t y, int64_t *start, int64_t *end) {
	*start = rule_day_in_year(&r->start, y) * 86400 + r->start_time - r->std_off;
	*end = rule_day_in_year(&r->end, y) * 86400 + r->end_time - r->dst_off;
}

static int64_t year_of(int64_t t) {
	int64_t y;
	int m, d;
	tz_civil_from_days(floor_div(t, 86400), &y, &m, &d);
	return y;
}

static bool rule_is_dst(const struct tz_rule *r, int64_t t) {
	if (!r->has_dst)
		return false;
	int64_t s, e;
	rule_year(r, year_of(t + r->std_off), &s, &e);
	return s < e ? t >= s && t < e : !(t >= e && t < s);
}

/* --- loading ---------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) {
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
	uint32_t isut, isstd, leap, time, type, chr;
};

static bool tzif_header(const unsigned char *p, size_t len, struct tzif_counts *c) {
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return false;
	c->isut = be32(p + 20);
	c->isstd = be32(p + 24);
	c->leap = be32(p + 28);
	c->time = be32(p + 32);
	c->type = be32(p + 36);
	c->chr = be32(p + 40);
	return c->type > 0 && c->type <= 256 && c->time < 100000 && c->chr < 10000 &&
	       c->leap < 100000 && c->isut <= c->type && c->isstd <= c->type;
}

static size_t tzif_block_len(const struct tzif_counts *c, int tsize) {
	return (size_t)c->time * (tsize + 1) + (size_t)c->type * 6 + c->chr +
	       (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* Parse a TZif image into @z. */
static int tzif_parse(struct tz_zone *z, const unsigned char *buf, size_t len) {
	struct tzif_counts c;
	int tsize = 4;
	if (!tzif_header(buf, len, &c))
		return -1;
	const unsigned char *p = buf + 44;
	if (buf[4] >= '2') { /* skip the 32-bit block for the 64-bit one */
		size_t skip = tzif_block_len(&c, 4);
		if (44 + skip > len || !tzif_header(buf + 44 + skip, len - 44 - skip, &c))
			return -1;
		p = buf + 44 + skip + 44;
		tsize = 8;
	}
	size_t block = tzif_block_len(&c, tsize);
	if ((size_t)(p - buf) + block > len)
		return -1;
	z->ntrans = c.time;
	z->ntypes = c.type;
	z->nabbr = c.chr;
	z->trans = xcalloc(c.time ? c.time : 1, sizeof *z->trans);
	z->trans_type = xcalloc(c.time ? c.time : 1, 1);
	z->types = xcalloc(c.type, sizeof *z->types);
	z->abbrs = xcalloc(c.chr + 1, 1);
	for (uint32_t i = 0; i < c.time; i++, p += tsize)
		z->trans[i] = tsize == 8 ? be64(p) : (int32_t)be32(p);
	for (uint32_t i = 0; i < c.time; i++) {
		z->trans_type[i] = *p++;
		if (z->trans_type[i] >= c.type)
			return -1;
	}
	for (uint32_t i = 0; i < c.type; i++, p += 6) {
		z->types[i].off = (int32_t)be32(p);
		z->types[i].dst = p[4] != 0;
		z->types[i].abbr = p[5] < c.chr ? p[5] : 0;
	}
	memcpy(z->abbrs, p, c.chr);
	p += block - ((size_t)c.time * (tsize + 1) + (size_t)c.type * 6);
	/* The footer: "\n" POSIX-TZ "\n", for times after the last transition. */
	if (tsize == 8 && p < buf + len && *p == '\n') {
		const unsigned char *nl = memchr(p + 1, '\n', (size_t)(buf + len - p - 1));
		if (nl && nl > p + 1) {
			char *s = xstrndup((const char *)p + 1, (size_t)(nl - p - 1));
			z->have_rule = rule_parse(s, &z->rule) == 0;
			free(s);
		}
	}
	return 0;
}

static const char *zoneinfo_dir(void) {
	const char *d = getenv("MCPJOB_ZONEINFO");
	return d && *d ? d : "/usr/share/zoneinfo";
}

/* A zone name is a relative path of plain components: no "..", no "//". */
static bool zone_name_ok(const char *name) {
	if (*name == '\0' || *name == '/' || strlen(name) > 255)
		return false;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("/_+-", *p)))
			return false;
	return strstr(name, "//") == NULL && strstr(name, "..") == NULL;
}

static int read_small_file(const char *path, unsigned char **out, size_t *len) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	unsigned char *buf = xmalloc((size_t)st.st_size + 1);
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		errno = EIO;
		return -1;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

static int zone_from_file(struct tz_zone *z, const char *path) {
	unsigned char *buf;
	size_t len;
	if (read_small_file(path, &buf, &len) < 0)
		return -1;
	int r = tzif_parse(z, buf, len);
	free(buf);
	return r;
}

static struct tz_zone *zone_new(const char *name) {
	struct tz_zone *z = xcalloc(1, sizeof *z);
	z->name = xstrdup(name);
	return z;
}

static struct tz_zone *zone_utc(void) {
	struct tz_zone *z = zone_new("UTC");
	z->utc = true;
	return z;
}

static struct tz_zone *zone_local(void) {
	const char *tz = getenv("TZ");
	struct tz_zone *z = zone_new("local");
	if (tz == NULL) {
		if (zone_from_file(z, "/etc/localtime") == 0)
			return z;
		tz_zone_free(z);
		return zone_utc();
	}
	if (*tz == ':')
		tz++;
	if (*tz == '\0' || strcmp(tz, "UTC") == 0) {
		tz_zone_free(z);
		return zone_utc();
	}
	char *path = *tz == '/' ? xstrdup(tz) : xasprintf("%s/%s", zoneinfo_dir(), tz);
	bool ok = (*tz == '/' || zone_name_ok(tz)) && zone_from_file(z, path) == 0;
	free(path);
	if (ok)
		return z;
	tz_zone_free(z);
	z = zone_new("local");
	if (rule_parse(tz, &z->rule) == 0) {
		z->have_rule = true;
		return z;
	}
	tz_zone_free(z); /* libc also falls back to UTC for a TZ it cannot read */
	return zone_utc();
}

int tz_zone_load(const char *name, struct tz_zone **out, char **cause) {
	if (name == NULL) {
		*out = zone_local();
		return 0;
	}
	if (strcmp(name, "UTC") == 0) {
		*out = zone_utc();
		return 0;
	}
	if (!zone_name_ok(name)) {
		*cause = xasprintf("\"%s\" is not a time zone name (like Europe/Berlin or UTC)", name);
		return -1;
	}
	struct tz_zone *z = zone_new(name);
	char *path = xasprintf("%s/%s", zoneinfo_dir(), name);
	int r = zone_from_file(z, path);
	int err = errno;
	free(path);
	if (r < 0) {
		*cause = err == ENOENT || err == ENOTDIR
		             ? xasprintf("unknown time zone \"%s\" (see timedatectl list-timezones)",
		                         name)
		             : xasprintf("cannot read time zone \"%s\" from %s", name, zoneinfo_dir());
		tz_zone_free(z);
		return -1;
	}
	*out = z;
	return 0;
}

void tz_zone_free(struct tz_zone *z) {
	if (z == NULL)
		return;
	free(z->name);
	free(z->trans);
	free(z->trans_type);
	free(z->types);
	free(z->abbrs);
	free(z);
}

const char *tz_zone_name(const struct tz_zone *z) {
	return z->name;
}

bool tz_zone_is_utc(const struct tz_zone *z) {
	return z->utc;
}

/* --- queries ------------------------------------------------------------------ */

/* Index of the last transition at or before @t, or -1. */
static ssize_t trans_index(const struct tz_zone *z, int64_t t) {
	size_t lo = 0, hi = z->ntrans;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ssize_t)lo - 1;
}

static bool use_rule(const struct tz_zone *z, int64_t t) {
	return z->have_rule && (z->ntrans == 0 || t >= z->trans[z->ntrans - 1]);
}

int32_t tz_offset_at(const struct tz_zone *z, int64_t t, bool *isdst, const char **abbr) {
	bool dst = false;
	int32_t off = 0;
	const char *a = "UTC";
	if (z->utc) {
		/* nothing */
	} else if (use_rule(z, t)) {
		dst = rule_is_dst(&z->rule, t);
		off = dst ? z->rule.dst_off : z->rule.std_off;
		a = dst ? z->rule.dst_abbr : z->rule.std_abbr;
	} else if (z->ntypes > 0) {
		ssize_t i = trans_index(z, t);
		const struct tz_type *ty = &z->types[i < 0 ? 0 : z->trans_type[i]];
		off = ty->off;
		dst = ty->dst;
		a = z->abbrs + ty->abbr;
	}
	if (isdst)
		*isdst = dst;
	if (abbr)
		*abbr = a;
	return off;
}

/* The first transition after @t: its instant and the offsets around it. */
static bool next_transition(const struct tz_zone *z, int64_t t, int64_t *at) {
	if (z->utc)
		return false;
	ssize_t i = trans_index(z, t);
	if ((size_t)(i + 1) < z->ntrans) {
		*at = z->trans[i + 1];
		return true;
	}
	if (!z->have_rule || !z->rule.has_dst)
		return false;
	int64_t best = INT64_MAX, y = year_of(t);
	for (int64_t k = y - 1; k <= y + 1; k++) {
		int64_t s, e;
		rule_year(&z->rule, k, &s, &e);
		if (s > t && s < best)
			best = s;
		if (e > t && e < best)
			best = e;
	}
	*at = best;
	return best != INT64_MAX;
}

int64_t tz_wall_to_utc(const struct tz_zone *z, int64_t wall) {
	if (z->utc)
		return wall;
	int64_t t = wall - TZ_WINDOW, at;
	int32_t cand[8];
	size_t n = 0;
	cand[n++] = tz_offset_at(z, t, NULL, NULL);
	while (n < 8 && next_transition(z, t, &at) && at <= wall + TZ_WINDOW) {
		int32_t before = tz_offset_at(z, at - 1, NULL, NULL);
		int32_t after = tz_offset_at(z, at, NULL, NULL);
		/* Skipped: the clock jumped over @wall; move it on by the gap. */
		if (after > before && wall >= at + before && wall < at + after)
			return wall - before;
		cand[n++] = after;
		t = at;
	}
	int64_t best = INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		int64_t u = wall - cand[i];
		if (tz_offset_at(z, u, NULL, NULL) == cand[i] && u < best)
			best = u; /* repeated: the first occurrence */
	}
	return best != INT64_MAX ? best : wall - cand[0];
}
