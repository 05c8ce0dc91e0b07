/*
 * mcp_elicit.c - elicitation answered by policy (see mcp_elicit.h).
 */
#include "daemon/mcp/mcp_elicit.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/xmalloc.h"

static json_t *decline(char **why, char *reason /* stolen */) {
	*why = reason;
	return json_pack("{s:s}", "action", "decline");
}

/* @v against the choices of @schema ("enum", or "oneOf"/"anyOf" of {"const"}); true when none. */
static bool in_choices(const json_t *schema, const json_t *v) {
	static const char *const keys[] = {"enum", "oneOf", "anyOf"};
	for (size_t k = 0; k < 3; k++) {
		const json_t *list = json_object_get(schema, keys[k]);
		if (!json_is_array(list))
			continue;
		size_t i;
		const json_t *e;
		json_array_foreach(list, i, e) {
			const json_t *c = k == 0 ? e : json_object_get(e, "const");
			if (json_equal(c, v))
				return true;
		}
		return false;
	}
	return true;
}

static bool in_range(const json_t *prop, double x) {
	const json_t *lo = json_object_get(prop, "minimum"), *hi = json_object_get(prop, "maximum");
	return (!json_is_number(lo) || x >= json_number_value(lo)) &&
	       (!json_is_number(hi) || x <= json_number_value(hi));
}

/* Whether @v is a value of property schema @prop: the spec's primitive types,
 * single-select enums (plain or titled) and multi-select arrays of them. */
static bool fits(const json_t *prop, const json_t *v) {
	const char *type = json_string_value(json_object_get(prop, "type"));
	if (type == NULL)
		return false;
	if (strcmp(type, "string") == 0)
		return json_is_string(v) && in_choices(prop, v);
	if (strcmp(type, "integer") == 0)
		return (json_is_integer(v) ||
		        (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v))) &&
		       in_range(prop, json_number_value(v));
	if (strcmp(type, "number") == 0)
		return json_is_number(v) && in_range(prop, json_number_value(v));
	if (strcmp(type, "boolean") == 0)
		return json_is_boolean(v);
	if (strcmp(type, "array") == 0 && json_is_array(v)) {
		const json_t *items = json_object_get(prop, "items");
		const json_t *lo = json_object_get(prop, "minItems"), *hi = json_object_get(prop, "maxItems");
		size_t i, n = json_array_size(v);
		const json_t *e;
		if ((json_is_integer(lo) && (json_int_t)n < json_integer_value(lo)) ||
		    (json_is_integer(hi) && (json_int_t)n > json_integer_value(hi)))
			return false;
		json_array_foreach(v, i, e)
			if (!json_is_string(e) || !in_choices(items, e))
				return false;
		return true;
	}
	return false;
}

static bool is_required(const json_t *schema, const char *name) {
	const json_t *req = json_object_get(schema, "required");
	size_t i;
	const json_t *e;
	json_array_foreach(req, i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), name) == 0)
			return true;
	return false;
}

json_t *mcp_elicit_answer(const json_t *params, enum mcp_elicitation mode,
                          const json_t *answers, char **why) {
	const char *m = json_string_value(json_object_get(params, "mode"));
	if (m != NULL && strcmp(m, "url") == 0)
		return decline(why, xstrdup("declined a URL-mode elicitation: a background daemon "
		                            "has no person to send to a URL"));
	if (mode == MCP_ELICIT_DECLINE)
		return decline(why, xstrdup("declined (\"elicitation\" is \"decline\")"));
	const json_t *schema = json_object_get(params, "requestedSchema");
	const json_t *props = json_object_get(schema, "properties");
	if (!json_is_object(props))
		return decline(why, xstrdup("declined: the request has no requestedSchema properties"));
	json_t *content = json_object();
	const char *name;
	const json_t *prop;
	json_object_foreach((json_t *)props, name, prop) {
		const json_t *v = mode == MCP_ELICIT_ANSWERS ? json_object_get(answers, name) : NULL;
		if (v != NULL && !fits(prop, v)) {
			json_decref(content);
			return decline(why, xasprintf("declined: the configured answer for \"%.64s\" does "
			                              "not fit its schema", name));
		}
		if (v == NULL)
			v = json_object_get(prop, "default");
		if (v != NULL && fits(prop, v)) {
			json_object_set(content, name, (json_t *)v);
		} else if (is_required(schema, name)) {
			json_decref(content);
			return decline(why, xasprintf("declined: required field \"%.64s\" has no %s",
			                              name, mode == MCP_ELICIT_ANSWERS
			                                            ? "configured answer or default"
			                                            : "default"));
		}
	}
	*why = xasprintf("accepted with %zu field%s from %s", json_object_size(content),
	                 json_object_size(content) == 1 ? "" : "s",
	                 mode == MCP_ELICIT_ANSWERS ? "the configured answers" : "schema defaults");
	return json_pack("{s:s, s:o}", "action", "accept", "content", content);
}
