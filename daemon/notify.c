/*
 * notify.c - run ends as notification events and desktop notifications.
 *
 * The session bus is driven as platform/linux/bus.c drives the system bus:
 * watch sd_bus_get_fd() for sd_bus_get_events(), with sd_bus_get_timeout()
 * as the timeout, and sd_bus_process() until nothing is left. Notify calls
 * are asynchronous (floating slots); a reply that is an error is logged,
 * rate-limited, so a desktop without a notification server costs one line
 * per minute, not one per run.
 */
#include "daemon/notify.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/protocol.h"
#include "common/xmalloc.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/events.h"
#include "daemon/systemd_compat.h"

#if MCPJOB_WITH_SYSTEMD
#include <systemd/sd-bus.h>
#endif

#define NOTIFY_CALL_USEC (25 * 1000 * 1000) /* D-Bus's own default */
#define NOTIFY_APP_NAME "mcpjobd"

struct notify {
	struct event_base *base;
	struct engine *engine;
	struct events_sub *sub;
	bool desktop;
#if MCPJOB_WITH_SYSTEMD
	sd_bus *bus;
#else
	void *bus; /* no sd-bus in this build: always NULL */
#endif
	struct event *bus_ev;
	struct log_ratelimit rl;
};

/* One notification to send. */
struct note {
	const char *reason; /* "failure", "success", "result" */
	char *title;
	char *body;
	json_t *payload; /* may be NULL */
	unsigned char urgency; /* 0 low, 1 normal, 2 critical (the spec's values) */
};

/* ---- JSON pointer (RFC 6901) ---------------------------------------------- */

/* The reference token at @p (after its '/'), unescaped; *@end after it. */
static char *pointer_token(const char *p, const char **end) {
	size_t n = strcspn(p, "/");
	char *tok = xmalloc(n + 1), *o = tok;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
			*o++ = p[i + 1] == '0' ? '~' : '/';
			i++;
		} else {
			*o++ = p[i];
		}
	}
	*o = '\0';
	*end = p + n;
	return tok;
}

/* An array index: "0" or digits without a leading zero. */
static bool pointer_index(const char *tok, size_t *out) {
	char *end;
	if (*tok < '0' || *tok > '9' || (tok[0] == '0' && tok[1] != '\0'))
		return false;
	errno = 0;
	unsigned long long v = strtoull(tok, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (size_t)v;
	return true;
}

const json_t *notify_json_pointer(const json_t *root, const char *ptr) {
	const json_t *v = root;
	if (ptr == NULL || (*ptr != '\0' && *ptr != '/'))
		return NULL;
	while (v != NULL && *ptr == '/') {
		const char *end;
		char *tok = pointer_token(ptr + 1, &end);
		size_t idx;
		if (json_is_object(v))
			v = json_object_get(v, tok);
		else if (json_is_array(v) && pointer_index(tok, &idx))
			v = json_array_get(v, idx);
		else
			v = NULL;
		free(tok);
		ptr = end;
	}
	return v;
}

/* ---- the session bus -------------------------------------------------------- */

#if MCPJOB_WITH_SYSTEMD
static void bus_arm(struct notify *n);

static void bus_close(struct notify *n) {
	if (n->bus_ev) {
		event_free(n->bus_ev);
		n->bus_ev = NULL;
	}
	if (n->bus) {
		sd_bus_flush(n->bus); /* what was queued reaches the server */
		n->bus = sd_bus_close_unref(n->bus);
	}
}

static void bus_cb(evutil_socket_t fd, short what, void *arg) {
	struct notify *n = arg;
	(void)fd;
	(void)what;
	int r;
	while ((r = sd_bus_process(n->bus, NULL)) > 0)
		;
	if (r < 0) {
		log_warning("session bus connection lost (%s): desktop notifications stop until "
		            "the next one is due", strerror(-r));
		event_free(n->bus_ev);
		n->bus_ev = NULL;
		n->bus = sd_bus_close_unref(n->bus);
		return;
	}
	bus_arm(n);
}

static struct timeval usec_until(uint64_t until) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	uint64_t d = until > now ? until - now : 0;
	return (struct timeval){.tv_sec = (time_t)(d / 1000000u),
	                        .tv_usec = (suseconds_t)(d % 1000000u)};
}

