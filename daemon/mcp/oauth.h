/*
 * oauth.h - the pieces of OAuth 2.1 that the MCP specification (2025-11-25,
 * "Authorization") asks of a client, as functions without I/O: what a 401
 * or 403 says (WWW-Authenticate, RFC 6750 / RFC 9728), where to look for
 * the protected resource's and the authorization server's metadata and in
 * which order (RFC 9728, RFC 8414, OpenID Connect Discovery, and the
 * 2025-03-26 fallbacks), what to accept in them, which scope to ask for,
 * the authorization URL and token request bodies (PKCE S256, RFC 8707
 * resource, client authentication as the server advertises), and what to
 * accept in a token response.
 *
 * The transport (daemon/mcp/mcp_http.c) does the requests; this module decides
 * them, so the rules are tested by table, and a hostile server's metadata
 * is refused here with a sentence that says why.
 *
 * Nothing here logs or returns a secret in a cause: token values, client
 * secrets and codes appear only in the request bodies built for the wire.
 */
#ifndef MCPJOB_OAUTH_H
#define MCPJOB_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bodies larger than this are refused (metadata, token responses). */
#define OAUTH_BODY_MAX (64 * 1024)

/* A Bearer challenge from WWW-Authenticate; absent parameters are NULL. */
struct oauth_challenge {
	char *resource_metadata;
	char *scope;
	char *error;
	char *error_description;
};

/*
 * oauth_challenge_parse() - the Bearer challenge in a WWW-Authenticate
 * value (RFC 9110 auth-params, quoted or not; other schemes skipped).
 * Returns 0, or -1 when the value holds no Bearer challenge.
 */
int oauth_challenge_parse(const char *header, struct oauth_challenge *out);
void oauth_challenge_clear(struct oauth_challenge *c);

/* A NULL-terminated list of URLs to try, in order; free with oauth_strv_free(). */
void oauth_strv_free(char **v);

/*
 * oauth_prm_urls() - where the Protected Resource Metadata of the MCP
 * server at @server_url may be: the challenge's resource_metadata when
 * given, else the path-based well-known URL, then the root one (RFC 9728
 * section 3.1, as the MCP specification orders them).
 */
char **oauth_prm_urls(const char *server_url, const char *resource_metadata, char **cause);

/*
 * oauth_as_metadata_urls() - for an issuer with a path, RFC 8414 with path
 * insertion, OpenID Connect with path insertion, OpenID Connect with the
 * path appended; without a path, RFC 8414 then OpenID Connect.
 */
char **oauth_as_metadata_urls(const char *issuer, char **cause);

struct oauth_prm {
	char *resource;
	char **authorization_servers; /* at least one */
	char **scopes_supported;      /* may be NULL */
};

/*
 * oauth_prm_parse() - accept a Protected Resource Metadata document for the
 * MCP server at @server_url: its "resource" must name that server (same
 * origin, and a path that is the server's or a parent of it, RFC 9728
 * section 3.3 / RFC 8707), and it must list an authorization server.
 */
int oauth_prm_parse(const char *body, size_t len, const char *server_url, struct oauth_prm *out,
                    char **cause);
void oauth_prm_clear(struct oauth_prm *p);

struct oauth_as_meta {
	char *issuer;
	char *authorization_endpoint;
	char *token_endpoint;
	char *registration_endpoint;   /* may be NULL */
	char **scopes_supported;       /* may be NULL */
	char **code_challenge_methods; /* may be NULL: then no PKCE, refused for a person's login */
	char **token_auth_methods;     /* token_endpoint_auth_methods_supported, may be NULL */
	char **grant_types;            /* may be NULL */
	bool client_id_metadata_document_supported;
};

/*
 * oauth_as_meta_parse() - accept authorization server metadata fetched for
 * @issuer: "issuer" must be identical (RFC 8414 section 3.3), endpoints
 * must be https (or http on a loopback address, for tests and local
 * servers).
 */
int oauth_as_meta_parse(const char *body, size_t len, const char *issuer,
                        struct oauth_as_meta *out, char **cause);
/*
 * oauth_as_meta_parse_legacy() - the 2025-03-26 discovery (no Protected
 * Resource Metadata): the metadata at the MCP server's origin @base_url
 * names its own issuer, which must be on that same origin; otherwise as
 * oauth_as_meta_parse().
 */
int oauth_as_meta_parse_legacy(const char *body, size_t len, const char *base_url,
                               struct oauth_as_meta *out, char **cause);
/* The 2025-03-26 fallback for a server with no metadata: /authorize, /token, /register. */
void oauth_as_meta_fallback(const char *issuer, struct oauth_as_meta *out);
void oauth_as_meta_clear(struct oauth_as_meta *m);
/* True when the server supports PKCE with S256 (a login may proceed). */
bool oauth_as_supports_s256(const struct oauth_as_meta *m);
bool oauth_strv_has(char *const *v, const char *s);

/*
 * oauth_choose_scope() - the scope to ask for: the challenge's, else all of
 * the resource's scopes_supported, else none (NULL); with "offline_access"
 * added when @want_refresh and the authorization server lists it.
 */
char *oauth_choose_scope(const char *challenge_scope, const struct oauth_prm *prm,
                         const struct oauth_as_meta *as, bool want_refresh);

