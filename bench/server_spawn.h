/*
 * server_spawn.h - the bench tools' way to start a stdio MCP server: its
 * stdin and stdout on pipes to us, its stderr to /dev/null. A header (each
 * bench/NAME.c is a program of its own).
 */
#ifndef BENCH_SERVER_SPAWN_H
#define BENCH_SERVER_SPAWN_H

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

extern char **environ;

/* Spawn argv[0] with @argv; our ends of its pipes in *@to (its stdin) and
 * *@from (its stdout). 0, or -1 when it cannot be started. */
static inline int server_spawn(char **argv, pid_t *pid, int *to, int *from) {
	int in[2], out[2];
	posix_spawn_file_actions_t fa;
	if (pipe2(in, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (rc != 0) {
		close(in[1]);
		close(out[0]);
		return -1;
	}
	*to = in[1];
	*from = out[0];
	return 0;
}

#endif
