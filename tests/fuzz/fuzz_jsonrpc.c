/*
 * fuzz_jsonrpc.c - every line a client sends the control socket goes
 * through rpc_parse() and the param checks; none may crash, leak or
 * produce a reply that does not encode.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const char *const allowed[] = {"job", "limit", "before", "wait", NULL};
	struct rpc_msg msg;
	char *cause = NULL;
	rpc_parse((const char *)data, size, &msg);
	if (msg.kind == RPC_REQUEST || msg.kind == RPC_NOTIFICATION) {
		const char *s;
		long long n;
		bool b;
		if (rpc_params_check(msg.params, allowed, &cause) < 0)
			free(cause), cause = NULL;
		if (rpc_param_string(msg.params, "job", true, &s, &cause) < 0)
			free(cause), cause = NULL;
		if (rpc_param_int(msg.params, "limit", false, &n, &cause) < 0)
			free(cause), cause = NULL;
		if (rpc_param_bool(msg.params, "wait", false, &b, &cause) < 0)
			free(cause), cause = NULL;
	}
	json_t *reply = msg.kind == RPC_INVALID
	                    ? rpc_error(NULL, msg.err_code, msg.err_text, NULL)
	                    : rpc_result(msg.id, msg.params);
	free(rpc_encode(reply, NULL));
	json_decref(reply);
	rpc_msg_clear(&msg);
	return 0;
}
