/*
 * test_jsontext.c - the JSON text writer (common/jsontext.h) writes what
 * jansson's compact encoding writes, value for value; and the run record as
 * text (store_run_text, what job.history sends) is byte for byte
 * json_dumps(store_run_to_json()) for every shape a record takes.
 * (The job status as text is compared in test_engine.c, in every state the
 * engine tests reach.)
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsontext.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/job.h"
#include "daemon/store.h"

/* json_dumps() of @v (a new reference, taken), as the control socket encodes. */
static char *dumps(json_t *v) {
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	ck_assert_ptr_nonnull(s);
	json_decref(v);
	return s;
}

static void assert_text(struct jsontext *t, char *want) {
	size_t len;
	char *got = jsontext_take(t, &len);
	ck_assert_uint_eq(len, strlen(got));
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
}

START_TEST(test_every_ascii_character_is_escaped_as_jansson_escapes_it) {
	char s[128];
	for (int i = 1; i < 128; i++)
		s[i - 1] = (char)i;
	s[127] = '\0';
	struct jsontext t;
	jsontext_init(&t);
	jsontext_str(&t, s);
	assert_text(&t, dumps(json_string(s)));
}
END_TEST

START_TEST(test_utf8_and_nul_are_written_as_jansson_writes_them) {
	static const char *const texts[] = {
		"caf\xc3\xa9",
		"\xe2\x82\xac 5",
		"\xf0\x9f\x98\x80 smile",
		"\xe2\x80\xa8 line sep",
		"a/b",
		"",
		"\x7f del",
		"\xef\xbf\xbf",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct jsontext t;
		jsontext_init(&t);
		jsontext_str(&t, texts[i]);
		assert_text(&t, dumps(json_string(texts[i])));
	}
	struct jsontext t;
	jsontext_init(&t);
	jsontext_strn(&t, "a\0b", 3);
	assert_text(&t, dumps(json_stringn("a\0b", 3)));
}
END_TEST

START_TEST(test_invalid_utf8_becomes_one_replacement_character_per_bad_byte) {
	struct jsontext t;
	jsontext_init(&t);
	/* a lone continuation, an overlong '/', a surrogate, a cut sequence, 0xff */
	jsontext_str(&t, "a\x80"
	                 "b\xc0\xaf"
	                 "c\xed\xa0\x80"
	                 "d\xe2\x82"
	                 "e\xff");
	char *got = jsontext_take(&t, NULL);
	ck_assert_str_eq(got, "\"a\xef\xbf\xbd"
	                      "b\xef\xbf\xbd\xef\xbf\xbd"
	                      "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                      "d\xef\xbf\xbd\xef\xbf\xbd"
	                      "e\xef\xbf\xbd\"");
	/* and jansson takes what came out */
	json_t *back = json_loads(got, JSON_DECODE_ANY, NULL);
	ck_assert_ptr_nonnull(back);
	json_decref(back);
	free(got);
}
END_TEST

START_TEST(test_numbers_are_written_as_jansson_writes_them) {
	static const double reals[] = { 0.0,      -0.0,    0.5,           1.0,
		                        60.0,     86400.0, 0.1,           1.5e-7,
		                        1e300,    -2.25,   123456789.125, 1e21,
		                        3.0e-310, 1.0 / 3, -7.0,          999999999999999.0,
		                        1e15,     1e16,    1e17,          123456789012345678.0 };
	static const long long ints[] = { 0, 1, -1, 42, LLONG_MAX, LLONG_MIN };
	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
		struct jsontext t;
		jsontext_init(&t);
		jsontext_real(&t, reals[i]);
		assert_text(&t, dumps(json_real(reals[i])));
	}
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		struct jsontext t;
		jsontext_init(&t);
		jsontext_int(&t, ints[i]);
		assert_text(&t, dumps(json_integer(ints[i])));
	}
	struct jsontext t;
	jsontext_init(&t);
	jsontext_real(&t, NAN);
	assert_text(&t, xstrdup("null"));
}
END_TEST

START_TEST(test_nested_values_get_their_separators) {
	struct jsontext t;
	jsontext_init(&t);
	jsontext_obj_open(&t);
	jsontext_key(&t, "a");
	jsontext_arr_open(&t);
	jsontext_int(&t, 1);
	jsontext_obj_open(&t);
	jsontext_obj_close(&t);
	jsontext_arr_open(&t);
	jsontext_arr_close(&t);
	jsontext_null(&t);
	jsontext_arr_close(&t);
	jsontext_key(&t, "k\"ey");
	jsontext_bool(&t, true);
	jsontext_key(&t, "t");
	jsontext_time(&t, 1767268800123LL);
	jsontext_key(&t, "z");
	jsontext_time(&t, 0);
	jsontext_key(&t, "j");
	json_t *j = json_pack("{s:[i,s], s:f}", "x", 1, "y", "2", "r", 0.5);
	jsontext_json(&t, j);
	jsontext_key(&t, "e");
	jsontext_encoded(&t, "{\"pre\":1}", 9);
	jsontext_obj_close(&t);
	json_t *want = json_pack("{s:[i,{},[],n], s:b, s:s, s:n, s:O, s:{s:i}}", "a", 1, "k\"ey", 1,
	                         "t", "2026-01-01T12:00:00.123Z", "z", "j", j, "e", "pre", 1);
	json_decref(j);
	assert_text(&t, dumps(want));
}
END_TEST

