/*
 * test_embed.c - the embedding API (mcpjob.h) as an app uses it: the job
 * screen (list, status, history, enable, disable, run now, cancel), the
 * background hook (run what is due within a budget, expire from another
 * thread, next wake-up), events and log lines through callbacks, config
 * errors with key paths, and handles that are checked.
 *
 * The tests that need a long run use exec jobs or a stdio MCP server; in a
 * build that cannot start processes (MCPJOB_NO_SPAWN=1) they are replaced by
 * one that checks such a configuration is refused with the reason, and the
 * rest run on cleanup jobs, which need no process.
 */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/embed.h"

#ifndef MCPJOB_NO_SPAWN
#define MCPJOB_NO_SPAWN 0
#endif

static char dir[64], config[128], state[128], cache[128];

static void write_file(const char *path, const char *text) {
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void) {
	snprintf(dir, sizeof dir, "/tmp/mcpjob-embed-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(config, sizeof config, "%s/mcpjobd.json", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	snprintf(cache, sizeof cache, "%s/cache", dir);
	ck_assert_int_eq(mkdir(cache, 0700), 0);
}

static void teardown(void) {
	char *cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
}

/* Open from a JSON text with %s replaced by the cache directory. */
static mcpjob_t open_json(const char *fmt) {
	char *json = xasprintf(fmt, cache, cache);
	char *error = NULL;
	mcpjob_t h = 0;
	int rc = mcpjob_engine_open_json(json, state, &h, &error);
	ck_assert_msg(rc == MCPJOB_OK, "open: %s: %s", mcpjob_rc_name(rc), error ? error : "");
	ck_assert_uint_ne(h, 0);
	free(json);
	return h;
}

static json_t *parse(char *text) {
	json_error_t jerr;
	ck_assert_ptr_nonnull(text);
	json_t *j = json_loads(text, 0, &jerr);
	ck_assert_msg(j != NULL, "not JSON (%s): %s", jerr.text, text);
	mcpjob_free(text);
	return j;
}

/* The newest run of @job: {"outcome", "message", ...}; NULL if none. */
static json_t *last_run(mcpjob_t h, const char *job) {
	char *json = NULL, *error = NULL;
	ck_assert_int_eq(mcpjob_job_history(h, job, 1, 0, &json, &error), MCPJOB_OK);
	json_t *hist = parse(json);
	json_t *run = json_incref(json_array_get(json_object_get(hist, "runs"), 0));
	json_decref(hist);
	return run;
}

static const char *str(const json_t *o, const char *key) {
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static int count_runs(mcpjob_t h, const char *job) {
	char *json = NULL;
	ck_assert_int_eq(mcpjob_job_history(h, job, 1000, 0, &json, NULL), MCPJOB_OK);
	json_t *hist = parse(json);
	int n = (int)json_array_size(json_object_get(hist, "runs"));
	json_decref(hist);
	return n;
}

static const char *const cleanup_jobs =
	"{\"jobs\": ["
	"{\"id\": \"tidy\", \"interval\": \"1h\", \"action\": {\"cleanup\": {\"path\": \"%s\","
	" \"max_age\": \"7d\"}}},"
	"{\"id\": \"later\", \"interval\": \"2h\", \"initial_delay\": \"1h\","
	" \"action\": {\"cleanup\": {\"path\": \"%s\", \"max_age\": \"1d\"}}}]}";

/* --- events and logs ----------------------------------------------------------- */

struct seen {
	char types[64][32];
	int n;
	int progress;
	char first_progress[256];
	int log_lines;
	char log_text[2048];
};

static void on_event(void *user, const char *type, const char *job, const char *json) {
	struct seen *s = user;
	(void)job;
	if (s->n < 64)
		snprintf(s->types[s->n++], sizeof s->types[0], "%s", type);
	if (strcmp(type, "run.progress") == 0 && s->progress++ == 0)
		snprintf(s->first_progress, sizeof s->first_progress, "%s", json);
}

static void on_log(void *user, int level, const char *job, const char *message) {
	struct seen *s = user;
	(void)level;
	s->log_lines++;
	size_t len = strlen(s->log_text);
	snprintf(s->log_text + len, sizeof s->log_text - len, "%s: %s\n", job ? job : "-", message);
}

static bool saw(const struct seen *s, const char *type) {
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->types[i], type) == 0)
			return true;
	return false;
}

