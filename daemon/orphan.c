/*
 * orphan.c - process identity from /proc, and stopping a dead daemon's
 * processes at the next start (see orphan.h).
 *
 * Runs on the loop thread only, and only at start-up (orphan_stop() blocks
 * for at most the grace): the daemon serves nothing before its jobs' old
 * processes are gone, which is the point.
 */
#include "daemon/orphan.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strv.h"
#include "common/xmalloc.h"

#define ENVIRON_MAX (256 * 1024) /* read no more of a process's environment */
#define POLL_MS     20


struct proc_info {
	pid_t pid, pgrp, sid, ppid;
	uint64_t start;
	bool zombie;
};

/* Fields of /proc/PID/stat after the command (which may hold ')' and spaces). */
static int read_stat(pid_t pid, struct proc_info *pi) {
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -1;
	p += 2;
	/* p: field 3 (state); starttime is field 22. */
	char state = *p;
	long long pgrp = 0, sid = 0, ppid = 0;
	unsigned long long start = 0;
	int field = 3;
	char *save = NULL;
	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 4)
			ppid = strtoll(tok, NULL, 10);
		else if (field == 5)
			pgrp = strtoll(tok, NULL, 10);
		else if (field == 6)
			sid = strtoll(tok, NULL, 10);
		else if (field == 22) {
			start = strtoull(tok, NULL, 10);
			break;
		}
	}
	if (field != 22)
		return -1;
	pi->pid = pid;
	pi->pgrp = (pid_t)pgrp;
	pi->sid = (pid_t)sid;
	pi->ppid = (pid_t)ppid;
	pi->start = start;
	pi->zombie = state == 'Z' || state == 'X';
	return 0;
}

int orphan_proc_start_time(pid_t pid, uint64_t *start) {
	struct proc_info pi;
	if (pid <= 0 || read_stat(pid, &pi) != 0 || pi.zombie)
		return -1;
	*start = pi.start;
	return 0;
}

struct proc_identity orphan_proc_identity(pid_t pid) {
	struct proc_identity id = {pid, 0};
	uint64_t s;
	if (orphan_proc_start_time(pid, &s) == 0)
		id.start = s;
	return id;
}

