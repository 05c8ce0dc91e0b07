/*
 * test_engine.c - the engine's rules, driven in-process with a fake clock
 * and the sim platform: no overlap, catch-up once after downtime, backoff
 * exactly as configured, reload while pending and while running, disable
 * across a reopen, cancelling queued and due runs, flex batching,
 * max_concurrent queueing, a store that refuses writes, and reload's
 * "changed" for every key of a job.
 *
 * Time only moves when a test calls advance(): it fires the engine's timers
 * in order, each at its own time. The runs' actions are real (exec of sh,
 * true and sleep, reaped by the spawn reaper on our loop); a test waits for
 * them on the engine's own events, never on sleeps.
 */
#include <check.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jsontext.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/events.h"
#include "daemon/spawn.h"
#include "daemon/store.h"
#include "tests/unit/files_refuse.h"

/* --- the fake clock ------------------------------------------------------- */

#define T0 1767268800000LL /* 2026-01-01 12:00:00 UTC */
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

struct engine_timer {
	struct engine_timer *next;
	engine_timer_fn fn;
	void *arg;
	int64_t at; /* INT64_MAX: not set */
};

static int64_t fake_now = T0;
static struct engine_timer *timers;

static int64_t fake_now_ms(void *ctx) {
	(void)ctx;
	return fake_now;
}

static struct engine_timer *fake_timer_new(void *ctx, struct event_base *base, bool wall,
                                           engine_timer_fn fn, void *arg) {
	(void)ctx, (void)base, (void)wall;
	struct engine_timer *t = xcalloc(1, sizeof *t);
	t->fn = fn;
	t->arg = arg;
	t->at = INT64_MAX;
	t->next = timers;
	timers = t;
	return t;
}

static void fake_timer_set(struct engine_timer *t, int64_t at_ms) {
	t->at = at_ms;
}

static void fake_timer_free(struct engine_timer *t) {
	for (struct engine_timer **pp = &timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			free(t);
			return;
		}
	}
}

static const struct engine_clock fake_clock = {
	.now_ms = fake_now_ms,
	.timer_new = fake_timer_new,
	.timer_set = fake_timer_set,
	.timer_free = fake_timer_free,
};

static struct event_base *base;

/* Let what is ready on the loop happen (finished children, deferred calls). */
static struct engine *eng;

