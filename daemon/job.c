/*
 * job.c - names of job states, outcomes, triggers; freeing a job_def.
 */
#include "daemon/job.h"

#include <stdlib.h>
#include <string.h>

#include "common/strv.h"
#include "common/xmalloc.h"

void job_def_free(struct job_def *job) {
	if (job == NULL)
		return;
	free(job->id);
	free(job->name);
	free(job->description);
	free(job->source);
	free(job->user);
	free(job->group);
	strv_free(job->exec.argv);
	strv_free(job->exec.env);
	free(job->exec.cwd);
	free(job->cleanup.path);
	free(job->mcp.server);
	free(job->mcp.tool);
	json_decref(job->mcp.arguments);
	free(job);
}

static const char *const state_names[] = {
	[JOB_STATE_DISABLED] = "disabled", [JOB_STATE_SCHEDULED] = "scheduled",
	[JOB_STATE_PENDING] = "pending",   [JOB_STATE_RUNNING] = "running",
	[JOB_STATE_BACKOFF] = "backoff",
};

static const char *const outcome_names[] = {
	[OUTCOME_NONE] = "none",          [OUTCOME_RUNNING] = "running",
	[OUTCOME_SUCCESS] = "success",    [OUTCOME_FAILURE] = "failure",
	[OUTCOME_RETRY] = "retry",        [OUTCOME_TIMEOUT] = "timeout",
	[OUTCOME_CANCELLED] = "cancelled", [OUTCOME_INTERRUPTED] = "interrupted",
};

static const char *const trigger_names[] = {
	[TRIGGER_SCHEDULE] = "schedule", [TRIGGER_MANUAL] = "manual",
	[TRIGGER_CATCH_UP] = "catch-up", [TRIGGER_RETRY] = "retry",
};

#define NAME_OF(tab, i) \
	(((size_t)(i) < sizeof(tab) / sizeof((tab)[0]) && (tab)[i]) ? (tab)[i] : "unknown")

const char *job_state_name(enum job_state s) { return NAME_OF(state_names, s); }
const char *run_outcome_name(enum run_outcome o) { return NAME_OF(outcome_names, o); }
const char *run_trigger_name(enum run_trigger t) { return NAME_OF(trigger_names, t); }

const char *action_kind_name(enum action_kind k) {
	switch (k) {
	case ACTION_EXEC: return "exec";
	case ACTION_CLEANUP: return "cleanup";
	case ACTION_MCP: return "mcp";
	}
	return "unknown";
}

const char *net_req_name(enum net_req n) {
	switch (n) {
	case NET_REQ_ANY: return "any";
	case NET_REQ_CONNECTED: return "connected";
	case NET_REQ_UNMETERED: return "unmetered";
	}
	return "unknown";
}

static int index_of(const char *const *tab, size_t n, const char *s) {
	for (size_t i = 0; i < n; i++)
		if (tab[i] && strcmp(tab[i], s) == 0)
			return (int)i;
	return -1;
}

int run_outcome_from_name(const char *s) {
	return index_of(outcome_names, sizeof outcome_names / sizeof outcome_names[0], s);
}

int run_trigger_from_name(const char *s) {
	return index_of(trigger_names, sizeof trigger_names / sizeof trigger_names[0], s);
}

bool run_outcome_is_retryable(enum run_outcome o) {
	return o == OUTCOME_RETRY || o == OUTCOME_TIMEOUT;
}
