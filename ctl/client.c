/*
 * client.c - blocking JSON-RPC client on the control socket for mcpjobctl.
 *
 * One connection per mcpjobctl invocation. Requests get increasing integer
 * ids; a reply whose id is not the one awaited is the pipelined hello's
 * (checked for a version mismatch) or stale, and is dropped. Lines are
 * bounded by CTL_MAX_REPLY so a broken daemon cannot make us eat memory.
 */
#include "ctl/client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/jsonrpc.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

struct ctl_client {
	int fd;
	char *path;
	char *buf; /* bytes read but not yet consumed */
	size_t len;
	size_t cap;
	bool eof;
	long long next_id;
	long long hello_id; /* 0 once its reply has been seen */
	int timeout_ms;
};

static char *connect_cause(const char *path, int err) {
	const char *hint = "";
	if (err == ENOENT || err == ECONNREFUSED)
		hint = " (is mcpjobd running?)";
	else if (err == EACCES || err == EPERM)
		hint = " (is your user allowed to use this socket?)";
	return xasprintf("cannot connect to %s: %s%s", path, strerror(err), hint);
}

static int send_all(struct ctl_client *c, const char *data, size_t len, char **cause) {
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*cause = xasprintf("cannot send to mcpjobd on %s: %s", c->path, strerror(errno));
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static long long send_request(struct ctl_client *c, const char *method, json_t *params,
                              char **cause) {
	long long id = c->next_id++;
	json_t *jid = json_integer(id);
	json_t *req = rpc_request(jid, method, params);
	size_t len;
	char *line = rpc_encode(req, &len);
	int rc = send_all(c, line, len, cause);
	free(line);
	json_decref(req);
	json_decref(jid);
	return rc == 0 ? id : -1;
}

struct ctl_client *ctl_client_connect(const char *path, char **cause) {
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path) {
		*cause = xasprintf("cannot connect to %s: the path is longer than %zu bytes", path,
		                   sizeof sun.sun_path - 1);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*cause = xasprintf("cannot create a socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		*cause = connect_cause(path, errno);
		close(fd);
		return NULL;
	}
	struct ctl_client *c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->path = xstrdup(path);
	c->next_id = 1;
	c->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	json_t *p = json_pack("{s:s, s:i}", "client", "mcpjobctl", "protocol",
	                      MCPJOB_PROTOCOL_VERSION);
	char *ignored = NULL;
	/* A failed send shows up again, with its reason, on the first call. */
	c->hello_id = send_request(c, RPC_M_HELLO, p, &ignored);
	if (c->hello_id < 0)
		c->hello_id = 0;
	free(ignored);
	json_decref(p);
	return c;
}

void ctl_client_free(struct ctl_client *c) {
	if (c == NULL)
		return;
	close(c->fd);
	free(c->path);
	free(c->buf);
	free(c);
}

void ctl_client_set_timeout(struct ctl_client *c, int timeout_ms) {
	c->timeout_ms = timeout_ms;
}

/* Read more bytes into the buffer. 1: got some, 0: EOF, -1: error/timeout. */
static int fill(struct ctl_client *c, int64_t deadline, char **cause) {
	if (c->len == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 65536;
		c->buf = xrealloc(c->buf, c->cap);
	}
	for (;;) {
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - time_mono_ms();
			wait = left > 0 ? (int)left : 0;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int r = poll(&pfd, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			*cause = xasprintf("mcpjobd did not reply within %ds", c->timeout_ms / 1000);
			return -1;
		}
		ssize_t n = r < 0 ? -1 : read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*cause = xasprintf("cannot read from mcpjobd: %s", strerror(errno));
			return -1;
		}
		c->len += (size_t)n;
		return n > 0;
	}
}

/*
 * Next line into a new string (without '\n'). 1: line, 0: clean EOF between
 * lines, -1 with *cause: error, timeout, EOF inside a line, over-long line.
 */
static int read_line(struct ctl_client *c, int timeout_ms, char **line, size_t *linelen,
                     char **cause) {
	int64_t deadline = timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms;
	size_t scanned = 0;
	for (;;) {
		char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf);
			*line = xmalloc(n + 1);
			memcpy(*line, c->buf, n);
			(*line)[n] = '\0';
			*linelen = n;
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return 1;
		}
		scanned = c->len;
		if (c->len > CTL_MAX_REPLY) {
			*cause = xasprintf("mcpjobd sent a line longer than %d MiB", CTL_MAX_REPLY >> 20);
			return -1;
		}
		int r = fill(c, deadline, cause);
		if (r < 0)
			return -1;
		if (r == 0 && c->len == 0)
			return 0;
		if (r == 0) {
			*cause = xstrdup("mcpjobd closed the connection in the middle of a reply");
			return -1;
		}
	}
}

