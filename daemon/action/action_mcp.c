/*
 * action_mcp.c - the mcp action: a job's tool call on a pooled MCP server.
 *
 * Arguments are expanded (${last_success} etc.) at start, the call is made
 * with the job's timeout as its hard limit, progress is passed through, and
 * the MCP status becomes the run's outcome: a transport failure is worth a
 * retry (the server may be back next time), a tool or protocol error is not.
 *
 * A tool called as an MCP task tells the run its task (env->on_task), which
 * keeps it with the run's record; after a restart the run is resumed
 * (env->resume_task): the task is followed to its end, and a server that no
 * longer knows it, or cannot be reached, makes the run "interrupted" with a
 * message that says so.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "daemon/action/action.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_proto.h"

struct action_run {
	struct mcp_call *call;
	action_progress_fn progress;
	action_done_fn done;
	void *arg;
	bool stopping;
	enum run_outcome why;
	char *reason;
	action_task_fn on_task;
	char *server;        /* for on_task() and the messages of a resumed run */
	char *resumed;       /* the task followed after a restart, or NULL */
	bool http;           /* on a Streamable HTTP server: its task may outlive us */
	bool has_task;       /* it runs as a task (told, or resumed) */
};

/* Is @server a Streamable HTTP server of @cfg (where a task outlives the daemon)? */
static bool server_is_http(const struct config *cfg, const char *server) {
	const struct mcp_server_def *d = cfg && server ? config_find_server(cfg, server) : NULL;
	return d != NULL && d->type == MCP_SERVER_HTTP;
}

static enum run_outcome outcome_of(enum mcp_status st) {
	switch (st) {
	case MCP_OK: return OUTCOME_SUCCESS;
	case MCP_TOOL_ERROR:
	case MCP_PROTOCOL_ERROR: return OUTCOME_FAILURE;
	case MCP_TRANSPORT_ERROR: return OUTCOME_RETRY;
	case MCP_TIMEOUT: return OUTCOME_TIMEOUT;
	case MCP_CANCELLED: return OUTCOME_CANCELLED;
	case MCP_AUTH_REQUIRED: return OUTCOME_FAILURE;
	}
	return OUTCOME_FAILURE;
}

static void mcp_on_progress(void *arg, double progress, double total, const char *message) {
	struct action_run *run = arg;
	if (run->progress && !run->stopping)
		run->progress(run->arg, progress, total, message);
}

static void mcp_on_task(void *arg, const char *task_id) {
	struct action_run *run = arg;
	run->has_task = true;
	if (run->on_task == NULL || run->stopping)
		return;
	char *session = mcp_call_session(run->call);
	run->on_task(run->arg, task_id, run->server, session);
	free(session);
}

/* A resumed task that cannot be followed: interrupted, saying why. */
static bool resumed_gone(struct action_run *run, struct mcp_call_result *mres,
                         struct action_result *res) {
	const char *what;
	if (mres->task_lost)
		what = "server %s no longer knows task %s";
	else if (mres->status == MCP_TRANSPORT_ERROR)
		what = "server %s could not be reached to follow task %s";
	else
		return false;
	char *head = xasprintf(what, run->server, run->resumed);
	char *msg = xasprintf("resumed after mcpjobd restarted, but %s: %s", head,
	                      mres->message ? mres->message : "no reason given");
	res->outcome = OUTCOME_INTERRUPTED;
	res->message = mcp_proto_one_line(msg, ACTION_MESSAGE_MAX);
	res->output = msg;
	free(head);
	return true;
}

static void mcp_on_done(void *arg, struct mcp_call_result *mres) {
	struct action_run *run = arg;
	struct action_result res = {0};
	if (run->stopping) {
		res.outcome = run->why;
		res.message = run->reason ? mcp_proto_one_line(run->reason, ACTION_MESSAGE_MAX) : NULL;
	} else if (run->resumed && resumed_gone(run, mres, &res)) {
		/* said in res */
	} else {
		res.outcome = outcome_of(mres->status);
		res.needs_login = mres->status == MCP_AUTH_REQUIRED;
		res.message = mres->message;
		mres->message = NULL;
		res.structured = mres->structured;
		mres->structured = NULL;
		res.structured_text = mres->structured_text;
		mres->structured_text = NULL;
		/* What the tool said, whole; else what explains a failure (the
		 * server's stderr tail, a JSON-RPC error's data). */
		if (mres->text != NULL) {
			res.output = mres->text;
			mres->text = NULL;
		} else {
			res.output = mres->detail;
			mres->detail = NULL;
		}
	}
	mcp_call_result_clear(mres);
	action_done_fn done = run->done;
	void *darg = run->arg;
	free(run->reason);
	free(run->server);
	free(run->resumed);
	free(run);
	done(darg, &res);
}

