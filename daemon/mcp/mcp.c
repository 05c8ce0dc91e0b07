/*
 * mcp.c - the MCP server pool: one session per configured server, each a
 * small state machine, and tool calls multiplexed over it.
 *
 *   stopped --start--> starting --spawned--> initializing --reply ok--> ready
 *      ^                  |                       |                      |
 *      +---- failure -----+-----------------------+---- died / idle -----+
 *
 * Shutting a server down belongs to the transport (it walks close stdin,
 * SIGTERM, SIGKILL on its own once let go), so a session is back to
 * "stopped" the moment it lets its transport go, and a new call may start a
 * fresh server while the old one is still exiting.
 *
 * Calls wait in the session's queue until it is ready. Every done callback
 * is delivered from its own event (never from inside an API call or a
 * transport handler) so callers may start or cancel calls from it; the
 * exceptions are mcp_call_cancel() (done follows at once) and
 * mcp_pool_free().
 */
#include "daemon/mcp/mcp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/jsonrpc.h"
#include "common/jsontext.h"
#include "common/log.h"
#include "common/strv.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp_auth.h"
#include "daemon/mcp/mcp_elicit.h"
#include "daemon/mcp/mcp_http.h"
#include "daemon/mcp/mcp_proto.h"
#include "daemon/mcp/mcp_transport.h"

#define INIT_TIMEOUT_MS       30000
#define FAIL_WINDOW_MS        60000 /* start failures this close count as consecutive */
#define FAIL_LIMIT            3
#define FAILFAST_MS           30000
#define GARBAGE_LIMIT         1000  /* consecutive non-JSON-RPC lines before we give up */
#define DEFAULT_IDLE_MS       60000
#define LIST_PAGES_MAX        1000  /* tools/list pages followed at most */

enum sess_state { SESS_STOPPED, SESS_STARTING, SESS_INITIALIZING, SESS_READY };
enum call_kind { CALL_TOOL, CALL_LIST };
enum call_state { CALL_QUEUED, CALL_SENT, CALL_DONE };
/* A task-augmented tools/call (2025-11-25 tasks): where it is. */
enum task_step { TASK_NONE, TASK_CREATING, TASK_POLLING, TASK_RESULT };

struct mcp_call {
	struct mcp_pool *pool;
	struct mcp_session *s;     /* NULL once done */
	enum call_kind kind;
	enum call_state state;
	char *tool;
	char *args;                /* CALL_TOOL: its arguments, encoded once */
	size_t args_len;
	json_t *tools;             /* CALL_LIST: pages gathered so far */
	json_t *cursors;           /* CALL_LIST: the cursors followed */
	bool internal;             /* CALL_LIST: ours, to learn the tools' taskSupport */
	enum task_step tstep;
	char *task_id;             /* the server's task, once created */
	int64_t poll_ms;           /* its pollInterval */
	mcp_task_fn task_fn;       /* told the task id once it is known */
	struct event *poll_ev;
	int64_t id;                /* request id while sent */
	uint64_t garbage_at_send;  /* the session's garbage_total when sent */
	char *timeout_phase;       /* where it was when its own deadline passed */
	int64_t timeout_ms;
	char *token;               /* progress token */
	struct event *timer;
	struct event *deliver;
	struct mcp_call_result res;/* CALL_DONE: waiting for delivery */
	mcp_progress_fn progress;
	mcp_done_fn done;
	void *arg;
	TAILQ_ENTRY(mcp_call) link;/* session calls, or pool deliveries */
};
TAILQ_HEAD(call_list, mcp_call);

struct mcp_session {
	struct mcp_pool *pool;
	struct mcp_server_def *def; /* our own copy: configs are replaced on reload */
	enum sess_state state;
	bool retiring;              /* its definition changed: free once idle */
	struct mcp_transport *t;
	int64_t next_id;
	int64_t init_id;
	char *version;
	json_t *tools;              /* cached tools/list result, NULL when unknown */
	struct call_list calls;     /* queued and sent */
	struct event *idle_ev, *init_ev;
	int failures;               /* consecutive start failures */
	int64_t first_failure_ms;   /* monotonic */
	int64_t failfast_until_ms;  /* monotonic */
	char *last_error, *last_detail;
	bool last_permanent;        /* the last start failed on the handshake itself */
	bool logging;               /* the server declared the logging capability */
	bool task_calls;            /* it declared tasks.requests.tools.call */
	bool listing;               /* our own tools/list (for taskSupport) is out */
	char *adopt;                /* a session to take up at the next start (mcp_resume_task()) */
	bool keep_session;          /* a task was left to run in it (mcp_call_leave()): no DELETE */
	int garbage_run;
	uint64_t garbage_total;     /* lines that were not JSON-RPC, this transport */
	char last_garbage[200];     /* why the last one was not */
	struct log_ratelimit rl_log, rl_garbage;
	TAILQ_ENTRY(mcp_session) link;
};

struct mcp_pool {
	struct event_base *base;
	const struct config *cfg;
	TAILQ_HEAD(, mcp_session) sessions;
	struct call_list delivering;
	uint64_t next_token;
	char *store_id;            /* marks the servers it starts (orphan.h), or NULL */
	struct mcp_auth_store auth_store; /* mcp_pool_set_auth_store() */
	bool have_auth_store;
	struct auth_hint *hints;   /* what the last 401/403 of each server asked for */
};

struct auth_hint {
	char *server, *resource_metadata, *scope;
	struct auth_hint *next;
};

static void session_send_queued(struct mcp_session *s);
static void session_lost(struct mcp_session *s, const char *why);
static void session_arm_idle(struct mcp_session *s);

/* --- server definitions --------------------------------------------------- */

/* Like config_find_server(); local so the pool links without config.c. */
static const struct mcp_server_def *find_def(const struct config *cfg, const char *name) {
	for (size_t i = 0; cfg && i < cfg->nservers; i++)
		if (strcmp(cfg->servers[i]->name, name) == 0)
			return cfg->servers[i];
	return NULL;
}

/* Who @d's server runs as: its own "user", else the configured default_user. */
static const char *def_user(const struct mcp_server_def *d, const struct config *cfg) {
	return d->user ? d->user : cfg ? cfg->default_user : NULL;
}

/* A copy with the user made explicit, so the transport needs no config. */
static struct mcp_server_def *def_copy(const struct mcp_server_def *d, const struct config *cfg) {
	return config_server_copy(d, d->type == MCP_SERVER_STDIO ? def_user(d, cfg) : NULL);
}

/* @a from @cfg against our copy @b (whose user is already explicit); roots
 * aside, as far as both declare them (a change is notified, not restarted). */