char **orphan_env(char *const *extra, const char *store_id, const char *tag) {
	size_t n = strv_len(extra);
	char **v = xcalloc(n + 2, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = xstrdup(extra[i]);
	if (store_id != NULL)
		v[n] = xasprintf(ORPHAN_ENV "=%s/%s", store_id, tag);
	return v;
}

/* The value of ORPHAN_ENV in @pid's environment, or NULL (caller frees). */
static char *read_marker(pid_t pid) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/environ", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = xmalloc(ENVIRON_MAX + 1);
	size_t len = 0;
	ssize_t n;
	while (len < ENVIRON_MAX && (n = read(fd, buf + len, ENVIRON_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	char *found = NULL;
	const size_t klen = sizeof ORPHAN_ENV; /* with '=' in place of the NUL */
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		if (strncmp(buf + i, ORPHAN_ENV "=", klen) == 0) {
			found = xstrdup(buf + i + klen);
			break;
		}
	free(buf);
	return found;
}

/* Is process @pi (with @marker) one of @t's? */
static bool target_has(const struct orphan_target *t, const struct proc_info *pi,
                       const char *marker, const char *store_id) {
	if (t->leader.pid > 0 && t->leader.start > 0) {
		if (pi->pid == t->leader.pid && pi->start == t->leader.start)
			return true;
		/* A member of the leader's group started after it: the group id
		 * cannot have been reused while the group existed. */
		if (pi->pgrp == t->leader.pid && pi->start >= t->leader.start)
			return true;
	}
	if (t->tag != NULL && marker != NULL && store_id != NULL) {
		size_t sl = strlen(store_id);
		return strncmp(marker, store_id, sl) == 0 && marker[sl] == '/' &&
		       strcmp(marker + sl + 1, t->tag) == 0;
	}
	return false;
}

static bool marker_is_ours(const char *marker, const char *store_id) {
	size_t sl = store_id ? strlen(store_id) : 0;
	return marker != NULL && sl > 0 && strncmp(marker, store_id, sl) == 0 && marker[sl] == '/';
}

/* /proc/PID/cmdline (NUL-separated), *len set; NULL when unreadable. */
static char *read_cmdline(const char *path, size_t *len) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	ssize_t n;
	if (fd < 0)
		return NULL;
	buf = xmalloc(8192);
	n = read(fd, buf, 8192);
	close(fd);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/*
 * A child the dead daemon forked that has not exec'd yet: still a copy of
 * us (same program, same command line - so the same state directory, which
 * no live daemon but us can hold), already its own session (the spawn's
 * first step), and not our parent.
 */
static bool pre_exec_copy(const struct proc_info *pi, const char *self_cmd, size_t self_len) {
	char path[64], exe[4096], self_exe[4096];
	size_t len;
	char *cmd;
	ssize_t a, b;
	bool same;

	if (self_cmd == NULL || pi->sid != pi->pid || pi->pgrp != pi->pid || pi->pid == getppid())
		return false;
	snprintf(path, sizeof path, "/proc/%ld/exe", (long)pi->pid);
	a = readlink(path, exe, sizeof exe - 1);
	b = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (a <= 0 || b <= 0 || a != b || memcmp(exe, self_exe, (size_t)a) != 0)
		return false;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pi->pid);
	if ((cmd = read_cmdline(path, &len)) == NULL)
		return false;
	same = len == self_len && memcmp(cmd, self_cmd, len) == 0;
	free(cmd);
	return same;
}

struct victim {
	struct proc_info pi;
	bool group; /* its group leader is a victim too: signalled with the group */
};

static bool alive(const struct victim *v) {
	struct proc_info now;
	return read_stat(v->pi.pid, &now) == 0 && !now.zombie && now.start == v->pi.start;
}

/*
 * One signal per process: a group through its leader's entry while any of
 * its victims lives (the group id cannot be reused until all are gone),
 * everything else alone.
 */
static void hit_all(struct victim *vs, size_t nv, int sig) {
	for (size_t i = 0; i < nv; i++) {
		struct victim *v = &vs[i];
		if (v->group && v->pi.pid == v->pi.pgrp) {
			bool any = false;
			for (size_t k = 0; k < nv && !any; k++)
				any = vs[k].group && vs[k].pi.pgrp == v->pi.pgrp && alive(&vs[k]);
			if (any)
				kill(-v->pi.pgrp, sig);
		} else if (!v->group && alive(v)) {
			kill(v->pi.pid, sig);
		}
	}
}

static void sleep_ms(int ms) {
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int orphan_stop(struct orphan_target *targets, size_t n, bool all_marked, const char *store_id,
                int grace_ms) {
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	struct victim *vs = NULL;
	size_t nv = 0, cap = 0;
	pid_t self = getpid();
	bool any_tags = all_marked;
	for (size_t i = 0; i < n; i++) {
		targets[i].found = 0;
		any_tags |= targets[i].tag != NULL;
	}
	size_t self_len = 0;
	char *self_cmd = store_id ? read_cmdline("/proc/self/cmdline", &self_len) : NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		struct proc_info pi;
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		if (pid == self || read_stat(pid, &pi) != 0 || pi.zombie)
			continue;
		char *marker = any_tags && store_id ? read_marker(pid) : NULL;
		bool mine = all_marked && (marker_is_ours(marker, store_id) ||
		                           pre_exec_copy(&pi, self_cmd, self_len));
		for (size_t i = 0; i < n; i++)
			if (target_has(&targets[i], &pi, marker, store_id)) {
				targets[i].found++;
				mine = true;
			}
		free(marker);
		if (!mine)
			continue;
		if (nv == cap) {
			cap = cap ? cap * 2 : 16;
			vs = xreallocarray(vs, cap, sizeof *vs);
		}
		vs[nv++] = (struct victim){.pi = pi};
	}
	closedir(d);
	free(self_cmd);
	/* Signal a group only when its leader is ours too. */
	for (size_t i = 0; i < nv; i++)
		for (size_t k = 0; k < nv; k++)
			if (vs[k].pi.pid == vs[i].pi.pgrp)
				vs[i].group = true;
	hit_all(vs, nv, SIGTERM);
	for (int waited = 0; nv > 0 && waited < grace_ms; waited += POLL_MS) {
		bool any = false;
		for (size_t i = 0; i < nv && !any; i++)
			any = alive(&vs[i]);
		if (!any)
			break;
		sleep_ms(POLL_MS);
	}
	size_t left = 0;
	for (size_t i = 0; i < nv; i++)
		left += alive(&vs[i]);
	if (left > 0)
		log_warning("%zu process%s left by a dead mcpjobd did not stop within %d ms of "
		            "SIGTERM: sending SIGKILL", left, left == 1 ? "" : "es", grace_ms);
	hit_all(vs, nv, SIGKILL);
	int total = (int)nv;
	free(vs);
	return total;
}