/* Run what is ready, the store's commits included (they are made off the loop). */
static void settle(void) {
	for (int round = 0; round < 5; round++) {
		if (eng)
			engine_flush(eng);
		for (int i = 0; i < 20; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
}

/* Move time forward by @ms, firing every timer at its own time, in order. */
static void advance(int64_t ms) {
	int64_t target = fake_now + ms;
	for (;;) {
		struct engine_timer *first = NULL;
		for (struct engine_timer *t = timers; t; t = t->next)
			if (t->at <= target && (first == NULL || t->at < first->at))
				first = t;
		if (first == NULL)
			break;
		if (first->at > fake_now)
			fake_now = first->at;
		first->at = INT64_MAX;
		first->fn(first->arg);
		settle();
	}
	fake_now = target;
}

/* --- the engine under test ---------------------------------------------------- */

static char dir[64], config[128], state[128];
static struct events_sub *sub;

struct seen {
	int started, finished;
	char job[64];
	json_t *runs; /* run.finished's "run" of every job, in order */
};
static struct seen seen;

static void on_event(void *arg, const json_t *msg) {
	(void)arg;
	const json_t *p = json_object_get(msg, "params");
	const char *type = json_string_value(json_object_get(p, "type"));
	if (strcmp(type, EVENT_RUN_STARTED) == 0)
		seen.started++;
	if (strcmp(type, EVENT_RUN_FINISHED) == 0) {
		seen.finished++;
		json_array_append(seen.runs, json_object_get(p, "run"));
	}
}

static void write_config(const char *json) {
	FILE *f = fopen(config, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
}

static void engine_up(void) {
	struct engine_opts o = {.config_path = config, .state_dir = state, .platform = "sim",
	                        .base = base, .clock = &fake_clock};
	struct config_errors errs = {0};
	char *cause = NULL;
	int rc = engine_open(&o, &eng, &errs, &cause);
	char *list = config_errors_join(&errs);
	ck_assert_msg(rc == 0, "%s %s", cause ? cause : "", list);
	free(list);
	config_errors_clear(&errs);
	sub = events_subscribe(engine_events(eng), NULL, on_event, NULL);
	engine_start(eng);
}

static void set_flag(void *arg) {
	*(bool *)arg = true;
}

static void give_up(evutil_socket_t fd, short what, void *arg);

/* Stop (what still runs is cancelled and recorded), then free. */
static void engine_down(void) {
	if (eng == NULL)
		return;
	bool stopped = false, late = false;
	struct event *ev = evtimer_new(base, give_up, &late);
	struct timeval tv = {10, 0};
	evtimer_add(ev, &tv);
	engine_stop(eng, "the test is over", set_flag, &stopped);
	while (!stopped && !late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	events_unsubscribe(engine_events(eng), sub);
	engine_free(eng);
	eng = NULL;
	settle();
}

static void open_with(const char *json) {
	write_config(json);
	engine_up();
}

static void setup(void) {
	snprintf(dir, sizeof dir, "/tmp/mcpjob-engine-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(config, sizeof config, "%s/mcpjobd.json", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	fake_now = T0;
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	seen = (struct seen){.runs = json_array()};
}

static void teardown(void) {
	engine_down();
	event_base_free(base);
	json_decref(seen.runs);
	char *cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
}

static void give_up(evutil_socket_t fd, short what, void *arg) {
	(void)fd, (void)what;
	*(bool *)arg = true;
}

/* Run the loop (real time, no fake time passes) until @n runs have finished. */
static void wait_finished(int n) {
	bool late = false;
	struct event *ev = evtimer_new(base, give_up, &late);
	struct timeval tv = {10, 0};
	evtimer_add(ev, &tv);
	while (seen.finished < n && !late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	ck_assert_msg(seen.finished >= n, "%d runs finished, waited for %d", seen.finished, n);
}

/* What the engine's text reply (job.status, jobs.list, job.history) wrote
 * into @t is what jansson encodes of its tree @v. */
static void assert_text_is_json(struct jsontext *t, const json_t *v) {
	char *want = json_dumps(v, JSON_COMPACT);
	ck_assert_ptr_nonnull(want);
	ck_assert_str_eq(t->buf ? t->buf : "", want);
	free(want);
	jsontext_free(t);
}

/* Every status a test looks at is checked as job.status sends it too. */
static json_t *status(const char *id) {
	json_t *out = NULL;
	char *cause = NULL;
	struct jsontext t;
	ck_assert_int_eq(engine_job_json(eng, id, &out, &cause), 0);
	jsontext_init(&t);
	ck_assert_int_eq(engine_job_text(eng, id, &t, &cause), 0);
	assert_text_is_json(&t, out);
	return out;
}

static const char *str(const json_t *o, const char *key) {
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* The job's state now, checked against @want. */
static void assert_state(const char *id, const char *want) {
	json_t *st = status(id);
	ck_assert_msg(strcmp(str(st, "state"), want) == 0, "%s is %s (%s), not %s", id,
	              str(st, "state"), str(st, "pending_reason"), want);
	json_decref(st);
}

static int64_t time_field(const json_t *o, const char *key) {
	int64_t ms = 0;
	const char *s = json_string_value(json_object_get(o, key));
	ck_assert_msg(s && time_parse_rfc3339(s, &ms), "%s: %s", key, s ? s : "null");
	return ms;
}

static const json_t *finished_run(size_t i) {
	ck_assert_uint_gt(json_array_size(seen.runs), i);
	return json_array_get(seen.runs, i);
}

static void device(const char *key, const char *value) {
	json_t *p = json_pack("{s:s}", key, value), *out = NULL;
	char *cause = NULL;
	ck_assert_int_eq(engine_device_set(eng, p, &out, &cause), 0);
	json_decref(p);
	json_decref(out);
	settle();
}

static int run_now(const char *id, int flags, engine_run_fn fn, void *arg, json_t **out,
                   char **cause) {
	void *w = NULL;
	*out = NULL;
	*cause = NULL;
	return engine_job_run(eng, id, flags, fn, arg, out, &w, cause);
}

struct waited {
	int calls;
	char outcome[32];
	bool had_run_id;
};

static void on_run_end(void *arg, const json_t *run) {
	struct waited *w = arg;
	w->calls++;
	snprintf(w->outcome, sizeof w->outcome, "%s", run ? str(run, "outcome") : "(dropped)");
	w->had_run_id = run && json_is_integer(json_object_get(run, "run_id"));
}

/* A job every @interval with more keys @extra (", \"key\": ..."). */
#define JOBI(id, interval, extra, argv)                                                     \
	"{\"id\": \"" id "\", \"interval\": \"" interval "\"" extra                                \
	", \"action\": {\"exec\": {\"argv\": " argv "}}}"
#define JOB(id, extra, argv) JOBI(id, "1h", extra, argv)

/* --- no overlap -------------------------------------------------------------- */

START_TEST(test_a_running_job_never_overlaps_itself) {
	open_with("{\"jobs\": [" JOBI("long", "10s", "", "[\"sleep\", \"30\"]") "]}");
	advance(0);
	ck_assert_int_eq(seen.started, 1);
	assert_state("long", "running");
	advance(35 * SEC); /* three more occurrences come due while it runs */
	ck_assert_int_eq(seen.started, 1);
	json_t *out;
	char *cause;
	ck_assert_int_eq(run_now("long", 0, NULL, NULL, &out, &cause), RPC_E_ALREADY_RUNNING);
	/* "started" in local time, as people read it everywhere else, not UTC. */
	char want[32];
	time_t secs = (time_t)(T0 / 1000);
	struct tm tm;
	localtime_r(&secs, &tm);
	strftime(want, sizeof want, "started %H:%M:%S", &tm);
	ck_assert_msg(strstr(cause, want) != NULL, "%s", cause);
	ck_assert_ptr_null(strstr(cause, "T12:00:00"));
	free(cause);
	ck_assert_int_eq(engine_job_cancel(eng, "long", &out, &cause), 0);
	json_decref(out);
	wait_finished(1);
	ck_assert_str_eq(str(finished_run(0), "outcome"), "cancelled");
	/* Back on the grid of 10 s: next at T0 + 40 s, not at once. */
	json_t *st = status("long");
	ck_assert_int_eq(time_field(st, "next_run"), T0 + 40 * SEC);
	json_decref(st);
}
END_TEST

/* --- catch-up ---------------------------------------------------------------- */

START_TEST(test_catch_up_runs_once_after_downtime) {
	open_with("{\"jobs\": [" JOB("periodic", "", "[\"true\"]") "]}");
	advance(0);
	wait_finished(1);
	engine_down();
	fake_now += 5 * HOUR + 10 * MIN; /* five occurrences missed */
	engine_up();
	advance(0);
	wait_finished(2);
	ck_assert_str_eq(str(finished_run(1), "trigger"), "catch-up");
	advance(49 * MIN); /* up to the grid point after the catch-up */
	settle();
	ck_assert_int_eq(seen.started, 2);
	advance(1 * MIN);  /* T0 + 6 h: the grid's next point */
	wait_finished(3);
	ck_assert_str_eq(str(finished_run(2), "trigger"), "schedule");
	ck_assert_int_eq(time_field(finished_run(2), "started_at"), T0 + 6 * HOUR);
}
END_TEST

START_TEST(test_catch_up_of_many_jobs_is_spread_over_the_window) {
	open_with("{\"catchup_spread\": \"2s\", \"jobs\": [" JOB("p0", "", "[\"true\"]") ","
	          JOB("p1", "", "[\"true\"]") "," JOB("p2", "", "[\"true\"]") ","
	          JOB("p3", "", "[\"true\"]") "]}");
	advance(0);
	wait_finished(4);
	engine_down();
	fake_now += 3 * HOUR;
	engine_up();
	for (int i = 0; i < 4; i++) {
		advance(i == 0 ? 0 : 500);
		wait_finished(5 + i);
		ck_assert_int_eq(seen.started, 5 + i);
	}
	for (int i = 0; i < 4; i++) {
		const json_t *r = finished_run(4 + (size_t)i);
		ck_assert_str_eq(str(r, "trigger"), "catch-up");
		ck_assert_int_eq(time_field(r, "started_at"), T0 + 3 * HOUR + i * 500);
	}
}
END_TEST

/* --- backoff ------------------------------------------------------------------ */

/* Attempts of a job that always asks for a retry start exactly @delays apart. */
static void assert_backoff(const char *retry, const int64_t *delays, int n) {
	char *cfg = xasprintf("{\"jobs\": [" JOB("flaky", ", \"retry\": %s",
	                                     "[\"sh\", \"-c\", \"exit 75\"]") "]}", retry);
	open_with(cfg);
	free(cfg);
	advance(0);
	wait_finished(1);
	for (int i = 0; i < n; i++) {
		json_t *st = status("flaky");
		ck_assert_str_eq(str(st, "state"), "backoff");
		ck_assert_int_eq(time_field(st, "backoff_until"), fake_now + delays[i]);
		ck_assert_int_eq(time_field(finished_run((size_t)i), "retry_at"), fake_now + delays[i]);
		json_decref(st);
		advance(delays[i] - 1);
		ck_assert_int_eq(seen.started, i + 1);
		advance(1);
		wait_finished(i + 2);
		const json_t *r = finished_run((size_t)i + 1);
		ck_assert_str_eq(str(r, "trigger"), "retry");
		ck_assert_int_eq(json_integer_value(json_object_get(r, "attempt")), i + 2);
	}
	/* The last attempt failed: back on the schedule, attempts reset. */
	json_t *st = status("flaky");
	ck_assert_str_eq(str(st, "state"), "scheduled");
	ck_assert_int_eq(json_integer_value(json_object_get(st, "attempt")), 0);
	ck_assert_ptr_null(json_object_get(finished_run((size_t)n), "retry_at"));
	json_decref(st);
}

START_TEST(test_exponential_backoff_doubles_up_to_its_max) {
	static const int64_t d[] = {1 * SEC, 2 * SEC, 4 * SEC, 5 * SEC};
	assert_backoff("{\"max_attempts\": 5, \"backoff\": \"exponential\", \"initial\": \"1s\","
	               " \"max\": \"5s\"}", d, 4);
}
END_TEST

START_TEST(test_linear_backoff_grows_by_its_initial_up_to_its_max) {
	static const int64_t d[] = {2 * SEC, 4 * SEC, 5 * SEC};
	assert_backoff("{\"max_attempts\": 4, \"backoff\": \"linear\", \"initial\": \"2s\","
	               " \"max\": \"5s\"}", d, 3);
}
END_TEST

/* --- reload --------------------------------------------------------------------- */

static json_t *reload(const char *json) {
	json_t *summary = NULL;
	struct config_errors errs = {0};
	write_config(json);
	ck_assert_int_eq(engine_reload(eng, &summary, &errs), 0);
	config_errors_clear(&errs);
	settle();
	return summary;
}

START_TEST(test_reload_while_pending_takes_the_new_constraints) {
	open_with("{\"jobs\": [" JOB("sync", ", \"constraints\": {\"network\": \"unmetered\"}",
	                             "[\"true\"]") "]}");
	device("network", "metered");
	advance(0);
	assert_state("sync", "pending");
	json_t *s = reload("{\"jobs\": [" JOB("sync", ", \"constraints\": {\"network\": \"connected\"}",
	                                      "[\"true\"]") "]}");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "changed"), 0)), "sync");
	json_decref(s);
	wait_finished(1);
	ck_assert_str_eq(str(finished_run(0), "outcome"), "success");
	ck_assert_str_eq(str(finished_run(0), "trigger"), "schedule");
}
END_TEST

START_TEST(test_reload_while_running_finishes_under_the_old_definition) {
	open_with("{\"jobs\": [" JOB("long", "", "[\"sh\", \"-c\", \"sleep 30\"]") ","
	          JOB("gone", "", "[\"sleep\", \"30\"]") "]}");
	advance(0);
	ck_assert_int_eq(seen.started, 2);
	json_t *s = reload("{\"jobs\": [" JOBI("long", "2h", "", "[\"true\"]") "]}");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "removed"), 0)), "gone");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "changed"), 0)), "long");
	json_decref(s);
	assert_state("long", "running");
	json_t *out;
	char *cause = NULL;
	ck_assert_int_eq(engine_job_json(eng, "gone", &out, &cause), RPC_E_NO_SUCH_JOB);
	free(cause);
	ck_assert_int_eq(engine_job_cancel(eng, "long", &out, &cause), 0);
	json_decref(out);
	wait_finished(1);
	/* The next run keeps its due time, and runs the new argv; then the new grid. */
	json_t *st = status("long");
	ck_assert_int_eq(time_field(st, "next_run"), T0 + HOUR);
	json_decref(st);
	advance(HOUR);
	wait_finished(2);
	ck_assert_str_eq(str(finished_run(1), "outcome"), "success");
	st = status("long");
	ck_assert_int_eq(time_field(st, "next_run"), T0 + 3 * HOUR);
	json_decref(st);
}
END_TEST