/* --- the job screen ------------------------------------------------------------ */

START_TEST(test_job_screen_lists_shows_and_toggles_jobs) {
	mcpjob_t h = open_json(cleanup_jobs);
	char *json = NULL, *error = NULL;
	ck_assert_int_eq(mcpjob_jobs_list(h, &json, &error), MCPJOB_OK);
	json_t *list = parse(json);
	json_t *jobs = json_object_get(list, "jobs");
	ck_assert_int_eq(json_array_size(jobs), 2);
	ck_assert_str_eq(str(json_array_get(jobs, 0), "id"), "tidy");
	ck_assert_str_eq(str(json_array_get(jobs, 0), "action"), "cleanup");
	json_decref(list);

	ck_assert_int_eq(mcpjob_job_disable(h, "tidy", NULL, &error), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_job_status(h, "tidy", &json, &error), MCPJOB_OK);
	json_t *st = parse(json);
	ck_assert(json_is_false(json_object_get(st, "enabled")));
	ck_assert_str_eq(str(st, "state"), "disabled");
	json_decref(st);
	/* A disabled job does not run when due. */
	ck_assert_int_eq(mcpjob_engine_run_due(h, 5000, &error), 0);
	ck_assert_int_eq(mcpjob_job_enable(h, "tidy", &json, &error), MCPJOB_OK);
	st = parse(json);
	ck_assert(json_is_true(json_object_get(st, "enabled")));
	json_decref(st);

	ck_assert_int_eq(mcpjob_job_status(h, "nope", &json, &error), MCPJOB_E_NO_SUCH_JOB);
	ck_assert_ptr_nonnull(strstr(error, "nope"));
	mcpjob_free(error);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);

	/* Disabled and enabled again: the engine reopened on the store agrees. */
	h = open_json(cleanup_jobs);
	ck_assert_int_eq(mcpjob_job_disable(h, "later", NULL, NULL), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
	h = open_json(cleanup_jobs);
	ck_assert_int_eq(mcpjob_job_status(h, "later", &json, NULL), MCPJOB_OK);
	st = parse(json);
	ck_assert(json_is_false(json_object_get(st, "enabled")));
	json_decref(st);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
}
END_TEST

START_TEST(test_run_now_runs_in_run_due_with_events_and_history) {
	mcpjob_t h = open_json(cleanup_jobs);
	struct seen s = {0};
	char *json = NULL, *error = NULL;
	ck_assert_int_eq(mcpjob_engine_set_event_callback(h, on_event, &s), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_engine_set_log_callback(h, on_log, &s, MCPJOB_LOG_DEBUG), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_job_run(h, "later", 0, &json, &error), MCPJOB_OK);
	json_t *r = parse(json);
	ck_assert_str_eq(str(r, "job"), "later");
	json_decref(r);
	/* A job never overlaps itself. */
	ck_assert_int_eq(mcpjob_job_run(h, "later", 0, &json, &error), MCPJOB_E_ALREADY_RUNNING);
	ck_assert_ptr_nonnull(strstr(error, "already running"));
	mcpjob_free(error);
	/* run_due lets it finish (and runs "tidy", due now). */
	ck_assert_int_ge(mcpjob_engine_run_due(h, 20000, &error), 1);
	json_t *run = last_run(h, "later");
	ck_assert_ptr_nonnull(run);
	ck_assert_str_eq(str(run, "outcome"), "success");
	ck_assert_str_eq(str(run, "trigger"), "manual");
	ck_assert_ptr_nonnull(strstr(str(run, "message"), "deleted 0 files"));
	json_decref(run);
	ck_assert(saw(&s, "run.started"));
	ck_assert(saw(&s, "run.finished"));
	ck_assert(saw(&s, "job.state"));
	ck_assert_msg(strstr(s.log_text, "later: ") != NULL, "no log line about the run:\n%s",
	              s.log_text);
	ck_assert_int_eq(mcpjob_job_cancel(h, "later", &json, &error), MCPJOB_E_NOT_RUNNING);
	mcpjob_free(error);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
}
END_TEST

