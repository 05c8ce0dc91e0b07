/*
 * engine.c - the engine's API (engine.h): open, close, reload, and the
 * calls the control server, the tests and the mobile hooks make.
 *
 * The work is done by two modules below it: the scheduler (sched.c: jobs,
 * due times, pending, the decision after a run) and the run (run.c: one
 * run from start to record). The engine wires them to the store, the
 * platform, the MCP pool and the events, and owns the configuration.
 */
#include "daemon/engine.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/jsontext.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/added.h"
#include "daemon/auth.h"
#include "daemon/auth_login.h"
#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_auth.h"
#include "daemon/run.h"
#include "daemon/sched.h"
#include "daemon/store.h"
#include "platform/platform.h"

struct engine {
	struct event_base *base;
	const struct engine_clock *clock;
	char *config_path;
	struct config_load_opts load_opts; /* from engine_opts, for every (re)load */
	struct added *added;         /* jobs added over the socket */
	struct sched_cfg *cfg;
	struct store *store;
	struct platform *platform;
	struct mcp_pool *mcp;
	struct events *events;
	struct sched *sched;
	struct auth *auth;           /* the servers' OAuth grants (STATE/auth) */
	struct auth_logins *logins;  /* people's logins in progress */
	void (*stop_done)(void *);
	void *stop_arg;
	struct engine_timer *budget;
};

static void engine_on_device(void *arg, const struct device_state *old,
                             const struct device_state *now) {
	struct engine *e = arg;
	events_emit(e->events, EVENT_DEVICE_CHANGED, NULL,
	            json_pack("{s:o, s:o}", "state", platform_state_to_json(now), "previous",
	                      platform_state_to_json(old)));
	if (e->sched)
		sched_device_changed(e->sched, now);
}

/* A server's grant came or went: its jobs run, or wait for a login. */
static void engine_on_auth(void *arg, const char *server, bool authorized, const char *why) {
	struct engine *e = arg;
	if (e->sched)
		sched_auth_changed(e->sched, server, authorized);
	if (!authorized && e->mcp)
		mcp_pool_forget_server(e->mcp, server);
	if (!authorized)
		events_emit(e->events, why ? EVENT_AUTH_REVOKED : EVENT_AUTH_LOGGED_OUT, NULL,
		            json_pack("{s:s, s:s?}", "server", server, "message", why));
}

/* --- open / close ----------------------------------------------------------- */

/* The store pruned history to stay under store.max_size. */
static void engine_on_store_notice(void *arg, const char *what, uint64_t runs_deleted) {
	struct engine *e = arg;
	log_warning("%s", what);
	events_emit(e->events, EVENT_STORE_PRUNED, NULL,
	            json_pack("{s:s, s:I}", "message", what, "runs_deleted", (json_int_t)runs_deleted));
}

/*
 * Load the files and the added jobs (with @extra, added by @uid, in place
 * of its id's). An added job with a problem is left out and logged: it
 * must not keep the daemon from starting.
 */
static int engine_load(struct engine *e, const char *extra_id, json_t *extra, int uid,
                       struct config **out, struct config_errors *errs) {
	struct config_load_opts lo = e->load_opts;
	struct config_errors bad = {0};
	added_load_opts(e->added, extra_id, extra, uid, &lo);
	lo.socket_errs = &bad;
	lo.last_socket_job_strict = extra != NULL; /* a job being added must be right */
	int r = config_load_with(e->config_path, &lo, out, errs);
	for (size_t i = 0; i < bad.n; i++)
		log_warning("an added job is left out: %s (fix it with mcpjobctl update, or "
		            "mcpjobctl remove it)", bad.msgs[i]);
	config_errors_clear(&bad);
	return r;
}

/* --- runs left on an MCP task by a daemon that died ------------------------- */

struct resume_list {
	const struct config *cfg;
	struct run_record *runs;
	size_t n;
};

/*
 * Resumed: a run that had its task kept, of a job still in the configuration
 * calling the same Streamable HTTP server (a stdio server died with the
 * daemon, and a legacy SSE session cannot be taken up again). The rest are
 * interrupted, as before.
 */
