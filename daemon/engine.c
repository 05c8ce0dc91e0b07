/*
 * engine.c - jobs, their schedule and the engine's API.
 *
 * Every enabled job that is not pending sits in two min-heaps: by due time
 * (what arms the one timer) and by the start of its flex window (what may
 * run early when the timer fires anyway, so due jobs share a wake-up). A due
 * job whose constraints do not hold, or that finds no free run slot, moves
 * to the pending list; device changes and finished runs walk only that list.
 */
#include "daemon/engine_priv.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/constraints.h"
#include "daemon/mcp.h"
#include "daemon/schedule.h"

/* --- heaps ------------------------------------------------------------- */

static int64_t due_key(const void *p) {
	return ((const struct job *)p)->due_ms;
}

static int64_t win_key(const void *p) {
	const struct job *j = p;
	return sched_window_start(j->due_ms, j->def->flex_ms, j->due_trigger);
}

static size_t *due_index(void *p) {
	return &((struct job *)p)->due_idx;
}

static size_t *win_index(void *p) {
	return &((struct job *)p)->win_idx;
}

/* --- jobs -------------------------------------------------------------- */

static int job_cmp(const void *a, const void *b) {
	return strcmp((*(struct job *const *)a)->id, (*(struct job *const *)b)->id);
}

struct job *engine_find(struct engine *e, const char *id) {
	struct job key = {.id = (char *)id}, *kp = &key;
	struct job **found = bsearch(&kp, e->jobs, e->njobs, sizeof *e->jobs, job_cmp);
	return found ? *found : NULL;
}

bool job_enabled(const struct job *j) {
	return j->rec.enabled_override >= 0 ? j->rec.enabled_override == 1 : j->def->enabled;
}

enum job_state job_state_of(const struct job *j) {
	if (j->run)
		return JOB_STATE_RUNNING;
	if (j->pending)
		return JOB_STATE_PENDING;
	if (!job_enabled(j))
		return JOB_STATE_DISABLED;
	if (j->due_trigger == TRIGGER_RETRY && j->due_ms)
		return JOB_STATE_BACKOFF;
	return JOB_STATE_SCHEDULED;
}

/* Emit job.state when the state or the pending reason changed. */
void job_announce(struct job *j) {
	enum job_state s = job_state_of(j);
	/* durable: a backoff because the store could not record a start has a reason too. */
	const char *reason = s == JOB_STATE_PENDING || s == JOB_STATE_BACKOFF ? j->pending_reason : "";
	if (s == j->last_state && strcmp(reason, j->last_reason) == 0)
		return;
	enum job_state prev = j->last_state;
	j->last_state = s;
	snprintf(j->last_reason, sizeof j->last_reason, "%s", reason);
	if (s == JOB_STATE_PENDING) {
		struct log_ctx ctx = {.job_id = j->id, .message_id = MCPJOB_MSGID_JOB_PENDING};
		log_msg(LOG_LEVEL_INFO, &ctx, "pending: %s", reason);
	}
	events_emit(j->e->events, EVENT_JOB_STATE, j->id,
	            json_pack("{s:s, s:s, s:o}", "state", job_state_name(s), "previous",
	                      job_state_name(prev), "reason",
	                      *reason ? json_string(reason) : json_null()));
}

/* The first point of the job's interval grid after @now. */
int64_t job_next_regular(const struct job *j, int64_t now) {
	return sched_next_regular(j->rec.next_due_ms, j->def->interval_ms, now);
}

void job_schedule(struct job *j, int64_t due_ms, enum run_trigger trigger) {
	struct engine *e = j->e;
	j->due_ms = due_ms;
	j->due_trigger = trigger;
	if (trigger != TRIGGER_RETRY && trigger != TRIGGER_CATCH_UP)
		j->rec.next_due_ms = due_ms;
	heap_update(&e->due_heap, j);
	heap_update(&e->win_heap, j);
	engine_arm_timer(e);
}

void job_unschedule(struct job *j) {
	heap_remove(&j->e->due_heap, j);
	heap_remove(&j->e->win_heap, j);
}

static void pend_unlink(struct job *j) {
	struct engine *e = j->e;
	if (j->pend_prev)
		j->pend_prev->pend_next = j->pend_next;
	else
		e->pend_head = j->pend_next;
	if (j->pend_next)
		j->pend_next->pend_prev = j->pend_prev;
	else
		e->pend_tail = j->pend_prev;
	j->pend_prev = j->pend_next = NULL;
}

