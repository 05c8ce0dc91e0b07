/*
 * jsonrpc.c - JSON-RPC 2.0 parsing, building and param checks.
 */
#include "common/jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsontext.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/text.h"
#include "common/xmalloc.h"

static void invalid(struct rpc_msg *msg, int code, const char *text) {
	msg->kind = RPC_INVALID;
	msg->err_code = code;
	snprintf(msg->err_text, sizeof msg->err_text, "%s", text);
}

static bool id_ok(const json_t *id) {
	return json_is_string(id) || json_is_integer(id);
}

void rpc_parse(const char *line, size_t len, struct rpc_msg *msg) {
	json_error_t jerr;
	memset(msg, 0, sizeof *msg);
	msg->root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (msg->root == NULL) {
		char t[200];
		snprintf(t, sizeof t, "parse error at column %d: %s", jerr.column, jerr.text);
		invalid(msg, RPC_E_PARSE, t);
		return;
	}
	json_t *r = msg->root;
	if (!json_is_object(r)) {
		invalid(msg, RPC_E_INVALID_REQUEST, "a message must be a JSON object");
		return;
	}
	json_t *ver = json_object_get(r, "jsonrpc");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
		invalid(msg, RPC_E_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
		return;
	}
	json_t *method = json_object_get(r, "method");
	json_t *id = json_object_get(r, "id");
	msg->id = id;
	if (method != NULL) {
		if (!json_is_string(method)) {
			invalid(msg, RPC_E_INVALID_REQUEST, "\"method\" must be a string");
			return;
		}
		if (json_string_length(method) != strlen(json_string_value(method))) {
			invalid(msg, RPC_E_INVALID_REQUEST,
			        "\"method\" must not contain a NUL character (\\u0000)");
			return;
		}
		msg->method = json_string_value(method);
		msg->params = json_object_get(r, "params");
		if (msg->params && !json_is_object(msg->params) && !json_is_array(msg->params)) {
			invalid(msg, RPC_E_INVALID_REQUEST, "\"params\" must be an object or an array");
			return;
		}
		if (id == NULL) {
			msg->kind = RPC_NOTIFICATION;
		} else if (!id_ok(id)) {
			invalid(msg, RPC_E_INVALID_REQUEST, "\"id\" must be a string or an integer");
		} else {
			msg->kind = RPC_REQUEST;
		}
		return;
	}
	json_t *result = json_object_get(r, "result");
	json_t *error = json_object_get(r, "error");
	if (result != NULL && error == NULL && id_ok(id)) {
		msg->kind = RPC_RESPONSE;
		msg->result = result;
	} else if (error != NULL && result == NULL && json_is_object(error) &&
	           (id_ok(id) || json_is_null(id))) {
		msg->kind = RPC_ERROR_REPLY;
		msg->error = error;
	} else {
		invalid(msg, RPC_E_INVALID_REQUEST,
		        "not a request, notification or response (no \"method\", or no valid \"id\" with \"result\" or \"error\")");
	}
}

void rpc_msg_clear(struct rpc_msg *msg) {
	json_decref(msg->root);
	memset(msg, 0, sizeof *msg);
}

json_t *rpc_request(json_t *id, const char *method, json_t *params) {
	json_t *m = json_pack("{s:s, s:O, s:s}", "jsonrpc", "2.0", "id", id, "method", method);
	if (params)
		json_object_set(m, "params", params);
	return m;
}

json_t *rpc_notification(const char *method, json_t *params) {
	json_t *m = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
	if (params)
		json_object_set(m, "params", params);
	return m;
}

json_t *rpc_result(json_t *id, json_t *result) {
	return json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "id", id ? id : json_null(),
	                 "result", result ? result : json_null());
}

json_t *rpc_error(json_t *id, int code, const char *message, json_t *data) {
	/* Messages quote input (jansson's parse errors cut it anywhere): keep them UTF-8. */
	char *clean = text_utf8_valid(message, strlen(message));
	json_t *err = json_pack("{s:i, s:s}", "code", code, "message", clean);
	free(clean);
	if (data)
		json_object_set(err, "data", data);
	return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(),
	                 "error", err);
}

