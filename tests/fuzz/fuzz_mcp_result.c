/*
 * fuzz_mcp_result.c - what an MCP server answers is outside input: an
 * initialize result or a tools/call result of any shape must map to a
 * result, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/mcp/mcp.h"
#include "daemon/mcp/mcp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	json_error_t jerr;
	json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
	if (v == NULL)
		return 0;
	char *cause = NULL;
	mcp_proto_check_initialize("fuzz", v, &cause);
	free(cause);
	struct mcp_call_result res = {0};
	mcp_proto_tool_result("tool", json_is_object(v) ? v : NULL,
	                      json_is_object(v) ? NULL : v, &res);
	mcp_call_result_clear(&res);
	free(mcp_proto_content_text(json_object_get(v, "content"), 200));
	json_decref(v);
	return 0;
}
