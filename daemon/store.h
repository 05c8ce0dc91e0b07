/*
 * store.h - persistent job state and run history in LMDB.
 *
 * One environment in the state directory (opened with MDB_NORDAHEAD), named
 * databases:
 *   "meta"   schema version, run-id counter
 *   "jobs"   job id -> job record (enabled override, last run, next due, ...)
 *   "runs"   (job id, '\0', be64 started_ms, be64 run_id) -> run record, so
 *            "last N runs of a job" is one cursor walk backwards
 *   "active" be64 run_id -> runs key, for runs still marked "running"
 *   "defs"   job id -> a job added over the socket (its JSON and owner)
 * A run's record and its job's new record are written in one transaction.
 * Retention (count and age per job) is enforced when a run finishes.
 * A schema newer than this build knows is refused with a clear error; a full
 * map grows (doubling) and the write is retried; it never crashes the daemon.
 * Values are JSON (jansson), so records can gain fields without a migration.
 */
#ifndef MCPJOB_STORE_H
#define MCPJOB_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/job.h"

#define STORE_SCHEMA_VERSION 1

struct store;

/* Per-job persistent state. Strings are owned (store_job_record_clear()). */
struct job_record {
	int enabled_override;     /* -1 none (use config), 0 disabled, 1 enabled */
	int64_t last_run_ms;      /* start of the last run, 0 = never */
	int64_t last_finished_ms;
	int64_t last_success_ms;  /* start of the last successful run */
	enum run_outcome last_outcome;
	char *last_message;
	int64_t next_due_ms;      /* 0 = not computed yet */
	int attempt;              /* failed attempts in the current retry series */
};

/* One run. Strings and json are owned (store_run_record_clear()). */
struct run_record {
	uint64_t run_id;          /* assigned by store_run_begin() */
	char *job_id;
	enum run_trigger trigger;
	char *trigger_ref;        /* TRIGGER_AFTER: "JOB:RUN" of the run that started it */
	json_t *input;            /* job.run's "arguments" or "env" for this run, may be NULL */
	int attempt;              /* 1 for a first attempt */
	int64_t started_ms;
	int64_t finished_ms;      /* 0 while running */
	enum run_outcome outcome; /* OUTCOME_RUNNING until finished */
	char *message;            /* one line for people, may be NULL */
	char *output;             /* captured output (capped), may be NULL */
	json_t *structured;       /* MCP structuredContent (capped), may be NULL */
};

/*
 * store_open() - open or create the environment in @dir (created 0700 if
 * missing). Returns 0, or -1 with *@cause naming the directory and what to do.
 * One store per directory at a time: a second open (in any process) fails
 * with "in use by another mcpjobd" (flock on @dir/store.lock).
 * Tests only: $MCPJOB_STORE_MAPSIZE (bytes, >= 4096) replaces the initial
 * 64 MiB map size, to exercise growing a full map.
 */
int store_open(const char *dir, struct store **out, char **cause);
void store_close(struct store *st);

void store_job_record_init(struct job_record *rec);
void store_job_record_clear(struct job_record *rec);
void store_run_record_clear(struct run_record *run);

/*
 * What the store reads back from disk, decoded as the store does (for the
 * fuzz target: a damaged file must never crash us). A run's key is the job
 * id, a NUL, the start time and the run id (8 bytes big-endian each), its
 * value JSON; a job record's value is JSON. store_run_record_decode()
 * returns -1 (and @run empty) for a key of another shape. Clear @run/@rec.
 */
int store_run_record_decode(const void *key, size_t klen, const void *val, size_t vlen,
                            struct run_record *run);
void store_job_record_decode(const void *val, size_t vlen, struct job_record *rec);

/* 0 and *@rec filled, 1 when the job has no record (rec initialised), -1 error. */
int store_load_job(struct store *st, const char *job_id, struct job_record *rec, char **cause);
int store_save_job(struct store *st, const char *job_id, const struct job_record *rec,
                   char **cause);

/*
 * store_run_begin() - record a run as "running" (assigning run->run_id) and
 * save its job's record, in one transaction.
 */
int store_run_begin(struct store *st, struct run_record *run, const struct job_record *rec,
                    char **cause);

/*
 * store_run_finish() - overwrite the run's record with its outcome, save the
 * job's record and prune the job's history to @max_runs runs and @max_age_ms
 * (relative to @now_ms; 0 = no limit), in one transaction. Runs still
 * running are neither counted nor deleted; @run itself is never pruned.
 */
int store_run_finish(struct store *st, const struct run_record *run,
                     const struct job_record *rec, int max_runs, int64_t max_age_ms,
                     int64_t now_ms, char **cause);

/*
 * Called per record; return non-zero to stop the walk. @run is borrowed.
 * It must not write to the store (a read transaction may be open).
 */
typedef int (*store_run_fn)(const struct run_record *run, void *arg);

/*
 * store_history() - a job's runs, newest first, started before @before_ms
 * (0 = no bound), at most @limit (0 = all).
 */
int store_history(struct store *st, const char *job_id, int64_t before_ms, size_t limit,
                  store_run_fn fn, void *arg, char **cause);

/*
 * store_recover_interrupted() - at start-up: every run still "running" (the
 * daemon died while it ran) becomes "interrupted", finished at @now_ms, and
 * its job's record says so; @fn (may be NULL) sees each rewritten run.
 * Returns the number of runs rewritten, or -1.
 */
int store_recover_interrupted(struct store *st, int64_t now_ms, store_run_fn fn, void *arg,
                              char **cause);

/*
 * Jobs added over the control socket (job.add) live in the "defs" database:
 * job id -> the JSON text the engine keeps for it ({"job": ..., "uid": ...}).
 * store_put_def() with @text NULL removes it.
 */
int store_put_def(struct store *st, const char *job_id, const char *text, char **cause);
/* Called with each (id, text), borrowed; return non-zero to stop. */
typedef int (*store_def_fn)(const char *job_id, const char *text, void *arg);
int store_each_def(struct store *st, store_def_fn fn, void *arg, char **cause);

/* The record as the protocol sends it (run_id, job, trigger, started_at, ...). */
json_t *store_run_to_json(const struct run_record *run);

#endif
