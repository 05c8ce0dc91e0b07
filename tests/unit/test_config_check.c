/*
 * test_config_check.c - --check-config's look at the host
 * (config_load_check_host): users, groups, programs, working directories
 * and cleanup paths that would fail only at run time are reported at load,
 * each with its file and key path; a missing cleanup path is a warning.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/config.h"

static char tmpdir[64];

static void setup(void) {
	snprintf(tmpdir, sizeof tmpdir, "/tmp/mcpjob-check-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

/* Write @text (a printf format; %1$s is the temp dir) to @name under it. */
static char *write_file(const char *name, mode_t mode, const char *text) {
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, text, tmpdir);
	fclose(fp);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

struct result {
	int rc;
	char *errors;   /* joined, "" when none */
	char *warnings; /* joined, "" when none */
};

static struct result check(const char *text) {
	char *path = write_file("mcpjobd.json", 0644, text);
	struct config_errors errs = {0}, warns = {0};
	struct config *cfg = NULL;
	struct result r;
	r.rc = config_load_check_host(path, NULL, &cfg, &errs, &warns);
	ck_assert(r.rc == 0 ? cfg != NULL : cfg == NULL);
	ck_assert_int_eq(r.rc, errs.n == 0 ? 0 : -1);
	r.errors = config_errors_join(&errs);
	r.warnings = config_errors_join(&warns);
	config_errors_clear(&errs);
	config_errors_clear(&warns);
	config_free(cfg);
	free(path);
	return r;
}

static void result_free(struct result *r) {
	free(r->errors);
	free(r->warnings);
}

#define assert_has(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in:\n%s", (needle), (hay))

#define EXEC_JOB(id, argv) \
	"{\"id\": \"" id "\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": " argv "}}}"

START_TEST(test_a_config_the_host_can_run_has_no_errors_or_warnings) {
	free(write_file("tool", 0755, "#!/bin/sh\n"));
	struct result r = check(
		"{\"mcpServers\": {\"s\": {\"command\": \"cat\", \"cwd\": \"%1$s\"}},"
		" \"jobs\": ["
		"  {\"id\": \"a\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"true\"],"
		"   \"cwd\": \"%1$s\"}}},"
		"  {\"id\": \"b\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"tool\"],"
		"   \"env\": {\"PATH\": \"/nonexistent:%1$s\"}}}},"
		"  {\"id\": \"c\", \"interval\": \"1h\", \"action\": {\"cleanup\": {\"path\": \"%1$s\","
		"   \"max_age\": \"1d\"}}},"
		"  {\"id\": \"d\", \"interval\": \"1h\", \"action\": {\"mcp\": {\"server\": \"s\","
		"   \"tool\": \"t\"}}}]}");
	ck_assert_msg(r.rc == 0, "%s", r.errors);
	ck_assert_str_eq(r.errors, "");
	ck_assert_str_eq(r.warnings, "");
	result_free(&r);
}
END_TEST

START_TEST(test_unknown_user_and_group_named_with_their_key_path) {
	struct result r = check(
		"{\"jobs\": ["
		"  {\"id\": \"a\", \"interval\": \"1h\", \"user\": \"mcpjob-no-such-user\","
		"   \"action\": {\"exec\": {\"argv\": [\"true\"]}}},"
		"  {\"id\": \"b\", \"interval\": \"1h\", \"group\": \"mcpjob-no-such-group\","
		"   \"action\": {\"exec\": {\"argv\": [\"true\"]}}}],"
		" \"mcpServers\": {\"s\": {\"command\": \"cat\", \"user\": \"mcpjob-no-such-user\"}}}");
	ck_assert_int_eq(r.rc, -1);
	assert_has(r.errors, "mcpjobd.json: jobs[0] (a).user: no such user \"mcpjob-no-such-user\"");
	assert_has(r.errors, "mcpjobd.json: jobs[1] (b).group: no such group \"mcpjob-no-such-group\"");
	assert_has(r.errors, "mcpjobd.json: mcpServers.s.user: no such user \"mcpjob-no-such-user\"");
	result_free(&r);
}
END_TEST

