/*
 * timer_lateness.c - the floor for dispatch lateness: a libevent base made
 * with EVENT_BASE_FLAG_PRECISE_TIMER (as mcpjobd makes its own) fires a
 * timer every INTERVAL_MS on a fixed grid; lateness is how long after each
 * grid point the callback ran.
 *
 *   timer_lateness TICKS INTERVAL_MS
 *
 * Prints the lateness of each tick in microseconds, space separated.
 */
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct ticker {
	struct event *ev;
	int64_t due_ns, interval_ns;
	int left;
};

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
	printf("%.1f%s", (now_ns() - t->due_ns) / 1000.0, --t->left ? " " : "\n");
	fflush(stdout);
	t->due_ns += t->interval_ns;
	if (t->left > 0)
		ticker_arm(t);
}

int main(int argc, char **argv) {
	if (argc != 3 || atoi(argv[1]) < 1 || atoi(argv[2]) < 1) {
		fprintf(stderr, "usage: timer_lateness TICKS INTERVAL_MS\n");
		return 2;
	}
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	struct ticker t = {.interval_ns = atoll(argv[2]) * 1000000LL, .left = atoi(argv[1])};
	t.ev = evtimer_new(base, ticker_fire, &t);
	t.due_ns = now_ns() + t.interval_ns;
	ticker_arm(&t);
	event_base_dispatch(base);
	event_free(t.ev);
	event_base_free(base);
	return 0;
}