static int engine_keep_task_run(const struct run_record *run, void *arg) {
	struct resume_list *l = arg;
	if (run->task_id == NULL || run->task_server == NULL)
		return 0;
	const struct job_def *d = config_find_job(l->cfg, run->job_id);
	const struct mcp_server_def *srv = config_find_server(l->cfg, run->task_server);
	if (d == NULL || d->kind != ACTION_MCP || d->mcp.server == NULL ||
	    strcmp(d->mcp.server, run->task_server) != 0 || srv == NULL ||
	    srv->type != MCP_SERVER_HTTP)
		return 0;
	l->runs = xreallocarray(l->runs, l->n + 1, sizeof *l->runs);
	store_run_record_copy(&l->runs[l->n++], run);
	return 1;
}

/* A kept run that cannot be taken over after all: interrupted, as it would have been. */
static void engine_resume_failed(struct engine *e, struct run_record *run, const char *why) {
	char *err = NULL;
	struct job_record rec;
	const struct job_def *d = config_find_job(e->cfg->cfg, run->job_id);
	log_warning("%s: run %llu cannot be resumed (%s): recorded as interrupted", run->job_id,
	            (unsigned long long)run->run_id, why);
	run->outcome = OUTCOME_INTERRUPTED;
	run->finished_ms = e->clock->now_ms(e->clock->ctx);
	free(run->message);
	run->message = xstrdup(STORE_INTERRUPTED_MSG);
	if (store_load_job(e->store, run->job_id, &rec, NULL) < 0)
		store_job_record_init(&rec);
	rec.last_outcome = OUTCOME_INTERRUPTED;
	free(rec.last_message);
	rec.last_message = xstrdup(run->message);
	rec.last_finished_ms = run->finished_ms;
	if (store_run_finish(e->store, run, &rec, d ? d->history_max_runs : 0,
	                     d ? d->history_max_age_ms : 0, run->finished_ms, &err) < 0) {
		log_error("%s: cannot record the end of run %llu: %s", run->job_id,
		          (unsigned long long)run->run_id, err);
		free(err);
	}
	store_job_record_clear(&rec);
}

static void engine_resume_runs(struct engine *e, struct resume_list *l) {
	for (size_t i = 0; i < l->n; i++) {
		char *why = NULL;
		if (sched_resume_run(e->sched, &l->runs[i], &why) < 0) {
			engine_resume_failed(e, &l->runs[i], why);
			free(why);
		}
		store_run_record_clear(&l->runs[i]);
	}
	free(l->runs);
	l->runs = NULL;
	l->n = 0;
}

