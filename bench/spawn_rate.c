/*
 * spawn_rate.c - how many /bin/true processes per second one way of starting
 * them manages, one at a time, in a process holding HEAP_MB of touched heap
 * (a daemon with many jobs is big, and fork() copies its page tables).
 *
 *   spawn_rate RUNS HEAP_MB posix_spawn   posix_spawn + waitpid: the baseline
 *   spawn_rate RUNS HEAP_MB fork          fork + execve + waitpid: how
 *                                         daemon/spawn.c started runs before
 *   spawn_rate RUNS HEAP_MB spawn         daemon/spawn.c as exec runs use it:
 *                                         spawn_build_env, spawn_start (clone
 *                                         CLONE_VM|CLONE_VFORK, report pipe),
 *                                         the exit through spawn_watch on a
 *                                         libevent loop
 * Prints "runs N seconds S runs/s R".
 */
#include <event2/event.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strv.h"
#include "common/xmalloc.h"
#include "daemon/spawn.h"

extern char **environ;

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *argv_true[] = {"/bin/true", NULL};

static void run_posix_spawn(void) {
	pid_t pid;
	int st;
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv_true, environ) != 0)
		log_fatalx("posix_spawn failed");
	waitpid(pid, &st, 0);
}

static void run_fork(void) {
	int st;
	pid_t pid = fork();
	if (pid == 0) {
		execve("/bin/true", argv_true, environ);
		_exit(127);
	}
	if (pid < 0)
		log_fatal("fork");
	waitpid(pid, &st, 0);
}

static void on_exit_cb(pid_t pid, int wstatus, void *arg) {
	(void)pid;
	(void)wstatus;
	event_base_loopbreak(arg);
}

static void run_spawn(struct event_base *base, const struct spawn_identity *self) {
	char **env = spawn_build_env(self, NULL);
	struct spawn_opts o = {.argv = argv_true, .env = env, .id = self};
	struct spawn_child child;
	char *cause = NULL;
	if (spawn_start(&o, &child, &cause) < 0)
		log_fatalx("spawn_start: %s", cause);
	spawn_watch(base, child.pid, on_exit_cb, base);
	event_base_dispatch(base);
	strv_free(env);
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: spawn_rate RUNS HEAP_MB posix_spawn|fork|spawn\n");
		return 2;
	}
	int runs = atoi(argv[1]);
	size_t heap = (size_t)atol(argv[2]) << 20;
	const char *mode = argv[3];
	char *big = heap ? xmalloc(heap) : NULL;
	if (big)
		memset(big, 1, heap); /* touched: real pages, real page tables */
	struct event_base *base = event_base_new();
	struct spawn_identity self;
	spawn_identity_self(&self);
	double t0 = now_s();
	for (int i = 0; i < runs; i++) {
		if (strcmp(mode, "posix_spawn") == 0)
			run_posix_spawn();
		else if (strcmp(mode, "fork") == 0)
			run_fork();
		else if (strcmp(mode, "spawn") == 0)
			run_spawn(base, &self);
		else
			log_fatalx("unknown mode %s", mode);
	}
	double dt = now_s() - t0;
	printf("runs %d seconds %.3f runs/s %.0f\n", runs, dt, runs / dt);
	spawn_identity_clear(&self);
	event_base_free(base);
	free(big);
	return 0;
}