unsigned constraints_watch_mask(const struct job_constraints *c) {
	return (c->network != NET_REQ_ANY ? DEV_WATCH_NETWORK : 0) |
	       (c->charging ? DEV_WATCH_CHARGING : 0) | (c->battery_not_low ? DEV_WATCH_BATTERY : 0) |
	       (c->idle ? DEV_WATCH_IDLE : 0) | (c->storage_not_low ? DEV_WATCH_STORAGE : 0);
}

void engine_watch(struct engine *e, unsigned mask, int delta) {
	unsigned now = 0;
	for (int i = 0; i < DEV_WATCH_COUNT; i++) {
		if (mask & (1u << i))
			e->watch_counts[i] += (unsigned)delta;
		if (e->watch_counts[i])
			now |= 1u << i;
	}
	if (now != e->watch_mask && e->platform) {
		e->watch_mask = now;
		platform_watch(e->platform, now);
	}
}

void job_set_pending(struct job *j, enum run_trigger trigger, bool bypass) {
	struct engine *e = j->e;
	if (!j->pending) {
		j->watch_mask = constraints_watch_mask(&j->def->constraints);
		engine_watch(e, j->watch_mask, +1);
		j->pending = true;
		j->pending_since_ms = time_now_ms();
		j->pend_prev = e->pend_tail;
		j->pend_next = NULL;
		if (e->pend_tail)
			e->pend_tail->pend_next = j;
		else
			e->pend_head = j;
		e->pend_tail = j;
		j->pending_trigger = trigger;
	} else if (trigger == TRIGGER_MANUAL) {
		j->pending_trigger = trigger;
	}
	j->pending_bypass = j->pending_bypass || bypass;
}

void job_clear_pending(struct job *j) {
	if (!j->pending)
		return;
	pend_unlink(j);
	engine_watch(j->e, j->watch_mask, -1);
	j->watch_mask = 0;
	j->pending = false;
	j->pending_bypass = false;
	j->pending_reason[0] = '\0';
}

/*
 * Try to start a pending job: constraints first (unless a manual run
 * bypasses them), then a free slot. Returns true when it started.
 */
static bool job_try_start(struct job *j) {
	struct engine *e = j->e;
	struct device_state d;
	char reason[ENGINE_REASON_MAX];
	if (e->stopping || j->run || (e->run_due && !e->in_pass))
		return false; /* mobile: nothing starts outside the OS's budget */
	platform_get(e->platform, &d);
	if (!j->pending_bypass &&
	    !constraints_check(&j->def->constraints, &d, e->cref->cfg->device.unknown_allows,
	                       reason, sizeof reason)) {
		snprintf(j->pending_reason, sizeof j->pending_reason, "%s", reason);
		job_announce(j);
		return false;
	}
	if (e->running >= e->cref->cfg->max_concurrent) {
		snprintf(j->pending_reason, sizeof j->pending_reason,
		         "waiting for a free run slot (%d running, max_concurrent %d)", e->running,
		         e->cref->cfg->max_concurrent);
		job_announce(j);
		return false;
	}
	enum run_trigger t = j->pending_trigger;
	job_clear_pending(j);
	run_start(j, t);
	return true;
}

/* Walk the pending list once: one evaluation per pending job. */
void engine_try_pending(struct engine *e) {
	for (struct job *j = e->pend_head, *next; j; j = next) {
		next = j->pend_next;
		job_try_start(j);
	}
}

/* The job's due time arrived. */
static void job_due(struct job *j, int64_t now) {
	enum run_trigger t = j->due_trigger;
	int64_t occurrence = j->due_ms;
	job_unschedule(j);
	j->due_ms = 0;
	if (t != TRIGGER_RETRY) {
		/* The next regular occurrence, counted from the grid, not from now;
		 * a job started early in its flex window consumes its due time. */
		j->rec.next_due_ms = job_next_regular(j, now > occurrence ? now : occurrence);
		job_schedule(j, j->rec.next_due_ms, TRIGGER_SCHEDULE);
	}
	if (j->run) {
		log_debug("%s: due while still running; this occurrence is skipped", j->id);
		return;
	}
	job_set_pending(j, t, false);
	if (!job_try_start(j))
		job_announce(j);
}

static void engine_on_timer(evutil_socket_t fd, short what, void *arg) {
	struct engine *e = arg;
	uint64_t ticks;
	(void)what;
	if (read(fd, &ticks, sizeof ticks) < 0 && errno == ECANCELED)
		log_info("the system clock changed; re-checking the schedule");
	e->armed_ms = 0; /* expired or cancelled: whatever comes next must be armed */
	int64_t now = time_now_ms();
	struct job *j;
	while ((j = heap_peek(&e->win_heap)) != NULL && win_key(j) <= now)
		job_due(j, now);
	engine_arm_timer(e);
}

