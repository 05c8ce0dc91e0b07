/*
 * timer_lateness.c - the floor for dispatch lateness: a libevent base made
 * with EVENT_BASE_FLAG_PRECISE_TIMER (as mcpjobd makes its own) fires a
 * timer every INTERVAL_MS on a fixed grid; lateness is how long after each
 * grid point the callback ran.
 *
 *   timer_lateness TICKS INTERVAL_MS [date]
 *
 * Prints the lateness of each tick in microseconds, space separated. With
 * "date", each tick starts `/bin/date +%s.%N` with posix_spawn, reads what
 * it prints and waits for it: lateness is then from the grid point (on the
 * realtime clock) to the child's own timestamp - the floor for mcpjobd's
 * "due time to the job's own timestamp" of an exec job running date.
 */
#include <event2/event.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct ticker {
	struct event *ev;
	int64_t due_ns, interval_ns;
	int64_t due_rt_ns; /* the same grid point on CLOCK_REALTIME */
	int left;
	int date; /* start date(1) per tick */
};

/* posix_spawn date +%s.%N, read its line, reap it: its timestamp in ns, or -1. */
static int64_t date_ns(void) {
	char *argv[] = {"/bin/date", "+%s.%N", NULL};
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	char buf[64] = "";
	size_t got = 0;
	ssize_t n;
	while (r == 0 && got < sizeof buf - 1 &&
	       (n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	if (r != 0 || waitpid(pid, NULL, 0) < 0)
		return -1;
	buf[got] = '\0';
	char *dot = strchr(buf, '.');
	if (dot == NULL)
		return -1;
	return atoll(buf) * 1000000000LL + atoll(dot + 1);
}

static int64_t rt_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Arm for the next grid point, counted from the grid, never from now. */
static void ticker_arm(struct ticker *t) {
	int64_t wait = t->due_ns - now_ns();
	if (wait < 0)
		wait = 0;
	struct timeval tv = {(time_t)(wait / 1000000000LL), (suseconds_t)(wait % 1000000000LL / 1000)};
	evtimer_add(t->ev, &tv);
}

static void ticker_fire(evutil_socket_t fd, short what, void *arg) {
	struct ticker *t = arg;
	(void)fd;
	(void)what;
	int64_t late = now_ns() - t->due_ns;
	if (t->date) {
		int64_t ts = date_ns();
		if (ts < 0) {
			fprintf(stderr, "timer_lateness: cannot run /bin/date\n");
			exit(1);
		}
		late = ts - t->due_rt_ns;
	}
	printf("%.1f%s", late / 1000.0, --t->left ? " " : "\n");
	fflush(stdout);
	t->due_ns += t->interval_ns;
	t->due_rt_ns += t->interval_ns;
	if (t->left > 0)
		ticker_arm(t);
}

int main(int argc, char **argv) {
	if (argc < 3 || argc > 4 || atoi(argv[1]) < 1 || atoi(argv[2]) < 1 ||
	    (argc == 4 && strcmp(argv[3], "date") != 0)) {
		fprintf(stderr, "usage: timer_lateness TICKS INTERVAL_MS [date]\n");
		return 2;
	}
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	struct ticker t = {.interval_ns = atoll(argv[2]) * 1000000LL, .left = atoi(argv[1]),
	                   .date = argc == 4};
	t.ev = evtimer_new(base, ticker_fire, &t);
	t.due_ns = now_ns() + t.interval_ns;
	t.due_rt_ns = rt_ns() + t.interval_ns;
	ticker_arm(&t);
	event_base_dispatch(base);
	event_free(t.ev);
	event_base_free(base);
	return 0;
}
