/*
 * sched.c - the scheduler (see sched.h): jobs, their due times, the
 * pending list, the gate before a start and the decision after a run.
 *
 * A job's state is derived, never stored twice: running while it has a
 * run, pending while it has a pending entry, else disabled, backoff (due
 * for a retry) or scheduled. A pending entry is allocated only while the
 * job waits, and holds both what waits - a due run of the schedule and/or
 * a manual request - so cancelling the manual request leaves the due run
 * waiting, as it was before the request.
 */
#include "daemon/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/calendar.h"
#include "common/duration.h"
#include "common/jsontext.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/constraints.h"
#include "daemon/events.h"
#include "daemon/heap.h"
#include "daemon/run.h"
#include "daemon/store.h"
#include "platform/platform.h"

/* A start the store refused is tried again this often. */
#define SCHED_STORE_RETRY_MS 2000
#define SCHED_REASON_MAX 200

/* What a due job waits with, and why. */
struct sched_pend {
	struct sched_job *prev, *next;
	int64_t since_ms;
	char *reason;                /* why it waits; NULL until known */
	unsigned watch_mask;         /* device values it waits on */
	bool due;                    /* a run of the schedule waits (due_trigger) */
	enum run_trigger due_trigger;
	bool manual;                 /* a manual request waits */
	bool bypass;                 /* ... and constraints do not apply to it */
	json_t *input;               /* ... with these job.run arguments/env (may be NULL) */
	char *after_ref;             /* due_trigger TRIGGER_AFTER: "JOB:RUN" that started it */
};

struct sched_job {
	struct sched *s;
	const struct job_def *def;   /* current configuration (or the run's, once removed) */
	struct job_record rec;       /* mirror of the store's record */
	int64_t due_ms;              /* next wake-up (schedule or retry); 0 = none */
	uint32_t due_idx, win_idx;   /* positions in the two heaps */
	struct sched_pend *pend;     /* NULL unless pending */
	struct run *run;
	struct sched_cfg *run_cfg;   /* keeps the run's definition alive across reloads */
	struct run_waiter *waiters;  /* for the next run (job.run --wait) */
	char *last_reason;           /* pending reason last announced */
	char *store_note;            /* in backoff because the store refused a start: why */
	unsigned run_watch;          /* device values its run depends on */
	enum run_trigger due_trigger;
	enum job_state last_state;   /* last state announced */
	bool removed;                /* gone from the config; freed after its run */
	bool requeue;                /* its run was stopped because constraints stopped holding */
};

struct sched {
	struct sched_env env;
	struct sched_cfg *cfg;
	struct sched_job **jobs;     /* sorted by id for lookup */
	size_t njobs;
	struct heap due_heap, win_heap;
	struct sched_job *pend_head, *pend_tail;
	struct sched_job **retired;  /* gone from the config, their run still running */
	size_t nretired;
	int running;
	uint64_t runs_started;
	unsigned watch_counts[DEV_WATCH_COUNT]; /* jobs waiting on each value */
	unsigned watch_mask;
	struct engine_timer *timer;
	int64_t armed_ms;            /* what the timer is set for (INT64_MAX: nothing) */
	bool started, stopping;
	bool run_due;                /* sched_run_due(): passes, no timer */
	bool in_pass;                /* run_due mode: inside a pass, runs may start */
	void (*idle_fn)(void *);
	void *idle_arg;
	json_t *auth_wait;           /* names of MCP servers that wait for a person's login */
};

static const char *job_id(const struct sched_job *j) {
	return j->def->id;
}

static int64_t sched_now(const struct sched *s) {
	return s->env.clock->now_ms(s->env.clock->ctx);
}

/* --- configuration references --------------------------------------------- */

struct sched_cfg *sched_cfg_new(struct config *cfg) {
	struct sched_cfg *c = xcalloc(1, sizeof *c);
	c->cfg = cfg;
	c->refs = 1;
	return c;
}

void sched_cfg_put(struct sched_cfg *c) {
	if (c && --c->refs == 0) {
		config_free(c->cfg);
		free(c);
	}
}

/* --- heaps ------------------------------------------------------------- */

static int64_t due_key(const void *p) {
	return ((const struct sched_job *)p)->due_ms;
}

static int64_t win_key(const void *p) {
	const struct sched_job *j = p;
	return sched_window_start(j->due_ms, j->def->flex_ms, j->due_trigger);
}

static uint32_t *due_index(void *p) {
	return &((struct sched_job *)p)->due_idx;
}

static uint32_t *win_index(void *p) {
	return &((struct sched_job *)p)->win_idx;
}

/* --- state ------------------------------------------------------------- */

static int job_cmp(const void *a, const void *b) {
	return strcmp(job_id(*(struct sched_job *const *)a), job_id(*(struct sched_job *const *)b));
}

struct sched_job *sched_find(struct sched *s, const char *id) {
	struct job_def key_def = {.id = (char *)id};
	struct sched_job key = {.def = &key_def}, *kp = &key;
	struct sched_job **found = bsearch(&kp, s->jobs, s->njobs, sizeof *s->jobs, job_cmp);
	return found ? *found : NULL;
}

static bool job_enabled(const struct sched_job *j) {
	return j->rec.enabled_override >= 0 ? j->rec.enabled_override == 1 : j->def->enabled;
}

/* A one-off job that ran, or was missed for longer than it may be late. */
static bool job_is_done(const struct sched_job *j) {
	return j->def->schedule == SCHEDULE_AT && j->due_ms == 0 && !j->pend && !j->run &&
	       (j->rec.last_run_ms != 0 || j->rec.next_due_ms < 0);
}

static enum job_state job_state_of(const struct sched_job *j) {
	if (j->run)
		return JOB_STATE_RUNNING;
	if (j->pend)
		return JOB_STATE_PENDING;
	if (!job_enabled(j))
		return JOB_STATE_DISABLED;
	if (job_is_done(j))
		return JOB_STATE_DONE;
	if (j->due_trigger == TRIGGER_RETRY && j->due_ms)
		return JOB_STATE_BACKOFF;
	return JOB_STATE_SCHEDULED;
}

/* Emit job.state when the state or the pending reason changed. */
static void job_announce(struct sched_job *j) {
	enum job_state s = job_state_of(j);
	const char *reason = s == JOB_STATE_PENDING && j->pend->reason ? j->pend->reason
	                     : s == JOB_STATE_BACKOFF && j->store_note ? j->store_note
	                                                               : "";
	if (s == j->last_state && strcmp(reason, j->last_reason ? j->last_reason : "") == 0)
		return;
	enum job_state prev = j->last_state;
	j->last_state = s;
	free(j->last_reason);
	j->last_reason = *reason ? xstrdup(reason) : NULL;
	if (s == JOB_STATE_PENDING) {
		struct log_ctx ctx = {.job_id = job_id(j), .message_id = MCPJOB_MSGID_JOB_PENDING};
		log_msg(LOG_LEVEL_INFO, &ctx, "pending: %s", *reason ? reason : "waiting");
	}
	if (events_wanted(j->s->env.events, EVENT_JOB_STATE, job_id(j)))
		events_emit(j->s->env.events, EVENT_JOB_STATE, job_id(j),
		            json_pack("{s:s, s:s, s:o}", "state", job_state_name(s), "previous",
		                      job_state_name(prev), "reason",
		                      *reason ? json_string(reason) : json_null()));
}

