/*
 * mcp_transport.c - the stdio transport: an MCP server as a child process
 * speaking newline-delimited JSON-RPC on its stdin and stdout.
 *
 * Everything the server controls is bounded: a stdout line may be at most
 * MCP_TRANSPORT_LINE_MAX (we stop reading and report instead of growing the
 * buffer), stderr is kept as a fixed-size tail and logged rate-limited.
 *
 * Lifetime: the owner holds the transport until it calls close(); from then
 * on the transport owns itself, walks the shutdown steps on timers and is
 * freed when the child has been reaped. Freeing only ever happens from a
 * timer or the exit callback, never from inside a read handler, so owner
 * callbacks may call close() at any point.
 */
#include "daemon/mcp/mcp_transport.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "common/strv.h"
#include "common/timeutil.h"
#include "common/text.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/orphan.h"
#include "daemon/spawn.h"

#define READ_CHUNK      65536
#define ERRLINE_MAX     512
#define EOF_GRACE_MS    2000 /* stdout closed but the process lingers */

enum shut_step { SHUT_NONE, SHUT_STDIN_CLOSED, SHUT_TERM_SENT, SHUT_KILL_SENT };

struct stdio_transport {
	struct mcp_transport base;
	struct event_base *evb;
	struct mcp_transport_cbs cbs;
	char *name;
	pid_t pid;
	struct spawn_watch *watch; /* until the exit */
	bool exited;
	int wstatus;
	int in_fd, out_fd, err_fd;
	struct event *in_ev, *out_ev, *err_ev, *timer;
	struct evbuffer *inbuf, *outbuf;
	size_t scanned;          /* bytes of outbuf known to hold no '\n' */
	bool reported;           /* on_close was called */
	bool closing;            /* owner let go */
	bool stdout_eof;
	bool flooded;            /* it does not read what we send: being stopped */
	bool in_handler;         /* inside a read/exit handler */
	enum shut_step step;
	char tail[MCP_TRANSPORT_STDERR_TAIL + 1];
	size_t tail_len;
	char errline[ERRLINE_MAX + 1];
	size_t errline_len;
	struct log_ratelimit rl;
	TAILQ_ENTRY(stdio_transport) link; /* closing list */
};

static TAILQ_HEAD(, stdio_transport) closing_list = TAILQ_HEAD_INITIALIZER(closing_list);

static void st_free(struct stdio_transport *st);
static void st_shutdown_step(struct stdio_transport *st);

/* --- reporting ---------------------------------------------------------- */

static void st_report(struct stdio_transport *st, const char *why) {
	if (st->reported || st->closing)
		return;
	st->reported = true;
	if (st->cbs.on_close)
		st->cbs.on_close(st->cbs.arg, why);
}

static void st_report_exit(struct stdio_transport *st) {
	char desc[128], *why;
	spawn_describe_status(st->wstatus, desc, sizeof desc);
	why = xasprintf("server %s %s", st->name, desc);
	st_report(st, why);
	free(why);
}

/* --- stderr ------------------------------------------------------------- */

static void tail_append(struct stdio_transport *st, const char *p, size_t n) {
	if (n >= MCP_TRANSPORT_STDERR_TAIL) {
		p += n - MCP_TRANSPORT_STDERR_TAIL;
		n = MCP_TRANSPORT_STDERR_TAIL;
	}
	if (st->tail_len + n > MCP_TRANSPORT_STDERR_TAIL) {
		size_t drop = st->tail_len + n - MCP_TRANSPORT_STDERR_TAIL;
		memmove(st->tail, st->tail + drop, st->tail_len - drop);
		st->tail_len -= drop;
	}
	memcpy(st->tail + st->tail_len, p, n);
	st->tail_len += n;
	st->tail[st->tail_len] = '\0';
}

static void errline_flush(struct stdio_transport *st) {
	if (st->errline_len == 0)
		return;
	st->errline[st->errline_len] = '\0';
	text_scrub_line(st->errline);
	if (log_ratelimit_ok(&st->rl, 20, 10000, st->name))
		log_info("mcp server %s: %s", st->name, st->errline);
	st->errline_len = 0;
}

static void errline_feed(struct stdio_transport *st, const char *p, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			errline_flush(st);
		} else if (st->errline_len < ERRLINE_MAX) {
			st->errline[st->errline_len++] = p[i];
		}
	}
}

