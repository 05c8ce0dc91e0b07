/*
 * run.c - one run's life: record its start, start its action, watch its
 * timeout, stop it, keep its progress, and - once its owner has decided
 * what comes next for the job - record its end, log it, tell subscribers
 * and waiters. See run.h for the contract with the owner.
 */
#include "daemon/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/jsontext.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/action/action.h"
#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/orphan.h"
#include "daemon/spawn.h"
#include "daemon/store.h"

struct run {
	struct run_params p;
	struct run_record rec;
	const struct action_ops *ops;
	struct action_run *handle;
	const struct spawn_identity *id; /* owned by the configuration */
	bool stopping;
	bool have_progress;
	struct engine_timer *timeout;
	double progress, total;
	char *progress_msg;
	bool launched;             /* its "running" record is committed */
	enum run_outcome stop_why; /* run_stop() before the launch */
	int64_t resumed_ms;        /* run_resume(): when; 0 for a run started here */
	bool left;                 /* run_leave(): its record stays running */
	bool needs_login;          /* its server wants a person's login */
};

bool run_waiters_want(const struct run_waiter *w, bool text) {
	for (; w; w = w->next)
		if (!w->dead && (text ? w->text_fn != NULL : w->fn != NULL))
			return true;
	return false;
}

void run_waiters_fire_with(struct run_waiter *w, const json_t *run, const char *text,
                           size_t len) {
	char *made = NULL;
	if (text == NULL && run != NULL && run_waiters_want(w, true)) {
		made = json_dumps(run, JSON_COMPACT);
		text = made;
		len = made ? strlen(made) : 0;
	}
	while (w) {
		struct run_waiter *next = w->next;
		if (!w->dead && w->fn)
			w->fn(w->arg, run);
		else if (!w->dead && w->text_fn)
			w->text_fn(w->arg, text, len);
		free(w);
		w = next;
	}
	free(made);
}

void run_waiters_fire_text(struct run_waiter *w, const char *text, size_t len) {
	for (; w; w = w->next) {
		if (!w->dead && w->text_fn)
			w->text_fn(w->arg, text, len);
		w->text_fn = NULL; /* answered: the list's last fire skips it */
	}
}

void run_waiters_fire(struct run_waiter *w, const json_t *run) {
	run_waiters_fire_with(w, run, NULL, 0);
}

/* The run's record as JSON text, with "retry_at" when a retry follows. */
static void run_record_text(const struct run *r, int64_t retry_at_ms, struct jsontext *t) {
	jsontext_init(t);
	store_run_text(&r->rec, t);
	if (retry_at_ms) { /* one more member before the record's closing brace */
		t->buf[--t->len] = '\0';
		t->comma = true;
		JSONTEXT_KEY(t, "retry_at");
		jsontext_time(t, retry_at_ms);
		jsontext_obj_close(t);
	}
}

uint64_t run_get_id(const struct run *r) { return r->rec.run_id; }
enum run_outcome run_get_outcome(const struct run *r) { return r->rec.outcome; }
enum run_trigger run_get_trigger(const struct run *r) { return r->rec.trigger; }
int run_get_attempt(const struct run *r) { return r->rec.attempt; }
int64_t run_get_started_ms(const struct run *r) { return r->rec.started_ms; }
const struct job_def *run_get_def(const struct run *r) { return r->p.def; }
const char *run_get_message(const struct run *r) { return r->rec.message; }
bool run_is_stopping(const struct run *r) { return r->stopping; }
bool run_needs_login(const struct run *r) { return r->needs_login; }
int64_t run_get_last_run_before(const struct run *r) { return r->p.last_run_ms; }

json_t *run_progress_json(const struct run *r) {
	if (!r->have_progress)
		return json_null();
	return json_pack("{s:f, s:o, s:o}", "progress", r->progress, "total",
	                 r->total >= 0 ? json_real(r->total) : json_null(), "message",
	                 r->progress_msg ? json_string(r->progress_msg) : json_null());
}

void run_free(struct run *r) {
	if (r == NULL)
		return;
	if (r->p.clock && r->timeout)
		r->p.clock->timer_free(r->timeout);
	run_waiters_fire(r->p.waiters, NULL);
	store_run_record_clear(&r->rec);
	free(r->progress_msg);
	free(r);
}

