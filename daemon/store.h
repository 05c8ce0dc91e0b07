/*
 * store.h - persistent job state and run history in LMDB.
 *
 * One environment in the state directory (opened with MDB_NORDAHEAD), named
 * databases:
 *   "meta"   schema version, run-id counter, store id (random, hex)
 *   "jobs"   job id -> job record (JSON: enabled override, last run, ...)
 *   "runs"   (job id, '\0', be64 started_ms, be64 run_id) -> run record
 *            (binary, see store.c), so "last N runs of a job" is one cursor
 *            walk backwards and the oldest run is the first key of the range
 *   "active" be64 run_id -> runs key, for runs still marked "running"
 *   "counts" job id -> be64 number of finished runs kept, so retention
 *            deletes from the oldest end in O(1) per run
 *   "defs"   job id -> a job added over the socket (its JSON and owner)
 * A run's record and its job's new record are written in one transaction.
 *
 * Durability (the guarantees are in mcpjobd(8), "DURABILITY"):
 *  - every write goes to one writer thread, which owns every write
 *    transaction; what is queued when it wakes shares one commit (group
 *    commit). The loop thread never waits for a commit: it queues. One
 *    exception, in batched mode: a write while the writer holds nothing
 *    older is journaled by the loop itself (a few stores into the mapped
 *    journal), which then times the fold (a timer wakes the writer).
 *  - a run's "running" record is committed before the run starts
 *    (store_run_begin_async() calls back then); a commit has reached the
 *    kernel (written with pwrite), so a kill -9 of the daemon after it
 *    loses nothing.
 *  - DURABILITY_STRICT: each commit goes to the store (opened with
 *    MDB_NOMETASYNC) and is fully synced before it is reported (so before
 *    the run starts): power loss loses nothing reported.
 *  - DURABILITY_BATCHED (default): a commit goes to the journal,
 *    STATE/journal-BOOTID.mdb, an LMDB environment opened MDB_NOSYNC (no
 *    device sync: a commit costs a few system calls); the writer folds the
 *    journal into the store in one synced commit at most
 *    STORE_SYNC_INTERVAL_MS after its first entry (sooner when it is big,
 *    and at every store_flush() and stop). The store only ever takes synced
 *    commits, so power loss never corrupts it; a journal left by another
 *    boot may be torn and is deleted unread, so power loss (or a system
 *    crash) loses at most the records of the last interval. A journal of
 *    this boot (the daemon was killed) is folded in at the next open. What
 *    is journaled stays on the pending list (shown) until it is folded.
 *    Without a boot id (/proc/sys/kernel/random/boot_id) there is no
 *    journal: each commit goes to the store and syncs its data pages, and
 *    its meta page at most STORE_SYNC_INTERVAL_MS later.
 *  - a run's process identity (store_run_set_process()) is queued
 *    PROC_DEFER_MS after it is known, and not at all when the run's end
 *    (which carries it) comes first; a kill -9 in between leaves the run's
 *    processes to be found by the marker in their environment.
 *  - a commit that fails (full disk, or the map at store.max_size after
 *    pruning) fails the starts in it (the caller keeps the job waiting) and
 *    keeps every other write queued, retried every STORE_RETRY_MS and shown
 *    by store_history() meanwhile: a finished run is never lost or shown as
 *    still running while the daemon lives.
 * Threads: the loop thread owns struct store's fields but the queue, the
 * pending list and its read transactions; the writer thread owns the write
 * transaction, the retry list and the map size; the queue (sub/done lists,
 * flags) is under st->mu; the map size change takes st->maplock exclusively,
 * read transactions take it shared.
 *
 * A schema older than this build (1: JSON run records) is migrated at open in
 * one transaction; a newer one is refused with a clear error.
 */
#ifndef MCPJOB_STORE_H
#define MCPJOB_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/job.h"

#define STORE_SCHEMA_VERSION   2
#define STORE_SYNC_INTERVAL_MS 1000 /* batched: the meta page's sync, at most this late */
#define STORE_RETRY_MS         1000 /* a failed commit is tried again this often */

enum store_durability {
	DURABILITY_BATCHED = 0, /* default */
	DURABILITY_STRICT,
};
const char *store_durability_name(enum store_durability d);
int store_durability_from_name(const char *s);

struct store;

