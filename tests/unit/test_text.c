/*
 * test_text.c - common/text.c: the one copy of UTF-8 cutting, validation
 * and control-character scrubbing that the daemon and mcpjobctl share.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

START_TEST(test_cut_never_splits_a_sequence) {
	const char *s = "ab\xc3\xa9\xe2\x82\xac"; /* a b é € : 2 + 2 + 3 bytes */
	size_t len = strlen(s);
	ck_assert_uint_eq(text_utf8_cut(s, len, 100), len);
	ck_assert_uint_eq(text_utf8_cut(s, len, 7), 7);
	ck_assert_uint_eq(text_utf8_cut(s, len, 6), 4); /* inside the euro sign */
	ck_assert_uint_eq(text_utf8_cut(s, len, 5), 4);
	ck_assert_uint_eq(text_utf8_cut(s, len, 3), 2); /* inside é */
	ck_assert_uint_eq(text_utf8_cut(s, len, 0), 0);
}
END_TEST

START_TEST(test_width_counts_code_points) {
	ck_assert_uint_eq(text_utf8_width(""), 0);
	ck_assert_uint_eq(text_utf8_width("ab\xc3\xa9\xe2\x82\xac"), 4);
}
END_TEST

START_TEST(test_valid_replaces_bad_bytes_overlongs_surrogates_and_nuls) {
	/* stray continuation, overlong '/', surrogate U+D800, NUL, truncated é */
	const char in[] = "ok\x80-\xc0\xaf-\xed\xa0\x80-\0-\xc3";
	char *out = text_utf8_valid(in, sizeof in - 1);
	ck_assert_str_eq(out, "ok?-?" "?-?" "?" "?-?-?");
	free(out);
	out = text_utf8_valid("\xf0\x9f\x98\x80 fine", 9);
	ck_assert_str_eq(out, "\xf0\x9f\x98\x80 fine");
	free(out);
}
END_TEST

START_TEST(test_ok_says_what_valid_would_copy_unchanged) {
	const char *good[] = { "", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x98\x80" };
	const char *bad[] = { "\xc3", "a\xc3(", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		char *v = text_utf8_valid(good[i], strlen(good[i]));
		ck_assert_msg(text_utf8_ok(good[i], strlen(good[i])), "%zu", i);
		ck_assert_str_eq(v, good[i]);
		free(v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *v = text_utf8_valid(bad[i], strlen(bad[i]));
		ck_assert_msg(!text_utf8_ok(bad[i], strlen(bad[i])), "%zu", i);
		ck_assert_str_ne(v, bad[i]);
		free(v);
	}
	ck_assert(!text_utf8_ok("a\0b", 3)); /* a NUL inside the length */
}
END_TEST

START_TEST(test_scrub_replaces_every_control_and_del) {
	char s[] = "a\tb\nc\x1b[31md\x7f" "e";
	text_scrub(s, '?');
	ck_assert_str_eq(s, "a?b?c?[31md?e");
	char t[] = "one\ttwo\nthree\x01";
	text_scrub_line(t);
	ck_assert_str_eq(t, "one two three?");
	char u[] = "caf\xc3\xa9"; /* bytes >= 0x80 are not controls */
	text_scrub(u, '?');
	ck_assert_str_eq(u, "caf\xc3\xa9");
}
END_TEST

int main(void) {
	Suite *s = suite_create("text");
	TCase *tc = tcase_create("text");
	tcase_add_test(tc, test_cut_never_splits_a_sequence);
	tcase_add_test(tc, test_width_counts_code_points);
	tcase_add_test(tc, test_valid_replaces_bad_bytes_overlongs_surrogates_and_nuls);
	tcase_add_test(tc, test_ok_says_what_valid_would_copy_unchanged);
	tcase_add_test(tc, test_scrub_replaces_every_control_and_del);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