/* --- the timer and the heaps --------------------------------------------- */

static void sched_arm(struct sched *s) {
	if (!s->started || s->stopping || s->run_due)
		return;
	struct sched_job *j = heap_peek(&s->due_heap);
	int64_t due = j == NULL ? INT64_MAX : j->due_ms > 0 ? j->due_ms : 1;
	/* Called after every schedule change; only a new earliest time costs a
	 * syscall (placing 100k jobs at start would otherwise make 100k). */
	if (due == s->armed_ms)
		return;
	s->armed_ms = due;
	s->env.clock->timer_set(s->timer, due);
}

/* The job's next regular due time after @now (its interval grid, calendar or
 * "at" time); 0 when it is never due again. */
static int64_t job_next_regular(const struct sched_job *j, int64_t now) {
	return sched_def_next_due(j->def, j->rec.next_due_ms, now);
}

static void job_schedule(struct sched_job *j, int64_t due_ms, enum run_trigger trigger) {
	struct sched *s = j->s;
	j->due_ms = due_ms;
	j->due_trigger = trigger;
	if (trigger != TRIGGER_RETRY && trigger != TRIGGER_CATCH_UP)
		j->rec.next_due_ms = due_ms;
	heap_update(&s->due_heap, j);
	heap_update(&s->win_heap, j);
	sched_arm(s);
}

static void job_unschedule(struct sched_job *j) {
	heap_remove(&j->s->due_heap, j);
	heap_remove(&j->s->win_heap, j);
}

/* Count @mask's device values as (no longer) waited on; tells the platform. */
static void sched_watch(struct sched *s, unsigned mask, int delta) {
	unsigned now = 0;
	for (int i = 0; i < DEV_WATCH_COUNT; i++) {
		if (mask & (1u << i))
			s->watch_counts[i] += (unsigned)delta;
		if (s->watch_counts[i])
			now |= 1u << i;
	}
	if (now != s->watch_mask && s->env.platform) {
		s->watch_mask = now;
		platform_watch(s->env.platform, now);
	}
}

/* --- the pending list ------------------------------------------------------ */

/* A run of the schedule (@manual false) or a manual request waits. */
static void job_set_pending(struct sched_job *j, enum run_trigger trigger, bool manual,
                            bool bypass) {
	struct sched *s = j->s;
	struct sched_pend *p = j->pend;
	if (p == NULL) {
		p = j->pend = xcalloc(1, sizeof *p);
		p->watch_mask = constraints_watch_mask(&j->def->constraints);
		sched_watch(s, p->watch_mask, +1);
		p->since_ms = sched_now(s);
		p->prev = s->pend_tail;
		if (s->pend_tail)
			s->pend_tail->pend->next = j;
		else
			s->pend_head = j;
		s->pend_tail = j;
	}
	if (manual) {
		p->manual = true;
		p->bypass = p->bypass || bypass;
	} else if (!p->due) {
		p->due = true;
		p->due_trigger = trigger;
	}
}

static void job_clear_pending(struct sched_job *j) {
	struct sched_pend *p = j->pend;
	struct sched *s = j->s;
	if (p == NULL)
		return;
	if (p->prev)
		p->prev->pend->next = p->next;
	else
		s->pend_head = p->next;
	if (p->next)
		p->next->pend->prev = p->prev;
	else
		s->pend_tail = p->prev;
	sched_watch(s, p->watch_mask, -1);
	free(p->reason);
	json_decref(p->input);
	free(p->after_ref);
	free(p);
	j->pend = NULL;
}

static void job_set_reason(struct sched_job *j, const char *reason) {
	free(j->pend->reason);
	j->pend->reason = xstrdup(reason);
}

/* --- waiting for a login ---------------------------------------------------- */

/* The MCP server @j waits for a person's login on, or NULL. */
static const char *job_login_server(const struct sched_job *j) {
	if (j->def->kind != ACTION_MCP || j->s->auth_wait == NULL ||
	    json_object_get(j->s->auth_wait, j->def->mcp.server) == NULL)
		return NULL;
	return j->def->mcp.server;
}

/* The reason a job shows while its server waits for a login (mcp_auth.h's words). */
static void job_set_login_reason(struct sched_job *j, const char *server) {
	char *why = xasprintf("waiting for authorization: run `mcpjobctl auth login %s`", server);
	job_set_reason(j, why);
	free(why);
}

/* --- starting runs ----------------------------------------------------------- */

static void sched_run_ended(void *owner, struct run *r);
static void sched_run_not_started(void *owner, struct run *r, const char *cause);
static void sched_run_launched(void *owner, struct run *r);
static const struct run_hooks sched_run_hooks = {.ended = sched_run_ended,
                                                 .not_started = sched_run_not_started,
                                                 .launched = sched_run_launched};

/* Start a run of @j now; -1 with *@cause when its start could not be recorded. */
static int job_start_run(struct sched_job *j, enum run_trigger trigger, const char *ref,
                         const json_t *input, char **cause) {
	struct sched *s = j->s;
	struct run_params p = {
	    .base = s->env.base, .clock = s->env.clock, .store = s->env.store,
	    .events = s->env.events, .mcp = s->env.mcp, .cfg = s->cfg->cfg, .def = j->def,
	    .kill_grace_ms = s->env.kill_grace_ms,
	    .trigger = trigger, .trigger_ref = ref, .input = input,
	    .attempt = trigger == TRIGGER_RETRY ? j->rec.attempt + 1 : 1,
	    .last_success_ms = j->rec.last_success_ms, .last_run_ms = j->rec.last_run_ms,
	    .waiters = j->waiters, .hooks = &sched_run_hooks, .owner = j,
	};
	struct run *r = run_start(&p, &j->rec, cause);
	if (r == NULL)
		return -1;
	j->waiters = NULL;
	j->run = r;
	j->rec.last_run_ms = run_get_started_ms(r);
	j->run_cfg = s->cfg;
	s->cfg->refs++;
	s->running++;
	s->runs_started++;
	if (j->def->stop_when_unmet && trigger != TRIGGER_MANUAL) {
		j->run_watch = constraints_watch_mask(&j->def->constraints);
		sched_watch(s, j->run_watch, +1);
	}
	return 0;
}

/*
 * May a pending job start? Constraints first (unless a manual run bypasses
 * them), then a free slot; then start it. Returns 1 when it started, 0 when
 * it waits (its reason says why), -1 when its start could not be recorded
 * (it waits, and *@cause, if not NULL, says why). Announces its state.
 */