/* How the client authenticates at the token endpoint. */
enum oauth_client_auth {
	OAUTH_AUTH_NONE,           /* a public client: client_id in the body */
	OAUTH_AUTH_SECRET_BASIC,   /* HTTP Basic with client_id:client_secret */
	OAUTH_AUTH_SECRET_POST,    /* both in the body */
	OAUTH_AUTH_PRIVATE_KEY_JWT /* a signed client_assertion (RFC 7523) */
};
const char *oauth_client_auth_name(enum oauth_client_auth a);
/*
 * oauth_pick_client_auth() - what the server advertises that we can do:
 * with a secret, client_secret_basic (the RFC 6749 default) unless only
 * client_secret_post is listed; with a key, private_key_jwt; else none.
 * Returns -1 with *@cause when nothing listed fits what we have.
 */
int oauth_pick_client_auth(const struct oauth_as_meta *as, bool have_secret, bool have_key,
                           enum oauth_client_auth *out, char **cause);

/* PKCE (RFC 7636, S256 only): a 43-character verifier and its challenge. */
#define OAUTH_PKCE_LEN 43
int oauth_pkce_new(char verifier[OAUTH_PKCE_LEN + 1], char challenge[OAUTH_PKCE_LEN + 1]);
/* The S256 challenge of @verifier: base64url(SHA-256(verifier)). */
void oauth_pkce_challenge(const char *verifier, char challenge[OAUTH_PKCE_LEN + 1]);
/* An unguessable value for "state" (and jti): @nbytes random bytes, base64url. */
char *oauth_random_string(size_t nbytes);

/*
 * oauth_authorize_url() - the URL a person opens: response_type=code,
 * client_id, redirect_uri, state, code_challenge (S256), resource, and
 * scope when not NULL.
 */
char *oauth_authorize_url(const struct oauth_as_meta *as, const char *client_id,
                          const char *redirect_uri, const char *scope, const char *state,
                          const char *code_challenge, const char *resource);

/* A token request: the form body and, for client_secret_basic, the Authorization header. */
struct oauth_token_request {
	char *body;          /* application/x-www-form-urlencoded */
	char *authorization; /* "Basic ..." or NULL */
};
void oauth_token_request_clear(struct oauth_token_request *r);

struct oauth_client {
	const char *client_id;
	const char *client_secret; /* may be NULL */
	const char *key_pem;       /* private_key_jwt: PEM private key, may be NULL */
	enum oauth_client_auth auth;
};

/* grant_type=authorization_code with the PKCE verifier and resource. */
int oauth_token_request_code(const struct oauth_client *c, const struct oauth_as_meta *as,
                             const char *code, const char *redirect_uri, const char *verifier,
                             const char *resource, int64_t now_ms,
                             struct oauth_token_request *out, char **cause);
/* grant_type=refresh_token. */
int oauth_token_request_refresh(const struct oauth_client *c, const struct oauth_as_meta *as,
                                const char *refresh_token, const char *resource,
                                const char *scope, int64_t now_ms,
                                struct oauth_token_request *out, char **cause);
/* grant_type=client_credentials (machine to machine). */
int oauth_token_request_client_credentials(const struct oauth_client *c,
                                           const struct oauth_as_meta *as, const char *resource,
                                           const char *scope, int64_t now_ms,
                                           struct oauth_token_request *out, char **cause);

/*
 * SEP-990 (Enterprise-Managed Authorization): oauth_token_request_token_exchange()
 * - RFC 8693 at the enterprise IdP: @id_token (its own ID token for us) for
 * an ID-JAG whose audience is the MCP server's authorization server
 * @audience, for @resource. oauth_token_request_jwt_bearer() - RFC 7523 at
 * that authorization server: the ID-JAG @assertion, with the client's own
 * authentication. oauth_id_jag_parse() - the ID-JAG from the exchange's
 * answer (issued_token_type id-jag), or NULL with *@cause (never quoting it).
 */
int oauth_token_request_token_exchange(const char *idp_client_id, const char *id_token,
                                       const char *audience, const char *resource,
                                       const char *scope, struct oauth_token_request *out);
int oauth_token_request_jwt_bearer(const struct oauth_client *c, const struct oauth_as_meta *as,
                                   const char *assertion, const char *resource,
                                   const char *scope, int64_t now_ms,
                                   struct oauth_token_request *out, char **cause);
char *oauth_id_jag_parse(const char *body, size_t len, char **cause);

struct oauth_tokens {
	char *access_token;
	char *refresh_token;   /* may be NULL */
	char *scope;           /* granted, may be NULL */
	int64_t expires_at_ms; /* 0: the server did not say */
};

/*
 * oauth_tokens_parse() - accept a token endpoint response: a JSON object
 * with a non-empty access_token and token_type Bearer; an error response
 * ({"error": ...}) becomes a cause naming the error and its description.
 * Oversized, malformed or non-Bearer responses are refused; the cause
 * never quotes a token.
 */
int oauth_tokens_parse(const char *body, size_t len, int64_t now_ms, struct oauth_tokens *out,
                       char **cause);
void oauth_tokens_clear(struct oauth_tokens *t);

/*
 * oauth_jwt_assertion() - a client assertion for private_key_jwt (RFC 7523
 * section 2.2): iss and sub @client_id, aud @audience, iat, exp (+5 min),
 * a random jti; signed RS256 for an RSA key, ES256 for a P-256 key.
 */
char *oauth_jwt_assertion(const char *key_pem, const char *client_id, const char *audience,
                          int64_t now_ms, char **cause);

/* 0 when @url is https (or http on a loopback address); -1 with *@cause naming @what. */
int oauth_endpoint_check(const char *what, const char *url, char **cause);

/* Canonical form of a server URL for "resource" (lowercase scheme and host, no fragment,
 * no trailing slash on an empty path). NULL with *@cause when it is not an absolute URL. */
char *oauth_canonical_resource(const char *url, char **cause);

#endif
