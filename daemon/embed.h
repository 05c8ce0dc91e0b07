/*
 * mcpjob.h - the mcpjob engine inside an app (installed as <mcpjob.h>;
 * the source is daemon/embed.h). Link with -lmcpjob (pkg-config mcpjob).
 *
 * On Android (WorkManager) and iOS (BGTaskScheduler) there is no
 * long-running process: the OS wakes the app with a time budget. The app
 * opens an engine on its configuration and a state directory, runs what is
 * due within the budget, and asks when to be woken next. The OS's
 * expiration handler (iOS) or onStopped() (WorkManager) calls
 * mcpjob_engine_expire(): what still runs is stopped and recorded
 * "cancelled" with the reason, and the next mcpjob_engine_run_due() runs a
 * job that was cut off once (catch-up), not once per missed period. The
 * app's job screen uses the same engine: list, status, history, enable,
 * disable, run now, cancel - the JSON is what mcpjobd's control socket
 * returns (mcpjobd-protocol(7)). History and job state are the LMDB store
 * mcpjobd uses.
 *
 * The device state starts as "everything allowed" (the OS applied its own
 * constraints before waking us); the host reports what it knows with
 * mcpjob_engine_set_device().
 *
 * Handles. An engine is a mcpjob_t, never a pointer. 0 is never valid; a
 * closed handle stays invalid (generation numbers), so a stale or zero
 * handle is MCPJOB_E_HANDLE, never a crash.
 *
 * Errors. Every call returns MCPJOB_OK (0) or a negative MCPJOB_E_* code
 * (mcpjob_engine_run_due() returns a count when it succeeds). Where a call
 * takes char **error, a failure stores a sentence there (free it with
 * mcpjob_free()) unless error is NULL. For MCPJOB_E_CONFIG, the text holds
 * one configuration error per line, each with its key path, as
 * `mcpjobd --check-config` prints them
 * ("config: jobs[0] (sync): \"interval\": \"15x\" is not a duration ...").
 * Strings returned through char **json are JSON texts; free with mcpjob_free().
 *
 * Builds. WITH_SYSTEMD=0 needs no libsystemd. MCPJOB_NO_SPAWN=1 (iOS) starts
 * no process: exec actions and stdio MCP servers are configuration errors
 * ("this build cannot start processes: use an http MCP server ..."), cleanup
 * runs on a thread.
 *
 * Threads.
 *  - Any thread may use a handle, one thread at a time: a call made while
 *    another thread is inside the same engine (typically in
 *    mcpjob_engine_run_due()) fails at once with MCPJOB_E_BUSY; it never
 *    blocks and never races. Different engines are independent.
 *  - mcpjob_engine_expire() is the exception: call it from any thread at any
 *    time (the expiration handler's queue, onStopped()), also while
 *    run_due blocks on another thread. It only wakes the engine's loop. Not
 *    from a signal handler.
 *  - Callbacks run on the thread that is inside the engine (run_due, job
 *    run, set_device, ...), before that call returns. From a callback you
 *    may call the reading functions and mcpjob_engine_expire(); run_due and
 *    close return MCPJOB_E_BUSY there.
 *  - SIGPIPE is not ignored process-wide: it is blocked on the calling
 *    thread during a call (a dead pipe is then EPIPE, not a signal). A build
 *    that starts processes watches SIGCHLD while an engine is open; the
 *    MCPJOB_NO_SPAWN=1 build touches no signal at all.
 *  - mcpjob_engine_close() while another thread is in run_due is
 *    MCPJOB_E_BUSY: expire, let run_due return, then close.
 */
#ifndef MCPJOB_H
#define MCPJOB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MCPJOB_API __attribute__((visibility("default")))
#else
#define MCPJOB_API
#endif

/* The ABI: bump the soname (libmcpjob.so.N) and this when it breaks. */
#define MCPJOB_ABI_VERSION 0

typedef uint64_t mcpjob_t;

enum mcpjob_rc {
	MCPJOB_OK = 0,
	MCPJOB_E_HANDLE = -1,          /* zero, closed or unknown handle */
	MCPJOB_E_ARG = -2,             /* a required argument is NULL or invalid */
	MCPJOB_E_CONFIG = -3,          /* the configuration is invalid (one error per line) */
	MCPJOB_E_NO_SUCH_JOB = -4,
	MCPJOB_E_ALREADY_RUNNING = -5, /* a job never overlaps itself */
	MCPJOB_E_NOT_RUNNING = -6,     /* cancel of a job that does not run */
	MCPJOB_E_BUSY = -7,            /* another thread is inside this engine */
	MCPJOB_E_FAILED = -8,          /* anything else; the error says what */
};

/* Log levels are syslog's: 3 error, 4 warning, 5 notice, 6 info, 7 debug. */
enum mcpjob_log_level {
	MCPJOB_LOG_ERROR = 3,
	MCPJOB_LOG_WARNING = 4,
	MCPJOB_LOG_NOTICE = 5,
	MCPJOB_LOG_INFO = 6,
	MCPJOB_LOG_DEBUG = 7,
};

