/*
 * mcp-fault.c - an MCP stdio server that misbehaves on purpose.
 *
 * The MCP client's tests start it with --mode MODE to meet one fault at a
 * time: a server that dies before or during a call, never answers, writes
 * garbage, huge or invalid UTF-8 lines, sends its own requests, or keeps
 * sending progress after a cancel, or floods the client with ping requests
 * and never reads the answers (flood). --mode ok is a correct server with a few
 * tools (echo, slow, fail, structured). See tests/servers/README.md.
 *
 * --pidfile FILE appends our pid (one line per start, so tests can count
 * server processes); --log FILE appends every line received (so tests can
 * check what the client sent). One thread, one poll() loop: stdin is read
 * while timed progress is being sent, so cancellations are seen at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/jsonrpc.h"
#include "common/timeutil.h"
#include "common/log.h"
#include "common/xmalloc.h"

enum mode {
	MODE_OK, MODE_EXIT_BEFORE_INIT, MODE_DIE_MID_CALL, MODE_NEVER_ANSWER, MODE_GARBAGE,
	MODE_HUGE_LINE, MODE_BAD_UTF8, MODE_SERVER_REQUESTS, MODE_PROGRESS_AFTER_CANCEL,
	MODE_BAD_VERSION, MODE_SLOW_START, MODE_LINGER, MODE_STUBBORN, MODE_STDERR_FLOOD,
	MODE_FLOOD, MODE_GARBAGE_THEN_SILENCE,
};

static const char *const mode_names[] = {
	"ok", "exit-before-init", "die-mid-call", "never-answer", "garbage",
	"huge-line", "bad-utf8", "server-requests", "progress-after-cancel",
	"bad-version", "slow-start", "linger", "stubborn", "stderr-flood", "flood",
	"garbage-then-silence", NULL,
};

static enum mode mode = MODE_OK;
static int log_fd = -1;

/* A tools/call that sends progress on a timer (slow, progress-after-cancel). */
struct task {
	json_t *id;          /* request id, owned */
	json_t *token;       /* progress token, owned; NULL when the client gave none */
	int step, steps;     /* steps 0: until cancelled */
	int64_t interval_ms, next_ms;
	int after_cancel;    /* progress still to send after a cancel; -1 before one */
};

#define MAX_TASKS 64
static struct task tasks[MAX_TASKS];
static size_t ntasks;

/* server-requests: the requests we sent and what each answer must be. */
struct expect {
	const char *id_json, *method;
	bool want_result; /* ping, elicitation: a result object; the others: error -32601 */
	bool answered;
};
static struct expect expects[] = {
	{ "\"s1\"", "ping", true, false },
	{ "0", "roots/list", false, false },
	{ "\"s3\"", "sampling/createMessage", false, false },
	{ "\"s4\"", "elicitation/create", true, false }, /* declined by policy */
};
#define NEXPECTS (sizeof expects / sizeof expects[0])
static json_t *sr_call_id;    /* the tools/call waiting for the answers */
static int64_t sr_deadline;
static char sr_problems[2048];

/* Write all of @buf to stdout; a client that went away ends us quietly. */
static void out_write(const char *buf, size_t len) {
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			exit(0);
		buf += n;
		len -= (size_t)n;
	}
}

/* Send @msg as one line and drop our reference. */
static void out_json(json_t *msg) {
	size_t len;
	char *s = rpc_encode(msg, &len);
	out_write(s, len);
	free(s);
	json_decref(msg);
}

static void append_file(int fd, const char *buf, size_t len) {
	struct iovec iov[2] = { { (void *)buf, len }, { "\n", 1 } };
	if (fd >= 0 && writev(fd, iov, 2) < 0)
		fprintf(stderr, "mcp-fault: cannot write log: %s\n", strerror(errno));
}

static int open_append(const char *path) {
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		log_fatal("cannot open %s", path);
	return fd;
}

static json_t *text_result(bool is_error, const char *text) {
	json_t *r = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", text);
	if (is_error)
		json_object_set_new(r, "isError", json_true());
	return r;
}

static void reply(json_t *id, json_t *result) {
	out_json(rpc_result(id, result));
	json_decref(result);
}

static void reply_text(json_t *id, bool is_error, const char *text) {
	reply(id, text_result(is_error, text));
}

