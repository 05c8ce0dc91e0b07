/*
 * spawn.c - fork/exec with a clean slate, and SIGCHLD through libevent.
 *
 * posix_spawn cannot set uid, groups or rlimits, so this is fork + exec; the
 * child only calls async-signal-safe functions between the two (everything
 * it needs - identity, resolved path, environment - is prepared before the
 * fork) and never touches the parent's LMDB environment.
 */
#include "daemon/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* --- identities ------------------------------------------------------- */

static int fill_identity(const struct passwd *pw, const char *group,
                         struct spawn_identity *id, char **cause) {
	memset(id, 0, sizeof *id);
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	id->user = xstrdup(pw->pw_name);
	id->home = xstrdup(pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
	if (group != NULL) {
		struct group *gr = getgrnam(group);
		char *end;
		unsigned long n = strtoul(group, &end, 10);
		if (gr != NULL)
			id->gid = gr->gr_gid;
		else if (*group && *end == '\0')
			id->gid = (gid_t)n;
		else {
			*cause = xasprintf("no such group \"%s\"", group);
			spawn_identity_clear(id);
			return -1;
		}
	}
	int ng = 32;
	id->groups = xcalloc((size_t)ng, sizeof(gid_t));
	if (getgrouplist(pw->pw_name, id->gid, id->groups, &ng) < 0) {
		id->groups = xreallocarray(id->groups, (size_t)ng, sizeof(gid_t));
		if (getgrouplist(pw->pw_name, id->gid, id->groups, &ng) < 0)
			ng = 0;
	}
	id->ngroups = ng;
	return 0;
}

int spawn_identity_resolve(const char *user, const char *group, struct spawn_identity *id,
                           char **cause) {
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		char *end;
		unsigned long n = strtoul(user, &end, 10);
		if (*user && *end == '\0')
			pw = getpwuid((uid_t)n);
	}
	if (pw == NULL) {
		*cause = xasprintf("no such user \"%s\"", user);
		return -1;
	}
	return fill_identity(pw, group, id, cause);
}

void spawn_identity_self(struct spawn_identity *id) {
	struct passwd *pw = getpwuid(geteuid());
	memset(id, 0, sizeof *id);
	id->uid = geteuid();
	id->gid = getegid();
	id->user = xstrdup(pw ? pw->pw_name : "unknown");
	const char *home = getenv("HOME");
	id->home = xstrdup(pw && pw->pw_dir ? pw->pw_dir : home ? home : "/");
	id->groups = NULL;
	id->ngroups = -1; /* keep ours */
}

void spawn_identity_clear(struct spawn_identity *id) {
	if (id == NULL)
		return;
	free(id->groups);
	free(id->user);
	free(id->home);
	memset(id, 0, sizeof *id);
}

/* --- environment ------------------------------------------------------- */

static void env_set(char ***env, size_t *n, const char *kv) {
	size_t klen = strcspn(kv, "=");
	for (size_t i = 0; i < *n; i++) {
		if (strncmp((*env)[i], kv, klen) == 0 && (*env)[i][klen] == '=') {
			free((*env)[i]);
			(*env)[i] = xstrdup(kv);
			return;
		}
	}
	*env = xreallocarray(*env, *n + 2, sizeof(char *));
	(*env)[(*n)++] = xstrdup(kv);
	(*env)[*n] = NULL;
}

char **spawn_build_env(const struct spawn_identity *id, char *const *extra) {
	char **env = xcalloc(1, sizeof(char *));
	size_t n = 0;
	char *kv;
	env_set(&env, &n, "PATH=" DEFAULT_PATH);
	env_set(&env, &n, "LANG=C.UTF-8");
	if (id != NULL) {
		kv = xasprintf("HOME=%s", id->home);
		env_set(&env, &n, kv);
		free(kv);
		kv = xasprintf("USER=%s", id->user);
		env_set(&env, &n, kv);
		free(kv);
		kv = xasprintf("LOGNAME=%s", id->user);
		env_set(&env, &n, kv);
		free(kv);
	}
	for (size_t i = 0; extra && extra[i]; i++)
		env_set(&env, &n, extra[i]);
	return env;
}

#ifndef MCPJOB_NO_SPAWN
#define MCPJOB_NO_SPAWN 0
#endif

#if MCPJOB_NO_SPAWN
/*
 * The iOS shape (make MCPJOB_NO_SPAWN=1): an app may not start processes,
 * so nothing below forks or execs. The configuration already refuses exec
 * actions and stdio servers; this is what is left if something asks anyway.
 */
int spawn_start(const struct spawn_opts *o, struct spawn_child *child, char **cause) {
	(void)child;
	*cause = xasprintf("cannot run %s: this build cannot start processes (built with "
	                   "MCPJOB_NO_SPAWN=1)", o->argv && o->argv[0] ? o->argv[0] : "a program");
	return -1;
}
#else
/* The PATH of @env, or the default. */
static const char *env_path(char *const *env) {
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			return env[i] + 5;
	return DEFAULT_PATH;
}