static bool def_equal(const struct mcp_server_def *a, const struct config *cfg,
                      const struct mcp_server_def *b) {
	struct mcp_server_def *c = def_copy(a, cfg);
	bool same = config_server_equal(c, b);
	config_server_free(c);
	return same;
}

/* --- sending --------------------------------------------------------------- */

/* 0 when the transport took @line; -1 when there is none or it refused it
 * (it is closing; its failure reaches session_on_close()). */
static int session_send_line(struct mcp_session *s, char *line /* freed */, size_t len) {
	int rc = s->t != NULL ? s->t->ops->send(s->t, line, len) : -1;
	free(line);
	return rc;
}

static int session_send(struct mcp_session *s, json_t *msg /* stolen */) {
	size_t len;
	char *line = rpc_encode(msg, &len);
	int rc = session_send_line(s, line, len);
	json_decref(msg);
	return rc;
}

static int session_request(struct mcp_session *s, int64_t id, const char *method,
                           json_t *params /* stolen */) {
	json_t *jid = json_integer(id);
	int rc = session_send(s, rpc_request(jid, method, params));
	json_decref(jid);
	json_decref(params);
	return rc;
}

static void session_notify(struct mcp_session *s, const char *method, json_t *params) {
	session_send(s, rpc_notification(method, params));
	json_decref(params);
}

/* --- finishing calls ------------------------------------------------------- */

static void call_free(struct mcp_call *c) {
	if (c->timer)
		event_free(c->timer);
	if (c->deliver)
		event_free(c->deliver);
	if (c->poll_ev)
		event_free(c->poll_ev);
	free(c->task_id);
	mcp_call_result_clear(&c->res);
	free(c->args);
	json_decref(c->tools);
	json_decref(c->cursors);
	free(c->tool);
	free(c->token);
	free(c->timeout_phase);
	free(c);
}

static void call_deliver(struct mcp_call *c) {
	TAILQ_REMOVE(&c->pool->delivering, c, link);
	struct mcp_call_result res = c->res;
	memset(&c->res, 0, sizeof c->res);
	mcp_done_fn done = c->done;
	void *arg = c->arg;
	call_free(c);
	done(arg, &res);
}

static void call_on_deliver(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	call_deliver(arg);
}

/* Take @c off its session (if any) and stop its clock. */
static void call_detach(struct mcp_call *c) {
	struct mcp_session *s = c->s;
	if (c->timer)
		evtimer_del(c->timer);
	if (c->poll_ev)
		evtimer_del(c->poll_ev);
	if (s == NULL)
		return;
	if (c->internal)
		s->listing = false;
	TAILQ_REMOVE(&s->calls, c, link);
	c->s = NULL;
	if (TAILQ_EMPTY(&s->calls))
		session_arm_idle(s);
}

/* Finish @c with @status/@message/@detail (copied); done follows from the loop. */
static void call_finish(struct mcp_call *c, enum mcp_status status, const char *message,
                        const char *detail) {
	struct mcp_call_result res = {.status = status,
	                              .message = xstrdup_or_null(message),
	                              .detail = detail && *detail ? xstrdup(detail) : NULL};
	call_detach(c);
	mcp_call_result_clear(&c->res);
	c->res = res;
	c->state = CALL_DONE;
	TAILQ_INSERT_TAIL(&c->pool->delivering, c, link);
	event_active(c->deliver, EV_TIMEOUT, 1);
}

/* Finish @c with a result built elsewhere (stolen). */
static void call_finish_result(struct mcp_call *c, struct mcp_call_result *res) {
	call_finish(c, MCP_OK, NULL, NULL);
	mcp_call_result_clear(&c->res);
	c->res = *res;
	memset(res, 0, sizeof *res);
}

static void fail_all_calls(struct mcp_session *s, enum mcp_status status, const char *why,
                           const char *detail) {
	struct mcp_call *c;
	while ((c = TAILQ_FIRST(&s->calls)) != NULL)
		call_finish(c, status, why, detail);
}

/* --- session lifecycle ----------------------------------------------------- */

static void session_drop_transport(struct mcp_session *s) {
	if (s->init_ev)
		evtimer_del(s->init_ev);
	if (s->t != NULL && s->keep_session)
		mcp_http_keep_session(s->t);
	if (s->t != NULL)
		s->t->ops->close(s->t);
	s->t = NULL;
	s->state = SESS_STOPPED;
	free(s->version);
	s->version = NULL;
	json_decref(s->tools);
	s->tools = NULL;
	s->garbage_run = 0;
	s->garbage_total = 0;
	s->last_garbage[0] = '\0';
}

/*
 * @permanent: the server answered the handshake and it cannot work (an error
 * reply, a version we do not speak): a failure, not worth a retry.
 */
static void session_start_failed(struct mcp_session *s, const char *why, const char *detail,
                                 bool permanent) {
	int64_t now = time_mono_ms();
	if (s->failures == 0 || now - s->first_failure_ms > FAIL_WINDOW_MS) {
		s->failures = 0;
		s->first_failure_ms = now;
	}
	s->failures++;
	free(s->last_error);
	free(s->last_detail);
	s->last_error = xstrdup(why);
	s->last_detail = detail && *detail ? xstrdup(detail) : NULL;
	s->last_permanent = permanent;
	if (s->failures >= FAIL_LIMIT) {
		s->failfast_until_ms = now + FAILFAST_MS;
		log_warning("mcp server %s failed to start %d times in a row; calls fail for %d s: %s",
		            s->def->name, s->failures, FAILFAST_MS / 1000, why);
	} else {
		log_warning("mcp %s", why);
	}
	session_drop_transport(s);
	fail_all_calls(s, permanent ? MCP_PROTOCOL_ERROR : MCP_TRANSPORT_ERROR, why, detail);
}

static void session_lost(struct mcp_session *s, const char *why) {
	char *detail = s->t ? xstrdup(s->t->ops->stderr_tail(s->t)) : NULL;
	if (s->state == SESS_READY) {
		log_warning("mcp %s", why);
		session_drop_transport(s);
		fail_all_calls(s, MCP_TRANSPORT_ERROR, why, detail);
	} else {
		session_start_failed(s, why, detail, false);
	}
	free(detail);
}

static void session_on_close(void *arg, const char *why) {
	session_lost(arg, why);
}

static void session_on_line(void *arg, const char *line, size_t len);

static void session_on_init_timeout(evutil_socket_t fd, short what, void *arg) {
	struct mcp_session *s = arg;
	(void)fd;
	(void)what;
	char *why = xasprintf("server %s did not answer initialize within %d s", s->def->name,
	                      INIT_TIMEOUT_MS / 1000);
	session_lost(s, why);
	free(why);
}