static void send_progress(struct task *t) {
	char message[32];
	if (t->token == NULL)
		return;
	snprintf(message, sizeof message, "step %d", t->step);
	json_t *p = json_pack("{s:O, s:i, s:s}", "progressToken", t->token, "progress", t->step,
	                      "message", message);
	if (t->steps > 0)
		json_object_set_new(p, "total", json_integer(t->steps));
	out_json(rpc_notification("notifications/progress", p));
	json_decref(p);
}

static void task_remove(size_t i) {
	json_decref(tasks[i].id);
	json_decref(tasks[i].token);
	tasks[i] = tasks[--ntasks];
}

static void task_add(json_t *id, json_t *params, int steps, int64_t interval_ms) {
	if (ntasks == MAX_TASKS) {
		reply_text(id, true, "mcp-fault: too many calls in progress");
		return;
	}
	json_t *meta = json_object_get(params, "_meta");
	json_t *token = json_object_get(meta, "progressToken");
	struct task *t = &tasks[ntasks++];
	*t = (struct task){ json_incref(id), token ? json_incref(token) : NULL, 0, steps,
	                    interval_ms, time_mono_ms() + interval_ms, -1 };
}

/* Advance one due task; false when it is finished and was removed. */
static bool task_step(size_t i) {
	struct task *t = &tasks[i];
	t->step++;
	send_progress(t);
	t->next_ms += t->interval_ms;
	if (t->after_cancel > 0 && --t->after_cancel == 0) {
		task_remove(i);
		return false;
	}
	if (t->steps > 0 && t->step >= t->steps) {
		reply_text(t->id, false, "done");
		task_remove(i);
		return false;
	}
	return true;
}

static void tasks_run_due(void) {
	int64_t now = time_mono_ms();
	for (size_t i = 0; i < ntasks;) {
		if (tasks[i].next_ms <= now && !task_step(i))
			continue;
		i++;
	}
}

/* A correct server stops the call and never answers it; progress-after-cancel
 * only counts down five more progress notifications. */
static void tasks_cancel(json_t *request_id) {
	for (size_t i = 0; i < ntasks; i++) {
		if (!json_equal(tasks[i].id, request_id))
			continue;
		if (mode == MODE_PROGRESS_AFTER_CANCEL) {
			if (tasks[i].after_cancel < 0)
				tasks[i].after_cancel = 5;
		} else {
			task_remove(i);
		}
		return;
	}
}

static void tool_slow(json_t *id, json_t *params, json_t *args) {
	json_t *seconds = json_object_get(args, "seconds");
	json_t *steps = json_object_get(args, "steps");
	double secs = seconds ? json_number_value(seconds) : 1.0;
	json_int_t n = steps ? json_integer_value(steps) : 5;
	if ((seconds && !json_is_number(seconds)) || secs < 0 || secs > 3600 ||
	    (steps && !json_is_integer(steps)) || n < 1 || n > 10000) {
		reply_text(id, true, "MCP error -32602: slow needs seconds (0..3600) and steps (1..10000)");
		return;
	}
	task_add(id, params, (int)n, (int64_t)(secs * 1000.0 / (double)n));
}

/* The tools of a correct server. */
static void call_tool(json_t *id, json_t *params) {
	const char *name = json_string_value(json_object_get(params, "name"));
	json_t *args = json_object_get(params, "arguments");
	if (name == NULL) {
		out_json(rpc_error(id, -32602, "tools/call needs \"name\"", NULL));
	} else if (strcmp(name, "echo") == 0) {
		const char *m = json_string_value(json_object_get(args, "message"));
		char *text = m ? xasprintf("Echo: %s", m) : NULL;
		reply_text(id, m == NULL, m ? text : "MCP error -32602: \"message\" must be a string");
		free(text);
	} else if (strcmp(name, "slow") == 0) {
		tool_slow(id, params, args);
	} else if (strcmp(name, "fail") == 0) {
		reply_text(id, true, "it failed");
	} else if (strcmp(name, "structured") == 0) {
		json_t *r = text_result(false, "{\"value\":42}");
		json_object_set_new(r, "structuredContent", json_pack("{s:i}", "value", 42));
		reply(id, r);
	} else {
		char *text = xasprintf("unknown tool: %s", name);
		reply_text(id, true, text);
		free(text);
	}
}

