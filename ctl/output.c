/*
 * output.c - tables and times for mcpjobctl's human output.
 */
#include "ctl/output.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/text.h"
#include "common/xmalloc.h"

struct output_table {
	size_t ncols;
	char **headers;
	char ***rows; /* rows[i][col] */
	size_t nrows;
	size_t cap;
};

size_t output_width(const char *s) {
	return text_utf8_width(s);
}

char *output_clean(const char *s) {
	if (s == NULL)
		return xstrdup("-");
	char *out = xstrdup(s);
	text_scrub_line(out);
	return out;
}

/* Cut @s to @width code points, ending in "…" when something was cut. */
static void truncate_to(char **s, size_t width) {
	if (output_width(*s) <= width)
		return;
	if (width == 0) {
		(*s)[0] = '\0';
		return;
	}
	size_t keep = width - 1, seen = 0;
	char *p = *s;
	for (; *p; p++) {
		if (!text_utf8_is_cont((unsigned char)*p) && seen++ == keep)
			break;
	}
	*p = '\0';
	char *t = xasprintf("%s…", *s);
	free(*s);
	*s = t;
}

struct output_table *output_table_new(const char *const *headers, size_t ncols) {
	struct output_table *t = xcalloc(1, sizeof *t);
	t->ncols = ncols;
	t->headers = xcalloc(ncols, sizeof *t->headers);
	for (size_t i = 0; i < ncols; i++)
		t->headers[i] = xstrdup(headers[i]);
	return t;
}

void output_table_add(struct output_table *t, const char *const *cells) {
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->rows = xreallocarray(t->rows, t->cap, sizeof *t->rows);
	}
	char **row = xcalloc(t->ncols, sizeof *row);
	for (size_t i = 0; i < t->ncols; i++)
		row[i] = output_clean(cells[i]);
	t->rows[t->nrows++] = row;
}

size_t output_table_rows(const struct output_table *t) {
	return t->nrows;
}

static size_t column_width(const struct output_table *t, size_t col) {
	size_t w = output_width(t->headers[col]);
	for (size_t r = 0; r < t->nrows; r++) {
		size_t cw = output_width(t->rows[r][col]);
		if (cw > w)
			w = cw;
	}
	return w;
}

void output_table_fit(struct output_table *t, size_t width) {
	if (width == 0 || t->ncols == 0)
		return;
	size_t used = 0;
	for (size_t c = 0; c + 1 < t->ncols; c++)
		used += column_width(t, c) + 2;
	size_t last = t->ncols - 1;
	size_t room = used + 10 < width ? width - used : 10; /* keep something readable */
	for (size_t r = 0; r < t->nrows; r++)
		truncate_to(&t->rows[r][last], room);
}

static void print_row(const struct output_table *t, char *const *cells, const size_t *w,
                      FILE *f) {
	for (size_t c = 0; c < t->ncols; c++) {
		if (c + 1 == t->ncols) {
			fprintf(f, "%s\n", cells[c]);
			break;
		}
		size_t pad = w[c] - output_width(cells[c]) + 2;
		fprintf(f, "%s%*s", cells[c], (int)pad, "");
	}
}

void output_table_print(const struct output_table *t, FILE *f) {
	size_t *w = xcalloc(t->ncols, sizeof *w);
	for (size_t c = 0; c < t->ncols; c++)
		w[c] = column_width(t, c);
	print_row(t, t->headers, w, f);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(t, t->rows[r], w, f);
	free(w);
}

void output_table_free(struct output_table *t) {
	if (t == NULL)
		return;
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++)
			free(t->rows[r][c]);
		free(t->rows[r]);
	}
	for (size_t c = 0; c < t->ncols; c++)
		free(t->headers[c]);
	free(t->headers);
	free(t->rows);
	free(t);
}

int64_t output_json_time(const json_t *v) {
	int64_t ms;
	if (!json_is_string(v) || !time_parse_rfc3339(json_string_value(v), &ms))
		return 0;
	return ms;
}

static char *local_fmt(int64_t ms, const char *fmt, char *buf, size_t len) {
	if (ms == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (localtime_r(&secs, &tm) == NULL || strftime(buf, len, fmt, &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

char *output_local_time(int64_t ms, char *buf, size_t len) {
	return local_fmt(ms, "%a %Y-%m-%d %H:%M:%S", buf, len);
}

char *output_clock(int64_t ms, char *buf, size_t len) {
	return local_fmt(ms, "%H:%M:%S", buf, len);
}

char *output_short_time(int64_t ms, int64_t now_ms, char *buf, size_t len) {
	char day[16], today[16];
	local_fmt(ms, "%Y-%m-%d", day, sizeof day);
	local_fmt(now_ms, "%Y-%m-%d", today, sizeof today);
	if (strcmp(day, today) == 0)
		return local_fmt(ms, "%H:%M", buf, len);
	if (ms < now_ms && now_ms - ms < 6LL * 86400 * 1000)
		return local_fmt(ms, "%a %H:%M", buf, len);
	return local_fmt(ms, "%a %Y-%m-%d %H:%M", buf, len);
}

char *output_left(int64_t when_ms, int64_t now_ms, char *buf, size_t len) {
	if (when_ms == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	if (when_ms <= now_ms + 999) {
		snprintf(buf, len, "now");
		return buf;
	}
	char rel[32];
	time_format_relative(when_ms, now_ms, rel, sizeof rel);
	/* "in 14min" -> "14min" */
	snprintf(buf, len, "%s", strncmp(rel, "in ", 3) == 0 ? rel + 3 : rel);
	return buf;
}

char *output_relative(int64_t when_ms, int64_t now_ms, char *buf, size_t len) {
	if (len < 32) {
		snprintf(buf, len, "-");
		return buf;
	}
	return time_format_relative(when_ms, now_ms, buf, len);
}

char *output_duration(int64_t ms, char *buf, size_t len) {
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(buf, len, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
	else if (ms < 3600000)
		snprintf(buf, len, "%lldmin %llds", (long long)(ms / 60000),
		         (long long)(ms % 60000 / 1000));
	else
		snprintf(buf, len, "%lldh %lldmin", (long long)(ms / 3600000),
		         (long long)(ms % 3600000 / 60000));
	return buf;
}