START_TEST(test_a_removed_running_job_is_recorded_at_shutdown) {
	open_with("{\"jobs\": [" JOB("gone", "", "[\"sleep\", \"30\"]") "]}");
	advance(0);
	json_t *s = reload("{\"jobs\": []}");
	json_decref(s);
	bool stopped = false;
	engine_stop(eng, "stopping for the test", set_flag, &stopped);
	wait_finished(1);
	ck_assert(stopped);
	ck_assert_str_eq(str(finished_run(0), "outcome"), "cancelled");
	ck_assert_str_eq(str(finished_run(0), "message"), "stopping for the test");
}
END_TEST

/* --- disable ------------------------------------------------------------------ */

START_TEST(test_disable_persists_across_reopen) {
	open_with("{\"jobs\": [" JOB("j", ", \"initial_delay\": \"1min\"", "[\"true\"]") "]}");
	json_t *out = NULL;
	char *cause = NULL;
	ck_assert_int_eq(engine_job_set_enabled(eng, "j", false, &out, &cause), 0);
	json_decref(out);
	engine_down();
	engine_up();
	assert_state("j", "disabled");
	advance(3 * HOUR);
	ck_assert_int_eq(seen.started, 0);
	ck_assert_int_eq(engine_job_set_enabled(eng, "j", true, &out, &cause), 0);
	json_decref(out);
	engine_down();
	engine_up();
	assert_state("j", "scheduled");
}
END_TEST

