/*
 * test_actions.c - the exec and cleanup actions, run for real: real child
 * processes on a real event loop, real files with real mtimes.
 *
 * Each test (Check forks one process per test) makes its own event_base,
 * starts an action with a hand-made job and dispatches until done.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/action/action.h"
#include "daemon/spawn.h"

#define DAY_MS (24LL * 3600 * 1000)

static struct event_base *base;

struct outcome {
	int calls;
	int64_t done_at_ms;
	struct action_result res;
};

struct stopper {
	const struct action_ops *ops;
	struct action_run *run;
	enum run_outcome why;
	const char *reason;
	int times;
	int64_t stopped_at_ms;
};

static void setup(void) {
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
}

static void teardown(void) {
	event_base_free(base);
	base = NULL;
}

static void on_done(void *arg, struct action_result *res) {
	struct outcome *o = arg;
	o->calls++;
	o->done_at_ms = time_mono_ms();
	o->res = *res;
	/* Let the loop run a little longer so a second done would be seen. */
	struct timeval tv = {0, 100 * 1000};
	event_base_loopexit(base, &tv);
}

static void on_give_up(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

/* Dispatch until done (or @limit_s seconds, a failure). */
static void run_loop(struct outcome *o, int limit_s) {
	struct event *give_up = evtimer_new(base, on_give_up, NULL);
	struct timeval tv = {limit_s, 0};
	evtimer_add(give_up, &tv);
	event_base_dispatch(base);
	event_free(give_up);
	ck_assert_int_eq(o->calls, 1);
}

/* The kill grace the next start() hands its run (0: the default). */
static int grace_ms;

static struct action_run *start(const struct action_ops *ops, const struct job_def *job,
                                const struct spawn_identity *id, struct outcome *o,
                                char **cause) {
	struct action_env env = {.base = base, .job = job, .id = id, .run_id = 1, .attempt = 1,
	                         .now_ms = time_now_ms(), .kill_grace_ms = grace_ms};
	*cause = NULL;
	return ops->start(&env, NULL, on_done, o, cause);
}

/* Start @job, which must start, and run it to the end. */
static void run_job(const struct action_ops *ops, const struct job_def *job, struct outcome *o) {
	char *cause;
	struct action_run *run = start(ops, job, NULL, o, &cause);
	ck_assert_msg(run != NULL, "start failed: %s", cause ? cause : "?");
	ck_assert_int_eq(o->calls, 0); /* never from inside start() */
	run_loop(o, 20);
}

static struct job_def exec_job(char **argv) {
	struct job_def j = {.id = "test-job", .kind = ACTION_EXEC};
	j.exec.argv = argv;
	return j;
}

static void run_exec(char **argv, struct outcome *o) {
	struct job_def job = exec_job(argv);
	run_job(&action_exec_ops, &job, o);
}

/* --- exec -------------------------------------------------------------- */

START_TEST(test_exec_success_message_is_last_nonempty_line) {
	char *argv[] = {"/bin/sh", "-c", "echo first; echo; echo '  all good  '; echo; echo", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, "all good");
	ck_assert_str_eq(o.res.output, "first\n\n  all good  \n\n\n");
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_stderr_is_kept_with_stdout) {
	char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_str_eq(o.res.output, "out\nerr\n");
	ck_assert_str_eq(o.res.message, "err");
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_exit_75_asks_for_retry) {
	char *argv[] = {"/bin/sh", "-c", "echo 'server busy' >&2; exit 75", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_RETRY);
	ck_assert_str_eq(o.res.message, "server busy");
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_silent_failure_names_the_status) {
	char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_FAILURE);
	ck_assert_str_eq(o.res.message, "exited with status 3");
	ck_assert_str_eq(o.res.output, "");
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_silent_success_names_the_status) {
	char *argv[] = {"true", NULL}; /* found through the child's PATH */
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, "exited with status 0");
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_killed_by_signal_is_failure) {
	char *argv[] = {"/bin/sh", "-c", "echo about to die; kill -9 $$", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_FAILURE);
	ck_assert_str_eq(o.res.message, "killed by signal 9 (Killed)");
	ck_assert_str_eq(o.res.output, "about to die\n");
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_large_output_keeps_the_tail) {
	char *argv[] = {"seq", "1", "200000", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, "200000");

	/* What seq printed, built here independently. */
	size_t cap = 2 * 1024 * 1024, len = 0;
	char *all = xmalloc(cap);
	for (int i = 1; i <= 200000; i++)
		len += (size_t)snprintf(all + len, cap - len, "%d\n", i);
	const char *tail = all + len - ACTION_OUTPUT_MAX;
	char *note = xasprintf("[output truncated: first %zu bytes dropped]\n",
	                       len - ACTION_OUTPUT_MAX);
	ck_assert_uint_eq(strlen(o.res.output), strlen(note) + ACTION_OUTPUT_MAX);
	ck_assert(strncmp(o.res.output, note, strlen(note)) == 0);
	ck_assert(memcmp(o.res.output + strlen(note), tail, ACTION_OUTPUT_MAX) == 0);
	free(note);
	free(all);
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_missing_program_fails_to_start_with_cause) {
	char *argv[] = {"/nonexistent", NULL};
	struct job_def job = exec_job(argv);
	struct outcome o = {0};
	char *cause;
	ck_assert_ptr_null(start(&action_exec_ops, &job, NULL, &o, &cause));
	ck_assert_str_eq(cause, "cannot run /nonexistent: No such file or directory");
	free(cause);

	char *argv2[] = {"no-such-program-mcpjob", NULL};
	job = exec_job(argv2);
	ck_assert_ptr_null(start(&action_exec_ops, &job, NULL, &o, &cause));
	ck_assert_msg(strstr(cause, "cannot run no-such-program-mcpjob: No such file or "
	                            "directory (searched PATH=") == cause, "%s", cause);
	free(cause);
	ck_assert_int_eq(o.calls, 0);
}
END_TEST