void engine_arm_timer(struct engine *e) {
	if (!e->started || e->stopping || e->run_due)
		return;
	struct job *j = heap_peek(&e->due_heap);
	int64_t due = j == NULL ? INT64_MAX : j->due_ms > 0 ? j->due_ms : 1;
	/* Called after every schedule change; only a new earliest time costs a
	 * syscall (placing 100k jobs at start would otherwise make 100k). */
	if (due == e->armed_ms)
		return;
	e->armed_ms = due;
	struct itimerspec its = {0};
	if (j != NULL) {
		its.it_value.tv_sec = due / 1000;
		its.it_value.tv_nsec = (due % 1000) * 1000000;
	} else {
		/* Nothing scheduled: far future, still armed to notice clock changes. */
		its.it_value.tv_sec = time_now_ms() / 1000 + 86400 * 365;
	}
	if (timerfd_settime(e->timerfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
		log_error("cannot arm the schedule timer: %s", strerror(errno));
}

void job_free(struct job *j) {
	if (j == NULL)
		return;
	job_unschedule(j);
	job_clear_pending(j);
	for (struct waiter *w = j->waiters, *next; w; w = next) {
		next = w->next;
		if (!w->dead && w->fn)
			w->fn(w->arg, NULL);
		free(w);
	}
	store_job_record_clear(&j->rec);
	free(j->id);
	free(j);
}

json_t *job_to_json(struct job *j) {
	const struct job_def *d = j->def;
	struct run *r = j->run;
	enum job_state s = job_state_of(j);
	json_t *progress = json_null();
	if (r && r->have_progress)
		progress = json_pack("{s:f, s:o, s:o}", "progress", r->progress, "total",
		                     r->total >= 0 ? json_real(r->total) : json_null(), "message",
		                     r->progress_msg ? json_string(r->progress_msg) : json_null());
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:b, s:s, s:f, s:f, s:o, s:o, s:o, s:o, s:o, s:o}", "id", j->id,
	    "name", d->name, "description", d->description ? d->description : "", "action",
	    action_kind_name(d->kind), "enabled", job_enabled(j), "state", job_state_name(s),
	    "interval", d->interval_ms / 1000.0, "flex", d->flex_ms / 1000.0, "timeout",
	    d->timeout_ms ? json_real(d->timeout_ms / 1000.0) : json_null(), "next_run",
	    time_to_json(job_enabled(j) && !j->pending ? j->rec.next_due_ms : 0), "last_run",
	    time_to_json(j->rec.last_run_ms), "last_outcome",
	    j->rec.last_outcome == OUTCOME_NONE ? json_null()
	                                        : json_string(run_outcome_name(j->rec.last_outcome)),
	    "last_message", j->rec.last_message ? json_string(j->rec.last_message) : json_null(),
	    "last_success", time_to_json(j->rec.last_success_ms));
	json_object_set_new(o, "running_since", time_to_json(r ? r->rec.started_ms : 0));
	json_object_set_new(o, "run_id", r ? json_integer((json_int_t)r->rec.run_id) : json_null());
	json_object_set_new(o, "attempt", json_integer(j->rec.attempt));
	json_object_set_new(o, "backoff_until",
	                    time_to_json(j->due_trigger == TRIGGER_RETRY ? j->due_ms : 0));
	json_object_set_new(o, "pending_reason",
	                    (j->pending || s == JOB_STATE_BACKOFF) && j->pending_reason[0]
	                        ? json_string(j->pending_reason)
	                        : json_null());
	json_object_set_new(o, "pending_since", time_to_json(j->pending ? j->pending_since_ms : 0));
	json_object_set_new(o, "progress", progress);
	json_object_set_new(o, "constraints", constraints_to_json(&d->constraints));
	return o;
}

/* --- building the job table ---------------------------------------------- */

static struct job *job_new(struct engine *e, const struct job_def *def) {
	struct job *j = xcalloc(1, sizeof *j);
	char *cause = NULL;
	j->e = e;
	j->id = xstrdup(def->id);
	j->def = def;
	j->due_idx = j->win_idx = HEAP_NONE;
	j->last_state = JOB_STATE_SCHEDULED;
	if (store_load_job(e->store, j->id, &j->rec, &cause) < 0) {
		log_error("%s: cannot read its saved state, starting fresh: %s", j->id, cause);
		free(cause);
		store_job_record_init(&j->rec);
	}
	return j;
}