int engine_open(const struct engine_opts *opts, struct engine **out, struct config_errors *errs,
                char **cause) {
	struct config *cfg;
	struct resume_list resume = {0};
	struct engine *e = xcalloc(1, sizeof *e);
	e->load_opts.identity = opts->identity_mode;
	e->base = opts->base;
	e->clock = opts->clock ? opts->clock : engine_clock_real();
	e->config_path = xstrdup(opts->config_path);
	e->events = events_new();
	/* The store first: the jobs added over the socket are part of the configuration. */
	if (store_open(opts->state_dir, &e->store, cause) < 0 ||
	    (e->added = added_load(e->store, cause)) == NULL)
		goto fail;
	if (engine_load(e, NULL, NULL, 0, &cfg, errs) < 0) {
		*cause = xasprintf("cannot load the configuration %s", opts->config_path);
		goto fail;
	}
	e->cfg = sched_cfg_new(cfg);
	resume.cfg = cfg;
	int n = store_recover_runs(e->store, e->clock->now_ms(e->clock->ctx), engine_keep_task_run,
	                           &resume, NULL, NULL, cause);
	if (n < 0)
		goto fail;
	if (n > 0)
		log_notice("%d run%s interrupted when mcpjobd last stopped; recorded as interrupted",
		           n, n == 1 ? " was" : "s were");
	if (resume.n > 0)
		log_notice("%zu run%s on an MCP task when mcpjobd last stopped; following %s to "
		           "%s end", resume.n, resume.n == 1 ? " was" : "s were",
		           resume.n == 1 ? "it" : "them", resume.n == 1 ? "its" : "their");
	struct platform_args pa = {.name = opts->platform, .base = e->base, .settings = &cfg->device,
	                           .state_dir = opts->state_dir, .fn = engine_on_device, .arg = e,
	                           .no_system_bus = opts->no_system_bus};
	/* Writes go to the store's writer thread from here on (group commit). */
	store_configure(e->store, cfg->durability, cfg->store_max_size);
	store_set_notice(e->store, engine_on_store_notice, e);
	store_attach(e->store, e->base);
	e->platform = platform_open(&pa, cause);
	if (e->platform == NULL)
		goto fail;
	e->mcp = mcp_pool_new(e->base, cfg);
	mcp_pool_set_store_id(e->mcp, store_id(e->store));
	if ((e->auth = auth_new(opts->state_dir, cause)) == NULL)
		goto fail;
	auth_set_change_fn(e->auth, engine_on_auth, e);
	struct mcp_auth_store keeper = auth_store(e->auth);
	mcp_pool_set_auth_store(e->mcp, &keeper);
	e->logins = auth_login_open(e->base, e->mcp, e->events);
	struct sched_env env = {.base = e->base, .clock = e->clock, .store = e->store,
	                        .platform = e->platform, .events = e->events, .mcp = e->mcp,
	                        .kill_grace_ms = opts->kill_grace_ms};
	store_load_begin(e->store); /* one read transaction for every job's record */
	e->sched = sched_new(&env, e->cfg, cause);
	store_load_end(e->store);
	if (e->sched == NULL)
		goto fail;
	/* Before anything is placed: these jobs are running, nothing overlaps them. */
	engine_resume_runs(e, &resume);
	/* The parse tree of a big configuration is gone: give its pages back. */
	malloc_trim(0);
	*out = e;
	return 0;
fail:
	for (size_t i = 0; i < resume.n; i++)
		store_run_record_clear(&resume.runs[i]);
	free(resume.runs);
	engine_free(e);
	return -1;
}

void engine_start(struct engine *e) {
	sched_start(e->sched);
}

/* Nothing runs any more after a stop or a run-due pass. */
static void engine_idle(void *arg) {
	struct engine *e = arg;
	if (e->budget)
		e->clock->timer_set(e->budget, INT64_MAX);
	void (*done)(void *) = e->stop_done;
	e->stop_done = NULL;
	if (done)
		done(e->stop_arg);
}

void engine_stop(struct engine *e, const char *reason, void (*done)(void *), void *arg) {
	e->stop_done = done;
	e->stop_arg = arg;
	sched_stop(e->sched, reason);
	sched_when_idle(e->sched, engine_idle, e);
}

void engine_shutdown(struct engine *e, const char *reason, void (*done)(void *), void *arg) {
	e->stop_done = done;
	e->stop_arg = arg;
	sched_stop_leaving_tasks(e->sched, reason);
	sched_when_idle(e->sched, engine_idle, e);
}

void engine_free(struct engine *e) {
	if (e == NULL)
		return;
	sched_free(e->sched);
	e->clock->timer_free(e->budget);
	auth_login_close(e->logins); /* before the pool: a login in progress is the pool's */
	if (e->mcp)
		mcp_pool_free(e->mcp);
	auth_free(e->auth);
	platform_close(e->platform);
	added_free(e->added);
	store_close(e->store);
	events_free(e->events);
	sched_cfg_put(e->cfg);
	free(e->config_path);
	free(e);
}

struct events *engine_events(struct engine *e) {
	return e->events;
}

struct auth *engine_auth(struct engine *e) {
	return e->auth;
}

struct auth_logins *engine_auth_logins(struct engine *e) {
	return e->logins;
}

const struct config *engine_config(struct engine *e) {
	return e->cfg->cfg;
}

const char *engine_platform_name(struct engine *e) {
	return platform_name(e->platform);
}

char *engine_status_line(struct engine *e) {
	return sched_status_line(e->sched);
}

/* --- reload --------------------------------------------------------------- */

