/*
 * test_store.c - the LMDB store: records round-trip, history order and
 * bounds, retention, recovery of interrupted runs, reopen, schema refusal and
 * growing a full map. Each test gets a fresh state directory under /tmp.
 */
#include <check.h>
#include <event2/event.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/jsontext.h"
#include "common/strv.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/orphan.h"
#include "daemon/store.h"
#include "tests/unit/files_refuse.h"

static char tmpdir[] = "/tmp/test_store.XXXXXX";
static char *statedir;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void) {
	strcpy(tmpdir, "/tmp/test_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	statedir = xasprintf("%s/state", tmpdir);
}

static void teardown(void) {
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(statedir);
	unsetenv("MCPJOB_STORE_MAPSIZE");
	unsetenv("MCPJOB_STORE_FOLD_MS");
	unsetenv("MCPJOB_STORE_BOOT_ID");
}

static struct store *open_ok(void) {
	struct store *st = NULL;
	char *cause = NULL;

	if (store_open(statedir, &st, &cause) != 0)
		ck_abort_msg("store_open: %s", cause);
	return st;
}

/* Begin a run of @job started at @started; returns its id. */
static uint64_t begin(struct store *st, const char *job, int64_t started) {
	struct run_record run = { .job_id = xstrdup(job), .trigger = TRIGGER_SCHEDULE,
	                          .attempt = 1, .started_ms = started };
	struct job_record rec;
	char *cause = NULL;
	uint64_t id;

	store_job_record_init(&rec);
	rec.last_run_ms = started;
	if (store_run_begin(st, &run, &rec, &cause) != 0)
		ck_abort_msg("store_run_begin: %s", cause);
	ck_assert_int_eq(run.outcome, OUTCOME_RUNNING);
	id = run.run_id;
	store_run_record_clear(&run);
	return id;
}

static void finish(struct store *st, const char *job, uint64_t id, int64_t started,
                   enum run_outcome o, int max_runs, int64_t max_age, int64_t now) {
	struct run_record run = { .run_id = id, .job_id = xstrdup(job), .attempt = 1,
	                          .started_ms = started, .finished_ms = started + 5, .outcome = o };
	struct job_record rec;
	char *cause = NULL;

	run.message = xasprintf("run %llu done", (unsigned long long)id);
	store_job_record_init(&rec);
	rec.last_run_ms = started;
	rec.last_finished_ms = started + 5;
	rec.last_outcome = o;
	if (store_run_finish(st, &run, &rec, max_runs, max_age, now, &cause) != 0)
		ck_abort_msg("store_run_finish: %s", cause);
	store_run_record_clear(&run);
}

static uint64_t run_once(struct store *st, const char *job, int64_t started) {
	uint64_t id = begin(st, job, started);

	finish(st, job, id, started, OUTCOME_SUCCESS, 0, 0, started + 10);
	return id;
}

/* History collected into arrays, for assertions. */
struct seen {
	size_t n;
	size_t stop_after; /* 0 = never stop */
	uint64_t ids[1024];
	int64_t started[1024];
	enum run_outcome outcomes[1024];
	char *jobs[1024];
};

static int collect(const struct run_record *run, void *arg) {
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, 1024);
	s->ids[s->n] = run->run_id;
	s->started[s->n] = run->started_ms;
	s->outcomes[s->n] = run->outcome;
	s->jobs[s->n] = xstrdup(run->job_id);
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

static void seen_free(struct seen *s) {
	for (size_t i = 0; i < s->n; i++)
		free(s->jobs[i]);
	free(s);
}

static struct seen *history(struct store *st, const char *job, int64_t before, size_t limit) {
	struct seen *s = xcalloc(1, sizeof *s);
	char *cause = NULL;

	if (store_history(st, job, before, limit, collect, s, &cause) != 0)
		ck_abort_msg("store_history: %s", cause);
	return s;
}

START_TEST(test_job_record_round_trips) {
	struct store *st = open_ok();
	struct job_record in, out;
	char *cause = NULL;

	store_job_record_init(&in);
	ck_assert_int_eq(store_load_job(st, "sync", &out, &cause), 1);
	ck_assert_int_eq(out.enabled_override, -1);
	ck_assert_ptr_null(out.last_message);
	in.enabled_override = 0;
	in.last_run_ms = 1700000000123;
	in.last_finished_ms = 1700000000456;
	in.last_success_ms = 1690000000000;
	in.last_outcome = OUTCOME_TIMEOUT;
	in.last_message = xstrdup("timed out after 30s");
	in.next_due_ms = 1700000900000;
	in.attempt = 2;
	ck_assert_int_eq(store_save_job(st, "sync", &in, &cause), 0);
	ck_assert_int_eq(store_load_job(st, "sync", &out, &cause), 0);
	ck_assert_int_eq(out.enabled_override, 0);
	ck_assert_int_eq(out.last_run_ms, in.last_run_ms);
	ck_assert_int_eq(out.last_finished_ms, in.last_finished_ms);
	ck_assert_int_eq(out.last_success_ms, in.last_success_ms);
	ck_assert_int_eq(out.last_outcome, OUTCOME_TIMEOUT);
	ck_assert_str_eq(out.last_message, "timed out after 30s");
	ck_assert_int_eq(out.next_due_ms, in.next_due_ms);
	ck_assert_int_eq(out.attempt, 2);
	store_job_record_clear(&in);
	store_job_record_clear(&out);
	store_close(st);
}
END_TEST

static int keep_first(const struct run_record *run, void *arg) {
	struct run_record *out = arg;

	out->run_id = run->run_id;
	out->job_id = xstrdup(run->job_id);
	out->trigger = run->trigger;
	out->attempt = run->attempt;
	out->started_ms = run->started_ms;
	out->finished_ms = run->finished_ms;
	out->outcome = run->outcome;
	out->message = xstrdup_or_null(run->message);
	out->output = xstrdup_or_null(run->output);
	out->structured = run->structured ? json_incref(run->structured) : NULL;
	return 1;
}

static int keep_text(const struct run_record *run, void *arg) {
	struct run_record *out = arg;

	store_run_record_copy(out, run);
	return 1;
}

/* structuredContent is encoded once (by the action): the record keeps that
 * text, a reply writes it, and what is read back is the same as without it. */
START_TEST(test_structured_text_is_stored_as_kept_and_read_back_with_it) {
	struct store *st = open_ok();
	struct run_record run = { .job_id = xstrdup("sc"), .attempt = 1, .started_ms = 1700000000000 };
	struct run_record got = { 0 };
	struct jsontext kept, dumped;
	struct job_record rec;
	char *cause = NULL;

	store_job_record_init(&rec);
	ck_assert_int_eq(store_run_begin(st, &run, &rec, &cause), 0);
	run.finished_ms = run.started_ms + 5;
	run.outcome = OUTCOME_SUCCESS;
	run.structured = json_pack("{s:[i,f,s], s:{s:b}}", "n", 1, 2.5, "caf\xc3\xa9", "o", "k", 1);
	run.structured_text = json_dumps(run.structured, JSON_COMPACT);
	ck_assert_int_eq(store_run_finish(st, &run, &rec, 0, 0, run.finished_ms, &cause), 0);
	ck_assert_int_eq(store_history(st, "sc", 0, 0, keep_text, &got, &cause), 0);
	ck_assert(json_equal(got.structured, run.structured));
	ck_assert_str_eq(got.structured_text, run.structured_text);
	jsontext_init(&kept);
	store_run_text(&got, &kept);
	free(got.structured_text);
	got.structured_text = NULL; /* the same record, its text made by the encoder */
	jsontext_init(&dumped);
	store_run_text(&got, &dumped);
	ck_assert_str_eq(kept.buf, dumped.buf);
	ck_assert_ptr_nonnull(strstr(kept.buf, "\"structured_content\":{\"n\":[1,2.5,"));
	jsontext_free(&kept);
	jsontext_free(&dumped);
	store_run_record_clear(&got);
	store_run_record_clear(&run);
	store_close(st);
}
END_TEST

START_TEST(test_run_round_trips_through_begin_and_finish) {
	struct store *st = open_ok();
	struct run_record run = { .job_id = xstrdup("sync"), .trigger = TRIGGER_RETRY,
	                          .attempt = 3, .started_ms = 1700000000000 };
	struct run_record got = { 0 };
	struct job_record rec, loaded;
	char *cause = NULL;

	store_job_record_init(&rec);
	ck_assert_int_eq(store_run_begin(st, &run, &rec, &cause), 0);
	ck_assert_uint_eq(run.run_id, 1);
	ck_assert_int_eq(store_history(st, "sync", 0, 1, keep_first, &got, &cause), 0);
	ck_assert_uint_eq(got.run_id, 1);
	ck_assert_int_eq(got.outcome, OUTCOME_RUNNING);
	ck_assert_int_eq(got.finished_ms, 0);
	store_run_record_clear(&got);

	run.finished_ms = run.started_ms + 1234;
	run.outcome = OUTCOME_FAILURE;
	run.message = xstrdup("exit status 3");
	run.output = xstrdup("line 1\nexit status 3\n");
	run.structured = json_pack("{s:i}", "synced", 42);
	rec.last_outcome = OUTCOME_FAILURE;
	rec.last_finished_ms = run.finished_ms;
	ck_assert_int_eq(store_run_finish(st, &run, &rec, 0, 0, run.finished_ms, &cause), 0);
	ck_assert_int_eq(store_history(st, "sync", 0, 0, keep_first, &got, &cause), 0);
	ck_assert_uint_eq(got.run_id, 1);
	ck_assert_str_eq(got.job_id, "sync");
	ck_assert_int_eq(got.trigger, TRIGGER_RETRY);
	ck_assert_int_eq(got.attempt, 3);
	ck_assert_int_eq(got.started_ms, 1700000000000);
	ck_assert_int_eq(got.finished_ms, 1700000001234);
	ck_assert_int_eq(got.outcome, OUTCOME_FAILURE);
	ck_assert_str_eq(got.message, "exit status 3");
	ck_assert_str_eq(got.output, "line 1\nexit status 3\n");
	ck_assert(json_equal(got.structured, run.structured));
	ck_assert_int_eq(store_load_job(st, "sync", &loaded, &cause), 0);
	ck_assert_int_eq(loaded.last_outcome, OUTCOME_FAILURE);
	ck_assert_int_eq(loaded.last_finished_ms, 1700000001234);
	store_job_record_clear(&loaded);
	store_run_record_clear(&got);
	store_run_record_clear(&run);
	store_close(st);
}
END_TEST

START_TEST(test_history_is_newest_first) {
	struct store *st = open_ok();
	uint64_t ids[5];
	struct seen *s;

	/* Started out of order: order is by start time, not by run id. */
	ids[0] = run_once(st, "job", 3000);
	ids[1] = run_once(st, "job", 1000);
	ids[2] = run_once(st, "job", 5000);
	ids[3] = run_once(st, "job", 2000);
	ids[4] = run_once(st, "job", 4000);
	s = history(st, "job", 0, 0);
	ck_assert_uint_eq(s->n, 5);
	ck_assert_int_eq(s->started[0], 5000);
	ck_assert_uint_eq(s->ids[0], ids[2]);
	ck_assert_int_eq(s->started[1], 4000);
	ck_assert_int_eq(s->started[2], 3000);
	ck_assert_int_eq(s->started[3], 2000);
	ck_assert_int_eq(s->started[4], 1000);
	ck_assert_uint_eq(s->ids[4], ids[1]);
	ck_assert_int_eq(s->outcomes[0], OUTCOME_SUCCESS);
	seen_free(s);
	store_close(st);
}
END_TEST

START_TEST(test_history_honours_limit_before_and_stop) {
	struct store *st = open_ok();
	struct seen *s;
	char *cause = NULL;

	for (int i = 1; i <= 10; i++)
		run_once(st, "job", i * 1000);
	s = history(st, "job", 0, 3);
	ck_assert_uint_eq(s->n, 3);
	ck_assert_int_eq(s->started[0], 10000);
	ck_assert_int_eq(s->started[2], 8000);
	seen_free(s);

	/* "before" is strict: the run started at 5000 is not included. */
	s = history(st, "job", 5000, 2);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_int_eq(s->started[0], 4000);
	ck_assert_int_eq(s->started[1], 3000);
	seen_free(s);

	s = history(st, "job", 1000, 0);
	ck_assert_uint_eq(s->n, 0);
	seen_free(s);

	s = xcalloc(1, sizeof *s);
	s->stop_after = 4;
	ck_assert_int_eq(store_history(st, "job", 0, 0, collect, s, &cause), 0);
	ck_assert_uint_eq(s->n, 4);
	seen_free(s);

	s = history(st, "no-such-job", 0, 0);
	ck_assert_uint_eq(s->n, 0);
	seen_free(s);
	store_close(st);
}
END_TEST

START_TEST(test_prefix_job_ids_do_not_mix) {
	const char *jobs[] = { "a", "ab", "a-b", "aa", "b", "" };
	struct store *st = open_ok();
	struct seen *s;

	/* Interleave start times so ranges would mix if keys did. */
	for (int i = 0; i < 4; i++)
		for (int j = 0; jobs[j][0]; j++)
			run_once(st, jobs[j], 1000 + i * 100 + j);
	for (int j = 0; jobs[j][0]; j++) {
		s = history(st, jobs[j], 0, 0);
		ck_assert_uint_eq(s->n, 4);
		for (size_t k = 0; k < s->n; k++)
			ck_assert_str_eq(s->jobs[k], jobs[j]);
		seen_free(s);
	}
	/* A prefix with limit and before still only sees its own runs. */
	s = history(st, "a", 1250, 2);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_int_eq(s->started[0], 1200);
	ck_assert_int_eq(s->started[1], 1100);
	seen_free(s);
	store_close(st);
}
END_TEST

START_TEST(test_retention_by_count_keeps_running_run) {
	struct store *st = open_ok();
	uint64_t running, last = 0;
	struct seen *s;

	running = begin(st, "job", 500); /* oldest, and never finished */
	run_once(st, "other", 600);
	for (int i = 1; i <= 6; i++) {
		int64_t t = 1000 * i;

		last = begin(st, "job", t);
		finish(st, "job", last, t, OUTCOME_SUCCESS, 2, 0, t + 10);
	}
	s = history(st, "job", 0, 0);
	ck_assert_uint_eq(s->n, 3);
	ck_assert_uint_eq(s->ids[0], last);
	ck_assert_int_eq(s->started[0], 6000);
	ck_assert_int_eq(s->started[1], 5000);
	ck_assert_uint_eq(s->ids[2], running);
	ck_assert_int_eq(s->outcomes[2], OUTCOME_RUNNING);
	seen_free(s);
	s = history(st, "other", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);
	store_close(st);
}
END_TEST

START_TEST(test_retention_by_age_keeps_running_run) {
	struct store *st = open_ok();
	uint64_t running, id;
	struct seen *s;

	for (int i = 1; i <= 5; i++)
		run_once(st, "job", 1000 * i);
	running = begin(st, "job", 1500);
	run_once(st, "other", 1000);
	id = begin(st, "job", 9000);
	/* now 10000, max age 6500: runs started before 3500 go. */
	finish(st, "job", id, 9000, OUTCOME_SUCCESS, 0, 6500, 10000);
	s = history(st, "job", 0, 0);
	ck_assert_uint_eq(s->n, 4);
	ck_assert_int_eq(s->started[0], 9000);
	ck_assert_int_eq(s->started[1], 5000);
	ck_assert_int_eq(s->started[2], 4000);
	ck_assert_uint_eq(s->ids[3], running);
	seen_free(s);
	s = history(st, "other", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);

	/* The run being finished is kept even if it is itself older than the limit. */
	id = begin(st, "late", 100);
	finish(st, "late", id, 100, OUTCOME_SUCCESS, 0, 1000, 50000);
	s = history(st, "late", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);
	store_close(st);
}
END_TEST

/* Many deletions in one transaction cross page boundaries and merges. */
START_TEST(test_retention_prunes_many_runs_across_pages) {
	struct store *st = open_ok();
	struct seen *s;
	uint64_t id;

	for (int i = 1; i <= 400; i++) {
		run_once(st, "many", i * 1000);
		if (i % 3 == 0)
			run_once(st, "many-neighbour", i * 1000);
	}
	id = begin(st, "many", 401000);
	finish(st, "many", id, 401000, OUTCOME_SUCCESS, 50, 0, 401010);
	s = history(st, "many", 0, 0);
	ck_assert_uint_eq(s->n, 50);
	for (size_t k = 0; k < s->n; k++)
		ck_assert_int_eq(s->started[k], (int64_t)(401 - k) * 1000);
	seen_free(s);

	id = begin(st, "many", 402000);
	finish(st, "many", id, 402000, OUTCOME_SUCCESS, 50, 20500, 402010);
	s = history(st, "many", 0, 0);
	ck_assert_uint_eq(s->n, 21); /* started at 382000 .. 402000 */
	ck_assert_int_eq(s->started[20], 382000);
	seen_free(s);
	s = history(st, "many-neighbour", 0, 0);
	ck_assert_uint_eq(s->n, 133);
	seen_free(s);
	store_close(st);
}
END_TEST

static int count_interrupted(const struct run_record *run, void *arg) {
	int *n = arg;

	ck_assert_int_eq(run->outcome, OUTCOME_INTERRUPTED);
	ck_assert_int_eq(run->finished_ms, 77000);
	ck_assert_ptr_nonnull(run->message);
	(*n)++;
	return 0;
}

START_TEST(test_recover_interrupted_rewrites_running_runs_once) {
	struct store *st = open_ok();
	struct job_record rec;
	struct seen *s;
	char *cause = NULL;
	int seen = 0;

	run_once(st, "a", 1000);
	begin(st, "a", 2000);
	run_once(st, "b", 1000);
	begin(st, "b", 3000);
	run_once(st, "c", 1000);
	store_close(st);

	st = open_ok();
	ck_assert_int_eq(store_recover_interrupted(st, 77000, count_interrupted, &seen, &cause), 2);
	ck_assert_int_eq(seen, 2);
	ck_assert_int_eq(store_recover_interrupted(st, 78000, NULL, NULL, &cause), 0);
	s = history(st, "a", 0, 0);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_int_eq(s->outcomes[0], OUTCOME_INTERRUPTED);
	ck_assert_int_eq(s->outcomes[1], OUTCOME_SUCCESS);
	seen_free(s);
	s = history(st, "c", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_int_eq(s->outcomes[0], OUTCOME_SUCCESS);
	seen_free(s);
	ck_assert_int_eq(store_load_job(st, "b", &rec, &cause), 0);
	ck_assert_int_eq(rec.last_outcome, OUTCOME_INTERRUPTED);
	ck_assert_int_eq(rec.last_finished_ms, 77000);
	ck_assert_ptr_nonnull(strstr(rec.last_message, "stopped"));
	store_job_record_clear(&rec);
	store_close(st);

	st = open_ok();
	ck_assert_int_eq(store_recover_interrupted(st, 79000, NULL, NULL, &cause), 0);
	s = history(st, "b", 0, 0);
	ck_assert_uint_eq(s->n, 2);
	seen_free(s);
	store_close(st);
}
END_TEST

START_TEST(test_reopen_keeps_everything) {
	struct store *st = open_ok();
	struct job_record rec;
	struct seen *s;
	char *cause = NULL;

	for (int i = 1; i <= 3; i++)
		run_once(st, "j", i * 1000);
	begin(st, "j", 4000);
	store_job_record_init(&rec);
	rec.enabled_override = 0;
	rec.last_run_ms = 4000;
	ck_assert_int_eq(store_save_job(st, "j", &rec, &cause), 0);
	store_close(st);

	st = open_ok();
	ck_assert_int_eq(store_load_job(st, "j", &rec, &cause), 0);
	ck_assert_int_eq(rec.enabled_override, 0);
	ck_assert_int_eq(rec.last_run_ms, 4000);
	s = history(st, "j", 0, 0);
	ck_assert_uint_eq(s->n, 4);
	ck_assert_int_eq(s->outcomes[0], OUTCOME_RUNNING);
	ck_assert_int_eq(s->started[3], 1000);
	seen_free(s);
	store_job_record_clear(&rec);
	store_close(st);
}
END_TEST

START_TEST(test_run_ids_increase_across_reopen) {
	struct store *st = open_ok();
	uint64_t a, b, c;

	a = run_once(st, "j", 1000);
	b = run_once(st, "k", 1000);
	store_close(st);
	st = open_ok();
	c = run_once(st, "j", 500);
	ck_assert_uint_eq(a, 1);
	ck_assert_uint_gt(b, a);
	ck_assert_uint_gt(c, b);
	store_close(st);
}
END_TEST

/* Write a schema number into meta directly, as a newer mcpjobd would. */
static void poke_schema(const char *value) {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { 6, "schema" }, val = { strlen(value), (void *)value };

	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	ck_assert_int_eq(mdb_env_open(env, statedir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

START_TEST(test_newer_schema_is_refused) {
	struct store *st = open_ok();
	char *cause = NULL, *want;

	run_once(st, "j", 1000);
	store_close(st);
	poke_schema("7");
	st = NULL;
	ck_assert_int_eq(store_open(statedir, &st, &cause), -1);
	want = xasprintf("state directory %s was written by a newer mcpjobd (schema 7, this "
	                 "build knows %d): upgrade mcpjobd or use another --state-dir",
	                 statedir, STORE_SCHEMA_VERSION);
	ck_assert_str_eq(cause, want);
	free(want);
	free(cause);

	/* The same version is fine. */
	poke_schema("1");
	st = open_ok();
	store_close(st);
}
END_TEST

START_TEST(test_full_map_grows_and_keeps_writing) {
	struct store *st;
	struct seen *s;
	char *cause = NULL;
	char *big = xmalloc(4001);

	memset(big, 'x', 4000);
	big[4000] = '\0';
	setenv("MCPJOB_STORE_MAPSIZE", "65536", 1);
	st = open_ok();
	for (int i = 1; i <= 300; i++) {
		struct run_record run = { .job_id = xstrdup("big"), .attempt = 1,
		                          .started_ms = i * 1000 };
		struct job_record rec;

		store_job_record_init(&rec);
		ck_assert_int_eq(store_run_begin(st, &run, &rec, &cause), 0);
		run.outcome = OUTCOME_SUCCESS;
		run.finished_ms = run.started_ms + 1;
		run.output = xstrdup(big);
		if (store_run_finish(st, &run, &rec, 0, 0, run.finished_ms, &cause) != 0)
			ck_abort_msg("store_run_finish %d: %s", i, cause);
		store_run_record_clear(&run);
	}
	s = history(st, "big", 0, 0);
	ck_assert_uint_eq(s->n, 300);
	seen_free(s);
	store_close(st);

	/* Reopening with the small map still sees all of it and can write. */
	st = open_ok();
	run_once(st, "big", 999999);
	s = history(st, "big", 0, 0);
	ck_assert_uint_eq(s->n, 301);
	seen_free(s);
	store_close(st);
	free(big);
}
END_TEST

START_TEST(test_second_open_of_same_dir_is_refused) {
	struct store *st = open_ok(), *st2 = NULL;
	char *cause = NULL;

	ck_assert_int_eq(store_open(statedir, &st2, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, statedir));
	ck_assert_ptr_nonnull(strstr(cause, "in use by another mcpjobd"));
	free(cause);
	store_close(st);
	st = open_ok();
	store_close(st);
}
END_TEST

START_TEST(test_state_dir_is_created_private) {
	struct store *st;
	struct stat sb;

	free(statedir);
	statedir = xasprintf("%s/deep/er/state", tmpdir);
	st = open_ok();
	ck_assert_int_eq(stat(statedir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	store_close(st);
}
END_TEST

START_TEST(test_state_dir_that_is_a_file_is_named_in_error) {
	struct store *st = NULL;
	char *cause = NULL;
	FILE *f = fopen(statedir, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(store_open(statedir, &st, &cause), -1);
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(strstr(cause, statedir));
	ck_assert_ptr_nonnull(strstr(cause, "--state-dir"));
	free(cause);
}
END_TEST

START_TEST(test_finish_refuses_running_outcome) {
	struct store *st = open_ok();
	struct run_record run = { .job_id = xstrdup("j"), .started_ms = 1000 };
	struct job_record rec;
	char *cause = NULL;

	store_job_record_init(&rec);
	ck_assert_int_eq(store_run_begin(st, &run, &rec, &cause), 0);
	ck_assert_int_eq(store_run_finish(st, &run, &rec, 0, 0, 2000, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "running"));
	free(cause);
	store_run_record_clear(&run);
	store_close(st);
}
END_TEST

START_TEST(test_overlong_job_id_is_refused_with_cause) {
	struct store *st = open_ok();
	char *id = xmalloc(601), *cause = NULL;
	struct job_record rec;

	memset(id, 'j', 600);
	id[600] = '\0';
	store_job_record_init(&rec);
	ck_assert_int_eq(store_save_job(st, id, &rec, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "cannot be stored"));
	free(cause);
	free(id);
	store_close(st);
}
END_TEST

START_TEST(test_invalid_utf8_output_is_stored_replaced) {
	struct store *st = open_ok();
	struct run_record run = { .job_id = xstrdup("j"), .started_ms = 1000 };
	struct run_record got = { 0 };
	struct job_record rec;
	char *cause = NULL;

	store_job_record_init(&rec);
	ck_assert_int_eq(store_run_begin(st, &run, &rec, &cause), 0);
	run.outcome = OUTCOME_SUCCESS;
	run.finished_ms = 1500;
	run.output = xstrdup("ok \xff\xfe caf\xc3\xa9 \xe2\x82");
	ck_assert_int_eq(store_run_finish(st, &run, &rec, 0, 0, 1500, &cause), 0);
	ck_assert_int_eq(store_history(st, "j", 0, 1, keep_first, &got, &cause), 0);
	ck_assert_str_eq(got.output, "ok \xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd");
	store_run_record_clear(&got);
	store_run_record_clear(&run);
	store_close(st);
}
END_TEST

START_TEST(test_run_to_json_is_protocol_record) {
	struct run_record run = { .run_id = 9, .job_id = xstrdup("sync"),
	                          .trigger = TRIGGER_MANUAL, .attempt = 1,
	                          .started_ms = 1700000000000, .outcome = OUTCOME_RUNNING };
	json_t *j = store_run_to_json(&run);
	char buf[TIME_RFC3339_LEN];

	ck_assert_int_eq(json_integer_value(json_object_get(j, "run_id")), 9);
	ck_assert_str_eq(json_string_value(json_object_get(j, "job")), "sync");
	ck_assert_str_eq(json_string_value(json_object_get(j, "trigger")), "manual");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "attempt")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(j, "started_at")),
	                 time_format_rfc3339(run.started_ms, buf));
	ck_assert(json_is_null(json_object_get(j, "finished_at")));
	ck_assert(json_is_null(json_object_get(j, "duration_ms")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "outcome")), "running");
	ck_assert(json_is_null(json_object_get(j, "message")));
	ck_assert(json_is_null(json_object_get(j, "output")));
	ck_assert(json_is_null(json_object_get(j, "structured_content")));
	ck_assert_uint_eq(json_object_size(j), 11);
	json_decref(j);

	run.outcome = OUTCOME_SUCCESS;
	run.finished_ms = run.started_ms + 2500;
	run.message = xstrdup("synced 3 items");
	run.structured = json_pack("{s:i}", "items", 3);
	j = store_run_to_json(&run);
	ck_assert_str_eq(json_string_value(json_object_get(j, "finished_at")),
	                 time_format_rfc3339(run.finished_ms, buf));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "duration_ms")), 2500);
	ck_assert_str_eq(json_string_value(json_object_get(j, "outcome")), "success");
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "synced 3 items");
	ck_assert(json_equal(json_object_get(j, "structured_content"), run.structured));
	json_decref(j);
	store_run_record_clear(&run);
}
END_TEST