/* Read what stderr has now: 1 data, 0 nothing now, -1 EOF or error. */
static int st_read_stderr(struct stdio_transport *st) {
	char buf[4096];
	ssize_t r = read(st->err_fd, buf, sizeof buf);
	if (r > 0) {
		tail_append(st, buf, (size_t)r);
		errline_feed(st, buf, (size_t)r);
		return 1;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	errline_flush(st);
	return -1;
}

static void st_on_stderr(evutil_socket_t fd, short what, void *arg) {
	struct stdio_transport *st = arg;
	(void)fd;
	(void)what;
	if (st_read_stderr(st) < 0)
		event_del(st->err_ev);
}

/* --- stdout ------------------------------------------------------------- */

/* Hand complete lines to the owner; false when the framing broke. */
static bool st_deliver_lines(struct stdio_transport *st) {
	for (;;) {
		if (st->closing || st->flooded) {
			evbuffer_drain(st->outbuf, evbuffer_get_length(st->outbuf));
			st->scanned = 0;
			return true;
		}
		struct evbuffer_ptr pos;
		size_t eol_len;
		evbuffer_ptr_set(st->outbuf, &pos, st->scanned, EVBUFFER_PTR_SET);
		pos = evbuffer_search_eol(st->outbuf, &pos, &eol_len, EVBUFFER_EOL_LF);
		if (pos.pos < 0) {
			st->scanned = evbuffer_get_length(st->outbuf);
			return st->scanned <= MCP_TRANSPORT_LINE_MAX;
		}
		if ((size_t)pos.pos > MCP_TRANSPORT_LINE_MAX)
			return false;
		size_t len;
		char *line = evbuffer_readln(st->outbuf, &len, EVBUFFER_EOL_LF);
		st->scanned = 0;
		if (line == NULL)
			return true;
		if (st->cbs.on_line && !st->reported)
			st->cbs.on_line(st->cbs.arg, line, len);
		free(line);
	}
}

static void st_line_too_long(struct stdio_transport *st) {
	char *why = xasprintf("server %s sent a line longer than %u bytes (protocol failure)",
	                      st->name, MCP_TRANSPORT_LINE_MAX);
	event_del(st->out_ev);
	evbuffer_drain(st->outbuf, evbuffer_get_length(st->outbuf));
	st->scanned = 0;
	st_report(st, why);
	free(why);
	if (!st->closing && !st->exited)
		spawn_kill_group(st->pid, SIGKILL);
}

/* Read one chunk of stdout: 1 data, 0 nothing now, -1 EOF or error. */
static int st_read_stdout(struct stdio_transport *st) {
	int r = evbuffer_read(st->outbuf, st->out_fd, READ_CHUNK);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0)
		return -1;
	if (!st_deliver_lines(st))
		st_line_too_long(st);
	return 1;
}

static void st_arm(struct stdio_transport *st, int ms);

static void st_on_stdout(evutil_socket_t fd, short what, void *arg) {
	struct stdio_transport *st = arg;
	(void)fd;
	(void)what;
	st->in_handler = true;
	int r = st_read_stdout(st);
	st->in_handler = false;
	if (r >= 0)
		return;
	event_del(st->out_ev);
	st->stdout_eof = true;
	/* Normally the exit follows within milliseconds; report then, with its status. */
	if (!st->exited && !st->closing)
		st_arm(st, EOF_GRACE_MS);
}

/* --- stdin -------------------------------------------------------------- */

static void st_close_stdin(struct stdio_transport *st) {
	if (st->in_fd < 0)
		return;
	event_del(st->in_ev);
	close(st->in_fd);
	st->in_fd = -1;
	evbuffer_drain(st->inbuf, evbuffer_get_length(st->inbuf));
}

static void st_on_stdin(evutil_socket_t fd, short what, void *arg) {
	struct stdio_transport *st = arg;
	(void)fd;
	(void)what;
	int w = evbuffer_write(st->inbuf, st->in_fd);
	if (w < 0 && errno != EAGAIN && errno != EINTR) {
		/* EPIPE: the server is gone; its exit will be reported. */
		st_close_stdin(st);
		return;
	}
	if (evbuffer_get_length(st->inbuf) == 0)
		event_del(st->in_ev);
}

/* Our unsent messages passed MCP_TRANSPORT_STDIN_MAX: the server sends (e.g.
 * requests) faster than it reads the answers. Stop reading it, kill it, and
 * report from the timer: we may be inside the owner's own send. */
static void st_flooded(struct stdio_transport *st) {
	st->flooded = true;
	event_del(st->out_ev);
	event_del(st->in_ev);
	evbuffer_drain(st->inbuf, evbuffer_get_length(st->inbuf));
	if (!st->exited)
		spawn_kill_group(st->pid, SIGKILL);
	st_arm(st, 0);
}

