/*
 * mcp_auth.c - the OAuth flow of mcp_auth.h on the wire: each login or
 * renewal is one struct auth_op, a chain of HTTP exchanges (one at a time)
 * on its own libcurl multi handle driven from the event loop exactly as
 * mcp_http.c drives its own: socket and timer callbacks, no threads, no
 * blocking call. The rules (what to ask, what to accept) are oauth.c's.
 *
 * The chain: [probe the server for its 401 challenge] -> Protected
 * Resource Metadata (in oauth_prm_urls() order) -> authorization server
 * metadata (oauth_as_metadata_urls(), else the 2025-03-26 fallbacks) ->
 * the client (configured, CIMD, else Dynamic Client Registration) -> the
 * authorization URL (login) or the token request (refresh, client
 * credentials) -> the grant, saved through the store.
 *
 * Every owner callback is delivered from a deferred event, never from
 * inside an API call or a libcurl callback. Secrets (tokens, client
 * secrets, the PKCE verifier, the code) are cleansed when freed and never
 * put in a cause.
 */
#include "daemon/mcp/mcp_auth.h"
#include "daemon/mcp/curl_loop.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "common/secmem.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_headers.h"
#include "daemon/mcp/oauth.h"

#define AUTH_HTTP_TIMEOUT_MS 30000
#define AUTH_HEADER_MAX 8192

/* --- grants ------------------------------------------------------------------ */

/* Cleansed, and from the secure heap or not (common/secmem.h). */
static void secret_free(char *s) {
	secmem_free(s);
}

void mcp_auth_grant_clear(struct mcp_auth_grant *g) {
	if (g == NULL)
		return;
	secret_free(g->access_token);
	secret_free(g->refresh_token);
	secret_free(g->client_id);
	secret_free(g->client_secret);
	free(g->scope);
	free(g->issuer);
	free(g->token_endpoint);
	free(g->token_auth_method);
	memset(g, 0, sizeof *g);
}

void mcp_auth_grant_copy(struct mcp_auth_grant *dst, const struct mcp_auth_grant *src) {
	dst->access_token = secmem_strdup(src->access_token);
	dst->refresh_token = secmem_strdup(src->refresh_token);
	dst->scope = xstrdup_or_null(src->scope);
	dst->expires_at_ms = src->expires_at_ms;
	dst->client_id = secmem_strdup(src->client_id);
	dst->client_secret = secmem_strdup(src->client_secret);
	dst->issuer = xstrdup_or_null(src->issuer);
	dst->token_endpoint = xstrdup_or_null(src->token_endpoint);
	dst->obtained_at_ms = src->obtained_at_ms;
	dst->token_auth_method = xstrdup_or_null(src->token_auth_method);
}

/* --- one operation -------------------------------------------------------------- */

enum op_kind { OP_LOGIN, OP_RENEW };
enum op_step {
	ST_PROBE, ST_PRM, ST_AS, ST_REGISTER, ST_WAIT_CODE, ST_EXCHANGE, ST_TOKEN, ST_DONE
};

struct auth_op {
	enum op_kind kind;
	enum op_step step;
	struct event_base *evb;
	struct mcp_auth_store store;
	bool have_store;
	/* the server */
	char *name, *url, *ca_file, *resource;
	struct mcp_auth_def adef;      /* copy of def->auth (zeroed when none) */
	/* what the 401/403 said */
	char *resource_metadata, *challenge_scope;
	/* discovery */
	char **prm_urls, **as_urls;
	size_t prm_i, as_i;
	bool have_prm;
	long probe_open;               /* the probe was answered with this, not 401 */
	struct oauth_prm prm;
	char *issuer;
	struct oauth_as_meta as;
	/* the client */
	char *client_id, *client_secret, *key_pem;
	enum oauth_client_auth auth;
	const char *dcr_method;        /* asked for at registration (static string) */
	/* the login */
	char *redirect_uri, *scope, *state;
	char verifier[OAUTH_PKCE_LEN + 1];
	/* renewal */
	struct mcp_auth_grant old;     /* the grant being refreshed (secret) */
	bool refreshing;
	/* the exchange in flight */
	struct curl_loop loop;   /* its own multi handle on the loop */
	CURL *easy;
	struct curl_slist *hdrs;
	char *req_body;
	char *resp;
	size_t resp_len;
	bool over_cap;
	long status;
	char *www_auth;
	char errbuf[CURL_ERROR_SIZE];
	struct event *deliver;
	/* the outcome, delivered from @deliver */
	bool finished;
	bool ok;
	enum mcp_auth_renew_result rr;
	char *cause;
	struct mcp_auth_grant grant;
	bool url_ready;                /* login: the URL waits for delivery */
	char *auth_url;
	/* owners */
	mcp_auth_url_fn url_fn;
	mcp_auth_done_fn done_fn;
	mcp_auth_renew_fn renew_fn;
	void *arg, *done_arg;
};

struct mcp_auth_login {
	struct auth_op op;
};
struct mcp_auth_renew {
	struct auth_op op;
};