START_TEST(test_next_due_is_the_next_wake_up) {
	mcpjob_t h = open_json(cleanup_jobs);
	int64_t next = -1;
	ck_assert_int_eq(mcpjob_engine_run_due(h, 20000, NULL), 1); /* tidy; later waits 1h */
	ck_assert_int_eq(mcpjob_engine_next_due(h, &next, NULL), MCPJOB_OK);
	ck_assert_int_gt(next, time_now_ms() + 30 * 60 * 1000);
	ck_assert_int_lt(next, time_now_ms() + 2 * 3600 * 1000);
	/* Nothing is due now: a second wake-up returns at once, with nothing started. */
	ck_assert_int_eq(mcpjob_engine_run_due(h, 20000, NULL), 0);
	ck_assert_int_eq(mcpjob_engine_next_due(h, NULL, NULL), MCPJOB_E_ARG);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
}
END_TEST

START_TEST(test_device_reported_by_the_host_gates_jobs) {
	mcpjob_t h = open_json("{\"jobs\": [{\"id\": \"sync\", \"interval\": \"1h\","
	                       " \"constraints\": {\"network\": \"unmetered\"},"
	                       " \"action\": {\"cleanup\": {\"path\": \"%s\", \"max_age\": \"1d\"}}}]}");
	char *error = NULL, *json = NULL;
	ck_assert_int_eq(mcpjob_engine_set_device(h, "network", "metered", &error), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_engine_run_due(h, 500, &error), 0);
	ck_assert_int_eq(mcpjob_engine_set_device(h, "network", "unmetered", &error), MCPJOB_OK);
	ck_assert_int_eq(mcpjob_engine_run_due(h, 20000, &error), 1);
	ck_assert_int_eq(mcpjob_engine_set_device(h, "network", "wifi", &error), MCPJOB_E_ARG);
	ck_assert_ptr_nonnull(strstr(error, "network"));
	mcpjob_free(error);
	ck_assert_int_eq(mcpjob_engine_device(h, &json, NULL), MCPJOB_OK);
	json_t *d = parse(json);
	ck_assert_str_eq(str(d, "platform"), "sim");
	ck_assert_str_eq(str(json_object_get(d, "state"), "network"), "unmetered");
	json_decref(d);
	json_t *run = last_run(h, "sync");
	ck_assert_str_eq(str(run, "outcome"), "success");
	json_decref(run);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
}
END_TEST

/* --- errors and handles ------------------------------------------------------- */

START_TEST(test_config_errors_come_as_a_list_with_key_paths) {
	char *error = NULL;
	mcpjob_t h = 1234;
	write_file(config, "{\"jobs\": [{\"id\": \"x\", \"interval\": \"15x\","
	                   " \"action\": {\"cleanup\": {\"path\": \"/tmp\", \"max_age\": \"1d\"}}},"
	                   "{\"id\": \"y\", \"interval\": \"1h\", \"colour\": 1,"
	                   " \"action\": {\"cleanup\": {\"path\": \"/tmp\", \"max_age\": \"1d\"}}}]}");
	ck_assert_int_eq(mcpjob_engine_open(config, state, &h, &error), MCPJOB_E_CONFIG);
	ck_assert_uint_eq(h, 0);
	/* One error per line, each with its key path, and nothing about flags. */
	char *nl = strchr(error, '\n');
	ck_assert_msg(nl != NULL, "one line for two errors: %s", error);
	ck_assert_ptr_nonnull(strstr(error, "jobs[0] (x)"));
	ck_assert_ptr_nonnull(strstr(error, "15x"));
	ck_assert_ptr_nonnull(strstr(nl, "jobs[1] (y)"));
	ck_assert_ptr_nonnull(strstr(nl, "colour"));
	ck_assert_ptr_null(strstr(error, "--"));
	mcpjob_free(error);

	/* From a string: the errors name it "config", not a file of ours. */
	ck_assert_int_eq(mcpjob_engine_open_json("{\"jobs\": [{\"id\": \"x\", \"interval\": \"15x\"}]}",
	                                         state, &h, &error), MCPJOB_E_CONFIG);
	ck_assert_msg(strncmp(error, "config: jobs[0] (x)", 19) == 0, "%s", error);
	ck_assert_ptr_null(strstr(error, state));
	mcpjob_free(error);
	ck_assert_int_eq(mcpjob_engine_open_json("{\"jobs\": [", state, &h, &error), MCPJOB_E_CONFIG);
	ck_assert_msg(strncmp(error, "config:1:", 9) == 0, "%s", error);
	mcpjob_free(error);

	/* A missing file says what to do without speaking of the daemon's flags. */
	ck_assert_int_eq(mcpjob_engine_open("/nonexistent/mcpjobd.json", state, &h, &error),
	                 MCPJOB_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(error, "/nonexistent/mcpjobd.json"));
	ck_assert_ptr_null(strstr(error, "--"));
	mcpjob_free(error);
	ck_assert_int_eq(mcpjob_engine_open(NULL, state, &h, NULL), MCPJOB_E_ARG);
}
END_TEST

