/*
 * mcp_direct.c - the floor for one MCP tool call: spawn the server, do the
 * initialize handshake ourselves over its stdin/stdout, then time tools/call
 * round trips with nothing in between. mcpjobd's job.run --wait of an mcp
 * job is compared with this.
 *
 *   mcp_direct CALLS TOOL ARGS_JSON SERVER [SERVER_ARGS...]
 *
 * Prints the round trip of each timed call in microseconds, space separated
 * (after WARMUP untimed calls). The server's stderr goes to /dev/null.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/server_spawn.h"

#define WARMUP 10

struct server {
	pid_t pid;
	FILE *in, *out; /* our ends: we write to in, read from out */
	char *line;
	size_t cap;
};

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int server_start(struct server *s, char **argv) {
	int to, from;
	if (server_spawn(argv, &s->pid, &to, &from) != 0)
		return -1;
	s->in = fdopen(to, "w");
	s->out = fdopen(from, "r");
	return 0;
}

/* Send one request; read lines until the reply with @id. 0 or -1. */
static int server_request(struct server *s, int id, const char *method, json_t *params) {
	json_t *msg = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", id, "method",
	                        method, "params", params);
	char *text = json_dumps(msg, JSON_COMPACT);
	fprintf(s->in, "%s\n", text);
	fflush(s->in);
	free(text);
	json_decref(msg);
	while (getline(&s->line, &s->cap, s->out) > 0) {
		json_t *r = json_loads(s->line, 0, NULL);
		int match = r && json_integer_value(json_object_get(r, "id")) == id &&
		            json_object_get(r, "result") != NULL;
		int error = r && json_object_get(r, "error") != NULL;
		json_decref(r);
		if (match)
			return 0;
		if (error)
			return -1;
	}
	return -1;
}

static int server_initialize(struct server *s) {
	json_t *p = json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", "2025-11-25",
	                      "capabilities", "clientInfo", "name", "mcp_direct", "version", "0");
	if (server_request(s, 0, "initialize", p) != 0)
		return -1;
	fprintf(s->in, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
	fflush(s->in);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 5 || atoi(argv[1]) < 1) {
		fprintf(stderr, "usage: mcp_direct CALLS TOOL ARGS_JSON SERVER [ARGS...]\n");
		return 2;
	}
	int calls = atoi(argv[1]);
	json_t *args = json_loads(argv[3], 0, NULL);
	struct server s = {0};
	signal(SIGPIPE, SIG_IGN);
	if (args == NULL || server_start(&s, argv + 4) != 0 || server_initialize(&s) != 0) {
		fprintf(stderr, "mcp_direct: cannot start or initialize %s\n", argv[4]);
		return 1;
	}
	for (int i = 1; i <= WARMUP + calls; i++) {
		double t0 = now_us();
		if (server_request(&s, i, "tools/call",
		                   json_pack("{s:s, s:O}", "name", argv[2], "arguments", args)) != 0) {
			fprintf(stderr, "mcp_direct: tools/call %s failed\n", argv[2]);
			return 1;
		}
		if (i > WARMUP)
			printf("%.1f%s", now_us() - t0, i < WARMUP + calls ? " " : "\n");
	}
	fclose(s.in); /* EOF: the server exits */
	fclose(s.out);
	waitpid(s.pid, NULL, 0);
	json_decref(args);
	free(s.line);
	return 0;
}
