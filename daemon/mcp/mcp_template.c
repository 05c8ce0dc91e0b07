/*
 * mcp_template.c - ${...} substitution in an mcp job's arguments, which is
 * how a sync job says "since last time" without code (mcpjobd.json(5)).
 *
 * Only string values are touched, never keys. Times are RFC 3339 UTC. A
 * time that is absent (0) makes a value that is exactly "${last_success}"
 * JSON null, so a server can tell "never" from a date; inside a longer
 * string it becomes "". Unknown ${x} stay as written.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "daemon/mcp/mcp.h"

/* The value of variable @name (@len bytes) into @buf; NULL when unknown.
 * *@absent is set when the variable is a time that is 0. */
static const char *var_value(const char *name, size_t len, const struct mcp_template_vars *v,
                             char *buf, size_t bufsize, bool *absent) {
	int64_t t;
	*absent = false;
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
	if (IS("last_success"))
		t = v->last_success_ms;
	else if (IS("last_run"))
		t = v->last_run_ms;
	else if (IS("now"))
		t = v->now_ms;
	else if (IS("job_id"))
		return v->job_id ? v->job_id : "";
	else if (IS("run_id")) {
		snprintf(buf, bufsize, "%" PRIu64, v->run_id);
		return buf;
	} else
		return NULL;
#undef IS
	if (t == 0) {
		*absent = true;
		return "";
	}
	return time_format_rfc3339(t, buf);
}

/* A whole-string single time variable that is absent becomes null. */
static bool is_absent_time(const char *s, const struct mcp_template_vars *v) {
	char buf[TIME_RFC3339_LEN];
	size_t n = strlen(s);
	bool absent;
	if (n < 4 || strncmp(s, "${", 2) != 0 || s[n - 1] != '}' || memchr(s + 2, '}', n - 3))
		return false;
	return var_value(s + 2, n - 3, v, buf, sizeof buf, &absent) != NULL && absent;
}

static char *expand_string(const char *s, const struct mcp_template_vars *v) {
	size_t cap = strlen(s) + 64, len = 0;
	char *out = xmalloc(cap);
	while (*s) {
		const char *val = NULL, *end = NULL;
		char buf[TIME_RFC3339_LEN];
		if (s[0] == '$' && s[1] == '{' && (end = strchr(s + 2, '}')) != NULL) {
			bool absent;
			val = var_value(s + 2, (size_t)(end - s - 2), v, buf, sizeof buf, &absent);
		}
		size_t n = val ? strlen(val) : 1;
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = xrealloc(out, cap);
		}
		if (val) {
			memcpy(out + len, val, n);
			s = end + 1;
		} else {
			out[len] = *s++;
		}
		len += n;
	}
	out[len] = '\0';
	return out;
}

json_t *mcp_template_expand(const json_t *args, const struct mcp_template_vars *vars) {
	if (args == NULL)
		return json_object();
	if (json_is_string(args)) {
		const char *s = json_string_value(args);
		if (strstr(s, "${") == NULL)
			return json_string(s);
		if (is_absent_time(s, vars))
			return json_null();
		char *e = expand_string(s, vars);
		json_t *out = json_string(e);
		free(e);
		return out ? out : json_string("");
	}
	if (json_is_object(args)) {
		json_t *out = json_object();
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)args, key, val)
			json_object_set_new(out, key, mcp_template_expand(val, vars));
		return out;
	}
	if (json_is_array(args)) {
		json_t *out = json_array();
		size_t i;
		json_t *val;
		json_array_foreach(args, i, val)
			json_array_append_new(out, mcp_template_expand(val, vars));
		return out;
	}
	return json_deep_copy(args);
}