START_TEST(test_unwritable_state_dir_is_an_error_in_the_apps_words) {
	char *error = NULL;
	mcpjob_t h = 0;
	char *bad = xasprintf("%s/no/such/dir", dir);
	write_file(config, "{\"jobs\": []}");
	ck_assert_int_eq(mcpjob_engine_open(config, bad, &h, &error), MCPJOB_E_FAILED);
	ck_assert_ptr_nonnull(strstr(error, bad));
	ck_assert_ptr_null(strstr(error, "--"));
	mcpjob_free(error);
	free(bad);
}
END_TEST

START_TEST(test_zero_stale_and_closed_handles_are_errors_not_crashes) {
	char *error = NULL, *json = NULL;
	int64_t next;
	ck_assert_int_eq(mcpjob_engine_next_due(0, &next, &error), MCPJOB_E_HANDLE);
	ck_assert_ptr_nonnull(strstr(error, "not open"));
	mcpjob_free(error);
	ck_assert_int_eq(mcpjob_engine_run_due(0, 1000, NULL), MCPJOB_E_HANDLE);
	ck_assert_int_eq(mcpjob_engine_expire(0), MCPJOB_E_HANDLE);
	ck_assert_int_eq(mcpjob_jobs_list(0xdeadbeefcafeULL, &json, NULL), MCPJOB_E_HANDLE);
	ck_assert_int_eq(mcpjob_engine_close(0), MCPJOB_E_HANDLE);

	mcpjob_t a = open_json(cleanup_jobs);
	ck_assert_int_eq(mcpjob_engine_close(a), MCPJOB_OK);
	/* Closed: every call refuses it, a second close too. */
	ck_assert_int_eq(mcpjob_engine_next_due(a, &next, NULL), MCPJOB_E_HANDLE);
	ck_assert_int_eq(mcpjob_job_run(a, "tidy", 0, &json, NULL), MCPJOB_E_HANDLE);
	ck_assert_int_eq(mcpjob_engine_expire(a), MCPJOB_E_HANDLE);
	ck_assert_int_eq(mcpjob_engine_close(a), MCPJOB_E_HANDLE);
	/* The next engine takes the same slot with a new generation: the old handle stays dead. */
	mcpjob_t b = open_json(cleanup_jobs);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_eq(a & 0xffffffffu, b & 0xffffffffu);
	ck_assert_int_eq(mcpjob_jobs_list(a, &json, NULL), MCPJOB_E_HANDLE);
	ck_assert_int_eq(mcpjob_jobs_list(b, &json, NULL), MCPJOB_OK);
	mcpjob_free(json);
	/* NULL arguments are refused too. */
	ck_assert_int_eq(mcpjob_job_status(b, NULL, &json, NULL), MCPJOB_E_ARG);
	ck_assert_int_eq(mcpjob_job_history(b, "tidy", 0, 0, &json, NULL), MCPJOB_E_ARG);
	ck_assert_int_eq(mcpjob_job_run(b, "tidy", 0x80, &json, NULL), MCPJOB_E_ARG);
	ck_assert_int_eq(mcpjob_engine_close(b), MCPJOB_OK);
}
END_TEST

#if !MCPJOB_NO_SPAWN
/* --- long runs: exec jobs and a stdio MCP server -------------------------------- */

static const char *const two_jobs =
	"{\"jobs\": ["
	"{\"id\": \"quick\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"true\"]}}},"
	"{\"id\": \"slow\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"sleep\", \"60\"]}}},"
	"{\"id\": \"later\", \"interval\": \"2h\", \"initial_delay\": \"1h\","
	" \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}";

