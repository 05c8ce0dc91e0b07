/*
 * demo-server.c - a small MCP server over stdio, the one the example jobs call.
 *
 * MCP's stdio transport is JSON-RPC 2.0 with one message per line on
 * stdin/stdout; stderr is our log. This file is the protocol side: read a
 * line, answer it, repeat until stdin closes. The tools live in demo-tools.c.
 *
 *   mcpjob-demo-server [--data-dir DIR]
 *
 * The data directory defaults to one the server can write wherever mcpjobd
 * starts it (see default_data_dir), so the example config needs no path.
 *
 * Requests are answered in order, one at a time, which is all a server whose
 * tools finish quickly needs (no threads, no event loop).
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "demo-tools.h"

#ifndef MCPJOB_VERSION
#define MCPJOB_VERSION "0.0.0"
#endif

#define PROGNAME "mcpjob-demo-server"

/* MCP revisions we speak, newest first. */
static const char *const versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };

/* A JSON-RPC error to send instead of a result. */
struct rpc_err {
	int code;
	char message[256];
};

static json_t *fail(struct rpc_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static json_t *fail(struct rpc_err *err, int code, const char *fmt, ...) {
	va_list ap;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return NULL;
}

/* Answer with the client's version if we speak it, else with our newest. */
static json_t *do_initialize(json_t *params, struct rpc_err *err) {
	const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
	const char *answer = versions[0];
	if (asked == NULL)
		return fail(err, -32602, "initialize needs \"protocolVersion\" (a string)");
	for (const char *const *v = versions; *v; v++)
		if (strcmp(*v, asked) == 0)
			answer = *v;
	return json_pack("{s:s, s:{s:{}}, s:{s:s, s:s}}", "protocolVersion", answer,
	                 "capabilities", "tools", "serverInfo", "name", PROGNAME,
	                 "version", MCPJOB_VERSION);
}

static json_t *do_ping(json_t *params, struct rpc_err *err) {
	(void)params, (void)err;
	return json_object();
}

/* All tools fit in one page, so there is never a "nextCursor". */
static json_t *do_tools_list(json_t *params, struct rpc_err *err) {
	(void)params, (void)err;
	return json_pack("{s:o}", "tools", demo_tools_list());
}

static json_t *do_tools_call(json_t *params, struct rpc_err *err) {
	const char *name = json_string_value(json_object_get(params, "name"));
	json_t *args = json_object_get(params, "arguments");
	if (name == NULL)
		return fail(err, -32602, "tools/call needs \"name\" (a string)");
	if (args != NULL && !json_is_object(args) && !json_is_null(args))
		return fail(err, -32602, "tools/call \"arguments\" must be an object");
	return demo_tools_call(name, json_is_object(args) ? args : NULL);
}

static const struct {
	const char *name;
	json_t *(*fn)(json_t *params, struct rpc_err *err);
} methods[] = {
	{ "initialize", do_initialize },
	{ "ping", do_ping },
	{ "tools/list", do_tools_list },
	{ "tools/call", do_tools_call },
};

static json_t *error_reply(json_t *id, int code, const char *message) {
	return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
	                 "error", "code", code, "message", message);
}

static json_t *dispatch(json_t *id, const char *method, json_t *params) {
	struct rpc_err err = { 0, "" };
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(methods[i].name, method) != 0)
			continue;
		json_t *result = methods[i].fn(params, &err);
		if (result == NULL)
			return error_reply(id, err.code, err.message);
		return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
	}
	snprintf(err.message, sizeof err.message, "method not found: %s", method);
	return error_reply(id, -32601, err.message);
}

/* Notifications need no answer; initialized and cancelled need no action either. */
static void notified(const char *method) {
	if (strcmp(method, "notifications/initialized") == 0)
		fprintf(stderr, PROGNAME ": client initialized\n");
}