static void run_log(struct run *r, enum log_level level, const char *msgid, const char *fmt,
                    const char *detail) {
	char rid[24];
	snprintf(rid, sizeof rid, "%llu", (unsigned long long)r->rec.run_id);
	struct log_ctx ctx = {.job_id = r->p.def->id, .run_id = rid, .message_id = msgid,
	                      .outcome = r->rec.outcome == OUTCOME_RUNNING
	                                     ? NULL
	                                     : job_outcome_name(r->rec.outcome)};
	log_msg(level, &ctx, fmt, rid, detail ? detail : "");
}

/* The action is done: keep its result and tell the owner, once. */
static void run_action_done(void *arg, struct action_result *res) {
	struct run *r = arg;
	r->handle = NULL;
	r->p.clock->timer_set(r->timeout, INT64_MAX);
	r->rec.outcome = res->outcome;
	r->needs_login = res->needs_login;
	r->rec.finished_ms = r->p.clock->now_ms(r->p.clock->ctx);
	free(r->rec.message);
	r->rec.message = res->message;
	res->message = NULL;
	free(r->rec.output);
	r->rec.output = res->output;
	res->output = NULL;
	json_decref(r->rec.structured);
	r->rec.structured = res->structured;
	res->structured = NULL;
	free(r->rec.structured_text);
	r->rec.structured_text = res->structured_text;
	res->structured_text = NULL;
	action_result_clear(res);
	r->p.hooks->ended(r->p.owner, r);
}

/* "retry in 5min (at 14:05:00)" for people, in local time. */
static char *run_retry_phrase(int64_t now, int64_t at) {
	char rel[32], when[16];
	time_t secs = (time_t)(at / 1000);
	struct tm tm;
	localtime_r(&secs, &tm);
	strftime(when, sizeof when, "%H:%M:%S", &tm);
	time_format_relative(at, now, rel, sizeof rel);
	return xasprintf("; retry %s (at %s)", rel, when);
}

void run_finish(struct run *r, const struct job_record *job_rec, int64_t retry_at_ms) {
	char *cause = NULL;
	int64_t now = r->rec.finished_ms;
	const struct job_def *def = r->p.def;
	char dur[32];
	duration_format(now - r->rec.started_ms, dur, sizeof dur);
	char *retry = retry_at_ms ? run_retry_phrase(now, retry_at_ms) : xstrdup("");
	char *line = xasprintf("%s in %s%s%s%s", job_outcome_name(r->rec.outcome), dur,
	                       r->rec.message ? ": " : "", r->rec.message ? r->rec.message : "",
	                       retry);
	run_log(r, r->rec.outcome == OUTCOME_SUCCESS ? LOG_LEVEL_INFO : LOG_LEVEL_WARNING,
	        MCPJOB_MSGID_RUN_FINISHED, "run %s: %s", line);
	free(line);
	free(retry);
	events_run_ended(r->p.events, &r->rec);
	/* The record as a tree only for whom wants one. */
	bool event = events_wanted(r->p.events, EVENT_RUN_FINISHED, def->id);
	json_t *run_json = NULL;
	if (event || run_waiters_want(r->p.waiters, false)) {
		run_json = store_run_to_json(&r->rec);
		if (retry_at_ms)
			json_object_set_new(run_json, "retry_at", time_to_json(retry_at_ms));
	}
	if (event)
		events_emit(r->p.events, EVENT_RUN_FINISHED, def->id,
		            json_pack("{s:I, s:s, s:o, s:I, s:O}", "run_id", (json_int_t)r->rec.run_id,
		                      "outcome", job_outcome_name(r->rec.outcome), "message",
		                      r->rec.message ? json_string(r->rec.message) : json_null(),
		                      "duration_ms", (json_int_t)(now - r->rec.started_ms), "run",
		                      run_json));
	/*
	 * The socket's waiters after the log line and run.finished (clients
	 * read them in that order) but before the record is queued: their
	 * reply (the record as text) only goes into a socket, and all this is
	 * one loop turn, so no request sees the job in between - the queueing
	 * (which wakes the store's writer) is off the reply's path. Waiters
	 * with a callback (the embedding API) stay last: they may read the
	 * history, which must show this run.
	 */
	if (run_waiters_want(r->p.waiters, true)) {
		struct jsontext t;
		run_record_text(r, retry_at_ms, &t);
		run_waiters_fire_text(r->p.waiters, t.buf, t.len);
		jsontext_free(&t);
	}
	if (store_run_finish(r->p.store, &r->rec, job_rec, def->history_max_runs,
	                     def->history_max_age_ms, now, &cause) < 0) {
		log_error("%s: cannot record the end of run %llu: %s", def->id,
		          (unsigned long long)r->rec.run_id, cause);
		free(cause);
	}
	run_waiters_fire(r->p.waiters, run_json);
	r->p.waiters = NULL;
	json_decref(run_json);
}