static void bus_arm(struct notify *n) {
	int fd = sd_bus_get_fd(n->bus), events = sd_bus_get_events(n->bus);
	if (fd < 0 || events < 0)
		return;
	short what = (events & POLLIN ? EV_READ : 0) | (events & POLLOUT ? EV_WRITE : 0);
	event_del(n->bus_ev);
	event_assign(n->bus_ev, n->base, fd, what, bus_cb, n);
	uint64_t until = UINT64_MAX;
	if (sd_bus_get_timeout(n->bus, &until) > 0 && until != UINT64_MAX) {
		struct timeval tv = usec_until(until);
		event_add(n->bus_ev, &tv);
	} else {
		event_add(n->bus_ev, NULL);
	}
}

static bool bus_open(struct notify *n) {
	if (n->bus != NULL)
		return true;
	int r = sd_bus_open_user(&n->bus);
	if (r < 0) {
		n->bus = NULL;
		if (log_ratelimit_ok(&n->rl, 1, 60000, "desktop notification failures"))
			log_warning("no session bus (%s; is $DBUS_SESSION_BUS_ADDRESS set?): desktop "
			            "notifications are not shown; they still go out as events",
			            strerror(-r));
		return false;
	}
	n->bus_ev = event_new(n->base, -1, 0, bus_cb, n);
	return true;
}

static int notify_reply(sd_bus_message *m, void *arg, sd_bus_error *ret_error) {
	struct notify *n = arg;
	(void)ret_error;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	if (e != NULL && log_ratelimit_ok(&n->rl, 1, 60000, "desktop notification failures"))
		log_warning("the desktop did not take a notification: %s (%s); is a notification "
		            "server (org.freedesktop.Notifications) running in the session?",
		            e->message ? e->message : "no reason given", e->name);
	return 0;
}

/* Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, timeout). */
static int bus_notify(struct notify *n, const char *job, const struct note *nt) {
	sd_bus_message *m = NULL;
	char *payload = nt->payload ? json_dumps(nt->payload, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	int r = sd_bus_message_new_method_call(n->bus, &m, "org.freedesktop.Notifications",
	                                       "/org/freedesktop/Notifications",
	                                       "org.freedesktop.Notifications", "Notify");
	if (r >= 0)
		r = sd_bus_message_append(m, "susssas", NOTIFY_APP_NAME, 0u, "", nt->title, nt->body, 0);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "{sv}");
	if (r >= 0)
		r = sd_bus_message_append(m, "{sv}{sv}{sv}", "urgency", "y", nt->urgency,
		                          "x-mcpjob-job", "s", job, "x-mcpjob-reason", "s", nt->reason);
	if (r >= 0 && payload != NULL)
		r = sd_bus_message_append(m, "{sv}", "x-mcpjob-payload", "s", payload);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "i", -1);
	if (r >= 0)
		r = sd_bus_call_async(n->bus, NULL, m, notify_reply, n, NOTIFY_CALL_USEC);
	sd_bus_message_unref(m);
	free(payload);
	return r;
}

/* ---- from a run to notes ------------------------------------------------------ */

/* @s cut to NOTIFY_TEXT_MAX bytes on a UTF-8 boundary (new string). */
#else
/* Built without libsystemd (make WITH_SYSTEMD=0): notification events only. */
static void bus_close(struct notify *n) {
	(void)n;
}

static void bus_arm(struct notify *n) {
	(void)n;
}

static bool bus_open(struct notify *n) {
	if (log_ratelimit_ok(&n->rl, 1, 3600000, "no desktop notifications"))
		log_warning("this mcpjobd is built without libsystemd: no desktop notifications, "
		            "only notification events");
	return false;
}

static int bus_notify(struct notify *n, const char *job, const struct note *nt) {
	(void)n, (void)job, (void)nt;
	return -ENOTSUP;
}
#endif

static char *text_cut(const char *s) {
	size_t len = strlen(s);
	if (len <= NOTIFY_TEXT_MAX)
		return xstrdup(s);
	len = NOTIFY_TEXT_MAX - 3;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return xasprintf("%.*s...", (int)len, s);
}

static void note_send(struct notify *n, const char *job, uint64_t run_id, const struct note *nt) {
	events_emit(engine_events(n->engine), EVENT_NOTIFICATION, job,
	            json_pack("{s:I, s:s, s:s, s:s, s:O?}", "run_id", (json_int_t)run_id, "reason",
	                      nt->reason, "title", nt->title, "body", nt->body, "payload",
	                      nt->payload));
	if (!n->desktop || !bus_open(n))
		return;
	int r = bus_notify(n, job, nt);
	if (r < 0 && log_ratelimit_ok(&n->rl, 1, 60000, "desktop notification failures"))
		log_warning("%s: run %llu: cannot send a desktop notification: %s", job,
		            (unsigned long long)run_id, strerror(-r));
	if (n->bus)
		bus_arm(n);
}

