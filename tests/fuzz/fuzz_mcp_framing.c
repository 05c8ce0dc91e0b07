/*
 * fuzz_mcp_framing.c - what an MCP server writes on stdout, through the
 * real stdio transport: its line splitting over a real pipe (lines cut
 * across reads and inputs, NULs, over-long lines) and the parse of each
 * line as the session does it (JSON-RPC, then an initialize or tools/call
 * result). The "server" is /bin/cat, so each input we send comes back as
 * its stdout; a transport that reports a framing failure is replaced.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/jsonrpc.h"
#include "common/timeutil.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_proto.h"
#include "daemon/mcp/mcp_transport.h"
#include "daemon/spawn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct mcp_transport *t;
static bool closed;
static size_t sent_total;   /* bytes sent to this transport */
static size_t sent_to_eol;  /* bytes sent up to and including the last '\n' */
static size_t received;     /* bytes handed back as lines, '\n' included */

static void on_line(void *arg, const char *line, size_t len) {
	struct rpc_msg m;
	(void)arg;
	received += len + 1;
	rpc_parse(line, len, &m);
	if (m.kind == RPC_RESPONSE || m.kind == RPC_ERROR_REPLY) {
		char *cause = NULL;
		if (m.kind == RPC_RESPONSE)
			mcp_proto_check_initialize("fuzz", m.result, &cause);
		free(cause);
		struct mcp_call_result res = {0};
		mcp_proto_tool_result("tool", m.result, m.error, &res);
		mcp_call_result_clear(&res);
	}
	rpc_msg_clear(&m);
}

static void on_close(void *arg, const char *why) {
	(void)arg;
	(void)why;
	closed = true;
}

static void transport_open(void) {
	static char *argv[] = {"/bin/cat", NULL};
	struct mcp_server_def def = {.name = "fuzz", .argv = argv};
	struct mcp_transport_cbs cbs = {on_line, on_close, NULL};
	char *cause = NULL;
	if (t != NULL)
		t->ops->close(t);
	closed = false;
	sent_total = sent_to_eol = received = 0;
	t = mcp_transport_stdio_open(base, &def, NULL, &cbs, &cause);
	if (t == NULL)
		log_fatalx("cannot start /bin/cat: %s", cause);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (base == NULL) {
		base = event_base_new();
		transport_open();
	}
	const uint8_t *eol = size ? memrchr(data, '\n', size) : NULL;
	size_t before = sent_total;
	if (t->ops->send(t, (const char *)data, size) < 0) {
		transport_open();
		return 0;
	}
	sent_total += size;
	if (eol != NULL)
		sent_to_eol = before + (size_t)(eol - data) + 1;
	/* Every complete line we sent must come back as lines (or the framing
	 * broke: a line over MCP_TRANSPORT_LINE_MAX). */
	int64_t deadline = time_mono_ms() + 20000;
	while (!closed && received < sent_to_eol) {
		struct timeval tick = {0, 50 * 1000};
		if (time_mono_ms() > deadline)
			log_fatalx("the stdio transport lost %zu bytes", sent_to_eol - received);
		event_base_loopexit(base, &tick); /* never block longer than a tick */
		event_base_loop(base, EVLOOP_ONCE);
	}
	if (closed)
		transport_open();
	return 0;
}