/*
 * Take up the session of an earlier process (s->adopt: "VERSION SESSION-ID")
 * on the transport just opened: ready at once, no initialize (it was done);
 * a server that ended the session answers 404 and the transport starts a
 * new one with the initialize we give it. False when @s cannot.
 */
static bool session_adopt(struct mcp_session *s) {
	char *line = s->adopt, *sp = strchr(line, ' ');
	s->adopt = NULL;
	if (s->def->type != MCP_SERVER_HTTP || sp == NULL || sp == line || sp[1] == '\0') {
		free(line);
		return false;
	}
	*sp = '\0';
	json_t *id = json_integer(s->next_id++);
	json_t *params = mcp_proto_initialize_params_client(s->def->roots != NULL);
	json_t *init = rpc_request(id, "initialize", params);
	size_t len;
	char *init_line = rpc_encode(init, &len);
	if (len > 0 && init_line[len - 1] == '\n')
		init_line[len - 1] = '\0';
	mcp_http_adopt(s->t, sp + 1, line, init_line);
	free(init_line);
	json_decref(init);
	json_decref(params);
	json_decref(id);
	free(s->version);
	s->version = xstrdup(line);
	s->task_calls = true; /* it made the task we follow */
	s->state = SESS_READY;
	/* Not the id itself: whoever holds it may act in the session. */
	log_info("mcp server %s: resuming its session from before mcpjobd restarted (protocol "
	         "%s), to follow a task started in it", s->def->name, line);
	free(line);
	session_send_queued(s);
	return true;
}

/* Spawn and send initialize; -1 when the server is failing fast or won't start. */
static int session_start(struct mcp_session *s) {
	int64_t now = time_mono_ms();
	if (s->failfast_until_ms > now) {
		char *why = xasprintf("server %s failed to start %d times in a row; next try in %" PRId64
		                      " s; last error: %s", s->def->name, s->failures,
		                      (s->failfast_until_ms - now + 999) / 1000, s->last_error);
		fail_all_calls(s, s->last_permanent ? MCP_PROTOCOL_ERROR : MCP_TRANSPORT_ERROR, why,
		               s->last_detail);
		free(why);
		return -1;
	}
	struct mcp_transport_cbs cbs = {session_on_line, session_on_close, s};
	char *cause = NULL;
	s->state = SESS_STARTING;
	if (s->def->type == MCP_SERVER_STDIO)
		s->t = mcp_transport_stdio_open(s->pool->base, s->def, s->pool->store_id, &cbs,
		                                &cause);
	else
		s->t = mcp_http_open(s->pool->base, s->def, &cbs, s->pool, &cause);
	if (s->t == NULL) {
		session_start_failed(s, cause, NULL, false);
		free(cause);
		return -1;
	}
	if (s->adopt != NULL && session_adopt(s))
		return 0;
	s->state = SESS_INITIALIZING;
	s->init_id = s->next_id++;
	session_request(s, s->init_id, "initialize",
	                mcp_proto_initialize_params_client(s->def->roots != NULL));
	struct timeval tv = {INIT_TIMEOUT_MS / 1000, 0};
	evtimer_add(s->init_ev, &tv);
	return 0;
}

static void session_on_idle(evutil_socket_t fd, short what, void *arg);

static struct mcp_session *session_new(struct mcp_pool *pool, const struct mcp_server_def *def) {
	struct mcp_session *s = xcalloc(1, sizeof *s);
	s->pool = pool;
	s->def = def_copy(def, pool->cfg);
	s->next_id = 1;
	TAILQ_INIT(&s->calls);
	s->idle_ev = evtimer_new(pool->base, session_on_idle, s);
	s->init_ev = evtimer_new(pool->base, session_on_init_timeout, s);
	TAILQ_INSERT_TAIL(&pool->sessions, s, link);
	return s;
}

static void session_free(struct mcp_session *s) {
	TAILQ_REMOVE(&s->pool->sessions, s, link);
	session_drop_transport(s);
	event_free(s->idle_ev);
	event_free(s->init_ev);
	config_server_free(s->def);
	free(s->adopt);
	free(s->last_error);
	free(s->last_detail);
	free(s);
}

static void session_arm_idle(struct mcp_session *s) {
	int64_t ms = s->def->idle_timeout_ms;
	if (s->retiring || ms < 0)
		ms = 0;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(s->idle_ev, &tv);
}

static void session_on_idle(evutil_socket_t fd, short what, void *arg) {
	struct mcp_session *s = arg;
	(void)fd;
	(void)what;
	if (!TAILQ_EMPTY(&s->calls))
		return;
	if (s->t != NULL)
		log_debug("mcp server %s idle; shutting it down", s->def->name);
	if (s->retiring)
		session_free(s);
	else
		session_drop_transport(s);
}

/* The live session for @name, created on first use; NULL when not configured. */
static struct mcp_session *session_get(struct mcp_pool *pool, const char *name) {
	struct mcp_session *s;
	TAILQ_FOREACH(s, &pool->sessions, link)
		if (!s->retiring && strcmp(s->def->name, name) == 0)
			return s;
	const struct mcp_server_def *def = find_def(pool->cfg, name);
	return def ? session_new(pool, def) : NULL;
}

/* --- handshake -------------------------------------------------------------- */

/* The transport's "waiting for authorization" error reply (mcp_http.h). */
static bool auth_error(const struct rpc_msg *m) {
	const json_t *data = json_object_get(m->error, "data");
	return m->kind == RPC_ERROR_REPLY &&
	       json_integer_value(json_object_get(m->error, "code")) == MCP_HTTP_AUTH_CODE &&
	       json_is_true(json_object_get(data, "mcpjobd_auth_required")) &&
	       json_is_string(json_object_get(m->error, "message"));
}

static void session_on_init_reply(struct mcp_session *s, const struct rpc_msg *m) {
	char *cause = NULL;
	evtimer_del(s->init_ev);
	if (m->kind == RPC_ERROR_REPLY && auth_error(m)) {
		/* Not a failure of the server: a person must log it in (mcp_auth.h). */
		const json_t *msg = json_object_get(m->error, "message");
		session_drop_transport(s);
		fail_all_calls(s, MCP_AUTH_REQUIRED, json_string_value(msg), NULL);
		return;
	}
	if (m->kind == RPC_ERROR_REPLY) {
		const json_t *msg = json_object_get(m->error, "message");
		cause = xasprintf("server %s refused initialize: error %lld: %s", s->def->name,
		                  (long long)json_integer_value(json_object_get(m->error, "code")),
		                  json_is_string(msg) ? json_string_value(msg) : "(no message)");
	}
	const char *ver = cause ? NULL : mcp_proto_check_initialize(s->def->name, m->result, &cause);
	if (ver == NULL) {
		/* Disconnect: the transport's close() does the polite shutdown. */
		char *detail = xstrdup(s->t->ops->stderr_tail(s->t));
		session_start_failed(s, cause, detail, true);
		free(detail);
		free(cause);
		return;
	}
	s->version = xstrdup(ver);
	const json_t *caps = json_object_get(m->result, "capabilities");
	s->logging = json_is_object(json_object_get(caps, "logging"));
	s->task_calls = json_is_object(json_object_get(
		json_object_get(json_object_get(json_object_get(caps, "tasks"), "requests"), "tools"),
		"call"));
	session_notify(s, "notifications/initialized", NULL);
	if (s->logging) {
		/* Our log gets what the server logs at this level and above. */
		const char *level = s->def->log_level ? s->def->log_level : "warning";
		session_request(s, s->next_id++, "logging/setLevel", json_pack("{s:s}", "level", level));
	}
	s->state = SESS_READY;
	s->failures = 0;
	s->failfast_until_ms = 0;
	log_debug("mcp server %s ready (protocol %s)", s->def->name, s->version);
	session_send_queued(s);
	if (TAILQ_EMPTY(&s->calls))
		session_arm_idle(s);
}

