/*
 * test_mcp.c - the MCP client: pure helpers (versions, result mapping,
 * content summaries, templates) and real sessions against
 * tests/servers/py/mcp_test_server.py (a scriptable stdio server) and, when
 * tests/bootstrap.sh installed it, the official server-everything.
 */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsontext.h"
#include "common/log.h"
#include "common/strv.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/action/action.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_proto.h"
#include "daemon/spawn.h"

#define TEST_SERVER "tests/servers/py/mcp_test_server.py"
#define EVERYTHING  "build/npm/node_modules/.bin/mcp-server-everything"

static char server_path[PATH_MAX];
static struct event_base *base;

/* --- fixtures --------------------------------------------------------------- */

static void setup_loop(void) {
	log_init("test_mcp", LOG_TARGET_STDERR, false);
	if (realpath(TEST_SERVER, server_path) == NULL)
		ck_abort_msg("cannot find %s (run from the repository root)", TEST_SERVER);
	base = event_base_new();
}

static void teardown_loop(void) {
	event_base_free(base);
	base = NULL;
}

/* A config with servers NAME=MODE[:ARG] pointing at the test server. */
struct tconfig {
	struct config cfg;
	struct mcp_server_def defs[4];
	struct mcp_server_def *ptrs[4];
};

static void tconfig_add(struct tconfig *tc, const char *name, char **argv, int64_t idle_ms) {
	size_t i = tc->cfg.nservers++;
	tc->defs[i] = (struct mcp_server_def){.name = xstrdup(name), .argv = argv,
	                                      .idle_timeout_ms = idle_ms};
	tc->ptrs[i] = &tc->defs[i];
	tc->cfg.servers = tc->ptrs;
}

static void tconfig_add_mode(struct tconfig *tc, const char *name, const char *mode,
                             const char *arg, int64_t idle_ms) {
	char **argv = xcalloc(5, sizeof(char *));
	argv[0] = xstrdup("python3");
	argv[1] = xstrdup(server_path);
	argv[2] = xstrdup(mode);
	argv[3] = xstrdup_or_null(arg);
	tconfig_add(tc, name, argv, idle_ms);
}

static void tconfig_clear(struct tconfig *tc) {
	for (size_t i = 0; i < tc->cfg.nservers; i++) {
		free(tc->defs[i].name);
		strv_free(tc->defs[i].argv);
	}
	memset(tc, 0, sizeof *tc);
}

/* --- waiting for calls ----------------------------------------------------- */

struct waiter {
	bool done;
	struct mcp_call_result res;
	int nprogress;
	double progress, total;
	char last_msg[64];
};

static void w_done(void *arg, struct mcp_call_result *res) {
	struct waiter *w = arg;
	ck_assert(!w->done);
	w->res = *res;
	w->done = true;
}

static void w_progress(void *arg, double progress, double total, const char *message) {
	struct waiter *w = arg;
	w->nprogress++;
	w->progress = progress;
	w->total = total;
	snprintf(w->last_msg, sizeof w->last_msg, "%s", message ? message : "");
}

static void w_clear(struct waiter *w) {
	mcp_call_result_clear(&w->res);
	memset(w, 0, sizeof *w);
}

