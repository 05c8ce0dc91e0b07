/*
 * control.c - the control socket server.
 */
#include "daemon/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <grp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/jsonrpc.h"
#include "common/jsontext.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/auth.h"
#include "daemon/auth_login.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/events.h"

struct conn;

struct wait_req {
	struct wait_req *next;
	struct conn *conn;
	json_t *id;
	void *waiter;
	bool auth; /* an auth.login / auth.complete waiter (auth_login.h), not a run's */
};

struct conn {
	struct conn *prev, *next;
	struct control *c;
	struct bufferevent *bev;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool admin;
	bool closing; /* close once the output is flushed */
	bool eof;     /* the peer half-closed: answer what it sent, flush, close */
	bool paused;  /* not reading requests: too much output waits for the peer */
	struct event *kill_ev; /* frees the connection from the event loop */
	struct event *stall_ev; /* drops a paused peer that takes nothing */
	size_t sent, sent_at_pause; /* bytes the peer has taken from us */
	struct events_sub *sub;
	struct wait_req *waits;
};

struct control {
	struct event_base *base;
	struct engine *engine;
	struct evconnlistener *listener;
	char *path;
	bool own_socket;
	struct conn *conns;
	int (*reload)(void *, json_t **, struct config_errors *);
	void *reload_arg;
	struct log_ratelimit rl, rl_stall, rl_accept;
	struct event *accept_ev; /* re-enables accepting after a pause */
	bool stopped;            /* control_stop_accepting() was called */
	char *(*metrics)(void *arg);
	void *metrics_arg;
};

static void conn_free(struct conn *cn);
static size_t conn_unsent(struct conn *cn);

/* --- sending --------------------------------------------------------------- */

/*
 * Bytes for the peer: written to the socket at once when nothing waits
 * before them, the rest (or all, behind queued output) through the
 * bufferevent. A reply sent at once costs one send(); through the
 * bufferevent it would cost a write event, another loop iteration (with
 * EVENT_BASE_FLAG_PRECISE_TIMER, another timerfd_settime) and two
 * epoll_ctl calls.
 */
static void conn_write_bytes(struct conn *cn, const char *buf, size_t len) {
	if (conn_unsent(cn) == 0) {
		ssize_t n = send(bufferevent_getfd(cn->bev), buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			cn->sent += (size_t)n;
			buf += n;
			len -= (size_t)n;
		}
		/* What the bufferevent's write callback did after a flush. */
		if (len == 0 && (cn->closing || cn->eof))
			bufferevent_trigger(cn->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
	}
	/* An error (the peer is gone) shows again there, and ends the connection. */
	if (len > 0)
		bufferevent_write(cn->bev, buf, len);
}

static void conn_send(struct conn *cn, const json_t *msg) {
	size_t len;
	char *line = rpc_encode(msg, &len);
	conn_write_bytes(cn, line, len);
	free(line);
}

static void reply_result(struct conn *cn, json_t *id, json_t *result) {
	json_t *m = rpc_result(id, result);
	conn_send(cn, m);
	json_decref(m);
	json_decref(result);
}

static void reply_error(struct conn *cn, json_t *id, int code, const char *message, json_t *data) {
	json_t *m = rpc_error(id, code, message, data);
	conn_send(cn, m);
	json_decref(m);
	json_decref(data);
}

/*
 * A result written as text (jsontext.h) rather than as a tree: begin
 * writes {"jsonrpc":"2.0","id":ID,"result": into @t, the result follows,
 * end closes the line and sends it - what rpc_result() + rpc_encode() give.
 */
static void reply_text_begin(struct jsontext *t, const json_t *id) {
	static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":", mid[] = ",\"result\":";
	jsontext_init(t);
	jsontext_raw(t, head, sizeof head - 1);
	if (json_is_integer(id))
		jsontext_int(t, (long long)json_integer_value(id));
	else if (json_is_string(id))
		jsontext_strn(t, json_string_value(id), json_string_length(id));
	else
		jsontext_json(t, id);
	jsontext_raw(t, mid, sizeof mid - 1);
	t->comma = false;
}

static void reply_text_end(struct conn *cn, struct jsontext *t) {
	jsontext_raw(t, "}\n", 2);
	conn_write_bytes(cn, t->buf, t->len);
	jsontext_free(t);
}

/* The text reply, or the error (with @data) when @rc says the call failed. */
static void reply_text_or_error(struct conn *cn, json_t *id, int rc, struct jsontext *t,
                                char *cause, json_t *data) {
	if (rc == 0) {
		json_decref(data);
		reply_text_end(cn, t);
	} else {
		jsontext_free(t);
		reply_error(cn, id, rc, cause ? cause : "failed", data);
	}
	free(cause);
}

/* --- permissions -------------------------------------------------------------- */

static bool peer_in_group(int fd, gid_t peer_gid, const char *group) {
	struct group *gr = group ? getgrnam(group) : NULL;
	if (gr == NULL)
		return false;
	if (peer_gid == gr->gr_gid)
		return true;
	gid_t groups[256];
	socklen_t len = sizeof groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gr->gr_gid)
			return true;
	return false;
}

/* --- methods ----------------------------------------------------------------- */

typedef void (*method_fn)(struct conn *cn, json_t *id, json_t *params);

