/*
 * test_config.c - the configuration loader: the example loads, defaults
 * apply, and every kind of mistake is reported as a sentence that names the
 * file and the place (line:column or key path), all of them at once.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strv.h"
#include "common/xmalloc.h"
#include "daemon/config.h"

static char tmpdir[64];

static void setup(void) {
	snprintf(tmpdir, sizeof tmpdir, "/tmp/mcpjob-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

/* Write @text to @name under the temp dir (creating jobs.d/ as needed). */
static char *write_file(const char *name, const char *text) {
	char *path = xasprintf("%s/%s", tmpdir, name);
	char *dir = xasprintf("%s/jobs.d", tmpdir);
	if (strncmp(name, "jobs.d/", 7) == 0 && mkdir(dir, 0700) != 0)
		ck_assert_int_eq(errno, EEXIST);
	FILE *fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	free(dir);
	return path;
}

/* Load @text as the main file; returns the joined errors ("" when it loaded). */
static char *load_text(const char *text, struct config **cfg) {
	char *path = write_file("mcpjobd.json", text);
	struct config_errors errs = {0};
	int r = config_load(path, cfg, &errs);
	char *joined = config_errors_join(&errs);
	ck_assert_int_eq(r, errs.n == 0 ? 0 : -1);
	ck_assert(r == 0 ? *cfg != NULL : *cfg == NULL);
	config_errors_clear(&errs);
	free(path);
	return joined;
}

/* Load @text, expect it to fail, return the joined errors. */
static char *load_bad(const char *text) {
	struct config *cfg = NULL;
	char *errs = load_text(text, &cfg);
	ck_assert_msg(cfg == NULL, "expected errors, but it loaded");
	return errs;
}

static struct config *load_good(const char *text) {
	struct config *cfg = NULL;
	char *errs = load_text(text, &cfg);
	ck_assert_msg(cfg != NULL, "expected it to load, got:\n%s", errs);
	free(errs);
	return cfg;
}

#define assert_has(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in:\n%s", (needle), (hay))

static size_t count_lines(const char *s) {
	size_t n = *s ? 1 : 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

#define JOB_OK "\"id\": \"j\", \"interval\": \"1m\", \"action\": {\"exec\": {\"argv\": [\"/bin/true\"]}}"

START_TEST(test_example_config_loads_with_its_fields) {
	struct config_errors errs = {0};
	struct config *cfg = NULL;
	int r = config_load("examples/mcpjobd.json", &cfg, &errs);
	char *joined = config_errors_join(&errs);
	ck_assert_msg(r == 0, "example config failed:\n%s", joined);
	free(joined);
	ck_assert_uint_eq(cfg->njobs, 4);
	ck_assert_uint_eq(cfg->nservers, 2);
	const struct job_def *sync = config_find_job(cfg, "sync-data");
	ck_assert_ptr_nonnull(sync);
	ck_assert_str_eq(sync->name, "Data Synchronization");
	ck_assert_int_eq(sync->kind, ACTION_MCP);
	ck_assert_str_eq(sync->mcp.server, "primary-server");
	ck_assert_str_eq(sync->mcp.tool, "syncData");
	ck_assert_str_eq(json_string_value(json_object_get(sync->mcp.arguments, "lastSync")),
	                 "${last_success}");
	ck_assert_int_eq(sync->interval_ms, 15 * 60 * 1000);
	ck_assert_int_eq(sync->flex_ms, 5 * 60 * 1000);
	ck_assert_int_eq(sync->constraints.network, NET_REQ_CONNECTED);
	ck_assert_int_eq(sync->retry->max_attempts, 5);
	ck_assert_str_eq(sync->source, "examples/mcpjobd.json");
	const struct job_def *clean = config_find_job(cfg, "cleanup-cache");
	ck_assert_int_eq(clean->kind, ACTION_CLEANUP);
	ck_assert_str_eq(clean->cleanup.path, "/var/cache/example");
	ck_assert_int_eq(clean->cleanup.max_age_ms, 7LL * 86400 * 1000);
	ck_assert(clean->constraints.charging && clean->constraints.idle);
	const struct job_def *fetch = config_find_job(cfg, "fetch-notifications");
	ck_assert_str_eq(fetch->mcp.server, "notification-server");
	ck_assert_str_eq(fetch->mcp.tool, "getNotifications");
	const struct job_def *disk = config_find_job(cfg, "disk-report");
	ck_assert_int_eq(disk->kind, ACTION_EXEC);
	ck_assert_str_eq(disk->exec.argv[2], "/");
	ck_assert_int_eq(disk->interval_ms, 3600 * 1000);
	ck_assert_ptr_nonnull(config_find_server(cfg, "primary-server"));
	ck_assert_str_eq(cfg->jobs[0]->id, "sync-data"); /* file order */
	ck_assert_str_eq(cfg->jobs[3]->id, "disk-report");
	config_free(cfg);
}
END_TEST

START_TEST(test_defaults_applied_to_minimal_config) {
	struct config *cfg = load_good("{\"jobs\": [{" JOB_OK "}]}");
	ck_assert_int_eq(cfg->max_concurrent, 4);
	ck_assert_str_eq(cfg->admin_group, "mcpjob");
	ck_assert_int_eq(cfg->max_connections_per_uid, 32);
	ck_assert_ptr_null(cfg->default_user);
	ck_assert_int_eq(cfg->history_max_runs, 100);
	ck_assert_int_eq(cfg->history_max_age_ms, 30LL * 86400 * 1000);
	ck_assert_int_eq(cfg->catchup_spread_ms, 10000);
	ck_assert_str_eq(cfg->device.metered_interfaces[0], "wwan*");
	ck_assert_uint_eq(strv_len(cfg->device.metered_interfaces), 3);
	ck_assert(cfg->device.idle_load == 0.5);
	ck_assert_int_eq(cfg->device.storage_low_percent, 10);
	ck_assert_str_eq(cfg->device.power_supply_path, "/sys/class/power_supply");
	ck_assert(cfg->device.unknown_allows);
	const struct job_def *j = cfg->jobs[0];
	ck_assert_str_eq(j->name, "j");
	ck_assert_str_eq(j->description, "");
	ck_assert_int_eq(j->flex_ms, 0);
	ck_assert_int_eq(j->timeout_ms, 0);
	ck_assert_int_eq(j->initial_delay_ms, 0);
	ck_assert(j->enabled && j->stop_when_unmet);
	ck_assert_int_eq(j->constraints.network, NET_REQ_ANY);
	ck_assert(!j->constraints.charging && !j->constraints.idle);
	ck_assert_int_eq(j->retry->max_attempts, 3);
	ck_assert_int_eq(j->retry->backoff, BACKOFF_EXPONENTIAL);
	ck_assert_int_eq(j->retry->initial_ms, 30000);
	ck_assert_int_eq(j->retry->max_ms, 3600000);
	ck_assert_int_eq(j->history_max_runs, 100);
	ck_assert_ptr_null(j->user);
	ck_assert_ptr_null(j->group);
	ck_assert_ptr_null(j->limits); /* none given */
	ck_assert_ptr_null(j->exec.env);
	config_free(cfg);
}
END_TEST

START_TEST(test_settings_and_servers_are_read) {
	struct config *cfg = load_good(
	    "{\"max_concurrent\": 2, \"default_user\": \"nobody\", \"catchup_spread\": \"0s\",\n"
	    " \"history\": {\"max_runs\": 7, \"max_age\": \"2d\"},\n"
	    " \"read_write_paths\": [\"/var/cache/a\"],\n"
	    " \"device\": {\"unknown\": \"deny\", \"idle_load\": 1, \"metered_interfaces\": [\"wl*\"]},\n"
	    " \"mcpServers\": {\"s\": {\"command\": \"/bin/srv\", \"args\": [\"--stdio\", \"-v\"],\n"
	    "   \"env\": {\"K\": \"V\"}, \"cwd\": \"/\", \"user\": \"bob\"}},\n"
	    " \"jobs\": [{" JOB_OK ", \"history\": {\"max_runs\": 3}}]}");
	ck_assert_int_eq(cfg->max_concurrent, 2);
	ck_assert_str_eq(cfg->default_user, "nobody");
	ck_assert_int_eq(cfg->catchup_spread_ms, 0);
	ck_assert_str_eq(cfg->read_write_paths[0], "/var/cache/a");
	ck_assert(!cfg->device.unknown_allows);
	ck_assert(cfg->device.idle_load == 1.0);
	ck_assert_uint_eq(strv_len(cfg->device.metered_interfaces), 1);
	const struct mcp_server_def *s = config_find_server(cfg, "s");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->argv[0], "/bin/srv");
	ck_assert_str_eq(s->argv[2], "-v");
	ck_assert_ptr_null(s->argv[3]);
	ck_assert_str_eq(s->env[0], "K=V");
	ck_assert_str_eq(s->user, "bob");
	ck_assert_int_eq(s->idle_timeout_ms, 60000);
	/* the job's history: its own count, the top-level age */
	ck_assert_int_eq(cfg->jobs[0]->history_max_runs, 3);
	ck_assert_int_eq(cfg->jobs[0]->history_max_age_ms, 2LL * 86400 * 1000);
	ck_assert_ptr_null(config_find_server(cfg, "t"));
	ck_assert_ptr_null(config_find_job(cfg, "nope"));
	config_free(cfg);
}
END_TEST

