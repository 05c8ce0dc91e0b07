/*
 * demo-tools.c - syncData and getNotifications, backed by two JSON files.
 *
 * Files are rewritten whole through a temporary file and rename(), so a
 * crash leaves either the old or the new version, never half of one.
 * They are read again on every call: edit notifications.json by hand to
 * make new notifications appear.
 */
#include "demo-tools.h"

#include "common/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* synced.json keeps the newest entries only, so it cannot grow forever. */
#define SYNCED_MAX_ENTRIES 10000

static char data_dir[PATH_MAX];

/* A tool result with one text item; takes @structured (may be NULL). */
static json_t *result_new(bool is_error, json_t *structured, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static json_t *result_new(bool is_error, json_t *structured, const char *fmt, ...) {
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	json_t *r = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", text);
	if (structured)
		json_object_set_new(r, "structuredContent", structured);
	if (is_error)
		json_object_set_new(r, "isError", json_true());
	return r;
}

static void path_of(char *buf, size_t len, const char *name) {
	snprintf(buf, len, "%s/%s", data_dir, name);
}

/* Load DIR/name as a JSON array; a missing file is an empty array. */
static json_t *load_array(const char *name, char *cause, size_t len) {
	char path[PATH_MAX + 64];
	json_error_t jerr;
	path_of(path, sizeof path, name);
	json_t *a = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (a == NULL && access(path, F_OK) != 0 && errno == ENOENT)
		return json_array();
	if (a == NULL && jerr.line < 1) { /* not a syntax error: jansson says what failed */
		snprintf(cause, len, "%s", jerr.text);
		return NULL;
	}
	if (a == NULL) {
		snprintf(cause, len, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_array(a)) {
		snprintf(cause, len, "%s does not hold a JSON array; move it away to start afresh", path);
		json_decref(a);
		return NULL;
	}
	return a;
}

/* Replace DIR/name with @a: write a temporary file, fsync it, rename it. */
static int save_array(const char *name, json_t *a, char *cause, size_t len) {
	char path[PATH_MAX + 64], tmp[PATH_MAX + 96];
	path_of(path, sizeof path, name);
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(cause, len, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	int rc = json_dumpfd(a, fd, JSON_INDENT(2));
	if (rc == 0 && write(fd, "\n", 1) != 1)
		rc = -1;
	if (rc == 0 && fsync(fd) != 0)
		rc = -1;
	if (close(fd) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0) {
		snprintf(cause, len, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

static json_t *sample_notification(int64_t ms, const char *title, const char *body,
                                   json_t *payload) {
	char when[TIME_RFC3339_LEN];
	time_format_rfc3339(ms, when);
	return json_pack("{s:s, s:s, s:s, s:o}", "time", when, "title", title, "body", body,
	                 "payload", payload);
}

static int create_samples(char *cause, size_t len) {
	int64_t now = time_now_ms();
	json_t *a = json_array();
	json_array_append_new(a, sample_notification(now - 3 * 3600 * 1000, "Welcome",
		"mcpjobd fetches these notifications in the background.",
		json_pack("{s:s}", "kind", "welcome")));
	json_array_append_new(a, sample_notification(now - 2 * 3600 * 1000, "Sync finished",
		"Your data was synced to the server.", json_pack("{s:s, s:i}", "kind", "sync", "items", 3)));
	json_array_append_new(a, sample_notification(now - 3600 * 1000, "Storage almost full",
		"Less than 10% of the disk is free.", json_pack("{s:s, s:i}", "kind", "storage", "free_percent", 9)));
	int rc = save_array("notifications.json", a, cause, len);
	json_decref(a);
	return rc;
}

/* mkdir -p with mode 0700 for what it creates; 0 or -1 with errno. */
static int make_dirs(char *path) {
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc != 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int demo_tools_init(const char *dir, char *cause, size_t len) {
	char path[PATH_MAX + 64];
	if (strlen(dir) >= sizeof data_dir) {
		snprintf(cause, len, "--data-dir is too long");
		return -1;
	}
	snprintf(data_dir, sizeof data_dir, "%s", dir);
	if (make_dirs(data_dir) != 0) {
		snprintf(cause, len, "cannot create data directory %s: %s (give a writable one "
		         "with --data-dir)", dir, strerror(errno));
		return -1;
	}
	path_of(path, sizeof path, "notifications.json");
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return create_samples(cause, len);
	return 0;
}

json_t *demo_tools_list(void) {
	return json_pack(
		"[{s:s, s:s, s:{s:s, s:{s:{s:s}, s:{s:[ss], s:s}}, s:[]}},"
		" {s:s, s:s, s:{s:s, s:{s:{s:[ss], s:s}}, s:[]}}]",
		"name", "syncData",
		"description", "Append data to the server's store and report how many items were synced.",
		"inputSchema", "type", "object", "properties",
		"data", "description", "What to sync: an array of items, or a single value.",
		"lastSync", "type", "string", "null",
		"description", "When the previous sync succeeded (RFC 3339), or null.",
		"required",
		"name", "getNotifications",
		"description", "Return the notifications newer than a point in time.",
		"inputSchema", "type", "object", "properties",
		"since", "type", "string", "null",
		"description", "Only notifications after this time (RFC 3339); null for all.",
		"required");
}

/* An optional argument that must be a string or null; false if it is neither. */
static bool arg_string_or_null(json_t *args, const char *name, const char **out) {
	json_t *v = args ? json_object_get(args, name) : NULL;
	*out = json_string_value(v);
	return v == NULL || json_is_null(v) || json_is_string(v);
}

static json_t *sync_data(json_t *args) {
	char cause[PATH_MAX + 256], when[TIME_RFC3339_LEN];
	const char *last_sync;
	json_t *data = args ? json_object_get(args, "data") : NULL;
	if (!arg_string_or_null(args, "lastSync", &last_sync))
		return result_new(true, NULL, "invalid arguments: \"lastSync\" must be a string or null");
	json_t *store = load_array("synced.json", cause, sizeof cause);
	if (store == NULL)
		return result_new(true, NULL, "%s", cause);
	json_t *items = json_is_array(data) ? json_incref(data)
	              : (data && !json_is_null(data)) ? json_pack("[O]", data) : json_array();
	size_t i, n = json_array_size(items);
	json_t *item;
	time_format_rfc3339(time_now_ms(), when);
	json_array_foreach(items, i, item)
		json_array_append_new(store, json_pack("{s:s, s:s?, s:O}", "synced_at", when,
		                                       "last_sync", last_sync, "data", item));
	json_decref(items);
	while (json_array_size(store) > SYNCED_MAX_ENTRIES)
		json_array_remove(store, 0);
	size_t total = json_array_size(store);
	int rc = n > 0 ? save_array("synced.json", store, cause, sizeof cause) : 0;
	json_decref(store);
	if (rc != 0)
		return result_new(true, NULL, "%s", cause);
	return result_new(false, json_pack("{s:I, s:I}", "synced", (json_int_t)n, "total", (json_int_t)total),
	                  "synced %zu items", n);
}

static json_t *get_notifications(json_t *args) {
	char cause[PATH_MAX + 256];
	const char *since_s;
	int64_t since = 0, t;
	if (!arg_string_or_null(args, "since", &since_s) || (since_s && !time_parse_rfc3339(since_s, &since)))
		return result_new(true, NULL, "invalid arguments: \"since\" must be an RFC 3339 time "
		                              "such as \"2026-01-01T00:00:00Z\", or null");
	json_t *all = load_array("notifications.json", cause, sizeof cause);
	if (all == NULL)
		return result_new(true, NULL, "%s", cause);
	json_t *out = json_array(), *n;
	size_t i;
	json_array_foreach(all, i, n) {
		const char *when = json_string_value(json_object_get(n, "time"));
		if (when == NULL || !time_parse_rfc3339(when, &t)) {
			fprintf(stderr, "mcpjob-demo-server: notification %zu has no valid \"time\"; skipped\n", i);
			continue;
		}
		if (since_s == NULL || t > since)
			json_array_append_new(out, json_pack("{s:O?, s:O?, s:O?}", "title",
				json_object_get(n, "title"), "body", json_object_get(n, "body"),
				"payload", json_object_get(n, "payload")));
	}
	json_decref(all);
	size_t count = json_array_size(out);
	return result_new(false, json_pack("{s:o}", "notifications", out), "%zu new notifications", count);
}

json_t *demo_tools_call(const char *name, json_t *args) {
	if (strcmp(name, "syncData") == 0)
		return sync_data(args);
	if (strcmp(name, "getNotifications") == 0)
		return get_notifications(args);
	return result_new(true, NULL, "unknown tool: %s", name);
}
