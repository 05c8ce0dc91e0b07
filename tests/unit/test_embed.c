/*
 * test_embed.c - the engine as the mobile hooks drive it: run what is due
 * within a budget, expire from another thread (as iOS's expiration handler
 * does), ask for the next wake-up, and find the history in the store.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/embed.h"
#include "daemon/store.h"

static char dir[64], config[128], state[128];

static void write_config(const char *json) {
	FILE *f = fopen(config, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
}

static void setup(void) {
	snprintf(dir, sizeof dir, "/tmp/mcpjob-embed-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(config, sizeof config, "%s/mcpjobd.json", dir);
	snprintf(state, sizeof state, "%s/state", dir);
}

static void teardown(void) {
	char *cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
}

struct last {
	enum run_outcome outcome;
	char message[200];
	int n;
};

static int keep_last(const struct run_record *run, void *arg) {
	struct last *l = arg;
	if (l->n++ == 0) {
		l->outcome = run->outcome;
		snprintf(l->message, sizeof l->message, "%s", run->message ? run->message : "");
	}
	return 0;
}

static struct last last_run(const char *job) {
	struct store *st;
	char *cause = NULL;
	struct last l = {0};
	ck_assert_int_eq(store_open(state, &st, &cause), 0);
	ck_assert_int_eq(store_history(st, job, 0, 0, keep_last, &l, &cause), 0);
	store_close(st);
	return l;
}

static const char *const two_jobs =
	"{\"jobs\": ["
	"{\"id\": \"quick\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"true\"]}}},"
	"{\"id\": \"slow\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"sleep\", \"60\"]}}},"
	"{\"id\": \"later\", \"interval\": \"2h\", \"initial_delay\": \"1h\","
	" \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}";

START_TEST(test_run_due_within_budget_then_returns) {
	char *error = NULL;
	write_config(two_jobs);
	struct mcpjob_engine *m = mcpjob_engine_open(config, state, &error);
	ck_assert_msg(m != NULL, "%s", error ? error : "");
	int64_t t0 = time_mono_ms();
	ck_assert_int_eq(mcpjob_engine_run_due(m, 1000), 2);
	int64_t took = time_mono_ms() - t0;
	ck_assert_int_lt(took, 8000);
	int64_t next = mcpjob_engine_next_due(m);
	ck_assert_int_gt(next, time_now_ms() + 30 * 60 * 1000); /* "later" in ~1h, the others in 1h */
	/* Nothing is due now: a second wake-up returns at once. */
	ck_assert_int_eq(mcpjob_engine_run_due(m, 1000), 0);
	mcpjob_engine_close(m);
	struct last q = last_run("quick"), s = last_run("slow");
	ck_assert_int_eq(q.outcome, OUTCOME_SUCCESS);
	ck_assert_int_eq(s.outcome, OUTCOME_CANCELLED);
	ck_assert_ptr_nonnull(strstr(s.message, "time budget"));
	ck_assert_int_eq(last_run("later").n, 0);
}
END_TEST

static void *expire_soon(void *arg) {
	struct timespec ts = {0, 300 * 1000 * 1000};
	nanosleep(&ts, NULL);
	mcpjob_engine_expire(arg);
	return NULL;
}

START_TEST(test_expire_from_another_thread_stops_and_records) {
	char *error = NULL;
	write_config(two_jobs);
	struct mcpjob_engine *m = mcpjob_engine_open(config, state, &error);
	ck_assert_ptr_nonnull(m);
	pthread_t t;
	pthread_create(&t, NULL, expire_soon, m);
	int64_t t0 = time_mono_ms();
	mcpjob_engine_run_due(m, 60000);
	ck_assert_int_lt(time_mono_ms() - t0, 10000);
	pthread_join(t, NULL);
	mcpjob_engine_close(m);
	struct last s = last_run("slow");
	ck_assert_int_eq(s.outcome, OUTCOME_CANCELLED);
	ck_assert_ptr_nonnull(strstr(s.message, "expired"));
}
END_TEST

START_TEST(test_device_reported_by_the_host_gates_jobs) {
	char *error = NULL;
	write_config("{\"jobs\": [{\"id\": \"sync\", \"interval\": \"1h\","
	             " \"constraints\": {\"network\": \"unmetered\"},"
	             " \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}");
	struct mcpjob_engine *m = mcpjob_engine_open(config, state, &error);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(mcpjob_engine_set_device(m, "network", "metered", &error), 0);
	ck_assert_int_eq(mcpjob_engine_run_due(m, 500), 0);
	ck_assert_int_eq(mcpjob_engine_set_device(m, "network", "unmetered", &error), 0);
	ck_assert_int_eq(mcpjob_engine_run_due(m, 2000), 1);
	ck_assert_int_eq(mcpjob_engine_set_device(m, "network", "wifi", &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "network"));
	free(error);
	mcpjob_engine_close(m);
	ck_assert_int_eq(last_run("sync").outcome, OUTCOME_SUCCESS);
}
END_TEST

START_TEST(test_bad_config_is_an_error_not_a_crash) {
	char *error = NULL;
	write_config("{\"jobs\": [{\"id\": \"x\", \"interval\": \"15x\"}]}");
	ck_assert_ptr_null(mcpjob_engine_open(config, state, &error));
	ck_assert_ptr_nonnull(strstr(error, "15x"));
	free(error);
}
END_TEST

int main(void) {
	Suite *s = suite_create("embed");
	TCase *tc = tcase_create("mobile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_run_due_within_budget_then_returns);
	tcase_add_test(tc, test_expire_from_another_thread_stops_and_records);
	tcase_add_test(tc, test_device_reported_by_the_host_gates_jobs);
	tcase_add_test(tc, test_bad_config_is_an_error_not_a_crash);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
