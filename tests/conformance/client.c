/*
 * client.c - mcpjob-conformance-client: the engine's own MCP client
 * (daemon/mcp/mcp.c over daemon/mcp/mcp_http.c) as the client under test of the
 * official conformance suite (@modelcontextprotocol/conformance).
 *
 * The suite runs "mcpjob-conformance-client URL" with the scenario in
 * MCP_CONFORMANCE_SCENARIO. We do what each client scenario asks of a
 * client (list tools, call the scenario's tool), through the same pool,
 * session and transport code mcpjobd uses, with "elicitation": "defaults".
 * Exit 0 when every call succeeded; the suite judges the traffic.
 */
#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_auth.h"
#include "daemon/mcp/mcp_proto.h"

#define CALL_TIMEOUT_MS 20000

struct step {
	struct event_base *base;
	struct mcp_call_result res;
	int done;
};

static void on_done(void *arg, struct mcp_call_result *res) {
	struct step *st = arg;
	st->res = *res;
	memset(res, 0, sizeof *res);
	st->done = 1;
	event_base_loopbreak(st->base);
}

static int wait_step(struct step *st, const char *what) {
	while (!st->done)
		event_base_loop(st->base, EVLOOP_ONCE);
	int ok = st->res.status == MCP_OK;
	fprintf(stderr, "mcpjob-conformance-client: %s: %s: %s\n", what, ok ? "ok" : "FAILED",
	        st->res.message ? st->res.message : "");
	mcp_call_result_clear(&st->res);
	st->done = 0;
	return ok ? 0 : -1;
}

static size_t discard(char *buf, size_t size, size_t n, void *arg) {
	(void)buf;
	(void)arg;
	return size * n;
}

static int list_tools(struct mcp_pool *pool, struct step *st) {
	mcp_list_tools(pool, "sut", CALL_TIMEOUT_MS, on_done, st);
	return wait_step(st, "tools/list");
}

static int call(struct mcp_pool *pool, struct step *st, const char *tool, json_t *args) {
	mcp_call_tool(pool, "sut", tool, args, CALL_TIMEOUT_MS, NULL, on_done, st);
	json_decref(args);
	return wait_step(st, tool);
}

/* --- authorization: an in-memory store and a headless login ------------------ */

#define REDIRECT_URI "http://127.0.0.1:33418/callback" /* never listened on: we read Location */
#define CIMD_URL "https://conformance-test.local/client-metadata.json"

static struct mcp_auth_grant kept;
static bool have_kept;

static int mem_load(void *arg, const char *server, struct mcp_auth_grant *out) {
	(void)arg;
	(void)server;
	if (!have_kept)
		return -1;
	mcp_auth_grant_copy(out, &kept);
	return 0;
}

static int mem_save(void *arg, const char *server, const struct mcp_auth_grant *g,
                    char **cause) {
	(void)arg;
	(void)server;
	(void)cause;
	mcp_auth_grant_clear(&kept);
	mcp_auth_grant_copy(&kept, g);
	have_kept = true;
	return 0;
}

static void mem_drop(void *arg, const char *server, const char *why) {
	(void)arg;
	fprintf(stderr, "mcpjob-conformance-client: grant of %s dropped: %s\n", server, why);
	mcp_auth_grant_clear(&kept);
	have_kept = false;
}

struct login_wait {
	struct event_base *base;
	bool got_url, done, ok;
	char *url, *cause;
};

static void on_login_url(void *arg, const char *url, const char *cause) {
	struct login_wait *lw = arg;
	lw->got_url = true;
	lw->url = url ? xstrdup(url) : NULL;
	lw->cause = cause ? xstrdup(cause) : NULL;
	event_base_loopbreak(lw->base);
}

static void on_login_done(void *arg, bool ok, const char *cause) {
	struct login_wait *lw = arg;
	lw->done = true;
	lw->ok = ok;
	free(lw->cause);
	lw->cause = cause ? xstrdup(cause) : NULL;
	event_base_loopbreak(lw->base);
}

/* The value of @key in the query of @url (decoded), or NULL. */
static char *query_param(const char *url, const char *key) {
	CURLU *u = curl_url();
	char *q = NULL, *out = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK) {
		size_t kl = strlen(key);
		for (char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
			if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
				size_t vl = strcspn(p + kl + 1, "&");
				int n = 0;
				char *v = curl_easy_unescape(NULL, p + kl + 1, (int)vl, &n);
				out = v ? xstrndup(v, (size_t)n) : NULL;
				curl_free(v);
				break;
			}
		}
	}
	curl_free(q);
	curl_url_cleanup(u);
	return out;
}

