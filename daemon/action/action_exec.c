/*
 * action_exec.c - the exec action: run a program (argv, never a shell) with a
 * clean environment, collect the tail of its output, and turn its exit into
 * an outcome.
 *
 * Everything happens on the event loop: the output pipe is read by a
 * persistent libevent event and the exit arrives through spawn_watch(). A run
 * is over when the child has exited and its output reached EOF; a grandchild
 * that keeps the pipe open gets EXIT_DRAIN_MS after the exit, then is killed
 * with the rest of the process group - a finished job leaves nothing behind.
 *
 * Exit 0 is success, 75 (EX_TEMPFAIL) retry, any other exit or a signal
 * failure; after stop() the outcome is the one stop() was given.
 */
#include "daemon/action/action.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/text.h"
#include "common/log.h"
#include "common/strv.h"
#include "common/xmalloc.h"
#include "daemon/orphan.h"
#include "daemon/spawn.h"

#define EXIT_TEMPFAIL 75
#define EXIT_DRAIN_MS 100 /* after the exit, how long to wait for EOF */
#define READ_CHUNK    8192
#define READ_BUDGET   16   /* chunks per wake-up */

struct action_run {
	action_done_fn done;
	void *arg;
	pid_t pid; /* also the process group */
	int grace_ms; /* SIGTERM -> SIGKILL */
	int fd;    /* stdout+stderr, -1 after EOF */
	struct event *read_ev;
	struct event *kill_ev;  /* SIGKILL after the grace */
	struct event *drain_ev; /* gives up waiting for EOF after the exit */
	struct spawn_watch *watch; /* until the exit */

	/* The last ACTION_OUTPUT_MAX bytes, as a ring. */
	char *ring;
	size_t head; /* next write position */
	size_t used;
	uint64_t total;

	bool exited;
	int wstatus;
	bool stopping;
	enum run_outcome why;
	char *reason;
};

static void ring_put(struct action_run *r, const char *p, size_t n) {
	r->total += n;
	if (n > ACTION_OUTPUT_MAX) {
		p += n - ACTION_OUTPUT_MAX;
		n = ACTION_OUTPUT_MAX;
	}
	while (n > 0) {
		size_t k = ACTION_OUTPUT_MAX - r->head;
		if (k > n)
			k = n;
		memcpy(r->ring + r->head, p, k);
		r->head = (r->head + k) % ACTION_OUTPUT_MAX;
		r->used = r->used + k > ACTION_OUTPUT_MAX ? ACTION_OUTPUT_MAX : r->used + k;
		p += k;
		n -= k;
	}
}

/* The kept output in order; *len set; caller frees. */
static char *ring_linear(const struct action_run *r, size_t *len) {
	char *buf = xmalloc(r->used + 1);
	size_t start = (r->head + ACTION_OUTPUT_MAX - r->used) % ACTION_OUTPUT_MAX;
	size_t first = ACTION_OUTPUT_MAX - start;
	if (first > r->used)
		first = r->used;
	memcpy(buf, r->ring + start, first);
	memcpy(buf + first, r->ring, r->used - first);
	buf[r->used] = '\0';
	*len = r->used;
	return buf;
}

static void run_free(struct action_run *r) {
	spawn_unwatch(r->watch);
	if (r->read_ev)
		event_free(r->read_ev);
	if (r->kill_ev)
		event_free(r->kill_ev);
	if (r->drain_ev)
		event_free(r->drain_ev);
	if (r->fd >= 0)
		close(r->fd);
	free(r->ring);
	free(r->reason);
	free(r);
}

/* Outcome and message of a run that was not stopped. */
static void describe_exit(const struct action_run *r, const char *out, size_t len,
                          struct action_result *res) {
	char buf[128];
	int st = r->wstatus;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		res->outcome = OUTCOME_SUCCESS;
	else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_TEMPFAIL)
		res->outcome = OUTCOME_RETRY;
	else
		res->outcome = OUTCOME_FAILURE;
	if (!WIFEXITED(st))
		res->message = xstrdup(spawn_describe_status(st, buf, sizeof buf));
	else if ((res->message = action_last_line(out, len)) == NULL)
		res->message = xstrdup(spawn_describe_status(st, buf, sizeof buf));
}

static void run_finish(struct action_run *r) {
	struct action_result res = {0};
	size_t len;
	char *raw = ring_linear(r, &len);
	/* Leftovers (a grandchild holding the pipe, or a stopped run's group). */
	if (r->fd >= 0 || r->stopping)
		spawn_kill_group(r->pid, SIGKILL);
	if (r->stopping) {
		res.outcome = r->why;
		res.message = xstrdup_or_null(r->reason);
	} else {
		describe_exit(r, raw, len, &res);
	}
	char *clean = text_utf8_valid(raw, len);
	if (r->total > r->used) {
		res.output = xasprintf("[output truncated: first %llu bytes dropped]\n%s",
		                       (unsigned long long)(r->total - r->used), clean);
		free(clean);
	} else {
		res.output = clean;
	}
	free(raw);
	action_done_fn done = r->done;
	void *arg = r->arg;
	run_free(r);
	done(arg, &res);
}

/*
 * Read what is there, at most READ_BUDGET chunks so a child that writes as
 * fast as we read cannot hold the loop (the event fires again); returns true
 * at EOF (or a read error).
 */