static bool params_ok(struct conn *cn, json_t *id, json_t *params, const char *const *allowed) {
	char *cause = NULL;
	if (rpc_params_check(params, allowed, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return false;
	}
	return true;
}

/* Reply with the engine's answer: *out on 0, else the error and cause. */
static void reply_engine(struct conn *cn, json_t *id, int rc, json_t *out, char *cause,
                         json_t *data) {
	if (rc == 0) {
		json_decref(data);
		reply_result(cn, id, out);
	} else {
		reply_error(cn, id, rc, cause ? cause : "failed", data);
	}
	free(cause);
}

static const char *job_param(struct conn *cn, json_t *id, json_t *params,
                             const char *const *allowed) {
	const char *job = NULL;
	char *cause = NULL;
	if (!params_ok(cn, id, params, allowed))
		return NULL;
	if (rpc_param_string(params, "job", true, &job, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return NULL;
	}
	return job;
}

static json_t *job_data(const char *job) {
	return json_pack("{s:s}", "job", job);
}

static void m_hello(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"client", "protocol", NULL};
	long long proto = MCPJOB_PROTOCOL_VERSION;
	char *cause = NULL;
	const char *client = NULL;
	if (!params_ok(cn, id, params, allowed))
		return;
	if (rpc_param_int(params, "protocol", false, &proto, &cause) < 0 ||
	    rpc_param_string(params, "client", false, &client, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return;
	}
	if (proto != MCPJOB_PROTOCOL_VERSION) {
		char *msg = xasprintf("protocol version %lld is not supported; this mcpjobd speaks "
		                      "version %d", proto, MCPJOB_PROTOCOL_VERSION);
		reply_error(cn, id, RPC_E_VERSION_MISMATCH, msg,
		            json_pack("{s:i}", "supported", MCPJOB_PROTOCOL_VERSION));
		free(msg);
		return;
	}
	reply_result(cn, id,
	             json_pack("{s:s, s:s, s:i, s:s, s:s}", "name", "mcpjobd", "version",
	                       MCPJOB_VERSION, "protocol", MCPJOB_PROTOCOL_VERSION, "platform",
	                       engine_platform_name(cn->c->engine), "access",
	                       cn->admin ? "admin" : "read-only"));
}

static void m_list(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {NULL};
	struct jsontext t;
	if (!params_ok(cn, id, params, allowed))
		return;
	reply_text_begin(&t, id);
	engine_jobs_text(cn->c->engine, &t);
	reply_text_end(cn, &t);
}

/* A method whose only param is "job" and whose answer is the engine's. */
typedef int (*job_call_fn)(struct engine *e, const char *job, json_t **out, char **cause);

static void reply_job_call(struct conn *cn, json_t *id, json_t *params, job_call_fn fn) {
	static const char *const allowed[] = {"job", NULL};
	const char *job = job_param(cn, id, params, allowed);
	json_t *out = NULL;
	char *cause = NULL;
	if (job == NULL)
		return;
	int rc = fn(cn->c->engine, job, &out, &cause);
	reply_engine(cn, id, rc, out, cause, rc ? job_data(job) : NULL);
}

static int job_enable(struct engine *e, const char *job, json_t **out, char **cause) {
	return engine_job_set_enabled(e, job, true, out, cause);
}

static int job_disable(struct engine *e, const char *job, json_t **out, char **cause) {
	return engine_job_set_enabled(e, job, false, out, cause);
}

static void m_status(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"job", NULL};
	const char *job = job_param(cn, id, params, allowed);
	char *cause = NULL;
	struct jsontext t;
	if (job == NULL)
		return;
	reply_text_begin(&t, id);
	int rc = engine_job_text(cn->c->engine, job, &t, &cause);
	reply_text_or_error(cn, id, rc, &t, cause, rc ? job_data(job) : NULL);
}

static void m_enable(struct conn *cn, json_t *id, json_t *params) {
	reply_job_call(cn, id, params, job_enable);
}

static void m_disable(struct conn *cn, json_t *id, json_t *params) {
	reply_job_call(cn, id, params, job_disable);
}

/* The waited-for run's record, as the engine encoded it: sent as it is. */
static void run_finished(void *arg, const char *run, size_t len) {
	struct wait_req *w = arg;
	struct conn *cn = w->conn;
	for (struct wait_req **pp = &cn->waits; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	if (run) {
		struct jsontext t;
		reply_text_begin(&t, w->id);
		jsontext_raw(&t, run, len);
		reply_text_end(cn, &t);
	} else
		reply_error(cn, w->id, RPC_E_SHUTTING_DOWN,
		            "the run was dropped before it started: mcpjobd is stopping", NULL);
	json_decref(w->id);
	free(w);
}

/* -32002's data names the run that is in the way (protocol.h). */
static void add_run_id(struct conn *cn, const char *job, json_t *data) {
	json_t *st = NULL;
	char *cause = NULL;
	if (engine_job_json(cn->c->engine, job, &st, &cause) == 0)
		json_object_set(data, "run_id", json_object_get(st, "run_id"));
	json_decref(st);
	free(cause);
}

/*
 * job.run's input for this run: "arguments" (an object, for mcp jobs) or
 * "env" (an object of strings with names fit for an environment, for exec
 * jobs), at most one of them. *@input is NULL when neither is given.
 */
static int run_input(json_t *params, json_t **input, char **cause) {
	json_t *args = json_object_get(params, "arguments"), *env = json_object_get(params, "env");
	const char *k;
	json_t *v;
	*input = NULL;
	if (args && env) {
		*cause = xstrdup("params \"arguments\" (mcp jobs) and \"env\" (exec jobs) do not go "
		                 "together");
		return -1;
	}
	if (args && !json_is_object(args)) {
		*cause = xstrdup("param \"arguments\" must be an object (merged over the job's "
		                 "arguments)");
		return -1;
	}
	if (env && !json_is_object(env)) {
		*cause = xstrdup("param \"env\" must be an object of strings");
		return -1;
	}
	json_object_foreach(env, k, v) {
		if (!json_is_string(v) || !*k || strchr(k, '=') || strlen(k) > 255 ||
		    k[strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")]) {
			*cause = xasprintf("param \"env\": each key must be a variable name (A-Z a-z "
			                   "0-9 _) and each value a string");
			return -1;
		}
	}
	if (args || env)
		*input = json_pack("{s:O}", args ? "arguments" : "env", args ? args : env);
	return 0;
}

static void m_run(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"job", "wait", "when_allowed", "arguments", "env",
	                                      NULL};
	const char *job = job_param(cn, id, params, allowed);
	bool wait = false, when_allowed = false;
	char *cause = NULL;
	json_t *out = NULL, *input = NULL;
	if (job == NULL)
		return;
	if (rpc_param_bool(params, "wait", false, &wait, &cause) < 0 ||
	    rpc_param_bool(params, "when_allowed", false, &when_allowed, &cause) < 0 ||
	    run_input(params, &input, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return;
	}
	struct wait_req *w = NULL;
	if (wait) {
		w = xcalloc(1, sizeof *w);
		w->conn = cn;
		w->id = json_incref(id);
	}
	int flags = when_allowed ? ENGINE_RUN_WHEN_ALLOWED : 0;
	/* Waiting, the reply is the run's record: no {"job", "run_id"} is made. */
	int rc = wait ? engine_job_run_text(cn->c->engine, job, flags, input, run_finished, w,
	                                    &w->waiter, &cause)
	              : engine_job_run_with(cn->c->engine, job, flags, input, NULL, NULL, &out,
	                                    NULL, &cause);
	json_decref(input);
	if (rc != 0 || !wait) {
		json_t *data = NULL;
		if (rc == RPC_E_ALREADY_RUNNING || rc == RPC_E_NO_SUCH_JOB)
			data = job_data(job);
		if (rc == RPC_E_ALREADY_RUNNING)
			add_run_id(cn, job, data);
		reply_engine(cn, id, rc, out, cause, data);
		if (w) {
			json_decref(w->id);
			free(w);
		}
		return;
	}
	json_decref(out);
	w->next = cn->waits;
	cn->waits = w;
}

static void m_cancel(struct conn *cn, json_t *id, json_t *params) {
	reply_job_call(cn, id, params, engine_job_cancel);
}

static void m_history(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"job", "limit", "before", NULL};
	const char *job = job_param(cn, id, params, allowed);
	const char *before = NULL;
	long long limit = MCPJOB_HISTORY_DEFAULT;
	int64_t before_ms = 0;
	char *cause = NULL;
	if (job == NULL)
		return;
	if (rpc_param_int(params, "limit", false, &limit, &cause) < 0 ||
	    rpc_param_string(params, "before", false, &before, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return;
	}
	if (limit < 1 || limit > MCPJOB_HISTORY_MAX) {
		char *why = xasprintf("param \"limit\" must be between 1 and %d", MCPJOB_HISTORY_MAX);
		reply_error(cn, id, RPC_E_INVALID_PARAMS, why, NULL);
		free(why);
		return;
	}
	if (before && !time_parse_rfc3339(before, &before_ms)) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS,
		            "param \"before\" must be an RFC 3339 time such as 2026-11-28T16:00:00Z",
		            NULL);
		return;
	}
	struct jsontext t;
	reply_text_begin(&t, id);
	int rc = engine_job_history_text(cn->c->engine, job, limit, before_ms, &t, &cause);
	reply_text_or_error(cn, id, rc, &t, cause, rc ? job_data(job) : NULL);
}

static void m_reload(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {NULL};
	struct config_errors errs = {0};
	json_t *summary = NULL;
	if (!params_ok(cn, id, params, allowed))
		return;
	int rc = cn->c->reload(cn->c->reload_arg, &summary, &errs);
	if (rc == 0) {
		reply_result(cn, id, summary);
	} else {
		json_t *list = json_array();
		for (size_t i = 0; i < errs.n; i++)
			json_array_append_new(list, json_string(errs.msgs[i]));
		/* The errors themselves are in data.errors, each once. */
		char *msg = xasprintf("the new configuration was refused (%zu error%s); the running "
		                      "one stays", errs.n, errs.n == 1 ? "" : "s");
		reply_error(cn, id, RPC_E_CONFIG_INVALID, msg, json_pack("{s:o}", "errors", list));
		free(msg);
	}
	config_errors_clear(&errs);
}

static void event_to_conn(void *arg, const json_t *msg) {
	struct conn *cn = arg;
	struct evbuffer *out = bufferevent_get_output(cn->bev);
	if (evbuffer_get_length(out) > CONTROL_MAX_OUTPUT) {
		if (log_ratelimit_ok(&cn->c->rl, 5, 10000, "dropped subscribers"))
			log_warning("dropping an event subscriber (pid %d, uid %d): it does not read "
			            "its events (over %d bytes queued)", (int)cn->pid, (int)cn->uid,
			            CONTROL_MAX_OUTPUT);
		/* Not freed here: we may be inside this connection's own request. */
		events_unsubscribe(engine_events(cn->c->engine), cn->sub);
		cn->sub = NULL;
		cn->closing = true;
		event_active(cn->kill_ev, EV_TIMEOUT, 1);
		return;
	}
	conn_send(cn, msg);
}

static void m_subscribe(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"jobs", NULL};
	if (!params_ok(cn, id, params, allowed))
		return;
	json_t *jobs = params ? json_object_get(params, "jobs") : NULL;
	size_t i;
	json_t *v;
	if (jobs && !json_is_array(jobs)) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, "param \"jobs\" must be an array of job ids",
		            NULL);
		return;
	}
	json_array_foreach(jobs, i, v) {
		if (!json_is_string(v)) {
			reply_error(cn, id, RPC_E_INVALID_PARAMS,
			            "param \"jobs\" must be an array of job ids", NULL);
			return;
		}
		/* A filter on a job that does not exist would wait forever. */
		if (!engine_has_job(cn->c->engine, json_string_value(v))) {
			char *msg = xasprintf("no such job \"%s\" (mcpjobctl list shows the jobs)",
			                      json_string_value(v));
			reply_error(cn, id, RPC_E_INVALID_PARAMS, msg, job_data(json_string_value(v)));
			free(msg);
			return;
		}
	}
	if (cn->sub)
		events_unsubscribe(engine_events(cn->c->engine), cn->sub);
	cn->sub = events_subscribe(engine_events(cn->c->engine), jobs, event_to_conn, cn);
	reply_result(cn, id, json_pack("{s:b}", "subscribed", 1));
}