START_TEST(test_run_due_stops_what_outlives_the_budget) {
	mcpjob_t h = open_json(two_jobs);
	ck_assert_int_eq(mcpjob_engine_run_due(h, 1000, NULL), 2);
	json_t *q = last_run(h, "quick"), *s = last_run(h, "slow");
	ck_assert_str_eq(str(q, "outcome"), "success");
	ck_assert_str_eq(str(s, "outcome"), "cancelled");
	ck_assert_ptr_nonnull(strstr(str(s, "message"), "time budget"));
	ck_assert_ptr_null(last_run(h, "later"));
	json_decref(q);
	json_decref(s);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
}
END_TEST

struct expirer {
	mcpjob_t h;
	atomic_int slow_started; /* set by the event callback, on run_due's thread */
	int busy_rc;
	int expire_rc;
};

static void on_slow_started(void *user, const char *type, const char *job, const char *json) {
	struct expirer *x = user;
	(void)json;
	if (strcmp(type, "run.started") == 0 && job != NULL && strcmp(job, "slow") == 0)
		atomic_store(&x->slow_started, 1);
}

/*
 * The OS's expiration handler: on its own thread, while run_due blocks. It
 * waits for the slow run's run.started event, which the engine sends from
 * inside run_due: polling the engine before that could itself hold the
 * engine when run_due begins and make run_due the refused one.
 */
static void *expire_when_running(void *arg) {
	struct expirer *x = arg;
	for (int i = 0; i < 12000 && !atomic_load(&x->slow_started); i++) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	char *json = NULL;
	x->busy_rc = mcpjob_jobs_list(x->h, &json, NULL); /* run_due is inside: refused */
	mcpjob_free(json);
	x->expire_rc = mcpjob_engine_expire(x->h);
	return NULL;
}

START_TEST(test_expire_from_another_thread_stops_and_records) {
	mcpjob_t h = open_json(two_jobs);
	struct expirer x = {.h = h, .busy_rc = 0, .expire_rc = -100};
	atomic_init(&x.slow_started, 0);
	ck_assert_int_eq(mcpjob_engine_set_event_callback(h, on_slow_started, &x), MCPJOB_OK);
	pthread_t t;
	pthread_create(&t, NULL, expire_when_running, &x);
	int n = mcpjob_engine_run_due(h, 60000, NULL);
	pthread_join(t, NULL);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(atomic_load(&x.slow_started), 1);
	ck_assert_int_eq(x.busy_rc, MCPJOB_E_BUSY); /* a second thread is refused, not raced */
	ck_assert_int_eq(x.expire_rc, MCPJOB_OK);
	json_t *s = last_run(h, "slow");
	ck_assert_str_eq(str(s, "outcome"), "cancelled");
	ck_assert_ptr_nonnull(strstr(str(s, "message"), "expired"));
	json_decref(s);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
}
END_TEST

/* mcp-fault beside this test binary: build/tests/servers/mcp-fault. */
static char *mcp_fault_path(void) {
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	char *p = xasprintf("%s/servers/mcp-fault", self);
	ck_assert_msg(access(p, X_OK) == 0, "%s is not built", p);
	return p;
}

START_TEST(test_progress_of_an_mcp_tool_reaches_the_event_callback) {
	char *server = mcp_fault_path();
	char *json = xasprintf(
		"{\"mcpServers\": {\"fault\": {\"command\": \"%s\", \"args\": [\"--mode\", \"ok\"]}},"
		" \"jobs\": [{\"id\": \"steps\", \"interval\": \"1h\", \"initial_delay\": \"1h\","
		" \"action\": {\"mcp\": {\"server\": \"fault\", \"tool\": \"slow\","
		" \"arguments\": {\"seconds\": 0.4, \"steps\": 4}}}}]}", server);
	mcpjob_t h = 0;
	char *error = NULL, *out = NULL;
	ck_assert_int_eq(mcpjob_engine_open_json(json, state, &h, &error), MCPJOB_OK);
	struct seen s = {0};
	mcpjob_engine_set_event_callback(h, on_event, &s);
	ck_assert_int_eq(mcpjob_job_run(h, "steps", 0, &out, &error), MCPJOB_OK);
	mcpjob_free(out);
	/* 0: the run started in mcpjob_job_run(); run_due waited for it to finish. */
	ck_assert_int_eq(mcpjob_engine_run_due(h, 20000, &error), 0);
	ck_assert_int_ge(s.progress, 1);
	json_t *p = json_loads(s.first_progress, 0, NULL);
	ck_assert_str_eq(str(p, "job"), "steps");
	ck_assert_ptr_nonnull(json_object_get(p, "progress"));
	json_decref(p);
	json_t *run = last_run(h, "steps");
	ck_assert_str_eq(str(run, "outcome"), "success");
	json_decref(run);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
	free(json);
	free(server);
}
END_TEST

