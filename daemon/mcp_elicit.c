/*
 * mcp_elicit.c - elicitation answered by policy (see mcp_elicit.h).
 */
#include "daemon/mcp_elicit.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/xmalloc.h"

static json_t *decline(char **why, char *reason /* stolen */) {
	*why = reason;
	return json_pack("{s:s}", "action", "decline");
}

/* Whether @v is a value of property schema @prop (type and enum). */
static bool fits(const json_t *prop, const json_t *v) {
	const char *type = json_string_value(json_object_get(prop, "type"));
	const json_t *en = json_object_get(prop, "enum");
	if (type == NULL)
		return false;
	if (strcmp(type, "string") == 0) {
		if (!json_is_string(v))
			return false;
		if (json_is_array(en)) {
			size_t i;
			const json_t *e;
			json_array_foreach(en, i, e)
				if (json_equal(e, v))
					return true;
			return false;
		}
		return true;
	}
	if (strcmp(type, "integer") == 0)
		return json_is_integer(v) ||
		       (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v));
	if (strcmp(type, "number") == 0)
		return json_is_number(v);
	if (strcmp(type, "boolean") == 0)
		return json_is_boolean(v);
	return false; /* the spec allows only these primitive types */
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
