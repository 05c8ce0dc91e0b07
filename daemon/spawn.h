/*
 * spawn.h - start child processes the way a system daemon must, and learn
 * when they exit through the event loop.
 *
 * The child gets its own session and process group, a reset signal mask,
 * no inherited descriptors beyond 0-2, optional rlimits, and - when an
 * identity is given - supplementary groups, gid and uid set before exec.
 * No shell ever sees argv or env. Exec failures in the child are reported
 * back through a close-on-exec pipe, so spawn_start() fails with a sentence
 * ("cannot run /usr/bin/x: No such file or directory") instead of a child
 * that exits 127.
 */
#ifndef MCPJOB_SPAWN_H
#define MCPJOB_SPAWN_H

#include <event2/event.h>
#include <stdbool.h>
#include <sys/types.h>

#include "daemon/job.h"

/* Who a child runs as, resolved in the parent (getpwnam is not fork-safe). */
struct spawn_identity {
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	char *user;
	char *home;
};

/*
 * spawn_identity_resolve() - look up @user (name or number) and optional
 * @group. Returns 0, or -1 with *@cause ("no such user \"bob\"").
 */
int spawn_identity_resolve(const char *user, const char *group, struct spawn_identity *id,
                           char **cause);
/* The identity of the calling process. */
void spawn_identity_self(struct spawn_identity *id);
void spawn_identity_clear(struct spawn_identity *id);

/*
 * A cache of resolved identities, keyed by (user, group), failures included:
 * a configuration resolves each pair once when it is loaded, not per run
 * (getpwnam reads /etc/passwd and /etc/group every time).
 */
struct spawn_identities;
struct spawn_identities *spawn_identities_new(void);
void spawn_identities_free(struct spawn_identities *c);
/*
 * spawn_identities_get() - who @user (NULL: the calling process) with
 * optional @group is, resolved on the first call for the pair and kept.
 * 0 with *@out (owned by @c), or -1 with *@cause (the first call's reason).
 */
int spawn_identities_get(struct spawn_identities *c, const char *user, const char *group,
                         const struct spawn_identity **out, char **cause);

/*
 * spawn_build_env() - the clean environment of a child: PATH, HOME, USER,
 * LOGNAME, LANG (from @id and sane defaults), then @extra ("KEY=VALUE",
 * overriding). Nothing of the daemon's own environment leaks in.
 */
char **spawn_build_env(const struct spawn_identity *id, char *const *extra);

struct spawn_opts {
	char *const *argv;   /* argv[0] without '/' is searched in the env's PATH */
	char *const *env;    /* complete environment (spawn_build_env()) */
	const char *cwd;     /* NULL: the identity's home, else "/" */
	const struct spawn_identity *id; /* NULL: run as ourselves */
	const struct job_limits *limits; /* NULL: none */
	bool stdin_pipe;     /* else /dev/null */
	bool stdout_pipe;    /* else /dev/null */
	bool stderr_pipe;    /* separate pipe */
	bool stderr_to_stdout; /* share the stdout pipe (exec jobs) */
};

struct spawn_child {
	pid_t pid;           /* also the process group id */
	int stdin_fd;        /* -1 unless piped; non-blocking, close-on-exec */
	int stdout_fd;
	int stderr_fd;
};

int spawn_start(const struct spawn_opts *opts, struct spawn_child *child, char **cause);

/* Signal the child's whole process group. */
void spawn_kill_group(pid_t pgid, int sig);

/* --- reaping ------------------------------------------------------------ */
typedef void (*spawn_exit_fn)(pid_t pid, int wstatus, void *arg);

/* One child being waited for; private. */
struct spawn_watch;

/*
 * spawn_watch() - call @fn once, from @base's loop, when our child @pid
 * exits (also when it already has), and reap it. Only @pid is ever waited
 * for (a pidfd event; SIGCHLD + waitpid(@pid) where there are no pidfds):
 * the other children of the process - a host app's own - are left alone.
 * The watch frees itself after @fn.
 */
struct spawn_watch *spawn_watch(struct event_base *base, pid_t pid, spawn_exit_fn fn, void *arg);
/* Stop watching before the exit (NULL is fine); the child is still reaped
 * when it ends. Not after @fn was called. */
void spawn_unwatch(struct spawn_watch *w);

/* "exited with status 3", "killed by signal 9 (Killed)"; buf >= 64. */
char *spawn_describe_status(int wstatus, char *buf, size_t len);

#endif