static void m_device_status(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {NULL};
	if (params_ok(cn, id, params, allowed))
		reply_result(cn, id, engine_device_json(cn->c->engine));
}

static void m_device_set(struct conn *cn, json_t *id, json_t *params) {
	json_t *out = NULL;
	char *cause = NULL;
	if (params && !json_is_object(params)) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, "params must be an object", NULL);
		return;
	}
	if (rpc_params_nul_check(params, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return;
	}
	int rc = engine_device_set(cn->c->engine, params, &out, &cause);
	reply_engine(cn, id, rc, out, cause, NULL);
}

static void m_metrics(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {NULL};
	if (!params_ok(cn, id, params, allowed))
		return;
	if (cn->c->metrics == NULL) {
		reply_error(cn, id, RPC_E_NOT_SUPPORTED, "this mcpjobd keeps no metrics", NULL);
		return;
	}
	char *text = cn->c->metrics(cn->c->metrics_arg);
	const char *tf = engine_config(cn->c->engine)->metrics_textfile;
	reply_result(cn, id, json_pack("{s:s, s:s?}", "text", text, "textfile", tf));
	free(text);
}

/* A job.add / job.update reply: the engine's, or the problems with their key paths. */
static void reply_added(struct conn *cn, json_t *id, int rc, json_t *out, char *cause,
                        struct config_errors *errs, const char *job) {
	if (rc == 0 || errs->n == 0) {
		reply_engine(cn, id, rc, out, cause, rc ? job_data(job ? job : "") : NULL);
	} else {
		json_t *list = json_array();
		for (size_t i = 0; i < errs->n; i++)
			json_array_append_new(list, json_string(errs->msgs[i]));
		reply_error(cn, id, rc, cause, json_pack("{s:s, s:o}", "job", job ? job : "",
		                                         "errors", list));
		free(cause);
	}
	config_errors_clear(errs);
}