/* The reply to one parsed message, or NULL when none is due. */
static json_t *handle_message(json_t *msg) {
	if (!json_is_object(msg))
		return error_reply(NULL, -32600, json_is_array(msg) ? "batches are not supported"
		                                                    : "a message must be a JSON object");
	json_t *id = json_object_get(msg, "id");
	json_t *method = json_object_get(msg, "method");
	json_t *params = json_object_get(msg, "params");
	const char *version = json_string_value(json_object_get(msg, "jsonrpc"));
	bool id_ok = json_is_string(id) || json_is_integer(id);
	if (version == NULL || strcmp(version, "2.0") != 0)
		return error_reply(id_ok ? id : NULL, -32600, "\"jsonrpc\" must be \"2.0\"");
	if (method == NULL && (json_object_get(msg, "result") || json_object_get(msg, "error")))
		return NULL; /* a response: we send no requests, so there is nothing to match */
	if (!json_is_string(method))
		return error_reply(id_ok ? id : NULL, -32600, "\"method\" must be a string");
	if (id == NULL) {
		notified(json_string_value(method));
		return NULL;
	}
	if (!id_ok)
		return error_reply(NULL, -32600, "\"id\" must be a string or an integer");
	if (params != NULL && !json_is_object(params))
		return error_reply(id, -32602, "\"params\" must be an object");
	return dispatch(id, json_string_value(method), params);
}

static json_t *handle_line(const char *line, size_t len) {
	json_error_t jerr;
	char text[300];
	json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (msg == NULL) {
		snprintf(text, sizeof text, "parse error at column %d: %s", jerr.column, jerr.text);
		return error_reply(NULL, -32700, text);
	}
	json_t *reply = handle_message(msg);
	json_decref(msg);
	return reply;
}

/* Compact JSON never contains a raw newline, so one dump is one line. */
static int send_message(json_t *msg) {
	char *s = json_dumps(msg, JSON_COMPACT);
	int rc = (s && fputs(s, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0) ? 0 : -1;
	free(s);
	return rc;
}

static void usage(FILE *f) {
	fprintf(f, "usage: " PROGNAME " [--data-dir DIR]\n"
	           "An MCP server on stdin/stdout with the tools syncData and getNotifications.\n"
	           "  --data-dir DIR  where synced.json and notifications.json live (default:\n"
	           "                  $MCPJOB_DEMO_DIR, else $XDG_STATE_HOME/mcpjob-demo, else\n"
	           "                  ~/.local/state/mcpjob-demo if the home is writable, else\n"
	           "                  ${TMPDIR:-/tmp}/mcpjob-demo-UID)\n"
	           "  --help          show this help\n");
}

/*
 * Where the data lives when no --data-dir is given. mcpjobd starts servers
 * with HOME of their user and the unit's sandbox: a --user daemon's home is
 * writable; the system daemon's servers run as "nobody" (home /nonexistent)
 * under ProtectSystem=strict, where only the unit's private /tmp is
 * writable. The current directory, the old default, is "/" there.
 */
static const char *default_data_dir(char *buf, size_t len, bool *shared) {
	const char *env = getenv("MCPJOB_DEMO_DIR"), *home = getenv("HOME");
	const char *xdg = getenv("XDG_STATE_HOME"), *tmp = getenv("TMPDIR");
	*shared = false;
	if (env != NULL && *env != '\0')
		return env;
	if (xdg != NULL && xdg[0] == '/')
		snprintf(buf, len, "%s/mcpjob-demo", xdg);
	else if (home != NULL && home[0] == '/' && access(home, W_OK) == 0)
		snprintf(buf, len, "%s/.local/state/mcpjob-demo", home);
	else {
		snprintf(buf, len, "%s/mcpjob-demo-%lu", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp",
		         (unsigned long)geteuid());
		*shared = true;
	}
	return buf;
}

/* In a shared /tmp someone else may have made our directory first. */
static int claim_shared_dir(const char *dir, char *cause, size_t len) {
	struct stat st;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(cause, len, "cannot create data directory %s: %s (give a writable one "
		         "with --data-dir)", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(cause, len, "data directory %s is not a directory of this user "
		         "(give another one with --data-dir)", dir);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv) {
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char defdir[4096], cause[4096 + 512];
	bool shared;
	const char *dir = default_data_dir(defdir, sizeof defdir, &shared);
	int c;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		if (c == 'd')
			dir = optarg, shared = false;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind != argc)
		return usage(stderr), 2;
	/* A client that goes away makes writes fail; we then stop quietly. */
	signal(SIGPIPE, SIG_IGN);
	if ((shared && claim_shared_dir(dir, cause, sizeof cause) != 0) ||
	    demo_tools_init(dir, cause, sizeof cause) != 0) {
		fprintf(stderr, PROGNAME ": %s\n", cause);
		return 1;
	}
	fprintf(stderr, PROGNAME ": serving %s on stdio\n", dir);

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, stdin)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		json_t *reply = handle_line(line, (size_t)n);
		if (reply != NULL)
			rc = send_message(reply);
		json_decref(reply);
	}
	free(line);
	return 0;
}
