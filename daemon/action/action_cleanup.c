/*
 * action_cleanup.c - the cleanup action: delete regular files under a path
 * that are older than max_age (by mtime).
 *
 * A large tree takes time and a slow disk can block, so the walk runs in a
 * forked child, never on the event loop. The child switches to the job's
 * identity (a cleanup job deletes only what its user may delete), walks, and
 * writes a few lines to a pipe: the first errors, then one summary line
 * ("deleted 3 files (12288 bytes)"). Its exit status says whether everything
 * went well. It touches neither LMDB nor libevent and ends with _exit().
 *
 * The walk is descriptor-relative (openat/fstatat/unlinkat) and never follows
 * a symlink: a symlink is neither entered nor deleted, and a directory swapped
 * for a symlink between the stat and the open is refused by O_NOFOLLOW. The
 * configured path itself is opened one component at a time, also without
 * following symlinks, and refused when a directory on the way could be
 * changed by someone other than root and the job's user (systemd-tmpfiles'
 * "unsafe path transition"): whoever can write /srv/u could otherwise swap
 * /srv/u/cache for a symlink to /etc between the check and the walk. The
 * walk stays on the filesystem of that path (as find -xdev): a mount below a
 * cache directory is somebody else's data.
 */
#include "daemon/action/action.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/text.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "daemon/spawn.h"

#ifndef MCPJOB_NO_SPAWN
#define MCPJOB_NO_SPAWN 0
#endif
#if MCPJOB_NO_SPAWN
/*
 * The iOS shape (make MCPJOB_NO_SPAWN=1): an app may not fork, so the walk
 * runs on a thread of its own instead of in a child, as the app's user, and
 * writes the same lines to the same pipe. A stop sets a flag the walk checks
 * at every entry; the thread closes the pipe as its last act.
 */
#include <pthread.h>
#include <stdatomic.h>
#endif

#define CLEANUP_MAX_DEPTH   128  /* bounds the descriptors a deep tree can take */
#define CLEANUP_MAX_REPORT  10   /* error lines written before the summary */
#define CLEANUP_OUTPUT_MAX  8192 /* what the parent keeps of the child's lines */
#define CLEANUP_PATH_MAX    1024 /* paths in messages are cut here */

/* --- the path: safe to walk? --------------------------------------------- */

/* Who may write the directory @st besides root and @uid: 0 when nobody. */
static bool dir_writable_by_others(const struct stat *st, uid_t uid) {
	if (st->st_uid != 0 && st->st_uid != uid)
		return true;
	if ((st->st_mode & S_IWGRP) && st->st_gid != 0)
		return true;
	return (st->st_mode & S_IWOTH) != 0;
}

static void owner_name(uid_t uid, char *buf, size_t n) {
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, n, "%s", pw->pw_name);
	else
		snprintf(buf, n, "uid %u", (unsigned)uid);
}

/* Why the child @name of directory @dir (@dst) is not safe to pass through,
 * written to @why; false when it is safe. A sticky directory (/tmp) that
 * others may write is safe for a child owned by root or @uid. */
static bool unsafe_transition(const char *dir, const struct stat *dst, const char *name,
                              const struct stat *cst, uid_t uid, char *why, size_t n) {
	char who[64];
	if (!dir_writable_by_others(dst, uid))
		return false;
	if ((dst->st_mode & S_ISVTX) && dst->st_uid == 0 && (cst->st_uid == 0 || cst->st_uid == uid))
		return false;
	if (dst->st_uid != 0 && dst->st_uid != uid) {
		owner_name(dst->st_uid, who, sizeof who);
		snprintf(why, n, "%s belongs to %s", dir, who);
	} else if ((dst->st_mode & S_IWGRP) && dst->st_gid != 0) {
		struct group *gr = getgrgid(dst->st_gid);
		snprintf(why, n, "%s is writable by group %s", dir, gr ? gr->gr_name : "?");
	} else {
		snprintf(why, n, "%s is writable by everyone", dir);
	}
	size_t len = strlen(why);
	snprintf(why + len, n - len, ", who could replace %s with a symlink (unsafe path "
	         "transition); make it owned by and writable only by root or the job's user",
	         name);
	return true;
}

