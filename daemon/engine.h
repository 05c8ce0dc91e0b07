/*
 * engine.h - the job engine: configuration, schedule, constraint gate, runs,
 * state and history, events. Everything mcpjobd does, minus the socket and
 * main(); the control server, the tests and the mobile hooks drive it
 * through this header.
 *
 * The engine runs on a libevent base it is given, and reads the time from
 * the clock it is given (struct engine_clock; by default the real one: one
 * realtime timerfd, absolute, TFD_TIMER_CANCEL_ON_SET, armed for the
 * earliest due job, so an idle engine never wakes up, due times follow the
 * wall clock across suspend, and a clock change re-arms it at once).
 *
 * Inside: daemon/sched.c decides which job runs when, daemon/run.c carries
 * one run from start to record; this file wires them to the store, the
 * platform, the MCP pool and the events.
 *
 * Engine calls that can fail return 0 or a protocol error code
 * (RPC_E_* from common/protocol.h) with *cause set to a sentence.
 */
#ifndef MCPJOB_ENGINE_H
#define MCPJOB_ENGINE_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/config.h"

struct engine;
struct config;
struct events;
struct config_errors;

/*
 * struct engine_clock - where the engine reads the time and how it waits:
 * every due time, run start and finish, backoff and timeout goes through
 * it, so a test can drive time (tests/unit/test_engine.c). NULL in
 * engine_opts means engine_clock_real().
 *
 * A timer calls its fn once the clock reaches the time it was set for.
 * A @wall timer follows the wall clock across suspend and also fires when
 * the clock is set (the schedule timer: the engine then re-checks what is
 * due); other timers measure elapsed time (timeouts, budgets).
 */
struct engine_timer;
typedef void (*engine_timer_fn)(void *arg);

struct engine_clock {
	/* Wall-clock time now, ms since the epoch. */
	int64_t (*now_ms)(void *ctx);
	/* NULL with errno set when the timer cannot be made. */
	struct engine_timer *(*timer_new)(void *ctx, struct event_base *base, bool wall,
	                                  engine_timer_fn fn, void *arg);
	/* Fire at @at_ms (the clock's time); INT64_MAX: not at all. Re-setting replaces. */
	void (*timer_set)(struct engine_timer *t, int64_t at_ms);
	void (*timer_free)(struct engine_timer *t); /* accepts NULL */
	void *ctx;
};

/* The real clock: CLOCK_REALTIME; wall timers are an absolute realtime
 * timerfd with TFD_TIMER_CANCEL_ON_SET, the others libevent timers. */
const struct engine_clock *engine_clock_real(void);

struct engine_opts {
	const char *config_path;
	const char *state_dir;
	const char *platform; /* "linux" or "sim" */
	struct event_base *base;
	const struct engine_clock *clock; /* NULL: engine_clock_real() */
	/* How "user" keys are checked at every load and reload (config.h);
	 * CONFIG_IDENTITY_OFF (0) by default: not at all. */
	enum config_identity_mode identity_mode;
	int kill_grace_ms;  /* exec runs: SIGTERM -> SIGKILL; 0 = ACTION_KILL_GRACE_MS */
	bool no_system_bus; /* linux platform: no NetworkManager, no logind */
};

/*
 * engine_open() - load the configuration, open the store (rewriting runs
 * left "running" by a dead daemon as "interrupted"), start the platform
 * provider and compute every job's next due time (a run missed while the
 * daemon was down becomes one catch-up run). Nothing runs until
 * engine_start(). Config errors are appended to @errs; other failures set
 * *@cause. Returns 0 or -1.
 */
int engine_open(const struct engine_opts *opts, struct engine **out, struct config_errors *errs,
                char **cause);
/* Arm the schedule. */
void engine_start(struct engine *e);
/*
 * engine_stop() - stop every running run (recorded "cancelled" with
 * @reason) and call @done once none runs. Scheduling stops.
 */
void engine_stop(struct engine *e, const char *reason, void (*done)(void *), void *arg);
/*
 * engine_shutdown() - engine_stop() for a process that goes down and will
 * open the engine again (mcpjobd on SIGTERM): a run on an MCP task on a
 * Streamable HTTP server is not cancelled but left to its task, its record
 * left "running", and the next engine_open() resumes it.
 */
void engine_shutdown(struct engine *e, const char *reason, void (*done)(void *), void *arg);
void engine_free(struct engine *e);

struct events *engine_events(struct engine *e);
/* The OAuth grants of the remote MCP servers (daemon/auth.h) and the logins in
 * progress (daemon/auth_login.h); a change of grant reaches the scheduler and
 * the events (auth.revoked, auth.logged_out) by itself. */
struct auth;
struct auth_logins;
struct auth *engine_auth(struct engine *e);
struct auth_logins *engine_auth_logins(struct engine *e);
const struct config *engine_config(struct engine *e);
const char *engine_platform_name(struct engine *e);
/* One line: "12 jobs, 1 running, 2 pending; next: sync-data in 4min". */
char *engine_status_line(struct engine *e);

/*
 * engine_reload() - load the configuration again. On errors the running
 * configuration stays and @errs lists them (RPC_E_CONFIG_INVALID). On
 * success *@summary = {"jobs", "added", "removed", "changed"}. Running runs
 * finish under the definition they started with.
 */
int engine_reload(struct engine *e, json_t **summary, struct config_errors *errs);

/* Who asks, for the rules on jobs added over the socket. */
struct engine_peer {
	int uid;
	bool admin; /* root, the daemon's own uid, or the admin group */
};

