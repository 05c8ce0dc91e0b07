/*
 * test_mcp_auth.c - the parts of the OAuth flow (daemon/mcp/mcp_auth.c)
 * that need no authorization server: what a login refuses before it
 * starts, that callbacks come from the loop and never from inside a call,
 * grants copied and cleansed, secrets with line breaks (PEM keys), and
 * the 2025-03-26 metadata rule. The flow against servers is in
 * tests/e2e/test_conformance.py and tests/e2e/test_mcp_auth.py.
 */
#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_auth.h"
#include "daemon/mcp/mcp_headers.h"
#include "daemon/mcp/oauth.h"

struct fixture {
	struct event_base *base;
	struct mcp_server_def http, stdio, cc;
	struct mcp_auth_def cc_auth;
	struct mcp_server_def *defs[3];
	struct config cfg;
	struct mcp_pool *pool;
};

static void fixture_init(struct fixture *f) {
	memset(f, 0, sizeof *f);
	f->base = event_base_new();
	/* Port 1 on loopback: nothing listens, the connection is refused at once. */
	f->http = (struct mcp_server_def){.name = "remote", .type = MCP_SERVER_HTTP,
	                                  .url = "http://127.0.0.1:1/mcp"};
	static char *argv[] = {"true", NULL};
	f->stdio = (struct mcp_server_def){.name = "local", .type = MCP_SERVER_STDIO, .argv = argv};
	f->cc_auth = (struct mcp_auth_def){.client_id = "m2m",
	                                   .grant = MCP_GRANT_CLIENT_CREDENTIALS};
	f->cc = (struct mcp_server_def){.name = "machine", .type = MCP_SERVER_HTTP,
	                                .url = "http://127.0.0.1:1/mcp", .auth = &f->cc_auth};
	f->defs[0] = &f->http;
	f->defs[1] = &f->stdio;
	f->defs[2] = &f->cc;
	f->cfg = (struct config){.servers = f->defs, .nservers = 3};
	f->pool = mcp_pool_new(f->base, &f->cfg);
}

static void fixture_free(struct fixture *f) {
	mcp_pool_free(f->pool);
	event_base_free(f->base);
}

struct seen {
	int calls;
	bool got_url;
	char *cause;
	enum mcp_auth_renew_result rr;
};

static void on_url(void *arg, const char *url, const char *cause) {
	struct seen *s = arg;
	s->calls++;
	s->got_url = url != NULL;
	s->cause = cause ? xstrdup(cause) : NULL;
}

START_TEST(test_login_refuses_unknown_stdio_m2m_servers_and_remote_redirects) {
	struct fixture f;
	fixture_init(&f);
	struct seen s = {0};
	char *cause = NULL;
	const char *ok_redirect = "http://127.0.0.1:8765/callback";
	ck_assert_ptr_null(mcp_auth_login_start(f.pool, "nope", ok_redirect, on_url, &s, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "no server nope"));
	free(cause);
	ck_assert_ptr_null(mcp_auth_login_start(f.pool, "local", ok_redirect, on_url, &s, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "not an http or sse server"));
	free(cause);
	ck_assert_ptr_null(mcp_auth_login_start(f.pool, "machine", ok_redirect, on_url, &s, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "client_credentials"));
	free(cause);
	/* RFC 8252: a plain-http redirect must stay on this machine. */
	ck_assert_ptr_null(mcp_auth_login_start(f.pool, "remote", "http://evil.example.com/cb",
	                                        on_url, &s, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "loopback"));
	free(cause);
	ck_assert_int_eq(s.calls, 0);
	fixture_free(&f);
}
END_TEST

START_TEST(test_login_to_an_unreachable_server_says_so_from_the_loop) {
	struct fixture f;
	fixture_init(&f);
	struct seen s = {0};
	char *cause = NULL;
	struct mcp_auth_login *l = mcp_auth_login_start(f.pool, "remote",
	                                                "http://127.0.0.1:8765/callback", on_url,
	                                                &s, &cause);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(s.calls, 0); /* never from inside the call */
	while (s.calls == 0)
		event_base_loop(f.base, EVLOOP_ONCE);
	ck_assert_int_eq(s.calls, 1);
	ck_assert(!s.got_url);
	ck_assert_ptr_nonnull(strstr(s.cause, "server remote: cannot reach the server"));
	free(s.cause);
	mcp_auth_login_cancel(l);
	fixture_free(&f);
}
END_TEST

START_TEST(test_cancelled_login_calls_nothing_back) {
	struct fixture f;
	fixture_init(&f);
	struct seen s = {0};
	char *cause = NULL;
	struct mcp_auth_login *l = mcp_auth_login_start(f.pool, "remote",
	                                                "http://[::1]:8765/callback", on_url, &s,
	                                                &cause);
	ck_assert_ptr_nonnull(l);
	mcp_auth_login_cancel(l);
	event_base_loop(f.base, EVLOOP_NONBLOCK);
	ck_assert_int_eq(s.calls, 0);
	fixture_free(&f);
}
END_TEST

static void on_renew(void *arg, enum mcp_auth_renew_result rr, const struct mcp_auth_grant *g,
                     const char *cause) {
	struct seen *s = arg;
	s->calls++;
	s->rr = rr;
	s->got_url = g != NULL;
	s->cause = cause ? xstrdup(cause) : NULL;
}

