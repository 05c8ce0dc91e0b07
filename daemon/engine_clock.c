/*
 * engine_clock.c - the real clock behind struct engine_clock.
 *
 * The schedule's wall timer is one realtime timerfd armed absolute with
 * TFD_TIMER_CANCEL_ON_SET: due times follow the wall clock across suspend,
 * and a clock change cancels it, which we report as a firing so the
 * engine re-checks what is due. With nothing to wait for it is still armed
 * a year ahead, to keep noticing clock changes. Elapsed-time timers are
 * plain libevent timers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/engine.h"

struct engine_timer {
	bool wall;
	int fd;             /* wall: the timerfd */
	struct event *ev;
	engine_timer_fn fn;
	void *arg;
};

static int64_t real_now(void *ctx) {
	(void)ctx;
	return time_now_ms();
}

static void real_fired(evutil_socket_t fd, short what, void *arg) {
	struct engine_timer *t = arg;
	uint64_t ticks;
	(void)what;
	if (t->wall && read(fd, &ticks, sizeof ticks) < 0 && errno == ECANCELED)
		log_info("the system clock changed; re-checking the schedule");
	t->fn(t->arg);
}

static struct engine_timer *real_timer_new(void *ctx, struct event_base *base, bool wall,
                                           engine_timer_fn fn, void *arg) {
	(void)ctx;
	struct engine_timer *t = xcalloc(1, sizeof *t);
	t->wall = wall;
	t->fn = fn;
	t->arg = arg;
	t->fd = -1;
	if (wall) {
		t->fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
		if (t->fd < 0) {
			free(t);
			return NULL;
		}
		t->ev = event_new(base, t->fd, EV_READ | EV_PERSIST, real_fired, t);
		event_add(t->ev, NULL);
	} else {
		t->ev = evtimer_new(base, real_fired, t);
	}
	return t;
}

static void real_timer_set(struct engine_timer *t, int64_t at_ms) {
	if (!t->wall) {
		evtimer_del(t->ev);
		if (at_ms == INT64_MAX)
			return;
		int64_t d = at_ms - time_now_ms();
		if (d < 0)
			d = 0;
		struct timeval tv = {d / 1000, (d % 1000) * 1000};
		evtimer_add(t->ev, &tv);
		return;
	}
	struct itimerspec its = {0};
	if (at_ms == INT64_MAX)
		at_ms = time_now_ms() + 86400LL * 365 * 1000;
	if (at_ms <= 0)
		at_ms = 1; /* zero would disarm */
	its.it_value.tv_sec = at_ms / 1000;
	its.it_value.tv_nsec = (at_ms % 1000) * 1000000;
	if (timerfd_settime(t->fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
		log_error("cannot arm the schedule timer: %s", strerror(errno));
}

static void real_timer_free(struct engine_timer *t) {
	if (t == NULL)
		return;
	if (t->ev)
		event_free(t->ev);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

static const struct engine_clock real_clock = {
	.now_ms = real_now,
	.timer_new = real_timer_new,
	.timer_set = real_timer_set,
	.timer_free = real_timer_free,
};

const struct engine_clock *engine_clock_real(void) {
	return &real_clock;
}