/*
 * Put an enabled job on the schedule as the daemon starts or the job
 * appears: a missed due time becomes one catch-up run, spread by @slot so
 * that many missed jobs do not all start in the same second.
 */
static void job_place(struct job *j, int64_t now, size_t slot, size_t nslots) {
	const struct config *cfg = j->e->cref->cfg;
	if (!job_enabled(j)) {
		j->last_state = JOB_STATE_DISABLED;
		return;
	}
	if (j->rec.attempt > 0 && j->rec.attempt < j->def->retry.max_attempts) {
		job_schedule(j, now + sched_retry_delay(&j->def->retry, j->rec.attempt), TRIGGER_RETRY);
		return;
	}
	int64_t due = j->rec.next_due_ms;
	if (due == 0) {
		job_schedule(j, now + j->def->initial_delay_ms, TRIGGER_SCHEDULE);
	} else if (due < now) {
		job_schedule(j, now + sched_catchup_offset(slot, nslots, cfg->catchup_spread_ms),
		             TRIGGER_CATCH_UP);
	} else {
		job_schedule(j, due > now + j->def->interval_ms ? now + j->def->interval_ms : due,
		             TRIGGER_SCHEDULE);
	}
}

static void engine_sort_jobs(struct engine *e) {
	qsort(e->jobs, e->njobs, sizeof *e->jobs, job_cmp);
}

static void engine_place_all(struct engine *e) {
	int64_t now = time_now_ms();
	size_t missed = 0, slot = 0;
	for (size_t i = 0; i < e->njobs; i++)
		if (e->jobs[i]->rec.next_due_ms && e->jobs[i]->rec.next_due_ms < now)
			missed++;
	for (size_t i = 0; i < e->njobs; i++) {
		struct job *j = e->jobs[i];
		bool was_missed = j->rec.next_due_ms && j->rec.next_due_ms < now;
		job_place(j, now, was_missed ? slot++ : 0, missed);
		j->last_state = job_state_of(j);
	}
}

/* --- platform ----------------------------------------------------------- */

static void engine_on_device(void *arg, const struct device_state *old,
                             const struct device_state *now) {
	struct engine *e = arg;
	events_emit(e->events, EVENT_DEVICE_CHANGED, NULL,
	            json_pack("{s:o, s:o}", "state", device_state_to_json(now), "previous",
	                      device_state_to_json(old)));
	/* Runs whose constraints stopped holding are stopped and wait again. */
	char reason[ENGINE_REASON_MAX];
	for (size_t i = 0; i < e->njobs; i++) {
		struct run *r = e->jobs[i]->run;
		if (r == NULL || r->stopping || !r->def->stop_when_unmet ||
		    r->rec.trigger == TRIGGER_MANUAL)
			continue;
		if (!constraints_check(&r->def->constraints, now, e->cref->cfg->device.unknown_allows,
		                       reason, sizeof reason)) {
			char *why = xasprintf("stopped: constraints no longer hold (%s)", reason);
			r->requeue = true;
			run_stop(r, OUTCOME_CANCELLED, why);
			free(why);
		}
	}
	engine_try_pending(e);
}

/* --- open / close ----------------------------------------------------------- */

/* durable: the store pruned history to stay under store.max_size. */
static void engine_on_store_notice(void *arg, const char *what, uint64_t runs_deleted) {
	struct engine *e = arg;
	events_emit(e->events, EVENT_STORE_PRUNED, NULL,
	            json_pack("{s:s, s:I}", "message", what, "runs_deleted", (json_int_t)runs_deleted));
}

