/*
 * auth_login.c - a person's login on a remote MCP server (see auth_login.h):
 * the loopback listener (libevent's evhttp on 127.0.0.1, port 0), the
 * pasted redirect, the login's life (starting, waiting, exchanging, done)
 * and the waiters of auth.login and auth.complete.
 */
#include "daemon/auth_login.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/secmem.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/events.h"
#include "daemon/mcp/mcp_auth.h"

#define AUTH_LOGIN_PATH "/callback"

enum login_phase { PHASE_STARTING, PHASE_WAITING, PHASE_EXCHANGING, PHASE_AUTHORIZED,
                   PHASE_FAILED };

struct waiter {
	struct waiter *next;
	auth_login_reply_fn fn;
	void *arg;
	bool start; /* auth.login's: answered with the URL */
	bool dead;  /* its connection went away */
};

struct login {
	struct login *next;
	struct auth_logins *L;
	char *server;
	char *url;          /* the authorization URL (not secret: state and challenge only) */
	char *state;        /* this login's state, from the URL */
	char *redirect_uri; /* http://127.0.0.1:PORT/callback */
	int port;
	enum login_phase phase;
	char *cause;        /* PHASE_FAILED: why */
	int64_t expires_ms;
	struct mcp_auth_login *ml; /* the flow's; NULL once it has called back for good */
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evhttp_request *req; /* the browser's redirect, answered when the exchange ends */
	struct event *timer;        /* the login's deadline, then how long its result is kept */
	struct event *defer;        /* answers waiters of a finished login from the loop */
	struct waiter *waiters;
};

struct auth_logins {
	struct event_base *base;
	struct mcp_pool *pool;
	struct events *events;
	struct login *logins;
};

static const char *const phase_names[] = {"starting", "waiting", "exchanging", "authorized",
                                          "failed"};

struct auth_logins *auth_login_open(struct event_base *base, struct mcp_pool *pool,
                                    struct events *events) {
	struct auth_logins *L = xcalloc(1, sizeof *L);
	L->base = base;
	L->pool = pool;
	L->events = events;
	return L;
}

static struct login *login_find(struct auth_logins *L, const char *server) {
	for (struct login *lg = L->logins; lg; lg = lg->next)
		if (strcmp(lg->server, server) == 0)
			return lg;
	return NULL;
}

static void timer_in(struct event *ev, int64_t ms) {
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(ev, &tv);
}

/* Call the waiters (@start: auth.login's only), each once; dead ones are just freed. */
static void login_fire(struct login *lg, bool start, int rc, const json_t *result,
                       const char *cause) {
	struct waiter **pp = &lg->waiters;
	while (*pp) {
		struct waiter *w = *pp;
		if (start && !w->start) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (!w->dead)
			w->fn(w->arg, rc, result, cause);
		free(w);
	}
}

static void secret_free(char *s) {
	secmem_free(s);
}

/* --- the page the browser sees ------------------------------------------------- */

static void page_send(struct evhttp_request *req, int code, const char *title, const char *text) {
	struct evbuffer *b = evbuffer_new();
	char *t = evhttp_htmlescape(title), *x = evhttp_htmlescape(text);
	evbuffer_add_printf(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mcpjobd: "
	                    "%s</title></head>\n<body><h1>%s</h1><p>%s</p></body></html>\n", t, t, x);
	free(t);
	free(x);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Bad Request", b);
	evbuffer_free(b);
}

/* The listener takes no new connection (one use); the one it has is answered. */
static void listener_close(struct login *lg) {
	if (lg->bound) {
		evhttp_del_accept_socket(lg->http, lg->bound);
		lg->bound = NULL;
	}
}

/* --- a login's life ------------------------------------------------------------ */

static void login_free(struct login *lg) {
	struct auth_logins *L = lg->L;
	for (struct login **pp = &L->logins; *pp; pp = &(*pp)->next) {
		if (*pp == lg) {
			*pp = lg->next;
			break;
		}
	}
	if (lg->ml)
		mcp_auth_login_cancel(lg->ml);
	if (lg->req)
		page_send(lg->req, 400, "Login given up", "mcpjobd gave this login up.");
	for (struct waiter *w = lg->waiters, *next; w; w = next) {
		next = w->next;
		free(w); /* only at shutdown or replacement, after login_fire(): none is live */
	}
	if (lg->http)
		evhttp_free(lg->http);
	if (lg->timer)
		event_free(lg->timer);
	if (lg->defer)
		event_free(lg->defer);
	free(lg->server);
	free(lg->url);
	secret_free(lg->state);
	free(lg->redirect_uri);
	free(lg->cause);
	free(lg);
}