static int job_try_start(struct sched_job *j, char **cause) {
	struct sched *s = j->s;
	struct sched_pend *p = j->pend;
	const struct config *cfg = s->cfg->cfg;
	struct device_state d;
	char reason[SCHED_REASON_MAX];
	if (s->stopping || j->run || (s->run_due && !s->in_pass))
		return 0; /* mobile: nothing starts outside the OS's budget */
	/* Not even a manual run: it would only meet the same 401 and fail again. */
	const char *login = job_login_server(j);
	if (login) {
		job_set_login_reason(j, login);
		job_announce(j);
		return 0;
	}
	platform_get(s->env.platform, &d);
	if (!(p->manual && p->bypass) &&
	    !constraints_check(&j->def->constraints, &d, cfg->device.unknown_allows, reason,
	                       sizeof reason)) {
		job_set_reason(j, reason);
		job_announce(j);
		return 0;
	}
	if (s->running >= cfg->max_concurrent) {
		snprintf(reason, sizeof reason,
		         "waiting for a free run slot (%d running, max_concurrent %d)", s->running,
		         cfg->max_concurrent);
		job_set_reason(j, reason);
		job_announce(j);
		return 0;
	}
	char *err = NULL;
	enum run_trigger t = p->manual ? TRIGGER_MANUAL : p->due_trigger;
	if (job_start_run(j, t, t == TRIGGER_AFTER ? p->after_ref : NULL,
	                  p->manual ? p->input : NULL, &err) < 0) {
		char *why = xasprintf("not started: its start could not be recorded: %s", err);
		/* Tried again at every chance: say it once per cause, not per try. */
		if (p->reason == NULL || strcmp(p->reason, why) != 0)
			log_error("%s: %s", job_id(j), why);
		job_set_reason(j, why);
		free(why);
		job_announce(j);
		if (cause)
			*cause = err;
		else
			free(err);
		return -1;
	}
	/* "running" is announced when the run's start is recorded (launched()). */
	job_clear_pending(j);
	return 1;
}

/* Walk the pending list once: one evaluation per pending job. */
static void sched_try_pending(struct sched *s) {
	for (struct sched_job *j = s->pend_head, *next; j; j = next) {
		next = j->pend->next;
		job_try_start(j, NULL);
	}
}

/* The job's due time arrived. */
static void job_due(struct sched_job *j, int64_t now) {
	enum run_trigger t = j->due_trigger;
	int64_t occurrence = j->due_ms;
	job_unschedule(j);
	j->due_ms = 0;
	if (t != TRIGGER_RETRY) {
		/* The next regular occurrence, counted from the grid, not from now;
		 * a job started early in its flex window consumes its due time. */
		int64_t next = job_next_regular(j, now > occurrence ? now : occurrence);
		if (next > 0)
			job_schedule(j, next, TRIGGER_SCHEDULE);
		else
			j->rec.next_due_ms = 0; /* never again: a one-off, @reboot */
	}
	if (j->run) {
		log_debug("%s: due while still running; this occurrence is skipped", job_id(j));
		return;
	}
	job_set_pending(j, t, false, false);
	job_try_start(j, NULL);
}

/* Every job whose flex window has opened is due now. */
static void sched_due_pass(struct sched *s) {
	int64_t now = sched_now(s);
	struct sched_job *j;
	while ((j = heap_peek(&s->win_heap)) != NULL && win_key(j) <= now)
		job_due(j, now);
}

static void sched_on_timer(void *arg) {
	struct sched *s = arg;
	s->armed_ms = 0; /* expired or cancelled: whatever comes next must be armed */
	if (s->stopping || s->run_due)
		return;
	sched_due_pass(s);
	sched_arm(s);
}

/* --- after a run ---------------------------------------------------------------- */

static void sched_check_idle(struct sched *s) {
	if ((s->stopping || s->run_due) && s->running == 0 && s->idle_fn) {
		void (*fn)(void *) = s->idle_fn;
		s->idle_fn = NULL;
		s->in_pass = false;
		fn(s->idle_arg);
	}
}

/*
 * What comes after a finished run for its job: the decision of the
 * schedule. Returns when a retry will start, 0 when there is none.
 */
static int64_t job_after_run(struct sched_job *j, struct run *r, int64_t now) {
	enum run_outcome o = run_get_outcome(r);
	enum run_trigger t = run_get_trigger(r);
	const struct retry_policy *rp = run_get_def(r)->retry;
	bool requeue = j->requeue;
	bool login = run_needs_login(r);
	j->requeue = false;
	if (requeue && !j->removed) {
		/* Constraints stopped holding: wait for them again, like WorkManager. */
		job_set_pending(j, t == TRIGGER_MANUAL ? TRIGGER_SCHEDULE : t, false, false);
		return 0;
	}
	if (o == OUTCOME_SUCCESS) {
		j->rec.attempt = 0;
	} else if (!login && job_outcome_is_retryable(o) && t != TRIGGER_MANUAL &&
	           run_get_attempt(r) < rp->max_attempts && !j->s->stopping) {
		j->rec.attempt = run_get_attempt(r);
		if (!job_enabled(j) || j->removed)
			return 0;
		int64_t at = now + sched_retry_delay(rp, run_get_attempt(r));
		job_schedule(j, at, TRIGGER_RETRY);
		return at;
	} else if (t != TRIGGER_MANUAL) {
		j->rec.attempt = 0;
	}
	/* Back on the normal schedule (a retry series ends here too). */
	if (!j->removed && (j->due_trigger == TRIGGER_RETRY || (j->due_ms == 0 && job_enabled(j)))) {
		job_unschedule(j);
		j->due_ms = 0;
		int64_t next = job_enabled(j) ? job_next_regular(j, now) : 0;
		if (next > 0) /* 0: never again (a one-off that ran) */
			job_schedule(j, next, TRIGGER_SCHEDULE);
	}
	/* Its server wants a login: it waits for one, pending, not retried nor failed at
	 * every due time; it runs once a login is saved (sched_auth_changed()). */
	if (login && !j->removed && job_enabled(j) && !j->s->stopping) {
		json_object_set_new(j->s->auth_wait, run_get_def(r)->mcp.server, json_true());
		job_set_pending(j, TRIGGER_SCHEDULE, false, false);
		job_set_login_reason(j, run_get_def(r)->mcp.server);
	}
	return 0;
}

static void job_free(struct sched_job *j);

/* A retired job's run ended: the job goes. */
static void job_forget_retired(struct sched_job *j) {
	struct sched *s = j->s;
	for (size_t i = 0; i < s->nretired; i++) {
		if (s->retired[i] == j) {
			s->retired[i] = s->retired[--s->nretired];
			break;
		}
	}
	job_free(j);
}

/* The one call a run makes back: its end. */
/*
 * Start each job of @ids after run @ref ("JOB:RUN"): as a due run of its
 * own (its constraints apply), recorded with trigger "after:JOB:RUN".
 */
static void sched_start_chained(struct sched *s, char *const *ids, const char *ref) {
	for (; ids && *ids; ids++) {
		struct sched_job *t = sched_find(s, *ids);
		if (t == NULL || !job_enabled(t)) {
			log_info("%s: not started after %s: %s", *ids, ref,
			         t ? "it is disabled" : "there is no such job");
			continue;
		}
		if (t->run) {
			log_info("%s: not started after %s: it is still running", *ids, ref);
			continue;
		}
		job_set_pending(t, TRIGGER_AFTER, false, false);
		if (t->pend->due_trigger == TRIGGER_AFTER) {
			free(t->pend->after_ref);
			t->pend->after_ref = xstrdup(ref);
		}
		job_try_start(t, NULL);
	}
}

/*
 * The store could not record a start, so the run did not start (it would
 * run unrecorded, and could overlap itself after a crash): the job waits in
 * backoff, its reason naming the store's error, and tries again in
 * SCHED_STORE_RETRY_MS; whoever waited for this run waits for that one.
 */
