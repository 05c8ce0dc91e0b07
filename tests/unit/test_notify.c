/*
 * test_notify.c - the JSON pointer (RFC 6901) that a job's "notify.items"
 * names its notifications with, against the RFC's own examples.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>

#include "daemon/notify.h"

/* RFC 6901 section 5's document. */
static json_t *rfc_doc(void) {
	json_error_t err;
	json_t *doc = json_loads("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, "
	                         "\"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, "
	                         "\"m~n\": 8}",
	                         0, &err);
	ck_assert_msg(doc != NULL, "%s", err.text);
	return doc;
}

static long long int_at(const json_t *doc, const char *ptr) {
	const json_t *v = notify_json_pointer(doc, ptr);
	ck_assert_msg(json_is_integer(v), "\"%s\" names no integer", ptr);
	return json_integer_value(v);
}

START_TEST(test_pointer_resolves_every_example_of_rfc6901) {
	json_t *doc = rfc_doc();
	ck_assert_ptr_eq(notify_json_pointer(doc, ""), doc);
	ck_assert(json_equal((json_t *)notify_json_pointer(doc, "/foo"), json_object_get(doc, "foo")));
	ck_assert_str_eq(json_string_value(notify_json_pointer(doc, "/foo/0")), "bar");
	ck_assert_str_eq(json_string_value(notify_json_pointer(doc, "/foo/1")), "baz");
	ck_assert_int_eq(int_at(doc, "/"), 0);
	ck_assert_int_eq(int_at(doc, "/a~1b"), 1);
	ck_assert_int_eq(int_at(doc, "/c%d"), 2);
	ck_assert_int_eq(int_at(doc, "/e^f"), 3);
	ck_assert_int_eq(int_at(doc, "/g|h"), 4);
	ck_assert_int_eq(int_at(doc, "/i\\j"), 5);
	ck_assert_int_eq(int_at(doc, "/k\"l"), 6);
	ck_assert_int_eq(int_at(doc, "/ "), 7);
	ck_assert_int_eq(int_at(doc, "/m~0n"), 8);
	json_decref(doc);
}
END_TEST

START_TEST(test_pointer_names_nothing_for_missing_or_malformed_paths) {
	json_t *doc = rfc_doc();
	const char *const none[] = {"foo", "/nope", "/foo/2", "/foo/01", "/foo/-", "/foo/x",
	                            "/foo/0/deeper", "/a/b", NULL};
	for (int i = 0; none[i]; i++)
		ck_assert_msg(notify_json_pointer(doc, none[i]) == NULL, "\"%s\" named something",
		              none[i]);
	ck_assert_ptr_null(notify_json_pointer(doc, NULL));
	ck_assert_ptr_null(notify_json_pointer(NULL, "/foo"));
	json_decref(doc);
}
END_TEST

START_TEST(test_pointer_finds_the_demo_servers_notifications) {
	json_t *sc = json_pack("{s:[{s:s, s:s}]}", "notifications", "title", "Welcome", "body", "hi");
	const json_t *items = notify_json_pointer(sc, "/notifications");
	ck_assert(json_is_array(items));
	ck_assert_str_eq(json_string_value(notify_json_pointer(sc, "/notifications/0/title")),
	                 "Welcome");
	json_decref(sc);
}
END_TEST

int main(void) {
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("json_pointer");
	tcase_add_test(tc, test_pointer_resolves_every_example_of_rfc6901);
	tcase_add_test(tc, test_pointer_names_nothing_for_missing_or_malformed_paths);
	tcase_add_test(tc, test_pointer_finds_the_demo_servers_notifications);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