int engine_open(const struct engine_opts *opts, struct engine **out, struct config_errors *errs,
                char **cause) {
	struct config *cfg;
	if (config_load(opts->config_path, &cfg, errs) < 0) {
		*cause = xasprintf("cannot load the configuration %s", opts->config_path);
		return -1;
	}
	struct engine *e = xcalloc(1, sizeof *e);
	e->base = opts->base;
	e->config_path = xstrdup(opts->config_path);
	e->state_dir = xstrdup(opts->state_dir);
	e->cref = xcalloc(1, sizeof *e->cref);
	e->cref->cfg = cfg;
	e->cref->refs = 1;
	e->events = events_new();
	e->timerfd = -1;
	heap_init(&e->due_heap, due_key, due_index);
	heap_init(&e->win_heap, win_key, win_index);
	if (store_open(opts->state_dir, &e->store, cause) < 0)
		goto fail;
	int n = store_recover_interrupted(e->store, time_now_ms(), NULL, NULL, cause);
	if (n < 0)
		goto fail;
	if (n > 0)
		log_notice("%d run%s interrupted when mcpjobd last stopped; recorded as interrupted",
		           n, n == 1 ? " was" : "s were");
	/* durable: writes are queued to the store's writer thread from here on. */
	store_configure(e->store, cfg->durability, cfg->store_max_size);
	store_set_notice(e->store, engine_on_store_notice, e);
	store_attach(e->store, e->base);
	e->platform = platform_open(opts->platform, e->base, &cfg->device, opts->state_dir,
	                            engine_on_device, e, cause);
	if (e->platform == NULL)
		goto fail;
	e->timerfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (e->timerfd < 0) {
		*cause = xasprintf("cannot create the schedule timer: %s", strerror(errno));
		goto fail;
	}
	e->timer_ev = event_new(e->base, e->timerfd, EV_READ | EV_PERSIST, engine_on_timer, e);
	event_add(e->timer_ev, NULL);
	e->mcp = mcp_pool_new(e->base, cfg);
	e->jobs = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *e->jobs);
	store_load_begin(e->store); /* durable: one read transaction for every job */
	for (size_t i = 0; i < cfg->njobs; i++)
		e->jobs[e->njobs++] = job_new(e, cfg->jobs[i]);
	store_load_end(e->store);
	engine_sort_jobs(e);
	/* The parse tree of a big configuration is gone: give its pages back. */
	malloc_trim(0);
	*out = e;
	return 0;
fail:
	engine_free(e);
	return -1;
}

void engine_start(struct engine *e) {
	e->started = true;
	engine_place_all(e);
	engine_arm_timer(e);
	/* Jobs due right now (new ones, catch-up at offset 0) start at the first tick. */
}

void cfg_ref_put(struct cfg_ref *c) {
	if (c && --c->refs == 0) {
		config_free(c->cfg);
		free(c);
	}
}

static void engine_check_stopped(struct engine *e) {
	if ((e->stopping || e->run_due) && e->running == 0 && e->stop_done) {
		if (e->budget_ev)
			evtimer_del(e->budget_ev);
		e->in_pass = false;
		void (*done)(void *) = e->stop_done;
		e->stop_done = NULL;
		done(e->stop_arg);
	}
}

void engine_stop(struct engine *e, const char *reason, void (*done)(void *), void *arg) {
	e->stopping = true;
	e->stop_done = done;
	e->stop_arg = arg;
	free(e->stop_reason);
	e->stop_reason = xstrdup(reason);
	if (e->timer_ev)
		event_del(e->timer_ev);
	for (size_t i = 0; i < e->njobs; i++)
		if (e->jobs[i]->run && !e->jobs[i]->run->stopping)
			run_stop(e->jobs[i]->run, OUTCOME_CANCELLED, reason);
	engine_check_stopped(e);
}

/* Called by engine_run.c after every finished run. */
void engine_run_finished(struct engine *e) {
	if (!e->stopping)
		engine_try_pending(e);
	engine_check_stopped(e);
}

void engine_free(struct engine *e) {
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->njobs; i++)
		job_free(e->jobs[i]);
	free(e->jobs);
	heap_free(&e->due_heap);
	heap_free(&e->win_heap);
	if (e->timer_ev)
		event_free(e->timer_ev);
	if (e->budget_ev)
		event_free(e->budget_ev);
	if (e->timerfd >= 0)
		close(e->timerfd);
	if (e->mcp)
		mcp_pool_free(e->mcp);
	platform_close(e->platform);
	store_close(e->store);
	events_free(e->events);
	cfg_ref_put(e->cref);
	free(e->stop_reason);
	free(e->config_path);
	free(e->state_dir);
	free(e);
}

struct events *engine_events(struct engine *e) {
	return e->events;
}

const struct config *engine_config(struct engine *e) {
	return e->cref->cfg;
}

const char *engine_platform_name(struct engine *e) {
	return platform_name(e->platform);
}

char *engine_status_line(struct engine *e) {
	size_t pending = 0;
	for (struct job *j = e->pend_head; j; j = j->pend_next)
		pending++;
	struct job *next = heap_peek(&e->due_heap);
	char when[32] = "";
	if (next) {
		/* An absolute time: the line stays true without being refreshed. */
		time_t secs = (time_t)(next->due_ms / 1000);
		struct tm tm;
		localtime_r(&secs, &tm);
		strftime(when, sizeof when, "%H:%M:%S", &tm);
	}
	return xasprintf("%zu job%s, %d running, %zu pending%s%s%s%s", e->njobs,
	                 e->njobs == 1 ? "" : "s", e->running, pending, next ? "; next: " : "",
	                 next ? next->id : "", next ? " at " : "", when);
}