/* Switch to @cfg (taken); *@summary as engine_reload() says. */
static void engine_apply(struct engine *e, struct config *cfg, json_t **summary) {
	json_t *added = json_array(), *removed = json_array(), *changed = json_array();
	struct sched_cfg *c = sched_cfg_new(cfg);
	sched_reload(e->sched, c, added, removed, changed);
	mcp_pool_set_config(e->mcp, cfg);
	platform_set_settings(e->platform, &cfg->device);
	store_configure(e->store, cfg->durability, cfg->store_max_size);
	sched_cfg_put(e->cfg);
	e->cfg = c;
	platform_refresh(e->platform); /* a reload also re-reads the device */
	size_t n = cfg->njobs;
	*summary = json_pack("{s:i, s:o, s:o, s:o}", "jobs", (int)n, "added", added, "removed",
	                     removed, "changed", changed);
	struct log_ctx ctx = {.message_id = MCPJOB_MSGID_RELOAD};
	log_msg(LOG_LEVEL_NOTICE, &ctx,
	        "configuration reloaded: %zu jobs (%zu added, %zu removed, %zu changed)", n,
	        json_array_size(added), json_array_size(removed), json_array_size(changed));
}

int engine_reload(struct engine *e, json_t **summary, struct config_errors *errs) {
	struct config *cfg;
	if (engine_load(e, NULL, NULL, 0, &cfg, errs) < 0)
		return RPC_E_CONFIG_INVALID;
	engine_apply(e, cfg, summary);
	return 0;
}

/* --- jobs added over the socket ------------------------------------------------ */

static int no_such_job(const char *id, char **cause) {
	*cause = xasprintf("no such job \"%s\" (mcpjobctl list shows the jobs)", id);
	return RPC_E_NO_SUCH_JOB;
}


int engine_job_owner(struct engine *e, const char *id) {
	return added_owner(e->added, id);
}

/* A file's job cannot be changed over the socket: say where it is. */
static int defined_in_file(struct engine *e, const char *id, char **cause) {
	const struct job_def *d = config_find_job(e->cfg->cfg, id);
	if (d == NULL || d->owner_uid >= 0)
		return 0;
	*cause = xasprintf("job \"%s\" is defined in %s: change it there (and mcpjobctl reload); "
	                   "it cannot be added, updated or removed over the socket", id, d->source);
	return RPC_E_PERMISSION_DENIED;
}

/* A non-admin at the configured number of added jobs may add no more. */
static bool cfg_quota_reached(struct engine *e, int uid, char **cause) {
	size_t max = (size_t)e->cfg->cfg->max_jobs_per_uid;
	if (added_count(e->added, uid) < max)
		return false;
	*cause = xasprintf("uid %d has added %zu jobs, the most max_jobs_per_uid allows: remove "
	                   "one first (mcpjobctl remove JOB)", uid, max);
	return true;
}

static const char *job_object_id(const json_t *job) {
	return json_is_object(job) ? json_string_value(json_object_get(job, "id")) : NULL;
}

