/*
 * mcpjobctl.c - command-line client for mcpjobd: flags, one function per verb.
 *
 * Each verb makes one or a few JSON-RPC calls on one connection (client.c)
 * and prints the result for people (output.c) or, with --json, exactly as
 * the daemon sent it so scripts see the protocol's own shapes. Exit status:
 * 0 success, 1 failure (with one line on stderr), 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <pwd.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/paths.h"
#include "common/protocol.h"
#include "common/timeutil.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "ctl/calendar.h"
#include "ctl/client.h"
#include "ctl/output.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

/* Width when stdout is no terminal and $COLUMNS is unset. */
#define CTL_HISTORY_WIDTH 100

/* Options a verb may take besides the global ones. */
enum {
	OPT_NAMES = 1 << 0,
	OPT_WAIT = 1 << 1,
	OPT_WHEN_ALLOWED = 1 << 2,
	OPT_LIMIT = 1 << 3,
	OPT_FROM = 1 << 4,
	OPT_CRON = 1 << 5,
	OPT_TIMEZONE = 1 << 6,
	OPT_OFFLINE = 1 << 7, /* not an option: the verb needs no daemon */
	OPT_IF_EXISTS = 1 << 8,
	OPT_FOLLOW = 1 << 9,
	OPT_NO_BROWSER = 1 << 10,
};

struct ctl {
	const char *socket_opt;
	bool user;
	bool json;
	bool no_color, full, no_legend;
	unsigned given; /* OPT_* seen on the command line */
	long limit;
	const char *from, *timezone, *if_exists;
	struct ctl_client *client;
};

struct ctl_verb {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	int min_args, max_args; /* operands after the verb; -1: no limit */
	unsigned opts;
	const char *usage;
	const char *help; /* for --help; '\n' starts a continuation line */
	/* Operand checks beyond the count, done before connecting; NULL: none. */
	int (*check)(int argc, char **argv);
};

/* --help is made from the verb table (ctl_print_usage), so the two cannot drift. */
static const char usage_head[] =
    "usage: mcpjobctl [--socket PATH] [--user] [--json] [--no-color] [-l]\n"
    "                 [--no-legend] COMMAND [ARGS]\n"
    "\n"
    "Control mcpjobd, the background-job daemon.\n"
    "\n"
    "Commands:\n";

static const char usage_tail[] =
    "\n"
    "Options:\n"
    "  --socket PATH   control socket (default: $MCPJOBD_SOCKET, else\n"
    "                  /run/mcpjobd/control.sock)\n"
    "  --user          use the per-user daemon's socket, $XDG_RUNTIME_DIR\n"
    "                  (else /run/user/UID)/mcpjobd/control.sock\n"
    "  --json          print the daemon's JSON result unchanged\n"
    "  --no-color      no colours (none either with $NO_COLOR or in a pipe)\n"
    "  -l, --full      do not cut columns to the terminal's width\n"
    "  --no-legend     no column headers and footers\n"
    "  --help          show this help\n"
    "  --version       show the version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static void ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ctl_usage_error(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	fputs("mcpjobctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\nTry 'mcpjobctl --help' for more information.\n", stderr);
	va_end(ap);
}