/* --- calls on the wire ------------------------------------------------------ */

static void session_fetch_tools(struct mcp_session *s);
static struct mcp_call *call_new(struct mcp_pool *pool, enum call_kind kind, int64_t timeout_ms,
                                 mcp_done_fn done, void *arg);

static void internal_list_done(void *arg, struct mcp_call_result *res) {
	(void)arg;
	mcp_call_result_clear(res);
}

/* @tool's execution.taskSupport in the cached list: "required", "optional" or NULL. */
static const char *tool_task_support(const struct mcp_session *s, const char *tool) {
	size_t i;
	const json_t *t;
	json_array_foreach(s->tools, i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));
		if (name == NULL || strcmp(name, tool) != 0)
			continue;
		const char *ts = json_string_value(
			json_object_get(json_object_get(t, "execution"), "taskSupport"));
		return ts && (strcmp(ts, "required") == 0 || strcmp(ts, "optional") == 0) ? ts : NULL;
	}
	return NULL;
}

/*
 * A tools/call request, written as text: every run sends one, and its
 * arguments were encoded when the call was made. The bytes are what
 * rpc_request() and rpc_encode() would write for the same message.
 */
static void call_send_tool(struct mcp_session *s, struct mcp_call *c, bool task) {
	struct jsontext t;
	jsontext_init(&t);
	jsontext_obj_open(&t);
	jsontext_key(&t, "jsonrpc");
	jsontext_str(&t, "2.0");
	jsontext_key(&t, "id");
	jsontext_int(&t, c->id);
	jsontext_key(&t, "method");
	jsontext_str(&t, "tools/call");
	jsontext_key(&t, "params");
	jsontext_obj_open(&t);
	jsontext_key(&t, "name");
	jsontext_str(&t, c->tool);
	jsontext_key(&t, "arguments");
	jsontext_encoded(&t, c->args, c->args_len);
	jsontext_key(&t, "_meta");
	jsontext_obj_open(&t);
	jsontext_key(&t, "progressToken");
	jsontext_str(&t, c->token);
	jsontext_obj_close(&t);
	if (task) {
		jsontext_key(&t, "task");
		jsontext_obj_open(&t);
		if (c->timeout_ms > 0) {
			jsontext_key(&t, "ttl");
			jsontext_int(&t, c->timeout_ms);
		}
		jsontext_obj_close(&t);
	}
	jsontext_obj_close(&t);
	jsontext_obj_close(&t);
	jsontext_raw(&t, "\n", 1);
	size_t len;
	char *line = jsontext_take(&t, &len);
	session_send_line(s, line, len);
}

static void call_send(struct mcp_session *s, struct mcp_call *c, const char *cursor) {
	json_t *params;
	if (c->kind == CALL_TOOL && c->task_id != NULL && c->tstep == TASK_NONE) {
		/* mcp_resume_task(): the task exists; poll it. */
		c->state = CALL_SENT;
		c->tstep = TASK_POLLING;
		c->id = s->next_id++;
		session_request(s, c->id, "tasks/get", json_pack("{s:s}", "taskId", c->task_id));
		return;
	}
	if (c->kind == CALL_TOOL && s->task_calls && s->tools == NULL) {
		/* Whether to call it as a task is in tools/list: learn it first. */
		if (!s->listing)
			session_fetch_tools(s);
		return; /* stays queued; sent when the list is in */
	}
	c->id = s->next_id++;
	c->state = CALL_SENT;
	c->garbage_at_send = s->garbage_total;
	if (c->kind == CALL_TOOL) {
		bool task = s->task_calls && tool_task_support(s, c->tool) != NULL;
		if (task)
			c->tstep = TASK_CREATING;
		call_send_tool(s, c, task);
	} else {
		params = cursor ? json_pack("{s:s}", "cursor", cursor) : NULL;
		session_request(s, c->id, "tools/list", params);
	}
}

static void session_send_queued(struct mcp_session *s) {
	struct mcp_call *c;
	TAILQ_FOREACH(c, &s->calls, link)
		if (c->state == CALL_QUEUED)
			call_send(s, c, NULL);
}

static void list_reply(struct mcp_session *s, struct mcp_call *c, const struct rpc_msg *m) {
	struct mcp_call_result res;
	if (c->internal && (m->kind == RPC_ERROR_REPLY ||
	                    !json_is_array(json_object_get(m->result, "tools")))) {
		/* No usable list: call the tools plainly rather than not at all. */
		s->task_calls = false;
		call_finish(c, MCP_PROTOCOL_ERROR, "tools/list failed", NULL);
		session_send_queued(s);
		return;
	}
	if (m->kind == RPC_ERROR_REPLY) {
		mcp_proto_tool_result("tools/list", NULL, m->error, &res);
		call_finish_result(c, &res);
		return;
	}
	const json_t *tools = json_object_get(m->result, "tools");
	const json_t *cursor = json_object_get(m->result, "nextCursor");
	if (!json_is_array(tools)) {
		call_finish(c, MCP_PROTOCOL_ERROR, "server sent a tools/list result without tools", NULL);
		return;
	}
	json_array_extend(c->tools, (json_t *)tools);
	if (json_is_string(cursor)) {
		/* A server that repeats a cursor would have us ask forever. */
		bool seen = false;
		size_t i;
		json_t *prev;
		json_array_foreach(c->cursors, i, prev)
			seen = seen || json_equal(prev, cursor);
		if (!seen && json_array_size(c->cursors) < LIST_PAGES_MAX &&
		    json_array_size(c->tools) < 100000) {
			json_array_append(c->cursors, (json_t *)cursor);
			call_send(s, c, json_string_value(cursor));
			return;
		}
		if (log_ratelimit_ok(&s->rl_log, 20, 10000, s->def->name))
			log_warning("mcp server %s: tools/list stopped after %zu pages: %s", s->def->name,
			            json_array_size(c->cursors) + 1,
			            seen ? "the server repeated a cursor" : "too many pages");
	}
	json_decref(s->tools);
	s->tools = json_incref(c->tools);
	if (c->internal) {
		call_finish(c, MCP_OK, NULL, NULL);
		session_send_queued(s);
		return;
	}
	memset(&res, 0, sizeof res);
	res.status = MCP_OK;
	res.message = xasprintf("%zu tools", json_array_size(c->tools));
	res.structured = json_incref(c->tools);
	call_finish_result(c, &res);
}