static void sched_run_not_started(void *owner, struct run *r, const char *cause) {
	struct sched_job *j = owner;
	struct sched *s = j->s;
	char *why = xasprintf("not started: its start could not be recorded: %s", cause);
	if (j->store_note == NULL || strcmp(j->store_note, why) != 0)
		log_error("%s: %s", job_id(j), why); /* once per cause, not at every retry */
	free(j->store_note);
	j->store_note = why;
	j->rec.last_run_ms = run_get_last_run_before(r);
	j->run = NULL;
	s->running--;
	sched_watch(s, j->run_watch, -1);
	j->run_watch = 0;
	struct run_waiter **tail = &j->waiters;
	while (*tail)
		tail = &(*tail)->next;
	*tail = run_take_waiters(r);
	struct sched_cfg *c = j->run_cfg;
	j->run_cfg = NULL;
	run_free(r);
	if (j->removed) {
		job_forget_retired(j);
	} else if (!s->stopping) {
		job_schedule(j, sched_now(s) + SCHED_STORE_RETRY_MS, TRIGGER_RETRY);
		job_announce(j);
	}
	sched_cfg_put(c);
	sched_check_idle(s);
}

/* The run's start is recorded and its action started: now it is running. */
static void sched_run_launched(void *owner, struct run *r) {
	struct sched_job *j = owner;
	(void)r;
	free(j->store_note); /* a backoff for the store is over */
	j->store_note = NULL;
	job_announce(j);
}

/* A run left to its MCP task at shutdown: no record, no decision; it is resumed. */
static void sched_run_left(struct sched_job *j, struct run *r) {
	struct sched *s = j->s;
	j->run = NULL;
	s->running--;
	sched_watch(s, j->run_watch, -1);
	j->run_watch = 0;
	struct sched_cfg *c = j->run_cfg;
	j->run_cfg = NULL;
	run_free(r);
	if (j->removed)
		job_forget_retired(j);
	sched_cfg_put(c);
	sched_check_idle(s);
}

static void sched_run_ended(void *owner, struct run *r) {
	struct sched_job *j = owner;
	struct sched *s = j->s;
	if (run_is_left(r)) {
		sched_run_left(j, r);
		return;
	}
	int64_t now = sched_now(s);
	enum run_outcome o = run_get_outcome(r);
	j->rec.last_outcome = o;
	j->rec.last_finished_ms = now;
	free(j->rec.last_message);
	j->rec.last_message = xstrdup_or_null(run_get_message(r));
	if (o == OUTCOME_SUCCESS)
		j->rec.last_success_ms = run_get_started_ms(r);
	j->run = NULL;
	s->running--;
	sched_watch(s, j->run_watch, -1);
	j->run_watch = 0;
	int64_t retry_at = job_after_run(j, r, now);
	char *ref = xasprintf("%s:%llu", job_id(j), (unsigned long long)run_get_id(r));
	const struct job_def *def = run_get_def(r);
	run_finish(r, &j->rec, retry_at);
	struct sched_cfg *c = j->run_cfg;
	j->run_cfg = NULL;
	if (j->removed)
		job_forget_retired(j);
	else
		job_announce(j);
	/* Chains: on_success after a success, on_failure after a failure no retry follows. */
	if (!s->stopping && o == OUTCOME_SUCCESS)
		sched_start_chained(s, def->on_success, ref);
	else if (!s->stopping && retry_at == 0 && !run_needs_login(r) &&
	         (o == OUTCOME_FAILURE || o == OUTCOME_TIMEOUT))
		sched_start_chained(s, def->on_failure, ref);
	free(ref);
	run_free(r);
	sched_cfg_put(c);
	if (!s->stopping)
		sched_try_pending(s);
	sched_check_idle(s);
}

/*
 * A run the dead daemon left running on an MCP task (engine open): its job
 * is running again - no other run of it starts meanwhile - and the run
 * follows the task and ends as any run. 0, or -1 with *@cause (the caller
 * records it interrupted).
 */
int sched_resume_run(struct sched *s, const struct run_record *rec, char **cause) {
	struct sched_job *j = sched_find(s, rec->job_id);
	if (j == NULL || j->run != NULL) {
		*cause = xasprintf("job %s %s", rec->job_id, j ? "is running already" : "is gone");
		return -1;
	}
	struct run_params p = {
	    .base = s->env.base, .clock = s->env.clock, .store = s->env.store,
	    .events = s->env.events, .mcp = s->env.mcp, .cfg = s->cfg->cfg, .def = j->def,
	    .kill_grace_ms = s->env.kill_grace_ms, .trigger = rec->trigger,
	    .attempt = rec->attempt, .last_success_ms = j->rec.last_success_ms,
	    .last_run_ms = j->rec.last_run_ms, .hooks = &sched_run_hooks, .owner = j,
	};
	struct run *r = run_resume(&p, rec, cause);
	if (r == NULL)
		return -1;
	j->run = r;
	if (j->rec.last_run_ms < rec->started_ms)
		j->rec.last_run_ms = rec->started_ms;
	j->run_cfg = s->cfg;
	s->cfg->refs++;
	s->running++;
	j->last_state = JOB_STATE_RUNNING;
	return 0;
}

/* --- building the job table ---------------------------------------------- */

static struct sched_job *job_new(struct sched *s, const struct job_def *def) {
	struct sched_job *j = xcalloc(1, sizeof *j);
	char *cause = NULL;
	j->s = s;
	j->def = def;
	j->due_idx = j->win_idx = HEAP_NONE;
	j->last_state = JOB_STATE_SCHEDULED;
	if (store_load_job(s->env.store, def->id, &j->rec, &cause) < 0) {
		log_error("%s: cannot read its saved state, starting fresh: %s", def->id, cause);
		free(cause);
		store_job_record_init(&j->rec);
	}
	return j;
}

static void job_free(struct sched_job *j) {
	if (j == NULL)
		return;
	job_unschedule(j);
	job_clear_pending(j);
	run_waiters_fire(j->waiters, NULL);
	store_job_record_clear(&j->rec);
	free(j->last_reason);
	free(j->store_note);
	free(j);
}

/*
 * Put an enabled job on the schedule as the daemon starts or the job
 * appears: a missed due time becomes one catch-up run, spread by @slot so
 * that many missed jobs do not all start in the same second.
 */