static void tick(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until *@flag or @ms pass; returns *flag. */
static bool run_until(const bool *flag, int ms) {
	struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
	struct timeval tv = {0, 10000};
	event_add(t, &tv);
	int64_t end = time_mono_ms() + ms;
	while (!*flag && time_mono_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *flag;
}

static void run_for(int ms) {
	bool never = false;
	run_until(&never, ms);
}

static void call_and_wait(struct mcp_pool *pool, const char *server, const char *tool,
                          json_t *args, int64_t timeout_ms, struct waiter *w) {
	memset(w, 0, sizeof *w);
	mcp_call_tool(pool, server, tool, args, timeout_ms, w_progress, w_done, w);
	ck_assert_msg(!w->done, "done must not be called from inside mcp_call_tool");
	ck_assert_msg(run_until(&w->done, 20000), "call %s on %s never finished", tool, server);
}

static long call_pid(struct mcp_pool *pool, const char *server) {
	struct waiter w;
	call_and_wait(pool, server, "pid", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	long pid = atol(w.res.message);
	w_clear(&w);
	return pid;
}

/* --- pure helpers ------------------------------------------------------------ */

START_TEST(test_supported_versions_are_accepted) {
	const char *vs[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
	for (size_t i = 0; i < 4; i++) {
		json_t *r = json_pack("{s:s, s:{}}", "protocolVersion", vs[i], "capabilities");
		char *cause = NULL;
		const char *v = mcp_proto_check_initialize("s", r, &cause);
		ck_assert_ptr_nonnull(v);
		ck_assert_str_eq(v, vs[i]);
		ck_assert_ptr_null(cause);
		json_decref(r);
	}
}
END_TEST

START_TEST(test_unsupported_version_names_both) {
	json_t *r = json_pack("{s:s}", "protocolVersion", "1999-01-01");
	char *cause = NULL;
	ck_assert_ptr_null(mcp_proto_check_initialize("primary", r, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "\"1999-01-01\""));
	ck_assert_ptr_nonnull(strstr(cause, "\"2025-11-25\""));
	ck_assert_ptr_nonnull(strstr(cause, "primary"));
	free(cause);
	json_decref(r);
	r = json_object();
	ck_assert_ptr_null(mcp_proto_check_initialize("primary", r, &cause));
	free(cause);
	json_decref(r);
}
END_TEST

START_TEST(test_initialize_declares_no_capabilities) {
	json_t *p = mcp_proto_initialize_params();
	ck_assert_str_eq(json_string_value(json_object_get(p, "protocolVersion")), "2025-11-25");
	ck_assert_int_eq(json_object_size(json_object_get(p, "capabilities")), 0);
	json_t *ci = json_object_get(p, "clientInfo");
	ck_assert_str_eq(json_string_value(json_object_get(ci, "name")), "mcpjobd");
	ck_assert_str_eq(json_string_value(json_object_get(ci, "version")), MCPJOB_VERSION);
	json_decref(p);
}
END_TEST

static void map(const char *result_json, const char *error_json, struct mcp_call_result *res) {
	json_t *r = result_json ? json_loads(result_json, 0, NULL) : NULL;
	json_t *e = error_json ? json_loads(error_json, 0, NULL) : NULL;
	mcp_proto_tool_result("t", r, e, res);
	json_decref(r);
	json_decref(e);
}

START_TEST(test_result_maps_to_status) {
	struct mcp_call_result res;
	map("{\"content\":[{\"type\":\"text\",\"text\":\"line one\\nline two\"},"
	    "{\"type\":\"text\",\"text\":\"more\"}],\"structuredContent\":{\"a\":1},\"x\":2}",
	    NULL, &res);
	ck_assert_int_eq(res.status, MCP_OK);
	ck_assert_str_eq(res.message, "line one line two more");
	ck_assert_int_eq(json_integer_value(json_object_get(res.structured, "a")), 1);
	mcp_call_result_clear(&res);

	map("{\"content\":[{\"type\":\"text\",\"text\":\"MCP error -32602: Tool x not found\"}],"
	    "\"isError\":true}", NULL, &res);
	ck_assert_int_eq(res.status, MCP_TOOL_ERROR);
	ck_assert_str_eq(res.message, "MCP error -32602: Tool x not found");
	mcp_call_result_clear(&res);

	map(NULL, "{\"code\":-32602,\"message\":\"bad args\"}", &res);
	ck_assert_int_eq(res.status, MCP_PROTOCOL_ERROR);
	ck_assert_str_eq(res.message, "server error -32602: bad args");
	mcp_call_result_clear(&res);

	map("[1]", NULL, &res);
	ck_assert_int_eq(res.status, MCP_PROTOCOL_ERROR);
	mcp_call_result_clear(&res);

	map("{\"content\":[],\"isError\":true}", NULL, &res);
	ck_assert_int_eq(res.status, MCP_TOOL_ERROR);
	ck_assert_ptr_nonnull(strstr(res.message, "without text"));
	mcp_call_result_clear(&res);
}
END_TEST

START_TEST(test_big_structured_content_is_replaced_by_its_size) {
	char *big = xmalloc(20000);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	json_t *r = json_pack("{s:[], s:{s:s}}", "content", "structuredContent", "blob", big);
	struct mcp_call_result res;
	mcp_proto_tool_result("t", r, NULL, &res);
	ck_assert(json_is_true(json_object_get(res.structured, "truncated")));
	ck_assert_int_eq(json_integer_value(json_object_get(res.structured, "size")), 19999 + 11);
	mcp_call_result_clear(&res);
	json_decref(r);
	free(big);
}
END_TEST

START_TEST(test_content_summarises_non_text) {
	json_t *c = json_loads(
		"[{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"AAAA\"},"
		"{\"type\":\"audio\",\"mimeType\":\"audio/wav\",\"data\":\"AAAAAA==\"},"
		"{\"type\":\"resource_link\",\"uri\":\"file:///x\",\"name\":\"x\"},"
		"{\"type\":\"resource\",\"resource\":{\"uri\":\"test://r\",\"text\":\"abc\"}},"
		"{\"type\":\"hologram\"}, 42, {\"type\":\"text\",\"text\":\"done\"}]", 0, NULL);
	char *t = mcp_proto_content_text(c, 200);
	ck_assert_str_eq(t, "[image image/png 3 bytes] [audio audio/wav 4 bytes] "
	                    "[resource_link file:///x] [resource test://r 3 bytes] [hologram] "
	                    "[content item without a type] done");
	free(t);
	json_decref(c);
}
END_TEST

START_TEST(test_message_is_cut_on_utf8_boundary) {
	/* 150 two-byte characters: 300 bytes; cut at 200 keeps 100 whole ones. */
	char s[301];
	for (int i = 0; i < 150; i++)
		memcpy(s + 2 * i, "\xc3\xa9", 2);
	s[300] = '\0';
	json_t *c = json_pack("[{s:s, s:s}]", "type", "text", "text", s);
	char *t = mcp_proto_content_text(c, 200);
	ck_assert_uint_eq(strlen(t), 200);
	char *t2 = mcp_proto_content_text(c, 199);
	ck_assert_uint_eq(strlen(t2), 198);
	free(t);
	free(t2);
	json_decref(c);
}
END_TEST

static const struct mcp_template_vars vars_never = {
	.last_success_ms = 0, .last_run_ms = 0, .now_ms = 1764347581123LL,
	.job_id = "sync-data", .run_id = 42,
};
static const struct mcp_template_vars vars_some = {
	.last_success_ms = 1764347000000LL, .last_run_ms = 1764347100000LL,
	.now_ms = 1764347581123LL, .job_id = "sync-data", .run_id = 42,
};

static char *expand_to_string(const char *args, const struct mcp_template_vars *v) {
	json_t *a = json_loads(args, 0, NULL);
	ck_assert_ptr_nonnull(a);
	json_t *e = mcp_template_expand(a, v);
	char *s = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(a);
	json_decref(e);
	return s;
}

START_TEST(test_template_absent_time_is_null_alone_and_empty_inside) {
	char *s = expand_to_string("{\"since\":\"${last_success}\",\"note\":\"since ${last_success}!\","
	                           "\"run\":\"${last_run}\"}", &vars_never);
	ck_assert_str_eq(s, "{\"note\":\"since !\",\"run\":null,\"since\":null}");
	free(s);
}
END_TEST

START_TEST(test_template_substitutes_known_and_keeps_unknown) {
	char t1[TIME_RFC3339_LEN], t2[TIME_RFC3339_LEN];
	time_format_rfc3339(vars_some.last_success_ms, t1);
	time_format_rfc3339(vars_some.now_ms, t2);
	char *s = expand_to_string("{\"${now}\":[\"${last_success}\",\"${now}\",\"${job_id}/${run_id}\","
	                           "\"${nope} ${ and $\",1,true,null,{\"x\":\"${run_id}\"}]}",
	                           &vars_some);
	char *want = xasprintf("{\"${now}\":[\"%s\",\"%s\",\"sync-data/42\",\"${nope} ${ and $\","
	                       "1,true,null,{\"x\":\"42\"}]}", t1, t2);
	ck_assert_str_eq(s, want);
	ck_assert_ptr_nonnull(strstr(t2, "2025-11-28T16:33:01.123Z"));
	free(s);
	free(want);
}
END_TEST

/* --- sessions against the test server -------------------------------------- */

START_TEST(test_call_echo_succeeds) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	/* The arguments reach the server as they were given (they are sent as
	 * text encoded when the call is made): nesting, escapes, non-ASCII. */
	json_t *args = json_pack("{s:s, s:{s:[i, f, b, n], s:s}, s:s}", "message", "hello",
	                         "nested", "list", 1, 2.5, 1, "quote", "a \"q\" \\ \n\t",
	                         "utf8", "gr\xc3\xbc\xc3\x9f \xe2\x9c\x93");
	struct waiter w;
	call_and_wait(pool, "srv", "echo", args, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_str_eq(w.res.message, "Echo: hello");
	ck_assert(json_equal(json_object_get(w.res.structured, "args"), args));
	w_clear(&w);
	json_decref(args);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

/* Arguments no JSON text could hold (deeper than jansson parses) fail the
 * call with a reason: they are never sent as something else. */
START_TEST(test_arguments_too_deep_to_send_fail_the_call) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	json_t *deep = json_array();
	for (int i = 0; i < JSONTEXT_DEPTH_MAX + 10; i++) {
		json_t *outer = json_array();
		json_array_append_new(outer, deep);
		deep = outer;
	}
	json_t *args = json_pack("{s:o}", "deep", deep);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", args, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_PROTOCOL_ERROR);
	ck_assert_ptr_nonnull(strstr(w.res.message, "arguments for tool echo are nested deeper"));
	w_clear(&w);
	json_decref(args);
	/* The server is not the worse for it. */
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_framing_split_and_batched_messages) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "split-writes", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	json_t *args = json_pack("{s:s}", "message", "a long enough message to be split");
	for (int i = 0; i < 4; i++) {
		struct waiter w;
		call_and_wait(pool, "srv", "echo", args, 10000, &w);
		ck_assert_int_eq(w.res.status, MCP_OK);
		ck_assert_str_eq(w.res.message, "Echo: a long enough message to be split");
		w_clear(&w);
	}
	json_decref(args);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_server_requests_are_answered) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "server-requests", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	/* ids 0, "req-str", 7, "z": ping answered {}, elicitation by policy (a
	 * result: decline by default), the rest method-not-found. */
	ck_assert_str_eq(w.res.message, "ping:ok roots/list:-32601 sampling/createMessage:-32601 "
	                                "elicitation/create:ok");
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_unsupported_server_version_disconnects) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "version", "1999-01-01", 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	/* Permanent (the server answered and cannot work with us): not a retry. */
	ck_assert_int_eq(w.res.status, MCP_PROTOCOL_ERROR);
	ck_assert_ptr_nonnull(strstr(w.res.message, "\"1999-01-01\""));
	ck_assert_ptr_nonnull(strstr(w.res.message, "\"2025-11-25\""));
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST


START_TEST(test_initialize_error_reply_is_a_failure_not_a_retry) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "init-error", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_PROTOCOL_ERROR);
	ck_assert_ptr_nonnull(strstr(w.res.message, "refused initialize"));
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_repeated_cursor_ends_tools_list) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "pages-loop", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w = {0};
	mcp_list_tools(pool, "srv", 10000, w_done, &w);
	ck_assert(run_until(&w.done, 10000));
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_int_eq(json_array_size(w.res.structured), 2); /* first page, then "again" once */
	w_clear(&w);
	call_and_wait(pool, "srv", "levels", NULL, 10000, &w);
	ck_assert_str_eq(w.res.message, "setLevel: lists:2");
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_malformed_but_matchable_replies_fail_the_call_at_once) {
	static const char *const cases[][2] = {
		{"no-jsonrpc", "no \"jsonrpc\": \"2.0\""},
		{"string-id", "is the string \""},
		{"bad-utf8-reply", "not valid UTF-8"},
	};
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct waiter w;
		/* A timeout far longer than the test: only an at-once failure passes. */
		call_and_wait(pool, "srv", cases[i][0], NULL, 600000, &w);
		ck_assert_msg(w.res.status == MCP_PROTOCOL_ERROR, "%s: status %d", cases[i][0],
		              w.res.status);
		ck_assert_msg(strstr(w.res.message, cases[i][1]) != NULL, "%s: %s", cases[i][0],
		              w.res.message);
		ck_assert_ptr_nonnull(strstr(w.res.message, cases[i][0]));
		w_clear(&w);
	}
	/* A batch is taken apart, and the session is still fine. */
	struct waiter w;
	call_and_wait(pool, "srv", "batch", NULL, 600000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_str_eq(w.res.message, "from a batch");
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_whole_text_content_is_kept_as_output) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "long-text", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_uint_le(strlen(w.res.message), MCP_MESSAGE_MAX);
	ck_assert_ptr_nonnull(w.res.text);
	ck_assert_uint_eq(strlen(w.res.text), MCP_TEXT_MAX); /* 100 kB of text, capped */
	ck_assert(strncmp(w.res.text, "first aaa", 9) == 0);
	ck_assert_ptr_nonnull(strstr(w.res.text, "a\nsecond bbb"));
	w_clear(&w);
	json_t *args = json_pack("{s:s}", "message", "short");
	call_and_wait(pool, "srv", "echo", args, 10000, &w);
	json_decref(args);
	ck_assert_str_eq(w.res.text, "Echo: short");
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_error_data_is_kept_capped) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "rpc-error-data", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_PROTOCOL_ERROR);
	ck_assert_str_eq(w.res.message, "server error -32001: quota");
	ck_assert_ptr_nonnull(w.res.detail);
	ck_assert_ptr_nonnull(strstr(w.res.detail, "\"retry_after\":30"));
	ck_assert_uint_le(strlen(w.res.detail), MCP_DETAIL_MAX);
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_set_level_sent_when_server_declares_logging) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "dflt", "logging", NULL, 60000);
	tconfig_add_mode(&tc, "loud", "logging", NULL, 60000);
	tconfig_add_mode(&tc, "nolog", "ok", NULL, 60000);
	tc.defs[1].log_level = "debug";
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	static const char *const want[][2] = {{"dflt", "setLevel:warning lists:0"},
	                                      {"loud", "setLevel:debug lists:0"},
	                                      {"nolog", "setLevel: lists:0"}};
	for (int i = 0; i < 3; i++) {
		struct waiter w;
		call_and_wait(pool, want[i][0], "levels", NULL, 10000, &w);
		ck_assert_str_eq(w.res.message, want[i][1]);
		w_clear(&w);
	}
	tc.defs[1].log_level = NULL;
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_roots_are_declared_answered_and_changes_notified) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	tconfig_add_mode(&tc, "none", "ok", NULL, 60000);
	char *r1[] = {"file:///var/lib/app", NULL}, *r2[] = {"file:///a", "file:///b", NULL};
	tc.defs[0].roots = r1;
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "roots", NULL, 10000, &w);
	ck_assert_str_eq(w.res.message, "file:///var/lib/app cap:{\"listChanged\": true} changed:0");
	w_clear(&w);
	/* A reload that changes only the roots keeps the server and tells it. */
	long pid = call_pid(pool, "srv");
	tc.defs[0].roots = r2;
	mcp_pool_set_config(pool, &tc.cfg);
	call_and_wait(pool, "srv", "roots", NULL, 10000, &w);
	ck_assert_str_eq(w.res.message, "file:///a,file:///b cap:{\"listChanged\": true} changed:1");
	w_clear(&w);
	ck_assert_int_eq(call_pid(pool, "srv"), pid);
	/* Without "roots": not declared, and roots/list is method-not-found. */
	call_and_wait(pool, "none", "roots", NULL, 10000, &w);
	ck_assert_str_eq(w.res.message, "error -32601 cap:null changed:0");
	w_clear(&w);
	tc.defs[0].roots = NULL;
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_task_required_tool_is_polled_to_its_result) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "tasks", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "research", NULL, 20000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_str_eq(w.res.message, "research done after 3 polls");
	w_clear(&w);
	/* A plain tool on the same server is still a plain call. */
	json_t *args = json_pack("{s:s}", "message", "plain");
	call_and_wait(pool, "srv", "echo", args, 10000, &w);
	json_decref(args);
	ck_assert_str_eq(w.res.message, "Echo: plain");
	w_clear(&w);
	call_and_wait(pool, "srv", "task-log", NULL, 10000, &w);
	ck_assert_str_eq(w.res.message, "get:task-1 get:task-1 get:task-1 result:task-1");
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

