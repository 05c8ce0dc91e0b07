/*
 * config_check.c - what --check-config can see on this host beyond the
 * file's shape: users, groups, programs, working directories, cleanup
 * paths (see config_check.h).
 */
#include "daemon/config_check.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "daemon/spawn.h"

/* The PATH children get when their env sets none (as daemon/spawn.c). */
#define CHECK_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool id_in_group(const struct spawn_identity *id, gid_t gid) {
	if (gid == id->gid)
		return true;
	if (id->ngroups >= 0) {
		for (int i = 0; i < id->ngroups; i++)
			if (id->groups[i] == gid)
				return true;
		return false;
	}
	/* "keep ours" (ngroups -1): the calling process's own groups */
	gid_t groups[256];
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* Whether @id may execute the file (search the directory) @st describes. */
static bool id_may_exec(const struct spawn_identity *id, const struct stat *st) {
	mode_t m = st->st_mode;
	if (id->uid == 0)
		return S_ISDIR(m) || (m & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
	if (st->st_uid == id->uid)
		return (m & S_IXUSR) != 0;
	if (id_in_group(id, st->st_gid))
		return (m & S_IXGRP) != 0;
	return (m & S_IXOTH) != 0;
}

static char *owner_text(const struct stat *st) {
	struct passwd *pw = getpwuid(st->st_uid);
	struct group *gr = getgrgid(st->st_gid);
	char u[32], g[32];
	snprintf(u, sizeof u, "%lu", (unsigned long)st->st_uid);
	snprintf(g, sizeof g, "%lu", (unsigned long)st->st_gid);
	return xasprintf("%s:%s", pw ? pw->pw_name : u, gr ? gr->gr_name : g);
}

/* The first directory above @path that @id cannot search, or NULL. */
static char *blocked_parent(const char *path, const struct spawn_identity *id) {
	char *copy = xstrdup(path);
	for (char *p = strchr(copy + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		struct stat st;
		if (stat(copy, &st) == 0 && S_ISDIR(st.st_mode) && !id_may_exec(id, &st))
			return copy;
		*p = '/';
	}
	free(copy);
	return NULL;
}

/* Why @id cannot run the program at absolute @path, or NULL when it can. */
static char *file_problem(const char *path, const struct spawn_identity *id) {
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return xasprintf("\"%s\" does not exist (install it or fix the path)", path);
		return xasprintf("cannot look at \"%s\": %s", path, strerror(errno));
	}
	char *dir = blocked_parent(path, id);
	if (dir != NULL) {
		char *msg = xasprintf("user \"%s\" cannot reach \"%s\": no search permission on %s",
		                      id->user, path, dir);
		free(dir);
		return msg;
	}
	if (!S_ISREG(st.st_mode))
		return xasprintf("\"%s\" is not a regular file", path);
	if (!id_may_exec(id, &st)) {
		char *own = owner_text(&st);
		char *msg = xasprintf("\"%s\" is not executable by user \"%s\" (mode %04o, owner %s; "
		                      "chmod it or run the job as another user)", path, id->user,
		                      (unsigned)(st.st_mode & 07777), own);
		free(own);
		return msg;
	}
	return NULL;
}

static const char *env_path(char *const *env) {
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			return env[i] + 5;
	return CHECK_DEFAULT_PATH;
}

/* Like execvp: the first candidate in PATH that @id may run wins. */
static char *path_problem(const char *prog, char *const *env, const struct spawn_identity *id) {
	char *list = xstrdup(env_path(env)), *save = NULL, *first = NULL;
	for (char *d = strtok_r(list, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/')
			continue;
		char *cand = xasprintf("%s/%s", d, prog);
		struct stat st;
		if (stat(cand, &st) == 0) {
			char *why = file_problem(cand, id);
			if (why == NULL) {
				free(cand);
				free(first);
				free(list);
				return NULL;
			}
			if (first == NULL)
				first = why;
			else
				free(why);
		}
		free(cand);
	}
	free(list);
	if (first != NULL)
		return first;
	return xasprintf("\"%s\" is not in PATH (%s); install it or give its absolute path", prog,
	                 env_path(env));
}

static char *program_problem(const char *prog, char *const *env, const char *cwd,
                             const struct spawn_identity *id) {
	if (strchr(prog, '/') == NULL)
		return path_problem(prog, env, id);
	if (prog[0] == '/')
		return file_problem(prog, id);
	if (cwd == NULL)
		return NULL; /* relative to a directory we cannot know here */
	char *full = xasprintf("%s/%s", cwd, prog);
	char *why = file_problem(full, id);
	free(full);
	return why;
}

static char *dir_problem(const char *path, const struct spawn_identity *id) {
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return xasprintf("\"%s\" does not exist (create it or fix the path)", path);
		return xasprintf("cannot look at \"%s\": %s", path, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return xasprintf("\"%s\" is not a directory", path);
	char *dir = blocked_parent(path, id);
	if (dir == NULL && !id_may_exec(id, &st))
		dir = xstrdup(path);
	if (dir == NULL)
		return NULL;
	char *msg = xasprintf("user \"%s\" cannot enter \"%s\": no search permission on %s",
	                      id->user, path, dir);
	free(dir);
	return msg;
}

/* Report @why (consumed; NULL = no problem) at FILE: AT.KEY. */
static void report(struct config_errors *errs, const char *file, const char *at,
                   const char *key, char *why) {
	if (why == NULL)
		return;
	config_errors_add(errs, "%s: %s.%s: %s", file, at, key, why);
	free(why);
}

/*
 * The identity a job or server runs as: its own "user", else default_user,
 * else the daemon's. 0, or -1 after reporting why (a missing default_user is
 * reported once, by the caller).
 */
static int resolve(const struct config *cfg, const char *user, const char *group,
                   const char *file, const char *at, struct config_errors *errs,
                   struct spawn_identity *id) {
	char *cause = NULL;
	if (user == NULL && cfg->default_user == NULL && group == NULL) {
		spawn_identity_self(id);
		return 0;
	}
	const char *who = user ? user : cfg->default_user;
	if (who == NULL) {
		struct passwd *pw = getpwuid(geteuid());
		who = pw ? pw->pw_name : "root";
	}
	if (spawn_identity_resolve(who, NULL, id, &cause) != 0) {
		if (user != NULL)
			config_errors_add(errs, "%s: %s.user: %s (create the user or fix the name)", file,
			                  at, cause);
		free(cause);
		return -1;
	}
	if (group == NULL)
		return 0;
	spawn_identity_clear(id);
	if (spawn_identity_resolve(who, group, id, &cause) != 0) {
		config_errors_add(errs, "%s: %s.group: %s (create the group or fix the name)", file, at,
		                  cause);
		free(cause);
		return -1;
	}
	return 0;
}

static void check_job(const struct config *cfg, const struct job_def *job,
                      const struct config_check_where *w, struct config_errors *errs,
                      struct config_errors *warnings) {
	struct stat st;
	if (job->kind == ACTION_CLEANUP) {
		if (stat(job->cleanup.path, &st) != 0 && errno == ENOENT)
			config_errors_add(warnings, "%s: %s.action.cleanup.path: warning: \"%s\" does not "
			                  "exist yet; the job fails until it is created", w->file, w->label,
			                  job->cleanup.path);
	}
	struct spawn_identity id;
	if (resolve(cfg, job->user, job->group, w->file, w->label, errs, &id) != 0)
		return;
	if (job->kind == ACTION_EXEC) {
		report(errs, w->file, w->label, "action.exec.argv[0]",
		       program_problem(job->exec.argv[0], job->exec.env, job->exec.cwd, &id));
		if (job->exec.cwd != NULL)
			report(errs, w->file, w->label, "action.exec.cwd", dir_problem(job->exec.cwd, &id));
	}
	spawn_identity_clear(&id);
}

static void check_server(const struct config *cfg, const struct mcp_server_def *s,
                         const char *file, struct config_errors *errs) {
	char *at = xasprintf("mcpServers.%s", s->name);
	struct spawn_identity id;
	if (s->type != MCP_SERVER_STDIO) {
		/* A remote server starts nothing here; its CA file must be readable. */
		if (s->ca_file && access(s->ca_file, R_OK) != 0)
			report(errs, file, at, "ca_file",
			       xasprintf("\"%s\" cannot be read: %s (fix the path or its mode)",
			                 s->ca_file, strerror(errno)));
	} else if (resolve(cfg, s->user, NULL, file, at, errs, &id) == 0) {
		report(errs, file, at, "command", program_problem(s->argv[0], s->env, s->cwd, &id));
		if (s->cwd != NULL)
			report(errs, file, at, "cwd", dir_problem(s->cwd, &id));
		spawn_identity_clear(&id);
	}
	free(at);
}

/* A client secret written into a file others may read is no secret. */
static void check_server_secret(const struct mcp_server_def *s, const char *file,
                                struct config_errors *warnings) {
	struct stat st;
	if (warnings == NULL || s->auth == NULL || s->auth->client_secret == NULL ||
	    strstr(s->auth->client_secret, "${") != NULL || stat(file, &st) != 0 ||
	    (st.st_mode & S_IROTH) == 0)
		return;
	config_errors_add(warnings, "%s: mcpServers.%s.auth.client_secret: warning: the secret "
	                  "is written in a file everyone may read (mode %04o): use "
	                  "\"${credential:NAME}\" (LoadCredential=) or \"${env:NAME}\", or "
	                  "chmod o-r the file", file, s->name, (unsigned)(st.st_mode & 07777));
}

void config_check_host(const struct config *cfg, const struct config_check_where *jobs,
                       const char *const *server_files, struct config_errors *errs,
                       struct config_errors *warnings) {
	if (cfg->default_user != NULL) {
		struct spawn_identity id;
		char *cause = NULL;
		if (spawn_identity_resolve(cfg->default_user, NULL, &id, &cause) != 0) {
			config_errors_add(errs, "%s: default_user: %s (create the user or fix the name)",
			                  cfg->path, cause);
			free(cause);
		} else {
			spawn_identity_clear(&id);
		}
	}
	for (size_t i = 0; i < cfg->njobs; i++)
		check_job(cfg, cfg->jobs[i], &jobs[i], errs, warnings);
	for (size_t i = 0; i < cfg->nservers; i++) {
		check_server(cfg, cfg->servers[i], server_files[i], errs);
		check_server_secret(cfg->servers[i], server_files[i], warnings);
	}
}