int engine_job_add(struct engine *e, const struct engine_peer *peer, json_t *job,
                   const char *if_exists, json_t **out, struct config_errors *errs,
                   char **cause) {
	const char *id = job_object_id(job);
	struct config *cfg = NULL;
	json_t *summary = NULL;
	int rc, owner;
	if (id == NULL) {
		*cause = xstrdup("param \"job\" must be a job object with an \"id\" (as in a "
		                 "configuration file's \"jobs\")");
		return RPC_E_INVALID_PARAMS;
	}
	if ((rc = defined_in_file(e, id, cause)) != 0)
		return rc;
	owner = added_owner(e->added, id);
	if (owner >= 0 && owner != peer->uid && !peer->admin) {
		*cause = xasprintf("job \"%s\" was added by uid %d: you may change only your own jobs",
		                   id, owner);
		return RPC_E_PERMISSION_DENIED;
	}
	if (owner >= 0 && if_exists == NULL) {
		*cause = xasprintf("job \"%s\" exists (added by uid %d): say if_exists \"keep\", "
		                   "\"replace\" or \"update\", or remove it first", id, owner);
		return RPC_E_JOB_EXISTS;
	}
	if (owner >= 0 && strcmp(if_exists, "keep") == 0) {
		*out = json_pack("{s:s, s:s}", "job", id, "result", "kept");
		return 0;
	}
	if (owner < 0 && !peer->admin && cfg_quota_reached(e, peer->uid, cause))
		return RPC_E_QUOTA;
	/* "at": "10m" on job.add means ten minutes from now: kept as that time, so a
	 * restart or reload does not move it. */
	json_t *at = json_object_get(job, "at");
	int64_t delay;
	char *derr = NULL;
	json_t *own = NULL;
	if (json_is_string(at) && duration_parse(json_string_value(at), &delay, &derr) == 0) {
		char when[TIME_RFC3339_LEN];
		own = json_deep_copy(job);
		json_object_set_new(own, "at", json_string(time_format_rfc3339(
		                                   e->clock->now_ms(e->clock->ctx) + delay, when)));
		job = own;
	}
	free(derr);
	/* The same code and messages as a file's job, with the new job in place. */
	if (engine_load(e, id, job, owner >= 0 ? owner : peer->uid, &cfg, errs) < 0) {
		json_decref(own);
		*cause = xasprintf("job \"%s\" was refused (%zu problem%s)", id, errs->n,
		                   errs->n == 1 ? "" : "s");
		return RPC_E_CONFIG_INVALID;
	}
	config_check_socket_job(cfg, config_find_job(cfg, id), peer->uid, peer->admin, errs);
	if (errs->n > 0) {
		json_decref(own);
		config_free(cfg);
		*cause = xasprintf("job \"%s\" was refused (%zu problem%s)", id, errs->n,
		                   errs->n == 1 ? "" : "s");
		return RPC_E_PERMISSION_DENIED;
	}
	char *err = NULL;
	int put = added_put(e->added, id, job, owner >= 0 ? owner : peer->uid, &err);
	json_decref(own);
	if (put < 0) {
		config_free(cfg);
		*cause = xasprintf("cannot save job \"%s\": %s", id, err);
		free(err);
		return RPC_E_INTERNAL;
	}
	engine_apply(e, cfg, &summary);
	json_decref(summary);
	const char *result = owner < 0 ? "added" : if_exists;
	if (owner >= 0 && strcmp(if_exists, "replace") == 0) {
		struct sched_job *j = sched_find(e->sched, id);
		if (j && (rc = sched_job_restart(j, cause)) != 0)
			return rc;
		result = "replaced";
	} else if (owner >= 0) {
		result = "updated";
	}
	log_info("%s: %s over the socket by uid %d", id, result, peer->uid);
	*out = json_pack("{s:s, s:s, s:o}", "job", id, "result", result, "status",
	                 sched_job_json(sched_find(e->sched, id)));
	return 0;
}

int engine_job_remove(struct engine *e, const struct engine_peer *peer, const char *id,
                      json_t **out, char **cause) {
	struct config *cfg;
	struct config_errors errs = {0};
	json_t *summary = NULL;
	char *err = NULL;
	int rc = defined_in_file(e, id, cause);
	if (rc != 0)
		return rc;
	int owner = added_owner(e->added, id);
	if (owner < 0)
		return no_such_job(id, cause);
	if (owner != peer->uid && !peer->admin) {
		*cause = xasprintf("job \"%s\" was added by uid %d: you may remove only your own jobs",
		                   id, owner);
		return RPC_E_PERMISSION_DENIED;
	}
	if (added_remove(e->added, id, &err) < 0) {
		*cause = xasprintf("cannot remove job \"%s\": %s", id, err);
		free(err);
		return RPC_E_INTERNAL;
	}
	if (engine_load(e, NULL, NULL, 0, &cfg, &errs) < 0) {
		/* The files are broken now: the job stays in the running configuration
		 * until a reload succeeds, but it is gone from the store. */
		*cause = xasprintf("job \"%s\" is removed, but the configuration does not load (%s): "
		                   "it runs until a reload succeeds", id, errs.n ? errs.msgs[0] : "?");
		config_errors_clear(&errs);
		return RPC_E_CONFIG_INVALID;
	}
	engine_apply(e, cfg, &summary);
	json_decref(summary);
	log_info("%s: removed over the socket by uid %d", id, peer->uid);
	*out = json_pack("{s:s, s:s}", "job", id, "result", "removed");
	return 0;
}

/* --- the API ----------------------------------------------------------------- */


json_t *engine_jobs_json(struct engine *e) {
	return sched_jobs_json(e->sched);
}

bool engine_has_job(struct engine *e, const char *id) {
	return sched_find(e->sched, id) != NULL;
}