/* --- cancel ------------------------------------------------------------------- */

START_TEST(test_cancel_of_a_queued_run_answers_its_waiters_and_keeps_the_schedule) {
	open_with("{\"max_concurrent\": 1, \"jobs\": [" JOB("a", "", "[\"sleep\", \"30\"]") ","
	          JOB("w", ", \"initial_delay\": \"30min\"", "[\"true\"]") "]}");
	advance(0);
	assert_state("a", "running");
	json_t *before = status("w"), *out;
	char *cause;
	struct waited wt = {0};
	ck_assert_int_eq(run_now("w", ENGINE_RUN_WHEN_ALLOWED, on_run_end, &wt, &out, &cause), 0);
	ck_assert(json_is_true(json_object_get(out, "queued")));
	json_decref(out);
	assert_state("w", "pending");
	ck_assert_int_eq(engine_job_cancel(eng, "w", &out, &cause), 0);
	ck_assert(json_is_null(json_object_get(out, "run_id")));
	ck_assert(json_is_true(json_object_get(out, "dequeued")));
	json_decref(out);
	/* The waiter has its answer at once, without any run. */
	ck_assert_int_eq(wt.calls, 1);
	ck_assert_str_eq(wt.outcome, "cancelled");
	ck_assert(!wt.had_run_id);
	json_t *after = status("w");
	ck_assert_str_eq(str(after, "state"), "scheduled");
	ck_assert_str_eq(str(after, "next_run"), str(before, "next_run"));
	json_decref(before);
	json_decref(after);
	/* Nothing else of it is queued: a second cancel says so. */
	ck_assert_int_eq(engine_job_cancel(eng, "w", &out, &cause), RPC_E_NOT_RUNNING);
	free(cause);
	ck_assert_int_eq(seen.started, 1);
}
END_TEST

