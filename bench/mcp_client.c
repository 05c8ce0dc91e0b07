/*
 * mcp_client.c - the daemon's MCP client on its own: the pool, session and
 * call code mcpjobd uses (daemon/mcp/mcp.c), driving the same warm server with
 * the same tools/call as bench/mcp_direct.c, so the two round trips can be
 * compared in one run without the run bookkeeping (two durable LMDB commits
 * per run) that job.run --wait adds.
 *
 *   mcp_client CALLS TOOL ARGS_JSON SERVER [SERVER_ARGS...]
 *   mcp_client CALLS TOOL ARGS_JSON http://HOST:PORT/mcp
 *
 * Prints the round trip of each timed call in microseconds, space separated
 * (after WARMUP untimed calls).
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/spawn.h"

#define WARMUP 10

struct bench {
	struct event_base *base;
	struct mcp_pool *pool;
	const char *tool;
	json_t *args;
	int left, done_ok;
	double t0, *us;
	int n;
};

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void next_call(struct bench *b);

static void on_done(void *arg, struct mcp_call_result *res) {
	struct bench *b = arg;
	double dt = now_us() - b->t0;
	if (res->status != MCP_OK) {
		fprintf(stderr, "mcp_client: call failed: %s\n", res->message ? res->message : "?");
		exit(1);
	}
	free(res->message);
	json_decref(res->structured);
	free(res->detail);
	free(res->text);
	if (b->left <= b->n)
		b->us[b->n - b->left] = dt;
	if (--b->left == 0) {
		event_base_loopexit(b->base, NULL);
		return;
	}
	next_call(b);
}

static void next_call(struct bench *b) {
	b->t0 = now_us();
	mcp_call_tool(b->pool, "bench", b->tool, b->args, 60000, NULL, on_done, b);
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: mcp_client CALLS TOOL ARGS_JSON SERVER [SERVER_ARGS...]\n");
		return 2;
	}
	struct bench b = {.n = atoi(argv[1]), .tool = argv[2]};
	json_error_t jerr;
	b.args = json_loads(argv[3], 0, &jerr);
	log_init("mcp_client", LOG_TARGET_STDERR, false);
	struct mcp_server_def def = {.name = "bench", .argv = &argv[4], .idle_timeout_ms = 60000};
	if (strncmp(argv[4], "http://", 7) == 0 || strncmp(argv[4], "https://", 8) == 0) {
		/* A Streamable HTTP server (bench/http_direct.c is its baseline). */
		def.type = MCP_SERVER_HTTP;
		def.url = argv[4];
		def.argv = NULL;
	}
	struct mcp_server_def *defs[1] = {&def};
	struct config cfg = {.servers = defs, .nservers = 1};
	b.base = event_base_new();
	b.pool = mcp_pool_new(b.base, &cfg);
	b.us = xcalloc((size_t)b.n, sizeof *b.us);
	b.left = b.n + WARMUP;
	next_call(&b);
	event_base_dispatch(b.base);
	for (int i = 0; i < b.n; i++)
		printf("%s%.1f", i ? " " : "", b.us[i]);
	printf("\n");
	mcp_pool_free(b.pool);
	event_base_free(b.base);
	json_decref(b.args);
	free(b.us);
	return 0;
}
