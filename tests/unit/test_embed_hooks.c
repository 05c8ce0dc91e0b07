/*
 * test_embed_hooks.c - a harness that behaves like the OS background hooks
 * and drives the embedding API (mcpjob.h) the way an app's hook does:
 *
 *   BGAppRefreshTask (iOS)  the OS grants ~30 s and calls the task's
 *                           expirationHandler on its own queue when time is
 *                           up; the app asks run_due for a little less.
 *   WorkManager (Android)   a Worker may run 10 min; at the limit the OS calls
 *                           onStopped() on another thread; the app asks
 *                           runDue for 9 min.
 *
 * Each hook is one process wake-up: open, run_due, next_due, close. The time
 * scale is shortened (budgets in ms, not minutes) - the behaviour is the
 * point: a run cut off by the OS or by the budget is recorded "cancelled"
 * with the reason, and the next wake-up runs it once (catch-up), not once
 * per missed period.
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/embed.h"

static char dir[64], config[128], state[128], marker[128];

struct os_hook {
	const char *name;
	int64_t os_limit_ms;   /* when the OS calls expirationHandler / onStopped */
	int64_t app_budget_ms; /* what the app passes to run_due */
};

/* 30 s and 10 min, scaled down; the app asks for a little less than it gets. */
static const struct os_hook bg_app_refresh = {"BGAppRefreshTask", 400, 30000};
static const struct os_hook work_manager = {"WorkManager", 60000, 500};

struct os_timer {
	mcpjob_t engine;
	int64_t after_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool returned; /* run_due returned: the OS has nothing to stop */
	bool fired;
};