static json_t *tools_list(void) {
	return json_pack(
		"{s:[{s:s, s:s, s:{s:s, s:{s:{s:s}}, s:[s]}},"
		"    {s:s, s:s, s:{s:s, s:{s:{s:s}, s:{s:s}}, s:[]}},"
		"    {s:s, s:s, s:{s:s, s:{}, s:[]}},"
		"    {s:s, s:s, s:{s:s, s:{}, s:[]}}]}",
		"tools",
		"name", "echo", "description", "Echo the message back.",
		"inputSchema", "type", "object", "properties", "message", "type", "string",
		"required", "message",
		"name", "slow", "description", "Send progress for steps steps over seconds, then \"done\".",
		"inputSchema", "type", "object", "properties", "seconds", "type", "number",
		"steps", "type", "integer", "required",
		"name", "fail", "description", "Always fails (isError).",
		"inputSchema", "type", "object", "properties", "required",
		"name", "structured", "description", "Returns structuredContent {\"value\": 42}.",
		"inputSchema", "type", "object", "properties", "required");
}

static void write_garbage(void) {
	static const char bin[] = { 0x00, 0x01, 0x02, (char)0xfe, (char)0xff, (char)0x80, 'x', '\n' };
	out_write("not json\n", 9);
	out_write("{\"half\":\n", 9);
	out_write(bin, sizeof bin);
}

/* One 10 MiB line: a JSON string of x's, then silence. */
static void write_huge_line(void) {
	static char chunk[64 * 1024];
	memset(chunk, 'x', sizeof chunk);
	out_write("\"", 1);
	for (size_t sent = 0; sent < 10 * 1024 * 1024; sent += sizeof chunk)
		out_write(chunk, sizeof chunk);
	out_write("\"\n", 2);
}

/* A reply whose text holds a raw 0xff byte: not UTF-8, so not JSON. */
static void write_bad_utf8(json_t *id) {
	char *ids = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
	char *line = xasprintf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":"
	                       "[{\"type\":\"text\",\"text\":\"bad \xff byte\"}]}}\n", ids);
	out_write(line, strlen(line));
	free(line);
	free(ids);
}

static void sr_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sr_note(const char *fmt, ...) {
	size_t used = strlen(sr_problems);
	va_list ap;
	if (used + 3 >= sizeof sr_problems)
		return;
	if (used > 0)
		strcat(sr_problems, "; ");
	va_start(ap, fmt);
	vsnprintf(sr_problems + strlen(sr_problems), sizeof sr_problems - strlen(sr_problems), fmt, ap);
	va_end(ap);
}

static void sr_start(json_t *id) {
	static const char *const params[] = {
		NULL, NULL,
		"{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"hi\"}}],\"maxTokens\":10}",
		"{\"message\":\"Your name?\",\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}}",
	};
	if (sr_call_id != NULL) {
		reply_text(id, true, "mcp-fault: server-requests handles one call at a time");
		return;
	}
	sr_call_id = json_incref(id);
	sr_problems[0] = '\0';
	sr_deadline = time_mono_ms() + 5000;
	for (size_t i = 0; i < NEXPECTS; i++) {
		json_t *rid = json_loads(expects[i].id_json, JSON_DECODE_ANY, NULL);
		json_t *p = params[i] ? json_loads(params[i], 0, NULL) : NULL;
		expects[i].answered = false;
		out_json(rpc_request(rid, expects[i].method, p));
		json_decref(rid);
		json_decref(p);
	}
}

/* Reply to the waiting call once all answers are in or the time is up. */
static void sr_finish_if_done(bool timed_out) {
	size_t answered = 0;
	if (sr_call_id == NULL)
		return;
	for (size_t i = 0; i < NEXPECTS; i++) {
		if (expects[i].answered)
			answered++;
		else if (timed_out)
			sr_note("no answer to %s (id %s)", expects[i].method, expects[i].id_json);
	}
	if (answered < NEXPECTS && !timed_out)
		return;
	reply_text(sr_call_id, sr_problems[0] != '\0', sr_problems[0] ? sr_problems : "answers ok");
	json_decref(sr_call_id);
	sr_call_id = NULL;
}

static void sr_check(struct expect *e, const struct rpc_msg *msg) {
	json_int_t code = json_integer_value(json_object_get(msg->error, "code"));
	if (e->answered)
		sr_note("%s (id %s) answered twice", e->method, e->id_json);
	else if (e->want_result && (msg->kind != RPC_RESPONSE || !json_is_object(msg->result)))
		sr_note("%s (id %s): expected a result object", e->method, e->id_json);
	else if (!e->want_result && msg->kind == RPC_RESPONSE)
		sr_note("%s (id %s): expected error -32601, got a result", e->method, e->id_json);
	else if (!e->want_result && code != -32601)
		sr_note("%s (id %s): expected error -32601, got error %lld", e->method, e->id_json,
		        (long long)code);
	e->answered = true;
}