static void op_after_action(struct auth_op *op);
static void op_after_loop(void *arg) {
	op_after_action(arg);
}

static void auth_def_copy_into(struct mcp_auth_def *dst, const struct mcp_auth_def *src) {
	memset(dst, 0, sizeof *dst);
	if (src == NULL)
		return;
	dst->client_id = secmem_strdup(src->client_id);
	dst->client_secret = secmem_strdup(src->client_secret);
	dst->client_metadata_url = xstrdup_or_null(src->client_metadata_url);
	dst->private_key = xstrdup_or_null(src->private_key);
	dst->scope = xstrdup_or_null(src->scope);
	dst->grant = src->grant;
	dst->idp_token_endpoint = xstrdup_or_null(src->idp_token_endpoint);
	dst->idp_client_id = xstrdup_or_null(src->idp_client_id);
	dst->id_token = xstrdup_or_null(src->id_token);
}

static void exchange_reset(struct auth_op *op) {
	if (op->easy != NULL) {
		curl_multi_remove_handle(op->loop.multi, op->easy);
		curl_easy_cleanup(op->easy);
		op->easy = NULL;
	}
	for (struct curl_slist *p = op->hdrs; p != NULL; p = p->next)
		if (strncasecmp(p->data, "Authorization:", 14) == 0)
			OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(op->hdrs);
	op->hdrs = NULL;
	secret_free(op->req_body);
	op->req_body = NULL;
	secret_free(op->resp);
	op->resp = NULL;
	op->resp_len = 0;
	op->over_cap = false;
	op->status = 0;
	free(op->www_auth);
	op->www_auth = NULL;
	op->errbuf[0] = '\0';
}

static void op_free(struct auth_op *op) {
	if (op == NULL)
		return;
	exchange_reset(op);
	curl_loop_clear(&op->loop);
	if (op->deliver)
		event_free(op->deliver);
	free(op->name);
	free(op->url);
	free(op->ca_file);
	free(op->resource);
	free(op->adef.client_id);
	secret_free(op->adef.client_secret);
	free(op->adef.client_metadata_url);
	secret_free(op->adef.private_key);
	free(op->adef.scope);
	free(op->adef.idp_token_endpoint);
	free(op->adef.idp_client_id);
	secret_free(op->adef.id_token);
	free(op->resource_metadata);
	free(op->challenge_scope);
	oauth_strv_free(op->prm_urls);
	oauth_strv_free(op->as_urls);
	oauth_prm_clear(&op->prm);
	free(op->issuer);
	oauth_as_meta_clear(&op->as);
	secret_free(op->client_id);
	secret_free(op->client_secret);
	secret_free(op->key_pem);
	free(op->redirect_uri);
	free(op->scope);
	secret_free(op->state);
	OPENSSL_cleanse(op->verifier, sizeof op->verifier);
	mcp_auth_grant_clear(&op->old);
	mcp_auth_grant_clear(&op->grant);
	free(op->cause);
	free(op->auth_url);
	curl_global_cleanup();
	free(op);
}

/* The owner hears of it from the loop. */
static void op_finish(struct auth_op *op, bool ok, enum mcp_auth_renew_result rr,
                      const char *cause) {
	exchange_reset(op);
	op->step = ST_DONE;
	op->finished = true;
	op->ok = ok;
	op->rr = rr;
	free(op->cause);
	op->cause = xstrdup_or_null(cause);
	event_active(op->deliver, EV_TIMEOUT, 1);
}