START_TEST(test_syntax_error_names_file_line_column) {
	char *errs = load_bad("{\n  \"jobs\": [\n    {\"id\": \"a\",, }\n  ]\n}\n");
	char *want = xasprintf("%s/mcpjobd.json:3:16: ", tmpdir);
	ck_assert_msg(strncmp(errs, want, strlen(want)) == 0, "expected \"%s\" at the start of:\n%s",
	              want, errs);
	free(want);
	free(errs);
}
END_TEST

/* Found by fuzz_config: "args" were leaked when "command" was missing
 * (SANITIZE=1 make check reports the leak). */
START_TEST(test_server_args_without_command_is_an_error) {
	char *errs = load_bad("{\"mcpServers\": {\"s\": {\"args\": [\"-v\", \"x\"]}}}");
	assert_has(errs, "command");
	free(errs);
}
END_TEST

START_TEST(test_duplicate_key_is_a_syntax_error) {
	char *errs = load_bad("{\"max_concurrent\": 1,\n \"max_concurrent\": 2}");
	assert_has(errs, "mcpjobd.json:2:");
	assert_has(errs, "duplicate object key");
	free(errs);
}
END_TEST

START_TEST(test_string_with_nul_is_refused_with_its_key_path) {
	char *errs = load_bad("{\"jobs\": [{\"id\": \"a\", \"interval\": \"1h\", \"action\": "
	                      "{\"exec\": {\"argv\": [\"/bin/rm\", \"x\\u0000/etc\"]}}}]}");
	assert_has(errs, "mcpjobd.json: jobs[0].action.exec.argv[1]: a string holds a NUL character");
	free(errs);
	errs = load_bad("{\"admin_group\": \"wheel\\u0000\"}");
	assert_has(errs, ": admin_group: a string holds a NUL");
	free(errs);
}
END_TEST

START_TEST(test_durability_and_store_max_size_are_read_and_checked) {
	struct config *cfg = load_good("{\"jobs\": [{" JOB_OK "}]}");
	ck_assert_int_eq(cfg->durability, 0); /* batched */
	ck_assert_uint_eq(cfg->store_max_size, 0);
	config_free(cfg);
	cfg = load_good("{\"durability\": \"strict\", \"store\": {\"max_size\": \"256M\"},"
	                " \"jobs\": [{" JOB_OK "}]}");
	ck_assert_int_eq(cfg->durability, 1);
	ck_assert_uint_eq(cfg->store_max_size, (uint64_t)256 << 20);
	config_free(cfg);
	cfg = load_good("{\"store\": {\"max_size\": 2097152}, \"jobs\": []}");
	ck_assert_uint_eq(cfg->store_max_size, 2097152);
	config_free(cfg);
	char *errs = load_bad("{\"durability\": \"sometimes\", \"store\": {\"max_size\": \"12Q\","
	                      " \"maxsize\": 1}, \"jobs\": []}");
	assert_has(errs, "durability: \"sometimes\" is not one of \"batched\", \"strict\"");
	assert_has(errs, "store.max_size");
	assert_has(errs, "store.maxsize");
	free(errs);
	errs = load_bad("{\"store\": {\"max_size\": \"4K\"}, \"jobs\": []}");
	assert_has(errs, "store.max_size: 4096 bytes is too small");
	free(errs);
}
END_TEST

START_TEST(test_bad_duration_names_key_path_with_id) {
	char *errs = load_bad("{\"jobs\": [{" JOB_OK "}, {" JOB_OK "},"
	                      " {\"id\": \"sync-data\", \"interval\": \"15x\","
	                      "  \"action\": {\"exec\": {\"argv\": [\"x\"]}}}]}");
	assert_has(errs, "/mcpjobd.json: jobs[2] (sync-data).interval: \"15x\" is not a duration (try");
	ck_assert_uint_eq(count_lines(errs), 2); /* and the duplicate "j" */
	assert_has(errs, "jobs[1] (j): duplicate job id \"j\" (also jobs[0] (j) in ");
	free(errs);
}
END_TEST

/* The id index grows (rehashes) many times on the way to 3000 jobs: every id
 * is still found, an absent one is not, and a duplicate at the end names
 * the first of its id. */
START_TEST(test_many_jobs_are_all_found_by_id_and_a_late_duplicate_names_the_first) {
	char *text = xstrdup("{\"jobs\": [");
	for (int i = 0; i < 3000; i++) {
		char *more = xasprintf("%s%s{\"id\": \"job-%d\", \"interval\": \"1h\", "
		                       "\"action\": {\"exec\": {\"argv\": [\"x\"]}}}",
		                       text, i ? ", " : "", i);
		free(text);
		text = more;
	}
	char *good = xasprintf("%s]}", text);
	struct config *cfg = load_good(good);
	ck_assert_uint_eq(cfg->njobs, 3000);
	for (int i = 0; i < 3000; i++) {
		char id[32];
		snprintf(id, sizeof id, "job-%d", i);
		const struct job_def *d = config_find_job(cfg, id);
		ck_assert_ptr_nonnull(d);
		ck_assert_str_eq(d->id, id);
	}
	ck_assert_ptr_null(config_find_job(cfg, "job-3000"));
	ck_assert_ptr_null(config_find_job(cfg, "job-"));
	config_free(cfg);
	char *bad = xasprintf("%s, {\"id\": \"job-17\", \"interval\": \"1h\", "
	                      "\"action\": {\"exec\": {\"argv\": [\"x\"]}}}]}", text);
	char *errs = load_bad(bad);
	assert_has(errs, "jobs[3000] (job-17): duplicate job id \"job-17\" (also jobs[17] (job-17) in ");
	ck_assert_uint_eq(count_lines(errs), 1);
	free(errs);
	free(bad);
	free(good);
	free(text);
}
END_TEST

/* Definitions are packed: what a job has in common with the one before it
 * (its file, program, user) is stored once, each job keeps its own values. */