static bool run_read(struct action_run *r) {
	char buf[READ_CHUNK];
	for (int i = 0; i < READ_BUDGET; i++) {
		ssize_t n = read(r->fd, buf, sizeof buf);
		if (n > 0) {
			ring_put(r, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		return true;
	}
	return false;
}

static void run_eof(struct action_run *r) {
	event_del(r->read_ev);
	close(r->fd);
	r->fd = -1;
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
	struct action_run *r = arg;
	(void)fd;
	(void)what;
	if (!run_read(r))
		return;
	run_eof(r);
	if (r->exited)
		run_finish(r);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg) {
	struct action_run *r = arg;
	(void)fd;
	(void)what;
	/* Whoever still holds the pipe goes first, so the last read ends. */
	spawn_kill_group(r->pid, SIGKILL);
	if (run_read(r))
		run_eof(r);
	run_finish(r);
}

static void on_child_exit(pid_t pid, int wstatus, void *arg) {
	struct action_run *r = arg;
	(void)pid;
	r->watch = NULL; /* it freed itself */
	r->exited = true;
	r->wstatus = wstatus;
	if (r->kill_ev)
		event_del(r->kill_ev);
	if (r->fd >= 0 && run_read(r))
		run_eof(r);
	if (r->fd < 0) {
		run_finish(r);
		return;
	}
	struct timeval tv = {0, EXIT_DRAIN_MS * 1000};
	evtimer_add(r->drain_ev, &tv);
}

static void on_kill_grace(evutil_socket_t fd, short what, void *arg) {
	struct action_run *r = arg;
	(void)fd;
	(void)what;
	spawn_kill_group(r->pid, SIGKILL);
}

/* The job's env, then this run's job.run "env" over it ("KEY=VALUE" each). */
static char **exec_env_with_input(char *const *job_env, const json_t *input) {
	const json_t *add = input ? json_object_get(input, "env") : NULL;
	size_t n = strv_len(job_env), i = 0;
	char **out = xcalloc(n + json_object_size(add) + 1, sizeof *out);
	const char *k;
	json_t *v;
	for (size_t j = 0; j < n; j++) {
		size_t klen = strcspn(job_env[j], "=");
		char *key = xstrndup(job_env[j], klen);
		if (json_object_get(add, key) == NULL) /* the run's value wins */
			out[i++] = xstrdup(job_env[j]);
		free(key);
	}
	json_object_foreach((json_t *)add, k, v)
		out[i++] = xasprintf("%s=%s", k, json_string_value(v));
	return out;
}

static struct action_run *exec_start(const struct action_env *env, action_progress_fn progress,
                                     action_done_fn done, void *arg, char **cause) {
	const struct job_def *job = env->job;
	(void)progress;
	if (job->exec.argv == NULL || job->exec.argv[0] == NULL) {
		*cause = xasprintf("job %s has no program to run", job->id);
		return NULL;
	}
	/* No identity means ourselves: the child still gets our HOME and USER.
	 * Runs of the daemon have one (resolved at configuration load); looking
	 * ourselves up here would read /etc/passwd on every run. */
	struct spawn_identity self = {0};
	if (env->id == NULL)
		spawn_identity_self(&self);
	const struct spawn_identity *id = env->id ? env->id : &self;
	/* durable: the marker finds this run's processes if mcpjobd dies (orphan.h). */
	char tag[24];
	snprintf(tag, sizeof tag, "%llu", (unsigned long long)env->run_id);
	char **with_input = exec_env_with_input(job->exec.env, env->input);
	char **extra = orphan_env(with_input, env->store_id, tag);
	strv_free(with_input);
	char **childenv = spawn_build_env(id, extra);
	strv_free(extra);
	struct spawn_opts o = {
		.argv = job->exec.argv,
		.env = childenv,
		.cwd = job->exec.cwd,
		.id = id,
		.limits = job->limits,
		.stderr_to_stdout = true,
	};
	struct spawn_child child;
	int rc = spawn_start(&o, &child, cause);
	strv_free(childenv);
	spawn_identity_clear(&self);
	if (rc < 0)
		return NULL;
	struct action_run *r = xcalloc(1, sizeof *r);
	r->done = done;
	r->arg = arg;
	r->pid = child.pid;
	r->grace_ms = env->kill_grace_ms > 0 ? env->kill_grace_ms : ACTION_KILL_GRACE_MS;
	r->fd = child.stdout_fd;
	r->ring = xmalloc(ACTION_OUTPUT_MAX);
	r->read_ev = event_new(env->base, r->fd, EV_READ | EV_PERSIST, on_readable, r);
	r->kill_ev = evtimer_new(env->base, on_kill_grace, r);
	r->drain_ev = evtimer_new(env->base, on_drain_timeout, r);
	if (r->read_ev == NULL || r->kill_ev == NULL || r->drain_ev == NULL)
		log_fatalx("cannot create events for an exec run");
	event_add(r->read_ev, NULL);
	r->watch = spawn_watch(env->base, r->pid, on_child_exit, r);
	return r;
}

static void exec_stop(struct action_run *r, enum run_outcome why, const char *reason) {
	if (!action_stop_once(&r->stopping, &r->why, &r->reason, why, reason))
		return;
	if (r->exited) /* only waiting for EOF; the drain timer finishes it */
		return;
	spawn_kill_group(r->pid, SIGTERM);
	struct timeval tv = {r->grace_ms / 1000, (r->grace_ms % 1000) * 1000};
	evtimer_add(r->kill_ev, &tv);
}

static pid_t exec_pgid(const struct action_run *r) {
	return r->pid;
}

const struct action_ops action_exec_ops = {
	.name = "exec",
	.start = exec_start,
	.stop = exec_stop,
	.pgid = exec_pgid,
};
