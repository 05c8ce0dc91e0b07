/*
 * action.c - what all actions share: picking the ops for a kind, freeing a
 * result, and turning a child's output into a run's one-line message.
 *
 * Output and messages end up in LMDB and in JSON (jansson refuses invalid
 * UTF-8), so the text helpers here return valid UTF-8 whatever a child wrote.
 */
#include "daemon/action.h"

#include <stdlib.h>
#include <string.h>

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
	memset(res, 0, sizeof *res);
}

/* Length of the valid UTF-8 sequence at @s (at most @len bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t len) {
	size_t n;
	unsigned min;
	unsigned cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, min = 0x80, cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, min = 0x800, cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, min = 0x10000, cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

char *action_text_clean(const char *text, size_t len) {
	const unsigned char *s = (const unsigned char *)text;
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = s[i] == '\0' ? 0 : utf8_seq_len(s + i, len - i);
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
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
			char *line = action_text_clean(text + start, end - start);
			/* Control characters would break the one-line promise. */
			for (char *p = line; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = ' ';
			size_t n = strlen(line);
			if (n > ACTION_MESSAGE_MAX) {
				n = ACTION_MESSAGE_MAX;
				/* Cut on a character boundary. */
				while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
					n--;
				line[n] = '\0';
			}
			return line;
		}
		end = start;
	}
	return NULL;
}