int engine_job_json(struct engine *e, const char *id, json_t **out, char **cause) {
	struct sched_job *j = sched_find(e->sched, id);
	if (j == NULL)
		return no_such_job(id, cause);
	*out = sched_job_json(j);
	return 0;
}

void engine_each_last_run(struct engine *e, void (*fn)(void *arg, const char *id, int64_t ms),
                          void *arg) {
	sched_each_last_run(e->sched, fn, arg);
}

int engine_job_set_enabled(struct engine *e, const char *id, bool enabled, json_t **out,
                           char **cause) {
	struct sched_job *j = sched_find(e->sched, id);
	if (j == NULL)
		return no_such_job(id, cause);
	int rc = sched_job_set_enabled(j, enabled, cause);
	if (rc == 0)
		*out = sched_job_json(j);
	return rc;
}

int engine_job_run(struct engine *e, const char *id, int flags, engine_run_fn fn, void *arg,
                   json_t **out, void **waiter, char **cause) {
	return engine_job_run_with(e, id, flags, NULL, fn, arg, out, waiter, cause);
}

static int job_run(struct engine *e, const char *id, int flags, const json_t *input,
                   const struct run_waiter *wait, json_t **out, void **waiter, char **cause) {
	struct sched_job *j = sched_find(e->sched, id);
	if (j == NULL)
		return no_such_job(id, cause);
	const struct job_def *d = config_find_job(e->cfg->cfg, id);
	const json_t *args = input ? json_object_get(input, "arguments") : NULL;
	const json_t *env = input ? json_object_get(input, "env") : NULL;
	if (d && args && d->kind != ACTION_MCP) {
		*cause = xasprintf("job \"%s\" is a%s %s job: \"arguments\" are for mcp jobs (use "
		                   "\"env\" for exec jobs)", id, d->kind == ACTION_EXEC ? "n" : "",
		                   job_action_kind_name(d->kind));
		return RPC_E_INVALID_PARAMS;
	}
	if (d && env && d->kind != ACTION_EXEC) {
		*cause = xasprintf("job \"%s\" is a%s %s job: \"env\" is for exec jobs", id,
		                   d->kind == ACTION_EXEC ? "n" : "", job_action_kind_name(d->kind));
		return RPC_E_INVALID_PARAMS;
	}
	return sched_job_request_run(j, flags, input, wait, out, waiter, cause);
}

int engine_job_run_with(struct engine *e, const char *id, int flags, const json_t *input,
                        engine_run_fn fn, void *arg, json_t **out, void **waiter, char **cause) {
	struct run_waiter w = {.fn = fn, .arg = arg};
	return job_run(e, id, flags, input, fn ? &w : NULL, out, waiter, cause);
}

int engine_job_run_text(struct engine *e, const char *id, int flags, const json_t *input,
                        engine_run_text_fn fn, void *arg, void **waiter, char **cause) {
	struct run_waiter w = {.text_fn = fn, .arg = arg};
	return job_run(e, id, flags, input, &w, NULL, waiter, cause);
}

void engine_forget_waiter(struct engine *e, void *waiter) {
	(void)e;
	if (waiter)
		((struct run_waiter *)waiter)->dead = true;
}

int engine_job_cancel(struct engine *e, const char *id, json_t **out, char **cause) {
	struct sched_job *j = sched_find(e->sched, id);
	if (j == NULL)
		return no_such_job(id, cause);
	return sched_job_cancel(j, out, cause);
}

struct history_acc {
	json_t *runs;
};

static int history_add(const struct run_record *run, void *arg) {
	struct history_acc *acc = arg;
	json_array_append_new(acc->runs, store_run_to_json(run));
	return 0;
}

int engine_job_history(struct engine *e, const char *id, long long limit, int64_t before_ms,
                       json_t **out, char **cause) {
	char *err = NULL;
	if (sched_find(e->sched, id) == NULL)
		return no_such_job(id, cause);
	struct history_acc acc = {json_array()};
	if (store_history(e->store, id, before_ms, (size_t)limit, history_add, &acc, &err) < 0) {
		json_decref(acc.runs);
		*cause = xasprintf("cannot read the history of %s: %s", id, err);
		free(err);
		return RPC_E_INTERNAL;
	}
	*out = json_pack("{s:s, s:o}", "job", id, "runs", acc.runs);
	return 0;
}

