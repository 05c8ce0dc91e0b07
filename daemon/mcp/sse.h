/*
 * sse.h - an incremental parser for Server-Sent Events (the WHATWG HTML
 * "event stream interpretation"), as MCP's Streamable HTTP and 2024-11-05
 * HTTP+SSE transports use it.
 *
 * Bytes go in as they arrive (any split, CR, LF or CRLF line ends, a
 * leading BOM); each dispatched event comes out through a callback with its
 * type ("message" when none was given), its data (the "data:" lines joined
 * by "\n") and the last event id seen on the stream. "retry:" updates the
 * reconnection time. An event is dispatched even when its data is empty
 * (MCP servers send a "priming" event with an id and empty data); only an
 * event with no data line at all is not. A line or an event's data longer
 * than the parser's cap is an error: the stream is broken, nothing more is
 * parsed.
 */
#ifndef MCPJOB_SSE_H
#define MCPJOB_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSE_ID_MAX 1024 /* an id longer than this is kept cut (it is only echoed) */

struct sse_event {
	const char *type;     /* "message" unless "event:" said otherwise */
	const char *data;     /* NUL-terminated; may contain NULs before data_len */
	size_t data_len;
	const char *last_id;  /* the stream's last event id; "" when none */
};

/* Return 0 to go on, non-zero to stop parsing (sse_feed() returns 1). */
typedef int (*sse_event_fn)(void *arg, const struct sse_event *ev);

struct sse_parser {
	size_t max;           /* cap on one line and on one event's data */
	sse_event_fn on_event;
	void *arg;
	char *line;           /* the line being read */
	size_t line_len, line_cap;
	char *data;           /* the event's data so far */
	size_t data_len, data_cap;
	bool has_data;
	char type[64];
	char last_id[SSE_ID_MAX + 1];
	int64_t retry_ms;     /* -1 until a "retry:" field */
	bool after_cr;        /* the last byte was CR: a following LF ends nothing */
	bool started;         /* past a leading BOM */
	bool broken;
};

void sse_init(struct sse_parser *p, size_t max, sse_event_fn on_event, void *arg);
/* A new connection: a BOM may come again and half-read lines are dropped;
 * the last event id and the retry time are kept. */
void sse_reset_stream(struct sse_parser *p);
void sse_clear(struct sse_parser *p);

/*
 * sse_feed() - parse @len bytes. 0 all consumed, 1 the callback asked to
 * stop, -1 a line or an event's data exceeded the cap (the parser is broken
 * from then on and every further call returns -1).
 */
int sse_feed(struct sse_parser *p, const char *buf, size_t len);

#endif