static void on_stop_timer(evutil_socket_t fd, short what, void *arg) {
	struct stopper *s = arg;
	(void)fd;
	(void)what;
	s->stopped_at_ms = time_mono_ms();
	for (int i = 0; i < s->times; i++)
		s->ops->stop(s->run, s->why, s->reason);
}

/* Start @argv and stop it @after_ms later, @times times. */
static void run_and_stop(char **argv, int after_ms, int times, enum run_outcome why,
                         const char *reason, struct outcome *o, struct stopper *s) {
	struct job_def job = exec_job(argv);
	char *cause;
	*s = (struct stopper){.ops = &action_exec_ops, .why = why, .reason = reason,
	                      .times = times};
	s->run = start(&action_exec_ops, &job, NULL, o, &cause);
	ck_assert_msg(s->run != NULL, "%s", cause ? cause : "?");
	struct event *ev = evtimer_new(base, on_stop_timer, s);
	struct timeval tv = {after_ms / 1000, (after_ms % 1000) * 1000};
	evtimer_add(ev, &tv);
	run_loop(o, 20);
	event_free(ev);
}

/* True once @pid no longer runs (gone, or a zombie nobody has reaped yet). */
static bool process_gone(pid_t pid) {
	for (int i = 0; i < 200; i++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			fclose(f);
			buf[n] = '\0';
			char *rp = strrchr(buf, ')');
			if (rp != NULL && rp[1] == ' ' && rp[2] == 'Z')
				return true;
		}
		usleep(10 * 1000);
	}
	return false;
}