/* The OS's side: after the limit, call the handler on another thread. */
static void *os_expire(void *arg) {
	struct os_timer *t = arg;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += t->after_ms / 1000;
	until.tv_nsec += (t->after_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&t->lock);
	while (!t->returned && pthread_cond_timedwait(&t->cond, &t->lock, &until) == 0)
		;
	if (!t->returned) {
		t->fired = true;
		mcpjob_engine_expire(t->engine); /* expirationHandler / onStopped() */
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct wakeup {
	int started;   /* runs run_due started */
	bool os_fired; /* the OS had to stop us */
	int64_t next_due;
};

/* One wake-up of the app by @hook: open, run_due under the OS's limit, close. */
static struct wakeup wake(const struct os_hook *hook) {
	struct wakeup w = {0};
	char *error = NULL;
	mcpjob_t h = 0;
	int rc = mcpjob_engine_open(config, state, &h, &error);
	ck_assert_msg(rc == MCPJOB_OK, "%s: open: %s", hook->name, error ? error : "");
	struct os_timer t = {h, hook->os_limit_ms, PTHREAD_MUTEX_INITIALIZER,
	                     PTHREAD_COND_INITIALIZER, false, false};
	pthread_t os;
	pthread_create(&os, NULL, os_expire, &t);
	w.started = mcpjob_engine_run_due(h, hook->app_budget_ms, &error);
	ck_assert_msg(w.started >= 0, "%s: run_due: %s", hook->name, error ? error : "");
	pthread_mutex_lock(&t.lock);
	t.returned = true;
	pthread_cond_signal(&t.cond);
	pthread_mutex_unlock(&t.lock);
	pthread_join(os, NULL);
	w.os_fired = t.fired;
	ck_assert_int_eq(mcpjob_engine_next_due(h, &w.next_due, NULL), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
	return w;
}

/* The runs of @job, newest first, in a fresh engine (as the job screen shows them). */
static json_t *runs_of(const char *job) {
	mcpjob_t h = 0;
	char *json = NULL;
	ck_assert_int_eq(mcpjob_engine_open(config, state, &h, NULL), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_job_history(h, job, 100, 0, &json, NULL), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
	json_t *hist = json_loads(json, 0, NULL);
	mcpjob_free(json);
	json_t *runs = json_incref(json_object_get(hist, "runs"));
	json_decref(hist);
	return runs;
}

static const char *field(json_t *runs, size_t i, const char *key) {
	const char *s = json_string_value(json_object_get(json_array_get(runs, i), key));
	return s ? s : "";
}

static void setup(void) {
	snprintf(dir, sizeof dir, "/tmp/mcpjob-hooks-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(config, sizeof config, "%s/mcpjobd.json", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	snprintf(marker, sizeof marker, "%s/started-once", dir);
	/* "sync" takes a minute the first time (the OS cuts it off), then is quick. */
	char *json = xasprintf(
		"{\"jobs\": [{\"id\": \"sync\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\":"
		" [\"sh\", \"-c\", \"if [ -e %s ]; then echo synced; else touch %s; exec sleep 60; fi\"]}}},"
		" {\"id\": \"tick\", \"interval\": \"1s\", \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}",
		marker, marker);
	FILE *f = fopen(config, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
	free(json);
}

static void teardown(void) {
	char *cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
}

START_TEST(test_bgapprefresh_expiration_cancels_with_reason_then_catches_up_once) {
	struct wakeup w1 = wake(&bg_app_refresh);
	ck_assert(w1.os_fired); /* the sync outlived the OS's limit */
	ck_assert_int_eq(w1.started, 2);
	json_t *runs = runs_of("sync");
	ck_assert_int_eq(json_array_size(runs), 1);
	ck_assert_str_eq(field(runs, 0, "outcome"), "cancelled");
	ck_assert_ptr_nonnull(strstr(field(runs, 0, "message"), "(expired)"));
	json_decref(runs);

	/* The next wake-up (a new engine, as a new process would open it) catches up once. */
	struct wakeup w2 = wake(&bg_app_refresh);
	ck_assert(!w2.os_fired);
	runs = runs_of("sync");
	ck_assert_int_eq(json_array_size(runs), 2);
	ck_assert_str_eq(field(runs, 0, "outcome"), "success");
	ck_assert_str_eq(field(runs, 0, "message"), "synced");
	json_decref(runs);

	/* Caught up: a third wake-up does not run it again (next in 1h). */
	wake(&bg_app_refresh);
	runs = runs_of("sync");
	ck_assert_int_eq(json_array_size(runs), 2);
	json_decref(runs);
	ck_assert_int_gt(w2.next_due, 0);
}
END_TEST

START_TEST(test_workmanager_budget_cancels_with_reason_then_catches_up_once) {
	struct wakeup w1 = wake(&work_manager);
	ck_assert(!w1.os_fired); /* the app's own budget ended the pass before onStopped() */
	json_t *runs = runs_of("sync");
	ck_assert_int_eq(json_array_size(runs), 1);
	ck_assert_str_eq(field(runs, 0, "outcome"), "cancelled");
	ck_assert_str_eq(field(runs, 0, "message"), "the time budget for background work ran out");
	json_decref(runs);
	wake(&work_manager);
	runs = runs_of("sync");
	ck_assert_int_eq(json_array_size(runs), 2);
	ck_assert_str_eq(field(runs, 0, "outcome"), "success");
	json_decref(runs);
}
END_TEST

START_TEST(test_missed_periods_between_wakeups_run_once) {
	wake(&work_manager); /* tick runs, sync is cut off */
	json_t *runs = runs_of("tick");
	ck_assert_int_eq(json_array_size(runs), 1);
	json_decref(runs);
	/* Several 1 s periods pass while the app sleeps. */
	struct timespec ts = {3, 500 * 1000 * 1000};
	nanosleep(&ts, NULL);
	wake(&work_manager);
	runs = runs_of("tick");
	ck_assert_int_eq(json_array_size(runs), 2); /* once, not once per missed period */
	json_decref(runs);
}
END_TEST

int main(void) {
	Suite *s = suite_create("embed_hooks");
	TCase *tc = tcase_create("os hooks");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_bgapprefresh_expiration_cancels_with_reason_then_catches_up_once);
	tcase_add_test(tc, test_workmanager_budget_cancels_with_reason_then_catches_up_once);
	tcase_add_test(tc, test_missed_periods_between_wakeups_run_once);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
