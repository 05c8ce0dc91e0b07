/*
 * mcp_http.c - Streamable HTTP and HTTP+SSE transports on libcurl's multi
 * interface (see mcp_http.h).
 *
 * Each HTTP exchange is a struct http_req on the transport's list: a POST
 * per message, GETs for the server's own stream, for resuming a stream and
 * for the legacy SSE stream, and the DELETE on close. libcurl calls us back
 * only to store bytes; everything that can reach the owner (lines, errors,
 * on_close) is queued and delivered after curl_multi_socket_action() has
 * returned, so owner callbacks may send() or close() freely and libcurl is
 * never re-entered from its own callbacks.
 *
 * Lifetime: as for stdio, the owner holds the transport until close(); from
 * then on it sends the DELETE (when there is a session) and frees itself
 * from the event loop once that exchange is over.
 */
#include "daemon/mcp/mcp_http.h"
#include "daemon/mcp/curl_loop.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <jansson.h>

#include "common/log.h"
#include "common/netlib.h"
#include "common/secmem.h"
#include "common/strv.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp_auth.h"
#include "daemon/mcp/mcp_headers.h"
#include "daemon/mcp/oauth.h"
#include "daemon/mcp/sse.h"

#define ERRBODY_SHOW 200   /* bytes of an error body's first line in messages */
#define SESSION_ID_MAX 1024

enum req_kind { REQ_POST, REQ_GET_STREAM, REQ_GET_RESUME, REQ_GET_LEGACY, REQ_DELETE };

struct http_tp;

struct http_req {
	struct http_tp *ht;
	enum req_kind kind;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;              /* POST: the message */
	size_t body_len;
	json_t *id;              /* the request id whose answer we wait for, or NULL */
	bool is_init;            /* POST of initialize (ours or the transport's own) */
	bool internal;           /* sent by the transport itself (re-initialize) */
	bool sent_session;       /* carried an Mcp-Session-Id */
	bool answered;
	bool replayed;           /* already sent again after a 404 */
	bool auth_retried;       /* already sent again after a 401 */
	int step_ups;            /* 403 insufficient_scope renewals */
	char *www_auth;          /* the response's WWW-Authenticate */
	char *sent_token;        /* the access token it carried (secret) */
	bool sse;                /* the answer is text/event-stream */
	bool got_type;
	bool headers_done;       /* the response's header block is complete */
	bool events;             /* this exchange delivered at least one event */
	int resumes;             /* resumes in a row without an event */
	long status;
	char *resp;              /* a non-SSE body, capped */
	size_t resp_len, resp_cap;
	bool over_cap;
	struct sse_parser sp;
	struct event *delay;     /* waiting to start (retry: time) */
	char errbuf[CURL_ERROR_SIZE];
	TAILQ_ENTRY(http_req) link;
};
TAILQ_HEAD(req_list, http_req);

struct inbox_line {
	char *line;
	size_t len;
	STAILQ_ENTRY(inbox_line) link;
};

struct http_tp {
	struct mcp_transport base;
	struct event_base *evb;
	struct mcp_transport_cbs cbs;
	char *name;
	char *url;               /* the MCP endpoint or (sse) the SSE endpoint */
	char *post_url;          /* sse: from the endpoint event */
	char *where;             /* "scheme://host:port" for messages */
	char **headers;          /* expanded "Name: value": secrets */
	char *ca_file;
	bool legacy;             /* speaking 2024-11-05 HTTP+SSE */
	bool fell_back;          /* legacy because initialize was refused */
	struct curl_loop loop;   /* libcurl's multi handle on our loop */
	struct event *work;
	struct req_list reqs;    /* in libcurl or waiting on a delay timer */
	struct req_list held;    /* waiting for the endpoint or a new session */
	STAILQ_HEAD(, inbox_line) inbox;
	char *session_id;
	char *proto_version;
	char *init_line;         /* our initialize, for a new session after 404 */
	json_t *init_id;
	bool awaiting_init;
	bool reinit;             /* a new session is being set up after 404 */
	bool get_unsupported;    /* the GET stream got 405 or another refusal */
	enum { GATE_OPEN, GATE_WAIT_POST, GATE_WAIT_GET } gate; /* requests wait for the GET */
	struct event *gate_timer;
	struct http_req *stream; /* the GET stream, when open */
	char last_stream_id[SSE_ID_MAX + 1];
	int64_t stream_retry_ms;
	char *report;            /* on_close reason waiting for delivery */
	bool reported, closing;
	char detail[512];
	int reinit_seq;
	struct log_ratelimit rl;
	struct mcp_pool *pool;   /* authorization (mcp_auth.h), or NULL */
	const struct mcp_server_def *def;
	struct mcp_auth_grant grant; /* kept grant (secret) */
	bool have_grant;
	struct mcp_auth_renew *renew; /* in flight: requests wait in held */
	TAILQ_ENTRY(http_tp) link;
};

static TAILQ_HEAD(, http_tp) closing_list = TAILQ_HEAD_INITIALIZER(closing_list);

static void req_start(struct http_req *r);
static void req_free(struct http_req *r);
static void ht_after_action(struct http_tp *ht);
static void ht_after_loop(void *arg) {
	ht_after_action(arg);
}
static struct http_req *req_new(struct http_tp *ht, enum req_kind kind);

/* --- small things ---------------------------------------------------------- */

static void inbox_push(struct http_tp *ht, const char *line, size_t len) {
	struct inbox_line *l = xcalloc(1, sizeof *l);
	l->line = xmalloc(len + 1);
	memcpy(l->line, line, len);
	l->line[len] = '\0';
	l->len = len;
	STAILQ_INSERT_TAIL(&ht->inbox, l, link);
}

/* A JSON-RPC error reply to @id, as if the server had sent it. */
static void inbox_error(struct http_tp *ht, const json_t *id, const char *message) {
	json_t *msg = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error",
	                        "code", MCP_HTTP_ERROR_CODE, "message", message);
	char *enc = json_dumps(msg, JSON_COMPACT);
	inbox_push(ht, enc, strlen(enc));
	free(enc);
	json_decref(msg);
}

/* The transport is unusable: tell the owner once, after this round. */
static void ht_fail(struct http_tp *ht, const char *why) {
	if (ht->report == NULL && !ht->reported)
		ht->report = xstrdup(why);
}

static void set_detail(struct http_tp *ht, const char *s) {
	snprintf(ht->detail, sizeof ht->detail, "%s", s);
}