static int st_send(struct mcp_transport *t, const char *line, size_t len) {
	struct stdio_transport *st = (struct stdio_transport *)t;
	if (st->in_fd < 0 || st->closing || st->flooded)
		return -1;
	if (evbuffer_get_length(st->inbuf) + len > MCP_TRANSPORT_STDIN_MAX) {
		st_flooded(st);
		return -1;
	}
	bool idle = evbuffer_get_length(st->inbuf) == 0;
	evbuffer_add(st->inbuf, line, len);
	/* Nothing queued: write now; the event loop only takes what the pipe
	 * would not (saves an epoll_ctl pair and a loop turn per message). */
	if (idle) {
		int w = evbuffer_write(st->inbuf, st->in_fd);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			st_close_stdin(st);
			return -1;
		}
		if (evbuffer_get_length(st->inbuf) == 0)
			return 0;
	}
	event_add(st->in_ev, NULL);
	return 0;
}

/* --- exit and shutdown -------------------------------------------------- */

static void st_on_exit(pid_t pid, int wstatus, void *arg) {
	struct stdio_transport *st = arg;
	(void)pid;
	st->watch = NULL; /* it freed itself */
	st->exited = true;
	st->wstatus = wstatus;
	st->in_handler = true;
	/* A last reply may still sit in the pipe: drain it before reporting. */
	for (int i = 0; i < 1024 && !st->stdout_eof; i++) {
		int r = st_read_stdout(st);
		if (r < 0)
			st->stdout_eof = true;
		if (r <= 0)
			break;
	}
	for (int i = 0; i < 64 && st_read_stderr(st) > 0; i++)
		;
	errline_flush(st);
	if (!st->flooded) /* the timer reports why we killed it */
		st_report_exit(st);
	st->in_handler = false;
	if (st->closing)
		st_free(st);
}

/* The one timer: before close() it bounds a lingering process after stdout
 * EOF; after close() it paces the shutdown steps. */
static void st_on_timer(evutil_socket_t fd, short what, void *arg) {
	struct stdio_transport *st = arg;
	(void)fd;
	(void)what;
	if (!st->closing && st->flooded) {
		char *why = xasprintf("server %s does not read its stdin: over %u bytes of our "
		                      "messages were unsent (it sends requests faster than it reads "
		                      "the answers); stopped it (protocol failure)", st->name,
		                      MCP_TRANSPORT_STDIN_MAX);
		st_report(st, why);
		free(why);
		return;
	}
	if (!st->closing) {
		char *why = xasprintf("server %s closed its stdout but kept running", st->name);
		st_report(st, why);
		free(why);
		return;
	}
	st_shutdown_step(st);
}

static void st_arm(struct stdio_transport *st, int ms) {
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_del(st->timer);
	evtimer_add(st->timer, &tv);
}

/* One step of close stdin -> SIGTERM -> SIGKILL, or the final free. */
static void st_shutdown_step(struct stdio_transport *st) {
	if (st->exited) {
		st_free(st);
		return;
	}
	switch (st->step) {
	case SHUT_NONE:
		st->step = SHUT_STDIN_CLOSED;
		st_close_stdin(st);
		st_arm(st, MCP_TRANSPORT_STDIN_GRACE_MS);
		break;
	case SHUT_STDIN_CLOSED:
		st->step = SHUT_TERM_SENT;
		spawn_kill_group(st->pid, SIGTERM);
		st_arm(st, MCP_TRANSPORT_TERM_GRACE_MS);
		break;
	case SHUT_TERM_SENT:
		st->step = SHUT_KILL_SENT;
		log_warning("mcp server %s (pid %ld) ignored SIGTERM; killing it", st->name,
		            (long)st->pid);
		spawn_kill_group(st->pid, SIGKILL);
		break;
	case SHUT_KILL_SENT:
		break;
	}
}

static void st_close(struct mcp_transport *t) {
	struct stdio_transport *st = (struct stdio_transport *)t;
	if (st->closing)
		return;
	st->closing = true;
	st->cbs.on_line = NULL;
	st->cbs.on_close = NULL;
	TAILQ_INSERT_TAIL(&closing_list, st, link);
	/* Keep draining stdout so a chatty server cannot block before it exits. */
	if (!st->stdout_eof && !st->exited)
		event_add(st->out_ev, NULL);
	if (st->exited) {
		st_arm(st, 0); /* free from the loop, never from a caller's stack */
		return;
	}
	st_shutdown_step(st);
}

static void st_free(struct stdio_transport *st) {
	if (st->in_handler)
		return; /* the handler frees on its way out */
	if (st->closing)
		TAILQ_REMOVE(&closing_list, st, link);
	if (!st->exited)
		spawn_unwatch(st->watch);
	event_free(st->timer);
	event_free(st->in_ev);
	event_free(st->out_ev);
	if (st->err_ev)
		event_free(st->err_ev);
	if (st->in_fd >= 0)
		close(st->in_fd);
	close(st->out_fd);
	if (st->err_fd >= 0)
		close(st->err_fd);
	evbuffer_free(st->inbuf);
	evbuffer_free(st->outbuf);
	free(st->name);
	free(st);
}