static json_t *login_result(const struct login *lg) {
	return json_pack("{s:s, s:b}", "server", lg->server, "authorized", 1);
}

/* The login ended (@ok, or not with @cause): the event, the page, the waiters. */
static void login_end(struct login *lg, bool ok, const char *cause) {
	struct auth_logins *L = lg->L;
	lg->phase = ok ? PHASE_AUTHORIZED : PHASE_FAILED;
	free(lg->cause);
	lg->cause = ok ? NULL : xstrdup(cause ? cause : "the login failed");
	listener_close(lg);
	if (ok)
		log_notice("%s: logged in; the token is kept in the state directory", lg->server);
	else
		log_warning("%s: login failed: %s", lg->server, lg->cause);
	events_emit(L->events, ok ? EVENT_AUTH_AUTHORIZED : EVENT_AUTH_FAILED, NULL,
	            json_pack("{s:s, s:o}", "server", lg->server, "message",
	                      ok ? json_null() : json_string(lg->cause)));
	if (lg->req) {
		char *text = ok ? xasprintf("mcpjobd is authorized on %s. You may close this page.",
		                            lg->server)
		                : xasprintf("The login on %s failed: %s", lg->server, lg->cause);
		page_send(lg->req, ok ? 200 : 400, ok ? "Logged in" : "Login failed", text);
		free(text);
		lg->req = NULL;
	}
	json_t *res = ok ? login_result(lg) : NULL;
	login_fire(lg, false, ok ? 0 : RPC_E_AUTH_FAILED, res, lg->cause);
	json_decref(res);
	evtimer_del(lg->timer);
	timer_in(lg->timer, AUTH_LOGIN_KEEP_MS);
}

static void login_on_timer(evutil_socket_t fd, short what, void *arg) {
	struct login *lg = arg;
	(void)fd;
	(void)what;
	if (lg->phase == PHASE_AUTHORIZED || lg->phase == PHASE_FAILED) {
		login_free(lg); /* its result was kept long enough */
		return;
	}
	if (lg->phase == PHASE_EXCHANGING)
		return; /* the token request has its own timeout */
	if (lg->ml)
		mcp_auth_login_cancel(lg->ml);
	lg->ml = NULL;
	char *why = xasprintf("no redirect came back within %d minutes: run `mcpjobctl auth login "
	                      "%s` again", AUTH_LOGIN_TIMEOUT_MS / 60000, lg->server);
	login_end(lg, false, why);
	free(why);
}

/* Answer the waiters of a finished login (auth.complete after the end). */
static void login_on_defer(evutil_socket_t fd, short what, void *arg) {
	struct login *lg = arg;
	(void)fd;
	(void)what;
	json_t *res = lg->phase == PHASE_AUTHORIZED ? login_result(lg) : NULL;
	login_fire(lg, false, res ? 0 : RPC_E_AUTH_FAILED, res, lg->cause);
	json_decref(res);
}

static void login_on_done(void *arg, bool ok, const char *cause) {
	struct login *lg = arg;
	lg->ml = NULL; /* freed by the flow after this call */
	login_end(lg, ok, cause);
}

/* Exchange @code (with @state, checked to be the login's) for tokens. */
static void login_exchange(struct login *lg, const char *code, const char *state) {
	lg->phase = PHASE_EXCHANGING;
	listener_close(lg);
	mcp_auth_login_finish(lg->ml, code, state, login_on_done, lg);
}

/* The value of @key in the query @q (caller frees), or NULL. */
static char *query_get(const char *q, const char *key) {
	struct evkeyvalq kv = {0};
	TAILQ_INIT(&kv);
	if (q == NULL || evhttp_parse_query_str(q, &kv) != 0) {
		evhttp_clear_headers(&kv);
		return NULL;
	}
	const char *v = evhttp_find_header(&kv, key);
	char *out = v ? xstrdup(v) : NULL;
	for (struct evkeyval *e = TAILQ_FIRST(&kv); e; e = TAILQ_NEXT(e, next))
		OPENSSL_cleanse(e->value, strlen(e->value));
	evhttp_clear_headers(&kv);
	return out;
}

