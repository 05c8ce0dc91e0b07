/*
 * curl_loop.h - a libcurl multi handle driven by a libevent loop: the socket
 * and timer callbacks of curl_multi_socket_action() (libcurl's
 * "multi_socket" interface), no threads, no blocking call. The HTTP
 * transport (mcp_http.c) and the OAuth flow (mcp_auth.c) each own one.
 */
#ifndef MCPJOB_CURL_LOOP_H
#define MCPJOB_CURL_LOOP_H

#include <curl/curl.h>
#include <event2/event.h>
#include <sys/queue.h>

struct curl_loop_sock;

struct curl_loop {
	CURLM *multi;
	struct event_base *evb;
	struct event *timer;
	LIST_HEAD(, curl_loop_sock) socks; /* what libcurl asked us to watch */
	/* After every curl_multi_socket_action(): read curl_multi_info_read().
	 * It may free the owner, and the loop with it: nothing follows it. */
	void (*after)(void *arg);
	void *arg;
};

/* Set @l up on @evb; @after(@arg) is called after each action. */
void curl_loop_init(struct curl_loop *l, struct event_base *evb, void (*after)(void *arg),
                    void *arg);
/* curl_multi_cleanup() and the events (the easy handles are the owner's). */
void curl_loop_clear(struct curl_loop *l);

#endif
