/*
 * notify.h - desktop notifications from the ends of runs (a job's "notify").
 *
 * A consumer of the engine's event stream, like the control server's
 * subscribers: on each run.finished event it reads the job's "notify" from
 * the engine's current configuration (so a reload takes effect at once) and
 * turns the run into notifications:
 *   "failure"  outcome failure or timeout: "NAME failed", the run's message
 *   "success"  outcome success: "NAME succeeded", the run's message
 *   "result"   outcome success of an mcp job: one per element of the array
 *              that "items" (a JSON pointer) names in structuredContent, its
 *              "title" and "body"; its "payload" goes along as the hint
 *              "x-mcpjob-payload" (JSON text) for the app that acts on it
 * Each becomes a "notification" event (for apps on the control socket, in
 * both modes) and, with @desktop (mcpjobd --user), a call of
 * org.freedesktop.Notifications.Notify on the user's session bus (sd-bus,
 * driven from the libevent loop; never blocking it). The system daemon has
 * no user session: it sends the events only. At most NOTIFY_MAX_PER_RUN
 * per run: a tool's result is input, and a desktop must not drown.
 */
#ifndef MCPJOB_NOTIFY_H
#define MCPJOB_NOTIFY_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

struct engine;
struct notify;

#define NOTIFY_MAX_PER_RUN 20
/* Longest title and body sent, in bytes (cut on a UTF-8 boundary). */
#define NOTIFY_TEXT_MAX 1024

/*
 * notify_new() - subscribe to @engine's events. With @desktop, connect to
 * the session bus when the first notification is due (a missing bus is
 * logged once, rate-limited, and the events still go out).
 */
struct notify *notify_new(struct event_base *base, struct engine *engine, bool desktop);
/* Unsubscribe and close the bus (what is queued is flushed first). */
void notify_free(struct notify *n);

/*
 * notify_json_pointer() - the value @ptr (RFC 6901: "" is the whole
 * document, "/a/0" member a's first element, "~1" is "/", "~0" is "~")
 * names in @root, borrowed; NULL when it names nothing.
 */
const json_t *notify_json_pointer(const json_t *root, const char *ptr);

#endif
