/*
 * mcp_elicit.h - answering a server's elicitation/create (MCP 2025-11-25,
 * client/elicitation) without a person: a daemon answers by policy, the
 * server's "elicitation" setting in mcpServers:
 *
 *   decline   (default) action "decline"
 *   defaults  action "accept" with every property's schema default, as
 *             SEP-1034 defines for string, number, integer, boolean and enum
 *             properties; "decline" when a required property has none
 *   answers   the configured values, checked against the requested schema,
 *             defaults for the rest; "decline" when one does not fit
 *
 * URL-mode requests (the person would have to visit a URL) are declined.
 * Pure: no I/O; @why says what was decided for the log.
 */
#ifndef MCPJOB_MCP_ELICIT_H
#define MCPJOB_MCP_ELICIT_H

#include <jansson.h>

#include "daemon/config.h"

/* The ElicitResult for request params @params. New reference; *@why (caller frees). */
json_t *mcp_elicit_answer(const json_t *params, enum mcp_elicitation mode,
                          const json_t *answers, char **why);

#endif