/* Per-job persistent state. Strings are owned (store_job_record_clear()). */
struct job_record {
	int enabled_override;     /* -1 none (use config), 0 disabled, 1 enabled */
	int attempt;              /* failed attempts in the current retry series */
	int64_t last_run_ms;      /* start of the last run, 0 = never */
	int64_t last_finished_ms;
	int64_t last_success_ms;  /* start of the last successful run */
	enum run_outcome last_outcome;
	char *last_message;
	int64_t next_due_ms;      /* 0 = not computed yet */
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
	char *structured_text;    /* NULL, or structured encoded compact: kept so that it
	                             is encoded once (NULL: encode it when needed) */
	struct {                  /* the run's process group leader, while known */
		int32_t pid;          /* 0: none */
		uint64_t start;       /* start time, /proc/PID/stat field 22 */
	} proc;
	/* An mcp run called as an MCP task: what a restarted daemon needs to
	 * follow it to its end (store_recover_runs()). All NULL otherwise. */
	char *task_id;            /* the server's task id */
	char *task_server;        /* the mcpServers name it was created on */
	char *task_session;       /* the transport session it lives in (mcp_call_session()) */
};

/*
 * store_open() - open or create the environment in @dir (created 0700 if
 * missing), migrate an older schema, start the writer thread. Returns 0, or
 * -1 with *@cause naming the directory and what to do. A store whose disk is
 * full still opens (for reading) when its schema is current.
 * One store per directory at a time: a second open (in any process) fails
 * with "in use by another mcpjobd" (flock on @dir/store.lock).
 * Tests only: $MCPJOB_STORE_MAPSIZE (bytes, >= 4096) replaces the initial
 * 64 MiB map size, to exercise growing a full map; $MCPJOB_STORE_BOOT_ID
 * replaces the boot id (another boot's journal), $MCPJOB_STORE_FOLD_MS the
 * journal's fold interval.
 */
int store_open(const char *dir, struct store **out, char **cause);
/* Waits for queued writes (failed ones get one more try), stops the writer. */
void store_close(struct store *st);

/*
 * store_attach() - deliver completions (store_done_fn) from @base's loop:
 * from then on store_save_job() and store_run_finish() only queue, and
 * store_run_begin_async() calls back from the loop. Without it (tools,
 * tests) they wait for their commit, and completions of the async calls are
 * delivered by store_poll()/store_flush().
 */
struct event_base;
void store_attach(struct store *st, struct event_base *base);
/* Durability mode and map bound (0: none); may be called again on reload. */
void store_configure(struct store *st, enum store_durability d, uint64_t max_size);
/* Called (loop thread) with a sentence when history was pruned to fit max_size. */
typedef void (*store_notice_fn)(void *arg, const char *what, uint64_t runs_deleted);
void store_set_notice(struct store *st, store_notice_fn fn, void *arg);
/* Deliver what completed (loop thread); store_flush() first waits for all. */
void store_poll(struct store *st);
void store_flush(struct store *st);
/* The random id of this state directory (hex), for orphan markers. */
const char *store_id(const struct store *st);
/* The error of the last failed commit, NULL when the last one succeeded. */
char *store_last_error(struct store *st);

struct store_stats {
	uint64_t commits, ops;      /* commits made, writes they carried */
	uint64_t folds;             /* batched: journal folds into the store */
	uint64_t prune_steps;       /* cursor steps spent on retention */
	uint64_t pruned_for_size;   /* runs deleted to stay under max_size */
	uint64_t pending;           /* writes queued or kept after a failure */
};
void store_get_stats(struct store *st, struct store_stats *out);
/* Tests only: while held, the writer commits nothing (queued writes pile up). */
void store_test_hold(struct store *st, bool hold);

void store_job_record_init(struct job_record *rec);
void store_job_record_clear(struct job_record *rec);
void store_run_record_clear(struct run_record *run);

/*
 * Loading many jobs: between store_load_begin() and store_load_end() every
 * store_load_job() reads from one read transaction.
 */
void store_load_begin(struct store *st);
void store_load_end(struct store *st);
/* 0 and *@rec filled, 1 when the job has no record (rec initialised), -1 error. */
int store_load_job(struct store *st, const char *job_id, struct job_record *rec, char **cause);
int store_save_job(struct store *st, const char *job_id, const struct job_record *rec,
                   char **cause);

/* @ok 0: the write failed with @cause (borrowed). Called on the loop thread. */
typedef void (*store_done_fn)(void *arg, int ok, const char *cause);

/*
 * store_run_begin_async() - record a run as "running" and save its job's
 * record in one commit; run->run_id is assigned at once (unique, not
 * necessarily consecutive), @done follows when the commit is made or has
 * failed. The run must not start before @done says ok.
 * store_run_begin() is the same, waiting for the commit.
 */
int store_run_begin_async(struct store *st, struct run_record *run,
                          const struct job_record *rec, store_done_fn done, void *arg,
                          char **cause);