static void op_fail(struct auth_op *op, enum mcp_auth_renew_result rr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void op_fail(struct auth_op *op, enum mcp_auth_renew_result rr, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *why = xvasprintf(fmt, ap);
	va_end(ap);
	char *full = xasprintf("server %s: %s", op->name, why);
	op_finish(op, false, rr, full);
	free(full);
	free(why);
}

static void on_deliver(evutil_socket_t fd, short what, void *arg) {
	struct auth_op *op = arg;
	(void)fd;
	(void)what;
	if (op->kind == OP_LOGIN && op->url_ready) {
		op->url_ready = false;
		mcp_auth_url_fn fn = op->url_fn;
		op->url_fn = NULL;
		if (fn)
			fn(op->arg, op->auth_url, NULL);
		return;
	}
	if (!op->finished)
		return;
	if (op->kind == OP_LOGIN) {
		if (op->url_fn != NULL) { /* failed before the URL: the URL callback says so */
			mcp_auth_url_fn fn = op->url_fn;
			void *a = op->arg;
			op->url_fn = NULL;
			op->finished = false; /* the login waits for cancel() */
			fn(a, NULL, op->cause ? op->cause : "login failed");
			return;
		}
		mcp_auth_done_fn fn = op->done_fn;
		void *a = op->done_arg;
		char *cause = xstrdup_or_null(op->cause);
		bool ok = op->ok;
		op_free(op);
		if (fn)
			fn(a, ok, cause);
		free(cause);
		return;
	}
	mcp_auth_renew_fn fn = op->renew_fn;
	void *a = op->arg;
	struct mcp_auth_grant g = op->grant;
	memset(&op->grant, 0, sizeof op->grant);
	char *cause = xstrdup_or_null(op->cause);
	enum mcp_auth_renew_result rr = op->ok ? MCP_AUTH_RENEWED : op->rr;
	op_free(op);
	if (fn)
		fn(a, rr, rr == MCP_AUTH_RENEWED ? &g : NULL, cause);
	mcp_auth_grant_clear(&g);
	free(cause);
}

static size_t on_write(char *buf, size_t size, size_t n, void *arg) {
	struct auth_op *op = arg;
	size_t len = size * n;
	if (op->resp_len + len > OAUTH_BODY_MAX) {
		op->over_cap = true;
		return 0;
	}
	char *grown = xmalloc(op->resp_len + len + 1);
	if (op->resp_len)
		memcpy(grown, op->resp, op->resp_len);
	memcpy(grown + op->resp_len, buf, len);
	secret_free(op->resp); /* no stale copy of a token left behind by realloc */
	op->resp = grown;
	op->resp_len += len;
	op->resp[op->resp_len] = '\0';
	return len;
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg) {
	struct auth_op *op = arg;
	size_t len = size * n;
	static const char name[] = "www-authenticate:";
	if (len > sizeof name - 1 && len < AUTH_HEADER_MAX &&
	    strncasecmp(buf, name, sizeof name - 1) == 0 && op->www_auth == NULL) {
		const char *v = buf + sizeof name - 1;
		size_t vl = len - (sizeof name - 1);
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		op->www_auth = xstrndup(v, vl);
	}
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a new response (after 100) */
		free(op->www_auth);
		op->www_auth = NULL;
	}
	return len;
}

/* Start one exchange: GET when @body is NULL, else POST of @body as @ctype. */
static void op_http(struct auth_op *op, const char *url, const char *body, const char *ctype,
                    const char *authorization) {
	exchange_reset(op);
	CURL *e = op->easy = curl_easy_init();
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, op->step == ST_PROBE ? "Accept: application/json, text/event-stream"
	                                              : "Accept: application/json");
	if (body) {
		char *line = xasprintf("Content-Type: %s", ctype);
		h = curl_slist_append(h, line);
		free(line);
		h = curl_slist_append(h, "Expect:");
	}
	if (authorization) {
		char *line = secmem_asprintf("Authorization: %s", authorization);
		h = curl_slist_append(h, line);
		OPENSSL_cleanse(line, strlen(line));
		free(line);
	}
	op->hdrs = h;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_PRIVATE, op);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, op->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, op);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, op);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)AUTH_HTTP_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mcpjobd/" MCPJOB_VERSION);
	if (op->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, op->ca_file);
	if (body) {
		op->req_body = xstrdup(body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, op->req_body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(op->req_body));
	}
	curl_multi_add_handle(op->loop.multi, e);
}

static const char *origin_of(const char *url, char *buf, size_t n) {
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
		curl_url_get(u, CURLUPART_HOST, &host, 0);
		curl_url_get(u, CURLUPART_PORT, &port, 0);
	}
	snprintf(buf, n, "%s://%s%s%s", scheme ? scheme : "?", host ? host : "?", port ? ":" : "",
	         port ? port : "");
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return buf;
}

/* --- the steps ---------------------------------------------------------------------- */

static void start_prm(struct auth_op *op) {
	char *cause = NULL;
	op->step = ST_PRM;
	oauth_strv_free(op->prm_urls);
	op->prm_urls = oauth_prm_urls(op->url, op->resource_metadata, &cause);
	op->prm_i = 0;
	if (op->prm_urls == NULL) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "%s", cause);
		free(cause);
		return;
	}
	op_http(op, op->prm_urls[0], NULL, NULL, NULL);
}

static void start_as(struct auth_op *op, const char *issuer) {
	char *cause = NULL;
	op->step = ST_AS;
	free(op->issuer);
	op->issuer = xstrdup(issuer);
	oauth_strv_free(op->as_urls);
	op->as_urls = oauth_as_metadata_urls(issuer, &cause);
	op->as_i = 0;
	if (op->as_urls == NULL) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "%s", cause);
		free(cause);
		return;
	}
	op_http(op, op->as_urls[0], NULL, NULL, NULL);
}

static void after_probe(struct auth_op *op, CURLcode rc) {
	if (rc != CURLE_OK) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "cannot reach the server to learn how it is "
		        "authorized: %s", op->errbuf[0] ? op->errbuf : curl_easy_strerror(rc));
		return;
	}
	struct oauth_challenge ch;
	if (op->www_auth && oauth_challenge_parse(op->www_auth, &ch) == 0) {
		if (op->resource_metadata == NULL)
			op->resource_metadata = xstrdup_or_null(ch.resource_metadata);
		if (op->challenge_scope == NULL)
			op->challenge_scope = xstrdup_or_null(ch.scope);
		oauth_challenge_clear(&ch);
	} else if (op->status != 401) {
		/* initialize may be open and tools not: only its metadata can tell. */
		op->probe_open = op->status;
	}
	start_prm(op);
}