static void add_or_update(struct conn *cn, json_t *id, json_t *params, bool update) {
	static const char *const add_keys[] = {"job", "if_exists", NULL};
	static const char *const update_keys[] = {"job", NULL};
	static const char *const policies[] = {"keep", "replace", "update", NULL};
	struct engine_peer peer = {(int)cn->uid, cn->admin};
	struct config_errors errs = {0};
	const char *policy = NULL;
	char *cause = NULL;
	json_t *out = NULL;
	if (!params_ok(cn, id, params, update ? update_keys : add_keys))
		return;
	json_t *job = json_object_get(params, "job");
	const char *jid = job ? json_string_value(json_object_get(job, "id")) : NULL;
	if (!json_is_object(job)) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, "param \"job\" must be a job object, as in "
		            "a configuration file's \"jobs\"", NULL);
		return;
	}
	if (rpc_param_string(params, "if_exists", false, &policy, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return;
	}
	size_t k;
	for (k = 0; policy && policies[k] && strcmp(policies[k], policy) != 0; k++)
		;
	if (policy && policies[k] == NULL) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, "param \"if_exists\" must be \"keep\", "
		            "\"replace\" or \"update\"", NULL);
		return;
	}
	if (update && (jid == NULL || engine_job_owner(cn->c->engine, jid) < 0)) {
		char *why = xasprintf("no job \"%s\" was added over the socket (job.add adds one)",
		                      jid ? jid : "");
		reply_error(cn, id, RPC_E_NO_SUCH_JOB, why, job_data(jid ? jid : ""));
		free(why);
		return;
	}
	int rc = engine_job_add(cn->c->engine, &peer, job, update ? "update" : policy, &out, &errs,
	                        &cause);
	reply_added(cn, id, rc, out, cause, &errs, jid);
}

static void m_add(struct conn *cn, json_t *id, json_t *params) {
	add_or_update(cn, id, params, false);
}

static void m_update(struct conn *cn, json_t *id, json_t *params) {
	add_or_update(cn, id, params, true);
}

static void m_remove(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"job", NULL};
	struct engine_peer peer = {(int)cn->uid, cn->admin};
	const char *job = job_param(cn, id, params, allowed);
	char *cause = NULL;
	json_t *out = NULL;
	if (job == NULL)
		return;
	int rc = engine_job_remove(cn->c->engine, &peer, job, &out, &cause);
	reply_engine(cn, id, rc, out, cause, rc ? job_data(job) : NULL);
}

/* --- auth.*: OAuth logins of remote MCP servers ------------------------------ */

static json_t *server_data(const char *server) {
	return json_pack("{s:s}", "server", server);
}