/*
 * Open @path (absolute) as a directory for reading, one component at a
 * time, following no symlink and refusing a directory on the way that
 * someone other than root and @uid may change. Returns the fd, or -1 with
 * a sentence in @why. ENOENT in *@err when a component does not exist.
 */
static int cleanup_open_path(const char *path, uid_t uid, char *why, size_t n, int *err) {
	char done[CLEANUP_PATH_MAX] = "";
	char *copy = xstrdup(path), *save = NULL, *name;
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat dst, cst;
	*err = 0;
	if (fd < 0 || fstat(fd, &dst) < 0) {
		*err = errno;
		snprintf(why, n, "cannot open /: %s", strerror(errno));
		goto fail;
	}
	for (name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		char dir[CLEANUP_PATH_MAX];
		size_t len = strlen(done);
		snprintf(dir, sizeof dir, "%s", *done ? done : "/");
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			snprintf(why, n, "it has a \"%s\" component; name the directory plainly", name);
			goto fail;
		}
		if (fstatat(fd, name, &cst, AT_SYMLINK_NOFOLLOW) < 0) {
			*err = errno;
			snprintf(why, n, "cannot examine %s/%s: %s", done, name, strerror(errno));
			goto fail;
		}
		snprintf(done + len, sizeof done - len, "/%s", name);
		if (S_ISLNK(cst.st_mode)) {
			char real[CLEANUP_PATH_MAX];
			if (realpath(path, real) == NULL)
				snprintf(real, sizeof real, "?");
			snprintf(why, n, "%s is a symlink; cleanup follows no symlink on its path "
			         "(name the real directory, e.g. %s)", done, real);
			goto fail;
		}
		if (!S_ISDIR(cst.st_mode)) {
			*err = ENOTDIR;
			snprintf(why, n, "%s is not a directory", done);
			goto fail;
		}
		if (unsafe_transition(dir, &dst, name, &cst, uid, why, n))
			goto fail;
		int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat now;
		if (next < 0 || fstat(next, &now) < 0 || now.st_ino != cst.st_ino ||
		    now.st_dev != cst.st_dev) {
			snprintf(why, n, "%s changed while it was being checked", done);
			if (next >= 0)
				close(next);
			goto fail;
		}
		close(fd);
		fd = next;
		dst = now;
	}
	free(copy);
	int rd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rd < 0) {
		*err = errno;
		snprintf(why, n, "cannot open it: %s", strerror(errno));
	}
	close(fd);
	return rd;
fail:
	free(copy);
	if (fd >= 0)
		close(fd);
	return -1;
}

int action_cleanup_check_path(const char *path, const char *user, char **cause) {
	char why[CLEANUP_PATH_MAX + 512];
	uid_t uid = geteuid();
	int err;
	if (user != NULL) {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL)
			return 0; /* the config check names an unknown user */
		uid = pw->pw_uid;
	}
	int fd = cleanup_open_path(path, uid, why, sizeof why, &err);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (err == ENOENT || err == EACCES)
		return 0; /* may be created later; checked again when it runs */
	*cause = xasprintf("cleanup path %s is refused: %s", path, why);
	return -1;
}

/* --- the child: walk and report ------------------------------------------ */

struct walk {
	int out;          /* pipe to the parent */
	dev_t dev;        /* the filesystem we stay on */
	struct timespec cutoff;
	unsigned long long files, bytes, errors;
	char first_error[256];
	char path[CLEANUP_PATH_MAX]; /* relative path of the current directory */
#if MCPJOB_NO_SPAWN
	atomic_bool *stop; /* set by cleanup_stop(): end the walk */
#endif
};

static void out_line(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_line(struct walk *w, const char *fmt, ...) {
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t r = write(w->out, line + off, (size_t)(n - off));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		off += (int)r;
	}
}

/* Count and report one problem, described by @msg. */
static void walk_problem(struct walk *w, const char *msg) {
	if (w->errors++ == 0) {
		size_t n = strlen(msg);
		if (n >= sizeof w->first_error)
			n = sizeof w->first_error - 1;
		memcpy(w->first_error, msg, n);
		w->first_error[n] = '\0';
	}
	if (w->errors <= CLEANUP_MAX_REPORT)
		out_line(w, "%s", msg);
}