static void run_progress(void *arg, double progress, double total, const char *message) {
	struct run *r = arg;
	r->have_progress = true;
	r->progress = progress;
	r->total = total;
	free(r->progress_msg);
	r->progress_msg = xstrdup_or_null(message);
	if (events_wanted(r->p.events, EVENT_RUN_PROGRESS, r->p.def->id))
		events_emit(r->p.events, EVENT_RUN_PROGRESS, r->p.def->id,
		            json_pack("{s:I, s:f, s:o, s:o}", "run_id", (json_int_t)r->rec.run_id,
		                      "progress", progress, "total", total >= 0 ? json_real(total) : json_null(),
		                      "message", message ? json_string(message) : json_null()));
}

static void run_timed_out(void *arg) {
	struct run *r = arg;
	char dur[32], *why;
	duration_format(r->p.def->timeout_ms, dur, sizeof dur);
	why = xasprintf("timed out after %s", dur);
	run_stop(r, OUTCOME_TIMEOUT, why);
	free(why);
}

void run_stop(struct run *r, enum run_outcome why, const char *reason) {
	if (r->stopping)
		return;
	r->stopping = true;
	run_log(r, LOG_LEVEL_INFO, NULL, "run %s: stopping: %s", reason);
	if (!r->launched) { /* its start is not recorded yet: run_begun() ends it */
		r->stop_why = why;
		free(r->progress_msg);
		r->progress_msg = xstrdup_or_null(reason);
		return;
	}
	r->ops->stop(r->handle, why, reason);
}

struct run_waiter *run_take_waiters(struct run *r) {
	struct run_waiter *w = r->p.waiters;
	r->p.waiters = NULL;
	return w;
}

/* Who the run's processes run as: the job's user, the default, or us
 * (resolved when the configuration was loaded, not per run). */
static int run_identity(struct run *r, char **cause) {
	return config_job_identity(r->p.cfg, r->p.def, &r->id, cause);
}

static void run_fail_deferred(evutil_socket_t fd, short what, void *arg) {
	struct run *r = arg;
	struct action_result res = {.outcome = OUTCOME_FAILURE, .message = r->progress_msg};
	(void)fd;
	(void)what;
	r->progress_msg = NULL;
	run_action_done(r, &res);
}

/*
 * A run whose action could not start still leaves its record, with why.
 * Finished from the event loop, not from inside run_start(), so an owner
 * walking its pending list is not re-entered.
 */
static void run_fail_soon(struct run *r, const char *cause) {
	struct timeval zero = {0, 0};
	r->stopping = true;
	free(r->progress_msg);
	r->progress_msg = xasprintf("could not start: %s", cause);
	event_base_once(r->p.base, -1, EV_TIMEOUT, run_fail_deferred, r, &zero);
}

static const char *run_trigger_note(enum run_trigger t) {
	switch (t) {
	case TRIGGER_SCHEDULE: return "";
	case TRIGGER_MANUAL: return " (manual)";
	case TRIGGER_RETRY: return " (retry)";
	case TRIGGER_CATCH_UP: return " (catch-up)";
	case TRIGGER_AFTER: return " (after another job)";
	}
	return "";
}

/* For the log line once the task is kept: the run may be gone by then. */
struct run_task_note {
	char *job_id, *task_id, *server;
	uint64_t run_id;
};

