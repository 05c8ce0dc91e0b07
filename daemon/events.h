/*
 * events.h - live events to subscribers (events.subscribe).
 *
 * The engine emits; whoever subscribed (the control server, for each
 * subscribed connection) gets a JSON-RPC notification
 *   {"jsonrpc":"2.0","method":"event","params":{"type":T,"time":...,...}}
 * A subscriber may filter by job ids; device events reach everyone.
 * Unsubscribing from inside a send callback is safe.
 */
#ifndef MCPJOB_EVENTS_H
#define MCPJOB_EVENTS_H

#include <jansson.h>

struct events;
struct events_sub;

/* @msg is the whole notification, borrowed. */
typedef void (*events_send_fn)(void *arg, const json_t *msg);

struct events *events_new(void);
void events_free(struct events *ev);
/* @jobs: array of job id strings to filter on, or NULL for all (borrowed). */
struct events_sub *events_subscribe(struct events *ev, const json_t *jobs, events_send_fn fn,
                                    void *arg);
void events_unsubscribe(struct events *ev, struct events_sub *sub);
/*
 * events_emit() - send event @type about @job_id (NULL: not about one job)
 * with @params (stolen; "type", "time" and "job" are added).
 */
void events_emit(struct events *ev, const char *type, const char *job_id, json_t *params);
size_t events_subscribers(const struct events *ev);

#endif
