/*
 * test_paths.c - the default paths mcpjobd and mcpjobctl share
 * (common/paths.h): the client must look where the daemon listens.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/paths.h"
#include "common/xmalloc.h"

static void clear_env(void) {
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("MCPJOBD_SOCKET");
	setenv("HOME", "/home/tester", 1);
}

static void check_path(char *got, const char *want) {
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_system_daemon_paths) {
	clear_env();
	check_path(paths_default_config(false), "/etc/mcpjobd/mcpjobd.json");
	check_path(paths_default_state_dir(false), "/var/lib/mcpjobd");
	check_path(paths_default_socket(false), "/run/mcpjobd/control.sock");
}
END_TEST

START_TEST(test_user_paths_follow_xdg_variables) {
	clear_env();
	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	setenv("XDG_STATE_HOME", "/x/state", 1);
	setenv("XDG_RUNTIME_DIR", "/x/run", 1);
	check_path(paths_default_config(true), "/x/cfg/mcpjobd/mcpjobd.json");
	check_path(paths_default_state_dir(true), "/x/state/mcpjobd");
	check_path(paths_default_socket(true), "/x/run/mcpjobd/control.sock");
}
END_TEST

START_TEST(test_user_paths_without_xdg_use_home_and_run_user) {
	clear_env();
	setenv("XDG_CONFIG_HOME", "relative/ignored", 1);
	check_path(paths_default_config(true), "/home/tester/.config/mcpjobd/mcpjobd.json");
	check_path(paths_default_state_dir(true), "/home/tester/.local/state/mcpjobd");
	/* mcpjobctl --user used to give up here while the daemon listened in
	 * /run/user/UID: both now use this one rule. */
	char *want = xasprintf("/run/user/%u/mcpjobd/control.sock", (unsigned)getuid());
	check_path(paths_default_socket(true), want);
	free(want);
}
END_TEST

START_TEST(test_mcpjobd_socket_overrides_both_defaults_unless_empty) {
	clear_env();
	setenv("MCPJOBD_SOCKET", "/tmp/elsewhere.sock", 1);
	check_path(paths_default_socket(false), "/tmp/elsewhere.sock");
	check_path(paths_default_socket(true), "/tmp/elsewhere.sock");
	setenv("MCPJOBD_SOCKET", "", 1);
	check_path(paths_default_socket(false), "/run/mcpjobd/control.sock");
}
END_TEST

int main(void) {
	Suite *s = suite_create("paths");
	TCase *tc = tcase_create("defaults");
	tcase_add_test(tc, test_system_daemon_paths);
	tcase_add_test(tc, test_user_paths_follow_xdg_variables);
	tcase_add_test(tc, test_user_paths_without_xdg_use_home_and_run_user);
	tcase_add_test(tc, test_mcpjobd_socket_overrides_both_defaults_unless_empty);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
