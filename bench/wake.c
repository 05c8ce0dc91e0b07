/*
 * wake.c - what one hand-off between two processes costs on this machine:
 * a pipe ping-pong between two threads, both pinned to one CPU, then each
 * pinned to its own. Every figure the benchmarks take across processes
 * (a job.run through the daemon, a tool call to a server) is made of such
 * hand-offs; on a VM one across CPUs can cost as much as the work.
 *
 *   wake [ROUND_TRIPS]
 *
 * Prints one line: same_us=A cross_us=B (each the median round trip over
 * two, i.e. one hand-off; cross_us=- with a single usable CPU).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int pin(int cpu) {
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set);
}

static void *echo(void *arg) {
	char c;
	if (pin(*(int *)arg) != 0)
		return NULL;
	while (read(ping[0], &c, 1) == 1 && write(pong[1], &c, 1) == 1)
		;
	return NULL;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median hand-off (round trip / 2) with us on @mine, the echo on @its. */
static double handoff(int mine, int its, int n, double *rt) {
	pthread_t th;
	char c = 'x';
	if (pipe(ping) != 0 || pipe(pong) != 0 || pthread_create(&th, NULL, echo, &its) != 0)
		return -1;
	if (pin(mine) != 0)
		return -1;
	for (int i = -n / 10; i < n; i++) { /* the first tenth warms up */
		double t0 = now_us();
		if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
			return -1;
		if (i >= 0)
			rt[i] = now_us() - t0;
	}
	close(ping[1]); /* EOF: the echo ends */
	pthread_join(th, NULL);
	close(ping[0]);
	close(pong[0]);
	close(pong[1]);
	qsort(rt, (size_t)n, sizeof *rt, cmp);
	return rt[n / 2] / 2;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	cpu_set_t set;
	int cpus[2], have = 0;
	if (n < 10 || sched_getaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "usage: wake [ROUND_TRIPS >= 10]\n");
		return 2;
	}
	for (int c = 0; c < CPU_SETSIZE && have < 2; c++)
		if (CPU_ISSET(c, &set))
			cpus[have++] = c;
	double *rt = malloc((size_t)n * sizeof *rt);
	double same = rt ? handoff(cpus[0], cpus[0], n, rt) : -1;
	double cross = have == 2 && same >= 0 ? handoff(cpus[0], cpus[1], n, rt) : -1;
	free(rt);
	if (same < 0) {
		fprintf(stderr, "wake: cannot pin threads or make pipes\n");
		return 1;
	}
	if (cross < 0)
		printf("same_us=%.1f cross_us=-\n", same);
	else
		printf("same_us=%.1f cross_us=%.1f\n", same, cross);
	return 0;
}