/* The "server" param, an http/sse server of the configuration; NULL when replied. */
static const char *server_param(struct conn *cn, json_t *id, json_t *params,
                                const char *const *allowed, bool required) {
	const char *server = NULL;
	char *cause = NULL;
	if (!params_ok(cn, id, params, allowed))
		return NULL;
	if (rpc_param_string(params, "server", required, &server, &cause) < 0) {
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return NULL;
	}
	if (server == NULL)
		return "";
	const struct mcp_server_def *s = config_find_server(engine_config(cn->c->engine), server);
	if (s == NULL || s->type == MCP_SERVER_STDIO) {
		char *why = xasprintf("no http or sse server \"%s\" is declared in \"mcpServers\" "
		                      "(only remote servers log in)", server);
		reply_error(cn, id, RPC_E_NO_SUCH_SERVER, why, server_data(server));
		free(why);
		return NULL;
	}
	return server;
}

/* A login's answer for the connection that waits for it. */
static void auth_reply(void *arg, int rc, const json_t *result, const char *cause) {
	struct wait_req *w = arg;
	struct conn *cn = w->conn;
	for (struct wait_req **pp = &cn->waits; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	if (rc == 0)
		reply_result(cn, w->id, json_deep_copy(result));
	else
		reply_error(cn, w->id, rc, cause ? cause : "the login failed", NULL);
	json_decref(w->id);
	free(w);
}

static struct wait_req *auth_wait_new(struct conn *cn, json_t *id) {
	struct wait_req *w = xcalloc(1, sizeof *w);
	w->conn = cn;
	w->id = json_incref(id);
	w->auth = true;
	return w;
}

/* Keep @w on its connection (@handle from auth_login.h), or answer the error. */
static void auth_wait_keep(struct conn *cn, struct wait_req *w, void *handle, int rc,
                           char *cause, const char *server) {
	if (handle == NULL) {
		reply_error(cn, w->id, rc, cause ? cause : "failed", server_data(server));
		free(cause);
		json_decref(w->id);
		free(w);
		return;
	}
	w->waiter = handle;
	w->next = cn->waits;
	cn->waits = w;
}

static void m_auth_login(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"server", NULL};
	const char *server = server_param(cn, id, params, allowed, true);
	char *cause = NULL;
	int rc = 0;
	if (server == NULL)
		return;
	struct wait_req *w = auth_wait_new(cn, id);
	void *h = auth_login_start(engine_auth_logins(cn->c->engine), server, auth_reply, w, &rc,
	                           &cause);
	auth_wait_keep(cn, w, h, rc, cause, server);
}

static void m_auth_complete(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"server", "url", "code", NULL};
	const char *server = server_param(cn, id, params, allowed, true);
	const char *url = NULL, *code = NULL;
	char *cause = NULL;
	int rc = 0;
	if (server == NULL)
		return;
	if (rpc_param_string(params, "url", false, &url, &cause) < 0 ||
	    rpc_param_string(params, "code", false, &code, &cause) < 0 || (url && code) ||
	    (url && strlen(url) > AUTH_LOGIN_PASTE_MAX) ||
	    (code && strlen(code) > AUTH_LOGIN_PASTE_MAX)) {
		if (cause == NULL)
			cause = xasprintf("give \"url\" (the address the browser was sent to) or "
			                  "\"code\", not both, at most %d bytes", AUTH_LOGIN_PASTE_MAX);
		reply_error(cn, id, RPC_E_INVALID_PARAMS, cause, NULL);
		free(cause);
		return;
	}
	struct wait_req *w = auth_wait_new(cn, id);
	void *h = auth_login_complete(engine_auth_logins(cn->c->engine), server, url ? url : code,
	                              auth_reply, w, &rc, &cause);
	auth_wait_keep(cn, w, h, rc, cause, server);
}

/* One server's status: its grant as auth_status_json() shows it, and its login. */
static json_t *auth_server_status(struct engine *e, const char *server) {
	json_t *st = auth_status_json(engine_auth(e), server);
	json_object_set_new(st, "login", json_string(auth_login_phase(engine_auth_logins(e), server)));
	return st;
}

static void m_auth_status(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"server", NULL};
	const char *server = server_param(cn, id, params, allowed, false);
	if (server == NULL)
		return;
	struct engine *e = cn->c->engine;
	const struct config *cfg = engine_config(e);
	json_t *list = json_array();
	for (size_t i = 0; i < cfg->nservers; i++) {
		const struct mcp_server_def *s = cfg->servers[i];
		if (s->type != MCP_SERVER_STDIO && (*server == '\0' || strcmp(server, s->name) == 0))
			json_array_append_new(list, auth_server_status(e, s->name));
	}
	reply_result(cn, id, json_pack("{s:o}", "servers", list));
}

static void m_auth_logout(struct conn *cn, json_t *id, json_t *params) {
	static const char *const allowed[] = {"server", NULL};
	const char *server = server_param(cn, id, params, allowed, true);
	char *cause = NULL;
	if (server == NULL)
		return;
	struct engine *e = cn->c->engine;
	auth_login_cancel(engine_auth_logins(e), server, "logged out");
	int rc = auth_logout(engine_auth(e), server, &cause);
	if (rc < 0) {
		reply_error(cn, id, RPC_E_INTERNAL, cause, server_data(server));
		free(cause);
		return;
	}
	reply_result(cn, id, json_pack("{s:s, s:b}", "server", server, "removed", rc == 1));
}

/*
 * Who may call a method: anyone who reaches the socket (READ), the owner
 * of the job it names (a job they added over the socket) or an admin
 * (OWNER), anyone, with the engine checking what they may add (PEER), or
 * admins only (ADMIN).
 */