START_TEST(test_cancel_of_a_manual_request_keeps_the_due_run_due) {
	open_with("{\"jobs\": [" JOB("w", ", \"constraints\": {\"network\": \"unmetered\"}",
	                             "[\"true\"]") "]}");
	device("network", "metered");
	advance(0);
	assert_state("w", "pending"); /* due, waiting for its network */
	json_t *out;
	char *cause;
	struct waited wt = {0};
	ck_assert_int_eq(run_now("w", ENGINE_RUN_WHEN_ALLOWED, on_run_end, &wt, &out, &cause), 0);
	json_decref(out);
	ck_assert_int_eq(engine_job_cancel(eng, "w", &out, &cause), 0);
	json_decref(out);
	ck_assert_int_eq(wt.calls, 1);
	ck_assert_str_eq(wt.outcome, "cancelled");
	/* The run that was due still is: it runs when its constraint holds. */
	assert_state("w", "pending");
	device("network", "unmetered");
	wait_finished(1);
	ck_assert_str_eq(str(finished_run(0), "trigger"), "schedule");
}
END_TEST

/* --- flex and slots ----------------------------------------------------------- */

START_TEST(test_flex_lets_a_job_share_an_earlier_wake_up) {
	open_with("{\"jobs\": [" JOB("a", ", \"initial_delay\": \"10min\"", "[\"true\"]") ","
	          JOB("b", ", \"initial_delay\": \"13min\", \"flex\": \"5min\"", "[\"true\"]") "]}");
	advance(9 * MIN); /* b's window opened at 8 min, but nothing wakes up for it alone */
	ck_assert_int_eq(seen.started, 0);
	advance(1 * MIN);
	wait_finished(2);
	ck_assert_int_eq(time_field(finished_run(0), "started_at"), T0 + 10 * MIN);
	ck_assert_int_eq(time_field(finished_run(1), "started_at"), T0 + 10 * MIN);
	/* b ran early: its 13 min occurrence is consumed, next on its grid. */
	json_t *st = status("b");
	ck_assert_int_eq(time_field(st, "next_run"), T0 + 13 * MIN + HOUR);
	json_decref(st);
	advance(5 * MIN);
	ck_assert_int_eq(seen.started, 2);
}
END_TEST

START_TEST(test_max_concurrent_queues_the_rest_until_a_slot_frees) {
	open_with("{\"max_concurrent\": 1, \"jobs\": [" JOB("a", "", "[\"sleep\", \"30\"]") ","
	          JOB("b", "", "[\"true\"]") "]}");
	advance(0);
	ck_assert_int_eq(seen.started, 1);
	json_t *st = status("b");
	ck_assert_str_eq(str(st, "state"), "pending");
	ck_assert_ptr_nonnull(strstr(str(st, "pending_reason"), "free run slot"));
	json_decref(st);
	json_t *out;
	char *cause;
	ck_assert_int_eq(engine_job_cancel(eng, "a", &out, &cause), 0);
	json_decref(out);
	wait_finished(2);
	ck_assert_str_eq(str(finished_run(1), "job"), "b");
	ck_assert_str_eq(str(finished_run(1), "outcome"), "success");
}
END_TEST

/* --- a store that refuses writes ---------------------------------------------- */