static void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ctl_error(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	fputs("mcpjobctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Daemon errors are shown as sent; a refused reload also lists what is wrong. */
static void ctl_print_daemon_error(const char *cause, const json_t *err) {
	char *clean = output_clean(cause);
	ctl_error("%s", clean);
	free(clean);
	const json_t *errors = json_object_get(json_object_get(err, "data"), "errors");
	size_t i;
	const json_t *e;
	json_array_foreach(errors, i, e) {
		char *line = output_clean(json_string_value(e));
		fprintf(stderr, "  %s\n", line);
		free(line);
	}
}

/*
 * One call; on success *result is set (caller frees). On failure the error
 * is printed and, for daemon errors, *err_out gets the error object when
 * asked for. Takes ownership of @params.
 */
static int ctl_call_ex(struct ctl *ctl, const char *method, json_t *params, json_t **result,
                       json_t **err_out) {
	char *cause = NULL;
	json_t *out = NULL;
	enum ctl_reply rep = ctl_client_call(ctl->client, method, params, &out, &cause);
	json_decref(params);
	if (rep == CTL_REPLY_OK) {
		*result = out;
		return 0;
	}
	if (rep == CTL_REPLY_ERROR)
		ctl_print_daemon_error(cause, out);
	else
		ctl_error("%s", cause);
	if (err_out != NULL)
		*err_out = out;
	else
		json_decref(out);
	free(cause);
	return -1;
}

static int ctl_call(struct ctl *ctl, const char *method, json_t *params, json_t **result) {
	return ctl_call_ex(ctl, method, params, result, NULL);
}

static void ctl_print_json(const json_t *v) {
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s == NULL)
		log_fatalx("cannot encode JSON output");
	puts(s);
	free(s);
}

static const char *str_or(const json_t *obj, const char *key, const char *dflt) {
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : dflt;
}

static int64_t time_of(const json_t *obj, const char *key) {
	return output_json_time(json_object_get(obj, key));
}

/* ---- list ---------------------------------------------------------- */

static void list_add_row(struct output_table *t, const json_t *job, int64_t now) {
	char next[OUTPUT_TIME_LEN], left[OUTPUT_TIME_LEN], last[OUTPUT_TIME_LEN],
	    passed[OUTPUT_TIME_LEN];
	output_local_time(time_of(job, "next_run"), next, sizeof next);
	output_left(time_of(job, "next_run"), now, left, sizeof left);
	output_local_time(time_of(job, "last_run"), last, sizeof last);
	output_relative(time_of(job, "last_run"), now, passed, sizeof passed);
	const char *cells[] = {
	    str_or(job, "id", "?"),
	    str_or(job, "state", "?"),
	    json_is_true(json_object_get(job, "enabled")) ? "yes" : "no",
	    next,
	    left,
	    last,
	    passed,
	    str_or(job, "last_outcome", "-"),
	    str_or(job, "schedule", "-"),
	};
	output_table_add(t, cells);
}

/* Columns fitted to the terminal unless --full. */
static size_t ctl_width(const struct ctl *ctl, size_t dflt) {
	return ctl->full ? 0 : output_terminal_width(dflt);
}

/* Operands of list are shell globs on job ids; none matches everything. */
static bool list_matches(const json_t *job, int argc, char **argv) {
	const char *id = str_or(job, "id", "");
	for (int i = 0; i < argc; i++)
		if (fnmatch(argv[i], id, 0) == 0)
			return true;
	return argc == 0;
}

/* jobs.list's result with only the jobs the patterns name (new reference). */
static json_t *list_filter(json_t *res, int argc, char **argv) {
	if (argc == 0)
		return json_incref(res);
	json_t *out = json_deep_copy(res), *kept = json_array();
	size_t i;
	const json_t *job;
	json_array_foreach(json_object_get(res, "jobs"), i, job)
		if (list_matches(job, argc, argv))
			json_array_append(kept, (json_t *)job);
	json_object_set_new(out, "jobs", kept);
	return out;
}

/* "sync-data: pending since 14:02: waiting for unmetered network (now: metered)" */
static void list_print_pending(const json_t *job, int64_t now) {
	char since[OUTPUT_TIME_LEN] = "";
	int64_t ps = time_of(job, "pending_since");
	if (ps != 0)
		output_short_time(ps, now, since, sizeof since);
	char *id = output_clean(str_or(job, "id", "?"));
	char *why = output_clean(str_or(job, "pending_reason", "waiting for its constraints"));
	printf("%s: pending%s%s: %s\n", id, ps ? " since " : "", since, why);
	free(id);
	free(why);
}

static void list_print_table(struct ctl *ctl, const json_t *jobs) {
	static const char *const hdr[] = {"ID",   "STATE",  "ENABLED", "NEXT",    "LEFT",
	                                  "LAST", "PASSED", "RESULT",  "SCHEDULE"};
	size_t i, npending = 0;
	const json_t *job;
	int64_t now = time_now_ms();
	struct output_table *t = output_table_new(hdr, 9);
	json_array_foreach(jobs, i, job) {
		list_add_row(t, job, now);
		npending += strcmp(str_or(job, "state", ""), "pending") == 0;
	}
	output_table_color(t, 1, output_state_sgr);
	output_table_color(t, 7, output_outcome_sgr); /* before any column is dropped */
	/* Too narrow: LAST and NEXT go first (PASSED and LEFT say the same in
	 * fewer columns), then SCHEDULE (status shows it), then the ids are cut. */
	size_t width = ctl_width(ctl, 0);
	if (width > 0 && output_table_width(t) > width)
		output_table_drop(t, 5);
	if (width > 0 && output_table_width(t) > width)
		output_table_drop(t, 3);
	if (width > 0 && output_table_width(t) > width)
		output_table_drop(t, 6); /* SCHEDULE, the last after the two drops */
	output_table_fit(t, width, 1u << 0);
	output_table_print(t, stdout, !ctl->no_legend);
	if (!ctl->no_legend) {
		if (npending > 0)
			putchar('\n');
		json_array_foreach(jobs, i, job) {
			if (strcmp(str_or(job, "state", ""), "pending") == 0)
				list_print_pending(job, now);
		}
		size_t n = output_table_rows(t);
		printf("\n%zu %s listed.\n", n, n == 1 ? "job" : "jobs");
	}
	output_table_free(t);
}

static int ctl_cmd_list(struct ctl *ctl, int argc, char **argv) {
	json_t *all;
	if (ctl_call(ctl, RPC_M_JOBS_LIST, NULL, &all) < 0)
		return CTL_EXIT_FAIL;
	json_t *res = list_filter(all, argc, argv);
	json_decref(all);
	const json_t *jobs = json_object_get(res, "jobs");
	size_t i;
	const json_t *job;
	if (ctl->given & OPT_NAMES) {
		json_array_foreach(jobs, i, job) {
			char *id = output_clean(str_or(job, "id", "?"));
			puts(id);
			free(id);
		}
	} else if (ctl->json) {
		ctl_print_json(res);
	} else {
		list_print_table(ctl, jobs);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

/* ---- status -------------------------------------------------------- */

static void field(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "      Label: value", the value cleaned of control characters and, with
 * colour on, its first @word after @after painted with @sgr. */
static void field_vpaint(const char *label, const char *after, const char *word,
                         const char *sgr, const char *fmt, va_list ap) {
	char *raw = xvasprintf(fmt, ap);
	char *v = output_clean(raw);
	const char *from = after && strstr(v, after) ? strstr(v, after) + strlen(after) : v;
	char *at = word && *word && output_color() ? strstr(from, word) : NULL;
	if (at != NULL) {
		char *painted = output_paint(word, sgr);
		printf("%13s: %.*s%s%s\n", label, (int)(at - v), v, painted, at + strlen(word));
		free(painted);
	} else {
		printf("%13s: %s\n", label, v);
	}
	free(v);
	free(raw);
}

static void field(const char *label, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	field_vpaint(label, NULL, NULL, NULL, fmt, ap);
	va_end(ap);
}

static void field_paint(const char *label, const char *after, const char *word,
                        const char *sgr, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void field_paint(const char *label, const char *after, const char *word,
                        const char *sgr, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	field_vpaint(label, after, word, sgr, fmt, ap);
	va_end(ap);
}

/* Where the job came from: a file, or job.add by a user. */
static void status_origin(const json_t *job) {
	const json_t *uid = json_object_get(job, "owner_uid");
	if (json_is_integer(uid)) {
		struct passwd *pw = getpwuid((uid_t)json_integer_value(uid));
		field("Origin", "added over the socket by uid %lld%s%s%s",
		      (long long)json_integer_value(uid), pw ? " (" : "", pw ? pw->pw_name : "",
		      pw ? ")" : "");
	} else if (str_or(job, "file", NULL)) {
		field("Origin", "%s", str_or(job, "file", ""));
	}
}

/* "Sat 2026-11-28 16:40:00 (in 14min)" */
static char *when_text(int64_t ms, int64_t now) {
	char abs[OUTPUT_TIME_LEN], rel[OUTPUT_TIME_LEN];
	if (ms == 0)
		return xstrdup("-");
	return xasprintf("%s (%s)", output_local_time(ms, abs, sizeof abs),
	                 output_relative(ms, now, rel, sizeof rel));
}

static char *progress_text(const json_t *p) {
	if (!json_is_object(p))
		return NULL;
	const json_t *total = json_object_get(p, "total");
	const char *msg = str_or(p, "message", NULL);
	char *count = json_is_number(total)
	                  ? xasprintf("%g/%g", json_number_value(json_object_get(p, "progress")),
	                              json_number_value(total))
	                  : xasprintf("%g", json_number_value(json_object_get(p, "progress")));
	char *s = msg ? xasprintf("%s — %s", count, msg) : xstrdup(count);
	free(count);
	return s;
}

static void status_state(const json_t *job, int64_t now) {
	const char *state = str_or(job, "state", "?");
	long long attempt = json_integer_value(json_object_get(job, "attempt"));
	if (strcmp(state, "pending") == 0) {
		char *since = when_text(time_of(job, "pending_since"), now);
		field_paint("State", NULL, state, output_state_sgr(state), "pending since %s: %s", since,
		      str_or(job, "pending_reason", "waiting for its constraints"));
		free(since);
	} else if (strcmp(state, "running") == 0) {
		char *since = when_text(time_of(job, "running_since"), now);
		field_paint("State", NULL, state, output_state_sgr(state),
		            "running run %lld since %s, attempt %lld",
		      json_integer_value(json_object_get(job, "run_id")), since,
		      attempt > 0 ? attempt : 1);
		free(since);
		char *prog = progress_text(json_object_get(job, "progress"));
		if (prog)
			field("Progress", "%s", prog);
		free(prog);
	} else if (strcmp(state, "backoff") == 0) {
		char *until = when_text(time_of(job, "backoff_until"), now);
		field_paint("State", NULL, state, output_state_sgr(state),
		            "backoff after attempt %lld, next attempt %s", attempt, until);
		free(until);
	} else {
		field_paint("State", NULL, state, output_state_sgr(state), "%s", state);
	}
}

static void status_schedule(const json_t *job) {
	char fx[32], to[32];
	const char *sched = json_string_value(json_object_get(job, "schedule"));
	double flex = json_number_value(json_object_get(job, "flex"));
	const json_t *timeout = json_object_get(job, "timeout");
	duration_format((int64_t)(flex * 1000), fx, sizeof fx);
	if (json_is_number(timeout))
		duration_format((int64_t)(json_number_value(timeout) * 1000), to, sizeof to);
	/* The daemon's own words: "every 15min", a calendar's normal form, "once at ...". */
	field("Schedule", "%s%s%s%s%s", sched ? sched : "?", flex > 0 ? ", flex " : "",
	      flex > 0 ? fx : "", json_is_number(timeout) ? ", timeout " : "",
	      json_is_number(timeout) ? to : "");
}

static void status_last(const json_t *job, int64_t now) {
	int64_t last = time_of(job, "last_run");
	if (last == 0) {
		field("Last run", "never");
		return;
	}
	char *when = when_text(last, now);
	const char *outcome = str_or(job, "last_outcome", NULL);
	const char *msg = str_or(job, "last_message", NULL);
	field_paint("Last run", ")", outcome, output_outcome_sgr(outcome), "%s%s%s%s%s", when,
	            outcome ? ": " : "", outcome ? outcome : "", msg ? ": " : "", msg ? msg : "");
	free(when);
	int64_t ok = time_of(job, "last_success");
	if (ok != 0 && ok != last) {
		char *s = when_text(ok, now);
		field("Last success", "%s", s);
		free(s);
	}
}

static void status_constraints(const json_t *job) {
	const json_t *c = json_object_get(job, "constraints");
	static const char *const flags[][2] = {{"charging", "charging"},
	                                       {"battery_not_low", "battery not low"},
	                                       {"idle", "idle"},
	                                       {"storage_not_low", "storage not low"}};
	char *s = xstrdup("");
	const char *net = str_or(c, "network", "any");
	if (strcmp(net, "any") != 0) {
		free(s);
		s = xasprintf("network %s", net);
	}
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		if (!json_is_true(json_object_get(c, flags[i][0])))
			continue;
		char *t = xasprintf("%s%s%s", s, *s ? ", " : "", flags[i][1]);
		free(s);
		s = t;
	}
	field("Constraints", "%s", *s ? s : "none");
	free(s);
}

static void status_print(const json_t *job) {
	int64_t now = time_now_ms();
	char *id = output_clean(str_or(job, "id", "?"));
	char *name = output_clean(str_or(job, "name", ""));
	printf("%s%s%s\n", id, *name ? " - " : "", name);
	free(id);
	free(name);
	const char *desc = str_or(job, "description", NULL);
	if (desc && *desc)
		field("Description", "%s", desc);
	field("Action", "%s", str_or(job, "action", "?"));
	status_origin(job);
	status_state(job, now);
	field("Enabled", "%s", json_is_true(json_object_get(job, "enabled")) ? "yes" : "no");
	status_schedule(job);
	char *next = when_text(time_of(job, "next_run"), now);
	field("Next run", "%s", next);
	free(next);
	status_last(job, now);
	status_constraints(job);
}

/* ---- logs (and the tail under status) ----------------------------- */

/* "-- run 12 (manual) Tue 2026-12-01 08:49:33 UTC: failure in 2ms --" */
static void logs_print_head(const json_t *run) {
	char started[OUTPUT_TIME_LEN], dur[OUTPUT_TIME_LEN] = "";
	output_local_time(time_of(run, "started_at"), started, sizeof started);
	const json_t *d = json_object_get(run, "duration_ms");
	if (json_is_integer(d))
		output_duration(json_integer_value(d), dur, sizeof dur);
	const char *outcome = str_or(run, "outcome", "?");
	char *line = xasprintf("-- run %lld (%s) %s: ", json_integer_value(json_object_get(run, "run_id")),
	                       str_or(run, "trigger", "?"), started);
	char *clean = output_clean(line), *word = output_clean(outcome);
	char *painted = output_paint(word, output_outcome_sgr(outcome));
	printf("%s%s%s%s%s --\n", clean, painted, *dur ? " in " : "", dur,
	       *str_or(run, "output", "") ? "" : ", no output");
	free(painted);
	free(word);
	free(clean);
	free(line);
}

/* Lines of @text from the @skip-th on, each cleaned of control characters. */
static void logs_print_lines(const char *text, size_t skip, const char *indent) {
	size_t n = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (n++ >= skip) {
			char *raw = xstrndup(p, len), *line = output_clean(raw);
			printf("%s%s\n", indent, line);
			free(line);
			free(raw);
		}
		p += len + (nl != NULL);
	}
}

static size_t logs_count_lines(const char *text) {
	size_t n = 0;
	for (const char *p = text; p && *p; n++) {
		const char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : p + strlen(p);
	}
	return n;
}

/* The runs oldest first, the last @max lines of their output (0: all). */
static void logs_print_runs(const json_t *runs, size_t max) {
	size_t total = 0, i = json_array_size(runs);
	while (i-- > 0)
		total += logs_count_lines(str_or(json_array_get(runs, i), "output", NULL));
	size_t skip = max && total > max ? total - max : 0;
	for (i = json_array_size(runs); i-- > 0;) {
		const json_t *run = json_array_get(runs, i);
		const char *out = str_or(run, "output", NULL);
		size_t n = logs_count_lines(out);
		if (skip > 0 && skip >= n) {
			skip -= n;
			continue;
		}
		logs_print_head(run);
		if (out)
			logs_print_lines(out, skip, "");
		skip = 0;
	}
}

/* -f: each run's output as it finishes, until the connection ends. */
static int logs_follow(struct ctl *ctl, long long last_run) {
	for (;;) {
		json_t *ev = NULL;
		char *cause = NULL;
		int r = ctl_client_next_event(ctl->client, &ev, &cause);
		if (r <= 0) {
			ctl_error("%s", r == 0 ? "mcpjobd closed the connection" : cause);
			free(cause);
			return CTL_EXIT_FAIL;
		}
		const json_t *run = json_object_get(ev, "run");
		if (strcmp(str_or(ev, "type", ""), EVENT_RUN_FINISHED) == 0 && json_is_object(run) &&
		    json_integer_value(json_object_get(run, "run_id")) > last_run) {
			last_run = json_integer_value(json_object_get(run, "run_id"));
			json_t *one = json_pack("[O]", run);
			logs_print_runs(one, 0);
			json_decref(one);
			fflush(stdout);
		}
		json_decref(ev);
		if (ferror(stdout))
			return CTL_EXIT_FAIL;
	}
}

static int ctl_cmd_logs(struct ctl *ctl, int argc, char **argv) {
	(void)argc;
	bool follow = ctl->given & OPT_FOLLOW;
	json_t *res;
	/* Subscribe before reading the history, so no run falls between them. */
	if (follow && ctl_call(ctl, RPC_M_EVENTS_SUBSCRIBE, json_pack("{s:[s]}", "jobs", argv[0]),
	                       &res) < 0)
		return CTL_EXIT_FAIL;
	if (follow)
		json_decref(res);
	long limit = (ctl->given & OPT_LIMIT) ? ctl->limit : MCPJOB_HISTORY_MAX;
	json_t *p = json_pack("{s:s, s:i}", "job", argv[0], "limit", (int)limit);
	if (ctl_call(ctl, RPC_M_JOB_HISTORY, p, &res) < 0)
		return CTL_EXIT_FAIL;
	const json_t *runs = json_object_get(res, "runs");
	long long last_run = 0;
	size_t i;
	const json_t *run;
	json_t *done = json_array(); /* a run still running shows when it ends */
	json_array_foreach(runs, i, run) {
		if (strcmp(str_or(run, "outcome", ""), "running") == 0)
			continue;
		json_array_append(done, (json_t *)run);
		if (json_integer_value(json_object_get(run, "run_id")) > last_run)
			last_run = json_integer_value(json_object_get(run, "run_id"));
	}
	if (ctl->json) {
		ctl_print_json(res);
	} else if (json_array_size(done) == 0 && !follow) {
		char *id = output_clean(argv[0]);
		printf("%s has not run yet.\n", id);
		free(id);
	} else {
		logs_print_runs(done, (ctl->given & OPT_LIMIT) ? (size_t)ctl->limit : 0);
	}
	json_decref(done);
	json_decref(res);
	fflush(stdout);
	return follow ? logs_follow(ctl, last_run) : CTL_EXIT_OK;
}

#define CTL_STATUS_LINES 10

/* As systemctl status ends with journal lines: the last run's last lines. */
static void status_tail(struct ctl *ctl, const char *job) {
	json_t *res = NULL;
	char *cause = NULL;
	json_t *p = json_pack("{s:s, s:i}", "job", job, "limit", 2);
	if (ctl_client_call(ctl->client, RPC_M_JOB_HISTORY, p, &res, &cause) == CTL_REPLY_OK) {
		size_t i;
		const json_t *run;
		json_array_foreach(json_object_get(res, "runs"), i, run) {
			if (strcmp(str_or(run, "outcome", ""), "running") == 0)
				continue;
			const char *out = str_or(run, "output", NULL);
			size_t n = logs_count_lines(out);
			if (n > 0) {
				printf("\nOutput of run %lld:\n",
				       json_integer_value(json_object_get(run, "run_id")));
				logs_print_lines(out, n > CTL_STATUS_LINES ? n - CTL_STATUS_LINES : 0, "  ");
			}
			break;
		}
	}
	free(cause);
	json_decref(res);
	json_decref(p);
}

static int ctl_cmd_status(struct ctl *ctl, int argc, char **argv) {
	(void)argc;
	json_t *res;
	if (ctl_call(ctl, RPC_M_JOB_STATUS, json_pack("{s:s}", "job", argv[0]), &res) < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
	} else {
		status_print(res);
		status_tail(ctl, argv[0]);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

/* ---- enable / disable ---------------------------------------------- */

/* One request per job, all attempted; --json with several jobs prints an
 * array in argument order where a failed job is {"job", "error"}. */
static int ctl_set_enabled(struct ctl *ctl, const char *method, const char *done, int argc,
                           char **argv) {
	int rc = CTL_EXIT_OK;
	json_t *all = json_array();
	for (int i = 0; i < argc; i++) {
		json_t *res = NULL, *err = NULL;
		if (ctl_call_ex(ctl, method, json_pack("{s:s}", "job", argv[i]), &res, &err) < 0) {
			rc = CTL_EXIT_FAIL;
			if (err != NULL)
				json_array_append_new(all, json_pack("{s:s, s:o}", "job", argv[i], "error", err));
			continue;
		}
		if (!ctl->json) {
			char *id = output_clean(str_or(res, "id", argv[i]));
			printf("%s %s\n", done, id);
			free(id);
		}
		json_array_append_new(all, res);
	}
	if (ctl->json && argc > 1)
		ctl_print_json(all);
	else if (ctl->json && rc == CTL_EXIT_OK)
		ctl_print_json(json_array_get(all, 0));
	json_decref(all);
	return rc;
}

static int ctl_cmd_enable(struct ctl *ctl, int argc, char **argv) {
	return ctl_set_enabled(ctl, RPC_M_JOB_ENABLE, "enabled", argc, argv);
}

static int ctl_cmd_disable(struct ctl *ctl, int argc, char **argv) {
	return ctl_set_enabled(ctl, RPC_M_JOB_DISABLE, "disabled", argc, argv);
}

/* ---- run / cancel -------------------------------------------------- */

/*
 * "success in 1.2s: message" for a finished run (the record or the
 * run.finished event). "retry in 27ms" would read as a delay, so a retry
 * says when the next attempt starts - "retry, next attempt at 14:05:00
 * (in 30s); this one ran in 27ms: message" - or that none will.
 */
static char *run_outcome_text(const json_t *ev, const json_t *run) {
	char dur[OUTPUT_TIME_LEN] = "", at[OUTPUT_TIME_LEN], in[OUTPUT_TIME_LEN];
	const json_t *d = json_object_get(ev, "duration_ms");
	if (json_is_integer(d))
		output_duration(json_integer_value(d), dur, sizeof dur);
	const char *msg = str_or(ev, "message", NULL), *outcome = str_or(ev, "outcome", "?");
	int64_t retry_at = output_json_time(json_object_get(run, "retry_at"));
	char *retry;
	if (retry_at)
		retry = xasprintf(", next attempt at %s (%s); this one ran",
		                  output_clock(retry_at, at, sizeof at),
		                  output_relative(retry_at, time_now_ms(), in, sizeof in));
	else if (strcmp(outcome, "retry") == 0)
		retry = xstrdup(strcmp(str_or(run, "trigger", ""), "manual") == 0
		                    ? ", not retried (a manual run is not); it ran"
		                    : ", not retried (no attempts left); it ran");
	else
		retry = xstrdup("");
	char *text = xasprintf("%s%s%s%s%s%s", outcome, retry, *dur ? " in " : "", dur,
	                       msg ? ": " : "", msg ? msg : "");
	free(retry);
	return text;
}

/* "JOB run N: <outcome text>"; a queued run cancelled before it started
 * has no run: "JOB: cancelled: message". */
static void run_print_outcome(const json_t *run) {
	char *who = json_is_integer(json_object_get(run, "run_id"))
	                ? xasprintf("%s run %lld", str_or(run, "job", "?"),
	                            json_integer_value(json_object_get(run, "run_id")))
	                : xstrdup(str_or(run, "job", "?"));
	char *text = run_outcome_text(run, run);
	char *line = xasprintf("%s: %s", who, text);
	free(who);
	free(text);
	char *clean = output_clean(line);
	puts(clean);
	free(clean);
	free(line);
}

/* Why a queued run waits: the job's pending reason when it has one. */
static char *run_queued_reason(struct ctl *ctl, const char *job) {
	json_t *st = NULL;
	char *cause = NULL, *why = NULL;
	json_t *p = json_pack("{s:s}", "job", job);
	if (ctl_client_call(ctl->client, RPC_M_JOB_STATUS, p, &st, &cause) == CTL_REPLY_OK)
		why = xstrdup_or_null(str_or(st, "pending_reason", NULL));
	free(cause);
	json_decref(st);
	json_decref(p);
	if (why != NULL)
		return why;
	return xstrdup((ctl->given & OPT_WHEN_ALLOWED) ? "waiting for its constraints"
	                                               : "waiting for a run slot");
}

static int ctl_cmd_run(struct ctl *ctl, int argc, char **argv) {
	(void)argc;
	bool wait = ctl->given & OPT_WAIT;
	json_t *p = json_pack("{s:s}", "job", argv[0]);
	if (wait) {
		json_object_set_new(p, "wait", json_true());
		ctl_client_set_timeout(ctl->client, -1); /* the reply comes when the run ends */
	}
	if (ctl->given & OPT_WHEN_ALLOWED)
		json_object_set_new(p, "when_allowed", json_true());
	json_t *res;
	if (ctl_call(ctl, RPC_M_JOB_RUN, p, &res) < 0)
		return CTL_EXIT_FAIL;
	int rc = CTL_EXIT_OK;
	if (wait)
		rc = strcmp(str_or(res, "outcome", ""), "success") == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
	} else if (wait) {
		run_print_outcome(res);
	} else {
		char *id = output_clean(str_or(res, "job", argv[0]));
		if (json_is_true(json_object_get(res, "queued"))) {
			char *why = run_queued_reason(ctl, argv[0]);
			char *clean = output_clean(why);
			printf("queued %s (%s)\n", id, clean);
			free(clean);
			free(why);
		} else {
			printf("started run %lld of %s\n",
			       json_integer_value(json_object_get(res, "run_id")), id);
		}
		free(id);
	}
	json_decref(res);
	return rc;
}

static int ctl_cmd_cancel(struct ctl *ctl, int argc, char **argv) {
	(void)argc;
	json_t *res;
	if (ctl_call(ctl, RPC_M_JOB_CANCEL, json_pack("{s:s}", "job", argv[0]), &res) < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
	} else {
		char *id = output_clean(str_or(res, "job", argv[0]));
		if (json_is_integer(json_object_get(res, "run_id")))
			printf("cancelled run %lld of %s\n",
			       json_integer_value(json_object_get(res, "run_id")), id);
		else
			printf("cancelled the queued run of %s\n", id);
		free(id);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

/* ---- history ------------------------------------------------------- */

static void history_add_row(struct output_table *t, const json_t *run) {
	char started[OUTPUT_TIME_LEN], dur[OUTPUT_TIME_LEN] = "-", runid[32], attempt[32];
	output_local_time(time_of(run, "started_at"), started, sizeof started);
	const json_t *d = json_object_get(run, "duration_ms");
	if (json_is_integer(d))
		output_duration(json_integer_value(d), dur, sizeof dur);
	snprintf(runid, sizeof runid, "%lld", json_integer_value(json_object_get(run, "run_id")));
	snprintf(attempt, sizeof attempt, "%lld",
	         json_integer_value(json_object_get(run, "attempt")));
	const char *cells[] = {
	    runid, started, dur, str_or(run, "trigger", "-"), attempt, str_or(run, "outcome", "-"),
	    str_or(run, "message", "-"),
	};
	output_table_add(t, cells);
}

static int ctl_cmd_history(struct ctl *ctl, int argc, char **argv) {
	(void)argc;
	long limit = (ctl->given & OPT_LIMIT) ? ctl->limit : MCPJOB_HISTORY_DEFAULT;
	json_t *res;
	json_t *p = json_pack("{s:s, s:i}", "job", argv[0], "limit", (int)limit);
	if (ctl_call(ctl, RPC_M_JOB_HISTORY, p, &res) < 0)
		return CTL_EXIT_FAIL;
	const json_t *runs = json_object_get(res, "runs");
	if (ctl->json) {
		ctl_print_json(res);
	} else if (json_array_size(runs) == 0) {
		char *id = output_clean(argv[0]);
		printf("%s has not run yet.\n", id);
		free(id);
	} else {
		static const char *const hdr[] = {"RUN",     "STARTED", "DURATION", "TRIGGER",
		                                  "ATTEMPT", "OUTCOME", "MESSAGE"};
		struct output_table *t = output_table_new(hdr, 7);
		size_t i;
		const json_t *run;
		json_array_foreach(runs, i, run) history_add_row(t, run);
		output_table_color(t, 5, output_outcome_sgr);
		/* MESSAGE gives way first, then STARTED. */
		output_table_fit(t, ctl_width(ctl, CTL_HISTORY_WIDTH), 1u << 6 | 1u << 1);
		output_table_print(t, stdout, !ctl->no_legend);
		output_table_free(t);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

/* ---- reload -------------------------------------------------------- */

/* "; added: a, b" or "" for an empty list. */
static char *id_list(const char *label, const json_t *ids) {
	if (json_array_size(ids) == 0)
		return xstrdup("");
	char *s = xasprintf("; %s:", label);
	size_t i;
	const json_t *id;
	json_array_foreach(ids, i, id) {
		char *t = xasprintf("%s%s %s", s, i ? "," : "", json_string_value(id) ? json_string_value(id) : "?");
		free(s);
		s = t;
	}
	return s;
}

static int ctl_cmd_reload(struct ctl *ctl, int argc, char **argv) {
	(void)argc, (void)argv;
	json_t *res;
	if (ctl_call(ctl, RPC_M_RELOAD, NULL, &res) < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
	} else {
		char *a = id_list("added", json_object_get(res, "added"));
		char *r = id_list("removed", json_object_get(res, "removed"));
		char *c = id_list("changed", json_object_get(res, "changed"));
		long long n = json_integer_value(json_object_get(res, "jobs"));
		char *line = xasprintf("reloaded: %lld %s%s%s%s", n, n == 1 ? "job" : "jobs", a, r, c);
		char *clean = output_clean(line);
		puts(clean);
		free(clean);
		free(line);
		free(a);
		free(r);
		free(c);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

/* ---- watch --------------------------------------------------------- */

/* Scalar of a device state for "network none → unmetered". */
static char *device_value(const json_t *v) {
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? "true" : "false");
	if (json_is_null(v) || v == NULL)
		return xstrdup("unknown");
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static char *watch_device(const json_t *ev) {
	const json_t *now = json_object_get(ev, "state"), *prev = json_object_get(ev, "previous");
	char *s = xstrdup("device:");
	const char *key;
	const json_t *v;
	bool any = false;
	json_object_foreach((json_t *)now, key, v) {
		char *a = device_value(json_object_get(prev, key)), *b = device_value(v);
		if (strcmp(a, b) != 0) {
			char *t = xasprintf("%s%s %s %s → %s", s, any ? "," : "", key, a, b);
			free(s);
			s = t;
			any = true;
		}
		free(a);
		free(b);
	}
	if (!any) {
		free(s);
		s = xstrdup("device: state unchanged");
	}
	return s;
}

static char *watch_run(const json_t *ev, const char *type) {
	const char *job = str_or(ev, "job", "?");
	long long run = json_integer_value(json_object_get(ev, "run_id"));
	if (strcmp(type, EVENT_RUN_STARTED) == 0) {
		long long attempt = json_integer_value(json_object_get(ev, "attempt"));
		if (attempt > 1)
			return xasprintf("%s run %lld started (%s, attempt %lld)", job, run,
			                 str_or(ev, "trigger", "?"), attempt);
		return xasprintf("%s run %lld started (%s)", job, run, str_or(ev, "trigger", "?"));
	}
	if (strcmp(type, EVENT_RUN_PROGRESS) == 0) {
		char *prog = progress_text(ev);
		char *s = xasprintf("%s run %lld progress %s", job, run, prog);
		free(prog);
		return s;
	}
	char *text = run_outcome_text(ev, json_object_get(ev, "run"));
	char *line = xasprintf("%s run %lld finished: %s", job, run, text);
	free(text);
	return line;
}

/* One human line for an event, without the time stamp. */
static char *watch_describe(const json_t *ev) {
	const char *type = str_or(ev, "type", "?");
	if (strcmp(type, EVENT_JOB_STATE) == 0) {
		const char *why = str_or(ev, "reason", NULL);
		return xasprintf("%s state %s → %s%s%s", str_or(ev, "job", "?"),
		                 str_or(ev, "previous", "?"), str_or(ev, "state", "?"), why ? ": " : "",
		                 why ? why : "");
	}
	if (strcmp(type, EVENT_RUN_STARTED) == 0 || strcmp(type, EVENT_RUN_PROGRESS) == 0 ||
	    strcmp(type, EVENT_RUN_FINISHED) == 0)
		return watch_run(ev, type);
	if (strcmp(type, EVENT_DEVICE_CHANGED) == 0)
		return watch_device(ev);
	if (strcmp(type, EVENT_NOTIFICATION) == 0) {
		const char *body = str_or(ev, "body", "");
		return xasprintf("%s notification (%s): %s%s%s", str_or(ev, "job", "?"),
		                 str_or(ev, "reason", "?"), str_or(ev, "title", ""), *body ? ": " : "",
		                 body);
	}
	char *raw = json_dumps(ev, JSON_COMPACT);
	char *s = xasprintf("event %s", raw ? raw : type);
	free(raw);
	return s;
}

static void watch_print(struct ctl *ctl, const json_t *ev) {
	if (ctl->json) {
		char *s = json_dumps(ev, JSON_COMPACT);
		puts(s ? s : "{}");
		free(s);
	} else {
		char clock[OUTPUT_TIME_LEN];
		int64_t t = time_of(ev, "time");
		output_clock(t ? t : time_now_ms(), clock, sizeof clock);
		char *line = watch_describe(ev);
		char *clean = output_clean(line);
		printf("%s %s\n", clock, clean);
		free(clean);
		free(line);
	}
	fflush(stdout);
}

static int ctl_cmd_watch(struct ctl *ctl, int argc, char **argv) {
	json_t *p = json_object();
	if (argc > 0) {
		json_t *jobs = json_array();
		for (int i = 0; i < argc; i++)
			json_array_append_new(jobs, json_string(argv[i]));
		json_object_set_new(p, "jobs", jobs);
	}
	json_t *res;
	if (ctl_call(ctl, RPC_M_EVENTS_SUBSCRIBE, p, &res) < 0)
		return CTL_EXIT_FAIL;
	json_decref(res);
	for (;;) {
		json_t *ev = NULL;
		char *cause = NULL;
		int r = ctl_client_next_event(ctl->client, &ev, &cause);
		if (r == 0) {
			ctl_error("mcpjobd closed the connection");
			return CTL_EXIT_FAIL;
		}
		if (r < 0) {
			ctl_error("%s", cause);
			free(cause);
			return CTL_EXIT_FAIL;
		}
		watch_print(ctl, ev);
		json_decref(ev);
		if (ferror(stdout))
			return CTL_EXIT_FAIL;
	}
}

/* ---- device -------------------------------------------------------- */

static void device_print(const json_t *res) {
	char *platform = output_clean(str_or(res, "platform", "?"));
	printf("platform: %s\n", platform);
	free(platform);
	const char *key;
	const json_t *v;
	json_object_foreach(json_object_get(res, "state"), key, v) {
		char *val = device_value(v);
		char *clean = output_clean(val);
		printf("%s: %s\n", key, clean);
		free(clean);
		free(val);
	}
}

/* KEY=VALUE operands -> device.set params; "true"/"false" become booleans. */
static json_t *device_params(int argc, char **argv) {
	json_t *p = json_object();
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL || eq == argv[i]) {
			ctl_usage_error("device set: \"%s\" is not KEY=VALUE (e.g. network=unmetered)",
			                argv[i]);
			json_decref(p);
			return NULL;
		}
		char *key = xstrndup(argv[i], (size_t)(eq - argv[i]));
		const char *val = eq + 1;
		json_t *jv = strcmp(val, "true") == 0    ? json_true()
		             : strcmp(val, "false") == 0 ? json_false()
		                                         : json_string(val);
		json_object_set_new(p, key, jv);
		free(key);
	}
	return p;
}

static int ctl_check_device(int argc, char **argv) {
	if (argc > 0 && (strcmp(argv[0], "set") != 0 || argc < 2)) {
		ctl_usage_error("usage: mcpjobctl device [set KEY=VALUE...]");
		return -1;
	}
	json_t *p = argc > 0 ? device_params(argc - 1, argv + 1) : json_object();
	json_decref(p);
	return p != NULL ? 0 : -1;
}

static int ctl_cmd_device(struct ctl *ctl, int argc, char **argv) {
	json_t *res, *p = NULL;
	const char *method = RPC_M_DEVICE_STATUS;
	if (argc > 0) {
		/* ctl_check_device() accepted the operands already. */
		p = device_params(argc - 1, argv + 1);
		method = RPC_M_DEVICE_SET;
	}
	if (ctl_call(ctl, method, p, &res) < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	else
		device_print(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

static int ctl_cmd_calendar(struct ctl *ctl, int argc, char **argv) {
	struct ctl_calendar_opts o = {
	    .cron = ctl->given & OPT_CRON, .json = ctl->json,
	    .iterations = (ctl->given & OPT_LIMIT) ? ctl->limit : 1,
	    .from = ctl->from, .zone = ctl->timezone,
	};
	return ctl_calendar_show(&o, argc, argv);
}

/* ---- jobs added over the socket ------------------------------------ */

/* The job objects in FILE (or "-": standard input): one job, or {"jobs": [...]}. */
static json_t *read_jobs(const char *file) {
	json_error_t err;
	json_t *doc = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &err) : json_load_file(file, 0, &err);
	if (doc == NULL) {
		ctl_error("%s:%d:%d: %s", strcmp(file, "-") == 0 ? "<stdin>" : file, err.line,
		          err.column, err.text);
		return NULL;
	}
	json_t *jobs = json_object_get(doc, "jobs");
	json_t *list = json_is_array(jobs) ? json_incref(jobs) : json_pack("[O]", doc);
	json_decref(doc);
	return list;
}

static int add_jobs(struct ctl *ctl, const char *file, const char *method, const char *verb) {
	json_t *jobs = read_jobs(file), *job, *res;
	size_t i;
	int rc = CTL_EXIT_OK;
	if (jobs == NULL)
		return CTL_EXIT_FAIL;
	json_array_foreach(jobs, i, job) {
		json_t *p = json_pack("{s:O}", "job", job);
		if (ctl->if_exists)
			json_object_set_new(p, "if_exists", json_string(ctl->if_exists));
		if (ctl_call(ctl, method, p, &res) < 0) {
			rc = CTL_EXIT_FAIL;
			continue;
		}
		if (ctl->json) {
			ctl_print_json(res);
		} else {
			char *line = xasprintf("%s: %s", json_string_value(json_object_get(res, "job")),
			                       json_string_value(json_object_get(res, "result")));
			char *clean = output_clean(line);
			puts(clean);
			free(clean);
			free(line);
		}
		json_decref(res);
	}
	(void)verb;
	json_decref(jobs);
	return rc;
}

static int ctl_cmd_add(struct ctl *ctl, int argc, char **argv) {
	(void)argc;
	return add_jobs(ctl, argv[0], RPC_M_JOB_ADD, "add");
}

static int ctl_cmd_update(struct ctl *ctl, int argc, char **argv) {
	(void)argc;
	return add_jobs(ctl, argv[0], RPC_M_JOB_UPDATE, "update");
}

static int ctl_cmd_remove(struct ctl *ctl, int argc, char **argv) {
	int rc = CTL_EXIT_OK;
	for (int i = 0; i < argc; i++) {
		json_t *res;
		if (ctl_call(ctl, RPC_M_JOB_REMOVE, json_pack("{s:s}", "job", argv[i]), &res) < 0) {
			rc = CTL_EXIT_FAIL;
			continue;
		}
		if (ctl->json)
			ctl_print_json(res);
		else
			printf("%s: removed\n", argv[i]);
		json_decref(res);
	}
	return rc;
}

/* ---- metrics ------------------------------------------------------- */

/* The daemon renders the text, so this is exactly what node_exporter reads. */
static int ctl_cmd_metrics(struct ctl *ctl, int argc, char **argv) {
	(void)argc, (void)argv;
	json_t *res;
	if (ctl_call(ctl, RPC_M_METRICS, NULL, &res) < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	else
		fputs(str_or(res, "text", ""), stdout);
	json_decref(res);
	return CTL_EXIT_OK;
}

/* ---- auth: OAuth logins of remote MCP servers ------------------------ */

extern char **environ;

/* Open @url in the desktop's browser when there is a desktop; true when tried. */
static bool auth_open_browser(const char *url) {
	const char *x = getenv("DISPLAY"), *w = getenv("WAYLAND_DISPLAY");
	if ((x == NULL || *x == '\0') && (w == NULL || *w == '\0'))
		return false;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	char *argv[] = {"xdg-open", (char *)url, NULL};
	pid_t pid;
	int rc = posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc == 0;
}

/* One line of standard input without its newline (caller frees), or NULL at its end. */
static char *auth_read_line(void) {
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

/* auth.complete with what was pasted (NULL: wait for the loopback listener). */
static int auth_complete(struct ctl *ctl, const char *server, const char *pasted, json_t **res,
                         json_t **err) {
	json_t *p = json_pack("{s:s}", "server", server);
	if (pasted != NULL)
		json_object_set_new(p, strstr(pasted, "://") || strstr(pasted, "code=") ? "url" : "code",
		                    json_string(pasted));
	return ctl_call_ex(ctl, RPC_M_AUTH_COMPLETE, p, res, err);
}

static int auth_login(struct ctl *ctl, const char *server) {
	json_t *res = NULL, *done = NULL, *err = NULL;
	ctl_client_set_timeout(ctl->client, -1); /* discovery, then a person */
	if (ctl_call(ctl, RPC_M_AUTH_LOGIN, json_pack("{s:s}", "server", server), &res) < 0)
		return CTL_EXIT_FAIL;
	const char *url = str_or(res, "url", "");
	bool headless = ctl->given & OPT_NO_BROWSER;
	if (ctl->json) {
		ctl_print_json(res);
	} else {
		fprintf(stderr, "Open this address in a browser to log mcpjobd in to %s:\n", server);
		puts(url);
	}
	fflush(stdout);
	if (!headless && auth_open_browser(url))
		fprintf(stderr, "(opened with xdg-open)\n");
	int rc = -1;
	if (!headless) {
		fprintf(stderr, "Waiting for the browser to come back to %s ...\n",
		        str_or(res, "redirect_uri", "the daemon"));
		rc = auth_complete(ctl, server, NULL, &done, NULL);
	}
	while (headless) {
		fprintf(stderr, "Paste the address the browser was sent to after the login (its page "
		                "may not load), or the code:\n");
		char *line = auth_read_line();
		if (line == NULL) {
			ctl_error("no redirect address was pasted: the login on %s is not finished", server);
			break;
		}
		if (*line == '\0') {
			free(line);
			continue;
		}
		rc = auth_complete(ctl, server, line, &done, &err);
		free(line);
		/* A refused paste (-32602) leaves the login going: try again. */
		bool again = rc < 0 && err &&
		             json_integer_value(json_object_get(err, "code")) == RPC_E_INVALID_PARAMS;
		json_decref(err);
		err = NULL;
		if (!again)
			break;
	}
	json_decref(res);
	if (rc < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(done);
	else
		printf("logged in to %s\n", server);
	json_decref(done);
	return CTL_EXIT_OK;
}

static void auth_add_row(struct output_table *t, const json_t *s, int64_t now) {
	char exp[32] = "-", got[32] = "-";
	int64_t e = output_json_time(json_object_get(s, "expires_at"));
	int64_t o = output_json_time(json_object_get(s, "obtained_at"));
	bool ok = json_is_true(json_object_get(s, "authorized"));
	if (e > 0)
		output_short_time(e, now, exp, sizeof exp);
	if (o > 0)
		output_short_time(o, now, got, sizeof got);
	const char *login = str_or(s, "login", "none");
	const char *cells[] = {str_or(s, "server", ""), ok ? "yes" : "no",
	                       str_or(s, "scope", "-"), exp, got,
	                       strcmp(login, "none") == 0 ? "-" : login, str_or(s, "issuer", "-")};
	char *clean[7];
	for (size_t i = 0; i < 7; i++)
		clean[i] = output_clean(cells[i] ? cells[i] : "-");
	output_table_add(t, (const char *const *)clean);
	for (size_t i = 0; i < 7; i++)
		free(clean[i]);
}

static int auth_status(struct ctl *ctl, const char *server) {
	json_t *res, *p = server ? json_pack("{s:s}", "server", server) : json_object();
	if (ctl_call(ctl, RPC_M_AUTH_STATUS, p, &res) < 0)
		return CTL_EXIT_FAIL;
	const json_t *list = json_object_get(res, "servers");
	if (ctl->json) {
		ctl_print_json(res);
	} else if (json_array_size(list) == 0) {
		puts("No http or sse server is declared.");
	} else {
		static const char *const hdr[] = {"SERVER",    "AUTHORIZED", "SCOPE", "EXPIRES",
		                                  "REFRESHED", "LOGIN",      "ISSUER"};
		struct output_table *t = output_table_new(hdr, 7);
		int64_t now = time_now_ms();
		size_t i;
		const json_t *s;
		json_array_foreach(list, i, s) auth_add_row(t, s, now);
		output_table_fit(t, ctl_width(ctl, CTL_HISTORY_WIDTH), 1u << 6 | 1u << 2);
		output_table_print(t, stdout, !ctl->no_legend);
		output_table_free(t);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

static int auth_logout(struct ctl *ctl, const char *server) {
	json_t *res;
	if (ctl_call(ctl, RPC_M_AUTH_LOGOUT, json_pack("{s:s}", "server", server), &res) < 0)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	else if (json_is_true(json_object_get(res, "removed")))
		printf("logged out of %s; its jobs wait for the next login\n", server);
	else
		printf("%s was not logged in\n", server);
	json_decref(res);
	return CTL_EXIT_OK;
}

static int ctl_check_auth(int argc, char **argv) {
	const char *sub = argv[0];
	bool known = strcmp(sub, "login") == 0 || strcmp(sub, "logout") == 0 ||
	             strcmp(sub, "status") == 0;
	if (!known) {
		ctl_usage_error("auth: unknown subcommand \"%s\" (login, status, logout)", sub);
		return -1;
	}
	if (strcmp(sub, "status") != 0 && argc != 2) {
		ctl_usage_error("auth %s needs the SERVER (usage: mcpjobctl auth %s SERVER)", sub, sub);
		return -1;
	}
	return 0;
}

static int ctl_cmd_auth(struct ctl *ctl, int argc, char **argv) {
	const char *server = argc > 1 ? argv[1] : NULL;
	if ((ctl->given & OPT_NO_BROWSER) && strcmp(argv[0], "login") != 0) {
		ctl_usage_error("--no-browser is for auth login");
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[0], "login") == 0)
		return auth_login(ctl, server);
	if (strcmp(argv[0], "logout") == 0)
		return auth_logout(ctl, server);
	return auth_status(ctl, server);
}

/* ---- main ---------------------------------------------------------- */

static const struct ctl_verb ctl_verbs[] = {
    {"list", ctl_cmd_list, 0, -1, OPT_NAMES, "list [--names] [PATTERN...]",
     "list jobs (ids matching shell globs) with\ntheir next and last runs", NULL},
    {"status", ctl_cmd_status, 1, 1, 0, "status JOB", "show one job in detail", NULL},
    {"enable", ctl_cmd_enable, 1, -1, 0, "enable JOB...",
     "enable jobs (persists across restarts)", NULL},
    {"disable", ctl_cmd_disable, 1, -1, 0, "disable JOB...",
     "disable jobs (persists across restarts)", NULL},
    {"run", ctl_cmd_run, 1, 1, OPT_WAIT | OPT_WHEN_ALLOWED, "run JOB [--wait] [--when-allowed]",
     "run a job now; --wait for its outcome,\n--when-allowed to wait for its constraints", NULL},
    {"cancel", ctl_cmd_cancel, 1, 1, 0, "cancel JOB", "cancel a job's current run", NULL},
    {"history", ctl_cmd_history, 1, 1, OPT_LIMIT, "history JOB [-n N]",
     "show a job's last N runs (default 20)", NULL},
    {"logs", ctl_cmd_logs, 1, 1, OPT_LIMIT | OPT_FOLLOW, "logs JOB [-n N] [-f]",
     "the output of a job's runs, newest last;\n-n: the last N lines; -f: follow new runs", NULL},
    {"reload", ctl_cmd_reload, 0, 0, 0, "reload", "reload the configuration", NULL},
    {"watch", ctl_cmd_watch, 0, -1, 0, "watch [JOB...]",
     "print events as they happen (Ctrl-C stops)", NULL},
    {"device", ctl_cmd_device, 0, -1, 0, "device [set KEY=VALUE...]",
     "show the device state jobs wait for;\nset: set the simulated state (sim platform)",
     ctl_check_device},
    {"metrics", ctl_cmd_metrics, 0, 0, 0, "metrics",
     "per-job metrics in the Prometheus text format", NULL},
    {"add", ctl_cmd_add, 1, 1, OPT_IF_EXISTS, "add FILE|- [--if-exists keep|replace|update]",
     "add the job(s) in FILE (a job object as in a\nconfiguration file, or a \"jobs\" array); "
     "they\nrun as you and survive restarts", NULL},
    {"update", ctl_cmd_update, 1, 1, 0, "update FILE|-",
     "give jobs you added a new definition\n(their state is kept)", NULL},
    {"remove", ctl_cmd_remove, 1, -1, 0, "remove JOB...", "remove jobs you added", NULL},
    {"calendar", ctl_cmd_calendar, 1, -1,
     OPT_OFFLINE | OPT_LIMIT | OPT_FROM | OPT_CRON | OPT_TIMEZONE,
     "calendar EXPR... [-n N] [--from TIME] [--cron] [--timezone ZONE]",
     "check a schedule: its normalised form and\nnext N elapse times (no daemon needed)", NULL},
    {"auth", ctl_cmd_auth, 1, 2, OPT_NO_BROWSER,
     "auth login|status|logout [SERVER] [--no-browser]",
     "OAuth for remote MCP servers: login prints\n(and opens) the URL and waits for the\n"
     "redirect, --no-browser reads the pasted\nredirect address; status shows expiry and\n"
     "scope (no tokens); logout forgets them", ctl_check_auth},
};

#define CTL_HELP_COLUMN 34

/* The usage, each verb's line(s) from the table, the options. */
static void ctl_print_usage(FILE *f) {
	fputs(usage_head, f);
	for (size_t i = 0; i < sizeof ctl_verbs / sizeof ctl_verbs[0]; i++) {
		const struct ctl_verb *v = &ctl_verbs[i];
		int col = fprintf(f, "  %s", v->usage);
		for (const char *h = v->help; *h;) {
			size_t n = strcspn(h, "\n");
			if (col >= CTL_HELP_COLUMN) {
				fputc('\n', f);
				col = 0;
			}
			fprintf(f, "%*s%.*s\n", CTL_HELP_COLUMN - col, "", (int)n, h);
			col = 0;
			h += n + (h[n] == '\n');
		}
	}
	fputs(usage_tail, f);
}

/* "list, status, ...": the verbs for an error message; caller frees. */
static char *ctl_verb_list(void) {
	char *out = xstrdup("");
	for (size_t i = 0; i < sizeof ctl_verbs / sizeof ctl_verbs[0]; i++) {
		char *next = xasprintf("%s%s%s", out, i ? ", " : "", ctl_verbs[i].name);
		free(out);
		out = next;
	}
	return out;
}

static const struct ctl_verb *ctl_find_verb(const char *name) {
	for (size_t i = 0; i < sizeof ctl_verbs / sizeof ctl_verbs[0]; i++)
		if (strcmp(ctl_verbs[i].name, name) == 0)
			return &ctl_verbs[i];
	return NULL;
}

/* --socket, else the daemon's own default (common/paths.h). */
static char *ctl_socket_path(const struct ctl *ctl) {
	if (ctl->socket_opt != NULL)
		return xstrdup(ctl->socket_opt);
	return paths_default_socket(ctl->user);
}

static int ctl_parse_limit(struct ctl *ctl, const char *arg) {
	char *end;
	errno = 0;
	long n = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || n < 1 || n > MCPJOB_HISTORY_MAX) {
		ctl_usage_error("-n wants a number from 1 to %d (runs for history, lines for logs), "
		                "not \"%s\"", MCPJOB_HISTORY_MAX, arg);
		return -1;
	}
	ctl->limit = n;
	ctl->given |= OPT_LIMIT;
	return 0;
}

/* Options may come before or after the command. Returns -1 to exit 0
 * (--help, --version), -2 on a usage error, else optind. */
static int ctl_parse_options(struct ctl *ctl, int argc, char **argv) {
	enum { O_SOCKET = 256, O_USER, O_JSON, O_VERSION, O_NAMES, O_WAIT, O_WHEN_ALLOWED, O_FROM,
	       O_CRON, O_TIMEZONE, O_IF_EXISTS, O_NO_COLOR, O_NO_LEGEND, O_NO_BROWSER };
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, O_SOCKET}, {"user", no_argument, NULL, O_USER},
	    {"json", no_argument, NULL, O_JSON},           {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, O_VERSION},     {"names", no_argument, NULL, O_NAMES},
	    {"wait", no_argument, NULL, O_WAIT},           {"when-allowed", no_argument, NULL, O_WHEN_ALLOWED},
	    {"from", required_argument, NULL, O_FROM},     {"cron", no_argument, NULL, O_CRON},
	    {"timezone", required_argument, NULL, O_TIMEZONE},
	    {"if-exists", required_argument, NULL, O_IF_EXISTS},
	    {"no-color", no_argument, NULL, O_NO_COLOR},   {"no-legend", no_argument, NULL, O_NO_LEGEND},
	    {"full", no_argument, NULL, 'l'},              {"follow", no_argument, NULL, 'f'},
	    {"no-browser", no_argument, NULL, O_NO_BROWSER},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":fhln:", longopts, NULL)) != -1) {
		switch (ch) {
		case O_SOCKET: ctl->socket_opt = optarg; break;
		case O_USER: ctl->user = true; break;
		case O_JSON: ctl->json = true; break;
		case O_NAMES: ctl->given |= OPT_NAMES; break;
		case O_WAIT: ctl->given |= OPT_WAIT; break;
		case O_WHEN_ALLOWED: ctl->given |= OPT_WHEN_ALLOWED; break;
		case O_FROM: ctl->from = optarg, ctl->given |= OPT_FROM; break;
		case O_CRON: ctl->given |= OPT_CRON; break;
		case O_TIMEZONE: ctl->timezone = optarg, ctl->given |= OPT_TIMEZONE; break;
		case O_IF_EXISTS: ctl->if_exists = optarg, ctl->given |= OPT_IF_EXISTS; break;
		case O_NO_COLOR: ctl->no_color = true; break;
		case O_NO_LEGEND: ctl->no_legend = true; break;
		case O_NO_BROWSER: ctl->given |= OPT_NO_BROWSER; break;
		case 'l': ctl->full = true; break;
		case 'f': ctl->given |= OPT_FOLLOW; break;
		case 'h': ctl_print_usage(stdout); return -1;
		case O_VERSION:
			printf("mcpjobctl %s (protocol %d)\n", MCPJOB_VERSION, MCPJOB_PROTOCOL_VERSION);
			return -1;
		case 'n':
			if (ctl_parse_limit(ctl, optarg) < 0)
				return -2;
			break;
		case ':':
			if (optopt != 0 && optopt < 256)
				ctl_usage_error("-%c needs a value", optopt);
			else
				ctl_usage_error("%s needs a value", argv[optind - 1]);
			return -2;
		default:
			if (optopt != 0)
				ctl_usage_error("unknown option \"-%c\"", optopt);
			else
				ctl_usage_error("unknown option \"%s\"", argv[optind - 1]);
			return -2;
		}
	}
	return optind;
}

/* Operand count and per-verb options; prints the hint on a mismatch. */
static int ctl_check_verb(const struct ctl *ctl, const struct ctl_verb *v, int nargs,
                          char **args) {
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{OPT_NAMES, "--names"},
	             {OPT_WAIT, "--wait"},
	             {OPT_WHEN_ALLOWED, "--when-allowed"},
	             {OPT_LIMIT, "-n"},
	             {OPT_FROM, "--from"},
	             {OPT_CRON, "--cron"},
	             {OPT_TIMEZONE, "--timezone"},
	             {OPT_IF_EXISTS, "--if-exists"},
	             {OPT_FOLLOW, "-f"},
	             {OPT_NO_BROWSER, "--no-browser"}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if ((ctl->given & names[i].bit) && !(v->opts & names[i].bit)) {
			ctl_usage_error("%s does not take %s (usage: mcpjobctl %s)", v->name, names[i].name,
			                v->usage);
			return -1;
		}
	}
	if (nargs < v->min_args || (v->max_args >= 0 && nargs > v->max_args)) {
		ctl_usage_error("%s %s (usage: mcpjobctl %s)", v->name,
		                nargs < v->min_args ? "needs more arguments" : "takes fewer arguments",
		                v->usage);
		return -1;
	}
	return v->check != NULL ? v->check(nargs, args) : 0;
}

/* Colours only for people: a terminal, no NO_COLOR (no-color.org), no
 * --no-color, no --json, a terminal that is not "dumb". */
static bool ctl_wants_color(const struct ctl *ctl) {
	const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
	if (ctl->no_color || ctl->json || (no != NULL && *no != '\0'))
		return false;
	if (term != NULL && strcmp(term, "dumb") == 0)
		return false;
	return isatty(STDOUT_FILENO) == 1;
}

int main(int argc, char **argv) {
	struct ctl ctl = {0};
	int first = ctl_parse_options(&ctl, argc, argv);
	if (first == -1)
		return CTL_EXIT_OK;
	if (first == -2)
		return CTL_EXIT_USAGE;
	if (first >= argc) {
		ctl_usage_error("no command given");
		return CTL_EXIT_USAGE;
	}
	const struct ctl_verb *v = ctl_find_verb(argv[first]);
	if (v == NULL) {
		char *verbs = ctl_verb_list();
		ctl_usage_error("unknown command \"%s\" (commands: %s)", argv[first], verbs);
		free(verbs);
		return CTL_EXIT_USAGE;
	}
	int nargs = argc - first - 1;
	if (ctl_check_verb(&ctl, v, nargs, argv + first + 1) < 0)
		return CTL_EXIT_USAGE;
	output_set_color(ctl_wants_color(&ctl));
	if (v->opts & OPT_OFFLINE)
		return v->fn(&ctl, nargs, argv + first + 1);
	char *cause = NULL;
	char *path = ctl_socket_path(&ctl);
	if ((ctl.client = ctl_client_connect(path, &cause)) == NULL) {
		ctl_error("%s", cause);
		free(cause);
		free(path);
		return CTL_EXIT_FAIL;
	}
	int rc = v->fn(&ctl, nargs, argv + first + 1);
	ctl_client_free(ctl.client);
	free(path);
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
		ctl_error("cannot write the output: %s", strerror(errno));
		rc = CTL_EXIT_FAIL;
	}
	return rc;
}