enum access { ACCESS_READ, ACCESS_PEER, ACCESS_OWNER, ACCESS_ADMIN };

static const struct method {
	const char *name;
	method_fn fn;
	enum access access;
} methods[] = {
	{RPC_M_HELLO, m_hello, ACCESS_READ},
	{RPC_M_JOBS_LIST, m_list, ACCESS_READ},
	{RPC_M_JOB_STATUS, m_status, ACCESS_READ},
	{RPC_M_JOB_HISTORY, m_history, ACCESS_READ},
	{RPC_M_EVENTS_SUBSCRIBE, m_subscribe, ACCESS_READ},
	{RPC_M_DEVICE_STATUS, m_device_status, ACCESS_READ},
	{RPC_M_METRICS, m_metrics, ACCESS_READ},
	{RPC_M_JOB_ADD, m_add, ACCESS_PEER},
	{RPC_M_JOB_UPDATE, m_update, ACCESS_PEER},
	{RPC_M_JOB_REMOVE, m_remove, ACCESS_OWNER},
	{RPC_M_JOB_ENABLE, m_enable, ACCESS_OWNER},
	{RPC_M_JOB_DISABLE, m_disable, ACCESS_OWNER},
	{RPC_M_JOB_RUN, m_run, ACCESS_OWNER},
	{RPC_M_JOB_CANCEL, m_cancel, ACCESS_OWNER},
	{RPC_M_RELOAD, m_reload, ACCESS_ADMIN},
	{RPC_M_DEVICE_SET, m_device_set, ACCESS_ADMIN},
	{RPC_M_AUTH_STATUS, m_auth_status, ACCESS_READ},
	{RPC_M_AUTH_LOGIN, m_auth_login, ACCESS_ADMIN},
	{RPC_M_AUTH_COMPLETE, m_auth_complete, ACCESS_ADMIN},
	{RPC_M_AUTH_LOGOUT, m_auth_logout, ACCESS_ADMIN},
};

/* May this connection call @m with @params? */
static bool access_ok(const struct conn *cn, const struct method *m, const json_t *params) {
	if (cn->admin || m->access == ACCESS_READ || m->access == ACCESS_PEER)
		return true;
	if (m->access == ACCESS_ADMIN)
		return false;
	const char *job = json_string_value(json_object_get(params, "job"));
	return job != NULL && engine_job_owner(cn->c->engine, job) == (int)cn->uid;
}

static void dispatch(struct conn *cn, const char *line, size_t len) {
	struct rpc_msg msg;
	rpc_parse(line, len, &msg);
	if (msg.kind == RPC_INVALID) {
		bool id_ok = msg.id && (json_is_string(msg.id) || json_is_integer(msg.id));
		reply_error(cn, id_ok ? msg.id : NULL, msg.err_code, msg.err_text, NULL);
	} else if (msg.kind == RPC_REQUEST) {
		const struct method *m = NULL;
		for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
			if (strcmp(methods[i].name, msg.method) == 0)
				m = &methods[i];
		if (m == NULL) {
			char *t = xasprintf("unknown method \"%s\"", msg.method);
			reply_error(cn, msg.id, RPC_E_METHOD_NOT_FOUND, t, NULL);
			free(t);
		} else if (!access_ok(cn, m, msg.params)) {
			const char *g = engine_config(cn->c->engine)->admin_group;
			char *t = xasprintf("permission denied: %s requires root or membership in group %s%s",
			                    m->name, g ? g : "mcpjob",
			                    m->access == ACCESS_OWNER ? ", or a job you added yourself" : "");
			reply_error(cn, msg.id, RPC_E_PERMISSION_DENIED, t,
			            json_pack("{s:s, s:s}", "method", m->name, "group", g ? g : "mcpjob"));
			free(t);
		} else {
			m->fn(cn, msg.id, msg.params);
		}
	}
	/* Notifications and responses from clients need no answer. */
	rpc_msg_clear(&msg);
}

/* --- connections ------------------------------------------------------------- */

/*
 * Back-pressure: requests are read only while a connection's unsent output
 * is under CONTROL_PAUSE_OUTPUT, so a peer that pipelines and never reads
 * costs at most that plus one reply. Reading resumes once the peer has taken
 * half of it; a paused peer that takes nothing for CONTROL_STALL_MS is
 * dropped.
 */

static void conn_free(struct conn *cn) {
	struct control *c = cn->c;
	if (cn->sub)
		events_unsubscribe(engine_events(c->engine), cn->sub);
	for (struct wait_req *w = cn->waits, *next; w; w = next) {
		next = w->next;
		if (w->auth)
			auth_login_forget(engine_auth_logins(c->engine), w->waiter);
		else
			engine_forget_waiter(c->engine, w->waiter);
		json_decref(w->id);
		free(w);
	}
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		c->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	bufferevent_free(cn->bev);
	event_free(cn->kill_ev);
	event_free(cn->stall_ev);
	free(cn);
}

static void conn_kill(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	conn_free(arg);
}

static size_t conn_unsent(struct conn *cn) {
	return evbuffer_get_length(bufferevent_get_output(cn->bev));
}

/* Free @cn when nothing is left to do for it; true when it was freed. */
static bool conn_try_finish(struct conn *cn) {
	if (!cn->closing && !cn->eof)
		return false;
	if (conn_unsent(cn) > 0)
		return false;
	/* After a half-close, runs it waits for are still answered. */
	if (!cn->closing && (cn->paused || cn->waits != NULL))
		return false;
	conn_free(cn);
	return true;
}