/* "scheme://host[:port]" of @url, for messages (no user info, path or query). */
static char *url_where(const char *url) {
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *out;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
		curl_url_get(u, CURLUPART_HOST, &host, 0);
		curl_url_get(u, CURLUPART_PORT, &port, 0);
	}
	out = xasprintf("%s://%s%s%s", scheme ? scheme : "?", host ? host : "?", port ? ":" : "",
	                port ? port : "");
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

/* The first line of @r's body, shortened, for an error message. Caller frees. */
static char *body_first_line(const struct http_req *r) {
	if (r->resp == NULL || r->resp_len == 0)
		return xstrdup("");
	size_t n = strcspn(r->resp, "\r\n");
	if (n > ERRBODY_SHOW)
		n = ERRBODY_SHOW;
	while (n > 0 && ((unsigned char)r->resp[n] & 0xC0) == 0x80)
		n--;
	char *out = xasprintf(": %.*s", (int)n, r->resp);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return out;
}

/* One sentence for a failed libcurl exchange. Caller frees. */
static char *curl_why(struct http_tp *ht, CURLcode rc, const char *errbuf) {
	const char *e = errbuf && *errbuf ? errbuf : curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return xasprintf("server %s: cannot resolve the host of %s (DNS): %s", ht->name,
		                 ht->where, e);
	case CURLE_COULDNT_RESOLVE_PROXY:
		return xasprintf("server %s: cannot resolve the proxy for %s: %s", ht->name, ht->where,
		                 e);
	case CURLE_COULDNT_CONNECT:
		return xasprintf("server %s: cannot connect to %s: %s", ht->name, ht->where, e);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return xasprintf("server %s: the TLS certificate of %s could not be verified: %s "
		                 "(check \"ca_file\" or the system CA store)", ht->name, ht->where, e);
	case CURLE_SSL_CONNECT_ERROR:
		return xasprintf("server %s: TLS handshake with %s failed: %s", ht->name, ht->where, e);
	case CURLE_OPERATION_TIMEDOUT:
		return xasprintf("server %s: %s did not answer in time: %s", ht->name, ht->where, e);
	default:
		return xasprintf("server %s: HTTP exchange with %s failed: %s", ht->name, ht->where, e);
	}
}

/* --- receiving -------------------------------------------------------------- */

/* Whether @json is the answer to @r's request. */
static bool answers(const struct http_req *r, const json_t *msg) {
	return r->id != NULL && json_is_object(msg) && json_object_get(msg, "method") == NULL &&
	       json_equal(json_object_get(msg, "id"), r->id);
}

static void take_message(struct http_req *r, const char *data, size_t len) {
	json_t *msg = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
	if (msg != NULL && answers(r, msg))
		r->answered = true;
	json_decref(msg);
	inbox_push(r->ht, data, len);
}

/* Resolve the legacy "endpoint" event against the SSE URL; same origin only. */
static void take_endpoint(struct http_tp *ht, const char *data) {
	CURLU *u = curl_url();
	char *url = NULL;
	if (curl_url_set(u, CURLUPART_URL, ht->url, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, data, 0) == CURLUE_OK)
		curl_url_get(u, CURLUPART_URL, &url, 0);
	curl_url_cleanup(u);
	char *where = url ? url_where(url) : NULL;
	if (url == NULL || strcmp(where, ht->where) != 0) {
		char *why = xasprintf("server %s at %s sent an endpoint event that is not a URL on the "
		                      "same host", ht->name, ht->where);
		ht_fail(ht, why);
		free(why);
	} else {
		free(ht->post_url);
		ht->post_url = xstrdup(url);
	}
	free(where);
	curl_free(url);
}

static int on_sse_event(void *arg, const struct sse_event *ev) {
	struct http_req *r = arg;
	r->events = true;
	if (r->kind == REQ_GET_LEGACY && strcmp(ev->type, "endpoint") == 0) {
		take_endpoint(r->ht, ev->data);
		return 0;
	}
	if (strcmp(ev->type, "message") != 0 || ev->data_len == 0)
		return 0; /* a priming event, or a type MCP does not define */
	take_message(r, ev->data, ev->data_len);
	return 0;
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg) {
	struct http_req *r = arg;
	struct http_tp *ht = r->ht;
	size_t len = size * n;
	static const char name[] = "mcp-session-id:";
	static const char wwwa[] = "www-authenticate:";
	if (len <= 2 && (len == 0 || buf[0] == '\r' || buf[0] == '\n'))
		r->headers_done = true;
	if (len > sizeof wwwa - 1 && len < 8192 && r->www_auth == NULL &&
	    strncasecmp(buf, wwwa, sizeof wwwa - 1) == 0) {
		size_t vl = len - (sizeof wwwa - 1);
		while (vl > 0 && (buf[sizeof wwwa - 1 + vl - 1] == '\r' ||
		                  buf[sizeof wwwa - 1 + vl - 1] == '\n'))
			vl--;
		r->www_auth = xstrndup(buf + sizeof wwwa - 1, vl);
	}
	if (r->is_init && len > sizeof name - 1 && strncasecmp(buf, name, sizeof name - 1) == 0) {
		const char *v = buf + sizeof name - 1;
		size_t vl = len - (sizeof name - 1);
		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		bool visible = vl > 0 && vl <= SESSION_ID_MAX;
		for (size_t i = 0; visible && i < vl; i++)
			visible = v[i] > 0x20 && v[i] < 0x7f;
		if (visible) {
			free(ht->session_id);
			ht->session_id = xasprintf("%.*s", (int)vl, v);
		}
	}
	return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *arg) {
	struct http_req *r = arg;
	size_t len = size * n;
	if (!r->got_type) {
		char *ct = NULL;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
		r->sse = r->status / 100 == 2 && ct != NULL &&
		         strncasecmp(ct, "text/event-stream", 17) == 0;
		r->got_type = true;
	}
	if (r->sse) {
		if (sse_feed(&r->sp, buf, len) >= 0)
			return len;
		r->over_cap = true;
		return 0;
	}
	if (r->resp_len + len > MCP_TRANSPORT_LINE_MAX) {
		r->over_cap = true;
		return 0; /* libcurl ends the exchange with CURLE_WRITE_ERROR */
	}
	if (r->resp_len + len + 1 > r->resp_cap) {
		r->resp_cap = (r->resp_len + len + 1) * 2;
		r->resp = xrealloc(r->resp, r->resp_cap);
	}
	memcpy(r->resp + r->resp_len, buf, len);
	r->resp_len += len;
	r->resp[r->resp_len] = '\0';
	return len;
}