/*
 * engine_job_add() - add @job (a job object as in a file's "jobs"; a
 * reference is taken) for @peer, kept in the store across restarts and
 * reloads. It is validated by the configuration's own code: problems go to
 * @errs with their key paths (RPC_E_CONFIG_INVALID), and a non-admin's job
 * must run as the peer and use only "shared" servers (RPC_E_PERMISSION_DENIED).
 * An existing added job of that id is an error (RPC_E_JOB_EXISTS) unless
 * @if_exists says "keep" (nothing changes), "update" (new definition, state
 * kept) or "replace" (new definition, started over). A non-admin may add
 * max_jobs_per_uid jobs (RPC_E_QUOTA). A file's job cannot be changed here.
 * *@out = {"job", "result": "added" | "kept" | "updated" | "replaced", "status"}.
 */
int engine_job_add(struct engine *e, const struct engine_peer *peer, json_t *job,
                   const char *if_exists, json_t **out, struct config_errors *errs,
                   char **cause);
/* Remove a job added over the socket (its owner or an admin). *@out = {"job", "result"}. */
int engine_job_remove(struct engine *e, const struct engine_peer *peer, const char *id,
                      json_t **out, char **cause);
/* The uid that added job @id over the socket, or -1 (a file's job, or none). */
int engine_job_owner(struct engine *e, const char *id);

json_t *engine_jobs_json(struct engine *e);
/* True when @id names a job of the running configuration. */
bool engine_has_job(struct engine *e, const char *id);
int engine_job_json(struct engine *e, const char *id, json_t **out, char **cause);
/* @fn(@arg, id, start of its last run or 0) for every job, in no order (no lookups). */
void engine_each_last_run(struct engine *e, void (*fn)(void *arg, const char *id, int64_t ms),
                          void *arg);
int engine_job_set_enabled(struct engine *e, const char *id, bool enabled, json_t **out,
                           char **cause);

/* Called when a run finishes, with its record (borrowed). */
typedef void (*engine_run_fn)(void *arg, const json_t *run);
/* The same with the record as JSON text (@len bytes, borrowed; NULL: dropped). */
typedef void (*engine_run_text_fn)(void *arg, const char *run, size_t len);

#define ENGINE_RUN_WHEN_ALLOWED 0x1 /* wait for constraints instead of bypassing them */

/*
 * engine_job_run() - run @id now (constraints bypassed unless
 * ENGINE_RUN_WHEN_ALLOWED). *@out = {"job", "run_id", "queued"}. With @fn,
 * it is called once when that run finishes (or with NULL if the request is
 * dropped, e.g. at shutdown). Returns the handle to forget the waiter.
 */
int engine_job_run(struct engine *e, const char *id, int flags, engine_run_fn fn, void *arg,
                   json_t **out, void **waiter, char **cause);
/*
 * engine_job_run_with() - engine_job_run() with this run's input, which is
 * recorded with it: {"arguments": {...}} merged over an mcp job's
 * arguments, or {"env": {"KEY": "value"}} added to an exec job's
 * environment (WorkManager's input data). Either, for the wrong kind of
 * job, is RPC_E_INVALID_PARAMS.
 */
int engine_job_run_with(struct engine *e, const char *id, int flags, const json_t *input,
                        engine_run_fn fn, void *arg, json_t **out, void **waiter, char **cause);
/*
 * engine_job_run_text() - engine_job_run_with() for a caller that waits for
 * the run and wants its record as text (job.run --wait on the socket): @fn
 * is called once, as engine_run_fn would be, and no *out is made.
 */
int engine_job_run_text(struct engine *e, const char *id, int flags, const json_t *input,
                        engine_run_text_fn fn, void *arg, void **waiter, char **cause);
/* Stop calling a waiter's fn (its connection went away). */
void engine_forget_waiter(struct engine *e, void *waiter);
int engine_job_cancel(struct engine *e, const char *id, json_t **out, char **cause);
int engine_job_history(struct engine *e, const char *id, long long limit, int64_t before_ms,
                       json_t **out, char **cause);

/*
 * The replies of jobs.list, job.status and job.history as JSON text
 * appended to @t (common/jsontext.h), the same as engine_jobs_json(),
 * engine_job_json() and engine_job_history() would encode to. On an error
 * nothing is appended.
 */
struct jsontext;
void engine_jobs_text(struct engine *e, struct jsontext *t);
int engine_job_text(struct engine *e, const char *id, struct jsontext *t, char **cause);
int engine_job_history_text(struct engine *e, const char *id, long long limit,
                            int64_t before_ms, struct jsontext *t, char **cause);

json_t *engine_device_json(struct engine *e);
int engine_device_set(struct engine *e, const json_t *params, json_t **out, char **cause);

/*
 * engine_run_due() - the mobile / --run-due path: run what is due and
 * allowed now, within @budget_ms; when the budget ends, stop what still
 * runs (recorded "cancelled": the OS's expiration). @done is called when
 * nothing runs any more.
 */
void engine_run_due(struct engine *e, int64_t budget_ms, void (*done)(void *), void *arg);

/* When the next job is due (ms since the epoch), 0 if none. */
int64_t engine_next_due(struct engine *e);
/*
 * engine_flush() - wait until every write queued to the store is committed
 * and its completion delivered (a run whose start record was committed has
 * started). For tests, and for an app about to be suspended.
 */
void engine_flush(struct engine *e);
/* Runs started since the engine opened. */
uint64_t engine_runs_started(struct engine *e);

#endif
