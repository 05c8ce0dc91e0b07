/*
 * mcp.h - MCP client: a pool of MCP servers (from "mcpServers") and tool
 * calls on them, driven by the event loop.
 *
 * Transport today: stdio (newline-delimited JSON-RPC over pipes to a child
 * process); the transport is a small ops table so Streamable HTTP can be
 * added. A server is started on first use, initialized (version negotiated,
 * notifications/initialized sent), kept for its idle_timeout so jobs due
 * together share it, restarted on next use if it died, and shut down by
 * closing stdin, then SIGTERM, then SIGKILL.
 *
 * Spec: MCP revision 2025-11-25; checklist in shared/reference/mcp-client.md.
 */
#ifndef MCPJOB_MCP_H
#define MCPJOB_MCP_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct mcp_pool;
struct mcp_call;

enum mcp_status {
	MCP_OK,              /* tool ran; result content in message/structured */
	MCP_TOOL_ERROR,      /* result with isError: true */
	MCP_PROTOCOL_ERROR,  /* JSON-RPC error reply */
	MCP_TRANSPORT_ERROR, /* spawn failed, server died, garbage, ... (retry-able) */
	MCP_TIMEOUT,
	MCP_CANCELLED,
	MCP_AUTH_REQUIRED,   /* a person must log the server in (mcp_auth.h) */
};

struct mcp_call_result {
	enum mcp_status status;
	char *message;      /* owned: text content / error text, one line */
	json_t *structured; /* owned or NULL: structuredContent */
	char *structured_text; /* owned or NULL: structured encoded compact, made once */
	char *detail;       /* owned or NULL: the server's stderr tail, or a JSON-RPC
	                       error's "data" (capped at MCP_DETAIL_MAX) */
	char *text;         /* owned or NULL: the whole text content, capped at
	                       MCP_TEXT_MAX (the run's output) */
	bool task_lost;     /* tasks/get was refused: the server does not know the
	                       task (any more) */
};
#define MCP_TEXT_MAX   (64 * 1024) /* == ACTION_OUTPUT_MAX */
#define MCP_DETAIL_MAX (4 * 1024)

typedef void (*mcp_progress_fn)(void *arg, double progress, double total /* <0: unknown */,
                                const char *message /* may be NULL */);
/* Takes ownership of the contents of @res. Never called from inside mcp_call_tool(). */
typedef void (*mcp_done_fn)(void *arg, struct mcp_call_result *res);

struct mcp_pool *mcp_pool_new(struct event_base *base, const struct config *cfg);
/* After a reload: servers whose definition changed are restarted on next use. */
void mcp_pool_set_config(struct mcp_pool *pool, const struct config *cfg);
/* The store id that marks the stdio servers the pool starts (orphan_env()). */
void mcp_pool_set_store_id(struct mcp_pool *pool, const char *store_id);
/* Shut every server down; pending calls end MCP_CANCELLED. */
void mcp_pool_free(struct mcp_pool *pool);

/*
 * mcp_call_tool() - call @tool on @server with @arguments (borrowed).
 * @timeout_ms 0 = none. Exactly one @done call follows.
 */
struct mcp_call *mcp_call_tool(struct mcp_pool *pool, const char *server, const char *tool,
                               json_t *arguments, int64_t timeout_ms,
                               mcp_progress_fn progress, mcp_done_fn done, void *arg);
/*
 * Tasks (MCP 2025-11-25): a tool whose execution.taskSupport is "required"
 * or "optional" on a server declaring tasks.requests.tools.call is called
 * task-augmented and polled (tasks/get at its pollInterval, tasks/result);
 * cancel and timeout send tasks/cancel. mcp_call_set_task_fn() - @fn(arg,
 * task_id) is called once the server has created the task (to keep it with
 * the run). mcp_resume_task() - follow task @task_id of @tool created
 * earlier (e.g. before a daemon restart) to its result, exactly as the
 * call that created it would have; done as for mcp_call_tool(). A server
 * may know a task only in the session that created it (server-everything
 * does): @session (may be NULL), from mcp_call_session() of that call, is
 * then taken up again when @server has no session running - no new
 * initialize; a server that ended it answers 404 and gets a new one. A
 * tasks/get the server refuses ends the call with res.task_lost set.
 */
typedef void (*mcp_task_fn)(void *arg, const char *task_id);
void mcp_call_set_task_fn(struct mcp_call *call, mcp_task_fn fn);
struct mcp_call *mcp_resume_task(struct mcp_pool *pool, const char *server, const char *tool,
                                 const char *task_id, const char *session, int64_t timeout_ms,
                                 mcp_progress_fn progress, mcp_done_fn done, void *arg);
/*
 * mcp_call_session() - the transport session @call runs in, as one opaque
 * line for mcp_resume_task() ("PROTOCOL-VERSION SESSION-ID"): a
 * Streamable HTTP session; NULL for stdio, legacy SSE and sessionless
 * servers. Caller frees.
 */
char *mcp_call_session(const struct mcp_call *call);

/*
 * mcp_call_leave() - let go of a task call without stopping the task (a
 * daemon going down that resumes it at its next start): nothing is sent,
 * the session it lives in is not ended (no DELETE); done follows at once
 * with MCP_CANCELLED and @reason.
 */
void mcp_call_leave(struct mcp_call *call, const char *reason);
/* Cancel (notifications/cancelled to the server); done follows with MCP_CANCELLED. */
void mcp_call_cancel(struct mcp_call *call, const char *reason);
/*
 * mcp_call_phase() - where @call is, for a timeout's message: "while
 * starting server x", "during initialize: ...", "waiting for the reply to
 * tools/call from server x", "after a reply from server x that could not
 * be parsed (...)". NULL once done; caller frees.
 */
char *mcp_call_phase(const struct mcp_call *call);

/*
 * mcp_list_tools() - tools/list on @server, following nextCursor until it is
 * absent. done gets MCP_OK with structured = the array of tool objects (not
 * size-capped), or an error status as for mcp_call_tool(). Cancel with
 * mcp_call_cancel().
 */
struct mcp_call *mcp_list_tools(struct mcp_pool *pool, const char *server, int64_t timeout_ms,
                                mcp_done_fn done, void *arg);

/* Values for ${...} in a job's arguments; 0 times become null (see mcpjobd.json(5)). */
struct mcp_template_vars {
	int64_t last_success_ms;
	int64_t last_run_ms;
	int64_t now_ms;
	const char *job_id;
	uint64_t run_id;
};
/* A deep copy of @args with ${...} substituted in string values. */
json_t *mcp_template_expand(const json_t *args, const struct mcp_template_vars *vars);

/*
 * mcp_probe() - for `mcpjobd --check-config --probe`: start each configured
 * server, initialize, list tools, check every mcp job's tool exists and its
 * arguments carry the inputSchema's required properties. Writes each problem
 * to @out naming job, server and tool; returns the number of problems.
 * Runs its own event loop (children are reaped by pid, so it may run
 * beside the daemon's).
 */
int mcp_probe(const struct config *cfg, FILE *out);

#endif
