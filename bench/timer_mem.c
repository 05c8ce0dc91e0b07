/*
 * timer_mem.c - the floor for memory per job: N libevent timers (event_new +
 * evtimer_add, each with its own far timeout, as mcpjobd arms one per job)
 * in a base made as mcpjobd makes its own.
 *
 *   timer_mem N
 *
 * Prints "bytes_per_timer B us_per_timer U": the growth of RSS
 * (/proc/self/statm) and the time to create and arm them, per timer.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long rss_bytes(void) {
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	if (f)
		fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void never(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	(void)arg;
}

int main(int argc, char **argv) {
	int n = argc == 2 ? atoi(argv[1]) : 0;
	if (n < 1) {
		fprintf(stderr, "usage: timer_mem N\n");
		return 2;
	}
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	struct event **evs = malloc((size_t)n * sizeof *evs);
	long before = rss_bytes(); /* the pointer array is touched only below */
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		struct timeval tv = {.tv_sec = 86400 + i % 3600, .tv_usec = i % 1000};
		evs[i] = evtimer_new(base, never, NULL);
		evtimer_add(evs[i], &tv);
	}
	double took = now_s() - t0;
	long after = rss_bytes();
	/* The array of pointers is ours, not libevent's: 8 B per timer, left out. */
	printf("bytes_per_timer %.1f us_per_timer %.3f\n",
	       (double)(after - before) / n - (double)sizeof *evs, took * 1e6 / n);
	for (int i = 0; i < n; i++)
		event_free(evs[i]);
	free(evs);
	event_base_free(base);
	return 0;
}
