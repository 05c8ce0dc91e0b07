/*
 * mcp_proto.c - protocol versions, the initialize handshake's content and
 * the mapping of tools/call replies to results (MCP revision 2025-11-25,
 * server/tools: content items text, image, audio, resource_link, resource;
 * structuredContent; isError).
 */
#include "daemon/mcp/mcp_proto.h"

#include <stdlib.h>
#include <string.h>

#include "common/jsontext.h"
#include "common/log.h"
#include "common/text.h"
#include "common/xmalloc.h"
#include "daemon/action/action.h"

const char *const mcp_protocol_versions[] = {
	"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", NULL,
};

bool mcp_proto_version_supported(const char *version) {
	for (const char *const *v = mcp_protocol_versions; *v; v++)
		if (version && strcmp(*v, version) == 0)
			return true;
	return false;
}

json_t *mcp_proto_initialize_params(void) {
	/* capabilities {}: no roots, sampling or elicitation - we answer those
	 * requests with -32601, so we must not declare them. */
	return json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", MCP_PROTOCOL_LATEST,
	                 "capabilities", "clientInfo", "name", "mcpjobd", "version",
	                 MCPJOB_VERSION);
}

json_t *mcp_proto_initialize_params_client(bool roots) {
	/* elicitation {} means form mode only (2025-11-25); we answer it by
	 * policy (mcp_elicit.h). Never sampling: there is no model. */
	json_t *p = mcp_proto_initialize_params();
	json_t *caps = json_object_get(p, "capabilities");
	json_object_set_new(caps, "elicitation", json_object());
	if (roots)
		json_object_set_new(caps, "roots", json_pack("{s:b}", "listChanged", 1));
	return p;
}

json_t *mcp_proto_roots_result(char *const *roots) {
	json_t *list = json_array();
	for (size_t i = 0; roots && roots[i]; i++) {
		const char *base = strrchr(roots[i], '/');
		json_array_append_new(list, json_pack("{s:s, s:s}", "uri", roots[i], "name",
		                                      base && base[1] ? base + 1 : roots[i]));
	}
	return json_pack("{s:o}", "roots", list);
}

static char *versions_list(void) {
	char *out = xstrdup("");
	for (const char *const *v = mcp_protocol_versions; *v; v++) {
		char *n = xasprintf("%s%s%s", out, *out ? ", " : "", *v);
		free(out);
		out = n;
	}
	return out;
}

const char *mcp_proto_check_initialize(const char *server, const json_t *result, char **cause) {
	const json_t *v = json_is_object(result) ? json_object_get(result, "protocolVersion") : NULL;
	if (!json_is_string(v)) {
		*cause = xasprintf("server %s answered initialize without a protocolVersion", server);
		return NULL;
	}
	const char *ver = json_string_value(v);
	if (!mcp_proto_version_supported(ver)) {
		char *list = versions_list();
		char *shown = mcp_proto_one_line(ver, 40);
		*cause = xasprintf("server %s speaks MCP protocol version \"%s\" but we asked for "
		                   "\"%s\" (mcpjobd supports %s); upgrade mcpjobd or the server",
		                   server, shown, MCP_PROTOCOL_LATEST, list);
		free(shown);
		free(list);
		return NULL;
	}
	return ver;
}

/* --- text ---------------------------------------------------------------- */

char *mcp_proto_one_line(const char *s, size_t max) {
	size_t len = strlen(s);
	char *out = xmalloc(len + 1);
	size_t o = 0;
	bool space = true; /* drop leading white space */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == ' ') {
			if (!space)
				out[o++] = ' ';
			space = true;
			continue;
		}
		out[o++] = (char)c;
		space = false;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	o = text_utf8_cut(out, o, max);
	out[o] = '\0';
	return out;
}