/* Watch that the peer takes what waits for it. */
static void conn_arm_stall(struct conn *cn) {
	struct timeval tv = {CONTROL_STALL_MS / 1000, (CONTROL_STALL_MS % 1000) * 1000};
	cn->sent_at_pause = cn->sent;
	evtimer_add(cn->stall_ev, &tv);
}

static void conn_pause(struct conn *cn) {
	cn->paused = true;
	bufferevent_disable(cn->bev, EV_READ);
	conn_arm_stall(cn);
}

/* A paused or half-closed peer that took nothing since the last look is
 * dropped. */
static void conn_stall_check(evutil_socket_t fd, short what, void *arg) {
	struct conn *cn = arg;
	struct timeval tv = {CONTROL_STALL_MS / 1000, (CONTROL_STALL_MS % 1000) * 1000};
	(void)fd;
	(void)what;
	if ((!cn->paused && !cn->eof) || conn_unsent(cn) == 0)
		return;
	if (cn->sent != cn->sent_at_pause) {
		cn->sent_at_pause = cn->sent;
		evtimer_add(cn->stall_ev, &tv);
		return;
	}
	if (log_ratelimit_ok(&cn->c->rl_stall, 5, 10000, "dropped clients"))
		log_warning("dropping a client (pid %d, uid %d): it does not read its replies "
		            "(%zu bytes unsent, none taken for %d s)", (int)cn->pid, (int)cn->uid,
		            conn_unsent(cn), CONTROL_STALL_MS / 1000);
	conn_free(cn);
}

/* Count what the peer takes, for the stall check. */
static void conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
	struct conn *cn = arg;
	(void)buf;
	cn->sent += info->n_deleted;
}

/* The last line of a half-closed peer may lack its '\n'. */
static void conn_read_tail(struct conn *cn, struct evbuffer *in) {
	size_t n = evbuffer_get_length(in);
	if (n == 0 || n > MCPJOB_MAX_LINE)
		return;
	char *line = xmalloc(n + 1);
	evbuffer_remove(in, line, n);
	line[n] = '\0';
	dispatch(cn, line, n);
	free(line);
}

/* Answer the complete requests buffered; true when @cn was freed. */
static bool conn_process(struct conn *cn) {
	struct bufferevent *bev = cn->bev;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!cn->closing) {
		if (conn_unsent(cn) > CONTROL_PAUSE_OUTPUT) {
			conn_pause(cn);
			return false;
		}
		size_t eol_len = 0;
		struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (p.pos < 0 ? evbuffer_get_length(in) > MCPJOB_MAX_LINE : p.pos > MCPJOB_MAX_LINE) {
			reply_error(cn, NULL, RPC_E_LINE_TOO_LONG,
			            "request line too long (over 1 MiB); closing the connection", NULL);
			evbuffer_drain(in, evbuffer_get_length(in));
			cn->closing = true;
			bufferevent_disable(bev, EV_READ);
			break;
		}
		if (p.pos < 0) {
			if (cn->eof)
				conn_read_tail(cn, in);
			break;
		}
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
		if (line == NULL)
			break;
		if (n > 0)
			dispatch(cn, line, n);
		free(line);
	}
	return conn_try_finish(cn);
}

static void conn_read(struct bufferevent *bev, void *arg) {
	(void)bev;
	conn_process(arg);
}

static void conn_write(struct bufferevent *bev, void *arg) {
	struct conn *cn = arg;
	if (cn->paused && conn_unsent(cn) <= CONTROL_PAUSE_OUTPUT / 2) {
		cn->paused = false;
		evtimer_del(cn->stall_ev);
		if (!cn->eof)
			bufferevent_enable(bev, EV_READ);
		/* requests already buffered get no read event */
		if (!conn_process(cn) && cn->eof && conn_unsent(cn) > 0)
			conn_arm_stall(cn);
		return;
	}
	conn_try_finish(cn);
}

/* EOF on read: a peer that is gone (POLLHUP) is freed at once; one that only
 * shut down its sending side still gets every answer. */
static void conn_event(struct bufferevent *bev, short what, void *arg) {
	struct conn *cn = arg;
	struct pollfd pfd = {bufferevent_getfd(bev), POLLOUT, 0};
	if ((what & BEV_EVENT_ERROR) || !(what & BEV_EVENT_EOF) ||
	    (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)))) {
		conn_free(cn);
		return;
	}
	cn->eof = true;
	bufferevent_disable(bev, EV_READ);
	if (cn->paused || conn_process(cn))
		return;
	if (conn_unsent(cn) > 0)
		conn_arm_stall(cn); /* it may never read what it asked for */
}

