/*
 * config.c - load and validate mcpjobd.json and its jobs.d/ drop-ins.
 *
 * jansson parses (and gives line:column for syntax errors); everything else
 * is a walk over the tree that checks each key against a table of known
 * keys and each value against its type and range. jansson keeps no
 * positions for values, so a bad value is reported by its key path
 * ("jobs[2] (sync-data).interval"), which is what a person needs to find it.
 *
 * Every problem is collected, not just the first: a person fixing a file
 * should see all of its problems in one go. Checks that span files
 * (duplicate ids and server names, mcp jobs naming undeclared servers) run
 * when every file has been read.
 */
#include "daemon/config.h"
#include "daemon/config_check.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/sha.h>

#include "common/calendar.h"
#include "common/duration.h"
#include "common/netlib.h"
#include "common/strv.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/mcp/mcp_headers.h"
#include "daemon/spawn.h"

#ifndef MCPJOB_DOCDIR /* where make install puts the example; the Makefile sets it */
#define MCPJOB_DOCDIR "/usr/local/share/doc/mcpjobd"
#endif
#define CONFIG_FILE_MAX   (64 * 1024 * 1024) /* 100k jobs take ~10 MB; far bigger is a mistake */
#define CONFIG_DROPINS_MAX 1024
#define CONFIG_ID_MAX      64
#define CONFIG_STRV_MAX    4096             /* entries in any string array */
#define CONFIG_VALUE_SHOW  60               /* bytes of a bad value quoted */

#define DEFAULT_MAX_CONCURRENT   4
#define DEFAULT_MAX_CONN_PER_UID 32
#define DEFAULT_HISTORY_RUNS     100
#define DEFAULT_HISTORY_AGE_MS   (30LL * 86400 * 1000)
#define DEFAULT_CATCHUP_MS       (10LL * 1000)
#define DEFAULT_IDLE_TIMEOUT_MS  (60LL * 1000)

/* Where a job came from, for messages that name two places. */
struct job_origin {
	const char *file; /* the job's source (in the configuration's job arena) */
	char *label;      /* "jobs[2] (sync-data)" */
};

struct loader {
	struct config *cfg;
	struct config_errors *errs;
	const char *file;             /* the file being read */
	struct job_origin *origins;   /* parallel to cfg->jobs */
	char **server_files;          /* parallel to cfg->servers */
	size_t jobs_cap;              /* allocated length of cfg->jobs and origins */
	char machine_id[64];          /* /etc/machine-id, for fixed random delays */
	bool socket_job;              /* parsing a job.add job: its path is "job (id)" */
	bool whole_trees;             /* read each file as one tree (no job streams) */
	bool stream_failed;           /* a streamed job was not valid JSON: load again whole */
	const char *socket_strict_id; /* the job being added, checked as a file's jobs are */
};

/* ---- errors ------------------------------------------------------------ */

void config_errors_add(struct config_errors *errs, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	text_scrub(msg, '?'); /* one error, one line */
	errs->msgs = xreallocarray(errs->msgs, errs->n + 1, sizeof *errs->msgs);
	errs->msgs[errs->n++] = msg;
}

void config_errors_clear(struct config_errors *errs) {
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

char *config_errors_join(const struct config_errors *errs) {
	size_t len = 1;
	for (size_t i = 0; i < errs->n; i++)
		len += strlen(errs->msgs[i]) + 1;
	char *out = xmalloc(len), *p = out;
	for (size_t i = 0; i < errs->n; i++) {
		size_t n = strlen(errs->msgs[i]);
		memcpy(p, errs->msgs[i], n);
		p += n;
		if (i + 1 < errs->n)
			*p++ = '\n';
	}
	*p = '\0';
	return out;
}

/* @s cut to CONFIG_VALUE_SHOW bytes (on a UTF-8 boundary) for a message. */
static char *text_show(const char *s) {
	size_t n = strlen(s);
	if (n <= CONFIG_VALUE_SHOW)
		return xstrdup(s);
	n = text_utf8_cut(s, n, CONFIG_VALUE_SHOW - 3);
	return xasprintf("%.*s...", (int)n, s);
}

/* "path.key", "key" at the top level, "path" when key is NULL. Built by
 * hand: every job makes several, and printf costs more than the rest. */
static char *path_join(const char *path, const char *key) {
	if (key == NULL)
		return xstrdup(path);
	char *cut = strlen(key) > CONFIG_VALUE_SHOW ? text_show(key) : NULL;
	const char *k = cut ? cut : key;
	size_t pl = strlen(path), kl = strlen(k);
	char *out = xmalloc(pl + kl + 2), *o = out;
	if (pl > 0) {
		memcpy(o, path, pl);
		o[pl] = '.';
		o += pl + 1;
	}
	memcpy(o, k, kl + 1);
	free(cut);
	return out;
}

/* Report "FILE: PATH.KEY: MESSAGE". */
static void __attribute__((format(printf, 4, 5)))
err_at(struct loader *ld, const char *path, const char *key, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	char *where = path_join(path, key);
	if (*where == '\0')
		config_errors_add(ld->errs, "%s: %s", ld->file, msg);
	else
		config_errors_add(ld->errs, "%s: %s: %s", ld->file, where, msg);
	free(where);
	free(msg);
}

/* A bad value as the person wrote it, shortened. Caller frees. */
static char *value_show(const json_t *v) {
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (s == NULL)
		return xstrdup("?");
	char *t = text_show(s);
	free(s);
	return t;
}

static void err_type(struct loader *ld, const char *path, const char *key,
                     const json_t *v, const char *expected) {
	char *shown = value_show(v);
	err_at(ld, path, key, "expected %s, got %s", expected, shown);
	free(shown);
}

/* ---- did you mean ------------------------------------------------------ */

/* Optimal string alignment distance, case-insensitive; short strings only. */
static size_t edit_distance(const char *a, const char *b) {
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return SIZE_MAX;
	size_t d[64][64];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			size_t cost = ca != cb;
			size_t best = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* The entry of @known closest to @word, if close enough to be a typo. */
static const char *suggest(const char *word, const char *const *known) {
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; known[i] != NULL; i++) {
		size_t d = edit_distance(word, known[i]);
		if (d < best_d) {
			best_d = d;
			best = known[i];
		}
	}
	size_t limit = strlen(word) < 5 ? 1 : strlen(word) < 9 ? 2 : 3;
	return best_d <= limit ? best : NULL;
}

static bool in_list(const char *s, const char *const *list) {
	for (size_t i = 0; list[i] != NULL; i++) /* first bytes first: every key of every job */
		if (s[0] == list[i][0] && strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* Report every key of @obj not in @known; @hint follows when no typo fits. */
static void check_keys(struct loader *ld, json_t *obj, const char *path,
                       const char *const *known, const char *hint) {
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (in_list(key, known))
			continue;
		const char *near = suggest(key, known);
		if (near != NULL)
			err_at(ld, path, key, "unknown key (did you mean \"%s\"?)", near);
		else if (hint != NULL)
			err_at(ld, path, key, "unknown key (%s)", hint);
		else
			err_at(ld, path, key, "unknown key");
	}
}

/* ---- typed getters: 0 absent, 1 present and valid, -1 reported --------- */

static bool need(struct loader *ld, json_t *obj, const char *path, const char *key) {
	if (json_object_get(obj, key) != NULL)
		return true;
	err_at(ld, path, NULL, "missing \"%s\"", key);
	return false;
}

static int get_object(struct loader *ld, json_t *obj, const char *path, const char *key,
                      json_t **out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	if (!json_is_object(v)) {
		err_type(ld, path, key, v, "an object");
		return -1;
	}
	*out = v;
	return 1;
}

static int get_string(struct loader *ld, json_t *obj, const char *path, const char *key,
                      char **out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v))) {
		err_type(ld, path, key, v, "a string");
		return -1;
	}
	free(*out);
	*out = xstrdup(json_string_value(v));
	return 1;
}

/* A string that must be an absolute path. */
static int get_abspath(struct loader *ld, json_t *obj, const char *path, const char *key,
                       char **out) {
	char *s = NULL;
	int r = get_string(ld, obj, path, key, &s);
	if (r == 1 && s[0] != '/') {
		char *shown = text_show(s);
		err_at(ld, path, key, "\"%s\" is not an absolute path (start it with \"/\")", shown);
		free(shown);
		free(s);
		return -1;
	}
	if (r == 1) {
		free(*out);
		*out = s;
	}
	return r;
}

static int get_bool(struct loader *ld, json_t *obj, const char *path, const char *key,
                    bool *out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		err_type(ld, path, key, v, "true or false");
		return -1;
	}
	*out = json_is_true(v);
	return 1;
}

static int get_int(struct loader *ld, json_t *obj, const char *path, const char *key,
                   long long min, long long max, int64_t *out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	if (!json_is_integer(v)) {
		err_type(ld, path, key, v, "an integer");
		return -1;
	}
	json_int_t n = json_integer_value(v);
	if (n < min || n > max) {
		err_at(ld, path, key, "%lld is out of range (%lld to %lld)", (long long)n, min, max);
		return -1;
	}
	*out = n;
	return 1;
}

static int get_intv(struct loader *ld, json_t *obj, const char *path, const char *key,
                    int min, int max, int *out) {
	int64_t n;
	int r = get_int(ld, obj, path, key, min, max, &n);
	if (r == 1)
		*out = (int)n;
	return r;
}

static int get_duration(struct loader *ld, json_t *obj, const char *path, const char *key,
                        int64_t min_ms, int64_t *out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		err_type(ld, path, key, v, "a duration string such as \"30s\", \"15m\" or \"1h30m\"");
		return -1;
	}
	char *cause = NULL;
	int64_t ms;
	if (json_string_length(v) > CONFIG_VALUE_SHOW) {
		char *shown = value_show(v);
		err_at(ld, path, key, "%s is not a duration (too long)", shown);
		free(shown);
		return -1;
	}
	if (duration_parse(json_string_value(v), &ms, &cause) != 0) {
		err_at(ld, path, key, "%s", cause);
		free(cause);
		return -1;
	}
	if (ms < min_ms) {
		char buf[32];
		err_at(ld, path, key, "\"%s\" is too short (at least %s)", json_string_value(v),
		       duration_format(min_ms, buf, sizeof buf));
		return -1;
	}
	*out = ms;
	return 1;
}

static int get_enum(struct loader *ld, json_t *obj, const char *path, const char *key,
                    const char *const *names, int *out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	const char *s = json_string_value(v);
	for (int i = 0; s != NULL && names[i] != NULL; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 1;
		}
	}
	char *shown = value_show(v), *list = NULL;
	for (int i = 0; names[i] != NULL; i++) {
		char *t = xasprintf("%s%s\"%s\"", list ? list : "", list ? ", " : "", names[i]);
		free(list);
		list = t;
	}
	err_at(ld, path, key, "%s is not one of %s", shown, list);
	free(shown);
	free(list);
	return -1;
}

/* An array of strings; @min_len entries at least. */
static int get_strv(struct loader *ld, json_t *obj, const char *path, const char *key,
                    size_t min_len, char ***out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > CONFIG_STRV_MAX) {
		err_type(ld, path, key, v, "an array of strings");
		return -1;
	}
	if (json_array_size(v) < min_len) {
		err_at(ld, path, key, "must have at least %zu entr%s", min_len,
		       min_len == 1 ? "y" : "ies");
		return -1;
	}
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || json_string_length(e) != strlen(json_string_value(e))) {
			char *k = text_show(key), *where = xasprintf("%s[%zu]", k, i);
			free(k);
			err_type(ld, path, where, e, "a string");
			free(where);
			return -1;
		}
	}
	char **sv = xcalloc(json_array_size(v) + 1, sizeof *sv);
	json_array_foreach(v, i, e)
		sv[i] = xstrdup(json_string_value(e));
	strv_free(*out);
	*out = sv;
	return 1;
}