/* A response or error reply from the client. */
static void sr_answer(const struct rpc_msg *msg) {
	for (size_t i = 0; i < NEXPECTS; i++) {
		json_t *want = json_loads(expects[i].id_json, JSON_DECODE_ANY, NULL);
		bool match = json_equal(want, msg->id);
		json_decref(want);
		if (match) {
			sr_check(&expects[i], msg);
			sr_finish_if_done(false);
			return;
		}
	}
	char *ids = msg->id ? json_dumps(msg->id, JSON_ENCODE_ANY) : xstrdup("(none)");
	sr_note("answer with an id we never sent: %s", ids);
	free(ids);
}

/* flood: ping requests as fast as the pipe takes them, never reading the
 * answers; ends when the client closes our stdout (write fails). */
static void write_flood(void) {
	char line[96];
	for (unsigned long long n = 0;; n++) {
		int len = snprintf(line, sizeof line,
		                   "{\"jsonrpc\":\"2.0\",\"id\":\"flood-%llu\",\"method\":\"ping\"}\n", n);
		out_write(line, (size_t)len);
	}
}

static void handle_tools_call(json_t *id, json_t *params) {
	switch (mode) {
	case MODE_FLOOD:
		write_flood();
		return;
	case MODE_DIE_MID_CALL:
		fprintf(stderr, "mcp-fault: panic: lost the database in the middle of tools/call\n");
		exit(1);
	case MODE_NEVER_ANSWER:
		return;
	case MODE_GARBAGE:
		write_garbage();
		call_tool(id, params);
		return;
	case MODE_GARBAGE_THEN_SILENCE: /* lines no reply can be matched from, then nothing */
		write_garbage();
		return;
	case MODE_HUGE_LINE:
		write_huge_line();
		return;
	case MODE_BAD_UTF8:
		write_bad_utf8(id);
		return;
	case MODE_SERVER_REQUESTS:
		sr_start(id);
		return;
	case MODE_PROGRESS_AFTER_CANCEL:
		task_add(id, params, 0, 100);
		return;
	case MODE_STDERR_FLOOD:
		for (int i = 0; i < 20000; i++)
			fprintf(stderr, "mcp-fault: noise line %d of 20000 ..........................................\n", i);
		/* fall through */
	default:
		call_tool(id, params);
	}
}

static json_t *initialize_result(json_t *params) {
	static const char *const versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };
	const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
	const char *answer = versions[0];
	for (const char *const *v = versions; asked && *v; v++)
		if (strcmp(*v, asked) == 0)
			answer = *v;
	if (mode == MODE_BAD_VERSION)
		answer = "1999-01-01";
	return json_pack("{s:s, s:{s:{}}, s:{s:s, s:s}}", "protocolVersion", answer, "capabilities",
	                 "tools", "serverInfo", "name", "mcp-fault", "version", MCPJOB_VERSION);
}

static void handle_request(json_t *id, const char *method, json_t *params) {
	if (strcmp(method, "initialize") == 0) {
		reply(id, initialize_result(params));
	} else if (strcmp(method, "ping") == 0) {
		reply(id, json_object());
	} else if (strcmp(method, "tools/list") == 0) {
		reply(id, tools_list());
	} else if (strcmp(method, "tools/call") == 0) {
		handle_tools_call(id, params);
	} else {
		char *text = xasprintf("method not found: %s", method);
		out_json(rpc_error(id, -32601, text, NULL));
		free(text);
	}
}

static void handle_line(const char *line, size_t len) {
	struct rpc_msg msg;
	if (log_fd >= 0)
		append_file(log_fd, line, len);
	rpc_parse(line, len, &msg);
	switch (msg.kind) {
	case RPC_INVALID: {
		bool id_ok = json_is_string(msg.id) || json_is_integer(msg.id);
		out_json(rpc_error(id_ok ? msg.id : NULL, msg.err_code, msg.err_text, NULL));
		break;
	}
	case RPC_REQUEST:
		handle_request(msg.id, msg.method, msg.params);
		break;
	case RPC_NOTIFICATION:
		if (strcmp(msg.method, "notifications/cancelled") == 0)
			tasks_cancel(json_object_get(msg.params, "requestId"));
		break;
	case RPC_RESPONSE:
	case RPC_ERROR_REPLY:
		if (sr_call_id != NULL)
			sr_answer(&msg);
		break;
	}
	rpc_msg_clear(&msg);
}

