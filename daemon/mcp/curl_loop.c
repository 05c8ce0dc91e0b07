/*
 * curl_loop.c - see curl_loop.h.
 */
#include "daemon/mcp/curl_loop.h"

#include <stdlib.h>

#include "common/xmalloc.h"

struct curl_loop_sock {
	struct event *ev;
	LIST_ENTRY(curl_loop_sock) link;
};

static void on_sock_event(evutil_socket_t fd, short what, void *arg) {
	struct curl_loop *l = arg;
	int running, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
	                     (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(l->multi, fd, flags, &running);
	l->after(l->arg);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
	struct curl_loop *l = userp;
	struct curl_loop_sock *sk = socketp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL) {
			LIST_REMOVE(sk, link);
			event_free(sk->ev);
			free(sk);
		}
		return 0;
	}
	short flags = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
	              (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (sk == NULL) {
		sk = xcalloc(1, sizeof *sk);
		sk->ev = event_new(l->evb, s, flags, on_sock_event, l);
		LIST_INSERT_HEAD(&l->socks, sk, link);
		curl_multi_assign(l->multi, s, sk);
	} else {
		event_del(sk->ev);
		event_assign(sk->ev, l->evb, s, flags, on_sock_event, l);
	}
	event_add(sk->ev, NULL);
	return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
	struct curl_loop *l = arg;
	int running;
	(void)fd;
	(void)what;
	curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	l->after(l->arg);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp) {
	struct curl_loop *l = userp;
	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(l->timer);
		return 0;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(l->timer, &tv);
	return 0;
}

void curl_loop_init(struct curl_loop *l, struct event_base *evb, void (*after)(void *arg),
                    void *arg) {
	l->evb = evb;
	l->after = after;
	l->arg = arg;
	LIST_INIT(&l->socks);
	l->multi = curl_multi_init();
	l->timer = evtimer_new(evb, on_timer, l);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
}

void curl_loop_clear(struct curl_loop *l) {
	if (l->multi)
		curl_multi_cleanup(l->multi);
	l->multi = NULL;
	struct curl_loop_sock *sk;
	while ((sk = LIST_FIRST(&l->socks)) != NULL) {
		LIST_REMOVE(sk, link);
		event_free(sk->ev);
		free(sk);
	}
	if (l->timer)
		event_free(l->timer);
	l->timer = NULL;
}
