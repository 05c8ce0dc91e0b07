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
#include <stdbool.h>

struct events;
struct events_sub;

/* @msg is the whole notification, borrowed. */
typedef void (*events_send_fn)(void *arg, const json_t *msg);

struct events *events_new(void);
void events_free(struct events *ev);
/* @jobs: array of job id strings to filter on, or NULL for all (borrowed). */
struct events_sub *events_subscribe(struct events *ev, const json_t *jobs, events_send_fn fn,
                                    void *arg);
/*
 * events_subscribe_types() - the same for the daemon's own listeners
 * (metrics, notifications, STATUS=): only events of @types (a NULL-ended
 * list of EVENT_* names with static storage, borrowed for the
 * subscription's life), so an event nobody wants is never built.
 */
struct events_sub *events_subscribe_types(struct events *ev, const char *const *types,
                                          events_send_fn fn, void *arg);
/* Change the types of a subscription made by events_subscribe_types(). */
void events_sub_set_types(struct events_sub *sub, const char *const *types);
/* Only events @fn(@arg, job_id) says yes to (job_id may be NULL); NULL: all. */
typedef bool (*events_filter_fn)(void *arg, const char *job_id);
void events_sub_set_filter(struct events_sub *sub, events_filter_fn fn);

/*
 * A run's end for the daemon's own counters (metrics), as the record
 * itself: called by run_finish() whether or not anyone wants run.finished,
 * and building nothing. One watcher; @fn NULL removes it.
 */
struct run_record;
typedef void (*events_run_fn)(void *arg, const struct run_record *run);
void events_watch_runs(struct events *ev, events_run_fn fn, void *arg);
void events_run_ended(struct events *ev, const struct run_record *run);
/*
 * events_wanted() - would events_emit(@type, @job_id) reach anyone? Emitters
 * on busy paths ask first and build no params when not: with no client
 * subscribed, a run builds no event at all.
 */
bool events_wanted(const struct events *ev, const char *type, const char *job_id);
void events_unsubscribe(struct events *ev, struct events_sub *sub);
/*
 * events_emit() - send event @type about @job_id (NULL: not about one job)
 * with @params (stolen; "type", "time" and "job" are added) to every
 * subscriber that wants it; with none, only frees @params.
 */
void events_emit(struct events *ev, const char *type, const char *job_id, json_t *params);
size_t events_subscribers(const struct events *ev);

#endif
