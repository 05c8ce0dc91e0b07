/*
 * oauth.c - OAuth 2.1 for MCP clients without I/O; see oauth.h.
 *
 * URLs are taken apart and put together by libcurl's URL API (CURLU), form
 * values escaped by curl_easy_escape(), randomness, hashes and signatures
 * come from libcrypto: nothing here parses a URL or signs by hand.
 */
#include "daemon/mcp/oauth.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/strv.h"
#include "common/secmem.h"
#include "common/xmalloc.h"

/* --- small helpers ------------------------------------------------------- */

void oauth_strv_free(char **v) {
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static void strv_push(char ***v, size_t *n, char *s) {
	*v = xreallocarray(*v, *n + 2, sizeof **v);
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

bool oauth_strv_has(char *const *v, const char *s) {
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* A URL's parts; NULL when @url is not an absolute http(s) URL. */
struct url_parts {
	char *scheme, *host, *port, *path;
};

static void url_parts_clear(struct url_parts *u) {
	curl_free(u->scheme);
	curl_free(u->host);
	curl_free(u->port);
	curl_free(u->path);
	memset(u, 0, sizeof *u);
}

static int url_split(const char *url, struct url_parts *u, char **cause) {
	CURLU *h = curl_url();
	memset(u, 0, sizeof *u);
	if (h == NULL || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &u->scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &u->host, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PATH, &u->path, 0) != CURLUE_OK) {
		curl_url_cleanup(h);
		url_parts_clear(u);
		*cause = xasprintf("\"%s\" is not an absolute URL", url);
		return -1;
	}
	if (curl_url_get(h, CURLUPART_PORT, &u->port, 0) != CURLUE_OK)
		u->port = NULL;
	curl_url_cleanup(h);
	if (strcasecmp(u->scheme, "https") != 0 && strcasecmp(u->scheme, "http") != 0) {
		*cause = xasprintf("\"%s\" is not an http or https URL", url);
		url_parts_clear(u);
		return -1;
	}
	for (char *p = u->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = u->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* scheme://host[:port] */
static char *url_origin(const struct url_parts *u) {
	return u->port ? xasprintf("%s://%s:%s", u->scheme, u->host, u->port)
	               : xasprintf("%s://%s", u->scheme, u->host);
}

/* The path without a trailing slash ("" for the root). */
static char *path_trimmed(const char *path) {
	size_t n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	return xstrndup(path, n);
}

char *oauth_canonical_resource(const char *url, char **cause) {
	struct url_parts u;
	if (url_split(url, &u, cause) < 0)
		return NULL;
	char *origin = url_origin(&u), *path = path_trimmed(u.path);
	char *out = xasprintf("%s%s", origin, path);
	free(origin);
	free(path);
	url_parts_clear(&u);
	return out;
}

static bool host_is_loopback(const char *host) {
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* https anywhere; http only to this machine (local servers, tests). */
static int endpoint_ok(const char *what, const char *url, char **cause) {
	struct url_parts u;
	char *why = NULL;
	if (url_split(url, &u, &why) < 0) {
		*cause = xasprintf("the %s %s", what, why);
		free(why);
		return -1;
	}
	int r = strcmp(u.scheme, "https") == 0 || host_is_loopback(u.host) ? 0 : -1;
	if (r < 0)
		*cause = xasprintf("the %s %s is not https (an authorization server must be reached "
		                   "over TLS)", what, url);
	url_parts_clear(&u);
	return r;
}

/* --- WWW-Authenticate ------------------------------------------------------ */

int oauth_endpoint_check(const char *what, const char *url, char **cause) {
	return endpoint_ok(what, url, cause);
}

static const char *skip_ws(const char *p) {
	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	return p;
}

/* token68 / token characters (RFC 9110). */
static bool is_tchar(char c) {
	return c != '\0' && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c));
}

/* One auth-param value, quoted (with \-escapes) or a token. */
static const char *param_value(const char *p, char **out) {
	if (*p == '"') {
		size_t cap = strlen(p), n = 0;
		char *v = xmalloc(cap + 1);
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			v[n++] = *p;
		}
		v[n] = '\0';
		*out = v;
		return *p == '"' ? p + 1 : p;
	}
	const char *s = p;
	while (*p && *p != ',' && *p != ' ' && *p != '\t')
		p++;
	*out = xstrndup(s, (size_t)(p - s));
	return p;
}

int oauth_challenge_parse(const char *header, struct oauth_challenge *out) {
	const char *p = header;
	bool in_bearer = false, found = false;
	memset(out, 0, sizeof *out);
	while (*(p = skip_ws(p))) {
		const char *name = p;
		while (is_tchar(*p))
			p++;
		size_t nlen = (size_t)(p - name);
		if (nlen == 0) {
			p++; /* junk: step over it */
			continue;
		}
		const char *q = p;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=') { /* a new scheme */
			in_bearer = nlen == 6 && strncasecmp(name, "Bearer", 6) == 0;
			found = found || in_bearer;
			continue;
		}
		if (q[1] == '=' || q[1] == '\0') { /* token68 ("abc==") of some scheme */
			while (*p && *p != ',')
				p++;
			continue;
		}
		char *val = NULL;
		const char *v = q + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		p = param_value(v, &val);
		char **slot = NULL;
		if (in_bearer) {
			if (nlen == 17 && strncasecmp(name, "resource_metadata", 17) == 0)
				slot = &out->resource_metadata;
			else if (nlen == 5 && strncasecmp(name, "scope", 5) == 0)
				slot = &out->scope;
			else if (nlen == 5 && strncasecmp(name, "error", 5) == 0)
				slot = &out->error;
			else if (nlen == 17 && strncasecmp(name, "error_description", 17) == 0)
				slot = &out->error_description;
		}
		if (slot && *slot == NULL)
			*slot = val;
		else
			free(val);
	}
	return found ? 0 : -1;
}

void oauth_challenge_clear(struct oauth_challenge *c) {
	free(c->resource_metadata);
	free(c->scope);
	free(c->error);
	free(c->error_description);
	memset(c, 0, sizeof *c);
}

/* --- discovery URLs --------------------------------------------------------------- */

char **oauth_prm_urls(const char *server_url, const char *resource_metadata, char **cause) {
	struct url_parts u;
	char **v = NULL;
	size_t n = 0;
	if (url_split(server_url, &u, cause) < 0)
		return NULL;
	char *origin = url_origin(&u), *path = path_trimmed(u.path);
	if (resource_metadata && *resource_metadata)
		strv_push(&v, &n, xstrdup(resource_metadata));
	if (*path)
		strv_push(&v, &n, xasprintf("%s/.well-known/oauth-protected-resource%s", origin, path));
	strv_push(&v, &n, xasprintf("%s/.well-known/oauth-protected-resource", origin));
	free(origin);
	free(path);
	url_parts_clear(&u);
	return v;
}

char **oauth_as_metadata_urls(const char *issuer, char **cause) {
	struct url_parts u;
	char **v = NULL;
	size_t n = 0;
	if (url_split(issuer, &u, cause) < 0)
		return NULL;
	char *origin = url_origin(&u), *path = path_trimmed(u.path);
	if (*path) {
		strv_push(&v, &n, xasprintf("%s/.well-known/oauth-authorization-server%s", origin, path));
		strv_push(&v, &n, xasprintf("%s/.well-known/openid-configuration%s", origin, path));
		strv_push(&v, &n, xasprintf("%s%s/.well-known/openid-configuration", origin, path));
	} else {
		strv_push(&v, &n, xasprintf("%s/.well-known/oauth-authorization-server", origin));
		strv_push(&v, &n, xasprintf("%s/.well-known/openid-configuration", origin));
	}
	free(origin);
	free(path);
	url_parts_clear(&u);
	return v;
}

/* --- metadata ------------------------------------------------------------------------ */

static json_t *parse_object(const char *what, const char *body, size_t len, char **cause) {
	json_error_t err;
	if (len > OAUTH_BODY_MAX) {
		*cause = xasprintf("the %s is larger than %d KiB", what, OAUTH_BODY_MAX / 1024);
		return NULL;
	}
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(o)) {
		*cause = o ? xasprintf("the %s is not a JSON object", what)
		           : xasprintf("the %s is not JSON (%s at %d:%d)", what, err.text, err.line,
		                       err.column);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* An optional string member; -1 when present but not a string (or holds a NUL). */
static int opt_string(json_t *o, const char *key, char **out) {
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	*out = xstrdup(json_string_value(v));
	return 1;
}

/* An optional array of strings; -1 when malformed. */
static int opt_strv(json_t *o, const char *key, char ***out) {
	json_t *v = json_object_get(o, key), *e;
	size_t i, n = 0;
	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return -1;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			oauth_strv_free(*out);
			*out = NULL;
			return -1;
		}
		strv_push(out, &n, xstrdup(json_string_value(e)));
	}
	if (*out == NULL)
		*out = xcalloc(1, sizeof **out);
	return 1;
}

