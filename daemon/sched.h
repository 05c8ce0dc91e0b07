/*
 * sched.h - the scheduler: which job runs when.
 *
 * It owns the jobs' runtime state, the two heaps of due times, the one
 * schedule timer, the pending list, the constraint gate and the run
 * slots ("is it due", "may it start"), and the decision after a run
 * (success, retry with backoff, requeue when constraints stopped holding,
 * catch-up after downtime). Runs themselves are daemon/run.c's: the
 * scheduler starts one with run_start() and hears of its end through one
 * hook; the arrows point one way (DESIGN.md, "Data flow").
 *
 * Every enabled job that is not running sits in two min-heaps: by due time
 * (what arms the timer) and by the start of its flex window (what may run
 * early when the timer fires anyway, so due jobs share a wake-up). A due
 * job whose constraints do not hold, or that finds no free run slot, moves
 * to the pending list; device changes and finished runs walk only that list.
 *
 * The second half of this header is the schedule's arithmetic as pure
 * functions (the interval grid, flex windows, catch-up spreading, retry
 * backoff), pinned down by tests/unit/test_schedule.c.
 */
#ifndef MCPJOB_SCHED_H
#define MCPJOB_SCHED_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/engine.h"
#include "daemon/job.h"

struct config;
struct events;
struct mcp_pool;
struct platform;
struct device_state;
struct store;
struct sched;
struct sched_job;

/* A configuration shared by the scheduler and the runs started under it. */
struct sched_cfg {
	struct config *cfg;
	int refs;
};

/* Takes ownership of @cfg; one reference. */
struct sched_cfg *sched_cfg_new(struct config *cfg);
void sched_cfg_put(struct sched_cfg *c);

/* What the scheduler works with; all borrowed, outliving the scheduler. */
struct sched_env {
	struct event_base *base;
	const struct engine_clock *clock;
	struct store *store;
	struct platform *platform;
	struct events *events;
	struct mcp_pool *mcp;
	int kill_grace_ms; /* exec runs: SIGTERM -> SIGKILL; 0 = the default */
};

/*
 * sched_new() - the jobs of @cfg (a reference is taken), each with its
 * saved state from the store. Nothing is placed until sched_start() or
 * sched_run_due(). NULL with *@cause when the timer cannot be made.
 */
struct sched *sched_new(const struct sched_env *env, struct sched_cfg *cfg, char **cause);
void sched_free(struct sched *s);
/*
 * Place every job (a due time missed while the daemon was down becomes one
 * catch-up run, spread over catchup_spread) and arm the timer.
 */
void sched_start(struct sched *s);
/* Stop scheduling; stop every running run with outcome cancelled and @reason. */
void sched_stop(struct sched *s, const char *reason);
/* The same, except that runs on an MCP task that can outlive us are left to
 * it (run_leave()): not recorded now, resumed at the next engine open. */
void sched_stop_leaving_tasks(struct sched *s, const char *reason);
/*
 * sched_when_idle() - once stopping (or in a run-due pass) and no run runs,
 * call @fn(@arg) once; at once if that is already so.
 */
void sched_when_idle(struct sched *s, void (*fn)(void *), void *arg);
/* One pass without the timer: start what is due and allowed now (mobile). */
void sched_run_due(struct sched *s);
/*
 * sched_auth_changed() - MCP server @server was logged in (@authorized: its
 * jobs that waited for that run now, if due) or lost its grant (its jobs
 * wait, pending with "waiting for authorization: run `mcpjobctl auth login
 * NAME`", from their next due time or the end of their run on). A run
 * that met the server's demand for a login is recorded as a failure with
 * that message, is not retried, and starts no on_failure job.
 */
void sched_auth_changed(struct sched *s, const char *server, bool authorized);
/* The device changed: stop runs whose constraints stopped holding, try pending jobs. */
void sched_device_changed(struct sched *s, const struct device_state *now);

/*
 * sched_reload() - switch to @cfg (a reference is taken): jobs appear, go
 * (after their run) or take their new definition; running runs finish
 * under the one they started with. The ids go to @added, @removed and
 * @changed (any key of the definition, job_def_equal()).
 */