static void note_task(void *arg, const char *task_id) {
	struct waiter *w = arg;
	snprintf(w->last_msg, sizeof w->last_msg, "task %s", task_id);
}

START_TEST(test_task_id_is_told_and_a_task_can_be_resumed) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "tasks", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w = {0};
	struct mcp_call *c = mcp_call_tool(pool, "srv", "research", NULL, 20000, NULL, w_done, &w);
	mcp_call_set_task_fn(c, note_task);
	ck_assert(run_until(&w.done, 20000));
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_str_eq(w.last_msg, "task task-1");
	w_clear(&w);
	/* A task this client did not create (as after a restart): polled to its end. */
	call_and_wait(pool, "srv", "start-research", NULL, 10000, &w);
	ck_assert_str_eq(w.res.message, "task-2");
	w_clear(&w);
	mcp_resume_task(pool, "srv", "research", "task-2", NULL, 20000, NULL, w_done, &w);
	ck_assert(run_until(&w.done, 20000));
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_str_eq(w.res.message, "research done after 3 polls");
	ck_assert(!w.res.task_lost);
	w_clear(&w);
	/* A task the server does not know (it restarted): tasks/get is refused. */
	mcp_resume_task(pool, "srv", "research", "task-99", NULL, 20000, NULL, w_done, &w);
	ck_assert(run_until(&w.done, 20000));
	ck_assert_int_eq(w.res.status, MCP_PROTOCOL_ERROR);
	ck_assert(w.res.task_lost);
	ck_assert_msg(strstr(w.res.message, "Task not found"), "%s", w.res.message);
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