/* --- durability: group commit, O(1) retention, decoding, bounds, orphans --- */

static int begun_ok, begun_failed;
static char *begun_cause;

static void on_begun(void *arg, int ok, const char *cause) {
	(void)arg;
	if (ok) {
		begun_ok++;
	} else {
		begun_failed++;
		free(begun_cause);
		begun_cause = xstrdup(cause);
	}
}

/* Queue a begin (not waited for); returns the run id. */
static uint64_t begin_async(struct store *st, const char *job, int64_t started) {
	struct run_record run = { .job_id = xstrdup(job), .trigger = TRIGGER_SCHEDULE,
	                          .attempt = 1, .started_ms = started };
	struct job_record rec;
	char *cause = NULL;
	uint64_t id;

	store_job_record_init(&rec);
	if (store_run_begin_async(st, &run, &rec, on_begun, NULL, &cause) != 0)
		ck_abort_msg("store_run_begin_async: %s", cause);
	id = run.run_id;
	store_run_record_clear(&run);
	return id;
}

START_TEST(test_records_queued_together_share_one_commit) {
	struct store *st = open_ok();
	struct store_stats before, after;
	uint64_t ids[200];
	struct seen *s;

	begun_ok = begun_failed = 0;
	store_get_stats(st, &before);
	store_test_hold(st, true);
	for (int i = 0; i < 200; i++)
		ids[i] = begin_async(st, "grouped", 1000 + i);
	/* Queued, not yet committed: already shown as running. */
	s = history(st, "grouped", 0, 1);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_uint_eq(s->ids[0], ids[199]);
	ck_assert_int_eq(s->outcomes[0], OUTCOME_RUNNING);
	seen_free(s);
	store_test_hold(st, false);
	store_flush(st);
	store_get_stats(st, &after);
	ck_assert_int_eq(begun_ok, 200);
	ck_assert_uint_eq(after.ops - before.ops, 200);
	ck_assert_uint_eq(after.commits - before.commits, 1);
	for (int i = 1; i < 200; i++)
		ck_assert_uint_gt(ids[i], ids[i - 1]);
	store_close(st);
	/* Committed: still there after a reopen. */
	st = open_ok();
	s = history(st, "grouped", 0, 0);
	ck_assert_uint_eq(s->n, 200);
	seen_free(s);
	store_close(st);
}
END_TEST

