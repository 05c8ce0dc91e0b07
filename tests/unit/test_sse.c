/*
 * test_sse.c - the Server-Sent Events parser (daemon/mcp/sse.c), the header
 * references of remote servers (daemon/mcp/mcp_headers.c) and elicitation by
 * policy (daemon/mcp/mcp_elicit.c): the pure parts of MCP over HTTP.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/mcp/mcp_elicit.h"
#include "daemon/mcp/mcp_headers.h"
#include "daemon/mcp/sse.h"

/* Every event as "type|id|data;" appended to a string. */
struct got {
	char buf[4096];
	int n;
};

static int collect(void *arg, const struct sse_event *ev) {
	struct got *g = arg;
	size_t len = strlen(g->buf);
	snprintf(g->buf + len, sizeof g->buf - len, "%s|%s|%.*s;", ev->type, ev->last_id,
	         (int)ev->data_len, ev->data);
	g->n++;
	return 0;
}

/* Feed @s in pieces of @step bytes. */
static int feed_in_steps(struct sse_parser *p, const char *s, size_t step) {
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i += step) {
		int r = sse_feed(p, s + i, len - i < step ? len - i : step);
		if (r != 0)
			return r;
	}
	return 0;
}

START_TEST(test_sse_events_are_the_same_whatever_the_split) {
	const char *stream = "\xEF\xBB\xBF: comment\r\nid: 7\r\nretry: 500\r\ndata: \r\n\r\n"
	                     "event: message\nid: 8\ndata: {\"a\":\ndata: 1}\n\n"
	                     "data:no-space\rdata:  two\r\r"
	                     "event: endpoint\ndata: /messages?s=1\n\nid\ndata: x\n\n";
	const char *want = "message|7|;message|8|{\"a\":\n1};message|8|no-space\n two;"
	                   "endpoint|8|/messages?s=1;message||x;";
	for (size_t step = 1; step <= strlen(stream); step++) {
		struct got g = {0};
		struct sse_parser p;
		sse_init(&p, 1 << 20, collect, &g);
		ck_assert_int_eq(feed_in_steps(&p, stream, step), 0);
		ck_assert_msg(strcmp(g.buf, want) == 0, "step %zu: %s", step, g.buf);
		ck_assert_int_eq(p.retry_ms, 500);
		sse_clear(&p);
	}
}
END_TEST

START_TEST(test_sse_event_without_data_is_not_dispatched) {
	struct got g = {0};
	struct sse_parser p;
	sse_init(&p, 1024, collect, &g);
	ck_assert_int_eq(feed_in_steps(&p, "id: 3\n\nevent: x\n\nretry: 1x\n\n", 5), 0);
	ck_assert_int_eq(g.n, 0);
	ck_assert_str_eq(p.last_id, "3");
	ck_assert_int_eq(p.retry_ms, -1); /* not all digits: ignored */
	/* A half-read event does not survive a new connection; the id does. */
	ck_assert_int_eq(sse_feed(&p, "data: half", 10), 0);
	sse_reset_stream(&p);
	ck_assert_int_eq(sse_feed(&p, "data: whole\n\n", 13), 0);
	ck_assert_str_eq(g.buf, "message|3|whole;");
	sse_clear(&p);
}
END_TEST

START_TEST(test_sse_over_the_cap_breaks_the_stream) {
	struct got g = {0};
	struct sse_parser p;
	sse_init(&p, 16, collect, &g);
	ck_assert_int_eq(sse_feed(&p, "data: 0123456789\ndata: 0123456789\n\n", 36), -1);
	ck_assert_int_eq(sse_feed(&p, "data: a\n\n", 9), -1);
	ck_assert_int_eq(g.n, 0);
	sse_clear(&p);
	sse_init(&p, 16, collect, &g);
	ck_assert_int_eq(sse_feed(&p, "data: an endless line without its end", 37), -1);
	sse_clear(&p);
}
END_TEST

