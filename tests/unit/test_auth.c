/*
 * test_auth.c - the token keeper (daemon/auth.c): a grant round-trips
 * through its file, the file and folder are private, a status shows no
 * secret, drop and logout remove the file and say so, and what cannot be a
 * grant (a bad name, an oversized or damaged file) is never taken for one.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/auth.h"

static char tmpdir[64];

static void setup(void) {
	strcpy(tmpdir, "/tmp/test_auth.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
	char *cmd = xasprintf("rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

/* What the pool's mcp_auth_grant_clear() does, without the pool. */
static void grant_free(struct mcp_auth_grant *g) {
	free(g->access_token);
	free(g->refresh_token);
	free(g->scope);
	free(g->client_id);
	free(g->client_secret);
	free(g->issuer);
	free(g->token_endpoint);
	memset(g, 0, sizeof *g);
}

struct changes {
	int authorized, withdrawn;
	char server[64], why[256];
};

static void on_change(void *arg, const char *server, bool authorized, const char *why) {
	struct changes *c = arg;
	if (authorized)
		c->authorized++;
	else
		c->withdrawn++;
	snprintf(c->server, sizeof c->server, "%s", server);
	snprintf(c->why, sizeof c->why, "%s", why ? why : "(none)");
}

static const struct mcp_auth_grant sample = {
    .access_token = "AT-s3cret", .refresh_token = "RT-s3cret", .scope = "mcp:read",
    .expires_at_ms = 1796000000000, .client_id = "CID-s3cret", .client_secret = "CS-s3cret",
    .issuer = "http://127.0.0.1:9/", .token_endpoint = "http://127.0.0.1:9/token",
    .obtained_at_ms = 1795990000000};

