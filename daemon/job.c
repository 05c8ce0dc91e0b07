/*
 * job.c - names of job states, outcomes, triggers; freeing, comparing and
 * packing a job_def.
 */
#include "daemon/job.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/calendar.h"
#include "common/duration.h"
#include "common/strv.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

const struct retry_policy job_retry_default = {
	.max_attempts = 3,
	.backoff = BACKOFF_EXPONENTIAL,
	.initial_ms = 30LL * 1000,
	.max_ms = 3600LL * 1000,
};

void job_def_free(struct job_def *job) {
	if (job == NULL)
		return;
	if (job->packed) {
		calendar_free(job->calendar);
		json_decref(job->mcp.arguments);
		return;
	}
	free(job->id);
	free(job->name);
	free(job->description);
	free(job->source);
	strv_free(job->on_success);
	strv_free(job->on_failure);
	free(job->schedule_expr);
	free(job->timezone);
	calendar_free(job->calendar);
	free(job->user);
	free(job->group);
	free(job->limits);
	if (job->retry != &job_retry_default)
		free((void *)job->retry);
	strv_free(job->exec.argv);
	strv_free(job->exec.env);
	free(job->exec.cwd);
	free(job->cleanup.path);
	free(job->mcp.server);
	free(job->mcp.tool);
	json_decref(job->mcp.arguments);
	free(job);
}