static struct mcp_call *session_find_call(struct mcp_session *s, const json_t *id) {
	struct mcp_call *c;
	if (!json_is_integer(id))
		return NULL; /* all our ids are integers */
	TAILQ_FOREACH(c, &s->calls, link)
		if (c->state == CALL_SENT && c->id == json_integer_value(id))
			return c;
	return NULL;
}

/* A reply to request @id we can match but not read: fail what waits for it, now. */
static bool session_fail_malformed(struct mcp_session *s, int64_t id, const char *why) {
	char *msg;
	if (s->state == SESS_INITIALIZING && id == s->init_id) {
		msg = xasprintf("server %s sent a malformed reply to initialize: %s", s->def->name, why);
		session_start_failed(s, msg, NULL, true);
		free(msg);
		return true;
	}
	json_t *jid = json_integer(id);
	struct mcp_call *c = session_find_call(s, jid);
	json_decref(jid);
	if (c == NULL)
		return false;
	msg = xasprintf("server %s sent a malformed reply to %s: %s", s->def->name,
	                c->kind == CALL_TOOL ? c->tool : "tools/list", why);
	call_finish(c, MCP_PROTOCOL_ERROR, msg, NULL);
	free(msg);
	return true;
}

/* --- task-augmented calls ---------------------------------------------------- */

static void task_on_poll(evutil_socket_t fd, short what, void *arg) {
	struct mcp_call *c = arg;
	struct mcp_session *s = c->s;
	(void)fd;
	(void)what;
	if (s == NULL || s->t == NULL || c->state != CALL_SENT)
		return;
	c->id = s->next_id++;
	session_request(s, c->id, "tasks/get", json_pack("{s:s}", "taskId", c->task_id));
}

/* The task's state @task: poll again later, or fetch its result. */
static void task_status(struct mcp_session *s, struct mcp_call *c, const json_t *task) {
	const char *st = json_string_value(json_object_get(task, "status"));
	const json_t *pi = json_object_get(task, "pollInterval");
	if (json_is_integer(pi))
		c->poll_ms = json_integer_value(pi);
	if (c->poll_ms < 100 || c->poll_ms > 60000)
		c->poll_ms = c->poll_ms > 60000 ? 60000 : 1000;
	if (st && strcmp(st, "cancelled") == 0) {
		const char *why = json_string_value(json_object_get(task, "statusMessage"));
		char *msg = xasprintf("tool %s: the server cancelled task %s%s%s", c->tool, c->task_id,
		                      why ? ": " : "", why ? why : "");
		call_finish(c, MCP_TOOL_ERROR, msg, NULL);
		free(msg);
		return;
	}
	if (st && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
	           strcmp(st, "input_required") == 0)) {
		/* input_required: tasks/result carries the server's questions to us. */
		c->tstep = TASK_RESULT;
		c->id = s->next_id++;
		session_request(s, c->id, "tasks/result", json_pack("{s:s}", "taskId", c->task_id));
		return;
	}
	c->tstep = TASK_POLLING;
	c->id = -1; /* nothing out until the next poll */
	if (c->poll_ev == NULL)
		c->poll_ev = evtimer_new(s->pool->base, task_on_poll, c);
	struct timeval tv = {(time_t)(c->poll_ms / 1000), (suseconds_t)(c->poll_ms % 1000) * 1000};
	evtimer_add(c->poll_ev, &tv);
}

/* A reply in a task's life; false when it is the tool's result after all. */
static bool task_reply(struct mcp_session *s, struct mcp_call *c, const struct rpc_msg *m) {
	if (c->tstep == TASK_RESULT || m->kind == RPC_ERROR_REPLY)
		return false; /* the CallToolResult, or an error: mapped as for a plain call */
	const json_t *task = c->tstep == TASK_CREATING ? json_object_get(m->result, "task")
	                                               : m->result;
	const char *id = json_string_value(json_object_get(task, "taskId"));
	if (c->tstep == TASK_CREATING) {
		if (id == NULL)
			return false; /* the server answered directly */
		c->task_id = xstrdup(id);
		log_debug("mcp server %s: tool %s runs as task %s", s->def->name, c->tool, id);
		if (c->task_fn)
			c->task_fn(c->arg, id);
	}
	task_status(s, c, task);
	return true;
}

/* tools/list of our own: which tools want to be called as tasks. */
static void session_fetch_tools(struct mcp_session *s) {
	struct mcp_call *l = call_new(s->pool, CALL_LIST, INIT_TIMEOUT_MS, internal_list_done, NULL);
	l->tools = json_array();
	l->cursors = json_array();
	l->internal = true;
	l->s = s;
	s->listing = true;
	TAILQ_INSERT_HEAD(&s->calls, l, link);
	call_send(s, l, NULL);
}

/*
 * Tell the server to stop @c's work (cancelled, or timed out): the task, or
 * the request. A task lives on the server whatever becomes of the call, so
 * one that cannot be told is a warning; a plain request not sent yet, or
 * whose connection is gone, has nothing to stop.
 */
static void call_tell_cancel(struct mcp_call *c, const char *why) {
	if (c->state == CALL_DONE)
		return;
	struct mcp_session *s = c->s; /* a call keeps its session until it is done */
	bool sent = c->state == CALL_SENT && s->t != NULL;
	if (c->task_id == NULL) {
		if (sent)
			session_notify(s, "notifications/cancelled",
			               json_pack("{s:I, s:s}", "requestId", (json_int_t)c->id, "reason",
			                         why));
		return;
	}
	const char *untold = NULL;
	if (!sent) {
		untold = s->t == NULL ? "not connected to its server" : "its session is not ready";
	} else {
		log_debug("mcp server %s: asking it to cancel task %s", s->def->name, c->task_id);
		if (session_request(s, s->next_id++, "tasks/cancel",
		                    json_pack("{s:s}", "taskId", c->task_id)) < 0)
			untold = "its connection is closing";
	}
	if (untold)
		log_warning("mcp server %s: task %s (tool %s) was not asked to cancel: %s; it may "
		            "still be running on the server", s->def->name, c->task_id, c->tool, untold);
}