START_TEST(test_exec_stop_kills_the_whole_process_group) {
	char *argv[] = {"/bin/sh", "-c", "sleep 100 & echo $!; sleep 100", NULL};
	struct outcome o = {0};
	struct stopper s;
	run_and_stop(argv, 300, 2, OUTCOME_TIMEOUT, "timed out after 300ms", &o, &s);
	ck_assert_int_eq(o.res.outcome, OUTCOME_TIMEOUT);
	ck_assert_str_eq(o.res.message, "timed out after 300ms");
	/* SIGTERM was enough: no need to wait for the SIGKILL grace. */
	ck_assert_int_lt(o.done_at_ms - s.stopped_at_ms, 2000);
	pid_t grandchild = (pid_t)atoi(o.res.output); /* output is kept */
	ck_assert_int_gt(grandchild, 1);
	ck_assert(process_gone(grandchild));
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_ignoring_sigterm_gets_sigkill_after_grace) {
	char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done",
	                NULL};
	struct outcome o = {0};
	struct stopper s;
	grace_ms = 400;
	run_and_stop(argv, 300, 1, OUTCOME_CANCELLED, "cancelled by root", &o, &s);
	grace_ms = 0;
	ck_assert_int_eq(o.res.outcome, OUTCOME_CANCELLED);
	ck_assert_str_eq(o.res.message, "cancelled by root");
	ck_assert_int_ge(o.done_at_ms - s.stopped_at_ms, 400);
	ck_assert_int_lt(o.done_at_ms - s.stopped_at_ms, 3000);
	ck_assert(strncmp(o.res.output, "ready\n", 6) == 0);
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_endless_output_does_not_starve_the_loop) {
	char *argv[] = {"yes", NULL};
	struct outcome o = {0};
	struct stopper s;
	int64_t t0 = time_mono_ms();
	run_and_stop(argv, 300, 1, OUTCOME_TIMEOUT, "timed out", &o, &s);
	ck_assert_int_lt(s.stopped_at_ms - t0, 1500); /* the timer still fired on time */
	ck_assert_int_eq(o.res.outcome, OUTCOME_TIMEOUT);
	ck_assert(strncmp(o.res.output, "[output truncated: first ", 25) == 0);
	ck_assert_ptr_nonnull(strstr(o.res.output + strlen(o.res.output) - 8, "y\ny"));
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_grandchild_holding_the_pipe_does_not_hang_the_run) {
	char *argv[] = {"/bin/sh", "-c", "sleep 100 & echo $!; echo bye", NULL};
	struct outcome o = {0};
	int64_t t0 = time_mono_ms();
	run_exec(argv, &o);
	ck_assert_int_lt(o.done_at_ms - t0, 2000);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, "bye");
	/* A finished job leaves nothing running. */
	ck_assert(process_gone((pid_t)atoi(o.res.output)));
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_env_is_clean_and_has_the_jobs_vars) {
	char *argv[] = {"/usr/bin/env", NULL};
	char *env[] = {"JOBVAR=hello world", "LANG=C", NULL};
	struct job_def job = exec_job(argv);
	struct outcome o = {0};
	job.exec.env = env;
	setenv("MCPJOB_SECRET", "1", 1);
	run_job(&action_exec_ops, &job, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_ptr_nonnull(strstr(o.res.output, "JOBVAR=hello world\n"));
	ck_assert_ptr_nonnull(strstr(o.res.output, "LANG=C\n"));
	ck_assert_ptr_null(strstr(o.res.output, "LANG=C.UTF-8"));
	ck_assert_ptr_nonnull(strstr(o.res.output, "PATH="));
	ck_assert_ptr_nonnull(strstr(o.res.output, "\nHOME=")); /* ourselves, when no user */
	ck_assert_ptr_null(strstr(o.res.output, "MCPJOB_SECRET"));
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_runs_as_the_jobs_user) {
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP test_exec_runs_as_the_jobs_user: needs root\n");
		return;
	}
	struct spawn_identity id;
	char *cause = NULL;
	ck_assert_msg(spawn_identity_resolve("nobody", NULL, &id, &cause) == 0, "%s", cause);
	char *argv[] = {"/bin/sh", "-c", "echo \"$USER\"; id -u", NULL};
	struct job_def job = exec_job(argv);
	struct outcome o = {0};
	ck_assert_ptr_nonnull(start(&action_exec_ops, &job, &id, &o, &cause));
	run_loop(&o, 20);
	char *want_uid = xasprintf("%u", (unsigned)id.uid);
	char *want_out = xasprintf("nobody\n%u\n", (unsigned)id.uid);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, want_uid);
	ck_assert_str_eq(o.res.output, want_out);
	free(want_uid);
	free(want_out);
	spawn_identity_clear(&id);
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_cwd_is_honoured) {
	char tmpl[] = "/tmp/mcpjob-cwd-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	char *real = realpath(tmpl, NULL);
	char *argv[] = {"/bin/pwd", "-P", NULL};
	struct job_def job = exec_job(argv);
	struct outcome o = {0};
	job.exec.cwd = tmpl;
	run_job(&action_exec_ops, &job, &o);
	ck_assert_str_eq(o.res.message, real);
	action_result_clear(&o.res);

	char *cause;
	char missing[PATH_MAX];
	snprintf(missing, sizeof missing, "%s/missing", tmpl);
	job.exec.cwd = missing;
	ck_assert_ptr_null(start(&action_exec_ops, &job, NULL, &o, &cause));
	ck_assert_msg(strstr(cause, "cannot change directory to ") == cause, "%s", cause);
	ck_assert_ptr_nonnull(strstr(cause, "No such file or directory"));
	free(cause);
	rmdir(tmpl);
	free(real);
}
END_TEST