START_TEST(test_a_run_whose_start_cannot_be_recorded_does_not_start) {
	/* No journal (its map, allocated at open, would take the record: that
	 * case is test_store's test_a_fold_the_store_refuses_...). */
	setenv("MCPJOB_STORE_BOOT_ID", "none", 1);
	open_with("{\"jobs\": [" JOB("j", "", "[\"true\"]") "]}");
	unsetenv("MCPJOB_STORE_BOOT_ID");
	files_refuse(true);
	advance(0); /* due now: its start record is refused */
	json_t *out = NULL, *st = status("j");
	char *cause = NULL;
	ck_assert_str_eq(str(st, "state"), "backoff");
	ck_assert_msg(strstr(str(st, "pending_reason"), "could not be recorded") != NULL, "%s",
	              str(st, "pending_reason"));
	json_decref(st);
	/* A manual request is taken (its start is recorded off the loop) but does not start. */
	int rc = run_now("j", 0, NULL, NULL, &out, &cause);
	ck_assert_msg(rc == 0, "%s", cause ? cause : "");
	json_decref(out);
	settle();
	ck_assert_int_eq(seen.started, 0);
	ck_assert_int_eq(seen.finished, 0);
	st = status("j");
	ck_assert_str_eq(str(st, "state"), "backoff");
	json_decref(st);
	files_refuse(false);
	/* The store takes writes again: the job is tried again a moment later, and runs once. */
	advance(2000);
	wait_finished(1);
	ck_assert_str_eq(str(finished_run(0), "trigger"), "retry");
	ck_assert_int_eq(seen.started, 1);
}
END_TEST

/* --- reload's "changed" ---------------------------------------------------------- */

START_TEST(test_reload_reports_a_change_in_every_key) {
	static const char *const variants[] = {
	    "\"name\": \"other\"", "\"description\": \"other\"", "\"interval\": \"2h\"",
	    "\"flex\": \"1min\"", "\"timeout\": \"1min\"", "\"initial_delay\": \"2h\"",
	    "\"enabled\": false", "\"stop_when_unmet\": false",
	    "\"constraints\": {\"charging\": true}", "\"retry\": {\"max_attempts\": 7}",
	    "\"retry\": {\"backoff\": \"linear\"}", "\"retry\": {\"initial\": \"1min\"}",
	    "\"retry\": {\"max\": \"2h\"}", "\"history\": {\"max_runs\": 3}",
	    "\"history\": {\"max_age\": \"1d\"}", "\"user\": \"root\"", "\"group\": \"root\"",
	    "\"limits\": {\"memory\": \"1G\"}", "\"limits\": {\"cpu\": 60}",
	    "\"limits\": {\"nofile\": 64}", "\"limits\": {\"nproc\": 64}",
	    "\"schedule\": \"daily\"", "\"cron\": \"0 3 * * *\"",
	    "\"schedule\": \"daily\", \"timezone\": \"Asia/Kolkata\"",
	    "\"at\": \"2030-01-01T00:00:00Z\"", "\"randomized_delay\": \"1h\"",
	};
	static const char *const actions[] = {
	    "{\"exec\": {\"argv\": [\"true\", \"x\"]}}",
	    "{\"exec\": {\"argv\": [\"true\"], \"env\": {\"A\": \"1\"}}}",
	    "{\"exec\": {\"argv\": [\"true\"], \"cwd\": \"/tmp\"}}",
	    "{\"cleanup\": {\"path\": \"/tmp/x\", \"max_age\": \"1d\"}}",
	};
	const char *base_job = "{\"id\": \"j\", %s%s%s\"action\": %s}";
	char *cfg = xasprintf("{\"jobs\": [%s]}", "{\"id\": \"j\", \"interval\": \"1h\", "
	                      "\"initial_delay\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"true\"]}}}");
	open_with(cfg);
	free(cfg);
	size_t n = sizeof variants / sizeof variants[0] + sizeof actions / sizeof actions[0];
	for (size_t i = 0; i < n; i++) {
		bool key = i < sizeof variants / sizeof variants[0];
		char *extra = key ? xasprintf("%s, ", variants[i]) : xstrdup("");
		const char *action = key ? "{\"exec\": {\"argv\": [\"true\"]}}"
		                         : actions[i - sizeof variants / sizeof variants[0]];
		bool timed = strstr(extra, "\"interval\"") || strstr(extra, "\"schedule\"") ||
		             strstr(extra, "\"cron\"") || strstr(extra, "\"at\"");
		char *job = xasprintf(base_job, timed ? "" : "\"interval\": \"1h\", ",
		                      strstr(extra, "\"initial_delay\"") ? "" : "\"initial_delay\": \"1h\", ",
		                      extra, action);
		char *changed_cfg = xasprintf("{\"jobs\": [%s]}", job);
		json_t *s = reload(changed_cfg);
		json_t *changed = json_object_get(s, "changed");
		ck_assert_msg(json_array_size(changed) == 1, "a change of %s %s is not reported",
		              extra, action);
		json_decref(s);
		/* The same definition again is no change. */
		s = reload(changed_cfg);
		ck_assert_msg(json_array_size(json_object_get(s, "changed")) == 0,
		              "%s %s reported as changed twice", extra, action);
		json_decref(s);
		free(changed_cfg);
		free(job);
		free(extra);
	}
}
END_TEST


/* --- runs left on an MCP task ------------------------------------------------ */