/*
 * What a redirect's query says: 0 with *@code (a secret) when it is this
 * login's, 1 when the authorization server answered an error (*@cause says
 * which: the login has failed), -1 with *@cause when it is refused.
 */
static int redirect_check(struct login *lg, const char *query, char **code, char **cause) {
	char *state = query_get(query, "state"), *err = query_get(query, "error");
	int rc = -1;
	*code = NULL;
	if (state == NULL || strcmp(state, lg->state) != 0) {
		*cause = xstrdup("the redirect's state is not this login's (a redirect from another "
		                 "login, or forged): refused, nothing stored; use the address of the "
		                 "latest login");
	} else if (err != NULL) {
		char *desc = query_get(query, "error_description");
		*cause = xasprintf("the authorization server refused the login: %.64s%s%.200s%s", err,
		                   desc ? " (" : "", desc ? desc : "", desc ? ")" : "");
		free(desc);
		rc = 1;
	} else if ((*code = query_get(query, "code")) == NULL || **code == '\0') {
		*cause = xstrdup("the redirect carries no code: refused; paste the whole address the "
		                 "browser was sent to");
		secret_free(*code);
		*code = NULL;
	} else {
		rc = 0;
	}
	secret_free(state);
	free(err);
	return rc;
}

/* The browser came back to the loopback listener. */
static void login_on_http(struct evhttp_request *req, void *arg) {
	struct login *lg = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET || path == NULL ||
	    strcmp(path, AUTH_LOGIN_PATH) != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if (lg->phase != PHASE_WAITING || lg->req != NULL) {
		page_send(req, 400, "Not waiting", "This login is not waiting for a redirect any more.");
		return;
	}
	char *code = NULL, *cause = NULL;
	int rc = redirect_check(lg, evhttp_uri_get_query(u), &code, &cause);
	if (rc < 0) {
		log_warning("%s: a redirect to the login listener was refused: %s", lg->server, cause);
		page_send(req, 400, "Refused", cause);
	} else if (rc > 0) {
		lg->req = req;
		if (lg->ml)
			mcp_auth_login_cancel(lg->ml);
		lg->ml = NULL;
		login_end(lg, false, cause);
	} else {
		lg->req = req;
		login_exchange(lg, code, lg->state);
	}
	secret_free(code);
	free(cause);
}

static void login_on_url(void *arg, const char *url, const char *cause) {
	struct login *lg = arg;
	if (url == NULL) {
		/* The flow failed before a URL; the login waits for cancel(). */
		if (lg->ml)
			mcp_auth_login_cancel(lg->ml);
		lg->ml = NULL;
		char *why = xasprintf("cannot start a login on %s: %s", lg->server,
		                      cause ? cause : "no authorization URL");
		login_fire(lg, true, RPC_E_AUTH_FAILED, NULL, why);
		login_end(lg, false, why);
		free(why);
		return;
	}
	struct evhttp_uri *u = evhttp_uri_parse(url);
	lg->state = u ? query_get(evhttp_uri_get_query(u), "state") : NULL;
	if (u)
		evhttp_uri_free(u);
	if (lg->state == NULL) {
		login_fire(lg, true, RPC_E_AUTH_FAILED, NULL, "the authorization URL has no state");
		if (lg->ml)
			mcp_auth_login_cancel(lg->ml);
		lg->ml = NULL;
		login_end(lg, false, "the authorization URL has no state");
		return;
	}
	lg->url = xstrdup(url);
	lg->phase = PHASE_WAITING;
	json_t *res = json_pack("{s:s, s:s, s:s, s:o}", "server", lg->server, "url", lg->url,
	                        "redirect_uri", lg->redirect_uri, "expires_at",
	                        time_to_json(lg->expires_ms));
	login_fire(lg, true, 0, res, NULL);
	json_decref(res);
}

