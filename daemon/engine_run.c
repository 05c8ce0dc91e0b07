/*
 * engine_run.c - one run of a job: start it through its action, watch its
 * timeout, record it, and decide what comes next (retry with backoff, the
 * next regular due time, or waiting again for constraints).
 *
 * Every run that starts is written as "running" before its action starts
 * and rewritten with its outcome when it ends, each time in one LMDB
 * transaction with the job's state - so each run leaves exactly one record,
 * even if the daemon dies in between (the next start says "interrupted").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/engine_priv.h"
#include "daemon/orphan.h"
#include "daemon/schedule.h"

#define RUN_STORE_BACKOFF_MS 2000 /* durable: a start that could not be recorded waits this */

static void run_begun(void *arg, int ok, const char *cause);
static void run_not_started(struct run *r, const char *cause);
static void run_not_started_deferred(evutil_socket_t fd, short what, void *arg);

void waiters_fire(struct waiter *w, const json_t *run) {
	while (w) {
		struct waiter *next = w->next;
		if (!w->dead && w->fn)
			w->fn(w->arg, run);
		free(w);
		w = next;
	}
}

static void run_free(struct run *r) {
	if (r->timeout_ev)
		event_free(r->timeout_ev);
	if (r->have_id)
		spawn_identity_clear(&r->id);
	store_run_record_clear(&r->rec);
	free(r->progress_msg);
	cfg_ref_put(r->cref);
	free(r);
}

static void run_log(struct run *r, enum log_level level, const char *msgid, const char *fmt,
                    const char *detail) {
	char rid[24];
	snprintf(rid, sizeof rid, "%llu", (unsigned long long)r->rec.run_id);
	struct log_ctx ctx = {.job_id = r->job->id, .run_id = rid, .message_id = msgid,
	                      .outcome = r->rec.outcome == OUTCOME_RUNNING
	                                     ? NULL
	                                     : run_outcome_name(r->rec.outcome)};
	log_msg(level, &ctx, fmt, rid, detail ? detail : "");
}

/* What comes after a finished run for its job. */
static void job_after_run(struct job *j, struct run *r, int64_t now) {
	enum run_outcome o = r->rec.outcome;
	const struct retry_policy *rp = &r->def->retry;
	if (r->requeue && !j->removed) {
		/* Constraints stopped holding: wait for them again, like WorkManager. */
		job_set_pending(j, r->rec.trigger == TRIGGER_MANUAL ? TRIGGER_SCHEDULE : r->rec.trigger,
		                false);
		return;
	}
	if (o == OUTCOME_SUCCESS) {
		j->rec.attempt = 0;
	} else if (run_outcome_is_retryable(o) && r->rec.trigger != TRIGGER_MANUAL &&
	           r->rec.attempt < rp->max_attempts && !j->e->stopping) {
		j->rec.attempt = r->rec.attempt;
		if (job_enabled(j))
			job_schedule(j, now + sched_retry_delay(rp, r->rec.attempt), TRIGGER_RETRY);
		return;
	} else if (r->rec.trigger != TRIGGER_MANUAL) {
		j->rec.attempt = 0;
	}
	/* Back on the normal schedule (a retry series ends here too). */
	if (j->due_trigger == TRIGGER_RETRY || (j->due_ms == 0 && job_enabled(j))) {
		job_unschedule(j);
		j->due_ms = 0;
		if (job_enabled(j))
			job_schedule(j, job_next_regular(j, now), TRIGGER_SCHEDULE);
	}
}

static void run_record_finish(struct run *r, struct action_result *res) {
	int64_t now = time_now_ms();
	r->rec.outcome = res->outcome;
	r->rec.finished_ms = now;
	free(r->rec.message);
	r->rec.message = res->message;
	res->message = NULL;
	free(r->rec.output);
	r->rec.output = res->output;
	res->output = NULL;
	json_decref(r->rec.structured);
	r->rec.structured = res->structured;
	res->structured = NULL;
}