static void after_prm(struct auth_op *op, CURLcode rc) {
	char *cause = NULL;
	if (rc == CURLE_OK && op->status == 200 && !op->over_cap) {
		if (oauth_prm_parse(op->resp, op->resp_len, op->url, &op->prm, &cause) < 0) {
			/* A document that does not name this server: refused, no fallback. */
			op_fail(op, MCP_AUTH_RENEW_FAILED, "protected resource metadata refused: %s", cause);
			free(cause);
			return;
		}
		op->have_prm = true;
		if (oauth_endpoint_check("authorization server", op->prm.authorization_servers[0],
		                         &cause) < 0) {
			op_fail(op, MCP_AUTH_RENEW_FAILED, "protected resource metadata refused: %s",
			        cause);
			free(cause);
			return;
		}
		start_as(op, op->prm.authorization_servers[0]);
		return;
	}
	if (op->prm_urls[++op->prm_i] != NULL) {
		op_http(op, op->prm_urls[op->prm_i], NULL, NULL, NULL);
		return;
	}
	if (op->probe_open) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "the server answered HTTP %ld without asking for "
		        "authorization and publishes no protected resource metadata: nothing to log "
		        "in to", op->probe_open);
		return;
	}
	/* 2025-03-26: no PRM; the MCP server's origin is the authorization server. */
	char origin[1024];
	log_info("mcp server %s has no protected resource metadata; trying the 2025-03-26 "
	         "discovery at its origin", op->name);
	start_as(op, origin_of(op->url, origin, sizeof origin));
}

static void choose_client(struct auth_op *op);

static void after_as(struct auth_op *op, CURLcode rc) {
	char *cause = NULL;
	if (rc == CURLE_OK && op->status == 200 && !op->over_cap) {
		int r = op->have_prm
		            ? oauth_as_meta_parse(op->resp, op->resp_len, op->issuer, &op->as, &cause)
		            : oauth_as_meta_parse_legacy(op->resp, op->resp_len, op->issuer, &op->as,
		                                         &cause);
		if (r < 0) {
			op_fail(op, MCP_AUTH_RENEW_FAILED, "authorization server metadata refused: %s",
			        cause);
			free(cause);
			return;
		}
		if (!op->have_prm) {
			free(op->issuer);
			op->issuer = xstrdup(op->as.issuer);
		}
		choose_client(op);
		return;
	}
	if (op->as_urls[++op->as_i] != NULL) {
		op_http(op, op->as_urls[op->as_i], NULL, NULL, NULL);
		return;
	}
	if (op->have_prm) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "authorization server %s publishes no metadata "
		        "(RFC 8414 or OpenID Connect discovery)", op->issuer);
		return;
	}
	/* 2025-03-26 fallback: /authorize, /token, /register at the origin. */
	oauth_as_meta_fallback(op->issuer, &op->as);
	choose_client(op);
}

/* A secret from the configuration (${env:..}, ${credential:..} or literal). */
static char *secret_expand(struct auth_op *op, const char *what, const char *tmpl) {
	char *why = NULL, *v = mcp_headers_expand_secret(tmpl, &why);
	if (v == NULL) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "\"auth\": \"%s\": %s", what, why);
		free(why);
	}
	return v;
}

static void start_token_or_url(struct auth_op *op);

static void start_register(struct auth_op *op) {
	static const char *const prefs[] = {"client_secret_basic", "client_secret_post", "none"};
	const char *method = NULL;
	for (size_t i = 0; op->as.token_auth_methods && i < 3 && method == NULL; i++)
		if (oauth_strv_has(op->as.token_auth_methods, prefs[i]))
			method = prefs[i];
	json_t *req = json_pack("{s:s, s:[s], s:[s,s], s:[s]}", "client_name", "mcpjobd",
	                        "redirect_uris", op->redirect_uri ? op->redirect_uri
	                                                          : "http://127.0.0.1/callback",
	                        "grant_types", "authorization_code", "refresh_token",
	                        "response_types", "code");
	if (method)
		json_object_set_new(req, "token_endpoint_auth_method", json_string(method));
	op->dcr_method = method;
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	op->step = ST_REGISTER;
	op_http(op, op->as.registration_endpoint, body, "application/json", NULL);
	free(body);
}

