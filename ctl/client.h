/*
 * client.h - mcpjobctl's side of the control socket: connect, call, read.
 *
 * Plain blocking I/O on a Unix stream socket with a read timeout: a CLI
 * makes a handful of calls and exits, so an event loop would only add
 * moving parts. Replies are read line by line; event notifications that
 * arrive between replies are skipped, except by ctl_client_next_event().
 *
 * ctl_client_connect() sends daemon.hello at once and does not wait for
 * its reply: the reply is checked when the first call reads its own, so
 * the version check costs no extra round trip. A protocol mismatch the
 * daemon reports fails that first call with the daemon's message.
 */
#ifndef MCPJOB_CTL_CLIENT_H
#define MCPJOB_CTL_CLIENT_H

#include <jansson.h>

/* Longest line mcpjobctl accepts from the daemon. */
#define CTL_MAX_REPLY (1024 * 1024 * 1024) /* jobs.list of 100k jobs is ~50 MB */
/* How long a call waits for its reply unless told otherwise. */
#define CTL_DEFAULT_TIMEOUT_MS 30000

struct ctl_client;

enum ctl_reply {
	CTL_REPLY_OK,    /* *out: the result (new reference) */
	CTL_REPLY_ERROR, /* the daemon answered with an error; *out: the error
	                    object (new reference), *cause: its message */
	CTL_REPLY_FAIL,  /* no answer: connect, I/O, timeout, bad reply; *cause */
};

/*
 * ctl_client_connect() - connect to the socket at @path and send hello.
 * Returns NULL with *@cause set (caller frees) when the socket cannot be
 * reached, e.g. "cannot connect to PATH: No such file or directory (is
 * mcpjobd running?)".
 */
struct ctl_client *ctl_client_connect(const char *path, char **cause);
void ctl_client_free(struct ctl_client *c);

/* Reply timeout for later calls in milliseconds; -1 waits forever. */
void ctl_client_set_timeout(struct ctl_client *c, int timeout_ms);

/*
 * ctl_client_call() - send @method with @params (borrowed, may be NULL)
 * and wait for its reply. *@out and *@cause as enum ctl_reply says;
 * the caller frees whichever was set.
 */
enum ctl_reply ctl_client_call(struct ctl_client *c, const char *method, json_t *params,
                               json_t **out, char **cause);

/*
 * ctl_client_next_event() - block (ignoring the timeout) until the next
 * "event" notification and set *@params to its params (new reference).
 * Returns 1 for an event, 0 when the daemon closed the connection, -1 with
 * *@cause on an error.
 */
int ctl_client_next_event(struct ctl_client *c, json_t **params, char **cause);

#endif
