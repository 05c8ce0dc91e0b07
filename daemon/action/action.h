/*
 * action.h - the seam between the engine and what a job does.
 *
 * Each action kind (exec, cleanup, mcp) is an ops table. The engine starts a
 * run with ops->start(), may ask it to stop with ops->stop() (job.cancel, a
 * timeout, constraints no longer holding, shutdown), and learns the outcome
 * through exactly one call of the done callback. done is never called from
 * inside start(); it may be called from inside stop(). After done, the
 * handle is gone.
 */
#ifndef MCPJOB_ACTION_H
#define MCPJOB_ACTION_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/job.h"

struct config;
struct mcp_pool;
struct spawn_identity;

/* Caps on what a run keeps. */
#define ACTION_OUTPUT_MAX     (64 * 1024) /* exec output kept (the tail) */
#define ACTION_STRUCTURED_MAX (16 * 1024) /* MCP structuredContent kept */
#define ACTION_MESSAGE_MAX    200         /* a run's message, in bytes */
#define ACTION_KILL_GRACE_MS  5000        /* SIGTERM -> SIGKILL */
/* Every MCP request has a timeout: an mcp job without "timeout" gets this. */
#define ACTION_MCP_DEFAULT_TIMEOUT_MS (10 * 60 * 1000)

struct action_result {
	enum run_outcome outcome; /* SUCCESS, FAILURE, RETRY, TIMEOUT, CANCELLED (INTERRUPTED:
	                             a resumed MCP task that is gone) */
	char *message;            /* owned, one line, may be NULL */
	char *output;             /* owned, may be NULL */
	json_t *structured;       /* owned, may be NULL */
	char *structured_text;    /* owned, may be NULL: structured encoded compact */
	bool needs_login;         /* mcp: the server wants a person's login (MCP_AUTH_REQUIRED) */
};

/*
 * An mcp run called as an MCP task tells its run the task once the server
 * made it (to keep with the run's record): @task_id, the server's name and
 * the transport session it lives in (may be NULL). With the progress and
 * done callbacks' @arg.
 */
typedef void (*action_task_fn)(void *arg, const char *task_id, const char *server,
                               const char *session);

/* What a run knows about itself; valid until done is called. */
struct action_env {
	struct event_base *base;
	const struct job_def *job;
	const struct config *cfg;
	const struct spawn_identity *id; /* who the run's children run as */
	struct mcp_pool *mcp;            /* for mcp actions */
	uint64_t run_id;
	int attempt;
	int64_t now_ms;                  /* run start */
	int64_t last_success_ms;         /* 0 = never */
	int64_t last_run_ms;             /* 0 = never (before this run) */
	int kill_grace_ms;               /* exec: SIGTERM -> SIGKILL; 0 = ACTION_KILL_GRACE_MS */
	const json_t *input;             /* job.run's {"arguments"} (mcp) or {"env"} (exec), or NULL */
	const char *store_id;            /* marks the run's processes (orphan_env()), or NULL */
	action_task_fn on_task;          /* mcp: may be NULL */
	/* mcp: resume this task (server, session as on_task() told them) of a
	 * run started before a restart, instead of calling the tool; its outcome
	 * is the task's, or INTERRUPTED when the server no longer knows it or
	 * cannot be reached. */
	const char *resume_task, *resume_server, *resume_session;
	int64_t resumed_ms;              /* when it is resumed (the timeout counts from now_ms) */
};

typedef void (*action_progress_fn)(void *arg, double progress, double total,
                                   const char *message);
/* Takes ownership of the contents of @res. */
typedef void (*action_done_fn)(void *arg, struct action_result *res);

struct action_run; /* private to each action */

struct action_ops {
	const char *name;
	/* NULL with *cause set when the run cannot start (it then fails with cause). */
	struct action_run *(*start)(const struct action_env *env, action_progress_fn progress,
	                            action_done_fn done, void *arg, char **cause);
	/* Stop: done follows with outcome @why (CANCELLED or TIMEOUT), message @reason. */
	void (*stop)(struct action_run *run, enum run_outcome why, const char *reason);
	/* The run's own process group (0: none, or not its own), may be NULL. */
	pid_t (*pgid)(const struct action_run *run);
	/*
	 * May be NULL. Let go without stopping the work, which goes on without
	 * us (an MCP task on a Streamable HTTP server, resumed at the next
	 * start): done follows (CANCELLED, @reason), as from stop(). False,
	 * and nothing happens, when the work cannot outlive the daemon.
	 */
	bool (*leave)(struct action_run *run, const char *reason);
};

extern const struct action_ops action_exec_ops;
extern const struct action_ops action_cleanup_ops;
/*
 * action_cleanup_check_path() - for --check-config: -1 with *@cause when
 * @path passes through a symlink or through a directory someone other than
 * root and @user (NULL: ourselves) may change. A path that does not exist
 * (yet) passes; the run checks again.
 */
int action_cleanup_check_path(const char *path, const char *user, char **cause);
extern const struct action_ops action_mcp_ops;

/* The ops for @kind, or NULL when this build has none. */
const struct action_ops *action_ops_for(enum action_kind kind);

void action_result_clear(struct action_result *res);
/*
 * action_stop_once() - the bookkeeping every stop() starts with: the first
 * call sets *@stopping and keeps @why and a copy of @reason; later calls
 * return false (stop is idempotent) and change nothing.
 */
bool action_stop_once(bool *stopping, enum run_outcome *why_out, char **reason_out,
                      enum run_outcome why, const char *reason);
/* Last non-empty line of @text, trimmed to ACTION_MESSAGE_MAX; caller frees. */
char *action_last_line(const char *text, size_t len);

#endif