static int conns_of_uid(struct control *c, uid_t uid) {
	int n = 0;
	for (struct conn *cn = c->conns; cn; cn = cn->next)
		if (cn->uid == uid)
			n++;
	return n;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg) {
	struct control *c = arg;
	struct ucred cred = {0};
	socklen_t len = sizeof cred;
	(void)l;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(fd);
		return;
	}
	struct conn *cn = xcalloc(1, sizeof *cn);
	const struct config *cfg = engine_config(c->engine);
	cn->c = c;
	cn->uid = cred.uid;
	cn->gid = cred.gid;
	cn->pid = cred.pid;
	cn->admin = cred.uid == 0 || cred.uid == geteuid() ||
	            peer_in_group(fd, cred.gid, cfg->admin_group);
	cn->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	cn->kill_ev = event_new(c->base, -1, 0, conn_kill, cn);
	cn->stall_ev = evtimer_new(c->base, conn_stall_check, cn);
	if (cn->bev == NULL || cn->kill_ev == NULL || cn->stall_ev == NULL)
		log_fatalx("cannot set up events for a control connection");
	evbuffer_add_cb(bufferevent_get_output(cn->bev), conn_output_cb, cn);
	/* The write callback also runs when a paused connection may resume. */
	bufferevent_setwatermark(cn->bev, EV_WRITE, CONTROL_PAUSE_OUTPUT / 2, 0);
	bufferevent_setcb(cn->bev, conn_read, conn_write, conn_event, cn);
	cn->next = c->conns;
	if (c->conns)
		c->conns->prev = cn;
	c->conns = cn;
	if (conns_of_uid(c, cred.uid) > cfg->max_connections_per_uid) {
		char *t = xasprintf("too many connections from uid %d (max_connections_per_uid %d)",
		                    (int)cred.uid, cfg->max_connections_per_uid);
		reply_error(cn, NULL, RPC_E_TOO_MANY_CONNS, t, NULL);
		free(t);
		cn->closing = true;
		if (conn_try_finish(cn)) /* the refusal went out at once */
			return;
		bufferevent_enable(cn->bev, EV_WRITE);
		return;
	}
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg) {
	struct control *c = arg;
	(void)fd;
	(void)what;
	if (!c->stopped)
		evconnlistener_enable(c->listener);
}

/* accept() failed (EMFILE and friends): retrying at once would spin, so
 * pause accepting for CONTROL_ACCEPT_PAUSE_MS and say so once in a while. */
static void on_accept_error(struct evconnlistener *l, void *arg) {
	struct control *c = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, CONTROL_ACCEPT_PAUSE_MS * 1000};
	evconnlistener_disable(l);
	if (log_ratelimit_ok(&c->rl_accept, 1, 10000, "accept errors"))
		log_warning("cannot accept a connection on %s: %s; not accepting connections for "
		            "%d ms at a time until it passes%s", c->path, strerror(err),
		            CONTROL_ACCEPT_PAUSE_MS,
		            err == EMFILE || err == ENFILE
		                    ? " (close connections or raise the file limit, e.g. LimitNOFILE=)"
		                    : "");
	evtimer_add(c->accept_ev, &tv);
}

/* --- the socket ---------------------------------------------------------------- */

/* Refuse to take over a socket another instance still listens on. */
static int socket_take_path(const char *path, char **cause) {
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path) {
		*cause = xasprintf("socket path %s is too long (max %zu bytes)", path,
		                   sizeof sun.sun_path - 1);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		close(fd);
		*cause = xasprintf("another mcpjobd is already listening on %s; stop it first "
		                   "or use --socket PATH", path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	if (unlink(path) < 0 && errno != ENOENT) {
		*cause = xasprintf("cannot remove the stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int socket_create(const struct control_opts *o, char **cause) {
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char *dir = xstrdup(o->socket_path), *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		/* A private socket (0600, --user) gets a private directory too. */
		if (mkdir(dir, (o->mode & 0077) ? 0755 : 0700) < 0 && errno != EEXIST) {
			*cause = xasprintf("cannot create the directory %s for the socket: %s", dir,
			                   strerror(errno));
			free(dir);
			return -1;
		}
	}
	free(dir);
	if (socket_take_path(o->socket_path, cause) < 0)
		return -1;
	strcpy(sun.sun_path, o->socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old = umask(0777 & ~o->mode);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc < 0 || listen(fd, 64) < 0) {
		*cause = xasprintf("cannot listen on %s: %s", o->socket_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	chmod(o->socket_path, o->mode);
	if (o->group) {
		struct group *gr = getgrnam(o->group);
		if (gr == NULL || chown(o->socket_path, (uid_t)-1, gr->gr_gid) < 0)
			log_warning("cannot give the socket %s to group %s: %s", o->socket_path, o->group,
			            gr ? strerror(errno) : "no such group");
	}
	return fd;
}

int control_open(struct event_base *base, struct engine *engine, const struct control_opts *o,
                 struct control **out, char **cause) {
	int fd = o->listen_fd;
	bool own = fd < 0;
	if (own && (fd = socket_create(o, cause)) < 0)
		return -1;
	evutil_make_socket_nonblocking(fd);
	struct control *c = xcalloc(1, sizeof *c);
	c->base = base;
	c->engine = engine;
	c->path = xstrdup(o->socket_path);
	c->own_socket = own;
	c->reload = o->reload;
	c->reload_arg = o->reload_arg;
	c->metrics = o->metrics;
	c->metrics_arg = o->metrics_arg;
	c->listener = evconnlistener_new(base, on_accept, c, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	c->accept_ev = evtimer_new(base, accept_resume, c);
	if (c->listener == NULL || c->accept_ev == NULL) {
		*cause = xasprintf("cannot accept connections on %s", o->socket_path);
		if (c->listener)
			evconnlistener_free(c->listener);
		else
			close(fd);
		if (c->accept_ev)
			event_free(c->accept_ev);
		free(c->path);
		free(c);
		return -1;
	}
	evconnlistener_set_error_cb(c->listener, on_accept_error);
	*out = c;
	return 0;
}

void control_stop_accepting(struct control *c) {
	if (c && c->listener) {
		c->stopped = true;
		evtimer_del(c->accept_ev);
		evconnlistener_disable(c->listener);
	}
}

void control_close(struct control *c) {
	if (c == NULL)
		return;
	while (c->conns)
		conn_free(c->conns);
	if (c->listener)
		evconnlistener_free(c->listener);
	if (c->accept_ev)
		event_free(c->accept_ev);
	if (c->own_socket)
		unlink(c->path);
	free(c->path);
	free(c);
}
