/*
 * embed.c - the embedding API (mcpjob.h): the engine driven by an app's
 * job screen and the OS's background hooks.
 *
 * Each engine owns an event loop, dispatched only inside
 * mcpjob_engine_run_due(). mcpjob_engine_expire() writes to an eventfd the
 * loop watches, which is the only thing done from another thread.
 *
 * Handles index a table of slots; a handle carries its slot's generation,
 * which close bumps, so a stale handle finds a different generation and is
 * refused. The table's mutex guards the slots and the reference counts; an
 * engine is freed by whoever drops the last reference (close, or an
 * expire() that was running at the same time). Per engine, "who is inside"
 * (owner thread and depth) makes a call from a second thread MCPJOB_E_BUSY
 * instead of a race, while a callback may still call back in on its own
 * thread.
 *
 * Log lines reach the host through a log sink that this file installs on
 * the calling thread for the duration of each call (common/log.h): nothing
 * process-wide is set, and two engines in one process log apart.
 */
#include "daemon/embed.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/events.h"
#include "daemon/spawn.h"

#ifndef MCPJOB_NO_SPAWN
#define MCPJOB_NO_SPAWN 0
#endif

#define EMBED_BUDGET_REASON "the time budget for background work ran out"
#define EMBED_EXPIRE_REASON "the time budget for background work ran out (expired)"
#define EMBED_CLOSE_REASON  "the app closed the engine"
#define EMBED_EARLY_LOGS    32 /* log lines kept from open() for the log callback */
#define EMBED_CONFIG_LABEL  "config"
#define EMBED_PASS_FOREVER  (30LL * 24 * 3600 * 1000) /* the budget is ours, not the engine's */

struct early_log {
	int level;
	char *job;
	char *msg;
};

struct box {
	/* guarded by the table's mutex */
	unsigned refs;
	bool closed;
	/* guarded by lock */
	pthread_mutex_t lock;
	pthread_t owner;
	unsigned depth;
	/* the engine's thread only */
	struct event_base *base;
	struct engine *engine;
	struct events_sub *sub;
	int expire_fd;
	struct event *expire_ev;
	struct event *budget_ev;
	bool pass_active;       /* engine_run_due()/engine_stop() has not called back yet */
	bool dispatching;
	bool stopping;          /* the budget ran out or expire() came: no new runs */
	unsigned manual_running; /* runs started by mcpjob_job_run() not yet finished */
	bool queued;            /* a run asked for in this run_due waits as pending */
	char **deferred;        /* mcpjob_job_run() requests for the next run_due */
	int *deferred_flags;
	size_t ndeferred;
	mcpjob_event_fn event_fn;
	void *event_user;
	mcpjob_log_fn log_fn;
	void *log_user;
	int log_max;
	struct log_sink sink;
	struct early_log early[EMBED_EARLY_LOGS];
	size_t nearly;
	char *json_config; /* the file written for mcpjob_engine_open_json(), or NULL */
};

