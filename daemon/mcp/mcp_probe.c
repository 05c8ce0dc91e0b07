/*
 * mcp_probe.c - `mcpjobd --check-config --probe`: start every MCP server an
 * mcp job uses, list its tools and check each job against them, so a typo
 * in a tool name is found before the first run at 3 a.m.
 *
 * Runs on its own event base with its own pool; its children are watched
 * by pid (spawn.h), so nothing else in the process is disturbed.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_proto.h"
#include "daemon/spawn.h"

#define PROBE_TIMEOUT_MS 30000

struct probe_server {
	const char *name;
	const char *file; /* of the first job that uses it, for messages */
	const char *job;
	struct mcp_call_result res;
	bool done;
	int *pending;
	struct event_base *base;
};

static void probe_done(void *arg, struct mcp_call_result *res) {
	struct probe_server *ps = arg;
	ps->res = *res;
	ps->done = true;
	if (--*ps->pending == 0)
		event_base_loopbreak(ps->base);
}

static const json_t *find_tool(const json_t *tools, const char *name) {
	size_t i;
	const json_t *t;
	json_array_foreach(tools, i, t) {
		const json_t *n = json_object_get(t, "name");
		if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
			return t;
	}
	return NULL;
}

/* "syncData, getNotifications" (at most 20 names). Caller frees. */
static char *tool_names(const json_t *tools) {
	char *out = xstrdup("");
	size_t i;
	const json_t *t;
	json_array_foreach(tools, i, t) {
		const json_t *n = json_object_get(t, "name");
		char *next = i == 20 ? xasprintf("%s, ...", out)
		                     : xasprintf("%s%s%s", out, *out ? ", " : "",
		                                 json_is_string(n) ? json_string_value(n) : "?");
		free(out);
		out = next;
		if (i == 20)
			break;
	}
	return out;
}

/* Problems of one job against its server's tools; returns how many. */
static int probe_job(const struct job_def *job, const json_t *tools, FILE *out) {
	const struct mcp_action *a = &job->mcp;
	const json_t *tool = find_tool(tools, a->tool);
	if (tool == NULL) {
		char *names = tool_names(tools);
		fprintf(out, "%s: job %s: server %s has no tool \"%s\" (tools: %s)\n", job->source,
		        job->id, a->server, a->tool, *names ? names : "none");
		free(names);
		return 1;
	}
	const json_t *schema = json_object_get(tool, "inputSchema");
	const json_t *req = json_is_object(schema) ? json_object_get(schema, "required") : NULL;
	int problems = 0;
	size_t i;
	const json_t *r;
	json_array_foreach(req, i, r) {
		if (!json_is_string(r) || json_object_get(a->arguments, json_string_value(r)))
			continue;
		fprintf(out, "%s: job %s: tool \"%s\" on server %s needs argument \"%s\" "
		        "(required by its inputSchema)\n", job->source, job->id, a->tool, a->server,
		        json_string_value(r));
		problems++;
	}
	return problems;
}

static struct probe_server *probe_find(struct probe_server *ps, size_t n, const char *name) {
	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i].name, name) == 0)
			return &ps[i];
	return NULL;
}

/* Problems of the servers that could not be listed, once per server. */
static int probe_report_servers(struct probe_server *ps, size_t n, FILE *out) {
	int problems = 0;
	for (size_t i = 0; i < n; i++) {
		if (ps[i].res.status == MCP_OK)
			continue;
		fprintf(out, "%s: job %s: server %s: cannot list its tools: %s\n", ps[i].file,
		        ps[i].job, ps[i].name, ps[i].res.message ? ps[i].res.message : "unknown error");
		if (ps[i].res.detail)
			fprintf(out, "%s: job %s: server %s: its stderr ended with: %s\n", ps[i].file,
			        ps[i].job, ps[i].name, ps[i].res.detail);
		problems++;
	}
	return problems;
}

int mcp_probe(const struct config *cfg, FILE *out) {
	struct event_base *base = event_base_new();
	if (base == NULL)
		log_fatalx("cannot create an event base for the probe");
	struct mcp_pool *pool = mcp_pool_new(base, cfg);
	struct probe_server *ps = xcalloc(cfg->njobs + 1, sizeof *ps);
	size_t nps = 0;
	int pending = 0, problems = 0;
	for (size_t i = 0; i < cfg->njobs; i++) {
		const struct job_def *job = cfg->jobs[i];
		if (job->kind != ACTION_MCP || probe_find(ps, nps, job->mcp.server))
			continue;
		ps[nps] = (struct probe_server){.name = job->mcp.server, .file = job->source,
		                                .job = job->id, .pending = &pending, .base = base};
		pending++;
		mcp_list_tools(pool, job->mcp.server, PROBE_TIMEOUT_MS, probe_done, &ps[nps++]);
	}
	if (pending > 0)
		event_base_dispatch(base);
	problems += probe_report_servers(ps, nps, out);
	for (size_t i = 0; i < cfg->njobs; i++) {
		const struct job_def *job = cfg->jobs[i];
		struct probe_server *p = job->kind == ACTION_MCP ? probe_find(ps, nps, job->mcp.server)
		                                                 : NULL;
		if (p != NULL && p->res.status == MCP_OK)
			problems += probe_job(job, p->res.structured, out);
	}
	mcp_pool_free(pool);
	for (size_t i = 0; i < nps; i++)
		mcp_call_result_clear(&ps[i].res);
	free(ps);
	event_base_free(base);
	return problems;
}