static int count_of(const char *hay, const char *needle) {
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

START_TEST(test_a_task_left_to_run_is_neither_cancelled_nor_polled) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "tasks", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w = {0};
	struct mcp_call *c = mcp_call_tool(pool, "srv", "forever", NULL, 20000, NULL, w_done, &w);
	mcp_call_set_task_fn(c, note_task);
	for (int i = 0; i < 200 && w.last_msg[0] == '\0'; i++)
		run_for(50);
	ck_assert_str_eq(w.last_msg, "task task-1");
	run_for(300); /* polled a few times */
	mcp_call_leave(c, "mcpjobd is stopping");
	ck_assert(w.done); /* at once */
	ck_assert_int_eq(w.res.status, MCP_CANCELLED);
	ck_assert_str_eq(w.res.message, "mcpjobd is stopping");
	w_clear(&w);
	call_and_wait(pool, "srv", "task-log", NULL, 10000, &w);
	int polls = count_of(w.res.message, "get:task-1");
	ck_assert_int_gt(polls, 0);
	ck_assert_ptr_null(strstr(w.res.message, "cancel:"));
	w_clear(&w);
	run_for(500); /* five poll intervals */
	call_and_wait(pool, "srv", "task-log", NULL, 10000, &w);
	ck_assert_int_eq(count_of(w.res.message, "get:task-1"), polls);
	ck_assert_ptr_null(strstr(w.res.message, "cancel:"));
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_task_timeout_sends_tasks_cancel) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "tasks", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "forever", NULL, 700, &w);
	ck_assert_int_eq(w.res.status, MCP_TIMEOUT);
	w_clear(&w);
	call_and_wait(pool, "srv", "task-log", NULL, 10000, &w);
	ck_assert_ptr_nonnull(strstr(w.res.message, "get:task-1"));
	ck_assert_ptr_nonnull(strstr(w.res.message, "cancel:task-1"));
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_server_log_levels_map_to_ours) {
	ck_assert_int_eq(mcp_proto_log_level("debug"), LOG_LEVEL_DEBUG);
	ck_assert_int_eq(mcp_proto_log_level("notice"), LOG_LEVEL_NOTICE);
	ck_assert_int_eq(mcp_proto_log_level("warning"), LOG_LEVEL_WARNING);
	ck_assert_int_eq(mcp_proto_log_level("emergency"), LOG_LEVEL_ERROR);
	ck_assert_int_eq(mcp_proto_log_level("critical"), LOG_LEVEL_ERROR);
	ck_assert_int_eq(mcp_proto_log_level("loud"), -1);
	ck_assert_int_eq(mcp_proto_log_level(NULL), -1);
}
END_TEST