START_TEST(test_renewal_without_refresh_token_or_client_credentials_needs_a_login) {
	struct fixture f;
	fixture_init(&f);
	struct seen s = {0};
	struct mcp_auth_grant g = {.access_token = "expired"};
	struct mcp_auth_renew *r = mcp_auth_renew_start(f.base, NULL, &f.http, &g, NULL, NULL,
	                                                on_renew, &s);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(s.calls, 0);
	while (s.calls == 0)
		event_base_loop(f.base, EVLOOP_ONCE);
	ck_assert_int_eq(s.rr, MCP_AUTH_NEED_LOGIN);
	ck_assert(!s.got_url);
	ck_assert_str_eq(s.cause, "waiting for authorization: run `mcpjobctl auth login remote`");
	free(s.cause);
	fixture_free(&f);
}
END_TEST

START_TEST(test_grant_copy_is_deep_and_clear_zeroes) {
	struct mcp_auth_grant a = {.access_token = xstrdup("at"), .refresh_token = xstrdup("rt"),
	                           .scope = xstrdup("s"), .expires_at_ms = 5,
	                           .client_id = xstrdup("c"), .issuer = xstrdup("https://as"),
	                           .token_auth_method = xstrdup("none")};
	struct mcp_auth_grant b = {0};
	mcp_auth_grant_copy(&b, &a);
	ck_assert_ptr_ne(a.access_token, b.access_token);
	ck_assert_str_eq(b.access_token, "at");
	ck_assert_str_eq(b.refresh_token, "rt");
	ck_assert_str_eq(b.token_auth_method, "none");
	ck_assert_ptr_null(b.client_secret);
	ck_assert_int_eq(b.expires_at_ms, 5);
	mcp_auth_grant_clear(&a);
	ck_assert_ptr_null(a.access_token);
	ck_assert_int_eq(a.expires_at_ms, 0);
	ck_assert_str_eq(b.scope, "s");
	mcp_auth_grant_clear(&b);
	mcp_auth_grant_clear(NULL);
}
END_TEST

START_TEST(test_secret_keeps_line_breaks_a_header_refuses_them) {
	setenv("TEST_MCP_AUTH_PEM", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
	       1);
	char *cause = NULL, *v = mcp_headers_expand_secret("${env:TEST_MCP_AUTH_PEM}", &cause);
	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(strstr(v, "\nAAAA\n"));
	free(v);
	ck_assert_ptr_null(mcp_headers_expand("${env:TEST_MCP_AUTH_PEM}", &cause));
	ck_assert_ptr_nonnull(strstr(cause, "line break"));
	free(cause);
	ck_assert_ptr_null(mcp_headers_expand_secret("${env:TEST_MCP_AUTH_UNSET}", &cause));
	ck_assert_ptr_nonnull(strstr(cause, "TEST_MCP_AUTH_UNSET is not set"));
	free(cause);
}
END_TEST

START_TEST(test_legacy_metadata_names_its_issuer_on_the_same_origin) {
	const char *same = "{\"issuer\":\"http://127.0.0.1:9/oauth\",\"token_endpoint\":"
	                   "\"http://127.0.0.1:9/oauth/token\",\"authorization_endpoint\":"
	                   "\"http://127.0.0.1:9/oauth/authorize\"}";
	const char *other = "{\"issuer\":\"https://as.example.com\",\"token_endpoint\":"
	                    "\"https://as.example.com/token\"}";
	struct oauth_as_meta m;
	char *cause = NULL;
	ck_assert_int_eq(oauth_as_meta_parse_legacy(same, strlen(same), "http://127.0.0.1:9", &m,
	                                            &cause), 0);
	ck_assert_str_eq(m.issuer, "http://127.0.0.1:9/oauth");
	ck_assert_str_eq(m.token_endpoint, "http://127.0.0.1:9/oauth/token");
	oauth_as_meta_clear(&m);
	ck_assert_int_eq(oauth_as_meta_parse_legacy(other, strlen(other), "http://127.0.0.1:9", &m,
	                                            &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "on another origin"));
	free(cause);
	/* With a known issuer (from PRM) the RFC 8414 rule stays strict. */
	ck_assert_int_eq(oauth_as_meta_parse(same, strlen(same), "http://127.0.0.1:9", &m, &cause),
	                 -1);
	free(cause);
}
END_TEST

static Suite *mcp_auth_suite(void) {
	Suite *s = suite_create("mcp_auth");
	TCase *tc = tcase_create("mcp_auth");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_login_refuses_unknown_stdio_m2m_servers_and_remote_redirects);
	tcase_add_test(tc, test_login_to_an_unreachable_server_says_so_from_the_loop);
	tcase_add_test(tc, test_cancelled_login_calls_nothing_back);
	tcase_add_test(tc, test_renewal_without_refresh_token_or_client_credentials_needs_a_login);
	tcase_add_test(tc, test_grant_copy_is_deep_and_clear_zeroes);
	tcase_add_test(tc, test_secret_keeps_line_breaks_a_header_refuses_them);
	tcase_add_test(tc, test_legacy_metadata_names_its_issuer_on_the_same_origin);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(mcp_auth_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