static void run_task_kept(void *arg, int ok, const char *cause) {
	struct run_task_note *n = arg;
	char rid[24];
	snprintf(rid, sizeof rid, "%llu", (unsigned long long)n->run_id);
	struct log_ctx ctx = {.job_id = n->job_id, .run_id = rid};
	if (ok)
		log_msg(LOG_LEVEL_INFO, &ctx, "run %s: task %s on server %s is kept with the run: a "
		        "restarted mcpjobd follows it to its end", rid, n->task_id, n->server);
	else
		log_msg(LOG_LEVEL_WARNING, &ctx, "run %s: task %s could not be kept with the run (%s): "
		        "if mcpjobd dies now, the run is recorded interrupted", rid, n->task_id,
		        cause ? cause : "unknown error");
	free(n->job_id);
	free(n->task_id);
	free(n->server);
	free(n);
}

/* The action runs as an MCP task: keep it in the "running" record. */
static void run_task(void *arg, const char *task_id, const char *server, const char *session) {
	struct run *r = arg;
	free(r->rec.task_id);
	free(r->rec.task_server);
	free(r->rec.task_session);
	r->rec.task_id = xstrdup(task_id);
	r->rec.task_server = xstrdup_or_null(server);
	r->rec.task_session = xstrdup_or_null(session);
	struct run_task_note *n = xcalloc(1, sizeof *n);
	n->job_id = xstrdup(r->p.def->id);
	n->task_id = xstrdup(task_id);
	n->server = xstrdup(server ? server : "?");
	n->run_id = r->rec.run_id;
	store_run_set_task(r->p.store, &r->rec, run_task_kept, n);
}

/* Start the action; any failure ends the run from the loop. */
static void run_start_action(struct run *r) {
	char *cause = NULL;
	r->ops = action_ops_for(r->p.def->kind);
	if (r->ops == NULL) {
		r->ops = &action_exec_ops; /* only for stop(), never reached */
		cause = xasprintf("%s actions are not supported by this build",
		                  job_action_kind_name(r->p.def->kind));
	} else if (run_identity(r, &cause) == 0) {
		struct action_env env = {
		    .base = r->p.base, .job = r->p.def, .cfg = r->p.cfg,
		    .id = r->id, .mcp = r->p.mcp, .run_id = r->rec.run_id,
		    .attempt = r->rec.attempt, .now_ms = r->rec.started_ms,
		    .last_success_ms = r->p.last_success_ms, .last_run_ms = r->p.last_run_ms,
		    .kill_grace_ms = r->p.kill_grace_ms, .input = r->rec.input,
		    .store_id = r->p.store ? store_id(r->p.store) : NULL,
		    .on_task = run_task, .resumed_ms = r->resumed_ms,
		};
		if (r->resumed_ms) {
			env.resume_task = r->rec.task_id;
			env.resume_server = r->rec.task_server;
			env.resume_session = r->rec.task_session;
		}
		r->handle = r->ops->start(&env, run_progress, run_action_done, r, &cause);
		if (r->handle != NULL) {
			if (r->p.def->timeout_ms > 0)
				r->p.clock->timer_set(r->timeout, r->rec.started_ms + r->p.def->timeout_ms);
			return;
		}
	}
	run_fail_soon(r, cause ? cause : "unknown error");
	free(cause);
}

/* The "running" record is committed (or not): start the action, or give up. */
static void run_begun(void *arg, int ok, const char *store_cause) {
	struct run *r = arg;
	const struct run_params *p = &r->p;
	if (!ok) {
		p->hooks->not_started(p->owner, r, store_cause ? store_cause : "unknown error");
		return;
	}
	r->launched = true;
	run_log(r, LOG_LEVEL_INFO, MCPJOB_MSGID_RUN_STARTED, "run %s started%s",
	        run_trigger_note(r->rec.trigger));
	if (events_wanted(p->events, EVENT_RUN_STARTED, p->def->id))
		events_emit(p->events, EVENT_RUN_STARTED, p->def->id,
		            json_pack("{s:I, s:s, s:i}", "run_id", (json_int_t)r->rec.run_id, "trigger",
		                      job_trigger_name(r->rec.trigger), "attempt", r->rec.attempt));
	if (r->stopping) { /* stopped while its start was being recorded */
		struct action_result res = {.outcome = r->stop_why, .message = r->progress_msg};
		r->progress_msg = NULL;
		run_action_done(r, &res);
		return;
	}
	run_start_action(r);
	if (p->hooks->launched)
		p->hooks->launched(p->owner, r);
	/* Who runs it goes into its "running" record: a restarted daemon stops it. */
	pid_t pgid = r->handle && r->ops->pgid ? r->ops->pgid(r->handle) : 0;
	if (pgid > 0) {
		r->rec.proc.pid = pgid;
		r->rec.proc.start = 0; /* read when the identity is queued */
		store_run_set_process(p->store, &r->rec, orphan_proc_start_time);
	}
}