START_TEST(test_older_supported_server_version_works) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "version", "2024-11-05", 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	json_t *args = json_pack("{s:s}", "message", "old");
	struct waiter w;
	call_and_wait(pool, "srv", "echo", args, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	w_clear(&w);
	json_decref(args);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_exit_before_init_reports_status_and_stderr) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "exit-before-init", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_TRANSPORT_ERROR);
	ck_assert_msg(strstr(w.res.message, "exited with status 3"), "%s", w.res.message);
	ck_assert_ptr_nonnull(w.res.detail);
	ck_assert_ptr_nonnull(strstr(w.res.detail, "cannot open the database"));
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_spawn_failure_is_transport_error) {
	struct tconfig tc = {0};
	char **argv = xcalloc(2, sizeof(char *));
	argv[0] = xstrdup("/nonexistent/mcp-server");
	tconfig_add(&tc, "srv", argv, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_TRANSPORT_ERROR);
	ck_assert_msg(strstr(w.res.message, "/nonexistent/mcp-server"), "%s", w.res.message);
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_repeated_start_failures_fail_fast) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "exit-before-init", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	for (int i = 0; i < 3; i++) {
		call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
		ck_assert_int_eq(w.res.status, MCP_TRANSPORT_ERROR);
		w_clear(&w);
	}
	int64_t t0 = time_mono_ms();
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_TRANSPORT_ERROR);
	ck_assert_msg(strstr(w.res.message, "failed to start 3 times"), "%s", w.res.message);
	ck_assert_msg(strstr(w.res.message, "exited with status 3"), "%s", w.res.message);
	ck_assert_ptr_nonnull(strstr(w.res.detail, "cannot open the database"));
	ck_assert_int_lt(time_mono_ms() - t0, 100); /* no new process was started */
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_server_dying_mid_call_fails_the_call) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "die-mid-call", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_TRANSPORT_ERROR);
	ck_assert_msg(strstr(w.res.message, "exited with status 5"), "%s", w.res.message);
	ck_assert_ptr_nonnull(strstr(w.res.detail, "crashing now"));
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_crashed_server_restarts_on_next_use) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	long pid1 = call_pid(pool, "srv");
	struct waiter w;
	call_and_wait(pool, "srv", "crash", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_TRANSPORT_ERROR);
	w_clear(&w);
	long pid2 = call_pid(pool, "srv");
	ck_assert_int_ne(pid1, pid2);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_garbage_and_bad_utf8_lines_are_ignored) {
	const char *modes[] = {"garbage", "bad-utf8"};
	for (int i = 0; i < 2; i++) {
		struct tconfig tc = {0};
		tconfig_add_mode(&tc, "srv", modes[i], NULL, 60000);
		struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
		json_t *args = json_pack("{s:s}", "message", "still fine");
		struct waiter w;
		call_and_wait(pool, "srv", "echo", args, 10000, &w);
		ck_assert_msg(w.res.status == MCP_OK, "%s: %s", modes[i], w.res.message);
		ck_assert_str_eq(w.res.message, "Echo: still fine");
		w_clear(&w);
		json_decref(args);
		mcp_pool_free(pool);
		tconfig_clear(&tc);
	}
}
END_TEST

START_TEST(test_huge_line_is_a_protocol_failure) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "huge-line", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "srv", "echo", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_TRANSPORT_ERROR);
	ck_assert_msg(strstr(w.res.message, "longer than"), "%s", w.res.message);
	w_clear(&w);
	/* The next call gets a fresh server. */
	call_and_wait(pool, "srv", "pid", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_progress_is_reported) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	json_t *args = json_pack("{s:i, s:i}", "ms", 300, "steps", 3);
	struct waiter w;
	call_and_wait(pool, "srv", "slow", args, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_int_eq(w.nprogress, 3);
	ck_assert(w.progress == 3 && w.total == 3);
	ck_assert_str_eq(w.last_msg, "step 3");
	w_clear(&w);
	json_decref(args);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_timeout_sends_cancelled_and_server_survives) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	long pid1 = call_pid(pool, "srv");
	struct waiter w;
	call_and_wait(pool, "srv", "hang", NULL, 300, &w);
	ck_assert_int_eq(w.res.status, MCP_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(w.res.message, "timed out"));
	w_clear(&w);
	call_and_wait(pool, "srv", "cancelled", NULL, 10000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	/* requests: 1 initialize, 2 pid, 3 hang */
	ck_assert_msg(strncmp(w.res.message, "3:", 2) == 0, "%s", w.res.message);
	w_clear(&w);
	ck_assert_int_eq(call_pid(pool, "srv"), pid1);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_cancel_drops_late_progress_and_reply) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "progress-after-cancel", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w = {0};
	struct mcp_call *c = mcp_call_tool(pool, "srv", "hang", NULL, 0, w_progress, w_done, &w);
	run_for(500); /* initialized and sent */
	ck_assert(!w.done);
	mcp_call_cancel(c, "job.cancel by uid 1000");
	ck_assert(w.done);
	ck_assert_int_eq(w.res.status, MCP_CANCELLED);
	ck_assert_str_eq(w.res.message, "job.cancel by uid 1000");
	int progress_before = w.nprogress;
	/* The server now sends progress for the dead token and a late reply. */
	struct waiter w2;
	call_and_wait(pool, "srv", "cancelled", NULL, 10000, &w2);
	ck_assert_int_eq(w2.res.status, MCP_OK);
	ck_assert_str_eq(w2.res.message, "2:job.cancel by uid 1000");
	ck_assert_int_eq(w.nprogress, progress_before);
	w_clear(&w2);
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_calls_share_one_server_until_idle) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 400);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	/* Two calls issued together share one start. */
	struct waiter a = {0}, b = {0};
	mcp_call_tool(pool, "srv", "pid", NULL, 10000, NULL, w_done, &a);
	mcp_call_tool(pool, "srv", "pid", NULL, 10000, NULL, w_done, &b);
	ck_assert(run_until(&a.done, 10000) && run_until(&b.done, 10000));
	ck_assert_str_eq(a.res.message, b.res.message);
	long pid1 = atol(a.res.message);
	w_clear(&a);
	w_clear(&b);
	ck_assert_int_eq(call_pid(pool, "srv"), pid1);
	run_for(1200); /* idle timeout passes: the server is shut down */
	ck_assert_int_ne(kill((pid_t)pid1, 0), 0);
	ck_assert_int_ne(call_pid(pool, "srv"), pid1);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_shutdown_escalates_to_sigterm_and_sigkill) {
	struct tconfig tc = {0};
	/* idle 0: each is let go right after its call. */
	tconfig_add_mode(&tc, "deaf", "ignore-stdin-close", NULL, 0);
	tconfig_add_mode(&tc, "stubborn", "ignore-term", NULL, 0);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	pid_t deaf = (pid_t)call_pid(pool, "deaf");
	pid_t stubborn = (pid_t)call_pid(pool, "stubborn");
	run_for(500);
	ck_assert_int_eq(kill(deaf, 0), 0);     /* stdin closed, still running */
	ck_assert_int_eq(kill(stubborn, 0), 0);
	run_for(1300);
	ck_assert_int_ne(kill(deaf, 0), 0);     /* SIGTERM ~1 s after stdin closed */
	ck_assert_int_eq(kill(stubborn, 0), 0); /* ignores SIGTERM */
	run_for(2200);
	ck_assert_int_ne(kill(stubborn, 0), 0); /* SIGKILL 2 s after SIGTERM */
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_pool_free_cancels_pending_calls) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w = {0};
	mcp_call_tool(pool, "srv", "hang", NULL, 0, NULL, w_done, &w);
	run_for(300);
	mcp_pool_free(pool);
	ck_assert(w.done);
	ck_assert_int_eq(w.res.status, MCP_CANCELLED);
	w_clear(&w);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_changed_definition_restarts_server) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	long pid1 = call_pid(pool, "srv");
	mcp_pool_set_config(pool, &tc.cfg); /* unchanged: kept */
	ck_assert_int_eq(call_pid(pool, "srv"), pid1);
	struct tconfig tc2 = {0};
	tconfig_add_mode(&tc2, "srv", "split-writes", NULL, 60000);
	mcp_pool_set_config(pool, &tc2.cfg);
	ck_assert_int_ne(call_pid(pool, "srv"), pid1);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
	tconfig_clear(&tc2);
}
END_TEST