static char *file_text(const char *path) {
	FILE *fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	char *buf = xcalloc(1, 8192);
	size_t n = fread(buf, 1, 8191, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

START_TEST(test_grant_round_trips_through_a_private_file) {
	char *cause = NULL;
	struct auth *a = auth_new(tmpdir, &cause);
	ck_assert_msg(a != NULL, "%s", cause);
	struct changes ch = {0};
	auth_set_change_fn(a, on_change, &ch);
	struct mcp_auth_store st = auth_store(a);
	struct mcp_auth_grant g = {0};
	ck_assert_int_eq(st.load(st.arg, "notes", &g), -1); /* none yet */
	ck_assert(!auth_has_grant(a, "notes"));
	ck_assert_int_eq(st.save(st.arg, "notes", &sample, &cause), 0);
	ck_assert_int_eq(ch.authorized, 1);
	ck_assert_str_eq(ch.server, "notes");
	ck_assert_int_eq(st.load(st.arg, "notes", &g), 0);
	ck_assert_str_eq(g.access_token, "AT-s3cret");
	ck_assert_str_eq(g.refresh_token, "RT-s3cret");
	ck_assert_str_eq(g.scope, "mcp:read");
	ck_assert_str_eq(g.client_id, "CID-s3cret");
	ck_assert_str_eq(g.client_secret, "CS-s3cret");
	ck_assert_str_eq(g.issuer, "http://127.0.0.1:9/");
	ck_assert_str_eq(g.token_endpoint, "http://127.0.0.1:9/token");
	ck_assert(g.expires_at_ms == sample.expires_at_ms);
	ck_assert(g.obtained_at_ms == sample.obtained_at_ms);
	grant_free(&g);
	/* Private: the folder 0700, the file 0600, no temporary file left. */
	struct stat sb;
	char *dir = xasprintf("%s/auth", tmpdir), *file = xasprintf("%s/auth/notes.json", tmpdir);
	char *tmp = xasprintf("%s/auth/.notes.json.tmp", tmpdir);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(file, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_ne(access(tmp, F_OK), 0);
	/* A second save replaces the first (a refresh with rotation). */
	struct mcp_auth_grant g2 = sample;
	g2.access_token = "AT-2";
	g2.refresh_token = NULL;
	ck_assert_int_eq(st.save(st.arg, "notes", &g2, &cause), 0);
	ck_assert_int_eq(st.load(st.arg, "notes", &g), 0);
	ck_assert_str_eq(g.access_token, "AT-2");
	ck_assert_ptr_null(g.refresh_token);
	grant_free(&g);
	auth_free(a);
	/* A new keeper (a restart) finds it. */
	a = auth_new(tmpdir, &cause);
	ck_assert(auth_has_grant(a, "notes"));
	auth_free(a);
	free(dir);
	free(file);
	free(tmp);
}
END_TEST

START_TEST(test_status_shows_scope_times_issuer_and_no_secret) {
	char *cause = NULL;
	struct auth *a = auth_new(tmpdir, &cause);
	struct mcp_auth_store st = auth_store(a);
	json_t *none = auth_status_json(a, "notes");
	ck_assert(json_is_false(json_object_get(none, "authorized")));
	ck_assert(json_is_null(json_object_get(none, "scope")));
	json_decref(none);
	ck_assert_int_eq(st.save(st.arg, "notes", &sample, &cause), 0);
	json_t *s = auth_status_json(a, "notes");
	ck_assert(json_is_true(json_object_get(s, "authorized")));
	ck_assert(json_is_true(json_object_get(s, "refreshable")));
	ck_assert_str_eq(json_string_value(json_object_get(s, "scope")), "mcp:read");
	ck_assert_str_eq(json_string_value(json_object_get(s, "issuer")), "http://127.0.0.1:9/");
	ck_assert(json_is_string(json_object_get(s, "expires_at")));
	ck_assert(json_is_string(json_object_get(s, "obtained_at")));
	char *text = json_dumps(s, 0);
	ck_assert_ptr_null(strstr(text, "s3cret"));
	free(text);
	json_decref(s);
	auth_free(a);
}
END_TEST

START_TEST(test_drop_and_logout_remove_the_file_and_say_so) {
	char *cause = NULL;
	struct auth *a = auth_new(tmpdir, &cause);
	struct changes ch = {0};
	auth_set_change_fn(a, on_change, &ch);
	struct mcp_auth_store st = auth_store(a);
	ck_assert_int_eq(st.save(st.arg, "notes", &sample, &cause), 0);
	st.drop(st.arg, "notes", "invalid_grant: the refresh token was revoked");
	ck_assert_int_eq(ch.withdrawn, 1);
	ck_assert_str_eq(ch.why, "invalid_grant: the refresh token was revoked");
	ck_assert(!auth_has_grant(a, "notes"));
	ck_assert_int_eq(auth_logout(a, "notes", &cause), 0); /* nothing to forget */
	ck_assert_int_eq(ch.withdrawn, 1);
	ck_assert_int_eq(st.save(st.arg, "notes", &sample, &cause), 0);
	ck_assert_int_eq(auth_logout(a, "notes", &cause), 1);
	ck_assert_int_eq(ch.withdrawn, 2);
	ck_assert_str_eq(ch.why, "(none)");
	struct mcp_auth_grant g = {0};
	ck_assert_int_eq(st.load(st.arg, "notes", &g), -1);
	auth_free(a);
}
END_TEST

START_TEST(test_what_cannot_be_a_grant_is_never_taken_for_one) {
	char *cause = NULL;
	struct auth *a = auth_new(tmpdir, &cause);
	struct mcp_auth_store st = auth_store(a);
	struct mcp_auth_grant g = {0};
	/* A name that would leave the folder or hide a file. */
	ck_assert_int_eq(st.save(st.arg, "..", &sample, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "cannot name a grant file"));
	free(cause);
	cause = NULL;
	/* No access token: nothing kept. */
	struct mcp_auth_grant empty = {.scope = "x"};
	ck_assert_int_eq(st.save(st.arg, "notes", &empty, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "no access token"));
	free(cause);
	cause = NULL;
	ck_assert(!auth_has_grant(a, "notes"));
	/* Larger than AUTH_FILE_MAX: refused, nothing on disk, the message holds no secret. */
	struct mcp_auth_grant big = sample;
	char *huge = xmalloc(AUTH_FILE_MAX + 10);
	memset(huge, 'A', AUTH_FILE_MAX + 9);
	huge[AUTH_FILE_MAX + 9] = '\0';
	big.access_token = huge;
	ck_assert_int_eq(st.save(st.arg, "notes", &big, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "larger than"));
	ck_assert_ptr_null(strstr(cause, "AAAA"));
	free(cause);
	free(huge);
	ck_assert(!auth_has_grant(a, "notes"));
	/* A damaged file (another version, not JSON) is ignored, not half read. */
	char *file = xasprintf("%s/auth/notes.json", tmpdir);
	FILE *fp = fopen(file, "w");
	fputs("{\"version\": 99, \"access_token\": \"AT-x\"}", fp);
	fclose(fp);
	ck_assert_int_eq(st.load(st.arg, "notes", &g), -1);
	fp = fopen(file, "w");
	fputs("{\"version\": 1, \"access_tok", fp);
	fclose(fp);
	ck_assert_int_eq(st.load(st.arg, "notes", &g), -1);
	char *text = file_text(file);
	ck_assert_ptr_nonnull(strstr(text, "access_tok")); /* left for a person to look at */
	free(text);
	free(file);
	auth_free(a);
}
END_TEST

START_TEST(test_a_folder_others_may_read_is_made_private) {
	char *dir = xasprintf("%s/auth", tmpdir), *cause = NULL;
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	struct auth *a = auth_new(tmpdir, &cause);
	ck_assert_msg(a != NULL, "%s", cause);
	struct stat sb;
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	auth_free(a);
	free(dir);
}
END_TEST

static Suite *auth_suite(void) {
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_grant_round_trips_through_a_private_file);
	tcase_add_test(tc, test_status_shows_scope_times_issuer_and_no_secret);
	tcase_add_test(tc, test_drop_and_logout_remove_the_file_and_say_so);
	tcase_add_test(tc, test_what_cannot_be_a_grant_is_never_taken_for_one);
	tcase_add_test(tc, test_a_folder_others_may_read_is_made_private);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(auth_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