void sched_reload(struct sched *s, struct sched_cfg *cfg, json_t *added, json_t *removed,
                  json_t *changed);

/*
 * sched_resume_run() - at engine open, before sched_start(): run @rec (left
 * "running" on an MCP task by a daemon that died) again as its job's run
 * (run_resume()), so the job is running and never overlaps itself. 0, or
 * -1 with *@cause when its job is gone or it cannot be taken over.
 */
struct run_record;
int sched_resume_run(struct sched *s, const struct run_record *rec, char **cause);

const struct config *sched_config(const struct sched *s);
struct sched_job *sched_find(struct sched *s, const char *id);
/* Every job, in configuration order: {"jobs": [...]}. */
json_t *sched_jobs_json(struct sched *s);
json_t *sched_job_json(struct sched_job *j);
/* The same two as JSON text appended to @t (common/jsontext.h). */
struct jsontext;
void sched_jobs_text(struct sched *s, struct jsontext *t);
void sched_job_text(struct sched_job *j, struct jsontext *t);
/* @fn(@arg, id, start of its last run or 0) for every job, in no order. */
void sched_each_last_run(struct sched *s, void (*fn)(void *arg, const char *id, int64_t ms),
                         void *arg);
/* One line: "12 jobs, 1 running, 2 pending; next: sync-data at 14:05:00". */
char *sched_status_line(struct sched *s);
int64_t sched_next_due(struct sched *s);
uint64_t sched_runs_started(const struct sched *s);

/* The engine API's job operations (engine.h says what they do). */
int sched_job_set_enabled(struct sched_job *j, bool enabled, char **cause);
/* @wait: the waiter to keep (copied), or NULL; @out may be NULL. */
struct run_waiter;
int sched_job_request_run(struct sched_job *j, int flags, const json_t *input,
                          const struct run_waiter *wait, json_t **out, void **waiter,
                          char **cause);
int sched_job_cancel(struct sched_job *j, json_t **out, char **cause);
/*
 * sched_job_restart() - the job starts over as if new (job.add "replace"):
 * a running run is cancelled, its retry series and enable override are
 * forgotten, and it is placed again (after the run, if one was going). Its
 * history, and the times of its last runs, stay.
 */
int sched_job_restart(struct sched_job *j, char **cause);

/* --- the arithmetic ---------------------------------------------------- */

/*
 * sched_next_regular() - the first point of the grid anchor + k*interval
 * strictly after @at (k >= 0; @anchor itself when it is after @at). The
 * grid keeps a job's rhythm across late starts and downtime: a job due at
 * 12:00 every 15 min that ran late at 12:07 is next due at 12:15, not
 * 12:22. An anchor further than one interval ahead (the interval was made
 * shorter) or absent (0) gives @at + interval.
 */
int64_t sched_next_regular(int64_t anchor, int64_t interval_ms, int64_t at);

/*
 * sched_def_next_due() - a job's next due time strictly after @after_ms,
 * its random offset included, whatever its schedule (interval grid from
 * @anchor_ms, calendar, cron, "at"); 0 when it is never due again (a
 * one-off, @reboot, a calendar that has run out).
 */
int64_t sched_def_next_due(const struct job_def *d, int64_t anchor_ms, int64_t after_ms);

/* When a job due at @due may start: @flex earlier, except for retries. */
int64_t sched_window_start(int64_t due, int64_t flex_ms, enum run_trigger trigger);

/*
 * sched_catchup_offset() - the delay of missed job number @slot of @nslots
 * at start-up, spreading their catch-up runs evenly over @spread_ms so they
 * do not all start in the same second.
 */
int64_t sched_catchup_offset(size_t slot, size_t nslots, int64_t spread_ms);

/*
 * sched_retry_delay() - wait before attempt @attempt + 1 after attempt
 * @attempt (1-based) failed: exponential initial * 2^(attempt-1) or linear
 * initial * attempt, clamped to max.
 */
int64_t sched_retry_delay(const struct retry_policy *p, int attempt);

#endif