/* --- reload --------------------------------------------------------------- */

static bool def_changed(const struct job_def *a, const struct job_def *b) {
	if (strcmp(a->name, b->name) != 0 || a->interval_ms != b->interval_ms ||
	    a->flex_ms != b->flex_ms || a->timeout_ms != b->timeout_ms || a->kind != b->kind ||
	    a->enabled != b->enabled || a->stop_when_unmet != b->stop_when_unmet)
		return true;
	if (memcmp(&a->constraints, &b->constraints, sizeof a->constraints) != 0 ||
	    memcmp(&a->retry, &b->retry, sizeof a->retry) != 0)
		return true;
	switch (a->kind) {
	case ACTION_EXEC:
		if (strv_len(a->exec.argv) != strv_len(b->exec.argv))
			return true;
		for (size_t i = 0; a->exec.argv[i]; i++)
			if (strcmp(a->exec.argv[i], b->exec.argv[i]) != 0)
				return true;
		return false;
	case ACTION_CLEANUP:
		return strcmp(a->cleanup.path, b->cleanup.path) != 0 ||
		       a->cleanup.max_age_ms != b->cleanup.max_age_ms;
	case ACTION_MCP:
		return strcmp(a->mcp.server, b->mcp.server) != 0 || strcmp(a->mcp.tool, b->mcp.tool) != 0 ||
		       !json_equal(a->mcp.arguments, b->mcp.arguments);
	}
	return false;
}

/* A kept job's new definition; what it waits on while pending follows. */
static void job_take_def(struct job *j, const struct job_def *def) {
	j->def = def;
	if (j->pending) {
		engine_watch(j->e, j->watch_mask, -1);
		j->watch_mask = constraints_watch_mask(&def->constraints);
		engine_watch(j->e, j->watch_mask, +1);
	}
}

/* Take a job out of the table: now, or after its run when it runs. */
static void job_retire(struct job *j) {
	job_unschedule(j);
	job_clear_pending(j);
	if (j->run)
		j->removed = true;
	else
		job_free(j);
}

int engine_reload(struct engine *e, json_t **summary, struct config_errors *errs) {
	struct config *cfg;
	if (config_load(e->config_path, &cfg, errs) < 0)
		return RPC_E_CONFIG_INVALID;
	json_t *added = json_array(), *removed = json_array(), *changed = json_array();
	struct job **jobs = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *jobs);
	size_t n = 0;
	int64_t now = time_now_ms();
	for (size_t i = 0; i < cfg->njobs; i++) {
		struct job *j = engine_find(e, cfg->jobs[i]->id);
		if (j == NULL) {
			j = job_new(e, cfg->jobs[i]);
			json_array_append_new(added, json_string(j->id));
		} else if (def_changed(j->def, cfg->jobs[i])) {
			json_array_append_new(changed, json_string(j->id));
		}
		jobs[n++] = j;
	}
	for (size_t i = 0; i < e->njobs; i++) {
		if (config_find_job(cfg, e->jobs[i]->id) == NULL) {
			json_array_append_new(removed, json_string(e->jobs[i]->id));
			job_retire(e->jobs[i]);
		}
	}
	/* Swap in the new configuration; runs keep a reference to the old one.
	 * Everything that points into it moves over before it may be freed:
	 * the heaps' keys read every job's definition, so all jobs leave the
	 * heaps before any definition changes. */
	for (size_t i = 0; i < n; i++)
		job_unschedule(jobs[i]);
	for (size_t i = 0; i < n; i++)
		job_take_def(jobs[i], config_find_job(cfg, jobs[i]->id));
	mcp_pool_set_config(e->mcp, cfg);
	platform_set_settings(e->platform, &cfg->device);
	store_configure(e->store, cfg->durability, cfg->store_max_size); /* durable */
	cfg_ref_put(e->cref);
	e->cref = xcalloc(1, sizeof *e->cref);
	e->cref->cfg = cfg;
	e->cref->refs = 1;
	free(e->jobs);
	e->jobs = jobs;
	e->njobs = n;
	engine_sort_jobs(e);
	for (size_t i = 0; i < n; i++) {
		struct job *j = jobs[i];
		if (!job_enabled(j)) {
			job_clear_pending(j);
		} else if (!j->pending) {
			job_place(j, now, 0, 1);
		}
		job_announce(j);
	}
	platform_refresh(e->platform); /* a reload also re-reads the device */
	engine_arm_timer(e);
	engine_try_pending(e);
	*summary = json_pack("{s:i, s:o, s:o, s:o}", "jobs", (int)n, "added", added, "removed",
	                     removed, "changed", changed);
	struct log_ctx ctx = {.message_id = MCPJOB_MSGID_RELOAD};
	log_msg(LOG_LEVEL_NOTICE, &ctx, "configuration reloaded: %zu jobs (%zu added, %zu removed, %zu changed)",
	        n, json_array_size(added), json_array_size(removed), json_array_size(changed));
	return 0;
}

