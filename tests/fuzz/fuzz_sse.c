/*
 * fuzz_sse.c - an SSE stream comes from a remote MCP server: parse it in
 * one piece and split at a point the input chooses; both must produce the
 * same events (the parser must not depend on how bytes arrive), and no
 * event may exceed the cap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mcp/sse.h"

#define CAP 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
	uint64_t h;
	size_t n;
};

static int on_event(void *arg, const struct sse_event *ev) {
	struct digest *d = arg;
	if (ev->data_len > CAP)
		abort();
	const char *parts[3] = {ev->type, ev->data, ev->last_id};
	size_t lens[3] = {strlen(ev->type), ev->data_len, strlen(ev->last_id)};
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < lens[k]; i++)
			d->h = (d->h ^ (unsigned char)parts[k][i]) * 1099511628211ULL;
	d->h = (d->h ^ 0xff) * 1099511628211ULL;
	d->n++;
	return 0;
}

static int run(const uint8_t *data, size_t size, size_t split, struct digest *d,
               int64_t *retry) {
	struct sse_parser p;
	sse_init(&p, CAP, on_event, d);
	int r = sse_feed(&p, (const char *)data, split);
	if (r == 0)
		r = sse_feed(&p, (const char *)data + split, size - split);
	*retry = p.retry_ms;
	sse_clear(&p);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size < 1)
		return 0;
	size_t split = data[0] % size;
	data++;
	size--;
	if (split > size)
		split = size;
	struct digest a = {14695981039346656037ULL, 0}, b = a;
	int64_t ra, rb;
	int x = run(data, size, size, &a, &ra);
	int y = run(data, size, split, &b, &rb);
	/* A BOM split across the two calls is the one legitimate difference. */
	if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 && split > 0 && split < 3)
		return 0;
	if (x != y || (x == 0 && (a.h != b.h || a.n != b.n || ra != rb)))
		abort();
	return 0;
}