/* Does @resource (from metadata) name the server at @server_url? */
static bool resource_covers(const char *resource, const char *server_url) {
	struct url_parts a, b;
	char *why = NULL;
	bool ok = false;
	if (url_split(resource, &a, &why) < 0) {
		free(why);
		return false;
	}
	if (url_split(server_url, &b, &why) < 0) {
		free(why);
		url_parts_clear(&a);
		return false;
	}
	char *oa = url_origin(&a), *ob = url_origin(&b);
	char *pa = path_trimmed(a.path), *pb = path_trimmed(b.path);
	size_t la = strlen(pa);
	ok = strcmp(oa, ob) == 0 && strncmp(pa, pb, la) == 0 && (pb[la] == '\0' || pb[la] == '/');
	free(oa);
	free(ob);
	free(pa);
	free(pb);
	url_parts_clear(&a);
	url_parts_clear(&b);
	return ok;
}

int oauth_prm_parse(const char *body, size_t len, const char *server_url, struct oauth_prm *out,
                    char **cause) {
	memset(out, 0, sizeof *out);
	json_t *o = parse_object("protected resource metadata", body, len, cause);
	if (o == NULL)
		return -1;
	int r = -1;
	if (opt_string(o, "resource", &out->resource) != 1) {
		*cause = xstrdup("the protected resource metadata has no \"resource\"");
	} else if (!resource_covers(out->resource, server_url)) {
		*cause = xasprintf("the protected resource metadata is for \"%s\", not for %s: refused "
		                   "(RFC 9728 section 3.3)", out->resource, server_url);
	} else if (opt_strv(o, "authorization_servers", &out->authorization_servers) != 1 ||
	           out->authorization_servers[0] == NULL) {
		*cause = xstrdup("the protected resource metadata lists no authorization_servers");
	} else if (opt_strv(o, "scopes_supported", &out->scopes_supported) < 0) {
		*cause = xstrdup("the protected resource metadata's scopes_supported is not a list of "
		                 "strings");
	} else {
		r = 0;
	}
	json_decref(o);
	if (r < 0)
		oauth_prm_clear(out);
	return r;
}