START_TEST(test_packed_jobs_share_equal_strings_and_keep_their_own) {
	struct config *cfg = load_good(
	    "{\"jobs\": ["
	    "{\"id\": \"a\", \"interval\": \"1m\", \"user\": \"root\","
	    " \"action\": {\"exec\": {\"argv\": [\"/bin/echo\", \"hi\"], \"env\": {\"K\": \"v\"}}}},"
	    "{\"id\": \"b\", \"name\": \"Bee\", \"interval\": \"1m\", \"user\": \"root\","
	    " \"action\": {\"exec\": {\"argv\": [\"/bin/echo\", \"hi\"], \"cwd\": \"/tmp\"}}},"
	    "{\"id\": \"c\", \"schedule\": \"daily\", \"timezone\": \"UTC\","
	    " \"action\": {\"cleanup\": {\"path\": \"/tmp/x\", \"max_age\": \"1d\"}}},"
	    "{\"id\": \"d\", \"interval\": \"1m\","
	    " \"action\": {\"exec\": {\"argv\": [\"/bin/echo\", \"ho\"]}}}]}");
	const struct job_def *a = config_find_job(cfg, "a"), *b = config_find_job(cfg, "b"),
	                     *c = config_find_job(cfg, "c"), *d = config_find_job(cfg, "d");
	ck_assert_ptr_eq(a->name, a->id);
	ck_assert_str_eq(b->name, "Bee");
	ck_assert_ptr_eq(b->source, a->source);
	ck_assert_ptr_eq(b->exec.argv, a->exec.argv);
	ck_assert_ptr_eq(b->user, a->user);
	ck_assert_ptr_eq(a->retry, &job_retry_default); /* no "retry": no bytes of its own */
	ck_assert_ptr_null(a->limits);
	ck_assert_str_eq(a->exec.env[0], "K=v");
	ck_assert_ptr_null(b->exec.env);
	ck_assert_str_eq(b->exec.cwd, "/tmp");
	ck_assert_ptr_null(a->exec.cwd);
	ck_assert_str_eq(c->cleanup.path, "/tmp/x");
	ck_assert_int_eq(c->cleanup.max_age_ms, 86400000);
	ck_assert_str_eq(c->schedule_expr, "daily");
	ck_assert_str_eq(c->timezone, "UTC");
	ck_assert_ptr_nonnull(c->calendar);
	ck_assert_ptr_null(c->user);
	ck_assert_ptr_ne(d->exec.argv, a->exec.argv);
	ck_assert_str_eq(d->exec.argv[1], "ho");
	ck_assert_ptr_null(d->exec.argv[2]);
	ck_assert_str_eq(a->exec.argv[1], "hi");
	/* Packed or not, a definition equals itself loaded again. */
	struct config *again = load_good(
	    "{\"jobs\": [{\"id\": \"a\", \"interval\": \"1m\", \"user\": \"root\","
	    " \"action\": {\"exec\": {\"argv\": [\"/bin/echo\", \"hi\"], \"env\": {\"K\": \"v\"}}}}]}");
	ck_assert(job_def_equal(a, config_find_job(again, "a")));
	ck_assert(!job_def_equal(b, config_find_job(again, "a")));
	config_free(again);
	config_free(cfg);
}
END_TEST

START_TEST(test_bad_value_without_id_uses_index) {
	char *errs = load_bad("{\"jobs\": [{\"interval\": \"soon\","
	                      " \"action\": {\"exec\": {\"argv\": [\"x\"]}}}]}");
	assert_has(errs, "mcpjobd.json: jobs[0]: missing \"id\"");
	assert_has(errs, "mcpjobd.json: jobs[0].interval: \"soon\" is not a duration");
	free(errs);
}
END_TEST

START_TEST(test_unknown_key_suggests_close_key) {
	char *errs = load_bad("{\"jobs\": [{" JOB_OK ", \"constraints\": {\"netwrok\": \"any\"}}],"
	                      " \"max_concurent\": 3, \"mcp_servers\": {}}");
	assert_has(errs, "mcpjobd.json: jobs[0] (j).constraints.netwrok: unknown key "
	                 "(did you mean \"network\"?)");
	assert_has(errs, "mcpjobd.json: max_concurent: unknown key (did you mean \"max_concurrent\"?)");
	assert_has(errs, "mcpjobd.json: mcp_servers: unknown key (did you mean \"mcpServers\"?)");
	free(errs);
}
END_TEST

START_TEST(test_unknown_key_without_close_match_has_no_guess) {
	char *errs = load_bad("{\"jobs\": [{" JOB_OK ", \"colour\": \"blue\"}]}");
	assert_has(errs, "jobs[0] (j).colour: unknown key");
	ck_assert_ptr_null(strstr(errs, "did you mean"));
	free(errs);
}
END_TEST

START_TEST(test_missing_required_keys_reported) {
	char *errs = load_bad("{\"jobs\": [{" JOB_OK "}, {\"id\": \"k\"},\n"
	                      " {\"id\": \"m\", \"interval\": \"1m\", \"action\": {\"cleanup\": {}}}]}");
	assert_has(errs, "mcpjobd.json: jobs[1] (k): missing \"interval\"");
	assert_has(errs, "mcpjobd.json: jobs[1] (k): missing \"action\"");
	assert_has(errs, "jobs[2] (m).action.cleanup: missing \"path\"");
	assert_has(errs, "jobs[2] (m).action.cleanup: missing \"max_age\"");
	free(errs);
}
END_TEST

START_TEST(test_type_errors_name_expected_type) {
	char *errs = load_bad("{\"max_concurrent\": \"four\", \"admin_group\": 5,\n"
	                      " \"jobs\": [{\"id\": \"j\", \"enabled\": \"yes\", \"interval\": 15,"
	                      "  \"action\": {\"exec\": {\"argv\": [\"x\"]}},"
	                      "  \"constraints\": {\"network\": \"wifi\"}}]}");
	assert_has(errs, "max_concurrent: expected an integer, got \"four\"");
	assert_has(errs, "admin_group: expected a string, got 5");
	assert_has(errs, "jobs[0] (j).enabled: expected true or false, got \"yes\"");
	assert_has(errs, "jobs[0] (j).interval: expected a duration string");
	assert_has(errs, "jobs[0] (j).constraints.network: \"wifi\" is not one of \"any\", "
	                 "\"connected\", \"unmetered\"");
	free(errs);
}
END_TEST

START_TEST(test_syntax_error_is_one_sentence) {
	/* jansson stops at the first syntax error: only one sentence */
	char *errs = load_bad("[1, 2");
	ck_assert_uint_eq(count_lines(errs), 1);
	assert_has(errs, "mcpjobd.json:1:");
	free(errs);
}
END_TEST

START_TEST(test_top_level_must_be_an_object) {
	char *errs = load_bad("[]");
	assert_has(errs, "mcpjobd.json: the top level must be an object");
	free(errs);
}
END_TEST

START_TEST(test_several_errors_in_one_file_all_reported) {
	char *errs = load_bad(
	    "{\"jobs\": [\n"
	    " {\"id\": \"a\", \"interval\": \"1q\", \"action\": {\"exec\": {\"argv\": [\"x\"]}}},\n"
	    " {\"id\": \"b c\", \"interval\": \"1m\", \"action\": {\"exec\": {\"argv\": []}}},\n"
	    " {\"id\": \"d\", \"interval\": \"1m\", \"flex\": \"2m\", \"retry\": {\"backof\": 1},\n"
	    "  \"action\": {\"cleanup\": {\"path\": \"tmp\", \"max_age\": \"1d\"}}}\n"
	    "], \"device\": {\"storage_low_percent\": 120}}");
	assert_has(errs, "jobs[0] (a).interval: \"1q\" is not a duration");
	assert_has(errs, "jobs[1].id: \"b c\" is not a valid id");
	assert_has(errs, "jobs[1].action.exec.argv: must have at least 1 entry");
	assert_has(errs, "jobs[2] (d).flex: 2m is longer than the interval (1m)");
	assert_has(errs, "jobs[2] (d).retry.backof: unknown key (did you mean \"backoff\"?)");
	assert_has(errs, "jobs[2] (d).action.cleanup.path: \"tmp\" is not an absolute path");
	assert_has(errs, "device.storage_low_percent: 120 is out of range (0 to 100)");
	ck_assert_uint_eq(count_lines(errs), 7);
	free(errs);
}
END_TEST

START_TEST(test_missing_main_file_is_named) {
	char *path = xasprintf("%s/nope.json", tmpdir);
	struct config_errors errs = {0};
	struct config *cfg = (struct config *)1;
	ck_assert_int_eq(config_load(path, &cfg, &errs), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.n, 1);
	assert_has(errs.msgs[0], path);
	assert_has(errs.msgs[0], "No such file or directory");
	config_errors_clear(&errs);
	ck_assert_uint_eq(errs.n, 0);
	free(path);
}
END_TEST

