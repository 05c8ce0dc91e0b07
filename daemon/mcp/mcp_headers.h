/*
 * mcp_headers.h - HTTP header values for remote MCP servers, with
 * references to secrets kept out of the configuration file:
 *
 *   "Authorization": "Bearer ${credential:api-token}"
 *   "X-Api-Key": "${env:API_KEY}"
 *
 * ${env:NAME} is the daemon's own environment (EnvironmentFile= in the
 * unit), ${credential:NAME} the file NAME in $CREDENTIALS_DIRECTORY
 * (systemd's LoadCredential=; a trailing newline is dropped). Values are
 * expanded only when a connection is opened and live only in the
 * transport: a message about a reference names the reference, never its
 * value, so secrets cannot reach logs, events or history.
 */
#ifndef MCPJOB_MCP_HEADERS_H
#define MCPJOB_MCP_HEADERS_H

#include <stdbool.h>

#define MCP_HEADER_VALUE_MAX (64 * 1024) /* one expanded header value */

/* Whether @name is an HTTP header name (an RFC 9110 token). */
bool mcp_headers_name_ok(const char *name);

/*
 * mcp_headers_check() - validate the references in @tmpl without reading
 * them: 0, or -1 with *@cause (e.g. "${vault:x}: unknown source (use
 * ${env:NAME} or ${credential:NAME})").
 */
int mcp_headers_check(const char *tmpl, char **cause);

/*
 * mcp_headers_expand() - @tmpl with every reference replaced. Returns the
 * value (caller frees; it is a secret: never log it), or NULL with *@cause
 * naming the reference and why it could not be read. A value with CR, LF
 * or NUL is refused (it would split the header).
 */
char *mcp_headers_expand(const char *tmpl, char **cause);
/* The same for a secret that is not a header (a PEM key): line breaks are kept. */
char *mcp_headers_expand_secret(const char *tmpl, char **cause);

#endif