/* --- the API ----------------------------------------------------------------- */

static int no_such_job(const char *id, char **cause) {
	*cause = xasprintf("no such job \"%s\" (mcpjobctl list shows the jobs)", id);
	return RPC_E_NO_SUCH_JOB;
}

json_t *engine_jobs_json(struct engine *e) {
	json_t *arr = json_array();
	const struct config *cfg = e->cref->cfg;
	/* In configuration order, as people wrote them. */
	for (size_t i = 0; i < cfg->njobs; i++) {
		struct job *j = engine_find(e, cfg->jobs[i]->id);
		if (j)
			json_array_append_new(arr, job_to_json(j));
	}
	return json_pack("{s:o}", "jobs", arr);
}

int engine_job_json(struct engine *e, const char *id, json_t **out, char **cause) {
	struct job *j = engine_find(e, id);
	if (j == NULL)
		return no_such_job(id, cause);
	*out = job_to_json(j);
	return 0;
}

int engine_job_set_enabled(struct engine *e, const char *id, bool enabled, json_t **out,
                           char **cause) {
	struct job *j = engine_find(e, id);
	char *err = NULL;
	if (j == NULL)
		return no_such_job(id, cause);
	bool was = job_enabled(j);
	j->rec.enabled_override = enabled ? 1 : 0;
	if (store_save_job(e->store, j->id, &j->rec, &err) < 0) {
		j->rec.enabled_override = was ? 1 : 0;
		*cause = xasprintf("cannot save the state of %s: %s", id, err);
		free(err);
		return RPC_E_INTERNAL;
	}
	if (was != enabled) {
		if (enabled) {
			job_place(j, time_now_ms(), 0, 1);
		} else {
			job_unschedule(j);
			j->due_ms = 0;
			if (j->pending_trigger != TRIGGER_MANUAL)
				job_clear_pending(j);
		}
		log_info("%s: %s", id, enabled ? "enabled" : "disabled");
		job_announce(j);
	}
	*out = job_to_json(j);
	return 0;
}

int engine_job_run(struct engine *e, const char *id, int flags, engine_run_fn fn, void *arg,
                   json_t **out, void **waiter, char **cause) {
	struct job *j = engine_find(e, id);
	if (j == NULL)
		return no_such_job(id, cause);
	if (e->stopping) {
		*cause = xstrdup("mcpjobd is stopping");
		return RPC_E_SHUTTING_DOWN;
	}
	if (j->run) {
		char since[TIME_RFC3339_LEN];
		*cause = xasprintf("job \"%s\" is already running (run %llu, started %s); a job "
		                   "never overlaps itself", id, (unsigned long long)j->run->rec.run_id,
		                   time_format_rfc3339(j->run->rec.started_ms, since));
		return RPC_E_ALREADY_RUNNING;
	}
	struct waiter *w = NULL;
	if (fn) {
		w = xcalloc(1, sizeof *w);
		w->fn = fn;
		w->arg = arg;
		w->next = j->waiters;
		j->waiters = w;
	}
	job_set_pending(j, TRIGGER_MANUAL, !(flags & ENGINE_RUN_WHEN_ALLOWED));
	bool started = job_try_start(j);
	if (!started)
		job_announce(j);
	*out = json_pack("{s:s, s:o, s:b}", "job", id, "run_id",
	                 started ? json_integer((json_int_t)j->run->rec.run_id) : json_null(),
	                 "queued", !started);
	if (!started && j->pending_reason[0])
		json_object_set_new(*out, "reason", json_string(j->pending_reason));
	if (waiter)
		*waiter = w;
	return 0;
}

void engine_forget_waiter(struct engine *e, void *waiter) {
	(void)e;
	if (waiter)
		((struct waiter *)waiter)->dead = true;
}