/* Jobs are parsed one at a time (config.c's job streams); what a file says
 * must not depend on it: values with brackets, quotes and escapes, "jobs"
 * after other keys, nested arrays. */
START_TEST(test_streamed_jobs_keep_every_value) {
	struct config *cfg = load_good(
	    "{\"history\": {\"max_runs\": 7},\n"
	    " \"mcpServers\": {\"s\": {\"command\": \"/bin/s\", \"args\": [\"]\", \"[{\"]}},\n"
	    " \"jobs\" : [ {\"id\": \"a\", \"interval\": \"1m\", \"description\": \"x]}\\\"{[\","
	    "  \"action\": {\"exec\": {\"argv\": [\"/bin/echo\", \"\\u00e9\\\\\"]}}} ,\n"
	    "  {\"id\": \"b\", \"interval\": \"1m\", \"action\": {\"mcp\": {\"server\": \"s\","
	    "   \"tool\": \"t\", \"arguments\": {\"l\": [[1, 2], [], {\"k\": [true, null]}]}}}}\n"
	    " ],\n"
	    " \"max_concurrent\": 2}");
	ck_assert_uint_eq(cfg->njobs, 2);
	ck_assert_int_eq(cfg->max_concurrent, 2);
	const struct job_def *a = config_find_job(cfg, "a"), *b = config_find_job(cfg, "b");
	ck_assert_str_eq(a->description, "x]}\"{[");
	ck_assert_str_eq(a->exec.argv[1], "\xc3\xa9\\");
	ck_assert_int_eq(a->history_max_runs, 7);
	char *args = json_dumps(b->mcp.arguments, JSON_COMPACT);
	ck_assert_str_eq(args, "{\"l\":[[1,2],[],{\"k\":[true,null]}]}");
	free(args);
	config_free(cfg);
	/* An empty list, and "jobs" that is not a list, as before. */
	cfg = load_good("{\"jobs\": [ ]}");
	ck_assert_uint_eq(cfg->njobs, 0);
	config_free(cfg);
	char *errs = load_bad("{\"jobs\": {\"id\": \"a\"}}");
	assert_has(errs, "jobs: expected an array of job objects");
	free(errs);
}
END_TEST

/* A job that is not valid JSON is found only after the jobs before it were
 * taken: the file must still give just the syntax error, at its line and
 * column, as a file read whole does - nothing of the jobs before it. */
START_TEST(test_a_streamed_job_with_a_syntax_error_gives_only_that_error) {
	char *errs = load_bad("{\"jobs\": [\n"
	                      "  {\"id\": \"a\", \"interval\": \"15x\", \"action\": {\"exec\": {\"argv\": [\"x\"]}}},\n"
	                      "  {\"id\": \"b\", \"interval\": \"1m\" \"action\": {}}\n"
	                      "]}\n");
	char *want = xasprintf("%s/mcpjobd.json:3:39: ", tmpdir);
	ck_assert_msg(strncmp(errs, want, strlen(want)) == 0, "expected \"%s\" at the start of:\n%s",
	              want, errs);
	ck_assert_uint_eq(count_lines(errs), 1);
	free(want);
	free(errs);
	/* The same for a duplicate key inside a job, a NUL in a later job, a
	 * second "jobs", and a bad job in a drop-in. */
	errs = load_bad("{\"jobs\": [{" JOB_OK "},\n {\"id\": \"b\", \"id\": \"c\"}]}");
	assert_has(errs, "mcpjobd.json:2:");
	assert_has(errs, "duplicate object key");
	ck_assert_uint_eq(count_lines(errs), 1);
	free(errs);
	errs = load_bad("{\"jobs\": [{" JOB_OK ", \"timeout\": \"1x\"}, {\"id\": \"b\", \"interval\": \"1m\","
	                " \"action\": {\"exec\": {\"argv\": [\"/bin/rm\", \"x\\u0000/etc\"]}}}]}");
	assert_has(errs, "mcpjobd.json: jobs[1].action.exec.argv[1]: a string holds a NUL character");
	ck_assert_uint_eq(count_lines(errs), 1);
	free(errs);
	errs = load_bad("{\"jobs\": [{" JOB_OK "}], \"jobs\": []}");
	assert_has(errs, "duplicate object key");
	free(errs);
	free(write_file("jobs.d/a.json", "{\"jobs\": [{\"id\": \"x\", \"interval\": \"1m\","
	                " \"action\": {\"exec\": {\"argv\": [\"x\"]}}},\n{\"id\": }]}"));
	errs = load_bad("{\"jobs\": [{" JOB_OK ", \"timeout\": \"9q\"}]}");
	assert_has(errs, "/jobs.d/a.json:2:");
	assert_has(errs, "jobs[0] (j).timeout: \"9q\" is not a duration");
	ck_assert_uint_eq(count_lines(errs), 2);
	free(errs);
}
END_TEST

/* "jobs" of @n jobs j0000.. ("bad" replaces job @at's text when not NULL). */
static char *many_jobs(size_t n, size_t at, const char *bad) {
	size_t cap = n * 160 + 64, len = 0;
	char *t = xmalloc(cap);
	len += (size_t)snprintf(t + len, cap - len, "{\"jobs\": [\n");
	for (size_t i = 0; i < n; i++) {
		if (bad != NULL && i == at)
			len += (size_t)snprintf(t + len, cap - len, "%s%s\n", bad, i + 1 < n ? "," : "");
		else
			len += (size_t)snprintf(t + len, cap - len,
			                        "{\"id\": \"j%04zu\", \"interval\": \"%zus\", \"description\": "
			                        "\"d%zu\", \"action\": {\"exec\": {\"argv\": [\"/bin/true\"]}}}%s\n",
			                        i, i + 1, i, i + 1 < n ? "," : "");
		ck_assert_uint_lt(len, cap);
	}
	snprintf(t + len, cap - len, "]}\n");
	return t;
}

/* A long "jobs" list is parsed a chunk (512 jobs) ahead by a second thread
 * while the loop's thread takes the chunk before, in order. What the file
 * says, and the errors it gives, must not depend on it: every job in file
 * order with its own values, and a problem in any chunk (the first, while
 * the thread fills the next; a middle one; the last) gives just the error a
 * file read whole gives, with nothing of the jobs around it. */
START_TEST(test_a_long_stream_keeps_order_values_and_errors) {
	const size_t n = 3 * 512 + 7;
	char *text = many_jobs(n, 0, NULL);
	struct config *cfg = load_good(text);
	free(text);
	ck_assert_uint_eq(cfg->njobs, n);
	for (size_t i = 0; i < n; i++) {
		char id[16], desc[16];
		snprintf(id, sizeof id, "j%04zu", i);
		snprintf(desc, sizeof desc, "d%zu", i);
		ck_assert_str_eq(cfg->jobs[i]->id, id);
		ck_assert_str_eq(cfg->jobs[i]->description, desc);
		ck_assert_int_eq(cfg->jobs[i]->interval_ms, (int64_t)(i + 1) * 1000);
	}
	config_free(cfg);
	/* A bad value in a later chunk: that job's error only. */
	text = many_jobs(n, 1400, "{\"id\": \"x\", \"interval\": \"1x\", \"action\": {\"exec\": "
	                          "{\"argv\": [\"/bin/true\"]}}}");
	char *errs = load_bad(text);
	free(text);
	assert_has(errs, "jobs[1400] (x).interval: \"1x\" is not a duration");
	ck_assert_uint_eq(count_lines(errs), 1);
	free(errs);
	/* Not JSON in the first chunk, in a middle one, in the last: the
	 * syntax error at its line (the job's index + 2) and column. */
	const size_t at[] = {5, 1200, n - 1};
	for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
		text = many_jobs(n, at[k], "{\"id\": \"y\" \"interval\": \"1m\"}");
		errs = load_bad(text);
		free(text);
		char *want = xasprintf("%s/mcpjobd.json:%zu:21: ", tmpdir, at[k] + 2);
		ck_assert_msg(strncmp(errs, want, strlen(want)) == 0,
		              "expected \"%s\" at the start of:\n%s", want, errs);
		ck_assert_uint_eq(count_lines(errs), 1);
		free(want);
		free(errs);
	}
	/* A NUL, found in the thread's tree walk, in the last chunk. */
	text = many_jobs(n, n - 3, "{\"id\": \"z\", \"interval\": \"1m\", \"action\": {\"exec\": "
	                           "{\"argv\": [\"/bin/rm\", \"x\\u0000/etc\"]}}}");
	errs = load_bad(text);
	free(text);
	char *want = xasprintf("jobs[%zu].action.exec.argv[1]: a string holds a NUL character", n - 3);
	assert_has(errs, want);
	ck_assert_uint_eq(count_lines(errs), 1);
	free(want);
	free(errs);
}
END_TEST

