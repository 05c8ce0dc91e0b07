/*
 * client.c - mcpjob-conformance-client: the engine's own MCP client
 * (daemon/mcp/mcp.c over daemon/mcp/mcp_http.c) as the client under test of the
 * official conformance suite (@modelcontextprotocol/conformance).
 *
 * The suite runs "mcpjob-conformance-client URL" with the scenario in
 * MCP_CONFORMANCE_SCENARIO. We do what each client scenario asks of a
 * client (list tools, call the scenario's tool), through the same pool,
 * session and transport code mcpjobd uses, with "elicitation": "defaults".
 * Exit 0 when every call succeeded; the suite judges the traffic.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_proto.h"

#define CALL_TIMEOUT_MS 20000

struct step {
	struct event_base *base;
	struct mcp_call_result res;
	int done;
};

static void on_done(void *arg, struct mcp_call_result *res) {
	struct step *st = arg;
	st->res = *res;
	memset(res, 0, sizeof *res);
	st->done = 1;
	event_base_loopbreak(st->base);
}

static int wait_step(struct step *st, const char *what) {
	while (!st->done)
		event_base_loop(st->base, EVLOOP_ONCE);
	int ok = st->res.status == MCP_OK;
	fprintf(stderr, "mcpjob-conformance-client: %s: %s: %s\n", what, ok ? "ok" : "FAILED",
	        st->res.message ? st->res.message : "");
	mcp_call_result_clear(&st->res);
	st->done = 0;
	return ok ? 0 : -1;
}

static int list_tools(struct mcp_pool *pool, struct step *st) {
	mcp_list_tools(pool, "sut", CALL_TIMEOUT_MS, on_done, st);
	return wait_step(st, "tools/list");
}

static int call(struct mcp_pool *pool, struct step *st, const char *tool, json_t *args) {
	mcp_call_tool(pool, "sut", tool, args, CALL_TIMEOUT_MS, NULL, on_done, st);
	json_decref(args);
	return wait_step(st, tool);
}

/* The scenario's steps; unknown scenarios get the handshake and a tools/list. */
static int run_scenario(struct mcp_pool *pool, struct step *st, const char *scenario) {
	if (list_tools(pool, st) != 0)
		return -1;
	if (strcmp(scenario, "tools_call") == 0)
		return call(pool, st, "add_numbers", json_pack("{s:i, s:i}", "a", 2, "b", 3));
	if (strcmp(scenario, "sse-retry") == 0)
		return call(pool, st, "test_reconnection", json_object());
	if (strcmp(scenario, "elicitation-sep1034-client-defaults") == 0)
		return call(pool, st, "test_client_elicitation_defaults", json_object());
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: mcpjob-conformance-client URL\n"
		                "(run by the MCP conformance suite; the scenario comes from "
		                "MCP_CONFORMANCE_SCENARIO)\n");
		return 2;
	}
	const char *scenario = getenv("MCP_CONFORMANCE_SCENARIO");
	log_init("mcpjob-conformance-client", LOG_TARGET_STDERR, getenv("MCPJOB_VERBOSE") != NULL);
	struct mcp_server_def def = {
		.name = "sut",
		.type = MCP_SERVER_HTTP,
		.url = argv[argc - 1],
		.elicitation = MCP_ELICIT_DEFAULTS,
		.idle_timeout_ms = 60000,
	};
	struct mcp_server_def *defs[] = {&def};
	struct config cfg = {.servers = defs, .nservers = 1};
	struct step st = {.base = event_base_new()};
	struct mcp_pool *pool = mcp_pool_new(st.base, &cfg);
	int rc = run_scenario(pool, &st, scenario ? scenario : "");
	mcp_pool_free(pool);
	event_base_free(st.base);
	return rc == 0 ? 0 : 1;
}
