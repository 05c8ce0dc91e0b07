/*
 * mcp_proto.h - the pure parts of being an MCP client: which protocol
 * versions we speak, the initialize request, and turning a tools/call reply
 * into a struct mcp_call_result. No I/O, no event loop: mcp.c drives these,
 * the unit tests call them directly.
 */
#ifndef MCPJOB_MCP_PROTO_H
#define MCPJOB_MCP_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/mcp/mcp.h"

#define MCP_PROTOCOL_LATEST "2025-11-25"
/* Every revision we accept from a server, newest first, NULL-terminated. */
extern const char *const mcp_protocol_versions[];

bool mcp_proto_version_supported(const char *version);

/* The params of our initialize request. New reference. */
json_t *mcp_proto_initialize_params(void);
/* The same declaring what mcpjobd answers: elicitation (by policy), and
 * roots (with listChanged) when @roots. */
json_t *mcp_proto_initialize_params_client(bool roots);
/* The result of roots/list for @roots (file:// URIs). New reference. */
json_t *mcp_proto_roots_result(char *const *roots);

/*
 * mcp_proto_check_initialize() - validate an initialize result from server
 * @server. Returns the negotiated version (borrowed from @result), or NULL
 * with *@cause naming both versions when we cannot speak the server's.
 */
const char *mcp_proto_check_initialize(const char *server, const json_t *result, char **cause);

/*
 * mcp_proto_tool_result() - map a tools/call reply into @res (fields owned
 * by @res afterwards). @result is the JSON-RPC result or NULL, @error the
 * JSON-RPC error object or NULL:
 *   error           -> MCP_PROTOCOL_ERROR "server error -32602: message"
 *   isError: true   -> MCP_TOOL_ERROR, message = text content
 *   otherwise       -> MCP_OK, message = text content, structured kept
 *                      ({"truncated": true, "size": N} when its encoding
 *                      exceeds MCP_STRUCTURED_MAX)
 */
#define MCP_STRUCTURED_MAX (16 * 1024) /* == ACTION_STRUCTURED_MAX */
#define MCP_MESSAGE_MAX    200         /* == ACTION_MESSAGE_MAX */
void mcp_proto_tool_result(const char *tool, const json_t *result, const json_t *error,
                           struct mcp_call_result *res);

/*
 * mcp_proto_content_text() - the content array as one line: text items
 * joined by spaces, other items summarised ("[image image/png 12345
 * bytes]", "[resource_link file:///x]", "[type]" for types we do not know);
 * never longer than @max bytes and never cut inside a UTF-8 sequence.
 * Caller frees; "" when there is nothing.
 */
char *mcp_proto_content_text(const json_t *content, size_t max);

/* @s flattened to one line (control characters become spaces, runs of
 * white space collapse) and cut at @max bytes on a UTF-8 boundary. */
char *mcp_proto_one_line(const char *s, size_t max);

/*
 * mcp_proto_salvage() - a line rpc_parse() refused: is it still something
 * we can act on? MCP_SALVAGE_BATCH: a JSON array of messages (*@batch, new
 * reference; the 2025-03-26 revision allows batches). MCP_SALVAGE_REPLY: a
 * reply we can match to request *@id (an integer, as ours are) although it
 * is malformed; *@why says how ("it is not valid UTF-8", "its id is the
 * string \"29\"", "it has no \"jsonrpc\": \"2.0\""), caller frees.
 */
enum mcp_salvage { MCP_SALVAGE_NONE, MCP_SALVAGE_BATCH, MCP_SALVAGE_REPLY };
enum mcp_salvage mcp_proto_salvage(const char *line, size_t len, json_t **batch, int64_t *id,
                                   char **why);

/*
 * mcp_proto_log_level() - a server's notifications/message level (RFC 5424
 * names, as MCP uses them) as one of ours (enum log_level values); -1 for
 * an unknown name. mcp_proto_log_level_ok() - whether @name is one of the
 * eight.
 */
int mcp_proto_log_level(const char *name);
bool mcp_proto_log_level_ok(const char *name);

/* Release what @res owns and zero it. */
void mcp_call_result_clear(struct mcp_call_result *res);

#endif
