/*
 * jsonrpc.h - JSON-RPC 2.0 messages as jansson values, one per line.
 *
 * Used by the control server, mcpjobctl and the MCP client. Framing is
 * newline-delimited: rpc_encode() produces one line (compact JSON never
 * contains a raw newline); readers split on '\n' and hand each line to
 * rpc_parse(). Ids may be strings or integers (0 is valid), never null.
 */
#ifndef MCPJOB_JSONRPC_H
#define MCPJOB_JSONRPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum rpc_kind {
	RPC_INVALID,      /* not a valid JSON-RPC 2.0 message; see err fields */
	RPC_REQUEST,      /* method + id */
	RPC_NOTIFICATION, /* method, no id */
	RPC_RESPONSE,     /* id + result */
	RPC_ERROR_REPLY,  /* id (maybe null) + error */
};

struct rpc_msg {
	enum rpc_kind kind;
	json_t *root;          /* owned: the whole message (NULL on parse error) */
	json_t *id;            /* borrowed from root; NULL for notifications */
	const char *method;    /* borrowed; requests and notifications */
	json_t *params;        /* borrowed; NULL when absent */
	json_t *result;        /* borrowed; responses */
	json_t *error;         /* borrowed; error replies */
	int err_code;          /* RPC_INVALID: RPC_E_PARSE or RPC_E_INVALID_REQUEST */
	char err_text[200];    /* RPC_INVALID: what is wrong, for the error reply */
};

/*
 * rpc_parse() - parse one line (without its '\n').
 * Always fills @msg; check msg->kind. Free with rpc_msg_clear().
 * Strings may hold \u0000 (kept whole); a "method" that does is invalid
 * (-32600), as C would read it cut at the NUL.
 */
void rpc_parse(const char *line, size_t len, struct rpc_msg *msg);
void rpc_msg_clear(struct rpc_msg *msg);

/* Builders; each returns a new reference. @id and @params/@result/@data are
 * borrowed (incref'd), NULL params/data are left out. */
json_t *rpc_request(json_t *id, const char *method, json_t *params);
json_t *rpc_notification(const char *method, json_t *params);
json_t *rpc_result(json_t *id, json_t *result);
json_t *rpc_error(json_t *id, int code, const char *message, json_t *data);

/* Compact one-line encoding with the trailing '\n'; caller frees. */
char *rpc_encode(const json_t *msg, size_t *len);

/*
 * Param validation: each returns 0, or -1 with *cause set (caller frees) to
 * a sentence naming the param, e.g. "missing param \"job\"" or
 * "param \"limit\" must be an integer".
 */
/* @params must be an object (or NULL, treated as {}) with only @allowed keys,
 * and no string in it may hold a NUL (rpc_params_nul_check). */
int rpc_params_check(const json_t *params, const char *const *allowed, char **cause);
/* No string anywhere in @params holds a NUL: -1 naming its path
 * ("param \"jobs[1]\" must not contain a NUL character"). Keys never do:
 * jansson refuses them at parse time. */
int rpc_params_nul_check(const json_t *params, char **cause);
int rpc_param_string(const json_t *params, const char *name, bool required,
                     const char **out, char **cause);
int rpc_param_int(const json_t *params, const char *name, bool required,
                  long long *out, char **cause);
int rpc_param_bool(const json_t *params, const char *name, bool required,
                   bool *out, char **cause);

#endif
