/*
 * test_schedule.c - schedule arithmetic, the scheduler's heap and the
 * event fan-out.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "daemon/events.h"
#include "daemon/heap.h"
#include "daemon/sched.h"

#define MIN 60000LL

START_TEST(test_next_regular_keeps_the_grid_after_a_late_start) {
	/* Due 12:00 every 15 min, ran late at 12:07: next 12:15, not 12:22. */
	int64_t noon = 720 * MIN;
	ck_assert_int_eq(sched_next_regular(noon, 15 * MIN, noon + 7 * MIN), noon + 15 * MIN);
}
END_TEST

START_TEST(test_next_regular_consumes_the_due_time_itself) {
	int64_t t = 1000 * MIN;
	ck_assert_int_eq(sched_next_regular(t, 15 * MIN, t), t + 15 * MIN);
}
END_TEST

START_TEST(test_next_regular_after_long_downtime_is_one_step_past_now) {
	/* Down for 10 h: no backlog of 40 runs, just the next grid point. */
	int64_t t = 1000 * MIN, now = t + 600 * MIN + 1;
	int64_t next = sched_next_regular(t, 15 * MIN, now);
	ck_assert_int_gt(next, now);
	ck_assert_int_le(next, now + 15 * MIN);
	ck_assert_int_eq((next - t) % (15 * MIN), 0);
}
END_TEST

START_TEST(test_next_regular_future_anchor_is_kept) {
	int64_t now = 1000 * MIN;
	ck_assert_int_eq(sched_next_regular(now + 5 * MIN, 15 * MIN, now), now + 5 * MIN);
}
END_TEST

START_TEST(test_next_regular_clamps_an_anchor_beyond_one_interval) {
	/* The interval was shortened from 24 h to 1 h: don't wait a day. */
	int64_t now = 1000 * MIN;
	ck_assert_int_eq(sched_next_regular(now + 1440 * MIN, 60 * MIN, now), now + 60 * MIN);
	ck_assert_int_eq(sched_next_regular(0, 60 * MIN, now), now + 60 * MIN);
}
END_TEST

START_TEST(test_window_start_applies_flex_except_to_retries) {
	ck_assert_int_eq(sched_window_start(100 * MIN, 5 * MIN, TRIGGER_SCHEDULE), 95 * MIN);
	ck_assert_int_eq(sched_window_start(100 * MIN, 5 * MIN, TRIGGER_CATCH_UP), 95 * MIN);
	ck_assert_int_eq(sched_window_start(100 * MIN, 5 * MIN, TRIGGER_RETRY), 100 * MIN);
}
END_TEST

START_TEST(test_catchup_offsets_spread_evenly_and_start_at_zero) {
	ck_assert_int_eq(sched_catchup_offset(0, 1, 10000), 0);
	ck_assert_int_eq(sched_catchup_offset(0, 4, 10000), 0);
	ck_assert_int_eq(sched_catchup_offset(1, 4, 10000), 2500);
	ck_assert_int_eq(sched_catchup_offset(3, 4, 10000), 7500);
	ck_assert_int_eq(sched_catchup_offset(3, 4, 0), 0);
	for (size_t i = 0; i < 100; i++)
		ck_assert_int_lt(sched_catchup_offset(i, 100, 10000), 10000);
}
END_TEST

START_TEST(test_exponential_backoff_doubles_and_clamps) {
	struct retry_policy p = {5, BACKOFF_EXPONENTIAL, 30000, 3600000};
	ck_assert_int_eq(sched_retry_delay(&p, 1), 30000);
	ck_assert_int_eq(sched_retry_delay(&p, 2), 60000);
	ck_assert_int_eq(sched_retry_delay(&p, 3), 120000);
	ck_assert_int_eq(sched_retry_delay(&p, 8), 3600000);
	ck_assert_int_eq(sched_retry_delay(&p, 1000), 3600000);
	ck_assert_int_eq(sched_retry_delay(&p, 0), 30000);
}
END_TEST

START_TEST(test_linear_backoff_grows_by_initial_and_clamps) {
	struct retry_policy p = {5, BACKOFF_LINEAR, 10000, 35000};
	ck_assert_int_eq(sched_retry_delay(&p, 1), 10000);
	ck_assert_int_eq(sched_retry_delay(&p, 2), 20000);
	ck_assert_int_eq(sched_retry_delay(&p, 3), 30000);
	ck_assert_int_eq(sched_retry_delay(&p, 4), 35000);
	ck_assert_int_eq(sched_retry_delay(&p, 2147483647), 35000);
}
END_TEST

/* --- heap ---------------------------------------------------------------- */

struct item {
	int64_t key;
	uint32_t idx;
};

static int64_t item_key(const void *p) {
	return ((const struct item *)p)->key;
}

