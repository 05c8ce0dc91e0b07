/*
 * sse.c - Server-Sent Events parsing (see sse.h). Field rules from the
 * WHATWG HTML standard, section "Interpreting an event stream": a line
 * starting with ':' is a comment; "field: value" drops one space after the
 * colon; a line without a colon is a field with an empty value; "id" with a
 * NUL is ignored; "retry" must be ASCII digits; a blank line dispatches.
 */
#include "daemon/mcp/sse.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

void sse_init(struct sse_parser *p, size_t max, sse_event_fn on_event, void *arg) {
	memset(p, 0, sizeof *p);
	p->max = max;
	p->on_event = on_event;
	p->arg = arg;
	p->retry_ms = -1;
}

static void event_reset(struct sse_parser *p) {
	p->data_len = 0;
	p->has_data = false;
	p->type[0] = '\0';
}

void sse_reset_stream(struct sse_parser *p) {
	p->line_len = 0;
	p->after_cr = false;
	p->started = false;
	p->broken = false;
	event_reset(p);
}

void sse_clear(struct sse_parser *p) {
	free(p->line);
	free(p->data);
	p->line = p->data = NULL;
	p->line_cap = p->data_cap = 0;
}

/* Append to a growing buffer kept NUL-terminated; -1 past @max. */
static int buf_add(char **buf, size_t *len, size_t *cap, size_t max, const char *s, size_t n) {
	if (*len + n > max)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 256;
		while (c < *len + n + 1)
			c *= 2;
		*buf = xrealloc(*buf, c);
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static int dispatch(struct sse_parser *p) {
	if (!p->has_data) {
		event_reset(p);
		return 0;
	}
	if (p->data_len > 0 && p->data[p->data_len - 1] == '\n')
		p->data[--p->data_len] = '\0';
	struct sse_event ev = {
		.type = p->type[0] ? p->type : "message",
		.data = p->data ? p->data : "",
		.data_len = p->data_len,
		.last_id = p->last_id,
	};
	int r = p->on_event ? p->on_event(p->arg, &ev) : 0;
	event_reset(p);
	return r;
}

static bool all_digits(const char *s, size_t n) {
	if (n == 0 || n > 12)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* One complete line (without its end). 0, 1 stop, -1 over the cap. */
static int process_line(struct sse_parser *p, const char *line, size_t len) {
	if (len == 0)
		return dispatch(p);
	if (line[0] == ':')
		return 0;
	const char *colon = memchr(line, ':', len);
	size_t flen = colon ? (size_t)(colon - line) : len;
	const char *value = colon ? colon + 1 : line + len;
	size_t vlen = colon ? len - flen - 1 : 0;
	if (vlen > 0 && value[0] == ' ') {
		value++;
		vlen--;
	}
	if (flen == 4 && memcmp(line, "data", 4) == 0) {
		if (buf_add(&p->data, &p->data_len, &p->data_cap, p->max, value, vlen) != 0 ||
		    buf_add(&p->data, &p->data_len, &p->data_cap, p->max + 1, "\n", 1) != 0)
			return -1;
		p->has_data = true;
	} else if (flen == 5 && memcmp(line, "event", 5) == 0) {
		size_t n = vlen < sizeof p->type - 1 ? vlen : sizeof p->type - 1;
		memcpy(p->type, value, n);
		p->type[n] = '\0';
	} else if (flen == 2 && memcmp(line, "id", 2) == 0) {
		if (memchr(value, '\0', vlen) == NULL) {
			size_t n = vlen < SSE_ID_MAX ? vlen : SSE_ID_MAX;
			memcpy(p->last_id, value, n);
			p->last_id[n] = '\0';
		}
	} else if (flen == 5 && memcmp(line, "retry", 5) == 0) {
		if (all_digits(value, vlen)) {
			char tmp[16];
			memcpy(tmp, value, vlen);
			tmp[vlen] = '\0';
			p->retry_ms = strtoll(tmp, NULL, 10);
		}
	}
	/* Other fields are ignored, as the standard says. */
	return 0;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t len) {
	if (p->broken)
		return -1;
	size_t i = 0;
	if (!p->started && len > 0) {
		/* A UTF-8 BOM may open the stream; we only look at whole ones. */
		if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
			i = 3;
		p->started = true;
	}
	while (i < len) {
		if (p->after_cr && buf[i] == '\n') {
			p->after_cr = false;
			i++;
			continue;
		}
		p->after_cr = false;
		/* The rest of this line in @buf. */
		size_t j = i;
		while (j < len && buf[j] != '\n' && buf[j] != '\r')
			j++;
		if (buf_add(&p->line, &p->line_len, &p->line_cap, p->max, buf + i, j - i) != 0) {
			p->broken = true;
			return -1;
		}
		if (j == len)
			break;
		p->after_cr = buf[j] == '\r';
		int r = process_line(p, p->line ? p->line : "", p->line_len);
		p->line_len = 0;
		if (r < 0) {
			p->broken = true;
			return -1;
		}
		i = j + 1;
		if (r > 0)
			return 1;
	}
	return 0;
}