/* The person's part, without a person: open the URL, take the redirect's code and state. */
static char *follow_authorize(const char *url) {
	CURL *e = curl_easy_init();
	char *loc = NULL, *out = NULL;
	long status = 0;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	if (curl_easy_perform(e) == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc);
		if (loc)
			out = xstrdup(loc);
	}
	curl_easy_cleanup(e);
	if (out == NULL)
		fprintf(stderr, "mcpjob-conformance-client: the authorization URL answered HTTP %ld "
		        "without a redirect\n", status);
	return out;
}

static int headless_login(struct mcp_pool *pool, struct event_base *base) {
	struct login_wait lw = {.base = base};
	char *cause = NULL;
	struct mcp_auth_login *l = mcp_auth_login_start(pool, "sut", REDIRECT_URI, on_login_url,
	                                                &lw, &cause);
	if (l == NULL) {
		fprintf(stderr, "mcpjob-conformance-client: login: %s\n", cause);
		free(cause);
		return -1;
	}
	while (!lw.got_url)
		event_base_loop(base, EVLOOP_ONCE);
	if (lw.url == NULL) {
		fprintf(stderr, "mcpjob-conformance-client: login: %s\n", lw.cause);
		mcp_auth_login_cancel(l);
		free(lw.cause);
		return -1;
	}
	char *loc = follow_authorize(lw.url);
	char *code = loc ? query_param(loc, "code") : NULL;
	char *state = loc ? query_param(loc, "state") : NULL;
	mcp_auth_login_finish(l, code, state, on_login_done, &lw);
	while (!lw.done)
		event_base_loop(base, EVLOOP_ONCE);
	fprintf(stderr, "mcpjob-conformance-client: login: %s%s\n", lw.ok ? "ok" : "FAILED: ",
	        lw.ok ? "" : lw.cause);
	free(loc);
	free(code);
	free(state);
	free(lw.url);
	free(lw.cause);
	return lw.ok ? 0 : -1;
}

/* tools/list (@tool NULL) or tools/call, with a login and a retry when it needs one. */
static int step_authorized(struct mcp_pool *pool, struct step *st, const char *tool,
                           json_t *args) {
	int rc = -1;
	for (int logins = 0;; logins++) {
		if (tool)
			mcp_call_tool(pool, "sut", tool, args, CALL_TIMEOUT_MS, NULL, on_done, st);
		else
			mcp_list_tools(pool, "sut", CALL_TIMEOUT_MS, on_done, st);
		while (!st->done)
			event_base_loop(st->base, EVLOOP_ONCE);
		bool auth = st->res.status == MCP_AUTH_REQUIRED;
		rc = wait_step(st, tool ? tool : "tools/list");
		/* One login, then at most MCP_AUTH_STEP_UP_MAX for more scope. */
		if (!auth || logins > MCP_AUTH_STEP_UP_MAX || headless_login(pool, st->base) != 0)
			break;
	}
	json_decref(args);
	return rc;
}

/* The scenario's steps; unknown scenarios get the handshake and a tools/list. */
static int run_scenario(struct mcp_pool *pool, struct step *st, const char *scenario) {
	if (strncmp(scenario, "auth/", 5) == 0) {
		if (step_authorized(pool, st, NULL, NULL) != 0)
			return -1;
		return step_authorized(pool, st, "test-tool", json_object());
	}
	if (list_tools(pool, st) != 0)
		return -1;
	if (strcmp(scenario, "tools_call") == 0)
		return call(pool, st, "add_numbers", json_pack("{s:i, s:i}", "a", 2, "b", 3));
	if (strcmp(scenario, "sse-retry") == 0)
		return call(pool, st, "test_reconnection", json_object());
	if (strcmp(scenario, "elicitation-sep1034-client-defaults") == 0)
		return call(pool, st, "test_client_elicitation_defaults", json_object());
	return 0;
}

/*
 * What a person would write in "auth" for this server, from the suite's
 * MCP_CONFORMANCE_CONTEXT: pre-registered credentials (secrets passed as
 * ${env:...} references, as in a real configuration), the grant the
 * scenario is about, and a Client ID Metadata Document URL (used only
 * where the authorization server supports them).
 */