/* An object of string values, as "KEY=VALUE" strings. */
static int get_env(struct loader *ld, json_t *obj, const char *path, const char *key,
                   char ***out) {
	json_t *env;
	int r = get_object(ld, obj, path, key, &env);
	if (r != 1)
		return r;
	char *epath = path_join(path, key);
	const char *k;
	json_t *v;
	json_object_foreach(env, k, v) {
		if (*k == '\0' || strchr(k, '=') != NULL) {
			char *shown = text_show(k);
			err_at(ld, epath, NULL, "\"%s\" is not a variable name (no \"=\", not empty)",
			       shown);
			free(shown);
		} else if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)))
			err_type(ld, epath, k, v, "a string");
		else
			continue;
		r = -1;
	}
	if (r == 1 && json_object_size(env) > CONFIG_STRV_MAX) {
		err_at(ld, epath, NULL, "has more than %d variables", CONFIG_STRV_MAX);
		r = -1;
	}
	free(epath);
	if (r != 1)
		return r;
	char **sv = xcalloc(json_object_size(env) + 1, sizeof *sv);
	size_t n = 0;
	json_object_foreach(env, k, v)
		sv[n++] = xasprintf("%s=%s", k, json_string_value(v));
	strv_free(*out);
	*out = sv;
	return 1;
}

/* ---- top level ----------------------------------------------------------- */

static bool id_is_valid(const char *s) {
	size_t n = strlen(s);
	if (n == 0 || n > CONFIG_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static void parse_history(struct loader *ld, json_t *obj, const char *path, int *max_runs,
                          int64_t *max_age_ms) {
	static const char *const keys[] = {"max_runs", "max_age", NULL};
	json_t *h;
	if (get_object(ld, obj, path, "history", &h) != 1)
		return;
	char *hpath = path_join(path, "history");
	check_keys(ld, h, hpath, keys, NULL);
	get_intv(ld, h, hpath, "max_runs", 1, 1000000, max_runs);
	get_duration(ld, h, hpath, "max_age", 1000, max_age_ms);
	free(hpath);
}

static void parse_device(struct loader *ld, json_t *root) {
	static const char *const keys[] = {"metered_interfaces", "idle_load", "storage_low_percent",
	                                   "power_supply_path", "unknown", NULL};
	static const char *const unknown_names[] = {"deny", "allow", NULL};
	struct device_settings *d = &ld->cfg->device;
	json_t *dev;
	if (get_object(ld, root, "", "device", &dev) != 1)
		return;
	check_keys(ld, dev, "device", keys, NULL);
	get_strv(ld, dev, "device", "metered_interfaces", 0, &d->metered_interfaces);
	json_t *load = json_object_get(dev, "idle_load");
	if (load != NULL && (!json_is_number(load) || json_number_value(load) < 0 ||
	                     !isfinite(json_number_value(load))))
		err_type(ld, "device", "idle_load", load, "a number of at least 0 (such as 0.5)");
	else if (load != NULL)
		d->idle_load = json_number_value(load);
	get_intv(ld, dev, "device", "storage_low_percent", 0, 100, &d->storage_low_percent);
	get_abspath(ld, dev, "device", "power_supply_path", &d->power_supply_path);
	int allow;
	if (get_enum(ld, dev, "device", "unknown", unknown_names, &allow) == 1)
		d->unknown_allows = allow == 1;
}

/* "64M" style sizes (K, M, G: powers of 1024) or a plain number of bytes. */
static int get_size(struct loader *ld, json_t *obj, const char *path, const char *key,
                    uint64_t min, uint64_t *out) {
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return 0;
	unsigned long long n = 0;
	bool ok = false;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		n = (unsigned long long)json_integer_value(v);
		ok = true;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		n = strtoull(s, &end, 10);
		unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
		if (shift)
			end++;
		ok = errno == 0 && end != s && *end == '\0' && isdigit((unsigned char)s[0]) &&
		     n <= (UINT64_MAX >> shift);
		n <<= shift;
	}
	if (!ok) {
		err_type(ld, path, key, v, "a size in bytes or with K, M or G (such as \"256M\")");
		return -1;
	}
	if (n < min) {
		err_at(ld, path, key, "%llu bytes is too small (at least %llu)", n,
		       (unsigned long long)min);
		return -1;
	}
	*out = n;
	return 1;
}

static void parse_store(struct loader *ld, json_t *root) {
	static const char *const keys[] = {"max_size", NULL};
	static const char *const modes[] = {"batched", "strict", NULL};
	json_t *st;
	get_enum(ld, root, "", "durability", modes, &ld->cfg->durability);
	if (get_object(ld, root, "", "store", &st) != 1)
		return;
	check_keys(ld, st, "store", keys, NULL);
	get_size(ld, st, "store", "max_size", (uint64_t)1 << 20, &ld->cfg->store_max_size);
}

static void parse_settings(struct loader *ld, json_t *root) {
	struct config *cfg = ld->cfg;
	get_intv(ld, root, "", "max_concurrent", 1, 1024, &cfg->max_concurrent);
	get_string(ld, root, "", "admin_group", &cfg->admin_group);
	get_intv(ld, root, "", "max_connections_per_uid", 1, 65536, &cfg->max_connections_per_uid);
	get_intv(ld, root, "", "max_jobs_per_uid", 0, 1000000, &cfg->max_jobs_per_uid);
	get_string(ld, root, "", "default_user", &cfg->default_user);
	parse_history(ld, root, "", &cfg->history_max_runs, &cfg->history_max_age_ms);
	get_duration(ld, root, "", "catchup_spread", 0, &cfg->catchup_spread_ms);
	char **rw = NULL;
	if (get_strv(ld, root, "", "read_write_paths", 0, &rw) == 1) {
		for (size_t i = 0; rw[i] != NULL; i++)
			if (rw[i][0] != '/') {
				char *shown = text_show(rw[i]);
				err_at(ld, "read_write_paths", NULL,
				       "\"%s\" is not an absolute path (start it with \"/\")", shown);
				free(shown);
			}
		strv_free(cfg->read_write_paths);
		cfg->read_write_paths = rw;
	}
	parse_device(ld, root);
	parse_store(ld, root);
}

static void config_defaults(struct config *cfg) {
	cfg->max_concurrent = DEFAULT_MAX_CONCURRENT;
	cfg->admin_group = xstrdup("mcpjob");
	cfg->max_connections_per_uid = DEFAULT_MAX_CONN_PER_UID;
	cfg->max_jobs_per_uid = 100;
	cfg->history_max_runs = DEFAULT_HISTORY_RUNS;
	cfg->history_max_age_ms = DEFAULT_HISTORY_AGE_MS;
	cfg->catchup_spread_ms = DEFAULT_CATCHUP_MS;
	static const char *const metered[] = {"wwan*", "ppp*", "usb*", NULL};
	cfg->device.metered_interfaces = strv_dup((char *const *)metered);
	cfg->device.idle_load = 0.5;
	cfg->device.storage_low_percent = 10;
	cfg->device.power_supply_path = xstrdup("/sys/class/power_supply");
	cfg->device.unknown_allows = true;
}

#ifndef MCPJOB_NO_SPAWN
#define MCPJOB_NO_SPAWN 0
#endif
/* The iOS shape (make MCPJOB_NO_SPAWN=1): what needs a process is refused here. */
#define CONFIG_NO_SPAWN_MSG "this build cannot start processes: use an http MCP server " \
                            "or a cleanup action"

/* ---- mcpServers ---------------------------------------------------------- */

static void auth_def_free(struct mcp_auth_def *a) {
	if (a == NULL)
		return;
	free(a->client_id);
	free(a->client_secret);
	free(a->client_metadata_url);
	free(a->private_key);
	free(a->scope);
	free(a->idp_token_endpoint);
	free(a->idp_client_id);
	free(a->id_token);
	free(a);
}

static struct mcp_auth_def *auth_def_copy(const struct mcp_auth_def *a) {
	if (a == NULL)
		return NULL;
	struct mcp_auth_def *c = xcalloc(1, sizeof *c);
	c->client_id = xstrdup_or_null(a->client_id);
	c->client_secret = xstrdup_or_null(a->client_secret);
	c->client_metadata_url = xstrdup_or_null(a->client_metadata_url);
	c->private_key = xstrdup_or_null(a->private_key);
	c->scope = xstrdup_or_null(a->scope);
	c->grant = a->grant;
	c->idp_token_endpoint = xstrdup_or_null(a->idp_token_endpoint);
	c->idp_client_id = xstrdup_or_null(a->idp_client_id);
	c->id_token = xstrdup_or_null(a->id_token);
	return c;
}

static bool auth_def_equal(const struct mcp_auth_def *a, const struct mcp_auth_def *b) {
	if (a == NULL || b == NULL)
		return a == b;
	return text_equal(a->client_id, b->client_id) &&
	       text_equal(a->client_secret, b->client_secret) &&
	       text_equal(a->client_metadata_url, b->client_metadata_url) &&
	       text_equal(a->private_key, b->private_key) && text_equal(a->scope, b->scope) &&
	       a->grant == b->grant && text_equal(a->idp_token_endpoint, b->idp_token_endpoint) &&
	       text_equal(a->idp_client_id, b->idp_client_id) && text_equal(a->id_token, b->id_token);
}

void config_server_free(struct mcp_server_def *s) {
	if (s == NULL)
		return;
	auth_def_free(s->auth);
	free(s->name);
	strv_free(s->argv);
	strv_free(s->env);
	free(s->cwd);
	free(s->user);
	free(s->url);
	strv_free(s->headers);
	free(s->ca_file);
	json_decref(s->elicit_answers);
	free(s->log_level);
	strv_free(s->roots);
	free(s);
}

struct mcp_server_def *config_server_copy(const struct mcp_server_def *d, const char *user) {
	struct mcp_server_def *c = xcalloc(1, sizeof *c);
	c->name = xstrdup(d->name);
	c->argv = strv_dup(d->argv);
	c->env = strv_dup(d->env);
	c->cwd = xstrdup_or_null(d->cwd);
	c->user = xstrdup_or_null(user);
	c->idle_timeout_ms = d->idle_timeout_ms;
	c->type = d->type;
	c->url = xstrdup_or_null(d->url);
	c->headers = strv_dup(d->headers);
	c->ca_file = xstrdup_or_null(d->ca_file);
	c->auth = auth_def_copy(d->auth);
	c->elicitation = d->elicitation;
	c->elicit_answers = d->elicit_answers ? json_deep_copy(d->elicit_answers) : NULL;
	c->log_level = xstrdup_or_null(d->log_level);
	c->roots = strv_dup(d->roots);
	c->shared = d->shared;
	return c;
}

bool config_server_equal(const struct mcp_server_def *a, const struct mcp_server_def *b) {
	return a->type == b->type && strv_equal(a->argv, b->argv) && strv_equal(a->env, b->env) &&
	       text_equal(a->cwd, b->cwd) && text_equal(a->user, b->user) &&
	       a->idle_timeout_ms == b->idle_timeout_ms && text_equal(a->url, b->url) &&
	       strv_equal(a->headers, b->headers) && text_equal(a->ca_file, b->ca_file) &&
	       auth_def_equal(a->auth, b->auth) && a->elicitation == b->elicitation && text_equal(a->log_level, b->log_level) &&
	       /* A change of roots is told to the running server (roots/list_changed),
	        * it does not make another server. */
	       (a->roots == NULL) == (b->roots == NULL) &&
	       (a->elicit_answers == NULL) == (b->elicit_answers == NULL) &&
	       (a->elicit_answers == NULL || json_equal(a->elicit_answers, b->elicit_answers));
}

/* command + args -> argv. */
static void server_argv(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                        const char *path) {
	char *command = NULL;
	char **args = NULL;
	if (need(ld, obj, path, "command") && get_string(ld, obj, path, "command", &command) == 1 &&
	    *command == '\0')
		err_at(ld, path, "command", "must not be empty");
	get_strv(ld, obj, path, "args", 0, &args);
	if (command != NULL) {
		size_t n = args ? strv_len(args) : 0;
		s->argv = xcalloc(n + 2, sizeof *s->argv);
		s->argv[0] = command;
		for (size_t i = 0; i < n; i++)
			s->argv[i + 1] = args[i];
		free(args);
	} else {
		strv_free(args); /* "args" without a usable "command": an error already */
	}
}

static void server_add(struct loader *ld, struct mcp_server_def *s, const char *path) {
	struct config *cfg = ld->cfg;
	for (size_t i = 0; i < cfg->nservers; i++) {
		if (strcmp(cfg->servers[i]->name, s->name) == 0) {
			err_at(ld, path, NULL, "server \"%s\" is already declared in %s (rename one)",
			       s->name, ld->server_files[i]);
			config_server_free(s);
			return;
		}
	}
	cfg->servers = xreallocarray(cfg->servers, cfg->nservers + 1, sizeof *cfg->servers);
	ld->server_files = xreallocarray(ld->server_files, cfg->nservers + 1,
	                                 sizeof *ld->server_files);
	ld->server_files[cfg->nservers] = xstrdup(ld->file);
	cfg->servers[cfg->nservers++] = s;
}

/* Load a library (common/netlib.h) a key needs: false, with the error at @key, when it cannot be. */
static bool need_lib(struct loader *ld, const char *path, const char *key, const char *why,
                     int (*load)(char **cause)) {
	char *cause = NULL;
	if (load(&cause) == 0)
		return true;
	err_at(ld, path, key, "%s: %s", why, cause);
	free(cause);
	return false;
}

/* "url": absolute http:// or https:// with a host. */
static void server_url(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                       const char *path) {
	if (!need(ld, obj, path, "url") || get_string(ld, obj, path, "url", &s->url) != 1)
		return;
	if (!need_lib(ld, path, "url", "an http server needs libcurl", netlib_need_curl))
		return;
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, s->url, 0);
	if (rc == CURLUE_OK)
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK)
		curl_url_get(u, CURLUPART_HOST, &host, 0);
	char *shown = text_show(s->url);
	if (rc != CURLUE_OK)
		err_at(ld, path, "url", "\"%s\" is not a URL (%s; write e.g. "
		       "\"https://mcp.example.com/mcp\")", shown, curl_url_strerror(rc));
	else if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		err_at(ld, path, "url", "\"%s\": only http:// and https:// URLs are supported", shown);
	else if (host == NULL || *host == '\0')
		err_at(ld, path, "url", "\"%s\" has no host", shown);
	free(shown);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
}