/* What a daemon killed while @job's run was on task @task leaves: its "running" record. */
static uint64_t leave_task_run(const char *job, const char *server, const char *task,
                               int64_t started_ms) {
	struct store *st = NULL;
	char *cause = NULL;
	ck_assert_msg(store_open(state, &st, &cause) == 0, "%s", cause);
	struct run_record run = {.job_id = xstrdup(job), .trigger = TRIGGER_SCHEDULE, .attempt = 1,
	                         .started_ms = started_ms, .task_id = xstrdup(task),
	                         .task_server = xstrdup(server),
	                         .task_session = xstrdup("2025-11-25 sess-1")};
	struct job_record rec;
	store_job_record_init(&rec);
	rec.last_run_ms = started_ms;
	ck_assert_msg(store_run_begin(st, &run, &rec, &cause) == 0, "%s", cause);
	uint64_t id = run.run_id;
	store_run_record_clear(&run);
	store_close(st);
	return id;
}

/* The one record of @job's history, checked to be run @id; borrowed from *@hold. */
static const json_t *only_run(const char *job, uint64_t id, json_t **hold) {
	char *cause = NULL;
	ck_assert_int_eq(engine_job_history(eng, job, 0, 0, hold, &cause), 0);
	const json_t *runs = json_object_get(*hold, "runs");
	ck_assert_uint_eq(json_array_size(runs), 1);
	const json_t *r = json_array_get(runs, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "run_id")), (json_int_t)id);
	return r;
}

#define MCPJOB(id, server, extra)                                                        \
	"{\"id\": \"" id "\", \"interval\": \"1h\", \"initial_delay\": \"1h\"" extra            \
	", \"action\": {\"mcp\": {\"server\": \"" server "\", \"tool\": \"t\"}}}"


static int gone_run(const struct run_record *run, void *arg) {
	struct { int n; char outcome[32]; uint64_t id; } *g = arg;
	g->n++;
	g->id = run->run_id;
	snprintf(g->outcome, sizeof g->outcome, "%s", job_outcome_name(run->outcome));
	return 0;
}

START_TEST(test_a_task_run_is_resumed_on_http_and_interrupted_elsewhere) {
	/* Port 1 on loopback refuses: the resumed task's server cannot be reached. */
	write_config("{\"mcpServers\": {\"web\": {\"type\": \"http\", \"url\": "
	             "\"http://127.0.0.1:1/mcp\"}, \"local\": {\"command\": \"/bin/true\"}},"
	             " \"jobs\": [" MCPJOB("onweb", "web", "") "," MCPJOB("onlocal", "local", "") ","
	             MCPJOB("late", "web", ", \"timeout\": \"1min\"") "]}");
	uint64_t web = leave_task_run("onweb", "web", "task-w", T0 - 5 * SEC);
	uint64_t local = leave_task_run("onlocal", "local", "task-l", T0 - 5 * SEC);
	uint64_t late = leave_task_run("late", "web", "task-x", T0 - 10 * MIN);
	uint64_t gone = leave_task_run("gone", "web", "task-g", T0 - 5 * SEC);
	engine_up();
	/* Resumed: running again as the same run, so no second run of it starts. */
	json_t *st = status("onweb");
	ck_assert_str_eq(str(st, "state"), "running");
	ck_assert_int_eq(json_integer_value(json_object_get(st, "run_id")), (json_int_t)web);
	ck_assert_int_eq(time_field(st, "running_since"), T0 - 5 * SEC);
	json_decref(st);
	json_t *out = NULL;
	char *cause = NULL;
	ck_assert_int_eq(run_now("onweb", 0, NULL, NULL, &out, &cause), RPC_E_ALREADY_RUNNING);
	free(cause);
	/* Its timeout counts from its first start: ten minutes ago, one allowed. */
	advance(0);
	wait_finished(2);
	json_t *h = NULL;
	const json_t *r = only_run("late", late, &h);
	ck_assert_str_eq(str(r, "outcome"), "timeout");
	ck_assert_msg(strstr(str(r, "message"), "timed out after 1m while task task-x ran on server "
	                                        "web"), "%s", str(r, "message"));
	json_decref(h);
	r = only_run("onweb", web, &h);
	ck_assert_str_eq(str(r, "outcome"), "interrupted");
	ck_assert_msg(strstr(str(r, "message"), "resumed after mcpjobd restarted, but server web "
	                                        "could not be reached to follow task task-w"),
	              "%s", str(r, "message"));
	ck_assert_str_eq(str(r, "task_id"), "task-w");
	json_decref(h);
	/* A stdio server's tasks died with the daemon (its servers are stopped). */
	r = only_run("onlocal", local, &h);
	ck_assert_str_eq(str(r, "outcome"), "interrupted");
	ck_assert_str_eq(str(r, "message"), STORE_INTERRUPTED_MSG);
	json_decref(h);
	ck_assert_int_eq(seen.started, 0); /* nothing new ran */
	assert_state("onweb", "scheduled");
	engine_down();
	/* A job removed from the configuration meanwhile: interrupted, as before. */
	struct store *sto = NULL;
	ck_assert_msg(store_open(state, &sto, &cause) == 0, "%s", cause);
	struct { int n; char outcome[32]; uint64_t id; } g = {0};
	ck_assert_int_eq(store_history(sto, "gone", 0, 0, gone_run, &g, &cause), 0);
	store_close(sto);
	ck_assert_int_eq(g.n, 1);
	ck_assert_int_eq(g.id, gone);
	ck_assert_str_eq(g.outcome, "interrupted");
}
END_TEST