static void auth_from_context(const char *scenario, struct mcp_auth_def *a) {
	json_t *ctx = getenv("MCP_CONFORMANCE_CONTEXT")
	                  ? json_loads(getenv("MCP_CONFORMANCE_CONTEXT"), 0, NULL) : NULL;
	const char *id = json_string_value(json_object_get(ctx, "client_id"));
	const char *secret = json_string_value(json_object_get(ctx, "client_secret"));
	const char *key = json_string_value(json_object_get(ctx, "private_key_pem"));
	a->client_metadata_url = xstrdup(CIMD_URL);
	if (id)
		a->client_id = xstrdup(id);
	if (secret) {
		setenv("MCPJOB_CONFORMANCE_SECRET", secret, 1);
		a->client_secret = xstrdup("${env:MCPJOB_CONFORMANCE_SECRET}");
	}
	if (key) {
		setenv("MCPJOB_CONFORMANCE_KEY", key, 1);
		a->private_key = xstrdup("${env:MCPJOB_CONFORMANCE_KEY}");
	}
	a->grant = strncmp(scenario, "auth/client-credentials", 23) == 0
	               ? MCP_GRANT_CLIENT_CREDENTIALS : MCP_GRANT_AUTHORIZATION_CODE;
	const char *id_token = json_string_value(json_object_get(ctx, "idp_id_token"));
	if (id_token) { /* SEP-990: the enterprise IdP's ID token, exchanged for an ID-JAG */
		setenv("MCPJOB_CONFORMANCE_ID_TOKEN", id_token, 1);
		a->id_token = xstrdup("${env:MCPJOB_CONFORMANCE_ID_TOKEN}");
		a->idp_token_endpoint =
		    xstrdup_or_null(json_string_value(json_object_get(ctx, "idp_token_endpoint")));
		a->idp_client_id =
		    xstrdup_or_null(json_string_value(json_object_get(ctx, "idp_client_id")));
		a->grant = MCP_GRANT_JWT_BEARER;
	}
	json_decref(ctx);
}

int main(int argc, char **argv) {
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: mcpjob-conformance-client [--sse] [--login-first] URL\n"
		                "(run by the MCP conformance suite; the scenario comes from "
		                "MCP_CONFORMANCE_SCENARIO; --sse: URL is a 2024-11-05 HTTP+SSE "
		                "endpoint; --login-first: log in before the first request)\n");
		return 2;
	}
	const char *scenario = getenv("MCP_CONFORMANCE_SCENARIO");
	log_init("mcpjob-conformance-client", LOG_TARGET_STDERR, getenv("MCPJOB_VERBOSE") != NULL);
	bool sse = false, login_first = false;
	for (int i = 1; i < argc - 1; i++) {
		sse = sse || strcmp(argv[i], "--sse") == 0;
		login_first = login_first || strcmp(argv[i], "--login-first") == 0;
	}
	struct mcp_server_def def = {
		.name = "sut",
		.type = sse ? MCP_SERVER_SSE : MCP_SERVER_HTTP,
		.url = argv[argc - 1],
		.elicitation = MCP_ELICIT_DEFAULTS,
		.idle_timeout_ms = 60000,
	};
	struct mcp_auth_def adef = {0};
	bool auth = scenario && strncmp(scenario, "auth/", 5) == 0;
	if (auth) {
		auth_from_context(scenario, &adef);
		def.auth = &adef;
	}
	struct mcp_server_def *defs[] = {&def};
	struct config cfg = {.servers = defs, .nservers = 1};
	struct step st = {.base = event_base_new()};
	struct mcp_pool *pool = mcp_pool_new(st.base, &cfg);
	struct mcp_auth_store store = {mem_load, mem_save, mem_drop, NULL};
	if (auth)
		mcp_pool_set_auth_store(pool, &store);
	/* --login-first: as `mcpjobctl auth login` before any job ran (no 401 seen yet). */
	int rc = login_first && headless_login(pool, st.base) != 0
	             ? -1 : run_scenario(pool, &st, scenario ? scenario : "");
	mcp_pool_free(pool);
	event_base_free(st.base);
	if (auth) /* for tests of refusals: whether anything was kept (never what) */
		fprintf(stderr, "mcpjob-conformance-client: grant kept: %s\n", have_kept ? "yes" : "no");
	mcp_auth_grant_clear(&kept);
	free(adef.client_id);
	free(adef.client_secret);
	free(adef.client_metadata_url);
	free(adef.private_key);
	free(adef.id_token);
	free(adef.idp_token_endpoint);
	free(adef.idp_client_id);
	return rc == 0 ? 0 : 1;
}
