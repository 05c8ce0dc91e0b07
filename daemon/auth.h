/*
 * auth.h - the token keeper: where the daemon keeps the OAuth grants of its
 * remote MCP servers (the struct mcp_auth_store of daemon/mcp/mcp_auth.h).
 *
 * One file per server, STATE/auth/NAME.json, mode 0600 in a folder of mode
 * 0700, owned by the daemon, replaced atomically (a temporary file, fsync,
 * rename, fsync of the folder), so a crash leaves the old grant or the new
 * one, never half of either. What is read or written passes through
 * buffers mapped apart with MADV_DONTDUMP (no core dump holds a token) and
 * is cleansed (OPENSSL_cleanse) before it is let go; the keeper keeps no
 * secret between calls. Nothing here logs a token, and no message or
 * status names one.
 */
#ifndef MCPJOB_AUTH_H
#define MCPJOB_AUTH_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/mcp/mcp_auth.h"

struct auth;

#define AUTH_FILE_MAX (64 * 1024) /* a grant file larger than this is refused */

/*
 * Told when a server's grant appears (@authorized: a login or a refresh
 * saved one) or goes (dropped by the authorization server, @why says so
 * without a secret; or logged out, @why NULL).
 */
typedef void (*auth_change_fn)(void *arg, const char *server, bool authorized, const char *why);

/* The keeper of @state_dir/auth (created when missing); NULL with *@cause. */
struct auth *auth_new(const char *state_dir, char **cause);
void auth_free(struct auth *a);
void auth_set_change_fn(struct auth *a, auth_change_fn fn, void *arg);

/* The hooks for mcp_pool_set_auth_store(); their arg is @a. */
struct mcp_auth_store auth_store(struct auth *a);

/* Whether a grant is kept for @server. */
bool auth_has_grant(struct auth *a, const char *server);

/*
 * auth_logout() - forget @server's grant: 1 when one was removed, 0 when
 * there was none, -1 with *@cause (the file could not be removed).
 */
int auth_logout(struct auth *a, const char *server, char **cause);

/*
 * auth_status_json() - what may be shown of @server's grant, to anyone:
 * {"server", "authorized", "scope", "expires_at", "obtained_at", "issuer",
 * "refreshable"} (times RFC 3339, null when unknown). No token, no client
 * secret, no client id.
 */
json_t *auth_status_json(struct auth *a, const char *server);

#endif