static void walk_error(struct walk *w, const char *what, const char *name, int err) {
	char msg[CLEANUP_PATH_MAX + 512];
	snprintf(msg, sizeof msg, "cannot %s %s%s%.255s: %s", what, w->path, *w->path ? "/" : "",
	         name, strerror(err));
	walk_problem(w, msg);
}

static void walk_note(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void walk_note(struct walk *w, const char *fmt, ...) {
	char msg[CLEANUP_PATH_MAX + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	walk_problem(w, msg);
}

static bool is_older(const struct stat *st, const struct timespec *cutoff) {
	return st->st_mtim.tv_sec < cutoff->tv_sec ||
	       (st->st_mtim.tv_sec == cutoff->tv_sec && st->st_mtim.tv_nsec < cutoff->tv_nsec);
}

static void walk_dir(struct walk *w, int dfd, int depth);

/* Enter @name, a directory of @dfd, if it is still the directory @st says. */
static void walk_enter(struct walk *w, int dfd, const char *name, const struct stat *st,
                       int depth) {
	if (st->st_dev != w->dev)
		return; /* another filesystem */
	if (depth >= CLEANUP_MAX_DEPTH) {
		walk_note(w, "the tree is deeper than %d levels, the cleanup's limit: not descending "
		          "into %s%s%.255s", CLEANUP_MAX_DEPTH, w->path, *w->path ? "/" : "", name);
		return;
	}
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat now;
	if (fd < 0) {
		if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
			walk_error(w, "open", name, errno);
		return; /* gone, or swapped for a symlink or a file: not ours to follow */
	}
	if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
		close(fd);
		return;
	}
	size_t len = strlen(w->path);
	snprintf(w->path + len, sizeof w->path - len, "%s%s", len ? "/" : "", name);
	walk_dir(w, fd, depth + 1);
	w->path[len] = '\0';
}

static void walk_entry(struct walk *w, int dfd, const char *name, int depth) {
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			walk_error(w, "examine", name, errno);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		walk_enter(w, dfd, name, &st, depth);
	} else if (S_ISREG(st.st_mode) && is_older(&st, &w->cutoff)) {
		/* unlinkat never follows: at worst it removes the entry itself. */
		if (unlinkat(dfd, name, 0) == 0) {
			w->files++;
			w->bytes += (unsigned long long)st.st_size;
		} else if (errno != ENOENT) {
			walk_error(w, "delete", name, errno);
		}
	}
}

/* Walk the directory open on @dfd; takes ownership of @dfd. */
static void walk_dir(struct walk *w, int dfd, int depth) {
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		walk_error(w, "read directory", ".", errno);
		close(dfd);
		return;
	}
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				walk_error(w, "read directory", ".", errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
#if MCPJOB_NO_SPAWN
		if (atomic_load(w->stop))
			break;
#endif
		walk_entry(w, dirfd(d), de->d_name, depth);
	}
	closedir(d);
}

static int walk_root(struct walk *w, const char *path) {
	char why[CLEANUP_PATH_MAX + 512];
	int err;
	int fd = cleanup_open_path(path, geteuid(), why, sizeof why, &err);
	struct stat st;
	if (fd < 0) {
		if (err == ENOENT)
			out_line(w, "cleanup path %s does not exist", path);
		else if (err == ENOTDIR)
			out_line(w, "cleanup path %s is not a directory", path);
		else
			out_line(w, "cleanup path %s is refused: %s", path, why);
		return 1;
	}
	if (fstat(fd, &st) < 0) {
		out_line(w, "cannot examine cleanup path %s: %s", path, strerror(errno));
		close(fd);
		return 1;
	}
	w->dev = st.st_dev;
	walk_dir(w, fd, 0);
	char errs[320] = "";
	if (w->errors)
		snprintf(errs, sizeof errs, ", %llu error%s (first: %s)", w->errors,
		         w->errors == 1 ? "" : "s", w->first_error);
	out_line(w, "deleted %llu file%s (%llu byte%s)%s", w->files, w->files == 1 ? "" : "s",
	         w->bytes, w->bytes == 1 ? "" : "s", errs);
	return w->errors ? 1 : 0;
}