static void after_register(struct auth_op *op, CURLcode rc) {
	if (rc != CURLE_OK || op->over_cap || op->status / 100 != 2) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "dynamic client registration at %s failed (%s); "
		        "configure \"auth\": {\"client_id\": ...} for this server instead",
		        op->issuer, rc != CURLE_OK ? curl_easy_strerror(rc)
		                    : op->over_cap ? "answer too large" : "HTTP error");
		return;
	}
	json_t *o = json_loadb(op->resp, op->resp_len, 0, NULL);
	const json_t *id = json_object_get(o, "client_id");
	const json_t *sec = json_object_get(o, "client_secret");
	const json_t *m = json_object_get(o, "token_endpoint_auth_method");
	if (!json_is_string(id) || json_string_length(id) == 0) {
		json_decref(o);
		op_fail(op, MCP_AUTH_RENEW_FAILED, "dynamic client registration at %s gave no "
		        "client_id", op->issuer);
		return;
	}
	op->client_id = xstrdup(json_string_value(id));
	if (json_is_string(sec) && json_string_length(sec) > 0)
		op->client_secret = xstrdup(json_string_value(sec));
	char *cause = NULL;
	/* The method registered: as answered, else as asked (RFC 7591 section 3.2.1). */
	const char *method = json_is_string(m) ? json_string_value(m) : op->dcr_method;
	if (method && strcmp(method, "none") == 0)
		op->auth = OAUTH_AUTH_NONE;
	else if (method && strcmp(method, "client_secret_post") == 0 && op->client_secret)
		op->auth = OAUTH_AUTH_SECRET_POST;
	else if (method && strcmp(method, "client_secret_basic") == 0 && op->client_secret)
		op->auth = OAUTH_AUTH_SECRET_BASIC;
	else if (oauth_pick_client_auth(&op->as, op->client_secret != NULL, false, &op->auth,
	                                &cause) < 0) {
		json_decref(o);
		op_fail(op, MCP_AUTH_RENEW_FAILED, "%s", cause);
		free(cause);
		return;
	}
	json_decref(o);
	start_token_or_url(op);
}

/* Configured credentials, then CIMD, then Dynamic Client Registration. */
static void choose_client(struct auth_op *op) {
	char *cause = NULL;
	if (op->adef.client_id) {
		op->client_id = xstrdup(op->adef.client_id);
		if (op->adef.client_secret &&
		    (op->client_secret = secret_expand(op, "client_secret", op->adef.client_secret)) ==
		        NULL)
			return;
		if (op->adef.private_key &&
		    (op->key_pem = secret_expand(op, "private_key", op->adef.private_key)) == NULL)
			return;
		if (oauth_pick_client_auth(&op->as, op->client_secret != NULL, op->key_pem != NULL,
		                           &op->auth, &cause) < 0) {
			op_fail(op, MCP_AUTH_NEED_LOGIN, "%s", cause);
			free(cause);
			return;
		}
		start_token_or_url(op);
		return;
	}
	if (op->kind == OP_RENEW) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "\"grant\": \"%s\" needs \"auth\": "
		        "{\"client_id\": ...}", op->adef.grant == MCP_GRANT_JWT_BEARER
		                                    ? "jwt_bearer" : "client_credentials");
		return;
	}
	if (op->adef.client_metadata_url && op->as.client_id_metadata_document_supported) {
		op->client_id = xstrdup(op->adef.client_metadata_url);
		op->auth = OAUTH_AUTH_NONE;
		start_token_or_url(op);
		return;
	}
	if (op->as.registration_endpoint == NULL) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "authorization server %s offers no dynamic client "
		        "registration%s: configure \"auth\": {\"client_id\": ...} for this server",
		        op->issuer, op->adef.client_metadata_url ? " nor client ID metadata documents"
		                                                 : "");
		return;
	}
	start_register(op);
}

/* Whether the space-separated @scope has @word (of length @n). */
static bool scope_has_word(const char *scope, const char *word, size_t n) {
	for (const char *p = scope; *p;) {
		size_t l = strcspn(p, " ");
		if (l == n && strncmp(p, word, n) == 0)
			return true;
		p += l;
		p += strspn(p, " ");
	}
	return false;
}

/*
 * The configured scope (with what a challenge asks for added: a step-up),
 * else as the specification says: the challenge's, else the resource's
 * scopes_supported, else none; offline_access only where it is listed.
 */
static char *scope_for(struct auth_op *op, bool want_refresh) {
	if (op->adef.scope == NULL)
		return oauth_choose_scope(op->challenge_scope,
		                          op->have_prm ? &op->prm : NULL, &op->as, want_refresh);
	char *scope = xstrdup(op->adef.scope);
	for (const char *p = op->challenge_scope ? op->challenge_scope : ""; *p;) {
		size_t l = strcspn(p, " ");
		if (l > 0 && !scope_has_word(scope, p, l)) {
			char *more = xasprintf("%s %.*s", scope, (int)l, p);
			free(scope);
			scope = more;
		}
		p += l;
		p += strspn(p, " ");
	}
	return scope;
}

/* POST a token request's form (and its Authorization, if any) to @url; @req is cleared. */
static void op_post_form(struct auth_op *op, enum op_step step, const char *url,
                         struct oauth_token_request *req) {
	op->step = step;
	op_http(op, url, req->body, "application/x-www-form-urlencoded", req->authorization);
	oauth_token_request_clear(req);
}

