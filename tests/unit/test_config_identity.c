/*
 * test_config_identity.c - who jobs and servers run as: a root system
 * daemon defaults to "nobody", a per-user daemon to itself, and a daemon
 * that is not root may not name anyone else (struct config_load_opts).
 * The non-root cases run in a child that dropped to nobody; without root
 * they run as the calling user.
 */
#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/spawn.h"

static char tmpdir[64];
/* The identity mode the next load() uses (each load gets its own options). */
static enum config_identity_mode mode;

static void setup(void) {
	snprintf(tmpdir, sizeof tmpdir, "/tmp/mcpjob-ident-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	chmod(tmpdir, 0755); /* readable by nobody in the forked checks */
}

static void teardown(void) {
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	mode = CONFIG_IDENTITY_OFF;
}

static char *write_config(const char *text) {
	char *path = xasprintf("%s/mcpjobd.json", tmpdir);
	FILE *fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(path, 0644);
	return path;
}

/* Load @path; returns the config (NULL on errors, joined into *@errs_out). */
static struct config *load_path(const char *path, char **errs_out) {
	struct config *cfg = NULL;
	struct config_errors errs = {0};
	struct config_load_opts lo = {.identity = mode};
	config_load_with(path, &lo, &cfg, &errs);
	*errs_out = config_errors_join(&errs);
	config_errors_clear(&errs);
	return cfg;
}

static struct config *load(const char *text, char **errs_out) {
	char *path = write_config(text);
	struct config *cfg = load_path(path, errs_out);
	free(path);
	return cfg;
}

static const char *const plain_job =
    "{\"jobs\": [{\"id\": \"a\", \"name\": \"a\", \"interval\": \"1h\","
    " \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}";

START_TEST(test_root_system_daemon_defaults_to_nobody) {
	char *errs;
	if (geteuid() != 0)
		return; /* the root-only rule; the non-root ones are below */
	mode = CONFIG_IDENTITY_SYSTEM;
	struct config *cfg = load(plain_job, &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->default_user, "nobody");
	config_free(cfg);
	free(errs);
}
END_TEST

START_TEST(test_configured_default_user_wins_over_nobody) {
	char *errs;
	mode = CONFIG_IDENTITY_SYSTEM;
	struct passwd *me = getpwuid(geteuid());
	ck_assert_ptr_nonnull(me);
	char *text = xasprintf("{\"default_user\": \"%s\", \"jobs\": []}", me->pw_name);
	struct config *cfg = load(text, &errs);
	ck_assert_msg(cfg != NULL, "%s", errs);
	ck_assert_str_eq(cfg->default_user, me->pw_name);
	config_free(cfg);
	free(errs);
	free(text);
}
END_TEST

START_TEST(test_per_user_and_off_modes_leave_the_default_unset) {
	enum config_identity_mode modes[] = {CONFIG_IDENTITY_PER_USER, CONFIG_IDENTITY_OFF};
	for (size_t i = 0; i < 2; i++) {
		char *errs;
		mode = modes[i];
		struct config *cfg = load(plain_job, &errs);
		ck_assert_ptr_nonnull(cfg);
		ck_assert_ptr_null(cfg->default_user);
		config_free(cfg);
		free(errs);
	}
}
END_TEST

/* Two loads in one process with different modes: each gets its own rule
 * (the mode was a process-wide setter once; an app embedding two engines
 * must not see one's mode in the other). */
START_TEST(test_identity_mode_belongs_to_the_load_not_the_process) {
	if (geteuid() != 0)
		return; /* the nobody default is the root-only rule */
	char *path = write_config(plain_job);
	struct config_load_opts sys = {.identity = CONFIG_IDENTITY_SYSTEM};
	struct config *a = NULL, *b = NULL;
	struct config_errors errs = {0};
	ck_assert_int_eq(config_load_with(path, &sys, &a, &errs), 0);
	ck_assert_int_eq(config_load(path, &b, &errs), 0);
	ck_assert_str_eq(a->default_user, "nobody");
	ck_assert_ptr_null(b->default_user);
	config_free(a);
	config_free(b);
	free(path);
}
END_TEST

/* Users are looked up once per load: every run of a job gets the identity
 * resolved then (the same one each time), and a missing user is kept as
 * the reason its runs cannot start. */
START_TEST(test_job_identities_are_resolved_once_per_load) {
	char *errs;
	struct config *cfg = load("{\"jobs\": ["
	    "{\"id\": \"a\", \"name\": \"a\", \"interval\": \"1h\", \"user\": \"nobody\","
	    " \"action\": {\"exec\": {\"argv\": [\"true\"]}}},"
	    "{\"id\": \"b\", \"name\": \"b\", \"interval\": \"1h\", \"user\": \"nosuch-mcpjob-user\","
	    " \"action\": {\"exec\": {\"argv\": [\"true\"]}}},"
	    "{\"id\": \"c\", \"name\": \"c\", \"interval\": \"1h\","
	    " \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}", &errs);
	ck_assert_msg(cfg != NULL, "%s", errs);
	const struct spawn_identity *a1 = NULL, *a2 = NULL, *c = NULL;
	char *cause = NULL;
	ck_assert_int_eq(config_job_identity(cfg, config_find_job(cfg, "a"), &a1, &cause), 0);
	ck_assert_int_eq(config_job_identity(cfg, config_find_job(cfg, "a"), &a2, &cause), 0);
	ck_assert_ptr_eq(a1, a2);
	ck_assert_str_eq(a1->user, "nobody");
	ck_assert_int_eq(a1->uid, getpwnam("nobody")->pw_uid);
	ck_assert_int_eq(config_job_identity(cfg, config_find_job(cfg, "b"), &a2, &cause), -1);
	ck_assert_str_eq(cause, "no such user \"nosuch-mcpjob-user\"");
	free(cause);
	ck_assert_int_eq(config_job_identity(cfg, config_find_job(cfg, "c"), &c, &cause), 0);
	ck_assert_int_eq(c->uid, geteuid()); /* no user: ourselves */
	config_free(cfg);
	free(errs);
}
END_TEST

/* As nobody (when root) or ourselves: load @text in SYSTEM mode, write the
 * errors to @out. Returns 0 when it loaded. */
static int load_unprivileged(const char *text, char *out, size_t outlen) {
	int pfd[2];
	char *path = write_config(text);
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		                       setresuid(65534, 65534, 65534) < 0))
			_exit(99);
		mode = CONFIG_IDENTITY_SYSTEM;
		char *errs;
		struct config *cfg = load_path(path, &errs);
		ssize_t w = write(pfd[1], errs, strlen(errs));
		(void)w;
		_exit(cfg ? 0 : 1);
	}
	close(pfd[1]);
	ssize_t n = read(pfd[0], out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
	free(path);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 99);
	return WEXITSTATUS(st);
}