START_TEST(test_dropins_load_in_name_order_after_main) {
	free(write_file("jobs.d/20-b.json",
	                "{\"jobs\": [{\"id\": \"b\", \"interval\": \"1m\","
	                " \"action\": {\"mcp\": {\"server\": \"s\", \"tool\": \"t\"}}}]}"));
	free(write_file("jobs.d/10-a.json",
	                "{\"mcpServers\": {\"s\": {\"command\": \"/bin/s\"}},"
	                " \"jobs\": [{\"id\": \"a\", \"interval\": \"1m\","
	                " \"action\": {\"exec\": {\"argv\": [\"/bin/true\"]}}}]}"));
	free(write_file("jobs.d/notes.txt", "not json"));
	free(write_file("jobs.d/.hidden.json", "not json"));
	struct config *cfg = load_good("{\"jobs\": [{" JOB_OK "}]}");
	ck_assert_uint_eq(cfg->njobs, 3);
	ck_assert_str_eq(cfg->jobs[0]->id, "j");
	ck_assert_str_eq(cfg->jobs[1]->id, "a");
	ck_assert_str_eq(cfg->jobs[2]->id, "b");
	assert_has(cfg->jobs[1]->source, "/jobs.d/10-a.json");
	assert_has(cfg->jobs[0]->source, "/mcpjobd.json");
	/* no "arguments": an empty object, so the call sends {} */
	ck_assert(json_is_object(cfg->jobs[2]->mcp.arguments));
	ck_assert_uint_eq(json_object_size(cfg->jobs[2]->mcp.arguments), 0);
	ck_assert_uint_eq(cfg->nservers, 1);
	config_free(cfg);
}
END_TEST

START_TEST(test_duplicate_id_across_files_names_both) {
	free(write_file("jobs.d/a.json", "{\"jobs\": [{\"id\": \"k\", \"interval\": \"1m\","
	                                 " \"action\": {\"exec\": {\"argv\": [\"x\"]}}}, {" JOB_OK "}]}"));
	char *errs = load_bad("{\"jobs\": [{" JOB_OK "}]}");
	assert_has(errs, "/jobs.d/a.json: jobs[1] (j): duplicate job id \"j\" (also jobs[0] (j) in ");
	assert_has(errs, "/mcpjobd.json;");
	ck_assert_uint_eq(count_lines(errs), 1);
	free(errs);
}
END_TEST

START_TEST(test_dropin_errors_name_the_dropin) {
	free(write_file("jobs.d/a.json", "{\"max_concurrent\": 3, \"jobs\": [{\"id\": \"x\"}]}"));
	free(write_file("jobs.d/b.json", "{\"jobs\": ["));
	char *errs = load_bad("{\"jobs\": [{" JOB_OK "}]}");
	assert_has(errs, "/jobs.d/a.json: max_concurrent: unknown key (a jobs.d file holds only");
	assert_has(errs, "/jobs.d/a.json: jobs[0] (x): missing \"interval\"");
	assert_has(errs, "/jobs.d/b.json:1:");
	free(errs);
}
END_TEST

START_TEST(test_duplicate_server_across_files_refused) {
	free(write_file("jobs.d/a.json", "{\"mcpServers\": {\"s\": {\"command\": \"/bin/b\"}}}"));
	char *errs = load_bad("{\"mcpServers\": {\"s\": {\"command\": \"/bin/a\"}}}");
	assert_has(errs, "/jobs.d/a.json: mcpServers.s: server \"s\" is already declared in ");
	free(errs);
}
END_TEST

START_TEST(test_mcp_job_naming_undeclared_server_refused) {
	char *errs = load_bad(
	    "{\"mcpServers\": {\"alpha\": {\"command\": \"/a\"}, \"beta\": {\"command\": \"/b\"}},\n"
	    " \"jobs\": [{\"id\": \"m\", \"interval\": \"1m\","
	    " \"action\": {\"mcp\": {\"server\": \"gamma\", \"tool\": \"t\"}}}]}");
	assert_has(errs, "mcpjobd.json: jobs[0] (m).action.mcp.server: server \"gamma\" is not "
	                 "declared in \"mcpServers\" (declared: alpha, beta)");
	free(errs);
	errs = load_bad("{\"jobs\": [{\"id\": \"m\", \"interval\": \"1m\","
	                " \"action\": {\"mcp\": {\"server\": \"gamma\", \"tool\": \"t\"}}}]}");
	assert_has(errs, "server \"gamma\" is not declared in \"mcpServers\" (none is declared)");
	free(errs);
}
END_TEST

START_TEST(test_remote_servers_are_read_with_headers_unexpanded) {
	struct config *cfg = load_good(
	    "{\"mcpServers\": {\"r\": {\"type\": \"http\", \"url\": \"https://h.example/mcp\","
	    " \"headers\": {\"Authorization\": \"Bearer ${credential:tok}\"},"
	    " \"ca_file\": \"/etc/ca.pem\", \"elicitation\": \"defaults\"},"
	    " \"u\": {\"url\": \"http://127.0.0.1:1/mcp\"},"
	    " \"s\": {\"type\": \"sse\", \"url\": \"http://127.0.0.1:1/sse\","
	    " \"elicitation\": {\"answers\": {\"ok\": true}}}}}");
	const struct mcp_server_def *r = config_find_server(cfg, "r");
	ck_assert_int_eq(r->type, MCP_SERVER_HTTP);
	ck_assert_str_eq(r->url, "https://h.example/mcp");
	ck_assert_str_eq(r->headers[0], "Authorization: Bearer ${credential:tok}");
	ck_assert_ptr_null(r->headers[1]);
	ck_assert_str_eq(r->ca_file, "/etc/ca.pem");
	ck_assert_int_eq(r->elicitation, MCP_ELICIT_DEFAULTS);
	ck_assert_ptr_null(r->log_level); /* "warning" */
	ck_assert_int_eq(config_find_server(cfg, "u")->type, MCP_SERVER_HTTP); /* url alone */
	ck_assert_int_eq(config_find_server(cfg, "s")->type, MCP_SERVER_SSE);
	ck_assert_int_eq(config_find_server(cfg, "s")->elicitation, MCP_ELICIT_ANSWERS);
	config_free(cfg);
}
END_TEST