/* --- replies as text (jsontext.h): what the control socket sends most ------ */

void engine_jobs_text(struct engine *e, struct jsontext *t) {
	sched_jobs_text(e->sched, t);
}

int engine_job_text(struct engine *e, const char *id, struct jsontext *t, char **cause) {
	struct sched_job *j = sched_find(e->sched, id);
	if (j == NULL)
		return no_such_job(id, cause);
	sched_job_text(j, t);
	return 0;
}

static int history_add_text(const struct run_record *run, void *arg) {
	store_run_text(run, arg);
	return 0;
}

int engine_job_history_text(struct engine *e, const char *id, long long limit,
                            int64_t before_ms, struct jsontext *t, char **cause) {
	char *err = NULL;
	size_t at = t->len;
	bool comma = t->comma;
	if (sched_find(e->sched, id) == NULL)
		return no_such_job(id, cause);
	jsontext_obj_open(t);
	jsontext_key(t, "job");
	jsontext_str(t, id);
	jsontext_key(t, "runs");
	jsontext_arr_open(t);
	if (store_history(e->store, id, before_ms, (size_t)limit, history_add_text, t, &err) < 0) {
		t->len = at; /* nothing of a reply that failed half way */
		t->buf[at] = '\0';
		t->comma = comma;
		*cause = xasprintf("cannot read the history of %s: %s", id, err);
		free(err);
		return RPC_E_INTERNAL;
	}
	jsontext_arr_close(t);
	jsontext_obj_close(t);
	return 0;
}

json_t *engine_device_json(struct engine *e) {
	struct device_state d;
	platform_get(e->platform, &d);
	return json_pack("{s:s, s:o}", "platform", platform_name(e->platform), "state",
	                 platform_state_to_json(&d));
}

int engine_device_set(struct engine *e, const json_t *params, json_t **out, char **cause) {
	const char *key;
	json_t *v;
	if (!platform_can_set(e->platform)) {
		*cause = xasprintf("the device state cannot be set on the \"%s\" platform (start "
		                   "mcpjobd with --platform sim)", platform_name(e->platform));
		return RPC_E_NOT_SUPPORTED;
	}
	if (params == NULL || json_object_size(params) == 0) {
		*cause = xstrdup("device.set needs at least one of network, charging, battery_low, "
		                 "idle, storage_low");
		return RPC_E_INVALID_PARAMS;
	}
	json_object_foreach((json_t *)params, key, v) {
		char buf[32];
		const char *val = json_is_string(v) ? json_string_value(v)
		                  : json_is_boolean(v) ? (json_is_true(v) ? "true" : "false")
		                  : json_is_null(v)    ? "unknown"
		                                       : NULL;
		if (val == NULL) {
			*cause = xasprintf("param \"%s\" must be a string or a boolean", key);
			return RPC_E_INVALID_PARAMS;
		}
		snprintf(buf, sizeof buf, "%s", val);
		if (platform_set(e->platform, key, buf, cause) < 0)
			return RPC_E_INVALID_PARAMS;
	}
	*out = engine_device_json(e);
	return 0;
}

/* --- run what is due within a budget (mobile hooks, --run-due) ------------- */

static void engine_budget_expired(void *arg) {
	struct engine *e = arg;
	log_notice("the time budget ran out; stopping what still runs");
	engine_stop(e, "the time budget for background work ran out", e->stop_done, e->stop_arg);
}

int64_t engine_next_due(struct engine *e) {
	return sched_next_due(e->sched);
}

uint64_t engine_runs_started(struct engine *e) {
	return sched_runs_started(e->sched);
}

void engine_run_due(struct engine *e, int64_t budget_ms, void (*done)(void *), void *arg) {
	sched_run_due(e->sched);
	e->stop_done = done;
	e->stop_arg = arg;
	if (e->budget == NULL)
		e->budget = e->clock->timer_new(e->clock->ctx, e->base, false, engine_budget_expired, e);
	if (e->budget)
		e->clock->timer_set(e->budget, e->clock->now_ms(e->clock->ctx) + budget_ms);
	sched_when_idle(e->sched, engine_idle, e);
}

void engine_flush(struct engine *e) {
	store_flush(e->store);
}
