/*
 * test_events.c - who gets which event: clients get every type (or their
 * jobs), the daemon's own listeners only the types they named and the jobs
 * their filter takes, events_wanted() says no when nobody would get one
 * (so the emitters build nothing), and the run watcher sees each record.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/protocol.h"
#include "daemon/events.h"
#include "daemon/store.h"

struct seen {
	int n;
	char type[32];
	char job[32];
};

static void record(void *arg, const json_t *msg) {
	struct seen *s = arg;
	const json_t *p = json_object_get(msg, "params");
	s->n++;
	snprintf(s->type, sizeof s->type, "%s", json_string_value(json_object_get(p, "type")));
	const char *job = json_string_value(json_object_get(p, "job"));
	snprintf(s->job, sizeof s->job, "%s", job ? job : "");
}

static const char *const finished_only[] = {EVENT_RUN_FINISHED, NULL};
static const char *const nothing[] = {NULL};

START_TEST(test_typed_listener_gets_only_its_types_and_wants_nothing_else) {
	struct events *ev = events_new();
	struct seen s = {0};
	ck_assert(!events_wanted(ev, EVENT_JOB_STATE, "a"));
	events_subscribe_types(ev, finished_only, record, &s);
	ck_assert(events_wanted(ev, EVENT_RUN_FINISHED, "a"));
	ck_assert(!events_wanted(ev, EVENT_JOB_STATE, "a"));
	ck_assert(!events_wanted(ev, EVENT_RUN_STARTED, "a"));
	events_emit(ev, EVENT_JOB_STATE, "a", json_pack("{s:s}", "state", "running"));
	ck_assert_int_eq(s.n, 0);
	events_emit(ev, EVENT_RUN_FINISHED, "a", json_pack("{s:i}", "run_id", 1));
	ck_assert_int_eq(s.n, 1);
	ck_assert_str_eq(s.type, EVENT_RUN_FINISHED);
	ck_assert_str_eq(s.job, "a");
	events_free(ev);
}
END_TEST

START_TEST(test_client_subscriber_still_gets_every_type) {
	struct events *ev = events_new();
	struct seen typed = {0}, client = {0};
	struct events_sub *t = events_subscribe_types(ev, nothing, record, &typed);
	events_subscribe(ev, NULL, record, &client);
	ck_assert(events_wanted(ev, EVENT_RUN_STARTED, "a"));
	events_emit(ev, EVENT_RUN_STARTED, "a", NULL);
	events_emit(ev, EVENT_JOB_STATE, "b", NULL);
	ck_assert_int_eq(client.n, 2);
	ck_assert_int_eq(typed.n, 0);
	/* Its types may change (metrics, when a reload sets a textfile). */
	events_sub_set_types(t, finished_only);
	events_emit(ev, EVENT_RUN_FINISHED, "a", NULL);
	ck_assert_int_eq(typed.n, 1);
	ck_assert_int_eq(client.n, 3);
	events_free(ev);
}
END_TEST

static bool only_job_b(void *arg, const char *job_id) {
	(void)arg;
	return job_id != NULL && strcmp(job_id, "b") == 0;
}

START_TEST(test_filter_keeps_other_jobs_events_unbuilt) {
	struct events *ev = events_new();
	struct seen s = {0};
	struct events_sub *sub = events_subscribe_types(ev, finished_only, record, &s);
	events_sub_set_filter(sub, only_job_b);
	ck_assert(!events_wanted(ev, EVENT_RUN_FINISHED, "a"));
	ck_assert(events_wanted(ev, EVENT_RUN_FINISHED, "b"));
	events_emit(ev, EVENT_RUN_FINISHED, "a", NULL);
	events_emit(ev, EVENT_RUN_FINISHED, "b", NULL);
	ck_assert_int_eq(s.n, 1);
	ck_assert_str_eq(s.job, "b");
	events_unsubscribe(ev, sub);
	ck_assert(!events_wanted(ev, EVENT_RUN_FINISHED, "b"));
	events_free(ev);
}
END_TEST

static void count_run(void *arg, const struct run_record *run) {
	uint64_t *last = arg;
	*last = run->run_id;
}

START_TEST(test_run_watcher_sees_each_record_without_subscribers) {
	struct events *ev = events_new();
	uint64_t last = 0;
	struct run_record rec = {.run_id = 42, .job_id = "a", .outcome = OUTCOME_SUCCESS};
	events_run_ended(ev, &rec); /* no watcher: nothing happens */
	events_watch_runs(ev, count_run, &last);
	ck_assert(!events_wanted(ev, EVENT_RUN_FINISHED, "a"));
	events_run_ended(ev, &rec);
	ck_assert_uint_eq(last, 42);
	events_watch_runs(ev, NULL, NULL);
	rec.run_id = 43;
	events_run_ended(ev, &rec);
	ck_assert_uint_eq(last, 42);
	events_free(ev);
}
END_TEST

int main(void) {
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("delivery");
	tcase_add_test(tc, test_typed_listener_gets_only_its_types_and_wants_nothing_else);
	tcase_add_test(tc, test_client_subscriber_still_gets_every_type);
	tcase_add_test(tc, test_filter_keeps_other_jobs_events_unbuilt);
	tcase_add_test(tc, test_run_watcher_sees_each_record_without_subscribers);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