START_TEST(test_remote_server_mistakes_name_the_key_not_the_secret) {
	char *errs = load_bad(
	    "{\"mcpServers\": {\"a\": {\"type\": \"http\", \"url\": \"ftp://h/x\"},"
	    " \"b\": {\"type\": \"http\"},"
	    " \"c\": {\"type\": \"http\", \"url\": \"http://h/\", \"command\": \"/x\","
	    " \"headers\": {\"X-Key\": \"${vault:k}\", \"Bad Name\": \"v\", \"N\": 5}},"
	    " \"d\": {\"command\": \"/x\", \"url\": \"http://h/\"},"
	    " \"e\": {\"type\": \"tcp\", \"url\": \"http://h/\"}}}");
	assert_has(errs, "mcpServers.a.url: \"ftp://h/x\": only http:// and https:// URLs");
	assert_has(errs, "mcpServers.b: missing \"url\"");
	assert_has(errs, "mcpServers.c.command: only for \"type\": \"stdio\" servers");
	assert_has(errs, "mcpServers.c.headers.X-Key: ${vault:k}: unknown source");
	assert_has(errs, "mcpServers.c.headers: \"Bad Name\" is not a header name");
	assert_has(errs, "mcpServers.c.headers.N: expected a string");
	assert_has(errs, "mcpServers.d.url: only for \"type\": \"http\" or \"sse\" servers");
	assert_has(errs, "mcpServers.e.type: \"tcp\" is not one of \"stdio\", \"http\", \"sse\"");
	free(errs);
	errs = load_bad("{\"mcpServers\": {\"a\": {\"command\": \"/x\", \"log_level\": \"loud\"}}}");
	assert_has(errs, "mcpServers.a.log_level: \"loud\" is not one of \"debug\"");
	free(errs);
	errs = load_bad("{\"mcpServers\": {\"a\": {\"command\": \"/x\", \"roots\": [\"/var/x\"]}}}");
	assert_has(errs, "mcpServers.a.roots[0]: \"/var/x\" is not a file:/// URI");
	free(errs);
	/* A literal secret with a bad reference elsewhere is never quoted. */
	errs = load_bad("{\"mcpServers\": {\"a\": {\"url\": \"http://h/\", \"headers\":"
	                " {\"Authorization\": \"Bearer tok-SECRET ${env:}\"}}}}");
	ck_assert_ptr_null(strstr(errs, "tok-SECRET"));
	free(errs);
}
END_TEST

START_TEST(test_server_auth_is_read_with_secrets_unexpanded) {
	struct config *cfg = load_good(
	    "{\"mcpServers\": {\"r\": {\"url\": \"https://h.example/mcp\", \"auth\": {"
	    " \"client_id\": \"app\", \"client_secret\": \"${credential:r-secret}\","
	    " \"scope\": \"read write\", \"grant\": \"client_credentials\"}},"
	    " \"c\": {\"url\": \"https://h.example/mcp\", \"auth\": {"
	    " \"client_metadata_url\": \"https://app.example/oauth/client.json\"}},"
	    " \"k\": {\"url\": \"https://h.example/mcp\", \"auth\": {\"client_id\": \"m2m\","
	    " \"private_key\": \"${credential:k.pem}\", \"grant\": \"client_credentials\"}},"
	    " \"j\": {\"url\": \"https://h.example/mcp\", \"auth\": {\"client_id\": \"app\","
	    " \"grant\": \"jwt_bearer\", \"idp_token_endpoint\": \"https://idp.example/token\","
	    " \"idp_client_id\": \"app-at-idp\", \"id_token\": \"${credential:idp-token}\"}},"
	    " \"n\": {\"url\": \"https://h.example/mcp\"}}}");
	const struct mcp_server_def *r = config_find_server(cfg, "r");
	ck_assert_ptr_nonnull(r->auth);
	ck_assert_str_eq(r->auth->client_id, "app");
	ck_assert_str_eq(r->auth->client_secret, "${credential:r-secret}");
	ck_assert_str_eq(r->auth->scope, "read write");
	ck_assert_int_eq(r->auth->grant, MCP_GRANT_CLIENT_CREDENTIALS);
	const struct mcp_server_def *c = config_find_server(cfg, "c");
	ck_assert_str_eq(c->auth->client_metadata_url, "https://app.example/oauth/client.json");
	ck_assert_ptr_null(c->auth->client_id);
	ck_assert_int_eq(c->auth->grant, MCP_GRANT_AUTHORIZATION_CODE); /* the default */
	ck_assert_str_eq(config_find_server(cfg, "k")->auth->private_key, "${credential:k.pem}");
	ck_assert_ptr_null(config_find_server(cfg, "n")->auth);
	const struct mcp_auth_def *j = config_find_server(cfg, "j")->auth;
	ck_assert_int_eq(j->grant, MCP_GRANT_JWT_BEARER);
	ck_assert_str_eq(j->idp_token_endpoint, "https://idp.example/token");
	ck_assert_str_eq(j->idp_client_id, "app-at-idp");
	ck_assert_str_eq(j->id_token, "${credential:idp-token}");
	/* A copy is equal; a changed scope makes another server. */
	struct mcp_server_def *copy = config_server_copy(r, NULL);
	ck_assert(config_server_equal(copy, r));
	free(copy->auth->scope);
	copy->auth->scope = strdup("read");
	ck_assert(!config_server_equal(copy, r));
	config_server_free(copy);
	config_free(cfg);
}
END_TEST

START_TEST(test_server_auth_mistakes_name_the_key_never_the_secret) {
	char *errs = load_bad(
	    "{\"mcpServers\": {"
	    " \"a\": {\"command\": \"/x\", \"auth\": {\"client_id\": \"i\"}},"
	    " \"b\": {\"url\": \"https://h/\", \"auth\": {\"clientid\": \"i\", \"grant\": \"implicit\"}},"
	    " \"c\": {\"url\": \"https://h/\", \"auth\": {\"grant\": \"client_credentials\","
	    " \"client_id\": \"i\"}},"
	    " \"d\": {\"url\": \"https://h/\", \"auth\": {\"client_secret\": \"s3cret-LITERAL\"}},"
	    " \"e\": {\"url\": \"https://h/\", \"auth\": {\"client_metadata_url\": \"http://app/c.json\"}},"
	    " \"f\": {\"url\": \"https://h/\", \"auth\": {\"client_id\": \"i\","
	    " \"private_key\": \"-----BEGIN PRIVATE KEY----- k3y-LITERAL\"}},"
	    " \"g\": {\"url\": \"https://h/\", \"auth\": {\"client_id\": \"i\","
	    " \"client_secret\": \"${vault:x}\", \"scope\": \"\"}},"
	    " \"h\": {\"url\": \"https://h/\", \"auth\": {\"client_id\": \"i\","
	    " \"client_metadata_url\": \"https://app/c.json\"}},"
	    " \"i\": {\"url\": \"https://h/\", \"auth\": \"yes\"},"
	    " \"j\": {\"url\": \"https://h/\", \"auth\": {\"grant\": \"jwt_bearer\","
	    " \"id_token\": \"eyJ-1d-LITERAL\"}},"
	    " \"k\": {\"url\": \"https://h/\", \"auth\": {\"idp_client_id\": \"x\"}}}}");
	assert_has(errs, "mcpServers.a.auth: only for \"type\": \"http\" or \"sse\" servers");
	assert_has(errs, "mcpServers.b.auth.clientid: unknown key (did you mean \"client_id\"?)");
	assert_has(errs, "mcpServers.b.auth.grant: \"implicit\" is not one of "
	                 "\"authorization_code\", \"client_credentials\", \"jwt_bearer\"");
	assert_has(errs, "mcpServers.c.auth.grant: \"client_credentials\" needs \"client_id\" and "
	                 "\"client_secret\" or \"private_key\"");
	assert_has(errs, "mcpServers.d.auth: \"client_secret\" needs the \"client_id\"");
	assert_has(errs, "mcpServers.e.auth.client_metadata_url: \"http://app/c.json\" is not an "
	                 "https:// URL with a path");
	assert_has(errs, "mcpServers.f.auth.private_key: must be a reference, e.g.");
	assert_has(errs, "mcpServers.g.auth.client_secret: ${vault:x}: unknown source");
	assert_has(errs, "mcpServers.g.auth.scope: must not be empty");
	assert_has(errs, "mcpServers.h.auth: \"client_id\" and \"client_metadata_url\" do not go "
	                 "together");
	assert_has(errs, "mcpServers.i.auth: ");
	assert_has(errs, "mcpServers.j.auth: missing \"idp_token_endpoint\"");
	assert_has(errs, "mcpServers.j.auth.id_token: must be a reference");
	assert_has(errs, "mcpServers.k.auth.idp_client_id: only for \"grant\": \"jwt_bearer\"");
	ck_assert_ptr_null(strstr(errs, "eyJ-1d-LITERAL"));
	ck_assert_ptr_null(strstr(errs, "s3cret-LITERAL"));
	ck_assert_ptr_null(strstr(errs, "k3y-LITERAL"));
	free(errs);
}
END_TEST

