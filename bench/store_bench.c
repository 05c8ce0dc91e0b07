/*
 * store_bench.c - the store against plain LMDB, for bench.py ("store").
 *
 *   store_bench records DIR N MODE   durable run records/s: N runs (start +
 *       finish records) queued as fast as they come, as a busy daemon does,
 *       through the store in MODE (batched|strict); then the baseline, LMDB
 *       with one durable transaction per record (default flags) of the same
 *       size. Prints "ours RPS baseline RPS commits C".
 *   store_bench fill DIR JOB N       N finished runs of JOB (kept: the job's
 *       max_runs is N), for the history and finish figures.
 *   store_bench history DIR JOB REPS  the last 50 records of JOB read and
 *       decoded (the store's share of job.history); median and range in us.
 *   store_bench finish DIR JOB KEEP REPS  REPS more runs of JOB keeping KEEP;
 *       prints the median and range of a finish's commit in us and the
 *       retention steps per finish.
 */
#include <event2/event.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/store.h"

static double now_s(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct store *open_store(const char *dir) {
	struct store *st;
	char *cause = NULL;

	if (store_open(dir, &st, &cause) != 0) {
		fprintf(stderr, "store_bench: %s\n", cause);
		exit(1);
	}
	return st;
}

static void run_pair(struct store *st, const char *job, int64_t t, int keep) {
	struct run_record run = { .job_id = (char *)job, .attempt = 1, .started_ms = t };
	struct job_record rec;
	char *cause = NULL;

	store_job_record_init(&rec);
	rec.last_run_ms = t;
	if (store_run_begin_async(st, &run, &rec, NULL, NULL, &cause) != 0) {
		fprintf(stderr, "store_bench: %s\n", cause);
		exit(1);
	}
	run.outcome = OUTCOME_SUCCESS;
	run.finished_ms = t + 3;
	run.message = "exited with status 0";
	rec.last_outcome = OUTCOME_SUCCESS;
	if (store_run_finish(st, &run, &rec, keep, 0, t + 3, &cause) != 0) {
		fprintf(stderr, "store_bench: %s\n", cause);
		exit(1);
	}
}

/* Closed loop: SLOTS runs at a time, each started once its start is committed. */
#define SLOTS 16
struct closed {
	struct store *st;
	struct event_base *base;
	int left, in_flight;
	int64_t t;
};

static void slot_begun(void *arg, int ok, const char *cause);

static void slot_next(struct closed *c) {
	struct run_record run = { .job_id = "busy", .attempt = 1, .started_ms = c->t++ };
	struct job_record rec;

	if (c->left == 0) {
		if (c->in_flight == 0)
			event_base_loopbreak(c->base);
		return;
	}
	c->left--;
	c->in_flight++;
	store_job_record_init(&rec);
	store_run_begin_async(c->st, &run, &rec, slot_begun, c, NULL);
}

static void slot_begun(void *arg, int ok, const char *cause) {
	struct closed *c = arg;
	struct run_record run = { .job_id = "busy", .attempt = 1, .run_id = 0 };
	struct job_record rec;

	(void)ok;
	(void)cause;
	/* The run "ran": its finish is queued, the slot takes the next run. */
	c->in_flight--;
	store_job_record_init(&rec);
	run.run_id = 1;
	run.started_ms = c->t;
	run.outcome = OUTCOME_SUCCESS;
	run.finished_ms = c->t + 1;
	store_run_finish(c->st, &run, &rec, 100, 0, 0, NULL);
	slot_next(c);
}

static double closed_loop(struct store *st, struct event_base *base, int n) {
	struct closed c = { .st = st, .base = base, .left = n, .t = time_now_ms() };
	double t0 = now_s();

	for (int i = 0; i < SLOTS; i++)
		slot_next(&c);
	event_base_dispatch(base);
	store_flush(st);
	return 2.0 * n / (now_s() - t0);
}

static int records(const char *dir, int n, const char *mode) {
	char *ours_dir = xasprintf("%s/ours", dir), *base_dir = xasprintf("%s/base", dir);
	struct event_base *base = event_base_new();
	struct store *st;
	struct store_stats a, b;
	double t0, ours, baseline;
	MDB_env *env;
	MDB_dbi dbi;
	char val[96];

	mkdir(dir, 0700);
	st = open_store(ours_dir);
	store_attach(st, base);
	store_configure(st, strcmp(mode, "strict") == 0 ? DURABILITY_STRICT : DURABILITY_BATCHED, 0);
	store_get_stats(st, &a);
	t0 = now_s();
	for (int i = 0; i < n; i++)
		run_pair(st, i % 16 ? "busy" : "other", time_now_ms() + i, 100);
	store_flush(st);
	ours = 2.0 * n / (now_s() - t0);
	store_get_stats(st, &b);
	double closed = closed_loop(st, base, n / 2);
	store_close(st);

	/* Baseline: one durable transaction per record, of a run record's size. */
	mkdir(base_dir, 0700);
	memset(val, 'r', sizeof val);
	if (mdb_env_create(&env) || mdb_env_set_mapsize(env, (size_t)256 << 20) ||
	    mdb_env_open(env, base_dir, 0, 0600)) {
		fprintf(stderr, "store_bench: cannot open LMDB in %s\n", base_dir);
		return 1;
	}
	{
		MDB_txn *txn;
		mdb_txn_begin(env, NULL, 0, &txn);
		mdb_dbi_open(txn, NULL, 0, &dbi);
		mdb_txn_commit(txn);
	}
	t0 = now_s();
	for (int i = 0; i < 2 * n; i++) {
		MDB_txn *txn;
		char kb[32];
		MDB_val k = { (size_t)snprintf(kb, sizeof kb, "busy-%012d", i), kb };
		MDB_val v = { sizeof val, val };

		if (mdb_txn_begin(env, NULL, 0, &txn) || mdb_put(txn, dbi, &k, &v, 0) ||
		    mdb_txn_commit(txn)) {
			fprintf(stderr, "store_bench: baseline write failed\n");
			return 1;
		}
	}
	baseline = 2.0 * n / (now_s() - t0);
	mdb_env_close(env);
	printf("ours %.0f baseline %.0f commits %llu closed16 %.0f\n", ours, baseline,
	       (unsigned long long)(b.commits - a.commits), closed);
	event_base_free(base);
	free(ours_dir);
	free(base_dir);
	return 0;
}

static int fill(const char *dir, const char *job, int n) {
	struct event_base *base = event_base_new();
	struct store *st = open_store(dir);
	int64_t t = time_now_ms() - (int64_t)n * 10;

	store_attach(st, base);
	store_configure(st, DURABILITY_BATCHED, 0);
	for (int i = 0; i < n; i += 5000) {
		store_test_hold(st, true);
		for (int k = i; k < n && k < i + 5000; k++)
			run_pair(st, job, t + (int64_t)k * 10, n);
		store_test_hold(st, false);
		store_flush(st);
	}
	store_close(st);
	event_base_free(base);
	return 0;
}

static int cmp_d(const void *x, const void *y) {
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static int finish(const char *dir, const char *job, int keep, int reps) {
	struct store *st = open_store(dir);
	double *us = xcalloc((size_t)reps, sizeof *us);
	struct store_stats a, b;
	int64_t t = time_now_ms();

	store_configure(st, DURABILITY_BATCHED, 0);
	store_get_stats(st, &a);
	for (int i = 0; i < reps; i++) {
		struct run_record run = { .job_id = (char *)job, .attempt = 1, .started_ms = t + i };
		struct job_record rec;
		char *cause = NULL;
		double t0;

		store_job_record_init(&rec);
		store_run_begin(st, &run, &rec, &cause);
		run.outcome = OUTCOME_SUCCESS;
		run.finished_ms = run.started_ms + 1;
		t0 = now_s();
		if (store_run_finish(st, &run, &rec, keep, 0, run.finished_ms, &cause) != 0) {
			fprintf(stderr, "store_bench: %s\n", cause);
			return 1;
		}
		us[i] = (now_s() - t0) * 1e6;
	}
	store_get_stats(st, &b);
	qsort(us, (size_t)reps, sizeof *us, cmp_d);
	printf("median_us %.1f min_us %.1f max_us %.1f steps_per_finish %.2f\n", us[reps / 2], us[0],
	       us[reps - 1], (double)(b.prune_steps - a.prune_steps) / reps);
	free(us);
	store_close(st);
	return 0;
}

static int count_run(const struct run_record *run, void *arg) {
	(void)run;
	(*(int *)arg)++;
	return 0;
}

/* The store's share of job.history: the last 50 records read and decoded. */
static int history(const char *dir, const char *job, int reps) {
	struct store *st = open_store(dir);
	double *us = xcalloc((size_t)reps, sizeof *us);
	int seen = 0;

	for (int i = 0; i < reps; i++) {
		double t0 = now_s();
		store_history(st, job, 0, 50, count_run, &seen, NULL);
		us[i] = (now_s() - t0) * 1e6;
	}
	qsort(us, (size_t)reps, sizeof *us, cmp_d);
	printf("median_us %.1f min_us %.1f max_us %.1f records %d\n", us[reps / 2], us[0],
	       us[reps - 1], seen / reps);
	free(us);
	store_close(st);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 5 && strcmp(argv[1], "history") == 0)
		return history(argv[2], argv[3], atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "records") == 0)
		return records(argv[2], atoi(argv[3]), argv[4]);
	if (argc == 5 && strcmp(argv[1], "fill") == 0)
		return fill(argv[2], argv[3], atoi(argv[4]));
	if (argc == 6 && strcmp(argv[1], "finish") == 0)
		return finish(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: store_bench records DIR N batched|strict\n"
	                "       store_bench fill DIR JOB N\n"
	                "       store_bench finish DIR JOB KEEP REPS\n");
	return 2;
}