START_TEST(test_close_stops_what_runs_and_records_it) {
	mcpjob_t h = open_json(two_jobs);
	char *json = NULL;
	ck_assert_int_eq(mcpjob_job_run(h, "slow", 0, &json, NULL), MCPJOB_OK);
	mcpjob_free(json);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
	h = open_json(two_jobs);
	json_t *s = last_run(h, "slow");
	ck_assert_str_eq(str(s, "outcome"), "cancelled");
	ck_assert_ptr_nonnull(strstr(str(s, "message"), "closed the engine"));
	json_decref(s);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
}
END_TEST
#else
START_TEST(test_no_spawn_build_refuses_processes_with_the_reason) {
	char *error = NULL;
	mcpjob_t h = 0;
	ck_assert_int_eq(mcpjob_engine_open_json(
		"{\"jobs\": [{\"id\": \"x\", \"interval\": \"1h\", \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}",
		state, &h, &error), MCPJOB_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(error, "jobs[0] (x).action.exec"));
	ck_assert_ptr_nonnull(strstr(error, "this build cannot start processes: use an http MCP server"));
	mcpjob_free(error);
	ck_assert_int_eq(mcpjob_engine_open_json(
		"{\"mcpServers\": {\"s\": {\"command\": \"/bin/true\"}}, \"jobs\": []}",
		state, &h, &error), MCPJOB_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(error, "mcpServers.s"));
	ck_assert_ptr_nonnull(strstr(error, "this build cannot start processes"));
	mcpjob_free(error);
}
END_TEST
#endif

START_TEST(test_cleanup_deletes_old_files_in_this_build) {
	char *old = xasprintf("%s/old.tmp", cache), *fresh = xasprintf("%s/fresh.tmp", cache);
	write_file(old, "old");
	write_file(fresh, "fresh");
	struct timespec past[2] = {{time(NULL) - 10 * 86400, 0}, {time(NULL) - 10 * 86400, 0}};
	ck_assert_int_eq(utimensat(AT_FDCWD, old, past, 0), 0);
	mcpjob_t h = open_json(cleanup_jobs);
	ck_assert_int_eq(mcpjob_engine_run_due(h, 20000, NULL), 1);
	json_t *run = last_run(h, "tidy");
	ck_assert_str_eq(str(run, "outcome"), "success");
	ck_assert_str_eq(str(run, "message"), "deleted 1 file (3 bytes)");
	json_decref(run);
	ck_assert_int_eq(access(old, F_OK), -1);
	ck_assert_int_eq(access(fresh, F_OK), 0);
	ck_assert_int_eq(count_runs(h, "tidy"), 1);
	ck_assert_int_eq(mcpjob_engine_close(h), MCPJOB_OK);
	free(old);
	free(fresh);
}
END_TEST

int main(void) {
	Suite *s = suite_create("embed");
	TCase *tc = tcase_create("embed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_job_screen_lists_shows_and_toggles_jobs);
	tcase_add_test(tc, test_run_now_runs_in_run_due_with_events_and_history);
	tcase_add_test(tc, test_next_due_is_the_next_wake_up);
	tcase_add_test(tc, test_device_reported_by_the_host_gates_jobs);
	tcase_add_test(tc, test_config_errors_come_as_a_list_with_key_paths);
	tcase_add_test(tc, test_unwritable_state_dir_is_an_error_in_the_apps_words);
	tcase_add_test(tc, test_zero_stale_and_closed_handles_are_errors_not_crashes);
	tcase_add_test(tc, test_cleanup_deletes_old_files_in_this_build);
#if !MCPJOB_NO_SPAWN
	tcase_add_test(tc, test_run_due_stops_what_outlives_the_budget);
	tcase_add_test(tc, test_expire_from_another_thread_stops_and_records);
	tcase_add_test(tc, test_progress_of_an_mcp_tool_reaches_the_event_callback);
	tcase_add_test(tc, test_close_stops_what_runs_and_records_it);
#else
	tcase_add_test(tc, test_no_spawn_build_refuses_processes_with_the_reason);
#endif
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