/* Follow the task of a run started before a restart; its timeout counts from its start. */
static struct action_run *mcp_resume(const struct action_env *env, action_progress_fn progress,
                                     action_done_fn done, void *arg) {
	const struct job_def *job = env->job;
	struct action_run *run = xcalloc(1, sizeof *run);
	run->progress = progress;
	run->done = done;
	run->arg = arg;
	run->server = xstrdup(env->resume_server ? env->resume_server : job->mcp.server);
	run->resumed = xstrdup(env->resume_task);
	run->has_task = true;
	run->http = server_is_http(env->cfg, run->server);
	int64_t timeout = job->timeout_ms > 0 ? job->timeout_ms : ACTION_MCP_DEFAULT_TIMEOUT_MS;
	int64_t left = env->now_ms + timeout - (env->resumed_ms ? env->resumed_ms : env->now_ms);
	run->call = mcp_resume_task(env->mcp, run->server, job->mcp.tool, env->resume_task,
	                            env->resume_session, left > 0 ? left : 1, mcp_on_progress,
	                            mcp_on_done, run);
	return run;
}

static struct action_run *mcp_start(const struct action_env *env, action_progress_fn progress,
                                    action_done_fn done, void *arg, char **cause) {
	const struct job_def *job = env->job;
	if (env->mcp == NULL) {
		*cause = xasprintf("job %s: no MCP client is available", job->id);
		return NULL;
	}
	if (env->resume_task)
		return mcp_resume(env, progress, done, arg);
	struct mcp_template_vars vars = {
		.last_success_ms = env->last_success_ms,
		.last_run_ms = env->last_run_ms,
		.now_ms = env->now_ms,
		.job_id = job->id,
		.run_id = env->run_id,
	};
	json_t *args = mcp_template_expand(job->mcp.arguments, &vars);
	/* This run's job.run "arguments" go over the job's (templates are the job's only). */
	const json_t *extra = env->input ? json_object_get(env->input, "arguments") : NULL;
	if (json_is_object(args) && json_is_object(extra))
		json_object_update(args, (json_t *)extra);
	struct action_run *run = xcalloc(1, sizeof *run);
	run->progress = progress;
	run->done = done;
	run->arg = arg;
	run->on_task = env->on_task;
	run->server = xstrdup(job->mcp.server);
	run->http = server_is_http(env->cfg, run->server);
	int64_t timeout = job->timeout_ms > 0 ? job->timeout_ms : ACTION_MCP_DEFAULT_TIMEOUT_MS;
	run->call = mcp_call_tool(env->mcp, job->mcp.server, job->mcp.tool, args, timeout,
	                          mcp_on_progress, mcp_on_done, run);
	mcp_call_set_task_fn(run->call, mcp_on_task);
	json_decref(args);
	return run;
}

static void mcp_stop(struct action_run *run, enum run_outcome why, const char *reason) {
	if (!action_stop_once(&run->stopping, &run->why, &run->reason, why, reason))
		return;
	/* "timed out after 8s" alone does not say what we were waiting for. */
	char *phase = why == OUTCOME_TIMEOUT ? mcp_call_phase(run->call) : NULL;
	if (phase) {
		char *with = xasprintf("%s %s", reason ? reason : "timed out", phase);
		free(run->reason);
		run->reason = with;
		free(phase);
	}
	mcp_call_cancel(run->call, reason); /* done follows from inside */
}

/* The daemon goes down: a task on a Streamable HTTP server goes on, to be resumed. */
static bool mcp_leave(struct action_run *run, const char *reason) {
	if (!run->has_task || !run->http || run->stopping)
		return false;
	if (!action_stop_once(&run->stopping, &run->why, &run->reason, OUTCOME_CANCELLED, reason))
		return false;
	mcp_call_leave(run->call, reason); /* done follows from inside */
	return true;
}

const struct action_ops action_mcp_ops = {
	.name = "mcp",
	.start = mcp_start,
	.stop = mcp_stop,
	.leave = mcp_leave,
};
