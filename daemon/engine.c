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

#include "common/log.h"
#include "common/protocol.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/mcp.h"
#include "daemon/run.h"
#include "daemon/sched.h"
#include "daemon/store.h"
#include "platform/platform.h"

struct engine {
	struct event_base *base;
	const struct engine_clock *clock;
	char *config_path;
	struct config_load_opts load_opts; /* from engine_opts, for every (re)load */
	struct sched_cfg *cfg;
	struct store *store;
	struct platform *platform;
	struct mcp_pool *mcp;
	struct events *events;
	struct sched *sched;
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

/* --- open / close ----------------------------------------------------------- */

int engine_open(const struct engine_opts *opts, struct engine **out, struct config_errors *errs,
                char **cause) {
	struct config *cfg;
	struct config_load_opts lo = {.identity = opts->identity_mode};
	if (config_load_with(opts->config_path, &lo, &cfg, errs) < 0) {
		*cause = xasprintf("cannot load the configuration %s", opts->config_path);
		return -1;
	}
	struct engine *e = xcalloc(1, sizeof *e);
	e->load_opts = lo;
	e->base = opts->base;
	e->clock = opts->clock ? opts->clock : engine_clock_real();
	e->config_path = xstrdup(opts->config_path);
	e->cfg = sched_cfg_new(cfg);
	e->events = events_new();
	if (store_open(opts->state_dir, &e->store, cause) < 0)
		goto fail;
	int n = store_recover_interrupted(e->store, e->clock->now_ms(e->clock->ctx), NULL, NULL,
	                                  cause);
	if (n < 0)
		goto fail;
	if (n > 0)
		log_notice("%d run%s interrupted when mcpjobd last stopped; recorded as interrupted",
		           n, n == 1 ? " was" : "s were");
	struct platform_args pa = {.name = opts->platform, .base = e->base, .settings = &cfg->device,
	                           .state_dir = opts->state_dir, .fn = engine_on_device, .arg = e,
	                           .no_system_bus = opts->no_system_bus};
	e->platform = platform_open(&pa, cause);
	if (e->platform == NULL)
		goto fail;
	e->mcp = mcp_pool_new(e->base, cfg);
	struct sched_env env = {.base = e->base, .clock = e->clock, .store = e->store,
	                        .platform = e->platform, .events = e->events, .mcp = e->mcp,
	                        .kill_grace_ms = opts->kill_grace_ms};
	e->sched = sched_new(&env, e->cfg, cause);
	if (e->sched == NULL)
		goto fail;
	/* The parse tree of a big configuration is gone: give its pages back. */
	malloc_trim(0);
	*out = e;
	return 0;
fail:
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

void engine_free(struct engine *e) {
	if (e == NULL)
		return;
	sched_free(e->sched);
	e->clock->timer_free(e->budget);
	if (e->mcp)
		mcp_pool_free(e->mcp);
	platform_close(e->platform);
	store_close(e->store);
	events_free(e->events);
	sched_cfg_put(e->cfg);
	free(e->config_path);
	free(e);
}

struct events *engine_events(struct engine *e) {
	return e->events;
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

int engine_reload(struct engine *e, json_t **summary, struct config_errors *errs) {
	struct config *cfg;
	if (config_load_with(e->config_path, &e->load_opts, &cfg, errs) < 0)
		return RPC_E_CONFIG_INVALID;
	json_t *added = json_array(), *removed = json_array(), *changed = json_array();
	struct sched_cfg *c = sched_cfg_new(cfg);
	sched_reload(e->sched, c, added, removed, changed);
	mcp_pool_set_config(e->mcp, cfg);
	platform_set_settings(e->platform, &cfg->device);
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
	return 0;
}

/* --- the API ----------------------------------------------------------------- */

static int no_such_job(const char *id, char **cause) {
	*cause = xasprintf("no such job \"%s\" (mcpjobctl list shows the jobs)", id);
	return RPC_E_NO_SUCH_JOB;
}

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
	struct sched_job *j = sched_find(e->sched, id);
	if (j == NULL)
		return no_such_job(id, cause);
	return sched_job_request_run(j, flags, fn, arg, out, waiter, cause);
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