START_TEST(test_missing_and_unexecutable_programs_refused) {
	free(write_file("plain", 0644, "#!/bin/sh\n"));
	struct result r = check(
		"{\"jobs\": [" EXEC_JOB("gone", "[\"%1$s/gone\"]") ","
		EXEC_JOB("plain", "[\"%1$s/plain\"]") ","
		EXEC_JOB("nopath", "[\"mcpjob-no-such-program\"]") "],"
		" \"mcpServers\": {\"s\": {\"command\": \"%1$s/server-gone\"}}}");
	ck_assert_int_eq(r.rc, -1);
	assert_has(r.errors, "jobs[0] (gone).action.exec.argv[0]: \"");
	assert_has(r.errors, "/gone\" does not exist");
	assert_has(r.errors, "jobs[1] (plain).action.exec.argv[0]: \"");
	assert_has(r.errors, "/plain\" is not executable by user");
	assert_has(r.errors, "(mode 0644");
	assert_has(r.errors, "jobs[2] (nopath).action.exec.argv[0]: \"mcpjob-no-such-program\" "
	                     "is not in PATH");
	assert_has(r.errors, "mcpServers.s.command: \"");
	assert_has(r.errors, "/server-gone\" does not exist");
	result_free(&r);
}
END_TEST

START_TEST(test_missing_cwd_refused_for_jobs_and_servers) {
	struct result r = check(
		"{\"jobs\": [{\"id\": \"a\", \"interval\": \"1h\", \"action\": {\"exec\": "
		"  {\"argv\": [\"true\"], \"cwd\": \"%1$s/nowhere\"}}}],"
		" \"mcpServers\": {\"s\": {\"command\": \"cat\", \"cwd\": \"%1$s/nowhere\"}}}");
	ck_assert_int_eq(r.rc, -1);
	assert_has(r.errors, "jobs[0] (a).action.exec.cwd: \"");
	assert_has(r.errors, "mcpServers.s.cwd: \"");
	assert_has(r.errors, "/nowhere\" does not exist (create it or fix the path)");
	result_free(&r);
}
END_TEST

START_TEST(test_missing_cleanup_path_is_only_a_warning) {
	struct result r = check(
		"{\"jobs\": [{\"id\": \"tidy\", \"interval\": \"1h\", \"action\": {\"cleanup\": "
		"  {\"path\": \"%1$s/cache\", \"max_age\": \"7d\"}}}]}");
	ck_assert_msg(r.rc == 0, "%s", r.errors);
	assert_has(r.warnings, "mcpjobd.json: jobs[0] (tidy).action.cleanup.path: warning: \"");
	assert_has(r.warnings, "/cache\" does not exist yet");
	result_free(&r);
}
END_TEST

