/*
 * events.c - subscriber list and event fan-out.
 */
#include "daemon/events.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonrpc.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

struct events_sub {
	struct events_sub *next;
	json_t *jobs; /* NULL: all */
	const char *const *types; /* NULL: all */
	events_filter_fn filter;  /* NULL: all jobs */
	events_send_fn fn;
	void *arg;
	bool dead;
};

struct events {
	struct events_sub *subs;
	events_run_fn run_fn;
	void *run_arg;
	int emitting;
	size_t n;
};

struct events *events_new(void) {
	return xcalloc(1, sizeof(struct events));
}

void events_free(struct events *ev) {
	if (ev == NULL)
		return;
	for (struct events_sub *s = ev->subs, *next; s; s = next) {
		next = s->next;
		json_decref(s->jobs);
		free(s);
	}
	free(ev);
}

struct events_sub *events_subscribe(struct events *ev, const json_t *jobs, events_send_fn fn,
                                    void *arg) {
	struct events_sub *s = xcalloc(1, sizeof *s);
	s->jobs = jobs && json_array_size(jobs) ? json_deep_copy(jobs) : NULL;
	s->fn = fn;
	s->arg = arg;
	s->next = ev->subs;
	ev->subs = s;
	ev->n++;
	return s;
}

struct events_sub *events_subscribe_types(struct events *ev, const char *const *types,
                                          events_send_fn fn, void *arg) {
	struct events_sub *s = events_subscribe(ev, NULL, fn, arg);
	s->types = types;
	return s;
}

void events_sub_set_types(struct events_sub *sub, const char *const *types) {
	sub->types = types;
}

void events_sub_set_filter(struct events_sub *sub, events_filter_fn fn) {
	sub->filter = fn;
}

void events_watch_runs(struct events *ev, events_run_fn fn, void *arg) {
	ev->run_fn = fn;
	ev->run_arg = arg;
}

void events_run_ended(struct events *ev, const struct run_record *run) {
	if (ev != NULL && ev->run_fn != NULL)
		ev->run_fn(ev->run_arg, run);
}

static void sweep(struct events *ev) {
	struct events_sub **pp = &ev->subs;
	while (*pp) {
		struct events_sub *s = *pp;
		if (s->dead) {
			*pp = s->next;
			json_decref(s->jobs);
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

void events_unsubscribe(struct events *ev, struct events_sub *sub) {
	if (sub == NULL || sub->dead)
		return;
	sub->dead = true;
	ev->n--;
	if (!ev->emitting)
		sweep(ev);
}

static bool wants(const struct events_sub *s, const char *type, const char *job_id) {
	if (s->types != NULL) {
		const char *const *t = s->types;
		while (*t && strcmp(*t, type) != 0)
			t++;
		if (*t == NULL)
			return false;
	}
	if (s->filter != NULL && !s->filter(s->arg, job_id))
		return false;
	if (s->jobs == NULL || job_id == NULL)
		return true;
	size_t i;
	json_t *v;
	json_array_foreach(s->jobs, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), job_id) == 0)
			return true;
	return false;
}

bool events_wanted(const struct events *ev, const char *type, const char *job_id) {
	if (ev == NULL || ev->n == 0)
		return false;
	for (const struct events_sub *s = ev->subs; s; s = s->next)
		if (!s->dead && wants(s, type, job_id))
			return true;
	return false;
}

void events_emit(struct events *ev, const char *type, const char *job_id, json_t *params) {
	if (!events_wanted(ev, type, job_id)) {
		json_decref(params);
		return;
	}
	if (params == NULL)
		params = json_object();
	json_t *p = json_pack("{s:s, s:o}", "type", type, "time", time_to_json(time_now_ms()));
	if (job_id)
		json_object_set_new(p, "job", json_string(job_id));
	json_object_update(p, params);
	json_decref(params);
	json_t *msg = rpc_notification(RPC_M_EVENT, p);
	json_decref(p);
	ev->emitting++;
	for (struct events_sub *s = ev->subs; s; s = s->next)
		if (!s->dead && wants(s, type, job_id))
			s->fn(s->arg, msg);
	ev->emitting--;
	json_decref(msg);
	if (!ev->emitting)
		sweep(ev);
}

size_t events_subscribers(const struct events *ev) {
	return ev->n;
}
