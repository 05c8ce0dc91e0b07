/*
 * duration.c - human durations.
 */
#include "common/duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/xmalloc.h"

static int64_t unit_ms(const char *u, size_t n) {
	static const struct { const char *name; int64_t ms; } units[] = {
		{"ms", 1}, {"s", 1000}, {"sec", 1000}, {"m", 60000}, {"min", 60000},
		{"h", 3600000}, {"d", 86400000}, {"w", 604800000},
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strlen(units[i].name) == n && strncmp(units[i].name, u, n) == 0)
			return units[i].ms;
	return -1;
}

static int bad(const char *s, char **cause, const char *why) {
	*cause = xasprintf("\"%s\" is not a duration%s (try \"30s\", \"15m\", \"1h30m\" or \"7d\")",
	                   s, why);
	return -1;
}

int duration_parse(const char *s, int64_t *ms, char **cause) {
	const char *p = s;
	int64_t total = 0;
	if (*p == '\0')
		return bad(s, cause, "");
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return bad(s, cause, "");
		int64_t n = 0;
		while (isdigit((unsigned char)*p)) {
			n = n * 10 + (*p - '0');
			if (n > (int64_t)1e12)
				return bad(s, cause, " (too large)");
			p++;
		}
		const char *u = p;
		while (isalpha((unsigned char)*p))
			p++;
		if (p == u)
			return bad(s, cause, " (a number needs a unit)");
		int64_t mult = unit_ms(u, (size_t)(p - u));
		if (mult < 0)
			return bad(s, cause, "");
		if (n > INT64_MAX / mult || total > INT64_MAX - n * mult)
			return bad(s, cause, " (too large)");
		total += n * mult;
	}
	*ms = total;
	return 0;
}

char *duration_format(int64_t ms, char *buf, size_t len) {
	static const struct { const char *name; int64_t ms; } units[] = {
		{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
	};
	size_t off = 0;
	if (ms <= 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0] && off < len; i++) {
		if (ms >= units[i].ms) {
			int w = snprintf(buf + off, len - off, "%lld%s",
			                 (long long)(ms / units[i].ms), units[i].name);
			if (w < 0)
				break;
			off += (size_t)w;
			ms %= units[i].ms;
		}
	}
	return buf;
}
