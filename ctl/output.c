/*
 * output.c - tables, colours and times for mcpjobctl's human output.
 */
#include "ctl/output.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/text.h"
#include "common/xmalloc.h"

struct output_table {
	size_t ncols;
	char **headers;
	char ***rows; /* rows[i][col] */
	size_t nrows;
	size_t cap;
	const char *(**sgr_of)(const char *); /* per column, may be NULL */
};

static bool use_color;

void output_set_color(bool on) {
	use_color = on;
}

bool output_color(void) {
	return use_color;
}

/* The palette systemctl uses: green active, red failed, yellow waiting, grey off. */
#define SGR_GREEN "32"
#define SGR_GREEN_BOLD "1;32"
#define SGR_RED_BOLD "1;31"
#define SGR_YELLOW "33"
#define SGR_GREY "2"

const char *output_state_sgr(const char *state) {
	static const char *const map[][2] = {{"running", SGR_GREEN_BOLD},
	                                     {"pending", SGR_YELLOW},
	                                     {"backoff", SGR_YELLOW},
	                                     {"disabled", SGR_GREY}};
	for (size_t i = 0; state && i < sizeof map / sizeof map[0]; i++)
		if (strcmp(state, map[i][0]) == 0)
			return map[i][1];
	return "";
}

const char *output_outcome_sgr(const char *outcome) {
	static const char *const map[][2] = {
	    {"success", SGR_GREEN},     {"failure", SGR_RED_BOLD},    {"timeout", SGR_RED_BOLD},
	    {"interrupted", SGR_RED_BOLD}, {"retry", SGR_YELLOW},     {"cancelled", SGR_YELLOW},
	    {"running", SGR_GREEN_BOLD}};
	for (size_t i = 0; outcome && i < sizeof map / sizeof map[0]; i++)
		if (strcmp(outcome, map[i][0]) == 0)
			return map[i][1];
	return "";
}

char *output_paint(const char *text, const char *sgr) {
	if (!use_color || sgr == NULL || *sgr == '\0')
		return xstrdup(text);
	return xasprintf("\033[%sm%s\033[0m", sgr, text);
}

size_t output_terminal_width(size_t dflt) {
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *env = getenv("COLUMNS");
	char *end;
	long n = env ? strtol(env, &end, 10) : 0;
	if (env && end != env && *end == '\0' && n > 0 && n < 100000)
		return (size_t)n;
	return dflt;
}

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
	t->sgr_of = xcalloc(ncols, sizeof *t->sgr_of);
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

void output_table_color(struct output_table *t, size_t col, const char *(*sgr_of)(const char *)) {
	if (col < t->ncols)
		t->sgr_of[col] = sgr_of;
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

size_t output_table_width(const struct output_table *t) {
	size_t total = t->ncols ? 2 * (t->ncols - 1) : 0;
	for (size_t c = 0; c < t->ncols; c++)
		total += column_width(t, c);
	return total;
}

void output_table_drop(struct output_table *t, size_t col) {
	if (col >= t->ncols)
		return;
	size_t tail = t->ncols - col - 1;
	free(t->headers[col]);
	memmove(&t->headers[col], &t->headers[col + 1], tail * sizeof *t->headers);
	memmove(&t->sgr_of[col], &t->sgr_of[col + 1], tail * sizeof *t->sgr_of);
	for (size_t r = 0; r < t->nrows; r++) {
		free(t->rows[r][col]);
		memmove(&t->rows[r][col], &t->rows[r][col + 1], tail * sizeof *t->rows[r]);
	}
	t->ncols--;
}

void output_table_fit(struct output_table *t, size_t width, unsigned shrink) {
	if (width == 0 || t->ncols == 0)
		return;
	size_t *w = xcalloc(t->ncols, sizeof *w);
	size_t total = 2 * (t->ncols - 1);
	for (size_t c = 0; c < t->ncols; c++)
		total += w[c] = column_width(t, c);
	/* One column at a time, always the widest that may still give: long
	 * messages go first, short columns keep their text as long as possible. */
	while (total > width) {
		size_t best = t->ncols;
		for (size_t c = 0; c < t->ncols && c < 32; c++) {
			size_t floor = output_width(t->headers[c]) > 3 ? output_width(t->headers[c]) : 3;
			if ((shrink & (1u << c)) && w[c] > floor && (best == t->ncols || w[c] > w[best]))
				best = c;
		}
		if (best == t->ncols)
			break;
		w[best]--;
		total--;
	}
	for (size_t c = 0; c < t->ncols; c++)
		for (size_t r = 0; r < t->nrows; r++)
			truncate_to(&t->rows[r][c], w[c]);
	free(w);
}

static void print_row(const struct output_table *t, char *const *cells, const size_t *w,
                      bool paint, FILE *f) {
	for (size_t c = 0; c < t->ncols; c++) {
		char *cell = paint && t->sgr_of[c] ? output_paint(cells[c], t->sgr_of[c](cells[c]))
		                                   : xstrdup(cells[c]);
		if (c + 1 == t->ncols) {
			fprintf(f, "%s\n", cell);
		} else {
			size_t pad = w[c] - output_width(cells[c]) + 2;
			fprintf(f, "%s%*s", cell, (int)pad, "");
		}
		free(cell);
	}
}

void output_table_print(const struct output_table *t, FILE *f, bool legend) {
	size_t *w = xcalloc(t->ncols, sizeof *w);
	for (size_t c = 0; c < t->ncols; c++)
		w[c] = legend ? column_width(t, c) : 0;
	/* Without the header, its width must not pad the rows. */
	for (size_t c = 0; !legend && c < t->ncols; c++)
		for (size_t r = 0; r < t->nrows; r++)
			if (output_width(t->rows[r][c]) > w[c])
				w[c] = output_width(t->rows[r][c]);
	if (legend)
		print_row(t, t->headers, w, false, f);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(t, t->rows[r], w, true, f);
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
	free(t->sgr_of);
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
	return local_fmt(ms, "%a %Y-%m-%d %H:%M:%S %Z", buf, len);
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
	/* "in 14min" -> "14min left", as list-timers shows it */
	snprintf(buf, len, "%s left", strncmp(rel, "in ", 3) == 0 ? rel + 3 : rel);
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