START_TEST(test_non_root_may_not_name_another_user) {
	char out[2048];
	const char *text =
	    "{\"default_user\": \"root\", \"mcpServers\": {\"s\": {\"command\": \"/bin/true\","
	    " \"user\": \"0\"}}, \"jobs\": [{\"id\": \"x\", \"name\": \"x\", \"interval\": \"1h\","
	    " \"user\": \"root\", \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}";
	ck_assert_int_eq(load_unprivileged(text, out, sizeof out), 1);
	char *path = xasprintf("%s/mcpjobd.json", tmpdir);
	char *want = xasprintf("%s: jobs[0] (x).user: \"root\": only root can run jobs as another "
	                       "user; remove \"user\" or run mcpjobd as root", path);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	ck_assert_msg(strstr(out, "default_user: \"root\": only root") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "mcpServers.s.user: \"0\": only root") != NULL, "%s", out);
	free(want);
	free(path);
}
END_TEST

START_TEST(test_non_root_may_name_itself) {
	char out[2048];
	/* nobody when we are root, else our own name. */
	struct passwd *pw = geteuid() == 0 ? getpwuid(65534) : getpwuid(geteuid());
	ck_assert_ptr_nonnull(pw);
	char *text = xasprintf("{\"jobs\": [{\"id\": \"x\", \"name\": \"x\", \"interval\": \"1h\","
	                       " \"user\": \"%s\", \"action\": {\"exec\": {\"argv\": [\"true\"]}}}]}",
	                       pw->pw_name);
	ck_assert_msg(load_unprivileged(text, out, sizeof out) == 0, "%s", out);
	free(text);
}
END_TEST

int main(void) {
	Suite *s = suite_create("config_identity");
	TCase *tc = tcase_create("identity");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_root_system_daemon_defaults_to_nobody);
	tcase_add_test(tc, test_configured_default_user_wins_over_nobody);
	tcase_add_test(tc, test_per_user_and_off_modes_leave_the_default_unset);
	tcase_add_test(tc, test_identity_mode_belongs_to_the_load_not_the_process);
	tcase_add_test(tc, test_job_identities_are_resolved_once_per_load);
	tcase_add_test(tc, test_non_root_may_not_name_another_user);
	tcase_add_test(tc, test_non_root_may_name_itself);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
