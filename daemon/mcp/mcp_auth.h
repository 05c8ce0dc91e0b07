/*
 * mcp_auth.h - OAuth 2.1 for MCP servers over HTTP, as the MCP
 * specification (2025-11-25, "Authorization") defines it, for a daemon with
 * no browser: the flow on the wire (daemon/mcp/mcp_auth.c, with the rules of
 * oauth.h and libcurl on the event loop), and the hooks through which the
 * pool's owner keeps the tokens (the daemon: daemon/auth.c, files of mode
 * 0600 in the state folder; the conformance client: memory).
 *
 * What the pool does by itself for an http/sse server:
 *  - every request carries "Authorization: Bearer" when a grant is kept;
 *  - a 401 (or an access token past its expiry) refreshes the grant when it
 *    has a refresh token, or, for "grant": "client_credentials", asks for a
 *    new token; the request is then retried once;
 *  - a 403 with error="insufficient_scope" asks for the challenge's scope
 *    (step-up), at most MCP_AUTH_STEP_UP_MAX times per call;
 *  - when no token can be had without a person (no grant, or the refresh
 *    token was refused with invalid_grant: then drop() is called), the call
 *    ends with status MCP_AUTH_REQUIRED and the message
 *    "waiting for authorization: run `mcpjobctl auth login NAME`".
 *
 * A person's login is two steps, because the person is somewhere else:
 * mcp_auth_login_start() discovers the server's authorization server,
 * registers the client when needed and gives the authorization URL;
 * mcp_auth_login_finish() takes the redirect's code and state, checks the
 * state, exchanges the code and saves the grant.
 *
 * No secret (token, client secret, code, verifier) ever appears in a cause,
 * a log line or an event; grants are cleansed (OPENSSL_cleanse) when freed.
 */
#ifndef MCPJOB_MCP_AUTH_H
#define MCPJOB_MCP_AUTH_H

#include <stdbool.h>
#include <stdint.h>

struct mcp_pool;

#define MCP_AUTH_STEP_UP_MAX 2 /* insufficient_scope retries per call */

/* What is kept per server. Everything but scope, issuer and the times is secret. */
struct mcp_auth_grant {
	char *access_token;
	char *refresh_token;     /* may be NULL */
	char *scope;             /* granted; may be NULL */
	int64_t expires_at_ms;   /* 0: the server did not say */
	char *client_id;         /* registered (DCR), CIMD URL or configured */
	char *client_secret;     /* issued by DCR; may be NULL */
	char *issuer;            /* the authorization server it came from */
	char *token_endpoint;    /* where to refresh without discovering again; may be NULL */
	int64_t obtained_at_ms;  /* login or last refresh */
	char *token_auth_method; /* added: "client_secret_basic", "client_secret_post", "none"
	                            or "private_key_jwt" as used at login; NULL: guessed
	                            (basic with a secret, else none) */
};
/* Free what @g holds, cleansed first; @g is zeroed. */
void mcp_auth_grant_clear(struct mcp_auth_grant *g);
/* A deep copy of @src into @dst. */
void mcp_auth_grant_copy(struct mcp_auth_grant *dst, const struct mcp_auth_grant *src);

struct mcp_auth_store {
	/* The grant kept for @server: 0 and *@out (the caller clears it), or -1 when none. */
	int (*load)(void *arg, const char *server, struct mcp_auth_grant *out);
	/* Keep @g for @server (after a login, a refresh, a registration).
	 * 0, or -1 with *@cause (no secret in it). */
	int (*save)(void *arg, const char *server, const struct mcp_auth_grant *g, char **cause);
	/* Forget the grant: the authorization server refused it (@why says so, no secret). */
	void (*drop)(void *arg, const char *server, const char *why);
	void *arg;
};

/* The pool keeps a copy of @store (NULL: no tokens are kept; 401s need a login every time). */
void mcp_pool_set_auth_store(struct mcp_pool *pool, const struct mcp_auth_store *store);
/* @server's grant is gone (logout, revoked): its sessions, which hold the
 * token, are let go once their calls are over; the next call starts anew. */