/* Decoded size of base64 @data. */
static size_t base64_size(const char *data) {
	size_t n = strlen(data);
	while (n > 0 && (data[n - 1] == '=' || data[n - 1] == '\n'))
		n--;
	return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

static const char *str_field(const json_t *o, const char *key) {
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* One content item as text: its text, or a bracketed summary. Caller frees. */
static char *content_item_text(const json_t *item) {
	const char *type = json_is_object(item) ? str_field(item, "type") : NULL;
	if (type == NULL)
		return xstrdup("[content item without a type]");
	if (strcmp(type, "text") == 0) {
		const char *t = str_field(item, "text");
		return xstrdup(t ? t : "");
	}
	if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0) {
		const char *mime = str_field(item, "mimeType");
		const char *data = str_field(item, "data");
		return xasprintf("[%s %s %zu bytes]", type, mime ? mime : "?",
		                 data ? base64_size(data) : 0);
	}
	if (strcmp(type, "resource_link") == 0) {
		const char *uri = str_field(item, "uri");
		return xasprintf("[resource_link %s]", uri ? uri : "?");
	}
	if (strcmp(type, "resource") == 0) {
		const json_t *r = json_object_get(item, "resource");
		const char *uri = json_is_object(r) ? str_field(r, "uri") : NULL;
		const char *text = json_is_object(r) ? str_field(r, "text") : NULL;
		const char *blob = json_is_object(r) ? str_field(r, "blob") : NULL;
		size_t size = text ? strlen(text) : blob ? base64_size(blob) : 0;
		return xasprintf("[resource %s %zu bytes]", uri ? uri : "?", size);
	}
	char *shown = mcp_proto_one_line(type, 40);
	char *out = xasprintf("[%s]", shown);
	free(shown);
	return out;
}

char *mcp_proto_content_text(const json_t *content, size_t max) {
	if (!json_is_array(content))
		return xstrdup("");
	/* Gather a little more than @max so one_line can cut on a boundary. */
	size_t cap = max + 8, len = 0;
	char *buf = xmalloc(cap + 1);
	buf[0] = '\0';
	size_t i;
	const json_t *item;
	json_array_foreach(content, i, item) {
		if (len >= cap)
			break;
		char *t = content_item_text(item);
		if (*t == '\0') {
			free(t);
			continue;
		}
		size_t n = strlen(t);
		if (len > 0)
			buf[len++] = ' ';
		if (n > cap - len)
			n = cap - len;
		memcpy(buf + len, t, n);
		len += n;
		buf[len] = '\0';
		free(t);
	}
	char *out = mcp_proto_one_line(buf, max);
	free(buf);
	return out;
}

/* --- results ------------------------------------------------------------- */

/*
 * Encoded once, here: the run's record and its reply reuse the text
 * (*@text, NULL when too large), and its size is what the cap measures.
 */
static json_t *structured_capped(json_t *sc, char **text) {
	size_t size = 0;
	char *enc = jsontext_dumps(sc, &size);
	*text = NULL;
	if (size > MCP_STRUCTURED_MAX) {
		free(enc);
		return json_pack("{s:b, s:I}", "truncated", 1, "size", (json_int_t)size);
	}
	*text = enc;
	return json_incref(sc);
}

static void error_result(const json_t *error, struct mcp_call_result *res) {
	const json_t *code = json_object_get(error, "code");
	const char *msg = str_field(error, "message");
	char *text = xasprintf("server error %lld: %s",
	                       json_is_integer(code) ? (long long)json_integer_value(code) : 0LL,
	                       msg ? msg : "(no message)");
	res->status = MCP_PROTOCOL_ERROR;
	res->message = mcp_proto_one_line(text, MCP_MESSAGE_MAX);
	free(text);
	const json_t *data = json_object_get(error, "data");
	if (data != NULL && !json_is_null(data)) {
		char *enc = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
		size_t n = enc ? strlen(enc) : 0;
		if (n > MCP_DETAIL_MAX) {
			n = text_utf8_cut(enc, n, MCP_DETAIL_MAX - 32); /* room for the words around it */
			res->detail = xasprintf("error data: %.*s ...(cut)", (int)n, enc);
		} else if (enc) {
			res->detail = xasprintf("error data: %s", enc);
		}
		free(enc);
	}
}

/* Every text item, whole, joined by newlines; capped at MCP_TEXT_MAX. NULL when none. */
static char *content_text_whole(const json_t *content) {
	size_t i, len = 0;
	const json_t *item;
	char *buf = NULL;
	json_array_foreach(content, i, item) {
		const char *t = json_is_object(item) && str_field(item, "type") &&
		                strcmp(str_field(item, "type"), "text") == 0 ? str_field(item, "text")
		                                                             : NULL;
		if (t == NULL || len >= MCP_TEXT_MAX)
			continue;
		size_t n = strlen(t), sep = len > 0;
		if (len + sep + n > MCP_TEXT_MAX)
			n = text_utf8_cut(t, n, MCP_TEXT_MAX - len - sep);
		buf = xrealloc(buf, len + sep + n + 1);
		if (sep)
			buf[len++] = '\n';
		memcpy(buf + len, t, n);
		len += n;
		buf[len] = '\0';
	}
	return buf;
}

void mcp_proto_tool_result(const char *tool, const json_t *result, const json_t *error,
                           struct mcp_call_result *res) {
	memset(res, 0, sizeof *res);
	if (error != NULL) {
		error_result(error, res);
		return;
	}
	if (!json_is_object(result)) {
		res->status = MCP_PROTOCOL_ERROR;
		res->message = xasprintf("server sent a tools/call result for %s that is not an object",
		                         tool);
		return;
	}
	const json_t *is_error = json_object_get(result, "isError");
	res->status = json_is_true(is_error) ? MCP_TOOL_ERROR : MCP_OK;
	res->message = mcp_proto_content_text(json_object_get(result, "content"), MCP_MESSAGE_MAX);
	res->text = content_text_whole(json_object_get(result, "content"));
	if (res->status == MCP_TOOL_ERROR && *res->message == '\0') {
		free(res->message);
		res->message = xasprintf("tool %s reported an error without text", tool);
	}
	json_t *sc = json_object_get(result, "structuredContent");
	if (sc != NULL && !json_is_null(sc))
		res->structured = structured_capped(sc, &res->structured_text);
}

void mcp_call_result_clear(struct mcp_call_result *res) {
	if (res == NULL)
		return;
	free(res->message);
	free(res->detail);
	free(res->text);
	json_decref(res->structured);
	free(res->structured_text);
	memset(res, 0, sizeof *res);
}

/* --- what rpc_parse() refused ------------------------------------------------ */

/* A reply's id as our integer: a number, or a string of digits. */
static bool reply_id(const json_t *id, int64_t *out, bool *was_string) {
	*was_string = false;
	if (json_is_integer(id)) {
		*out = json_integer_value(id);
		return true;
	}
	const char *s = json_string_value(id);
	if (s == NULL || *s == '\0' || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
		return false;
	*out = strtoll(s, NULL, 10);
	*was_string = true;
	return true;
}

enum mcp_salvage mcp_proto_salvage(const char *line, size_t len, json_t **batch, int64_t *id,
                                   char **why) {
	bool bad_utf8 = false, was_string;
	json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (root == NULL) {
		char *clean = text_utf8_valid(line, len);
		root = json_loads(clean, 0, NULL);
		bad_utf8 = root != NULL;
		free(clean);
	}
	enum mcp_salvage kind = MCP_SALVAGE_NONE;
	if (json_is_array(root) && json_array_size(root) > 0 && !bad_utf8) {
		*batch = json_incref(root);
		kind = MCP_SALVAGE_BATCH;
	} else if (json_is_object(root) && json_object_get(root, "method") == NULL &&
	           (json_object_get(root, "result") || json_object_get(root, "error")) &&
	           reply_id(json_object_get(root, "id"), id, &was_string)) {
		const json_t *ver = json_object_get(root, "jsonrpc");
		kind = MCP_SALVAGE_REPLY;
		if (bad_utf8)
			*why = xstrdup("it is not valid UTF-8");
		else if (was_string)
			*why = xasprintf("its id is the string \"%lld\", not the number we sent",
			                 (long long)*id);
		else if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0)
			*why = xstrdup("it has no \"jsonrpc\": \"2.0\"");
		else
			*why = xstrdup("it is not a valid JSON-RPC response (both or neither of "
			               "\"result\" and \"error\", or a malformed error)");
	}
	json_decref(root);
	return kind;
}

static const struct {
	const char *name;
	int level;
} log_levels[] = {
	{"debug", LOG_LEVEL_DEBUG},     {"info", LOG_LEVEL_INFO},   {"notice", LOG_LEVEL_NOTICE},
	{"warning", LOG_LEVEL_WARNING}, {"error", LOG_LEVEL_ERROR}, {"critical", LOG_LEVEL_ERROR},
	{"alert", LOG_LEVEL_ERROR},     {"emergency", LOG_LEVEL_ERROR},
};

int mcp_proto_log_level(const char *name) {
	for (size_t i = 0; name && i < sizeof log_levels / sizeof log_levels[0]; i++)
		if (strcmp(name, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -1;
}

bool mcp_proto_log_level_ok(const char *name) {
	return mcp_proto_log_level(name) >= 0;
}