void oauth_prm_clear(struct oauth_prm *p) {
	free(p->resource);
	oauth_strv_free(p->authorization_servers);
	oauth_strv_free(p->scopes_supported);
	memset(p, 0, sizeof *p);
}

int oauth_as_meta_parse(const char *body, size_t len, const char *issuer,
                        struct oauth_as_meta *out, char **cause) {
	memset(out, 0, sizeof *out);
	json_t *o = parse_object("authorization server metadata", body, len, cause);
	if (o == NULL)
		return -1;
	int r = -1;
	char *why = NULL;
	if (opt_string(o, "issuer", &out->issuer) != 1) {
		*cause = xstrdup("the authorization server metadata has no \"issuer\"");
	} else if (strcmp(out->issuer, issuer) != 0) {
		*cause = xasprintf("the authorization server metadata names issuer \"%s\", not \"%s\": "
		                   "refused (RFC 8414 section 3.3)", out->issuer, issuer);
	} else if (opt_string(o, "authorization_endpoint", &out->authorization_endpoint) < 0 ||
	           opt_string(o, "token_endpoint", &out->token_endpoint) != 1) {
		*cause = xstrdup("the authorization server metadata has no token_endpoint");
	} else if (opt_string(o, "registration_endpoint", &out->registration_endpoint) < 0 ||
	           opt_strv(o, "scopes_supported", &out->scopes_supported) < 0 ||
	           opt_strv(o, "code_challenge_methods_supported", &out->code_challenge_methods) < 0 ||
	           opt_strv(o, "token_endpoint_auth_methods_supported", &out->token_auth_methods) < 0 ||
	           opt_strv(o, "grant_types_supported", &out->grant_types) < 0) {
		*cause = xstrdup("the authorization server metadata has a malformed member");
	} else if (endpoint_ok("token endpoint", out->token_endpoint, &why) < 0 ||
	           (out->authorization_endpoint &&
	            endpoint_ok("authorization endpoint", out->authorization_endpoint, &why) < 0) ||
	           (out->registration_endpoint &&
	            endpoint_ok("registration endpoint", out->registration_endpoint, &why) < 0)) {
		*cause = why;
	} else {
		out->client_id_metadata_document_supported =
		    json_is_true(json_object_get(o, "client_id_metadata_document_supported"));
		r = 0;
	}
	json_decref(o);
	if (r < 0)
		oauth_as_meta_clear(out);
	return r;
}

