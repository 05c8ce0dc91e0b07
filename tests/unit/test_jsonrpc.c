/*
 * test_jsonrpc.c - JSON-RPC 2.0 parsing, building and param checks, as the
 * control socket, mcpjobctl and the MCP client use them.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonrpc.h"
#include "common/protocol.h"

static struct rpc_msg parse(const char *line) {
	struct rpc_msg m;
	rpc_parse(line, strlen(line), &m);
	return m;
}

START_TEST(test_request_with_integer_id_and_params) {
	struct rpc_msg m = parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"job.status\",\"params\":{\"job\":\"a\"}}");
	ck_assert_int_eq(m.kind, RPC_REQUEST);
	ck_assert_str_eq(m.method, "job.status");
	ck_assert_int_eq(json_integer_value(m.id), 7);
	ck_assert_str_eq(json_string_value(json_object_get(m.params, "job")), "a");
	rpc_msg_clear(&m);
}
END_TEST

START_TEST(test_id_zero_and_string_ids_are_requests) {
	struct rpc_msg m = parse("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"ping\"}");
	ck_assert_int_eq(m.kind, RPC_REQUEST);
	ck_assert_int_eq(json_integer_value(m.id), 0);
	rpc_msg_clear(&m);
	m = parse("{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"ping\"}");
	ck_assert_int_eq(m.kind, RPC_REQUEST);
	ck_assert_str_eq(json_string_value(m.id), "s1");
	rpc_msg_clear(&m);
}
END_TEST

START_TEST(test_notification_has_no_id) {
	struct rpc_msg m = parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
	ck_assert_int_eq(m.kind, RPC_NOTIFICATION);
	ck_assert_ptr_null(m.id);
	rpc_msg_clear(&m);
}
END_TEST

START_TEST(test_responses_and_error_replies) {
	struct rpc_msg m = parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"ok\":true}}");
	ck_assert_int_eq(m.kind, RPC_RESPONSE);
	ck_assert(json_is_true(json_object_get(m.result, "ok")));
	rpc_msg_clear(&m);
	m = parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}");
	ck_assert_int_eq(m.kind, RPC_ERROR_REPLY);
	rpc_msg_clear(&m);
}
END_TEST

START_TEST(test_unknown_fields_are_ignored) {
	struct rpc_msg m = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"extra\":[1,2]}");
	ck_assert_int_eq(m.kind, RPC_REQUEST);
	rpc_msg_clear(&m);
}
END_TEST

START_TEST(test_malformed_messages_get_the_right_codes) {
	static const struct { const char *line; int code; } cases[] = {
		{"not json", RPC_E_PARSE},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,", RPC_E_PARSE},
		{"[1,2]", RPC_E_INVALID_REQUEST},
		{"{\"id\":1,\"method\":\"m\"}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"m\"}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"m\"}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":3}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}", RPC_E_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"m\"}", RPC_E_PARSE},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", RPC_E_PARSE},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rpc_msg m = parse(cases[i].line);
		ck_assert_msg(m.kind == RPC_INVALID, "case %zu accepted", i);
		ck_assert_msg(m.err_code == cases[i].code, "case %zu: code %d", i, m.err_code);
		ck_assert(m.err_text[0] != '\0');
		rpc_msg_clear(&m);
	}
}
END_TEST

START_TEST(test_encode_is_one_line_even_with_newlines_inside) {
	json_t *id = json_integer(1);
	json_t *r = json_pack("{s:s}", "text", "line one\nline two");
	json_t *msg = rpc_result(id, r);
	size_t len;
	char *line = rpc_encode(msg, &len);
	ck_assert_uint_eq(len, strlen(line));
	ck_assert_ptr_eq(strchr(line, '\n'), line + len - 1);
	struct rpc_msg m;
	rpc_parse(line, len - 1, &m);
	ck_assert_int_eq(m.kind, RPC_RESPONSE);
	ck_assert_str_eq(json_string_value(json_object_get(m.result, "text")), "line one\nline two");
	rpc_msg_clear(&m);
	free(line);
	json_decref(msg);
	json_decref(r);
	json_decref(id);
}
END_TEST

START_TEST(test_error_builder_carries_code_message_and_data) {
	json_t *data = json_pack("{s:s}", "job", "x");
	json_t *e = rpc_error(NULL, RPC_E_NO_SUCH_JOB, "no such job \"x\"", data);
	json_t *err = json_object_get(e, "error");
	ck_assert(json_is_null(json_object_get(e, "id")));
	ck_assert_int_eq(json_integer_value(json_object_get(err, "code")), RPC_E_NO_SUCH_JOB);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(err, "data"), "job")), "x");
	json_decref(e);
	json_decref(data);
}
END_TEST

START_TEST(test_param_checks_name_the_param) {
	static const char *const allowed[] = {"job", "limit", "wait", NULL};
	json_t *p = json_pack("{s:s, s:s, s:i}", "job", "a", "limit", "five", "junk", 1);
	char *cause = NULL;
	const char *s;
	long long n;
	bool b;
	ck_assert_int_eq(rpc_params_check(p, allowed, &cause), -1);
	ck_assert_str_eq(cause, "unknown param \"junk\"");
	free(cause);
	ck_assert_int_eq(rpc_param_string(p, "job", true, &s, &cause), 0);
	ck_assert_str_eq(s, "a");
	ck_assert_int_eq(rpc_param_int(p, "limit", false, &n, &cause), -1);
	ck_assert_str_eq(cause, "param \"limit\" must be an integer");
	free(cause);
	ck_assert_int_eq(rpc_param_bool(p, "wait", true, &b, &cause), -1);
	ck_assert_str_eq(cause, "missing param \"wait\"");
	free(cause);
	n = 42;
	ck_assert_int_eq(rpc_param_int(NULL, "limit", false, &n, &cause), 0);
	ck_assert_int_eq(n, 42);
	json_t *arr = json_array();
	ck_assert_int_eq(rpc_params_check(arr, allowed, &cause), -1);
	free(cause);
	json_decref(arr);
	json_decref(p);
}
END_TEST

START_TEST(test_strings_with_nul_are_refused_naming_the_param) {
	char *cause = NULL;
	const char *v = NULL;
	struct rpc_msg m = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.hello\\u0000evil\"}");
	ck_assert_int_eq(m.kind, RPC_INVALID);
	ck_assert_int_eq(m.err_code, RPC_E_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(m.err_text, "NUL"));
	rpc_msg_clear(&m);
	m = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"job.status\","
	          "\"params\":{\"job\":\"tick\\u0000/../../etc\"}}");
	ck_assert_int_eq(m.kind, RPC_REQUEST);
	ck_assert_int_eq(rpc_param_string(m.params, "job", true, &v, &cause), -1);
	ck_assert_str_eq(cause, "param \"job\" must not contain a NUL character (\\u0000)");
	free(cause);
	cause = NULL;
	static const char *const allowed[] = {"job", "jobs", NULL};
	ck_assert_int_eq(rpc_params_check(m.params, allowed, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "\"job\""));
	free(cause);
	cause = NULL;
	rpc_msg_clear(&m);
	m = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\","
	          "\"params\":{\"jobs\":[\"a\",\"b\\u0000c\"]}}");
	ck_assert_int_eq(rpc_params_check(m.params, allowed, &cause), -1);
	ck_assert_str_eq(cause, "param \"jobs[1]\" must not contain a NUL character (\\u0000)");
	free(cause);
	rpc_msg_clear(&m);
	/* A NUL-free string still passes. */
	m = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"job.status\",\"params\":{\"job\":\"tick\"}}");
	ck_assert_int_eq(rpc_params_check(m.params, allowed, &cause), 0);
	ck_assert_int_eq(rpc_param_string(m.params, "job", true, &v, &cause), 0);
	ck_assert_str_eq(v, "tick");
	rpc_msg_clear(&m);
}
END_TEST

