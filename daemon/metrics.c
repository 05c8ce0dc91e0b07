/*
 * metrics.c - Prometheus text-format metrics from the engine: each run's end
 * (events_watch_runs(), from the record itself) and, for a textfile, job.state.
 *
 * Counters live in a jansson object, saved whole to STATE_DIR/metrics.json
 * at most METRICS_SAVE_MS after a run (small: a few numbers per job; one
 * file write per run cost a busy daemon more than the run's own records),
 * and at exit:
 *   {"version": 1, "jobs": {ID: {"runs": {OUTCOME: n}, "counted": run_id,
 *                                "counted_start": time, "duration_ms": ms}}}
 * The rest (last run, last success, state, enabled) is read from the
 * engine when rendering, so it is never stale.
 */
#include "daemon/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/events.h"
#include "daemon/job.h"
#include "daemon/store.h"

#define METRICS_FILE "metrics.json"
#define METRICS_VERSION 1
#define METRICS_PAGE 32 /* runs read per history call at start */
/* How late the counters reach metrics.json after a run. A kill -9 loses
 * nothing: at the next start the runs the history holds beyond the saved
 * counters are counted. Armed only after a run, so an idle daemon never wakes. */
#define METRICS_SAVE_MS 1000

struct metrics {
	struct event_base *base;
	struct engine *engine;
	struct events_sub *sub;
	struct event *write_ev; /* one write per loop turn, after the job's new state */
	struct event *save_ev;  /* the counters' save, METRICS_SAVE_MS after a run */
	char *counters_path;
	json_t *jobs; /* ID -> {"runs", "counted", "duration_ms"} */
	struct log_ratelimit rl;
};

static const enum run_outcome counted_outcomes[] = {
    OUTCOME_SUCCESS, OUTCOME_FAILURE, OUTCOME_RETRY, OUTCOME_TIMEOUT, OUTCOME_CANCELLED,
    OUTCOME_INTERRUPTED};
static const enum job_state all_states[] = {JOB_STATE_DISABLED, JOB_STATE_SCHEDULED,
                                            JOB_STATE_PENDING, JOB_STATE_RUNNING,
                                            JOB_STATE_BACKOFF};

/* ---- files ------------------------------------------------------------------ */