/* --- requests ---------------------------------------------------------------- */

static struct http_req *req_new(struct http_tp *ht, enum req_kind kind) {
	struct http_req *r = xcalloc(1, sizeof *r);
	r->ht = ht;
	r->kind = kind;
	sse_init(&r->sp, MCP_TRANSPORT_LINE_MAX, on_sse_event, r);
	return r;
}

/* libcurl's copies of our header lines: the Authorization one is a secret. */
static void slist_free_cleansed(struct curl_slist *h) {
	for (struct curl_slist *p = h; p != NULL; p = p->next)
		if (p->data && strncasecmp(p->data, "Authorization:", 14) == 0)
			OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

static void req_free(struct http_req *r) {
	if (r->easy != NULL) {
		curl_multi_remove_handle(r->ht->loop.multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	if (r->ht->stream == r)
		r->ht->stream = NULL;
	if (r->delay)
		event_free(r->delay);
	slist_free_cleansed(r->hdrs);
	free(r->body);
	free(r->resp);
	free(r->www_auth);
	if (r->sent_token) {
		secmem_free(r->sent_token);
	}
	json_decref(r->id);
	sse_clear(&r->sp);
	free(r);
}

static void req_headers(struct http_req *r) {
	struct http_tp *ht = r->ht;
	struct curl_slist *h = NULL;
	slist_free_cleansed(r->hdrs);
	for (size_t i = 0; ht->headers && ht->headers[i]; i++)
		h = curl_slist_append(h, ht->headers[i]);
	if (r->kind == REQ_POST) {
		h = curl_slist_append(h, "Content-Type: application/json");
		h = curl_slist_append(h, "Accept: application/json, text/event-stream");
		h = curl_slist_append(h, "Expect:");
	} else if (r->kind != REQ_DELETE) {
		h = curl_slist_append(h, "Accept: text/event-stream");
	}
	char *line;
	r->sent_session = false;
	if (r->sent_token) {
		secmem_free(r->sent_token);
		r->sent_token = NULL;
	}
	if (ht->have_grant && ht->grant.access_token) {
		line = secmem_asprintf("Authorization: Bearer %s", ht->grant.access_token);
		h = curl_slist_append(h, line);
		OPENSSL_cleanse(line, strlen(line));
		free(line);
		r->sent_token = secmem_strdup(ht->grant.access_token);
	}
	if (!ht->legacy && ht->session_id && !r->is_init) { /* a new session starts without */
		line = xasprintf("Mcp-Session-Id: %s", ht->session_id);
		h = curl_slist_append(h, line);
		free(line);
		r->sent_session = true;
	}
	if (!ht->legacy && ht->proto_version && !r->is_init) {
		line = xasprintf("MCP-Protocol-Version: %s", ht->proto_version);
		h = curl_slist_append(h, line);
		free(line);
	}
	if ((r->kind == REQ_GET_RESUME || r->kind == REQ_GET_STREAM) && r->sp.last_id[0]) {
		line = xasprintf("Last-Event-ID: %s", r->sp.last_id);
		h = curl_slist_append(h, line);
		free(line);
	}
	r->hdrs = h;
}

/* Hand @r to libcurl now. */
static void req_start(struct http_req *r) {
	struct http_tp *ht = r->ht;
	const char *url = r->kind == REQ_POST && ht->legacy ? ht->post_url : ht->url;
	if (r->easy != NULL) {
		curl_multi_remove_handle(ht->loop.multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	r->easy = curl_easy_init();
	r->status = 0;
	free(r->www_auth);
	r->www_auth = NULL;
	r->got_type = r->sse = r->over_cap = r->events = false;
	r->resp_len = 0;
	r->errbuf[0] = '\0';
	sse_reset_stream(&r->sp);
	req_headers(r);
	CURL *e = r->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)MCP_HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mcpjobd/" MCPJOB_VERSION);
	if (ht->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, ht->ca_file);
	if (r->kind == REQ_POST) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
	} else if (r->kind == REQ_DELETE) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)MCP_HTTP_DELETE_TIMEOUT_MS);
	}
	curl_multi_add_handle(ht->loop.multi, e);
}

static void on_delay(evutil_socket_t fd, short what, void *arg) {
	struct http_req *r = arg;
	struct http_tp *ht = r->ht;
	(void)fd;
	(void)what;
	req_start(r);
	ht_after_action(ht);
}

/* Start @r after @ms (the server's retry: time). */
static void req_start_after(struct http_req *r, int64_t ms) {
	if (r->delay == NULL)
		r->delay = evtimer_new(r->ht->evb, on_delay, r);
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(r->delay, &tv);
}

static int64_t retry_of(const struct http_req *r) {
	return r->sp.retry_ms >= 0 ? r->sp.retry_ms : MCP_HTTP_RETRY_DEFAULT_MS;
}

/* The GET stream for the server's own messages (Streamable HTTP only). */
static void stream_open(struct http_tp *ht, int64_t after_ms) {
	if (ht->legacy || ht->get_unsupported || ht->stream != NULL || ht->closing || ht->reinit)
		return;
	struct http_req *r = req_new(ht, REQ_GET_STREAM);
	memcpy(r->sp.last_id, ht->last_stream_id, sizeof r->sp.last_id);
	r->sp.retry_ms = ht->stream_retry_ms;
	ht->stream = r;
	TAILQ_INSERT_TAIL(&ht->reqs, r, link);
	if (after_ms > 0)
		req_start_after(r, after_ms);
	else
		req_start(r);
}

static bool requests_pending(struct http_tp *ht) {
	struct http_req *r;
	TAILQ_FOREACH(r, &ht->reqs, link)
		if (r->id != NULL && !r->answered)
			return true;
	return !TAILQ_EMPTY(&ht->held);
}

/* Our initialize with the transport's own id, to open a new session. */
static void reinit_start(struct http_tp *ht) {
	json_t *msg = json_loads(ht->init_line, 0, NULL);
	json_t *id = json_sprintf("mcpjobd-new-session-%d", ++ht->reinit_seq);
	json_object_set(msg, "id", id);
	struct http_req *r = req_new(ht, REQ_POST);
	r->body = json_dumps(msg, JSON_COMPACT);
	r->body_len = strlen(r->body);
	r->id = id;
	r->is_init = r->internal = true;
	json_decref(msg);
	ht->reinit = true;
	free(ht->session_id);
	ht->session_id = NULL;
	TAILQ_INSERT_TAIL(&ht->reqs, r, link);
	req_start(r);
}

