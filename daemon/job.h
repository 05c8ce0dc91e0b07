/*
 * job.h - the job model: what a job is (from the configuration), the states
 * it moves through and the outcomes a run can have.
 *
 * A struct job_def is immutable once loaded; the engine keeps the mutable
 * runtime state beside it. Names of states, outcomes and triggers are the
 * protocol's strings (job_state_name() etc.).
 */
#ifndef MCPJOB_JOB_H
#define MCPJOB_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum job_state {
	JOB_STATE_DISABLED,
	JOB_STATE_SCHEDULED, /* waiting for its due time */
	JOB_STATE_PENDING,   /* due, constraints unmet (or waiting for a run slot) */
	JOB_STATE_RUNNING,
	JOB_STATE_BACKOFF,   /* waiting to retry */
	JOB_STATE_DONE,      /* a one-off ("at") job that ran, or whose time expired */
};

enum run_outcome {
	OUTCOME_NONE = 0, /* no run yet */
	OUTCOME_RUNNING,
	OUTCOME_SUCCESS,
	OUTCOME_FAILURE,
	OUTCOME_RETRY,
	OUTCOME_TIMEOUT,
	OUTCOME_CANCELLED,
	OUTCOME_INTERRUPTED,
};

enum run_trigger {
	TRIGGER_SCHEDULE,
	TRIGGER_MANUAL,
	TRIGGER_CATCH_UP,
	TRIGGER_RETRY,
	TRIGGER_AFTER, /* started by another job's run (on_success / on_failure) */
};

enum net_req { NET_REQ_ANY, NET_REQ_CONNECTED, NET_REQ_UNMETERED };

struct job_constraints {
	enum net_req network;
	bool charging;
	bool battery_not_low;
	bool idle;
	bool storage_not_low;
};

enum backoff_kind { BACKOFF_EXPONENTIAL, BACKOFF_LINEAR };

struct retry_policy {
	int max_attempts;   /* total attempts including the first; default 3 */
	enum backoff_kind backoff;
	int64_t initial_ms; /* default 30 s */
	int64_t max_ms;     /* default 1 h */
};
/* A job without "retry": 3 attempts, exponential backoff from 30 s to 1 h. */
extern const struct retry_policy job_retry_default;

/* setrlimit limits for a child; 0 = leave as inherited. */
struct job_limits {
	uint64_t memory;  /* RLIMIT_AS, bytes */
	uint64_t cpu;     /* RLIMIT_CPU, seconds */
	uint64_t nofile;  /* RLIMIT_NOFILE */
	uint64_t nproc;   /* RLIMIT_NPROC */
};

enum action_kind { ACTION_EXEC, ACTION_CLEANUP, ACTION_MCP };

/* Which of the exclusive schedule keys a job has. */
enum schedule_kind {
	SCHEDULE_INTERVAL, /* "interval": a grid of fixed periods */
	SCHEDULE_CALENDAR, /* "schedule": a systemd.time(7) calendar event */
	SCHEDULE_CRON,     /* "cron": a 5-field cron line (or @daily ... @reboot) */
	SCHEDULE_AT,       /* "at": once */
};

struct calendar;

struct exec_action {
	char **argv; /* NULL-terminated, argv[0] is the program */
	char **env;  /* NULL-terminated "KEY=VALUE" from the job's env, may be NULL */
	char *cwd;   /* may be NULL */
};

struct cleanup_action {
	char *path;
	int64_t max_age_ms;
};

struct mcp_action {
	char *server;
	char *tool;
	json_t *arguments; /* object, owned; may contain ${...} templates */
};

struct job_def {
	char *id;
	char *name;
	char *description;
	char *source;        /* "file" the job came from, for messages */
	char **on_success;   /* job ids to start after a successful run; may be NULL */
	char **on_failure;   /* ... after a run that failed for good (failure, timeout) */
	int owner_uid;       /* added over the socket by this uid (job.add); -1: from a file */
	enum schedule_kind schedule;
	int64_t interval_ms; /* > 0 for SCHEDULE_INTERVAL, else 0 */
	char *schedule_expr; /* "schedule" or "cron" as written, else NULL */
	char *timezone;      /* "timezone", may be NULL (local) */
	struct calendar *calendar; /* parsed schedule/cron, owned */
	int64_t at_ms;       /* SCHEDULE_AT: when */
	int64_t expire_after_ms;   /* SCHEDULE_AT: not run if missed by more; 0 = always run */
	int64_t randomized_delay_ms; /* "randomized_delay": the bound */
	int64_t random_offset_ms;  /* this job's fixed delay in [0, bound), from id + machine id */
	int64_t flex_ms;     /* may run this much before due */
	int64_t timeout_ms;  /* 0 = none */
	int64_t initial_delay_ms; /* first run of a new job this long after start; default 0 */
	struct job_constraints constraints;
	const struct retry_policy *retry; /* never NULL; most jobs share job_retry_default */
	bool enabled;        /* default from config; a runtime override wins */
	bool stop_when_unmet;
	bool packed;         /* its strings live in a job_arena (job_def_pack()) */
	int history_max_runs;      /* retention: count */
	int64_t history_max_age_ms;/* retention: age */
	char *user;          /* run as; NULL = configured default */
	char *group;         /* NULL = user's primary group */
	struct job_limits *limits; /* "limits"; NULL when not given (all inherited) */
	enum action_kind kind;
	struct exec_action exec;
	struct cleanup_action cleanup;
	struct mcp_action mcp;
};

/* Free @job; a packed one only lets go of its calendar and mcp arguments
 * (its memory goes with its arena). */
void job_def_free(struct job_def *job);

/*
 * A job_arena holds the definitions of one configuration in few big blocks:
 * 100k jobs are 100k small structs and several 100k strings, which as
 * separate allocations cost their malloc overhead and, allocated between a
 * big configuration's parse tree, pin its freed pages.
 */
struct job_arena;
struct job_arena *job_arena_new(void);
void job_arena_free(struct job_arena *a); /* accepts NULL */
/* A copy of @s (NULL gives NULL) that lives as long as @a. */
char *job_arena_strdup(struct job_arena *a, const char *s);
/*
 * job_def_pack() - @job moved into @a and freed: the struct, its strings
 * and string arrays. A string or array equal to the one of the job packed
 * just before (same file, same program, same user...) is shared, and a
 * name equal to the id is the id. Its calendar and mcp arguments move over.
 * A NULL name becomes the id, a NULL description "".
 */
struct job_def *job_def_pack(struct job_arena *a, struct job_def *job);
/*
 * job_def_equal() - true when @a and @b define the same job in every key
 * (what reload reports as "changed"); "source", where it was read from,
 * does not count.
 */
bool job_def_equal(const struct job_def *a, const struct job_def *b);

/* The job's schedule for people: "every 15min", "Mon..Fri *-*-* 03:00:00", "once at ...". */
char *job_def_schedule_text(const struct job_def *d);

const char *job_state_name(enum job_state s);
const char *job_outcome_name(enum run_outcome o);
const char *job_trigger_name(enum run_trigger t);
const char *job_action_kind_name(enum action_kind k);
const char *job_net_req_name(enum net_req n);
/* Inverse of the above; -1 when unknown. */
int job_outcome_from_name(const char *s);
int job_trigger_from_name(const char *s);

/* An outcome a retry policy applies to (exec exit 75, transport failure, timeout). */
bool job_outcome_is_retryable(enum run_outcome o);

#endif