/* The host process (an app embedding the engine) has children of its own:
 * the engine waits for its children by pid and leaves the host's alone. */
START_TEST(test_exec_reaps_only_its_own_children) {
	pid_t host = fork();
	ck_assert_int_ge(host, 0);
	if (host == 0)
		_exit(7);
	siginfo_t si;
	/* Until the host's child is a zombie (WNOWAIT leaves it unreaped). */
	ck_assert_int_eq(waitid(P_PID, (id_t)host, &si, WEXITED | WNOWAIT), 0);
	char *argv[] = {"/bin/true", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	action_result_clear(&o.res);
	int st = 0;
	ck_assert_int_eq(waitpid(host, &st, WNOHANG), host);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7);
}
END_TEST

/* What the child gets without a fork of the daemon: its own session and
 * process group, descriptors 0-2 only, the job's rlimits. */
START_TEST(test_exec_child_has_own_session_no_inherited_fds_and_limits) {
	int leak = open("/dev/null", O_RDONLY); /* not close-on-exec */
	ck_assert_int_ge(leak, 3);
	char *argv[] = {"/bin/sh", "-c",
	                "read -r pid comm state ppid pgid sid rest < /proc/self/stat;"
	                " echo \"$$ $pgid $sid\"; ls /proc/$$/fd; ulimit -n",
	                NULL};
	struct job_def job = exec_job(argv);
	struct job_limits limits = {.nofile = 37};
	job.limits = &limits;
	struct outcome o = {0};
	run_job(&action_exec_ops, &job, &o);
	close(leak);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	int pid = 0, pgid = 0, sid = 0;
	ck_assert_int_eq(sscanf(o.res.output, "%d %d %d", &pid, &pgid, &sid), 3);
	ck_assert_int_gt(pid, 1);
	ck_assert_int_eq(pgid, pid);
	ck_assert_int_eq(sid, pid);
	/* ls's own pipe would be the shell's fd 3 while it forks: no pipe. */
	ck_assert_msg(strstr(o.res.output, "\n0\n1\n2\n37\n") != NULL, "%s", o.res.output);
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_exec_bad_utf8_output_is_made_valid) {
	char *argv[] = {"printf", "ok\\377\\000x\\n", NULL};
	struct outcome o = {0};
	run_exec(argv, &o);
	ck_assert_str_eq(o.res.output, "ok??x\n");
	ck_assert_str_eq(o.res.message, "ok??x");
	action_result_clear(&o.res);
}
END_TEST

/* --- shared helpers ---------------------------------------------------- */

START_TEST(test_last_line_skips_blank_lines_and_trims) {
	const char *text = "one\r\n  two \r\n\n \t\n";
	char *l = action_last_line(text, strlen(text));
	ck_assert_str_eq(l, "two");
	free(l);
	l = action_last_line("only", 4);
	ck_assert_str_eq(l, "only");
	free(l);
	ck_assert_ptr_null(action_last_line("\n \n\t\n", 5));
	ck_assert_ptr_null(action_last_line("", 0));
	ck_assert_ptr_null(action_last_line(NULL, 0));
}
END_TEST