/* "headers": {"Name": "value with ${env:X} or ${credential:Y}"}; values unexpanded. */
static void server_headers(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                           const char *path) {
	json_t *h;
	if (get_object(ld, obj, path, "headers", &h) != 1)
		return;
	char *hpath = path_join(path, "headers");
	const char *k;
	json_t *v;
	size_t n = 0;
	bool ok = json_object_size(h) <= 256;
	if (!ok)
		err_at(ld, hpath, NULL, "has more than 256 headers");
	s->headers = xcalloc(json_object_size(h) + 1, sizeof *s->headers);
	json_object_foreach(h, k, v) {
		char *cause = NULL;
		if (!mcp_headers_name_ok(k)) {
			char *shown = text_show(k);
			err_at(ld, hpath, NULL, "\"%s\" is not a header name", shown);
			free(shown);
			ok = false;
		} else if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v))) {
			/* Not value_show(): the value may be a secret. */
			err_at(ld, hpath, k, "expected a string");
			ok = false;
		} else if (mcp_headers_check(json_string_value(v), &cause) != 0) {
			err_at(ld, hpath, k, "%s", cause);
			free(cause);
			ok = false;
		} else if (ok) {
			s->headers[n++] = xasprintf("%s: %s", k, json_string_value(v));
		}
	}
	free(hpath);
}

/* "elicitation": "decline" | "defaults" | {"answers": {...}}. */
static void server_elicitation(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                               const char *path) {
	static const char *const modes[] = {"decline", "defaults", NULL};
	json_t *v = json_object_get(obj, "elicitation");
	if (v == NULL)
		return;
	if (json_is_object(v)) {
		static const char *const keys[] = {"answers", NULL};
		char *epath = path_join(path, "elicitation");
		json_t *answers;
		check_keys(ld, v, epath, keys, NULL);
		if (need(ld, v, epath, "answers") && get_object(ld, v, epath, "answers", &answers) == 1) {
			s->elicitation = MCP_ELICIT_ANSWERS;
			s->elicit_answers = json_incref(answers);
		}
		free(epath);
		return;
	}
	int mode;
	if (!json_is_string(v)) {
		err_type(ld, path, "elicitation", v, "\"decline\", \"defaults\" or {\"answers\": {...}}");
		return;
	}
	if (get_enum(ld, obj, path, "elicitation", modes, &mode) == 1)
		s->elicitation = mode == 0 ? MCP_ELICIT_DECLINE : MCP_ELICIT_DEFAULTS;
}

/* "roots": ["file:///var/lib/app", ...] */
static void server_roots(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                         const char *path) {
	if (get_strv(ld, obj, path, "roots", 0, &s->roots) != 1)
		return;
	for (size_t i = 0; s->roots[i]; i++) {
		if (strncmp(s->roots[i], "file:///", 8) != 0) {
			char *shown = text_show(s->roots[i]), *k = xasprintf("roots[%zu]", i);
			err_at(ld, path, k, "\"%s\" is not a file:/// URI (write e.g. "
			       "\"file:///var/lib/app\")", shown);
			free(k);
			free(shown);
		}
	}
}

/* "auth.client_secret", "auth.private_key": a ${env:..}/${credential:..}
 * reference (or, for a secret, a literal); never shown in a message. */
static void auth_secret(struct loader *ld, json_t *obj, const char *path, const char *key,
                        bool ref_only, char **out) {
	json_t *v = json_object_get(obj, key);
	char *cause = NULL;
	if (v == NULL)
		return;
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)) ||
	    json_string_length(v) == 0) {
		/* Not value_show(): the value may be a secret. */
		err_at(ld, path, key, "expected a non-empty string (e.g. \"${credential:%s}\")", key);
		return;
	}
	const char *t = json_string_value(v);
	if (mcp_headers_check(t, &cause) != 0) {
		err_at(ld, path, key, "%s", cause);
		free(cause);
	} else if (ref_only && strncmp(t, "${", 2) != 0) {
		err_at(ld, path, key, "must be a reference, e.g. \"${credential:%s}\" (systemd's "
		       "LoadCredential=), not the secret itself", key);
	} else {
		*out = xstrdup(t);
	}
}

/* "auth.client_metadata_url": an https:// URL with a path (a CIMD document). */
static void auth_cimd_url(struct loader *ld, json_t *obj, const char *path, char **out) {
	if (get_string(ld, obj, path, "client_metadata_url", out) != 1)
		return;
	if (!need_lib(ld, path, "client_metadata_url", "an https:// URL is checked by libcurl",
	              netlib_need_curl))
		return;
	CURLU *u = curl_url();
	char *scheme = NULL, *urlpath = NULL;
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, *out, 0);
	if (rc == CURLUE_OK)
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK)
		curl_url_get(u, CURLUPART_PATH, &urlpath, 0);
	if (rc != CURLUE_OK || scheme == NULL || strcmp(scheme, "https") != 0 || urlpath == NULL ||
	    strcmp(urlpath, "/") == 0) {
		char *shown = text_show(*out);
		err_at(ld, path, "client_metadata_url", "\"%s\" is not an https:// URL with a path "
		       "(a Client ID Metadata Document is served at e.g. "
		       "\"https://app.example.com/oauth/client.json\")", shown);
		free(shown);
		free(*out);
		*out = NULL;
	}
	curl_free(scheme);
	curl_free(urlpath);
	curl_url_cleanup(u);
}

/* "grant": "jwt_bearer" (SEP-990): the IdP's token endpoint, our id there, its ID token. */
static void auth_jwt_bearer(struct loader *ld, json_t *v, const char *apath,
                            struct mcp_auth_def *a) {
	static const char *const keys[] = {"idp_token_endpoint", "idp_client_id", "id_token", NULL};
	if (a->grant != MCP_GRANT_JWT_BEARER) {
		for (size_t i = 0; keys[i]; i++)
			if (json_object_get(v, keys[i]) != NULL)
				err_at(ld, apath, keys[i], "only for \"grant\": \"jwt_bearer\"");
		return;
	}
	if (need(ld, v, apath, "idp_token_endpoint") &&
	    get_string(ld, v, apath, "idp_token_endpoint", &a->idp_token_endpoint) == 1 &&
	    strncmp(a->idp_token_endpoint, "https://", 8) != 0 &&
	    strncmp(a->idp_token_endpoint, "http://", 7) != 0) {
		char *shown = text_show(a->idp_token_endpoint);
		err_at(ld, apath, "idp_token_endpoint", "\"%s\" is not an https:// URL", shown);
		free(shown);
	}
	get_string(ld, v, apath, "idp_client_id", &a->idp_client_id);
	if (need(ld, v, apath, "id_token"))
		auth_secret(ld, v, apath, "id_token", true, &a->id_token);
}

/* "auth": {client_id, client_secret, client_metadata_url, private_key, scope, grant, and
 * for jwt_bearer idp_token_endpoint, idp_client_id, id_token}. */
static void server_auth(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                        const char *path) {
	static const char *const keys[] = {"client_id", "client_secret", "client_metadata_url",
	                                   "private_key", "scope", "grant", "idp_token_endpoint",
	                                   "idp_client_id", "id_token", NULL};
	static const char *const grants[] = {"authorization_code", "client_credentials",
	                                     "jwt_bearer", NULL};
	json_t *v;
	if (get_object(ld, obj, path, "auth", &v) != 1)
		return;
	char *apath = path_join(path, "auth");
	struct mcp_auth_def *a = xcalloc(1, sizeof *a);
	int grant = MCP_GRANT_AUTHORIZATION_CODE;
	size_t before = ld->errs->n;
	check_keys(ld, v, apath, keys, NULL);
	if (get_string(ld, v, apath, "client_id", &a->client_id) == 1 && *a->client_id == '\0')
		err_at(ld, apath, "client_id", "must not be empty");
	auth_secret(ld, v, apath, "client_secret", false, &a->client_secret);
	auth_cimd_url(ld, v, apath, &a->client_metadata_url);
	auth_secret(ld, v, apath, "private_key", true, &a->private_key);
	if (get_string(ld, v, apath, "scope", &a->scope) == 1 && *a->scope == '\0')
		err_at(ld, apath, "scope", "must not be empty (leave \"scope\" out to use the "
		       "server's)");
	get_enum(ld, v, apath, "grant", grants, &grant);
	a->grant = (enum mcp_auth_grant_type)grant;
	auth_jwt_bearer(ld, v, apath, a);
	if (a->client_id && a->client_metadata_url)
		err_at(ld, apath, NULL, "\"client_id\" and \"client_metadata_url\" do not go "
		       "together (the metadata URL is the client id; keep one)");
	if ((a->client_secret || a->private_key) && a->client_id == NULL)
		err_at(ld, apath, NULL, "\"%s\" needs the \"client_id\" it was issued for",
		       a->client_secret ? "client_secret" : "private_key");
	if (a->client_secret && a->private_key)
		err_at(ld, apath, NULL, "\"client_secret\" and \"private_key\" do not go together "
		       "(private_key_jwt signs with the key; keep one)");
	if (a->grant == MCP_GRANT_CLIENT_CREDENTIALS &&
	    (a->client_id == NULL || (a->client_secret == NULL && a->private_key == NULL)))
		err_at(ld, apath, "grant", "\"client_credentials\" needs \"client_id\" and "
		       "\"client_secret\" or \"private_key\" (a machine has no person to log in)");
	if (ld->errs->n != before)
		auth_def_free(a);
	else
		s->auth = a;
	free(apath);
}

static void server_remote(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                          const char *path) {
	static const char *const local_only[] = {"command", "args", "env", "cwd", "user", NULL};
	for (size_t i = 0; local_only[i]; i++)
		if (json_object_get(obj, local_only[i]) != NULL)
			err_at(ld, path, local_only[i], "only for \"type\": \"stdio\" servers (a remote "
			       "server is reached at its \"url\")");
	server_url(ld, s, obj, path);
	server_headers(ld, s, obj, path);
	get_abspath(ld, obj, path, "ca_file", &s->ca_file);
	server_auth(ld, s, obj, path);
}

static void server_local(struct loader *ld, struct mcp_server_def *s, json_t *obj,
                         const char *path) {
	static const char *const remote_only[] = {"url", "headers", "ca_file", "auth", NULL};
	for (size_t i = 0; remote_only[i]; i++)
		if (json_object_get(obj, remote_only[i]) != NULL)
			err_at(ld, path, remote_only[i], "only for \"type\": \"http\" or \"sse\" servers");
	server_argv(ld, s, obj, path);
	get_env(ld, obj, path, "env", &s->env);
	get_abspath(ld, obj, path, "cwd", &s->cwd);
	get_string(ld, obj, path, "user", &s->user);
}