START_TEST(test_dropin_problems_name_the_dropin) {
	char *dir = xasprintf("%s/jobs.d", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	free(dir);
	free(write_file("jobs.d/late.json", 0644,
	                "{\"jobs\": [" EXEC_JOB("late", "[\"%1$s/gone\"]") "]}"));
	struct result r = check("{\"jobs\": []}");
	ck_assert_int_eq(r.rc, -1);
	assert_has(r.errors, "jobs.d/late.json: ");
	assert_has(r.errors, "(late).action.exec.argv[0]: ");
	result_free(&r);
}
END_TEST

START_TEST(test_the_plain_load_does_not_look_at_the_host) {
	/* The daemon loads with config_load(): a program installed later must not
	 * stop it from starting (the run reports it). */
	char *path = write_file("mcpjobd.json", 0644, "{\"jobs\": [" EXEC_JOB("a", "[\"%1$s/gone\"]") "]}");
	struct config_errors errs = {0};
	struct config *cfg = NULL;
	ck_assert_int_eq(config_load(path, &cfg, &errs), 0);
	config_free(cfg);
	config_errors_clear(&errs);
	free(path);
}
END_TEST

START_TEST(test_program_judged_as_the_jobs_user_not_the_daemons) {
	if (geteuid() != 0)
		return; /* needs root to own files another user cannot use */
	free(write_file("rootonly", 0700, "#!/bin/sh\n"));
	char *locked = xasprintf("%s/locked", tmpdir);
	ck_assert_int_eq(mkdir(locked, 0700), 0);
	free(locked);
	free(write_file("locked/tool", 0755, "#!/bin/sh\n"));
	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
	struct result r = check(
		"{\"jobs\": ["
		"  {\"id\": \"mine\", \"interval\": \"1h\", \"user\": \"root\", \"action\": {\"exec\": "
		"   {\"argv\": [\"%1$s/rootonly\"]}}},"
		"  {\"id\": \"theirs\", \"interval\": \"1h\", \"user\": \"nobody\", \"action\": {\"exec\": "
		"   {\"argv\": [\"%1$s/rootonly\"]}}},"
		"  {\"id\": \"hidden\", \"interval\": \"1h\", \"user\": \"nobody\", \"action\": {\"exec\": "
		"   {\"argv\": [\"%1$s/locked/tool\"]}}}]}");
	ck_assert_int_eq(r.rc, -1);
	ck_assert_msg(strstr(r.errors, "(mine)") == NULL, "%s", r.errors);
	assert_has(r.errors, "jobs[1] (theirs).action.exec.argv[0]: \"");
	assert_has(r.errors, "/rootonly\" is not executable by user \"nobody\" (mode 0700, owner root:");
	assert_has(r.errors, "jobs[2] (hidden).action.exec.argv[0]: user \"nobody\" cannot reach \"");
	assert_has(r.errors, "no search permission on ");
	result_free(&r);
}
END_TEST

START_TEST(test_literal_client_secret_in_a_readable_file_is_a_warning) {
	/* check() writes mode 0644: everyone may read the secret. */
	struct result r = check("{\"mcpServers\": {\"lit\": {\"url\": \"https://h.example/mcp\","
	                        " \"auth\": {\"client_id\": \"i\", \"client_secret\": \"pl4in-SECRET\"}},"
	                        " \"ref\": {\"url\": \"https://h.example/mcp\", \"auth\": {"
	                        " \"client_id\": \"i\", \"client_secret\": \"${credential:s}\"}}}}");
	ck_assert_int_eq(r.rc, 0);
	assert_has(r.warnings, "mcpServers.lit.auth.client_secret: warning: the secret is written "
	                       "in a file everyone may read (mode 0644)");
	ck_assert_ptr_null(strstr(r.warnings, "mcpServers.ref"));
	ck_assert_ptr_null(strstr(r.warnings, "pl4in-SECRET"));
	result_free(&r);
}
END_TEST

static Suite *config_check_suite(void) {
	Suite *s = suite_create("config_check");
	TCase *tc = tcase_create("config_check");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_config_the_host_can_run_has_no_errors_or_warnings);
	tcase_add_test(tc, test_literal_client_secret_in_a_readable_file_is_a_warning);
	tcase_add_test(tc, test_unknown_user_and_group_named_with_their_key_path);
	tcase_add_test(tc, test_missing_and_unexecutable_programs_refused);
	tcase_add_test(tc, test_missing_cwd_refused_for_jobs_and_servers);
	tcase_add_test(tc, test_missing_cleanup_path_is_only_a_warning);
	tcase_add_test(tc, test_dropin_problems_name_the_dropin);
	tcase_add_test(tc, test_the_plain_load_does_not_look_at_the_host);
	tcase_add_test(tc, test_program_judged_as_the_jobs_user_not_the_daemons);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(config_check_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