static void job_place(struct sched_job *j, int64_t now, size_t slot, size_t nslots) {
	const struct config *cfg = j->s->cfg->cfg;
	if (!job_enabled(j)) {
		j->last_state = JOB_STATE_DISABLED;
		return;
	}
	if (j->rec.attempt > 0 && j->rec.attempt < j->def->retry->max_attempts) {
		job_schedule(j, now + sched_retry_delay(j->def->retry, j->rec.attempt), TRIGGER_RETRY);
		return;
	}
	int64_t due = j->rec.next_due_ms;
	const struct job_def *d = j->def;
	if (d->calendar && calendar_at_start_only(d->calendar)) { /* @reboot: each start */
		job_schedule(j, now + d->initial_delay_ms, TRIGGER_SCHEDULE);
		return;
	}
	if (d->schedule == SCHEDULE_AT) {
		if (j->rec.last_run_ms != 0 || due < 0)
			return; /* done */
		due = d->at_ms + d->random_offset_ms;
		if (due < now && d->expire_after_ms > 0 && now - due > d->expire_after_ms) {
			char ago[32];
			log_notice("%s: its one-off time passed %s ago, more than expire_after: not run",
			           job_id(j), duration_format(now - due, ago, sizeof ago));
			j->rec.next_due_ms = -1; /* done without a run */
			return;
		}
		if (due >= now) {
			job_schedule(j, due, TRIGGER_SCHEDULE);
			return;
		}
		j->rec.next_due_ms = due;
	}
	if (due == 0 && d->schedule != SCHEDULE_INTERVAL) {
		int64_t next = job_next_regular(j, now);
		if (next > 0)
			job_schedule(j, next, TRIGGER_SCHEDULE);
	} else if (due == 0) {
		job_schedule(j, now + d->initial_delay_ms, TRIGGER_SCHEDULE);
	} else if (due < now) {
		job_schedule(j, now + sched_catchup_offset(slot, nslots, cfg->catchup_spread_ms),
		             TRIGGER_CATCH_UP);
	} else if (d->schedule == SCHEDULE_INTERVAL) {
		job_schedule(j, due > now + d->interval_ms ? now + d->interval_ms : due,
		             TRIGGER_SCHEDULE);
	} else {
		/* A calendar may have changed since: its own next time, not a stale one. */
		int64_t next = job_next_regular(j, now);
		if (next > 0)
			job_schedule(j, next, TRIGGER_SCHEDULE);
	}
}

static void sched_place_all(struct sched *s) {
	int64_t now = sched_now(s);
	size_t missed = 0, slot = 0;
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i]->rec.next_due_ms > 0 && s->jobs[i]->rec.next_due_ms < now)
			missed++;
	for (size_t i = 0; i < s->njobs; i++) {
		struct sched_job *j = s->jobs[i];
		bool was_missed = j->rec.next_due_ms > 0 && j->rec.next_due_ms < now;
		job_place(j, now, was_missed ? slot++ : 0, missed);
		j->last_state = job_state_of(j);
	}
}

struct sched *sched_new(const struct sched_env *env, struct sched_cfg *cfg, char **cause) {
	struct sched *s = xcalloc(1, sizeof *s);
	s->env = *env;
	s->timer = env->clock->timer_new(env->clock->ctx, env->base, true, sched_on_timer, s);
	if (s->timer == NULL) {
		*cause = xasprintf("cannot create the schedule timer: %s", strerror(errno));
		free(s);
		return NULL;
	}
	s->cfg = cfg;
	cfg->refs++;
	s->auth_wait = json_object();
	heap_init(&s->due_heap, due_key, due_index);
	heap_init(&s->win_heap, win_key, win_index);
	s->jobs = xcalloc(cfg->cfg->njobs ? cfg->cfg->njobs : 1, sizeof *s->jobs);
	bool sorted = true; /* generated configurations often are: no sort then */
	for (size_t i = 0; i < cfg->cfg->njobs; i++) {
		s->jobs[s->njobs++] = job_new(s, cfg->cfg->jobs[i]);
		sorted = sorted && (i == 0 || job_cmp(&s->jobs[i - 1], &s->jobs[i]) < 0);
	}
	if (!sorted)
		qsort(s->jobs, s->njobs, sizeof *s->jobs, job_cmp);
	return s;
}

void sched_free(struct sched *s) {
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->njobs; i++)
		job_free(s->jobs[i]);
	for (size_t i = 0; i < s->nretired; i++)
		job_free(s->retired[i]);
	free(s->jobs);
	free(s->retired);
	heap_free(&s->due_heap);
	heap_free(&s->win_heap);
	s->env.clock->timer_free(s->timer);
	sched_cfg_put(s->cfg);
	json_decref(s->auth_wait);
	free(s);
}

void sched_auth_changed(struct sched *s, const char *server, bool authorized) {
	if (!authorized) {
		json_object_set_new(s->auth_wait, server, json_true());
		return; /* its jobs learn it when they are due, or as their run ends */
	}
	if (json_object_del(s->auth_wait, server) != 0)
		return; /* a refresh, or a login no job waited for */
	log_info("%s: authorized; the jobs that waited for it may run", server);
	if (!s->stopping)
		sched_try_pending(s);
}

void sched_start(struct sched *s) {
	s->started = true;
	sched_place_all(s);
	sched_arm(s);
	/* Jobs due right now (new ones, catch-up at offset 0) start at the first tick. */
}

void sched_stop(struct sched *s, const char *reason) {
	s->stopping = true;
	s->env.clock->timer_set(s->timer, INT64_MAX);
	s->armed_ms = INT64_MAX;
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i]->run && !run_is_stopping(s->jobs[i]->run))
			run_stop(s->jobs[i]->run, OUTCOME_CANCELLED, reason);
	/* A run may end inside run_stop() and take its retired job along. */
	for (size_t i = s->nretired; i-- > 0;)
		if (i < s->nretired && !run_is_stopping(s->retired[i]->run))
			run_stop(s->retired[i]->run, OUTCOME_CANCELLED, reason);
}

void sched_stop_leaving_tasks(struct sched *s, const char *reason) {
	s->stopping = true;
	/* A run may end inside run_leave() and take its retired job along. */
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i]->run)
			run_leave(s->jobs[i]->run, reason);
	for (size_t i = s->nretired; i-- > 0;)
		if (i < s->nretired && s->retired[i]->run)
			run_leave(s->retired[i]->run, reason);
	sched_stop(s, reason);
}

void sched_when_idle(struct sched *s, void (*fn)(void *), void *arg) {
	s->idle_fn = fn;
	s->idle_arg = arg;
	sched_check_idle(s);
}

void sched_run_due(struct sched *s) {
	/* May be called again for the OS's next wake-up. */
	s->stopping = false;
	s->run_due = true; /* no timer: what is due now runs, then we are done */
	if (!s->started)
		sched_place_all(s);
	s->started = true;
	s->in_pass = true;
	sched_due_pass(s);
	sched_try_pending(s); /* what waited since the last pass */
}

void sched_device_changed(struct sched *s, const struct device_state *now) {
	/* Runs whose constraints stopped holding are stopped and wait again. */
	char reason[SCHED_REASON_MAX];
	for (size_t i = 0; i < s->njobs; i++) {
		struct sched_job *j = s->jobs[i];
		struct run *r = j->run;
		if (r == NULL || run_is_stopping(r) || !run_get_def(r)->stop_when_unmet ||
		    run_get_trigger(r) == TRIGGER_MANUAL)
			continue;
		if (!constraints_check(&run_get_def(r)->constraints, now,
		                       s->cfg->cfg->device.unknown_allows, reason, sizeof reason)) {
			char *why = xasprintf("stopped: constraints no longer hold (%s)", reason);
			j->requeue = true;
			run_stop(r, OUTCOME_CANCELLED, why);
			free(why);
		}
	}
	sched_try_pending(s);
}

/* --- reload --------------------------------------------------------------- */

/* A kept job's new definition; what it waits on while pending follows. */
static void job_take_def(struct sched_job *j, const struct job_def *def) {
	j->def = def;
	if (j->pend) {
		sched_watch(j->s, j->pend->watch_mask, -1);
		j->pend->watch_mask = constraints_watch_mask(&def->constraints);
		sched_watch(j->s, j->pend->watch_mask, +1);
	}
}

