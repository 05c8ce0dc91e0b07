/*
 * control.h - the control socket: JSON-RPC 2.0, one message per line, on a
 * Unix stream socket (mcpjobd-protocol(7)).
 *
 * Each connection's peer is known from SO_PEERCRED: root, the daemon's own
 * uid and members of the admin group may call every method; others only the
 * read-only ones. Bad input never stops the daemon: invalid JSON gets
 * -32700 and the connection goes on; a line over MCPJOB_MAX_LINE gets
 * -32008 and the connection is closed; a subscriber that stops reading is
 * dropped once its output passes CONTROL_MAX_OUTPUT.
 *
 * Bounded per peer: requests are not read while a connection's unsent
 * output is over CONTROL_PAUSE_OUTPUT; a peer that then takes nothing for
 * CONTROL_STALL_MS is dropped. A peer that half-closes (shutdown SHUT_WR)
 * gets the answer to every request it sent, then the connection closes. When
 * accept() fails (out of file descriptors) accepting pauses for
 * CONTROL_ACCEPT_PAUSE_MS at a time, logged at most once per 10 s.
 */
#ifndef MCPJOB_CONTROL_H
#define MCPJOB_CONTROL_H

#include <event2/event.h>
#include <jansson.h>
#include <sys/types.h>

struct control;
struct engine;
struct config_errors;

#define CONTROL_MAX_OUTPUT (1024 * 1024)  /* an event subscriber's unsent events */
#define CONTROL_PAUSE_OUTPUT (256 * 1024) /* unsent replies: stop reading requests */
#define CONTROL_STALL_MS 10000            /* paused and nothing taken: dropped */
#define CONTROL_ACCEPT_PAUSE_MS 500       /* accept() failed (EMFILE): pause */

struct control_opts {
	const char *socket_path;
	int listen_fd;          /* from socket activation, or -1 to create our own */
	mode_t mode;            /* of a socket we create */
	const char *group;      /* group of a socket we create, or NULL */
	/* daemon.reload goes through the daemon (sd_notify RELOADING=1 etc.). */
	int (*reload)(void *arg, json_t **summary, struct config_errors *errs);
	void *reload_arg;
	/* daemon.metrics: the metrics text (new string); NULL: not offered. */
	char *(*metrics)(void *arg);
	void *metrics_arg;
};

/*
 * control_open() - listen (creating the socket after checking with
 * connect() that no other instance listens on it). Returns 0 or -1 with
 * *@cause.
 */
int control_open(struct event_base *base, struct engine *engine, const struct control_opts *opts,
                 struct control **out, char **cause);
/* Stop accepting new connections (shutdown begins). */
void control_stop_accepting(struct control *c);
/* Close every connection and the socket (removing a socket we created). */
void control_close(struct control *c);

#endif