int store_run_begin(struct store *st, struct run_record *run, const struct job_record *rec,
                    char **cause);

/* The start time of process @pid into *@start; 0, or -1 when it is gone. */
typedef int (*store_start_fn)(pid_t pid, uint64_t *start);

/*
 * store_run_set_process() - note in the run's "running" record who its
 * process group leader is (run->proc); queued. With @start_of (may be
 * NULL), run->proc.start is read by it when the identity is queued, so a
 * run that ends within PROC_DEFER_MS never reads it.
 */
void store_run_set_process(struct store *st, const struct run_record *run,
                           store_start_fn start_of);

/*
 * store_run_set_task() - keep the run's task (run->task_*) in its "running"
 * record; queued. @done (may be NULL) follows once it is committed (or the
 * write failed): only then does a kill -9 leave a run that is resumed.
 */
void store_run_set_task(struct store *st, const struct run_record *run, store_done_fn done,
                        void *arg);

/*
 * store_run_finish() - overwrite the run's record with its outcome, save the
 * job's record and prune the job's history to @max_runs runs and @max_age_ms
 * (relative to @now_ms; 0 = no limit), in one transaction. Runs still
 * running are neither counted nor deleted; @run itself is never pruned.
 * Retention deletes from the oldest end of the job's runs: O(runs deleted).
 * Attached, it queues (and keeps the write until it succeeds).
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
 * (0 = no bound), at most @limit (0 = all). Writes still queued are shown
 * as they will be stored.
 */
int store_history(struct store *st, const char *job_id, int64_t before_ms, size_t limit,
                  store_run_fn fn, void *arg, char **cause);

/*
 * store_recover_interrupted() - at start-up: every run still "running" (the
 * daemon died while it ran) has its processes stopped (orphan.h: by the
 * identity in its record and by the marker; SIGTERM, SIGKILL after
 * the grace), then becomes "interrupted", finished at @now_ms, and its job's
 * record says so; processes of MCP servers the dead daemon started are
 * stopped too. @fn (may be NULL) sees each rewritten run. The rewrite is
 * queued (kept until the disk has room); store_load_job() shows it at once.
 * Returns the number of runs rewritten, or -1.
 */
int store_recover_interrupted(struct store *st, int64_t now_ms, store_run_fn fn, void *arg,
                              char **cause);
/*
 * store_recover_runs() - store_recover_interrupted(), except that a run for
 * which @keep (may be NULL) returns non-zero stays "running", untouched
 * (the caller resumes it and finishes its record); its processes are not
 * stopped. @keep sees every run left running, before anything is stopped.
 */
int store_recover_runs(struct store *st, int64_t now_ms, store_run_fn keep, void *keep_arg,
                       store_run_fn fn, void *arg, char **cause);
/* A deep copy of @src into @dst (clear it with store_run_record_clear()). */
void store_run_record_copy(struct run_record *dst, const struct run_record *src);
/* Tests only: the SIGTERM -> SIGKILL grace of recovery (default ACTION_KILL_GRACE_MS). */
void store_set_orphan_grace_ms(struct store *st, int ms);
#define STORE_INTERRUPTED_MSG "mcpjobd stopped while this run was in progress"
#define STORE_ORPHANS_STOPPED_MSG \
	"mcpjobd died while this ran; its processes were stopped at restart"

/*
 * Jobs added over the control socket (job.add) live in the "defs" database:
 * job id -> the JSON text the engine keeps for it ({"job": ..., "uid": ...}).
 * store_put_def() with @text NULL removes it; it waits for its commit.
 */
int store_put_def(struct store *st, const char *job_id, const char *text, char **cause);
/* Called with each (id, text), borrowed; return non-zero to stop. */
typedef int (*store_def_fn)(const char *job_id, const char *text, void *arg);
int store_each_def(struct store *st, store_def_fn fn, void *arg, char **cause);

/*
 * What the store reads back from disk, decoded as the store does (for the
 * fuzz target: a damaged file must never crash us). A run's key is the job
 * id, a NUL, the start time and the run id (8 bytes big-endian each).
 * store_run_record_decode() returns -1 (and @run empty) for a key of
 * another shape. Clear @run/@rec.
 */
int store_run_record_decode(const void *key, size_t klen, const void *val, size_t vlen,
                            struct run_record *run);
void store_job_record_decode(const void *val, size_t vlen, struct job_record *rec);

/* The record as the protocol sends it (run_id, job, trigger, started_at, ...). */
json_t *store_run_to_json(const struct run_record *run);
/* The same as JSON text appended to @t (common/jsontext.h). */
struct jsontext;
void store_run_text(const struct run_record *run, struct jsontext *t);

#endif