/* Send what waited for the endpoint event or the new session. */
static void release_held(struct http_tp *ht) {
	struct http_req *r;
	if (ht->renew != NULL)
		return; /* they wait for the new token */
	while ((r = TAILQ_FIRST(&ht->held)) != NULL) {
		TAILQ_REMOVE(&ht->held, r, link);
		TAILQ_INSERT_TAIL(&ht->reqs, r, link);
		req_start(r);
	}
}


/* --- authorization (mcp_auth.h) ------------------------------------------------ */

static bool machine_grant(const struct http_tp *ht) {
	return ht->def && ht->def->auth && ht->def->auth->grant != MCP_GRANT_AUTHORIZATION_CODE;
}

/*
 * The call that carried @id waits for a person: a login, or (for a machine
 * grant, which has no login) a fix of the credentials that @cause says were
 * refused.
 */
static void inbox_auth_required(struct http_tp *ht, const json_t *id, const char *cause) {
	char *why = machine_grant(ht) && cause
	                ? xasprintf("authorization refused: %s", cause)
	                : xasprintf("waiting for authorization: run `mcpjobctl auth login %s`",
	                            ht->name);
	json_t *msg = json_pack("{s:s, s:O, s:{s:i, s:s, s:{s:b}}}", "jsonrpc", "2.0", "id", id,
	                        "error", "code", MCP_HTTP_AUTH_CODE, "message", why, "data",
	                        "mcpjobd_auth_required", 1);
	char *enc = json_dumps(msg, JSON_COMPACT);
	inbox_push(ht, enc, strlen(enc));
	free(enc);
	json_decref(msg);
	free(why);
}

static void grant_take(struct http_tp *ht, const struct mcp_auth_grant *g) {
	mcp_auth_grant_clear(&ht->grant);
	mcp_auth_grant_copy(&ht->grant, g);
	ht->have_grant = true;
}

/* The store's grant, when it is another than the one @r carried (a login since). */
static bool grant_reload(struct http_tp *ht, const struct http_req *r) {
	const struct mcp_auth_store *st = ht->pool ? mcp_pool_auth_store(ht->pool) : NULL;
	struct mcp_auth_grant g = {0};
	if (st == NULL || st->load == NULL || st->load(st->arg, ht->name, &g) != 0) {
		mcp_auth_grant_clear(&g);
		return false;
	}
	bool other = g.access_token != NULL &&
	             (r->sent_token == NULL || strcmp(g.access_token, r->sent_token) != 0);
	if (other)
		grant_take(ht, &g);
	mcp_auth_grant_clear(&g);
	return other;
}

static void on_renewed(void *arg, enum mcp_auth_renew_result rr, const struct mcp_auth_grant *g,
                       const char *cause) {
	struct http_tp *ht = arg;
	struct http_req *r;
	ht->renew = NULL;
	if (rr == MCP_AUTH_RENEWED) {
		log_info("mcp server %s: access token renewed", ht->name);
		grant_take(ht, g);
		TAILQ_FOREACH(r, &ht->reqs, link)
			if (r->kind == REQ_GET_LEGACY && r->easy == NULL)
				req_start(r); /* waited for the token (legacy_auth) */
		if (!ht->reinit && !ht->gate && !(ht->legacy && ht->post_url == NULL))
			release_held(ht);
		ht_after_action(ht);
		return;
	}
	if (cause && log_ratelimit_ok(&ht->rl, 5, 10000, ht->name))
		log_warning("mcp %s", cause);
	if (rr == MCP_AUTH_NEED_LOGIN) {
		mcp_auth_grant_clear(&ht->grant);
		ht->have_grant = false;
	}
	while ((r = TAILQ_FIRST(&ht->held)) != NULL) {
		TAILQ_REMOVE(&ht->held, r, link);
		if (r->id != NULL && rr == MCP_AUTH_NEED_LOGIN)
			inbox_auth_required(ht, r->id, cause);
		else if (r->id != NULL)
			inbox_error(ht, r->id, cause ? cause : "authorization failed");
		req_free(r);
	}
	TAILQ_FOREACH(r, &ht->reqs, link)
		if (r->kind == REQ_GET_LEGACY && r->easy == NULL) {
			char *why = xasprintf("server %s at %s asks for authorization", ht->name,
			                      ht->where);
			ht_fail(ht, why);
			free(why);
			break;
		}
	ht_after_action(ht);
}

/* Renew now (requests wait in held meanwhile). */
static void renew_start(struct http_tp *ht, const char *resource_metadata, const char *scope) {
	if (ht->renew != NULL)
		return;
	ht->renew = mcp_auth_renew_start(ht->evb, mcp_pool_auth_store(ht->pool), ht->def,
	                                 ht->have_grant ? &ht->grant : NULL, resource_metadata,
	                                 scope, on_renewed, ht);
}

static bool can_renew(const struct http_tp *ht, bool step_up) {
	bool cc = ht->def->auth && ht->def->auth->grant != MCP_GRANT_AUTHORIZATION_CODE;
	return cc || (!step_up && ht->have_grant && ht->grant.refresh_token != NULL &&
	              ht->grant.token_endpoint != NULL);
}

/* The token is about to expire and can be renewed without a person. */
static bool grant_expiring(const struct http_tp *ht) {
	return ht->pool && ht->have_grant && ht->grant.expires_at_ms > 0 &&
	       time_now_ms() + MCP_HTTP_RENEW_EARLY_MS >= ht->grant.expires_at_ms &&
	       can_renew(ht, false);
}

/* @r again, later: a copy on held (r itself is freed by the caller). */
static struct http_req *req_again(struct http_req *r) {
	struct http_req *again = req_new(r->ht, REQ_POST);
	again->body = r->body;
	again->body_len = r->body_len;
	again->id = r->id;
	again->is_init = r->is_init;
	again->internal = r->internal;
	again->replayed = r->replayed;
	again->auth_retried = r->auth_retried;
	again->step_ups = r->step_ups;
	r->body = NULL;
	r->id = NULL;
	TAILQ_INSERT_TAIL(&r->ht->held, again, link);
	return again;
}

/*
 * A 401, or a 403 with error="insufficient_scope": true when it was taken
 * care of (retried, waiting for a renewal, or answered "waiting for
 * authorization").
 */
