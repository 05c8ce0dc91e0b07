/*
 * output.h - mcpjobctl's human output: aligned tables, colours and time
 * formatting.
 *
 * Everything the daemon sends is untrusted text on the user's terminal:
 * table cells and output_clean() replace control characters, so a job's
 * message cannot move the cursor or break a table row.
 * Widths count UTF-8 code points, which is right for the ASCII and
 * Latin/Cyrillic text jobs print and close enough for the rest.
 *
 * Colours are off unless output_set_color(true) was called (mcpjobctl does
 * so when stdout is a terminal, NO_COLOR is unset and --no-color was not
 * given); escape sequences never count towards a column's width.
 */
#ifndef MCPJOB_CTL_OUTPUT_H
#define MCPJOB_CTL_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Room for every formatted time or duration below. */
#define OUTPUT_TIME_LEN 64

struct output_table;

/* Colour (SGR escape sequences) on or off for everything below. */
void output_set_color(bool on);
bool output_color(void);
/* SGR parameters for a job state / run outcome name ("" when plain). */
const char *output_state_sgr(const char *state);
const char *output_outcome_sgr(const char *outcome);
/* @text wrapped in @sgr when colour is on (new string; @text as is otherwise). */
char *output_paint(const char *text, const char *sgr);
/*
 * output_terminal_width() - columns to fit output into: the terminal's
 * (TIOCGWINSZ on stdout) when stdout is one, else $COLUMNS when set, else
 * @dflt (0: no limit).
 */
size_t output_terminal_width(size_t dflt);

/* A table with @ncols columns named by @headers (copied). */
struct output_table *output_table_new(const char *const *headers, size_t ncols);
/* Add a row of ncols cells (copied and cleaned); NULL cells print "-". */
void output_table_add(struct output_table *t, const char *const *cells);
/* Paint the cells of column @col (not its header) with @sgr_of(cell). */
void output_table_color(struct output_table *t, size_t col, const char *(*sgr_of)(const char *));
/*
 * output_table_fit() - make rows fit @width columns (0: no limit) by cutting
 * cells ("…") of the columns in @shrink (bit i: column i), widest first,
 * never below their header's width.
 */
void output_table_fit(struct output_table *t, size_t width, unsigned shrink);
/* Columns the table needs as it stands. */
size_t output_table_width(const struct output_table *t);
/* Take column @col out (the columns after it move left). */
void output_table_drop(struct output_table *t, size_t col);
size_t output_table_rows(const struct output_table *t);
/* Print header (unless !@legend) and rows, columns two spaces apart, no
 * trailing spaces. */
void output_table_print(const struct output_table *t, FILE *f, bool legend);
void output_table_free(struct output_table *t);

/* @s with control characters made visible as '?' (new string; NULL -> "-"). */
char *output_clean(const char *s);
/* Code points in UTF-8 @s. */
size_t output_width(const char *s);

/* RFC 3339 string from the daemon -> ms; 0 for null, absent or malformed. */
int64_t output_json_time(const json_t *v);
/* Local "Sat 2026-11-28 16:40:00 CET" (with the time zone), "-" for 0. */
char *output_local_time(int64_t ms, char *buf, size_t len);
/* Local "16:40:01", "-" for 0. */
char *output_clock(int64_t ms, char *buf, size_t len);
/* Local "14:02" for today, "Fri 14:02" within a week, else the date too. */
char *output_short_time(int64_t ms, int64_t now_ms, char *buf, size_t len);
/* Time until @when as "14min left" (as list-timers), "now" when due, "-" for 0. */
char *output_left(int64_t when_ms, int64_t now_ms, char *buf, size_t len);
/* "3h ago", "in 14min", "-" for 0 (as list-timers). */
char *output_relative(int64_t when_ms, int64_t now_ms, char *buf, size_t len);
/* Elapsed time: "350ms", "1.2s", "2min 3s", "1h 5min". */
char *output_duration(int64_t ms, char *buf, size_t len);

#endif
