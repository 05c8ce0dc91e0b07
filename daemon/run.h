/*
 * run.h - one run of a job, from start to record: start its action, watch
 * its timeout, stop it on request, keep its progress, write its records.
 *
 * The run knows nothing of the schedule. Its owner (daemon/sched.c) starts
 * it with everything it needs in struct run_params and learns that it
 * ended through ONE call, hooks->ended(). The owner then decides what
 * comes next for the job (retry, requeue, the next due time), calls
 * run_finish() with the job's new record so the run's end and the job's
 * state are written in one transaction, and run_free().
 *
 * Records: a run is written as "running" before its action starts - the
 * store commits that record off the loop (its writer thread, group
 * commit), and the action starts only once it is committed; when the
 * commit fails nothing started and the owner hears not_started() - and it
 * is rewritten with its outcome by run_finish(), so each run leaves exactly
 * one record, even if the daemon dies in between (the next start says
 * "interrupted" and stops what the dead daemon left running, orphan.h).
 */
#ifndef MCPJOB_RUN_H
#define MCPJOB_RUN_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/engine.h"
#include "daemon/job.h"

struct config;
struct events;
struct job_record;
struct mcp_pool;
struct run;
struct run_record;
struct store;

/* Someone waiting for a run's end (job.run --wait): fn or text_fn is set. */
struct run_waiter {
	struct run_waiter *next;
	engine_run_fn fn;
	engine_run_text_fn text_fn; /* the record as JSON text: no tree built for it */
	void *arg;
	bool dead; /* its connection went away: not called */
};

/* Call every live waiter of the list with @run (may be NULL), free the list. */
void run_waiters_fire(struct run_waiter *w, const json_t *run);
/*
 * The same with @run and/or its @text (@len bytes) as the caller has them:
 * the tree for fn waiters (encoded for text_fn ones when @text is NULL),
 * the text for text_fn waiters. Both NULL: the run was dropped.
 */
void run_waiters_fire_with(struct run_waiter *w, const json_t *run, const char *text,
                           size_t len);
/* Answer only the text_fn waiters of @w (they stay in the list, answered). */
void run_waiters_fire_text(struct run_waiter *w, const char *text, size_t len);
/* Does a live waiter of @w want the tree (fn) / the text (text_fn)? */
bool run_waiters_want(const struct run_waiter *w, bool text);

struct run_hooks {
	/*
	 * The run ended (its action reported, or it could not start). Called
	 * once, never from inside run_start(); it may be from inside
	 * run_stop() (an action may finish as it is stopped). The owner must
	 * end with run_finish() and run_free().
	 */
	void (*ended)(void *owner, struct run *r);
	/*
	 * The store could not record the run's start (from the loop, never from
	 * inside run_start()): it never started and has no record. The owner
	 * takes its waiters back (run_take_waiters()) and run_free()s it.
	 */
	void (*not_started)(void *owner, struct run *r, const char *cause);
	/* Its start is recorded and its action started (after run.started). */
	void (*launched)(void *owner, struct run *r);
};

struct run_params {
	struct event_base *base;
	const struct engine_clock *clock;
	struct store *store;
	struct events *events;
	struct mcp_pool *mcp;
	const struct config *cfg;  /* borrowed: must outlive the run */
	const struct job_def *def; /* borrowed: must outlive the run */
	enum run_trigger trigger;
	const char *trigger_ref;   /* TRIGGER_AFTER: "JOB:RUN" of the run that started it */
	const json_t *input;       /* job.run's arguments or env for this run, may be NULL */
	int attempt;               /* 1 for a first attempt */
	int64_t last_success_ms;   /* for the action's templates */
	int64_t last_run_ms;       /* before this run */
	struct run_waiter *waiters; /* taken over */
	const struct run_hooks *hooks;
	void *owner;
	int kill_grace_ms; /* exec: SIGTERM -> SIGKILL; 0 = the default */
};

/*
 * run_start() - queue the run's "running" record, with @job_rec (the job's
 * record as it is now, saved in the same commit); its action starts when
 * that is committed. Returns the run, or NULL with *@cause when the start
 * cannot even be queued: then nothing started and the waiters stay with the
 * caller (params->waiters is untouched). An action that cannot start still makes
 * a run, which ends (ended() from the loop) as a failure saying why.
 */
struct run *run_start(const struct run_params *p, const struct job_record *job_rec,
                      char **cause);

/*
 * run_resume() - take over @rec, a run left "running" by a daemon that
 * died while its MCP task ran (rec->task_id set): its action follows the
 * task (action_env.resume_task) under its original start time, attempt
 * and timeout; it ends through hooks->ended() as any run, and run_finish()
 * rewrites that same record. No new record is written to start it.
 * NULL with *@cause when it cannot even be taken over.
 */
struct run *run_resume(const struct run_params *p, const struct run_record *rec, char **cause);

/*
 * run_leave() - the daemon goes down: a run on an MCP task that can outlive
 * it (action_ops.leave) lets go without stopping the task. It ends at once
 * (ended(), from inside; run_is_left() then says so): the owner must NOT
 * run_finish() it - its "running" record stays, with its task, and the
 * next engine open resumes it (run_resume()) - only run_free() it. False
 * when the run cannot be left (it goes on; stop it).
 */
bool run_leave(struct run *r, const char *reason);
bool run_is_left(const struct run *r);

/* Ask the run to stop; it ends with @why (CANCELLED or TIMEOUT) and @reason.
 * Before its start is recorded it does not start, and ends so at once after. */
void run_stop(struct run *r, enum run_outcome why, const char *reason);
/* The job's last run before this one (params->last_run_ms). */
int64_t run_get_last_run_before(const struct run *r);
/* The waiters of a run that did not start (not_started()), for the next run. */
struct run_waiter *run_take_waiters(struct run *r);

/*
 * run_finish() - after ended(): write the run's end with @job_rec (the
 * job's new record) and the job's history retention in one transaction,
 * log it, emit run.finished and answer the waiters. @retry_at_ms is when
 * the owner will retry (0: no retry), told to people and waiters.
 */
void run_finish(struct run *r, const struct job_record *job_rec, int64_t retry_at_ms);
void run_free(struct run *r);

uint64_t run_get_id(const struct run *r);
enum run_outcome run_get_outcome(const struct run *r);
enum run_trigger run_get_trigger(const struct run *r);
int run_get_attempt(const struct run *r);
int64_t run_get_started_ms(const struct run *r);
const char *run_get_message(const struct run *r); /* NULL while running or when none */
const struct job_def *run_get_def(const struct run *r);
bool run_is_stopping(const struct run *r);
/* The run ended because its MCP server wants a person's login (mcpjobctl auth login). */
bool run_needs_login(const struct run *r);
/* {"progress", "total", "message"} or JSON null when the run reported none. */
json_t *run_progress_json(const struct run *r);

#endif
