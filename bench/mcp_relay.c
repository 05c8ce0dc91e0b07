/*
 * mcp_relay.c - the least a process in the middle of an MCP run can do:
 * the floor under mcpjobd's job.run --wait of an mcp job, measured by the
 * same client on the same chain of processes (client -> relay -> server ->
 * relay -> client), without what the daemon adds (records, log lines, an
 * event loop, the run's state).
 *
 *   mcp_relay SOCKET TOOL ARGS_JSON SERVER [SERVER_ARGS...]
 *
 * Spawns the server and does the initialize handshake, as mcp_direct does,
 * then serves one client on the AF_UNIX SOCKET, one JSON-RPC request per
 * line, each parsed with jansson. For "job.run": one tools/call of TOOL to
 * the server, whose reply is parsed with jansson, answered with
 * {"outcome": "success"} (or a JSON-RPC error); for any other method an
 * empty result at once (the relay's own round trip, as job.status is the
 * daemon's). Blocking I/O throughout. The server's stderr goes to
 * /dev/null; the relay exits when its client hangs up.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/server_spawn.h"

#define LINE_MAX_BYTES (1 << 20)

/* A line reader on a blocking fd: the next line (NUL-terminated, without
 * its newline) or NULL at EOF, on an error or past LINE_MAX_BYTES. */
struct reader {
	int fd;
	char buf[LINE_MAX_BYTES];
	size_t len, skip; /* bytes held; of them, the line handed out last */
};

static char *read_line(struct reader *r) {
	memmove(r->buf, r->buf + r->skip, r->len - r->skip);
	r->len -= r->skip;
	r->skip = 0;
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl != NULL) {
			*nl = '\0';
			r->skip = (size_t)(nl - r->buf) + 1;
			return r->buf;
		}
		if (r->len == sizeof r->buf)
			return NULL;
		ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
		if (n <= 0)
			return NULL;
		r->len += (size_t)n;
	}
}

static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write @msg (stolen) as one line. */
static int send_msg(int fd, json_t *msg) {
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (text == NULL)
		return -1;
	size_t n = strlen(text);
	text[n] = '\n'; /* over the NUL: the length is known */
	int rc = write_all(fd, text, n + 1);
	free(text);
	return rc;
}

static struct reader from_server;
static int to_server;

/* One request to the server; 0 when its reply (lines before it skipped:
 * notifications, requests we do not answer) has a result. */
static int server_request(json_int_t id, const char *method, json_t *params) {
	if (send_msg(to_server, json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", id,
	                                  "method", method, "params", params)) < 0)
		return -1;
	for (char *line; (line = read_line(&from_server)) != NULL;) {
		json_t *r = json_loads(line, 0, NULL);
		int mine = r != NULL && json_integer_value(json_object_get(r, "id")) == id;
		int ok = mine && json_is_object(json_object_get(r, "result"));
		json_decref(r);
		if (mine)
			return ok ? 0 : -1;
	}
	return -1;
}

static int server_start(char **argv, pid_t *pid) {
	if (server_spawn(argv, pid, &to_server, &from_server.fd) != 0)
		return -1;
	if (server_request(0, "initialize",
	                   json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", "2025-11-25",
	                             "capabilities", "clientInfo", "name", "mcp_relay", "version",
	                             "0")) != 0)
		return -1;
	return send_msg(to_server, json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method",
	                                     "notifications/initialized"));
}

static int listen_on(const char *path) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		return -1;
	strcpy(a.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0)
		return -1;
	return fd;
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: mcp_relay SOCKET TOOL ARGS_JSON SERVER [ARGS...]\n");
		return 2;
	}
	static struct reader from_client;
	json_t *args = json_loads(argv[3], 0, NULL);
	pid_t pid;
	signal(SIGPIPE, SIG_IGN);
	if (args == NULL || server_start(argv + 4, &pid) != 0) {
		fprintf(stderr, "mcp_relay: cannot start or initialize %s\n", argv[4]);
		return 1;
	}
	int ls = listen_on(argv[1]);
	if (ls < 0 || (from_client.fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		fprintf(stderr, "mcp_relay: cannot serve on %s\n", argv[1]);
		return 1;
	}
	json_int_t next_id = 1;
	for (char *line; (line = read_line(&from_client)) != NULL;) {
		json_t *req = json_loads(line, 0, NULL);
		const char *method = json_string_value(json_object_get(req, "method"));
		json_t *id = json_incref(json_object_get(req, "id"));
		json_t *reply;
		if (method == NULL || id == NULL)
			reply = json_pack("{s:s, s:n, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", "error",
			                  "code", -32600, "message", "not a request");
		else if (strcmp(method, "job.run") != 0)
			reply = json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id", id, "result");
		else if (server_request(next_id++, "tools/call",
		                        json_pack("{s:s, s:O}", "name", argv[2], "arguments", args)) == 0)
			reply = json_pack("{s:s, s:O, s:{s:s}}", "jsonrpc", "2.0", "id", id, "result",
			                  "outcome", "success");
		else
			reply = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error",
			                  "code", -32000, "message", "tools/call failed");
		json_decref(id);
		json_decref(req);
		if (send_msg(from_client.fd, reply) < 0)
			break;
	}
	close(to_server); /* EOF: the server exits */
	waitpid(pid, NULL, 0);
	unlink(argv[1]);
	json_decref(args);
	return 0;
}