/* Found by fuzz_control: a parse error quoting half a UTF-8 sequence ended the daemon. */
START_TEST(test_error_with_invalid_utf8_in_its_message_still_encodes) {
	json_t *m = rpc_error(NULL, RPC_E_PARSE, "unexpected \xcb near the end", NULL);
	size_t len;
	char *line = rpc_encode(m, &len);
	ck_assert_ptr_nonnull(strstr(line, "\"message\":\"unexpected ? near the end\""));
	json_decref(m);
	free(line);
	line = rpc_encode(NULL, &len); /* a reply that could not be built is an error, not an exit */
	ck_assert_ptr_nonnull(strstr(line, "-32603"));
	free(line);
}
END_TEST

int main(void) {
	Suite *s = suite_create("jsonrpc");
	TCase *tc = tcase_create("messages");
	tcase_add_test(tc, test_request_with_integer_id_and_params);
	tcase_add_test(tc, test_id_zero_and_string_ids_are_requests);
	tcase_add_test(tc, test_notification_has_no_id);
	tcase_add_test(tc, test_responses_and_error_replies);
	tcase_add_test(tc, test_unknown_fields_are_ignored);
	tcase_add_test(tc, test_malformed_messages_get_the_right_codes);
	tcase_add_test(tc, test_encode_is_one_line_even_with_newlines_inside);
	tcase_add_test(tc, test_error_builder_carries_code_message_and_data);
	tcase_add_test(tc, test_param_checks_name_the_param);
	tcase_add_test(tc, test_strings_with_nul_are_refused_naming_the_param);
	tcase_add_test(tc, test_error_with_invalid_utf8_in_its_message_still_encodes);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