static void parse_server(struct loader *ld, const char *name, json_t *obj) {
	static const char *const keys[] = {"type", "command", "args", "env", "cwd", "user",
	                                   "url", "headers", "ca_file", "elicitation",
	                                   "log_level", "roots", "idle_timeout", "shared", "auth",
	                                   NULL};
	static const char *const types[] = {"stdio", "http", "sse", NULL};
	static const char *const log_levels[] = {"debug", "info", "notice", "warning", "error",
	                                         "critical", "alert", "emergency", NULL};
	int level = -1;
	char *path = path_join("mcpServers", name);
	if (!id_is_valid(name)) {
		err_at(ld, path, NULL, "not a valid server name (use 1 to %d of A-Z a-z 0-9 . _ -)",
		       CONFIG_ID_MAX);
	} else if (!json_is_object(obj)) {
		err_type(ld, path, NULL, obj, "an object");
	} else {
		struct mcp_server_def *s = xcalloc(1, sizeof *s);
		int type = json_object_get(obj, "command") == NULL &&
		           json_object_get(obj, "url") != NULL ? MCP_SERVER_HTTP : MCP_SERVER_STDIO;
		s->name = xstrdup(name);
		s->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
		check_keys(ld, obj, path, keys, NULL);
#if MCPJOB_NO_SPAWN
		if (json_object_get(obj, "command") != NULL)
			err_at(ld, path, "command", "%s", CONFIG_NO_SPAWN_MSG);
#endif
		get_enum(ld, obj, path, "type", types, &type);
		s->type = (enum mcp_server_type)type;
		if (s->type == MCP_SERVER_STDIO)
			server_local(ld, s, obj, path);
		else
			server_remote(ld, s, obj, path);
		server_elicitation(ld, s, obj, path);
		get_enum(ld, obj, path, "log_level", log_levels, &level);
		if (level >= 0)
			s->log_level = xstrdup(log_levels[level]);
		server_roots(ld, s, obj, path);
		get_duration(ld, obj, path, "idle_timeout", 0, &s->idle_timeout_ms);
		get_bool(ld, obj, path, "shared", &s->shared);
		server_add(ld, s, path);
	}
	free(path);
}

static void parse_servers(struct loader *ld, json_t *root) {
	json_t *servers;
	if (get_object(ld, root, "", "mcpServers", &servers) != 1)
		return;
	const char *name;
	json_t *v;
	json_object_foreach(servers, name, v)
		parse_server(ld, name, v);
}

/* ---- jobs: pieces ---------------------------------------------------------- */

static void parse_constraints(struct loader *ld, json_t *job, const char *jpath,
                              struct job_constraints *c) {
	static const char *const keys[] = {"network", "charging", "battery_not_low", "idle",
	                                   "storage_not_low", NULL};
	static const char *const nets[] = {"any", "connected", "unmetered", NULL};
	json_t *obj;
	if (get_object(ld, job, jpath, "constraints", &obj) != 1)
		return;
	char *path = path_join(jpath, "constraints");
	check_keys(ld, obj, path, keys, NULL);
	int net;
	if (get_enum(ld, obj, path, "network", nets, &net) == 1)
		c->network = (enum net_req)net;
	get_bool(ld, obj, path, "charging", &c->charging);
	get_bool(ld, obj, path, "battery_not_low", &c->battery_not_low);
	get_bool(ld, obj, path, "idle", &c->idle);
	get_bool(ld, obj, path, "storage_not_low", &c->storage_not_low);
	free(path);
}

static void parse_retry(struct loader *ld, json_t *job, const char *jpath,
                        const struct retry_policy **out) {
	static const char *const keys[] = {"max_attempts", "backoff", "initial", "max", NULL};
	static const char *const kinds[] = {"exponential", "linear", NULL};
	json_t *obj;
	if (get_object(ld, job, jpath, "retry", &obj) != 1)
		return;
	struct retry_policy *r = xmalloc(sizeof *r); /* its own: most jobs share the default */
	*r = **out;
	*out = r;
	char *path = path_join(jpath, "retry");
	check_keys(ld, obj, path, keys, NULL);
	get_intv(ld, obj, path, "max_attempts", 1, 1000, &r->max_attempts);
	int kind;
	if (get_enum(ld, obj, path, "backoff", kinds, &kind) == 1)
		r->backoff = (enum backoff_kind)kind;
	get_duration(ld, obj, path, "initial", 0, &r->initial_ms);
	if (r->initial_ms < 1000)
		r->initial_ms = 1000; /* a zero delay would spin on a failing job */
	int has_max = get_duration(ld, obj, path, "max", 0, &r->max_ms);
	if (has_max == 1 && r->max_ms < r->initial_ms) {
		char a[32], b[32];
		err_at(ld, path, "max", "%s is shorter than \"initial\" (%s); make it at least that",
		       duration_format(r->max_ms, a, sizeof a),
		       duration_format(r->initial_ms, b, sizeof b));
	} else if (has_max == 0 && r->max_ms < r->initial_ms) {
		r->max_ms = r->initial_ms;
	}
	free(path);
}

/* "512M", "2G", "1048576" (bytes), or a JSON integer. */
static int parse_size(const char *s, uint64_t *out) {
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return -1;
	}
	if (*end != '\0' || n > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)n << shift;
	return 0;
}

static void parse_memory(struct loader *ld, json_t *obj, const char *path, uint64_t *out) {
	json_t *v = json_object_get(obj, "memory");
	if (v == NULL)
		return;
	uint64_t n = 0;
	if (json_is_integer(v) && json_integer_value(v) > 0)
		n = (uint64_t)json_integer_value(v);
	else if (json_is_string(v) && parse_size(json_string_value(v), &n) == 0 && n > 0)
		;
	else {
		err_type(ld, path, "memory", v, "a size such as \"512M\", \"2G\" or a number of bytes");
		return;
	}
	*out = n;
}

static void parse_cpu(struct loader *ld, json_t *obj, const char *path, uint64_t *out) {
	json_t *v = json_object_get(obj, "cpu");
	int64_t ms;
	if (v == NULL)
		return;
	if (json_is_integer(v)) {
		int64_t n;
		if (get_int(ld, obj, path, "cpu", 1, INT32_MAX, &n) == 1)
			*out = (uint64_t)n;
	} else if (json_is_string(v)) {
		if (get_duration(ld, obj, path, "cpu", 1000, &ms) == 1)
			*out = (uint64_t)((ms + 999) / 1000); /* RLIMIT_CPU counts whole seconds */
	} else {
		err_type(ld, path, "cpu", v, "a duration such as \"60s\" or a number of seconds");
	}
}

static void parse_limits(struct loader *ld, json_t *job, const char *jpath,
                         struct job_limits **out) {
	static const char *const keys[] = {"memory", "cpu", "nofile", "nproc", NULL};
	json_t *obj;
	if (get_object(ld, job, jpath, "limits", &obj) != 1)
		return;
	struct job_limits *l = *out = xcalloc(1, sizeof *l); /* most jobs have none: no bytes */
	char *path = path_join(jpath, "limits");
	check_keys(ld, obj, path, keys, NULL);
	parse_memory(ld, obj, path, &l->memory);
	parse_cpu(ld, obj, path, &l->cpu);
	int64_t n;
	if (get_int(ld, obj, path, "nofile", 1, INT32_MAX, &n) == 1)
		l->nofile = (uint64_t)n;
	if (get_int(ld, obj, path, "nproc", 1, INT32_MAX, &n) == 1)
		l->nproc = (uint64_t)n;
	free(path);
}

/* ---- jobs: actions ------------------------------------------------------- */

static void parse_exec(struct loader *ld, json_t *obj, const char *path, struct job_def *job) {
	static const char *const keys[] = {"argv", "env", "cwd", NULL};
#if MCPJOB_NO_SPAWN
	err_at(ld, path, NULL, "%s", CONFIG_NO_SPAWN_MSG);
#endif
	check_keys(ld, obj, path, keys, NULL);
	if (need(ld, obj, path, "argv") &&
	    get_strv(ld, obj, path, "argv", 1, &job->exec.argv) == 1 && job->exec.argv[0][0] == '\0')
		err_at(ld, path, "argv[0]", "the program must not be empty");
	get_env(ld, obj, path, "env", &job->exec.env);
	get_abspath(ld, obj, path, "cwd", &job->exec.cwd);
}

static void parse_cleanup(struct loader *ld, json_t *obj, const char *path,
                          struct job_def *job) {
	static const char *const keys[] = {"path", "max_age", NULL};
	check_keys(ld, obj, path, keys, NULL);
	if (need(ld, obj, path, "path") &&
	    get_abspath(ld, obj, path, "path", &job->cleanup.path) == 1 &&
	    strspn(job->cleanup.path, "/") == strlen(job->cleanup.path))
		err_at(ld, path, "path", "refusing to clean up \"/\" (name the cache folder)");
	if (need(ld, obj, path, "max_age"))
		get_duration(ld, obj, path, "max_age", 0, &job->cleanup.max_age_ms);
}

static const char *const template_vars[] = {"last_success", "last_run", "now", "job_id",
                                            "run_id", NULL};

/* Report ${...} in @s that mcp_template_expand() would not know. */
static void check_template(struct loader *ld, const char *path, const char *s) {
	for (const char *p = strstr(s, "${"); p != NULL; p = strstr(p + 2, "${")) {
		const char *end = strchr(p + 2, '}');
		if (end == NULL || end - p - 2 > 64)
			continue; /* not a template; left as written */
		char *name = xstrndup(p + 2, (size_t)(end - p - 2));
		if (!in_list(name, template_vars)) {
			const char *near = suggest(name, template_vars);
			if (near != NULL)
				err_at(ld, path, NULL, "unknown template \"${%s}\" (did you mean \"${%s}\"?)",
				       name, near);
			else
				err_at(ld, path, NULL, "unknown template \"${%s}\" (known: ${last_success}, "
				       "${last_run}, ${now}, ${job_id}, ${run_id})", name);
		}
		free(name);
	}
}

static void check_templates(struct loader *ld, const char *path, json_t *v) {
	const char *key;
	json_t *e;
	size_t i;
	if (json_is_string(v)) {
		check_template(ld, path, json_string_value(v));
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, e) {
			char *sub = path_join(path, key);
			check_templates(ld, sub, e);
			free(sub);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			char *sub = xasprintf("%s[%zu]", path, i);
			check_templates(ld, sub, e);
			free(sub);
		}
	}
}

static void parse_mcp(struct loader *ld, json_t *obj, const char *path, struct job_def *job) {
	static const char *const keys[] = {"server", "tool", "arguments", NULL};
	check_keys(ld, obj, path, keys, NULL);
	if (need(ld, obj, path, "server"))
		get_string(ld, obj, path, "server", &job->mcp.server);
	if (need(ld, obj, path, "tool") && get_string(ld, obj, path, "tool", &job->mcp.tool) == 1 &&
	    job->mcp.tool[0] == '\0')
		err_at(ld, path, "tool", "must not be empty");
	json_t *args = NULL;
	if (get_object(ld, obj, path, "arguments", &args) == 1) {
		char *apath = path_join(path, "arguments");
		check_templates(ld, apath, args);
		free(apath);
		job->mcp.arguments = json_deep_copy(args);
	} else {
		job->mcp.arguments = json_object();
	}
}

static void parse_action(struct loader *ld, json_t *jobobj, const char *jpath,
                         struct job_def *job) {
	static const char *const kinds[] = {"exec", "cleanup", "mcp", NULL};
	json_t *obj;
	if (!need(ld, jobobj, jpath, "action") || get_object(ld, jobobj, jpath, "action", &obj) != 1)
		return;
	char *path = path_join(jpath, "action");
	check_keys(ld, obj, path, kinds, "use one of \"exec\", \"cleanup\" or \"mcp\"");
	int found = 0;
	for (int k = 0; kinds[k] != NULL; k++) {
		json_t *body;
		if (json_object_get(obj, kinds[k]) == NULL)
			continue;
		if (found++ > 0) {
			err_at(ld, path, NULL, "has more than one of \"exec\", \"cleanup\" and \"mcp\" "
			       "(a job does one thing)");
			break;
		}
		if (get_object(ld, obj, path, kinds[k], &body) != 1)
			continue;
		char *apath = path_join(path, kinds[k]);
		job->kind = (enum action_kind)k;
		if (k == ACTION_EXEC)
			parse_exec(ld, body, apath, job);
		else if (k == ACTION_CLEANUP)
			parse_cleanup(ld, body, apath, job);
		else
			parse_mcp(ld, body, apath, job);
		free(apath);
	}
	if (found == 0 && json_object_size(obj) == 0)
		err_at(ld, path, NULL, "is empty (use one of \"exec\", \"cleanup\" or \"mcp\")");
	free(path);
}