/*
 * An event: @type is "run.started", "run.progress", "run.finished",
 * "job.state" or "device.changed"; @job the job id (NULL for device
 * events); @json the event's params as the socket sends them
 * ({"type", "time", "job", ...}). All borrowed for the call.
 */
typedef void (*mcpjob_event_fn)(void *user, const char *type, const char *job,
                                const char *json);
/* A log line: @job is the job it is about, or NULL. Borrowed for the call. */
typedef void (*mcpjob_log_fn)(void *user, int level, const char *job, const char *message);

/* "0.1.0" */
MCPJOB_API const char *mcpjob_version(void);
/* A short name for @rc ("MCPJOB_E_BUSY"). */
MCPJOB_API const char *mcpjob_rc_name(int rc);
/* Free a string the library returned. NULL is fine. */
MCPJOB_API void mcpjob_free(void *p);

/*
 * mcpjob_engine_open() - load the configuration file @config_path (and the
 * jobs.d/ folder beside it), open or create @state_dir (one level; the app's
 * private directory). *@out is the new handle.
 */
MCPJOB_API int mcpjob_engine_open(const char *config_path, const char *state_dir,
                                  mcpjob_t *out, char **error);
/*
 * mcpjob_engine_open_json() - the same from a configuration held in memory
 * (the JSON of mcpjobd.json(5)); errors name it "config".
 */
MCPJOB_API int mcpjob_engine_open_json(const char *config_json, const char *state_dir,
                                       mcpjob_t *out, char **error);
/* Stop what runs (recorded "cancelled"), close the store, invalidate @h. */
MCPJOB_API int mcpjob_engine_close(mcpjob_t h);

/*
 * Callbacks (NULL to remove). Log lines logged while the engine opened are
 * kept (the first few) and delivered when the log callback is set; without
 * one, messages go to stderr. @max_level: deliver levels up to this one.
 */
MCPJOB_API int mcpjob_engine_set_event_callback(mcpjob_t h, mcpjob_event_fn fn, void *user);
MCPJOB_API int mcpjob_engine_set_log_callback(mcpjob_t h, mcpjob_log_fn fn, void *user,
                                              int max_level);

/*
 * mcpjob_engine_run_due() - run what is due and allowed now, and runs asked
 * for with mcpjob_job_run(); return when nothing runs any more, or when
 * @budget_ms ran out or mcpjob_engine_expire() was called (what still ran
 * is then stopped and recorded "cancelled" with the reason; the next
 * run_due - in this process or a later one - runs each job that was cut
 * off once more, as "run now" does, recorded with trigger "manual").
 * Returns the
 * number of runs that started in this call (>= 0; a run mcpjob_job_run()
 * started is counted there, not here), or an MCPJOB_E_* code.
 */
MCPJOB_API int mcpjob_engine_run_due(mcpjob_t h, int64_t budget_ms, char **error);
/* Any thread: end the current (or the next) mcpjob_engine_run_due() now. */
MCPJOB_API int mcpjob_engine_expire(mcpjob_t h);
/* *@due_ms = when the next job is due (ms since the epoch), 0 if none. */
MCPJOB_API int mcpjob_engine_next_due(mcpjob_t h, int64_t *due_ms, char **error);
/*
 * Report device state: @key network (none|metered|unmetered), charging,
 * battery_low, idle, storage_low (true|false).
 */
MCPJOB_API int mcpjob_engine_set_device(mcpjob_t h, const char *key, const char *value,
                                        char **error);
/* *@json = the device state ({"platform": "sim", "state": {"network", ...}}). */
MCPJOB_API int mcpjob_engine_device(mcpjob_t h, char **json, char **error);

/* The job screen. *@json as jobs.list, job.status, job.history return it. */
MCPJOB_API int mcpjob_jobs_list(mcpjob_t h, char **json, char **error);
MCPJOB_API int mcpjob_job_status(mcpjob_t h, const char *job, char **json, char **error);
/* Newest first, at most @limit (1..1000) runs that started before @before_ms (0: now). */
MCPJOB_API int mcpjob_job_history(mcpjob_t h, const char *job, int limit, int64_t before_ms,
                                  char **json, char **error);
/* Persist across restarts and configuration changes. @json may be NULL. */
MCPJOB_API int mcpjob_job_enable(mcpjob_t h, const char *job, char **json, char **error);
MCPJOB_API int mcpjob_job_disable(mcpjob_t h, const char *job, char **json, char **error);

#define MCPJOB_RUN_WHEN_ALLOWED 0x1 /* wait for the job's constraints ("Run now" bypasses them) */

/*
 * mcpjob_job_run() - run @job now. *@json = {"job", "run_id", "queued"}.
 * The run goes on while the host is in mcpjob_engine_run_due(), which waits
 * for it within its budget. Nothing starts outside the OS's budget: once
 * the engine has had a pass, a run asked for between passes is queued
 * ("queued": true) and starts at the next run_due.
 */
MCPJOB_API int mcpjob_job_run(mcpjob_t h, const char *job, int flags, char **json,
                              char **error);
/* Stop @job's run (recorded "cancelled by request"), or drop a queued one. */
MCPJOB_API int mcpjob_job_cancel(mcpjob_t h, const char *job, char **json, char **error);

#ifdef __cplusplus
}
#endif

#endif