/* The cutoff: files last modified before now - @age_ms are deleted. */
static void walk_set_cutoff(struct walk *w, int64_t age_ms) {
	clock_gettime(CLOCK_REALTIME, &w->cutoff);
	w->cutoff.tv_sec -= (time_t)(age_ms / 1000);
	w->cutoff.tv_nsec -= (long)(age_ms % 1000) * 1000000L;
	if (w->cutoff.tv_nsec < 0) {
		w->cutoff.tv_nsec += 1000000000L;
		w->cutoff.tv_sec--;
	}
}

#if !MCPJOB_NO_SPAWN
static bool switch_identity(const struct spawn_identity *id, struct walk *w) {
	if (id == NULL || id->ngroups < 0 || (geteuid() != 0 && id->uid == geteuid()))
		return true;
	if (setgroups((size_t)id->ngroups, id->groups) < 0 ||
	    setresgid(id->gid, id->gid, id->gid) < 0 || setresuid(id->uid, id->uid, id->uid) < 0) {
		out_line(w, "cannot run the cleanup as user %s: %s", id->user ? id->user : "?",
		         strerror(errno));
		return false;
	}
	return true;
}

static void __attribute__((noreturn)) cleanup_child(const struct action_env *env, int out) {
	sigset_t none;
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Keep only the pipe: the daemon's LMDB, sockets and event fds stay out. */
	for (int fd = 3; fd < out; fd++)
		close(fd);
	closefrom(out + 1);

	struct walk walk = {.out = out};
	struct walk *w = &walk;
	if (!switch_identity(env->id, w))
		_exit(1);
	walk_set_cutoff(w, env->job->cleanup.max_age_ms);
	_exit(walk_root(w, env->job->cleanup.path));
}
#endif

/* --- the parent: collect the lines, reap, report ---------------------- */

struct action_run {
	action_done_fn done;
	void *arg;
	pid_t pid;
	int fd; /* -1 after EOF */
	struct event *read_ev;
	char out[CLEANUP_OUTPUT_MAX];
	size_t len;
	bool stopping;
	enum run_outcome why;
	char *reason;
#if MCPJOB_NO_SPAWN
	pthread_t thread;
	atomic_bool stop;
	int wfd;       /* the thread's end of the pipe */
	int thread_rc; /* walk_root()'s result, read after the join */
	char *path;
	int64_t max_age_ms;
#endif
};

/* Read what is there; true at EOF. */
static bool cleanup_read(struct action_run *r) {
	char buf[4096];
	for (;;) {
		ssize_t n = read(r->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0)
			return true;
		size_t keep = sizeof r->out - r->len;
		if (keep > (size_t)n)
			keep = (size_t)n;
		memcpy(r->out + r->len, buf, keep);
		r->len += keep;
	}
}

static void cleanup_close(struct action_run *r) {
	event_free(r->read_ev);
	r->read_ev = NULL;
	close(r->fd);
	r->fd = -1;
}

static void cleanup_finish(struct action_run *r, int wstatus);

static void on_readable(evutil_socket_t fd, short what, void *arg) {
	struct action_run *r = arg;
	(void)fd;
	(void)what;
	if (!cleanup_read(r))
		return;
	cleanup_close(r);
#if MCPJOB_NO_SPAWN
	/* EOF: the thread closed its end as its last act; the join is immediate. */
	pthread_join(r->thread, NULL);
	free(r->path);
	cleanup_finish(r, W_EXITCODE(r->thread_rc, 0));
#endif
}

static void cleanup_finish(struct action_run *r, int wstatus) {
	struct action_result res = {0};
	char buf[128];
	res.output = text_utf8_valid(r->out, r->len);
	if (r->stopping) {
		res.outcome = r->why;
		res.message = xstrdup_or_null(r->reason);
	} else if (WIFEXITED(wstatus)) {
		res.outcome = WEXITSTATUS(wstatus) == 0 ? OUTCOME_SUCCESS : OUTCOME_FAILURE;
		res.message = action_last_line(r->out, r->len);
		if (res.message == NULL)
			res.message = xasprintf("cleanup %s", spawn_describe_status(wstatus, buf,
			                                                            sizeof buf));
	} else {
		res.outcome = OUTCOME_FAILURE;
		res.message = xasprintf("cleanup %s", spawn_describe_status(wstatus, buf, sizeof buf));
	}
	action_done_fn done = r->done;
	void *arg = r->arg;
	free(r->reason);
	free(r);
	done(arg, &res);
}

