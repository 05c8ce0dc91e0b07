/*
 * spawn.c - start a child with a clean slate, and learn of its exit by pid.
 *
 * posix_spawn cannot set uid, groups or rlimits, so on Linux this is what
 * glibc's posix_spawn does underneath, plus those steps: clone(CLONE_VM |
 * CLONE_VFORK) on a small stack of its own, so starting a run costs no copy
 * of the daemon's page tables (fork of a daemon holding 100k jobs copied
 * hundreds of MB of them). The child shares our memory until it execs, so it
 * only makes system calls: everything it needs - identity, resolved path,
 * environment - is prepared before, and the id changes are raw syscalls
 * (glibc's setuid() would make the parent's other threads change id too).
 * Elsewhere it is fork + exec.
 *
 * Exits arrive per child: a pidfd (Linux >= 5.3) readable in the event loop,
 * then waitpid(pid) - never waitpid(-1), which would reap the children of a
 * host app that embeds the engine. Without pidfds, SIGCHLD wakes each watch,
 * which still waits only for its own pid.
 */
#include "daemon/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/text.h"
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

/* --- the identity cache ------------------------------------------------- */

struct identity_entry {
	char *user, *group; /* NULL user: ourselves */
	struct spawn_identity id;
	char *error;        /* why it could not be resolved, or NULL */
};

struct spawn_identities {
	struct identity_entry *v;
	size_t n;
};

struct spawn_identities *spawn_identities_new(void) {
	return xcalloc(1, sizeof(struct spawn_identities));
}

void spawn_identities_free(struct spawn_identities *c) {
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].user);
		free(c->v[i].group);
		free(c->v[i].error);
		spawn_identity_clear(&c->v[i].id);
	}
	free(c->v);
	free(c);
}

int spawn_identities_get(struct spawn_identities *c, const char *user, const char *group,
                         const struct spawn_identity **out, char **cause) {
	struct identity_entry *e = NULL;
	for (size_t i = 0; i < c->n && e == NULL; i++)
		if (text_equal(c->v[i].user, user) && text_equal(c->v[i].group, group))
			e = &c->v[i];
	if (e == NULL) {
		c->v = xreallocarray(c->v, c->n + 1, sizeof *c->v);
		e = &c->v[c->n++];
		*e = (struct identity_entry){.user = xstrdup_or_null(user),
		                             .group = xstrdup_or_null(group)};
		if (user == NULL)
			spawn_identity_self(&e->id);
		else if (spawn_identity_resolve(user, group, &e->id, &e->error) < 0)
			memset(&e->id, 0, sizeof e->id);
	}
	if (e->error != NULL) {
		*cause = xstrdup(e->error);
		return -1;
	}
	*out = &e->id;
	return 0;
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
	int maxfd;       /* for closing descriptors without close_range */
	bool switch_id;  /* set groups, gid and uid */
};

enum { STEP_SETUP = 1, STEP_LIMITS, STEP_GROUPS, STEP_GID, STEP_UID, STEP_CHDIR, STEP_EXEC };

/* In the child: report errno and the step that failed, then _exit. */
static void __attribute__((noreturn)) child_fail(int report, int step) {
	int msg[2] = {step, errno};
	ssize_t w = write(report, msg, sizeof msg);
	(void)w;
	_exit(127);
}

static void set_limit(int res, uint64_t v, int report) {
	if (v == 0)
		return;
	struct rlimit rl = {(rlim_t)v, (rlim_t)v};
	if (setrlimit(res, &rl) < 0)
		child_fail(report, STEP_LIMITS);
}

/* Close [@from, @to] (to = -1: all above @from). */
static void close_range_fds(int from, int to, int maxfd) {
	if (to >= 0 && to < from)
		return;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)from, to < 0 ? ~0U : (unsigned)to, 0) == 0)
		return;
#endif
	for (int fd = from; fd <= (to < 0 ? maxfd : to); fd++)
		close(fd);
}

/*
 * Groups, gid, uid: on Linux as system calls of this process only (see the
 * top); the 32-bit-id calls where the plain ones take 16-bit ids.
 */