static void start_client_credentials(struct auth_op *op) {
	struct oauth_token_request req;
	struct oauth_client c = {op->client_id, op->client_secret, op->key_pem, op->auth};
	char *cause = NULL, *scope = scope_for(op, false);
	int r = oauth_token_request_client_credentials(&c, &op->as, op->resource, scope,
	                                               time_now_ms(), &req, &cause);
	free(op->scope);
	op->scope = scope;
	if (r < 0) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "client_credentials request: %s", cause);
		free(cause);
		return;
	}
	op_post_form(op, ST_TOKEN, op->as.token_endpoint, &req);
}

/* SEP-990, first leg: the IdP's ID token for an ID-JAG for this server. */
static void start_exchange(struct auth_op *op) {
	struct oauth_token_request req;
	if (op->adef.idp_token_endpoint == NULL || op->adef.id_token == NULL) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "\"grant\": \"jwt_bearer\" needs \"auth\": "
		        "{\"idp_token_endpoint\": ..., \"id_token\": ...}");
		return;
	}
	char *cause = NULL;
	if (oauth_endpoint_check("identity provider token endpoint", op->adef.idp_token_endpoint,
	                         &cause) < 0) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "%s", cause);
		free(cause);
		return;
	}
	char *id_token = secret_expand(op, "id_token", op->adef.id_token);
	if (id_token == NULL)
		return;
	free(op->scope);
	op->scope = scope_for(op, false);
	oauth_token_request_token_exchange(op->adef.idp_client_id, id_token, op->as.issuer,
	                                   op->resource, op->scope, &req);
	secret_free(id_token);
	op_post_form(op, ST_EXCHANGE, op->adef.idp_token_endpoint, &req);
}

/* Second leg: the ID-JAG as a JWT bearer grant at the server's authorization server. */
static void after_exchange(struct auth_op *op, CURLcode rc) {
	char *cause = NULL;
	if (rc != CURLE_OK || op->over_cap) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "identity provider token endpoint: %s",
		        op->over_cap ? "answer too large: refused" : curl_easy_strerror(rc));
		return;
	}
	char *jag = oauth_id_jag_parse(op->resp, op->resp_len, &cause);
	if (jag == NULL) {
		op_fail(op, op->status / 100 == 4 ? MCP_AUTH_NEED_LOGIN : MCP_AUTH_RENEW_FAILED,
		        "%s (HTTP %ld)", cause, op->status);
		free(cause);
		return;
	}
	struct oauth_token_request req;
	struct oauth_client c = {op->client_id, op->client_secret, op->key_pem, op->auth};
	int r = oauth_token_request_jwt_bearer(&c, &op->as, jag, op->resource, op->scope,
	                                       time_now_ms(), &req, &cause);
	secret_free(jag);
	if (r < 0) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "jwt-bearer request: %s", cause);
		free(cause);
		return;
	}
	op_post_form(op, ST_TOKEN, op->as.token_endpoint, &req);
}

static void start_token_or_url(struct auth_op *op) {
	if (op->kind == OP_RENEW) {
		if (op->adef.grant == MCP_GRANT_JWT_BEARER)
			start_exchange(op);
		else
			start_client_credentials(op);
		return;
	}
	if (!oauth_as_supports_s256(&op->as)) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "authorization server %s does not support PKCE with "
		        "S256 (code_challenge_methods_supported): refusing to log in", op->issuer);
		return;
	}
	char challenge[OAUTH_PKCE_LEN + 1];
	if (oauth_pkce_new(op->verifier, challenge) < 0) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "no randomness for PKCE");
		return;
	}
	op->state = oauth_random_string(32);
	op->scope = scope_for(op, true);
	op->auth_url = oauth_authorize_url(&op->as, op->client_id, op->redirect_uri, op->scope,
	                                   op->state, challenge, op->resource);
	op->step = ST_WAIT_CODE;
	op->url_ready = true;
	event_active(op->deliver, EV_TIMEOUT, 1);
}