/* A listener on 127.0.0.1 at a port the kernel picks (RFC 8252 section 7.3). */
static int login_listen(struct login *lg, char **cause) {
	lg->http = evhttp_new(lg->L->base);
	lg->bound = lg->http ? evhttp_bind_socket_with_handle(lg->http, "127.0.0.1", 0) : NULL;
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	if (lg->bound == NULL ||
	    getsockname(evhttp_bound_socket_get_fd(lg->bound), (struct sockaddr *)&sin, &len) != 0) {
		*cause = xstrdup("cannot listen on 127.0.0.1 for the login's redirect (is the loopback "
		                 "interface up?)");
		return -1;
	}
	lg->port = ntohs(sin.sin_port);
	lg->redirect_uri = xasprintf("http://127.0.0.1:%d%s", lg->port, AUTH_LOGIN_PATH);
	evhttp_set_allowed_methods(lg->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(lg->http, 16 * 1024);
	evhttp_set_max_body_size(lg->http, 0);
	evhttp_set_timeout(lg->http, 30);
	evhttp_set_gencb(lg->http, login_on_http, lg);
	return 0;
}

static struct waiter *waiter_add(struct login *lg, bool start, auth_login_reply_fn fn,
                                 void *arg) {
	struct waiter *w = xcalloc(1, sizeof *w), **pp = &lg->waiters;
	w->fn = fn;
	w->arg = arg;
	w->start = start;
	while (*pp)
		pp = &(*pp)->next;
	*pp = w;
	return w;
}

/* Give @lg up now: its waiters hear @why; it goes at once. */
static void login_abort(struct login *lg, const char *why) {
	if (lg->phase != PHASE_AUTHORIZED && lg->phase != PHASE_FAILED) {
		if (lg->ml)
			mcp_auth_login_cancel(lg->ml);
		lg->ml = NULL;
		login_fire(lg, true, RPC_E_AUTH_FAILED, NULL, why);
		login_end(lg, false, why);
	}
	login_free(lg);
}

void *auth_login_start(struct auth_logins *L, const char *server, auth_login_reply_fn fn,
                       void *arg, int *rc, char **cause) {
	struct login *old = login_find(L, server);
	if (old)
		login_abort(old, "replaced by a newer login on the same server");
	struct login *lg = xcalloc(1, sizeof *lg);
	lg->L = L;
	lg->server = xstrdup(server);
	lg->phase = PHASE_STARTING;
	lg->timer = evtimer_new(L->base, login_on_timer, lg);
	lg->defer = event_new(L->base, -1, 0, login_on_defer, lg);
	lg->next = L->logins;
	L->logins = lg;
	char *why = NULL;
	if (login_listen(lg, cause) < 0) {
		*rc = RPC_E_INTERNAL;
		login_free(lg);
		return NULL;
	}
	lg->ml = mcp_auth_login_start(L->pool, server, lg->redirect_uri, login_on_url, lg, &why);
	if (lg->ml == NULL) {
		*cause = xasprintf("cannot start a login on %s: %s", server, why ? why : "refused");
		free(why);
		*rc = RPC_E_AUTH_FAILED;
		login_free(lg);
		return NULL;
	}
	lg->expires_ms = time_now_ms() + AUTH_LOGIN_TIMEOUT_MS;
	timer_in(lg->timer, AUTH_LOGIN_TIMEOUT_MS);
	log_info("%s: login started; waiting for the redirect at %s", server, lg->redirect_uri);
	return waiter_add(lg, true, fn, arg);
}

/* Trim @s (copied) of blanks at both ends. */
static char *trimmed(const char *s) {
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	return xasprintf("%.*s", (int)n, s);
}

/*
 * A pasted redirect: the address the browser was sent to (it must be this
 * login's redirect URI), its query alone, or the code alone. 0 with *@code,
 * 1 when it says the server refused (the login failed), -1 when refused.
 */
static int paste_check(struct login *lg, const char *pasted, char **code, char **cause) {
	char *p = trimmed(pasted);
	int rc = -1;
	*code = NULL;
	if (strstr(p, "://") != NULL) {
		struct evhttp_uri *u = evhttp_uri_parse(p);
		const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
		const char *host = u ? evhttp_uri_get_host(u) : NULL;
		const char *path = u ? evhttp_uri_get_path(u) : NULL;
		int port = u ? evhttp_uri_get_port(u) : -1;
		if (u == NULL || scheme == NULL || strcmp(scheme, "http") != 0 || host == NULL ||
		    strcmp(host, "127.0.0.1") != 0 || port != lg->port || path == NULL ||
		    strcmp(path, AUTH_LOGIN_PATH) != 0) {
			*cause = xasprintf("the pasted address goes to %.16s://%.128s%.64s, not to this "
			                   "login's redirect URI %s: refused, nothing stored (paste the "
			                   "address the browser was sent to after the login)",
			                   scheme ? scheme : "?", host ? host : "?", path ? path : "",
			                   lg->redirect_uri);
		} else {
			rc = redirect_check(lg, evhttp_uri_get_query(u), code, cause);
		}
		if (u)
			evhttp_uri_free(u);
	} else if (strstr(p, "code=") != NULL || strstr(p, "error=") != NULL) {
		rc = redirect_check(lg, p[0] == '?' ? p + 1 : p, code, cause);
	} else if (*p == '\0' || strlen(p) > 2048 || strpbrk(p, " \t\"<>\\") != NULL) {
		*cause = xstrdup("the pasted text is neither the redirect address nor a code: refused "
		                 "(paste the whole address the browser was sent to)");
	} else {
		*code = xstrdup(p); /* the code alone: the state is the login's own */
		rc = 0;
	}
	secret_free(p);
	return rc;
}

void *auth_login_complete(struct auth_logins *L, const char *server, const char *pasted,
                          auth_login_reply_fn fn, void *arg, int *rc, char **cause) {
	struct login *lg = login_find(L, server);
	if (lg == NULL) {
		*cause = xasprintf("no login on %s is in progress: run `mcpjobctl auth login %s`",
		                   server, server);
		*rc = RPC_E_AUTH_FAILED;
		return NULL;
	}
	if (pasted != NULL && lg->phase != PHASE_WAITING) {
		*cause = xasprintf("the login on %s is %s, not waiting for a redirect", server,
		                   phase_names[lg->phase]);
		*rc = RPC_E_AUTH_FAILED;
		return NULL;
	}
	if (pasted != NULL) {
		char *code = NULL;
		int r = paste_check(lg, pasted, &code, cause);
		if (r < 0) {
			*rc = RPC_E_INVALID_PARAMS;
			log_warning("%s: a pasted redirect was refused: %s", server, *cause);
			return NULL;
		}
		struct waiter *w;
		if (r > 0) {
			/* The server said no: the login has failed; this caller hears it from the loop. */
			if (lg->ml)
				mcp_auth_login_cancel(lg->ml);
			lg->ml = NULL;
			login_end(lg, false, *cause);
			w = waiter_add(lg, false, fn, arg);
			event_active(lg->defer, EV_TIMEOUT, 1);
		} else {
			w = waiter_add(lg, false, fn, arg);
			login_exchange(lg, code, lg->state);
		}
		free(*cause);
		*cause = NULL;
		secret_free(code);
		return w;
	}
	struct waiter *w = waiter_add(lg, false, fn, arg);
	if (lg->phase == PHASE_AUTHORIZED || lg->phase == PHASE_FAILED)
		event_active(lg->defer, EV_TIMEOUT, 1);
	return w;
}

void auth_login_forget(struct auth_logins *L, void *handle) {
	for (struct login *lg = L->logins; lg; lg = lg->next)
		for (struct waiter *w = lg->waiters; w; w = w->next)
			if (w == handle)
				w->dead = true;
}

void auth_login_cancel(struct auth_logins *L, const char *server, const char *why) {
	struct login *lg = login_find(L, server);
	if (lg)
		login_abort(lg, why);
}

const char *auth_login_phase(struct auth_logins *L, const char *server) {
	struct login *lg = login_find(L, server);
	return lg ? phase_names[lg->phase] : "none";
}

void auth_login_close(struct auth_logins *L) {
	if (L == NULL)
		return;
	while (L->logins) {
		struct login *lg = L->logins;
		for (struct waiter *w = lg->waiters; w; w = w->next)
			w->dead = true; /* their connections are closed with the daemon */
		login_free(lg);
	}
	free(L);
}