START_TEST(test_header_references_expand_from_env_and_credentials) {
	char dir[] = "/tmp/test_sse.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char *path = xasprintf("%s/api-token", dir);
	FILE *f = fopen(path, "w");
	fputs("s3cret\n", f);
	fclose(f);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	setenv("MCPJOB_TEST_KEY", "k-42", 1);
	char *cause = NULL;
	char *v = mcp_headers_expand("Bearer ${credential:api-token} ${env:MCPJOB_TEST_KEY}", &cause);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "Bearer s3cret k-42");
	free(v);
	/* What cannot be read is named; the value of what can is never shown. */
	ck_assert_ptr_null(mcp_headers_expand("x ${env:MCPJOB_TEST_UNSET}", &cause));
	ck_assert_ptr_nonnull(strstr(cause, "${env:MCPJOB_TEST_UNSET}"));
	free(cause);
	ck_assert_ptr_null(mcp_headers_expand("${credential:nope}", &cause));
	ck_assert_ptr_nonnull(strstr(cause, "${credential:nope}"));
	free(cause);
	setenv("MCPJOB_TEST_KEY", "a\r\nInjected: 1", 1);
	ck_assert_ptr_null(mcp_headers_expand("${env:MCPJOB_TEST_KEY}", &cause));
	ck_assert_ptr_null(strstr(cause, "Injected"));
	free(cause);
	unlink(path);
	rmdir(dir);
	free(path);
}
END_TEST

START_TEST(test_header_reference_syntax_is_checked) {
	static const char *const bad[] = {"${vault:x}", "${env:}", "${env:a/b}", "${env:X",
	                                  "${credential:..}", "two\nlines", NULL};
	char *cause = NULL;
	ck_assert_int_eq(mcp_headers_check("Bearer ${env:T} and ${credential:c.1}", &cause), 0);
	ck_assert_int_eq(mcp_headers_check("plain", &cause), 0);
	for (int i = 0; bad[i]; i++) {
		ck_assert_msg(mcp_headers_check(bad[i], &cause) == -1, "%s accepted", bad[i]);
		ck_assert_ptr_nonnull(cause);
		free(cause);
		cause = NULL;
	}
	ck_assert(mcp_headers_name_ok("X-Api-Key"));
	ck_assert(!mcp_headers_name_ok("Bad Name"));
	ck_assert(!mcp_headers_name_ok(""));
}
END_TEST

static json_t *sep1034_request(void) {
	return json_loads("{\"message\":\"m\",\"requestedSchema\":{\"type\":\"object\",\"properties\":"
	                  "{\"name\":{\"type\":\"string\",\"default\":\"John Doe\"},"
	                  "\"age\":{\"type\":\"integer\",\"default\":30},"
	                  "\"score\":{\"type\":\"number\",\"default\":95.5},"
	                  "\"status\":{\"type\":\"string\",\"enum\":[\"active\",\"inactive\"],"
	                  "\"default\":\"active\"},"
	                  "\"verified\":{\"type\":\"boolean\",\"default\":true},"
	                  "\"note\":{\"type\":\"string\"}},\"required\":[]}}", 0, NULL);
}

START_TEST(test_elicitation_defaults_fill_every_type) {
	json_t *req = sep1034_request();
	char *why = NULL;
	json_t *a = mcp_elicit_answer(req, MCP_ELICIT_DEFAULTS, NULL, &why);
	char *enc = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(enc, "{\"action\":\"accept\",\"content\":{\"age\":30,\"name\":\"John Doe\","
	                      "\"score\":95.5,\"status\":\"active\",\"verified\":true}}");
	free(enc);
	free(why);
	json_decref(a);
	json_decref(req);
}
END_TEST

START_TEST(test_elicitation_answers_are_checked_against_the_schema) {
	json_t *req = sep1034_request();
	char *why = NULL;
	json_t *ans = json_pack("{s:s, s:i}", "status", "inactive", "age", 41);
	json_t *a = mcp_elicit_answer(req, MCP_ELICIT_ANSWERS, ans, &why);
	ck_assert_str_eq(json_string_value(json_object_get(a, "action")), "accept");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "content"), "status")),
	                 "inactive");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "content"), "age")),
	                 41);
	json_decref(a);
	free(why);
	json_object_set_new(ans, "status", json_string("deleted")); /* not in the enum */
	a = mcp_elicit_answer(req, MCP_ELICIT_ANSWERS, ans, &why);
	ck_assert_str_eq(json_string_value(json_object_get(a, "action")), "decline");
	ck_assert_ptr_nonnull(strstr(why, "status"));
	json_decref(a);
	free(why);
	/* A required field without default or answer cannot be accepted. */
	json_array_append_new(json_object_get(json_object_get(req, "requestedSchema"), "required"),
	                      json_string("note"));
	a = mcp_elicit_answer(req, MCP_ELICIT_DEFAULTS, NULL, &why);
	ck_assert_str_eq(json_string_value(json_object_get(a, "action")), "decline");
	json_decref(a);
	free(why);
	json_decref(ans);
	json_decref(req);
}
END_TEST