struct slot {
	uint32_t gen;
	struct box *box;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static size_t nslots;

/* --- errors ---------------------------------------------------------------- */

static void set_error(char **error, char *msg) {
	if (error)
		*error = msg;
	else
		free(msg);
}

static int fail(char **error, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char **error, int rc, const char *fmt, ...) {
	va_list ap;
	char *msg;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	set_error(error, msg ? msg : xstrdup("out of memory"));
	return rc;
}

/* Replace every @from in @s by @to; takes ownership of @s. */
static char *replace_all(char *s, const char *from, const char *to) {
	char *at;
	size_t flen = strlen(from);
	while ((at = strstr(s, from)) != NULL) {
		char *n = xasprintf("%.*s%s%s", (int)(at - s), s, to, at + flen);
		free(s);
		s = n;
	}
	return s;
}

/*
 * The engine's sentences are written for mcpjobd's command line; inside an
 * app the state directory and the configuration are arguments, not flags.
 */
static char *host_words(char *s, const struct box *b) {
	s = replace_all(s, "another --state-dir", "another state directory");
	s = replace_all(s, " or name another with --config", " or pass another path");
	s = replace_all(s, "mcpjobd is stopping", "the engine is stopping");
	if (b && b->json_config)
		s = replace_all(s, b->json_config, EMBED_CONFIG_LABEL);
	return s;
}

static int rc_of(int rpc) {
	switch (rpc) {
	case 0: return MCPJOB_OK;
	case RPC_E_NO_SUCH_JOB: return MCPJOB_E_NO_SUCH_JOB;
	case RPC_E_ALREADY_RUNNING: return MCPJOB_E_ALREADY_RUNNING;
	case RPC_E_NOT_RUNNING: return MCPJOB_E_NOT_RUNNING;
	case RPC_E_INVALID_PARAMS: return MCPJOB_E_ARG;
	case RPC_E_CONFIG_INVALID: return MCPJOB_E_CONFIG;
	default: return MCPJOB_E_FAILED;
	}
}

/* An engine call's result: 0 with *@json set (or dropped), else the mapped error. */
static int engine_result(struct box *b, int rpc, json_t *out, char *cause, char **json,
                         char **error) {
	if (rpc != 0) {
		json_decref(out);
		set_error(error, host_words(cause ? cause : xstrdup("the engine refused"), b));
		return rc_of(rpc);
	}
	free(cause);
	if (json)
		*json = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	return MCPJOB_OK;
}

/* --- handles ---------------------------------------------------------------- */

static mcpjob_t handle_add(struct box *b) {
	pthread_mutex_lock(&table_lock);
	size_t i;
	for (i = 0; i < nslots && slots[i].box != NULL; i++)
		;
	if (i == nslots) {
		slots = xreallocarray(slots, nslots + 1, sizeof *slots);
		slots[nslots++] = (struct slot){0, NULL};
	}
	if (++slots[i].gen == 0)
		slots[i].gen = 1;
	slots[i].box = b;
	b->refs = 1; /* the table's */
	mcpjob_t h = ((uint64_t)slots[i].gen << 32) | (uint64_t)(i + 1);
	pthread_mutex_unlock(&table_lock);
	return h;
}

/* The slot of @h under table_lock, or NULL. */
static struct slot *slot_of(mcpjob_t h) {
	uint64_t i = h & 0xffffffffu;
	uint32_t gen = (uint32_t)(h >> 32);
	if (i == 0 || i > nslots || slots[i - 1].box == NULL || slots[i - 1].gen != gen)
		return NULL;
	return &slots[i - 1];
}

static struct box *box_get(mcpjob_t h) {
	pthread_mutex_lock(&table_lock);
	struct slot *s = slot_of(h);
	struct box *b = s ? s->box : NULL;
	if (b)
		b->refs++;
	pthread_mutex_unlock(&table_lock);
	return b;
}

static void box_free(struct box *b);

static void box_put(struct box *b) {
	pthread_mutex_lock(&table_lock);
	bool last = --b->refs == 0;
	pthread_mutex_unlock(&table_lock);
	if (last)
		box_free(b);
}

/* Enter @b on this thread: NULL sink swap done by the caller. */
static int box_enter(struct box *b, char **error) {
	pthread_mutex_lock(&b->lock);
	if (b->depth > 0 && !pthread_equal(b->owner, pthread_self())) {
		pthread_mutex_unlock(&b->lock);
		return fail(error, MCPJOB_E_BUSY, "the engine is busy on another thread (in "
		            "mcpjob_engine_run_due?): one thread at a time may use an engine, "
		            "except mcpjob_engine_expire()");
	}
	b->owner = pthread_self();
	b->depth++;
	pthread_mutex_unlock(&b->lock);
	return MCPJOB_OK;
}

static void box_leave(struct box *b) {
	pthread_mutex_lock(&b->lock);
	b->depth--;
	pthread_mutex_unlock(&b->lock);
}

/*
 * A write to a pipe whose reader died (an MCP server that crashed) raises
 * SIGPIPE. The host owns the signal dispositions (the JVM checks its own),
 * so instead of ignoring SIGPIPE process-wide, each call blocks it on the
 * calling thread and takes a SIGPIPE it caused before unblocking it
 * (write() then fails with EPIPE, which the engine handles).
 */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g) {
	sigset_t pipe_set, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
}

