/*
 * action.c - what all actions share: picking the ops for a kind, freeing a
 * result, and turning a child's output into a run's one-line message.
 *
 * Output and messages end up in LMDB and in JSON (jansson refuses invalid
 * UTF-8), so the text helpers here return valid UTF-8 whatever a child wrote.
 */
#include "daemon/action/action.h"

#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "common/xmalloc.h"

const struct action_ops *action_ops_for(enum action_kind kind) {
	switch (kind) {
	case ACTION_EXEC: return &action_exec_ops;
	case ACTION_CLEANUP: return &action_cleanup_ops;
	case ACTION_MCP: return &action_mcp_ops;
	}
	return NULL;
}

void action_result_clear(struct action_result *res) {
	if (res == NULL)
		return;
	free(res->message);
	free(res->output);
	if (res->structured != NULL)
		json_decref(res->structured);
	free(res->structured_text);
	memset(res, 0, sizeof *res);
}

bool action_stop_once(bool *stopping, enum run_outcome *why_out, char **reason_out,
                      enum run_outcome why, const char *reason) {
	if (*stopping)
		return false;
	*stopping = true;
	*why_out = why;
	*reason_out = xstrdup_or_null(reason);
	return true;
}

static int is_blank(char c) {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

char *action_last_line(const char *text, size_t len) {
	if (text == NULL)
		return NULL;
	size_t end = len;
	while (end > 0) {
		while (end > 0 && is_blank(text[end - 1]))
			end--;
		size_t start = end;
		while (start > 0 && text[start - 1] != '\n')
			start--;
		while (start < end && is_blank(text[start]))
			start++;
		if (start < end) {
			char *line = text_utf8_valid(text + start, end - start);
			/* Control characters would break the one-line promise. */
			text_scrub(line, ' ');
			line[text_utf8_cut(line, strlen(line), ACTION_MESSAGE_MAX)] = '\0';
			return line;
		}
		end = start;
	}
	return NULL;
}