static void session_on_reply(struct mcp_session *s, const struct rpc_msg *m) {
	if (s->state == SESS_INITIALIZING && json_is_integer(m->id) &&
	    json_integer_value(m->id) == s->init_id) {
		session_on_init_reply(s, m);
		return;
	}
	struct mcp_call *c = session_find_call(s, m->id);
	if (c == NULL && json_is_string(m->id)) {
		/* Ours are integers: "29" for our 29 is malformed, but it is the answer. */
		char *why = NULL;
		json_t *batch = NULL;
		int64_t id;
		char *enc = json_dumps(m->root, JSON_COMPACT);
		if (enc && mcp_proto_salvage(enc, strlen(enc), &batch, &id, &why) == MCP_SALVAGE_REPLY)
			session_fail_malformed(s, id, why);
		free(why);
		free(enc);
		json_decref(batch);
		return;
	}
	if (c == NULL) {
		/* A late reply to a call we cancelled or timed out: dropped. */
		log_debug("mcp server %s: dropping a reply to no pending request", s->def->name);
		return;
	}
	if (auth_error(m)) {
		call_finish(c, MCP_AUTH_REQUIRED,
		            json_string_value(json_object_get(m->error, "message")), NULL);
		return;
	}
	if (c->kind == CALL_LIST) {
		list_reply(s, c, m);
		return;
	}
	if (c->tstep != TASK_NONE && task_reply(s, c, m))
		return;
	struct mcp_call_result res;
	mcp_proto_tool_result(c->tool, m->result, m->error, &res);
	/* tasks/get refused: the server does not know the task (any more). */
	res.task_lost = c->tstep == TASK_POLLING && m->kind == RPC_ERROR_REPLY;
	call_finish_result(c, &res);
}

/* --- what the server sends us ----------------------------------------------- */

static void session_on_request(struct mcp_session *s, const struct rpc_msg *m) {
	json_t *reply;
	if (strcmp(m->method, "ping") == 0) {
		json_t *empty = json_object();
		reply = rpc_result(m->id, empty);
		json_decref(empty);
	} else if (strcmp(m->method, "elicitation/create") == 0) {
		char *why = NULL;
		json_t *answer = mcp_elicit_answer(m->params, s->def->elicitation,
		                                   s->def->elicit_answers, &why);
		if (log_ratelimit_ok(&s->rl_log, 20, 10000, s->def->name))
			log_info("mcp server %s asked for input (elicitation): %s", s->def->name, why);
		reply = rpc_result(m->id, answer);
		json_decref(answer);
		free(why);
	} else if (strcmp(m->method, "roots/list") == 0 && s->def->roots != NULL) {
		json_t *roots = mcp_proto_roots_result(s->def->roots);
		reply = rpc_result(m->id, roots);
		json_decref(roots);
	} else if (strcmp(m->method, "sampling/createMessage") == 0) {
		reply = rpc_error(m->id, -32601, "mcpjobd does not offer sampling: a background daemon "
		                  "has no model to sample from", NULL);
	} else {
		/* roots/list, sampling/createMessage, elicitation/create: we declared
		 * none of these capabilities. Never leave a request unanswered. */
		char *text = xasprintf("Method not found: mcpjobd does not implement %.100s", m->method);
		reply = rpc_error(m->id, -32601, text, NULL);
		free(text);
	}
	session_send(s, reply);
}

static void session_on_progress(struct mcp_session *s, const json_t *params) {
	const json_t *token = json_object_get(params, "progressToken");
	const json_t *progress = json_object_get(params, "progress");
	const json_t *total = json_object_get(params, "total");
	const json_t *message = json_object_get(params, "message");
	struct mcp_call *c;
	if (!json_is_string(token) || !json_is_number(progress))
		return;
	TAILQ_FOREACH(c, &s->calls, link) {
		if (c->state != CALL_SENT || c->token == NULL ||
		    strcmp(c->token, json_string_value(token)) != 0)
			continue;
		if (c->progress == NULL)
			return;
		char *msg = json_is_string(message)
		                    ? mcp_proto_one_line(json_string_value(message), MCP_MESSAGE_MAX)
		                    : NULL;
		c->progress(c->arg, json_number_value(progress),
		            json_is_number(total) ? json_number_value(total) : -1, msg);
		free(msg);
		return; /* @c may be gone now */
	}
	/* Unknown or cancelled token: ignored. */
}

static void session_on_log(struct mcp_session *s, const json_t *params) {
	const json_t *level = json_object_get(params, "level");
	const json_t *data = json_object_get(params, "data");
	if (!log_ratelimit_ok(&s->rl_log, 20, 10000, s->def->name))
		return;
	char *enc = json_is_string(data) ? xstrdup(json_string_value(data))
	                                 : json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	char *line = mcp_proto_one_line(enc ? enc : "", 300);
	int ours = mcp_proto_log_level(json_string_value(level));
	log_msg(ours < 0 ? LOG_LEVEL_INFO : (enum log_level)ours, NULL, "mcp server %s [%s]: %s",
	        s->def->name, json_is_string(level) ? json_string_value(level) : "log", line);
	free(line);
	free(enc);
}

static void session_on_notification(struct mcp_session *s, const struct rpc_msg *m) {
	if (strcmp(m->method, "notifications/progress") == 0) {
		session_on_progress(s, m->params);
	} else if (strcmp(m->method, "notifications/message") == 0) {
		session_on_log(s, m->params);
	} else if (strcmp(m->method, "notifications/tools/list_changed") == 0) {
		json_decref(s->tools);
		s->tools = NULL;
	}
	/* notifications/cancelled (of the server's own requests, which we answer
	 * at once) and anything unknown: nothing to do. */
}

static void session_on_line(void *arg, const char *line, size_t len);

/* A batch (allowed by 2025-03-26): each message on its own. */
static void session_on_batch(struct mcp_session *s, json_t *batch) {
	size_t i;
	json_t *m;
	json_array_foreach(batch, i, m) {
		if (json_is_array(m) || s->t == NULL)
			continue; /* no batches inside batches */
		char *enc = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
		session_on_line(s, enc, strlen(enc));
		free(enc);
	}
}