struct run *run_start(const struct run_params *p, const struct job_record *job_rec,
                      char **cause) {
	struct run *r = xcalloc(1, sizeof *r);
	r->p = *p;
	r->p.waiters = NULL;
	r->p.trigger_ref = NULL; /* borrowed for the start only: the record keeps copies */
	r->p.input = NULL;
	r->rec.job_id = xstrdup(p->def->id);
	r->rec.trigger = p->trigger;
	r->rec.trigger_ref = xstrdup_or_null(p->trigger_ref);
	r->rec.input = p->input ? json_deep_copy(p->input) : NULL;
	r->rec.attempt = p->attempt;
	r->rec.started_ms = p->clock->now_ms(p->clock->ctx);
	r->rec.outcome = OUTCOME_RUNNING;
	r->total = -1;
	r->timeout = p->clock->timer_new(p->clock->ctx, p->base, false, run_timed_out, r);
	if (r->timeout == NULL) {
		*cause = xasprintf("cannot make the timeout timer of a run of %s", p->def->id);
		run_free(r);
		return NULL;
	}
	/* The job's record as saved with the start says this run is its last. */
	struct job_record rec = *job_rec;
	rec.last_run_ms = r->rec.started_ms;
	if (store_run_begin_async(p->store, &r->rec, &rec, run_begun, r, cause) < 0) {
		run_free(r);
		return NULL;
	}
	r->p.waiters = p->waiters;
	return r;
}

struct run *run_resume(const struct run_params *p, const struct run_record *rec, char **cause) {
	struct run *r = xcalloc(1, sizeof *r);
	r->p = *p;
	r->p.waiters = NULL;
	r->p.trigger_ref = NULL;
	r->p.input = NULL;
	store_run_record_copy(&r->rec, rec);
	r->rec.outcome = OUTCOME_RUNNING;
	r->rec.finished_ms = 0;
	r->total = -1;
	r->resumed_ms = p->clock->now_ms(p->clock->ctx);
	if (r->resumed_ms <= 0)
		r->resumed_ms = 1;
	r->timeout = p->clock->timer_new(p->clock->ctx, p->base, false, run_timed_out, r);
	if (r->timeout == NULL || r->rec.task_id == NULL) {
		*cause = xasprintf("cannot resume run %llu of %s: %s", (unsigned long long)rec->run_id,
		                   p->def->id, r->timeout ? "it has no task" : "no timeout timer");
		run_free(r);
		return NULL;
	}
	r->launched = true; /* its "running" record is the one the dead daemon left */
	char *note = xasprintf(": following task %s on server %s", r->rec.task_id,
	                       r->rec.task_server ? r->rec.task_server : "?");
	run_log(r, LOG_LEVEL_NOTICE, MCPJOB_MSGID_RUN_STARTED, "run %s resumed after a restart%s",
	        note);
	free(note);
	events_emit(p->events, EVENT_RUN_STARTED, p->def->id,
	            json_pack("{s:I, s:s, s:i, s:b}", "run_id", (json_int_t)r->rec.run_id, "trigger",
	                      job_trigger_name(r->rec.trigger), "attempt", r->rec.attempt,
	                      "resumed", 1));
	run_start_action(r);
	return r;
}

bool run_is_left(const struct run *r) {
	return r->left;
}

bool run_leave(struct run *r, const char *reason) {
	if (r->stopping || !r->launched || r->handle == NULL || r->ops->leave == NULL ||
	    r->rec.task_id == NULL)
		return false;
	r->left = r->stopping = true;
	char *note = xasprintf(": task %s on server %s goes on; the next start of mcpjobd follows "
	                       "it to its end and records the run", r->rec.task_id,
	                       r->rec.task_server ? r->rec.task_server : "?");
	run_log(r, LOG_LEVEL_NOTICE, NULL, "run %s left to its task%s", note);
	free(note);
	if (r->ops->leave(r->handle, reason))
		return true; /* ended from inside: @r may be gone */
	r->left = r->stopping = false;
	return false;
}