static const char *st_stderr_tail(struct mcp_transport *t) {
	return ((struct stdio_transport *)t)->tail;
}

static long st_pid(struct mcp_transport *t) {
	return (long)((struct stdio_transport *)t)->pid;
}

static const struct mcp_transport_ops stdio_ops = {
	.name = "stdio",
	.send = st_send,
	.close = st_close,
	.stderr_tail = st_stderr_tail,
	.pid = st_pid,
};

/* --- opening ------------------------------------------------------------ */

static int st_spawn(const struct mcp_server_def *def, const char *store_id,
                    struct spawn_child *child, char **cause) {
	struct spawn_identity id;
	if (def->user != NULL) {
		char *why = NULL;
		if (spawn_identity_resolve(def->user, NULL, &id, &why) < 0) {
			*cause = xasprintf("cannot start server %s: %s", def->name, why);
			free(why);
			return -1;
		}
	} else {
		spawn_identity_self(&id);
	}
	/* durable: marked, so a dead mcpjobd's servers are stopped at its restart. */
	char **extra = orphan_env(def->env, store_id, "mcp");
	char **env = spawn_build_env(&id, extra);
	strv_free(extra);
	struct spawn_opts o = {
		.argv = def->argv, .env = env, .cwd = def->cwd, .id = &id,
		.stdin_pipe = true, .stdout_pipe = true, .stderr_pipe = true,
	};
	char *why = NULL;
	int rc = spawn_start(&o, child, &why);
	if (rc < 0) {
		*cause = xasprintf("cannot start server %s: %s", def->name, why);
		free(why);
	}
	strv_free(env);
	spawn_identity_clear(&id);
	return rc;
}

struct mcp_transport *mcp_transport_stdio_open(struct event_base *base,
                                               const struct mcp_server_def *def,
                                               const char *store_id,
                                               const struct mcp_transport_cbs *cbs,
                                               char **cause) {
	struct spawn_child child;
	/* A server that dies must cost us EPIPE, not the whole daemon: make sure
	 * SIGPIPE is ignored (children get default dispositions back in spawn). */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	if (def->argv == NULL || def->argv[0] == NULL) {
		*cause = xasprintf("cannot start server %s: no command", def->name);
		return NULL;
	}
	if (st_spawn(def, store_id, &child, cause) < 0)
		return NULL;
	struct stdio_transport *st = xcalloc(1, sizeof *st);
	st->base.ops = &stdio_ops;
	st->evb = base;
	st->cbs = *cbs;
	st->name = xstrdup(def->name);
	st->pid = child.pid;
	st->in_fd = child.stdin_fd;
	st->out_fd = child.stdout_fd;
	st->err_fd = child.stderr_fd;
	st->inbuf = evbuffer_new();
	st->outbuf = evbuffer_new();
	st->timer = evtimer_new(base, st_on_timer, st);
	st->in_ev = event_new(base, st->in_fd, EV_WRITE | EV_PERSIST, st_on_stdin, st);
	st->out_ev = event_new(base, st->out_fd, EV_READ | EV_PERSIST, st_on_stdout, st);
	st->err_ev = event_new(base, st->err_fd, EV_READ | EV_PERSIST, st_on_stderr, st);
	if (!st->inbuf || !st->outbuf || !st->timer || !st->in_ev || !st->out_ev || !st->err_ev)
		log_fatalx("cannot set up events for MCP server %s", def->name);
	event_add(st->out_ev, NULL);
	event_add(st->err_ev, NULL);
	st->watch = spawn_watch(base, st->pid, st_on_exit, st);
	log_debug("mcp server %s started (pid %ld)", st->name, (long)st->pid);
	return &st->base;
}

/* --- synchronous finish (exit path) ------------------------------------- */

/* Wait up to @ms for @pid; true when it has been reaped. */
static bool wait_pid_for(pid_t pid, int ms) {
	for (int waited = 0;; waited += 10) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (waited >= ms)
			return false;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

void mcp_transport_finish_all(void) {
	struct stdio_transport *st;
	while ((st = TAILQ_FIRST(&closing_list)) != NULL) {
		if (!st->exited) {
			spawn_unwatch(st->watch);
			st->watch = NULL;
			st_close_stdin(st);
			if (st->step < SHUT_TERM_SENT &&
			    !wait_pid_for(st->pid, MCP_TRANSPORT_STDIN_GRACE_MS))
				spawn_kill_group(st->pid, SIGTERM);
			if (!wait_pid_for(st->pid, MCP_TRANSPORT_TERM_GRACE_MS)) {
				spawn_kill_group(st->pid, SIGKILL);
				wait_pid_for(st->pid, 5000);
			}
			st->exited = true;
		}
		st->in_handler = false;
		st_free(st);
	}
}