static void session_on_garbage(struct mcp_session *s, const struct rpc_msg *m, const char *line,
                               size_t len) {
	json_t *batch = NULL;
	char *reason = NULL;
	int64_t id;
	enum mcp_salvage sv = mcp_proto_salvage(line, len, &batch, &id, &reason);
	bool handled = sv == MCP_SALVAGE_BATCH ||
	               (sv == MCP_SALVAGE_REPLY && session_fail_malformed(s, id, reason));
	if (sv == MCP_SALVAGE_BATCH)
		session_on_batch(s, batch);
	json_decref(batch);
	free(reason);
	if (handled) {
		s->garbage_run = 0;
		return;
	}
	s->garbage_total++; /* for the timeout message: "after a reply that could not be parsed" */
	snprintf(s->last_garbage, sizeof s->last_garbage, "%s", m->err_text);
	if (log_ratelimit_ok(&s->rl_garbage, 5, 10000, s->def->name))
		log_warning("mcp server %s sent a line that is not JSON-RPC (%s); ignored",
		            s->def->name, m->err_text);
	if (++s->garbage_run >= GARBAGE_LIMIT) {
		char *why = xasprintf("server %s sent %d lines in a row that are not JSON-RPC "
		                      "(protocol failure)", s->def->name, GARBAGE_LIMIT);
		session_lost(s, why);
		free(why);
	}
}

static void session_on_line(void *arg, const char *line, size_t len) {
	struct mcp_session *s = arg;
	struct rpc_msg m;
	rpc_parse(line, len, &m);
	if (m.kind != RPC_INVALID)
		s->garbage_run = 0;
	switch (m.kind) {
	case RPC_INVALID: session_on_garbage(s, &m, line, len); break;
	case RPC_RESPONSE:
	case RPC_ERROR_REPLY: session_on_reply(s, &m); break;
	case RPC_REQUEST: session_on_request(s, &m); break;
	case RPC_NOTIFICATION: session_on_notification(s, &m); break;
	}
	rpc_msg_clear(&m);
}

/* --- the API ----------------------------------------------------------------- */

struct mcp_pool *mcp_pool_new(struct event_base *base, const struct config *cfg) {
	struct mcp_pool *pool = xcalloc(1, sizeof *pool);
	pool->base = base;
	pool->cfg = cfg;
	TAILQ_INIT(&pool->sessions);
	TAILQ_INIT(&pool->delivering);
	return pool;
}

void mcp_pool_set_store_id(struct mcp_pool *pool, const char *store_id) {
	free(pool->store_id);
	pool->store_id = xstrdup_or_null(store_id);
}

void mcp_pool_set_auth_store(struct mcp_pool *pool, const struct mcp_auth_store *store) {
	pool->have_auth_store = store != NULL;
	if (store)
		pool->auth_store = *store;
}

const struct mcp_auth_store *mcp_pool_auth_store(const struct mcp_pool *pool) {
	return pool->have_auth_store ? &pool->auth_store : NULL;
}

const struct mcp_server_def *mcp_pool_find_server(const struct mcp_pool *pool,
                                                  const char *name) {
	return find_def(pool->cfg, name);
}

struct event_base *mcp_pool_base(const struct mcp_pool *pool) {
	return pool->base;
}

void mcp_pool_auth_hint_set(struct mcp_pool *pool, const char *server,
                            const char *resource_metadata, const char *scope) {
	struct auth_hint *h;
	for (h = pool->hints; h != NULL; h = h->next)
		if (strcmp(h->server, server) == 0)
			break;
	if (h == NULL) {
		h = xcalloc(1, sizeof *h);
		h->server = xstrdup(server);
		h->next = pool->hints;
		pool->hints = h;
	}
	free(h->resource_metadata);
	free(h->scope);
	h->resource_metadata = xstrdup_or_null(resource_metadata);
	h->scope = xstrdup_or_null(scope);
}

void mcp_pool_auth_hint_get(const struct mcp_pool *pool, const char *server,
                            const char **resource_metadata, const char **scope) {
	*resource_metadata = *scope = NULL;
	for (const struct auth_hint *h = pool->hints; h != NULL; h = h->next)
		if (strcmp(h->server, server) == 0) {
			*resource_metadata = h->resource_metadata;
			*scope = h->scope;
		}
}

void mcp_pool_set_config(struct mcp_pool *pool, const struct config *cfg) {
	struct mcp_session *s;
	pool->cfg = cfg;
	TAILQ_FOREACH(s, &pool->sessions, link) {
		const struct mcp_server_def *def = find_def(cfg, s->def->name);
		if (!s->retiring && def != NULL && def_equal(def, cfg, s->def) &&
		    !strv_equal(def->roots, s->def->roots)) {
			strv_free(s->def->roots);
			s->def->roots = strv_dup(def->roots);
			if (s->state == SESS_READY)
				session_notify(s, "notifications/roots/list_changed", NULL);
		}
		if (s->retiring || (def != NULL && def_equal(def, cfg, s->def)))
			continue;
		/* Running calls finish on the old server; new ones get a new session. */
		s->retiring = true;
		if (TAILQ_EMPTY(&s->calls))
			session_arm_idle(s);
	}
}

void mcp_pool_forget_server(struct mcp_pool *pool, const char *server) {
	struct mcp_session *s;
	TAILQ_FOREACH(s, &pool->sessions, link) {
		if (s->retiring || strcmp(s->def->name, server) != 0)
			continue;
		/* Its calls finish; nothing new is sent with the token it holds. */
		s->retiring = true;
		if (TAILQ_EMPTY(&s->calls))
			session_arm_idle(s);
	}
}

void mcp_pool_free(struct mcp_pool *pool) {
	struct mcp_session *s;
	struct mcp_call *c;
	if (pool == NULL)
		return;
	while ((s = TAILQ_FIRST(&pool->sessions)) != NULL) {
		while ((c = TAILQ_FIRST(&s->calls)) != NULL)
			call_finish(c, MCP_CANCELLED, "mcpjobd is shutting down", NULL);
		session_free(s);
	}
	while ((c = TAILQ_FIRST(&pool->delivering)) != NULL)
		call_deliver(c);
	mcp_transport_finish_all();
	mcp_http_finish_all();
	free(pool->store_id);
	while (pool->hints) {
		struct auth_hint *h = pool->hints;
		pool->hints = h->next;
		free(h->server);
		free(h->resource_metadata);
		free(h->scope);
		free(h);
	}
	free(pool);
}

char *mcp_call_phase(const struct mcp_call *c) {
	const struct mcp_session *s = c->s;
	const char *method = c->kind == CALL_TOOL ? "tools/call" : "tools/list";
	/* The job's own timer may fire just after ours: keep telling the phase. */
	if (c->state == CALL_DONE)
		return xstrdup_or_null(c->timeout_phase);
	if (s == NULL)
		return NULL;
	if (s->state == SESS_STOPPED || s->state == SESS_STARTING)
		return xasprintf("while starting server %s", s->def->name);
	if (s->state == SESS_INITIALIZING && s->garbage_total > 0)
		return xasprintf("during initialize, after a reply from server %s that could not be "
		                 "parsed (%s)", s->def->name, s->last_garbage);
	if (s->state == SESS_INITIALIZING)
		return xasprintf("during initialize: server %s started but has not answered it",
		                 s->def->name);
	if (c->state == CALL_QUEUED)
		return xasprintf("waiting to send %s to server %s", method, s->def->name);
	if (s->garbage_total > c->garbage_at_send)
		return xasprintf("after a reply from server %s that could not be parsed (%s)",
		                 s->def->name, s->last_garbage);
	if (c->task_id != NULL && c->tstep == TASK_POLLING) /* the work is the server's task */
		return xasprintf("while task %s ran on server %s", c->task_id, s->def->name);
	return xasprintf("waiting for the reply to %s from server %s", method, s->def->name);
}