void mcp_pool_forget_server(struct mcp_pool *pool, const char *server);

struct mcp_auth_login;
/* @url is the authorization URL to open, or NULL with @cause. Called once. */
typedef void (*mcp_auth_url_fn)(void *arg, const char *url, const char *cause);
/* @ok, or not with @cause (no secret in it). Called once. */
typedef void (*mcp_auth_done_fn)(void *arg, bool ok, const char *cause);

/*
 * mcp_auth_login_start() - begin a person's login on @server (an http/sse
 * server of the pool's config): its 401 challenge, Protected Resource
 * Metadata, authorization server metadata (with the 2025-03-26 fallbacks),
 * the client (configured, CIMD, else Dynamic Client Registration with
 * @redirect_uri), then the authorization URL with PKCE S256, a fresh state,
 * the resource indicator and the scope. @url_fn is called once, never from
 * inside this call. Returns the login, or NULL with *@cause (unknown
 * server, not http).
 */
struct mcp_auth_login *mcp_auth_login_start(struct mcp_pool *pool, const char *server,
                                            const char *redirect_uri, mcp_auth_url_fn url_fn,
                                            void *arg, char **cause);

/*
 * mcp_auth_login_finish() - the redirect came back with @code and @state:
 * the state must be the login's, then the code is exchanged and the grant
 * saved through the store. @done_fn is called once, never from inside this
 * call; the login is freed after it. Only after @url_fn gave a URL.
 */
void mcp_auth_login_finish(struct mcp_auth_login *login, const char *code, const char *state,
                           mcp_auth_done_fn done_fn, void *arg);

/* Give up a login (no callback follows); also when it is still discovering. */
void mcp_auth_login_cancel(struct mcp_auth_login *login);

/* --- inside daemon/mcp: the pool and the HTTP transport ------------------------- */

struct event_base;
struct mcp_server_def;

/* The server @name of the pool's config (NULL: none), the pool's loop. */
const struct mcp_server_def *mcp_pool_find_server(const struct mcp_pool *pool,
                                                  const char *name);
struct event_base *mcp_pool_base(const struct mcp_pool *pool);
/* The pool's store, or NULL when none was set. */
const struct mcp_auth_store *mcp_pool_auth_store(const struct mcp_pool *pool);
/* What the last 401/403 of @server asked for (the login starts from it); NULLs clear it. */
void mcp_pool_auth_hint_set(struct mcp_pool *pool, const char *server,
                            const char *resource_metadata, const char *scope);
void mcp_pool_auth_hint_get(const struct mcp_pool *pool, const char *server,
                            const char **resource_metadata, const char **scope);

enum mcp_auth_renew_result {
	MCP_AUTH_RENEWED,     /* @g holds the new grant (already saved) */
	MCP_AUTH_NEED_LOGIN,  /* only a person can help (refresh refused: dropped) */
	MCP_AUTH_RENEW_FAILED /* the authorization server could not be asked (retry later) */
};
typedef void (*mcp_auth_renew_fn)(void *arg, enum mcp_auth_renew_result r,
                                  const struct mcp_auth_grant *g, const char *cause);
struct mcp_auth_renew;
/*
 * mcp_auth_renew_start() - a new access token for @def without a person:
 * refresh @grant when it has a refresh token, else for "grant":
 * "client_credentials" discover (from @resource_metadata, the challenge's)
 * and ask the token endpoint; with @scope (a step-up) when not NULL.
 * @fn is called once, never from inside this call.
 */
struct mcp_auth_renew *mcp_auth_renew_start(struct event_base *base,
                                            const struct mcp_auth_store *store,
                                            const struct mcp_server_def *def,
                                            const struct mcp_auth_grant *grant,
                                            const char *resource_metadata, const char *scope,
                                            mcp_auth_renew_fn fn, void *arg);
/* No callback follows. */
void mcp_auth_renew_cancel(struct mcp_auth_renew *r);

#endif