START_TEST(test_last_line_is_cut_on_a_character_boundary) {
	/* "é" is two bytes: 150 of them are 300 bytes, over the cap. */
	char text[400] = "x\n";
	for (int i = 0; i < 150; i++)
		strcat(text, "\xc3\xa9");
	char *l = action_last_line(text, strlen(text));
	ck_assert_uint_le(strlen(l), ACTION_MESSAGE_MAX);
	ck_assert_uint_eq(strlen(l) % 2, 0);
	ck_assert(strncmp(l, "\xc3\xa9\xc3\xa9", 4) == 0);
	free(l);
}
END_TEST

START_TEST(test_ops_for_each_kind) {
	ck_assert_ptr_eq(action_ops_for(ACTION_EXEC), &action_exec_ops);
	ck_assert_ptr_eq(action_ops_for(ACTION_CLEANUP), &action_cleanup_ops);
	ck_assert_ptr_eq(action_ops_for(ACTION_MCP), &action_mcp_ops);
	ck_assert_str_eq(action_exec_ops.name, "exec");
	ck_assert_str_eq(action_cleanup_ops.name, "cleanup");
}
END_TEST

/* --- cleanup ----------------------------------------------------------- */

static char root[PATH_MAX], outside[PATH_MAX];

static void make_file(const char *dir, const char *name, size_t size, int64_t age_ms) {
	char path[PATH_MAX * 3];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	char buf[256];
	memset(buf, 'x', sizeof buf);
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof buf ? size - done : sizeof buf;
		ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	close(fd);
	int64_t when = time_now_ms() - age_ms;
	struct timespec ts[2] = {{when / 1000, (when % 1000) * 1000000},
	                         {when / 1000, (when % 1000) * 1000000}};
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static bool exists(const char *dir, const char *name) {
	char path[PATH_MAX * 3];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static void make_dir(const char *dir, const char *name) {
	char path[PATH_MAX * 3];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	ck_assert_int_eq(mkdir(path, 0755), 0);
}

/* An old symlink named @name in @dir pointing to @target. */
static void make_old_symlink(const char *dir, const char *name, const char *target) {
	char path[PATH_MAX * 3];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	ck_assert_int_eq(symlink(target, path), 0);
	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void cleanup_setup(void) {
	setup();
	snprintf(root, sizeof root, "/tmp/mcpjob-clean-XXXXXX");
	snprintf(outside, sizeof outside, "/tmp/mcpjob-outside-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	ck_assert_ptr_nonnull(mkdtemp(outside));
}

static void cleanup_teardown(void) {
	char mnt[PATH_MAX + 8];
	snprintf(mnt, sizeof mnt, "%s/mnt", root);
	umount2(mnt, MNT_DETACH); /* when a test failed before its own umount */
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(outside, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	teardown();
}

static struct job_def cleanup_job(const char *path, int64_t max_age_ms) {
	struct job_def j = {.id = "clean-job", .kind = ACTION_CLEANUP};
	j.cleanup.path = (char *)path;
	j.cleanup.max_age_ms = max_age_ms;
	return j;
}

START_TEST(test_cleanup_deletes_only_old_regular_files) {
	make_file(root, "old.txt", 100, 10 * DAY_MS);
	make_file(root, "new.txt", 70, 1 * DAY_MS);
	make_dir(root, "sub");
	make_dir(root, "sub/deeper");
	make_file(root, "sub/deeper/old.bin", 50, 30 * DAY_MS);
	make_file(root, "sub/fresh", 10, 0);
	make_file(outside, "precious", 1000, 365 * DAY_MS);
	make_old_symlink(root, "link-to-dir", outside);
	char target[PATH_MAX * 2];
	snprintf(target, sizeof target, "%s/precious", outside);
	make_old_symlink(root, "link-to-file", target);

	struct job_def job = cleanup_job(root, 7 * DAY_MS);
	struct outcome o = {0};
	run_job(&action_cleanup_ops, &job, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, "deleted 2 files (150 bytes)");
	ck_assert(!exists(root, "old.txt"));
	ck_assert(!exists(root, "sub/deeper/old.bin"));
	ck_assert(exists(root, "new.txt"));
	ck_assert(exists(root, "sub/fresh"));
	ck_assert(exists(root, "sub/deeper")); /* directories stay */
	ck_assert(exists(root, "link-to-dir"));
	ck_assert(exists(root, "link-to-file"));
	ck_assert(exists(outside, "precious"));
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_cleanup_of_nothing_old_deletes_nothing) {
	make_file(root, "a", 1, 0);
	struct job_def job = cleanup_job(root, 7 * DAY_MS);
	struct outcome o = {0};
	run_job(&action_cleanup_ops, &job, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, "deleted 0 files (0 bytes)");
	ck_assert(exists(root, "a"));
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_cleanup_missing_path_fails_clearly) {
	char missing[PATH_MAX * 2];
	snprintf(missing, sizeof missing, "%s/not-there", root);
	struct job_def job = cleanup_job(missing, DAY_MS);
	struct outcome o = {0};
	run_job(&action_cleanup_ops, &job, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_FAILURE);
	char *want = xasprintf("cleanup path %s does not exist", missing);
	ck_assert_str_eq(o.res.message, want);
	free(want);
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_cleanup_path_that_is_a_file_fails_clearly) {
	make_file(root, "plain", 1, 10 * DAY_MS);
	char path[PATH_MAX * 3];
	snprintf(path, sizeof path, "%s/plain", root);
	struct job_def job = cleanup_job(path, DAY_MS);
	struct outcome o = {0};
	run_job(&action_cleanup_ops, &job, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_FAILURE);
	char *want = xasprintf("cleanup path %s is not a directory", path);
	ck_assert_str_eq(o.res.message, want);
	free(want);
	ck_assert(exists(root, "plain"));
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_cleanup_stays_on_one_filesystem) {
	char mnt[PATH_MAX + 8];
	make_dir(root, "mnt");
	snprintf(mnt, sizeof mnt, "%s/mnt", root);
	if (mount("mcpjob-test", mnt, "tmpfs", 0, "size=1m") < 0) {
		fprintf(stderr, "SKIP test_cleanup_stays_on_one_filesystem: cannot mount a tmpfs "
		                "(%s); run as root with CAP_SYS_ADMIN to cover it\n",
		        strerror(errno));
		return;
	}
	make_file(mnt, "other-fs-old", 10, 30 * DAY_MS);
	make_file(root, "same-fs-old", 20, 30 * DAY_MS);
	struct job_def job = cleanup_job(root, DAY_MS);
	struct outcome o = {0};
	run_job(&action_cleanup_ops, &job, &o);
	ck_assert_int_eq(o.res.outcome, OUTCOME_SUCCESS);
	ck_assert_str_eq(o.res.message, "deleted 1 file (20 bytes)");
	ck_assert(exists(mnt, "other-fs-old"));
	ck_assert(!exists(root, "same-fs-old"));
	ck_assert_int_eq(umount(mnt), 0);
	action_result_clear(&o.res);
}
END_TEST

/*
 * Files the job's user may not delete are counted as errors and fail the
 * run. As root the run is made as "nobody" (which proves the child takes the
 * job's identity); otherwise the directory is made read-only.
 */
START_TEST(test_cleanup_runs_as_the_jobs_user_and_reports_errors) {
	struct spawn_identity id;
	const struct spawn_identity *idp = NULL;
	make_dir(root, "locked");
	make_file(root, "locked/old1", 10, 10 * DAY_MS);
	make_file(root, "locked/old2", 10, 10 * DAY_MS);
	chmod(root, 0755);
	if (geteuid() == 0) {
		char *cause = NULL;
		ck_assert_msg(spawn_identity_resolve("nobody", NULL, &id, &cause) == 0, "%s", cause);
		idp = &id;
	} else {
		char locked[PATH_MAX * 2];
		snprintf(locked, sizeof locked, "%s/locked", root);
		chmod(locked, 0555);
	}
	struct job_def job = cleanup_job(root, DAY_MS);
	struct outcome o = {0};
	char *cause;
	ck_assert_ptr_nonnull(start(&action_cleanup_ops, &job, idp, &o, &cause));
	run_loop(&o, 20);
	ck_assert_int_eq(o.res.outcome, OUTCOME_FAILURE);
	ck_assert_msg(strstr(o.res.message, "deleted 0 files (0 bytes), 2 errors (first: cannot "
	                                    "delete locked/old") == o.res.message,
	              "%s", o.res.message);
	ck_assert_ptr_nonnull(strstr(o.res.output, "Permission denied"));
	ck_assert(exists(root, "locked/old1"));
	ck_assert(exists(root, "locked/old2"));
	if (idp != NULL)
		spawn_identity_clear(&id);
	else {
		char locked[PATH_MAX * 2];
		snprintf(locked, sizeof locked, "%s/locked", root);
		chmod(locked, 0755);
	}
	action_result_clear(&o.res);
}
END_TEST

START_TEST(test_cleanup_stop_reports_the_given_outcome) {
	make_file(root, "a", 1, 0);
	struct job_def job = cleanup_job(root, DAY_MS);
	struct outcome o = {0};
	char *cause;
	struct action_run *run = start(&action_cleanup_ops, &job, NULL, &o, &cause);
	ck_assert_ptr_nonnull(run);
	action_cleanup_ops.stop(run, OUTCOME_CANCELLED, "cancelled by root");
	action_cleanup_ops.stop(run, OUTCOME_TIMEOUT, "ignored: second stop");
	ck_assert_int_eq(o.calls, 0);
	run_loop(&o, 20);
	ck_assert_int_eq(o.res.outcome, OUTCOME_CANCELLED);
	ck_assert_str_eq(o.res.message, "cancelled by root");
	action_result_clear(&o.res);
}
END_TEST

static Suite *actions_suite(void) {
	Suite *s = suite_create("actions");
	TCase *tc = tcase_create("exec");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_exec_success_message_is_last_nonempty_line);
	tcase_add_test(tc, test_exec_stderr_is_kept_with_stdout);
	tcase_add_test(tc, test_exec_exit_75_asks_for_retry);
	tcase_add_test(tc, test_exec_silent_failure_names_the_status);
	tcase_add_test(tc, test_exec_silent_success_names_the_status);
	tcase_add_test(tc, test_exec_killed_by_signal_is_failure);
	tcase_add_test(tc, test_exec_large_output_keeps_the_tail);
	tcase_add_test(tc, test_exec_missing_program_fails_to_start_with_cause);
	tcase_add_test(tc, test_exec_stop_kills_the_whole_process_group);
	tcase_add_test(tc, test_exec_ignoring_sigterm_gets_sigkill_after_grace);
	tcase_add_test(tc, test_exec_endless_output_does_not_starve_the_loop);
	tcase_add_test(tc, test_exec_grandchild_holding_the_pipe_does_not_hang_the_run);
	tcase_add_test(tc, test_exec_env_is_clean_and_has_the_jobs_vars);
	tcase_add_test(tc, test_exec_runs_as_the_jobs_user);
	tcase_add_test(tc, test_exec_cwd_is_honoured);
	tcase_add_test(tc, test_exec_bad_utf8_output_is_made_valid);
	tcase_add_test(tc, test_exec_reaps_only_its_own_children);
	tcase_add_test(tc, test_exec_child_has_own_session_no_inherited_fds_and_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_test(tc, test_last_line_skips_blank_lines_and_trims);
	tcase_add_test(tc, test_last_line_is_cut_on_a_character_boundary);
	tcase_add_test(tc, test_ops_for_each_kind);
	suite_add_tcase(s, tc);

	tc = tcase_create("cleanup");
	tcase_add_checked_fixture(tc, cleanup_setup, cleanup_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_cleanup_deletes_only_old_regular_files);
	tcase_add_test(tc, test_cleanup_of_nothing_old_deletes_nothing);
	tcase_add_test(tc, test_cleanup_missing_path_fails_clearly);
	tcase_add_test(tc, test_cleanup_path_that_is_a_file_fails_clearly);
	tcase_add_test(tc, test_cleanup_stays_on_one_filesystem);
	tcase_add_test(tc, test_cleanup_runs_as_the_jobs_user_and_reports_errors);
	tcase_add_test(tc, test_cleanup_stop_reports_the_given_outcome);
	suite_add_tcase(s, tc);
	return s;
}

int main(void) {
	SRunner *sr = srunner_create(actions_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