/* Fill @job with @n finished runs (one commit per 1000), keeping them all. */
static void fill(struct store *st, const char *job, int n, int64_t t0) {
	for (int i = 0; i < n; i += 1000) {
		store_test_hold(st, true);
		for (int k = i; k < n && k < i + 1000; k++) {
			struct run_record run = { .job_id = xstrdup(job), .attempt = 1,
			                          .started_ms = t0 + k };
			struct job_record rec;
			char *cause = NULL;

			store_job_record_init(&rec);
			ck_assert_int_eq(store_run_begin_async(st, &run, &rec, NULL, NULL, &cause), 0);
			run.outcome = OUTCOME_SUCCESS;
			run.finished_ms = run.started_ms + 1;
			/* Queued after its begin: same commit, in order. */
			ck_assert_int_eq(store_run_finish(st, &run, &rec, 0, 0, 0, &cause), 0);
			store_run_record_clear(&run);
		}
		store_test_hold(st, false);
		store_flush(st);
	}
}

/* Retention steps for one more finished run of @job keeping @keep runs. */
static uint64_t finish_cost(struct store *st, const char *job, int keep, int64_t t) {
	struct store_stats a, b;

	store_flush(st);
	store_get_stats(st, &a);
	finish(st, job, begin(st, job, t), t, OUTCOME_SUCCESS, keep, 0, t + 10);
	store_flush(st);
	store_get_stats(st, &b);
	return b.prune_steps - a.prune_steps;
}