/* One note per element of the "items" array (objects with title/body). */
static void notes_from_result(struct notify *n, const char *job, const char *name,
                              uint64_t run_id, const json_t *structured, const char *ptr) {
	const json_t *items = notify_json_pointer(structured, ptr);
	if (!json_is_array(items)) {
		if (log_ratelimit_ok(&n->rl, 5, 60000, "notify items warnings"))
			log_warning("%s: run %llu: notify.items \"%s\" names %s in the tool's "
			            "structuredContent, not an array: no notifications from it", job,
			            (unsigned long long)run_id, ptr, items ? "something else" : "nothing");
		return;
	}
	size_t i, sent = 0;
	const json_t *it;
	json_array_foreach(items, i, it) {
		if (!json_is_object(it))
			continue;
		if (sent++ == NOTIFY_MAX_PER_RUN) {
			log_info("%s: run %llu: %zu items; notified the first %d", job,
			         (unsigned long long)run_id, json_array_size(items), NOTIFY_MAX_PER_RUN);
			break;
		}
		const char *title = json_string_value(json_object_get(it, "title"));
		const char *body = json_string_value(json_object_get(it, "body"));
		struct note nt = {"result", text_cut(title ? title : name), text_cut(body ? body : ""),
		                  json_object_get(it, "payload"), 1};
		note_send(n, job, run_id, &nt);
		free(nt.title);
		free(nt.body);
	}
}

static void notify_run(struct notify *n, const json_t *ev) {
	const char *job = json_string_value(json_object_get(ev, "job"));
	const json_t *run = json_object_get(ev, "run");
	const struct config *cfg = engine_config(n->engine);
	struct job_notify spec;
	if (job == NULL || !json_is_object(run) || !config_job_notify(cfg, job, &spec))
		return;
	const struct job_def *def = config_find_job(cfg, job);
	const char *name = def && def->name ? def->name : job;
	const char *outcome = json_string_value(json_object_get(run, "outcome"));
	const char *msg = json_string_value(json_object_get(run, "message"));
	uint64_t run_id = (uint64_t)json_integer_value(json_object_get(run, "run_id"));
	bool ok = outcome && strcmp(outcome, "success") == 0;
	bool failed = outcome && (strcmp(outcome, "failure") == 0 || strcmp(outcome, "timeout") == 0);
	if ((ok && (spec.on & NOTIFY_ON_SUCCESS)) || (failed && (spec.on & NOTIFY_ON_FAILURE))) {
		struct note nt = {ok ? "success" : "failure",
		                  ok ? xasprintf("%s succeeded", name)
		                     : xasprintf("%s %s", name,
		                                 strcmp(outcome, "timeout") == 0 ? "timed out" : "failed"),
		                  text_cut(msg ? msg : ""), NULL, ok ? 1 : 2};
		note_send(n, job, run_id, &nt);
		free(nt.title);
		free(nt.body);
	}
	if (ok && (spec.on & NOTIFY_ON_RESULT) && spec.items != NULL)
		notes_from_result(n, job, name, run_id, json_object_get(run, "structured_content"),
		                  spec.items);
}

/* Only the runs of jobs with a "notify" make run.finished worth building. */
static bool job_notifies(void *arg, const char *job_id) {
	struct notify *n = arg;
	struct job_notify spec;
	return job_id != NULL && config_job_notify(engine_config(n->engine), job_id, &spec);
}

static void on_event(void *arg, const json_t *msg) {
	const json_t *ev = json_object_get(msg, "params");
	const char *type = json_string_value(json_object_get(ev, "type"));
	if (type && strcmp(type, EVENT_RUN_FINISHED) == 0)
		notify_run(arg, ev);
}

struct notify *notify_new(struct event_base *base, struct engine *engine, bool desktop) {
	struct notify *n = xcalloc(1, sizeof *n);
	n->base = base;
	n->engine = engine;
	n->desktop = desktop;
	static const char *const types[] = {EVENT_RUN_FINISHED, NULL};
	n->sub = events_subscribe_types(engine_events(engine), types, on_event, n);
	events_sub_set_filter(n->sub, job_notifies);
	return n;
}

void notify_free(struct notify *n) {
	if (n == NULL)
		return;
	events_unsubscribe(engine_events(n->engine), n->sub);
	bus_close(n);
	free(n);
}
