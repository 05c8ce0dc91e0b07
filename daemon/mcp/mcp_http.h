/*
 * mcp_http.h - MCP over the network: the Streamable HTTP transport (MCP
 * revision 2025-11-25, basic/transports) and the 2024-11-05 HTTP+SSE
 * transport, behind the ops table of mcp_transport.h.
 *
 * libcurl's multi interface does the HTTP (TLS, proxies from https_proxy /
 * no_proxy, connection reuse), driven from the event loop through
 * curl_multi_socket_action() with socket and timer callbacks: no threads,
 * no blocking call. What the transport itself defines is done here: the
 * POST per message, JSON or SSE answers, Mcp-Session-Id and
 * MCP-Protocol-Version, the GET stream, resuming a stream with
 * Last-Event-ID after its retry time, a new session when the server
 * answers 404, DELETE of the session on close, and the fall-back to
 * HTTP+SSE when an initialize POST gets 400, 404 or 405.
 *
 * The session code sees whole JSON-RPC messages as lines, as from stdio.
 * A failed HTTP exchange of a request comes back as a JSON-RPC error
 * reply to that request (code MCP_HTTP_ERROR_CODE) so one call fails, not
 * the session; a server that cannot be reached at all (DNS, refused, TLS)
 * is reported through on_close. Messages name the server and its host,
 * never a header value (those may be secrets) and never the URL's path or
 * query.
 */
#ifndef MCPJOB_MCP_HTTP_H
#define MCPJOB_MCP_HTTP_H

#include "daemon/mcp/mcp_transport.h"

#define MCP_HTTP_ERROR_CODE      (-32000) /* synthesized error replies */
/* A request that needs a person's login first: this code with
 * "data": {"mcpjobd_auth_required": true}; the pool ends the call
 * MCP_AUTH_REQUIRED with the message. */
#define MCP_HTTP_AUTH_CODE       (-32001)
#define MCP_HTTP_RENEW_EARLY_MS  30000 /* renew an access token this long before it expires */
#define MCP_HTTP_CONNECT_TIMEOUT_MS 30000
#define MCP_HTTP_DELETE_TIMEOUT_MS  2000
#define MCP_HTTP_RETRY_DEFAULT_MS   1000  /* stream resumed after this without retry: */
#define MCP_HTTP_RESUME_MAX         5     /* resumes without progress before giving up */

struct mcp_pool;

/*
 * mcp_http_open() - a transport to @def's url (def->type HTTP or
 * SSE), with def->headers expanded now (a reference that cannot be read
 * fails here, naming it). Nothing is sent until the first send().
 * With @pool (NULL: none), authorization as mcp_auth.h says: the grant
 * kept in the pool's store goes on every request as a Bearer token, a 401
 * or 403 insufficient_scope renews it and retries once, or the request is
 * answered with an MCP_HTTP_AUTH_CODE error. @def must outlive the
 * transport's close().
 * Returns the transport, or NULL with *@cause.
 */
struct mcp_transport *mcp_http_open(struct event_base *base,
                                              const struct mcp_server_def *def,
                                              const struct mcp_transport_cbs *cbs,
                                              struct mcp_pool *pool, char **cause);

/* Finish (at most ~1 s) the DELETEs of closed transports and free them. */
void mcp_http_finish_all(void);

#endif