int engine_job_cancel(struct engine *e, const char *id, json_t **out, char **cause) {
	struct job *j = engine_find(e, id);
	if (j == NULL)
		return no_such_job(id, cause);
	if (j->run == NULL) {
		if (j->pending && j->pending_trigger == TRIGGER_MANUAL) {
			job_clear_pending(j);
			job_announce(j);
			*out = json_pack("{s:s, s:n, s:b}", "job", id, "run_id", "dequeued", 1);
			return 0;
		}
		*cause = xasprintf("job \"%s\" is not running", id);
		return RPC_E_NOT_RUNNING;
	}
	*out = json_pack("{s:s, s:I}", "job", id, "run_id", (json_int_t)j->run->rec.run_id);
	run_stop(j->run, OUTCOME_CANCELLED, "cancelled by request");
	return 0;
}

struct history_acc {
	json_t *runs;
};

static int history_add(const struct run_record *run, void *arg) {
	struct history_acc *acc = arg;
	json_array_append_new(acc->runs, store_run_to_json(run));
	return 0;
}

int engine_job_history(struct engine *e, const char *id, long long limit, int64_t before_ms,
                       json_t **out, char **cause) {
	char *err = NULL;
	if (engine_find(e, id) == NULL)
		return no_such_job(id, cause);
	struct history_acc acc = {json_array()};
	if (store_history(e->store, id, before_ms, (size_t)limit, history_add, &acc, &err) < 0) {
		json_decref(acc.runs);
		*cause = xasprintf("cannot read the history of %s: %s", id, err);
		free(err);
		return RPC_E_INTERNAL;
	}
	*out = json_pack("{s:s, s:o}", "job", id, "runs", acc.runs);
	return 0;
}

json_t *engine_device_json(struct engine *e) {
	struct device_state d;
	platform_get(e->platform, &d);
	return json_pack("{s:s, s:o}", "platform", platform_name(e->platform), "state",
	                 device_state_to_json(&d));
}

int engine_device_set(struct engine *e, const json_t *params, json_t **out, char **cause) {
	const char *key;
	json_t *v;
	if (!platform_can_set(e->platform)) {
		*cause = xasprintf("the device state cannot be set on the \"%s\" platform (start "
		                   "mcpjobd with --platform sim)", platform_name(e->platform));
		return RPC_E_NOT_SUPPORTED;
	}
	if (params == NULL || json_object_size(params) == 0) {
		*cause = xstrdup("device.set needs at least one of network, charging, battery_low, "
		                 "idle, storage_low");
		return RPC_E_INVALID_PARAMS;
	}
	json_object_foreach((json_t *)params, key, v) {
		char buf[32];
		const char *val = json_is_string(v) ? json_string_value(v)
		                  : json_is_boolean(v) ? (json_is_true(v) ? "true" : "false")
		                  : json_is_null(v)    ? "unknown"
		                                       : NULL;
		if (val == NULL) {
			*cause = xasprintf("param \"%s\" must be a string or a boolean", key);
			return RPC_E_INVALID_PARAMS;
		}
		snprintf(buf, sizeof buf, "%s", val);
		if (platform_set(e->platform, key, buf, cause) < 0)
			return RPC_E_INVALID_PARAMS;
	}
	*out = engine_device_json(e);
	return 0;
}

/* --- run what is due within a budget (mobile hooks, --run-due) ------------- */

static void budget_expired(evutil_socket_t fd, short what, void *arg) {
	struct engine *e = arg;
	(void)fd;
	(void)what;
	log_notice("the time budget ran out; stopping what still runs");
	engine_stop(e, "the time budget for background work ran out", e->stop_done, e->stop_arg);
}

int64_t engine_next_due(struct engine *e) {
	struct job *j = heap_peek(&e->due_heap);
	return j ? j->due_ms : 0;
}

uint64_t engine_runs_started(struct engine *e) {
	return e->runs_started;
}

void engine_run_due(struct engine *e, int64_t budget_ms, void (*done)(void *), void *arg) {
	int64_t now = time_now_ms();
	/* May be called again for the OS's next wake-up. */
	e->stopping = false;
	e->run_due = true; /* no timer: what is due now runs, then we are done */
	if (!e->started)
		engine_place_all(e);
	e->started = true;
	if (e->budget_ev)
		event_free(e->budget_ev);
	e->in_pass = true;
	struct job *j;
	while ((j = heap_peek(&e->win_heap)) != NULL && win_key(j) <= now)
		job_due(j, now);
	engine_try_pending(e); /* what waited since the last pass */
	e->stop_done = done;
	e->stop_arg = arg;
	struct timeval tv = {budget_ms / 1000, (budget_ms % 1000) * 1000};
	e->budget_ev = evtimer_new(e->base, budget_expired, e);
	evtimer_add(e->budget_ev, &tv);
	engine_check_stopped(e);
}