START_TEST(test_flex_longer_than_interval_refused) {
	char *errs = load_bad("{\"jobs\": [{" JOB_OK ", \"flex\": \"90s\"}]}");
	assert_has(errs, "jobs[0] (j).flex: 1m30s is longer than the interval (1m)");
	free(errs);
	struct config *cfg = load_good("{\"jobs\": [{" JOB_OK ", \"flex\": \"60s\"}]}");
	ck_assert_int_eq(cfg->jobs[0]->flex_ms, 60000);
	config_free(cfg);
}
END_TEST

START_TEST(test_interval_shorter_than_a_second_refused) {
	char *errs = load_bad("{\"jobs\": [{\"id\": \"j\", \"interval\": \"500ms\","
	                      " \"action\": {\"exec\": {\"argv\": [\"x\"]}}}]}");
	assert_has(errs, "jobs[0] (j).interval: \"500ms\" is too short (at least 1s)");
	free(errs);
}
END_TEST

START_TEST(test_durations_in_many_forms) {
	static const struct { const char *text; int64_t ms; } forms[] = {
		{"1s", 1000}, {"90s", 90000}, {"15m", 900000}, {"1h30m", 5400000},
		{"2h", 7200000}, {"1d12h", 129600000}, {"7d", 604800000}, {"2w", 1209600000},
		{"1500ms", 1500}, {"1m30s", 90000}, {"10min", 600000},
	};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		char *text = xasprintf("{\"jobs\": [{\"id\": \"j\", \"interval\": \"%s\", \"timeout\": "
		                       "\"%s\", \"initial_delay\": \"%s\","
		                       " \"action\": {\"exec\": {\"argv\": [\"x\"]}}}]}",
		                       forms[i].text, forms[i].text, forms[i].text);
		struct config *cfg = load_good(text);
		ck_assert_int_eq(cfg->jobs[0]->interval_ms, forms[i].ms);
		ck_assert_int_eq(cfg->jobs[0]->timeout_ms, forms[i].ms);
		ck_assert_int_eq(cfg->jobs[0]->initial_delay_ms, forms[i].ms);
		config_free(cfg);
		free(text);
	}
	static const char *const bad[] = {"15", "", "m", "1x", "-5m", "1.5h", "5 m"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = xasprintf("{\"jobs\": [{" JOB_OK ", \"timeout\": \"%s\"}]}", bad[i]);
		char *errs = load_bad(text);
		char *want = xasprintf("jobs[0] (j).timeout: \"%s\" is not a duration", bad[i]);
		assert_has(errs, want);
		free(want);
		free(errs);
		free(text);
	}
}
END_TEST

START_TEST(test_action_needs_exactly_one_kind) {
	char *errs = load_bad(
	    "{\"jobs\": [{\"id\": \"a\", \"interval\": \"1m\", \"action\": {}},\n"
	    " {\"id\": \"b\", \"interval\": \"1m\", \"action\": {\"exec\": {\"argv\": [\"x\"]},"
	    "  \"cleanup\": {\"path\": \"/x\", \"max_age\": \"1d\"}}},\n"
	    " {\"id\": \"c\", \"interval\": \"1m\", \"action\": {\"exce\": {}}}]}");
	assert_has(errs, "jobs[0] (a).action: is empty (use one of \"exec\", \"cleanup\" or \"mcp\")");
	assert_has(errs, "jobs[1] (b).action: has more than one of \"exec\", \"cleanup\" and \"mcp\"");
	assert_has(errs, "jobs[2] (c).action.exce: unknown key (did you mean \"exec\"?)");
	free(errs);
}
END_TEST

START_TEST(test_cleanup_of_root_refused) {
	char *errs = load_bad("{\"jobs\": [{\"id\": \"c\", \"interval\": \"1d\", \"action\": "
	                      "{\"cleanup\": {\"path\": \"/\", \"max_age\": \"1d\"}}}]}");
	assert_has(errs, "jobs[0] (c).action.cleanup.path: refusing to clean up \"/\"");
	free(errs);
}
END_TEST

START_TEST(test_exec_env_and_cwd_read) {
	struct config *cfg = load_good(
	    "{\"jobs\": [{\"id\": \"e\", \"interval\": \"1m\", \"action\": {\"exec\": "
	    "{\"argv\": [\"/bin/env\", \"-0\"], \"env\": {\"A\": \"1\", \"B\": \"x=y\"}, \"cwd\": \"/tmp\"}}}]}");
	const struct job_def *j = cfg->jobs[0];
	ck_assert_str_eq(j->exec.argv[0], "/bin/env");
	ck_assert_ptr_null(j->exec.argv[2]);
	ck_assert_str_eq(j->exec.env[0], "A=1");
	ck_assert_str_eq(j->exec.env[1], "B=x=y");
	ck_assert_ptr_null(j->exec.env[2]);
	ck_assert_str_eq(j->exec.cwd, "/tmp");
	config_free(cfg);
	char *errs = load_bad("{\"jobs\": [{\"id\": \"e\", \"interval\": \"1m\", \"action\": {\"exec\": "
	                      "{\"argv\": [\"x\", 3], \"env\": {\"A=B\": \"1\", \"C\": 2}}}}]}");
	assert_has(errs, "jobs[0] (e).action.exec.argv[1]: expected a string, got 3");
	assert_has(errs, "jobs[0] (e).action.exec.env: \"A=B\" is not a variable name");
	assert_has(errs, "jobs[0] (e).action.exec.env.C: expected a string, got 2");
	free(errs);
}
END_TEST

START_TEST(test_limits_sizes_and_cpu) {
	struct config *cfg = load_good(
	    "{\"jobs\": [{" JOB_OK ", \"limits\": {\"memory\": \"512M\", \"cpu\": \"1m30s\","
	    " \"nofile\": 1024, \"nproc\": 64}},\n"
	    " {\"id\": \"k\", \"interval\": \"1m\", \"action\": {\"exec\": {\"argv\": [\"x\"]}},"
	    "  \"limits\": {\"memory\": 1048576, \"cpu\": 5}}]}");
	ck_assert_uint_eq(cfg->jobs[0]->limits->memory, 512ULL << 20);
	ck_assert_uint_eq(cfg->jobs[0]->limits->cpu, 90);
	ck_assert_uint_eq(cfg->jobs[0]->limits->nofile, 1024);
	ck_assert_uint_eq(cfg->jobs[0]->limits->nproc, 64);
	ck_assert_uint_eq(cfg->jobs[1]->limits->memory, 1048576);
	ck_assert_uint_eq(cfg->jobs[1]->limits->cpu, 5);
	config_free(cfg);
	char *errs = load_bad("{\"jobs\": [{" JOB_OK ", \"limits\": {\"memory\": \"lots\","
	                      " \"cpu\": true, \"nofile\": 0, \"mem\": 1}}]}");
	assert_has(errs, "jobs[0] (j).limits.memory: expected a size such as \"512M\"");
	assert_has(errs, "jobs[0] (j).limits.cpu: expected a duration such as \"60s\"");
	assert_has(errs, "jobs[0] (j).limits.nofile: 0 is out of range");
	assert_has(errs, "jobs[0] (j).limits.mem: unknown key");
	free(errs);
}
END_TEST

START_TEST(test_retry_initial_clamped_and_max_checked) {
	struct config *cfg = load_good(
	    "{\"jobs\": [{" JOB_OK ", \"retry\": {\"initial\": \"10ms\", \"backoff\": \"linear\","
	    " \"max_attempts\": 1}},\n"
	    " {\"id\": \"k\", \"interval\": \"1m\", \"action\": {\"exec\": {\"argv\": [\"x\"]}},"
	    "  \"retry\": {\"initial\": \"2h\"}}]}");
	ck_assert_int_eq(cfg->jobs[0]->retry->initial_ms, 1000);
	ck_assert_int_eq(cfg->jobs[0]->retry->backoff, BACKOFF_LINEAR);
	ck_assert_int_eq(cfg->jobs[0]->retry->max_attempts, 1);
	ck_assert_int_eq(cfg->jobs[1]->retry->max_ms, 7200000); /* default max follows initial */
	config_free(cfg);
	char *errs = load_bad("{\"jobs\": [{" JOB_OK ", \"retry\": {\"initial\": \"1m\", \"max\": "
	                      "\"30s\", \"max_attempts\": 0, \"backoff\": \"random\"}}]}");
	assert_has(errs, "jobs[0] (j).retry.max: 30s is shorter than \"initial\" (1m)");
	assert_has(errs, "jobs[0] (j).retry.max_attempts: 0 is out of range");
	assert_has(errs, "jobs[0] (j).retry.backoff: \"random\" is not one of \"exponential\", "
	                 "\"linear\"");
	free(errs);
}
END_TEST