START_TEST(test_tools_list_follows_cursor) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "pages", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w = {0};
	mcp_list_tools(pool, "srv", 10000, w_done, &w);
	ck_assert(run_until(&w.done, 10000));
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_int_eq(json_array_size(w.res.structured), 6);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(w.res.structured, 5),
	                                                   "name")), "rpc-error");
	w_clear(&w);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_unknown_server_fails_without_crash) {
	struct tconfig tc = {0};
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w;
	call_and_wait(pool, "ghost", "echo", NULL, 1000, &w);
	ck_assert_int_eq(w.res.status, MCP_PROTOCOL_ERROR);
	ck_assert_ptr_nonnull(strstr(w.res.message, "ghost"));
	w_clear(&w);
	mcp_pool_free(pool);
}
END_TEST

/* --- the mcp action ---------------------------------------------------------- */

struct action_waiter {
	bool done;
	struct action_result res;
	int nprogress;
};

static void a_done(void *arg, struct action_result *res) {
	struct action_waiter *w = arg;
	w->res = *res;
	w->done = true;
}

static void a_progress(void *arg, double p, double t, const char *m) {
	(void)p;
	(void)t;
	(void)m;
	((struct action_waiter *)arg)->nprogress++;
}

static void a_clear(struct action_waiter *w) {
	action_result_clear(&w->res);
	memset(w, 0, sizeof *w);
}

static struct action_run *a_start(struct mcp_pool *pool, struct job_def *job,
                                  struct action_waiter *w) {
	struct action_env env = {.base = base, .job = job, .mcp = pool, .run_id = 7,
	                         .now_ms = time_now_ms(), .last_success_ms = 0};
	char *cause = NULL;
	memset(w, 0, sizeof *w);
	struct action_run *run = action_mcp_ops.start(&env, a_progress, a_done, w, &cause);
	ck_assert_msg(run != NULL, "%s", cause);
	ck_assert(!w->done);
	return run;
}

static void job_init(struct job_def *job, const char *server, const char *tool, const char *args,
                     int64_t timeout_ms) {
	memset(job, 0, sizeof *job);
	job->id = "sync-data";
	job->kind = ACTION_MCP;
	job->timeout_ms = timeout_ms;
	job->mcp.server = (char *)server;
	job->mcp.tool = (char *)tool;
	job->mcp.arguments = json_loads(args, 0, NULL);
}

