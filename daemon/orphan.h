/*
 * orphan.h - process identity, and stopping what a killed mcpjobd left
 * running.
 *
 * A process is identified by its pid plus its start time (field 22 of
 * /proc/PID/stat, clock ticks since boot): a pid the kernel reused for
 * another process has another start time, so it is never signalled.
 *
 * Two ways find a dead daemon's processes at the next start:
 *  - the identity (process group leader pid + start time) that the run's
 *    "running" record holds. The kernel never reuses a pid as long as a
 *    process group of that id exists, so "pgrp == pid and started no earlier
 *    than the leader" also finds the group's members after the leader exited;
 *  - a marker in the environment of every child the daemon spawns
 *    (MCPJOB_STORE_RUN=<store id>/<run id or "mcp">), for processes started
 *    in the instant before their identity reached the store, and for MCP
 *    servers. The store id is random per state directory, so another
 *    daemon's children (another state directory) are never touched.
 * And a child the dead daemon forked that has not exec'd yet (a copy of the
 * daemon: same program and command line, its own session) is stopped too.
 * All is read from /proc; a process that is a zombie counts as gone.
 */
#ifndef MCPJOB_ORPHAN_H
#define MCPJOB_ORPHAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define ORPHAN_ENV "MCPJOB_STORE_RUN"

/* pid + start time; start 0 = unknown. */
struct proc_identity {
	pid_t pid;
	uint64_t start;
};

/* 0 and *@start (ticks since boot), or -1 (no such process, or a zombie). */
int orphan_proc_start_time(pid_t pid, uint64_t *start);

/* The identity of a live @pid, or {pid, 0} when it cannot be read. */
struct proc_identity orphan_proc_identity(pid_t pid);

/*
 * orphan_env() returns @extra with ORPHAN_ENV=<@store_id>/<@tag> appended (a
 * new vector to strv_free()); without a store id (NULL: no store, as in the
 * unit tests), a copy of @extra. The store id is the hex id of store_id():
 * one per state directory, so two engines in one process mark their
 * children apart.
 */
char **orphan_env(char *const *extra, const char *store_id, const char *tag);

/* What a dead daemon left: leaders by identity and/or marker tags. */
struct orphan_target {
	struct proc_identity leader; /* pid 0: none recorded */
	char *tag;                   /* marker tag to look for, NULL: none */
	int found;                   /* out: processes seen alive */
};

/*
 * orphan_stop() - find every live process of @targets (see above) plus, when
 * @all_marked, every process with @store_id's marker whatever its tag;
 * SIGTERM their process groups, wait up to @grace_ms for them to go, then
 * SIGKILL what is left. Returns how many processes were found in all;
 * each target's found says how many were its own.
 */
int orphan_stop(struct orphan_target *targets, size_t n, bool all_marked, const char *store_id,
                int grace_ms);

#endif