START_TEST(test_elicitation_enums_arrays_and_ranges_are_checked) {
	json_t *req = json_loads(
	    "{\"message\":\"m\",\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
	    "\"hero\":{\"type\":\"string\",\"oneOf\":[{\"const\":\"h1\"},{\"const\":\"h2\"}],"
	    "\"default\":\"h1\"},"
	    "\"fish\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,\"items\":{\"anyOf\":"
	    "[{\"const\":\"f1\"},{\"const\":\"f2\"}]},\"default\":[\"f1\"]},"
	    "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"default\":42}},"
	    "\"required\":[\"hero\",\"fish\",\"n\"]}}", 0, NULL);
	char *why = NULL;
	json_t *a = mcp_elicit_answer(req, MCP_ELICIT_DEFAULTS, NULL, &why);
	char *enc = json_dumps(json_object_get(a, "content"), JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(enc, "{\"fish\":[\"f1\"],\"hero\":\"h1\",\"n\":42}");
	free(enc);
	json_decref(a);
	free(why);
	static const char *const bad[] = {"{\"hero\":\"h3\"}", "{\"fish\":[\"f1\",\"f2\",\"f1\"]}",
	                                  "{\"fish\":[\"f9\"]}", "{\"n\":101}", "{\"n\":2.5}", NULL};
	for (int i = 0; bad[i]; i++) {
		json_t *ans = json_loads(bad[i], 0, NULL);
		a = mcp_elicit_answer(req, MCP_ELICIT_ANSWERS, ans, &why);
		ck_assert_msg(strcmp(json_string_value(json_object_get(a, "action")), "decline") == 0,
		              "%s accepted", bad[i]);
		json_decref(a);
		json_decref(ans);
		free(why);
	}
	json_decref(req);
}
END_TEST

START_TEST(test_elicitation_url_mode_and_decline_policy_decline) {
	json_t *req = sep1034_request();
	char *why = NULL;
	json_t *a = mcp_elicit_answer(req, MCP_ELICIT_DECLINE, NULL, &why);
	ck_assert_str_eq(json_string_value(json_object_get(a, "action")), "decline");
	ck_assert_ptr_null(json_object_get(a, "content"));
	json_decref(a);
	free(why);
	json_t *url = json_pack("{s:s, s:s, s:s}", "mode", "url", "url", "https://x/",
	                        "message", "m");
	a = mcp_elicit_answer(url, MCP_ELICIT_DEFAULTS, NULL, &why);
	ck_assert_str_eq(json_string_value(json_object_get(a, "action")), "decline");
	ck_assert_ptr_nonnull(strstr(why, "URL"));
	json_decref(a);
	free(why);
	json_decref(url);
	json_decref(req);
}
END_TEST

static Suite *sse_suite(void) {
	Suite *s = suite_create("sse");
	TCase *tc = tcase_create("sse");
	tcase_add_test(tc, test_sse_events_are_the_same_whatever_the_split);
	tcase_add_test(tc, test_sse_event_without_data_is_not_dispatched);
	tcase_add_test(tc, test_sse_over_the_cap_breaks_the_stream);
	suite_add_tcase(s, tc);
	tc = tcase_create("headers");
	tcase_add_test(tc, test_header_references_expand_from_env_and_credentials);
	tcase_add_test(tc, test_header_reference_syntax_is_checked);
	suite_add_tcase(s, tc);
	tc = tcase_create("elicitation");
	tcase_add_test(tc, test_elicitation_defaults_fill_every_type);
	tcase_add_test(tc, test_elicitation_answers_are_checked_against_the_schema);
	tcase_add_test(tc, test_elicitation_url_mode_and_decline_policy_decline);
	tcase_add_test(tc, test_elicitation_enums_arrays_and_ranges_are_checked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(sse_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