START_TEST(test_action_maps_status_to_outcome) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	tconfig_add_mode(&tc, "dead", "exit-before-init", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct {
		const char *server, *tool, *args;
		int64_t timeout;
		enum run_outcome want;
		const char *msg;
	} cases[] = {
		{"srv", "echo", "{\"message\":\"${job_id} ${run_id} since=${last_success}\"}", 0,
		 OUTCOME_SUCCESS, "Echo: sync-data 7 since="},
		{"srv", "fail", "{}", 0, OUTCOME_FAILURE, "MCP error -32602: bad thing second line"},
		{"srv", "rpc-error", "{}", 0, OUTCOME_FAILURE, "server error -32602: bad args"},
		{"srv", "hang", "{}", 300, OUTCOME_TIMEOUT, NULL},
		{"dead", "echo", "{}", 0, OUTCOME_RETRY, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct job_def job;
		struct action_waiter w;
		job_init(&job, cases[i].server, cases[i].tool, cases[i].args, cases[i].timeout);
		a_start(pool, &job, &w);
		ck_assert(run_until(&w.done, 10000));
		ck_assert_msg(w.res.outcome == cases[i].want, "case %zu: outcome %d: %s", i,
		              w.res.outcome, w.res.message);
		if (cases[i].msg)
			ck_assert_str_eq(w.res.message, cases[i].msg);
		if (cases[i].want == OUTCOME_RETRY)
			ck_assert_ptr_nonnull(strstr(w.res.output, "cannot open the database"));
		a_clear(&w);
		json_decref(job.mcp.arguments);
	}
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

START_TEST(test_action_stop_ends_with_why) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "ok", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct job_def job;
	struct action_waiter w;
	job_init(&job, "srv", "slow", "{\"ms\": 5000, \"steps\": 50}", 0);
	struct action_run *run = a_start(pool, &job, &w);
	run_for(800);
	ck_assert(!w.done);
	ck_assert_int_gt(w.nprogress, 0);
	action_mcp_ops.stop(run, OUTCOME_CANCELLED, "cancelled by job.cancel");
	ck_assert(w.done);
	ck_assert_int_eq(w.res.outcome, OUTCOME_CANCELLED);
	ck_assert_str_eq(w.res.message, "cancelled by job.cancel");
	a_clear(&w);
	json_decref(job.mcp.arguments);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST


static char told_task[64], told_server[64];
static int told_sessions;

static void a_task(void *arg, const char *task_id, const char *server, const char *session) {
	(void)arg;
	snprintf(told_task, sizeof told_task, "%s", task_id);
	snprintf(told_server, sizeof told_server, "%s", server);
	told_sessions += session != NULL;
}

/* A resumed run (action_env.resume_task) of job @job on @task; done when it returns. */
static void a_resume(struct mcp_pool *pool, struct job_def *job, const char *task,
                     struct action_waiter *w) {
	struct action_env env = {.base = base, .job = job, .mcp = pool, .run_id = 7,
	                         .now_ms = time_now_ms(), .resume_task = task,
	                         .resume_server = "srv", .resumed_ms = time_now_ms()};
	char *cause = NULL;
	memset(w, 0, sizeof *w);
	ck_assert_ptr_nonnull(action_mcp_ops.start(&env, a_progress, a_done, w, &cause));
	ck_assert(!w->done);
	ck_assert(run_until(&w->done, 10000));
}

START_TEST(test_action_tells_its_task_and_a_resumed_task_ends_as_the_task_did) {
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "srv", "tasks", NULL, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct job_def job;
	struct action_waiter w;
	job_init(&job, "srv", "research", "{}", 10000);
	struct action_env env = {.base = base, .job = &job, .mcp = pool, .run_id = 7,
	                         .now_ms = time_now_ms(), .on_task = a_task};
	char *cause = NULL;
	told_task[0] = told_server[0] = '\0';
	told_sessions = 0;
	memset(&w, 0, sizeof w);
	ck_assert_ptr_nonnull(action_mcp_ops.start(&env, a_progress, a_done, &w, &cause));
	ck_assert(run_until(&w.done, 10000));
	ck_assert_int_eq(w.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(told_task, "task-1");
	ck_assert_str_eq(told_server, "srv");
	ck_assert_int_eq(told_sessions, 0); /* stdio: no session to take up again */
	a_clear(&w);
	/* A task made before a restart, followed to its end. */
	struct waiter mw = {0};
	call_and_wait(pool, "srv", "start-research", NULL, 10000, &mw);
	ck_assert_str_eq(mw.res.message, "task-2");
	w_clear(&mw);
	a_resume(pool, &job, "task-2", &w);
	ck_assert_int_eq(w.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(w.res.message, "research done after 3 polls");
	a_clear(&w);
	/* One the server does not know: interrupted, saying so. */
	a_resume(pool, &job, "task-99", &w);
	ck_assert_int_eq(w.res.outcome, OUTCOME_INTERRUPTED);
	ck_assert_msg(strstr(w.res.message, "resumed after mcpjobd restarted, but server srv no "
	                                    "longer knows task task-99"), "%s", w.res.message);
	ck_assert_ptr_nonnull(strstr(w.res.output, "Task not found"));
	a_clear(&w);
	json_decref(job.mcp.arguments);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

/* --- probe ------------------------------------------------------------------- */

START_TEST(test_probe_reports_missing_tools_and_arguments) {
	log_init("test_mcp", LOG_TARGET_STDERR, false);
	ck_assert_ptr_nonnull(realpath(TEST_SERVER, server_path));
	struct tconfig tc = {0};
	tconfig_add_mode(&tc, "primary-server", "pages", NULL, 60000);
	tconfig_add_mode(&tc, "broken", "exit-before-init", NULL, 60000);
	struct job_def j1, j2, j3, j4;
	job_init(&j1, "primary-server", "syncDat", "{}", 0);
	job_init(&j2, "primary-server", "echo", "{\"msg\": 1}", 0);
	job_init(&j3, "primary-server", "echo", "{\"message\": \"${now}\"}", 0);
	job_init(&j4, "broken", "echo", "{}", 0);
	j2.id = "echo-job";
	j4.id = "broken-job";
	struct job_def *jobs[] = {&j1, &j2, &j3, &j4};
	tc.cfg.jobs = jobs;
	tc.cfg.njobs = 4;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	int n = mcp_probe(&tc.cfg, out);
	fclose(out);
	ck_assert_msg(n == 3, "%d problems:\n%s", n, buf);
	ck_assert_msg(strstr(buf, "job sync-data: server primary-server has no tool \"syncDat\" "
	                          "(tools: echo, slow, fail, structured, image, rpc-error)\n"), "%s", buf);
	ck_assert_msg(strstr(buf, "job echo-job: tool \"echo\" on server primary-server needs "
	                          "argument \"message\""), "%s", buf);
	ck_assert_msg(strstr(buf, "server broken: cannot list its tools:"), "%s", buf);
	free(buf);
	for (int i = 0; i < 4; i++)
		json_decref(jobs[i]->mcp.arguments);
	tconfig_clear(&tc);
}
END_TEST

/* --- the official reference server ------------------------------------------- */

static bool have_everything(char *path) {
	if (realpath(EVERYTHING, path) != NULL && access(path, X_OK) == 0)
		return true;
	fprintf(stderr, "SKIPPED: server-everything not installed: run tests/bootstrap.sh\n");
	return false;
}

START_TEST(test_server_everything_interop) {
	char path[PATH_MAX];
	if (!have_everything(path))
		return;
	struct tconfig tc = {0};
	char **argv = xcalloc(2, sizeof(char *));
	argv[0] = xstrdup(path);
	tconfig_add(&tc, "everything", argv, 60000);
	struct mcp_pool *pool = mcp_pool_new(base, &tc.cfg);
	struct waiter w = {0};

	mcp_list_tools(pool, "everything", 20000, w_done, &w);
	ck_assert(run_until(&w.done, 20000));
	ck_assert_msg(w.res.status == MCP_OK, "%s", w.res.message);
	ck_assert_int_gt(json_array_size(w.res.structured), 5);
	w_clear(&w);

	json_t *args = json_pack("{s:s}", "message", "hi there");
	call_and_wait(pool, "everything", "echo", args, 20000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_str_eq(w.res.message, "Echo: hi there");
	w_clear(&w);
	json_decref(args);

	call_and_wait(pool, "everything", "no-such-tool", NULL, 20000, &w);
	ck_assert_int_eq(w.res.status, MCP_TOOL_ERROR);
	ck_assert_msg(strstr(w.res.message, "no-such-tool"), "%s", w.res.message);
	w_clear(&w);

	args = json_pack("{s:s}", "location", "Chicago");
	call_and_wait(pool, "everything", "get-structured-content", args, 20000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_ptr_nonnull(json_object_get(w.res.structured, "temperature"));
	w_clear(&w);
	json_decref(args);

	args = json_pack("{s:f, s:i}", "duration", 1.0, "steps", 4);
	call_and_wait(pool, "everything", "trigger-long-running-operation", args, 20000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	ck_assert_int_eq(w.nprogress, 4);
	ck_assert(w.total == 4);
	w_clear(&w);
	json_decref(args);

	/* Cancel mid-operation; the server keeps sending progress, which is dropped. */
	args = json_pack("{s:f, s:i}", "duration", 2.0, "steps", 10);
	struct waiter wc = {0};
	struct mcp_call *c = mcp_call_tool(pool, "everything", "trigger-long-running-operation",
	                                   args, 20000, w_progress, w_done, &wc);
	while (wc.nprogress < 2 && !wc.done)
		run_for(50);
	mcp_call_cancel(c, "test cancel");
	ck_assert_int_eq(wc.res.status, MCP_CANCELLED);
	int n = wc.nprogress;
	run_for(1000);
	ck_assert_int_eq(wc.nprogress, n);
	w_clear(&wc);
	json_decref(args);

	args = json_pack("{s:s}", "message", "after cancel");
	call_and_wait(pool, "everything", "echo", args, 20000, &w);
	ck_assert_int_eq(w.res.status, MCP_OK);
	w_clear(&w);
	json_decref(args);
	mcp_pool_free(pool);
	tconfig_clear(&tc);
}
END_TEST

static Suite *mcp_suite(void) {
	Suite *s = suite_create("mcp");
	TCase *pure = tcase_create("pure");
	tcase_add_test(pure, test_supported_versions_are_accepted);
	tcase_add_test(pure, test_unsupported_version_names_both);
	tcase_add_test(pure, test_server_log_levels_map_to_ours);
	tcase_add_test(pure, test_initialize_declares_no_capabilities);
	tcase_add_test(pure, test_result_maps_to_status);
	tcase_add_test(pure, test_big_structured_content_is_replaced_by_its_size);
	tcase_add_test(pure, test_content_summarises_non_text);
	tcase_add_test(pure, test_message_is_cut_on_utf8_boundary);
	tcase_add_test(pure, test_template_absent_time_is_null_alone_and_empty_inside);
	tcase_add_test(pure, test_template_substitutes_known_and_keeps_unknown);
	suite_add_tcase(s, pure);

	TCase *sess = tcase_create("sessions");
	tcase_add_checked_fixture(sess, setup_loop, teardown_loop);
	tcase_set_timeout(sess, 60);
	tcase_add_test(sess, test_call_echo_succeeds);
	tcase_add_test(sess, test_arguments_too_deep_to_send_fail_the_call);
	tcase_add_test(sess, test_framing_split_and_batched_messages);
	tcase_add_test(sess, test_server_requests_are_answered);
	tcase_add_test(sess, test_unsupported_server_version_disconnects);
	tcase_add_test(sess, test_older_supported_server_version_works);
	tcase_add_test(sess, test_initialize_error_reply_is_a_failure_not_a_retry);
	tcase_add_test(sess, test_repeated_cursor_ends_tools_list);
	tcase_add_test(sess, test_malformed_but_matchable_replies_fail_the_call_at_once);
	tcase_add_test(sess, test_whole_text_content_is_kept_as_output);
	tcase_add_test(sess, test_error_data_is_kept_capped);
	tcase_add_test(sess, test_set_level_sent_when_server_declares_logging);
	tcase_add_test(sess, test_roots_are_declared_answered_and_changes_notified);
	tcase_add_test(sess, test_task_required_tool_is_polled_to_its_result);
	tcase_add_test(sess, test_task_timeout_sends_tasks_cancel);
	tcase_add_test(sess, test_a_task_left_to_run_is_neither_cancelled_nor_polled);
	tcase_add_test(sess, test_task_id_is_told_and_a_task_can_be_resumed);
	tcase_add_test(sess, test_action_tells_its_task_and_a_resumed_task_ends_as_the_task_did);
	tcase_add_test(sess, test_exit_before_init_reports_status_and_stderr);
	tcase_add_test(sess, test_spawn_failure_is_transport_error);
	tcase_add_test(sess, test_repeated_start_failures_fail_fast);
	tcase_add_test(sess, test_server_dying_mid_call_fails_the_call);
	tcase_add_test(sess, test_crashed_server_restarts_on_next_use);
	tcase_add_test(sess, test_garbage_and_bad_utf8_lines_are_ignored);
	tcase_add_test(sess, test_huge_line_is_a_protocol_failure);
	tcase_add_test(sess, test_progress_is_reported);
	tcase_add_test(sess, test_timeout_sends_cancelled_and_server_survives);
	tcase_add_test(sess, test_cancel_drops_late_progress_and_reply);
	tcase_add_test(sess, test_calls_share_one_server_until_idle);
	tcase_add_test(sess, test_shutdown_escalates_to_sigterm_and_sigkill);
	tcase_add_test(sess, test_pool_free_cancels_pending_calls);
	tcase_add_test(sess, test_changed_definition_restarts_server);
	tcase_add_test(sess, test_tools_list_follows_cursor);
	tcase_add_test(sess, test_unknown_server_fails_without_crash);
	tcase_add_test(sess, test_action_maps_status_to_outcome);
	tcase_add_test(sess, test_action_stop_ends_with_why);
	tcase_add_test(sess, test_server_everything_interop);
	suite_add_tcase(s, sess);

	TCase *probe = tcase_create("probe");
	tcase_set_timeout(probe, 60);
	tcase_add_test(probe, test_probe_reports_missing_tools_and_arguments);
	suite_add_tcase(s, probe);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(mcp_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