#if defined(__linux__) && defined(SYS_setresuid32)
#define CHILD_SETGROUPS(n, g) syscall(SYS_setgroups32, (n), (g))
#define CHILD_SETRESGID(g)    syscall(SYS_setresgid32, (g), (g), (g))
#define CHILD_SETRESUID(u)    syscall(SYS_setresuid32, (u), (u), (u))
#elif defined(__linux__)
#define CHILD_SETGROUPS(n, g) syscall(SYS_setgroups, (n), (g))
#define CHILD_SETRESGID(g)    syscall(SYS_setresgid, (g), (g), (g))
#define CHILD_SETRESUID(u)    syscall(SYS_setresuid, (u), (u), (u))
#else
#define CHILD_SETGROUPS(n, g) setgroups((n), (g))
#define CHILD_SETRESGID(g)    setresgid((g), (g), (g))
#define CHILD_SETRESUID(u)    setresuid((u), (u), (u))
#endif

static void child_switch_id(const struct spawn_identity *id, int report) {
	if (CHILD_SETGROUPS((size_t)id->ngroups, id->groups) < 0)
		child_fail(report, STEP_GROUPS);
	if (CHILD_SETRESGID(id->gid) < 0)
		child_fail(report, STEP_GID);
	if (CHILD_SETRESUID(id->uid) < 0)
		child_fail(report, STEP_UID);
}