int oauth_as_meta_parse_legacy(const char *body, size_t len, const char *base_url,
                               struct oauth_as_meta *out, char **cause) {
	memset(out, 0, sizeof *out);
	json_t *o = parse_object("authorization server metadata", body, len, cause);
	if (o == NULL)
		return -1;
	char *issuer = NULL, *why = NULL;
	struct url_parts a, b;
	int r = -1;
	if (opt_string(o, "issuer", &issuer) != 1) {
		*cause = xstrdup("the authorization server metadata has no \"issuer\"");
	} else if (url_split(issuer, &a, &why) < 0) {
		*cause = xasprintf("the authorization server metadata's issuer: %s", why);
		free(why);
	} else {
		if (url_split(base_url, &b, &why) == 0) {
			char *oa = url_origin(&a), *ob = url_origin(&b);
			if (strcmp(oa, ob) == 0)
				r = oauth_as_meta_parse(body, len, issuer, out, cause);
			else
				*cause = xasprintf("the authorization server metadata at %s names issuer "
				                   "\"%s\" on another origin: refused", ob, issuer);
			free(oa);
			free(ob);
			url_parts_clear(&b);
		} else {
			*cause = why;
		}
		url_parts_clear(&a);
	}
	free(issuer);
	json_decref(o);
	return r;
}

void oauth_as_meta_fallback(const char *issuer, struct oauth_as_meta *out) {
	struct url_parts u;
	char *why = NULL;
	memset(out, 0, sizeof *out);
	out->issuer = xstrdup(issuer);
	if (url_split(issuer, &u, &why) < 0) {
		free(why);
		return;
	}
	char *origin = url_origin(&u);
	out->authorization_endpoint = xasprintf("%s/authorize", origin);
	out->token_endpoint = xasprintf("%s/token", origin);
	out->registration_endpoint = xasprintf("%s/register", origin);
	/* The 2025-03-26 revision required PKCE of every server. */
	size_t n = 0;
	strv_push(&out->code_challenge_methods, &n, xstrdup("S256"));
	free(origin);
	url_parts_clear(&u);
}

void oauth_as_meta_clear(struct oauth_as_meta *m) {
	free(m->issuer);
	free(m->authorization_endpoint);
	free(m->token_endpoint);
	free(m->registration_endpoint);
	oauth_strv_free(m->scopes_supported);
	oauth_strv_free(m->code_challenge_methods);
	oauth_strv_free(m->token_auth_methods);
	oauth_strv_free(m->grant_types);
	memset(m, 0, sizeof *m);
}

bool oauth_as_supports_s256(const struct oauth_as_meta *m) {
	return oauth_strv_has(m->code_challenge_methods, "S256");
}

/* --- scope and client authentication ----------------------------------------------- */

