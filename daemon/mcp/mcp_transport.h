/*
 * mcp_transport.h - how MCP messages travel to and from one server.
 *
 * A transport carries whole lines (one JSON-RPC message each) and tells its
 * owner when a line arrives and when the server is gone. It is a small ops
 * table so Streamable HTTP can sit beside stdio later; the session code in
 * mcp.c sees only this header.
 *
 * stdio: the server is a child process (daemon/spawn.h); we write its stdin,
 * read its stdout line by line (a line over MCP_TRANSPORT_LINE_MAX is a
 * protocol failure, never buffered further; over MCP_TRANSPORT_STDIN_MAX of
 * our messages unsent means it does not read: it is killed and reported as
 * flooding), keep the tail of its stderr for
 * error reports and log its stderr lines rate-limited. Shutdown is
 * asynchronous on the event loop: close stdin, wait, SIGTERM, wait, SIGKILL.
 * Exits are learnt through spawn_watch() on the same event base.
 */
#ifndef MCPJOB_MCP_TRANSPORT_H
#define MCPJOB_MCP_TRANSPORT_H

#include <event2/event.h>
#include <stddef.h>

struct mcp_server_def;

#define MCP_TRANSPORT_LINE_MAX   (4u * 1024 * 1024) /* one message from a server */
#define MCP_TRANSPORT_STDIN_MAX  (1024u * 1024)     /* unsent to a server: it floods */
#define MCP_TRANSPORT_STDERR_TAIL 4096              /* stderr kept for reports */
#define MCP_TRANSPORT_STDIN_GRACE_MS 1000           /* stdin closed -> SIGTERM */
#define MCP_TRANSPORT_TERM_GRACE_MS  2000           /* SIGTERM -> SIGKILL */

struct mcp_transport;

struct mcp_transport_cbs {
	/* One line without its '\n' (NUL-terminated, may contain other NULs). */
	void (*on_line)(void *arg, const char *line, size_t len);
	/*
	 * The server is gone or broke the framing; @why is one sentence
	 * ("server x exited with status 1"). Called at most once, never after
	 * close(). The owner then calls close().
	 */
	void (*on_close)(void *arg, const char *why);
	void *arg;
};

struct mcp_transport_ops {
	const char *name;
	/* Queue @len bytes (a whole line including '\n'); 0, or -1 when gone. */
	int (*send)(struct mcp_transport *t, const char *line, size_t len);
	/*
	 * Let go: no callback follows. The transport shuts the server down on
	 * its own and frees itself when the server has exited.
	 */
	void (*close)(struct mcp_transport *t);
	/* The last MCP_TRANSPORT_STDERR_TAIL bytes of stderr ("" when none). */
	const char *(*stderr_tail)(struct mcp_transport *t);
	/* Process id for logs and tests; 0 when there is none. */
	long (*pid)(struct mcp_transport *t);
};

struct mcp_transport {
	const struct mcp_transport_ops *ops;
};

/*
 * mcp_transport_stdio_open() - spawn @def's command with piped stdio.
 * Runs as @def->user when set (resolved with spawn_identity_resolve), as
 * ourselves otherwise, in @def->cwd (else the user's home) with the clean
 * environment of spawn_build_env() plus @def->env, marked with @store_id
 * (orphan_env(); NULL: unmarked).
 * Returns the transport, or NULL with *@cause.
 */
struct mcp_transport *mcp_transport_stdio_open(struct event_base *base,
                                               const struct mcp_server_def *def,
                                               const char *store_id,
                                               const struct mcp_transport_cbs *cbs,
                                               char **cause);

/*
 * mcp_transport_finish_all() - complete every shutdown still in progress
 * synchronously (the same close/SIGTERM/SIGKILL steps, blocking at most
 * ~3 s) and free those transports. For when the event loop will not run
 * again (mcp_pool_free() at exit).
 */
void mcp_transport_finish_all(void);

#endif