static int __attribute__((noreturn)) child_run(void *arg) {
	struct child_plan *p = arg;
	const struct spawn_opts *o = p->o;
	/* The parent blocked every signal across the start: reset the handlers
	 * (libevent's would write into the parent's signal pipe, and the child
	 * shares the parent's memory until it execs) before any signal can be
	 * delivered here, then unblock. */
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
	close_range_fds(3, p->report - 1, p->maxfd);
	close_range_fds(p->report + 1, -1, p->maxfd);
	if (o->limits) {
		set_limit(RLIMIT_AS, o->limits->memory, p->report);
		set_limit(RLIMIT_CPU, o->limits->cpu, p->report);
		set_limit(RLIMIT_NOFILE, o->limits->nofile, p->report);
		set_limit(RLIMIT_NPROC, o->limits->nproc, p->report);
	}
	if (p->switch_id)
		child_switch_id(o->id, p->report);
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

/* The child's stack: it only makes system calls, but ASan frames are big. */
#define CHILD_STACK (256 * 1024)

/*
 * Start child_run(@p) as a new process; its pid, or -1 with errno. Returns
 * once the child has exec'd or failed (CLONE_VFORK), so @p stays valid.
 */
static pid_t start_child(struct child_plan *p) {
#ifdef __linux__
	/* One stack per thread that starts children, kept: this thread waits
	 * (CLONE_VFORK) until its child has exec'd, so no two children of it
	 * ever use it at once, and a run does not pay for mapping and faulting
	 * in a new one. */
	static _Thread_local void *stack;
	if (stack == NULL) {
		void *s = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (s == MAP_FAILED)
			return -1;
		stack = s;
	}
	return clone(child_run, (char *)stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, p);
#else
	pid_t pid = fork();
	if (pid == 0)
		child_run(p);
	return pid;
#endif
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

static int open_pipes(const struct spawn_opts *o, struct child_plan *p, int report[2]) {
	p->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (p->devnull < 0 || (o->stdin_pipe && pipe2(p->in, O_CLOEXEC) < 0) ||
	    ((o->stdout_pipe || o->stderr_to_stdout) && pipe2(p->out, O_CLOEXEC) < 0) ||
	    (o->stderr_pipe && !o->stderr_to_stdout && pipe2(p->err, O_CLOEXEC) < 0) ||
	    pipe2(report, O_CLOEXEC) < 0)
		return -1;
	return 0;
}

/* The parent's ends, non-blocking; the child's ends closed. */
static void keep_parent_ends(struct child_plan *p, struct spawn_child *child) {
	child->stdin_fd = p->in[1];
	child->stdout_fd = p->out[0];
	child->stderr_fd = p->err[0];
	if (p->in[0] >= 0) close(p->in[0]);
	if (p->out[1] >= 0) close(p->out[1]);
	if (p->err[1] >= 0) close(p->err[1]);
	int fds[3] = {child->stdin_fd, child->stdout_fd, child->stderr_fd};
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
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
	if (open_pipes(o, &p, report) < 0) {
		*cause = xasprintf("cannot create pipes for %s: %s", o->argv[0], strerror(errno));
		goto fail;
	}
	p.report = report[1];
	long maxfd = sysconf(_SC_OPEN_MAX);
	p.maxfd = maxfd > 0 && maxfd < 65536 ? (int)maxfd : 65536;
	p.switch_id = o->id && o->id->ngroups >= 0 && (geteuid() == 0 || o->id->uid != geteuid());
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = start_child(&p);
	int start_errno = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		*cause = xasprintf("cannot start a process for %s: %s", o->argv[0],
		                   strerror(start_errno));
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
	keep_parent_ends(&p, child);
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

struct spawn_watch {
	struct event_base *base;
	struct event *ev;
	pid_t pid;
	int pidfd; /* -1: woken by SIGCHLD instead */
	spawn_exit_fn fn;
	void *arg;
};

static int pidfd_for(pid_t pid) {
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Collect @pid if it has ended: true with *@st. A child someone else reaped
 * (a host that ignores SIGCHLD or waits for any child) counts as ended, with
 * a wait status that spawn_describe_status() shows as unknown.
 */
static bool collect(pid_t pid, int *st) {
	pid_t r;
	do
		r = waitpid(pid, st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	if (r < 0)
		*st = 0xffff;
	return true;
}

static void watch_free(struct spawn_watch *w) {
	event_free(w->ev);
	if (w->pidfd >= 0)
		close(w->pidfd);
	free(w);
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
	struct spawn_watch *w = arg;
	int st;
	(void)fd;
	(void)what;
	if (!collect(w->pid, &st))
		return; /* SIGCHLD of another child */
	spawn_exit_fn fn = w->fn;
	void *fnarg = w->arg;
	pid_t pid = w->pid;
	watch_free(w);
	fn(pid, st, fnarg);
}

struct spawn_watch *spawn_watch(struct event_base *base, pid_t pid, spawn_exit_fn fn, void *arg) {
	struct spawn_watch *w = xcalloc(1, sizeof *w);
	w->base = base;
	w->pid = pid;
	w->fn = fn;
	w->arg = arg;
	w->pidfd = pidfd_for(pid);
	if (w->pidfd >= 0)
		w->ev = event_new(base, w->pidfd, EV_READ | EV_PERSIST, on_wake, w);
	else
		w->ev = evsignal_new(base, SIGCHLD, on_wake, w);
	if (w->ev == NULL || event_add(w->ev, NULL) < 0)
		log_fatalx("cannot watch process %d", (int)pid);
	/* Without a pidfd, it may have exited before we watched it. */
	if (w->pidfd < 0)
		event_active(w->ev, EV_SIGNAL, 1);
	return w;
}

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* By the pidfd, not the pid: the caller may have reaped it meanwhile, and
 * the pid may then be a new child of ours. */
static void on_orphan(evutil_socket_t fd, short what, void *arg) {
	siginfo_t si;
	int st;
	(void)what;
	if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 && errno == EINVAL)
		collect((pid_t)(intptr_t)arg, &st); /* a kernel before 5.4 */
	close(fd);
}

/* Without a pidfd: look for its end a few times, ever less often. */
static void on_orphan_poll(evutil_socket_t fd, short what, void *arg) {
	int st;
	(void)fd;
	(void)what;
	collect((pid_t)(intptr_t)arg, &st);
}

static void poll_orphan(struct event_base *base, pid_t pid) {
	static const int after_ms[] = {10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000};
	for (size_t i = 0; i < sizeof after_ms / sizeof after_ms[0]; i++) {
		struct timeval tv = {after_ms[i] / 1000, (after_ms[i] % 1000) * 1000};
		event_base_once(base, -1, EV_TIMEOUT, on_orphan_poll, (void *)(intptr_t)pid, &tv);
	}
}

void spawn_unwatch(struct spawn_watch *w) {
	int st;
	if (w == NULL)
		return;
	if (collect(w->pid, &st)) {
		watch_free(w);
		return;
	}
	if (w->pidfd < 0) {
		/* A stopped child ends soon; one that outlives the last look (a
		 * minute) stays a zombie. Nothing is allocated that could outlive
		 * the base: libevent frees pending once-events with it. (A late
		 * look finds ECHILD; pids are not reused that fast.) */
		poll_orphan(w->base, w->pid);
		watch_free(w);
		return;
	}
	/* Reap it when it ends; libevent frees the event with the base. */
	int fd = w->pidfd;
	w->pidfd = -1;
	if (event_base_once(w->base, fd, EV_READ, on_orphan, (void *)(intptr_t)w->pid, NULL) < 0)
		close(fd);
	watch_free(w);
}
