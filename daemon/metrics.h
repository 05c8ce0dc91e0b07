/*
 * metrics.h - per-job metrics in the Prometheus text format, for
 * node_exporter's textfile collector and `mcpjobctl metrics`.
 *
 * A consumer of the engine's event stream: after every run.finished (and
 * job.state) event it renders, once per loop turn, for every job
 *   mcpjob_last_run_timestamp_seconds{job_id}      start of the last run
 *   mcpjob_last_success_timestamp_seconds{job_id}  start of the last success (0: never)
 *   mcpjob_last_run_duration_seconds{job_id}       of the last finished run
 *   mcpjob_runs_total{job_id,outcome}              finished runs (counter)
 *   mcpjob_job_state{job_id,state}                 1 for the current state, else 0
 *   mcpjob_job_enabled{job_id}                     1 or 0
 * and, when the configuration names "metrics": {"textfile": PATH}, writes
 * it atomically there (a temporary file in the same directory, then
 * rename(2)), so node_exporter never reads half a file. The label is
 * job_id, not job: Prometheus's own "job" label names the scrape job.
 *
 * runs_total survives restarts: the counters are kept in
 * STATE_DIR/metrics.json (replaced atomically after each run) with, per
 * job, the id of the last run counted; at start every finished run in the
 * job's history newer than that is counted too (runs that finished while
 * the counters were not saved, and runs recovered as "interrupted"). So the
 * counters lose nothing the history keeps; a lost or corrupt metrics.json
 * is rebuilt from the history (what retention kept of it).
 */
#ifndef MCPJOB_METRICS_H
#define MCPJOB_METRICS_H

#include <event2/event.h>

struct engine;
struct metrics;

/* Load the counters, catch up from the history, write the textfile. */
struct metrics *metrics_new(struct event_base *base, struct engine *engine,
                            const char *state_dir);
/* Write what is pending, unsubscribe. NULL is fine. */
void metrics_free(struct metrics *m);
/* The text format for every job now (new string). */
char *metrics_render(struct metrics *m);
/* The configuration changed (jobs, textfile path): write again soon. */
void metrics_changed(struct metrics *m);

#endif
