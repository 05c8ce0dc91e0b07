/*
 * embed.c - mcpjob_engine_*: the engine driven by the OS's background hooks.
 *
 * Each engine owns an event loop. mcpjob_engine_run_due() dispatches it
 * until the engine says nothing runs any more; mcpjob_engine_expire()
 * writes to an eventfd the loop watches, which is the only thing that is
 * safe to do from another thread.
 */
#include "daemon/embed.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/spawn.h"

struct mcpjob_engine {
	struct event_base *base;
	struct engine *engine;
	int expire_fd;
	struct event *expire_ev;
	bool running;
	bool dispatching; /* a loopexit asked outside the loop would end the next pass */
};

static void on_done(void *arg) {
	struct mcpjob_engine *m = arg;
	m->running = false;
	if (m->dispatching)
		event_base_loopexit(m->base, NULL);
}

static void on_expire(evutil_socket_t fd, short what, void *arg) {
	struct mcpjob_engine *m = arg;
	uint64_t v;
	(void)what;
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		return;
	if (m->running)
		engine_stop(m->engine, "the time budget for background work ran out (expired)",
		            on_done, m);
}

struct mcpjob_engine *mcpjob_engine_open(const char *config_path, const char *state_dir,
                                         char **error) {
	struct mcpjob_engine *m = xcalloc(1, sizeof *m);
	struct config_errors errs = {0};
	char *cause = NULL;
	signal(SIGPIPE, SIG_IGN);
	m->base = event_base_new();
	struct engine_opts eo = {.config_path = config_path, .state_dir = state_dir,
	                         .platform = "sim", .base = m->base};
	if (engine_open(&eo, &m->engine, &errs, &cause) < 0) {
		char *list = config_errors_join(&errs);
		*error = *list ? xasprintf("%s:\n%s", cause, list) : xstrdup(cause);
		free(list);
		free(cause);
		config_errors_clear(&errs);
		event_base_free(m->base);
		free(m);
		return NULL;
	}
	m->expire_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	m->expire_ev = event_new(m->base, m->expire_fd, EV_READ | EV_PERSIST, on_expire, m);
	event_add(m->expire_ev, NULL);
	return m;
}

int mcpjob_engine_run_due(struct mcpjob_engine *m, int64_t budget_ms) {
	uint64_t before = engine_runs_started(m->engine);
	m->running = true;
	engine_run_due(m->engine, budget_ms, on_done, m);
	if (m->running) {
		m->dispatching = true;
		event_base_dispatch(m->base);
		m->dispatching = false;
	}
	m->running = false;
	return (int)(engine_runs_started(m->engine) - before);
}

void mcpjob_engine_expire(struct mcpjob_engine *m) {
	uint64_t one = 1;
	ssize_t w = write(m->expire_fd, &one, sizeof one);
	(void)w;
}

int64_t mcpjob_engine_next_due(struct mcpjob_engine *m) {
	return engine_next_due(m->engine);
}

int mcpjob_engine_set_device(struct mcpjob_engine *m, const char *key, const char *value,
                             char **error) {
	json_t *params = json_pack("{s:s}", key, value), *out = NULL;
	int rc = engine_device_set(m->engine, params, &out, error);
	json_decref(params);
	json_decref(out);
	return rc == 0 ? 0 : -1;
}

void mcpjob_engine_close(struct mcpjob_engine *m) {
	if (m == NULL)
		return;
	engine_free(m->engine);
	event_free(m->expire_ev);
	close(m->expire_fd);
	event_base_free(m->base);
	free(m);
}