/* Take a job out of the table: now, or after its run when it runs. */
static void job_retire(struct sched_job *j) {
	struct sched *s = j->s;
	job_unschedule(j);
	job_clear_pending(j);
	if (j->run == NULL) {
		job_free(j);
		return;
	}
	/* Kept where sched_stop() finds its run. */
	j->removed = true;
	s->retired = xreallocarray(s->retired, s->nretired + 1, sizeof *s->retired);
	s->retired[s->nretired++] = j;
}

void sched_reload(struct sched *s, struct sched_cfg *cref, json_t *added, json_t *removed,
                  json_t *changed) {
	const struct config *cfg = cref->cfg;
	struct sched_job **jobs = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *jobs);
	size_t n = 0;
	int64_t now = sched_now(s);
	for (size_t i = 0; i < cfg->njobs; i++) {
		struct sched_job *j = sched_find(s, cfg->jobs[i]->id);
		if (j == NULL) {
			j = job_new(s, cfg->jobs[i]);
			json_array_append_new(added, json_string(job_id(j)));
		} else if (!job_def_equal(j->def, cfg->jobs[i])) {
			json_array_append_new(changed, json_string(job_id(j)));
		}
		jobs[n++] = j;
	}
	for (size_t i = 0; i < s->njobs; i++) {
		if (config_find_job(cfg, job_id(s->jobs[i])) == NULL) {
			json_array_append_new(removed, json_string(job_id(s->jobs[i])));
			job_retire(s->jobs[i]);
		}
	}
	/* Swap in the new configuration; runs keep a reference to the old one.
	 * Everything that points into it moves over before it may be freed:
	 * the heaps' keys read every job's definition, so all jobs leave the
	 * heaps before any definition changes. A new job's def is already
	 * the new one: it is not in the heaps yet. */
	for (size_t i = 0; i < n; i++)
		job_unschedule(jobs[i]);
	for (size_t i = 0; i < n; i++)
		job_take_def(jobs[i], config_find_job(cfg, job_id(jobs[i])));
	cref->refs++;
	sched_cfg_put(s->cfg);
	s->cfg = cref;
	free(s->jobs);
	s->jobs = jobs;
	s->njobs = n;
	qsort(s->jobs, s->njobs, sizeof *s->jobs, job_cmp);
	for (size_t i = 0; i < n; i++) {
		struct sched_job *j = jobs[i];
		if (!job_enabled(j))
			job_clear_pending(j);
		else if (!j->pend && s->started)
			job_place(j, now, 0, 1);
		job_announce(j);
	}
	sched_arm(s);
	sched_try_pending(s);
}

/* --- the API's job operations ------------------------------------------------- */

const struct config *sched_config(const struct sched *s) {
	return s->cfg->cfg;
}

json_t *sched_job_json(struct sched_job *j) {
	const struct job_def *d = j->def;
	struct run *r = j->run;
	struct sched_pend *p = j->pend;
	enum job_state s = job_state_of(j);
	char *sched_text = job_def_schedule_text(d);
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:b, s:s, s:o, s:s, s:f, s:o, s:o, s:o, s:o, s:o, s:o}", "id", d->id,
	    "name", d->name, "description", d->description ? d->description : "", "action",
	    job_action_kind_name(d->kind), "enabled", job_enabled(j), "state", job_state_name(s),
	    "interval", d->interval_ms ? json_real(d->interval_ms / 1000.0) : json_null(),
	    "schedule", sched_text, "flex", d->flex_ms / 1000.0, "timeout",
	    d->timeout_ms ? json_real(d->timeout_ms / 1000.0) : json_null(), "next_run",
	    time_to_json(job_enabled(j) && !p && j->rec.next_due_ms > 0 ? j->rec.next_due_ms : 0),
	    "last_run",
	    time_to_json(j->rec.last_run_ms), "last_outcome",
	    j->rec.last_outcome == OUTCOME_NONE ? json_null()
	                                        : json_string(job_outcome_name(j->rec.last_outcome)),
	    "last_message", j->rec.last_message ? json_string(j->rec.last_message) : json_null(),
	    "last_success", time_to_json(j->rec.last_success_ms));
	free(sched_text);
	/* Where it came from: a file, or job.add by a uid. */
	json_object_set_new(o, "origin", json_string(d->owner_uid >= 0 ? "socket" : "config"));
	if (d->owner_uid >= 0)
		json_object_set_new(o, "owner_uid", json_integer(d->owner_uid));
	else if (d->source)
		json_object_set_new(o, "file", json_string(d->source));
	if (d->timezone)
		json_object_set_new(o, "timezone", json_string(d->timezone));
	json_object_set_new(o, "running_since", time_to_json(r ? run_get_started_ms(r) : 0));
	json_object_set_new(o, "run_id", r ? json_integer((json_int_t)run_get_id(r)) : json_null());
	json_object_set_new(o, "attempt", json_integer(j->rec.attempt));
	json_object_set_new(o, "backoff_until",
	                    time_to_json(j->due_trigger == TRIGGER_RETRY ? j->due_ms : 0));
	json_object_set_new(o, "pending_reason",
	                    p && p->reason ? json_string(p->reason)
	                    : s == JOB_STATE_BACKOFF && j->store_note ? json_string(j->store_note)
	                                                              : json_null());
	json_object_set_new(o, "pending_since", time_to_json(p ? p->since_ms : 0));
	json_object_set_new(o, "progress", r ? run_progress_json(r) : json_null());
	json_object_set_new(o, "constraints", constraints_to_json(&d->constraints));
	return o;
}

void sched_each_last_run(struct sched *s, void (*fn)(void *arg, const char *id, int64_t ms),
                         void *arg) {
	for (size_t i = 0; i < s->njobs; i++)
		fn(arg, job_id(s->jobs[i]), s->jobs[i]->rec.last_run_ms);
}

json_t *sched_jobs_json(struct sched *s) {
	json_t *arr = json_array();
	const struct config *cfg = s->cfg->cfg;
	/* In configuration order, as people wrote them. */
	for (size_t i = 0; i < cfg->njobs; i++) {
		struct sched_job *j = sched_find(s, cfg->jobs[i]->id);
		if (j)
			json_array_append_new(arr, sched_job_json(j));
	}
	return json_pack("{s:o}", "jobs", arr);
}

/*
 * sched_job_json()'s object written as text (jsontext.h), key for key and
 * in the same order: job.status and jobs.list send this without building a
 * tree per job. tests/unit/test_jsontext.c holds the two equal.
 */
