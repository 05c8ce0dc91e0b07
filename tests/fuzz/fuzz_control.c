/*
 * fuzz_control.c - the control socket's request handling, in-process:
 * a real engine (sim platform, a private state dir) and control server on
 * one event loop, a client socket writing each input as request lines.
 * Whatever a client sends - any method, params, framing, half a line - may
 * not crash, leak or wedge the server: after each input a daemon.hello
 * sentinel must be answered (or, when the input closed the connection with
 * an over-long line, the next connection must be).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/control.h"
#include "daemon/engine.h"
#include "daemon/spawn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SENTINEL[] = "\n{\"jsonrpc\":\"2.0\",\"id\":\"fuzz-end\",\"method\":\"daemon.hello\"}\n";

static struct event_base *base;
static struct engine *engine;
static struct control *control;
static char sock_path[256];
static int client = -1;

static int reload(void *arg, json_t **summary, struct config_errors *errs) {
	return engine_reload(arg, summary, errs);
}

static void write_file(const char *path, const char *text) {
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		log_fatal("cannot write %s", path);
}

static void setup(void) {
	char tmpl[] = "/tmp/fuzz-control-XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (dir == NULL)
		log_fatal("mkdtemp");
	char *cfg = xasprintf("%s/mcpjobd.json", dir), *state = xasprintf("%s/state", dir);
	/* One job that never runs on its own; job.run of it runs /bin/true. */
	write_file(cfg, "{\"jobs\": [{\"id\": \"tick\", \"interval\": \"24h\", \"initial_delay\": "
	                "\"24h\", \"action\": {\"exec\": {\"argv\": [\"/bin/true\"]}}}]}");
	snprintf(sock_path, sizeof sock_path, "%s/control.sock", dir);
	base = event_base_new();
	struct engine_opts eo = {.config_path = cfg, .state_dir = state, .platform = "sim",
	                         .base = base};
	struct config_errors errs = {0};
	char *cause = NULL;
	if (engine_open(&eo, &engine, &errs, &cause) < 0)
		log_fatalx("engine_open: %s", cause ? cause : errs.n ? errs.msgs[0] : "?");
	engine_start(engine);
	struct control_opts co = {.socket_path = sock_path, .listen_fd = -1, .mode = 0600,
	                          .reload = reload, .reload_arg = engine};
	if (control_open(base, engine, &co, &control, &cause) < 0)
		log_fatalx("control_open: %s", cause);
	free(cfg);
	free(state);
}

static void client_connect(void) {
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (client >= 0)
		close(client);
	strcpy(sun.sun_path, sock_path);
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (client < 0 || connect(client, (struct sockaddr *)&sun, sizeof sun) < 0)
		log_fatal("connect %s", sock_path);
}

/* Write @len bytes while turning the loop; false when the server closed us. */
static bool client_send(const char *p, size_t len) {
	for (int spins = 0; len > 0; spins++) {
		ssize_t n = send(client, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return false;
		}
		if (spins > 100000)
			log_fatalx("the control server stopped reading a small input");
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	return true;
}

/* Turn the loop until the sentinel's answer arrives; false on EOF. */
static bool client_wait_sentinel(void) {
	static char buf[1 << 16];
	static size_t have;
	for (int spins = 0; spins < 1000000; spins++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		ssize_t n = recv(client, buf + have, sizeof buf - 1 - have, 0);
		if (n == 0)
			return have = 0, false;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return have = 0, false;
		if (n > 0)
			have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\"fuzz-end\"") != NULL) {
			have = 0;
			return true;
		}
		/* Keep the tail only: the sentinel's answer is one short line. */
		if (have > sizeof buf / 2) {
			memmove(buf, buf + have - 256, 256);
			have = 256;
		}
	}
	log_fatalx("the control server did not answer the sentinel");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (base == NULL) {
		setup();
		client_connect();
	}
	if (client_send((const char *)data, size) && client_send(SENTINEL, sizeof SENTINEL - 1) &&
	    client_wait_sentinel())
		return 0;
	/* Closed (e.g. a line over 1 MiB): a fresh connection must be served. */
	client_connect();
	if (!client_send(SENTINEL, sizeof SENTINEL - 1) || !client_wait_sentinel())
		log_fatalx("the control server does not serve a new connection");
	return 0;
}