/* argv[0] as an absolute or relative path to execute, or NULL (errno set). */
static char *resolve_program(const char *prog, char *const *env) {
	if (prog[0] == '/')
		return xstrdup(prog);
	if (strchr(prog, '/') != NULL) {
		/* Relative to where we are, not to the child's working directory. */
		char cwd[4096];
		if (getcwd(cwd, sizeof cwd) == NULL)
			return xstrdup(prog);
		return xasprintf("%s/%s", cwd, prog);
	}
	char *path = xstrdup(env_path(env));
	char *save = NULL;
	int err = ENOENT;
	for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *cand = xasprintf("%s/%s", *dir ? dir : ".", prog);
		if (access(cand, X_OK) == 0) {
			struct stat st;
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
				free(path);
				return cand;
			}
		} else if (errno == EACCES) {
			err = EACCES;
		}
		free(cand);
	}
	free(path);
	errno = err;
	return NULL;
}

/* --- starting ---------------------------------------------------------- */

struct child_plan {
	const struct spawn_opts *o;
	const char *path;
	int in[2], out[2], err[2], report;
	int devnull;
};

/* In the child: report errno and the step that failed, then _exit. */
static void __attribute__((noreturn)) child_fail(int report, int step) {
	int msg[2] = {step, errno};
	ssize_t w = write(report, msg, sizeof msg);
	(void)w;
	_exit(127);
}

enum { STEP_SETUP = 1, STEP_LIMITS, STEP_GROUPS, STEP_GID, STEP_UID, STEP_CHDIR, STEP_EXEC };

static void set_limit(int res, uint64_t v, int report) {
	if (v == 0)
		return;
	struct rlimit rl = {(rlim_t)v, (rlim_t)v};
	if (setrlimit(res, &rl) < 0)
		child_fail(report, STEP_LIMITS);
}

static void __attribute__((noreturn)) child_run(struct child_plan *p) {
	const struct spawn_opts *o = p->o;
	/* The parent blocked every signal across fork(): reset the handlers
	 * (libevent's would write into the parent's signal pipe) before any
	 * signal can be delivered here, then unblock. */
	sigset_t none;
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		child_fail(p->report, STEP_SETUP);
	int in = o->stdin_pipe ? p->in[0] : p->devnull;
	int out = o->stdout_pipe || o->stderr_to_stdout ? p->out[1] : p->devnull;
	int err = o->stderr_to_stdout ? p->out[1] : o->stderr_pipe ? p->err[1] : p->devnull;
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		child_fail(p->report, STEP_SETUP);
	/* Everything above 2 except the report pipe (close-on-exec) goes. */
	for (int fd = 3; fd < p->report; fd++)
		close(fd);
	closefrom(p->report + 1);
	if (o->limits) {
		set_limit(RLIMIT_AS, o->limits->memory, p->report);
		set_limit(RLIMIT_CPU, o->limits->cpu, p->report);
		set_limit(RLIMIT_NOFILE, o->limits->nofile, p->report);
		set_limit(RLIMIT_NPROC, o->limits->nproc, p->report);
	}
	if (o->id && o->id->ngroups >= 0 && (geteuid() == 0 || o->id->uid != geteuid())) {
		if (setgroups((size_t)o->id->ngroups, o->id->groups) < 0)
			child_fail(p->report, STEP_GROUPS);
		if (setresgid(o->id->gid, o->id->gid, o->id->gid) < 0)
			child_fail(p->report, STEP_GID);
		if (setresuid(o->id->uid, o->id->uid, o->id->uid) < 0)
			child_fail(p->report, STEP_UID);
	}
	const char *cwd = o->cwd ? o->cwd : o->id && o->id->home ? o->id->home : "/";
	if (chdir(cwd) < 0) {
		if (o->cwd != NULL)
			child_fail(p->report, STEP_CHDIR);
		if (chdir("/") < 0)
			child_fail(p->report, STEP_CHDIR);
	}
	execve(p->path, o->argv, o->env);
	child_fail(p->report, STEP_EXEC);
}