struct inbuf {
	char *data;
	size_t len, cap;
};

/* Read what stdin has and handle each complete line; false at end of input. */
static bool read_input(struct inbuf *in) {
	if (in->cap - in->len < 65536) {
		in->cap = in->cap * 2 + 65536;
		in->data = xrealloc(in->data, in->cap);
	}
	ssize_t n = read(STDIN_FILENO, in->data + in->len, in->cap - in->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		if (in->len > 0)
			handle_line(in->data, in->len);
		in->len = 0;
		return false;
	}
	size_t scanned = in->len, start = 0;
	in->len += (size_t)n;
	for (char *nl; (nl = memchr(in->data + scanned, '\n', in->len - scanned)) != NULL;) {
		size_t end = (size_t)(nl - in->data);
		if (end > start)
			handle_line(in->data + start, end - start);
		start = scanned = end + 1;
	}
	memmove(in->data, in->data + start, in->len - start);
	in->len -= start;
	return true;
}

/* Milliseconds until the next timed event, or -1 for none. */
static int next_timeout(void) {
	int64_t now = time_mono_ms(), next = -1;
	for (size_t i = 0; i < ntasks; i++)
		if (next < 0 || tasks[i].next_ms < next)
			next = tasks[i].next_ms;
	if (sr_call_id != NULL && (next < 0 || sr_deadline < next))
		next = sr_deadline;
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

static void serve(void) {
	struct inbuf in = { NULL, 0, 0 };
	bool open_in = true;
	for (;;) {
		struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
		int timeout = next_timeout();
		if (!open_in && (mode == MODE_LINGER || mode == MODE_STUBBORN))
			timeout = timeout < 0 ? 1000 : timeout;
		int r = poll(&pfd, open_in ? 1 : 0, timeout);
		if (r < 0 && errno != EINTR)
			log_fatal("poll");
		if (r > 0 && !read_input(&in))
			open_in = false;
		if (!open_in && mode != MODE_LINGER && mode != MODE_STUBBORN)
			break;
		tasks_run_due();
		if (sr_call_id != NULL && time_mono_ms() >= sr_deadline)
			sr_finish_if_done(true);
	}
	free(in.data);
}

static void usage(FILE *f) {
	fprintf(f, "usage: mcp-fault [--mode MODE] [--pidfile FILE] [--log FILE] [--delay-ms N]\nmodes:");
	for (const char *const *m = mode_names; *m; m++)
		fprintf(f, " %s", *m);
	fprintf(f, "\n");
}

static void parse_args(int argc, char **argv, int *delay_ms, const char **pidfile, const char **log) {
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' }, { "pidfile", required_argument, NULL, 'p' },
		{ "log", required_argument, NULL, 'l' }, { "delay-ms", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "m:p:l:d:h", opts, NULL)) != -1) {
		size_t i = 0;
		switch (c) {
		case 'm':
			while (mode_names[i] && strcmp(mode_names[i], optarg) != 0)
				i++;
			if (mode_names[i] == NULL)
				usage(stderr), exit(2);
			mode = (enum mode)i;
			break;
		case 'p': *pidfile = optarg; break;
		case 'l': *log = optarg; break;
		case 'd': *delay_ms = atoi(optarg); break;
		case 'h': usage(stdout), exit(0);
		default: usage(stderr), exit(2);
		}
	}
}

int main(int argc, char **argv) {
	const char *pidfile = NULL, *log = NULL;
	int delay_ms = 500;
	parse_args(argc, argv, &delay_ms, &pidfile, &log);
	signal(SIGPIPE, SIG_IGN);
	if (mode == MODE_STUBBORN)
		signal(SIGTERM, SIG_IGN);
	if (pidfile != NULL) {
		int fd = open_append(pidfile);
		char pid[32];
		int n = snprintf(pid, sizeof pid, "%ld", (long)getpid());
		append_file(fd, pid, (size_t)n);
		close(fd);
	}
	if (log != NULL)
		log_fd = open_append(log);
	fprintf(stderr, "mcp-fault: pid %ld, mode %s\n", (long)getpid(), mode_names[mode]);
	if (mode == MODE_EXIT_BEFORE_INIT) {
		fprintf(stderr, "fatal: cannot open database\n");
		return 3;
	}
	if (mode == MODE_SLOW_START && delay_ms > 0)
		nanosleep(&(struct timespec){ delay_ms / 1000, (delay_ms % 1000) * 1000000L }, NULL);
	serve();
	return 0;
}
