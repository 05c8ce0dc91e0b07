/*
 * engine_priv.h - the engine's private structures, shared by engine.c
 * (jobs, schedule, API) and engine_run.c (runs). Nothing outside the
 * engine includes this.
 */
#ifndef MCPJOB_ENGINE_PRIV_H
#define MCPJOB_ENGINE_PRIV_H

#include <event2/event.h>
#include <stdbool.h>

#include "daemon/action.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/events.h"
#include "daemon/heap.h"
#include "daemon/spawn.h"
#include "daemon/store.h"
#include "platform/platform.h"

#define ENGINE_REASON_MAX 200

/* A configuration shared by the engine and the runs that started under it. */
struct cfg_ref {
	struct config *cfg;
	int refs;
};

struct waiter {
	struct waiter *next;
	engine_run_fn fn;
	void *arg;
	bool dead;
};

struct run {
	struct engine *e;
	struct job *job;
	struct cfg_ref *cref;        /* keeps def alive across reloads */
	const struct job_def *def;
	struct run_record rec;
	const struct action_ops *ops;
	struct action_run *handle;
	struct spawn_identity id;
	bool have_id;
	struct event *timeout_ev;
	bool stopping;
	bool requeue;                /* stopped because constraints no longer hold */
	bool have_progress;
	unsigned watch_mask;         /* device values this run depends on */
	double progress, total;
	char *progress_msg;
	struct waiter *waiters;
	/* durable: started only once its "running" record is committed. */
	bool launched;
	enum run_outcome stop_why;   /* run_stop() before the launch */
	int64_t last_run_ms;         /* the job's last run before this one */
};

struct job {
	struct engine *e;
	char *id;
	const struct job_def *def;   /* from the current configuration */
	struct job_record rec;       /* mirror of the store's record */
	int64_t due_ms;              /* next wake-up (schedule or retry); 0 = none */
	enum run_trigger due_trigger;
	size_t due_idx, win_idx;     /* positions in the two heaps */
	/* Due but not started: waiting for constraints or a run slot. */
	bool pending;
	bool pending_bypass;         /* manual run: constraints do not apply */
	enum run_trigger pending_trigger;
	int64_t pending_since_ms;
	char pending_reason[ENGINE_REASON_MAX];
	struct job *pend_prev, *pend_next;
	unsigned watch_mask;         /* device values it waits on while pending */
	struct run *run;
	struct waiter *waiters;      /* for the next run (job.run --wait) */
	bool removed;                /* gone from the config; freed after its run */
	enum job_state last_state;   /* last state announced */
	char last_reason[ENGINE_REASON_MAX];
};

struct engine {
	struct event_base *base;
	char *config_path;
	char *state_dir;
	struct cfg_ref *cref;
	struct store *store;
	struct platform *platform;
	struct mcp_pool *mcp;
	struct events *events;
	struct job **jobs;           /* sorted by id for lookup */
	size_t njobs;
	struct heap due_heap, win_heap;
	struct job *pend_head, *pend_tail;
	int running;
	uint64_t runs_started;
	unsigned watch_counts[DEV_WATCH_COUNT]; /* jobs waiting on each value */
	unsigned watch_mask;
	int timerfd;
	int64_t armed_ms;            /* what the timerfd is armed for (INT64_MAX: far future) */
	struct event *timer_ev;
	bool started, stopping;
	bool run_due;                /* engine_run_due(): one pass, no timer */
	bool in_pass;                /* run_due mode: inside a pass, runs may start */
	char *stop_reason;
	void (*stop_done)(void *);
	void *stop_arg;
	struct event *budget_ev;
};

/* engine.c */
struct job *engine_find(struct engine *e, const char *id);
bool job_enabled(const struct job *j);
enum job_state job_state_of(const struct job *j);
void job_announce(struct job *j);
void job_schedule(struct job *j, int64_t due_ms, enum run_trigger trigger);
void job_unschedule(struct job *j);
void job_set_pending(struct job *j, enum run_trigger trigger, bool bypass);
void job_clear_pending(struct job *j);
void engine_arm_timer(struct engine *e);
void engine_try_pending(struct engine *e);
void job_free(struct job *j);
json_t *job_to_json(struct job *j);
int64_t job_next_regular(const struct job *j, int64_t now);
void engine_run_finished(struct engine *e);
/* Count @mask's device values as (no longer) waited on; tells the platform. */
void engine_watch(struct engine *e, unsigned mask, int delta);
unsigned constraints_watch_mask(const struct job_constraints *c);

/* engine_run.c */
/* Start a run of @j now (slot and constraints already checked). */
void run_start(struct job *j, enum run_trigger trigger);
void run_stop(struct run *r, enum run_outcome why, const char *reason);
void waiters_fire(struct waiter *w, const json_t *run);

void cfg_ref_put(struct cfg_ref *c);

#endif
