/*
 * http_direct.c - the baseline for a warm MCP tool call over Streamable
 * HTTP: the same exchanges as the daemon's client, written straight on
 * libcurl (one easy handle, so one kept connection, blocking
 * curl_easy_perform) with nothing around them.
 *
 *   http_direct CALLS TOOL ARGS_JSON URL
 *
 * initialize, notifications/initialized, WARMUP untimed calls, then CALLS
 * timed tools/call POSTs; prints each round trip in microseconds, space
 * separated. A round trip ends when the answer has arrived (as for the
 * daemon's client, which acts on the response event before the server
 * ends its SSE stream).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define WARMUP 10

struct buf {
	char *p;
	size_t n;
	double answered_us; /* when the body first held a result: the call is done */
};

static double now_us(void);

static char session[256];

static size_t on_body(char *d, size_t s, size_t n, void *arg) {
	struct buf *b = arg;
	b->p = realloc(b->p, b->n + s * n + 1);
	memcpy(b->p + b->n, d, s * n);
	b->n += s * n;
	b->p[b->n] = '\0';
	if (b->answered_us == 0 && strstr(b->p, "\"result\"") != NULL)
		b->answered_us = now_us();
	return s * n;
}

static size_t on_header(char *d, size_t s, size_t n, void *arg) {
	(void)arg;
	if (s * n > 16 && strncasecmp(d, "mcp-session-id:", 15) == 0) {
		snprintf(session, sizeof session, "%.*s", (int)strcspn(d + 16, "\r\n"), d + 16);
	}
	return s * n;
}

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* POST @body; returns when the answer arrived (the stream may end later). */
static double post(CURL *e, const char *body, int after_init) {
	struct curl_slist *h = NULL;
	char line[320];
	struct buf b = {0};
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Accept: application/json, text/event-stream");
	if (after_init) {
		snprintf(line, sizeof line, "Mcp-Session-Id: %s", session);
		h = curl_slist_append(h, line);
		h = curl_slist_append(h, "MCP-Protocol-Version: 2025-11-25");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(e);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	if (rc != CURLE_OK || status / 100 != 2 ||
	    (strstr(body, "\"id\"") && (b.p == NULL || !strstr(b.p, "\"result\"")))) {
		fprintf(stderr, "http_direct: %s: curl %d, HTTP %ld: %s\n", body, rc, status,
		        b.p ? b.p : "");
		exit(1);
	}
	free(b.p);
	return b.answered_us ? b.answered_us : now_us();
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: http_direct CALLS TOOL ARGS_JSON URL\n");
		return 2;
	}
	int n = atoi(argv[1]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, argv[4]);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	post(e, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
	        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"direct\",\"version\":\"1\"}}}",
	     0);
	post(e, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 1);
	double *us = calloc((size_t)n, sizeof *us);
	for (int i = 0; i < n + WARMUP; i++) {
		char *body;
		if (asprintf(&body, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":"
		                    "{\"name\":\"%s\",\"arguments\":%s,\"_meta\":{\"progressToken\":\"t%d\"}}}",
		             i + 2, argv[2], argv[3], i) < 0)
			return 1;
		double t0 = now_us();
		double t1 = post(e, body, 1);
		if (i >= WARMUP)
			us[i - WARMUP] = t1 - t0;
		free(body);
	}
	for (int i = 0; i < n; i++)
		printf("%s%.1f", i ? " " : "", us[i]);
	printf("\n");
	curl_easy_cleanup(e);
	curl_global_cleanup();
	free(us);
	return 0;
}