void sched_job_text(struct sched_job *j, struct jsontext *t) {
	const struct job_def *d = j->def;
	struct run *r = j->run;
	struct sched_pend *p = j->pend;
	enum job_state s = job_state_of(j);
	const struct job_constraints *c = &d->constraints;
	char sched_buf[TIME_RFC3339_LEN + 16], dur[32];
	const char *sched_text = sched_buf;
	/* job_def_schedule_text() without its allocation and vasprintf */
	switch (d->schedule) {
	case SCHEDULE_INTERVAL:
		snprintf(sched_buf, sizeof sched_buf, "every %s",
		         duration_format(d->interval_ms, dur, sizeof dur));
		break;
	case SCHEDULE_CALENDAR:
	case SCHEDULE_CRON:
		sched_text = calendar_normalized(d->calendar);
		break;
	case SCHEDULE_AT:
		memcpy(sched_buf, "once at ", 8);
		time_format_rfc3339(d->at_ms, sched_buf + 8);
		break;
	default:
		sched_text = "?";
	}
	jsontext_obj_open(t);
	JSONTEXT_KEY(t, "id");
	jsontext_str(t, d->id);
	JSONTEXT_KEY(t, "name");
	jsontext_str(t, d->name);
	JSONTEXT_KEY(t, "description");
	jsontext_str(t, d->description ? d->description : "");
	JSONTEXT_KEY(t, "action");
	jsontext_str(t, job_action_kind_name(d->kind));
	JSONTEXT_KEY(t, "enabled");
	jsontext_bool(t, job_enabled(j));
	JSONTEXT_KEY(t, "state");
	jsontext_str(t, job_state_name(s));
	JSONTEXT_KEY(t, "interval");
	if (d->interval_ms)
		jsontext_real(t, d->interval_ms / 1000.0);
	else
		jsontext_null(t);
	JSONTEXT_KEY(t, "schedule");
	jsontext_str(t, sched_text);
	JSONTEXT_KEY(t, "flex");
	jsontext_real(t, d->flex_ms / 1000.0);
	JSONTEXT_KEY(t, "timeout");
	if (d->timeout_ms)
		jsontext_real(t, d->timeout_ms / 1000.0);
	else
		jsontext_null(t);
	JSONTEXT_KEY(t, "next_run");
	jsontext_time(t, job_enabled(j) && !p && j->rec.next_due_ms > 0 ? j->rec.next_due_ms : 0);
	JSONTEXT_KEY(t, "last_run");
	jsontext_time(t, j->rec.last_run_ms);
	JSONTEXT_KEY(t, "last_outcome");
	jsontext_str(t, j->rec.last_outcome == OUTCOME_NONE ? NULL
	                                                  : job_outcome_name(j->rec.last_outcome));
	JSONTEXT_KEY(t, "last_message");
	jsontext_str(t, j->rec.last_message);
	JSONTEXT_KEY(t, "last_success");
	jsontext_time(t, j->rec.last_success_ms);
	JSONTEXT_KEY(t, "origin");
	jsontext_str(t, d->owner_uid >= 0 ? "socket" : "config");
	if (d->owner_uid >= 0) {
		JSONTEXT_KEY(t, "owner_uid");
		jsontext_int(t, d->owner_uid);
	} else if (d->source) {
		JSONTEXT_KEY(t, "file");
		jsontext_str(t, d->source);
	}
	if (d->timezone) {
		JSONTEXT_KEY(t, "timezone");
		jsontext_str(t, d->timezone);
	}
	JSONTEXT_KEY(t, "running_since");
	jsontext_time(t, r ? run_get_started_ms(r) : 0);
	JSONTEXT_KEY(t, "run_id");
	if (r)
		jsontext_int(t, (long long)run_get_id(r));
	else
		jsontext_null(t);
	JSONTEXT_KEY(t, "attempt");
	jsontext_int(t, j->rec.attempt);
	JSONTEXT_KEY(t, "backoff_until");
	jsontext_time(t, j->due_trigger == TRIGGER_RETRY ? j->due_ms : 0);
	JSONTEXT_KEY(t, "pending_reason");
	if (p && p->reason)
		jsontext_str(t, p->reason);
	else
		jsontext_str(t, s == JOB_STATE_BACKOFF ? j->store_note : NULL);
	JSONTEXT_KEY(t, "pending_since");
	jsontext_time(t, p ? p->since_ms : 0);
	JSONTEXT_KEY(t, "progress");
	if (r) {
		json_t *prog = run_progress_json(r);
		jsontext_json(t, prog);
		json_decref(prog);
	} else {
		jsontext_null(t);
	}
	/* constraints_to_json()'s object */
	JSONTEXT_KEY(t, "constraints");
	jsontext_obj_open(t);
	JSONTEXT_KEY(t, "network");
	jsontext_str(t, job_net_req_name(c->network));
	JSONTEXT_KEY(t, "charging");
	jsontext_bool(t, c->charging);
	JSONTEXT_KEY(t, "battery_not_low");
	jsontext_bool(t, c->battery_not_low);
	JSONTEXT_KEY(t, "idle");
	jsontext_bool(t, c->idle);
	JSONTEXT_KEY(t, "storage_not_low");
	jsontext_bool(t, c->storage_not_low);
	jsontext_obj_close(t);
	jsontext_obj_close(t);
}

void sched_jobs_text(struct sched *s, struct jsontext *t) {
	const struct config *cfg = s->cfg->cfg;
	jsontext_obj_open(t);
	JSONTEXT_KEY(t, "jobs");
	jsontext_arr_open(t);
	for (size_t i = 0; i < cfg->njobs; i++) {
		struct sched_job *j = sched_find(s, cfg->jobs[i]->id);
		if (j)
			sched_job_text(j, t);
	}
	jsontext_arr_close(t);
	jsontext_obj_close(t);
}