static bool str_eq(const char *a, const char *b) {
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* --- packing ------------------------------------------------------------ */

#define JOB_ARENA_BLOCK (64 * 1024) /* bytes a block holds; bigger pieces get their own */

struct job_arena_block {
	struct job_arena_block *next;
	size_t used, size;
	max_align_t data[];
};

struct job_arena {
	struct job_arena_block *head; /* the one being filled, then the full ones */
	const struct job_def *prev;   /* packed last: what the next job may share */
};

struct job_arena *job_arena_new(void) {
	return xcalloc(1, sizeof(struct job_arena));
}

void job_arena_free(struct job_arena *a) {
	if (a == NULL)
		return;
	for (struct job_arena_block *b = a->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

static void *arena_alloc(struct job_arena *a, size_t n) {
	n = (n + 7) & ~(size_t)7; /* pointers and int64s inside stay aligned */
	struct job_arena_block *b = a->head;
	if (b == NULL || b->size - b->used < n) {
		size_t size = n > JOB_ARENA_BLOCK / 4 ? n : JOB_ARENA_BLOCK;
		b = xmalloc(sizeof *b + size);
		b->used = 0;
		b->size = size;
		if (size == n && a->head != NULL) { /* a big piece: keep filling the head */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	void *p = (unsigned char *)b->data + b->used;
	b->used += n;
	return p;
}

char *job_arena_strdup(struct job_arena *a, const char *s) {
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	return memcpy(arena_alloc(a, n), s, n);
}

/* @s in @a, or @prev when it is the same string. */
static char *pack_str(struct job_arena *a, const char *s, char *prev) {
	return prev && s && strcmp(prev, s) == 0 ? prev : job_arena_strdup(a, s);
}

static struct job_limits *pack_limits(struct job_arena *a, const struct job_limits *l,
                                      struct job_limits *prev) {
	if (l == NULL)
		return NULL;
	if (prev != NULL && prev->memory == l->memory && prev->cpu == l->cpu &&
	    prev->nofile == l->nofile && prev->nproc == l->nproc)
		return prev;
	return memcpy(arena_alloc(a, sizeof *l), l, sizeof *l);
}

static const struct retry_policy *pack_retry(struct job_arena *a, const struct retry_policy *r,
                                             const struct retry_policy *prev) {
	if (r == NULL || r == &job_retry_default)
		return r;
	if (prev != NULL && prev->max_attempts == r->max_attempts && prev->backoff == r->backoff &&
	    prev->initial_ms == r->initial_ms && prev->max_ms == r->max_ms)
		return prev;
	return memcpy(arena_alloc(a, sizeof *r), r, sizeof *r);
}

static char **pack_strv(struct job_arena *a, char *const *v, char **prev) {
	if (v == NULL)
		return NULL;
	if (prev != NULL && strv_equal(v, prev))
		return prev;
	size_t n = strv_len(v);
	char **out = arena_alloc(a, (n + 1) * sizeof *out);
	for (size_t i = 0; i < n; i++)
		out[i] = job_arena_strdup(a, v[i]);
	out[n] = NULL;
	return out;
}

struct job_def *job_def_pack(struct job_arena *a, struct job_def *job) {
	static const struct job_def none; /* the first job shares with nobody */
	const struct job_def *prev = a->prev ? a->prev : &none;
	struct job_def *p = arena_alloc(a, sizeof *p);
	*p = *job; /* numbers, and the calendar and mcp arguments, move over */
	p->packed = true;
	p->id = job_arena_strdup(a, job->id);
	p->name = !job->name || str_eq(job->name, job->id) ? p->id
	                                                   : pack_str(a, job->name, prev->name);
	p->description = pack_str(a, job->description ? job->description : "", prev->description);
	p->source = pack_str(a, job->source, prev->source);
	p->on_success = pack_strv(a, job->on_success, prev->on_success);
	p->on_failure = pack_strv(a, job->on_failure, prev->on_failure);
	p->schedule_expr = pack_str(a, job->schedule_expr, prev->schedule_expr);
	p->timezone = pack_str(a, job->timezone, prev->timezone);
	p->user = pack_str(a, job->user, prev->user);
	p->group = pack_str(a, job->group, prev->group);
	p->limits = pack_limits(a, job->limits, prev->limits);
	p->retry = pack_retry(a, job->retry, prev->retry);
	p->exec.argv = pack_strv(a, job->exec.argv, prev->exec.argv);
	p->exec.env = pack_strv(a, job->exec.env, prev->exec.env);
	p->exec.cwd = pack_str(a, job->exec.cwd, prev->exec.cwd);
	p->cleanup.path = pack_str(a, job->cleanup.path, prev->cleanup.path);
	p->mcp.server = pack_str(a, job->mcp.server, prev->mcp.server);
	p->mcp.tool = pack_str(a, job->mcp.tool, prev->mcp.tool);
	job->calendar = NULL;
	job->mcp.arguments = NULL;
	job_def_free(job);
	a->prev = p;
	return p;
}

static bool strv_eq(char *const *a, char *const *b) {
	if (a == NULL || b == NULL)
		return a == b || strv_len((char **)(a ? a : b)) == 0;
	for (; *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return *a == NULL && *b == NULL;
}

static bool action_equal(const struct job_def *a, const struct job_def *b) {
	switch (a->kind) {
	case ACTION_EXEC:
		return strv_eq(a->exec.argv, b->exec.argv) && strv_eq(a->exec.env, b->exec.env) &&
		       str_eq(a->exec.cwd, b->exec.cwd);
	case ACTION_CLEANUP:
		return str_eq(a->cleanup.path, b->cleanup.path) &&
		       a->cleanup.max_age_ms == b->cleanup.max_age_ms;
	case ACTION_MCP:
		return str_eq(a->mcp.server, b->mcp.server) && str_eq(a->mcp.tool, b->mcp.tool) &&
		       (a->mcp.arguments == b->mcp.arguments ||
		        (a->mcp.arguments && b->mcp.arguments &&
		         json_equal(a->mcp.arguments, b->mcp.arguments)));
	}
	return true;
}

/* Field by field, not memcmp: padding bytes are not part of a definition. */
bool job_def_equal(const struct job_def *a, const struct job_def *b) {
	const struct job_constraints *ca = &a->constraints, *cb = &b->constraints;
	const struct retry_policy *ra = a->retry, *rb = b->retry;
	static const struct job_limits none; /* no "limits": every one inherited */
	const struct job_limits *la = a->limits ? a->limits : &none;
	const struct job_limits *lb = b->limits ? b->limits : &none;
	return str_eq(a->id, b->id) && str_eq(a->name, b->name) &&
	       str_eq(a->description, b->description) && a->interval_ms == b->interval_ms &&
	       a->flex_ms == b->flex_ms && a->timeout_ms == b->timeout_ms &&
	       a->initial_delay_ms == b->initial_delay_ms && a->schedule == b->schedule &&
	       str_eq(a->schedule_expr, b->schedule_expr) && str_eq(a->timezone, b->timezone) &&
	       a->at_ms == b->at_ms && a->expire_after_ms == b->expire_after_ms &&
	       a->randomized_delay_ms == b->randomized_delay_ms && a->owner_uid == b->owner_uid &&
	       strv_equal(a->on_success, b->on_success) && strv_equal(a->on_failure, b->on_failure) &&
	       ca->network == cb->network &&
	       ca->charging == cb->charging && ca->battery_not_low == cb->battery_not_low &&
	       ca->idle == cb->idle && ca->storage_not_low == cb->storage_not_low &&
	       ra->max_attempts == rb->max_attempts && ra->backoff == rb->backoff &&
	       ra->initial_ms == rb->initial_ms && ra->max_ms == rb->max_ms &&
	       a->enabled == b->enabled && a->stop_when_unmet == b->stop_when_unmet &&
	       a->history_max_runs == b->history_max_runs &&
	       a->history_max_age_ms == b->history_max_age_ms && str_eq(a->user, b->user) &&
	       str_eq(a->group, b->group) && la->memory == lb->memory && la->cpu == lb->cpu &&
	       la->nofile == lb->nofile && la->nproc == lb->nproc && a->kind == b->kind &&
	       action_equal(a, b);
}

static const char *const state_names[] = {
	[JOB_STATE_DISABLED] = "disabled", [JOB_STATE_SCHEDULED] = "scheduled",
	[JOB_STATE_PENDING] = "pending",   [JOB_STATE_RUNNING] = "running",
	[JOB_STATE_BACKOFF] = "backoff",   [JOB_STATE_DONE] = "done",
};

static const char *const outcome_names[] = {
	[OUTCOME_NONE] = "none",          [OUTCOME_RUNNING] = "running",
	[OUTCOME_SUCCESS] = "success",    [OUTCOME_FAILURE] = "failure",
	[OUTCOME_RETRY] = "retry",        [OUTCOME_TIMEOUT] = "timeout",
	[OUTCOME_CANCELLED] = "cancelled", [OUTCOME_INTERRUPTED] = "interrupted",
};

static const char *const trigger_names[] = {
	[TRIGGER_SCHEDULE] = "schedule", [TRIGGER_MANUAL] = "manual",
	[TRIGGER_CATCH_UP] = "catch-up", [TRIGGER_RETRY] = "retry",
	[TRIGGER_AFTER] = "after",
};

#define NAME_OF(tab, i) \
	(((size_t)(i) < sizeof(tab) / sizeof((tab)[0]) && (tab)[i]) ? (tab)[i] : "unknown")

const char *job_state_name(enum job_state s) { return NAME_OF(state_names, s); }
const char *job_outcome_name(enum run_outcome o) { return NAME_OF(outcome_names, o); }
const char *job_trigger_name(enum run_trigger t) { return NAME_OF(trigger_names, t); }

const char *job_action_kind_name(enum action_kind k) {
	switch (k) {
	case ACTION_EXEC: return "exec";
	case ACTION_CLEANUP: return "cleanup";
	case ACTION_MCP: return "mcp";
	}
	return "unknown";
}

const char *job_net_req_name(enum net_req n) {
	switch (n) {
	case NET_REQ_ANY: return "any";
	case NET_REQ_CONNECTED: return "connected";
	case NET_REQ_UNMETERED: return "unmetered";
	}
	return "unknown";
}

static int index_of(const char *const *tab, size_t n, const char *s) {
	for (size_t i = 0; i < n; i++)
		if (tab[i] && strcmp(tab[i], s) == 0)
			return (int)i;
	return -1;
}

int job_outcome_from_name(const char *s) {
	return index_of(outcome_names, sizeof outcome_names / sizeof outcome_names[0], s);
}

int job_trigger_from_name(const char *s) {
	return index_of(trigger_names, sizeof trigger_names / sizeof trigger_names[0], s);
}

bool job_outcome_is_retryable(enum run_outcome o) {
	return o == OUTCOME_RETRY || o == OUTCOME_TIMEOUT;
}

char *job_def_schedule_text(const struct job_def *d) {
	char buf[TIME_RFC3339_LEN], dur[32];
	switch (d->schedule) {
	case SCHEDULE_INTERVAL:
		return xasprintf("every %s", duration_format(d->interval_ms, dur, sizeof dur));
	case SCHEDULE_CALENDAR:
	case SCHEDULE_CRON:
		return xstrdup(calendar_normalized(d->calendar));
	case SCHEDULE_AT:
		return xasprintf("once at %s", time_format_rfc3339(d->at_ms, buf));
	}
	return xstrdup("?");
}