static bool auth_challenged(struct http_req *r) {
	struct http_tp *ht = r->ht;
	struct oauth_challenge ch = {0};
	if (ht->pool == NULL || r->id == NULL || (r->status != 401 && r->status != 403))
		return false;
	bool have = r->www_auth && oauth_challenge_parse(r->www_auth, &ch) == 0;
	bool step_up = r->status == 403;
	if (step_up && !(have && ch.error && strcmp(ch.error, "insufficient_scope") == 0)) {
		oauth_challenge_clear(&ch);
		return false; /* a plain 403: refused, as before */
	}
	mcp_pool_auth_hint_set(ht->pool, ht->name, ch.resource_metadata, ch.scope);
	if (!r->auth_retried && grant_reload(ht, r)) {
		/* A login happened since this request left: once more with its token. */
		struct http_req *again = req_again(r);
		again->auth_retried = true;
		if (!ht->reinit && !ht->gate && !(ht->legacy && ht->post_url == NULL))
			release_held(ht);
	} else if (step_up ? r->step_ups < MCP_AUTH_STEP_UP_MAX && can_renew(ht, true)
	                   : !r->auth_retried && can_renew(ht, false)) {
		struct http_req *again = req_again(r);
		again->auth_retried = true;
		if (step_up)
			again->step_ups++;
		renew_start(ht, ch.resource_metadata, step_up ? ch.scope : NULL);
	} else {
		inbox_auth_required(ht, r->id, NULL);
	}
	oauth_challenge_clear(&ch);
	return true;
}

/*
 * HTTP+SSE: the stream's GET got 401. Once more when a login happened
 * since, renew when that needs no person, else every waiting request is
 * answered "waiting for authorization" and the transport is done.
 */
static bool legacy_auth(struct http_req *r) {
	struct http_tp *ht = r->ht;
	struct oauth_challenge ch = {0};
	struct http_req *q;
	if (ht->pool == NULL || r->status != 401)
		return false;
	if (r->www_auth)
		oauth_challenge_parse(r->www_auth, &ch);
	mcp_pool_auth_hint_set(ht->pool, ht->name, ch.resource_metadata, ch.scope);
	bool reloaded = !r->auth_retried && grant_reload(ht, r);
	if (reloaded || (!r->auth_retried && can_renew(ht, false))) {
		struct http_req *g = req_new(ht, REQ_GET_LEGACY);
		g->auth_retried = true;
		TAILQ_INSERT_TAIL(&ht->reqs, g, link);
		if (reloaded)
			req_start(g);
		else
			renew_start(ht, ch.resource_metadata, NULL); /* g starts once renewed */
	} else {
		while ((q = TAILQ_FIRST(&ht->held)) != NULL) {
			TAILQ_REMOVE(&ht->held, q, link);
			if (q->id != NULL)
				inbox_auth_required(ht, q->id, NULL);
			req_free(q);
		}
		char *why = xasprintf("server %s at %s asks for authorization", ht->name, ht->where);
		ht_fail(ht, why);
		free(why);
	}
	oauth_challenge_clear(&ch);
	return true;
}

/* --- a finished exchange ----------------------------------------------------- */

static void post_failed_status(struct http_req *r) {
	struct http_tp *ht = r->ht;
	char *first = body_first_line(r);
	char *why = xasprintf("server %s: HTTP %ld from %s%s", ht->name, r->status, ht->where,
	                      first);
	set_detail(ht, why);
	if (r->is_init && r->status / 100 == 4 && !r->internal)
		inbox_error(ht, r->id, why); /* 401, 403...: refused, as an error reply would */
	else if (r->is_init)
		ht_fail(ht, why);
	else if (r->id != NULL)
		inbox_error(ht, r->id, why);
	else if (log_ratelimit_ok(&ht->rl, 5, 10000, ht->name))
		log_warning("mcp %s (for a notification or reply we sent)", why);
	free(why);
	free(first);
}

/* A POST or resume stream ended before its answer: come back with GET. */
static void resume_later(struct http_req *r) {
	struct http_tp *ht = r->ht;
	if (r->sp.last_id[0] == '\0' || r->resumes >= MCP_HTTP_RESUME_MAX) {
		char *why = xasprintf("server %s at %s closed the stream before answering%s", ht->name,
		                      ht->where, r->sp.last_id[0] ? " (gave up resuming it)"
		                                                  : " and gave no event id to resume");
		inbox_error(ht, r->id, why);
		free(why);
		return;
	}
	struct http_req *g = req_new(ht, REQ_GET_RESUME);
	g->id = json_incref(r->id);
	memcpy(g->sp.last_id, r->sp.last_id, sizeof g->sp.last_id);
	g->sp.retry_ms = r->sp.retry_ms;
	g->resumes = r->events && r->kind == REQ_GET_RESUME ? 0 : r->resumes + 1;
	TAILQ_INSERT_TAIL(&ht->reqs, g, link);
	req_start_after(g, retry_of(r));
}

/* 2xx: the answer was a JSON body (one message or a batch) or an SSE stream. */
static void post_done_ok(struct http_req *r) {
	struct http_tp *ht = r->ht;
	if (ht->legacy)
		return; /* HTTP+SSE: answers come on the SSE stream */
	if (r->sse) {
		if (r->id != NULL && !r->answered)
			resume_later(r);
		return;
	}
	if (r->id == NULL || r->resp_len == 0) {
		if (r->id != NULL)
			inbox_error(ht, r->id, "the server answered with an empty body");
		return; /* 202 for a notification or a reply, as the spec says */
	}
	json_t *msg = json_loadb(r->resp, r->resp_len, JSON_ALLOW_NUL, NULL);
	if (json_is_array(msg)) {
		size_t i;
		json_t *m;
		json_array_foreach(msg, i, m) {
			char *enc = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
			take_message(r, enc, strlen(enc));
			free(enc);
		}
	} else {
		take_message(r, r->resp, r->resp_len);
	}
	json_decref(msg);
}

/*
 * The spec says 404 for a session the server no longer knows; real servers
 * (server-everything after a restart) answer 400 "No valid session ID".
 */
static bool session_gone(const struct http_req *r) {
	if (!r->sent_session)
		return false;
	if (r->status == 404)
		return true;
	return r->status == 400 && r->resp != NULL && strcasestr(r->resp, "session") != NULL;
}