char *rpc_encode(const json_t *msg, size_t *len) {
	size_t n = 0;
	char *body = jsontext_dumps(msg, &n);
	if (body == NULL) { /* never end the daemon over one reply: say it went wrong */
		log_error("a JSON-RPC message could not be encoded; sent an internal error instead");
		body = xstrdup("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
		               "\"message\":\"the reply could not be encoded\"}}");
		n = strlen(body);
	}
	char *out = xrealloc(body, n + 2);
	out[n] = '\n';
	out[n + 1] = '\0';
	if (len)
		*len = n + 1;
	return out;
}

static bool has_nul(const json_t *s) {
	return json_string_length(s) != strlen(json_string_value(s));
}

/* The path below @v of its first string with a NUL ("" for @v itself), or
 * NULL. jansson keeps such strings whole (JSON_ALLOW_NUL), but C code sees
 * them cut at the NUL: "tick\u0000/../x" would act as "tick". */
static char *nul_path(const json_t *v, int depth) {
	const char *key;
	size_t i;
	json_t *e;
	char *sub;
	if (json_is_string(v))
		return has_nul(v) ? xstrdup("") : NULL;
	if (depth > 64)
		return NULL;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e) {
			if ((sub = nul_path(e, depth + 1)) != NULL) {
				char *p = xasprintf(".%s%s", key, sub);
				free(sub);
				return p;
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if ((sub = nul_path(e, depth + 1)) != NULL) {
				char *p = xasprintf("[%zu]%s", i, sub);
				free(sub);
				return p;
			}
		}
	}
	return NULL;
}

int rpc_params_nul_check(const json_t *params, char **cause) {
	char *path = params ? nul_path(params, 0) : NULL;
	if (path == NULL)
		return 0;
	/* path is ".name..." for an object's member, "[i]..." for an array's */
	*cause = xasprintf("param \"%s\" must not contain a NUL character (\\u0000)",
	                   path[0] == '.' ? path + 1 : path);
	free(path);
	return -1;
}

int rpc_params_check(const json_t *params, const char *const *allowed, char **cause) {
	const char *key;
	json_t *v;
	if (params == NULL)
		return 0;
	if (!json_is_object(params)) {
		*cause = xstrdup("params must be an object");
		return -1;
	}
	json_object_foreach((json_t *)params, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; a && *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok) {
			*cause = xasprintf("unknown param \"%s\"", key);
			return -1;
		}
	}
	return rpc_params_nul_check(params, cause);
}

static json_t *param_get(const json_t *params, const char *name, bool required,
                         char **cause, int *rc) {
	json_t *v = params ? json_object_get(params, name) : NULL;
	*rc = 0;
	if (v == NULL && required) {
		*cause = xasprintf("missing param \"%s\"", name);
		*rc = -1;
	}
	return v;
}

int rpc_param_string(const json_t *params, const char *name, bool required,
                     const char **out, char **cause) {
	int rc;
	json_t *v = param_get(params, name, required, cause, &rc);
	if (v == NULL)
		return rc;
	if (!json_is_string(v)) {
		*cause = xasprintf("param \"%s\" must be a string", name);
		return -1;
	}
	if (has_nul(v)) {
		*cause = xasprintf("param \"%s\" must not contain a NUL character (\\u0000)", name);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int rpc_param_int(const json_t *params, const char *name, bool required,
                  long long *out, char **cause) {
	int rc;
	json_t *v = param_get(params, name, required, cause, &rc);
	if (v == NULL)
		return rc;
	if (!json_is_integer(v)) {
		*cause = xasprintf("param \"%s\" must be an integer", name);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

int rpc_param_bool(const json_t *params, const char *name, bool required,
                   bool *out, char **cause) {
	int rc;
	json_t *v = param_get(params, name, required, cause, &rc);
	if (v == NULL)
		return rc;
	if (!json_is_boolean(v)) {
		*cause = xasprintf("param \"%s\" must be true or false", name);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}