/* Trees walked by jsontext_json()/jsontext_dumps(): what json_dumps() writes. */
START_TEST(test_trees_are_walked_as_jansson_dumps_them) {
	const char *texts[] = {
	    "{}", "[]", "[[],{},[{}]]", "\"just a string\"", "-0.0", "1e300", "null",
	    "{\"content\":[{\"type\":\"text\",\"text\":\"3 new\\nnotifications\"}],"
	    "\"structuredContent\":{\"notifications\":[{\"title\":\"Welcome\",\"payload\":"
	    "{\"kind\":\"welcome\",\"n\":-9223372036854775808,\"r\":0.1,\"big\":1.5e-300}},"
	    "{\"ok\":true,\"no\":false,\"none\":null,\"\\u00e9t\\u00e9\":\"\\u2603 \\ud83d\\ude00\","
	    "\"esc\\\"key\\\\\":\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f/\"}]}}",
	};
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		json_t *v = json_loads(texts[i], JSON_DECODE_ANY, NULL);
		ck_assert_ptr_nonnull(v);
		struct jsontext t;
		jsontext_init(&t);
		jsontext_arr_open(&t);
		jsontext_int(&t, 1);
		jsontext_json(&t, v);
		jsontext_arr_close(&t);
		assert_text(&t, dumps(json_pack("[i,O]", 1, v)));
		size_t len;
		char *got = jsontext_dumps(v, &len);
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		ck_assert_str_eq(got, want);
		ck_assert_uint_eq(len, strlen(want));
		free(got);
		free(want);
		json_decref(v);
	}
	/* Keys in jansson's order after deletes and re-inserts; a string with a NUL. */
	json_t *o = json_object();
	json_object_set_new(o, "b", json_integer(1));
	json_object_set_new(o, "a", json_stringn("x\0y", 3));
	json_object_set_new(o, "c", json_real(2.5));
	json_object_del(o, "b");
	json_object_set_new(o, "b", json_true());
	json_object_set_new(o, "a", json_integer(7)); /* replaced: keeps its place */
	char *got = jsontext_dumps(o, NULL), *want = json_dumps(o, JSON_COMPACT);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	json_decref(o);
}
END_TEST

/* A tree deeper than any parse makes (as a loop would be) is refused, not recursed. */
START_TEST(test_a_tree_too_deep_is_null_not_a_crash) {
	json_t *v = json_array();
	for (int i = 0; i < JSONTEXT_DEPTH_MAX + 10; i++) {
		json_t *outer = json_array();
		json_array_append_new(outer, v);
		v = outer;
	}
	ck_assert_ptr_null(jsontext_dumps(v, NULL));
	struct jsontext t;
	jsontext_init(&t);
	jsontext_arr_open(&t);
	jsontext_json(&t, v);
	jsontext_int(&t, 2);
	jsontext_arr_close(&t);
	assert_text(&t, xstrdup("[null,2]"));
	json_decref(v);
}
END_TEST

START_TEST(test_times_are_written_as_time_format_rfc3339_writes_them) {
	static const int64_t edges[] = { 1,
		                         -1,
		                         999,
		                         -999,
		                         -1000,
		                         -1001,
		                         86399999,
		                         86400000,
		                         951782400000LL /* 2000-02-29 */,
		                         4107542399999LL,
		                         -62135596800000LL,
		                         -62135596800001LL,
		                         INT64_MIN,
		                         253402300799999LL,
		                         253402300800000LL,
		                         INT64_MAX };
	uint64_t x = 88172645463325252ULL;
	int64_t ms = 0;
	/* One buffer for all: the date kept from one time to the next must be
	 * the right one, on the same day, across midnight and far away. */
	struct jsontext t;
	json_t *want = json_array();
	char buf[TIME_RFC3339_LEN];
	jsontext_init(&t);
	jsontext_arr_open(&t);
	for (size_t i = 0; i < sizeof edges / sizeof edges[0] + 30000; i++) {
		if (i < sizeof edges / sizeof edges[0]) {
			ms = edges[i];
		} else if (i % 3 != 0 && ms > -65000000000000LL && ms < 265000000000000LL) {
			/* a few minutes on: mostly the same day */
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			ms += (int64_t)(x % 600000);
		} else { /* xorshift over years 0001..9999 and a little beyond */
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			ms = (int64_t)(x % 330000000000000ULL) - 65000000000000LL;
		}
		jsontext_time(&t, ms);
		json_array_append_new(want, json_string(time_format_rfc3339(ms, buf)));
	}
	jsontext_arr_close(&t);
	assert_text(&t, dumps(want));
}
END_TEST