/* The hard deadline (the job's timeout) passed: tell the server, fail the call. */
static void call_on_timeout(evutil_socket_t fd, short what, void *arg) {
	struct mcp_call *c = arg;
	struct mcp_session *s = c->s;
	(void)fd;
	(void)what;
	char *phase = mcp_call_phase(c);
	char *msg = xasprintf("%s on server %s timed out after %.1f s%s%s",
	                      c->kind == CALL_TOOL ? c->tool : "tools/list",
	                      s ? s->def->name : "?", (double)c->timeout_ms / 1000.0,
	                      phase ? " " : "", phase ? phase : "");
	free(c->timeout_phase);
	c->timeout_phase = phase;
	call_tell_cancel(c, msg);
	bool internal = c->internal;
	call_finish(c, MCP_TIMEOUT, msg, NULL);
	if (internal && s != NULL) {
		/* No tools/list: call plainly rather than not at all. */
		s->task_calls = false;
		session_send_queued(s);
	}
	free(msg);
}

static struct mcp_call *call_new(struct mcp_pool *pool, enum call_kind kind, int64_t timeout_ms,
                                 mcp_done_fn done, void *arg) {
	struct mcp_call *c = xcalloc(1, sizeof *c);
	c->pool = pool;
	c->kind = kind;
	c->done = done;
	c->arg = arg;
	c->timeout_ms = timeout_ms;
	c->deliver = event_new(pool->base, -1, 0, call_on_deliver, c);
	if (timeout_ms > 0) {
		struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
		c->timer = evtimer_new(pool->base, call_on_timeout, c);
		evtimer_add(c->timer, &tv);
	}
	return c;
}

/* Put @c on @server's session and get it going. */
static struct mcp_call *call_submit(struct mcp_pool *pool, struct mcp_call *c, const char *server) {
	struct mcp_session *s = session_get(pool, server);
	if (s == NULL) {
		char *why = xasprintf("no MCP server \"%s\" in the configuration", server);
		call_finish(c, MCP_PROTOCOL_ERROR, why, NULL);
		free(why);
		return c;
	}
	evtimer_del(s->idle_ev);
	c->s = s;
	c->state = CALL_QUEUED;
	TAILQ_INSERT_TAIL(&s->calls, c, link);
	if (s->state == SESS_READY)
		call_send(s, c, NULL);
	else if (s->state == SESS_STOPPED)
		session_start(s);
	return c;
}

struct mcp_call *mcp_call_tool(struct mcp_pool *pool, const char *server, const char *tool,
                               json_t *arguments, int64_t timeout_ms,
                               mcp_progress_fn progress, mcp_done_fn done, void *arg) {
	struct mcp_call *c = call_new(pool, CALL_TOOL, timeout_ms, done, arg);
	c->tool = xstrdup(tool);
	c->progress = progress;
	c->token = xasprintf("mcpjobd-%" PRIu64, ++pool->next_token);
	if (arguments == NULL) {
		c->args = xstrdup("{}");
		c->args_len = 2;
	} else if ((c->args = jsontext_dumps(arguments, &c->args_len)) == NULL) {
		/* Deeper than any parsed JSON: fail it rather than send other arguments. */
		char *why = xasprintf("the arguments for tool %s are nested deeper than %d levels: "
		                      "they cannot be sent", tool, JSONTEXT_DEPTH_MAX);
		call_finish(c, MCP_PROTOCOL_ERROR, why, NULL);
		free(why);
		return c;
	}
	return call_submit(pool, c, server);
}

struct mcp_call *mcp_resume_task(struct mcp_pool *pool, const char *server, const char *tool,
                                 const char *task_id, const char *session, int64_t timeout_ms,
                                 mcp_progress_fn progress, mcp_done_fn done, void *arg) {
	struct mcp_session *s = session ? session_get(pool, server) : NULL;
	if (s != NULL && s->state == SESS_STOPPED && s->adopt == NULL)
		s->adopt = xstrdup(session); /* taken up by the start call_submit() makes */
	struct mcp_call *c = call_new(pool, CALL_TOOL, timeout_ms, done, arg);
	c->tool = xstrdup(tool);
	c->args = xstrdup("{}");
	c->args_len = 2;
	c->progress = progress;
	c->token = xasprintf("mcpjobd-%" PRIu64, ++pool->next_token);
	c->task_id = xstrdup(task_id);
	return call_submit(pool, c, server);
}

void mcp_call_set_task_fn(struct mcp_call *c, mcp_task_fn fn) {
	c->task_fn = fn;
}

char *mcp_call_session(const struct mcp_call *c) {
	const struct mcp_session *s = c->s;
	const char *sid = s && s->t ? mcp_http_session_id(s->t) : NULL;
	if (sid == NULL || s->version == NULL)
		return NULL;
	return xasprintf("%s %s", s->version, sid);
}

struct mcp_call *mcp_list_tools(struct mcp_pool *pool, const char *server, int64_t timeout_ms,
                                mcp_done_fn done, void *arg) {
	struct mcp_call *c = call_new(pool, CALL_LIST, timeout_ms, done, arg);
	c->tools = json_array();
	c->cursors = json_array();
	return call_submit(pool, c, server);
}

void mcp_call_leave(struct mcp_call *c, const char *reason) {
	struct mcp_session *s = c->s;
	if (s != NULL && c->task_id != NULL)
		s->keep_session = true; /* the task lives in it: a restarted daemon takes it up */
	if (c->state != CALL_DONE)
		call_finish(c, MCP_CANCELLED, reason && *reason ? reason : "left to its task", NULL);
	call_deliver(c); /* done follows at once */
}

void mcp_call_cancel(struct mcp_call *c, const char *reason) {
	const char *why = reason && *reason ? reason : "cancelled";
	call_tell_cancel(c, why);
	if (c->state != CALL_DONE)
		call_finish(c, MCP_CANCELLED, why, NULL);
	else {
		mcp_call_result_clear(&c->res);
		c->res.status = MCP_CANCELLED;
		c->res.message = xstrdup(why);
	}
	call_deliver(c); /* done follows at once */
}