static void sigpipe_unblock(struct sigpipe_guard *g) {
	sigset_t pipe_set, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
		const struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* What every call does first: find the engine, enter it, route its logs. */
struct call {
	struct box *b;
	const struct log_sink *old_sink;
	struct sigpipe_guard pipe;
};

static int call_begin(struct call *c, mcpjob_t h, char **error) {
	c->b = box_get(h);
	if (c->b == NULL)
		return fail(error, MCPJOB_E_HANDLE, "engine handle %#llx is not open (never opened, "
		            "or closed already)", (unsigned long long)h);
	int rc = box_enter(c->b, error);
	if (rc != MCPJOB_OK) {
		box_put(c->b);
		return rc;
	}
	c->old_sink = log_sink_set(&c->b->sink);
	sigpipe_block(&c->pipe);
	return MCPJOB_OK;
}

static void call_end(struct call *c) {
	sigpipe_unblock(&c->pipe);
	log_sink_set(c->old_sink);
	box_leave(c->b);
	box_put(c->b);
}

/* --- log and event delivery -------------------------------------------------- */

static void on_log(void *arg, enum log_level level, const struct log_ctx *ctx, const char *msg) {
	struct box *b = arg;
	const char *job = ctx ? ctx->job_id : NULL;
	if (b->log_fn == NULL) {
		if (b->engine == NULL && b->nearly < EMBED_EARLY_LOGS) { /* still opening */
			b->early[b->nearly++] = (struct early_log){(int)level, xstrdup_or_null(job),
			                                           xstrdup(msg)};
			return;
		}
		if (level != LOG_LEVEL_DEBUG)
			fprintf(stderr, "mcpjob: %s%s%s\n", job ? job : "", job ? ": " : "", msg);
		return;
	}
	if ((int)level <= b->log_max)
		b->log_fn(b->log_user, (int)level, job, msg);
}

static void on_event(void *arg, const json_t *msg) {
	struct box *b = arg;
	json_t *params = json_object_get(msg, "params");
	const char *type = json_string_value(json_object_get(params, "type"));
	if (b->event_fn == NULL || type == NULL)
		return;
	char *text = json_dumps(params, JSON_COMPACT);
	b->event_fn(b->event_user, type, json_string_value(json_object_get(params, "job")), text);
	free(text);
}

/* --- the loop --------------------------------------------------------------- */

static void maybe_exit_loop(struct box *b) {
	if (b->dispatching && !b->pass_active && b->manual_running == 0)
		event_base_loopexit(b->base, NULL);
}

static void on_pass_done(void *arg) {
	struct box *b = arg;
	b->pass_active = false;
	maybe_exit_loop(b);
}

/* Stop what runs with @reason; the loop ends once none does. */
static void box_stop(struct box *b, const char *reason) {
	if (b->stopping)
		return;
	b->stopping = true;
	if (b->budget_ev)
		evtimer_del(b->budget_ev);
	b->pass_active = true;
	engine_stop(b->engine, reason, on_pass_done, b);
}

static void on_expire(evutil_socket_t fd, short what, void *arg) {
	struct box *b = arg;
	uint64_t v;
	(void)what;
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		return;
	if (b->dispatching) { /* else drained at the end of run_due, or taken by the next */
		log_notice("expired by the host: stopping what still runs");
		box_stop(b, EMBED_EXPIRE_REASON);
	}
}

static void on_budget(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	log_notice("the time budget ran out; stopping what still runs");
	box_stop(arg, EMBED_BUDGET_REASON);
}

struct manual {
	struct box *b;
	bool counted;
};

static void on_manual_done(void *arg, const json_t *run) {
	struct manual *mr = arg;
	(void)run;
	if (mr->counted && mr->b->manual_running > 0) {
		mr->b->manual_running--;
		maybe_exit_loop(mr->b);
	}
	free(mr);
}

/* engine_job_run() with a waiter that run_due counts. */
static int start_manual(struct box *b, const char *job, int flags, json_t **out, char **cause) {
	struct manual *mr = xcalloc(1, sizeof *mr);
	mr->b = b;
	int ef = flags & MCPJOB_RUN_WHEN_ALLOWED ? ENGINE_RUN_WHEN_ALLOWED : 0;
	int rc = engine_job_run(b->engine, job, ef, on_manual_done, mr, out, NULL, cause);
	if (rc != 0) {
		free(mr);
		return rc;
	}
	if (!json_is_true(json_object_get(*out, "queued"))) {
		mr->counted = true;
		b->manual_running++;
	} else {
		b->queued = true;
	}
	return 0;
}

/* --- open / close ------------------------------------------------------------ */

static void box_free(struct box *b) {
	const struct log_sink *old = log_sink_set(&b->sink);
	struct sigpipe_guard pipe;
	sigpipe_block(&pipe);
	if (b->engine) {
		if (b->sub)
			events_unsubscribe(engine_events(b->engine), b->sub);
		engine_free(b->engine);
	}
	sigpipe_unblock(&pipe);
	log_sink_set(old);
	if (b->budget_ev)
		event_free(b->budget_ev);
	if (b->expire_ev)
		event_free(b->expire_ev);
	if (b->expire_fd >= 0)
		close(b->expire_fd);
	if (b->base)
		event_base_free(b->base);
	for (size_t i = 0; i < b->ndeferred; i++)
		free(b->deferred[i]);
	free(b->deferred);
	free(b->deferred_flags);
	for (size_t i = 0; i < b->nearly; i++) {
		free(b->early[i].job);
		free(b->early[i].msg);
	}
	free(b->json_config);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static int make_dir(const char *dir, char **error) {
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return MCPJOB_OK;
	return fail(error, MCPJOB_E_FAILED, "cannot create the state directory %s: %s (pass a "
	            "directory the app may write, e.g. its private files directory)", dir,
	            strerror(errno));
}

static int open_config(struct box *b, const char *config_path, const char *state_dir,
                       char **error) {
	struct config_errors errs = {0};
	char *cause = NULL;
	b->base = event_base_new();
	if (b->base == NULL)
		return fail(error, MCPJOB_E_FAILED, "cannot create an event loop (libevent)");
	/* Children are reaped each by its own pidfd: the host app's are never touched. */
	struct engine_opts eo = {.config_path = config_path, .state_dir = state_dir,
	                         .platform = "sim", .base = b->base};
	if (engine_open(&eo, &b->engine, &errs, &cause) < 0) {
		int rc = errs.n ? MCPJOB_E_CONFIG : MCPJOB_E_FAILED;
		char *msg = errs.n ? config_errors_join(&errs) : cause;
		if (errs.n)
			free(cause);
		b->engine = NULL;
		config_errors_clear(&errs);
		set_error(error, host_words(msg ? msg : xstrdup("cannot open the engine"), b));
		return rc;
	}
	b->sub = events_subscribe(engine_events(b->engine), NULL, on_event, b);
	b->expire_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->expire_fd < 0)
		return fail(error, MCPJOB_E_FAILED, "cannot create the expiration eventfd: %s",
		            strerror(errno));
	b->expire_ev = event_new(b->base, b->expire_fd, EV_READ | EV_PERSIST, on_expire, b);
	b->budget_ev = evtimer_new(b->base, on_budget, b);
	event_add(b->expire_ev, NULL);
	return MCPJOB_OK;
}

/* Write @json where the engine can load it: a private folder of the state dir. */
static int write_json_config(struct box *b, const char *json, const char *state_dir,
                             char **error) {
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return fail(error, MCPJOB_E_CONFIG, EMBED_CONFIG_LABEL ":%d:%d: %s", jerr.line,
		            jerr.column, jerr.text);
	json_decref(root);
	char *dir = xasprintf("%s/.config", state_dir);
	int rc = make_dir(dir, error);
	b->json_config = xasprintf("%s/mcpjobd.json", dir);
	char *tmp = xasprintf("%s.tmp", b->json_config);
	free(dir);
	FILE *f = rc == MCPJOB_OK ? fopen(tmp, "w") : NULL;
	if (rc == MCPJOB_OK && f == NULL)
		rc = fail(error, MCPJOB_E_FAILED, "cannot write %s: %s", tmp, strerror(errno));
	if (f) {
		bool ok = fputs(json, f) >= 0;
		ok = fclose(f) == 0 && ok;
		if (!ok || rename(tmp, b->json_config) < 0)
			rc = fail(error, MCPJOB_E_FAILED, "cannot write %s: %s", b->json_config,
			          strerror(errno));
	}
	free(tmp);
	return rc;
}

static int open_common(const char *config_path, const char *config_json, const char *state_dir,
                       mcpjob_t *out, char **error) {
	if (out)
		*out = 0;
	if ((config_path == NULL && config_json == NULL) || state_dir == NULL || out == NULL)
		return fail(error, MCPJOB_E_ARG, "open needs a configuration, a state directory and "
		            "a place for the handle");
	struct box *b = xcalloc(1, sizeof *b);
	pthread_mutex_init(&b->lock, NULL);
	b->expire_fd = -1;
	b->sink = (struct log_sink){on_log, b};
	b->log_max = MCPJOB_LOG_INFO;
	const struct log_sink *old = log_sink_set(&b->sink);
	struct sigpipe_guard pipe;
	sigpipe_block(&pipe);
	int rc = make_dir(state_dir, error);
	if (rc == MCPJOB_OK && config_json)
		rc = write_json_config(b, config_json, state_dir, error);
	if (rc == MCPJOB_OK && config_path && access(config_path, R_OK) < 0)
		rc = fail(error, errno == ENOENT ? MCPJOB_E_CONFIG : MCPJOB_E_FAILED,
		          "%s: %s: pass the path of a configuration (see mcpjobd.json(5)) or open "
		          "from a JSON string", config_path, strerror(errno));
	if (rc == MCPJOB_OK)
		rc = open_config(b, config_json ? b->json_config : config_path, state_dir, error);
	sigpipe_unblock(&pipe);
	log_sink_set(old);
	if (rc != MCPJOB_OK) {
		box_free(b);
		return rc;
	}
	*out = handle_add(b);
	return MCPJOB_OK;
}

int mcpjob_engine_open(const char *config_path, const char *state_dir, mcpjob_t *out,
                       char **error) {
	if (config_path == NULL)
		return fail(error, MCPJOB_E_ARG, "mcpjob_engine_open needs a configuration path");
	return open_common(config_path, NULL, state_dir, out, error);
}

int mcpjob_engine_open_json(const char *config_json, const char *state_dir, mcpjob_t *out,
                            char **error) {
	if (config_json == NULL)
		return fail(error, MCPJOB_E_ARG, "mcpjob_engine_open_json needs a configuration");
	return open_common(NULL, config_json, state_dir, out, error);
}

/* Run the loop until what runs has stopped (for close). */
static void drain(struct box *b) {
	b->stopping = false;
	box_stop(b, EMBED_CLOSE_REASON);
	if (b->pass_active || b->manual_running) {
		b->dispatching = true;
		event_base_dispatch(b->base);
		b->dispatching = false;
	}
}

int mcpjob_engine_close(mcpjob_t h) {
	struct call c;
	int rc = call_begin(&c, h, NULL);
	if (rc != MCPJOB_OK)
		return rc;
	if (c.b->depth > 1) {
		call_end(&c);
		return MCPJOB_E_BUSY; /* from one of its own callbacks */
	}
	drain(c.b);
	pthread_mutex_lock(&table_lock);
	struct slot *s = slot_of(h);
	bool mine = s != NULL && !c.b->closed;
	if (mine) {
		s->box = NULL; /* the generation stays: the next open bumps it */
		c.b->closed = true;
	}
	pthread_mutex_unlock(&table_lock);
	call_end(&c);
	if (mine)
		box_put(c.b); /* the table's reference */
	return mine ? MCPJOB_OK : MCPJOB_E_HANDLE;
}

/* --- callbacks -------------------------------------------------------------- */

int mcpjob_engine_set_event_callback(mcpjob_t h, mcpjob_event_fn fn, void *user) {
	struct call c;
	int rc = call_begin(&c, h, NULL);
	if (rc != MCPJOB_OK)
		return rc;
	c.b->event_fn = fn;
	c.b->event_user = user;
	call_end(&c);
	return MCPJOB_OK;
}

int mcpjob_engine_set_log_callback(mcpjob_t h, mcpjob_log_fn fn, void *user, int max_level) {
	struct call c;
	int rc = call_begin(&c, h, NULL);
	if (rc != MCPJOB_OK)
		return rc;
	struct box *b = c.b;
	b->log_fn = fn;
	b->log_user = user;
	b->log_max = max_level;
	for (size_t i = 0; fn && i < b->nearly; i++)
		if (b->early[i].level <= max_level)
			fn(user, b->early[i].level, b->early[i].job, b->early[i].msg);
	for (size_t i = 0; fn && i < b->nearly; i++) {
		free(b->early[i].job);
		free(b->early[i].msg);
	}
	if (fn)
		b->nearly = 0;
	call_end(&c);
	return MCPJOB_OK;
}

/* --- the background hook ------------------------------------------------------ */

static void start_deferred(struct box *b) {
	for (size_t i = 0; i < b->ndeferred; i++) {
		json_t *out = NULL;
		char *cause = NULL;
		if (start_manual(b, b->deferred[i], b->deferred_flags[i], &out, &cause) != 0)
			log_warning("the run of %s asked for earlier cannot start: %s", b->deferred[i],
			            cause);
		json_decref(out);
		free(cause);
		free(b->deferred[i]);
	}
	b->ndeferred = 0;
}

/* Was the newest run of @id cut off by the host (budget, expire, close)? */
static bool was_cut_off(struct box *b, const char *id) {
	json_t *out = NULL;
	char *cause = NULL;
	bool cut = false;
	if (engine_job_history(b->engine, id, 1, 0, &out, &cause) == 0) {
		json_t *run = json_array_get(json_object_get(out, "runs"), 0);
		const char *o = json_string_value(json_object_get(run, "outcome"));
		const char *msg = json_string_value(json_object_get(run, "message"));
		cut = o && msg && strcmp(o, "cancelled") == 0 &&
		      (strncmp(msg, EMBED_BUDGET_REASON, strlen(EMBED_BUDGET_REASON)) == 0 ||
		       strcmp(msg, EMBED_CLOSE_REASON) == 0);
	}
	json_decref(out);
	free(cause);
	return cut;
}

/*
 * A run the host cut off ran out of the OS's time, not of work to do: the
 * next pass runs it once more (constraints permitting), as a missed run is
 * caught up once. Read from the store, so it holds across a new process.
 * It starts as "Run now" does: the OS applied its constraints before it
 * woke us (a queued run that waits for them would outlive the pass).
 */
static void start_catch_up(struct box *b) {
	json_t *list = engine_jobs_json(b->engine), *job;
	size_t i;
	json_array_foreach(json_object_get(list, "jobs"), i, job) {
		const char *id = json_string_value(json_object_get(job, "id"));
		if (id == NULL || !json_is_true(json_object_get(job, "enabled")) ||
		    !json_is_null(json_object_get(job, "run_id")) || !was_cut_off(b, id))
			continue;
		json_t *out = NULL;
		char *cause = NULL;
		log_info("%s: its last run was cut off by the host; running it again", id);
		if (start_manual(b, id, 0, &out, &cause) != 0)
			log_debug("%s: no catch-up: %s", id, cause);
		json_decref(out);
		free(cause);
	}
	json_decref(list);
}

int mcpjob_engine_run_due(mcpjob_t h, int64_t budget_ms, char **error) {
	struct call c;
	int rc = call_begin(&c, h, error);
	if (rc != MCPJOB_OK)
		return rc;
	struct box *b = c.b;
	if (b->depth > 1 || b->dispatching) {
		call_end(&c);
		return fail(error, MCPJOB_E_BUSY, "mcpjob_engine_run_due is already running on this "
		            "thread (called from a callback?)");
	}
	if (budget_ms < 0) {
		call_end(&c);
		return fail(error, MCPJOB_E_ARG, "the budget must not be negative");
	}
	uint64_t before = engine_runs_started(b->engine);
	b->stopping = false;
	b->pass_active = true;
	engine_run_due(b->engine, EMBED_PASS_FOREVER, on_pass_done, b);
	b->queued = false;
	start_deferred(b);
	start_catch_up(b);
	if (b->queued) {
		/* Runs asked for now wait as pending until a pass starts them (nothing
		 * starts outside the OS's budget): one more pass, with nothing newly due. */
		b->pass_active = true;
		engine_run_due(b->engine, EMBED_PASS_FOREVER, on_pass_done, b);
	}
	struct timeval tv = {(time_t)(budget_ms / 1000), (suseconds_t)(budget_ms % 1000) * 1000};
	evtimer_add(b->budget_ev, &tv);
	/* Only while dispatching may a callback ask the loop to exit: a loopexit
	 * asked outside it would end the next pass at once. */
	if (b->pass_active || b->manual_running) {
		b->dispatching = true;
		event_base_dispatch(b->base);
		b->dispatching = false;
	}
	evtimer_del(b->budget_ev);
	/* An expire() that came while this pass ended is consumed with it. */
	uint64_t v;
	if (read(b->expire_fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_debug("draining the expiration eventfd: %s", strerror(errno));
	int n = (int)(engine_runs_started(b->engine) - before);
	call_end(&c);
	return n;
}

int mcpjob_engine_expire(mcpjob_t h) {
	struct box *b = box_get(h);
	if (b == NULL)
		return MCPJOB_E_HANDLE;
	uint64_t one = 1;
	ssize_t w = write(b->expire_fd, &one, sizeof one);
	box_put(b);
	return w == (ssize_t)sizeof one ? MCPJOB_OK : MCPJOB_E_FAILED;
}

int mcpjob_engine_next_due(mcpjob_t h, int64_t *due_ms, char **error) {
	struct call c;
	if (due_ms == NULL)
		return fail(error, MCPJOB_E_ARG, "mcpjob_engine_next_due needs a place for the time");
	int rc = call_begin(&c, h, error);
	if (rc != MCPJOB_OK)
		return rc;
	*due_ms = engine_next_due(c.b->engine);
	call_end(&c);
	return MCPJOB_OK;
}

int mcpjob_engine_set_device(mcpjob_t h, const char *key, const char *value, char **error) {
	struct call c;
	if (key == NULL || value == NULL)
		return fail(error, MCPJOB_E_ARG, "set_device needs a key and a value");
	int rc = call_begin(&c, h, error);
	if (rc != MCPJOB_OK)
		return rc;
	json_t *params = json_pack("{s:s}", key, value), *out = NULL;
	char *cause = NULL;
	int rpc = engine_device_set(c.b->engine, params, &out, &cause);
	json_decref(params);
	rc = engine_result(c.b, rpc, out, cause, NULL, error);
	call_end(&c);
	return rc;
}

int mcpjob_engine_device(mcpjob_t h, char **json, char **error) {
	struct call c;
	if (json == NULL)
		return fail(error, MCPJOB_E_ARG, "mcpjob_engine_device needs a place for the JSON");
	int rc = call_begin(&c, h, error);
	if (rc != MCPJOB_OK)
		return rc;
	rc = engine_result(c.b, 0, engine_device_json(c.b->engine), NULL, json, error);
	call_end(&c);
	return rc;
}

/* --- the job screen ---------------------------------------------------------- */

int mcpjob_jobs_list(mcpjob_t h, char **json, char **error) {
	struct call c;
	if (json == NULL)
		return fail(error, MCPJOB_E_ARG, "mcpjob_jobs_list needs a place for the JSON");
	int rc = call_begin(&c, h, error);
	if (rc != MCPJOB_OK)
		return rc;
	rc = engine_result(c.b, 0, engine_jobs_json(c.b->engine), NULL, json, error);
	call_end(&c);
	return rc;
}

/* The shape of every per-job call: check, enter, call, map the result. */
typedef int (*job_call_fn)(struct box *b, const char *job, const void *arg, json_t **out,
                           char **cause);

static int job_call(mcpjob_t h, const char *job, job_call_fn fn, const void *arg, char **json,
                    char **error) {
	struct call c;
	if (job == NULL)
		return fail(error, MCPJOB_E_ARG, "no job id given");
	int rc = call_begin(&c, h, error);
	if (rc != MCPJOB_OK)
		return rc;
	json_t *out = NULL;
	char *cause = NULL;
	int rpc = fn(c.b, job, arg, &out, &cause);
	rc = engine_result(c.b, rpc, out, cause, json, error);
	call_end(&c);
	return rc;
}

static int do_status(struct box *b, const char *job, const void *arg, json_t **out,
                     char **cause) {
	(void)arg;
	return engine_job_json(b->engine, job, out, cause);
}

int mcpjob_job_status(mcpjob_t h, const char *job, char **json, char **error) {
	if (json == NULL)
		return fail(error, MCPJOB_E_ARG, "mcpjob_job_status needs a place for the JSON");
	return job_call(h, job, do_status, NULL, json, error);
}

struct history_args {
	int limit;
	int64_t before_ms;
};

static int do_history(struct box *b, const char *job, const void *arg, json_t **out,
                      char **cause) {
	const struct history_args *a = arg;
	return engine_job_history(b->engine, job, a->limit, a->before_ms, out, cause);
}

int mcpjob_job_history(mcpjob_t h, const char *job, int limit, int64_t before_ms, char **json,
                       char **error) {
	struct history_args a = {limit, before_ms};
	if (json == NULL)
		return fail(error, MCPJOB_E_ARG, "mcpjob_job_history needs a place for the JSON");
	if (limit < 1 || limit > 1000 || before_ms < 0)
		return fail(error, MCPJOB_E_ARG, "history: limit must be between 1 and 1000 and "
		            "before_ms not negative (0: now)");
	return job_call(h, job, do_history, &a, json, error);
}

static int do_enable(struct box *b, const char *job, const void *arg, json_t **out,
                     char **cause) {
	return engine_job_set_enabled(b->engine, job, *(const bool *)arg, out, cause);
}

int mcpjob_job_enable(mcpjob_t h, const char *job, char **json, char **error) {
	bool on = true;
	return job_call(h, job, do_enable, &on, json, error);
}

int mcpjob_job_disable(mcpjob_t h, const char *job, char **json, char **error) {
	bool on = false;
	return job_call(h, job, do_enable, &on, json, error);
}

static int do_run(struct box *b, const char *job, const void *arg, json_t **out, char **cause) {
	int flags = *(const int *)arg;
	int rc = b->stopping ? RPC_E_SHUTTING_DOWN : start_manual(b, job, flags, out, cause);
	if (rc != RPC_E_SHUTTING_DOWN)
		return rc;
	/* The last pass was cut off: the engine takes runs again at the next run_due. */
	free(*cause);
	*cause = NULL;
	json_decref(*out);
	json_t *st = NULL;
	if ((rc = engine_job_json(b->engine, job, &st, cause)) != 0)
		return rc;
	json_decref(st);
	for (size_t i = 0; i < b->ndeferred; i++) {
		if (strcmp(b->deferred[i], job) == 0) {
			*cause = xasprintf("a run of job \"%s\" is already queued for the next run_due",
			                   job);
			return RPC_E_ALREADY_RUNNING;
		}
	}
	b->deferred = xreallocarray(b->deferred, b->ndeferred + 1, sizeof *b->deferred);
	b->deferred_flags = xreallocarray(b->deferred_flags, b->ndeferred + 1,
	                                  sizeof *b->deferred_flags);
	b->deferred_flags[b->ndeferred] = flags;
	b->deferred[b->ndeferred++] = xstrdup(job);
	*out = json_pack("{s:s, s:n, s:b, s:s}", "job", job, "run_id", "queued", 1, "reason",
	                 "starts at the next run_due");
	return 0;
}

int mcpjob_job_run(mcpjob_t h, const char *job, int flags, char **json, char **error) {
	if (flags & ~MCPJOB_RUN_WHEN_ALLOWED)
		return fail(error, MCPJOB_E_ARG, "unknown flags %#x for mcpjob_job_run", flags);
	return job_call(h, job, do_run, &flags, json, error);
}

static int do_cancel(struct box *b, const char *job, const void *arg, json_t **out,
                     char **cause) {
	(void)arg;
	for (size_t i = 0; i < b->ndeferred; i++) {
		if (strcmp(b->deferred[i], job) == 0) {
			free(b->deferred[i]);
			b->deferred[i] = b->deferred[--b->ndeferred];
			b->deferred_flags[i] = b->deferred_flags[b->ndeferred];
			*out = json_pack("{s:s, s:n, s:b}", "job", job, "run_id", "dequeued", 1);
			return 0;
		}
	}
	return engine_job_cancel(b->engine, job, out, cause);
}

int mcpjob_job_cancel(mcpjob_t h, const char *job, char **json, char **error) {
	return job_call(h, job, do_cancel, NULL, json, error);
}

/* --- small things ------------------------------------------------------------- */

const char *mcpjob_version(void) {
	return MCPJOB_VERSION;
}

const char *mcpjob_rc_name(int rc) {
	switch (rc) {
	case MCPJOB_OK: return "MCPJOB_OK";
	case MCPJOB_E_HANDLE: return "MCPJOB_E_HANDLE";
	case MCPJOB_E_ARG: return "MCPJOB_E_ARG";
	case MCPJOB_E_CONFIG: return "MCPJOB_E_CONFIG";
	case MCPJOB_E_NO_SUCH_JOB: return "MCPJOB_E_NO_SUCH_JOB";
	case MCPJOB_E_ALREADY_RUNNING: return "MCPJOB_E_ALREADY_RUNNING";
	case MCPJOB_E_NOT_RUNNING: return "MCPJOB_E_NOT_RUNNING";
	case MCPJOB_E_BUSY: return "MCPJOB_E_BUSY";
	case MCPJOB_E_FAILED: return "MCPJOB_E_FAILED";
	default: return "MCPJOB_E_UNKNOWN";
	}
}

void mcpjob_free(void *p) {
	free(p);
}