static void post_done(struct http_req *r, CURLcode rc) {
	struct http_tp *ht = r->ht;
	if (r->over_cap) {
		char *why = xasprintf("server %s at %s sent a message larger than %u bytes",
		                      ht->name, ht->where, MCP_TRANSPORT_LINE_MAX);
		if (r->is_init)
			ht_fail(ht, why);
		else if (r->id != NULL)
			inbox_error(ht, r->id, why);
		free(why);
	} else if (rc != CURLE_OK && r->sse && r->events && r->id && !r->answered) {
		resume_later(r); /* the connection broke mid-stream */
	} else if (rc != CURLE_OK) {
		char *why = curl_why(ht, rc, r->errbuf);
		ht_fail(ht, why);
		free(why);
	} else if (auth_challenged(r)) {
		/* retried, renewing, or waiting for a login */
	} else if (session_gone(r) && !r->is_init && !r->replayed && ht->init_line != NULL) {
		/* The session is gone: a new one, then this message once more. */
		log_info("mcp server %s at %s ended our session; starting a new one", ht->name,
		         ht->where);
		struct http_req *again = req_new(ht, REQ_POST);
		again->body = r->body;
		again->body_len = r->body_len;
		again->id = r->id;
		again->replayed = true;
		r->body = NULL;
		r->id = NULL;
		TAILQ_INSERT_TAIL(&ht->held, again, link);
		if (!ht->reinit)
			reinit_start(ht);
	} else if ((r->status == 400 || r->status == 404 || r->status == 405) && r->is_init &&
	           !r->internal && !ht->legacy) {
		/* 2024-11-05 backwards compatibility: GET the URL for an endpoint event. */
		log_info("mcp server %s at %s refused a Streamable HTTP initialize (HTTP %ld); trying "
		         "the 2024-11-05 HTTP+SSE transport", ht->name, ht->where, r->status);
		ht->legacy = ht->fell_back = true;
		struct http_req *again = req_new(ht, REQ_POST);
		again->body = r->body;
		again->body_len = r->body_len;
		again->id = r->id;
		again->is_init = true;
		r->body = NULL;
		r->id = NULL;
		TAILQ_INSERT_TAIL(&ht->held, again, link);
		struct http_req *g = req_new(ht, REQ_GET_LEGACY);
		TAILQ_INSERT_TAIL(&ht->reqs, g, link);
		req_start(g);
	} else if (r->status / 100 != 2) {
		post_failed_status(r);
	} else {
		post_done_ok(r);
	}
}

static void stream_done(struct http_req *r, CURLcode rc) {
	struct http_tp *ht = r->ht;
	memcpy(ht->last_stream_id, r->sp.last_id, sizeof ht->last_stream_id);
	ht->stream_retry_ms = r->sp.retry_ms;
	if (rc == CURLE_OK && r->status / 100 != 2) {
		/* 405: no GET stream here; other refusals: do not insist. */
		ht->get_unsupported = true;
		return;
	}
	if (requests_pending(ht))
		stream_open(ht, retry_of(r));
}

static void legacy_done(struct http_req *r, CURLcode rc) {
	struct http_tp *ht = r->ht;
	char *why;
	if (rc == CURLE_OK && legacy_auth(r))
		return;
	if (rc != CURLE_OK && !r->over_cap)
		why = curl_why(ht, rc, r->errbuf);
	else if (r->status / 100 != 2) {
		char *first = body_first_line(r);
		why = xasprintf("server %s: HTTP %ld from %s for its SSE stream%s%s", ht->name,
		                r->status, ht->where, first,
		                ht->fell_back ? " (after a Streamable HTTP initialize was refused)" : "");
		free(first);
	} else if (!r->sse)
		why = xasprintf("server %s at %s did not answer the GET with an SSE stream%s",
		                ht->name, ht->where,
		                ht->fell_back ? " (nor a Streamable HTTP initialize)" : "");
	else
		why = xasprintf("server %s at %s closed its SSE stream", ht->name, ht->where);
	ht_fail(ht, why);
	free(why);
}

static void req_done(struct http_req *r, CURLcode rc) {
	if (!r->got_type)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	switch (r->kind) {
	case REQ_POST: post_done(r, rc); break;
	case REQ_GET_RESUME:
		if (r->answered)
			break;
		if (rc == CURLE_OK && r->status / 100 != 2) {
			char *why = xasprintf("server %s at %s closed the stream before answering and "
			                      "refused to resume it (HTTP %ld)", r->ht->name, r->ht->where,
			                      r->status);
			inbox_error(r->ht, r->id, why);
			free(why);
		} else {
			resume_later(r);
		}
		break;
	case REQ_GET_STREAM: stream_done(r, rc); break;
	case REQ_GET_LEGACY: legacy_done(r, rc); break;
	case REQ_DELETE: break;
	}
}

static void gate_open(struct http_tp *ht) {
	ht->gate = GATE_OPEN;
	evtimer_del(ht->gate_timer);
	if (!ht->reinit && !ht->closing)
		release_held(ht);
}

static void on_gate_timer(evutil_socket_t fd, short what, void *arg) {
	struct http_tp *ht = arg;
	(void)fd;
	(void)what;
	gate_open(ht); /* the GET stream is slow to open: do not wait for it longer */
	ht_after_action(ht);
}

/* --- delivering to the owner -------------------------------------------------- */