/* The hello reply: only a version mismatch matters to the caller. */
static int check_hello(struct rpc_msg *m, char **cause) {
	if (m->kind != RPC_ERROR_REPLY)
		return 0;
	json_t *code = json_object_get(m->error, "code");
	if (json_integer_value(code) != RPC_E_VERSION_MISMATCH)
		return 0;
	const char *msg = json_string_value(json_object_get(m->error, "message"));
	*cause = xasprintf("%s (mcpjobctl speaks protocol %d)",
	                   msg ? msg : "protocol version mismatch", MCPJOB_PROTOCOL_VERSION);
	return -1;
}

static enum ctl_reply take_reply(struct rpc_msg *m, json_t **out, char **cause) {
	if (m->kind == RPC_RESPONSE) {
		*out = json_incref(m->result);
		return CTL_REPLY_OK;
	}
	const char *msg = json_string_value(json_object_get(m->error, "message"));
	*cause = xstrdup(msg ? msg : "mcpjobd reported an error without a message");
	*out = json_incref(m->error);
	return CTL_REPLY_ERROR;
}

/* What one parsed line means while waiting for reply @id. */
static int classify(struct ctl_client *c, long long id, struct rpc_msg *m, json_t **out,
                    enum ctl_reply *rep, char **cause) {
	if (m->kind == RPC_INVALID) {
		*cause = xasprintf("mcpjobd sent something that is not JSON-RPC: %s", m->err_text);
		*rep = CTL_REPLY_FAIL;
		return 1;
	}
	if (m->kind != RPC_RESPONSE && m->kind != RPC_ERROR_REPLY)
		return 0; /* an event notification, or a request we do not serve */
	if (json_is_null(m->id)) {
		/* Not tied to a request: the daemon refuses the connection. */
		*rep = take_reply(m, out, cause);
		return 1;
	}
	long long got = json_is_integer(m->id) ? json_integer_value(m->id) : -1;
	if (c->hello_id != 0 && got == c->hello_id) {
		c->hello_id = 0;
		if (check_hello(m, cause) < 0) {
			*rep = CTL_REPLY_FAIL;
			return 1;
		}
		return 0;
	}
	if (got != id)
		return 0;
	*rep = take_reply(m, out, cause);
	return 1;
}

static enum ctl_reply wait_reply(struct ctl_client *c, long long id, json_t **out,
                                 char **cause) {
	for (;;) {
		char *line = NULL;
		size_t len = 0;
		int r = read_line(c, c->timeout_ms, &line, &len, cause);
		if (r < 0)
			return CTL_REPLY_FAIL;
		if (r == 0) {
			*cause = xstrdup("mcpjobd closed the connection without replying");
			return CTL_REPLY_FAIL;
		}
		struct rpc_msg m;
		enum ctl_reply rep = CTL_REPLY_FAIL;
		rpc_parse(line, len, &m);
		free(line);
		int done = classify(c, id, &m, out, &rep, cause);
		rpc_msg_clear(&m);
		if (done)
			return rep;
	}
}

enum ctl_reply ctl_client_call(struct ctl_client *c, const char *method, json_t *params,
                               json_t **out, char **cause) {
	*out = NULL;
	long long id = send_request(c, method, params, cause);
	if (id >= 0)
		return wait_reply(c, id, out, cause);
	/* The daemon may have said why it hung up (a version mismatch, too
	 * many connections) before closing; that beats "Broken pipe". */
	char *why = NULL;
	json_t *err = NULL;
	enum ctl_reply rep = wait_reply(c, 0, &err, &why);
	if (rep == CTL_REPLY_FAIL && c->hello_id != 0) {
		free(why);
		return CTL_REPLY_FAIL;
	}
	free(*cause);
	*cause = why;
	*out = err;
	return rep;
}

int ctl_client_next_event(struct ctl_client *c, json_t **params, char **cause) {
	for (;;) {
		char *line = NULL;
		size_t len = 0;
		int r = read_line(c, -1, &line, &len, cause);
		if (r <= 0)
			return r;
		struct rpc_msg m;
		rpc_parse(line, len, &m);
		free(line);
		if (m.kind == RPC_NOTIFICATION && strcmp(m.method, RPC_M_EVENT) == 0 &&
		    json_is_object(m.params)) {
			*params = json_incref(m.params);
			rpc_msg_clear(&m);
			return 1;
		}
		rpc_msg_clear(&m);
	}
}