#if !MCPJOB_NO_SPAWN
static void on_child_exit(pid_t pid, int wstatus, void *arg) {
	struct action_run *r = arg;
	(void)pid;
	/* The child wrote everything before _exit: it is all in the pipe now. */
	if (r->fd >= 0) {
		cleanup_read(r);
		cleanup_close(r);
	}
	cleanup_finish(r, wstatus);
}
#else
static void *cleanup_thread(void *arg) {
	struct action_run *r = arg;
	struct walk walk = {.out = r->wfd, .stop = &r->stop};
	walk_set_cutoff(&walk, r->max_age_ms);
	r->thread_rc = walk_root(&walk, r->path);
	if (atomic_load(&r->stop))
		out_line(&walk, "stopped");
	close(r->wfd);
	return NULL;
}

/* Start the walk on a thread with every signal blocked (they are the loop's). */
static int cleanup_spawn_thread(struct action_run *r, char **cause) {
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&r->thread, NULL, cleanup_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0)
		*cause = xasprintf("cannot start a thread for cleanup of %s: %s", r->path,
		                   strerror(err));
	return err ? -1 : 0;
}
#endif

static struct action_run *cleanup_start(const struct action_env *env,
                                        action_progress_fn progress, action_done_fn done,
                                        void *arg, char **cause) {
	int p[2];
	sigset_t all, old;
	(void)progress;
	if (env->job->cleanup.path == NULL || *env->job->cleanup.path == '\0') {
		*cause = xasprintf("job %s has no cleanup path", env->job->id);
		return NULL;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		*cause = xasprintf("cannot create a pipe for cleanup of %s: %s",
		                   env->job->cleanup.path, strerror(errno));
		return NULL;
	}
#if MCPJOB_NO_SPAWN
	(void)all;
	(void)old;
	struct action_run *r = xcalloc(1, sizeof *r);
	r->done = done;
	r->arg = arg;
	r->fd = p[0];
	r->wfd = p[1];
	r->path = xstrdup(env->job->cleanup.path);
	r->max_age_ms = env->job->cleanup.max_age_ms;
	atomic_init(&r->stop, false);
	if (cleanup_spawn_thread(r, cause) < 0) {
		close(p[0]);
		close(p[1]);
		free(r->path);
		free(r);
		return NULL;
	}
	fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
	r->read_ev = event_new(env->base, r->fd, EV_READ | EV_PERSIST, on_readable, r);
	if (r->read_ev == NULL || event_add(r->read_ev, NULL) < 0)
		log_fatalx("cannot watch the cleanup pipe");
	return r;
#else
	/* No handler of ours may run in the child before it resets them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		cleanup_child(env, p[1]);
	}
	int err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		*cause = xasprintf("cannot fork for cleanup of %s: %s", env->job->cleanup.path,
		                   strerror(err));
		return NULL;
	}
	struct action_run *r = xcalloc(1, sizeof *r);
	r->done = done;
	r->arg = arg;
	r->pid = pid;
	r->fd = p[0];
	fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
	r->read_ev = event_new(env->base, r->fd, EV_READ | EV_PERSIST, on_readable, r);
	if (r->read_ev == NULL || event_add(r->read_ev, NULL) < 0)
		log_fatalx("cannot watch the cleanup pipe");
	spawn_watch(env->base, pid, on_child_exit, r);
	return r;
#endif
}

static void cleanup_stop(struct action_run *r, enum run_outcome why, const char *reason) {
	if (!action_stop_once(&r->stopping, &r->why, &r->reason, why, reason))
		return;
#if MCPJOB_NO_SPAWN
	atomic_store(&r->stop, true);
#else
	kill(r->pid, SIGKILL);
#endif
}

const struct action_ops action_cleanup_ops = {
	.name = "cleanup",
	.start = cleanup_start,
	.stop = cleanup_stop,
};
