/*
 * echo_server.c - the baseline for the control socket's round trips: a bare
 * libevent bufferevent server on an AF_UNIX stream socket that sends every
 * newline-terminated line straight back. What mcpjobd's job.status costs
 * beyond this is the daemon's own work (parse, look up, encode).
 *
 *   echo_server SOCKET      (runs until killed; removes nothing on exit)
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void echo_on_read(struct bufferevent *bev, void *arg) {
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t len;
	char *line;
	(void)arg;
	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		evbuffer_add(out, line, len);
		evbuffer_add(out, "\n", 1);
		free(line);
	}
}

static void echo_on_event(struct bufferevent *bev, short what, void *arg) {
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void echo_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg) {
	struct event_base *base = arg;
	(void)l;
	(void)sa;
	(void)salen;
	struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, echo_on_read, NULL, echo_on_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char **argv) {
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (argc != 2 || strlen(argv[1]) >= sizeof sun.sun_path) {
		fprintf(stderr, "usage: echo_server SOCKET\n");
		return 2;
	}
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", argv[1]);
	unlink(sun.sun_path);
	struct event_base *base = event_base_new();
	struct evconnlistener *l = evconnlistener_new_bind(
		base, echo_on_accept, base, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128,
		(struct sockaddr *)&sun, sizeof sun);
	if (l == NULL) {
		perror("echo_server: bind");
		return 1;
	}
	event_base_dispatch(base);
	evconnlistener_free(l);
	event_base_free(base);
	return 0;
}