/* --- run records ------------------------------------------------------------ */

static void assert_run_text_is_its_json(const struct run_record *run) {
	struct jsontext t;
	jsontext_init(&t);
	store_run_text(run, &t);
	assert_text(&t, dumps(store_run_to_json(run)));
}

START_TEST(test_a_run_record_as_text_is_its_json_in_every_shape) {
	struct run_record run = {
		.run_id = 41,
		.job_id = "backup",
		.trigger = TRIGGER_SCHEDULE,
		.attempt = 1,
		.started_ms = 1767268800000LL,
		.finished_ms = 0,
		.outcome = OUTCOME_RUNNING,
	};
	assert_run_text_is_its_json(&run); /* running: no finish, no duration */
	run.finished_ms = run.started_ms + 1234;
	run.outcome = OUTCOME_SUCCESS;
	run.message = "exit 0";
	run.output = "line 1\nline 2\t\"quoted\" \\ \x01\x1f caf\xc3\xa9";
	assert_run_text_is_its_json(&run);
	run.finished_ms = run.started_ms - 5000; /* the clock stepped back */
	run.outcome = OUTCOME_FAILURE;
	assert_run_text_is_its_json(&run);
	run.trigger = TRIGGER_AFTER;
	run.trigger_ref = "fetch:7";
	run.output = "bad \xff bytes \xc3"; /* child output is any bytes */
	assert_run_text_is_its_json(&run);
	run.trigger_ref = NULL; /* an after-run whose reference was lost */
	run.message = NULL;
	run.output = NULL;
	assert_run_text_is_its_json(&run);
	run.trigger = TRIGGER_MANUAL;
	run.structured =
	        json_pack("{s:[i,f,s], s:{s:b}}", "items", 1, 2.5, "x\ny", "deep", "ok", 1);
	run.input = json_pack("{s:{s:s}}", "env", "NAME", "v\u00e9");
	assert_run_text_is_its_json(&run);
	run.task_id = "task-\u00e9 \"1\""; /* a run on an MCP task names it */
	assert_run_text_is_its_json(&run);
	run.task_id = NULL;
	json_decref(run.structured);
	json_decref(run.input);
	run.structured = NULL;
	run.input = NULL;
	/* The longest a string can become: 6 bytes per control byte, 3 per bad
	 * byte (ASan sees a write past the room reserved for it). */
	char *worst = xmalloc(3001);
	for (int i = 0; i < 3000; i++)
		worst[i] = i % 3 == 0 ? '\x01' : i % 3 == 1 ? '\xff' : '"';
	worst[3000] = '\0';
	run.output = worst;
	run.message = worst + 1500;
	char ref[600]; /* valid UTF-8: the tree refuses a reference that is not */
	for (int i = 0; i < 599; i++)
		ref[i] = i % 2 ? '\x02' : '\\';
	ref[599] = '\0';
	run.trigger = TRIGGER_AFTER;
	run.trigger_ref = ref;
	run.job_id = worst + 2999;
	assert_run_text_is_its_json(&run);
	run.job_id = "backup";
	run.trigger_ref = NULL;
	run.output = NULL;
	run.message = NULL;
	free(worst);
	run.trigger = 99; /* damaged: names as "unknown" */
	run.outcome = OUTCOME_INTERRUPTED;
	run.started_ms = INT64_MIN;
	run.finished_ms = INT64_MAX;
	assert_run_text_is_its_json(&run);
}
END_TEST

int main(void) {
	Suite *s = suite_create("jsontext");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_every_ascii_character_is_escaped_as_jansson_escapes_it);
	tcase_add_test(tc, test_utf8_and_nul_are_written_as_jansson_writes_them);
	tcase_add_test(tc, test_invalid_utf8_becomes_one_replacement_character_per_bad_byte);
	tcase_add_test(tc, test_numbers_are_written_as_jansson_writes_them);
	tcase_add_test(tc, test_nested_values_get_their_separators);
	tcase_add_test(tc, test_trees_are_walked_as_jansson_dumps_them);
	tcase_add_test(tc, test_a_tree_too_deep_is_null_not_a_crash);
	tcase_add_test(tc, test_times_are_written_as_time_format_rfc3339_writes_them);
	tcase_add_test(tc, test_a_run_record_as_text_is_its_json_in_every_shape);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