/* ---- notify (desktop notifications, daemon/notify.c) --------------------- */

/* A JSON pointer (RFC 6901): "" or "/a/0/b"; "~" only as "~0" or "~1". */
static bool json_pointer_is_valid(const char *p) {
	if (*p != '\0' && *p != '/')
		return false;
	for (; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return false;
	return true;
}

static void parse_notify(struct loader *ld, json_t *jobobj, const char *jpath,
                         const struct job_def *job) {
	static const char *const keys[] = {"on", "items", NULL};
	static const char *const events[] = {"failure", "success", "result", NULL};
	json_t *obj, *on;
	if (get_object(ld, jobobj, jpath, "notify", &obj) != 1)
		return;
	char *path = path_join(jpath, "notify");
	check_keys(ld, obj, path, keys, NULL);
	unsigned bits = 0;
	on = json_object_get(obj, "on");
	if (need(ld, obj, path, "on") && (!json_is_array(on) || json_array_size(on) == 0)) {
		err_type(ld, path, "on", on, "a non-empty array of \"failure\", \"success\", \"result\"");
	} else if (on != NULL) {
		size_t i;
		json_t *e;
		json_array_foreach(on, i, e) {
			int k = -1;
			for (int n = 0; events[n] && json_is_string(e); n++)
				if (strcmp(json_string_value(e), events[n]) == 0)
					k = n;
			char *where = xasprintf("on[%zu]", i);
			if (k < 0) {
				char *shown = value_show(e);
				err_at(ld, path, where, "%s is not one of \"failure\", \"success\", \"result\"",
				       shown);
				free(shown);
			} else if (k == 2 && job->kind != ACTION_MCP) {
				err_at(ld, path, where, "\"result\" is for mcp jobs (it shows items of the "
				       "tool's structuredContent); use \"success\" or \"failure\"");
			}
			free(where);
			bits |= k == 0 ? NOTIFY_ON_FAILURE : k == 1 ? NOTIFY_ON_SUCCESS
			        : k == 2 ? NOTIFY_ON_RESULT : 0;
		}
	}
	char *items = NULL;
	if (get_string(ld, obj, path, "items", &items) == 1 && !json_pointer_is_valid(items)) {
		char *shown = text_show(items);
		err_at(ld, path, "items", "\"%s\" is not a JSON pointer (RFC 6901), such as "
		       "\"/notifications\"", shown);
		free(shown);
	} else if (items == NULL && (bits & NOTIFY_ON_RESULT)) {
		err_at(ld, path, NULL, "\"on\" has \"result\" but \"items\" is missing: name the "
		       "array in structuredContent, such as \"items\": \"/notifications\"");
	}
	if (job->id != NULL)
		json_object_set_new(ld->cfg->notify_index, job->id,
		                    json_pack("{s:i, s:s?}", "on", (int)bits, "items", items));
	free(items);
	free(path);
}

int config_job_notify(const struct config *cfg, const char *id, struct job_notify *out) {
	json_t *n = json_object_get(cfg->notify_index, id);
	if (n == NULL)
		return 0;
	out->on = (unsigned)json_integer_value(json_object_get(n, "on"));
	out->items = json_string_value(json_object_get(n, "items"));
	return 1;
}

/* ---- metrics (daemon/metrics.c) ------------------------------------------- */

static void parse_metrics(struct loader *ld, json_t *root) {
	static const char *const keys[] = {"textfile", NULL};
	json_t *m;
	if (get_object(ld, root, "", "metrics", &m) != 1)
		return;
	check_keys(ld, m, "metrics", keys, NULL);
	char *tf = NULL;
	if (get_abspath(ld, m, "metrics", "textfile", &tf) == 1) {
		size_t n = strlen(tf);
		if (n < 5 || strcmp(tf + n - 5, ".prom") != 0) {
			char *shown = text_show(tf);
			err_at(ld, "metrics", "textfile", "\"%s\" does not end in \".prom\" (node_exporter's "
			       "textfile collector reads only *.prom files)", shown);
			free(shown);
		}
		free(ld->cfg->metrics_textfile);
		ld->cfg->metrics_textfile = tf;
	}
}

/* ---- jobs ---------------------------------------------------------------- */

static void job_defaults(const struct config *cfg, struct job_def *job) {
	job->owner_uid = -1; /* from a file; job.add sets its caller */
	job->enabled = true;
	job->stop_when_unmet = true;
	job->retry = &job_retry_default;
	job->history_max_runs = cfg->history_max_runs;
	job->history_max_age_ms = cfg->history_max_age_ms;
	job->constraints.network = NET_REQ_ANY;
}

/* The job's id if valid (else NULL, reported); sets *@path to its label. */
static char *job_id(struct loader *ld, json_t *obj, size_t idx, char **path) {
	char base[32], *id = NULL;
	if (ld->socket_job)
		snprintf(base, sizeof base, "job");
	else
		snprintf(base, sizeof base, "jobs[%zu]", idx);
	*path = NULL;
	if (!need(ld, obj, base, "id") || get_string(ld, obj, base, "id", &id) != 1) {
		*path = xstrdup(base);
		return NULL;
	}
	if (!id_is_valid(id)) {
		char *shown = text_show(id);
		err_at(ld, base, "id", "\"%s\" is not a valid id (use 1 to %d of A-Z a-z 0-9 . _ -)",
		       shown, CONFIG_ID_MAX);
		free(shown);
		free(id);
		*path = xstrdup(base);
		return NULL;
	}
	size_t bl = strlen(base), il = strlen(id);
	char *p = *path = xmalloc(bl + il + 4); /* "BASE (ID)" */
	memcpy(p, base, bl);
	memcpy(p + bl, " (", 2);
	memcpy(p + bl + 2, id, il);
	memcpy(p + bl + 2 + il, ")", 2);
	return id;
}

/* "schedule" or "cron", parsed in the job's "timezone". */
static void job_calendar(struct loader *ld, json_t *obj, const char *path, struct job_def *job,
                         const char *key) {
	char *cause = NULL;
	if (get_string(ld, obj, path, key, &job->schedule_expr) != 1)
		return;
	int r = job->schedule == SCHEDULE_CRON
	            ? calendar_parse_cron(job->schedule_expr, job->timezone, &job->calendar, &cause)
	            : calendar_parse(job->schedule_expr, job->timezone, &job->calendar, &cause);
	if (r < 0) {
		err_at(ld, path, key, "%s (mcpjobctl calendar%s checks an expression)", cause,
		       job->schedule == SCHEDULE_CRON ? " --cron" : "");
		free(cause);
	}
}

static void job_at(struct loader *ld, json_t *obj, const char *path, struct job_def *job) {
	json_t *v = json_object_get(obj, "at");
	if (!json_is_string(v) || !time_parse_rfc3339(json_string_value(v), &job->at_ms)) {
		char *shown = value_show(v);
		err_at(ld, path, "at", "%s is not a time (use RFC 3339, e.g. "
		       "\"2026-12-24T18:00:00+01:00\")", shown);
		free(shown);
	}
	get_duration(ld, obj, path, "expire_after", 1000, &job->expire_after_ms);
}

/* A delay in [0, bound) that is the same for this job on this machine every time
 * (as systemd's FixedRandomDelay=): a fleet does not hit one server in one second. */
static int64_t job_fixed_offset(const struct loader *ld, const char *id, int64_t bound) {
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *seed = xasprintf("%s/%s", ld->machine_id, id);
	uint64_t v = 0;
	SHA256((const unsigned char *)seed, strlen(seed), md);
	free(seed);
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	return bound > 0 ? (int64_t)(v % (uint64_t)bound) : 0;
}

static void job_timing(struct loader *ld, json_t *obj, const char *path, struct job_def *job) {
	static const char *const kinds[] = {"interval", "schedule", "cron", "at", NULL};
	int n = 0;
	for (int k = 0; kinds[k]; k++)
		if (json_object_get(obj, kinds[k]) != NULL && n++ == 0)
			job->schedule = (enum schedule_kind)k;
	if (n != 1) {
		err_at(ld, path, NULL, n == 0 ? "missing \"interval\" (or \"schedule\", \"cron\" or "
		                                "\"at\": a job needs one schedule)"
		                              : "has more than one of \"interval\", \"schedule\", "
		                                "\"cron\" and \"at\" (use one)");
		job->schedule = n ? job->schedule : SCHEDULE_INTERVAL;
	}
	if (json_object_get(obj, "timezone") != NULL) {
		if (job->schedule != SCHEDULE_CALENDAR && job->schedule != SCHEDULE_CRON)
			err_at(ld, path, "timezone", "applies to \"schedule\" and \"cron\" only");
		else if (get_string(ld, obj, path, "timezone", &job->timezone) == 1 &&
		         strcmp(job->timezone, "UTC") != 0) {
			struct calendar *probe;
			char *cause = NULL;
			if (calendar_parse("daily", job->timezone, &probe, &cause) < 0) {
				err_at(ld, path, "timezone", "%s", cause);
				free(cause);
			} else {
				calendar_free(probe);
			}
		}
	}
	if (n == 1 && job->schedule == SCHEDULE_INTERVAL)
		get_duration(ld, obj, path, "interval", 1000, &job->interval_ms);
	else if (n == 1 && job->schedule == SCHEDULE_AT)
		job_at(ld, obj, path, job);
	else if (n == 1)
		job_calendar(ld, obj, path, job, kinds[job->schedule]);
	if (job->schedule != SCHEDULE_AT && json_object_get(obj, "expire_after") != NULL)
		err_at(ld, path, "expire_after", "applies to one-off (\"at\") jobs only");
	if (get_duration(ld, obj, path, "flex", 0, &job->flex_ms) == 1 && job->interval_ms > 0 &&
	    job->flex_ms > job->interval_ms) {
		char a[32], b[32];
		err_at(ld, path, "flex", "%s is longer than the interval (%s); make it at most that",
		       duration_format(job->flex_ms, a, sizeof a),
		       duration_format(job->interval_ms, b, sizeof b));
	}
	if (get_duration(ld, obj, path, "randomized_delay", 0, &job->randomized_delay_ms) == 1 &&
	    job->id != NULL &&
	    need_lib(ld, path, "randomized_delay", "the job's fixed delay is a SHA-256 from libcrypto",
	             netlib_need_crypto))
		job->random_offset_ms = job_fixed_offset(ld, job->id, job->randomized_delay_ms);
	get_duration(ld, obj, path, "timeout", 0, &job->timeout_ms);
	get_duration(ld, obj, path, "initial_delay", 0, &job->initial_delay_ms);
}

/*
 * Jobs by id, so loading n jobs is O(n): open addressing (linear probing)
 * over their positions in cfg->jobs, slot = position + 1, 0 empty, at most
 * half full - 8 to 16 bytes a job, where a jansson object took ~130.
 */
struct config_job_index {
	uint32_t *slots;
	size_t mask; /* capacity - 1, a power of two */
};

static size_t id_hash(const char *id) {
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (size_t)h;
}

/* The slot holding @id, or the empty slot where it would go. */
static uint32_t *index_slot(const struct config *cfg, const char *id) {
	const struct config_job_index *x = cfg->job_index;
	size_t i = id_hash(id) & x->mask;
	while (x->slots[i] != 0 && strcmp(cfg->jobs[x->slots[i] - 1]->id, id) != 0)
		i = (i + 1) & x->mask;
	return &x->slots[i];
}

static struct config_job_index *index_new(size_t cap) {
	struct config_job_index *x = xmalloc(sizeof *x);
	x->slots = xcalloc(cap, sizeof *x->slots);
	x->mask = cap - 1;
	return x;
}

static void index_free(struct config_job_index *x) {
	if (x != NULL)
		free(x->slots);
	free(x);
}

/* Add cfg->jobs[cfg->njobs - 1] (growing: rehash all when half full). */
static void index_add_last(struct config *cfg) {
	size_t cap = cfg->job_index->mask + 1;
	if (2 * cfg->njobs > cap) {
		index_free(cfg->job_index);
		cfg->job_index = index_new(2 * cap);
		for (size_t i = 0; i + 1 < cfg->njobs; i++)
			*index_slot(cfg, cfg->jobs[i]->id) = (uint32_t)(i + 1);
	}
	*index_slot(cfg, cfg->jobs[cfg->njobs - 1]->id) = (uint32_t)cfg->njobs;
}

/* Position of job @id, or -1. */
static long index_find(const struct config *cfg, const char *id) {
	uint32_t at = *index_slot(cfg, id);
	return at ? (long)at - 1 : -1;
}

/* Takes @job and @path (its label). */
static void job_add(struct loader *ld, struct job_def *job, char *path) {
	struct config *cfg = ld->cfg;
	long at = index_find(cfg, job->id);
	if (at >= 0) {
		size_t i = (size_t)at;
		err_at(ld, path, NULL, "duplicate job id \"%s\" (also %s in %s; ids must be unique)",
		       job->id, ld->origins[i].label, ld->origins[i].file);
		job_def_free(job);
		free(path);
		return;
	}
	if (cfg->njobs == ld->jobs_cap) {
		ld->jobs_cap = ld->jobs_cap ? ld->jobs_cap * 2 : 16;
		cfg->jobs = xreallocarray(cfg->jobs, ld->jobs_cap, sizeof *cfg->jobs);
		ld->origins = xreallocarray(ld->origins, ld->jobs_cap, sizeof *ld->origins);
	}
	job = job_def_pack(cfg->job_arena, job);
	ld->origins[cfg->njobs].file = job->source;
	ld->origins[cfg->njobs].label = path;
	cfg->jobs[cfg->njobs++] = job;
	index_add_last(cfg);
}

static void parse_job(struct loader *ld, json_t *obj, size_t idx) {
	static const char *const keys[] = {
		"id", "name", "description", "interval", "schedule", "cron", "at", "timezone",
		"randomized_delay", "expire_after", "flex", "timeout", "initial_delay", "enabled",
		"on_success", "on_failure",
		"stop_when_unmet", "constraints", "retry", "history", "user", "group", "limits",
		"action", "notify", NULL};
	char *path = NULL;
	if (!json_is_object(obj)) {
		path = xasprintf("jobs[%zu]", idx);
		err_type(ld, path, NULL, obj, "an object");
		free(path);
		return;
	}
	struct job_def *job = xcalloc(1, sizeof *job);
	job_defaults(ld->cfg, job);
	job->id = job_id(ld, obj, idx, &path);
	job->source = xstrdup(ld->file);
	check_keys(ld, obj, path, keys, NULL);
	get_string(ld, obj, path, "name", &job->name);
	get_string(ld, obj, path, "description", &job->description);
	job_timing(ld, obj, path, job);
	get_bool(ld, obj, path, "enabled", &job->enabled);
	get_bool(ld, obj, path, "stop_when_unmet", &job->stop_when_unmet);
	parse_constraints(ld, obj, path, &job->constraints);
	parse_retry(ld, obj, path, &job->retry);
	parse_history(ld, obj, path, &job->history_max_runs, &job->history_max_age_ms);
	get_string(ld, obj, path, "user", &job->user);
	get_string(ld, obj, path, "group", &job->group);
	parse_limits(ld, obj, path, &job->limits);
	parse_action(ld, obj, path, job);
	get_strv(ld, obj, path, "on_success", 0, &job->on_success);
	get_strv(ld, obj, path, "on_failure", 0, &job->on_failure);
	parse_notify(ld, obj, path, job);
	/* No "name": the id; no "description": "" (job_def_pack(), without copies). */
	if (job->id != NULL) {
		job_add(ld, job, path); /* kept for the checks across files */
	} else {
		job_def_free(job);
		free(path);
	}
}

static void parse_jobs(struct loader *ld, json_t *root) {
	json_t *jobs = json_object_get(root, "jobs");
	if (jobs == NULL)
		return;
	if (!json_is_array(jobs)) {
		err_type(ld, "", "jobs", jobs, "an array of job objects");
		return;
	}
	size_t i;
	json_t *j;
	json_array_foreach(jobs, i, j)
		parse_job(ld, j, i);
}

/* ---- files --------------------------------------------------------------- */

/* Whether a string in @v holds a NUL; no allocation, so the common case
 * (none) costs one walk of the tree. */
static bool has_nul(const json_t *v, int depth) {
	const char *key;
	size_t i;
	json_t *e;
	if (json_is_string(v))
		return json_string_length(v) != strlen(json_string_value(v));
	if (depth > 64)
		return false;
	json_object_foreach((json_t *)v, key, e)
		if (has_nul(e, depth + 1))
			return true;
	json_array_foreach(v, i, e)
		if (has_nul(e, depth + 1))
			return true;
	return false;
}

/* The path of @v's first string holding a NUL (C code would read it cut
 * short: "a\u0000b" as "a"), or NULL. Paths are built only along the branch
 * that holds it. */
static char *nul_path(const json_t *v, const char *path, int depth) {
	const char *key;
	size_t i;
	json_t *e;
	char *sub, *found;
	if (!has_nul(v, depth))
		return NULL;
	if (json_is_string(v))
		return xstrdup(path);
	json_object_foreach((json_t *)v, key, e) {
		if (!has_nul(e, depth + 1))
			continue;
		sub = path_join(path, key);
		found = nul_path(e, sub, depth + 1);
		free(sub);
		return found;
	}
	json_array_foreach(v, i, e) {
		if (!has_nul(e, depth + 1))
			continue;
		sub = xasprintf("%s[%zu]", path, i);
		found = nul_path(e, sub, depth + 1);
		free(sub);
		return found;
	}
	return NULL;
}

/* The text of @file (NUL-terminated, *@len bytes); NULL with the problem reported. */
static char *read_text(struct loader *ld, const char *file, size_t *len) {
	FILE *fp = fopen(file, "r");
	struct stat st;
	if (fp == NULL) {
		config_errors_add(ld->errs, "%s: cannot open: %s", file, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		config_errors_add(ld->errs, "%s: not a regular file of at most %d MiB", file,
		                  CONFIG_FILE_MAX / (1024 * 1024));
		fclose(fp);
		return NULL;
	}
	/* Read whole, parsed from memory: json_loadf() takes stdio's lock for
	 * every byte, a third of loading 100k jobs. */
	char *text = xmalloc((size_t)st.st_size + 1);
	*len = fread(text, 1, (size_t)st.st_size + 1, fp);
	bool failed = ferror(fp) != 0;
	int err = errno;
	fclose(fp);
	if (failed || *len > (size_t)st.st_size) {
		config_errors_add(ld->errs, "%s: cannot read: %s", file,
		                  failed ? strerror(err) : "it grew while it was read; try again");
		free(text);
		return NULL;
	}
	text[*len] = '\0';
	return text;
}

/* @text parsed; NULL with the problem reported. */
static json_t *parse_text(struct loader *ld, const char *file, const char *text, size_t len) {
	json_error_t jerr;
	/* NULs are let through the parser so the error can name the key. */
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (root == NULL) {
		config_errors_add(ld->errs, "%s:%d:%d: %s", file, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	char *nul = nul_path(root, "", 0);
	if (nul != NULL) {
		config_errors_add(ld->errs, "%s: %s: a string holds a NUL character (\\u0000); "
		                  "remove it", file, *nul ? nul : "(top level)");
		free(nul);
		json_decref(root);
		return NULL;
	}
	if (!json_is_object(root)) {
		config_errors_add(ld->errs, "%s: the top level must be an object ({ ... })", file);
		json_decref(root);
		return NULL;
	}
	return root;
}

/*
 * A file's "jobs" read one job at a time: 100k jobs as one jansson tree
 * took a third of the load to build, free and give back to malloc, and
 * 100 MB at its peak. The top level's "jobs": [...] is found by delimiting
 * values (strings, brackets; jansson checks everything), its elements are
 * cut out of the text for the tree of the rest ("jobs": []), and each is
 * parsed alone when parse_jobs_stream() gets to it.
 *
 * The errors must be the ones the whole tree gives. A file that does not
 * delimit cleanly is read as one tree at once; an element that does not
 * parse (or holds a NUL) is found only after earlier jobs were taken, so
 * the whole load starts over with whole trees (ld->stream_failed).
 */
#define STREAM_MAX_DEPTH 1000 /* deeper jobs are read whole (jansson stops at 2048) */

struct jobs_stream {
	size_t *spans; /* start, end of each element in the text */
	size_t n;
};

static size_t skip_ws(const char *t, size_t n, size_t i) {
	while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
		i++;
	return i;
}

/* Past the string at t[i] ('"'); 0 when it does not end. */
static size_t skip_string(const char *t, size_t n, size_t i) {
	for (i++; i < n; i++) {
		if (t[i] == '\\')
			i++;
		else if (t[i] == '"')
			return i + 1;
	}
	return 0;
}

/* Past the value at t[i], only delimited (jansson checks it); 0 when it
 * cannot be. */
static size_t skip_value(const char *t, size_t n, size_t i) {
	if (i >= n)
		return 0;
	if (t[i] == '"')
		return skip_string(t, n, i);
	if (t[i] != '{' && t[i] != '[') {
		size_t from = i;
		while (i < n && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' &&
		       t[i] != '\t' && t[i] != '\n' && t[i] != '\r')
			i++;
		return i > from ? i : 0;
	}
	for (int depth = 0; i < n;) {
		if (t[i] == '"') {
			if ((i = skip_string(t, n, i)) == 0)
				return 0;
			continue;
		}
		if ((t[i] == '{' || t[i] == '[') && ++depth > STREAM_MAX_DEPTH)
			return 0;
		if ((t[i] == '}' || t[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return 0;
}

/* The elements of the array at t[i] ('['); its end, 0 when not clean. */
static size_t find_elements(const char *t, size_t n, size_t i, struct jobs_stream *js) {
	size_t cap = 0;
	i = skip_ws(t, n, i + 1);
	if (i < n && t[i] == ']')
		return i + 1;
	for (;;) {
		size_t end = skip_value(t, n, i);
		if (end == 0)
			return 0;
		if (js->n == cap) {
			cap = cap ? 2 * cap : 1024;
			js->spans = xreallocarray(js->spans, cap, 2 * sizeof *js->spans);
		}
		js->spans[2 * js->n] = i;
		js->spans[2 * js->n++ + 1] = end;
		i = skip_ws(t, n, end);
		if (i < n && t[i] == ']')
			return i + 1;
		if (i >= n || t[i] != ',')
			return 0;
		i = skip_ws(t, n, i + 1);
	}
}

/* Where the top level's "jobs" array is: true with [*@open, *@close) and
 * its elements in @js; false (and @js empty) when not found or not clean. */
static bool find_jobs(const char *t, size_t n, size_t *open, size_t *close,
                      struct jobs_stream *js) {
	size_t i = skip_ws(t, n, 0);
	if (i >= n || t[i] != '{')
		return false;
	for (i = skip_ws(t, n, i + 1); i < n && t[i] == '"';) {
		size_t key = i, key_end = skip_string(t, n, i);
		if (key_end == 0)
			return false;
		size_t v = skip_ws(t, n, key_end);
		if (v >= n || t[v] != ':')
			return false;
		v = skip_ws(t, n, v + 1);
		if (key_end - key == 6 && memcmp(t + key, "\"jobs\"", 6) == 0 && v < n && t[v] == '[') {
			*open = v;
			*close = find_elements(t, n, v, js);
			if (*close != 0)
				return true;
			free(js->spans);
			*js = (struct jobs_stream){0};
			return false;
		}
		if ((i = skip_value(t, n, v)) == 0)
			return false;
		i = skip_ws(t, n, i);
		if (i < n && t[i] == ',')
			i = skip_ws(t, n, i + 1);
	}
	return false;
}

/*
 * Parse @file; NULL with the problem reported. With @js, a top-level "jobs"
 * array that can be streamed is left out of the tree ("jobs": []) and its
 * elements are in @js, in the text handed back in *@text (to free).
 */
static json_t *read_json(struct loader *ld, const char *file, struct jobs_stream *js,
                         char **text) {
	size_t len, open, close;
	char *t = read_text(ld, file, &len);
	json_t *root = NULL;
	if (t == NULL)
		return NULL;
	if (js != NULL && find_jobs(t, len, &open, &close, js)) {
		/* The text without the elements: "[]" (its positions need not be
		 * the file's: an error in it is reported from the whole tree). */
		size_t head = open + 1, tail = len - (close - 1);
		char *rest = xmalloc(head + tail + 1);
		memcpy(rest, t, head);
		memcpy(rest + head, t + close - 1, tail + 1);
		root = json_loadb(rest, head + tail, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
		free(rest);
		if (root != NULL && (!json_is_object(root) || has_nul(root, 0))) {
			json_decref(root);
			root = NULL;
		}
		if (root != NULL) {
			*text = t;
			return root;
		}
		free(js->spans); /* the rest has a problem: the whole tree names it */
		*js = (struct jobs_stream){0};
	}
	root = parse_text(ld, file, t, len);
	free(t);
	return root;
}

/* Element @i of @js as a tree; NULL when it is not valid JSON or holds a NUL. */
static json_t *stream_tree(const char *text, const struct jobs_stream *js, size_t i) {
	size_t from = js->spans[2 * i], to = js->spans[2 * i + 1];
	json_t *job = json_loadb(text + from, to - from, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	/* A NUL can only come from a \u0000 in the text: no need to walk the tree. */
	if (job != NULL && memmem(text + from, to - from, "\\u0000", 6) != NULL && has_nul(job, 2)) {
		json_decref(job);
		job = NULL;
	}
	return job;
}

/* Take @job (element @i), or on a NULL stop the stream: load() starts over
 * with whole trees, which name the problem. The tree stays the caller's. */
static void stream_take(struct loader *ld, json_t *job, size_t i) {
	if (job == NULL)
		ld->stream_failed = true;
	else if (!ld->stream_failed)
		parse_job(ld, job, i);
}

/*
 * A long stream is parsed a chunk ahead by a second thread: jansson's parse
 * and the tree's free are about 60% of a job's instructions, its checks the
 * rest, and on two CPUs they overlap (100,000 jobs: bench/README.md). The
 * thread reads only the text and writes only its chunk: it frees the trees
 * the loop took from that chunk, then parses the next ones into it. It
 * frees them too because glibc's malloc gives each thread its own arena,
 * and a free from another thread takes that arena's lock for every block,
 * against the thread that allocates: freed by the loop, the load was 1.6x
 * slower, not faster. Each chunk is handed over under the mutex twice
 * (posted, done), so a hand-off's cost (tens of us across vCPUs) is paid
 * per 512 jobs.
 */
#define STREAM_CHUNK 512
#define STREAM_THREADED_MIN (2 * STREAM_CHUNK)

struct stream_chunk {
	json_t *trees[STREAM_CHUNK];
	size_t from, n;
};

struct stream_worker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const char *text;
	const struct jobs_stream *js;
	struct stream_chunk *chunk; /* posted: the thread empties and fills it */
	bool busy, quit;
};

static void chunk_empty(struct stream_chunk *c) {
	for (size_t k = 0; k < c->n; k++) {
		json_decref(c->trees[k]);
		c->trees[k] = NULL;
	}
	c->n = 0;
}

static void *stream_work(void *arg) {
	struct stream_worker *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->busy && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->busy)
			break; /* quit, nothing posted */
		struct stream_chunk *c = w->chunk;
		pthread_mutex_unlock(&w->mu);
		chunk_empty(c);
		size_t from = c->from, n = w->js->n - from < STREAM_CHUNK ? w->js->n - from : STREAM_CHUNK;
		for (size_t k = 0; k < n; k++)
			c->trees[k] = stream_tree(w->text, w->js, from + k);
		c->n = n;
		pthread_mutex_lock(&w->mu);
		w->busy = false;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Hand @c to the thread: its trees freed, elements from @from parsed in. */
static void stream_post(struct stream_worker *w, struct stream_chunk *c, size_t from) {
	pthread_mutex_lock(&w->mu);
	c->from = from;
	w->chunk = c;
	w->busy = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void stream_wait(struct stream_worker *w) {
	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* The jobs of @js in order, parsed a chunk ahead; false (nothing taken)
 * when the thread cannot be started. */
static bool parse_jobs_threaded(struct loader *ld, const char *text,
                                const struct jobs_stream *js) {
	struct stream_worker w = {.text = text, .js = js};
	struct stream_chunk *ready = xcalloc(1, sizeof *ready), *next = xcalloc(1, sizeof *next);
	sigset_t all, old;
	pthread_t th;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	sigfillset(&all); /* signals stay with the loop's thread */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&th, NULL, stream_work, &w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0) {
		stream_post(&w, ready, 0);
		for (;;) {
			stream_wait(&w); /* @ready is filled, @next is the loop's */
			size_t after = ready->from + ready->n;
			bool more = after < js->n && !ld->stream_failed;
			if (more)
				stream_post(&w, next, after);
			for (size_t k = 0; k < ready->n; k++)
				stream_take(ld, ready->trees[k], ready->from + k);
			if (!more)
				break;
			struct stream_chunk *t = ready;
			ready = next;
			next = t;
		}
		pthread_mutex_lock(&w.mu);
		w.quit = true;
		pthread_cond_broadcast(&w.cv);
		pthread_mutex_unlock(&w.mu);
		pthread_join(th, NULL);
	}
	chunk_empty(ready); /* the last chunk taken (and the one before) */
	chunk_empty(next);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	free(ready);
	free(next);
	return rc == 0;
}

/* The jobs of @js, one tree at a time, as parse_jobs() would take them. */
static void parse_jobs_stream(struct loader *ld, const char *text, const struct jobs_stream *js) {
	if (js->n >= STREAM_THREADED_MIN && parse_jobs_threaded(ld, text, js))
		return;
	for (size_t i = 0; i < js->n && !ld->stream_failed; i++) {
		json_t *job = stream_tree(text, js, i);
		stream_take(ld, job, i);
		json_decref(job);
	}
}

static void load_main(struct loader *ld, const char *file) {
	static const char *const keys[] = {
		"max_concurrent", "admin_group", "max_connections_per_uid", "max_jobs_per_uid",
		"default_user", "history", "catchup_spread", "read_write_paths", "device",
		"mcpServers", "jobs", "metrics", "durability", "store", NULL};
	if (access(file, F_OK) != 0 && errno == ENOENT) {
		config_errors_add(ld->errs, "%s: %s: create it (see mcpjobd.json(5); an example "
		                  "is %s/examples/mcpjobd.json) or name another with --config",
		                  file, strerror(ENOENT), MCPJOB_DOCDIR);
		return;
	}
	struct jobs_stream js = {0};
	char *text = NULL;
	json_t *root = read_json(ld, file, ld->whole_trees ? NULL : &js, &text);
	if (root == NULL)
		return;
	ld->file = file;
	check_keys(ld, root, "", keys, NULL);
	parse_settings(ld, root); /* first: jobs take their history defaults from it */
	parse_metrics(ld, root);
	parse_servers(ld, root);
	parse_jobs(ld, root);
	parse_jobs_stream(ld, text, &js);
	json_decref(root);
	free(js.spans);
	free(text);
}

static void load_dropin(struct loader *ld, const char *file) {
	static const char *const keys[] = {"jobs", "mcpServers", NULL};
	struct jobs_stream js = {0};
	char *text = NULL;
	json_t *root = read_json(ld, file, ld->whole_trees ? NULL : &js, &text);
	if (root == NULL)
		return;
	ld->file = file;
	check_keys(ld, root, "", keys,
	           "a jobs.d file holds only \"jobs\" and \"mcpServers\"; settings go in the main file");
	parse_servers(ld, root);
	parse_jobs(ld, root);
	parse_jobs_stream(ld, text, &js);
	json_decref(root);
	free(js.spans);
	free(text);
}

static int dropin_filter(const struct dirent *d) {
	return d->d_name[0] != '.' && fnmatch("*.json", d->d_name, 0) == 0;
}

/* jobs.d/ beside @main, sorted by name; a missing folder is fine. */
static void load_dropins(struct loader *ld, const char *main) {
	const char *slash = strrchr(main, '/');
	char *dir = slash ? xasprintf("%.*sjobs.d", (int)(slash - main + 1), main)
	                  : xstrdup("jobs.d");
	struct dirent **names = NULL;
	int n = scandir(dir, &names, dropin_filter, alphasort);
	if (n < 0 && errno != ENOENT)
		config_errors_add(ld->errs, "%s: cannot read the folder: %s", dir, strerror(errno));
	else if (n > CONFIG_DROPINS_MAX)
		config_errors_add(ld->errs, "%s: more than %d files", dir, CONFIG_DROPINS_MAX);
	for (int i = 0; i < n; i++) {
		if (n <= CONFIG_DROPINS_MAX) {
			char *file = xasprintf("%s/%s", dir, names[i]->d_name);
			load_dropin(ld, file);
			free(file);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
}

/* ---- checks across files --------------------------------------------------- */

static char *server_list(const struct config *cfg) {
	if (cfg->nservers == 0)
		return xstrdup("none is declared");
	char *list = xstrdup("declared:");
	for (size_t i = 0; i < cfg->nservers; i++) {
		char *t = xasprintf("%s%s %s", list, i ? "," : "", cfg->servers[i]->name);
		free(list);
		list = t;
	}
	return list;
}

/* --- chains: on_success / on_failure --------------------------------------- */

static void chain_targets_exist(struct loader *ld, size_t i, const char *key, char **ids) {
	for (size_t k = 0; ids && ids[k]; k++) {
		if (config_find_job(ld->cfg, ids[k]) != NULL)
			continue;
		char *shown = text_show(ids[k]);
		config_errors_add(ld->errs, "%s: %s.%s[%zu]: there is no job \"%s\" to start after "
		                  "this one", ld->origins[i].file, ld->origins[i].label, key, k, shown);
		free(shown);
	}
}

/* Depth-first: 0 new, 1 on the current path, 2 done. Reports the first cycle. */
static bool chain_visit(struct loader *ld, size_t i, unsigned char *mark, size_t *path,
                        size_t depth) {
	struct config *cfg = ld->cfg;
	mark[i] = 1;
	path[depth] = i;
	char **lists[2] = {cfg->jobs[i]->on_success, cfg->jobs[i]->on_failure};
	for (int l = 0; l < 2; l++) {
		for (size_t k = 0; lists[l] && lists[l][k]; k++) {
			long at = index_find(cfg, lists[l][k]);
			if (at < 0)
				continue;
			size_t t = (size_t)at;
			if (mark[t] == 1) { /* t is on the path: path[from..depth] -> t is the cycle */
				size_t from = 0;
				while (path[from] != t)
					from++;
				char *chain = xstrdup(cfg->jobs[t]->id);
				for (size_t d = from + 1; d <= depth; d++) {
					char *more = xasprintf("%s -> %s", chain, cfg->jobs[path[d]]->id);
					free(chain);
					chain = more;
				}
				config_errors_add(ld->errs, "%s: %s.%s: the jobs it starts come back to it "
				                  "(%s -> %s): a chain must not be a cycle",
				                  ld->origins[i].file, ld->origins[i].label,
				                  l ? "on_failure" : "on_success", chain, cfg->jobs[t]->id);
				free(chain);
				return true;
			}
			if (mark[t] == 0 && chain_visit(ld, t, mark, path, depth + 1))
				return true;
		}
	}
	mark[i] = 2;
	return false;
}

static void check_chains(struct loader *ld) {
	struct config *cfg = ld->cfg;
	unsigned char *mark = xcalloc(cfg->njobs ? cfg->njobs : 1, 1);
	size_t *path = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *path);
	for (size_t i = 0; i < cfg->njobs; i++) {
		/* An added job's targets were checked when it was added; one gone since is
		 * reported when the chain would start it. */
		if (cfg->jobs[i]->owner_uid < 0 || (ld->socket_strict_id &&
		                                    strcmp(cfg->jobs[i]->id, ld->socket_strict_id) == 0)) {
			chain_targets_exist(ld, i, "on_success", cfg->jobs[i]->on_success);
			chain_targets_exist(ld, i, "on_failure", cfg->jobs[i]->on_failure);
		}
	}
	for (size_t i = 0; i < cfg->njobs; i++)
		if (mark[i] == 0 && chain_visit(ld, i, mark, path, 0))
			break;
	free(mark);
	free(path);
}

/* Job @i's mcp server must be declared; false (reported) when it is not. */
static bool check_server_declared(struct loader *ld, size_t i) {
	struct config *cfg = ld->cfg;
	const struct job_def *job = cfg->jobs[i];
	if (job->kind != ACTION_MCP || job->mcp.server == NULL ||
	    config_find_server(cfg, job->mcp.server) != NULL)
		return true;
	char *list = server_list(cfg), *shown = text_show(job->mcp.server);
	config_errors_add(ld->errs, "%s: %s.action.mcp.server: server \"%s\" is not declared "
	                  "in \"mcpServers\" (%s)", ld->origins[i].file,
	                  ld->origins[i].label, shown, list);
	free(shown);
	free(list);
	return false;
}

static void check_servers_declared(struct loader *ld) {
	for (size_t i = 0; i < ld->cfg->njobs; i++)
		if (ld->cfg->jobs[i]->owner_uid < 0) /* socket jobs were checked as they came */
			check_server_declared(ld, i);
}

static void loader_clear(struct loader *ld) {
	for (size_t i = 0; i < ld->cfg->njobs; i++) {
		free(ld->origins[i].label);
	}
	free(ld->origins);
	for (size_t i = 0; i < ld->cfg->nservers; i++)
		free(ld->server_files[i]);
	free(ld->server_files);
}

/* ---- identities (who jobs and servers run as) ----------------------------- */

/*
 * Only root can start processes as someone else, so a non-root daemon
 * naming another user is a mistake to report now rather than at every run.
 * A system daemon running as root runs unnamed jobs as "nobody": running
 * as root has to be asked for ("user": "root").
 */
/* Whether @user (name or number) is the effective user of this process. */
static bool user_is_self(const char *user) {
	struct passwd *pw = getpwnam(user);
	char *end;
	if (pw != NULL)
		return pw->pw_uid == geteuid();
	unsigned long n = strtoul(user, &end, 10);
	return *user != '\0' && *end == '\0' && (uid_t)n == geteuid();
}

static void check_user(struct config_errors *errs, const char *file, const char *at,
                       const char *key, const char *user) {
	if (user == NULL || user_is_self(user))
		return;
	config_errors_add(errs, "%s: %s%s: \"%s\": only root can run jobs as another user; "
	                  "remove \"%s\" or run mcpjobd as root", file, at, key, user, key);
}

static void apply_identity_rules(struct loader *ld, enum config_identity_mode identity_mode) {
	struct config *cfg = ld->cfg;
	if (identity_mode == CONFIG_IDENTITY_OFF)
		return;
	if (geteuid() == 0) {
		if (identity_mode == CONFIG_IDENTITY_SYSTEM && cfg->default_user == NULL)
			cfg->default_user = xstrdup("nobody");
		return;
	}
	check_user(ld->errs, cfg->path, "", "default_user", cfg->default_user);
	for (size_t i = 0; i < cfg->njobs; i++) {
		char *at = xasprintf("%s.", ld->origins[i].label);
		check_user(ld->errs, ld->origins[i].file, at, "user", cfg->jobs[i]->user);
		free(at);
	}
	for (size_t i = 0; i < cfg->nservers; i++) {
		char *at = xasprintf("mcpServers.%s.", cfg->servers[i]->name);
		check_user(ld->errs, ld->server_files[i], at, "user", cfg->servers[i]->user);
		free(at);
	}
}

/* The machine's id, or "" where there is none (a container, a test). */
static void read_machine_id(char *buf, size_t len) {
	const char *f = getenv("MCPJOB_MACHINE_ID_FILE");
	FILE *fp = fopen(f && *f ? f : "/etc/machine-id", "re");
	buf[0] = '\0';
	if (fp == NULL)
		return;
	if (fgets(buf, (int)len, fp) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(fp);
}

int config_job_identity(const struct config *cfg, const struct job_def *def,
                        const struct spawn_identity **out, char **cause) {
	const char *user = def->user ? def->user : cfg->default_user;
	return spawn_identities_get(cfg->identities, user, user ? def->group : NULL, out, cause);
}

/* Every job's identity now, so no run looks one up (failures are kept for
 * the runs to report). */
static void resolve_identities(struct config *cfg) {
	const struct spawn_identity *id;
	char *cause = NULL;
	cfg->identities = spawn_identities_new();
	for (size_t i = 0; i < cfg->njobs; i++) {
		if (config_job_identity(cfg, cfg->jobs[i], &id, &cause) < 0) {
			free(cause);
			cause = NULL;
		}
	}
}

/* Take back the job just added (a socket job with a problem). */
static void loader_drop_last_job(struct loader *ld) {
	struct config *cfg = ld->cfg;
	size_t i = --cfg->njobs;
	/* The last one in: no other id's probe passes its slot, so emptying it is enough. */
	*index_slot(cfg, cfg->jobs[i]->id) = 0;
	job_def_free(cfg->jobs[i]);
	free(ld->origins[i].label);
}

/*
 * Jobs added over the socket, after the files, each in its own "file"
 * ("job.add by uid N") so messages say where it came from. One with a
 * problem is left out (its errors go to socket_errs when given).
 */
static void load_socket_jobs(struct loader *ld, const struct config_load_opts *opts) {
	if (opts == NULL)
		return;
	struct config_errors *keep = ld->errs;
	for (size_t i = 0; i < opts->nsocket_jobs; i++) {
		const struct config_socket_job *sj = &opts->socket_jobs[i];
		char *file = xasprintf("job.add by uid %d", sj->uid);
		bool strict = opts->last_socket_job_strict && i + 1 == opts->nsocket_jobs;
		if (strict)
			ld->socket_strict_id = json_string_value(json_object_get(sj->job, "id"));
		struct config_errors *sink = opts->socket_errs && !strict ? opts->socket_errs : keep;
		size_t before = sink->n, njobs = ld->cfg->njobs;
		ld->errs = sink;
		ld->file = file;
		ld->socket_job = true;
		parse_job(ld, sj->job, i);
		if (ld->cfg->njobs > njobs) {
			size_t last = ld->cfg->njobs - 1;
			struct job_def *def = ld->cfg->jobs[last];
			def->owner_uid = sj->uid;
			/* Without "user" it runs as whoever added it, like a personal crontab. */
			struct passwd *pw = def->user ? NULL : getpwuid((uid_t)sj->uid);
			if (def->user == NULL && pw != NULL)
				def->user = job_arena_strdup(ld->cfg->job_arena, pw->pw_name);
			else if (def->user == NULL)
				config_errors_add(sink, "%s: job (%s): uid %d has no user name to run as",
				                  file, def->id, sj->uid);
			/* It parsed, but with problems (or names no server): leave it out. */
			if (!check_server_declared(ld, last) || sink->n != before)
				loader_drop_last_job(ld);
		}
		ld->socket_job = false;
		ld->errs = keep;
		free(file);
	}
}

void config_check_socket_job(const struct config *cfg, const struct job_def *def, int uid,
                             bool admin, struct config_errors *errs) {
	if (admin)
		return;
	struct passwd *pw = getpwuid((uid_t)uid);
	const char *self = pw ? pw->pw_name : NULL;
	if (def->user && (self == NULL || strcmp(def->user, self) != 0))
		config_errors_add(errs, "job (%s).user: \"%s\" is not you: a job you add runs as "
		                  "yourself (leave \"user\" out); only root or group %s may add jobs "
		                  "for others", def->id, def->user,
		                  cfg->admin_group ? cfg->admin_group : "mcpjob");
	if (def->group)
		config_errors_add(errs, "job (%s).group: a job you add runs with your own groups "
		                  "(leave \"group\" out)", def->id);
	if (def->kind == ACTION_MCP) {
		const struct mcp_server_def *srv = config_find_server(cfg, def->mcp.server);
		if (srv && !srv->shared)
			config_errors_add(errs, "job (%s).action.mcp.server: server \"%s\" is not shared: "
			                  "only servers marked \"shared\": true in %s may be used by jobs "
			                  "that others add", def->id, def->mcp.server, cfg->path);
	}
}

/* Hand the origins of jobs and servers to config_check_host(). */
static void check_host(struct loader *ld, struct config_errors *warnings) {
	struct config_check_where *w = xcalloc(ld->cfg->njobs + 1, sizeof *w);
	for (size_t i = 0; i < ld->cfg->njobs; i++)
		w[i] = (struct config_check_where){ld->origins[i].file, ld->origins[i].label};
	config_check_host(ld->cfg, w, (const char *const *)ld->server_files, ld->errs, warnings);
	free(w);
}

static int load(const char *path, const struct config_load_opts *opts, struct config **out,
                struct config_errors *errs, struct config_errors *warnings);

int config_load(const char *path, struct config **out, struct config_errors *errs) {
	return load(path, NULL, out, errs, NULL);
}

int config_load_with(const char *path, const struct config_load_opts *opts, struct config **out,
                     struct config_errors *errs) {
	return load(path, opts, out, errs, NULL);
}

int config_load_check_host(const char *path, const struct config_load_opts *opts,
                           struct config **out, struct config_errors *errs,
                           struct config_errors *warnings) {
	return load(path, opts, out, errs, warnings);
}

/* Drop the errors after the first @n. */
static void errors_truncate(struct config_errors *errs, size_t n) {
	while (errs->n > n)
		free(errs->msgs[--errs->n]);
}

/* One load; 1 when a streamed job was bad and it must be done with whole trees. */
static int load_pass(const char *path, const struct config_load_opts *opts, struct config **out,
                     struct config_errors *errs, struct config_errors *warnings,
                     bool whole_trees) {
	struct config *cfg = xcalloc(1, sizeof *cfg);
	cfg->job_index = index_new(16);
	cfg->job_arena = job_arena_new();
	cfg->notify_index = json_object();
	struct loader ld = {.cfg = cfg, .errs = errs, .file = path, .whole_trees = whole_trees};
	size_t before = errs->n;
	read_machine_id(ld.machine_id, sizeof ld.machine_id);
	cfg->path = xstrdup(path);
	config_defaults(cfg);
	load_main(&ld, path);
	struct stat st;
	if (stat(path, &st) == 0) /* with no main file, drop-ins mean nothing */
		load_dropins(&ld, path);
	if (ld.stream_failed) {
		loader_clear(&ld);
		config_free(cfg);
		errors_truncate(errs, before);
		return 1;
	}
	load_socket_jobs(&ld, opts);
	check_servers_declared(&ld);
	check_chains(&ld);
	apply_identity_rules(&ld, opts ? opts->identity : CONFIG_IDENTITY_OFF);
	if (warnings != NULL && errs->n == before)
		check_host(&ld, warnings);
	loader_clear(&ld);
	if (errs->n != before) {
		config_free(cfg);
		*out = NULL;
		return -1;
	}
	resolve_identities(cfg);
	*out = cfg;
	return 0;
}

static int load(const char *path, const struct config_load_opts *opts, struct config **out,
                struct config_errors *errs, struct config_errors *warnings) {
	int r = load_pass(path, opts, out, errs, warnings, false);
	if (r == 1) /* a job in a stream that did not parse: the whole trees' errors */
		r = load_pass(path, opts, out, errs, warnings, true);
	return r;
}

void config_free(struct config *cfg) {
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->njobs; i++)
		job_def_free(cfg->jobs[i]);
	free(cfg->jobs);
	index_free(cfg->job_index);
	job_arena_free(cfg->job_arena);
	json_decref(cfg->notify_index);
	free(cfg->metrics_textfile);
	for (size_t i = 0; i < cfg->nservers; i++)
		config_server_free(cfg->servers[i]);
	free(cfg->servers);
	free(cfg->path);
	free(cfg->admin_group);
	free(cfg->default_user);
	strv_free(cfg->read_write_paths);
	strv_free(cfg->device.metered_interfaces);
	free(cfg->device.power_supply_path);
	spawn_identities_free(cfg->identities);
	free(cfg);
}

const struct job_def *config_find_job(const struct config *cfg, const char *id) {
	long at = index_find(cfg, id);
	return at >= 0 ? cfg->jobs[at] : NULL;
}

const struct mcp_server_def *config_find_server(const struct config *cfg, const char *name) {
	for (size_t i = 0; i < cfg->nservers; i++)
		if (strcmp(cfg->servers[i]->name, name) == 0)
			return cfg->servers[i];
	return NULL;
}