START_TEST(test_unknown_template_variable_refused) {
	char *errs = load_bad(
	    "{\"mcpServers\": {\"s\": {\"command\": \"/s\"}}, \"jobs\": [{\"id\": \"m\","
	    " \"interval\": \"1m\", \"action\": {\"mcp\": {\"server\": \"s\", \"tool\": \"t\","
	    " \"arguments\": {\"a\": \"${last_sucess}\", \"b\": [\"x ${foo} y\"],"
	    " \"c\": \"${now} ${job_id} ${run_id} ${last_run}\"}}}}]}");
	assert_has(errs, "jobs[0] (m).action.mcp.arguments.a: unknown template \"${last_sucess}\" "
	                 "(did you mean \"${last_success}\"?)");
	assert_has(errs, "jobs[0] (m).action.mcp.arguments.b[0]: unknown template \"${foo}\"");
	ck_assert_uint_eq(count_lines(errs), 2);
	free(errs);
}
END_TEST

START_TEST(test_errors_join_and_clear) {
	struct config_errors errs = {0};
	char *empty = config_errors_join(&errs);
	ck_assert_str_eq(empty, "");
	free(empty);
	config_errors_add(&errs, "a: %d", 1);
	config_errors_add(&errs, "b: %s", "two");
	char *joined = config_errors_join(&errs);
	ck_assert_str_eq(joined, "a: 1\nb: two");
	free(joined);
	config_errors_clear(&errs);
	ck_assert_ptr_null(errs.msgs);
	ck_assert_uint_eq(errs.n, 0);
}
END_TEST

START_TEST(test_relative_main_path_finds_dropins) {
	free(write_file("jobs.d/a.json", "{\"jobs\": [{\"id\": \"d\", \"interval\": \"1m\","
	                                 " \"action\": {\"exec\": {\"argv\": [\"x\"]}}}]}"));
	free(write_file("mcpjobd.json", "{\"jobs\": [{" JOB_OK "}]}"));
	char old[4096];
	ck_assert_ptr_nonnull(getcwd(old, sizeof old));
	ck_assert_int_eq(chdir(tmpdir), 0);
	struct config_errors errs = {0};
	struct config *cfg = NULL;
	ck_assert_int_eq(config_load("mcpjobd.json", &cfg, &errs), 0);
	ck_assert_uint_eq(cfg->njobs, 2);
	ck_assert_str_eq(cfg->jobs[1]->source, "jobs.d/a.json");
	config_free(cfg);
	ck_assert_int_eq(chdir(old), 0);
}
END_TEST

START_TEST(test_long_or_control_values_are_cut_to_one_line) {
	char *longkey = xmalloc(5001);
	memset(longkey, 'k', 5000);
	longkey[5000] = '\0';
	char *text = xasprintf("{\"jobs\": [{\"id\": \"a\\nb\", \"interval\": \"1m\","
	                       " \"action\": {\"cleanup\": {\"path\": \"%s\", \"max_age\": \"%s\"}}}],"
	                       " \"%s\": 1}", longkey, longkey, longkey);
	char *errs = load_bad(text);
	ck_assert_uint_eq(count_lines(errs), 4); /* id, path, max_age, unknown key */
	assert_has(errs, "jobs[0].id: \"a?b\" is not a valid id");
	assert_has(errs, "kkk...: unknown key");
	assert_has(errs, "is not a duration (too long)");
	ck_assert_uint_lt(strlen(errs), 4 * 400);
	free(errs);
	free(text);
	free(longkey);
}
END_TEST

static Suite *config_suite(void) {
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_example_config_loads_with_its_fields);
	tcase_add_test(tc, test_defaults_applied_to_minimal_config);
	tcase_add_test(tc, test_settings_and_servers_are_read);
	tcase_add_test(tc, test_syntax_error_names_file_line_column);
	tcase_add_test(tc, test_streamed_jobs_keep_every_value);
	tcase_add_test(tc, test_a_streamed_job_with_a_syntax_error_gives_only_that_error);
	tcase_add_test(tc, test_packed_jobs_share_equal_strings_and_keep_their_own);
	tcase_add_test(tc, test_duplicate_key_is_a_syntax_error);
	tcase_add_test(tc, test_server_args_without_command_is_an_error);
	tcase_add_test(tc, test_string_with_nul_is_refused_with_its_key_path);
	tcase_add_test(tc, test_bad_duration_names_key_path_with_id);
	tcase_add_test(tc, test_durability_and_store_max_size_are_read_and_checked);
	tcase_add_test(tc, test_bad_value_without_id_uses_index);
	tcase_add_test(tc, test_unknown_key_suggests_close_key);
	tcase_add_test(tc, test_unknown_key_without_close_match_has_no_guess);
	tcase_add_test(tc, test_missing_required_keys_reported);
	tcase_add_test(tc, test_type_errors_name_expected_type);
	tcase_add_test(tc, test_syntax_error_is_one_sentence);
	tcase_add_test(tc, test_top_level_must_be_an_object);
	tcase_add_test(tc, test_several_errors_in_one_file_all_reported);
	tcase_add_test(tc, test_missing_main_file_is_named);
	tcase_add_test(tc, test_dropins_load_in_name_order_after_main);
	tcase_add_test(tc, test_duplicate_id_across_files_names_both);
	tcase_add_test(tc, test_dropin_errors_name_the_dropin);
	tcase_add_test(tc, test_duplicate_server_across_files_refused);
	tcase_add_test(tc, test_mcp_job_naming_undeclared_server_refused);
	tcase_add_test(tc, test_remote_servers_are_read_with_headers_unexpanded);
	tcase_add_test(tc, test_remote_server_mistakes_name_the_key_not_the_secret);
	tcase_add_test(tc, test_flex_longer_than_interval_refused);
	tcase_add_test(tc, test_interval_shorter_than_a_second_refused);
	tcase_add_test(tc, test_durations_in_many_forms);
	tcase_add_test(tc, test_action_needs_exactly_one_kind);
	tcase_add_test(tc, test_cleanup_of_root_refused);
	tcase_add_test(tc, test_exec_env_and_cwd_read);
	tcase_add_test(tc, test_limits_sizes_and_cpu);
	tcase_add_test(tc, test_retry_initial_clamped_and_max_checked);
	tcase_add_test(tc, test_unknown_template_variable_refused);
	tcase_add_test(tc, test_errors_join_and_clear);
	tcase_add_test(tc, test_relative_main_path_finds_dropins);
	tcase_add_test(tc, test_long_or_control_values_are_cut_to_one_line);
	tcase_add_test(tc, test_server_auth_is_read_with_secrets_unexpanded);
	tcase_add_test(tc, test_server_auth_mistakes_name_the_key_never_the_secret);
	suite_add_tcase(s, tc);
	/* 1,024 jobs and more in a file are parsed on a second thread: tagged,
	 * as check-arm64 leaves them out (qemu-user 7.2 hangs in pthread_create). */
	TCase *tl = tcase_create("config-long-streams");
	tcase_set_tags(tl, "threads");
	tcase_add_checked_fixture(tl, setup, teardown);
	tcase_add_test(tl, test_a_long_stream_keeps_order_values_and_errors);
	tcase_add_test(tl, test_many_jobs_are_all_found_by_id_and_a_late_duplicate_names_the_first);
	suite_add_tcase(s, tl);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