/* A token response: the grant, saved. */
static void after_token(struct auth_op *op, CURLcode rc) {
	if (op->over_cap) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "token endpoint of %s sent more than %d bytes: "
		        "refused", op->issuer, OAUTH_BODY_MAX);
		return;
	}
	if (rc != CURLE_OK) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "token endpoint of %s: %s", op->issuer,
		        op->errbuf[0] ? op->errbuf : curl_easy_strerror(rc));
		return;
	}
	struct oauth_tokens t;
	char *cause = NULL;
	if (oauth_tokens_parse(op->resp, op->resp_len, time_now_ms(), &t, &cause) < 0) {
		bool invalid = strstr(cause, "invalid_grant") != NULL;
		enum mcp_auth_renew_result rr = op->refreshing && invalid ? MCP_AUTH_NEED_LOGIN
		                              : op->kind == OP_RENEW && op->status / 100 == 4
		                                  ? MCP_AUTH_NEED_LOGIN : MCP_AUTH_RENEW_FAILED;
		if (op->refreshing && invalid && op->have_store && op->store.drop)
			op->store.drop(op->store.arg, op->name, "the authorization server refused the "
			               "refresh token (invalid_grant)");
		op_fail(op, rr, "token endpoint of %s (HTTP %ld): %s", op->issuer, op->status, cause);
		free(cause);
		return;
	}
	struct mcp_auth_grant *g = &op->grant;
	g->access_token = t.access_token;
	g->refresh_token = t.refresh_token;
	if (g->refresh_token == NULL && op->refreshing)
		g->refresh_token = xstrdup_or_null(op->old.refresh_token); /* not rotated */
	g->scope = t.scope ? t.scope : xstrdup_or_null(op->refreshing ? op->old.scope : op->scope);
	g->expires_at_ms = t.expires_at_ms;
	g->client_id = xstrdup(op->client_id);
	g->client_secret = xstrdup_or_null(op->client_secret);
	g->issuer = xstrdup(op->issuer ? op->issuer : "");
	g->token_endpoint = xstrdup_or_null(op->as.token_endpoint);
	g->obtained_at_ms = time_now_ms();
	g->token_auth_method = xstrdup(oauth_client_auth_name(op->auth));
	if (op->have_store && op->store.save &&
	    op->store.save(op->store.arg, op->name, g, &cause) < 0) {
		op_fail(op, MCP_AUTH_RENEW_FAILED, "the new grant could not be kept: %s",
		        cause ? cause : "store failed");
		free(cause);
		return;
	}
	op_finish(op, true, MCP_AUTH_RENEWED, NULL);
}

/* Which step's answer came back. */
static void op_next_done(struct auth_op *op, CURLcode rc) {
	switch (op->step) {
	case ST_PROBE: after_probe(op, rc); break;
	case ST_PRM: after_prm(op, rc); break;
	case ST_AS: after_as(op, rc); break;
	case ST_REGISTER: after_register(op, rc); break;
	case ST_EXCHANGE: after_exchange(op, rc); break;
	case ST_TOKEN: after_token(op, rc); break;
	case ST_WAIT_CODE:
	case ST_DONE: break;
	}
}

static void op_after_action(struct auth_op *op) {
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(op->loop.multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE || m->easy_handle != op->easy)
			continue;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &op->status);
		op_next_done(op, rc);
		return; /* one exchange at a time: the next one (if any) is started */
	}
}

static struct auth_op *op_new(struct event_base *base, const struct mcp_auth_store *store,
                              const struct mcp_server_def *def, enum op_kind kind) {
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct auth_op *op = xcalloc(1, sizeof *op);
	op->kind = kind;
	op->evb = base;
	if (store) {
		op->store = *store;
		op->have_store = true;
	}
	op->name = xstrdup(def->name);
	op->url = xstrdup(def->url);
	op->ca_file = xstrdup_or_null(def->ca_file);
	auth_def_copy_into(&op->adef, def->auth);
	char *why = NULL;
	op->resource = oauth_canonical_resource(def->url, &why);
	free(why);
	curl_loop_init(&op->loop, base, op_after_loop, op);
	op->deliver = event_new(base, -1, 0, on_deliver, op);
	return op;
}

/* --- logins ----------------------------------------------------------------------- */


static bool redirect_ok(const char *uri) {
	char origin[1024];
	if (uri == NULL || strncmp(uri, "http://", 7) != 0)
		return uri != NULL && strncmp(uri, "https://", 8) == 0;
	origin_of(uri, origin, sizeof origin);
	const char *host = origin + 7;
	return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost", 9) == 0 ||
	       strncmp(host, "[::1]", 5) == 0;
}

struct mcp_auth_login *mcp_auth_login_start(struct mcp_pool *pool, const char *server,
                                            const char *redirect_uri, mcp_auth_url_fn url_fn,
                                            void *arg, char **cause) {
	(void)secmem_need(); /* where the grant will sit (mcp_http_open says when it fails) */
	const struct mcp_server_def *def = mcp_pool_find_server(pool, server);
	if (def == NULL) {
		*cause = xasprintf("no server %s in \"mcpServers\"", server);
		return NULL;
	}
	if (def->type == MCP_SERVER_STDIO || def->url == NULL) {
		*cause = xasprintf("server %s is not an http or sse server: it has no login", server);
		return NULL;
	}
	if (def->auth && def->auth->grant != MCP_GRANT_AUTHORIZATION_CODE) {
		*cause = xasprintf("server %s uses \"grant\": \"%s\": no person logs it in", server,
		                   def->auth->grant == MCP_GRANT_JWT_BEARER ? "jwt_bearer"
		                                                            : "client_credentials");
		return NULL;
	}
	if (!redirect_ok(redirect_uri)) {
		*cause = xasprintf("the redirect URI for server %s must be https or http on a "
		                   "loopback address (RFC 8252)", server);
		return NULL;
	}
	struct auth_op *op = op_new(mcp_pool_base(pool), mcp_pool_auth_store(pool), def, OP_LOGIN);
	op->redirect_uri = xstrdup(redirect_uri);
	op->url_fn = url_fn;
	op->arg = arg;
	const char *rm = NULL, *sc = NULL;
	mcp_pool_auth_hint_get(pool, server, &rm, &sc);
	op->resource_metadata = xstrdup_or_null(rm);
	op->challenge_scope = xstrdup_or_null(sc);
	if (rm != NULL || sc != NULL) {
		start_prm(op);
	} else {
		/* Learn the challenge: an initialize without a token. */
		op->step = ST_PROBE;
		op_http(op, op->url,
		        "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
		        "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"
		        "\"name\":\"mcpjobd\",\"version\":\"" MCPJOB_VERSION "\"}}}",
		        "application/json", NULL);
	}
	return (struct mcp_auth_login *)op;
}