/* @ms as people read it here: local time, the date only when not today. */
static char *sched_local_time(int64_t ms, int64_t now, char *buf, size_t len) {
	time_t secs = (time_t)(ms / 1000), today = (time_t)(now / 1000);
	struct tm tm, tn;
	localtime_r(&secs, &tm);
	localtime_r(&today, &tn);
	bool same_day = tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday;
	strftime(buf, len, same_day ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

char *sched_status_line(struct sched *s) {
	size_t pending = 0;
	for (struct sched_job *j = s->pend_head; j; j = j->pend->next)
		pending++;
	struct sched_job *next = heap_peek(&s->due_heap);
	char when[32] = "";
	/* An absolute time: the line stays true without being refreshed. */
	if (next)
		sched_local_time(next->due_ms, sched_now(s), when, sizeof when);
	return xasprintf("%zu job%s, %d running, %zu pending%s%s%s%s", s->njobs,
	                 s->njobs == 1 ? "" : "s", s->running, pending, next ? "; next: " : "",
	                 next ? job_id(next) : "", next ? " at " : "", when);
}

int64_t sched_next_due(struct sched *s) {
	struct sched_job *j = heap_peek(&s->due_heap);
	return j ? j->due_ms : 0;
}

uint64_t sched_runs_started(const struct sched *s) {
	return s->runs_started;
}

int sched_job_set_enabled(struct sched_job *j, bool enabled, char **cause) {
	char *err = NULL;
	bool was = job_enabled(j);
	j->rec.enabled_override = enabled ? 1 : 0;
	if (store_save_job(j->s->env.store, job_id(j), &j->rec, &err) < 0) {
		j->rec.enabled_override = was ? 1 : 0;
		*cause = xasprintf("cannot save the state of %s: %s", job_id(j), err);
		free(err);
		return RPC_E_INTERNAL;
	}
	if (was == enabled)
		return 0;
	if (enabled) {
		if (j->s->started)
			job_place(j, sched_now(j->s), 0, 1);
	} else {
		job_unschedule(j);
		j->due_ms = 0;
		if (j->pend) {
			j->pend->due = false; /* a manual request still runs */
			if (!j->pend->manual)
				job_clear_pending(j);
		}
	}
	log_info("%s: %s", job_id(j), enabled ? "enabled" : "disabled");
	job_announce(j);
	return 0;
}

int sched_job_restart(struct sched_job *j, char **cause) {
	char *err = NULL;
	struct job_record fresh;
	if (j->run && !run_is_stopping(j->run))
		run_stop(j->run, OUTCOME_CANCELLED, "replaced by a new definition (job.add replace)");
	job_unschedule(j);
	j->due_ms = 0;
	if (j->pend && !j->pend->manual)
		job_clear_pending(j);
	store_job_record_init(&fresh);
	fresh.last_run_ms = j->rec.last_run_ms; /* history stays: so do its times */
	fresh.last_finished_ms = j->rec.last_finished_ms;
	fresh.last_success_ms = j->rec.last_success_ms;
	fresh.last_outcome = j->rec.last_outcome;
	fresh.last_message = j->rec.last_message;
	j->rec.last_message = NULL;
	store_job_record_clear(&j->rec);
	j->rec = fresh;
	if (store_save_job(j->s->env.store, job_id(j), &j->rec, &err) < 0) {
		*cause = xasprintf("cannot save the state of %s: %s", job_id(j), err);
		free(err);
		return RPC_E_INTERNAL;
	}
	if (j->s->started && !j->run)
		job_place(j, sched_now(j->s), 0, 1);
	job_announce(j);
	return 0;
}

int sched_job_request_run(struct sched_job *j, int flags, const json_t *input,
                          const struct run_waiter *wait, json_t **out, void **waiter,
                          char **cause) {
	struct sched *s = j->s;
	if (s->stopping) {
		*cause = xstrdup("mcpjobd is stopping");
		return RPC_E_SHUTTING_DOWN;
	}
	if (j->run) {
		char since[32];
		sched_local_time(run_get_started_ms(j->run), sched_now(s), since, sizeof since);
		*cause = xasprintf("job \"%s\" is already running (run %llu, started %s); a job "
		                   "never overlaps itself", job_id(j),
		                   (unsigned long long)run_get_id(j->run), since);
		return RPC_E_ALREADY_RUNNING;
	}
	struct run_waiter *w = NULL;
	if (wait) {
		w = xcalloc(1, sizeof *w);
		*w = *wait;
		w->dead = false;
		w->next = j->waiters;
		j->waiters = w;
	}
	bool had = j->pend != NULL, had_manual = had && j->pend->manual,
	     had_bypass = had && j->pend->bypass;
	job_set_pending(j, TRIGGER_MANUAL, true, !(flags & ENGINE_RUN_WHEN_ALLOWED));
	json_t *had_input = j->pend->input;
	j->pend->input = input ? json_deep_copy(input) : NULL;
	char *err = NULL;
	int st = job_try_start(j, &err);
	if (st < 0) {
		/* Not started and cannot be: the request is refused, not queued. */
		if (w) {
			j->waiters = w->next;
			free(w);
		}
		j->pend->manual = had_manual;
		j->pend->bypass = had_bypass;
		json_decref(j->pend->input);
		j->pend->input = had_input;
		had_input = NULL;
		if (!had)
			job_clear_pending(j);
		job_announce(j);
		*cause = xasprintf("the run of %s did not start: its start could not be recorded: %s",
		                   job_id(j), err);
		free(err);
		return RPC_E_INTERNAL;
	}
	json_decref(had_input);
	if (out != NULL)
		*out = json_pack("{s:s, s:o, s:b}", "job", job_id(j), "run_id",
		                 st > 0 ? json_integer((json_int_t)run_get_id(j->run)) : json_null(),
		                 "queued", st == 0);
	if (out != NULL && st == 0 && j->pend->reason)
		json_object_set_new(*out, "reason", json_string(j->pend->reason));
	if (waiter)
		*waiter = w;
	return 0;
}

int sched_job_cancel(struct sched_job *j, json_t **out, char **cause) {
	if (j->run) {
		*out = json_pack("{s:s, s:I}", "job", job_id(j), "run_id",
		                 (json_int_t)run_get_id(j->run));
		run_stop(j->run, OUTCOME_CANCELLED, "cancelled by request");
		return 0;
	}
	if (j->pend == NULL || !j->pend->manual) {
		*cause = xasprintf("job \"%s\" is not running and no run of it is queued", job_id(j));
		return RPC_E_NOT_RUNNING;
	}
	/* Only the manual request goes: a due run of the schedule keeps waiting. */
	j->pend->manual = false;
	j->pend->bypass = false;
	if (!j->pend->due)
		job_clear_pending(j);
	job_announce(j);
	struct run_waiter *w = j->waiters;
	j->waiters = NULL;
	json_t *res = json_pack("{s:s, s:n, s:s, s:s}", "job", job_id(j), "run_id", "outcome",
	                        "cancelled", "message", "the queued run was cancelled before it started");
	run_waiters_fire(w, res);
	json_decref(res);
	*out = json_pack("{s:s, s:n, s:b}", "job", job_id(j), "run_id", "dequeued", 1);
	return 0;
}

/* --- the arithmetic ---------------------------------------------------- */

int64_t sched_def_next_due(const struct job_def *d, int64_t anchor_ms, int64_t after_ms) {
	int64_t off = d->random_offset_ms, next_us;
	switch (d->schedule) {
	case SCHEDULE_INTERVAL:
		return sched_next_regular(anchor_ms, d->interval_ms, after_ms);
	case SCHEDULE_CALENDAR:
	case SCHEDULE_CRON:
		/* The first elapse e with e + offset > after; times round up to the ms. */
		if (calendar_next(d->calendar, (after_ms - off) * 1000 + 999, &next_us) < 0)
			return 0;
		return (next_us + 999) / 1000 + off;
	case SCHEDULE_AT:
		return d->at_ms + off > after_ms ? d->at_ms + off : 0;
	}
	return 0;
}

int64_t sched_next_regular(int64_t anchor, int64_t interval_ms, int64_t at) {
	if (interval_ms <= 0)
		return at;
	if (anchor == 0 || anchor > at + interval_ms)
		return at + interval_ms;
	if (anchor > at)
		return anchor;
	return anchor + ((at - anchor) / interval_ms + 1) * interval_ms;
}

int64_t sched_window_start(int64_t due, int64_t flex_ms, enum run_trigger trigger) {
	return trigger == TRIGGER_RETRY ? due : due - flex_ms;
}

int64_t sched_catchup_offset(size_t slot, size_t nslots, int64_t spread_ms) {
	if (nslots <= 1 || spread_ms <= 0)
		return 0;
	return spread_ms * (int64_t)slot / (int64_t)nslots;
}

int64_t sched_retry_delay(const struct retry_policy *p, int attempt) {
	int64_t d = p->initial_ms;
	if (attempt < 1)
		attempt = 1;
	if (p->backoff == BACKOFF_LINEAR) {
		d = attempt > p->max_ms / (p->initial_ms ? p->initial_ms : 1) ? p->max_ms
		                                                              : p->initial_ms * attempt;
	} else {
		for (int i = 1; i < attempt && d < p->max_ms; i++)
			d *= 2;
	}
	return d > p->max_ms ? p->max_ms : d;
}
