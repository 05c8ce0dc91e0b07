/*
 * action_mcp.c - the mcp action: a job's tool call on a pooled MCP server.
 *
 * Arguments are expanded (${last_success} etc.) at start, the call is made
 * with the job's timeout as its hard limit, progress is passed through, and
 * the MCP status becomes the run's outcome: a transport failure is worth a
 * retry (the server may be back next time), a tool or protocol error is not.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "daemon/action/action.h"
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
};

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

static void mcp_on_done(void *arg, struct mcp_call_result *mres) {
	struct action_run *run = arg;
	struct action_result res = {0};
	if (run->stopping) {
		res.outcome = run->why;
		res.message = run->reason ? mcp_proto_one_line(run->reason, ACTION_MESSAGE_MAX) : NULL;
	} else {
		res.outcome = outcome_of(mres->status);
		res.needs_login = mres->status == MCP_AUTH_REQUIRED;
		res.message = mres->message;
		mres->message = NULL;
		res.structured = mres->structured;
		mres->structured = NULL;
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
	free(run);
	done(darg, &res);
}

static struct action_run *mcp_start(const struct action_env *env, action_progress_fn progress,
                                    action_done_fn done, void *arg, char **cause) {
	const struct job_def *job = env->job;
	if (env->mcp == NULL) {
		*cause = xasprintf("job %s: no MCP client is available", job->id);
		return NULL;
	}
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
	int64_t timeout = job->timeout_ms > 0 ? job->timeout_ms : ACTION_MCP_DEFAULT_TIMEOUT_MS;
	run->call = mcp_call_tool(env->mcp, job->mcp.server, job->mcp.tool, args, timeout,
	                          mcp_on_progress, mcp_on_done, run);
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

const struct action_ops action_mcp_ops = {
	.name = "mcp",
	.start = mcp_start,
	.stop = mcp_stop,
};