static void run_done(void *arg, struct action_result *res) {
	struct run *r = arg;
	struct job *j = r->job;
	struct engine *e = r->e;
	char *cause = NULL;
	int64_t now = time_now_ms();
	if (r->timeout_ev)
		event_del(r->timeout_ev);
	run_record_finish(r, res);
	action_result_clear(res);
	j->rec.last_outcome = r->rec.outcome;
	j->rec.last_finished_ms = now;
	free(j->rec.last_message);
	j->rec.last_message = xstrdup_or_null(r->rec.message);
	if (r->rec.outcome == OUTCOME_SUCCESS)
		j->rec.last_success_ms = r->rec.started_ms;
	j->run = NULL;
	e->running--;
	engine_watch(e, r->watch_mask, -1);
	job_after_run(j, r, now);
	if (store_run_finish(e->store, &r->rec, &j->rec, r->def->history_max_runs,
	                     r->def->history_max_age_ms, now, &cause) < 0) {
		log_error("%s: cannot record the end of run %llu: %s", j->id,
		          (unsigned long long)r->rec.run_id, cause);
		free(cause);
	}
	char dur[32];
	duration_format(now - r->rec.started_ms, dur, sizeof dur);
	char *line = xasprintf("%s in %s%s%s", run_outcome_name(r->rec.outcome), dur,
	                       r->rec.message ? ": " : "", r->rec.message ? r->rec.message : "");
	run_log(r, r->rec.outcome == OUTCOME_SUCCESS ? LOG_LEVEL_INFO : LOG_LEVEL_WARNING,
	        MCPJOB_MSGID_RUN_FINISHED, "run %s: %s", line);
	free(line);
	json_t *run_json = store_run_to_json(&r->rec);
	events_emit(e->events, EVENT_RUN_FINISHED, j->id,
	            json_pack("{s:I, s:s, s:o, s:I, s:O}", "run_id", (json_int_t)r->rec.run_id,
	                      "outcome", run_outcome_name(r->rec.outcome), "message",
	                      r->rec.message ? json_string(r->rec.message) : json_null(),
	                      "duration_ms", (json_int_t)(now - r->rec.started_ms), "run", run_json));
	waiters_fire(r->waiters, run_json);
	json_decref(run_json);
	if (j->removed)
		job_free(j);
	else
		job_announce(j);
	run_free(r);
	engine_run_finished(e);
}

static void run_progress(void *arg, double progress, double total, const char *message) {
	struct run *r = arg;
	r->have_progress = true;
	r->progress = progress;
	r->total = total;
	free(r->progress_msg);
	r->progress_msg = xstrdup_or_null(message);
	events_emit(r->e->events, EVENT_RUN_PROGRESS, r->job->id,
	            json_pack("{s:I, s:f, s:o, s:o}", "run_id", (json_int_t)r->rec.run_id,
	                      "progress", progress, "total", total >= 0 ? json_real(total) : json_null(),
	                      "message", message ? json_string(message) : json_null()));
}

static void run_timeout(evutil_socket_t fd, short what, void *arg) {
	struct run *r = arg;
	char dur[32], *why;
	(void)fd;
	(void)what;
	duration_format(r->def->timeout_ms, dur, sizeof dur);
	why = xasprintf("timed out after %s", dur);
	run_stop(r, OUTCOME_TIMEOUT, why);
	free(why);
}

void run_stop(struct run *r, enum run_outcome why, const char *reason) {
	if (r->stopping)
		return;
	r->stopping = true;
	run_log(r, LOG_LEVEL_INFO, NULL, "run %s: stopping: %s", reason);
	if (!r->launched) { /* durable: its start is not recorded yet; run_begun() ends it */
		r->stop_why = why;
		free(r->progress_msg);
		r->progress_msg = xstrdup_or_null(reason);
		return;
	}
	r->ops->stop(r->handle, why, reason);
}

/* Who the run's processes run as: the job's user, the default, or us. */
static int run_identity(struct run *r, char **cause) {
	const char *user = r->def->user ? r->def->user : r->cref->cfg->default_user;
	if (user == NULL)
		return 0;
	if (spawn_identity_resolve(user, r->def->group, &r->id, cause) < 0)
		return -1;
	r->have_id = true;
	return 0;
}

static void run_fail_deferred(evutil_socket_t fd, short what, void *arg) {
	struct run *r = arg;
	struct action_result res = {.outcome = OUTCOME_FAILURE, .message = r->progress_msg};
	(void)fd;
	(void)what;
	r->progress_msg = NULL;
	run_done(r, &res);
}

/*
 * A run that could not start still leaves its record, with why. Finished
 * from the event loop, not from inside run_start(), so callers walking the
 * pending list are not re-entered.
 */
static void run_fail_now(struct run *r, const char *cause) {
	struct timeval zero = {0, 0};
	r->stopping = true;
	free(r->progress_msg);
	r->progress_msg = xasprintf("could not start: %s", cause);
	event_base_once(r->e->base, -1, EV_TIMEOUT, run_fail_deferred, r, &zero);
}

void run_start(struct job *j, enum run_trigger trigger) {
	struct engine *e = j->e;
	struct run *r = xcalloc(1, sizeof *r);
	char *cause = NULL;
	r->e = e;
	r->job = j;
	r->cref = e->cref;
	r->cref->refs++;
	r->def = j->def;
	r->rec.job_id = xstrdup(j->id);
	r->rec.trigger = trigger;
	r->rec.attempt = trigger == TRIGGER_RETRY ? j->rec.attempt + 1 : 1;
	r->rec.started_ms = time_now_ms();
	r->rec.outcome = OUTCOME_RUNNING;
	r->total = -1;
	int64_t last_run = j->rec.last_run_ms;
	j->rec.last_run_ms = r->rec.started_ms;
	j->run = r;
	e->running++;
	e->runs_started++;
	if (r->def->stop_when_unmet && trigger != TRIGGER_MANUAL) {
		r->watch_mask = constraints_watch_mask(&r->def->constraints);
		engine_watch(e, r->watch_mask, +1);
	}
	r->waiters = j->waiters;
	j->waiters = NULL;
	r->last_run_ms = last_run;
	/* durable: the run starts once its "running" record is committed (run_begun). */
	if (store_run_begin_async(e->store, &r->rec, &j->rec, run_begun, r, &cause) < 0) {
		/* From the loop, as run_fail_now(): callers may be walking the pending list. */
		struct timeval zero = {0, 0};
		r->progress_msg = cause;
		event_base_once(e->base, -1, EV_TIMEOUT, run_not_started_deferred, r, &zero);
	}
}