void mcp_auth_login_finish(struct mcp_auth_login *login, const char *code, const char *state,
                           mcp_auth_done_fn done_fn, void *arg) {
	struct auth_op *op = (struct auth_op *)login;
	op->done_fn = done_fn;
	op->done_arg = arg;
	if (op->step != ST_WAIT_CODE) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "the login is not waiting for a code");
		return;
	}
	if (state == NULL || strlen(state) != strlen(op->state) ||
	    CRYPTO_memcmp(state, op->state, strlen(op->state)) != 0) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "the redirect's state is not this login's (a "
		        "forged or stale redirect): refused, nothing stored");
		return;
	}
	if (code == NULL || *code == '\0') {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "the redirect carried no code");
		return;
	}
	struct oauth_token_request req;
	struct oauth_client c = {op->client_id, op->client_secret, op->key_pem, op->auth};
	char *cause = NULL;
	if (oauth_token_request_code(&c, &op->as, code, op->redirect_uri, op->verifier,
	                             op->resource, time_now_ms(), &req, &cause) < 0) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "token request: %s", cause);
		free(cause);
		return;
	}
	op_post_form(op, ST_TOKEN, op->as.token_endpoint, &req);
}

void mcp_auth_login_cancel(struct mcp_auth_login *login) {
	op_free((struct auth_op *)login);
}

/* --- renewals ------------------------------------------------------------------- */

static enum oauth_client_auth auth_by_name(const char *name, bool have_secret) {
	if (name && strcmp(name, "client_secret_post") == 0)
		return OAUTH_AUTH_SECRET_POST;
	if (name && strcmp(name, "none") == 0)
		return OAUTH_AUTH_NONE;
	if (name && strcmp(name, "client_secret_basic") == 0)
		return OAUTH_AUTH_SECRET_BASIC;
	return have_secret ? OAUTH_AUTH_SECRET_BASIC : OAUTH_AUTH_NONE;
}

static void start_refresh(struct auth_op *op) {
	const struct mcp_auth_grant *g = &op->old;
	struct oauth_token_request req;
	op->client_id = xstrdup(g->client_id);
	op->client_secret = xstrdup_or_null(g->client_secret);
	op->auth = auth_by_name(g->token_auth_method, g->client_secret != NULL);
	op->issuer = xstrdup_or_null(g->issuer);
	op->as.issuer = xstrdup_or_null(g->issuer);
	op->as.token_endpoint = xstrdup(g->token_endpoint);
	op->refreshing = true;
	struct oauth_client c = {op->client_id, op->client_secret, NULL, op->auth};
	char *cause = NULL;
	if (oauth_token_request_refresh(&c, &op->as, g->refresh_token, op->resource, op->scope,
	                                time_now_ms(), &req, &cause) < 0) {
		op_fail(op, MCP_AUTH_NEED_LOGIN, "refresh request: %s", cause);
		free(cause);
		return;
	}
	op_post_form(op, ST_TOKEN, op->as.token_endpoint, &req);
}

/* Fails from the loop when there is nothing to renew with. */
static void renew_nothing(struct auth_op *op) {
	op_finish(op, false, MCP_AUTH_NEED_LOGIN, NULL);
	free(op->cause);
	op->cause = xasprintf("waiting for authorization: run `mcpjobctl auth login %s`",
	                      op->name);
}

struct mcp_auth_renew *mcp_auth_renew_start(struct event_base *base,
                                            const struct mcp_auth_store *store,
                                            const struct mcp_server_def *def,
                                            const struct mcp_auth_grant *grant,
                                            const char *resource_metadata, const char *scope,
                                            mcp_auth_renew_fn fn, void *arg) {
	struct auth_op *op = op_new(base, store, def, OP_RENEW);
	op->renew_fn = fn;
	op->arg = arg;
	op->resource_metadata = xstrdup_or_null(resource_metadata);
	op->challenge_scope = xstrdup_or_null(scope);
	bool cc = def->auth && def->auth->grant != MCP_GRANT_AUTHORIZATION_CODE;
	if (grant && grant->refresh_token && grant->token_endpoint && grant->client_id && !scope) {
		mcp_auth_grant_copy(&op->old, grant);
		start_refresh(op);
	} else if (cc) {
		start_prm(op);
	} else {
		renew_nothing(op);
	}
	return (struct mcp_auth_renew *)op;
}

void mcp_auth_renew_cancel(struct mcp_auth_renew *r) {
	op_free((struct auth_op *)r);
}