static bool scope_has(const char *scope, const char *word) {
	size_t n = strlen(word);
	for (const char *p = scope; (p = strstr(p, word)) != NULL; p += n)
		if ((p == scope || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}

char *oauth_choose_scope(const char *challenge_scope, const struct oauth_prm *prm,
                         const struct oauth_as_meta *as, bool want_refresh) {
	char *scope = NULL;
	if (challenge_scope && *challenge_scope) {
		scope = xstrdup(challenge_scope);
	} else if (prm && prm->scopes_supported && prm->scopes_supported[0]) {
		size_t len = 1;
		for (char **p = prm->scopes_supported; *p; p++)
			len += strlen(*p) + 1;
		scope = xcalloc(1, len);
		for (char **p = prm->scopes_supported; *p; p++) {
			if (*scope)
				strcat(scope, " ");
			strcat(scope, *p);
		}
	}
	if (want_refresh && as && oauth_strv_has(as->scopes_supported, "offline_access") &&
	    !(scope && scope_has(scope, "offline_access"))) {
		char *more = scope ? xasprintf("%s offline_access", scope) : xstrdup("offline_access");
		free(scope);
		scope = more;
	}
	return scope;
}

const char *oauth_client_auth_name(enum oauth_client_auth a) {
	switch (a) {
	case OAUTH_AUTH_NONE: return "none";
	case OAUTH_AUTH_SECRET_BASIC: return "client_secret_basic";
	case OAUTH_AUTH_SECRET_POST: return "client_secret_post";
	case OAUTH_AUTH_PRIVATE_KEY_JWT: return "private_key_jwt";
	}
	return "unknown";
}

int oauth_pick_client_auth(const struct oauth_as_meta *as, bool have_secret, bool have_key,
                           enum oauth_client_auth *out, char **cause) {
	char *const *m = as->token_auth_methods;
	if (have_key) {
		if (m == NULL || oauth_strv_has(m, "private_key_jwt")) {
			*out = OAUTH_AUTH_PRIVATE_KEY_JWT;
			return 0;
		}
	} else if (have_secret) {
		/* Absent: RFC 8414 says the default is client_secret_basic. */
		if (m == NULL || oauth_strv_has(m, "client_secret_basic")) {
			*out = OAUTH_AUTH_SECRET_BASIC;
			return 0;
		}
		if (oauth_strv_has(m, "client_secret_post")) {
			*out = OAUTH_AUTH_SECRET_POST;
			return 0;
		}
	} else if (m == NULL || oauth_strv_has(m, "none")) {
		*out = OAUTH_AUTH_NONE;
		return 0;
	}
	*cause = xasprintf("the authorization server accepts none of the client authentication "
	                   "methods this client has (it has %s)",
	                   have_key ? "a private key" : have_secret ? "a client secret" : "neither a "
	                   "secret nor a key");
	return -1;
}

/* --- randomness, PKCE ---------------------------------------------------------------- */

/* base64url without padding (RFC 7636 appendix A). */
static char *b64url(const unsigned char *in, size_t len) {
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

char *oauth_random_string(size_t nbytes) {
	unsigned char buf[64];
	if (nbytes > sizeof buf)
		nbytes = sizeof buf;
	if (RAND_bytes(buf, (int)nbytes) != 1)
		return NULL;
	char *s = b64url(buf, nbytes);
	OPENSSL_cleanse(buf, sizeof buf);
	return s;
}

int oauth_pkce_new(char verifier[OAUTH_PKCE_LEN + 1], char challenge[OAUTH_PKCE_LEN + 1]) {
	char *v = oauth_random_string(32); /* 32 bytes -> 43 characters */
	if (v == NULL)
		return -1;
	memcpy(verifier, v, OAUTH_PKCE_LEN + 1);
	OPENSSL_cleanse(v, strlen(v));
	free(v);
	oauth_pkce_challenge(verifier, challenge);
	return 0;
}

void oauth_pkce_challenge(const char *verifier, char challenge[OAUTH_PKCE_LEN + 1]) {
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)verifier, strlen(verifier), md);
	char *c = b64url(md, sizeof md);
	memcpy(challenge, c, OAUTH_PKCE_LEN + 1);
	free(c);
}

/* --- requests ------------------------------------------------------------------------ */

/* Append "&key=escaped(value)" (no "&" at the start). */
static void form_add(char **body, const char *key, const char *value) {
	char *esc = curl_easy_escape(NULL, value, 0);
	char *next = *body && **body ? secmem_asprintf("%s&%s=%s", *body, key, esc ? esc : "")
	                             : secmem_asprintf("%s=%s", key, esc ? esc : "");
	curl_free(esc);
	if (*body) {
		OPENSSL_cleanse(*body, strlen(*body));
		free(*body);
	}
	*body = next;
}

char *oauth_authorize_url(const struct oauth_as_meta *as, const char *client_id,
                          const char *redirect_uri, const char *scope, const char *state,
                          const char *code_challenge, const char *resource) {
	char *q = NULL;
	form_add(&q, "response_type", "code");
	form_add(&q, "client_id", client_id);
	form_add(&q, "redirect_uri", redirect_uri);
	form_add(&q, "state", state);
	form_add(&q, "code_challenge", code_challenge);
	form_add(&q, "code_challenge_method", "S256");
	form_add(&q, "resource", resource);
	if (scope)
		form_add(&q, "scope", scope);
	const char *ep = as->authorization_endpoint;
	char *url = xasprintf("%s%s%s", ep, strchr(ep, '?') ? "&" : "?", q);
	free(q);
	return url;
}

void oauth_token_request_clear(struct oauth_token_request *r) {
	if (r->body) {
		OPENSSL_cleanse(r->body, strlen(r->body));
		free(r->body);
	}
	if (r->authorization) {
		OPENSSL_cleanse(r->authorization, strlen(r->authorization));
		free(r->authorization);
	}
	memset(r, 0, sizeof *r);
}

/* The client's part of a token request, as its authentication method says. */
static int client_auth_add(const struct oauth_client *c, const struct oauth_as_meta *as,
                           int64_t now_ms, struct oauth_token_request *r, char **cause) {
	switch (c->auth) {
	case OAUTH_AUTH_NONE:
		form_add(&r->body, "client_id", c->client_id);
		return 0;
	case OAUTH_AUTH_SECRET_POST:
		form_add(&r->body, "client_id", c->client_id);
		form_add(&r->body, "client_secret", c->client_secret ? c->client_secret : "");
		return 0;
	case OAUTH_AUTH_SECRET_BASIC: {
		/* RFC 6749 section 2.3.1: each part form-encoded, then base64. */
		char *id = curl_easy_escape(NULL, c->client_id, 0);
		char *sec = curl_easy_escape(NULL, c->client_secret ? c->client_secret : "", 0);
		char *pair = secmem_asprintf("%s:%s", id ? id : "", sec ? sec : "");
		char *b64 = xmalloc(4 * ((strlen(pair) + 2) / 3) + 1);
		EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pair, (int)strlen(pair));
		r->authorization = secmem_asprintf("Basic %s", b64);
		OPENSSL_cleanse(pair, strlen(pair));
		OPENSSL_cleanse(b64, strlen(b64));
		if (sec)
			OPENSSL_cleanse(sec, strlen(sec));
		free(pair);
		free(b64);
		curl_free(id);
		curl_free(sec);
		return 0;
	}
	case OAUTH_AUTH_PRIVATE_KEY_JWT: {
		char *jwt = oauth_jwt_assertion(c->key_pem, c->client_id,
		                                as->issuer ? as->issuer : as->token_endpoint, now_ms,
		                                cause);
		if (jwt == NULL)
			return -1;
		form_add(&r->body, "client_id", c->client_id);
		form_add(&r->body, "client_assertion_type",
		         "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
		form_add(&r->body, "client_assertion", jwt);
		OPENSSL_cleanse(jwt, strlen(jwt));
		free(jwt);
		return 0;
	}
	}
	return 0;
}

static int token_request_finish(const struct oauth_client *c, const struct oauth_as_meta *as,
                                const char *resource, const char *scope, int64_t now_ms,
                                struct oauth_token_request *out, char **cause) {
	if (resource)
		form_add(&out->body, "resource", resource);
	if (scope)
		form_add(&out->body, "scope", scope);
	if (client_auth_add(c, as, now_ms, out, cause) < 0) {
		oauth_token_request_clear(out);
		return -1;
	}
	return 0;
}

int oauth_token_request_code(const struct oauth_client *c, const struct oauth_as_meta *as,
                             const char *code, const char *redirect_uri, const char *verifier,
                             const char *resource, int64_t now_ms,
                             struct oauth_token_request *out, char **cause) {
	memset(out, 0, sizeof *out);
	form_add(&out->body, "grant_type", "authorization_code");
	form_add(&out->body, "code", code);
	form_add(&out->body, "redirect_uri", redirect_uri);
	form_add(&out->body, "code_verifier", verifier);
	return token_request_finish(c, as, resource, NULL, now_ms, out, cause);
}

int oauth_token_request_refresh(const struct oauth_client *c, const struct oauth_as_meta *as,
                                const char *refresh_token, const char *resource,
                                const char *scope, int64_t now_ms,
                                struct oauth_token_request *out, char **cause) {
	memset(out, 0, sizeof *out);
	form_add(&out->body, "grant_type", "refresh_token");
	form_add(&out->body, "refresh_token", refresh_token);
	return token_request_finish(c, as, resource, scope, now_ms, out, cause);
}

int oauth_token_request_client_credentials(const struct oauth_client *c,
                                           const struct oauth_as_meta *as, const char *resource,
                                           const char *scope, int64_t now_ms,
                                           struct oauth_token_request *out, char **cause) {
	memset(out, 0, sizeof *out);
	form_add(&out->body, "grant_type", "client_credentials");
	return token_request_finish(c, as, resource, scope, now_ms, out, cause);
}

int oauth_token_request_token_exchange(const char *idp_client_id, const char *id_token,
                                       const char *audience, const char *resource,
                                       const char *scope, struct oauth_token_request *out) {
	memset(out, 0, sizeof *out);
	form_add(&out->body, "grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
	form_add(&out->body, "requested_token_type", "urn:ietf:params:oauth:token-type:id-jag");
	form_add(&out->body, "audience", audience);
	if (resource)
		form_add(&out->body, "resource", resource);
	if (scope)
		form_add(&out->body, "scope", scope);
	form_add(&out->body, "subject_token", id_token);
	form_add(&out->body, "subject_token_type", "urn:ietf:params:oauth:token-type:id_token");
	if (idp_client_id)
		form_add(&out->body, "client_id", idp_client_id);
	return 0;
}

int oauth_token_request_jwt_bearer(const struct oauth_client *c, const struct oauth_as_meta *as,
                                   const char *assertion, const char *resource,
                                   const char *scope, int64_t now_ms,
                                   struct oauth_token_request *out, char **cause) {
	memset(out, 0, sizeof *out);
	form_add(&out->body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
	form_add(&out->body, "assertion", assertion);
	return token_request_finish(c, as, resource, scope, now_ms, out, cause);
}

/* --- token responses ----------------------------------------------------------------- */

/* Printable ASCII only, short: safe to put in a message. */
static char *safe_text(const char *s, size_t max) {
	size_t n = 0;
	char *out = xmalloc(max + 4);
	for (; s && *s && n < max; s++)
		out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (s && *s)
		memcpy(out + n, "...", 3), n += 3;
	out[n] = '\0';
	return out;
}

int oauth_tokens_parse(const char *body, size_t len, int64_t now_ms, struct oauth_tokens *out,
                       char **cause) {
	memset(out, 0, sizeof *out);
	json_t *o = parse_object("token response", body, len, cause);
	if (o == NULL)
		return -1;
	const char *err = json_string_value(json_object_get(o, "error"));
	const char *type = json_string_value(json_object_get(o, "token_type"));
	json_t *exp = json_object_get(o, "expires_in");
	int r = -1;
	if (err) {
		char *e = safe_text(err, 64);
		char *d = safe_text(json_string_value(json_object_get(o, "error_description")), 200);
		*cause = *d ? xasprintf("the authorization server refused: %s (%s)", e, d)
		            : xasprintf("the authorization server refused: %s", e);
		free(e);
		free(d);
	} else if (opt_string(o, "access_token", &out->access_token) != 1 || !*out->access_token) {
		*cause = xstrdup("the token response has no access_token");
	} else if (type == NULL || strcasecmp(type, "Bearer") != 0) {
		*cause = xstrdup("the token response's token_type is not Bearer");
	} else if (opt_string(o, "refresh_token", &out->refresh_token) < 0 ||
	           opt_string(o, "scope", &out->scope) < 0) {
		*cause = xstrdup("the token response has a malformed refresh_token or scope");
	} else if (exp && (!json_is_number(exp) || json_number_value(exp) < 0 ||
	                   json_number_value(exp) > 10.0 * 365 * 86400)) {
		*cause = xstrdup("the token response's expires_in is not a number of seconds");
	} else {
		if (exp)
			out->expires_at_ms = now_ms + (int64_t)(json_number_value(exp) * 1000);
		r = 0;
	}
	json_decref(o);
	if (r < 0)
		oauth_tokens_clear(out);
	return r;
}

void oauth_tokens_clear(struct oauth_tokens *t) {
	if (t->access_token)
		OPENSSL_cleanse(t->access_token, strlen(t->access_token));
	if (t->refresh_token)
		OPENSSL_cleanse(t->refresh_token, strlen(t->refresh_token));
	free(t->access_token);
	free(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof *t);
}

/* --- JWT client assertions (RFC 7523) ------------------------------------------------ */

/* A DER ECDSA signature as JOSE wants it: R || S, each 32 bytes. */
static char *ecdsa_der_to_jose(const unsigned char *der, size_t len) {
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	if (sig == NULL)
		return NULL;
	const BIGNUM *r, *s;
	unsigned char raw[64];
	ECDSA_SIG_get0(sig, &r, &s);
	int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? b64url(raw, sizeof raw) : NULL;
}

char *oauth_jwt_assertion(const char *key_pem, const char *client_id, const char *audience,
                          int64_t now_ms, char **cause) {
	BIO *bio = key_pem ? BIO_new_mem_buf(key_pem, -1) : NULL;
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (key == NULL) {
		*cause = xstrdup("the private key is not a PEM private key");
		return NULL;
	}
	int type = EVP_PKEY_get_base_id(key);
	const char *alg = type == EVP_PKEY_RSA ? "RS256" : type == EVP_PKEY_EC ? "ES256" : NULL;
	if (alg == NULL || (type == EVP_PKEY_EC && EVP_PKEY_get_bits(key) != 256)) {
		EVP_PKEY_free(key);
		*cause = xstrdup("the private key is neither RSA nor EC P-256 (RS256 or ES256)");
		return NULL;
	}
	char *jti = oauth_random_string(16);
	int64_t iat = now_ms / 1000;
	json_t *hdr = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", client_id, "sub",
	                           client_id, "aud", audience, "iat", (json_int_t)iat, "exp",
	                           (json_int_t)(iat + 300), "jti", jti ? jti : "");
	char *h = json_dumps(hdr, JSON_COMPACT), *c = json_dumps(claims, JSON_COMPACT);
	char *h64 = b64url((unsigned char *)h, strlen(h)), *c64 = b64url((unsigned char *)c, strlen(c));
	char *input = xasprintf("%s.%s", h64, c64), *sig64 = NULL, *out = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t slen = 0;
	unsigned char *sig = NULL;
	if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(md, NULL, &slen, (unsigned char *)input, strlen(input)) == 1) {
		sig = xmalloc(slen);
		if (EVP_DigestSign(md, sig, &slen, (unsigned char *)input, strlen(input)) == 1)
			sig64 = type == EVP_PKEY_EC ? ecdsa_der_to_jose(sig, slen) : b64url(sig, slen);
	}
	if (sig64)
		out = xasprintf("%s.%s", input, sig64);
	else
		*cause = xstrdup("cannot sign the client assertion with the private key");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	json_decref(hdr);
	json_decref(claims);
	free(h);
	free(c);
	free(h64);
	free(c64);
	free(input);
	free(sig);
	free(sig64);
	free(jti);
	return out;
}

char *oauth_id_jag_parse(const char *body, size_t len, char **cause) {
	json_t *o = parse_object("token exchange response", body, len, cause);
	if (o == NULL)
		return NULL;
	const json_t *err = json_object_get(o, "error");
	const json_t *at = json_object_get(o, "access_token");
	const json_t *type = json_object_get(o, "issued_token_type");
	char *out = NULL;
	if (json_is_string(err)) {
		char *e = safe_text(json_string_value(err), 64);
		const json_t *d = json_object_get(o, "error_description");
		char *desc = json_is_string(d) ? safe_text(json_string_value(d), 200) : NULL;
		*cause = xasprintf("the identity provider refused the token exchange: %s%s%s", e,
		                   desc ? ": " : "", desc ? desc : "");
		free(e);
		free(desc);
	} else if (!json_is_string(type) ||
	           strcmp(json_string_value(type), "urn:ietf:params:oauth:token-type:id-jag") != 0) {
		*cause = xstrdup("the identity provider's token exchange response is not an ID-JAG "
		                 "(issued_token_type)");
	} else if (!json_is_string(at) || json_string_length(at) == 0) {
		*cause = xstrdup("the identity provider's token exchange response has no "
		                 "access_token");
	} else {
		out = xstrdup(json_string_value(at));
	}
	json_decref(o);
	return out;
}