/* Our own initialize's answer (after a 404): take the new session, go on. */
static bool take_reinit_reply(struct http_tp *ht, json_t *msg) {
	const json_t *id = json_object_get(msg, "id");
	if (!json_is_string(id) || strncmp(json_string_value(id), "mcpjobd-new-session-", 20) != 0)
		return false;
	if (!ht->reinit)
		return true;
	ht->reinit = false;
	const json_t *res = json_object_get(msg, "result");
	if (!json_is_object(res)) {
		char *why = xasprintf("server %s at %s ended our session and refused a new one",
		                      ht->name, ht->where);
		ht_fail(ht, why);
		free(why);
		return true;
	}
	struct http_req *n = req_new(ht, REQ_POST);
	n->body = xstrdup("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
	n->body_len = strlen(n->body);
	TAILQ_INSERT_HEAD(&ht->held, n, link);
	release_held(ht);
	return true;
}

/* The protocol version from our initialize's answer, for MCP-Protocol-Version. */
static void sniff_init_reply(struct http_tp *ht, json_t *msg) {
	if (!json_equal(json_object_get(msg, "id"), ht->init_id))
		return;
	ht->awaiting_init = false;
	const json_t *v = json_object_get(json_object_get(msg, "result"), "protocolVersion");
	if (json_is_string(v) && json_string_length(v) < 64) {
		free(ht->proto_version);
		ht->proto_version = xstrdup(json_string_value(v));
	}
}

static void deliver_inbox(struct http_tp *ht) {
	struct inbox_line *l;
	while ((l = STAILQ_FIRST(&ht->inbox)) != NULL) {
		STAILQ_REMOVE_HEAD(&ht->inbox, link);
		bool swallow = false;
		if (!ht->closing && !ht->reported) {
			json_t *msg = NULL;
			if (ht->awaiting_init || ht->reinit || ht->reinit_seq > 0)
				msg = json_loadb(l->line, l->len, JSON_ALLOW_NUL, NULL);
			if (json_is_object(msg)) {
				swallow = take_reinit_reply(ht, msg);
				if (!swallow && ht->awaiting_init)
					sniff_init_reply(ht, msg);
			}
			json_decref(msg);
			if (!swallow && ht->cbs.on_line)
				ht->cbs.on_line(ht->cbs.arg, l->line, l->len);
		}
		free(l->line);
		free(l);
	}
}

static void ht_free(struct http_tp *ht);

static void ht_maybe_free(struct http_tp *ht) {
	if (ht->closing && TAILQ_EMPTY(&ht->reqs))
		event_active(ht->work, EV_TIMEOUT, 1);
}

/* After libcurl ran: finish exchanges, then talk to the owner. */
static void ht_after_action(struct http_tp *ht) {
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(ht->loop.multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct http_req *r = NULL;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (ht->closing) {
			TAILQ_REMOVE(&ht->reqs, r, link);
			req_free(r);
			continue;
		}
		req_done(r, rc);
		if (r->kind == REQ_POST && r->body && strstr(r->body, "\"notifications/initialized\"") &&
		    ht->gate == GATE_WAIT_POST) {
			ht->gate = GATE_WAIT_GET;
			if (rc == CURLE_OK && r->status / 100 == 2)
				stream_open(ht, 0);
		}
		TAILQ_REMOVE(&ht->reqs, r, link);
		req_free(r);
	}
	if (ht->gate == GATE_WAIT_GET && (ht->stream == NULL || ht->stream->headers_done))
		gate_open(ht);
	if (ht->legacy && ht->post_url && !ht->closing)
		release_held(ht);
	deliver_inbox(ht);
	if (ht->report != NULL && !ht->closing && !ht->reported) {
		ht->reported = true;
		if (ht->cbs.on_close)
			ht->cbs.on_close(ht->cbs.arg, ht->report);
	}
	ht_maybe_free(ht);
}

/* --- the ops ------------------------------------------------------------------- */

static int ht_send(struct mcp_transport *t, const char *line, size_t len) {
	struct http_tp *ht = (struct http_tp *)t;
	if (ht->closing || ht->reported || ht->report)
		return -1;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	json_t *msg = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	const json_t *method = json_object_get(msg, "method");
	const json_t *id = json_object_get(msg, "id");
	struct http_req *r = req_new(ht, REQ_POST);
	r->body = xmalloc(len + 1);
	memcpy(r->body, line, len);
	r->body[len] = '\0';
	r->body_len = len;
	if (json_is_string(method) && id != NULL && !json_is_null(id)) {
		r->id = json_incref((json_t *)id);
		if (strcmp(json_string_value(method), "initialize") == 0) {
			r->is_init = true;
			free(ht->init_line);
			ht->init_line = xstrdup(r->body);
			json_decref(ht->init_id);
			ht->init_id = json_incref((json_t *)id);
			ht->awaiting_init = true;
		}
	}
	json_decref(msg);
	if (r->id != NULL && grant_expiring(ht))
		renew_start(ht, NULL, NULL);
	if ((ht->legacy && ht->post_url == NULL) || ht->reinit || ht->gate || ht->renew) {
		log_debug("mcp server %s: a message waits for %s", ht->name,
		          ht->reinit  ? "a new session"
		          : ht->gate  ? "the GET stream"
		          : ht->renew ? "the access token's renewal"
		                      : "the server's endpoint event");
		TAILQ_INSERT_TAIL(&ht->held, r, link);
		return 0;
	}
	TAILQ_INSERT_TAIL(&ht->reqs, r, link);
	req_start(r);
	if (!ht->legacy && !ht->get_unsupported && strstr(r->body, "\"notifications/initialized\"")) {
		/*
		 * Hold what follows until the GET stream is open: a server may send
		 * its requests (elicitation, roots) only there, and drops them when
		 * no GET is connected yet. Costs one round trip per session.
		 */
		struct timeval tv = {2, 0};
		ht->gate = GATE_WAIT_POST;
		evtimer_add(ht->gate_timer, &tv);
	}
	if (r->id != NULL && !r->is_init && ht->stream == NULL)
		stream_open(ht, 0);
	return 0;
}

static void on_work(evutil_socket_t fd, short what, void *arg) {
	struct http_tp *ht = arg;
	(void)fd;
	(void)what;
	if (ht->closing && TAILQ_EMPTY(&ht->reqs)) {
		TAILQ_REMOVE(&closing_list, ht, link);
		ht_free(ht);
	}
}

static void ht_close(struct mcp_transport *t) {
	struct http_tp *ht = (struct http_tp *)t;
	struct http_req *r;
	ht->closing = true;
	if (ht->renew) {
		mcp_auth_renew_cancel(ht->renew);
		ht->renew = NULL;
	}
	ht->def = NULL;
	while ((r = TAILQ_FIRST(&ht->held)) != NULL) {
		TAILQ_REMOVE(&ht->held, r, link);
		req_free(r);
	}
	while ((r = TAILQ_FIRST(&ht->reqs)) != NULL) {
		TAILQ_REMOVE(&ht->reqs, r, link);
		req_free(r);
	}
	if (ht->session_id != NULL && !ht->legacy) {
		/* The spec's polite goodbye; 405 (not allowed) is fine too. */
		r = req_new(ht, REQ_DELETE);
		TAILQ_INSERT_TAIL(&ht->reqs, r, link);
		req_start(r);
	}
	TAILQ_INSERT_TAIL(&closing_list, ht, link);
	ht_maybe_free(ht);
}

static void ht_free(struct http_tp *ht) {
	struct http_req *r;
	struct inbox_line *l;
	while ((r = TAILQ_FIRST(&ht->reqs)) != NULL) {
		TAILQ_REMOVE(&ht->reqs, r, link);
		req_free(r);
	}
	while ((r = TAILQ_FIRST(&ht->held)) != NULL) {
		TAILQ_REMOVE(&ht->held, r, link);
		req_free(r);
	}
	while ((l = STAILQ_FIRST(&ht->inbox)) != NULL) {
		STAILQ_REMOVE_HEAD(&ht->inbox, link);
		free(l->line);
		free(l);
	}
	curl_loop_clear(&ht->loop);
	event_free(ht->work);
	event_free(ht->gate_timer);
	for (size_t i = 0; ht->headers && ht->headers[i]; i++)
		explicit_bzero(ht->headers[i], strlen(ht->headers[i]));
	strv_free(ht->headers);
	free(ht->name);
	free(ht->url);
	free(ht->post_url);
	free(ht->where);
	free(ht->ca_file);
	free(ht->session_id);
	free(ht->proto_version);
	free(ht->init_line);
	json_decref(ht->init_id);
	free(ht->report);
	mcp_auth_grant_clear(&ht->grant);
	free(ht);
	curl_global_cleanup();
}

static const char *ht_stderr_tail(struct mcp_transport *t) {
	return ((struct http_tp *)t)->detail;
}

static long ht_pid(struct mcp_transport *t) {
	(void)t;
	return 0;
}

static const struct mcp_transport_ops http_ops = {
	.name = "http",
	.send = ht_send,
	.close = ht_close,
	.stderr_tail = ht_stderr_tail,
	.pid = ht_pid,
};

/* "Name: ${...}" entries expanded; NULL with *@cause naming the header. */
static char **expand_headers(const struct mcp_server_def *def, char **cause) {
	size_t n = strv_len(def->headers);
	char **out = xcalloc(n + 1, sizeof *out);
	for (size_t i = 0; i < n; i++) {
		const char *colon = strchr(def->headers[i], ':');
		char *why = NULL, *v = colon ? mcp_headers_expand(colon + 2, &why) : NULL;
		if (v == NULL) {
			*cause = xasprintf("server %s: header %.*s: %s", def->name,
			                   colon ? (int)(colon - def->headers[i]) : 0, def->headers[i],
			                   why ? why : "malformed");
			free(why);
			strv_free(out);
			return NULL;
		}
		out[i] = xasprintf("%.*s: %s", (int)(colon - def->headers[i]), def->headers[i], v);
		explicit_bzero(v, strlen(v));
		free(v);
	}
	return out;
}

struct mcp_transport *mcp_http_open(struct event_base *base,
                                              const struct mcp_server_def *def,
                                              const struct mcp_transport_cbs *cbs,
                                              struct mcp_pool *pool, char **cause) {
	if (def->url == NULL) {
		*cause = xasprintf("server %s has no \"url\"", def->name);
		return NULL;
	}
	char **headers = expand_headers(def, cause);
	if (headers == NULL)
		return NULL;
	if (secmem_need() < 0)
		log_warning("server %s: no memory apart for its tokens (the secure heap could not be "
		            "made); they stay in ordinary memory, wiped when freed", def->name);
	char *why = NULL;
	if (netlib_need_curl(&why) < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*cause = xasprintf("server %s: %s", def->name,
		                   why ? why : "libcurl could not be initialised");
		free(why);
		strv_free(headers);
		return NULL;
	}
	struct http_tp *ht = xcalloc(1, sizeof *ht);
	ht->base.ops = &http_ops;
	ht->evb = base;
	ht->cbs = *cbs;
	ht->name = xstrdup(def->name);
	ht->url = xstrdup(def->url);
	ht->where = url_where(def->url);
	ht->headers = headers;
	ht->ca_file = xstrdup_or_null(def->ca_file);
	ht->legacy = def->type == MCP_SERVER_SSE;
	ht->stream_retry_ms = -1;
	ht->pool = pool;
	ht->def = def;
	const struct mcp_auth_store *st = pool ? mcp_pool_auth_store(pool) : NULL;
	if (st && st->load && st->load(st->arg, def->name, &ht->grant) == 0)
		ht->have_grant = ht->grant.access_token != NULL;
	else
		mcp_auth_grant_clear(&ht->grant);
	TAILQ_INIT(&ht->reqs);
	TAILQ_INIT(&ht->held);
	STAILQ_INIT(&ht->inbox);
	curl_loop_init(&ht->loop, base, ht_after_loop, ht);
	ht->work = event_new(base, -1, 0, on_work, ht);
	ht->gate_timer = evtimer_new(base, on_gate_timer, ht);
	if (ht->legacy) {
		struct http_req *g = req_new(ht, REQ_GET_LEGACY);
		TAILQ_INSERT_TAIL(&ht->reqs, g, link);
		req_start(g);
	}
	return &ht->base;
}

void mcp_http_finish_all(void) {
	struct http_tp *ht;
	while ((ht = TAILQ_FIRST(&closing_list)) != NULL) {
		/* Only DELETEs are left; give them a moment without the event loop. */
		for (int i = 0; i < 20 && !TAILQ_EMPTY(&ht->reqs); i++) {
			int running = 0, nfds;
			curl_multi_perform(ht->loop.multi, &running);
			CURLMsg *m;
			int left;
			while ((m = curl_multi_info_read(ht->loop.multi, &left)) != NULL) {
				struct http_req *r = NULL;
				curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
				if (m->msg == CURLMSG_DONE && r != NULL) {
					TAILQ_REMOVE(&ht->reqs, r, link);
					req_free(r);
				}
			}
			if (running == 0 || TAILQ_EMPTY(&ht->reqs))
				break;
			curl_multi_poll(ht->loop.multi, NULL, 0, 50, &nfds);
		}
		TAILQ_REMOVE(&closing_list, ht, link);
		ht_free(ht);
	}
}

/* --- a session taken up again (a task resumed after a restart) ---------------- */

const char *mcp_http_session_id(struct mcp_transport *t) {
	if (t == NULL || t->ops != &http_ops)
		return NULL;
	struct http_tp *ht = (struct http_tp *)t;
	return ht->legacy ? NULL : ht->session_id;
}

void mcp_http_adopt(struct mcp_transport *t, const char *session_id, const char *proto_version,
                    const char *init_line) {
	if (t == NULL || t->ops != &http_ops)
		return;
	struct http_tp *ht = (struct http_tp *)t;
	if (session_id && strlen(session_id) < SESSION_ID_MAX) {
		free(ht->session_id);
		ht->session_id = xstrdup(session_id);
	}
	if (proto_version && strlen(proto_version) < 64) {
		free(ht->proto_version);
		ht->proto_version = xstrdup(proto_version);
	}
	/* What a 404 (the server ended that session) starts a new one with. */
	free(ht->init_line);
	ht->init_line = init_line ? xstrdup(init_line) : NULL;
}

void mcp_http_keep_session(struct mcp_transport *t) {
	if (t == NULL || t->ops != &http_ops)
		return;
	struct http_tp *ht = (struct http_tp *)t;
	free(ht->session_id);
	ht->session_id = NULL;
}