/* Write @text to @path through a temporary file and rename(2). */
static int write_atomic(const char *path, const char *text, char **cause) {
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "w");
	int rc = 0;
	if (f == NULL || fputs(text, f) == EOF)
		rc = -1;
	if (f != NULL && fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0) {
		*cause = xasprintf("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

static json_t *job_counters(struct metrics *m, const char *id) {
	json_t *c = json_object_get(m->jobs, id);
	if (c == NULL) {
		c = json_pack("{s:{}, s:I, s:n}", "runs", "counted", (json_int_t)0, "duration_ms");
		json_object_set_new(m->jobs, id, c);
	}
	return c;
}

/* Count a finished run unless it was counted already (run ids of one job
 * grow: a job never overlaps itself); @started_at and @duration_ms are
 * stolen, as a run record's JSON has them. */
static bool count_values(struct metrics *m, const char *id, json_int_t run_id,
                         const char *outcome, json_t *started_at, json_t *duration_ms) {
	json_t *c = job_counters(m, id);
	if (outcome == NULL || strcmp(outcome, "running") == 0 ||
	    run_id <= json_integer_value(json_object_get(c, "counted"))) {
		json_decref(started_at);
		json_decref(duration_ms);
		return false;
	}
	json_t *runs = json_object_get(c, "runs");
	json_object_set_new(runs, outcome,
	                    json_integer(json_integer_value(json_object_get(runs, outcome)) + 1));
	json_object_set_new(c, "counted", json_integer(run_id));
	json_object_set_new(c, "counted_start", started_at ? started_at : json_null());
	json_object_set_new(c, "duration_ms", duration_ms ? duration_ms : json_null());
	return true;
}

/* The same from a run record's JSON (the history, at start). */
static bool count_run(struct metrics *m, const char *id, const json_t *run) {
	return count_values(m, id, json_integer_value(json_object_get(run, "run_id")),
	                    json_string_value(json_object_get(run, "outcome")),
	                    json_incref(json_object_get(run, "started_at")),
	                    json_incref(json_object_get(run, "duration_ms")));
}

static void save_counters(struct metrics *m) {
	char *cause = NULL;
	json_t *doc = json_pack("{s:i, s:O}", "version", METRICS_VERSION, "jobs", m->jobs);
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (text == NULL || write_atomic(m->counters_path, text, &cause) < 0) {
		if (log_ratelimit_ok(&m->rl, 2, 60000, "metrics write failures"))
			log_warning("metrics counters: %s (they are rebuilt from the history at the "
			            "next start)", cause ? cause : "cannot encode them");
	}
	free(cause);
	free(text);
}

static void on_save(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	save_counters(arg);
}

static void load_counters(struct metrics *m) {
	json_error_t err;
	json_t *doc = json_load_file(m->counters_path, 0, &err);
	json_t *jobs = json_object_get(doc, "jobs");
	if (doc != NULL && json_integer_value(json_object_get(doc, "version")) == METRICS_VERSION &&
	    json_is_object(jobs)) {
		m->jobs = json_incref(jobs);
	} else {
		if (doc != NULL || errno != ENOENT)
			log_warning("%s: %s; the run counters are rebuilt from the history",
			            m->counters_path, doc ? "not a metrics file of this version" : err.text);
		m->jobs = json_object();
	}
	json_decref(doc);
}

/* Count what the history has beyond the saved counters, newest first.
 * A job whose last run is the one counted last (or that never ran) needs
 * no history read: start-up with 100k jobs stays one pass over them, and
 * builds no job's JSON (that took as long as loading them). */
static void catch_up_job(void *arg, const char *id, int64_t last_run_ms) {
	struct metrics *m = arg;
	char last[TIME_RFC3339_LEN];
	const json_t *c = json_object_get(m->jobs, id);
	const char *counted_start = json_string_value(json_object_get(c, "counted_start"));
	if (last_run_ms == 0 || (counted_start != NULL &&
	                         strcmp(counted_start, time_format_rfc3339(last_run_ms, last)) == 0))
		return;
	json_int_t counted = json_integer_value(json_object_get(job_counters(m, id), "counted"));
	json_t *newer = json_array();
	int64_t before = 0;
	for (bool more = true; more;) {
		json_t *res = NULL;
		char *cause = NULL;
		if (engine_job_history(m->engine, id, METRICS_PAGE, before, &res, &cause) != 0) {
			log_warning("metrics: %s", cause);
			free(cause);
			break;
		}
		const json_t *runs = json_object_get(res, "runs");
		size_t i;
		const json_t *run;
		more = json_array_size(runs) == METRICS_PAGE;
		json_array_foreach(runs, i, run) {
			if (json_integer_value(json_object_get(run, "run_id")) <= counted) {
				more = false;
				break;
			}
			json_array_append(newer, (json_t *)run);
			int64_t started;
			if (time_parse_rfc3339(json_string_value(json_object_get(run, "started_at")), &started))
				before = started;
		}
		json_decref(res);
	}
	for (size_t i = json_array_size(newer); i-- > 0;)
		count_run(m, id, json_array_get(newer, i)); /* oldest first: "counted" grows */
	json_decref(newer);
}

/* ---- rendering ---------------------------------------------------------------- */

/* A label value with \, " and newline escaped, as the text format wants. */
static char *label_value(const char *s) {
	char *out = xmalloc(2 * strlen(s) + 1), *o = out;
	for (; *s; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			*o++ = '\\';
			*o++ = *s == '\n' ? 'n' : *s;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

static double seconds_of(const json_t *job, const char *key) {
	int64_t ms;
	const char *s = json_string_value(json_object_get(job, key));
	return s && time_parse_rfc3339(s, &ms) ? (double)ms / 1000.0 : 0.0;
}

struct family {
	const char *name, *type, *help;
};

static const struct family families[] = {
    {"mcpjob_last_run_timestamp_seconds", "gauge",
     "Start of the job's last run, seconds since the epoch; 0 if it never ran."},
    {"mcpjob_last_success_timestamp_seconds", "gauge",
     "Start of the job's last successful run, seconds since the epoch; 0 if none."},
    {"mcpjob_last_run_duration_seconds", "gauge", "How long the job's last finished run took."},
    {"mcpjob_runs_total", "counter", "Finished runs of the job by outcome (kept across restarts)."},
    {"mcpjob_job_state", "gauge", "1 for the job's current state, 0 for the others."},
    {"mcpjob_job_enabled", "gauge", "1 if the job is enabled, else 0."},
};

/* The lines of family @f for one job, appended to @buf. */
static void render_job(struct metrics *m, FILE *buf, size_t f, const json_t *job) {
	char *id = label_value(json_string_value(json_object_get(job, "id")));
	const json_t *c = json_object_get(m->jobs, json_string_value(json_object_get(job, "id")));
	const char *name = families[f].name;
	if (f == 0 || f == 1)
		fprintf(buf, "%s{job_id=\"%s\"} %.3f\n", name, id,
		        seconds_of(job, f == 0 ? "last_run" : "last_success"));
	else if (f == 2 && json_is_integer(json_object_get(c, "duration_ms")))
		fprintf(buf, "%s{job_id=\"%s\"} %.3f\n", name, id,
		        (double)json_integer_value(json_object_get(c, "duration_ms")) / 1000.0);
	else if (f == 3)
		for (size_t i = 0; i < sizeof counted_outcomes / sizeof counted_outcomes[0]; i++) {
			const char *o = job_outcome_name(counted_outcomes[i]);
			fprintf(buf, "%s{job_id=\"%s\",outcome=\"%s\"} %lld\n", name, id, o,
			        (long long)json_integer_value(json_object_get(json_object_get(c, "runs"), o)));
		}
	else if (f == 4)
		for (size_t i = 0; i < sizeof all_states / sizeof all_states[0]; i++) {
			const char *s = job_state_name(all_states[i]);
			const char *now = json_string_value(json_object_get(job, "state"));
			fprintf(buf, "%s{job_id=\"%s\",state=\"%s\"} %d\n", name, id, s,
			        now != NULL && strcmp(now, s) == 0);
		}
	else if (f == 5)
		fprintf(buf, "%s{job_id=\"%s\"} %d\n", name, id,
		        json_is_true(json_object_get(job, "enabled")));
	free(id);
}

char *metrics_render(struct metrics *m) {
	char *text = NULL;
	size_t len = 0;
	FILE *buf = open_memstream(&text, &len);
	if (buf == NULL)
		log_fatal("open_memstream");
	json_t *list = engine_jobs_json(m->engine);
	const json_t *jobs = json_object_get(list, "jobs");
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
		fprintf(buf, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
		        families[f].name, families[f].type);
		size_t i;
		const json_t *job;
		json_array_foreach(jobs, i, job) render_job(m, buf, f, job);
	}
	json_decref(list);
	if (fclose(buf) != 0)
		log_fatal("open_memstream");
	return text;
}

/* ---- writing ------------------------------------------------------------------- */

static void write_textfile(evutil_socket_t fd, short what, void *arg) {
	struct metrics *m = arg;
	(void)fd;
	(void)what;
	const char *path = engine_config(m->engine)->metrics_textfile;
	if (path == NULL)
		return;
	char *text = metrics_render(m), *cause = NULL;
	if (write_atomic(path, text, &cause) < 0 &&
	    log_ratelimit_ok(&m->rl, 2, 60000, "metrics write failures"))
		log_warning("metrics textfile: %s (create the directory or fix \"metrics\": "
		            "{\"textfile\"} in the configuration)", cause);
	free(cause);
	free(text);
}

/* The counters come from events_watch_runs(); job states matter only to a textfile. */
static const char *const *metrics_types(const struct metrics *m) {
	static const char *const none[] = {NULL};
	static const char *const states[] = {EVENT_JOB_STATE, NULL};
	return engine_config(m->engine)->metrics_textfile ? states : none;
}

void metrics_changed(struct metrics *m) {
	if (m == NULL)
		return;
	if (m->sub != NULL) /* a reload may have set or dropped the textfile */
		events_sub_set_types(m->sub, metrics_types(m));
	event_active(m->write_ev, EV_TIMEOUT, 1);
}

/* A run ended (events_watch_runs): counted from its record, no JSON of it built. */
static void on_run(void *arg, const struct run_record *run) {
	struct metrics *m = arg;
	int64_t ms = run->finished_ms - run->started_ms;
	bool finished = run->finished_ms != 0 && run->outcome != OUTCOME_RUNNING;
	if (!count_values(m, run->job_id, (json_int_t)run->run_id, job_outcome_name(run->outcome),
	                  time_to_json(run->started_ms),
	                  finished ? json_integer(ms > 0 ? ms : 0) : json_null()))
		return;
	if (!evtimer_pending(m->save_ev, NULL)) {
		struct timeval tv = {METRICS_SAVE_MS / 1000, (METRICS_SAVE_MS % 1000) * 1000};
		evtimer_add(m->save_ev, &tv);
	}
	metrics_changed(m); /* the textfile, after the job's new state */
}

/* A job's state changed: the textfile shows it (subscribed only with one). */
static void on_event(void *arg, const json_t *msg) {
	(void)msg;
	metrics_changed(arg);
}

struct metrics *metrics_new(struct event_base *base, struct engine *engine,
                            const char *state_dir) {
	struct metrics *m = xcalloc(1, sizeof *m);
	m->base = base;
	m->engine = engine;
	m->counters_path = xasprintf("%s/%s", state_dir, METRICS_FILE);
	m->write_ev = event_new(base, -1, 0, write_textfile, m);
	m->save_ev = evtimer_new(base, on_save, m);
	load_counters(m);
	engine_each_last_run(engine, catch_up_job, m);
	save_counters(m);
	m->sub = events_subscribe_types(engine_events(engine), metrics_types(m), on_event, m);
	events_watch_runs(engine_events(engine), on_run, m);
	write_textfile(-1, 0, m);
	return m;
}

void metrics_free(struct metrics *m) {
	if (m == NULL)
		return;
	events_unsubscribe(engine_events(m->engine), m->sub);
	events_watch_runs(engine_events(m->engine), NULL, NULL);
	write_textfile(-1, 0, m); /* what the last runs changed, if not written yet */
	if (evtimer_pending(m->save_ev, NULL))
		save_counters(m);
	event_free(m->write_ev);
	event_free(m->save_ev);
	json_decref(m->jobs);
	free(m->counters_path);
	free(m);
}