START_TEST(test_retention_cost_does_not_grow_with_the_runs_kept) {
	struct store *st = open_ok();
	struct event_base *base = event_base_new();
	uint64_t small, big;
	struct seen *s;

	store_attach(st, base); /* finishes queue instead of waiting */

	fill(st, "small", 100, 1000000);
	fill(st, "big", 20000, 1000000);
	/* First finish counts the job once (no count stored by fill's keep-all). */
	finish_cost(st, "small", 100, 3000000);
	finish_cost(st, "big", 20000, 3000000);
	small = finish_cost(st, "small", 100, 3000001);
	big = finish_cost(st, "big", 20000, 3000001);
	/* One deletion from the oldest end and one look at the next: whatever is kept. */
	ck_assert_uint_le(small, 3);
	ck_assert_uint_le(big, small);
	store_flush(st);
	s = history(st, "small", 0, 0);
	ck_assert_uint_eq(s->n, 100);
	ck_assert_int_eq(s->started[0], 3000001);
	seen_free(s);
	store_close(st);
	event_base_free(base);
}
END_TEST

START_TEST(test_binary_record_round_trips_every_field_and_survives_damage) {
	struct store *st = open_ok();
	struct run_record run = { .job_id = xstrdup("bin"), .trigger = TRIGGER_CATCH_UP,
	                          .attempt = 7, .started_ms = 1700000000000 };
	struct run_record got = { 0 };
	struct job_record rec;
	char *cause = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	struct seen *s;

	store_job_record_init(&rec);
	ck_assert_int_eq(store_run_begin(st, &run, &rec, &cause), 0);
	run.proc.pid = 4242;
	run.proc.start = 987654321;
	store_run_set_process(st, &run, NULL);
	ck_assert_int_eq(store_history(st, "bin", 0, 1, keep_first, &got, &cause), 0);
	ck_assert_int_eq(got.outcome, OUTCOME_RUNNING);
	store_run_record_clear(&got);
	run.outcome = OUTCOME_RETRY;
	run.finished_ms = run.started_ms + 99;
	run.message = xstrdup("");
	run.output = NULL;
	run.structured = json_pack("{s:[i,i]}", "n", 1, 2);
	ck_assert_int_eq(store_run_finish(st, &run, &rec, 0, 0, 0, &cause), 0);
	ck_assert_int_eq(store_history(st, "bin", 0, 1, keep_first, &got, &cause), 0);
	ck_assert_int_eq(got.trigger, TRIGGER_CATCH_UP);
	ck_assert_int_eq(got.attempt, 7);
	ck_assert_int_eq(got.outcome, OUTCOME_RETRY);
	ck_assert_int_eq(got.finished_ms, run.started_ms + 99);
	ck_assert_str_eq(got.message, "");
	ck_assert_ptr_null(got.output);
	ck_assert(json_equal(got.structured, run.structured));
	store_run_record_clear(&got);
	store_run_record_clear(&run);
	store_close(st);

	/* Cut every record short, and make one nonsense: history still reads. */
	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	ck_assert_int_eq(mdb_env_open(env, statedir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "runs", 0, &dbi), 0);
	ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
	ck_assert_int_eq(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
	v.mv_size = 30; /* header plus half a length */
	ck_assert_int_eq(mdb_cursor_put(cur, &k, &v, MDB_CURRENT), 0);
	mdb_cursor_close(cur);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	st = open_ok();
	ck_assert_int_eq(store_history(st, "bin", 0, 1, keep_first, &got, &cause), 0);
	ck_assert_str_eq(got.message, "this run's record is damaged");
	store_run_record_clear(&got);
	s = history(st, "bin", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);
	store_close(st);
}
END_TEST

struct notice_seen {
	int calls;
	uint64_t deleted;
};

static void on_notice(void *arg, const char *what, uint64_t deleted) {
	struct notice_seen *n = arg;

	ck_assert_ptr_nonnull(strstr(what, "store.max_size"));
	n->calls++;
	n->deleted += deleted;
}

START_TEST(test_max_size_prunes_oldest_runs_and_says_so) {
	struct store *st;
	struct notice_seen ns = { 0 };
	struct store_stats stats;
	struct seen *s;
	char *big = xmalloc(16 * 1024 + 1);

	memset(big, 'x', 16 * 1024);
	big[16 * 1024] = '\0';
	st = open_ok(); /* with the default 64 MiB map: the bound shrinks it */
	store_configure(st, DURABILITY_BATCHED, 1 << 20);
	store_set_notice(st, on_notice, &ns);
	/* 200 runs of 16 KiB each cannot fit in 1 MiB. */
	for (int i = 0; i < 200; i++) {
		struct run_record run = { .job_id = xstrdup(i % 2 ? "odd" : "even"), .attempt = 1,
		                          .started_ms = 1000 + i };
		struct job_record rec;
		char *cause = NULL;

		store_job_record_init(&rec);
		if (store_run_begin(st, &run, &rec, &cause) != 0)
			ck_abort_msg("begin %d: %s", i, cause);
		run.outcome = OUTCOME_SUCCESS;
		run.finished_ms = run.started_ms + 1;
		run.output = xstrdup(big);
		if (store_run_finish(st, &run, &rec, 0, 0, 0, &cause) != 0)
			ck_abort_msg("finish %d: %s", i, cause);
		store_run_record_clear(&run);
	}
	store_poll(st);
	store_get_stats(st, &stats);
	ck_assert_uint_gt(stats.pruned_for_size, 0);
	ck_assert_int_ge(ns.calls, 1);
	ck_assert_uint_eq(ns.deleted, stats.pruned_for_size);
	/* The newest of each job is kept; what went was the oldest. */
	s = history(st, "odd", 0, 0);
	ck_assert_uint_gt(s->n, 0);
	ck_assert_int_eq(s->started[0], 1000 + 199);
	ck_assert_int_gt(s->started[s->n - 1], 1000);
	seen_free(s);
	s = history(st, "even", 0, 0);
	ck_assert_int_eq(s->started[0], 1000 + 198);
	seen_free(s);
	free(big);
	store_close(st);
}
END_TEST

START_TEST(test_start_that_cannot_be_recorded_fails_with_the_stores_error) {
	struct store *st;
	char *big = xmalloc(900 * 1024 + 1);
	struct run_record run = { .job_id = xstrdup("huge"), .attempt = 1, .started_ms = 1 };
	struct job_record rec;

	memset(big, 'y', 900 * 1024);
	big[900 * 1024] = '\0';
	setenv("MCPJOB_STORE_MAPSIZE", "1048576", 1);
	st = open_ok();
	store_configure(st, DURABILITY_STRICT, 1 << 20);
	store_job_record_init(&rec);
	/* A running record that alone exceeds the bound: nothing to prune. */
	run.message = xstrdup(big);
	run.output = xstrdup(big);
	begun_ok = begun_failed = 0;
	ck_assert_int_eq(store_run_begin_async(st, &run, &rec, on_begun, NULL, NULL), 0);
	store_flush(st);
	ck_assert_int_eq(begun_ok, 0);
	ck_assert_int_eq(begun_failed, 1);
	ck_assert_ptr_nonnull(strstr(begun_cause, "max_size"));
	ck_assert_ptr_nonnull(strstr(begun_cause, statedir));
	/* Nothing recorded, nothing kept. */
	store_run_record_clear(&run);
	struct seen *s = history(st, "huge", 0, 0);
	ck_assert_uint_eq(s->n, 0);
	seen_free(s);
	free(big);
	store_close(st);
}
END_TEST

/* A child in its own process group that ignores nothing; returns its pid. */
static pid_t spawn_sleeper(void) {
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setpgid(0, 0);
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	return pid;
}

static bool exited_within(pid_t pid, int ms) {
	for (int i = 0; i < ms / 10; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return true;
		usleep(10000);
	}
	return false;
}

START_TEST(test_recovery_stops_processes_a_dead_daemon_left_and_spares_reused_pids) {
	struct store *st = open_ok();
	pid_t ours = spawn_sleeper(), stranger = spawn_sleeper();
	struct run_record run = { .job_id = xstrdup("orphaned"), .attempt = 1, .started_ms = 5 };
	struct run_record other = { .job_id = xstrdup("reused"), .attempt = 1, .started_ms = 6 };
	struct run_record got = { 0 };
	struct proc_identity pi;
	struct job_record rec;
	char *cause = NULL;

	usleep(50000); /* both have exec'd */
	store_job_record_init(&rec);
	ck_assert_int_eq(store_run_begin(st, &run, &rec, &cause), 0);
	pi = orphan_proc_identity(ours);
	ck_assert_uint_gt(pi.start, 0);
	/* The start time is read by the store as the identity is queued. */
	run.proc.pid = pi.pid;
	store_run_set_process(st, &run, orphan_proc_start_time);
	/* The stranger has the recorded pid but not the recorded start time. */
	ck_assert_int_eq(store_run_begin(st, &other, &rec, &cause), 0);
	pi = orphan_proc_identity(stranger);
	other.proc.pid = pi.pid;
	other.proc.start = pi.start + 1;
	store_run_set_process(st, &other, NULL);
	store_close(st); /* as if the daemon died: both still "running" */

	st = open_ok();
	store_set_orphan_grace_ms(st, 2000);
	ck_assert_int_eq(store_recover_interrupted(st, 99, NULL, NULL, &cause), 2);
	ck_assert(exited_within(ours, 3000));
	ck_assert(!exited_within(stranger, 200));
	ck_assert_int_eq(store_history(st, "orphaned", 0, 1, keep_first, &got, &cause), 0);
	ck_assert_int_eq(got.outcome, OUTCOME_INTERRUPTED);
	ck_assert_str_eq(got.message, STORE_ORPHANS_STOPPED_MSG);
	store_run_record_clear(&got);
	ck_assert_int_eq(store_history(st, "reused", 0, 1, keep_first, &got, &cause), 0);
	ck_assert_str_eq(got.message, STORE_INTERRUPTED_MSG);
	store_run_record_clear(&got);
	kill(stranger, SIGKILL);
	waitpid(stranger, NULL, 0);
	store_run_record_clear(&run);
	store_run_record_clear(&other);
	store_close(st);
}
END_TEST

START_TEST(test_recovery_stops_marked_processes_whose_identity_never_reached_the_store) {
	struct store *st = open_ok();
	char *marker = xasprintf("%s=%s/mcp", ORPHAN_ENV, store_id(st));
	char *other = xasprintf("%s=00000000000000000000000000000000/mcp", ORPHAN_ENV);
	char *cause = NULL;
	pid_t mine, foreign;

	store_close(st);
	mine = fork();
	if (mine == 0) {
		char *envp[] = { marker, NULL };
		setpgid(0, 0);
		execle("/bin/sleep", "sleep", "60", (char *)NULL, envp);
		_exit(127);
	}
	foreign = fork();
	if (foreign == 0) {
		char *envp[] = { other, NULL };
		setpgid(0, 0);
		execle("/bin/sleep", "sleep", "60", (char *)NULL, envp);
		_exit(127);
	}
	usleep(50000);
	st = open_ok();
	store_set_orphan_grace_ms(st, 2000);
	ck_assert_int_eq(store_recover_interrupted(st, 99, NULL, NULL, &cause), 0);
	ck_assert(exited_within(mine, 3000));
	ck_assert(!exited_within(foreign, 200));
	kill(foreign, SIGKILL);
	waitpid(foreign, NULL, 0);
	free(marker);
	free(other);
	store_close(st);
}
END_TEST

/* Two engines in one process (an app): each store marks and finds its own
 * children, whichever store was opened last. */
START_TEST(test_two_stores_in_one_process_keep_their_own_markers) {
	char other_dir[] = "/tmp/test_store2.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(other_dir));
	struct store *st = open_ok(), *st2 = NULL;
	char *cause = NULL;
	char **env = orphan_env(NULL, store_id(st), "mcp");
	pid_t mine = fork();
	if (mine == 0) {
		setpgid(0, 0);
		execle("/bin/sleep", "sleep", "60", (char *)NULL, env);
		_exit(127);
	}
	usleep(50000);
	/* The second engine's store opens after the first one's. */
	ck_assert_int_eq(store_open(other_dir, &st2, &cause), 0);
	ck_assert_str_ne(store_id(st), store_id(st2));
	char **env2 = orphan_env(NULL, store_id(st2), "mcp");
	ck_assert_str_ne(env[0], env2[0]);
	/* The second store's recovery leaves the first one's child alone... */
	store_set_orphan_grace_ms(st2, 2000);
	ck_assert_int_eq(store_recover_interrupted(st2, 99, NULL, NULL, &cause), 0);
	ck_assert(!exited_within(mine, 200));
	/* ...and the first store's recovery finds it. */
	store_set_orphan_grace_ms(st, 2000);
	ck_assert_int_eq(store_recover_interrupted(st, 99, NULL, NULL, &cause), 0);
	ck_assert(exited_within(mine, 3000));
	strv_free(env);
	strv_free(env2);
	store_close(st2);
	store_close(st);
	nftw(other_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* --- a run's MCP task --------------------------------------------------------- */

static void note_ok(void *arg, int ok, const char *cause) {
	(void)cause;
	*(int *)arg = ok ? 1 : -1;
}

/* Keep (resume) every run that has a task; copy the first one kept. */
static int keep_tasks(const struct run_record *run, void *arg) {
	struct run_record *first = arg;

	if (run->task_id == NULL)
		return 0;
	if (first->job_id == NULL)
		store_run_record_copy(first, run);
	return 1;
}

static int first_run(const struct run_record *run, void *arg) {
	struct run_record *out = arg;

	store_run_record_clear(out);
	store_run_record_copy(out, run);
	return 1;
}

START_TEST(test_task_kept_with_a_running_run_lets_recovery_keep_it_running) {
	struct store *st = open_ok();
	struct run_record kept = { 0 }, got = { 0 };
	char *cause = NULL;
	int ok = 0;
	uint64_t id = begin(st, "task", 1000);
	struct run_record run = { .run_id = id, .job_id = xstrdup("task"), .attempt = 1,
	                          .trigger = TRIGGER_MANUAL, .started_ms = 1000,
	                          .outcome = OUTCOME_RUNNING,
	                          .task_id = xstrdup("t-42"), .task_server = xstrdup("remote"),
	                          .task_session = xstrdup("2025-11-25 abc") };

	store_run_set_task(st, &run, note_ok, &ok);
	ck_assert_int_eq(ok, 1); /* committed: only now may the daemon die and resume it */
	store_run_record_clear(&run);
	begin(st, "plain", 2000);
	store_close(st); /* as if killed: both runs are still "running" */

	st = open_ok();
	/* Only the run without a task is interrupted; the other stays as it was. */
	ck_assert_int_eq(store_recover_runs(st, 77000, keep_tasks, &kept, NULL, NULL, &cause), 1);
	ck_assert_uint_eq(kept.run_id, id);
	ck_assert_int_eq(kept.outcome, OUTCOME_RUNNING);
	ck_assert_int_eq(kept.started_ms, 1000);
	ck_assert_int_eq(kept.trigger, TRIGGER_MANUAL);
	ck_assert_str_eq(kept.task_id, "t-42");
	ck_assert_str_eq(kept.task_server, "remote");
	ck_assert_str_eq(kept.task_session, "2025-11-25 abc");
	ck_assert_int_eq(store_history(st, "task", 0, 1, first_run, &got, &cause), 0);
	ck_assert_int_eq(got.outcome, OUTCOME_RUNNING);
	ck_assert_str_eq(got.task_id, "t-42");
	store_run_record_clear(&got);
	ck_assert_int_eq(store_history(st, "plain", 0, 1, first_run, &got, &cause), 0);
	ck_assert_int_eq(got.outcome, OUTCOME_INTERRUPTED);
	ck_assert_ptr_null(got.task_id);
	store_run_record_clear(&got);
	/* The resumed run ends as any run: one record, with its task. */
	kept.outcome = OUTCOME_SUCCESS;
	kept.finished_ms = 80000;
	struct job_record rec;
	store_job_record_init(&rec);
	ck_assert_int_eq(store_run_finish(st, &kept, &rec, 0, 0, 80000, &cause), 0);
	ck_assert_int_eq(store_recover_interrupted(st, 81000, NULL, NULL, &cause), 0);
	struct seen *s = history(st, "task", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_int_eq(s->outcomes[0], OUTCOME_SUCCESS);
	seen_free(s);
	ck_assert_int_eq(store_history(st, "task", 0, 1, first_run, &got, &cause), 0);
	ck_assert_str_eq(got.task_id, "t-42");
	json_t *j = store_run_to_json(&got);
	ck_assert_str_eq(json_string_value(json_object_get(j, "task_id")), "t-42");
	ck_assert_ptr_null(json_object_get(j, "task_session")); /* ours, not for clients */
	json_decref(j);
	store_run_record_clear(&got);
	store_run_record_clear(&kept);
	store_close(st);
}
END_TEST

START_TEST(test_task_run_without_a_keeper_is_interrupted_and_keeps_its_task_id) {
	struct store *st = open_ok();
	struct run_record got = { 0 };
	char *cause = NULL;
	uint64_t id = begin(st, "task", 1000);
	struct run_record run = { .run_id = id, .job_id = xstrdup("task"), .attempt = 1,
	                          .started_ms = 1000, .outcome = OUTCOME_RUNNING,
	                          .task_id = xstrdup("t-7"),
	                          .task_server = xstrdup("local") };

	store_run_set_task(st, &run, NULL, NULL);
	store_run_record_clear(&run);
	store_close(st);
	st = open_ok();
	ck_assert_int_eq(store_recover_interrupted(st, 5000, NULL, NULL, &cause), 1);
	ck_assert_int_eq(store_history(st, "task", 0, 1, first_run, &got, &cause), 0);
	ck_assert_int_eq(got.outcome, OUTCOME_INTERRUPTED);
	ck_assert_str_eq(got.task_id, "t-7");
	ck_assert_str_eq(got.task_server, "local");
	ck_assert_ptr_null(got.task_session);
	store_run_record_clear(&got);
	store_close(st);
}
END_TEST

/* --- the journal (batched mode) ----------------------------------------- */

/* Records in @db of the store in @dir, read with LMDB itself (no store open). */
static size_t raw_count(const char *dir, const char *db) {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat stat;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
	ck_assert_int_eq(mdb_stat(txn, dbi, &stat), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return stat.ms_entries;
}

/* The journal files in the state directory: how many, and the last one's name. */
static int journals(char *name, size_t len) {
	int n = 0;
	char *cmd = xasprintf("ls %s", statedir);
	FILE *p = popen(cmd, "r");
	char line[256];

	ck_assert_ptr_nonnull(p);
	while (fgets(line, sizeof line, p)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "journal-", 8) == 0 && strstr(line, ".mdb") != NULL) {
			n++;
			if (name)
				snprintf(name, len, "%s", line);
		}
	}
	pclose(p);
	free(cmd);
	return n;
}

/* A child that records a running run of @job in batched mode, waits until
 * it is reported committed, and dies as a kill -9 would (no close). */
static void journal_then_die(const char *job) {
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct store *st = open_ok();
		struct store_stats stats;

		begun_ok = begun_failed = 0;
		begin_async(st, job, 5000);
		for (int i = 0; i < 10000 && begun_ok == 0; i++) {
			store_poll(st);
			usleep(1000);
		}
		store_get_stats(st, &stats);
		/* Reported, and not folded into the store: only the journal has it. */
		_exit(begun_ok == 1 && stats.commits >= 1 && stats.folds == 0 ? 0 : 3);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

START_TEST(test_a_journaled_record_survives_a_kill_before_its_fold) {
	struct store *st;
	struct seen *s;

	setenv("MCPJOB_STORE_FOLD_MS", "600000", 1);
	journal_then_die("kept");
	/* The store's own file has nothing yet; this boot's journal has it. */
	ck_assert_uint_eq(raw_count(statedir, "runs"), 0);
	ck_assert_int_eq(journals(NULL, 0), 1);
	st = open_ok();
	s = history(st, "kept", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_int_eq(s->outcomes[0], OUTCOME_RUNNING);
	seen_free(s);
	store_close(st);
	/* Folded into the store at open, and the journal went at the clean close. */
	ck_assert_uint_eq(raw_count(statedir, "runs"), 1);
	ck_assert_uint_eq(raw_count(statedir, "active"), 1);
	ck_assert_int_eq(journals(NULL, 0), 0);
	/* Folded once: a second open does not write it again. */
	st = open_ok();
	s = history(st, "kept", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);
	store_close(st);
}
END_TEST

START_TEST(test_a_journal_left_by_another_boot_is_deleted_unread) {
	char name[256], *path;
	struct store *st;
	struct seen *s;
	FILE *f;

	setenv("MCPJOB_STORE_FOLD_MS", "600000", 1);
	setenv("MCPJOB_STORE_BOOT_ID", "11111111-1111-1111-1111-111111111111", 1);
	st = open_ok();
	run_once(st, "before", 100);
	store_close(st);
	journal_then_die("lost");
	ck_assert_int_eq(journals(name, sizeof name), 1);
	ck_assert_ptr_nonnull(strstr(name, "11111111-1111"));
	/* As torn as a power loss may leave it: if it were read, LMDB would fail. */
	path = xasprintf("%s/%s", statedir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "r+"));
	for (int i = 0; i < 3 * 4096; i++)
		fputc(0x5a, f);
	fclose(f);
	/* The next boot. */
	setenv("MCPJOB_STORE_BOOT_ID", "22222222-2222-2222-2222-222222222222", 1);
	st = open_ok();
	ck_assert_int_eq(access(path, F_OK), -1);
	s = history(st, "lost", 0, 0);
	ck_assert_uint_eq(s->n, 0); /* the window a power loss may take */
	seen_free(s);
	s = history(st, "before", 0, 0);
	ck_assert_uint_eq(s->n, 1); /* what was folded before is intact */
	seen_free(s);
	run_once(st, "after", 200);
	s = history(st, "after", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);
	store_close(st);
	free(path);
}
END_TEST

START_TEST(test_without_a_boot_id_each_commit_goes_to_the_store) {
	/* No usable boot id (as on a system without /proc): no journal. */
	setenv("MCPJOB_STORE_BOOT_ID", "not a boot id", 1);
	setenv("MCPJOB_STORE_FOLD_MS", "600000", 1);
	journal_then_die("direct");
	/* Reported committed, then killed: in the store's own file already. */
	ck_assert_int_eq(journals(NULL, 0), 0);
	ck_assert_uint_eq(raw_count(statedir, "runs"), 1);
}
END_TEST

/* The loop journals a lone write itself and does not wake the writer for it:
 * the loop's own timer has the writer fold it, fold interval later. */
START_TEST(test_a_write_the_loop_journaled_is_folded_by_its_timer) {
	setenv("MCPJOB_STORE_FOLD_MS", "100", 1);
	struct event_base *base = event_base_new();
	struct store *st = open_ok();
	struct store_stats stats = { 0 };

	store_attach(st, base);
	usleep(1500 * 1000); /* the writer has nothing left to time: it sleeps */
	begun_ok = begun_failed = 0;
	begin_async(st, "lone", 7000);
	store_get_stats(st, &stats);
	ck_assert_uint_eq(stats.folds, 0);
	/* Only the loop runs: nothing but its fold timer can wake the writer. */
	for (int i = 0; i < 100 && stats.folds == 0; i++) {
		struct timeval tv = { 0, 20 * 1000 };
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		store_get_stats(st, &stats);
	}
	ck_assert_int_eq(begun_ok, 1);
	ck_assert_uint_ge(stats.folds, 1);
	/* Folded: in the store itself, not only in the journal. */
	store_close(st);
	event_base_free(base);
	ck_assert_uint_eq(raw_count(statedir, "runs"), 1);
}
END_TEST

START_TEST(test_a_fold_the_store_refuses_keeps_what_was_journaled_until_it_takes_it) {
	struct event_base *base = event_base_new();
	struct store *st = open_ok();
	struct seen *s;

	store_attach(st, base);
	/* Journaled (the map was allocated at open); the store refuses the fold. */
	files_refuse(true);
	begun_ok = begun_failed = 0;
	begin_async(st, "kept", 9000);
	store_flush(st);
	ck_assert_int_eq(begun_ok, 1);
	char *err = store_last_error(st);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "File too large"));
	free(err);
	/* Shown meanwhile, and not lost. */
	s = history(st, "kept", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);
	/* While the store refuses, new starts are not journaled: they fail. */
	begin_async(st, "refused", 9001);
	store_flush(st);
	ck_assert_int_eq(begun_failed, 1);
	files_refuse(false);
	/* It takes writes again: the kept one goes in at the next try. */
	struct store_stats stats = { 0 };
	for (int i = 0; i < 50 && stats.folds == 0; i++) {
		usleep(100 * 1000);
		store_get_stats(st, &stats);
	}
	ck_assert_uint_ge(stats.folds, 1);
	store_close(st);
	event_base_free(base);
	ck_assert_uint_eq(raw_count(statedir, "runs"), 1);
	st = open_ok();
	s = history(st, "kept", 0, 0);
	ck_assert_uint_eq(s->n, 1);
	seen_free(s);
	s = history(st, "refused", 0, 0);
	ck_assert_uint_eq(s->n, 0);
	seen_free(s);
	store_close(st);
}
END_TEST

static Suite *store_suite(void) {
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_job_record_round_trips);
	tcase_add_test(tc, test_run_round_trips_through_begin_and_finish);
	tcase_add_test(tc, test_structured_text_is_stored_as_kept_and_read_back_with_it);
	tcase_add_test(tc, test_history_is_newest_first);
	tcase_add_test(tc, test_history_honours_limit_before_and_stop);
	tcase_add_test(tc, test_prefix_job_ids_do_not_mix);
	tcase_add_test(tc, test_retention_by_count_keeps_running_run);
	tcase_add_test(tc, test_retention_by_age_keeps_running_run);
	tcase_add_test(tc, test_retention_prunes_many_runs_across_pages);
	tcase_add_test(tc, test_recover_interrupted_rewrites_running_runs_once);
	tcase_add_test(tc, test_reopen_keeps_everything);
	tcase_add_test(tc, test_run_ids_increase_across_reopen);
	tcase_add_test(tc, test_newer_schema_is_refused);
	tcase_add_test(tc, test_full_map_grows_and_keeps_writing);
	tcase_add_test(tc, test_second_open_of_same_dir_is_refused);
	tcase_add_test(tc, test_state_dir_is_created_private);
	tcase_add_test(tc, test_state_dir_that_is_a_file_is_named_in_error);
	tcase_add_test(tc, test_finish_refuses_running_outcome);
	tcase_add_test(tc, test_overlong_job_id_is_refused_with_cause);
	tcase_add_test(tc, test_invalid_utf8_output_is_stored_replaced);
	tcase_add_test(tc, test_run_to_json_is_protocol_record);
	tcase_add_test(tc, test_records_queued_together_share_one_commit);
	tcase_add_test(tc, test_retention_cost_does_not_grow_with_the_runs_kept);
	tcase_add_test(tc, test_binary_record_round_trips_every_field_and_survives_damage);
	tcase_add_test(tc, test_max_size_prunes_oldest_runs_and_says_so);
	tcase_add_test(tc, test_start_that_cannot_be_recorded_fails_with_the_stores_error);
	tcase_add_test(tc, test_recovery_stops_processes_a_dead_daemon_left_and_spares_reused_pids);
	tcase_add_test(tc, test_recovery_stops_marked_processes_whose_identity_never_reached_the_store);
	tcase_add_test(tc, test_two_stores_in_one_process_keep_their_own_markers);
	tcase_add_test(tc, test_task_kept_with_a_running_run_lets_recovery_keep_it_running);
	tcase_add_test(tc, test_task_run_without_a_keeper_is_interrupted_and_keeps_its_task_id);
	tcase_add_test(tc, test_a_journaled_record_survives_a_kill_before_its_fold);
	tcase_add_test(tc, test_a_journal_left_by_another_boot_is_deleted_unread);
	tcase_add_test(tc, test_without_a_boot_id_each_commit_goes_to_the_store);
	tcase_add_test(tc, test_a_write_the_loop_journaled_is_folded_by_its_timer);
	tcase_add_test(tc, test_a_fold_the_store_refuses_keeps_what_was_journaled_until_it_takes_it);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