static void run_not_started_deferred(evutil_socket_t fd, short what, void *arg) {
	struct run *r = arg;
	char *cause = r->progress_msg;
	(void)fd;
	(void)what;
	r->progress_msg = NULL;
	run_not_started(r, cause ? cause : "unknown error");
	free(cause);
}

/*
 * durable: the start could not be recorded, so the run does not start (it
 * would run unrecorded, and overlap itself after a crash): the job waits in
 * backoff, its reason naming the store's error.
 */
static void run_not_started(struct run *r, const char *cause) {
	struct job *j = r->job;
	struct engine *e = r->e;
	log_error("%s: not started: cannot record the start of a run: %s", j->id, cause);
	j->rec.last_run_ms = r->last_run_ms;
	j->run = NULL;
	e->running--;
	engine_watch(e, r->watch_mask, -1);
	/* Whoever waits for this run waits for the next one. */
	struct waiter **tail = &r->waiters;
	while (*tail)
		tail = &(*tail)->next;
	*tail = j->waiters;
	j->waiters = r->waiters;
	r->waiters = NULL;
	if (!j->removed && !e->stopping) {
		job_unschedule(j);
		job_schedule(j, time_now_ms() + RUN_STORE_BACKOFF_MS, TRIGGER_RETRY);
		snprintf(j->pending_reason, sizeof j->pending_reason,
		         "waiting: the start of a run could not be recorded: %s", cause);
	}
	if (j->removed)
		job_free(j);
	else
		job_announce(j);
	run_free(r);
	engine_run_finished(e);
}

static void run_begun(void *arg, int ok, const char *store_cause) {
	struct run *r = arg;
	struct job *j = r->job;
	struct engine *e = r->e;
	enum run_trigger trigger = r->rec.trigger;
	char *cause = NULL;
	if (!ok) {
		run_not_started(r, store_cause);
		return;
	}
	r->launched = true;
	if (!j->pending)
		j->pending_reason[0] = '\0'; /* a store backoff's reason is over */
	run_log(r, LOG_LEVEL_INFO, MCPJOB_MSGID_RUN_STARTED, "run %s started%s",
	        trigger == TRIGGER_SCHEDULE ? "" : trigger == TRIGGER_MANUAL ? " (manual)"
	        : trigger == TRIGGER_RETRY ? " (retry)" : " (catch-up)");
	events_emit(e->events, EVENT_RUN_STARTED, j->id,
	            json_pack("{s:I, s:s, s:i}", "run_id", (json_int_t)r->rec.run_id, "trigger",
	                      run_trigger_name(trigger), "attempt", r->rec.attempt));
	job_announce(j);
	if (r->stopping) { /* durable: stopped while its start was being recorded */
		struct action_result res = {.outcome = r->stop_why, .message = r->progress_msg};
		r->progress_msg = NULL;
		run_done(r, &res);
		return;
	}
	r->ops = action_ops_for(r->def->kind);
	if (r->ops == NULL) {
		r->ops = &action_exec_ops; /* only for stop(), never reached */
		cause = xasprintf("%s actions are not supported by this build",
		                  action_kind_name(r->def->kind));
		run_fail_now(r, cause);
		free(cause);
		return;
	}
	if (run_identity(r, &cause) < 0) {
		run_fail_now(r, cause);
		free(cause);
		return;
	}
	struct action_env env = {
	    .base = e->base, .job = r->def, .cfg = r->cref->cfg,
	    .id = r->have_id ? &r->id : NULL, .mcp = e->mcp, .run_id = r->rec.run_id,
	    .attempt = r->rec.attempt, .now_ms = r->rec.started_ms,
	    .last_success_ms = j->rec.last_success_ms, .last_run_ms = r->last_run_ms,
	};
	r->handle = r->ops->start(&env, run_progress, run_done, r, &cause);
	if (r->handle == NULL) {
		run_fail_now(r, cause ? cause : "unknown error");
		free(cause);
		return;
	}
	/* durable: who runs it goes into its "running" record (orphans after a crash). */
	pid_t pgid = r->ops->pgid ? r->ops->pgid(r->handle) : 0;
	if (pgid > 0) {
		struct proc_identity pi = proc_identity_of(pgid);
		r->rec.proc.pid = pi.pid;
		r->rec.proc.start = pi.start;
		store_run_set_process(e->store, &r->rec);
	}
	if (r->def->timeout_ms > 0) {
		struct timeval tv = {r->def->timeout_ms / 1000, (r->def->timeout_ms % 1000) * 1000};
		r->timeout_ev = evtimer_new(e->base, run_timeout, r);
		evtimer_add(r->timeout_ev, &tv);
	}
}