static uint32_t *item_index(void *p) {
	return &((struct item *)p)->idx;
}

START_TEST(test_heap_pops_in_key_order_after_updates_and_removals) {
	enum { N = 2000 };
	struct heap h;
	struct item *items = xcalloc(N, sizeof *items);
	heap_init(&h, item_key, item_index);
	srand(7);
	for (int i = 0; i < N; i++) {
		items[i].idx = HEAP_NONE;
		items[i].key = rand() % 100000;
		heap_update(&h, &items[i]);
	}
	for (int i = 0; i < N; i += 3) {
		items[i].key = rand() % 100000;
		heap_update(&h, &items[i]);
	}
	for (int i = 1; i < N; i += 5)
		heap_remove(&h, &items[i]);
	ck_assert(!heap_contains(&h, &items[1]));
	int64_t last = -1;
	size_t n = 0;
	struct item *it;
	while ((it = heap_pop(&h)) != NULL) {
		ck_assert_int_ge(it->key, last);
		ck_assert_uint_eq(it->idx, HEAP_NONE);
		last = it->key;
		n++;
	}
	ck_assert_uint_eq(n, N - N / 5);
	heap_free(&h);
	free(items);
}
END_TEST

/* --- events --------------------------------------------------------------- */

struct sink {
	int got;
	char last_type[32];
	struct events *ev;
	struct events_sub *self;
};

static void sink_fn(void *arg, const json_t *msg) {
	struct sink *s = arg;
	json_t *p = json_object_get(msg, "params");
	s->got++;
	snprintf(s->last_type, sizeof s->last_type, "%s",
	         json_string_value(json_object_get(p, "type")));
	ck_assert_str_eq(json_string_value(json_object_get(msg, "method")), "event");
	ck_assert_ptr_nonnull(json_object_get(p, "time"));
}

static void unsubscribing_fn(void *arg, const json_t *msg) {
	struct sink *s = arg;
	(void)msg;
	s->got++;
	events_unsubscribe(s->ev, s->self);
}

START_TEST(test_events_filter_by_job_and_device_events_reach_everyone) {
	struct events *ev = events_new();
	struct sink all = {0}, only_a = {0};
	json_t *filter = json_pack("[s]", "a");
	events_subscribe(ev, NULL, sink_fn, &all);
	events_subscribe(ev, filter, sink_fn, &only_a);
	json_decref(filter);
	events_emit(ev, "run.started", "a", json_object());
	events_emit(ev, "run.started", "b", json_object());
	events_emit(ev, "device.changed", NULL, NULL);
	ck_assert_int_eq(all.got, 3);
	ck_assert_int_eq(only_a.got, 2);
	ck_assert_str_eq(only_a.last_type, "device.changed");
	events_free(ev);
}
END_TEST

START_TEST(test_events_unsubscribe_inside_a_send_is_safe) {
	struct events *ev = events_new();
	struct sink s1 = {.ev = ev}, s2 = {0};
	s1.self = events_subscribe(ev, NULL, unsubscribing_fn, &s1);
	events_subscribe(ev, NULL, sink_fn, &s2);
	events_emit(ev, "job.state", "x", NULL);
	events_emit(ev, "job.state", "x", NULL);
	ck_assert_int_eq(s1.got, 1);
	ck_assert_int_eq(s2.got, 2);
	ck_assert_uint_eq(events_subscribers(ev), 1);
	events_free(ev);
}
END_TEST

int main(void) {
	Suite *s = suite_create("schedule");
	TCase *tc = tcase_create("arithmetic");
	tcase_add_test(tc, test_next_regular_keeps_the_grid_after_a_late_start);
	tcase_add_test(tc, test_next_regular_consumes_the_due_time_itself);
	tcase_add_test(tc, test_next_regular_after_long_downtime_is_one_step_past_now);
	tcase_add_test(tc, test_next_regular_future_anchor_is_kept);
	tcase_add_test(tc, test_next_regular_clamps_an_anchor_beyond_one_interval);
	tcase_add_test(tc, test_window_start_applies_flex_except_to_retries);
	tcase_add_test(tc, test_catchup_offsets_spread_evenly_and_start_at_zero);
	tcase_add_test(tc, test_exponential_backoff_doubles_and_clamps);
	tcase_add_test(tc, test_linear_backoff_grows_by_initial_and_clamps);
	suite_add_tcase(s, tc);
	TCase *th = tcase_create("heap-events");
	tcase_add_test(th, test_heap_pops_in_key_order_after_updates_and_removals);
	tcase_add_test(th, test_events_filter_by_job_and_device_events_reach_everyone);
	tcase_add_test(th, test_events_unsubscribe_inside_a_send_is_safe);
	suite_add_tcase(s, th);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