static void close_pair(int fds[2]) {
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static char *step_cause(const struct spawn_opts *o, const char *path, int step, int err) {
	const char *what;
	switch (step) {
	case STEP_LIMITS: what = "cannot set resource limits"; break;
	case STEP_GROUPS: what = "cannot set supplementary groups"; break;
	case STEP_GID: what = "cannot change group"; break;
	case STEP_UID: what = "cannot change user"; break;
	case STEP_CHDIR:
		return xasprintf("cannot change directory to %s: %s", o->cwd ? o->cwd : "/",
		                 strerror(err));
	case STEP_EXEC: return xasprintf("cannot run %s: %s", path, strerror(err));
	default: what = "cannot set up the child process"; break;
	}
	return xasprintf("%s for %s: %s", what, o->argv[0], strerror(err));
}

int spawn_start(const struct spawn_opts *o, struct spawn_child *child, char **cause) {
	struct child_plan p = {.o = o, .in = {-1, -1}, .out = {-1, -1}, .err = {-1, -1}};
	int report[2] = {-1, -1};
	char *path = resolve_program(o->argv[0], o->env);
	if (path == NULL) {
		*cause = xasprintf("cannot run %s: %s (searched PATH=%s)", o->argv[0],
		                   strerror(errno), env_path(o->env));
		return -1;
	}
	p.path = path;
	p.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (p.devnull < 0 || (o->stdin_pipe && pipe2(p.in, O_CLOEXEC) < 0) ||
	    ((o->stdout_pipe || o->stderr_to_stdout) && pipe2(p.out, O_CLOEXEC) < 0) ||
	    (o->stderr_pipe && !o->stderr_to_stdout && pipe2(p.err, O_CLOEXEC) < 0) ||
	    pipe2(report, O_CLOEXEC) < 0) {
		*cause = xasprintf("cannot create pipes for %s: %s", o->argv[0], strerror(errno));
		goto fail;
	}
	p.report = report[1];
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		child_run(&p);
	int fork_errno = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		*cause = xasprintf("cannot fork for %s: %s", o->argv[0], strerror(fork_errno));
		goto fail;
	}
	close(report[1]);
	report[1] = -1;
	int msg[2];
	ssize_t r;
	do
		r = read(report[0], msg, sizeof msg);
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof msg) {
		*cause = step_cause(o, path, msg[0], msg[1]);
		waitpid(pid, NULL, 0);
		goto fail;
	}
	close(report[0]);
	close(p.devnull);
	child->pid = pid;
	child->stdin_fd = p.in[1];
	child->stdout_fd = p.out[0];
	child->stderr_fd = p.err[0];
	if (p.in[0] >= 0) close(p.in[0]);
	if (p.out[1] >= 0) close(p.out[1]);
	if (p.err[1] >= 0) close(p.err[1]);
	int fds[3] = {child->stdin_fd, child->stdout_fd, child->stderr_fd};
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	free(path);
	return 0;
fail:
	close_pair(p.in);
	close_pair(p.out);
	close_pair(p.err);
	close_pair(report);
	if (p.devnull >= 0)
		close(p.devnull);
	free(path);
	return -1;
}

#endif /* MCPJOB_NO_SPAWN */

void spawn_kill_group(pid_t pgid, int sig) {
	if (pgid > 1)
		kill(-pgid, sig);
}

char *spawn_describe_status(int wstatus, char *buf, size_t len) {
	if (WIFEXITED(wstatus))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(wstatus),
		         strsignal(WTERMSIG(wstatus)));
	else
		snprintf(buf, len, "ended with wait status 0x%x", wstatus);
	return buf;
}

/* --- reaping ----------------------------------------------------------- */

struct watch {
	pid_t pid;
	spawn_exit_fn fn;
	void *arg;
};

static struct event *reaper_ev;
static struct watch *watches;
static size_t nwatches, capwatches;

static void reap(evutil_socket_t sig, short what, void *arg) {
	(void)sig;
	(void)what;
	(void)arg;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			break;
		for (size_t i = 0; i < nwatches; i++) {
			if (watches[i].pid != pid)
				continue;
			struct watch w = watches[i];
			watches[i] = watches[--nwatches];
			w.fn(pid, st, w.arg);
			break;
		}
	}
}

void spawn_reaper_init(struct event_base *base) {
	if (reaper_ev != NULL)
		return;
	reaper_ev = evsignal_new(base, SIGCHLD, reap, NULL);
	if (reaper_ev == NULL || evsignal_add(reaper_ev, NULL) < 0)
		fatalx("cannot watch SIGCHLD");
}

void spawn_reaper_shutdown(void) {
	if (reaper_ev)
		event_free(reaper_ev);
	reaper_ev = NULL;
	free(watches);
	watches = NULL;
	nwatches = capwatches = 0;
}

void spawn_watch(pid_t pid, spawn_exit_fn fn, void *arg) {
	if (nwatches == capwatches) {
		capwatches = capwatches ? capwatches * 2 : 16;
		watches = xreallocarray(watches, capwatches, sizeof *watches);
	}
	watches[nwatches++] = (struct watch){pid, fn, arg};
	/* It may have exited before we watched it. */
	if (reaper_ev)
		event_active(reaper_ev, EV_SIGNAL, 1);
}

void spawn_unwatch(pid_t pid) {
	for (size_t i = 0; i < nwatches; i++) {
		if (watches[i].pid == pid) {
			watches[i] = watches[--nwatches];
			return;
		}
	}
}
