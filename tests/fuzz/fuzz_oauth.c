/*
 * fuzz_oauth.c - what an authorization server or a protected MCP server
 * sends us: WWW-Authenticate values, resource and authorization server
 * metadata (also 2025-03-26 style), token responses, token exchange answers. Parse each; nothing may crash, and a refused
 * token response leaves no token behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"
#include "common/xmalloc.h"
#include "daemon/mcp/oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *s = xstrndup((const char *)data, size);
	char *cause = NULL;
	struct oauth_challenge ch;
	if (oauth_challenge_parse(s, &ch) == 0) {
		char **urls = oauth_prm_urls("https://mcp.example.com/mcp", ch.resource_metadata, &cause);
		oauth_strv_free(urls);
	}
	oauth_challenge_clear(&ch);
	free(cause);
	cause = NULL;
	struct oauth_prm prm;
	if (oauth_prm_parse((const char *)data, size, "https://mcp.example.com/mcp", &prm, &cause) == 0)
		oauth_prm_clear(&prm);
	free(cause);
	cause = NULL;
	struct oauth_as_meta as;
	if (oauth_as_meta_parse((const char *)data, size, "https://auth.example.com", &as, &cause) == 0)
		oauth_as_meta_clear(&as);
	free(cause);
	cause = NULL;
	if (oauth_as_meta_parse_legacy((const char *)data, size, "https://mcp.example.com", &as,
	                               &cause) == 0)
		oauth_as_meta_clear(&as);
	free(cause);
	cause = NULL;
	char *jag = oauth_id_jag_parse((const char *)data, size, &cause);
	free(jag);
	free(cause);
	cause = NULL;
	struct oauth_tokens t;
	if (oauth_tokens_parse((const char *)data, size, 0, &t, &cause) == 0)
		oauth_tokens_clear(&t);
	else if (t.access_token != NULL)
		abort();
	free(cause);
	free(s);
	return 0;
}