/* --- replies as text -------------------------------------------------------- */

START_TEST(test_replies_as_text_are_the_json_of_every_job_and_run) {
	open_with("{\"jobs\": [" JOB("ok",
	                             ", \"name\": \"Caf\u00e9 \\\"quoted\\\"\", \"timeout\": \"90s\"",
	                             "[\"sh\", \"-c\", \"printf 'a\\\\tb\\\\001\\\\377'\"]") ", "
	          JOB("bad", ", \"retry\": {\"max_attempts\": 3, \"backoff\": \"linear\", "
	                     "\"initial\": \"10s\"}, \"constraints\": {\"charging\": true}",
	              "[\"false\"]") ", "
	          JOBI("long", "10s", "", "[\"sleep\", \"30\"]") "]}");
	json_t *out;
	char *cause;
	struct jsontext t;
	device("charging", "true");
	ck_assert_int_eq(run_now("ok", 0, NULL, NULL, &out, &cause), 0);
	json_decref(out);
	ck_assert_int_eq(run_now("bad", 0, NULL, NULL, &out, &cause), 0);
	json_decref(out);
	wait_finished(2);
	ck_assert_int_eq(run_now("ok", 0, NULL, NULL, &out, &cause), 0);
	json_decref(out);
	wait_finished(3);
	device("charging", "false"); /* "bad" waits in backoff, then on its constraint */
	ck_assert_int_eq(run_now("long", 0, NULL, NULL, &out, &cause), 0);
	json_decref(out);
	settle();
	assert_state("long", "running");
	json_decref(status("bad"));
	json_decref(status("ok"));
	json_t *list = engine_jobs_json(eng);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "jobs")), 3);
	jsontext_init(&t);
	engine_jobs_text(eng, &t);
	assert_text_is_json(&t, list);
	json_decref(list);
	static const char *const ids[] = {"ok", "bad", "long"};
	for (size_t i = 0; i < 3; i++) {
		json_t *h = NULL;
		ck_assert_int_eq(engine_job_history(eng, ids[i], 10, 0, &h, &cause), 0);
		jsontext_init(&t);
		ck_assert_int_eq(engine_job_history_text(eng, ids[i], 10, 0, &t, &cause), 0);
		assert_text_is_json(&t, h);
		ck_assert_uint_ge(json_array_size(json_object_get(h, "runs")), 1);
		json_decref(h);
	}
	/* An unknown job: the error, and nothing written into the reply. */
	jsontext_init(&t);
	jsontext_raw(&t, "head", 4);
	cause = NULL;
	ck_assert_int_eq(engine_job_history_text(eng, "nope", 10, 0, &t, &cause), RPC_E_NO_SUCH_JOB);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(engine_job_text(eng, "nope", &t, &cause), RPC_E_NO_SUCH_JOB);
	free(cause);
	ck_assert_str_eq(t.buf, "head");
	jsontext_free(&t);
	ck_assert_int_eq(engine_job_cancel(eng, "long", &out, &cause), 0);
	json_decref(out);
	wait_finished(4);
}
END_TEST

int main(void) {
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("rules");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_a_running_job_never_overlaps_itself);
	tcase_add_test(tc, test_catch_up_runs_once_after_downtime);
	tcase_add_test(tc, test_catch_up_of_many_jobs_is_spread_over_the_window);
	tcase_add_test(tc, test_exponential_backoff_doubles_up_to_its_max);
	tcase_add_test(tc, test_linear_backoff_grows_by_its_initial_up_to_its_max);
	tcase_add_test(tc, test_reload_while_pending_takes_the_new_constraints);
	tcase_add_test(tc, test_reload_while_running_finishes_under_the_old_definition);
	tcase_add_test(tc, test_a_removed_running_job_is_recorded_at_shutdown);
	tcase_add_test(tc, test_disable_persists_across_reopen);
	tcase_add_test(tc, test_cancel_of_a_queued_run_answers_its_waiters_and_keeps_the_schedule);
	tcase_add_test(tc, test_cancel_of_a_manual_request_keeps_the_due_run_due);
	tcase_add_test(tc, test_flex_lets_a_job_share_an_earlier_wake_up);
	tcase_add_test(tc, test_max_concurrent_queues_the_rest_until_a_slot_frees);
	tcase_add_test(tc, test_a_run_whose_start_cannot_be_recorded_does_not_start);
	tcase_add_test(tc, test_reload_reports_a_change_in_every_key);
	tcase_add_test(tc, test_a_task_run_is_resumed_on_http_and_interrupted_elsewhere);
	tcase_add_test(tc, test_replies_as_text_are_the_json_of_every_job_and_run);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
